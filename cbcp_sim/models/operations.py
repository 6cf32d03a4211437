"""The trial on the calendar: sites, screening, banked units, infusion slots, visits and dropout.

Recruitment to infusion is a SimPy model, one environment per simulated trial, time in months since the first
site opened:

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
  that ends the child's follow-up. Follow-up uses no shared resource, so it is computed for all trials at once
  from the infusion dates rather than as SimPy events (a first version with per-visit SimPy events and a SimPy
  container for the slots took 1.7 ms per trial; this one 0.7 ms, see ``benchmarks/README.md``).

Every random number comes from the chunk's :class:`~cbcp_sim.models.streams.Streams`: per child (window deviations,
missed visits, dropout times: the same dropout times as without a calendar) from per-child streams, and per trial
(arrivals, eligibility, units) from a generator of its own. Children are returned in the outcome model's array
order: with fixed arm sizes the enrolment order is a random permutation of them (a random allocation sequence);
with block randomisation they already are in enrolment order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import simpy

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
    share = population.eligible_share(s.population, s.eligibility)
    attended = ~missed & (months < gone[..., None])
    attended[..., 0] = True
    out = {k: np.empty((n_reps, n)) for k in ("randomised", "infused")}
    counts = np.empty((2, n_reps))
    for r in range(n_reps):
        columns = order[r]
        trial = Trial(o, share, n, streams.trial_rng("operations", r))
        trial.run()
        out["randomised"][r, columns] = trial.randomised
        out["infused"][r, columns] = trial.infused
        counts[:, r] = trial.screened, trial.unit_failures
    last_visit = (out["infused"] + np.where(attended, months, 0.0).max(axis=2)).max(axis=1)
    return Calendar(randomised=out["randomised"], infused=out["infused"], months=months, attended=attended,
                    missed=missed, dropout=gone, screened=counts[0].astype(int),
                    unit_failures=counts[1].astype(int), last_visit=last_visit)


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
    """One trial's recruitment, infusions and follow-up as SimPy processes.

    ``n`` children are randomised, each infused at :attr:`infused` (in enrolment order); ``rng`` draws arrivals,
    eligibility and units.
    """

    def __init__(self, o: Operations, eligible_share: float, n: int, rng: np.random.Generator) -> None:
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

