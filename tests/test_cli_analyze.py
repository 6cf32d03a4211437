"""The ``cbcp-sim analyze`` subcommand: the simulator's own analyses fitted to a real long-format data set.

Spec (cli.py, data.py): "``cbcp-sim analyze DATA.csv --method M [--visit V] [--covariates a,b] [--endpoint
change|final] [--alpha A] [--json]``: fit the same batched analysis code the simulator uses on a real long-format
data set (one replicate) and print the estimate, SE, df, CI and p of arm 1 minus arm 0 at visit V (default: the
last visit)". Columns id, arm (0/1), visit (months, > 0), baseline (the same on every row of a child), value;
further columns ignored unless --covariates names them; a missed visit is an absent row or an empty value.
``--method`` is any key of ``cbcp_sim.analysis.ANALYSES`` (looked up at call time) or ``change``. ``--json``
prints exactly estimate, se, df, ci_low, ci_high, p, n_subjects, method, visit, alpha, level. Every bad file,
column or option prints one line ``error: <what>: ...`` and exits 2: the option when it gave the value, else the
library's name (``data`` for the file, ``data.<column>`` for a column of it, with the file named in the message).
The command is a thin wrapper around ``cbcp_sim.analyze`` (tests/test_analyze.py).

Issue 18, point 12: pilot files with their own column names (``--id-column``, ``--arm-column``, ``--visit-column``,
``--value-column``, ``--baseline-column``), arms labelled as text with ``--control sham``, baselines as rows at visit
0, and ``--trial K`` for a file of several trials (``cbcp-sim trials``); an error names the option that gave the
value.

The reference numbers come from statsmodels and scipy on the fixture read with pandas (independently of
cbcp_sim.analysis.long_data). Fixture: tests/fixtures/analyze/trial.csv, written by make_fixtures.py there.
"""

from __future__ import annotations

import inspect
import io
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from cbcp_sim import analysis
from cbcp_sim.analysis import Estimates
from cbcp_sim.analysis.long_data import read_long
from cbcp_sim.errors import SettingsError

from .support import assert_one_line_error, cli
from .test_cli import console_script

TRIAL = Path(__file__).resolve().parent / "fixtures" / "analyze" / "trial.csv"
KEYS = {"estimate", "se", "df", "ci_low", "ci_high", "p", "n_subjects", "method", "visit", "alpha", "level"}
VISITS = (1.5, 6.0, 12.0)


def run_json(capsys, *argv: str, data: Path | str = TRIAL) -> dict:
    code, out, err = cli(capsys, "analyze", str(data), *argv, "--json")
    assert code == 0, err
    assert err == ""
    return json.loads(out)


def observed_at(visit: float) -> pd.DataFrame:
    """The fixture's children with a baseline and an observed value at ``visit`` (read with pandas)."""
    d = pd.read_csv(TRIAL)
    d = d[(d["visit"] == visit) & d["value"].notna() & d["baseline"].notna()].copy()
    d["change"] = d["value"] - d["baseline"]
    return d


def close(got: float, want: float, tol: float = 1e-10) -> bool:
    return abs(got - want) <= tol * max(1.0, abs(want))


def assert_matches_ols(data: dict, formula: str, visit: float, alpha: float) -> None:
    d = observed_at(visit)
    fit = smf.ols(formula, d).fit()
    low, high = fit.conf_int(alpha).loc["arm"]
    assert data["n_subjects"] == len(d) == fit.nobs
    for got, want in ((data["estimate"], fit.params["arm"]), (data["se"], fit.bse["arm"]),
                      (data["df"], fit.df_resid), (data["ci_low"], low), (data["ci_high"], high),
                      (data["p"], fit.pvalues["arm"])):
        assert close(got, want), (got, want)


# --- the numbers are the textbook ones ---------------------------------------------------------------------------


@pytest.mark.parametrize(("visit", "alpha"), [(None, 0.05), (12.0, 0.05), (6.0, 0.05), (1.5, 0.1)])
def test_ancova_matches_statsmodels_ols(capsys, visit, alpha):
    """--method ancova equals OLS value ~ arm + baseline over the children with a baseline and a value at the
    visit (absent rows, empty values and the child without a baseline left out): estimate, bse, df_resid,
    conf_int(alpha) and p of arm to 1e-10; the visit defaults to the last (12 months)."""
    argv = ["--method", "ancova", "--alpha", str(alpha)] + ([] if visit is None else ["--visit", f"{visit:g}"])
    data = run_json(capsys, *argv)
    assert data["visit"] == (12.0 if visit is None else visit)
    assert data["alpha"] == alpha and data["level"] == pytest.approx(1.0 - alpha, abs=1e-12)
    assert_matches_ols(data, "value ~ arm + baseline", data["visit"], alpha)


@pytest.mark.parametrize(("method", "equal_var"), [("change", True), ("ttest", True), ("welch", False)])
@pytest.mark.parametrize("visit", VISITS)
def test_t_tests_match_scipy_on_the_change(capsys, method, equal_var, visit):
    """change and ttest (Student, pooled) and welch (Satterthwaite) equal scipy.stats.ttest_ind of the change from
    baseline, treated minus control: estimate, se (estimate / t), df, p and the 95% interval, to 1e-10."""
    data = run_json(capsys, "--method", method, "--visit", f"{visit:g}")
    d = observed_at(visit)
    treated, control = d.loc[d["arm"] == 1, "change"], d.loc[d["arm"] == 0, "change"]
    res = stats.ttest_ind(treated, control, equal_var=equal_var)
    ci = res.confidence_interval(0.95)
    estimate = treated.mean() - control.mean()
    assert data["method"] == method and data["n_subjects"] == len(d)
    for got, want in ((data["estimate"], estimate), (data["se"], estimate / res.statistic), (data["df"], res.df),
                      (data["p"], res.pvalue), (data["ci_low"], ci.low), (data["ci_high"], ci.high)):
        assert close(got, want), (method, got, want)


def test_ttest_final_endpoint_matches_scipy_on_the_score(capsys):
    """--method ttest --endpoint final compares the visit's score itself (children with a baseline)."""
    data = run_json(capsys, "--method", "ttest", "--endpoint", "final")
    d = observed_at(12.0)
    res = stats.ttest_ind(d.loc[d["arm"] == 1, "value"], d.loc[d["arm"] == 0, "value"])
    assert close(data["estimate"] / data["se"], res.statistic) and close(data["p"], res.pvalue)
    assert close(data["df"], res.df)


def test_ancova_with_age_matches_statsmodels_ols(capsys):
    """--covariates age with ancova equals OLS value ~ arm + baseline + age (needs ancova's covariates keyword)."""
    for visit in VISITS:
        data = run_json(capsys, "--method", "ancova", "--covariates", "age", "--visit", f"{visit:g}")
        assert_matches_ols(data, "value ~ arm + baseline + age", visit, 0.05)


# --- what it prints ------------------------------------------------------------------------------------------------


def test_json_has_exactly_the_documented_keys(capsys):
    """One JSON object with exactly the documented keys, finite numbers, the echo of method, visit and alpha."""
    data = run_json(capsys, "--method", "change", "--alpha", "0.1")
    assert set(data) == KEYS
    assert data["method"] == "change" and data["visit"] == 12.0 and data["alpha"] == 0.1
    assert data["level"] == pytest.approx(0.9, abs=1e-12)
    assert isinstance(data["n_subjects"], int)
    assert all(math.isfinite(data[k]) for k in ("estimate", "se", "df", "ci_low", "ci_high", "p"))
    assert data["ci_low"] < data["estimate"] < data["ci_high"]


def test_default_visit_is_the_last_and_visit_selects(capsys):
    """Without --visit the last visit (12) is compared; --visit 6 and --visit 1.5 compare those, with their own
    numbers of children (the fixture's counts at each visit)."""
    default = run_json(capsys, "--method", "welch")
    assert default == run_json(capsys, "--method", "welch", "--visit", "12")
    by_visit = {v: run_json(capsys, "--method", "welch", "--visit", f"{v:g}") for v in VISITS}
    assert [by_visit[v]["n_subjects"] for v in VISITS] == [len(observed_at(v)) for v in VISITS] == [37, 43, 33]
    assert len({by_visit[v]["estimate"] for v in VISITS}) == 3


def test_text_table_shows_the_numbers(capsys):
    """Without --json: a title naming the file, then an aligned two-column table of method, visit, n_subjects,
    estimate, se, df, '90% CI' (from --alpha 0.1) and p, matching the JSON run to the printed precision."""
    code, out, err = cli(capsys, "analyze", str(TRIAL), "--method", "welch", "--alpha", "0.1")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert str(TRIAL) in lines[0]
    table = dict(line.strip().split("  ", 1) for line in lines[1:])
    table = {k: v.strip() for k, v in table.items()}
    assert list(table) == ["method", "visit", "n_subjects", "estimate", "se", "df", "90% CI", "p"]
    starts = {line.index(v) for line, v in zip(lines[1:], table.values(), strict=True)}
    assert len(starts) == 1  # the values are aligned
    data = run_json(capsys, "--method", "welch", "--alpha", "0.1")
    assert table["method"] == "welch" and table["visit"] == "12 months"
    assert int(table["n_subjects"]) == data["n_subjects"]
    for key in ("estimate", "se", "df"):
        assert abs(float(table[key]) - data[key]) <= 0.0051, key
    low, high = (float(x) for x in table["90% CI"].split(" to "))
    assert abs(low - data["ci_low"]) <= 5e-5 and abs(high - data["ci_high"]) <= 5e-5
    assert float(table["p"]) == pytest.approx(data["p"], rel=1e-3)


def test_crlf_bom_blank_lines_and_row_order_do_not_matter(capsys, tmp_path):
    """The same rows with a UTF-8 byte-order mark, CRLF line ends, blank lines and reversed order give the same
    JSON (up to the last bits of the sums' order)."""
    header, *rows = TRIAL.read_text().splitlines()
    path = tmp_path / "excel.csv"
    path.write_bytes(("\ufeff" + "\r\n".join([header, "", *reversed(rows), ""]) + "\r\n").encode())
    for method in ("ancova", "welch"):
        want = run_json(capsys, "--method", method)
        got = run_json(capsys, "--method", method, data=path)
        assert got.keys() == want.keys()
        for key, value in want.items():
            assert got[key] == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value), key


def test_read_long_arrays():
    """read_long: children in order of first appearance, months 0 then the sorted visits, baseline in column 0,
    NaN and unobserved where a row is absent or its value empty, the per-child covariate, arm 1 treated."""
    data = read_long(TRIAL, covariates=("age",))
    d = pd.read_csv(TRIAL)
    n = d["id"].nunique()
    assert list(data.ids) == list(dict.fromkeys(d["id"]))
    assert data.months.tolist() == [0.0, *VISITS]
    assert data.values.shape == data.observed.shape == (1, n, 4)
    assert data.treated.shape == (n,) and data.treated.dtype == bool
    assert data.covariates.shape == (1, n, 1) and data.covariate_names == ("age",)
    assert np.array_equal(data.observed, ~np.isnan(data.values))
    for i, child in enumerate(data.ids):
        rows = d[d["id"] == child]
        assert data.treated[i] == (rows["arm"].iloc[0] == 1)
        assert data.covariates[0, i, 0] == rows["age"].iloc[0]
        assert np.array_equal(data.values[0, i, 0], rows["baseline"].iloc[0], equal_nan=True)
        for j, month in enumerate(VISITS, start=1):
            value = rows.loc[rows["visit"] == month, "value"]
            assert np.array_equal(data.values[0, i, j], value.iloc[0] if len(value) else np.nan, equal_nan=True)
    assert data.visit_index(6) == 2 and data.visit_index(12.0) == 3
    with pytest.raises(SettingsError, match=r"^visit: must be one of the visits .*\(1\.5, 6, 12 months\), got 3$"):
        data.visit_index(3)
    none = read_long(TRIAL)
    assert none.covariates.shape == (1, n, 0) and none.covariate_names == ()


# --- the registry is read at call time -----------------------------------------------------------------------------


def _constant_estimate(values, observed, treated, visit, *, endpoint="change"):
    r = values.shape[0]
    return Estimates(estimate=np.full(r, 1.5), se=np.full(r, 0.5), df=np.full(r, 20.0))


def _adjusting(values, observed, treated, visit, *, endpoint="change", covariates=None):
    r = values.shape[0]
    return Estimates(estimate=covariates[:, :, 0].mean(axis=1), se=np.ones(r), df=np.full(r, np.inf))


def test_new_analyses_are_offered_and_longitudinal_ones_count_every_child(capsys, monkeypatch):
    """An analysis registered in ANALYSES after import is a --method at once, its estimates printed as given
    (df inf: a null in JSON); one named mmrm counts the children with a baseline and any observed visit."""
    monkeypatch.setitem(analysis.ANALYSES, "constant", _constant_estimate)
    monkeypatch.setitem(analysis.ANALYSES, "mmrm", _constant_estimate)
    monkeypatch.setitem(analysis.ANALYSES, "adjusted", _adjusting)
    data = run_json(capsys, "--method", "constant")
    assert (data["estimate"], data["se"], data["df"], data["n_subjects"]) == (1.5, 0.5, 20.0, 33)
    assert close(data["p"], 2 * stats.t.sf(3.0, 20)) and close(data["ci_low"], 1.5 - stats.t.ppf(0.975, 20) * 0.5)
    d = pd.read_csv(TRIAL)
    every = d[d["value"].notna() & d["baseline"].notna()]["id"].nunique()
    assert run_json(capsys, "--method", "mmrm")["n_subjects"] == every == 46
    adjusted = run_json(capsys, "--method", "adjusted", "--covariates", "age")
    assert close(adjusted["estimate"], d.groupby("id")["age"].first().mean()) and adjusted["df"] is None
    code, _, err = cli(capsys, "analyze", str(TRIAL), "--method", "nonesuch")
    assert_one_line_error(code, "", err, "--method", "adjusted", "ancova", "change", "constant", "mmrm", "welch")


def test_covariates_only_for_analyses_that_take_them(capsys, monkeypatch):
    """--covariates with an analysis whose function has no covariates keyword (read from its signature: today
    ttest, welch, change, wilcoxon, fisher, chisquare) is one line naming --covariates."""
    monkeypatch.setitem(analysis.ANALYSES, "constant", _constant_estimate)
    plain = [k for k, fn in analysis.ANALYSES.items() if "covariates" not in inspect.signature(fn).parameters
             and k not in analysis.CROSSOVER | analysis.SINGLE_ARM]
    if "ttest" in plain:
        plain.append("change")
    for method in plain:
        assert_one_line_error(*cli(capsys, "analyze", str(TRIAL), "--method", method, "--covariates", "age"),
                              "--covariates", method)


# --- bad input: one line, exit 2 -----------------------------------------------------------------------------------

GOOD = """id,arm,visit,baseline,value,age
a,0,6,50,52,4
a,0,12,50,53,4
b,0,6,48,51,5
b,0,12,48,50,5
c,0,6,55,55.5,6
c,0,12,55,58,6
d,1,6,47,53,7
d,1,12,47,54,7
e,1,6,52,58,3
e,1,12,52,60,3
f,1,6,51,55,8
f,1,12,51,57.5,8
"""


def _edit(line: int, old: str, new: str, text: str = GOOD) -> str:
    """``text`` with the first ``old`` on (1-based) ``line`` replaced by ``new``."""
    lines = text.splitlines(keepends=True)
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    return "".join(lines)


BAD_FILES = {
    "empty file": ("", ["{file}", "empty"]),
    "blank lines only": ("\n\n", ["{file}", "empty"]),
    "header only": ("id,arm,visit,baseline,value\n", ["{file}", "no rows"]),
    "missing columns": (GOOD.replace(",arm,", ",group,").replace("value", "score"), ["{file}", "arm, value"]),
    "ragged row": (_edit(4, ",5\n", "\n"), ["{file}", "line 4"]),
    "duplicate header": (GOOD.replace("age", "value", 1), ["{file}", "value"]),
    "non-numeric visit": (_edit(4, ",6,", ",six,"), ["visit", "line 4", "'six'"]),
    "non-numeric value": (_edit(7, "58", "n/a"), ["value", "line 7", "'n/a'"]),
    "non-numeric baseline": (_edit(3, "50", "fifty"), ["baseline", "line 3"]),
    "infinite value": (_edit(2, "52", "inf"), ["value", "line 2"]),
    "missing arm": (_edit(6, ",0,", ",,"), ["arm", "line 6"]),
    "missing visit": (_edit(6, ",6,", ",,"), ["visit", "line 6"]),
    "missing id": (_edit(10, "e,", ","), ["id", "line 10"]),
    "arm not 0/1": (_edit(8, "d,1,", "d,2,").replace("d,1,", "d,2,"), ["arm", "line 8", "'2'"]),
    "one arm only": (GOOD.replace(",1,", ",0,"), ["arm", "only arm 0"]),
    "arm not constant": (_edit(9, "d,1,", "d,0,"), ["arm", "'d'", "line 8", "line 9"]),
    "duplicate id and visit": (_edit(3, ",12,", ",6.0,"), ["id", "'a'", "lines 2 and 3"]),
    "visit zero disagreeing with the baseline": (_edit(2, ",6,", ",0,"), ["baseline", "line 2", "value 52 at visit 0"]),
    "negative visit": (_edit(13, ",12,", ",-12,"), ["visit", "line 13"]),
    "baseline not constant": (_edit(5, ",48,", ",49,"), ["baseline", "'b'", "line 4", "line 5"]),
    "baseline empty on one row": (_edit(5, ",48,", ",,"), ["baseline", "'b'", "line 5"]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_one_line_error(capsys, tmp_path, case):
    """Each bad file: exit 2, nothing on stdout, one stderr line naming the file or the column (and the line)."""
    text, fragments = BAD_FILES[case]
    path = tmp_path / "trial.csv"
    path.write_text(text)
    assert cli(capsys, "analyze", str(path), "--method", "ancova")[0] == 2  # any method
    code, out, err = cli(capsys, "analyze", str(path), "--method", "welch")
    assert_one_line_error(code, out, err, *(f.format(file=path) for f in fragments))


def test_good_small_file_runs(capsys, tmp_path):
    """The small file the bad cases edit is itself good (so each bad case fails for its own reason)."""
    path = tmp_path / "trial.csv"
    path.write_text(GOOD)
    assert run_json(capsys, "--method", "ancova", data=path)["n_subjects"] == 6


def test_unreadable_files_are_one_line_errors(capsys, tmp_path):
    """A missing file, a directory and a file that is not UTF-8 text: one line naming the file."""
    missing = tmp_path / "nonesuch.csv"
    assert_one_line_error(*cli(capsys, "analyze", str(missing), "--method", "ttest"), str(missing), "no such file")
    assert_one_line_error(*cli(capsys, "analyze", str(tmp_path), "--method", "ttest"), str(tmp_path))
    binary = tmp_path / "trial.xlsx"
    binary.write_bytes(b"PK\x03\x04\xff\xfe\x00\x81")
    assert_one_line_error(*cli(capsys, "analyze", str(binary), "--method", "ttest"), str(binary))


BAD_COVARIATES = {
    "absent column": ("GOOD", "weight", ["--covariates", "weight"]),
    "not constant": (_edit(3, ",4\n", ",4.5\n"), "age", ["age", "'a'", "line 2", "line 3"]),
    "non-numeric": (_edit(4, ",5\n", ",five\n"), "age", ["age", "line 4"]),
    "missing value": (_edit(4, ",5\n", ",\n"), "age", ["age", "line 4"]),
    "a required column": ("GOOD", "baseline", ["--covariates", "baseline"]),
    "empty name": ("GOOD", "age,", ["--covariates"]),
    "named twice": ("GOOD", "age,age", ["--covariates", "age"]),
}


@pytest.mark.parametrize("case", list(BAD_COVARIATES))
def test_bad_covariate_is_one_line_error(capsys, tmp_path, monkeypatch, case):
    """Covariates (here with an analysis that takes them, whatever ancova does): a named column that is absent,
    not the same on every row of a child, not numeric or incomplete, or a bad list, is one line naming it."""
    monkeypatch.setitem(analysis.ANALYSES, "adjusted", _adjusting)
    text, names, fragments = BAD_COVARIATES[case]
    path = tmp_path / "trial.csv"
    path.write_text(GOOD if text == "GOOD" else text)
    assert_one_line_error(*cli(capsys, "analyze", str(path), "--method", "adjusted", "--covariates", names),
                          *fragments)


def test_bad_visit_is_one_line_error(capsys, tmp_path):
    """--visit not among the file's visits; a visit with no observed value; one with fewer than two children per
    arm observed with a baseline: one line naming --visit, or the parameter visit when --visit was not given
    (the default last visit: the error names the library's parameter, as every option left out does)."""
    path = tmp_path / "trial.csv"
    path.write_text(GOOD)
    assert_one_line_error(*cli(capsys, "analyze", str(path), "--method", "ttest", "--visit", "3"),
                          "--visit", "6, 12")
    rows = [line.split(",") for line in GOOD.splitlines()]
    path.write_text("".join(",".join([*r[:4], "", *r[5:]]) + "\n" if r[2] == "12" else ",".join(r) + "\n"
                            for r in rows))  # every 12-month value missed
    assert_one_line_error(*cli(capsys, "analyze", str(path), "--method", "ttest"), "error: visit: at 12 months (the "
                          "last visit) 0 control and 0")
    no_e = _edit(11, ",52,60,", ",,60,", _edit(10, ",52,58,", ",,58,"))  # e has no baseline
    path.write_text(_edit(13, ",57.5,", ",,", no_e))  # f missed 12 months
    assert_one_line_error(*cli(capsys, "analyze", str(path), "--method", "welch", "--visit", "12"),
                          "--visit", "3 control and 1 treated")


def test_a_bad_visit_column_is_not_the_visit_option(capsys, tmp_path):
    """A bad value in the file's visit column is an error of the data (data.visit), not of --visit, even when
    --visit was given; likewise a bad covariate column is data.age, not --covariates."""
    path = tmp_path / "trial.csv"
    path.write_text(_edit(4, ",6,", ",six,"))
    code, out, err = cli(capsys, "analyze", str(path), "--method", "ancova", "--visit", "6")
    assert_one_line_error(code, out, err, "error: data.visit: expected a number, got 'six' at line 4", str(path))
    path.write_text(_edit(4, ",5\n", ",five\n"))
    code, out, err = cli(capsys, "analyze", str(path), "--method", "ancova", "--covariates", "age")
    assert_one_line_error(code, out, err, "error: data.age: expected a number, got 'five' at line 4")


def test_bad_options_are_one_line_errors(capsys, tmp_path):
    """An unknown --method lists the known ones; --alpha outside (0, 1); --method change with --endpoint final;
    a fit that fails (no variation left: SE 0) is one line naming --method, not a traceback."""
    assert_one_line_error(*cli(capsys, "analyze", str(TRIAL), "--method", "anova"), "--method", "ancova")
    for alpha in ("0", "1", "1.5", "nan"):
        assert_one_line_error(*cli(capsys, "analyze", str(TRIAL), "--method", "ttest", "--alpha", alpha), "--alpha")
    assert_one_line_error(*cli(capsys, "analyze", str(TRIAL), "--method", "change", "--endpoint", "final"),
                          "--endpoint")
    assert_one_line_error(*cli(capsys, "analyze", str(TRIAL), "--method", "ttest", "--endpoint", "last"),
                          "--endpoint")
    assert_one_line_error(*cli(capsys, "analyze", str(TRIAL)), "--method")
    flat = tmp_path / "flat.csv"
    flat.write_text("id,arm,visit,baseline,value\na,0,6,50,52\nb,0,6,40,42\nc,1,6,45,49\nd,1,6,55,59\n")
    assert_one_line_error(*cli(capsys, "analyze", str(flat), "--method", "ttest"), "--method", "ttest")


# --- pilot files: column options, --control, visit-0 baselines, --trial -------------------------------------------

PILOT_OPTIONS = ("--id-column", "patient", "--arm-column", "group", "--visit-column", "month", "--value-column",
                 "gmfm66", "--baseline-column", "gmfm66_0")


def _pilot_file(tmp_path: Path, frame: pd.DataFrame | None = None) -> Path:
    """The fixture (or ``frame``) as a pilot file: its own column names and arms "sham" and "cord blood"."""
    frame = pd.read_csv(TRIAL) if frame is None else frame
    frame = frame.rename(columns={"id": "patient", "arm": "group", "visit": "month", "value": "gmfm66",
                                  "baseline": "gmfm66_0"})
    frame["group"] = frame["group"].map({0: "sham", 1: "cord blood", 2: "UCT-MSC"})
    path = tmp_path / "pilot.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("method", ["ancova", "mmrm", "welch"])
def test_column_options_and_control_read_a_pilot_file(capsys, tmp_path, method):
    """--id-column, --arm-column, --visit-column, --value-column, --baseline-column and --control sham on a pilot
    file give exactly the standard file's JSON; the table names the arms."""
    path = _pilot_file(tmp_path)
    adjusted = () if method == "welch" else ("--covariates", "age")
    want = run_json(capsys, "--method", method, *adjusted)
    assert run_json(capsys, "--method", method, *adjusted, *PILOT_OPTIONS, "--control", "sham", data=path) == want
    code, out, err = cli(capsys, "analyze", str(path), "--method", method, *PILOT_OPTIONS, "--control", "sham")
    assert code == 0 and out.splitlines()[0] == f"{path}: cord blood minus sham (two-sided)", err


def test_visit_0_rows_give_the_baseline_on_the_command_line(capsys, tmp_path):
    """The small file with each child's baseline as a row at visit 0 and no baseline column: the same JSON."""
    frame = pd.read_csv(io.StringIO(GOOD))
    zero = frame.drop_duplicates("id").assign(visit=0, value=lambda f: f["baseline"])
    path = tmp_path / "visit0.csv"
    pd.concat([zero, frame]).drop(columns="baseline").to_csv(path, index=False)
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    for method in ("ancova", "mmrm"):
        assert run_json(capsys, "--method", method, data=path) == run_json(capsys, "--method", method, data=good)


def test_a_file_of_several_trials_needs_trial(capsys, tmp_path):
    """A trial column with two trials: --trial chooses one (its result is that trial's alone); without it, one
    line naming the parameter trial; a trial not in the file names --trial."""
    frame = pd.read_csv(io.StringIO(GOOD))
    second = frame.assign(value=frame["value"] + 0.5 * frame["arm"] + frame["age"] / 10)
    path = tmp_path / "trials.csv"
    pd.concat([frame.assign(trial=0), second.assign(trial=1)]).to_csv(path, index=False)
    alone = tmp_path / "one.csv"
    second.to_csv(alone, index=False)
    assert run_json(capsys, "--method", "ancova", "--trial", "1", data=path) == run_json(capsys, "--method",
                                                                                         "ancova", data=alone)
    assert_one_line_error(*cli(capsys, "analyze", str(path), "--method", "ancova"),
                          "error: trial: ", "holds 2 trials (column trial: 0, 1)")
    assert_one_line_error(*cli(capsys, "analyze", str(path), "--method", "ancova", "--trial", "2"),
                          "error: --trial: no rows of trial 2")


def test_mapping_and_control_errors_name_the_option(capsys, tmp_path):
    """A mapped column that is not there names its option; a control that is not an arm names --control; two
    options naming one column name the second; text arms without --control, or three arms, name the column by
    the file's name, data.group (listing the arms)."""
    path = _pilot_file(tmp_path)
    assert_one_line_error(*cli(capsys, "analyze", str(path), "--method", "ttest", *PILOT_OPTIONS[:-2],
                               "--baseline-column", "gmfm_0", "--control", "sham"),
                          "error: --baseline-column: no column 'gmfm_0'", "the header has: patient")
    assert_one_line_error(*cli(capsys, "analyze", str(path), "--method", "ttest", *PILOT_OPTIONS,
                               "--control", "placebo"),
                          "error: --control: no arm 'placebo'", "'sham'", "'cord blood'")
    assert_one_line_error(*cli(capsys, "analyze", str(path), "--method", "ttest", *PILOT_OPTIONS,
                               "--trial-column", "patient", "--control", "sham"),
                          "error: --trial-column: 'patient' is already the id column")
    assert_one_line_error(*cli(capsys, "analyze", str(path), "--method", "ttest", *PILOT_OPTIONS),
                          "error: data.group: must be 0 (control) or 1 (treated), got 'cord blood' at line 2",
                          "control arm's label")
    assert_one_line_error(*cli(capsys, "analyze", str(path), "--method", "ttest"),
                          "error: data: missing required columns id, arm, visit, value")
    frame = pd.read_csv(TRIAL)
    three = _pilot_file(tmp_path, frame.assign(arm=frame["arm"].mask(frame["id"] == "P002", 2)))
    assert_one_line_error(*cli(capsys, "analyze", str(three), "--method", "ttest", *PILOT_OPTIONS,
                               "--control", "sham"),
                          "error: data.group: has 3 arms", "'UCT-MSC'", "'sham'", "'cord blood'")


# --- the installed console script -----------------------------------------------------------------------------------


def test_console_script_analyze(capsys, tmp_path):
    """The installed `cbcp-sim analyze` prints the same JSON as in-process and exits 2 with one line on a bad file."""
    proc = subprocess.run([console_script(), "analyze", str(TRIAL), "--method", "ancova", "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == run_json(capsys, "--method", "ancova")
    path = tmp_path / "bad.csv"
    path.write_text(_edit(4, ",6,", ",six,"))
    proc = subprocess.run([console_script(), "analyze", str(path), "--method", "ancova"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert_one_line_error(proc.returncode, proc.stdout, proc.stderr, "visit", "line 4")


def test_design_bound_analyses_are_not_offered(capsys):
    """Crossover and single-arm analyses need a design (the switch visit, each child's expectation): one line."""
    for method in sorted(analysis.CROSSOVER | analysis.SINGLE_ARM):
        assert_one_line_error(*cli(capsys, "analyze", str(TRIAL), "--method", method), "--method")


def test_mcid_only_for_responder_analyses(capsys):
    """--mcid sets the responder threshold of fisher and chisquare; with another method it is one line."""
    low = json.loads(cli(capsys, "analyze", str(TRIAL), "--method", "fisher", "--mcid", "0.5", "--json")[1])
    high = json.loads(cli(capsys, "analyze", str(TRIAL), "--method", "fisher", "--mcid", "6", "--json")[1])
    assert low["estimate"] != high["estimate"]
    assert_one_line_error(*cli(capsys, "analyze", str(TRIAL), "--method", "ancova", "--mcid", "2"), "--mcid")
