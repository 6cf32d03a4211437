"""Assurance (probability of success): the power of a design averaged over what is believed about its
uncertain values, as priors in ``[assurance.priors."<dotted path>"]`` (see :mod:`cbcp_sim.scenario.priors`).

Each of ``draws`` draws sets every prior's value in the scenario and simulates ``reps_per_draw`` trials of
it (O'Hagan, Stevens & Campbell 2005 Pharm Stat 4:187, by simulation). Draw ``k`` runs as chunk ``k`` of
the seed's streams, so the trials of different draws are independent and, with a point-mass prior, the
whole is exactly the run of ``draws × reps_per_draw`` trials in chunks of ``reps_per_draw``: assurance then
equals that run's power. Success is what power counts: the primary test rejects (for a two-sided test in
either direction; ``favourable`` counts only rejections with an estimate in favour of the cells).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cbcp_sim.analysis.metrics import Z95
from cbcp_sim.errors import ScenarioError
from cbcp_sim.models.streams import named_rng
from cbcp_sim.planning.points import point_scenarios
from cbcp_sim.run.engine import Task, run_points
from cbcp_sim.run.result import SimulationResult, described, endpoint_text, scenario_comparison
from cbcp_sim.run.settings import MAX_REPS, RunSettings
from cbcp_sim.run.store import Store
from cbcp_sim.scenario import Scenario
from cbcp_sim.scenario.priors import draw, typed_value

if TYPE_CHECKING:
    import pandas as pd

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
#: What to change in a prior that draws a value the scenario refuses.
ADVICE = {"normal": "truncate the prior (lower, upper)", "lognormal": "truncate the prior (lower, upper)",
          "uniform": "narrow its low and high", "point": "change its value", "file": "remove such draws from the file"}


@dataclass(frozen=True)
class AssuranceResult:
    """Per draw: the prior values, the simulated power (over ``reps_per_draw`` trials) and the true effect."""

    scenario: Scenario
    values: dict[str, np.ndarray]  #: per prior path, the value of each draw
    successes: np.ndarray  #: per draw, trials whose primary test rejected
    favourable: np.ndarray  #: per draw, rejections with an estimate in favour of the cells
    analysed: np.ndarray  #: per draw, trials analysed (not failed)
    true_effect: np.ndarray  #: per draw, the true effect (GMFM-66 points) of the comparison
    analysis: str
    comparison: str  #: the comparison whose success counts (a label)
    seed: int

    @property
    def power(self) -> np.ndarray:
        """Simulated power of each draw."""
        return self.successes / np.maximum(self.analysed, 1)

    @property
    def assurance(self) -> float:
        """Share of all analysed trials that succeeded (equal trials per draw: the mean power)."""
        return float(self.successes.sum() / self.analysed.sum())

    @property
    def mcse(self) -> float:
        """Monte Carlo SE of :attr:`assurance`, a ratio estimator over independent draws (with the prior's
        spread and the trials' binomial noise both in it)."""
        k = self.successes.size
        if k < 2:
            return float("nan")
        resid = self.successes - self.assurance * self.analysed
        return float(np.sqrt(k / (k - 1) * np.sum(resid ** 2)) / self.analysed.sum())

    @property
    def table(self) -> pd.DataFrame:
        """One row per draw: ``draw``, each prior's value, ``power``, ``true_effect``."""
        import pandas as pd

        return pd.DataFrame({"draw": np.arange(self.power.size), **self.values, "power": self.power,
                             "true_effect": self.true_effect})

    def tables(self) -> dict[str, pd.DataFrame]:
        """``draws.csv``: :attr:`table`."""
        return {"draws.csv": self.table}

    def to_json(self) -> dict[str, Any]:
        a, se = self.assurance, self.mcse
        priors = self.scenario.assurance.priors
        return {"kind": "assurance", "title": self.scenario.title, "heading": self.scenario.heading,
                "scenario_digest": self.scenario.digest(),
                "analysis": self.analysis, "comparison": self.comparison, **described(self.scenario, self.analysis),
                "endpoint": self.scenario.analysis.endpoint, "assurance": a, "mcse": se,
                "ci_low": max(0.0, a - Z95 * se), "ci_high": min(1.0, a + Z95 * se),
                "favourable": float(self.favourable.sum() / self.analysed.sum()), "draws": int(self.power.size),
                "reps_per_draw": self.scenario.assurance.reps_per_draw, "seed": self.seed,
                "priors": {path: p.parameters() for path, p in priors.items()},
                "power_quantiles": {f"q{round(100 * q):02d}": float(np.quantile(self.power, q)) for q in QUANTILES},
                "mean_true_effect": float(np.mean(self.true_effect))}

    def __str__(self) -> str:
        out = self.to_json()
        q = out["power_quantiles"]
        lines = [self.scenario.heading,
                 f"  assurance     {out['assurance']:.3f}  MCSE {out['mcse']:.4f}  95% CI {out['ci_low']:.3f} to "
                 f"{out['ci_high']:.3f}  ({out['analysis']}, comparison {out['comparison']})",
                 f"  estimand      {out['estimand']}",
                 f"  endpoint      {endpoint_text(self.scenario)}",
                 f"  favourable    {out['favourable']:.3f}  (rejections with an estimate favouring the cells)",
                 f"  power by draw 5% {q['q05']:.3f}  25% {q['q25']:.3f}  median {q['q50']:.3f}  75% {q['q75']:.3f}  "
                 f"95% {q['q95']:.3f}",
                 f"  {out['draws']} prior draws x {out['reps_per_draw']} trials; seed {self.seed}; mean true effect "
                 f"{out['mean_true_effect']:.3f}",
                 "  priors"]
        lines += [f"    {path}: " + ", ".join(f"{k} {v}" if isinstance(v, str) else f"{k} {v:g}"
                                            for k, v in params.items()) for path, params in out["priors"].items()]
        return "\n".join(lines)


def prior_draws(scenario: Scenario, n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` draws of every prior of the scenario, each prior from its own stream of ``seed``."""
    raw = scenario.to_dict()
    out = {}
    for path, prior in scenario.assurance.priors.items():
        values = draw(path, prior, n, named_rng(seed, f"prior {path}"))
        out[path] = np.array([typed_value(raw, path, v) for v in values])
    return out


def assurance(scenario: Scenario, settings: RunSettings | None = None, *, out: str | Path | None = None,
              comparison: str | None = None) -> AssuranceResult:
    """Assurance of the scenario's primary analysis over its ``[assurance]`` priors (``draws`` ×
    ``reps_per_draw`` trials, from ``settings.seed``; ``settings.reps`` is not used). With ``out`` (a directory)
    each draw's chunk is saved there as it finishes, the same call resumes, and ``result.json`` and ``draws.csv``
    are written at the end.

    ``comparison`` names the comparison whose success counts by its label (``"two doses vs sham"``; default the
    first of the design); an unknown label is refused with the labels listed, and with interim looks so is any
    but the first (the only one monitored)."""
    settings = settings or RunSettings()
    label = scenario_comparison(scenario, comparison)
    chosen = None if label == scenario_comparison(scenario, None) else label
    a = scenario.assurance
    if a.draws * a.reps_per_draw > MAX_REPS:
        raise ScenarioError("assurance.draws", f"draws x reps_per_draw must be at most {MAX_REPS:,}, got "
                                               f"{a.draws} x {a.reps_per_draw}")
    if not a.priors:
        raise ScenarioError("assurance.priors", "give at least one prior, e.g. [assurance.priors.\"outcome.effect\"] "
                                                "distribution = \"normal\", mean = 3, sd = 1.5 (or --prior)")
    values = prior_draws(scenario, a.draws, settings.seed)
    points = [{path: v[k].item() for path, v in values.items()} for k in range(a.draws)]
    scenarios = point_scenarios(scenario, points, "assurance.priors", label="draw", per_path=True,
                                advice=lambda path: ADVICE[a.priors[path].distribution])
    draw = settings.replace(reps=a.reps_per_draw)
    tasks = [[Task(s, draw.seed, k, draw.reps)] for k, s in enumerate(scenarios)]
    store = None if out is None else Store(out, "assurance", {"scenario": scenario.to_dict(), "seed": settings.seed})
    runs = run_points(tasks, settings, store=store, label="assurance", keep_replicates=True)
    successes, analysed = np.array([r.successes_for(chosen) for r in runs]).T
    result = AssuranceResult(
        scenario, values, successes=successes, favourable=np.array([_favourable(r, chosen) for r in runs]),
        analysed=analysed, true_effect=np.array([r.true_effect_for(chosen) for r in runs]),
        analysis=scenario.analyses[0], comparison=label, seed=settings.seed)
    if store is not None:
        store.write_result(result.to_json(), result.tables(), scenario.to_toml())
    return result


def _favourable(run: SimulationResult, comparison: str | None = None) -> int:
    """Successes of ``comparison`` (a label; None: the first) with an estimate favouring the cells (a
    group-sequential design's efficacy bounds and MCP-Mod's test as the primary analysis are one-sided: every
    success)."""
    if run.sequential is not None or (run.dose_response_primary and comparison in (None, run.comparisons[0])):
        return run.successes_for(comparison)[0]
    primary = run.replicates_for(comparison)
    return int((primary["reject"] & (primary["estimate"] > 0)).sum())
