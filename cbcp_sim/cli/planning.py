"""Command line of the planning commands: sweeps, sample size, assurance, sensitivity, and the HTML report.

- ``cbcp-sim sweep [SCENARIO] --grid PATH=A:B:STEP --grid PATH=V1,V2 [--points FILE] --out DIR``
- ``cbcp-sim sample-size [SCENARIO] --target 0.8 [--json]``
- ``cbcp-sim assurance [SCENARIO] [--prior PATH=normal(M, SD) ...] [--json]``
- ``cbcp-sim sensitivity [SCENARIO] [--range PATH=LOW:HIGH ...] [--json]``
- ``cbcp-sim calibrate-go [SCENARIO] [--alpha A] [--drifts D ...] [--json]``
- ``cbcp-sim report DIR [--out FILE.html]``
- ``cbcp-sim mmrm-power --delta 0.5 --power 0.8 --correlation cs:0.25 --ra 1,0.9,0.8,0.7 [--json]``
- ``cbcp-sim dose-power --doses 0,1,2,4,8 --models emax:1,linear --max-effect 3 --sd 5.5 --n 20 [--json]``
- ``cbcp-sim dose-compare [SCENARIO] [--n N] [--reps N] [--target 0.8] [--max-total N] [--json]``

Each takes ``--seed``, ``--jobs`` (default all cores), ``--backend loky|dask`` and ``--address``; with
``--out DIR`` every finished chunk is saved there and the same command resumes an interrupted run.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cbcp_sim.cli.options import (
    SCENARIO_HELP,
    execution_options,
    option,
    plot_option,
    reps_option,
    run_settings,
    settings_option,
)
from cbcp_sim.errors import InputError
from cbcp_sim.run.store import json_safe
from cbcp_sim.scenario import default_scenario_path, load_scenario

ALL_CORES = -1


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add the planning commands to the ``cbcp-sim`` subcommands."""
    sw = sub.add_parser(
        "sweep", help="run a scenario over a grid of values: power and more per point, saved as it goes",
        description="Run the scenario at every point of a grid (the product of the --grid axes, and of the rows of "
                    "--points), with the same seed at every point (common random numbers), and write DIR/results.csv: "
                    "one row per point x analysis with the point's values, power, MCSE, 95% interval, type I "
                    "error, bias, RMSE and coverage. Every finished chunk is saved in DIR; the same command resumes "
                    "an interrupted sweep and refuses a DIR that holds another sweep.")
    sw.add_argument("scenario", nargs="?", help=SCENARIO_HELP)
    option(sw, "--grid", param="grid", action="append", default=[], metavar="PATH=A:B:STEP|PATH=V1,V2",
           help="an axis: a range (stop included) or a list of values, e.g. design.n_per_arm=20:120:10 "
                "(children per arm) or treatment.cells=\"UCB-MNC\",\"UCB-durable\" (repeatable)")
    option(sw, "--points", param="points", metavar="FILE.csv",
           help="a CSV file of points: a header of dotted paths, a row each")
    reps_option(sw, "simulated trials per point")
    option(sw, "--out", param="out", required=True, metavar="DIR",
           help="directory of the sweep (created; resumed if it holds the same sweep)")
    option(sw, "--parquet", param="parquet", action="store_true",
           help="also write DIR/results.parquet (needs pyarrow)")
    plot_option(sw, "power curves over the first numeric axis")
    sw.add_argument("--target", type=float, default=None, help="draw a target power line on the plot")
    _common(sw, "sensitivity.reps=1000")

    ss = sub.add_parser(
        "sample-size", help="the smallest n per arm that reaches a target power",
        description="Search the children per arm (in the scenario's allocation) for the smallest number whose "
                    "power for the primary analysis reaches --target: bracket and bisect at 2000 trials, then fit "
                    "a probit power curve in sqrt(n) to simulations at --reps around the crossing (common random "
                    "numbers throughout). Prints n_per_arm, the simulated power there with its MCSE, and the curve.")
    ss.add_argument("scenario", nargs="?", help="scenario TOML file (default: scenarios/default.toml)")
    option(ss, "--target", param="target", type=float, default=0.8, help="target power (default 0.8)")
    reps_option(ss, "simulated trials per size near the answer")
    option(ss, "--max-n", param="max_n", type=int, default=None,
           help="largest children per arm searched (default 2000)")
    _outputs(ss, "power curve around the answer")
    _common(ss, "outcome.effect=2")

    asr = sub.add_parser(
        "assurance", help="probability of success: power averaged over priors of uncertain values",
        description="Draw the uncertain values from their priors ([assurance.priors.\"PATH\"] in the scenario, or "
                    "--prior), simulate --reps-per-draw trials at each draw, and report the share that succeed "
                    "(O'Hagan et al. 2005), with its MCSE and the spread of power over the draws.")
    asr.add_argument("scenario", nargs="?", help="scenario TOML file (default: scenarios/default.toml)")
    option(asr, "--prior", param="assurance.priors", action="append", default=[], metavar="PATH=DIST(...)",
           help="a prior: normal(mean, sd), lognormal(meanlog, sdlog), uniform(low, high), point(value) or "
                "file(draws.csv[, column]); lower=/upper= truncate, e.g. outcome.effect=normal(3, 1.5, "
                "lower=0) (repeatable; replaces the scenario's prior of that path)")
    option(asr, "--draws", param="assurance.draws", type=int, default=None,
           help="prior draws (default assurance.draws, 200)")
    option(asr, "--reps-per-draw", param="assurance.reps_per_draw", type=int, default=None,
           help="trials per draw (default assurance.reps_per_draw, 100)")
    _outputs(asr, "histogram of power over the draws")
    _common(asr, "design.n_per_arm=60")

    se = sub.add_parser(
        "sensitivity", help="which assumptions move power most: tornado and Latin-hypercube ranking",
        description="One at a time: power at the low and the high end of each range ([sensitivity.ranges] in the "
                    "scenario, or --range), the others as given, ranked by swing. Global: power at --samples "
                    "Latin-hypercube points over all ranges, ranked by partial rank correlation (PRCC).")
    se.add_argument("scenario", nargs="?", help="scenario TOML file (default: scenarios/default.toml)")
    option(se, "--range", param="sensitivity.ranges", dest="ranges", action="append", default=[],
           metavar="PATH=LOW:HIGH", help="a range, e.g. treatment.waning_half_life_months=3:24 (repeatable; "
                                         "replaces the scenario's range of that path)")
    option(se, "--samples", param="sensitivity.samples", type=int, default=None,
           help="Latin-hypercube points (default sensitivity.samples, 50; 0: one at a time only)")
    option(se, "--reps", param="sensitivity.reps", type=int, default=None,
           help="trials per point (default sensitivity.reps, 2000)")
    _outputs(se, "tornado chart")
    _common(se, "design.n_per_arm=60")

    cg = sub.add_parser(
        "calibrate-go", help="the smallest Bayesian GO probability with type I error at most alpha at every drift",
        description="Simulate the scenario (which has a [bayes] section) once and find the smallest "
                    "bayes.go_probability whose P(GO) under no effect is at most --alpha at every drift of --drifts "
                    "(all decided on the same trials); print it with the type I error and P(GO) at each drift.")
    cg.add_argument("scenario", nargs="?", help=SCENARIO_HELP)
    option(cg, "--alpha", param="alpha", type=float, default=None,
           help="largest type I error, one-sided (default design.alpha / design.sides)")
    option(cg, "--drifts", param="drifts", type=float, nargs="+", default=None, metavar="D",
           help="drifts of the control prior, points (default bayes.drift), e.g. --drifts -3 -1.5 0 1.5 3")
    reps_option(cg, "simulated trials")
    cg.add_argument("--json", action="store_true", help="print one JSON object instead of the text")
    execution_options(cg, ALL_CORES)
    settings_option(cg, "bayes.control_robust_weight=0.2")

    mp = sub.add_parser(
        "mmrm-power", help="analytic MMRM power, sample size or effect with dropout (Lu et al. 2008, longpower)",
        description="Solve for the one of --N, --delta and --power left out, by the formula of Lu, Luo and Chen (2008) "
                    "for an MMRM comparison at the last visit with monotone dropout, as R longpower's power.mmrm "
                    "(same argument names). No simulation: an answer in milliseconds.")
    option(mp, "--N", param="N", type=float, default=None, help="children in total (both groups)")
    option(mp, "--delta", param="delta", type=float, default=None,
           help="difference in means at the last visit, in the units of --sigmaa")
    option(mp, "--power", param="power", type=float, default=None, help="power, e.g. 0.8")
    option(mp, "--sig-level", param="sig_level", type=float, default=0.05, help="type I error (default 0.05)")
    option(mp, "--Ra", param="Ra", default=None, metavar="MATRIX",
           help="correlation of the post-baseline visits as a nested JSON or TOML list, e.g. [[1,0.5],[0.5,1]]")
    option(mp, "--correlation", param="correlation", default=None, metavar="cs:RHO|ar1:RHO",
           help="instead of --Ra: exchangeable (cs) or AR(1) correlation over --visits visits")
    option(mp, "--visits", param="visits", type=int, default=None,
           help="post-baseline visits for --correlation (default: as many as --ra lists)")
    option(mp, "--ra", param="ra", required=True, metavar="R1,R2,...",
           help="retention (share of children observed) at each post-baseline visit, non-increasing, e.g. "
                "1,0.9,0.8,0.7")
    option(mp, "--sigmaa", param="sigmaa", type=float, default=1.0,
           help="SD at the last visit (default 1: --delta in SD units)")
    option(mp, "--Rb", param="Rb", default=None, metavar="MATRIX", help="group b's correlation (default --Ra's)")
    option(mp, "--rb", param="rb", default=None, metavar="R1,R2,...", help="group b's retention (default --ra)")
    option(mp, "--sigmab", param="sigmab", type=float, default=None,
           help="group b's SD at the last visit; given, the mean of --sigmaa and --sigmab is used (as longpower)")
    option(mp, "--lambda", param="lambda_", dest="lambda_", type=float, default=1.0,
           help="allocation ratio n1 / n2 (default 1)")
    option(mp, "--alternative", param="alternative", default="two.sided", choices=("two.sided", "one.sided"),
           help="two.sided (default) or one.sided")
    option(mp, "--test", param="test", default="z", choices=("z", "t"),
           help="z (Lu et al., longpower; default) or t (t quantiles with N - 2 df)")
    mp.add_argument("--json", action="store_true", help="print one JSON object instead of the text")

    dp = sub.add_parser(
        "dose-power", help="analytic power and sample size of MCP-Mod's dose-response test (DoseFinding powMCT)",
        description="Optimal contrasts, the critical value and the power of MCP-Mod's multiple contrast test for a "
                    "parallel dose-finding design (one-way ANOVA, one-sided), as R DoseFinding's optContr, critVal, "
                    "powMCT and sampSizeMCT. No simulation.")
    option(dp, "--doses", param="doses", required=True, metavar="D0,D1,...",
           help="the doses, placebo 0 first, ascending, e.g. 0,1,2,4,8")
    option(dp, "--models", param="models", required=True, metavar="NAME:PARAMS,...",
           help="candidate shapes in DoseFinding's names and parameter order, e.g. "
                "\"emax:1,emax:4,sigEmax:3:3,exponential:4,linear\"")
    option(dp, "--placebo-effect", param="placebo_effect", type=float, default=0.0,
           help="mean response on placebo (default 0)")
    option(dp, "--max-effect", param="max_effect", type=float, required=True,
           help="each model's effect over placebo at the largest dose, for its power (GMFM-66 points)")
    option(dp, "--sd", param="sigma", type=float, required=True, help="SD within a dose group (GMFM-66 points)")
    option(dp, "--n", param="n", required=True, metavar="N|N0,N1,...",
           help="children per dose: one number or one per dose")
    option(dp, "--alpha", param="alpha", type=float, default=0.025, help="one-sided level (default 0.025)")
    option(dp, "--allocation", param="allocation", default=None, metavar="W0,W1,...",
           help="relative group sizes for --target-power (default equal)")
    option(dp, "--target-power", param="target_power", type=float, default=None,
           help="also the smallest n per dose whose power reaches this, e.g. 0.8")
    option(dp, "--criterion", param="criterion", default="min", choices=("min", "mean"),
           help="with --target-power: every model's power (min, default) or their mean (DoseFinding's default)")
    dp.add_argument("--json", action="store_true", help="print one JSON object instead of the text")

    dc = sub.add_parser(
        "dose-compare", help="randomised doses or natural variation: a dose design and an autologous design of the "
                             "same size on the same children, and the children each needs to find the dose",
        description="Simulate a randomised dose design analysed by MCP-Mod (default: allogeneic_three_doses) and "
                    "the autologous natural-variation design of the same size (its placebo arm, and one arm of "
                    "children given their own unit's dose, analysed by the adjusted dose slope) with one seed, so "
                    "the placebo children and the first treated children are the same; print each design's power "
                    "to detect a dose-response, the bias of its dose estimate (TD or slope) and the total children "
                    "at which that power reaches --target (docs/dose.md).")
    dc.add_argument("scenario", nargs="?", help="the randomised dose design, with analysis.dose_response_models "
                                                "(default: the bundled allogeneic_three_doses)")
    option(dc, "--n", param="n", type=int, default=None, help="children per arm of the randomised design (default "
                                                              "the scenario's)")
    reps_option(dc, "simulated trials per design and size", 200)
    option(dc, "--target", param="target", type=float, default=0.8,
           help="the power whose total children are searched (default 0.8); 0: no search")
    option(dc, "--max-total", param="max_total", type=int, default=None,
           help="largest total children searched (default 4000)")
    dc.add_argument("--json", action="store_true", help="print one JSON object instead of the text")
    execution_options(dc, ALL_CORES)
    settings_option(dc, "treatment.dose_response.emax=6")

    rp = sub.add_parser(
        "report", help="one self-contained HTML page of a run, sweep, sample size, assurance or sensitivity",
        description="Write an HTML page with the tables and embedded figures of a directory written by "
                    "run --out, sweep, sample-size --out, assurance --out or sensitivity --out.")
    rp.add_argument("directory", metavar="DIR", help="the directory of the run or sweep")
    option(rp, "--out", param="out", metavar="FILE.html", help="where to write the page (default DIR/report.html)")


def _common(parser: argparse.ArgumentParser, example: str) -> None:
    execution_options(parser, ALL_CORES)
    settings_option(parser, example)
    option(parser, "--comparison", param="comparison", metavar="LABEL",
           help="the comparison powered, by its label as `run` prints it, e.g. \"two doses vs sham\" (default: the "
                "first comparison; with interim looks only the first is monitored)")


def _outputs(parser: argparse.ArgumentParser, figure: str) -> None:
    option(parser, "--out", param="out", metavar="DIR",
           help="save every finished chunk and the result in DIR (resumable; for `cbcp-sim report`)")
    plot_option(parser, f"a {figure}")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the text summary")


def _check_plot(args: argparse.Namespace) -> None:
    """A figure's file name checked before the work, not after it."""
    if getattr(args, "plot", None):
        from cbcp_sim.io.plots import check_figure_path

        check_figure_path(args.plot)


def _sweep(args: argparse.Namespace) -> int:
    from cbcp_sim.planning import sweep as sw
    from cbcp_sim.run.result import endpoint_text, estimand, scenario_comparison

    base = load_scenario(args.scenario or default_scenario_path(), args.settings, args.effect)
    axes = [sw.parse_axis(text) for text in args.grid]
    listed = sw.read_points(args.points) if args.points else []
    points = sw.grid_points(axes, listed)
    settings = run_settings(args, args.reps)
    _check_plot(args)
    if args.plot and not any(_numeric_axis(points, path) for path in points[0]):
        raise InputError("path", "power curves need a numeric axis (e.g. --grid design.n_per_arm=20:80:10)")
    if args.comparison is not None:
        scenario_comparison(base, args.comparison, monitored=False)  # refused before the work, not after it
    result = sw.sweep(base, points, settings, out=args.out, parquet=args.parquet,
                      source="grid" if args.grid else "points")
    primary = result.power_rows(args.comparison)
    if args.plot:
        from cbcp_sim.io import plots

        plots.power_curves(primary, plots.curve_axis(primary), args.plot, target=args.target,
                           analysis=None if args.comparison is None else base.analyses[0], heading=base.heading)
    several = primary["comparison"].nunique() > 1
    shown = primary[[*result.paths, *(["comparison"] if several else []), "power", "mcse", "ci_low", "ci_high",
                     "type1_error", "bias"]]
    analysis = base.analyses[0]
    print(f"{base.heading}\n  {len(points)} points x {settings.reps:,} trials; seed {result.seed}; "
          f"table in {Path(args.out) / 'results.csv'}")
    print(f"  {analysis}, " + ("every arm comparison" if several else f"comparison {primary['comparison'].iloc[0]}")
          + f": {estimand(base, analysis)}\n  endpoint {endpoint_text(base)}")
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def _numeric_axis(points: list[dict[str, Any]], path: str) -> bool:
    """Whether ``path`` takes several numeric values over the points: a column power curves can be drawn over
    (as :func:`cbcp_sim.io.plots.curve_axis` finds it in the table)."""
    values = [p[path] for p in points]
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values) and len(set(values)) > 1


def _finish(args: argparse.Namespace, result: Any, plot: Callable[[], None]) -> int:
    """Draw the figure, print text or JSON."""
    if args.plot:
        plot()
    print(json.dumps(json_safe(result.to_json()), allow_nan=False) if args.json else result)
    return 0


def _sample_size(args: argparse.Namespace) -> int:
    from cbcp_sim.io import plots
    from cbcp_sim.planning.sample_size import DEFAULT_MAX_N, sample_size

    scenario = load_scenario(args.scenario or default_scenario_path(), args.settings, args.effect)
    settings = run_settings(args, args.reps)
    _check_plot(args)
    result = sample_size(scenario, args.target, settings, max_n=DEFAULT_MAX_N if args.max_n is None else args.max_n,
                         out=args.out, comparison=args.comparison)
    return _finish(args, result, lambda: plots.sample_size(json_safe(result.to_json()), args.plot))


def _assurance(args: argparse.Namespace) -> int:
    from cbcp_sim.io import plots
    from cbcp_sim.planning.assurance import assurance
    from cbcp_sim.scenario.priors import parse_prior

    scenario = load_scenario(args.scenario or default_scenario_path(), args.settings, args.effect)
    overrides: list[tuple[str, Any]] = [(f'assurance.priors."{path}"', prior)
                                        for path, prior in map(parse_prior, args.prior)]
    overrides += [(f"assurance.{k}", v) for k, v in (("draws", args.draws), ("reps_per_draw", args.reps_per_draw))
                  if v is not None]
    scenario = scenario.replace(overrides)  # the scenario's own values were checked when it was read
    settings = run_settings(args)
    _check_plot(args)
    result = assurance(scenario, settings, out=args.out, comparison=args.comparison)
    return _finish(args, result, lambda: plots.assurance(result.table, json_safe(result.to_json()), args.plot))


def _sensitivity(args: argparse.Namespace) -> int:
    from cbcp_sim.io import plots
    from cbcp_sim.planning.sensitivity import sensitivity

    scenario = load_scenario(args.scenario or default_scenario_path(), args.settings, args.effect)
    overrides: list[tuple[str, Any]] = [(f'sensitivity.ranges."{path}"', [low, high])
                                        for path, low, high in map(_range, args.ranges)]
    overrides += [(f"sensitivity.{k}", v) for k, v in (("samples", args.samples), ("reps", args.reps))
                  if v is not None]
    scenario = scenario.replace(overrides)  # the scenario's own values were checked when it was read
    settings = run_settings(args)
    _check_plot(args)
    result = sensitivity(scenario, settings, out=args.out, comparison=args.comparison)
    return _finish(args, result, lambda: plots.tornado(json_safe(result.to_json()), args.plot))


def _calibrate_go(args: argparse.Namespace) -> int:
    from cbcp_sim.planning.go_calibration import calibrate_go

    scenario = load_scenario(args.scenario or default_scenario_path(), args.settings, args.effect)
    alpha = scenario.design.alpha / scenario.design.sides if args.alpha is None else args.alpha
    result = calibrate_go(scenario, alpha, args.drifts, settings=run_settings(args, args.reps))
    print(json.dumps(json_safe(result.to_json()), allow_nan=False) if args.json else result)
    return 0


def _range(text: str) -> tuple[str, float, float]:
    from cbcp_sim.scenario.schema import DOTTED

    path, sep, spec = text.partition("=")
    low, colon, high = spec.partition(":")
    try:
        if not sep or not colon or not DOTTED.fullmatch(path.strip()):
            raise ValueError
        return path.strip(), float(low), float(high)
    except ValueError:
        raise InputError("sensitivity.ranges", f"expected path=low:high, e.g. dropout.fraction=0:0.2, got "
                                               f"{text!r}") from None


def _mmrm_power(args: argparse.Namespace) -> int:
    from cbcp_sim.planning.mmrm_power import correlation_matrix, mmrm_power

    if [args.N, args.delta, args.power].count(None) != 1:
        raise InputError("--N", "give exactly two of --N, --delta and --power: the third is solved for")
    ra = _numbers("--ra", args.ra)
    if (args.Ra is None) == (args.correlation is None):
        raise InputError("--Ra", "give the correlation of the visits either as --Ra MATRIX or as --correlation "
                                 "cs:RHO|ar1:RHO (one of them)")
    if args.visits is not None and args.correlation is None:
        raise InputError("--visits", "goes with --correlation (--Ra gives its own number of visits)")
    if args.correlation is not None:
        structure, colon, rho = args.correlation.partition(":")
        try:
            value = float(rho)
        except ValueError:
            value = None
        if not colon or value is None:
            raise InputError("--correlation", f"expected cs:RHO or ar1:RHO, e.g. cs:0.25, got {args.correlation!r}")
        Ra = correlation_matrix(structure.strip(), value, len(ra) if args.visits is None else args.visits)
    else:
        Ra = _matrix("--Ra", args.Ra)
    result = mmrm_power(args.N, args.delta, args.power, args.sig_level, Ra=Ra, ra=ra, sigmaa=args.sigmaa,
                        Rb=None if args.Rb is None else _matrix("--Rb", args.Rb),
                        rb=None if args.rb is None else _numbers("--rb", args.rb), sigmab=args.sigmab,
                        lambda_=args.lambda_, alternative=args.alternative, test=args.test)
    print(json.dumps(json_safe(result.to_json()), allow_nan=False) if args.json else result)
    return 0


def _dose_power(args: argparse.Namespace) -> int:
    from cbcp_sim.planning.dose_power import dose_power

    n = _numbers("--n", args.n)
    result = dose_power(_numbers("--doses", args.doses), args.models, sigma=args.sd, n=n[0] if len(n) == 1 else n,
                        max_effect=args.max_effect, placebo_effect=args.placebo_effect, alpha=args.alpha,
                        allocation=None if args.allocation is None else _numbers("--allocation", args.allocation),
                        target_power=args.target_power, criterion=args.criterion)
    print(json.dumps(json_safe(result.to_json()), allow_nan=False) if args.json else result)
    return 0


def _dose_compare(args: argparse.Namespace) -> int:
    from cbcp_sim.planning.dose_compare import DEFAULT_COMPARE_REPS, DEFAULT_DESIGN, DEFAULT_MAX_TOTAL, dose_compare

    scenario = load_scenario(args.scenario or DEFAULT_DESIGN, args.settings, args.effect)
    settings = run_settings(args, DEFAULT_COMPARE_REPS if args.reps is None else args.reps)
    result = dose_compare(args.n, settings, scenario=scenario,
                          target=args.target or None,
                          max_total=DEFAULT_MAX_TOTAL if args.max_total is None else args.max_total)
    print(json.dumps(json_safe(result.to_json()), allow_nan=False) if args.json else result)
    return 0


def _numbers(flag: str, text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise InputError(flag, f"expected numbers separated by commas, e.g. 1,0.9,0.8, got {text!r}") from None


def _matrix(flag: str, text: str) -> Any:
    """A nested list written as JSON (``[[1, 0.5], [0.5, 1]]``) or as a TOML array."""
    import tomllib

    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        raise InputError(flag, f"expected a matrix as a nested list, e.g. [[1, 0.5], [0.5, 1]], got {text!r}") \
            from None


def _report(args: argparse.Namespace) -> int:
    from cbcp_sim.io.report import report

    path = report(args.directory, args.out)
    print(f"wrote {path}")
    return 0


HANDLERS = {"sweep": _sweep, "sample-size": _sample_size, "assurance": _assurance, "sensitivity": _sensitivity,
            "calibrate-go": _calibrate_go, "mmrm-power": _mmrm_power, "dose-power": _dose_power,
            "dose-compare": _dose_compare,
            "report": _report}
