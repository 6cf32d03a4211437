"""The benchmark's figures as Markdown: one function per section, each a list of lines."""

from __future__ import annotations

from statistics import median

from benchmarks.settings import (
    ANALYSES,
    MMRM_13_VISITS_BEFORE,
    PLAIN,
    SWEEP_GRID,
    TARGET_BAYES_OVERHEAD,
    TARGET_CALENDAR_RATIO,
    TARGET_CALIBRATE_SECONDS,
    TARGET_DASK_RATIO,
    TARGET_FLOOR_PROCESS_RATIO,
    TARGET_FLOOR_RATIO,
    TARGET_MMRM_13_SPEEDUP,
    TARGET_MMRM_MIB,
    TARGET_MMRM_RATIO,
    TARGET_MMRM_SECONDS,
    TARGET_PROCESS_SECONDS,
    TARGET_SCIPY_RATIO,
    TARGET_SECONDS,
    TARGET_SPEEDUP,
    TARGET_SWEEP_JOBS_SPEEDUP,
    TARGET_SWEEP_MIB,
    TARGET_SWEEP_SECONDS,
    VISITS,
)
from cbcp_sim.run.settings import CHUNK_SIZE


def markdown(host, m, sizes):
    """The machine, the figures and the targets as Markdown."""
    sections = (machine_section(host, m), in_process_section(m, sizes), throughput_section(m, sizes),
                baseline_section(m), plain_section(m), scaling_section(m, sizes),
                calendar_section(m, sizes), bayes_section(m, sizes), mcpmod_section(m, sizes),
                calibrate_section(m, sizes),
                sweep_section(m, sizes), targets_section(m, sizes))
    return "\n".join(line for section in sections for line in section)


def timed(label, seconds, note=""):
    """A table row: best and median wall time (s)."""
    return f"| {label} | {min(seconds):.3f} s | {median(seconds):.3f} s | {note} |"


def rate(case):
    """Trials per second of a fresh-process case (median of its timed runs)."""
    return case["reps"] / median(case["seconds"])


def memory(case):
    """A fresh-process case's peak resident memory, and how much of it came after the imports (MiB)."""
    return f"{case['peak']:.0f} MiB (+{case['peak'] - case['imports']:.0f})"


def per_second(trials):
    """Trials per second, with a decimal when below 100."""
    return f"{trials:,.0f}" if trials >= 100 else f"{trials:.1f}"


def fold(ratio):
    """A ratio, with two decimals when below 10."""
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.2f}x"


def machine_section(host, m):
    return ["### Machine", "", "| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in host),
            f"| load average after run | {' '.join(f'{x:.2f}' for x in m['load_after'])} |", ""]


def in_process_section(m, sizes):
    reps = sizes.reps
    engine_s, mmrm_s = median(m["engine"]), median(m["mmrm"])
    return [
        "### Default scenario in this process", "",
        f"Best and median of {sizes.runs} runs after one warm-up ({sizes.jobs_runs} runs for {sizes.jobs_reps:,} "
        f"replicates, {sizes.mmrm_runs} for MMRM).", "",
        "| measurement | best | median | note |", "|---|---|---|---|",
        timed(f"`simulate()`, default scenario, ANCOVA only, {reps:,} replicates, jobs=1", m["engine"],
              f"{reps / engine_s:,.0f} replicates/s; peak memory +{m['engine_rss']:.0f} MiB"),
        timed("numpy floor of the same simulation and ANCOVA (`benchmarks/floor.py`), taken in turn with the above",
              m["floor"], f"the engine takes {fold(engine_s / median(m['floor']))} its time (medians)"),
        timed("`cbcp-sim run --set 'analysis.secondary=[]'` process", m["process"],
              f"peak RSS {m['process_rss']:.0f} MiB"),
        timed("`python -m benchmarks.floor` process (numpy alone), taken in turn with the above", m["floor_process"],
              f"the `cbcp-sim run` process takes {fold(median(m['process']) / median(m['floor_process']))} its "
              "time (medians)"),
        timed("`cbcp-sim run` process (default: ANCOVA + t-test)", m["process_default"]),
        timed(f"`simulate()`, {sizes.jobs_reps:,} replicates, jobs=1", m["jobs1"]),
        timed(f"`simulate()`, {sizes.jobs_reps:,} replicates, jobs=2", m["jobs2"],
              f"{median(m['jobs1']) / median(m['jobs2']):.2f}x faster than jobs=1 (medians)"),
        timed(f"`simulate()`, MMRM, 20% MAR dropout, {reps:,} replicates, jobs=1", m["mmrm"],
              f"{mmrm_s / reps * 1e3:.3f} ms per replicate; {reps / mmrm_s:,.0f} replicates/s; "
              f"CPU time median {median(m['mmrm_cpu']):.3f} s"), ""]


def throughput_row(analysis, engine_case, baseline, baseline_case):
    """A row of the throughput table: each side's trials, trials/s and peak memory, and the ratio of the rates."""
    fast, slow = rate(engine_case), rate(baseline_case)
    return (f"| {analysis} | {engine_case['reps']:,} | {per_second(fast)} | {memory(engine_case)} | {baseline} | "
            f"{baseline_case['reps']:,} | {per_second(slow)} | {memory(baseline_case)} | **{fold(fast / slow)}** |")


def throughput_section(m, sizes):
    reps = sizes.reps
    return [
        "### Throughput against the baselines users write today", "",
        "Trials per second, each case in a fresh process, with its peak resident memory (`VmHWM`) and in brackets "
        "how much of it came after the imports. Each side analyses a trial with the effect and again without it (the "
        "type I error pass), and simulates it, except the MixedLM loop (its trials simulated beforehand, untimed). "
        "Ratio: engine trials/s over baseline trials/s.", "",
        "| analysis | trials | engine trials/s | engine peak RSS | baseline | trials | baseline trials/s | "
        "baseline peak RSS | ratio |", "|---|---|---|---|---|---|---|---|---|",
        throughput_row("ANCOVA, default scenario", m["replicates"]["ANCOVA", reps], "statsmodels OLS loop", m["ols"]),
        throughput_row("MMRM, default scenario, 20% MAR dropout", m["replicates"]["MMRM", reps],
                       "statsmodels MixedLM loop", m["mixed"]),
        throughput_row("t-test, plain normal model", m["plain"], "`scipy.stats.power`", m["scipy"]), ""]


def baseline_section(m):
    ols, mixed = m["ols"], m["mixed"]
    loop, mixed_loop = ols["reps"], mixed["reps"]
    difference, correlation, se_ratio = m["mixed_vs_mmrm"]
    return [
        "Where the baselines' time goes, per trial:", "",
        "| per trial | ms |", "|---|---|",
        f"| OLS loop: simulate one trial, build 2 frames, 2 OLS fits | {ols['seconds'][0] / loop * 1e3:.2f} |",
        f"| of which the 2 fits ({ols['fit_seconds'] / (2 * loop) * 1e3:.2f} ms per fit) | "
        f"{ols['fit_seconds'] / loop * 1e3:.2f} |",
        "| MixedLM loop: build 2 long frames, 2 MixedLM fits (the trials simulated together beforehand, untimed) | "
        f"{mixed['seconds'][0] / mixed_loop * 1e3:.1f} |",
        f"| of which the 2 fits ({mixed['fit_seconds'] / (2 * mixed_loop) * 1e3:.1f} ms per fit) | "
        f"{mixed['fit_seconds'] / mixed_loop * 1e3:.1f} |", "",
        "The OLS loop's estimates, SEs and p-values match the engine's on the same trials "
        f"(largest difference {m['mismatch']:.1e}). MixedLM fits that did not converge: {m['mixed_failed']} of "
        f"{2 * mixed_loop}; warnings: {mixed['warnings']}. On the same trials MixedLM's estimates differ from the "
        f"engine's MMRM by {difference:.3f} points (median absolute difference; correlation {correlation:.3f}) and "
        f"its SEs are {se_ratio:.3f} times the MMRM's (median ratio): the same contrast under a different covariance "
        "model.", ""]


def mcse(p, reps):
    """Monte Carlo standard error of a proportion ``p`` from ``reps`` trials."""
    return (p * (1.0 - p) / reps) ** 0.5


def plain_section(m):
    plain, sp = m["plain"], m["scipy"]
    reps = plain["reps"]
    z = (plain["power"] - sp["power"]) / (mcse(plain["power"], reps) ** 2 + mcse(sp["power"], reps) ** 2) ** 0.5

    def row(label, case):
        return (f"| {label} | {case['power']:.4f} ({mcse(case['power'], reps):.4f}) | {case['type1']:.4f} | "
                f"{median(case['seconds']):.3f} s | {per_second(rate(case))} | {memory(case)} |")

    return [
        "### Plain model: the engine against `scipy.stats.power`", "",
        f"{reps:,} trials of {PLAIN['design.n_per_arm']} children per arm: baseline and month-12 scores normal with SD "
        f"{PLAIN['outcome.sd']:g} and correlation {PLAIN['outcome.correlation']:g}, effect {PLAIN['outcome.effect']:g} "
        "points, no dropout, the pooled two-sided t-test of the change at the scenario's alpha (0.05); each trial "
        "with the effect (power) and without it (type I error). `scipy.stats.power` draws every child's change, "
        "normal with the same SD; the engine draws each arm's mean and sum of squares "
        "(`cbcp_sim/models/summaries.py`).", "",
        "| method | power (MCSE) | type I error | median time | trials/s | peak RSS |", "|---|---|---|---|---|---|",
        row("engine, `outcome.model = \"normal\"`, `analysis.primary = \"ttest\"`", plain),
        row("`scipy.stats.power(ttest_ind, ...)` on the change", sp),
        f"| closed form, statsmodels `TTestIndPower` | {m['closed_form']:.4f} | | | | |", "",
        f"The two simulated powers differ by {plain['power'] - sp['power']:+.4f} ({z:+.1f} combined MCSEs). "
        f"Engine over scipy: **{fold(rate(plain) / rate(sp))}** the trials per second.", ""]


def scaling_cells(case):
    """Median time, trials/s and peak memory of a fresh-process case (None: not run), as 3 cells."""
    if case is None:
        return "not run | | "
    return f"{median(case['seconds']):.3f} s | {per_second(rate(case))} | {memory(case)}"


def trials(cases, analysis):
    """The trials of an analysis's runs along a scaling axis of fixed replicates."""
    return next(case["reps"] for (name, _), case in cases.items() if name == analysis)


def scaling_table(first, cases, label=str):
    """A scaling table: one row per value, for each analysis the median seconds, trials/s and peak RSS of its run."""
    header = " | ".join(f"{a} time | {a} trials/s | {a} peak RSS" for a in ANALYSES)
    rows = []
    for value in sorted({v for _, v in cases}):
        cells = [scaling_cells(cases.get((a, value))) for a in ANALYSES]
        rows.append(f"| {label(value)} | {' | '.join(cells)} |")
    return [f"| {first} | {header} |", "|---" * (1 + 3 * len(ANALYSES)) + "|", *rows, ""]


def failures(m):
    """Where a scaling run's primary analysis failed in some replicates, as text."""
    failed = [f"{analysis} at {value:,} {axis} ({case['failed']:,} of {case['reps']:,})"
              for axis in ("replicates", "children", "visits") for (analysis, value), case in m[axis].items()
              if case["failed"]]
    return "; ".join(failed) or "none"


def scaling_section(m, sizes):
    schedules = {len(v): v for v in VISITS}
    children, visits = m["children"], m["visits"]
    return [
        "### Scaling", "",
        f"Each cell one fresh process (`simulate()`, jobs=1, chunks of {CHUNK_SIZE:,}): median of at most "
        f"{sizes.fresh_runs} timed runs after a warm-up, or a single run when the first takes {sizes.fresh_budget:g} s "
        "or more; peak RSS as above. MMRM with 20% MAR dropout.", "",
        "By replicates (default scenario, 72 children, 5 visits):", "",
        *scaling_table("replicates", m["replicates"], lambda v: f"{v:,}"),
        f"By children in the trial (two equal arms; ANCOVA {trials(children, 'ANCOVA'):,} replicates, MMRM "
        f"{trials(children, 'MMRM'):,}):", "",
        *scaling_table("children", children),
        f"By visits (months; ANCOVA {trials(visits, 'ANCOVA'):,} replicates, MMRM {trials(visits, 'MMRM'):,}):", "",
        *scaling_table("visits", visits, lambda v: f"{v}: {', '.join(f'{x:g}' for x in schedules[v])}"),
        f"Runs with failed replicates (no estimate with the effect): {failures(m)}.", ""]


def calendar_ratio(m):
    """The time of a run with the calendar over the same run without it (medians of alternating runs)."""
    return median(m["calendar"]) / median(m["calendar_off"])


def calendar_section(m, sizes):
    calendar_s = median(m["calendar"])
    return [
        "### Trial calendar and interim looks", "",
        f"The default scenario, ANCOVA only, {sizes.reps:,} replicates, jobs=1, in this process; best and median of "
        f"{sizes.calendar_runs} runs after one warm-up, the runs with and without the calendar alternating. With "
        "`operations.enabled = false` no calendar is built.", "",
        "| measurement | best | median | note |", "|---|---|---|---|",
        timed(f"calendars alone (`operations.schedule`), {sizes.reps:,} trials", m["calendar_alone"],
              f"{median(m['calendar_alone']) / sizes.reps * 1e3:.3f} ms per trial"),
        timed("`simulate()` with `operations.enabled = false`", m["calendar_off"]),
        timed("`simulate()` with `operations.enabled = true`", m["calendar"],
              f"{calendar_ratio(m):.2f}x the run without a calendar"),
        timed("`simulate()` with the calendar and an interim at half the information", m["sequential"],
              "the interim ANCOVA, per-trial bounds and stopping rules add "
              f"{median(m['sequential']) - calendar_s:.2f} s"),
        "",
        "Lan-DeMets bounds (`boundaries()`, O'Brien-Fleming type, equally spaced looks), median of 20 calls: "
        + ", ".join(f"{k} looks {t * 1e3:.2f} ms" for k, t in m["boundaries"].items()) + ".", ""]


def bayes_overhead(times):
    """The share a ``[bayes]`` section adds: median with over median without."""
    return median(times["with"]) / median(times["without"]) - 1.0


def bayes_section(m, sizes):
    cases = {k: v for k, v in m["bayes"].items() if k != "calibration"}
    return [
        "### Bayesian go/no-go", "",
        f"{sizes.reps:,} replicates, jobs=1, in this process; {sizes.bayes_runs} runs of each case with its `[bayes]` "
        "section and without it, alternating, after one warm-up (which also draws the natural-history prior's "
        "cohort, once per scenario). The section adds the arms' means in each chunk and, at the summary, the exact "
        "posteriors, decisions and credible intervals of both passes.", "",
        "| case | without `[bayes]` (median) | with (median) | added |", "|---|---|---|---|",
        *(f"| {label} | {median(t['without']):.3f} s | {median(t['with']):.3f} s | "
          f"{100 * bayes_overhead(t):+.0f}% |" for label, t in cases.items()),
        "",
        f"`calibrate_go` of the hybrid scenario over 5 drifts ({sizes.reps:,} trials, one run decided at every "
        f"drift): best {min(m['bayes']['calibration']):.3f} s, median {median(m['bayes']['calibration']):.3f} s of "
        f"{sizes.calendar_runs} runs.", ""]


def mcpmod_section(m, sizes):
    runs = m["mcpmod"]
    wall = {name: median(t["wall"]) for name, t in runs.items()}
    cpu = {name: median(t["cpu"]) for name, t in runs.items()}
    doses = ", ".join(f"{x:g}" for x in m["mcpmod_doses"][1:])
    added = (cpu["MCP-Mod"] - cpu["ANCOVA"]) / (2 * sizes.reps) * 1e3
    return [
        "### MCP-Mod on a dose design", "",
        f"Placebo and 4 doses ({doses} x 10^7 TNC/kg, allogeneic), 40 children per arm, {sizes.reps:,} trials, jobs=1, "
        f"in this process; {sizes.mcpmod_runs} runs of each, alternating, after a small warm-up. MCP-Mod (candidates "
        "emax:1, sigEmax:3:3, linear) runs on every trial with and without cell effect: the ANCOVA of every arm, the "
        "contrast test (one multivariate-t critical value per chunk), the fit of each significant model and the "
        "target dose. Without it the run analyses each dose against sham by ANCOVA alone. CPU time counts this "
        "process's threads and is less slowed down by other work on a shared machine.", "",
        "| run | wall (median) | CPU (median) | trials per CPU second |", "|---|---|---|---|",
        *(f"| {name} | {wall[name]:.2f} s | {cpu[name]:.2f} s | {per_second(sizes.reps / cpu[name])} |"
          for name in runs),
        "",
        f"MCP-Mod costs {fold(cpu['MCP-Mod'] / cpu['ANCOVA'])} the CPU time of the ANCOVA run, {added:.2f} ms per "
        f"analysed trial (two per simulated trial: with and without cell effect). Power of the test "
        f"{m['mcpmod_power']:.3f}, rejections without cell effect {m['mcpmod_type1']:.4f}.", ""]


def calibrate_section(m, sizes):
    cal = m["calibration"]
    nlme = cal["R nlme"]
    rows = [timed("stable limit, exact likelihood (adaptive Gauss-Hermite, `--method agq`)", cal["fit agq"]),
            timed("stable limit, Lindstrom-Bates as R nlme (`--method nlme`)", cal["fit nlme"]),
            timed("`calibrate()`: both models, AIC, visual predictive check (200 registries)", cal["calibrate"]),
            timed("R nlme 3.1 `nlme(..., method = \"ML\")`, the fit alone (`system.time`)", nlme) if nlme
            else "| R nlme | not installed | | |"]
    ratio = (f"The exact fit takes {median(cal['fit agq']) / median(nlme):.2f} and the nlme method "
             f"{median(cal['fit nlme']) / median(nlme):.2f} of the time of R's nlme on the same registry."
             if nlme else "")
    return [
        "### Natural history calibrated to a registry", "",
        f"A registry of {sizes.registry_children} children x 5 yearly scores (ages 1-18, GMFCS I-V) simulated by the "
        f"engine; {sizes.calibrate_runs} timed runs of each case after one warm-up, in this process (R: a fresh "
        "Rscript per run, timing the fit only).", "",
        "| case | best | median | |", "|---|---|---|---|", *rows, "", ratio, ""]


def sweep_ratios(m):
    """jobs=1 over jobs=2 (the speed-up), and Dask over loky with jobs=2, from the medians of the sweep's runs."""
    s = {key: median(seconds) for key, (seconds, _) in m["sweep"].items()}
    return s[1, "loky"] / s[2, "loky"], s[2, "dask"] / s[2, "loky"]


def sweep_section(m, sizes):
    speedup, dask = sweep_ratios(m)
    return [
        "### Sweep", "",
        f"`cbcp-sim sweep scenarios/default.toml {' '.join('--grid ' + g for g in SWEEP_GRID)} --reps "
        f"{sizes.sweep_reps}` (40 points, {40 * sizes.sweep_reps:,} trials with ANCOVA and the secondary t-test, each "
        f"with its type I error pass), {sizes.sweep_runs} runs of each setting in turn, each a whole process into a "
        "new directory (every chunk saved as it finishes; Dask's LocalCluster started and closed within the run). "
        "Peak memory is the largest sum of the resident memory of the process and its workers, sampled every 50 ms.",
        "",
        "| jobs | backend | best | median | peak memory (all processes) |", "|---|---|---|---|---|",
        *(f"| {jobs} | {backend} | {min(seconds):.1f} s | {median(seconds):.1f} s | {mib:.0f} MiB |"
          for (jobs, backend), (seconds, mib) in m["sweep"].items()),
        "",
        f"Scaling: jobs=2 is {speedup:.2f}x faster than jobs=1; Dask takes {dask:.2f}x the time of loky (medians). "
        f"All `results.csv` files are {'byte-identical' if m['sweep_identical'] else 'NOT identical'}.", ""]


def target(label, measured, met):
    return f"| {label} | {measured} | {'yes' if met else 'NO'} |"


def targets_section(m, sizes):
    reps = sizes.reps
    speedup = rate(m["replicates"]["ANCOVA", reps]) / rate(m["ols"])
    mmrm_runs = {v: case for (a, v), case in m["replicates"].items() if a == "MMRM"}
    mmrm_peak = max(case["peak"] for case in mmrm_runs.values())
    sweep_s, sweep_mib = median(m["sweep"][2, "loky"][0]), max(mib for _, mib in m["sweep"].values())
    speedup_jobs, dask = sweep_ratios(m)
    engine_s, process_s, mmrm_s = median(m["engine"]), median(m["process"]), median(m["mmrm"])
    mmrm_ratio = mmrm_s / median(m["mmrm_as_ancova"])
    mmrm_13 = rate(m["visits"]["MMRM", len(VISITS[-1])])
    floor_s, floor_process_s = median(m["floor"]), median(m["floor_process"])
    scipy_ratio = rate(m["plain"]) / rate(m["scipy"])
    worst_bayes = {likelihood: max(bayes_overhead(t) for k, t in m["bayes"].items() if k.endswith(f"{likelihood} "
                                                                                                     "likelihood"))
                   for likelihood in ("normal", "Student-t")}
    return [
        "### Targets", "", "| target | measured (median) | met |", "|---|---|---|",
        target(f"simulation + analysis < {TARGET_SECONDS} s", f"{engine_s:.3f} s", engine_s < TARGET_SECONDS),
        target(f"whole `cbcp-sim run` process < {TARGET_PROCESS_SECONDS} s", f"{process_s:.3f} s",
               process_s < TARGET_PROCESS_SECONDS),
        target(f"at least {TARGET_SPEEDUP:.0f}x the trials per second of the OLS loop", f"{speedup:.0f}x",
               speedup >= TARGET_SPEEDUP),
        target(f"`simulate()` at most {TARGET_FLOOR_RATIO:.0f}x its numpy floor (default scenario, ANCOVA)",
               fold(engine_s / floor_s), engine_s / floor_s <= TARGET_FLOOR_RATIO),
        target(f"`cbcp-sim run` process at most {TARGET_FLOOR_PROCESS_RATIO}x the floor's process",
               fold(process_s / floor_process_s), process_s / floor_process_s <= TARGET_FLOOR_PROCESS_RATIO),
        target(f"plain t-test at least {TARGET_SCIPY_RATIO:.0f}x the trials per second of `scipy.stats.power`",
               fold(scipy_ratio), scipy_ratio >= TARGET_SCIPY_RATIO),
        target(f"MMRM, 20% dropout, {reps:,} replicates, one core, simulation included < {TARGET_MMRM_SECONDS:.0f} s",
               f"{mmrm_s:.2f} s", mmrm_s < TARGET_MMRM_SECONDS),
        target(f"MMRM run at most {TARGET_MMRM_RATIO:g}x the ANCOVA run of the same scenario (issue 25)",
               f"{mmrm_ratio:.1f}x", mmrm_ratio <= TARGET_MMRM_RATIO),
        target(f"MMRM at {len(VISITS[-1])} visits at least {TARGET_MMRM_13_SPEEDUP:g}x the {MMRM_13_VISITS_BEFORE} "
               "trials/s of issue 25", f"{mmrm_13:.1f} trials/s ({mmrm_13 / MMRM_13_VISITS_BEFORE:.1f}x)",
               mmrm_13 >= TARGET_MMRM_13_SPEEDUP * MMRM_13_VISITS_BEFORE),
        target(f"MMRM peak memory < {TARGET_MMRM_MIB / 1024:.0f} GiB for any number of replicates",
               f"{mmrm_peak:.0f} MiB at up to {max(mmrm_runs):,} replicates", mmrm_peak < TARGET_MMRM_MIB),
        target(f"40-point sweep x {sizes.sweep_reps:,} trials < {TARGET_SWEEP_SECONDS:.0f} s (2 cores, jobs=2)",
               f"{sweep_s:.1f} s", sweep_s < TARGET_SWEEP_SECONDS),
        target(f"its peak memory < {TARGET_SWEEP_MIB / 1024:.0f} GiB", f"{sweep_mib:.0f} MiB",
               sweep_mib < TARGET_SWEEP_MIB),
        target(f"the sweep with jobs=2 at least {TARGET_SWEEP_JOBS_SPEEDUP}x faster than with jobs=1",
               f"{speedup_jobs:.2f}x", speedup_jobs >= TARGET_SWEEP_JOBS_SPEEDUP),
        target(f"the sweep on Dask's LocalCluster (jobs=2) at most {TARGET_DASK_RATIO}x the time of loky",
               f"{dask:.2f}x", dask <= TARGET_DASK_RATIO),
        target(f"`simulate()` with the calendar at most {TARGET_CALENDAR_RATIO:.0f}x the run without it",
               f"{calendar_ratio(m):.2f}x", calendar_ratio(m) <= TARGET_CALENDAR_RATIO),
        *(target(f"a `[bayes]` section ({likelihood} likelihood) adds at most {100 * TARGET_BAYES_OVERHEAD:.0f}% "
                 "to the run", f"largest {100 * worst:+.0f}%", worst <= TARGET_BAYES_OVERHEAD)
          for likelihood, worst in worst_bayes.items()),
        target(f"registry of {sizes.registry_children} children x 5 scores calibrated (both models, visual check) in "
               f"< {TARGET_CALIBRATE_SECONDS:.0f} s", f"{median(m['calibration']['calibrate']):.1f} s",
               median(m["calibration"]["calibrate"]) < TARGET_CALIBRATE_SECONDS), ""]
