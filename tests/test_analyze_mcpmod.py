"""``cbcp-sim analyze FILE --method mcpmod`` and ``cbcp_sim.analyze(..., method="mcpmod")``: MCP-Mod on a real
dose-finding trial, one row per child.

References: R DoseFinding's ``MCPMod(type = "general", selModel = "AIC", Delta = 1.5)`` on the ANOVA
``lm(response ~ factor(dose) - 1)`` of ``tests/fixtures/mcpmod/data.csv`` (``reference.json`` key ``analysis``,
made by ``make_fixtures.R``), and, with a baseline, statsmodels' OLS ``response ~ C(dose) + baseline`` for the
adjusted dose means and their covariance. The multivariate t computation costs about a second per critical value
and per set of p-values: the fixture's analysis is computed once per module.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats

import cbcp_sim
from cbcp_sim.analysis import real_data
from cbcp_sim.analysis.dose_data import JSON_FIELDS, DoseAnalysis, analyze_dose
from cbcp_sim.analysis.dose_models import parse_candidates
from cbcp_sim.analysis.mcpmod import mct
from cbcp_sim.errors import SettingsError

from .support import assert_one_line_error, cli

FIXTURES = Path(__file__).parent / "fixtures" / "mcpmod"
DATA = FIXTURES / "data.csv"
REF = json.loads((FIXTURES / "reference.json").read_text())["analysis"]
MODELS = REF["models"]  # emax:1,emax:4,sigEmax:3:3,exponential:4,linear
#: DoseFinding's p-values and critical value come from mvtnorm's randomised quasi-Monte Carlo (abseps 1e-6 asked,
#: but its error on these singular correlations is about 1e-3, see tests/test_mcpmod.py); ours are converged to
#: about 5e-5. They agree to DoseFinding's own accuracy only.
MC_TOLERANCE = 2e-3


@pytest.fixture(scope="module")
def result() -> DoseAnalysis:
    return cbcp_sim.analyze(DATA, method="mcpmod", models=MODELS)


def test_fixture_matches_dosefinding(result):
    """The ANOVA estimates, covariance and df are R's lm to 1e-12; the contrast t statistics DoseFinding's to 1e-6;
    the selected model (emax), its parameters, every significant model's gAIC and the target dose for Delta 1.5
    to 1e-4 relative; adjusted p-values and the critical value within 2e-3 (DoseFinding's Monte Carlo error)."""
    assert result.doses == tuple(REF["doses"]) and result.n_per_dose == (12,) * 5
    assert result.df == REF["df"] == 55 and result.n_subjects == 60
    np.testing.assert_allclose(result.estimates, REF["estimates"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(result.covariance, REF["S"], rtol=1e-12, atol=1e-14)
    assert result.models == tuple(MODELS.split(","))
    np.testing.assert_allclose(result.tstats, REF["tstats"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(result.p_adjusted, REF["p_adjusted"], rtol=0, atol=MC_TOLERANCE)
    assert result.critical_value == pytest.approx(REF["critical_value"], abs=MC_TOLERANCE)
    assert result.reject and result.selected == REF["selected"] == "emax"
    fits = {f["model"]: f for f in REF["fits"]}
    assert list(result.params) == ["e0", "eMax", "ed50"]
    np.testing.assert_allclose(list(result.params.values()), fits["emax"]["params"], rtol=1e-4)
    assert set(result.gaic) == set(fits)  # every model class has a significant contrast here
    for name, g in result.gaic.items():
        assert g == pytest.approx(fits[name]["gaic"], rel=1e-4), name
    assert result.delta == 1.5
    assert result.td == pytest.approx(REF["td"][REF["td_models"].index("emax")], rel=1e-4)
    assert result.td_se is not None and 0.0 < result.td_se < 10.0  # DoseFinding gives no SE of the TD
    # consistency of the test: the statistics beyond the critical value are those with p < alpha
    assert [t > result.critical_value for t in result.tstats] == [p < result.alpha for p in result.p_adjusted]


def test_text_output_reads(result):
    text = str(result)
    for fragment in ("MCP-Mod", "60 children in 5 dose groups", "one-way ANOVA", "df 55", "critical value 2.31",
                     "emax:1", "sigEmax:3:3", "selected   emax (e0 -0.4059, eMax 5.003, ed50 2.452)",
                     "TD         1.0501", "one-sided alpha 0.025"):
        assert fragment in text, text


def test_cli_json_is_the_library_result(capsys, result):
    """--json prints exactly JSON_FIELDS, the library's to_json (one MVT computation for the CLI run)."""
    code, out, err = cli(capsys, "analyze", str(DATA), "--method", "mcpmod", "--models", MODELS, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert list(data) == list(JSON_FIELDS)
    assert data == json.loads(json.dumps(result.to_json()))
    assert data["method"] == "mcpmod" and data["adjustment"] == "anova" and data["selected"] == "emax"
    assert data["models"] == MODELS.split(",") and len(data["tstats"]) == len(data["p_adjusted"]) == 5
    assert data["alpha"] == 0.025 and data["delta"] == 1.5 and data["reject"] is True
    assert list(data["params"]) == ["e0", "eMax", "ed50"] and data["df"] == 55


ESTIMATES = json.loads((FIXTURES / "ed_average.json").read_text())


def test_ed_intervals_and_model_averaging_equal_r(capsys, result):
    """ED50 and its SE equal R's (ed_average.R: DoseFinding's ED, vcov and central differences) to 1e-6; the
    interval is the log-scale one, ``ed exp(+/- z se / ed)`` at 1 - 2 alpha; --selection average --ed 0.9 gives the
    aveAIC weights, the averaged curve's TD, its SE and ED90 as R computes them."""
    emax = next(f for f in ESTIMATES["fits"] if f["model"] == "emax")
    assert result.selection == "aic" and result.ed_p == 0.5 and result.interval_level == 0.95
    assert result.ed == pytest.approx(emax["ed50"], rel=1e-6) and result.ed_se == pytest.approx(emax["ed50_se"],
                                                                                                 rel=1e-5)
    spread = math.exp(stats.norm.ppf(0.975) * result.ed_se / result.ed)
    assert result.ed_interval == pytest.approx((result.ed / spread, result.ed * spread), rel=1e-12)
    assert result.td_se == pytest.approx(emax["td_se"], rel=1e-5)
    code, out, err = cli(capsys, "analyze", str(DATA), "--method", "mcpmod", "--models", MODELS, "--selection",
                         "average", "--ed", "0.9", "--json")
    assert code == 0, err
    data, ref = json.loads(out), ESTIMATES["average"]
    assert data["selection"] == "average" and data["ed_p"] == 0.9 and data["selected"] == "emax"
    np.testing.assert_allclose(list(data["weights"].values()), ref["weights"], rtol=1e-6)
    assert data["td"] == pytest.approx(ref["td"], rel=1e-6) and data["td_se"] == pytest.approx(ref["td_se"], rel=1e-5)
    assert data["ed"] == pytest.approx(ref["ed90"], rel=1e-6)
    assert data["td_interval"][0] < data["td"] < data["td_interval"][1]
    code, out, err = cli(capsys, "analyze", str(DATA), "--method", "mcpmod", "--models", MODELS, "--selection",
                         "average")
    assert code == 0, err
    assert "averaged   the fitted curves with gAIC weights emax 0.410" in out and "ED50       2.2456" in out


@pytest.mark.parametrize("argv, name, fragment", [
    (["--ed", "1.5"], "--ed", "(0, 1)"), (["--ed", "0"], "--ed", "(0, 1)"),
    (["--selection", "best"], "--selection", "average"),
])
def test_bad_ed_or_selection_is_a_one_line_error(capsys, argv, name, fragment):
    code, out, err = cli(capsys, "analyze", str(DATA), "--method", "mcpmod", "--models", MODELS, *argv)
    assert_one_line_error(code, out, err, name, fragment)


def test_no_signal_gives_no_model():
    """Without a dose-response signal nothing is selected: selected, params, td and td_se are null."""
    rng = np.random.default_rng(23)  # pure noise with positive, not significant contrasts (t 0.99 and 0.23)
    frame = pd.DataFrame({"dose": np.repeat([0.0, 2.0, 8.0], 6), "response": rng.normal(0.0, 1.0, 18)})
    res = cbcp_sim.analyze(frame, method="mcpmod", models="emax:2,linear")
    assert min(res.tstats) > 0.0 and max(res.tstats) < res.critical_value
    assert not res.reject and res.selected is None and res.params is None and res.td is None and res.gaic == {}
    assert res.ed is None and res.ed_interval is None and res.weights is None
    assert json.loads(json.dumps(res.to_json()))["td"] is None
    assert "No dose-response signal" in str(res)


def test_baseline_matches_statsmodels_ancova():
    """With a baseline: the dose means adjusted to the mean baseline and their covariance are those of statsmodels'
    OLS response ~ C(dose) + baseline (to 1e-10), df = n - K - 1, and the contrast t statistics are those of its
    estimates. Unbalanced groups; a row with an empty response and one with an empty baseline are left out."""
    rng = np.random.default_rng(7)
    frame = pd.read_csv(DATA).iloc[3:].reset_index(drop=True)  # 9 children at placebo, 12 at the other doses
    frame["gmfm0"] = rng.normal(50.0, 8.0, len(frame))
    frame["change"] = frame["response"] + 0.08 * (frame["gmfm0"] - 50.0)
    frame.loc[5, "change"] = np.nan
    frame.loc[20, "gmfm0"] = np.nan
    models = "emax:1,linear"
    res = cbcp_sim.analyze(frame, method="mcpmod", models=models, response="change", baseline="gmfm0", delta=1.0)
    complete = frame.dropna()
    fit = smf.ols("change ~ C(dose) + gmfm0", data=complete).fit()
    doses = sorted(complete["dose"].unique())
    # each dose's prediction at the mean baseline: intercept + that dose's treatment effect + slope * mean
    names = list(fit.params.index)
    X = np.zeros((len(doses), len(names)))
    X[:, names.index("Intercept")] = 1.0
    X[:, names.index("gmfm0")] = complete["gmfm0"].mean()
    for k, d in enumerate(doses[1:], start=1):
        X[k, names.index(f"C(dose)[T.{d}]")] = 1.0
    mu = X @ fit.params.to_numpy()
    S = X @ fit.cov_params().to_numpy() @ X.T
    assert res.adjustment == "ancova" and res.baseline == "gmfm0" and res.response == "change"
    assert res.df == int(fit.df_resid) == len(complete) - 5 - 1
    assert res.n_per_dose == tuple(complete.groupby("dose").size()) and res.n_subjects == len(frame) - 2
    np.testing.assert_allclose(res.estimates, mu, rtol=1e-10)
    np.testing.assert_allclose(res.covariance, S, rtol=1e-10, atol=1e-13)
    test = mct(mu[None], S, doses, parse_candidates(models), df=fit.df_resid)
    np.testing.assert_allclose(res.tstats, test.tstats[0], rtol=1e-10)
    assert "ANCOVA on gmfm0" in str(res)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "doses.csv"
    path.write_text(text)
    return str(path)


def rows(pairs) -> str:
    return "dose,response\n" + "".join(f"{d},{r}\n" for d, r in pairs)


BALANCED = [(0, 0.1), (0, 0.4), (1, 1.0), (1, 1.3), (4, 2.0), (4, 2.6)]
CLI_ERRORS = {
    "dose not a number": (rows([*BALANCED[:3], ("high", 1.2), *BALANCED[3:]]), [],
                          ["data.dose", "expected a number", "'high'", "line 5"]),
    "dose missing": (rows([*BALANCED, ("", 3.0)]), [], ["data.dose", "missing value", "line 8"]),
    "negative dose": (rows([*BALANCED, (-1, 3.0)]), [], ["data.dose", ">= 0", "line 8"]),
    "dose column absent": (rows(BALANCED), ["--dose", "mg"], ["--dose", "no column 'mg'", "dose, response"]),
    "response column absent": (rows(BALANCED), ["--response", "chg"], ["--response", "no column 'chg'"]),
    "unknown model": (rows(BALANCED), ["--models", "emax:1,hill:2"], ["--models", "unknown model 'hill'"]),
    "model parameters": (rows(BALANCED), ["--models", "sigEmax:3"], ["--models", "takes 2 parameter"]),
    "one dose group": (rows([(2, 0.1), (2, 0.5), (2, 0.9)]), [], ["data.dose", "only one dose (2)", "placebo"]),
    "a group of one child": (rows([*BALANCED, (8, 3.0)]), [], ["data.dose", "dose 8 has 1 child", "line 8",
                                                               "at least 2"]),
    "no variation": (rows([(0, 1), (0, 1), (1, 2), (1, 2)]), [], ["data.response", "no variation"]),
    "a two-arm option": (rows(BALANCED), ["--visit", "12"], ["--visit", "not mcpmod"]),
    "alpha two-sided-sized": (rows(BALANCED), ["--alpha", "0.6"], ["--alpha", "(0, 0.5)"]),
    "delta": (rows(BALANCED), ["--delta", "0"], ["--delta", "above 0"]),
    "baseline not numeric": ("dose,response,b0\n0,1,1\n0,2,x\n1,2,3\n1,3,4\n", ["--baseline", "b0"],
                             ["data.b0", "'x'", "line 3"]),
    "baseline constant": ("dose,response,b0\n0,1,5\n0,2,5\n1,2,5\n1,3,5\n", ["--baseline", "b0"],
                          ["data.b0", "does not vary"]),
}


@pytest.mark.parametrize("case", list(CLI_ERRORS))
def test_cli_errors_are_one_line(capsys, tmp_path, case):
    """Each bad file or option: exit 2, one line on stderr naming the option or the data's column (with the line
    of the file), nothing on stdout."""
    text, argv, fragments = CLI_ERRORS[case]
    if "--models" not in argv:
        argv = [*argv, "--models", "emax:1,linear"]
    assert_one_line_error(*cli(capsys, "analyze", write(tmp_path, text), "--method", "mcpmod", *argv), *fragments)


def test_cli_needs_models(capsys):
    assert_one_line_error(*cli(capsys, "analyze", str(DATA), "--method", "mcpmod"), "--models", "required")


def test_cli_dose_options_refused_by_other_methods(capsys):
    assert_one_line_error(*cli(capsys, "analyze", str(DATA), "--method", "ancova", "--models", "emax:1"),
                          "--models", "mcpmod, not ancova")


@pytest.mark.parametrize(("kwargs", "path", "fragment"), [
    ({"models": "emax:1", "dose": "mg"}, "dose", "no column 'mg'"),
    ({"models": "emax:1", "response": "dose"}, "response", "already the dose column"),
    ({"models": None}, "models", "candidate models"),
    ({"models": 3}, "models", "candidate models"),
    ({"models": "emax:1", "alpha": "0.05"}, "alpha", "expected a number"),
    ({"models": "emax:1", "visit": 6}, "visit", "not mcpmod"),
    ({"models": "emax:1", "columns": {"arm": "g"}}, "columns.arm", "not mcpmod"),
])
def test_python_errors_name_the_parameter(kwargs, path, fragment):
    """From Python the errors name the parameter (no option), as the other methods' do."""
    with pytest.raises(SettingsError) as info:
        if kwargs.get("models") == 3:
            analyze_dose(DATA, **kwargs)
        else:
            cbcp_sim.analyze(DATA, method="mcpmod", **kwargs)
    assert info.value.path == path and fragment in info.value.message and "--" not in str(info.value)


def test_other_methods_refuse_dose_parameters():
    with pytest.raises(SettingsError) as info:
        cbcp_sim.analyze(DATA, method="ttest", delta=1.0)
    assert info.value.path == "delta" and "mcpmod" in info.value.message
    assert "mcpmod" in real_data.methods()
