"""Analytic MMRM power (Lu, Luo & Chen 2008, as R longpower's ``power.mmrm``): longpower's documented example,
R fixtures, closed forms, round trips, monotonicity and the command line.

References: longpower 1.0.27, ``man/power.mmrm.Rd`` examples, whose printed output is on the package's reference
page (``reference/power.mmrm.html`` of github.com/mcdonohue/longpower): exchangeable correlation 0.25 over 4
post-baseline visits, retention 1, 0.9, 0.8, 0.7, sigma 1, delta 0.5, two-sided 0.05, 80% power gives
``n1 = n2 = 86.99175`` (N = 173.98, phi = N delta² / (4 (z_0.975 + z_0.8)²) = 1.3854); at N = 174, power
0.8000372 and delta 0.4999763; at lambda 2, n1 130.4876, n2 65.24381, and at N = 174 power 0.7522291, delta
0.5303049. ``tests/fixtures/mmrm_power`` holds more designs computed by longpower itself (see its README).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.power import TTestIndPower

import cbcp_sim
from cbcp_sim.errors import SettingsError
from cbcp_sim.planning.mmrm_power import correlation_matrix, mmrm_power, phi

from .support import assert_one_line_error, cli, floats, stable

FIXTURES = Path(__file__).parent / "fixtures" / "mmrm_power"
CS = correlation_matrix("cs", 0.25, 4)
RA = [1.0, 0.9, 0.8, 0.7]
DOC = {"Ra": CS, "ra": RA, "sigmaa": 1.0}


def _phi_by_patterns(R: np.ndarray, r: np.ndarray) -> float:
    """Lu et al.'s phi written as longpower does: the information summed over dropout patterns from the
    inverses of the leading blocks, then the last diagonal element of its inverse."""
    J = len(r)
    shares = np.append(r, 0.0)[:-1] - np.append(r, 0.0)[1:]
    info = np.zeros((J, J))
    for j in range(1, J + 1):
        info[:j, :j] += shares[j - 1] * np.linalg.inv(R[:j, :j])
    return float(np.linalg.inv(info)[-1, -1])


# --- longpower's documented example ---------------------------------------------------------------------------


def test_documented_example():
    """phi 1.3854 and N 173.98 (n1 = n2 = 86.99175 printed by longpower), to 1e-6 relative."""
    result = mmrm_power(delta=0.5, power=0.8, **DOC)
    assert result.phi == pytest.approx(1.38541666666667, rel=1e-9)
    assert result.phi1 == result.phi2 == result.phi
    assert pytest.approx(173.98, abs=0.005) == result.N
    assert result.n1 == pytest.approx(86.99175, rel=1e-6)
    assert result.n2 == pytest.approx(86.99175, rel=1e-6)
    assert result.solved == "N"


@pytest.mark.parametrize(("kwargs", "field", "printed"), [
    ({"N": 174, "delta": 0.5}, "power", 0.8000372),
    ({"N": 174, "power": 0.8}, "delta", 0.4999763),
    ({"delta": 0.5, "power": 0.8, "lambda_": 2}, "n1", 130.4876),
    ({"delta": 0.5, "power": 0.8, "lambda_": 2}, "n2", 65.24381),
    ({"N": 174, "delta": 0.5, "lambda_": 2}, "power", 0.7522291),
    ({"N": 174, "power": 0.8, "lambda_": 2}, "delta", 0.5303049),
])
def test_documented_example_other_solves(kwargs, field, printed):
    """The other printed lines of longpower's example (7 significant digits)."""
    assert getattr(mmrm_power(**kwargs, **DOC), field) == pytest.approx(printed, rel=1e-6)


def test_phi_equals_the_sum_over_dropout_patterns():
    """The Cholesky form of phi is longpower's sum over patterns, on random correlations and retentions."""
    rng = np.random.default_rng(7)
    for _ in range(20):
        J = int(rng.integers(1, 7))
        A = rng.normal(size=(J, J + 2))
        S = A @ A.T
        R = S / np.sqrt(np.outer(np.diag(S), np.diag(S)))
        r = np.sort(rng.uniform(0.3, 1.0, J))[::-1]
        assert phi(R, r) == pytest.approx(_phi_by_patterns(R, r), rel=1e-10)


# --- R longpower fixtures ---------------------------------------------------------------------------------------


def _cases() -> dict:
    return {k: v for k, v in json.loads((FIXTURES / "reference.json").read_text()).items() if k != "_meta"}


@pytest.mark.parametrize("name", sorted(_cases()))
def test_matches_longpower(name):
    """Every design of the fixture (made by longpower 1.0.27's power.mmrm): N, n1, n2, power, delta, phi to 1e-6."""
    case = _cases()[name]
    a = dict(case["args"])
    kwargs = {"N": a.pop("N", None), "delta": a.pop("delta", None), "power": a.pop("power", None),
              "sig_level": a.pop("sig.level", 0.05), "lambda_": a.pop("lambda", 1.0), **a}
    result = mmrm_power(**kwargs)
    for field in ("N", "n1", "n2", "power", "delta", "phi"):
        if field in case:
            assert getattr(result, field) == pytest.approx(case[field], rel=1e-6), field


# --- closed forms and round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize(("delta", "power", "lam", "alternative"),
                         [(0.5, 0.8, 1.0, "two.sided"), (0.3, 0.9, 2.0, "two.sided"), (1.1, 0.85, 0.5, "one.sided")])
def test_one_visit_full_retention_is_the_two_sample_z_test(delta, power, lam, alternative):
    """One visit, no dropout: phi = 1 and N = (1 + lambda)(1 + 1/lambda)(z_(1-a') + z_power)² sigma² / delta²."""
    sigma, alpha = 2.0, 0.05
    tail = alpha / 2 if alternative == "two.sided" else alpha
    expected = (1 + lam) * (1 + 1 / lam) * (stats.norm.ppf(1 - tail) + stats.norm.ppf(power)) ** 2 * sigma**2 \
        / (delta * sigma) ** 2
    result = mmrm_power(delta=delta * sigma, power=power, Ra=[[1.0]], ra=[1.0], sigmaa=sigma, lambda_=lam,
                        alternative=alternative)
    assert result.phi == 1.0
    assert pytest.approx(expected, rel=1e-12) == result.N
    assert result.n1 / result.n2 == pytest.approx(lam, rel=1e-12)


@pytest.mark.parametrize("effect", [0.5, 0.8, 1.2])
def test_t_version_one_visit_close_to_the_exact_t_test(effect):
    """The t version with one visit and no dropout is within 0.1 children (in total) of the exact two-sample
    t-test size (statsmodels, noncentral t), and a little above the z answer."""
    exact = 2 * TTestIndPower().solve_power(effect_size=effect, power=0.8, alpha=0.05)
    t = mmrm_power(delta=effect, power=0.8, Ra=[[1.0]], ra=[1.0], sigmaa=1.0, test="t")
    z = mmrm_power(delta=effect, power=0.8, Ra=[[1.0]], ra=[1.0], sigmaa=1.0)
    assert abs(t.N - exact) < 0.1
    assert 0 < t.N - z.N < 4


def test_t_version_near_longpower_one_step():
    """Lu et al. Table 1 as longpower's example computes it: one t step from the z answer, 168.1188 -> 170.1476
    (phi 1, lambda 1, delta 0.5, 90% power). Our t answer is the fixed point of that step: a step from a smaller
    df overshoots it, so it lies between the z answer and the one step, within 0.05 of the step."""
    z = mmrm_power(delta=0.5, power=0.9, Ra=[[1.0]], ra=[1.0], sigmaa=1.0)
    t = mmrm_power(delta=0.5, power=0.9, Ra=[[1.0]], ra=[1.0], sigmaa=1.0, test="t")
    assert pytest.approx(168.1188, rel=1e-6) == z.N
    assert 170.1476 - 0.05 < t.N < 170.1476


@pytest.mark.parametrize("test", ["z", "t"])
@pytest.mark.parametrize("alternative", ["two.sided", "one.sided"])
def test_round_trips(test, alternative):
    """N for 80% power, then power at that N is 0.8; delta at that N and 80% is the delta asked."""
    design = {"Ra": correlation_matrix("ar1", 0.6, 5), "ra": [1, 0.95, 0.9, 0.8, 0.75], "sigmaa": 5.5,
              "rb": [1, 0.9, 0.85, 0.8, 0.7], "lambda_": 1.5, "alternative": alternative, "test": test}
    n = mmrm_power(delta=3.0, power=0.8, **design).N
    assert mmrm_power(N=n, delta=3.0, **design).power == pytest.approx(0.8, abs=1e-9)
    assert mmrm_power(N=n, power=0.8, **design).delta == pytest.approx(3.0, rel=1e-9)


# --- properties ---------------------------------------------------------------------------------------------------


@st.composite
def designs(draw):
    J = draw(st.integers(1, 6))
    rho = draw(floats(-0.15, 0.95))
    r = sorted((draw(floats(0.3, 1.0)) for _ in range(J)), reverse=True)
    return correlation_matrix(draw(st.sampled_from(["cs", "ar1"])), rho, J), r


@stable(60)
@given(designs(), floats(0.2, 2.0), floats(0.55, 0.95), st.sampled_from(["z", "t"]))
def test_monotone(design, delta, power, test):
    """N falls with delta and rises with power; power rises with N; phi is in [1, 1 / r_J] and rises when any
    retention falls."""
    R, r = design
    kw = {"Ra": R, "ra": r, "sigmaa": 1.0, "test": test}
    n = mmrm_power(delta=delta, power=power, **kw).N
    assert n > mmrm_power(delta=delta * 1.1, power=power, **kw).N
    assert n < mmrm_power(delta=delta, power=min(power + 0.02, 0.99), **kw).N
    assert mmrm_power(N=n * 1.2, delta=delta, **kw).power > power
    p = phi(R, r)
    assert 1 - 1e-12 <= p <= 1 / r[-1] + 1e-12
    lower = [x * 0.9 for x in r]
    assert phi(R, lower) > p


def test_no_dropout_means_no_inflation():
    """With every retention 1, phi is 1 whatever the correlation."""
    assert phi(correlation_matrix("cs", 0.7, 5), [1.0] * 5) == pytest.approx(1.0, rel=1e-12)


# --- the result ---------------------------------------------------------------------------------------------------


def test_result_prints_and_serialises():
    result = cbcp_sim.mmrm_power(delta=0.5, power=0.8, **DOC)
    text = str(result)
    assert "173.98" in text and "1.3854" in text and "(solved)" in text
    out = result.to_json()
    assert out["kind"] == "mmrm-power" and out["N"] == result.N and out["phi"] == result.phi
    json.dumps(out, allow_nan=False)


@pytest.mark.parametrize(("kwargs", "path"), [
    ({"delta": 0.5}, "N"),
    ({"N": 100, "delta": 0.5, "power": 0.8}, "N"),
    ({"delta": 0.5, "power": 0.8, "Ra": [[1, 1.2], [1.2, 1]], "ra": [1, 0.9]}, "Ra"),
    ({"delta": 0.5, "power": 0.8, "Ra": [[1, 0.2], [0.3, 1]], "ra": [1, 0.9]}, "Ra"),
    ({"delta": 0.5, "power": 0.8, "ra": [1, 0.9, 0.95, 0.8]}, "ra"),
    ({"delta": 0.5, "power": 0.8, "ra": [1, 0.9, 0.8, 0.0]}, "ra"),
    ({"delta": 0.5, "power": 0.8, "ra": [1, 0.9, 0.8]}, "ra"),
    ({"delta": 0.5, "power": 0.8, "rb": [1, 0.9]}, "rb"),
    ({"delta": 0.5, "power": 1.0}, "power"),
    ({"delta": 0.5, "power": 0.02}, "power"),
    ({"delta": -0.5, "power": 0.8}, "delta"),
    ({"delta": 0.5, "power": 0.8, "sig_level": 0}, "sig_level"),
    ({"delta": 0.5, "power": 0.8, "lambda_": 0}, "lambda_"),
    ({"delta": 0.5, "power": 0.8, "sigmaa": -1}, "sigmaa"),
    ({"delta": 0.5, "power": 0.8, "test": "f"}, "test"),
    ({"delta": 0.5, "power": 0.8, "alternative": "less"}, "alternative"),
    ({"N": 2, "delta": 0.5, "test": "t"}, "N"),
])
def test_bad_input_names_the_parameter(kwargs, path):
    with pytest.raises(SettingsError) as info:
        mmrm_power(**{**DOC, **kwargs})
    assert info.value.path == path


@pytest.mark.parametrize(("structure", "rho", "visits", "path"),
                         [("cs", -0.4, 4, "correlation"), ("ar1", 1.0, 3, "correlation"), ("un", 0.2, 3, "correlation"),
                          ("cs", 0.2, 0, "visits")])
def test_bad_correlation(structure, rho, visits, path):
    with pytest.raises(SettingsError) as info:
        correlation_matrix(structure, rho, visits)
    assert info.value.path == path


# --- the command line -----------------------------------------------------------------------------------------


def test_cli_json(capsys):
    code, out, err = cli(capsys, "mmrm-power", "--delta", "0.5", "--power", "0.8", "--correlation", "cs:0.25",
                         "--ra", "1,0.9,0.8,0.7", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["N"] == pytest.approx(173.9835, rel=1e-6)
    assert data["phi"] == pytest.approx(1.3854167, rel=1e-6)
    assert data["solved"] == "N"


def test_cli_matrix_and_text(capsys):
    """--Ra as JSON or TOML gives the same answer as --correlation; the text names the solved quantity."""
    matrix = json.dumps(correlation_matrix("ar1", 0.5, 3).tolist())
    runs = [cli(capsys, "mmrm-power", "--N", "120", "--delta", "0.4", "--Ra", matrix, "--ra", "1,0.9,0.8",
                "--test", "t", "--json"),
            cli(capsys, "mmrm-power", "--N", "120", "--delta", "0.4", "--correlation", "ar1:0.5", "--visits", "3",
                "--ra", "1,0.9,0.8", "--test", "t", "--json")]
    assert [code for code, _, _ in runs] == [0, 0]
    assert json.loads(runs[0][1])["power"] == pytest.approx(json.loads(runs[1][1])["power"], rel=1e-12)
    code, out, _ = cli(capsys, "mmrm-power", "--N", "120", "--power", "0.9", "--Ra", "[[1, 0.5], [0.5, 1]]",
                       "--ra", "1,0.85", "--lambda", "2")
    assert code == 0
    assert out.splitlines()[3].startswith("  delta") and "(solved)" in out.splitlines()[3]


@pytest.mark.parametrize(("argv", "fragment"), [
    (["--delta", "0.5", "--correlation", "cs:0.25", "--ra", "1,0.9"], "--N"),
    (["--delta", "0.5", "--power", "0.8", "--Ra", "[[1, 1.5], [1.5, 1]]", "--ra", "1,0.9"], "--Ra"),
    (["--delta", "0.5", "--power", "0.8", "--Ra", "[[1, 0.5], [0.5", "--ra", "1,0.9"], "--Ra"),
    (["--delta", "0.5", "--power", "0.8", "--correlation", "cs:0.25", "--ra", "1,0.9,1.2"], "--ra"),
    (["--delta", "0.5", "--power", "0.8", "--correlation", "cs:0.25", "--ra", "1,x"], "--ra"),
    (["--delta", "0.5", "--power", "0.8", "--correlation", "cs:abc", "--ra", "1,0.9"], "--correlation"),
    (["--delta", "0.5", "--power", "0.8", "--correlation", "cs:0.25", "--visits", "0", "--ra", "1,0.9"], "--visits"),
    (["--delta", "0.5", "--power", "0.8", "--ra", "1,0.9"], "--Ra"),
    (["--delta", "0.5", "--power", "1.5", "--correlation", "cs:0.25", "--ra", "1,0.9"], "--power"),
    (["--delta", "0.5", "--power", "0.8", "--correlation", "cs:0.25", "--ra", "1,0.9", "--lambda", "-1"],
     "--lambda"),
    (["--delta", "0.5", "--power", "0.8", "--correlation", "cs:0.25", "--ra", "1,0.9", "--rb", "1,0.9,0.8"],
     "--rb"),
])
def test_cli_errors_are_one_line(capsys, argv, fragment):
    assert_one_line_error(*cli(capsys, "mmrm-power", *argv), fragment)
