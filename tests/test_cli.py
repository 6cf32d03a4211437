"""The command line: ``cbcp-sim run [SCENARIO] [--reps N] [--seed S] [--jobs J] [--json] [--set path=value]``.

Spec lines pinned here (issue): "with no SCENARIO it runs scenarios/default.toml"; "--json prints one JSON object
with at least power, mcse, ci_low, ci_high, type1_error, mean_estimate, n_reps, seed, seconds"; "--set overrides
any scenario value"; "cbcp-sim params [--markdown] lists every parameter"; "a good scenario runs; each kind of
bad input (unknown key, wrong type, out-of-range value, missing file, malformed TOML) gives its one-line error
and exit 2: no traceback".
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cbcp_sim import load_scenario
from cbcp_sim.run.result import PRIMARY_FIELDS
from cbcp_sim.scenario import Scenario, default_scenario_path
from cbcp_sim.scenario.schema import describe

from .support import assert_one_line_error, cli

REQUIRED_KEYS = ("power", "mcse", "ci_low", "ci_high", "type1_error", "mean_estimate", "n_reps", "seed", "seconds")
REPS = "200"
ROOT = Path(__file__).resolve().parents[1]


def run_json(capsys, *argv: str) -> dict:
    code, out, err = cli(capsys, "run", "--json", *argv)
    assert code == 0, err
    assert err == ""
    return json.loads(out)


def console_script() -> str:
    """The installed ``cbcp-sim`` entry point (beside this interpreter, else on PATH)."""
    beside = Path(sys.executable).parent / "cbcp-sim"
    found = str(beside) if beside.is_file() else shutil.which("cbcp-sim")
    assert found, "cbcp-sim console script is not installed"
    return found


# --- a good scenario runs ---------------------------------------------------------------------------------


def test_run_json_default_scenario(capsys):
    """`run --reps 300 --json` prints one JSON object with the required keys, finite numbers and the run's echo."""
    data = run_json(capsys, "--reps", "300")
    assert isinstance(data, dict)
    for key in REQUIRED_KEYS:
        assert key in data
        assert isinstance(data[key], int | float) and not isinstance(data[key], bool), key
        assert math.isfinite(data[key]), key
    assert data["n_reps"] == 300
    assert data["seed"] == 1  # the default seed is echoed
    assert 0.0 <= data["ci_low"] <= data["power"] <= data["ci_high"] <= 1.0
    assert 0.0 <= data["type1_error"] <= 1.0
    assert 0.0 < data["mcse"] < 0.1
    assert data["seconds"] >= 0.0


def test_run_json_has_every_public_field(capsys):
    """--json has every PRIMARY_FIELDS key plus the run fields of to_json(), and the analyses list."""
    data = run_json(capsys, "--reps", REPS)
    for key in (*PRIMARY_FIELDS, "n_reps", "seed", "jobs", "seconds", "screen_failure", "title",
                "scenario_digest", "analyses"):
        assert key in data, key
    assert data["analysis"] == "ancova"
    assert [row["analysis"] for row in data["analyses"]] == ["ancova", "ttest"]
    assert data["analyses"][0]["power"] == data["power"]


def test_run_without_scenario_uses_default_toml(capsys, tmp_path, monkeypatch):
    """With no SCENARIO, `run` simulates scenarios/default.toml, whatever the working directory."""
    monkeypatch.chdir(tmp_path)
    data = run_json(capsys, "--reps", REPS)
    default = load_scenario(default_scenario_path())
    assert data["scenario_digest"] == default.digest()
    assert data["title"] == default.title
    explicit = run_json(capsys, "--reps", REPS, str(default_scenario_path()))
    assert explicit["power"] == data["power"]


def test_seed_is_echoed_and_reproducible(capsys):
    """--seed S is echoed; the same seed gives the same result, another seed another one."""
    a = run_json(capsys, "--reps", REPS, "--seed", "7")
    b = run_json(capsys, "--reps", REPS, "--seed", "7")
    c = run_json(capsys, "--reps", REPS, "--seed", "8")
    assert a["seed"] == 7
    assert c["seed"] == 8
    assert a["mean_estimate"] == b["mean_estimate"]
    assert a["power"] == b["power"]
    assert a["mean_estimate"] != c["mean_estimate"]


def test_text_output(capsys):
    """Without --json, run prints a readable summary with power and type I error."""
    code, out, err = cli(capsys, "run", "--reps", REPS)
    assert code == 0
    assert err == ""
    assert "power" in out
    assert "type I error" in out
    assert "sham 36, cord blood 36" in out
    assert "200 replicates" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_set_overrides_scenario_values(capsys):
    """--set design.n_per_arm=20 --set outcome.model=normal overrides the default scenario."""
    code, out, err = cli(capsys, "run", "--reps", REPS, "--set", "design.n_per_arm=20", "--set", "outcome.model=normal")
    assert code == 0, err
    assert "sham 20, cord blood 20" in out
    assert "model    normal" in out
    data = run_json(capsys, "--reps", REPS, "--set", "design.n_per_arm=20", "--set", "outcome.model=normal")
    expected = load_scenario(default_scenario_path(), {"design.n_per_arm": 20, "outcome.model": "normal"})
    assert data["scenario_digest"] == expected.digest()
    assert data["true_effect"] == pytest.approx(expected.outcome.effect)


def test_set_nested_list_and_string_values(capsys, tmp_path):
    """--set accepts nested paths, lists and bare strings, and applies on top of a scenario file."""
    path = tmp_path / "s.toml"
    path.write_text('title = "mine"\n[outcome]\nmodel = "normal"\n')
    data = run_json(capsys, str(path), "--reps", REPS, "--set", "design.n_per_arm=[20, 30]",
                    "--set", "analysis.primary=welch", "--set", "treatment.dose_response.emax=6")
    expected = load_scenario(path, {"design.n_per_arm": [20, 30], "analysis.primary": "welch",
                                    "treatment.dose_response.emax": 6})
    assert data["title"] == "mine"
    assert data["analysis"] == "welch"
    assert data["scenario_digest"] == expected.digest()


def test_normal_model_one_sided_ttest(capsys, tmp_path):
    """A plain normal scenario file with sides = 1 and a t-test runs; a large effect gives power near 1."""
    path = tmp_path / "normal.toml"
    path.write_text('[outcome]\nmodel = "normal"\nsd = 1.0\neffect = 1.5\ncorrelation = 0.0\n'
                    '[design]\nn_per_arm = 30\nalpha = 0.025\nsides = 1\n[analysis]\nprimary = "ttest"\n')
    data = run_json(capsys, str(path), "--reps", "300", "--seed", "3")
    assert data["analysis"] == "ttest"
    assert data["power"] > 0.95
    assert data["true_effect"] == pytest.approx(1.5)
    assert data["type1_error"] < 0.1


def test_target_mcse_stops_early(capsys):
    """--target-mcse X stops once the MCSE of power is at most X (--reps is then the maximum)."""
    data = run_json(capsys, "--reps", "5000", "--target-mcse", "0.02", "--set", "outcome.model=normal")
    assert data["n_reps"] < 5000
    assert data["mcse"] <= 0.02


# --- bad input: one line, exit 2, no traceback --------------------------------------------------------------

BAD_SETS = [
    # (id, --set argument, fragments the error line must contain)
    ("unknown key", "design.n_per_arn=3", ("design.n_per_arn", "n_per_arm")),
    ("wrong type", "design.alpha=x", ("design.alpha", "(0, 0.5]")),
    ("out of range", "design.alpha=0.7", ("design.alpha", "(0, 0.5]")),
    ("bad choice", "analysis.primary=anova", ("analysis.primary", "welch")),
    ("n_per_arm wrong length", "design.n_per_arm=[10, 20, 30]", ("design.n_per_arm",)),
    ("primary visit not a visit", "design.primary_visit=9", ("design.primary_visit",)),
    ("ages decreasing", "population.ages=[10, 2]", ("population.ages", "increasing")),
    ("path through a value", "design.alpha.x=1", ("design.alpha",)),
    ("no '='", "design.alpha", ("--set", "dotted.path=value")),
    ("empty path", "=3", ("--set", "dotted.path=value")),
]


@pytest.mark.parametrize("setting, fragments", [c[1:] for c in BAD_SETS], ids=[c[0] for c in BAD_SETS])
def test_bad_set(capsys, setting, fragments):
    """A bad --set gives one 'error:' line naming the field, and exit 2."""
    assert_one_line_error(*cli(capsys, "run", "--reps", REPS, "--set", setting), *fragments)


BAD_FILES = [
    ("unknown key", "[design]\nn_per_arn = 36\n", ("design.n_per_arn", "n_per_arm")),
    ("unknown section", "[desing]\nalpha = 0.1\n", ("desing", "design")),
    ("wrong type", '[design]\nalpha = "x"\n', ("design.alpha", "(0, 0.5]")),
    ("out of range", "[design]\nalpha = 0.7\n", ("design.alpha", "(0, 0.5]")),
    ("gmfcs_mix not summing to 1", "[population]\ngmfcs_mix = {1 = 0.5, 2 = 0.4}\n",
     ("population.gmfcs_mix", "sum to 1")),
    ("malformed TOML", "[design\nalpha = 0.1\n", ("bad.toml", "malformed TOML")),
    ("unterminated string", 'title = "x\n', ("bad.toml", "malformed TOML")),
]


@pytest.mark.parametrize("content, fragments", [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_bad_scenario_file(capsys, tmp_path, content, fragments):
    """A bad scenario file gives one 'error:' line naming the field (or the file), and exit 2."""
    path = tmp_path / "bad.toml"
    path.write_text(content)
    assert_one_line_error(*cli(capsys, "run", str(path), "--reps", REPS), *fragments)


def test_missing_file(capsys, tmp_path):
    """A missing scenario file gives one 'error:' line naming the file, and exit 2."""
    path = tmp_path / "nope.toml"
    assert_one_line_error(*cli(capsys, "run", str(path), "--reps", REPS), str(path), "not found")


BAD_OPTIONS = [
    ("reps zero", ("--reps", "0"), ("reps",)),
    ("reps negative", ("--reps", "-5"), ("reps",)),
    ("reps not a number", ("--reps", "x"), ("--reps", "'x'")),
    ("seed negative", ("--seed", "-1"), ("seed",)),
    ("seed not a number", ("--seed", "1.5"), ("--seed",)),
    ("jobs zero", ("--jobs", "0"), ("jobs",)),
    ("target-mcse out of range", ("--target-mcse", "0.7"), ("--target-mcse",)),
    ("unknown option", ("--bogus",), ("--bogus",)),
]


@pytest.mark.parametrize("options, fragments", [c[1:] for c in BAD_OPTIONS], ids=[c[0] for c in BAD_OPTIONS])
def test_bad_option(capsys, options, fragments):
    """A bad run option gives one 'error:' line naming the option, and exit 2."""
    assert_one_line_error(*cli(capsys, "run", "--reps", REPS, *options), *fragments)


def test_missing_command(capsys):
    """Options with no command, or an unknown command, are a usage error: one line, exit 2 (bare `cbcp-sim`
    prints its help: tests/test_cli_polish.py)."""
    assert_one_line_error(*cli(capsys, "--reps", "5"), "COMMAND")
    assert_one_line_error(*cli(capsys, "simulate"), "invalid choice", "run")


# --- params -------------------------------------------------------------------------------------------------


def test_params_lists_every_parameter(capsys):
    """`params` lists every parameter of the default scenario with its value, origin, allowed values and source;
    preset values as numbers."""
    code, out, err = cli(capsys, "params")
    assert code == 0
    assert err == ""
    lines = out.splitlines()
    assert lines[0].startswith("Parameters of Autologous cord blood")
    starts = {line.split(" = ")[0] for line in lines[1:] if not line.startswith(" ")}
    assert {row["path"] for row in describe(Scenario) if "<name>" not in row["path"]} <= starts
    assert "assurance.priors.treatment.dose_response.emax.distribution" in starts  # a table's entries, resolved
    assert "design.alpha = 0.05  [scenario file]" in out or "design.alpha = 0.05  [default]" in out
    assert "treatment.waning_half_life_months = 4.15888 months  [preset UCB-MNC]" in out
    assert "from preset" not in out
    assert "Source:" in out and "Allowed:" in out


def test_params_markdown(capsys):
    """`params --markdown` prints a Markdown table with one row per parameter."""
    code, out, err = cli(capsys, "params", "--markdown")
    assert code == 0
    assert err == ""
    lines = out.splitlines()
    assert lines[2].startswith("| key | value | unit | origin |")
    assert lines[3].startswith("|---|")
    rows = lines[4:]
    assert len(rows) == len(json.loads(cli(capsys, "params", "--json")[1]))
    assert all(row.startswith("| ") and row.endswith(" |") and row.count("|") == 7 for row in rows)
    keys = {row.split("|")[1].strip() for row in rows}
    assert {"design.alpha", "treatment.waning_half_life_months", "outcome.correlation"} <= keys


def test_params_shows_where_each_value_came_from(capsys):
    """A file value, an effect's value, an override, a preset and a default, each named; arms resolved."""
    code, out, err = cli(capsys, "params", str(ROOT / "scenarios" / "repeat_dose.toml"), "--effect", "pooled",
                         "--set", "design.n_per_arm=50", "--json")
    assert code == 0, err
    rows = {r["path"]: r for r in json.loads(out)}
    assert (rows["design.n_per_arm"]["value"], rows["design.n_per_arm"]["origin"]) == ([50, 50, 50],
                                                                                     "override (--set)")
    assert rows["treatment.dose_response.emax"]["origin"] == "effect [effects.pooled]"
    assert rows["treatment.dose_response.emax"]["value"] == 4.4
    assert rows["population.source"] == {**rows["population.source"], "value": "allogeneic",
                                         "origin": "scenario file"}
    assert rows["treatment.peak_months"]["origin"] == "preset UCB-MNC"
    assert isinstance(rows["treatment.peak_months"]["value"], float)
    assert rows["dropout.mechanism"]["origin"] == "default" and rows["dropout.mechanism"]["source"]
    assert rows["arms.two doses.schedule"]["value"] == [0.0, 6.0]
    assert rows["arms.two doses.onset_months"] == {**rows["arms.two doses.onset_months"],
                                                   "value": rows["treatment.onset_months"]["value"],
                                                   "origin": "treatment section"}


# --- the installed console script ---------------------------------------------------------------------------


def test_console_script_runs_json():
    """The installed `cbcp-sim` entry point runs the default scenario and exits 0 with one JSON object."""
    proc = subprocess.run([console_script(), "run", "--reps", REPS, "--seed", "5", "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["n_reps"] == 200
    assert data["seed"] == 5
    assert all(key in data for key in REQUIRED_KEYS)


def test_console_script_bad_input_exit_2(tmp_path):
    """The installed entry point exits 2 with one 'error:' line and no traceback on a bad value."""
    path = tmp_path / "bad.toml"
    path.write_text("[design]\nalpha = 0.7\n")
    proc = subprocess.run([console_script(), "run", str(path), "--reps", REPS],
                          capture_output=True, text=True, timeout=120, check=False)
    assert_one_line_error(proc.returncode, proc.stdout, proc.stderr, "design.alpha", "(0, 0.5]")


def test_power_over_all_trials_is_reported_beside_power_over_analysed_trials(capsys):
    """A failed analysis is no decision for ``power`` and not significant for ``power_all_trials``: both are
    reported, and the text names both when some analyses failed."""
    argv = ("run", "royan_pooled_three_arm", "--set", "analysis.primary=mmrm", "--set", "design.n_per_arm=4",
            "--reps", "300", "--quiet")
    code, out, _ = cli(capsys, *argv, "--json")
    assert code == 0
    rows = [r for r in json.loads(out)["analyses"] if r["analysis"] == "mmrm"]
    assert rows and all(r["n_failed"] > 0 for r in rows)
    for r in rows:
        analysed = r["n_reps"] - r["n_failed"]
        assert r["power_all_trials"] == pytest.approx(r["power"] * analysed / r["n_reps"], abs=1e-12)
        assert r["power_all_trials"] < r["power"]
    code, out, _ = cli(capsys, *argv)
    assert code == 0 and out.count("power over all 300 trials") == len(rows)
    code, out, _ = cli(capsys, "run", "--reps", "200", "--quiet")
    assert code == 0 and "power over all" not in out
