"""Workers die with their parent: no process of a run outlives the main process by more than a few seconds
(loky and Dask), whatever kills it; Ctrl-C prints one line whatever the backend (issue 19, point 4)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; PDEATHSIG is Linux's")

RUN = ["run", "--jobs", "2", "--reps", "200000", "--quiet"]


def _alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie (a zombie holds no pipe and no memory)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _descendants(pid: int) -> set[int]:
    """Every process started by ``pid`` or by one of them (children of any of its threads)."""
    out: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*") if Path(f"/proc/{p}").exists() else ():
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            for c in children:
                if c not in out:
                    out.add(c)
                    todo.append(c)
    return out


def _start(args: list[str], tmp_path: Path, workers: int, settle: float = 1.5) -> tuple[subprocess.Popen, set[int]]:
    """The CLI started with ``args`` in its own session, once at least ``workers`` processes of its run exist
    and have started working; with those processes."""
    proc = subprocess.Popen([sys.executable, "-m", "cbcp_sim.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=(tmp_path / "stderr").open("w"), start_new_session=True)
    deadline = time.monotonic() + 20
    kids: set[int] = set()
    while time.monotonic() < deadline and proc.poll() is None:
        kids = _descendants(proc.pid)
        if len(kids) >= workers:
            break
        time.sleep(0.1)
    if len(kids) < workers:
        proc.kill()
        pytest.fail(f"the run did not start {workers} processes: {sorted(kids)}")
    time.sleep(settle)  # the workers are busy with chunks
    assert proc.poll() is None, "the run finished before the kill: make it longer"
    return proc, kids | _descendants(proc.pid)


def _gone_within(pids: set[int], seconds: float) -> float:
    """Seconds until none of ``pids`` is alive; fails (killing them) if some are still alive after ``seconds``."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if not any(_alive(p) for p in pids):
            return time.monotonic() - start
        time.sleep(0.05)
    left = sorted(p for p in pids if _alive(p))
    for p in left:
        with contextlib.suppress(OSError):
            os.kill(p, signal.SIGKILL)
    pytest.fail(f"processes of the run still alive {seconds} s after the main process: {left}")


def test_loky_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    proc, kids = _start(RUN, tmp_path, workers=4)  # two workers, two resource trackers
    proc.send_signal(signal.SIGKILL)  # the main process only, not its group
    assert proc.wait(5) == -signal.SIGKILL
    _gone_within(kids, 5.0)


def test_loky_workers_stop_on_sigterm(tmp_path: Path) -> None:
    proc, kids = _start(RUN, tmp_path, workers=4)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 128 + signal.SIGTERM
    assert (tmp_path / "stderr").read_text() == "error: terminated\n"
    _gone_within(kids, 5.0)


def test_sweep_workers_stop_on_sigterm(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc, kids = _start(["sweep", "--grid", "design.n_per_arm=20,30", "--reps", "100000", "--jobs", "2", "--quiet",
                         "--out", str(out)], tmp_path, workers=4)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 128 + signal.SIGTERM
    assert (tmp_path / "stderr").read_text() == "error: terminated\n"
    _gone_within(kids, 5.0)


def test_dask_ctrl_c_prints_one_line_and_leaves_no_process(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    # two workers and a resource tracker, once the cluster is up: a worker hit as it starts prints its traceback
    proc, kids = _start([*RUN, "--backend", "dask"], tmp_path, workers=3, settle=4.0)
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: to every process of the terminal's foreground group
    assert proc.wait(15) == 130
    assert (tmp_path / "stderr").read_text() == "error: interrupted\n"
    _gone_within(kids, 5.0)


def test_dask_sigint_to_the_main_process_only(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    proc, kids = _start([*RUN, "--backend", "dask"], tmp_path, workers=3)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(15) == 130
    assert (tmp_path / "stderr").read_text() == "error: interrupted\n"
    _gone_within(kids, 5.0)


def test_dask_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    proc, kids = _start([*RUN, "--backend", "dask"], tmp_path, workers=3)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(5) == -signal.SIGKILL
    _gone_within(kids, 5.0)


def test_dask_sigterm_closes_the_cluster(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    proc, kids = _start([*RUN, "--backend", "dask"], tmp_path, workers=3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 128 + signal.SIGTERM
    assert (tmp_path / "stderr").read_text() == "error: terminated\n"
    _gone_within(kids, 5.0)


def test_loky_ctrl_c_prints_one_line_and_leaves_no_process(tmp_path: Path) -> None:
    proc, kids = _start(RUN, tmp_path, workers=4)
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does
    assert proc.wait(10) == 130
    assert (tmp_path / "stderr").read_text() == "error: interrupted\n"
    _gone_within(kids, 5.0)


@pytest.mark.parametrize("after", [0.2, 0.4, 0.7])
def test_ctrl_c_while_the_command_starts_prints_one_line(tmp_path: Path, after: float) -> None:
    """A Ctrl-C while the command loads its libraries (the first half second or so) or starts its workers is one
    line, exit 130, not a traceback. (Before about 0.1 s Python itself is still starting: its own traceback is
    not ours to catch.)"""
    proc = subprocess.Popen([sys.executable, "-m", "cbcp_sim.cli", *RUN], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    time.sleep(after)
    kids = _descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and err == "error: interrupted\n", err
    _gone_within(kids, 10.0)  # a worker still loading its libraries exits once loaded, finding its parent gone
