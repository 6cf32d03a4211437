"""Regenerate the generated parts of the docs: parameter tables and model figures.

    python docs/build.py            # tables in README.md and the docs/ model pages
    python docs/build.py --figures  # also the figures in docs/figures/ (about 15 s)

tests/test_docs.py fails when a table is out of date.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from cbcp_sim.scenario import Scenario
from cbcp_sim.schema import describe

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("path", "default", "allowed", "unit", "doc", "source")
#: Sections of the scenario documented on the natural-history page.
MODEL_SECTIONS = ("population.", "eligibility.", "natural_history.")
#: Sections documented on the treatment page.
TREATMENT_SECTIONS = ("treatment.", "arms.", "design.blinding")
#: Sections documented on the designs and analyses page.
DESIGN_SECTIONS = ("design.", "dropout.", "analysis.")
#: Sections documented on the operations and interim-analyses page.
OPERATIONS_SECTIONS = ("operations.", "sequential.")
#: Sections documented on the planning page.
PLANNING_SECTIONS = ("assurance.", "sensitivity.")
PAGES = (("README.md", ("",)), ("docs/natural_history.md", MODEL_SECTIONS), ("docs/treatment.md", TREATMENT_SECTIONS),
         ("docs/designs.md", DESIGN_SECTIONS), ("docs/operations.md", OPERATIONS_SECTIONS),
         ("docs/planning.md", PLANNING_SECTIONS))


def table(prefixes: tuple[str, ...] = ("",)) -> str:
    """Markdown table of the scenario parameters whose path starts with one of ``prefixes``."""
    rows = [r for r in describe(Scenario) if r["path"].startswith(prefixes)]
    lines = ["| key | default | allowed | unit | meaning | source |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r[k].replace("|", "/") for k in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def presets_table() -> str:
    """Markdown table of the cell-product presets."""
    from cbcp_sim.cells import PRESETS

    lines = ["| cells | dose-response | emax | ed50 | hill | threshold | onset (months) | peak (months) | "
             "half-life (months) | persistent | retained at 12 months |", "|---|" + "---|" * 10]
    for name, p in PRESETS.items():
        retained = p["persistent_fraction"] + (1 - p["persistent_fraction"]) * 0.5 ** (
            (12.0 - p["peak_months"]) / p["waning_half_life_months"])
        lines.append(f"| {name} | {p['model']} | {p['emax']:g} | {p['ed50']:g} | {p['hill']:g} | {p['threshold']:g} | "
                     f"{p['onset_months']:g} | {p['peak_months']:g} | {p['waning_half_life_months']:.2f} | "
                     f"{p['persistent_fraction']:g} | {retained:.3f} |")
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
    args = parser.parse_args()
    for page, prefixes in PAGES:
        path = ROOT / page
        path.write_text(replace_block(path.read_text(), "params", table(prefixes)))
    page = ROOT / "docs" / "treatment.md"
    page.write_text(replace_block(page.read_text(), "presets", presets_table()))
    if args.figures:
        from cbcp_sim import plots
        from cbcp_sim.scenario import NaturalHistory, load_scenario, scenario_from_dict
        from cbcp_sim.trajectories import trajectories

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
