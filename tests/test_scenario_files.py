"""Every scenario in scenarios/ loads, runs end to end at low replicates and reports each comparison."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import cbcp_sim
from cbcp_sim.designs.comparisons import comparisons
from cbcp_sim.scenario import load_scenario

SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.toml"))


def test_there_are_scenarios_of_every_design_kind():
    kinds = {load_scenario(p).design.kind for p in SCENARIOS}
    assert kinds == {"parallel", "crossover", "single_arm"}


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_runs_with_a_row_per_analysis_and_comparison(path):
    """Each file runs (500 replicates) and gives one finite power and type I error per analysis x comparison."""
    s = load_scenario(path)
    result = cbcp_sim.simulate(s, reps=500, seed=3)
    expected = {(a, c.label) for c in comparisons(s) for a in s.analyses}
    assert {(r["analysis"], r["comparison"]) for r in result.rows} == expected
    for r in result.rows:
        assert math.isfinite(r["power"]) and math.isfinite(r["type1_error"]), r
        assert r["n_failed"] < 25, r
