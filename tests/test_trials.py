"""The published trials as scenarios: each header states its sources, assumptions and effects, the effects hit the
sizes the headers say they were tuned to, and the table of powers in docs/scenarios.md agrees with a fresh run (every
scenario runs under each of its effects in test_scenario_files.py)."""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path
from typing import Any

import pytest

import cbcp_sim
from cbcp_sim.scenario import load_scenario

from .test_docs import SCENARIOS_PAGE, _docs_builder

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
REPS, SEED = 1000, 1
#: The published trials, in the order of docs/scenarios.md (docs/build.py).
TRIALS = _docs_builder().TRIALS
#: Effects tuned to a published size (scenario, effect, analysis, comparison) -> true effect at the primary visit,
#: as each scenario's header states.
TUNED = {
    ("lee2012_single_arm", "reported", "above_expected", "cord blood vs expected"): 0.25 * 4.3,
    ("nguyen2017_bmmnc_two_doses", "reported", "before_after", "BM-MNC vs expected"): 1.25,
    ("pla_ucmsc_courses", "reported", "before_after", "UC-MSC vs expected"): 4.4,
    ("pla_ucmsc_courses", "pooled", "before_after", "UC-MSC vs expected"): 1.4,
    ("sun2017_duke_crossover", "reported", "ancova", "cells first vs placebo first"): 7.5 - 6.9,
    ("sun2017_duke_crossover", "subgroup", "ancova", "cells first dose >= 2 vs placebo first"): 4.3,
    ("royan_pooled_three_arm", "pooled", "ancova", "UCB-MNC vs sham"): 1.42,
    ("royan_pooled_three_arm", "pooled", "ancova", "UCT-MSC vs sham"): 1.4,
    ("repeat_dose", "pooled", "ancova", "single dose vs sham"): 1.42,
    ("hybrid_control", "pooled", "ancova", "cord blood vs sham"): 1.42,
}


@functools.cache
def _rows(name: str, effect: str | None) -> tuple[dict[str, Any], ...]:
    scenario = load_scenario(SCENARIOS / f"{name}.toml", effect=effect)
    return tuple(cbcp_sim.simulate(scenario, reps=REPS, seed=SEED).rows)


def _row(name: str, effect: str, analysis: str, comparison: str) -> dict[str, Any]:
    (row,) = [r for r in _rows(name, effect) if r["analysis"] == analysis and r["comparison"] == comparison]
    return row


def _effects(name: str) -> list[str]:
    return [effect for effect, _ in load_scenario(SCENARIOS / f"{name}.toml").effects]


def test_every_published_trial_is_listed_and_has_both_effects():
    assert set(TRIALS) == ({p.stem for p in SCENARIOS.glob("*.toml")}
                           - {"allogeneic_three_doses", "autologous_dose_variation", "default", "group_sequential",
                              "mnar_dropout", "pilot_mvn", "registry_calibrated"})
    for name in TRIALS:
        assert {"reported", "pooled"} <= set(_effects(name)), name


@pytest.mark.parametrize("name", TRIALS)
def test_header_cites_the_study_and_states_assumptions_and_effects(name):
    text = (SCENARIOS / f"{name}.toml").read_text()
    header = text[: text.index("title =")]
    assert all(line.startswith("#") or not line.strip() for line in header.splitlines())
    assert re.search(r"(19|20)\d\d", header), "no year of a cited study"
    assert "docs/references.md" in header and re.search(r"\[[A-Z][^\]]* (19|20)\d\d\]", header), "no [Author Year] key"
    assert "Assumptions:" in header or "ASSUMPTION" in header
    for effect in _effects(name):
        assert f"  - {effect}:" in header, f"effect {effect} not explained"


@pytest.mark.parametrize(("key", "target"), TUNED.items(), ids=["-".join(k[:2]) + f"-{k[3]}" for k in TUNED])
def test_effects_have_the_size_they_were_tuned_to(key, target):
    """The true effect (mean over the simulated children of treated minus untreated) at the primary visit within
    3% of the published size the header names."""
    name, effect, analysis, comparison = key
    got = _row(name, effect, analysis, comparison)["true_effect"]
    assert got == pytest.approx(target, rel=0.03), (key, got)


def test_planned_repeat_dose_uses_the_royan_ucb_mnc_effect_as_reported():
    single = _row("repeat_dose", "reported", "ancova", "single dose vs sham")["true_effect"]
    royan = _row("royan_pooled_three_arm", "reported", "ancova", "UCB-MNC vs sham")["true_effect"]
    assert single == pytest.approx(royan, rel=0.03)


def _table_cells(name: str) -> list[str]:
    (line,) = [x for x in SCENARIOS_PAGE.splitlines() if x.startswith(f"| `{name}.toml` |")]
    return [c.strip() for c in line.strip("|").split("|")]


def _by_arm(cell: str) -> dict[str, float]:
    return {arm: float(value) for arm, value in re.findall(r"(\S[^;]*?) (\d\.\d\d)(?:;|$)", cell)}


def _agree(shown: float, fresh: float) -> bool:
    """The table's figure (10,000 trials, to 2 decimals) within 4 MCSE of a 1,000-trial run, plus rounding."""
    return abs(shown - fresh) <= 4.0 * math.sqrt(max(fresh * (1.0 - fresh), 1.0 / REPS) / REPS) + 0.005


@pytest.mark.parametrize("name", TRIALS)
def test_trials_table_agrees_with_a_fresh_run(name):
    cells = _table_cells(name)
    assert cells[2] == load_scenario(SCENARIOS / f"{name}.toml").analysis.primary
    for column, effect, key in ((3, "reported", "power"), (4, "pooled", "power"), (5, "reported", "type1_error")):
        fresh = {r["comparison"].split(" vs ")[0]: r[key] for r in _rows(name, effect) if r["role"] == "primary"}
        shown = _by_arm(cells[column])
        assert shown.keys() == fresh.keys(), (cells[column], fresh)
        for arm, value in shown.items():
            assert _agree(value, fresh[arm]), (name, effect, key, arm, value, fresh[arm])
