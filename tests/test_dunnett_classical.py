"""The classical Dunnett test (``analysis.multiplicity = "dunnett"``): one model of every arm against R's
``multcomp::glht(..., mcp(arm = "Dunnett"))`` (fixtures made by ``tests/fixtures/dunnett/make_fixtures.R``; the
tests do not need R), and the family-wise error the engine reports."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cbcp_sim
from cbcp_sim.analysis import ARM_MODELS, analyse_arms
from cbcp_sim.analysis.ancova import ancova
from cbcp_sim.analysis.multiplicity import dunnett
from cbcp_sim.analysis.ttests import ttest
from cbcp_sim.errors import ScenarioError
from cbcp_sim.scenario.spec import ONE_MODEL_ANALYSES

FIXTURES = Path(__file__).with_name("fixtures") / "dunnett"
DATA = pd.read_csv(FIXTURES / "data.csv")
REFERENCE = pd.read_csv(FIXTURES / "pvalues.csv")
SETS = list(dict.fromkeys(DATA["set"]))


def _fit(name: str) -> tuple[tuple, np.ndarray]:
    """The fixture data set ``name`` as one trial (baseline ``x1`` at visit 0, ``y`` at visit 1, covariate ``x2``):
    one-way ANOVA of ``y`` (the t-test of the final score) or ANCOVA on ``x1`` (and ``x2``); and the arm sizes."""
    d = DATA[DATA["set"] == name]
    covariates = int(REFERENCE.loc[REFERENCE["set"] == name, "covariates"].iloc[0])
    values = np.stack([d["x1"].to_numpy(), d["y"].to_numpy()], axis=-1)[None]
    observed = np.ones(values.shape, dtype=bool)
    arm, arms = d["arm"].to_numpy(), d["arm"].nunique()
    if covariates == 0:
        ests = analyse_arms("ttest", values, observed, arm, arms, 1, endpoint="final")
    else:
        cov = d[["x2"]].to_numpy()[None] if covariates == 2 else None
        ests = analyse_arms("ancova", values, observed, arm, arms, 1, covariates=cov)
    return ests, np.bincount(arm).astype(float)


@pytest.mark.parametrize("name", SETS)
def test_contrasts_equal_r_lm(name):
    """Estimate, SE and residual df of each active arm against control equal R's ``lm`` with arm as a factor."""
    ests, _ = _fit(name)
    ref = REFERENCE[REFERENCE["set"] == name]
    np.testing.assert_allclose([e.estimate[0] for e in ests], ref["estimate"], rtol=0, atol=1e-12)
    np.testing.assert_allclose([e.se[0] for e in ests], ref["se"], rtol=0, atol=1e-12)
    assert all(e.df[0] == ref["df"].iloc[0] for e in ests)


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize(("sides", "column"), [(2, "p_two"), (1, "p_greater")])
def test_adjusted_p_equal_multcomp(name, sides, column):
    """Single-step adjusted p-values: equal to mvtnorm's multivariate t with the arm sizes' correlation to its
    own error (1e-7); equal to ``multcomp::glht`` for one-way ANOVA, where that is the exact correlation; for
    ANCOVA glht's correlation also holds the covariates' imbalance between arms, which moves p by < 1e-3."""
    ests, n = _fit(name)
    ref = REFERENCE[REFERENCE["set"] == name]
    t = np.stack([e.estimate / e.se for e in ests], axis=-1)
    p = dunnett(t, ests[0].df, n[:1], n[None, 1:], sides=sides)[0]
    np.testing.assert_allclose(p, ref[f"{column}_armsizes"], rtol=0, atol=2e-7)
    np.testing.assert_allclose(p, ref[column], rtol=0, atol=2e-7 if ref["covariates"].iloc[0] == 0 else 1e-3)


def test_two_arms_are_the_two_sample_analyses():
    """With two arms the one model is the t-test and the ANCOVA, bit for bit (arms per child or per replicate)."""
    rng = np.random.default_rng(5)
    values = rng.normal(50.0, 8.0, (6, 20, 3))
    observed = rng.random((6, 20, 3)) > 0.15
    observed[..., 0] = True
    cov = rng.normal(size=(6, 20, 2))
    for arm in (np.arange(20) % 2, (rng.random((6, 20)) > 0.5).astype(int)):
        (t,) = analyse_arms("ttest", values, observed, arm, 2, 2, endpoint="change")
        (a,) = analyse_arms("ancova", values, observed, arm, 2, 2, covariates=cov)
        for one, two in ((t, ttest(values, observed, arm == 1, 2)), (a, ancova(values, observed, arm == 1, 2,
                                                                                 covariates=cov))):
            for field in ("estimate", "se", "df"):
                np.testing.assert_array_equal(getattr(one, field), getattr(two, field))


def test_one_model_analyses_are_declared_once():
    assert set(ONE_MODEL_ANALYSES) == set(ARM_MODELS)


def test_dunnett_needs_one_model_and_dunnett_separate_takes_any_t_analysis():
    arms = {"design.arms": ["sham", "a", "b"], "analysis.primary": "welch"}
    with pytest.raises(ScenarioError, match="dunnett_separate"):
        cbcp_sim.load_scenario("default", {**arms, "analysis.multiplicity": "dunnett"})
    assert cbcp_sim.load_scenario("default", {**arms, "analysis.multiplicity": "dunnett_separate"})


FOUR_ARMS = {"design.arms": ["sham", "a", "b", "c"], "design.n_per_arm": 12, "outcome.model": "normal",
             "analysis.primary": "ttest", "analysis.secondary": [], "analysis.multiplicity": "dunnett"}
FOUR_ARMS_REPS = 5_000


@pytest.fixture(scope="module")
def four_arms() -> cbcp_sim.SimulationResult:
    return cbcp_sim.simulate(cbcp_sim.load_scenario("default", FOUR_ARMS), reps=FOUR_ARMS_REPS, seed=20)


def test_four_arms_family_wise_error_is_alpha(four_arms):
    """Four arms of 12, t-test, no effect: the classical Dunnett test's family-wise error is alpha (within 3 MCSE
    of 0.05); the per-comparison approximation gives 0.0511 in a million trials. The reported rate is the share
    of null trials with any comparison rejecting."""
    error = four_arms.familywise["ttest"]
    assert abs(error["rate"] - 0.05) <= 3 * math.sqrt(0.05 * 0.95 / FOUR_ARMS_REPS), error
    rejected = np.any([four_arms.replicates_for(c)["null_reject"] for c in four_arms.comparisons], axis=0)
    assert error["rate"] == rejected.mean()
    assert error["mcse"] == pytest.approx(math.sqrt(error["rate"] * (1 - error["rate"]) / FOUR_ARMS_REPS))
    assert error["ci_low"] < error["rate"] < error["ci_high"]
    out = json.loads(json.dumps(four_arms.to_json()))
    assert (out["familywise_error"], out["familywise_mcse"]) == (error["rate"], error["mcse"])
    assert "family-wise error" in str(four_arms) and f"{error['rate']:.4f}" in str(four_arms)


def test_four_arms_share_one_pooled_variance(four_arms):
    """Each comparison's df is that of one model of every child seen in 4 arms (44 for all 48), the same in all."""
    df = np.stack([four_arms.replicates_for(c)["df"] for c in four_arms.comparisons])
    assert (df == df[0]).all() and df.max() == 44


def test_two_arms_report_no_family_wise_error():
    result = cbcp_sim.simulate(cbcp_sim.load_scenario("default", {"outcome.model": "normal"}), reps=50, seed=1)
    assert result.familywise is None
    out = result.to_json()
    assert all(out[k] is None for k in ("familywise_error", "familywise_mcse", "familywise_ci_low",
                                        "familywise_ci_high"))
    assert "family-wise" not in str(result)
