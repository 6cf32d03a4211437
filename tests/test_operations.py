"""The trial calendar (cbcp_sim.models.operations): accrual, screening, units, infusion slots, visits and dropout,
checked against closed forms (Poisson and negative binomial counts, gamma waiting times, an independent FIFO weekly-slot
queue, exponential dropout) and its wiring into the outcome model and the engine.

Every Monte Carlo check uses a fixed seed and compares with the theoretical value within ``Z`` Monte Carlo standard
errors computed here; the SE of a sample variance comes from the sample's fourth central moment (or from theory
where the distribution is known).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

import cbcp_sim
from cbcp_sim.errors import ScenarioError
from cbcp_sim.models import dropout, operations, population, trial
from cbcp_sim.models.operations import WEEK, Calendar, Trial, WeeklySlots
from cbcp_sim.models.streams import Streams
from cbcp_sim.scenario import (
    Scenario,
    default_scenario_path,
    load_scenario,
    scenario_from_dict,
    visit_windows,
)
from cbcp_sim.vocabulary import DAYS_PER_MONTH

from .support import floats, stable

SEED = 20250611
#: Monte Carlo standard errors allowed for each statistical check.
Z = 3.5

#: A calendar with nothing in the way: every screened child eligible (checked), units released at once and never
#: failing, unlimited infusion slots, no missed visit, no dropout.
PLAIN = {"operations.enabled": True, "population.source": "allogeneic", "operations.unit_lead_days": 0.0,
         "operations.unit_failure": 0.0, "operations.infusions_per_week": 0, "operations.missed_visit": 0.0,
         "dropout.fraction": 0.0}


def _scenario(**overrides: Any) -> Scenario:
    return scenario_from_dict({}, {**PLAIN, **overrides})


def _calendar(s: Scenario, reps: int, seed: int = SEED, chunk: int = 0) -> Calendar:
    return operations.schedule(s, s.design.n_per_arm, True, reps, Streams(seed, chunk))


def _share(s: Scenario) -> float:
    return population.eligible_share(s.population, s.eligibility)


def _mean_close(x: np.ndarray, expected: float, sd: float | None = None) -> tuple[float, float]:
    """Assert the mean of independent draws ``x`` is within ``Z`` MCSEs of ``expected`` (SD from theory if given)."""
    x = np.asarray(x, dtype=float).ravel()
    se = (x.std(ddof=1) if sd is None else sd) / math.sqrt(x.size)
    assert abs(x.mean() - expected) <= Z * se, (x.mean(), expected, se)
    return float(x.mean()), se


def _var_close(x: np.ndarray, expected: float) -> tuple[float, float]:
    """Assert the variance of independent draws ``x`` is within ``Z`` MCSEs of ``expected`` (SE of the sample
    variance from the sample's fourth central moment)."""
    x = np.asarray(x, dtype=float).ravel()
    dev2 = (x - x.mean()) ** 2
    var, se = x.var(ddof=1), dev2.std(ddof=1) / math.sqrt(x.size)
    assert abs(var - expected) <= Z * se, (var, expected, se)
    return float(var), float(se)


def _share_close(hits: np.ndarray, p: float) -> float:
    """Assert the share of True among independent Bernoulli(p) indicators is within ``Z`` binomial MCSEs of p."""
    hits = np.asarray(hits).ravel()
    se = math.sqrt(p * (1.0 - p) / hits.size)
    assert abs(hits.mean() - p) <= Z * se, (hits.mean(), p, se)
    return float(hits.mean())


def test_plain_scenario_has_no_screen_failure():
    """The PLAIN scenarios below rely on every referred child being eligible."""
    assert _share(_scenario()) == 1.0


# --- 1. accrual: Poisson arrivals, sites, negative binomial dispersion -------------------------------------------


@pytest.mark.parametrize(("sites", "rate", "n_per_arm"), [(1, 4.0, 10), (3, 4.0, 12)])
def test_time_to_randomise_n_children_is_gamma(sites, rate, n_per_arm):
    """Sites all open at 0, no screen failure, no lead time: the N-th randomisation is the N-th arrival of a Poisson
    process of rate k λ, Gamma(N, k λ): mean N / (k λ), variance N / (k λ)^2. The gaps between consecutive
    randomisations are Exp(k λ)."""
    reps, n = 1500, 2 * n_per_arm
    s = _scenario(**{"operations.sites": sites, "operations.screening_rate": rate, "design.n_per_arm": n_per_arm})
    c = _calendar(s, reps)
    total = sites * rate
    last = c.randomised.max(axis=1)
    sd = math.sqrt(n) / total
    _mean_close(last, n / total, sd=sd)
    var_se = sd**2 * math.sqrt((2.0 + 6.0 / n) / reps)  # SE of a Gamma(n) sample variance (excess kurtosis 6/n)
    assert abs(last.var(ddof=1) - n / total**2) <= Z * var_se, (last.var(ddof=1), n / total**2, var_se)
    gaps = np.diff(np.sort(np.concatenate([np.zeros((reps, 1)), c.randomised], axis=1), axis=1), axis=1)
    _mean_close(gaps, 1.0 / total, sd=1.0 / total)
    np.testing.assert_array_equal(c.infused, c.randomised)  # unlimited slots: infused on release
    assert (c.screened == n).all() and (c.unit_failures == 0).all()


def _capped_moments(dist: Any, cap: int) -> tuple[float, float]:
    """Mean and variance of min(X, cap) for a discrete distribution ``dist`` (scipy frozen)."""
    x = np.arange(cap)
    p = dist.pmf(x)
    tail = dist.sf(cap - 1)
    mean = (x * p).sum() + cap * tail
    return float(mean), float((x**2 * p).sum() + cap**2 * tail - mean**2)


def test_screening_dispersion_inflates_variance_not_mean():
    """Children randomised by month T at k sites (no lead time, no screen failure): Poisson(k λ T) without
    dispersion; with gamma frailty of variance d each site's count is negative binomial, the total NB(size k / d,
    mean k λ T): the same mean, variance k λ T + k (λ T)^2 d. Counts are capped at N (the trial stops), which the
    expected values include exactly."""
    reps, sites, rate, month, n_per_arm, d = 2000, 2, 4.0, 1.0, 15, 0.5
    n, mu = 2 * n_per_arm, sites * rate * month
    common = {"operations.sites": sites, "operations.screening_rate": rate, "design.n_per_arm": n_per_arm}
    poisson = (_calendar(_scenario(**common), reps).randomised <= month).sum(axis=1)
    nb = (_calendar(_scenario(**common, **{"operations.screening_dispersion": d}), reps, seed=SEED + 1)
          .randomised <= month).sum(axis=1)
    size = sites / d
    mean_p, var_p = _capped_moments(stats.poisson(mu), n)
    mean_nb, var_nb = _capped_moments(stats.nbinom(size, size / (size + mu)), n)
    assert abs(mean_p - mu) < 1e-6 and abs(mean_nb - mu) < 0.01  # the cap hardly matters
    assert abs(var_nb / (mu + sites * (rate * month) ** 2 * d) - 1.0) < 0.02
    _mean_close(poisson, mean_p)
    _mean_close(nb, mean_nb)
    _var_close(poisson, var_p)
    _var_close(nb, var_nb)
    # the inflation itself: the variance ratio is far above 1 (about 1 + λ T d = 3)
    assert nb.var(ddof=1) / poisson.var(ddof=1) > 2.0


# --- 2. eligibility and unit failure -----------------------------------------------------------------------------


def test_screened_children_are_negative_binomial():
    """Each screened child is randomised with probability p = q (1 - f) (eligible share q, unit failure f), and
    sites screen only until N units are released or on the way, so screened ~ N + NB failures before the N-th
    success: mean N / p, variance N (1 - p) / p^2; failed units: mean N f / (1 - f), variance N f / (1 - f)^2.
    With lead times in the pipeline (two sites, gamma lead) the count is the same."""
    reps, n_per_arm, f = 1500, 10, 0.3
    s = scenario_from_dict({}, {"operations.enabled": True, "design.n_per_arm": n_per_arm, "operations.sites": 2,
                                "operations.unit_failure": f, "operations.unit_lead_days": 28.0,
                                "operations.unit_lead_cv": 0.5, "dropout.fraction": 0.0})
    q = _share(s)
    assert 0.5 < q < 0.99  # the default population's autologous dose criterion screens some out
    n, p = 2 * n_per_arm, q * (1.0 - f)
    c = _calendar(s, reps)
    _mean_close(c.screened, n / p, sd=math.sqrt(n * (1.0 - p)) / p)
    _var_close(c.screened, n * (1.0 - p) / p**2)
    _mean_close(c.unit_failures, n * f / (1.0 - f), sd=math.sqrt(n * f) / (1.0 - f))
    assert (c.screened >= n + c.unit_failures).all()
    assert np.isfinite(c.randomised).all()


# --- 3. infusion capacity: weekly slots --------------------------------------------------------------------------


def test_weekly_slots_directly():
    """WeeklySlots: ``per_week`` bookings per calendar week of 7 days, first come first served; a booking in the
    arrival's own week is at once, a later one at the start of the first week with a free slot."""
    assert WEEK == 7.0 / DAYS_PER_MONTH
    slots = WeeklySlots(2)
    assert slots.book(0.1 * WEEK) == 0.1 * WEEK
    assert slots.book(0.5 * WEEK) == 0.5 * WEEK
    assert slots.book(0.6 * WEEK) == 1 * WEEK      # week 0 full
    assert slots.book(0.7 * WEEK) == 1 * WEEK
    assert slots.book(0.8 * WEEK) == 2 * WEEK      # weeks 0 and 1 full
    assert slots.book(2.5 * WEEK) == 2.5 * WEEK    # week 2 has one slot left
    assert slots.book(2.6 * WEEK) == 3 * WEEK
    assert slots.book(10.2 * WEEK) == 10.2 * WEEK  # an empty later week
    assert slots.booked == {0: 2, 1: 2, 2: 2, 3: 1, 10: 1}
    one = WeeklySlots(1)
    assert [one.book(0.0) for _ in range(4)] == pytest.approx([0.0, WEEK, 2 * WEEK, 3 * WEEK], rel=1e-15, abs=0.0)


def test_weekly_slot_dates_fall_in_their_booked_week():
    """A slot booked in week w is dated at the start of week w, and the date lies in week w by WeeklySlots' own
    week arithmetic (``int(date // WEEK)``), as a week count from infusion dates would compute it (``week * WEEK``
    alone rounds below the boundary for about half of all weeks: ``(5 * WEEK) // WEEK == 4``)."""
    slots = WeeklySlots(1)
    for week in range(12):
        date = slots.book(0.0)
        assert int(date // WEEK) == week, (week, date, date // WEEK)


def _reference_infusions(randomised: np.ndarray, per_week: int) -> np.ndarray:
    """An independent FIFO queue with ``per_week`` slots per calendar week, for one site's randomisation dates:
    in randomisation order the k-th child's week is the later of its own week and one after the week of the
    (k - per_week)-th child (weeks are non-decreasing, so that child holds the per_week-th last slot); it is infused
    at once in its own week, else at the start of its week."""
    order = np.argsort(randomised, kind="stable")
    weeks = np.empty(randomised.size, dtype=np.int64)
    out = np.empty(randomised.size)
    for k, i in enumerate(order):
        own = int(randomised[i] // WEEK)
        weeks[k] = own if k < per_week else max(own, weeks[k - per_week] + 1)
        out[i] = randomised[i] if weeks[k] == own else weeks[k] * WEEK
    return out


#: Round-off allowed in an infusion date (months): a child who waits is infused at ``now + (week * WEEK - now)``,
#: within a few ulps of the start of its week (see test_infusion_dates_fall_in_their_booked_week).
ULPS = 1e-12


def _week_of(dates: np.ndarray) -> np.ndarray:
    """Calendar week of each date (week w is [w WEEK, (w + 1) WEEK)), a date within round-off of a week's start
    counting in that week."""
    return np.floor((dates + ULPS) / WEEK).astype(np.int64)


def _per_week(dates: np.ndarray) -> np.ndarray:
    """Infusions in each calendar week (R, weeks)."""
    weeks = _week_of(dates)
    return np.stack([np.bincount(w, minlength=weeks.max() + 1) for w in weeks])


@pytest.mark.parametrize("rate", [1000.0, 30.0])
def test_infusion_dates_match_a_fifo_weekly_queue(rate):
    """One site, capacity c per week, no lead time: infusion dates equal an independent FIFO weekly-slot queue
    exactly; no calendar week has more than c infusions; no child waits when slots are free. At rate 1000 every
    child is randomised in week 0, so infusions run at exactly c a week: weeks 0, 1, ... hold c each (the last the
    rest), and the last is at the start of week ceil(N / c) - 1."""
    reps, n_per_arm, c_week = 300, 10, 3
    n = 2 * n_per_arm
    s = _scenario(**{"operations.screening_rate": rate, "operations.infusions_per_week": c_week,
                     "design.n_per_arm": n_per_arm})
    c = _calendar(s, reps)
    for r in range(reps):
        np.testing.assert_allclose(c.infused[r], _reference_infusions(c.randomised[r], c_week), rtol=0.0, atol=ULPS)
    assert (c.infused >= c.randomised).all()
    per_week = _per_week(c.infused)
    assert per_week.max() <= c_week
    if rate == 1000.0:
        assert (c.randomised < WEEK).all()
        full, rest = divmod(n, c_week)
        expected = [c_week] * full + ([rest] if rest else [])
        assert (per_week[:, :len(expected)] == expected).all() and (per_week[:, len(expected):] == 0).all()
        np.testing.assert_allclose(c.infused.max(axis=1), (math.ceil(n / c_week) - 1) * WEEK, rtol=0.0, atol=ULPS)
    else:  # arrivals about 7 a week against 3 slots: a queue builds
        assert (c.infused > c.randomised).any()


def test_several_sites_respect_their_capacity_in_total():
    """k sites with c slots each infuse at most k c children in a calendar week. With every child randomised in
    week 0, some site has at least N / k >= c children, so week 0 holds at least c infusions, and the last
    infusion is no earlier than week ceil(N / (k c)) - 1."""
    reps, sites, c_week = 200, 3, 2
    s = _scenario(**{"operations.sites": sites, "operations.screening_rate": 1000.0,
                     "operations.infusions_per_week": c_week, "design.n_per_arm": 15})
    c = _calendar(s, reps)
    assert (c.randomised < WEEK).all()
    per_week = _per_week(c.infused)
    assert per_week.max() <= sites * c_week
    assert (per_week[:, 0] >= c_week).all()
    assert (c.infused.max(axis=1) >= (math.ceil(30 / (sites * c_week)) - 1) * WEEK - ULPS).all()


def test_infusion_dates_fall_in_their_booked_week():
    """Without any round-off allowance, a calendar week (``date // WEEK``, as WeeklySlots itself classifies times)
    holds at most c infusions of a site: every infusion date lies in the week whose slot it took (a waiting child
    is dated with the booked date itself, not ``env.now`` plus a difference)."""
    s = _scenario(**{"operations.screening_rate": 1000.0, "operations.infusions_per_week": 2, "design.n_per_arm": 10})
    c = _calendar(s, 100)
    weeks = (c.infused // WEEK).astype(np.int64)
    per_week = np.stack([np.bincount(w, minlength=weeks.max() + 1) for w in weeks])
    assert per_week.max() <= 2, np.unique(per_week)


# --- 4. dropout, visit windows, missed visits --------------------------------------------------------------------


@pytest.mark.parametrize(("fraction", "by_month"), [(0.2, 12.0), (0.2, 6.0)])
def test_dropout_times_are_exponential(fraction, by_month):
    """Dropout hazard h = -ln(1 - fraction) / by_month: the share dropping out by month 12 is 1 - exp(-12 h) (the
    fraction itself when by_month = 12); the calendar's dropout times are those of cbcp_sim.models.dropout (same
    stream)."""
    reps = 500
    s = _scenario(**{"dropout.fraction": fraction, "dropout.by_month": by_month})
    c = _calendar(s, reps)
    h = dropout.hazard(s.dropout)
    assert h == pytest.approx(-math.log(1.0 - fraction) / by_month)
    expected = 1.0 - math.exp(-12.0 * h)
    if by_month == 12.0:
        assert expected == pytest.approx(fraction)
    _share_close(c.dropout <= 12.0, expected)
    assert (c.dropout > 0.0).all()
    np.testing.assert_array_equal(c.dropout, dropout.times(s.dropout, s.design.n_per_arm, reps, Streams(SEED, 0)))


def test_visits_windows_missed_visits_and_dropout():
    """Visits at target + Uniform(-w, w) (mean 0, variance w^2 / 3), never outside the window; baseline at
    infusion and always attended; a visit is attended iff not missed and before dropout, so never after dropout;
    missed visits are Bernoulli(missed_visit) (and summarised as such per trial)."""
    reps, missed = 400, 0.1
    s = _scenario(**{"operations.missed_visit": missed, "dropout.fraction": 0.3, "operations.window_days": [5, 20,
                                                                                                             25, 40]})
    c = _calendar(s, reps)
    visits = np.asarray(s.design.visits)
    half = np.asarray(s.operations.window_days) / DAYS_PER_MONTH
    assert (c.months[..., 0] == 0.0).all()
    np.testing.assert_array_equal(c.dates[..., 0], c.infused)
    u = (c.months[..., 1:] - visits[1:]) / half
    assert np.abs(u).max() <= 1.0 + 1e-12
    assert np.abs(u).max() > 0.99  # the windows are used to their edges
    _mean_close(u, 0.0, sd=math.sqrt(1.0 / 3.0))
    _var_close(u, 1.0 / 3.0)
    assert (np.diff(c.months, axis=-1) > 0.0).all()
    assert c.attended[..., 0].all() and not c.missed[..., 0].any()
    follow = c.attended[..., 1:]
    np.testing.assert_array_equal(follow, ~c.missed[..., 1:] & (c.months[..., 1:] < c.dropout[..., None]))
    assert not (follow & (c.months[..., 1:] >= c.dropout[..., None])).any()
    assert (follow & (c.months[..., 1:] > 12.0)).any()  # the window after month 12 is used
    _share_close(c.missed[..., 1:], missed)
    shares = operations.summary_arrays(c, s)["missed_visits"]
    _mean_close(shares, missed)
    # the last visit of each trial is the latest attended visit date
    np.testing.assert_array_equal(c.last_visit, np.where(c.attended, c.dates, -np.inf).max(axis=(1, 2)))


# --- 5. unit lead time -------------------------------------------------------------------------------------------


class _RecordingTrial(Trial):
    """A Trial that records each eligible child's screening (arrival) date."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arrivals: list[float] = []

    def _child(self, slots: WeeklySlots | None):
        self.arrivals.append(self.env.now)
        yield from super()._child(slots)


def _recorded(o: Any, n: int, reps: int) -> tuple[np.ndarray, np.ndarray]:
    """Arrival and randomisation dates (R, n) of ``reps`` single trials (every child eligible)."""
    arrivals, randomised = np.empty((reps, n)), np.empty((reps, n))
    for r in range(reps):
        recording = _RecordingTrial(o, 1.0, n, np.random.default_rng([SEED, r]))
        recording.run()
        assert len(recording.arrivals) == n  # no unit fails: one eligible child per place
        arrivals[r], randomised[r] = recording.arrivals, recording.randomised
    return arrivals, randomised


def test_unit_lead_time_fixed_is_exact():
    """unit_lead_cv = 0: every child is randomised exactly unit_lead_days after screening."""
    s = _scenario(**{"operations.unit_lead_days": 28.0, "operations.unit_lead_cv": 0.0,
                     "operations.screening_rate": 6.0})
    lead = 28.0 / DAYS_PER_MONTH
    arrivals, randomised = _recorded(s.operations, 20, 50)
    np.testing.assert_array_equal(np.sort(randomised, axis=1), np.sort(arrivals, axis=1) + lead)
    c = _calendar(s, 200)
    assert (c.randomised >= lead).all()


def test_unit_lead_time_gamma_mean():
    """unit_lead_cv > 0: the mean of (randomised - arrival) over a trial's children is the mean of N gamma lead
    times: unit_lead_days / DAYS_PER_MONTH on average, variance (cv L)^2 / N between trials. Through the public
    calendar (no unit failure, so the first N arrivals of a Poisson process are the ones randomised) the mean
    randomisation date is (N + 1) / (2 λ) + L."""
    days, cv, rate, n = 28.0, 0.5, 6.0, 20
    lead = days / DAYS_PER_MONTH
    s = _scenario(**{"operations.unit_lead_days": days, "operations.unit_lead_cv": cv,
                     "operations.screening_rate": rate, "design.n_per_arm": n // 2})
    arrivals, randomised = _recorded(s.operations, n, 400)
    per_trial = randomised.mean(axis=1) - arrivals.mean(axis=1)
    _mean_close(per_trial, lead, sd=cv * lead / math.sqrt(n))
    _var_close(per_trial, (cv * lead) ** 2 / n)
    c = _calendar(s, 1000)
    _mean_close(c.randomised.mean(axis=1), (n + 1) / (2.0 * rate) + lead)
    assert (c.randomised.min(axis=1) < lead).any()  # a gamma lead time can be shorter than its mean


def test_recruit_matches_the_simpy_trial():
    """The run's calendar (:func:`operations.recruit` and :func:`operations.infusions`, all trials at once) is the
    process of the SimPy :class:`Trial` in distribution, where every rule matters: staggered sites with frailty,
    gamma lead times, failing units (sites wait for a vacancy while units on the way fill the trial) and weekly
    slots. Per-trial means of the last randomisation, children screened, units failed and the wait for a slot
    agree within Z combined MCSEs."""
    reps, n_per_arm = 600, 10
    s = _scenario(**{"operations.sites": 3, "operations.activation_months": 2.0, "operations.screening_rate": 3.0,
                     "operations.screening_dispersion": 0.5, "operations.unit_lead_days": 28.0,
                     "operations.unit_failure": 0.3, "operations.infusions_per_week": 1,
                     "design.n_per_arm": n_per_arm})
    n = 2 * n_per_arm
    trials = [Trial(s.operations, 1.0, n, np.random.default_rng([SEED, r])) for r in range(reps)]
    for one in trials:
        one.run()
    simpy = {"last": [t.randomised.max() for t in trials], "screened": [t.screened for t in trials],
             "failures": [t.unit_failures for t in trials], "wait": [(t.infused - t.randomised).mean() for t in trials]}
    c = _calendar(s, reps)
    vectorised = {"last": c.randomised.max(axis=1), "screened": c.screened, "failures": c.unit_failures,
                  "wait": (c.infused - c.randomised).mean(axis=1)}
    for key, x in simpy.items():
        x, y = np.asarray(x, dtype=float), vectorised[key].astype(float)
        se = math.sqrt(x.var(ddof=1) / x.size + y.var(ddof=1) / y.size)
        assert abs(x.mean() - y.mean()) <= Z * se, (key, x.mean(), y.mean(), se)
    assert vectorised["failures"].mean() > 5 and vectorised["wait"].mean() > 0.05  # both rules at work


# --- 6. property: any valid operations give an ordered, finite calendar ------------------------------------------


#: (visits, primary visit, largest single window that keeps windows apart, days)
DESIGNS = [([0.0, 1.0, 3.0, 6.0, 12.0], 12.0, 30.0), ([0.0, 6.0, 24.0], 24.0, 180.0), ([0.0, 12.0], 12.0, 365.0)]


@st.composite
def operations_overrides(draw: st.DrawFn) -> dict[str, Any]:
    visits, primary, widest = draw(st.sampled_from(DESIGNS))
    return {
        "operations.enabled": True,
        "design.visits": visits,
        "design.primary_visit": primary,
        "design.n_per_arm": draw(st.integers(2, 6)),
        "population.source": draw(st.sampled_from(["autologous", "allogeneic"])),
        "operations.sites": draw(st.integers(1, 5)),
        "operations.activation_months": draw(floats(0.0, 12.0)),
        "operations.screening_rate": draw(floats(0.5, 100.0)),
        "operations.screening_dispersion": draw(floats(0.0, 2.0)),
        "operations.unit_lead_days": draw(floats(0.0, 365.0)),
        "operations.unit_lead_cv": draw(floats(0.0, 5.0)),
        "operations.unit_failure": draw(floats(0.0, 0.5, exclude_max=True)),
        "operations.infusions_per_week": draw(st.integers(0, 5)),
        # from 0.5 days: a zero window is refused by scenario validation (test_window_zero_reproduces_...)
        "operations.window_days": [draw(floats(0.5, widest))],
        "operations.missed_visit": draw(floats(0.0, 0.9)),
        "dropout.fraction": draw(floats(0.0, 0.9)),
        "dropout.by_month": draw(floats(0.5, 240.0)),
    }


@stable(30)
@given(operations_overrides())
def test_calendar_is_ordered_and_finite(overrides):
    """For any valid operations: randomised >= 0, infused >= randomised, visits after infusion and increasing,
    baseline at infusion, dropout > 0, no attended visit after dropout, milestones ordered and finite."""
    s = scenario_from_dict({}, overrides)
    reps = 10
    c = _calendar(s, reps)
    n, v = sum(s.design.n_per_arm), len(s.design.visits)
    assert c.randomised.shape == (reps, n) and c.months.shape == (reps, n, v)
    for arr in (c.randomised, c.infused, c.months, c.dates, c.last_visit):
        assert np.isfinite(arr).all()
    assert (c.randomised >= 0.0).all()
    assert (c.infused >= c.randomised).all()
    assert (c.months[..., 0] == 0.0).all()
    np.testing.assert_array_equal(c.dates[..., 0], c.infused)
    assert (np.diff(c.dates, axis=-1) > 0.0).all()
    assert (np.diff(c.months, axis=-1) > 0.0).all()
    assert not np.isnan(c.dropout).any() and (c.dropout > 0.0).all()
    assert c.attended[..., 0].all()
    assert not (c.attended[..., 1:] & (c.months[..., 1:] >= c.dropout[..., None])).any()
    assert (c.screened >= n + c.unit_failures).all() and (c.unit_failures >= 0).all()
    m = c.milestones(s.primary_index, s.operations.lock_days)
    assert (m["last_child_in"] <= m["last_infusion"]).all()
    assert (m["last_infusion"] <= m["last_visit"]).all()
    assert (m["last_visit"] <= m["database_lock"]).all()
    # the last primary visit: after the infusion of every child who attends it, finite wherever one does, NaN
    # where none does
    at_primary = c.attended[..., s.primary_index]
    some = at_primary.any(axis=1)
    assert (m["last_primary_visit"][some] <= m["last_visit"][some]).all()
    assert np.isnan(m["last_primary_visit"][~some]).all()
    latest = np.where(at_primary, c.infused, -np.inf).max(axis=1)
    assert (m["last_primary_visit"][some] > latest[some]).all()
    assert np.isfinite(m["last_primary_visit"][some]).all()
    if at_primary.all():
        assert (m["last_infusion"] <= m["last_primary_visit"]).all()
    arrays = operations.summary_arrays(c, s)
    for key in ("missed_visits", "infusion_wait_days", "screened", "unit_failures"):
        assert np.isfinite(arrays[key]).all() and (arrays[key] >= 0.0).all(), key


def test_summary_is_finite_when_no_child_attends_the_primary_visit():
    """The calendar summary (timeline table and JSON, engine result.operations) stays numeric when, in some
    trial, no child attends the primary visit (everyone missed it or dropped out before): that trial has no last
    primary visit (NaN) and the summary is over the trials that have one."""
    s = scenario_from_dict({}, {"operations.enabled": True, "design.n_per_arm": 2, "dropout.fraction": 0.7,
                                "dropout.by_month": 12.0, "operations.missed_visit": 0.5})
    c = _calendar(s, 50, seed=1)
    some = c.attended[..., s.primary_index].any(axis=1)
    assert some.any() and not some.all()  # both cases occur
    arrays = operations.summary_arrays(c, s)
    np.testing.assert_array_equal(np.isnan(arrays["last_primary_visit"]), ~some)
    summary = operations.milestone_summary(arrays)
    bad = {k: v for k, v in summary.items() if not all(math.isfinite(x) for x in v.values())}
    assert not bad, bad
    assert summary["last_primary_visit"]["mean"] == pytest.approx(arrays["last_primary_visit"][some].mean())


# --- 7. engine integration ---------------------------------------------------------------------------------------


def _same_results(a: cbcp_sim.SimulationResult, b: cbcp_sim.SimulationResult) -> None:
    assert len(a.rows) == len(b.rows)
    for ra, rb in zip(a.rows, b.rows, strict=True):
        assert ra.keys() == rb.keys()
        for k in ra:
            np.testing.assert_array_equal(np.asarray(ra[k]), np.asarray(rb[k]), err_msg=k)
    assert a.replicates.keys() == b.replicates.keys()
    for k in a.replicates:
        for field in a.replicates[k]:
            np.testing.assert_array_equal(a.replicates[k][field], b.replicates[k][field], err_msg=f"{k} {field}")
    assert a.screen_failure == b.screen_failure and a.true_effect == b.true_effect


def test_disabled_operations_never_build_a_calendar(monkeypatch):
    """operations.enabled = false: the calendar is never simulated and the other operations values change
    nothing (the fast path is untouched)."""
    def boom(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("operations.simulate called with operations disabled")

    monkeypatch.setattr(operations, "schedule", boom)
    base = cbcp_sim.simulate(load_scenario(default_scenario_path()), reps=300, seed=SEED)
    other = cbcp_sim.simulate(load_scenario(default_scenario_path(), {
        "operations.sites": 4, "operations.screening_rate": 1.5, "operations.screening_dispersion": 1.0,
        "operations.unit_lead_days": 90.0, "operations.unit_failure": 0.4, "operations.infusions_per_week": 1,
        "operations.window_days": [25.0], "operations.missed_visit": 0.5, "operations.lock_days": 200.0}),
        reps=300, seed=SEED)
    assert base.operations is None and other.operations is None
    _same_results(base, other)


def test_engine_with_calendar_is_identical_across_jobs():
    """With operations enabled, jobs = 1 and jobs = 2 give bit-identical results (two chunks of 1,000)."""
    s = load_scenario(default_scenario_path(), {"operations.enabled": True, "design.n_per_arm": 10,
                                                "operations.missed_visit": 0.1})
    one = cbcp_sim.simulate(s, reps=2000, seed=SEED, jobs=1)
    two = cbcp_sim.simulate(s, reps=2000, seed=SEED, jobs=2)
    _same_results(one, two)
    assert one.operations is not None and one.operations == two.operations
    assert one.operations.keys() >= {"last_child_in", "last_infusion", "last_primary_visit", "last_visit",
                                     "database_lock", "screened", "unit_failures", "missed_visits",
                                     "infusion_wait_days"}


#: Outcome-model scenario where true scores rise strictly in time for every child: GMFCS I-II (no decline), no
#: fluctuation or measurement error, every visit simulated (mmrm), no dropout or missed visits.
MONOTONE = {"operations.enabled": True, "analysis.primary": "mmrm", "analysis.secondary": [], "design.n_per_arm": 8,
            "eligibility.gmfcs": [1, 2], "natural_history.occasion_sd": 0.0, "natural_history.sem": 0.0,
            "natural_history.sem_extreme": 0.0, "operations.missed_visit": 0.0, "dropout.fraction": 0.0}


def test_window_zero_reproduces_the_schedule_exactly():
    """window_days = [0]: every visit is on its target, so with no missed visits the calendar changes nothing in the
    outcome data: the same values, null values, observed mask and scores under each arm as without a calendar.

    A zero window is accepted: only different visits' windows may not touch."""
    reps = 200
    on = scenario_from_dict({}, {**MONOTONE, "operations.window_days": [0.0], "dropout.fraction": 0.2})
    off = scenario_from_dict({}, {**MONOTONE, "operations.enabled": False, "dropout.fraction": 0.2})
    a, b = trial.generate(on, reps, Streams(SEED, 0)), trial.generate(off, reps, Streams(SEED, 0))
    visits = np.asarray(on.design.visits)
    assert b.calendar is None and a.calendar is not None
    np.testing.assert_array_equal(a.columns, np.arange(len(visits)))
    np.testing.assert_array_equal(a.calendar.months, np.broadcast_to(visits, a.calendar.months.shape))
    for field in ("values", "null_values", "observed", "null_observed", "under"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def test_actual_visit_times_feed_the_outcome_model():
    """Wide windows move each follow-up visit by its deviation; where true scores rise in time a later visit scores
    higher and an earlier one lower, child by child (common random numbers with the run without a calendar, whose
    visits are on their targets)."""
    reps = 200
    wide = scenario_from_dict({}, {**MONOTONE, "operations.window_days": [25.0]})
    exact = scenario_from_dict({}, {**MONOTONE, "operations.enabled": False})  # visits on their targets
    a, b = trial.generate(wide, reps, Streams(SEED, 0)), trial.generate(exact, reps, Streams(SEED, 0))
    visits = np.asarray(wide.design.visits)
    deviation = a.calendar.months - visits
    assert np.abs(deviation[..., 1:]).min() > 0.0
    np.testing.assert_array_equal(a.null_values[..., 0], b.null_values[..., 0])  # baseline unmoved
    change = a.null_values[..., 1:] - b.null_values[..., 1:]
    dev = deviation[..., 1:]
    assert (change * np.sign(dev) >= 0.0).all()
    assert (change * np.sign(dev) > 0.0).mean() > 0.95
    assert not np.array_equal(a.values, b.values)


@pytest.mark.parametrize("mechanism", ["mcar", "mar"])
def test_missed_visits_and_dropout_feed_the_observed_mask(mechanism):
    """MCAR: TrialData.observed is the calendar's attended visits (missed or after dropout: unseen). MAR: dropout
    follows the scores, but a missed visit is never observed and the baseline always is."""
    reps = 200
    s = scenario_from_dict({}, {"operations.enabled": True, "design.n_per_arm": 10, "analysis.primary": "mmrm",
                                "operations.missed_visit": 0.2, "dropout.fraction": 0.3,
                                "dropout.mechanism": mechanism})
    data = trial.generate(s, reps, Streams(SEED, 0))
    attended = data.calendar.attended[..., data.columns]
    missed = data.calendar.missed[..., data.columns]
    if mechanism == "mcar":
        np.testing.assert_array_equal(data.observed, attended)
        np.testing.assert_array_equal(data.null_observed, attended)
    for mask in (data.observed, data.null_observed):
        assert mask[..., 0].all()
        assert not (mask & missed).any()
    assert (~data.observed[..., 1:]).mean() > 0.2  # missed visits and dropout both remove visits
    np.testing.assert_array_equal(data.screened, data.calendar.screened)


# --- 9. scenario validation --------------------------------------------------------------------------------------


def test_default_windows_resolve_per_visit():
    """Empty window_days: 7 days up to month 1, 14 up to month 6, 30 later, at most a quarter of the nearest gap;
    one value applies to every follow-up visit."""
    def days(s):
        return visit_windows(s.operations, s.design.visits)

    assert days(scenario_from_dict({})) == (7.0, 14.0, 14.0, 30.0)
    s = scenario_from_dict({}, {"design.visits": [0, 0.5, 1, 12], "design.primary_visit": 12})
    assert days(s) == pytest.approx((0.125 * DAYS_PER_MONTH, 0.125 * DAYS_PER_MONTH, 30.0))
    assert days(scenario_from_dict({}, {"operations.window_days": [10]})) == (10.0,) * 4
    np.testing.assert_array_equal(operations.windows(s) * DAYS_PER_MONTH, days(s))


def test_default_windows_follow_a_changed_schedule():
    """The windows are resolved from the visits whenever they are needed, so replacing the visits of a loaded
    scenario (as a sweep does) gives windows for the new schedule."""
    s = scenario_from_dict({}).replace({"design.visits": [0, 6, 12]})
    assert visit_windows(s.operations, s.design.visits) == (14.0, 30.0)


@pytest.mark.parametrize(("overrides", "field", "fragment"), [
    ({"operations.window_days": [7, 14]}, "operations.window_days", "one value or 4"),
    ({"operations.window_days": [7, 60, 60, 30]}, "operations.window_days", "overlap"),
    ({"operations.window_days": [31]}, "operations.window_days", "overlap"),
    ({"operations.window_days": [400]}, "operations.window_days", ""),
    ({"operations.sites": 0}, "operations.sites", ""),
    ({"operations.unit_failure": 1.0}, "operations.unit_failure", ""),
    ({"sequential.interims": [0.5]}, "sequential.interims", "operations.enabled"),
])
def test_operations_validation_names_the_field(overrides, field, fragment):
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict({}, overrides)
    assert info.value.path.startswith(field)
    assert fragment in info.value.message
