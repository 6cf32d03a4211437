"""The cell effect on GMFM-66: dose-response, rise, peak and waning, repeat doses, modifiers, control responses.

One dose k of product c at month t_k with dose d_k gives child i, ``s = t - t_k`` months later (docs/treatment.md)::

    E_ik(t)   = r_k * response_i * modifier_ik * Emax_c(d_k) * course_c(s)
    Emax(d)   = emax * d^h / (ed50^h + d^h)          (emax form)   or   emax * [d >= threshold]   (threshold)
    course(s) = (1 - exp(-s / onset)) / (1 - exp(-peak / onset))                          0 <= s <= peak
              = p + (1 - p) * 0.5 ** ((s - peak) / half_life)                             s > peak

so the effect peaks exactly at ``peak`` months and keeps ``p`` (the persistent fraction) for good.
``r_k`` is 1 for the first dose and ``relative_efficacy`` for later ones; ``response_i`` is 0 for
non-responders and gamma (mean 1) for responders; ``modifier_ik`` multiplies the GMFCS, topography,
age-at-dose and route factors. Doses combine under the child's ceiling ``C_i = ceiling_fraction * limit_i``
(``limit_i`` is the child's own GMFM-66 limit)::

    E_i(t) = C_i * (1 - prod_k (1 - min(E_ik(t), C_i) / C_i))

which is the dose's own effect for one dose (capped at the ceiling), grows with every further dose and
never exceeds ``C_i``. Beside the cell effect, children who get a procedure may show an expectation
response, and an unblinded assessor adds a bias to treated children's scores (:func:`nonspecific`).
"""

from __future__ import annotations

import math

import numpy as np

from cbcp_sim.models.population import Children
from cbcp_sim.models.streams import Streams
from cbcp_sim.scenario.products import Course, Modifiers, Regimen, Treatment


def dose_response(course: Course, dose: np.ndarray) -> np.ndarray:
    """Peak effect (GMFM-66 points) of one dose of ``dose`` x 10^7 cells/kg; zero at zero dose."""
    dose = np.maximum(np.asarray(dose, dtype=float), 0.0)
    if course.model == "threshold":
        return np.where((dose >= course.threshold) & (dose > 0.0), course.emax, 0.0)
    with np.errstate(divide="ignore", over="ignore"):
        ratio = np.power(course.ed50 / dose, course.hill)  # inf at zero dose -> effect 0
    return course.emax / (1.0 + ratio)


def time_course(course: Course, months: np.ndarray) -> np.ndarray:
    """Share of the peak effect present ``months`` after the dose: 0 up to the dose, 1 at the peak."""
    s = np.maximum(np.asarray(months, dtype=float), 0.0)
    peak, onset = course.peak_months, course.onset_months
    with np.errstate(invalid="ignore", divide="ignore"):  # a peak so early that the ratio underflows: a step
        rise = np.expm1(-np.minimum(s, peak) / onset) / np.expm1(-peak / onset)
    rise = np.where(s >= peak, 1.0, np.where(s > 0.0, rise, 0.0))
    since = np.maximum(s - peak, 0.0)
    waning = np.exp2(-since / course.waning_half_life_months)
    p = course.persistent_fraction
    return np.where(s <= peak, rise, p + (1.0 - p) * waning)


def response(t: Treatment, sizes: tuple[int, ...], n_reps: int, streams: Streams) -> np.ndarray:
    """Each child's multiplicative response ``(R, N)``: 0 for non-responders, else gamma with mean 1 and CV
    ``response_cv``."""
    if t.response_cv**2 == 0.0:  # also a CV so small that its square underflows
        out = np.ones((n_reps, sum(sizes)))
    else:
        shape = 1.0 / t.response_cv**2
        out = streams.per_child("response", sizes, n_reps, draw=lambda rng, sh: rng.gamma(shape, 1.0 / shape, sh))
    if t.responder_fraction < 1.0:
        out *= streams.per_child("responder", sizes, n_reps, draw=lambda rng, sh: rng.random(sh)) \
            < t.responder_fraction
    return out


def recipients(t: Treatment, enrolled: Children, limit: np.ndarray, sizes: tuple[int, ...],
               streams: Streams) -> dict[str, np.ndarray]:
    """What :func:`cell_effect` needs of each of the ``enrolled`` children ``(R, N)``: GMFCS, topography, age,
    population dose, own GMFM-66 ``limit`` (natural history) and the response from :func:`response`."""
    return {"gmfcs": enrolled.gmfcs, "topography": enrolled.topography, "age": enrolled.age,
            "dose": enrolled.dose, "limit": limit,
            "child_response": response(t, sizes, enrolled.gmfcs.shape[0], streams)}


def modifier(m: Modifiers, gmfcs: np.ndarray, topography: np.ndarray, age: np.ndarray, route: str) -> np.ndarray:
    """Effect multiplier of a dose for children of GMFCS level ``gmfcs`` (1-5), ``topography`` (index into
    TOPOGRAPHIES) and ``age`` at the dose (years), given by ``route``."""
    factor = np.asarray(m.gmfcs)[np.asarray(gmfcs) - 1] * np.asarray(m.topography)[topography]
    factor = factor * np.asarray(m.age_factors)[np.searchsorted(m.age_breaks, age, side="right")]
    return factor * (m.intrathecal if route == "intrathecal" else 1.0)


def cell_effect(t: Treatment, regimen: Regimen, months: np.ndarray, *, gmfcs: np.ndarray, topography: np.ndarray,
                age: np.ndarray, dose: np.ndarray, limit: np.ndarray, child_response: np.ndarray,
                dose_months: list[np.ndarray] | None = None) -> np.ndarray:
    """Cell effect ``(..., V)`` at visit ``months`` ((V,), or each child's (..., V)) on children ``(...)`` given
    ``regimen``.

    ``age`` is years at baseline, ``dose`` each child's dose from the population model (used by doses whose
    dose the arm does not fix), ``limit`` each child's GMFM-66 limit (for the ceiling) and ``child_response``
    from :func:`response`; ``dose_months``, one per dose, each child's actual month of that dose ``(...)``
    (default: the schedule's).
    """
    months = np.asarray(months, dtype=float)
    if not regimen.doses:
        return np.zeros(np.broadcast_shapes((*np.shape(gmfcs), 1), months.shape))
    capped = not math.isinf(t.ceiling_fraction)
    ceiling = t.ceiling_fraction * limit[..., None] if capped else None
    total = None
    for k, d in enumerate(regimen.doses):
        given = d.month if dose_months is None else dose_months[k]
        peak = dose_response(d.course, dose if d.dose is None else d.dose)
        peak = peak * modifier(t.modifiers, gmfcs, topography, age + given / 12.0, d.route) * child_response
        if k:
            peak *= t.relative_efficacy
        effect = peak[..., None] * time_course(d.course, months - np.asarray(given)[..., None])
        if len(regimen.doses) == 1:
            return np.minimum(effect, ceiling) if capped else effect
        if not capped:
            total = effect if total is None else total + effect
            continue
        remaining = 1.0 - np.minimum(effect, ceiling) / ceiling
        total = remaining if total is None else total * remaining
    return ceiling * (1.0 - total) if capped else total


def nonspecific(t: Treatment, regimen: Regimen, blinding: str, months: np.ndarray) -> np.ndarray:
    """Gain at visit ``months`` (of the same shape) not due to cells: the expectation response of children who
    get a procedure while blinded or knowing they got cells, and an unblinded assessor's bias for cell arms."""
    months = np.asarray(months, dtype=float)
    expects = regimen.procedure and (blinding == "double" or regimen.kind == "cells")
    out = np.zeros(months.shape)
    if expects and t.expectation_response:
        out += t.expectation_response * -np.expm1(-np.maximum(months, 0.0) / t.expectation_onset_months)
    if blinding == "open" and regimen.kind == "cells" and t.assessor_bias:
        out += np.where(months > 0.0, t.assessor_bias, 0.0)
    return out
