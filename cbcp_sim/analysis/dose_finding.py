"""MCP-Mod end to end on per-dose estimates, batched over replicates [Bretz 2005] [Pinheiro 2014]: the multiple
contrast test (:mod:`~cbcp_sim.analysis.mcpmod`), then in each replicate that rejects, the fit of every model
class with a significant contrast (:mod:`~cbcp_sim.analysis.dose_fit`), the one of smallest gAIC selected, and
its target dose: DoseFinding's ``MCPMod(..., type = "general", selModel = "AIC", Delta = delta)``.

>>> res = mcpmod(mu_hat, S, doses=[0, 1, 2, 4, 8], models="emax:1,sigEmax:3:3,linear", df=95)  # doctest: +SKIP
>>> res.reject.mean(), np.nanmean(res.td)                                                        # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cbcp_sim.analysis.dose_fit import DoseFit, fit_model, target_dose, target_dose_se
from cbcp_sim.analysis.dose_models import Candidate, parse_candidates
from cbcp_sim.analysis.mcpmod import MctResult, mct


@dataclass(frozen=True)
class McpModResult:
    """MCP-Mod in each of ``R`` replicates: the test, the selected model and its target dose."""

    candidates: tuple[Candidate, ...]
    classes: tuple[str, ...]       #: the distinct model names among the candidates, in order
    test: MctResult                #: ``tstats``, ``p_adjusted`` ``(R, M)``, ``reject`` ``(R,)``, ...
    selected: np.ndarray           #: ``(R,)`` index into ``classes`` of the selected model; -1 if no rejection
    gaic: np.ndarray               #: ``(R, len(classes))`` gAIC of each fitted class (NaN: not significant)
    params: dict[str, np.ndarray]  #: class -> ``(R, p)`` fitted parameters (NaN where not fitted)
    td: np.ndarray                 #: ``(R,)`` the selected model's target dose (NaN: none, or not reached)
    td_se: np.ndarray              #: ``(R,)`` its delta-method SE
    delta: float

    @property
    def weights(self) -> np.ndarray:
        """``(R, len(classes))`` model-averaging weights ``exp(-gAIC / 2)`` normalised over the fitted classes."""
        g = np.where(np.isnan(self.gaic), np.inf, self.gaic)
        w = np.exp(-(g - g.min(axis=1, keepdims=True)) / 2.0)
        with np.errstate(invalid="ignore"):
            return w / w.sum(axis=1, keepdims=True)


def mcpmod(mu_hat: np.ndarray, S: np.ndarray, doses: Sequence[float], models: str | Sequence[str | Candidate],
           df: np.ndarray | float = math.inf, alpha: float = 0.025, delta: float = 1.5) -> McpModResult:
    """MCP-Mod on per-dose estimates ``mu_hat`` ``(R, K)`` (placebo first) with covariance ``S`` ``(K, K)`` or
    ``(R, K, K)`` and residual ``df`` (number or ``(R,)``; inf: normal), one-sided level ``alpha``; ``delta`` the
    effect over placebo defining the target dose (GMFM-66 points). Fits loop over replicates only for the
    two-parameter models (``sigEmax``, ``logistic``, ``betaMod``)."""
    cands = parse_candidates(models)
    doses = np.asarray(doses, dtype=float)
    mu_hat = np.atleast_2d(np.asarray(mu_hat, dtype=float))
    test = mct(mu_hat, S, doses, cands, df, alpha)
    classes = tuple(dict.fromkeys(c.model for c in cands))
    n_r = mu_hat.shape[0]
    S_r = np.broadcast_to(np.asarray(S, dtype=float), (n_r, doses.size, doses.size))
    significant = test.p_adjusted < alpha
    gaic = np.full((n_r, len(classes)), np.nan)
    params: dict[str, np.ndarray] = {}
    fits: dict[str, tuple[np.ndarray, DoseFit]] = {}
    for j, name in enumerate(classes):
        rows = np.flatnonzero(significant[:, [c.model == name for c in cands]].any(axis=1))
        if rows.size:
            fit = fit_model(name, doses, mu_hat[rows], S_r[rows])
            gaic[rows, j] = fit.gaic
            params[name] = np.full((n_r, fit.params.shape[1]), np.nan)
            params[name][rows] = fit.params
            fits[name] = (rows, fit)
    selected = np.where(test.reject, np.argmin(np.where(np.isnan(gaic), np.inf, gaic), axis=1), -1)
    td, td_se = np.full(n_r, np.nan), np.full(n_r, np.nan)
    for j, name in enumerate(classes):
        if name not in fits:
            continue
        rows, fit = fits[name]
        chosen = selected[rows] == j
        if chosen.any():
            td[rows[chosen]] = target_dose(name, fit.params[chosen], delta, fit.scal, fit.off)
            sub = DoseFit(name, fit.params[chosen], fit.grss[chosen], fit.scal, fit.off)
            td_se[rows[chosen]] = target_dose_se(sub, doses, S_r[rows[chosen]], delta)
    return McpModResult(cands, classes, test, selected, gaic, params, td, td_se, float(delta))
