"""Natural dose variation: ``analysis.dose_slope`` and :mod:`cbcp_sim.analysis.dose_slope` (docs/dose.md).

On synthetic arrays: the batched least squares equals numpy's one replicate at a time; with dose independent of the
prognostic factors the unadjusted and adjusted slopes agree and are both unbiased; with dose proportional to
1/weight and weight prognostic only the adjusted slope is unbiased, and the unadjusted one is off by exactly what
the regression of the prognostic part on dose predicts. On the engine: each treated child's effect at its own dose
is its score under the cells minus its untreated score; without dropout the unadjusted slope with cells minus that
without is the slope of the effects received; the autologous scenario shows the confounding; the run's text, JSON,
store and report carry the block; designs without varying doses are one-line errors.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cbcp_sim
from cbcp_sim.analysis.dose_slope import ESTIMATORS, dose_slopes, dose_stratum, true_slopes
from cbcp_sim.errors import ScenarioError
from cbcp_sim.models import trial
from cbcp_sim.models.streams import Streams
from cbcp_sim.run import engine

from .support import assert_one_line_error, cli, floats, stable

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "autologous_dose_variation.toml"


def _synthetic(seed: int, slope: float, prognostic: float, *, confounded: bool, reps: int = 3000, n: int = 60):
    """Treated children only: age 1-10, weight rising with age, dose ``40 / weight`` (confounded) or log-normal
    independent of everything; change = ``slope`` dose + ``prognostic`` weight + ``sin(age)`` + noise; 10% of
    primary visits missing at random."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(1.0, 10.0, (reps, n))
    weight = (8.0 + 2.5 * age) * np.exp(0.12 * rng.standard_normal((reps, n)))
    dose = 40.0 / weight if confounded else np.exp(0.6 + 0.4 * rng.standard_normal((reps, n)))
    gmfcs = rng.integers(1, 5, (reps, n))
    baseline = 50.0 + 10.0 * rng.standard_normal((reps, n))
    change = slope * dose + prognostic * weight + np.sin(age) + rng.standard_normal((reps, n))
    values = np.stack([baseline, baseline + change], axis=-1)
    observed = np.ones(values.shape, bool)
    observed[..., 1] = rng.random((reps, n)) > 0.1
    return values, observed, dose, np.stack([age, weight, np.sin(age)], axis=-1), gmfcs


def _bias(est, truth: float) -> tuple[float, float]:
    d = est.estimate - truth
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size))


@stable(5)
@given(seed=st.integers(0, 10_000), slope=floats(-1.0, 2.0), prognostic=floats(0.2, 1.0))
def test_independent_dose_both_slopes_unbiased_and_agree(seed, slope, prognostic):
    values, observed, dose, cov, gmfcs = _synthetic(seed, slope, prognostic, confounded=False)
    unadjusted, adjusted = dose_slopes(values, observed, np.ones(dose.shape[1], bool), 1, dose, covariates=cov,
                                       levels=gmfcs)
    for est in (unadjusted, adjusted):
        bias, mcse = _bias(est, slope)
        assert abs(bias) < 4.0 * mcse, (bias, mcse)
    gap = unadjusted.estimate - adjusted.estimate
    assert abs(gap.mean()) < 4.0 * gap.std(ddof=1) / np.sqrt(gap.size)


@stable(5)
@given(seed=st.integers(0, 10_000), slope=floats(-1.0, 2.0), prognostic=floats(0.2, 1.0))
def test_dose_by_weight_only_the_adjusted_slope_is_unbiased(seed, slope, prognostic):
    values, observed, dose, cov, gmfcs = _synthetic(seed, slope, prognostic, confounded=True)
    unadjusted, adjusted = dose_slopes(values, observed, np.ones(dose.shape[1], bool), 1, dose, covariates=cov,
                                       levels=gmfcs)
    bias, mcse = _bias(adjusted, slope)
    assert abs(bias) < 4.0 * mcse, (bias, mcse)
    # predicted: prognostic x the slope of weight on dose (and of sin(age) on dose) among each trial's analysed children
    seen = observed[..., 1]
    predicted = np.empty(dose.shape[0])
    for r in range(dose.shape[0]):
        d, w = dose[r, seen[r]], seen[r]
        part = prognostic * cov[r, w, 1] + cov[r, w, 2]
        predicted[r] = np.polyfit(d, part, 1)[0]
    bias, mcse = _bias(unadjusted, slope)
    assert predicted.mean() < 0 and bias < -10.0 * mcse  # heavier children: more weight, less dose
    assert abs(bias - predicted.mean()) < 4.0 * mcse


def test_least_squares_equal_numpy_with_levels_missing():
    rng = np.random.default_rng(7)
    reps, n = 4, 25
    values = 40.0 + 10.0 * rng.standard_normal((reps, n, 2))
    observed = rng.random((reps, n, 2)) > 0.15
    observed[..., 0] = True
    treated = rng.random((reps, n)) > 0.3
    dose = rng.uniform(1.0, 5.0, (reps, n))
    cov = rng.normal(size=(reps, n, 2))
    gmfcs = rng.integers(1, 4, (reps, n))
    gmfcs[0] = np.where(gmfcs[0] == 2, 3, gmfcs[0])  # level 2 absent in replicate 0
    for log in (False, True):
        unadjusted, adjusted = dose_slopes(values, observed, treated, 1, dose, covariates=cov, levels=gmfcs, log=log)
        for r in range(reps):
            w = treated[r] & observed[r, :, 1]
            y = values[r, w, 1] - values[r, w, 0]
            x = np.log(dose[r, w]) if log else dose[r, w]
            levels = [(gmfcs[r, w] == g).astype(float) for g in np.unique(gmfcs[r, w])[1:]]
            for est, design in ((unadjusted, [x]), (adjusted, [x, values[r, w, 0], *cov[r, w].T, *levels])):
                X = np.column_stack([np.ones(w.sum()), *design])
                beta, *_ = np.linalg.lstsq(X, y, rcond=None)
                df = w.sum() - X.shape[1]
                s2 = np.sum((y - X @ beta) ** 2) / df
                se = np.sqrt(s2 * np.linalg.inv(X.T @ X)[1, 1])
                assert est.estimate[r] == pytest.approx(beta[1], rel=1e-9, abs=1e-12)
                assert est.se[r] == pytest.approx(se, rel=1e-8)
                assert est.df[r] == df


def test_too_few_children_fail_as_nan():
    values = np.zeros((1, 3, 2))
    values[..., 1] = [1.0, 2.0, 4.0]
    dose = np.array([[1.0, 2.0, 3.0]])
    unadjusted, adjusted = dose_slopes(values, np.ones((1, 3, 2), bool), np.ones(3, bool), 1, dose,
                                       covariates=np.ones((1, 3, 1)), levels=np.array([[1, 2, 3]]))
    assert np.isfinite(unadjusted.estimate[0]) and unadjusted.df[0] == 1
    assert np.isnan(adjusted.estimate[0]) and adjusted.failed[0]


def test_true_slopes_of_known_effects():
    rng = np.random.default_rng(3)
    reps, k = 3, 4
    doses = rng.uniform(1.0, 5.0, (reps, k))
    m = rng.uniform(0.5, 2.0, (reps, k))
    effects = m[..., None] * doses[:, None, :] + 3.0  # treated child i's effect at dose d: m_i d + 3
    truth, received = true_slopes(doses, effects)
    for r in range(reps):
        assert truth[r] == pytest.approx(m[r].mean())
        own = m[r] * doses[r] + 3.0
        assert received[r] == pytest.approx(np.polyfit(doses[r], own, 1)[0])
    truth, _ = true_slopes(doses, np.log(doses)[:, None, :] * m[..., None], log=True)
    assert truth == pytest.approx(m.mean(axis=1))


@pytest.fixture(scope="module")
def scenario():
    return cbcp_sim.load_scenario(SCENARIO)


def test_effect_at_own_dose_is_the_cell_effect(scenario):
    data = trial.generate(scenario, 6, Streams(11, 0))
    treated = np.broadcast_to(data.arm == 1, data.covariates["dose"].shape)
    k = scenario.design.n_per_arm[1]
    assert data.dose_grid.shape == (6, k) and data.dose_effects.shape == (6, k, k)
    assert np.array_equal(data.dose_grid, data.covariates["dose"][treated].reshape(6, k))
    own = np.diagonal(data.dose_effects, axis1=1, axis2=2)
    cell = (data.under[1] - data.under[-1])[treated].reshape(6, k)
    np.testing.assert_allclose(own, cell, atol=1e-9)


def test_weight_covariate_and_no_grid_without_the_key(scenario):
    off = scenario.replace({"analysis.dose_slope": False})
    data, on = trial.generate(off, 3, Streams(2, 0)), trial.generate(scenario, 3, Streams(2, 0))
    assert data.dose_grid is None and data.dose_effects is None
    assert np.array_equal(data.values, on.values) and np.array_equal(data.covariates["weight"], on.covariates["weight"])
    assert data.covariates["weight"].min() > 5.0
    assert cbcp_sim.load_scenario(Path(SCENARIO).with_name("default.toml")).digest() == \
        cbcp_sim.load_scenario(Path(SCENARIO).with_name("default.toml")).replace({}).digest()
    assert "dose_slope" not in json.dumps(cbcp_sim.load_scenario(Path(SCENARIO).with_name("default.toml")).to_dict())


def test_without_dropout_the_slope_with_cells_minus_without_is_the_slope_of_effects_received(scenario):
    s = scenario.replace({"dropout.fraction": 0.0})
    data = trial.generate(s, 20, Streams(4, 0))
    slopes = engine._dose_slopes(s, data)
    np.testing.assert_allclose(slopes.estimate[:, 0] - slopes.null_estimate[:, 0], slopes.received, atol=1e-9)


def test_engine_shows_the_confounding(scenario):
    result = cbcp_sim.simulate(scenario, reps=600, seed=5)
    b = result.dose_slope
    assert b["treated"] == "cord blood" and b["scale"] == "linear" and b["true_slope"] > 0
    un, adj = b["unadjusted"], b["adjusted"]
    assert un["bias"] > 10.0 * un["bias_mcse"] and un["bias"] > 0.5  # younger, lighter children: more dose, more growth
    assert abs(adj["bias"]) < un["bias"] / 5 and adj["coverage"] > 0.9 > un["coverage"]
    assert un["type1"] > 0.15 > adj["type1"]
    assert set(result.replicates["dose_slope"]) == {"true_slope", "received_slope", *(
        f"{e}_{f}" for e in ESTIMATORS for f in ("estimate", "se", "df"))}
    # no cell effect: the true slope is 0 and the unadjusted slope is biased by prognosis alone
    none = cbcp_sim.simulate(scenario.replace({"treatment.dose_response.emax": 0.0}), reps=300, seed=5).dose_slope
    assert none["true_slope"] == 0.0 and none["unadjusted"]["bias"] > 10.0 * none["unadjusted"]["bias_mcse"]


def test_log_scale(scenario):
    b = cbcp_sim.simulate(scenario.replace({"analysis.dose_slope_scale": "log"}), reps=200, seed=1).dose_slope
    assert b["scale"] == "log" and b["true_slope"] > 0 and b["unadjusted"]["bias"] > 0


def test_run_text_json_store_and_report(capsys, tmp_path):
    argv = ("run", str(SCENARIO), "--reps", "120", "--seed", "2")
    code, out, err = cli(capsys, *argv)
    assert code == 0, err
    assert "dose slope, cord blood: GMFM-66 change at month 12 per 10^7 TNC/kg" in out
    assert "    unadjusted " in out and "    adjusted " in out
    code, out, err = cli(capsys, *argv, "--json", "--out", str(tmp_path / "run"))
    block = json.loads(out)["dose_slope"]
    assert set(block) == {"treated", "scale", "adjusted_for", "true_slope", "true_slope_mcse", "received_slope",
                          "unadjusted", "adjusted"}
    assert set(block["adjusted"]) == {"mean_estimate", "true_slope", "bias", "bias_mcse", "rmse", "coverage",
                                      "coverage_mcse", "power", "power_mcse", "power_ci_low", "power_ci_high",
                                      "type1", "type1_mcse", "n_failed"}
    code, again, err = cli(capsys, *argv, "--json", "--out", str(tmp_path / "run"))  # resumed from the store
    assert code == 0, err and json.loads(again)["dose_slope"] == block
    code, out, err = cli(capsys, "report", str(tmp_path / "run"))
    assert code == 0, err
    assert "Natural dose variation" in (tmp_path / "run" / "report.html").read_text()


@pytest.mark.parametrize("sets, fragment", [
    (["population.source=allogeneic"], "population.source = 'autologous'"),
    (["outcome.model=normal"], "outcome.model = 'gmfm66'"),
    (["arms.cord blood.dose=[3.0]"], "fixed dose"),
    (["design.kind=crossover", "design.visits=[0, 6, 12, 24]"], "crossover design"),
])
def test_designs_without_varying_doses_are_one_line_errors(capsys, sets, fragment):
    options = [a for s in sets for a in ("--set", s)]
    code, out, err = cli(capsys, "run", str(SCENARIO), "--reps", "10", *options)
    assert_one_line_error(code, out, err, "analysis.dose_slope", fragment)


def test_bad_values_are_one_line_errors(capsys):
    code, out, err = cli(capsys, "run", str(SCENARIO), "--reps", "10", "--set", "analysis.dose_slope_scale=sqrt")
    assert_one_line_error(code, out, err, "analysis.dose_slope_scale")
    code, out, err = cli(capsys, "run", str(SCENARIO), "--reps", "10", "--set", "analysis.dose_slope=3")
    assert_one_line_error(code, out, err, "analysis.dose_slope")


def test_single_arm_analyses_every_child(scenario):
    s = scenario.replace({"design.kind": "single_arm", "design.arms": ["cord blood"], "design.n_per_arm": [40],
                          "analysis.primary": "above_expected"})
    result = cbcp_sim.simulate(s, reps=100, seed=3)
    assert result.dose_slope["treated"] == "cord blood" and np.isfinite(result.dose_slope["adjusted"]["bias"])
    assert dataclasses.is_dataclass(engine.ChunkResult)



def test_active_arms_of_the_same_own_dose_cells_are_pooled(scenario):
    arms = {"design.arms": ["sham", "cord blood", "cord blood 2"], "design.n_per_arm": [10, 8, 6]}
    s = scenario.replace(arms)
    data = trial.generate(s, 4, Streams(5, 0))
    treated = np.broadcast_to(data.arm >= 1, data.covariates["dose"].shape)
    assert data.dose_grid.shape == (4, 14) and data.dose_effects.shape == (4, 14, 14)
    assert np.array_equal(data.dose_grid, data.covariates["dose"][treated].reshape(4, 14))
    cell = (data.under[1] - data.under[-1])[treated].reshape(4, 14)  # both arms' cells are the same
    np.testing.assert_allclose(np.diagonal(data.dose_effects, axis1=1, axis2=2), cell, atol=1e-9)
    assert cbcp_sim.simulate(s, reps=20, seed=3).dose_slope["treated"] == "cord blood, cord blood 2"
    for other, fragment in (({"arms.cord blood 2.dose": [3.0]}, "fixed dose"),
                            ({"arms.cord blood 2.route": "intrathecal"}, "the same cells")):
        with pytest.raises(ScenarioError, match=fragment):
            scenario.replace({**arms, **other})

# Dose strata (analysis.dose_slope_strata): the same fits on each child's stratum in place of its dose.

def test_dose_stratum_counts_cut_points_at_or_below():
    dose = np.array([[0.5, 1.0, 1.99, 2.0, 4.9, 5.0, 7.0]])
    np.testing.assert_array_equal(dose_stratum(dose, (2.0,)), [[0, 0, 0, 1, 1, 1, 1]])
    np.testing.assert_array_equal(dose_stratum(dose, (1.0, 5.0)), [[0, 1, 1, 1, 1, 2, 2]])


def test_strata_slope_is_the_difference_of_stratum_means_and_the_trend_over_strata():
    rng = np.random.default_rng(12)
    reps, n = 5, 40
    values = 40.0 + 8.0 * rng.standard_normal((reps, n, 2))
    observed = np.ones(values.shape, bool)
    observed[..., 1] = rng.random((reps, n)) > 0.1
    dose = rng.uniform(0.5, 5.0, (reps, n))
    for cuts in ((2.0,), (1.5, 3.0)):
        x = dose_stratum(dose, cuts)
        unadjusted, _ = dose_slopes(values, observed, np.ones(n, bool), 1, x)
        for r in range(reps):
            w = observed[r, :, 1]
            y = values[r, w, 1] - values[r, w, 0]
            expected = (y[x[r, w] == 1].mean() - y[x[r, w] == 0].mean() if len(cuts) == 1
                        else np.polyfit(x[r, w], y, 1)[0])
            assert unadjusted.estimate[r] == pytest.approx(expected, rel=1e-9)


def test_true_strata_contrast_of_known_effects():
    rng = np.random.default_rng(5)
    reps, k = 3, 6
    doses = rng.uniform(0.5, 5.0, (reps, k))
    doses[:, :2] = [1.0, 3.0]  # both strata in every trial
    effects = rng.normal(size=(reps, k, 1)) + np.sqrt(doses)[:, None, :] * rng.uniform(0.5, 2.0, (reps, k, 1))
    truth, _ = true_slopes(dose_stratum(doses, (2.0,)), effects)
    for r in range(reps):
        high = doses[r] >= 2.0
        own = effects[r]
        assert truth[r] == pytest.approx(np.mean(own[:, high].mean(axis=1) - own[:, ~high].mean(axis=1)))


@stable(5)
@given(seed=st.integers(0, 10_000), jump=floats(-1.0, 3.0), prognostic=floats(0.2, 1.0))
def test_strata_confounded_by_weight_only_the_adjusted_contrast_is_unbiased(seed, jump, prognostic):
    values, observed, dose, cov, gmfcs = _synthetic(seed, 0.0, prognostic, confounded=True)
    cut = float(np.median(dose))
    values[..., 1] += jump * (dose >= cut)
    x = dose_stratum(dose, (cut,))
    unadjusted, adjusted = dose_slopes(values, observed, np.ones(dose.shape[1], bool), 1, x, covariates=cov,
                                       levels=gmfcs)
    bias, mcse = _bias(adjusted, jump)
    assert abs(bias) < 4.0 * mcse, (bias, mcse)
    bias, mcse = _bias(unadjusted, jump)
    assert bias < -10.0 * mcse  # the higher stratum holds the lighter children, who grow less here


def test_engine_strata_block(scenario):
    s = scenario.replace({"analysis.dose_slope_strata": [2.0]})
    result = cbcp_sim.simulate(s, reps=600, seed=5)
    strata = result.dose_slope["strata"]
    assert strata["cuts"] == [2.0] and strata["true_slope"] > 0
    assert set(strata) == {"cuts", "true_slope", "true_slope_mcse", "received_slope", "unadjusted", "adjusted"}
    assert set(strata["adjusted"]) == set(result.dose_slope["adjusted"])
    un, adj = strata["unadjusted"], strata["adjusted"]
    assert un["bias"] > 10.0 * un["bias_mcse"] and abs(adj["bias"]) < un["bias"] / 5
    assert {f"strata_{e}_estimate" for e in ESTIMATORS} <= set(result.replicates["dose_slope"])
    # the slope block itself is that of the run without strata
    plain = cbcp_sim.simulate(scenario, reps=600, seed=5).dose_slope
    assert {k: v for k, v in result.dose_slope.items() if k != "strata"} == plain
    none = cbcp_sim.simulate(s.replace({"treatment.dose_response.emax": 0.0}), reps=200, seed=5).dose_slope
    assert none["strata"]["true_slope"] == 0.0
    assert "dose_slope_strata" not in json.dumps(scenario.to_dict())


def test_strata_text_json_and_report(capsys, tmp_path):
    argv = ("run", str(SCENARIO), "--reps", "120", "--seed", "2", "--set", "analysis.dose_slope_strata=[1.5, 3]")
    code, out, err = cli(capsys, *argv)
    assert code == 0, err
    assert "by dose strata cut at 1.5, 3 x 10^7 TNC/kg" in out
    code, out, err = cli(capsys, *argv, "--json", "--out", str(tmp_path / "run"))
    assert code == 0, err
    assert json.loads(out)["dose_slope"]["strata"]["cuts"] == [1.5, 3.0]
    code, out, err = cli(capsys, "report", str(tmp_path / "run"))
    assert code == 0, err
    assert "By dose strata cut at 1.5, 3" in (tmp_path / "run" / "report.html").read_text()


def test_strata_errors(capsys):
    code, out, err = cli(capsys, "run", str(SCENARIO), "--reps", "10", "--set", "analysis.dose_slope=false",
                         "--set", "analysis.dose_slope_strata=[2]")
    assert_one_line_error(code, out, err, "analysis.dose_slope_strata", "analysis.dose_slope = true")
    code, out, err = cli(capsys, "run", str(SCENARIO), "--reps", "10", "--set", "analysis.dose_slope_strata=[3, 2]")
    assert_one_line_error(code, out, err, "analysis.dose_slope_strata")
    code, out, err = cli(capsys, "run", str(SCENARIO), "--reps", "10", "--set", "analysis.dose_slope_strata=[0]")
    assert_one_line_error(code, out, err, "analysis.dose_slope_strata")
