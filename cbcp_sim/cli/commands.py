"""Command line.

- ``cbcp-sim run [SCENARIO] [--reps N] [--seed S] [--jobs J] [--json] [--set path=value ...]``
- ``cbcp-sim natural-history --gmfcs G --ages A:B [--plot FILE] [--json]``: GMFM-66 centiles by age
- ``cbcp-sim natural-history --enrol-ages A:B --gmfcs 1,2,3,4 --follow-up MONTHS [--mix ...] [--json]``:
  the natural change over a follow-up
- ``cbcp-sim trajectories [SCENARIO] [--plot FILE] [--json]``: GMFM-66 over time by arm, with natural history
- ``cbcp-sim analyze DATA.csv --method M [--visit V] [--covariates a,b] [--endpoint change|final] [--alpha A]
  [--json]``: fit an analysis of the simulator to a real long-format data set (arm 1 minus arm 0 at a visit)
- ``cbcp-sim calibrate REGISTRY.csv [--child COL] [--age COL] [--age-unit years|months] [--gmfcs COL] [--score COL]
  [--model stable_limit|peak_decline] [--method agq|nlme] [--plot FILE] [--toml FILE] [--json]``: the natural history
  fitted to a registry, and its ``[natural_history]`` keys for ``--set-file``
- ``cbcp-sim params [--markdown]``
- ``cbcp-sim scenarios [--json]``: the bundled scenarios, which any command takes by name from any directory
- ``cbcp-sim app [--host H] [--port P] [--no-browser]``: the local web app (needs ``pip install 'cbcp_sim[app]'``)
- ``cbcp-sim --version``; ``cbcp-sim`` alone prints the usage and the commands

Bad input (a scenario value, a file, an option) prints one line ``error: <field>: <what is allowed>``
to stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np

from cbcp_sim import __version__
from cbcp_sim.app import DEFAULT_HOST, DEFAULT_PORT
from cbcp_sim.cli import analyze
from cbcp_sim.cli import calibrate as cli_calibrate
from cbcp_sim.cli import planning as cli_planning
from cbcp_sim.cli import trials as cli_trials
from cbcp_sim.cli.options import (
    SCENARIO_HELP,
    as_option,
    execution_options,
    option,
    plot_option,
    reps_option,
    run_settings,
    settings_option,
)
from cbcp_sim.errors import InputError, ScenarioError, SettingsError, printable
from cbcp_sim.explore import centiles, trajectories
from cbcp_sim.run.store import json_safe
from cbcp_sim.scenario import default_scenario_path, load_scenario
from cbcp_sim.scenario.boundaries import FAMILIES

EXIT_USAGE = 2
#: Trial calendars simulated by ``timeline`` unless --reps says otherwise.
TIMELINE_REPS = 1000


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {self.prog}: {printable(message)}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cbcp-sim", description="Trial-design simulation for cell therapy in cerebral palsy.",
                     epilog="`cbcp-sim COMMAND --help` describes a command and its options; `cbcp-sim scenarios` "
                            "lists the bundled scenarios, which every command takes by name.")
    parser.add_argument("--version", action="version", version=f"cbcp-sim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, title="commands",
                                metavar="COMMAND")
    run = sub.add_parser("run", help="simulate a scenario: power, type I error, bias",
                         description="Simulate a scenario and report power (with MCSE and 95% interval), "
                                     "type I error under no effect, mean estimate and bias.")
    run.add_argument("scenario", nargs="?", help=SCENARIO_HELP)
    reps_option(run, "simulated trials")
    execution_options(run, 1)
    option(run, "--target-mcse", param="target_mcse", type=float, default=None,
           help="stop once the Monte Carlo SE of power is at most this (--reps is then the maximum)")
    option(run, "--out", param="out", metavar="DIR", help="save every finished chunk and the result in DIR "
                                                          "(resumable; for `cbcp-sim report`; not with --target-mcse)")
    settings_option(run, "design.n_per_arm=40")
    run.add_argument("--json", action="store_true", help="print one JSON object instead of the text summary")
    sc = sub.add_parser("scenarios", help="list the bundled scenarios by name, with their titles",
                        description="The scenarios that come with the package. Every command takes one by name "
                                    "(e.g. `cbcp-sim run repeat_dose`) from any directory; a file of that name in "
                                    "the working directory wins.")
    sc.add_argument("--json", action="store_true", help="print one JSON list of {name, title, path}")
    nh = sub.add_parser(
        "natural-history", help="what the natural-history model assumes: centiles by age, or natural change",
        description="With --ages: simulated GMFM-66 centiles (3rd, 15th, 50th, 85th, 97th) at each whole year of "
                    "age for one GMFCS level, over the published curve. With --enrol-ages and --follow-up: the "
                    "distribution of the natural change over the follow-up for children enrolled at ages uniform "
                    "on that range (the scenario's trial effect included).")
    nh.add_argument("--gmfcs", required=True, type=_levels, metavar="G[,G...]",
                    help="GMFCS level (1-5); with --enrol-ages a comma-separated list of levels")
    nh.add_argument("--ages", type=_age_range, metavar="A:B", help="whole years of age from A to B (1-21)")
    nh.add_argument("--enrol-ages", type=_age_range, metavar="A:B", help="ages at enrolment, uniform on A-B")
    nh.add_argument("--follow-up", type=float, metavar="MONTHS", help="months of follow-up (with --enrol-ages)")
    nh.add_argument("--mix", type=_shares, metavar="S[,S...]",
                    help="shares of the --gmfcs levels, in the same order (default equal)")
    nh.add_argument("--scenario", help="take natural-history parameters from this scenario file")
    _cohort_options(nh, "natural_history.trial_effect_per_year=0", centiles.DEFAULT_CHILDREN, "")
    tr = sub.add_parser(
        "trajectories", help="GMFM-66 over time by arm, with natural history: the assumed effect",
        description="Follow the same simulated children under every arm's regimen and untreated: mean and "
                    "80% band (10th-90th centile) of GMFM-66 and its change by month, and each arm's mean "
                    "difference from the first arm. A table at the scenario's visits, or --json on a monthly grid.")
    tr.add_argument("scenario", nargs="?", help=SCENARIO_HELP)
    _cohort_options(tr, "treatment.cells=UCB-durable", trajectories.DEFAULT_CHILDREN, " (every half month)")
    analyze.add_command(sub)
    cli_calibrate.add_command(sub)
    cli_trials.add_command(sub)
    bd = sub.add_parser(
        "boundaries", help="group-sequential efficacy bounds (Lan-DeMets spending) on the z scale",
        description="Efficacy bounds on the z scale at the given information fractions, with the cumulative "
                    "alpha spent and the nominal one-sided p-value of each look, and futility bounds given or from "
                    "beta spending (as rpact's getDesignGroupSequential with typeOfDesign asOF, asP, asKD or asHSD "
                    "and typeBetaSpending bsOF, bsP, bsKD or bsHSD).")
    option(bd, "--info", param="info", required=True, type=_fractions, metavar="T[,T...]",
                    help="information fractions of the looks, increasing, the last 1 (e.g. 0.5,1) or, with interim "
                         "looks, below 1: a last look before the planned maximum, spending alpha(t) only (as rpact)")
    option(bd, "--alpha", param="alpha", type=float, default=0.025,
           help="alpha, one-sided or (--sided 2) two-sided (default 0.025)")
    option(bd, "--spending", param="spending", choices=FAMILIES, default="obf",
                    help="alpha spending: O'Brien-Fleming-type (obf, default), Pocock-type (pocock), Kim-DeMets "
                         "alpha t^rho (kim-demets) or Hwang-Shih-DeCani (hsd), the last two with --parameter")
    option(bd, "--parameter", param="spending_parameter", type=float, metavar="G",
           help="rho of kim-demets in [0.4, 8] or gamma of hsd in [-10, 5] (rpact gammaA)")
    option(bd, "--sided", param="sided", type=int, choices=(1, 2), default=1,
           help="1 (default) or 2: symmetric bounds +/-z for two-sided alpha")
    option(bd, "--futility", param="futility", type=_fractions, metavar="Z[,Z...]",
                    help="z-scale futility bounds, one per interim look")
    option(bd, "--beta-spending", param="beta_spending", choices=FAMILIES,
           help="futility bounds from this beta-spending family instead (rpact bsOF, bsP, bsKD, bsHSD)")
    option(bd, "--beta", param="beta", type=float, default=0.2,
           help="type II error of the beta-spending design (default 0.2: power 0.8)")
    option(bd, "--beta-parameter", param="beta_spending_parameter", type=float, metavar="G",
           help="parameter of a kim-demets or hsd beta-spending family (rpact gammaB)")
    bd.add_argument("--binding", action="store_true", help="futility bounds are binding")
    bd.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    tl = sub.add_parser(
        "timeline", help="how long the trial takes: enrolment and total duration, accrual with its band",
        description="Simulate the calendar of many trials of a scenario (its [operations] section: sites, "
                    "screening, units, infusion slots, visit windows, dropout) and report the distribution of "
                    "enrolment duration, total duration and the other milestones; --plot draws the accrual "
                    "curve with its 80% and 95% bands.")
    tl.add_argument("scenario", nargs="?", help=SCENARIO_HELP)
    reps_option(tl, "simulated trials", TIMELINE_REPS)
    execution_options(tl, 1)
    settings_option(tl, "operations.sites=3")
    plot_option(tl, "the accrual figure")
    tl.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    params = sub.add_parser(
        "params", help="every value of a scenario as simulated, with where it came from",
        description="List every parameter of the scenario (default: the default scenario) under its effect "
                    "hypothesis and overrides: the value simulated (preset values as numbers), its unit and "
                    "meaning, and its origin (the scenario file, an override, the effect, the cell preset, or the "
                    "code's default with its source).")
    params.add_argument("scenario", nargs="?", help=SCENARIO_HELP)
    settings_option(params, "design.n_per_arm=40")
    params.add_argument("--markdown", action="store_true", help="as a Markdown table")
    params.add_argument("--json", action="store_true", help="as one JSON list of rows")
    cli_planning.add_commands(sub)
    app = sub.add_parser(
        "app", help="a local web app: scenario, look, run, plan, export (needs pip install 'cbcp_sim[app]')",
        description="Start the local web app (Shiny for Python) and open it in the browser: edit a bundled or "
                    "uploaded scenario, look at its trajectories and natural history, run it with a progress bar, "
                    "plan the sample size, and export the scenario, the command line, the results and the report. "
                    "Stop it with Ctrl-C.")
    option(app, "--host", param="host", default=DEFAULT_HOST,
           help=f"address to listen on (default {DEFAULT_HOST}: this machine only)")
    option(app, "--port", param="port", type=int, default=DEFAULT_PORT,
           help=f"port to listen on (default {DEFAULT_PORT})")
    app.add_argument("--no-browser", action="store_true", help="do not open the browser")
    return parser


def _cohort_options(parser: argparse.ArgumentParser, example: str, children: int, json_detail: str) -> None:
    """Options shared by the commands that follow a simulated cohort: --set, --children, --seed, --plot, --json."""
    settings_option(parser, example)
    option(parser, "--children", param="n_children", type=int, default=None,
           help=f"children simulated (default {children})")
    option(parser, "--seed", param="seed", type=int, default=1, help="random seed (default 1)")
    plot_option(parser, "a figure")
    parser.add_argument("--json", action="store_true", help=f"print JSON{json_detail} instead of a table")


def _levels(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--gmfcs: expected levels 1-5 such as 2 or 1,2,3, got {text!r}") from None
    if not levels or any(g not in (1, 2, 3, 4, 5) for g in levels) or len(set(levels)) != len(levels):
        raise argparse.ArgumentTypeError(f"--gmfcs: expected distinct levels 1-5 such as 2 or 1,2,3, got {text!r}")
    return levels


def _age_range(text: str) -> tuple[float, float]:
    lo, sep, hi = text.partition(":")
    try:
        ages = (float(lo), float(hi))
    except ValueError:
        ages = ()
    if not sep or len(ages) != 2 or not 1.0 <= ages[0] <= ages[1] <= 21.0:
        raise argparse.ArgumentTypeError(f"expected A:B with 1 <= A <= B <= 21 years, got {text!r}")
    return ages


def _fractions(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0.5,1, got {text!r}") from None


def _shares(text: str) -> tuple[float, ...]:
    try:
        shares = tuple(float(x) for x in text.split(","))
    except ValueError:
        shares = ()
    if not shares or any(not (math.isfinite(x) and x >= 0.0) for x in shares) or sum(shares) <= 0.0:
        raise argparse.ArgumentTypeError(f"--mix: expected non-negative shares such as 0.3,0.3,0.4, got {text!r}")
    return shares


def _natural_history(args: argparse.Namespace) -> int:
    from cbcp_sim.io import plots

    scenario = load_scenario(args.scenario or default_scenario_path(), args.settings, args.effect)
    nh = scenario.natural_history
    n = centiles.DEFAULT_CHILDREN if args.children is None else args.children
    if not 100 <= n <= 10_000_000:
        raise ScenarioError("--children", f"must be in [100, 10000000], got {n}")
    if args.seed < 0:
        raise SettingsError("seed", f"must be a whole number >= 0, got {args.seed}")
    if (args.ages is None) == (args.enrol_ages is None):
        raise ScenarioError("natural-history", "give either --ages A:B (centiles) or --enrol-ages A:B with "
                                               "--follow-up MONTHS (natural change)")
    if args.ages is not None:
        if len(args.gmfcs) != 1 or args.follow_up is not None or args.mix is not None:
            raise ScenarioError("--ages", "takes one --gmfcs level and no --follow-up or --mix")
        ages = np.arange(math.ceil(args.ages[0]), math.floor(args.ages[1]) + 1, dtype=float)
        if ages.size == 0:
            raise ScenarioError("--ages", f"contains no whole year of age: {args.ages[0]:g}:{args.ages[1]:g}")
        rows = centiles.simulated_centiles(nh, args.gmfcs[0], ages, n_children=n, seed=args.seed)
        if args.plot:
            plots.centiles(nh, args.gmfcs[0], (ages[0], ages[-1]), args.plot, n_children=n, seed=args.seed)
        print(json.dumps(rows) if args.json else _table(rows))
        return 0
    if args.follow_up is None or not 0.0 < args.follow_up <= 240.0:
        raise ScenarioError("--follow-up", "must be given with --enrol-ages, in (0, 240] months")
    mix = np.ones(len(args.gmfcs)) if args.mix is None else np.asarray(args.mix)
    if mix.size != len(args.gmfcs):
        raise ScenarioError("--mix", f"must give {len(args.gmfcs)} shares, one per --gmfcs level, got {mix.size}")
    shares = np.zeros(5)
    shares[np.asarray(args.gmfcs) - 1] = mix / mix.sum()
    change = centiles.change_sample(nh, args.enrol_ages, shares, args.follow_up, n_children=n, seed=args.seed)
    out = {**centiles.change_summary(change), "enrol_ages": list(args.enrol_ages), "gmfcs": list(args.gmfcs),
           "mix": [float(shares[g - 1]) for g in args.gmfcs], "follow_up_months": args.follow_up,
           "trial_effect_per_year": nh.trial_effect_per_year, "n_children": n, "seed": args.seed}
    if args.plot:
        plots.natural_change(change, args.enrol_ages, args.follow_up, args.plot)
    print(json.dumps(out) if args.json else _change_text(out))
    return 0


def _table(rows: list[dict[str, float]]) -> str:
    lines = [f"GMFM-66 centiles, GMFCS level {rows[0]['gmfcs']} (simulated, no trial effect)",
             "  age" + "".join(f" {f'p{k}':>6}" for k in centiles.CENTILES)]
    lines += [f"  {r['age']:3.0f}" + "".join(f" {r[f'p{k}']:6.1f}" for k in centiles.CENTILES) for r in rows]
    return "\n".join(lines)


def _change_text(out: dict[str, Any]) -> str:
    levels = ", ".join(f"{g} ({m:.0%})" for g, m in zip(out["gmfcs"], out["mix"], strict=True))
    return "\n".join([
        f"Natural change in GMFM-66 over {out['follow_up_months']:g} months",
        f"  enrolled at ages {out['enrol_ages'][0]:g}-{out['enrol_ages'][1]:g} (uniform); GMFCS {levels}",
        f"  trial effect {out['trial_effect_per_year']:g} points/year; {out['n_children']:,} children; "
        f"seed {out['seed']}",
        f"  mean {out['change_mean']:.2f} (MCSE {out['mcse_mean']:.2f})  SD {out['change_sd']:.2f}",
        "  centiles  " + "  ".join(f"p{k} {out[f'p{k}']:.1f}" for k in centiles.CENTILES),
    ])


def _run(args: argparse.Namespace) -> int:
    from cbcp_sim.run.engine import simulate

    scenario = load_scenario(args.scenario or default_scenario_path(), args.settings, args.effect)
    result = simulate(scenario, settings=run_settings(args, args.reps), target_mcse=args.target_mcse, out=args.out)
    print(json.dumps(json_safe(result.to_json()), allow_nan=False) if args.json else result)
    return 0


def _scenarios(args: argparse.Namespace) -> int:
    from cbcp_sim.scenario.spec import bundled_scenarios

    rows = [{"name": name, "title": load_scenario(path).title, "path": str(path)}
            for name, path in bundled_scenarios().items()]
    if args.json:
        print(json.dumps(rows))
        return 0
    width = max(len(r["name"]) for r in rows)
    print("Bundled scenarios (e.g. `cbcp-sim run repeat_dose`, from any directory):")
    print("\n".join(f"  {r['name']:<{width}}  {r['title']}" for r in rows))
    return 0


def _trajectories(args: argparse.Namespace) -> int:
    from cbcp_sim.io import plots

    scenario = load_scenario(args.scenario or default_scenario_path(), args.settings, args.effect)
    if args.seed < 0:
        raise ScenarioError("--seed", f"must be a whole number >= 0, got {args.seed}")
    n = trajectories.DEFAULT_CHILDREN if args.children is None else args.children
    tr = trajectories.trajectories(scenario, n_children=n, seed=args.seed)
    if args.plot:
        plots.trajectories(tr, args.plot)
    print(json.dumps(json_safe(tr.to_json())) if args.json else trajectories.table(tr, scenario.design.visits))
    return 0


def _app(args: argparse.Namespace) -> int:
    from cbcp_sim.app import serve

    serve(args.host, args.port, open_browser=not args.no_browser)
    return 0


def _boundaries(args: argparse.Namespace) -> int:
    from cbcp_sim.scenario.boundaries import boundaries

    b = boundaries(args.info, alpha=args.alpha, spending=args.spending, futility=args.futility, binding=args.binding,
                   spending_parameter=args.parameter, sided=args.sided, early_end=True,
                   beta_spending=args.beta_spending, beta=args.beta, beta_spending_parameter=args.beta_parameter)
    if args.json:
        print(json.dumps(json_safe(b.to_json()), allow_nan=False))
        return 0
    futility = bool(args.futility) or b.beta_spent is not None
    spending = args.spending if args.parameter is None else f"{args.spending} ({args.parameter:g})"
    lines = [f"{spending} alpha spending, {'one' if b.sided == 1 else 'two'}-sided alpha {b.alpha:g}"
             + ("; symmetric bounds +/-critical_z" if b.sided == 2 else "")
             + (f"; {'binding' if b.binding else 'non-binding'} futility" if futility else "")
             + ("" if b.beta_spent is None else f" from {args.beta_spending} beta spending, beta {args.beta:g} at "
                                                 f"drift {b.drift:.4f}"),
             "  look  fraction  critical_z  alpha_spent  nominal_p" + ("  futility_z" if futility else "")]
    for k, t in enumerate(b.info):
        line = f"  {k + 1:>4}  {t:8.4g}  {b.critical_z[k]:10.4f}  {b.alpha_spent[k]:11.6f}  {b.nominal_p[k]:9.6f}"
        if futility:
            line += f"  {b.futility_z[k]:10.4f}" if np.isfinite(b.futility_z[k]) else "           -"
        lines.append(line)
    print("\n".join(lines))
    return 0


def _timeline(args: argparse.Namespace) -> int:
    from cbcp_sim.explore.timeline import timeline
    from cbcp_sim.io import plots

    scenario = load_scenario(args.scenario or default_scenario_path(), args.settings, args.effect)
    tl = timeline(scenario, run_settings(args, TIMELINE_REPS if args.reps is None else args.reps))
    if args.plot:
        plots.timeline(tl, args.plot)
    print(json.dumps(json_safe(tl.to_json()), allow_nan=False) if args.json else tl)
    return 0


def _params(args: argparse.Namespace) -> int:
    from cbcp_sim.scenario.provenance import resolved_values

    scenario = load_scenario(args.scenario or default_scenario_path(), args.settings, args.effect)
    rows = resolved_values(scenario)
    if args.json:
        print(json.dumps(json_safe([{k: r[k] for k in ("path", "value", "unit", "origin", "source")} for r in rows]),
                         allow_nan=False))
        return 0
    if args.markdown:
        print(f"Parameters of {scenario.heading}\n")
        print("| key | value | unit | origin | meaning | source |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            cells = (r["path"], _value_text(r["value"]), r["unit"], r["origin"], r["doc"], r["source"])
            print("| " + " | ".join(str(c).replace("|", "/").replace("\n", " ") for c in cells) + " |")
        return 0
    print(f"Parameters of {scenario.heading}")
    print("  (the citations in [brackets] are entries of docs/references.md)")
    for r in rows:
        print(f"{r['path']} = {_value_text(r['value'])} {r['unit']}".rstrip() + f"  [{r['origin']}]")
        source = f" Source: {r['source']}" if r["origin"] == "default" or r["origin"].startswith("preset") else ""
        print(f"    {r['doc']} Allowed: {r['allowed']}.{source}")
    return 0


def _value_text(value: Any) -> str:
    """A resolved value as printed: ``not set`` for an optional value left unset, numbers to 6 significant
    digits, lists and tables as JSON."""
    def short(v: Any) -> Any:
        if isinstance(v, float):
            return float(f"{v:.6g}")
        if isinstance(v, list | tuple):
            return [short(x) for x in v]
        if isinstance(v, dict):
            return {k: short(x) for k, x in v.items()}
        return v

    if value is None:
        return "not set"
    value = short(value)
    return json.dumps(value) if isinstance(value, list | dict) else f"{value:g}" if isinstance(value, float) else str(
        value)


#: Options whose value may be a comma-separated list starting with a minus sign.
SIGNED_LISTS = ("--futility",)


def _joined_negatives(argv: Sequence[str]) -> list[str]:
    """``--futility -0.5,0`` as ``--futility=-0.5,0``: argparse takes a list starting with ``-`` for an option."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in SIGNED_LISTS and re.fullmatch(r"-[\d.][\d.eE+,inf-]*|-inf.*", arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that a run stops as on Ctrl-C: its workers are shut down and the
    chunks finished are kept."""


def _discard(unraisable: object) -> None:
    """An error in a finaliser after a stop (a Dask client or a worker pool torn down mid-task) is not reported:
    the stop's one line is."""


def _terminate(signum: int, frame: object) -> NoReturn:
    sys.unraisablehook = _discard
    raise Terminated


def _interrupt(signum: int, frame: object) -> NoReturn:
    sys.unraisablehook = _discard
    raise KeyboardInterrupt


#: A stopped run leaves loky's resource tracker semaphores to clean up, which it does, with a warning per item:
#: the command line's output stays one line.
QUIET_TRACKER = "ignore:resource_tracker:UserWarning"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cbcp-sim`` console script; returns the exit status. A stop (Ctrl-C, SIGTERM) at any
    moment, the parser still being built included, is one line."""
    try:
        if threading.current_thread() is not threading.main_thread():
            return _main(argv)
        if QUIET_TRACKER not in sys.warnoptions:  # passed on to loky's resource tracker, started with our -W flags
            sys.warnoptions.append(QUIET_TRACKER)
        previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _terminate),
                    signal.SIGINT: signal.signal(signal.SIGINT, _interrupt)}
        try:
            return _main(argv)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    except Terminated:
        print("error: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:  # bare `cbcp-sim`: what it does and its commands (as pip does), not an error
        parser.print_help()
        return 0
    try:
        args = parser.parse_args(_joined_negatives(argv))
    except SystemExit as exc:  # --help (0) or a bad option (2, message already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return {"run": _run, "natural-history": _natural_history, "trajectories": _trajectories,
                "analyze": analyze.handle, "calibrate": cli_calibrate.handle, "boundaries": _boundaries,
                "timeline": _timeline, "trials": cli_trials.handle,
                "params": _params, "scenarios": _scenarios, "app": _app, **cli_planning.HANDLERS}[args.command](args)
    except InputError as exc:
        print(f"error: {printable(str(as_option(exc, args)))}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # output closed early, e.g. piped into `head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
