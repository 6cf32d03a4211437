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

from cbcp_sim import dropout, expected_change, natural_history, population, treatment
from cbcp_sim.cells import Regimen
from cbcp_sim.designs import parallel, randomisation
from cbcp_sim.scenario import LONGITUDINAL_ANALYSES, Scenario
from cbcp_sim.streams import Streams


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


def simulate(scenario: Scenario, n_reps: int, streams: Streams) -> TrialData:
    """Simulate ``n_reps`` trials of ``scenario`` from ``streams``."""
    return MODELS[scenario.outcome.model](scenario, n_reps, streams)


def _layout(s: Scenario, n_reps: int, streams: Streams) -> tuple[parallel.Layout, population.Children]:
    """Enrol the children and allocate them to arms."""
    d = s.design
    if d.randomisation == "fixed":
        layout = parallel.fixed_layout(d, n_reps)
        return layout, population.enrol(s.population, s.eligibility, layout.sizes, n_reps, streams)
    sizes = (sum(d.n_per_arm),)
    children = population.enrol(s.population, s.eligibility, sizes, n_reps, streams)
    stratum = randomisation.strata(d, children.gmfcs, children.age, children.dose)
    arm = randomisation.assign(d, stratum, streams.rng("randomisation", 0))
    return parallel.Layout(sizes=sizes, arm=arm, by_arm=False), children


def _gmfm66(s: Scenario, n_reps: int, streams: Streams) -> TrialData:
    months = visits(s)
    primary = int(np.flatnonzero(months == s.design.primary_visit)[0])
    layout, children = _layout(s, n_reps, streams)
    sizes = layout.sizes
    nh, t = s.natural_history, s.treatment
    true, kids = natural_history.true_scores(nh, children.gmfcs, children.age, months, sizes, streams)
    noise = natural_history.measurement_noise(sizes, n_reps, len(months), streams)
    child = treatment.recipients(t, children, kids.limit, sizes, streams)
    values, null_values = np.empty_like(true), np.empty_like(true)
    regimens = s.regimens
    for j, regimen in enumerate(regimens):
        where = layout.select(j)
        base = parallel.pick(true, where) + treatment.nonspecific(t, regimen, s.design.blinding, months)
        scores = natural_history.observe(nh, base, parallel.pick(noise, where))
        parallel.place(null_values, where, scores)
        if regimen.doses:
            effect = treatment.cell_effect(t, regimen, months, **{k: parallel.pick(v, where) for k, v in child.items()})
            scores = natural_history.observe(nh, base + effect, parallel.pick(noise, where))
        parallel.place(values, where, scores)
    under = _under(s, layout, months[primary:primary + 1], true[..., primary], noise[..., primary], child,
                   values[..., primary], null_values[..., primary])
    observed, null_observed = _observed(s, months, sizes, n_reps, streams, values, null_values)
    covariates = {"age": children.age, "gmfcs": children.gmfcs.astype(float), "dose": children.dose}
    expected = None
    if s.design.kind == "single_arm":
        expected = (expected_change.mean_change(nh, children.gmfcs, children.age, s.design.primary_visit)
                    + s.analysis.expected_error)
    return TrialData(months=months, primary=primary, switch=_switch(s, months), arm=layout.arm, values=values,
                     null_values=null_values, observed=observed, null_observed=null_observed, under=under,
                     covariates=covariates, expected=expected, screened=children.screened)


def _under(s: Scenario, layout: parallel.Layout, month: np.ndarray, true: np.ndarray, noise: np.ndarray,
           child: dict[str, np.ndarray], values: np.ndarray, null_values: np.ndarray) -> np.ndarray:
    """``(k + 1, R, N)``: every child's score at ``month`` under each arm's cells alone (no expectation
    response or assessor bias), and last untreated, for the true effect of each comparison.

    Where children are stored by arm and an arm has no expectation response or assessor bias at ``month``,
    its children's simulated ``values`` (and ``null_values``) already are those scores: only the rest are
    simulated again, from the same true scores and noise.
    """
    nh, t = s.natural_history, s.treatment
    regimens = s.regimens
    n = true.shape[1]
    plain = [layout.by_arm and treatment.nonspecific(t, r, s.design.blinding, month)[0] == 0.0 for r in regimens]
    slices = parallel.arm_slices(layout.sizes) if layout.by_arm else []

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
                score = score + treatment.cell_effect(t, regimen, month,
                                                      **{k: v[:, todo] for k, v in child.items()})[..., 0]
            out[:, todo] = natural_history.observe(nh, score, noise[:, todo])
        return out

    untreated = fill([slices[i] for i in range(len(regimens)) if plain[i]], null_values, None)
    out = [fill([slices[j]] if plain[j] else [], values, r) if r.doses else untreated for j, r in enumerate(regimens)]
    return np.stack([*out, untreated])


def _observed(s: Scenario, months: np.ndarray, sizes: tuple[int, ...], n_reps: int, streams: Streams,
              values: np.ndarray, null_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dropout masks of the trials with and without the cell effect: one mask under MCAR, each its own under
    MAR (dropout follows the scores the children show)."""
    observed = dropout.observed(s.dropout, months, sizes, n_reps, streams, values)
    if s.dropout.mechanism == "mcar":
        return observed, observed
    return observed, dropout.observed(s.dropout, months, sizes, n_reps, streams, null_values)


def _switch(s: Scenario, months: np.ndarray) -> int | None:
    if s.design.kind != "crossover":
        return None
    return int(np.flatnonzero(months == s.design.crossover_month)[0])


def _normal(s: Scenario, n_reps: int, streams: Streams) -> TrialData:
    o = s.outcome
    layout = parallel.fixed_layout(s.design, n_reps)
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
    observed, null_observed = _observed(s, months, sizes, n_reps, streams, values, null_values)
    return TrialData(months=months, primary=1, switch=None, arm=layout.arm, values=values, null_values=null_values,
                     observed=observed, null_observed=null_observed, under=under, covariates={}, expected=None,
                     screened=np.full(n_reps, sum(sizes)))


MODELS = {"gmfm66": _gmfm66, "normal": _normal}
