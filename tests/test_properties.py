"""Hypothesis properties of the simulator.

Spec: "hypothesis properties: power does not decrease as n or the effect grows (common random
numbers); scores stay in 0–100; a zero dose has zero treatment effect."

Examples are derandomized (fixed, CI-stable) and few, so the file runs in well under a minute.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import cbcp_sim
from cbcp_sim.models import trial
from cbcp_sim.models.streams import Streams
from cbcp_sim.scenario import scenario_from_dict

from .support import floats, nh_overrides, stable

SEED = 11


#: Schema ranges; ed50's open end near 0 is tested on its own in test_zero_dose_has_zero_effect.
ED50 = floats(1e-6, 100.0)
HILL = floats(0.1, 20.0)
EMAX = floats(-50.0, 50.0)
HALF_LIFE = st.one_of(st.just(math.inf), floats(0.01, 1e6))  # the schema range [0.01, inf]
VISITS = st.sampled_from([([0.0, 1.0, 3.0, 6.0, 12.0], 12.0), ([0.0, 6.0, 24.0], 24.0), ([0.0, 1.0, 240.0], 240.0)])


@st.composite
def ages(draw: st.DrawFn) -> list[float]:
    lo = draw(floats(0.5, 20.9))
    hi = draw(floats(lo, 21.0, exclude_min=True))
    return [lo, hi]


@st.composite
def gmfm66_overrides(draw: st.DrawFn) -> dict[str, Any]:
    """A GMFM-66 scenario with values drawn from the schema's allowed ranges."""
    visits, primary = draw(VISITS)
    source = draw(st.sampled_from(["autologous", "allogeneic"]))
    return {
        "outcome.model": "gmfm66",
        "design.n_per_arm": 5,
        "design.visits": visits,
        "design.primary_visit": primary,
        "population.ages": draw(ages()),
        "population.source": source,
        "population.allogeneic_dose": draw(floats(0.0, 100.0)),
        **draw(nh_overrides()),
        "treatment.dose_response.emax": draw(EMAX),
        "treatment.dose_response.ed50": draw(ED50),
        "treatment.dose_response.hill": draw(HILL),
        "treatment.response_cv": draw(floats(0.0, 5.0)),
        "treatment.persistent_fraction": draw(floats(0.0, 1.0)),
        "treatment.onset_months": draw(floats(0.01, 120.0)),
        "treatment.peak_months": draw(floats(0.0, 120.0, exclude_min=True)),
        "treatment.waning_half_life_months": draw(HALF_LIFE),
    }


def paired_mcse(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean and Monte Carlo SE of the per-replicate difference of reject indicators ``b - a``."""
    d = b.astype(float) - a.astype(float)
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(d.size))


# --- scores stay in 0-100 ------------------------------------------------------------------------------------


@stable(40)
@given(gmfm66_overrides())
def test_scores_stay_in_0_100(overrides):
    """Scores stay in 0-100 (and are finite) for any scenario inside the schema's ranges."""
    scenario = scenario_from_dict({}, overrides)
    data = trial.generate(scenario, 20, Streams(SEED, 0))
    for arr in (data.values, data.null_values):
        assert arr.shape == (20, 10, 2)  # baseline and primary visit, the visits the analyses read
        assert np.isfinite(arr).all()
        assert arr.min() >= 0.0 and arr.max() <= 100.0
    assert np.isfinite(data.under).all()


# --- a zero dose has zero effect -----------------------------------------------------------------------------


@stable(15)
@given(gmfm66_overrides(), st.booleans())
def test_zero_allogeneic_dose_leaves_scores_unchanged(overrides, engine):
    """A zero dose has zero treatment effect: allogeneic dose 0 gives values == null_values and true effect 0."""
    overrides = {**overrides, "population.source": "allogeneic", "population.allogeneic_dose": 0.0,
                 "eligibility.min_dose": 3.0, "dropout.fraction": 0.0}
    scenario = scenario_from_dict({}, overrides)
    data = trial.generate(scenario, 20, Streams(SEED, 0))
    np.testing.assert_array_equal(data.values, data.null_values)
    assert (data.under[1] == data.under[0]).all()
    if engine:
        res = cbcp_sim.simulate(scenario, reps=200, seed=SEED)
        assert res.true_effect == 0.0
        for arrays in res.replicates.values():
            np.testing.assert_array_equal(arrays["reject"], arrays["null_reject"])
            np.testing.assert_array_equal(arrays["estimate"], arrays["null_estimate"])


# --- power does not decrease as the effect or n grows (common random numbers) --------------------------------


def _normal(**overrides: Any) -> cbcp_sim.Scenario:
    base = {"outcome.model": "normal", "dropout.fraction": 0.0, "analysis.secondary": []}
    return scenario_from_dict({}, {**base, **overrides})


@stable(20)
@given(effects=st.lists(floats(-10.0, 10.0), min_size=2, max_size=2).map(sorted),
       analysis=st.sampled_from(["ttest", "welch", "ancova"]), endpoint=st.sampled_from(["change", "final"]),
       n=st.integers(2, 40), sd=floats(0.5, 20.0), correlation=floats(-0.9, 0.9))
def test_power_monotone_in_effect_one_sided_exact(effects, analysis, endpoint, n, sd, correlation):
    """Power does not decrease as the effect grows: normal model, one-sided, no dropout, exactly per replicate."""
    e1, e2 = effects
    common = {"design.sides": 1, "analysis.primary": analysis, "analysis.endpoint": endpoint,
              "design.n_per_arm": n, "outcome.sd": sd, "outcome.correlation": correlation}
    a = cbcp_sim.simulate(_normal(**common, **{"outcome.effect": e1}), reps=1500, seed=SEED)
    b = cbcp_sim.simulate(_normal(**common, **{"outcome.effect": e2}), reps=1500, seed=SEED)
    ra, rb = a.replicates[analysis]["reject"], b.replicates[analysis]["reject"]
    assert not (ra & ~rb).any(), "a replicate rejected with the smaller effect but not with the larger"
    assert b.primary["power"] >= a.primary["power"]
    # The null data are the same trials in both runs.
    np.testing.assert_array_equal(a.replicates[analysis]["null_reject"], b.replicates[analysis]["null_reject"])


@stable(12)
@given(effects=st.lists(floats(0.0, 8.0), min_size=2, max_size=2).map(sorted),
       analysis=st.sampled_from(["ttest", "welch", "ancova"]), n=st.integers(5, 40))
def test_power_monotone_in_effect_two_sided(effects, analysis, n):
    """Power does not decrease as the effect grows (two-sided, normal model): within 3 paired MCSE."""
    e1, e2 = effects
    common = {"design.sides": 2, "analysis.primary": analysis, "design.n_per_arm": n}
    a = cbcp_sim.simulate(_normal(**common, **{"outcome.effect": e1}), reps=2000, seed=SEED)
    b = cbcp_sim.simulate(_normal(**common, **{"outcome.effect": e2}), reps=2000, seed=SEED)
    diff, mcse = paired_mcse(a.replicates[analysis]["reject"], b.replicates[analysis]["reject"])
    assert diff >= -3 * mcse
    assert b.primary["power"] >= a.primary["power"] - 3 * mcse


@stable(6)
@given(emaxes=st.lists(floats(0.0, 12.0), min_size=2, max_size=2).map(sorted),
       analysis=st.sampled_from(["ttest", "ancova"]), sides=st.sampled_from([1, 2]))
def test_power_monotone_in_emax_gmfm66(emaxes, analysis, sides):
    """Power does not decrease as the effect grows (GMFM-66 model, treatment emax): within 3 paired MCSE."""
    lo, hi = emaxes
    common = {"design.n_per_arm": 20, "design.sides": sides, "analysis.primary": analysis,
              "analysis.secondary": [], "population.ages": [2.0, 10.0]}
    a = cbcp_sim.simulate(scenario_from_dict({}, {**common, "treatment.dose_response.emax": lo}),
                          reps=1000, seed=SEED)
    b = cbcp_sim.simulate(scenario_from_dict({}, {**common, "treatment.dose_response.emax": hi}),
                          reps=1000, seed=SEED)
    np.testing.assert_array_equal(a.replicates[analysis]["null_reject"], b.replicates[analysis]["null_reject"])
    diff, mcse = paired_mcse(a.replicates[analysis]["reject"], b.replicates[analysis]["reject"])
    assert diff >= -3 * mcse
    assert b.true_effect >= a.true_effect


@stable(12)
@given(sizes=st.lists(st.integers(10, 60), min_size=2, max_size=2).map(sorted),
       effect=floats(2.0, 4.0), analysis=st.sampled_from(["ttest", "welch", "ancova"]),
       sides=st.sampled_from([1, 2]))
def test_power_monotone_in_n(sizes, effect, analysis, sides):
    """Power does not decrease as n per arm grows (common random numbers keep the first children)."""
    n1, n2 = sizes
    common = {"design.sides": sides, "analysis.primary": analysis, "outcome.effect": effect}
    a = cbcp_sim.simulate(_normal(**common, **{"design.n_per_arm": n1}), reps=2000, seed=SEED)
    b = cbcp_sim.simulate(_normal(**common, **{"design.n_per_arm": n2}), reps=2000, seed=SEED)
    diff, mcse = paired_mcse(a.replicates[analysis]["reject"], b.replicates[analysis]["reject"])
    assert diff >= -3 * mcse
    if n1 == n2:
        assert diff == 0.0
