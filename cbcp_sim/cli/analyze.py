"""``cbcp-sim analyze DATA.csv --method M``: a real trial's data analysed by the simulator's own analysis code.

A thin wrapper: :func:`cbcp_sim.analysis.real_data.analyze` does the work, each option gives its parameter.
"""

from __future__ import annotations

import argparse
import json

from cbcp_sim.cli.options import option


def add_command(sub: argparse._SubParsersAction) -> None:
    """Add ``analyze`` to the ``cbcp-sim`` subcommands."""
    an = sub.add_parser(
        "analyze", help="fit an analysis to a real trial's data: estimate, SE, CI and p of arm 1 minus arm 0",
        description="Fit the simulator's own analysis code to a real data set in long format (a CSV file with "
                    "columns id, arm (0 control, 1 treated), visit (months after baseline, > 0), baseline (the "
                    "child's baseline score, on every row of the child) and value; one row per child and visit, "
                    "a missed visit an absent row or an empty value; children without a baseline are left out) "
                    "and print the estimate of arm 1 minus arm 0 at one visit with its SE, df, two-sided "
                    "confidence interval and p-value.")
    an.add_argument("data", metavar="DATA.csv", help="long-format CSV file")
    option(an, "--method", param="method", required=True, metavar="M",
           help="change (t-test of the change from baseline) or any analysis of analysis.primary "
                "(ttest, welch, ancova, ...; an unknown name lists them)")
    option(an, "--visit", param="visit", type=float, metavar="V",
           help="months after baseline of the compared visit (default: the last visit in the file)")
    option(an, "--covariates", param="covariates", metavar="A[,B...]",
           help="per-child numeric columns to adjust for (only analyses that take covariates)")
    option(an, "--endpoint", param="endpoint", choices=("change", "final"), default=None,
           help="change from baseline or the visit's score (default change; ancova: the same estimate)")
    option(an, "--alpha", param="alpha", type=float, default=0.05, metavar="A",
           help="two-sided level: a 1 - alpha confidence interval (default 0.05)")
    option(an, "--mcid", param="mcid", type=float, default=None, metavar="POINTS",
           help="fisher and chisquare: a responder's change is at least this (default 1.5)")
    an.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def handle(args: argparse.Namespace) -> int:
    """Run :func:`cbcp_sim.analysis.real_data.analyze` with the options given; print its table or its JSON."""
    from cbcp_sim.analysis.real_data import analyze

    result = analyze(args.data, method=args.method, visit=args.visit, covariates=args.covariates,
                     endpoint=args.endpoint, alpha=args.alpha, mcid=args.mcid)
    print(json.dumps(result.to_json(), allow_nan=False) if args.json else result)
    return 0
