"""The result of a simulation run: tidy summary rows, per-replicate arrays, and a readable print."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cbcp_sim.scenario import Scenario

if TYPE_CHECKING:
    import pandas as pd

#: Fields of the primary analysis repeated at the top level of ``--json`` (a public interface).
PRIMARY_FIELDS = ("analysis", "comparison", "power", "mcse", "ci_low", "ci_high", "type1_error", "type1_mcse",
                  "type1_ci_low", "type1_ci_high", "true_effect", "mean_estimate", "bias", "bias_mcse",
                  "empirical_se", "rmse", "coverage", "n_failed")


@dataclass(frozen=True)
class SimulationResult:
    """Operating characteristics of one scenario.

    ``rows`` has one dict per analysis (primary first); :attr:`table` is the same as a tidy
    DataFrame. ``replicates`` holds per-replicate arrays by analysis (estimate, se, df, p, reject,
    and the same under no effect), in replicate order.
    """

    scenario: Scenario
    rows: tuple[dict[str, Any], ...]
    n_reps: int
    seed: int
    jobs: int
    seconds: float
    true_effect: float
    screen_failure: float
    replicates: dict[str, dict[str, np.ndarray]] = field(repr=False)

    @property
    def primary(self) -> dict[str, Any]:
        """Summary of the primary analysis."""
        return self.rows[0]

    @property
    def table(self) -> pd.DataFrame:
        """One row per analysis: power, MCSE, interval, type I error, bias, RMSE, coverage, ..."""
        import pandas as pd

        return pd.DataFrame(list(self.rows))

    def replicate_table(self) -> pd.DataFrame:
        """One row per replicate and analysis (long format); ``analysis`` is the key of :attr:`replicates`."""
        import pandas as pd

        frames = [pd.DataFrame({"analysis": name, "replicate": np.arange(self.n_reps), **arrays})
                  for name, arrays in self.replicates.items()]
        return pd.concat(frames, ignore_index=True)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object: the primary analysis at top level, every analysis under ``analyses``."""
        out = {k: self.primary[k] for k in PRIMARY_FIELDS}
        out.update({"n_reps": self.n_reps, "seed": self.seed, "jobs": self.jobs, "seconds": self.seconds,
                    "screen_failure": self.screen_failure, "title": self.scenario.title,
                    "scenario_digest": self.scenario.digest(), "analyses": [dict(r) for r in self.rows]})
        return out

    def __str__(self) -> str:
        s = self.scenario
        d = s.design
        arms = ", ".join(f"{a} {n}" for a, n in zip(d.arms, d.n_per_arm, strict=True))
        sided = "two-sided" if d.sides == 2 else "one-sided"
        lines = [s.title,
                 f"  design   {arms}; primary visit month {d.primary_visit:g}; alpha {d.alpha:g} {sided}",
                 f"  model    {s.outcome.model}; {self.n_reps:,} replicates; seed {self.seed}; "
                 f"{self.seconds:.2f} s"]
        if s.outcome.model == "gmfm66":
            lines.append("  arms     " + "; ".join(f"{r.name}: {r.describe()}" for r in s.regimens)
                         + f"; blinding {d.blinding}")
            lines.append(f"  children {s.population.source} source; screen failures {100 * self.screen_failure:.1f}%")
        several = len({r["comparison"] for r in self.rows}) > 1
        for r in self.rows:
            lines += [
                f"  {r['analysis']} ({r['role']})" + (f", {r['comparison']}" if several else ""),
                f"    power         {r['power']:.3f}  MCSE {r['mcse']:.4f}  "
                f"95% CI {r['ci_low']:.3f} to {r['ci_high']:.3f}",
                f"    type I error  {r['type1_error']:.4f}  MCSE {r['type1_mcse']:.4f}  (nominal {d.alpha:g})",
                _effect_line(r),
                f"    RMSE {r['rmse']:.3f}  coverage {r['coverage']:.3f}  failed replicates {r['n_failed']}"
                if math.isfinite(r["true_effect"]) else f"    failed replicates {r['n_failed']}",
            ]
        return "\n".join(lines)


def _effect_line(r: dict[str, Any]) -> str:
    if not math.isfinite(r["true_effect"]):
        return f"    effect        mean estimate {r['mean_estimate']:.3f} (its true value is not computed)"
    return (f"    effect        true {r['true_effect']:.3f}  mean estimate {r['mean_estimate']:.3f}  "
            f"bias {r['bias']:+.3f} (MCSE {r['bias_mcse']:.3f})")
