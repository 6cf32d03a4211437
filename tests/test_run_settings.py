"""Run settings travel as one validated, frozen object; the library names its own parameters and the command line
names the option that gave a value; Python does what the CLI does: ``simulate(..., out=DIR)`` saves every chunk
and resumes after a kill, and the timeline's chunks go through the engine.

Issue 17: "Run settings in one validated, frozen object ... validated once; passed as one argument"; "errors carry
the library's path; the CLI maps parameters to options in one table built where the options are declared";
"`simulate(..., out=)` resumes from Python after a kill"; "the timeline's chunks go through the engine".
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path

import pytest

import cbcp_sim
from cbcp_sim.errors import InputError, ScenarioError, SettingsError
from cbcp_sim.explore.timeline import timeline
from cbcp_sim.run.settings import CHUNK_SIZE, MAX_REPS, MAX_SEED, RunSettings
from cbcp_sim.scenario import load_scenario

from .support import assert_one_line_error, cli, kill_after_chunks, plain_toml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = str(ROOT / "scenarios" / "default.toml")


# --- RunSettings ---------------------------------------------------------------------------------------------

def test_defaults_and_chunks():
    s = RunSettings()
    assert (s.reps, s.seed, s.jobs, s.backend, s.address, s.chunk_size, s.progress) == (
        10_000, 1, 1, "loky", None, CHUNK_SIZE, True)
    assert RunSettings(reps=2500).chunks() == [1000, 1000, 500]
    assert RunSettings(reps=7, chunk_size=3).chunks() == [3, 3, 1]
    assert sum(RunSettings(reps=123_457).chunks()) == 123_457


@pytest.mark.parametrize(("changes", "field", "fragment"), [
    ({"reps": 0}, "reps", f"[1, {MAX_REPS}]"), ({"reps": MAX_REPS + 1}, "reps", "got 1000001"),
    ({"reps": 2.0}, "reps", "whole number"), ({"reps": True}, "reps", "whole number"),
    ({"seed": -1}, "seed", f"[0, {MAX_SEED}]"), ({"seed": "1"}, "seed", "whole number"),
    ({"jobs": 0}, "jobs", "must not be 0"), ({"jobs": 1000}, "jobs", "[-64, 256]"),
    ({"chunk_size": 0}, "chunk_size", "whole number"), ({"backend": "spark"}, "backend", "loky, dask"),
    ({"address": "tcp://x:1"}, "address", "backend dask"), ({"progress": 1}, "progress", "true or false"),
])
def test_each_setting_is_checked_once_with_its_name_and_range(changes, field, fragment):
    with pytest.raises(SettingsError) as info:
        RunSettings(**changes)
    assert info.value.path == field
    assert fragment in info.value.message
    assert isinstance(info.value, InputError) and not isinstance(info.value, ScenarioError)


def test_frozen_normalised_and_replace_validates_again():
    import numpy as np

    s = RunSettings(reps=np.int64(300), seed=np.int32(4))
    assert type(s.reps) is int and type(s.seed) is int
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.reps = 5  # type: ignore[misc]
    assert s.replace(reps=None, jobs=2) == RunSettings(reps=300, seed=4, jobs=2)
    with pytest.raises(SettingsError, match="reps"):
        s.replace(reps=-3)


def test_simulate_takes_settings_or_the_same_values_one_by_one():
    """One object or loose keywords: the same run; a keyword given with ``settings`` replaces its value."""
    scenario = load_scenario(DEFAULT)
    loose = cbcp_sim.simulate(scenario, reps=600, seed=3, chunk_size=250)
    bundled = cbcp_sim.simulate(scenario, settings=RunSettings(reps=600, seed=3, chunk_size=250))
    mixed = cbcp_sim.simulate(scenario, reps=600, settings=RunSettings(reps=5, seed=3, chunk_size=250))
    assert loose.rows == bundled.rows == mixed.rows
    assert cbcp_sim.simulate(scenario, reps=600, seed=3).rows != loose.rows  # the chunk size is part of the layout


def test_simulate_refuses_target_mcse_with_out(tmp_path):
    with pytest.raises(SettingsError) as info:
        cbcp_sim.simulate(DEFAULT, reps=100, target_mcse=0.01, out=tmp_path / "x")
    assert info.value.path == "target_mcse"
    assert not (tmp_path / "x").exists()


# --- the library's names, the command line's options -------------------------------------------------------

#: An error raised with an option's name as its path, outside the command line: ``Error("--reps", ...)``.
OPTION_AS_PATH = re.compile(r"Error\(\s*f?[\"']--[a-z]")


def test_the_library_never_names_a_command_line_option():
    """Only cli/ knows option names: no error raised elsewhere in the package names one as its path."""
    offenders = [f"{path.relative_to(ROOT)}:{n}" for path in sorted((ROOT / "cbcp_sim").rglob("*.py"))
                 if "cli" not in path.relative_to(ROOT / "cbcp_sim").parts
                 for n, line in enumerate(path.read_text().splitlines(), start=1) if OPTION_AS_PATH.search(line)]
    assert not offenders


def test_python_errors_name_parameters_and_the_cli_names_options(capsys, tmp_path):
    """The same bad value: from Python the error names the parameter, from the command line the option."""
    with pytest.raises(SettingsError) as info:
        cbcp_sim.simulate(DEFAULT, reps=0)
    assert info.value.path == "reps"
    assert_one_line_error(*cli(capsys, "run", "--reps", "0"), "error: --reps:", "[1, 1000000]")
    assert_one_line_error(*cli(capsys, "run", "--jobs", "0", "--reps", "10"), "error: --jobs:", "must not be 0")
    assert_one_line_error(*cli(capsys, "timeline", "--reps", "200000"), "error: --reps:", "100000")
    assert_one_line_error(*cli(capsys, "trajectories", "--children", "5"), "error: --children:")
    assert_one_line_error(*cli(capsys, "run", "--effect", "nope", "--reps", "10"), "error: --effect:")


def test_an_option_is_named_only_when_it_gave_the_value(capsys, tmp_path):
    """A bad prior in the scenario file is named by its path; the same prior given with --prior names --prior."""
    path = tmp_path / "s.toml"
    path.write_text(plain_toml() + '\n[assurance.priors."design.n_per_arm"]\ndistribution = "uniform"\nlow = 0\n'
                                   'high = 5\n')
    code, out, err = cli(capsys, "assurance", str(path), "--jobs", "1", "--draws", "20", "--reps-per-draw", "10")
    assert_one_line_error(code, out, err, "error: assurance.priors.design.n_per_arm:", "refuses")
    code, out, err = cli(capsys, "assurance", plain_file(tmp_path), "--jobs", "1", "--draws", "20",
                         "--reps-per-draw", "10", "--prior", "design.n_per_arm=uniform(0, 5)")
    assert_one_line_error(code, out, err, "error: --prior: assurance.priors.design.n_per_arm:", "refuses")


def plain_file(tmp_path: Path) -> str:
    path = tmp_path / "plain.toml"
    path.write_text(plain_toml())
    return str(path)


# --- simulate(..., out=DIR) from Python --------------------------------------------------------------------

KILL_REPS, KILL_SEED = 12_000, 9
KILL_SCRIPT = """
import sys
import cbcp_sim
cbcp_sim.simulate(sys.argv[1], reps={reps}, seed={seed}, jobs=2, chunk_size=500, out=sys.argv[2])
"""


def _chunk_events(directory: Path) -> list[dict]:
    return [e for e in map(json.loads, (directory / "log.jsonl").read_text().splitlines()) if e["event"] == "chunk"]


def test_simulate_out_resumes_from_python_after_a_kill(tmp_path):
    """A run saving to ``out`` is SIGKILLed mid-run; ``simulate(..., out=)`` again runs only the chunks not saved,
    never rewrites a saved one, and gives the table of an uninterrupted run."""
    killed = tmp_path / "killed"
    script = KILL_SCRIPT.format(reps=KILL_REPS, seed=KILL_SEED)
    kill_after_chunks([sys.executable, "-c", script, DEFAULT, str(killed)], killed / "chunks", 3)
    saved = {p.name: p.read_bytes() for p in (killed / "chunks").glob("*.npz")}
    chunks = KILL_REPS // 500
    assert 3 <= len(saved) < chunks, "the run was not killed mid-run"
    assert not (killed / "result.json").exists()

    logged = len(_chunk_events(killed)) if (killed / "log.jsonl").exists() else 0
    resumed = cbcp_sim.simulate(DEFAULT, reps=KILL_REPS, seed=KILL_SEED, chunk_size=500, out=killed)
    assert {n: (killed / "chunks" / n).read_bytes() for n in saved} == saved  # never rewritten
    assert len(list((killed / "chunks").glob("*.npz"))) == chunks
    assert len(_chunk_events(killed)) - logged == chunks - len(saved)  # only the chunks not saved ran again

    whole = cbcp_sim.simulate(DEFAULT, reps=KILL_REPS, seed=KILL_SEED, chunk_size=500)
    assert resumed.rows == whole.rows
    assert (killed / "summary.csv").read_text() == whole.table.to_csv(index=False, lineterminator="\n")
    assert json.loads((killed / "result.json").read_text())["power"] == whole.primary["power"]
    with pytest.raises(InputError) as info:  # another run in the same directory is refused
        cbcp_sim.simulate(DEFAULT, reps=KILL_REPS, seed=KILL_SEED + 1, chunk_size=500, out=killed)
    assert info.value.path == "out"


# --- the timeline through the engine -----------------------------------------------------------------------

def test_timeline_is_the_same_for_any_number_of_jobs():
    scenario = load_scenario(DEFAULT)
    one = timeline(scenario, RunSettings(reps=1500, seed=4))
    two = timeline(scenario, RunSettings(reps=1500, seed=4, jobs=2))
    assert one.to_json() == two.to_json()
    assert (one.accrual == two.accrual).all()


def test_planning_saves_and_resumes_from_python(tmp_path):
    """``sample_size(..., out=DIR)`` writes what ``sample-size --out DIR`` writes; called again it runs nothing."""
    import tomllib

    from cbcp_sim.planning.sample_size import sample_size
    from cbcp_sim.scenario import scenario_from_dict

    scenario = scenario_from_dict(tomllib.loads(plain_toml(effect=4.0)))
    settings = RunSettings(reps=2000, seed=3)
    first = sample_size(scenario, 0.8, settings, out=tmp_path / "n")
    saved = json.loads((tmp_path / "n" / "result.json").read_text())
    assert saved["kind"] == "sample-size" and saved["n_per_arm"] == first.n_per_arm
    assert (tmp_path / "n" / "curve.csv").read_text().count("\n") == len(first.curve) + 1
    ran = len(_chunk_events(tmp_path / "n"))
    again = sample_size(scenario, 0.8, settings, out=tmp_path / "n")
    assert len(_chunk_events(tmp_path / "n")) == ran  # every chunk read back, none run
    assert again.to_json() == first.to_json()
    assert again.to_json() == sample_size(scenario, 0.8, settings).to_json()
