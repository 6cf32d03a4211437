"""The command line as a new user meets it (issue 18 points 8 and 11).

Spec lines pinned here: "`--version`; bare `cbcp-sim` prints usage and the commands; no literal `%%` in any help;
`sweep` takes the default scenario like every other command; bundled scenarios by name from any directory
(`cbcp-sim run repeat_dose`), and `cbcp-sim scenarios` lists them with their titles"; and "`run` ... show[s]
progress with an ETA on work longer than about two seconds ... quiet with `--quiet` or when output is not a
terminal".

Decision: bare `cbcp-sim` prints the full help (usage, then every command with its one-line help) on standard
output and exits 0, as pip does: asking the program what it does is not an error. Options without a command,
and an unknown command, remain usage errors (one line, exit 2; tests/test_cli.py).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import cbcp_sim
from cbcp_sim.cli import main
from cbcp_sim.cli.commands import _parser
from cbcp_sim.cli.options import run_settings
from cbcp_sim.errors import ScenarioError
from cbcp_sim.run import progress
from cbcp_sim.scenario import default_scenario_path, load_scenario
from cbcp_sim.scenario.spec import bundled_scenarios

from .support import assert_one_line_error, cli

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
#: Every command that runs trials, with the arguments it needs besides --quiet.
TRIAL_COMMANDS = {"run": [], "timeline": [], "sweep": ["--out", "sweep"], "sample-size": [], "assurance": [],
                  "sensitivity": []}


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def commands() -> dict[str, argparse.ArgumentParser]:
    """Every ``cbcp-sim`` command's parser, by name (whoever added the command)."""
    action = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


# --- --version, bare cbcp-sim, help texts -------------------------------------------------------------------


def test_version_prints_the_package_version(capsys):
    """`cbcp-sim --version` prints `cbcp-sim <version>`, the version in pyproject.toml."""
    code, out, err = cli(capsys, "--version")
    assert (code, out, err) == (0, f"cbcp-sim {cbcp_sim.__version__}\n", "")
    assert cbcp_sim.__version__ == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_bare_command_prints_usage_and_every_command(capsys):
    """`cbcp-sim` alone prints the usage and every command with its one-line help on stdout, and exits 0."""
    code, out, err = cli(capsys)
    assert code == 0 and err == ""
    assert out.startswith("usage: cbcp-sim [-h] [--version] COMMAND ...")
    listed = out.split("commands:")[1]
    for name in commands():
        assert f"\n    {name} " in listed or f"\n    {name}\n" in listed, name
    assert "--version" in out and "cbcp-sim COMMAND --help" in " ".join(out.split())


@pytest.mark.parametrize("command", ["", *commands()])
def test_no_literal_percent_in_any_help(capsys, command):
    """Every help text (the top level's and each command's, whoever added it) prints `%` as `%`, never `%%`."""
    code, out, err = cli(capsys, *([command] if command else []), "--help")
    assert code == 0 and err == "", err
    assert "%%" not in out and "%(" not in out, out
    if command in ("run", "sweep"):
        assert "95% interval" in " ".join(out.split())


# --- --quiet and the progress bar -----------------------------------------------------------------------------


def test_every_command_that_runs_trials_takes_quiet():
    """--quiet gives RunSettings(progress=False) on every command that runs trials; without it the bar is on (it
    shows only on a terminal, after two seconds). Every command with --jobs has --quiet."""
    parsers = commands()
    for name, needed in TRIAL_COMMANDS.items():
        args = parsers[name].parse_args(needed)
        assert run_settings(args).progress is True, name
        args = parsers[name].parse_args([*needed, "--quiet"])
        assert run_settings(args).progress is False, name
    with_jobs = {n for n, p in parsers.items() if any("--jobs" in a.option_strings for a in p._actions)}
    with_quiet = {n for n, p in parsers.items() if any("--quiet" in a.option_strings for a in p._actions)}
    assert with_jobs == with_quiet and set(TRIAL_COMMANDS) <= with_quiet


def test_run_shows_progress_on_a_terminal_and_quiet_silences_it(capsys, monkeypatch):
    """`run` draws tqdm's bar (label run, chunks done, ETA) on standard error when it is a terminal; with --quiet
    nothing; stdout is the same either way."""
    monkeypatch.setattr(progress, "DELAY_SECONDS", 0.0)
    outputs = []
    for quiet in ([], ["--quiet"]):
        stream = FakeTerminal()
        monkeypatch.setattr(sys, "stderr", stream)
        assert main(["run", "--reps", "300", "--json", *quiet]) == 0
        outputs.append(json.loads(capsys.readouterr().out))
        if quiet:
            assert stream.getvalue() == ""
        else:
            assert "run: 100%" in stream.getvalue() and "1/1 [" in stream.getvalue()
    assert outputs[0]["power"] == outputs[1]["power"]


# --- sweep's scenario --------------------------------------------------------------------------------------------


def test_sweep_takes_the_default_scenario(capsys, tmp_path):
    """`sweep` without a scenario sweeps the default scenario, as every other command reads it."""
    code, out, err = cli(capsys, "sweep", "--grid", "design.n_per_arm=20,30", "--reps", "200", "--jobs", "1",
                         "--out", str(tmp_path / "sweep"))
    assert code == 0, err
    assert out.splitlines()[0] == load_scenario(default_scenario_path()).heading
    assert (tmp_path / "sweep" / "results.csv").is_file()


# --- bundled scenarios by name -------------------------------------------------------------------------------


def test_bundled_scenarios_are_the_scenario_files():
    """bundled_scenarios() maps each scenarios/*.toml's name to its file, in name order, the default among them."""
    bundled = bundled_scenarios()
    assert bundled == {p.stem: p for p in sorted(SCENARIOS.glob("*.toml"))}
    assert bundled["default"] == default_scenario_path() and len(bundled) >= 8


def test_run_a_bundled_scenario_by_name_from_any_directory(capsys, tmp_path, monkeypatch):
    """`cbcp-sim run repeat_dose` and `run repeat_dose.toml` from another directory run the bundled file."""
    monkeypatch.chdir(tmp_path)
    results = []
    for scenario in ("repeat_dose", "repeat_dose.toml", str(SCENARIOS / "repeat_dose.toml")):
        code, out, err = cli(capsys, "run", scenario, "--reps", "200", "--json")
        assert code == 0, err
        results.append(json.loads(out))
    assert results[0]["title"].startswith("Planned repeat dose")
    for key in ("power", "scenario_digest", "title"):
        assert results[0][key] == results[1][key] == results[2][key], key


def test_load_scenario_by_name_from_python(tmp_path, monkeypatch):
    """The lookup is the library's: cbcp_sim.load_scenario("repeat_dose") reads the bundled file, its origin the
    file's path; overrides and effects apply as for a path."""
    monkeypatch.chdir(tmp_path)
    by_name = cbcp_sim.load_scenario("repeat_dose", {"design.n_per_arm": 40}, "pooled")
    by_path = cbcp_sim.load_scenario(SCENARIOS / "repeat_dose.toml", {"design.n_per_arm": 40}, "pooled")
    assert by_name.digest() == by_path.digest()
    assert Path(by_name.origin.file) == SCENARIOS / "repeat_dose.toml"


def test_a_file_that_exists_wins_over_a_bundled_name(tmp_path, monkeypatch):
    """A file of that name in the working directory is read, not the bundled scenario: `repeat_dose.toml` and
    the bare `repeat_dose` both find ./repeat_dose.toml."""
    monkeypatch.chdir(tmp_path)
    text = (SCENARIOS / "default.toml").read_text()
    Path("repeat_dose.toml").write_text(text.replace(tomllib.loads(text)["title"], "My own repeat dose"))
    assert load_scenario("repeat_dose.toml").title == "My own repeat dose"
    assert load_scenario("repeat_dose").title == "My own repeat dose"
    assert load_scenario("default").title == load_scenario(default_scenario_path()).title


def test_unknown_name_lists_the_bundled_scenarios(capsys, tmp_path, monkeypatch):
    """A bare name that is neither a file nor bundled is refused in one line that lists the bundled names; a path
    with a directory is never taken for a name."""
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(*cli(capsys, "run", "repeat_dosse", "--reps", "200"), "repeat_dosse", "not found",
                          *bundled_scenarios())
    with pytest.raises(ScenarioError) as info:
        load_scenario("elsewhere/repeat_dose.toml")
    assert info.value.path == str(Path("elsewhere/repeat_dose.toml")) and "bundled" not in info.value.message


def test_scenarios_lists_names_and_titles(capsys):
    """`cbcp-sim scenarios` lists every bundled scenario with its title; --json as {name, title, path} rows."""
    code, out, err = cli(capsys, "scenarios")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("Bundled scenarios")
    bundled = bundled_scenarios()
    titles = {name: load_scenario(path).title for name, path in bundled.items()}
    assert [line.split()[0] for line in lines[1:]] == list(bundled)
    for line, (name, title) in zip(lines[1:], titles.items(), strict=True):
        assert line.strip().removeprefix(name).strip() == title
    code, out, err = cli(capsys, "scenarios", "--json")
    assert code == 0 and err == ""
    rows = json.loads(out)
    assert [r["name"] for r in rows] == list(bundled)
    assert [r["title"] for r in rows] == list(titles.values())
    assert all(Path(r["path"]) == bundled[r["name"]] for r in rows)


def test_bundled_scenarios_from_an_installed_package(tmp_path):
    """Installed (no source tree), the bundled scenarios come from the package cbcp_sim.scenarios, as the wheel
    lays it out (pyproject: package-dir "cbcp_sim.scenarios" = "scenarios"), and a name runs from anywhere."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "cbcp_sim", site / "cbcp_sim", ignore=shutil.ignore_patterns("__pycache__"))
    (site / "cbcp_sim" / "scenarios").mkdir()
    for path in SCENARIOS.glob("*.toml"):
        shutil.copy(path, site / "cbcp_sim" / "scenarios" / path.name)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import json, cbcp_sim; from cbcp_sim.scenario.spec import bundled_scenarios, load_scenario; "
            "b = bundled_scenarios(); print(json.dumps({'package': cbcp_sim.__file__, 'names': list(b), "
            "'paths': [str(p) for p in b.values()], 'title': load_scenario('repeat_dose').title}))")
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert Path(found["package"]).is_relative_to(site)
    assert found["names"] == list(bundled_scenarios())
    assert all(Path(p).parent == site / "cbcp_sim" / "scenarios" for p in found["paths"])
    assert found["title"] == load_scenario(SCENARIOS / "repeat_dose.toml").title
