"""Which assumptions move power most: one at a time (a tornado) and together over a Latin hypercube.

For each range in ``[sensitivity.ranges]`` (dotted path = [low, high]) the one-at-a-time analysis runs the
scenario with that value at its low and at its high end, every other value as given, and ranks the paths
by the swing in power. The global analysis draws ``samples`` points of a Latin hypercube over all ranges at
once (McKay, Beckman & Conover 1979), runs each, and ranks the paths by the partial rank correlation
coefficient (PRCC) of power with each value, the others held fixed (Marino et al. 2008 J Theor Biol
254:178). Every point runs with the same seed (common random numbers), so differences in power between
points come from the values changed, not from different simulated children.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats
from scipy.stats import qmc

from cbcp_sim.errors import ScenarioError
from cbcp_sim.models.streams import named_rng
from cbcp_sim.planning.points import point_scenarios
from cbcp_sim.run.engine import point_tasks, run_points
from cbcp_sim.run.result import SimulationResult
from cbcp_sim.run.settings import RunSettings
from cbcp_sim.run.store import Store
from cbcp_sim.scenario import Scenario
from cbcp_sim.scenario.priors import lookup, typed_value

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class SensitivityResult:
    """The base run, the one-at-a-time rows (ranked by swing) and the global sample and ranking."""

    scenario: Scenario
    base: SimulationResult
    tornado: tuple[dict[str, Any], ...]
    samples: dict[str, np.ndarray]  #: per path, the value at each Latin-hypercube point (empty: none)
    sample_power: np.ndarray
    prcc: tuple[dict[str, Any], ...]
    reps: int
    seed: int

    @property
    def table(self) -> pd.DataFrame:
        """The global sample: ``sample``, each path's value, ``power``."""
        import pandas as pd

        return pd.DataFrame({"sample": np.arange(self.sample_power.size), **self.samples,
                             "power": self.sample_power})

    def tables(self) -> dict[str, pd.DataFrame]:
        """``tornado.csv`` (one row per range) and, with a global sample, ``global.csv`` (:attr:`table`)."""
        import pandas as pd

        out = {"tornado.csv": pd.DataFrame(list(self.tornado))}
        if self.prcc:
            out["global.csv"] = self.table
        return out

    def to_json(self) -> dict[str, Any]:
        row, base = self.base.primary, self.base.design_power
        return {"kind": "sensitivity", "title": self.scenario.title, "heading": self.scenario.heading,
                "scenario_digest": self.scenario.digest(),
                "analysis": row["analysis"], "comparison": row["comparison"], "base_power": base["power"],
                "base_mcse": base["mcse"], "reps": self.reps, "seed": self.seed,
                "tornado": [dict(r) for r in self.tornado],
                "global": ({"samples": int(self.sample_power.size), "rows": [dict(r) for r in self.prcc]}
                           if self.prcc else None)}

    def __str__(self) -> str:
        out = self.to_json()
        lines = [self.scenario.heading,
                 f"  base power {out['base_power']:.3f} (MCSE {out['base_mcse']:.4f}; {out['analysis']}, "
                 f"{out['comparison']}); {self.reps:,} trials per point; seed {self.seed}",
                 "  one at a time (ranked by swing)",
                 "    rank  path                                      low -> power    high -> power   swing"]
        lines += [f"    {r['rank']:>4}  {r['path']:<40}{r['low']:>6.4g} -> {r['power_low']:.3f}  "
                  f"{r['high']:>6.4g} -> {r['power_high']:.3f}  {r['swing']:.3f}" for r in self.tornado]
        if self.prcc:
            lines += [f"  global: {out['global']['samples']} Latin-hypercube points (ranked by |PRCC|)",
                      "    rank  path                                       PRCC"]
            lines += [f"    {r['rank']:>4}  {r['path']:<40}{r['prcc']:+7.3f}" for r in self.prcc]
        return "\n".join(lines)


def prcc(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Partial rank correlation of ``y`` ``(n,)`` with each column of ``x`` ``(n, d)``, the other columns held
    fixed: the correlation of the residuals of the ranks of both on the ranks of the others."""
    n, d = x.shape
    ranks = np.column_stack([stats.rankdata(x[:, j]) for j in range(d)])
    ry = stats.rankdata(y)
    out = np.empty(d)
    for j in range(d):
        others = np.column_stack([np.ones(n), np.delete(ranks, j, axis=1)])
        res_x = ranks[:, j] - others @ np.linalg.lstsq(others, ranks[:, j], rcond=None)[0]
        res_y = ry - others @ np.linalg.lstsq(others, ry, rcond=None)[0]
        denom = np.sqrt(np.sum(res_x ** 2) * np.sum(res_y ** 2))
        out[j] = np.sum(res_x * res_y) / denom if denom > 0 else np.nan
    return out


def latin_hypercube(ranges: tuple[tuple[str, float, float], ...], n: int, seed: int) -> np.ndarray:
    """``(n, d)`` points of a Latin hypercube over the ranges, from a stream of its own."""
    sampler = qmc.LatinHypercube(d=len(ranges), rng=named_rng(seed, "sensitivity latin hypercube"))
    lows, highs = np.array([r[1] for r in ranges]), np.array([r[2] for r in ranges])
    return qmc.scale(sampler.random(n), lows, highs)


def sensitivity(scenario: Scenario, settings: RunSettings | None = None, *, out: str | Path | None = None
                ) -> SensitivityResult:
    """One-at-a-time and Latin-hypercube sensitivity of the primary power to the scenario's
    ``[sensitivity]`` ranges, ``sensitivity.reps`` trials per point (``settings.reps`` is not used). With ``out``
    (a directory) each chunk is saved there as it finishes, the same call resumes, and ``result.json``,
    ``tornado.csv`` and (with a global sample) ``global.csv`` are written at the end."""
    settings = settings or RunSettings()
    seed = settings.seed
    cfg = scenario.sensitivity
    ranges = cfg.ranges
    if not ranges:
        raise ScenarioError("sensitivity.ranges", "give at least one range, e.g. [sensitivity.ranges] "
                                                  "\"dropout.fraction\" = [0, 0.2] (or --range path=low:high)")
    d = len(ranges)
    if cfg.samples and cfg.samples < d + 3:
        raise ScenarioError("sensitivity.samples", f"must be 0 or at least {d + 3} (ranges + 3) for partial rank "
                                                   f"correlations, got {cfg.samples}")
    per_point = settings.replace(reps=cfg.reps)
    raw = scenario.to_dict()
    points: list[dict[str, Any]] = [{}]
    points += [{path: typed_value(raw, path, v)} for path, low, high in ranges for v in (low, high)]
    lhs = latin_hypercube(ranges, cfg.samples, seed) if cfg.samples else np.empty((0, d))
    points += [{path: typed_value(raw, path, v) for (path, _, _), v in zip(ranges, row, strict=True)} for row in lhs]
    scenarios = point_scenarios(scenario, points, "sensitivity.ranges", per_path=True)
    store = None if out is None else Store(out, "sensitivity", {"scenario": scenario.to_dict(), "seed": seed})
    runs = run_points([point_tasks(s, per_point) for s in scenarios], settings, store=store, label="sensitivity")
    power = np.array([r.design_power["power"] for r in runs])
    mcse = np.array([r.design_power["mcse"] for r in runs])
    tornado = []
    for j, (path, _, _) in enumerate(ranges):
        lo_i, hi_i = 1 + 2 * j, 2 + 2 * j
        tornado.append({"path": path, "base": lookup(raw, path), "low": points[lo_i][path],
                        "high": points[hi_i][path], "power_low": power[lo_i], "power_high": power[hi_i],
                        "mcse_low": mcse[lo_i], "mcse_high": mcse[hi_i], "swing": abs(power[hi_i] - power[lo_i])})
    tornado = _ranked(tornado, "swing")
    sample_power = power[1 + 2 * d:]
    samples = {path: np.array([p[path] for p in points[1 + 2 * d:]]) for path, _, _ in ranges}
    ranking: list[dict[str, Any]] = []
    if cfg.samples:
        coefficients = prcc(np.column_stack([samples[p] for p, _, _ in ranges]).astype(float), sample_power)
        ranking = _ranked([{"path": p, "prcc": float(c), "abs": abs(c)} for (p, _, _), c in
                           zip(ranges, coefficients, strict=True)], "abs")
        for r in ranking:
            del r["abs"]
    result = SensitivityResult(scenario, runs[0], tuple(tornado), samples, sample_power, tuple(ranking), cfg.reps,
                               seed)
    if store is not None:
        store.write_result(result.to_json(), result.tables(), scenario.to_toml())
    return result


def _ranked(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Rows sorted by ``key``, largest first (NaN last), each with its ``rank`` (1 = largest)."""
    order = sorted(rows, key=lambda r: -r[key] if np.isfinite(r[key]) else np.inf)
    return [{**{k: (float(v) if isinstance(v, np.floating) else v) for k, v in r.items()}, "rank": i + 1}
            for i, r in enumerate(order)]
