"""Two-sample t-tests of the change from baseline (or of the primary-visit score): pooled and Welch."""

from __future__ import annotations

import numpy as np

from cbcp_sim.analysis.inference import Estimates, guarded
from cbcp_sim.analysis.moments import ArmMoments, arm_moments, group_moments, outcome


def _moments(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int,
             endpoint: str) -> ArmMoments:
    y, mask = outcome(values, observed, visit, endpoint)
    return arm_moments({"y": y}, mask, treated)


def ttest(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int, *,
          endpoint: str = "change") -> Estimates:
    """Student's two-sample t-test with pooled variance; ``df = n - 2``."""
    return pooled(_moments(values, observed, treated, visit, endpoint))


def ttest_arms(values: np.ndarray, observed: np.ndarray, arm: np.ndarray, visit: int, *, arms: int,
               endpoint: str = "change") -> tuple[Estimates, ...]:
    """One-way analysis of all ``arms`` arms (``arm``: each child's arm, control 0, ``(N,)`` or ``(R, N)``): each
    active arm minus control, with the variance pooled over every arm and ``df = n - arms``, as the classical
    many-to-one comparison [Dunnett 1955]."""
    y, mask = outcome(values, observed, visit, endpoint)
    m = group_moments({"y": y}, mask, tuple(arm == j for j in range(arms)))
    return tuple(pooled(m, j) for j in range(1, arms))


def pooled(m: ArmMoments, arm: int = 1) -> Estimates:
    """Arm ``arm`` minus control (arm 0) mean of column ``y``, with the SE from the variance pooled over every
    arm of ``m``; ``df = n - k`` for ``n`` children in ``k`` arms (``n - 2`` for two)."""
    n0, n1 = m.n[0], m.n[arm]
    with np.errstate(invalid="ignore", divide="ignore"):
        df = sum(m.n) - float(len(m.n))
        pooled = m.within("y", "y") / df
        se = np.sqrt(pooled * (1.0 / n0 + 1.0 / n1))
        estimate = m.mean("y", arm) - m.mean("y", 0)
    return guarded(estimate, se, df, n0, n1)


def welch(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int, *,
          endpoint: str = "change") -> Estimates:
    """Welch's t-test with Satterthwaite degrees of freedom."""
    return unpooled(_moments(values, observed, treated, visit, endpoint))


def unpooled(m: ArmMoments) -> Estimates:
    """Active (arm 1) minus control mean of column ``y``, with each arm's own variance in the SE and
    Satterthwaite's df."""
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

