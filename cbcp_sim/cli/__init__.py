"""The command line, ``cbcp-sim``: options parsed, the library called, results printed. Only this layer knows the
options' names."""

from cbcp_sim.cli.main import main

__all__ = ["main"]
