"""Natural dose variation: the slope of GMFM-66 change on each treated child's cell dose, batched over replicates.

In an autologous trial the dose per kg is not randomised: it is the banked unit's cells times recovery divided by
the child's weight, and weight follows age and GMFCS level, which also predict motor change. The slope of the
change from baseline on dose among the treated children is then confounded. Two estimators, by least squares in
each replicate over the treated children seen at baseline and at the primary visit:

- ``unadjusted``: change = a + b dose;
- ``adjusted``: change = a + b dose + c baseline + the numeric ``covariates`` (age, weight) + one indicator per
  GMFCS level (``levels``; the lowest level present in the replicate is the reference). With baseline in the
  model, the visit score gives the same ``b`` as the change.

``b`` is per 10^7 TNC/kg, or per unit log dose (``log=True``: per e-fold dose). Columns are centred and scaled
before the fit and the slope scaled back; a column that carries nothing (a GMFCS level absent from a replicate's
treated children, a constant covariate) is dropped through the rank (Moore-Penrose inverse), so df = n - rank.

By dose strata (:func:`dose_stratum`): the same two fits on each child's stratum (0 below the first cut point, 1
up to the next, ...) in place of its dose, a trend test across ordered strata; with one cut point the slope is the
difference between the higher and the lower stratum. Its truth is :func:`true_slopes` on the strata of the doses.

The true slope a trial's estimators are judged against (:func:`true_slopes`, docs/dose.md) is the slope a trial
with randomised doses would estimate: for each treated child the least-squares slope of its own cell effect
(score under the arm's cells minus its untreated score at the primary visit, known to the simulator) over the doses
the trial's treated children received, averaged over the children.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cbcp_sim.analysis.inference import Estimates, infer
from cbcp_sim.analysis.metrics import rate

#: The estimators, in the order of :class:`DoseSlopes`'s columns.
ESTIMATORS = ("unadjusted", "adjusted")
#: GMFCS levels coded as indicators in the adjusted fit.
LEVELS = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class DoseSlopes:
    """Per trial ``(R, 2)``: the slope of each estimator (columns as :data:`ESTIMATORS`), its SE and df, in the
    trials with and without the cell effect; per trial ``(R,)`` the true slope (:func:`true_slopes`) and the slope
    of the effects the treated children received on their doses."""

    estimate: np.ndarray
    se: np.ndarray
    df: np.ndarray
    null_estimate: np.ndarray
    null_se: np.ndarray
    null_df: np.ndarray
    truth: np.ndarray
    received: np.ndarray

    def estimates(self, estimator: str, null: bool = False) -> Estimates:
        """One estimator's :class:`Estimates` (``null``: in the trials without the cell effect)."""
        j = ESTIMATORS.index(estimator)
        if null:
            return Estimates(self.null_estimate[:, j], self.null_se[:, j], self.null_df[:, j])
        return Estimates(self.estimate[:, j], self.se[:, j], self.df[:, j])


def _slope(y: np.ndarray, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least squares of ``y`` ``(R, N)`` on an intercept and the columns ``x`` ``(R, N, P)`` over the children
    ``w`` ``(R, N)``: the coefficient of the first column, its SE and the residual df (NaN where df < 1)."""
    wf = w.astype(float)
    n = wf.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.einsum("rn,rnp->rp", wf, x) / n[:, None]
        centred = (x - mean[:, None, :]) * wf[..., None]
        scale = np.sqrt(np.einsum("rnp,rnp->rp", centred, centred) / n[:, None])
        z = centred / np.where(scale > 0, scale, 1.0)[:, None, :]
        z = np.concatenate([wf[..., None], z], axis=-1)  # intercept
        yw = np.where(w, y, 0.0)
        xtx = np.einsum("rnp,rnq->rpq", z, z)
        xty = np.einsum("rnp,rn->rp", z, yw)
        finite = np.isfinite(xtx).all(axis=(1, 2))
        xtx[~finite] = np.eye(xtx.shape[-1])
        inverse = np.linalg.pinv(xtx, hermitian=True)
        rank = np.linalg.matrix_rank(xtx, hermitian=True)
        beta = np.einsum("rpq,rq->rp", inverse, xty)
        residual = yw - np.einsum("rnp,rp->rn", z, beta) * wf
        df = (n - rank).astype(float)
        s2 = np.einsum("rn,rn->r", residual, residual) / df
        estimate = beta[:, 1] / scale[:, 0]
        se = np.sqrt(s2 * inverse[:, 1, 1]) / scale[:, 0]
    bad = ~finite | (df < 1) | ~(scale[:, 0] > 0)
    return (np.where(bad, np.nan, estimate), np.where(bad, np.nan, se), np.where(bad, np.nan, df))


def dose_slopes(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, primary: int, dose: np.ndarray, *,
                covariates: np.ndarray | None = None, levels: np.ndarray | None = None,
                log: bool = False) -> tuple[Estimates, Estimates]:
    """The unadjusted and adjusted slopes of the change from baseline to visit ``primary`` on dose.

    Parameters
    ----------
    values, observed : (R, N, V) scores and the mask of those seen; baseline is visit 0
    treated : (R, N) or (N,) the children whose doses are analysed (the active arms', or every child of a single arm)
    primary : index of the primary visit
    dose : (R, N) each child's dose, 10^7 TNC/kg (positive where ``log``)
    covariates : (R, N, C) numeric confounders adjusted for beside baseline (age in years, weight in kg), or None
    levels : (R, N) GMFCS level of each child (1-5), adjusted for as indicators, or None
    log : regress on log dose

    Returns
    -------
    The unadjusted and adjusted :class:`Estimates` ``(R,)``: slope per 10^7 TNC/kg (per unit log dose), SE, df.
    """
    w = np.broadcast_to(treated, dose.shape) & observed[..., 0] & observed[..., primary]
    baseline = values[..., 0]
    y = values[..., primary] - baseline
    x = np.log(np.maximum(dose, np.finfo(float).tiny)) if log else np.asarray(dose, dtype=float)
    unadjusted = _slope(y, x[..., None], w)
    columns = [x[..., None], baseline[..., None]]
    if covariates is not None:
        columns.append(np.asarray(covariates, dtype=float))
    if levels is not None:
        columns.append((np.asarray(levels)[..., None] == np.array(LEVELS)).astype(float))
    adjusted = _slope(y, np.concatenate(columns, axis=-1), w)
    return Estimates(*unadjusted), Estimates(*adjusted)


def dose_stratum(dose: np.ndarray, cuts: tuple[float, ...]) -> np.ndarray:
    """Each dose's stratum (float, 0 to ``len(cuts)``): the number of cut points (10^7 TNC/kg, increasing) at or
    below it, so a dose at a cut point is in the stratum above."""
    return np.searchsorted(np.asarray(cuts, dtype=float), dose, side="right").astype(float)


def true_slopes(doses: np.ndarray, effects: np.ndarray, *, log: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The true slope of each trial, and the slope of the effects received on the doses received.

    Parameters
    ----------
    doses : (R, K) the doses of the trial's K treated children
    effects : (R, K, K) each treated child's cell effect at the primary visit (score under the cells minus untreated
        score) had it received dose ``doses[:, k]``, children in the order of ``doses``
    log : slopes on log dose

    Returns
    -------
    ``truth`` (R,): the mean over the treated children of each child's least-squares slope of its own effect over
    the K doses, which is the population slope of effect on dose if doses were assigned at random from the trial's
    doses; ``received`` (R,): the least-squares slope of each treated child's effect at its own dose on that dose
    (what an unconfounded regression on the doses as received would estimate, effect modification included).
    """
    x = np.log(np.maximum(doses, np.finfo(float).tiny)) if log else np.asarray(doses, dtype=float)
    k = doses.shape[1]
    xc = x - x.mean(axis=1, keepdims=True)
    sxx = np.einsum("rk,rk->r", xc, xc)
    with np.errstate(invalid="ignore", divide="ignore"):
        truth = np.einsum("rik,rk->r", effects, xc) / k / sxx
        received = np.einsum("rkk,rk->r", effects, xc) / sxx
    return truth, received


def _estimator_summary(slopes: DoseSlopes, name: str, truth: float, *, alpha: float, sides: int) -> dict[str, Any]:
    """Mean estimate, bias (against each trial's true slope) with MCSE, RMSE and coverage (against the run's true
    slope), the power to find a positive slope and the same share in the trials without cell effect."""
    est = slopes.estimates(name)
    inference = infer(est, alpha=alpha, sides=sides)
    ok = ~inference.failed
    n = int(ok.sum())
    diff = (est.estimate - slopes.truth)[ok]
    positive = inference.reject & (est.estimate > 0)
    null = slopes.estimates(name, null=True)
    null_inference = infer(null, alpha=alpha, sides=sides)
    power, type1 = rate(positive, inference.failed), rate(null_inference.reject & (null.estimate > 0),
                                                          null_inference.failed)
    covered = (inference.ci_low <= truth) & (truth <= inference.ci_high)
    cover = rate(covered, inference.failed)
    return {"mean_estimate": float(est.estimate[ok].mean()) if n else math.nan,
            "true_slope": truth,
            "bias": float(diff.mean()) if n else math.nan,
            "bias_mcse": float(diff.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
            "rmse": float(np.sqrt(np.mean((est.estimate[ok] - truth) ** 2))) if n else math.nan,
            "coverage": cover["rate"], "coverage_mcse": cover["mcse"],
            "power": power["rate"], "power_mcse": power["mcse"], "power_ci_low": power["ci_low"],
            "power_ci_high": power["ci_high"],
            "type1": type1["rate"], "type1_mcse": type1["mcse"],
            "n_failed": int(inference.failed.sum())}


def summary(slopes: DoseSlopes, *, alpha: float, sides: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The run's dose-slope block: the true slope (mean over trials, with its MCSE), the slope of the effects
    received, and per estimator :func:`_estimator_summary`; and per-trial arrays for the result's replicates.

    Power is the share of trials whose test finds a positive slope (``sides=1``: one-sided p below ``alpha``;
    ``sides=2``: two-sided p below ``alpha`` and a positive estimate); ``type1`` is that share in the trials without
    cell effect, whose true slope is 0. Coverage is of the ``1 - alpha`` interval (``1 - 2 alpha`` one-sided).
    """
    known = np.isfinite(slopes.truth)
    truth = float(slopes.truth[known].mean()) if known.any() else math.nan
    m = int(known.sum())
    out: dict[str, Any] = {
        "true_slope": truth,
        "true_slope_mcse": float(slopes.truth[known].std(ddof=1) / math.sqrt(m)) if m > 1 else math.nan,
        "received_slope": float(np.nanmean(slopes.received)) if np.isfinite(slopes.received).any() else math.nan}
    arrays: dict[str, np.ndarray] = {"true_slope": slopes.truth, "received_slope": slopes.received}
    for j, name in enumerate(ESTIMATORS):
        out[name] = _estimator_summary(slopes, name, truth, alpha=alpha, sides=sides)
        arrays.update({f"{name}_estimate": slopes.estimate[:, j], f"{name}_se": slopes.se[:, j],
                       f"{name}_df": slopes.df[:, j]})
    return out, arrays
