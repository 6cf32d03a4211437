"""The web app's logic without a browser: inputs taken from the parameter declarations, the page's text read as
``--set`` reads it and validated by the CLI's loader, the commands it runs, the working folder it cannot leave, and
a command that stops when cancelled. ``tests/test_app_browser.py`` drives the page itself."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys

import pytest

from cbcp_sim.app import commands, fields, tasks
from cbcp_sim.cli import main as cli_main
from cbcp_sim.errors import InputError
from cbcp_sim.scenario import Scenario, load_scenario, parse_value
from cbcp_sim.scenario.schema import describe
from cbcp_sim.scenario.spec import bundled_scenarios, inline_toml


@pytest.fixture
def default() -> tuple[commands.Base, dict[str, list[fields.Field]]]:
    base = commands.Base.bundled("default")
    return base, fields.fields(load_scenario(base.path))


def _texts(form: dict[str, list[fields.Field]], **changes: str) -> dict[str, str]:
    """The page's texts: every field as shown, with ``changes`` (by path, dots as double underscores)."""
    by_path = {path.replace("__", "."): text for path, text in changes.items()}
    return {f.id: by_path.get(f.path, f.text) for group in form.values() for f in group}


def test_every_field_is_a_declared_parameter_with_its_unit_range_and_source(default):
    _, form = default
    declared = {row["path"]: row for row in describe(Scenario)}
    assert set(form) == set(fields.GROUPS)
    arms = [f"arms.{arm}.{key}" for arm in ("sham", "cord blood") for key in fields.ARM_KEYS]
    for group, group_fields in form.items():
        assert [f.path for f in group_fields] == [*fields.GROUPS[group], *(arms if group == "Design" else [])]
        for f in group_fields:
            row = declared[f"arms.<name>.{f.path.rsplit('.', 1)[1]}" if f.path.startswith("arms.") else f.path]
            assert (f.unit, f.allowed, f.doc, f.source) == (row["unit"], row["allowed"], row["doc"], row["source"])
    assert all(p in declared for paths in fields.GROUPS.values() for p in paths)


def test_an_arm_without_a_table_can_be_given_a_dose(default, capsys):
    base, form = default
    dose = next(f for f in form["Design"] if f.path == "arms.cord blood.dose")
    assert (dose.text, dose.origin, dose.unit) == ("", "not set", "10^7 cells/kg")
    built = fields.build(base.path, None, form, _texts(form, **{"arms.cord blood.dose".replace(".", "__"): "5"}))
    assert built.overrides == (("arms.cord blood.dose", 5),)
    regimen = next(r for r in built.scenario.regimens if r.name == "cord blood")
    assert [d.dose for d in regimen.doses] == [5.0]
    args = commands.scenario_args(base, None, built.overrides)
    assert cli_main(["params", *args, "--json"]) == 0
    rows = {r["path"]: r for r in json.loads(capsys.readouterr().out)}
    row = rows["arms.cord blood.dose"]
    assert (row["value"], row["origin"]) == ([5.0], "override (--set)")


def test_arms_get_their_regimen_fields():
    scenario = load_scenario(bundled_scenarios()["royan_pooled_three_arm"])
    paths = [f.path for f in fields.fields(scenario)["Design"]]
    assert "arms.UCB-MNC.dose" in paths and "arms.UCT-MSC.cells" in paths and "arms.sham.kind" in paths
    dose = next(f for f in fields.fields(scenario)["Design"] if f.path == "arms.UCB-MNC.dose")
    assert dose.text == "[0.5]" and dose.unit == "10^7 cells/kg"


def test_only_changed_fields_become_overrides_parsed_as_set_parses_them(default):
    _, form = default
    assert fields.overrides(form, _texts(form)) == []
    texts = _texts(form, design__n_per_arm=" 40 ", design__visits="[0, 6, 12]", treatment__cells="UCB-durable")
    assert fields.overrides(form, texts) == [("design.n_per_arm", 40), ("design.visits", [0, 6, 12]),
                                             ("treatment.cells", "UCB-durable")]
    with pytest.raises(InputError, match=r"design\.alpha: a value of at most 2000 characters"):
        fields.overrides(form, _texts(form, design__alpha="1" * 3000))


@pytest.mark.parametrize("value", [40, [0, 6, 12], "UCB-durable", {"1": 0.5, "2": 0.5}, 0.05, [30, 40]])
def test_values_go_to_the_command_line_as_they_came(value):
    assert parse_value(inline_toml(value)) == value


@pytest.mark.parametrize(("path", "text"), [("design.alpha", "2"), ("design.visits", "[0, 12, 6]"),
                                            ("population.gmfcs_mix", "[0.5, 0.6, 0, 0, 0]"),
                                            ("treatment.cells", "stem cells"), ("design.n_per_arm", "1e400")])
def test_an_invalid_value_gives_the_cli_message_and_its_field(default, capsys, path, text, tmp_path):
    base, form = default
    built = fields.build(base.path, None, form, _texts(form, **{path.replace(".", "__"): text}))
    assert built.scenario is None
    status = cli_main(["run", str(base.path), "--set", f"{path}={text}", "--reps", "10"])
    assert status == 2
    assert built.error == capsys.readouterr().err.strip()
    assert fields.field_of(built.error_path, form).path == path


def test_values_a_change_moves_are_noted_beside_their_fields(default):
    base, form = default
    built = fields.build(base.path, None, form, _texts(form, treatment__cells="UCB-durable"))
    noted = fields.notes(built.scenario, form, built.overrides)
    by_path = {f.id: f.path for group in form.values() for f in group}
    durable = load_scenario(base.path, [("treatment.cells", "UCB-durable")]).treatment
    assert "treatment.waning_half_life_months" in {by_path[i] for i in noted}
    assert all(by_path[i].startswith("treatment.") for i in noted)
    assert next(i for i, path in by_path.items() if path == "treatment.cells") not in noted  # given: no note
    waning = next(i for i in noted if by_path[i] == "treatment.waning_half_life_months")
    assert noted[waning] == f"simulated now: {fields.value_text(durable.waning_half_life_months)} (preset UCB-durable)"
    assert fields.notes(fields.build(base.path, None, form, _texts(form)).scenario, form, ()) == {}


def test_a_valid_page_is_the_scenario_the_command_line_reads(default):
    base, form = default
    built = fields.build(base.path, None, form, _texts(form, design__n_per_arm="40", dropout__fraction="0.1"))
    args = commands.scenario_args(base, None, built.overrides)
    assert args[1:] == ["--set", "design.n_per_arm=40", "--set", "dropout.fraction=0.1"]
    same = load_scenario(base.path, [("design.n_per_arm", 40), ("dropout.fraction", 0.1)])
    assert built.scenario.digest() == same.digest()


def test_the_working_folder_cannot_be_left():
    ws = commands.Workspace()
    try:
        for name in ("../escape.toml", "/etc/passwd", "", ".", "a/" + "../" * 2 + "b"):
            with pytest.raises(InputError):
                ws.inside(name)
        path = ws.save_upload(b'title = "x"\n')
        assert path == ws.root / commands.UPLOADED and path.read_bytes() == b'title = "x"\n'
        with pytest.raises(InputError, match="at most 1,000,000 bytes"):
            ws.save_upload(b"x" * (commands.MAX_UPLOAD_BYTES + 1))
        assert ws.fresh("run") != ws.fresh("run")
        assert sorted(p.name for p in ws.root.iterdir()) == [commands.UPLOADED]
    finally:
        ws.close()
    assert not ws.root.exists()


@pytest.mark.parametrize(("name", "shown"), [("../" * 2 + "etc/passwd", "passwd"), ("C:\\x\\trial.toml", "trial.toml"),
                                             ("a<script>.toml", "a_script_.toml"), ("/", "scenario.toml")])
def test_an_uploaded_name_is_only_shown_and_cleaned(name, shown):
    assert commands.shown_name(name) == shown


def test_an_uploaded_scenario_goes_through_the_cli_loader():
    ws = commands.Workspace()
    try:
        path = ws.save_upload(b"[design]\nalpha = 3\n")
        with pytest.raises(InputError, match=r"^design\.alpha: must be in \(0, 0\.5\], got 3$"):
            load_scenario(path)
        with pytest.raises(InputError, match="one of the bundled scenarios"):
            commands.Base.bundled("../default")
    finally:
        ws.close()


def test_commands_are_argument_lists_and_show_as_typed(default):
    base, _ = default
    ws = commands.Workspace()
    try:
        args = commands.scenario_args(base, "pooled", (("design.n_per_arm", 40),))
        run = commands.run(args, "2500", "3", "1", ws)
        assert run.argv()[:3] == [sys.executable, "-m", "cbcp_sim.cli"] and run.chunks == 3
        assert run.text(base, ws) == ("cbcp-sim run default --effect pooled --set design.n_per_arm=40 --reps 2500 "
                                      "--seed 3 --jobs 1 --out run-1")
        assert commands.run(args, "lots", "3", "1", ws).chunks is None  # the command line refuses it
        curve = commands.power_curve(args, "20:60:20", "1000", "1", "1", ws)
        assert "design.n_per_arm=20:60:20" in curve.args and curve.chunks == 3
        assert commands.power_curve(args, "20:x:5", "1000", "1", "1", ws).chunks is None  # the CLI refuses it
    finally:
        ws.close()


def test_every_command_is_one_the_cli_parses(default):
    """Each command the app builds is accepted by the CLI's own parser, with the values it was given."""
    from cbcp_sim.cli.commands import _parser

    base, _ = default
    ws = commands.Workspace()
    try:
        args = commands.scenario_args(base, None, (("design.n_per_arm", 40),))
        scenario = load_scenario(base.path, [("design.n_per_arm", 40)])
        built = [commands.run(args, "2000", "3", "2", ws), commands.sample_size(args, "0.8", "500", "3", "2", ws),
                 commands.power_curve(args, "20:60:20", "1000", "3", "2", ws, target="0.8"),
                 commands.assurance(args, "50", "100", "3", "2", ws), commands.tornado(args, "500", "3", "2", ws),
                 commands.trajectories(args, ws), commands.natural_history(scenario, args, ws),
                 commands.report(ws.root / "run-1", ws)]
        for command in built:
            parsed = _parser().parse_args(list(command.args))
            assert parsed.command == command.args[0]
            if hasattr(parsed, "settings"):
                assert parsed.settings == [("design.n_per_arm", 40)]
            if hasattr(parsed, "seed") and command.args[0] not in ("trajectories", "natural-history"):
                assert (parsed.seed, parsed.jobs) == (3, 2)
            if command.file is not None:
                assert ws.root in command.file.parents
        natural = _parser().parse_args(list(built[6].args))
        assert (natural.enrol_ages, natural.gmfcs, natural.mix, natural.follow_up) == \
            ((2.0, 10.0), (1, 2, 3, 4), (0.2, 0.3, 0.25, 0.25), 12.0)
    finally:
        ws.close()


def test_a_command_prints_what_the_cli_prints(capsys):
    outcome = asyncio.run(tasks.run(commands.Command(("scenarios", "--json"))))
    assert outcome.status == 0 and outcome.error == ""
    cli_main(["scenarios", "--json"])
    assert json.loads(outcome.stdout) == json.loads(capsys.readouterr().out)
    failed = asyncio.run(tasks.run(commands.Command(("run", "default", "--set", "design.alpha=2"))))
    assert failed.status == 2 and failed.error == "error: design.alpha: must be in (0, 0.5], got 2"
    ws = commands.Workspace()
    try:
        curve = commands.power_curve(["default"], "20:x:5", "100", "1", "1", ws)
        failed = asyncio.run(tasks.run(curve))
        assert cli_main(list(curve.args)) == 2
        assert failed.status == 2 and failed.error == capsys.readouterr().err.strip()
        assert failed.error.startswith("error: --grid: design.n_per_arm:")
    finally:
        ws.close()


def _group(pgid: int) -> list[str]:
    """The live processes of group ``pgid``: the command and the workers it started (an ended process not yet
    reaped by its new parent, state Z, is not alive)."""
    found = subprocess.run(["ps", "-eo", "pgid=,stat=,pid=,args="], capture_output=True, text=True,
                           check=True).stdout
    return [line for line in found.splitlines() if line.split()[0] == str(pgid) and not line.split()[1].startswith("Z")]


def test_cancel_stops_the_command_and_its_workers(tmp_path):
    out = tmp_path / "long-run"
    command = commands.Command(("run", "default", "--reps", "1000000", "--jobs", "2", "--out", str(out)), out,
                               chunks=1000)
    progress = tasks.Progress()

    async def start_then_cancel() -> None:
        task = asyncio.ensure_future(tasks.run(command, progress))
        while progress.done < 1:  # one chunk saved: the command and its workers are running
            await asyncio.sleep(0.1)
        assert progress.running and 0 < progress.fraction() < 1
        assert re.fullmatch(r"\d+ of 1000 chunks; \d+ s elapsed; about \d+ s left", progress.text()), progress.text()
        assert len(_group(progress.pid)) >= 2  # the command and its loky workers
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(start_then_cancel(), 120))
    assert not progress.running
    assert _group(progress.pid) == []


def test_the_app_command_needs_no_shiny_to_start_the_cli_and_says_how_to_install_it(monkeypatch, capsys):
    done = subprocess.run([sys.executable, "-c", "import sys, cbcp_sim.cli.commands; print('shiny' in sys.modules)"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    assert cli_main(["app", "--help"]) == 0
    assert "default 127.0.0.1: this machine only" in " ".join(capsys.readouterr().out.split())
    monkeypatch.setitem(sys.modules, "shiny", None)
    assert cli_main(["app", "--no-browser"]) == 2
    assert capsys.readouterr().err == "error: app: needs Shiny for Python: pip install 'cbcp_sim[app]'\n"
    assert cli_main(["app", "--no-browser", "--port", "70000"]) == 2
    assert capsys.readouterr().err == "error: --port: must be a whole number in [0, 65535], got 70000\n"


def test_the_default_host_is_this_machine_only():
    from cbcp_sim.app import DEFAULT_HOST

    assert DEFAULT_HOST == "127.0.0.1"
