"""Expected natural change of one child, given age, GMFCS level and baseline score, with a prediction interval.

What a single-arm design compares a treated child against. Under the natural-history model
(:mod:`cbcp_sim.models.natural_history`) a child's curve depends on two random effects, the limit deviate ``u``
and the rate deviate ``w``. The observed baseline score updates them (Bayes); the follow-up score is the
child's curve plus new within-child noise. So the predictive distribution of the change is a mixture, over
the posterior of ``(u, w)``, of the follow-up score (normal before the scale map, correlated with the
baseline through the child's fluctuation) minus the baseline score, computed by quadrature (a fine grid in
``u``, Gauss-Hermite in ``w``): no simulation error. The SEM is taken at the curve value (without the
fluctuation), a small approximation to the simulation model.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import ndtr

from cbcp_sim.errors import ScenarioError
from cbcp_sim.models import natural_history
from cbcp_sim.scenario import NaturalHistory

#: Grid of the limit deviate u (standard normal): fine enough for the sharp posterior of older children.
U_GRID = np.linspace(-6.0, 6.0, 481)
#: Gauss-Hermite nodes for the rate deviate w and for the follow-up noise.
W_NODES = 24
NOISE_NODES = 16
#: Children handled at once: arrays of CHUNK x 481 x 24 (x 16 noise nodes) doubles, about 24 MB at most.
CHUNK = 16


@dataclass(frozen=True)
class ExpectedChange:
    """Predictive distribution of the natural change in GMFM-66 over the follow-up, one value per child."""

    mean: np.ndarray   #: expected change (points)
    sd: np.ndarray     #: SD of the change (points)
    lower: np.ndarray  #: lower end of the prediction interval (points)
    upper: np.ndarray  #: upper end of the prediction interval (points)
    level: float       #: coverage of the interval


def _gauss(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (summing to 1) for an expectation over a standard normal."""
    x, w = hermegauss(n)
    return x, w / w.sum()


def expected_change(nh: NaturalHistory, gmfcs: np.ndarray, age: np.ndarray, baseline: np.ndarray,
                    months: float, *, level: float = 0.95, trial_effect: bool = False) -> ExpectedChange:
    """Expected natural change over ``months`` for children of GMFCS ``gmfcs`` (1-5), ``age`` (years) and
    observed ``baseline`` GMFM-66, with a ``level`` prediction interval for the observed change.

    ``trial_effect=False`` gives the change the growth curves predict, as single-arm trials use them; True
    adds the scenario's trial effect (what an enrolled untreated child is expected to gain).
    """
    gmfcs, age, baseline = np.broadcast_arrays(np.asarray(gmfcs, dtype=int), np.asarray(age, dtype=float),
                                               np.asarray(baseline, dtype=float))
    _check(gmfcs, age, baseline, months, level)
    if not trial_effect:
        nh = dataclasses.replace(nh, trial_effect_per_year=0.0)
    flat = [a.ravel() for a in (gmfcs, age, baseline)]
    parts = [_predict(nh, *(a[i:i + CHUNK] for a in flat), months, level) for i in range(0, flat[0].size, CHUNK)]
    out = [np.concatenate([p[j] for p in parts]).reshape(gmfcs.shape) if parts else np.empty(gmfcs.shape)
           for j in range(4)]
    return ExpectedChange(*out, level=level)


def _check(gmfcs: np.ndarray, age: np.ndarray, baseline: np.ndarray, months: float, level: float) -> None:
    if not np.isin(gmfcs, (1, 2, 3, 4, 5)).all():
        raise ScenarioError("gmfcs", "must be GMFCS levels 1-5")
    if not ((age >= 0.0) & (age <= 21.0)).all():
        raise ScenarioError("age", "must be in [0, 21] years")
    if not ((baseline > 0.0) & (baseline < 100.0)).all():
        raise ScenarioError("baseline", "must be a GMFM-66 score in (0, 100)")
    if not 0.0 <= months <= 240.0:
        raise ScenarioError("months", f"must be in [0, 240], got {months:g}")
    if not 0.0 < level < 1.0:
        raise ScenarioError("level", f"must be in (0, 1), got {level:g}")


def _predict(nh: NaturalHistory, gmfcs: np.ndarray, age: np.ndarray, baseline: np.ndarray, months: float,
             level: float) -> tuple[np.ndarray, ...]:
    """Mean, SD and interval of the change for a block of children (arrays ``(n,)``).

    Per quadrature node the child's curve gives true scores ``T0, T1``; the baseline residual
    ``e0 = h^-1(baseline) - T0`` has variance ``v0 = occasion_sd^2 + sem(T0)^2``, and the follow-up residual,
    correlated with it through the fluctuation, is normal given ``e0``.
    """
    w_nodes, w_weights = _gauss(W_NODES)
    prior = np.exp(-0.5 * U_GRID**2)[:, None] * w_weights[None, :]
    g = gmfcs[:, None, None]
    growth = natural_history.random_effects(nh, g, U_GRID[None, :, None], w_nodes[None, None, :])
    a = age[:, None, None]
    t0 = natural_history.curve(nh, g, growth.limit, growth.tau, a)
    t1 = (natural_history.curve(nh, g, growth.limit, growth.tau, a + months / 12.0)
          + natural_history.trial_effect(nh, np.asarray(months)))
    shared = nh.occasion_sd**2
    v0 = shared + natural_history.sem(nh, t0) ** 2
    v1 = shared + natural_history.sem(nh, t1) ** 2
    e0 = natural_history.from_scale(baseline)[:, None, None] - t0
    log_post = np.log(prior) - 0.5 * (e0**2 / v0 + np.log(v0))
    post = np.exp(log_post - log_post.max(axis=(1, 2), keepdims=True))
    post /= post.sum(axis=(1, 2), keepdims=True)
    beta = shared * natural_history.occasion_correlation(nh, months) / v0
    centre = t1 + beta * e0
    sd1 = np.sqrt(v1 - beta**2 * v0)
    e_nodes, e_weights = _gauss(NOISE_NODES)
    y1 = natural_history.to_scale(centre[..., None] + sd1[..., None] * e_nodes)
    mean1 = (post * (y1 * e_weights).sum(-1)).sum(axis=(1, 2))
    second = (post * (y1**2 * e_weights).sum(-1)).sum(axis=(1, 2))
    sd = np.sqrt(np.maximum(second - mean1**2, 0.0))
    tail = (1.0 - level) / 2.0
    lower, upper = (natural_history.to_scale(_mixture_quantile(post, centre, sd1, q)) for q in (tail, 1.0 - tail))
    return mean1 - baseline, sd, lower - baseline, upper - baseline


def _mixture_quantile(weights: np.ndarray, centre: np.ndarray, sd: np.ndarray, q: float) -> np.ndarray:
    """Per child, the ``q`` quantile of a mixture of normals (before :func:`to_scale`), by bisection."""
    axes = tuple(range(1, weights.ndim))
    lo = (centre - 10.0 * sd).min(axis=axes)
    hi = (centre + 10.0 * sd).max(axis=axes)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        shape = (-1,) + (1,) * len(axes)
        below = (weights * ndtr((mid.reshape(shape) - centre) / sd)).sum(axis=axes) < q
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return 0.5 * (lo + hi)


#: Age grid (years) of :func:`mean_change`'s table; linear interpolation between its points.
MEAN_AGES = np.linspace(0.0, 21.0, 169)
#: Nodes for the limit deviate in :func:`mean_change` (prior, not posterior: a coarse grid is exact enough).
MEAN_U_NODES = 48


def mean_change(nh: NaturalHistory, gmfcs: np.ndarray, age: np.ndarray, months: float) -> np.ndarray:
    """Expected observed natural change over ``months`` of an enrolled child of GMFCS ``gmfcs`` and ``age``
    (years), over every child of that level and age (not given the baseline): what a single-arm trial
    compares each child's change against. The trial effect is included.

    By quadrature over both random effects and the measurement noise, from a table over :data:`MEAN_AGES`
    per level (cached per natural history and follow-up), interpolated linearly in age.
    """
    table = _mean_change_table(nh, float(months))
    gmfcs = np.asarray(gmfcs, dtype=int)
    out = np.empty(np.shape(gmfcs))
    for g in range(1, 6):
        at = gmfcs == g
        out[at] = np.interp(np.asarray(age)[at], MEAN_AGES, table[g - 1])
    return out


@functools.lru_cache(maxsize=32)
def _mean_change_table(nh: NaturalHistory, months: float) -> np.ndarray:
    """``(5, len(MEAN_AGES))`` expected observed change by GMFCS level and age."""
    u, u_weights = _gauss(MEAN_U_NODES)
    w, w_weights = _gauss(W_NODES)
    e, e_weights = _gauss(NOISE_NODES)
    weights = u_weights[:, None, None] * w_weights[None, :, None] * e_weights[None, None, :]
    out = np.empty((5, MEAN_AGES.size))
    for g in range(1, 6):
        growth = natural_history.random_effects(nh, g, u[:, None], w[None, :])
        a = MEAN_AGES[:, None, None]
        scores = []
        for later, gain in ((0.0, 0.0), (months / 12.0, natural_history.trial_effect(nh, np.asarray(months)))):
            true = natural_history.curve(nh, g, growth.limit, growth.tau, a + later) + gain
            sd = np.sqrt(nh.occasion_sd**2 + natural_history.sem(nh, true) ** 2)
            y = natural_history.to_scale(true[..., None] + sd[..., None] * e)
            scores.append((y * weights).sum(axis=(1, 2, 3)))
        out[g - 1] = scores[1] - scores[0]
    return out
