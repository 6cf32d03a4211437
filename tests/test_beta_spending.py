"""Futility bounds from beta spending in a scenario (``sequential.beta_spending``, ``beta_spending_parameter``,
``beta``), against R rpact 3.3.4 (tests/fixtures/rpact/spending.json, made by spending.R):

- the bounds the monitoring applies to a trial at the planned fractions are rpact's ``getDesignGroupSequential``
  criticalValues and futilityBounds (20 designs: four beta-spending families, binding and non-binding);
- simulated trials on the normal model stop for futility at each look as often as rpact's ``futilityPerStage``
  (getPowerMeans) says, under H0 and at the design's drift (power 1 - beta), within 3 MCSE;
- the scenario's checks: one-line errors naming the field.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from cbcp_sim.errors import ScenarioError
from cbcp_sim.run import engine
from cbcp_sim.run.monitoring import bounds, futility_bounds
from cbcp_sim.run.result import SimulationResult
from cbcp_sim.scenario import Scenario, default_scenario_path, load_scenario

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "rpact" / "spending.json").read_text())
DESIGNS = {case["name"]: case for case in FIXTURE["designs"] if "beta_spending" in case}
NORMAL = {"outcome.model": "normal", "analysis.primary": "ttest", "analysis.secondary": [], "design.sides": 1,
          "design.alpha": 0.025, "operations.enabled": True}


def scenario(name: str, overrides: dict | None = None) -> Scenario:
    """The fixture design ``name`` as a scenario with interims at its planned fractions (information timing)."""
    case = DESIGNS[name]
    keys = {"sequential.interims": case["info"][:-1], "sequential.spending": case["spending"],
            "sequential.beta_spending": case["beta_spending"], "sequential.beta": case["beta"],
            "sequential.binding": case["binding"]}
    if case["spending_parameter"] is not None:
        keys["sequential.spending_parameter"] = case["spending_parameter"]
    if case.get("beta_spending_parameter") is not None:
        keys["sequential.beta_spending_parameter"] = case["beta_spending_parameter"]
    return load_scenario(default_scenario_path(), {**NORMAL, **keys, **(overrides or {})})


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_bounds_at_planned_fractions_match_rpact(name):
    """Largest differences over the 20 designs: efficacy bounds 4.3e-8, futility bounds 2.7e-8."""
    case = DESIGNS[name]
    s = scenario(name)
    eff, fut = bounds(s, np.array([case["info"]]))
    np.testing.assert_allclose(eff[0], case["critical_z"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(fut[0, :-1], case["futility_z"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(futility_bounds(s), case["futility_z"], rtol=0, atol=1e-6)
    assert fut[0, -1] == -np.inf


# ---- Monte Carlo: stops for futility per look ----------------------------------------------------------------------

#: t-test of the change (SD 5.5), 100 per arm, no dropout or missed visit: the interims at 0.3, 0.55 and 0.8 fall on
#: the 60th, 110th and 160th of 200 primary visits, the planned fractions exactly. The effect gives the design's
#: drift (rpact sqrt(shift)) at the final look; the same trials without it are H0.
N_ARM = 100
MC_REPS = 4000
MC_RUNS = {"kim-demets_bskim-demets2_K4u_binding": 5, "pocock_bspocock_K4u_nonbinding": 7}


@functools.cache
def mc_run(name: str) -> SimulationResult:
    effect = DESIGNS[name]["drift"] * 5.5 * math.sqrt(2.0 / N_ARM)
    s = scenario(name, {"design.n_per_arm": N_ARM, "outcome.effect": effect, "outcome.sd": 5.5,
                        "outcome.correlation": 0.5, "dropout.fraction": 0.0, "operations.missed_visit": 0.0})
    return engine.simulate(s, MC_REPS, MC_RUNS[name])


@pytest.mark.parametrize("name", sorted(MC_RUNS))
def test_simulated_futility_stops_match_rpact(name):
    """Stops for futility at each interim within 3 MCSE of rpact's futilityPerStage, under H1 (the design's drift)
    and H0. Observed (sim - rpact) / MCSE: kim-demets binding H1 -0.5, 0.2, -0.2 and H0 2.0, -0.7, -0.9; pocock
    non-binding H1 0.5, -0.9, 0.4 and H0 -0.8, -0.2, 1.6. The z's come from t-tests (df 58 at the first interim):
    the marginal t-versus-z shift of these stops is at most 0.003 (noncentral t), a quarter of 3 MCSE."""
    case = DESIGNS[name]
    seq = mc_run(name).sequential
    np.testing.assert_allclose(seq["look_fraction"], case["info"], rtol=0, atol=1e-9)
    assert seq["look_held"] == [1.0] * 4
    assert seq["beta_spending"] == case["beta_spending"] and seq["beta"] == case["beta"]
    np.testing.assert_allclose(seq["futility_z"], case["futility_z"], rtol=0, atol=1e-6)
    rpact = {c["drift"]: c["futility"] for c in FIXTURE["power"] if c["design"] == name}
    for prefix, drift in (("", case["drift"]), ("null_", 0)):
        simulated = np.asarray(seq[f"{prefix}stop_futility"])
        expected = np.asarray(rpact[drift])
        mcse = np.sqrt(expected * (1.0 - expected) / MC_REPS)
        assert np.all(np.abs(simulated[:-1] - expected) <= 3.0 * mcse), (prefix, simulated, expected, mcse)
        assert simulated[-1] == 0.0


# ---- the scenario's checks -----------------------------------------------------------------------------------------

BASE = {"operations.enabled": True, "sequential.interims": [0.5], "sequential.beta_spending": "obf"}


def test_defaults_and_typed_bounds_unchanged():
    s = load_scenario(default_scenario_path(), {"operations.enabled": True, "sequential.interims": [0.5],
                                                "sequential.futility": [0.1]})
    assert s.sequential.beta_spending == "none" and s.sequential.beta == 0.2
    assert futility_bounds(s) == (0.1,)


@pytest.mark.parametrize(("overrides", "field", "fragment"), [
    ({"sequential.futility": [0.0]}, "sequential.futility", "and sequential.beta_spending both set futility bounds"),
    ({"sequential.timing": "calendar", "sequential.interims": [20.0]}, "sequential.beta_spending",
     "timing 'information'"),
    ({"sequential.interims": []}, "sequential.beta_spending", "needs interim looks"),
    ({"sequential.beta_spending": "kim-demets"}, "sequential.beta_spending", "needs beta_spending_parameter"),
    ({"sequential.beta_spending": "hsd", "sequential.beta_spending_parameter": 7}, "sequential.beta_spending_parameter",
     "[-10, 5]"),
    ({"sequential.beta_spending_parameter": 2}, "sequential.beta_spending_parameter", "used only by"),
    ({"sequential.beta_spending": "none", "sequential.beta_spending_parameter": 2},
     "sequential.beta_spending_parameter", "used only with beta_spending kim-demets or hsd"),
    ({"sequential.beta": 0.5}, "sequential.beta", "(0, 0.5)"),
    ({"sequential.beta_spending": "fast"}, "sequential.beta_spending", "one of 'none', 'obf'"),
])
def test_errors_name_the_field(overrides, field, fragment):
    with pytest.raises(ScenarioError) as err:
        load_scenario(default_scenario_path(), {**BASE, **overrides})
    assert err.value.path == field
    assert fragment in err.value.message
    assert "\n" not in str(err.value)
