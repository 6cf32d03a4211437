"""MCP-Mod as the dose-response analysis of simulated dose designs (``analysis.dose_response_models``): the
generalised multiple contrast test, model selection by gAIC and the target dose of every simulated trial
[Pinheiro 2014], on the ANCOVA (:func:`~cbcp_sim.analysis.ancova.ancova_differences`) or the MMRM
(:func:`~cbcp_sim.analysis.mmrm.mmrm_differences`) of every arm at the primary visit.

Per-dose inputs from placebo-adjusted ones. The ANCOVA gives the active arms' differences from placebo ``d``
``(K - 1)`` and their covariance ``V``. The test takes per-dose estimates ``mu_hat = [0, d]`` and the ``K x K``
covariance ``S = [[s, s 1'], [s 1, V + s 1 1']]`` (any ``s > 0``; here the mean covariance of two differences,
the control mean's share). Every quantity MCP-Mod uses is invariant to the choice: contrasts sum to zero, so a
contrast is ``c = L'a`` with ``L = [-1, I]`` and ``c'mu_hat = a'd``, ``c'Sc = a'(L S L')a = a'Va``; the optimal
contrast maximises ``(a'Ld)^2 / a'Va`` (placebo's standardised shape is 0), the same as DoseFinding's placebo-adjusted
``optContr(placAdj = TRUE)``; the generalised least squares fit with a free intercept profiles ``e0`` out, leaving
``(L r)'(L S L')^-1 (L r)``, so the fitted shape, gAIC differences and target dose are those of the per-arm adjusted
means (tests/test_dose_designs.py checks this against statsmodels' per-arm estimates).

Speed: each trial's contrasts and t statistics are its own; the critical value is computed once per batch from
the mean contrast correlation and the median df (the ANCOVA's correlation varies between trials only through
covariate imbalance and dropout), and a contrast is significant when its t exceeds it. Fits are only for trials
whose test rejects (``fits=False``: the test alone, as for the trials without an effect).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cbcp_sim.analysis.ancova import ArmDifferences
from cbcp_sim.analysis.dose_models import Candidate


@dataclass(frozen=True)
class DoseResponses:
    """MCP-Mod of each simulated trial, with and without the cell effect (stored per chunk)."""

    reject: np.ndarray         #: (R,) the multiple contrast test rejects (trials with the effect)
    selected: np.ndarray       #: (R,) index of the selected model class, -1 if no rejection
    td: np.ndarray             #: (R,) the selected model's target dose (NaN: none or not reached)
    null_reject: np.ndarray    #: (R,) the same test in the trials without cell effect
    null_selected: np.ndarray  #: (R,) model selected there (-1: no rejection)
    failed: np.ndarray         #: (R,) the ANCOVA could not be fitted (counted as not rejecting)


def per_dose(diff: ArmDifferences) -> tuple[np.ndarray, np.ndarray]:
    """``mu_hat`` ``(R, K)`` = [0, differences] and ``S`` ``(R, K, K)`` from placebo-adjusted ANCOVA differences
    (module docstring: every MCP-Mod quantity equals that of the per-arm adjusted means)."""
    d, V = diff.estimate, diff.covariance
    n_r, k1 = d.shape
    off = (V.sum(axis=(1, 2)) - np.trace(V, axis1=1, axis2=2)) / max(k1 * (k1 - 1), 1)
    s = np.where(off > 0, off, np.trace(V, axis1=1, axis2=2) / k1 / 2.0)
    S = np.empty((n_r, k1 + 1, k1 + 1))
    S[:, 0, 0] = s
    S[:, 0, 1:] = S[:, 1:, 0] = s[:, None]
    S[:, 1:, 1:] = V + s[:, None, None]
    return np.concatenate([np.zeros((n_r, 1)), d], axis=1), S


def analyse(diff: ArmDifferences, doses: np.ndarray, candidates: tuple[Candidate, ...], alpha: float,
            delta: float, fits: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(reject, selected, td, failed)`` of each trial: the multiple contrast test at one-sided ``alpha``, and
    with ``fits`` the model class of smallest gAIC among those with a significant contrast and its target dose
    (``delta`` points over placebo), as DoseFinding's ``MCPMod(type = "general", selModel = "AIC")``."""
    # MCP-Mod and scipy.optimize here, not at import: the engine and the store import this module for every run
    from cbcp_sim.analysis.dose_fit import fit_model, target_dose
    from cbcp_sim.analysis.mcpmod import contrast_correlation, critical_value, optimal_contrasts, shapes

    doses = np.asarray(doses, dtype=float)
    classes = tuple(dict.fromkeys(c.model for c in candidates))
    n_r = diff.estimate.shape[0]
    failed = ~np.isfinite(diff.estimate).all(axis=1) | ~np.isfinite(diff.df)
    reject, selected, td = np.zeros(n_r, bool), np.full(n_r, -1), np.full(n_r, np.nan)
    ok = np.flatnonzero(~failed)
    if not ok.size:
        return reject, selected, td, failed
    mu_hat, S = per_dose(ArmDifferences(diff.estimate[ok], diff.covariance[ok], diff.df[ok]))
    mu = shapes(candidates, doses)
    contrasts = optimal_contrasts(mu, S)                                        # (R, K, M)
    t = np.einsum("rk,rkm->rm", mu_hat, contrasts) / np.sqrt(np.einsum("rkm,rkl,rlm->rm", contrasts, S, contrasts))
    corr = contrast_correlation(contrasts, S).mean(axis=0)
    crit = critical_value(corr, alpha, float(np.median(diff.df[ok])))
    significant = t > crit
    reject[ok] = significant.any(axis=1)
    if not fits:
        return reject, selected, td, failed
    gaic = np.full((ok.size, len(classes)), np.nan)
    fitted = {}
    for j, name in enumerate(classes):
        rows = np.flatnonzero(significant[:, [c.model == name for c in candidates]].any(axis=1))
        if rows.size:
            fit = fit_model(name, doses, mu_hat[rows], S[rows])
            gaic[rows, j] = fit.gaic
            fitted[name] = (rows, fit)
    chosen = np.where(reject[ok], np.argmin(np.where(np.isnan(gaic), np.inf, gaic), axis=1), -1)
    selected[ok] = chosen
    for j, name in enumerate(classes):
        if name in fitted:
            rows, fit = fitted[name]
            mine = chosen[rows] == j
            if mine.any():
                td[ok[rows[mine]]] = target_dose(name, fit.params[mine], delta, fit.scal, fit.off)
    return reject, selected, td, failed


def true_target_dose(response: Any, doses: np.ndarray, effects: np.ndarray, delta: float) -> tuple[float, float]:
    """The true target dose and the scale of the true effect curve. The treatment model's mean effect at dose
    ``x`` is taken as ``k r(x)``, ``r`` the dose-response function (``response(x)``: the peak effect of one dose,
    :func:`cbcp_sim.models.treatment.dose_response`), ``k`` fitted by least squares to the arms' true effects
    ``effects`` at their ``doses``; the TD is the smallest dose in ``(0, max dose]`` with ``k r(x) = delta`` (by
    root-finding; NaN if the curve does not reach delta there)."""
    from scipy import optimize

    r = np.array([float(response(x)) for x in doses])
    k = float(r @ effects / (r @ r)) if (r @ r) > 0 else math.nan
    top = float(np.max(doses))
    if not math.isfinite(k) or k * float(response(top)) < delta:
        return math.nan, k
    f = lambda x: k * float(response(x)) - delta  # noqa: E731
    if f(1e-9 * top) >= 0:
        return 0.0, k
    grid = np.geomspace(1e-6 * top, top, 400)
    vals = np.array([f(x) for x in grid])
    i = int(np.argmax(vals >= 0))
    if vals[i] == 0 or i == 0:
        return float(grid[i]), k
    try:
        return float(optimize.brentq(f, grid[i - 1], grid[i], xtol=1e-10)), k
    except ValueError:  # a step (threshold model): the step itself
        return float(grid[i]), k


def _rate(x: np.ndarray) -> dict[str, float]:
    p = float(np.mean(x)) if x.size else math.nan
    return {"rate": p, "mcse": math.sqrt(p * (1 - p) / x.size) if x.size else math.nan}


def summary(res: DoseResponses, classes: tuple[str, ...],
            true_td: float) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The run's ``dose_response`` block and the per-trial arrays: power and type I error of the test (with
    MCSE), the probability of selecting each model class (over all trials), and the TD's mean, bias, RMSE and
    the share of trials (among those with a TD) within 25% of the true TD."""
    power, type1 = _rate(res.reject), _rate(res.null_reject)
    have = np.isfinite(res.td)
    tds = res.td[have]
    block: dict[str, Any] = {
        "power": power["rate"], "power_mcse": power["mcse"], "type1": type1["rate"], "type1_mcse": type1["mcse"],
        "n_failed": int(res.failed.sum()),
        "selection": {name: float(np.mean(res.selected == j)) for j, name in enumerate(classes)},
        "null_selection": {name: float(np.mean(res.null_selected == j)) for j, name in enumerate(classes)},
        "true_td": None if math.isnan(true_td) else true_td, "n_td": int(have.sum()),
        "td_mean": float(tds.mean()) if tds.size else None}
    if tds.size and math.isfinite(true_td):
        err = tds - true_td
        block.update(td_bias=float(err.mean()), td_bias_mcse=float(err.std(ddof=1) / math.sqrt(err.size))
                     if err.size > 1 else None, td_rmse=float(np.sqrt(np.mean(err**2))),
                     td_within_25=float(np.mean(np.abs(err) <= 0.25 * true_td)))
    else:
        block.update(td_bias=None, td_bias_mcse=None, td_rmse=None, td_within_25=None)
    arrays = {"reject": res.reject, "selected": res.selected, "td": res.td, "null_reject": res.null_reject}
    return block, arrays
