"""The trial on the calendar: sites, screening, banked units, infusion slots, visits and dropout.

Time in months since the first site opened:

- **sites** open at month 0 (the first) and at uniform times in ``[0, activation_months]`` (the others); each
  screens referred children as a Poisson process of rate ``screening_rate`` times a gamma frailty of variance
  ``screening_dispersion`` (negative binomial counts; Anisimov & Fedorov 2007);
- each screened child is **eligible** with the population model's eligible share
  (:func:`cbcp_sim.models.population.eligible_share`), so screen failure matches the population model;
- an eligible child's **unit** is retrieved, shipped and qualified in a gamma lead time (mean ``unit_lead_days``,
  CV ``unit_lead_cv``) and fails with ``unit_failure``; sites screen only while fewer children are randomised or
  waiting for a unit than the trial needs, so a failed unit is replaced by screening on;
- a child is **randomised** when the unit is released and **infused** at the site's next free slot
  (``infusions_per_week`` per calendar week, first come first served: :class:`WeeklySlots`);
- **follow-up** from the infusion date: each visit at its target plus a uniform deviation within its window,
  missed with ``missed_visit``; **dropout** is a time-to-event process (the hazard of :mod:`cbcp_sim.models.dropout`)
  that ends the child's follow-up.

:class:`Trial` is this process for one trial as SimPy processes (a queue of referrals held while the trial is full,
units on the way, weekly slots). A run computes it for all its trials at once (:func:`recruit`, one step per
referral over every unfinished trial, then :func:`infusions` and the follow-up as arrays): the same process in
distribution, under 0.1 ms per trial where one SimPy environment per trial took 0.7 ms (issue 25, see
``benchmarks/README.md``); the tests check both against the same closed forms and against each other.

Every random number comes from the chunk's :class:`~cbcp_sim.models.streams.Streams`: per child (window deviations,
missed visits, dropout times: the same dropout times as without a calendar) from per-child streams, and each
referral's gap, eligibility and unit from one stream per quantity, read by trial and step (see :func:`recruit`).
Children are returned in the outcome model's array order: with fixed arm sizes the enrolment order is a random
permutation of them (a random allocation sequence); with block randomisation they already are in enrolment order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from cbcp_sim.errors import ScenarioError
from cbcp_sim.models import dropout, population
from cbcp_sim.models.streams import Streams
from cbcp_sim.scenario import Operations, Scenario, visit_windows
from cbcp_sim.vocabulary import DAYS_PER_MONTH

#: Months per calendar week.
WEEK = 7.0 / DAYS_PER_MONTH
#: A unit lead time with a smaller coefficient of variation is taken as fixed (its gamma shape would overflow).
MIN_CV = 1e-6


@dataclass(frozen=True)
class Calendar:
    """Per trial (R) and child (N, array order), in months since the first site opened unless said otherwise."""

    randomised: np.ndarray  #: (R, N) randomisation date (unit released)
    infused: np.ndarray     #: (R, N) first infusion date (the baseline visit)
    months: np.ndarray      #: (R, N, V) actual time of each visit of design.visits, months after the infusion
    attended: np.ndarray    #: (R, N, V) visit made: before dropout and not missed (baseline always)
    missed: np.ndarray      #: (R, N, V) visit the child would miss if still in the trial
    dropout: np.ndarray     #: (R, N) dropout time, months after the infusion (inf: never)
    screened: np.ndarray    #: (R,) children screened
    unit_failures: np.ndarray  #: (R,) units not released
    last_visit: np.ndarray  #: (R,) date of the trial's last attended visit

    @property
    def dates(self) -> np.ndarray:
        """(R, N, V) calendar date of each visit."""
        return self.infused[..., None] + self.months

    def milestones(self, primary: int, lock_days: float) -> dict[str, np.ndarray]:
        """Per trial (R,): last child randomised, last infusion, last primary visit (NaN if no child attended it),
        last visit, database lock."""
        primary_dates = np.where(self.attended[..., primary], self.dates[..., primary], -np.inf).max(axis=1)
        return {"last_child_in": self.randomised.max(axis=1), "last_infusion": self.infused.max(axis=1),
                "last_primary_visit": np.where(np.isinf(primary_dates), np.nan, primary_dates),
                "last_visit": self.last_visit,
                "database_lock": self.last_visit + lock_days / DAYS_PER_MONTH}


def summary_arrays(c: Calendar, s: Scenario) -> dict[str, np.ndarray]:
    """Per trial (R,): the milestones, children screened, units failed, share of follow-up visits missed and
    mean wait from randomisation to infusion (days)."""
    out = c.milestones(s.primary_index, s.operations.lock_days)
    follow_up = (c.months[..., 1:] < c.dropout[..., None])
    out["screened"] = c.screened.astype(float)
    out["unit_failures"] = c.unit_failures.astype(float)
    out["missed_visits"] = (c.missed[..., 1:] & follow_up).sum(axis=(1, 2)) / np.maximum(follow_up.sum(axis=(1, 2)), 1)
    out["infusion_wait_days"] = (c.infused - c.randomised).mean(axis=1) * DAYS_PER_MONTH
    return out


def windows(s: Scenario) -> np.ndarray:
    """Half-width of each follow-up visit's window (months)."""
    return np.asarray(visit_windows(s.operations, s.design.visits)) / DAYS_PER_MONTH


def schedule(s: Scenario, sizes: tuple[int, ...], by_arm: bool, n_reps: int, streams: Streams) -> Calendar:
    """The calendar of ``n_reps`` trials whose children are stored in ``sizes`` groups (by arm when ``by_arm``,
    else one group in enrolment order)."""
    o, d = s.operations, s.design
    n = sum(sizes)
    visits = np.asarray(d.visits)
    half = windows(s)
    deviation = half * (2.0 * streams.per_child("visit_window", sizes, n_reps, draw=_uniform,
                                                extra=(len(visits) - 1,)) - 1.0)
    months = np.concatenate([np.zeros((n_reps, n, 1)), visits[1:] + deviation], axis=-1)
    missed = np.concatenate([np.zeros((n_reps, n, 1), dtype=bool),
                             streams.per_child("missed_visit", sizes, n_reps, draw=_uniform,
                                               extra=(len(visits) - 1,)) < o.missed_visit], axis=-1)
    gone = dropout.times(s.dropout, sizes, n_reps, streams)
    if by_arm:
        order = streams.rng("enrolment_order", 0).permuted(np.tile(np.arange(n), (n_reps, 1)), axis=1)
    else:
        order = np.tile(np.arange(n), (n_reps, 1))
    attended = ~missed & (months < gone[..., None])
    attended[..., 0] = True
    recruited = recruit(o, population.eligible_share(s.population, s.eligibility), n, n_reps, streams)
    rows = np.arange(n_reps)[:, None]
    randomised, infused = np.empty((n_reps, n)), np.empty((n_reps, n))
    randomised[rows, order] = recruited.randomised
    infused[rows, order] = infusions(recruited.randomised, recruited.site, o.sites, o.infusions_per_week)
    last_visit = (infused + np.where(attended, months, 0.0).max(axis=2)).max(axis=1)
    return Calendar(randomised=randomised, infused=infused, months=months, attended=attended, missed=missed,
                    dropout=gone, screened=recruited.screened, unit_failures=recruited.unit_failures,
                    last_visit=last_visit)


class Recruited(NamedTuple):
    """Per trial (R) and child in order of randomisation (N): :func:`recruit`'s result."""

    randomised: np.ndarray     #: (R, N) randomisation dates (unit released), ascending
    site: np.ndarray           #: (R, N) the child's site
    screened: np.ndarray       #: (R,) children screened
    unit_failures: np.ndarray  #: (R,) units not released


def recruit(o: Operations, share: float, n: int, n_reps: int, streams: Streams) -> Recruited:
    """Screening, eligibility and units of ``n_reps`` trials of ``n`` children at once, event by event: the
    process of :class:`Trial`, in distribution, without an event loop per trial.

    Each step takes every unfinished trial's next referral (the earliest of its sites' next arrivals). If fewer
    than ``n`` of its units are released or on the way, the child is screened: eligible with ``share``, then the
    unit arrives after its lead time and is released, or fails with ``o.unit_failure``; the site's next arrival
    is an exponential gap later. Otherwise the referral is turned away and the site waits for a vacancy (the
    next failing unit) before its exponential gap, as :class:`Trial`'s sites do (the same process, exponential
    gaps being memoryless). A trial is done once ``n`` units will be released.

    Draws: step ``i`` of trial ``r`` reads element ``i * n_reps + r`` of one chunk-level stream per quantity (the
    gap, eligibility, lead time, unit failure), so a trial's numbers do not depend on the other trials.
    """
    sites = o.sites
    opens = np.zeros((n_reps, sites))
    opens[:, 1:] = streams.rng("site_opening", 0).uniform(0.0, o.activation_months, (n_reps, sites - 1))
    rate = np.full((n_reps, sites), o.screening_rate)
    if o.screening_dispersion > 0.0:
        d = o.screening_dispersion
        rate *= streams.rng("site_frailty", 0).gamma(1.0 / d, d, (n_reps, sites))
    gap, eligible, lead, failure = (streams.rng(name, 0) for name in ("screening_gap", "eligible", "unit_lead",
                                                                      "unit_failure"))
    arrival = opens + gap.standard_exponential((n_reps, sites)) / rate
    mean = o.unit_lead_days / DAYS_PER_MONTH
    shape = None if mean == 0.0 or o.unit_lead_cv < MIN_CV else o.unit_lead_cv ** -2
    released, site = np.empty((n_reps, n)), np.empty((n_reps, n), dtype=np.intp)
    enrolled, screened, failed = (np.zeros(n_reps, dtype=np.int64) for _ in range(3))
    #: dates at which each trial's failed units fail; a trial screens only while fewer than ``n`` places are held,
    #: so fewer than ``n`` are ever pending and a new failure takes the place of one already past
    failing = np.full((n_reps, n), -np.inf)
    most = population.MAX_SCREENED_PER_CHILD * n
    if share * (1.0 - o.unit_failure) * population.MAX_SCREENED_PER_CHILD < 1.0:  # hopeless on average: say so now
        raise ScenarioError("operations", f"over {most} children screened without enrolling {n} expected (eligible "
                                          f"{share:.3g} x units released {1.0 - o.unit_failure:.3g}); check "
                                          "eligibility and operations.unit_failure")
    while (r := np.flatnonzero(enrolled < n)).size:
        k = arrival[r].argmin(axis=1)
        now = arrival[r, k]
        gaps, u, v = gap.standard_exponential(n_reps)[r], eligible.random(n_reps)[r], failure.random(n_reps)[r]
        times = np.full(r.size, mean) if shape is None else lead.gamma(shape, mean / shape, n_reps)[r]
        if failed.any():  # units on the way that will fail hold places: a full trial's site waits for a vacancy
            pending = failing[r] > now[:, None]
            free = enrolled[r] + pending.sum(axis=1) < n
            arrival[r, k] = np.where(free, now, np.where(pending, failing[r], np.inf).min(axis=1)) + gaps / rate[r, k]
            r, now, k, u, v, times = r[free], now[free], k[free], u[free], v[free], times[free]
        else:
            arrival[r, k] = now + gaps / rate[r, k]
        screened[r] += 1
        if screened[r].max(initial=0) > most:
            raise ScenarioError("operations", f"over {most} children screened without enrolling {n}; check "
                                              "eligibility and operations.unit_failure")
        ok = u < share
        fails = ok & (v < o.unit_failure)
        if fails.any():
            f = r[fails]
            failing[f, failing[f].argmin(axis=1)] = now[fails] + times[fails]
            failed[f] += 1
        ok &= ~fails
        g = r[ok]
        released[g, enrolled[g]] = now[ok] + times[ok]
        site[g, enrolled[g]] = k[ok]
        enrolled[g] += 1
    by_date = np.argsort(released, axis=1, kind="stable")
    return Recruited(np.take_along_axis(released, by_date, axis=1), np.take_along_axis(site, by_date, axis=1),
                     screened, failed)


def infusions(randomised: np.ndarray, site: np.ndarray, sites: int, per_week: int) -> np.ndarray:
    """Infusion dates (R, N) of children randomised on ``randomised`` (ascending along N) at ``site``: each site's
    ``per_week`` weekly slots booked first come first served, as :class:`WeeklySlots` books them (0: no limit).

    In order of randomisation, a site's k-th child takes the later of its own week and the week after that of the
    site's (k - per_week)-th child, at once in its own week, else at the start of the booked week."""
    if not per_week:
        return randomised.copy()
    n_reps, n = randomised.shape
    rows = np.arange(n_reps)
    own = (randomised // WEEK).astype(np.int64)
    last = np.full((n_reps, sites, per_week), -2, dtype=np.int64)  #: weeks of each site's last per_week bookings
    count = np.zeros((n_reps, sites), dtype=np.int64)
    weeks = np.empty_like(own)
    for i in range(n):
        k = site[:, i]
        slot = count[rows, k] % per_week
        weeks[:, i] = last[rows, k, slot] = np.maximum(own[:, i], last[rows, k, slot] + 1)
        count[rows, k] += 1
    start = weeks * WEEK
    start = np.where(start // WEEK == weeks, start, np.nextafter(start, np.inf))
    return np.where(weeks == own, randomised, start)


def _uniform(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.random(shape)


class WeeklySlots:
    """A site's infusion slots: ``per_week`` in each calendar week, booked first come first served (a FIFO queue
    whose server completes ``per_week`` infusions a week)."""

    def __init__(self, per_week: int) -> None:
        self.per_week = per_week
        self.booked: dict[int, int] = {}

    def book(self, now: float) -> float:
        """Book the first free slot at or after ``now``: now if this week has one, else the start of the first
        week that has."""
        this = week = int(now // WEEK)
        while self.booked.get(week, 0) >= self.per_week:
            week += 1
        self.booked[week] = self.booked.get(week, 0) + 1
        if week == this:
            return now
        start = week * WEEK
        return start if start // WEEK == week else float(np.nextafter(start, np.inf))


class Trial:
    """One trial's recruitment and infusions as SimPy processes: the model :func:`recruit` and :func:`infusions`
    compute for many trials at once.

    ``n`` children are randomised, each infused at :attr:`infused` (in enrolment order); ``rng`` draws arrivals,
    eligibility and units, one event at a time.
    """

    def __init__(self, o: Operations, eligible_share: float, n: int, rng: np.random.Generator) -> None:
        import simpy  # only here: a run's calendars need no event loop

        self.o, self.share, self.n, self.rng = o, eligible_share, n, rng
        self.env = simpy.Environment()
        self.randomised = np.empty(n)
        self.infused = np.empty(n)
        self.screened = self.unit_failures = self.waiting = self.enrolled = 0
        self.vacancy = self.env.event()
        #: Most children screened before the trial gives up (see population.MAX_SCREENED_PER_CHILD).
        self.max_screened = population.MAX_SCREENED_PER_CHILD * n

    def run(self) -> None:
        o, rng = self.o, self.rng
        opens = np.concatenate([[0.0], rng.uniform(0.0, o.activation_months, o.sites - 1)])
        frailty = (rng.gamma(1.0 / o.screening_dispersion, o.screening_dispersion, o.sites)
                   if o.screening_dispersion > 0.0 else np.ones(o.sites))
        for k in range(o.sites):
            slots = WeeklySlots(o.infusions_per_week) if o.infusions_per_week else None
            self.env.process(self._site(opens[k], o.screening_rate * frailty[k], slots))
        self.env.run()

    def _site(self, opens: float, rate: float, slots: WeeklySlots | None):
        """Screen referred children from the opening date until the trial is fully randomised; while enough
        children wait for their units, wait for a vacancy (a failed unit)."""
        env, rng = self.env, self.rng
        yield env.timeout(opens)
        while self.enrolled < self.n:
            if self.enrolled + self.waiting >= self.n:
                yield self.vacancy
                continue
            yield env.timeout(rng.exponential(1.0 / rate))
            if self.enrolled + self.waiting >= self.n:
                continue
            self.screened += 1
            if self.screened > self.max_screened:
                raise ScenarioError("operations", f"over {self.max_screened} children screened without enrolling "
                                                  f"{self.n}; check eligibility and operations.unit_failure")
            if rng.random() < self.share:
                self.waiting += 1
                env.process(self._child(slots))

    def _child(self, slots: WeeklySlots | None):
        """Unit retrieval and qualification, randomisation, infusion, then follow-up."""
        env, o = self.env, self.o
        yield env.timeout(self._lead_time())
        self.waiting -= 1
        if self.rng.random() < o.unit_failure:
            self.unit_failures += 1
            self.vacancy.succeed()
            self.vacancy = env.event()
            return
        i = self.enrolled
        self.enrolled += 1
        self.randomised[i] = env.now
        when = env.now if slots is None else slots.book(env.now)
        if when > env.now:
            yield env.timeout(when - env.now)
        self.infused[i] = when

    def _lead_time(self) -> float:
        o = self.o
        mean = o.unit_lead_days / DAYS_PER_MONTH
        if mean == 0.0 or o.unit_lead_cv < MIN_CV:
            return mean
        shape = o.unit_lead_cv ** -2
        return self.rng.gamma(shape, mean / shape)


#: Quantiles reported for each per-trial quantity of :func:`summary_arrays`.
QUANTILES = (0.05, 0.5, 0.95)


def milestone_summary(arrays: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Mean and :data:`QUANTILES` over trials of each quantity of :func:`summary_arrays`, over the trials where it
    is defined (NaN where it is in none)."""
    out = {}
    for k, v in arrays.items():
        v = v[~np.isnan(v)]
        stats = {"mean": float(v.mean())} if v.size else {"mean": math.nan}
        stats.update({f"q{round(100 * q):02d}": float(np.quantile(v, q)) if v.size else math.nan for q in QUANTILES})
        out[k] = stats
    return out

