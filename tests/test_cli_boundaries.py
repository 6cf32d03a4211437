"""The command line: ``cbcp-sim boundaries --info T[,T...] [--alpha A] [--spending obf|pocock] [--futility Z[,Z...]]
[--binding] [--json]``: Lan-DeMets efficacy bounds against rpact 3.3.4 (tests/fixtures/rpact), the text table, and
one-line errors with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.special import ndtr

from .support import assert_one_line_error, cli

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "rpact" / "boundaries.json").read_text())
DESIGNS = {case["name"]: case for case in FIXTURE["designs"]}


def boundaries_json(capsys, *argv: str) -> dict:
    code, out, err = cli(capsys, "boundaries", "--json", *argv)
    assert code == 0, err
    assert err == ""
    assert len(out.splitlines()) == 1
    return json.loads(out)


def argv_of(case: dict) -> list[str]:
    """The command-line options of an rpact fixture design."""
    argv = ["--info", ",".join(repr(float(t)) for t in case["info"]), "--alpha", repr(case["alpha"]),
            "--spending", case["spending"]]
    if case["futility"] is not None:
        argv.append("--futility=" + ",".join(repr(float(f)) for f in case["futility"]))  # '=': may start with '-'
    if case["binding"]:
        argv.append("--binding")
    return argv


def test_json_two_look_obf(capsys):
    """`--info 0.5,1 --alpha 0.025 --spending obf --json`: one bound per look, the cumulative alpha spent, the
    nominal p-values; rpact: 2.962588, 1.968596."""
    data = boundaries_json(capsys, "--info", "0.5,1", "--alpha", "0.025", "--spending", "obf")
    for key in ("critical_z", "alpha_spent", "nominal_p"):
        assert isinstance(data[key], list) and len(data[key]) == 2, key
    np.testing.assert_allclose(data["critical_z"], [2.962588, 1.968596], rtol=0, atol=1e-6)
    np.testing.assert_allclose(data["alpha_spent"], [0.001525322757989, 0.025], rtol=0, atol=1e-9)  # cumulative
    np.testing.assert_allclose(data["nominal_p"], ndtr(-np.array(data["critical_z"])), rtol=1e-12)
    assert data["info"] == [0.5, 1.0]
    assert data["alpha"] == 0.025
    assert data["spending"] == "obf"
    assert data["futility_z"] == [None, None]
    assert data["binding"] is False


def test_json_two_look_pocock(capsys):
    """Pocock-type spending at t = (0.5, 1): rpact 2.156999, 2.200977 (the default alpha is 0.025 one-sided)."""
    data = boundaries_json(capsys, "--info", "0.5,1", "--spending", "pocock")
    np.testing.assert_allclose(data["critical_z"], [2.156999, 2.200977], rtol=0, atol=1e-6)
    assert data["alpha_spent"][-1] == pytest.approx(0.025, abs=1e-12)


@pytest.mark.parametrize("name", ["obf_K3_a0.025", "obf_K4_a0.05", "obf_K3_unequal_a_a0.01", "pocock_K5_a0.025",
                                  "pocock_K3_unequal_b_a0.05", "obf_K2_futm05_binding_a0.025",
                                  "pocock_K3_fut00_binding_a0.025", "obf_K4_fut_nonbinding_a0.05",
                                  "obf_K3_veryearly_a0.025"])
def test_json_matches_rpact(capsys, name):
    """Bounds to 1e-6, cumulative alpha spent and nominal p to 1e-7 (rpact reports bounds >= 7.5 as Inf: null);
    futility bounds echoed, None at the final look."""
    case = DESIGNS[name]
    data = boundaries_json(capsys, *argv_of(case))
    rpact = np.array([np.inf if v is None else v for v in case["critical_z"]])
    ours = np.array(data["critical_z"])
    finite = np.isfinite(rpact)
    np.testing.assert_allclose(ours[finite], rpact[finite], rtol=0, atol=1e-6)
    assert np.all(ours[~finite] >= 7.5)
    np.testing.assert_allclose(data["alpha_spent"], case["alpha_spent"], rtol=0, atol=1e-7)
    np.testing.assert_allclose(data["nominal_p"], case["nominal_p"], rtol=0, atol=1e-7)
    assert data["binding"] is case["binding"]
    if case["futility"] is not None:
        assert data["futility_z"] == [*map(float, case["futility"]), None]


def test_text_has_one_row_per_look(capsys):
    """The table: a header naming the spending and alpha, then one row per look whose bound, alpha spent and
    nominal p are the JSON values rounded."""
    argv = ["--info", "0.25,0.5,0.75,1", "--spending", "pocock", "--alpha", "0.05"]
    data = boundaries_json(capsys, *argv)
    code, out, err = cli(capsys, "boundaries", *argv)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert "pocock" in lines[0] and "0.05" in lines[0]
    rows = [line.split() for line in lines if line.split() and line.split()[0].isdigit()]
    assert [int(r[0]) for r in rows] == [1, 2, 3, 4]
    assert len(lines) == 2 + len(rows)
    for k, r in enumerate(rows):
        assert float(r[1]) == pytest.approx(data["info"][k])
        assert float(r[2]) == pytest.approx(data["critical_z"][k], abs=5e-5)
        assert float(r[3]) == pytest.approx(data["alpha_spent"][k], abs=5e-7)
        assert float(r[4]) == pytest.approx(data["nominal_p"][k], abs=5e-7)


def test_binding_futility_changes_the_bounds(capsys):
    """Non-binding futility leaves the efficacy bounds as without it; binding futility at z = 0 keeps the first
    bound and lowers the last (alpha is spent over the paths that go on). The text shows the futility column."""
    plain = boundaries_json(capsys, "--info", "0.5,1")
    nonbinding = boundaries_json(capsys, "--info", "0.5,1", "--futility", "0")
    binding = boundaries_json(capsys, "--info", "0.5,1", "--futility", "0", "--binding")
    assert nonbinding["critical_z"] == plain["critical_z"]
    assert nonbinding["futility_z"] == binding["futility_z"] == [0.0, None]
    assert binding["binding"] is True and nonbinding["binding"] is False
    assert binding["critical_z"][0] == pytest.approx(plain["critical_z"][0], abs=1e-12)
    assert binding["critical_z"][1] < plain["critical_z"][1] - 1e-3
    code, out, err = cli(capsys, "boundaries", "--info", "0.5,1", "--futility", "0", "--binding")
    assert code == 0 and err == ""
    assert "futility_z" in out and "binding" in out
    rows = [line.split() for line in out.splitlines() if line.split() and line.split()[0].isdigit()]
    assert [r[-1] for r in rows] == ["0.0000", "-"]


def test_negative_futility_list(capsys):
    """Futility bounds are usually negative at early looks: `--futility -0.5,0.2,0.8` (space-separated, as the help
    shows `--futility Z[,Z...]`) must read like `--futility=-0.5,0.2,0.8`; a single `--futility -0.5` already does."""
    argv = ["--info", "0.3,0.55,0.8,1", "--alpha", "0.05"]
    expected = boundaries_json(capsys, *argv, "--futility=-0.5,0.2,0.8")
    assert expected["futility_z"] == [-0.5, 0.2, 0.8, None]
    assert boundaries_json(capsys, "--info", "0.5,1", "--futility", "-0.5")["futility_z"] == [-0.5, None]
    assert boundaries_json(capsys, *argv, "--futility", "-0.5,0.2,0.8") == expected


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--info", "0.5,0.4,1"], "info"),       # not increasing
    (["--info", "0.5"], "info"),             # does not end at 1
    (["--info", "0.5,1", "--alpha", "0.7"], "alpha"),
    (["--info", "0.5,1", "--alpha", "0"], "alpha"),
    (["--info", "0.5,1", "--spending", "foo"], "spending"),
    (["--info", "0.5,1", "--futility", "0,0"], "futility"),  # two bounds for one interim
    (["--info", "0.5,1", "--futility", "3.5"], "futility"),  # above the efficacy bound 2.96
    (["--info", "a,b"], "info"),
    (["--info", "0.5,1", "--alpha", "x"], "alpha"),
    ([], "--info"),                            # required
])
def test_bad_input_is_one_line_error(capsys, argv, fragment):
    """Exit 2, nothing on stdout, one stderr line starting 'error:' naming the option (argparse errors too)."""
    code, out, err = cli(capsys, "boundaries", *argv)
    assert_one_line_error(code, out, err, fragment)
