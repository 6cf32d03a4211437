"""The chunk store trusts nothing it finds (issue 19, points 1-3).

Spec lines pinned here: "every chunk is verified before it is used: a checksum of its content and the digest of the
point and chunk it belongs to ... a chunk that fails verification is set aside (renamed, reported in one line) and
recomputed, never trusted and never a traceback; bounded reads; no pickle ever"; "the store and the report never
follow a symlink out of their directory and never write outside it ... and leave no temporary files after a kill
once the next run starts"; "one writer per output directory: ... a second writer gets a one-line error naming the
directory and the process holding it; a stale lock (dead process) is taken over safely".
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cbcp_sim.errors import InputError
from cbcp_sim.run import engine
from cbcp_sim.run.engine import ChunkResult, point_tasks, run_chunk, run_points
from cbcp_sim.run.settings import RunSettings
from cbcp_sim.run.store import CHECKSUMS, LOCK, MANIFEST, Store, dumps, write_atomic
from cbcp_sim.scenario import default_scenario_path, load_scenario

from .support import assert_one_line_error, cli

ROOT = Path(__file__).resolve().parent.parent


def tasks() -> list[list[engine.Task]]:
    """Two points of the normal model, 1500 trials each (chunks of 1000 and 500)."""
    base = load_scenario(default_scenario_path(), {"outcome.model": "normal"})
    return [point_tasks(base.replace({"design.n_per_arm": n}), RunSettings(reps=1500, seed=8)) for n in (20, 30)]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, list[Any]]:
    """A store of an uninterrupted run and its summaries."""
    root = tmp_path_factory.mktemp("clean") / "store"
    rows = [r.rows for r in run_points(tasks(), RunSettings(), store=Store(root, "t", {}))]
    return root, rows


def copy_of(finished: tuple[Path, list[Any]], tmp_path: Path) -> Path:
    root = tmp_path / "store"
    shutil.copytree(finished[0], root, ignore=shutil.ignore_patterns(LOCK))
    return root


def forge_checksum(root: Path, key: str, data: bytes, n_reps: int | None = 1000) -> None:
    """What a tamperer who also edits checksums.jsonl writes, so that only the other checks stand."""
    import hashlib

    with (root / CHECKSUMS).open("a") as fh:
        fh.write(json.dumps({"key": key, "sha256": hashlib.sha256(data).hexdigest(), "n_reps": n_reps}) + "\n")


def resume_counting(root: Path, monkeypatch, capsys) -> tuple[list[Any], list[tuple[int, int]], str]:
    """Run the same tasks on ``root`` again: (summaries, chunks run as (n_per_arm, chunk), stderr)."""
    ran = []
    real = engine.run_chunk

    def counting(scenario: Any, seed: int, chunk: int, n_reps: int) -> ChunkResult:
        ran.append((scenario.design.n_per_arm, chunk))
        return real(scenario, seed, chunk, n_reps)

    monkeypatch.setattr(engine, "run_chunk", counting)
    rows = [r.rows for r in run_points(tasks(), RunSettings(), store=Store(root, "t", {}))]
    return rows, ran, capsys.readouterr().err


def assert_set_aside(root: Path, key: str, finished: tuple[Path, list[Any]], monkeypatch, capsys,
                     reason: str = "") -> None:
    """The chunk ``key`` (point 0, chunk 0) is set aside with one line, run again, and the table is the clean one."""
    rows, ran, err = resume_counting(root, monkeypatch, capsys)
    assert ran == [(tasks()[0][0].scenario.design.n_per_arm, 0)]
    assert rows == finished[1]
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("warning: out: chunk") and key in lines[0] and reason in lines[0], lines[0]
    bad = [p.name for p in (root / "chunks").iterdir() if ".bad-" in p.name]
    assert len(bad) == 1 and bad[0].startswith(f"{key}.npz.bad-")
    events = [json.loads(x) for x in (root / "log.jsonl").read_text().splitlines()]
    assert [e["moved_to"] for e in events if e["event"] == "bad-chunk"] == bad
    again, ran, err = resume_counting(root, monkeypatch, capsys)  # the recomputed chunk is now trusted
    assert ran == [] and again == finished[1] and err == ""


def first_key() -> str:
    return tasks()[0][0].key()


# --- point 1: every chunk verified ----------------------------------------------------------------------------


def test_truncated_chunk_is_set_aside_and_recomputed(finished, tmp_path, monkeypatch, capsys):
    root = copy_of(finished, tmp_path)
    path = root / "chunks" / f"{first_key()}.npz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert_set_aside(root, first_key(), finished, monkeypatch, capsys, "checksum")


def test_bit_flipped_chunk_is_set_aside_and_recomputed(finished, tmp_path, monkeypatch, capsys):
    root = copy_of(finished, tmp_path)
    path = root / "chunks" / f"{first_key()}.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    assert_set_aside(root, first_key(), finished, monkeypatch, capsys, "checksum")


def test_bit_flipped_chunk_with_forged_checksum_is_still_refused(finished, tmp_path, monkeypatch, capsys):
    """A flipped bit in a zip member with the checksum forged too: the zip's own CRC or a header check refuses it."""
    root = copy_of(finished, tmp_path)
    path = root / "chunks" / f"{first_key()}.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))
    forge_checksum(root, first_key(), bytes(data))
    assert_set_aside(root, first_key(), finished, monkeypatch, capsys)


def test_well_formed_chunk_with_other_numbers_is_set_aside(finished, tmp_path, monkeypatch, capsys):
    """A valid chunk of the right key and size but computed with another seed: its checksum is not the recorded one."""
    root = copy_of(finished, tmp_path)
    task = tasks()[0][0]
    other = run_chunk(task.scenario, 99, 0, 1000)
    (root / "chunks" / f"{first_key()}.npz").write_bytes(dumps(other, first_key()))
    assert_set_aside(root, first_key(), finished, monkeypatch, capsys, "checksum mismatch")


@pytest.mark.parametrize("forged", [False, True])
def test_chunk_of_10_replicates_instead_of_1000_is_set_aside(finished, tmp_path, monkeypatch, capsys, forged):
    """10 replicates under a 1000-replicate key: refused by its checksum, and by its size when that is forged too."""
    root = copy_of(finished, tmp_path)
    task = tasks()[0][0]
    data = dumps(run_chunk(task.scenario, task.seed, 0, 10), first_key())
    (root / "chunks" / f"{first_key()}.npz").write_bytes(data)
    if forged:
        forge_checksum(root, first_key(), data, n_reps=10)
    assert_set_aside(root, first_key(), finished, monkeypatch, capsys, "replicates" if forged else "checksum")


@pytest.mark.parametrize("forged", [False, True])
def test_chunk_copied_from_another_point_is_set_aside(finished, tmp_path, monkeypatch, capsys, forged):
    """Point 1's first chunk copied over point 0's: refused by its checksum, and by its embedded key if that is
    forged too."""
    root = copy_of(finished, tmp_path)
    data = (root / "chunks" / f"{tasks()[1][0].key()}.npz").read_bytes()
    (root / "chunks" / f"{first_key()}.npz").write_bytes(data)
    if forged:
        forge_checksum(root, first_key(), data)
    assert_set_aside(root, first_key(), finished, monkeypatch, capsys, "another chunk" if forged else "checksum")


def rebuilt(data: bytes, change: Any) -> bytes:
    """The chunk ``data`` with its arrays and layout passed through ``change(arrays, layout)``, saved again."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    layout = json.loads(str(arrays.pop("layout")))
    layout = change(arrays, layout)
    buffer = io.BytesIO()
    np.savez(buffer, layout=np.array(json.dumps(layout)), **arrays)
    return buffer.getvalue()


def test_unknown_record_name_is_set_aside(finished, tmp_path, monkeypatch, capsys):
    """A layout naming a record the store does not know (a KeyError before): set aside, never a traceback."""
    root = copy_of(finished, tmp_path)
    path = root / "chunks" / f"{first_key()}.npz"
    data = rebuilt(path.read_bytes(), lambda arrays, layout: json.loads(
        json.dumps(layout).replace('"record": "Estimates"', '"record": "Evil"')))
    path.write_bytes(data)
    forge_checksum(root, first_key(), data)
    assert_set_aside(root, first_key(), finished, monkeypatch, capsys, "unknown record")


def test_arrays_of_wrong_shape_are_set_aside(finished, tmp_path, monkeypatch, capsys):
    """One per-replicate array cut to 999 rows, checksum forged: the replicate count does not hold."""
    root = copy_of(finished, tmp_path)
    path = root / "chunks" / f"{first_key()}.npz"

    def cut(arrays: dict, layout: Any) -> Any:
        arrays["a0"] = arrays["a0"][:999]
        return layout

    data = rebuilt(path.read_bytes(), cut)
    path.write_bytes(data)
    forge_checksum(root, first_key(), data)
    assert_set_aside(root, first_key(), finished, monkeypatch, capsys, "replicates")


def test_inflating_member_is_refused_without_inflating(finished, tmp_path, monkeypatch, capsys):
    """A member compressed to a few kB that would inflate to 256 MB (checksum forged): refused from the zip
    directory, before anything is decompressed."""
    root = copy_of(finished, tmp_path)
    path = root / "chunks" / f"{first_key()}.npz"
    original = path.read_bytes()
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (32 * 1024 * 1024,)})
    # the same members, a0 deflated: 256 MB of zeros behind its header
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(original)) as src, zipfile.ZipFile(buffer, "w") as dst:
        for info in src.infolist():
            if info.filename == "a0.npy":
                deflated = zipfile.ZipInfo("a0.npy", (1980, 1, 1, 0, 0, 0))
                deflated.compress_type = zipfile.ZIP_DEFLATED
                with dst.open(deflated, "w", force_zip64=True) as member:
                    member.write(header.getvalue())
                    zeros = bytes(1 << 20)
                    for _ in range(256):
                        member.write(zeros)
            else:
                dst.writestr(info, src.read(info))
    data = buffer.getvalue()
    assert len(data) < 2_000_000
    path.write_bytes(data)
    forge_checksum(root, first_key(), data)
    assert_set_aside(root, first_key(), finished, monkeypatch, capsys, "compressed or larger")


@pytest.mark.parametrize("lost", ["one line", "the file"])
def test_chunks_written_without_a_recorded_checksum_are_not_trusted_and_said_once(finished, tmp_path, monkeypatch,
                                                                                  capsys, lost):
    """Chunks whose checksum lines are missing (one lost, or a directory of an older version without
    checksums.jsonl) are recomputed, not trusted, with one line for the directory, not one per chunk."""
    root = copy_of(finished, tmp_path)
    lines = (root / CHECKSUMS).read_text().splitlines()
    if lost == "the file":
        (root / CHECKSUMS).unlink()
    else:
        (root / CHECKSUMS).write_text("".join(x + "\n" for x in lines if first_key() not in x))
    rows, ran, err = resume_counting(root, monkeypatch, capsys)
    assert rows == finished[1]
    assert len(ran) == (len(lines) if lost == "the file" else 1) > 0
    assert len(err.splitlines()) == 1 and "holds chunks with no checksum recorded" in err, err
    bad = [p for p in (root / "chunks").iterdir() if ".bad-" in p.name]
    assert len(bad) == len(ran)
    again, ran, err = resume_counting(root, monkeypatch, capsys)
    assert ran == [] and again == finished[1] and err == ""


def test_saved_chunks_embed_their_key_and_record_their_checksum(finished):
    """Each chunk holds a meta member (its key, replicate count, point and chunk) and checksums.jsonl its sha256."""
    import hashlib

    root = finished[0]
    sums = {e["key"]: e for e in map(json.loads, (root / CHECKSUMS).read_text().splitlines())}
    for point in tasks():
        for task in point:
            data = (root / "chunks" / f"{task.key()}.npz").read_bytes()
            assert sums[task.key()]["sha256"] == hashlib.sha256(data).hexdigest()
            assert sums[task.key()]["n_reps"] == task.n_reps
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                meta = json.loads(str(npz["meta"]))
            assert meta["key"] == task.key() and meta["n_reps"] == task.n_reps and meta["chunk"] == task.chunk
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                assert all(i.compress_type == zipfile.ZIP_STORED for i in archive.infolist())


# --- point 2: no symbolic link followed, no temporary file left ----------------------------------------------


SCENARIO = str(default_scenario_path())
RUN = ("run", SCENARIO, "--reps", "200", "--seed", "1", "--quiet")


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture
def outside(tmp_path) -> Path:
    """A directory outside the output directory, with one file, that nothing may touch."""
    place = tmp_path / "outside"
    place.mkdir()
    (place / "precious.txt").write_text("keep me\n")
    return place


def test_report_refuses_a_planted_report_html_link(capsys, tmp_path, outside):
    out = tmp_path / "out"
    code, _, err = cli(capsys, *RUN, "--out", str(out))
    assert code == 0, err
    (out / "report.html").symlink_to(outside / "precious.txt")
    code, stdout, err = cli(capsys, "report", str(out))
    assert_one_line_error(code, stdout, err, "report.html", "symbolic link")
    assert (outside / "precious.txt").read_text() == "keep me\n" and snapshot(outside) == {"precious.txt": b"keep me\n"}
    os.unlink(out / "report.html")
    code, _, err = cli(capsys, "report", str(out))
    assert code == 0, err
    assert not (out / "report.html").is_symlink() and (out / "report.html").stat().st_size > 0


@pytest.mark.parametrize("name", ["log.jsonl", "chunks", MANIFEST, CHECKSUMS, "summary.csv", "result.json"])
def test_store_refuses_planted_links(capsys, tmp_path, outside, name):
    """A link planted in an output directory (before a resume) is refused in one line; nothing outside is written."""
    out = tmp_path / "out"
    code, _, err = cli(capsys, *RUN, "--out", str(out))
    assert code == 0, err
    target = outside / ("dir" if name == "chunks" else "file")
    if name == "chunks":
        shutil.copytree(out / "chunks", target)
        shutil.rmtree(out / "chunks")
    else:
        shutil.copy(out / name, target)
        (out / name).unlink()
    (out / name).symlink_to(target, target_is_directory=name == "chunks")
    before = snapshot(outside)
    code, stdout, err = cli(capsys, *RUN, "--out", str(out))
    assert_one_line_error(code, stdout, err, "--out", name, "symbolic link")
    assert snapshot(outside) == before


def test_write_atomic_refuses_links_and_linked_directories(tmp_path, outside):
    root = tmp_path / "root"
    root.mkdir()
    (root / "link.txt").symlink_to(outside / "precious.txt")
    with pytest.raises(InputError, match="symbolic link") as info:
        write_atomic(root / "link.txt", b"x", root=root)
    assert info.value.path == "out"
    (root / "sub").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InputError, match="symbolic link"):
        write_atomic(root / "sub" / "new.txt", b"x", root=root)
    assert snapshot(outside) == {"precious.txt": b"keep me\n"}
    assert sorted(p.name for p in root.iterdir()) == ["link.txt", "sub"]


def test_temporary_files_of_a_killed_run_are_removed_by_the_next(finished, tmp_path, monkeypatch, capsys):
    """Temporary files (of the manifest, a table, a chunk) left by a kill are gone once the next run writes."""
    root = copy_of(finished, tmp_path)
    left = [root / ".results.csv.4242.tmp", root / f".{MANIFEST}.4242.tmp", root / "chunks" / ".abc.npz.4242.tmp"]
    for path in left:
        path.write_bytes(b"partial")
    rows, ran, _ = resume_counting(root, monkeypatch, capsys)
    assert rows == finished[1] and ran == []
    Store(root, "t", {}).write("results.csv", "x\n")
    assert not any(p.exists() for p in left)
    assert not [p for p in root.rglob("*.tmp")]


# --- point 3: one writer per directory ------------------------------------------------------------------------


HOLDER = """
import sys, time
from cbcp_sim.run.store import Store
store = Store(sys.argv[1], "t", {})
store.log(event="holding")
print("ready", flush=True)
time.sleep(60)
"""


def test_second_writer_is_refused_naming_the_pid_and_a_dead_holder_is_taken_over(tmp_path):
    root = tmp_path / "shared"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(root)], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "ready"
        store = Store(root, "t", {})
        assert store.resumed is True
        with pytest.raises(InputError) as info:
            store.log(event="second")
        message = str(info.value)
        assert info.value.path == "out" and "\n" not in message
        assert str(root) in message and f"process {holder.pid}" in message
        assert (root / LOCK).read_text().strip() == str(holder.pid)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    # the holder is dead: the kernel released its flock, so the lock is taken over at once
    store = Store(root, "t", {})
    store.log(event="after")
    assert (root / LOCK).read_text().strip() == str(os.getpid())
    events = [json.loads(x)["event"] for x in (root / "log.jsonl").read_text().splitlines()]
    assert events == ["holding", "after"]


LOCKER = """
import fcntl, os, sys, time
os.makedirs(sys.argv[1])
fd = os.open(os.path.join(sys.argv[1], ".lock"), os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, f"{os.getpid()}\\n".encode())
print("ready", flush=True)
time.sleep(60)
"""


def test_second_writer_on_the_command_line_is_refused(capsys, tmp_path):
    """`run --out DIR` while another process (which has not written its manifest yet) holds DIR's lock: one line
    naming DIR and the pid; DIR untouched."""
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", LOCKER, str(out)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "ready"
        before = snapshot(out)
        code, stdout, err = cli(capsys, *RUN, "--out", str(out))
        assert_one_line_error(code, stdout, err, "--out", str(out), f"process {holder.pid}")
        assert snapshot(out) == before
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_stores_of_one_directory_in_one_process_share_the_lock(tmp_path):
    """Two Stores of one directory in one process (a resume after an error in a notebook) are one writer; the lock
    is released when the last is freed."""
    root = tmp_path / "s"
    first = Store(root, "t", {})
    first.log(event="one")
    second = Store(root, "t", {})
    second.log(event="two")
    del first, second
    code = subprocess.run([sys.executable, "-c", "import sys\nfrom cbcp_sim.run.store import Store\n"
                           "Store(sys.argv[1], 't', {}).log(event='three')", str(root)], cwd=ROOT).returncode
    assert code == 0
    assert [json.loads(x)["event"] for x in (root / "log.jsonl").read_text().splitlines()] == ["one", "two", "three"]


# --- a full disk: one line, nothing half-written, nothing lost ------------------------------------------------------

def _limited(limit: int, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``cbcp-sim argv`` with files capped at ``limit`` bytes (RLIMIT_FSIZE, SIGXFSZ ignored): a write past the cap
    fails as a write to a full disk does, with an OSError (EFBIG here, ENOSPC there) and the data not written."""
    import resource
    import signal

    def cap() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "cbcp_sim.cli", *argv], cwd=cwd, capture_output=True, text=True,
                          preexec_fn=cap, check=False)


def test_a_full_disk_stops_a_run_in_one_line_and_the_next_run_resumes(tmp_path):
    argv = ("run", "--reps", "1500", "--quiet", "--set", "outcome.model=normal")
    stopped = _limited(40_000, *argv, "--out", "out", cwd=tmp_path)  # the manifest fits, no chunk does
    assert stopped.returncode == 2 and stopped.stdout == ""
    assert stopped.stderr.startswith("error: --out: cannot write") and len(stopped.stderr.splitlines()) == 1
    assert "Traceback" not in stopped.stderr
    assert (tmp_path / "out" / MANIFEST).is_file() and not (tmp_path / "out" / "summary.csv").exists()
    assert not [p for p in (tmp_path / "out").rglob("*") if p.name.endswith(".tmp")]
    for out in ("out", "fresh"):  # resume the stopped run; run it afresh
        subprocess.run([sys.executable, "-m", "cbcp_sim.cli", *argv, "--out", out], cwd=tmp_path,
                       capture_output=True, text=True, check=True)
    assert (tmp_path / "out" / "summary.csv").read_text() == (tmp_path / "fresh" / "summary.csv").read_text()


@pytest.mark.parametrize("argv", [("trajectories", "--plot", "figure.png"), ("trials", "--count", "20", "--out",
                                                                               "figure.png")],
                         ids=["plot", "trials csv"])
def test_a_full_disk_leaves_an_earlier_output_file_whole(tmp_path, argv):
    (tmp_path / "figure.png").write_bytes(b"the earlier file")
    stopped = _limited(2_000, *argv, cwd=tmp_path)
    assert stopped.returncode == 2 and "cannot write figure.png" in stopped.stderr
    assert len(stopped.stderr.splitlines()) == 1
    assert (tmp_path / "figure.png").read_bytes() == b"the earlier file"
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]
