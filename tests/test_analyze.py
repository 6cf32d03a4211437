"""``cbcp_sim.analyze``: what ``cbcp-sim analyze`` does, in one Python call, on a DataFrame or a CSV path.

Spec (issue 17, point 5b): "Python does everything the CLI does": ``cbcp_sim.analyze(data, method=..., visit=...,
covariates=...)`` takes a pandas DataFrame (or a path to a CSV file) in long format and returns a result with
``confidence_interval()``; ``cbcp-sim analyze`` is a thin wrapper around it with the same numbers and the same text
and JSON output. Errors from Python name the library's parameters (``method``, ``visit``, ``covariates``, ``data``),
never an option. A file and a DataFrame are checked by one code path.

Issue 18, point 12: "`analyze` on real pilot files: column-mapping options (id, arm, visit, value, baseline), arm
labels as text with the control named (`--control sham`), a visit-0 row taken as the baseline". From Python:
``columns={role: name}``, ``control=LABEL`` and ``trial=K``; errors name ``columns.<role>``, ``control``, ``trial``
and ``data.<the data's own column name>``.

References: the CLI itself (whose numbers tests/test_cli_analyze.py checks against statsmodels and scipy on
tests/fixtures/analyze/trial.csv), statsmodels OLS, and scipy.stats t and normal quantiles.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import cbcp_sim
from cbcp_sim.analysis import real_data
from cbcp_sim.analysis.long_data import read_long
from cbcp_sim.analysis.real_data import JSON_FIELDS, AnalysisResult, analyze
from cbcp_sim.errors import InputError, SettingsError

from .support import cli
from .test_cli_analyze import BAD_COVARIATES, BAD_FILES, GOOD, KEYS, TRIAL, VISITS, assert_matches_ols

#: (method, extra keyword arguments) run both ways; the CLI options are the same names with two dashes.
CASES = [("change", {}), ("ttest", {}), ("welch", {"visit": 6.0}), ("ancova", {"alpha": 0.1}),
         ("ancova", {"covariates": ("age",), "visit": 1.5}), ("mmrm", {}), ("mmrm", {"covariates": ("age",)}),
         ("wilcoxon", {}), ("fisher", {"mcid": 3.0}), ("chisquare", {}), ("ttest", {"endpoint": "final"})]


def argv(method: str, kwargs: dict) -> list[str]:
    """The ``cbcp-sim analyze`` options for ``analyze(..., method=method, **kwargs)``."""
    out = ["--method", method]
    for key, value in kwargs.items():
        out += [f"--{key}", ",".join(value) if isinstance(value, tuple) else str(value)]
    return out


def cli_json(capsys, data: Path, method: str, kwargs: dict) -> dict:
    code, out, err = cli(capsys, "analyze", str(data), *argv(method, kwargs), "--json")
    assert code == 0 and err == "", err
    return json.loads(out)


@pytest.fixture(scope="module")
def trial() -> pd.DataFrame:
    """The CLI tests' fixture, read with pandas."""
    return pd.read_csv(TRIAL)


def synthetic(seed: int = 5, n: int = 30) -> pd.DataFrame:
    """A long data set of ``n`` children with full-precision floats, missed visits (NaN and absent rows), text ids
    and extra columns: every digit must survive a CSV round trip."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        arm, age, baseline = i % 2, rng.uniform(2, 10), rng.normal(50, 10)
        for month in (3.0, 6.0, 12.0):
            if rng.random() < 0.1:
                continue
            value = baseline + (0.3 + 0.2 * arm) * month + rng.normal(0, 3) if rng.random() > 0.05 else np.nan
            rows.append({"site": rng.choice(["A", "B"]), "id": f"child {i}", "arm": arm, "visit": month,
                         "baseline": baseline, "value": value, "age": age, "note": "extra"})
    return pd.DataFrame(rows)


# --- the same numbers as the command line --------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "kwargs"), CASES)
def test_dataframe_gives_the_clis_numbers_on_the_same_data_as_csv(capsys, tmp_path, trial, method, kwargs):
    """analyze(DataFrame) equals `cbcp-sim analyze` on that DataFrame written as CSV, field for field and bit for bit
    (the same code on the same numbers), and analyze(path) equals it too."""
    path = tmp_path / "trial.csv"
    trial.to_csv(path, index=False)
    want = cli_json(capsys, path, method, kwargs)
    assert analyze(trial, method=method, **kwargs).to_json() == want
    assert analyze(path, method=method, **kwargs).to_json() == want
    assert analyze(str(path), method=method, **kwargs).to_json() == want


@pytest.mark.parametrize("visit", VISITS)
def test_dataframe_ancova_matches_statsmodels(trial, visit):
    """On the DataFrame, ancova with age equals OLS value ~ arm + baseline + age (estimate, SE, df, CI, p to 1e-10)
    over the children with a baseline and a value at the visit."""
    result = analyze(trial, method="ancova", visit=visit, covariates=["age"])
    assert_matches_ols(result.to_json(), "value ~ arm + baseline + age", visit, 0.05)


def test_text_and_json_are_the_clis(capsys):
    """str(result) is the CLI's table (title naming the file) and to_json() its JSON, keys in the documented order;
    from a DataFrame the title names no file."""
    code, out, _ = cli(capsys, "analyze", str(TRIAL), "--method", "welch", "--alpha", "0.1", "--visit", "6")
    assert code == 0
    result = analyze(TRIAL, method="welch", alpha=0.1, visit=6)
    assert str(result) + "\n" == out
    assert tuple(result.to_json()) == JSON_FIELDS and set(JSON_FIELDS) == KEYS
    assert json.loads(json.dumps(result.to_json())) == cli_json(capsys, TRIAL, "welch", {"alpha": 0.1, "visit": 6})
    framed = str(analyze(pd.read_csv(TRIAL), method="welch", alpha=0.1, visit=6)).splitlines()
    assert framed[0] == "arm 1 minus arm 0 (two-sided)" and str(TRIAL) not in "\n".join(framed)


def test_result_fields():
    """The result says what was done: method, visit in months, alpha, endpoint, covariates, mcid, the file; its
    numbers are plain Python floats and ints; it is frozen; df is inf (JSON null) for a normal interval."""
    result = analyze(TRIAL, method="ancova", covariates="age", visit=6)
    assert isinstance(result, AnalysisResult) and isinstance(result, cbcp_sim.AnalysisResult)
    assert (result.method, result.visit, result.alpha, result.endpoint, result.covariates, result.mcid) == \
        ("ancova", 6.0, 0.05, "change", ("age",), None)
    assert result.source == str(TRIAL) and result.level == 0.95
    assert type(result.n_subjects) is int
    assert all(type(getattr(result, k)) is float for k in ("visit", "estimate", "se", "df", "p", "alpha"))
    with pytest.raises(AttributeError):
        result.estimate = 0.0  # type: ignore[misc]
    fisher = analyze(TRIAL, method="fisher", mcid=2)
    assert fisher.df == math.inf and fisher.to_json()["df"] is None and fisher.mcid == 2.0


# --- confidence_interval() -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "alpha"), [("welch", 0.05), ("ancova", 0.1), ("mmrm", 0.05)])
def test_confidence_interval_is_the_t_interval(method, alpha):
    """At the default level (1 - alpha) it is the JSON's (ci_low, ci_high) and estimate -/+ t(1 - alpha/2, df) se;
    at 80% and 99% the same with those levels' t quantiles (scipy.stats.t), to 1e-12; a higher level is wider."""
    r = analyze(TRIAL, method=method, alpha=alpha)
    assert r.confidence_interval() == (r.to_json()["ci_low"], r.to_json()["ci_high"])
    for level in (None, 0.8, 0.99):
        q = stats.t.ppf(1.0 - (alpha if level is None else 1.0 - level) / 2.0, r.df)
        low, high = r.confidence_interval(level)
        assert low == pytest.approx(r.estimate - q * r.se, rel=1e-12, abs=1e-12)
        assert high == pytest.approx(r.estimate + q * r.se, rel=1e-12, abs=1e-12)
    assert r.confidence_interval(1.0 - alpha) == pytest.approx(r.confidence_interval(), rel=1e-14)
    (a, b), (c, d) = r.confidence_interval(0.8), r.confidence_interval(0.99)
    assert c < a < r.estimate < b < d


def test_confidence_interval_of_a_normal_analysis_uses_normal_quantiles():
    """fisher (df inf): the interval is estimate -/+ z se with scipy.stats.norm quantiles."""
    r = analyze(TRIAL, method="fisher")
    for level in (0.9, 0.95):
        z = stats.norm.ppf(0.5 + level / 2.0)
        assert r.confidence_interval(level) == pytest.approx((r.estimate - z * r.se, r.estimate + z * r.se),
                                                             rel=1e-12)


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5, -0.1, math.nan, "0.9", True])
def test_confidence_interval_refuses_a_level_outside_0_1(level):
    r = analyze(TRIAL, method="ttest")
    with pytest.raises(SettingsError) as info:
        r.confidence_interval(level)
    assert info.value.path == "level"


# --- errors name the library's parameters --------------------------------------------------------------------------

PARAMETER_ERRORS = {
    "unknown method": ({"method": "anova"}, "method", ["ancova", "change", "welch"]),
    "method not text": ({"method": None}, "method", ["expected one of"]),
    "design-bound method": ({"method": "crossover"}, "method", ["expected one of"]),
    "visit not in the data": ({"method": "ttest", "visit": 3}, "visit", ["1.5, 6, 12 months", "got 3"]),
    "visit not a number": ({"method": "ttest", "visit": "12"}, "visit", ["expected a number"]),
    "visit nan": ({"method": "ttest", "visit": math.nan}, "visit", ["got nan"]),
    "absent covariate": ({"method": "ancova", "covariates": ["weight"]}, "covariates", ["no column weight"]),
    "covariate a required column": ({"method": "ancova", "covariates": "baseline"}, "covariates", ["baseline column"]),
    "covariate named twice": ({"method": "ancova", "covariates": ("age", "age")}, "covariates", ["more than once"]),
    "covariate not text": ({"method": "ancova", "covariates": [1]}, "covariates", ["text"]),
    "covariates not names": ({"method": "ancova", "covariates": 3}, "covariates", ["column names"]),
    "covariates not taken": ({"method": "welch", "covariates": "age"}, "covariates", ["welch", "ancova, mmrm"]),
    "endpoint unknown": ({"method": "ttest", "endpoint": "last"}, "endpoint", ["change, final", "'last'"]),
    "change with final": ({"method": "change", "endpoint": "final"}, "endpoint", ["method ttest"]),
    "alpha outside (0, 1)": ({"method": "ttest", "alpha": 1.5}, "alpha", ["(0, 1)"]),
    "alpha not a number": ({"method": "ttest", "alpha": "0.05"}, "alpha", ["expected a number"]),
    "mcid not taken": ({"method": "ancova", "mcid": 2}, "mcid", ["fisher, chisquare", "ancova"]),
    "mcid not finite": ({"method": "fisher", "mcid": math.inf}, "mcid", ["finite"]),
    "visit 0 is the baseline": ({"method": "ttest", "visit": 0}, "visit", ["1.5, 6, 12 months", "got 0"]),
    "columns not a mapping": ({"method": "ttest", "columns": ["arm"]}, "columns", ["mapping"]),
    "columns with an unknown role": ({"method": "ttest", "columns": {"group": "arm"}}, "columns",
                                     ["'group'", "id, arm, visit, baseline, value, trial"]),
    "column name not text": ({"method": "ttest", "columns": {"arm": 3}}, "columns.arm", ["name of a column"]),
    "column name empty": ({"method": "ttest", "columns": {"value": " "}}, "columns.value", ["name of a column"]),
    "two roles one column": ({"method": "ttest", "columns": {"id": "site", "arm": "site"}}, "columns.arm",
                             ["'site' is already the id column"]),
    "mapped column absent": ({"method": "ttest", "columns": {"arm": "group"}}, "columns.arm",
                             ["no column 'group' in the DataFrame", "its columns are: id, site"]),
    "a required role left without its column": ({"method": "ttest", "columns": {"id": "arm"}}, "columns.id",
                                                ["map arm"]),
    "covariate is a mapped column": ({"method": "ancova", "columns": {"baseline": "age"}, "covariates": "age"},
                                     "covariates", ["age is the baseline column"]),
    "covariate is the id column": ({"method": "ancova", "covariates": "id"}, "covariates", ["required"]),
    "control not an arm": ({"method": "ttest", "control": "sham"}, "control", ["no arm 'sham'", "'1', '0'"]),
    "control not a label": ({"method": "ttest", "control": True}, "control", ["label"]),
    "control empty": ({"method": "ttest", "control": " "}, "control", ["label"]),
    "trial without a trial column": ({"method": "ttest", "trial": 1}, "trial", ["no column trial"]),
    "trial not a label": ({"method": "ttest", "trial": [1]}, "trial", ["label"]),
}


@pytest.mark.parametrize("case", list(PARAMETER_ERRORS))
def test_errors_from_python_name_the_parameter(trial, case):
    """Each bad argument raises a SettingsError (an InputError) whose path is the parameter's name, never an
    option's: no '--' anywhere in the message."""
    kwargs, path, fragments = PARAMETER_ERRORS[case]
    with pytest.raises(SettingsError) as info:
        analyze(trial, **kwargs)
    assert info.value.path == path
    assert "--" not in str(info.value)
    for fragment in fragments:
        assert fragment in info.value.message, info.value.message


def test_too_few_children_and_failed_fits_name_visit_and_method():
    """Fewer than two children per arm with a baseline and a value at the visit: visit; a fit with no variation
    left: method; neither mentions an option."""
    frame = pd.DataFrame({"id": list("abcd"), "arm": [0, 0, 1, 1], "visit": 6, "baseline": [50, 40, 45, 55],
                          "value": [52, 42, 49, 59]})
    with pytest.raises(SettingsError) as info:
        analyze(frame, method="ttest")
    assert info.value.path == "method" and "could not be fitted at 6 months" in info.value.message
    frame.loc[2, "value"] = np.nan
    with pytest.raises(SettingsError) as info:
        analyze(frame, method="welch", visit=6)
    assert info.value.path == "visit" and "2 control and 1 treated children of the DataFrame" in info.value.message
    assert "--" not in str(info.value)


def _data_error(data: object, **kwargs: object) -> InputError:
    with pytest.raises(InputError) as info:
        analyze(data, method="welch", **kwargs)
    return info.value


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_name_data_or_its_column(tmp_path, case):
    """Every bad file of the CLI tests, from Python: a SettingsError on data (the file as a whole) or on
    data.<column> (a bad value in it), the message naming the file and no option."""
    text, fragments = BAD_FILES[case]
    path = tmp_path / "trial.csv"
    path.write_text(text)
    exc = _data_error(path)
    assert isinstance(exc, SettingsError)
    assert exc.path == "data" or exc.path.startswith("data."), exc
    assert str(path) in exc.message and "--" not in str(exc)
    for fragment in fragments:
        assert fragment.format(file=path) in str(exc)


def _as_frame_message(message: str, path: Path) -> str:
    """A file's message as a DataFrame read from that file says it: line L is index L - 2 (header on line 1)."""
    message = re.sub(r"\blines (\d+) and (\d+)", lambda m: f"index {int(m[1]) - 2} and {int(m[2]) - 2}", message)
    message = re.sub(r"\bline (\d+)", lambda m: f"index {int(m[1]) - 2}", message)
    return message.replace(str(path), "the DataFrame")


@pytest.mark.parametrize("case", [c for c in BAD_FILES if BAD_FILES[c][1][0] != "{file}"])
def test_a_dataframe_is_checked_as_its_file_is(tmp_path, case):
    """One validation for both: each bad value of the CLI tests, in a DataFrame read from the file (as text, so
    nothing is converted on the way), raises the file's error with the DataFrame's index for the line."""
    text, _ = BAD_FILES[case]
    path = tmp_path / "trial.csv"
    path.write_text(text)
    from_file = _data_error(path)
    from_frame = _data_error(pd.read_csv(path, dtype=str, keep_default_na=False))
    assert from_frame.path == from_file.path
    assert from_frame.message == _as_frame_message(from_file.message, path)


@pytest.mark.parametrize("case", list(BAD_COVARIATES))
def test_bad_covariates_name_covariates_or_the_column(tmp_path, case):
    """Bad covariates from Python (with ancova): a bad list names covariates, a bad column data.<column>; the
    DataFrame read from the file gives the same error."""
    text, names, fragments = BAD_COVARIATES[case]
    path = tmp_path / "trial.csv"
    path.write_text(GOOD if text == "GOOD" else text)
    with pytest.raises(SettingsError) as info:
        analyze(path, method="ancova", covariates=names)
    from_file = info.value
    assert from_file.path in ("covariates", f"data.{names}"), from_file
    assert "--" not in str(from_file)
    for fragment in fragments:
        assert fragment.removeprefix("--") in str(from_file)
    with pytest.raises(SettingsError) as info:
        analyze(pd.read_csv(path, dtype=str, keep_default_na=False), method="ancova", covariates=names)
    assert info.value.path == from_file.path
    if from_file.path != "covariates":
        assert info.value.message == _as_frame_message(from_file.message, path)


@pytest.mark.parametrize("data", [[{"id": 1}], {"id": [1]}, 3, None])
def test_data_must_be_a_dataframe_or_a_path(data):
    exc = _data_error(data)
    assert exc.path == "data" and "DataFrame or the path of a CSV file" in exc.message


def test_empty_dataframes_name_data():
    for frame, fragment in ((pd.DataFrame(), "no columns"), (pd.DataFrame(columns=["id", "arm"]), "no rows"),
                            (pd.DataFrame([[1, 2]], columns=["id", "id"]), "more than once")):
        exc = _data_error(frame)
        assert exc.path == "data" and fragment in exc.message


# --- DataFrames as people have them --------------------------------------------------------------------------------


def test_extra_columns_ids_arm_types_and_index_do_not_matter(trial):
    """The same data with columns reordered, a non-default index, ids as numbers, arm as bool or float, pandas'
    nullable dtypes, or every cell as text (empty for missing) gives the same result, bit for bit."""
    want = analyze(trial, method="ancova", covariates="age").to_json()
    numbered = trial.assign(id=trial["id"].str[1:].astype(int))
    variants = {
        "reordered": trial[list(reversed(trial.columns))],
        "index": trial.set_index(pd.Index([f"row{i}" for i in range(len(trial))])),
        "numeric ids": numbered,
        "arm bool": numbered.assign(arm=trial["arm"].astype(bool)),
        "arm float": trial.assign(arm=trial["arm"].astype(float)),
        "nullable": trial.convert_dtypes(),
        "text": pd.read_csv(TRIAL, dtype=str, keep_default_na=False),
        "object": trial.astype(object),
    }
    for name, frame in variants.items():
        assert analyze(frame, method="ancova", covariates="age").to_json() == want, name


def test_missed_visit_as_nan_or_absent_row_is_the_same(trial):
    """A missed visit is an absent row or a NaN value: dropping the rows with NaN values changes nothing (up to the
    last bits: a child with no value left drops out of the sums)."""
    dropped = trial[trial["value"].notna()]
    for method in ("welch", "mmrm"):
        want = analyze(trial, method=method).to_json()
        got = analyze(dropped, method=method).to_json()
        assert got == {k: pytest.approx(v, rel=1e-12) if isinstance(v, float) else v for k, v in want.items()}


def test_read_long_keeps_the_dataframes_ids():
    """From a DataFrame, children keep their identifiers as given (numbers stay numbers), in order of first row."""
    frame = pd.DataFrame({"id": [7, 7, 3, 3, 5, 5, 9, 9], "arm": [0, 0, 1, 1, 0, 0, 1, 1], "visit": [6, 12] * 4,
                          "baseline": [50, 50, 40, 40, 45, 45, 55, 55], "value": [51, 52, 44, 46, 45, 47, 60, 61]})
    data = read_long(frame)
    assert data.ids.tolist() == [7, 3, 5, 9] and all(type(i) is int for i in data.ids)
    assert data.source == "" and data.origin == "the DataFrame"


def test_round_trip_dataframe_csv_analyze(tmp_path):
    """A DataFrame of full-precision floats written with to_csv and analysed from the file gives exactly the
    DataFrame's arrays and results (ids as text, every other number bit for bit)."""
    frame = synthetic()
    path = tmp_path / "synthetic.csv"
    frame.to_csv(path, index=False)
    a, b = read_long(frame, "age"), read_long(path, "age")
    assert a.ids.tolist() == b.ids.tolist()
    for key in ("months", "values", "observed", "treated", "covariates"):
        assert np.array_equal(getattr(a, key), getattr(b, key), equal_nan=True), key
    for method, kwargs in CASES:
        kwargs = {k: v for k, v in kwargs.items() if k != "visit"}
        got, want = analyze(path, method=method, **kwargs), analyze(frame, method=method, **kwargs)
        assert got.to_json() == want.to_json(), method
        assert got.source == str(path) and want.source == ""


# --- pilot files: the data's own column names, arms by label, baselines at visit 0, one trial of several -----------

#: The roles' names in a pilot file (the fixture renamed).
PILOT = {"id": "patient", "arm": "group", "visit": "month", "value": "gmfm66", "baseline": "gmfm66_0"}
LABELS = {0: "sham", 1: "cord blood"}


def pilot(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as a pilot file has it: its own column names and the arms as text."""
    out = frame.rename(columns=PILOT)
    return out.assign(group=out["group"].map(LABELS))


def at_visit_0(frame: pd.DataFrame, keep_baseline: bool = False) -> pd.DataFrame:
    """``frame`` with each child's baseline as a row at visit 0 (after the other rows; none for a child without
    one), and the baseline column dropped unless ``keep_baseline``."""
    firsts = frame.drop_duplicates("id")
    zero = firsts[firsts["baseline"].notna()].assign(visit=0.0, value=lambda f: f["baseline"])
    out = pd.concat([frame, zero], ignore_index=True)
    return out if keep_baseline else out.drop(columns="baseline")


@pytest.mark.parametrize(("method", "kwargs"), CASES)
def test_columns_and_control_give_the_numbers_of_the_standard_file(tmp_path, trial, method, kwargs):
    """A pilot file (patient, group as "sham"/"cord blood", month, gmfm66, gmfm66_0) analysed with columns= and
    control="sham" gives the standard file's result bit for bit, from a DataFrame and from its CSV file."""
    want = analyze(trial, method=method, **kwargs).to_json()
    frame = pilot(trial)
    path = tmp_path / "pilot.csv"
    frame.to_csv(path, index=False)
    for data in (frame, path):
        got = analyze(data, method=method, columns=PILOT, control="sham", **kwargs)
        assert got.to_json() == want
        assert got.arms == ("sham", "cord blood")
    assert analyze(frame, method=method, columns=PILOT, control=" sham ", **kwargs).to_json() == want


def test_text_arms_are_named_in_the_result(trial):
    """The table says which arm was subtracted from which; 0/1 arms keep "arm 1 minus arm 0"."""
    result = analyze(pilot(trial), method="welch", columns=PILOT, control="sham")
    assert str(result).splitlines()[0] == "cord blood minus sham (two-sided)"
    assert str(analyze(trial, method="welch")).splitlines()[0] == "arm 1 minus arm 0 (two-sided)"


def test_a_role_left_out_keeps_its_own_name(trial):
    """columns maps only the roles given; the others are the columns of their own names (here id and visit)."""
    frame = trial.rename(columns={"arm": "group", "value": "score"})
    want = analyze(trial, method="ancova").to_json()
    assert analyze(frame, method="ancova", columns={"arm": "group", "value": "score"}).to_json() == want


@pytest.mark.parametrize("control", [0, "0", 0.0, " 0 ", np.int64(0)])
def test_control_of_numbered_arms_is_the_default(trial, control):
    """0/1 arms keep working without control; naming 0 (as a number or text) changes nothing."""
    assert analyze(trial, method="ancova", control=control).to_json() == analyze(trial, method="ancova").to_json()


def test_control_names_either_arm(trial):
    """The other label is the treated arm: naming arm 1 (or "cord blood") the control turns the estimate round."""
    want = analyze(trial, method="ttest")
    for data, control in ((trial, 1), (pilot(trial), "cord blood")):
        got = analyze(data, method="ttest", control=control, columns=PILOT if control != 1 else None)
        assert got.estimate == pytest.approx(-want.estimate, rel=1e-12)
        assert (got.se, got.df, got.p) == pytest.approx((want.se, want.df, want.p), rel=1e-12)
    assert analyze(trial, method="ttest", control=1).arms == ("1", "0")


def _frame_error(frame: pd.DataFrame, **kwargs: object) -> SettingsError:
    with pytest.raises(SettingsError) as info:
        analyze(frame, method="welch", **kwargs)
    assert "--" not in str(info.value)
    return info.value


def test_arm_labels_errors_name_the_data_column_or_control(trial):
    """Text arms without control; a third label (all of them listed); one label only; a label that changes within a
    child: data.<the data's arm column>. A control that is not a label: control."""
    frame = pilot(trial)
    exc = _frame_error(frame, columns=PILOT)
    assert exc.path == "data.group" and "got 'cord blood' at index 0" in exc.message and "control" in exc.message
    three = frame.assign(group=frame["group"].mask(frame["patient"] == "P002", "UCT-MSC"))
    exc = _frame_error(three, columns=PILOT, control="sham")
    assert exc.path == "data.group"
    assert "3 arms in the DataFrame ('cord blood', 'UCT-MSC', 'sham')" in exc.message
    exc = _frame_error(frame.assign(group="sham"), columns=PILOT, control="sham")
    assert exc.path == "data.group" and "only arm 'sham'" in exc.message
    varying = frame.copy()
    varying.loc[1, "group"] = "sham"
    exc = _frame_error(varying, columns=PILOT, control="sham")
    assert exc.path == "data.group" and "'cord blood' at index 0 but 'sham' at index 1" in exc.message
    exc = _frame_error(frame, columns=PILOT, control="placebo")
    assert exc.path == "control" and "no arm 'placebo'" in exc.message and "'sham'" in exc.message


def test_bad_values_name_the_datas_own_column(tmp_path, trial):
    """With columns, a bad value is named by the data's name for the column (data.gmfm66, data.month)."""
    frame = pilot(trial).astype({"gmfm66": object, "month": object})
    frame.loc[3, "gmfm66"] = "n/a"
    exc = _frame_error(frame, columns=PILOT, control="sham")
    assert exc.path == "data.gmfm66" and "'n/a' at index 3" in exc.message
    frame = pilot(trial).astype({"month": object})
    frame.loc[2, "month"] = -1
    exc = _frame_error(frame, columns=PILOT, control="sham")
    assert exc.path == "data.month" and ">= 0" in exc.message


@pytest.mark.parametrize("keep_baseline", [False, True])
def test_rows_at_visit_0_give_the_baseline(trial, keep_baseline):
    """Each child's baseline as a row at visit 0 (without a baseline column, or beside one that agrees) gives the
    same arrays and results, bit for bit."""
    frame = at_visit_0(trial, keep_baseline)
    a, b = read_long(trial, "age"), read_long(frame, "age")
    for key in ("months", "values", "observed", "treated", "covariates"):
        assert np.array_equal(getattr(a, key), getattr(b, key), equal_nan=True), key
    for method, kwargs in CASES:
        assert analyze(frame, method=method, **kwargs).to_json() == analyze(trial, method=method, **kwargs).to_json()


def test_visit_0_fills_an_empty_baseline_and_an_empty_visit_0_is_no_baseline(trial):
    """A child whose baseline cell is empty takes its visit-0 value; a visit-0 row with no value gives none (the
    child is left out, as with an empty baseline)."""
    frame = at_visit_0(trial, keep_baseline=True)
    emptied = frame.assign(baseline=frame["baseline"].where(frame["arm"] == 1))  # control children: visit 0 only
    assert analyze(emptied, method="ancova").to_json() == analyze(trial, method="ancova").to_json()
    child = frame["id"].iloc[0]
    no_value = frame.assign(value=frame["value"].mask((frame["id"] == child) & (frame["visit"] == 0)))
    no_value = no_value.drop(columns="baseline")
    without = trial.assign(baseline=trial["baseline"].mask(trial["id"] == child))
    assert analyze(no_value, method="mmrm").to_json() == analyze(without, method="mmrm").to_json()


def test_visit_0_errors(trial):
    """A visit-0 value that disagrees with the child's baseline: data.<baseline column>, both rows named; no
    baseline column and no visit-0 row: data; only visit-0 rows: data.<visit column>; two visit-0 rows of a
    child: data.<id column>."""
    frame = at_visit_0(trial, keep_baseline=True)
    k = int(frame.index[frame["visit"] == 0][0])
    frame.loc[k, "value"] += 1.0
    exc = _frame_error(pilot(frame), columns=PILOT, control="sham")
    assert exc.path == "data.gmfm66_0" and "must agree with the child's value at visit 0" in exc.message
    assert f"at index 0 but gmfm66 {frame.loc[k, 'value']:.15g} at visit 0 at index {k}" in exc.message
    exc = _frame_error(trial.drop(columns="baseline"))
    assert exc.path == "data" and "no baseline in the DataFrame" in exc.message and "rows at visit 0" in exc.message
    exc = _frame_error(at_visit_0(trial).query("visit == 0"))
    assert exc.path == "data.visit" and "no visit after baseline" in exc.message
    twice = at_visit_0(trial)
    twice = pd.concat([twice, twice[twice["visit"] == 0].iloc[:1]], ignore_index=True)
    exc = _frame_error(twice)
    assert exc.path == "data.id" and "two rows at visit 0" in exc.message


def _two_trials(trial: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    second = trial.assign(value=trial["value"] + np.where(trial["arm"] == 1, 2.0, 0.0))
    both = pd.concat([trial.assign(trial=1), second.assign(trial=2)], ignore_index=True)
    return both, second


@pytest.mark.parametrize("label", [2, "2", 2.0, " 2 "])
def test_trial_chooses_one_trial_of_several(trial, label):
    """trial= keeps the rows of that trial (by label, numbers as numbers) and gives that trial's result; the result
    names it."""
    both, second = _two_trials(trial)
    got = analyze(both, method="ancova", trial=label)
    assert got.to_json() == analyze(second, method="ancova").to_json()
    assert got.trial == "2" and "(trial 2)" not in str(analyze(second, method="ancova"))
    renamed = both.rename(columns={"trial": "replicate"})
    assert analyze(renamed, method="ancova", trial=label, columns={"trial": "replicate"}).to_json() == got.to_json()


def test_trial_errors(trial):
    """Several trials and no trial chosen; a trial not in the data; a trial column of one trial is fine."""
    both, _ = _two_trials(trial)
    exc = _frame_error(both)
    assert exc.path == "trial" and "holds 2 trials (column trial: 1, 2)" in exc.message
    exc = _frame_error(both, trial=3)
    assert exc.path == "trial" and "no rows of trial 3" in exc.message and "its trials: 1, 2" in exc.message
    exc = _frame_error(both, columns={"trial": "run"})
    assert exc.path == "columns.trial" and "no column 'run'" in exc.message
    many = pd.concat([trial.assign(trial=k) for k in range(20)], ignore_index=True)
    exc = _frame_error(many)
    assert "holds 20 trials (column trial: 0, 1, 2, 3, 4, 5, ..., 19)" in exc.message
    one = trial.assign(trial=7)
    assert analyze(one, method="ancova").to_json() == analyze(trial, method="ancova").to_json()


# --- the package's face --------------------------------------------------------------------------------------------


def test_analyze_is_exported_lazily():
    """cbcp_sim.analyze is the library function and in __all__; importing cbcp_sim loads neither it nor pandas."""
    assert cbcp_sim.analyze is real_data.analyze and cbcp_sim.AnalysisResult is real_data.AnalysisResult
    assert {"analyze", "AnalysisResult"} <= set(cbcp_sim.__all__)
    code = ("import sys, cbcp_sim; loaded = [m for m in ('cbcp_sim.analysis.real_data', 'pandas') "
            "if m in sys.modules]; print(loaded)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_cli_is_the_library_call(capsys, monkeypatch):
    """`cbcp-sim analyze` passes each option to the parameter of the same name and prints the result: a stand-in
    analyze receives exactly the options given (covariates as the text given)."""
    seen = {}

    def fake(data, **kwargs):
        seen.update(kwargs, data=data)
        return analyze(data, **kwargs)

    monkeypatch.setattr(real_data, "analyze", fake)
    code, out, _ = cli(capsys, "analyze", str(TRIAL), "--method", "ancova", "--visit", "6", "--covariates", "age",
                       "--alpha", "0.1", "--json")
    assert code == 0
    assert seen == {"data": str(TRIAL), "method": "ancova", "visit": 6.0, "covariates": "age", "endpoint": None,
                    "alpha": 0.1, "mcid": None, "columns": None, "control": None, "trial": None, "mmrm_df": None,
                    "mmrm_baseline": None, "tipping_point": False}
    assert json.loads(out) == analyze(TRIAL, method="ancova", visit=6, covariates=("age",), alpha=0.1).to_json()
    seen.clear()
    code, out, _ = cli(capsys, "analyze", str(TRIAL), "--method", "ttest", "--id-column", "id", "--arm-column", "arm",
                       "--visit-column", "visit", "--value-column", "value", "--baseline-column", "baseline",
                       "--trial-column", "trial", "--control", "0", "--trial", "1")
    assert code == 2  # the fixture has no trial column
    assert seen["columns"] == {"id": "id", "arm": "arm", "visit": "visit", "value": "value", "baseline": "baseline",
                               "trial": "trial"}
    assert (seen["control"], seen["trial"]) == ("0", "1")
