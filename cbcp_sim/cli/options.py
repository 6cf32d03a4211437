"""Options shared by the commands, and the one table from the library's parameter names to the options.

Every option that gives a library parameter is declared with :func:`option`, which records the pair where the
option is declared; :func:`as_option` then names the option in an error about that parameter, when the option
gave its value (a value from the scenario file is named by its own path).
"""

from __future__ import annotations

import argparse
import tomllib
from typing import Any

from cbcp_sim.errors import InputError
from cbcp_sim.run.settings import DEFAULT_REPS, DEFAULT_SEED, RunSettings
from cbcp_sim.scenario import parse_value
from cbcp_sim.scenario.schema import join_path, leaves, split_path

#: The defaults key under which each parser keeps its table ``{parameter: (option, dest, default)}``.
TABLE = "parameter_options"
#: The help of a command's optional scenario argument.
SCENARIO_HELP = ("scenario TOML file, or the name of a bundled scenario such as repeat_dose (`cbcp-sim scenarios` "
                 "lists them); default: the default scenario")


def option(parser: argparse.ArgumentParser, *flags: str, param: str | None = None, **kwargs: Any) -> argparse.Action:
    """``parser.add_argument(*flags, **kwargs)``, recording that the option gives the library's parameter
    ``param`` (a name such as ``reps`` or a scenario's dotted path such as ``assurance.priors``)."""
    action = parser.add_argument(*flags, **kwargs)
    if param is not None:
        table = parser.get_default(TABLE)
        if table is None:
            table = {}
            parser.set_defaults(**{TABLE: table})
        table[param] = (flags[0], action.dest, action.default)
    return action


def as_option(exc: InputError, args: argparse.Namespace) -> InputError:
    """``exc`` naming the option that gave the value at fault (``--reps`` for ``reps``, ``--prior`` for
    ``assurance.priors.outcome.effect``), or as it is if no option given on this command line gave it."""
    for param, (flag, dest, default) in getattr(args, TABLE, {}).items():
        if getattr(args, dest, default) == default:
            continue
        if exc.path == param:
            return type(exc)(flag, exc.message)
        if exc.path.startswith(f"{param}."):
            return type(exc)(flag, f"{exc.path}: {exc.message}")
    return exc


def _setting(text: str) -> tuple[str, Any]:
    """``PATH=VALUE``: the path split at the first ``=`` outside quotes and as TOML splits a dotted key
    (``arms."single dose".kind`` is ``arms.single dose.kind``), the value a TOML value or a bare word."""
    quote, cut = "", -1
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "=":
            cut = i
            break
    path, value = (text[:cut], text[cut + 1:]) if cut >= 0 else (text, "")
    try:
        if cut < 0 or not path.strip():
            raise ValueError
        keys = split_path(path.strip())
    except (ValueError, InputError):
        raise argparse.ArgumentTypeError(f"expected dotted.path=value (a key with spaces or dots may be quoted: "
                                         f"arms.\"single dose\".kind=sham), got {text!r}") from None
    return join_path(keys), parse_value(value.strip())


def _setting_file(path: str) -> list[tuple[str, Any]]:
    """The values of a TOML file as ``--set`` overrides, one per value, by dotted path (``[natural_history]
    limit = [...]`` is ``natural_history.limit=[...]``): the table ``cbcp-sim calibrate --toml`` writes."""
    if "\0" in path:
        raise argparse.ArgumentTypeError("a file name cannot hold a NUL character")
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise argparse.ArgumentTypeError(f"{path} is not a readable TOML file: {' '.join(str(exc).split())}") from None
    return [(join_path(keys), value) for keys, value in leaves(raw)]


def settings_option(parser: argparse.ArgumentParser, example: str) -> None:
    """``--effect NAME`` (one of the scenario's ``[effects]``), the repeatable ``--set PATH=VALUE`` override, and
    ``--set-file FILE`` (every value of a TOML file as a ``--set``, in command-line order with the others)."""
    option(parser, "--effect", param="effect", metavar="NAME",
           help="apply the scenario's effect hypothesis [effects.NAME] (e.g. reported, pooled) before any --set")
    parser.add_argument("--set", dest="settings", action="append", type=_setting, default=[], metavar="PATH=VALUE",
                        help=f"override a scenario value by dotted path, e.g. {example} (repeatable)")
    parser.add_argument("--set-file", dest="settings", action="extend", type=_setting_file, metavar="FILE",
                        help="override scenario values with those of a TOML file, such as the [natural_history] "
                             "table of `cbcp-sim calibrate --toml` (repeatable; later values win)")


def execution_options(parser: argparse.ArgumentParser, jobs: int) -> None:
    """``--seed``, ``--jobs``, ``--backend`` and ``--address``: how a run's chunks are seeded and where they run;
    and ``--quiet`` (no progress bar), as every command that runs trials takes these."""
    option(parser, "--seed", param="seed", type=int, default=None, help=f"random seed (default {DEFAULT_SEED})")
    option(parser, "--jobs", param="jobs", type=int, default=jobs,
           help=f"parallel jobs; -1 = all cores (default {jobs}); results do not depend on it")
    option(parser, "--backend", param="backend", default="loky", metavar="loky|dask",
           help="loky: local processes (default); dask: a Dask cluster (needs distributed)")
    option(parser, "--address", param="address", metavar="tcp://HOST:PORT",
           help="Dask scheduler to use; without it --backend dask starts a local cluster of --jobs worker processes")
    option(parser, "--quiet", param="progress", action="store_true",
           help="no progress bar (otherwise shown on a terminal once the work lasts two seconds)")


def reps_option(parser: argparse.ArgumentParser, what: str, default: int = DEFAULT_REPS) -> None:
    """``--reps N``: simulated trials (``what`` says of what)."""
    option(parser, "--reps", param="reps", type=int, default=None, help=f"{what} (default {default})")


def plot_option(parser: argparse.ArgumentParser, figure: str) -> None:
    """``--plot FILE``: where to save the command's figure."""
    option(parser, "--plot", param="path", metavar="FILE", help=f"save {figure} (PNG, SVG or PDF by extension)")


def run_settings(args: argparse.Namespace, reps: int | None = None) -> RunSettings:
    """The run settings the command line asked for, validated once: ``reps`` trials (default
    :data:`DEFAULT_REPS`), ``--seed``, ``--jobs``, ``--backend``, ``--address``, and a progress bar (drawn only
    on a terminal, unless ``--quiet``)."""
    return RunSettings(reps=DEFAULT_REPS if reps is None else reps,
                       seed=DEFAULT_SEED if args.seed is None else args.seed, jobs=getattr(args, "jobs", 1),
                       backend=getattr(args, "backend", "loky"), address=getattr(args, "address", None),
                       progress=not getattr(args, "quiet", False))
