"""Sample size: the simulated search against the closed-form t-test sample size, the probit fit, and the CLI.

On the plain normal model (SD of the 12-month change 5.5) the t-test on change has a closed-form sample size
(statsmodels ``TTestIndPower.solve_power``); the simulated answer must be within one child per arm of its
ceiling, for equal and 1:2 allocation and one-sided alpha 0.025.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import special, stats
from statsmodels.stats.power import TTestIndPower

import cbcp_sim
from cbcp_sim.planning.sample_size import fit_probit, sample_size
from cbcp_sim.run.settings import RunSettings
from cbcp_sim.scenario import Scenario, default_scenario_path, load_scenario

from .support import PLAIN, assert_one_line_error, cli, plain_toml

SD_CHANGE = 5.5  # outcome.sd 5.5 with correlation 0.5: the SD of the change is also 5.5
REPS = 10_000
SEED = 1


def _plain(effect: float, **overrides) -> Scenario:
    return load_scenario(default_scenario_path(), {**PLAIN, "outcome.effect": effect, **overrides})


def _reference_n(effect: float, target: float, *, ratio: float = 1.0, alpha: float = 0.05, sides: int = 2) -> int:
    """Closed-form children in the control arm (statsmodels nobs1; nobs2 = ratio * nobs1), rounded up."""
    alternative = "two-sided" if sides == 2 else "larger"
    n = TTestIndPower().solve_power(effect_size=effect / SD_CHANGE, power=target, alpha=alpha, ratio=ratio,
                                    alternative=alternative)
    return math.ceil(n)


def _multiplier(n_per_arm: int | list[int]) -> int:
    return n_per_arm if isinstance(n_per_arm, int) else math.gcd(*n_per_arm)


def _check_answer(result, scenario: Scenario, target: float) -> None:
    """The curve is sorted and holds the answer; the fitted curve crosses the target between answer - 1 and the
    answer; the reported power and MCSE are those of a plain simulation at the answer (same reps and seed)."""
    curve = result.curve
    totals = [c["total"] for c in curve]
    assert totals == sorted(totals) and len(set(totals)) == len(totals)
    rows = [c for c in curve if c["n_per_arm"] == result.n_per_arm]
    assert len(rows) == 1, (result.n_per_arm, [c["n_per_arm"] for c in curve])
    at_answer = rows[0]
    # the fitted curve Φ(a + b √m) is recovered exactly from any two of its points
    m = np.array([_multiplier(c["n_per_arm"]) for c in curve], float)
    b, a = np.polyfit(np.sqrt(m), special.ndtri([c["fitted_power"] for c in curve]), 1)
    assert b > 0
    answer = result.multiplier
    assert answer == _multiplier(result.n_per_arm)
    assert result.fitted_power == pytest.approx(at_answer["fitted_power"], abs=1e-12)
    assert result.fitted_power >= target
    assert special.ndtr(a + b * math.sqrt(answer)) == pytest.approx(result.fitted_power, abs=1e-9)
    assert special.ndtr(a + b * math.sqrt(answer - 1)) < target
    row = result.result.primary
    assert (row["power"], row["mcse"]) == (at_answer["power"], at_answer["mcse"])
    n_per_arm = result.n_per_arm if isinstance(result.n_per_arm, list) else [result.n_per_arm] * 2
    direct = cbcp_sim.simulate(scenario.replace({"design.n_per_arm": n_per_arm}), reps=REPS, seed=SEED).primary
    assert row["power"] == direct["power"]
    assert row["mcse"] == direct["mcse"]
    p = row["power"]
    assert row["mcse"] == pytest.approx(math.sqrt(p * (1 - p) / REPS), rel=1e-12)
    assert result.result.scenario.design.n_per_arm == tuple(n_per_arm)


@pytest.mark.parametrize(("effect", "target"), [(3.0, 0.8), (3.0, 0.9), (4.0, 0.8), (4.0, 0.9)])
def test_sample_size_matches_closed_form(effect, target):
    """Equal arms, two-sided alpha 0.05: n per arm within 1 of ceil(statsmodels solve_power) at 80% and 90%."""
    scenario = _plain(effect)
    expected = _reference_n(effect, target)
    assert 20 <= expected <= 80
    result = sample_size(scenario, target, RunSettings(reps=REPS, seed=SEED))
    assert isinstance(result.n_per_arm, int)
    assert abs(result.n_per_arm - expected) <= 1, (result.n_per_arm, expected)
    _check_answer(result, scenario, target)


def test_sample_size_unequal_allocation_matches_ratio_two():
    """Allocation 1:2 (n_per_arm [k, 2k]): the control arm's n within 1 of statsmodels with ratio=2."""
    scenario = _plain(3.0, **{"design.n_per_arm": [20, 40]})
    expected = _reference_n(3.0, 0.8, ratio=2.0)
    result = sample_size(scenario, 0.8, RunSettings(reps=REPS, seed=SEED))
    control, active = result.n_per_arm
    assert active == 2 * control
    assert abs(control - expected) <= 1, (control, expected)
    assert result.allocation == (1, 2)
    assert result.to_json()["total"] == 3 * control
    _check_answer(result, scenario, 0.8)


@pytest.mark.parametrize("alpha", [0.025, 0.05])
def test_sample_size_one_sided_alpha(alpha):
    """One-sided test (active > control): n per arm within 1 of statsmodels' alternative='larger'."""
    # at alpha 0.025 the answer is that of the two-sided 0.05 test; at one-sided 0.05 it is about 20% smaller, so
    # a search that ignored design.sides would fail here
    scenario = _plain(3.5, **{"design.sides": 1, "design.alpha": alpha})
    expected = _reference_n(3.5, 0.85, alpha=alpha, sides=1)
    result = sample_size(scenario, 0.85, RunSettings(reps=REPS, seed=SEED))
    assert abs(result.n_per_arm - expected) <= 1, (result.n_per_arm, expected)
    _check_answer(result, scenario, 0.85)


# --- the probit fit -------------------------------------------------------------------------------------------


def _nll(a: float, b: float, m: np.ndarray, k: np.ndarray, n: np.ndarray) -> float:
    """Binomial negative log-likelihood of power = Φ(a + b √m), written independently of the module."""
    p = stats.norm.cdf(a + b * np.sqrt(m))
    return -float(np.sum(k * np.log(p) + (n - k) * np.log1p(-p)))


@pytest.mark.parametrize(("a", "b"), [(-2.0, 0.45), (-1.2, 0.3), (0.5, 0.05)])
def test_fit_probit_recovers_exact_expectations(a, b):
    """With successes = n·Φ(a + b√m) exactly (the expected counts), the maximum likelihood fit is (a, b)."""
    m = np.arange(20, 61, 5, dtype=float)
    n = np.full(m.size, 5000.0)
    k = n * stats.norm.cdf(a + b * np.sqrt(m))
    a_hat, b_hat = fit_probit(m, k, n)
    assert a_hat == pytest.approx(a, abs=1e-4)
    assert b_hat == pytest.approx(b, abs=1e-4)


def test_fit_probit_is_a_maximum_of_the_likelihood():
    """On noisy counts, moving either parameter away from the fit raises the negative log-likelihood."""
    rng = np.random.default_rng(2024)
    m = np.arange(30, 71, 4, dtype=float)
    n = np.full(m.size, 2000.0)
    k = rng.binomial(2000, stats.norm.cdf(-1.5 + 0.35 * np.sqrt(m))).astype(float)
    a_hat, b_hat = fit_probit(m, k, n)
    best = _nll(a_hat, b_hat, m, k, n)
    for da, db in [(1e-3, 0), (-1e-3, 0), (0, 1e-4), (0, -1e-4), (1e-3, -1e-4), (-1e-3, 1e-4)]:
        assert _nll(a_hat + da, b_hat + db, m, k, n) > best, (da, db)


# --- the command line -------------------------------------------------------------------------------------------


def _toml(tmp_path, effect: float = 4.0, n_per_arm: str = "36") -> str:
    path = tmp_path / "plain.toml"
    path.write_text(plain_toml(effect, n_per_arm))
    return str(path)


def test_cli_sample_size_json(capsys, tmp_path):
    """`sample-size --target 0.8 --json` prints n_per_arm (a number), power, mcse, fitted_power and the curve."""
    code, out, err = cli(capsys, "sample-size", _toml(tmp_path), "--target", "0.8", "--reps", "2000", "--jobs", "1",
                         "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["kind"] == "sample-size"
    assert data["target"] == 0.8
    assert isinstance(data["n_per_arm"], int)
    assert abs(data["n_per_arm"] - _reference_n(4.0, 0.8)) <= 2  # 2000 trials per size: a looser check
    assert data["fitted_power"] >= 0.8
    assert 0.0 < data["mcse"] == pytest.approx(math.sqrt(data["power"] * (1 - data["power"]) / 2000))
    assert data["reps"] == 2000 and data["seed"] == 1
    assert data["total"] == 2 * data["n_per_arm"]
    rows = [c for c in data["curve"] if c["n_per_arm"] == data["n_per_arm"]]
    assert len(rows) == 1
    assert (rows[0]["power"], rows[0]["mcse"], rows[0]["fitted_power"]) == (
        data["power"], data["mcse"], data["fitted_power"])
    for row in data["curve"]:
        assert set(row) >= {"n_per_arm", "total", "power", "mcse", "fitted_power"}


def test_cli_sample_size_unequal_allocation_lists(capsys, tmp_path):
    """With n_per_arm = [k, 2k] the JSON gives n_per_arm as one number per arm, in the curve too."""
    code, out, err = cli(capsys, "sample-size", _toml(tmp_path, 4.0, "[20, 40]"), "--target", "0.8", "--reps",
                         "1000", "--jobs", "1", "--json")
    assert code == 0, err
    data = json.loads(out)
    control, active = data["n_per_arm"]
    assert active == 2 * control
    assert data["total"] == control + active
    for row in data["curve"]:
        assert isinstance(row["n_per_arm"], list) and row["n_per_arm"][1] == 2 * row["n_per_arm"][0]


def test_cli_sample_size_text(capsys, tmp_path):
    """The text output names the answer and the target."""
    code, out, err = cli(capsys, "sample-size", _toml(tmp_path), "--target", "0.8", "--reps", "1000", "--jobs", "1")
    assert code == 0, err
    assert "target power 0.8" in out
    assert "n_per_arm" in out


@pytest.mark.parametrize("target", ["1.5", "0", "1", "-0.2"])
def test_cli_sample_size_target_outside_unit_interval(capsys, tmp_path, target):
    """A target power outside (0, 1) exits 2 with one line naming --target."""
    code, out, err = cli(capsys, "sample-size", _toml(tmp_path), "--target", target, "--jobs", "1")
    assert_one_line_error(code, out, err, "error: --target:", "(0, 1)")


def test_cli_sample_size_target_beyond_max_n(capsys, tmp_path):
    """A target the largest size allowed cannot reach exits 2 with one line naming --target and max_n."""
    code, out, err = cli(capsys, "sample-size", _toml(tmp_path, 1.0), "--target", "0.9", "--max-n", "10", "--reps",
                         "500", "--jobs", "1")
    assert_one_line_error(code, out, err, "error: --target:", "max_n 10 per arm")


def test_cli_sample_size_max_n_too_small(capsys, tmp_path):
    """--max-n below 2 children per arm exits 2 with one line naming --max-n."""
    code, out, err = cli(capsys, "sample-size", _toml(tmp_path), "--max-n", "1", "--jobs", "1")
    assert_one_line_error(code, out, err, "error: --max-n:")


def test_design_power_with_interim_looks_is_the_group_sequential_power():
    """With interim looks, the power a search or assurance counts is the group-sequential power, not the
    fixed design's."""
    scenario = load_scenario(default_scenario_path().parent / "group_sequential.toml")
    result = cbcp_sim.simulate(scenario, reps=400, seed=2)
    successes, trials = result.successes
    assert trials == 400 - result.sequential["n_failed"]
    assert successes / trials == pytest.approx(result.sequential["power"], abs=1e-12)
    assert result.design_power["power"] == pytest.approx(result.sequential["power"], abs=1e-12)
    assert result.design_power["power"] != result.primary["power"]


@pytest.mark.parametrize("argv", [["sample-size", "--target", "80"], ["sample-size", "--reps", "0"],
                                  ["run", "--reps", "0"], ["run", "--jobs", "0"], ["run", "--seed", "-1"],
                                  ["sample-size", "--plot", "curve.gif"]])
def test_refused_options_leave_no_output_directory(capsys, tmp_path, argv):
    """A bad option with --out is refused in one line before anything is written: the directory is not
    created, so the corrected command can use it."""
    out = tmp_path / "out"
    code, stdout, err = cli(capsys, *argv, "--out", str(out), "--jobs" if "--jobs" not in argv else "--seed",
                            "1")
    assert_one_line_error(code, stdout, err, "error: --")
    assert not out.exists()


# --- the comparison powered (issue 18 points 5 and 6) --------------------------------------------------------

REPEAT_DOSE = default_scenario_path().parent / "repeat_dose.toml"
TWO = "two doses vs sham"


def test_sample_size_powers_the_named_comparison(tmp_path):
    """comparison="two doses vs sham" searches on that comparison's power: every size's power on the curve is
    its row's, the answer differs from the first comparison's, and the text and JSON name it; the directory of
    one comparison's search resumes another's (the trials are the same)."""
    scenario = load_scenario(REPEAT_DOSE, {"analysis.secondary": []})
    settings = RunSettings(reps=400, seed=3, jobs=1, progress=False)
    first = sample_size(scenario, 0.8, settings)
    two = sample_size(scenario, 0.8, settings, comparison=TWO, out=tmp_path / "ss")
    assert first.to_json()["comparison"] == "single dose vs sham" and first.comparison == "single dose vs sham"
    out = two.to_json()
    assert out["comparison"] == TWO and two.row["comparison"] == TWO
    assert out["power"] == pytest.approx(two.result.row(TWO)["power"], abs=1e-12)
    assert two.n_per_arm < first.n_per_arm  # two doses need fewer children than one
    assert out["power"] >= 0.7
    assert json.loads((tmp_path / "ss" / "result.json").read_text())["comparison"] == TWO
    text = str(two)
    assert f"for ancova, comparison {TWO};" in text
    assert "  estimand      baseline-adjusted difference in mean score at month 12" in text
    assert "  endpoint      change from baseline to month 12" in text
    again = sample_size(scenario, 0.8, settings, out=tmp_path / "ss")
    assert again.n_per_arm == first.n_per_arm


def test_sample_size_refuses_an_unknown_comparison_before_any_work(tmp_path):
    with pytest.raises(cbcp_sim.SettingsError, match="'single dose vs sham', 'two doses vs sham'"):
        sample_size(load_scenario(REPEAT_DOSE), 0.8, RunSettings(reps=100), comparison="two doses",
                    out=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_sample_size_json_says_what_is_estimated(capsys, tmp_path):
    """--json gives the estimand, its unit and the endpoint beside the old fields."""
    code, out, err = cli(capsys, "sample-size", _toml(tmp_path), "--reps", "300", "--jobs", "1", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["estimand"].startswith("difference in mean change from baseline at month 12")
    assert data["unit"] == "outcome units" and data["endpoint"] == "change"
