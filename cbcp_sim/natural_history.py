"""Natural GMFM-66 motor development of children with CP, by GMFCS level.

Stable-limit growth curves (Rosenbaum et al. 2002, JAMA 288:1357): the mean score at age ``a``
is ``limit * (1 - exp(-a / tau))`` with ``tau = age90 / ln 10``, minus a linear decline after the
peak age for levels III-V (Hanna et al. 2009, DMCN). Each child has a random limit (normal,
clipped to 0-100) and a random time constant (log-normal); each visit adds occasion-to-occasion
fluctuation and measurement error (independent normal). Observed scores are kept on 0-100.
Parameters and sources: :class:`cbcp_sim.scenario.NaturalHistory`, ref §1, §2, §7.1.
First cut: issue 3 calibrates the random effects and boundary behaviour against published centiles.
"""

from __future__ import annotations

import math

import numpy as np

from cbcp_sim.scenario import NaturalHistory
from cbcp_sim.streams import Streams

#: Age (years) to which the Hanna et al. 2009 decline is measured.
DECLINE_END_AGE = 21.0


def mean_curve(nh: NaturalHistory, gmfcs: np.ndarray, age: np.ndarray) -> np.ndarray:
    """Population-mean GMFM-66 at ``age`` (years) for GMFCS level ``gmfcs`` (1-5)."""
    g = np.asarray(gmfcs) - 1
    return _curve(np.asarray(nh.limit)[g], np.asarray(nh.age90)[g] / math.log(10),
                  np.asarray(nh.peak_age)[g], np.asarray(nh.decline)[g], age)


def _curve(limit: np.ndarray, tau: np.ndarray, peak_age: np.ndarray, decline: np.ndarray,
           age: np.ndarray) -> np.ndarray:
    rise = limit * -np.expm1(-age / tau)
    span = np.maximum(DECLINE_END_AGE - peak_age, 1e-9)
    return rise - decline * np.maximum(age - peak_age, 0.0) / span


def latent_scores(nh: NaturalHistory, gmfcs: np.ndarray, age: np.ndarray, months: np.ndarray,
                  sizes: tuple[int, ...], streams: Streams) -> np.ndarray:
    """Each child's GMFM-66 at each visit before measurement, ``(R, N, V)``; not yet clipped.

    ``gmfcs`` and ``age`` (years at baseline) are ``(R, N)``; ``months`` are visit times ``(V,)``.
    Includes child-level random limit and rate, the trial effect term, occasion noise and
    measurement error. The caller adds any treatment effect and clips to 0-100.
    """
    n_reps = gmfcs.shape[0]
    g = gmfcs - 1
    limit = np.clip(np.asarray(nh.limit)[g] + np.asarray(nh.limit_sd)[g]
                    * streams.per_child("limit", sizes, n_reps), 0.0, 100.0)
    tau = (np.asarray(nh.age90)[g] / math.log(10)) * np.exp(nh.rate_sd_log * streams.per_child("rate", sizes, n_reps))
    years = months / 12.0
    visit_age = age[..., None] + years
    scores = _curve(limit[..., None], tau[..., None], np.asarray(nh.peak_age)[g][..., None],
                    np.asarray(nh.decline)[g][..., None], visit_age)
    if nh.trial_effect_per_year:
        scores += nh.trial_effect_per_year * years
    noise_sd = math.hypot(nh.sem, nh.occasion_sd)
    if noise_sd:
        scores += noise_sd * streams.per_child("visit_noise", sizes, n_reps, extra=(len(months),))
    return scores


def observe(latent: np.ndarray) -> np.ndarray:
    """Observed GMFM-66: the 0-100 interval scale."""
    return np.clip(latent, 0.0, 100.0)
