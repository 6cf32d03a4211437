"""Operating characteristics of a design from per-replicate results, with Monte Carlo error.

Metric names follow simulation-study usage (Morris, White & Crowther 2019, Stat Med 38:2074):
power (SimDesign's EDR) and type I error with MCSE and a Wilson 95% interval, mean estimate,
bias with its MCSE, empirical SE, mean model SE, RMSE and coverage (ECR).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cbcp_sim.analysis import Estimates, Inference

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion (NaN for n = 0); it always holds the proportion, even where
    rounding would put a bound a step beyond it (at 0 or 1 successes out of n)."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, min(centre - half, p)), min(1.0, max(centre + half, p))


def rate(reject: np.ndarray, failed: np.ndarray) -> dict[str, float]:
    """Rejection rate among analysed replicates, its MCSE and Wilson 95% interval."""
    n = int((~failed).sum())
    k = int(reject[~failed].sum())
    p = k / n if n else math.nan
    low, high = wilson(k, n)
    return {"rate": p, "mcse": math.sqrt(p * (1 - p) / n) if n else math.nan, "ci_low": low, "ci_high": high}


def familywise(null: list[Inference]) -> dict[str, float]:
    """Family-wise error: the share of trials under no effect in which at least one of the comparisons ``null``
    (their p-values adjusted together as run) rejects, with its MCSE and Wilson 95% interval ([EMA 2017]
    multiplicity guideline). A trial is no decision only when every comparison failed."""
    return rate(np.any([i.reject for i in null], axis=0), np.all([i.failed for i in null], axis=0))


def operating_characteristics(name: str, role: str, alt: tuple[Estimates, Inference], null: tuple[Estimates, Inference],
              true_effect: float, *, comparison: str = "") -> dict[str, Any]:
    """One tidy row for an analysis of a comparison: power, type I error, bias, RMSE, coverage, failures.

    ``power`` and ``type1_error`` are rates among the trials whose analysis gave a result (a failed analysis,
    say a singular fit, is no decision); ``power_all_trials`` counts a failed analysis as not significant, the
    trial's outcome in practice. The two differ only when ``n_failed`` > 0. With a NaN ``true_effect`` (an
    estimand the engine does not compute) bias, RMSE and coverage are NaN."""
    est, inf = alt
    ok = ~inf.failed
    x = est.estimate[ok]
    n = x.size
    power = rate(inf.reject, inf.failed)
    type1 = rate(null[1].reject, null[1].failed)
    empirical_se = float(np.std(x, ddof=1)) if n > 1 else math.nan
    covered = (inf.ci_low[ok] <= true_effect) & (true_effect <= inf.ci_high[ok])
    return {
        "analysis": name,
        "comparison": comparison,
        "role": role,
        "power": power["rate"],
        "mcse": power["mcse"],
        "ci_low": power["ci_low"],
        "ci_high": power["ci_high"],
        "type1_error": type1["rate"],
        "type1_mcse": type1["mcse"],
        "type1_ci_low": type1["ci_low"],
        "type1_ci_high": type1["ci_high"],
        "true_effect": true_effect,
        "mean_estimate": float(x.mean()) if n else math.nan,
        "bias": float(x.mean() - true_effect) if n else math.nan,
        "bias_mcse": empirical_se / math.sqrt(n) if n > 1 else math.nan,
        "empirical_se": empirical_se,
        "mean_se": float(est.se[ok].mean()) if n else math.nan,
        "rmse": float(np.sqrt(np.mean((x - true_effect) ** 2))) if n else math.nan,
        "coverage": float(covered.mean()) if n and math.isfinite(true_effect) else math.nan,
        "n_reps": int(inf.failed.size),
        "n_failed": int(inf.failed.sum()),
        "n_failed_null": int(null[1].failed.sum()),
        "power_all_trials": float(inf.reject[ok].sum() / inf.failed.size) if inf.failed.size else math.nan,
    }
