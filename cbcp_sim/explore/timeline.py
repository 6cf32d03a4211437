"""How long a trial takes: the calendar of many simulated trials, without trial.

The same calendars as a run of the scenario with ``operations.enabled`` and the same seed (the same streams, chunk
by chunk): enrolment duration (last child randomised), total duration (database lock), the other milestones, and
the accrual curve (children randomised by each month) with its band over trials.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from cbcp_sim.errors import SettingsError
from cbcp_sim.models import operations, trial
from cbcp_sim.models.streams import Streams
from cbcp_sim.run.engine import point_tasks, run_tasks
from cbcp_sim.run.settings import RunSettings
from cbcp_sim.scenario import Scenario

DEFAULT_REPS = 1000
MAX_REPS = 100_000
#: Quantile pairs of the accrual band (80% and 95%).
BANDS = ((0.1, 0.9), (0.025, 0.975))
#: Spacing of the accrual curve's month grid.
GRID_STEP = 0.25


@dataclass(frozen=True)
class Timeline:
    """Calendars of ``n_reps`` trials of one scenario."""

    title: str
    n_children: int
    n_reps: int
    seed: int
    milestones: dict[str, np.ndarray]  #: per trial (R,), see :func:`cbcp_sim.models.operations.summary_arrays`
    months: np.ndarray                 #: (T,) grid of the accrual curve
    accrual: np.ndarray                #: (R, T) children randomised by each month

    def band(self, q: float) -> np.ndarray:
        """Quantile ``q`` over trials of the children randomised by each month of the grid."""
        return np.quantile(self.accrual, q, axis=0)

    def to_json(self) -> dict[str, Any]:
        """``enrolment_months`` and ``total_months`` (mean and 5/50/95% quantiles), every milestone the same way,
        and the accrual curve's median and bands on its month grid."""
        summary = operations.milestone_summary(self.milestones)
        curve = {"months": self.months.tolist(), "median": self.band(0.5).tolist()}
        for lo, hi in BANDS:
            curve[f"q{100 * lo:g}"] = self.band(lo).tolist()
            curve[f"q{100 * hi:g}"] = self.band(hi).tolist()
        return {"title": self.title, "n_children": self.n_children, "n_reps": self.n_reps, "seed": self.seed,
                "enrolment_months": summary["last_child_in"], "total_months": summary["database_lock"],
                "milestones": summary, "accrual": curve}

    def __str__(self) -> str:
        s = operations.milestone_summary(self.milestones)
        rows = [("enrolment (last child randomised)", "last_child_in"), ("last infusion", "last_infusion"),
                ("last primary visit", "last_primary_visit"), ("last visit", "last_visit"),
                ("total (database lock)", "database_lock")]
        lines = [self.title, f"  {self.n_children} children; {self.n_reps:,} simulated trials; seed {self.seed}",
                 "  months since the first site opened     mean  median  5%-95%"]
        lines += [f"  {label:<36}{s[k]['mean']:6.1f}  {s[k]['q50']:6.1f}  {s[k]['q05']:.1f}-{s[k]['q95']:.1f}"
                  for label, k in rows]
        lines.append(f"  children screened {s['screened']['mean']:.1f}; units not released "
                     f"{s['unit_failures']['mean']:.2f}; wait for infusion {s['infusion_wait_days']['mean']:.1f} days; "
                     f"follow-up visits missed {100 * s['missed_visits']['mean']:.1f}%")
        return "\n".join(lines)


def calendars(s: Scenario, seed: int, chunk: int, n_reps: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Chunk ``chunk`` of a timeline: the milestones of ``n_reps`` trial calendars and when each child was
    randomised ``(R, N)``, from the same streams as the chunk of a run."""
    sizes, by_arm = trial.storage(s)
    calendar = operations.schedule(s, sizes, by_arm, n_reps, Streams(seed, chunk))
    return operations.summary_arrays(calendar, s), calendar.randomised


def timeline(s: Scenario, settings: RunSettings | None = None) -> Timeline:
    """Simulate the calendars of ``settings.reps`` trials of ``s`` (its operations section, whether or not
    enabled; default 1,000 trials, at most 100,000), chunk by chunk through the engine."""
    settings = settings or RunSettings(reps=DEFAULT_REPS)
    if settings.reps > MAX_REPS:
        raise SettingsError("reps", f"must be a whole number in [1, {MAX_REPS}], got {settings.reps}")
    heading = s.heading
    s = replace(s, operations=replace(s.operations, enabled=True))
    parts = run_tasks(point_tasks(s, settings, work=calendars), settings, label="timeline")
    milestones = {k: np.concatenate([arrays[k] for arrays, _ in parts]) for k in parts[0][0]}
    randomised = np.concatenate([r for _, r in parts])
    sizes, _ = trial.storage(s)
    end = float(np.ceil(milestones["last_child_in"].max() / GRID_STEP) * GRID_STEP)
    months = np.arange(0.0, end + GRID_STEP / 2, GRID_STEP)
    accrual = np.stack([(randomised <= m).sum(axis=1) for m in months], axis=1)
    return Timeline(title=heading, n_children=sum(sizes), n_reps=settings.reps, seed=settings.seed,
                    milestones=milestones,
                    months=months, accrual=accrual)
