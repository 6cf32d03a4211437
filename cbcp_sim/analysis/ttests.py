"""Two-sample t-tests of the change from baseline (or of the primary-visit score): pooled and Welch."""

from __future__ import annotations

import numpy as np

from cbcp_sim.analysis.inference import Estimates, guarded
from cbcp_sim.analysis.moments import ArmMoments, arm_moments, outcome


def _moments(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int,
             endpoint: str) -> ArmMoments:
    y, mask = outcome(values, observed, visit, endpoint)
    return arm_moments({"y": y}, mask, treated)


def ttest(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int, *,
          endpoint: str = "change") -> Estimates:
    """Student's two-sample t-test with pooled variance; ``df = n - 2``."""
    return pooled(_moments(values, observed, treated, visit, endpoint))


def pooled(m: ArmMoments) -> Estimates:
    """Treated minus control mean of column ``y`` with the pooled-variance SE; ``df = n - 2``."""
    n0, n1 = m.n
    with np.errstate(invalid="ignore", divide="ignore"):
        df = n0 + n1 - 2.0
        pooled = m.within("y", "y") / df
        se = np.sqrt(pooled * (1.0 / n0 + 1.0 / n1))
        estimate = m.mean("y", 1) - m.mean("y", 0)
    return guarded(estimate, se, df, n0, n1)


def welch(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int, *,
          endpoint: str = "change") -> Estimates:
    """Welch's t-test with Satterthwaite degrees of freedom."""
    m = _moments(values, observed, treated, visit, endpoint)
    n0, n1 = m.n
    with np.errstate(invalid="ignore", divide="ignore"):
        s = m.sums["y"]
        q = m.products["yy"]
        v0 = (q[0] - s[0] ** 2 / n0) / (n0 - 1.0) / n0
        v1 = (q[1] - s[1] ** 2 / n1) / (n1 - 1.0) / n1
        se = np.sqrt(v0 + v1)
        df = (v0 + v1) ** 2 / (v0**2 / (n0 - 1.0) + v1**2 / (n1 - 1.0))
        estimate = m.mean("y", 1) - m.mean("y", 0)
    return guarded(estimate, se, df, n0, n1)

