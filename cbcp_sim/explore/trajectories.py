"""GMFM-66 over time in each arm of a scenario, beside natural history: the assumed effect, before any power.

The same simulated children (enrolled by the population model) are followed under every arm's regimen
and without any treatment, so the differences between arms are the scenario's assumed effects and
nothing else: the cell effect, the expectation response and, in open designs, the assessor's bias.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cbcp_sim.errors import ScenarioError
from cbcp_sim.models import follow_up, population
from cbcp_sim.models.streams import Streams
from cbcp_sim.scenario import Scenario

DEFAULT_CHILDREN = 5000
#: Centiles of the band drawn around each mean (an 80% band).
BAND = (10, 90)
#: Spacing of the month grid (months).
STEP_MONTHS = 0.5


@dataclass(frozen=True)
class Band:
    """Mean and the :data:`BAND` centiles over children at each month ``(T,)``."""

    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray) -> Band:
        """Summary over children (axis 0) of ``x`` ``(n, T)``."""
        low, high = np.percentile(x, BAND, axis=0)
        return cls(mean=x.mean(axis=0), low=low, high=high)

    def to_json(self, prefix: str = "") -> dict[str, list[float]]:
        return {f"{prefix}{k}": getattr(self, k).tolist() for k in ("mean", "low", "high")}


@dataclass(frozen=True)
class ArmTrajectory:
    """One arm (or natural history) over time."""

    name: str
    kind: str
    score: Band          #: observed GMFM-66
    change: Band         #: observed change from baseline
    cell_effect: Band    #: cell effect on the true score (points)
    difference: np.ndarray  #: mean observed difference from the reference (first) arm, same children

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, **self.score.to_json(), **self.change.to_json("change_"),
                **self.cell_effect.to_json("cell_effect_"), "difference": self.difference.tolist()}


@dataclass(frozen=True)
class Trajectories:
    """GMFM-66 of ``n_children`` children at ``months`` in every arm and without treatment."""

    title: str
    months: np.ndarray
    arms: tuple[ArmTrajectory, ...]
    natural: ArmTrajectory
    n_children: int
    seed: int

    def to_json(self) -> dict[str, object]:
        return {"title": self.title, "months": self.months.tolist(), "band": list(BAND),
                "n_children": self.n_children, "seed": self.seed, "natural_history": self.natural.to_json(),
                "arms": [a.to_json() for a in self.arms]}


def month_grid(s: Scenario) -> np.ndarray:
    """Every :data:`STEP_MONTHS` from baseline to the last visit, and every visit and dose month."""
    last = s.design.visits[-1]
    doses = [d.month for r in s.regimens for d in r.doses if d.month <= last]
    return np.union1d(np.arange(0.0, last + STEP_MONTHS / 2, STEP_MONTHS), [*s.design.visits, *doses])


def trajectories(s: Scenario, *, n_children: int = DEFAULT_CHILDREN, seed: int = 1,
                 months: np.ndarray | None = None) -> Trajectories:
    """Follow ``n_children`` enrolled children under every arm's regimen of ``s`` (one seed, one cohort)."""
    if not 100 <= n_children <= 1_000_000:
        raise ScenarioError("n_children", f"must be in [100, 1000000], got {n_children}")
    months = month_grid(s) if months is None else np.asarray(months, dtype=float)
    sizes, streams = (n_children,), Streams(seed, 0)
    enrolled = population.enrol(s.population, s.eligibility, sizes, 1, streams)
    untreated = follow_up.draw(s, enrolled, months, sizes, streams)
    followed = [follow_up.follow(s, regimen, untreated) for regimen in s.regimens]
    natural = follow_up.follow(s, follow_up.UNTREATED, untreated)
    reference = followed[0].scores[0]

    def summary(name: str, kind: str, arm: follow_up.Followed) -> ArmTrajectory:
        scores = arm.scores[0]
        return ArmTrajectory(name=name, kind=kind, score=Band.of(scores), change=Band.of(scores - scores[:, :1]),
                             cell_effect=Band.of(arm.cell_effect[0]), difference=(scores - reference).mean(axis=0))

    return Trajectories(title=s.heading, months=months,
                        arms=tuple(summary(r.name, r.kind, f) for r, f in zip(s.regimens, followed, strict=True)),
                        natural=summary("natural history", "nothing", natural),
                        n_children=n_children, seed=seed)


def table(tr: Trajectories, months: tuple[float, ...]) -> str:
    """Text summary at ``months``: mean change (80% band) per arm, and each arm's difference from the first."""
    rows = [np.flatnonzero(np.isclose(tr.months, m))[0] for m in months]
    ref = tr.arms[0].name
    head = ["month", tr.natural.name, *(a.name for a in tr.arms), *(f"{a.name} - {ref}" for a in tr.arms[1:])]
    lines = [f"GMFM-66 trajectories: {tr.title}",
             f"  {tr.n_children:,} children followed in every arm and untreated; seed {tr.seed}",
             f"  change from baseline: mean ({BAND[0]}th to {BAND[1]}th centile); difference: mean, same children",
             "  " + " | ".join(head)]
    for i, m in zip(rows, months, strict=True):
        cells = [f"{m:5g}"]
        cells += [f"{a.change.mean[i]:5.2f} ({a.change.low[i]:5.1f} to {a.change.high[i]:5.1f})"
                  for a in (tr.natural, *tr.arms)]
        cells += [f"{a.difference[i]:+6.2f}" for a in tr.arms[1:]]
        lines.append("  " + " | ".join(cells))
    return "\n".join(lines)
