"""``cbcp-sim calibrate REGISTRY.csv``: the natural history fitted to a registry's repeated GMFM-66 scores.

A thin wrapper: :func:`cbcp_sim.explore.calibration.calibrate` does the work; ``--child`` and the like name the
columns (``--score gmfm`` gives ``columns={"score": "gmfm"}``), ``--toml`` writes the ``[natural_history]`` table
that ``--set-file`` of every scenario command applies, ``--plot`` the visual predictive check.
"""

from __future__ import annotations

import argparse
import json
import sys

from cbcp_sim.analysis.registry import AGE_UNITS, DEFAULT_COLUMNS, ROLES
from cbcp_sim.cli.options import option, plot_option
from cbcp_sim.errors import InputError
from cbcp_sim.vocabulary import GROWTH_METHODS, GROWTH_MODELS


def add_command(sub: argparse._SubParsersAction) -> None:
    """Add ``calibrate`` to the ``cbcp-sim`` subcommands."""
    cal = sub.add_parser(
        "calibrate",
        help="fit the natural history (GMFM-66 growth curves by GMFCS) to a registry; write natural_history keys",
        description="Fit the stable-limit growth model (Rosenbaum 2002) and its peak-and-decline variant for "
                    "GMFCS III-V (Hanna 2009), with a correlated random limit and log growth rate per child, by "
                    "maximum likelihood to a registry CSV (one row per child and assessment: child, age, GMFCS "
                    "level, GMFM-66), compare them by AIC, check the chosen one by a visual predictive check, and "
                    "print the estimates; --toml writes the [natural_history] keys of the fitted model for "
                    "--set-file.")
    cal.add_argument("data", metavar="REGISTRY.csv", help="CSV file with one row per child and assessment")
    for role in ROLES:
        default = DEFAULT_COLUMNS.get(role, role)
        option(cal, f"--{role}", param=f"columns.{role}", metavar="COL",
               help=f"the file's column for the {role} (default {default})")
    option(cal, "--age-unit", param="age_unit", choices=tuple(AGE_UNITS), default="years",
           help="unit of the age column (default years)")
    option(cal, "--model", param="model", choices=GROWTH_MODELS, default=None,
           help="fit this model only (default: both, the one of lower AIC kept)")
    option(cal, "--method", param="method", choices=GROWTH_METHODS, default="agq",
           help="agq: exact likelihood by adaptive Gauss-Hermite quadrature (default); nlme: R nlme's "
                "Lindstrom-Bates approximation, for agreement with nlme")
    option(cal, "--seed", param="seed", type=int, default=1, help="seed of the visual predictive check (default 1)")
    plot_option(cal, "the visual predictive check")
    option(cal, "--toml", param="toml", metavar="FILE", help="write the fitted [natural_history] table to FILE")
    cal.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def handle(args: argparse.Namespace) -> int:
    """Fit, print the estimates (or JSON), and write the TOML table and the figure asked for."""
    from cbcp_sim.explore.calibration import calibrate
    from cbcp_sim.io import plots
    from cbcp_sim.run.store import write_atomic

    if args.plot:
        plots.check_figure_path(args.plot)
    columns = {role: getattr(args, role) for role in ROLES if getattr(args, role) is not None}
    progress = None
    if sys.stderr.isatty():
        def progress(model: str, iteration: int, loglik: float) -> None:
            print(f"\r{model}: iteration {iteration}, log-likelihood {loglik:.2f}   ", end="", file=sys.stderr,
                  flush=True)
    result = calibrate(args.data, columns=columns or None, age_unit=args.age_unit, model=args.model,
                       method=args.method, seed=args.seed, progress=progress)
    if progress is not None:
        print("\r" + " " * 60 + "\r", end="", file=sys.stderr)
    if args.toml:
        try:
            write_atomic(args.toml, result.toml().encode(), source="--toml")
        except OSError as exc:
            raise InputError("--toml", f"cannot write {args.toml}: {exc.strerror or exc}") from None
    if args.plot:
        plots.visual_check(result.vpc, args.plot, heading=f"Visual predictive check: {result.fit.model} model")
    print(json.dumps(result.to_json(), allow_nan=False) if args.json else result)
    return 0 if result.fit.converged else 1
