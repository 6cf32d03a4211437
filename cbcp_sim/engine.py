"""The Monte Carlo engine: chunks of replicates, one seed stream per chunk, jobs across chunks.

Replicates are split into chunks of ``chunk_size``; chunk ``c`` draws from
``SeedSequence(seed, spawn_key=(c, ...))`` (see :mod:`cbcp_sim.streams`), so a result depends on
the seed, the number of replicates and the chunk size, never on the number of jobs or the backend.
Chunks run in order (or in parallel with joblib, results gathered in order).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cbcp_sim import outcomes
from cbcp_sim.analysis import Estimates, analyse, infer
from cbcp_sim.errors import ScenarioError
from cbcp_sim.result import SimulationResult
from cbcp_sim.scenario import Scenario, load_scenario
from cbcp_sim.streams import Streams
from cbcp_sim.summary import rate, summarise

DEFAULT_REPS = 10_000
DEFAULT_SEED = 1
#: Replicates per chunk. Part of the random-stream layout: changing it changes the draws.
CHUNK_SIZE = 1000
MAX_REPS = 100_000_000


@dataclass(frozen=True)
class ChunkResult:
    """Per-replicate estimates of one chunk, with and without the treatment effect."""

    alt: dict[str, Estimates]
    null: dict[str, Estimates]
    effect_sum: float
    n_children: int
    screened: np.ndarray


def run_chunk(scenario: Scenario, seed: int, chunk: int, n_reps: int) -> ChunkResult:
    """Simulate and analyse chunk ``chunk`` (``n_reps`` trials) of a run seeded with ``seed``."""
    data = outcomes.simulate(scenario, n_reps, Streams(seed, chunk))
    endpoint = scenario.analysis.endpoint
    alt, null = {}, {}
    for name in scenario.analyses:
        alt[name] = analyse(name, data.values, data.observed, data.treated, data.primary, endpoint=endpoint)
        null[name] = analyse(name, data.null_values, data.observed, data.treated, data.primary, endpoint=endpoint)
    return ChunkResult(alt=alt, null=null, effect_sum=data.effect_sum, n_children=data.n_children,
                       screened=data.screened)


def chunk_plan(reps: int, chunk_size: int = CHUNK_SIZE) -> list[int]:
    """Replicates in each chunk: full chunks, then the remainder."""
    full, rest = divmod(reps, chunk_size)
    return [chunk_size] * full + ([rest] if rest else [])


def _check_int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not lo <= value <= hi:
        raise ScenarioError(name, f"must be a whole number in [{lo}, {hi}], got {value!r}")
    return int(value)


def simulate(scenario: Scenario | str | Path, reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED, jobs: int = 1,
             *, target_mcse: float | None = None, chunk_size: int = CHUNK_SIZE) -> SimulationResult:
    """Simulate ``reps`` trials of ``scenario`` and summarise power, type I error, bias and coverage.

    Parameters
    ----------
    scenario : Scenario or path to a TOML scenario file
    reps : number of simulated trials (the maximum when ``target_mcse`` is set)
    seed : non-negative integer; the same seed gives bit-identical results for any ``jobs``
    jobs : chunks run in parallel with joblib (``-1`` = all cores)
    target_mcse : stop after the first chunk at which the Monte Carlo SE of the primary power is
        at or below this bound (chunks are checked in order, so the stop does not depend on ``jobs``)
    chunk_size : replicates per chunk (changes the random-number layout)
    """
    start = time.perf_counter()
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    reps = _check_int("reps", reps, 1, MAX_REPS)
    seed = _check_int("seed", seed, 0, 2**63 - 1)
    jobs = _check_int("jobs", jobs, -64, 256)
    chunk_size = _check_int("chunk_size", chunk_size, 1, 10_000_000)
    if jobs == 0:
        raise ScenarioError("jobs", "must not be 0 (use 1 for one core, -1 for all cores)")
    if target_mcse is not None and not 0.0 < target_mcse < 0.5:
        raise ScenarioError("target_mcse", f"must be in (0, 0.5), got {target_mcse!r}")
    if len(scenario.design.arms) != 2:
        raise ScenarioError("design.arms", f"run compares two arms (the first is the reference), got "
                                           f"{len(scenario.design.arms)}; `cbcp-sim trajectories` shows any number")
    plan = chunk_plan(reps, chunk_size)
    chunks = _run(scenario, seed, plan, jobs, target_mcse)
    return _collect(scenario, chunks, seed, jobs, time.perf_counter() - start)


def _run(scenario: Scenario, seed: int, plan: list[int], jobs: int, target_mcse: float | None) -> list[ChunkResult]:
    """Chunk results in chunk order, stopping at the first chunk that meets ``target_mcse``."""
    results: list[ChunkResult] = []
    for result in _chunks_in_order(scenario, seed, plan, jobs, early_stop=target_mcse is not None):
        results.append(result)
        if _precise_enough(scenario, results, target_mcse):
            break
    return results


def _chunks_in_order(scenario: Scenario, seed: int, plan: list[int], jobs: int,
                     early_stop: bool) -> Iterator[ChunkResult]:
    """Run the chunks of ``plan`` one by one, or with joblib in waves (small waves when the run may stop early)."""
    if jobs == 1:
        for c, n in enumerate(plan):
            yield run_chunk(scenario, seed, c, n)
        return
    from joblib import Parallel, delayed, effective_n_jobs

    wave = effective_n_jobs(jobs) * 2 if early_stop else len(plan)
    with Parallel(n_jobs=jobs) as parallel:
        for first in range(0, len(plan), wave):
            yield from parallel(delayed(run_chunk)(scenario, seed, c, plan[c])
                                for c in range(first, min(first + wave, len(plan))))


def _precise_enough(scenario: Scenario, results: list[ChunkResult], target_mcse: float | None) -> bool:
    if target_mcse is None:
        return False
    name = scenario.analyses[0]
    est = _concat([r.alt[name] for r in results])
    inference = infer(est, alpha=scenario.design.alpha, sides=scenario.design.sides)
    mcse = rate(inference.reject, inference.failed)["mcse"]
    return bool(mcse <= target_mcse)


def _concat(parts: list[Estimates]) -> Estimates:
    return Estimates(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("estimate", "se", "df")))


def _collect(scenario: Scenario, chunks: list[ChunkResult], seed: int, jobs: int, seconds: float) -> SimulationResult:
    alpha, sides = scenario.design.alpha, scenario.design.sides
    true_effect = sum(c.effect_sum for c in chunks) / sum(c.n_children for c in chunks)
    rows, replicates = [], {}
    for i, name in enumerate(scenario.analyses):
        alt = _concat([c.alt[name] for c in chunks])
        null = _concat([c.null[name] for c in chunks])
        alt_inf, null_inf = infer(alt, alpha=alpha, sides=sides), infer(null, alpha=alpha, sides=sides)
        rows.append(summarise(name, "primary" if i == 0 else "secondary", (alt, alt_inf), (null, null_inf),
                              true_effect))
        replicates[name] = {"estimate": alt.estimate, "se": alt.se, "df": alt.df, "p": alt_inf.p,
                            "reject": alt_inf.reject, "null_estimate": null.estimate, "null_p": null_inf.p,
                            "null_reject": null_inf.reject}
    screened = np.concatenate([c.screened for c in chunks])
    enrolled = sum(scenario.design.n_per_arm) * screened.size
    return SimulationResult(scenario=scenario, rows=tuple(rows), n_reps=int(screened.size), seed=seed, jobs=jobs,
                            seconds=seconds, true_effect=true_effect,
                            screen_failure=1.0 - enrolled / float(screened.sum()), replicates=replicates)
