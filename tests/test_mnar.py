"""Missing-not-at-random dropout (``dropout.mechanism = "mnar"``): a selection model in which the odds of leaving
after a visit rise by ``mnar_odds_ratio`` per SD lower score at the next visit, the one missed.

Statistical checks use fixed seeds: logistic-regression coefficients within 4 SEs, rates within 99% Monte Carlo
bands, biases against three bias MCSEs.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest
import statsmodels.api as sm
from scipy.special import logit

import cbcp_sim
from cbcp_sim.errors import ScenarioError
from cbcp_sim.models import trial
from cbcp_sim.models.streams import Streams
from cbcp_sim.scenario import scenario_from_dict

Z99 = 2.5758293035489
FRACTION = 0.2


@functools.cache
def _data(mechanism: str, odds_ratio: float) -> trial.TrialData:
    """1,000 default-scenario trials of 50 per arm (visits 0, 1, 3, 6, 12), 20% lost by month 12."""
    s = scenario_from_dict({}, {"dropout.mechanism": mechanism, "dropout.mar_odds_ratio": odds_ratio,
                                "dropout.mnar_odds_ratio": odds_ratio, "dropout.fraction": FRACTION,
                                "analysis.primary": "mmrm", "design.n_per_arm": 50})
    return trial.generate(s, 1000, Streams(9, 0))


def _z(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """``values`` ``(R, N)`` standardised over the ``present`` children of each trial (SD with divisor n)."""
    n = present.sum(axis=1, keepdims=True)
    mean = np.where(present, values, 0.0).sum(axis=1, keepdims=True) / n
    sd = np.sqrt(np.where(present, (values - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / n)
    return (values - mean) / sd


def _intervals(data: trial.TrialData):
    """Per interval ``j``: whether each child present at visit ``j`` left before ``j + 1``, and its scores at
    ``j`` and ``j + 1`` standardised over the children present at ``j``."""
    observed, values = data.observed, data.values
    for j in range(len(data.months) - 1):
        present = observed[..., j]
        left = (~observed[..., j + 1])[present].astype(float)
        yield j, left, _z(values[..., j], present)[present], _z(values[..., j + 1], present)[present]


def test_mnar_dropout_is_monotone_from_an_observed_baseline():
    """Under MNAR the baseline is always observed and a child lost stays lost, in the trials with and without
    effect, which differ (each follows its own scores)."""
    data = _data("mnar", 3.0)
    for observed in (data.observed, data.null_observed):
        assert observed[..., 0].all()
        assert (observed[..., 1:] <= observed[..., :-1]).all()
    assert (data.observed != data.null_observed).any()


def test_mnar_average_child_loses_fraction_by_by_month():
    """With mnar_odds_ratio 3 the logistic regression of leaving on the standardised next-visit score has, at
    every interval, intercept logit(1 - exp(-h dt)) (the MCAR probability: an average child, z = 0, loses 20% by
    month 12) and slope -log(3) per SD, each within 4 SEs."""
    data = _data("mnar", 3.0)
    h = -math.log1p(-FRACTION) / 12.0
    for j, left, _, ahead in _intervals(data):
        fit = sm.Logit(left, sm.add_constant(ahead)).fit(disp=0)
        dt = data.months[j + 1] - data.months[j]
        assert abs(fit.params[0] - logit(-math.expm1(-h * dt))) <= 4 * fit.bse[0], (j, fit.params, fit.bse)
        assert abs(fit.params[1] + math.log(3.0)) <= 4 * fit.bse[1], (j, fit.params, fit.bse)


def test_children_with_lower_next_scores_leave_more_even_given_the_current_score():
    """MNAR: at every interval children whose next-visit score is below the median leave more often than those
    above; given the score seen at the current visit, the next (unseen) score still predicts leaving (its
    coefficient below 0 by more than 4 SEs). Under MAR it does not (within 4 SEs of 0), though the current score
    does."""
    for j, left, now, ahead in _intervals(_data("mnar", 3.0)):
        below = ahead < np.median(ahead)
        assert left[below].mean() > left[~below].mean(), j
        fit = sm.Logit(left, sm.add_constant(np.column_stack([now, ahead]))).fit(disp=0)
        assert fit.params[2] < -4 * fit.bse[2], (j, fit.params, fit.bse)
    for j, left, now, ahead in _intervals(_data("mar", 3.0)):
        fit = sm.Logit(left, sm.add_constant(np.column_stack([now, ahead]))).fit(disp=0)
        assert abs(fit.params[2]) <= 4 * fit.bse[2], (j, fit.params, fit.bse)
        assert fit.params[1] < -4 * fit.bse[1], (j, fit.params, fit.bse)


def test_mnar_odds_ratio_one_is_mcar():
    """With mnar_odds_ratio 1 the scores play no part: the masks are MAR's at odds ratio 1 exactly (same draws)
    and the fraction lost by month 12 is MCAR's, 0.2, within the 99% Monte Carlo band of 100,000 children."""
    mnar, mar, mcar = _data("mnar", 1.0), _data("mar", 1.0), _data("mcar", 1.0)
    np.testing.assert_array_equal(mnar.observed, mar.observed)
    np.testing.assert_array_equal(mnar.observed, mnar.null_observed)
    band = Z99 * math.sqrt(FRACTION * (1 - FRACTION) / mnar.observed[..., -1].size)
    for data in (mnar, mcar):
        assert abs(1.0 - data.observed[..., -1].mean() - FRACTION) <= band


NORMAL = {"outcome.model": "normal", "outcome.effect": 0.5, "outcome.sd": 1.0, "outcome.correlation": 0.5,
          "design.n_per_arm": 50, "dropout.fraction": 0.3, "dropout.mar_odds_ratio": 3.0,
          "dropout.mnar_odds_ratio": 3.0, "analysis.primary": "mmrm", "analysis.secondary": ["ancova"]}


@functools.cache
def _rows(mechanism: str) -> dict[str, dict[str, Any]]:
    s = scenario_from_dict({}, {**NORMAL, "dropout.mechanism": mechanism})
    return {r["analysis"]: r for r in cbcp_sim.simulate(s, reps=2000, seed=1).rows}


def test_mnar_biases_mmrm_and_completers_ancova_where_mar_does_not():
    """Normal model, effect 0.5 SD, correlation 0.5, 50 per arm, 30% lost by month 12 (odds ratio 3 per SD),
    2,000 trials, seed 1. The treated arm scores higher at month 12, so fewer of its children leave and its
    completers are less selected than the controls': under MNAR both MMRM and the completers' ANCOVA (the same
    fit here, with one visit after baseline) underestimate the effect, measured -0.062 (bias MCSE 0.0044,
    coverage 0.939); under MAR (dropout on the baseline score) MMRM is unbiased, +0.001 (0.0047), coverage
    0.957."""
    for analysis in ("mmrm", "ancova"):
        row = _rows("mnar")[analysis]
        assert row["bias"] < -3 * row["bias_mcse"], row
        assert abs(row["mean_estimate"] - row["true_effect"] - row["bias"]) < 1e-12
    row = _rows("mar")["mmrm"]
    assert abs(row["bias"]) <= 3 * row["bias_mcse"], row
    assert abs(row["coverage"] - 0.95) <= Z99 * math.sqrt(0.95 * 0.05 / 2000), row


@pytest.mark.parametrize(("overrides", "fragment"), [
    ({"dropout.mnar_odds_ratio": 0.5}, "[1, 100]"),
    ({"dropout.mnar_odds_ratio": 101.0}, "[1, 100]"),
    ({"dropout.mnar_odds_ratio": "two"}, "number"),
    ({"dropout.mechanism": "nmar"}, "mnar"),
])
def test_bad_mnar_values_give_one_line_errors(overrides, fragment):
    """A bad mnar_odds_ratio (below 1, above 100, not a number) or mechanism is a one-line error naming it."""
    (path,) = overrides
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict({}, overrides)
    assert info.value.path == path
    assert str(info.value).startswith(f"{path}: ")
    assert "\n" not in str(info.value)
    assert fragment in str(info.value)
