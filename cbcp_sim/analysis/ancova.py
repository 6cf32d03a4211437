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
        finite = np.isfinite(sxx).all(axis=(1, 2))
        scale = np.sqrt(np.abs(np.diagonal(np.where(finite[:, None, None], sxx, 1.0), axis1=1, axis2=2)))
        scaled = np.where(finite[:, None, None], sxx, 1.0) / (scale[:, :, None] * scale[:, None, :])
        solvable = finite & (scale > 0).all(axis=1) & (np.linalg.eigvalsh(np.where(np.isfinite(scaled), scaled, 0.0))
                                                       [:, 0] > COLLINEAR)
        safe = np.where(solvable[:, None, None], sxx, np.eye(len(xs)))
        slope = np.linalg.solve(safe, sxy[..., None])[..., 0]
        leverage = dx * np.linalg.solve(safe, dx[..., None])[..., 0]
        estimate = m.mean("y", 1) - m.mean("y", 0) - (slope * dx).sum(axis=-1)
        df = n0 + n1 - 2.0 - len(xs)
        sigma2 = np.maximum(m.within("y", "y") - (slope * sxy).sum(axis=-1), 0.0) / df
        se = np.sqrt(sigma2 * (1.0 / n0 + 1.0 / n1 + leverage.sum(axis=-1)))
        bad = ~solvable | (df <= 0)
    return guarded(np.where(bad, np.nan, estimate), np.where(bad, np.nan, se), df, n0, n1)
