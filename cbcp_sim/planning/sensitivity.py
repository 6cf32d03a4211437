"""Which assumptions move power most: one at a time (a tornado) and together over a Latin hypercube.

For each range in ``[sensitivity.ranges]`` (dotted path = [low, high]) the one-at-a-time analysis runs the
scenario with that value at its low and at its high end, every other value as given, and ranks the paths
by the swing in power. The global analysis draws ``samples`` points of a Latin hypercube over all ranges at
once (McKay, Beckman & Conover 1979), runs each, and ranks the paths by the partial rank correlation
coefficient (PRCC) of power with each value, the others held fixed (Marino et al. 2008 J Theor Biol
254:178), each with a bootstrap 95% interval (the Latin-hypercube points resampled with replacement, from a
stream of its own: how far each coefficient may move with other points and other trials). Every point runs
with the same seed (common random numbers), so differences in power between points come from the values
changed, not from different simulated children.
"""

from __future__ import annotations

import warnings
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
from cbcp_sim.run.result import SimulationResult, described, endpoint_text, scenario_comparison
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
    comparison: str | None = None  #: the comparison whose power is examined (a label; None: the first)

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
        row, base = self.base.row(self.comparison), self.base.design_power_for(self.comparison)
        return {"kind": "sensitivity", "title": self.scenario.title, "heading": self.scenario.heading,
                "scenario_digest": self.scenario.digest(),
                "analysis": row["analysis"], "comparison": row["comparison"],
                **described(self.scenario, row["analysis"]), "endpoint": self.scenario.analysis.endpoint,
                "base_power": base["power"],
                "base_mcse": base["mcse"], "reps": self.reps, "seed": self.seed,
                "tornado": [dict(r) for r in self.tornado],
                "global": ({"samples": int(self.sample_power.size), "rows": [dict(r) for r in self.prcc]}
                           if self.prcc else None)}

    def __str__(self) -> str:
        out = self.to_json()
        lines = [self.scenario.heading,
                 f"  base power {out['base_power']:.3f} (MCSE {out['base_mcse']:.4f}; {out['analysis']}, "
                 f"comparison {out['comparison']}); {self.reps:,} trials per point; seed {self.seed}",
                 f"  estimand   {out['estimand']}",
                 f"  endpoint   {endpoint_text(self.scenario)}",
                 "  one at a time (ranked by swing)",
                 "    rank  path                                      low -> power    high -> power   swing"]
        lines += [f"    {r['rank']:>4}  {r['path']:<40}{r['low']:>6.4g} -> {r['power_low']:.3f}  "
                  f"{r['high']:>6.4g} -> {r['power_high']:.3f}  {r['swing']:.3f}" for r in self.tornado]
        if self.prcc:
            lines += [f"  global: {out['global']['samples']} Latin-hypercube points (ranked by |PRCC|)",
                      "    rank  path                                       PRCC  bootstrap 95% interval"]
            lines += [f"    {r['rank']:>4}  {r['path']:<40}{r['prcc']:+7.3f}  {r['prcc_low']:+.3f} to "
                      f"{r['prcc_high']:+.3f}" for r in self.prcc]
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


#: Bootstrap resamples of the Latin-hypercube points behind each PRCC's interval.
PRCC_RESAMPLES = 1000
#: Numbers (resamples x points x paths) ranked at once by :func:`prcc_interval`: bounds its memory.
_BATCH_NUMBERS = 2_000_000


def _prcc_batched(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """:func:`prcc` of a stack of samples: ``x`` ``(b, n, d)``, ``y`` ``(b, n)`` give ``(b, d)``."""
    b, n, d = x.shape
    ranks = stats.rankdata(x, axis=1)
    ry = stats.rankdata(y, axis=1)
    out = np.empty((b, d))
    for j in range(d):
        others = np.concatenate([np.ones((b, n, 1)), np.delete(ranks, j, axis=2)], axis=2)
        pinv = np.linalg.pinv(others)  # least squares on the others' ranks, for every sample at once
        res_x, res_y = (v - np.einsum("bnk,bk->bn", others, np.einsum("bkn,bn->bk", pinv, v))
                        for v in (ranks[:, :, j], ry))
        denom = np.sqrt(np.sum(res_x ** 2, axis=1) * np.sum(res_y ** 2, axis=1))
        tiny = 1e-9 * float(n) ** 3  # rank sums of squares are of order n^3: below this, rounding error only
        out[:, j] = np.divide(np.sum(res_x * res_y, axis=1), denom, out=np.full(b, np.nan), where=denom > tiny)
    return out


def prcc_interval(x: np.ndarray, y: np.ndarray, seed: int, resamples: int = PRCC_RESAMPLES,
                  level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap percentile interval of each :func:`prcc`: the points (rows of ``x`` ``(n, d)`` with ``y``
    ``(n,)``) resampled with replacement ``resamples`` times from the stream ``"sensitivity prcc bootstrap"`` of
    ``seed``, and the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the PRCCs of the resamples (a
    resample whose ranks leave no residual is left out). Returns ``(low, high)``, each ``(d,)``."""
    n, d = x.shape
    rng = named_rng(seed, "sensitivity prcc bootstrap")
    index = rng.integers(0, n, size=(resamples, n))
    batch = max(1, _BATCH_NUMBERS // (n * d))
    values = np.concatenate([_prcc_batched(x[index[i:i + batch]], y[index[i:i + batch]])
                             for i in range(0, resamples, batch)])
    tails = 100 * np.array([(1 - level) / 2, (1 + level) / 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a path no resample could rank: NaN
        low, high = np.nanpercentile(values, tails, axis=0)
    return np.clip(low, -1.0, 1.0), np.clip(high, -1.0, 1.0)


def latin_hypercube(ranges: tuple[tuple[str, float, float], ...], n: int, seed: int) -> np.ndarray:
    """``(n, d)`` points of a Latin hypercube over the ranges, from a stream of its own."""
    sampler = qmc.LatinHypercube(d=len(ranges), rng=named_rng(seed, "sensitivity latin hypercube"))
    lows, highs = np.array([r[1] for r in ranges]), np.array([r[2] for r in ranges])
    return qmc.scale(sampler.random(n), lows, highs)


def sensitivity(scenario: Scenario, settings: RunSettings | None = None, *, out: str | Path | None = None,
                comparison: str | None = None) -> SensitivityResult:
    """One-at-a-time and Latin-hypercube sensitivity of the primary power to the scenario's
    ``[sensitivity]`` ranges, ``sensitivity.reps`` trials per point (``settings.reps`` is not used). With ``out``
    (a directory) each chunk is saved there as it finishes, the same call resumes, and ``result.json``,
    ``tornado.csv`` and (with a global sample) ``global.csv`` are written at the end.

    ``comparison`` names the comparison whose power is examined by its label (``"two doses vs sham"``; default
    the first of the design); an unknown label is refused with the labels listed, and with interim looks so is
    any but the first (the only one monitored)."""
    settings = settings or RunSettings()
    label = scenario_comparison(scenario, comparison)
    chosen = None if label == scenario_comparison(scenario, None) else label
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
    power = np.array([r.design_power_for(chosen)["power"] for r in runs])
    mcse = np.array([r.design_power_for(chosen)["mcse"] for r in runs])
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
        x = np.column_stack([samples[p] for p, _, _ in ranges]).astype(float)
        coefficients = prcc(x, sample_power)
        low, high = prcc_interval(x, sample_power, seed)
        ranking = _ranked([{"path": p, "prcc": float(c), "prcc_low": float(lo), "prcc_high": float(hi),
                            "abs": abs(c)} for (p, _, _), c, lo, hi in zip(ranges, coefficients, low, high,
                                                                             strict=True)], "abs")
        for r in ranking:
            del r["abs"]
    result = SensitivityResult(scenario, runs[0], tuple(tornado), samples, sample_power, tuple(ranking), cfg.reps,
                               seed, comparison=label)
    if store is not None:
        store.write_result(result.to_json(), result.tables(), scenario.to_toml())
    return result


def _ranked(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Rows sorted by ``key``, largest first (NaN last), each with its ``rank`` (1 = largest)."""
    order = sorted(rows, key=lambda r: -r[key] if np.isfinite(r[key]) else np.inf)
    return [{**{k: (float(v) if isinstance(v, np.floating) else v) for k, v in r.items()}, "rank": i + 1}
            for i, r in enumerate(order)]
