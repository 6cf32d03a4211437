"""ANCOVA: primary-visit score on arm and baseline score (ordinary least squares), batched.

Exactly the OLS fit ``y ~ 1 + arm + baseline`` over children observed at baseline and at the
visit, from pooled within-arm sums (no per-replicate matrix solve). The arm estimate is the same
whether the response is the score or its change from baseline.
"""

from __future__ import annotations

import numpy as np

from cbcp_sim.analysis.inference import Estimates, guarded
from cbcp_sim.analysis.moments import arm_moments


def ancova(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int, *,
           endpoint: str = "change") -> Estimates:
    """Baseline-adjusted difference at ``visit``; ``df = n - 3``. ``endpoint`` does not change it."""
    mask = observed[..., visit] & observed[..., 0]
    m = arm_moments({"x": values[..., 0], "y": values[..., visit]}, mask, treated)
    n0, n1 = m.n
    with np.errstate(invalid="ignore", divide="ignore"):
        cxx, cxy, cyy = m.within("x", "x"), m.within("x", "y"), m.within("y", "y")
        slope = cxy / cxx
        dx = m.mean("x", 1) - m.mean("x", 0)
        estimate = m.mean("y", 1) - m.mean("y", 0) - slope * dx
        df = n0 + n1 - 3.0
        sigma2 = np.maximum(cyy - cxy * slope, 0.0) / df
        se = np.sqrt(sigma2 * (1.0 / n0 + 1.0 / n1 + dx**2 / cxx))
    return guarded(estimate, se, df, n0, n1)
