"""Reproducibility: bit-identical results for any number of jobs, chunked streams, common random numbers.

Spec: "Engine: vectorised over replicates in chunks (R, N, V); SeedSequence.spawn per chunk; joblib
across chunks; bit-identical results for any --jobs. Optional target precision: stop when the MCSE
of power is below a bound." and "Same seed, --jobs 1 and --jobs 2: identical output. Different
seeds: different output."
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cbcp_sim
from cbcp_sim.models import trial
from cbcp_sim.models.streams import Streams
from cbcp_sim.run.settings import CHUNK_SIZE, RunSettings
from cbcp_sim.scenario import default_scenario_path, load_scenario

SEED = 7


def _scenario(**overrides: object) -> cbcp_sim.Scenario:
    return load_scenario(default_scenario_path(), overrides)


@pytest.fixture(scope="module")
def scenario() -> cbcp_sim.Scenario:
    return _scenario()


@pytest.fixture(scope="module")
def run_jobs1(scenario):
    return cbcp_sim.simulate(scenario, reps=2500, seed=SEED, jobs=1)


def _same_array(a: np.ndarray, b: np.ndarray) -> bool:
    """Exact equality, NaN equal to NaN, same dtype and shape."""
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")


def _assert_same_replicates(a: cbcp_sim.SimulationResult, b: cbcp_sim.SimulationResult, n: int | None = None) -> None:
    """Per-replicate arrays of ``a`` equal those of ``b`` (or their first ``n``)."""
    assert a.replicates.keys() == b.replicates.keys()
    for name, arrays in a.replicates.items():
        assert arrays.keys() == b.replicates[name].keys()
        for key, x in arrays.items():
            y = b.replicates[name][key]
            assert _same_array(x, y if n is None else y[:n]), f"{name}.{key} differs"


def test_chunk_plan_handles_remainders():
    """Engine: replicates split into full chunks of CHUNK_SIZE then the remainder."""
    assert CHUNK_SIZE == 1000
    assert RunSettings(reps=2500).chunks() == [1000, 1000, 500]
    assert RunSettings(reps=3000).chunks() == [1000, 1000, 1000]
    assert RunSettings(reps=999).chunks() == [999]
    assert RunSettings(reps=7, chunk_size=3).chunks() == [3, 3, 1]
    assert sum(RunSettings(reps=123_457).chunks()) == 123_457


def test_same_seed_jobs1_equals_jobs2(scenario, run_jobs1):
    """Same seed, --jobs 1 and --jobs 2: identical table and per-replicate arrays; reps not a chunk multiple."""
    two = cbcp_sim.simulate(scenario, reps=2500, seed=SEED, jobs=2)
    assert run_jobs1.n_reps == two.n_reps == 2500
    pd.testing.assert_frame_equal(run_jobs1.table, two.table, check_exact=True)
    assert run_jobs1.table.equals(two.table)
    _assert_same_replicates(run_jobs1, two)
    assert run_jobs1.true_effect == two.true_effect
    assert run_jobs1.screen_failure == two.screen_failure
    for arrays in run_jobs1.replicates.values():
        assert all(a.shape == (2500,) for a in arrays.values())


def test_same_seed_rerun_is_identical(scenario, run_jobs1):
    """Same seed twice in one process: identical output."""
    again = cbcp_sim.simulate(scenario, reps=2500, seed=SEED, jobs=1)
    pd.testing.assert_frame_equal(run_jobs1.table, again.table, check_exact=True)
    _assert_same_replicates(run_jobs1, again)


def test_different_seeds_differ(scenario, run_jobs1):
    """Different seeds: different output."""
    other = cbcp_sim.simulate(scenario, reps=2500, seed=SEED + 1, jobs=1)
    assert not run_jobs1.table.equals(other.table)
    for name, arrays in run_jobs1.replicates.items():
        for key in ("estimate", "se", "null_estimate"):
            assert not np.array_equal(arrays[key], other.replicates[name][key])
            # Not merely permuted or shifted: hardly any replicate agrees.
            assert np.mean(arrays[key] == other.replicates[name][key]) < 0.01


def test_chunks_use_fixed_streams_prefix(scenario):
    """Engine: chunk c always uses the same stream, so reps=3000 are the first 3000 replicates of reps=5000."""
    short = cbcp_sim.simulate(scenario, reps=3000, seed=SEED, jobs=1)
    long = cbcp_sim.simulate(scenario, reps=5000, seed=SEED, jobs=1)
    _assert_same_replicates(short, long, n=3000)
    assert not np.array_equal(long.replicates["ancova"]["estimate"][3000:4000],
                              long.replicates["ancova"]["estimate"][:1000]), "chunks must not repeat a stream"


def test_target_mcse_stops_early_and_is_jobs_independent(scenario):
    """Engine: with target precision the run stops at the first chunk with MCSE <= bound, the same for any jobs."""
    target = 0.008
    one = cbcp_sim.simulate(scenario, reps=20_000, seed=SEED, jobs=1, target_mcse=target)
    assert one.n_reps % CHUNK_SIZE == 0
    assert CHUNK_SIZE <= one.n_reps < 20_000
    assert one.primary["mcse"] <= target
    # The chunk before the stop was not yet precise enough (chunks are prefixes, so this run is its prefix).
    assert one.n_reps > CHUNK_SIZE, "target chosen to need several chunks"
    before = cbcp_sim.simulate(scenario, reps=one.n_reps - CHUNK_SIZE, seed=SEED, jobs=1)
    assert before.primary["mcse"] > target
    _assert_same_replicates(before, one, n=before.n_reps)
    two = cbcp_sim.simulate(scenario, reps=20_000, seed=SEED, jobs=2, target_mcse=target)
    assert two.n_reps == one.n_reps
    pd.testing.assert_frame_equal(one.table, two.table, check_exact=True)
    _assert_same_replicates(one, two)


def test_target_mcse_never_reached_runs_all_reps(scenario):
    """Engine: if the bound is never met, all requested replicates run (including a partial chunk)."""
    res = cbcp_sim.simulate(scenario, reps=1500, seed=SEED, jobs=1, target_mcse=0.001)
    assert res.n_reps == 1500
    assert res.primary["mcse"] > 0.001


# --- common random numbers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gmfm66", "normal"])
def test_larger_trial_keeps_first_children(model):
    """Streams: same seed, n_per_arm 20 -> 30 keeps the first 20 children of each arm (common random numbers)."""
    r = 40
    small = trial.generate(_scenario(**{"design.n_per_arm": 20, "outcome.model": model}), r, Streams(SEED, 0))
    big = trial.generate(_scenario(**{"design.n_per_arm": 30, "outcome.model": model}), r, Streams(SEED, 0))
    assert small.values.shape[1] == 40 and big.values.shape[1] == 60
    for key in ("values", "null_values", "observed"):
        a, b = getattr(small, key), getattr(big, key)
        np.testing.assert_array_equal(a[:, :20], b[:, :20], err_msg=f"control {key}")
        np.testing.assert_array_equal(a[:, 20:40], b[:, 30:50], err_msg=f"active {key}")
    np.testing.assert_array_equal(small.arm, np.broadcast_to(np.repeat([0, 1], 20), (r, 40)))
    np.testing.assert_array_equal(big.arm, np.broadcast_to(np.repeat([0, 1], 30), (r, 60)))


def test_larger_effect_keeps_trials():
    """Streams: changing treatment emax keeps null_values, dropout and the control arm identical."""
    r = 40
    low = trial.generate(_scenario(**{"treatment.dose_response.emax": 2.0}), r, Streams(SEED, 0))
    assert low.values.shape[1] == 72  # default: 36 per arm, control first
    high = trial.generate(_scenario(**{"treatment.dose_response.emax": 8.0}), r, Streams(SEED, 0))
    np.testing.assert_array_equal(low.null_values, high.null_values)
    np.testing.assert_array_equal(low.observed, high.observed)
    np.testing.assert_array_equal(low.values[:, :36], high.values[:, :36])
    # The active arm does change (a real effect), and only after baseline.
    assert not np.array_equal(low.values[:, 36:], high.values[:, 36:])
    np.testing.assert_array_equal(low.values[..., 0], high.values[..., 0])
    assert (high.under[1] - high.under[0]).sum() > (low.under[1] - low.under[0]).sum() > 0


def test_every_design_and_analysis_identical_across_jobs():
    """Three arms with Hochberg, block randomisation, MAR dropout, MMRM (linear algebra per replicate), rank and
    exact tests, and a crossover: --jobs 1 and --jobs 2 give bit-identical per-replicate results and rows."""
    royan = load_scenario(default_scenario_path().parent / "royan_pooled_three_arm.toml", {
        "design.randomisation": "blocks", "dropout.mechanism": "mar", "dropout.fraction": 0.2,
        "analysis.multiplicity": "hochberg", "analysis.secondary": ["mmrm"], "analysis.covariates": ["age"]})
    cross = load_scenario(default_scenario_path().parent / "sun2017_duke_crossover.toml",
                          {"analysis.secondary": ["mmrm", "wilcoxon", "fisher", "crossover", "period2"]})
    for s in (royan, cross):
        one = cbcp_sim.simulate(s, reps=2100, seed=SEED, jobs=1)
        two = cbcp_sim.simulate(s, reps=2100, seed=SEED, jobs=2)
        _assert_same_replicates(one, two)
        pd.testing.assert_frame_equal(one.table, two.table)
