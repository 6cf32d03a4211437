"""Working memory bounded before any work starts: a chunk's memory estimated from the scenario, the chunk size
that keeps it within :data:`CHUNK_BUDGET`, and a one-line refusal when a run cannot fit the machine.

The estimate is an upper envelope of the peak memory traced (tracemalloc, numpy's arrays included) while one
chunk is simulated and analysed, measured over the bundled scenarios with 2 to 17 visits, 20 to 1,600
children, every analysis and the calendar on and off (``tests/test_budget.py`` checks it against fresh
measurements, from above and within a factor). It depends on the scenario alone, never on the machine, so the
chunk size it picks, part of the random-number layout, is the same everywhere: one seed, one result.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from cbcp_sim.analysis.mmrm import BATCH_BYTES
from cbcp_sim.errors import ScenarioError
from cbcp_sim.models.population import MAX_SCREENED_PER_CHILD, eligible_share
from cbcp_sim.scenario import Scenario

#: Estimated working memory of one chunk, at most (bytes). Chunks of the default size stay under it up to about
#: 1,000 children per trial at 5 visits; larger trials are simulated in smaller chunks.
CHUNK_BUDGET = 2**30
#: Bytes per child and replicate: the children's draws, the trial's arrays and the analyses' own working arrays
#: (the rank analyses' sorts are the largest), plus bytes per child, replicate and visit.
PER_CHILD = 800
PER_CHILD_VISIT = 24
#: Bytes per screened candidate and replicate (six characteristics, the eligibility mask and their joins).
PER_CANDIDATE = 200
#: MMRM's per-replicate sums by missingness pattern, per pattern and pair of visits (its S, Y, U and copies).
MMRM_PER_PATTERN = 4 * 8
#: Candidates screened once per population to estimate its eligible share for the estimate (SE at most 0.008):
#: enough for a bound on the children screened, and cheap in a sweep whose every point has its own population.
SHARE_CANDIDATES = 4000
#: Memory the machine keeps for everything else (the interpreter, the libraries, the parent's results).
RESERVE = 2**29


@dataclass(frozen=True)
class ChunkMemory:
    """Estimated working memory of a chunk: ``fixed`` bytes whatever its size plus ``per_replicate`` each."""

    fixed: int
    per_replicate: int

    def of(self, n_reps: int) -> int:
        """Bytes for a chunk of ``n_reps`` replicates."""
        return self.fixed + n_reps * self.per_replicate


def children(s: Scenario) -> int:
    """Children randomised in one simulated trial (all arms)."""
    return sum(s.design.n_per_arm)


def chunk_memory(s: Scenario) -> ChunkMemory:
    """The working memory of one chunk of ``s`` (see the module docstring)."""
    n, visits = children(s), len(s.design.visits)
    share = eligible_share(s.population, s.eligibility, SHARE_CANDIDATES)
    screened = n / max(share, 1 / MAX_SCREENED_PER_CHILD)
    per = n * (PER_CHILD + PER_CHILD_VISIT * visits) + math.ceil(PER_CANDIDATE * screened)
    fixed = 0
    if "mmrm" in s.analyses:
        t = visits - (s.analysis.mmrm_baseline in ("covariate", "none"))  # baseline a response: one visit more
        iterative = s.operations.enabled  # missed visits make any pattern; dropout alone, runs of first visits
        patterns = min(n, 2 ** t if iterative else t + 1)
        per += MMRM_PER_PATTERN * patterns * t * t
        # a batch's Hessian terms (P T^4 doubles per fit), at least one fit; the closed form of monotone dropout
        # keeps a few T^4 per fit in batches as large
        fixed += 2 * (max(BATCH_BYTES, 8 * patterns * t ** 4) if iterative else
                      max(BATCH_BYTES // patterns, 32 * t ** 4))
    return ChunkMemory(fixed, per)


def fitted_chunk_size(s: Scenario, requested: int) -> int:
    """The chunk size run: ``requested``, or fewer replicates (at least one) if its estimate would exceed
    :data:`CHUNK_BUDGET`. Depends on the scenario alone (see the module docstring)."""
    m = chunk_memory(s)
    return max(1, min(requested, (CHUNK_BUDGET - m.fixed) // m.per_replicate))


def available_memory() -> int | None:
    """Bytes of memory available to new work on this machine (Linux ``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(s: Scenario, chunk_size: int, workers: int, available: int | None = None) -> None:
    """A :class:`ScenarioError` naming the design if ``workers`` chunks of ``chunk_size`` replicates of ``s``
    at once need more memory than this machine has available (``available`` bytes; None: measured)."""
    available = available_memory() if available is None else available
    if available is None:
        return
    need = workers * chunk_memory(s).of(chunk_size) + RESERVE
    if need > available:
        jobs = f" on {workers} jobs at once" if workers > 1 else ""
        raise ScenarioError("design", f"{children(s):,} children x {len(s.design.visits)} visits per trial need "
                                      f"about {_gib(need)} of working memory{jobs} (chunks of {chunk_size:,} "
                                      f"trials), over the {_gib(available)} available: simulate fewer children "
                                      "(design.n_per_arm) or visits" + (", or use fewer --jobs" if workers > 1
                                                                          else ""))


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{math.ceil(n / 2**20)} MiB"
