"""A numpy floor for the default scenario: the same children and the same ANCOVA as the engine, written plainly.

One generator, chunks of 1,000 trials, every draw of the same distribution as the engine's (its own draws, not the
engine's streams): candidates screened in order (uniform ages, sex, GMFCS and topography, weight for age and sex
by interpolation times a log-normal factor, the banked unit's log-normal TNC and Beta post-thaw recovery), the
first eligible children of each trial enrolled; each child's random limit and rate, natural-history curve with
the decline of levels III-V, Ornstein-Uhlenbeck fluctuation and trial effect at months 0 and 12; the gamma
response and the cell effect at month 12 (Emax of the dose, modifiers, time course, ceiling); measurement noise
with its SEM by interpolation, scores kept on the scale; MCAR dropout; the ANCOVA of month 12 on arm and
baseline by closed-form least squares, with the effect and without it. Model values come from the scenario
(:func:`model`); no code of the engine's model is used. ``python -m benchmarks.floor REPS MODEL`` imports numpy
alone and prints power and type I error: the floor of a whole ``cbcp-sim run`` process.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np

from benchmarks.settings import SCENARIO, SEED

CHUNK = 1000


def model(scenario):
    """The numbers of the scenario's model that the floor uses, with the weight-for-age tables and the age at which
    the decline ends, as a JSON object (the floor's process gets them on its command line, so that it imports numpy
    alone)."""
    from cbcp_sim.models.population import WEIGHT_AGES, WEIGHT_MEDIAN_KG
    from cbcp_sim.vocabulary import DECLINE_END_AGE, TOPOGRAPHIES

    p, e, nh, t, d = (scenario.population, scenario.eligibility, scenario.natural_history, scenario.treatment,
                      scenario.design)
    c = scenario.regimens[1].doses[0].course
    return {
        "weight_ages": WEIGHT_AGES.tolist(), "boys_kg": WEIGHT_MEDIAN_KG["boys"].tolist(),
        "girls_kg": WEIGHT_MEDIAN_KG["girls"].tolist(), "decline_end": DECLINE_END_AGE,
        "n": list(d.n_per_arm), "month": d.primary_visit, "dropout": [scenario.dropout.fraction,
                                                                     scenario.dropout.by_month],
        "ages": list(p.ages), "male": p.male_share, "gmfcs_mix": list(p.gmfcs_mix),
        "topography": np.asarray(p.topography).T.tolist(), "weight_factor": list(p.weight_factor),
        "weight_sd": p.weight_sd_log, "tnc": [p.unit_tnc_median, p.unit_tnc_gsd],
        "recovery": [p.recovery_mean, p.recovery_sd], "max_dose": p.max_dose, "eligible_ages": list(e.ages),
        "eligible_gmfcs": list(e.gmfcs),
        "eligible_topographies": [TOPOGRAPHIES.index(k) for k in e.topography], "min_dose": e.min_dose,
        "limit": list(nh.limit), "limit_sd": list(nh.limit_sd), "age90": list(nh.age90), "rate_sd": nh.rate_sd_log,
        "rate_corr": nh.limit_rate_corr, "peak_age": list(nh.peak_age), "decline": list(nh.decline),
        "occasion": [nh.occasion_sd, nh.occasion_months], "trial_effect": [nh.trial_effect_per_year,
                                                                          nh.trial_effect_months],
        "sem": [nh.sem_extreme, nh.sem], "response_cv": t.response_cv, "emax": [c.emax, c.ed50, c.hill],
        "course": [c.peak_months, c.persistent_fraction, c.waning_half_life_months],
        "modifiers": [list(t.modifiers.gmfcs), list(t.modifiers.age_breaks), list(t.modifiers.age_factors)],
        "ceiling": t.ceiling_fraction}


def children(m, rng, reps, n):
    """The first ``n`` eligible of each trial's screened candidates: age, GMFCS (0-based), dose ``(reps, n)``."""
    size = int(n * 1.25) + 8
    lo, hi = m["ages"]
    while True:
        shape = (reps, size)
        age = lo + (hi - lo) * rng.random(shape)
        male = rng.random(shape) < m["male"]
        gmfcs = np.searchsorted(np.cumsum(m["gmfcs_mix"]), rng.random(shape), side="right")
        topography = (rng.random(shape)[..., None] >= np.cumsum(m["topography"], axis=1)[gmfcs][..., :-1]).sum(-1)
        weight = (np.where(male, np.interp(age, m["weight_ages"], m["boys_kg"]),
                           np.interp(age, m["weight_ages"], m["girls_kg"]))
                  * np.asarray(m["weight_factor"])[gmfcs] * np.exp(m["weight_sd"] * rng.standard_normal(shape)))
        tnc = m["tnc"][0] * np.exp(math.log(m["tnc"][1]) * rng.standard_normal(shape))
        mean, sd = m["recovery"]
        k = mean * (1 - mean) / sd**2 - 1
        dose = 10.0 * tnc * rng.beta(mean * k, (1 - mean) * k, shape) / weight
        ok = ((age >= m["eligible_ages"][0]) & (age <= m["eligible_ages"][1]) & np.isin(gmfcs + 1, m["eligible_gmfcs"])
              & np.isin(topography, m["eligible_topographies"]) & (dose >= m["min_dose"]))
        if (ok.sum(axis=1) >= n).all():
            break
        size *= 2  # rare: screen a larger block
    rows = np.argsort(~ok, axis=1, kind="stable")[:, :n]
    return [np.take_along_axis(a, rows, axis=1) for a in (age, gmfcs, np.minimum(dose, m["max_dose"]))]


def trials(m, rng, reps):
    """Scores at baseline and the primary visit with and without the effect ``(reps, N, 2)``, who is seen there
    ``(reps, N)``, and the control arm's size (its children first)."""
    n0, n1 = m["n"]
    n = n0 + n1
    age, g, dose = children(m, rng, reps, n)
    u, w = rng.standard_normal((reps, n)), rng.standard_normal((reps, n))
    p = np.asarray(m["limit"])[g] / 100.0
    s = np.asarray(m["limit_sd"])[g] / (100.0 * p * (1.0 - p))
    limit = 100.0 / (1.0 + np.exp(-(np.log(p / (1.0 - p)) + s * u)))
    rho = m["rate_corr"]
    tau = np.asarray(m["age90"])[g] / math.log(10) * np.exp(-m["rate_sd"] * (rho * u + math.sqrt(1 - rho**2) * w))
    peak, decline = np.asarray(m["peak_age"])[g], np.asarray(m["decline"])[g]
    end = m["decline_end"]
    slope = np.where(decline > 0, (decline + limit * (np.exp(-peak / tau) - np.exp(-end / tau)))
                     / np.maximum(end - peak, 1e-9), 0.0)
    month = m["month"]
    a = age[..., None] + np.array([0.0, month]) / 12.0
    true = limit[..., None] * -np.expm1(-a / tau[..., None]) - slope[..., None] * np.maximum(a - peak[..., None], 0)
    z = rng.standard_normal((reps, n, 2))
    sd, months = m["occasion"]
    r = math.exp(-month / months)
    true[..., 0] += sd * z[..., 0]
    true[..., 1] += sd * (r * z[..., 0] + math.sqrt(1 - r * r) * z[..., 1])
    per_year, effect_months = m["trial_effect"]
    true[..., 1] += per_year * min(month, effect_months) / 12.0
    shape = 1.0 / m["response_cv"] ** 2
    response = rng.gamma(shape, 1.0 / shape, (reps, n))
    emax, ed50, hill = m["emax"]
    at_peak, persistent, half_life = m["course"]
    course = persistent + (1 - persistent) * 2.0 ** (-(month - at_peak) / half_life)
    by_level, breaks, by_age = m["modifiers"]
    factor = np.asarray(by_level)[g] * np.asarray(by_age)[np.searchsorted(breaks, age, side="right")]
    effect = np.minimum(emax / (1.0 + (ed50 / dose) ** hill) * factor * response * course, m["ceiling"] * limit)
    effect[:, :n0] = 0.0
    noise = rng.standard_normal((reps, n, 2))
    edge, mid = m["sem"]

    def observe(x):
        y = x + np.interp(x, (20.0, 30.0, 75.0, 85.0), (edge, mid, mid, edge)) * noise
        lo, hi = y < 5.0, y > 95.0
        y[lo] = 5.0 * np.exp(y[lo] / 5.0 - 1.0)
        y[hi] = 100.0 - 5.0 * np.exp((100.0 - y[hi]) / 5.0 - 1.0)
        return y

    null = observe(true)
    true[..., 1] += effect
    fraction, by_month = m["dropout"]
    seen = rng.exponential(by_month / -math.log1p(-fraction), (reps, n)) > month
    return observe(true), null, seen, n0


def ancova(scores, seen, n0):
    """Closed-form OLS of month 12 on arm and baseline among completers: estimate, SE and df per trial."""
    w = seen.astype(float)
    x, y = scores[..., 0] * w, scores[..., 1] * w
    arms = (slice(None, n0), slice(n0, None))
    k = [w[:, a].sum(axis=1) for a in arms]
    mx = [x[:, a].sum(axis=1) / k[i] for i, a in enumerate(arms)]
    my = [y[:, a].sum(axis=1) / k[i] for i, a in enumerate(arms)]
    dx = [(x[:, a] - mx[i][:, None]) * w[:, a] for i, a in enumerate(arms)]
    dy = [(y[:, a] - my[i][:, None]) * w[:, a] for i, a in enumerate(arms)]
    sxx = sum((d * d).sum(axis=1) for d in dx)
    sxy = sum((a * b).sum(axis=1) for a, b in zip(dx, dy, strict=True))
    syy = sum((d * d).sum(axis=1) for d in dy)
    b = sxy / sxx
    df = k[0] + k[1] - 3
    sigma2 = (syy - b * sxy) / df
    diff = mx[1] - mx[0]
    return my[1] - my[0] - b * diff, np.sqrt(sigma2 * (1 / k[0] + 1 / k[1] + diff**2 / sxx)), df


def critical(df, z=1.959963984540054):
    """Two-sided 5% critical values of Student's t with ``df`` degrees of freedom: the Cornish-Fisher expansion
    about the normal quantile ``z`` (error under 1e-7 at the df of tens here)."""
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
            + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * df**4))


def run(m, reps, seed=SEED):
    """Power and type I error (two-sided, 5%) of ``reps`` trials of the model ``m`` (:func:`model`)."""
    rng = np.random.default_rng(seed)
    rejected = np.zeros(2)
    for start in range(0, reps, CHUNK):
        alt, null, seen, n0 = trials(m, rng, min(CHUNK, reps - start))
        for i, scores in enumerate((alt, null)):
            est, se, df = ancova(scores, seen, n0)
            rejected[i] += (np.abs(est / se) > critical(df)).sum()
    return rejected / reps


def main():
    """``python -m benchmarks.floor [REPS [MODEL]]``: MODEL the JSON of :func:`model`, else the default scenario's
    (read through :mod:`cbcp_sim.scenario`)."""
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    if len(sys.argv) > 2:
        m = json.loads(sys.argv[2])
    else:
        from cbcp_sim.scenario import load_scenario

        m = model(load_scenario(SCENARIO))
    power, type1 = run(m, reps)
    print(f"power {power:.4f}, type I error {type1:.4f} over {reps:,} trials")


if __name__ == "__main__":
    main()
