"""A one-line progress bar with elapsed time and ETA, on a terminal only, once a run lasts a few seconds."""

from __future__ import annotations

import sys
import time
from typing import TextIO

#: Runs shorter than this never show a bar.
SHOW_AFTER_SECONDS = 2.0
WIDTH = 28


def _clock(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Counts finished units of work out of ``total``; draws ``label [#####...] k/total  elapsed  ETA`` on
    ``stream`` (standard error) when it is a terminal, at most ten times a second."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total, self.label = total, label
        self.stream = sys.stderr if stream is None else stream
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = self.start_done = 0
        self.start = self.drawn = time.monotonic()
        self.shown = False

    def skip(self, n: int = 1) -> None:
        """Count ``n`` units done before this process started (read back on a resume): not in the ETA's rate."""
        self.done += n
        self.start_done += n

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self.start >= SHOW_AFTER_SECONDS and (now - self.drawn >= 0.1
                                                                           or self.done == self.total):
            self.drawn, self.shown = now, True
            self.stream.write("\r" + self.line(now) + "\x1b[K")
            self.stream.flush()

    def line(self, now: float) -> str:
        """The bar's text at time ``now``; the ETA extrapolates the rate of the units done in this process."""
        elapsed = now - self.start
        fresh = self.done - self.start_done
        left = self.total - self.done
        eta = _clock(elapsed / fresh * left) if fresh else "?"
        filled = int(WIDTH * self.done / self.total) if self.total else WIDTH
        return (f"{self.label} [{'#' * filled}{'.' * (WIDTH - filled)}] {self.done}/{self.total}  "
                f"elapsed {_clock(elapsed)}  ETA {eta}")

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
