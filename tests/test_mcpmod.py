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
from scipy import stats

from cbcp_sim.analysis.dose_finding import mcpmod
from cbcp_sim.analysis.dose_fit import fit_model, target_dose
from cbcp_sim.analysis.dose_models import parse_candidates
from cbcp_sim.analysis.mcpmod import contrast_correlation, critical_value, mct, optimal_contrasts, power_mct, shapes
from cbcp_sim.analysis.mvt_max import max_t_cdf
from cbcp_sim.errors import SettingsError
from cbcp_sim.planning.dose_power import dose_power

from .support import assert_one_line_error, cli, stable

REF = json.loads((Path(__file__).parent / "fixtures" / "mcpmod" / "reference.json").read_text())
#: R mvtnorm's probabilities at three points around each of DoseFinding's critical values (precise.R: GenzBretz,
#: 5e6 points, its own error estimate up to 1e-5), the quantile interpolated from them, and powMCT there.
PRECISE = json.loads((Path(__file__).parent / "fixtures" / "mcpmod" / "precise.json").read_text())
CASES = list(zip(REF["cases"], PRECISE["cases"], strict=True))


def _ids(pair):
    return f"{pair[0]['models']}-n{pair[0]['n']}"


@pytest.mark.parametrize("case", REF["cases"], ids=lambda c: f"{c['models']}-n{c['n']}")
def test_contrasts_and_their_correlation_equal_dosefinding(case):
    """optContr's contrasts and corMat, and the df of the ANOVA, to 1e-10."""
    res = mcpmod_contrasts(case)
    np.testing.assert_allclose(res[0], np.array(case["contrasts"]).T, atol=1e-10)
    np.testing.assert_allclose(res[1], np.array(case["correlation"]), atol=1e-10)


def mcpmod_contrasts(case):
    doses = np.array(case["doses"], dtype=float)
    mu = shapes(parse_candidates(case["models"]), doses)
    S = np.eye(doses.size) / case["n"]
    contrasts = optimal_contrasts(mu, S)
    return contrasts, contrast_correlation(contrasts, S)


@pytest.mark.parametrize("pair", CASES, ids=_ids)
def test_max_t_probabilities_equal_mvtnorm(pair):
    """``P(max_k T_k <= c)`` at three points around DoseFinding's critical value equals R mvtnorm's ``pmvt`` within
    2e-5, mvtnorm's own error at 5e6 points (measured: within 1.6e-5 on the singular sets, 1.7e-6 on the regular
    one). So the two compute the same distribution; DoseFinding's printed critical values (``qmvt``, a root search
    stopped at uniroot's tolerance of about 1.2e-4 on a randomised function) differ from ours by up to 1e-3."""
    case, precise = pair
    corr, m = np.array(case["correlation"]), len(case["correlation"])
    ours = max_t_cdf(np.repeat(np.array(precise["grid"])[:, None], m, axis=1), corr, case["df"])
    np.testing.assert_allclose(ours, precise["probability"], atol=2e-5)


@pytest.mark.parametrize("pair", CASES, ids=_ids)
def test_power_equals_powmct(pair):
    """At the same critical value (R's precise quantile) the power under each candidate (maximum effect 3 over
    placebo, SD 5.5) equals DoseFinding's powMCT within 1e-4 (ours within 5e-5 of the 2^17-direction value,
    mvtnorm's within 1e-5)."""
    case, precise = pair
    doses = np.array(case["doses"], dtype=float)
    candidates = parse_candidates(case["models"])
    contrasts, _ = mcpmod_contrasts(case)
    S = 5.5**2 * np.eye(doses.size) / case["n"]
    means = 3.0 * shapes(candidates, doses).T
    power = power_mct(contrasts, S, means, case["df"], precise["critical_value"])
    np.testing.assert_allclose(power, precise["power"], atol=1e-4)


@pytest.mark.parametrize("singular", [False, True])
def test_max_t_probabilities_equal_scipy(singular):
    """Against scipy's multivariate normal CDF (Genz, 5e7 points): within 2e-6 on a regular and a singular
    correlation of contrasts (measured 4e-7 and 1.1e-6)."""
    case = REF["cases"][0 if singular else 2]
    corr, m = np.array(case["correlation"]), len(case["correlation"])
    ref = stats.multivariate_normal(np.zeros(m), corr, abseps=1e-10, releps=1e-10, maxpts=5 * 10**7,
                                    allow_singular=True).cdf(np.full(m, 2.28), rng=np.random.default_rng(1))
    assert max_t_cdf(np.full((1, m), 2.28), corr, np.inf)[0] == pytest.approx(ref, abs=2e-6)


def test_dose_power_reports_the_exact_quantile():
    """``dose-power``'s critical value is the 1 - alpha quantile of that distribution (to 1e-9), and its power
    equals power_mct at it."""
    case = REF["cases"][0]
    res = dose_power(np.array(case["doses"], dtype=float), case["models"], sigma=5.5, n=case["n"], max_effect=3.0)
    corr, m = np.array(case["correlation"]), len(case["correlation"])
    assert max_t_cdf(np.full((1, m), res.critical_value), corr, case["df"])[0] == pytest.approx(0.975, abs=1e-9)
    np.testing.assert_allclose(np.array(res.contrasts), np.array(case["contrasts"]), atol=1e-10)


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
    np.testing.assert_allclose(res.test.p_adjusted[0], a["p_adjusted"], atol=1e-4)
    assert res.model.classes[res.model.selected[0]] == a["selected"]
    assert res.model.td[0] == pytest.approx(a["td"][a["td_models"].index(a["selected"])], rel=1e-4)
    assert np.isfinite(res.model.td_se[0]) and res.model.td_se[0] > 0


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


@pytest.mark.parametrize("model", ["sigEmax", "logistic", "betaMod"])
def test_batched_fit_reaches_the_per_trial_optimum(model):
    """The batched trust-region fit of the two-parameter models reaches a gRSS no larger (within 1e-10 relative)
    than scipy's L-BFGS-B run trial by trial from the grid's best point (the search it replaced, DoseFinding's
    ``nlminb`` in spirit) on 100 noisy Emax-shaped trials of 5 doses; parameters on a bound sit exactly on it."""
    from scipy import optimize

    from cbcp_sim.analysis.dose_fit import _design, _grid, _wls, default_bounds

    rng = np.random.default_rng(11)
    doses, n = np.array([0.0, 1.0, 2.0, 4.0, 8.0]), 100
    mu = 4.0 * doses / (2.0 + doses) * rng.uniform(0.0, 1.5, (n, 1)) + rng.normal(0.0, 1.0, (n, doses.size))
    S = rng.uniform(0.3, 2.0, (n, 1, 1)) * np.eye(doses.size)
    fit = fit_model(model, doses, mu, S)
    bounds, W = default_bounds(model, doses.max()), np.linalg.inv(np.linalg.cholesky(S))
    grid = _grid(bounds)
    ref = np.empty(n)
    for r in range(n):
        def grss(x, r=r):
            X = _design(model, doses, x[None, None], fit.scal, fit.off)
            return float(_wls(X, W[r:r + 1], mu[r:r + 1])[1][0, 0])
        start = grid[np.argmin([grss(x) for x in grid])]
        ref[r] = optimize.minimize(grss, start, method="L-BFGS-B", bounds=bounds,
                                   options={"ftol": 1e-14, "gtol": 1e-10, "maxiter": 500}).fun
    assert np.all(fit.grss <= ref * (1.0 + 1e-10))
    theta = fit.params[:, 2:]
    assert np.all((theta >= bounds[:, 0]) & (theta <= bounds[:, 1]))
    assert np.any(np.isin(theta, bounds))
