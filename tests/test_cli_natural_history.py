"""The ``cbcp-sim natural-history`` subcommand: what the natural-history model assumes.

Spec (cli.py): "``cbcp-sim natural-history --gmfcs G --ages A:B [--plot FILE] [--json]``: GMFM-66 centiles by age;
``cbcp-sim natural-history --enrol-ages A:B --gmfcs 1,2,3,4 --follow-up MONTHS [--mix ...] [--json]``: the natural
change over a follow-up. Bad input (a scenario value, a file, an option) prints one line
``error: <field>: <what is allowed>`` to stderr and exits with status 2."

The centiles are the Hanna et al. 2008 set (3rd, 15th, 50th, 85th, 97th), simulated over the published level
curves (Rosenbaum et al. 2002; Hanna et al. 2009); the natural change includes the scenario's trial effect
(ACCeNT-CP natural-history arm +3.1 points/year beyond the curves, [Sun 2022]). Tests call
``cbcp_sim.cli.main(argv)`` in-process with the default seed 1 unless stated.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from cbcp_sim.models import natural_history
from cbcp_sim.scenario import NaturalHistory

from .support import assert_one_line_error, cli

CENTILE_KEYS = ("p3", "p15", "p50", "p85", "p97")
CHANGE = ("natural-history", "--enrol-ages", "2:5", "--gmfcs", "1,2,3,4", "--follow-up", "12")
#: Keys of the --enrol-ages JSON object: growth.change_summary plus the run's echo (cli._natural_history).
CHANGE_KEYS = {"change_mean", "change_sd", *CENTILE_KEYS, "mcse_mean", "enrol_ages", "gmfcs", "mix",
               "follow_up_months", "trial_effect_per_year", "n_children", "seed"}


def ok_json(capsys, *argv: str):
    code, out, err = cli(capsys, *argv, "--json")
    assert code == 0, err
    assert err == ""
    return json.loads(out)


# --- centiles by age ----------------------------------------------------------------------------------------


def test_centiles_json_rows(capsys):
    """--gmfcs 3 --ages 2:12 --json: one row per whole year 2-12, keys exactly age, gmfcs, p3-p97, centiles strictly
    increasing; p50 within 2 points of natural_history.mean_curve (Rosenbaum 2002 / Hanna 2009; measured <= 0.8)."""
    rows = ok_json(capsys, "natural-history", "--gmfcs", "3", "--ages", "2:12")
    assert isinstance(rows, list)
    assert [r["age"] for r in rows] == [float(a) for a in range(2, 13)]
    nh = NaturalHistory()
    for r in rows:
        assert set(r) == {"age", "gmfcs", *CENTILE_KEYS}
        assert r["gmfcs"] == 3
        values = [r[k] for k in CENTILE_KEYS]
        assert all(0.0 <= v <= 100.0 for v in values)
        assert all(b > a for a, b in itertools.pairwise(values)), r
    for age in (2, 4, 6, 9, 12):
        r = rows[age - 2]
        assert abs(r["p50"] - float(natural_history.mean_curve(nh, np.array(3), np.array(float(age))))) <= 2.0, r


def test_centiles_table(capsys):
    """Without --json: a title, a header naming the centiles and 11 rows (ages 2-12) matching the JSON to 0.1."""
    code, out, err = cli(capsys, "natural-history", "--gmfcs", "3", "--ages", "2:12")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert "GMFCS level 3" in lines[0]
    assert lines[1].split() == ["age", *CENTILE_KEYS]
    body = lines[2:]
    assert len(body) == 11
    rows = ok_json(capsys, "natural-history", "--gmfcs", "3", "--ages", "2:12")
    for line, r in zip(body, rows, strict=True):
        cells = [float(x) for x in line.split()]
        assert cells[0] == r["age"]
        np.testing.assert_allclose(cells[1:], [r[k] for k in CENTILE_KEYS], atol=0.051)
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


@pytest.mark.parametrize("name, magic", [("out.png", b"\x89PNG\r\n\x1a\n"), ("out.svg", b"<svg"),
                                         ("out.pdf", b"%PDF")])
def test_centiles_plot(capsys, tmp_path, name, magic):
    """--plot FILE writes a non-empty figure in the format of its extension (PNG magic bytes, SVG markup, PDF)
    and still prints the table."""
    path = tmp_path / name
    code, out, err = cli(capsys, "natural-history", "--gmfcs", "2", "--ages", "2:6", "--children", "2000",
                         "--plot", str(path))
    assert code == 0, err
    assert "p50" in out
    data = path.read_bytes()
    assert len(data) > 1000
    if magic == b"<svg":
        assert magic in data[:2000]
    else:
        assert data.startswith(magic)


def test_natural_change_plot(capsys, tmp_path):
    """--plot with --enrol-ages writes a PNG histogram of the natural change."""
    path = tmp_path / "change.png"
    code, _, err = cli(capsys, *CHANGE, "--children", "2000", "--plot", str(path))
    assert code == 0, err
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_plot_with_unknown_extension(capsys, tmp_path):
    """--plot out.txt: exit 2, one line naming --plot, nothing printed and no file written."""
    path = tmp_path / "out.txt"
    assert_one_line_error(*cli(capsys, "natural-history", "--gmfcs", "3", "--ages", "2:12", "--plot", str(path)),
                          "--plot")
    assert not path.exists()


# --- natural change over a follow-up ------------------------------------------------------------------------


def test_natural_change_json(capsys):
    """--enrol-ages 2:5 --gmfcs 1,2,3,4 --follow-up 12 --json: the documented keys, p3 < p15 < p50 < p85 < p97,
    the run echoed, and a mean above the 3.1 trial effect (children of 2-5 still grow)."""
    out = ok_json(capsys, *CHANGE)
    assert set(out) == CHANGE_KEYS
    values = [out[k] for k in CENTILE_KEYS]
    assert all(b > a for a, b in itertools.pairwise(values))
    assert out["change_sd"] > 0.0
    assert out["mcse_mean"] == pytest.approx(out["change_sd"] / np.sqrt(20_000))
    assert out["enrol_ages"] == [2.0, 5.0]
    assert out["gmfcs"] == [1, 2, 3, 4]
    assert out["mix"] == pytest.approx([0.25] * 4)
    assert out["follow_up_months"] == 12.0
    assert out["trial_effect_per_year"] == 3.1
    assert out["n_children"] == 20_000
    assert out["seed"] == 1
    assert out["change_mean"] > 3.1
    assert out["p15"] < out["change_mean"] < out["p85"]


def test_natural_change_text(capsys):
    """Without --json: a readable summary with the mean, SD and centiles."""
    code, out, err = cli(capsys, *CHANGE)
    assert code == 0 and err == ""
    assert "Natural change in GMFM-66 over 12 months" in out
    assert "mean" in out and "SD" in out and "p97" in out


def test_trial_effect_off_lowers_mean_by_3_1(capsys):
    """--set natural_history.trial_effect_per_year=0 lowers the mean change by the ACCeNT-CP 3.1 points (same
    seed, common random numbers: within 0.2; measured 3.10)."""
    on = ok_json(capsys, *CHANGE)
    off = ok_json(capsys, *CHANGE, "--set", "natural_history.trial_effect_per_year=0")
    assert off["trial_effect_per_year"] == 0.0
    assert abs((on["change_mean"] - off["change_mean"]) - 3.1) <= 0.2


def test_mix_with_one_level_matches_that_level(capsys):
    """--mix 1,0,0,0 with --gmfcs 1,2,3,4 gives the same change as --gmfcs 1 alone (same seed)."""
    mixed = ok_json(capsys, *CHANGE, "--mix", "1,0,0,0")
    alone = ok_json(capsys, "natural-history", "--enrol-ages", "2:5", "--gmfcs", "1", "--follow-up", "12")
    assert mixed["mix"] == [1.0, 0.0, 0.0, 0.0]
    for key in ("change_mean", "change_sd", *CENTILE_KEYS):
        assert mixed[key] == alone[key], key


def test_mix_is_normalised(capsys):
    """--mix shares are relative: 2,2,2,2 equals the default equal mix."""
    assert ok_json(capsys, *CHANGE, "--mix", "2,2,2,2") == ok_json(capsys, *CHANGE)


def test_seed_reproducible(capsys):
    """The same --seed gives identical output; another seed gives different numbers."""
    a = ok_json(capsys, *CHANGE, "--seed", "7")
    b = ok_json(capsys, *CHANGE, "--seed", "7")
    c = ok_json(capsys, *CHANGE, "--seed", "8")
    assert a == b
    assert a["seed"] == 7 and c["seed"] == 8
    assert a["change_mean"] != c["change_mean"]
    rows_a = ok_json(capsys, "natural-history", "--gmfcs", "4", "--ages", "3:5", "--seed", "7")
    rows_b = ok_json(capsys, "natural-history", "--gmfcs", "4", "--ages", "3:5", "--seed", "7")
    rows_c = ok_json(capsys, "natural-history", "--gmfcs", "4", "--ages", "3:5", "--seed", "8")
    assert rows_a == rows_b
    assert rows_a != rows_c


# --- bad input ----------------------------------------------------------------------------------------------

AGES = ("--gmfcs", "3", "--ages", "2:5")
BAD = [
    ("gmfcs 6", ("--gmfcs", "6", "--ages", "2:5"), ("--gmfcs",)),
    ("gmfcs repeated", ("--gmfcs", "1,1", "--ages", "2:5"), ("--gmfcs",)),
    ("gmfcs not a number", ("--gmfcs", "x", "--ages", "2:5"), ("--gmfcs",)),
    ("ages decreasing", ("--gmfcs", "3", "--ages", "5:2"), ("--ages",)),
    ("ages from 0", ("--gmfcs", "3", "--ages", "0:3"), ("--ages",)),
    ("ages not a range", ("--gmfcs", "3", "--ages", "x"), ("--ages",)),
    ("ages without a whole year", ("--gmfcs", "3", "--ages", "2.2:2.8"), ("--ages",)),
    ("both ages and enrol-ages", (*AGES, "--enrol-ages", "2:5"), ("--ages", "--enrol-ages")),
    ("neither ages nor enrol-ages", ("--gmfcs", "3"), ("--ages", "--enrol-ages")),
    ("enrol-ages without follow-up", ("--gmfcs", "1,2", "--enrol-ages", "2:5"), ("--follow-up",)),
    ("follow-up 0", ("--gmfcs", "1,2", "--enrol-ages", "2:5", "--follow-up", "0"), ("--follow-up",)),
    ("follow-up over 240", ("--gmfcs", "1,2", "--enrol-ages", "2:5", "--follow-up", "241"), ("--follow-up",)),
    ("mix wrong count", ("--gmfcs", "1,2", "--enrol-ages", "2:5", "--follow-up", "12", "--mix", "1,1,1"),
     ("--mix",)),
    ("mix negative", ("--gmfcs", "1,2", "--enrol-ages", "2:5", "--follow-up", "12", "--mix=-1,2"), ("--mix",)),
    ("mix negative, separate word", ("--gmfcs", "1,2", "--enrol-ages", "2:5", "--follow-up", "12", "--mix", "-1,2"),
     ("--mix",)),
    ("mix all zero", ("--gmfcs", "1,2", "--enrol-ages", "2:5", "--follow-up", "12", "--mix", "0,0"), ("--mix",)),
    ("children 5", (*AGES, "--children", "5"), ("--children",)),
    ("ages with two levels", ("--gmfcs", "2,3", "--ages", "2:5"), ("--ages",)),
    ("ages with follow-up", (*AGES, "--follow-up", "12"), ("--ages",)),
    ("unknown set key", (*AGES, "--set", "natural_history.bogus=1"), ("natural_history.bogus",)),
    ("set value out of range", (*AGES, "--set", "natural_history.sem=-1"), ("natural_history.sem",)),
]


@pytest.mark.parametrize("argv, fragments", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input(capsys, argv, fragments):
    """Each bad natural-history input gives exit 2 and one stderr line starting 'error:' naming the option."""
    assert_one_line_error(*cli(capsys, "natural-history", *argv), *fragments)


def test_missing_scenario_file(capsys, tmp_path):
    """--scenario naming a missing file: one 'error:' line naming it, exit 2."""
    path = tmp_path / "nope.toml"
    assert_one_line_error(*cli(capsys, "natural-history", *AGES, "--scenario", str(path)), str(path))
