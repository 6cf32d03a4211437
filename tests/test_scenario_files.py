"""Every scenario in scenarios/ loads, runs end to end at low replicates under each of its effect hypotheses and
reports each comparison."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import cbcp_sim
from cbcp_sim.run.comparisons import comparisons
from cbcp_sim.scenario import load_scenario

SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.toml"))
#: Each scenario file under each of its [effects] (None: a file without any).
CASES = [(p, name) for p in SCENARIOS for name in ([n for n, _ in load_scenario(p).effects] or [None])]


def test_there_are_scenarios_of_every_design_kind():
    kinds = {load_scenario(p).design.kind for p in SCENARIOS}
    assert kinds == {"parallel", "crossover", "single_arm"}


@pytest.mark.parametrize(("path", "effect"), CASES, ids=[f"{p.stem}-{e}" if e else p.stem for p, e in CASES])
def test_scenario_runs_with_a_row_per_analysis_and_comparison(path, effect):
    """Each file runs (500 replicates) under each effect and gives one finite power and type I error per analysis x
    comparison; the primary comparisons analyse every trial, a small dose stratum may be too small in a few."""
    s = load_scenario(path, effect=effect)
    result = cbcp_sim.simulate(s, reps=500, seed=3)
    expected = {(a, c.label) for c in comparisons(s) for a in s.analyses}
    assert {(r["analysis"], r["comparison"]) for r in result.rows} == expected
    for r in result.rows:
        assert math.isfinite(r["power"]) and math.isfinite(r["type1_error"]), r
        assert r["n_failed"] == 0 if r["role"] == "primary" else r["n_failed"] < 50, r
