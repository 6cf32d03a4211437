"""Long commands run without blocking the page: a child process per command, its progress read from the chunks it
saves, stopped on request.

:func:`run` is the body of the app's extended tasks (Shiny's ``ExtendedTask``): it starts the command in a new
process group, updates a :class:`Progress` as the command's chunk files appear (so the page can draw a bar with an
ETA), and returns the command's printed output. Cancelling the task sends SIGTERM to the group (the command stops
as on Ctrl-C, its worker processes with it) and then SIGKILL if it has not ended within a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass, field

from cbcp_sim.app.commands import Command

#: How often the chunk files are counted, in seconds.
POLL_SECONDS = 0.25
#: How long a stopped command has to end before it is killed, in seconds.
STOP_SECONDS = 5.0


@dataclass
class Progress:
    """How far a command has come: chunks saved out of ``total`` (``None``: not known in advance), since when, and
    the process (and process group) running it."""

    total: int | None = None
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    running: bool = False
    pid: int = 0

    def fraction(self) -> float | None:
        return None if not self.total else min(self.done / self.total, 1.0)

    def eta_seconds(self) -> float | None:
        """Seconds left at the average rate so far; ``None`` before the first chunk or without a total."""
        if not self.total or self.done == 0:
            return None
        elapsed = time.monotonic() - self.started
        return max(elapsed / self.done * (self.total - self.done), 0.0)

    def text(self) -> str:
        elapsed = time.monotonic() - self.started
        if not self.running:
            return ""
        eta = self.eta_seconds()
        count = f"{self.done} of {self.total} chunks" if self.total else f"{self.done} chunks"
        return f"{count}; {elapsed:.0f} s elapsed" + ("" if eta is None else f"; about {eta:.0f} s left")


@dataclass(frozen=True)
class Outcome:
    """What a command printed and its exit status (2: the CLI's one-line error is in ``stderr``)."""

    status: int
    stdout: str
    stderr: str

    @property
    def error(self) -> str:
        """The command's last line on standard error when it failed (the CLI's one-line message)."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return "" if self.status == 0 else (lines[-1] if lines else f"exit status {self.status}")


def _count(command: Command) -> int:
    if command.out is None or not command.out.is_dir():
        return 0
    return sum(1 for _ in command.out.rglob("*.npz"))


def _stop(process: asyncio.subprocess.Process, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)  # the group the command leads: its own workers, nothing else


async def run(command: Command, progress: Progress | None = None, cwd: str | None = None) -> Outcome:
    """Run ``command`` to its end (or until the task is cancelled) and return what it printed."""
    progress = progress or Progress()
    progress.total, progress.done, progress.started, progress.running = command.chunks, 0, time.monotonic(), True
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = await asyncio.create_subprocess_exec(*command.argv(), stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
                                                   cwd=cwd, env=env, start_new_session=True)
    progress.pid = process.pid
    talk = asyncio.ensure_future(process.communicate())
    try:
        while not talk.done():
            await asyncio.wait({talk}, timeout=POLL_SECONDS)
            progress.done = _count(command)
        stdout, stderr = talk.result()
        return Outcome(process.returncode or 0, stdout.decode(errors="replace"), stderr.decode(errors="replace"))
    except asyncio.CancelledError:
        _stop(process, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(talk), STOP_SECONDS)
        except (TimeoutError, asyncio.CancelledError):
            _stop(process, signal.SIGKILL)
            await process.wait()
        raise
    finally:
        progress.running = False
        if not talk.done():
            talk.cancel()
