"""The normal outcome model beyond parallel arms with one SD, against closed forms (issue 20, points 3 and 4).

Crossover (AB/BA, [Senn 2002] on the period changes). Each period's change has SD ``sigma_c = sd sqrt(2 (1 -
correlation))`` and the two are correlated ``within_correlation``, so a child's period difference ``p1 - p2`` has
SD ``sigma_d = sigma_c sqrt(2 (1 - within_correlation))``. Its mean is ``-period_effect - effect`` in the
placebo-first sequence and ``effect - period_effect - carryover`` in the cells-first one: the ``crossover``
analysis (half the difference between sequences, pooled t) is noncentral t with ``n0 + n1 - 2`` df and
noncentrality ``(2 effect - carryover) / (sigma_d sqrt(1/n0 + 1/n1))``, its bias ``-carryover / 2``. ``period2``
(period-2 changes, SD ``sigma_c``) has noncentrality ``(effect - carryover) / (sigma_c sqrt(1/n0 + 1/n1))``.

Single arm. The change has mean ``expected_change + effect`` and SD ``sigma_c``; ``above_expected`` tests it
against ``expected_change + analysis.expected_error``: one-sample t, ``n - 1`` df, noncentrality
``(effect - expected_error) sqrt(n) / sigma_c``; ``before_after`` against 0, noncentrality ``(expected_change +
effect) sqrt(n) / sigma_c`` (under no effect that is its type I error, inflated by the natural change).

Per-arm SD. Welch's test keeps its level where the pooled t-test's is far off (unequal SDs with unequal n: the
small arm has the large SD); its power is the noncentral t at the Satterthwaite df (:func:`welch_power`).

Every simulated power and type I error must lie within 3 Monte Carlo SE of its closed form.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import cbcp_sim
from cbcp_sim.models import trial
from cbcp_sim.models.streams import Streams
from tests.reference import t_power, welch_power

REPS = 4000
ALPHA = 0.05
SD, RHO = 2.0, 0.5
SIGMA_C = SD * math.sqrt(2 * (1 - RHO))  # SD of a period's change


def _scenario(outcome: dict, design: dict, analysis: dict) -> cbcp_sim.Scenario:
    return cbcp_sim.scenario_from_dict({
        "outcome": {"model": "normal", "sd": SD, "correlation": RHO, **outcome},
        "design": {"alpha": ALPHA, **design}, "dropout": {"fraction": 0.0}, "analysis": analysis})


def _crossover(n0: int, n1: int, sides: int, **outcome: float) -> cbcp_sim.Scenario:
    return _scenario(outcome, {"kind": "crossover", "arms": ["placebo first", "cells first"], "n_per_arm": [n0, n1],
                               "visits": [0, 6, 12, 24], "primary_visit": 12, "crossover_month": 12,
                               "sides": sides},
                     {"primary": "crossover", "secondary": ["period2"]})


def _single(n: int, sides: int, expected_error: float = 0.0, **outcome: float) -> cbcp_sim.Scenario:
    return _scenario(outcome, {"kind": "single_arm", "arms": ["cells"], "n_per_arm": n, "sides": sides,
                               "blinding": "open"},
                     {"primary": "above_expected", "secondary": ["before_after"], "expected_error": expected_error})


def _rows(result: cbcp_sim.SimulationResult) -> dict[str, dict]:
    return {r["analysis"]: r for r in result.rows}


def _near(row: dict, power: float, type1: float = ALPHA) -> None:
    assert abs(row["power"] - power) <= 3 * row["mcse"], (row["analysis"], row["power"], power, row["mcse"])
    assert abs(row["type1_error"] - type1) <= 3 * row["type1_mcse"], (row["analysis"], row["type1_error"], type1)
    assert row["n_failed"] == row["n_failed_null"] == 0


CROSSOVER_GRID = [  # (n0, n1, effect, within_correlation, period_effect, carryover, sides)
    (31, 32, 1.0, 0.0, -1.0, 0.0, 2),
    (20, 20, 1.2, 0.4, 0.5, 0.0, 2),
    (15, 25, 1.0, -0.3, 0.0, -0.6, 1),
    (40, 40, 0.6, 0.2, -0.5, 0.8, 2),
]


@pytest.mark.parametrize(("n0", "n1", "effect", "within", "period", "carryover", "sides"), CROSSOVER_GRID)
def test_crossover_power_and_level_match_the_ab_ba_closed_form(n0, n1, effect, within, period, carryover, sides):
    s = _crossover(n0, n1, sides, effect=effect, within_correlation=within, period_effect=period,
                   carryover=carryover, expected_change=2.0)
    rows = _rows(cbcp_sim.simulate(s, reps=REPS, seed=21))
    df, scale = n0 + n1 - 2, math.sqrt(1 / n0 + 1 / n1)
    sigma_d = SIGMA_C * math.sqrt(2 * (1 - within))
    _near(rows["crossover"], t_power((2 * effect - carryover) / (sigma_d * scale), df, ALPHA, sides))
    _near(rows["period2"], t_power((effect - carryover) / (SIGMA_C * scale), df, ALPHA, sides))
    cross = rows["crossover"]
    assert cross["true_effect"] == pytest.approx(effect)
    assert abs(cross["bias"] + carryover / 2) <= 3 * cross["bias_mcse"], (cross["bias"], carryover)


SINGLE_GRID = [  # (n, effect, expected_change, expected_error, sides)
    (20, 1.0, 0.0, 0.0, 2),
    (35, 0.8, 0.4, 0.0, 1),
    (15, 1.5, -1.0, -0.5, 2),
]


@pytest.mark.parametrize(("n", "effect", "expected_change", "error", "sides"), SINGLE_GRID)
def test_single_arm_power_and_level_match_the_one_sample_t(n, effect, expected_change, error, sides):
    s = _single(n, sides, error, effect=effect, expected_change=expected_change)
    rows = _rows(cbcp_sim.simulate(s, reps=REPS, seed=22))
    root = math.sqrt(n) / SIGMA_C
    _near(rows["above_expected"], t_power((effect - error) * root, n - 1, ALPHA, sides),
          t_power(-error * root, n - 1, ALPHA, sides))
    _near(rows["before_after"], t_power((expected_change + effect) * root, n - 1, ALPHA, sides),
          t_power(expected_change * root, n - 1, ALPHA, sides))
    assert rows["above_expected"]["true_effect"] == pytest.approx(effect)


def test_welch_keeps_its_level_where_the_pooled_t_test_does_not():
    """SD 1 in 40 controls, 3 in 10 treated: the pooled variance, dominated by the controls, is far too small."""
    s = _scenario({"sd": [1.0, 3.0], "effect": 0.0}, {"n_per_arm": [40, 10]},
                  {"primary": "welch", "secondary": ["ttest"]})
    rows = _rows(cbcp_sim.simulate(s, reps=10_000, seed=23))
    welch, pooled = rows["welch"], rows["ttest"]
    assert abs(welch["type1_error"] - ALPHA) <= 3 * welch["type1_mcse"], welch["type1_error"]
    assert pooled["type1_error"] > 0.15, pooled["type1_error"]


WELCH_GRID = [  # (n0, n1, sd0, sd1, effect, sides)
    (40, 10, 1.0, 3.0, 2.5, 2),
    (20, 30, 2.0, 1.0, 1.0, 1),
    (15, 45, 3.0, 1.5, 2.0, 2),
]


@pytest.mark.parametrize(("n0", "n1", "sd0", "sd1", "effect", "sides"), WELCH_GRID)
def test_welch_power_with_an_sd_per_arm_matches_the_closed_form(n0, n1, sd0, sd1, effect, sides):
    """With correlation 0.5 each arm's SD of change is its sd."""
    s = _scenario({"sd": [sd0, sd1], "effect": effect}, {"n_per_arm": [n0, n1], "sides": sides},
                  {"primary": "welch"})
    row = cbcp_sim.simulate(s, reps=REPS, seed=24).primary
    _near(row, welch_power(effect, sd0, n0, n1, ALPHA, sides, sd1=sd1))


def test_one_sd_for_all_arms_draws_the_same_trials_as_that_sd_per_arm():
    one = _scenario({"sd": 1.5}, {"n_per_arm": [12, 9]}, {"primary": "ttest"})
    data = [trial.generate(one.replace({"outcome.sd": sd}), 7, Streams(3, 0)) for sd in (1.5, [1.5], [1.5, 1.5])]
    assert all(np.array_equal(d.values, data[0].values) for d in data[1:])


def test_the_normal_model_gives_the_crossover_and_single_arm_analyses_their_data():
    """Crossover: baseline, the switch (= primary visit) and the last visit; single arm: every child's expected
    change, expected_change plus analysis.expected_error."""
    data = trial.generate(_crossover(5, 6, 2), 3, Streams(1, 0))
    assert data.months.tolist() == [0.0, 12.0, 24.0] and data.switch == data.primary == 1
    assert data.values.shape == (3, 11, 3) and data.expected is None
    data = trial.generate(_single(8, 2, -0.5, expected_change=1.5), 3, Streams(1, 0))
    assert data.months.tolist() == [0.0, 12.0] and data.switch is None
    assert data.expected.shape == (3, 8) and np.all(data.expected == 1.0)


def test_the_report_of_a_run_with_an_sd_per_arm_names_each(tmp_path, capsys):
    from tests.support import cli

    out = tmp_path / "run"
    code, _, err = cli(capsys, "run", "--set", "outcome.model=normal", "--set", "outcome.sd=[1, 3]", "--reps", "100",
                       "--quiet", "--out", str(out))
    assert code == 0, err
    assert cli(capsys, "report", str(out))[0] == 0
    assert "SD 1, 3," in (out / "report.html").read_text()
