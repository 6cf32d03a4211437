"""``cbcp-sim analyze DATA.csv --method M``: a real trial's data analysed by the simulator's own analysis code.

A thin wrapper: :func:`cbcp_sim.analysis.real_data.analyze` does the work, each option gives its parameter
(``--arm-column group`` gives ``columns={"arm": "group"}``, and so for each role of a column).
"""

from __future__ import annotations

import argparse
import json

from cbcp_sim.analysis.long_data import MAX_ROWS, ROLES
from cbcp_sim.analysis.mmrm import BASELINES, DF_METHODS
from cbcp_sim.cli.options import option


def add_command(sub: argparse._SubParsersAction) -> None:
    """Add ``analyze`` to the ``cbcp-sim`` subcommands."""
    an = sub.add_parser(
        "analyze",
        help="fit an analysis to a real trial's data: estimate, SE, CI and p of the treated arm minus the control",
        description="Fit the simulator's own analysis code to a real data set in long format (a CSV file with "
                    "columns id, arm (0 control, 1 treated; or two labels with --control naming the control), "
                    "visit (months after baseline; a row at 0 gives the child's baseline), baseline (the child's "
                    "baseline score, on every row of the child; optional with visit-0 rows) and value; one row "
                    "per child and visit, a missed visit an absent row or an empty value; children without a "
                    "baseline are left out; --id-column and the like name columns called otherwise) and print the "
                    "estimate of the treated arm minus the control at one visit with its SE, df, two-sided "
                    "confidence interval and p-value.")
    an.add_argument("data", metavar="DATA.csv", help=f"long-format CSV file (at most {MAX_ROWS:,} rows of the "
                                                      "trial analysed; only the columns used are kept)")
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
    for role in ROLES:
        option(an, f"--{role}-column", param=f"columns.{role}", metavar="NAME",
               help=f"the file's name for the {role} column (default {role})")
    option(an, "--control", param="control", metavar="LABEL",
           help="the control arm's label, for arms labelled as text (e.g. sham); the other label is the treated "
                "arm (default: arms are 0 control and 1 treated)")
    option(an, "--mmrm-df", param="mmrm_df", choices=DF_METHODS, default=None,
           help="mmrm: kenward_roger (default: Kenward-Roger adjusted SE) or satterthwaite (model-based SE); "
                "Satterthwaite df with both")
    option(an, "--mmrm-baseline", param="mmrm_baseline", choices=BASELINES, default=None,
           help="mmrm: baseline as a per-visit covariate (default), as the first response with no arm effect "
                "there (response, cLDA) or with one (response_unconstrained), or not in the model (none)")
    option(an, "--trial", param="trial", metavar="K",
           help="in a file of several trials (a trial column, as `cbcp-sim trials` writes), the one to analyse")
    option(an, "--tipping-point", param="tipping_point", action="store_true",
           help="ancova and mmrm: also the tipping point, the delta (points) by which the treated children missing "
                "at the visit would have to score below what missing at random predicts for the test to stop "
                "rejecting (delta-adjusted sensitivity analysis)")
    an.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def handle(args: argparse.Namespace) -> int:
    """Run :func:`cbcp_sim.analysis.real_data.analyze` with the options given; print its table or its JSON."""
    from cbcp_sim.analysis.real_data import analyze

    columns = {role: getattr(args, f"{role}_column") for role in ROLES if getattr(args, f"{role}_column") is not None}
    result = analyze(args.data, method=args.method, visit=args.visit, covariates=args.covariates,
                     endpoint=args.endpoint, alpha=args.alpha, mcid=args.mcid, columns=columns or None,
                     control=args.control, trial=args.trial, mmrm_df=args.mmrm_df, mmrm_baseline=args.mmrm_baseline,
                     tipping_point=args.tipping_point)
    print(json.dumps(result.to_json(), allow_nan=False) if args.json else result)
    return 0
