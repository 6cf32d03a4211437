"""Simulated trial data for one chunk of replicates, under the scenario and under no effect.

Two outcome models share one output, :class:`TrialData`:

- ``gmfm66``: children (population) -> natural motor growth -> each arm's regimen (cell effect,
  expectation response, assessor bias) -> dropout.
- ``normal``: baseline and primary-visit scores bivariate normal with SD ``sd`` and correlation
  ``correlation``; active arms shifted by ``effect`` at the primary visit. For checks against
  closed-form power and for users who think in effect sizes.

Both data sets (with and without effect) use the same random numbers, so the type I error is
estimated on exactly the trials whose power is reported. Both models simulate the visits the
analyses read, baseline and the primary visit (the growth, fluctuation and dropout processes are
sampled exactly at those times, so nothing is approximated by leaving out the others).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cbcp_sim import dropout, natural_history, population, treatment
from cbcp_sim.designs import parallel
from cbcp_sim.scenario import Scenario
from cbcp_sim.streams import Streams


@dataclass(frozen=True)
class TrialData:
    """Observed arrays of ``R`` simulated trials with ``N`` children and ``V`` visits."""

    months: np.ndarray       #: (V,) visit times, months after infusion
    primary: int             #: index of the primary visit
    treated: np.ndarray      #: (N,) True for active-arm children
    values: np.ndarray       #: (R, N, V) outcome under the scenario's effect
    null_values: np.ndarray  #: (R, N, V) the same trials with no treatment effect
    observed: np.ndarray     #: (R, N, V) True where the value was observed
    effect_sum: float        #: sum over all R x N children of their cell effect at the primary visit, arm 1 vs 0
    screened: np.ndarray     #: (R,) children screened to enrol N

    @property
    def n_children(self) -> int:
        return self.values.shape[0] * self.values.shape[1]


def simulate(scenario: Scenario, n_reps: int, streams: Streams) -> TrialData:
    """Simulate ``n_reps`` trials of ``scenario`` from ``streams``."""
    return MODELS[scenario.outcome.model](scenario, n_reps, streams)


def _gmfm66(s: Scenario, n_reps: int, streams: Streams) -> TrialData:
    sizes = parallel.arm_sizes(s.design)
    months = np.array([0.0, s.design.primary_visit])
    k = 1
    children = population.enrol(s.population, s.eligibility, sizes, n_reps, streams)
    nh, t = s.natural_history, s.treatment
    true, kids = natural_history.true_scores(nh, children.gmfcs, children.age, months, sizes, streams)
    noise = natural_history.measurement_noise(sizes, n_reps, len(months), streams)
    child = treatment.recipients(t, children, kids.limit, sizes, streams)
    values, null_values = np.empty_like(true), np.empty_like(true)
    regimens, arms = s.regimens, parallel.arm_slices(sizes)
    gains = [treatment.nonspecific(t, r, s.design.blinding, months) for r in regimens]

    def of(arm: slice) -> dict[str, np.ndarray]:
        return {key: v[:, arm] for key, v in child.items()}

    for regimen, arm, gain in zip(regimens, arms, gains, strict=True):
        base = true[:, arm] + gain
        null_values[:, arm] = natural_history.observe(nh, base, noise[:, arm])
        if regimen.doses:
            effect = treatment.cell_effect(t, regimen, months, **of(arm))
            values[:, arm] = natural_history.observe(nh, base + effect, noise[:, arm])
        else:
            values[:, arm] = null_values[:, arm]
    under = [np.empty(true.shape[:2]) for _ in range(2)]
    for j, u in enumerate(under):  # every child's score at the primary visit under arm j's cells alone
        for i, (arm, gain) in enumerate(zip(arms, gains, strict=True)):
            if gain[k] == 0.0 and (i == j or not regimens[j].doses):
                u[:, arm] = (values if i == j else null_values)[:, arm, k]  # already simulated
            else:
                effect = treatment.cell_effect(t, regimens[j], months[k:], **of(arm))
                u[:, arm] = natural_history.observe(nh, true[:, arm, k] + effect[..., 0], noise[:, arm, k])
    return TrialData(months=months, primary=k, treated=parallel.treated(sizes), values=values,
                     null_values=null_values, observed=dropout.observed(s.dropout, months, sizes, n_reps, streams),
                     effect_sum=float((under[1] - under[0]).sum()), screened=children.screened)


def _normal(s: Scenario, n_reps: int, streams: Streams) -> TrialData:
    o = s.outcome
    sizes = parallel.arm_sizes(s.design)
    is_treated = parallel.treated(sizes)
    months = np.array([0.0, s.design.primary_visit])
    null_values = np.empty((n_reps, sum(sizes), 2))
    null_values[..., 0] = o.sd * streams.per_child("baseline", sizes, n_reps)
    null_values[..., 1] = (o.correlation * null_values[..., 0]
                           + o.sd * math.sqrt(1.0 - o.correlation**2) * streams.per_child("primary", sizes, n_reps))
    values = null_values.copy()
    values[:, is_treated, 1] += o.effect
    return TrialData(months=months, primary=1, treated=is_treated, values=values, null_values=null_values,
                     observed=dropout.observed(s.dropout, months, sizes, n_reps, streams),
                     effect_sum=o.effect * n_reps * sum(sizes), screened=np.full(n_reps, sum(sizes)))


MODELS = {"gmfm66": _gmfm66, "normal": _normal}
