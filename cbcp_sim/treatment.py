"""The cell effect on GMFM-66: dose-response, onset and waning (one infusion at month 0).

Effect of a dose ``d`` (10^7 TNC/kg) ``s`` months after it (design §Models, ref §7.2-7.3)::

    response_i * Emax(d) * onset(s) * (p + (1 - p) * waning(s))
    Emax(d)   = emax * d^h / (ed50^h + d^h) = emax / (1 + (ed50 / d)^h)
    onset(s)  = 1 - exp(-s / onset_months)
    waning(s) = 1 for s <= waning_start, else 0.5 ** ((s - waning_start) / half_life)

``p`` is the persistent fraction; ``response_i`` is a child's gamma-distributed multiplier with
mean 1. First cut: issue 4 adds threshold forms, repeat doses, modifiers and sham response.
"""

from __future__ import annotations

import numpy as np

from cbcp_sim.scenario import DoseResponse, Treatment
from cbcp_sim.streams import Streams


def dose_response(dr: DoseResponse, dose: np.ndarray) -> np.ndarray:
    """Peak effect (GMFM-66 points) of one dose of ``dose`` x 10^7 TNC/kg; zero at zero dose."""
    with np.errstate(divide="ignore", over="ignore"):
        ratio = np.power(dr.ed50 / np.maximum(dose, 0.0), dr.hill)  # inf at zero dose -> effect 0
    return dr.emax / (1.0 + ratio)


def time_course(t: Treatment, months: np.ndarray) -> np.ndarray:
    """Share of the peak effect present ``months`` after the dose (0 before and at the dose)."""
    s = np.maximum(np.asarray(months, dtype=float), 0.0)
    onset = -np.expm1(-s / t.onset_months)
    since = np.maximum(s - t.waning_start_months, 0.0)
    waning = np.exp2(-since / t.waning_half_life_months)
    return onset * (t.persistent_fraction + (1.0 - t.persistent_fraction) * waning)


def response(t: Treatment, sizes: tuple[int, ...], n_reps: int, streams: Streams) -> np.ndarray:
    """Each child's multiplicative response ``(R, N)``: gamma with mean 1 and CV ``response_cv``."""
    if t.response_cv**2 == 0.0:  # also a CV so small that its square underflows
        return np.ones((n_reps, sum(sizes)))
    shape = 1.0 / t.response_cv**2
    return streams.per_child("response", sizes, n_reps,
                             draw=lambda rng, sh: rng.gamma(shape, 1.0 / shape, sh))


def effect_size(t: Treatment, dose: np.ndarray, child_response: np.ndarray) -> np.ndarray:
    """Each child's peak effect ``(R, N)`` if treated: response x Emax(dose)."""
    return child_response * dose_response(t.dose_response, dose)
