"""The normal model's two-arm trials as each arm's mean and sum of squares, when the analyses read nothing else.

When a scenario of the normal model has two parallel arms, every analysis a two-sample t-test (pooled or Welch:
:data:`cbcp_sim.vocabulary.MOMENT_ANALYSES`), no dropout, no calendar, interim look, covariate, dose analysis or
borrowed control arm, each child's analysed value ``y`` (change from baseline, or the primary-visit score) is
normal with its arm's mean and SD, independent between children, and the tests read only each arm's mean and
within-arm sum of squares. Those are drawn directly, the mean ``N(mu, sd_y^2 / n)`` and the sum of squares
``sd_y^2 chi^2(n - 1)``, independent of each other [Cochran 1934]: two draws per arm and trial instead of two per
child, with the same distribution of every estimate, SE and p-value. rpact's ``getSimulationMeans`` likewise draws
its test statistics from their distribution rather than from simulated patients [rpact n.d.].

:func:`children` rebuilds children consistent with those sums, so that ``cbcp-sim trials`` writes trials whose
t-tests give the run's estimates: given an arm's mean and sum of squares, its children's centred values are a
uniform direction on the sphere of deviations, and each baseline is normal given the child's ``y`` (the
regression of the bivariate normal model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from cbcp_sim.models.layout import arm_sizes, arm_slices
from cbcp_sim.models.streams import Streams
from cbcp_sim.scenario import Scenario
from cbcp_sim.vocabulary import MOMENT_ANALYSES


@dataclass(frozen=True)
class ArmSummaries:
    """Per replicate ``(R, k)``: each arm's mean and within-arm sum of squares of the analysed value without
    cells, for ``n`` children per arm; ``gain`` ``(k,)`` is what cells add to each arm's mean."""

    n: tuple[int, ...]
    mean: np.ndarray
    ss: np.ndarray
    gain: np.ndarray


def summarised(s: Scenario) -> bool:
    """Whether a run of ``s`` draws :class:`ArmSummaries` rather than children (see the module's docstring)."""
    a, d = s.analysis, s.design
    return (s.outcome.model == "normal" and d.kind == "parallel" and len(d.arms) == 2
            and set(s.analyses) <= set(MOMENT_ANALYSES) and s.dropout.fraction == 0.0
            and not s.operations.enabled and not s.sequential.interims and not a.covariates
            and not a.dose_strata and not a.dose_slope and not a.dose_slope_strata and not a.dose_response_models
            and not a.tipping_deltas and (s.bayes is None or not s.bayes.borrows))


def _sds(s: Scenario) -> np.ndarray:
    """``(k,)`` each arm's SD of the analysed value: ``sd sqrt(2 (1 - correlation))`` for the change, ``sd`` for
    the primary-visit score."""
    o = s.outcome
    sd = np.broadcast_to(np.asarray(o.sd, dtype=float), (len(s.design.arms),))
    return sd * math.sqrt(2.0 * (1.0 - o.correlation)) if s.analysis.endpoint == "change" else sd


def draw(s: Scenario, n_reps: int, streams: Streams) -> ArmSummaries:
    """Each arm's mean (stream ``arm_mean``) and sum of squares (stream ``arm_spread``) over ``n_reps`` trials;
    the mean without cells is ``outcome.expected_change`` for either endpoint (the baseline's mean is 0)."""
    n = arm_sizes(s.design)
    sd = _sds(s)
    mean = np.empty((n_reps, len(n)))
    ss = np.empty((n_reps, len(n)))
    for g, (size, sd_g) in enumerate(zip(n, sd, strict=True)):
        mean[:, g] = s.outcome.expected_change + sd_g / math.sqrt(size) * streams.rng("arm_mean", g).standard_normal(
            n_reps)
        ss[:, g] = sd_g**2 * streams.rng("arm_spread", g).chisquare(size - 1, n_reps)
    return ArmSummaries(n=n, mean=mean, ss=ss, gain=np.array([0.0, s.outcome.effect]))


def truth(s: Scenario, arms: ArmSummaries) -> np.ndarray:
    """The engine's true-effect sums (points, responders, children) of ``R`` such trials: every child gains
    ``effect`` points under the active arm's cells; the responder difference is its expectation,
    ``P(change + effect >= mcid) - P(change >= mcid)`` for each child's arm."""
    n_reps = arms.mean.shape[0]
    children = sum(arms.n) * n_reps
    o = s.outcome
    sd = np.broadcast_to(np.asarray(o.sd, dtype=float), (len(arms.n),)) * math.sqrt(2.0 * (1.0 - o.correlation))
    above = (o.expected_change - s.analysis.mcid) / sd
    responders = float(np.dot(arms.n, ndtr(above + o.effect / sd) - ndtr(above))) * n_reps
    return np.array([o.effect * children, responders, float(children)])


def children(s: Scenario, arms: ArmSummaries, streams: Streams) -> np.ndarray:
    """``(R, N, 2)`` baseline and primary-visit scores without cells of children whose analysed values have
    exactly ``arms``' means and sums of squares (children stored by arm; streams ``child_spread`` and
    ``child_baseline``). Each baseline given the child's value ``y``: for the change, mean ``-(y - mu) / 2`` and
    SD ``sd sqrt((1 + correlation) / 2)``; for the score, mean ``correlation (y - mu)`` and SD
    ``sd sqrt(1 - correlation^2)``."""
    o = s.outcome
    n_reps, k = arms.mean.shape
    sd = np.broadcast_to(np.asarray(o.sd, dtype=float), (k,))
    out = np.empty((n_reps, sum(arms.n), 2))
    for g, where in enumerate(arm_slices(arms.n)):
        z = streams.rng("child_spread", g).standard_normal((arms.n[g], n_reps)).T
        z -= z.mean(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.sqrt(arms.ss[:, g] / np.square(z).sum(axis=1))
        y = arms.mean[:, g, None] + np.nan_to_num(scale)[:, None] * z
        w = streams.rng("child_baseline", g).standard_normal((arms.n[g], n_reps)).T
        deviation = y - o.expected_change
        if s.analysis.endpoint == "change":
            baseline = -0.5 * deviation + sd[g] * math.sqrt((1.0 + o.correlation) / 2.0) * w
            out[:, where, 1] = baseline + y
        else:
            baseline = o.correlation * deviation + sd[g] * math.sqrt(1.0 - o.correlation**2) * w
            out[:, where, 1] = y
        out[:, where, 0] = baseline
    return out
