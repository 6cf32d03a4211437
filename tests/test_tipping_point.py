"""The delta-adjusted (tipping-point) sensitivity analysis: ``analysis.tipping_deltas``, ``cbcp-sim analyze
--tipping-point`` and :mod:`cbcp_sim.analysis.tipping_point`.

The closed form (the limit of delta-adjusted multiple imputation with many imputations, anchored at the primary
analysis) is checked against an explicit proper multiple imputation ([Ratitch 2013]; [Rubin 1987]) written here:
draws of the imputation model's parameters from their posterior, imputations, the active arm's imputations lowered
by delta, an ANCOVA of each completed data set, Rubin's rules. With the same imputations for every delta (common
random numbers) the pooled estimate moves by exactly ``-delta w``; the within-imputation variance moves by
``delta a + delta^2 k`` up to its Monte Carlo error, checked against four of its Monte Carlo SEs.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cbcp_sim
from cbcp_sim.analysis import Estimates, infer
from cbcp_sim.analysis.ancova import ancova
from cbcp_sim.analysis.tipping_point import DeltaAdjustment, delta_adjusted, still_significant, tipping_point
from cbcp_sim.models import trial
from cbcp_sim.models.streams import Streams
from cbcp_sim.scenario import load_scenario, scenario_from_dict

from .support import assert_one_line_error, cli

MNAR = Path(__file__).resolve().parents[1] / "scenarios" / "mnar_dropout.toml"
IMPUTATIONS = 2000
#: Cord blood's largest effect (points) for trials often significant (about 3 points at the doses given).
LARGE = 15.0


@functools.cache
def _trials(effect: float = 4.0, fraction: float = 0.3, reps: int = 4) -> trial.TrialData:
    """Trials of the MNAR scenario under its MAR hypothesis (monotone dropout, ``fraction`` lost by month 12),
    cord blood's largest effect ``effect`` points."""
    s = load_scenario(MNAR, effect="mar").replace({"dropout.fraction": fraction,
                                                   "treatment.dose_response.emax": effect})
    return trial.generate(s, reps, Streams(5, 0))


def _one(adj: DeltaAdjustment, est: Estimates, r: int) -> tuple[DeltaAdjustment, Estimates]:
    pick = slice(r, r + 1)
    return (DeltaAdjustment(adj.weight[pick], adj.linear[pick], adj.quadratic[pick], adj.missing[pick]),
            Estimates(est.estimate[pick], est.se[pick], est.df[pick]))


def _posterior(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """``m`` draws of (coefficients, SD) of the normal linear model ``y ~ x`` from their posterior under the prior
    flat in the coefficients and the log SD [Rubin 1987]."""
    inverse = np.linalg.inv(x.T @ x)
    beta = inverse @ x.T @ y
    sd = np.sqrt(((y - x @ beta) ** 2).sum() / rng.chisquare(len(y) - x.shape[1], size=m))
    return beta + sd[:, None] * (rng.standard_normal((m, x.shape[1])) @ np.linalg.cholesky(inverse).T), sd


def _imputed(seed: int, values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int, delta: float,
             longitudinal: bool) -> np.ndarray:
    """:data:`IMPUTATIONS` completed primary-visit scores ``(M, N)`` of one trial, the active arm's imputations
    lowered by ``delta``: imputed from the ANCOVA of the children seen (visit score on 1, arm, baseline) or, for
    the MMRM, by sequential regression over visits 1 to ``visit`` (monotone dropout: each visit on 1, arm,
    baseline and the earlier visits, the multivariate normal of the MMRM factored)."""
    rng = np.random.default_rng(seed)
    m, n = IMPUTATIONS, len(treated)
    regressors = [np.ones((m, n)), np.broadcast_to(treated.astype(float), (m, n)),
                  np.broadcast_to(values[:, 0], (m, n))]
    completed = None
    for t in (range(1, visit + 1) if longitudinal else (visit,)):
        x = np.stack(regressors, axis=-1)
        seen = observed[:, t]
        draws, sd = _posterior(rng, x[0][seen], values[seen, t], m)
        imputed = np.einsum("mnp,mp->mn", x, draws) + sd[:, None] * rng.standard_normal((m, n))
        completed = np.where(seen, values[:, t], imputed)
        regressors.append(completed)
    return np.where(~observed[:, visit] & treated, completed - delta, completed)


def _rubin(values: np.ndarray, treated: np.ndarray, completed: np.ndarray) -> tuple[np.ndarray, ...]:
    """ANCOVA of each completed data set at the primary visit: the estimates, their variances (within)."""
    m, n = completed.shape
    both = np.stack([np.broadcast_to(values[:, 0], (m, n)), completed], axis=-1)
    est = ancova(both, np.ones((m, n, 2), dtype=bool), np.broadcast_to(treated, (m, n)), 1)
    return est.estimate, est.se ** 2


@pytest.mark.parametrize("name", ["ancova", "mmrm"])
def test_the_closed_form_is_delta_adjusted_multiple_imputation(name):
    """Per trial, with 2,000 imputations: the pooled estimate moves by exactly ``-delta w`` (1e-9); the mean
    within-imputation variance moves by ``delta a + delta^2 k`` within four of its Monte Carlo SEs; the
    between-imputation variance does not move. At delta 0 the pooled estimate is the primary estimate within four
    Monte Carlo SEs ``sqrt(B / M)`` (ANCOVA exactly in expectation; MMRM up to its REML and the imputation's ML
    fit), and Rubin's total variance is the primary variance plus the imputation's small-sample inflation
    (measured 1.3-7% on these trials: 2-4% for ANCOVA, 4-7% for MMRM with Kenward-Roger)."""
    data = _trials()
    treated = data.arm == 1
    assert (data.observed[..., 1:] <= data.observed[..., :-1]).all()  # monotone, as the sequential imputation needs
    est, adj = delta_adjusted(name, data.values, data.observed, treated, data.primary)
    assert np.all(adj.missing > 0.1)
    for r in range(len(est.estimate)):
        args = (data.values[r], data.observed[r], treated[r], data.primary)
        q0, w0 = _rubin(data.values[r], treated[r], _imputed(r, *args, 0.0, name == "mmrm"))
        b = q0.var(ddof=1)
        assert abs(q0.mean() - est.estimate[r]) < 4 * math.sqrt(b / IMPUTATIONS)
        assert 1.0 < (w0.mean() + (1 + 1 / IMPUTATIONS) * b) / est.se[r] ** 2 < 1.1
        for delta in (2.0, 6.0):
            q, w = _rubin(data.values[r], treated[r], _imputed(r, *args, delta, name == "mmrm"))
            assert q.mean() - q0.mean() == pytest.approx(-delta * adj.weight[r], abs=1e-9)
            assert q.var(ddof=1) == pytest.approx(b, rel=1e-9)
            moved = w - w0
            expected = delta * adj.linear[r] + delta ** 2 * adj.quadratic[r]
            assert abs(moved.mean() - expected) < 4 * moved.std(ddof=1) / math.sqrt(IMPUTATIONS)


def test_mmrm_estimate_is_the_ancova_of_data_completed_by_its_expectations():
    """The EM fixed point behind the MMRM's linear term: completing each missing month-12 score by its fitted mean
    plus the expected residual (iterating the ANCOVA's fitted means) gives the MMRM's estimate (1e-7)."""
    from cbcp_sim.analysis.mmrm import expected_residuals

    data = _trials()
    treated = data.arm == 1
    v = data.primary
    est, residual = expected_residuals(data.values, data.observed, treated, v)
    missing = ~data.observed[..., v]
    y = np.where(missing, 0.0, data.values[..., v])
    x = np.stack([np.ones(y.shape), treated.astype(float), data.values[..., 0]], axis=-1)
    for _ in range(200):
        beta = np.linalg.solve(np.swapaxes(x, 1, 2) @ x, np.swapaxes(x, 1, 2) @ y[..., None])
        y = np.where(missing, (x @ beta)[..., 0] + residual, data.values[..., v])
    assert beta[:, 1, 0] == pytest.approx(est.estimate, abs=1e-7)


@pytest.mark.parametrize("sides", [1, 2])
def test_the_tipping_point_is_where_the_test_crosses_the_critical_value(sides):
    """Re-analysed at its tipping point, each significant trial's delta-adjusted test has p = alpha (1e-8), and it
    rejects just below it and not just above."""
    data = _trials(effect=LARGE, reps=200)
    est, adj = delta_adjusted("mmrm", data.values, data.observed, data.arm == 1, data.primary)
    points = tipping_point(est, adj, alpha=0.05, sides=sides)
    finite = np.isfinite(points)
    assert finite.sum() > 50
    at = infer(adj.estimates(est, points), alpha=0.05, sides=sides)
    assert at.p[finite] == pytest.approx(0.05, abs=1e-8)
    for step, rejects in ((-1e-6, True), (1e-6, False)):
        near = still_significant(est, adj, points + step, alpha=0.05, sides=sides)
        assert (near[finite] == rejects).all()
    assert np.isnan(points[~infer(est, alpha=0.05, sides=sides).reject]).all()


def test_no_active_child_missing_gives_an_infinite_tipping_point():
    """Without dropout nothing is imputed: a significant trial never tips (inf), the estimate never moves."""
    data = _trials(effect=LARGE, fraction=0.0, reps=50)
    est, adj = delta_adjusted("ancova", data.values, data.observed, data.arm == 1, data.primary)
    points = tipping_point(est, adj, alpha=0.05, sides=2)
    assert (adj.weight == 0).all() and (adj.missing == 0).all()
    assert np.isinf(points[infer(est, alpha=0.05, sides=2).reject]).all()


@functools.cache
def _run(deltas: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0, 8.0), primary: str = "mmrm", sides: int = 2):
    s = load_scenario(MNAR).replace({"analysis.tipping_deltas": list(deltas), "analysis.primary": primary,
                                     "analysis.secondary": [], "design.sides": sides,
                                     "treatment.dose_response.emax": LARGE})
    return cbcp_sim.simulate(s, reps=300, seed=3)


@pytest.mark.parametrize("primary, sides", [("mmrm", 2), ("ancova", 1)])
def test_delta_zero_is_the_primary_power_and_power_falls_with_delta(primary, sides):
    result = _run(primary=primary, sides=sides)
    block = result.tipping_point
    assert block["analysis"] == primary and block["deltas"][0] == 0.0
    assert block["power"][0] == result.primary["power"] and block["mcse"][0] == result.primary["mcse"]
    assert all(b <= a for a, b in zip(block["power"], block["power"][1:], strict=False))
    assert block["power"][-1] < block["power"][0]
    assert block["q25"] <= block["median"] <= block["q75"]
    points = result.replicates_for()["tipping_point"]
    assert block["n_significant"] == int(np.isfinite(points).sum() + np.isinf(points).sum())
    assert block["median"] in points  # a trial's value


def test_runs_without_tipping_deltas_are_unchanged_and_reproducible():
    """Off by default (no block, the same digest as a scenario without the key); the same seed gives the same
    block, and a run saved by chunks (resumable) gives it too."""
    base = scenario_from_dict({})
    assert base.analysis.tipping_deltas is None and "tipping_deltas" not in base.to_dict()["analysis"]
    assert cbcp_sim.simulate(base, reps=20, seed=3).tipping_point is None
    assert "tipping_point" not in cbcp_sim.simulate(base, reps=20, seed=3).to_json()
    again = load_scenario(MNAR).replace({"analysis.tipping_deltas": [0.0, 1.0, 2.0, 4.0, 8.0],
                                         "analysis.primary": "mmrm", "analysis.secondary": [], "design.sides": 2,
                                         "treatment.dose_response.emax": LARGE})
    assert cbcp_sim.simulate(again, reps=300, seed=3).tipping_point == _run().tipping_point


def test_run_text_and_json(capsys, tmp_path):
    argv = ("run", str(MNAR), "--reps", "60", "--seed", "2", "--set", "analysis.tipping_deltas=[0, 2.5]")
    code, out, err = cli(capsys, *argv)
    assert code == 0, err
    assert "tipping point, mmrm (cord blood vs sham)" in out and "tipping point over the" in out
    code, out, err = cli(capsys, *argv, "--json")
    block = json.loads(out)["tipping_point"]
    assert set(block) == {"analysis", "comparison", "deltas", "power", "mcse", "ci_low", "ci_high", "n_significant",
                          "q25", "median", "q75", "share_infinite", "missing_share", "n_failed"}
    assert block["deltas"] == [0.0, 2.5] and len(block["power"]) == 2


@pytest.mark.parametrize("value, fragment", [
    ("[-1]", "analysis.tipping_deltas[0]"), ("[2, 1]", "strictly increasing"), ("3", "must be an array")])
def test_bad_deltas_are_one_line_errors(capsys, value, fragment):
    code, out, err = cli(capsys, "run", str(MNAR), "--reps", "10", "--set", f"analysis.tipping_deltas={value}")
    assert_one_line_error(code, out, err, "analysis.tipping_deltas", fragment)


@pytest.mark.parametrize("sets, fragment", [
    (["analysis.primary=ttest"], "not 'ttest'"),
    (["analysis.mmrm_baseline=response"], "mmrm_baseline = 'covariate'"),
])
def test_analyses_without_a_delta_adjustment_are_refused(capsys, sets, fragment):
    options = [a for s in sets for a in ("--set", s)]
    code, out, err = cli(capsys, "run", str(MNAR), "--reps", "10", "--set", "analysis.tipping_deltas=[1]", *options)
    assert_one_line_error(code, out, err, "analysis.tipping_deltas", fragment)


@pytest.fixture(scope="module")
def pilot(tmp_path_factory) -> str:
    """The first simulated trial (36 per arm, a large effect, 30% MAR dropout) significant by both analyses, in long
    format."""
    data = _trials(effect=LARGE, reps=200)
    significant = [infer(delta_adjusted(name, data.values, data.observed, data.arm == 1, data.primary)[0],
                         alpha=0.05, sides=2).reject for name in ("ancova", "mmrm")]
    r = int(np.flatnonzero(significant[0] & significant[1])[0])
    rows = [{"id": i, "arm": int(data.arm[r, i] == 1), "visit": float(month), "value": data.values[r, i, j],
             "baseline": data.values[r, i, 0]}
            for i in range(data.arm.shape[1]) for j, month in enumerate(data.months) if data.observed[r, i, j]]
    path = tmp_path_factory.mktemp("pilot") / "pilot.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("method", ["ancova", "mmrm"])
def test_analyze_prints_the_tipping_point(capsys, pilot, method):
    """The text line and the ``--json`` field agree with the library, and its delta gives p = alpha."""
    code, out, err = cli(capsys, "analyze", pilot, "--method", method, "--tipping-point", "--json")
    assert code == 0, err
    result = json.loads(out)
    tipped = result["tipping_point"]
    assert tipped["status"] == "finite" and tipped["delta"] > 0 and 0 < tipped["missing_share"] < 1
    library = cbcp_sim.analyze(pilot, method=method, tipping_point=True)
    assert library.tipping_point == tipped["delta"]
    code, out, err = cli(capsys, "analyze", pilot, "--method", method, "--tipping-point")
    assert f"tipping point  {tipped['delta']:.4f} (finite;" in out
    code, out, err = cli(capsys, "analyze", pilot, "--method", method, "--json")
    assert "tipping_point" not in json.loads(out)


def test_analyze_refuses_a_tipping_point_it_cannot_compute(capsys, pilot):
    code, out, err = cli(capsys, "analyze", pilot, "--method", "welch", "--tipping-point")
    assert_one_line_error(code, out, err, "--tipping-point", "not welch")
