"""Assurance and priors: exact agreement with power under a point mass, the closed form of O'Hagan, Stevens &
Campbell (2005) for a normal prior on the effect in the plain normal model, the prior draws, and one-line errors for
malformed priors.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import integrate, stats

import cbcp_sim
from cbcp_sim.errors import ScenarioError
from cbcp_sim.models.streams import named_rng as stream
from cbcp_sim.planning.assurance import assurance, prior_draws
from cbcp_sim.run.settings import RunSettings
from cbcp_sim.scenario import Scenario, default_scenario_path, load_scenario
from cbcp_sim.scenario.priors import Prior, draw

from .support import PLAIN, assert_one_line_error, cli, plain_toml

SD_CHANGE = 5.5


def _plain(**overrides) -> Scenario:
    return load_scenario(default_scenario_path(), {**PLAIN, "outcome.effect": 3.0, **overrides})


# --- assurance against power and the closed form -------------------------------------------------------------


def test_point_mass_assurance_equals_power_exactly():
    """A point-mass prior at 2: assurance is the power of the run of K*r trials in chunks of r, bit for bit."""
    draws, per_draw, seed = 30, 70, 17
    scenario = _plain(**{"assurance.priors": {"outcome.effect": {"distribution": "point", "value": 2}},
                         "assurance.draws": draws, "assurance.reps_per_draw": per_draw})
    result = assurance(scenario, RunSettings(seed=seed))
    fixed = scenario.replace({"outcome.effect": 2.0})
    run = cbcp_sim.simulate(fixed, reps=draws * per_draw, seed=seed, chunk_size=per_draw).primary
    assert result.assurance == run["power"]
    assert np.all(result.values["outcome.effect"] == 2.0)
    assert np.all(result.analysed == per_draw)
    assert np.all(result.true_effect == pytest.approx(2.0))
    # a two-sided rejection at alpha with a positive estimate is a one-sided rejection at alpha / 2
    upper = cbcp_sim.simulate(fixed.replace({"design.sides": 1, "design.alpha": 0.025}), reps=draws * per_draw,
                              seed=seed, chunk_size=per_draw).primary
    assert result.to_json()["favourable"] == upper["power"]


def _t_power(delta: float, se: float, df: int, z_crit: float) -> float:
    """Two-sided t-test power at true difference ``delta`` (noncentral t; the lower tail by symmetry)."""
    ncp = delta / se
    return float(stats.nct.sf(z_crit, df, ncp) + stats.nct.sf(z_crit, df, -ncp))


def test_normal_prior_matches_ohagan_closed_form():
    """Normal prior on the effect, 100 per arm: assurance matches O'Hagan's closed form and the exact t integral."""
    # MC assurance within 3.5 MCSE of the exact t-based value (itself within 0.003 of O'Hagan's normal closed form);
    # the reported MCSE within 25% of its theoretical value
    n, m, prior_sd, alpha = 100, 2.0, 1.5, 0.05
    draws, per_draw, seed = 1000, 40, 7
    se = SD_CHANGE * math.sqrt(2 / n)
    z = stats.norm.ppf(1 - alpha / 2)
    scale = math.sqrt(se**2 + prior_sd**2)
    ohagan = stats.norm.cdf((m - z * se) / scale) + stats.norm.cdf((-m - z * se) / scale)

    df = 2 * n - 2
    t_crit = stats.t.ppf(1 - alpha / 2, df)
    prior = stats.norm(m, prior_sd)
    lo, hi = m - 10 * prior_sd, m + 10 * prior_sd

    def moment(f):
        return integrate.quad(lambda d: f(_t_power(d, se, df, t_crit)) * prior.pdf(d), lo, hi, limit=200,
                              points=[-3 * se, 0.0, 3 * se], epsabs=1e-10)[0]

    exact = moment(lambda p: p)
    second = moment(lambda p: p * p)
    assert abs(ohagan - exact) < 0.003, (ohagan, exact)
    # the mean of K per-draw rates of r trials: Var = (Var_prior(power) + E[power (1 - power)] / r) / K
    theory_se = math.sqrt(((second - exact**2) + (exact - second) / per_draw) / draws)

    scenario = _plain(**{"design.n_per_arm": n, "assurance.draws": draws, "assurance.reps_per_draw": per_draw,
                         "assurance.priors": {"outcome.effect": {"distribution": "normal", "mean": m,
                                                                 "sd": prior_sd}}})
    result = assurance(scenario, RunSettings(seed=seed))
    assert abs(result.assurance - exact) <= 3.5 * result.mcse, (result.assurance, exact, result.mcse)
    assert result.mcse == pytest.approx(theory_se, rel=0.25)
    # the draws follow the prior, and each draw's true effect is its drawn effect
    assert result.true_effect == pytest.approx(result.values["outcome.effect"])
    assert stats.kstest(result.values["outcome.effect"], prior.cdf).pvalue > 0.001
    out = result.to_json()
    assert out["assurance"] == result.assurance and out["mcse"] == result.mcse
    assert out["draws"] == draws and out["reps_per_draw"] == per_draw
    assert out["ci_low"] < exact < out["ci_high"]
    # favourable: rejections with a positive estimate, a subset of all rejections (and most of them, prior mean > 0)
    assert np.all(result.favourable <= result.successes)
    assert out["favourable"] <= out["assurance"]
    assert out["favourable"] > 0.8 * out["assurance"]
    assert out["favourable"] < out["assurance"]  # some draws are negative effects that reject the wrong way


# --- prior draws ---------------------------------------------------------------------------------------------

N_DRAWS = 20_000
KS_CASES = [
    (Prior(distribution="normal", mean=3.0, sd=1.5), stats.norm(3.0, 1.5)),
    (Prior(distribution="lognormal", meanlog=1.386, sdlog=0.5), stats.lognorm(0.5, scale=math.exp(1.386))),
    (Prior(distribution="uniform", low=1.5, high=6.0), stats.uniform(1.5, 4.5)),
    (Prior(distribution="normal", mean=1.0, sd=2.0, lower=0.0), stats.truncnorm(-0.5, np.inf, loc=1.0, scale=2.0)),
    (Prior(distribution="lognormal", meanlog=0.0, sdlog=1.0, lower=0.5, upper=3.0), None),
]


@pytest.mark.parametrize(("prior", "reference"), KS_CASES, ids=["normal", "lognormal", "uniform", "truncnormal",
                                                                  "trunclognormal"])
def test_draws_follow_their_distribution(prior, reference):
    """20,000 draws pass a KS test against the named distribution (truncated ones stay within their bounds)."""
    if reference is None:  # log-normal truncated to [0.5, 3]: the conditional distribution
        base = stats.lognorm(1.0, scale=1.0)
        lo, hi = base.cdf(0.5), base.cdf(3.0)

        def cdf(x):
            return (base.cdf(np.clip(x, 0.5, 3.0)) - lo) / (hi - lo)
    else:
        cdf = reference.cdf
    x = draw("outcome.effect", prior, N_DRAWS, stream(3, "ks"))
    assert x.shape == (N_DRAWS,)
    assert stats.kstest(x, cdf).pvalue > 0.001
    if prior.lower is not None:
        assert x.min() >= prior.lower
    if prior.upper is not None:
        assert x.max() <= prior.upper


def test_ks_check_rejects_the_wrong_distribution():
    """The KS check above has power: normal draws are rejected against a normal with a shifted mean."""
    x = draw("outcome.effect", Prior(distribution="normal", mean=3.0, sd=1.5), N_DRAWS, stream(3, "ks"))
    assert stats.kstest(x, stats.norm(3.05, 1.5).cdf).pvalue < 0.001


def test_point_prior_draws_its_value():
    """A point prior gives its value at every draw."""
    x = draw("outcome.effect", Prior(distribution="point", value=2.5), 50, stream(1, "p"))
    assert np.all(x == 2.5)


def test_file_prior_resamples_values_in_the_file(tmp_path):
    """A file prior resamples only (and, over many draws, all) values of its column: the path, or `column`."""
    values = [0.5, 1.25, 2.0, 3.75, 4.0]
    path = tmp_path / "posterior.csv"
    path.write_text("outcome.effect,other\n" + "".join(f"{v},{-v}\n" for v in values))
    x = draw("outcome.effect", Prior(distribution="file", file=str(path)), 2000, stream(1, "f"))
    assert set(np.unique(x)) == set(values)
    counts = np.array([(x == v).sum() for v in values])
    assert stats.chisquare(counts).pvalue > 0.001  # resampled with equal weights
    other = draw("outcome.effect", Prior(distribution="file", file=str(path), column="other"), 500, stream(1, "f"))
    assert set(np.unique(other)) <= {-v for v in values}


def test_file_prior_bad_column_is_a_scenario_error(tmp_path):
    """A missing column names the prior's file field."""
    path = tmp_path / "posterior.csv"
    path.write_text("x\n1\n2\n")
    with pytest.raises(ScenarioError) as info:
        draw("outcome.effect", Prior(distribution="file", file=str(path)), 10, stream(1, "f"))
    assert info.value.path == "assurance.priors.outcome.effect.file"


def _with_priors(priors: dict) -> Scenario:
    return _plain(**{"assurance.priors": priors})


def test_prior_draws_reproducible_and_own_stream_per_path():
    """The same seed gives the same draws; adding a second prior leaves the first one's draws unchanged."""
    effect = {"distribution": "normal", "mean": 3.0, "sd": 1.0}
    one = _with_priors({"outcome.effect": effect})
    two = _with_priors({"dropout.fraction": {"distribution": "uniform", "low": 0.0, "high": 0.2},
                        "outcome.effect": effect})
    a = prior_draws(one, 300, 11)
    assert np.array_equal(a["outcome.effect"], prior_draws(one, 300, 11)["outcome.effect"])
    b = prior_draws(two, 300, 11)
    assert np.array_equal(a["outcome.effect"], b["outcome.effect"])
    assert not np.array_equal(a["outcome.effect"], prior_draws(one, 300, 12)["outcome.effect"])
    # the two paths do not share a stream: their uniforms differ
    u_effect = stats.norm.cdf(b["outcome.effect"], 3.0, 1.0)
    u_dropout = b["dropout.fraction"] / 0.2
    assert abs(np.corrcoef(u_effect, u_dropout)[0, 1]) < 0.2
    assert not np.allclose(u_effect, u_dropout)


def test_integer_key_gets_whole_numbers():
    """A prior of design.n_per_arm gives whole numbers (rounded draws); a float key keeps fractional values."""
    s = _with_priors({"design.n_per_arm": {"distribution": "normal", "mean": 40.0, "sd": 5.0},
                      "outcome.effect": {"distribution": "normal", "mean": 40.0, "sd": 5.0}})
    v = prior_draws(s, 200, 5)
    n = v["design.n_per_arm"]
    assert np.issubdtype(n.dtype, np.integer)
    assert n.min() > 20 and n.max() < 60 and np.unique(n).size > 10
    assert abs(n.mean() - 40.0) < 4 * 5.0 / math.sqrt(n.size)
    assert not np.all(v["outcome.effect"] == np.round(v["outcome.effect"]))


def test_assurance_with_integer_prior_runs_whole_sizes():
    """An assurance over n per arm runs each draw at its whole size (analysed = reps per draw)."""
    s = _plain(**{"assurance.priors": {"design.n_per_arm": {"distribution": "uniform", "low": 10, "high": 60}},
                  "assurance.draws": 12, "assurance.reps_per_draw": 50})
    result = assurance(s, RunSettings(seed=3))
    n = result.values["design.n_per_arm"]
    assert np.issubdtype(n.dtype, np.integer) and n.min() >= 10 and n.max() <= 60
    assert np.all(result.analysed == 50)
    # more children, more power (Spearman over the 12 draws)
    assert stats.spearmanr(n, result.power).statistic > 0.5


# --- malformed priors: one-line errors, exit 2 ---------------------------------------------------------------

BAD_PRIORS = [
    ('distribution = "normal"\nmean = 3', "assurance.priors.outcome.effect", "needs sd"),
    ('distribution = "gamma"\nmean = 3', "assurance.priors.outcome.effect.distribution", "gamma"),
    ('distribution = "normal"\nmean = 3\nsd = 1\nlow = 0', "assurance.priors.outcome.effect.low",
     "not used by a normal prior"),
    ('distribution = "uniform"\nlow = 3\nhigh = 3', "assurance.priors.outcome.effect", "low < high"),
    ('distribution = "uniform"\nlow = 4\nhigh = 3', "assurance.priors.outcome.effect", "low < high"),
    ('distribution = "normal"\nmean = 3\nsd = 1\nlower = 4\nupper = 2', "assurance.priors.outcome.effect",
     "leaves no mass"),
    ('distribution = "lognormal"\nmeanlog = 0\nsdlog = 1\nupper = -1', "assurance.priors.outcome.effect",
     "leaves no mass"),
    ('distribution = "point"\nvalue = 3\nsd = 1', "assurance.priors.outcome.effect.sd", "not used by a point prior"),
]


def _toml(tmp_path, extra: str = "") -> str:
    path = tmp_path / "scenario.toml"
    path.write_text(plain_toml(3.0) + extra)
    return str(path)


@pytest.mark.parametrize(("body", "field", "fragment"), BAD_PRIORS,
                         ids=["missing-sd", "unknown-distribution", "unused-parameter", "uniform-equal",
                              "uniform-reversed", "no-mass", "lognormal-no-mass", "point-with-sd"])
def test_malformed_prior_in_scenario(capsys, tmp_path, body, field, fragment):
    """A malformed prior in the scenario file gives one line naming the prior's field, exit 2."""
    path = _toml(tmp_path, f'\n[assurance.priors."outcome.effect"]\n{body}\n')
    code, out, err = cli(capsys, "assurance", path, "--jobs", "1")
    assert_one_line_error(code, out, err, f"error: {field}:", fragment)


def test_prior_key_not_a_dotted_path_in_scenario(capsys, tmp_path):
    """A prior keyed by a name that is not a dotted path gives one line, exit 2."""
    path = _toml(tmp_path, '\n[assurance.priors.nodots]\ndistribution = "point"\nvalue = 1\n')
    code, out, err = cli(capsys, "assurance", path, "--jobs", "1")
    assert_one_line_error(code, out, err, "error: assurance.priors.nodots:", "dotted path")


def test_truncation_without_numerical_mass(capsys, tmp_path):
    """Bounds that are ordered but hold no prior mass (normal(0, 1) above 100) give one line, exit 2."""
    code, out, err = cli(capsys, "assurance", _toml(tmp_path), "--prior", "outcome.effect=normal(0, 1, lower=100)",
                         "--jobs", "1")
    assert_one_line_error(code, out, err, "error: --prior: assurance.priors.outcome.effect:", "no prior mass")


@pytest.mark.parametrize(("prior", "fragments"), [
    ("outcome.effect=normal(1)", ("error: --prior:", "assurance.priors.outcome.effect", "needs sd")),
    ("outcome.effect=gamma(1,2)", ("error: --prior:", "unknown distribution 'gamma'")),
    ("outcome.effect=normal(a, 1)", ("error: --prior:", "mean must be a number")),
    ("nodots=normal(0,1)", ("error: --prior:", "nodots")),
    ("outcome.effect=normal(0, 1, 2, 3, 4)", ("error: --prior:", "5 values")),
    ("outcome.effect=uniform(2, 1)", ("error: --prior:", "low < high")),
    ("outcome.effect", ("error: --prior:", "expected path=distribution")),
])
def test_malformed_prior_option(capsys, tmp_path, prior, fragments):
    """A malformed --prior gives one line naming --prior, exit 2."""
    code, out, err = cli(capsys, "assurance", _toml(tmp_path), "--prior", prior, "--jobs", "1")
    assert_one_line_error(code, out, err, *fragments)


def test_refused_draw_names_the_prior_and_suggests_truncation(capsys, tmp_path):
    """A normal prior on n per arm that draws sizes below 2 names the prior path and suggests truncation."""
    code, out, err = cli(capsys, "assurance", _toml(tmp_path), "--prior", "design.n_per_arm=normal(5, 5)",
                         "--jobs", "1")
    assert_one_line_error(code, out, err, "error: --prior: assurance.priors.design.n_per_arm:", "refuses", "truncate",
                          "lower")


def test_refused_uniform_draw_names_the_prior(capsys, tmp_path):
    """design.n_per_arm = uniform(0, 5) draws n < 2: one line naming the prior path and the draw, exit 2."""
    code, out, err = cli(capsys, "assurance", _toml(tmp_path), "--prior", "design.n_per_arm=uniform(0, 5)",
                         "--jobs", "1")
    assert_one_line_error(code, out, err, "error: --prior: assurance.priors.design.n_per_arm:", "draw", "refuses")


@pytest.mark.parametrize(("prior", "start", "unwanted"), [
    ("design.n_per_arm=uniform(0, 5)", "error: --prior: assurance.priors.", "(lower, upper)"),  # uniform: low, high
    ("dropout.fraction=point(2)", "error: --prior: assurance.priors.", "truncate"),  # a point mass: change its value
    ("outcome.no_such_key=normal(1, 1)", "error: --prior: assurance.priors.outcome.no_such_key: is not a scenario key",
     "truncate"),  # an unknown key is refused when the scenario is read, before any draw
])
def test_refused_draw_advice_is_one_the_prior_can_follow(capsys, tmp_path, prior, start, unwanted):
    """A refused draw advises what the prior's distribution can change; an unknown key is refused at once."""
    code, out, err = cli(capsys, "assurance", _toml(tmp_path), "--prior", prior, "--jobs", "1")
    assert_one_line_error(code, out, err, start)
    assert unwanted not in err, err


def test_scenario_without_priors(capsys, tmp_path):
    """No priors in the scenario and no --prior: one line naming assurance.priors, exit 2 (the API raises too)."""
    code, out, err = cli(capsys, "assurance", _toml(tmp_path), "--jobs", "1")
    assert_one_line_error(code, out, err, "error: assurance.priors:", "--prior")
    with pytest.raises(ScenarioError) as info:
        assurance(_plain(**{"assurance.priors": {}}))
    assert info.value.path == "assurance.priors"


def test_cli_assurance_json(capsys, tmp_path):
    """`assurance --prior ... --json` prints assurance, its MCSE and interval, favourable and the priors."""
    code, out, err = cli(capsys, "assurance", _toml(tmp_path), "--prior", "outcome.effect=normal(3, 1, lower=0)",
                         "--draws", "20", "--reps-per-draw", "25", "--jobs", "1", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["kind"] == "assurance"
    assert data["draws"] == 20 and data["reps_per_draw"] == 25
    assert 0.0 <= data["ci_low"] <= data["assurance"] <= data["ci_high"] <= 1.0
    assert 0.0 < data["mcse"] < 0.2
    assert data["favourable"] <= data["assurance"]
    assert data["priors"] == {"outcome.effect": {"distribution": "normal", "mean": 3.0, "sd": 1.0, "lower": 0.0}}


# --- the comparison whose success counts (issue 18 points 5 and 6) -------------------------------------------

REPEAT_DOSE = default_scenario_path().parent / "repeat_dose.toml"
TWO = "two doses vs sham"


def test_point_mass_assurance_of_a_named_comparison_equals_its_power_exactly():
    """A point-mass prior: assurance of comparison "two doses vs sham" is that comparison's power in the run of
    K*r trials in chunks of r, bit for bit; its true effects, favourable share and text follow it too."""
    draws, per_draw, seed = 6, 50, 11
    scenario = load_scenario(REPEAT_DOSE, {
        "analysis.secondary": [], "assurance.draws": draws, "assurance.reps_per_draw": per_draw,
        "assurance.priors": {"treatment.dose_response.emax": {"distribution": "point", "value": 4.4}}})
    result = assurance(scenario, RunSettings(seed=seed, progress=False), comparison=TWO)
    fixed = scenario.replace({"treatment.dose_response.emax": 4.4})
    run = cbcp_sim.simulate(fixed, reps=draws * per_draw, seed=seed, chunk_size=per_draw)
    assert result.comparison == TWO and result.to_json()["comparison"] == TWO
    assert result.assurance == run.row(TWO)["power"] != run.primary["power"]
    assert np.mean(result.true_effect) == pytest.approx(run.true_effect_for(TWO), rel=1e-9)  # draws of equal size
    assert np.mean(result.true_effect) > run.true_effect_for("single dose vs sham")
    arrays = run.replicates_for(TWO)
    assert result.to_json()["favourable"] == np.sum(arrays["reject"] & (arrays["estimate"] > 0)) / (draws * per_draw)
    text = str(result)
    assert f"(ancova, comparison {TWO})" in text
    assert "  estimand      baseline-adjusted difference" in text and "  endpoint      change from baseline" in text
    first = assurance(scenario, RunSettings(seed=seed, progress=False))
    assert first.comparison == "single dose vs sham" and first.assurance == run.primary["power"]


def test_assurance_refuses_an_unknown_comparison():
    scenario = load_scenario(REPEAT_DOSE, {
        "assurance.priors": {"treatment.dose_response.emax": {"distribution": "point", "value": 4.4}}})
    with pytest.raises(cbcp_sim.SettingsError) as err:
        assurance(scenario, RunSettings(seed=1), comparison="two doses")
    assert err.value.path == "comparison" and "'two doses vs sham'" in err.value.message
