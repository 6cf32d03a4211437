"""MCP-Mod as the dose-response analysis of simulated dose designs (analysis.dose_response_models, docs/dose.md,
Dose designs): the placebo-adjusted inputs equal statsmodels' per-arm estimates, the test's type I error, power
rising with n, the run's block in text, --json, store and report, one-line errors, reproducibility."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm

import cbcp_sim
from cbcp_sim.analysis.ancova import ancova_differences
from cbcp_sim.analysis.dose_finding import mcpmod
from cbcp_sim.analysis.dose_models import parse_candidates
from cbcp_sim.analysis.dose_response import analyse, per_dose, true_doses
from cbcp_sim.planning.sweep import sweep
from cbcp_sim.run.settings import RunSettings
from cbcp_sim.scenario import load_scenario

from .support import assert_one_line_error, cli

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "allogeneic_three_doses.toml"
MODELS = "emax:1,sigEmax:3:3,linear"
DOSES = np.array([0.0, 1.0, 3.0, 10.0])


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(SCENARIO)


def _trial(rng, n=30, effects=(0.0, 1.0, 2.0, 2.5)):
    arm = np.repeat(np.arange(4), n)
    base = rng.normal(50, 8, arm.size)
    age = rng.uniform(2, 6, arm.size)
    y = base + 2.0 + np.asarray(effects)[arm] + 0.3 * age + rng.normal(0, 2.5, arm.size)
    return arm, base, age, y


def test_placebo_adjusted_inputs_equal_statsmodels_per_arm_estimates():
    rng = np.random.default_rng(7)
    arm, base, age, y = _trial(rng)
    values = np.stack([base, y], axis=-1)[None]
    observed = np.ones_like(values, dtype=bool)
    observed[0, 5, 1] = observed[0, 70, 1] = False
    diff = ancova_differences(values, observed, arm, 1, arms=4, covariates=age[None, :, None])
    seen = observed[0, :, 1]
    X = np.column_stack([np.eye(4)[arm], base - base[seen].mean(), age - age[seen].mean()])[seen]
    fit = sm.OLS(y[seen], X).fit()
    mu_sm, S_sm = fit.params[:4][None], fit.cov_params()[:4, :4]
    mu, S = per_dose(diff)
    ours = mcpmod(mu, S, DOSES, MODELS, df=diff.df, alpha=0.025, delta=1.5)
    theirs = mcpmod(mu_sm, S_sm, DOSES, MODELS, df=fit.df_resid, alpha=0.025, delta=1.5)
    assert diff.df[0] == fit.df_resid
    np.testing.assert_allclose(ours.test.tstats, theirs.test.tstats, rtol=1e-8)
    np.testing.assert_allclose(ours.test.p_adjusted, theirs.test.p_adjusted, atol=1e-6)
    assert ours.model.selected[0] == theirs.model.selected[0] >= 0
    np.testing.assert_allclose(ours.model.td, theirs.model.td, rtol=1e-5)
    np.testing.assert_allclose(np.diff(ours.model.gaic), np.diff(theirs.model.gaic), rtol=1e-6, atol=1e-6)
    # the batched analysis (critical value in place of p-values) agrees with mcpmod
    for selection in ("aic", "average"):
        batched = analyse(diff, DOSES, parse_candidates(MODELS), 0.025, 1.5, selection=selection)
        one = mcpmod(mu, S, DOSES, MODELS, df=diff.df, alpha=0.025, delta=1.5, selection=selection)
        assert batched["reject"][0] == one.test.reject[0] and not batched["failed"][0]
        assert batched["selected"][0] == one.model.selected[0]
        for key in ("td", "td_se", "ed", "ed_se"):
            np.testing.assert_allclose(batched[key], getattr(one.model, key), rtol=1e-6)


def test_true_target_dose_and_ed50_of_an_emax_curve():
    """Closed forms of the Emax curve 0.5 r(x) = 2 x / (2 + x): TD(1) = 2, and ED50 over (0, 10], the dose with
    half the effect at 10, p ED50 top / ((1 - p) top + ED50) (DoseFinding's ED)."""
    emax, ed50, top = 4.0, 2.0, 10.0
    response = lambda x: emax * x / (ed50 + x)  # noqa: E731
    td, ed, scale = true_doses(response, DOSES[1:], 0.5 * response(DOSES[1:]), 1.0)
    assert scale == pytest.approx(0.5) and td == pytest.approx(1.0 * ed50 / (2.0 - 1.0))
    assert ed == pytest.approx(0.5 * ed50 * top / (0.5 * top + ed50), rel=1e-9)
    assert true_doses(response, DOSES[1:], 0.5 * response(DOSES[1:]), 1.0, p=0.9)[1] == pytest.approx(
        0.9 * ed50 * top / (0.1 * top + ed50), rel=1e-9)
    assert math.isnan(true_doses(response, DOSES[1:], 0.1 * response(DOSES[1:]), 1.0)[0])
    assert all(math.isnan(x) for x in true_doses(response, DOSES[1:], 0.0 * response(DOSES[1:]), 1.0)[:2])


def test_type1_error_within_the_99_percent_band(scenario):
    none = scenario.replace({"treatment.dose_response.emax": 0.0})
    b = cbcp_sim.simulate(none, reps=3000, seed=11).dose_response
    alpha, half = b["alpha"], 2.576 * math.sqrt(b["alpha"] * (1 - b["alpha"]) / 3000)
    assert abs(b["type1"] - alpha) < half and abs(b["power"] - alpha) < half
    assert b["true_td"] is None and b["true_ed50"] is None and b["true_effects"] == pytest.approx([0.0, 0.0, 0.0])


def test_power_rises_with_n(scenario):
    small = cbcp_sim.simulate(scenario.replace({"design.n_per_arm": 20}), reps=300, seed=3).dose_response
    large = cbcp_sim.simulate(scenario.replace({"design.n_per_arm": 80}), reps=300, seed=3).dose_response
    assert large["power"] > small["power"] + 0.1
    assert large["td_rmse"] < small["td_rmse"]


def test_block_reproducible_and_text_json_store_report(capsys, tmp_path):
    argv = ("run", str(SCENARIO), "--reps", "150", "--seed", "2")
    code, out, err = cli(capsys, *argv)
    assert code == 0, err
    assert "MCP-Mod dose-response, ANCOVA at month 12" in out and "TD (aic; true" in out and "ED50 (aic; true" in out
    code, out, err = cli(capsys, *argv, "--json", "--out", str(tmp_path / "run"))
    assert code == 0, err
    block = json.loads(out)["dose_response"]
    assert {"models", "doses", "delta", "alpha", "true_effects", "true_curve", "true_td", "power", "power_mcse",
            "type1", "type1_mcse", "selection", "null_selection", "n_td", "td_mean", "td_bias", "td_rmse",
            "td_within_25", "n_failed", "selection_method", "primary", "true_ed50", "interval_level", "n_ed50",
            "ed50_mean", "ed50_bias", "ed50_bias_mcse", "ed50_rmse", "ed50_within_25", "td_interval_mean",
            "td_interval_median", "td_coverage", "td_coverage_mcse", "ed50_interval_mean", "ed50_interval_median",
            "ed50_coverage", "ed50_coverage_mcse"} <= set(block)
    assert block["selection_method"] == "aic" and block["primary"] is False and block["interval_level"] == 0.95
    assert block["doses"] == [0.0, 1.0, 3.0, 10.0] and set(block["selection"]) == {"emax", "sigEmax", "linear"}
    assert block["true_curve"] == pytest.approx(block["true_effects"], rel=0.05) and block["true_td"] > 0
    code, again, err = cli(capsys, *argv, "--json", "--out", str(tmp_path / "run"))  # resumed from the store
    assert code == 0, err
    assert json.loads(again)["dose_response"] == block
    code, out, err = cli(capsys, "report", str(tmp_path / "run"))
    assert code == 0, err
    assert "MCP-Mod dose-response" in (tmp_path / "run" / "report.html").read_text()


def test_off_by_default_changes_nothing(scenario):
    off = scenario.replace({"analysis.dose_response_models": ""})
    assert cbcp_sim.simulate(off, reps=20, seed=1).dose_response is None


@pytest.mark.parametrize("sets, fragment", [
    (['design.arms=["UCB-1", "sham", "UCB-3", "UCB-10"]'], "placebo or sham first"),
    (["arms.UCB-3.dose=0.5"], "increasing"),
    (["analysis.dose_response_models=emax:1,cubic"], "cubic"),
    (["outcome.model=normal"], "outcome.model = 'gmfm66'"),
])
def test_designs_where_it_does_not_apply_are_one_line_errors(capsys, sets, fragment):
    options = [a for s in sets for a in ("--set", s)]
    code, out, err = cli(capsys, "run", str(SCENARIO), "--reps", "10", *options)
    assert_one_line_error(code, out, err, "analysis.dose_response_models", fragment)


def test_mcpmod_as_the_primary_analysis_is_the_design_power(scenario, tmp_path):
    """analysis.dose_response_primary: the design's power (what sample-size, sweep, assurance and sensitivity plan
    on) is MCP-Mod's, not the first ANCOVA comparison's; off, it is the ANCOVA's."""
    primary = scenario.replace({"analysis.dose_response_primary": True})
    run = cbcp_sim.simulate(primary, reps=120, seed=4)
    k, n = run.successes
    assert n == 120 - run.dose_response["n_failed"] and k == round(run.dose_response["power"] * n)
    assert run.design_power["power"] == pytest.approx(run.dose_response["power"])
    assert run.design_power["power"] != pytest.approx(run.primary["power"])
    assert "the scenario's primary analysis (analysis.dose_response_primary)" in str(run)
    plain = cbcp_sim.simulate(scenario, reps=120, seed=4)
    assert plain.design_power["power"] == pytest.approx(plain.primary["power"])
    assert plain.dose_response["power"] == run.dose_response["power"]  # the same trials, the same test
    table = sweep(primary, [{"design.n_per_arm": 20}], RunSettings(reps=40, seed=4), out=tmp_path / "s").table
    assert {"dose_response_power", "dose_response_td_coverage", "dose_response_ed50_bias"} <= set(table.columns)


def test_model_averaging_runs_and_reports_its_method(scenario):
    """selection = "average": the same test (power, type I error, selection) and other TDs from the averaged
    curve, reported as such."""
    aic = cbcp_sim.simulate(scenario, reps=100, seed=6).dose_response
    avg = cbcp_sim.simulate(scenario.replace({"analysis.dose_response_selection": "average"}), reps=100,
                            seed=6).dose_response
    assert avg["selection_method"] == "average" and aic["selection_method"] == "aic"
    assert (avg["power"], avg["type1"], avg["selection"]) == (aic["power"], aic["type1"], aic["selection"])
    assert avg["n_td"] > 0 and avg["td_mean"] != aic["td_mean"]


def test_intervals_cover_the_truth_when_the_model_is_right(scenario):
    """The truth is a sigmoid Emax curve (ED50 3, Hill 2; true_curve equals the arms' true effects) and sigEmax the
    only candidate; with 600 children per arm the TD and ED50 are unbiased (within 4 MCSEs), the TD's 95%
    delta-method interval covers the true TD in 95% of the trials and the ED50's in at least 95% (200 trials;
    within 3.5 MCSEs; the ED50's SE overstates its spread, the Hill parameter being bounded)."""
    big = scenario.replace({"design.n_per_arm": 600, "analysis.dose_response_models": "sigEmax:3:2"})
    b = cbcp_sim.simulate(big, reps=200, seed=8).dose_response
    assert b["true_curve"] == pytest.approx(b["true_effects"], rel=0.01)
    assert b["n_td"] > 180 and b["n_ed50"] > 180
    for name in ("td", "ed50"):
        assert abs(b[f"{name}_bias"]) < 4 * b[f"{name}_bias_mcse"]
    band = 3.5 * math.sqrt(0.95 * 0.05 / b["n_td"])
    assert abs(b["td_coverage"] - 0.95) < band and b["ed50_coverage"] > 0.95 - band


@pytest.mark.parametrize("sets, key, fragment", [
    (["analysis.dose_response_models=", "analysis.dose_response_primary=true"], "analysis.dose_response_primary",
     "dose_response_models"),
    (["analysis.dose_response_models=", "analysis.dose_response_selection=average"],
     "analysis.dose_response_selection", "dose_response_models"),
    (["analysis.dose_response_selection=best"], "analysis.dose_response_selection", "average"),
    (["analysis.dose_response_primary=true", "sequential.interims=[0.5]"], "analysis.dose_response_primary",
     "interim"),
])
def test_new_keys_refused_where_they_do_not_apply(capsys, sets, key, fragment):
    options = [a for s in sets for a in ("--set", s)]
    code, out, err = cli(capsys, "run", str(SCENARIO), "--reps", "10", *options)
    assert_one_line_error(code, out, err, key, fragment)
