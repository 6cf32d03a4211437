"""Options and output shared by the command-line commands."""

from __future__ import annotations

import argparse
import math
from typing import Any

from cbcp_sim.scenario import parse_value


def _setting(text: str) -> tuple[str, Any]:
    path, sep, value = text.partition("=")
    if not sep or not path.strip():
        raise argparse.ArgumentTypeError(f"expected dotted.path=value, got {text!r}")
    return path.strip(), parse_value(value.strip())


def settings_option(parser: argparse.ArgumentParser, example: str) -> None:
    """``--effect NAME`` (one of the scenario's ``[effects]``) and the repeatable ``--set PATH=VALUE`` override."""
    parser.add_argument("--effect", metavar="NAME",
                        help="apply the scenario's effect hypothesis [effects.NAME] (e.g. reported, pooled) "
                             "before any --set")
    parser.add_argument("--set", dest="settings", action="append", type=_setting, default=[], metavar="PATH=VALUE",
                        help=f"override a scenario value by dotted path, e.g. {example} (repeatable)")


def json_safe(value: Any) -> Any:
    """Plain JSON values; NaN and infinities (e.g. an MCSE from one replicate) become null."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def execution_options(parser: argparse.ArgumentParser, jobs: int) -> None:
    """``--seed``, ``--jobs``, ``--backend`` and ``--address``: how a run's chunks are seeded and where they run."""
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 1)")
    parser.add_argument("--jobs", type=int, default=jobs,
                        help=f"parallel jobs; -1 = all cores (default {jobs}); results do not depend on it")
    parser.add_argument("--backend", default="loky", metavar="loky|dask",
                        help="loky: local processes (default); dask: a Dask cluster (needs distributed)")
    parser.add_argument("--address", metavar="tcp://HOST:PORT",
                        help="Dask scheduler to use; without it --backend dask starts a local cluster of --jobs "
                             "worker processes")
