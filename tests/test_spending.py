"""Kim-DeMets and Hwang-Shih-DeCani spending, two-sided bounds, a last look before information 1, futility bounds
from beta spending and the expected information at stopping, against R rpact 3.3.4 (tests/fixtures/rpact/
spending.json, made by spending.R); ``sequential.spending_parameter``; ``cbcp-sim boundaries --spending kim-demets
--parameter 3``; the simulated ``expected_information_n`` against the exact figure within Monte Carlo error."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from cbcp_sim.errors import ScenarioError
from cbcp_sim.scenario import default_scenario_path, load_scenario
from cbcp_sim.scenario.boundaries import boundaries, crossing, expected_information, spent
from tests.support import cli
from tests.test_boundaries import assert_efficacy_matches_rpact, assert_refused
from tests.test_sequential import DRIFT, POWER_REPS, run

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "rpact" / "spending.json").read_text())
DESIGNS = {case["name"]: case for case in FIXTURE["designs"]}


def from_fixture(case: dict):
    return boundaries(case["info"], case["alpha"], case["spending"], case["futility"], case["binding"],
                      spending_parameter=case["spending_parameter"], sided=case["sided"], early_end=True,
                      beta_spending=case.get("beta_spending"), beta=case.get("beta", 0.2),
                      beta_spending_parameter=case.get("beta_spending_parameter"))


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_design_matches_rpact(name):
    """Max abs differences over the 66 designs: bounds 3.3e-7 (10 looks), alpha spent 1e-8 (rpact floors the last
    to 1e-8), stage levels 1.6e-8; with beta spending futility bounds 2.7e-8, beta spent 1.7e-9, drift 2.5e-8
    (rpact sqrt(shift)) and cumulative power 8e-9."""
    case = DESIGNS[name]
    b = from_fixture(case)
    assert_efficacy_matches_rpact(b, case)
    if "beta_spending" in case:
        np.testing.assert_allclose(b.futility_z[:-1], case["futility_z"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(b.beta_spent, case["beta_spent"], rtol=0, atol=1e-7)
        assert b.drift == pytest.approx(case["drift"], abs=1e-6)
        np.testing.assert_allclose(np.cumsum(crossing(b, b.drift)[0]), case["power"], rtol=0, atol=1e-7)
        assert b.futility_z[-1] == -np.inf


@pytest.mark.parametrize("case", FIXTURE["power"], ids=lambda c: f"{c['design']}-drift{c['drift']}")
def test_stops_and_expected_n_match_rpact(case):
    """getPowerMeans (n = 100, two groups, known SD): rejectPerStage to 3.2e-8, futilityPerStage to 1.4e-9,
    expectedNumberOfSubjects / n = expected_information to 2.7e-8 (10 looks). With a last look at t_K < 1 rpact
    counts that look as n subjects: its figure is ours plus n (1 - t_K)."""
    name = case["design"]
    b = from_fixture(DESIGNS[name]) if name in DESIGNS else boundaries([0.5, 1.0])
    eff, fut = crossing(b, case["drift"])
    np.testing.assert_allclose(eff, case["reject"], rtol=0, atol=1e-7)
    if case["futility"]:
        np.testing.assert_allclose(fut[:-1], case["futility"], rtol=0, atol=1e-7)
    fraction = expected_information(b, case["drift"]) + 1.0 - b.info[-1]
    assert fraction == pytest.approx(case["expected_n"] / case["n_max"], abs=1e-7)


def test_spending_functions_at_one_and_limits():
    """Every family spends alpha at t = 1; kim-demets with rho = 1 and hsd with gamma = 0 spend alpha t."""
    t = np.array([0.2, 0.5, 1.0])
    for family, g in (("kim-demets", 3.0), ("hsd", -4.0), ("hsd", 1.0)):
        assert spent(family, 0.025, t, g)[-1] == pytest.approx(0.025, rel=1e-14)
    np.testing.assert_allclose(spent("kim-demets", 0.025, t, 1.0), 0.025 * t, rtol=1e-15)
    np.testing.assert_allclose(spent("hsd", 0.025, t, 0.0), 0.025 * t, rtol=1e-15)
    np.testing.assert_allclose(spent("hsd", 0.025, t, 1e-9), 0.025 * t, rtol=1e-8)


@pytest.mark.parametrize(("kwargs", "field", "fragment"), [
    ({"spending": "kim-demets"}, "spending", "needs spending_parameter, a number in [0.4, 8]"),
    ({"spending": "hsd", "spending_parameter": 6.0}, "spending_parameter", "[-10, 5]"),
    ({"spending": "obf", "spending_parameter": 2.0}, "spending_parameter", "used only by kim-demets and hsd"),
    ({"sided": 3}, "sided", "1 or 2"),
    ({"sided": 2, "futility": [0.0, 0.0]}, "sided", "no futility"),
    ({"info": [0.3, 0.6, 0.8]}, "info", "ending at 1"),
    ({"info": [0.8], "early_end": True}, "info", "ending at 1"),
    ({"info": [0.3, 0.6, 0.8], "early_end": True, "beta_spending": "obf"}, "beta_spending", "information 1"),
    ({"beta_spending": "obf", "futility": [0.0, 0.0]}, "beta_spending", "without given futility"),
    ({"beta_spending": "kim-demets"}, "beta_spending", "needs beta_spending_parameter"),
    ({"beta_spending": "obf", "beta": 0.6}, "beta", "(0, 0.5)"),
])
def test_errors_name_the_field(kwargs, field, fragment):
    assert_refused(kwargs, field, fragment)


def test_cli_kim_demets_parameter_3(capsys):
    """`cbcp-sim boundaries --info 1/3,2/3,1 --spending kim-demets --parameter 3 --json` gives rpact's asKD bounds
    with gammaA = 3; the text names the family and its parameter."""
    case = DESIGNS["kd3_K3"]
    argv = ["boundaries", "--info", ",".join(repr(t) for t in case["info"]), "--spending", "kim-demets",
            "--parameter", "3"]
    code, out, err = cli(capsys, *argv, "--json")
    assert code == 0 and err == ""
    data = json.loads(out)
    np.testing.assert_allclose(data["critical_z"], case["critical_z"], rtol=0, atol=1e-6)
    assert data["spending"] == "kim-demets" and data["spending_parameter"] == 3.0
    code, out, err = cli(capsys, *argv)
    assert code == 0 and "kim-demets (3) alpha spending" in out.splitlines()[0]


def test_cli_beta_spending_and_two_sided(capsys):
    """--beta-spending gives rpact's futility bounds and drift; --sided 2 rpact's two-sided bounds."""
    case = DESIGNS["kim-demets_bskim-demets2_K4u_binding"]
    code, out, _ = cli(capsys, "boundaries", "--json", "--info", "0.3,0.55,0.8,1", "--spending", "kim-demets",
                       "--parameter", "3", "--beta-spending", "kim-demets", "--beta-parameter", "2", "--beta", "0.1",
                       "--binding")
    assert code == 0
    data = json.loads(out)
    np.testing.assert_allclose(data["futility_z"][:-1], case["futility_z"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(data["critical_z"], case["critical_z"], rtol=0, atol=1e-6)
    assert data["drift"] == pytest.approx(case["drift"], abs=1e-6)
    case = DESIGNS["pocock_K3_2sided"]
    code, out, _ = cli(capsys, "boundaries", "--json", "--info", ",".join(repr(t) for t in case["info"]),
                       "--spending", "pocock", "--sided", "2", "--alpha", "0.05")
    assert code == 0
    np.testing.assert_allclose(json.loads(out)["critical_z"], case["critical_z"], rtol=0, atol=1e-6)


# ---- the scenario ------------------------------------------------------------------------------------------------

BASE = {"operations.enabled": True, "sequential.interims": [0.5]}


def test_scenario_spending_parameter():
    s = load_scenario(default_scenario_path(), {**BASE, "sequential.spending": "hsd",
                                                "sequential.spending_parameter": -4})
    assert s.sequential.spending_parameter == -4.0
    assert load_scenario(default_scenario_path(), BASE).sequential.spending_parameter is None


@pytest.mark.parametrize(("overrides", "field", "fragment"), [
    ({"sequential.spending": "kim-demets"}, "sequential.spending", "needs spending_parameter"),
    ({"sequential.spending": "kim-demets", "sequential.spending_parameter": 0.1},
     "sequential.spending_parameter", "[0.4, 8]"),
    ({"sequential.spending_parameter": 2}, "sequential.spending_parameter", "used only by"),
    ({"sequential.spending": "hsd", "sequential.spending_parameter": 9}, "sequential.spending_parameter", "[-10, 8]"),
])
def test_scenario_spending_parameter_errors(overrides, field, fragment):
    with pytest.raises(ScenarioError) as err:
        load_scenario(default_scenario_path(), {**BASE, **overrides})
    assert err.value.path == field
    assert fragment in err.value.message


# ---- the simulated expected information ----------------------------------------------------------------------------


def test_simulated_expected_information_n():
    """OBF, one interim at half the information, 50 children per arm, no dropout, drift 2.8 (the runs of
    tests/test_sequential.py): the interim analyses 50 children and the final 100, so expected_information_n is
    100 - 50 P(stop at the interim), exactly, and agrees with rpact's expectedNumberOfSubjects (fixture obf_K2;
    n 100 expected_information) within 3 MCSE plus the t-versus-z allowance of the interim stop (0.024, see
    test_sequential.test_power_and_stops_match_crossing) times 50. Under no effect: the same."""
    seq = run("power_obf").sequential
    b = boundaries([0.5, 1.0])
    rpact = {c["drift"]: c["expected_n"] for c in FIXTURE["power"] if c["design"] == "obf_K2"}
    for prefix, drift in (("", DRIFT), ("null_", 0.0)):
        stop = seq[f"{prefix}stop_efficacy"][0] + seq[f"{prefix}stop_futility"][0]
        assert seq[f"{prefix}expected_information_n"] == pytest.approx(100 - 50 * stop, abs=1e-9)
        exact = 100 * expected_information(b, drift)
        assert exact == pytest.approx(rpact[drift], abs=1e-6)
        mcse = 50 * math.sqrt(max(stop * (1 - stop), 1e-4) / POWER_REPS)
        assert abs(seq[f"{prefix}expected_information_n"] - exact) <= 3 * mcse + 50 * 0.024
        assert seq[f"{prefix}expected_information_n"] <= seq[f"{prefix}expected_children"] + 1e-9
