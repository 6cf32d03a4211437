"""The distribution of the largest of correlated, possibly non-central, t statistics: what a multiple contrast test
needs for its critical value, adjusted p-values and power.

:func:`max_t_cdf` gives ``P((Z_k + delta_k) / S <= b_k for all k)`` with ``Z ~ N(0, R)`` and
``S ~ sqrt(chi2_df / df)`` independent of ``Z`` (``S = 1`` where ``df`` is inf): the multivariate t of R mvtnorm's
``pmvt(upper = b, corr = R, delta = delta, df = df)`` (non-central in Kshirsagar's sense) with no lower limits.
The correlation may be singular (more contrasts than doses less one, as MCP-Mod often has).

Method: spherical-radial decomposition ([Genz 2009], section 4.1). ``R = L L'`` with ``L`` ``M x r`` (a pivoted
Cholesky factor, ``r`` the rank) and ``Z = L rho u``, ``u`` uniform on the unit sphere of ``R^r`` and ``rho ~ chi_r``
independent. For a direction ``u`` the event is an interval of ``rho``: ``rho (L u)_k <= b_k S - delta_k`` for every
``k``, so its probability is a difference of chi (central: of F, with ``S`` integrated in closed form) distribution
functions, a continuous function of ``u`` even where ``R`` is singular. Directions are a fixed scrambled Sobol'
point set mapped to the sphere, with their antipodes; ``S`` (non-central only) by the Gauss-Legendre rule of
:func:`~cbcp_sim.analysis.multiplicity.s_rule`. The rule is deterministic, so results are reproducible to the last
bit and smooth in ``b`` and ``delta``. With :data:`POINTS` directions the probabilities of the fixture candidate
sets (up to 5 contrasts of 6 doses) are within 2e-6 of scipy's multivariate normal CDF and within 2e-5 of R
mvtnorm's ``pmvt`` (its own error), and move by less than 2e-6 at four times the directions
(``tests/test_mcpmod.py``, docs/dose.md).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import special

from cbcp_sim.analysis.multiplicity import s_rule

#: Sobol' directions per probability (doubled by their antipodes), and the seed of their scrambling.
POINTS = 2**17
SEED = 20230
#: Largest ``bounds x nodes x directions`` block evaluated at once (each a few float64 arrays of this size).
BLOCK = 2**23
_RANK_TOL = 1e-10


@functools.cache
def directions(dims: int, points: int = POINTS) -> np.ndarray:
    """``(2 points, dims)`` unit vectors: a scrambled Sobol' sequence with the fixed seed :data:`SEED` mapped to the
    sphere through the normal quantile, and their antipodes. Cached: do not modify."""
    from scipy.stats import qmc  # scipy.stats takes 0.4 s to import: only runs and commands that test doses pay it

    z = special.ndtri(qmc.Sobol(dims, scramble=True, seed=SEED).random(points))
    u = z / np.linalg.norm(z, axis=1, keepdims=True)
    return np.concatenate([u, -u])


def factor(corr: np.ndarray) -> np.ndarray:
    """A factor ``L`` ``(..., M, r)`` with ``L L' = corr`` for correlation(s) ``(..., M, M)``, ``r`` the rank of
    their mean (the eigenvectors of the mean's positive eigenvalues, rotated to each matrix by its own Cholesky
    factor in that basis)."""
    corr = np.asarray(corr, dtype=float)
    mean = corr.reshape(-1, *corr.shape[-2:]).mean(axis=0)
    values, vectors = np.linalg.eigh(mean)
    keep = values > _RANK_TOL * max(values.max(), 1.0)
    basis = vectors[:, keep]                                           # (M, r), orthonormal
    inner = np.swapaxes(basis, -1, -2) @ corr @ basis                  # (..., r, r)
    return basis @ np.linalg.cholesky(inner)


def max_t_cdf(bounds: np.ndarray, corr: np.ndarray, df: np.ndarray | float,
              delta: np.ndarray | None = None, *, points: int = POINTS) -> np.ndarray:
    """``P((Z_k + delta_k) / S <= b_k, k = 1..M)`` for each row of ``bounds`` ``(B, M)``.

    ``corr`` ``(M, M)`` common to every row or ``(B, M, M)`` one per row; ``df`` a number or ``(B,)`` (inf: normal);
    ``delta`` ``(B, M)`` non-centrality (None: central). Returns ``(B,)``.
    """
    bounds = np.atleast_2d(np.asarray(bounds, dtype=float))
    n_b, m = bounds.shape
    df = np.broadcast_to(np.asarray(df, dtype=float), (n_b,))
    central = delta is None or not np.any(delta)
    one = factor(corr)
    u = directions(one.shape[-1], points)
    if central and one.ndim == 2 and (bounds == bounds[:, :1]).all():
        return _equal(bounds[:, 0], df, one, u)
    low = np.broadcast_to(one, (n_b, m, one.shape[-1]))
    delta = np.zeros_like(bounds) if delta is None else np.broadcast_to(np.asarray(delta, dtype=float), bounds.shape)
    nodes = 1 if central or np.isposinf(df).all() else 32
    step = max(1, BLOCK // (len(u) * m * nodes))
    block = _central if central else _shifted
    return np.concatenate([block(bounds[i:i + step], delta[i:i + step], df[i:i + step], low[i:i + step], u)
                           for i in range(0, n_b, step)])


def _chi_cdf(x: np.ndarray, r: int) -> np.ndarray:
    """``P(rho <= x)`` for ``rho ~ chi_r``; 0 for ``x <= 0``, 1 for ``x = inf``."""
    return special.gammainc(r / 2.0, np.square(np.maximum(x, 0.0)) / 2.0)


def _ratio_cdf(reach: np.ndarray, r: int, df: np.ndarray) -> np.ndarray:
    """``P(rho / S <= |reach|)`` ``(B, P)`` for ``rho ~ chi_r`` and ``S`` of ``df`` ``(B,)``: ``rho^2 / r / S^2`` is an
    F variable (``rho^2`` chi-square where ``df`` is inf)."""
    x = np.square(reach) / r
    d = df[:, None]
    return np.where(np.isposinf(d), special.gammainc(r / 2.0, x * r / 2.0),
                    special.fdtr(r, np.where(np.isposinf(d), 1.0, d), x))


def _equal(b: np.ndarray, df: np.ndarray, low: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Central rows with one bound ``b`` ``(B,)`` for every statistic and one correlation (critical values and
    adjusted p-values), from the largest ``g = max_k (L u)_k`` of each direction, found once: for ``b >= 0``,
    ``P(rho <= S b / g)`` where ``g > 0`` (else 1); for ``b < 0``, ``P(rho >= S b / g)`` where ``g < 0`` (else 0)."""
    r = low.shape[-1]
    top = (low @ u.T).max(axis=0)                                      # (P,)
    steep = np.abs(top) > _RANK_TOL
    f = _ratio_cdf(b[:, None] / np.where(steep, top, 1.0), r, df)    # (B, P)
    above = b[:, None] >= 0.0
    p = np.where(above, np.where(steep & (top > 0), f, 1.0), np.where(steep & (top < 0), 1.0 - f, 0.0))
    return p.mean(axis=1)


def _central(b: np.ndarray, delta: np.ndarray, df: np.ndarray, low: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Central rows: ``P(rho <= S min_k b_k / g_k)`` over the ``g_k = (L u)_k > 0``; a negative bound (an event
    that needs ``rho < 0`` when ``g_k < 0``) is handled by the general rule."""
    if (b < 0).any():
        return _shifted(b, delta, df, low, u)
    r = low.shape[-1]
    g = low @ u.T                                                      # (B, M, P)
    with np.errstate(divide="ignore", invalid="ignore"):
        reach = np.where(g > _RANK_TOL, b[:, :, None] / g, np.inf).min(axis=1)  # (B, P): rho* / S
    finite = np.isfinite(reach)
    return np.where(finite, _ratio_cdf(np.where(finite, reach, 0.0), r, df), 1.0).mean(axis=1)


def _shifted(b: np.ndarray, delta: np.ndarray, df: np.ndarray, low: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Any rows: at each node of ``S``, ``rho`` must lie in ``[lo, hi]``, ``hi = min h_k / g_k`` over ``g_k > 0``
    and ``lo = max(0, h_k / g_k)`` over ``g_k < 0``, ``h_k = b_k S - delta_k`` (and ``h_k >= 0`` where ``g_k = 0``)."""
    r = low.shape[-1]
    g = (low @ u.T)[:, :, None, :]                                     # (B, M, 1, P)
    s, ws = (np.ones((len(b), 1)), np.ones((len(b), 1))) if np.isposinf(df).all() else s_rule(df)  # (B, Q)
    h = (b[:, :, None] * s[:, None, :] - delta[:, :, None])[..., None]  # (B, M, Q, 1)
    positive, negative = g > _RANK_TOL, g < -_RANK_TOL
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = h / g
        hi = np.where(positive, ratio, np.inf).min(axis=1)            # (B, Q, P)
        lo = np.maximum(np.where(negative, ratio, -np.inf).max(axis=1), 0.0)
    blocked = (~positive & ~negative & (h < 0)).any(axis=1)
    p = np.where(blocked | (hi <= lo), 0.0, _chi_cdf(hi, r) - _chi_cdf(lo, r))
    return np.einsum("bqp,bq->b", p, ws) / u.shape[0]
