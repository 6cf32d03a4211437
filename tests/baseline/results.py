"""Key outputs of every bundled scenario at fixed seeds and small reps: the results baseline.

``python -m tests.baseline.results`` rewrites ``tests/baseline/results.json`` from a fresh run. It refuses to
write outputs that differ from the stored ones unless the checkpoint store's ``RESULTS_VERSION`` was raised first,
so a change of results is always deliberate and never served from an old chunk store.
``tests/test_results_baseline.py`` compares a fresh run with the stored file exactly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import cbcp_sim
from cbcp_sim.explore.timeline import timeline
from cbcp_sim.explore.trajectories import trajectories
from cbcp_sim.run.settings import RunSettings
from cbcp_sim.run.store import RESULTS_VERSION

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
STORED = Path(__file__).with_name("results.json")
REPS, SEED = 300, 20261206
#: Figures of each analysis row kept in the baseline.
FIELDS = ("analysis", "comparison", "role", "power", "type1_error", "true_effect", "mean_estimate", "mean_se",
          "coverage", "n_failed")


def cases() -> list[tuple[str, str | None]]:
    """Every bundled scenario as written, then under each of its named effects."""
    out = []
    for path in sorted(SCENARIOS.glob("*.toml")):
        scenario = cbcp_sim.load_scenario(path)
        out.append((path.stem, None))
        out += [(path.stem, name) for name, _ in scenario.effects]
    return out


def key_outputs(name: str, effect: str | None) -> dict[str, Any]:
    """The baseline figures of one scenario (under one effect) at :data:`REPS` trials and :data:`SEED`."""
    scenario = cbcp_sim.load_scenario(SCENARIOS / f"{name}.toml", effect=effect)
    result = cbcp_sim.simulate(scenario, reps=REPS, seed=SEED, jobs=1)
    out: dict[str, Any] = {"rows": [{k: row[k] for k in FIELDS} for row in result.rows],
                           "screen_failure": result.screen_failure}
    if result.sequential is not None:
        seq = result.sequential
        out["sequential"] = {k: seq[k] for k in ("power", "type1_error", "expected_children", "expected_months")}
    if result.operations is not None:
        out["operations"] = {k: v["mean"] for k, v in sorted(result.operations.items())}
    if result.bayes is not None:
        out["bayes"] = {k: result.bayes[k] for k in ("p_go", "p_nogo", "p_go_null", "posterior_mean_bias",
                                                     "coverage", "prior_ess")}
    if result.dose_slope is not None:
        slope = result.dose_slope
        out["dose_slope"] = {"true_slope": slope["true_slope"], **{
            name: {k: slope[name][k] for k in ("mean_estimate", "bias", "coverage", "power", "type1")}
            for name in ("unadjusted", "adjusted")}}
    if result.dose_response is not None:
        out["dose_response"] = {k: result.dose_response[k] for k in ("power", "type1", "selection", "true_td",
                                                                     "td_mean", "td_bias", "td_rmse", "td_within_25")}
    return json.loads(json.dumps(out))  # as the stored file reads back (NaN kept, tuples as lists)


def explored() -> dict[str, Any]:
    """The model shown without a trial: each arm's mean GMFM-66 change and difference at the last month of the
    default scenario's trajectories, and the default scenario's trial calendar (milestone means)."""
    scenario = cbcp_sim.load_scenario(SCENARIOS / "default.toml")
    tr = trajectories(scenario, n_children=500, seed=SEED)
    tl = timeline(scenario, RunSettings(reps=REPS, seed=SEED))
    out = {"trajectories": {a.name: [a.change.mean[-1], a.difference[-1]] for a in (*tr.arms, tr.natural)},
           "timeline": {k: float(v.mean()) for k, v in sorted(tl.milestones.items())}}
    return json.loads(json.dumps(out))


def canonical(*values: Any) -> str:
    """JSON text of ``values``: floats by their shortest exact repr and NaN as NaN, so equal text is equal results."""
    return json.dumps(values, sort_keys=True)


def label(name: str, effect: str | None) -> str:
    return name if effect is None else f"{name} [effects.{effect}]"


def fresh() -> dict[str, Any]:
    return {"results_version": RESULTS_VERSION, "reps": REPS, "seed": SEED,
            "cases": {label(n, e): key_outputs(n, e) for n, e in cases()}, "explore": explored()}


def main() -> int:
    new = fresh()
    if STORED.exists():
        old = json.loads(STORED.read_text())
        kept = {k: new["cases"].get(k) for k in old["cases"]}  # a new scenario or effect is no change of results
        changed = canonical(old["cases"], old["explore"]) != canonical(kept, new["explore"])
        if changed and old["results_version"] == RESULTS_VERSION:
            print(f"results differ from {STORED.name} at results version {RESULTS_VERSION}: raise RESULTS_VERSION in "
                  "cbcp_sim/run/store.py with the change of results, then regenerate", file=sys.stderr)
            return 1
    STORED.write_text(json.dumps(new, indent=1) + "\n")
    print(f"wrote {STORED} ({len(new['cases'])} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
