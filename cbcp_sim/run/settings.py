"""How a run is carried out, in one validated and frozen object: replicates, seed, chunks, jobs, backend.

Like SimDesign's ``control`` list and the one validation step of scipy.stats, every function that runs trials
takes a :class:`RunSettings` and never re-checks its values. None of them changes what is simulated except
``reps``, ``seed`` and ``chunk_size`` (the random-number layout, see :mod:`cbcp_sim.models.streams`); ``jobs``,
``backend`` and ``address`` only decide where chunks run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from cbcp_sim.errors import SettingsError

DEFAULT_REPS = 10_000
DEFAULT_SEED = 1
#: Replicates per chunk. Part of the random-stream layout: changing it changes the draws.
CHUNK_SIZE = 1000
#: Most replicates per run: chunks bound the working memory, but each replicate's results are kept (about
#: 70 bytes per analysis and comparison), so this keeps a run's peak memory under 2 GiB; for more, combine
#: runs with different seeds. MCSE of a power at 1,000,000 replicates is at most 0.0005.
MAX_REPS = 1_000_000
MAX_SEED = 2**63 - 1
MAX_CHUNK_SIZE = 10_000_000
#: Where chunks run: joblib's local processes, or a Dask cluster through joblib's Dask backend.
BACKENDS = ("loky", "dask")
#: Jobs allowed: 1 to 256 processes, or -1 (all cores), -2 (all but one), ... as joblib counts.
JOBS = (-64, 256)


def whole_number(name: str, value: object, lo: int, hi: int) -> int:
    """``value`` as an int if it is a whole number in ``[lo, hi]``, else a SettingsError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not lo <= value <= hi:
        raise SettingsError(name, f"must be a whole number in [{lo}, {hi}], got {value!r}")
    return int(value)


@dataclass(frozen=True)
class RunSettings:
    """How many trials, from which seed, in chunks of what size, on how many jobs of which backend.

    Parameters
    ----------
    reps : simulated trials, 1 to :data:`MAX_REPS` (per point for the planning functions)
    seed : non-negative integer; the same seed gives bit-identical results for any ``jobs`` and backend
    jobs : chunks run in parallel, 1 to 256 (``-1`` = all cores, as joblib counts)
    backend : ``"loky"`` (local processes) or ``"dask"`` (a Dask cluster)
    address : the Dask scheduler (``tcp://host:port``); without it ``backend="dask"`` starts a local cluster
    chunk_size : replicates per chunk (changes the random-number layout)
    progress : show a progress bar with an ETA once the work lasts two seconds, on a terminal or in a Jupyter
        notebook only (never in a pipe, a file or captured output); ``False`` keeps quiet
    """

    reps: int = DEFAULT_REPS
    seed: int = DEFAULT_SEED
    jobs: int = 1
    backend: str = "loky"
    address: str | None = None
    chunk_size: int = CHUNK_SIZE
    progress: bool = True

    def __post_init__(self) -> None:
        checked = {"reps": whole_number("reps", self.reps, 1, MAX_REPS),
                   "seed": whole_number("seed", self.seed, 0, MAX_SEED),
                   "jobs": whole_number("jobs", self.jobs, *JOBS),
                   "chunk_size": whole_number("chunk_size", self.chunk_size, 1, MAX_CHUNK_SIZE)}
        if checked["jobs"] == 0:
            raise SettingsError("jobs", "must not be 0 (use 1 for one core, -1 for all cores)")
        if self.backend not in BACKENDS:
            raise SettingsError("backend", f"must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.address is not None and (self.backend != "dask" or not isinstance(self.address, str)):
            raise SettingsError("address", "is the address of a Dask scheduler: give it as text with backend dask")
        if not isinstance(self.progress, bool):
            raise SettingsError("progress", f"must be true or false, got {self.progress!r}")
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def replace(self, **changes: Any) -> RunSettings:
        """These settings with ``changes`` (``None`` values ignored), validated again."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def chunks(self, size: int | None = None) -> list[int]:
        """Replicates in each chunk of ``size`` (default ``chunk_size``): full chunks, then the remainder."""
        size = size or self.chunk_size
        full, rest = divmod(self.reps, size)
        return [size] * full + ([rest] if rest else [])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
