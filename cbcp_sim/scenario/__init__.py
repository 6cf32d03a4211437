"""What the user asked: the scenario's sections, products and regimens, effect hypotheses and priors, declared
with their defaults and sources, validated and frozen.

The bottom layer of the package: it imports only :mod:`cbcp_sim.errors` and :mod:`cbcp_sim.vocabulary`.
"""

from cbcp_sim.scenario.sections import (
    MAX_LIMIT_LOGIT_SD,
    Analysis,
    Design,
    Dropout,
    Eligibility,
    NaturalHistory,
    Operations,
    Outcome,
    Population,
    Sequential,
)
from cbcp_sim.scenario.spec import (
    Scenario,
    allocation_ratio,
    default_scenario_path,
    load_scenario,
    parse_value,
    scenario_from_dict,
    set_dotted,
    visit_windows,
)

__all__ = ["MAX_LIMIT_LOGIT_SD", "Analysis", "Design", "Dropout", "Eligibility", "NaturalHistory", "Operations",
           "Outcome", "Population", "Scenario", "Sequential", "allocation_ratio", "default_scenario_path",
           "load_scenario", "parse_value", "scenario_from_dict", "set_dotted", "visit_windows"]
