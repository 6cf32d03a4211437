"""Named random streams: one per (seed, chunk, source of randomness, arm).

Every source of randomness (ages, limits, visit noise, dropout, ...) reads its own stream,
keyed by a stable name, and each arm has its own, so the k-th child of an arm gets the same
numbers whatever the size of the trial, the effect, or the other arms: scenarios compared
with one seed share random numbers (common random numbers, as in Starsim). Chunks are
``SeedSequence(seed).spawn(...)`` children, so results do not depend on how many jobs run them.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import numpy as np

Draw = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]


def standard_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(shape)


def named_rng(seed: int, name: str) -> np.random.Generator:
    """A generator of its own for ``name`` (a prior's path, the Latin hypercube of a sensitivity analysis),
    apart from every chunk's streams (their spawn keys have three entries, this one has one)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(zlib.crc32(name.encode()),))))


class Streams:
    """Random streams of one chunk of replicates."""

    def __init__(self, seed: int, chunk: int) -> None:
        self.seed = seed
        self.chunk = chunk

    def rng(self, name: str, arm: int) -> np.random.Generator:
        """A fresh generator for stream ``name`` of ``arm``; the same name always gives the same numbers."""
        key = (self.chunk, zlib.crc32(name.encode()), arm)
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=key)))

    def per_child(self, name: str, sizes: Sequence[int], n_reps: int, draw: Draw = standard_normal,
                  extra: tuple[int, ...] = ()) -> np.ndarray:
        """Draws of shape ``(n_reps, sum(sizes), *extra)``; child k of each arm reads row k of its stream."""
        parts = [np.moveaxis(draw(self.rng(name, arm), (n, n_reps, *extra)), 0, 1)
                 for arm, n in enumerate(sizes)]
        return np.concatenate(parts, axis=1)
