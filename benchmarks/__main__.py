"""Benchmark the engine against a one-trial-at-a-time statsmodels loop, and time the whole CLI process.

Run from the repository root: ``python -m benchmarks`` prints the machine and the figures as Markdown;
``--write`` also replaces the figures section of ``benchmarks/README.md`` with them.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy
import statsmodels
import statsmodels.formula.api as smf

import cbcp_sim
from cbcp_sim import outcomes
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


def whole_process(*args):
    """Wall times of the ``cbcp-sim run`` process (interpreter start, imports, run, printing)."""
    script = Path(sys.executable).with_name("cbcp-sim")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "cbcp_sim.cli"]
    command += ["run", "--reps", str(REPS), *args]
    return repeat(lambda: subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL), RUNS)


def trial_frames(scenario, i):
    """Replicate ``i`` simulated alone, as a user would: completers' frames with and without the effect."""
    data = outcomes.simulate(scenario, 1, Streams(SEED, i))
    k = data.primary
    done = data.observed[0, :, 0] & data.observed[0, :, k]
    arm = data.treated[done].astype(int)
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
    m["process_rss"] = peak_mib(resource.RUSAGE_CHILDREN)
    m["process_default"] = whole_process()
    fits, m["loop"], frames = baseline_loop(ancova_only, LOOP_REPS)
    start = time.perf_counter()
    for frame in frames:
        fit(frame)
    m["fits"] = time.perf_counter() - start
    m["mismatch"] = max_difference(ancova_only, fits)
    m["jobs1"] = in_process(ancova_only, SCALING_REPS, 1, SCALING_RUNS)
    m["jobs2"] = in_process(ancova_only, SCALING_REPS, 2, SCALING_RUNS)
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

    return "\n".join([
        "### Machine", "", "| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in host), "",
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
        "### Targets", "", "| target | measured (median) | met |", "|---|---|---|",
        target(f"simulation + analysis < {TARGET_SECONDS} s", f"{median['engine']:.3f} s",
               median["engine"] < TARGET_SECONDS),
        target(f"whole `cbcp-sim run` process < {TARGET_PROCESS_SECONDS} s", f"{median['process']:.3f} s",
               median["process"] < TARGET_PROCESS_SECONDS),
        target(f"at least {TARGET_SPEEDUP:.0f}x faster per replicate than the loop", f"{speedup:.0f}x",
               speedup >= TARGET_SPEEDUP),
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
