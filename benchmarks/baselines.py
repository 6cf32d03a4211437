"""The loops users write today, one trial at a time with statsmodels, and how their results compare with the engine's.

Importing this module imports pandas and statsmodels.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from statsmodels.stats.power import TTestIndPower

import cbcp_sim
from benchmarks.settings import SEED
from cbcp_sim.models import trial
from cbcp_sim.models.streams import Streams
from cbcp_sim.run.settings import CHUNK_SIZE


def trial_frames(scenario, i):
    """Replicate ``i`` simulated alone, as a user would: completers' frames with and without the effect."""
    data = trial.generate(scenario, 1, Streams(SEED, i))
    k = data.primary
    done = data.observed[0, :, 0] & data.observed[0, :, k]
    arm = (data.arm[0, done] > 0).astype(int)
    return [pd.DataFrame({"y": v[0, done, k], "baseline": v[0, done, 0], "arm": arm})
            for v in (data.values, data.null_values)]


def fit(frame):
    """statsmodels OLS ``y ~ arm + baseline``: the arm coefficient, its standard error and p-value."""
    result = smf.ols("y ~ arm + baseline", frame).fit()
    return result.params["arm"], result.bse["arm"], result.pvalues["arm"]


def ols_loop(scenario, reps):
    """The ANCOVA loop users write today: for each of ``reps`` trials, simulate it, build its frames with and
    without the effect, and fit each by OLS.

    Returns the fits ``(reps, 2, 3)`` (with/without effect; estimate, SE, p), the loop's wall time and the part of
    it spent in the fits (s).
    """
    fit(trial_frames(scenario, 0)[0])  # warm-up: statsmodels and patsy set up on first use
    fits, fitting = [], 0.0
    start = time.perf_counter()
    for i in range(reps):
        frames = trial_frames(scenario, i)
        begin = time.perf_counter()
        fits.append([fit(frame) for frame in frames])
        fitting += time.perf_counter() - begin
    return np.array(fits), time.perf_counter() - start, fitting


def max_difference(scenario, fits):
    """Largest difference between the OLS loop's fits and the engine's on the same trials (chunks of one)."""
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


def mixed_loop(scenario, reps):
    """The MMRM loop users write today: the first ``reps`` trials of chunk 0 (simulated together, untimed), each
    turned into long frames with and without the effect and fitted alone by MixedLM.

    Returns the seconds building the frames, the seconds fitting them, the fits ``(reps, 2, 3)`` (with/without
    effect; estimate, SE, converged) and the number of warnings raised.
    """
    data = trial.generate(scenario, CHUNK_SIZE, Streams(SEED, 0))  # what the engine's chunk 0 draws
    treated = data.arm > 0
    pairs = ((data.values, data.observed), (data.null_values, data.null_observed))
    fit_mixed(long_frame(data.values[0], data.observed[0], treated[0]), data.primary)  # warm-up
    fits, building, fitting = [], 0.0, 0.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(reps):
            start = time.perf_counter()
            frames = [long_frame(v[i], o[i], treated[i]) for v, o in pairs]
            built = time.perf_counter()
            fits.append([fit_mixed(frame, data.primary) for frame in frames])
            building += built - start
            fitting += time.perf_counter() - built
    return building, fitting, np.array(fits), len(caught)


def against_engine(scenario, fits):
    """MixedLM's estimates and SEs (with the effect) against the engine's MMRM on the same trials:
    median absolute difference of the estimates, their correlation, and the median ratio of the SEs."""
    mmrm = cbcp_sim.simulate(scenario, reps=CHUNK_SIZE, seed=SEED).replicates["mmrm"]
    n = len(fits)
    estimate, se = mmrm["estimate"][:n], mmrm["se"][:n]
    return (float(np.median(np.abs(fits[:, 0, 0] - estimate))), float(np.corrcoef(fits[:, 0, 0], estimate)[0, 1]),
            float(np.median(fits[:, 0, 1] / se)))


def closed_form_power(effect_size, n_per_arm, alpha):
    """Power of the pooled two-sided two-sample t-test with ``n_per_arm`` per arm at standardised effect
    ``effect_size`` (noncentral t, statsmodels ``TTestIndPower``)."""
    return float(TTestIndPower().power(effect_size=effect_size, nobs1=n_per_arm, alpha=alpha, ratio=1.0))
