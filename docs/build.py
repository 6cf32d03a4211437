"""Regenerate the generated parts of the docs: parameter tables and natural-history figures.

    python docs/build.py            # tables in README.md and docs/natural_history.md
    python docs/build.py --figures  # also docs/figures/natural_history_gmfcs{1..5}.png (about 10 s)

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


def table(prefixes: tuple[str, ...] = ("",)) -> str:
    """Markdown table of the scenario parameters whose path starts with one of ``prefixes``."""
    rows = [r for r in describe(Scenario) if r["path"].startswith(prefixes)]
    lines = ["| key | default | allowed | unit | meaning | source |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r[k].replace("|", "/") for k in COLUMNS) + " |" for r in rows]
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
    for path, prefixes in ((ROOT / "README.md", ("",)), (ROOT / "docs" / "natural_history.md", MODEL_SECTIONS)):
        path.write_text(replace_block(path.read_text(), "params", table(prefixes)))
    if args.figures:
        from cbcp_sim import plots
        from cbcp_sim.scenario import NaturalHistory

        for g in range(1, 6):
            figure = ROOT / "docs" / "figures" / f"natural_history_gmfcs{g}.png"
            plots.centiles(NaturalHistory(), g, (1.0, 21.0), figure)


if __name__ == "__main__":
    main()
