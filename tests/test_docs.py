"""The README documents the public interface: its first commands, every scenario key, every --json field."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from cbcp_sim.run.result import PRIMARY_FIELDS
from cbcp_sim.scenario import Scenario
from cbcp_sim.scenario.schema import describe

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _docs_builder():
    spec = importlib.util.spec_from_file_location("docs_build", ROOT / "docs" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_opens_with_run_and_test_commands_and_ci_calls_the_test_command():
    first_block = re.search(r"```sh\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()]
    assert commands == ["make run", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text().splitlines()


def test_readme_lists_every_scenario_key():
    missing = [row["path"] for row in describe(Scenario) if f"| {row['path']} |" not in README]
    assert not missing


def test_readme_lists_every_json_field():
    fields = [*PRIMARY_FIELDS, "n_reps", "seed", "jobs", "seconds", "screen_failure", "scenario_digest", "analyses",
              "operations", "sequential", "critical_z", "alpha_spent", "nominal_p", "enrolment_months",
              "total_months"]
    assert not [f for f in fields if f"`{f}`" not in README]


def test_every_parameter_cites_a_source():
    assert all(row["source"] and row["doc"] for row in describe(Scenario))


@pytest.mark.parametrize(("page", "prefixes"), _docs_builder().PAGES)
def test_generated_parameter_tables_are_current(page, prefixes):
    """README and the model page show the parameters exactly as declared (regenerate: python docs/build.py)."""
    build = _docs_builder()
    text = (ROOT / page).read_text()
    block = re.search(r"<!-- params:start -->\n(.*?)\n<!-- params:end -->", text, re.S).group(1)
    assert block == build.table(prefixes)


def test_treatment_page_presets_table_is_current_and_figures_exist():
    """docs/treatment.md shows the presets exactly as declared and every figure it links exists."""
    text = (ROOT / "docs" / "treatment.md").read_text()
    block = re.search(r"<!-- presets:start -->\n(.*?)\n<!-- presets:end -->", text, re.S).group(1)
    assert block == _docs_builder().presets_table()
    figures = re.findall(r"\]\((figures/[^)]+)\)", text)
    assert len(figures) == 3
    assert all((ROOT / "docs" / f).is_file() for f in figures)


def test_natural_history_page_shows_a_figure_for_every_level():
    text = (ROOT / "docs" / "natural_history.md").read_text()
    for g in range(1, 6):
        figure = f"figures/natural_history_gmfcs{g}.png"
        assert f"]({figure})" in text
        assert (ROOT / "docs" / figure).stat().st_size > 10_000


def test_readme_lists_every_trajectories_json_field():
    """Every key that `cbcp-sim trajectories --json` prints is documented in the README."""
    from cbcp_sim.explore.trajectories import trajectories
    from cbcp_sim.scenario import load_scenario

    out = trajectories(load_scenario(ROOT / "scenarios" / "default.toml"), n_children=100).to_json()
    keys = {*out, *out["arms"][0]}
    assert not [k for k in sorted(keys) if f"`{k}`" not in README]


def _keys(obj):
    """Every key of a nested JSON object and of the dicts in its lists (not inside ``priors``: scenario keys)."""
    out = set()
    items = obj.items() if isinstance(obj, dict) else ()
    for k, v in items:
        out.add(k)
        if k == "priors":
            continue
        rows = v if isinstance(v, list) else [v]
        for row in rows:
            out |= _keys(row)
    return out


def test_readme_lists_every_planning_output_field(tmp_path):
    """Each field of the sweep table and of the sample-size, assurance and sensitivity --json is in the README."""
    import json

    from cbcp_sim.cli import main

    base = ["--set", "outcome.model=normal", "--set", "outcome.effect=3", "--jobs", "1", "--seed", "1"]
    outputs = []
    for command in (["sample-size", "--reps", "300", "--json"],
                    ["assurance", "--draws", "4", "--reps-per-draw", "20", "--json"],
                    ["sensitivity", "--samples", "12", "--reps", "100", "--json",
                     "--range", "outcome.effect=1:3", "--range", "outcome.sd=4:6"]):
        path = tmp_path / command[0]
        assert main([*command, *base, "--out", str(path)]) == 0
        outputs.append(json.loads((path / "result.json").read_text()))
    assert main(["sweep", "scenarios/default.toml", "--grid", "outcome.effect=1,2", "--reps", "200", *base,
                 "--out", str(tmp_path / "sweep")]) == 0
    columns = (tmp_path / "sweep" / "results.csv").read_text().splitlines()[0].split(",")
    fields = set().union(*map(_keys, outputs)) | {c for c in columns if "." not in c}
    assert not sorted(f for f in fields if f"`{f}`" not in README)
