"""Memory and time bounded before the work starts (issue 19, point 6).

Spec lines pinned here: "the working memory of a chunk is estimated from the scenario and the chunk size adapts (or
the run is refused with the reason and the limit) so that no allowed input exhausts memory; MMRM's visits and
grid sizes have stated limits".
"""

from __future__ import annotations

import tracemalloc
import warnings

import pytest

from cbcp_sim import load_scenario
from cbcp_sim.errors import ScenarioError
from cbcp_sim.explore.trials import trials as simulate_trials
from cbcp_sim.planning.sweep import MAX_POINTS
from cbcp_sim.run import budget
from cbcp_sim.run.engine import point_tasks, run_chunk, simulate
from cbcp_sim.run.settings import CHUNK_SIZE, RunSettings
from cbcp_sim.scenario.spec import MAX_MMRM_FOLLOW_UPS

from .support import assert_one_line_error, cli


def visits(k: int) -> dict[str, object]:
    """``k`` visits, baseline then evenly to month 12 (the primary visit)."""
    return {"design.visits": [0.0] + [12.0 * (i + 1) / (k - 1) for i in range(k - 1)], "design.primary_visit": 12}


#: Cheap chunks of every kind of work: designs, analyses (the rank sort and the MMRM are the largest), the calendar,
#: a selective eligibility (many children screened per child enrolled), and many visits.
CASES = {
    "default": ("default", {}),
    "wilcoxon, 800 children": ("default", {"design.n_per_arm": 400, "analysis.primary": "wilcoxon"}),
    "fisher, 17 visits": ("default", {"analysis.primary": "fisher", **visits(17)}),
    "mmrm, 9 visits": ("default", {"design.n_per_arm": 40, "analysis.primary": "mmrm", **visits(9)}),
    "mmrm, calendar": ("repeat_dose", {"operations.enabled": True}),
    "calendar, 17 visits": ("default", {"operations.enabled": True, **visits(17)}),
    "group sequential": ("group_sequential", {}),
    "crossover": ("sun2017_duke_crossover", {}),
    "single arm": ("lee2012_single_arm", {}),
    "selective eligibility": ("default", {"eligibility.gmfcs": [4], "population.gmfcs_mix": [0.4, 0.3, 0.2, 0.05,
                                                                                              0.05]}),
}


def traced_peak(scenario, reps: int) -> int:
    """Peak memory traced (numpy's arrays included) while a chunk of ``reps`` trials is simulated and analysed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an MMRM replicate that fails is counted, as in a run
        run_chunk(scenario, 1, 0, 2)  # caches (natural-history tables, the eligible share) are not the chunk's
        tracemalloc.start()
        try:
            run_chunk(scenario, 1, 0, reps)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


@pytest.mark.parametrize("name", list(CASES))
def test_the_estimate_bounds_the_traced_peak_of_a_chunk_from_above_within_a_factor(name):
    scenario = load_scenario(*CASES[name])
    reps = 100
    peak = traced_peak(scenario, reps)
    estimate = budget.chunk_memory(scenario).of(reps)
    assert peak <= estimate <= 8 * peak, (peak, estimate)


def test_the_default_scenario_keeps_its_chunk_size():
    """Chunk size is part of the random-number layout: the bundled scenarios' results do not move."""
    for name in ("default", "repeat_dose", "royan_pooled_three_arm", "group_sequential"):
        assert budget.fitted_chunk_size(load_scenario(name), CHUNK_SIZE) == CHUNK_SIZE


@pytest.mark.parametrize("n", [1000, 20_000, 100_000])
def test_a_large_trial_runs_in_chunks_that_fit_the_budget(n):
    scenario = load_scenario("default", {"design.n_per_arm": n})
    size = budget.fitted_chunk_size(scenario, CHUNK_SIZE)
    assert 1 <= size < CHUNK_SIZE
    assert budget.chunk_memory(scenario).of(size) <= budget.CHUNK_BUDGET
    assert budget.chunk_memory(scenario).of(size + 1) > budget.CHUNK_BUDGET
    assert [t.n_reps for t in point_tasks(scenario, RunSettings(reps=2 * size + 1))] == [size, size, 1]


def test_a_fitted_chunk_size_depends_on_the_scenario_only_and_keeps_one_result_for_any_jobs(monkeypatch):
    monkeypatch.setattr(budget, "CHUNK_BUDGET", 4 * 2**20)  # the default scenario in chunks of about 50
    scenario = load_scenario("default", {"outcome.model": "normal"})
    size = budget.fitted_chunk_size(scenario, CHUNK_SIZE)
    assert 10 < size < 100
    one = simulate(scenario, reps=300, seed=3, jobs=1, progress=False)
    two = simulate(scenario, reps=300, seed=3, jobs=2, progress=False)
    assert one.table.equals(two.table)
    trials = simulate_trials(load_scenario("default"), count=size + 5, seed=3)
    per_trial = trials.groupby("trial")["id"].nunique()
    assert list(per_trial.index) == list(range(size + 5)) and (per_trial == 72).all()  # numbered across chunks


def test_a_run_that_cannot_fit_the_machine_is_refused_before_any_work(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(budget, "available_memory", lambda: 2**30)
    out = tmp_path / "out"
    code, stdout, err = cli(capsys, "run", "--set", "design.n_per_arm=100000", "--reps", "50", "--quiet",
                            "--out", str(out))
    assert_one_line_error(code, stdout, err, "design:", "200,000 children x 5 visits", "working memory",
                          "over the 1.0 GiB available", "design.n_per_arm")
    assert not (out / "chunks").exists() or not any((out / "chunks").iterdir())
    code, stdout, err = cli(capsys, "run", "--set", "design.n_per_arm=2000", "--reps", "50", "--quiet",
                            "--jobs", "2")
    assert code == 0, err  # two chunks of 50 trials fit


def test_jobs_are_counted_in_the_memory_a_run_needs(monkeypatch):
    scenario = load_scenario("default", {"design.n_per_arm": 5000})
    one = budget.chunk_memory(scenario).of(100) + budget.RESERVE
    budget.check_fits(scenario, 100, 1, available=one)
    with pytest.raises(ScenarioError, match=r"on 2 jobs at once .* or use fewer --jobs"):
        budget.check_fits(scenario, 100, 2, available=one)


def test_mmrm_visits_have_a_stated_limit(capsys):
    most = visits(MAX_MMRM_FOLLOW_UPS + 1)
    assert load_scenario("default", {"analysis.primary": "mmrm", **most}).design.visits == tuple(most["design.visits"])
    too_many = ",".join(f"{12 * i / (MAX_MMRM_FOLLOW_UPS + 1):g}" for i in range(MAX_MMRM_FOLLOW_UPS + 2))
    for analysis in ("analysis.primary=mmrm", 'analysis.secondary=["mmrm"]'):
        assert_one_line_error(*cli(capsys, "run", "--set", analysis, "--set", f"design.visits=[{too_many}]"),
                              "design.visits", f"at most {MAX_MMRM_FOLLOW_UPS} follow-up visits, got 25")
    code, _, err = cli(capsys, "run", "--set", f"design.visits=[{too_many}]", "--reps", "20", "--quiet")
    assert code == 0, err  # other analyses take up to 60 visits


def test_a_sweep_grid_has_a_stated_limit(capsys, tmp_path):
    assert_one_line_error(*cli(capsys, "sweep", "--out", str(tmp_path / "out"), "--grid",
                               f"design.n_per_arm=2:{MAX_POINTS + 3}:1"),
                          f"at most {MAX_POINTS}")


def test_an_mmrm_with_baseline_as_a_response_is_estimated_with_its_extra_visit():
    covariate = load_scenario("repeat_dose", {"design.n_per_arm": 40})
    response = load_scenario("repeat_dose", {"design.n_per_arm": 40, "analysis.mmrm_baseline": "response"})
    assert budget.chunk_memory(response).per_replicate > budget.chunk_memory(covariate).per_replicate
    assert traced_peak(response, 50) <= budget.chunk_memory(response).of(50)
