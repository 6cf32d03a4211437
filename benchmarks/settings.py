"""What the benchmarks run: the scenarios, the sizes of a full and of a quick run, and the issues' targets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "default.toml"
SEED = 1
#: The default scenario (72 children, visits 0, 1, 3, 6, 12, 5% MCAR dropout) analysed by ANCOVA alone.
ANCOVA = {"analysis.secondary": []}
#: The default scenario analysed by MMRM alone, 20% MAR dropout by month 12.
MMRM = {"analysis.primary": "mmrm", "analysis.secondary": [], "dropout.mechanism": "mar", "dropout.fraction": 0.2}
#: The MMRM's scenario analysed by ANCOVA: the run issue 25 compares the MMRM run with.
MMRM_AS_ANCOVA = {**MMRM, "analysis.primary": "ancova"}
#: The analyses of the throughput and scaling tables.
ANALYSES = {"ANCOVA": ANCOVA, "MMRM": MMRM}
#: The plain model: baseline and month-12 scores bivariate normal (SD 5.5, correlation 0.5, so the SD of the change
#: is 5.5), 50 children per arm, an effect of 3.3 points, no dropout, the pooled two-sample t-test of the change.
PLAIN = {"outcome.model": "normal", "analysis.primary": "ttest", "analysis.secondary": [], "dropout.fraction": 0.0,
         "design.n_per_arm": 50, "outcome.effect": 3.3, "outcome.sd": 5.5, "outcome.correlation": 0.5}
#: The trial calendar on (default operations values), and with one interim look at half the information.
CALENDAR = {"analysis.secondary": [], "operations.enabled": True}
SEQUENTIAL = {**CALENDAR, "sequential.interims": [0.5]}
#: The Bayesian runs: the hybrid-control scenario (24 + 48 children, sham mean borrowed from natural history,
#: robust weight 0.2), and the default scenario (ANCOVA only) with an effect prior; each timed with its [bayes]
#: section and without it. Issue 21's target: the section adds at most 20%.
HYBRID = ROOT / "scenarios" / "hybrid_control.toml"
BAYES_CASES = {
    "control prior (natural history, robust), normal likelihood": (HYBRID, {}),
    "control prior, Student-t likelihood": (HYBRID, {"bayes.likelihood": "t"}),
    "effect prior, flat, normal likelihood": (SCENARIO, {**ANCOVA, "bayes.go_probability": 0.975}),
    "effect prior, robust mixture, Student-t likelihood": (SCENARIO, {
        **ANCOVA, "bayes.prior": [{"weight": 1.0, "mean": 1.4, "sd": 1.0}], "bayes.robust_weight": 0.2,
        "bayes.likelihood": "t"}),
}
TARGET_BAYES_OVERHEAD = 0.2
#: Issue 23's dose design: allogeneic_three_doses with a fourth dose arm, so placebo and 4 doses (sham and 1, 3, 5,
#: 10 x 10^7 TNC/kg), 40 children per arm, MCP-Mod (candidates emax:1, sigEmax:3:3, linear) on the ANCOVA of every
#: arm; timed against the same scenario without MCP-Mod (its ANCOVA of each dose against sham alone).
DOSE_DESIGN = (ROOT / "scenarios" / "allogeneic_three_doses.toml",
               {"design.arms": ["sham", "UCB-1", "UCB-3", "UCB-5", "UCB-10"], "design.n_per_arm": 40,
                "arms.UCB-5.dose": [5.0]})
#: The issue's sweep: 40 points of the default scenario (10 sizes x 4 maximum effects).
SWEEP_GRID = ("design.n_per_arm=20:110:10", "treatment.dose_response.emax=2,4,6,8")
#: Children in the trial (two equal arms) of the children scaling.
CHILDREN = (20, 50, 100, 200, 500)
#: Visit schedules (months) of the visits scaling, from baseline and month 12 alone to monthly.
VISITS = ((0, 12), (0, 6, 12), (0, 1, 3, 6, 12), (0, 1.5, 3, 4.5, 6, 7.5, 9, 10.5, 12), tuple(range(13)))
#: Seconds: the largest MMRM run of the replicates scaling falls back to ``Sizes.mmrm_fallback`` replicates if
#: its run of ``Sizes.reps`` projects to more than this.
LARGEST_MMRM_SECONDS = 60.0
TARGET_SECONDS, TARGET_PROCESS_SECONDS, TARGET_SPEEDUP = 0.5, 1.5, 50.0
TARGET_MMRM_SECONDS, TARGET_MMRM_MIB = 5.0, 2048.0
#: Issue 25, target 3: the MMRM run (5 visits, 20% MAR dropout) takes at most this many times the ANCOVA run of the
#: same scenario; at 13 monthly visits the MMRM runs at least TARGET_MMRM_13_SPEEDUP times the trials per second
#: recorded when the issue was filed (MMRM_13_VISITS_BEFORE).
TARGET_MMRM_RATIO = 4.0
MMRM_13_VISITS_BEFORE, TARGET_MMRM_13_SPEEDUP = 21.8, 5.0
TARGET_SWEEP_SECONDS, TARGET_SWEEP_MIB = 60.0, 2048.0
#: Issue 25: the default scenario (ANCOVA, ``Sizes.reps`` trials) at most this many times its numpy floor
#: (benchmarks/floor.py) in process, and the whole ``cbcp-sim run`` process at most so many times the floor's process;
#: the plain model's t-test at least this many times the trials per second of ``scipy.stats.power``.
TARGET_FLOOR_RATIO, TARGET_FLOOR_PROCESS_RATIO, TARGET_SCIPY_RATIO = 2.0, 1.5, 2.0
#: Issue 25: a run with the calendar on takes at most this many times the run without it (medians, alternating);
#: the 40-point sweep with jobs=2 at least this many times faster than with jobs=1; Dask's LocalCluster (started
#: and closed within the run) at most this many times loky's time with jobs=2 (medians of ``Sizes.sweep_runs``).
TARGET_CALENDAR_RATIO, TARGET_SWEEP_JOBS_SPEEDUP, TARGET_DASK_RATIO = 3.0, 1.7, 1.3


@dataclass(frozen=True)
class Sizes:
    """Replicates (trials) and repeats of one benchmark run."""

    reps: int = 10_000              #: replicates of the timed runs (the issues' figure)
    runs: int = 5                   #: timed in-process runs after one warm-up
    jobs_reps: int = 50_000         #: replicates of the jobs=1 vs jobs=2 comparison
    jobs_runs: int = 3
    loop_reps: int = 300            #: trials of the statsmodels OLS loop
    mmrm_runs: int = 3              #: timed in-process MMRM runs of ``reps`` after one warm-up
    mmrm_loop_reps: int = 40        #: trials fitted one at a time by statsmodels MixedLM
    mmrm_fallback: int = 30_000     #: see LARGEST_MMRM_SECONDS
    children_reps: int = 10_000     #: ANCOVA replicates per point of the children scaling
    mmrm_children_reps: int = 2_000
    visits_reps: int = 10_000       #: ANCOVA replicates per point of the visits scaling
    mmrm_visits_reps: int = 2_000   #: the MMRM takes about 1 ms per trial at 13 visits (monotone dropout)
    plain_reps: int = 100_000       #: trials of the plain model, for the engine and for scipy.stats.power
    fresh_runs: int = 3             #: most timed runs of a case in a fresh process
    fresh_budget: float = 3.0       #: seconds: a fresh-process case stops repeating once its runs take this long
    calendar_runs: int = 3          #: timed runs of ``reps`` with the calendar and without, alternating, after one
                                    #: warm-up
    sweep_reps: int = 5_000         #: replicates per sweep point
    sweep_runs: int = 3             #: runs of each sweep (jobs 1, jobs 2, Dask), alternating
    bayes_runs: int = 5             #: timed runs of each Bayesian case, with and without its [bayes] section
    registry_children: int = 600    #: children of the registry calibrated (5 yearly scores each)
    calibrate_runs: int = 3         #: timed runs of each calibration case, after one warm-up
    mcpmod_runs: int = 2            #: timed runs of ``reps`` of the dose design with MCP-Mod and without, alternating

    @property
    def replicates(self) -> tuple[int, ...]:
        """The replicates scaling: a tenth of ``reps``, ``reps`` and ten times it."""
        return self.reps // 10, self.reps, self.reps * 10


FULL = Sizes()
#: Tiny sizes that check the code runs (under a minute); its figures mean nothing.
QUICK = Sizes(reps=100, runs=1, jobs_reps=400, jobs_runs=1, loop_reps=3, mmrm_runs=1, mmrm_loop_reps=2,
              mmrm_fallback=300, children_reps=50, mmrm_children_reps=20, visits_reps=50, mmrm_visits_reps=2,
              plain_reps=1_000, fresh_runs=1, fresh_budget=0.1, calendar_runs=1, sweep_reps=10, sweep_runs=1,
              bayes_runs=1, registry_children=60, calibrate_runs=1, mcpmod_runs=1)
#: Target: a registry of 600 children x 5 scores calibrated (both growth models, the visual check) in seconds.
TARGET_CALIBRATE_SECONDS = 10.0
#: R's nlme fit of the stable-limit model to the registry CSV (argument 1), as tests/fixtures/calibrate/nlme_fit.R;
#: prints the seconds of the fit alone.
NLME_FIT = """
suppressMessages(library(nlme))
d <- read.csv(commandArgs(trailingOnly = TRUE)[1]); d$gmfcs <- factor(d$gmfcs); k <- nlevels(d$gmfcs)
s0 <- coef(nls(gmfm66 ~ lim * (1 - exp(-exp(lrc) * age)), data = d, start = list(lim = 50, lrc = -0.5)))
t <- system.time(nlme(gmfm66 ~ lim * (1 - exp(-exp(lrc) * age)), data = d, fixed = lim + lrc ~ factor(gmfcs),
  random = pdSymm(lim + lrc ~ 1), groups = ~ child, start = c(s0["lim"], rep(0, k - 1), s0["lrc"], rep(0, k - 1)),
  method = "ML", control = nlmeControl(maxIter = 200, pnlsMaxIter = 50, msMaxIter = 200, tolerance = 1e-8,
  pnlsTol = 1e-6)))[["elapsed"]]
cat(t, "\\n")
"""
