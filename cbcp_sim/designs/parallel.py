"""Parallel-group design: a control arm (sham or placebo) first, then active arms.

Allocation is fixed by ``design.n_per_arm``; children are stored by arm, which is equivalent to
complete randomisation because children are exchangeable draws. First cut: issue 5 adds k arms,
stratified block randomisation, crossover and repeat-dose designs.
"""

from __future__ import annotations

import numpy as np

from cbcp_sim.scenario import Design


def arm_sizes(design: Design) -> tuple[int, ...]:
    """Children per arm, control first."""
    return tuple(design.n_per_arm)


def treated(sizes: tuple[int, ...]) -> np.ndarray:
    """``(N,)`` True for children in an active arm (every arm after the first)."""
    return np.repeat(np.arange(len(sizes)) > 0, sizes)


def arm_slices(sizes: tuple[int, ...]) -> list[slice]:
    """The children of each arm as a slice of the child axis."""
    ends = np.cumsum(sizes)
    return [slice(int(end - n), int(end)) for n, end in zip(sizes, ends, strict=True)]
