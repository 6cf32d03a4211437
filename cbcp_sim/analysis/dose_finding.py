"""MCP-Mod end to end on per-dose estimates, batched over replicates [Bretz 2005] [Pinheiro 2014]: the multiple
contrast test (:mod:`~cbcp_sim.analysis.mcpmod`), then in each replicate that rejects, the fit of every model
class with a significant contrast (:mod:`~cbcp_sim.analysis.dose_fit`), the one of smallest gAIC selected (or
all of them averaged with gAIC weights), and the target dose ``TD`` and ``ED_p`` with their delta-method SEs:
DoseFinding's ``MCPMod(..., type = "general", selModel = "AIC" or "aveAIC", Delta = delta)``, ``TD`` and ``ED``.

Model averaging (``selection = "average"``): weights ``exp(-gAIC / 2)`` normalised over the significant model
classes (DoseFinding's ``selModel = "aveAIC"``); the averaged dose-response curve is the weighted mean of the fitted
curves, and its TD and ED_p are found on it, as [Wheeler 2007] find a benchmark dose on the averaged curve
([Schorning 2016] compare selection and averaging in dose finding). Their SEs hold the weights fixed
(:func:`~cbcp_sim.analysis.dose_fit.estimate_se`).

>>> res = mcpmod(mu_hat, S, doses=[0, 1, 2, 4, 8], models="emax:1,sigEmax:3:3,linear", df=95)  # doctest: +SKIP
>>> res.test.reject.mean(), np.nanmean(res.model.td)                                                  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cbcp_sim.analysis.dose_fit import (
    DoseFit,
    averaged_effective_dose,
    averaged_target_dose,
    effective_dose,
    estimate_se,
    fit_model,
    target_dose,
)
from cbcp_sim.analysis.dose_models import Candidate, add_args, parse_candidates
from cbcp_sim.analysis.mcpmod import MctResult, mct

#: How the dose-response curve is chosen among the significant models: the smallest gAIC, or their gAIC average.
SELECTIONS = ("aic", "average")
#: A dose estimate from the parameters of one or several fits (``(R, p_m)`` each) to ``(R,)``.
Estimator = Callable[[list[np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class ModelStep:
    """MCP-Mod's modelling step in each of ``R`` replicates (NaN and -1 where the test did not reject)."""

    classes: tuple[str, ...]       #: the distinct model names among the candidates, in order
    selected: np.ndarray           #: ``(R,)`` index into ``classes`` of the smallest gAIC; -1 if no rejection
    gaic: np.ndarray               #: ``(R, len(classes))`` gAIC of each fitted class (NaN: not significant)
    params: dict[str, np.ndarray]  #: class -> ``(R, p)`` fitted parameters (NaN where not fitted)
    td: np.ndarray                 #: ``(R,)`` target dose of the selected (or averaged) curve (NaN: not reached)
    td_se: np.ndarray              #: ``(R,)`` its delta-method SE
    ed: np.ndarray                 #: ``(R,)`` ``ED_p`` of the selected (or averaged) curve
    ed_se: np.ndarray              #: ``(R,)`` its delta-method SE
    selection: str                 #: ``aic`` or ``average``

    @property
    def weights(self) -> np.ndarray:
        """``(R, len(classes))`` model-averaging weights ``exp(-gAIC / 2)`` normalised over the fitted classes."""
        return gaic_weights(self.gaic)


def gaic_weights(gaic: np.ndarray) -> np.ndarray:
    """``(R, C)`` weights ``exp(-gAIC / 2)`` normalised over the classes with a gAIC (NaN rows: none fitted)."""
    g = np.where(np.isnan(gaic), np.inf, gaic)
    low = g.min(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        w = np.exp(-(g - low) / 2.0)
        return w / w.sum(axis=1, keepdims=True)


def model_step(mu_hat: np.ndarray, S: np.ndarray, doses: np.ndarray, candidates: Sequence[Candidate],
               significant: np.ndarray, delta: float, p: float = 0.5, selection: str = "aic") -> ModelStep:
    """Fit every model class with a significant contrast (``significant`` ``(R, M)``) to ``mu_hat`` ``(R, K)``
    with covariance ``S`` ``(R, K, K)``; in each replicate with one, choose the curve (``selection``) and give its
    target dose for an effect ``delta`` over placebo and its ``ED_p``, each with its delta-method SE."""
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    classes = tuple(dict.fromkeys(c.model for c in candidates))
    n_r, top = mu_hat.shape[0], float(np.max(doses))
    gaic = np.full((n_r, len(classes)), np.nan)
    params: dict[str, np.ndarray] = {}
    fits: dict[str, tuple[np.ndarray, DoseFit]] = {}
    for j, name in enumerate(classes):
        rows = np.flatnonzero(significant[:, [c.model == name for c in candidates]].any(axis=1))
        if rows.size:
            fit = fit_model(name, doses, mu_hat[rows], S[rows])
            gaic[rows, j] = fit.gaic
            params[name] = np.full((n_r, fit.params.shape[1]), np.nan)
            params[name][rows] = fit.params
            fits[name] = (rows, fit)
    fitted = significant.any(axis=1)
    selected = np.where(fitted, np.argmin(np.where(np.isnan(gaic), np.inf, gaic), axis=1), -1)
    out = {k: np.full(n_r, np.nan) for k in ("td", "td_se", "ed", "ed_se")}
    if selection == "aic":
        for j, name in enumerate(classes):
            if name not in fits:
                continue
            rows, fit = fits[name]
            mine = selected[rows] == j
            if mine.any():
                sub = DoseFit(name, fit.params[mine], fit.grss[mine], fit.scal, fit.off)
                _doses_of(out, rows[mine], [sub], doses, S[rows[mine]],
                          lambda q, name=name, fit=fit: target_dose(name, q[0], delta, fit.scal, fit.off),
                          lambda q, name=name, fit=fit: effective_dose(name, q[0], p, top, fit.scal, fit.off))
    elif fits:
        rows = np.flatnonzero(fitted)
        names = list(fits)
        w = gaic_weights(gaic[rows][:, [classes.index(n) for n in names]])
        scal, off = add_args(doses)
        subs = [DoseFit(n, params[n][rows], np.zeros(rows.size), scal, off) for n in names]
        _doses_of(out, rows, subs, doses, S[rows],
                  lambda q: averaged_target_dose(names, q, w, delta, top, scal, off),
                  lambda q: averaged_effective_dose(names, q, w, p, top, scal, off))
    return ModelStep(classes, selected, gaic, params, out["td"], out["td_se"], out["ed"], out["ed_se"], selection)


def _doses_of(out: dict[str, np.ndarray], rows: np.ndarray, fits: list[DoseFit], doses: np.ndarray, S: np.ndarray,
              td_of: Estimator, ed_of: Estimator) -> None:
    """Write the TD and ED (``td_of``, ``ed_of``: a list of each fit's parameters to ``(R,)``) of ``rows`` and
    their delta-method SEs into ``out``."""
    params = [f.params for f in fits]
    for key, estimator in (("td", td_of), ("ed", ed_of)):
        est = estimator(params)
        se = estimate_se(fits, doses, S, estimator)
        out[key][rows] = est
        out[f"{key}_se"][rows] = np.where(np.isfinite(est), se, np.nan)


@dataclass(frozen=True)
class McpModResult:
    """MCP-Mod in each of ``R`` replicates: the test, then the modelling step (the selected or averaged curve,
    its target dose and ``ED_p``)."""

    candidates: tuple[Candidate, ...]
    test: MctResult                #: ``tstats``, ``p_adjusted`` ``(R, M)``, ``reject`` ``(R,)``, ...
    model: ModelStep               #: ``selected``, ``gaic``, ``params``, ``td``, ``ed`` and their SEs, ...
    delta: float
    p: float                       #: the ``ED_p`` level (0.5: ED50)


def mcpmod(mu_hat: np.ndarray, S: np.ndarray, doses: Sequence[float], models: str | Sequence[str | Candidate],
           df: np.ndarray | float = math.inf, alpha: float = 0.025, delta: float = 1.5, p: float = 0.5,
           selection: str = "aic") -> McpModResult:
    """MCP-Mod on per-dose estimates ``mu_hat`` ``(R, K)`` (placebo first) with covariance ``S`` ``(K, K)`` or
    ``(R, K, K)`` and residual ``df`` (number or ``(R,)``; inf: normal), one-sided level ``alpha``; ``delta`` the
    effect over placebo defining the target dose (GMFM-66 points), ``p`` the level of ``ED_p`` (in (0, 1)),
    ``selection`` ``"aic"`` or ``"average"``. Fits loop over replicates only for the two-parameter models
    (``sigEmax``, ``logistic``, ``betaMod``)."""
    cands = parse_candidates(models)
    doses = np.asarray(doses, dtype=float)
    mu_hat = np.atleast_2d(np.asarray(mu_hat, dtype=float))
    test = mct(mu_hat, S, doses, cands, df, alpha)
    S_r = np.broadcast_to(np.asarray(S, dtype=float), (mu_hat.shape[0], doses.size, doses.size))
    step = model_step(mu_hat, S_r, doses, cands, test.p_adjusted < alpha, delta, p, selection)
    return McpModResult(cands, test, step, float(delta), float(p))
