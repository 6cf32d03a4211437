"""Stratified permuted-block randomisation in enrolment order (ICH E9 §2.3.1).

Within each stratum (a combination of GMFCS level, age band and dose stratum) children are assigned in
enrolment order from consecutive blocks of ``block_size``, each a random permutation of the allocation
ratio repeated ``block_size / sum(ratio)`` times. Arm sizes therefore differ from the target only by the
incomplete last block of each stratum.
"""

from __future__ import annotations

import numpy as np

from cbcp_sim.scenario import Design, allocation_ratio


def strata(design: Design, gmfcs: np.ndarray, age: np.ndarray, dose: np.ndarray) -> np.ndarray:
    """Stratum index ``(R, N)`` of each child from the factors in ``design.strata``."""
    index = np.zeros(gmfcs.shape, dtype=np.int64)
    factors = {"gmfcs": (gmfcs - 1, 5),
               "age": (np.searchsorted(design.age_bands, age, side="right"), len(design.age_bands) + 1),
               "dose": ((dose >= design.dose_threshold).astype(np.int64), 2)}
    for name in design.strata:
        level, count = factors[name]
        index = index * count + level
    return index


def block_size(design: Design) -> int:
    """Children per block: ``design.block_size``, or twice the allocation ratio's sum when it is 0."""
    return design.block_size or 2 * sum(allocation_ratio(design.n_per_arm))


def assign(design: Design, stratum: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Arm ``(R, N)`` of each child, children in enrolment order along axis 1."""
    n_reps, n = stratum.shape
    ratio = allocation_ratio(design.n_per_arm)
    size = block_size(design)
    template = np.repeat(np.arange(len(ratio)), ratio)
    template = np.tile(template, size // len(template))
    n_strata = int(stratum.max()) + 1 if stratum.size else 1
    blocks = -(-n // size)
    keys = rng.random((n_reps, n_strata, blocks, size))
    sequence = template[np.argsort(keys, axis=-1)].reshape(n_reps, n_strata, blocks * size)
    onehot = stratum[..., None] == np.arange(n_strata)
    rank = (np.cumsum(onehot, axis=1) - 1)[onehot].reshape(n_reps, n)
    return sequence[np.arange(n_reps)[:, None], stratum, rank]
