"""Calibrate a Bayesian GO rule: the smallest ``bayes.go_probability`` whose type I error (P(GO) under no
effect) is at most ``alpha`` at every drift asked.

One run gives the trials; every drift is decided on those same trials (common random numbers: a drift moves
the control prior, :mod:`cbcp_sim.analysis.decisions`), so the answer is deterministic for a seed. For each
drift the posterior probabilities P(effect > go_threshold | data) of the trials under no effect are sorted;
with ``k = floor(alpha n)`` GOs allowed among ``n`` analysed trials, the smallest GO probability allowing at
most ``k`` is just above the ``(k + 1)``-th largest: the exact limit of a bisection on the probability, found
without one. The answer is the largest over the drifts (at least 0.5, the smallest the rule takes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cbcp_sim.analysis.metrics import rate
from cbcp_sim.errors import SettingsError
from cbcp_sim.run import bayes
from cbcp_sim.run.engine import simulate
from cbcp_sim.run.result import SimulationResult
from cbcp_sim.run.settings import RunSettings
from cbcp_sim.scenario import Scenario

if TYPE_CHECKING:
    import pandas as pd

#: The smallest GO probability the rule takes (``bayes.go_probability``).
LOWEST = 0.5


@dataclass(frozen=True)
class GoCalibration:
    """The calibrated GO probability and, at each drift, the type I error and P(GO) under the scenario's effect
    it gives on the calibration's own trials (with Monte Carlo SEs)."""

    scenario: Scenario
    alpha: float
    go_probability: float
    drifts: tuple[float, ...]
    type1_error: np.ndarray
    type1_mcse: np.ndarray
    p_go: np.ndarray
    p_go_mcse: np.ndarray
    analysed: int
    run: SimulationResult

    @property
    def table(self) -> pd.DataFrame:
        """One row per drift."""
        import pandas as pd

        return pd.DataFrame({"drift": self.drifts, "type1_error": self.type1_error, "type1_mcse": self.type1_mcse,
                             "p_go": self.p_go, "p_go_mcse": self.p_go_mcse})

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object."""
        return {"go_probability": self.go_probability, "alpha": self.alpha, "drifts": list(self.drifts),
                "type1_error": self.type1_error.tolist(), "type1_mcse": self.type1_mcse.tolist(),
                "p_go": self.p_go.tolist(), "p_go_mcse": self.p_go_mcse.tolist(), "analysed": self.analysed,
                "n_reps": self.run.n_reps, "seed": self.run.seed, "title": self.scenario.title,
                "heading": self.scenario.heading, "scenario_digest": self.scenario.digest(),
                "scenario_toml": self.scenario.to_toml(),
                "command": f"cbcp-sim calibrate-go scenario.toml --alpha {self.alpha:g} --drifts "
                           f"{' '.join(f'{d:g}' for d in self.drifts)} --reps {self.run.n_reps} --seed {self.run.seed}"}

    def __str__(self) -> str:
        b = self.scenario.bayes
        assert b is not None
        lines = [self.scenario.heading,
                 f"  GO if P(effect > {b.go_threshold:g} | data) >= go_probability; calibrated on {self.analysed:,} "
                 f"trials under no effect (seed {self.run.seed}), type I error at most {self.alpha:g} at every drift",
                 f"  go_probability {self.go_probability:.6f}",
                 "    drift  type I error (MCSE)   P(GO) under the scenario's effect (MCSE)"]
        lines += [f"  {d:+7.3g}  {t:.4f} ({ts:.4f})        {p:.4f} ({ps:.4f})"
                  for d, t, ts, p, ps in zip(self.drifts, self.type1_error, self.type1_mcse, self.p_go,
                                             self.p_go_mcse, strict=True)]
        return "\n".join(lines)


def smallest_go_probability(prob_go: np.ndarray, alpha: float) -> float:
    """The smallest GO probability at which at most ``floor(alpha n)`` of the ``n`` posterior probabilities
    ``prob_go`` reach it (NaN entries, failed trials, are not counted)."""
    q = np.sort(prob_go[np.isfinite(prob_go)])[::-1]
    k = math.floor(alpha * q.size + 1e-9)
    if k >= q.size:
        return LOWEST
    return float(np.nextafter(q[k], np.inf))


def calibrate_go(scenario: Scenario, alpha: float, drifts: tuple[float, ...] | None = None, *,
                 settings: RunSettings | None = None) -> GoCalibration:
    """Calibrate ``scenario``'s GO probability to a type I error of at most ``alpha`` (one-sided, in (0, 0.5))
    at every drift of ``drifts`` (points; default the scenario's ``bayes.drift``), on one run of ``settings``."""
    b = scenario.bayes
    if b is None:
        raise SettingsError("scenario", "has no [bayes] section to calibrate")
    if not (isinstance(alpha, int | float) and 0.0 < alpha < 0.5):
        raise SettingsError("alpha", f"must be in (0, 0.5), got {alpha!r}")
    drifts = (b.drift,) if drifts is None else tuple(float(d) for d in drifts)
    if not drifts or any(not math.isfinite(d) or abs(d) > 100.0 for d in drifts):
        raise SettingsError("drifts", f"must be one or more numbers in [-100, 100] (points), got {list(drifts)}")
    if not b.borrows and any(d != 0.0 for d in drifts):
        raise SettingsError("drifts", "move a control-arm prior (bayes.control); this scenario's prior is on the "
                                      "effect: calibrate at drift 0")
    run = simulate(scenario, settings=settings or RunSettings())
    priors = bayes.priors(scenario)
    null, alt = ([bayes.decisions(scenario, priors, run.bayes_data[p], d) for d in drifts] for p in ("null", "alt"))
    chosen = max([LOWEST, *(smallest_go_probability(np.where(d.failed, np.nan, d.prob_go), alpha) for d in null)])
    if chosen >= 1.0:
        raise SettingsError("alpha", f"no GO probability below 1 keeps the type I error at most {alpha:g} at every "
                                     "drift: more trials, a smaller drift or a more robust prior")

    def share(ds: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        """P(GO) at the calibrated probability, and its MCSE, at each drift (P(effect > go_threshold) does not
        depend on the GO probability, so the decisions made above serve)."""
        shares = [rate(d.prob_go >= chosen, d.failed) for d in ds]
        return np.array([r["rate"] for r in shares]), np.array([r["mcse"] for r in shares])

    (t1, t1_se), (go, go_se) = share(null), share(alt)
    return GoCalibration(scenario=scenario, alpha=float(alpha), go_probability=chosen, drifts=drifts,
                         type1_error=t1, type1_mcse=t1_se, p_go=go, p_go_mcse=go_se,
                         analysed=int((~null[0].failed).sum()), run=run)
