"""Trial designs: stratified block randomisation, two-period crossover, single arm against expectation, dose
strata, k arms with multiplicity, MAR dropout, and the design rules of scenario validation.

Statistical checks use fixed seeds and compare against a 99% Monte Carlo band (z = 2.576 times the MCSE) or,
for biases, three bias MCSEs; the reference values come from theory computed here independently of the engine
(time course and dose-response of the cells, the noncentral t, the exact binomial distribution).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

import cbcp_sim
from cbcp_sim.errors import ScenarioError
from cbcp_sim.models import randomisation, treatment, trial
from cbcp_sim.models.streams import Streams
from cbcp_sim.scenario import Scenario, allocation_ratio, scenario_from_dict

from .support import assert_one_line_error, cli, stable

Z99 = 2.5758293035489


def _band(p: float, reps: int) -> float:
    """Half-width of the 99% Monte Carlo band of a rejection rate ``p`` from ``reps`` replicates."""
    return Z99 * math.sqrt(p * (1.0 - p) / reps)


def _scenario(overrides: dict[str, Any]) -> Scenario:
    return scenario_from_dict({}, overrides)


@functools.cache
def _simulate(overrides: tuple[tuple[str, Any], ...], reps: int, seed: int) -> cbcp_sim.SimulationResult:
    """``cbcp_sim.simulate`` of the default scenario with ``overrides``, run once per module (tests share runs)."""
    return cbcp_sim.simulate(_scenario(dict(overrides)), reps=reps, seed=seed)


def _freeze(overrides: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in overrides.items())


def _row(result: cbcp_sim.SimulationResult, analysis: str, comparison: str | None = None) -> dict[str, Any]:
    rows = [r for r in result.rows
            if r["analysis"] == analysis and (comparison is None or r["comparison"] == comparison)]
    assert len(rows) == 1, [(r["analysis"], r["comparison"]) for r in result.rows]
    return rows[0]


# --- 1. stratified permuted blocks ----------------------------------------------------------------------------

RATIOS = ((1, 1), (1, 2), (1, 1, 1))


@stable(60)
@given(ratio=st.sampled_from(RATIOS), per_unit=st.integers(2, 12), blocks_of=st.integers(0, 4),
       n_strata=st.integers(1, 9), n_reps=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_block_randomisation_balances_every_stratum(ratio, per_unit, blocks_of, n_strata, n_reps, seed):
    """Stratified permuted blocks for random strata, ratios 1:1, 1:2, 1:1:1 and block sizes (0 = twice the ratio
    sum): in each stratum, in enrolment order, every complete block is a permutation of the block template (so
    each arm's count differs from the ratio-proportional count by less than one block); each arm's total is
    within (number of strata x block size) of n_per_arm; the same seed gives the same allocation."""
    n_per_arm = [r * per_unit for r in ratio]
    arms = ["control", "a", "b"][: len(ratio)]
    design = _scenario({"design.arms": arms, "design.n_per_arm": n_per_arm, "design.randomisation": "blocks",
                        "design.block_size": blocks_of * sum(ratio)}).design
    assert allocation_ratio(design.n_per_arm) == ratio
    size = randomisation.block_size(design)
    assert size == (blocks_of or 2) * sum(ratio)
    n = sum(n_per_arm)
    stratum = np.random.default_rng(seed).integers(0, n_strata, (n_reps, n))
    arm = randomisation.assign(design, stratum, np.random.default_rng(seed + 1))
    assert arm.shape == (n_reps, n)
    np.testing.assert_array_equal(arm, randomisation.assign(design, stratum, np.random.default_rng(seed + 1)))
    template = np.sort(np.tile(np.repeat(np.arange(len(ratio)), ratio), size // sum(ratio)))
    share = np.array(ratio) / sum(ratio)
    for r in range(n_reps):
        for s in range(n_strata):
            sequence = arm[r, stratum[r] == s]  # this stratum's children in enrolment order
            full = sequence.size // size
            for block in sequence[: full * size].reshape(full, size):
                np.testing.assert_array_equal(np.sort(block), template)
            counts = np.bincount(sequence, minlength=len(ratio))
            assert (np.abs(counts - sequence.size * share) < size).all(), (counts, sequence.size, size)
        totals = np.bincount(arm[r], minlength=len(ratio))
        assert (np.abs(totals - np.array(n_per_arm)) <= n_strata * size).all()


@pytest.mark.parametrize(("n_per_arm", "block_size", "ratio"), [(20, 3, "1:1"), ([20, 40], 4, "1:2"),
                                                                ([10, 10, 10], 4, "1:1:1")])
def test_block_size_must_be_a_multiple_of_the_ratio(n_per_arm, block_size, ratio):
    """A block size that is not a multiple of the allocation ratio's sum is a one-line ScenarioError naming
    design.block_size and the ratio."""
    arms = ["control", "a", "b"][: len(n_per_arm) if isinstance(n_per_arm, list) else 2]
    with pytest.raises(ScenarioError) as info:
        _scenario({"design.arms": arms, "design.n_per_arm": n_per_arm, "design.randomisation": "blocks",
                   "design.block_size": block_size})
    assert info.value.path == "design.block_size"
    assert "\n" not in str(info.value) and ratio in str(info.value)


def _arm_means(data: trial.TrialData, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per replicate: children in the active arm, and the active-minus-control difference in mean covariate."""
    x = data.covariates[name]
    arm = np.broadcast_to(data.arm, x.shape)
    n1, n0 = (arm == 1).sum(axis=1), (arm == 0).sum(axis=1)
    return n1, (x * (arm == 1)).sum(axis=1) / n1 - (x * (arm == 0)).sum(axis=1) / n0


def test_blocks_through_the_engine_balance_gmfcs_and_age():
    """Blocks stratified by GMFCS and age band (default n 36 per arm): arm sizes vary a little between replicates
    (always 72 in all, never more than strata x block from 36), and the SD across replicates of the between-arm
    difference in mean GMFCS level is much smaller than under fixed allocation (age also smaller); the same seed
    gives the same trials."""
    reps = 2000
    sd = {}
    for method in ("fixed", "blocks"):
        s = _scenario({"design.randomisation": method})
        data = trial.generate(s, reps, Streams(4, 0))
        n1, gmfcs = _arm_means(data, "gmfcs")
        _, age = _arm_means(data, "age")
        sd[method] = (gmfcs.std(), age.std())
        if method == "fixed":
            assert (n1 == 36).all()
        else:
            strata = 5 * (len(s.design.age_bands) + 1)
            assert np.unique(n1).size >= 3
            assert (np.abs(n1 - 36) <= strata * randomisation.block_size(s.design)).all()
            assert np.broadcast_to(data.arm, data.values.shape[:2]).shape[1] == 72
            again = trial.generate(s, reps, Streams(4, 0))
            np.testing.assert_array_equal(data.arm, again.arm)
            np.testing.assert_array_equal(data.values, again.values)
    assert sd["blocks"][0] < 0.5 * sd["fixed"][0], sd
    assert sd["blocks"][1] < sd["fixed"][1], sd


def test_blocks_type1_error_adjusted_and_unadjusted():
    """A blocks design runs through simulate with no failed replicates; under no effect the ANCOVA adjusted for
    the stratification factors (gmfcs, age) is at nominal level within the 99% band, while the unadjusted t-test
    is conservative (stratified randomisation analysed without the strata; Kahan & Morris 2012 BMJ 345:e5840)."""
    reps = 10_000
    result = _simulate(_freeze({"design.randomisation": "blocks", "analysis.covariates": ["gmfcs", "age"],
                                "analysis.secondary": ["ttest"]}), reps, 4)
    ancova, ttest = _row(result, "ancova"), _row(result, "ttest")
    for row in (ancova, ttest):
        assert row["n_failed"] == 0 and row["n_failed_null"] == 0
    assert abs(ancova["type1_error"] - 0.05) <= _band(0.05, reps), ancova["type1_error"]
    assert ttest["type1_error"] < 0.05 - _band(0.05, reps), ttest["type1_error"]


# --- 2. crossover -----------------------------------------------------------------------------------------------

CROSSOVER_DOSE = 10.0
CROSSOVER = {
    "design.kind": "crossover", "design.arms": ["placebo first", "cells first"], "design.visits": [0, 12, 24],
    "design.primary_visit": 12, "design.crossover_month": 12, "design.n_per_arm": 20,
    "population.source": "allogeneic", "population.allogeneic_dose": CROSSOVER_DOSE,
    "treatment.response_cv": 0.1, "treatment.modifiers.age_factors": [1, 1],
    "treatment.modifiers.gmfcs": [1, 1, 1, 1, 1], "treatment.ceiling_fraction": math.inf,
    "analysis.primary": "ttest", "analysis.secondary": ["crossover", "period2"],
}
DURABLE = {"treatment.waning_half_life_months": math.inf, "treatment.persistent_fraction": 1.0}
WANING = {"treatment.waning_half_life_months": 12.0, "treatment.persistent_fraction": 0.3}
CROSSOVER_REPS = 10_000


def _crossover(waning: dict[str, Any]) -> cbcp_sim.SimulationResult:
    return _simulate(_freeze({**CROSSOVER, **waning}), CROSSOVER_REPS, 5)


def _mean_effect(s: Scenario, months_after_dose: float) -> float:
    """E(s): the mean cell effect ``s`` months after the dose, from the time course and dose-response of the
    scenario's product at its fixed allogeneic dose (every modifier 1, mean response 1, no ceiling)."""
    course = s.regimens[1].doses[0].course
    peak = float(treatment.dose_response(course, np.array(s.population.allogeneic_dose)))
    return peak * float(treatment.time_course(course, np.array(months_after_dose)))


def test_crossover_durable_effect_is_estimated_without_bias():
    """Crossover (Duke-like, 12-month periods) with a durable effect (no waning, no ceiling, age factor 1 so a dose
    a year later works as well): the period-1 t-test, the period-2 comparison and the within-child crossover
    analysis are all unbiased for the true period-1 effect (within 3 bias MCSEs), which is E(12)."""
    result = _crossover(DURABLE)
    for name in ("ttest", "crossover", "period2"):
        row = _row(result, name)
        assert row["n_failed"] == 0
        assert abs(row["bias"]) <= 3 * row["bias_mcse"], (name, row["bias"], row["bias_mcse"])
    s = result.scenario
    assert _mean_effect(s, 12.0) == pytest.approx(_mean_effect(s, 24.0))
    assert result.true_effect == pytest.approx(_mean_effect(s, 12.0), rel=0.01)


def test_crossover_waning_effect_biases_period2_and_crossover_as_theory_says():
    """With a waning effect (half-life 12 months, persistent 0.3) the children who got cells first lose E(12) - E(24)
    in period 2, where E(s) is the mean cell effect s months after a dose. So period2 (period-2 change of the
    placebo-first sequence, which gains E(12), minus that of the cells-first one) overestimates the effect by
    E(12) - E(24), and the crossover analysis (half the between-sequence difference of period-1 minus period-2
    change) by half of it; the period-1 t-test stays unbiased.

    Tolerance: 3 bias MCSEs plus 2% of E(12). The theory is on the latent scale; observed scores pass through the
    0-100 map, which compresses scores beyond 5 and 95 points and so shrinks effects of children near the floor or
    ceiling a little. The engine's true effect (on the observed scale) shows the shrinkage at month 12 is below 1%
    of E(12); each bias combines such terms of both sequences, hence 2%."""
    result = _crossover(WANING)
    s = result.scenario
    e12, e24 = _mean_effect(s, 12.0), _mean_effect(s, 24.0)
    lost = e12 - e24
    assert lost > 0.8  # the waning is large against the MC error
    shrink = 1.0 - result.true_effect / e12
    assert 0.0 <= shrink < 0.01, shrink
    ttest, period2, crossover = (_row(result, name) for name in ("ttest", "period2", "crossover"))
    assert abs(ttest["bias"]) <= 3 * ttest["bias_mcse"], ttest["bias"]
    for row, theory in ((period2, lost), (crossover, lost / 2.0)):
        assert row["bias"] > 10 * row["bias_mcse"]
        assert abs(row["bias"] - theory) <= 3 * row["bias_mcse"] + 0.02 * e12, (row["analysis"], row["bias"], theory)


@pytest.mark.parametrize("waning", [DURABLE, WANING], ids=["durable", "waning"])
def test_crossover_type1_error_of_every_analysis(waning):
    """Under no effect (the engine's null trials, same children) the period-1 t-test, period2 and crossover
    analyses reject at nominal 5% within the 99% band (10,000 trials of 20 per sequence, 5% dropout by month 12)."""
    for name in ("ttest", "crossover", "period2"):
        row = _row(_crossover(waning), name)
        assert row["n_failed_null"] == 0
        assert abs(row["type1_error"] - 0.05) <= _band(0.05, CROSSOVER_REPS), (name, row["type1_error"])


# --- 3. single arm ----------------------------------------------------------------------------------------------

SINGLE = {
    "design.kind": "single_arm", "design.arms": ["cells"], "design.blinding": "assessor",
    "treatment.expectation_response": 0.0, "treatment.dose_response.emax": 0.0, "dropout.fraction": 0.0,
    "analysis.primary": "above_expected", "analysis.secondary": ["count_above"],
}
SINGLE_REPS = 20_000


def _single(n: int, **extra: Any) -> cbcp_sim.SimulationResult:
    return _simulate(_freeze({**SINGLE, "design.n_per_arm": n, **extra}), SINGLE_REPS, 7)


@pytest.mark.parametrize("n", [20, 50])
def test_single_arm_type1_error_at_nominal(n):
    """Single arm judged against the expected natural change (mean_change of the natural-history model, trial
    effect included), no cell effect, assessor-blinded, no expectation response: the one-sample t-test of the
    excess rejects at 5% within the 99% band, and the mean excess is 0 within 3 MCSEs."""
    row = _row(_single(n), "above_expected")
    assert row["n_failed"] == 0
    assert row["true_effect"] == 0.0
    assert abs(row["type1_error"] - 0.05) <= _band(0.05, SINGLE_REPS), row["type1_error"]
    assert abs(row["mean_estimate"]) <= 3 * row["bias_mcse"], row["mean_estimate"]


def test_single_arm_wrong_expectation_type1_error_matches_noncentral_t():
    """With analysis.expected_error = -1 every child's expectation is one point too low, so the excess has mean 1
    and the t-test's rejection rate is P(|T| > t_crit) for a noncentral t with df n - 1 and ncp sqrt(n) / sigma.
    sigma is the SD of one child's excess, from the simulation itself: the mean over replicates of the sample
    variance (se^2 n) is unbiased for sigma^2. The shift does not change it: with the same seed the trials are the
    same and every estimate moves by exactly 1 with the same SE (checked). Agreement within the 99% band."""
    n = 20
    wrong, right = _single(n, **{"analysis.expected_error": -1.0}), _single(n)
    low, ok = wrong.replicates["above_expected"], right.replicates["above_expected"]
    np.testing.assert_allclose(low["estimate"] - ok["estimate"], 1.0, atol=1e-9)
    np.testing.assert_allclose(low["se"], ok["se"], rtol=1e-12)
    sigma = math.sqrt(float(np.mean(low["se"] ** 2)) * n)
    critical = stats.t.ppf(0.975, n - 1)
    ncp = math.sqrt(n) / sigma
    theory = stats.nct.sf(critical, n - 1, ncp) + stats.nct.cdf(-critical, n - 1, ncp)
    row = _row(wrong, "above_expected")
    assert theory > 0.1
    assert abs(row["type1_error"] - theory) <= _band(theory, SINGLE_REPS), (row["type1_error"], theory, sigma)


def test_single_arm_open_assessor_inflates_type1_error():
    """An open design (unblinded assessor) adds treatment.assessor_bias (1.2 points) to every treated child's
    follow-up: the mean excess under no cell effect rises by about that much (within 0.05 for the 0-100 map) and
    the type I error clearly exceeds 5%."""
    n = 20
    blind, open_ = _single(n), _single(n, **{"design.blinding": "open"})
    row = _row(open_, "above_expected")
    bias = open_.scenario.treatment.assessor_bias
    rise = row["mean_estimate"] - _row(blind, "above_expected")["mean_estimate"]
    assert abs(rise - bias) < 0.05, rise
    assert row["type1_error"] > 0.05 + 10 * row["type1_mcse"], row["type1_error"]
    assert row["type1_error"] > 0.1



def test_before_after_is_the_one_sample_t_of_the_change():
    """before_after on arrays with missing values: per replicate, the estimate, SE and df of scipy's one-sample t
    of the observed changes against 0."""
    from cbcp_sim.analysis import before_after

    rng = np.random.default_rng(3)
    values = rng.normal(50.0, 8.0, (4, 15, 3))
    observed = rng.random((4, 15, 3)) > 0.2
    got = before_after(values, observed, np.ones(15, bool), 2)
    for r in range(4):
        keep = observed[r, :, 0] & observed[r, :, 2]
        change = values[r, keep, 2] - values[r, keep, 0]
        ref = stats.ttest_1samp(change, 0.0)
        assert got.estimate[r] == pytest.approx(change.mean(), rel=1e-12)
        assert got.estimate[r] / got.se[r] == pytest.approx(ref.statistic, rel=1e-10)
        assert got.df[r] == keep.sum() - 1


def test_before_after_counts_natural_growth_as_effect():
    """No cell effect, children aged 1-6 followed 6 months: before/after 'succeeds' in most trials (their natural
    gain and the trial effect), while the same trials judged against the expected change hold the nominal level."""
    result = _simulate(_freeze({**SINGLE, "design.n_per_arm": 20, "design.visits": [0, 6], "design.primary_visit": 6,
                                "analysis.secondary": ["before_after"]}), 4000, 11)
    naive, judged = _row(result, "before_after"), _row(result, "above_expected")
    assert naive["type1_error"] > 0.9, naive["type1_error"]
    assert abs(judged["type1_error"] - 0.05) <= _band(0.05, 4000), judged["type1_error"]
    assert naive["bias"] > 2.0, naive["bias"]

def _sign_test_size(n: int, p: float, alpha: float = 0.05) -> float:
    """Exact rejection rate of the two-sided sign test (binomial test of 1/2) when each of ``n`` children is
    above expectation with probability ``p``: the binomial probabilities of the counts it rejects."""
    k = np.arange(n + 1)
    rejects = np.array([stats.binomtest(int(i), n, 0.5).pvalue < alpha for i in k])
    return float(stats.binom.pmf(k[rejects], n, p).sum())


@pytest.mark.parametrize(("n", "extra"), [(20, {}), (50, {}), (20, {"analysis.expected_error": -1.0})],
                         ids=["n20", "n50", "n20-expectation-too-low"])
def test_count_above_type1_error_is_the_exact_sign_test_size(n, extra):
    """count_above's rejection rate under no cell effect equals the exact size of the two-sided sign test at the
    probability p that a child is above its expectation, p estimated from the null trials (mean share above).
    Band: 99% of the MC error of the rate plus that of the size at the estimated p (delta method)."""
    result = _single(n, **extra)
    row = _row(result, "count_above")
    assert row["n_failed_null"] == 0
    p = float(np.mean(result.replicates["count_above"]["null_estimate"])) + 0.5
    size = _sign_test_size(n, p)
    slope = (_sign_test_size(n, p + 1e-4) - _sign_test_size(n, p - 1e-4)) / 2e-4
    mc = math.sqrt(size * (1 - size) / SINGLE_REPS + slope**2 * p * (1 - p) / (n * SINGLE_REPS))
    assert abs(row["type1_error"] - size) <= Z99 * mc, (row["type1_error"], size, p)


# --- 4. dose strata -------------------------------------------------------------------------------------------

DOSE_STRATA = {"analysis.dose_strata": True, "analysis.primary": "ttest", "design.n_per_arm": 40}
DOSE_REPS = 10_000
HIGH, LOW = "cord blood dose >= 2 vs sham", "cord blood dose < 2 vs sham"


def test_dose_strata_rows_and_true_effects():
    """analysis.dose_strata (autologous doses) adds secondary rows for the children dosed >= and < 2 x 10^7/kg,
    each keyed "<analysis>: <comparison>" in the replicates; the true effect is larger in the high-dose stratum,
    as the Emax dose-response implies, and the whole-arm effect lies between the two."""
    result = _simulate(_freeze(DOSE_STRATA), DOSE_REPS, 3)
    assert result.scenario.population.source == "autologous"
    whole, high, low = (_row(result, "ttest", c) for c in ("cord blood vs sham", HIGH, LOW))
    assert whole["role"] == "primary" and high["role"] == low["role"] == "secondary"
    assert set(result.replicates) == {"ttest", f"ttest: {HIGH}", f"ttest: {LOW}"}
    assert high["true_effect"] > whole["true_effect"] > low["true_effect"] > 0.0
    assert result.true_effect == whole["true_effect"]


def test_dose_strata_type1_error_near_nominal():
    """Under no effect each dose-stratum comparison is unbiased (mean null estimate 0 within 4 MCSEs) and rejects
    at 5% within the 99% band, as a comparison within a randomised stratum does."""
    result = _simulate(_freeze(DOSE_STRATA), DOSE_REPS, 3)
    for label in (HIGH, LOW):
        null = result.replicates[f"ttest: {label}"]["null_estimate"]
        null = null[np.isfinite(null)]
        assert abs(null.mean()) <= 4 * null.std() / math.sqrt(null.size), (label, null.mean())
        row = _row(result, "ttest", label)
        assert abs(row["type1_error"] - 0.05) <= _band(0.05, DOSE_REPS), (label, row["type1_error"])


# --- 5. k arms and multiplicity -----------------------------------------------------------------------------------

K_ARMS = {"design.arms": ["sham", "low", "high"], "design.n_per_arm": 30, "analysis.primary": "ttest"}


def _family_wise(method: str, reps: int) -> tuple[float, cbcp_sim.SimulationResult]:
    """Share of null trials in which either arm comparison rejects, under ``analysis.multiplicity = method``."""
    result = _simulate(_freeze({**K_ARMS, "analysis.multiplicity": method}), reps, 11)
    first, second = result.replicates["ttest"], result.replicates["ttest: high vs sham"]
    assert set(result.replicates) == {"ttest", "ttest: high vs sham"}
    return float(np.mean(first["null_reject"] | second["null_reject"])), result


@pytest.mark.parametrize(("method", "reps"), [("holm", 10_000), ("hochberg", 10_000), ("dunnett", 4_000)])
def test_k_arms_family_wise_error_is_controlled(method, reps):
    """Three arms (sham and two cell arms, 30 each), t-test, no effect: with Holm, Hochberg or Dunnett the
    family-wise type I error (either comparison rejecting) is at most alpha within the 99% band; Dunnett's, exact
    for two t statistics sharing the control, is alpha within the band (fewer trials: its quadrature is slow)."""
    fwer, result = _family_wise(method, reps)
    assert all(r["n_failed_null"] == 0 for r in result.rows)
    assert fwer <= 0.05 + _band(0.05, reps), fwer
    if method == "dunnett":
        assert abs(fwer - 0.05) <= _band(0.05, reps), fwer


def test_k_arms_without_adjustment_inflates_family_wise_error():
    """Without adjustment each comparison rejects at 5% but the family-wise error is clearly above alpha (near
    1 - 0.95^2 less the positive correlation through the shared control)."""
    reps = 10_000
    fwer, result = _family_wise("none", reps)
    for row in result.rows:
        assert abs(row["type1_error"] - 0.05) <= _band(0.05, reps)
    assert fwer > 0.05 + 5 * _band(0.05, reps), fwer
    assert fwer < 1 - 0.95**2 + _band(0.0975, reps)


# --- 6. MAR dropout -------------------------------------------------------------------------------------------------

def _mar(odds_ratio: float) -> trial.TrialData:
    s = _scenario({"dropout.mechanism": "mar", "dropout.mar_odds_ratio": odds_ratio, "dropout.fraction": 0.2,
                   "analysis.primary": "mmrm", "design.n_per_arm": 50})
    return trial.generate(s, 1000, Streams(9, 0))


@pytest.mark.parametrize("odds_ratio", [1.0, 3.0])
def test_mar_dropout_is_monotone_from_an_observed_baseline(odds_ratio):
    """MAR dropout over visits 0, 1, 3, 6, 12: the baseline is always observed and a child lost stays lost, in the
    trials with and without effect; with mar_odds_ratio 1 the dropout by month 12 is `fraction` (0.2) within 0.03."""
    data = _mar(odds_ratio)
    for observed in (data.observed, data.null_observed):
        assert observed[..., 0].all()
        assert (observed[..., 1:] <= observed[..., :-1]).all()
    lost = 1.0 - data.observed[..., -1].mean()
    if odds_ratio == 1.0:
        assert abs(lost - 0.2) < 0.03, lost
        np.testing.assert_array_equal(data.observed, data.null_observed)
    else:
        assert lost > 0.2


def test_mar_dropout_odds_ratio_per_sd_lower_score():
    """With mar_odds_ratio 3, children with lower scores at a visit leave more often before the next: the
    logistic regression of leaving on the score standardised over the children seen at that visit has slope
    -log(3) per SD (within 4 SEs) at every interval."""
    data = _mar(3.0)
    observed, values = data.observed, data.values
    for j in range(len(data.months) - 1):
        present = observed[..., j]
        n = present.sum(axis=1, keepdims=True)
        mean = np.where(present, values[..., j], 0.0).sum(axis=1, keepdims=True) / n
        sd = np.sqrt(np.where(present, (values[..., j] - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / n)
        z = ((values[..., j] - mean) / sd)[present]
        left = (~observed[..., j + 1])[present].astype(float)
        fit = sm.Logit(left, sm.add_constant(z)).fit(disp=0)
        slope, se = fit.params[1], fit.bse[1]
        assert abs(slope + math.log(3.0)) <= 4 * se, (j, slope, se)
        assert left[z < 0].mean() > left[z >= 0].mean()


# --- 7. design rules -------------------------------------------------------------------------------------------

CROSSOVER_BASE = {"design.kind": "crossover", "design.arms": ["placebo first", "cells first"],
                  "design.visits": [0, 12, 24], "design.primary_visit": 12, "design.crossover_month": 12}
BAD_DESIGNS = [
    ({"design.kind": "single_arm", "design.arms": ["a", "b"], "analysis.primary": "above_expected"}, "design.arms",
     "one arm"),
    ({"design.kind": "single_arm", "design.arms": ["a"], "analysis.primary": "above_expected",
      "arms.a.kind": "sham"}, "arms.a.kind", "gets cells"),
    ({"design.kind": "single_arm", "design.arms": ["a"]}, "analysis.primary", "above_expected"),
    ({"analysis.primary": "above_expected"}, "analysis.primary", "parallel design"),
    ({"analysis.secondary": ["count_above"]}, "analysis.secondary", "parallel design"),
    ({"analysis.primary": "period2"}, "analysis.primary", "parallel design"),
    ({"design.arms": ["a"]}, "design.arms", "two or more"),
    ({**CROSSOVER_BASE, "design.arms": ["a", "b", "c"]}, "design.arms", "two sequences"),
    ({**CROSSOVER_BASE, "design.crossover_month": 6}, "design.crossover_month", "before the last"),
    ({**CROSSOVER_BASE, "design.crossover_month": 24}, "design.crossover_month", "before the last"),
    ({**CROSSOVER_BASE, "design.visits": [0, 6, 12, 24], "design.primary_visit": 24}, "design.primary_visit",
     "period 1"),
    ({**CROSSOVER_BASE, "arms.cells first.schedule": [3]}, "arms.cells first.schedule", "month 0"),
    ({**CROSSOVER_BASE, "arms.placebo first.schedule": [0]}, "arms.placebo first.schedule", "month 12"),
    ({**CROSSOVER_BASE, "analysis.primary": "count_above"}, "analysis.primary", "crossover design"),
    ({**CROSSOVER_BASE, "arms.placebo first.kind": "placebo"}, "arms.placebo first.kind", "get cells"),
    ({"design.kind": "single_arm", "design.arms": ["a"], "analysis.primary": "above_expected",
      "analysis.dose_strata": True}, "analysis.dose_strata", "reference arm"),
    ({"design.arms": ["s", "a", "b"], "analysis.multiplicity": "dunnett", "analysis.primary": "wilcoxon"},
     "analysis.primary", "dunnett"),
    ({"design.arms": ["s", "a", "b"], "analysis.multiplicity": "dunnett", "analysis.secondary": ["fisher"]},
     "analysis.secondary", "dunnett"),
    ({"dropout.mechanism": "nmar"}, "dropout.mechanism", "mnar"),
    ({"dropout.mar_odds_ratio": 0.5}, "dropout.mar_odds_ratio", "[1, 100]"),
]


@pytest.mark.parametrize(("overrides", "path", "fragment"), BAD_DESIGNS)
def test_design_rules_give_one_line_errors(overrides, path, fragment):
    """Each broken design rule (single_arm with two arms or without cells or with a parallel analysis; a
    parallel design with a single-arm or crossover analysis; one arm; crossover with 3 arms, a switch not
    at a visit before the last, the primary visit after the switch, an arm's first dose at the wrong month;
    dunnett with a non-t analysis; bad dropout values) is a one-line ScenarioError naming the field."""
    with pytest.raises(ScenarioError) as info:
        _scenario(overrides)
    assert info.value.path == path
    assert str(info.value).startswith(f"{path}: ")
    assert "\n" not in str(info.value)
    assert fragment in str(info.value)


def test_valid_designs_pass():
    """The designs these tests simulate, and a crossover whose cells-first arm has two doses from month 0, are
    accepted."""
    for overrides in (CROSSOVER_BASE, {**CROSSOVER_BASE, "population.source": "allogeneic",
                                       "arms.cells first.schedule": [0, 6]},
                      {**SINGLE, "design.n_per_arm": 20}, K_ARMS, {**K_ARMS, "analysis.multiplicity": "dunnett"}):
        _scenario(overrides)


CLI_CASES = [
    (["design.kind=single_arm", 'design.arms=["a", "b"]'], "design.arms"),
    (["analysis.primary=above_expected", "analysis.secondary=[]"], "analysis.primary"),
    (["design.kind=crossover", 'design.arms=["a", "b", "c"]', "design.visits=[0, 12, 24]"], "design.arms"),
    (["design.kind=crossover", "design.visits=[0, 12, 24]", "design.crossover_month=24"], "design.crossover_month"),
    (["design.kind=crossover", "design.visits=[0, 12, 24]", "design.primary_visit=24"], "design.primary_visit"),
    (["design.kind=crossover", "design.visits=[0, 12, 24]", "arms.cord blood.schedule=[6]"],
     "arms.cord blood.schedule"),
    (['design.arms=["s", "a", "b"]', "analysis.multiplicity=dunnett", "analysis.primary=wilcoxon"],
     "analysis.primary"),
    (["design.randomisation=blocks", "design.block_size=3"], "design.block_size"),
    (["dropout.mechanism=nmar"], "dropout.mechanism"),
]


@pytest.mark.parametrize(("settings", "path"), CLI_CASES)
def test_cli_run_rejects_bad_designs(capsys, settings, path):
    """`cbcp-sim run --set ...` with a broken design rule exits 2 with one 'error:' line naming the field."""
    argv = ["run", "--reps", "10"]
    for setting in settings:
        argv += ["--set", setting]
    assert_one_line_error(*cli(capsys, *argv), path)


# --- reordered arms: power of the trial asked for (issue 18 point 4) -----------------------------------------


def test_reordered_repeat_dose_powers_two_doses_against_one():
    """repeat_dose under the pooled effect with design.arms = ["single dose", "two doses"] compares two doses
    with one (about 0.09 power at 36 per arm, true effect about 0.75 points), not two doses with a single dose
    silently turned into sham (about 0.39, the power of two doses against sham); the printed arms say so."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scenarios" / "repeat_dose.toml"
    s = cbcp_sim.load_scenario(path, {"design.arms": ["single dose", "two doses"]}, "pooled")
    r = cbcp_sim.simulate(s, reps=2000, seed=1, jobs=1)
    assert r.primary["comparison"] == "two doses vs single dose"
    assert 0.05 < r.primary["power"] < 0.15, r.primary
    assert 0.4 < r.true_effect < 1.1
    assert "single dose: UCB-MNC intrathecal at month 0" in str(r)
    as_sham = cbcp_sim.load_scenario(path, {"design.arms": ["single dose", "two doses"],
                                            "arms.single dose": {"kind": "sham"}}, "pooled")
    assert cbcp_sim.simulate(as_sham, reps=2000, seed=1, jobs=1).primary["power"] > 0.3


# --- what each analysis estimates, and the endpoint (issue 18 point 6) ---------------------------------------


def test_responder_analyses_say_their_estimate_is_not_in_points():
    """fisher and chisquare: the text says the estimate is a difference in responder proportions, not GMFM-66
    points, with no df; --json gives estimand and unit per analysis and at top level (old fields kept)."""
    from cbcp_sim.run.result import PRIMARY_FIELDS

    s = _scenario({"analysis.primary": "fisher", "analysis.secondary": ["chisquare", "ancova"]})
    r = cbcp_sim.simulate(s, reps=200, seed=1, jobs=1)
    text = str(r)
    for name in ("fisher (primary)", "chisquare (secondary)"):
        line = next(x for x in text.splitlines() if x.strip().startswith(name))
        assert "proportion of responders" in line and "not GMFM-66 points" in line and "no df" in line, line
    ancova = next(x for x in text.splitlines() if x.strip().startswith("ancova (secondary)"))
    assert "(GMFM-66 points)" in ancova and "proportion" not in ancova
    out = r.to_json()
    assert set(PRIMARY_FIELDS) <= set(out)
    assert out["unit"] == "proportion" and "responders" in out["estimand"]
    assert [a["unit"] for a in out["analyses"]] == ["proportion", "proportion", "GMFM-66 points"]
    assert all(a["estimand"] for a in out["analyses"])


@pytest.mark.parametrize(("endpoint", "words"), [("change", "change from baseline to month 12"),
                                                 ("final", "final score at month 12, not the change")])
def test_every_run_says_its_endpoint(endpoint, words):
    """The text and --json say whether the endpoint is the change from baseline or the final score, and the
    t-test's estimand follows it (ancova's does not: it adjusts for baseline)."""
    s = _scenario({"analysis.endpoint": endpoint, "analysis.secondary": ["ttest"]})
    r = cbcp_sim.simulate(s, reps=100, seed=1, jobs=1)
    endpoint_line = next(x for x in str(r).splitlines() if x.startswith("  endpoint "))
    assert words in endpoint_line and "ancova adjusts for baseline" in endpoint_line
    out = r.to_json()
    assert out["endpoint"] == endpoint and words in out["endpoint_text"]
    ttest = out["analyses"][1]["estimand"]
    assert ("change from baseline" in ttest) == (endpoint == "change")


def test_single_arm_and_normal_model_estimands():
    """Single-arm analyses compare changes whatever the endpoint; count_above is a proportion; the normal model
    is in outcome units."""
    from cbcp_sim.run.result import estimand, unit

    s = _scenario({"design.kind": "single_arm", "design.arms": ["cells"], "analysis.primary": "count_above",
                   "analysis.secondary": ["above_expected"], "design.blinding": "open"})
    assert unit(s, "count_above") == "proportion" and "not GMFM-66 points" in estimand(s, "count_above")
    assert unit(s, "above_expected") == "GMFM-66 points"
    r = cbcp_sim.simulate(s, reps=50, seed=1, jobs=1)
    assert "count_above and above_expected compare changes whatever the endpoint" in r.to_json()["endpoint_text"]
    plain = _scenario({"outcome.model": "normal"})
    assert unit(plain, "ancova") == "outcome units" and "(outcome units)" in estimand(plain, "ancova")
