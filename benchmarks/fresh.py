"""Run one benchmark case in a fresh interpreter, so that cases do not share memory, imports or caches.

``python -m benchmarks.fresh CASE ARGS`` (ARGS a JSON object of the case's arguments) prints one JSON object:
``reps`` (trials per run), ``seconds`` (the timed runs), ``imports`` (peak resident memory in MiB after importing
what the case needs and loading its scenario), ``peak`` (peak resident memory in MiB at the end) and what the case
adds. Peak resident memory is the process's ``VmHWM``. Each case imports only what it uses: an engine case does not
count pandas or statsmodels, a statsmodels loop does.
"""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks.settings import ANCOVA, ROOT, SCENARIO, SEED
from benchmarks.timing import budgeted, peak_rss_mib


def simulate_case(overrides, reps, runs, budget):
    """``cbcp_sim.simulate`` of the default scenario with ``overrides``, ``reps`` replicates, jobs=1, timed as by
    :func:`benchmarks.timing.budgeted`; also its primary analysis's power, type I error and failed replicates."""
    import cbcp_sim
    import cbcp_sim.run.engine  # the package imports it lazily: count its imports (numpy, scipy.special) before the run

    scenario = cbcp_sim.load_scenario(SCENARIO, overrides)
    imports = peak_rss_mib()
    result = None

    def run():
        nonlocal result
        result = None  # the previous run's result is not held during the next
        result = cbcp_sim.simulate(scenario, reps=reps, seed=SEED, jobs=1)

    seconds = budgeted(run, runs, budget)
    primary = result.primary
    return {"reps": reps, "seconds": seconds, "imports": imports, "peak": peak_rss_mib(), "power": primary["power"],
            "type1": primary["type1_error"], "failed": primary["n_failed"]}


def ols_loop_case(reps):
    """The statsmodels OLS loop over ``reps`` trials of the default scenario (:func:`benchmarks.baselines.ols_loop`);
    also the seconds in the fits and the fits themselves."""
    import cbcp_sim
    from benchmarks import baselines

    scenario = cbcp_sim.load_scenario(SCENARIO, ANCOVA)
    imports = peak_rss_mib()
    fits, seconds, fitting = baselines.ols_loop(scenario, reps)
    return {"reps": reps, "seconds": [seconds], "imports": imports, "peak": peak_rss_mib(), "fit_seconds": fitting,
            "fits": fits.tolist()}


def mixed_loop_case(overrides, reps):
    """The statsmodels MixedLM loop over ``reps`` trials (:func:`benchmarks.baselines.mixed_loop`) of the default
    scenario with ``overrides``; also the seconds building frames and fitting, the fits and the warnings."""
    import cbcp_sim
    from benchmarks import baselines

    scenario = cbcp_sim.load_scenario(SCENARIO, overrides)
    imports = peak_rss_mib()
    building, fitting, fits, caught = baselines.mixed_loop(scenario, reps)
    return {"reps": reps, "seconds": [building + fitting], "imports": imports, "peak": peak_rss_mib(),
            "build_seconds": building, "fit_seconds": fitting, "fits": fits.tolist(), "warnings": caught}


def scipy_power_case(n_per_arm, effect, sd, alpha, reps, runs, budget):
    """``scipy.stats.power`` of the pooled two-sided ``ttest_ind`` on the change from baseline, normal with SD ``sd``
    in both arms, ``n_per_arm`` children each, mean ``effect`` in the second: ``reps`` resamples with the effect and
    ``reps`` without it (the engine's power and type I error pass), timed as by :func:`benchmarks.timing.budgeted`;
    also the two powers."""
    from functools import partial

    import numpy as np
    from scipy import stats

    imports = peak_rss_mib()
    powers = None

    def run():
        nonlocal powers
        rng = np.random.default_rng(SEED)
        powers = [float(stats.power(stats.ttest_ind, (partial(rng.normal, 0.0, sd), partial(rng.normal, shift, sd)),
                                    (n_per_arm, n_per_arm), significance=alpha, n_resamples=reps).power)
                  for shift in (effect, 0.0)]

    seconds = budgeted(run, runs, budget)
    return {"reps": reps, "seconds": seconds, "imports": imports, "peak": peak_rss_mib(), "power": powers[0],
            "type1": powers[1]}


CASES = {"simulate": simulate_case, "ols_loop": ols_loop_case, "mixed_loop": mixed_loop_case,
         "scipy_power": scipy_power_case}


def fresh(case, **args):
    """The JSON object of ``case`` run with ``args`` in a fresh interpreter (see the module's docstring)."""
    command = [sys.executable, "-m", "benchmarks.fresh", case, json.dumps(args)]
    return json.loads(subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout)


def main():
    case, args = sys.argv[1:]
    print(json.dumps(CASES[case](**json.loads(args))))


if __name__ == "__main__":
    main()
