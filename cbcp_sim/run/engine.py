"""The Monte Carlo engine: chunks of replicates, one seed stream per chunk, jobs across chunks.

Replicates are split into chunks of ``chunk_size``; chunk ``c`` draws from
``SeedSequence(seed, spawn_key=(c, ...))`` (see :mod:`cbcp_sim.models.streams`), so a result depends on
the seed, the number of replicates and the chunk size, never on the number of jobs or the backend.
Chunks run in order, or in parallel (joblib's loky processes or a Dask cluster) and are put back in chunk
order before they are summarised.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import logging
import os
import signal
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from cbcp_sim.analysis import (
    CROSSOVER,
    ESTIMAND,
    Estimates,
    analyse,
    analyse_arms,
    dose_response,
    dose_slope,
    infer,
    tipping_point,
)
from cbcp_sim.analysis.ancova import ancova_differences
from cbcp_sim.analysis.arm_means import ArmMeans, arm_means
from cbcp_sim.analysis.dose_models import parse_candidates
from cbcp_sim.analysis.metrics import familywise, operating_characteristics, rate
from cbcp_sim.analysis.mmrm import mmrm_differences
from cbcp_sim.analysis.moments import ArmMoments
from cbcp_sim.analysis.multiplicity import dunnett, hochberg, holm
from cbcp_sim.analysis.ttests import pooled, unpooled
from cbcp_sim.errors import SettingsError
from cbcp_sim.models import operations, summaries, treatment, trial
from cbcp_sim.models.streams import Streams
from cbcp_sim.run import budget
from cbcp_sim.run import monitoring as sequential
from cbcp_sim.run.comparisons import Comparison, comparisons
from cbcp_sim.run.monitoring import Monitoring
from cbcp_sim.run.progress import Progress
from cbcp_sim.run.result import SimulationResult
from cbcp_sim.run.settings import RunSettings
from cbcp_sim.run.store import MemoryStore, Store, chunk_key
from cbcp_sim.scenario import Scenario, load_scenario, spec

#: Step-down and step-up adjustments of p-values ``(R, m)`` over the arm comparisons.
ADJUSTMENTS = {"holm": holm, "hochberg": hochberg}
#: Dunnett's single-step test: of one model of every arm (classical), or of each comparison's own fit.
DUNNETT = ("dunnett", "dunnett_separate")
#: The analyses of a summarised run (:mod:`cbcp_sim.models.summaries`), from the two arms' moments.
FROM_MOMENTS = {"ttest": pooled, "welch": unpooled}


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
    arms: dict[str, ArmMeans] | None = None  #: with a control-arm prior: the first comparison's arms, per pass
    #: with analysis.tipping_deltas: the delta adjustment of the primary analysis of the first comparison
    tipping: tipping_point.DeltaAdjustment | None = None
    #: with analysis.dose_slope: the slopes of change on dose among the treated children, and the true slope
    dose_slope: dose_slope.DoseSlopes | None = None
    #: with analysis.dose_response_models: MCP-Mod of every trial, with and without the cell effect
    dose_response: dose_response.DoseResponses | None = None
    #: with analysis.dose_slope_strata: the same slopes on each treated child's dose stratum
    dose_strata: dose_slope.DoseSlopes | None = None


def run_chunk(scenario: Scenario, seed: int, chunk: int, n_reps: int) -> ChunkResult:
    """Simulate and analyse chunk ``chunk`` (``n_reps`` trials) of a run seeded with ``seed``."""
    _keep_freed_memory()
    if summaries.summarised(scenario):
        return _summarised_chunk(scenario, summaries.draw(scenario, n_reps, Streams(seed, chunk)))
    data = trial.generate(scenario, n_reps, Streams(seed, chunk))
    a, d = scenario.analysis, scenario.design
    covariates = (np.stack([data.covariates[c] for c in a.covariates], axis=-1) if a.covariates else None)
    context = {"endpoint": a.endpoint, "covariates": covariates, "switch": data.switch, "expected": data.expected,
               "mcid": a.mcid, "mmrm_df": a.mmrm_df, "mmrm_baseline": a.mmrm_baseline}
    dose = data.covariates.get("dose", np.zeros(data.arm.shape))
    arm = data.arm[0] if data.arm.strides[0] == 0 else data.arm  # children stored by arm: one row for all
    passes = {"alt": (data.values, data.observed), "null": (data.null_values, data.null_observed)}
    results: dict[str, dict[tuple[str, str], Estimates]] = {p: {} for p in passes}
    counts: dict[str, dict[str, np.ndarray]] = {p: {} for p in passes}
    truth, first = {}, None
    arms: dict[str, ArmMeans] | None = {} if scenario.bayes is not None and scenario.bayes.borrows else None
    comps = comparisons(scenario)
    one_model = a.multiplicity == "dunnett" and sum(c.multiplicity for c in comps) > 1
    tipping = None
    for c in comps:
        active, members = c.groups(arm, dose, d.dose_threshold)
        first = active if first is None else first
        for p, (values, observed) in passes.items():
            seen = observed if members.all() else observed & members[..., None]
            if arms is not None and c == comps[0]:
                arms[p] = arm_means(values, seen, active, data.primary,
                                    expected=data.expected if scenario.bayes.endpoint == "vs_expected" else None)
            for name in scenario.analyses:
                if a.tipping_deltas and p == "alt" and c == comps[0] and name == a.primary:  # one fit for both
                    results[p][name, c.label], tipping = tipping_point.delta_adjusted(
                        name, values, seen, active, data.primary, **context)
                elif not (one_model and c.multiplicity):
                    results[p][name, c.label] = _analyse(name, data, values, seen, active, context)
            if a.multiplicity in DUNNETT:
                at_visit = seen[..., 0] & seen[..., data.primary]
                counts[p][c.label] = np.stack([(at_visit & ~active).sum(axis=1), (at_visit & active).sum(axis=1)])
        truth[c.label] = _truth(data, c, None if c.dose is None else c.stratum(dose, d.dose_threshold), a.mcid)
    for p, (values, observed) in passes.items():
        for name in scenario.analyses:
            if one_model:  # each arm comparison a contrast of one model of every arm
                labels = [c.label for c in comps if c.multiplicity]
                ests = analyse_arms(name, values, observed, arm, len(d.arms), data.primary, **context)
                results[p].update({(name, label): e for label, e in zip(labels, ests, strict=True)})
            _adjust(results[p], name, scenario, comps, counts[p])
    milestones = monitoring = None
    if data.calendar is not None:
        milestones = operations.summary_arrays(data.calendar, scenario)
    if scenario.sequential.interims:
        monitoring = _monitor(scenario, comps[0], data, passes, results, first, context)
    slopes = _dose_slopes(scenario, data) if a.dose_slope else None
    mcp = _dose_responses(scenario, data, passes, arm, covariates) if a.dose_response_models else None
    strata = _dose_slopes(scenario, data, a.dose_slope_strata) if a.dose_slope_strata else None
    return ChunkResult(alt=results["alt"], null=results["null"], truth=truth, screened=data.screened,
                       milestones=milestones, monitoring=monitoring, arms=arms, tipping=tipping, dose_slope=slopes,
                       dose_response=mcp, dose_strata=strata)


def _summarised_chunk(scenario: Scenario, arms: summaries.ArmSummaries) -> ChunkResult:
    """A chunk drawn as each arm's count seen, mean and sum of squares: the t-tests of each active arm against
    control with and without cells, from the moments of those two arms (Dunnett's one model: of every arm), with
    the p-values adjusted for multiplicity as :func:`run_chunk` adjusts them."""
    comps = comparisons(scenario)
    one_model = scenario.analysis.multiplicity == "dunnett" and len(comps) > 1
    counts = {c.label: arms.n[:, [0, c.active]].T for c in comps}
    results: dict[str, dict[tuple[str, str], Estimates]] = {}
    for p, mean in (("alt", arms.mean + arms.gain), ("null", arms.mean)):
        if one_model:
            every = _arm_moments(arms.n, mean, arms.ss)
            results[p] = {(name, c.label): pooled(every, c.active) for name in scenario.analyses for c in comps}
        else:
            pairs = {c.label: _arm_moments(*(a[:, [0, c.active]] for a in (arms.n, mean, arms.ss))) for c in comps}
            results[p] = {(name, c.label): FROM_MOMENTS[name](pairs[c.label])
                          for name in scenario.analyses for c in comps}
        for name in scenario.analyses:
            _adjust(results[p], name, scenario, comps, counts)
    truth = summaries.truth(scenario, arms)
    return ChunkResult(alt=results["alt"], null=results["null"], truth={c.label: truth for c in comps},
                       screened=np.full(arms.mean.shape[0], sum(arms.sizes)))


def _arm_moments(seen: np.ndarray, mean: np.ndarray, ss: np.ndarray) -> ArmMoments:
    """The moments of arms with ``seen`` children, means ``mean`` and sums of squares ``ss`` (each ``(R, k)``),
    centred on each trial's mean of every child seen (as :func:`cbcp_sim.analysis.moments.group_moments` centres
    them); an arm with none seen has sums NaN."""
    n = seen.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        centred = mean - ((np.where(n > 0, mean, 0.0) * n).sum(axis=1) / n.sum(axis=1))[:, None]
    sums = centred * n
    products = ss + sums * centred
    return ArmMoments(n=tuple(n.T), sums={"y": tuple(sums.T)}, products={"yy": tuple(products.T)})


def _dose_responses(scenario: Scenario, data: trial.TrialData, passes: dict[str, tuple[np.ndarray, np.ndarray]],
                    arm: np.ndarray, covariates: np.ndarray | None) -> dose_response.DoseResponses:
    """MCP-Mod (:func:`cbcp_sim.analysis.dose_response.analyse`) on the MMRM (``analysis.primary = "mmrm"``) or
    else the ANCOVA of every arm at the primary visit (baseline and the analysis covariates), in the trials with and
    without the cell effect."""
    a, d = scenario.analysis, scenario.design
    doses = np.asarray(spec.dose_design(scenario))
    cands = parse_candidates(a.dose_response_models, "analysis.dose_response_models")
    out = {}
    for p, (values, observed) in passes.items():
        diff = (mmrm_differences(values, observed, arm, data.primary, arms=len(d.arms), endpoint=a.endpoint,
                                 covariates=covariates, mmrm_df=a.mmrm_df, mmrm_baseline=a.mmrm_baseline)
                if a.primary == "mmrm" else
                ancova_differences(values, observed, arm, data.primary, arms=len(d.arms), covariates=covariates))
        out[p] = dose_response.analyse(diff, doses, cands, d.alpha / d.sides, a.dose_response_delta or 1.5,
                                       selection=a.dose_response_selection or "aic")
    alt, null = out["alt"], out["null"]
    return dose_response.DoseResponses(reject=alt["reject"], selected=alt["selected"], td=alt["td"],
                                       null_reject=null["reject"], null_selected=null["selected"],
                                       failed=alt["failed"] | null["failed"], td_se=alt["td_se"], ed=alt["ed"],
                                       ed_se=alt["ed_se"])


#: What the adjusted dose slope adjusts for beside baseline: numeric covariates of TrialData, then GMFCS levels.
DOSE_CONFOUNDERS = ("age", "weight")


def _dose_slopes(scenario: Scenario, data: trial.TrialData,
                 cuts: tuple[float, ...] | None = None) -> dose_slope.DoseSlopes:
    """The unadjusted and adjusted slopes of change on dose among the treated children
    (:func:`cbcp_sim.scenario.spec.treated_arms`; :func:`cbcp_sim.analysis.dose_slope.dose_slopes`), in the trials
    with and without the cell effect, and each trial's true slope (:func:`cbcp_sim.analysis.dose_slope.true_slopes`);
    with ``cuts`` (10^7 TNC/kg) the same on each child's dose stratum
    (:func:`cbcp_sim.analysis.dose_slope.dose_stratum`) in place of its dose."""
    log = cuts is None and scenario.analysis.dose_slope_scale == "log"

    def exposure(dose: np.ndarray) -> np.ndarray:
        return dose if cuts is None else dose_slope.dose_stratum(dose, cuts)

    treated = np.isin(data.arm, spec.treated_arms(scenario))
    cov = data.covariates
    numeric = np.stack([cov[c] for c in DOSE_CONFOUNDERS], axis=-1)
    levels = cov["gmfcs"].astype(int)
    fits = {p: dose_slope.dose_slopes(values, observed, treated, data.primary, exposure(cov["dose"]),
                                      covariates=numeric, levels=levels, log=log)
            for p, (values, observed) in {"alt": (data.values, data.observed),
                                          "null": (data.null_values, data.null_observed)}.items()}
    truth, received = dose_slope.true_slopes(exposure(data.dose_grid), data.dose_effects, log=log)

    def stack(p: str, field: str) -> np.ndarray:
        return np.stack([getattr(e, field) for e in fits[p]], axis=-1)

    return dose_slope.DoseSlopes(estimate=stack("alt", "estimate"), se=stack("alt", "se"), df=stack("alt", "df"),
                                 null_estimate=stack("null", "estimate"), null_se=stack("null", "se"),
                                 null_df=stack("null", "df"), truth=truth, received=received)


def _monitor(scenario: Scenario, c: Comparison, data: trial.TrialData, passes: dict[str, tuple[np.ndarray, np.ndarray]],
             results: dict[str, dict[tuple[str, str], Estimates]], active: np.ndarray,
             context: dict) -> dict[str, Monitoring]:
    """Interim looks at the primary analysis of the first comparison (its ``active`` children), in each pass."""
    name = scenario.analyses[0]
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


def _adjust(out: dict[tuple[str, str], Estimates], name: str, scenario: Scenario, comps: tuple[Comparison, ...],
            counts: dict[str, np.ndarray]) -> None:
    """Replace the p-values of analysis ``name``'s arm comparisons by multiplicity-adjusted ones (Dunnett's
    correlation from ``counts``, each comparison's control and active children seen at the primary visit).

    Only the p-values of the scenario's ``design.sides`` are adjusted. Dunnett's correlation is that of a
    one-way analysis with one pooled variance: exact for ``"dunnett"`` (one model of every arm, one df) with
    the t-test, and for ANCOVA up to the covariates' imbalance between arms; with ``"dunnett_separate"``
    (per-comparison fits; the smallest df is used) it is an approximation.
    """
    method = scenario.analysis.multiplicity
    labels = [c.label for c in comps if c.multiplicity]
    if method == "none" or len(labels) < 2:
        return
    ests = [out[name, label] for label in labels]
    sides = scenario.design.sides
    if method in DUNNETT:
        t = np.stack([e.estimate / e.se for e in ests], axis=-1)
        df = np.min(np.stack([e.df for e in ests], axis=-1), axis=-1)
        n = np.stack([counts[label] for label in labels], axis=-1)
        adjusted = dunnett(t, df, n[0, :, 0], n[1], sides=sides)
    else:
        adjusted = ADJUSTMENTS[method](np.stack([infer(e, alpha=0.5, sides=sides).p for e in ests], axis=-1))
    field = "p_two" if sides == 2 else "p_upper"
    for i, (label, e) in enumerate(zip(labels, ests, strict=True)):
        out[name, label] = dataclasses.replace(e, **{field: adjusted[:, i]})


def simulate(scenario: Scenario | str | Path, reps: int | None = None, seed: int | None = None,
             jobs: int | None = None, *, settings: RunSettings | None = None, target_mcse: float | None = None,
             out: str | Path | None = None, chunk_size: int | None = None, backend: str | None = None,
             address: str | None = None, progress: bool | None = None) -> SimulationResult:
    """Simulate trials of ``scenario`` and summarise power, type I error, bias and coverage.

    Parameters
    ----------
    scenario : Scenario or path to a TOML scenario file
    reps, seed, jobs, chunk_size, backend, address, progress : the run settings (:class:`RunSettings`), given one
        by one, or as ``settings`` (a value given here replaces the one in ``settings``); validated once
    target_mcse : stop after the first chunk at which the Monte Carlo SE of the primary power is at or below
        this bound (chunks are checked in order, so the stop does not depend on ``jobs``); ``reps`` is then the
        maximum. Not with ``out``.
    out : a directory: each finished chunk is saved there as it finishes, then ``result.json`` and
        ``summary.csv``; called again with the same scenario and settings, the run resumes, reading the chunks
        saved and running only the rest (a directory holding another run is refused)
    """
    start = time.perf_counter()
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    settings = (settings or RunSettings()).replace(reps=reps, seed=seed, jobs=jobs, chunk_size=chunk_size,
                                                   backend=backend, address=address, progress=progress)
    if target_mcse is not None and not (isinstance(target_mcse, int | float) and 0.0 < target_mcse < 0.5):
        raise SettingsError("target_mcse", f"must be in (0, 0.5), got {target_mcse!r}")
    if out is not None:
        if target_mcse is not None:
            raise SettingsError("target_mcse", "stops at a precision, out saves a fixed number of trials: give one "
                                               "of them")
        return saved_run(scenario, settings, out)
    tasks = point_tasks(scenario, settings)
    chunks: list[ChunkResult] = []
    bar = Progress(len(tasks), "run") if settings.progress else None
    results = execute(tasks, settings)
    try:
        for result in _in_order(results):
            chunks.append(result)
            if bar is not None:
                bar.advance()
            if _precise_enough(scenario, chunks, target_mcse):
                break
    finally:
        with warnings.catch_warnings():  # joblib warns of the chunks an early stop leaves unused
            warnings.filterwarnings("ignore", message=r".*(not used|have been cancelled)", category=UserWarning)
            results.close()
        if bar is not None:
            bar.close()
    return collect(scenario, chunks, settings, time.perf_counter() - start)


def saved_run(scenario: Scenario, settings: RunSettings, out: str | Path) -> SimulationResult:
    """A run whose chunks are saved in directory ``out`` as they finish (resumable), then ``result.json`` (the
    result's JSON with ``kind`` "run") and ``summary.csv`` (its table)."""
    store = Store(out, "run", {"scenario": scenario.to_dict(), "reps": settings.reps, "seed": settings.seed,
                               "chunk_size": settings.chunk_size})
    result = run_points([point_tasks(scenario, settings)], settings, store=store, label="run",
                        keep_replicates=True)[0]
    store.write_result({"kind": "run", **result.to_json()}, {"summary.csv": result.table}, scenario.to_toml())
    return result


@dataclass(frozen=True)
class Task:
    """Chunk ``chunk`` (``n_reps`` trials) of ``scenario`` seeded with ``seed``: the unit of work sent to a worker.

    ``work(scenario, seed, chunk, n_reps)`` does it: a module-level function (the timeline's calendars), or by
    default :func:`run_chunk` (simulate and analyse trials)."""

    scenario: Scenario
    seed: int
    chunk: int
    n_reps: int
    work: Callable[[Scenario, int, int, int], Any] | None = None

    def key(self, digest: str | None = None) -> str:
        """A name for the task's result that changes with any of its inputs (``digest``: the scenario's, if known)."""
        return chunk_key(digest or self.scenario.digest(), self.seed, self.chunk, self.n_reps)


class Done(NamedTuple):
    """A finished task: its index among the tasks run, its result, and where and how long it ran."""

    index: int
    result: Any
    seconds: float
    host: str


def _run_task(index: int, task: Task) -> Done:
    start = time.perf_counter()
    result = (task.work or run_chunk)(task.scenario, task.seed, task.chunk, task.n_reps)
    return Done(index, result, time.perf_counter() - start, socket.gethostname())


#: glibc's ``mallopt`` options set by :func:`_keep_freed_memory`: M_MMAP_THRESHOLD (-3) and M_TRIM_THRESHOLD (-1).
MALLOC_OPTIONS = ((-3, 32 * 2**20), (-1, 128 * 2**20))


@functools.cache
def _keep_freed_memory() -> None:
    """Once in each process that runs chunks: glibc's malloc serves arrays under 32 MiB from its heap and keeps up to
    128 MiB of it free before giving any back to the system, so that each chunk reuses the memory the previous one
    freed instead of faulting its pages in again (by default the heap is trimmed after every chunk: that took about a
    fifth of a default scenario's chunk and half of a plain-model one). No results change; without glibc nothing is
    done."""
    if sys.platform.startswith("linux"):
        with suppress(OSError, AttributeError):  # another C library: its own allocator, left alone
            libc = ctypes.CDLL(None)
            for option, value in MALLOC_OPTIONS:
                libc.mallopt(option, value)


def _die_with_parent(parent: int) -> None:
    """Run first in each loky worker: the worker is killed (SIGKILL) as soon as ``parent``, the process that
    started it, dies, even by SIGKILL (Linux's ``PR_SET_PDEATHSIG``; elsewhere nothing is asked), and exits at once
    if ``parent`` is already gone, so that no worker outlives its run."""
    if sys.platform.startswith("linux"):
        with suppress(OSError, AttributeError):  # no prctl in this libc: the check below still helps
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request was in place
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the parent's to handle: it stops the workers


def point_tasks(scenario: Scenario, settings: RunSettings,
                work: Callable[[Scenario, int, int, int], Any] | None = None) -> list[Task]:
    """The chunks of a run of ``settings.reps`` trials of ``scenario``: the tasks of one point of a sweep. Chunks
    hold ``settings.chunk_size`` trials, or fewer when that many would not fit :data:`budget.CHUNK_BUDGET`."""
    if scenario.analysis.dose_response_models:  # a one-line error naming the key before any chunk runs
        parse_candidates(scenario.analysis.dose_response_models, "analysis.dose_response_models")
    size = budget.fitted_chunk_size(scenario, settings.chunk_size)
    return [Task(scenario, settings.seed, c, n, work) for c, n in enumerate(settings.chunks(size))]


def run_points(points: Sequence[Sequence[Task]], settings: RunSettings, *, store: Store | MemoryStore | None = None,
               label: str = "run", keep_replicates: bool = False) -> list[SimulationResult]:
    """The summaries of many runs (``points``, each a list of tasks of one scenario), run together.

    Every task of every point is one unit of work for :func:`execute`, so a sweep of few replicates per point
    still uses every job. With a ``store`` each chunk found there is read instead of run, and each chunk run is
    saved (atomically) as soon as it finishes, with its time and host in the store's log. A point is
    summarised as soon as its last chunk is in and its chunks are then freed, so memory stays bounded by
    the points under way; per-replicate arrays are dropped unless ``keep_replicates``. With
    ``settings.progress`` a progress bar named ``label`` is drawn on the terminal.
    """
    keys = []
    for tasks in points:
        digest = tasks[0].scenario.digest()  # a point's tasks share its scenario
        keys.append([t.key(digest) for t in tasks])
    found: list[dict[int, ChunkResult]] = [{} for _ in points]
    out: list[SimulationResult | None] = [None] * len(points)
    seconds = [0.0] * len(points)
    bar = Progress(sum(map(len, points)), label) if settings.progress else None

    def add(p: int, c: int, result: ChunkResult) -> None:
        found[p][c] = result
        if len(found[p]) == len(points[p]):
            first = points[p][0]
            chunks = [found[p][i] for i in range(len(points[p]))]
            res = collect(first.scenario, chunks, settings.replace(seed=first.seed), seconds[p])
            out[p] = res if keep_replicates else dataclasses.replace(res, replicates={}, bayes_data={})
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
        with closing(execute([points[p][c] for p, c in todo], settings)) as finished:
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


def run_tasks(tasks: Sequence[Task], settings: RunSettings, label: str = "run") -> list[Any]:
    """The results of ``tasks`` (any work), in task order, run as ``settings`` say (with ``settings.progress``
    a progress bar named ``label``)."""
    bar = Progress(len(tasks), label) if settings.progress else None
    out = []
    try:
        with closing(execute(tasks, settings)) as finished:
            for result in _in_order(finished):
                out.append(result)
                if bar is not None:
                    bar.advance()
    finally:
        if bar is not None:
            bar.close()
    return out


def execute(tasks: Sequence[Task], settings: RunSettings) -> Iterator[Done]:
    """Run ``tasks`` and yield each as it finishes (in order when run in this process).

    ``settings.backend`` is ``"loky"`` (joblib's local processes, ``settings.jobs`` of them; one job runs here)
    or ``"dask"`` (joblib's Dask backend on the scheduler at ``settings.address``, e.g. ``tcp://10.0.0.5:8786``,
    using all its workers whatever ``jobs``; with no address a ``distributed.LocalCluster`` of ``jobs``
    single-threaded worker processes is started and closed). A task's result depends only on the task, so the
    backend and the number of jobs never change it. Closing the generator early cancels the tasks not yet
    started.
    """
    if not tasks:
        return
    _check_memory(tasks, settings)
    if settings.backend == "loky" and settings.jobs == 1:
        for i, task in enumerate(tasks):
            yield _run_task(i, task)
        return
    from joblib import Parallel, delayed

    with warnings.catch_warnings(), _backend(settings) as n_jobs, \
            Parallel(n_jobs=n_jobs, return_as="generator_unordered") as parallel:
        # a stop (closed early, Ctrl-C, SIGTERM) leaves tasks unused or cancelled: joblib's warning says nothing more
        warnings.filterwarnings("ignore", message=r".*(not used|have been cancelled)", category=UserWarning)
        yield from parallel(delayed(_run_task)(i, task) for i, task in enumerate(tasks))


def _check_memory(tasks: Sequence[Task], settings: RunSettings) -> None:
    """Refuse, before any work, tasks whose chunks running at once on this machine would not fit its memory (a
    remote Dask cluster's memory is its own)."""
    if settings.address is not None:
        return
    workers = 1
    if settings.jobs != 1:  # joblib is imported only when jobs run in parallel (it takes a quarter second)
        from joblib import effective_n_jobs

        workers = min(len(tasks), effective_n_jobs(settings.jobs))
    largest: dict[int, Task] = {}  # the largest chunk of each scenario
    for t in tasks:
        key = id(t.scenario)
        if key not in largest or t.n_reps > largest[key].n_reps:
            largest[key] = t
    most = max(largest.values(), key=lambda t: budget.chunk_memory(t.scenario).of(t.n_reps))
    budget.check_fits(most.scenario, most.n_reps, workers)


#: Dask settings of a local cluster's workers (issue 25): no statistical profiler (a stack sample every 10 ms, about
#: a tenth of the workers' CPU time in a sweep).
LOCAL_WORKERS = {"distributed.worker.profile.enabled": False}


@contextmanager
def _backend(settings: RunSettings) -> Iterator[int]:
    """The number of joblib jobs to ask for, inside the backend's context."""
    if settings.backend == "loky":
        from joblib import parallel_config

        with parallel_config(backend="loky", initializer=_die_with_parent, initargs=(os.getpid(),)):
            yield settings.jobs
        return
    try:
        import dask
        from distributed import Client, LocalCluster
        from joblib import effective_n_jobs, parallel_config
    except ImportError:
        raise SettingsError("backend", "dask needs the distributed package: pip install 'cbcp_sim[dask]'") from None
    address, cluster = settings.address, None
    quiet = logging.getLogger("distributed")
    level, hushed = quiet.level, logging.root.manager.disable
    quiet.setLevel(logging.ERROR)  # not the warnings of tasks cancelled and workers closed by a stop
    try:
        warnings.filterwarnings("ignore", category=UserWarning, module=r"distributed\.")  # e.g. a port in use
        with _quiet_workers(address is None) as deferred:
            try:
                if address is None:
                    with dask.config.set(LOCAL_WORKERS):
                        cluster = LocalCluster(n_workers=effective_n_jobs(settings.jobs), threads_per_worker=1,
                                               processes=True, dashboard_address=None,
                                               preload=[__name__])  # see dask_setup
                client = Client(address or cluster, timeout="20s")
            except (OSError, ValueError, TypeError) as exc:
                deferred()
                raise SettingsError("address", f"no Dask scheduler answered at {address or 'the local cluster'}: "
                                               f"{exc}") from None
            except Exception:  # if a worker was stopped by Ctrl-C as it started (the cluster closed itself)
                deferred()
                raise
        deferred()
        with _hushed_on_stop(), client, parallel_config(backend="dask"):
            yield -1
    finally:
        try:
            if cluster is not None:
                cluster.close()
        finally:
            quiet.setLevel(level)
            logging.disable(hushed)


@contextmanager
def _quiet_workers(local: bool = True) -> Iterator[Callable[[], None]]:
    """While a ``local`` cluster and its client start (else nothing is done): its worker processes log errors only
    (``DASK_LOGGING__DISTRIBUTED``, unless set), as this process does while the cluster lives; and SIGINT and
    SIGTERM are held until the cluster and client exist, so that they are closed: the function yielded, called
    then, acts on those that came."""
    if not local:
        yield lambda: None
        return
    variable = "DASK_LOGGING__DISTRIBUTED"
    before = os.environ.get(variable)
    os.environ.setdefault(variable, "error")
    came: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM) if threading.current_thread() is threading.main_thread() else ()
    handlers = {s: signal.signal(s, lambda signum, frame: came.append(signum)) for s in held}

    def restore() -> None:
        for signum, handler in handlers.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    def deferred() -> None:
        restore()
        for signum in dict.fromkeys(came):
            _pass_on(signum, handlers[signum], None)

    try:
        yield deferred
    finally:
        restore()
        if before is None:
            os.environ.pop(variable, None)


@contextmanager
def _hushed_on_stop() -> Iterator[None]:
    """From a SIGINT or SIGTERM on: no logging (the caller restores it once the cluster is closed), since the
    scheduler and client of a stopped run log the keys they could not gather (``distributed.client`` has its own
    level, and does so as a warning). The signal then goes on to the handler it had."""
    held = (signal.SIGINT, signal.SIGTERM) if threading.current_thread() is threading.main_thread() else ()
    handlers = {s: signal.getsignal(s) for s in held}

    def hush(signum: int, frame: Any) -> None:
        logging.disable(logging.CRITICAL)
        signal.signal(signum, handlers[signum] or signal.SIG_DFL)
        _pass_on(signum, handlers[signum], frame)

    for signum in held:
        signal.signal(signum, hush)
    try:
        yield
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def _pass_on(signum: int, handler: Any, frame: Any) -> None:
    """Act on signal ``signum`` as ``handler`` (as :func:`signal.getsignal` gives it) would have, once the handler
    in place is the one it had."""
    if callable(handler):
        handler(signum, frame)
    elif handler != signal.SIG_IGN:
        signal.raise_signal(signum)


def dask_setup(worker: object) -> None:
    """Run by each worker of a local Dask cluster as it starts (this module is its ``preload``): it ignores SIGINT,
    since Ctrl-C reaches every process of the terminal's group and the main process stops the cluster in order,
    with no traceback from each worker."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


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
    ``None``, not computed) from a comparison's summed :func:`_truth`; NaN when it is undefined (no child in
    the comparison, as a dose stratum that no child reaches)."""
    if estimand is None or not truth[2]:
        return float("nan")
    return float(truth[0 if estimand == "points" else 1] / truth[2])


def collect(scenario: Scenario, chunks: list[ChunkResult], settings: RunSettings, seconds: float) -> SimulationResult:
    """The summary of a run from its chunk results, in chunk order."""
    alpha, sides = scenario.design.alpha, scenario.design.sides
    rows, replicates, nulls = [], {}, {}
    comps = comparisons(scenario)
    effects = {}
    for c in comps:
        truth = sum(ch.truth[c.label] for ch in chunks)
        effects[c.label] = true_effect(truth)
        for i, name in enumerate(scenario.analyses):
            alt = _concat([ch.alt[name, c.label] for ch in chunks])
            null = _concat([ch.null[name, c.label] for ch in chunks])
            alt_inf, null_inf = infer(alt, alpha=alpha, sides=sides), infer(null, alpha=alpha, sides=sides)
            nulls[name, c] = null_inf
            role = "primary" if i == 0 and (c.multiplicity or c.control is None) else "secondary"
            rows.append(operating_characteristics(name, role, (alt, alt_inf), (null, null_inf),
                                  true_effect(truth, ESTIMAND.get(name, "points")), comparison=c.label))
            replicates[replicate_key(name, c, comps)] = {
                "estimate": alt.estimate, "se": alt.se, "df": alt.df, "p": alt_inf.p, "reject": alt_inf.reject,
                "null_estimate": null.estimate, "null_p": null_inf.p, "null_reject": null_inf.reject}
    family = [c for c in comps if c.multiplicity]
    errors = ({name: familywise([nulls[name, c] for c in family]) for name in scenario.analyses}
              if len(family) > 1 else None)
    screened = np.concatenate([c.screened for c in chunks])
    enrolled = sum(scenario.design.n_per_arm) * screened.size
    calendar = monitored = None
    if chunks[0].milestones is not None:
        calendar = operations.milestone_summary({k: np.concatenate([c.milestones[k] for c in chunks])
                                                 for k in chunks[0].milestones})
    if chunks[0].monitoring is not None:
        monitored = sequential.sequential_summary(scenario, *(_concat([c.monitoring[p] for c in chunks])
                                                              for p in ("alt", "null")))
    decided, data = None, {}
    if scenario.bayes is not None:
        first = (scenario.analyses[0], comps[0].label)
        data = ({p: _concat([ch.arms[p] for ch in chunks]) for p in ("alt", "null")} if scenario.bayes.borrows
                else {p: _concat([getattr(ch, p)[first] for ch in chunks]) for p in ("alt", "null")})
        looks = ({p: _concat([ch.monitoring[p] for ch in chunks]) for p in ("alt", "null")}
                 if scenario.bayes.futility_predictive else None)
        from cbcp_sim.run import bayes  # scipy.stats and the posterior code: only for runs that decide by them

        decided, replicates["bayes"] = bayes.summary(scenario, data, effects[comps[0].label], looks)
    tipped = None
    if chunks[0].tipping is not None:
        tipped = _tipping_summary(scenario, chunks, replicates[scenario.analyses[0]], comps[0].label)
    return SimulationResult(scenario=scenario, rows=tuple(rows), n_reps=int(screened.size), seed=settings.seed,
                            jobs=settings.jobs, chunk_size=settings.chunk_size,
                            seconds=seconds, true_effect=effects[comps[0].label], true_effects=effects,
                            screen_failure=1.0 - enrolled / float(screened.sum()), replicates=replicates,
                            operations=calendar, sequential=monitored, familywise=errors, bayes=decided,
                            bayes_data=data, tipping_point=tipped,
                            dose_slope=_dose_summary(scenario, chunks, replicates, comps[0]),
                            dose_response=_dose_response_summary(scenario, chunks, replicates, effects))


def _dose_response_summary(scenario: Scenario, chunks: list[ChunkResult], replicates: dict[str, Any],
                           effects: dict[str, float]) -> dict[str, Any] | None:
    """The run's ``dose_response`` block (:func:`cbcp_sim.analysis.dose_response.summary`) with the doses, the
    candidates, each dose arm's true effect and the true TD and ED50
    (:func:`~cbcp_sim.analysis.dose_response.true_doses` from those effects and the arms' dose-response function);
    per-trial results join ``replicates``."""
    if chunks[0].dose_response is None:
        return None
    a, d = scenario.analysis, scenario.design
    doses = np.asarray(spec.dose_design(scenario))
    cands = parse_candidates(a.dose_response_models, "analysis.dose_response_models")
    classes = tuple(dict.fromkeys(c.model for c in cands))
    comps = comparisons(scenario)[:len(d.arms) - 1]
    true = np.array([effects[c.label] for c in comps])
    course = scenario.regimens[1].doses[0].course
    delta = a.dose_response_delta or 1.5
    td, ed50, scale = dose_response.true_doses(lambda x: treatment.dose_response(course, x), doses[1:], true, delta)
    block, replicates["dose_response"] = dose_response.summary(_concat([ch.dose_response for ch in chunks]),
                                                               classes, td, ed50, d.alpha / d.sides,
                                                               float(doses[-1]))
    curve = [scale * float(treatment.dose_response(course, x)) for x in doses[1:]]
    return {"models": [c.label for c in cands], "doses": [float(x) for x in doses], "delta": delta,
            "alpha": d.alpha / d.sides, "selection_method": a.dose_response_selection or "aic",
            "primary": bool(a.dose_response_primary),
            "true_effects": [float(x) for x in true], "true_curve": curve, **block}


def _dose_summary(scenario: Scenario, chunks: list[ChunkResult], replicates: dict[str, Any],
                  c: Comparison) -> dict[str, Any] | None:
    """The run's ``dose_slope`` block (:func:`cbcp_sim.analysis.dose_slope.summary`) with the treated arms, the dose
    scale and what the adjusted slope adjusts for; the per-trial slopes join ``replicates`` (``dose_slope``)."""
    if chunks[0].dose_slope is None:
        return None
    d = scenario.design
    block, replicates["dose_slope"] = dose_slope.summary(_concat([ch.dose_slope for ch in chunks]), alpha=d.alpha,
                                                         sides=d.sides)
    out = {"treated": ", ".join(d.arms[j] for j in spec.treated_arms(scenario)),
           "scale": scenario.analysis.dose_slope_scale or "linear",
           "adjusted_for": ["baseline", *DOSE_CONFOUNDERS, "gmfcs levels"], **block}
    if chunks[0].dose_strata is not None:
        strata, arrays = dose_slope.summary(_concat([ch.dose_strata for ch in chunks]), alpha=d.alpha, sides=d.sides)
        out["strata"] = {"cuts": list(scenario.analysis.dose_slope_strata), **strata}
        replicates["dose_slope"].update({f"strata_{k}": v for k, v in arrays.items()})
    return out


def _tipping_summary(scenario: Scenario, chunks: list[ChunkResult], arrays: dict[str, np.ndarray],
                     label: str) -> dict[str, Any]:
    """The run's ``tipping_point`` block (:func:`cbcp_sim.analysis.tipping_point.summary`) for the primary analysis
    of the first comparison; each trial's tipping point joins its per-replicate ``arrays``."""
    name = scenario.analyses[0]
    est = _concat([ch.alt[name, label] for ch in chunks])
    block, arrays["tipping_point"] = tipping_point.summary(
        est, _concat([ch.tipping for ch in chunks]), scenario.analysis.tipping_deltas, alpha=scenario.design.alpha,
        sides=scenario.design.sides)
    return {"analysis": name, "comparison": label, **block}


def replicate_key(name: str, c: Comparison, comps: tuple[Comparison, ...]) -> str:
    """Key of :attr:`SimulationResult.replicates`: the analysis name for the first comparison, else
    ``"<analysis>: <comparison>"``."""
    return name if c == comps[0] else f"{name}: {c.label}"
