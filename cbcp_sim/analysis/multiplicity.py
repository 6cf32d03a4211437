"""Multiplicity adjustments for several active arms, batched over replicates: Holm, Hochberg, Dunnett.

p-values and statistics are ``(R, m)``: replicates by comparisons (active arm vs the common control).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from scipy import special

#: Largest quadrature array built at once (bytes): with its temporaries a block stays under ~100 MB.
MAX_BLOCK_BYTES = 32 * 2**20

_TAIL = 1e-13  # chi-square mass left out at each end of the S range


@functools.cache
def _u_rule() -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the standard normal (Gauss-Hermite, 96 nodes less those of negligible weight). Made on
    first use: the rules' eigenproblems import scipy.linalg, which runs that never adjust need not pay for."""
    u, weights = special.roots_hermitenorm(96)
    keep = weights / np.sqrt(2 * np.pi) > 1e-17  # the other nodes add < 1e-15 in all
    return u[keep], weights[keep] / np.sqrt(2 * np.pi)


@functools.cache
def _s_rule() -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [-1, 1] (32), made on first use as :func:`_u_rule`."""
    return special.roots_legendre(32)


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values over the last axis (Holm 1979, Scand J Stat 6:65), equal to
    R's ``p.adjust(p, "holm")``; a row with any NaN is all NaN."""
    p, order, ranked = _ranked(p)
    return _restore(np.maximum.accumulate(ranked, axis=-1), p, order)


def hochberg(p: np.ndarray) -> np.ndarray:
    """Hochberg's step-up adjusted p-values over the last axis (Hochberg 1988, Biometrika 75:800),
    equal to R's ``p.adjust(p, "hochberg")``; a row with any NaN is all NaN."""
    p, order, ranked = _ranked(p)
    return _restore(np.minimum.accumulate(ranked[..., ::-1], axis=-1)[..., ::-1], p, order)


def _ranked(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``p`` as floats, its ascending order and the sorted values times ``m, m-1, ..., 1``."""
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, axis=-1, kind="stable")
    m = p.shape[-1]
    return p, order, np.take_along_axis(p, order, axis=-1) * (m - np.arange(m))


def _restore(adjusted: np.ndarray, p: np.ndarray, order: np.ndarray) -> np.ndarray:
    out = np.empty_like(p)
    np.put_along_axis(out, order, np.minimum(adjusted, 1.0), axis=-1)
    return np.where(np.isnan(p).any(axis=-1, keepdims=True), np.nan, out)


def dunnett(t: np.ndarray, df: np.ndarray, n_control: np.ndarray, n_active: np.ndarray, *, sides: int) -> np.ndarray:
    """Single-step Dunnett adjusted p-values ``(R, m)`` for ``m`` active-vs-common-control t statistics.

    The statistics share the control mean and the variance estimate (``df``; ``inf`` for a known
    variance), so ``corr(T_j, T_k) = lambda_j lambda_k`` with ``lambda_j = sqrt(n_j / (n_0 + n_j))``
    (Dunnett 1955, J Am Stat Assoc 50:1096; two-sided tables Dunnett 1964, Biometrics 20:482). The
    adjusted p of comparison ``j`` is ``P(max_k |T_k| >= |t_j|)`` (``sides=2``) or
    ``P(max_k T_k >= t_j)`` (``sides=1``, active > control), as R's
    ``multcomp::glht(..., mcp(arm = "Dunnett"))`` single-step p-values but by exact quadrature, not
    randomised: with ``Z_j = lambda_j U + sqrt(1 - lambda_j^2) E_j`` the multivariate t probability
    is a product of normal probabilities given ``U`` and ``S ~ chi_df / sqrt(df)``
    (Dunnett & Sobel 1955, Biometrika 42:258), integrated by Gauss-Hermite in ``U`` and
    Gauss-Legendre in ``S``. Error below 1e-9 for ``df >= 1`` and ``n_j <= 9 n_0``, about 3e-6 at
    ``n_j = 19 n_0``; it grows for more lopsided arms. ``t`` ``(R, m)``, ``df`` and ``n_control``
    ``(R,)``, ``n_active`` ``(R, m)``. The classical test takes ``t`` from one model of every arm
    (:func:`cbcp_sim.analysis.analyse_arms`); t statistics of separate two-arm fits make it an approximation.
    """
    t = np.asarray(t, dtype=float)
    n_active = np.broadcast_to(np.asarray(n_active, dtype=float), t.shape)
    lam = np.sqrt(n_active / (np.asarray(n_control, dtype=float)[..., None] + n_active))
    return 1.0 - _max_cdf(np.abs(t) if sides == 2 else t, np.broadcast_to(np.asarray(df, dtype=float), t.shape[:1]),
                          lam, sides)


def dunnett_critical(alpha: float, df: float, n_control: float, n_active: Sequence[float], *, sides: int) -> float:
    """Dunnett's critical value ``c`` with ``P(max_j |T_j| >= c) = alpha`` (``sides=2``) or
    ``P(max_j T_j >= c) = alpha`` (``sides=1``); see :func:`dunnett`. ``n_active`` has one size per arm."""
    from scipy import optimize  # here: importing it costs a tenth of a second that simulations never need

    lam = np.sqrt(np.asarray(n_active, dtype=float) / (n_control + np.asarray(n_active, dtype=float)))[None]
    dfs = np.array([float(df)])

    def excess(c: float) -> float:
        return float(1.0 - _max_cdf(np.array([[c]]), dfs, lam, sides)[0, 0] - alpha)

    single, bonferroni = special.stdtrit(df, 1.0 - alpha / sides), special.stdtrit(df, 1.0 - alpha / sides / lam.size)
    low = max(single - 0.5, 0.0) if sides == 2 else single - 0.5
    return optimize.brentq(excess, low, bonferroni + 0.5, xtol=1e-12)


def _max_cdf(c: np.ndarray, df: np.ndarray, lam: np.ndarray, sides: int) -> np.ndarray:
    """``P(max_j |T_j| <= c)`` (``sides=2``) or ``P(max_j T_j <= c)`` for each column of ``c`` ``(R, k)``."""
    per_rep = 8 * c.shape[1] * lam.shape[1] * _s_rule()[0].size * _u_rule()[0].size
    step = max(1, MAX_BLOCK_BYTES // per_rep)
    return np.concatenate([_max_cdf_block(c[i:i + step], df[i:i + step], lam[i:i + step], sides)
                           for i in range(0, max(len(c), 1), step)])


def _max_cdf_block(c: np.ndarray, df: np.ndarray, lam: np.ndarray, sides: int) -> np.ndarray:
    s, ws = s_rule(df)
    u, u_weights = _u_rule()
    root = np.sqrt(1.0 - lam**2)[:, None, None, None, :]
    shift = lam[:, None, None, None, :] * u[None, None, None, :, None]
    bound = c[:, :, None, None, None] * s[:, None, :, None, None]
    inside = special.ndtr((bound - shift) / root)
    if sides == 2:
        inside -= special.ndtr((-bound - shift) / root)
    return np.einsum("rksu,rs,u->rk", inside.prod(axis=-1), ws, u_weights)


def s_rule(df: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights ``(R, n)`` for ``S = sqrt(chi2_df / df)``: Gauss-Legendre in ``S`` over the
    central ``1 - 2e-13`` of its distribution, weights normalised; ``S = 1`` where ``df`` is inf."""
    known = np.isposinf(df)
    d = np.where(known, 1.0, df)[:, None]
    low, high = (np.where(known[:, None], 1.0, np.sqrt(special.chdtri(d, q) / d)) for q in (1.0 - _TAIL, _TAIL))
    nodes, weights = _s_rule()
    s = low + (high - low) * (nodes + 1.0) / 2.0
    # log density of S up to a constant, (df - 1) log S - df S^2 / 2, written to keep precision near S = 1
    log_w = np.where(known[:, None], 0.0, d * (np.log(s) - (s - 1.0) * (s + 1.0) / 2.0) - np.log(s))
    w = weights * np.exp(log_w - log_w.max(axis=1, keepdims=True))
    return s, w / w.sum(axis=1, keepdims=True)
