"""Responder analyses: the share of children reaching a minimal clinically important GMFM-66 change.

A child responds when the change from baseline at ``visit`` is at least ``mcid`` GMFM-66 points
(``endpoint="change"``), or when the score at ``visit`` is at least ``mcid`` (``endpoint="final"``).
The default ``mcid`` of 1.5 points is the middle of the roughly 1-2 point GMFM-66 MCIDs recalled
(low confidence, not re-checked against the paper's tables) from Oeffinger et al. 2008, Dev Med
Child Neurol 50:918-925, doi:10.1111/j.1469-8749.2008.03150.x (ambulatory children, GMFCS I-III);
see the reference parameters, section 2.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from cbcp_sim.analysis.inference import Estimates, guarded
from cbcp_sim.analysis.moments import outcome

#: Default responder threshold, GMFM-66 points (RECALLED, low confidence: Oeffinger et al. 2008).
MCID = 1.5


def fisher(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int, *,
           endpoint: str = "change", mcid: float = MCID) -> Estimates:
    """Fisher's exact test of responder proportions, active vs control.

    ``p_two`` is R's ``fisher.test``: the sum of the hypergeometric probabilities of tables no more
    likely than the observed one (relative tolerance ``1e-7``); ``p_upper`` is
    ``P(X >= active responders)``, R's ``alternative = "greater"``. The estimate and its standard
    error are those of :func:`chisquare`.
    """
    x0, x1, n0, n1 = _table(values, observed, treated, visit, endpoint, mcid)
    grid = np.arange(int((n0 + n1).max(initial=0)) + 1)
    pmf = _hypergeom_pmf(grid, (n0 + n1)[:, None], (x0 + x1)[:, None], n1[:, None])
    observed_pmf = np.take_along_axis(pmf, x1[:, None], axis=1)
    p_two = np.minimum(np.where(pmf <= observed_pmf * (1 + 1e-7), pmf, 0.0).sum(axis=1), 1.0)
    p_upper = np.minimum(np.where(grid >= x1[:, None], pmf, 0.0).sum(axis=1), 1.0)
    return _estimates(x0, x1, n0, n1, p_two, p_upper)


def chisquare(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int, *,
              endpoint: str = "change", mcid: float = MCID) -> Estimates:
    """Pearson's chi-square test of responder proportions (no continuity correction).

    ``p_two`` is R's ``chisq.test(table, correct = FALSE)``, i.e. ``prop.test(correct = FALSE)``;
    ``p_upper`` comes from the signed root ``z = (p1 - p0) / sqrt(p (1 - p) (1/n0 + 1/n1))`` with
    ``p`` the pooled proportion. A table with no responders, or only responders, gives ``p = 1``.
    ``estimate`` is the difference in proportions ``p1 - p0``; ``se`` is Agresti & Caffo's (one
    success and one failure added to each arm; Agresti & Caffo 2000, Am Stat 54:280), always
    positive; ``df = inf``.
    """
    x0, x1, n0, n1 = _table(values, observed, treated, visit, endpoint, mcid)
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = (x0 + x1) / (n0 + n1)
        z = (x1 / n1 - x0 / n0) / np.sqrt(pooled * (1 - pooled) * (1.0 / n0 + 1.0 / n1))
    degenerate = (x0 + x1 == 0) | (x0 + x1 == n0 + n1)
    p_two = np.where(degenerate, 1.0, special.chdtrc(1, z**2))
    p_upper = np.where(degenerate, 1.0, special.ndtr(-z))
    return _estimates(x0, x1, n0, n1, p_two, p_upper)


def _table(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int, endpoint: str,
           mcid: float) -> tuple[np.ndarray, ...]:
    """Responders and children, control then active, per replicate ``(R,)``."""
    y, mask = outcome(values, observed, visit, endpoint)
    responds = mask & (y >= mcid)
    treated = np.broadcast_to(treated, mask.shape)
    return ((responds & ~treated).sum(axis=1), (responds & treated).sum(axis=1),
            (mask & ~treated).sum(axis=1), (mask & treated).sum(axis=1))


def _estimates(x0: np.ndarray, x1: np.ndarray, n0: np.ndarray, n1: np.ndarray, p_two: np.ndarray,
               p_upper: np.ndarray) -> Estimates:
    """Difference in proportions with the Agresti-Caffo standard error; NaN where an arm has < 2."""
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = x1 / n1 - x0 / n0
    a0, a1 = (x0 + 1.0) / (n0 + 2.0), (x1 + 1.0) / (n1 + 2.0)
    se = np.sqrt(a0 * (1 - a0) / (n0 + 2.0) + a1 * (1 - a1) / (n1 + 2.0))
    return guarded(estimate, se, np.full(len(x0), np.inf), n0, n1, p_two, p_upper)


def _hypergeom_pmf(x: np.ndarray, total: np.ndarray, successes: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """``P(X = x)`` of the hypergeometric distribution (as ``scipy.stats.hypergeom.pmf(x, total, successes,
    draws)``), 0 outside its support; from log-gamma, without importing scipy.stats."""
    x, total, successes, draws = np.broadcast_arrays(x, total, successes, draws)
    inside = (x >= np.maximum(0, draws - (total - successes))) & (x <= np.minimum(successes, draws))
    x = np.where(inside, x, 0)
    with np.errstate(invalid="ignore"):
        log = (_log_choose(successes, x) + _log_choose(total - successes, draws - x) - _log_choose(total, draws))
    return np.where(inside, np.exp(log), 0.0)


def _log_choose(n: np.ndarray, k: np.ndarray) -> np.ndarray:
    return special.gammaln(n + 1.0) - special.gammaln(k + 1.0) - special.gammaln(n - k + 1.0)
