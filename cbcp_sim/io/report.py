"""One self-contained HTML page for a run directory: what was asked, the main tables and the figures.

The directory's ``manifest.json`` names its kind (``run``, ``sweep``, ``sample-size``, ``assurance`` or
``sensitivity``); the page reads that kind's files, shows the tables with numbers rounded for reading (the CSV
files keep them all) and embeds the figures as PNG, so the page needs no other file, script or network.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from cbcp_sim import __version__
from cbcp_sim.errors import ScenarioError
from cbcp_sim.io import plots
from cbcp_sim.planning.sample_size import per_arm_text
from cbcp_sim.run.store import MANIFEST

#: Columns of an analysis table shown on the page, when present (the CSV files hold all).
COLUMNS = ("analysis", "comparison", "role", "power", "mcse", "ci_low", "ci_high", "type1_error", "type1_mcse",
           "true_effect", "mean_estimate", "bias", "bias_mcse", "rmse", "coverage", "n_reps", "n_failed")

STYLE = """body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0 1rem}
th,td{padding:.2rem .6rem;border-bottom:1px solid #ddd;text-align:right}th{background:#f4f4f4}
img{max-width:100%}footer{margin-top:3rem;font-size:.8rem;color:#777}"""


@dataclass(frozen=True)
class _Page:
    """What a kind of directory shows: its title, its key inputs and the HTML of its sections."""

    title: str
    facts: dict[str, Any]
    body: list[str]


def _load(path: Path, read: Callable[[Path], Any]) -> Any:
    """``read(path)``, with a missing or unreadable file reported as a :class:`ScenarioError`."""
    try:
        return read(path)
    except FileNotFoundError:
        raise ScenarioError(str(path), "is missing: has the run finished?") from None
    except (OSError, ValueError) as exc:  # JSON and CSV parse errors are ValueErrors
        raise ScenarioError(str(path), f"cannot be read: {' '.join(str(exc).split())}") from None


def _json(path: Path) -> dict[str, Any]:
    return _load(path, lambda p: json.loads(p.read_text(encoding="utf-8")))


def _csv(path: Path) -> pd.DataFrame:
    return _load(path, pd.read_csv)


def _number(value: float) -> str:
    """A float rounded for reading: four significant digits, whole numbers from 10,000."""
    return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"


def _text(value: Any) -> str:
    """Any value from a result as plain text."""
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, list | tuple):
        return ", ".join(map(_text, value))
    return "" if value is None else str(value)


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, na_rep="", float_format=_number)


def _facts(facts: dict[str, Any]) -> str:
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(_text(v))}</td></tr>" for k, v in facts.items())
    return f"<table>{rows}</table>"


def _heading(text: str) -> str:
    return f"<h2>{escape(text)}</h2>"


def _paragraph(text: str) -> str:
    return f"<p>{escape(text)}</p>"


def _image(png: bytes, alt: str) -> str:
    return f'<figure><img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}"></figure>'


def _analysis_table(rows: pd.DataFrame, first: list[str]) -> str:
    """The ``first`` columns, then those of :data:`COLUMNS` and any ``sequential_*`` columns present."""
    shown = first + [c for c in COLUMNS if c in rows] + [c for c in rows if c.startswith("sequential_")]
    return _table(rows[shown])


def _result_facts(result: dict[str, Any], kind: str, **counts: Any) -> dict[str, Any]:
    return {"kind": kind, "analysis": result["analysis"], "comparison": result["comparison"], **counts,
            "seed": result["seed"], "scenario digest": result["scenario_digest"]}


def _interval(result: dict[str, Any]) -> str:
    return f"95% interval {result['ci_low']:.3f}–{result['ci_high']:.3f}"


def _sweep(directory: Path, manifest: dict[str, Any]) -> _Page:
    inputs = manifest["inputs"]
    table = _csv(directory / "results.csv")
    swept = plots.swept_columns(table)
    facts = {"kind": "sweep", "points": len(inputs["points"]), "swept": swept, "trials per point": inputs["reps"],
             "seed": inputs["seed"], "chunk size": inputs["chunk_size"]}
    body = [_heading("Primary analysis at each point"),
            _analysis_table(table[table["role"] == "primary"].drop(columns="role"), ["point", *swept]),
            _paragraph("Every analysis at every point: results.csv.")]
    x = plots.curve_axis(table)
    if x is not None:
        body += [_heading(f"Power by {x}"), _image(plots.power_curves(table, x), f"power by {x}")]
    return _Page(inputs["scenario"].get("title", directory.name), facts, body)


def _run(directory: Path, manifest: dict[str, Any]) -> _Page:
    result = _json(directory / "result.json")
    body = [_paragraph(f"Power of {result['analysis']} ({result['comparison']}): {result['power']:.3f} "
                       f"({_interval(result)}); type I error {result['type1_error']:.3f}."),
            _heading("Analyses"), _analysis_table(pd.DataFrame(result["analyses"]), [])]
    if result.get("operations"):
        operations = pd.DataFrame.from_dict(result["operations"], orient="index").rename_axis("quantity")
        body += [_heading("Trial calendar"), _table(operations.reset_index())]
    if result.get("sequential"):
        sequential = result["sequential"]
        looks = sequential.get("looks")
        per_look = {k: v for k, v in sequential.items() if isinstance(v, list) and len(v) == looks}
        body += [_heading("Group-sequential design"),
                 _facts({k: v for k, v in sequential.items() if k not in per_look})]
        if per_look:
            body.append(_table(pd.DataFrame({"look": range(1, looks + 1), **per_look})))
    return _Page(result["title"], _result_facts(result, "run", trials=result["n_reps"]), body)


def _sample_size(directory: Path, manifest: dict[str, Any]) -> _Page:
    result = _json(directory / "result.json")
    answer = (f"Sample size for power {result['target']:g} with {result['analysis']} ({result['comparison']}): "
              f"{per_arm_text(result['n_per_arm'])} children per arm, {result['total']} in total. "
              f"At this size the simulated power is {result['power']:.3f} ({_interval(result)}); the fitted curve "
              f"gives {result['fitted_power']:.3f}.")
    facts = _result_facts(result, "sample size", **{"target power": result["target"],
                                                   "trials per size": result["reps"]})
    body = [_paragraph(answer), _heading("Power by sample size"), _table(pd.DataFrame(result["curve"])),
            _image(plots.sample_size(result), "power by sample size")]
    return _Page(result["title"], facts, body)


def _assurance(directory: Path, manifest: dict[str, Any]) -> _Page:
    result = _json(directory / "result.json")
    draws = _csv(directory / "draws.csv")
    priors = pd.DataFrame([{"path": path, "distribution": spec.get("distribution"),
                            "parameters": ", ".join(f"{k}={_text(v)}" for k, v in spec.items() if k != "distribution")}
                           for path, spec in result["priors"].items()])
    facts = _result_facts(result, "assurance", **{"rejection favouring the cells": result["favourable"],
                                                 "draws": result["draws"], "trials per draw": result["reps_per_draw"]})
    body = [_paragraph(f"Assurance of {result['analysis']} ({result['comparison']}): {result['assurance']:.3f} "
                       f"({_interval(result)}), the power averaged over {result['draws']:,} draws from the priors."),
            _heading("Priors"), _table(priors),
            _heading("Power over the draws (quantiles)"), _table(pd.DataFrame([result["power_quantiles"]])),
            _image(plots.assurance(draws, result), "power over the draws from the priors")]
    return _Page(result["title"], facts, body)


def _sensitivity(directory: Path, manifest: dict[str, Any]) -> _Page:
    result = _json(directory / "result.json")
    glob = result.get("global")
    facts = _result_facts(result, "sensitivity", **{"base power": result["base_power"],
                                                   "trials per value": result["reps"]})
    tornado = pd.DataFrame(result["tornado"]).sort_values("rank")
    body = [_heading("One parameter at a time"), _table(tornado[["rank", *tornado.columns.drop("rank")]]),
            _image(plots.tornado(result), "tornado: power at the low and high value of each parameter")]
    if glob:
        facts["global samples"] = glob["samples"]
        body += [_heading(f"All parameters together: partial rank correlation with power ({glob['samples']:,} "
                          "samples)"),
                 _table(pd.DataFrame(glob["rows"]).sort_values("rank")[["rank", "path", "prcc"]])]
    return _Page(result["title"], facts, body)


#: The page of each kind of directory.
PAGES: dict[str, Callable[[Path, dict[str, Any]], _Page]] = {
    "run": _run, "sweep": _sweep, "sample-size": _sample_size, "assurance": _assurance, "sensitivity": _sensitivity}


def report(directory: str | Path, out: str | Path | None = None) -> Path:
    """Write one self-contained HTML report of a run directory and return its path.

    Parameters
    ----------
    directory : a directory written by ``run``, ``sweep``, ``sample-size``, ``assurance`` or ``sensitivity``
        (it holds ``manifest.json``).
    out : the HTML file; default ``directory/report.html``.

    Raises
    ------
    ScenarioError
        The directory holds no manifest, one of an unknown kind, or its results are missing or unreadable.
    """
    directory = Path(directory)
    if not (directory / MANIFEST).is_file():
        raise ScenarioError(str(directory), f"holds no {MANIFEST}: not a run or sweep directory")
    manifest = _json(directory / MANIFEST)
    kind = manifest.get("kind")
    if kind not in PAGES:
        raise ScenarioError(str(directory), f"holds a {MANIFEST} of unknown kind {kind!r}; "
                                            f"a report is made of: {', '.join(PAGES)}")
    try:
        page = PAGES[kind](directory, manifest)
    except KeyError as exc:
        raise ScenarioError(str(directory), f"its {kind} results lack {exc}: written by another version?") from None
    facts = {**page.facts, "inputs digest": manifest.get("inputs_digest")}
    title = escape(page.title)
    html = (f'<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>{title}</title>'
            f"<style>\n{STYLE}\n</style></head>\n<body>\n<h1>{title}</h1>\n{_heading('Inputs')}\n{_facts(facts)}\n"
            + "\n".join(page.body)
            + f"\n<footer>cbcp_sim {escape(__version__)} report of {escape(directory.name)}</footer>\n</body>\n"
              "</html>\n")
    path = Path(out) if out is not None else directory / "report.html"
    try:
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(str(path), f"cannot write: {exc.strerror or exc}") from None
    return path
