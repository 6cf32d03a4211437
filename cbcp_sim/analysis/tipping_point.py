"""Delta adjustment of a primary analysis under missing at random (MAR), and its tipping point; batched.

The sensitivity analysis of [ICH E9(R1) 2019] for a primary analysis that assumes MAR (ANCOVA of the children seen
at the primary visit, or an MMRM): delta-adjusted multiple imputation ([Ratitch 2013]; [Carpenter 2013]) imputes
each missing primary-visit score from the primary analysis's own model under MAR, lowers the active arm's
imputations by ``delta`` (outcome units; ``delta > 0``: the active arm's dropouts did worse than MAR predicts,
against the treatment), analyses each completed data set by ANCOVA at the primary visit and combines them by
Rubin's rules ([Rubin 1987]). The tipping point is the smallest ``delta`` at which the test stops rejecting.

Here that multiple imputation is taken in its limit of many imputations, in closed form, anchored at the primary
analysis (at ``delta = 0`` it is the primary analysis, estimate, SE and df):

    estimate(delta) = estimate - delta w,        variance(delta) = se^2 + delta a + delta^2 k.

The completed-data analysis is linear in the scores, so lowering the same children's imputations by ``delta`` in
every completed data set moves every estimate by exactly ``-delta w``, ``w`` the arm coefficient of the ANCOVA of
``m`` (1 for an active child missing at the visit, else 0) on arm, baseline and covariates over every child with a
baseline: about the active arm's missing share, less its share explained by baseline imbalance. The shift adds no
between-imputation variance, but it moves each completed data set's residual variance: by
``(delta^2 m'(I - H) m - 2 delta m'(I - H) y) / nu`` (``H`` the completed-data ANCOVA's hat matrix, ``nu`` its
residual df), times the arm coefficient's ``(X'X)^-1`` element ``v``: so ``k = v m'(I - H) m / nu`` and
``a = -2 v m'(I - H) y / nu`` with ``y`` the expected completed scores. Imputed from the ANCOVA itself these lie on
its fitted plane and ``a = 0``; imputed from the MMRM, ``m'(I - H) y`` is the sum over the active arm's missing
children of their expected residuals given the visits they were seen at (the MMRM's estimate is the ANCOVA of the
data completed by these expectations, the EM fixed point of its generalised least squares), so ``a > 0`` when
those children were doing worse. ``tests/test_tipping_point.py`` checks this against explicit delta-adjusted
multiple imputation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from cbcp_sim.analysis.ancova import ancova, regress
from cbcp_sim.analysis.inference import Estimates, infer
from cbcp_sim.analysis.metrics import rate
from cbcp_sim.analysis.mmrm import expected_residuals
from cbcp_sim.analysis.moments import arm_moments
from cbcp_sim.vocabulary import DELTA_ADJUSTED_ANALYSES

#: The primary analyses a delta adjustment applies to (both assume MAR and impute from a normal linear model).
ANALYSES = DELTA_ADJUSTED_ANALYSES
#: Quantiles of the tipping point reported, among the trials significant under MAR.
QUANTILES = {"q25": 0.25, "median": 0.5, "q75": 0.75}


@dataclass(frozen=True)
class DeltaAdjustment:
    """Per replicate ``(R,)``: how a delta (outcome units) moves the estimate and its variance (see the module),
    and the share of the active arm's children with a baseline who are missing at the primary visit."""

    weight: np.ndarray      #: w: estimate(delta) = estimate - delta w
    linear: np.ndarray      #: a: variance(delta) = se^2 + delta a + delta^2 k
    quadratic: np.ndarray   #: k
    missing: np.ndarray     #: share of the active arm missing at the visit

    def estimates(self, est: Estimates, delta: float) -> Estimates:
        """The delta-adjusted estimates of the primary analysis's ``est`` (same df)."""
        with np.errstate(invalid="ignore"):
            se = np.sqrt(est.se ** 2 + delta * self.linear + delta ** 2 * self.quadratic)
        return Estimates(estimate=est.estimate - delta * self.weight, se=se, df=est.df)


def delta_adjusted(name: str, values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int, *,
                   covariates: np.ndarray | None = None, **context: Any) -> tuple[Estimates, DeltaAdjustment]:
    """Analysis ``name`` (:data:`ANALYSES`) of ``values`` ``(R, N, V)`` at ``visit`` and its delta adjustment.

    ``context``: the MMRM's ``mmrm_df`` and ``mmrm_baseline`` (``covariate`` only: the completed-data ANCOVA has
    the MMRM's regressors); other keywords of :data:`cbcp_sim.analysis.CONTEXT` are ignored.
    """
    if name not in ANALYSES:
        raise ValueError(f"delta adjustment: analysis must be one of {', '.join(ANALYSES)}, got {name!r}")
    treated = np.broadcast_to(treated, observed.shape[:2])
    missing = observed[..., 0] & ~observed[..., visit]
    if name == "mmrm":
        options = {k: context[k] for k in ("mmrm_df", "mmrm_baseline") if context.get(k) is not None}
        if options.get("mmrm_baseline", "covariate") != "covariate":
            raise ValueError("delta adjustment of an mmrm needs mmrm_baseline = 'covariate'")
        est, residual = expected_residuals(values, observed, treated, visit, covariates=covariates, **options)
        drift = np.where(missing & treated, residual, 0.0).sum(axis=1)
    else:
        est, drift = ancova(values, observed, treated, visit, covariates=covariates), np.zeros(len(values))
    return est, _adjustment(values[..., 0], observed[..., 0], missing & treated, treated, covariates, drift)


def _adjustment(baseline: np.ndarray, seen: np.ndarray, lowered: np.ndarray, treated: np.ndarray,
                covariates: np.ndarray | None, drift: np.ndarray) -> DeltaAdjustment:
    """The ANCOVA over every child with a baseline (``seen``) of the indicator ``lowered`` of the children whose
    imputations are lowered; ``drift`` is ``m'(I - H) y``, per replicate."""
    columns = {"x0": baseline}
    if covariates is not None:
        columns.update({f"x{c + 1}": covariates[..., c] for c in range(covariates.shape[-1])})
    xs = list(columns)
    m = arm_moments({**columns, "m": lowered.astype(float)}, seen, treated)
    with np.errstate(invalid="ignore", divide="ignore"):
        sxx = np.stack([np.stack([m.within(a, b) for b in xs], axis=-1) for a in xs], axis=-2)
        sxm = np.stack([m.within(a, "m") for a in xs], axis=-1)
        dx = np.stack([m.mean(a, 1) - m.mean(a, 0) for a in xs], axis=-1)
        slope, leverage, solvable = regress(sxx, sxm, dx)
        weight = m.mean("m", 1) - m.mean("m", 0) - (slope * dx).sum(axis=-1)
        residual = np.maximum(m.within("m", "m") - (slope * sxm).sum(axis=-1), 0.0)  # m'(I - H) m
        unit = (1.0 / m.n[0] + 1.0 / m.n[1] + leverage) / (m.n[0] + m.n[1] - 2.0 - len(xs))  # v / nu
        bad = np.where(solvable, 1.0, np.nan)
        return DeltaAdjustment(weight=weight * bad, linear=-2.0 * unit * drift * bad,
                               quadratic=unit * residual * bad, missing=lowered.sum(axis=1) / m.n[1])


def tipping_point(est: Estimates, adj: DeltaAdjustment, *, alpha: float, sides: int) -> np.ndarray:
    """Per replicate ``(R,)``: the smallest ``delta >= 0`` at which the delta-adjusted test stops rejecting, where
    the primary test rejects in favour of the active arm (``t > c``, ``c`` the critical t); ``inf`` where no delta
    does (no active child missing at the visit); NaN where the test does not reject in favour of the active arm.

    The root of ``(E - w d)^2 = c^2 (s^2 + a d + k d^2)`` nearest zero, in the form that keeps its digits."""
    c = special.stdtrit(est.df, 1.0 - alpha / sides)
    e, w, a, k = est.estimate, adj.weight, adj.linear, adj.quadratic
    with np.errstate(invalid="ignore", divide="ignore"):
        favoured = e / est.se > c
        half_b = e * w + 0.5 * c * c * a                    # -B / 2
        constant = e * e - c * c * est.se ** 2             # C > 0 where favoured
        root = np.sqrt(np.maximum(half_b ** 2 - (w * w - c * c * k) * constant, 0.0))
        denominator = half_b + root
        delta = np.where(denominator > 0, constant / denominator, np.inf)
    return np.where(favoured & np.isfinite(e), delta, np.nan)


def still_significant(est: Estimates, adj: DeltaAdjustment, delta: float, *, alpha: float,
                      sides: int) -> np.ndarray:
    """Per replicate ``(R,)``: whether the delta-adjusted test rejects in the direction the primary test did."""
    before = infer(est, alpha=alpha, sides=sides)
    after = infer(adj.estimates(est, delta), alpha=alpha, sides=sides)
    return before.reject & after.reject & (np.sign(after.statistic) == np.sign(before.statistic))


def summary(est: Estimates, adj: DeltaAdjustment, deltas: tuple[float, ...], *, alpha: float,
            sides: int) -> tuple[dict[str, Any], np.ndarray]:
    """The delta adjustment's operating characteristics over trials, and each trial's tipping point.

    ``power``: per delta, the share of analysed trials still significant in the direction of the primary test
    (``mcse``, Wilson ``ci_low``/``ci_high``); at ``delta = 0`` the primary power exactly. The tipping point's
    quartiles (``q25``, ``median``, ``q75``) are over the trials significant in favour of the active arm
    (``n_significant``), each a trial's value (inverted CDF), None where infinite; ``share_infinite`` of them
    had no active child missing at the primary visit. ``missing_share``: the active arm's mean missing share.
    """
    failed = est.failed | ~np.isfinite(adj.weight)
    rates = [rate(still_significant(est, adj, d, alpha=alpha, sides=sides), failed) for d in deltas]
    points = tipping_point(est, adj, alpha=alpha, sides=sides)
    tipped = points[~failed & ~np.isnan(points)]
    quantiles = {k: (float(np.quantile(tipped, q, method="inverted_cdf")) if tipped.size else math.nan)
                 for k, q in QUANTILES.items()}
    out = {"deltas": list(deltas), "power": [r["rate"] for r in rates], "mcse": [r["mcse"] for r in rates],
           "ci_low": [r["ci_low"] for r in rates], "ci_high": [r["ci_high"] for r in rates],
           "n_significant": int(tipped.size), **quantiles,
           "share_infinite": float(np.isinf(tipped).mean()) if tipped.size else math.nan,
           "missing_share": float(np.mean(adj.missing[~failed])) if (~failed).any() else math.nan,
           "n_failed": int(failed.sum())}
    return out, points


__all__ = ["ANALYSES", "DeltaAdjustment", "delta_adjusted", "still_significant", "summary", "tipping_point"]
