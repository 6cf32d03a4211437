"""One self-contained HTML page for a run directory: the trial simulated, how to reproduce it, and its results.

The directory's ``manifest.json`` names its kind (``run``, ``sweep``, ``sample-size``, ``assurance`` or
``sensitivity``). The page is titled with the scenario's heading (its title and what ``--effect`` and ``--set``
changed) and has two sections:

- **Inputs**: what was changed (by dotted key and value), a design table of the resolved scenario
  (``scenario.toml``: arms and their regimens, children per arm, visits, alpha and sides, population, effect
  assumptions, dropout, analyses), the settings of the run, the command that reproduces it and the resolved
  scenario itself.
- **Results**: the answer in a sentence, figures (embedded PNG) and tables, each number printed to the digits its
  Monte Carlo standard error supports (the CSV files, linked, keep every digit).

The page needs no script, style sheet or network, and reads at 1,000-1,400 pixels wide without a horizontal
scroll (checked in a headless browser by ``tests/test_report_browser.py``).
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import shlex
import struct
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from cbcp_sim import __version__
from cbcp_sim.errors import InputError, ScenarioError, printable
from cbcp_sim.io import plots
from cbcp_sim.io.plots import label, mcse_decimals, one_line, with_mcse
from cbcp_sim.io.report_inputs import KIND, READS, checked, checked_table
from cbcp_sim.planning.sample_size import per_arm_text
from cbcp_sim.run.result import OPERATIONS_LABELS, mixture_text
from cbcp_sim.run.settings import CHUNK_SIZE
from cbcp_sim.run.store import MANIFEST, check_path, write_atomic
from cbcp_sim.scenario import Scenario, mvn, scenario_from_dict
from cbcp_sim.scenario.spec import inline_toml

SCENARIO_FILE = "scenario.toml"
#: Files of a directory linked from its page, in this order when present (then any other CSV or Parquet file).
LINKED = ("results.csv", "summary.csv", "curve.csv", "draws.csv", "tornado.csv", "global.csv", "results.parquet",
          "result.json", SCENARIO_FILE, MANIFEST)

STYLE = """*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:72rem;margin:1.5rem auto;padding:0 1.25rem;
color:#222;line-height:1.45;overflow-wrap:break-word}
h1{font-size:1.35rem;line-height:1.3;margin:.5rem 0 .8rem}
h2{font-size:1.15rem;margin:2.4rem 0 .6rem;padding-bottom:.2rem;border-bottom:2px solid #ddd}
h3{font-size:1rem;margin:1.5rem 0 .4rem}
p.lede{font-size:1.02rem;background:#f3f6fa;border-left:4px solid #4a7ab5;padding:.6rem .9rem}
nav{font-size:.9rem;color:#555}
table{border-collapse:collapse;font-size:.85rem;margin:.4rem 0 1rem;max-width:100%}
th,td{padding:.25rem .5rem;border-bottom:1px solid #e3e3e3;text-align:left;vertical-align:top;
overflow-wrap:break-word}
thead th{background:#f3f3f3;vertical-align:bottom}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.facts th{font-weight:600;width:14rem;background:none}
.ci{display:block;color:#666;font-size:.78rem}
.key{display:block;font-weight:normal;color:#666;font-size:.75rem}
code{font-size:.85em;overflow-wrap:break-word}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f6f6f6;padding:.6rem .8rem;font-size:.8rem;margin:.4rem 0}
details{margin:.4rem 0 1rem}summary{cursor:pointer}
figure{margin:1rem 0}img{max-width:100%;height:auto}
figcaption{font-size:.85rem;color:#555}
footer{margin-top:3rem;font-size:.8rem;color:#777}"""


@dataclass
class _Page:
    """What a kind of directory shows: its heading, the answer in a sentence, inputs and results."""

    heading: str
    lede: str
    settings: dict[str, Any]
    command: str | None
    results: list[str]
    inputs: list[str] = field(default_factory=list)   #: kind-specific inputs (priors, ranges, points)
    extra_files: dict[str, bytes] = field(default_factory=dict)   #: files the command needs, offered as links
    design_note: str = ""   #: said above the design table (a sweep: the swept keys vary)


# --- reading the directory ---------------------------------------------------------------------------------------


def _load(path: Path, read: Callable[[Path], Any]) -> Any:
    """``read(path)``, with a missing or unreadable file reported as a :class:`ScenarioError`."""
    try:
        return read(path)
    except FileNotFoundError:
        raise ScenarioError(str(path), "is missing: has the run finished?") from None
    except (OSError, ValueError, RecursionError) as exc:  # JSON and CSV parse errors are ValueErrors; deep nesting
        raise ScenarioError(str(path), f"cannot be read: {' '.join(str(exc).split())}") from None


def _json(path: Path) -> Any:
    return _load(path, lambda p: json.loads(p.read_text(encoding="utf-8")))


def _read(directory: Path, kind: str, manifest: Any) -> dict[str, Any]:
    """The files a page of ``kind`` reads (the ``manifest`` already read), by name, each checked against what it
    should hold (:data:`~cbcp_sim.io.report_inputs.READS`) before anything is rendered."""
    files = {}
    for name, spec in READS[kind].items():
        path = directory / name
        if name.endswith(".csv"):
            files[name] = checked_table(path, _load(path, pd.read_csv), spec, kind)
        else:
            files[name] = checked(path, manifest if name == MANIFEST else _json(path), spec, kind)
    return files


@dataclass(frozen=True)
class _Resolved:
    """The directory's ``scenario.toml``: its text, the scenario it holds and what its header says was changed."""

    text: str
    scenario: Scenario | None
    changed: str
    problem: str = ""


def _resolved(directory: Path) -> _Resolved | None:
    """The resolved scenario saved with the results (None for a directory written before it was saved)."""
    path = directory / SCENARIO_FILE
    if not path.is_file():
        return None
    text = _load(path, lambda p: p.read_text(encoding="utf-8"))
    header = " ".join(line.lstrip("#").strip() for line in text.split("\n\n", 1)[0].splitlines())
    match = re.search(r"Read from .*?; then (.*)\.\s*(?:\[effects\.|$)", header)
    changed = one_line(match.group(1)) if match else ""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        body = re.search(r"^(title = |\[)", text, re.M)  # a header comment broken over lines: read past it
        try:
            raw = tomllib.loads(text[body.start():]) if body else None
        except tomllib.TOMLDecodeError:
            raw = None
    if raw is None:
        return _Resolved(text, None, changed, f"{SCENARIO_FILE} is not valid TOML")
    try:
        return _Resolved(text, scenario_from_dict(raw), changed)
    except ScenarioError as exc:
        return _Resolved(text, None, changed, f"{SCENARIO_FILE} does not validate: {exc}")


def _heading(result: dict[str, Any] | None, resolved: _Resolved | None, fallback: str) -> str:
    """The scenario's heading: from the result, else rebuilt from ``scenario.toml`` (title and its header's
    account of what was changed), else ``fallback``."""
    if result and (result.get("heading") or result.get("title")):
        return plots.heading_of(result)
    if resolved is not None and resolved.scenario is not None:
        title = resolved.scenario.title
        return f"{title} [{resolved.changed}]" if resolved.changed else title
    return fallback


# --- numbers and HTML --------------------------------------------------------------------------------------------


def _number(value: Any) -> str:
    """A number with no Monte Carlo error to go by: four significant digits, whole numbers from 10,000."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"


def _text(value: Any) -> str:
    """Any value from a result as plain text."""
    if isinstance(value, float | int) and not isinstance(value, bool):
        return _number(value)
    if isinstance(value, list | tuple):
        return ", ".join(map(_text, value))
    return "" if value is None else str(value)


def _sig(value: Any, digits: int = 2) -> str:
    """An MCSE: two significant digits."""
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return ""
    return f"{value:.{digits}g}"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _fixed(value: Any, spec: str = ".3f") -> str:
    """A number formatted by ``spec``; empty for a missing one (NaN: null in the file)."""
    return format(value, spec) if _finite(value) else ""


def _rate(value: Any, mcse: Any, low: Any = None, high: Any = None) -> str:
    """A rejection rate to its MCSE's digits, with its 95% interval below it."""
    if not _finite(value):
        return ""
    decimals = mcse_decimals(mcse) if _finite(mcse) else None
    out = escape(with_mcse(value, mcse if _finite(mcse) else None))
    if _finite(low) and _finite(high):
        show = (lambda v: f"{v:.{decimals}f}") if decimals is not None else (lambda v: f"{v:.3g}")
        out += f'<span class="ci">{show(low)}–{show(high)}</span>'
    return out


def _cell(html: str, numeric: bool = False) -> str:
    return f'<td class="n">{html}</td>' if numeric else f"<td>{html}</td>"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[bool] | None = None,
           css: str = "") -> str:
    """An HTML table of cells given as HTML; ``numeric`` columns are right-aligned."""
    numeric = list(numeric or [False] * len(headers))
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(c, n) for c, n in zip(row, numeric, strict=True)) + "</tr>"
                   for row in rows)
    klass = f' class="{css}"' if css else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _facts(facts: dict[str, Any] | Sequence[tuple[str, str]], *, html: bool = False) -> str:
    """A two-column table of labelled values (plain text, or HTML with ``html``)."""
    items = facts.items() if isinstance(facts, dict) else facts
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{v if html else escape(_text(v))}</td></tr>" for k, v in items)
    return f'<table class="facts"><tbody>{rows}</tbody></table>'


def _frame(frame: pd.DataFrame) -> str:
    """A DataFrame of plain values (numbers with four significant digits)."""
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame]
    rows = [[escape(_text(v.item() if hasattr(v, "item") else v)) for v in row] for row in frame.itertuples(False)]
    return _table([escape(str(c)) for c in frame.columns], rows, numeric)


def _h(level: int, text: str, anchor: str | None = None) -> str:
    ident = f' id="{anchor}"' if anchor else ""
    return f"<h{level}{ident}>{escape(text)}</h{level}>"


def _p(text: str, css: str = "") -> str:
    return f'<p class="{css}">{escape(text)}</p>' if css else f"<p>{escape(text)}</p>"


def _key_header(path: str) -> str:
    """A column heading for a dotted key: its words and unit, with the key itself below."""
    words = label(path)
    key = f"<code>{_breakable(path)}</code>"
    return key if words == path else f'{escape(words)}<span class="key">{key}</span>'


def _breakable(path: str) -> str:
    """A dotted key that may break after each dot in a narrow column."""
    return escape(path).replace(".", ".<wbr>")


def _png_size(png: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def _image(png: bytes, alt: str, caption: str = "") -> str:
    """A PNG embedded in the page, shown at most at its own width and never wider than the page."""
    width, height = _png_size(png)
    shown = min(width, 1000)
    caption = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return (f'<figure><img alt="{escape(alt)}" width="{shown}" height="{round(height * shown / width)}" '
            f'src="data:image/png;base64,{base64.b64encode(png).decode()}">{caption}</figure>')


def _command(text: str) -> str:
    return f"<pre><code>{escape(text)}</code></pre>"


# --- the analyses' tables ----------------------------------------------------------------------------------------


def _analysis_rows(rows: list[dict[str, Any]], lead: list[tuple[str, Callable[[dict[str, Any]], str], bool]],
                   *, roles: bool) -> str:
    """One row per analysis (or point): ``lead`` columns, then power and type I error with their 95%
    intervals, the MCSE of power, the estimate, its bias with MCSE, RMSE and coverage, each to the digits its
    Monte Carlo error supports. When some analysis failed, power over all trials too (a failure counted as not
    significant), beside power over the trials analysed."""

    def estimate(r: dict[str, Any], key: str) -> str:
        mcse = _get(r, "bias_mcse")
        return escape(with_mcse(_get(r, key), mcse if _finite(mcse) else None)) if _finite(_get(r, key)) else ""

    def rmse(r: dict[str, Any]) -> str:
        value, n = _get(r, "rmse"), _analysed(r)
        return escape(with_mcse(value, value / math.sqrt(2 * n) if _finite(value) and n else None)) \
            if _finite(value) else ""

    def coverage(r: dict[str, Any]) -> str:
        value, n = _get(r, "coverage"), _analysed(r)
        if not _finite(value):
            return ""
        mcse = math.sqrt(value * (1 - value) / n) if n else None
        return escape(with_mcse(value, mcse if mcse else None))

    def failed(r: dict[str, Any]) -> str:
        if not _finite(_get(r, "n_failed")):
            return ""
        return f"{_count(r, 'n_failed')}" + (f" of {_count(r, 'n_reps')}" if _finite(_get(r, "n_reps")) else "")

    def all_trials(r: dict[str, Any]) -> str:
        value, n = _get(r, "power_all_trials"), _count(r, "n_reps")
        return _rate(value, math.sqrt(value * (1 - value) / n) if _finite(value) and n else None)

    columns: list[tuple[str, Callable[[dict[str, Any]], str], bool]] = list(lead)
    if roles:
        name, first, _ = columns[0]

        def with_role(r: dict[str, Any]) -> str:
            return first(r) + f'<span class="ci">{escape(str(_get(r, "role")))}</span>'

        columns[0] = (name, with_role, False)
    columns += [
        ('power<span class="ci">95% interval</span>',
         lambda r: _rate(_get(r, "power"), _get(r, "mcse"), _get(r, "ci_low"), _get(r, "ci_high")), True),
        ("MCSE", lambda r: _sig(_get(r, "mcse")), True),
    ]
    if any(_count(r, "n_failed") and _finite(_get(r, "power_all_trials")) for r in rows):
        columns.append(("power, all trials", all_trials, True))
    columns += [
        ('type I error<span class="ci">95% interval</span>',
         lambda r: _rate(_get(r, "type1_error"), _get(r, "type1_mcse"), _get(r, "type1_ci_low"),
                         _get(r, "type1_ci_high")), True),
        ("true effect", lambda r: escape(f"{_get(r, 'true_effect'):.3g}") if _finite(_get(r, "true_effect")) else "",
         True),
        ("mean estimate", lambda r: estimate(r, "mean_estimate"), True),
        ('bias<span class="ci">(MCSE)</span>',
         lambda r: estimate(r, "bias") + (f'<span class="ci">({_sig(_get(r, "bias_mcse"))})</span>'
                                          if _finite(_get(r, "bias_mcse")) else ""), True),
        ("RMSE", rmse, True),
        ("coverage", coverage, True),
        ("failed", failed, True),
    ]
    return _table([h for h, _, _ in columns], [[f(r) for _, f, _ in columns] for r in rows],
                  [n for _, _, n in columns])


def _get(r: dict[str, Any], key: str) -> Any:
    """A row's value (a table's NumPy scalar as a Python one; None if absent)."""
    value = r.get(key)
    return value.item() if hasattr(value, "item") else value


def _count(r: dict[str, Any], key: str) -> int:
    """A row's count (``n_reps``, ``n_failed``); 0 if absent or missing."""
    value = _get(r, key)
    return int(value) if _finite(value) else 0


def _analysed(r: dict[str, Any]) -> int:
    """Trials whose analysis gave a result."""
    return max(_count(r, "n_reps") - _count(r, "n_failed"), 0)


def _units_note(rows: list[dict[str, Any]], scenario: Scenario | None) -> str:
    """What the estimates are measured in (and on which endpoint)."""
    names = {str(r.get("analysis")) for r in rows}
    proportion = sorted(names & {"fisher", "chisquare"})
    if scenario is not None and scenario.outcome.model != "gmfm66":
        scale = f"outcome units of the {scenario.outcome.model} model"
    else:
        scale = "GMFM-66 points"
    text = f"Estimates, bias and RMSE are differences between arms in {scale}"
    if scenario is not None:
        d = scenario.design
        endpoint = ("change from baseline" if scenario.analysis.endpoint == "change" else "the score")
        text += f" (t-tests, rank and responder tests compare {endpoint} at month {d.primary_visit:g})"
    if proportion:
        text += f"; {', '.join(proportion)} estimate a difference in the share of responders (no degrees of freedom)"
    return _p(text + ". Power and type I error: share of simulated trials rejecting; coverage: share of 95% "
              "confidence intervals holding the true effect.")


# --- the design table of the resolved scenario ------------------------------------------------------------------


def _months(values: Iterable[float]) -> str:
    return ", ".join(f"{v:g}" for v in values)


def _roman(levels: Iterable[int]) -> str:
    return ", ".join(plots.ROMAN[int(g) - 1] for g in levels)


def _arms_table(s: Scenario) -> str:
    """One row per arm: what it receives (cells, dose, route, schedule) and its children."""
    autologous = s.population.source == "autologous"
    rows = []
    for regimen, n in zip(s.regimens, s.design.n_per_arm, strict=True):
        if not regimen.doses:
            rows.append([escape(regimen.name), escape(regimen.kind), "", "", "", "", escape(f"{n}")])
            continue
        products = list(dict.fromkeys(d.course.product for d in regimen.doses))
        doses = list(dict.fromkeys(d.dose for d in regimen.doses))
        amount = ", ".join("each child's banked unit: TNC × recovery / weight" if d is None and autologous
                           else f"{s.population.allogeneic_dose:g}" if d is None else f"{d:g}" for d in doses)
        routes = ", ".join(dict.fromkeys(d.route for d in regimen.doses))
        rows.append([escape(regimen.name), "cells", escape(", ".join(products)), escape(amount), escape(routes),
                     escape(_months(d.month for d in regimen.doses)), escape(f"{n}")])
    headers = ["arm", "receives", "cells", "dose per infusion (10^7 cells/kg)", "route", "schedule (months after "
               "baseline)", "children"]
    return _table(headers, rows, [False] * 6 + [True])


def _waning(c: Any) -> str:
    if math.isinf(c.waning_half_life_months) or c.persistent_fraction >= 1:
        return "none: the peak effect is kept"
    return (f"half-life {c.waning_half_life_months:.3g} months, toward {c.persistent_fraction:.0%} of the peak "
            f"kept for good")


def _effects_table(s: Scenario) -> str:
    """The dose-response, time course and waning of every cell product the arms receive."""
    courses = list(dict.fromkeys(d.course for r in s.regimens for d in r.doses))
    rows = []
    for c in courses:
        if c.model == "emax":
            dose = f"Emax {c.emax:g} points, ED50 {c.ed50:g} × 10^7 cells/kg, Hill {c.hill:g}"
        else:
            dose = f"{c.emax:g} points at doses ≥ {c.threshold:g} × 10^7 cells/kg, none below"
        course = f"rises with time constant {c.onset_months:g} months to its peak at month {c.peak_months:g}"
        rows.append([escape(c.product), escape(dose), escape(course), escape(_waning(c))])
    return _table(["cells", "dose-response (effect at the peak of one dose)", "time course", "waning"], rows)


def _design_facts(s: Scenario) -> list[tuple[str, str]]:
    """The design in words, each value from the resolved scenario."""
    d, p, e, t = s.design, s.population, s.eligibility, s.treatment
    kind = "parallel groups, each arm against the first" if d.kind == "parallel" else \
        f"crossover, the arms switching at month {d.crossover_month:g}"
    randomisation = "fixed arm sizes" if d.randomisation == "fixed" else \
        f"permuted blocks stratified by {', '.join(d.strata) or 'nothing'}"
    facts = [("design", f"{kind}; {randomisation}; blinding: {d.blinding}"),
             ("children per arm", ", ".join(f"{a} {n}" for a, n in zip(d.arms, d.n_per_arm, strict=True))
              + f" ({sum(d.n_per_arm)} in total)"),
             ("visits", f"months {_months(d.visits)}; primary visit month {d.primary_visit:g}"),
             ("test", f"alpha {d.alpha:g}, {'two-sided' if d.sides == 2 else 'one-sided'}")]
    if s.outcome.model != "gmfm66":
        facts.append(("outcome", _outcome_fact(s)))
        return facts + _dropout_analysis(s)
    source = ("autologous: dose per kg = banked unit TNC × post-thaw recovery / weight, capped at "
              f"{p.max_dose:g}; eligible from {e.min_dose:g} × 10^7 TNC/kg") if p.source == "autologous" else \
        f"allogeneic: {p.allogeneic_dose:g} × 10^7 TNC/kg"
    mix = ", ".join(f"{plots.ROMAN[i]} {share:.0%}" for i, share in enumerate(p.gmfcs_mix) if share > 0)
    facts += [("population", f"referred ages {p.ages[0]:g}-{p.ages[1]:g} years, eligible ages {e.ages[0]:g}-"
                             f"{e.ages[1]:g} years; eligible GMFCS {_roman(e.gmfcs)} (referred: {mix}); "
                             f"topographies {', '.join(e.topography)}"),
              ("cells", source),
              ("effect in each child", f"responders {t.responder_fraction:.0%}; response CV {t.response_cv:g}; "
                                       f"each further dose {t.relative_efficacy:g} × the first; ceiling "
                                       f"{t.ceiling_fraction:g} of the child's GMFM-66 limit"),
              ("other responses", f"expectation response {t.expectation_response:g} points; unblinded-assessor "
                                  f"bias {t.assessor_bias:g} points; trial effect "
                                  f"{s.natural_history.trial_effect_per_year:g} points/year for "
                                  f"{s.natural_history.trial_effect_months:g} months")]
    return facts + _dropout_analysis(s)


def _outcome_fact(s: Scenario) -> str:
    """The normal or multivariate normal model's inputs as simulated (the latter at each visit of
    ``design.visits``)."""
    o, d = s.outcome, s.design
    if o.model == "normal":
        sd = ", ".join(f"{v:g}" for v in np.atleast_1d(o.sd))
        return (f"normal model: effect {o.effect:g}, SD {sd}, correlation of baseline with the primary visit "
                f"{o.correlation:g} (outcome units)")

    def listed(values: Iterable[float]) -> str:
        return ", ".join(f"{v:.3g}" for v in values)

    structure = {"cs": f"compound symmetry, rho {mvn.rho(o):g}", "ar1": f"AR(1), rho {mvn.rho(o):g}",
                 "toeplitz": f"Toeplitz, lags {listed(o.toeplitz)}", "unstructured": "unstructured"}[o.covariance]
    effects = "; ".join(listed(row) for row in mvn.effects(o, d))
    return (f"multivariate normal model at months {_months(d.visits)} (outcome units): control means "
            f"{listed(mvn.control_means(o, d))}; effects {effects}; SDs {listed(mvn.sds(o, d))}; correlation "
            f"{structure}")


def _dropout_analysis(s: Scenario) -> list[tuple[str, str]]:
    r, a, q, o = s.dropout, s.analysis, s.sequential, s.operations
    dropout = f"{r.mechanism.upper()}: {r.fraction:.0%} lost by month {r.by_month:g}"
    if r.mechanism == "mar":
        dropout += f" (odds ratio {r.mar_odds_ratio:g} per SD lower score)"
    elif r.mechanism == "mnar":
        dropout += f" (odds ratio {r.mnar_odds_ratio:g} per SD lower score at the visit missed)"
    analyses = f"primary {a.primary}" + (f"; secondary {', '.join(a.secondary)}" if a.secondary else "")
    analyses += f"; endpoint {a.endpoint}"
    if a.covariates:
        analyses += f"; covariates {', '.join(a.covariates)}"
    if len(s.design.arms) > 2:
        analyses += f"; multiplicity {a.multiplicity}"
    facts = [("dropout", dropout), ("analyses", analyses)]
    if q.interims:
        facts.append(("interim looks", f"at {q.timing} {_months(q.interims)}; {q.spending} alpha spending"
                                       + (f"; futility z < {_months(q.futility)}" if q.futility else "")))
    facts.append(("trial calendar", f"{o.sites} sites, {o.screening_rate:g} children screened per site per month"
                  if o.enabled else "not simulated (visits on time)"))
    return facts


def _changes_table(changes: list[dict[str, Any]]) -> str:
    rows = [[f"<code>{escape(c['path'])}</code>", escape(plots.one_line(json.dumps(c["value"])) if
                                                          not isinstance(c["value"], str) else c["value"]),
             escape(label(c["path"]))] for c in changes]
    return _table(["key", "value", "meaning"], rows)


def _inputs(page: _Page, files: dict[str, Any], resolved: _Resolved | None, links: dict[str, str]) -> str:
    """The Inputs section: what was changed, the design table, kind-specific inputs, the settings, and how to
    reproduce the result."""
    out = [_h(2, "Inputs", "inputs")]
    changes = files.get("result.json", {}).get("changes")
    if changes:
        out += [_h(3, "Changed from the scenario file"), _changes_table(changes)]
    elif resolved is not None and resolved.changed:
        out += [_h(3, "Changed from the scenario file"), _p(resolved.changed)]
    if resolved is None:
        out.append(_p(f"This directory holds no {SCENARIO_FILE} (written by an older version): the design "
                      "cannot be shown."))
    elif resolved.scenario is None:
        out.append(_p(f"The design cannot be shown: {resolved.problem}."))
    else:
        s = resolved.scenario
        out += [_h(3, "Trial design"), *([_p(page.design_note)] if page.design_note else []),
                _facts(_design_facts(s)), _h(3, "Arms"), _arms_table(s)]
        if s.outcome.model == "gmfm66" and any(r.doses for r in s.regimens):
            out += [_h(3, "Effect assumptions"), _effects_table(s)]
    out += page.inputs
    settings = {**page.settings, "inputs digest": files[MANIFEST].get("inputs_digest")}
    out += [_h(3, "Run settings"), _facts(settings)]
    out.append(_h(3, "Reproduce"))
    if page.command:
        out += [_p("In this directory, this command gives the same results (any number of jobs):"),
                _command(page.command)]
    for name, data in page.extra_files.items():
        out.append(f'<p>It reads <a download="{escape(name)}" href="data:text/csv;base64,'
                   f'{base64.b64encode(data).decode()}">{escape(name)}</a> (save it beside {SCENARIO_FILE}).</p>')
    if resolved is not None:
        link = links.get(SCENARIO_FILE)
        name = f'<a href="{link}">{SCENARIO_FILE}</a>' if link else SCENARIO_FILE
        out.append(f"<details><summary>The resolved scenario, {name}: every value as simulated</summary>"
                   f"<pre>{escape(resolved.text)}</pre></details>")
    return "\n".join(out)


# --- the pages of each kind ----------------------------------------------------------------------------------


def _settings(result: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"analysis": result["analysis"], "comparison": result["comparison"], **more, "seed": result["seed"],
            "scenario digest": result["scenario_digest"]}


def _interval(result: dict[str, Any], key: str = "power") -> str:
    """``0.44 (95% interval 0.39-0.49)`` to the digits of the MCSE (three decimals without one)."""
    value, mcse, low, high = result[key], result.get("mcse"), result["ci_low"], result["ci_high"]
    if not _finite(value):
        return "not computed (no trial could be analysed)"
    decimals = mcse_decimals(mcse)
    spec = f".{3 if decimals is None else decimals}f"
    return with_mcse(value, mcse) + (f" (95% interval {low:{spec}}–{high:{spec}})" if _finite(low) and _finite(high)
                                     else "")


def _alpha(resolved: _Resolved | None) -> float | None:
    return resolved.scenario.design.alpha if resolved is not None and resolved.scenario is not None else None


def _run(directory: Path, files: dict[str, Any], resolved: _Resolved | None, target: float | None) -> _Page:
    result = files["result.json"]
    inputs = files[MANIFEST].get("inputs", {})
    rows = list(result["analyses"])
    t1 = with_mcse(result["type1_error"], result.get("type1_mcse"))
    lede = (f"Power of {result['analysis']} ({result['comparison']}): {_interval(result)}; type I error {t1} "
            f"(nominal {_alpha(resolved) if _alpha(resolved) is not None else 'alpha'}), over "
            f"{result['n_reps']:,} simulated trials.")
    several = len({r["comparison"] for r in rows}) > 1
    lead = [("analysis", lambda r: escape(str(r["analysis"])), False)]
    if several:
        lead.append(("comparison", lambda r: escape(str(r["comparison"])), False))
    body = [_h(3, "Power and type I error by analysis"),
            _image(plots.run_summary(result, alpha=_alpha(resolved)), "power and type I error by analysis",
                   "Points: share of simulated trials rejecting; bars: Wilson 95% intervals (Monte Carlo)."),
            _h(3, "Analyses"), _analysis_rows(rows, lead, roles=True),
            _units_note(rows, resolved.scenario if resolved else None)]
    if result.get("operations"):
        ops = result["operations"]
        rows_ops = [[escape(OPERATIONS_LABELS.get(k, k)), *(escape(_number(q.get(c))) for c in
                                                           ("mean", "q05", "q50", "q95"))] for k, q in ops.items()]
        body += [_h(3, "Trial calendar (months since the first site opened, unless said)"),
                 _table(["quantity", "mean", "5%", "median", "95%"], rows_ops, [False, True, True, True, True])]
    if result.get("sequential"):
        sequential = result["sequential"]
        looks = sequential.get("looks")
        per_look = {k: v for k, v in sequential.items() if isinstance(v, list) and len(v) == looks}
        body += [_h(3, "Group-sequential design"), _facts({k: v for k, v in sequential.items() if k not in per_look})]
        if per_look:
            body.append(_frame(pd.DataFrame({"look": range(1, looks + 1), **per_look})))
    if result.get("bayes"):
        decided = result["bayes"]
        prior = decided.get("prior_components")
        shown = {"prior": "flat" if not prior else mixture_text(prior), **{
            k: v for k, v in decided.items() if k != "prior_components" and not isinstance(v, list | dict)}}
        body += [_h(3, "Bayesian go/no-go (first comparison; keys as in docs/bayes.md)"), _facts(shown)]
    if result.get("tipping_point"):
        tipping = result["tipping_point"]
        per_delta = {k: tipping[k] for k in ("deltas", "power", "mcse", "ci_low", "ci_high")}
        body += [_h(3, f"Tipping point of {tipping['analysis']} ({tipping['comparison']}; keys as in docs/designs.md)"),
                 _facts({k: v for k, v in tipping.items() if k not in per_delta}),
                 _frame(pd.DataFrame({"delta": per_delta.pop("deltas"), **per_delta}))]
    if result.get("dose_slope"):
        slope = result["dose_slope"]
        estimators = ("unadjusted", "adjusted")
        blocks = [(f"Natural dose variation: slope of change on dose, {slope['treated']} (per "
                   f"{'10^7 TNC/kg' if slope['scale'] == 'linear' else 'unit log dose'}; keys as in docs/dose.md)",
                   slope)]
        if "strata" in slope:
            blocks.append(("By dose strata cut at " + ", ".join(f"{x:g}" for x in slope["strata"]["cuts"])
                           + " x 10^7 TNC/kg: trend of the change per stratum", slope["strata"]))
        for title, block in blocks:
            body += [_h(3, title),
                     _facts({k: v for k, v in block.items() if k not in estimators and not isinstance(v, list | dict)}),
                     _frame(pd.DataFrame([{"estimator": k, **block[k]} for k in estimators]))]
    if result.get("dose_response"):
        mcp = result["dose_response"]
        per_dose = ("doses", "true_effects", "true_curve")
        body += [_h(3, "Dose designs: MCP-Mod dose-response (keys as in docs/dose.md)"),
                 _facts({k: v for k, v in mcp.items() if k not in per_dose and not isinstance(v, list | dict)}),
                 _frame(pd.DataFrame({"dose": mcp["doses"][1:], "true effect": mcp["true_effects"],
                                      "true curve": mcp["true_curve"]})),
                 _frame(pd.DataFrame([{"model": k, "selected": v, "selected without effect": mcp["null_selection"][k]}
                                      for k, v in mcp["selection"].items()]))]
    settings = _settings(result, trials=result["n_reps"], **{"chunk size": inputs.get("chunk_size", CHUNK_SIZE)})
    command = result.get("command") or f"cbcp-sim run {SCENARIO_FILE} --reps {result['n_reps']} --seed {result['seed']}"
    return _Page(_heading(result, resolved, directory.name), lede, settings, command, body)


def _grid(points: list[dict[str, Any]]) -> list[tuple[str, list[Any]]] | None:
    """The ``--grid`` axes whose product, in order, gives ``points``; None if they are not such a product."""
    from cbcp_sim.planning.sweep import Axis, grid_points

    if not points:
        return None
    axes = [(path, list({json.dumps(p[path]): p[path] for p in points}.values())) for path in points[0]]
    try:
        again = grid_points([Axis(path, tuple(values)) for path, values in axes])
    except ScenarioError:
        return None
    return axes if again == points else None


def _sweep_command(inputs: dict[str, Any]) -> tuple[str, dict[str, bytes]]:
    """The ``cbcp-sim sweep`` command of a sweep's manifest: its points as ``--grid`` axes when they are their
    product, else as a ``--points`` file (returned by name)."""
    import csv
    import io

    points = inputs["points"]
    axes = _grid(points)
    files: dict[str, bytes] = {}
    if axes is not None:
        given = " ".join(f"--grid {shlex.quote(path + '=' + ','.join(inline_toml(v) for v in values))}"
                         for path, values in axes)
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(list(points[0]))
        writer.writerows([inline_toml(p[path]) for path in points[0]] for p in points)
        files["points.csv"] = buffer.getvalue().encode()
        given = "--points points.csv"
    command = f"cbcp-sim sweep {SCENARIO_FILE} {given} --reps {inputs['reps']} --seed {inputs['seed']} --out again"
    if inputs.get("chunk_size", CHUNK_SIZE) != CHUNK_SIZE:
        command += f"  # with chunk_size={inputs['chunk_size']}: from Python, cbcp_sim.planning.sweep.sweep"
    return command, files


def _sweep(directory: Path, files: dict[str, Any], resolved: _Resolved | None, target: float | None) -> _Page:
    inputs = files[MANIFEST]["inputs"]
    table = files["results.csv"]
    swept = plots.swept_columns(table)
    primary = table[table["role"] == "primary"].drop(columns="role")
    heading = _heading(None, resolved, inputs.get("scenario", {}).get("title", directory.name))
    settings = {"points": len(inputs["points"]), "swept": ", ".join(swept), "trials per point": inputs["reps"],
                "seed": inputs["seed"], "chunk size": inputs.get("chunk_size", CHUNK_SIZE)}
    several = primary["comparison"].nunique() > 1
    powered = primary.dropna(subset=["power"])
    best = powered.loc[powered["power"].idxmax()] if not powered.empty else None
    lede = (f"{len(inputs['points'])} points × {inputs['reps']:,} simulated trials each, over "
            f"{', '.join(label(p, unit=False) for p in swept)}; primary analysis {primary['analysis'].iloc[0]}."
            if not primary.empty else "No primary analysis in results.csv.")
    if best is not None:
        at = ", ".join(f"{label(p, unit=False)} {plots._show(best[p])}" for p in swept)
        lede += f" Highest power {with_mcse(float(best['power']), float(best['mcse']))} at {at}."
    lead = [("point", lambda r: escape(str(r["point"])), True)]
    lead += [(_key_header(p), (lambda r, p=p: escape(plots._show(r[p]))), pd.api.types.is_numeric_dtype(primary[p]))
             for p in swept]
    if several:
        lead.append(("comparison", lambda r: escape(str(r["comparison"])), False))
    rows = [dict(r) for _, r in primary.iterrows()]
    body = []
    x = plots.curve_axis(table)
    if x is not None and not primary.empty:
        body += [_h(3, f"Power by {label(x, unit=False)}"),
                 _image(plots.power_curves(table, x, target=target, heading=heading), f"power by {x}",
                        "Lines: power of the primary analysis; bands: Monte Carlo 95% intervals"
                        + (f"; dashed: target power {target:g}." if target is not None else "."))]
    body += [_h(3, "Primary analysis at each point"), _analysis_rows(rows, lead, roles=False),
             _units_note(rows, resolved.scenario if resolved else None),
             _p("Every analysis at every point, with every digit: results.csv (linked below).")]
    axes = _grid(inputs["points"])
    if axes is not None:
        grid = [[_key_header(path), escape(", ".join(plots._show(v) for v in values))] for path, values in axes]
        extra = [_h(3, "Swept values (every combination)"), _table(["key", "values"], grid)]
    else:
        extra = [_h(3, "Points"), _frame(pd.DataFrame(inputs["points"]))]
    command, offered = _sweep_command(inputs)
    note = (f"The base scenario of the sweep; {', '.join(label(p, unit=False) for p in swept)} take the values "
            "under Swept values below.")
    return _Page(heading, lede, settings, command, body, extra, offered, note)


def _sample_size(directory: Path, files: dict[str, Any], resolved: _Resolved | None,
                 target: float | None) -> _Page:
    result = files["result.json"]
    inputs = files[MANIFEST].get("inputs", {})
    lede = (f"Sample size for power {result['target']:g} with {result['analysis']} ({result['comparison']}): "
            f"{per_arm_text(result['n_per_arm'])} children per arm, {result['total']} in total. At this size the "
            f"simulated power is {_interval(result)}; the fitted curve gives {result['fitted_power']:.3f}.")
    settings = _settings(result, **{"target power": result["target"], "trials per size": result["reps"],
                                    "largest size searched": inputs.get("max_n")})
    rows = [[escape(per_arm_text(r["n_per_arm"])), escape(_text(r["total"])),
             _rate(r["power"], r["mcse"], r["ci_low"], r["ci_high"]), escape(_sig(r["mcse"])),
             escape(f"{r['fitted_power']:.3f}")] for r in result["curve"]]
    body = [_image(plots.sample_size(result), "power by sample size",
                   "Points: simulated power with 95% intervals; line: the fitted probit curve in √n."),
            _h(3, "Power by sample size"),
            _table(["children per arm", "in total", 'power<span class="ci">95% interval</span>', "MCSE",
                    "fitted power"], rows, [True] * 5)]
    command = (f"cbcp-sim sample-size {SCENARIO_FILE} --target {result['target']:g} --reps {result['reps']}"
               + (f" --max-n {inputs['max_n']}" if inputs.get("max_n") is not None else "")
               + f" --seed {result['seed']}")
    return _Page(_heading(result, resolved, directory.name), lede, settings, command, body)


def _assurance(directory: Path, files: dict[str, Any], resolved: _Resolved | None,
               target: float | None) -> _Page:
    result, draws = files["result.json"], files["draws.csv"]
    priors = [[_key_header(path), escape(str(spec.get("distribution"))),
               escape(", ".join(f"{k} = {_text(v)}" for k, v in spec.items() if k != "distribution"))]
              for path, spec in result["priors"].items()]
    settings = _settings(result, **{"draws": result["draws"], "trials per draw": result["reps_per_draw"]})
    lede = (f"Assurance of {result['analysis']} ({result['comparison']}): {_interval(result, 'assurance')}, the "
            f"power averaged over {result['draws']:,} draws from the priors; a rejection favouring the cells in "
            f"{_fixed(result['favourable'])} of trials.")
    quantiles = result["power_quantiles"]
    body = [_image(plots.assurance(draws, result), "power over the draws from the priors",
                   "Histogram: power at each draw; line and band: the assurance and its Monte Carlo 95% interval."),
            _h(3, "Power over the draws (quantiles)"),
            _table([escape(k) for k in quantiles], [[escape(f"{v:.3f}") for v in quantiles.values()]],
                   [True] * len(quantiles))]
    extra = [_h(3, "Priors"), _table(["key", "distribution", "parameters"], priors)]
    command = f"cbcp-sim assurance {SCENARIO_FILE} --seed {result['seed']}"
    return _Page(_heading(result, resolved, directory.name), lede, settings, command, body, extra)


def _sensitivity(directory: Path, files: dict[str, Any], resolved: _Resolved | None,
                 target: float | None) -> _Page:
    result = files["result.json"]
    glob = result.get("global")
    base_mcse = result.get("base_mcse")
    settings = _settings(result, **{"base power": with_mcse(result["base_power"], base_mcse),
                                    "trials per value": result["reps"]})
    tornado = sorted(result["tornado"], key=lambda r: r["rank"])
    top = tornado[0] if tornado and _finite(tornado[0]["swing"]) else None
    lede = (f"Base power {with_mcse(result['base_power'], base_mcse)} ({result['analysis']}, {result['comparison']})."
            + (f" The largest swing, {top['swing']:.3f}, comes from {label(top['path'], unit=False)} "
               f"({plots._show(top['low'])} to {plots._show(top['high'])})." if top else ""))
    rows = [[escape(str(r["rank"])), _key_header(r["path"]), escape(_text(r["base"])),
             escape(plots._show(r["low"])), _rate(r["power_low"], r.get("mcse_low")),
             escape(plots._show(r["high"])), _rate(r["power_high"], r.get("mcse_high")),
             escape(_fixed(r["swing"]))] for r in tornado]
    body = [_h(3, "One parameter at a time"),
            _image(plots.tornado(result), "tornado: power at the low and high value of each parameter",
                   "Bars: power at each end of a range, from the base power; error bars: Monte Carlo 95% intervals "
                   "(1.96 MCSE); grey band: the base power's."),
            _table(["rank", "parameter", "base value", "low", "power at low", "high", "power at high", "swing"], rows,
                   [True, False, True, True, True, True, True, True])]
    if glob:
        settings["global samples"] = glob["samples"]
        ranked = sorted(glob["rows"], key=lambda r: r["rank"])
        intervals = any("prcc_low" in r for r in ranked)
        prcc_rows = [[escape(str(r["rank"])), _key_header(r["path"]), escape(_fixed(r["prcc"], "+.3f"))]
                     + ([escape(f"{r['prcc_low']:+.3f} to {r['prcc_high']:+.3f}")
                         if _finite(r.get("prcc_low")) and _finite(r.get("prcc_high")) else "no resample ranks it"]
                        if intervals else []) for r in ranked]
        caption = ("Bars: PRCC; error bars: bootstrap 95% intervals over the Latin-hypercube points." if intervals
                   else "Bars: PRCC (this result was written without bootstrap intervals).")
        body += [_h(3, f"All parameters together: partial rank correlation with power ({glob['samples']:,} "
                       "Latin-hypercube points)"),
                 _image(plots.prcc_ranking(result), "partial rank correlation of power with each parameter", caption),
                 _table(["rank", "parameter", "PRCC"] + (["bootstrap 95% interval"] if intervals else []), prcc_rows,
                        [True, False, True, True][:4 if intervals else 3])]
    ranges = [[_key_header(r["path"]), escape(plots._show(r["low"])), escape(plots._show(r["high"]))]
              for r in tornado]
    extra = [_h(3, "Ranges examined"), _table(["key", "low", "high"], ranges, [False, True, True])]
    command = f"cbcp-sim sensitivity {SCENARIO_FILE} --seed {result['seed']}"
    return _Page(_heading(result, resolved, directory.name), lede, settings, command, body, extra)


#: The page of each kind of directory.
PAGES: dict[str, Callable[[Path, dict[str, Any], _Resolved | None, float | None], _Page]] = {
    "run": _run, "sweep": _sweep, "sample-size": _sample_size, "assurance": _assurance, "sensitivity": _sensitivity}


def _page_path(out: str | Path) -> Path:
    """The report's file ``out``, refused (one line on ``out``) where no page can be written: a directory, a
    symbolic link (never written through) or a name no file can have."""
    path = check_path(out, "out")
    if path.is_symlink():
        raise InputError("out", f"{printable(str(path))} is a symbolic link: nothing is written through a link")
    if path.is_dir() or path.name in ("", ".", ".."):
        raise InputError("out", f"{printable(str(path))} is a directory: give the page's "
                                   "file name, such as report.html")
    return path


def _links(directory: Path, page_path: Path) -> dict[str, str]:
    """Each result file of the directory by name, as a link relative to the page."""
    names = [n for n in LINKED if (directory / n).is_file()]
    names += sorted(p.name for p in directory.iterdir() if p.suffix in (".csv", ".parquet") and p.name not in names)
    start = page_path.resolve().parent
    return {n: quote(Path(os.path.relpath((directory / n).resolve(), start)).as_posix()) for n in names}


def _files(links: dict[str, str]) -> str:
    items = "".join(f'<li><a href="{href}">{escape(name)}</a></li>' for name, href in links.items())
    return f"{_h(3, 'Files')}<ul>{items}</ul>" if items else ""


def report(directory: str | Path, out: str | Path | None = None, *, target: float | None = None) -> Path:
    """Write one self-contained HTML report of a run directory and return its path.

    Parameters
    ----------
    directory : a directory written by ``run``, ``sweep``, ``sample-size``, ``assurance`` or ``sensitivity``
        (it holds ``manifest.json``, and ``scenario.toml`` from which the design table is drawn).
    out : the HTML file; default ``directory/report.html``. Links to the directory's files are relative to it.
    target : a target power drawn on a sweep's power curves (a sample size's own target is always drawn).

    Raises
    ------
    ScenarioError
        The directory holds no manifest, one of an unknown kind, or its results are missing, unreadable or not
        what they should be (a value of the wrong type, a missing key or column: named with its file).
    """
    directory = check_path(directory, "directory")
    if not (directory / MANIFEST).is_file():
        raise ScenarioError(str(directory), f"holds no {MANIFEST}: not a run or sweep directory")
    manifest = _json(directory / MANIFEST)
    kind = checked(directory / MANIFEST, manifest, KIND, "").get("kind")
    if kind not in PAGES:
        raise ScenarioError(str(directory), f"holds a {MANIFEST} of unknown kind {kind!r}; "
                                            f"a report is made of: {', '.join(PAGES)}")
    files = _read(directory, kind, manifest)
    path = _page_path(out) if out is not None else directory / "report.html"
    resolved = _resolved(directory)
    page = PAGES[kind](directory, files, resolved, target)
    links = _links(directory, path)
    heading = escape(page.heading)
    html = "\n".join([
        '<!DOCTYPE html>\n<html lang="en">',
        f'<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{heading}</title><style>\n{STYLE}\n</style></head>",
        f'<body>\n<header><h1>{heading}</h1><nav>{escape(kind)} · <a href="#inputs">Inputs</a> · '
        '<a href="#results">Results</a></nav></header>',
        _p(page.lede, "lede"),
        _inputs(page, files, resolved, links),
        _h(2, "Results", "results"),
        *page.results,
        _files(links),
        f"<footer>cbcp_sim {escape(__version__)}: report of {escape(directory.name)}</footer>\n</body>\n</html>\n"])
    try:
        write_atomic(path, html.encode("utf-8"), source=str(path))  # atomic, and never through a symbolic link
    except OSError as exc:
        raise ScenarioError(str(path), f"cannot write: {exc.strerror or exc}") from None
    return path
