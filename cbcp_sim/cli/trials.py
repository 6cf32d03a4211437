"""``cbcp-sim trials [SCENARIO] --count K --out FILE.csv``: simulated trials written as data, in exactly the long
format ``cbcp-sim analyze`` reads.

A thin wrapper: :func:`cbcp_sim.explore.trials.trials` does the work, each option gives its parameter.
"""

from __future__ import annotations

import argparse
import sys

from cbcp_sim.cli.options import SCENARIO_HELP, option, settings_option
from cbcp_sim.explore.trials import MAX_COUNT
from cbcp_sim.run.settings import DEFAULT_SEED


def add_command(sub: argparse._SubParsersAction) -> None:
    """Add ``trials`` to the ``cbcp-sim`` subcommands."""
    tr = sub.add_parser(
        "trials", help="simulated trials as data, in the format `cbcp-sim analyze` reads",
        description="Write the first K trials of a run of the scenario (the same trials as `cbcp-sim run` with "
                    "--reps K and the same --seed: trial k is replicate k, counted from 0) as one CSV file in "
                    "long format: columns trial, id, arm (the arm's name), visit (months), baseline, value, and "
                    "the covariates age, gmfcs and dose; one row per child and visit observed after baseline (a "
                    "missed visit is an absent row; a child with none keeps one row with an empty value). The "
                    "visits are those the run simulates: baseline and the primary visit, or every visit when an "
                    "analysis reads them all (mmrm). `cbcp-sim analyze FILE.csv --control FIRST_ARM --trial k` "
                    "analyses one of them.")
    tr.add_argument("scenario", nargs="?", help=SCENARIO_HELP)
    option(tr, "--count", param="count", type=int, default=1, metavar="K",
           help=f"trials to write, 1 to {MAX_COUNT:,} (default 1)")
    option(tr, "--seed", param="seed", type=int, default=None, help=f"the run's seed (default {DEFAULT_SEED})")
    option(tr, "--out", param="out", metavar="FILE.csv", help="write the CSV file here (default: print it)")
    settings_option(tr, "design.n_per_arm=20")


def handle(args: argparse.Namespace) -> int:
    """Run :func:`cbcp_sim.explore.trials.trials` with the options given; print the CSV, or where it went."""
    from cbcp_sim.explore.trials import trials
    from cbcp_sim.scenario import default_scenario_path, load_scenario

    scenario = load_scenario(args.scenario or default_scenario_path(), args.settings, args.effect)
    seed = DEFAULT_SEED if args.seed is None else args.seed
    frame = trials(scenario, args.count, seed, out=args.out)
    if args.out is None:
        frame.to_csv(sys.stdout, index=False)
        return 0
    d = scenario.design
    visits = ", ".join(f"{m:g}" for m in sorted(set(frame["visit"].tolist())))
    lines = [scenario.heading,
             f"  {args.count:,} simulated trial{'s' * (args.count > 1)} (seed {seed}) of {sum(d.n_per_arm)} "
             f"children ({', '.join(d.arms)}), visits at {visits} months: {len(frame):,} rows written to {args.out}"]
    if d.kind == "parallel" and len(d.arms) == 2:
        lines.append(f"  analyse one: cbcp-sim analyze {_quoted(args.out)} --method {scenario.analysis.primary} "
                     f"--control {_quoted(d.arms[0])} --trial 0")
    print("\n".join(lines))
    return 0


def _quoted(text: str) -> str:
    """``text`` as one shell word."""
    import shlex

    return shlex.quote(text)
