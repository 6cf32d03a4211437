"""The README documents the public interface: its first commands, every scenario key, every --json field."""

from __future__ import annotations

import re
from pathlib import Path

from cbcp_sim.result import PRIMARY_FIELDS
from cbcp_sim.scenario import Scenario
from cbcp_sim.schema import describe

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_opens_with_run_and_test_commands_and_ci_calls_the_test_command():
    first_block = re.search(r"```sh\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()]
    assert commands == ["make run", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text().splitlines()


def test_readme_lists_every_scenario_key():
    missing = [row["path"] for row in describe(Scenario) if f"| {row['path']} |" not in README]
    assert not missing


def test_readme_lists_every_json_field():
    fields = [*PRIMARY_FIELDS, "n_reps", "seed", "jobs", "seconds", "screen_failure", "scenario_digest", "analyses"]
    assert not [f for f in fields if f"`{f}`" not in README]


def test_every_parameter_cites_a_source():
    assert all(row["source"] and row["doc"] for row in describe(Scenario))
