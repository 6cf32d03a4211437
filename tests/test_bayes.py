"""Bayesian go/no-go runs ([bayes]): the flat prior is the one-sided test replicate by replicate, drift is a shift of
the data, calibration holds its type I error out of sample, and the section's rules and outputs."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import special, stats

import cbcp_sim
from cbcp_sim.analysis.arm_means import ArmMeans
from cbcp_sim.analysis.decisions import Model, Rule, decide, go_boundary, predictive_go
from cbcp_sim.analysis.mixtures import Mixture, posterior
from cbcp_sim.cli import main
from cbcp_sim.errors import ScenarioError, SettingsError
from cbcp_sim.planning.go_calibration import calibrate_go, smallest_go_probability
from cbcp_sim.run import bayes
from cbcp_sim.run.settings import RunSettings
from cbcp_sim.run.store import json_safe
from cbcp_sim.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
DEFAULT = SCENARIOS / "default.toml"
HYBRID = SCENARIOS / "hybrid_control.toml"
#: Keys of the ``bayes`` object of ``--json`` that issue 21 names: a public interface.
JSON_KEYS = ("p_go", "p_go_mcse", "p_nogo", "p_gray", "p_go_null", "p_go_null_mcse", "posterior_mean_bias",
             "coverage", "prior_ess")


def _run(path, overrides, reps=2000, seed=3, **kwargs):
    return cbcp_sim.simulate(load_scenario(path, overrides), reps=reps, seed=seed, jobs=1, **kwargs)


@pytest.mark.parametrize("primary", ["ancova", "ttest", "welch", "mmrm"])
def test_flat_prior_normal_likelihood_is_the_one_sided_z_test(primary):
    alpha = 0.025
    r = _run(DEFAULT, {"analysis.primary": primary, "analysis.secondary": [], "bayes.go_probability": 1 - alpha},
             reps=1000)
    est, go = r.replicates[primary], r.replicates["bayes"]
    z = est["estimate"] / est["se"]
    assert np.array_equal(go["go"], z > stats.norm.isf(alpha))
    assert 0 < go["go"].sum() < go["go"].size


@pytest.mark.parametrize("primary", ["ancova", "welch", "crossover"])
def test_flat_prior_t_likelihood_is_the_one_sided_t_test(primary):
    alpha = 0.05
    path = SCENARIOS / ("sun2017_duke_crossover.toml" if primary == "crossover" else "default.toml")
    r = _run(path, {"analysis.primary": primary, "analysis.secondary": [], "bayes.likelihood": "t",
                    "bayes.go_probability": 1 - alpha, "design.sides": 1, "design.alpha": alpha}, reps=1000)
    est, go = r.replicates[primary], r.replicates["bayes"]
    p_upper = special.stdtr(est["df"], -est["estimate"] / est["se"])
    assert np.array_equal(go["go"], p_upper <= alpha)
    assert np.array_equal(go["go"], est["reject"])  # the engine's own one-sided t-test
    assert np.array_equal(go["null_go"], r.replicates[primary]["null_reject"])


def test_json_carries_the_bayes_object():
    r = _run(DEFAULT, {"bayes.prior": [{"weight": 1.0, "mean": 1.4, "sd": 1.0}]}, reps=500)
    out = json.loads(json.dumps(json_safe(r.to_json()), allow_nan=False))
    assert set(JSON_KEYS) <= set(out["bayes"])
    b = out["bayes"]
    assert b["p_go"] + b["p_nogo"] + b["p_gray"] == pytest.approx(1.0)
    assert b["p_go_mcse"] == pytest.approx(math.sqrt(b["p_go"] * (1 - b["p_go"]) / 500))
    assert b["prior_components"] == [{"weight": 1.0, "mean": 1.4, "sd": 1.0}]
    assert "Bayesian go/no-go" in str(r)


def test_prior_ess_of_a_normal_prior():
    """ESS of N(m, s^2) under one child's SD sigma is sigma^2 / s^2 (controls), or 2 sigma^2 / s^2 children per arm
    for an effect."""
    r = _run(DEFAULT, {"bayes.control": "prior", "bayes.control_prior": [{"weight": 1.0, "mean": 3.0, "sd": 2.0}],
                       "bayes.unit_sd": 5.0}, reps=200)
    assert r.bayes["prior_ess"] == pytest.approx(25.0 / 4.0, rel=1e-9)
    r = _run(DEFAULT, {"bayes.prior": [{"weight": 1.0, "mean": 1.0, "sd": 2.0}], "bayes.unit_sd": 5.0}, reps=200)
    assert r.bayes["prior_ess"] == pytest.approx(2 * 25.0 / 4.0, rel=1e-9)


def _arms(seed: int, n: int = 2000) -> ArmMeans:
    rng = np.random.default_rng(seed)
    se_c, se_a = rng.uniform(0.6, 1.2, n), rng.uniform(0.5, 1.0, n)
    return ArmMeans(control=3.0 + se_c * rng.standard_normal(n), control_se=se_c, control_n=np.full(n, 24.0),
                    active=3.5 + se_a * rng.standard_normal(n), active_se=se_a, active_n=np.full(n, 48.0))


@pytest.mark.parametrize("likelihood", ["normal", "t"])
def test_drift_of_the_prior_equals_a_shift_of_every_childs_endpoint(likelihood):
    """drift = true control mean - prior mean: data shifted by +d under a fixed prior decide as the data under
    the prior moved by -d."""
    prior = Mixture.of([(0.8, 3.0, 1.0), (0.2, 3.0, 5.0)])
    model, rule = Model(control=prior, likelihood=likelihood, unit_sd=5.0), Rule()
    arms, d = _arms(1), 1.7
    shifted = dataclasses.replace(arms, control=arms.control + d, active=arms.active + d)
    a, b = decide(model, rule, arms=shifted), decide(model, rule, arms=arms, drift=d)
    np.testing.assert_allclose(a.prob_go, b.prob_go, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.mean - d * 0, b.mean, rtol=0, atol=1e-9)
    assert np.array_equal(a.go, b.go) and np.array_equal(a.nogo, b.nogo)


def test_a_positive_drift_raises_the_type_i_error_and_the_frequentist_test_ignores_it():
    runs = [_run(HYBRID, {"bayes.drift": d}, reps=2000) for d in (-3.0, 0.0, 3.0)]
    p_null = [r.bayes["p_go_null"] for r in runs]
    assert p_null[0] < p_null[1] < p_null[2]
    assert runs[2].bayes["conflict_rate_null"] > runs[1].bayes["conflict_rate_null"]
    assert len({r.row()["type1_error"] for r in runs}) == 1  # the frequentist analysis sees no drift


def test_calibration_holds_its_type_i_error_out_of_sample():
    """Calibrated on one seed over the drifts, the rule keeps P(GO | no effect) <= alpha within 3 MCSE on fresh
    trials at every drift."""
    s = load_scenario(HYBRID)
    alpha, drifts = 0.025, (-2.0, 0.0, 2.0)
    cal = calibrate_go(s, alpha, drifts, settings=RunSettings(reps=4000, seed=11, jobs=1))
    assert 0.5 <= cal.go_probability < 1.0
    assert np.all(cal.type1_error <= alpha)  # in sample, by construction
    fresh = s.replace({"bayes.go_probability": cal.go_probability})
    for d in drifts:
        r = cbcp_sim.simulate(fresh.replace({"bayes.drift": d}), reps=4000, seed=12, jobs=1)
        assert r.bayes["p_go_null"] <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / 4000), d


def test_calibration_is_the_order_statistic():
    probs = np.array([0.999, 0.99, 0.98, 0.97, np.nan, 0.5, 0.2, 0.1, 0.05, 0.01, 0.001])
    gamma = smallest_go_probability(probs, 0.2)  # 10 analysed: at most 2 GOs
    assert (probs[np.isfinite(probs)] >= gamma).sum() == 2
    assert (probs[np.isfinite(probs)] >= np.nextafter(gamma, 0)).sum() == 3  # the smallest such probability


def test_calibration_refuses_drifts_without_a_control_prior():
    s = load_scenario(DEFAULT, {"bayes.go_probability": 0.975})
    with pytest.raises(SettingsError, match="drifts"):
        calibrate_go(s, 0.025, (1.0,), settings=RunSettings(reps=100, jobs=1))


def test_a_scenario_with_bayes_plans_for_p_go():
    r = _run(HYBRID, {}, reps=1000)
    k, n = r.successes
    assert n == 1000 - r.bayes["n_failed"]
    assert k == int(r.replicates["bayes"]["go"].sum())
    assert r.design_power["power"] == pytest.approx(r.bayes["p_go"])


def test_sweep_has_bayes_columns(tmp_path):
    from cbcp_sim.planning.sweep import BAYES_COLUMNS, sweep

    s = load_scenario(HYBRID)
    result = sweep(s, [{"bayes.drift": d} for d in (0.0, 2.0)], RunSettings(reps=500, jobs=1),
                   out=tmp_path / "sw")
    table = result.table
    assert {f"bayes_{k}" for k in BAYES_COLUMNS} <= set(table.columns)
    first = table.groupby("point")["bayes_p_go_null"].first()
    assert first[0] < first[1]


def test_natural_history_prior_is_centred_on_the_models_truth():
    """At drift 0 the control prior's mean is the first arm's mean change without cells: the simulated control
    arms' mean agrees within Monte Carlo error."""
    r = _run(HYBRID, {"bayes.control_robust_weight": 0.0}, reps=2000)
    mean, sd = bayes.natural_course(r.scenario)
    control = r.bayes_data["null"].control
    assert r.bayes["prior_components"][0]["mean"] == pytest.approx(mean)
    assert abs(control.mean() - mean) < 3 * control.std() / math.sqrt(control.size) + 3 * sd / math.sqrt(20_000)


def test_single_arm_with_a_natural_history_comparator():
    r = _run(SCENARIOS / "lee2012_single_arm.toml", {"bayes.control": "natural_history",
                                                     "bayes.endpoint": "vs_expected"}, reps=1000)
    b = r.bayes
    assert b["conflict_rate"] is None  # no control data to conflict with
    assert b["p_go_null"] <= 0.025 + 3 * math.sqrt(0.025 * 0.975 / 1000)  # a centred prior only adds variance
    assert b["borrowed_controls"] > 0


def test_historical_map_prior_without_heterogeneity_is_the_pooled_normal():
    studies = [{"mean": 3.0, "sd": 5.0, "n": 25}, {"mean": 2.0, "sd": 4.0, "n": 16}]
    r = _run(DEFAULT, {"bayes.control": "historical", "bayes.control_studies": studies, "bayes.tau_scale": 0.0},
             reps=200)
    w = np.array([25 / 25.0, 16 / 16.0])  # 1 / SE^2 = n / sd^2
    (c,) = r.bayes["prior_components"]
    assert c["mean"] == pytest.approx((w * [3.0, 2.0]).sum() / w.sum(), rel=1e-12)
    assert c["sd"] == pytest.approx(1 / math.sqrt(w.sum()), rel=1e-12)


def test_saved_runs_resume_with_the_arms_and_every_job_count_agrees(tmp_path):
    s = load_scenario(HYBRID)
    first = cbcp_sim.simulate(s, reps=2000, seed=5, jobs=1, chunk_size=500, out=tmp_path / "run")
    again = cbcp_sim.simulate(s, reps=2000, seed=5, jobs=1, chunk_size=500, out=tmp_path / "run")  # read back
    parallel = cbcp_sim.simulate(s, reps=2000, seed=5, jobs=2, chunk_size=500)
    assert first.bayes == again.bayes == parallel.bayes


@pytest.mark.parametrize(("overrides", "path"), [
    ({"bayes.prior": [{"weight": 0.6, "mean": 0, "sd": 1}]}, "bayes.prior"),
    ({"bayes.prior": [{"weight": 1, "mean": 0, "sd": 0}]}, "bayes.prior[0].sd"),
    ({"bayes.control": "prior"}, "bayes.control_prior"),
    ({"bayes.control_prior": [{"weight": 1, "mean": 0, "sd": 1}]}, "bayes.control_prior"),
    ({"bayes.drift": 1.0}, "bayes.drift"),
    ({"bayes.robust_weight": 0.2}, "bayes.robust_weight"),
    ({"bayes.control": "historical", "bayes.control_studies": [{"mean": 1, "sd": 1}]}, "bayes.control_studies[0]"),
    ({"bayes.control": "natural_history", "bayes.prior": [{"weight": 1, "mean": 0, "sd": 1}]}, "bayes.control"),
    ({"bayes.go_probability": 1.0}, "bayes.go_probability"),
    ({"bayes.nope": 1}, "bayes.nope"),
    ({"bayes.go_probability": 0.9, "analysis.primary": "fisher"}, "analysis.primary"),
    ({"bayes.control": "natural_history", "outcome.model": "normal"}, "bayes.control"),
    ({"bayes.futility_predictive": 0.1}, "bayes.futility_predictive"),
])
def test_bad_sections_are_refused_naming_the_field(overrides, path):
    with pytest.raises(ScenarioError) as caught:
        load_scenario(DEFAULT, overrides)
    assert caught.value.path == path
    assert "\n" not in str(caught.value)


def test_crossover_cannot_borrow_controls():
    with pytest.raises(ScenarioError, match="crossover"):
        load_scenario(SCENARIOS / "sun2017_duke_crossover.toml", {"bayes.control": "natural_history"})


def test_cli_calibrate_go(capsys):
    code = main(["calibrate-go", str(HYBRID), "--drifts", "-1", "0", "1", "--reps", "400", "--jobs", "1",
                 "--json", "--quiet"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["drifts"] == [-1.0, 0.0, 1.0]
    assert max(out["type1_error"]) <= out["alpha"] == 0.025
    assert 0.5 <= out["go_probability"] < 1


def test_cli_refuses_calibrating_a_scenario_without_bayes(capsys):
    assert main(["calibrate-go", str(DEFAULT), "--reps", "100", "--jobs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "[bayes]" in err


def test_report_shows_the_bayesian_block(tmp_path):
    from cbcp_sim.io.report import report

    cbcp_sim.simulate(load_scenario(HYBRID), reps=200, seed=1, jobs=1, out=tmp_path / "run")
    page = report(tmp_path / "run").read_text()
    assert "Bayesian go/no-go" in page and "<th>p_go_null</th>" in page
    assert "N(3.15" in page  # the control prior, as the run printed it


def test_predictive_probability_with_a_flat_prior_is_the_closed_form():
    """Flat prior: P(final GO | y) = Phi((y - g - z_gamma se sqrt(t)) / (se sqrt(1 - t))) [Spiegelhalter 2004]."""
    rng = np.random.default_rng(4)
    y, se, t = rng.normal(1.0, 2.0, 500), rng.uniform(0.8, 2.0, 500), rng.uniform(0.2, 0.8, 500)
    rule = Rule(go_threshold=0.5, go_probability=0.95)
    expected = stats.norm.cdf((y - 0.5 - stats.norm.isf(0.05) * se * np.sqrt(t)) / (se * np.sqrt(1 - t)))
    np.testing.assert_allclose(predictive_go(None, rule, y, se, t), expected, rtol=0, atol=1e-12)


def test_go_boundary_of_a_mixture_prior_is_where_the_posterior_reaches_the_go_probability():
    prior = Mixture.of([(0.8, 1.4, 1.0), (0.2, 1.4, 7.0)])
    rule, se = Rule(go_threshold=0.0, go_probability=0.975), np.array([0.5, 1.0, 2.0, 4.0])
    c = go_boundary(prior, rule, se)
    np.testing.assert_allclose(posterior(prior, c, se).sf(0.0), 0.975, rtol=0, atol=1e-9)
    assert np.all(posterior(prior, c - 1e-6, se).sf(0.0) < 0.975)


def test_predictive_probability_of_a_mixture_prior_equals_simulation():
    """Draw the effect from the interim posterior, the rest of the data given it, decide at the end."""
    prior = Mixture.of([(0.7, 1.0, 1.5), (0.3, 0.0, 6.0)])
    rule = Rule(go_threshold=0.0, go_probability=0.9)
    rng = np.random.default_rng(5)
    for y, se, t in ((1.2, 1.5, 0.5), (-0.5, 1.0, 0.3), (2.5, 2.0, 0.7)):
        pp = predictive_go(prior, rule, np.array([y]), np.array([se]), np.array([t]))[0]
        post = posterior(prior, np.array([y]), np.array([se]))
        k = rng.choice(post.components, size=200_000, p=post.weights[0])
        theta = rng.normal(post.means[0, k], post.sds[0, k])
        final = t * y + (1 - t) * rng.normal(theta, se * math.sqrt(t / (1 - t)))
        go = posterior(prior, final, np.full(final.size, se * math.sqrt(t))).sf(0.0) >= 0.9
        assert abs(go.mean() - pp) < 4 * math.sqrt(pp * (1 - pp) / final.size) + 1e-4, (y, se, t, pp, go.mean())


def test_predictive_futility_stops_trials_as_a_no_go():
    base = {"bayes.prior": [{"weight": 1.0, "mean": 1.4, "sd": 1.5}], "bayes.robust_weight": 0.2}
    path = SCENARIOS / "group_sequential.toml"
    without = _run(path, base, reps=1000)
    runs = [_run(path, {**base, "bayes.futility_predictive": f}, reps=1000) for f in (0.05, 0.3)]
    stop = [r.bayes["p_stop_futility_null"][0] for r in runs]
    assert 0 < stop[0] < stop[1]
    for r in runs:
        go, look = r.replicates["bayes"]["go"], r.replicates["bayes"]["futility_look"]
        assert not np.any(go & (look >= 0))  # a stopped trial never goes
        assert np.array_equal(go, without.replicates["bayes"]["go"] & (look < 0))
        assert np.all(r.replicates["bayes"]["nogo"][look >= 0])
    assert "stopped for futility" in str(runs[0])


def test_a_run_without_bayes_loads_no_posterior_code():
    """The command starts fast: a run of a scenario without [bayes] imports neither the Bayesian modules nor
    scipy.stats (0.4 s of start-up) nor scipy.linalg (a tenth of a second); one with it does."""
    code = ("import sys, cbcp_sim; cbcp_sim.simulate(cbcp_sim.load_scenario({!r}), reps=20, jobs=1); "
            "print([m for m in ('cbcp_sim.run.bayes', 'cbcp_sim.analysis.decisions', 'scipy.stats', 'scipy.linalg') "
            "if m in sys.modules])")
    for path, expected in ((DEFAULT, "[]"), (HYBRID, "['cbcp_sim.run.bayes', 'cbcp_sim.analysis.decisions', "
                                                     "'scipy.stats', 'scipy.linalg']")):
        done = subprocess.run([sys.executable, "-c", code.format(str(path))], capture_output=True, text=True,
                              timeout=120, check=True)
        assert done.stdout.strip() == expected
