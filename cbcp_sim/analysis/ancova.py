"""ANCOVA: visit score on arm, baseline score and any covariates (ordinary least squares), batched.

Exactly the OLS fit ``y ~ 1 + arm + baseline (+ covariates)`` over children observed at baseline and at
the visit, from pooled within-arm sums of squares and cross-products (one small solve per replicate).
The arm estimate is the same whether the response is the score or its change from baseline.
"""

from __future__ import annotations

import numpy as np

from cbcp_sim.analysis.inference import Estimates, guarded
from cbcp_sim.analysis.moments import arm_moments

#: Smallest eigenvalue of the covariates' within-arm correlation matrix below which they are collinear.
COLLINEAR = 1e-10


def ancova(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int, *,
           endpoint: str = "change", covariates: np.ndarray | None = None) -> Estimates:
    """Adjusted difference at ``visit``; ``df = n - 3 - C`` for ``C`` covariates ``(R, N, C)``.
    ``endpoint`` does not change it."""
    mask = observed[..., visit] & observed[..., 0]
    columns = {"x0": values[..., 0]}
    if covariates is not None:
        columns.update({f"x{c + 1}": covariates[..., c] for c in range(covariates.shape[-1])})
    xs = list(columns)
    m = arm_moments({**columns, "y": values[..., visit]}, mask, treated)
    n0, n1 = m.n
    with np.errstate(invalid="ignore", divide="ignore"):
        sxx = np.stack([np.stack([m.within(a, b) for b in xs], axis=-1) for a in xs], axis=-2)
        sxy = np.stack([m.within(a, "y") for a in xs], axis=-1)
        dx = np.stack([m.mean(a, 1) - m.mean(a, 0) for a in xs], axis=-1)
        slope, leverage, solvable = _regress(sxx, sxy, dx)
        estimate = m.mean("y", 1) - m.mean("y", 0) - (slope * dx).sum(axis=-1)
        df = n0 + n1 - 2.0 - len(xs)
        sigma2 = np.maximum(m.within("y", "y") - (slope * sxy).sum(axis=-1), 0.0) / df
        se = np.sqrt(sigma2 * (1.0 / n0 + 1.0 / n1 + leverage))
        bad = ~solvable | (df <= 0)
    return guarded(np.where(bad, np.nan, estimate), np.where(bad, np.nan, se), df, n0, n1)


def _regress(sxx: np.ndarray, sxy: np.ndarray, dx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
