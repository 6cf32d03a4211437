"""Group-sequential monitoring of the primary analysis on the trial calendar.

At each interim look the primary analysis is run on the data seen by the look's date (visits made by then);
the trial stops for efficacy when its one-sided z (from the analysis's one-sided p-value) reaches the efficacy
bound, or for futility when it falls below the futility bound; otherwise it goes on to the final analysis of
all the data. Bounds come from Lan-DeMets alpha spending (:mod:`cbcp_sim.scenario.boundaries`) at each look's *actual*
information fraction (children with a primary outcome at the look over those at the end, rounded to
:data:`FRACTION_STEP` so that the bounds of a chunk are computed once per distinct schedule). A two-sided design
spends ``alpha / 2`` on the efficacy side (benefit) only.

Futility bounds are ``sequential.futility`` as given or, with ``sequential.beta_spending``, solved once from beta
spending at the *planned* fractions ``(interims, 1)`` (:func:`cbcp_sim.scenario.spec.planned_boundaries`, rpact's
``getDesignGroupSequential`` with those ``informationRates``): beta spending defines the bounds at the drift at which
the planned design has power ``1 - beta``, a planning quantity; re-solving them at each trial's fractions would make
that drift (and the bounds) depend on the trial. Either way the z bounds are applied at the actual looks as given
bounds are, binding ones entering the efficacy bounds re-solved at the actual fractions.

Look dates: with ``timing = "information"`` an interim falls on the date of the ``ceil(t m)``-th primary visit
seen, ``m`` being the children with a primary outcome at the end; with ``"calendar"`` on the given month, a look
on or after the final analysis (the last primary visit) being skipped, as is one with no primary outcome yet.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtri

from cbcp_sim.analysis.inference import Estimates, infer
from cbcp_sim.analysis.metrics import rate
from cbcp_sim.scenario import Scenario, Sequential
from cbcp_sim.scenario.boundaries import boundaries
from cbcp_sim.scenario.spec import planned_boundaries
from cbcp_sim.vocabulary import DAYS_PER_MONTH

#: Information fractions are rounded to this step before the bounds are computed.
FRACTION_STEP = 1e-3
#: A look adding less information than this (beyond rounding, above boundaries.MIN_INFO_GAP) is skipped.
MIN_GAP = 1.5 * FRACTION_STEP


@dataclass(frozen=True)
class Monitoring:
    """Per trial ``(R,)`` of one pass (with or without the cell effect); looks ``K`` = interims + final."""

    reject: np.ndarray    #: bool, efficacy bound crossed at some look
    futile: np.ndarray    #: bool, stopped at a futility bound
    look: np.ndarray      #: index of the look at which the trial stopped (K - 1: it ran to the end)
    dates: np.ndarray     #: (R, K) look dates, months since the first site opened (NaN: skipped)
    fraction: np.ndarray  #: (R, K) information fraction at each look (NaN: skipped)
    children: np.ndarray  #: children randomised by the stopping date
    outcomes: np.ndarray  #: children with a primary outcome in the stopping look's analysis (its information)
    months: np.ndarray    #: months from the first site opening to the lock of the stopping look's data
    failed: np.ndarray    #: bool, ran to the final look and its analysis failed (no decision)
    estimate: np.ndarray | None = None  #: (R, K) the primary analysis's estimate at each look (NaN: skipped)
    se: np.ndarray | None = None        #: (R, K) its standard error


def look_dates(q: Sequential, primary_dates: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """``(R, K)`` dates of the interims and the final look from each child's primary-visit date and whether it
    is seen ``(R, N)``; NaN for a skipped look."""
    dates = np.where(seen, primary_dates, np.inf)
    ordered = np.sort(dates, axis=1)
    m = seen.sum(axis=1)
    final = np.where(m > 0, ordered[np.arange(len(m)), np.maximum(m - 1, 0)], np.nan)
    if q.timing == "information":
        rank = np.ceil(np.outer(m, q.interims) - 1e-9).astype(int) - 1
        interims = np.take_along_axis(ordered, np.clip(rank, 0, None), axis=1)
        interims = np.where(rank >= 0, interims, np.nan)
    else:
        interims = np.broadcast_to(np.asarray(q.interims, dtype=float), (len(m), len(q.interims))).copy()
    interims[~(interims < final[:, None])] = np.nan
    return np.concatenate([interims, final[:, None]], axis=1)


def fractions(dates: np.ndarray, primary_dates: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """``(R, K)`` information fraction at each look: primary outcomes seen by its date over all seen; interims
    adding less than :data:`MIN_GAP` to the look before (none seen yet, say) or leaving less than it to the final
    look are skipped (NaN)."""
    dates = np.where(np.isnan(dates), -np.inf, dates)
    counts = (seen[:, None, :] & (primary_dates[:, None, :] <= dates[..., None])).sum(axis=2).astype(float)
    total = seen.sum(axis=1, keepdims=True)
    t = np.round(counts / np.maximum(total, 1) / FRACTION_STEP) * FRACTION_STEP
    before = np.maximum.accumulate(np.concatenate([np.zeros((len(t), 1)), t[:, :-1]], axis=1), axis=1)
    t[:, :-1][(t[:, :-1] < before[:, :-1] + MIN_GAP) | (t[:, :-1] > 1.0 - MIN_GAP)] = np.nan
    t[:, -1] = 1.0
    return t


@functools.lru_cache(maxsize=4096)
def _bounds(info: tuple[float, ...], alpha: float, spending: str, futility: tuple[float, ...],
            binding: bool, parameter: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Efficacy and futility bounds at ``info``. Non-binding futility bounds do not enter the efficacy bounds and
    are applied as given (a trial at or above both stops for efficacy); binding ones do, unless at these actual
    fractions they reach the efficacy bounds, when that trial's efficacy bounds are the non-binding ones."""
    if not binding:
        b = boundaries(info, alpha=alpha, spending=spending, spending_parameter=parameter)
        return b.critical_z, np.asarray([*futility, -np.inf]) if futility else b.futility_z
    b = boundaries(info, alpha=alpha, spending=spending, futility=futility, binding=True, strict=False,
                   spending_parameter=parameter)
    if b is None:  # at this trial's fractions the binding bounds reach the efficacy bounds
        b = boundaries(info, alpha=alpha, spending=spending, spending_parameter=parameter)
        return b.critical_z, np.asarray([*futility, -np.inf])
    return b.critical_z, b.futility_z


def futility_bounds(s: Scenario) -> tuple[float, ...]:
    """Futility bounds (z) of the interims: ``sequential.futility``, or from beta spending at the planned fractions;
    empty: none."""
    q = s.sequential
    if q.beta_spending == "none":
        return q.futility
    return _beta_futility(q, s.design.alpha / s.design.sides)


@functools.lru_cache(maxsize=64)
def _beta_futility(q: Sequential, alpha: float) -> tuple[float, ...]:
    return tuple(float(z) for z in planned_boundaries(q, alpha).futility_z[:-1])


def bounds(s: Scenario, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Efficacy and futility bounds ``(R, K)`` (z scale) at the information fractions ``t`` (NaN: skipped look,
    whose bounds are +inf and -inf)."""
    q = s.sequential
    alpha = s.design.alpha / s.design.sides
    given = futility_bounds(s)
    futility = np.asarray(given)
    eff = np.full(t.shape, np.inf)
    fut = np.full(t.shape, -np.inf)
    schedules, which = np.unique(np.where(np.isnan(t), -1.0, t), axis=0, return_inverse=True)
    for i, row in enumerate(schedules):
        keep = row >= 0.0
        f = tuple(float(x) for x in futility[keep[:-1]]) if given else ()
        c, g = _bounds(tuple(float(x) for x in row[keep]), alpha, q.spending, f, q.binding, q.spending_parameter)
        same = which.ravel() == i
        eff[np.ix_(same, keep)] = c
        fut[np.ix_(same, keep)] = g
    return eff, fut


def monitor(s: Scenario, randomised: np.ndarray, visit_dates: np.ndarray, observed: np.ndarray, primary: int,
            final: Estimates, analyse: Callable[[np.ndarray], Estimates]) -> Monitoring:
    """Run the looks of one pass.

    ``randomised`` ``(R, N)`` and ``visit_dates`` ``(R, N, V)`` are calendar dates, ``observed`` the visits seen
    in the end, ``final`` the primary analysis of all of them and ``analyse(seen)`` the primary analysis of the
    visits ``seen`` ``(R, N, V)``. A trial's duration runs to the lock of the data of the look at which it stops
    (its date plus ``operations.lock_days``).
    """
    q = s.sequential
    alpha = s.design.alpha / s.design.sides
    dates = look_dates(q, visit_dates[..., primary], observed[..., primary])
    t = fractions(dates, visit_dates[..., primary], observed[..., primary])
    dates = np.where(np.isnan(t), np.nan, dates)
    eff, fut = bounds(s, t)
    n_reps, k = t.shape
    z, estimate, se = np.full((n_reps, k), np.nan), np.full((n_reps, k), np.nan), np.full((n_reps, k), np.nan)
    for j in range(k - 1):
        due = ~np.isnan(dates[:, j])
        if due.any():
            cut = np.where(due, dates[:, j], -np.inf)[:, None, None]
            interim = analyse(observed & (visit_dates <= cut))
            z[:, j] = _z(interim, alpha)
            estimate[:, j], se[:, j] = np.where(due, interim.estimate, np.nan), np.where(due, interim.se, np.nan)
    z[:, -1] = _z(final, alpha)
    estimate[:, -1], se[:, -1] = final.estimate, final.se
    stopped = np.zeros(n_reps, dtype=bool)
    reject, futile = np.zeros(n_reps, dtype=bool), np.zeros(n_reps, dtype=bool)
    look = np.full(n_reps, k - 1)
    for j in range(k):
        win = ~stopped & (z[:, j] >= eff[:, j])
        lose = ~stopped & ~win & (z[:, j] < fut[:, j]) if j < k - 1 else np.zeros(n_reps, dtype=bool)
        reject |= win
        futile |= lose
        look[win | lose] = j
        stopped |= win | lose
    at = dates[np.arange(n_reps), look]
    children = (randomised <= np.where(look < k - 1, at, np.inf)[:, None]).sum(axis=1)
    outcomes = (observed[..., primary] & (visit_dates[..., primary] <= at[:, None])).sum(axis=1)
    months = at + s.operations.lock_days / DAYS_PER_MONTH
    failed = (look == k - 1) & np.isnan(z[:, -1])
    return Monitoring(reject=reject, futile=futile, look=look, dates=dates, fraction=t, children=children,
                      outcomes=outcomes, months=months, failed=failed, estimate=estimate, se=se)


def _z(est: Estimates, alpha: float) -> np.ndarray:
    """One-sided z (benefit) from the analysis's one-sided p-value; NaN (no decision) where it failed."""
    p = infer(est, alpha=alpha, sides=1).p
    return -ndtri(p)


def sequential_summary(s: Scenario, alt: Monitoring, null: Monitoring) -> dict[str, Any]:
    """Operating characteristics of the group-sequential design: power and type I error (rejection at any
    look, among trials with a decision) with MCSE, the trials whose final analysis failed and the power over all
    trials (a failed final analysis counted as not significant), the probability of
    stopping for efficacy and for futility at each look, the expected number of children randomised by the
    stopping date (``expected_children``), the expected number of children whose primary outcome the stopping
    look analyses (``expected_information_n``: rpact's expectedNumberOfSubjects, information-based, see
    :func:`cbcp_sim.scenario.boundaries.expected_information`) and the expected duration (months, to the lock of
    the stopping look's data), with and without the cell effect; and the mean date and information fraction of
    each look; with beta spending also its settings and the futility bounds it gives (``futility_z``, one per
    interim)."""
    q = s.sequential
    out: dict[str, Any] = {"looks": alt.dates.shape[1], "timing": s.sequential.timing,
                           "spending": s.sequential.spending, "spending_parameter": s.sequential.spending_parameter,
                           "interims": list(s.sequential.interims),
                           "alpha": s.design.alpha / s.design.sides}
    if q.beta_spending != "none":
        out.update(beta_spending=q.beta_spending, beta_spending_parameter=q.beta_spending_parameter, beta=q.beta,
                   futility_z=list(futility_bounds(s)))
    for prefix, m in (("", alt), ("null_", null)):
        k = m.dates.shape[1]
        stops = np.arange(k)[:, None] == m.look
        out[f"{prefix}stop_efficacy"] = (stops & m.reject).mean(axis=1).tolist()
        out[f"{prefix}stop_futility"] = (stops & m.futile).mean(axis=1).tolist()
        out[f"{prefix}expected_children"] = float(m.children.mean())
        out[f"{prefix}expected_information_n"] = float(m.outcomes.mean())
        out[f"{prefix}expected_months"] = float(m.months.mean())
    power, type1 = rate(alt.reject, alt.failed), rate(null.reject, null.failed)
    out.update(power=power["rate"], mcse=power["mcse"], type1_error=type1["rate"], type1_mcse=type1["mcse"],
               n_failed=int(alt.failed.sum()), n_failed_null=int(null.failed.sum()),
               power_all_trials=float(alt.reject[~alt.failed].sum() / alt.failed.size))
    held = ~np.isnan(alt.dates)
    count = held.sum(axis=0)
    for key, values in (("look_months", alt.dates), ("look_fraction", alt.fraction)):
        total = np.where(held, values, 0.0).sum(axis=0)
        out[key] = [float(x / n) if n else math.nan for x, n in zip(total, count, strict=True)]
    out["look_held"] = held.mean(axis=0).tolist()
    return out

