"""Monotone dropout: a child lost stays lost. The baseline (month 0) is always observed.

``mcar``: a constant hazard per month, ``h = -ln(1 - fraction) / by_month``, loses ``fraction`` of children
by ``by_month`` (see ``dropout.fraction``), whatever their scores. ``mar``: after each simulated visit a child leaves
before the next with the MCAR probability for that interval, its odds multiplied by ``mar_odds_ratio`` per
SD lower score at the visit just attended (standardised over the children seen at that visit); the
dropout then depends only on observed scores (missing at random, Little & Rubin 2019), which a likelihood
analysis (MMRM) handles and a completers' analysis need not. ``mnar``: the same selection model, but the odds
are multiplied by ``mnar_odds_ratio`` per SD lower score at the *next* visit, the one the child would miss
(standardised over the children still in the trial): the dropout depends on the unobserved value (missing not
at random), which neither analysis handles. With the trial calendar (:mod:`cbcp_sim.models.operations`) all act
at each child's actual visit times.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit, logit

from cbcp_sim.models.streams import Streams
from cbcp_sim.scenario import Dropout


def hazard(d: Dropout) -> float:
    """Dropout hazard per month (MCAR, or an average child under MAR)."""
    return -math.log1p(-d.fraction) / d.by_month


def times(d: Dropout, sizes: tuple[int, ...], n_reps: int, streams: Streams) -> np.ndarray:
    """Each child's dropout time ``(R, N)``, months after baseline, at the hazard of :func:`hazard` (inf: never)."""
    h = hazard(d)
    if h == 0.0:
        return np.full((n_reps, sum(sizes)), np.inf)
    return streams.per_child("dropout", sizes, n_reps, draw=lambda rng, sh: rng.exponential(1.0 / h, sh))


def observed(d: Dropout, months: np.ndarray, sizes: tuple[int, ...], n_reps: int, streams: Streams,
             values: np.ndarray, missed: np.ndarray | None = None) -> np.ndarray:
    """Mask ``(R, N, V)``: True where the child is still in the trial at the visit; ``months`` are the visit times
    ``(V,)``, or each child's ``(R, N, V)``; ``values`` ``(R, N, V)`` are the scores the children would have (under
    MAR only those at attended visits matter; under MNAR those at the visit after each one attended, seen or not).
    Under MAR a child who ``missed`` ``(R, N, V)`` a visit leaves after it with the MCAR probability (no score was
    seen), and the standardisation is over the children seen; under MNAR the next score drives the odds whether
    or not the visit was missed, standardised over every child still in the trial."""
    h = hazard(d)
    months = np.asarray(months)
    if h == 0.0:
        return np.ones((n_reps, sum(sizes), months.shape[-1]), dtype=bool)
    if d.mechanism == "mcar":
        return times(d, sizes, n_reps, streams)[..., None] > months
    if d.mechanism == "mnar":
        return _selection(d, months, sizes, n_reps, streams, values, None, d.mnar_odds_ratio, lead=1)
    return _selection(d, months, sizes, n_reps, streams, values, missed, d.mar_odds_ratio, lead=0)


def _selection(d: Dropout, months: np.ndarray, sizes: tuple[int, ...], n_reps: int, streams: Streams,
               values: np.ndarray, missed: np.ndarray | None, odds_ratio: float, lead: int) -> np.ndarray:
    """The selection model of MAR (``lead`` 0) and MNAR (``lead`` 1): between visits ``j`` and ``j + 1`` a child
    present at ``j`` leaves with log-odds ``logit(MCAR probability) - log(odds_ratio) z``, ``z`` its score at visit
    ``j + lead`` standardised over the children present at ``j`` (and not ``missed`` there: those get ``z = 0``).
    One uniform per child and interval from the ``dropout_mar`` stream, whatever the mechanism."""
    u = streams.per_child("dropout_mar", sizes, n_reps, draw=lambda rng, sh: rng.random(sh),
                          extra=(months.shape[-1] - 1,))
    base = logit(-np.expm1(-hazard(d) * np.diff(months, axis=-1)))
    slope = math.log(odds_ratio)
    out = np.ones((n_reps, sum(sizes), months.shape[-1]), dtype=bool)
    for j in range(months.shape[-1] - 1):
        present = out[..., j]
        shown = present if missed is None else present & ~missed[..., j]
        score = values[..., j + lead]
        n = np.maximum(shown.sum(axis=1, keepdims=True), 1)
        kept = np.where(shown, score, 0.0)
        mean = kept.sum(axis=1, keepdims=True) / n
        sd = np.sqrt(np.where(shown, (kept - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / n)
        z = np.where(shown, (score - mean) / np.where(sd > 0.0, sd, 1.0), 0.0)
        out[..., j + 1] = present & (u[..., j] >= expit(base[..., j] - slope * z))
    return out
