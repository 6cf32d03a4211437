"""Two-period crossover analyses: cells in period 1 then placebo (sequence "cells first", ``treated``)
against placebo then cells (the reference sequence), with the switch at visit index ``switch``.

Cells cannot be washed out, so what the first sequence keeps (or loses, as the effect wanes) in
period 2 enters both analyses: these are the comparisons whose bias the simulation shows.
"""

from __future__ import annotations

import numpy as np

from cbcp_sim.analysis.inference import Estimates
from cbcp_sim.analysis.moments import arm_moments
from cbcp_sim.analysis.ttests import pooled


def crossover(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int, *,
              switch: int) -> Estimates:
    """Period-adjusted within-child comparison (Hills & Armitage 1979, Br J Clin Pharmacol 8:7): half the
    difference between sequences of the period-1 minus period-2 change, pooled t with ``n - 2`` df.

    Unbiased for the cell effect when nothing carries over; a durable effect that keeps (or a waning
    effect that loses) ground in period 2 biases it.
    """
    p1 = values[..., switch] - values[..., 0]
    p2 = values[..., visit] - values[..., switch]
    mask = observed[..., 0] & observed[..., switch] & observed[..., visit]
    est = pooled(arm_moments({"y": p1 - p2}, mask, treated))
    return Estimates(estimate=est.estimate / 2.0, se=est.se / 2.0, df=est.df)


def period2(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int, *,
            switch: int) -> Estimates:
    """Period-2 comparison: change over period 2 of the children who get cells then (the reference
    sequence) minus that of the children who got them in period 1; pooled t with ``n - 2`` df.

    Unbiased when the period-1 effect neither grows nor wanes after the switch; waning makes it
    overstate the effect by what the first sequence loses.
    """
    p2 = values[..., visit] - values[..., switch]
    mask = observed[..., switch] & observed[..., visit]
    est = pooled(arm_moments({"y": p2}, mask, treated))
    return Estimates(estimate=-est.estimate, se=est.se, df=est.df)
