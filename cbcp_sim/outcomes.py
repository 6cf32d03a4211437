"""Simulated trial data for one chunk of replicates, under the scenario and under no effect.

Two outcome models share one output, :class:`TrialData`:

- ``gmfm66``: children (population) -> natural motor growth -> cell effect -> dropout.
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
    effect_sum: float        #: sum over all R x N children of their effect at the primary visit if treated
    screened: np.ndarray     #: (R,) children screened to enrol N

    @property
    def n_children(self) -> int:
        return self.values.shape[0] * self.values.shape[1]


def simulate(scenario: Scenario, n_reps: int, streams: Streams) -> TrialData:
    """Simulate ``n_reps`` trials of ``scenario`` from ``streams``."""
    return MODELS[scenario.outcome.model](scenario, n_reps, streams)


def _gmfm66(s: Scenario, n_reps: int, streams: Streams) -> TrialData:
    sizes = parallel.arm_sizes(s.design)
    is_treated = parallel.treated(sizes)
    months = np.array([0.0, s.design.primary_visit])
    k = 1
    children = population.enrol(s.population, s.eligibility, sizes, n_reps, streams)
    nh = s.natural_history
    true = natural_history.true_scores(nh, children.gmfcs, children.age, months, sizes, streams)
    noise = natural_history.measurement_noise(sizes, n_reps, len(months), streams)
    peak = treatment.effect_size(s.treatment, children.dose, treatment.response(s.treatment, sizes, n_reps, streams))
    effect = peak[..., None] * treatment.time_course(s.treatment, months)
    null_values = natural_history.observe(nh, true, noise)
    values = null_values.copy()
    values[:, is_treated] = natural_history.observe(nh, true[:, is_treated] + effect[:, is_treated],
                                                    noise[:, is_treated])
    individual = natural_history.observe(nh, true[..., k] + effect[..., k], noise[..., k]) - null_values[..., k]
    return TrialData(months=months, primary=k, treated=is_treated, values=values, null_values=null_values,
                     observed=dropout.observed(s.dropout, months, sizes, n_reps, streams),
                     effect_sum=float(individual.sum()), screened=children.screened)


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
