"""Group-sequential monitoring on the trial calendar (:mod:`cbcp_sim.run.monitoring`).

- type I error of OBF and Pocock designs with one or two interims stays at alpha (normal model, ANCOVA, dropout
  and missed visits, so the information fractions vary between trials); non-binding futility keeps it at most
  alpha and its stops happen;
- power and stopping probabilities agree with the Lan-DeMets recursion (``boundaries.crossing``) within MC error
  plus the t-versus-z allowance, computed numerically from an exact-in-distribution reference of the t-tests;
  the fixed design is at least as powerful as OBF, and OBF more than Pocock;
- ``look_dates`` and ``fractions`` on hand-made arrays; calendar looks (skipped at or after the final analysis);
  expected children and duration; determinism over jobs; scenario validation.

Runs use the plain normal outcome model, one-sided alpha 0.025, and fixed seeds (the calendar costs about 13 us
per child and trial, so runs are kept to a few hundred thousand child-trials each).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest
from scipy.special import ndtr, ndtri, stdtr

from cbcp_sim.errors import ScenarioError
from cbcp_sim.run import engine
from cbcp_sim.run.monitoring import MIN_GAP, bounds, fractions, look_dates
from cbcp_sim.run.result import SimulationResult
from cbcp_sim.scenario import Scenario, Sequential, default_scenario_path, load_scenario
from cbcp_sim.scenario.boundaries import boundaries, crossing

ALPHA = 0.025
NORMAL = {"outcome.model": "normal", "analysis.primary": "ancova", "analysis.secondary": [], "design.sides": 1,
          "design.alpha": ALPHA, "operations.enabled": True}


def scenario(overrides: dict[str, Any]) -> Scenario:
    return load_scenario(default_scenario_path(), {**NORMAL, **overrides})


def band(p: float, reps: int) -> float:
    """Three Monte Carlo standard errors of a proportion p estimated from reps trials."""
    return 3.0 * math.sqrt(p * (1.0 - p) / reps)


# ---- the runs (each simulated once per session) ------------------------------------------------------------------

#: Type I error: 15 children per arm, ANCOVA, 10% dropout by month 12 and the default 3% missed visits (so the
#: information fraction at each look varies), no effect. "obf_1_futility" shares obf_1's seed: the same trials.
TYPE1_REPS = 6000
TYPE1 = {
    "obf_1": ({"sequential.spending": "obf", "sequential.interims": [0.5]}, 11),
    "obf_2": ({"sequential.spending": "obf", "sequential.interims": [0.3, 0.65]}, 12),
    "pocock_1": ({"sequential.spending": "pocock", "sequential.interims": [0.5]}, 13),
    "pocock_2": ({"sequential.spending": "pocock", "sequential.interims": [0.3, 0.65]}, 14),
    "obf_1_futility": ({"sequential.spending": "obf", "sequential.interims": [0.5], "sequential.futility": [0.0]},
                       11),
}
TYPE1_COMMON = {"design.n_per_arm": 15, "outcome.effect": 0.0, "dropout.fraction": 0.1}

#: Power: t-test of the change, 50 per arm, no dropout and no missed visits, so every child has a primary outcome
#: and the interim at 0.5 falls on the 50th of 100 primary visits (fraction exactly 0.5). SD of the change
#: sd sqrt(2 (1 - rho)) = 5.5; the effect gives an expected final z (drift) of 2.8. Both spendings share a seed.
N_ARM = 50
SD_CHANGE = 5.5
DRIFT = 2.8
EFFECT = DRIFT * SD_CHANGE * math.sqrt(2.0 / N_ARM)
POWER_REPS = 5000
POWER_COMMON = {"design.n_per_arm": N_ARM, "outcome.effect": EFFECT, "outcome.sd": 5.5, "outcome.correlation": 0.5,
                "analysis.primary": "ttest", "dropout.fraction": 0.0, "operations.missed_visit": 0.0,
                "sequential.interims": [0.5]}
POWER_SEED = 21

OTHER = {
    # a calendar look long after the trial's end: skipped in every trial, the design is the fixed one
    "calendar_late": ({"design.n_per_arm": 15, "outcome.effect": 3.0, "sequential.timing": "calendar",
                       "sequential.interims": [200.0]}, 2000, 31),
    # a calendar look during follow-up and one after the end
    "calendar_mid": ({"design.n_per_arm": 15, "outcome.effect": 3.0, "sequential.timing": "calendar",
                      "sequential.interims": [15.0, 200.0]}, 1000, 32),
    # slow screening: enrolment (about 30 months) outlasts the 12-month primary visit delay; a large effect
    "slow_enrolment": ({"design.n_per_arm": 20, "outcome.effect": 12.0, "dropout.fraction": 0.0,
                        "operations.screening_rate": 1.5, "sequential.interims": [0.5]}, 1000, 41),
}


@functools.cache
def run(name: str) -> SimulationResult:
    if name in TYPE1:
        overrides, seed = TYPE1[name]
        return engine.simulate(scenario({**TYPE1_COMMON, **overrides}), TYPE1_REPS, seed)
    if name in ("power_obf", "power_pocock"):
        spending = name.removeprefix("power_")
        return engine.simulate(scenario({**POWER_COMMON, "sequential.spending": spending}), POWER_REPS, POWER_SEED)
    overrides, reps, seed = OTHER[name]
    return engine.simulate(scenario(overrides), reps, seed)


# ---- an exact-in-distribution reference for the power runs ---------------------------------------------------------


@functools.cache
def t_reference(spending: str, reps: int = 400_000, seed: int = 2024) -> tuple[np.ndarray, np.ndarray]:
    """z statistics ``(reps, 2)`` of the power runs' design, simulated from sufficient statistics.

    Pooled two-sample t-tests of N(effect, 1) against N(0, 1) (SD units) at the interim (the first 50 of the
    100 children, whose arm split is hypergeometric, as a random enrolment order gives) and at the final look
    (50 per arm), each turned into z through its one-sided p-value as :mod:`cbcp_sim.run.monitoring` does.
    Returns the z statistics and the final look's one-sided fixed-design decisions.
    """
    rng = np.random.default_rng(seed)
    n = N_ARM
    delta = DRIFT * math.sqrt(2.0 / n)
    treated_first = rng.hypergeometric(n, n, n, size=reps).astype(float)  # treated among the first 50 seen
    # (control, treated) children added at each look: n of the 2n are seen at the interim
    blocks = {0: (n - treated_first, treated_first), 1: (treated_first, n - treated_first)}
    mean, ss, count = np.zeros((2, reps)), np.zeros((2, reps)), np.zeros((2, reps))
    z = np.empty((reps, 2))
    for look in (0, 1):
        for arm in (0, 1):
            d = blocks[look][arm]
            block_mean = rng.standard_normal(reps) / np.sqrt(d) + (delta if arm else 0.0)
            block_ss = 2.0 * rng.standard_gamma((d - 1.0) / 2.0)
            total = count[arm] + d
            ss[arm] += block_ss + count[arm] * d / total * (mean[arm] - block_mean) ** 2
            mean[arm] = (mean[arm] * count[arm] + block_mean * d) / total
            count[arm] = total
        df = count.sum(axis=0) - 2.0
        t = (mean[1] - mean[0]) / np.sqrt(ss.sum(axis=0) / df * (1.0 / count[0] + 1.0 / count[1]))
        z[:, look] = -ndtri(stdtr(df, -t))
    return z, z[:, 1] >= -ndtri(ALPHA)


def stops(z: np.ndarray, critical: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per path the efficacy stop at each look (no futility) and the rejection at any look."""
    cross = z >= critical
    first = cross & (np.cumsum(cross, axis=1) == 1)
    return first, cross.any(axis=1)


# ---- 1. type I error ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["obf_1", "obf_2", "pocock_1", "pocock_2"])
def test_type1_error_at_alpha(name):
    """Rejection at any look under no effect is within 3 MCSE of alpha; each interim is held at (the first
    primary visit at or after) its planned fraction."""
    seq = run(name).sequential
    assert abs(seq["type1_error"] - ALPHA) <= band(ALPHA, TYPE1_REPS), seq
    assert seq["type1_mcse"] == pytest.approx(math.sqrt(seq["type1_error"] * (1 - seq["type1_error"]) / TYPE1_REPS))
    # no effect: the runs with and without it are the same trials
    assert seq["power"] == seq["type1_error"]
    assert seq["stop_efficacy"] == seq["null_stop_efficacy"]
    planned = TYPE1[name][0]["sequential.interims"]
    assert seq["looks"] == len(planned) + 1
    for k, t in enumerate(planned):
        # the look falls on the ceil(t m)-th of m primary visits: fraction in [t, t + 1/m), m about 26 here
        assert t <= seq["look_fraction"][k] < t + 1.0 / 20
        assert seq["look_held"][k] == 1.0
    assert seq["look_fraction"][-1] == 1.0
    assert seq["stop_futility"] == [0.0] * seq["looks"]


def test_type1_error_pooled():
    """The four designs' type I errors (independent seeds) average within 3 MCSE of alpha over 24,000 trials."""
    mean = np.mean([run(name).sequential["type1_error"] for name in ("obf_1", "obf_2", "pocock_1", "pocock_2")])
    assert abs(mean - ALPHA) <= band(ALPHA, 4 * TYPE1_REPS)


def test_nonbinding_futility_keeps_type1_error():
    """Non-binding futility at z = 0 after half the information: the efficacy bounds are those without futility,
    so on the same trials a rejection with futility is one without (type I error no larger, the same interim
    efficacy stops); the type I error is at most alpha within MC error, near the analytic value with futility
    respected; half the trials stop for futility at the interim (z there is exactly N(0, 1) under no effect)."""
    fut, plain = run("obf_1_futility").sequential, run("obf_1").sequential
    assert fut["type1_error"] <= plain["type1_error"]
    assert fut["null_stop_efficacy"][0] == plain["null_stop_efficacy"][0]
    assert fut["type1_error"] <= ALPHA + band(ALPHA, TYPE1_REPS)
    b = boundaries([0.5, 1.0], ALPHA, "obf", futility=[0.0])
    expected = crossing(b, 0.0)[0].sum()
    assert expected < ALPHA
    assert abs(fut["type1_error"] - expected) <= band(expected, TYPE1_REPS)
    assert abs(fut["null_stop_futility"][0] - 0.5) <= band(0.5, TYPE1_REPS)
    assert fut["null_stop_futility"][-1] == 0.0
    assert sum(fut["null_stop_efficacy"]) + sum(fut["null_stop_futility"]) <= 1.0


# ---- 2. power and stopping probabilities against theory ---------------------------------------------------------


@pytest.mark.parametrize("spending", ["obf", "pocock"])
def test_power_and_stops_match_crossing(spending):
    """Stop for efficacy at the interim and at the final look, and power, against ``crossing(b, 2.8)``.

    The simulated z's come from t-tests (df 48 at the interim, 98 at the end) with a random arm split at the
    interim; z from a t p-value has a lower upper tail than N(drift sqrt(t), 1), most at the interim's high
    bound. The allowance for each quantity is |reference - crossing| + 3 MCSE of the reference, the reference
    being those t-tests simulated exactly from sufficient statistics (400,000 paths): 0.024 for the interim
    stop (reference 0.141 against 0.163 for OBF), 0.013-0.017 for the final stop, 0.009-0.014 for power
    (``boundaries`` itself matches rpact to 1e-7). Besides, the simulation agrees with the reference within
    3 combined MCSE.
    """
    result = run(f"power_{spending}")
    seq = result.sequential
    assert seq["look_fraction"] == [0.5, 1.0]  # 50 of 100 primary visits: the planned fraction exactly
    assert seq["look_held"] == [1.0, 1.0]
    assert seq["look_months"][0] < seq["look_months"][1]
    b = boundaries([0.5, 1.0], ALPHA, spending)
    analytic_stops, analytic_futility = crossing(b, DRIFT)
    assert analytic_futility.sum() == pytest.approx(0.0, abs=1e-8)
    z, _ = t_reference(spending)
    ref_first, ref_reject = stops(z, b.critical_z)
    reps_ref = len(z)
    simulated = [*seq["stop_efficacy"], seq["power"]]
    analytic = [*analytic_stops, analytic_stops.sum()]
    reference = [*ref_first.mean(axis=0), ref_reject.mean()]
    for label, sim, theory, ref in zip(("interim stop", "final stop", "power"), simulated, analytic, reference,
                                       strict=True):
        mcse_ref = math.sqrt(ref * (1 - ref) / reps_ref)
        allowance = abs(ref - theory) + 3.0 * mcse_ref
        assert allowance < 0.03, (label, allowance)  # the t-versus-z shift at 50 per arm is small
        assert abs(sim - theory) <= band(ref, POWER_REPS) + allowance, (label, sim, theory, allowance)
        combined = 3.0 * math.sqrt(ref * (1 - ref) / POWER_REPS + mcse_ref**2)
        assert abs(sim - ref) <= combined, (label, sim, ref)
    assert seq["stop_futility"] == [0.0, 0.0]
    assert seq["power"] == pytest.approx(sum(seq["stop_efficacy"]), abs=1e-12)
    assert seq["mcse"] == pytest.approx(math.sqrt(seq["power"] * (1 - seq["power"]) / POWER_REPS))
    # the same trials without the effect: type I error at alpha (t-test of the change, 50 per arm)
    assert abs(seq["type1_error"] - ALPHA) <= band(ALPHA, POWER_REPS)


def test_fixed_design_beats_obf_beats_pocock():
    """At the same maximum n: fixed-design power >= OBF group-sequential power > Pocock's.

    Analytic (normal z): 0.7996 >= 0.7981 > 0.7508. In the simulation the fixed design (the primary row,
    one-sided) and the GS designs are the same trials, so: every GS rejection at the final look is a fixed
    rejection (its bound is above z_{1-alpha}); the fixed minus OBF power is at least -3 SE of a paired
    difference, whose variance is at most P(the decisions differ) / R (from the reference: about 0.0035); and
    Pocock's power is lower than OBF's (a 0.05 difference on the same trials).
    """
    obf, pocock = run("power_obf"), run("power_pocock")
    fixed = obf.primary["power"]
    assert pocock.primary["power"] == fixed  # the primary analysis does not depend on the monitoring
    assert ndtr(DRIFT + ndtri(ALPHA)) >= crossing(boundaries([0.5, 1.0], ALPHA, "obf"), DRIFT)[0].sum()
    assert (crossing(boundaries([0.5, 1.0], ALPHA, "obf"), DRIFT)[0].sum()
            > crossing(boundaries([0.5, 1.0], ALPHA, "pocock"), DRIFT)[0].sum())
    for result, spending in ((obf, "obf"), (pocock, "pocock")):
        b = boundaries([0.5, 1.0], ALPHA, spending)
        assert b.critical_z[-1] >= -ndtri(ALPHA)
        seq = result.sequential
        assert seq["power"] - seq["stop_efficacy"][0] <= fixed
    z, fixed_ref = t_reference("obf")
    _, gs_ref = stops(z, boundaries([0.5, 1.0], ALPHA, "obf").critical_z)
    differ = np.mean(fixed_ref != gs_ref)
    assert differ < 0.02
    assert fixed - obf.sequential["power"] >= -3.0 * math.sqrt(differ / POWER_REPS)
    assert pocock.sequential["power"] < obf.sequential["power"]


# ---- 3. look dates and information fractions ---------------------------------------------------------------------

#: Row 0: five children seen (primary visits at months 1-5), the sixth not; row 1: nobody seen; row 2: one child.
DATES = np.array([[5.0, 1.0, 3.0, 2.0, 4.0, 9.0]] * 3)
SEEN = np.array([[True, True, True, True, True, False],
                 [False] * 6,
                 [False, False, True, False, False, False]])


def test_information_looks_take_the_ceil_tm_th_primary_visit():
    """The interim at fraction t falls on the ceil(t m)-th primary visit seen; the final look on the last;
    a trial with no primary outcome has no look; an interim not before the final look is skipped."""
    q = Sequential(interims=(0.2, 0.5, 0.6))
    dates = look_dates(q, DATES, SEEN)
    np.testing.assert_array_equal(dates[0], [1.0, 3.0, 3.0, 5.0])  # ceil(1) = 1, ceil(2.5) = 3, ceil(3) = 3
    assert np.isnan(dates[1]).all()
    np.testing.assert_array_equal(np.isnan(dates[2]), [True, True, True, False])
    assert dates[2, -1] == 3.0
    t = fractions(dates, DATES, SEEN)
    # look 3 adds nothing to look 2 (the same date): skipped; the final fraction is always 1
    np.testing.assert_array_equal(t[0], [0.2, 0.6, np.nan, 1.0])
    np.testing.assert_array_equal(t[1], [np.nan, np.nan, np.nan, 1.0])
    np.testing.assert_array_equal(t[2], [np.nan, np.nan, np.nan, 1.0])


def test_information_look_rank_is_robust_to_rounding():
    """0.28 x 25 is 7.000000000000001 in floating point: the look is still on the 7th primary visit, not the 8th."""
    assert math.ceil(25 * 0.28) == 8  # the naive rank would be one too late
    dates = np.arange(1.0, 26.0)[None, :]
    seen = np.ones_like(dates, dtype=bool)
    looks = look_dates(Sequential(interims=(0.28,)), dates, seen)
    np.testing.assert_array_equal(looks, [[7.0, 25.0]])
    np.testing.assert_allclose(fractions(looks, dates, seen), [[0.28, 1.0]], rtol=0, atol=1e-12)


def test_calendar_looks():
    """Calendar looks fall on their month; one at or after the final look (the last primary visit) is skipped,
    as is one before any primary outcome or adding no information to the look before it."""
    q = Sequential(interims=(0.5, 2.2, 2.5, 3.5, 5.0, 7.0), timing="calendar")
    dates = look_dates(q, DATES, SEEN)
    np.testing.assert_array_equal(dates[0], [0.5, 2.2, 2.5, 3.5, np.nan, np.nan, 5.0])
    assert np.isnan(dates[1]).all()
    np.testing.assert_array_equal(dates[2], [0.5, 2.2, 2.5, np.nan, np.nan, np.nan, 3.0])
    t = fractions(dates, DATES, SEEN)
    np.testing.assert_array_equal(t[0], [np.nan, 0.4, np.nan, 0.6, np.nan, np.nan, 1.0])
    np.testing.assert_array_equal(t[2], [np.nan] * 6 + [1.0])


def test_fractions_skip_a_look_too_close_to_the_final():
    """With 1000 primary outcomes a look after 999 leaves less than MIN_GAP to the final look: skipped; after
    997 it is held (0.997), and fractions are rounded to 0.001."""
    assert 1.0 / 1000 < MIN_GAP < 3.0 / 1000
    primary = np.arange(1.0, 1001.0)[None, :]
    seen = np.ones_like(primary, dtype=bool)
    t = fractions(np.array([[997.5, 999.5, 1000.0]]), primary, seen)
    np.testing.assert_allclose(t, [[0.997, np.nan, 1.0]], rtol=0, atol=1e-12)
    t = fractions(np.array([[1.0 / 3 * 1000, 1000.0]]), primary, seen)
    np.testing.assert_allclose(t, [[0.333, 1.0]], rtol=0, atol=1e-12)


def test_bounds_at_the_actual_fractions():
    """Each trial's bounds are those of its held looks; a skipped look gets +inf (efficacy) and -inf (futility)."""
    s = scenario({"sequential.interims": [0.3, 0.6], "sequential.futility": [-1.0, 0.0]})
    t = np.array([[0.3, 0.6, 1.0], [np.nan, 0.55, 1.0], [0.3, 0.6, 1.0], [np.nan, np.nan, 1.0]])
    eff, fut = bounds(s, t)
    full = boundaries([0.3, 0.6, 1.0], ALPHA, "obf", futility=[-1.0, 0.0])
    part = boundaries([0.55, 1.0], ALPHA, "obf", futility=[0.0])
    np.testing.assert_allclose(eff[0], full.critical_z, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(eff[2], eff[0])
    np.testing.assert_allclose(eff[1], [np.inf, *part.critical_z], rtol=0, atol=1e-12)
    np.testing.assert_allclose(eff[3], [np.inf, np.inf, -ndtri(ALPHA)], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(fut[0], [-1.0, 0.0, -np.inf])
    np.testing.assert_array_equal(fut[1], [-np.inf, 0.0, -np.inf])
    np.testing.assert_array_equal(fut[3], [-np.inf, -np.inf, -np.inf])


# ---- 4. calendar timing ------------------------------------------------------------------------------------------


def test_calendar_look_after_the_end_gives_the_fixed_design():
    """A look at month 200 is after every trial's final analysis: never held, so the group-sequential decision
    is the primary analysis's (one-sided, sides = 1) replicate by replicate, as are type I error, the children
    (all of them) and the duration (database lock)."""
    result = run("calendar_late")
    seq = result.sequential
    assert seq["look_held"] == [0.0, 1.0]
    assert math.isnan(seq["look_months"][0]) and math.isnan(seq["look_fraction"][0])
    assert seq["stop_efficacy"][0] == seq["stop_futility"][0] == seq["null_stop_efficacy"][0] == 0.0
    assert seq["power"] == result.primary["power"]
    assert seq["type1_error"] == result.primary["type1_error"]
    assert 0.1 < seq["power"] < 0.9  # an informative comparison
    assert seq["expected_children"] == seq["null_expected_children"] == 30
    assert seq["expected_months"] == pytest.approx(result.operations["database_lock"]["mean"], rel=1e-12)


def test_calendar_look_during_follow_up():
    """A look at month 15 (primary visits run from about month 13 to 18) is held on that date in most trials,
    with a fraction strictly between 0 and 1; the look at month 200 never is."""
    seq = run("calendar_mid").sequential
    assert seq["look_held"][0] > 0.9
    assert seq["look_months"][0] == 15.0
    assert 0.0 < seq["look_fraction"][0] < 1.0
    assert seq["look_held"][1:] == [0.0, 1.0]
    assert seq["stop_efficacy"][1] == 0.0


def test_skipped_look_summary_is_silent(recwarn):
    """Summarising a look that no trial held gives NaN month and fraction without a RuntimeWarning."""
    engine.simulate(scenario(OTHER["calendar_late"][0]), 50, 3)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in recwarn]


# ---- 5. expected children and duration -----------------------------------------------------------------------------

ALL_RUNS = [*TYPE1, "power_obf", "power_pocock", *OTHER]


@pytest.mark.parametrize("name", ALL_RUNS)
def test_expected_children_and_months_bounded(name):
    """In every run: expected children at most N and expected months at most the mean database lock, with and
    without the effect; the stopping probabilities add up to power and type I error and to at most 1."""
    result = run(name)
    seq = result.sequential
    n = sum(result.scenario.design.n_per_arm)
    lock = result.operations["database_lock"]["mean"]
    for prefix, rejected in (("", seq["power"]), ("null_", seq["type1_error"])):
        assert seq[f"{prefix}expected_children"] <= n
        assert seq[f"{prefix}expected_months"] <= lock + 1e-9
        assert sum(seq[f"{prefix}stop_efficacy"]) == pytest.approx(rejected, abs=1e-12)
        assert sum(seq[f"{prefix}stop_efficacy"]) + sum(seq[f"{prefix}stop_futility"]) <= 1.0 + 1e-12
        assert seq[f"{prefix}stop_futility"][-1] == 0.0
    assert seq["look_held"][-1] == 1.0 and seq["look_fraction"][-1] == 1.0


def test_early_stop_during_enrolment_saves_children():
    """Slow screening (about 1.3 children randomised a month) keeps enrolment going past the interim (the 20th of
    40 primary visits); with a large effect most trials stop there, before every child is randomised: fewer
    children and months than planned. Without the effect few trials stop early."""
    result = run("slow_enrolment")
    seq = result.sequential
    assert seq["look_months"][0] < result.operations["last_child_in"]["mean"]
    assert seq["stop_efficacy"][0] > 0.8
    assert seq["expected_children"] < 40 - 2
    assert seq["expected_months"] < result.operations["database_lock"]["mean"] - 5
    assert seq["null_expected_children"] > seq["expected_children"]
    assert seq["null_expected_months"] > seq["expected_months"]


# ---- 6. determinism ------------------------------------------------------------------------------------------------


def test_jobs_do_not_change_the_monitoring():
    """jobs = 1 and jobs = 2 give the same group-sequential summary (three chunks, two interims with futility)."""
    s = scenario({"design.n_per_arm": 10, "outcome.effect": 4.0, "sequential.interims": [0.4, 0.7],
                  "sequential.futility": [-0.5, 0.0]})
    one = engine.simulate(s, 600, 5, jobs=1, chunk_size=200)
    two = engine.simulate(s, 600, 5, jobs=2, chunk_size=200)
    assert one.sequential is not None
    np.testing.assert_equal(two.sequential, one.sequential)
    np.testing.assert_equal(two.primary, one.primary)
    assert sum(one.sequential["stop_futility"]) > 0.0  # the futility bounds are exercised


# ---- 7. validation -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "field", "fragment"), [
    ({"operations.enabled": False, "sequential.interims": [0.5]}, "sequential.interims", "operations.enabled"),
    ({"sequential.interims": [0.5, 1.0]}, "sequential.interims", "(0, 1)"),
    ({"sequential.interims": [1.5]}, "sequential.interims", "(0, 1)"),
    ({"sequential.interims": [0.6, 0.5]}, "sequential.interims", "increasing"),
    ({"sequential.interims": [0.5], "sequential.futility": [0.0, 0.1]}, "sequential.futility", "one bound"),
    ({"sequential.futility": [0.0]}, "sequential.futility", "one bound"),
    ({"sequential.interims": [0.5], "design.arms": ["a", "b", "c"]}, "sequential.interims", "3 arms"),
    ({"sequential.interims": [0.5], "sequential.futility": [3.5]}, "sequential.futility", "efficacy"),
    ({"sequential.interims": [0.5], "sequential.futility": [3.5], "sequential.binding": True},
     "sequential.futility", "efficacy"),
])
def test_invalid_sequential_settings(overrides, field, fragment):
    with pytest.raises(ScenarioError) as info:
        scenario(overrides)
    assert info.value.path == field
    assert fragment in info.value.message


def test_valid_sequential_settings_load():
    """Calendar looks are months (beyond 1); a single-arm design can be monitored."""
    s = scenario({"sequential.timing": "calendar", "sequential.interims": [6.0, 30.0]})
    assert s.sequential.interims == (6.0, 30.0)
    single = load_scenario(default_scenario_path().parent / "lee2012_single_arm.toml",
                           {"operations.enabled": True, "sequential.interims": [0.5]})
    assert single.sequential.interims == (0.5,)
