"""What the natural-history model assumes, summarised over simulated cohorts of untreated children.

- :func:`centiles`: GMFM-66 centiles by age for one GMFCS level (children followed across ages), to set
  beside the published curves (Rosenbaum et al. 2002; Hanna et al. 2008/2009).
- :func:`change_sample` and :func:`change_summary`: the distribution of the natural change over a follow-up
  for children enrolled at ages uniform on a range with a GMFCS mix: what a control arm is expected to do.

Both draw from one ``numpy.random.Generator`` made from ``seed``; the same seed gives the same numbers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from cbcp_sim.models import natural_history
from cbcp_sim.scenario import NaturalHistory

#: Centiles reported (the Hanna et al. 2008 reference-centile set).
CENTILES = (3, 15, 50, 85, 97)
DEFAULT_CHILDREN = 20_000


@dataclass(frozen=True)
class Cohort:
    """Untreated children followed over time: ``scores`` ``(n, T)`` at ``months`` after ``age`` (years)."""

    gmfcs: np.ndarray  #: (n,) GMFCS level
    age: np.ndarray    #: (n,) years at the first assessment
    months: np.ndarray  #: (T,) months after the first assessment
    scores: np.ndarray  #: (n, T) observed GMFM-66


def cohort(nh: NaturalHistory, gmfcs: np.ndarray, age: np.ndarray, months: np.ndarray,
           rng: np.random.Generator) -> Cohort:
    """Simulate children of levels ``gmfcs`` aged ``age`` (years) at month 0, assessed at ``months``."""
    gmfcs, age = np.broadcast_arrays(np.asarray(gmfcs, dtype=int), np.asarray(age, dtype=float))
    months = np.asarray(months, dtype=float)
    n = gmfcs.size
    growth = natural_history.random_effects(nh, gmfcs, rng.standard_normal(n), rng.standard_normal(n))
    true = natural_history.true_scores_from(nh, gmfcs, age, months, growth, rng.standard_normal((n, months.size)))
    scores = natural_history.observe(nh, true, rng.standard_normal((n, months.size)))
    return Cohort(gmfcs=gmfcs, age=age, months=months, scores=scores)


def simulated_centiles(nh: NaturalHistory, gmfcs: int, ages: np.ndarray, *, n_children: int = DEFAULT_CHILDREN,
             seed: int = 1) -> list[dict[str, float]]:
    """Centiles of GMFM-66 at each of ``ages`` (years) for ``n_children`` children of level ``gmfcs``.

    Children are followed from the first age with the trial effect off (they are not in a trial).
    """
    ages = np.asarray(ages, dtype=float)
    quiet = dataclasses.replace(nh, trial_effect_per_year=0.0)
    c = cohort(quiet, np.full(n_children, gmfcs), np.full(n_children, ages[0]), (ages - ages[0]) * 12.0,
               np.random.default_rng(seed))
    q = np.percentile(c.scores, CENTILES, axis=0)
    return [{"age": float(a), "gmfcs": int(gmfcs), **{f"p{k}": float(v) for k, v in zip(CENTILES, q[:, i],
                                                                                          strict=True)}}
            for i, a in enumerate(ages)]


def change_sample(nh: NaturalHistory, enrol_ages: tuple[float, float], mix: np.ndarray, follow_up_months: float,
                  *, n_children: int = DEFAULT_CHILDREN, seed: int = 1) -> np.ndarray:
    """Change in observed GMFM-66 over ``follow_up_months`` of ``n_children`` children enrolled at ages uniform
    on ``enrol_ages`` with GMFCS shares ``mix`` (5 values), including the scenario's trial effect."""
    rng = np.random.default_rng(seed)
    mix = np.asarray(mix, dtype=float)
    gmfcs = rng.choice(5, size=n_children, p=mix / mix.sum()) + 1
    age = rng.uniform(*enrol_ages, size=n_children)
    c = cohort(nh, gmfcs, age, np.array([0.0, follow_up_months]), rng)
    return c.scores[:, 1] - c.scores[:, 0]


def change_summary(change: np.ndarray) -> dict[str, float]:
    """Mean, SD (with the MCSE of the mean) and centiles of a sample of changes (:func:`change_sample`)."""
    q = np.percentile(change, CENTILES)
    sd = float(change.std(ddof=1))
    return {"change_mean": float(change.mean()), "change_sd": sd,
            **{f"p{k}": float(v) for k, v in zip(CENTILES, q, strict=True)},
            "mcse_mean": sd / float(np.sqrt(change.size))}

