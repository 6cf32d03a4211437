"""MCP-Mod against R DoseFinding (tests/fixtures/mcpmod/reference.json, made by make_fixtures.R): contrasts,
critical values, power, sample size, fits, gAIC and TD; the test's type I error under a flat dose-response; the
``dose-power`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cbcp_sim.analysis.dose_finding import mcpmod
from cbcp_sim.analysis.dose_fit import fit_model, target_dose
from cbcp_sim.analysis.dose_models import parse_candidates
from cbcp_sim.analysis.mcpmod import contrast_correlation, critical_value, mct, optimal_contrasts, shapes
from cbcp_sim.errors import SettingsError
from cbcp_sim.planning.dose_power import dose_power

from .support import assert_one_line_error, cli, stable

REF = json.loads((Path(__file__).parent / "fixtures" / "mcpmod" / "reference.json").read_text())
#: mvtnorm's own error with the fixture's control (abseps 1e-6) and ours (about 3e-5 in a probability)
PROB_TOL, CRIT_TOL = 1e-4, 1e-3


@pytest.mark.parametrize("case", REF["cases"], ids=lambda c: f"{c['models']}-n{c['n']}")
def test_contrasts_critical_value_power_equal_dosefinding(case):
    doses = np.array(case["doses"], dtype=float)
    res = dose_power(doses, case["models"], sigma=case["sd"], n=case["n"], max_effect=3.0)
    np.testing.assert_allclose(np.array(res.contrasts), np.array(case["contrasts"]), atol=1e-10)
    np.testing.assert_allclose(np.array(res.correlation), np.array(case["correlation"]), atol=1e-10)
    assert res.df == case["df"]
    assert res.critical_value == pytest.approx(case["critical_value"], abs=CRIT_TOL)
    np.testing.assert_allclose(list(res.power.values()), case["power"], atol=PROB_TOL)


@pytest.mark.parametrize("case", REF["sample_size"], ids=lambda c: f"{c['models']}-{c['criterion']}")
def test_sample_size_equals_sampsizemct(case):
    res = dose_power(case["doses"], case["models"], sigma=5.5, n=10, max_effect=3.0, target_power=0.8,
                     criterion=case["criterion"])
    assert res.n_per_dose == case["n_per_dose"]


def test_fits_gaic_and_td_equal_dosefinding():
    a = REF["analysis"]
    doses, est, S = np.array(a["doses"]), np.array(a["estimates"])[None], np.array(a["S"])
    for ref in a["fits"]:
        fit = fit_model(ref["model"], doses, est, S)
        np.testing.assert_allclose(fit.params[0], ref["params"], rtol=1e-4, atol=1e-5)
        assert fit.gaic[0] == pytest.approx(ref["gaic"], abs=1e-6)
        td = target_dose(ref["model"], fit.params, 1.5, fit.scal, fit.off)[0]
        assert (np.isnan(td) and ref["td"] is None) or td == pytest.approx(ref["td"], rel=1e-4)
    res = mcpmod(est, S, doses, a["models"], df=a["df"], delta=1.5)
    np.testing.assert_allclose(res.test.tstats[0], a["tstats"], atol=1e-10)
    np.testing.assert_allclose(res.test.p_adjusted[0], a["p_adjusted"], atol=PROB_TOL)
    assert res.classes[res.selected[0]] == a["selected"]
    assert res.td[0] == pytest.approx(a["td"][a["td_models"].index(a["selected"])], rel=1e-4)
    assert np.isfinite(res.td_se[0]) and res.td_se[0] > 0


def test_type_one_error_under_flat_dose_response():
    """Per-dose means and a pooled SD simulated under no effect: rejections within the 99% band of alpha."""
    rng = np.random.default_rng(7)
    doses, n, reps, alpha = np.array([0, 1, 2, 4, 8.0]), 10, 20_000, 0.025
    means = rng.normal(0.0, 5.5 / np.sqrt(n), (reps, doses.size))
    s2 = 5.5**2 * rng.chisquare(doses.size * (n - 1), reps) / (doses.size * (n - 1))
    S = s2[:, None, None] * np.eye(doses.size) / n
    res = mct(means, S, doses, parse_candidates("emax:1,emax:4,sigEmax:3:3,exponential:4,linear"),
              df=doses.size * (n - 1), alpha=alpha)
    band = 2.576 * np.sqrt(alpha * (1 - alpha) / reps)
    assert abs(res.reject.mean() - alpha) < band


@stable(20)
@given(st.lists(st.floats(0.2, 5.0), min_size=4, max_size=6), st.floats(0.1, 10.0))
def test_contrasts_sum_to_zero_with_unit_length(weights, ed50):
    doses = np.array([0.0, 1.0, 2.0, 4.0, 8.0, 16.0])[:len(weights)]
    S = np.diag(1.0 / np.array(weights))
    c = optimal_contrasts(shapes(parse_candidates(f"emax:{ed50:g},linear"), doses), S)
    np.testing.assert_allclose(c.sum(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(c, axis=0), 1.0, atol=1e-12)
    assert np.all(np.diag(contrast_correlation(c, S)) == pytest.approx(1.0))


def test_power_increases_with_n():
    powers = [min(dose_power([0, 1, 2, 4], "emax:1,linear", sigma=5.5, n=n, max_effect=3.0).power.values())
              for n in (10, 20, 40)]
    assert powers == sorted(powers)


def test_critical_value_of_one_contrast_is_the_t_quantile():
    from scipy import stats

    assert critical_value(np.eye(1), 0.025, 20.0) == pytest.approx(stats.t.ppf(0.975, 20), abs=1e-7)


@pytest.mark.parametrize(("kwargs", "name"), [({"models": "emax"}, "models"), ({"models": "foo:1"}, "models"),
                                              ({"doses": [1, 2, 4]}, "doses"), ({"n": 1}, "n"),
                                              ({"alpha": 0.7}, "alpha"), ({"sigma": 0}, "sigma")])
def test_dose_power_errors_name_the_parameter(kwargs, name):
    args = {"doses": [0, 1, 2, 4], "models": "emax:1,linear", "sigma": 5.5, "n": 20, "max_effect": 3.0, **kwargs}
    with pytest.raises(SettingsError) as err:
        dose_power(args.pop("doses"), args.pop("models"), **args)
    assert err.value.path == name


def test_cli_dose_power_json(capsys):
    code, out, _ = cli(capsys, "dose-power", "--doses", "0,1,2,4,8", "--models", "emax:1,sigEmax:3:3,linear",
                           "--max-effect", "3", "--sd", "5.5", "--n", "20", "--json")
    assert code == 0
    got = json.loads(out)
    assert {"contrasts", "critical_value", "power", "df", "correlation"} <= got.keys()
    assert list(got["power"]) == ["emax:1", "sigEmax:3:3", "linear"]
    assert len(got["contrasts"]) == 3 and len(got["contrasts"][0]) == 5


@pytest.mark.parametrize(("args", "flag"), [(["--models", "emax"], "--models"), (["--n", "x"], "--n"),
                                            (["--sd", "-1"], "--sd"), (["--doses", "1,2,3"], "--doses")])
def test_cli_dose_power_errors(capsys, args, flag):
    base = {"--doses": "0,1,2,4", "--models": "emax:1,linear", "--max-effect": "3", "--sd": "5.5", "--n": "20"}
    base.update(dict(zip(args[::2], args[1::2], strict=False)))
    code, out, err = cli(capsys, "dose-power", *[x for kv in base.items() for x in kv])
    assert_one_line_error(code, out, err, flag)
