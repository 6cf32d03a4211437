"""The result of a simulation run: tidy summary rows, per-replicate arrays, and a readable print."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cbcp_sim.analysis.metrics import wilson
from cbcp_sim.run.settings import CHUNK_SIZE
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
    chunk_size: int = CHUNK_SIZE  #: replicates per chunk: part of the random-number layout
    #: With a trial calendar: per quantity (milestones in months since the first site opened, children
    #: screened, unit failures, share of visits missed, infusion wait in days) its mean and 5/50/95% quantiles.
    operations: dict[str, dict[str, float]] | None = None
    #: With interim looks: the group-sequential operating characteristics
    #: (:func:`cbcp_sim.run.monitoring.sequential_summary`).
    sequential: dict[str, Any] | None = None

    @property
    def primary(self) -> dict[str, Any]:
        """Summary of the primary analysis."""
        return self.rows[0]

    @property
    def successes(self) -> tuple[int, int]:
        """Trials that succeeded and trials counted, for the design as run: with interim looks, rejection at
        any look (the group-sequential power); else the primary analysis's rejection. Failed analyses are
        not counted."""
        if self.sequential is not None:
            power, failed = self.sequential["power"], self.sequential["n_failed"]
        else:
            power, failed = self.primary["power"], self.primary["n_failed"]
        trials = self.n_reps - failed
        return (round(power * trials) if trials else 0), trials

    @property
    def design_power(self) -> dict[str, float]:
        """Power of the design as run (see :attr:`successes`) with its MCSE and Wilson 95% interval."""
        k, n = self.successes
        p = k / n if n else math.nan
        low, high = wilson(k, n)
        return {"power": p, "mcse": math.sqrt(p * (1 - p) / n) if n else math.nan, "ci_low": low, "ci_high": high}

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

    def command(self, file: str = "scenario.toml") -> str:
        """The command that runs this result again from ``file``, the scenario's :meth:`Scenario.to_toml` saved
        there (any number of jobs gives the same result)."""
        if self.chunk_size == CHUNK_SIZE:
            return f"cbcp-sim run {file} --reps {self.n_reps} --seed {self.seed}"
        return (f"python -c \"import cbcp_sim; print(cbcp_sim.simulate('{file}', reps={self.n_reps}, "
                f"seed={self.seed}, chunk_size={self.chunk_size}))\"")

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object: the primary analysis at top level, every analysis under ``analyses``."""
        out = {k: self.primary[k] for k in PRIMARY_FIELDS}
        out.update({"n_reps": self.n_reps, "seed": self.seed, "jobs": self.jobs, "seconds": self.seconds,
                    "screen_failure": self.screen_failure, "title": self.scenario.title,
                    "heading": self.scenario.heading, "effect": self.scenario.origin.effect,
                    "changes": [{"path": p, "value": v} for p, v in self.scenario.origin.changes],
                    "scenario_digest": self.scenario.digest(), "analyses": [dict(r) for r in self.rows],
                    "scenario_toml": self.scenario.to_toml(), "command": self.command()})
        if self.operations is not None:
            out["operations"] = self.operations
        if self.sequential is not None:
            out["sequential"] = self.sequential
        return out

    def __str__(self) -> str:
        s = self.scenario
        d = s.design
        arms = ", ".join(f"{a} {n}" for a, n in zip(d.arms, d.n_per_arm, strict=True))
        sided = "two-sided" if d.sides == 2 else "one-sided"
        lines = [s.heading,
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
        lines += _operations_lines(self.operations) + _sequential_lines(self.sequential)
        return "\n".join(lines)


#: Labels of the calendar quantities printed, in months unless said.
OPERATIONS_LABELS = {"last_child_in": "last child randomised", "last_primary_visit": "last primary visit",
                     "database_lock": "database lock", "screened": "children screened",
                     "infusion_wait_days": "wait for infusion (days)", "missed_visits": "visits missed (share)"}


def _operations_lines(ops: dict[str, dict[str, float]] | None) -> list[str]:
    if ops is None:
        return []
    lines = ["  calendar (months since the first site opened; median, 5-95%)"]
    for key, label in OPERATIONS_LABELS.items():
        q = ops[key]
        digits = 3 if key == "missed_visits" else 1
        lines.append(f"    {label:<26}{q['q50']:8.{digits}f}  ({q['q05']:.{digits}f} to {q['q95']:.{digits}f})")
    return lines


def _sequential_lines(seq: dict[str, Any] | None) -> list[str]:
    if seq is None:
        return []
    looks = ", ".join(f"{x:.3g}" for x in seq["interims"])
    lines = [f"  group sequential ({seq['spending']} spending; interims at {seq['timing']} {looks}; the "
             "analyses above are the fixed design, without interim stopping)",
             f"    power         {seq['power']:.3f}  MCSE {seq['mcse']:.4f}",
             f"    type I error  {seq['type1_error']:.4f}  MCSE {seq['type1_mcse']:.4f}  (nominal {seq['alpha']:g} "
             "one-sided)",
             "    look   month  fraction  stop for efficacy  futility   (under no effect)"]
    for k in range(seq["looks"]):
        lines.append(f"    {k + 1:>4}  {seq['look_months'][k]:6.1f}  {seq['look_fraction'][k]:8.3f}  "
                     f"{seq['stop_efficacy'][k]:17.3f}  {seq['stop_futility'][k]:8.3f}   "
                     f"({seq['null_stop_efficacy'][k]:.3f}, {seq['null_stop_futility'][k]:.3f})")
    lines.append(f"    expected children {seq['expected_children']:.1f} ({seq['null_expected_children']:.1f}); "
                 f"expected months {seq['expected_months']:.1f} ({seq['null_expected_months']:.1f}); "
                 f"failed final analyses {seq['n_failed']}")
    return lines


def _effect_line(r: dict[str, Any]) -> str:
    if not math.isfinite(r["true_effect"]):
        return f"    effect        mean estimate {r['mean_estimate']:.3f} (its true value is not computed)"
    return (f"    effect        true {r['true_effect']:.3f}  mean estimate {r['mean_estimate']:.3f}  "
            f"bias {r['bias']:+.3f} (MCSE {r['bias_mcse']:.3f})")
