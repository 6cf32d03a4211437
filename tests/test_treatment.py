"""The cell-effect model (cbcp_sim.models.treatment) and the arms' regimens (cbcp_sim.scenario.products).

Spec (treatment.py module docstring): one dose k of product c at month t_k with dose d_k gives child i, s = t - t_k
months later, ``E_ik(t) = r_k * response_i * modifier_ik * Emax_c(d_k) * course_c(s)`` with
``Emax(d) = emax d^h / (ed50^h + d^h)`` (or ``emax [d >= threshold]``), ``course(s) = (1 - exp(-s/onset)) /
(1 - exp(-peak/onset))`` up to the peak and ``p + (1 - p) 0.5^((s - peak)/half_life)`` after it; doses combine
under the ceiling ``C_i = ceiling_fraction * limit_i`` as ``C_i (1 - prod_k (1 - min(E_ik, C_i) / C_i))``.

Every expected value below is written out from that formula in this file (scalar Python, ``math``), never taken
from the implementation. Hypothesis examples are derandomized (``stable``) and few, so the file runs in seconds.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import cbcp_sim
from cbcp_sim.errors import ScenarioError
from cbcp_sim.models import treatment, trial
from cbcp_sim.models.streams import Streams
from cbcp_sim.scenario import scenario_from_dict
from cbcp_sim.scenario.products import PRESETS, Course, Treatment, half_life_for

from .support import assert_one_line_error, cli, floats, stable

PRODUCTS = tuple(PRESETS)
KINDS = ("cells", "sham", "placebo", "nothing")
BLINDINGS = ("double", "assessor", "open")


# --- independent formulas (scalar, from the module docstring) ------------------------------------------------


def peak_effect(c: Course, d: float) -> float:
    """Emax_c(d): emax d^h / (ed50^h + d^h), or emax for d >= threshold (and d > 0)."""
    if d <= 0.0:
        return 0.0
    if c.model == "threshold":
        return c.emax if d >= c.threshold else 0.0
    return c.emax * d**c.hill / (c.ed50**c.hill + d**c.hill)


def course_share(c: Course, s: float) -> float:
    """course_c(s): 0 before the dose, rise to 1 at the peak, then waning toward the persistent fraction."""
    if s <= 0.0:
        return 0.0
    if s <= c.peak_months:
        return (1.0 - math.exp(-s / c.onset_months)) / (1.0 - math.exp(-c.peak_months / c.onset_months))
    p = c.persistent_fraction
    return p + (1.0 - p) * 0.5 ** ((s - c.peak_months) / c.waning_half_life_months)


def modifier_of(t: Treatment, gmfcs: int, topography: int, age_at_dose: float, route: str) -> float:
    m = t.modifiers
    age_factor = m.age_factors[bisect.bisect_right(m.age_breaks, age_at_dose)]
    return m.gmfcs[gmfcs - 1] * m.topography[topography] * age_factor * (m.intrathecal if route == "intrathecal"
                                                                         else 1.0)


def expected_effect(t: Treatment, regimen, month: float, *, gmfcs: int, topography: int, age: float,
                    dose: float, limit: float, response: float) -> float:
    """The documented combination C (1 - prod_k (1 - min(E_k, C) / C)), or sum_k E_k without a ceiling."""
    effects = []
    for k, d in enumerate(regimen.doses):
        r_k = 1.0 if k == 0 else t.relative_efficacy
        e = (r_k * response * modifier_of(t, gmfcs, topography, age + d.month / 12.0, d.route)
             * peak_effect(d.course, dose if d.dose is None else d.dose) * course_share(d.course, month - d.month))
        effects.append(e)
    if math.isinf(t.ceiling_fraction):
        return sum(effects)
    ceiling = t.ceiling_fraction * limit
    remaining = 1.0
    for e in effects:
        remaining *= 1.0 - min(e, ceiling) / ceiling
    return ceiling * (1.0 - remaining)


# --- helpers ---------------------------------------------------------------------------------------------------


def build(overrides: dict[str, Any]):
    """A scenario from schema defaults plus dotted-path overrides."""
    return scenario_from_dict({}, overrides)


def course(model: str = "emax", emax: float = 4.0, ed50: float = 3.0, hill: float = 2.0, threshold: float = 2.0,
           onset: float = 1.5, peak: float = 6.0, half_life: float = 4.0, persistent: float = 0.5) -> Course:
    return Course(product="test", model=model, emax=emax, ed50=ed50, hill=hill, threshold=threshold,
                  onset_months=onset, peak_months=peak, waning_half_life_months=half_life,
                  persistent_fraction=persistent)


def children(n: int = 60, seed: int = 3, *, dose: float = 10.0, response: tuple[float, float] = (0.5, 2.0),
             non_responders: int = 5, limit: tuple[float, float] = (40.0, 95.0)) -> dict[str, np.ndarray]:
    """Explicit children covering every GMFCS level, topography and ages on both sides of 5 years; the first
    ``non_responders`` have response 0."""
    rng = np.random.default_rng(seed)
    resp = rng.uniform(*response, n)
    resp[:non_responders] = 0.0
    return {"gmfcs": np.arange(n) % 5 + 1, "topography": np.arange(n) % 3, "age": rng.uniform(1.0, 10.0, n),
            "dose": np.full(n, dose), "limit": rng.uniform(*limit, n), "child_response": resp}


def effect_at(s, arm: int, months, kids: dict[str, np.ndarray]) -> np.ndarray:
    return treatment.cell_effect(s.treatment, s.regimens[arm], np.atleast_1d(np.asarray(months, dtype=float)),
                                 **kids)


def expected_for_children(s, arm: int, month: float, kids: dict[str, np.ndarray]) -> np.ndarray:
    return np.array([expected_effect(s.treatment, s.regimens[arm], month, gmfcs=int(kids["gmfcs"][i]),
                                     topography=int(kids["topography"][i]), age=float(kids["age"][i]),
                                     dose=float(kids["dose"][i]), limit=float(kids["limit"][i]),
                                     response=float(kids["child_response"][i]))
                     for i in range(kids["gmfcs"].size)])


MONTHS = np.array([0.0, 0.5, 1.0, 3.0, 6.0, 6.5, 9.0, 12.0, 18.0, 24.0, 60.0])
ALLOGENEIC = {"population.source": "allogeneic", "population.allogeneic_dose": 10.0}


# --- 1. zero dose, and arms without cells ----------------------------------------------------------------------


@pytest.mark.parametrize("c", [course(model="emax"), course(model="emax", hill=0.1, ed50=1e-6),
                               course(model="threshold", threshold=2.0), course(model="threshold", threshold=0.0)],
                         ids=["emax", "emax-shallow", "threshold", "threshold-at-0"])
def test_dose_response_is_zero_at_zero_dose(c):
    """Emax_c(0) = 0 for both forms, including a threshold of 0 (a dose of nothing has no effect)."""
    out = treatment.dose_response(c, np.array([0.0, 0.0]))
    assert np.array_equal(out, [0.0, 0.0])
    assert float(treatment.dose_response(c, 0.0)) == 0.0


@pytest.mark.parametrize("model", ["emax", "threshold"])
def test_arm_dose_zero_gives_zero_cell_effect(model):
    """arms.<name>.dose = 0: the cell effect is exactly 0 for every child and month (one and repeat doses)."""
    s = build({**ALLOGENEIC, "design.arms": ["sham", "a", "b"], "treatment.dose_response.model": model,
               "treatment.dose_response.threshold": 0.0, "arms.a.dose": 0.0,
               "arms.b.schedule": [0, 3, 6], "arms.b.dose": [0, 0, 0]})
    kids = children()
    for arm in (1, 2):
        assert np.array_equal(effect_at(s, arm, MONTHS, kids), np.zeros((kids["gmfcs"].size, MONTHS.size)))


@pytest.mark.parametrize("kind", ["sham", "placebo", "nothing"])
def test_control_regimens_have_no_cell_effect(kind):
    """A sham, placebo or nothing arm has no doses and exactly zero cell effect, whatever the cells' values."""
    s = build({"design.arms": ["ctl", "x"], "arms.x.kind": kind, "treatment.dose_response.emax": 50.0,
               "treatment.ceiling_fraction": math.inf})
    regimen = s.regimens[1]
    assert regimen.kind == kind and regimen.doses == ()
    kids = children()
    assert np.array_equal(effect_at(s, 1, MONTHS, kids), np.zeros((kids["gmfcs"].size, MONTHS.size)))


def test_simulate_sham_second_arm_values_equal_null_values():
    """trial.simulate with a sham second arm (double-blind): values == null_values for every child."""
    s = build({"design.arms": ["sham", "also sham"], "arms.also sham.kind": "sham", "design.blinding": "double",
               "design.n_per_arm": 20, "treatment.expectation_response": 2.0})
    data = trial.generate(s, 5, Streams(4, 0))
    assert np.array_equal(data.values, data.null_values)
    assert (data.under[1] == data.under[0]).all()


def test_simulate_zero_dose_cells_arm_values_equal_null_values():
    """A cells arm given dose 0 adds exactly nothing: values == null_values (same noise, zero cell effect)."""
    s = build({**ALLOGENEIC, "arms.cord blood.dose": 0.0, "design.n_per_arm": 20})
    data = trial.generate(s, 5, Streams(4, 0))
    assert np.array_equal(data.values, data.null_values)


# --- 2. dose-response -----------------------------------------------------------------------------------------


@stable(60)
@given(emax=floats(0.0, 50.0), ed50=floats(1e-3, 100.0), hill=floats(0.1, 20.0), threshold=floats(0.0, 100.0),
       model=st.sampled_from(["emax", "threshold"]), doses=st.lists(floats(0.0, 1000.0), min_size=2, max_size=8))
def test_dose_response_monotone_in_dose(emax, ed50, hill, threshold, model, doses):
    """For emax >= 0 the peak effect never falls as the dose rises, stays in [0, emax], matches the formula."""
    c = course(model=model, emax=emax, ed50=ed50, hill=hill, threshold=threshold)
    d = np.sort(np.asarray(doses))
    out = treatment.dose_response(c, d)
    assert np.all(np.diff(out) >= 0.0), (d, out)
    assert np.all((out >= 0.0) & (out <= emax))
    np.testing.assert_allclose(out, [peak_effect(c, x) for x in d], rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("threshold", [0.5, 2.0, 37.25])
def test_threshold_form_is_a_step(threshold):
    """threshold form: 0 just below the threshold, emax at it and above."""
    c = course(model="threshold", emax=3.5, threshold=threshold)
    below = np.nextafter(threshold, 0.0)
    out = treatment.dose_response(c, np.array([below, threshold, threshold * 1.0001, 2 * threshold, 1000.0]))
    assert out.tolist() == [0.0, 3.5, 3.5, 3.5, 3.5]


@pytest.mark.parametrize("hill", [0.1, 0.5, 1.0, 2.0, 5.0, 20.0])
@pytest.mark.parametrize("ed50", [0.1, 3.0, 80.0])
def test_emax_form_is_half_at_ed50_and_approaches_emax(hill, ed50):
    """emax form: exactly emax / 2 at ed50 for any Hill coefficient; rises toward emax at huge doses."""
    c = course(model="emax", emax=6.0, ed50=ed50, hill=hill)
    assert float(treatment.dose_response(c, ed50)) == pytest.approx(3.0, rel=1e-14)
    huge = ed50 * np.array([1e2, 1e4, 1e8, 1e16])
    out = treatment.dose_response(c, huge)
    assert np.all(out < 6.0 + 1e-12) and np.all(np.diff(out) >= 0.0)
    # emax - Emax(d) = emax / (1 + (d / ed50)^h): the gap shrinks like (ed50 / d)^h
    with np.errstate(over="ignore"):
        gap = 6.0 / (1.0 + (huge / ed50) ** hill)
    np.testing.assert_allclose(6.0 - out, gap, rtol=1e-6, atol=1e-13)
    assert 6.0 - out[-1] <= 6.0 * 10.0 ** (-16 * hill) + 1e-13


# --- 3. time course ---------------------------------------------------------------------------------------------


@stable(60)
@given(peak=floats(0.5, 24.0), onset_ratio=floats(0.05, 50.0), half_life=floats(0.01, 1000.0),
       persistent=floats(0.0, 0.99))
def test_time_course_peaks_at_peak(peak, onset_ratio, half_life, persistent):
    """course is 1 (to 1 ulp) at peak_months and strictly below its peak value on a fine grid before and after
    (finite waning, p < 1), so the grid's argmax is the peak; 0 at the dose. (onset >= peak / 20 keeps the rise
    short of 1 in floating point before the peak.)"""
    c = course(onset=peak * onset_ratio, peak=peak, half_life=half_life, persistent=persistent)
    before = peak * np.linspace(0.0, 1.0, 1000)[:-1]
    after = peak + np.linspace(0.0, 5.0 * half_life, 1000)[1:]
    grid = np.concatenate([before, [peak], after])
    values = treatment.time_course(c, grid)
    top = values[before.size]
    assert abs(top - 1.0) <= 2.3e-16
    assert np.all(values[: before.size] < top)
    assert np.all(values[before.size + 1:] < top)
    assert int(np.argmax(values)) == before.size
    assert values[0] == 0.0


@pytest.mark.parametrize(("peak", "onset"), [(6.0, 1.5), (6.0, 3.0), (1.0, 1.5), (2.0, 3.0), (12.0, 2.0)])
@pytest.mark.parametrize("half_life", [4.0, math.inf])
def test_time_course_is_exactly_one_at_peak(peak, onset, half_life):
    """'1 at the peak' (time_course docstring) exactly: course(peak) == 1.0, so a durable course (half-life inf,
    == 1 after the peak) is not above its own peak value."""
    c = course(onset=onset, peak=peak, half_life=half_life, persistent=0.5)
    values = treatment.time_course(c, np.array([peak, peak + 0.5]))
    assert values[0] == 1.0, (
        f"course(peak={peak:g}) with onset {onset:g} is {values[0]!r}, not 1: numerator and denominator of the "
        "rise must come from the same expm1 (numpy's and libm's differ by 1 ulp for some arguments)")
    assert values[1] <= values[0]


@pytest.mark.parametrize("product", PRODUCTS)
def test_preset_time_courses_follow_documented_formula(product):
    """Each preset resolves to its declared values, and its course is the documented formula at many months
    (0 before and at the dose, the rise, 1 at the peak, the waning toward the persistent fraction)."""
    s = build({"treatment.cells": product})
    c = s.regimens[1].doses[0].course
    preset = PRESETS[product]
    assert c.product == product
    for key in ("onset_months", "peak_months", "waning_half_life_months", "persistent_fraction"):
        assert getattr(c, key) == preset[key], key
    onset, peak, half, p = (preset[k] for k in ("onset_months", "peak_months", "waning_half_life_months",
                                                "persistent_fraction"))
    months = [-3.0, 0.0, 0.25, 1.0, 2.5, 5.9, 6.0, 6.1, 9.0, 12.0, 24.0, 120.0]
    expected = []
    for m in months:
        if m <= 0:
            expected.append(0.0)
        elif m <= peak:
            expected.append((1 - math.exp(-m / onset)) / (1 - math.exp(-peak / onset)))
        else:
            expected.append(p + (1 - p) * 0.5 ** ((m - peak) / half))
    np.testing.assert_allclose(treatment.time_course(c, np.array(months)), expected, rtol=1e-12, atol=1e-15)
    # the ref's exponential time constants: half-life = tau_w ln 2 (tau_w 6 for UCB-MNC, 12 for the others)
    tau_w = 6.0 if product == "UCB-MNC" else 12.0
    assert half == pytest.approx(tau_w * math.log(2), rel=1e-15)


@stable(40)
@given(retained=floats(0.0, 1.0), persistent=floats(0.0, 0.95), peak=floats(0.5, 11.5), onset=floats(0.01, 120.0))
@example(retained=1.0, persistent=0.5, peak=6.0, onset=1.5)
@example(retained=0.6, persistent=0.0, peak=11.5, onset=0.01)
def test_retained_fraction_sets_the_share_at_12_months(retained, persistent, peak, onset):
    """treatment.retained_fraction r (retained_months 12): time_course(course, 12) == r to 1e-12, and the derived
    half-life is (12 - peak) ln 2 / ln((1 - p) / (r - p)) (inf for r = 1)."""
    if retained < 1.0:
        retained = persistent + 0.01 + (1.0 - persistent - 0.01) * retained  # r in (p, 1]
    s = build({"treatment.retained_fraction": retained, "treatment.retained_months": 12.0,
               "treatment.persistent_fraction": persistent, "treatment.peak_months": peak,
               "treatment.onset_months": onset})
    c = s.regimens[1].doses[0].course
    assert abs(float(treatment.time_course(c, 12.0)) - retained) <= 1e-12
    if retained >= 1.0:
        assert math.isinf(c.waning_half_life_months)
    else:
        expected = (12.0 - peak) * math.log(2) / math.log((1 - persistent) / (retained - persistent))
        assert c.waning_half_life_months == pytest.approx(expected, rel=1e-12)


def test_arm_retained_fraction_applies_to_that_arm_only():
    """arms.<name>.retained_fraction with its own retained_months: that arm keeps r at that month; the other arm
    keeps its preset."""
    s = build({"design.arms": ["sham", "a", "b"], "arms.b.retained_fraction": 0.9, "arms.b.retained_months": 24.0})
    a, b = (s.regimens[i].doses[0].course for i in (1, 2))
    assert a.waning_half_life_months == PRESETS["UCB-MNC"]["waning_half_life_months"]
    assert float(treatment.time_course(b, 24.0)) == pytest.approx(0.9, abs=1e-12)


def test_treatment_retained_fraction_with_arm_peak_months():
    """treatment.retained_fraction = 0.8 and an arm that only moves its peak to 3 months: the arm's course should
    keep 0.8 at 12 months (the treatment gave no half-life, so there is nothing to conflict with)."""
    overrides = {"treatment.retained_fraction": 0.8, "design.arms": ["sham", "early"], "arms.early.peak_months": 3.0}
    c = build(overrides).regimens[1].doses[0].course  # the derived treatment half-life is not a user-given one
    assert c.peak_months == 3.0
    assert float(treatment.time_course(c, 12.0)) == pytest.approx(0.8, abs=1e-12)


def test_arm_half_life_is_not_silently_replaced_by_treatment_retained_fraction():
    """arms.<name>.waning_half_life_months = 2 with treatment.retained_fraction = 0.8: an arm's value comes from
    the arm (cells.py docstring), so the arm's course wanes with half-life 2."""
    overrides = {"treatment.retained_fraction": 0.8, "design.arms": ["sham", "fast"],
                 "arms.fast.waning_half_life_months": 2.0}
    c = build(overrides).regimens[1].doses[0].course
    assert c.waning_half_life_months == 2.0, f"{overrides}: half-life {c.waning_half_life_months:g}, not the arm's"


@stable(30)
@given(persistent=floats(0.0, 1.0), peak=floats(0.1, 60.0), onset=floats(0.01, 120.0),
       after=st.lists(floats(0.0, 1e4), min_size=1, max_size=20))
def test_infinite_half_life_is_durable(persistent, peak, onset, after):
    """waning_half_life_months = inf: course == 1 exactly at every month after the peak (and to 1 ulp at the peak
    itself; its exact value is test_time_course_is_exactly_one_at_peak's)."""
    c = course(onset=onset, peak=peak, half_life=math.inf, persistent=persistent)
    months = peak + np.asarray([1e-9, *after])
    months = months[months > peak]
    assert np.all(treatment.time_course(c, months) == 1.0)
    assert abs(float(treatment.time_course(c, peak)) - 1.0) <= 2.3e-16


@pytest.mark.parametrize(("retained", "persistent"), [(0.5, 0.5), (0.3, 0.5), (0.0, 0.0), (0.69, 0.7)])
def test_half_life_for_rejects_retained_at_or_below_persistent(retained, persistent):
    """half_life_for: r <= persistent_fraction cannot be reached by waning toward p: ScenarioError naming
    <path>.retained_fraction."""
    with pytest.raises(ScenarioError) as info:
        half_life_for(retained, persistent, 6.0, "arms.x")
    assert info.value.path == "arms.x.retained_fraction"


def test_half_life_for_values():
    """half_life_for: r = 1 gives inf; otherwise months ln 2 / ln((1 - p) / (r - p))."""
    assert math.isinf(half_life_for(1.0, 0.5, 6.0, "t"))
    assert half_life_for(0.75, 0.5, 6.0, "t") == pytest.approx(6.0, rel=1e-15)  # half of the waning part in 6
    assert half_life_for(0.25, 0.0, 6.0, "t") == pytest.approx(3.0, rel=1e-15)  # two halvings in 6 months


def test_retained_fraction_below_persistent_is_one_line_error(capsys):
    """treatment.retained_fraction below the persistent fraction: one line naming treatment.retained_fraction."""
    assert_one_line_error(*cli(capsys, "run", "--set", "treatment.retained_fraction=0.3",
                               "--set", "treatment.persistent_fraction=0.5"), "treatment.retained_fraction")


def test_half_life_and_inconsistent_retained_fraction_is_one_line_error(capsys):
    """Both treatment.waning_half_life_months and a retained_fraction implying another half-life: one line naming
    the half-life; a consistent pair is accepted."""
    assert_one_line_error(*cli(capsys, "run", "--set", "treatment.retained_fraction=0.8",
                               "--set", "treatment.waning_half_life_months=3"),
                          "treatment.waning_half_life_months")
    assert_one_line_error(*cli(capsys, "run", "--set", "arms.cord blood.retained_fraction=0.8",
                               "--set", "arms.cord blood.waning_half_life_months=3"),
                          "arms.cord blood.waning_half_life_months")
    # p 0.5, peak 6: r 0.75 at 12 months is one halving of the waning half in 6 months
    s = build({"treatment.retained_fraction": 0.75, "treatment.waning_half_life_months": 6.0})
    assert s.regimens[1].doses[0].course.waning_half_life_months == pytest.approx(6.0, rel=1e-12)


# --- 4. repeat doses --------------------------------------------------------------------------------------------


def repeat_scenario(**extra: Any):
    return build({**ALLOGENEIC, "design.arms": ["sham", "once", "twice"], "arms.once.schedule": [0],
                  "arms.twice.schedule": [0, 6], "treatment.waning_half_life_months": 4.0,
                  "treatment.persistent_fraction": 0.5, "treatment.relative_efficacy": 0.5, **extra})


def test_repeat_dose_adds_to_the_effect_at_12_months():
    """[0, 6] vs [0] (allogeneic dose 10, half-life 4, p 0.5, relative efficacy 0.5, ceiling 0.2 not reached):
    the repeat arm's effect at 12 months is strictly larger for every responder, equal (0) for non-responders."""
    s = repeat_scenario()
    kids = children()
    once, twice = effect_at(s, 1, 12.0, kids)[:, 0], effect_at(s, 2, 12.0, kids)[:, 0]
    responder = kids["child_response"] > 0
    assert np.all(once < 0.2 * kids["limit"])  # precondition: the ceiling does not bind
    assert np.all(twice[responder] > once[responder])
    assert np.all(twice[~responder] == 0.0) and np.all(once[~responder] == 0.0)
    # both arms equal (to rounding: one dose is min(E, C), two are C (1 - prod ...)) until the second dose
    np.testing.assert_allclose(effect_at(s, 2, [0.0, 3.0, 6.0], kids), effect_at(s, 1, [0.0, 3.0, 6.0], kids),
                               rtol=1e-13, atol=0.0)


@pytest.mark.parametrize("ceiling", [0.2, 0.05, math.inf])
def test_combination_formula_matches_independent_computation(ceiling):
    """Two- and three-dose regimens: cell_effect == C (1 - prod_k (1 - min(E_k, C) / C)) (sum without a ceiling),
    computed here child by child, at months before, between and after the doses."""
    s = build({**ALLOGENEIC, "design.arms": ["sham", "two", "three"], "arms.two.schedule": [0, 4],
               "arms.three.schedule": [0, 3, 9], "arms.three.dose": [10, 2, 50], "arms.three.route":
               ["intravenous", "intrathecal", "intravenous"], "treatment.modifiers.intrathecal": 1.7,
               "treatment.relative_efficacy": 0.8, "treatment.ceiling_fraction": ceiling})
    kids = children(n=40, response=(0.2, 4.0), limit=(20.0, 90.0))
    for arm in (1, 2):
        got = effect_at(s, arm, MONTHS, kids)
        for j, m in enumerate(MONTHS):
            np.testing.assert_allclose(got[:, j], expected_for_children(s, arm, m, kids), rtol=1e-12, atol=1e-14)


def test_tiny_ceiling_binds_exactly():
    """ceiling_fraction 0.001: the repeat arm's effect never exceeds 0.001 x limit and equals it exactly once a
    responder's first dose alone exceeds it (month 12); a second dose cannot add beyond the ceiling."""
    s = repeat_scenario(**{"treatment.ceiling_fraction": 0.001})
    kids = children()
    ceiling = 0.001 * kids["limit"][:, None]
    twice = effect_at(s, 2, MONTHS, kids)
    assert np.all(twice <= ceiling)
    responder = kids["child_response"] > 0
    at12 = list(MONTHS).index(12.0)
    assert np.all(twice[responder, at12] == ceiling[responder, 0])
    assert np.array_equal(twice[:, at12], effect_at(s, 1, 12.0, kids)[:, 0])


def test_relative_efficacy_zero_adds_nothing():
    """relative_efficacy 0: the second dose adds nothing (to rounding), with or without a ceiling."""
    kids = children()
    for ceiling in (0.2, 0.01, math.inf):
        s = repeat_scenario(**{"treatment.relative_efficacy": 0.0, "treatment.ceiling_fraction": ceiling})
        np.testing.assert_allclose(effect_at(s, 2, MONTHS, kids), effect_at(s, 1, MONTHS, kids), rtol=1e-13,
                                   atol=0.0)


def test_each_dose_uses_its_own_products_course():
    """cells = ["UCB-MNC", "UCT-MSC"]: dose 1 has UCB-MNC's preset course and dose-response, dose 2 UCT-MSC's;
    the effect is the documented formula with each product's values."""
    s = build({**ALLOGENEIC, "design.arms": ["sham", "mixed"], "arms.mixed.schedule": [0, 6],
               "arms.mixed.cells": ["UCB-MNC", "UCT-MSC"], "treatment.ceiling_fraction": math.inf})
    d1, d2 = s.regimens[1].doses
    for d, product in ((d1, "UCB-MNC"), (d2, "UCT-MSC")):
        assert d.course.product == product
        for key in ("model", "emax", "ed50", "hill", "threshold", "onset_months", "peak_months",
                    "waning_half_life_months", "persistent_fraction"):
            assert getattr(d.course, key) == PRESETS[product][key], (product, key)
    kids = children(n=20)
    got = effect_at(s, 1, MONTHS, kids)
    # UCT-MSC (Emax 2, ED50 0.1, Hill 1) at dose 10: 2 x 10 / 10.1; UCB-MNC (4, 3, 2): 4 x 100 / 109
    assert peak_effect(d2.course, 10.0) == pytest.approx(2.0 * 10 / 10.1, rel=1e-15)
    for j, m in enumerate(MONTHS):
        np.testing.assert_allclose(got[:, j], expected_for_children(s, 1, m, kids), rtol=1e-12, atol=1e-14)


@stable(40)
@given(emax=floats(0.0, 50.0), half_life=st.one_of(st.just(math.inf), floats(0.01, 100.0)),
       persistent=floats(0.0, 1.0), relative=floats(0.0, 10.0), ceiling=floats(1e-4, 5.0),
       schedule=st.lists(floats(0.0, 36.0), min_size=1, max_size=4, unique=True).map(sorted),
       response_scale=floats(0.0, 20.0))
def test_repeat_effect_never_exceeds_ceiling(emax, half_life, persistent, relative, ceiling, schedule,
                                             response_scale):
    """For any emax, waning, relative efficacy, schedule and response, 0 <= effect <= ceiling_fraction x limit."""
    s = build({**ALLOGENEIC, "design.arms": ["sham", "x"], "arms.x.schedule": schedule,
               "treatment.dose_response.emax": emax, "treatment.waning_half_life_months": half_life,
               "treatment.persistent_fraction": persistent, "treatment.relative_efficacy": relative,
               "treatment.ceiling_fraction": ceiling})
    kids = children(n=20, response=(0.0, response_scale + 1e-9), limit=(1.0, 99.0))
    got = effect_at(s, 1, np.arange(0.0, 48.5, 0.5), kids)
    assert np.all(np.isfinite(got))
    assert np.all(got >= 0.0)
    assert np.all(got <= ceiling * kids["limit"][:, None])


# --- 5. modifiers -----------------------------------------------------------------------------------------------


MODIFIERS = {"treatment.modifiers.gmfcs": [1.0, 0.9, 0.7, 0.5, 0.3],
             "treatment.modifiers.topography": [1.0, 0.8, 0.4],
             "treatment.modifiers.age_breaks": [3.0, 6.0],
             "treatment.modifiers.age_factors": [1.0, 0.6, 0.25],
             "treatment.modifiers.intrathecal": 2.5,
             "treatment.ceiling_fraction": math.inf}


def one_child(gmfcs: int = 1, topography: int = 0, age: float = 2.0) -> dict[str, np.ndarray]:
    return {"gmfcs": np.array([gmfcs]), "topography": np.array([topography]), "age": np.array([age]),
            "dose": np.array([10.0]), "limit": np.array([60.0]), "child_response": np.array([1.0])}


def test_gmfcs_and_topography_modifiers_scale_the_effect():
    """Effect ratios between children differing only in GMFCS level / topography equal the configured factors."""
    s = build({**ALLOGENEIC, **MODIFIERS})
    ref = effect_at(s, 1, MONTHS[1:], one_child())
    for g, factor in zip(range(1, 6), [1.0, 0.9, 0.7, 0.5, 0.3], strict=True):
        np.testing.assert_allclose(effect_at(s, 1, MONTHS[1:], one_child(gmfcs=g)) / ref, factor, rtol=1e-13)
    for topo, factor in enumerate([1.0, 0.8, 0.4]):
        np.testing.assert_allclose(effect_at(s, 1, MONTHS[1:], one_child(topography=topo)) / ref, factor,
                                   rtol=1e-13)
    # at the peak (6 months, allogeneic dose 10, UCB-MNC): 4 x 100 / 109 x 0.5 (GMFCS IV) x 0.4 (quadriplegia)
    got = float(effect_at(s, 1, 6.0, one_child(gmfcs=4, topography=2))[0, 0])
    assert got == pytest.approx(4.0 * 100 / 109 * 0.5 * 0.4, rel=1e-13)


def test_age_modifier_uses_age_at_the_dose():
    """Age factors apply to the age at each dose, age + month / 12: a child of 2.5 years dosed at month 0 is
    below the break at 3 (factor 1.0), dosed at month 6 is exactly at it (factor 0.6, breaks are closed on the
    left), and a child of 5.5 dosed at month 6 is past 6 (0.25). Compared at each dose's peak (course 1)."""
    s = build({**ALLOGENEIC, **MODIFIERS, "design.arms": ["sham", "now", "later"], "arms.later.schedule": [6]})
    peak = s.regimens[1].doses[0].course.peak_months
    base = 4.0 * 100 / 109
    now = float(effect_at(s, 1, peak, one_child(age=2.5))[0, 0])
    later = float(effect_at(s, 2, 6.0 + peak, one_child(age=2.5))[0, 0])
    assert now == pytest.approx(base * 1.0, rel=1e-13)
    assert later == pytest.approx(base * 0.6, rel=1e-13)
    assert float(effect_at(s, 2, 6.0 + peak, one_child(age=5.5))[0, 0]) == pytest.approx(base * 0.25, rel=1e-13)
    assert float(effect_at(s, 1, peak, one_child(age=5.5))[0, 0]) == pytest.approx(base * 0.6, rel=1e-13)


def test_intrathecal_route_multiplies_the_effect():
    """route = intrathecal multiplies each intrathecal dose's effect by modifiers.intrathecal (2.5); a mixed
    course multiplies only its intrathecal dose."""
    s = build({**ALLOGENEIC, **MODIFIERS, "design.arms": ["sham", "iv", "it", "mixed"],
               "arms.it.route": "intrathecal", "arms.mixed.schedule": [0, 12],
               "arms.mixed.route": ["intravenous", "intrathecal"], "treatment.relative_efficacy": 1.0})
    kid = one_child(age=1.5)  # 2.5 years at the second dose: age factor 1.0 for both doses
    iv, it = effect_at(s, 1, MONTHS[1:], kid), effect_at(s, 2, MONTHS[1:], kid)
    np.testing.assert_allclose(it / iv, 2.5, rtol=1e-13)
    # mixed at month 18: the IV dose 18 months after it, plus the IT dose (x 2.5) at its peak 6 months after it
    mixed = float(effect_at(s, 3, 18.0, kid)[0, 0])
    first = float(effect_at(s, 1, 18.0, kid)[0, 0])
    assert mixed == pytest.approx(first + 2.5 * 4.0 * 100 / 109, rel=1e-13)


# --- 6. heterogeneity -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fraction", "cv"), [(0.3, 0.5), (0.75, 1.2), (1.0, 0.7)])
def test_response_responders_and_gamma(fraction, cv):
    """treatment.response: a share 1 - responder_fraction of zeros; responders gamma with mean 1 and CV
    response_cv (tolerances ~5 Monte Carlo SE, 40,000 children)."""
    n = 40_000
    t = build({"treatment.responder_fraction": fraction, "treatment.response_cv": cv}).treatment
    r = treatment.response(t, (n // 2, n // 2), 1, Streams(7, 0))
    assert r.shape == (1, n)
    zero = r == 0.0
    share = zero.mean()
    assert abs(share - (1 - fraction)) <= 5 * math.sqrt(fraction * (1 - fraction) / n) + 1e-12
    x = r[~zero]
    assert np.all(x > 0.0)
    m = x.size
    assert abs(x.mean() - 1.0) <= 5 * cv / math.sqrt(m)
    # the sample CV's relative SE is about 0.5 sqrt((excess kurtosis 6 cv^2 + 2) / m) <= 1% here: 5% is ~5 SE
    assert abs(x.std() / x.mean() - cv) <= 0.05 * cv


def test_response_without_heterogeneity_is_all_ones():
    """response_cv 0 and responder_fraction 1: every child's response is exactly 1; with fraction 0.5 and CV 0,
    responses are only 0 or 1."""
    t = build({"treatment.response_cv": 0.0, "treatment.responder_fraction": 1.0}).treatment
    assert np.array_equal(treatment.response(t, (30, 50), 4, Streams(1, 0)), np.ones((4, 80)))
    t = build({"treatment.response_cv": 0.0, "treatment.responder_fraction": 0.5}).treatment
    r = treatment.response(t, (1000,), 2, Streams(1, 0))
    assert set(np.unique(r).tolist()) == {0.0, 1.0}
    assert abs((r == 0).mean() - 0.5) <= 5 * math.sqrt(0.25 / 2000)


# --- 7. expectation response and assessor bias -----------------------------------------------------------------


#: (blinding, kind) pairs whose children show the expectation response (procedure, and blinded or given cells).
EXPECTS = {("double", "cells"), ("double", "sham"), ("double", "placebo"), ("assessor", "cells"), ("open", "cells")}
#: ... and whose scores carry the unblinded assessor's bias.
BIASED = {("open", "cells")}


@pytest.mark.parametrize("blinding", BLINDINGS)
@pytest.mark.parametrize("kind", KINDS)
def test_nonspecific_gain_by_blinding_and_kind(blinding, kind):
    """Expectation response E (1 - exp(-m / onset)) only for (double: cells, sham, placebo), (assessor, open:
    cells), never for kind nothing; assessor bias (after baseline only) only for cells arms in open designs."""
    s = build({"design.arms": ["ctl", "x"], "arms.x.kind": kind, "design.blinding": blinding,
               "treatment.expectation_response": 2.0, "treatment.expectation_onset_months": 3.0,
               "treatment.assessor_bias": 1.5})
    months = np.array([0.0, 0.25, 1.0, 3.0, 12.0])
    got = treatment.nonspecific(s.treatment, s.regimens[1], blinding, months)
    expected = np.zeros(months.size)
    if (blinding, kind) in EXPECTS:
        expected += [2.0 * (1 - math.exp(-m / 3.0)) for m in months]
    if (blinding, kind) in BIASED:
        expected += [1.5 if m > 0 else 0.0 for m in months]
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=0.0)
    assert got[0] == 0.0


def test_open_label_assessor_bias_inflates_type1_error():
    """Under no cell effect, an open-label design with assessor_bias 3 (n 40 per arm) rejects far more often than
    alpha (the bias sits in the null data), while double- and assessor-blinded designs stay within the 99%
    Monte Carlo band of alpha (1000 trials)."""
    reps = 1000
    base = {"design.n_per_arm": 40, "treatment.assessor_bias": 3.0, "analysis.primary": "ancova"}
    band = 2.576 * math.sqrt(0.05 * 0.95 / reps)
    rates = {b: cbcp_sim.simulate(build({**base, "design.blinding": b}), reps=reps, seed=5).primary["type1_error"]
             for b in BLINDINGS}
    assert rates["open"] > 0.25, rates
    assert abs(rates["double"] - 0.05) <= band, rates
    assert abs(rates["assessor"] - 0.05) <= band, rates


def test_assessor_bias_shifts_only_post_baseline_cells_scores():
    """trial.simulate, open design with bias: null values of the cells arm sit exactly bias above the
    same children with bias 0 after baseline (where the bias is far from the scale ends), equal at baseline;
    the sham arm is untouched."""
    common = {"design.blinding": "open", "design.n_per_arm": 10, "natural_history.sem": 0.0,
              "natural_history.sem_extreme": 0.0}
    a = trial.generate(build({**common, "treatment.assessor_bias": 0.0}), 3, Streams(2, 0))
    b = trial.generate(build({**common, "treatment.assessor_bias": 3.0}), 3, Streams(2, 0))
    sham, cells = slice(0, 10), slice(10, 20)
    assert np.array_equal(a.null_values[:, sham], b.null_values[:, sham])
    assert np.array_equal(a.null_values[:, cells, 0], b.null_values[:, cells, 0])
    mid = (a.null_values[:, cells, 1] > 10) & (a.null_values[:, cells, 1] < 85)
    assert mid.sum() > 10
    np.testing.assert_allclose((b.null_values[:, cells, 1] - a.null_values[:, cells, 1])[mid], 3.0, atol=1e-9)


# --- 8. any valid parameters ------------------------------------------------------------------------------------


@st.composite
def treatment_overrides(draw: st.DrawFn) -> dict[str, Any]:
    n_breaks = draw(st.integers(0, 3))
    breaks = sorted(draw(st.lists(floats(0.0, 21.0), min_size=n_breaks, max_size=n_breaks, unique=True)))
    schedule = sorted(draw(st.lists(floats(0.0, 24.0), min_size=1, max_size=4, unique=True)))
    n = len(schedule)
    peak = draw(floats(0.01, 120.0))
    out = {
        "population.source": draw(st.sampled_from(["autologous", "allogeneic"])),
        "population.allogeneic_dose": draw(floats(0.0, 100.0)),
        "treatment.dose_response.model": draw(st.sampled_from(["emax", "threshold"])),
        "treatment.dose_response.emax": draw(floats(0.0, 50.0)),
        "treatment.dose_response.ed50": draw(floats(1e-6, 100.0)),
        "treatment.dose_response.hill": draw(floats(0.1, 20.0)),
        "treatment.dose_response.threshold": draw(floats(0.0, 100.0)),
        "treatment.onset_months": draw(floats(0.01, 120.0)),
        "treatment.peak_months": peak,
        "treatment.waning_half_life_months": draw(st.one_of(st.just(math.inf), floats(0.01, 1e6))),
        "treatment.persistent_fraction": draw(floats(0.0, 1.0)),
        "treatment.relative_efficacy": draw(floats(0.0, 10.0)),
        "treatment.ceiling_fraction": draw(st.one_of(st.just(math.inf), floats(1e-6, 100.0))),
        "treatment.response_cv": draw(floats(0.0, 5.0)),
        "treatment.responder_fraction": draw(floats(0.0, 1.0)),
        "treatment.modifiers.gmfcs": draw(st.lists(floats(0.0, 10.0), min_size=5, max_size=5)),
        "treatment.modifiers.topography": draw(st.lists(floats(0.0, 10.0), min_size=3, max_size=3)),
        "treatment.modifiers.age_breaks": breaks,
        "treatment.modifiers.age_factors": draw(st.lists(floats(0.0, 10.0), min_size=n_breaks + 1,
                                                         max_size=n_breaks + 1)),
        "treatment.modifiers.intrathecal": draw(floats(0.0, 10.0)),
        "treatment.expectation_response": draw(floats(-20.0, 20.0)),
        "treatment.assessor_bias": draw(floats(-20.0, 20.0)),
        "design.blinding": draw(st.sampled_from(BLINDINGS)),
        "design.n_per_arm": 5,
        "design.arms": ["ctl", "x"],
        "arms.ctl.kind": draw(st.sampled_from(KINDS)),
        "arms.x.schedule": schedule,
        "arms.x.cells": draw(st.lists(st.sampled_from(PRODUCTS), min_size=n, max_size=n)),
        "arms.x.route": draw(st.lists(st.sampled_from(["intravenous", "intrathecal"]), min_size=n, max_size=n)),
    }
    if (out["population.source"] == "autologous" and n > 1) or draw(st.booleans()):
        out["arms.x.dose"] = draw(st.lists(floats(0.0, 1000.0), min_size=n, max_size=n))
    return out


@stable(40)
@given(treatment_overrides())
def test_any_valid_parameters_give_finite_nonnegative_effects_and_scores_in_range(overrides):
    """For any schema-valid treatment values (emax >= 0, waning incl. durable, ceiling incl. none, 1-4 doses of
    any products and routes, any modifiers): the cell effect is finite and >= 0 at every month, and
    trial.simulate's values (and null values) stay within [0, 100]."""
    s = build(overrides)
    streams = Streams(3, 0)
    data = trial.generate(s, 3, streams)
    for values in (data.values, data.null_values):
        assert np.all(np.isfinite(values))
        assert np.all((values >= 0.0) & (values <= 100.0))
    t = s.treatment
    kids = children(n=25, response=(0.0, 8.0), limit=(0.5, 99.5))
    kids["dose"] = np.linspace(0.0, 100.0, 25)
    effect = treatment.cell_effect(t, s.regimens[1], np.arange(0.0, 60.5, 0.5), **kids)
    assert np.all(np.isfinite(effect))
    assert np.all(effect >= 0.0)


# --- 9. validation --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("settings", "field"), [
    ({"arms.ghost.kind": "sham"}, "arms.ghost"),
    ({"arms.sham.kind": "surgery"}, "arms.sham.kind"),
    ({"design.arms": ["sham", "cells"], "arms.cells.schedule": [0, 6], "arms.cells.dose": [1, 2, 3]},
     "arms.cells.dose"),
    ({"design.arms": ["sham", "cells"], "arms.cells.schedule": [0, 6], "arms.cells.cells": ["UCB-MNC"] * 3},
     "arms.cells.cells"),
    ({"design.arms": ["sham", "cells"], "arms.cells.schedule": [0, 6]}, "arms.cells.dose"),
    ({"treatment.modifiers.age_breaks": [3, 6], "treatment.modifiers.age_factors": [1, 0.5]},
     "treatment.modifiers.age_factors"),
    ({"treatment.modifiers.age_breaks": [], "treatment.modifiers.age_factors": [1, 0.5]},
     "treatment.modifiers.age_factors"),
    ({"arms.sham.schedule": [6, 0]}, "arms.sham.schedule"),
])
def test_invalid_arm_and_modifier_values(capsys, settings, field):
    """Unknown arm name, bad kind, per-dose lists not matching the schedule, an autologous repeat schedule without
    fixed doses, age_factors of the wrong length, a decreasing schedule: ScenarioError naming the field, and one
    line 'error: <field>: ...' with exit 2 from the CLI."""
    with pytest.raises(ScenarioError) as info:
        build(settings)
    assert info.value.path == field
    argv = [a for path, value in settings.items() for a in ("--set", f"{path}={_toml(value)}")]
    assert_one_line_error(*cli(capsys, "run", "--reps", "10", *argv), field)


def test_autologous_repeat_schedule_with_fixed_doses_is_accepted():
    """The autologous rule only asks for fixed doses: a repeat schedule with arms.<name>.dose set, or an
    allogeneic source, resolves."""
    s = build({"design.arms": ["sham", "c"], "arms.c.schedule": [0, 6], "arms.c.dose": [3, 2]})
    assert [d.dose for d in s.regimens[1].doses] == [3.0, 2.0]
    s = build({**ALLOGENEIC, "design.arms": ["sham", "c"], "arms.c.schedule": [0, 6]})
    assert [d.dose for d in s.regimens[1].doses] == [None, None]


def test_run_with_one_parallel_arm_names_design_arms(capsys):
    """A parallel design needs a reference and an active arm: one arm is a one-line error naming design.arms."""
    with pytest.raises(ScenarioError) as info:
        build({**ALLOGENEIC, "design.arms": ["a"]})
    assert info.value.path == "design.arms"
    assert_one_line_error(*cli(capsys, "run", "--reps", "10", "--set", 'design.arms=["a"]'), "design.arms")


def _toml(value: Any) -> str:
    """A --set value in TOML syntax."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)
