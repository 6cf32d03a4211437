"""Every output describes the trial that was simulated and can reproduce itself (issue 18, points 1 and 2): the
heading shows what --effect and --set changed, and the resolved scenario written as TOML runs to the same result.
"""

from __future__ import annotations

import json
import shlex
import tomllib
from pathlib import Path

import pytest

import cbcp_sim
from cbcp_sim.scenario import load_scenario

from .support import cli

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.toml"))


def test_heading_shows_the_effect_and_the_overrides():
    path = ROOT / "scenarios" / "repeat_dose.toml"
    plain = load_scenario(path)
    assert plain.heading == plain.title and plain.origin.describe() == ""
    changed = load_scenario(path, {"design.n_per_arm": 50, "population.source": "allogeneic"}, effect="pooled")
    assert changed.heading == (f"{plain.title} [effect [effects.pooled]: treatment.dose_response.emax = 4.4, "
                               "treatment.ceiling_fraction = 0.2; set design.n_per_arm = 50, population.source = "
                               "\"allogeneic\"]")
    again = changed.replace({"dropout.fraction": 0.1})
    assert again.origin.overrides[-1] == ("dropout.fraction", 0.1)
    assert again.origin.effect == "pooled" and again.heading.endswith("dropout.fraction = 0.1]")
    assert plain.with_effect("pooled").origin.effect_values == changed.origin.effect_values


def test_origin_leaves_values_equality_and_digest_alone():
    path = ROOT / "scenarios" / "default.toml"
    a, b = load_scenario(path), load_scenario(path).replace({})
    assert a == b and a.digest() == b.digest() and a.to_dict() == b.to_dict()


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_resolved_toml_reads_back_to_the_same_values(path, tmp_path):
    """Every bundled scenario, as written and under each effect with an override: its TOML has every value,
    reads back with the same digest and says where it came from."""
    for effect in (None, *(name for name, _ in load_scenario(path).effects)):
        s = load_scenario(path, {"dropout.fraction": 0.07}, effect=effect)
        text = s.to_toml()
        assert text.startswith("# Resolved scenario") and "dropout.fraction = 0.07" in text.splitlines()[1]
        tomllib.loads(text)  # valid TOML
        copy = tmp_path / f"{path.stem}-{effect}.toml"
        copy.write_text(text)
        assert load_scenario(copy).digest() == s.digest()


def test_run_json_and_out_reproduce_themselves(capsys, tmp_path):
    """run --json carries the resolved TOML and the command; running that command on that file gives the same
    figures; run --out saves scenario.toml beside result.json."""
    argv = ("run", str(ROOT / "scenarios" / "repeat_dose.toml"), "--effect", "pooled", "--set",
            "design.n_per_arm=40", "--reps", "1500", "--seed", "4")
    code, out, err = cli(capsys, *argv, "--json")
    assert code == 0, err
    first = json.loads(out)
    assert first["effect"] == "pooled" and {"path": "design.n_per_arm", "value": 40} in first["changes"]
    (tmp_path / "scenario.toml").write_text(first["scenario_toml"])
    command = shlex.split(first["command"])
    assert command[:3] == ["cbcp-sim", "run", "scenario.toml"]
    code, out, err = cli(capsys, *command[1:2], str(tmp_path / "scenario.toml"), *command[3:], "--json")
    assert code == 0, err
    again = json.loads(out)
    assert again["analyses"] == first["analyses"] and again["scenario_digest"] == first["scenario_digest"]
    assert again["changes"] == [] and again["effect"] is None

    code, _, err = cli(capsys, *argv, "--out", str(tmp_path / "run"))
    assert code == 0, err
    saved = (tmp_path / "run" / "scenario.toml").read_text()
    assert saved == first["scenario_toml"]
    assert json.loads((tmp_path / "run" / "result.json").read_text())["command"] == first["command"]


def test_python_command_for_a_chunk_size_the_cli_does_not_take():
    result = cbcp_sim.simulate(ROOT / "scenarios" / "default.toml", reps=300, seed=2, chunk_size=100)
    assert result.command() == ("python -c \"import cbcp_sim; print(cbcp_sim.simulate('scenario.toml', reps=300, "
                                "seed=2, chunk_size=100))\"")


def test_every_text_output_shows_the_changes(capsys):
    """The heading, not the bare title, opens run, timeline, trajectories and sample-size text."""
    marker = "set design.n_per_arm = 30"
    for argv in (("run", "--reps", "200"), ("timeline", "--reps", "100"), ("trajectories", "--children", "200")):
        code, out, err = cli(capsys, *argv, "--set", "design.n_per_arm=30")
        assert code == 0, err
        assert marker in out.splitlines()[0], (argv, out.splitlines()[0])
