"""Simulated trial data for one chunk of replicates, under the scenario and under no effect.

Two outcome models share one output, :class:`TrialData`:

- ``gmfm66``: children (population) -> allocation -> natural motor growth -> each arm's regimen (cell
  effect, expectation response, assessor bias) -> dropout.
- ``normal``: baseline and primary-visit scores bivariate normal with SD ``sd`` and correlation
  ``correlation``; active arms shifted by ``effect`` at the primary visit. For checks against
  closed-form power and for users who think in effect sizes.

Both data sets (with and without effect) use the same random numbers, so the type I error is
estimated on exactly the trials whose power is reported. The visits simulated are those the analyses
read: baseline and the primary visit, or every visit for longitudinal analyses and crossover designs
(the growth, fluctuation and dropout processes are sampled exactly at those times).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cbcp_sim.models import dropout, expected_change, natural_history, operations, population, randomisation, treatment
from cbcp_sim.models.layout import Layout, arm_sizes, arm_slices, fixed_layout, pick, place
from cbcp_sim.models.operations import Calendar
from cbcp_sim.models.streams import Streams
from cbcp_sim.scenario import Scenario
from cbcp_sim.scenario.products import Regimen
from cbcp_sim.vocabulary import LONGITUDINAL_ANALYSES


@dataclass(frozen=True)
class TrialData:
    """Observed arrays of ``R`` simulated trials with ``N`` children and ``V`` visits."""

    months: np.ndarray         #: (V,) visit times, months after the first infusion
    primary: int               #: index of the primary visit
    switch: int | None         #: crossover designs: index of the switch visit
    arm: np.ndarray            #: (R, N) arm of each child (index into design.arms)
    values: np.ndarray         #: (R, N, V) outcome under the scenario's effect
    null_values: np.ndarray    #: (R, N, V) the same trials with no cell effect
    observed: np.ndarray       #: (R, N, V) True where the value was observed
    null_observed: np.ndarray  #: (R, N, V) the same for the null trials (differs only under MAR dropout)
    under: np.ndarray          #: (k + 1, R, N) primary-visit score under arm j's cells alone; last: untreated
    covariates: dict[str, np.ndarray]  #: per-child (R, N): age (years), gmfcs, dose (10^7 TNC/kg)
    expected: np.ndarray | None        #: (R, N) single-arm designs: expected natural change to the primary visit
    screened: np.ndarray       #: (R,) children screened to enrol N
    calendar: Calendar | None = None  #: the trial calendar (every visit of design.visits), when simulated
    columns: np.ndarray | None = None  #: (V,) with a calendar: the simulated visits' indices in design.visits

    @property
    def n_reps(self) -> int:
        return self.values.shape[0]


def visits(s: Scenario) -> np.ndarray:
    """The visit times simulated: every visit when an analysis reads them all or the design is a crossover,
    else baseline and the primary visit."""
    d = s.design
    if d.kind == "crossover" or set(s.analyses) & set(LONGITUDINAL_ANALYSES):
        return np.array(d.visits)
    return np.array([0.0, d.primary_visit])


def storage(s: Scenario) -> tuple[tuple[int, ...], bool]:
    """How a run stores its children: the sizes of the per-arm random streams, and whether they are stored by arm
    (fixed arm sizes, or the normal model) or in enrolment order (block randomisation)."""
    d = s.design
    if s.outcome.model == "normal" or d.randomisation == "fixed":
        return arm_sizes(d), True
    return (sum(d.n_per_arm),), False


def _calendar(s: Scenario, layout: Layout, months: np.ndarray, n_reps: int,
              streams: Streams) -> tuple[Calendar | None, np.ndarray | None]:
    """The trial calendar when ``operations.enabled``, with the indices of the simulated visits ``months``."""
    if not s.operations.enabled:
        return None, None
    calendar = operations.simulate(s, layout.sizes, layout.by_arm, n_reps, streams)
    return calendar, np.searchsorted(s.design.visits, months)


def _at(times: np.ndarray, where: slice | np.ndarray) -> np.ndarray:
    """Visit times of the children ``where``: the common schedule ``(V,)`` or their own ``(R, N, V)``."""
    return times if times.ndim == 1 else pick(times, where)


def _dose_months(s: Scenario, regimen: Regimen, calendar: Calendar | None) -> list[np.ndarray] | None:
    """With a calendar, each child's month of each dose ``(R, N)``: a dose scheduled at a follow-up visit is given
    at the child's actual time of that visit, after its assessment (a crossover's switch, a repeat dose); any
    other on schedule. Without one, None (the schedule's)."""
    if calendar is None:
        return None
    visits = s.design.visits
    shape = calendar.dropout.shape
    return [calendar.months[..., visits.index(d.month)] if d.month > 0.0 and d.month in visits
            else np.full(shape, d.month) for d in regimen.doses]


def simulate(scenario: Scenario, n_reps: int, streams: Streams) -> TrialData:
    """Simulate ``n_reps`` trials of ``scenario`` from ``streams``."""
    return MODELS[scenario.outcome.model](scenario, n_reps, streams)


def _layout(s: Scenario, n_reps: int, streams: Streams) -> tuple[Layout, population.Children]:
    """Enrol the children and allocate them to arms."""
    d = s.design
    sizes, by_arm = storage(s)
    if by_arm:
        layout = fixed_layout(d, n_reps)
        return layout, population.enrol(s.population, s.eligibility, layout.sizes, n_reps, streams)
    children = population.enrol(s.population, s.eligibility, sizes, n_reps, streams)
    stratum = randomisation.strata(d, children.gmfcs, children.age, children.dose)
    arm = randomisation.assign(d, stratum, streams.rng("randomisation", 0))
    return Layout(sizes=sizes, arm=arm, by_arm=False), children


def _gmfm66(s: Scenario, n_reps: int, streams: Streams) -> TrialData:
    months = visits(s)
    primary = int(np.flatnonzero(months == s.design.primary_visit)[0])
    layout, children = _layout(s, n_reps, streams)
    sizes = layout.sizes
    calendar, columns = _calendar(s, layout, months, n_reps, streams)
    times = months if calendar is None else calendar.months[..., columns]
    nh, t = s.natural_history, s.treatment
    true, kids = natural_history.true_scores(nh, children.gmfcs, children.age, times, sizes, streams)
    noise = natural_history.measurement_noise(sizes, n_reps, len(months), streams)
    child = treatment.recipients(t, children, kids.limit, sizes, streams)
    values, null_values = np.empty_like(true), np.empty_like(true)
    regimens = s.regimens
    for j, regimen in enumerate(regimens):
        where = layout.select(j)
        at = _at(times, where)
        base = pick(true, where) + treatment.nonspecific(t, regimen, s.design.blinding, at)
        scores = natural_history.observe(nh, base, pick(noise, where))
        place(null_values, where, scores)
        if regimen.doses:
            given = _dose_months(s, regimen, calendar)
            effect = treatment.cell_effect(t, regimen, at, **{k: pick(v, where) for k, v in child.items()},
                                           dose_months=None if given is None else [pick(g, where)
                                                                                   for g in given])
            scores = natural_history.observe(nh, base + effect, pick(noise, where))
        place(values, where, scores)
    under = _under(s, layout, times[..., primary:primary + 1], true[..., primary], noise[..., primary], child,
                   values[..., primary], null_values[..., primary], calendar)
    observed, null_observed = _observed(s, times, sizes, n_reps, streams, values, null_values, calendar, columns)
    covariates = {"age": children.age, "gmfcs": children.gmfcs.astype(float), "dose": children.dose}
    expected = None
    if s.design.kind == "single_arm":
        expected = (expected_change.mean_change(nh, children.gmfcs, children.age, s.design.primary_visit)
                    + s.analysis.expected_error)
    return TrialData(months=months, primary=primary, switch=_switch(s, months), arm=layout.arm, values=values,
                     null_values=null_values, observed=observed, null_observed=null_observed, under=under,
                     covariates=covariates, expected=expected,
                     screened=children.screened if calendar is None else calendar.screened,
                     calendar=calendar, columns=columns)


def _under(s: Scenario, layout: Layout, month: np.ndarray, true: np.ndarray, noise: np.ndarray,
           child: dict[str, np.ndarray], values: np.ndarray, null_values: np.ndarray,
           calendar: Calendar | None = None) -> np.ndarray:
    """``(k + 1, R, N)``: every child's score at ``month`` (``(1,)``, or each child's ``(R, N, 1)``) under each
    arm's cells alone (no expectation response or assessor bias), and last untreated, for the true effect of
    each comparison.

    Where children are stored by arm and an arm has no expectation response or assessor bias at ``month``,
    its children's simulated ``values`` (and ``null_values``) already are those scores: only the rest are
    simulated again, from the same true scores and noise.
    """
    nh, t = s.natural_history, s.treatment
    regimens = s.regimens
    n = true.shape[1]
    plain = [layout.by_arm and not treatment.nonspecific(t, r, s.design.blinding, month).any() for r in regimens]
    slices = arm_slices(layout.sizes) if layout.by_arm else []

    def fill(known: list[slice], source: np.ndarray, regimen: Regimen | None) -> np.ndarray:
        """Scores under ``regimen`` (None: untreated), from ``source`` for the ``known`` arms' children."""
        out = np.empty(true.shape)
        todo = np.ones(n, dtype=bool)
        for where in known:
            out[:, where] = source[:, where]
            todo[where] = False
        if todo.any():
            score = true[:, todo]
            if regimen is not None:
                at = month if month.ndim == 1 else month[:, todo]
                given = _dose_months(s, regimen, calendar)
                effect = treatment.cell_effect(t, regimen, at, **{k: v[:, todo] for k, v in child.items()},
                                               dose_months=None if given is None else [g[:, todo] for g in given])
                score = score + effect[..., 0]
            out[:, todo] = natural_history.observe(nh, score, noise[:, todo])
        return out

    untreated = fill([slices[i] for i in range(len(regimens)) if plain[i]], null_values, None)
    out = [fill([slices[j]] if plain[j] else [], values, r) if r.doses else untreated for j, r in enumerate(regimens)]
    return np.stack([*out, untreated])


def _observed(s: Scenario, months: np.ndarray, sizes: tuple[int, ...], n_reps: int, streams: Streams,
              values: np.ndarray, null_values: np.ndarray, calendar: Calendar | None = None,
              columns: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the visits seen in the trials with and without the cell effect: one mask under MCAR, each its
    own under MAR (dropout follows the scores the children show). With a calendar, at each child's actual
    visit times (``months`` ``(R, N, V)``), and missed visits are not seen either."""
    if calendar is not None and s.dropout.mechanism == "mcar":
        attended = calendar.attended[..., columns]
        return attended, attended
    missed = None if calendar is None else calendar.missed[..., columns]
    seen = True if missed is None else ~missed
    observed = dropout.observed(s.dropout, months, sizes, n_reps, streams, values, missed) & seen
    if s.dropout.mechanism == "mcar":
        return observed, observed
    return observed, dropout.observed(s.dropout, months, sizes, n_reps, streams, null_values, missed) & seen


def _switch(s: Scenario, months: np.ndarray) -> int | None:
    if s.design.kind != "crossover":
        return None
    return int(np.flatnonzero(months == s.design.crossover_month)[0])


def _normal(s: Scenario, n_reps: int, streams: Streams) -> TrialData:
    o = s.outcome
    layout = fixed_layout(s.design, n_reps)
    sizes = layout.sizes
    months = np.array([0.0, s.design.primary_visit])
    null_values = np.empty((n_reps, sum(sizes), 2))
    null_values[..., 0] = o.sd * streams.per_child("baseline", sizes, n_reps)
    null_values[..., 1] = (o.correlation * null_values[..., 0]
                           + o.sd * math.sqrt(1.0 - o.correlation**2) * streams.per_child("primary", sizes, n_reps))
    active = layout.arm[0] > 0
    values = null_values.copy()
    values[:, active, 1] += o.effect
    under = np.stack([null_values[..., 1] + (o.effect if j else 0.0) for j in range(len(sizes))]
                     + [null_values[..., 1]])
    calendar, columns = _calendar(s, layout, months, n_reps, streams)
    times = months if calendar is None else calendar.months[..., columns]
    observed, null_observed = _observed(s, times, sizes, n_reps, streams, values, null_values, calendar, columns)
    return TrialData(months=months, primary=1, switch=None, arm=layout.arm, values=values, null_values=null_values,
                     observed=observed, null_observed=null_observed, under=under, covariates={}, expected=None,
                     screened=np.full(n_reps, sum(sizes)) if calendar is None else calendar.screened,
                     calendar=calendar, columns=columns)


MODELS = {"gmfm66": _gmfm66, "normal": _normal}
