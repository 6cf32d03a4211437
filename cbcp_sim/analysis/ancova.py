"""ANCOVA: visit score on arm, baseline score and any covariates (ordinary least squares), batched.

Exactly the OLS fit ``y ~ 1 + arm + baseline (+ covariates)`` over children observed at baseline and at
the visit, from pooled within-arm sums of squares and cross-products (one small solve per replicate).
The arm estimate is the same whether the response is the score or its change from baseline.
"""

from __future__ import annotations

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


def _fit(values: np.ndarray, observed: np.ndarray, arms: tuple[np.ndarray, ...], visit: int,
         covariates: np.ndarray | None) -> tuple[Estimates, ...]:
    """OLS of the ``visit`` score on arm (masks ``arms``, control first), baseline and ``covariates``: each
    active arm minus control."""
    mask = observed[..., visit] & observed[..., 0]
    columns = {"x0": values[..., 0]}
    if covariates is not None:
        columns.update({f"x{c + 1}": covariates[..., c] for c in range(covariates.shape[-1])})
    xs = list(columns)
    m = group_moments({**columns, "y": values[..., visit]}, mask, arms)
    out = []
    with np.errstate(invalid="ignore", divide="ignore"):
        sxx = np.stack([np.stack([m.within(a, b) for b in xs], axis=-1) for a in xs], axis=-2)
        sxy = np.stack([m.within(a, "y") for a in xs], axis=-1)
        df = sum(m.n) - float(len(arms)) - len(xs)
        for j in range(1, len(arms)):
            dx = np.stack([m.mean(a, j) - m.mean(a, 0) for a in xs], axis=-1)
            slope, leverage, solvable = regress(sxx, sxy, dx)
            estimate = m.mean("y", j) - m.mean("y", 0) - (slope * dx).sum(axis=-1)
            sigma2 = np.maximum(m.within("y", "y") - (slope * sxy).sum(axis=-1), 0.0) / df
            se = np.sqrt(sigma2 * (1.0 / m.n[0] + 1.0 / m.n[j] + leverage))
            bad = ~solvable | (df <= 0)
            out.append(guarded(np.where(bad, np.nan, estimate), np.where(bad, np.nan, se), df, m.n[0], m.n[j]))
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
