"""Unit tests of the model stages: streams, population, natural history, dropout, follow-up (treatment:
test_treatment.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cbcp_sim.models import dropout, follow_up, natural_history, population, treatment
from cbcp_sim.models.streams import Streams
from cbcp_sim.scenario import Dropout, Eligibility, NaturalHistory, Population, Scenario, scenario_from_dict

LEVELS = np.arange(1, 6)


def _within(observed: float, expected: float, sd: float, k: float = 4.0) -> None:
    assert abs(observed - expected) <= k * sd, f"{observed} differs from {expected} by more than {k} x {sd}"


# --- streams -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [(), (3,)])
def test_per_child_prefix_is_kept_when_arms_grow(extra):
    """Streams: the k-th child of an arm gets the same numbers whatever the arm sizes (common random numbers)."""
    n, r = 7, 11
    small = Streams(3, 2).per_child("limit", (n, n), r, extra=extra)
    big = Streams(3, 2).per_child("limit", (n + 5, n + 5), r, extra=extra)
    assert small.shape == (r, 2 * n, *extra)
    assert big.shape == (r, 2 * n + 10, *extra)
    np.testing.assert_array_equal(small[:, :n], big[:, :n])
    np.testing.assert_array_equal(small[:, n:], big[:, n + 5:2 * n + 5])


def test_per_child_prefix_with_custom_draw():
    """Streams: the prefix property holds for rejection-sampled draws (gamma) too."""
    def draw(rng, shape):
        return rng.gamma(0.5, 2.0, shape)

    small = Streams(5, 0).per_child("response", (4, 6), 9, draw=draw)
    big = Streams(5, 0).per_child("response", (9, 6), 9, draw=draw)
    np.testing.assert_array_equal(small[:, :4], big[:, :4])
    np.testing.assert_array_equal(small[:, 4:], big[:, 9:])


def test_streams_differ_by_name_arm_chunk_and_seed():
    """Streams: one stream per (seed, chunk, name, arm); different keys give different numbers."""
    base = Streams(1, 0).rng("age", 0).random(8)
    np.testing.assert_array_equal(base, Streams(1, 0).rng("age", 0).random(8))
    for other in (Streams(1, 0).rng("age", 1), Streams(1, 0).rng("gmfcs", 0),
                  Streams(1, 1).rng("age", 0), Streams(2, 0).rng("age", 0)):
        assert not np.array_equal(base, other.random(8))


# --- natural history -----------------------------------------------------------------------------------------


def test_mean_curve_reaches_90_percent_of_limit_at_age90():
    """Natural history: stable-limit curve, 90% of the limit at age90 (GMFCS I-II have no decline)."""
    nh = NaturalHistory()
    for g in (1, 2):
        value = natural_history.mean_curve(nh, np.array([g]), np.array([nh.age90[g - 1]]))
        assert value[0] == pytest.approx(0.9 * nh.limit[g - 1], rel=1e-12)
    ages = np.linspace(0.5, 30.0, 60)
    curve = natural_history.mean_curve(nh, np.ones_like(ages, dtype=int), ages)
    assert np.all(np.diff(curve) > 0)
    assert np.all(curve < nh.limit[0])


def test_true_scores_without_variation_equal_mean_curve():
    """Natural history: with no random limit/rate, fluctuation or trial effect, true scores are the level curve."""
    nh = NaturalHistory(limit_sd=(0.0,) * 5, rate_sd_log=0.0, occasion_sd=0.0, trial_effect_per_year=0.0)
    sizes, r = (4, 6), 5
    rng = np.random.default_rng(0)
    gmfcs = rng.integers(1, 6, (r, sum(sizes)))
    age = rng.uniform(0.5, 21.0, (r, sum(sizes)))
    months = np.array([0.0, 1.0, 3.0, 6.0, 12.0, 60.0])
    true, _ = natural_history.true_scores(nh, gmfcs, age, months, sizes, Streams(1, 0))
    expected = natural_history.mean_curve(nh, gmfcs[..., None], age[..., None] + months / 12.0)
    assert true.shape == (r, sum(sizes), len(months))
    np.testing.assert_allclose(true, expected, rtol=1e-13, atol=1e-12)


def test_trial_effect_accrues_linearly_then_holds():
    """Natural history: the trial effect adds trial_effect_per_year x months / 12 to every child up to
    trial_effect_months, then stays; zero at baseline."""
    quiet = NaturalHistory(trial_effect_per_year=0.0)
    with_trend = NaturalHistory(trial_effect_per_year=3.0, trial_effect_months=12.0)
    gmfcs, age = np.full((2, 3), 3), np.full((2, 3), 4.0)
    months = np.array([0.0, 6.0, 12.0, 24.0])
    a, _ = natural_history.true_scores(quiet, gmfcs, age, months, (1, 2), Streams(1, 0))
    b, _ = natural_history.true_scores(with_trend, gmfcs, age, months, (1, 2), Streams(1, 0))
    np.testing.assert_allclose(b - a, np.broadcast_to([0.0, 1.5, 3.0, 3.0], a.shape), rtol=0, atol=1e-12)


def test_decline_after_peak_age_totals_decline_at_21():
    """Natural history: GMFCS III scores fall linearly after peak_age, and the score at 21 is `decline` below the
    score at the peak age (Hanna et al. 2009)."""
    nh = NaturalHistory()
    g = 3
    limit, tau = nh.limit[g - 1], nh.age90[g - 1] / math.log(10)
    peak, decline = nh.peak_age[g - 1], nh.decline[g - 1]
    assert decline > 0 and peak < 21
    ages = np.array([1.0, 5.0, peak, (peak + 21.0) / 2, 21.0])
    curve = natural_history.mean_curve(nh, np.full(ages.shape, g), ages)
    rise = limit * -np.expm1(-ages / tau)
    np.testing.assert_allclose(curve[:3], rise[:3], rtol=0, atol=1e-12)
    assert curve[2] - curve[4] == pytest.approx(decline, abs=1e-12)
    assert curve[3] == pytest.approx((curve[2] + curve[4]) / 2 + (rise[3] - (rise[2] + rise[4]) / 2), abs=1e-12)


def test_scale_map_is_identity_inside_and_bounded_outside():
    """Natural history: observed GMFM-66 is the true score plus error away from the ends, always in (0, 100),
    increasing, and from_scale inverts to_scale."""
    x = np.array([-30.0, -5.0, 0.0, 5.0, 42.5, 95.0, 100.0, 130.0])
    y = natural_history.to_scale(x)
    assert np.all((y > 0) & (y < 100)) and np.all(np.diff(y) > 0)
    np.testing.assert_array_equal(y[3:6], x[3:6])
    inside = np.linspace(0.01, 99.99, 101)
    np.testing.assert_allclose(natural_history.to_scale(natural_history.from_scale(inside)), inside, atol=1e-9)


# --- dropout -------------------------------------------------------------------------------------------------


def test_dropout_share_monotone_and_baseline_observed():
    """Dropout: `fraction` lost by `by_month` (constant hazard); baseline always observed; once lost, lost."""
    d = Dropout(fraction=0.2, by_month=12.0)
    months = np.array([0.0, 3.0, 6.0, 12.0, 24.0])
    r, sizes = 400, (50, 50)
    obs = dropout.observed(d, months, sizes, r, Streams(9, 0), np.zeros((r, sum(sizes), len(months))))
    assert obs.shape == (r, sum(sizes), len(months)) and obs.dtype == bool
    assert obs[..., 0].all()
    assert not (obs[..., 1:] & ~obs[..., :-1]).any(), "a child came back after dropping out"
    n = r * sum(sizes)
    for v, m in enumerate(months):
        expected = 0.8 ** (m / 12.0)
        _within(obs[..., v].mean(), expected, math.sqrt(expected * (1 - expected) / n) + 1e-12)
    assert obs[..., 3].mean() == pytest.approx(0.8, abs=0.01)


def test_no_dropout_observes_everyone():
    """Dropout: fraction 0 keeps every child at every visit."""
    obs = dropout.observed(Dropout(fraction=0.0), np.array([0.0, 12.0]), (3, 3), 5, Streams(1, 0),
                           np.zeros((5, 6, 2)))
    assert obs.all() and obs.shape == (5, 6, 2)


# --- population ----------------------------------------------------------------------------------------------


def test_population_ranges_doses_and_screening():
    """Population: ages in range, dose in [min_dose, max_dose] (autologous), screened >= enrolled."""
    p, e = Population(ages=(2.0, 10.0)), Eligibility()
    sizes, r = (30, 30), 300
    c = population.enrol(p, e, sizes, r, Streams(4, 0))
    for a in (c.age, c.gmfcs, c.weight, c.dose):
        assert a.shape == (r, sum(sizes))
    assert c.age.min() >= 2.0 and c.age.max() <= 10.0
    assert set(np.unique(c.gmfcs)) <= set(LEVELS.tolist())
    assert c.dose.min() >= e.min_dose and c.dose.max() <= p.max_dose
    assert np.all(c.weight > 0)
    assert c.screened.shape == (r,) and np.all(c.screened >= sum(sizes))
    assert c.screened.sum() > r * sum(sizes), "some children of 2-10 years should fail the dose screen"


def test_gmfcs_shares_match_mix_without_screening():
    """Population: GMFCS shares of enrolled children match gmfcs_mix (min_dose 0: no screen failures)."""
    mix = (0.1, 0.3, 0.2, 0.25, 0.15)
    p = Population(gmfcs_mix=mix)
    c = population.enrol(p, Eligibility(min_dose=0.0), (40, 40), 500, Streams(6, 0))
    n = c.gmfcs.size
    assert np.all(c.screened == 80)
    for g, share in zip(LEVELS, mix, strict=True):
        _within(float((c.gmfcs == g).mean()), share, math.sqrt(share * (1 - share) / n))


def test_gmfcs_level_without_share_never_drawn():
    """Population: a GMFCS level with share 0 is never enrolled."""
    p = Population(gmfcs_mix=(0.0, 0.5, 0.5, 0.0, 0.0))
    c = population.enrol(p, Eligibility(min_dose=0.0), (20, 20), 200, Streams(1, 0))
    assert set(np.unique(c.gmfcs)) == {2, 3}


def test_screen_failure_rises_with_age():
    """Population: older, heavier children are more often below min_dose (autologous)."""
    r, sizes = 200, (20, 20)
    young = population.enrol(Population(ages=(1.0, 3.0)), Eligibility(), sizes, r, Streams(2, 0))
    old = population.enrol(Population(ages=(8.0, 12.0)), Eligibility(), sizes, r, Streams(2, 0))
    assert old.screened.mean() > young.screened.mean() * 1.2
    assert old.dose.mean() < young.dose.mean()


@pytest.mark.parametrize("dose", [2.0, 10.0])
def test_allogeneic_doses_fixed_and_no_screening(dose):
    """Population: allogeneic children all get allogeneic_dose (10 is the default, above max_dose 5); no screening."""
    p = Population(source="allogeneic", allogeneic_dose=dose)
    c = population.enrol(p, Eligibility(min_dose=50.0), (10, 12), 30, Streams(1, 0))
    assert np.all(c.dose == dose)
    assert np.all(c.screened == 22)


@pytest.mark.parametrize("min_dose", [1.0, 3.0])
def test_enrolled_children_keep_identity_when_trial_grows(min_dose):
    """Population: the first n enrolled children of each arm are the same with a larger n (screening in order)."""
    p, e = Population(ages=(2.0, 10.0)), Eligibility(min_dose=min_dose, gmfcs=(1, 2, 3))
    r = 50
    small = population.enrol(p, e, (10, 10), r, Streams(8, 0))
    big = population.enrol(p, e, (40, 40), r, Streams(8, 0))
    for key in ("age", "male", "gmfcs", "topography", "weight", "dose"):
        a, b = getattr(small, key), getattr(big, key)
        np.testing.assert_array_equal(a[:, :10], b[:, :10], err_msg=f"control {key}")
        np.testing.assert_array_equal(a[:, 10:], b[:, 40:50], err_msg=f"active {key}")
    assert np.all(big.screened >= small.screened)


def test_median_weight_interpolates_table():
    """Population: median weight interpolates the WHO/CDC tables by sex and rises with age."""
    assert population.median_weight(np.array([5.0]), True)[0] == 18.3
    assert population.median_weight(np.array([5.5]), True)[0] == pytest.approx((18.3 + 20.5) / 2)
    assert population.median_weight(np.array([5.0]), False)[0] == 18.2
    for male in (True, False):
        assert np.all(np.diff(population.median_weight(np.linspace(0, 21, 50), male)) > 0)


# --- follow-up: the one pipeline of trials and trajectories --------------------------------------------------


def _untreated(s: Scenario, n: int = 40, reps: int = 3) -> follow_up.FollowUp:
    streams = Streams(7, 0)
    enrolled = population.enrol(s.population, s.eligibility, (n,), reps, streams)
    return follow_up.draw(s, enrolled, np.array([0.0, 3.0, 12.0]), (n,), streams)


def test_follow_untreated_is_natural_history_observed():
    """follow_up: untreated children's scores are their true scores observed with their noise; no cell effect."""
    s = scenario_from_dict({})
    untreated = _untreated(s)
    followed = follow_up.follow(s, follow_up.UNTREATED, untreated, without_cells=True)
    np.testing.assert_array_equal(followed.scores,
                                  natural_history.observe(s.natural_history, untreated.true, untreated.noise))
    assert followed.without_cells is followed.scores
    assert not followed.cell_effect.any()


def test_follow_adds_nonspecific_response_and_cell_effect():
    """follow_up: observed = h(true + nonspecific response + cell effect + SEM noise); without_cells leaves out the
    cell effect only, nonspecific=False the expectation response and assessor bias only."""
    s = scenario_from_dict({"design": {"blinding": "open"},
                            "treatment": {"assessor_bias": 2.0, "expectation_response": 1.0}})
    nh, t = s.natural_history, s.treatment
    untreated = _untreated(s)
    cells = s.regimens[1]
    effect = treatment.cell_effect(t, cells, untreated.months, **untreated.recipient)
    extra = treatment.nonspecific(t, cells, "open", untreated.months)
    assert effect[..., 1:].any() and extra[1:].all()
    followed = follow_up.follow(s, cells, untreated, without_cells=True)
    np.testing.assert_array_equal(followed.cell_effect, effect)
    np.testing.assert_array_equal(followed.scores, natural_history.observe(nh, untreated.true + extra + effect,
                                                                           untreated.noise))
    np.testing.assert_array_equal(followed.without_cells, natural_history.observe(nh, untreated.true + extra,
                                                                                  untreated.noise))
    alone = follow_up.follow(s, cells, untreated, nonspecific=False)
    np.testing.assert_array_equal(alone.scores, natural_history.observe(nh, untreated.true + effect, untreated.noise))
    assert alone.without_cells is None


def test_follow_some_children_by_slice_or_mask():
    """follow_up: following some children (a slice of the child axis, or an (R, N) mask as in block
    randomisation) gives their scores when all are followed, and scheduled dose months change nothing."""
    s = scenario_from_dict({})
    untreated = _untreated(s)
    cells = s.regimens[1]
    every = follow_up.follow(s, cells, untreated, without_cells=True)
    part = slice(5, 17)
    mask = np.random.default_rng(3).random(untreated.true.shape[:2]) < 0.5
    on_schedule = [np.full(untreated.true.shape[:2], dose.month) for dose in cells.doses]
    for where, picked in ((part, lambda a: a[:, part]), (mask, lambda a: a[mask][None])):
        some = follow_up.follow(s, cells, untreated, where, dose_months=on_schedule, without_cells=True)
        for field in ("scores", "without_cells", "cell_effect"):
            np.testing.assert_array_equal(getattr(some, field), picked(getattr(every, field)))


def test_follow_up_at_some_months_keeps_the_children():
    """follow_up: FollowUp.at gives the same children's scores at those months only."""
    s = scenario_from_dict({})
    untreated = _untreated(s)
    cells = s.regimens[1]
    every = follow_up.follow(s, cells, untreated)
    last = follow_up.follow(s, cells, untreated.at(slice(2, 3)))
    np.testing.assert_array_equal(last.scores, every.scores[..., 2:3])
