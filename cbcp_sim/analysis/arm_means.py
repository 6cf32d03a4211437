"""Each arm's mean endpoint with its standard error, per replicate: what a prior on the control arm's mean
updates (borrowing controls), as RBesT and psborrow2 read a normal endpoint."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ArmMeans:
    """Per replicate ``(R,)``, of the control and the active arm: mean endpoint (points), its SE (the arm's
    sample SD over sqrt(n); NaN below two children) and children analysed. An arm with no child (a single-arm
    design's control) has ``n = 0`` and NaN mean and SE."""

    control: np.ndarray
    control_se: np.ndarray
    control_n: np.ndarray
    active: np.ndarray
    active_se: np.ndarray
    active_n: np.ndarray


def _arm(endpoint: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = mask.sum(axis=1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(mask, endpoint, 0.0).sum(axis=1) / n
        var = (np.where(mask, endpoint - mean[:, None], 0.0) ** 2).sum(axis=1) / (n - 1.0)
        se = np.sqrt(var / n)
    few = n < 2
    return np.where(n > 0, mean, np.nan), np.where(few, np.nan, se), n


def arm_means(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int,
              expected: np.ndarray | None = None) -> ArmMeans:
    """The arms' mean change from baseline to ``visit`` (minus each child's ``expected`` natural change, points,
    if given) among children observed at both; ``values``, ``observed`` ``(R, N, V)``, ``treated`` ``(N,)`` or
    ``(R, N)`` (True: active arm)."""
    seen = observed[..., 0] & observed[..., visit]
    endpoint = values[..., visit] - values[..., 0]
    if expected is not None:
        endpoint = endpoint - expected
    active = np.broadcast_to(treated, seen.shape)
    c, c_se, c_n = _arm(endpoint, seen & ~active)
    a, a_se, a_n = _arm(endpoint, seen & active)
    return ArmMeans(control=c, control_se=c_se, control_n=c_n, active=a, active_se=a_se, active_n=a_n)
