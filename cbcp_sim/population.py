"""Children enrolled in a trial: age, GMFCS level, body weight and dose of cells per kg.

For autologous designs the dose per kg follows from the child's banked unit and weight
(dose = unit TNC x post-thaw recovery / weight), so dose varies between children and falls
with age: older, heavier children are more often below the minimum dose and screened out.
Screening is sequential per arm: candidates are drawn in order and the first ``n`` eligible are
enrolled, so the screen-failure fraction is reported and children keep their identity across
trial sizes (see :mod:`cbcp_sim.streams`). First cut: issue 3 adds sex, topography and age
distributions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cbcp_sim.errors import ScenarioError
from cbcp_sim.scenario import Population
from cbcp_sim.streams import Streams

#: General-population median body weight (kg) by age (years), boys and girls averaged. RECALLED:
#: WHO 2006 standards (0-5 y), WHO 2007 reference (5-10 y), CDC 2000 charts (10-21 y); 2-6 y as in ref §4.
WEIGHT_AGES = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0,
                        11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 21.0])
WEIGHT_MEDIAN_KG = np.array([3.3, 9.3, 12.2, 14.3, 16.3, 18.3, 20.5, 22.9, 25.4, 28.1, 31.4,
                             35.3, 40.0, 45.0, 50.0, 54.0, 57.5, 60.0, 62.0, 64.0])

#: Screening stops with an error when fewer than one candidate in this many is eligible.
MAX_SCREENED_PER_CHILD = 1000
#: Streams read while screening a candidate, one generator each per arm.
SCREENING_STREAMS = ("age", "gmfcs", "weight", "unit_tnc", "recovery")


@dataclass(frozen=True)
class Children:
    """Enrolled children of a chunk; arrays are ``(R, N)``, children ordered by arm."""

    age: np.ndarray      #: years at enrolment
    gmfcs: np.ndarray    #: GMFCS level 1-5 (int)
    weight: np.ndarray   #: kg
    dose: np.ndarray     #: 10^7 TNC/kg the child would receive
    screened: np.ndarray  #: (R,) candidates screened to enrol the N children


def median_weight(age: np.ndarray) -> np.ndarray:
    """General-population median weight (kg) at ``age`` (years), linearly interpolated."""
    return np.interp(age, WEIGHT_AGES, WEIGHT_MEDIAN_KG)


def _candidates(p: Population, m: int, n_reps: int, rngs: dict[str, np.random.Generator]) -> dict[str, np.ndarray]:
    """The next ``m`` candidates of an arm's screening sequence, arrays ``(m, R)``."""
    shape = (m, n_reps)
    lo, hi = p.ages
    age = rngs["age"].uniform(lo, hi, shape)
    cumulative = np.cumsum(p.gmfcs_mix)
    cumulative /= cumulative[-1]  # exactly 1 at the end, so levels with no share are never drawn
    gmfcs = np.minimum(np.searchsorted(cumulative, rngs["gmfcs"].random(shape), side="right"), 4) + 1
    factor = np.asarray(p.weight_factor)[gmfcs - 1]
    weight = median_weight(age) * factor * np.exp(p.weight_sd_log * rngs["weight"].standard_normal(shape))
    if p.source == "allogeneic":
        dose = np.full(shape, p.allogeneic_dose)
    else:
        tnc = np.exp(np.log(p.unit_tnc_median) + np.log(p.unit_tnc_gsd) * rngs["unit_tnc"].standard_normal(shape))
        dose = 10.0 * tnc * _recovery(p, rngs["recovery"], shape) / weight  # 10^8 TNC/kg -> 10^7 TNC/kg
    return {"age": age, "gmfcs": gmfcs, "weight": weight, "dose": dose}


def _recovery(p: Population, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Post-thaw TNC recovery, Beta with the scenario's mean and SD."""
    m, s = p.recovery_mean, p.recovery_sd
    if s == 0.0:
        return np.full(shape, m)
    k = m * (1.0 - m) / s**2 - 1.0
    return rng.beta(m * k, (1.0 - m) * k, shape)


def _enrol_arm(p: Population, n: int, n_reps: int, streams: Streams, arm: int) -> dict[str, np.ndarray]:
    """Screen candidates of one arm in order until ``n`` are eligible in every replicate.

    Candidates are read from the arm's streams in blocks; a block continues the same sequence,
    so candidate k is the same child however many blocks were needed.
    """
    rngs = {name: streams.rng(name, arm) for name in SCREENING_STREAMS}
    blocks: list[dict[str, np.ndarray]] = []
    size = n + n // 4 + 8
    while True:
        blocks.append(_candidates(p, size, n_reps, rngs))
        dose = np.concatenate([b["dose"] for b in blocks])
        eligible = dose >= p.min_dose if p.source == "autologous" else np.ones(dose.shape, bool)
        if (eligible.sum(axis=0) >= n).all():
            break
        if dose.shape[0] >= MAX_SCREENED_PER_CHILD * n:
            raise ScenarioError("population.min_dose",
                                f"fewer than 1 in {MAX_SCREENED_PER_CHILD} screened children reach the minimum "
                                f"dose {p.min_dose:g} x 10^7 TNC/kg; lower it or change ages/unit size")
        size = max(n // 2, 8)
    rows = np.argsort(~eligible, axis=0, kind="stable")[:n]  # first n eligible, in screening order
    out = {k: np.take_along_axis(np.concatenate([b[k] for b in blocks]), rows, axis=0).T for k in blocks[0]}
    if p.source == "autologous":
        out["dose"] = np.minimum(out["dose"], p.max_dose)
    out["screened"] = rows[-1] + 1
    return out


def enrol(p: Population, sizes: tuple[int, ...], n_reps: int, streams: Streams) -> Children:
    """Draw the enrolled children of every arm for ``n_reps`` replicates."""
    arms = [_enrol_arm(p, n, n_reps, streams, arm) for arm, n in enumerate(sizes)]
    joined = {k: np.concatenate([a[k] for a in arms], axis=1) for k in ("age", "gmfcs", "weight", "dose")}
    return Children(**joined, screened=np.sum([a["screened"] for a in arms], axis=0))
