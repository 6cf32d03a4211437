"""Which comparison a plan powers (issue 18 point 5): a result's figures for a named comparison, the planning
commands' ``comparison`` parameter (``--comparison`` on the command line), unknown labels refused with the labels
listed, and interim looks, which monitor the first comparison only.

Sample size, assurance and sensitivity for a named comparison are tested beside the rest of each
(tests/test_sample_size.py, tests/test_assurance.py, tests/test_sensitivity.py).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

import cbcp_sim
from cbcp_sim.errors import SettingsError
from cbcp_sim.planning.sweep import grid_points, parse_axis, sweep
from cbcp_sim.run.result import SimulationResult, scenario_comparison
from cbcp_sim.run.settings import RunSettings

from .support import assert_one_line_error, cli

ROOT = Path(__file__).resolve().parents[1]
REPEAT_DOSE = ROOT / "scenarios" / "repeat_dose.toml"
SEQUENTIAL = ROOT / "scenarios" / "group_sequential.toml"
SINGLE, TWO = "single dose vs sham", "two doses vs sham"


@functools.cache
def _repeat_dose_run() -> SimulationResult:
    s = cbcp_sim.load_scenario(REPEAT_DOSE, effect="pooled")
    return cbcp_sim.simulate(s, reps=600, seed=3, jobs=1)


def test_result_lists_its_comparisons_first_one_first():
    r = _repeat_dose_run()
    assert r.comparisons == (SINGLE, TWO)
    assert r.comparison() == SINGLE and r.comparison(TWO) == TWO
    assert r.row() is r.primary and r.row(SINGLE) is r.primary


def test_figures_of_a_named_comparison_are_its_rows():
    """successes_for, design_power_for, true_effect_for and replicates_for of the second comparison are those of
    its primary-analysis row and per-replicate arrays; the defaults stay the first comparison's."""
    r = _repeat_dose_run()
    row = r.row(TWO)
    assert (row["analysis"], row["comparison"]) == ("ancova", TWO)
    k, n = r.successes_for(TWO)
    assert n == r.n_reps - row["n_failed"] and k / n == pytest.approx(row["power"], abs=1e-12)
    assert r.design_power_for(TWO)["power"] == pytest.approx(row["power"], abs=1e-12)
    assert r.design_power_for(TWO)["power"] != r.design_power["power"]
    assert r.successes == r.successes_for(None) == r.successes_for(SINGLE)
    assert r.true_effect_for(TWO) == pytest.approx(row["true_effect"], rel=1e-12)
    assert r.true_effect_for(TWO) > r.true_effect_for(SINGLE) == r.true_effect
    arrays = r.replicates_for(TWO)
    assert arrays is r.replicates[f"ancova: {TWO}"]
    assert np.mean(arrays["reject"][np.isfinite(arrays["estimate"])]) == pytest.approx(row["power"], abs=1e-12)
    assert r.replicates_for(TWO, "mmrm") is r.replicates[f"mmrm: {TWO}"]
    assert r.row(TWO, "mmrm")["analysis"] == "mmrm"


@pytest.mark.parametrize("label", ["two doses", "Two doses vs sham", "sham vs two doses", ""])
def test_unknown_comparison_refused_with_the_labels_listed(label):
    r = _repeat_dose_run()
    for call in (r.successes_for, r.design_power_for, r.row, r.true_effect_for, r.replicates_for):
        with pytest.raises(SettingsError) as err:
            call(label)
        assert err.value.path == "comparison"
        assert f"'{SINGLE}', '{TWO}'" in err.value.message


def test_interim_looks_monitor_the_first_comparison_only():
    """With interim looks and dose strata, the design power of a stratum comparison is refused (only the first
    comparison is monitored), before a run and after it; its fixed-design row can still be read."""
    s = cbcp_sim.load_scenario(SEQUENTIAL, {"analysis.dose_strata": True})
    r = cbcp_sim.simulate(s, reps=100, seed=1, jobs=1)
    first, stratum = r.comparisons[:2]
    assert r.successes_for(first) == r.successes
    for call in (lambda: r.successes_for(stratum), lambda: r.design_power_for(stratum),
                 lambda: scenario_comparison(s, stratum)):
        with pytest.raises(SettingsError, match="only the first comparison") as err:
            call()
        assert err.value.path == "comparison" and first in err.value.message
    assert r.row(stratum)["comparison"] == stratum
    assert scenario_comparison(s, stratum, monitored=False) == stratum
    assert f"group sequential, monitoring {first} only" in str(r)


def test_sweep_power_rows_of_a_named_comparison(tmp_path):
    """A sweep's table has every comparison; power_rows(label) keeps the primary analysis's rows of that one,
    power_rows() the primary rows of every arm comparison; an unknown label is refused with the labels."""
    base = cbcp_sim.load_scenario(REPEAT_DOSE, effect="pooled")
    points = grid_points([parse_axis("design.n_per_arm=20,40")])
    result = sweep(base, points, RunSettings(reps=200, seed=1, jobs=1, progress=False), out=tmp_path / "s")
    rows = result.power_rows(TWO)
    assert list(rows["comparison"]) == [TWO, TWO] and set(rows["analysis"]) == {"ancova"}
    assert set(result.power_rows()["comparison"]) == {SINGLE, TWO}
    with pytest.raises(SettingsError, match=f"'{SINGLE}', '{TWO}'"):
        result.power_rows("two doses")


@pytest.mark.parametrize("command", ["sample-size", "assurance", "sensitivity", "sweep"])
def test_every_planning_command_maps_comparison_to_its_option(command):
    """--comparison is declared with option(..., param="comparison") on every planning command."""
    from cbcp_sim.cli.commands import _parser
    from cbcp_sim.cli.options import TABLE

    parser = _parser()
    sub = next(a for a in parser._subparsers._group_actions if hasattr(a, "choices")).choices[command]
    assert sub.get_default(TABLE)["comparison"][0] == "--comparison"


@pytest.mark.parametrize("command", [["sample-size"], ["assurance", "--draws", "2", "--reps-per-draw", "10"],
                                     ["sensitivity", "--samples", "0", "--reps", "10"],
                                     ["sweep", "--grid", "design.n_per_arm=20,30", "--reps", "10"]])
def test_unknown_comparison_on_the_command_line_is_one_line_naming_the_option(capsys, tmp_path, command):
    args = [*command, str(REPEAT_DOSE), "--comparison", "two vs sham", "--jobs", "1", "--quiet"]
    if command[0] == "sweep":
        args += ["--out", str(tmp_path / "s")]
    code, out, err = cli(capsys, *args)
    assert_one_line_error(code, out, err, "--comparison", "'two vs sham' is not a comparison", f"'{SINGLE}'",
                          f"'{TWO}'")


def test_cli_sweep_prints_and_plots_the_named_comparison(capsys, tmp_path):
    code, out, err = cli(capsys, "sweep", str(REPEAT_DOSE), "--effect", "pooled", "--grid", "design.n_per_arm=20,40",
                         "--reps", "100", "--jobs", "1", "--quiet", "--out", str(tmp_path / "s"), "--comparison", TWO,
                         "--plot", str(tmp_path / "p.png"), "--target", "0.8")
    assert code == 0, err
    assert f"ancova, comparison {TWO}: baseline-adjusted" in out
    assert (tmp_path / "p.png").stat().st_size > 1000
    code, out, err = cli(capsys, "sweep", str(REPEAT_DOSE), "--effect", "pooled", "--grid", "design.n_per_arm=20,40",
                         "--reps", "100", "--jobs", "1", "--quiet", "--out", str(tmp_path / "s"))
    assert code == 0, err
    assert "every arm comparison" in out and SINGLE in out and TWO in out


def test_cli_sample_size_json_names_the_comparison(capsys):
    code, out, err = cli(capsys, "sample-size", str(REPEAT_DOSE), "--set", "analysis.secondary=[]", "--reps", "300",
                         "--jobs", "1", "--quiet", "--seed", "3", "--comparison", TWO, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["comparison"] == TWO and data["analysis"] == "ancova"
    assert data["unit"] == "GMFM-66 points" and data["endpoint"] == "change"
