"""Natural GMFM-66 motor development of children with CP, by GMFCS level.

Model (docs/natural_history.md; parameters and sources in :class:`cbcp_sim.scenario.NaturalHistory`)::

    rise_i(a)  = L_i * (1 - exp(-a / tau_i))                          stable limit (Rosenbaum et al. 2002)
    curve_i(a) = rise_i(a) - slope_i * max(a - peak_g, 0)             decline for III-V (Hanna et al. 2009)
    slope_i    = (D_g + rise_i(21) - rise_i(peak_g)) / (21 - peak_g)  so that curve_i(21) = curve_i(peak_g) - D_g
    L_i        = 100 * expit(logit(L_g / 100) + s_g * u_i)            random limit, inside (0, 100)
    tau_i      = tau_g * exp(-sigma * (rho * u_i + sqrt(1 - rho^2) * w_i)),   tau_g = age90_g / ln 10
    T_ij       = curve_i(age_ij) + b * min(t_ij, t_b) / 12  (+ treatment effect)
    Y_ij       = h(T_ij + F_ij + sem(T_ij) * z_ij)

``u, w, z`` are standard normal; ``s_g = limit_sd_g / (100 p_g (1 - p_g))`` makes the limit's SD about
``limit_sd_g`` near its median; ``rho`` correlates the limit with the log growth rate ``1 / tau``; ``b`` is the
trial effect (points/year, accruing for ``t_b`` months). ``F`` is the child's fluctuation around the curve, a
stationary Ornstein-Uhlenbeck process in visit time (SD ``occasion_sd``, correlation ``exp(-dt / occasion_months)``):
visits a week apart share it, visits a year apart barely. ``sem(T)`` is the standard error of measurement,
larger near floor and ceiling. ``h`` keeps scores on the 0-100 scale: it is the identity on 5-95 and
approaches the bounds exponentially, so scores never leave the scale and thin out toward its ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

from cbcp_sim.models.streams import Streams
from cbcp_sim.scenario import NaturalHistory
from cbcp_sim.vocabulary import DECLINE_END_AGE

#: GMFM-66 points at each end of the scale over which :func:`to_scale` bends toward the bound.
SCALE_BEND = 5.0
#: GMFM-66 scores (points) at which the SEM changes: ``sem_extreme`` at or below the first and at or above
#: the last, ``sem`` between the middle two, linear in between. ASSUMPTION ("about 2.0 below 20 or above 85";
#: Rasch standard errors rise toward floor and ceiling, RECALLED).
SEM_KNOTS = (20.0, 30.0, 75.0, 85.0)


@dataclass(frozen=True)
class Growth:
    """Child-level random effects of the growth curve, arrays ``(R, N)``."""

    limit: np.ndarray  #: GMFM-66 limit L_i (points)
    tau: np.ndarray    #: time constant tau_i (years)


def tau(nh: NaturalHistory) -> np.ndarray:
    """Time constants of the level curves, ``age90 / ln 10`` (years), GMFCS I-V."""
    return np.asarray(nh.age90) / math.log(10)


def limit_logit_sd(nh: NaturalHistory) -> np.ndarray:
    """SD of the random limit on the logit scale, ``s_g``, so that its SD near the median is ``limit_sd``."""
    p = np.asarray(nh.limit) / 100.0
    return np.asarray(nh.limit_sd) / (100.0 * p * (1.0 - p))


def limit_moments(limit: np.ndarray, limit_sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD over children (points) of the random limit with median ``limit`` and SD near the median
    ``limit_sd`` (the logit-normal of :func:`random_effects`), by 40-node Gauss-Hermite quadrature."""
    p = np.asarray(limit, dtype=float)[..., None] / 100.0
    s = np.asarray(limit_sd, dtype=float)[..., None] / (100.0 * p * (1.0 - p))
    x, w = np.polynomial.hermite.hermgauss(40)
    values = 100.0 * expit(logit(p) + s * math.sqrt(2.0) * x)
    mean = (w * values).sum(-1) / math.sqrt(math.pi)
    return mean, np.sqrt(np.maximum((w * values**2).sum(-1) / math.sqrt(math.pi) - mean**2, 0.0))


def random_effects(nh: NaturalHistory, gmfcs: np.ndarray, u: np.ndarray, w: np.ndarray) -> Growth:
    """Limits and time constants for GMFCS levels ``gmfcs`` and standard normal deviates ``u`` (limit), ``w``."""
    g = np.asarray(gmfcs) - 1
    limit = 100.0 * expit(logit(np.asarray(nh.limit) / 100.0)[g] + limit_logit_sd(nh)[g] * u)
    log_rate = nh.rate_sd_log * (nh.limit_rate_corr * u + math.sqrt(1.0 - nh.limit_rate_corr**2) * w)
    return Growth(limit=limit, tau=tau(nh)[g] * np.exp(-log_rate))


def curve(nh: NaturalHistory, gmfcs: np.ndarray, limit: np.ndarray, tau_years: np.ndarray,
          age: np.ndarray) -> np.ndarray:
    """GMFM-66 of a child with this limit and time constant at ``age`` (years); arrays broadcast."""
    g = np.asarray(gmfcs) - 1
    peak = np.asarray(nh.peak_age)[g]
    decline = np.asarray(nh.decline)[g]

    def rise(a: np.ndarray) -> np.ndarray:
        return limit * -np.expm1(-a / tau_years)

    span = np.maximum(DECLINE_END_AGE - peak, 1e-9)
    slope = np.where(decline > 0.0, (decline + rise(DECLINE_END_AGE) - rise(peak)) / span, 0.0)
    return rise(age) - slope * np.maximum(age - peak, 0.0)


def mean_curve(nh: NaturalHistory, gmfcs: np.ndarray, age: np.ndarray) -> np.ndarray:
    """The published level curve: GMFM-66 at ``age`` (years) of a typical child of level ``gmfcs`` (1-5)."""
    g = np.asarray(gmfcs) - 1
    return curve(nh, gmfcs, np.asarray(nh.limit)[g], tau(nh)[g], np.asarray(age, dtype=float))


def trial_effect(nh: NaturalHistory, months: np.ndarray) -> np.ndarray:
    """Gain beyond the curves of an enrolled child ``months`` after baseline (points)."""
    return nh.trial_effect_per_year * np.minimum(np.maximum(months, 0.0), nh.trial_effect_months) / 12.0


def sem(nh: NaturalHistory, score: np.ndarray) -> np.ndarray:
    """Standard error of measurement of one GMFM-66 assessment at true ``score`` (points)."""
    edge, mid = nh.sem_extreme, nh.sem
    return np.interp(score, SEM_KNOTS, (edge, mid, mid, edge))


def to_scale(x: np.ndarray) -> np.ndarray:
    """``h``: a score on the real line to the GMFM-66 scale (0, 100).

    The identity on [``SCALE_BEND``, 100 - ``SCALE_BEND``]; beyond, an exponential approach to the bound
    that meets the identity with the same slope. Increasing and continuously differentiable.
    """
    return _to_scale_in_place(np.array(x, dtype=float))


def _to_scale_in_place(y: np.ndarray) -> np.ndarray:
    lo, hi = y < SCALE_BEND, y > 100.0 - SCALE_BEND
    y[lo] = SCALE_BEND * np.exp(y[lo] / SCALE_BEND - 1.0)
    y[hi] = 100.0 - SCALE_BEND * np.exp((100.0 - y[hi]) / SCALE_BEND - 1.0)
    return y


def from_scale(y: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_scale`, for scores in (0, 100)."""
    x = np.array(y, dtype=float)
    lo, hi = x < SCALE_BEND, x > 100.0 - SCALE_BEND
    x[lo] = SCALE_BEND * (1.0 + np.log(x[lo] / SCALE_BEND))
    x[hi] = 100.0 - SCALE_BEND * (1.0 + np.log((100.0 - x[hi]) / SCALE_BEND))
    return x


def occasion_correlation(nh: NaturalHistory, months_apart: np.ndarray) -> np.ndarray:
    """Correlation of a child's fluctuation at two visits ``months_apart``."""
    return np.exp(-np.abs(months_apart) / nh.occasion_months)


def fluctuation(nh: NaturalHistory, months: np.ndarray, innovations: np.ndarray) -> np.ndarray:
    """The Ornstein-Uhlenbeck fluctuation at visits ``months`` ((V,), or each child's (..., V)) from standard
    normal ``innovations`` (..., V), computed in place: ``innovations`` is overwritten and returned."""
    out = innovations
    out[..., 0] *= nh.occasion_sd
    for j in range(1, months.shape[-1]):
        r = occasion_correlation(nh, months[..., j] - months[..., j - 1])
        out[..., j] *= nh.occasion_sd * np.sqrt(1.0 - r**2)
        out[..., j] += r * out[..., j - 1]
    return out


def observe(nh: NaturalHistory, true_score: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Observed GMFM-66 for true scores (curve, fluctuation and any effect) and standard normal measurement
    ``noise`` of the same shape; always inside (0, 100)."""
    y = sem(nh, true_score)
    y *= noise
    y += true_score
    return _to_scale_in_place(y)


def true_scores(nh: NaturalHistory, gmfcs: np.ndarray, age: np.ndarray, months: np.ndarray,
                sizes: tuple[int, ...], streams: Streams) -> tuple[np.ndarray, Growth]:
    """Each child's true GMFM-66 at each visit, ``(R, N, V)``: own curve, fluctuation and trial effect; and the
    children's curve effects.

    ``gmfcs`` and ``age`` (years at baseline) are ``(R, N)``; ``months`` are visit times ``(V,)``, or each
    child's actual times ``(R, N, V)``.
    """
    n_reps = gmfcs.shape[0]
    u, w = streams.per_child("limit", sizes, n_reps), streams.per_child("rate", sizes, n_reps)
    growth = random_effects(nh, gmfcs, u, w)
    innovations = streams.per_child("occasion", sizes, n_reps, extra=(months.shape[-1],))
    return true_scores_from(nh, gmfcs, age, months, growth, innovations), growth


def true_scores_from(nh: NaturalHistory, gmfcs: np.ndarray, age: np.ndarray, months: np.ndarray, growth: Growth,
                     innovations: np.ndarray) -> np.ndarray:
    """True GMFM-66 ``(..., V)`` of children ``(...)`` with curve effects ``growth`` (:func:`random_effects`) from
    the fluctuation's standard normal ``innovations`` ``(..., V)``, which are overwritten."""
    visit_age = age[..., None] + months / 12.0
    scores = curve(nh, gmfcs[..., None], growth.limit[..., None], growth.tau[..., None], visit_age)
    scores += fluctuation(nh, months, innovations)
    scores += trial_effect(nh, months)
    return scores


def measurement_noise(sizes: tuple[int, ...], n_reps: int, n_visits: int, streams: Streams) -> np.ndarray:
    """Standard normal measurement deviates ``(R, N, V)`` for :func:`observe`."""
    return streams.per_child("measurement", sizes, n_reps, extra=(n_visits,))
