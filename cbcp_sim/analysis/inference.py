"""Per-replicate estimates and their t-based inference (p-value, rejection, confidence interval)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special


@dataclass(frozen=True)
class Estimates:
    """Active minus control, per replicate ``(R,)``: estimate, standard error, t degrees of freedom.

    Tests that are not t tests (rank, exact) also give their own p-values: ``p_two`` (two-sided) and
    ``p_upper`` (one-sided, active > control); the interval still comes from ``estimate`` and ``se``
    (``df = inf`` for a normal interval).
    """

    estimate: np.ndarray
    se: np.ndarray
    df: np.ndarray
    p_two: np.ndarray | None = None
    p_upper: np.ndarray | None = None

    @property
    def failed(self) -> np.ndarray:
        """True where the replicate could not be analysed."""
        return ~(np.isfinite(self.estimate) & np.isfinite(self.se) & (self.se > 0) & (self.df > 0))


def guarded(estimate: np.ndarray, se: np.ndarray, df: np.ndarray, n0: np.ndarray, n1: np.ndarray,
            p_two: np.ndarray | None = None, p_upper: np.ndarray | None = None) -> Estimates:
    """Estimates (and any own p-values), set to NaN where an arm has fewer than two observed children."""
    nan = np.where((n0 < 2) | (n1 < 2), np.nan, 1.0)
    return Estimates(estimate=estimate * nan, se=se * nan, df=df * nan,
                     p_two=None if p_two is None else p_two * nan, p_upper=None if p_upper is None else p_upper * nan)


@dataclass(frozen=True)
class Inference:
    """Test and interval per replicate ``(R,)``; NaN where the analysis failed."""

    statistic: np.ndarray
    p: np.ndarray
    reject: np.ndarray   #: bool; False where failed (check ``failed``)
    ci_low: np.ndarray
    ci_high: np.ndarray
    failed: np.ndarray


def infer(est: Estimates, *, alpha: float, sides: int) -> Inference:
    """t test of no difference (or the analysis's own p-values) and the matching confidence interval.

    ``sides=2``: two-sided p and a ``1 - alpha`` interval. ``sides=1``: p for active > control and
    the ``1 - 2 alpha`` two-sided interval whose lower end is the one-sided bound.
    """
    failed = est.failed
    with np.errstate(invalid="ignore", divide="ignore"):
        t = est.estimate / est.se
        p = 2.0 * special.stdtr(est.df, -np.abs(t)) if sides == 2 else special.stdtr(est.df, -t)
        own = est.p_two if sides == 2 else est.p_upper
        if own is not None:
            p = np.asarray(own, dtype=float)
        df, at = np.unique(est.df, return_inverse=True)  # the quantile once per df: few distinct
        q = special.stdtrit(df, 1.0 - alpha / sides)[at.reshape(est.df.shape)]
        half = q * est.se
    nan = np.where(failed, np.nan, 1.0)
    return Inference(statistic=t * nan, p=p * nan, reject=~failed & (p < alpha),
                     ci_low=(est.estimate - half) * nan, ci_high=(est.estimate + half) * nan, failed=failed)
