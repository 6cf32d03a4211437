"""The ``cbcp-sim trajectories`` subcommand: GMFM-66 over time by arm, beside natural history.

Spec (cli.py, trajectories.py): "Follow the same simulated children under every arm's regimen and untreated:
mean and 80% band (10th-90th centile) of GMFM-66 and its change by month, and each arm's mean difference from
the first arm. A table at the scenario's visits, or --json on a monthly grid" (every half month, plus every
visit and dose month). Bad input prints one line ``error: <field>: ...`` and exits 2. Tests call
``cbcp_sim.cli.main`` in-process with few children (300) for speed.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cbcp_sim.scenario.products import PRESETS

from .support import assert_one_line_error, cli

CHILDREN = ("--children", "300")
TOP_KEYS = {"title", "months", "band", "n_children", "seed", "natural_history", "arms"}
ARM_KEYS = {"name", "kind", "mean", "low", "high", "change_mean", "change_low", "change_high", "cell_effect_mean",
            "cell_effect_low", "cell_effect_high", "difference"}
SERIES = ARM_KEYS - {"name", "kind"}
DEFAULT_VISITS = (0.0, 1.0, 3.0, 6.0, 12.0)
THREE_ARMS = ("--set", 'design.arms=["sham","UCB","MSC"]', "--set", "arms.MSC.cells=UCT-MSC",
              "--set", "population.source=allogeneic")


def run_json(capsys, *argv: str) -> dict:
    code, out, err = cli(capsys, "trajectories", *CHILDREN, *argv, "--json")
    assert code == 0, err
    assert err == ""
    return json.loads(out)


def test_default_table_has_one_row_per_visit(capsys):
    """Without --json: a title line naming the scenario, a header 'month | natural history | sham | cord blood |
    cord blood - sham', and one row per design visit (0, 1, 3, 6, 12) whose changes and difference match the
    JSON run of the same seed to the printed precision."""
    code, out, err = cli(capsys, "trajectories", *CHILDREN)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("GMFM-66 trajectories: ") and "cord blood" in lines[0]
    header = next(i for i, line in enumerate(lines) if line.strip().startswith("month"))
    assert [c.strip() for c in lines[header].split("|")] == ["month", "natural history", "sham", "cord blood",
                                                              "cord blood - sham"]
    rows = lines[header + 1:]
    assert len(rows) == len(DEFAULT_VISITS)
    data = run_json(capsys)
    months = data["months"]
    for row, visit in zip(rows, DEFAULT_VISITS, strict=True):
        cells = [c.strip() for c in row.split("|")]
        assert len(cells) == 5
        assert float(cells[0]) == visit
        i = months.index(visit)
        for cell, arm in zip(cells[1:4], [data["natural_history"], *data["arms"]], strict=True):
            assert abs(float(cell.split("(")[0]) - arm["change_mean"][i]) <= 0.0051, (visit, arm["name"])
        assert abs(float(cells[4]) - data["arms"][1]["difference"][i]) <= 0.0051


def test_json_structure(capsys):
    """--json: exactly the documented keys; months every half month 0-12 (and so every visit); every series one
    value per month; the echo of children, seed and band; the first arm's difference all zeros; no cell effect in
    the sham arm; zero change and zero cell effect at baseline; low <= high."""
    data = run_json(capsys)
    assert set(data) == TOP_KEYS
    assert data["n_children"] == 300 and data["seed"] == 1 and data["band"] == [10, 90]
    months = data["months"]
    assert months == [0.5 * k for k in range(25)]
    assert set(DEFAULT_VISITS) <= set(months)
    arms = data["arms"]
    assert [(a["name"], a["kind"]) for a in arms] == [("sham", "sham"), ("cord blood", "cells")]
    nat = data["natural_history"]
    assert (nat["name"], nat["kind"]) == ("natural history", "nothing")
    for arm in (nat, *arms):
        assert set(arm) == ARM_KEYS
        for key in SERIES:
            assert len(arm[key]) == len(months), (arm["name"], key)
            assert all(math.isfinite(x) for x in arm[key])
        assert arm["change_mean"][0] == 0.0 and arm["cell_effect_mean"][0] == 0.0
        assert all(lo <= hi for lo, hi in zip(arm["low"], arm["high"], strict=True))
        assert all(0.0 < x < 100.0 for x in arm["mean"])
    assert arms[0]["difference"] == [0.0] * len(months)
    assert arms[0]["cell_effect_high"] == [0.0] * len(months)
    # double-blind, no expectation response: the sham arm is natural history itself
    assert nat["difference"] == [0.0] * len(months)
    assert all(x > 0.0 for x in arms[1]["cell_effect_mean"][1:])
    assert all(x > 0.0 for x in arms[1]["difference"][2:])


def test_visits_off_the_half_month_grid_are_included(capsys):
    """Visits and dose months off the half-month grid (0.23, 2.2, 7.75) are months of the JSON grid too."""
    data = run_json(capsys, "--set", "design.visits=[0, 0.23, 2.2, 7.75, 12]",
                    "--set", "arms.cord blood.schedule=[0, 2.2]", "--set", "arms.cord blood.dose=[4, 4]")
    assert {0.23, 2.2, 7.75} <= set(data["months"])
    assert data["months"] == sorted(set(data["months"]))


def test_zero_emax_gives_zero_differences(capsys):
    """--set treatment.dose_response.emax=0: every arm's (and natural history's) difference is exactly 0 and
    every cell effect 0 (double-blind, no expectation response)."""
    data = run_json(capsys, "--set", "treatment.dose_response.emax=0")
    n = len(data["months"])
    for arm in (data["natural_history"], *data["arms"]):
        assert arm["difference"] == [0.0] * n, arm["name"]
        for key in ("cell_effect_mean", "cell_effect_low", "cell_effect_high"):
            assert arm[key] == [0.0] * n, (arm["name"], key)


def test_open_design_shows_assessor_bias(capsys):
    """Open design, no cell effect, assessor_bias 3: the cells arm's mean difference is 0 at baseline and about 3
    after it (exactly 3 on the true score; the observed scale squeezes near its ends), the cell effect 0."""
    data = run_json(capsys, "--set", "treatment.dose_response.emax=0", "--set", "design.blinding=open",
                    "--set", "treatment.assessor_bias=3")
    diff = data["arms"][1]["difference"]
    assert diff[0] == 0.0
    assert all(abs(x - 3.0) <= 0.15 for x in diff[1:]), diff
    assert data["arms"][1]["cell_effect_high"] == [0.0] * len(diff)


def test_expectation_response_is_measured_against_the_first_arm(capsys):
    """Double-blind, no cell effect, expectation_response 2 (onset 1 month): sham and cells arms gain alike, so
    every arm's difference from the first arm is exactly 0, while natural history (no procedure) sits about
    2 (1 - exp(-month)) below the first arm."""
    data = run_json(capsys, "--set", "treatment.dose_response.emax=0", "--set", "treatment.expectation_response=2")
    n = len(data["months"])
    for arm in data["arms"]:
        assert arm["difference"] == [0.0] * n, arm["name"]
    for m, d in zip(data["months"], data["natural_history"]["difference"], strict=True):
        assert abs(d + 2.0 * (1.0 - math.exp(-m))) <= 0.1, (m, d)


def _course(product: str, s: float) -> float:
    p = PRESETS[product]
    if s <= 0:
        return 0.0
    if s <= p["peak_months"]:
        return (1 - math.exp(-s / p["onset_months"])) / (1 - math.exp(-p["peak_months"] / p["onset_months"]))
    f = p["persistent_fraction"]
    return f + (1 - f) * 0.5 ** ((s - p["peak_months"]) / p["waning_half_life_months"])


def _emax(product: str, dose: float) -> float:
    p = PRESETS[product]
    return p["emax"] * dose ** p["hill"] / (p["ed50"] ** p["hill"] + dose ** p["hill"])


def test_three_arm_scenario(capsys):
    """design.arms = [sham, UCB, MSC] with arms.MSC.cells = UCT-MSC (allogeneic dose 10): three arms in the table
    and the JSON; with no ceiling the same children's mean cell effects keep the ratio of the two products'
    Emax(10) x course(month), written out from the presets."""
    code, out, err = cli(capsys, "trajectories", *CHILDREN, *THREE_ARMS)
    assert code == 0 and err == ""
    header = next(line for line in out.splitlines() if line.strip().startswith("month"))
    assert [c.strip() for c in header.split("|")] == ["month", "natural history", "sham", "UCB", "MSC",
                                                      "UCB - sham", "MSC - sham"]
    data = run_json(capsys, *THREE_ARMS, "--set", "treatment.ceiling_fraction=inf")
    assert [(a["name"], a["kind"]) for a in data["arms"]] == [("sham", "sham"), ("UCB", "cells"), ("MSC", "cells")]
    ucb, msc = (np.array(a["cell_effect_mean"]) for a in data["arms"][1:])
    months = data["months"]
    for i, m in enumerate(months):
        if m == 0:
            assert ucb[i] == 0.0 and msc[i] == 0.0
            continue
        expected = (_emax("UCT-MSC", 10.0) * _course("UCT-MSC", m)) / (_emax("UCB-MNC", 10.0) * _course("UCB-MNC", m))
        assert msc[i] / ucb[i] == pytest.approx(expected, rel=1e-9), m
    # UCT-MSC rises more slowly (onset 3 vs 1.5) and has half the Emax: smaller at 6 months
    assert msc[months.index(6.0)] < ucb[months.index(6.0)]


def test_same_seed_same_json_other_seed_differs(capsys):
    """The same seed gives identical JSON text; another seed gives other children."""
    first = cli(capsys, "trajectories", *CHILDREN, "--seed", "7", "--json")
    second = cli(capsys, "trajectories", *CHILDREN, "--seed", "7", "--json")
    assert first[0] == 0 and first == second
    other = run_json(capsys, "--seed", "8")
    assert json.loads(first[1])["arms"][1]["mean"] != other["arms"][1]["mean"]


def test_plot_writes_png(capsys, tmp_path):
    """--plot out.png writes a PNG (file signature) and still prints the table."""
    path = tmp_path / "out.png"
    code, out, err = cli(capsys, "trajectories", *CHILDREN, "--plot", str(path))
    assert code == 0, err
    assert "cord blood - sham" in out
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000


def test_plot_bad_extension_is_one_line_error(capsys, tmp_path):
    """--plot out.txt: exit 2, one line naming --plot, nothing on stdout, no file."""
    path = tmp_path / "out.txt"
    assert_one_line_error(*cli(capsys, "trajectories", *CHILDREN, "--plot", str(path)), "--plot", ".png")
    assert not path.exists()


def test_too_few_children_is_one_line_error(capsys):
    """--children 5 (below 100): exit 2, one line naming --children; a negative --seed names --seed."""
    assert_one_line_error(*cli(capsys, "trajectories", "--children", "5"), "--children", "100")
    assert_one_line_error(*cli(capsys, "trajectories", *CHILDREN, "--seed", "-1"), "--seed")


def test_bad_scenario_value_is_one_line_error(capsys):
    """A bad scenario value through --set (an unknown arm table) is one line naming the field."""
    assert_one_line_error(*cli(capsys, "trajectories", *CHILDREN, "--set", "arms.ghost.kind=sham"), "arms.ghost")
