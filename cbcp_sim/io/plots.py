"""Figures (matplotlib, no display needed): what the natural-history and treatment models assume, and the
answers of a run and of the planning commands (sweep, sample size, sensitivity, assurance).

Each function saves one figure to ``path``; the format follows its extension (PNG, SVG, PDF). The run and
planning figures return the figure as PNG bytes instead when ``path`` is None (for :mod:`cbcp_sim.io.report`).

Every figure of a scenario opens with its heading (the title and what ``--effect`` and ``--set`` changed),
wrapped to the figure's width so no title is clipped; axes are labelled in words with units, from each
parameter's description and unit (:func:`label`), never by dotted key alone; every Monte Carlo figure shows its
Monte Carlo uncertainty; lines that may coincide differ in colour, dash and marker, so none hides another.
"""

from __future__ import annotations

import functools
import io
import math
import os
import re
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cbcp_sim.errors import InputError, ScenarioError, printable
from cbcp_sim.explore.centiles import CENTILES, DEFAULT_CHILDREN, simulated_centiles
from cbcp_sim.explore.trajectories import BAND, Trajectories
from cbcp_sim.models import natural_history, treatment
from cbcp_sim.run.store import write_atomic
from cbcp_sim.scenario import NaturalHistory
from cbcp_sim.scenario.products import Course

if TYPE_CHECKING:
    from cbcp_sim.explore.timeline import Timeline

ROMAN = ("I", "II", "III", "IV", "V")
FIGURE_SUFFIXES = (".png", ".svg", ".pdf")
#: Normal quantile of a two-sided 95% interval (Monte Carlo intervals drawn from an MCSE).
Z95 = 1.959963984540054
#: Line styles and markers of the lines of one axes, in order: no two lines look alike, so coinciding lines
#: still show (a dash over a solid line, a small marker inside a larger one).
DASHES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
GMFM = "GMFM-66 points"
#: Axis labels of keys whose description does not read as one (choices, switches).
LABELS = {
    "title": "title",
    "treatment.dose_response.model": "dose-response model",
    "treatment.dose_response.hill": "Hill coefficient of the dose-response",
    "treatment.cells": "cell product",
    "population.source": "source of the cells",
    "population.age_distribution": "distribution of ages",
    "eligibility.min_dose": "smallest eligible dose (10^7 TNC/kg)",
    "design.sides": "sides of the test",
    "design.kind": "design",
    "design.blinding": "blinding",
    "design.randomisation": "randomisation",
    "design.n_per_arm": "children per arm",
    "arms.<name>.kind": "kind of arm",
    "arms.<name>.schedule": "months of the doses after baseline",
    "dropout.mechanism": "dropout mechanism",
    "dropout.fraction": "share of children lost to dropout by dropout.by_month",
    "analysis.endpoint": "endpoint",
    "outcome.model": "outcome model",
    "operations.enabled": "trial calendar simulated",
    "sequential.timing": "timing of interim looks",
    "sensitivity.samples": "Latin-hypercube points",
}


def _pyplot():
    """pyplot, on the non-interactive Agg backend unless the caller (a notebook, a script) chose one already."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and "MPLBACKEND" not in os.environ:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure(width: float = 7.0, height: float = 4.5):
    return _pyplot().subplots(figsize=(width, height), layout="constrained")


def check_figure_path(path: str | Path) -> None:
    """A ``--plot`` file name matplotlib can write (by its extension); the CLI checks it before any work."""
    if "\0" in str(path):
        raise InputError("path", "a file name cannot hold a NUL character")
    if Path(path).suffix.lower() not in FIGURE_SUFFIXES:
        raise InputError("path", f"file must end in .png, .svg or .pdf, got {Path(path).name!r}")


def _save(fig, path: str | Path) -> None:  # noqa: ANN001 - matplotlib Figure
    """Write ``fig`` to ``path`` whole or not at all (a full disk leaves any earlier file as it was)."""
    path = Path(path)
    buffer = io.BytesIO()
    try:
        check_figure_path(path)
        fig.savefig(buffer, format=path.suffix[1:].lower(), dpi=150)
    finally:
        _pyplot().close(fig)
    try:
        write_atomic(path, buffer.getvalue(), source="path")
    except OSError as exc:
        raise InputError("path", printable(f"cannot write {path}: {exc.strerror or exc}")) from None


def _output(fig, path: str | Path | None) -> bytes | None:  # noqa: ANN001 - matplotlib Figure
    """Save ``fig`` to ``path``, or with no path return it as PNG bytes. Every figure leaves through here."""
    if path is not None:
        _save(fig, path)
        return None
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=110)
    finally:
        _pyplot().close(fig)
    return buffer.getvalue()


# --- words, numbers and titles -------------------------------------------------------------------------------


def one_line(text: str) -> str:
    """A heading on one line: a value written over several lines (a TOML array) joined up, ``[2, 5]``."""
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r",\s*\]", "]", re.sub(r"\[\s+", "[", text))


def heading_of(result: dict[str, Any]) -> str:
    """The heading of a result's JSON (``heading``, else ``title``), on one line."""
    return one_line(str(result.get("heading") or result.get("title") or ""))


def mcse_decimals(mcse: float | None) -> int | None:
    """Decimals worth printing for a Monte Carlo estimate with this MCSE: down to the MCSE's first significant
    digit (MCSE 0.012: 2 decimals, 0.0045: 3), at most 6; None when the MCSE is missing, zero or not finite."""
    if mcse is None or not isinstance(mcse, int | float) or not math.isfinite(mcse) or mcse <= 0:
        return None
    return min(6, max(0, -math.floor(math.log10(mcse))))


def with_mcse(value: float | None, mcse: float | None) -> str:
    """``value`` printed to the digits its MCSE supports (:func:`mcse_decimals`); four significant digits when
    there is no MCSE to go by; empty for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    decimals = mcse_decimals(mcse)
    text = f"{value:.4g}" if decimals is None else f"{value:.{decimals}f}"
    return text[1:] if re.fullmatch(r"-0\.?0*", text) else text  # no "-0.0" for a value that rounds to zero


def _head(doc: str) -> str:
    """The noun phrase that opens a parameter's description: its first sentence without asides."""
    text = re.split(r"(?<!e\.g)(?<!i\.e)\. ", doc.strip(), maxsplit=1)[0].rstrip(".")
    previous = None
    while previous != text:
        previous, text = text, re.sub(r"\s*\([^()]*\)", "", text)
    text = text.replace("`", "")
    if ": " in text:
        before, after = text.split(": ", 1)
        qualifier = before[:1].islower() or before.endswith("model") or before.startswith("Instead")
        text = after if qualifier else before
    text = text.split("; ")[0].strip()
    acronym = len(text) > 1 and text[1].isupper()
    return text if acronym else text[:1].lower() + text[1:]


@functools.cache
def _parameters() -> dict[str, tuple[str, str]]:
    """Every scenario parameter's dotted path (``arms.<name>.dose``) -> (label, unit)."""
    from cbcp_sim.scenario import Scenario
    from cbcp_sim.scenario.schema import describe

    return {row["path"]: (LABELS.get(row["path"]) or _head(row["doc"]), row["unit"]) for row in describe(Scenario)}


def _generic(path: str) -> tuple[str, str | None]:
    """``path`` with a table entry's name replaced by ``<name>`` (``arms."two doses".dose`` ->
    ``arms.<name>.dose``), and that name."""
    for table in ("arms.", "assurance.priors."):
        if path.startswith(table):
            rest = path[len(table):]
            match = re.match(r'"([^"]*)"\.|\'([^\']*)\'\.|([^.]+)\.', rest)
            if match:
                name = next(g for g in match.groups() if g is not None)
                return f"{table}<name>.{rest[match.end():]}", name
    return path, None


def label(path: str, *, unit: bool = True) -> str:
    """A parameter in words with its unit, for axes and table headings: ``design.n_per_arm`` -> ``children per
    arm``, ``treatment.dose_response.emax`` -> ``largest effect of one dose at the peak of its time course
    (GMFM-66 points)``, ``arms."two doses".dose`` -> ``dose per kg of each dose, arm two doses (10^7
    cells/kg)``. From each parameter's description and unit (:func:`cbcp_sim.scenario.schema.describe`); a
    path that is not a parameter (``comparison``) is returned as it is."""
    generic, name = _generic(path)
    known = _parameters().get(generic)
    if known is None:
        return path
    text, units = known
    if name is not None:
        text = f"{text}, {'arm' if generic.startswith('arms.') else 'prior of'} {name}"
    if unit and units and units.lower() not in text.lower():
        text = f"{text} ({units})"
    return text


def unit_of(path: str) -> str:
    """The unit of a parameter (empty for none or an unknown path)."""
    known = _parameters().get(_generic(path)[0])
    return known[1] if known else ""


def _show(value: Any) -> str:
    """A parameter value in a label: floats without trailing zeros."""
    return f"{value:g}" if isinstance(value, float | np.floating) else str(value)


def _wrap(text: str, width_inches: float, fontsize: float) -> str:
    """``text`` broken into lines that fit ``width_inches`` at ``fontsize`` (a generous average glyph width, so
    a wrapped title never runs past the edge; long tokens such as dotted keys are broken too)."""
    chars = max(20, int(width_inches * 72 / (fontsize * 0.62)))
    return "\n".join("\n".join(textwrap.wrap(line, chars, break_on_hyphens=False)) or line
                     for line in text.splitlines())


def _headed(fig, heading: str | None, subtitle: str | None = None, fontsize: float = 10) -> None:  # noqa: ANN001
    """The figure's title: the scenario's heading (bold) and what the figure shows, wrapped to its width."""
    width = fig.get_figwidth() * 0.96
    parts = []
    if heading:
        parts.append(_wrap(one_line(heading), width, fontsize))
    if subtitle:
        parts.append(_wrap(subtitle, width, fontsize - 1))
    if parts:
        fig.suptitle("\n".join(parts), fontsize=fontsize)


def _styled(i: int, colour: str | None = None) -> dict[str, Any]:
    """The look of the ``i``-th line of an axes: its own colour, dash and marker; later lines drawn on top with
    smaller, hollow-alternating markers, so a line that coincides with an earlier one leaves that one visible."""
    colour = colour or f"C{i % 10}"
    return {"color": colour, "linestyle": DASHES[i % len(DASHES)], "marker": MARKERS[i % len(MARKERS)],
            "ms": max(3.0, 7.0 - 1.2 * i), "mfc": "white" if i % 2 else colour, "mec": colour, "lw": 1.6,
            "zorder": 3 + 0.1 * i}


# --- the model's assumptions -----------------------------------------------------------------------------------


def centiles(nh: NaturalHistory, gmfcs: int, ages: tuple[float, float], path: str | Path, *,
             n_children: int = DEFAULT_CHILDREN, seed: int = 1, heading: str | None = None) -> None:
    """Simulated centile bands of GMFM-66 by age for one level, over the published level curve."""
    grid = np.linspace(ages[0], ages[1], max(int((ages[1] - ages[0]) * 8) + 1, 2))
    rows = simulated_centiles(nh, gmfcs, grid, n_children=n_children, seed=seed)
    q = {k: np.array([r[f"p{k}"] for r in rows]) for k in CENTILES}
    fig, ax = _figure()
    ax.fill_between(grid, q[3], q[97], color="tab:blue", alpha=0.15, lw=0, label="3rd-97th centile")
    ax.fill_between(grid, q[15], q[85], color="tab:blue", alpha=0.3, lw=0, label="15th-85th centile")
    ax.plot(grid, q[50], color="tab:blue", lw=2, label="simulated median", zorder=3)
    ax.plot(grid, natural_history.mean_curve(nh, np.full(grid.shape, gmfcs), grid), color="k", ls="--", lw=1.5,
            label="published curve (Rosenbaum 2002, Hanna 2009)", zorder=4)
    ax.set(xlabel="age (years)", ylabel=f"GMFM-66 ({GMFM})", ylim=(0, 100), xlim=(grid[0], grid[-1]))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    _headed(fig, heading, f"GMFCS level {ROMAN[gmfcs - 1]}: simulated centiles, {n_children:,} children")
    _output(fig, path)


def visual_check(vpc: pd.DataFrame, path: str | Path | None, *, heading: str | None = None) -> bytes | None:
    """Visual predictive check of a calibration (:attr:`cbcp_sim.explore.calibration.Calibration.vpc`): one panel
    per GMFCS level, the observed centiles by age band as points over the 90% bands of the simulated ones."""
    levels = sorted(vpc.gmfcs.unique())
    cols = min(3, len(levels))
    rows = -(-len(levels) // cols)
    fig, axes = _pyplot().subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows + 0.6), layout="constrained",
                                   squeeze=False)
    for ax, level in zip(axes.flat, levels, strict=False):
        mine = vpc[vpc.gmfcs == level]
        for i, (centile, band) in enumerate(mine.groupby("centile")):
            style = _styled(i)
            ax.fill_between(band["age"], band["low"], band["high"], color=style["color"], alpha=0.2, lw=0)
            ax.plot(band["age"], band["median"], color=style["color"], lw=1, ls="--")
            ax.plot(band["age"], band["observed"], "o-", color=style["color"], ms=4, lw=1.2,
                    label=f"{centile}th centile")
        ax.set(title=f"GMFCS {ROMAN[level - 1]}", xlabel="age (years)", ylabel=f"GMFM-66 ({GMFM})")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(levels):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7, loc="lower right")
    _headed(fig, heading, "Observed centiles (points) over the 90% band and median (dashed) of the same centiles "
                          "in registries simulated from the fit")
    return _output(fig, path)


def natural_change(change: np.ndarray, enrol_ages: tuple[float, float], months: float, path: str | Path, *,
                   heading: str | None = None) -> None:
    """Histogram of a sample of natural changes in GMFM-66 over the follow-up
    (:func:`cbcp_sim.explore.centiles.change_sample`)."""
    fig, ax = _figure()
    ax.hist(change, bins=80, color="tab:blue", alpha=0.7)
    ax.axvline(change.mean(), color="k", lw=1.5, label=f"mean {change.mean():.1f} points")
    ax.set(xlabel=f"change in GMFM-66 over {months:g} months ({GMFM})", ylabel="children")
    ax.legend()
    _headed(fig, heading, f"Natural change, ages {enrol_ages[0]:g}-{enrol_ages[1]:g} years at enrolment")
    _output(fig, path)


def trajectories(tr: Trajectories, path: str | Path) -> None:
    """Three panels over months: GMFM-66, change from baseline (mean and 80% band by arm, natural history
    dashed), and each arm's mean difference from the reference arm with the band of children's cell effects."""
    fig, axes = _pyplot().subplots(1, 3, figsize=(14.0, 4.8), layout="constrained")
    m = tr.months
    band = f"{BAND[0]}th-{BAND[1]}th centile"
    panels = ((axes[0], "score", f"GMFM-66 ({GMFM})", "GMFM-66 by arm"),
              (axes[1], "change", f"change in GMFM-66 from baseline ({GMFM})", "change from baseline"))
    for ax, field, ylabel, title in panels:
        for i, arm in enumerate(tr.arms):
            b = getattr(arm, field)
            ax.fill_between(m, b.low, b.high, color=f"C{i}", alpha=0.15, lw=0)
            ax.plot(m, b.mean, color=f"C{i}", ls=DASHES[i % len(DASHES)], lw=2.6, zorder=3 + 0.1 * i,
                    label=f"{arm.name} (mean, {band})")
        nat = getattr(tr.natural, field)  # thin and sparse over the arms: a control arm on it still shows
        ax.plot(m, nat.mean, color="k", ls=(0, (1.5, 3)), lw=1.2, zorder=4, label="natural history (mean)")
        ax.set(xlabel="months after baseline", ylabel=ylabel)
        ax.set_title(_wrap(title, 4.0, 9), fontsize=9)
    axes[1].legend(fontsize=7, loc="upper left")
    ax = axes[2]
    for i, arm in enumerate(tr.arms[1:], start=1):
        ax.fill_between(m, arm.cell_effect.low, arm.cell_effect.high, color=f"C{i}", alpha=0.15, lw=0)
        ax.plot(m, arm.difference, color=f"C{i}", ls=DASHES[i % len(DASHES)], lw=2, zorder=3 + 0.1 * i,
                label=f"{arm.name} - {tr.arms[0].name}")
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set(xlabel="months after baseline", ylabel=f"difference in GMFM-66 ({GMFM})")
    ax.set_title(_wrap(f"mean difference; band: children's cell effects ({band})", 4.0, 9), fontsize=9)
    if len(tr.arms) > 1:
        ax.legend(fontsize=7)
    for a in axes:
        a.grid(alpha=0.3)
    _headed(fig, tr.title)
    _output(fig, path)


def time_courses(courses: list[Course], path: str | Path, months: float = 24.0) -> None:
    """Share of the peak effect over the months after one dose, one line per product's course."""
    grid = np.linspace(0.0, months, 481)
    fig, ax = _figure()
    for i, c in enumerate(courses):
        style = {k: v for k, v in _styled(i).items() if k not in ("marker", "ms", "mfc", "mec")}
        ax.plot(grid, treatment.time_course(c, grid), **{**style, "lw": 2},
                label=f"{c.product}: peak {c.peak_months:g} mo, {treatment.time_course(c, [12.0])[0]:.0%} at 12 mo")
    ax.set(xlabel="months after the dose", ylabel="share of the peak effect", ylim=(0, 1.05), xlim=(0, months))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    _headed(fig, None, "Time course of one dose by cell product (presets)")
    _output(fig, path)


#: Milestones of the duration histograms: key, words, colour.
DURATIONS = (("last_child_in", "enrolment (last child randomised)", "tab:blue"),
             ("database_lock", "total (database lock)", "tab:orange"))


def duration_bins(values: list[np.ndarray], most: int = 60) -> np.ndarray:
    """Bin edges shared by every duration histogram: whole, half or quarter months (or wider steps of 1, 2, 5
    x 10^k months) so that at most ``most`` bins span all the values."""
    finite = np.concatenate([v[np.isfinite(v)] for v in values])
    if finite.size == 0:
        return np.array([0.0, 1.0])
    low, high = float(finite.min()), float(finite.max())
    span = max(high - low, 1e-9)
    steps = [m * 10.0 ** k for k in range(-2, 6) for m in (1.0, 2.0, 2.5, 5.0)]
    step = next(s for s in steps if span / s <= most)
    start = math.floor(low / step) * step
    count = max(1, math.ceil((high - start) / step + 1e-9))
    return start + step * np.arange(count + 1)


def timeline(tl: Timeline, path: str | Path) -> None:
    """Accrual (children randomised by month: median with 80% and 95% bands over trials, and the target) beside
    the distributions of enrolment and total duration, on the same bins, each with its median."""
    from cbcp_sim.explore.timeline import BANDS

    plt = _pyplot()
    fig, (ax, hist) = plt.subplots(1, 2, figsize=(11.0, 4.8), layout="constrained")
    for (lo, hi), shade in zip(reversed(BANDS), (0.15, 0.3), strict=True):
        ax.fill_between(tl.months, tl.band(lo), tl.band(hi), color="tab:blue", alpha=shade, lw=0,
                        label=f"{100 * (hi - lo):.0f}% of trials")
    ax.plot(tl.months, tl.band(0.5), color="tab:blue", lw=2, label="median", zorder=3)
    ax.axhline(tl.n_children, color="k", ls="--", lw=1, label=f"target {tl.n_children} children", zorder=4)
    ax.set(xlabel="months since the first site opened", ylabel="children randomised", xlim=(0, tl.months[-1]))
    ax.set_title("Accrual", fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    bins = duration_bins([tl.milestones[key] for key, _, _ in DURATIONS])
    for key, words, colour in DURATIONS:
        values = tl.milestones[key][np.isfinite(tl.milestones[key])]
        if values.size:
            first = max(0, int(np.searchsorted(bins, values.min(), "right")) - 1)
            last = min(len(bins) - 1, max(first + 1, int(np.searchsorted(bins, values.max(), "left"))))
            own = bins[first:last + 1]  # the shared edges over this milestone's own range
            hist.hist(values, bins=own, color=colour, alpha=0.3, histtype="stepfilled", lw=0)
            hist.hist(values, bins=own, color=colour, histtype="step", lw=1.5, zorder=3)
            q05, q50, q95 = np.quantile(values, [0.05, 0.5, 0.95])
            hist.axvline(q50, color=colour, ls="--", lw=1.5, zorder=4,
                         label=f"{words}: median {q50:.1f} (5-95%: {q05:.1f}-{q95:.1f})")
    hist.set(xlabel="months since the first site opened", ylabel="simulated trials")
    hist.set_title(f"Duration of {tl.n_reps:,} simulated trials (bins of {bins[1] - bins[0]:g} months)", fontsize=9)
    hist.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=1, frameon=False)
    hist.grid(alpha=0.3)
    _headed(fig, tl.title)
    _output(fig, path)


# --- a run ------------------------------------------------------------------------------------------------------


def run_summary(result: dict[str, Any], path: str | Path | None = None, *,
                alpha: float | None = None) -> bytes | None:
    """Power and type I error of every analysis of a run (``result.json``), each with its Wilson 95% interval
    (Monte Carlo), beside the nominal ``alpha`` when given."""
    rows = list(result["analyses"])
    several = len({r["comparison"] for r in rows}) > 1
    names = [f"{r['analysis']} ({r['role']})" + (f"\n{r['comparison']}" if several else "") for r in rows]
    y = np.arange(len(rows))[::-1]
    fig, (power_ax, type1_ax) = _pyplot().subplots(1, 2, figsize=(9.0, 2.6 + 0.45 * len(rows)), sharey=True,
                                                   layout="constrained")
    trials = f"{result['n_reps']:,} simulated trials" if isinstance(result.get("n_reps"), int) else "trials"
    for ax, key, prefix, words, colour in ((power_ax, "power", "", "power", "tab:blue"),
                                           (type1_ax, "type1_error", "type1_", "type I error", "tab:red")):
        value = np.array([r[key] for r in rows], dtype=float)
        low = np.array([r.get(f"{prefix}ci_low", np.nan) for r in rows], dtype=float)
        high = np.array([r.get(f"{prefix}ci_high", np.nan) for r in rows], dtype=float)
        ax.errorbar(value, y, xerr=[np.nan_to_num(value - low), np.nan_to_num(high - value)], fmt="o",
                    color=colour, capsize=4, ms=6, zorder=3, label=f"{words}, Wilson 95% interval")
        ax.set_xlabel(words)
        ax.grid(axis="x", alpha=0.3)
    power_ax.set_xlim(0, 1)
    top = max([r.get("type1_ci_high", r["type1_error"]) for r in rows] + [alpha or 0.0])
    type1_ax.set_xlim(0, max(0.1, 1.25 * float(np.nan_to_num(top))))
    if alpha is not None:
        type1_ax.axvline(alpha, color="k", ls="--", lw=1, zorder=2, label=f"nominal alpha {alpha:g}")
    power_ax.set_yticks(y, names, fontsize=8)
    power_ax.set_ylim(-0.7, len(rows) - 0.3)
    fig.legend(fontsize=8, loc="outside lower center", ncols=3)
    fig.get_layout_engine().set(wspace=0.08)
    _headed(fig, heading_of(result), f"power (under the assumed effect) and type I error (under no effect): the "
                                     f"share of {trials} rejecting, by analysis")
    return _output(fig, path)


# --- planning ------------------------------------------------------------------------------------------------


def swept_columns(table: pd.DataFrame) -> list[str]:
    """The swept paths of a sweep's table: its columns between ``point`` and ``analysis``."""
    columns = list(table.columns)
    if "point" not in columns or "analysis" not in columns:
        raise ScenarioError("table", "is not a sweep's table: it needs the columns point and analysis")
    return columns[columns.index("point") + 1:columns.index("analysis")]


def curve_axis(table: pd.DataFrame) -> str | None:
    """The x axis of a sweep's power curves: ``design.n_per_arm`` if it is swept over several numbers, else the
    first swept column that is; None if no swept column is."""
    numeric = [c for c in swept_columns(table) if pd.api.types.is_numeric_dtype(table[c]) and table[c].nunique() > 1]
    return "design.n_per_arm" if "design.n_per_arm" in numeric else next(iter(numeric), None)


def power_curves(table: pd.DataFrame, x: str, path: str | Path | None = None, *, target: float | None = None,
                 analysis: str | None = None, heading: str | None = None) -> bytes | None:
    """Power against a swept column with its Monte Carlo 95% band, one line per combination of the other swept
    columns (and per comparison when there are several), each in its own colour, dash and marker.

    Parameters
    ----------
    table : a sweep's table (``results.csv``): ``point``, one column per swept path, ``analysis``, ...
    x : the numeric swept column on the x axis (``"design.n_per_arm"``), labelled in words with its unit.
    path : file to write (.png, .svg, .pdf); None returns PNG bytes.
    target : power drawn as a dashed line.
    analysis : the rows of this analysis; default the primary rows (``role == "primary"``).
    heading : the swept scenario's heading (:attr:`cbcp_sim.scenario.Scenario.heading`), the figure's title.
    """
    swept = swept_columns(table)
    if x not in swept or not pd.api.types.is_numeric_dtype(table[x]):
        raise ScenarioError(x, f"is not a numeric swept column; swept: {', '.join(swept) or 'none'}")
    rows = table[table["role"] == "primary"] if analysis is None else table[table["analysis"] == analysis]
    if rows.empty:
        known = ", ".join(map(str, table["analysis"].unique()))
        raise ScenarioError("analysis", f"the table has no rows of {analysis or 'a primary analysis'}; it has: {known}")
    keys = [c for c in swept if c != x] + (["comparison"] if rows["comparison"].nunique() > 1 else [])
    groups = rows.groupby(keys, sort=False, dropna=False) if keys else [((), rows)]
    fig, ax = _figure(7.5, 5.0)
    for i, (values, group) in enumerate(groups):
        g = group.sort_values(x)
        values = values if isinstance(values, tuple) else (values,)
        colour = f"C{i % 10}"
        ax.fill_between(g[x], g["ci_low"], g["ci_high"], color=colour, alpha=0.15, lw=0, zorder=1)
        shown = ", ".join(f"{_show(v)}" + (f" {unit_of(k)}" if unit_of(k) else "")
                          for k, v in zip(keys, values, strict=True))
        ax.plot(g[x], g["power"], **_styled(i), label=shown or "power")
    if target is not None:
        ax.axhline(target, color="0.15", ls=(0, (6, 3)), lw=1.2, zorder=2, label=f"target power {target:g}")
    ax.set(xlabel=label(x), ylabel="power (bands: Monte Carlo 95% interval)", ylim=(0, 1))
    ax.grid(alpha=0.3)
    if pd.api.types.is_integer_dtype(table[x]):
        ax.xaxis.get_major_locator().set_params(integer=True)
    if keys or target is not None:
        title = _wrap("; ".join(label(k) for k in keys), 3.2, 8) if keys else None
        ax.legend(fontsize=8, title=title, title_fontsize=8, loc="best")
    first = rows.iloc[0]
    comparison = "" if "comparison" in keys else f", {first['comparison']}"
    _headed(fig, heading, f"power of {first['analysis']}{comparison} by {label(x, unit=False)}")
    return _output(fig, path)


def _padded(low: float, high: float, pad: float = 0.08, bounds: tuple[float, float] = (0.0, 1.0)
            ) -> tuple[float, float]:
    span = max(high - low, 0.05)
    return max(bounds[0], low - pad * span), min(bounds[1], high + pad * span)


def sample_size(result: dict[str, Any], path: str | Path | None = None) -> bytes | None:
    """Simulated power (with its 95% interval) and the fitted power curve by sample size, the target and the
    chosen size, from a ``sample-size`` result (``result.json``); by children per arm, or in total when the
    arms differ in size. Both axes are scaled to the sizes simulated and the powers found (and the target)."""
    curve = pd.DataFrame(result["curve"]).sort_values("total")
    key = "n_per_arm" if pd.api.types.is_numeric_dtype(curve["n_per_arm"]) else "total"
    n, power = curve[key].astype(float), curve["power"]
    chosen = float(result[key]) if isinstance(result[key], int | float) else float(result["total"])
    fig, ax = _figure()
    ax.plot(n, curve["fitted_power"], color="0.35", lw=1.5, zorder=2, label="fitted power curve")
    ax.errorbar(n, power, yerr=[power - curve["ci_low"], curve["ci_high"] - power], fmt="o", color="tab:blue",
                capsize=3, ms=5, zorder=3, label="simulated power (95% interval)")
    ax.axhline(result["target"], color="k", ls="--", lw=1, zorder=1.5, label=f"target power {result['target']:g}")
    per = "per arm" if key == "n_per_arm" else "in total"
    ax.axvline(chosen, color="tab:red", ls=":", lw=1.5, zorder=1.5, label=f"chosen: {result[key]} children {per}")
    ax.plot(chosen, result["power"], "*", color="tab:red", ms=13, mec="white", zorder=4)
    ax.xaxis.get_major_locator().set_params(integer=True)
    low = float(min(curve["ci_low"].min(), result["target"], result["power"]))
    high = float(max(curve["ci_high"].max(), result["target"], result["power"]))
    left, right = float(min(n.min(), chosen)), float(max(n.max(), chosen))
    margin = max(1.0, 0.05 * (right - left))
    ax.set(xlabel="children per arm" if key == "n_per_arm" else "children in total", ylabel="power",
           ylim=_padded(low, high), xlim=(max(0.0, left - margin), right + margin))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    _headed(fig, heading_of(result), f"sample size for power {result['target']:g} ({result['analysis']}, "
                                     f"{result['comparison']})")
    return _output(fig, path)


def _ticklabels(paths: list[str], width: int = 34) -> list[str]:
    return ["\n".join(textwrap.wrap(label(p), width, break_on_hyphens=False)) for p in paths]


def tornado(result: dict[str, Any], path: str | Path | None = None) -> bytes | None:
    """One horizontal bar per parameter, largest swing on top: power at its low and at its high value around
    the base power, each end with its Monte Carlo 95% interval (1.96 MCSE) and labelled with the value, the
    base power with its own interval as a band, from a ``sensitivity`` result (``result.json``)."""
    rows = sorted(result["tornado"], key=lambda r: r["swing"])
    base = result["base_power"]
    base_mcse = result.get("base_mcse")
    y = np.arange(len(rows))
    fig, ax = _pyplot().subplots(figsize=(8.5, max(3.2, 2.0 + 0.6 * len(rows))), layout="constrained")
    if base_mcse is not None and math.isfinite(base_mcse):
        ax.axvspan(base - Z95 * base_mcse, base + Z95 * base_mcse, color="0.5", alpha=0.18, lw=0, zorder=0,
                   label="base power, Monte Carlo 95% interval")
    for end, colour, shift in (("low", "tab:blue", -0.17), ("high", "tab:orange", 0.17)):
        power = np.array([r[f"power_{end}"] for r in rows], dtype=float)
        mcse = np.array([r.get(f"mcse_{end}", np.nan) for r in rows], dtype=float)
        ax.barh(y + shift, power - base, left=base, height=0.34, color=colour, alpha=0.85, zorder=2,
                label=f"at the {end} value")
        half = np.where(np.isfinite(mcse), Z95 * mcse, 0.0)
        ax.errorbar(power, y + shift, xerr=half, fmt="none", ecolor="k", elinewidth=1, capsize=3, zorder=3)
        for yi, p, h, r in zip(y + shift, power, half, rows, strict=True):
            right = p >= base
            ax.annotate(_show(r[end]), (p + h if right else p - h, yi), xytext=(3 if right else -3, 0),
                        textcoords="offset points", ha="left" if right else "right", va="center", fontsize=8)
    ax.axvline(base, color="k", lw=1, zorder=2.5, label=f"base power {base:.3f}")
    ax.set_yticks(y, _ticklabels([r["path"] for r in rows]), fontsize=8)
    ax.margins(x=0.25)
    ax.set_xlabel("power (error bars: Monte Carlo 95% interval)")
    ax.grid(axis="x", alpha=0.3)
    fig.legend(fontsize=8, loc="outside lower center", ncols=2)
    _headed(fig, heading_of(result), f"one-at-a-time sensitivity of power ({result['analysis']}, "
                                     f"{result['comparison']}): bars from the base power")
    return _output(fig, path)


def prcc_ranking(result: dict[str, Any], path: str | Path | None = None) -> bytes | None:
    """The partial rank correlation of power with each parameter over the Latin-hypercube sample, largest
    magnitude on top, with its bootstrap 95% interval, from a ``sensitivity`` result with a global sample."""
    glob = result.get("global")
    if not glob:
        raise ScenarioError("global", "the sensitivity result has no global sample (samples = 0)")
    rows = sorted(glob["rows"], key=lambda r: -r["rank"])
    value = np.array([r["prcc"] for r in rows], dtype=float)
    low = np.array([r.get("prcc_low", np.nan) for r in rows], dtype=float)
    high = np.array([r.get("prcc_high", np.nan) for r in rows], dtype=float)
    y = np.arange(len(rows))
    fig, ax = _pyplot().subplots(figsize=(8.5, max(3.0, 1.8 + 0.5 * len(rows))), layout="constrained")
    ax.barh(y, value, height=0.55, color=np.where(value >= 0, "tab:orange", "tab:blue"), alpha=0.85, zorder=2)
    if np.isfinite(low).any():
        ax.errorbar(value, y, xerr=[np.nan_to_num(value - low), np.nan_to_num(high - value)], fmt="none",
                    ecolor="k", elinewidth=1, capsize=3, zorder=3, label="bootstrap 95% interval")
        ax.legend(fontsize=8, loc="lower right")
    ax.axvline(0.0, color="k", lw=1)
    ax.set_yticks(y, _ticklabels([r["path"] for r in rows]), fontsize=8)
    ax.set(xlim=(-1.05, 1.05), xlabel="partial rank correlation of power with the parameter (PRCC)")
    ax.grid(axis="x", alpha=0.3)
    _headed(fig, heading_of(result), f"global sensitivity over {glob['samples']:,} Latin-hypercube points "
                                     f"({result['analysis']}, {result['comparison']})")
    return _output(fig, path)


def assurance(draws: pd.DataFrame, result: dict[str, Any], path: str | Path | None = None) -> bytes | None:
    """Histogram of the power at each draw from the priors (``draws.csv``) with the assurance, their mean, and
    its Monte Carlo 95% interval, from an ``assurance`` result (``result.json``)."""
    value = result["assurance"]
    fig, ax = _figure()
    ax.hist(draws["power"].dropna(), bins=np.linspace(0.0, 1.0, 41), color="tab:blue", alpha=0.7, zorder=2)
    ax.axvspan(result["ci_low"], result["ci_high"], color="k", alpha=0.15, lw=0, zorder=1,
               label=f"95% interval {result['ci_low']:.3f}-{result['ci_high']:.3f}")
    ax.axvline(value, color="k", lw=1.5, zorder=3, label=f"assurance {value:.3f}")
    ax.set(xlabel="power at the values drawn from the priors", ylabel="draws", xlim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    _headed(fig, heading_of(result), f"assurance over {len(draws):,} draws from the priors ({result['analysis']}, "
                                     f"{result['comparison']})")
    return _output(fig, path)
