"""Sweeps: ``cbcp-sim sweep SCENARIO --grid PATH=... [--points FILE] --out DIR``.

Spec lines pinned here (issue): "the same sweep gives byte-identical results.csv for any --jobs and for the Dask
backend"; "one row per point x analysis with the point's values, power, MCSE, 95% interval, type I error, bias";
"every finished chunk is saved atomically; a sweep killed at any moment resumes where it stopped, recomputing
no finished chunk, and gives the same table"; "a resume with a changed scenario is refused"; "malformed grids
give a one-line error and exit 2"; "common random numbers: every point is run with the same seed".
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cbcp_sim
from cbcp_sim.errors import ScenarioError
from cbcp_sim.planning.points import point_scenarios
from cbcp_sim.planning.sweep import Axis, grid_points, parse_axis
from cbcp_sim.run.engine import point_tasks
from cbcp_sim.run.settings import RunSettings
from cbcp_sim.scenario import default_scenario_path, load_scenario

from .support import assert_one_line_error, cli, kill_after_chunks, stable

SCENARIO = str(default_scenario_path())
NORMAL = ("--set", "outcome.model=normal")
GRID = ("--grid", "design.n_per_arm=20:40:10", "--grid", "outcome.effect=1,2")
REQUIRED_COLUMNS = ("power", "mcse", "ci_low", "ci_high", "type1_error", "bias")
CHUNK_NAME = re.compile(r"[0-9a-f]{24}\.npz")


def run_sweep(capsys, out: Path, *argv: str) -> tuple[int, str, str]:
    """``cbcp-sim sweep SCENARIO argv --out out`` in-process."""
    return cli(capsys, "sweep", SCENARIO, *argv, "--out", str(out))


def snapshot(directory: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``directory``: its content hash and modification time (ns)."""
    return {str(p.relative_to(directory)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*")) if p.is_file()}


def log_events(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / "log.jsonl").read_text().splitlines()]


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path)


# --- the same table for any jobs and backend ----------------------------------------------------------------


def test_results_csv_identical_for_jobs_and_dask_backend(capsys, tmp_path):
    """--jobs 1, --jobs 2 and --backend dask --jobs 2 (a LocalCluster of 2 processes) write byte-identical tables."""
    argv = (*NORMAL, *GRID, "--reps", "1500", "--seed", "3")
    outputs = {}
    for name, extra in {"one": ("--jobs", "1"), "two": ("--jobs", "2"),
                        "dask": ("--jobs", "2", "--backend", "dask")}.items():
        code, out, err = run_sweep(capsys, tmp_path / name, *argv, *extra)
        assert code == 0, err
        assert "6 points x 1,500 trials; seed 3" in out
        outputs[name] = (tmp_path / name / "results.csv").read_bytes()
        chunks = sorted(p.name for p in (tmp_path / name / "chunks").iterdir())
        assert len(chunks) == 6 * 2 and all(CHUNK_NAME.fullmatch(c) for c in chunks)
    assert outputs["one"] == outputs["two"] == outputs["dask"]
    starts = [e for e in log_events(tmp_path / "dask") if e["event"] == "start"]
    assert starts[0]["backend"] == "dask" and starts[0]["jobs"] == 2

    table = read_table(tmp_path / "one" / "results.csv")
    assert len(table) == 6 * 2  # points x analyses (ancova, ttest)
    for column in ("point", "design.n_per_arm", "outcome.effect", "analysis", *REQUIRED_COLUMNS):
        assert column in table.columns, column
    expected = [(n, e) for n in (20, 30, 40) for e in (1, 2)]  # the last axis varies fastest
    for i, (n, effect) in enumerate(expected):
        rows = table[table["point"] == i]
        assert list(rows["analysis"]) == ["ancova", "ttest"]
        assert set(rows["design.n_per_arm"]) == {n} and set(rows["outcome.effect"]) == {effect}
        assert list(rows["true_effect"]) == [effect, effect]
    assert (table["n_reps"] == 1500).all()
    assert ((table["ci_low"] <= table["power"]) & (table["power"] <= table["ci_high"])).all()
    host = socket.gethostname()
    cells = {str(v) for v in table.to_numpy().ravel()} | set(table.columns)
    assert host not in cells
    if len(host) >= 4:
        assert host not in outputs["one"].decode()
    banned = ("host", "worker", "seconds", "time", "pid", "jobs", "backend")
    assert not [c for c in table.columns if any(b in c.lower() for b in banned)]


def test_dask_and_jobs_give_the_same_rows_per_chunk_seed():
    """simulate(reps=3000) gives the same rows with jobs=1, jobs=2 and the Dask backend on a scheduler address."""
    from distributed import LocalCluster

    scenario = load_scenario(SCENARIO, {"design.n_per_arm": 24})
    one = cbcp_sim.simulate(scenario, reps=3000, seed=11, jobs=1)
    two = cbcp_sim.simulate(scenario, reps=3000, seed=11, jobs=2)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        dask = cbcp_sim.simulate(scenario, reps=3000, seed=11, jobs=2, backend="dask",
                                 address=cluster.scheduler_address)
    assert one.n_reps == two.n_reps == dask.n_reps == 3000
    assert one.rows == two.rows == dask.rows
    for key, arrays in one.replicates.items():
        for name, a in arrays.items():
            assert np.array_equal(a, dask.replicates[key][name], equal_nan=a.dtype.kind == "f"), (key, name)
    other = cbcp_sim.simulate(scenario, reps=3000, seed=12, jobs=1)
    assert other.rows != one.rows


# --- killed and resumed -------------------------------------------------------------------------------------

KILL_ARGV = ("--grid", "design.n_per_arm=20:75:5", "--reps", "2500", "--seed", "5")
KILL_POINTS = 12
KILL_CHUNKS = KILL_POINTS * 3


def chunk_keys() -> list[tuple[int, int, str]]:
    """(point, chunk, file stem) of every chunk of the KILL_ARGV sweep."""
    base = load_scenario(SCENARIO)
    scenarios = point_scenarios(base, grid_points([parse_axis("design.n_per_arm=20:75:5")]), "grid")
    settings = RunSettings(reps=2500, seed=5)
    return [(p, t.chunk, t.key()) for p, s in enumerate(scenarios) for t in point_tasks(s, settings)]


def test_sigkilled_sweep_resumes_without_recomputing_finished_chunks(capsys, tmp_path):
    """A sweep SIGKILLed mid-run resumes: finished chunks kept as they are, only the rest run, the same table."""
    keys = chunk_keys()
    assert len(keys) == KILL_CHUNKS and len({k for _, _, k in keys}) == KILL_CHUNKS
    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "cbcp_sim.cli", "sweep", SCENARIO, *KILL_ARGV, "--jobs", "2",
               "--out", str(killed)]
    kill_after_chunks(command, killed / "chunks", 4)

    names = {p.name for p in (killed / "chunks").iterdir()}
    saved = {n for n in names if CHUNK_NAME.fullmatch(n)}
    assert not names - saved - {n for n in names if n.startswith(".") and n.endswith(".tmp")}
    assert 4 <= len(saved) < KILL_CHUNKS, "the sweep was not killed mid-run"
    assert not (killed / "results.csv").exists()
    before = {n: v for n, v in snapshot(killed / "chunks").items() if n in saved}
    first_log = log_events(killed)
    logged = {(e["point"], e["chunk"]) for e in first_log if e["event"] == "chunk"}
    stems = {(p, c): k for p, c, k in keys}
    assert {f"{stems[pc]}.npz" for pc in logged} <= saved  # a chunk is logged only once saved

    missing = sorted(set(stems.values()) - {n[:-4] for n in saved})
    planted = killed / "chunks" / f".{missing[0]}.npz.424242.tmp"
    planted.write_bytes(b"a half-written chunk")  # what a kill during a write leaves: never read as a chunk
    code, resumed, err = run_sweep(capsys, killed, *KILL_ARGV, "--jobs", "2")
    assert code == 0, err
    assert "12 points x 2,500 trials; seed 5" in resumed

    after = snapshot(killed / "chunks")
    assert {n: after[n] for n in saved} == before  # same bytes, never rewritten
    final = {n for n in after if CHUNK_NAME.fullmatch(n)}
    assert final == {f"{k}.npz" for _, _, k in keys}
    assert not planted.exists()  # a stale temporary file is removed on resume, never read
    events = log_events(killed)
    starts = [i for i, e in enumerate(events) if e["event"] == "start"]
    assert len(starts) == 2 and events[starts[1]]["resumed"] is True
    rerun = [(e["point"], e["chunk"]) for e in events[starts[1]:] if e["event"] == "chunk"]
    assert len(rerun) == len(set(rerun)) == KILL_CHUNKS - len(saved)
    assert {f"{stems[pc]}.npz" for pc in rerun} == final - saved
    assert events[-1]["event"] == "finish"

    whole = tmp_path / "whole"
    code, out, err = run_sweep(capsys, whole, *KILL_ARGV, "--jobs", "1")  # uninterrupted
    assert code == 0, err
    assert (killed / "results.csv").read_bytes() == (whole / "results.csv").read_bytes()
    assert len(read_table(whole / "results.csv")) == KILL_POINTS * 2
    assert out.replace(str(whole), "DIR") == resumed.replace(str(killed), "DIR")

    code, _, err = run_sweep(capsys, killed, *KILL_ARGV, "--jobs", "1")  # a finished sweep run again computes nothing
    assert code == 0, err
    events = log_events(killed)
    third = max(i for i, e in enumerate(events) if e["event"] == "start")
    assert [e["event"] for e in events[third:]] == ["start", "finish"]
    assert (killed / "results.csv").read_bytes() == (whole / "results.csv").read_bytes()


# --- refused directories ------------------------------------------------------------------------------------

BASE = (*NORMAL, "--grid", "design.n_per_arm=20,30", "--reps", "200", "--seed", "2", "--jobs", "1")


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """The directory of a finished small sweep (BASE)."""
    out = tmp_path_factory.mktemp("finished") / "sweep"
    assert cbcp_sim.cli.main(["sweep", SCENARIO, *BASE, "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("changed", [
    ("--set", "outcome.effect=2"),
    ("--reps", "300"),
    ("--seed", "3"),
    ("--grid", "outcome.effect=1,2"),
], ids=["set", "reps", "seed", "grid"])
def test_resume_with_changed_inputs_is_refused(capsys, finished, changed):
    """A sweep directory is refused (exit 2, one `error: --out:` line) by a sweep with other inputs; it is unchanged."""
    before = snapshot(finished)
    argv = [*BASE]
    if changed[0] in ("--reps", "--seed"):
        argv[argv.index(changed[0]) + 1] = changed[1]
    else:
        argv += changed
    code, out, err = run_sweep(capsys, finished, *argv)
    assert_one_line_error(code, out, err, "changed")
    assert err.startswith("error: --out:")
    assert snapshot(finished) == before


def test_resume_with_an_edited_scenario_file_is_refused(capsys, tmp_path):
    """Editing the scenario file between runs changes the sweep's inputs: the directory is refused, unchanged."""
    scenario = tmp_path / "trial.toml"
    text = Path(SCENARIO).read_text()
    scenario.write_text(text)
    argv = ("--grid", "design.n_per_arm=20,30", "--reps", "100", "--jobs", "1", "--out", str(tmp_path / "out"))
    code, _, err = cli(capsys, "sweep", str(scenario), *NORMAL, *argv)
    assert code == 0, err
    before = snapshot(tmp_path / "out")
    assert "alpha = 0.05" in text
    scenario.write_text(text.replace("alpha = 0.05", "alpha = 0.025"))
    code, out, err = cli(capsys, "sweep", str(scenario), *NORMAL, *argv)
    assert_one_line_error(code, out, err, "changed")
    assert err.startswith("error: --out:")
    assert snapshot(tmp_path / "out") == before


def test_same_sweep_with_other_jobs_resumes(capsys, finished):
    """The same sweep with other --jobs (not an input of the result) resumes the directory and runs no chunk."""
    table = (finished / "results.csv").read_bytes()
    argv = [*BASE]
    argv[argv.index("--jobs") + 1] = "2"
    code, _, err = run_sweep(capsys, finished, *argv)
    assert code == 0, err
    events = log_events(finished)
    assert [e["event"] for e in events[-2:]] == ["start", "finish"] and events[-2]["resumed"] is True
    assert (finished / "results.csv").read_bytes() == table


def test_non_empty_directory_without_manifest_is_refused(capsys, tmp_path):
    """--out naming a non-empty directory with no manifest.json (or a file) is refused and left as it was."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine\n")
    before = snapshot(other)
    code, out, err = run_sweep(capsys, other, *BASE)
    assert_one_line_error(code, out, err, "manifest.json")
    assert err.startswith("error: --out:")
    assert snapshot(other) == before and sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    code, out, err = run_sweep(capsys, other / "notes.txt", *BASE)
    assert_one_line_error(code, out, err, "not a directory")
    assert err.startswith("error: --out:")
    assert snapshot(other) == before


# --- malformed grids and points -----------------------------------------------------------------------------


@pytest.mark.parametrize(("grid", "fragment"), [
    (["design.n_per_arm"], "expected path=start:stop:step"),
    (["design.n_per_arm="], "expected path=start:stop:step"),
    (["design.n_per_arm=20,,30"], "an empty value"),
    (["design.n_per_arm=20:10:5"], "stop >= start"),
    (["design.n_per_arm=20:40:0"], "step > 0"),
    (["design.n_per_arm=20:40:-5"], "step > 0"),
    (["design.n_per_arm=a:b"], "finite numbers"),
    (["design.n_per_arm=20:40:5:1"], "start:stop"),
    (["outcome.effect=0:inf:1"], "finite numbers"),
    (["n_per_arm=20,30"], "not a dotted path"),
    (["design.foo=1,2"], "design.foo"),
    (["design.n_per_arm=1,20"], "design.n_per_arm"),
    (["design.n_per_arm=20", "design.n_per_arm=30"], "more than once"),
    (["design.n_per_arm=0:10000000:1"], "at most"),
], ids=["no-equals", "no-values", "empty-value", "reversed", "step-0", "step-negative", "non-numeric",
        "four-pieces", "infinite", "not-dotted", "unknown-key", "out-of-range", "twice", "too-many"])
def test_malformed_grid_is_one_line_error(capsys, tmp_path, grid, fragment):
    """A malformed --grid exits 2 with one `error: --grid: ...` line and creates no directory."""
    argv = [a for g in grid for a in ("--grid", g)]
    code, out, err = run_sweep(capsys, tmp_path / "out", *argv, "--reps", "100")
    assert_one_line_error(code, out, err, fragment)
    assert err.startswith("error: --grid:")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("content", "fragment"), [
    (None, "cannot read"),
    ("design.n_per_arm,outcome.effect\n20,1\n30\n", "line 3: 1 values for 2 columns"),
    ("design.n_per_arm,outcome.effect\n20,1,5\n", "line 2: 3 values for 2 columns"),
    ("design.n_per_arm\n", "at least one row"),
    ("design.n_per_arm,design.n_per_arm\n20,30\n", "twice"),
    ("design.n_per_arm,\n20,30\n", "header"),
], ids=["missing-file", "short-row", "long-row", "no-rows", "repeated-column", "empty-header"])
def test_malformed_points_file_is_one_line_error(capsys, tmp_path, content, fragment):
    """A malformed --points CSV exits 2 with one `error: --points: ...` line."""
    points = tmp_path / "points.csv"
    if content is not None:
        points.write_text(content)
    code, out, err = run_sweep(capsys, tmp_path / "out", *NORMAL, "--points", str(points), "--reps", "100")
    assert_one_line_error(code, out, err, fragment)
    assert err.startswith("error: --points:")
    assert not (tmp_path / "out").exists()


def test_points_file_and_grid_combine(capsys, tmp_path):
    """--points rows times --grid axes: one row per point x analysis, the file's columns then the axes'."""
    points = tmp_path / "points.csv"
    points.write_text('design.n_per_arm,outcome.sd\n20,5.5\n"[30, 40]",4\n')
    code, _, err = run_sweep(capsys, tmp_path / "out", *NORMAL, "--points", str(points),
                               "--grid", "outcome.effect=1,3", "--reps", "200", "--jobs", "1")
    assert code == 0, err
    table = read_table(tmp_path / "out" / "results.csv")
    assert list(table.columns[:4]) == ["point", "design.n_per_arm", "outcome.sd", "outcome.effect"]
    primary = table[table["role"] == "primary"]
    assert list(primary["design.n_per_arm"]) == ["20", "20", "[30, 40]", "[30, 40]"]
    assert list(primary["outcome.sd"]) == [5.5, 5.5, 4, 4]
    assert list(primary["outcome.effect"]) == [1, 3, 1, 3]


# --- parse_axis and grid_points -----------------------------------------------------------------------------


def test_parse_axis_ranges_include_the_stop():
    """Ranges include the stop; integer ranges give ints, float ranges clean floats; start:stop steps by 1."""
    assert parse_axis("design.n_per_arm=20:40:10") == Axis("design.n_per_arm", (20, 30, 40))
    assert parse_axis("design.n_per_arm=20:45:10").values == (20, 30, 40)
    assert parse_axis("design.n_per_arm=3:5").values == (3, 4, 5)
    assert parse_axis("design.n_per_arm=7:7:3").values == (7,)
    assert all(type(v) is int for v in parse_axis("design.n_per_arm=20:40:10").values)
    assert parse_axis("outcome.effect=0.1:0.3:0.1").values == (0.1, 0.2, 0.3)
    assert parse_axis("outcome.effect=0:1:0.25").values == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert parse_axis("outcome.effect=-1:1:0.5").values == (-1.0, -0.5, 0.0, 0.5, 1.0)
    assert parse_axis("dropout.fraction=0:0.7:0.1").values == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    assert all(type(v) is float for v in parse_axis("outcome.effect=0:1:0.25").values)
    assert parse_axis(" outcome.effect = 1 : 2 ").values == (1, 2)


def test_parse_axis_lists_split_at_top_level_commas():
    """Lists split at commas outside brackets and quotes; each value is a TOML value."""
    assert parse_axis("design.n_per_arm=[20, 40],[30, 60]").values == ([20, 40], [30, 60])
    assert parse_axis("design.n_per_arm=20, 30,40").values == (20, 30, 40)
    assert parse_axis('treatment.cells="UCB-MNC","UCB-durable"').values == ("UCB-MNC", "UCB-durable")
    assert parse_axis("treatment.cells='a, b',\"c:d\"").values == ("a, b", "c:d")
    assert parse_axis('design.arms=["sham", "cord blood"]').values == (["sham", "cord blood"],)
    assert parse_axis("outcome.effect=2.5").values == (2.5,)
    assert parse_axis("arms.cord blood.dose=1,2").path == "arms.cord blood.dose"


@pytest.mark.parametrize("text", ["design.n_per_arm", "=1,2", "design.n_per_arm=", "design.n_per_arm=1,",
                                  "design.n_per_arm=20:10", "design.n_per_arm=1:2:0", "design.n_per_arm=x:2",
                                  "design..n=1", "1design.n=1", "design.n_per_arm=1:2:3:4",
                                  "outcome.effect=nan:1:1", "outcome.effect=true:2"])
def test_parse_axis_rejects(text):
    """parse_axis raises a ScenarioError naming its parameter, grid, for each malformed axis."""
    with pytest.raises(ScenarioError) as info:
        parse_axis(text)
    assert info.value.path == "grid"


@stable(200)
@given(start=st.integers(-30, 30), span=st.integers(0, 60), step=st.integers(1, 9))
def test_integer_ranges_property(start, span, step):
    """For integers start, stop >= start and step > 0 the values are start, start+step, ... <= stop, all ints."""
    stop = start + span
    values = parse_axis(f"design.n_per_arm={start}:{stop}:{step}").values
    assert values == tuple(range(start, stop + 1, step))
    assert all(type(v) is int for v in values)
    assert values[0] == start and stop - step < values[-1] <= stop


@stable(200)
@given(start=st.integers(-30, 30), span=st.integers(0, 60), step=st.integers(1, 9))
def test_decimal_ranges_property(start, span, step):
    """Ranges in tenths give exactly the decimal values k/10 (no 0.30000000000000004), stop included."""
    stop = start + span
    values = parse_axis(f"outcome.effect={start / 10}:{stop / 10}:{step / 10}").values
    assert values == tuple(k / 10 for k in range(start, stop + 1, step))
    assert all(type(v) is float for v in values)


def test_grid_points_order_and_count():
    """grid_points: the product of the axes, the last varying fastest, for every listed point in order."""
    a, b = Axis("design.n_per_arm", (20, 40)), Axis("outcome.effect", (1, 2, 3))
    points = grid_points([a, b])
    assert len(points) == 6
    assert points == [{"design.n_per_arm": n, "outcome.effect": e} for n in (20, 40) for e in (1, 2, 3)]
    assert grid_points([]) == [{}]
    listed = [{"outcome.sd": 4}, {"outcome.sd": 5}]
    combined = grid_points([b], listed)
    assert combined == [{"outcome.sd": s, "outcome.effect": e} for s in (4, 5) for e in (1, 2, 3)]
    assert grid_points([], listed) == listed
    with pytest.raises(ScenarioError, match=r"outcome\.sd is given more than once"):
        grid_points([Axis("outcome.sd", (1,))], listed)


# --- common random numbers ----------------------------------------------------------------------------------


def test_common_random_numbers_over_effect(capsys, tmp_path):
    """CRN over outcome.effect: same type I error and bias at each effect, power(0) = type I error, power rises."""
    code, _, err = run_sweep(capsys, tmp_path / "crn", *NORMAL, "--set", "design.sides=1",
                               "--grid", "design.n_per_arm=20,40", "--grid", "outcome.effect=0,0.5,1,2",
                               "--reps", "2000", "--seed", "9", "--jobs", "1")
    assert code == 0, err
    table = read_table(tmp_path / "crn" / "results.csv")
    assert len(table) == 2 * 4 * 2
    for (n, analysis), rows in table.groupby(["design.n_per_arm", "analysis"]):
        rows = rows.sort_values("outcome.effect")
        assert list(rows["outcome.effect"]) == [0, 0.5, 1, 2]
        for column in ("type1_error", "type1_mcse", "type1_ci_low", "type1_ci_high", "n_failed_null"):
            assert rows[column].nunique() == 1, (n, analysis, column)
        zero = rows.iloc[0]
        assert zero["power"] == zero["type1_error"]
        assert (np.diff(rows["power"]) >= 0).all(), (n, analysis, list(rows["power"]))
        assert rows["power"].iloc[-1] > rows["power"].iloc[0]
        np.testing.assert_allclose(rows["bias"], rows["bias"].iloc[0], rtol=0, atol=1e-9)
        np.testing.assert_allclose(rows["empirical_se"], rows["empirical_se"].iloc[0], rtol=1e-9)
    differ = table[table["outcome.effect"] == 0].groupby("analysis")["type1_error"].nunique()
    assert (differ == 2).all()  # other n: other children, another type I error


def test_common_random_numbers_per_replicate():
    """Per trial the estimate shifts by the effect alone, so rejections above zero are nested as the effect grows."""
    runs = {}
    for sides in (1, 2):
        for effect in (0.5, 1.5, 3.0):
            scenario = load_scenario(SCENARIO, {"outcome.model": "normal", "design.sides": sides,
                                                "outcome.effect": effect, "design.n_per_arm": 20})
            runs[sides, effect] = cbcp_sim.simulate(scenario, reps=1000, seed=4).replicates["ancova"]
    for sides in (1, 2):
        low, mid, high = (runs[sides, e] for e in (0.5, 1.5, 3.0))
        assert np.array_equal(low["null_estimate"], high["null_estimate"])
        assert np.array_equal(low["null_reject"], high["null_reject"])
        np.testing.assert_allclose(high["estimate"] - low["estimate"], 2.5, rtol=0, atol=1e-9)
        np.testing.assert_allclose(high["se"], low["se"], rtol=1e-9)
        up = [r["reject"] & (r["estimate"] > 0) for r in (low, mid, high)]
        assert not (up[0] & ~up[1]).any() and not (up[1] & ~up[2]).any()
        assert up[2].sum() > up[0].sum()
    assert not (runs[1, 0.5]["reject"] & ~runs[1, 3.0]["reject"]).any()


# --- parquet -------------------------------------------------------------------------------------------------


def test_parquet_equals_csv(capsys, tmp_path):
    """--parquet writes results.parquet whose DataFrame equals the CSV's."""
    code, _, err = run_sweep(capsys, tmp_path / "pq", *NORMAL, "--grid", "design.n_per_arm=[20, 30],[30, 30]",
                               "--grid", "outcome.effect=0.5:1.5:0.5", "--reps", "300", "--jobs", "1", "--parquet")
    assert code == 0, err
    csv_table = read_table(tmp_path / "pq" / "results.csv")
    parquet = pd.read_parquet(tmp_path / "pq" / "results.parquet")
    assert len(parquet) == 2 * 3 * 2
    pd.testing.assert_frame_equal(parquet, csv_table, check_dtype=False, check_exact=True)
    assert list(parquet["design.n_per_arm"].unique()) == ["[20, 30]", "[30, 30]"]
    for column in REQUIRED_COLUMNS:
        assert parquet[column].dtype == np.float64, column


def test_parquet_with_a_column_of_numbers_and_lists(capsys, tmp_path):
    """--parquet works when an axis mixes a number and a list (equal and unequal allocation): both as JSON text."""
    code, _, err = run_sweep(capsys, tmp_path / "mixed", *NORMAL, "--grid", "design.n_per_arm=20,[20, 30]",
                             "--reps", "100", "--jobs", "1", "--parquet")
    assert code == 0, err
    csv_table = read_table(tmp_path / "mixed" / "results.csv")
    assert list(csv_table["design.n_per_arm"].unique()) == ["20", "[20, 30]"]
    parquet = pd.read_parquet(tmp_path / "mixed" / "results.parquet")
    pd.testing.assert_frame_equal(parquet, csv_table, check_dtype=False, check_exact=True)


def test_group_sequential_sweep_resumes_to_the_same_table(capsys, tmp_path):
    """A sweep of a design with interim looks has sequential_* columns, the same when its chunks are read back."""
    out = tmp_path / "gs"
    argv = ("--grid", "design.n_per_arm=30,40", "--reps", "120", "--seed", "4", "--jobs", "1")
    code, _, err = cli(capsys, "sweep", str(default_scenario_path().parent / "group_sequential.toml"), *argv,
                       "--out", str(out))
    assert code == 0, err
    table = (out / "results.csv").read_bytes()
    frame = read_table(out / "results.csv")
    for column in ("sequential_power", "sequential_type1_error", "sequential_expected_children",
                   "sequential_expected_information_n"):
        assert frame[column].notna().all(), column
    chunks = sorted((out / "chunks").glob("*.npz"))
    assert len(chunks) == 2
    chunks[0].unlink()
    (out / "results.csv").unlink()
    code, _, err = cli(capsys, "sweep", str(default_scenario_path().parent / "group_sequential.toml"), *argv,
                       "--out", str(out))
    assert code == 0, err
    assert (out / "results.csv").read_bytes() == table
    assert len([e for e in log_events(out) if e["event"] == "chunk"]) == 3
