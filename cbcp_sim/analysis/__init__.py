"""Analyses of simulated (or real) trials, batched over replicates.

Each analysis takes observed arrays and knows nothing of how they were simulated: ``values`` and
``observed`` are ``(R, N, V)``, ``treated`` is ``(N,)`` or ``(R, N)`` and ``visit`` the index of the
compared visit (index 0 is baseline). Children outside the comparison are simply never observed.
Some analyses take more, by keyword (:data:`CONTEXT`): ``covariates`` ``(R, N, C)``, the crossover
visit ``switch``, each child's ``expected`` natural change, the responder threshold ``mcid``, the MMRM's
inference ``mmrm_df`` and place of baseline ``mmrm_baseline``.
Each returns :class:`Estimates` of active minus control with a standard error and degrees of freedom
per replicate; :func:`infer` turns those into p-values, rejections and confidence intervals. A
replicate that cannot be analysed (too few children observed in an arm) has NaN estimates and is
counted as failed, never as a non-rejection.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from cbcp_sim.analysis.ancova import ancova, ancova_arms
from cbcp_sim.analysis.crossover import crossover, period2
from cbcp_sim.analysis.inference import Estimates, Inference, infer
from cbcp_sim.analysis.mmrm import mmrm
from cbcp_sim.analysis.ranks import wilcoxon
from cbcp_sim.analysis.responder import chisquare, fisher
from cbcp_sim.analysis.single_arm import above_expected, before_after, count_above
from cbcp_sim.analysis.ttests import ttest, ttest_arms, welch
from cbcp_sim.vocabulary import CROSSOVER_ANALYSES, LONGITUDINAL_ANALYSES, SINGLE_ARM_ANALYSES

Analysis = Callable[..., Estimates]

#: Analyses by the name used in scenarios (``analysis.primary``) and by ``cbcp-sim analyze --method``.
ANALYSES: dict[str, Analysis] = {
    "ttest": ttest, "welch": welch, "ancova": ancova, "mmrm": mmrm, "wilcoxon": wilcoxon, "fisher": fisher,
    "chisquare": chisquare, "crossover": crossover, "period2": period2, "above_expected": above_expected,
    "count_above": count_above, "before_after": before_after,
}
#: Analyses that are one model of every arm (arm a factor, one residual variance), each active arm against the
#: first: what the classical Dunnett test (``analysis.multiplicity = "dunnett"``) adjusts, by :func:`analyse_arms`.
ARM_MODELS: dict[str, Callable[..., tuple[Estimates, ...]]] = {"ttest": ttest_arms, "ancova": ancova_arms}
#: Analyses that read every visit up to the compared one; those of crossover and of single-arm designs.
LONGITUDINAL = frozenset(LONGITUDINAL_ANALYSES)
CROSSOVER = frozenset(CROSSOVER_ANALYSES)
SINGLE_ARM = frozenset(SINGLE_ARM_ANALYSES)
#: What each analysis estimates: a mean difference in points, a difference in responder proportions, or
#: something else (a rank shift, a share above expectation) whose true value the engine does not compute.
ESTIMAND = {"fisher": "responders", "chisquare": "responders", "wilcoxon": None, "count_above": None}
#: Keywords beyond the common four that some analyses take.
CONTEXT = ("endpoint", "covariates", "switch", "expected", "mcid", "mmrm_df", "mmrm_baseline")


def accepts(name: str) -> frozenset[str]:
    """The :data:`CONTEXT` keywords analysis ``name`` takes."""
    return frozenset(inspect.signature(ANALYSES[name]).parameters) & frozenset(CONTEXT)


def analyse(name: str, values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int,
            **context: Any) -> Estimates:
    """Run analysis ``name`` on a batch of trials, passing it the ``context`` keywords it takes."""
    wanted = accepts(name)
    return ANALYSES[name](values, observed, treated, visit,
                          **{k: v for k, v in context.items() if k in wanted and v is not None})


def analyse_arms(name: str, values: np.ndarray, observed: np.ndarray, arm: np.ndarray, arms: int, visit: int,
                 **context: Any) -> tuple[Estimates, ...]:
    """Analysis ``name`` (one of :data:`ARM_MODELS`) as one model of all ``arms`` arms (``arm``: each child's arm,
    control 0, ``(N,)`` or ``(R, N)``): each active arm against control, in arm order."""
    wanted = accepts(name)
    return ARM_MODELS[name](values, observed, arm, visit, arms=arms,
                            **{k: v for k, v in context.items() if k in wanted and v is not None})


__all__ = ["ANALYSES", "ARM_MODELS", "CONTEXT", "CROSSOVER", "ESTIMAND", "LONGITUDINAL", "SINGLE_ARM", "Estimates",
           "Inference", "accepts", "analyse", "analyse_arms", "infer"]
