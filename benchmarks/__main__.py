"""Benchmark the engine: throughput against the per-trial loops users write today, scaling, memory, the CLI process.

Timings of the default scenario in this process (ANCOVA and MMRM with 20% MAR dropout, the whole ``cbcp-sim run``
process, jobs 1 and 2); in fresh processes, each with its peak memory: trials per second of ANCOVA and MMRM against
statsmodels OLS and MixedLM loops, and of the plain normal model against ``scipy.stats.power``; their scaling with
replicates, children and visits; the trial calendar and interim looks; Bayesian decisions; MCP-Mod on a dose design
against its ANCOVA run; the natural history calibrated to a registry, beside R's nlme; a 40-point sweep.

Run from the repository root: ``python -m benchmarks`` prints the machine and the figures as Markdown;
``--write`` also replaces the figures section of ``benchmarks/README.md`` with them; ``--quick`` runs every
case at tiny sizes to check the code (under a minute; the figures mean nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy
import statsmodels

import cbcp_sim
from benchmarks import baselines, floor, report
from benchmarks.fresh import fresh
from benchmarks.settings import (
    ANALYSES,
    ANCOVA,
    BAYES_CASES,
    CALENDAR,
    CHILDREN,
    DOSE_DESIGN,
    FULL,
    LARGEST_MMRM_SECONDS,
    MMRM,
    MMRM_AS_ANCOVA,
    NLME_FIT,
    PLAIN,
    QUICK,
    ROOT,
    SCENARIO,
    SEED,
    SEQUENTIAL,
    SWEEP_GRID,
    VISITS,
)
from benchmarks.timing import alternating, peak_rss_mib, repeat
from cbcp_sim.analysis import growth_fit
from cbcp_sim.analysis.registry import read_registry
from cbcp_sim.explore.calibration import calibrate, simulated_registry
from cbcp_sim.models import layout, operations
from cbcp_sim.models.streams import Streams
from cbcp_sim.planning.go_calibration import calibrate_go
from cbcp_sim.run.settings import RunSettings
from cbcp_sim.scenario.boundaries import boundaries

README = Path(__file__).with_name("README.md")
#: The environment of the processes timed whole: as a user's, whose installed package has its bytecode cached
#: (``PYTHONDONTWRITEBYTECODE`` would have every run compile the package again).
PROCESS_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
START, END = "<!-- figures:start -->", "<!-- figures:end -->"
#: Run in a fresh interpreter: the command argv[1:]; prints its ru_maxrss (KiB).
PEAK_OF = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


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


def run_command(reps, *args):
    """The ``cbcp-sim run`` command of ``reps`` replicates with further arguments ``args``."""
    script = Path(sys.executable).with_name("cbcp-sim")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "cbcp_sim.cli"]
    return [*command, "run", "--reps", str(reps), *args]


def whole_process(command, runs):
    """Wall times of the ``command`` process (for ``cbcp-sim run``: interpreter start, imports, run, printing)."""
    return repeat(lambda: subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, env=PROCESS_ENV),
                  runs)


def process_peak_mib(command):
    """Peak resident memory of one run of ``command``, started from a small interpreter: on Linux a child's
    ``ru_maxrss`` starts from its parent's resident size at the fork, which here would be this process's."""
    wrapper = [sys.executable, "-c", PEAK_OF, *command]
    return int(subprocess.run(wrapper, cwd=ROOT, check=True, capture_output=True, text=True, env=PROCESS_ENV).stdout
               ) / 1024


def sweep_run(tmp, reps, jobs, backend="loky"):
    """The sweep of ``reps`` trials per point as a whole ``cbcp-sim sweep`` process into a new directory: wall
    seconds, the peak of the summed resident memory of the process and all its descendants (workers included;
    sampled every 50 ms), and the bytes of ``results.csv``."""
    import psutil

    out = Path(tmp) / f"sweep-{backend}-{jobs}"
    command = [str(Path(sys.executable).with_name("cbcp-sim")), "sweep", str(SCENARIO),
               *(f"--grid={g}" for g in SWEEP_GRID), "--reps", str(reps), "--seed", str(SEED),
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


def engine_case(sizes, overrides, reps):
    """``simulate`` of the default scenario with ``overrides`` in a fresh process (:mod:`benchmarks.fresh`)."""
    return fresh("simulate", overrides=overrides, reps=reps, runs=sizes.fresh_runs, budget=sizes.fresh_budget)


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


def in_process_figures(sizes):
    """The default scenario in this process and as a whole ``cbcp-sim run`` process, each in turn with the numpy
    floor of the same work (:mod:`benchmarks.floor`, in this process and as a process): wall times (s), the memory
    the in-process run added (MiB), the CLI process's peak (MiB), jobs 1 and 2, and MMRM with its CPU times and the
    ANCOVA run of the MMRM's scenario."""
    ancova = cbcp_sim.load_scenario(SCENARIO, ANCOVA)
    model = floor.model(ancova)

    def engine():
        cbcp_sim.simulate(ancova, reps=sizes.reps, seed=SEED, jobs=1)

    before = peak_rss_mib()
    engine()  # alone first: the memory it adds is the engine's
    m = {"engine_rss": peak_rss_mib() - before}
    m.update(alternating({"engine": engine, "floor": lambda: floor.run(model, sizes.reps)}, sizes.runs))
    ancova_command = run_command(sizes.reps, "--set", "analysis.secondary=[]")
    commands = {"process": ancova_command,
                "floor_process": [sys.executable, "-m", "benchmarks.floor", str(sizes.reps), json.dumps(model)]}
    m.update(alternating({k: lambda c=c: subprocess.run(c, cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                                                        env=PROCESS_ENV)
                          for k, c in commands.items()}, sizes.runs))
    m["process_rss"] = process_peak_mib(ancova_command)
    m["process_default"] = whole_process(run_command(sizes.reps), sizes.runs)
    m["jobs1"] = in_process(ancova, sizes.jobs_reps, 1, sizes.jobs_runs)
    m["jobs2"] = in_process(ancova, sizes.jobs_reps, 2, sizes.jobs_runs)
    m["mmrm"], m["mmrm_cpu"] = with_cpu(cbcp_sim.load_scenario(SCENARIO, MMRM), sizes.reps, sizes.mmrm_runs)
    m["mmrm_as_ancova"] = in_process(cbcp_sim.load_scenario(SCENARIO, MMRM_AS_ANCOVA), sizes.reps, 1, sizes.runs)
    return m


def baseline_figures(sizes):
    """The statsmodels OLS and MixedLM loops, each in a fresh process, and how their fits compare with the
    engine's on the same trials."""
    ols = fresh("ols_loop", reps=sizes.loop_reps)
    mixed = fresh("mixed_loop", overrides=MMRM, reps=sizes.mmrm_loop_reps)
    mixed_fits = np.array(mixed["fits"])
    return {"ols": ols, "mismatch": baselines.max_difference(cbcp_sim.load_scenario(SCENARIO, ANCOVA),
                                                             np.array(ols["fits"])),
            "mixed": mixed, "mixed_failed": int((mixed_fits[..., 2] == 0).sum()),
            "mixed_vs_mmrm": baselines.against_engine(cbcp_sim.load_scenario(SCENARIO, MMRM), mixed_fits)}


def replicates_scaling(sizes):
    """Fresh-process runs ``{(analysis, replicates): case}`` over ``sizes.replicates``; the largest MMRM run falls
    back to ``sizes.mmrm_fallback`` replicates if the run of ``sizes.reps`` projects to more than
    LARGEST_MMRM_SECONDS."""
    *smaller, largest = sizes.replicates
    cases = {(name, reps): engine_case(sizes, overrides, reps)
             for name, overrides in ANALYSES.items() for reps in smaller}
    projected = statistics.median(cases["MMRM", sizes.reps]["seconds"]) * largest / sizes.reps
    cases["ANCOVA", largest] = engine_case(sizes, ANCOVA, largest)
    mmrm_largest = largest if projected <= LARGEST_MMRM_SECONDS else sizes.mmrm_fallback
    cases["MMRM", mmrm_largest] = engine_case(sizes, MMRM, mmrm_largest)
    return cases


def scaled(sizes, points, reps):
    """Fresh-process runs ``{(analysis, label): case}`` of each analysis at each of ``points`` (label: overrides),
    ``reps`` replicates by analysis."""
    return {(name, label): engine_case(sizes, {**overrides, **extra}, reps[name])
            for name, overrides in ANALYSES.items() for label, extra in points.items()}


def scaling_figures(sizes):
    """The scaling tables: by replicates, by children (two equal arms) and by visits."""
    return {"replicates": replicates_scaling(sizes),
            "children": scaled(sizes, {n: {"design.n_per_arm": n // 2} for n in CHILDREN},
                               {"ANCOVA": sizes.children_reps, "MMRM": sizes.mmrm_children_reps}),
            "visits": scaled(sizes, {len(v): {"design.visits": list(v)} for v in VISITS},
                             {"ANCOVA": sizes.visits_reps, "MMRM": sizes.mmrm_visits_reps})}


def plain_figures(sizes):
    """The plain model: the engine and ``scipy.stats.power`` in fresh processes, and the closed-form power."""
    scenario = cbcp_sim.load_scenario(SCENARIO, PLAIN)
    o, d = scenario.outcome, scenario.design
    change_sd = o.sd * math.sqrt(2.0 * (1.0 - o.correlation))
    return {"plain": engine_case(sizes, PLAIN, sizes.plain_reps),
            "scipy": fresh("scipy_power", n_per_arm=d.n_per_arm[0], effect=o.effect, sd=change_sd, alpha=d.alpha,
                           reps=sizes.plain_reps, runs=sizes.fresh_runs, budget=sizes.fresh_budget),
            "closed_form": baselines.closed_form_power(o.effect / change_sd, d.n_per_arm[0], d.alpha)}


def calendar_figures(sizes):
    """The trial calendar alone, ``simulate`` with it and without it (alternating, so that the machine's drift hits
    both alike) and with an interim look (s), and Lan-DeMets bounds."""
    calendar = cbcp_sim.load_scenario(SCENARIO, CALENDAR)
    plain = cbcp_sim.load_scenario(SCENARIO, ANCOVA)
    arms = layout.arm_sizes(calendar.design)
    times = {"calendar": [], "calendar_off": []}
    for s in (calendar, plain):
        in_process(s, sizes.reps // 10, 1, 1)  # warm-up
    for _ in range(sizes.calendar_runs):
        times["calendar_off"] += in_process(plain, sizes.reps, 1, 1)
        times["calendar"] += in_process(calendar, sizes.reps, 1, 1)
    return {"calendar_alone": repeat(lambda: [operations.schedule(calendar, arms, True, n, Streams(SEED, c))
                                              for c, n in enumerate(RunSettings(reps=sizes.reps).chunks())],
                                     sizes.calendar_runs),
            **times,
            "sequential": in_process(cbcp_sim.load_scenario(SCENARIO, SEQUENTIAL), sizes.reps, 1,
                                     sizes.calendar_runs),
            "boundaries": {k: statistics.median(repeat(lambda k=k: boundaries(np.arange(1, k + 1) / k), 20))
                           for k in (2, 3, 5)}}


def bayes_figures(sizes):
    """Each Bayesian case timed with its ``[bayes]`` section and without it (the same scenario, the section
    removed), alternating so that the machine's drift hits both alike; and a calibration over five drifts."""
    out = {}
    for label, (path, overrides) in BAYES_CASES.items():
        with_bayes = cbcp_sim.load_scenario(path, overrides)
        without = dataclasses.replace(with_bayes, bayes=None)
        in_process(with_bayes, sizes.reps // 10, 1, 1)  # warm-up (and the natural-history prior's cohort)
        times = {"with": [], "without": []}
        for _ in range(sizes.bayes_runs):
            times["without"] += in_process(without, sizes.reps, 1, 1)
            times["with"] += in_process(with_bayes, sizes.reps, 1, 1)
        out[label] = times
    hybrid = cbcp_sim.load_scenario(BAYES_CASES[next(iter(BAYES_CASES))][0])
    settings = RunSettings(reps=sizes.reps, seed=SEED, jobs=1, progress=False)
    out["calibration"] = repeat(lambda: calibrate_go(hybrid, 0.025, (-3, -1.5, 0, 1.5, 3), settings=settings),
                                sizes.calendar_runs)
    return {"bayes": out}


def mcpmod_figures(sizes):
    """The dose design (:data:`DOSE_DESIGN`) run with MCP-Mod and without it (the same scenario with
    ``analysis.dose_response_models`` empty), alternating, each ``sizes.mcpmod_runs`` times after one small warm-up
    of each: wall and CPU seconds (:func:`with_cpu` counts this process's threads), and the last MCP-Mod run's
    power and share of trials rejecting without cell effect."""
    with_mcp = cbcp_sim.load_scenario(*DOSE_DESIGN)
    cases = {"ANCOVA": with_mcp.replace({"analysis.dose_response_models": ""}), "MCP-Mod": with_mcp}
    for scenario in cases.values():
        cbcp_sim.simulate(scenario, reps=max(sizes.reps // 100, 10), seed=SEED, jobs=1, progress=False)
    out = {name: {"wall": [], "cpu": []} for name in cases}
    for _ in range(sizes.mcpmod_runs):
        for name, scenario in cases.items():
            wall, cpu = time.perf_counter(), time.process_time()
            result = cbcp_sim.simulate(scenario, reps=sizes.reps, seed=SEED, jobs=1, progress=False)
            out[name]["wall"].append(time.perf_counter() - wall)
            out[name]["cpu"].append(time.process_time() - cpu)
    block = result.dose_response
    return {"mcpmod": out, "mcpmod_doses": block["doses"], "mcpmod_power": block["power"],
            "mcpmod_type1": block["type1"]}


def registry(children):
    """A registry of ``children`` untreated children of every GMFCS level (equal shares), first scored at 1-14
    years then yearly 4 times, simulated by the engine's natural history (seed 5)."""
    nh = dataclasses.replace(cbcp_sim.load_scenario(SCENARIO).natural_history, trial_effect_per_year=0.0)
    return simulated_registry(nh, children, 5, (0.2,) * 5, (1.0, 14.0), np.random.default_rng(5))


def calibrate_figures(sizes):
    """Fits of a registry: the stable-limit model by each method, the whole calibration (both models and the
    visual check), and R nlme's fit of the same file when R and nlme are installed (None otherwise)."""
    frame = registry(sizes.registry_children)
    data = read_registry(frame)
    out = {f"fit {method}": repeat(lambda method=method: growth_fit.fit(data, method=method), sizes.calibrate_runs)
           for method in growth_fit.METHODS}
    out["calibrate"] = repeat(lambda: calibrate(frame), sizes.calibrate_runs)
    out["R nlme"] = None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "registry.csv"
        frame.to_csv(path, index=False)
        with contextlib.suppress(OSError, subprocess.CalledProcessError, ValueError):  # no R, or no nlme
            out["R nlme"] = [float(subprocess.run(["Rscript", "-e", NLME_FIT, str(path)], check=True,
                                                  capture_output=True, text=True).stdout)
                             for _ in range(sizes.calibrate_runs)]
    return {"calibration": out}


def sweep_figures(sizes):
    """The sweep with jobs 1 and 2 and on Dask, ``sizes.sweep_runs`` times each in turn: seconds of each run and
    the largest peak MiB of each setting, and whether all the tables are identical."""
    keys = ((1, "loky"), (2, "loky"), (2, "dask"))
    seconds, peaks, tables = {key: [] for key in keys}, dict.fromkeys(keys, 0.0), set()
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(sizes.sweep_runs):
            (Path(tmp) / str(run)).mkdir()
            for key in keys:
                s, peak, table = sweep_run(Path(tmp) / str(run), sizes.sweep_reps, *key)
                seconds[key].append(s)
                peaks[key] = max(peaks[key], peak)
                tables.add(table)
    return {"sweep": {key: (seconds[key], peaks[key]) for key in keys}, "sweep_identical": len(tables) == 1}


def measure(sizes):
    """Run every benchmark at ``sizes``; the timings (s), memory (MiB) and results by name."""
    m = {**in_process_figures(sizes), **baseline_figures(sizes), **scaling_figures(sizes), **plain_figures(sizes),
         **calendar_figures(sizes), **bayes_figures(sizes), **mcpmod_figures(sizes), **calibrate_figures(sizes),
         **sweep_figures(sizes)}
    m["load_after"] = os.getloadavg()
    return m


def write_readme(figures):
    """Replace the text between the figures markers of the README."""
    text = README.read_text()
    head, rest = text.split(START, 1)
    README.write_text(f"{head}{START}\n{figures}{END}{rest.split(END, 1)[1]}")


def main():
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="also rewrite the figures section of benchmarks/README.md")
    mode.add_argument("--quick", action="store_true", help="every case at tiny sizes, to check the code runs")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    figures = report.markdown(machine(), measure(sizes), sizes)
    if args.quick:
        print("Quick check at tiny sizes: the figures below mean nothing.\n")
    print(figures)
    if args.write:
        write_readme(figures)


if __name__ == "__main__":
    main()
