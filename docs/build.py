"""Regenerate the generated parts of the docs: parameter tables and model figures.

    python docs/build.py            # tables in docs/scenarios.md (every key) and the docs/ model pages
    python docs/build.py --figures  # also the figures in docs/figures/ (about 15 s)
    python docs/build.py --trials   # also the published trials' powers in docs/scenarios.md (about 2 minutes)

tests/test_docs.py fails when a table is out of date.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from cbcp_sim.scenario import Scenario
from cbcp_sim.scenario.schema import describe

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("path", "default", "allowed", "unit", "doc", "source")
#: Sections of the scenario documented on the natural-history page.
MODEL_SECTIONS = ("population.", "eligibility.", "natural_history.")
#: Sections documented on the treatment page.
TREATMENT_SECTIONS = ("treatment.", "arms.", "design.blinding")
#: Sections documented on the designs and analyses page (with the normal and multivariate normal outcome models).
DESIGN_SECTIONS = ("design.", "dropout.", "analysis.", "outcome.")
#: Sections documented on the operations and interim-analyses page.
OPERATIONS_SECTIONS = ("operations.", "sequential.")
#: Sections documented on the planning page.
PLANNING_SECTIONS = ("assurance.", "sensitivity.")
#: The page that documents every scenario key and the published trials' powers.
SCENARIOS_PAGE = "docs/scenarios.md"
#: The published trials as scenarios, in that page's order, and the simulated trials behind its figures.
TRIALS = ("lee2012_single_arm", "nguyen2017_bmmnc_two_doses", "pla_ucmsc_courses", "sun2017_duke_crossover",
          "royan_pooled_three_arm", "repeat_dose", "hybrid_control")
TRIAL_REPS, TRIAL_SEED = 10_000, 1
PAGES = ((SCENARIOS_PAGE, ("",)), ("docs/natural_history.md", MODEL_SECTIONS),
         ("docs/treatment.md", TREATMENT_SECTIONS), ("docs/designs.md", DESIGN_SECTIONS),
         ("docs/operations.md", OPERATIONS_SECTIONS), ("docs/planning.md", PLANNING_SECTIONS),
         ("docs/bayes.md", ("bayes.",)))


def table(prefixes: tuple[str, ...] = ("",)) -> str:
    """Markdown table of the scenario parameters whose path starts with one of ``prefixes``."""
    rows = [r for r in describe(Scenario) if r["path"].startswith(prefixes)]
    lines = ["| key | default | allowed | unit | meaning | source |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r[k].replace("|", "/") for k in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def presets_table() -> str:
    """Markdown table of the cell-product presets."""
    from cbcp_sim.scenario.products import PRESETS

    lines = ["| cells | dose-response | emax | ed50 | hill | threshold | onset (months) | peak (months) | "
             "half-life (months) | persistent | retained at 12 months |", "|---|" + "---|" * 10]
    for name, p in PRESETS.items():
        retained = p["persistent_fraction"] + (1 - p["persistent_fraction"]) * 0.5 ** (
            (12.0 - p["peak_months"]) / p["waning_half_life_months"])
        lines.append(f"| {name} | {p['model']} | {p['emax']:g} | {p['ed50']:g} | {p['hill']:g} | {p['threshold']:g} | "
                     f"{p['onset_months']:g} | {p['peak_months']:g} | {p['waning_half_life_months']:.2f} | "
                     f"{p['persistent_fraction']:g} | {retained:.3f} |")
    return "\n".join(lines)


def trial_results(name: str, reps: int) -> dict[str, list[dict[str, Any]]]:
    """Rows of the primary analysis's main comparisons of scenario ``name`` under each of its effects."""
    from cbcp_sim import load_scenario, simulate

    path = ROOT / "scenarios" / f"{name}.toml"
    return {effect: [r for r in simulate(load_scenario(path, effect=effect), reps=reps, seed=TRIAL_SEED).rows
                     if r["role"] == "primary"]
            for effect, _ in load_scenario(path).effects}


def _by_arm(rows: list[dict[str, Any]], key: str) -> str:
    """``arm 0.73`` per comparison (the active arm named), joined by ``; ``."""
    return "; ".join(f"{r['comparison'].split(' vs ')[0]} {r[key]:.2f}" for r in rows)


def trials_table(reps: int = TRIAL_REPS) -> str:
    """Markdown table: each published trial's scenario, its primary analysis, and power under the effect it
    reported and under the pooled evidence, with the type I error (no cell effect)."""
    from cbcp_sim import load_scenario

    lines = ["| scenario | the trial as run | primary analysis | power, reported effect | power, pooled effect | "
             "type I error |", "|---|---|---|---|---|---|"]
    for name in TRIALS:
        results = trial_results(name, reps)
        scenario = load_scenario(ROOT / "scenarios" / f"{name}.toml")
        lines.append(f"| `{name}.toml` | {scenario.title} | {scenario.analysis.primary} | "
                     f"{_by_arm(results['reported'], 'power')} | {_by_arm(results['pooled'], 'power')} | "
                     f"{_by_arm(results['reported'], 'type1_error')} |")
    return "\n".join(lines)


def replace_block(text: str, name: str, body: str) -> str:
    """Replace what lies between ``<!-- name:start -->`` and ``<!-- name:end -->``."""
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"markers <!-- {name}:start/end --> not found")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figures", action="store_true", help="also redraw the natural-history figures")
    parser.add_argument("--trials", action="store_true", help="also simulate the published trials' scenarios")
    args = parser.parse_args()
    for page, prefixes in PAGES:
        path = ROOT / page
        path.write_text(replace_block(path.read_text(), "params", table(prefixes)))
    page = ROOT / "docs" / "treatment.md"
    page.write_text(replace_block(page.read_text(), "presets", presets_table()))
    if args.trials:
        page = ROOT / SCENARIOS_PAGE
        page.write_text(replace_block(page.read_text(), "trials", trials_table()))
    if args.figures:
        from cbcp_sim.explore.trajectories import trajectories
        from cbcp_sim.io import plots
        from cbcp_sim.scenario import NaturalHistory, load_scenario, scenario_from_dict

        figures = ROOT / "docs" / "figures"
        for g in range(1, 6):
            plots.centiles(NaturalHistory(), g, (1.0, 21.0), figures / f"natural_history_gmfcs{g}.png")
        courses = [scenario_from_dict({}, {"treatment.cells": c}).regimens[1].doses[0].course
                   for c in ("UCB-MNC", "UCB-durable", "UCT-MSC", "BM-MNC")]
        plots.time_courses(courses, figures / "treatment_time_courses.png")
        for name in ("default", "royan_pooled_three_arm"):
            scenario = load_scenario(ROOT / "scenarios" / f"{name}.toml")
            plots.trajectories(trajectories(scenario, n_children=20_000), figures / f"trajectories_{name}.png")


if __name__ == "__main__":
    main()
