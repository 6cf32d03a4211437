"""The app's server: the scenario the page describes, the commands it runs as extended tasks, and what it shows.

Every number on the page is printed by ``cbcp-sim`` itself (:mod:`cbcp_sim.app.commands`), so the page and the
command line agree by construction; the scenario is read by the CLI's loader (:func:`cbcp_sim.app.fields.build`).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pandas as pd
from shiny import App, Inputs, Outputs, Session, reactive, render, ui

from cbcp_sim.app import commands, fields, layout, tasks
from cbcp_sim.errors import InputError, printable
from cbcp_sim.scenario import Scenario, load_scenario

#: Columns of the run's summary.csv shown under its text.
TABLE_COLUMNS = ("analysis", "comparison", "role", "power", "mcse", "ci_low", "ci_high", "type1_error", "bias",
                 "n_reps")
#: What the effect select shows for "no effect hypothesis": the file as written.
AS_WRITTEN = "(as written)"


def whole(value: Any) -> str:
    """A numeric input as an option's text: a whole number without ``.0`` (the CLI refuses what is not whole)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _progress(task: Any, progress: tasks.Progress) -> Any:
    """A running task's progress bar with its text (redrawn every half second), else how it ended."""
    state = task.status()
    if state != "running":
        return ui.tags.small({"cancelled": "Cancelled.", "success": "Done.", "error": "Failed."}.get(state, ""))
    reactive.invalidate_later(0.5)
    fraction = progress.fraction()
    width = f"{100 * (fraction if fraction is not None else 0.0):.0f}%"
    return ui.div(ui.div(ui.div(style=f"width: {width}"), class_="bar"), ui.tags.small(progress.text()),
                  class_="progress-block")


def server(input: Inputs, output: Outputs, session: Session) -> None:
    workspace = commands.Workspace()
    base = reactive.value(commands.Base.bundled("default"))
    upload_error = reactive.value("")
    last_run: reactive.Value[tuple[commands.Command, commands.Base, Scenario] | None] = reactive.value(None)
    run_state, plan_state = tasks.Progress(), tasks.Progress()
    run_message, plan_message = reactive.value(""), reactive.value("")
    pending: dict[str, Any] = {}

    @reactive.effect
    @reactive.event(input.bundled)
    def _bundled() -> None:
        upload_error.set("")
        base.set(commands.Base.bundled(input.bundled()))

    @reactive.effect
    @reactive.event(input.upload)
    def _upload() -> None:
        info = (input.upload() or [None])[0]
        if info is None:
            return
        try:
            with Path(info["datapath"]).open("rb") as fh:  # Shiny's own copy; no more than the limit is read
                data = fh.read(commands.MAX_UPLOAD_BYTES + 1)
            path = workspace.save_upload(data)
            load_scenario(path)  # the CLI's loader and every check, before the page takes it
        except InputError as exc:
            upload_error.set(f"error: {printable(str(exc))}")
            return
        upload_error.set("")
        base.set(commands.Base(path, commands.shown_name(str(info["name"]))))

    @reactive.calc
    def base_scenario() -> Scenario:
        return load_scenario(base().path)

    @reactive.calc
    def form() -> dict[str, list[fields.Field]]:
        return fields.fields(base_scenario())

    @reactive.calc
    def effect() -> str | None:
        chosen = input.effect() if "effect" in input else AS_WRITTEN
        names = [name for name, _ in base_scenario().effects]
        return chosen if chosen in names else None

    @reactive.calc
    def built() -> fields.Built:
        texts = {f.id: input[f.id]() for group in form().values() for f in group if f.id in input}
        return fields.build(base().path, effect(), form(), texts)

    def scenario_args() -> list[str]:
        return commands.scenario_args(base(), effect(), built().overrides)

    @render.ui
    def effect_choice() -> Any:
        names = [AS_WRITTEN, *(name for name, _ in base_scenario().effects)]
        return ui.input_select("effect", "Effect hypothesis ([effects.<name>])", choices=names)

    @render.text
    def scenario_title() -> str:
        b = built()
        return b.scenario.heading if b.scenario is not None else base_scenario().heading

    @render.text
    def status() -> str:
        b = built()
        if upload_error():
            return upload_error()
        return b.error if b.error and fields.field_of(b.error_path, form()) is None else ""

    @reactive.effect
    async def _field_messages() -> None:
        b = built()
        f = fields.field_of(b.error_path, form()) if b.error else None
        notes = fields.notes(b.scenario, form(), b.overrides) if b.scenario is not None else {}
        await session.send_custom_message("fields", {"id": f.id if f else "", "text": b.error, "notes": notes})

    @render.ui
    def scenario_form() -> Any:
        return ui.layout_columns(
            *(ui.card(ui.card_header(group), *map(layout.field_block, group_fields))
              for group, group_fields in form().items()),
            col_widths=(6, 6),
        )

    # --- 2 Look before running -------------------------------------------------------------------------------------
    @reactive.extended_task
    async def look_task(trajectories: commands.Command, natural: commands.Command) -> tuple[Any, ...]:
        first = await tasks.run(trajectories, cwd=str(workspace.root))
        second = await tasks.run(natural, cwd=str(workspace.root))
        return first, trajectories.file, second, natural.file

    @reactive.effect
    def _look() -> None:
        if input.screen() != "look":
            return
        b = built()
        if b.scenario is None:
            look_task.cancel()
            return
        args = scenario_args()
        with reactive.isolate():
            if pending.get("look") == args and look_task.status() in ("running", "success"):
                return  # drawn, or being drawn, for this scenario already
        pending["look"] = args
        look_task.cancel()
        look_task.invoke(commands.trajectories(args, workspace), commands.natural_history(b.scenario, args, workspace))

    @render.text
    def look_status() -> str:
        if built().error:
            return f"The scenario has an invalid value: {built().error}"
        return "Drawing…" if look_task.status() == "running" else ""

    def _image(outcome: tasks.Outcome, plot: Path | None) -> dict[str, Any]:
        if outcome.status != 0 or plot is None or not plot.is_file():
            return {"src": "", "alt": outcome.error}
        return {"src": str(plot), "width": "100%", "alt": plot.stem}

    @render.image(delete_file=False)
    def trajectories_plot() -> dict[str, Any]:
        outcome, plot, _, _ = look_task.result()
        return _image(outcome, plot)

    @render.code
    def trajectories_text() -> str:
        outcome = look_task.result()[0]
        return outcome.stdout or outcome.error

    @render.image(delete_file=False)
    def natural_plot() -> dict[str, Any]:
        _, _, outcome, plot = look_task.result()
        return _image(outcome, plot)

    @render.code
    def natural_text() -> str:
        outcome = look_task.result()[2]
        return outcome.stdout or outcome.error

    # --- 3 Run --------------------------------------------------------------------------------------------------------
    @reactive.extended_task
    async def run_task(command: commands.Command) -> tasks.Outcome:
        return await tasks.run(command, run_state, cwd=str(workspace.root))

    @reactive.effect
    @reactive.event(input.run)
    def _run() -> None:
        b = built()
        if b.scenario is None:
            run_message.set(f"The scenario has an invalid value: {b.error}")
            return
        run_message.set("")
        command = commands.run(scenario_args(), whole(input.reps()), whole(input.seed()), whole(input.jobs()),
                               workspace)
        pending["run"] = (command, base(), b.scenario)
        run_task.invoke(command)

    @reactive.effect
    @reactive.event(input.cancel_run)
    def _cancel_run() -> None:
        run_task.cancel()

    @reactive.effect
    def _ran() -> None:
        if run_task.status() == "success" and run_task.result().status == 0:
            last_run.set(pending["run"])

    @render.ui
    def run_progress() -> Any:
        return _progress(run_task, run_state)

    @render.text
    def run_error() -> str:
        return run_message() or run_task.result().error

    @render.code
    def run_text() -> str:
        return run_task.result().stdout

    @render.table
    def run_table() -> pd.DataFrame:
        outcome = run_task.result()
        command = pending["run"][0]
        summary = command.out / "summary.csv" if command.out else None
        if outcome.status != 0 or summary is None or not summary.is_file():
            return pd.DataFrame()
        table = pd.read_csv(summary)
        return table[[c for c in TABLE_COLUMNS if c in table.columns]]

    # --- 4 Plan ------------------------------------------------------------------------------------------------------
    @reactive.extended_task
    async def plan_task(command: commands.Command) -> tuple[tasks.Outcome, Path | None]:
        return await tasks.run(command, plan_state, cwd=str(workspace.root)), command.file

    def _plan(make: Any) -> None:
        b = built()
        if b.scenario is None:
            plan_message.set(f"The scenario has an invalid value: {b.error}")
            return
        plan_message.set("")
        plan_task.cancel()
        plan_task.invoke(make(scenario_args()))

    @reactive.effect
    @reactive.event(input.sample_size)
    def _sample_size() -> None:
        _plan(lambda args: commands.sample_size(args, whole(input.target()), whole(input.ss_reps()),
                                                whole(input.seed()), whole(input.jobs()), workspace))

    @reactive.effect
    @reactive.event(input.power_curve)
    def _power_curve() -> None:
        _plan(lambda args: commands.power_curve(args, input.curve(), whole(input.curve_reps()), whole(input.seed()),
                                                whole(input.jobs()), workspace, target=whole(input.target())))

    @reactive.effect
    @reactive.event(input.assurance)
    def _assurance() -> None:
        _plan(lambda args: commands.assurance(args, whole(input.draws()), whole(input.reps_per_draw()),
                                              whole(input.seed()), whole(input.jobs()), workspace))

    @reactive.effect
    @reactive.event(input.tornado)
    def _tornado() -> None:
        _plan(lambda args: commands.tornado(args, whole(input.tornado_reps()), whole(input.seed()),
                                            whole(input.jobs()), workspace))

    @reactive.effect
    @reactive.event(input.cancel_plan)
    def _cancel_plan() -> None:
        plan_task.cancel()

    @render.ui
    def plan_progress() -> Any:
        return _progress(plan_task, plan_state)

    @render.text
    def plan_error() -> str:
        return plan_message() or plan_task.result()[0].error

    @render.code
    def plan_text() -> str:
        return plan_task.result()[0].stdout

    @render.image(delete_file=False)
    def plan_plot() -> dict[str, Any]:
        outcome, plot = plan_task.result()
        return _image(outcome, plot)

    # --- 5 Export ----------------------------------------------------------------------------------------------------
    @render.code
    def command() -> str:
        ran = last_run()
        if ran is None:
            return "Run the scenario (screen 3) to get the command that reproduces it."
        command, ran_base, _ = ran
        shown = command.text(ran_base, workspace)
        reps, seed, jobs = (command.args[command.args.index(flag) + 1] for flag in ("--reps", "--seed", "--jobs"))
        return (f"{shown}\n\n# or, with the downloaded scenario.toml (every value as simulated):\n"
                f"cbcp-sim run scenario.toml --reps {reps} --seed {seed} --jobs {jobs}")

    @render.text
    def export_note() -> str:
        ran = last_run()
        if ran is None:
            return "No run yet: the scenario TOML is the page's scenario."
        return f"Exports of the last run: {ran[2].heading}"

    @render.download_button(filename="scenario.toml", media_type="application/toml")
    def download_toml() -> Any:
        ran, b = last_run(), built()
        if ran is not None:
            yield ran[2].to_toml()
        else:
            yield b.scenario.to_toml() if b.scenario is not None else f"# {b.error}\n"

    def _last_run_dir() -> Path:
        ran = last_run()
        if ran is None or ran[0].out is None:
            raise InputError("run", "run the scenario first (screen 3)")
        return ran[0].out

    @render.download_button(filename="results.csv", media_type="text/csv")
    def download_csv() -> Any:
        try:
            yield (_last_run_dir() / "summary.csv").read_text(encoding="utf-8")
        except InputError as exc:
            yield f"# error: {exc}\n"

    @render.download_button(filename="report.html", media_type="text/html")
    async def download_report() -> Any:
        try:
            command = commands.report(_last_run_dir(), workspace)
        except InputError as exc:
            yield f"<p>error: {html.escape(str(exc))}</p>"
            return
        outcome = await tasks.run(command, cwd=str(workspace.root))
        if outcome.status != 0 or command.file is None:
            yield f"<p>{html.escape(outcome.error)}</p>"
            return
        yield command.file.read_text(encoding="utf-8")

    def _ended() -> None:
        """A closed page stops its commands (their process groups) and removes its working folder."""
        for task in (look_task, run_task, plan_task):
            task.cancel()
        workspace.close()

    session.on_ended(_ended)


def app() -> App:
    """The Shiny app: the page and its server."""
    return App(layout.page(), server)
