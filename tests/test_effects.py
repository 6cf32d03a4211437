"""Named effect hypotheses: ``[effects.<name>]`` tables, ``--effect NAME`` on the CLI, ``Scenario.with_effect``."""

from __future__ import annotations

import json

import pytest

from cbcp_sim.errors import ScenarioError
from cbcp_sim.scenario import load_scenario, scenario_from_dict

from .support import assert_one_line_error, cli

TWO = """
title = "two effects"
[treatment]
dose_response = { model = "emax", emax = 4.0, ed50 = 3.0, hill = 2.0 }

[effects.reported]

[effects.large]
"treatment.dose_response.emax" = 9.0
"design.n_per_arm" = 20
"""


@pytest.fixture
def two(tmp_path):
    path = tmp_path / "two.toml"
    path.write_text(TWO)
    return path


def test_an_effect_applies_its_values_and_an_empty_one_is_the_file(two):
    base, reported, large = (load_scenario(two, effect=e) for e in (None, "reported", "large"))
    assert reported == base
    assert large.treatment.dose_response.emax == 9.0 and large.design.n_per_arm == (20, 20)
    assert large.treatment.dose_response.ed50 == 3.0
    assert base.with_effect("large") == large
    assert [name for name, _ in base.effects] == ["reported", "large"]


def test_settings_win_over_the_effect(two):
    s = load_scenario(two, {"treatment.dose_response.emax": 2.0}, effect="large")
    assert s.treatment.dose_response.emax == 2.0 and s.design.n_per_arm == (20, 20)


def test_effects_survive_a_replace(two):
    base = load_scenario(two)
    assert base.replace({"design.alpha": 0.025}).effects == base.effects
    assert base.replace({}).digest() == base.digest()


@pytest.mark.parametrize(("table", "path", "fragment"), [
    ({"large": {"treatment.dose_respons.emax": 1.0}}, "effects.large.treatment.dose_respons.emax",
     "not a scenario key"),
    ({"large": {"treatment": {"cells": "UCB-MNC"}}}, "effects.large.treatment", "quoted dotted path"),
    ({"large": {"assurance.draws": 10}}, "effects.large.assurance.draws", "simulated scenario value"),
    ({"bad name": {}}, "effects.bad name", "letters, digits"),
    ({"large": 3}, "effects.large", "dotted.path"),
    ([1, 2], "effects", "[effects.<name>]"),
])
def test_malformed_effects_are_refused_naming_the_path(table, path, fragment):
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict({"effects": table})
    assert exc.value.path == path and fragment in exc.value.message


def test_an_effect_giving_an_invalid_scenario_is_refused_when_the_file_is_read(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[effects.wrong]\n"design.alpha" = 0.9\n')
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    assert exc.value.path == "effects.wrong.design.alpha" and "(0, 0.5]" in exc.value.message


def test_unknown_effect_names_the_ones_there_are(two):
    with pytest.raises(ScenarioError) as exc:
        load_scenario(two, effect="pooled")
    assert exc.value.path == "effect" and "reported, large" in exc.value.message


def test_cli_run_applies_the_effect_and_reports_it(capsys, two):
    code, out, _ = cli(capsys, "run", str(two), "--reps", "200", "--effect", "large", "--json")
    assert code == 0
    got = json.loads(out)
    assert got["effect"] == "large" and got["analyses"][0]["n_reps"] == 200
    code, plain, _ = cli(capsys, "run", str(two), "--reps", "200", "--json")
    assert json.loads(plain)["effect"] is None
    assert json.loads(plain)["true_effect"] < got["true_effect"]
    code, text, _ = cli(capsys, "run", str(two), "--reps", "200", "--effect", "large")
    assert code == 0 and text.splitlines()[0] == ("two effects [effect [effects.large]: treatment.dose_response.emax "
                                                  "= 9.0, design.n_per_arm = 20]")


def test_cli_unknown_effect_is_a_one_line_error(capsys, two):
    assert_one_line_error(*cli(capsys, "run", str(two), "--effect", "pooled"), "--effect", "reported, large")
    assert_one_line_error(*cli(capsys, "sample-size", str(two), "--effect", "pooled"), "--effect")


def test_planning_commands_take_the_effect_and_a_resume_refuses_another(capsys, two, tmp_path):
    """A sweep under --effect large simulates the larger effect; resuming its directory under another effect is
    refused (the scenario differs), so saved chunks never mix hypotheses."""
    import pandas as pd

    def sweep(out, *effect):
        return cli(capsys, "sweep", str(two), *effect, "--grid", "design.alpha=0.05,0.1", "--reps", "200",
                   "--out", str(tmp_path / out))

    assert sweep("large", "--effect", "large")[0] == 0
    assert sweep("file")[0] == 0
    large, file = (pd.read_csv(tmp_path / d / "results.csv") for d in ("large", "file"))
    assert (large["true_effect"] > file["true_effect"]).all()
    assert_one_line_error(*sweep("large", "--effect", "reported"), "--out")
