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
from cbcp_sim.errors import SettingsError

#: The options of mcpmod, each its parameter's name.
DOSE_OPTIONS = ("models", "dose", "response", "baseline", "delta", "ed", "selection")


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
                    "confidence interval and p-value. With --method mcpmod: a dose-finding trial, one row per child "
                    "with a dose column (--dose; its distinct values are the dose groups, the smallest the placebo) "
                    "and a response column (--response; e.g. the change from baseline), optionally a baseline to "
                    "adjust for (--baseline): MCP-Mod's multiple contrast test of the candidate --models, the "
                    "selected model by gAIC among the significant ones (or their gAIC average), its parameters, target "
                    "dose and ED_p with delta-method intervals.")
    an.add_argument("data", metavar="DATA.csv", help=f"long-format CSV file (at most {MAX_ROWS:,} rows of the "
                                                      "trial analysed; only the columns used are kept)")
    option(an, "--method", param="method", required=True, metavar="M",
           help="change (t-test of the change from baseline), any analysis of analysis.primary "
                "(ttest, welch, ancova, ...; an unknown name lists them), or mcpmod (dose finding)")
    option(an, "--visit", param="visit", type=float, metavar="V",
           help="months after baseline of the compared visit (default: the last visit in the file)")
    option(an, "--covariates", param="covariates", metavar="A[,B...]",
           help="per-child numeric columns to adjust for (only analyses that take covariates)")
    option(an, "--endpoint", param="endpoint", choices=("change", "final"), default=None,
           help="change from baseline or the visit's score (default change; ancova: the same estimate)")
    option(an, "--alpha", param="alpha", type=float, default=None, metavar="A",
           help="two-sided level: a 1 - alpha confidence interval (default 0.05); mcpmod: the one-sided level of "
                "the multiple contrast test (default 0.025)")
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
    option(an, "--models", param="models", metavar="M[,M...]",
           help="mcpmod: the candidate models, DoseFinding's parametrisation, e.g. emax:1,sigEmax:3:3,exponential:4,"
                "linear (required with --method mcpmod)")
    option(an, "--dose", param="dose", metavar="COL", help="mcpmod: the dose column (default dose)")
    option(an, "--response", param="response", metavar="COL", help="mcpmod: the response column (default response)")
    option(an, "--baseline", param="baseline", metavar="COL",
           help="mcpmod: a baseline column to adjust for (ANCOVA with a common slope; default: none, ANOVA)")
    option(an, "--delta", param="delta", type=float, metavar="POINTS",
           help="mcpmod: the effect over placebo defining the target dose (default 1.5)")
    option(an, "--ed", param="ed", type=float, metavar="P",
           help="mcpmod: the level of ED_p, the dose with P times the curve's largest effect over the doses "
                "(default 0.5: ED50)")
    option(an, "--selection", param="selection", choices=("aic", "average"), default=None,
           help="mcpmod: the curve whose TD and ED_p are estimated: the significant model of smallest gAIC (aic, "
                "default) or the significant models' fitted curves averaged with gAIC weights (average)")
    an.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def handle(args: argparse.Namespace) -> int:
    """Run :func:`cbcp_sim.analysis.real_data.analyze` with the options given; print its table or its JSON."""
    from cbcp_sim.analysis.real_data import analyze

    columns = {role: getattr(args, f"{role}_column") for role in ROLES if getattr(args, f"{role}_column") is not None}
    dose = {key: getattr(args, key) for key in DOSE_OPTIONS if getattr(args, key) is not None}
    if args.method == "mcpmod":
        if args.models is None:
            raise SettingsError("--models", "required with --method mcpmod: the candidate models, such as "
                                            "emax:1,sigEmax:3:3,linear")
        try:
            result = analyze(args.data, method="mcpmod", alpha=args.alpha, **dose, **_two_arm_given(args, columns))
        except SettingsError as exc:  # a column of the data named by the option that names it, given or not
            if exc.path in DOSE_OPTIONS:
                raise SettingsError(f"--{exc.path}", exc.message) from None
            raise
    else:
        result = analyze(args.data, method=args.method, visit=args.visit, covariates=args.covariates,
                         endpoint=args.endpoint, alpha=0.05 if args.alpha is None else args.alpha, mcid=args.mcid,
                         columns=columns or None, control=args.control, trial=args.trial, mmrm_df=args.mmrm_df,
                         mmrm_baseline=args.mmrm_baseline, tipping_point=args.tipping_point, **dose)
    print(json.dumps(result.to_json(), allow_nan=False) if args.json else result)
    return 0


def _two_arm_given(args: argparse.Namespace, columns: dict[str, str]) -> dict:
    """The options of the two-arm analyses given on the command line (for mcpmod to refuse them by name)."""
    given = {key: getattr(args, key) for key in ("visit", "covariates", "endpoint", "mcid", "control", "trial",
                                                 "mmrm_df", "mmrm_baseline") if getattr(args, key) is not None}
    if args.tipping_point:
        given["tipping_point"] = True
    if columns:
        given["columns"] = columns
    return given
