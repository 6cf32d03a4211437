"""Single-arm analyses against natural history: each treated child's observed change minus the change
expected for a child of that GMFCS level and age (``expected``, points), as uncontrolled studies judged
"better than expected" (Lee et al. 2012; Sun et al. 2017's above-predicted change); and the plain
before/after comparison that expects no change at all.

The expectation comes from the natural-history model (see :mod:`cbcp_sim.models.expected_change`), so a
wrong expectation, an expectation response or an unblinded assessor shows up as false positives.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from cbcp_sim.analysis.inference import Estimates


def _excess(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int,
            expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mask = observed[..., 0] & observed[..., visit] & np.broadcast_to(treated, observed.shape[:2])
    return np.where(mask, values[..., visit] - values[..., 0] - expected, 0.0), mask


def above_expected(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int, *,
                   expected: np.ndarray) -> Estimates:
    """One-sample t-test of the mean excess change over the expected one; ``df = n - 1``."""
    excess, mask = _excess(values, observed, treated, visit, expected)
    n = mask.sum(axis=1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = excess.sum(axis=1) / n
        var = (np.where(mask, excess - mean[:, None], 0.0) ** 2).sum(axis=1) / (n - 1.0)
        se = np.sqrt(var / n)
    nan = np.where(n < 2, np.nan, 1.0)
    return Estimates(estimate=mean * nan, se=se * nan, df=(n - 1.0) * nan)


def count_above(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int, *,
                expected: np.ndarray) -> Estimates:
    """Share of children above their expected change, minus one half, with the exact binomial (sign) test
    of one half (two-sided as R ``binom.test``); SE of the share from the Agresti-Coull interval.

    A child exactly at the expectation counts as not above. The sign test is discrete (its size is below
    alpha at these n), and a mean expectation puts half the children above it only when the change is
    symmetric; a biased expectation or an assessor's bias moves the share and the test with it.
    """
    excess, mask = _excess(values, observed, treated, visit, expected)
    n = mask.sum(axis=1)
    k = (mask & (excess > 0.0)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        upper = np.where(k > 0, special.bdtrc(np.maximum(k - 1, 0), n, 0.5), 1.0)  # P(X >= k)
        lower = special.bdtr(k, n, 0.5)  # P(X <= k)
        shrunk = (k + 2.0) / (n + 4.0)
        se = np.sqrt(shrunk * (1.0 - shrunk) / (n + 4.0))
        estimate = k / n - 0.5
    nan = np.where(n < 2, np.nan, 1.0)
    return Estimates(estimate=estimate * nan, se=se * nan, df=np.full(n.shape, np.inf) * nan,
                     p_two=np.minimum(1.0, 2.0 * np.minimum(upper, lower)) * nan, p_upper=upper * nan)


def before_after(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int) -> Estimates:
    """One-sample t-test of the mean change from baseline against 0, as before/after studies reported: natural
    motor growth, the trial effect and an assessor's bias all count as effect (its type I error shows how much)."""
    return above_expected(values, observed, treated, visit, expected=np.zeros(values.shape[:2]))
