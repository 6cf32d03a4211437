"""Randomised doses or natural variation: :mod:`cbcp_sim.planning.dose_compare` and ``cbcp-sim dose-compare``
(docs/dose.md).

By construction: the natural-variation design matches the randomised one, arm for arm, and at one seed every child
is the randomised design's (age, GMFCS, weight, untreated GMFM-66, dropout). The blocks carry each design's own
run; the children needed rise with the target power; the JSON fields are stable; bad input is a one-line error.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import cbcp_sim
from cbcp_sim.errors import ScenarioError
from cbcp_sim.models import trial
from cbcp_sim.models.streams import Streams
from cbcp_sim.planning import dose_compare as dc
from cbcp_sim.run.settings import RunSettings

from .support import assert_one_line_error, cli

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "allogeneic_three_doses.toml"
DESIGN_FIELDS = {"title", "arms", "n_per_arm", "total", "test", "power", "power_mcse", "type1", "type1_mcse",
                 "estimate", "true_value", "mean_estimate", "bias", "bias_mcse", "rmse", "n_estimates", "needed"}


@pytest.fixture(scope="module")
def randomised():
    return cbcp_sim.load_scenario(SCENARIO).replace({"design.n_per_arm": [12, 12, 12, 12]})


def test_natural_design_matches_the_randomised_one(randomised):
    natural = dc.natural_design(randomised)
    names = tuple(f"{dc.TREATED} {i}" for i in (1, 2, 3))
    assert natural.design.arms == ("sham", *names) and natural.design.n_per_arm == (12, 12, 12, 12)
    assert natural.population.source == "autologous" and natural.eligibility.min_dose == 0.0
    assert natural.analysis.dose_slope and not natural.analysis.dose_response_models
    for section in ("natural_history", "treatment", "dropout"):
        assert getattr(natural, section) == getattr(randomised, section)
    assert natural.design.visits == randomised.design.visits and natural.regimens[0] == randomised.regimens[0]
    assert all(r.doses[0].dose is None for r in natural.regimens[1:])  # each child's own dose
    assert len({r.doses for r in natural.regimens[1:]}) == 1  # the same regimen: one pooled dose slope
    with pytest.raises(ScenarioError, match="design"):
        dc.natural_design(cbcp_sim.load_scenario(SCENARIO.with_name("default.toml")))


def test_every_child_is_the_same(randomised):
    natural = dc.natural_design(randomised)
    a, b = (trial.generate(s, 7, Streams(3, 0)) for s in (randomised, natural))
    for key in ("age", "gmfcs", "weight"):
        np.testing.assert_array_equal(a.covariates[key], b.covariates[key])
    np.testing.assert_array_equal(a.under[-1], b.under[-1])  # untreated at the primary visit
    n = randomised.design.n_per_arm[0]
    np.testing.assert_array_equal(a.values[:, :n], b.values[:, :n])  # sham: every score
    np.testing.assert_array_equal(a.observed, b.observed)  # dropout
    np.testing.assert_array_equal(b.dose_grid, b.covariates["dose"][:, n:])  # every treated child, pooled
    assert np.ptp(b.covariates["dose"][:, n:], axis=1).min() > 0.5  # own doses: they vary between children


def test_blocks_are_each_designs_own_run(randomised):
    settings = RunSettings(reps=40, seed=2, progress=False)
    out = dc.dose_compare(settings=settings, scenario=randomised, target=None)
    blocks = out.to_json()
    assert set(blocks) == {"kind", "reps", "seed", "target", "max_total", "randomised", "natural"}
    assert blocks["kind"] == "dose-compare" and blocks["target"] is None
    assert set(blocks["randomised"]) == DESIGN_FIELDS | {"doses"}
    assert set(blocks["natural"]) == DESIGN_FIELDS | {"unadjusted_bias", "unadjusted_bias_mcse"}
    alone = cbcp_sim.simulate(randomised, settings=settings).dose_response
    assert blocks["randomised"]["power"] == alone["power"] and blocks["randomised"]["bias"] == alone["td_bias"]
    alone = cbcp_sim.simulate(dc.natural_design(randomised), settings=settings).dose_slope
    assert blocks["natural"]["power"] == alone["adjusted"]["power"]
    assert blocks["natural"]["true_value"] == alone["true_slope"]
    assert blocks["randomised"]["total"] == blocks["natural"]["total"] == 48
    assert blocks["randomised"]["needed"] is None and "children for power" not in str(out)
    again = dc.dose_compare(6, settings, scenario=randomised, target=None).to_json()
    assert again["randomised"]["n_per_arm"] == again["natural"]["n_per_arm"] == [6] * 4


def test_children_needed_rise_with_the_target():
    natural = dc.natural_design(cbcp_sim.load_scenario(SCENARIO).replace({"treatment.dose_response.emax": 20.0}))
    settings = RunSettings(reps=200, seed=4, progress=False)
    first = cbcp_sim.simulate(natural, settings=settings)
    needed = [dc._needed(natural, "natural", settings, target, 4000, first) for target in (0.5, 0.9)]
    assert needed[0]["total"] < needed[1]["total"]
    for x, target in zip(needed, (0.5, 0.9), strict=True):
        assert x["total"] == sum(x["n_per_arm"]) and len(set(x["n_per_arm"])) == 1
        assert x["fitted_power"] >= target and abs(x["power"] - target) < 0.1
    assert dc._needed(natural, "natural", settings, 0.9, 60, first) is None  # not reached within 60 children


def test_cli_json_and_errors(capsys):
    code, out, err = cli(capsys, "dose-compare", "--n", "8", "--reps", "30", "--target", "0", "--jobs", "1",
                         "--json")
    assert code == 0, err
    blocks = json.loads(out)
    assert blocks["randomised"]["n_per_arm"] == [8] * 4 and blocks["natural"]["arms"][1] == f"{dc.TREATED} 1"
    code, out, err = cli(capsys, "dose-compare", "--n", "8", "--reps", "30", "--target", "0", "--jobs", "1")
    assert code == 0, err
    assert "randomised:" in out and "natural:" in out and "adjusted slope" in out
    code, out, err = cli(capsys, "dose-compare", "--n", "1", "--reps", "30")
    assert_one_line_error(code, out, err, "--n")
    code, out, err = cli(capsys, "dose-compare", "default", "--reps", "30")
    assert_one_line_error(code, out, err, "analysis.dose_response_models")
    code, out, err = cli(capsys, "dose-compare", "--reps", "30", "--target", "1.5")
    assert_one_line_error(code, out, err, "--target")
