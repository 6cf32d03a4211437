"""The analysed value of each child, and masked sums by arm over replicates: the sufficient statistics of the
linear analyses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ArmMoments:
    """Per replicate ``(R,)`` and arm (control 0, then the active arms; two arms from :func:`arm_moments`):
    counts, centred sums and cross-products."""

    n: tuple[np.ndarray, ...]
    sums: dict[str, tuple[np.ndarray, ...]]
    products: dict[str, tuple[np.ndarray, ...]]

    def mean(self, name: str, arm: int) -> np.ndarray:
        return self.sums[name][arm] / self.n[arm]

    def within(self, a: str, b: str) -> np.ndarray:
        """Pooled within-arm sum of cross-products of ``a`` and ``b`` (about each arm's means), over every arm."""
        key = a + b if a + b in self.products else b + a
        return sum(self.products[key][g] - self.sums[a][g] * self.sums[b][g] / self.n[g] for g in range(len(self.n)))


def outcome(values: np.ndarray, observed: np.ndarray, visit: int, endpoint: str) -> tuple[np.ndarray, np.ndarray]:
    """The analysed value ``(R, N)`` and where it is observed: the change from baseline (observed at
    baseline and ``visit``) for ``endpoint="change"``, else the score at ``visit``."""
    if endpoint == "change":
        return values[..., visit] - values[..., 0], observed[..., visit] & observed[..., 0]
    return values[..., visit], observed[..., visit]


def arm_moments(columns: dict[str, np.ndarray], mask: np.ndarray, treated: np.ndarray) -> ArmMoments:
    """Moments of ``columns`` (each ``(R, N)``) over the children where ``mask`` is True, in the control
    (``~treated``) and active (``treated``) arms; ``treated`` is ``(N,)`` or ``(R, N)``."""
    return group_moments(columns, mask, (~treated, treated))


def group_moments(columns: dict[str, np.ndarray], mask: np.ndarray, arms: tuple[np.ndarray, ...]) -> ArmMoments:
    """Moments of ``columns`` (each ``(R, N)``) over the children where ``mask`` is True, by arm: ``arms`` are
    disjoint masks, all ``(N,)`` or all ``(R, N)``, control first.

    Each column is first centred on its masked mean per replicate, so sums of squares stay exact
    whatever the level of the scores. Where every child is observed, a C-ordered column is not masked (the same
    numbers: its sums run in the same order as those of the masked copy).
    """
    w = mask.astype(float)
    full = bool(mask.all())
    n = _by_arm(w, arms)
    total = n.sum(axis=1)
    centred = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for name, y in columns.items():
            if not (full and y.flags.c_contiguous):
                y = np.where(mask, y, 0.0)
            c = y - (y.sum(axis=1) / total)[:, None]
            if not full:
                c *= w
            centred[name] = c
    sums = {k: _split(_by_arm(v, arms)) for k, v in centred.items()}
    names = list(columns)
    products = {a + b: _split(_by_arm(centred[a] * centred[b], arms))
                for i, a in enumerate(names) for b in names[i:]}
    return ArmMoments(n=_split(n), sums=sums, products=products)


def _by_arm(values: np.ndarray, arms: tuple[np.ndarray, ...]) -> np.ndarray:
    """Sums over each arm's children, ``(R, arms)``, for arms given per child ``(N,)`` (columns are selected) or per
    replicate ``(R, N)``: numpy's own reduction, so the bits never depend on BLAS threading (results must be
    identical in any worker process)."""
    if arms[0].ndim == 1:
        return np.stack([values[:, arm].sum(axis=1) for arm in arms], axis=1)
    return np.stack([np.where(arm, values, 0.0).sum(axis=1) for arm in arms], axis=1)


def _split(by_arm: np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(by_arm.T)
