"""MCP-Mod's multiple contrast test on per-dose estimates, batched over replicates: optimal contrasts, the
critical value, adjusted p-values, analytic power and sample size [Bretz 2005] [Pinheiro 2014], as R
DoseFinding's ``optContr``, ``MCTtest``, ``critVal``, ``powMCT`` and ``sampSizeMCT`` (one-sided, increasing).

Generalised MCP-Mod [Pinheiro 2014]: the test takes per-dose estimates ``mu_hat`` ``(R, K)`` (placebo first) and
their covariance ``S`` ``(K, K)`` or ``(R, K, K)``, from an ANOVA, an ANCOVA or an MMRM alike, with ``df`` the
residual degrees of freedom of the fit (inf: normal). With ``S = sigma^2 diag(1 / n)`` and ``df = N - K`` it is
DoseFinding's ``MCTtest(type = "normal")`` on one-way ANOVA data. Contrasts are DoseFinding's default,
unconstrained: ``c ∝ S⁻¹ (mu - (mu'S⁻¹1 / 1'S⁻¹1) 1)``, unit length, for the standardised shape ``mu`` of each
candidate. The multivariate t probabilities are :func:`~cbcp_sim.analysis.mvt_max.max_t_cdf`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import interpolate, optimize, special

from cbcp_sim.analysis.dose_models import Candidate, add_args, mean_response
from cbcp_sim.analysis.mvt_max import max_t_cdf

#: Directions of the non-central probabilities of :func:`power_mct`: power within 5e-5 of that with 2^17 (measured
#: on the five-model fixture set), at a quarter of the cost.
POWER_POINTS = 2**15

#: Directions of each probability of that table: within 1.5e-5 of those with 2^17 directions (fixture sets).
TABLE_DIRECTIONS = 2**15
#: Points of the table of ``P(max T <= x)`` interpolated for many replicates sharing a correlation and df.
TABLE_POINTS = 257
#: Replicates x models above which p-values come from that table rather than one probability each.
TABLE_FROM = 2 * TABLE_POINTS


def shapes(candidates: Sequence[Candidate], doses: np.ndarray) -> np.ndarray:
    """``(K, M)`` standardised mean shapes (placebo 0, maximum effect 1), DoseFinding's ``getResp(Mods(...))``."""
    scal, off = add_args(doses)
    return np.stack([mean_response(c, doses, 0.0, 1.0, scal, off) for c in candidates], axis=-1)


def optimal_contrasts(mu: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Unconstrained optimal contrasts ``(..., K, M)`` for shapes ``mu`` ``(K, M)`` and covariance(s) ``S``
    ``(..., K, K)``: DoseFinding's ``optContr(models, S = S)$contMat`` (unit length, summing to zero)."""
    s_inv = np.linalg.inv(S)
    aux = s_inv.sum(axis=-1)  # (..., K)
    centre = np.einsum("...k,km->...m", aux, mu) / aux.sum(axis=-1)[..., None]
    c = s_inv @ (mu - centre[..., None, :])
    return c / np.linalg.norm(c, axis=-2, keepdims=True)


def contrast_correlation(contrasts: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Correlation ``(..., M, M)`` of the contrast statistics, ``cov2cor(C'SC)``."""
    cov = np.swapaxes(contrasts, -1, -2) @ S @ contrasts
    sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
    return cov / (sd[..., :, None] * sd[..., None, :])


def critical_value(corr: np.ndarray, alpha: float, df: float) -> float:
    """``c`` with ``P(max_k T_k > c) = alpha`` for central t statistics of correlation ``corr`` and ``df`` (inf:
    normal): DoseFinding's ``critVal`` (``alternative = "one.sided"``)."""
    m = corr.shape[-1]

    def excess(c: float) -> float:
        return float(1.0 - max_t_cdf(np.full((1, m), c), corr, df)[0] - alpha)

    single, bonferroni = special.stdtrit(df, 1.0 - alpha), special.stdtrit(df, 1.0 - alpha / m)
    return optimize.brentq(excess, single - 0.05, bonferroni + 0.05, xtol=1e-10)


def max_p_values(t: np.ndarray, corr: np.ndarray, df: np.ndarray | float) -> np.ndarray:
    """Adjusted p-values ``P(max_k T_k >= t)`` for each entry of ``t`` ``(R, M)`` (DoseFinding's ``MCTpval``):
    ``corr`` common ``(M, M)`` or per replicate ``(R, M, M)``; ``df`` a number or ``(R,)``. Many replicates with a
    common correlation share a table of :data:`TABLE_POINTS` values, interpolated by a cubic spline."""
    t = np.asarray(t, dtype=float)
    n_r, m = t.shape
    df = np.broadcast_to(np.asarray(df, dtype=float), (n_r,))
    if corr.ndim == 3 or t.size < TABLE_FROM:
        rows = np.repeat(np.arange(n_r), m)
        c = corr if corr.ndim == 2 else corr[rows]
        flat = np.repeat(t.reshape(-1, 1), m, axis=1)
        return (1.0 - max_t_cdf(flat, c, df[rows])).reshape(n_r, m)
    out = np.empty_like(t)
    for value in np.unique(df):
        rows = df == value
        out[rows] = _tabled(t[rows], corr, float(value))
    return out


def _tabled(t: np.ndarray, corr: np.ndarray, df: float) -> np.ndarray:
    """:func:`max_p_values` by a spline through ``P(max T <= x)`` on a grid over the range of ``t``; beyond the
    point where Bonferroni's bound is 1e-10 the bound itself (its error is below that)."""
    m = corr.shape[0]
    low = max(float(t.min()), float(special.stdtrit(df, 1e-12)))
    high = min(float(t.max()), float(special.stdtrit(df, 1.0 - 1e-10 / m)))
    if high <= low:
        return np.minimum(1.0, m * special.stdtr(df, -t))
    grid = np.linspace(low, high, TABLE_POINTS)
    cdf = max_t_cdf(np.repeat(grid[:, None], m, axis=1), corr, df, points=TABLE_DIRECTIONS)
    p = 1.0 - interpolate.CubicSpline(grid, cdf)(np.clip(t, low, high))
    return np.where(t > high, np.minimum(1.0, m * special.stdtr(df, -t)), np.clip(p, 0.0, 1.0))


@dataclass(frozen=True)
class MctResult:
    """The multiple contrast test of each replicate (one-sided, larger doses better)."""

    contrasts: np.ndarray      #: ``(K, M)`` or ``(R, K, M)`` optimal contrasts
    correlation: np.ndarray    #: ``(M, M)`` or ``(R, M, M)`` correlation of the contrast statistics
    tstats: np.ndarray         #: ``(R, M)`` contrast t statistics
    p_adjusted: np.ndarray     #: ``(R, M)`` multiplicity-adjusted p-values
    reject: np.ndarray         #: ``(R,)`` bool: the smallest adjusted p-value is below alpha
    df: np.ndarray             #: ``(R,)`` degrees of freedom (inf: normal)
    alpha: float


def mct(mu_hat: np.ndarray, S: np.ndarray, doses: Sequence[float], candidates: Sequence[Candidate],
        df: np.ndarray | float = math.inf, alpha: float = 0.025) -> MctResult:
    """MCP-Mod's multiple contrast test of every replicate.

    ``mu_hat`` ``(R, K)`` per-dose estimates (placebo first, doses ascending), ``S`` their covariance ``(K, K)``
    or ``(R, K, K)``, ``df`` a number or ``(R,)``. The contrasts are optimal for each replicate's ``S``; when
    every ``S`` is proportional to the first (an ANOVA: ``sigma_hat² diag(1/n)``) they and the correlation are
    common, and the p-values come from one table per distinct df: 10,000 replicates of 5 models take about a
    second (each distinct correlation otherwise costs one multivariate t probability per statistic).
    """
    mu_hat = np.atleast_2d(np.asarray(mu_hat, dtype=float))
    S = np.asarray(S, dtype=float)
    n_r = mu_hat.shape[0]
    mu = shapes(candidates, np.asarray(doses, dtype=float))
    S_r = np.broadcast_to(S, (n_r, *S.shape[-2:]))
    ref = S_r[0] / S_r[0, 0, 0]
    common = np.allclose(S_r / S_r[:, :1, :1], ref, rtol=1e-10, atol=0.0)
    contrasts = optimal_contrasts(mu, ref if common else S_r)
    corr = contrast_correlation(contrasts, ref if common else S_r)
    c_r = np.broadcast_to(contrasts, (n_r, *contrasts.shape[-2:]))
    est = np.einsum("rk,rkm->rm", mu_hat, c_r)
    se = np.sqrt(np.einsum("rkm,rkl,rlm->rm", c_r, S_r, c_r))
    t = est / se
    df_r = np.broadcast_to(np.asarray(df, dtype=float), (n_r,)).copy()
    p = max_p_values(t, corr, df_r)
    return MctResult(contrasts, corr, t, p, p.min(axis=1) < alpha, df_r, alpha)


def power_mct(contrasts: np.ndarray, S: np.ndarray, means: np.ndarray, df: float, critical: float) -> np.ndarray:
    """Power ``P(max_k T_k > critical)`` ``(A,)`` when the true per-dose means are each row of ``means``
    ``(A, K)`` (non-central multivariate t, Kshirsagar's non-centrality ``C'mu / sd``): DoseFinding's
    ``powMCT``."""
    cov = contrasts.T @ S @ contrasts
    sd = np.sqrt(np.diag(cov))
    delta = np.atleast_2d(means) @ contrasts / sd
    corr = cov / np.outer(sd, sd)
    return 1.0 - max_t_cdf(np.full(delta.shape, critical), corr, df, delta, points=POWER_POINTS)


def smallest_n(power_at: Callable[[int], float], target: float, start: int = 4) -> int:
    """The smallest integer ``n >= 2`` with ``power_at(n) >= target``, for ``power_at`` increasing in ``n``:
    doubling then bisection (DoseFinding's ``sampSize`` stops within a tolerance of the target instead)."""
    high = max(start, 2)
    while power_at(high) < target:
        high *= 2
        if high > 10**6:
            raise ValueError("no sample size up to 10^6 per dose reaches the target power")
    low = 1
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if power_at(mid) >= target else (mid, high)
    return high
