"""Sample size: the smallest number of children per arm (in the scenario's allocation) that reaches a target
power, from a power curve fitted to simulated powers computed with common random numbers.

The search scales every arm by one multiplier ``m`` (``n_per_arm = m × allocation``, e.g. 1:2). It runs in
three steps, all with the same seed, so the k-th child of each arm is the same child at every ``m`` and
powers at neighbouring sizes differ only by the children added:

1. bracket: from the scenario's size, double (or halve) ``m`` until power crosses the target, at up to
   :data:`COARSE_REPS` trials per size;
2. narrow: bisect the bracket at the same trials until it is within about 25%;
3. fit: simulate every ``m`` in a window of about ±15% around the crossing at the full ``reps`` and fit
   ``power = Φ(a + b √m)`` by binomial maximum likelihood (a power of a test whose standard error falls as
   1/√n is near linear in √n on the probit scale); the answer is the smallest whole ``m`` with fitted power
   at or above the target. If it falls outside the window, the window moves and the fit is repeated.

The reported power at the answer is the simulated one (with its MCSE); the fitted one is reported beside it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import optimize, special, stats

from cbcp_sim.errors import SettingsError
from cbcp_sim.run.engine import point_tasks, run_points
from cbcp_sim.run.result import SimulationResult, described, endpoint_text, scenario_comparison
from cbcp_sim.run.settings import RunSettings, whole_number
from cbcp_sim.run.store import MemoryStore, Store
from cbcp_sim.scenario import Scenario, allocation_ratio

if TYPE_CHECKING:
    import pandas as pd

#: Trials per size while bracketing and narrowing (the first chunks of the full runs, so they are reused).
COARSE_REPS = 2000
#: Sizes simulated at the full reps around the crossing.
WINDOW_POINTS = 9
#: Half-width of that window, relative to the crossing.
WINDOW = 0.15
MAX_N = 100_000
#: Largest arm searched unless asked.
DEFAULT_MAX_N = 2000


@dataclass(frozen=True)
class SampleSize:
    """The answer of :func:`sample_size` and the simulated power curve around it."""

    scenario: Scenario
    target: float
    allocation: tuple[int, ...]
    multiplier: int
    result: SimulationResult  #: the run at the answer
    fitted_power: float
    curve: tuple[dict[str, Any], ...]  #: per size simulated at the full reps: n_per_arm, total, power, ...
    reps: int
    seed: int
    comparison: str | None = None  #: the comparison powered (a label; None: the first)

    @property
    def row(self) -> dict[str, Any]:
        """The summary row of the primary analysis of the comparison powered, at the answer."""
        return self.result.row(self.comparison)

    @property
    def n_per_arm(self) -> int | list[int]:
        """Children per arm at the answer: one number if the arms are equal, else one per arm."""
        return _per_arm(self.multiplier, self.allocation)

    def tables(self) -> dict[str, pd.DataFrame]:
        """``curve.csv``: the power curve, one row per size simulated (``n_per_arm`` as JSON text)."""
        import pandas as pd

        return {"curve.csv": pd.DataFrame([{**c, "n_per_arm": json.dumps(c["n_per_arm"])} for c in self.curve])}

    def to_json(self) -> dict[str, Any]:
        row = self.row
        return {"kind": "sample-size", "title": self.scenario.title, "heading": self.scenario.heading,
                "scenario_digest": self.scenario.digest(),
                "analysis": row["analysis"], "comparison": row["comparison"],
                **described(self.scenario, row["analysis"]), "endpoint": self.scenario.analysis.endpoint,
                "target": self.target, "n_per_arm": self.n_per_arm, "total": self.multiplier * sum(self.allocation),
                **self.result.design_power_for(self.comparison), "fitted_power": self.fitted_power,
                "reps": self.reps, "seed": self.seed, "curve": [dict(c) for c in self.curve]}

    def __str__(self) -> str:
        out = self.to_json()
        n = out["n_per_arm"]
        arms = ", ".join(f"{a} {k}" for a, k in zip(self.scenario.design.arms, self.result.scenario.design.n_per_arm,
                                                      strict=True))
        lines = [self.scenario.heading,
                 f"  target power {self.target:g} for {out['analysis']}, comparison {out['comparison']}; "
                 f"{self.reps:,} trials per size; seed {self.seed}",
                 f"  estimand      {out['estimand']}",
                 f"  endpoint      {endpoint_text(self.scenario)}",
                 f"  n_per_arm     {per_arm_text(n)}  ({arms}; {out['total']} children)",
                 f"  power there   {out['power']:.3f}  MCSE {out['mcse']:.4f}  95% CI {out['ci_low']:.3f} to "
                 f"{out['ci_high']:.3f}  (fitted curve {self.fitted_power:.3f})",
                 "  n_per_arm  total   power    MCSE  fitted"]
        lines += [f"  {per_arm_text(c['n_per_arm']):>9}  {c['total']:5d}  {c['power']:.3f}  {c['mcse']:.4f}  "
                  f"{c['fitted_power']:.3f}" for c in self.curve]
        return "\n".join(lines)


def per_arm_text(n: int | list[int]) -> str:
    """Children per arm as printed: ``45``, or one per arm ``30/60``."""
    return str(n) if isinstance(n, int) else "/".join(map(str, n))


def _per_arm(m: int, allocation: tuple[int, ...]) -> int | list[int]:
    sizes = [m * r for r in allocation]
    return sizes[0] if len(set(sizes)) == 1 else sizes


def fit_probit(m: np.ndarray, successes: np.ndarray, trials: np.ndarray) -> tuple[float, float]:
    """``(a, b)`` of ``power = Φ(a + b √m)`` by binomial maximum likelihood."""
    x = np.sqrt(np.asarray(m, float))
    k, n = np.asarray(successes, float), np.asarray(trials, float)
    p = np.clip((k + 0.5) / (n + 1.0), 1e-6, 1 - 1e-6)
    start = np.polyfit(x, special.ndtri(p), 1)[::-1] if np.ptp(x) > 0 else np.array([special.ndtri(p.mean()), 0.0])

    def nll(theta: np.ndarray) -> float:
        eta = theta[0] + theta[1] * x
        return -float(np.sum(k * special.log_ndtr(eta) + (n - k) * special.log_ndtr(-eta)))

    fit = optimize.minimize(nll, start, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-10,
                                                                         "maxiter": 4000})
    return float(fit.x[0]), float(fit.x[1])


def sample_size(scenario: Scenario, target: float = 0.8, settings: RunSettings | None = None, *,
                max_n: int = DEFAULT_MAX_N, out: str | Path | None = None,
                comparison: str | None = None) -> SampleSize:
    """The smallest ``n_per_arm`` (scaled in the scenario's allocation) whose power reaches ``target``: the
    primary analysis's, or with interim looks the group-sequential power; see the module docstring.

    ``comparison`` names the comparison powered by its label (``"two doses vs sham"``; default the first of the
    design); an unknown label is refused with the labels listed, and with interim looks so is any but the first
    (the only one monitored).

    ``settings.reps`` trials are run at each size near the answer (fewer while bracketing). ``max_n`` bounds the
    largest arm. With ``out`` (a directory) every chunk is saved there as it finishes, the same call resumes an
    interrupted search, and ``result.json`` and ``curve.csv`` are written at the end; without it the chunks are
    kept in memory, so the bracketing runs are reused by the fit.
    """
    if isinstance(target, bool) or not isinstance(target, int | float) or not 0.0 < target < 1.0:
        raise SettingsError("target", f"must be a power in (0, 1), got {target!r}")
    settings = settings or RunSettings()
    label = scenario_comparison(scenario, comparison)
    chosen = None if label == scenario_comparison(scenario, None) else label
    reps = settings.reps
    allocation = allocation_ratio(scenario.design.n_per_arm)
    max_n = whole_number("max_n", max_n, 2, MAX_N)
    lo_m = math.ceil(2 / min(allocation))
    hi_m = max_n // max(allocation)
    if hi_m < lo_m:
        raise SettingsError("max_n", f"must allow the allocation {':'.join(map(str, allocation))} at 2 or more "
                                     f"children per arm, got {max_n}")
    store: Store | MemoryStore = MemoryStore()  # keeps the bracketing chunks for the fit
    if out is not None:
        # the trials saved are the same whichever comparison is powered: another comparison resumes from them
        store = Store(out, "sample-size", {"scenario": scenario.to_dict(), "seed": settings.seed,
                                           "target": target, "reps": reps, "max_n": max_n})
    scenarios: dict[int, Scenario] = {}

    def run(ms: list[int], n_reps: int, label: str) -> dict[int, SimulationResult]:
        for m in ms:
            if m not in scenarios:
                scenarios[m] = scenario.replace({"design.n_per_arm": [m * r for r in allocation]})
        at = settings.replace(reps=n_reps)
        results = run_points([point_tasks(scenarios[m], at) for m in ms], at, store=store,
                             label=f"sample size: {label}")
        return dict(zip(ms, results, strict=True))

    coarse_reps = min(reps, COARSE_REPS)
    coarse: dict[int, SimulationResult] = {}

    def power(m: int) -> float:
        if m not in coarse:
            coarse.update(run([m], coarse_reps, f"bracket n={per_arm_text(_per_arm(m, allocation))}"))
        return coarse[m].design_power_for(chosen)["power"]

    def successes(result: SimulationResult) -> tuple[int, int]:
        return result.successes_for(chosen)

    below, above = bracket(power, target, min(max(scenario.design.n_per_arm[0] // allocation[0], lo_m), hi_m),
                           lo_m, hi_m, max_n)
    while above - below > max(2, 0.25 * below) and below >= lo_m:
        middle = (below + above) // 2
        below, above = (middle, above) if not power(middle) >= target else (below, middle)
    m_hat, fitted, full = fit_crossing(run, coarse, below, above, target, reps, lo_m, hi_m, successes)
    curve = tuple(_curve_row(m, allocation, full[m], fitted, chosen) for m in sorted(full))
    answer = SampleSize(scenario, float(target), allocation, m_hat, full[m_hat], probit_power(fitted, m_hat), curve,
                        reps, settings.seed, label)
    if isinstance(store, Store):
        store.write_result(answer.to_json(), answer.tables(), scenario.to_toml())
    return answer


def bracket(power: Callable[[int], float], target: float, start: int, lo_m: int, hi_m: int,
            max_n: int) -> tuple[int, int]:
    """Sizes ``(below, above)`` with coarse power below and at or above the target (``below = lo_m - 1`` if
    even the smallest size reaches it). A power that cannot be computed (every analysis failed) counts as
    below."""
    m = start
    if not power(m) >= target:
        while not power(m) >= target:
            if m == hi_m:
                raise SettingsError("target", f"power {power(m):.3f} at the largest size allowed (max_n {max_n} "
                                              f"per arm) is below the target {target:g}; raise max_n or lower "
                                              "the target")
            below, m = m, min(2 * m, hi_m)
        return below, m
    while m > lo_m and power(m) >= target:
        above, m = m, max(m // 2, lo_m)
        if not power(m) >= target:
            return m, above
    return lo_m - 1, lo_m


Runs = dict[int, SimulationResult]
#: The successes and trials of a run (``SimulationResult.successes_for``, or another test's rejections).
Successes = Callable[[SimulationResult], tuple[int, int]]


def fit_crossing(run: Callable[..., Runs], coarse: Runs, below: int, above: int, target: float, reps: int,
                 lo_m: int, hi_m: int, successes: Successes) -> tuple[int, tuple[float, float], Runs]:
    """The answer, the fitted curve and the runs at the full reps, from a window around the coarse crossing of
    ``bracket`` (``run(ms, reps, label)`` simulates the multipliers ``ms``; power counted by ``successes``)."""
    if below < lo_m:  # the smallest size already reaches the target
        full = run([lo_m], reps, "fit")
        return lo_m, _fit_runs(full, successes), full
    crossing = _crossing(_fit_runs(coarse, successes), target, below, above)
    full: Runs = {}
    for _ in range(6):
        window = _window(crossing, lo_m, hi_m)
        full.update(run([m for m in window if m not in full], reps, f"fit n around {crossing}"))
        fitted = _fit_runs(full, successes)
        root = _root(fitted, target)
        if root is None:
            raise SettingsError("target", "simulated power does not rise with n (fitted slope <= 0); check the "
                                          "effect and the primary analysis")
        m_hat = min(max(math.ceil(root - 1e-9), lo_m), hi_m)
        if min(window) <= m_hat <= max(window) or m_hat in (lo_m, hi_m):
            if m_hat not in full:
                full.update(run([m_hat], reps, "answer"))
            return m_hat, fitted, full
        crossing = m_hat
    raise SettingsError("target", "the power curve could not be fitted near the target (power does not rise "
                                  "steadily with n)")


def _fit_runs(runs: dict[int, SimulationResult], successes: Successes) -> tuple[float, float]:
    ms = np.array(sorted(runs))
    k, trials = np.array([successes(runs[m]) for m in ms], float).T
    return fit_probit(ms, k, trials)


def _root(fitted: tuple[float, float], target: float) -> float | None:
    """The size (in allocation units) at which the fitted curve reaches ``target``; None if it does not rise."""
    a, b = fitted
    if b <= 0:
        return None
    return max((stats.norm.ppf(target) - a) / b, 0.0) ** 2


def _crossing(fitted: tuple[float, float], target: float, below: int, above: int) -> int:
    """Where the coarse curve crosses ``target``, within ``[below, above]`` (``above`` if it does not rise)."""
    root = _root(fitted, target)
    return min(max(above if root is None else math.ceil(root), below), above)


def _window(centre: int, lo_m: int, hi_m: int) -> list[int]:
    half = max(3.0, WINDOW * centre)
    grid = np.linspace(centre - half, centre + half, WINDOW_POINTS)
    return sorted({min(max(round(x), lo_m), hi_m) for x in grid} | {centre})


def probit_power(fitted: tuple[float, float], m: int) -> float:
    """The fitted power ``Φ(a + b √m)`` at multiplier ``m``."""
    return float(special.ndtr(fitted[0] + fitted[1] * math.sqrt(m)))


def _curve_row(m: int, allocation: tuple[int, ...], result: SimulationResult,
               fitted: tuple[float, float], comparison: str | None = None) -> dict[str, Any]:
    return {"n_per_arm": _per_arm(m, allocation), "total": m * sum(allocation),
            **result.design_power_for(comparison), "fitted_power": probit_power(fitted, m)}
