"""Children enrolled in a trial: age, sex, GMFCS level, topography, body weight and dose of cells per kg.

Referred children are drawn from the scenario's population (ages, sex, GMFCS mix, topography within level,
weight for age, sex and level); for autologous designs the dose per kg follows from the child's banked unit
and weight (dose = unit TNC x post-thaw recovery / weight), so dose varies between children and falls with
age. Eligibility (ages, GMFCS, topography, minimum dose) is checked in screening order and the first ``n``
eligible children of each arm are enrolled, so the screen-failure fraction is reported and children keep
their identity across trial sizes (see :mod:`cbcp_sim.models.streams`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from cbcp_sim.errors import ScenarioError
from cbcp_sim.models.streams import Streams
from cbcp_sim.scenario import Eligibility, Population
from cbcp_sim.vocabulary import GMFCS_LEVELS, TOPOGRAPHIES

#: General-population median body weight (kg) by age (years), girls and boys. RECALLED: [WHO 2006] standards
#: (0-5 y), [WHO 2007] reference (5-10 y), [CDC 2000] charts (10-21 y).
WEIGHT_AGES = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0,
                        11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 21.0])
WEIGHT_MEDIAN_KG = {
    "girls": np.array([3.2, 8.9, 11.5, 13.9, 16.1, 18.2, 20.2, 22.4, 25.0, 28.2, 31.9,
                       36.9, 41.5, 45.8, 49.4, 52.1, 53.5, 54.4, 56.6, 58.2]),
    "boys": np.array([3.3, 9.6, 12.2, 14.3, 16.3, 18.3, 20.5, 22.9, 25.4, 28.1, 31.2,
                      35.6, 40.0, 45.0, 50.8, 56.0, 60.8, 64.4, 66.9, 70.6]),
}

#: Screening stops with an error when fewer than one candidate in this many is eligible.
MAX_SCREENED_PER_CHILD = 1000
#: Streams read while screening a candidate, one generator each per arm.
SCREENING_STREAMS = ("age", "sex", "gmfcs", "topography", "weight", "unit_tnc", "recovery")


@dataclass(frozen=True)
class Children:
    """Enrolled children of a chunk; arrays are ``(R, N)``, children ordered by arm."""

    age: np.ndarray         #: years at enrolment
    male: np.ndarray        #: True for boys
    gmfcs: np.ndarray       #: GMFCS level 1-5 (int)
    topography: np.ndarray  #: index into :data:`cbcp_sim.scenario.schema.TOPOGRAPHIES`
    weight: np.ndarray      #: kg
    dose: np.ndarray        #: 10^7 TNC/kg the child would receive
    screened: np.ndarray    #: (R,) candidates screened to enrol the N children


#: Both tables on one axis for a single interpolation: girls' ages are shifted past the boys'.
_GIRLS_SHIFT = 100.0
_BOTH_AGES = np.concatenate([WEIGHT_AGES, WEIGHT_AGES + _GIRLS_SHIFT])
_BOTH_KG = np.concatenate([WEIGHT_MEDIAN_KG["boys"], WEIGHT_MEDIAN_KG["girls"]])


def median_weight(age: np.ndarray, male: np.ndarray) -> np.ndarray:
    """General-population median weight (kg) at ``age`` (years, 0-21) for boys (``male``) and girls."""
    return np.interp(np.clip(age, 0.0, WEIGHT_AGES[-1]) + np.where(male, 0.0, _GIRLS_SHIFT), _BOTH_AGES, _BOTH_KG)


def ages(p: Population, uniform: np.ndarray) -> np.ndarray:
    """Ages (years) from uniform deviates: uniform on the range, or truncated log-normal (inverse CDF)."""
    lo, hi = p.ages
    if p.age_distribution == "uniform":
        return lo + (hi - lo) * uniform
    mu, sigma = np.log(p.age_median), np.log(p.age_gsd)
    a, b = ndtr((np.log(lo) - mu) / sigma), ndtr((np.log(hi) - mu) / sigma)
    return np.clip(np.exp(mu + sigma * ndtri(a + (b - a) * uniform)), lo, hi)


def _categorical(cumulative: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """Category index from uniform deviates: the number of cumulative shares (last axis, ending at 1) at or
    below each deviate; ``cumulative`` broadcasts against ``uniform`` on the leading axes. A category with no
    share is never drawn."""
    index = np.zeros(uniform.shape, dtype=np.int64)
    for k in range(cumulative.shape[-1] - 1):
        index += uniform >= cumulative[..., k]
    return index


def _cumulative(shares: np.ndarray) -> np.ndarray:
    """Cumulative shares along the last axis, exactly 1 at the end."""
    cumulative = np.cumsum(shares, axis=-1)
    return cumulative / cumulative[..., -1:]


def _candidates(p: Population, m: int, n_reps: int, rngs: dict[str, np.random.Generator]) -> dict[str, np.ndarray]:
    """The next ``m`` candidates of an arm's screening sequence, arrays ``(m, R)``."""
    shape = (m, n_reps)
    age = ages(p, rngs["age"].random(shape))
    male = rngs["sex"].random(shape) < p.male_share
    gmfcs = _categorical(_cumulative(np.asarray(p.gmfcs_mix)), rngs["gmfcs"].random(shape)) + 1
    topography = _categorical(_cumulative(np.asarray(p.topography).T)[gmfcs - 1], rngs["topography"].random(shape))
    factor = np.asarray(p.weight_factor)[gmfcs - 1]
    weight = median_weight(age, male) * factor * np.exp(p.weight_sd_log * rngs["weight"].standard_normal(shape))
    if p.source == "allogeneic":
        dose = np.full(shape, p.allogeneic_dose)
    else:
        tnc = np.exp(np.log(p.unit_tnc_median) + np.log(p.unit_tnc_gsd) * rngs["unit_tnc"].standard_normal(shape))
        dose = 10.0 * tnc * _recovery(p, rngs["recovery"], shape) / weight  # 10^8 TNC/kg -> 10^7 TNC/kg
    return {"age": age, "male": male, "gmfcs": gmfcs, "topography": topography, "weight": weight, "dose": dose}


def _recovery(p: Population, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Post-thaw TNC recovery, Beta with the scenario's mean and SD (constant when the SD is negligible)."""
    m, s = p.recovery_mean, p.recovery_sd
    if s * s < 1e-12 * m * (1.0 - m):  # SD below 1e-6 of the largest possible: Beta parameters would overflow
        return np.full(shape, m)
    k = m * (1.0 - m) / s**2 - 1.0
    return rng.beta(m * k, (1.0 - m) * k, shape)


def eligible(p: Population, e: Eligibility, c: dict[str, np.ndarray]) -> np.ndarray:
    """Which candidates meet every eligibility criterion."""
    levels = np.isin(np.arange(max(GMFCS_LEVELS) + 1), e.gmfcs)  # read by level: cheaper than np.isin per child
    kinds = np.isin(np.arange(len(TOPOGRAPHIES)), [TOPOGRAPHIES.index(t) for t in e.topography])
    ok = (c["age"] >= e.ages[0]) & (c["age"] <= e.ages[1]) & levels[c["gmfcs"]]
    ok &= kinds[c["topography"]]
    if p.source == "autologous":
        ok &= c["dose"] >= e.min_dose
    return ok


def _enrol_arm(p: Population, e: Eligibility, n: int, n_reps: int, streams: Streams,
               arm: int) -> dict[str, np.ndarray]:
    """Screen candidates of one arm in order until ``n`` are eligible in every replicate.

    Candidates are read from the arm's streams in blocks; a block continues the same sequence,
    so candidate k is the same child however many blocks were needed.
    """
    rngs = {name: streams.rng(name, arm) for name in SCREENING_STREAMS}
    blocks: list[dict[str, np.ndarray]] = []
    ok_blocks: list[np.ndarray] = []
    size = n + n // 4 + 8
    while True:
        blocks.append(_candidates(p, size, n_reps, rngs))
        ok_blocks.append(eligible(p, e, blocks[-1]))
        ok = ok_blocks[0] if len(ok_blocks) == 1 else np.concatenate(ok_blocks)
        if (ok.sum(axis=0) >= n).all():
            break
        if ok.shape[0] >= MAX_SCREENED_PER_CHILD * n:
            raise ScenarioError("eligibility", f"fewer than 1 in {MAX_SCREENED_PER_CHILD} referred children is "
                                               "eligible; widen the criteria or change the population")
        size = max(n // 2, 8)
    rows = np.argsort(~ok, axis=0, kind="stable")[:n]  # first n eligible, in screening order
    joined = blocks[0] if len(blocks) == 1 else {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
    out = {k: np.take_along_axis(v, rows, axis=0).T for k, v in joined.items()}
    if p.source == "autologous":
        out["dose"] = np.minimum(out["dose"], p.max_dose)
    out["screened"] = rows[-1] + 1
    return out


#: Candidates drawn once per population to estimate its eligible share (SE at most 0.0011).
SHARE_CANDIDATES = 200_000


@functools.lru_cache(maxsize=64)
def eligible_share(p: Population, e: Eligibility, candidates: int = SHARE_CANDIDATES) -> float:
    """Share of referred children who are eligible, from ``candidates`` candidates of a fixed stream (the trial
    calendar screens each referral with this probability; a rough figure from fewer is cheaper)."""
    streams = Streams(0, 0)
    rngs = {name: streams.rng(f"eligible_share:{name}", 0) for name in SCREENING_STREAMS}
    return float(eligible(p, e, _candidates(p, candidates, 1, rngs)).mean())


def enrol(p: Population, e: Eligibility, sizes: tuple[int, ...], n_reps: int, streams: Streams) -> Children:
    """Draw the enrolled children of every arm for ``n_reps`` replicates."""
    arms = [_enrol_arm(p, e, n, n_reps, streams, arm) for arm, n in enumerate(sizes)]
    joined = {k: np.concatenate([a[k] for a in arms], axis=1)
              for k in ("age", "male", "gmfcs", "topography", "weight", "dose")}
    return Children(**joined, screened=np.sum([a["screened"] for a in arms], axis=0))
