"""Figures (matplotlib, no display needed): what the natural-history and treatment models assume, and the
answers of the planning commands (sweep, sample size, sensitivity, assurance).

Each function saves one figure to ``path``; the format follows its extension (PNG, SVG, PDF). The planning
figures return the figure as PNG bytes instead when ``path`` is None (for :mod:`cbcp_sim.io.report`).
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cbcp_sim.errors import InputError, ScenarioError
from cbcp_sim.explore.centiles import CENTILES, DEFAULT_CHILDREN, simulated_centiles
from cbcp_sim.explore.trajectories import BAND, Trajectories
from cbcp_sim.models import natural_history, treatment
from cbcp_sim.scenario import NaturalHistory
from cbcp_sim.scenario.products import Course

if TYPE_CHECKING:
    from cbcp_sim.explore.timeline import Timeline

ROMAN = ("I", "II", "III", "IV", "V")
FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


def _pyplot():
    """pyplot, on the non-interactive Agg backend unless the caller (a notebook, a script) chose one already."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and "MPLBACKEND" not in os.environ:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure():
    return _pyplot().subplots(figsize=(7.0, 4.5), layout="constrained")


def check_figure_path(path: str | Path) -> None:
    """A ``--plot`` file name matplotlib can write (by its extension); the CLI checks it before any work."""
    if Path(path).suffix.lower() not in FIGURE_SUFFIXES:
        raise InputError("path", f"file must end in .png, .svg or .pdf, got {Path(path).name!r}")


def _save(fig, path: str | Path) -> None:  # noqa: ANN001 - matplotlib Figure
    path = Path(path)
    check_figure_path(path)
    try:
        fig.savefig(path, dpi=150)
    except OSError as exc:
        raise InputError("path", f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def centiles(nh: NaturalHistory, gmfcs: int, ages: tuple[float, float], path: str | Path, *,
             n_children: int = DEFAULT_CHILDREN, seed: int = 1) -> None:
    """Simulated centile bands of GMFM-66 by age for one level, over the published level curve."""
    grid = np.linspace(ages[0], ages[1], max(int((ages[1] - ages[0]) * 8) + 1, 2))
    rows = simulated_centiles(nh, gmfcs, grid, n_children=n_children, seed=seed)
    q = {k: np.array([r[f"p{k}"] for r in rows]) for k in CENTILES}
    fig, ax = _figure()
    ax.fill_between(grid, q[3], q[97], color="tab:blue", alpha=0.15, lw=0, label="3rd-97th centile")
    ax.fill_between(grid, q[15], q[85], color="tab:blue", alpha=0.3, lw=0, label="15th-85th centile")
    ax.plot(grid, q[50], color="tab:blue", lw=2, label="simulated median")
    ax.plot(grid, natural_history.mean_curve(nh, np.full(grid.shape, gmfcs), grid), "k--", lw=1.5,
            label="published curve (Rosenbaum 2002, Hanna 2009)")
    ax.set(xlabel="age (years)", ylabel="GMFM-66", ylim=(0, 100), xlim=(grid[0], grid[-1]),
           title=f"GMFCS level {ROMAN[gmfcs - 1]}: simulated centiles, {n_children:,} children")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    _save(fig, path)


def natural_change(change: np.ndarray, enrol_ages: tuple[float, float], months: float, path: str | Path) -> None:
    """Histogram of a sample of natural changes in GMFM-66 over the follow-up
    (:func:`cbcp_sim.explore.centiles.change_sample`)."""
    fig, ax = _figure()
    ax.hist(change, bins=80, color="tab:blue", alpha=0.7)
    ax.axvline(change.mean(), color="k", lw=1.5, label=f"mean {change.mean():.1f}")
    ax.set(xlabel=f"change in GMFM-66 over {months:g} months", ylabel="children",
           title=f"Natural change, ages {enrol_ages[0]:g}-{enrol_ages[1]:g} at enrolment")
    ax.legend()
    _save(fig, path)


def trajectories(tr: Trajectories, path: str | Path) -> None:
    """Three panels over months: GMFM-66, change from baseline (mean and 80% band by arm, natural history
    dashed), and each arm's mean difference from the reference arm with the band of children's cell effects."""
    fig, axes = _pyplot().subplots(1, 3, figsize=(14.0, 4.5), layout="constrained")
    m = tr.months
    band = f"{BAND[0]}th-{BAND[1]}th centile"
    for ax, field, label in ((axes[0], "score", "GMFM-66"), (axes[1], "change", "change in GMFM-66")):
        for i, arm in enumerate(tr.arms):
            b = getattr(arm, field)
            ax.fill_between(m, b.low, b.high, color=f"C{i}", alpha=0.15, lw=0)
            ax.plot(m, b.mean, color=f"C{i}", lw=2, label=f"{arm.name} (mean, {band})")
        nat = getattr(tr.natural, field)
        ax.plot(m, nat.mean, "k--", lw=1.5, label="natural history (mean)")
        ax.set(xlabel="months after baseline", ylabel=label)
    axes[0].set_title(tr.title, fontsize=9)
    axes[1].legend(fontsize=7, loc="upper left")
    ax = axes[2]
    for i, arm in enumerate(tr.arms[1:], start=1):
        ax.fill_between(m, arm.cell_effect.low, arm.cell_effect.high, color=f"C{i}", alpha=0.15, lw=0)
        ax.plot(m, arm.difference, color=f"C{i}", lw=2, label=f"{arm.name} - {tr.arms[0].name}")
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set(xlabel="months after baseline", ylabel="difference in GMFM-66",
           title=f"mean difference; band: children's cell effects ({band})")
    ax.title.set_fontsize(9)
    if len(tr.arms) > 1:
        ax.legend(fontsize=7)
    for a in axes:
        a.grid(alpha=0.3)
    _save(fig, path)


def time_courses(courses: list[Course], path: str | Path, months: float = 24.0) -> None:
    """Share of the peak effect over the months after one dose, one line per product's course."""
    grid = np.linspace(0.0, months, 481)
    fig, ax = _figure()
    for i, c in enumerate(courses):
        ax.plot(grid, treatment.time_course(c, grid), color=f"C{i}", lw=2,
                label=f"{c.product}: peak {c.peak_months:g} mo, {treatment.time_course(c, [12.0])[0]:.0%} at 12 mo")
    ax.set(xlabel="months after the dose", ylabel="share of the peak effect", ylim=(0, 1.05), xlim=(0, months),
           title="Time course of one dose by cell product (presets)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)


def timeline(tl: Timeline, path: str | Path) -> None:
    """Accrual (children randomised by month: median with 80% and 95% bands over trials, and the target) beside
    the distributions of enrolment and total duration."""
    from cbcp_sim.explore.timeline import BANDS

    plt = _pyplot()
    fig, (ax, hist) = plt.subplots(1, 2, figsize=(10.0, 4.5), layout="constrained")
    for (lo, hi), shade in zip(reversed(BANDS), (0.15, 0.3), strict=True):
        ax.fill_between(tl.months, tl.band(lo), tl.band(hi), color="tab:blue", alpha=shade, lw=0,
                        label=f"{100 * (hi - lo):.0f}% of trials")
    ax.plot(tl.months, tl.band(0.5), color="tab:blue", lw=2, label="median")
    ax.axhline(tl.n_children, color="k", ls="--", lw=1, label=f"target {tl.n_children}")
    ax.set(xlabel="months since the first site opened", ylabel="children randomised", xlim=(0, tl.months[-1]),
           title="Accrual")
    ax.legend(loc="lower right", fontsize=8)
    for key, label, colour in (("last_child_in", "enrolment", "tab:blue"), ("database_lock", "total", "tab:orange")):
        hist.hist(tl.milestones[key], bins=40, color=colour, alpha=0.6, label=label)
    hist.set(xlabel="months", ylabel="trials", title=f"Duration ({tl.n_reps:,} simulated trials)")
    hist.legend(fontsize=8)
    fig.suptitle(tl.title, fontsize=10)
    _save(fig, path)


def _output(fig, path: str | Path | None) -> bytes | None:  # noqa: ANN001 - matplotlib Figure
    """Save ``fig`` to ``path``, or with no path return it as PNG bytes."""
    if path is not None:
        _save(fig, path)
        return None
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=110)
    finally:
        _pyplot().close(fig)
    return buffer.getvalue()


def _show(value: Any) -> str:
    """A parameter value in a label: floats without trailing zeros."""
    return f"{value:g}" if isinstance(value, float | np.floating) else str(value)


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
                 analysis: str | None = None) -> bytes | None:
    """Power against a swept column with its Monte Carlo 95% band, one line per combination of the other swept
    columns (and per comparison when there are several).

    Parameters
    ----------
    table : a sweep's table (``results.csv``): ``point``, one column per swept path, ``analysis``, ...
    x : the numeric swept column on the x axis (``"design.n_per_arm"``).
    path : file to write (.png, .svg, .pdf); None returns PNG bytes.
    target : power drawn as a dashed line.
    analysis : the rows of this analysis; default the primary rows (``role == "primary"``).
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
    fig, ax = _figure()
    for i, (values, group) in enumerate(groups):
        g = group.sort_values(x)
        colour = f"C{i % 10}"
        ax.fill_between(g[x], g["ci_low"], g["ci_high"], color=colour, alpha=0.2, lw=0)
        ax.plot(g[x], g["power"], "o-", color=colour, lw=1.5, ms=4,
                label=", ".join(f"{k}={_show(v)}" for k, v in zip(keys, values, strict=True)) or None)
    if target is not None:
        ax.axhline(target, color="k", ls="--", lw=1, label=f"target {target:g}")
    ax.set(xlabel=x, ylabel="power", ylim=(0, 1),
           title=f"Power of {rows['analysis'].iloc[0]} by {x} (band: Monte Carlo 95% interval)")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    if pd.api.types.is_integer_dtype(table[x]):
        ax.xaxis.get_major_locator().set_params(integer=True)
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize=8, loc="best")
    return _output(fig, path)


def sample_size(result: dict[str, Any], path: str | Path | None = None) -> bytes | None:
    """Simulated power (with its 95% interval) and the fitted power curve by sample size, the target and the
    chosen size, from a ``sample-size`` result (``result.json``); by children per arm, or in total when the
    arms differ in size."""
    curve = pd.DataFrame(result["curve"]).sort_values("total")
    key = "n_per_arm" if pd.api.types.is_numeric_dtype(curve["n_per_arm"]) else "total"
    n, power = curve[key], curve["power"]
    fig, ax = _figure()
    ax.errorbar(n, power, yerr=[power - curve["ci_low"], curve["ci_high"] - power], fmt="o", color="tab:blue",
                capsize=3, ms=4, label="simulated power (95% interval)")
    ax.plot(n, curve["fitted_power"], color="tab:blue", lw=1.5, label="fitted curve")
    ax.axhline(result["target"], color="k", ls="--", lw=1, label=f"target {result['target']:g}")
    ax.axvline(result[key], color="tab:red", ls=":", lw=1.5,
               label=f"chosen: {result[key]} {'per arm' if key == 'n_per_arm' else 'in total'}")
    ax.plot(result[key], result["power"], "*", color="tab:red", ms=12)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set(xlabel="children per arm" if key == "n_per_arm" else "children in total", ylabel="power", ylim=(0, 1),
           title=f"{result['title']}\nsample size for power {result['target']:g} ({result['analysis']})")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _output(fig, path)


def tornado(result: dict[str, Any], path: str | Path | None = None) -> bytes | None:
    """One horizontal bar per parameter, largest swing on top: power at its low and at its high value around
    the base power, each end labelled with the value, from a ``sensitivity`` result (``result.json``)."""
    rows = sorted(result["tornado"], key=lambda r: r["swing"])
    base = result["base_power"]
    y = np.arange(len(rows))
    fig, ax = _pyplot().subplots(figsize=(7.0, max(2.5, 1.2 + 0.45 * len(rows))), layout="constrained")
    for end, colour in (("low", "tab:blue"), ("high", "tab:orange")):
        power = np.array([r[f"power_{end}"] for r in rows], dtype=float)
        ax.barh(y, power - base, left=base, height=0.6, color=colour, alpha=0.8, label=f"at the {end} value")
        for yi, p, r in zip(y, power, rows, strict=True):
            ax.annotate(_show(r[end]), (p, yi), xytext=(3 if p >= base else -3, 0), textcoords="offset points",
                        ha="left" if p >= base else "right", va="center", fontsize=8)
    ax.axvline(base, color="k", lw=1, label=f"base power {base:.3f}")
    ax.set_yticks(y, [r["path"] for r in rows], fontsize=8)
    ax.margins(x=0.2)
    ax.set(xlabel="power", title=f"{result['title']}\none-at-a-time sensitivity of power ({result['analysis']})")
    ax.title.set_fontsize(9)
    ax.grid(axis="x", alpha=0.3)
    fig.legend(fontsize=8, loc="outside lower center", ncols=3)
    return _output(fig, path)


def assurance(draws: pd.DataFrame, result: dict[str, Any], path: str | Path | None = None) -> bytes | None:
    """Histogram of the power at each draw from the priors (``draws.csv``) with the assurance, their mean,
    from an ``assurance`` result (``result.json``)."""
    value = result["assurance"]
    fig, ax = _figure()
    ax.hist(draws["power"].dropna(), bins=np.linspace(0.0, 1.0, 41), color="tab:blue", alpha=0.7)
    ax.axvline(value, color="k", lw=1.5,
               label=f"assurance {value:.3f} (95% interval {result['ci_low']:.3f}-{result['ci_high']:.3f})")
    ax.set(xlabel="power at the drawn parameters", ylabel="draws", xlim=(0, 1),
           title=f"{result['title']}\nassurance {value:.3f} over {len(draws):,} draws from the priors")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return _output(fig, path)
