"""Analyses of simulated (or real) trials, batched over replicates.

Each analysis takes observed arrays and knows nothing of how they were simulated:
``values`` and ``observed`` are ``(R, N, V)``, ``treated`` is ``(N,)`` and ``visit`` the index of
the compared visit (index 0 is baseline). It returns :class:`Estimates` of active minus control
with a standard error and t degrees of freedom per replicate; :func:`infer` turns those into
p-values, rejections and confidence intervals. A replicate that cannot be analysed (fewer than
two children observed in an arm) has NaN estimates and is counted as failed, never as a non-rejection.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cbcp_sim.analysis.ancova import ancova
from cbcp_sim.analysis.inference import Estimates, Inference, infer
from cbcp_sim.analysis.ttests import ttest, welch

Analysis = Callable[..., Estimates]

#: Analyses by the name used in scenarios (``analysis.primary``).
ANALYSES: dict[str, Analysis] = {"ttest": ttest, "welch": welch, "ancova": ancova}


def analyse(name: str, values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int,
            *, endpoint: str = "change") -> Estimates:
    """Run analysis ``name`` on a batch of trials."""
    return ANALYSES[name](values, observed, treated, visit, endpoint=endpoint)


__all__ = ["ANALYSES", "Estimates", "Inference", "analyse", "infer"]
