"""Sensitivity: partial rank correlations against a known model, the Latin hypercube, the tornado and global
ranking on the plain normal model, and the command line.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import cbcp_sim
from cbcp_sim.errors import ScenarioError
from cbcp_sim.planning.sensitivity import latin_hypercube, prcc, sensitivity
from cbcp_sim.run.settings import RunSettings
from cbcp_sim.scenario import Scenario, default_scenario_path, load_scenario

from .support import PLAIN, assert_one_line_error, cli, plain_toml

RANGES = (("x1", 0.0, 1.0), ("x2", -2.0, 3.0), ("x3", 10.0, 20.0))


def _plain(**overrides) -> Scenario:
    return load_scenario(default_scenario_path(), {**PLAIN, "outcome.effect": 2.5, **overrides})


# --- partial rank correlation ------------------------------------------------------------------------------


def _known_model(n: int = 200, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """y = 3 x1 - x2 + 0 x3 + small noise, on a Latin hypercube (x1, x2 scaled to the same width)."""
    x = latin_hypercube((("x1", 0.0, 1.0), ("x2", 0.0, 1.0), ("x3", 0.0, 1.0)), n, seed)
    rng = np.random.default_rng(seed)
    y = 3.0 * x[:, 0] - 1.0 * x[:, 1] + 0.0 * x[:, 2] + rng.normal(0.0, 0.02, n)
    return x, y


def test_prcc_recovers_a_known_model():
    """PRCC of y = 3 x1 - x2 + noise: near +1 for x1, strongly negative for x2, near 0 for x3 (which is unused)."""
    x, y = _known_model()
    r = prcc(x, y)
    assert r.shape == (3,)
    assert r[0] > 0.95
    assert r[1] < -0.9
    assert abs(r[2]) < 0.15
    assert abs(r[0]) > abs(r[1]) > abs(r[2])


def test_prcc_is_partial_not_marginal():
    """y driven by x1 only, x2 a noisy copy of x1: PRCC(x2) is near 0 though its marginal rank correlation is large."""
    rng = np.random.default_rng(9)
    x1 = rng.uniform(size=300)
    x2 = x1 + rng.normal(0, 0.1, 300)
    y = x1 + rng.normal(0, 0.01, 300)
    x = np.column_stack([x1, x2])
    r = prcc(x, y)
    assert r[0] > 0.9
    assert abs(r[1]) < 0.2
    marginal = np.corrcoef(np.argsort(np.argsort(x2)), np.argsort(np.argsort(y)))[0, 1]
    assert marginal > 0.8


def test_prcc_invariant_to_monotone_transforms():
    """PRCC works on ranks: a monotone transform of y (exp) or of a column (cube) leaves it unchanged."""
    x, y = _known_model()
    r = prcc(x, y)
    assert prcc(x, np.exp(y)) == pytest.approx(r, abs=1e-12)
    x_cubed = x.copy()
    x_cubed[:, 1] = x_cubed[:, 1] ** 3
    assert prcc(x_cubed, y) == pytest.approx(r, abs=1e-12)
    assert prcc(x, -y) == pytest.approx(-r, abs=1e-12)  # a decreasing transform flips every sign


# --- Latin hypercube ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [5, 12, 50])
def test_latin_hypercube_one_point_per_stratum(n):
    """Each dimension has exactly one point in each of its n equal strata, all within the ranges."""
    x = latin_hypercube(RANGES, n, seed=3)
    assert x.shape == (n, len(RANGES))
    for j, (_, low, high) in enumerate(RANGES):
        assert np.all((x[:, j] >= low) & (x[:, j] <= high))
        strata = np.floor((x[:, j] - low) / (high - low) * n).astype(int)
        assert sorted(strata) == list(range(n)), strata


def test_latin_hypercube_reproducible_by_seed():
    """The same seed gives the same points; another seed gives other points."""
    a = latin_hypercube(RANGES, 20, seed=8)
    assert np.array_equal(a, latin_hypercube(RANGES, 20, seed=8))
    assert not np.allclose(a, latin_hypercube(RANGES, 20, seed=9))


# --- the plain normal model ------------------------------------------------------------------------------------


def test_sensitivity_on_the_plain_model():
    """Plain model, effect [1, 4] and dropout [0, 0.1]: the effect ranks first; the base is a plain run (same seed)."""
    reps, seed = 600, 5
    scenario = _plain(**{"sensitivity.ranges": {"outcome.effect": [1.0, 4.0], "dropout.fraction": [0.0, 0.1]},
                         "sensitivity.samples": 12, "sensitivity.reps": reps})
    result = sensitivity(scenario, RunSettings(seed=seed))
    out = result.to_json()
    base = cbcp_sim.simulate(scenario, reps=reps, seed=seed).primary
    assert out["base_power"] == base["power"]
    assert out["base_mcse"] == base["mcse"]

    rows = {r["path"]: r for r in out["tornado"]}
    effect, dropout = rows["outcome.effect"], rows["dropout.fraction"]
    assert [r["path"] for r in out["tornado"]] == ["outcome.effect", "dropout.fraction"]
    assert (effect["rank"], dropout["rank"]) == (1, 2)
    assert (effect["low"], effect["high"]) == (1.0, 4.0)
    assert effect["power_high"] > effect["power_low"] + 0.5
    assert effect["swing"] == pytest.approx(effect["power_high"] - effect["power_low"])
    assert effect["swing"] > dropout["swing"]
    # the base has no dropout, so the low end of the dropout range is the base run itself
    assert dropout["power_low"] == out["base_power"]
    assert dropout["power_high"] <= dropout["power_low"] + 0.02
    # each end is a plain simulation at that value, with the same seed
    at_high = cbcp_sim.simulate(scenario.replace({"outcome.effect": 4.0}), reps=reps, seed=seed).primary
    assert effect["power_high"] == at_high["power"]

    ranking = out["global"]["rows"]
    assert out["global"]["samples"] == 12
    assert [r["rank"] for r in ranking] == [1, 2]
    assert ranking[0]["path"] == "outcome.effect"
    assert ranking[0]["prcc"] > 0.9
    assert abs(ranking[1]["prcc"]) < abs(ranking[0]["prcc"])
    table = result.table
    assert len(table) == 12
    assert np.all((table["outcome.effect"] >= 1.0) & (table["outcome.effect"] <= 4.0))
    assert np.all((table["dropout.fraction"] >= 0.0) & (table["dropout.fraction"] <= 0.1))


def test_sensitivity_without_ranges_is_an_error():
    """A scenario without ranges names sensitivity.ranges."""
    with pytest.raises(ScenarioError) as info:
        sensitivity(_plain(**{"sensitivity.ranges": {}}))
    assert info.value.path == "sensitivity.ranges"


# --- the command line ----------------------------------------------------------------------------------------


def _toml(tmp_path) -> str:
    path = tmp_path / "plain.toml"
    path.write_text(plain_toml(2.5))
    return str(path)


def test_cli_sensitivity_json(capsys, tmp_path):
    """`sensitivity --json` prints tornado rows (path, low, high, powers, swing, rank) and global rows (prcc, rank)."""
    code, out, err = cli(capsys, "sensitivity", _toml(tmp_path), "--range", "outcome.effect=1:4", "--range",
                         "dropout.fraction=0:0.1", "--samples", "6", "--reps", "200", "--jobs", "1", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["kind"] == "sensitivity"
    assert data["reps"] == 200 and data["seed"] == 1
    assert len(data["tornado"]) == 2
    for row in data["tornado"]:
        assert set(row) >= {"path", "low", "high", "power_low", "power_high", "swing", "rank"}
    assert sorted(r["rank"] for r in data["tornado"]) == [1, 2]
    assert data["tornado"][0]["path"] == "outcome.effect"
    assert data["global"]["samples"] == 6
    for row in data["global"]["rows"]:
        assert set(row) >= {"path", "prcc", "rank"}
    assert {r["path"] for r in data["global"]["rows"]} == {"outcome.effect", "dropout.fraction"}


def test_cli_sensitivity_one_at_a_time_only(capsys, tmp_path):
    """--samples 0 runs the tornado only: global is null."""
    code, out, err = cli(capsys, "sensitivity", _toml(tmp_path), "--range", "outcome.effect=1:4", "--samples", "0",
                         "--reps", "200", "--jobs", "1", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["global"] is None
    assert [r["path"] for r in data["tornado"]] == ["outcome.effect"]


@pytest.mark.parametrize(("args", "fragments"), [
    (["--range", "foo"], ("error: --range:", "path=low:high")),
    (["--range", "dropout.fraction=0.2:0.1"], ("error: --range:", "low < high")),
    (["--range", "dropout.fraction=a:0.1"], ("error: --range:",)),
    (["--range", "nodots=0:1"], ("error: --range:",)),
    (["--range", "dropout.fraction=0:0.1", "--range", "outcome.effect=1:4", "--samples", "2"],
     ("error: --samples:", "at least 5")),
    (["--range", "dropout.fraction=0:2"], ("error: --range: sensitivity.ranges.dropout.fraction", "refuses")),
    ([], ("error: sensitivity.ranges:",)),
])
def test_cli_sensitivity_malformed(capsys, tmp_path, args, fragments):
    """Malformed ranges and too few samples exit 2 with a one-line error."""
    code, out, err = cli(capsys, "sensitivity", _toml(tmp_path), *args, "--reps", "100", "--jobs", "1")
    assert_one_line_error(code, out, err, *fragments)


# --- the comparison examined (issue 18 points 5 and 6) -------------------------------------------------------

REPEAT_DOSE = default_scenario_path().parent / "repeat_dose.toml"
TWO = "two doses vs sham"


def test_sensitivity_of_a_named_comparison():
    """comparison="two doses vs sham": the base power and each end of the tornado are that comparison's power
    in a plain run at the same seed; the text and JSON name it, with the estimand and endpoint."""
    reps, seed = 200, 5
    scenario = load_scenario(REPEAT_DOSE, {"analysis.secondary": [], "sensitivity.samples": 0,
                                           "sensitivity.reps": reps,
                                           "sensitivity.ranges": {"dropout.fraction": [0.0, 0.3]}}, "pooled")
    result = sensitivity(scenario, RunSettings(seed=seed, progress=False), comparison=TWO)
    out = result.to_json()
    base = cbcp_sim.simulate(scenario, reps=reps, seed=seed)
    assert out["comparison"] == TWO and out["base_power"] == base.row(TWO)["power"] != base.primary["power"]
    high = cbcp_sim.simulate(scenario.replace({"dropout.fraction": 0.3}), reps=reps, seed=seed)
    assert out["tornado"][0]["power_high"] == high.row(TWO)["power"]
    assert out["unit"] == "GMFM-66 points" and out["endpoint"] == "change"
    text = str(result)
    assert f"ancova, comparison {TWO})" in text and "  estimand   " in text and "  endpoint   " in text
    with pytest.raises(cbcp_sim.SettingsError, match="'single dose vs sham', 'two doses vs sham'"):
        sensitivity(scenario, RunSettings(seed=seed), comparison="two doses")


# --- notebook 4's dropout example shows what it says (issue 18 point 13) --------------------------------------


def _notebook_cells() -> dict[str, str]:
    import nbformat

    nb = nbformat.read(default_scenario_path().parents[1] / "notebooks" / "04_sensitivity.ipynb", as_version=4)
    return {c.id: c.source for c in nb.cells}


def test_notebook_mar_example_shows_completers_bias_and_not_mmrm():
    """The notebook's illustration (its ILLUSTRATION values, read from the notebook) under MAR dropout of 40%:
    the completers' ANCOVA is biased upward by many MCSEs and a sizeable share of the true effect, the MMRM is
    within Monte Carlo error of zero, and under MCAR neither is biased (1,000 trials)."""
    import ast

    source = _notebook_cells()["cell-15"]
    assign = next(n for n in ast.parse(source).body if isinstance(n, ast.Assign) and n.targets[0].id == "ILLUSTRATION")
    illustration = ast.literal_eval(assign.value)
    scenario = load_scenario(default_scenario_path()).replace(illustration)

    def rows(mechanism: str) -> dict[str, dict]:
        variant = scenario.replace({"dropout.mechanism": mechanism, "dropout.fraction": 0.4,
                                    "analysis.secondary": ["mmrm"]})
        return {r["analysis"]: r for r in cbcp_sim.simulate(variant, reps=1000, seed=2).rows}

    mar, mcar = rows("mar"), rows("mcar")
    assert mar["ancova"]["bias"] > 6 * mar["ancova"]["bias_mcse"]
    assert mar["ancova"]["bias"] > 0.1 * mar["ancova"]["true_effect"]
    assert abs(mar["mmrm"]["bias"]) < 3 * mar["mmrm"]["bias_mcse"]
    for r in mcar.values():
        assert abs(r["bias"]) < 3 * r["bias_mcse"]


def test_notebook_dropout_prose_has_no_number_the_code_does_not_print():
    """The dropout section's prose gives no figure of its own: every number is printed by its cells."""
    cells = _notebook_cells()
    for key in ("cell-14", "cell-15b"):
        assert not any(ch.isdigit() for ch in cells[key]), cells[key]
