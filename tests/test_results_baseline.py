"""The results baseline: key outputs of every bundled scenario at fixed seeds equal the stored ones exactly, so a
change of results is always deliberate (regenerate with ``python -m tests.baseline.results`` after raising
``RESULTS_VERSION``)."""

from __future__ import annotations

import json

import pytest

from tests.baseline import results as baseline

STORED = json.loads(baseline.STORED.read_text())


def test_baseline_made_under_this_results_version():
    assert STORED["results_version"] == baseline.RESULTS_VERSION
    assert (STORED["reps"], STORED["seed"]) == (baseline.REPS, baseline.SEED)


def test_every_bundled_scenario_and_effect_in_the_baseline():
    assert sorted(STORED["cases"]) == sorted(baseline.label(n, e) for n, e in baseline.cases())


@pytest.mark.parametrize("name, effect", baseline.cases(), ids=lambda v: str(v))
def test_scenario_results_unchanged(name, effect):
    fresh, stored = baseline.key_outputs(name, effect), STORED["cases"][baseline.label(name, effect)]
    assert baseline.canonical(fresh) == baseline.canonical(stored), (fresh, stored)


def test_trajectories_and_timeline_unchanged():
    fresh = baseline.explored()
    assert baseline.canonical(fresh) == baseline.canonical(STORED["explore"]), fresh
