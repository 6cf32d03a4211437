"""Wilcoxon rank-sum (Mann-Whitney) test with the Hodges-Lehmann shift, batched over replicates."""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from cbcp_sim.analysis.inference import Estimates, guarded
from cbcp_sim.analysis.moments import outcome

#: Largest pairwise-difference array built at once (bytes): with its temporaries a block stays under ~100 MB. A
#: replicate with more pairs than that has its shift selected without building them (:func:`_shift_large`).
MAX_BLOCK_BYTES = 32 * 2**20

_Z975 = special.ndtri(0.975)


def wilcoxon(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int, *,
             endpoint: str = "change") -> Estimates:
    """Wilcoxon rank-sum test of active vs control with the Hodges-Lehmann shift.

    The p-values are R's ``wilcox.test(active, control, exact = FALSE, correct = TRUE)``: mid-ranks
    for ties, normal approximation with the tie-corrected variance and a continuity correction
    (``p_two``: two-sided; ``p_upper``: alternative ``"greater"``). ``estimate`` is the Hodges-Lehmann
    shift, the median of all active-minus-control differences (Hodges & Lehmann 1963, Ann Math
    Stat 34:598). ``se`` is the width of Lehmann's distribution-free 95% interval
    ``(D_(k+1), D_(mn-k))``, ``k = floor(mn/2 - 1.96 sqrt(mn(m+n+1)/12))`` (no tie correction;
    ``k >= 0``), divided by ``2 x 1.96`` (Lehmann 1975, Nonparametrics, ch. 2); ``df = inf``. With
    many ties the interval can have zero width, and the replicate then counts as failed.
    """
    y, mask = outcome(values, observed, visit, endpoint)
    treated = np.broadcast_to(treated, mask.shape)
    arms = (mask & ~treated, mask & treated)
    n0, n1 = (arm.sum(axis=1) for arm in arms)
    pairs = int(n0.max(initial=1)) * int(n1.max(initial=1))
    if 8 * pairs > MAX_BLOCK_BYTES:
        parts = [_shift_large(y[i], arms[0][i], arms[1][i]) for i in range(len(y))]
    else:
        step = MAX_BLOCK_BYTES // (8 * pairs)
        parts = [_shift(y[i:i + step], arms[0][i:i + step], arms[1][i:i + step]) for i in range(0, len(y), step)]
    u, estimate, width = (np.concatenate(p) for p in zip(*parts, strict=True))
    mn = n0 * n1.astype(float)
    total = n0 + n1
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma = np.sqrt(mn / 12.0 * ((total + 1) - _ties(y, mask) / (total * (total - 1.0))))
        excess = u - mn / 2.0
        p_two = 2.0 * special.ndtr(-np.maximum(np.abs(excess) - 0.5, 0.0) / sigma)
        p_upper = special.ndtr((0.5 - excess) / sigma)
    return guarded(estimate, width / (2.0 * _Z975), np.full(len(y), np.inf), n0, n1, p_two, p_upper)


def _shift(y: np.ndarray, control: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, ...]:
    """Mann-Whitney U of the active arm, Hodges-Lehmann shift and Lehmann interval width ``(R,)``.

    Each arm's observed values are packed to the front (NaN padding), so the pairwise array is
    ``(R, max n1 x max n0)`` rather than ``(R, N x N)``.
    """
    a, c = _packed(y, active), _packed(y, control)
    diff = a[:, :, None] - c[:, None, :]
    u = (diff > 0).sum(axis=(1, 2)) + 0.5 * (diff == 0).sum(axis=(1, 2))
    diff = np.sort(diff.reshape(len(y), -1), axis=1)  # NaN (padding) last
    n0, n1 = control.sum(axis=1), active.sum(axis=1)
    mn = n0 * n1
    k = np.maximum(np.floor(mn / 2.0 - _Z975 * np.sqrt(mn * (n0 + n1 + 1) / 12.0)), 0)
    idx = np.stack([(mn - 1) // 2, mn // 2, k, mn - k - 1], axis=1).astype(np.intp)
    low_mid, high_mid, low, high = np.take_along_axis(diff, np.maximum(idx, 0), axis=1).T
    return u, (low_mid + high_mid) / 2.0, high - low


def _shift_large(y: np.ndarray, control: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, ...]:
    """:func:`_shift` of one replicate ``(N,)`` whose pairwise array would be too large, with the same bits: U from
    mid-ranks, and the order statistics of the differences selected without building them."""
    from scipy.stats import rankdata  # here: scipy.stats takes a third of a second to import, rarely needed

    a, c = np.sort(y[active]), np.sort(y[control])
    mn = a.size * c.size
    if mn == 0:
        return np.zeros(1), np.full(1, np.nan), np.full(1, np.nan)
    u = rankdata(np.concatenate([a, c]))[:a.size].sum() - a.size * (a.size + 1) / 2.0
    k = max(math.floor(mn / 2.0 - _Z975 * math.sqrt(mn * (a.size + c.size + 1) / 12.0)), 0)
    low_mid, high_mid, low, high = (_ordered_difference(a, c, r) for r in ((mn - 1) // 2, mn // 2, k, mn - k - 1))
    return np.array([u]), np.array([(low_mid + high_mid) / 2.0]), np.array([high - low])


def _ordered_difference(a: np.ndarray, c: np.ndarray, rank: int) -> float:
    """The ``rank``-th smallest (from 0) of the differences ``a[i] - c[j]`` of two sorted arrays, without building
    them all. The matrix ``a[i] + (-c[::-1])[j]`` is sorted along rows and columns, so each row keeps a range of
    candidates; a pivot (the weighted median of the rows' middle candidates) is ranked by a search per row and
    discards at least a quarter of the candidates (Johnson & Mizoguchi 1978), until a few per row are left."""
    minus = -c[::-1]  # increasing, and a[i] + minus[j] is exactly a[i] - c[-1 - j]
    left, right = np.zeros(a.size, np.int64), np.full(a.size, c.size, np.int64)
    while (right - left).sum() > 4 * (a.size + c.size):
        live = right > left
        middle = a[live] + minus[(left + right - 1)[live] // 2]
        order = np.argsort(middle, kind="stable")
        weight = np.cumsum((right - left)[live][order])
        pivot = middle[order][np.searchsorted(weight, weight[-1] / 2.0)]
        below, at_most = _count(a, minus, pivot, np.less), _count(a, minus, pivot, np.less_equal)
        if rank < below.sum():
            right = below
        elif rank < at_most.sum():
            return float(pivot)
        else:
            left = at_most
    sizes = right - left
    rows = np.repeat(np.arange(a.size), sizes)
    columns = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes - left, sizes)
    return float(np.partition(a[rows] + minus[columns], rank - left.sum())[rank - left.sum()])


def _count(a: np.ndarray, minus: np.ndarray, pivot: float, below: np.ufunc) -> np.ndarray:
    """Per row ``i``, how many ``a[i] + minus[j]`` (increasing in ``j``) are ``below(., pivot)``: a search of
    ``pivot - a[i]`` in ``minus``, then moved by a step where that rounding put it off."""
    count = np.searchsorted(minus, pivot - a, side="left" if below is np.less else "right")
    while True:
        up = (count < minus.size) & below(a + minus[np.minimum(count, minus.size - 1)], pivot)
        down = (count > 0) & ~below(a + minus[np.maximum(count - 1, 0)], pivot)
        if not (up.any() or down.any()):
            return count
        count += up.astype(np.int64) - down


def _packed(y: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``y`` where ``keep``, moved to the front of each row (order kept) and padded with NaN."""
    order = np.argsort(~keep, axis=1, kind="stable")[:, :int(keep.sum(axis=1).max(initial=1))]
    return np.where(np.take_along_axis(keep, order, axis=1), np.take_along_axis(y, order, axis=1), np.nan)


def _ties(y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``sum(t^3 - t)`` over the groups of tied observed values, per replicate."""
    s = np.sort(np.where(mask, y, np.inf), axis=1)
    valid = np.arange(y.shape[1]) < mask.sum(axis=1, keepdims=True)
    group = np.concatenate([np.zeros((len(y), 1), int), np.cumsum(s[:, 1:] != s[:, :-1], axis=1)], axis=1)
    t = np.bincount((group + y.shape[1] * np.arange(len(y))[:, None]).ravel(), weights=valid.ravel(),
                    minlength=y.size).reshape(y.shape)
    return (t**3 - t).sum(axis=1)
