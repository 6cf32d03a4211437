"""The docs document the public interface: the README opens with the two commands and is a guide that links every
page of docs/; docs/scenarios.md lists every scenario key, docs/cli.md every --json field; every link between the
pages reaches its file and its anchor."""

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
#: The command reference: every command, its options and its --json fields (a stable interface).
CLI = (ROOT / "docs" / "cli.md").read_text()


def _docs_builder():
    spec = importlib.util.spec_from_file_location("docs_build", ROOT / "docs" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: The scenario reference: every key (generated) and the published trials' powers (docs/build.py writes both).
SCENARIOS_PAGE = (ROOT / _docs_builder().SCENARIOS_PAGE).read_text()


def test_readme_opens_with_run_and_test_commands_and_ci_calls_the_test_command():
    first_block = re.search(r"```sh\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()]
    assert commands == ["make run", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text().splitlines()


def test_scenarios_page_lists_every_scenario_key():
    missing = [row["path"] for row in describe(Scenario) if f"| {row['path']} |" not in SCENARIOS_PAGE]
    assert not missing


def test_command_reference_lists_every_json_field():
    fields = [*PRIMARY_FIELDS, "n_reps", "seed", "jobs", "seconds", "screen_failure", "scenario_digest", "analyses",
              "operations", "sequential", "critical_z", "alpha_spent", "nominal_p", "enrolment_months",
              "total_months"]
    assert not [f for f in fields if f"`{f}`" not in CLI]


def test_every_parameter_cites_a_source():
    assert all(row["source"] and row["doc"] for row in describe(Scenario))


@pytest.mark.parametrize(("page", "prefixes"), _docs_builder().PAGES)
def test_generated_parameter_tables_are_current(page, prefixes):
    """The scenarios page and the model pages show the parameters exactly as declared (regenerate: python
    docs/build.py)."""
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


def test_command_reference_lists_every_trajectories_json_field():
    """Every key that `cbcp-sim trajectories --json` prints is documented in docs/cli.md."""
    from cbcp_sim.explore.trajectories import trajectories
    from cbcp_sim.scenario import load_scenario

    out = trajectories(load_scenario(ROOT / "scenarios" / "default.toml"), n_children=100).to_json()
    keys = {*out, *out["arms"][0]}
    assert not [k for k in sorted(keys) if f"`{k}`" not in CLI]


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


def test_command_reference_lists_every_planning_output_field(tmp_path):
    """Each field of the sweep table and of the sample-size, assurance and sensitivity --json is in docs/cli.md."""
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
    assert not sorted(f for f in fields if f"`{f}`" not in CLI)


def test_readme_links_every_docs_page_and_lists_every_bundled_scenario():
    """The README is the guide: its Documentation index links each page of docs/, and its table names each
    bundled scenario."""
    from cbcp_sim.scenario.spec import bundled_scenarios

    index = README.split("\n## Documentation\n", 1)[1]
    assert not [p.name for p in sorted((ROOT / "docs").glob("*.md")) if f"](docs/{p.name})" not in index]
    assert not [name for name in bundled_scenarios() if f"| `{name}` |" not in README]


#: The pages whose links are checked.
PAGES_LINKED = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "notebooks" / "README.md",
                ROOT / "benchmarks" / "README.md")


def _without_code(text: str) -> str:
    return re.sub(r"```.*?```", "", text, flags=re.S)


def _slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation but hyphens and underscores dropped, spaces as
    hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(text: str) -> set[str]:
    """The anchors of a Markdown page: its headings' (a repeated one numbered -1, -2, ...) and its ``<a id>``s."""
    out, seen = set(re.findall(r'<a id="([^"]+)"', text)), {}
    for heading in re.findall(r"^#{1,6} (.+)$", _without_code(text), flags=re.M):
        slug = _slug(heading)
        out.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return out


def _broken_links(text: str, where: Path) -> list[str]:
    """The relative links of ``text`` (a page in directory ``where``) whose file or anchor does not exist."""
    bad = []
    for link in re.findall(r"\]\(([^)\s]+)\)", _without_code(text)):
        if re.match(r"[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = where / path if path else None
        missing_file = target is not None and not target.exists()
        checked = anchor and not missing_file and (target is None or target.suffix == ".md")
        if missing_file or (checked and anchor not in _anchors(target.read_text() if target else text)):
            bad.append(link)
    return bad


def test_every_link_between_pages_reaches_its_file_and_anchor():
    bad = [f"{p.relative_to(ROOT)}: {link}" for p in PAGES_LINKED for link in _broken_links(p.read_text(), p.parent)]
    assert not bad, "links to no file or no anchor:\n" + "\n".join(bad)


def test_the_link_check_catches_a_missing_file_or_anchor():
    docs = ROOT / "docs"
    assert _broken_links("[a](cli.md#--json-fields-a-stable-interface) [b](../README.md#using-it)", docs) == []
    assert _broken_links("[a](#x)\n\n## X", docs) == []
    assert _broken_links("[a](cli.md#no-such-heading) [b](nothing.md) [c](docs/cli.md) [d](#y)", docs) == [
        "cli.md#no-such-heading", "nothing.md", "docs/cli.md", "#y"]
    assert _anchors("## `cbcp-sim run`: one scenario\n## Bayesian go/no-go\n## Bayesian go/no-go") == {
        "cbcp-sim-run-one-scenario", "bayesian-gono-go", "bayesian-gono-go-1"}
