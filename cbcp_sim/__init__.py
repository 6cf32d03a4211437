"""cbcp_sim: Monte Carlo trial-design simulation for cell therapy in children with cerebral palsy.

>>> import cbcp_sim
>>> scenario = cbcp_sim.load_scenario("scenarios/default.toml")       # doctest: +SKIP
>>> result = cbcp_sim.simulate(scenario, reps=10_000, seed=1, jobs=1)  # doctest: +SKIP
>>> result.table                                                        # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cbcp_sim.errors import ScenarioError
from cbcp_sim.scenario import Scenario, load_scenario, scenario_from_dict

if TYPE_CHECKING:
    from cbcp_sim.run.engine import simulate
    from cbcp_sim.run.result import SimulationResult

__version__ = "0.1.0"
__all__ = ["Scenario", "ScenarioError", "SimulationResult", "load_scenario", "scenario_from_dict", "simulate"]


def __getattr__(name: str) -> Any:
    """Import the numerical engine only when it is used (keeps ``import cbcp_sim`` light)."""
    if name == "simulate":
        from cbcp_sim.run.engine import simulate

        return simulate
    if name == "SimulationResult":
        from cbcp_sim.run.result import SimulationResult

        return SimulationResult
    raise AttributeError(f"module 'cbcp_sim' has no attribute {name!r}")
