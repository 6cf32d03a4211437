"""Simulated power of the plain normal model against closed-form power (issue 2 checks).

"With outcome.model = 'normal': simulated power agrees with the closed-form t-test power (scipy or
statsmodels) within 3 MCSE for a grid of n per arm, effect sizes and allocations, both sides; ANCOVA
power agrees with the t-test power at the reduced variance sd^2(1 - rho^2) (Borm et al. 2007
approximation) within 3 MCSE plus its known bias."
"""

from __future__ import annotations

import math

import pytest

import cbcp_sim
from cbcp_sim.analysis.metrics import wilson
from tests.reference import ancova_power_borm, ancova_power_exact, ttest_power, welch_power

REPS = 4000
GRID = [  # (n control, n active, effect in SD units, sides)
    (20, 20, 0.8, 2),
    (36, 36, 0.5, 2),
    (30, 45, 0.6, 2),
    (50, 25, 0.5, 1),
    (15, 30, 0.9, 1),
    (60, 60, 0.3, 1),
    (80, 40, 0.4, 2),
]


def _normal(n0: int, n1: int, effect: float, sides: int, analysis: str, endpoint: str = "change",
            sd: float = 2.0, correlation: float = 0.5, alpha: float = 0.05) -> cbcp_sim.Scenario:
    return cbcp_sim.scenario_from_dict({
        "outcome": {"model": "normal", "sd": sd, "effect": effect * sd, "correlation": correlation},
        "design": {"n_per_arm": [n0, n1], "alpha": alpha, "sides": sides},
        "dropout": {"fraction": 0.0},
        "analysis": {"primary": analysis, "endpoint": endpoint},
    })


@pytest.mark.parametrize(("n0", "n1", "effect", "sides"), GRID)
@pytest.mark.parametrize("endpoint", ["change", "final"])
def test_ttest_power_matches_closed_form(n0, n1, effect, sides, endpoint):
    """Pooled t-test on change (SD sd*sqrt(2(1 - rho))) or on the final score (SD sd)."""
    sd, rho = 2.0, 0.3
    result = cbcp_sim.simulate(_normal(n0, n1, effect, sides, "ttest", endpoint, sd, rho), reps=REPS, seed=11)
    sd_endpoint = sd * math.sqrt(2 * (1 - rho)) if endpoint == "change" else sd
    expected = ttest_power(effect * sd, sd_endpoint, n0, n1, 0.05, sides)
    row = result.primary
    assert abs(row["power"] - expected) <= 3 * row["mcse"], (row["power"], expected, row["mcse"])


@pytest.mark.parametrize(("n0", "n1", "effect", "sides"), GRID)
def test_welch_power_matches_closed_form(n0, n1, effect, sides):
    result = cbcp_sim.simulate(_normal(n0, n1, effect, sides, "welch", "final"), reps=REPS, seed=12)
    expected = welch_power(effect * 2.0, 2.0, n0, n1, 0.05, sides)
    row = result.primary
    assert abs(row["power"] - expected) <= 3 * row["mcse"], (row["power"], expected, row["mcse"])


@pytest.mark.parametrize(("n0", "n1", "effect", "sides"), GRID)
@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_ancova_power_matches_borm_and_exact(n0, n1, effect, sides, rho):
    """Within 3 MCSE of the exact power, and of Borm's approximation plus its known bias."""
    sd = 2.0
    result = cbcp_sim.simulate(_normal(n0, n1, effect, sides, "ancova", "change", sd, rho), reps=REPS, seed=13)
    row = result.primary
    exact = ancova_power_exact(effect * sd, sd, rho, n0, n1, 0.05, sides)
    borm = ancova_power_borm(effect * sd, sd, rho, n0, n1, 0.05, sides)
    assert abs(row["power"] - exact) <= 3 * row["mcse"], (row["power"], exact, row["mcse"])
    assert abs(row["power"] - borm) <= 3 * row["mcse"] + abs(borm - exact), (row["power"], borm, exact)


def test_borm_bias_is_small_and_positive():
    """The Borm approximation slightly overstates ANCOVA power (one df and the covariate imbalance)."""
    exact = ancova_power_exact(1.0, 2.0, 0.5, 20, 20, 0.05, 2)
    borm = ancova_power_borm(1.0, 2.0, 0.5, 20, 20, 0.05, 2)
    assert 0 < borm - exact < 0.02


@pytest.mark.parametrize(("effect", "n_per_arm"), [(1.4, 243), (2.0, 119), (3.3, 44), (4.0, 30)])
def test_reference_power_table(effect, n_per_arm):
    """Power table of the project's planning notes: SD of 12-month change 5.5, alpha 0.05 two-sided, 80% power
    at these n per arm.

    The default normal model (sd 5.5, correlation 0.5) has exactly that SD of change.
    """
    scenario = cbcp_sim.scenario_from_dict({
        "outcome": {"model": "normal", "effect": effect},
        "design": {"n_per_arm": n_per_arm},
        "dropout": {"fraction": 0.0},
        "analysis": {"primary": "ttest"},
    })
    expected = ttest_power(effect, 5.5, n_per_arm, n_per_arm, 0.05, 2)
    assert 0.79 <= expected <= 0.82
    row = cbcp_sim.simulate(scenario, reps=REPS, seed=14).primary
    assert abs(row["power"] - expected) <= 3 * row["mcse"]


def test_normal_model_estimates_are_unbiased_with_nominal_coverage():
    result = cbcp_sim.simulate(_normal(30, 30, 0.5, 2, "ancova"), reps=REPS, seed=15)
    row = result.primary
    assert row["true_effect"] == pytest.approx(1.0)
    assert abs(row["bias"]) <= 3 * row["bias_mcse"]
    assert abs(row["coverage"] - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / REPS)
    assert row["mean_se"] == pytest.approx(row["empirical_se"], rel=0.05)


def test_dropout_reduces_power_as_fewer_children_are_analysed():
    """MCAR dropout of 30% by month 12: power equals t-test power at the completers' expected n (approx)."""
    base = _normal(40, 40, 0.6, 2, "ttest", "final")
    full = cbcp_sim.simulate(base, reps=REPS, seed=16).primary
    lossy = cbcp_sim.simulate(base.replace({"dropout.fraction": 0.3}), reps=REPS, seed=16).primary
    assert lossy["power"] < full["power"] - 3 * math.hypot(lossy["mcse"], full["mcse"])
    expected = ttest_power(1.2, 2.0, 28, 28, 0.05, 2)
    assert abs(lossy["power"] - expected) <= 3 * lossy["mcse"] + 0.01


@pytest.mark.parametrize("n", [10, 1000, 10_000, 123_457])
def test_a_wilson_interval_holds_its_proportion_at_zero_and_all_successes(n):
    """Rounding alone must not put a bound beyond 0 or n successes (the plots draw p minus its bounds)."""
    low, high = wilson(0, n)
    assert low == 0.0 < high
    low, high = wilson(n, n)
    assert low < high == 1.0
