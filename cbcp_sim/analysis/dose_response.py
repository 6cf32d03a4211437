"""MCP-Mod as the dose-response analysis of simulated dose designs (``analysis.dose_response_models``): the
generalised multiple contrast test, model selection by gAIC (or the gAIC-averaged curve), the target dose and the
ED50 with their delta-method SEs, of every simulated trial [Pinheiro 2014], on the ANCOVA
(:func:`~cbcp_sim.analysis.ancova.ancova_differences`) or the MMRM (:func:`~cbcp_sim.analysis.mmrm.mmrm_differences`)
of every arm at the primary visit.

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
covariate imbalance and dropout), and a contrast is significant when its t exceeds it (measured against each
trial's exact test in docs/dose.md). Fits are only for trials whose test rejects (``fits=False``: the test alone).
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
    selected: np.ndarray       #: (R,) index of the model class of smallest gAIC, -1 if no rejection
    td: np.ndarray             #: (R,) the selected (or averaged) curve's target dose (NaN: none or not reached)
    null_reject: np.ndarray    #: (R,) the same test in the trials without cell effect
    null_selected: np.ndarray  #: (R,) model selected there (-1: no rejection)
    failed: np.ndarray         #: (R,) the ANCOVA could not be fitted (counted as not rejecting)
    td_se: np.ndarray          #: (R,) the TD's delta-method SE
    ed: np.ndarray             #: (R,) the curve's ED50 (NaN: no rejection)
    ed_se: np.ndarray          #: (R,) its delta-method SE


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
            delta: float, fits: bool = True, selection: str = "aic") -> dict[str, np.ndarray]:
    """MCP-Mod of each trial: ``reject`` and ``failed`` ``(R,)``, and with ``fits`` the modelling step
    (:func:`~cbcp_sim.analysis.dose_finding.model_step`): ``selected`` (the class of smallest gAIC among those
    with a significant contrast), ``td`` (``delta`` points over placebo), ``ed`` (ED50) and their SEs, of the
    selected curve or (``selection = "average"``) the gAIC-averaged one, as DoseFinding's ``MCPMod(type =
    "general", selModel = "AIC" or "aveAIC")``. The test is at one-sided ``alpha``."""
    # MCP-Mod and scipy.optimize here, not at import: the engine and the store import this module for every run
    from cbcp_sim.analysis.dose_finding import model_step
    from cbcp_sim.analysis.mcpmod import contrast_correlation, critical_value, optimal_contrasts, shapes

    doses = np.asarray(doses, dtype=float)
    n_r = diff.estimate.shape[0]
    failed = ~np.isfinite(diff.estimate).all(axis=1) | ~np.isfinite(diff.df)
    out = {"reject": np.zeros(n_r, bool), "failed": failed, "selected": np.full(n_r, -1),
           **{k: np.full(n_r, np.nan) for k in ("td", "td_se", "ed", "ed_se")}}
    ok = np.flatnonzero(~failed)
    if not ok.size:
        return out
    mu_hat, S = per_dose(ArmDifferences(diff.estimate[ok], diff.covariance[ok], diff.df[ok]))
    contrasts = optimal_contrasts(shapes(candidates, doses), S)                  # (R, K, M)
    t = np.einsum("rk,rkm->rm", mu_hat, contrasts) / np.sqrt(np.einsum("rkm,rkl,rlm->rm", contrasts, S, contrasts))
    corr = contrast_correlation(contrasts, S).mean(axis=0)
    crit = critical_value(corr, alpha, float(np.median(diff.df[ok])))
    significant = t > crit
    out["reject"][ok] = significant.any(axis=1)
    if fits:
        step = model_step(mu_hat, S, doses, candidates, significant, delta, 0.5, selection)
        for key in ("selected", "td", "td_se", "ed", "ed_se"):
            out[key][ok] = getattr(step, key)
    return out


def true_doses(response: Any, doses: np.ndarray, effects: np.ndarray, delta: float,
               p: float = 0.5) -> tuple[float, float, float]:
    """The true target dose, the true ``ED_p`` and the scale of the true effect curve. The treatment model's mean
    effect at dose ``x`` is taken as ``k r(x)``, ``r`` the dose-response function (``response(x)``: the peak effect
    of one dose, :func:`cbcp_sim.models.treatment.dose_response`), ``k`` fitted by least squares to the arms' true
    effects ``effects`` at their ``doses``. The TD is the smallest dose in ``(0, max dose]`` with ``k r(x) =
    delta``, the ``ED_p`` the smallest with ``p`` times the curve's largest effect there (the effect at the largest
    dose: ``r`` does not decrease), each by root-finding; NaN where not reached (for ED: a curve without effect)."""
    r = np.array([float(response(x)) for x in doses])
    k = float(r @ effects / (r @ r)) if (r @ r) > 0 else math.nan
    top = float(np.max(doses))
    if not math.isfinite(k):
        return math.nan, math.nan, k
    ceiling = k * float(response(top))
    ed = _first_dose(lambda x: k * float(response(x)), p * ceiling, top) if ceiling > 0 else math.nan
    return _first_dose(lambda x: k * float(response(x)), delta, top), ed, k


def _first_dose(curve: Any, level: float, top: float) -> float:
    """The smallest dose in ``(0, top]`` where the nondecreasing ``curve`` reaches ``level`` (NaN if it does not):
    on a geometric grid, then by root-finding (a step, as the threshold model's: the grid point past it)."""
    from scipy import optimize

    if curve(top) < level:
        return math.nan
    f = lambda x: curve(x) - level  # noqa: E731
    if f(1e-9 * top) >= 0:
        return 0.0
    grid = np.geomspace(1e-6 * top, top, 400)
    vals = np.array([f(x) for x in grid])
    i = int(np.argmax(vals >= 0))
    if vals[i] == 0 or i == 0:
        return float(grid[i])
    try:
        return float(optimize.brentq(f, grid[i - 1], grid[i], xtol=1e-10))
    except ValueError:  # a step (threshold model): the step itself
        return float(grid[i])


def _rate(x: np.ndarray) -> dict[str, float]:
    p = float(np.mean(x)) if x.size else math.nan
    return {"rate": p, "mcse": math.sqrt(p * (1 - p) / x.size) if x.size else math.nan}


def log_interval(estimate: np.ndarray, se: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """The delta-method interval of a dose on the log scale, ``estimate exp(-/+ z se / estimate)``: positive, and
    for a dose estimate skewed to the right closer to its sampling distribution than ``estimate -/+ z se``."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        spread = np.exp(z * se / estimate)
        return estimate / spread, estimate * spread


def _dose_metrics(name: str, estimate: np.ndarray, se: np.ndarray, truth: float, z: float,
                  top: float) -> dict[str, Any]:
    """Of the trials with an estimate: their number, mean, and against the true dose ``truth`` the bias (with its
    MCSE), RMSE, the share within 25% of it, and of the log-scale intervals (:func:`log_interval`) cut to the dose
    range ``[0, top]`` (where the true dose lies; an interval past it says no more than the range) their mean
    and median length and coverage (with its MCSE)."""
    have = np.isfinite(estimate)
    x = estimate[have]
    out: dict[str, Any] = {f"n_{name}": int(have.sum()), f"{name}_mean": float(x.mean()) if x.size else None}
    keys = ("bias", "bias_mcse", "rmse", "within_25", "interval_mean", "interval_median", "coverage",
            "coverage_mcse")
    out.update({f"{name}_{k}": None for k in keys})
    if not (x.size and math.isfinite(truth)):
        return out
    err = x - truth
    out.update({f"{name}_bias": float(err.mean()), f"{name}_rmse": float(np.sqrt(np.mean(err**2))),
                f"{name}_bias_mcse": float(err.std(ddof=1) / math.sqrt(err.size)) if err.size > 1 else None,
                f"{name}_within_25": float(np.mean(np.abs(err) <= 0.25 * truth))})
    ok = have & np.isfinite(se)
    if ok.any():
        low, high = log_interval(estimate[ok], se[ok], z)
        low, high = np.clip(low, 0.0, top), np.clip(high, 0.0, top)
        length = high - low
        covered = _rate((low <= truth) & (truth <= high))
        out.update({f"{name}_interval_mean": float(np.mean(length)),
                    f"{name}_interval_median": float(np.median(length)),
                    f"{name}_coverage": covered["rate"], f"{name}_coverage_mcse": covered["mcse"]})
    return out


def summary(res: DoseResponses, classes: tuple[str, ...], true_td: float, true_ed50: float, alpha: float,
            top: float) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The run's ``dose_response`` block and the per-trial arrays: power and type I error of the test (with
    MCSE), the probability of selecting each model class (over all trials), and for the TD and the ED50, over
    the trials with one, the mean, bias, RMSE, the share within 25% of the truth and the length and coverage of
    the ``1 - 2 alpha`` log-scale delta-method interval within the doses ``[0, top]`` (:func:`_dose_metrics`;
    ``alpha`` one-sided)."""
    from scipy import special

    power, type1 = _rate(res.reject), _rate(res.null_reject)
    z = float(special.ndtri(1.0 - alpha))
    block: dict[str, Any] = {
        "power": power["rate"], "power_mcse": power["mcse"], "type1": type1["rate"], "type1_mcse": type1["mcse"],
        "n_failed": int(res.failed.sum()),
        "selection": {name: float(np.mean(res.selected == j)) for j, name in enumerate(classes)},
        "null_selection": {name: float(np.mean(res.null_selected == j)) for j, name in enumerate(classes)},
        "true_td": None if math.isnan(true_td) else true_td,
        "true_ed50": None if math.isnan(true_ed50) else true_ed50, "interval_level": 1.0 - 2.0 * alpha,
        **_dose_metrics("td", res.td, res.td_se, true_td, z, top),
        **_dose_metrics("ed50", res.ed, res.ed_se, true_ed50, z, top)}
    arrays = {"reject": res.reject, "selected": res.selected, "td": res.td, "td_se": res.td_se, "ed50": res.ed,
              "ed50_se": res.ed_se, "null_reject": res.null_reject}
    return block, arrays
