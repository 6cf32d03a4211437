"""A local web app for planning a trial: ``cbcp-sim app`` (Shiny for Python, installed with
``pip install 'cbcp_sim[app]'``).

Five screens: the scenario (each input with its unit, allowed values and cited source from the parameter
declarations), the assumed trajectories and natural history, a run with progress and cancel, planning (sample size,
power curve, assurance, tornado) and export (the resolved TOML, the command line, the results CSV, the HTML report).
Every result is printed by ``cbcp-sim`` itself, run in a child process (:mod:`cbcp_sim.app.commands`). Shiny is
imported only here, when the app starts: the core install does not need it.
"""

from __future__ import annotations

import sys

from cbcp_sim.errors import SettingsError

#: Where the app listens unless told otherwise: this machine only.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, open_browser: bool = True) -> None:
    """Start the app on ``host:port`` (this machine only by default) and open it in the browser; runs until
    Ctrl-C."""
    if not 0 <= port <= 65535:
        raise SettingsError("port", f"must be a whole number in [0, 65535], got {port}")
    try:
        import shiny
    except ImportError:
        raise SettingsError("app", "needs Shiny for Python: pip install 'cbcp_sim[app]'") from None
    from cbcp_sim.app.server import app

    if host not in (DEFAULT_HOST, "localhost", "::1"):
        print(f"warning: the app listens on {host}: anyone who can reach this machine on port {port} can use it",
              file=sys.stderr)
    shiny.run_app(app(), host=host, port=port, launch_browser=open_browser, dev_mode=False, log_level="warning")


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "serve"]
