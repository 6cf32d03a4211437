"""Randomised doses or natural variation? A randomised fixed-dose design and an autologous natural-variation
design of the same size, simulated on the same children, side by side (docs/dose.md).

- **randomised**: a dose design (placebo or sham, then fixed doses per kg; by default
  ``scenarios/allogeneic_three_doses.toml``: sham and 1, 3, 10 x 10^7 TNC/kg, allogeneic), analysed by MCP-Mod
  (``analysis.dose_response_models``): its test of a flat dose-response, and the target dose (TD) as the dose
  estimate;
- **natural**: the same population, visits, product and dropout with autologous cells, and the same arms: the
  placebo arm, then in place of each dose arm an own-dose arm of the same size, each child given its own unit's dose
  per kg (:func:`natural_design`), analysed by the adjusted dose slope over every treated child
  (``analysis.dose_slope``): the test of a positive slope adjusted for baseline, age, weight and GMFCS, and the
  slope as the dose estimate.

Same children: children are drawn arm by arm from named streams (:mod:`cbcp_sim.models.streams`), and the two
designs have the same arms of the same sizes, so at one seed every child (age, GMFCS, weight, untreated GMFM-66,
dropout) is the same in both; only the doses differ. The natural design's eligibility has no minimum dose
(``eligibility.min_dose = 0``), which an allogeneic design does not screen on either.

How many children each needs to find the dose: the smallest total number of children, in the design's allocation
(``n_per_arm``, the same in both designs), at which the power of the design's dose-response test reaches
``target``; searched as :func:`cbcp_sim.planning.sample_size.sample_size` searches
(bracket, then a probit curve in the square root of the size fitted around the crossing, common random numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cbcp_sim.errors import ScenarioError, SettingsError
from cbcp_sim.planning.sample_size import MAX_N, Successes, bracket, fit_crossing, probit_power
from cbcp_sim.run.engine import point_tasks, run_points
from cbcp_sim.run.result import SimulationResult
from cbcp_sim.run.settings import RunSettings, whole_number
from cbcp_sim.scenario import Scenario, allocation_ratio, load_scenario, scenario_from_dict
from cbcp_sim.scenario.spec import bundled_scenarios, dose_design

#: The randomised design compared by default (a bundled scenario).
DEFAULT_DESIGN = "allogeneic_three_doses"
#: The name of the natural design's own-dose arms, numbered.
TREATED = "own dose"
#: Trials per design and size of ``cbcp-sim dose-compare`` unless asked (the search simulates many sizes).
DEFAULT_COMPARE_REPS = 200
#: Largest total number of children searched unless asked.
DEFAULT_MAX_TOTAL = 4000
DESIGNS = ("randomised", "natural")


def natural_design(randomised: Scenario) -> Scenario:
    """The autologous natural-variation design matching the dose design ``randomised``: the same scenario with
    autologous cells (``population.source``), no minimum dose at eligibility, its placebo arm, and in place of each
    dose arm an own-dose arm of the same size (:data:`TREATED` 1, 2, ...: the first dose arm's product without its
    fixed dose), so every child is the randomised design's (docs/dose.md); the adjusted dose slope over all of them
    (``analysis.dose_slope``) in place of MCP-Mod."""
    why = dose_design(randomised)
    if isinstance(why, str):
        raise ScenarioError("design", f"the randomised design {why}")
    raw = randomised.to_dict()
    d = raw["design"]
    placebo, first = d["arms"][0], d["arms"][1]
    treated = {k: v for k, v in raw.get("arms", {}).get(first, {}).items() if k != "dose"}
    names = [f"{TREATED} {i}" for i in range(1, len(d["arms"]))]
    raw["title"] = f"Natural dose variation beside: {randomised.title}"
    raw["population"]["source"] = "autologous"
    raw["eligibility"]["min_dose"] = 0.0
    d["arms"] = [placebo, *names]
    raw["arms"] = {placebo: raw.get("arms", {}).get(placebo, {}), **dict.fromkeys(names, treated)}
    for key in ("dose_response_models", "dose_response_delta", "dose_slope_strata"):
        raw["analysis"].pop(key, None)
    raw["analysis"]["dose_slope"] = True
    raw.pop("effects", None)
    return scenario_from_dict(raw)


def _successes(design: str) -> Successes:
    """Rejections and trials of a design's dose-response test: MCP-Mod's (every trial) or the adjusted slope's
    (the trials whose fit did not fail)."""
    def count(result: SimulationResult) -> tuple[int, int]:
        if design == "randomised":
            b = result.dose_response
            trials = result.n_reps
        else:
            b = result.dose_slope["adjusted"]
            trials = result.n_reps - b["n_failed"]
        return (round(b["power"] * trials) if trials else 0), trials
    return count


def _scaled(s: Scenario, m: int) -> Scenario:
    return s.replace({"design.n_per_arm": [m * r for r in allocation_ratio(s.design.n_per_arm)]})


@dataclass(frozen=True)
class DoseComparison:
    """The answer of :func:`dose_compare`: each design's run at the size asked (with its per-trial replicates)
    and, with a target, the total children it needs (None: not reached within ``max_total``)."""

    scenarios: dict[str, Scenario]
    results: dict[str, SimulationResult]
    needed: dict[str, dict[str, Any] | None]
    target: float | None
    max_total: int
    reps: int
    seed: int

    def design(self, name: str) -> dict[str, Any]:
        """One design's block of :meth:`to_json`."""
        s, r = self.scenarios[name], self.results[name]
        out: dict[str, Any] = {"title": s.title, "arms": list(s.design.arms), "n_per_arm": list(s.design.n_per_arm),
                               "total": sum(s.design.n_per_arm)}
        if name == "randomised":
            b = r.dose_response
            out.update(test=f"MCP-Mod ({', '.join(b['models'])}), one-sided alpha {b['alpha']:g}",
                       doses=b["doses"], power=b["power"], power_mcse=b["power_mcse"], type1=b["type1"],
                       type1_mcse=b["type1_mcse"], estimate=f"TD for {b['delta']:g} points (10^7 TNC/kg)",
                       true_value=b["true_td"], mean_estimate=b["td_mean"], bias=b["td_bias"],
                       bias_mcse=b["td_bias_mcse"], rmse=b["td_rmse"], n_estimates=b["n_td"])
        else:
            b = r.dose_slope
            e = b["adjusted"]
            out.update(test="positive adjusted dose slope, one-sided alpha "
                            f"{s.design.alpha / s.design.sides:g}",
                       power=e["power"], power_mcse=e["power_mcse"], type1=e["type1"], type1_mcse=e["type1_mcse"],
                       estimate="adjusted slope (points per 10^7 TNC/kg)", true_value=b["true_slope"],
                       mean_estimate=e["mean_estimate"], bias=e["bias"], bias_mcse=e["bias_mcse"], rmse=e["rmse"],
                       n_estimates=r.n_reps - e["n_failed"], unadjusted_bias=b["unadjusted"]["bias"],
                       unadjusted_bias_mcse=b["unadjusted"]["bias_mcse"])
        out["needed"] = self.needed[name]
        return out

    def to_json(self) -> dict[str, Any]:
        return {"kind": "dose-compare", "reps": self.reps, "seed": self.seed, "target": self.target,
                "max_total": self.max_total, **{name: self.design(name) for name in DESIGNS}}

    def __str__(self) -> str:
        out = self.to_json()
        lines = [f"Randomised doses or natural variation? {self.reps:,} trials per design and size, seed {self.seed}"
                 " (the same children in both: docs/dose.md)"]
        for name in DESIGNS:
            b = out[name]
            arms = ", ".join(f"{a} {k}" for a, k in zip(b["arms"], b["n_per_arm"], strict=True))
            lines += [f"  {name}: {b['title']}", f"    {arms} ({b['total']} children); test: {b['test']}",
                      f"    power {b['power']:.3f} (MCSE {b['power_mcse']:.4f}); without cell effect "
                      f"{b['type1']:.4f} (MCSE {b['type1_mcse']:.4f})",
                      f"    {b['estimate']}: true {_num(b['true_value'])}, mean {_num(b['mean_estimate'])} over "
                      f"{b['n_estimates']:,} trials, bias {_num(b['bias'])} (MCSE {_num(b['bias_mcse'])}), RMSE "
                      f"{_num(b['rmse'])}"]
            if name == "natural":
                lines.append(f"    unadjusted slope's bias {_num(b['unadjusted_bias'])} (MCSE "
                             f"{_num(b['unadjusted_bias_mcse'])})")
            if self.target is not None:
                need = b["needed"]
                lines.append(f"    children for power {self.target:g}: " + (
                    f"more than {self.max_total:,}" if need is None else
                    f"{need['total']:,} ({'/'.join(map(str, need['n_per_arm']))}; simulated power there "
                    f"{need['power']:.3f}, fitted {need['fitted_power']:.3f})"))
        return "\n".join(lines)


def _num(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def dose_compare(n: int | None = None, settings: RunSettings | None = None, *, scenario: Scenario | None = None,
                 target: float | None = 0.8, max_total: int = DEFAULT_MAX_TOTAL) -> DoseComparison:
    """A randomised dose design and the natural-variation design of the same size on the same children.

    Parameters
    ----------
    n : children per arm of the randomised design (with unequal arms: ``n_per_arm`` = ``n`` times its allocation
        ratio), default the scenario's; the natural design's arms are the same size
    settings : trials per design and size (``reps``, default :data:`DEFAULT_COMPARE_REPS`), seed, jobs
    scenario : the randomised dose design with MCP-Mod (default :data:`DEFAULT_DESIGN`)
    target : the power of each design's dose-response test whose total children are searched; None: no search
    max_total : the largest total number of children searched

    Returns
    -------
    :class:`DoseComparison`: each design's power, type I error and dose estimate's bias at ``n``, and the children
    each needs (module docstring).
    """
    settings = settings or RunSettings(reps=DEFAULT_COMPARE_REPS)
    randomised = scenario or load_scenario(bundled_scenarios()[DEFAULT_DESIGN])
    if not randomised.analysis.dose_response_models:
        raise ScenarioError("analysis.dose_response_models", "the randomised design needs MCP-Mod's candidate models")
    if target is not None and (isinstance(target, bool) or not isinstance(target, int | float)
                               or not 0.0 < target < 1.0):
        raise SettingsError("target", f"must be a power in (0, 1), got {target!r}")
    max_total = whole_number("max_total", max_total, 2, MAX_N)
    if n is not None:
        randomised = _scaled(randomised, whole_number("n", n, 2, MAX_N))
    scenarios = {"randomised": randomised, "natural": natural_design(randomised)}
    results = dict(zip(DESIGNS, run_points([point_tasks(scenarios[d], settings) for d in DESIGNS], settings,
                                           label="dose-compare", keep_replicates=True), strict=True))
    needed = ({name: _needed(scenarios[name], name, settings, target, max_total, results[name]) for name in DESIGNS}
              if target is not None else dict.fromkeys(DESIGNS))
    return DoseComparison(scenarios, results, needed, None if target is None else float(target), max_total,
                          settings.reps, settings.seed)


def _needed(s: Scenario, design: str, settings: RunSettings, target: float, max_total: int,
            result: SimulationResult) -> dict[str, Any] | None:
    """The smallest total children at which ``design``'s dose-response test reaches ``target`` power: the size
    multiplier of the design's allocation bracketed and fitted as in
    :func:`cbcp_sim.planning.sample_size.sample_size`, all at ``settings.reps``, starting from ``s`` (whose run is
    ``result``); None beyond ``max_total``."""
    allocation = allocation_ratio(s.design.n_per_arm)
    lo_m, hi_m = math.ceil(2 / min(allocation)), max_total // sum(allocation)
    if hi_m < lo_m:
        raise SettingsError("max_total", f"must allow {sum(allocation) * lo_m} children (the design's allocation "
                                         f"{':'.join(map(str, allocation))}), got {max_total}")
    successes = _successes(design)
    start = s.design.n_per_arm[0] // allocation[0]
    runs: dict[int, SimulationResult] = {start: result}

    def run(ms: list[int], reps: int, label: str) -> dict[int, SimulationResult]:
        todo = [m for m in ms if m not in runs]
        at = settings.replace(reps=reps)
        done = run_points([point_tasks(_scaled(s, m), at) for m in todo], at, label=f"dose-compare {design}: {label}")
        runs.update(zip(todo, done, strict=True))
        return {m: runs[m] for m in ms}

    def power(m: int) -> float:
        k, trials = successes(run([m], settings.reps, "bracket")[m])
        return k / trials if trials else math.nan

    try:
        below, above = bracket(power, target, min(max(start, lo_m), hi_m), lo_m, hi_m, max_total)
    except SettingsError:  # the largest size allowed is below the target
        return None
    while above - below > max(2, 0.25 * below) and below >= lo_m:
        middle = (below + above) // 2
        below, above = (middle, above) if not power(middle) >= target else (below, middle)
    m, fitted, full = fit_crossing(run, dict(runs), below, above, target, settings.reps, lo_m, hi_m, successes)
    k, trials = successes(full[m])
    return {"total": m * sum(allocation), "n_per_arm": [m * r for r in allocation], "power": k / trials,
            "fitted_power": probit_power(fitted, m)}
