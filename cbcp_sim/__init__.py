"""cbcp_sim: Monte Carlo trial-design simulation for cell therapy in children with cerebral palsy.

>>> import cbcp_sim
>>> scenario = cbcp_sim.load_scenario("scenarios/default.toml")       # doctest: +SKIP
>>> result = cbcp_sim.simulate(scenario, reps=10_000, seed=1, jobs=1)  # doctest: +SKIP
>>> result.table                                                        # doctest: +SKIP
>>> cbcp_sim.analyze("trial.csv", method="ancova").confidence_interval()  # doctest: +SKIP
>>> print(cbcp_sim.calibrate("registry.csv"))                          # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cbcp_sim.errors import InputError, ScenarioError, SettingsError

if TYPE_CHECKING:
    from cbcp_sim.analysis.dose_data import DoseAnalysis
    from cbcp_sim.analysis.dose_finding import McpModResult, mcpmod
    from cbcp_sim.analysis.real_data import AnalysisResult, analyze
    from cbcp_sim.explore.calibration import Calibration, calibrate
    from cbcp_sim.planning.dose_compare import DoseComparison, dose_compare
    from cbcp_sim.planning.dose_power import DosePower, dose_power
    from cbcp_sim.planning.mmrm_power import MmrmPower, mmrm_power
    from cbcp_sim.run.engine import simulate
    from cbcp_sim.run.result import SimulationResult
    from cbcp_sim.scenario import Scenario, load_scenario, scenario_from_dict

__version__ = "0.1.0"
__all__ = ["AnalysisResult", "Calibration", "DoseAnalysis", "DoseComparison", "DosePower", "InputError",
           "McpModResult", "MmrmPower", "Scenario", "ScenarioError", "SettingsError", "SimulationResult", "analyze",
           "calibrate", "dose_compare", "dose_power", "load_scenario", "mcpmod", "mmrm_power", "scenario_from_dict",
           "simulate"]


def __getattr__(name: str) -> Any:
    """Import the scenario, the numerical engine and the analyses only when they are used: ``import cbcp_sim``
    stays light, and the command line catches a Ctrl-C while they load."""
    if name in ("Scenario", "load_scenario", "scenario_from_dict"):
        from cbcp_sim import scenario

        return getattr(scenario, name)
    if name == "simulate":
        from cbcp_sim.run.engine import simulate

        return simulate
    if name == "SimulationResult":
        from cbcp_sim.run.result import SimulationResult

        return SimulationResult
    if name in ("analyze", "AnalysisResult"):
        from cbcp_sim.analysis import real_data

        return getattr(real_data, name)
    if name in ("calibrate", "Calibration"):
        from cbcp_sim.explore import calibration

        return getattr(calibration, name)
    if name in ("mmrm_power", "MmrmPower"):
        from cbcp_sim.planning import mmrm_power

        return getattr(mmrm_power, name)
    if name in ("dose_power", "DosePower"):
        from cbcp_sim.planning import dose_power

        return getattr(dose_power, name)
    if name in ("dose_compare", "DoseComparison"):
        from cbcp_sim.planning import dose_compare

        return getattr(dose_compare, name)
    if name == "DoseAnalysis":
        from cbcp_sim.analysis import dose_data

        return dose_data.DoseAnalysis
    if name in ("mcpmod", "McpModResult"):
        from cbcp_sim.analysis import dose_finding

        return getattr(dose_finding, name)
    raise AttributeError(f"module 'cbcp_sim' has no attribute {name!r}")
