"""Figures (matplotlib, no display needed): what the natural-history and treatment models assume.

Each function saves one figure to ``path``; the format follows its extension (PNG, SVG, PDF).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cbcp_sim import growth, natural_history, treatment
from cbcp_sim.cells import Course
from cbcp_sim.errors import ScenarioError
from cbcp_sim.scenario import NaturalHistory
from cbcp_sim.trajectories import BAND, Trajectories

if TYPE_CHECKING:
    from cbcp_sim.timeline import Timeline

ROMAN = ("I", "II", "III", "IV", "V")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure():
    return _pyplot().subplots(figsize=(7.0, 4.5), layout="constrained")


def _save(fig, path: str | Path) -> None:  # noqa: ANN001 - matplotlib Figure
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise ScenarioError("--plot", f"file must end in .png, .svg or .pdf, got {path.name!r}")
    try:
        fig.savefig(path, dpi=150)
    except OSError as exc:
        raise ScenarioError("--plot", f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def centiles(nh: NaturalHistory, gmfcs: int, ages: tuple[float, float], path: str | Path, *,
             n_children: int = growth.DEFAULT_CHILDREN, seed: int = 1) -> None:
    """Simulated centile bands of GMFM-66 by age for one level, over the published level curve."""
    grid = np.linspace(ages[0], ages[1], max(int((ages[1] - ages[0]) * 8) + 1, 2))
    rows = growth.centiles(nh, gmfcs, grid, n_children=n_children, seed=seed)
    q = {k: np.array([r[f"p{k}"] for r in rows]) for k in growth.CENTILES}
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
    """Histogram of a sample of natural changes in GMFM-66 over the follow-up (:func:`growth.change_sample`)."""
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
    from cbcp_sim.timeline import BANDS

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

