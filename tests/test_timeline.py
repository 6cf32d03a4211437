"""How long a trial takes: ``cbcp_sim.explore.timeline`` and ``cbcp-sim timeline``.

The timeline is the calendar of a run with ``operations.enabled`` and the same seed, so its milestones must equal
the engine's ``result.operations`` summary; its accrual curve counts the children randomised by each month of its
grid (checked against the calendars themselves and, for Poisson screening, against E[min(Poisson(λ m), N)]).
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

import cbcp_sim
from cbcp_sim.errors import InputError
from cbcp_sim.explore.timeline import BANDS, GRID_STEP, MAX_REPS, Timeline, timeline
from cbcp_sim.models import operations
from cbcp_sim.models.streams import Streams
from cbcp_sim.run.settings import RunSettings
from cbcp_sim.scenario import Scenario, default_scenario_path, load_scenario, scenario_from_dict

from .support import assert_one_line_error, cli

SEED = 4242
DEFAULT = str(default_scenario_path())
MILESTONES = ("last_child_in", "last_infusion", "last_primary_visit", "last_visit", "database_lock")


def _default(**overrides: object) -> Scenario:
    return load_scenario(DEFAULT, {"design.n_per_arm": 12, **overrides})


def test_milestones_equal_the_engine_summary():
    """The same scenario and seed: the timeline's milestone summary is the engine's result.operations, exactly,
    over two chunks (1,000 + 100 trials); the timeline switches the calendar on itself."""
    reps = 1100
    assert len(RunSettings(reps=reps).chunks()) == 2
    s = _default(**{"operations.enabled": True})
    result = cbcp_sim.simulate(s, reps=reps, seed=SEED)
    tl = timeline(s, RunSettings(reps=reps, seed=SEED))
    assert result.operations is not None
    assert operations.milestone_summary(tl.milestones) == result.operations
    assert tl.to_json()["milestones"] == result.operations
    off = timeline(_default(), RunSettings(reps=reps, seed=SEED))  # operations.enabled = false in the file
    for k in tl.milestones:
        np.testing.assert_array_equal(off.milestones[k], tl.milestones[k], err_msg=k)


def _calendars(s: Scenario, reps: int, seed: int) -> list[operations.Calendar]:
    """The calendars a timeline of ``s`` simulates, chunk by chunk."""
    s = replace(s, operations=replace(s.operations, enabled=True))
    return [operations.schedule(s, s.design.n_per_arm, True, n, Streams(seed, c))
            for c, n in enumerate(RunSettings(reps=reps).chunks())]


def test_json_and_accrual_curve():
    """to_json: title, n_children, n_reps, seed, enrolment_months and total_months (mean and 5/50/95% quantiles),
    every milestone, and the accrual curve (months, median and the 80% and 95% bands). The accrual is, trial by
    trial, the number of children randomised by each month of a 0.25-month grid: non-decreasing, from 0 at month 0
    (nobody is randomised before the unit lead time) to N at the end of the grid."""
    reps = 300
    s = _default()
    n = sum(s.design.n_per_arm)
    tl = timeline(s, RunSettings(reps=reps, seed=SEED))
    assert isinstance(tl, Timeline) and tl.n_children == n and tl.n_reps == reps and tl.seed == SEED
    data = tl.to_json()
    assert {"title", "n_children", "n_reps", "seed", "enrolment_months", "total_months", "milestones",
            "accrual"} <= data.keys()
    for key in ("enrolment_months", "total_months"):
        assert data[key].keys() == {"mean", "q05", "q50", "q95"}
    assert data["enrolment_months"] == data["milestones"]["last_child_in"]
    assert data["total_months"] == data["milestones"]["database_lock"]
    for k in MILESTONES:
        q = data["milestones"][k]
        assert all(math.isfinite(x) for x in q.values()) and q["q05"] <= q["q50"] <= q["q95"], k
    curve = data["accrual"]
    band_keys = [f"q{100 * q:g}" for pair in BANDS for q in pair]
    assert band_keys == ["q10", "q90", "q2.5", "q97.5"]
    assert curve.keys() == {"months", "median", *band_keys}
    months = np.asarray(curve["months"])
    assert months[0] == 0.0
    np.testing.assert_allclose(np.diff(months), GRID_STEP)
    assert months[-1] >= tl.milestones["last_child_in"].max() > months[-1] - GRID_STEP
    rows = [np.asarray(curve[k]) for k in ("q2.5", "q10", "median", "q90", "q97.5")]
    for row in rows:
        assert row.shape == months.shape
        assert (np.diff(row) >= 0).all()
        assert row[0] == 0.0 and row[-1] == n
    for lo, hi in itertools.pairwise(rows):
        assert (lo <= hi).all()
    # trial by trial, against the calendars themselves
    randomised = np.concatenate([c.randomised for c in _calendars(s, reps, SEED)])
    expected = (randomised[:, :, None] <= months).sum(axis=1)
    np.testing.assert_array_equal(tl.accrual, expected)
    assert (np.diff(tl.accrual, axis=1) >= 0).all() and (tl.accrual[:, -1] == n).all()
    np.testing.assert_array_equal(tl.milestones["last_child_in"], randomised.max(axis=1))
    table = str(tl)
    assert "enrolment (last child randomised)" in table and "total (database lock)" in table


def test_accrual_matches_poisson_counts():
    """One site screening λ a month, every child eligible, units at once: the mean accrual at month m is
    E[min(Poisson(λ m), N)] (within 3.5 Monte Carlo SEs)."""
    reps, rate = 1000, 6.0
    s = scenario_from_dict({}, {"population.source": "allogeneic", "operations.unit_lead_days": 0.0,
                                "operations.screening_rate": rate, "design.n_per_arm": 12})
    n = sum(s.design.n_per_arm)
    tl = timeline(s, RunSettings(reps=reps, seed=SEED))
    for m in (1.0, 2.0, 3.0):
        x = np.arange(n)
        dist = stats.poisson(rate * m)
        expected = (x * dist.pmf(x)).sum() + n * dist.sf(n - 1)
        got = tl.accrual[:, round(m / GRID_STEP)]
        se = got.std(ddof=1) / math.sqrt(reps)
        assert abs(got.mean() - expected) <= 3.5 * se, (m, got.mean(), expected, se)


@pytest.mark.parametrize(("kwargs", "field"), [({"reps": 0}, "reps"), ({"reps": MAX_REPS + 1}, "reps"),
                                               ({"reps": True}, "reps"), ({"reps": 2.0}, "reps"),
                                               ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed")])
def test_timeline_rejects_bad_reps_and_seed(kwargs, field):
    with pytest.raises(InputError) as info:
        timeline(_default(), RunSettings(**kwargs))
    assert info.value.path == field


# --- command line ------------------------------------------------------------------------------------------------


def test_cli_json_is_the_timeline(capsys):
    """``cbcp-sim timeline default.toml --reps 200 --json``: one JSON object, the timeline's own to_json."""
    code, out, err = cli(capsys, "timeline", DEFAULT, "--reps", "200", "--json")
    assert code == 0, err
    assert err == ""
    data = json.loads(out)
    assert data["n_reps"] == 200 and data["seed"] == 1
    assert {"enrolment_months", "total_months", "milestones", "accrual"} <= data.keys()
    assert data["accrual"].keys() >= {"months", "median"}
    assert data == json.loads(json.dumps(timeline(load_scenario(DEFAULT), RunSettings(reps=200, seed=1)).to_json()))


def test_cli_table_and_plot(capsys, tmp_path):
    """Without --json a table of milestones; --plot writes the accrual figure (PNG by extension)."""
    path = tmp_path / "a.png"
    code, out, err = cli(capsys, "timeline", DEFAULT, "--reps", "200", "--seed", "3", "--plot", str(path),
                         "--set", "operations.sites=2")
    assert code == 0, err
    assert "enrolment (last child randomised)" in out and "200 simulated trials; seed 3" in out
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("argv", "fragments"), [
    (["--reps", "0"], ["--reps"]),
    (["--seed", "-1"], ["--seed"]),
    (["--set", "operations.sites=0"], ["operations.sites"]),
    (["--set", "operations.window_days=[400]"], ["operations.window_days"]),
    (["--set", "operations.window_days=[7, 60, 60, 30]"], ["operations.window_days", "overlap"]),
    (["--set", "operations.window_days=[7, 14]"], ["operations.window_days"]),
    (["--set", "operations.screening_dispersion=-1"], ["operations.screening_dispersion"]),
])
def test_cli_bad_input_is_one_line_error(capsys, argv, fragments):
    code, out, err = cli(capsys, "timeline", DEFAULT, *argv)
    assert_one_line_error(code, out, err, *fragments)
    assert err.startswith(f"error: {fragments[0]}")
