"""Save as you go: chunks stored as plain arrays, written atomically, read back on resume; ``run --out DIR``; the
progress bar.

Spec lines pinned here (issue): "every finished chunk is written atomically as it finishes (npz of plain arrays,
never pickles) and read back on resume"; "a resume refuses a changed scenario (hash of its inputs)"; "run --out
DIR saves the chunks and the result, resumable"; "a progress bar with ETA on a terminal only"; issue 18 point 8:
"run (and the Python API, and notebooks) show progress with an ETA on work longer than about two seconds ... quiet
with --quiet or when output is not a terminal".
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cbcp_sim.analysis import Estimates
from cbcp_sim.errors import InputError
from cbcp_sim.run import engine, progress
from cbcp_sim.run.engine import ChunkResult, point_tasks, run_chunk, run_points
from cbcp_sim.run.monitoring import Monitoring
from cbcp_sim.run.progress import Progress
from cbcp_sim.run.settings import RunSettings
from cbcp_sim.run.store import MANIFEST, RESULTS_VERSION, MemoryStore, Store, chunk_key, dumps, loads, write_atomic
from cbcp_sim.scenario import default_scenario_path, load_scenario

from .support import assert_one_line_error, cli

SCENARIOS = Path(default_scenario_path()).parent


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def assert_same(a: Any, b: Any, where: str = "chunk") -> None:
    """Exactly the same value: types, dataclass fields, dict keys in order, arrays with dtype, shape and NaNs."""
    assert type(a) is type(b), where
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), where
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    else:
        assert a == b, where


def leaves(value: Any) -> list[Any]:
    """Every array and None inside a chunk result."""
    if isinstance(value, np.ndarray) or value is None:
        return [value]
    if dataclasses.is_dataclass(value):
        return [x for f in dataclasses.fields(value) for x in leaves(getattr(value, f.name))]
    return [x for v in value.values() for x in leaves(v)]


# --- chunks as plain arrays ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["default", "group_sequential", "sun2017_duke_crossover", "royan_pooled_three_arm"])
def test_chunk_round_trip(name):
    """dumps/loads give back a real chunk exactly: arrays (dtype, NaN), tuple and str keys, records, None fields."""
    chunk = run_chunk(load_scenario(SCENARIOS / f"{name}.toml"), 5, 1, 150)
    back = loads(dumps(chunk), ChunkResult)
    assert_same(chunk, back)
    assert all(isinstance(k, tuple) for k in back.alt) and all(isinstance(k, str) for k in back.truth)
    assert any(x is None for x in leaves(back))  # e.g. p_two of a t test
    if name == "group_sequential":
        assert back.milestones is not None and back.monitoring is not None
        assert all(type(m) is Monitoring for m in back.monitoring.values())
        assert back.monitoring["alt"].reject.dtype == np.bool_
    else:
        assert back.milestones is None and back.monitoring is None
    assert all(type(e) is Estimates for e in back.null.values())


def test_chunk_round_trip_with_failed_replicates():
    """Chunks whose analyses failed (NaN estimates: two children per arm, heavy dropout) round-trip with the NaNs."""
    scenario = load_scenario(default_scenario_path(), {"design.n_per_arm": 2, "dropout.fraction": 0.6})
    chunk = run_chunk(scenario, 3, 0, 100)
    assert np.isnan(chunk.alt["ancova", "cord blood vs sham"].estimate).any()
    back = loads(dumps(chunk), ChunkResult)
    assert_same(chunk, back)
    extra = dataclasses.replace(chunk, milestones={"f4": np.array([1.5, np.nan], dtype=np.float32),
                                                   "empty": np.zeros((0, 3), dtype=np.int16)})
    assert_same(extra, loads(dumps(extra), ChunkResult))


def test_chunk_file_is_plain_arrays(tmp_path):
    """A chunk's .npz opens with allow_pickle=False: no object arrays, only a JSON layout and numbered arrays."""
    chunk = run_chunk(load_scenario(SCENARIOS / "group_sequential.toml"), 2, 0, 100)
    data = dumps(chunk)
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}  # reading an object array would raise here
    assert all(a.dtype.kind != "O" for a in arrays.values())
    layout = json.loads(str(arrays.pop("layout")))
    assert set(layout) == {f.name for f in dataclasses.fields(ChunkResult)}
    assert sorted(arrays) == sorted(f"a{i}" for i in range(len(arrays)))
    path = tmp_path / "chunk.npz"
    path.write_bytes(data)
    assert_same(chunk, loads(path, ChunkResult))
    assert dumps(chunk) == data  # the same chunk always gives the same bytes


def test_dumps_refuses_what_is_not_an_array():
    """A chunk holding a Python object that is not an array, record, dict or None is refused, not pickled."""
    chunk = run_chunk(load_scenario(default_scenario_path()), 1, 0, 20)
    with pytest.raises(TypeError, match="cannot store"):
        dumps(dataclasses.replace(chunk, milestones={"x": [1, 2]}))


def test_chunk_key_changes_with_every_input():
    """chunk_key: 24 hex characters, the same for the same inputs and different when any input changes."""
    key = chunk_key("abc", 1, 0, 1000)
    assert len(key) == 24 and int(key, 16) >= 0
    assert key == chunk_key("abc", 1, 0, 1000)
    assert len({key, chunk_key("abd", 1, 0, 1000), chunk_key("abc", 2, 0, 1000), chunk_key("abc", 1, 1, 1000),
                chunk_key("abc", 1, 0, 999)}) == 5


# --- atomic writes and the store ----------------------------------------------------------------------------


def test_write_atomic_replaces_and_leaves_no_temp_file(tmp_path):
    """write_atomic writes the whole content, replaces an old file and leaves nothing else in the directory."""
    path = tmp_path / "out.bin"
    write_atomic(path, b"first")
    assert path.read_bytes() == b"first"
    write_atomic(path, b"second, longer")
    assert path.read_bytes() == b"second, longer"
    write_atomic(path, b"")
    assert path.read_bytes() == b""
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_write_atomic_failure_keeps_the_old_file(tmp_path, monkeypatch):
    """A write that fails before its rename leaves the old content whole."""
    path = tmp_path / "out.bin"
    write_atomic(path, b"old")

    def broken(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="No space"):
        write_atomic(path, b"new content")
    assert path.read_bytes() == b"old"


def test_store_resumes_the_same_inputs_and_refuses_others(tmp_path):
    """Store: nothing is written until the first file, then a manifest; the same inputs (in any key order) resume
    it; others are refused."""
    root = tmp_path / "run"
    inputs = {"scenario": {"design": {"n_per_arm": 20}}, "reps": 1500, "seed": 3}
    store = Store(root, "sweep", inputs)
    assert store.resumed is False and not root.exists()
    store.log(event="start")
    manifest = json.loads((root / MANIFEST).read_text())
    assert manifest["kind"] == "sweep" and manifest["inputs_digest"] == store.digest
    assert manifest["inputs"] == {**inputs, "results_version": RESULTS_VERSION}
    assert (root / "chunks").is_dir()
    before = (root / MANIFEST).read_bytes()

    again = Store(root, "sweep", {"seed": 3, "reps": 1500, "scenario": {"design": {"n_per_arm": 20}}})
    assert again.resumed is True and again.digest == store.digest
    for changed in ({**inputs, "seed": 4}, {**inputs, "reps": 1501}, {**inputs, "scenario": {"design": {}}}):
        with pytest.raises(InputError, match="changed") as info:
            Store(root, "sweep", changed)
        assert info.value.path == "out"
    with pytest.raises(InputError, match="different sweep") as info:
        Store(root, "run", inputs, source="directory")
    assert info.value.path == "directory"
    assert (root / MANIFEST).read_bytes() == before
    assert sorted(p.name for p in root.iterdir()) == [".lock", "chunks", "log.jsonl", MANIFEST]  # .lock: one writer


def test_store_refuses_foreign_directories(tmp_path):
    """Store refuses a non-empty directory without a manifest and a file, touching neither; takes an empty one."""
    full = tmp_path / "full"
    full.mkdir()
    (full / "data.csv").write_text("x\n")
    with pytest.raises(InputError, match="not empty"):
        Store(full, "run", {})
    assert [p.name for p in full.iterdir()] == ["data.csv"]
    with pytest.raises(InputError, match="is a file"):
        Store(full / "data.csv", "run", {})
    empty = tmp_path / "empty"
    empty.mkdir()
    store = Store(empty, "run", {})
    assert store.resumed is False and not (empty / MANIFEST).exists()
    store.write("result.json", "{}")
    assert (empty / MANIFEST).is_file()


def test_store_saves_loads_and_logs(tmp_path):
    """Store.save writes KEY.npz atomically, has/load read it back; log appends JSON lines with time, host, pid."""
    store = Store(tmp_path / "s", "run", {"a": 1})
    chunk = run_chunk(load_scenario(default_scenario_path()), 1, 0, 50)
    key = chunk_key("d", 1, 0, 50)
    assert not store.has(key)
    store.save(key, chunk)
    assert store.has(key) and store.path(key) == tmp_path / "s" / "chunks" / f"{key}.npz"
    assert_same(chunk, store.load(key, ChunkResult))
    assert [p.name for p in (tmp_path / "s" / "chunks").iterdir()] == [f"{key}.npz"]
    store.log(event="one", n=1)
    store.log(event="two")
    lines = [json.loads(x) for x in (tmp_path / "s" / "log.jsonl").read_text().splitlines()]
    assert [x["event"] for x in lines] == ["one", "two"]
    assert all({"time", "host", "pid"} <= set(x) for x in lines) and lines[0]["n"] == 1
    memory = MemoryStore()
    memory.save(key, chunk)
    assert memory.has(key) and memory.load(key, ChunkResult) is chunk and not memory.has("other")


# --- run_points with a store --------------------------------------------------------------------------------


def normal_tasks() -> list[list[engine.Task]]:
    """Two points of the normal model, 1500 trials each (two chunks per point)."""
    base = load_scenario(default_scenario_path(), {"outcome.model": "normal"})
    return [point_tasks(base.replace({"design.n_per_arm": n}), RunSettings(reps=1500, seed=8)) for n in (20, 30)]


def chunk_events(root: Path) -> list[dict]:
    path = root / "log.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [e for e in map(json.loads, lines) if e["event"] == "chunk"]


def test_run_points_with_store_matches_and_resumes_without_running(tmp_path, monkeypatch):
    """run_points with a Store gives the same summaries as without; run again it reads every chunk, running none."""
    tasks = normal_tasks()
    plain = run_points(tasks, RunSettings(), keep_replicates=True)
    root = tmp_path / "store"
    stored = run_points(tasks, RunSettings(), store=Store(root, "t", {"x": 1}), keep_replicates=True)
    assert [r.rows for r in stored] == [r.rows for r in plain]
    assert len(chunk_events(root)) == 4 and len(list((root / "chunks").glob("*.npz"))) == 4
    assert {(e["point"], e["chunk"], e["reps"]) for e in chunk_events(root)} == {
        (p, c, n) for p in (0, 1) for c, n in ((0, 1000), (1, 500))}

    def no_run(*args: Any) -> None:
        raise AssertionError("a chunk was run again")

    monkeypatch.setattr(engine, "run_chunk", no_run)
    resumed = run_points(tasks, RunSettings(), store=Store(root, "t", {"x": 1}), keep_replicates=True)
    assert [r.rows for r in resumed] == [r.rows for r in plain]
    for a, b in zip(plain, resumed, strict=True):
        assert_same(a.replicates, b.replicates)
        assert b.n_reps == 1500
    assert len(chunk_events(root)) == 4


def test_run_points_runs_only_missing_chunks(tmp_path, monkeypatch):
    """With one chunk file removed, a resumed run_points runs exactly that chunk and gets the same summaries."""
    tasks = normal_tasks()
    root = tmp_path / "store"
    first = run_points(tasks, RunSettings(), store=Store(root, "t", {}))
    removed = tasks[1][0].key()
    (root / "chunks" / f"{removed}.npz").unlink()
    ran = []
    real = engine.run_chunk

    def counting(scenario: Any, seed: int, chunk: int, n_reps: int) -> ChunkResult:
        ran.append((scenario.design.n_per_arm, chunk, n_reps))
        return real(scenario, seed, chunk, n_reps)

    monkeypatch.setattr(engine, "run_chunk", counting)
    again = run_points(tasks, RunSettings(), store=Store(root, "t", {}))
    assert ran == [(tasks[1][0].scenario.design.n_per_arm, 0, 1000)]
    assert [r.rows for r in again] == [r.rows for r in first]
    assert chunk_events(root)[-1]["point"] == 1 and chunk_events(root)[-1]["chunk"] == 0


def test_resumed_progress_eta_counts_only_chunks_run_in_this_process(tmp_path, monkeypatch):
    """On resume the ETA extrapolates the chunks run in this process, not those read back from the store."""
    tasks = normal_tasks()
    root = tmp_path / "store"
    run_points(tasks, RunSettings(progress=False), store=Store(root, "t", {}))
    for task in tasks[1]:
        (root / "chunks" / f"{task.key()}.npz").unlink()
    now = bar_clock(monkeypatch)
    real = engine.run_chunk

    def ten_seconds(*args: Any) -> ChunkResult:
        now[0] += 10.0  # each chunk run here takes 10 s on the bar's clock
        return real(*args)

    monkeypatch.setattr(engine, "run_chunk", ten_seconds)
    stream = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", stream)
    run_points(tasks, RunSettings(progress=True), store=Store(root, "t", {}), label="sweep")
    drawn = [line for line in stream.getvalue().split("\r") if line]
    assert drawn[0].startswith("sweep:") and "4/4" in drawn[-1] and stream.getvalue().endswith("\n")
    # two chunks read back at once, then one run in 10 s with one left: 10 s to go, not 10 / 3 s
    assert "3/4 [00:10<00:10, 10.00s/chunk]" in drawn[0], drawn[0]


# --- run --out DIR ------------------------------------------------------------------------------------------


def test_run_out_writes_result_and_summary_matching_json(capsys, tmp_path):
    """`run --out DIR` writes result.json and summary.csv whose powers equal `run --json` with the same reps/seed."""
    argv = ("run", "--reps", "1500", "--seed", "6", "--set", "design.n_per_arm=24")
    code, out, err = cli(capsys, *argv, "--json")
    assert code == 0, err
    expected = json.loads(out)
    directory = tmp_path / "run"
    code, out, err = cli(capsys, *argv, "--out", str(directory), "--json")
    assert code == 0, err
    printed = json.loads(out)
    saved = json.loads((directory / "result.json").read_text())
    summary = pd.read_csv(directory / "summary.csv")
    assert saved["kind"] == "run"
    for key in ("power", "mcse", "type1_error", "mean_estimate", "n_reps", "seed", "scenario_digest"):
        assert saved[key] == expected[key] == printed[key], key
    assert list(summary["analysis"]) == [a["analysis"] for a in expected["analyses"]] == ["ancova", "ttest"]
    assert list(summary["power"]) == [a["power"] for a in expected["analyses"]]
    assert list(summary["type1_error"]) == [a["type1_error"] for a in expected["analyses"]]
    assert len(list((directory / "chunks").glob("*.npz"))) == 2
    table = (directory / "summary.csv").read_bytes()

    code, out, err = cli(capsys, *argv, "--out", str(directory), "--jobs", "2")  # resumed: nothing to run
    assert code == 0, err
    assert (directory / "summary.csv").read_bytes() == table
    assert len(chunk_events(directory)) == 2
    code, out, err = cli(capsys, "run", "--reps", "1000", "--seed", "6", "--set", "design.n_per_arm=24",
                         "--out", str(directory))
    assert_one_line_error(code, out, err, "changed")
    assert err.startswith("error: --out:")
    assert (directory / "summary.csv").read_bytes() == table


# --- the progress bar ---------------------------------------------------------------------------------------


def bar_clock(monkeypatch) -> list[float]:
    """tqdm's clock, moved by hand: ``now[0]`` seconds."""
    import tqdm.std

    now = [1000.0]
    monkeypatch.setattr(tqdm.std, "time", lambda: now[0])
    return now


def test_progress_draws_nothing_off_a_terminal(monkeypatch):
    """Progress on a stream that is not a terminal writes nothing, however long the work; no tqdm bar is made."""
    now = bar_clock(monkeypatch)
    stream = io.StringIO()
    bar = Progress(5, "sweep", stream)
    for _ in range(5):
        now[0] += 600.0
        bar.advance()
    bar.close()
    assert stream.getvalue() == "" and bar.done == 5 and bar.bar is None


def test_progress_appears_after_the_delay_with_an_eta(monkeypatch):
    """On a terminal nothing shows before DELAY_SECONDS; then tqdm's line `label: k/total [elapsed<ETA, rate]`,
    redrawn in place, left on its line (one newline) when closed."""
    now = bar_clock(monkeypatch)
    stream = FakeTerminal()
    bar = Progress(4, "run", stream)
    now[0] += 1.0
    bar.advance()
    assert stream.getvalue() == ""  # 1 s < 2 s
    now[0] += 2.0
    bar.advance()
    text = stream.getvalue()
    assert text.startswith("\rrun:  50%|") and "2/4 [00:03<00:03, " in text and "\n" not in text
    now[0] += 3.0
    bar.advance(2)
    bar.close()
    assert "4/4 [00:06<00:00, " in stream.getvalue() and "\r" + "run: 100%" in stream.getvalue()
    assert stream.getvalue().endswith("\n") and stream.getvalue().count("\n") == 1
    assert progress.DELAY_SECONDS == 2.0


def test_progress_short_work_shows_nothing(monkeypatch):
    """On a terminal, work done within DELAY_SECONDS never shows a bar (nor a newline at close)."""
    now = bar_clock(monkeypatch)
    stream = FakeTerminal()
    bar = Progress(3, "run", stream)
    for _ in range(3):
        now[0] += 0.5
        bar.advance()
    bar.close()
    assert stream.getvalue() == ""


def test_progress_skipped_units_are_not_in_the_rate(monkeypatch):
    """Units read back from a store count in the bar but not in the rate: 3 of 6 skipped, then one in 30 s leaves
    two at 30 s each, ETA 1:00 (not 30 s / 4 units)."""
    now = bar_clock(monkeypatch)
    stream = FakeTerminal()
    bar = Progress(6, "sweep", stream)
    bar.skip(3)
    now[0] += 30.0
    bar.advance()
    assert "4/6 [00:30<01:00, 30.00s/chunk]" in stream.getvalue(), stream.getvalue()
    assert (bar.done, bar.skipped) == (4, 3)
    bar.close()


def test_progress_shows_in_a_notebook(monkeypatch):
    """In a Jupyter kernel (whose standard error is not a terminal) the bar is shown, through tqdm.auto."""
    import types

    now = bar_clock(monkeypatch)
    monkeypatch.setitem(sys.modules, "ipykernel.zmqshell", types.ModuleType("ipykernel.zmqshell"))
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    bar = Progress(2, "run")
    now[0] += 5.0
    bar.advance(2)
    bar.close()
    assert bar.enabled and "2/2 [00:05<00:00" in stream.getvalue()
    assert not Progress(2, "run", io.StringIO()).enabled  # a stream given that is not a terminal: never


def test_simulate_shows_progress_by_default_on_a_terminal(monkeypatch):
    """`simulate` from Python shows the bar by default (RunSettings().progress), on a terminal, once the work
    lasts DELAY_SECONDS; progress=False keeps quiet. So does the timeline, under its own name."""
    from cbcp_sim.explore.timeline import timeline

    assert RunSettings().progress is True
    monkeypatch.setattr(progress, "DELAY_SECONDS", 0.0)
    scenario = load_scenario(default_scenario_path(), {"outcome.model": "normal"})
    for settings, shown in ((RunSettings(reps=300, chunk_size=100), True), (RunSettings(reps=300, chunk_size=100,
                                                                                         progress=False), False)):
        stream = FakeTerminal()
        monkeypatch.setattr(sys, "stderr", stream)
        engine.simulate(scenario, settings=settings)
        assert ("run: 100%" in stream.getvalue() and "3/3" in stream.getvalue()) is shown, stream.getvalue()
        assert (stream.getvalue() == "") is not shown
    stream = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", stream)
    timeline(scenario, RunSettings(reps=20))
    assert "timeline: 100%" in stream.getvalue()
