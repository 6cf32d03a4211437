"""The normal model's summarised runs (cbcp_sim/models/summaries.py): each arm's mean and sum of squares drawn in
place of children, when only two-sample t-tests read them.

Checked against the children-by-children path of the same model (the same scenario with an analysis that needs
children), against the closed-form power, and for the children rebuilt for `cbcp-sim trials`.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import cbcp_sim
from cbcp_sim.models import summaries, trial
from cbcp_sim.models.streams import Streams
from cbcp_sim.run import engine
from cbcp_sim.scenario import default_scenario_path
from tests.support import PLAIN


def plain(**overrides: object) -> cbcp_sim.Scenario:
    return cbcp_sim.load_scenario(default_scenario_path(), {**PLAIN, **overrides})


@pytest.mark.parametrize(("overrides", "expected"), [
    ({}, True),
    ({"analysis.primary": "welch", "analysis.secondary": ["ttest"]}, True),
    ({"analysis.endpoint": "final", "outcome.sd": [4.0, 6.0], "design.n_per_arm": [10, 30]}, True),
    ({"analysis.secondary": ["ancova"]}, False),
    ({"analysis.secondary": ["wilcoxon"]}, False),
    ({"dropout.fraction": 0.1}, True),
    ({"dropout.fraction": 0.1, "dropout.mechanism": "mar"}, False),
    ({"dropout.fraction": 0.1, "dropout.mechanism": "mnar"}, False),
    ({"design.arms": ["sham", "low", "high"], "analysis.multiplicity": "dunnett"}, True),
    ({"design.kind": "crossover", "analysis.primary": "crossover", "design.visits": [0, 6, 12],
      "design.crossover_month": 6, "design.primary_visit": 6}, False),
    ({"operations.enabled": True}, False),
    ({"operations.enabled": True, "sequential.interims": [0.5]}, False),
    ({"outcome.model": "mvn"}, False),
])
def test_only_runs_that_read_arm_moments_alone_are_summarised(overrides, expected):
    assert summaries.summarised(plain(**overrides)) is expected


def children_path(**overrides: object) -> cbcp_sim.Scenario:
    """The trials of ``plain(**overrides)`` simulated child by child: a Wilcoxon secondary analysis needs each
    child's value."""
    return plain(**overrides, **{"analysis.secondary": ["wilcoxon"]})


@pytest.mark.parametrize("overrides", [
    {"outcome.effect": 2.0, "design.n_per_arm": 12},
    {"analysis.primary": "welch", "analysis.endpoint": "final", "outcome.sd": [3.0, 7.0],
     "design.n_per_arm": [6, 20], "outcome.effect": 2.5},
    {"design.n_per_arm": [4, 10], "dropout.fraction": 0.4, "outcome.effect": 3.0},
])
def test_estimates_and_ses_have_the_distribution_of_the_children_path(overrides):
    """20,000 trials each way: the estimate, the SE and the p-value of each pass have the same distribution
    (two-sample Kolmogorov-Smirnov test; a sum of squares on n instead of n - 1 df moves the SEs by 1/(2n) of
    their mean, about a third of their spread at n = 12, and fails it). With MCAR dropout, trials left with
    fewer than two children in an arm fail as often (two-proportion z test)."""
    scenario, direct = plain(**overrides), children_path(**overrides)
    assert summaries.summarised(scenario) and not summaries.summarised(direct)
    name = scenario.analysis.primary
    fast = cbcp_sim.simulate(scenario, reps=20_000, seed=5).replicates[name]
    slow = cbcp_sim.simulate(direct, reps=20_000, seed=6).replicates[name]
    failed = np.isnan(fast["estimate"]).mean(), np.isnan(slow["estimate"]).mean()
    pooled = (failed[0] + failed[1]) / 2.0
    assert abs(failed[0] - failed[1]) <= 4.0 * math.sqrt(2.0 * pooled * (1.0 - pooled) / 20_000), failed
    for field in ("estimate", "se", "p", "null_estimate", "null_p"):
        a, b = fast[field], slow[field]
        assert stats.ks_2samp(a[~np.isnan(a)], b[~np.isnan(b)]).pvalue > 1e-3, field


def test_power_and_type1_error_match_the_closed_form():
    """The benchmark's plain design (50 per arm, effect 3.3, SD of change 5.5), 100,000 trials: power within 3
    MCSE of the noncentral t, type I error within 3 MCSE of 0.05."""
    result = cbcp_sim.simulate(plain(**{"design.n_per_arm": 50, "outcome.effect": 3.3}), reps=100_000, seed=2)
    row = result.primary
    critical = stats.t.ppf(0.975, 98)
    shift = 3.3 / 5.5 * math.sqrt(25.0)
    power = stats.nct.sf(critical, 98, shift) + stats.nct.cdf(-critical, 98, shift)
    assert abs(row["power"] - power) <= 3 * row["mcse"], (row["power"], power)
    assert abs(row["type1_error"] - 0.05) <= 3 * math.sqrt(0.05 * 0.95 / 100_000), row["type1_error"]
    assert result.true_effect == 3.3


def children_chunk(scenario: cbcp_sim.Scenario, seed: int, chunk: int, n_reps: int) -> engine.ChunkResult:
    """The engine's chunk analysed child by child: the children `cbcp-sim trials` writes (rebuilt from the arms'
    sums by trial.generate) through every analysis and adjustment of the child-by-child path."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "summaries", SimpleNamespace(summarised=lambda s: False))
        return engine.run_chunk(scenario, seed, chunk, n_reps)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(sizes=st.lists(st.integers(2, 25), min_size=2, max_size=4), sd=st.floats(0.5, 10.0),
       spread=st.floats(0.5, 2.0), correlation=st.floats(-0.9, 0.9), effect=st.floats(-5.0, 5.0),
       endpoint=st.sampled_from(["change", "final"]), name=st.sampled_from(["ttest", "welch"]),
       lost=st.sampled_from([0.0, 0.2, 0.7]),
       multiplicity=st.sampled_from(["none", "holm", "hochberg", "dunnett", "dunnett_separate"]),
       sides=st.sampled_from([1, 2]))
def test_rebuilt_children_give_the_run_its_estimates(sizes, sd, spread, correlation, effect, endpoint, name, lost,
                                                     multiplicity, sides):
    """The engine's chunk, which never builds children, gives exactly the estimates, SEs, df and (adjusted)
    p-values of the children `cbcp-sim trials` writes analysed child by child, in both passes, for 2 to 4 arms and
    every adjustment for multiplicity; with MCAR dropout the children seen agree too (an arm left with fewer than
    two fails in both)."""
    if name == "welch" and multiplicity == "dunnett":
        name = "ttest"  # Dunnett's one model pools the variance
    sds = [sd * spread**j for j in range(len(sizes))]
    scenario = plain(**{"design.arms": ["sham", *(f"dose {j}" for j in range(1, len(sizes)))],
                        "design.n_per_arm": sizes, "outcome.sd": sds, "outcome.correlation": correlation,
                        "outcome.effect": effect, "analysis.endpoint": endpoint, "analysis.primary": name,
                        "dropout.fraction": lost, "analysis.multiplicity": multiplicity, "design.sides": sides})
    assert summaries.summarised(scenario)
    fast, slow = engine.run_chunk(scenario, 3, 1, 40), children_chunk(scenario, 3, 1, 40)
    for p in ("alt", "null"):
        assert getattr(fast, p).keys() == getattr(slow, p).keys()
        for key, est in getattr(fast, p).items():
            other = getattr(slow, p)[key]
            for field in ("estimate", "se", "df", "p_two", "p_upper"):
                a, b = getattr(est, field), getattr(other, field)
                assert (a is None) == (b is None), (p, key, field)
                if a is not None:
                    np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9, err_msg=f"{p} {key} {field}")
    for label, truth in fast.truth.items():  # the children's effects are differences of scores: rounded
        np.testing.assert_allclose(truth[[0, 2]], slow.truth[label][[0, 2]], rtol=1e-9, atol=1e-9 * truth[2])


@pytest.mark.parametrize("endpoint", ["change", "final"])
def test_rebuilt_children_follow_the_bivariate_normal_model(endpoint):
    """Per trial and arm of 8 children, the sample correlation of baseline with the primary score, and the
    sample SDs of each, have the distribution of the children path's (10,000 trials; KS test)."""
    overrides = {"design.n_per_arm": 8, "outcome.correlation": 0.3, "outcome.sd": 4.0, "analysis.endpoint": endpoint}
    rebuilt = trial.generate(plain(**overrides), 10_000, Streams(7, 0)).null_values
    direct = trial.generate(children_path(**overrides), 10_000, Streams(8, 0)).null_values
    for values in (rebuilt, direct):
        assert values.shape == (10_000, 16, 2)

    def features(values: np.ndarray) -> dict[str, np.ndarray]:
        arm = values[:, 8:]
        b, y = arm[..., 0], arm[..., 1]
        r = np.array([np.corrcoef(bi, yi)[0, 1] for bi, yi in zip(b, y, strict=True)])
        return {"correlation": r, "baseline sd": b.std(axis=1, ddof=1), "primary sd": y.std(axis=1, ddof=1),
                "baseline mean": b.mean(axis=1)}

    for (name, a), b in zip(features(rebuilt).items(), features(direct).values(), strict=True):
        assert stats.ks_2samp(a, b).pvalue > 1e-3, name
