"""Progress with an ETA once work lasts a few seconds: tqdm's bar on a terminal, its widget in a notebook.

Nothing is drawn when the output is not a terminal (a pipe, a file, a test's captured stream), so logs and
captured output stay clean. tqdm is imported only when a bar may be drawn.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any, TextIO

#: Work shorter than this never shows a bar (tqdm's ``delay``).
DELAY_SECONDS = 2.0


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel, where ``tqdm.auto`` draws a widget (or text without ipywidgets)."""
    return "ipykernel.zmqshell" in sys.modules


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _size(stream: TextIO) -> dict[str, int]:
    """Nothing (tqdm measures the terminal), or 80 x 24 where a terminal says it has no size (a pseudo-terminal
    as under ``script`` or some CI runners, where tqdm would trim or hide the bar)."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):  # not a real file: tqdm draws the bar at its natural width
        return {}
    return {} if size.columns > 1 and size.lines > 1 else {"ncols": 80, "nrows": 24}


def _bar(total: int, label: str, stream: TextIO) -> Any:
    with warnings.catch_warnings():  # "IProgress not found": a notebook without ipywidgets gets tqdm's text bar
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm
    # smoothing=0: the ETA extrapolates the average rate of this process's units (chunks take about the same
    # time, and a few dozen units give a noisy moving average); miniters=1: redraw on any unit, at most every 0.1 s
    return tqdm(total=total, desc=label, unit="chunk", file=stream, delay=DELAY_SECONDS, smoothing=0.0,
                miniters=1, disable=False, leave=True, **_size(stream))


class Progress:
    """Counts finished units of work out of ``total``; shows tqdm's ``label: 40%|####      | 4/10 [00:12<00:18,
    3.00s/chunk]`` (elapsed < ETA) on ``stream`` (standard error) when it is a terminal, or a progress widget in
    a Jupyter notebook, once the work has lasted :data:`DELAY_SECONDS`; nothing otherwise."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total, self.label = total, label
        self.stream = sys.stderr if stream is None else stream
        self.done = self.skipped = 0
        self.enabled = _is_terminal(self.stream) or (stream is None and in_notebook())
        self.bar = _bar(total, label, self.stream) if self.enabled else None

    def skip(self, n: int = 1) -> None:
        """Count ``n`` units done before this process started (read back on a resume): not in the ETA's rate."""
        self.done += n
        self.skipped += n
        if self.bar is not None:  # as tqdm's ``initial``: counted in the bar, left out of the rate
            self.bar.n += n
            self.bar.initial += n
            self.bar.last_print_n += n

    def advance(self, n: int = 1) -> None:
        """Count ``n`` units done in this process."""
        self.done += n
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        """Leave the finished bar on its line (a bar never shown writes nothing)."""
        if self.bar is not None:
            self.bar.close()
