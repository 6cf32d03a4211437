"""Simulated trial data for one chunk of replicates, under the scenario and under no effect.

Three outcome models share one output, :class:`TrialData`:

- ``gmfm66``: children (population) -> allocation -> natural motor growth -> each arm's regimen (cell
  effect, expectation response, assessor bias; :mod:`cbcp_sim.models.follow_up`, as the trajectories) -> dropout.
- ``normal``: baseline and primary-visit scores bivariate normal with SD ``sd`` (one per arm, or one for all) and
  correlation ``correlation``; active arms shifted by ``effect`` at the primary visit; a crossover adds the end of
  period 2, a single arm the change it is judged against. For checks against closed-form power and for users who
  think in effect sizes.
- ``mvn``: every child's scores at the visits multivariate normal, from a pilot study's visit means, SDs and
  correlations (:mod:`cbcp_sim.scenario.mvn`); cells add an effect per visit (docs/designs.md).

Both data sets (with and without effect) use the same random numbers, so the type I error is
estimated on exactly the trials whose power is reported. The visits simulated are those the analyses
read: baseline and the primary visit, or every visit for longitudinal analyses and crossover designs
(the growth, fluctuation and dropout processes are sampled exactly at those times); the normal model always
simulates baseline and the primary visit, and in a crossover the last visit; the mvn model draws the visits the
analyses read, from their own covariance.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from cbcp_sim.models import (
    dropout,
    expected_change,
    follow_up,
    operations,
    population,
    randomisation,
    summaries,
    treatment,
)
from cbcp_sim.models.follow_up import FollowUp
from cbcp_sim.models.layout import Layout, arm_sizes, arm_slices, fixed_layout, place
from cbcp_sim.models.operations import Calendar
from cbcp_sim.models.streams import Streams
from cbcp_sim.scenario import Scenario, mvn
from cbcp_sim.scenario.products import Regimen
from cbcp_sim.scenario.spec import treated_arms
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
    covariates: dict[str, np.ndarray]  #: per-child (R, N): age (years), gmfcs, dose (10^7 TNC/kg), weight (kg)
    expected: np.ndarray | None        #: (R, N) expected natural change (single arm; bayes "vs_expected")
    screened: np.ndarray       #: (R,) children screened to enrol N
    calendar: Calendar | None = None  #: the trial calendar (every visit of design.visits), when simulated
    columns: np.ndarray | None = None  #: (V,) with a calendar: the simulated visits' indices in design.visits
    #: with analysis.dose_slope: (R, K) the doses of the K treated children
    #: (:func:`cbcp_sim.scenario.spec.treated_arms`), in child order
    dose_grid: np.ndarray | None = None
    #: with analysis.dose_slope: (R, K, K) each treated child's cell effect at the primary visit under their cells
    #: alone (score minus untreated score) had it received dose ``dose_grid[:, k]``
    dose_effects: np.ndarray | None = None

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
    (fixed arm sizes, or a model without children: normal, mvn) or in enrolment order (block randomisation)."""
    d = s.design
    if s.outcome.model != "gmfm66" or d.randomisation == "fixed":
        return arm_sizes(d), True
    return (sum(d.n_per_arm),), False


def _calendar(s: Scenario, layout: Layout, months: np.ndarray, n_reps: int,
              streams: Streams) -> tuple[Calendar | None, np.ndarray | None]:
    """The trial calendar when ``operations.enabled``, with the indices of the simulated visits ``months``."""
    if not s.operations.enabled:
        return None, None
    calendar = operations.schedule(s, layout.sizes, layout.by_arm, n_reps, streams)
    return calendar, np.searchsorted(s.design.visits, months)


def _dose_months(s: Scenario, regimen: Regimen, calendar: Calendar | None) -> list[np.ndarray] | None:
    """With a calendar, each child's month of each dose ``(R, N)``: a dose scheduled at a follow-up visit is given
    at the child's actual time of that visit, after its assessment (a crossover's switch, a repeat dose); any
    other on schedule. Without one, None (the schedule's)."""
    if calendar is None:
        return None
    schedule = s.design.visits
    shape = calendar.dropout.shape
    return [calendar.months[..., schedule.index(dose.month)] if dose.month > 0.0 and dose.month in schedule
            else np.full(shape, dose.month) for dose in regimen.doses]


def generate(scenario: Scenario, n_reps: int, streams: Streams) -> TrialData:
    """Simulate ``n_reps`` trials of ``scenario`` from ``streams``."""
    return MODELS[scenario.outcome.model](scenario, n_reps, streams)


def _layout(s: Scenario, n_reps: int, streams: Streams) -> tuple[Layout, population.Children]:
    """Enrol the children and allocate them to arms."""
    d = s.design
    sizes, by_arm = storage(s)
    if by_arm:
        layout = fixed_layout(d, n_reps)
        return layout, population.enrol(s.population, s.eligibility, layout.sizes, n_reps, streams)
    enrolled = population.enrol(s.population, s.eligibility, sizes, n_reps, streams)
    stratum = randomisation.strata(d, enrolled.gmfcs, enrolled.age, enrolled.dose)
    arm = randomisation.assign(d, stratum, streams.rng("randomisation", 0))
    return Layout(sizes=sizes, arm=arm, by_arm=False), enrolled


def _gmfm66(s: Scenario, n_reps: int, streams: Streams) -> TrialData:
    months = visits(s)
    primary = int(np.flatnonzero(months == s.design.primary_visit)[0])
    layout, enrolled = _layout(s, n_reps, streams)
    sizes = layout.sizes
    calendar, columns = _calendar(s, layout, months, n_reps, streams)
    times = months if calendar is None else calendar.months[..., columns]
    untreated = follow_up.draw(s, enrolled, times, sizes, streams)
    values, null_values = np.empty_like(untreated.true), np.empty_like(untreated.true)
    for j, regimen in enumerate(s.regimens):
        where = layout.select(j)
        followed = follow_up.follow(s, regimen, untreated, where, dose_months=_dose_months(s, regimen, calendar),
                                    without_cells=True)
        place(null_values, where, followed.without_cells)
        place(values, where, followed.scores)
    under = _under(s, layout, untreated.at(slice(primary, primary + 1)), values[..., primary],
                   null_values[..., primary], calendar)
    observed, null_observed = _observed(s, times, sizes, n_reps, streams, values, null_values, calendar, columns)
    covariates = {"age": enrolled.age, "gmfcs": enrolled.gmfcs.astype(float), "dose": enrolled.dose,
                  "weight": enrolled.weight}
    grid = effects = None
    if s.analysis.dose_slope:
        grid, effects = _dose_effects(s, layout, enrolled.dose, untreated.at(slice(primary, primary + 1)),
                                      under[-1], calendar)
    expected = None
    if s.design.kind == "single_arm" or (s.bayes is not None and s.bayes.endpoint == "vs_expected"):
        expected = (expected_change.mean_change(s.natural_history, enrolled.gmfcs, enrolled.age,
                                                s.design.primary_visit)
                    + s.analysis.expected_error)
    return TrialData(months=months, primary=primary, switch=_switch(s, months), arm=layout.arm, values=values,
                     null_values=null_values, observed=observed, null_observed=null_observed, under=under,
                     covariates=covariates, expected=expected,
                     screened=enrolled.screened if calendar is None else calendar.screened,
                     calendar=calendar, columns=columns, dose_grid=grid, dose_effects=effects)


def _dose_effects(s: Scenario, layout: Layout, dose: np.ndarray, at_primary: FollowUp, natural: np.ndarray,
                  calendar: Calendar | None) -> tuple[np.ndarray, np.ndarray]:
    """The doses ``(R, K)`` of the K treated children (:func:`cbcp_sim.scenario.spec.treated_arms`), in child
    order, and each treated child's cell effect at the primary visit under their cells alone at each of those doses
    ``(R, K, K)``: its score (the noise and true score of ``at_primary``) minus its untreated score ``natural``
    ``(R, N)``. No random numbers are drawn."""
    arms = treated_arms(s)
    regimen = s.regimens[arms[0]]
    arm = np.broadcast_to(layout.arm, dose.shape)
    k = sum(s.design.n_per_arm[j] for j in arms)
    order = np.argsort(~np.isin(arm, arms), axis=1, kind="stable")[:, :k]

    def treated(a: np.ndarray) -> np.ndarray:
        a = np.broadcast_to(a, (*dose.shape, *a.shape[2:]))
        return np.take_along_axis(a, order.reshape(*order.shape, *[1] * (a.ndim - 2)), axis=1)

    grid = treated(dose)
    months = at_primary.months if at_primary.months.ndim == 1 else treated(at_primary.months)
    given = _dose_months(s, regimen, calendar)
    given = None if given is None else [treated(g) for g in given]
    children = FollowUp(months=months, true=treated(at_primary.true), noise=treated(at_primary.noise),
                        recipient={key: treated(v) for key, v in at_primary.recipient.items()})
    effects = np.empty((*grid.shape, k))
    for c in range(k):
        at = dataclasses.replace(children, recipient={**children.recipient,
                                                      "dose": np.broadcast_to(grid[:, c:c + 1], grid.shape)})
        effects[..., c] = follow_up.follow(s, regimen, at, dose_months=given, nonspecific=False).scores[..., 0]
    effects -= treated(natural)[..., None]
    return grid, effects


def _under(s: Scenario, layout: Layout, at_primary: FollowUp, values: np.ndarray, null_values: np.ndarray,
           calendar: Calendar | None = None) -> np.ndarray:
    """``(k + 1, R, N)``: every child's score at the primary visit (the one month of ``at_primary``) under each
    arm's cells alone (no expectation response or assessor bias), and last untreated, for the true effect of
    each comparison.

    Where children are stored by arm and an arm has no expectation response or assessor bias at that visit, its
    children's simulated ``values`` (and ``null_values``) ``(R, N)`` already are those scores: only the rest are
    simulated again, from the same true scores and noise.
    """
    regimens = s.regimens
    groups = arm_slices(layout.sizes) if layout.by_arm else [slice(None)]
    plain = [layout.by_arm and not treatment.nonspecific(s.treatment, r, s.design.blinding, at_primary.months).any()
             for r in regimens]

    def fill(regimen: Regimen, known: set[int], source: np.ndarray) -> np.ndarray:
        """Scores under ``regimen``'s cells alone, from ``source`` for the children of the ``known`` groups."""
        out = np.empty(values.shape)
        given = _dose_months(s, regimen, calendar)
        for g, where in enumerate(groups):
            if g in known:
                out[:, where] = source[:, where]
            else:
                followed = follow_up.follow(s, regimen, at_primary, where, dose_months=given, nonspecific=False)
                out[:, where] = followed.scores[..., 0]
        return out

    natural = fill(follow_up.UNTREATED, {j for j, p in enumerate(plain) if p}, null_values)
    out = [fill(r, {j} if plain[j] else set(), values) if r.doses else natural for j, r in enumerate(regimens)]
    return np.stack([*out, natural])


def _observed(s: Scenario, months: np.ndarray, sizes: tuple[int, ...], n_reps: int, streams: Streams,
              values: np.ndarray, null_values: np.ndarray, calendar: Calendar | None = None,
              columns: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the visits seen in the trials with and without the cell effect: one mask under MCAR, each its
    own under MAR and MNAR (dropout follows the children's scores, seen or not). With a calendar, at each
    child's actual visit times (``months`` ``(R, N, V)``), and missed visits are not seen either."""
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


def _gains(s: Scenario, k: int) -> np.ndarray:
    """``(k, V)``: what cells add to each arm's mean score at each visit of the normal model. ``effect`` at the
    primary visit to every arm but the reference (to the one arm of a single-arm design); in a crossover the
    placebo-first sequence gains ``effect`` over period 2 and the cells-first one ``carryover``."""
    o, d = s.outcome, s.design
    if d.kind == "crossover":
        return np.array([[0.0, 0.0, o.effect], [0.0, o.effect, o.effect + o.carryover]])
    first = 0 if d.kind == "single_arm" else 1
    return np.stack([np.zeros(k), np.where(np.arange(k) >= first, o.effect, 0.0)], axis=1)


def _normal(s: Scenario, n_reps: int, streams: Streams) -> TrialData:
    """The normal model, each child with its arm's ``sd``: baseline ``sd Z0``, primary visit
    ``correlation x baseline + sd sqrt(1 - correlation^2) Z1 + expected_change``. A crossover (primary visit at the
    switch) adds its last visit, the end of period 2: a period-2 change of mean ``expected_change + period_effect``,
    correlated ``within_correlation`` with the period-1 change and of the same SD, ``sd sqrt(2 (1 - correlation))``
    (the AB/BA model of [Senn 2002] on the period changes). Cells then add :func:`_gains`. A run that reads only
    each arm's mean and sum of squares draws those (:mod:`cbcp_sim.models.summaries`), and its children are
    rebuilt from them."""
    o, d = s.outcome, s.design
    layout = fixed_layout(d, n_reps)
    sizes = layout.sizes
    crossover = d.kind == "crossover"
    months = np.array([0.0, d.primary_visit, *([d.visits[-1]] if crossover else [])])
    if summaries.summarised(s):
        null_values, seen = summaries.children(s, summaries.draw(s, n_reps, streams), streams)
        return _shifted(s, layout, months, 1, null_values, _gains(s, len(sizes)), o.expected_change, streams, seen)
    sd = np.repeat(np.broadcast_to(o.sd, len(sizes)), sizes)
    null_values = np.empty((n_reps, sum(sizes), len(months)))
    baseline = streams.per_child("baseline", sizes, n_reps)
    baseline *= sd
    null_values[..., 0] = baseline
    primary = streams.per_child("primary", sizes, n_reps)
    primary *= sd * math.sqrt(1.0 - o.correlation**2)
    primary += o.correlation * baseline
    primary += o.expected_change
    null_values[..., 1] = primary
    if crossover:
        change = null_values[..., 1] - null_values[..., 0] - o.expected_change  # period 1, about its mean
        spread = sd * math.sqrt(2.0 * (1.0 - o.correlation) * (1.0 - o.within_correlation**2))
        null_values[..., 2] = (null_values[..., 1] + o.expected_change + o.period_effect
                               + o.within_correlation * change + spread * streams.per_child("period2", sizes, n_reps))
    return _shifted(s, layout, months, 1, null_values, _gains(s, len(sizes)), o.expected_change, streams)


def _shifted(s: Scenario, layout: Layout, months: np.ndarray, primary: int, null_values: np.ndarray,
             gains: np.ndarray, expected_change: float, streams: Streams, seen: np.ndarray | None = None) -> TrialData:
    """The trials of a model without children (normal, mvn) from their scores without cells ``null_values``
    ``(R, N, V)`` at ``months`` (stored by arm) and what cells add to each arm's mean at each visit, ``gains``
    ``(k, V)``; a single arm's children expect ``expected_change`` (plus ``analysis.expected_error``). The visits
    ``seen`` ``(R, N, V)`` when given (MCAR, no calendar), else drawn by the dropout model."""
    n_reps, sizes = null_values.shape[0], layout.sizes
    values = null_values + np.repeat(gains, sizes, axis=0)
    under = np.empty((len(gains) + 1, *null_values.shape[:2]))
    under[-1] = null_values[..., primary]
    np.add(under[-1], gains[:, primary, None, None], out=under[:-1])
    calendar, columns = _calendar(s, layout, months, n_reps, streams)
    times = months if calendar is None else calendar.months[..., columns]
    observed, null_observed = ((seen, seen) if seen is not None else
                               _observed(s, times, sizes, n_reps, streams, values, null_values, calendar, columns))
    expected = (np.full(layout.arm.shape, expected_change + s.analysis.expected_error)
                if s.design.kind == "single_arm" else None)
    return TrialData(months=months, primary=primary, switch=_switch(s, months), arm=layout.arm, values=values,
                     null_values=null_values, observed=observed, null_observed=null_observed, under=under,
                     covariates={}, expected=expected,
                     screened=np.full(n_reps, sum(sizes)) if calendar is None else calendar.screened,
                     calendar=calendar, columns=columns)


def _mvn_gains(s: Scenario, months: np.ndarray) -> np.ndarray:
    """``(k, V)``: what cells add to each arm's mean score at the simulated visits ``months`` of the mvn model.
    Parallel: each active arm its row of :func:`cbcp_sim.scenario.mvn.effects`, the reference none; single arm: its
    row. Crossover: the row is the effect at so many months since a sequence's cells (linear between visits, held
    after the last): the cells-first sequence follows it from month 0, the placebo-first one from the switch."""
    o, d = s.outcome, s.design
    effect = mvn.effects(o, d)
    if d.kind == "crossover":
        profile = effect[0]
        later = np.interp(months - d.crossover_month, d.visits, profile, left=0.0)
        return np.stack([later, np.interp(months, d.visits, profile)])
    at = effect[:, np.searchsorted(d.visits, months)]
    return at if d.kind == "single_arm" else np.concatenate([np.zeros((1, months.size)), at])


def _mvn(s: Scenario, n_reps: int, streams: Streams) -> TrialData:
    """The multivariate-normal model: each child's scores at the simulated visits ``months`` (:func:`visits`),
    without cells, are ``control means + L z``, ``L L^T`` the covariance of those visits
    (:mod:`cbcp_sim.scenario.mvn`) and ``z`` one standard normal per visit from the ``visits`` stream; cells then
    add :func:`_mvn_gains`."""
    o, d = s.outcome, s.design
    layout = fixed_layout(d, n_reps)
    months = visits(s)
    at = np.searchsorted(d.visits, months)
    chol = np.linalg.cholesky(mvn.covariance(o, d)[np.ix_(at, at)])
    z = streams.per_child("visits", layout.sizes, n_reps, extra=(months.size,))
    means = mvn.control_means(o, d)[at]
    null_values = means + z @ chol.T
    primary = int(np.flatnonzero(months == d.primary_visit)[0])
    return _shifted(s, layout, months, primary, null_values, _mvn_gains(s, months), means[primary] - means[0],
                    streams)


MODELS = {"gmfm66": _gmfm66, "normal": _normal, "mvn": _mvn}
