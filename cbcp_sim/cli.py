"""Command line: ``cbcp-sim run [SCENARIO] [--reps N] [--seed S] [--jobs J] [--json] [--set path=value ...]``.

Bad input (a scenario value, a file, an option) prints one line ``error: <field>: <what is allowed>``
to stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from cbcp_sim.errors import ScenarioError
from cbcp_sim.scenario import default_scenario_path, load_scenario, parse_value

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {self.prog}: {message}\n")


def _setting(text: str) -> tuple[str, Any]:
    path, sep, value = text.partition("=")
    if not sep or not path.strip():
        raise argparse.ArgumentTypeError(f"expected dotted.path=value, got {text!r}")
    return path.strip(), parse_value(value.strip())


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cbcp-sim", description="Trial-design simulation for cell therapy in cerebral palsy.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="simulate a scenario: power, type I error, bias",
                         description="Simulate a scenario and report power (with MCSE and 95%% interval), "
                                     "type I error under no effect, mean estimate and bias.")
    run.add_argument("scenario", nargs="?", help="scenario TOML file (default: scenarios/default.toml)")
    run.add_argument("--reps", type=int, default=None, help="simulated trials (default 10000)")
    run.add_argument("--seed", type=int, default=None, help="random seed (default 1)")
    run.add_argument("--jobs", type=int, default=1, help="parallel jobs over chunks; -1 = all cores (default 1)")
    run.add_argument("--target-mcse", type=float, default=None,
                     help="stop once the Monte Carlo SE of power is at most this (--reps is then the maximum)")
    run.add_argument("--set", dest="settings", action="append", type=_setting, default=[], metavar="PATH=VALUE",
                     help="override a scenario value by dotted path, e.g. design.n_per_arm=40 (repeatable)")
    run.add_argument("--json", action="store_true", help="print one JSON object instead of the text summary")
    params = sub.add_parser("params", help="list every scenario parameter with its default and source")
    params.add_argument("--markdown", action="store_true", help="as a Markdown table")
    return parser


def _run(args: argparse.Namespace) -> int:
    from cbcp_sim.engine import DEFAULT_REPS, DEFAULT_SEED, simulate

    path = args.scenario or default_scenario_path()
    scenario = load_scenario(path, args.settings)
    result = simulate(scenario, reps=DEFAULT_REPS if args.reps is None else args.reps,
                      seed=DEFAULT_SEED if args.seed is None else args.seed, jobs=args.jobs,
                      target_mcse=args.target_mcse)
    if args.json:
        print(json.dumps(_json_safe(result.to_json()), allow_nan=False))
    else:
        print(result)
    return 0


def _json_safe(value: Any) -> Any:
    """Plain JSON values; NaN and infinities (e.g. an MCSE from one replicate) become null."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _params(args: argparse.Namespace) -> int:
    from cbcp_sim.scenario import Scenario
    from cbcp_sim.schema import describe

    rows = describe(Scenario)
    if args.markdown:
        print("| key | default | allowed | unit | meaning | source |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print("| " + " | ".join(r[k].replace("|", "/") for k in
                                    ("path", "default", "allowed", "unit", "doc", "source")) + " |")
    else:
        for r in rows:
            print(f"{r['path']} = {r['default']} {r['unit']}".rstrip())
            print(f"    {r['doc']} Allowed: {r['allowed']}. Source: {r['source']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cbcp-sim`` console script; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad option (2, message already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return {"run": _run, "params": _params}[args.command](args)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output closed early, e.g. piped into `head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1



if __name__ == "__main__":
    sys.exit(main())
