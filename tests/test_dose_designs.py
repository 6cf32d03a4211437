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
from cbcp_sim.analysis.dose_response import analyse, per_dose, true_target_dose
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
    assert ours.selected[0] == theirs.selected[0] >= 0
    np.testing.assert_allclose(ours.td, theirs.td, rtol=1e-5)
    np.testing.assert_allclose(np.diff(ours.gaic), np.diff(theirs.gaic), rtol=1e-6, atol=1e-6)
    # the batched analysis (critical value in place of p-values) agrees with mcpmod
    reject, selected, td, failed = analyse(diff, DOSES, parse_candidates(MODELS), 0.025, 1.5)
    assert reject[0] == ours.test.reject[0] and selected[0] == ours.selected[0] and not failed[0]
    np.testing.assert_allclose(td, ours.td, rtol=1e-6)


def test_true_target_dose_of_an_emax_curve():
    emax, ed50 = 4.0, 2.0
    response = lambda x: emax * x / (ed50 + x)  # noqa: E731
    td, scale = true_target_dose(response, DOSES[1:], 0.5 * response(DOSES[1:]), 1.0)
    assert scale == pytest.approx(0.5) and td == pytest.approx(1.0 * ed50 / (2.0 - 1.0))
    assert math.isnan(true_target_dose(response, DOSES[1:], 0.1 * response(DOSES[1:]), 1.0)[0])


def test_type1_error_within_the_99_percent_band(scenario):
    none = scenario.replace({"treatment.dose_response.emax": 0.0})
    b = cbcp_sim.simulate(none, reps=3000, seed=11).dose_response
    alpha, half = b["alpha"], 2.576 * math.sqrt(b["alpha"] * (1 - b["alpha"]) / 3000)
    assert abs(b["type1"] - alpha) < half and abs(b["power"] - alpha) < half
    assert b["true_td"] is None and b["true_effects"] == pytest.approx([0.0, 0.0, 0.0])


def test_power_rises_with_n(scenario):
    small = cbcp_sim.simulate(scenario.replace({"design.n_per_arm": 20}), reps=300, seed=3).dose_response
    large = cbcp_sim.simulate(scenario.replace({"design.n_per_arm": 80}), reps=300, seed=3).dose_response
    assert large["power"] > small["power"] + 0.1
    assert large["td_rmse"] < small["td_rmse"]


def test_block_reproducible_and_text_json_store_report(capsys, tmp_path):
    argv = ("run", str(SCENARIO), "--reps", "150", "--seed", "2")
    code, out, err = cli(capsys, *argv)
    assert code == 0, err
    assert "MCP-Mod dose-response, ANCOVA at month 12" in out and "within 25% of the true TD" in out
    code, out, err = cli(capsys, *argv, "--json", "--out", str(tmp_path / "run"))
    assert code == 0, err
    block = json.loads(out)["dose_response"]
    assert {"models", "doses", "delta", "alpha", "true_effects", "true_curve", "true_td", "power", "power_mcse",
            "type1", "type1_mcse", "selection", "null_selection", "n_td", "td_mean", "td_bias", "td_rmse",
            "td_within_25", "n_failed"} <= set(block)
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
