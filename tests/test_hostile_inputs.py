"""Hostile or unlucky input (issue 19, points 5 and 7): each reproducer is a result or a one-line error with exit 2.

Deep nesting and huge integers are refused by the reader; a NUL byte, a name too long or a symlink loop in a path
is a one-line error naming it; the normal model refuses what it cannot simulate; an error raised in a SimPy
process or a worker keeps its path and message; a singular MMRM replicate is a counted failure, without a
warning; numeric options are validated; error messages stay on one line with control characters escaped, and
scenario strings cannot carry them.
"""

from __future__ import annotations

import json
import math
import pickle
import warnings
from pathlib import Path

import pytest

from cbcp_sim import analyze, load_scenario
from cbcp_sim.errors import InputError, ScenarioError, SettingsError, printable
from cbcp_sim.planning.sweep import parse_axis
from cbcp_sim.scenario import default_scenario_path, scenario_from_dict
from cbcp_sim.scenario.schema import MAX_DEPTH
from cbcp_sim.scenario.spec import parse_value

from .support import assert_one_line_error, cli

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
TRIAL_CSV = ROOT / "tests" / "fixtures" / "analyze" / "trial.csv"


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


# --- deep nesting and huge integers: refused by the reader --------------------------------------------------------

def test_deep_nesting_in_a_file_is_refused(tmp_path, capsys):
    for depth in (MAX_DEPTH + 1, 1000, 5000):
        path = tmp_path / f"deep{depth}.toml"
        path.write_text(f"title = {nested(depth)}\n")
        with pytest.raises(ScenarioError, match="nested deeper than 32 levels"):
            load_scenario(path)
    path = tmp_path / "tables.toml"
    path.write_text("a = " + "{b = " * 600 + "1" + "}" * 600 + "\n")
    assert_one_line_error(*cli(capsys, "run", str(path)), "nested deeper than 32 levels")
    path = tmp_path / "dotted.toml"
    path.write_text("a." * 3000 + "b = 1\n")  # a flat key making a deep table
    assert_one_line_error(*cli(capsys, "run", str(path)), "nested deeper than 32 levels")


def test_deep_nesting_in_a_setting_is_refused(capsys):
    with pytest.raises(ScenarioError, match="nested deeper"):
        scenario_from_dict({}, {"design.n_per_arm": parse_value(nested(MAX_DEPTH + 5))})
    with pytest.raises(ScenarioError, match="nested deeper"):
        parse_value(nested(5000))
    with pytest.raises(ScenarioError, match="nested deeper"):
        load_scenario(default_scenario_path(), {"design.n_per_arm": {"a": parse_value(nested(100))}})
    code, out, err = cli(capsys, "run", "--set", f"design.n_per_arm={nested(1000)}")
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and "Traceback" not in err
    assert_one_line_error(*cli(capsys, "run", "--set", f"design.n_per_arm={nested(40)}"), "nested deeper")


def test_a_huge_integer_is_refused(tmp_path, capsys):
    path = tmp_path / "big.toml"
    path.write_text("[design]\nn_per_arm = " + "9" * 5000 + "\n")
    assert_one_line_error(*cli(capsys, "run", str(path)), "whole number out of range")
    path.write_text("[design]\nn_per_arm = " + "9" * 100 + "\n")
    assert_one_line_error(*cli(capsys, "run", str(path)), "design.n_per_arm", "whole number out of range")
    with pytest.raises(ScenarioError, match="whole number out of range") as caught:
        scenario_from_dict({}, {"design.n_per_arm": [10 ** 5000]})
    assert caught.value.path == "design.n_per_arm[0]"
    with pytest.raises(ScenarioError, match="whole number out of range"):
        parse_value("9" * 5000)


# --- paths: a NUL byte, a name too long, a symlink loop -------------------------------------------------------------

def test_a_nul_byte_in_a_path_is_a_one_line_error(capsys):
    for path in ("a\0b.toml", "dir/a\0b.toml"):
        with pytest.raises(ScenarioError, match="NUL"):
            load_scenario(path)
        code, out, err = cli(capsys, "run", path)
        assert_one_line_error(code, out, err, "NUL")
        assert "\0" not in err and "\\x00" in err
    with pytest.raises(ScenarioError, match="control characters") as caught:  # a path inside a scenario
        scenario_from_dict({"assurance": {"priors": {"outcome.effect": {"file": "draws\0.csv"}}}})
    assert caught.value.path.endswith(".file")


def test_a_name_too_long_or_a_symlink_loop_is_a_one_line_error(tmp_path, capsys):
    assert_one_line_error(*cli(capsys, "run", "x" * 5000), "cannot read the scenario file")
    assert_one_line_error(*cli(capsys, "run", str(tmp_path / ("x" * 5000))), "cannot read the scenario file")
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert_one_line_error(*cli(capsys, "run", str(loop / "x.toml")), "cannot read the scenario file")
    assert_one_line_error(*cli(capsys, "run", str(loop)), str(loop))


# --- the normal model refuses what it cannot simulate ---------------------------------------------------------------

@pytest.mark.parametrize(("file", "overrides", "field"), [
    ("sun2017_duke_crossover.toml", {}, "analysis.dose_strata"),
    ("sun2017_duke_crossover.toml", {"analysis.dose_strata": False, "design.visits": [0, 6, 12, 24],
                                     "design.primary_visit": 6}, "design.primary_visit"),
    ("default.toml", {"outcome.sd": [1.0, 2.0, 3.0]}, "outcome.sd"),
    ("default.toml", {"analysis.covariates": ["age"]}, "analysis.covariates"),
])
def test_the_normal_model_refuses_designs_it_cannot_simulate(capsys, file, overrides, field):
    settings = {"outcome.model": "normal", **overrides}
    with pytest.raises(ScenarioError) as caught:
        load_scenario(SCENARIOS / file, settings)
    assert caught.value.path == field
    argv = [f"--set={k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in settings.items()]
    assert_one_line_error(*cli(capsys, "run", str(SCENARIOS / file), "--reps", "20", *argv), field)


# --- errors keep their path and message across SimPy and process boundaries ----------------------------------------

@pytest.mark.parametrize("kind", [InputError, ScenarioError, SettingsError])
def test_an_input_error_pickles_and_is_remade_from_its_args(kind):
    exc = kind("operations.unit_failure", "too many children screened")
    for again in (pickle.loads(pickle.dumps(exc)), type(exc)(*exc.args)):
        assert type(again) is kind
        assert (again.path, again.message, str(again)) == (exc.path, exc.message, str(exc))
    assert str(kind("", "no path")) == "no path"


@pytest.mark.parametrize("command", [["run", "--reps", "10", "--set", "operations.enabled=true"], ["timeline"]])
def test_units_that_almost_always_fail_give_a_one_line_error(capsys, command):
    assert_one_line_error(*cli(capsys, *command, "--set", "operations.unit_failure=0.999999"),
                          "screened without enrolling", "operations.unit_failure")


# --- MMRM: a singular replicate is a counted failure, never an exception or a warning ------------------------------

def test_an_mmrm_replicate_with_singular_matrices_is_a_counted_failure():
    from cbcp_sim.run.engine import simulate

    scenario = load_scenario(SCENARIOS / "royan_pooled_three_arm.toml",
                             {"analysis.primary": "mmrm", "design.n_per_arm": 4})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = simulate(scenario, reps=1000, seed=1)
    failed = [r["n_failed"] for r in result.rows if r["analysis"] == "mmrm"]
    assert failed and all(0 < n < 1000 for n in failed)


# --- options validated like scenario values -------------------------------------------------------------------------

def test_natural_history_refuses_a_negative_seed(capsys):
    assert_one_line_error(*cli(capsys, "natural-history", "--seed", "-1", "--gmfcs", "2", "--ages", "2:5"),
                          "--seed", ">= 0")


@pytest.mark.parametrize("spec", ["0.01:0.05:5e-324", "0.01:0.05:1e-300", "0:1e308:1e-10",
                                  "0:" + "9" * 400 + ":1", "0:1e308:1e-308"])
def test_a_grid_step_giving_too_many_values_is_refused_before_any_is_made(spec):
    with pytest.raises(ScenarioError, match=r"at most 100000 points|step of at least|finite numbers"):
        parse_axis(f"design.alpha={spec}")


def test_a_tiny_grid_step_is_a_one_line_error(tmp_path, capsys):
    assert_one_line_error(*cli(capsys, "sweep", "--grid", "design.alpha=0.01:0.05:5e-324", "--reps", "10",
                               "--out", str(tmp_path / "out")), "--grid")


@pytest.mark.parametrize("mcid", [math.nan, math.inf, -math.inf, -5.0, 0.0])
def test_mcid_must_be_a_finite_positive_number(capsys, mcid):
    with pytest.raises(SettingsError, match="finite number of points above 0") as caught:
        analyze(TRIAL_CSV, method="fisher", mcid=mcid)
    assert caught.value.path == "mcid"
    assert_one_line_error(*cli(capsys, "analyze", str(TRIAL_CSV), "--method", "fisher", "--mcid", f"{mcid:g}"),
                          "--mcid")
    assert analyze(TRIAL_CSV, method="fisher", mcid=2.0).mcid == 2.0


def test_a_one_sided_alpha_of_one_half_is_blamed_on_design_alpha(capsys):
    for extra in ({}, {"sequential.futility": []}):
        with pytest.raises(ScenarioError) as caught:
            load_scenario(SCENARIOS / "group_sequential.toml", {"design.alpha": 0.5, "design.sides": 1, **extra})
        assert caught.value.path == "design.alpha"
    assert_one_line_error(*cli(capsys, "run", str(SCENARIOS / "group_sequential.toml"), "--set", "design.alpha=0.5",
                               "--set", "design.sides=1"), "design.alpha")


# --- one line, nothing a terminal acts on ---------------------------------------------------------------------------

def test_printable_escapes_control_characters():
    assert printable("a\nb\r\tc\x1b[31md\x00\x7f\x85\u2028 é ü 0.5") == \
        "a\\nb\\r\\tc\\x1b[31md\\x00\\x7f\\x85\\u2028 é ü 0.5"
    assert printable("design.n_per_arm: must be in [2, 100000]") == "design.n_per_arm: must be in [2, 100000]"


@pytest.mark.parametrize(("path", "value"), [
    ("title", "\x1b[2J\x1b[31mowned"),
    ("title", "two\nlines"),
    ("design.arms", ["sham", "cord\nblood"]),
    ("design.arms", ["sham", "\x1b]0;title\x07"]),
])
def test_control_characters_in_scenario_strings_are_refused(capsys, path, value):
    with pytest.raises(ScenarioError, match="control characters"):
        scenario_from_dict({}, {path: value})
    shown = f'"{value}"' if isinstance(value, str) else "[" + ", ".join(f'"{v}"' for v in value) + "]"
    toml = shown.replace("\x1b", "\\u001b").replace("\n", "\\n").replace("\x07", "\\u0007")
    code, out, err = cli(capsys, "run", "--set", f"{path}={toml}")
    assert_one_line_error(code, out, err, path, "control characters")
    assert "\x1b" not in err and "\x07" not in err


def test_a_control_character_in_a_table_name_or_a_key_is_refused(tmp_path, capsys):
    with pytest.raises(ScenarioError, match="control character"):
        scenario_from_dict({"arms": {"cord\nblood": {"kind": "sham"}}})
    path = tmp_path / "s.toml"
    path.write_text('[arms."x\\u001b[31m"]\nkind = "sham"\n')
    code, out, err = cli(capsys, "run", str(path))
    assert_one_line_error(code, out, err, "control character")
    assert "\x1b" not in err


def test_an_error_naming_a_path_with_control_characters_stays_on_one_line(tmp_path, capsys):
    code, out, err = cli(capsys, "run", str(tmp_path / "a\nb\x1b[31m.toml"))
    assert_one_line_error(code, out, err, "a\\nb\\x1b[31m.toml")
