"""Type I error of each analysis under no effect lies within the 99% Monte Carlo band around alpha."""

from __future__ import annotations

import math

import pytest

import cbcp_sim

Z99 = 2.5758293035489


def _band(alpha: float, reps: int) -> float:
    return Z99 * math.sqrt(alpha * (1 - alpha) / reps)


@pytest.mark.parametrize("analysis", ["ttest", "welch", "ancova"])
@pytest.mark.parametrize(("n0", "n1", "sides", "alpha"), [(20, 20, 2, 0.05), (30, 60, 1, 0.025), (50, 35, 2, 0.10)])
def test_normal_model_type1_error(analysis, n0, n1, sides, alpha):
    reps = 20_000
    scenario = cbcp_sim.scenario_from_dict({
        "outcome": {"model": "normal", "effect": 0.0, "correlation": 0.6},
        "design": {"n_per_arm": [n0, n1], "sides": sides, "alpha": alpha},
        "dropout": {"fraction": 0.15},
        "analysis": {"primary": analysis},
    })
    row = cbcp_sim.simulate(scenario, reps=reps, seed=21).primary
    assert row["n_failed"] == 0
    assert abs(row["power"] - alpha) <= _band(alpha, reps)
    assert abs(row["type1_error"] - alpha) <= _band(alpha, reps)


@pytest.mark.parametrize("analysis", ["ttest", "welch", "ancova"])
@pytest.mark.parametrize("sides", [1, 2])
def test_gmfm66_default_design_type1_error(analysis, sides):
    """The default GMFM-66 trial (skewed mixture of GMFCS levels, 5% dropout), no effect."""
    reps = 20_000
    scenario = cbcp_sim.load_scenario(
        "scenarios/default.toml",
        {"analysis.primary": analysis, "analysis.secondary": [], "design.sides": sides},
    )
    alpha = scenario.design.alpha
    row = cbcp_sim.simulate(scenario, reps=reps, seed=22).primary
    assert abs(row["type1_error"] - alpha) <= _band(alpha, reps)
