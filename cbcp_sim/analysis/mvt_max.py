"""The distribution of the largest of correlated, possibly non-central, t statistics: what a multiple contrast test
needs for its critical value, adjusted p-values and power.

:func:`max_t_cdf` gives ``P(max_k (Z_k + delta_k) / S <= b_k for all k)`` with ``Z ~ N(0, R)`` and
``S ~ sqrt(chi2_df / df)`` independent of ``Z`` (``S = 1`` where ``df`` is inf): the multivariate t of R mvtnorm's
``pmvt(upper = b, corr = R, delta = delta, df = df)`` (non-central in Kshirsagar's sense) with no lower limits.
The correlation may be singular (more contrasts than doses less one, as MCP-Mod often has).

Method [Genz 2009]: ``R = L Lᵀ`` by a pivoted Cholesky factor ``L`` (``M x r``, lower trapezoidal, ``r`` the
rank); conditioning one standard normal at a time turns the probability into an integral over the unit cube of a
product of normal probabilities; the last variable is integrated exactly, the others and ``S`` by a fixed
deterministic rank-1 lattice rule (Richtmyer generators, baker's transform, fixed shifts), so results are
reproducible to the last bit and smooth in ``b`` and ``delta``. Error: below 1e-5 for up to 6 contrasts
(measured against mvtnorm with tight tolerances, ``tests/test_mcpmod.py``); :data:`POINTS` sets it.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import special
from scipy.stats import qmc

from cbcp_sim.analysis.multiplicity import s_rule

#: Quasi-random points per probability (and per node of ``S``), and the seed of their scrambling.
POINTS = 2**14
SEED = 20230
#: Largest ``bounds x points`` block evaluated at once (each a few arrays of float64 of this size).
BLOCK = 2**22
_RANK_TOL = 1e-10


@functools.cache
def lattice(dims: int, points: int = POINTS) -> np.ndarray:
    """``(points, dims)`` quasi-random points in ``(0, 1)``: a scrambled Sobol' sequence with the fixed seed
    :data:`SEED` (so a fixed, deterministic rule). Cached: do not modify."""
    if dims == 0:
        return np.full((1, 0), 0.5)
    return qmc.Sobol(dims, scramble=True, seed=SEED).random(points)


def factor(corr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pivot order ``(M,)`` and lower-trapezoidal factor ``(..., M, r)`` of correlation(s) ``(..., M, M)``: the
    order and rank from the mean matrix (diagonal pivoting), the factor of each matrix in that order."""
    corr = np.asarray(corr, dtype=float)
    mean = corr.reshape(-1, *corr.shape[-2:]).mean(axis=0)
    m = mean.shape[0]
    order, work, lower = list(range(m)), mean.copy(), np.zeros((m, m))
    rank = 0
    for j in range(m):  # pivoted Cholesky of the mean matrix: order and rank only
        rest = [order[i] for i in range(j, m)]
        diag = np.array([work[i, i] - lower[i, :j] @ lower[i, :j] for i in rest])
        if diag.max() < _RANK_TOL:
            break
        pick = rest[int(np.argmax(diag))]
        order.remove(pick)
        order.insert(j, pick)
        lower[pick, j] = np.sqrt(diag.max())
        for i in order[j + 1:]:
            lower[i, j] = (work[i, pick] - lower[i, :j] @ lower[pick, :j]) / lower[pick, j]
        rank += 1
    perm = np.array(order)
    c = corr[..., perm[:, None], perm[None, :]]
    top = np.linalg.cholesky(c[..., :rank, :rank])
    below = np.swapaxes(np.linalg.solve(top, np.swapaxes(c[..., rank:, :rank], -1, -2)), -1, -2)
    return perm, np.concatenate([top, below], axis=-2)


def max_t_cdf(bounds: np.ndarray, corr: np.ndarray, df: np.ndarray | float,
              delta: np.ndarray | None = None, *, points: int = POINTS) -> np.ndarray:
    """``P((Z_k + delta_k) / S <= b_k, k = 1..M)`` for each row of ``bounds`` ``(B, M)``.

    ``corr`` ``(M, M)`` common to every row or ``(B, M, M)`` one per row; ``df`` a number or ``(B,)`` (inf: normal);
    ``delta`` ``(B, M)`` non-centrality (None: central). Returns ``(B,)``.
    """
    bounds = np.atleast_2d(np.asarray(bounds, dtype=float))
    n_b, m = bounds.shape
    delta = np.zeros_like(bounds) if delta is None else np.broadcast_to(np.asarray(delta, dtype=float), bounds.shape)
    df = np.broadcast_to(np.asarray(df, dtype=float), (n_b,))
    perm, low = factor(corr)
    low = np.broadcast_to(low, (n_b, m, low.shape[-1]))
    bounds, delta = bounds[:, perm], delta[:, perm]
    w = lattice(low.shape[-1] - 1, points)
    step = max(1, BLOCK // (len(w) * (1 if np.isposinf(df).all() else 32)))
    return np.concatenate([_block(bounds[i:i + step], delta[i:i + step], df[i:i + step], low[i:i + step], w)
                           for i in range(0, n_b, step)])


def _block(b: np.ndarray, delta: np.ndarray, df: np.ndarray, low: np.ndarray, w: np.ndarray) -> np.ndarray:
    """:func:`max_t_cdf` for a block of rows: the normal probability at each ``S`` node of
    :func:`~cbcp_sim.analysis.multiplicity.s_rule` (``S = 1`` for inf df), averaged over the lattice."""
    n_b, _, r = low.shape
    s, ws = (np.ones((n_b, 1)), np.ones((n_b, 1))) if np.isposinf(df).all() else s_rule(df)  # (B, Q)
    room = (b[:, :, None, None] * s[:, None, :, None] - delta[:, :, None, None]
            + np.zeros((1, 1, 1, w.shape[0])))  # (B, M, Q, P): b_k S - delta_k
    total = np.ones((n_b, s.shape[1], w.shape[0]))
    for i in range(r):
        coef = low[:, i, i][:, None, None]
        hi = room[:, i] / coef
        lo = np.full_like(hi, -np.inf)
        if i == r - 1:  # the rows beyond the rank bound the last variable, above or below by their sign
            extra = low[:, r:, i][:, :, None, None]
            g = room[:, r:]
            tiny = np.abs(extra) < _RANK_TOL
            ratio = g / np.where(tiny, 1.0, extra)
            hi = np.minimum(hi, np.where(~tiny & (extra > 0), ratio, np.inf).min(axis=1, initial=np.inf))
            lo = np.where(~tiny & (extra < 0), ratio, -np.inf).max(axis=1, initial=-np.inf)
            total *= np.where(tiny & (g < 0), 0.0, 1.0).prod(axis=1)
        p_lo, p_hi = special.ndtr(lo), special.ndtr(hi)
        total *= np.maximum(p_hi - p_lo, 0.0)
        if i == r - 1:
            break
        e = special.ndtri(np.clip(p_lo + w[None, None, :, i] * (p_hi - p_lo), 1e-300, 1.0 - 1e-16))
        room[:, i + 1:] -= low[:, i + 1:, i][:, :, None, None] * e[:, None]
    return np.einsum("bqp,bq->b", total, ws) / w.shape[0]
