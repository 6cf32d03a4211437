"""The page: five screens (Scenario, Look before running, Run, Plan, Export). The Scenario screen's fields are
drawn by :func:`field_block` from :mod:`cbcp_sim.app.fields`, each with its unit, allowed values and cited source
beside it and a slot for the CLI's one-line message."""

from __future__ import annotations

from typing import Any

from shiny import ui

from cbcp_sim.app.fields import Field
from cbcp_sim.run.settings import DEFAULT_SEED, MAX_REPS
from cbcp_sim.scenario.spec import bundled_scenarios

#: Replicates the Run screen starts with (the CLI's default is 10,000; 2,000 answer a first look in seconds).
START_REPS = 2000

#: The page's own style and the one script: an error message placed beside its field, and a note beside each field
#: whose value the scenario now simulates differently (as text, never as HTML).
HEAD = ui.tags.head(
    ui.tags.style("""
      .field { margin-bottom: .6rem; }
      .field .form-group { margin-bottom: .1rem; }
      .field-meta { font-size: .8rem; color: #555; }
      .field-note { font-size: .8rem; color: #8a5a00; }
      .field-error, .status-error { color: #b00020; font-family: monospace; font-size: .85rem; }
      .cli-text { font-size: .8rem; white-space: pre-wrap; }
      .bar { height: 1.1rem; background: #e9ecef; border-radius: .3rem; overflow: hidden; }
      .bar > div { height: 100%; background: #0d6efd; }
      .cmd { font-size: .8rem; white-space: pre-wrap; word-break: break-all; }
    """),
    ui.tags.script("""
      $(document).on('shiny:connected', function () {
        Shiny.addCustomMessageHandler('fields', function (m) {
          document.querySelectorAll('.field-error, .field-note').forEach(function (e) { e.textContent = ''; });
          Object.keys(m.notes).forEach(function (id) {
            var note = document.getElementById('note-' + id);
            if (note) { note.textContent = m.notes[id]; }
          });
          document.querySelectorAll('.field .is-invalid').forEach(function (e) { e.classList.remove('is-invalid'); });
          if (m.id) {
            var slot = document.getElementById('err-' + m.id), box = document.getElementById(m.id);
            if (slot) { slot.textContent = m.text; }
            if (box) { box.classList.add('is-invalid'); }
          }
        });
      });
    """),
)


def field_block(f: Field) -> Any:
    """One input with the declaration's unit, allowed values, meaning and source, and its note and error slots."""
    meta = " · ".join(part for part in (f.unit and f"unit: {f.unit}", f"allowed: {f.allowed}",
                                        f"origin: {f.origin}") if part)
    return ui.div(
        ui.input_text(f.id, ui.tags.code(f.path), value=f.text, width="100%", placeholder="not set"),
        ui.div(meta, class_="field-meta"),
        ui.div(f.doc, ui.tags.br(), ui.tags.em(f"Source: {f.source}"), class_="field-meta"),
        ui.div(id=f"note-{f.id}", class_="field-note"),
        ui.div(id=f"err-{f.id}", class_="field-error"),
        class_="field",
    )


def _scenario_screen() -> Any:
    return ui.nav_panel(
        "1 Scenario",
        ui.layout_columns(
            ui.input_select("bundled", "Bundled scenario", choices=list(bundled_scenarios()), selected="default"),
            ui.input_file("upload", "…or upload a scenario TOML", accept=".toml"),
            ui.output_ui("effect_choice"),
            col_widths=(4, 4, 4),
        ),
        ui.output_text("scenario_title"),
        ui.div(ui.output_text("status"), class_="status-error"),
        ui.output_ui("scenario_form"),
        value="scenario",
    )


def _look_screen() -> Any:
    return ui.nav_panel(
        "2 Look before running",
        ui.p("The assumed GMFM-66 course by arm (cbcp-sim trajectories) and the natural change of the children the "
             "scenario enrols over its primary visit (cbcp-sim natural-history), drawn again as the scenario changes."),
        ui.output_text("look_status"),
        ui.layout_columns(
            ui.div(ui.output_image("trajectories_plot", height="auto"), ui.output_code("trajectories_text")),
            ui.div(ui.output_image("natural_plot", height="auto"), ui.output_code("natural_text")),
            col_widths=(6, 6),
        ),
        value="look",
    )


def _run_screen() -> Any:
    return ui.nav_panel(
        "3 Run",
        ui.layout_columns(
            ui.input_numeric("reps", "Replicates (simulated trials)", START_REPS, min=1, max=MAX_REPS),
            ui.input_numeric("seed", "Seed", DEFAULT_SEED, min=0),
            ui.input_numeric("jobs", "Jobs (processes; results do not depend on it)", 1, min=1),
            col_widths=(4, 4, 4),
        ),
        ui.input_action_button("run", "Run", class_="btn-primary"),
        ui.input_action_button("cancel_run", "Cancel"),
        ui.output_ui("run_progress"),
        ui.div(ui.output_text("run_error"), class_="status-error"),
        ui.output_code("run_text"),
        ui.output_table("run_table"),
        value="run",
    )


def _plan_screen() -> Any:
    return ui.nav_panel(
        "4 Plan",
        ui.layout_columns(
            ui.card(ui.card_header("Sample size for a target power"),
                    ui.input_numeric("target", "Target power", 0.8, min=0.01, max=0.99, step=0.05),
                    ui.input_numeric("ss_reps", "Replicates per size near the answer", 2000, min=100),
                    ui.input_action_button("sample_size", "Find sample size")),
            ui.card(ui.card_header("Power curve over children per arm"),
                    ui.input_text("curve", "Children per arm: first:last:step, or n1,n2,...", "20:100:20"),
                    ui.input_numeric("curve_reps", "Replicates per point", 1000, min=100),
                    ui.input_action_button("power_curve", "Draw power curve")),
            ui.card(ui.card_header("Assurance and tornado"),
                    ui.input_numeric("draws", "Prior draws", 200, min=1),
                    ui.input_numeric("reps_per_draw", "Trials per draw", 100, min=1),
                    ui.input_action_button("assurance", "Assurance"),
                    ui.input_numeric("tornado_reps", "Trials per tornado point", 2000, min=100),
                    ui.input_action_button("tornado", "Tornado")),
            col_widths=(4, 4, 4),
        ),
        ui.p("Seed and jobs are the Run screen's."),
        ui.input_action_button("cancel_plan", "Cancel"),
        ui.output_ui("plan_progress"),
        ui.div(ui.output_text("plan_error"), class_="status-error"),
        ui.output_code("plan_text"),
        ui.output_image("plan_plot", height="auto"),
        value="plan",
    )


def _export_screen() -> Any:
    return ui.nav_panel(
        "5 Export",
        ui.p("The scenario as simulated (every value, defaults and presets included), the command that reproduces the "
             "last run, its results table and its HTML report."),
        ui.p(ui.output_text("export_note")),
        ui.download_button("download_toml", "Scenario TOML"),
        ui.download_button("download_csv", "Results CSV"),
        ui.download_button("download_report", "HTML report"),
        ui.h5("Command line"),
        ui.output_code("command"),
        value="export",
    )


def page() -> Any:
    """The whole page."""
    return ui.page_navbar(
        _scenario_screen(), _look_screen(), _run_screen(), _plan_screen(), _export_screen(),
        id="screen", title="cbcp-sim", header=HEAD,
    )
