"""The Monte Carlo engine: chunks of replicates, one seed stream per chunk, jobs across chunks.

Replicates are split into chunks of ``chunk_size``; chunk ``c`` draws from
``SeedSequence(seed, spawn_key=(c, ...))`` (see :mod:`cbcp_sim.models.streams`), so a result depends on
the seed, the number of replicates and the chunk size, never on the number of jobs or the backend.
Chunks run in order, or in parallel (joblib's loky processes or a Dask cluster) and are put back in chunk
order before they are summarised.
"""

from __future__ import annotations

import dataclasses
import socket
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from cbcp_sim.analysis import CROSSOVER, ESTIMAND, Estimates, analyse, infer
from cbcp_sim.analysis.metrics import rate, summarise
from cbcp_sim.analysis.multiplicity import dunnett, hochberg, holm
from cbcp_sim.errors import ScenarioError
from cbcp_sim.models import operations, trial
from cbcp_sim.models.streams import Streams
from cbcp_sim.run import monitoring as sequential
from cbcp_sim.run.comparisons import Comparison, comparisons
from cbcp_sim.run.monitoring import Monitoring
from cbcp_sim.run.progress import Progress
from cbcp_sim.run.result import SimulationResult
from cbcp_sim.run.store import MemoryStore, Store, chunk_key
from cbcp_sim.scenario import Scenario, load_scenario

DEFAULT_REPS = 10_000
DEFAULT_SEED = 1
#: Replicates per chunk. Part of the random-stream layout: changing it changes the draws.
CHUNK_SIZE = 1000
#: Most replicates per run: chunks bound the working memory, but each replicate's results are kept (about
#: 70 bytes per analysis and comparison), so this keeps a run's peak memory under 2 GiB; for more, combine
#: runs with different seeds. MCSE of a power at 1,000,000 replicates is at most 0.0005.
MAX_REPS = 1_000_000
MAX_SEED = 2**63 - 1
#: Step-down and step-up adjustments of p-values ``(R, m)`` over the arm comparisons.
ADJUSTMENTS = {"holm": holm, "hochberg": hochberg}
#: Where chunks run: joblib's local processes, or a Dask cluster through joblib's Dask backend.
BACKENDS = ("loky", "dask")


@dataclass(frozen=True)
class ChunkResult:
    """Per-replicate estimates of one chunk, with and without the cell effect, by (analysis, comparison)
    label; and per comparison the sums for its true effect."""

    alt: dict[tuple[str, str], Estimates]
    null: dict[tuple[str, str], Estimates]
    truth: dict[str, np.ndarray]  #: per comparison: [sum of effects (points), sum of responder differences, n]
    screened: np.ndarray
    milestones: dict[str, np.ndarray] | None = None  #: with a calendar: per trial (R,), see Calendar.milestones
    monitoring: dict[str, Monitoring] | None = None  #: with interim looks: per pass ("alt", "null")


def run_chunk(scenario: Scenario, seed: int, chunk: int, n_reps: int) -> ChunkResult:
    """Simulate and analyse chunk ``chunk`` (``n_reps`` trials) of a run seeded with ``seed``."""
    data = trial.simulate(scenario, n_reps, Streams(seed, chunk))
    a, d = scenario.analysis, scenario.design
    covariates = (np.stack([data.covariates[c] for c in a.covariates], axis=-1) if a.covariates else None)
    context = {"endpoint": a.endpoint, "covariates": covariates, "switch": data.switch, "expected": data.expected,
               "mcid": a.mcid}
    dose = data.covariates.get("dose", np.zeros(data.arm.shape))
    arm = data.arm[0] if data.arm.strides[0] == 0 else data.arm  # children stored by arm: one row for all
    passes = {"alt": (data.values, data.observed), "null": (data.null_values, data.null_observed)}
    results: dict[str, dict[tuple[str, str], Estimates]] = {p: {} for p in passes}
    counts: dict[str, dict[str, np.ndarray]] = {p: {} for p in passes}
    truth, first = {}, None
    for c in comparisons(scenario):
        active, members = c.groups(arm, dose, d.dose_threshold)
        first = active if first is None else first
        for p, (values, observed) in passes.items():
            seen = observed if members.all() else observed & members[..., None]
            for name in scenario.analyses:
                results[p][name, c.label] = _analyse(name, data, values, seen, active, context)
            if a.multiplicity == "dunnett":
                at_visit = seen[..., 0] & seen[..., data.primary]
                counts[p][c.label] = np.stack([(at_visit & ~active).sum(axis=1), (at_visit & active).sum(axis=1)])
        truth[c.label] = _truth(data, c, None if c.dose is None else c.stratum(dose, d.dose_threshold), a.mcid)
    for p in passes:
        for name in scenario.analyses:
            _adjust(results[p], name, scenario, counts[p])
    milestones = monitoring = None
    if data.calendar is not None:
        milestones = operations.summary_arrays(data.calendar, scenario)
    if scenario.sequential.interims:
        monitoring = _monitor(scenario, data, passes, results, first, context)
    return ChunkResult(alt=results["alt"], null=results["null"], truth=truth, screened=data.screened,
                       milestones=milestones, monitoring=monitoring)


def _monitor(scenario: Scenario, data: trial.TrialData, passes: dict[str, tuple[np.ndarray, np.ndarray]],
             results: dict[str, dict[tuple[str, str], Estimates]], active: np.ndarray,
             context: dict) -> dict[str, Monitoring]:
    """Interim looks at the primary analysis of the first comparison (its ``active`` children), in each pass."""
    name, c = scenario.analyses[0], comparisons(scenario)[0]
    calendar = data.calendar
    dates = calendar.dates[..., data.columns]
    out = {}
    for p, (values, observed) in passes.items():
        out[p] = sequential.monitor(
            scenario, calendar.randomised, dates, observed, data.primary, results[p][name, c.label],
            lambda seen, values=values: _analyse(name, data, values, seen, active, context))
    return out


def _analyse(name: str, data: trial.TrialData, values: np.ndarray, observed: np.ndarray, active: np.ndarray,
             context: dict) -> Estimates:
    """One analysis of one comparison; a crossover design's parallel analyses see period 1 only."""
    if name in CROSSOVER:
        return analyse(name, values, observed, active, len(data.months) - 1, **context)
    if data.switch is not None:
        period1 = slice(0, data.switch + 1)
        values, observed = values[..., period1], observed[..., period1]
    return analyse(name, values, observed, active, data.primary, **context)


def _truth(data: trial.TrialData, c: Comparison, population: np.ndarray | None, mcid: float) -> np.ndarray:
    """Sums over the comparison's population of children (``None``: every child; else a dose-stratum mask) of
    the effect of the active arm's cells over the control's (or over none) at the primary visit, in points
    and in responders (change >= ``mcid``); and their number."""
    treated = data.under[c.active]
    control = data.under[c.control if c.control is not None else -1]
    baseline = data.null_values[..., 0]
    responders = (treated - baseline >= mcid).astype(float) - (control - baseline >= mcid)
    effect = treated - control
    if population is None:
        return np.array([effect.sum(), responders.sum(), float(effect.size)])
    return np.array([effect[population].sum(), responders[population].sum(), float(population.sum())])


def _adjust(out: dict[tuple[str, str], Estimates], name: str, scenario: Scenario,
            counts: dict[str, np.ndarray]) -> None:
    """Replace the p-values of analysis ``name``'s arm comparisons by multiplicity-adjusted ones (Dunnett's
    correlation from ``counts``, each comparison's control and active children seen at the primary visit).

    Only the p-values of the scenario's ``design.sides`` are adjusted. Dunnett's correlation is that of a
    one-way analysis with one pooled variance; with per-comparison fits (and df, the smallest is used) it
    is an approximation, exact only for the t-test with equal variances.
    """
    method = scenario.analysis.multiplicity
    labels = [c.label for c in comparisons(scenario) if c.multiplicity]
    if method == "none" or len(labels) < 2:
        return
    ests = [out[name, label] for label in labels]
    sides = scenario.design.sides
    if method == "dunnett":
        t = np.stack([e.estimate / e.se for e in ests], axis=-1)
        df = np.min(np.stack([e.df for e in ests], axis=-1), axis=-1)
        n = np.stack([counts[label] for label in labels], axis=-1)
        adjusted = dunnett(t, df, n[0, :, 0], n[1], sides=sides)
    else:
        adjusted = ADJUSTMENTS[method](np.stack([infer(e, alpha=0.5, sides=sides).p for e in ests], axis=-1))
    field = "p_two" if sides == 2 else "p_upper"
    for i, (label, e) in enumerate(zip(labels, ests, strict=True)):
        out[name, label] = dataclasses.replace(e, **{field: adjusted[:, i]})


def chunk_plan(reps: int, chunk_size: int = CHUNK_SIZE) -> list[int]:
    """Replicates in each chunk: full chunks, then the remainder."""
    full, rest = divmod(reps, chunk_size)
    return [chunk_size] * full + ([rest] if rest else [])


def check_int(name: str, value: object, lo: int, hi: int) -> int:
    """``value`` if it is a whole number in ``[lo, hi]``, else a ScenarioError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not lo <= value <= hi:
        raise ScenarioError(name, f"must be a whole number in [{lo}, {hi}], got {value!r}")
    return int(value)


def simulate(scenario: Scenario | str | Path, reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED, jobs: int = 1,
             *, target_mcse: float | None = None, chunk_size: int = CHUNK_SIZE, backend: str = "loky",
             address: str | None = None) -> SimulationResult:
    """Simulate ``reps`` trials of ``scenario`` and summarise power, type I error, bias and coverage.

    Parameters
    ----------
    scenario : Scenario or path to a TOML scenario file
    reps : number of simulated trials (the maximum when ``target_mcse`` is set)
    seed : non-negative integer; the same seed gives bit-identical results for any ``jobs`` and backend
    jobs : chunks run in parallel (``-1`` = all cores)
    target_mcse : stop after the first chunk at which the Monte Carlo SE of the primary power is
        at or below this bound (chunks are checked in order, so the stop does not depend on ``jobs``)
    chunk_size : replicates per chunk (changes the random-number layout)
    backend, address : see :func:`execute`
    """
    start = time.perf_counter()
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    reps = check_int("reps", reps, 1, MAX_REPS)
    seed = check_int("seed", seed, 0, MAX_SEED)
    jobs = check_jobs(jobs)
    chunk_size = check_int("chunk_size", chunk_size, 1, 10_000_000)
    if target_mcse is not None and not 0.0 < target_mcse < 0.5:
        raise ScenarioError("target_mcse", f"must be in (0, 0.5), got {target_mcse!r}")
    tasks = point_tasks(scenario, reps, seed, chunk_size)
    chunks: list[ChunkResult] = []
    results = execute(tasks, jobs, backend, address)
    try:
        for result in _in_order(results):
            chunks.append(result)
            if _precise_enough(scenario, chunks, target_mcse):
                break
    finally:
        with warnings.catch_warnings():  # joblib warns of the chunks an early stop leaves unused
            warnings.filterwarnings("ignore", message=r".*(not used|have been cancelled)", category=UserWarning)
            results.close()
    return collect(scenario, chunks, seed, jobs, time.perf_counter() - start)


def check_jobs(jobs: object) -> int:
    """``jobs`` if it is a valid number of parallel jobs (``-1`` = all cores), else a ScenarioError."""
    jobs = check_int("jobs", jobs, -64, 256)
    if jobs == 0:
        raise ScenarioError("jobs", "must not be 0 (use 1 for one core, -1 for all cores)")
    return jobs


@dataclass(frozen=True)
class Task:
    """Chunk ``chunk`` (``n_reps`` trials) of ``scenario`` seeded with ``seed``: the unit of work sent to a worker."""

    scenario: Scenario
    seed: int
    chunk: int
    n_reps: int

    def key(self, digest: str | None = None) -> str:
        """A name for the task's result that changes with any of its inputs (``digest``: the scenario's, if known)."""
        return chunk_key(digest or self.scenario.digest(), self.seed, self.chunk, self.n_reps)


class Done(NamedTuple):
    """A finished task: its index among the tasks run, its result, and where and how long it ran."""

    index: int
    result: ChunkResult
    seconds: float
    host: str


def _run_task(index: int, task: Task) -> Done:
    start = time.perf_counter()
    result = run_chunk(task.scenario, task.seed, task.chunk, task.n_reps)
    return Done(index, result, time.perf_counter() - start, socket.gethostname())


def point_tasks(scenario: Scenario, reps: int, seed: int, chunk_size: int = CHUNK_SIZE) -> list[Task]:
    """The chunks of a run of ``reps`` trials: the tasks of one point of a sweep."""
    reps = check_int("reps", reps, 1, MAX_REPS)
    seed = check_int("seed", seed, 0, MAX_SEED)
    return [Task(scenario, seed, c, n) for c, n in enumerate(chunk_plan(reps, chunk_size))]


def run_points(points: Sequence[Sequence[Task]], *, jobs: int = 1, backend: str = "loky", address: str | None = None,
               store: Store | MemoryStore | None = None, progress: str | None = None,
               keep_replicates: bool = False) -> list[SimulationResult]:
    """The summaries of many runs (``points``, each a list of tasks of one scenario), run together.

    Every task of every point is one unit of work for :func:`execute`, so a sweep of few replicates per point
    still uses every job. With a ``store`` each chunk found there is read instead of run, and each chunk run is
    saved (atomically) as soon as it finishes, with its time and host in the store's log. A point is
    summarised as soon as its last chunk is in and its chunks are then freed, so memory stays bounded by
    the points under way; per-replicate arrays are dropped unless ``keep_replicates``. ``progress`` labels a
    progress bar on the terminal.
    """
    jobs = check_jobs(jobs)
    keys = []
    for tasks in points:
        digest = tasks[0].scenario.digest()  # a point's tasks share its scenario
        keys.append([t.key(digest) for t in tasks])
    found: list[dict[int, ChunkResult]] = [{} for _ in points]
    out: list[SimulationResult | None] = [None] * len(points)
    seconds = [0.0] * len(points)
    bar = Progress(sum(map(len, points)), progress) if progress else None

    def add(p: int, c: int, result: ChunkResult) -> None:
        found[p][c] = result
        if len(found[p]) == len(points[p]):
            first = points[p][0]
            chunks = [found[p][i] for i in range(len(points[p]))]
            res = collect(first.scenario, chunks, first.seed, jobs, seconds[p])
            out[p] = res if keep_replicates else dataclasses.replace(res, replicates={})
            found[p] = {}

    todo: list[tuple[int, int]] = []
    for p, tasks in enumerate(points):
        for c in range(len(tasks)):
            if store is not None and store.has(keys[p][c]):
                add(p, c, store.load(keys[p][c], ChunkResult))
                if bar is not None:
                    bar.skip()
            else:
                todo.append((p, c))
    try:
        with closing(execute([points[p][c] for p, c in todo], jobs, backend, address)) as finished:
            for done in finished:
                p, c = todo[done.index]
                if store is not None:
                    store.save(keys[p][c], done.result)
                    store.log(event="chunk", point=p, chunk=points[p][c].chunk, reps=points[p][c].n_reps,
                              seconds=round(done.seconds, 4), worker=done.host)
                seconds[p] += done.seconds
                add(p, c, done.result)
                if bar is not None:
                    bar.advance()
    finally:
        if bar is not None:
            bar.close()
    return out  # type: ignore[return-value]


def execute(tasks: Sequence[Task], jobs: int = 1, backend: str = "loky",
            address: str | None = None) -> Iterator[Done]:
    """Run ``tasks`` and yield each as it finishes (in order when run in this process).

    ``backend`` is ``"loky"`` (joblib's local processes, ``jobs`` of them; one job runs here) or ``"dask"``
    (joblib's Dask backend on the scheduler at ``address``, e.g. ``tcp://10.0.0.5:8786``, using all its workers
    whatever ``jobs``; with no address a ``distributed.LocalCluster`` of ``jobs`` single-threaded worker
    processes is started and closed). A task's
    result depends only on the task, so the backend and the number of jobs never change it. Closing the
    generator early cancels the tasks not yet started.
    """
    if backend not in BACKENDS:
        raise ScenarioError("backend", f"must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if address is not None and backend != "dask":
        raise ScenarioError("address", "is the address of a Dask scheduler: give it with backend dask")
    if not tasks:
        return
    if backend == "loky" and jobs == 1:
        for i, task in enumerate(tasks):
            yield _run_task(i, task)
        return
    from joblib import Parallel, delayed

    with _backend(backend, address, jobs) as n_jobs, \
            Parallel(n_jobs=n_jobs, return_as="generator_unordered") as parallel:
        yield from parallel(delayed(_run_task)(i, task) for i, task in enumerate(tasks))


@contextmanager
def _backend(backend: str, address: str | None, jobs: int) -> Iterator[int]:
    """The number of joblib jobs to ask for, inside the backend's context."""
    if backend == "loky":
        yield jobs
        return
    try:
        from distributed import Client, LocalCluster
        from joblib import effective_n_jobs, parallel_config
    except ImportError:
        raise ScenarioError("backend", "dask needs the distributed package: pip install 'cbcp_sim[dask]'") from None
    cluster = None
    if address is None:
        cluster = LocalCluster(n_workers=effective_n_jobs(jobs), threads_per_worker=1, processes=True,
                               dashboard_address=None)
    try:
        try:
            client = Client(address or cluster, timeout="20s")
        except (OSError, ValueError, TypeError) as exc:
            raise ScenarioError("address", f"no Dask scheduler answered at {address or 'the local cluster'}: "
                                           f"{exc}") from None
        with client, parallel_config(backend="dask"):
            yield -1
    finally:
        if cluster is not None:
            cluster.close()


def _in_order(results: Iterator[Done]) -> Iterator[ChunkResult]:
    """Results that arrive in any order, yielded in task order."""
    waiting: dict[int, ChunkResult] = {}
    following = 0
    for done in results:
        waiting[done.index] = done.result
        while following in waiting:
            yield waiting.pop(following)
            following += 1


def _precise_enough(scenario: Scenario, results: list[ChunkResult], target_mcse: float | None) -> bool:
    if target_mcse is None:
        return False
    key = (scenario.analyses[0], comparisons(scenario)[0].label)
    est = _concat([r.alt[key] for r in results])
    inference = infer(est, alpha=scenario.design.alpha, sides=scenario.design.sides)
    mcse = rate(inference.reject, inference.failed)["mcse"]
    return bool(mcse <= target_mcse)


def _concat(parts: list[Any]) -> Any:
    """Per-replicate dataclasses (Estimates, Monitoring) of consecutive chunks joined into one."""
    def join(field: str) -> np.ndarray | None:
        arrays = [getattr(p, field) for p in parts]
        return None if arrays[0] is None else np.concatenate(arrays)

    return type(parts[0])(*(join(f.name) for f in dataclasses.fields(parts[0])))


def true_effect(truth: np.ndarray, estimand: str | None = "points") -> float:
    """The true value of an ``estimand`` (:data:`cbcp_sim.analysis.ESTIMAND`: ``"points"``, ``"responders"`` or
    ``None``, not computed) from a comparison's summed :func:`_truth`."""
    if estimand is None:
        return float("nan")
    return float(truth[0 if estimand == "points" else 1] / truth[2])


def collect(scenario: Scenario, chunks: list[ChunkResult], seed: int, jobs: int, seconds: float) -> SimulationResult:
    """The summary of a run from its chunk results, in chunk order."""
    alpha, sides = scenario.design.alpha, scenario.design.sides
    rows, replicates = [], {}
    comps = comparisons(scenario)
    effects = {}
    for c in comps:
        truth = sum(ch.truth[c.label] for ch in chunks)
        effects[c.label] = true_effect(truth)
        for i, name in enumerate(scenario.analyses):
            alt = _concat([ch.alt[name, c.label] for ch in chunks])
            null = _concat([ch.null[name, c.label] for ch in chunks])
            alt_inf, null_inf = infer(alt, alpha=alpha, sides=sides), infer(null, alpha=alpha, sides=sides)
            role = "primary" if i == 0 and (c.multiplicity or c.control is None) else "secondary"
            rows.append(summarise(name, role, (alt, alt_inf), (null, null_inf),
                                  true_effect(truth, ESTIMAND.get(name, "points")), comparison=c.label))
            replicates[replicate_key(name, c, comps)] = {
                "estimate": alt.estimate, "se": alt.se, "df": alt.df, "p": alt_inf.p, "reject": alt_inf.reject,
                "null_estimate": null.estimate, "null_p": null_inf.p, "null_reject": null_inf.reject}
    screened = np.concatenate([c.screened for c in chunks])
    enrolled = sum(scenario.design.n_per_arm) * screened.size
    calendar = monitored = None
    if chunks[0].milestones is not None:
        calendar = operations.summarise({k: np.concatenate([c.milestones[k] for c in chunks])
                                         for k in chunks[0].milestones})
    if chunks[0].monitoring is not None:
        monitored = sequential.summarise(scenario, *(_concat([c.monitoring[p] for c in chunks])
                                                     for p in ("alt", "null")))
    return SimulationResult(scenario=scenario, rows=tuple(rows), n_reps=int(screened.size), seed=seed, jobs=jobs,
                            seconds=seconds, true_effect=effects[comps[0].label],
                            screen_failure=1.0 - enrolled / float(screened.sum()), replicates=replicates,
                            operations=calendar, sequential=monitored)


def replicate_key(name: str, c: Comparison, comps: tuple[Comparison, ...]) -> str:
    """Key of :attr:`SimulationResult.replicates`: the analysis name for the first comparison, else
    ``"<analysis>: <comparison>"``."""
    return name if c == comps[0] else f"{name}: {c.label}"
