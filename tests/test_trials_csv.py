"""``cbcp-sim trials`` and ``cbcp_sim.explore.trials.trials``: simulated trials written in exactly the long format
``analyze`` reads, and the round trip back to the run's own estimates.

Spec (issue 18, point 12): "`cbcp-sim trials SCENARIO --count K --out trials.csv` writes simulated trials in exactly
the format `analyze` reads, so a user can see what simulated data look like and try `analyze` on them (round trip
tested)." Columns trial, id, arm (the arm's name), visit (months), baseline, value, and the covariates age, gmfcs and
dose; one row per child and post-baseline visit observed, a missed visit an absent row; trial k of the file is trial
k of a run of K trials with that seed.

References: the engine itself. ``models.trial.generate`` with ``Streams(seed, chunk)`` (what ``run.engine.run_chunk``
analyses) gives the arrays the file must hold bit for bit, ``analysis.analyse`` on replicate k alone gives the
estimate ``analyze`` must give exactly, and ``cbcp_sim.simulate(...).replicates`` the run's estimates, which differ
from a replicate analysed alone only by the rounding of numpy's batched sums (~1e-15; MMRM iterates: ~1e-13).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cbcp_sim
from cbcp_sim.analysis import accepts, analyse
from cbcp_sim.analysis.long_data import read_long
from cbcp_sim.analysis.real_data import analyze
from cbcp_sim.errors import SettingsError
from cbcp_sim.explore.trials import COLUMNS, MAX_COUNT, trials
from cbcp_sim.models import trial as trial_model
from cbcp_sim.models.streams import Streams
from cbcp_sim.run.settings import CHUNK_SIZE

from .support import assert_one_line_error, cli

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "scenarios" / "default.toml"
COVARIATES = ("age", "gmfcs", "dose", "weight")
#: Two-arm scenarios whose data are laid out differently: every visit with heavy dropout (children who miss every
#: visit after baseline), block randomisation (arms per trial, not a broadcast view), a trial calendar (missed
#: visits), and the normal outcome model.
VARIANTS = {
    "every visit, dropout": {"analysis.secondary": ["ttest", "mmrm"], "dropout.fraction": 0.4},
    "blocks": {"design.randomisation": "blocks", "design.n_per_arm": 20},
    "calendar": {"operations.enabled": True, "analysis.secondary": ["mmrm"], "design.n_per_arm": 20},
    "normal": {"outcome.model": "normal", "design.n_per_arm": 15},
    "covariates": {"analysis.covariates": ["age", "gmfcs"], "analysis.secondary": ["mmrm"], "design.n_per_arm": 20},
}
SEED = 7
COUNT = 6


def scenario(variant: str) -> cbcp_sim.Scenario:
    return cbcp_sim.load_scenario(DEFAULT, VARIANTS[variant])


def engine_arrays(s: cbcp_sim.Scenario, count: int, seed: int) -> trial_model.TrialData:
    """The arrays chunk 0 of a run of ``count`` trials simulates (as run.engine.run_chunk does)."""
    assert count <= CHUNK_SIZE
    return trial_model.generate(s, count, Streams(seed, 0))


# --- what the file holds --------------------------------------------------------------------------------------------


def test_columns_rows_and_types():
    """Columns in order; trials 0..K-1; ids 1..N; arms by name; the visits the run simulates (baseline and the
    primary visit for ancova and ttest); baseline the same on every row of a child; gmfcs whole levels."""
    s = cbcp_sim.load_scenario(DEFAULT)
    frame = trials(s, 3, SEED)
    assert tuple(frame.columns) == COLUMNS
    assert sorted(set(frame["trial"])) == [0, 1, 2]
    n = sum(s.design.n_per_arm)
    assert frame.groupby("trial")["id"].nunique().tolist() == [n] * 3
    assert set(frame["id"]) == set(range(1, n + 1))
    assert set(frame["arm"]) == set(s.design.arms)
    assert set(frame["visit"]) == {12.0}
    assert (frame.groupby(["trial", "id"])["baseline"].nunique() == 1).all()
    assert frame["gmfcs"].dtype.kind == "i" and set(frame["gmfcs"]) <= {1, 2, 3, 4}
    assert frame.sort_values(["trial", "id", "visit"], kind="stable").index.tolist() == frame.index.tolist()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_file_holds_the_engines_arrays_bit_for_bit(tmp_path, variant):
    """Each trial read back from the CSV file (analyze's reader, control = the first arm's name) is the engine's
    replicate: the same scores where observed, the same observed mask (a missed visit an absent row; a child who
    missed every visit after baseline keeps one row with an empty value), arms and covariates, bit for bit."""
    s = scenario(variant)
    path = tmp_path / "trials.csv"
    trials(s, COUNT, SEED, out=path)
    data = engine_arrays(s, COUNT, SEED)
    arm = np.broadcast_to(data.arm, data.observed.shape[:2])
    covariates = tuple(data.covariates)  # the normal model has none
    assert covariates in (COVARIATES, ())
    for k in range(COUNT):
        long = read_long(path, covariates, control=s.design.arms[0], trial=k)
        assert np.array_equal(long.months, data.months)
        assert np.array_equal(long.observed, data.observed[k:k + 1])
        assert np.array_equal(long.values, np.where(data.observed[k:k + 1], data.values[k:k + 1], np.nan),
                              equal_nan=True)
        assert np.array_equal(long.treated, arm[k] == 1)
        assert np.array_equal(long.covariates[0], np.stack([data.covariates[c][k] for c in covariates], axis=-1)
                              if covariates else np.zeros((arm.shape[1], 0)))
        assert long.ids.tolist() == [str(i) for i in range(1, arm.shape[1] + 1)]
        assert long.arms == tuple(s.design.arms)


def test_a_child_who_missed_every_visit_keeps_one_empty_row():
    """Heavy dropout: the children with no value after baseline have exactly one row, at the first visit after
    baseline, with an empty value; every other row has a value."""
    s = scenario("every visit, dropout")
    frame = trials(s, COUNT, SEED)
    data = engine_arrays(s, COUNT, SEED)
    lost = ~data.observed[..., 1:].any(axis=-1)
    assert lost.sum() > 0
    empty = frame[frame["value"].isna()]
    assert sorted(zip(empty["trial"], empty["id"], strict=True)) == [(int(r), int(i) + 1) for r, i in
                                                                     zip(*np.nonzero(lost), strict=True)]
    assert (empty["visit"] == data.months[1]).all()
    assert len(frame) == data.observed[..., 1:].sum() + lost.sum()


def test_trial_numbers_follow_the_runs_chunks():
    """Past the first chunk, trial k is trial k - CHUNK_SIZE of chunk 1 (Streams(seed, 1)), as in a run."""
    s = cbcp_sim.load_scenario(DEFAULT, {"design.n_per_arm": 4})
    frame = trials(s, CHUNK_SIZE + 2, SEED)
    assert frame["trial"].max() == CHUNK_SIZE + 1
    chunk1 = trial_model.generate(s, 2, Streams(SEED, 1))
    for r in range(2):
        rows = frame[frame["trial"] == CHUNK_SIZE + r]
        assert rows.drop_duplicates("id")["baseline"].tolist() == chunk1.values[r, :, 0].tolist()


# --- the round trip: analyze gives the run's estimates ---------------------------------------------------------------


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_analyze_of_trial_k_is_the_runs_estimate_for_trial_k(tmp_path, variant):
    """analyze(file, method, control=first arm, trial=k) of every analysis the run makes equals the engine's analysis
    of replicate k alone exactly (its arrays laid out in memory as analyze's are: the layout changes the order of
    numpy's sums), and the run's own estimate for trial k (simulate with the same seed and K trials) to the
    rounding of its batched sums."""
    s = scenario(variant)
    path = tmp_path / "trials.csv"
    trials(s, COUNT, SEED, out=path)
    run = cbcp_sim.simulate(s, reps=COUNT, seed=SEED, jobs=1)
    data = engine_arrays(s, COUNT, SEED)
    arm = np.broadcast_to(data.arm, data.observed.shape[:2])
    primary = int(np.flatnonzero(data.months == s.design.primary_visit)[0])
    assert set(run.replicates) == set(s.analyses)
    for name in s.analyses:
        for k in range(COUNT):
            adjusted = s.analysis.covariates if "covariates" in accepts(name) else ()
            got = analyze(path, method=name, control=s.design.arms[0], trial=k, visit=s.design.primary_visit,
                          covariates=adjusted)
            alone = analyse(name, np.ascontiguousarray(data.values[k:k + 1]),
                            np.ascontiguousarray(data.observed[k:k + 1]), arm[k] == 1, primary,
                            endpoint=s.analysis.endpoint,
                            covariates=np.stack([data.covariates[c][k:k + 1] for c in adjusted], axis=-1)
                            if adjusted else None)
            assert (got.estimate, got.se, got.df) == (alone.estimate[0], alone.se[0], alone.df[0]), (name, k)
            rel = 1e-9 if name == "mmrm" else 1e-12
            assert got.estimate == pytest.approx(run.replicates[name]["estimate"][k], rel=rel, abs=1e-12), (name, k)
            assert got.se == pytest.approx(run.replicates[name]["se"][k], rel=rel), (name, k)


def test_cli_trials_then_cli_analyze_gives_the_runs_estimates(capsys, tmp_path):
    """`cbcp-sim trials --count K --seed S --out FILE` then `cbcp-sim analyze FILE --method M --control sham --trial k
    --json`: the run's estimates (run --reps K --seed S) for every analysis and trial."""
    path = tmp_path / "trials.csv"
    code, out, err = cli(capsys, "trials", str(DEFAULT), "--count", "4", "--seed", str(SEED), "--out", str(path),
                         "--set", 'analysis.secondary=["mmrm"]')
    assert code == 0 and err == "", err
    assert out.splitlines()[0].startswith("Autologous cord blood")
    assert f"4 simulated trials (seed {SEED}) of 72 children (sham, cord blood)" in out
    assert f"cbcp-sim analyze {path} --method ancova --control sham --trial 0" in out
    s = cbcp_sim.load_scenario(DEFAULT, {"analysis.secondary": ["mmrm"]})
    run = cbcp_sim.simulate(s, reps=4, seed=SEED, jobs=1)
    for name in ("ancova", "mmrm"):
        for k in range(4):
            code, out, err = cli(capsys, "analyze", str(path), "--method", name, "--control", "sham", "--trial",
                                 str(k), "--json")
            assert code == 0, err
            got = json.loads(out)
            assert got["estimate"] == pytest.approx(run.replicates[name]["estimate"][k], rel=1e-9, abs=1e-12)
            assert got == analyze(path, method=name, control="sham", trial=k).to_json()


def test_cli_prints_the_csv_without_out(capsys, tmp_path):
    """Without --out the CSV is printed: the same text as the file --out writes; a file of one trial is analysed
    without --trial."""
    code, printed, err = cli(capsys, "trials", "--count", "1", "--seed", "3", "--set", "design.n_per_arm=8")
    assert code == 0 and err == ""
    path = tmp_path / "one.csv"
    assert cli(capsys, "trials", "--count", "1", "--seed", "3", "--set", "design.n_per_arm=8", "--out",
               str(path))[0] == 0
    assert printed == path.read_text()
    assert printed.splitlines()[0] == ",".join(COLUMNS)
    code, out, err = cli(capsys, "analyze", str(path), "--method", "ttest", "--control", "sham")
    assert code == 0 and out.startswith(f"{path}: cord blood minus sham"), err


def test_cli_effect_and_set_change_the_scenario(capsys, tmp_path):
    """--effect and --set apply as for run: a scenario's effect hypothesis by name, dotted-path overrides."""
    path = tmp_path / "t.csv"
    scenario_file = ROOT / "scenarios" / "repeat_dose.toml"
    code, out, err = cli(capsys, "trials", str(scenario_file), "--effect", "pooled", "--set", "design.n_per_arm=5",
                         "--out", str(path))
    assert code == 0, err
    want = trials(cbcp_sim.load_scenario(scenario_file, {"design.n_per_arm": 5}, "pooled"), 1, 1)
    got = pd.read_csv(path)
    assert len(got) == len(want) and got["value"].tolist() == pytest.approx(want["value"].tolist(), nan_ok=True)
    assert "pooled" in out.splitlines()[0]


# --- errors -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "path", "fragment"), [
    ({"count": 0}, "count", f"[1, {MAX_COUNT}]"), ({"count": 2.5}, "count", "whole number"),
    ({"count": MAX_COUNT + 1}, "count", "got"), ({"seed": -1}, "seed", "whole number"),
])
def test_python_errors_name_the_parameter(kwargs, path, fragment):
    with pytest.raises(SettingsError) as info:
        trials(DEFAULT, **kwargs)
    assert info.value.path == path and fragment in info.value.message and "--" not in str(info.value)


def test_cli_errors_name_the_option(capsys, tmp_path):
    assert_one_line_error(*cli(capsys, "trials", "--count", "0"), "error: --count:", f"[1, {MAX_COUNT}]")
    assert_one_line_error(*cli(capsys, "trials", "--seed", "-2"), "error: --seed:")
    assert_one_line_error(*cli(capsys, "trials", "--out", str(tmp_path)), "error: --out:", "directory")
    assert_one_line_error(*cli(capsys, "trials", "--out", str(tmp_path / "no" / "such.csv")), "error: --out:")
    assert_one_line_error(*cli(capsys, "trials", "--set", "design.n_per_arm=0"), "design.n_per_arm")
    with pytest.raises(SettingsError) as info:
        trials(DEFAULT, out=tmp_path)
    assert info.value.path == "out"
