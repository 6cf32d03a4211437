"""The normal model's parallel-arm trials as each arm's mean and sum of squares, when the analyses read nothing else.

When a scenario of the normal model has parallel arms, every analysis a two-sample t-test (pooled or Welch:
:data:`cbcp_sim.vocabulary.MOMENT_ANALYSES`), dropout none or MCAR, and no calendar, interim look, covariate, dose
analysis or borrowed control arm, each child's analysed value ``y`` (change from baseline, or the primary-visit
score) is normal with its arm's mean and SD, independent between children and of dropout, and the tests read only
each arm's count, mean and within-arm sum of squares over the children seen at the primary visit (so does the
one-way analysis of Dunnett's many-to-one test, and every adjustment for multiplicity). Those are drawn
directly: the count seen ``Binomial(n, q)`` (``q`` the chance of staying to the primary visit), the mean
``N(mu, sd_y^2 / m)`` and the sum of squares ``sd_y^2 chi^2(m - 1)`` of the ``m`` seen, independent of each other
[Cochran 1934]: two or three draws per arm and trial instead of two or three per child, with the same distribution
of every estimate, SE and p-value. rpact's ``getSimulationMeans`` likewise draws its test statistics from their
distribution rather than from simulated patients [rpact n.d.].

:func:`children` rebuilds children consistent with those sums, so that ``cbcp-sim trials`` writes trials whose
t-tests give the run's estimates: the children seen are a uniform choice of ``m`` of the arm's; given their mean
and sum of squares, their centred values are a uniform direction on the sphere of deviations; a child lost has
the model's value, unseen; and each baseline is normal given the child's ``y`` (the regression of the bivariate
normal model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from cbcp_sim.models import dropout
from cbcp_sim.models.layout import arm_sizes, arm_slices
from cbcp_sim.models.streams import Streams
from cbcp_sim.scenario import Scenario
from cbcp_sim.vocabulary import MOMENT_ANALYSES


@dataclass(frozen=True)
class ArmSummaries:
    """Per replicate ``(R, k)``: each arm's children seen at the primary visit ``n`` (of ``sizes`` randomised),
    their mean (NaN for none) and within-arm sum of squares of the analysed value without cells; ``gain``
    ``(k,)`` is what cells add to each arm's mean."""

    sizes: tuple[int, ...]
    n: np.ndarray
    mean: np.ndarray
    ss: np.ndarray
    gain: np.ndarray


def summarised(s: Scenario) -> bool:
    """Whether a run of ``s`` draws :class:`ArmSummaries` rather than children (see the module's docstring)."""
    a, d = s.analysis, s.design
    return (s.outcome.model == "normal" and d.kind == "parallel"
            and set(s.analyses) <= set(MOMENT_ANALYSES)
            and (s.dropout.fraction == 0.0 or s.dropout.mechanism == "mcar")
            and not s.operations.enabled and not s.sequential.interims and not a.covariates
            and not a.dose_strata and not a.dose_slope and not a.dose_slope_strata and not a.dose_response_models
            and not a.tipping_deltas and (s.bayes is None or not s.bayes.borrows))


def _score_sds(s: Scenario) -> np.ndarray:
    """``(k,)`` each arm's SD of the scores at baseline and at the primary visit (``outcome.sd``)."""
    return np.broadcast_to(np.asarray(s.outcome.sd, dtype=float), (len(s.design.arms),))


def _change_sds(s: Scenario) -> np.ndarray:
    """``(k,)`` each arm's SD of the change from baseline, ``sd sqrt(2 (1 - correlation))``."""
    return _score_sds(s) * math.sqrt(2.0 * (1.0 - s.outcome.correlation))


def _sds(s: Scenario) -> np.ndarray:
    """``(k,)`` each arm's SD of the analysed value: the change's or the primary-visit score's."""
    return _change_sds(s) if s.analysis.endpoint == "change" else _score_sds(s)


def staying(s: Scenario) -> float:
    """The chance that a child is still in the trial at the primary visit (MCAR dropout)."""
    return math.exp(-dropout.hazard(s.dropout) * s.design.primary_visit)


def draw(s: Scenario, n_reps: int, streams: Streams) -> ArmSummaries:
    """Over ``n_reps`` trials, each arm's children seen (stream ``arm_dropout``; all of them without dropout), their
    mean (``arm_mean``) and sum of squares (``arm_spread``); the mean without cells is ``outcome.expected_change``
    for either endpoint (the baseline's mean is 0)."""
    sizes = arm_sizes(s.design)
    sd, q = _sds(s), staying(s)
    n = np.empty((n_reps, len(sizes)), dtype=np.int64)
    mean = np.empty((n_reps, len(sizes)))
    ss = np.empty((n_reps, len(sizes)))
    for g, (size, sd_g) in enumerate(zip(sizes, sd, strict=True)):
        n[:, g] = size if q == 1.0 else streams.rng("arm_dropout", g).binomial(size, q, n_reps)
        z = streams.rng("arm_mean", g).standard_normal(n_reps)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean[:, g] = s.outcome.expected_change + sd_g / np.sqrt(n[:, g]) * z
        spread = streams.rng("arm_spread", g).chisquare(np.maximum(n[:, g] - 1, 1), n_reps)
        ss[:, g] = sd_g**2 * np.where(n[:, g] > 1, spread, 0.0)
    mean[n == 0] = np.nan
    gain = np.where(np.arange(len(sizes)) >= 1, s.outcome.effect, 0.0)  # every arm but the control
    return ArmSummaries(sizes=sizes, n=n, mean=mean, ss=ss, gain=gain)


def truth(s: Scenario, arms: ArmSummaries) -> np.ndarray:
    """The engine's true-effect sums (points, responders, children) of ``R`` such trials: every child gains
    ``effect`` points under the active arm's cells; the responder difference is its expectation,
    ``P(change + effect >= mcid) - P(change >= mcid)`` for each child's arm."""
    n_reps = arms.mean.shape[0]
    children = sum(arms.sizes) * n_reps
    o = s.outcome
    sd = _change_sds(s)
    above = (o.expected_change - s.analysis.mcid) / sd
    responders = float(np.dot(arms.sizes, ndtr(above + o.effect / sd) - ndtr(above))) * n_reps
    return np.array([o.effect * children, responders, float(children)])


def children(s: Scenario, arms: ArmSummaries, streams: Streams) -> tuple[np.ndarray, np.ndarray]:
    """``(R, N, 2)`` baseline and primary-visit scores without cells of children whose analysed values seen have
    exactly ``arms``' counts, means and sums of squares, and the mask of those seen (children stored by arm).

    Streams: ``child_dropout`` (which children stay: those of the ``m`` smallest uniforms), ``child_spread`` (the
    direction of the seen children's deviations; a lost child's value, ``mu + sd_y z``) and ``child_baseline``.
    Each baseline given the child's value ``y``: for the change, mean ``-(y - mu) / 2`` and SD
    ``sd sqrt((1 + correlation) / 2)``; for the score, mean ``correlation (y - mu)`` and SD
    ``sd sqrt(1 - correlation^2)``."""
    o = s.outcome
    n_reps = arms.mean.shape[0]
    sd, sd_y = _score_sds(s), _sds(s)
    values = np.empty((n_reps, sum(arms.sizes), 2))
    seen = np.ones(values.shape, dtype=bool)
    for g, where in enumerate(arm_slices(arms.sizes)):
        size, m = arms.sizes[g], arms.n[:, g, None]
        stays = np.ones((n_reps, size), dtype=bool)
        if (m < size).any():
            u = streams.rng("child_dropout", g).random((size, n_reps)).T
            stays = u.argsort(axis=1).argsort(axis=1) < m
        z = streams.rng("child_spread", g).standard_normal((size, n_reps)).T
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.where(stays, z - np.where(stays, z, 0.0).sum(axis=1, keepdims=True) / m, 0.0)
            scale = np.nan_to_num(np.sqrt(arms.ss[:, g, None] / np.square(c).sum(axis=1, keepdims=True)))
        y = np.where(stays, arms.mean[:, g, None] + scale * c, o.expected_change + sd_y[g] * z)
        w = streams.rng("child_baseline", g).standard_normal((size, n_reps)).T
        deviation = y - o.expected_change
        if s.analysis.endpoint == "change":
            baseline = -0.5 * deviation + sd[g] * math.sqrt((1.0 + o.correlation) / 2.0) * w
            values[:, where, 1] = baseline + y
        else:
            baseline = o.correlation * deviation + sd[g] * math.sqrt(1.0 - o.correlation**2) * w
            values[:, where, 1] = y
        values[:, where, 0] = baseline
        seen[:, where, 1] = stays
    return values, seen
