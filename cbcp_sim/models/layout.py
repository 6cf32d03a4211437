"""Allocation of children to arms: fixed arm sizes, or stratified permuted blocks.

With ``design.randomisation = "fixed"`` each arm has exactly ``n_per_arm`` children, drawn from its own
random streams and stored by arm: complete randomisation with fixed sizes, children being exchangeable
draws. With ``"blocks"`` the ``sum(n_per_arm)`` children are drawn as one cohort in enrolment order and
:mod:`cbcp_sim.models.randomisation` assigns their arms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cbcp_sim.scenario import Design


@dataclass(frozen=True)
class Layout:
    """How the children of a chunk are laid out: ``sizes`` of the per-arm random streams, and each child's
    arm ``(R, N)`` (a broadcast view when children are stored by arm)."""

    sizes: tuple[int, ...]
    arm: np.ndarray
    by_arm: bool  #: children stored by arm, so :func:`arm_slices` select each arm

    def select(self, j: int) -> slice | np.ndarray:
        """Children of arm ``j``: a slice of the child axis, or an ``(R, N)`` mask."""
        return arm_slices(self.sizes)[j] if self.by_arm else self.arm == j


def fixed_layout(design: Design, n_reps: int) -> Layout:
    """Children stored by arm, ``n_per_arm`` each."""
    sizes = arm_sizes(design)
    arm = np.broadcast_to(np.repeat(np.arange(len(sizes)), sizes), (n_reps, sum(sizes)))
    return Layout(sizes=sizes, arm=arm, by_arm=True)


def arm_sizes(design: Design) -> tuple[int, ...]:
    """Children per arm, control first."""
    return tuple(design.n_per_arm)


def arm_slices(sizes: tuple[int, ...]) -> list[slice]:
    """The children of each arm as a slice of the child axis."""
    ends = np.cumsum(sizes)
    return [slice(int(end - n), int(end)) for n, end in zip(sizes, ends, strict=True)]


def pick(a: np.ndarray, where: slice | np.ndarray) -> np.ndarray:
    """``a[:, where]`` for a slice; for an ``(R, N)`` mask, the selected children as one row ``(1, M, ...)``."""
    return a[:, where] if isinstance(where, slice) else a[where][None]


def place(out: np.ndarray, where: slice | np.ndarray, part: np.ndarray) -> None:
    """Write ``part`` (as returned by :func:`pick`) back into ``out``."""
    if isinstance(where, slice):
        out[:, where] = part
    else:
        out[where] = part[0]
