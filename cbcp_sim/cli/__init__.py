"""The command line, ``cbcp-sim``: options parsed, the library called, results printed. Only this layer knows the
options' names."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cbcp-sim`` console script (see :func:`cbcp_sim.cli.commands.main`). The libraries load
    here, inside it, so a Ctrl-C while they do is one line too, not a traceback."""
    try:
        from cbcp_sim.cli.commands import main as run
    except KeyboardInterrupt:
        # Nothing is written yet, so exit at once: CPython ends the process by SIGINT, not with 130, when the
        # interrupt struck code a library ran as it loaded, even once caught.
        print("error: interrupted", file=sys.stderr, flush=True)
        os._exit(130)
    return run(argv)


__all__ = ["main"]
