"""Benchmark the engine against a one-trial-at-a-time statsmodels loop, and time the whole CLI process.

Two analyses: ANCOVA (against formula OLS) and MMRM with 20% MAR dropout (against MixedLM with a random
intercept per child), the latter also for peak memory in fresh processes of up to 100,000 replicates; and the
cost of the trial calendar (SimPy) and of an interim look when they are on.

Run from the repository root: ``python -m benchmarks`` prints the machine and the figures as Markdown;
``--write`` also replaces the figures section of ``benchmarks/README.md`` with them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy
import statsmodels
import statsmodels.formula.api as smf

import cbcp_sim
from cbcp_sim import engine, operations, outcomes
from cbcp_sim.boundaries import boundaries
from cbcp_sim.designs import parallel
from cbcp_sim.streams import Streams

ROOT = Path(__file__).resolve().parents[1]
README = Path(__file__).with_name("README.md")
START, END = "<!-- figures:start -->", "<!-- figures:end -->"
SCENARIO = ROOT / "scenarios" / "default.toml"
SEED = 1
REPS = 10_000          #: replicates of the timed runs (the issue's figure)
RUNS = 5               #: timed runs after one warm-up
LOOP_REPS = 300        #: replicates of the baseline loop
SCALING_REPS = 50_000  #: replicates of the jobs=1 vs jobs=2 comparison
SCALING_RUNS = 3
TARGET_SECONDS, TARGET_PROCESS_SECONDS, TARGET_SPEEDUP = 0.5, 1.5, 50.0
#: The MMRM case: the default scenario (72 children, 5 visits) analysed by MMRM alone, 20% MAR dropout by month 12.
MMRM = {"analysis.primary": "mmrm", "analysis.secondary": [], "dropout.mechanism": "mar", "dropout.fraction": 0.2}
MMRM_RUNS = 3          #: timed MMRM runs of REPS replicates after one warm-up
MMRM_LOOP_REPS = 40    #: replicates fitted one at a time by statsmodels MixedLM
MEMORY_REPS = (engine.CHUNK_SIZE, REPS, 100_000)  #: MMRM runs measured for peak memory, each in a fresh process
MEMORY_FALLBACK_REPS, MEMORY_BUDGET = 30_000, 60.0  #: the largest run falls back to this if projected > budget (s)
TARGET_MMRM_SECONDS, TARGET_MMRM_MIB = 5.0, 2048.0
#: The trial calendar on (default operations values), and with one interim look at half the information.
CALENDAR = {"analysis.secondary": [], "operations.enabled": True}
SEQUENTIAL = {**CALENDAR, "sequential.interims": [0.5]}
CALENDAR_RUNS = 3      #: timed runs of REPS replicates with the calendar, after one warm-up
#: The issue's sweep: 40 points of the default scenario (10 sizes x 4 maximum effects), 5,000 trials each.
SWEEP_GRID = ("design.n_per_arm=20:110:10", "treatment.dose_response.emax=2,4,6,8")
SWEEP_REPS = 5000
TARGET_SWEEP_SECONDS, TARGET_SWEEP_MIB = 60.0, 2048.0
#: Run in a fresh interpreter: the command argv[1:]; prints its ru_maxrss (KiB).
PEAK_OF = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""
#: Run in a fresh interpreter: argv[1] replicates of scenario argv[2] with settings argv[3], seed argv[4]; prints
#: the run's seconds and the peak RSS (MiB; VmHWM, this process's own, where ru_maxrss would start from the
#: parent's resident size) before and after it.
MEMORY_RUN = """
import json, sys, time
from pathlib import Path
import cbcp_sim
import cbcp_sim.engine  # the package imports it lazily: count its imports (numpy, scipy) before the run
def peak():
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
scenario = cbcp_sim.load_scenario(sys.argv[2], json.loads(sys.argv[3]))
before = peak()
start = time.perf_counter()
cbcp_sim.simulate(scenario, reps=int(sys.argv[1]), seed=int(sys.argv[4]), jobs=1)
seconds = time.perf_counter() - start
print(json.dumps([seconds, before, peak()]))
"""


def repeat(fn, runs):
    """Wall times in seconds of ``runs`` calls of ``fn``, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def in_process(scenario, reps, jobs, runs):
    """Wall times of ``cbcp_sim.simulate`` (simulation, analysis with and without effect, summary)."""
    return repeat(lambda: cbcp_sim.simulate(scenario, reps=reps, seed=SEED, jobs=jobs), runs)


def with_cpu(scenario, reps, runs):
    """Wall times of ``simulate`` with jobs=1 as :func:`in_process`, and the CPU times of this process (all its
    threads) in the same runs: on a shared machine the CPU time is less slowed down by other work."""
    cpu = []

    def run():
        start = time.process_time()
        cbcp_sim.simulate(scenario, reps=reps, seed=SEED, jobs=1)
        cpu.append(time.process_time() - start)

    return repeat(run, runs), cpu[1:]


def run_command(*args):
    """The ``cbcp-sim run`` command of ``REPS`` replicates with further arguments ``args``."""
    script = Path(sys.executable).with_name("cbcp-sim")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "cbcp_sim.cli"]
    return [*command, "run", "--reps", str(REPS), *args]


def whole_process(*args):
    """Wall times of the ``cbcp-sim run`` process (interpreter start, imports, run, printing)."""
    command = run_command(*args)
    return repeat(lambda: subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL), RUNS)


def process_peak_mib(command):
    """Peak resident memory of one run of ``command``, started from a small interpreter: on Linux a child's
    ``ru_maxrss`` starts from its parent's resident size at the fork, which here would be this process's."""
    wrapper = [sys.executable, "-c", PEAK_OF, *command]
    return int(subprocess.run(wrapper, cwd=ROOT, check=True, capture_output=True, text=True).stdout) / 1024


def trial_frames(scenario, i):
    """Replicate ``i`` simulated alone, as a user would: completers' frames with and without the effect."""
    data = outcomes.simulate(scenario, 1, Streams(SEED, i))
    k = data.primary
    done = data.observed[0, :, 0] & data.observed[0, :, k]
    arm = (data.arm[0, done] > 0).astype(int)
    return [pd.DataFrame({"y": v[0, done, k], "baseline": v[0, done, 0], "arm": arm})
            for v in (data.values, data.null_values)]


def fit(frame):
    """statsmodels OLS ``y ~ arm + baseline``: the arm coefficient, its standard error and p-value."""
    result = smf.ols("y ~ arm + baseline", frame).fit()
    return result.params["arm"], result.bse["arm"], result.pvalues["arm"]


def baseline_loop(scenario, reps):
    """The loop users write today, one trial at a time.

    Returns the fits ``(reps, 2, 3)`` (with/without effect; estimate, SE, p), the wall time, and the
    frames, kept for timing the fits alone.
    """
    fit(trial_frames(scenario, 0)[0])  # warm-up: statsmodels and patsy set up on first use
    fits, frames = [], []
    start = time.perf_counter()
    for i in range(reps):
        pair = trial_frames(scenario, i)
        fits.append([fit(frame) for frame in pair])
        frames += pair
    return np.array(fits), time.perf_counter() - start, frames


def max_difference(scenario, fits):
    """Largest difference between the loop's fits and the engine's on the same trials (chunks of one)."""
    ancova = cbcp_sim.simulate(scenario, reps=len(fits), seed=SEED, chunk_size=1).replicates["ancova"]
    alt = np.column_stack([ancova["estimate"], ancova["se"], ancova["p"]])
    null = np.column_stack([ancova["null_estimate"], ancova["null_p"]])  # the engine keeps no null SE
    return float(max(np.abs(fits[:, 0] - alt).max(), np.abs(fits[:, 1, ::2] - null).max()))


def long_frame(values, observed, treated):
    """One trial's children seen at baseline, one row per post-baseline visit seen (``visit`` 1..T)."""
    child, visit = np.nonzero(observed[:, :1] & observed[:, 1:])
    return pd.DataFrame({"y": values[child, visit + 1], "visit": visit + 1, "baseline": values[child, 0],
                         "arm": treated[child].astype(float), "child": child})


def fit_mixed(frame, visit):
    """statsmodels MixedLM, REML, random intercept per child, the MMRM's fixed effects (visit, visit by arm,
    visit by baseline): the arm contrast at post-baseline ``visit``, its SE, and whether it converged."""
    result = smf.mixedlm("y ~ 0 + C(visit) + C(visit):arm + C(visit):baseline", frame, groups=frame["child"]
                         ).fit(reml=True)
    name = f"C(visit)[{visit}]:arm"
    return result.params[name], result.bse[name], bool(result.converged)


def mixed_baseline(scenario, reps):
    """The MMRM loop users write today: the first ``reps`` trials of chunk 0 (simulated together, untimed),
    each fitted alone by MixedLM with and without the effect.

    Returns the seconds building the long frames, the seconds fitting them, the fits ``(reps, 2, 3)``
    (with/without effect; estimate, SE, converged) and the warnings raised.
    """
    data = outcomes.simulate(scenario, engine.CHUNK_SIZE, Streams(SEED, 0))  # what the engine's chunk 0 draws
    treated = data.arm > 0
    pairs = ((data.values, data.observed), (data.null_values, data.null_observed))
    fit_mixed(long_frame(data.values[0], data.observed[0], treated[0]), data.primary)  # warm-up
    start = time.perf_counter()
    frames = [long_frame(v[i], o[i], treated[i]) for i in range(reps) for v, o in pairs]
    built = time.perf_counter() - start
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        fits = [fit_mixed(frame, data.primary) for frame in frames]
        fitted = time.perf_counter() - start
    return built, fitted, np.array(fits).reshape(reps, 2, 3), len(caught)


def against_engine(scenario, fits):
    """MixedLM's estimates and SEs (with the effect) against the engine's MMRM on the same trials:
    median absolute difference of the estimates, their correlation, and the median ratio of the SEs."""
    mmrm = cbcp_sim.simulate(scenario, reps=engine.CHUNK_SIZE, seed=SEED).replicates["mmrm"]
    n = len(fits)
    estimate, se = mmrm["estimate"][:n], mmrm["se"][:n]
    return (float(np.median(np.abs(fits[:, 0, 0] - estimate))), float(np.corrcoef(fits[:, 0, 0], estimate)[0, 1]),
            float(np.median(fits[:, 0, 1] / se)))


def sweep_run(tmp, jobs, backend="loky"):
    """The sweep as a whole ``cbcp-sim sweep`` process into a new directory: wall seconds, the peak of the summed
    resident memory of the process and all its descendants (workers included; sampled every 50 ms), and the
    bytes of ``results.csv``."""
    import psutil

    out = Path(tmp) / f"sweep-{backend}-{jobs}"
    command = [str(Path(sys.executable).with_name("cbcp-sim")), "sweep", str(SCENARIO),
               *(f"--grid={g}" for g in SWEEP_GRID), "--reps", str(SWEEP_REPS), "--seed", str(SEED),
               "--jobs", str(jobs), "--backend", backend, "--out", str(out)]
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    root, peak = psutil.Process(proc.pid), 0.0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree) / 2**20)
        except psutil.Error:
            pass
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{' '.join(command)} exited with {proc.returncode}")
    return seconds, peak, (out / "results.csv").read_bytes()


def memory_run(reps):
    """MMRM run of ``reps`` replicates in a fresh interpreter: seconds, peak RSS (MiB) after imports and at the end."""
    command = [sys.executable, "-c", MEMORY_RUN, str(reps), str(SCENARIO), json.dumps(MMRM), str(SEED)]
    return json.loads(subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout)


def peak_mib(who):
    """Peak resident memory (Linux reports KiB) of this process or of its largest waited-for child."""
    return resource.getrusage(who).ru_maxrss / 1024


def machine():
    """CPU, cores, memory, versions and date, as (name, value) rows."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "?")
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))
    return [("CPU", cpu), ("cores (nproc)", str(len(os.sched_getaffinity(0)))), ("RAM", f"{mem_kib / 2**20:.1f} GiB"),
            ("OS", platform.platform()), ("Python", platform.python_version()), ("numpy", np.__version__),
            ("scipy", scipy.__version__), ("pandas", pd.__version__), ("statsmodels", statsmodels.__version__),
            ("load average before run", " ".join(f"{x:.2f}" for x in os.getloadavg())),
            ("date", datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"))]


def measure():
    """Run every benchmark; returns the timings (seconds) and memory figures (MiB) by name."""
    ancova_only = cbcp_sim.load_scenario(SCENARIO, {"analysis.secondary": []})
    m = {}
    rss_before = peak_mib(resource.RUSAGE_SELF)
    m["engine"] = in_process(ancova_only, REPS, 1, RUNS)
    m["engine_rss"] = peak_mib(resource.RUSAGE_SELF) - rss_before
    m["process"] = whole_process("--set", "analysis.secondary=[]")
    m["process_rss"] = process_peak_mib(run_command("--set", "analysis.secondary=[]"))
    m["process_default"] = whole_process()
    fits, m["loop"], frames = baseline_loop(ancova_only, LOOP_REPS)
    start = time.perf_counter()
    for frame in frames:
        fit(frame)
    m["fits"] = time.perf_counter() - start
    m["mismatch"] = max_difference(ancova_only, fits)
    m["jobs1"] = in_process(ancova_only, SCALING_REPS, 1, SCALING_RUNS)
    m["jobs2"] = in_process(ancova_only, SCALING_REPS, 2, SCALING_RUNS)
    mmrm = cbcp_sim.load_scenario(SCENARIO, MMRM)
    m["mmrm"], m["mmrm_cpu"] = with_cpu(mmrm, REPS, MMRM_RUNS)
    m["mixed_frames"], m["mixed_fits"], fits, m["mixed_warnings"] = mixed_baseline(mmrm, MMRM_LOOP_REPS)
    m["mixed_failed"] = int((fits[..., 2] == 0).sum())
    m["mixed_vs_mmrm"] = against_engine(mmrm, fits)
    largest = MEMORY_REPS[-1]
    if statistics.median(m["mmrm"]) * largest / REPS > MEMORY_BUDGET:
        largest = MEMORY_FALLBACK_REPS
    m["memory"] = {reps: memory_run(reps) for reps in (*MEMORY_REPS[:-1], largest)}
    calendar = cbcp_sim.load_scenario(SCENARIO, CALENDAR)
    sizes = parallel.arm_sizes(calendar.design)
    m["calendar_alone"] = repeat(lambda: [operations.simulate(calendar, sizes, True, n, Streams(SEED, c))
                                          for c, n in enumerate(engine.chunk_plan(REPS))], CALENDAR_RUNS)
    m["calendar"] = in_process(calendar, REPS, 1, CALENDAR_RUNS)
    m["sequential"] = in_process(cbcp_sim.load_scenario(SCENARIO, SEQUENTIAL), REPS, 1, CALENDAR_RUNS)
    m["boundaries"] = {k: statistics.median(repeat(lambda k=k: boundaries(np.arange(1, k + 1) / k), 20))
                       for k in (2, 3, 5)}
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        runs = {key: sweep_run(tmp, *key) for key in ((1, "loky"), (2, "loky"), (2, "dask"))}
    m["sweep"] = {key: run[:2] for key, run in runs.items()}
    m["sweep_identical"] = len({run[2] for run in runs.values()}) == 1
    m["load_after"] = os.getloadavg()
    return m


def report(host, m):
    """The machine, the figures and the targets as Markdown."""
    median = {k: statistics.median(v) for k, v in m.items() if isinstance(v, list)}
    engine_ms = median["engine"] / REPS * 1e3
    loop_ms = m["loop"] / LOOP_REPS * 1e3
    speedup = loop_ms / engine_ms

    def timed(label, key, note=""):
        return f"| {label} | {min(m[key]):.3f} s | {median[key]:.3f} s | {note} |"

    def target(label, measured, met):
        return f"| {label} | {measured} | {'yes' if met else 'NO'} |"

    mmrm_ms = median["mmrm"] / REPS * 1e3
    mixed_ms = (m["mixed_frames"] + m["mixed_fits"]) / MMRM_LOOP_REPS * 1e3
    mixed_ratio = mixed_ms / mmrm_ms
    difference, correlation, se_ratio = m["mixed_vs_mmrm"]
    peak = max(after for _, _, after in m["memory"].values())

    return "\n".join([
        "### Machine", "", "| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in host),
        f"| load average after run | {' '.join(f'{x:.2f}' for x in m['load_after'])} |", "",
        "### Figures", "",
        f"Best and median of {RUNS} runs after one warm-up ({SCALING_RUNS} runs for {SCALING_REPS:,} replicates).", "",
        "| measurement | best | median | note |", "|---|---|---|---|",
        timed(f"`simulate()`, default scenario, ANCOVA only, {REPS:,} replicates, jobs=1", "engine",
              f"{REPS / median['engine']:,.0f} replicates/s; peak memory +{m['engine_rss']:.0f} MiB"),
        timed("`cbcp-sim run --set 'analysis.secondary=[]'` process", "process",
              f"peak RSS {m['process_rss']:.0f} MiB"),
        timed("`cbcp-sim run` process (default: ANCOVA + t-test)", "process_default"),
        timed(f"`simulate()`, {SCALING_REPS:,} replicates, jobs=1", "jobs1"),
        timed(f"`simulate()`, {SCALING_REPS:,} replicates, jobs=2", "jobs2",
              f"{median['jobs1'] / median['jobs2']:.2f}x faster than jobs=1 (medians)"), "",
        f"Baseline: {LOOP_REPS} replicates simulated one at a time, each fitted with and without the effect "
        "by statsmodels formula OLS.", "",
        "| per replicate | ms |", "|---|---|",
        f"| baseline loop (simulate one trial, build 2 frames, 2 OLS fits) | {loop_ms:.2f} |",
        f"| the 2 fits alone, on prebuilt frames ({m['fits'] / (2 * LOOP_REPS) * 1e3:.2f} ms per fit) | "
        f"{m['fits'] / LOOP_REPS * 1e3:.2f} |",
        f"| engine (median {REPS:,}-replicate run / {REPS:,}) | {engine_ms:.4f} |",
        f"| **speedup** (baseline loop / engine) | **{speedup:.0f}x** |", "",
        "The loop's estimates, SEs and p-values match the engine's on the same trials "
        f"(largest difference {m['mismatch']:.1e}).", "",
        "### MMRM", "",
        "Default scenario (36 per arm, visits 0, 1, 3, 6, 12) analysed by MMRM alone (unstructured, REML, "
        "Satterthwaite), with 20% MAR dropout by month 12; `jobs=1`, with its type I error pass. "
        f"Best and median of {MMRM_RUNS} runs after one warm-up.", "",
        "| measurement | best | median | note |", "|---|---|---|---|",
        timed(f"`simulate()`, MMRM, {REPS:,} replicates, jobs=1", "mmrm",
              f"{mmrm_ms:.3f} ms per replicate; {REPS / median['mmrm']:,.0f} replicates/s; "
              f"CPU time median {median['mmrm_cpu']:.3f} s"), "",
        f"Baseline: the first {MMRM_LOOP_REPS} trials of the same run (chunk 0, simulated together, untimed), "
        "each turned into a long frame and fitted alone with and without the effect by statsmodels "
        "`mixedlm(\"y ~ 0 + C(visit) + C(visit):arm + C(visit):baseline\", groups=child)`, REML: "
        "a random intercept per child (compound symmetry), a simpler model than the engine's unstructured one.", "",
        f"| per replicate | ms | projected for {REPS:,} |", "|---|---|---|",
        f"| baseline (build 2 long frames, 2 MixedLM fits; {m['mixed_fits'] / (2 * MMRM_LOOP_REPS) * 1e3:.1f} ms "
        f"per fit) | {mixed_ms:.1f} | {mixed_ms * REPS / 1e3:.0f} s |",
        f"| engine MMRM (median {REPS:,}-replicate run / {REPS:,}) | {mmrm_ms:.3f} | {median['mmrm']:.2f} s |",
        f"| **ratio** (baseline / engine) | **{mixed_ratio:.0f}x** | |", "",
        f"MixedLM fits that did not converge: {m['mixed_failed']} of {2 * MMRM_LOOP_REPS}; warnings: "
        f"{m['mixed_warnings']}. On the same trials MixedLM's estimates differ from the engine's MMRM by "
        f"{difference:.3f} points (median absolute difference; correlation {correlation:.3f}) and its SEs are "
        f"{se_ratio:.3f} times the MMRM's (median ratio): the same contrast under a different covariance model.",
        "",
        "Peak resident memory (`VmHWM`) of MMRM runs with `jobs=1`, each in a fresh interpreter (chunks of "
        f"{engine.CHUNK_SIZE:,} replicates); after imports means after importing the engine and loading the scenario.",
        "",
        "| replicates | wall time | peak RSS after imports | peak RSS at the end |", "|---|---|---|---|",
        *(f"| {reps:,} | {seconds:.1f} s | {before:.0f} MiB | {after:.0f} MiB |"
          for reps, (seconds, before, after) in m["memory"].items()), "",
        "### Trial calendar and interim looks", "",
        f"The default scenario, ANCOVA only, {REPS:,} replicates, jobs=1; best and median of {CALENDAR_RUNS} runs "
        "after one warm-up. With `operations.enabled = false` (the first row of the figures above) no calendar is "
        "built.", "",
        "| measurement | best | median | note |", "|---|---|---|---|",
        timed(f"calendars alone (`operations.simulate`, SimPy), {REPS:,} trials", "calendar_alone",
              f"{median['calendar_alone'] / REPS * 1e3:.3f} ms per trial"),
        timed("`simulate()` with `operations.enabled = true`", "calendar",
              f"{median['calendar'] / median['engine']:.1f}x the run without a calendar"),
        timed("`simulate()` with the calendar and an interim at half the information", "sequential",
              "the interim ANCOVA, per-trial bounds and stopping rules add "
              f"{median['sequential'] - median['calendar']:.2f} s"), "",
        "Lan-DeMets bounds (`boundaries()`, O'Brien-Fleming type, equally spaced looks), median of 20 calls: "
        + ", ".join(f"{k} looks {t * 1e3:.2f} ms" for k, t in m["boundaries"].items()) + ".", "",
        "### Sweep", "",
        f"`cbcp-sim sweep scenarios/default.toml {' '.join('--grid ' + g for g in SWEEP_GRID)} --reps {SWEEP_REPS}` "
        "(40 points, 200,000 trials with ANCOVA and the secondary t-test, each with its type I error pass), one run "
        "each as a whole process into a new directory (every chunk saved as it finishes). Peak memory is the "
        "largest sum of the resident memory of the process and its workers, sampled every 50 ms.", "",
        "| jobs | backend | wall time | peak memory (all processes) |", "|---|---|---|---|",
        *(f"| {jobs} | {backend} | {seconds:.1f} s | {mib:.0f} MiB |"
          for (jobs, backend), (seconds, mib) in m["sweep"].items()), "",
        f"Scaling: jobs=2 takes {m['sweep'][2, 'loky'][0] / m['sweep'][1, 'loky'][0]:.2f} of the time of jobs=1. "
        f"The three `results.csv` files are {'byte-identical' if m['sweep_identical'] else 'NOT identical'}.", "",
        "### Targets", "", "| target | measured (median) | met |", "|---|---|---|",
        target(f"simulation + analysis < {TARGET_SECONDS} s", f"{median['engine']:.3f} s",
               median["engine"] < TARGET_SECONDS),
        target(f"whole `cbcp-sim run` process < {TARGET_PROCESS_SECONDS} s", f"{median['process']:.3f} s",
               median["process"] < TARGET_PROCESS_SECONDS),
        target(f"at least {TARGET_SPEEDUP:.0f}x faster per replicate than the loop", f"{speedup:.0f}x",
               speedup >= TARGET_SPEEDUP),
        target(f"MMRM, 20% dropout, {REPS:,} replicates, one core, simulation included < {TARGET_MMRM_SECONDS:.0f} s",
               f"{median['mmrm']:.2f} s", median["mmrm"] < TARGET_MMRM_SECONDS),
        target(f"MMRM peak memory < {TARGET_MMRM_MIB / 1024:.0f} GiB for any number of replicates",
               f"{peak:.0f} MiB at up to {max(m['memory']):,} replicates", peak < TARGET_MMRM_MIB),
        target(f"40-point sweep x {SWEEP_REPS:,} trials < {TARGET_SWEEP_SECONDS:.0f} s (2 cores, jobs=2)",
               f"{m['sweep'][2, 'loky'][0]:.1f} s", m["sweep"][2, "loky"][0] < TARGET_SWEEP_SECONDS),
        target(f"its peak memory < {TARGET_SWEEP_MIB / 1024:.0f} GiB",
               f"{max(mib for _, mib in m['sweep'].values()):.0f} MiB",
               max(mib for _, mib in m["sweep"].values()) < TARGET_SWEEP_MIB),
    ]) + "\n"


def write_readme(figures):
    """Replace the text between the figures markers of the README."""
    text = README.read_text()
    head, rest = text.split(START, 1)
    README.write_text(f"{head}{START}\n{figures}{END}{rest.split(END, 1)[1]}")


def main():
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="also rewrite the figures section of benchmarks/README.md")
    args = parser.parse_args()
    figures = report(machine(), measure())
    print(figures)
    if args.write:
        write_readme(figures)


if __name__ == "__main__":
    main()
