"""ANCOVA: visit score on arm, baseline score and any covariates (ordinary least squares), batched.

Exactly the OLS fit ``y ~ 1 + arm + baseline (+ covariates)`` over children observed at baseline and at
the visit, from pooled within-arm sums of squares and cross-products (one small solve per replicate).
The arm estimate is the same whether the response is the score or its change from baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cbcp_sim.analysis.inference import Estimates, guarded
from cbcp_sim.analysis.moments import group_moments

#: Smallest eigenvalue of the covariates' within-arm correlation matrix below which they are collinear.
COLLINEAR = 1e-10


def ancova(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int, *,
           endpoint: str = "change", covariates: np.ndarray | None = None) -> Estimates:
    """Adjusted difference at ``visit``; ``df = n - 3 - C`` for ``C`` covariates ``(R, N, C)``.
    ``endpoint`` does not change it."""
    return _fit(values, observed, (~treated, treated), visit, covariates)[0]


def ancova_arms(values: np.ndarray, observed: np.ndarray, arm: np.ndarray, visit: int, *, arms: int,
                endpoint: str = "change", covariates: np.ndarray | None = None) -> tuple[Estimates, ...]:
    """One ANCOVA of all ``arms`` arms (``arm``: each child's arm, control 0, ``(N,)`` or ``(R, N)``), arm as a
    factor: each active arm's adjusted difference from control, with slopes and residual variance pooled over
    every arm and ``df = n - arms - 1 - C``, as the classical many-to-one comparison [Dunnett 1955]. ``endpoint``
    does not change it."""
    return _fit(values, observed, tuple(arm == j for j in range(arms)), visit, covariates)


@dataclass(frozen=True)
class ArmDifferences:
    """Each active arm's adjusted difference from control in one model of every arm (ANCOVA or MMRM), with their
    joint covariance: what a dose-response test of several dose arms takes (generalised MCP-Mod, [Pinheiro 2014])."""

    estimate: np.ndarray    #: (R, K - 1) active arms minus control
    covariance: np.ndarray  #: (R, K - 1, K - 1)
    df: np.ndarray          #: (R,) ANCOVA: residual df, n - K - C - 1; MMRM: Kenward and Roger's


def ancova_differences(values: np.ndarray, observed: np.ndarray, arm: np.ndarray, visit: int, *, arms: int,
                       covariates: np.ndarray | None = None) -> ArmDifferences:
    """The fit of :func:`ancova_arms` with the covariance of its differences: ``sigma^2 (1 / n_0 + [j = k] / n_j +
    dx_j' Sxx^-1 dx_k)``, ``dx_j`` arm ``j``'s mean covariates minus the control's. NaN where an arm has fewer than
    two observed children or the covariates are collinear."""
    fit = _Pooled(values, observed, tuple(arm == j for j in range(arms)), visit, covariates)
    with np.errstate(invalid="ignore", divide="ignore"):
        dx = np.stack([fit.dx(j) for j in range(1, arms)], axis=1)                      # (R, K - 1, C)
        slope, _, solvable = regress(fit.sxx, fit.sxy, dx[:, 0])
        safe = np.where(solvable[:, None, None], fit.sxx, np.eye(fit.sxx.shape[-1]))
        cross = dx @ np.linalg.solve(safe, np.swapaxes(dx, 1, 2))                       # (R, K - 1, K - 1)
        n = np.stack(fit.m.n, axis=-1) if np.ndim(fit.m.n[0]) else np.array(fit.m.n, dtype=float)[None]
        inverse_n = 1.0 / np.broadcast_to(n, (len(values), arms))
        covariance = fit.sigma2(slope)[:, None, None] * (
            inverse_n[:, :1, None] + np.eye(arms - 1) * inverse_n[:, 1:, None] + cross)
        estimate = np.stack([fit.difference(j, slope) for j in range(1, arms)], axis=1)
        bad = ~solvable | (fit.df <= 0) | (np.broadcast_to(n, (len(values), arms)) < 2).any(axis=1)
    return ArmDifferences(estimate=np.where(bad[:, None], np.nan, estimate),
                          covariance=np.where(bad[:, None, None], np.nan, covariance),
                          df=np.where(bad, np.nan, np.broadcast_to(fit.df, bad.shape).astype(float)))


class _Pooled:
    """The pooled within-arm sums of one ANCOVA: the visit score on arm (masks, control first), baseline and
    covariates."""

    def __init__(self, values: np.ndarray, observed: np.ndarray, arms: tuple[np.ndarray, ...], visit: int,
                 covariates: np.ndarray | None) -> None:
        mask = observed[..., visit] & observed[..., 0]
        columns = {"x0": values[..., 0]}
        if covariates is not None:
            columns.update({f"x{c + 1}": covariates[..., c] for c in range(covariates.shape[-1])})
        self.xs = list(columns)
        self.m = group_moments({**columns, "y": values[..., visit]}, mask, arms)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.sxx = np.stack([np.stack([self.m.within(a, b) for b in self.xs], axis=-1) for a in self.xs],
                                axis=-2)
            self.sxy = np.stack([self.m.within(a, "y") for a in self.xs], axis=-1)
        self.df = sum(self.m.n) - float(len(arms)) - len(self.xs)

    def dx(self, j: int) -> np.ndarray:
        """Arm ``j``'s mean covariates minus the control's, ``(R, C)``."""
        return np.stack([self.m.mean(a, j) - self.m.mean(a, 0) for a in self.xs], axis=-1)

    def difference(self, j: int, slope: np.ndarray) -> np.ndarray:
        """Arm ``j``'s adjusted difference from control at the pooled ``slope``."""
        return self.m.mean("y", j) - self.m.mean("y", 0) - (slope * self.dx(j)).sum(axis=-1)

    def sigma2(self, slope: np.ndarray) -> np.ndarray:
        """The residual variance at the pooled ``slope``."""
        return np.maximum(self.m.within("y", "y") - (slope * self.sxy).sum(axis=-1), 0.0) / self.df


def _fit(values: np.ndarray, observed: np.ndarray, arms: tuple[np.ndarray, ...], visit: int,
         covariates: np.ndarray | None) -> tuple[Estimates, ...]:
    """OLS of the ``visit`` score on arm (masks ``arms``, control first), baseline and ``covariates``: each
    active arm minus control."""
    fit = _Pooled(values, observed, arms, visit, covariates)
    m, out = fit.m, []
    with np.errstate(invalid="ignore", divide="ignore"):
        for j in range(1, len(arms)):
            slope, leverage, solvable = regress(fit.sxx, fit.sxy, fit.dx(j))
            se = np.sqrt(fit.sigma2(slope) * (1.0 / m.n[0] + 1.0 / m.n[j] + leverage))
            bad = ~solvable | (fit.df <= 0)
            out.append(guarded(np.where(bad, np.nan, fit.difference(j, slope)), np.where(bad, np.nan, se), fit.df,
                               m.n[0], m.n[j]))
    return tuple(out)


def regress(sxx: np.ndarray, sxy: np.ndarray, dx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooled within-arm slopes ``Sxx^-1 Sxy``, the leverage ``dx' Sxx^-1 dx`` of the arms' covariate
    difference, and whether ``Sxx`` is well conditioned (covariates not collinear), per replicate."""
    if sxx.shape[-1] == 1:  # baseline alone: no matrices
        s = sxx[:, 0, 0]
        ok = np.isfinite(s) & (s > 0)
        return sxy / sxx[:, 0], dx[:, 0] ** 2 / s, ok
    finite = np.isfinite(sxx).all(axis=(1, 2))
    scale = np.sqrt(np.abs(np.diagonal(np.where(finite[:, None, None], sxx, 1.0), axis1=1, axis2=2)))
    scaled = np.where(finite[:, None, None], sxx, 1.0) / (scale[:, :, None] * scale[:, None, :])
    ok = finite & (scale > 0).all(axis=1) & (np.linalg.eigvalsh(np.where(np.isfinite(scaled), scaled, 0.0))[:, 0]
                                             > COLLINEAR)
    safe = np.where(ok[:, None, None], sxx, np.eye(sxx.shape[-1]))
    slope = np.linalg.solve(safe, sxy[..., None])[..., 0]
    return slope, (dx * np.linalg.solve(safe, dx[..., None])[..., 0]).sum(axis=-1), ok
