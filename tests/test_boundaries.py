"""Lan–DeMets boundaries: R rpact 3.3.4 values (tests/fixtures/rpact), published values, scipy's multivariate
normal, Monte Carlo Brownian motion, hypothesis properties and one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from scipy.special import ndtr, ndtri

from cbcp_sim.errors import ScenarioError
from cbcp_sim.scenario.boundaries import MAX_LOOKS, SPENDING, Z_CAP, Boundaries, boundaries, crossing, spent
from tests.support import floats, stable

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "rpact" / "boundaries.json").read_text())
DESIGNS = {case["name"]: case for case in FIXTURE["designs"]}
N_PATHS = 200_000


def from_fixture(case: dict) -> Boundaries:
    return boundaries(case["info"], case["alpha"], case["spending"], case["futility"], case["binding"])


def z_paths(info, seed: int, drift: float = 0.0, n: int = N_PATHS) -> np.ndarray:
    """(n, K) z statistics of Brownian motion with drift observed at the information fractions."""
    t = np.asarray(info, dtype=float)
    dt = np.diff(t, prepend=0.0)
    steps = np.random.default_rng(seed).standard_normal((n, t.size)) * np.sqrt(dt) + drift * dt
    return np.cumsum(steps, axis=1) / np.sqrt(t)


def stopping(z: np.ndarray, b: Boundaries, futility: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Share of paths stopping for efficacy and for futility at each look (first boundary crossed)."""
    up = z >= b.critical_z
    down = z <= b.futility_z if futility else np.zeros_like(up)
    stop = up | down
    first = np.where(stop.any(axis=1), stop.argmax(axis=1), -1)
    rows = np.arange(len(z))
    eff = np.bincount(first[(first >= 0) & up[rows, first]], minlength=z.shape[1]) / len(z)
    fut = np.bincount(first[(first >= 0) & down[rows, first]], minlength=z.shape[1]) / len(z)
    return eff, fut


def mcse(p):
    return np.sqrt(np.asarray(p) * (1 - np.asarray(p)) / N_PATHS)


# ---- R rpact --------------------------------------------------------------------------------------------------


def assert_efficacy_matches_rpact(b, case: dict) -> None:
    """Bounds to 1e-6 (rpact reports bounds >= 7.5 as Inf, null in a fixture), alpha spent and stage levels
    to 1e-7."""
    rpact = np.array([np.inf if v is None else v for v in case["critical_z"]])
    finite = np.isfinite(rpact)
    np.testing.assert_allclose(b.critical_z[finite], rpact[finite], rtol=0, atol=1e-6)
    assert np.all(b.critical_z[~finite] >= 7.5)
    np.testing.assert_allclose(b.alpha_spent, case["alpha_spent"], rtol=0, atol=1e-7)
    np.testing.assert_allclose(b.nominal_p, case["nominal_p"], rtol=0, atol=1e-7)


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_bounds_match_rpact(name):
    """Max abs difference over all cases: bounds 4.9e-7 (pocock K = 10; 8e-8 for K <= 5), probabilities 1e-8
    (rpact floors the last alphaSpent to 1e-8)."""
    case = DESIGNS[name]
    b = from_fixture(case)
    assert_efficacy_matches_rpact(b, case)
    assert b.info == pytest.approx(case["info"], abs=1e-14)


@pytest.mark.parametrize("case", FIXTURE["power"], ids=lambda c: f"{c['design']}-drift{c['drift']}")
def test_crossing_matches_rpact(case):
    """rpact getPowerAndAverageSampleNumber: rejectPerStage to 5e-9, futilityPerStage to 1e-9 (rpact truncates
    the z scale at -6, so it reports ~1e-9 futility stops for designs without futility bounds)."""
    b = from_fixture(DESIGNS[case["design"]])
    eff, fut = crossing(b, case["drift"])
    np.testing.assert_allclose(eff, case["reject"], rtol=0, atol=1e-7)
    np.testing.assert_allclose(fut[:-1], case["futility"], rtol=0, atol=1e-7)
    assert fut[-1] == 0.0
    assert eff.sum() == pytest.approx(case["power"], abs=1e-7)


def test_capped_bound_where_rpact_reports_inf():
    """asOF at t = 0.02 spends 1e-56: the bound is capped at 8 (rpact: Inf) and the next looks match rpact."""
    case = DESIGNS["obf_K3_veryearly_a0.025"]
    b = from_fixture(case)
    assert case["critical_z"][0] is None
    assert b.critical_z[0] == Z_CAP
    assert b.alpha_spent[0] == pytest.approx(ndtr(-Z_CAP), rel=1e-12)
    np.testing.assert_allclose(b.critical_z[1:], case["critical_z"][1:], rtol=0, atol=1e-7)


# ---- published and closed-form values -------------------------------------------------------------------------


def test_published_two_look_values():
    """The commonly quoted two-look values (one-sided alpha 0.025, t = (0.5, 1)): asOF 2.963, 1.969; asP 2.157, 2.201
    (rpact 3.3.4: 2.962588, 1.968596; 2.156999, 2.200977)."""
    np.testing.assert_allclose(boundaries([0.5, 1.0]).critical_z, [2.963, 1.969], atol=5e-4)
    np.testing.assert_allclose(boundaries([0.5, 1.0], spending="pocock").critical_z, [2.157, 2.201], atol=5e-4)


@pytest.mark.parametrize("spending", SPENDING)
@pytest.mark.parametrize("alpha", [0.001, 0.025, 0.05, 0.2])
def test_one_look_is_the_fixed_sample_test(spending, alpha):
    b = boundaries([1.0], alpha, spending)
    assert b.critical_z[0] == pytest.approx(-ndtri(alpha), abs=1e-12)
    assert b.alpha_spent[0] == pytest.approx(alpha, rel=1e-12)
    assert b.nominal_p[0] == pytest.approx(alpha, rel=1e-12)
    eff, fut = crossing(b, 2.5)
    assert eff[0] == pytest.approx(ndtr(2.5 + ndtri(alpha)), abs=1e-14)
    assert fut[0] == 0.0


def test_spending_functions():
    """rpact, alpha 0.025: asOF spends 0.001525322757989 and asP 0.015502862673957 at t = 0.5; both alpha at 1."""
    t = np.array([0.5, 1.0])
    np.testing.assert_allclose(spent("obf", 0.025, t), [0.001525322757989, 0.025], rtol=1e-12)
    np.testing.assert_allclose(spent("pocock", 0.025, t), [0.015502862673957, 0.025], rtol=1e-12)


def test_bivariate_normal_two_looks():
    """Two looks, exact bivariate normal (corr sqrt(t1)): P(Z1 >= c1 or Z2 >= c2) = alpha; with binding futility f,
    P(Z1 >= c1) + P(f < Z1 < c1, Z2 >= c2) = alpha."""
    rho = math.sqrt(0.4)
    bvn = stats.multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]], abseps=1e-13, releps=0)
    for spending in SPENDING:
        c = boundaries([0.4, 1.0], 0.05, spending).critical_z
        assert 1 - bvn.cdf(c) == pytest.approx(0.05, abs=1e-10)
        b = boundaries([0.4, 1.0], 0.05, spending, futility=[0.3], binding=True)
        (c1, c2), f1 = b.critical_z, b.futility_z[0]
        reject = ndtr(-c1) + bvn.cdf([c1, np.inf], lower_limit=[f1, c2])
        assert reject == pytest.approx(0.05, abs=1e-10)


def test_trivariate_normal_three_looks():
    """scipy's multivariate normal (Genz, abseps 1e-8) for three unequal looks, without futility."""
    t = np.array([0.25, 0.6, 1.0])
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    b = boundaries(t, 0.025, "obf")
    mvn = stats.multivariate_normal(np.zeros(3), cov, abseps=1e-8, releps=0, maxpts=10_000_000)
    assert 1 - mvn.cdf(b.critical_z) == pytest.approx(0.025, abs=1e-7)


# ---- Monte Carlo ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("info", "spending", "seed"), [([0.25, 0.5, 0.75, 1.0], "obf", 1),
                                                       ([0.3, 0.7, 1.0], "pocock", 2)])
def test_type1_error_by_monte_carlo(info, spending, seed):
    b = boundaries(info, 0.025, spending)
    eff, fut = stopping(z_paths(info, seed=seed), b)
    assert abs(eff.sum() - 0.025) < 3 * mcse(0.025)
    assert fut.sum() == 0.0
    assert np.all(np.abs(eff - crossing(b, 0.0)[0]) < 3 * mcse(eff) + 1e-6)


def test_nonbinding_futility_keeps_alpha_and_stopping_at_it_spends_less():
    info = [1 / 3, 2 / 3, 1.0]
    b = boundaries(info, 0.025, "obf", futility=[0.0, 0.0])
    assert not b.binding
    np.testing.assert_array_equal(b.critical_z, boundaries(info, 0.025, "obf").critical_z)
    z = z_paths(info, seed=11)
    ignoring, _ = stopping(z, b, futility=False)
    respecting, _ = stopping(z, b)
    assert abs(ignoring.sum() - 0.025) < 3 * mcse(0.025)
    analytic = crossing(b, 0.0)[0].sum()
    assert analytic < 0.025 - 3 * mcse(0.025)
    assert abs(respecting.sum() - analytic) < 3 * mcse(analytic)


def test_binding_futility_spends_alpha_when_respected():
    info = [1 / 3, 2 / 3, 1.0]
    b = boundaries(info, 0.025, "pocock", futility=[0.0, 0.0], binding=True)
    nonbinding = boundaries(info, 0.025, "pocock", futility=[0.0, 0.0])
    assert b.critical_z[0] == nonbinding.critical_z[0]
    assert np.all(b.critical_z[1:] < nonbinding.critical_z[1:])
    eff, _ = stopping(z_paths(info, seed=12), b)
    assert abs(eff.sum() - 0.025) < 3 * mcse(0.025)
    assert crossing(b, 0.0)[0].sum() == pytest.approx(0.025, abs=1e-12)


@pytest.mark.parametrize("binding", [False, True])
def test_crossing_at_a_drift_matches_monte_carlo(binding):
    info = [0.3, 0.55, 0.8, 1.0]
    b = boundaries(info, 0.05, "obf", futility=[-0.5, 0.2, 0.8], binding=binding)
    eff, fut = crossing(b, 2.3)
    mc_eff, mc_fut = stopping(z_paths(info, drift=2.3, seed=13), b)
    assert np.all(np.abs(eff - mc_eff) < 3 * mcse(eff) + 1e-6)
    assert np.all(np.abs(fut - mc_fut) < 3 * mcse(fut) + 1e-6)


# ---- crossing -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["obf_K5_a0.025", "pocock_K10_a0.025", "obf_K3_unequal_b_a0.01",
                                  "obf_K3_veryearly_a0.025"])
def test_crossing_under_h0_spends_alpha(name):
    b = from_fixture(DESIGNS[name])
    eff, fut = crossing(b, 0.0)
    np.testing.assert_allclose(np.cumsum(eff), b.alpha_spent, rtol=1e-12, atol=1e-15)
    assert eff.sum() == pytest.approx(b.alpha, abs=1e-12)
    assert np.all(fut == 0.0)


def test_crossing_vectorises_over_drift():
    b = boundaries([0.3, 0.6, 1.0], 0.025, "pocock", futility=[0.0, None])
    drifts = np.array([-1.0, 0.0, 1.5, 3.0, 6.0])
    eff, fut = crossing(b, drifts)
    assert eff.shape == fut.shape == (5, 3)
    for i, d in enumerate(drifts):
        e, f = crossing(b, float(d))
        np.testing.assert_array_equal(eff[i], e)
        np.testing.assert_array_equal(fut[i], f)
    assert np.all(np.diff(eff.sum(axis=1)) > 0)             # power increases with the drift
    assert fut[:, 1:].max() == 0.0                          # no futility bound at looks 2 and 3
    assert np.all(eff.sum(axis=1) + fut.sum(axis=1) <= 1 + 1e-12)
    assert eff[-1].sum() > 0.999


def test_deterministic_and_read_only():
    a = boundaries([0.25, 0.6, 1.0], 0.025, "obf", futility=[0.0, 0.5], binding=True)
    b = boundaries([0.25, 0.6, 1.0], 0.025, "obf", futility=[0.0, 0.5], binding=True)
    np.testing.assert_array_equal(a.critical_z, b.critical_z)
    np.testing.assert_array_equal(crossing(a, 2.0)[0], crossing(b, 2.0)[0])
    with pytest.raises(ValueError):
        a.critical_z[0] = 0.0


def test_to_json():
    b = boundaries([0.5, 0.75, 1.0], 0.025, "pocock", futility=[-np.inf, 0.25])
    out = b.to_json()
    assert out == json.loads(json.dumps(out))
    assert set(out) == {"info", "alpha", "spending", "critical_z", "alpha_spent", "nominal_p", "futility_z", "binding"}
    assert out["futility_z"] == [None, 0.25, None]
    assert out["binding"] is False and out["spending"] == "pocock"
    assert all(type(v) is float for v in out["critical_z"] + out["alpha_spent"] + out["nominal_p"] + out["info"])


# ---- properties -----------------------------------------------------------------------------------------------


@st.composite
def designs(draw, min_gap: float = 0.01):
    """Information fractions (1 to 8 looks, gaps of at least ``min_gap``), alpha and spending."""
    k = draw(st.integers(1, 8))
    gaps = np.array(draw(st.lists(floats(min_gap, 1.0), min_size=k, max_size=k)))
    t = np.cumsum(gaps) / gaps.sum()
    t[-1] = 1.0
    if k > 1 and np.min(np.diff(t, prepend=0.0)) < 1e-3:
        t = np.arange(1, k + 1) / k
    return t, draw(floats(0.001, 0.3)), draw(st.sampled_from(SPENDING))


@stable(60)
@given(designs())
def test_alpha_spent_increases_to_alpha(design):
    t, alpha, spending = design
    b = boundaries(t, alpha, spending)
    assert np.all(np.diff(b.alpha_spent) > 0)
    assert b.alpha_spent[-1] == pytest.approx(alpha, rel=1e-10)
    np.testing.assert_allclose(b.alpha_spent, spent(spending, alpha, t), rtol=1e-9, atol=1e-15)  # capped: P(Z > 8)


@stable(60)
@given(st.lists(floats(0.01, 1.0), min_size=2, max_size=8), floats(0.001, 0.45))
def test_obf_bounds_decrease_when_looks_do_not_bunch_up(gaps, alpha):
    """With non-decreasing increments of information, asOF bounds fall look by look. (Not in general: for
    t = (0.9, 0.95, 1) the second look spends so little that its bound is the highest.)"""
    g = np.sort(gaps)
    t = np.cumsum(g) / g.sum()
    t[-1] = 1.0
    c = boundaries(t, alpha, "obf").critical_z
    c = c[c < Z_CAP]
    assert np.all(np.diff(c) < 0)


@stable(40)
@given(st.integers(2, 5), floats(0.001, 0.05))
def test_pocock_nominal_levels_roughly_constant(k, alpha):
    """asP approximates Pocock's constant nominal level: within a factor 1.5 for 2-5 equally spaced looks at
    alpha <= 0.05 (the approximation loosens with alpha and looks: 1.50 at K = 5, alpha 0.1; 2.8 at K = 20)."""
    p = boundaries(np.arange(1, k + 1) / k, alpha, "pocock").nominal_p
    assert p.max() / p.min() < 1.5


@stable(60)
@given(designs(), floats(0.001, 0.3))
def test_bounds_decrease_as_alpha_increases(design, other):
    t, alpha, spending = design
    lo, hi = sorted((alpha, other))
    if hi - lo < 1e-4:
        return
    strict, loose = boundaries(t, lo, spending).critical_z, boundaries(t, hi, spending).critical_z
    assert np.all(loose <= strict)
    assert np.all(loose[strict < Z_CAP] < strict[strict < Z_CAP])


# ---- errors ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "field", "fragment"), [
    ({"info": [0.5, 0.4, 1.0]}, "info", "increasing fractions in (0, 1] ending at 1"),
    ({"info": [0.5, 0.5, 1.0]}, "info", "increasing"),
    ({"info": [0.3, 0.6]}, "info", "ending at 1"),
    ({"info": [0.0, 1.0]}, "info", "(0, 1]"),
    ({"info": [0.5, 1.2]}, "info", "(0, 1]"),
    ({"info": [0.5, float("nan"), 1.0]}, "info", "(0, 1]"),
    ({"info": []}, "info", f"1 to {MAX_LOOKS} looks"),
    ({"info": np.arange(1, 22) / 21}, "info", f"1 to {MAX_LOOKS} looks"),
    ({"info": [0.5, 0.5001, 1.0]}, "info", "at least 0.001 apart"),
    ({"info": "half"}, "info", "information fractions"),
    ({"alpha": 0.0}, "alpha", "(0, 0.5)"),
    ({"alpha": 0.5}, "alpha", "(0, 0.5)"),
    ({"alpha": -0.1}, "alpha", "(0, 0.5)"),
    ({"alpha": float("nan")}, "alpha", "(0, 0.5)"),
    ({"alpha": "5%"}, "alpha", "(0, 0.5)"),
    ({"spending": "asOF"}, "spending", "one of obf, pocock"),
    ({"futility": [0.0]}, "futility", "one bound per interim look (2)"),
    ({"futility": [0.0, 0.0, 0.0]}, "futility", "one bound per interim look (2)"),
    ({"futility": [0.0, float("inf")]}, "futility", "finite"),
    ({"futility": [0.0, float("nan")]}, "futility", "finite"),
    ({"futility": [0.0, "low"]}, "futility", "finite"),
    ({"futility": [4.0, 0.0]}, "futility", "below the efficacy bound"),
    ({"futility": [0.0, 2.6]}, "futility", "look 2"),
    ({"futility": [0.0, 2.6], "binding": True}, "futility", "look 2"),
])
def test_errors_name_the_field(kwargs, field, fragment):
    assert_refused(kwargs, field, fragment)


def assert_refused(kwargs: dict, field: str, fragment: str) -> None:
    """A 3-look O'Brien-Fleming design changed by ``kwargs`` is refused in one line naming ``field``."""
    args = {"info": [1 / 3, 2 / 3, 1.0], "alpha": 0.025, "spending": "obf"} | kwargs
    with pytest.raises(ScenarioError) as err:
        boundaries(**args)
    assert err.value.path == field
    assert fragment in err.value.message
    assert "\n" not in str(err.value)


def test_binding_futility_that_leaves_no_room_for_alpha():
    with pytest.raises(ScenarioError, match="stop too many trials") as err:
        boundaries([0.5, 1.0], 0.025, "obf", futility=[2.9], binding=True)
    assert err.value.path == "futility"
    boundaries([0.5, 1.0], 0.025, "obf", futility=[2.9])          # non-binding: fine


def test_one_look_takes_no_futility_bounds():
    assert boundaries([1.0], futility=[]).futility_z.tolist() == [-np.inf]
    with pytest.raises(ScenarioError, match="one bound per interim look"):
        boundaries([1.0], futility=[0.0])


def test_spent_rejects_bad_arguments():
    with pytest.raises(ScenarioError) as err:
        spent("hsd", 0.025, np.array([1.0]))
    assert err.value.path == "spending"
    with pytest.raises(ScenarioError) as err:
        spent("obf", 0.025, np.array([0.0, 1.0]))
    assert err.value.path == "info"
    with pytest.raises(ScenarioError) as err:
        crossing(boundaries([1.0]), np.array([0.0, np.nan]))
    assert err.value.path == "drift"
