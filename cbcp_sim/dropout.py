"""Monotone dropout, missing completely at random, with a constant hazard per month.

The hazard ``h = -ln(1 - fraction) / by_month`` loses ``fraction`` of children by ``by_month``
(ref §5, §7.6). A child is observed at every visit before its dropout time; the baseline
(month 0) is always observed. First cut: issue 6 adds MAR/MNAR and visit windows.
"""

from __future__ import annotations

import math

import numpy as np

from cbcp_sim.scenario import Dropout
from cbcp_sim.streams import Streams


def hazard(d: Dropout) -> float:
    """Dropout hazard per month."""
    return -math.log1p(-d.fraction) / d.by_month


def observed(d: Dropout, months: np.ndarray, sizes: tuple[int, ...], n_reps: int, streams: Streams) -> np.ndarray:
    """Mask ``(R, N, V)``: True where the child is still in the trial at the visit."""
    h = hazard(d)
    if h == 0.0:
        return np.ones((n_reps, sum(sizes), len(months)), dtype=bool)
    times = streams.per_child("dropout", sizes, n_reps, draw=lambda rng, sh: rng.exponential(1.0 / h, sh))
    return times[..., None] > np.asarray(months)
