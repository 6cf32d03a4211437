"""Figures and the HTML report: ``cbcp_sim.io.plots``, ``cbcp_sim.io.report`` and the PRCC bootstrap interval.

Most directories are written here by hand with plausible values (no simulation), in the layout the commands write:
``manifest.json`` naming the kind, that kind's ``result.json`` and CSV files, and ``scenario.toml`` (a real resolved
scenario, written by :meth:`Scenario.to_toml`). A few tests run small simulations to check that the command a page
gives reproduces the directory. The page in a real browser: ``tests/test_report_browser.py``.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import subprocess
import sys
from html import unescape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cbcp_sim import load_scenario
from cbcp_sim.errors import InputError, ScenarioError
from cbcp_sim.io import plots
from cbcp_sim.io.report import report
from cbcp_sim.planning.sensitivity import prcc, prcc_interval
from cbcp_sim.scenario import default_scenario_path

TITLE = 'Cord blood vs sham <GMFCS I-IV> & "ages 2-10"'
CHANGES = {"population.source": "allogeneic", "dropout.fraction": 0.1}
HEADING = f'{TITLE} [set population.source = "allogeneic", dropout.fraction = 0.1]'
SHOWN_HEADING = ("Cord blood vs sham &lt;GMFCS I-IV&gt; &amp; &quot;ages 2-10&quot; [set population.source = "
                 "&quot;allogeneic&quot;, dropout.fraction = 0.1]")
DIGEST = "3f2a9c0d1e4b"
PNG = b"\x89PNG\r\n\x1a\n"
IMAGE = re.compile(r'<img alt="[^"]*" width="\d+" height="\d+" src="data:image/png;base64,[A-Za-z0-9+/=]{100,}">')
SUMMARY = {"mcse": 0.012, "type1_error": 0.049, "type1_mcse": 0.007, "type1_ci_low": 0.036, "type1_ci_high": 0.063,
           "true_effect": 2.5, "mean_estimate": 2.48, "bias": -0.02, "bias_mcse": 0.03, "empirical_se": 1.1,
           "mean_se": 1.08, "rmse": 1.1, "coverage": 0.948, "n_reps": 1000, "n_failed": 0, "n_failed_null": 0}
LONG = ("Autologous cord blood (UCB-MNC, IV) vs sham infusion, GMFCS I-IV, ages 2-10 [effect [effects.pooled]: "
        "treatment.dose_response.emax = 4.4, treatment.waning_half_life_months = 9.0; set population.source = "
        '"allogeneic", population.ages = [2, 5], eligibility.gmfcs = [2, 3, 4], '
        "treatment.modifiers.age_factors_for_a_very_long_key_without_any_space_in_it_at_all = [1.0, 0.8, 0.6]]")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """The default scenario under a title with characters HTML must escape, then two changes (``--set``)."""
    path = tmp_path_factory.mktemp("scenario") / "trial.toml"
    text = default_scenario_path().read_text()
    path.write_text(re.sub(r'^title = .*$', f"title = {json.dumps(TITLE)}", text, count=1, flags=re.M))
    s = load_scenario(path, CHANGES)
    assert s.heading == HEADING
    return s


def _row(analysis: str, role: str, power: float) -> dict[str, Any]:
    return {"analysis": analysis, "comparison": "cord blood vs sham", "role": role, "power": power,
            **SUMMARY, "ci_low": power - 0.024, "ci_high": power + 0.024}


def _write(directory: Path, kind: str, inputs: dict[str, Any], files: dict[str, Any], toml: str | None) -> Path:
    """A run directory: the manifest, JSON files from dicts, CSV files from DataFrames and ``scenario.toml``."""
    directory.mkdir()
    (directory / "manifest.json").write_text(json.dumps({"kind": kind, "inputs_digest": DIGEST, "inputs": inputs}))
    for name, content in files.items():
        if isinstance(content, pd.DataFrame):
            content.to_csv(directory / name, index=False)
        else:
            (directory / name).write_text(json.dumps(content))
    if toml is not None:
        (directory / "scenario.toml").write_text(toml)
    return directory


def _sweep_table(points: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for i, point in enumerate(points):
        power = min(0.3 + 0.012 * point["design.n_per_arm"] * point.get("treatment.dose_response.emax", 3.0) / 3,
                    0.97)
        shown = {k: json.dumps(v) if isinstance(v, list) else v for k, v in point.items()}
        rows += [{"point": i, **shown, **_row("ancova", "primary", power)},
                 {"point": i, **shown, **_row("ttest", "secondary", power - 0.05)}]
    return pd.DataFrame(rows)


def _sweep(tmp_path: Path, scenario, points: list[dict[str, Any]] | None = None) -> Path:
    if points is None:
        points = [{"design.n_per_arm": n, "treatment.dose_response.emax": e} for n in (20, 30, 40) for e in (2.0, 4.0)]
    inputs = {"scenario": {"title": TITLE}, "points": points, "reps": 1000, "seed": 7, "chunk_size": 1000}
    return _write(tmp_path / "sweep", "sweep", inputs, {"results.csv": _sweep_table(points)}, scenario.to_toml())


def _run_result() -> dict[str, Any]:
    analyses = [_row("ancova", "primary", 0.8123), _row("ttest", "secondary", 0.74)]
    return {"title": TITLE, "heading": HEADING, **analyses[0], "seed": 7, "scenario_digest": DIGEST,
            "analyses": analyses, "n_reps": 1000,
            "changes": [{"path": k, "value": v} for k, v in CHANGES.items()],
            "command": "cbcp-sim run scenario.toml --reps 1000 --seed 7",
            "operations": {"last_child_in": {"mean": 21.4, "q05": 17.9, "q50": 21.2, "q95": 25.6}},
            "sequential": {"looks": 2, "timing": "information", "spending": "obrien-fleming", "interims": [0.5],
                           "stop_efficacy": [0.21, 0.58], "look_months": [14.2, 26.0], "power": 0.79}}


def _run(tmp_path: Path, scenario) -> Path:
    result = _run_result()
    return _write(tmp_path / "run", "run", {"reps": 1000, "seed": 7, "chunk_size": 1000},
                  {"result.json": result, "summary.csv": pd.DataFrame(result["analyses"])}, scenario.to_toml())


def _sample_size_result() -> dict[str, Any]:
    sizes = ((20, 0.55, 0.56), (30, 0.71, 0.70), (37, 0.803, 0.80), (45, 0.87, 0.87))
    curve = [{"n_per_arm": n, "total": 2 * n, "power": p, "mcse": 0.012, "ci_low": p - 0.024, "ci_high": p + 0.024,
              "fitted_power": f} for n, p, f in sizes]
    return {"kind": "sample-size", "title": TITLE, "heading": HEADING, "scenario_digest": DIGEST, "analysis": "ancova",
            "comparison": "cord blood vs sham", "target": 0.8, "n_per_arm": 37, "total": 74, "power": 0.803,
            "mcse": 0.012, "ci_low": 0.779, "ci_high": 0.827, "fitted_power": 0.8, "reps": 1000, "seed": 7,
            "curve": curve}


def _sample_size(tmp_path: Path, scenario) -> Path:
    result = _sample_size_result()
    return _write(tmp_path / "n", "sample-size", {"target": 0.8, "reps": 1000, "max_n": 2000, "seed": 7},
                  {"result.json": result, "curve.csv": pd.DataFrame(result["curve"])}, scenario.to_toml())


def _assurance_result() -> dict[str, Any]:
    return {"kind": "assurance", "title": TITLE, "heading": HEADING, "scenario_digest": DIGEST, "analysis": "ancova",
            "comparison": "cord blood vs sham", "assurance": 0.612, "mcse": 0.015, "ci_low": 0.583, "ci_high": 0.641,
            "favourable": 0.598, "draws": 40, "reps_per_draw": 200, "seed": 7,
            "priors": {"treatment.dose_response.emax": {"distribution": "normal", "mean": 3.0, "sd": 1.0}},
            "power_quantiles": {"q05": 0.12, "q25": 0.41, "q50": 0.66, "q75": 0.84, "q95": 0.96}}


def _draws() -> pd.DataFrame:
    emax = [1.0 + 0.1 * i for i in range(40)]
    return pd.DataFrame({"draw": range(40), "treatment.dose_response.emax": emax,
                         "power": [min(0.05 + 0.2 * e, 0.99) for e in emax], "true_effect": emax})


def _assurance(tmp_path: Path, scenario) -> Path:
    return _write(tmp_path / "a", "assurance", {"seed": 7},
                  {"result.json": _assurance_result(), "draws.csv": _draws()}, scenario.to_toml())


def _sensitivity_result() -> dict[str, Any]:
    tornado = [{"path": "treatment.dose_response.emax", "base": 4.0, "low": 3.0, "high": 5.0, "power_low": 0.62,
                "power_high": 0.91, "mcse_low": 0.015, "mcse_high": 0.009, "swing": 0.29, "rank": 1},
               {"path": "dropout.fraction", "base": 0.05, "low": 0.0, "high": 0.2, "power_low": 0.82,
                "power_high": 0.74, "mcse_low": 0.012, "mcse_high": 0.014, "swing": 0.08, "rank": 2}]
    return {"kind": "sensitivity", "title": TITLE, "heading": HEADING, "scenario_digest": DIGEST,
            "analysis": "ancova", "comparison": "cord blood vs sham", "base_power": 0.8, "base_mcse": 0.0126,
            "reps": 1000, "seed": 7, "tornado": tornado,
            "global": {"samples": 64, "rows": [
                {"path": "treatment.dose_response.emax", "prcc": 0.873, "prcc_low": 0.81, "prcc_high": 0.92, "rank": 1},
                {"path": "dropout.fraction", "prcc": -0.412, "prcc_low": -0.6, "prcc_high": -0.2, "rank": 2}]}}


def _sensitivity(tmp_path: Path, scenario) -> Path:
    result = _sensitivity_result()
    glob = pd.DataFrame({"sample": range(3), "treatment.dose_response.emax": [3.2, 4.1, 4.8],
                         "dropout.fraction": [0.1, 0.02, 0.15], "power": [0.7, 0.82, 0.86]})
    return _write(tmp_path / "s", "sensitivity", {"seed": 7},
                  {"result.json": result, "tornado.csv": pd.DataFrame(result["tornado"]), "global.csv": glob},
                  scenario.to_toml())


KINDS = {"run": _run, "sweep": _sweep, "sample-size": _sample_size, "assurance": _assurance,
         "sensitivity": _sensitivity}


def _page(directory: Path, **kwargs: Any) -> str:
    path = report(directory, **kwargs)
    assert path == directory / "report.html"
    html = path.read_text(encoding="utf-8")
    assert f"<h1>{SHOWN_HEADING}</h1>" in html and f"<title>{SHOWN_HEADING}</title>" in html
    assert TITLE not in html
    assert DIGEST in html
    assert 'src="http' not in html and "<script" not in html and "<link" not in html
    return html


def _section(html: str, name: str) -> str:
    """The HTML of the page's Inputs or Results section."""
    start = html.index(f'<h2 id="{name}">')
    end = html.find("<h2 ", start + 1)
    return html[start:end if end > 0 else len(html)]


# --- figures ---------------------------------------------------------------------------------------------------


FIGURES = {
    "power_curves": lambda path: plots.power_curves(_sweep_table(
        [{"design.n_per_arm": n, "treatment.dose_response.emax": e} for e in (2.0, 4.0) for n in (20, 30)]),
        "design.n_per_arm", path, target=0.8, heading=LONG),
    "sample_size": lambda path: plots.sample_size({**_sample_size_result(), "heading": LONG}, path),
    "tornado": lambda path: plots.tornado({**_sensitivity_result(), "heading": LONG}, path),
    "prcc_ranking": lambda path: plots.prcc_ranking({**_sensitivity_result(), "heading": LONG}, path),
    "assurance": lambda path: plots.assurance(_draws(), {**_assurance_result(), "heading": LONG}, path),
    "run_summary": lambda path: plots.run_summary({**_run_result(), "heading": LONG}, path, alpha=0.05),
}


@pytest.fixture
def drawn(monkeypatch):
    """Figures kept instead of saved: every figure leaves through ``plots._output``."""
    figures = []
    monkeypatch.setattr(plots, "_output", lambda fig, path: figures.append(fig))
    yield figures
    for fig in figures:
        plots._pyplot().close(fig)


@pytest.mark.parametrize("name", FIGURES)
def test_figures_saved_as_png_and_svg_or_returned_as_png(tmp_path, name):
    draw = FIGURES[name]
    assert draw(tmp_path / "f.png") is None
    assert draw(tmp_path / "f.svg") is None
    assert (tmp_path / "f.png").read_bytes().startswith(PNG)
    assert "<svg" in (tmp_path / "f.svg").read_text()
    assert draw(None).startswith(PNG)


def _timeline_figure() -> None:
    from cbcp_sim.explore.timeline import Timeline

    rng = np.random.default_rng(1)
    months = np.arange(0.0, 30.0, 0.25)
    enrol = rng.normal(21.0, 2.0, 500)
    accrual = np.minimum(72, np.floor(72 * months[None, :] / enrol[:, None]))
    plots.timeline(Timeline(LONG, 72, 500, 1, {"last_child_in": enrol, "database_lock": enrol + 13.5},
                            months, accrual), "unused.png")


def _trajectories_figure() -> None:
    import dataclasses

    from cbcp_sim.explore.trajectories import trajectories

    scenario = load_scenario(default_scenario_path())
    plots.trajectories(dataclasses.replace(trajectories(scenario, n_children=200), title=LONG), "unused.png")


ALL_FIGURES = {
    **{name: (lambda draw=draw: draw(None)) for name, draw in FIGURES.items()},
    "timeline": _timeline_figure,
    "trajectories": _trajectories_figure,
    "centiles": lambda: plots.centiles(load_scenario(default_scenario_path()).natural_history, 3, (2.0, 12.0),
                                       "unused.png", n_children=200, heading=LONG),
    "natural_change": lambda: plots.natural_change(np.random.default_rng(1).normal(3, 2, 500), (2.0, 10.0), 12.0,
                                                   "unused.png", heading=LONG),
}


@pytest.mark.parametrize("name", ALL_FIGURES)
def test_no_title_or_label_is_clipped_even_under_a_long_heading(drawn, name):
    """A heading longer than the figure is wide (with a token longer than a line) is wrapped: the title's box, and
    every other text's, lies inside the figure; the heading is the figure's title, on its first lines."""
    ALL_FIGURES[name]()
    (fig,) = drawn
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    box = fig.bbox
    title = fig._suptitle
    assert title is not None and one_line_words(title.get_text()).startswith(one_line_words(LONG)[:60])
    drawn_boxes = [("title", title.get_window_extent(renderer))]
    drawn_boxes += [(f"axes {i}: ticks, labels, title, legend", ax.get_tightbbox(renderer))
                    for i, ax in enumerate(fig.axes)]
    drawn_boxes += [("figure legend", legend.get_window_extent(renderer)) for legend in fig.legends]
    for what, extent in drawn_boxes:
        assert extent.x0 >= box.x0 - 1 and extent.x1 <= box.x1 + 1, (name, what, extent, box.bounds)
        assert extent.y0 >= box.y0 - 1 and extent.y1 <= box.y1 + 1, (name, what, extent, box.bounds)


def one_line_words(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_axes_are_labelled_in_words_with_units():
    assert plots.label("design.n_per_arm") == "children per arm"
    assert plots.label("treatment.dose_response.emax") == ("largest effect of one dose at the peak of its time "
                                                           "course (GMFM-66 points)")
    assert plots.label("treatment.waning_half_life_months") == "half-life of the part of the peak effect that wanes " \
                                                               "(months)"
    assert plots.label('arms."two doses".dose') == "dose per kg of each dose, arm two doses (10^7 cells/kg)"
    assert plots.label("arms.high.schedule") == "months of the doses after baseline, arm high"
    assert plots.label("treatment.dose_response.ed50", unit=False) == "dose giving half of emax"
    assert plots.label("comparison") == "comparison"   # not a parameter: as it is
    assert plots.unit_of("dropout.by_month") == "months"


def test_power_curves_label_axes_in_words_and_draw_the_target(drawn):
    table = _sweep_table([{"design.n_per_arm": n, "treatment.dose_response.emax": e} for e in (2.0, 4.0)
                          for n in (20, 30)])
    plots.power_curves(table, "design.n_per_arm", target=0.8, heading=HEADING)
    ax = drawn[0].axes[0]
    assert ax.get_xlabel() == "children per arm"
    assert "GMFM-66 points" in ax.get_legend().get_title().get_text()
    target = [line for line in ax.get_lines() if line.get_label() == "target power 0.8"]
    assert len(target) == 1 and list(target[0].get_ydata()) == [0.8, 0.8]
    assert drawn[0]._suptitle.get_text().startswith(TITLE)


def test_no_power_curve_hides_another(drawn):
    """Two curves with the same powers both show: each has its own colour, dash and marker, and the one drawn
    last lets the first through (pixels of both colours are on the rendered figure)."""
    from matplotlib.colors import to_rgb

    points = [{"design.n_per_arm": n, "design.blinding": b} for b in ("double", "assessor") for n in (20, 30, 40)]
    table = _sweep_table(points)
    table["power"] = np.tile([0.3, 0.5, 0.7], 4)[: len(table)]   # the same curve at both blindings
    plots.power_curves(table, "design.n_per_arm")
    fig = drawn[0]
    lines = [line for line in fig.axes[0].get_lines()]
    assert len(lines) == 2
    assert len({(line.get_linestyle(), line.get_marker()) for line in lines}) == 2
    assert lines[0].get_markersize() > lines[1].get_markersize()     # the later marker sits inside the earlier
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3] / 255.0
    for line in lines:
        colour = np.array(to_rgb(line.get_color()))
        assert (np.abs(pixels - colour).max(axis=2) < 0.08).sum() > 50, line.get_color()


def test_sample_size_plot_is_scaled_to_its_data(drawn):
    plots.sample_size(_sample_size_result())
    ax = drawn[0].axes[0]
    low, high = ax.get_ylim()
    assert 0.45 < low < 0.531 and 0.89 < high < 0.95   # the powers 0.526-0.894 and the target fill the axes
    left, right = ax.get_xlim()
    assert 15 <= left < 20 and 45 < right <= 50
    assert ax.get_xlabel() == "children per arm"


def test_tornado_shows_the_monte_carlo_error_of_each_end(drawn):
    result = _sensitivity_result()
    plots.tornado(result)
    ax = drawn[0].axes[0]
    bars = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(bars) == 2   # one set of error bars for the low ends, one for the high ends
    half_widths = sorted(round(float(np.diff(seg[:, 0])[0]) / 2, 6)
                         for c in bars for seg in c.lines[2][0].get_segments())
    expected = sorted(round(plots.Z95 * r[f"mcse_{end}"], 6) for r in result["tornado"] for end in ("low", "high"))
    assert half_widths == pytest.approx(expected, abs=1e-6)
    assert [t.get_text() for t in ax.get_yticklabels()][-1].startswith("largest effect of one dose")
    assert any("base power, Monte Carlo 95% interval" in t.get_text() for t in drawn[0].legends[0].get_texts())


def test_prcc_figure_shows_the_bootstrap_interval(drawn):
    plots.prcc_ranking(_sensitivity_result())
    ax = drawn[0].axes[0]
    (bars,) = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    ends = sorted(tuple(np.round(seg[:, 0], 6)) for seg in bars.lines[2][0].get_segments())
    assert ends == [(-0.6, -0.2), (0.81, 0.92)]
    with pytest.raises(ScenarioError, match="no global sample"):
        plots.prcc_ranking({**_sensitivity_result(), "global": None})


def test_duration_histograms_share_their_bins_and_show_medians(drawn):
    _timeline_figure()
    hist = drawn[0].axes[1]
    widths = {round(p.get_width(), 9) for p in hist.patches if hasattr(p, "get_width")} or None
    steps = [np.diff(np.unique(np.round(p.get_xy()[:, 0], 9))) for p in hist.patches]
    assert len({round(float(s.min()), 9) for s in steps}) == 1, widths   # one bin width for both milestones
    labels = [t.get_text() for t in hist.get_legend().get_texts()]
    assert labels[0].startswith("enrolment (last child randomised): median 21")
    assert labels[1].startswith("total (database lock): median 34")
    assert hist.get_xlabel() == "months since the first site opened"
    assert plots.duration_bins([np.array([3.2, 4.9]), np.array([17.1, 19.8])]).tolist() == \
        [3.0 + 0.5 * k for k in range(35)]


def test_power_curves_of_a_named_analysis_and_refusals(tmp_path):
    table = _sweep_table([{"design.n_per_arm": n, "design.arms": ["sham", "cord blood"]} for n in (20, 40)])
    assert plots.swept_columns(table) == ["design.n_per_arm", "design.arms"]
    assert plots.curve_axis(table) == "design.n_per_arm"
    assert plots.curve_axis(table[table["design.n_per_arm"] == 20]) is None
    assert plots.power_curves(table, "design.n_per_arm", analysis="ttest").startswith(PNG)
    with pytest.raises(ScenarioError, match="not a numeric swept column"):
        plots.power_curves(table, "design.arms")
    with pytest.raises(ScenarioError, match="no rows of mmrm; it has: ancova, ttest"):
        plots.power_curves(table, "design.n_per_arm", analysis="mmrm")
    with pytest.raises(InputError, match=r"path: file must end in \.png") as info:
        plots.power_curves(table, "design.n_per_arm", tmp_path / "f.jpg")
    assert info.value.path == "path"


def test_numbers_keep_the_digits_their_monte_carlo_error_supports():
    assert [plots.mcse_decimals(m) for m in (0.012, 0.0045, 0.25, 1.3, 0.00009)] == [2, 3, 1, 0, 5]
    assert [plots.mcse_decimals(m) for m in (None, 0.0, math.nan, math.inf)] == [None] * 4
    assert plots.with_mcse(0.8123, 0.012) == "0.81"
    assert plots.with_mcse(0.8123, 0.0011) == "0.812"
    assert plots.with_mcse(-0.004, 0.03) == "0.00"   # no "-0.00"
    assert plots.with_mcse(2.4817, None) == "2.482"
    assert plots.one_line('T [set population.ages = [\n    2,\n    5,\n]]') == "T [set population.ages = [2, 5]]"


# --- the report ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_every_report_is_titled_with_the_heading_and_has_inputs_then_results(tmp_path, scenario, kind):
    """The heading (title and what was changed) is the page's title; Inputs come before Results; the design table
    of the resolved scenario is in the Inputs; every page has a figure."""
    html = _page(KINDS[kind](tmp_path, scenario))
    assert html.index('<h2 id="inputs">') < html.index('<h2 id="results">')
    inputs = _section(html, "inputs")
    for text in ("Trial design", "sham 36, cord blood 36 (72 in total)", "months 0, 1, 3, 6, 12; primary visit "
                 "month 12", "alpha 0.05, two-sided", "allogeneic: 10 × 10^7 TNC/kg", "eligible GMFCS I, II, III, IV",
                 "MCAR: 10% lost by month 12", "primary ancova", "<td>cord blood</td><td>cells</td><td>UCB-MNC</td>",
                 "<td>intravenous</td><td>0</td>", "Emax 4 points, ED50 3 × 10^7 cells/kg, Hill 2",
                 "half-life 4.16 months, toward 50% of the peak kept for good", "Reproduce"):
        assert text in inputs, text
    assert IMAGE.search(_section(html, "results"))


def test_run_report(tmp_path, scenario):
    html = _page(_run(tmp_path, scenario))
    inputs, results = _section(html, "inputs"), _section(html, "results")
    assert "<code>population.source</code></td><td>allogeneic</td><td>source of the cells</td>" in inputs
    assert "<code>dropout.fraction</code></td><td>0.1</td>" in inputs
    assert "<pre><code>cbcp-sim run scenario.toml --reps 1000 --seed 7</code></pre>" in inputs
    assert unescape(re.search(r"<summary>.*?</summary><pre>(.*?)</pre>", inputs, re.S).group(1)) == scenario.to_toml()
    assert len(IMAGE.findall(results)) == 1                      # power and type I error by analysis
    assert "Power of ancova (cord blood vs sham): 0.81 (95% interval 0.79–0.84)" in html
    assert '<td class="n">0.81<span class="ci">0.79–0.84</span></td>' in results   # 2 decimals: MCSE 0.012
    assert "0.8123" not in results
    for text in ("last child randomised", "<td class=\"n\">21.4</td>", "Group-sequential design", "obrien-fleming",
                 "<td class=\"n\">0.58</td>", 'href="summary.csv"', 'href="scenario.toml"'):
        assert text in html, text


def test_sweep_report(tmp_path, scenario):
    html = _page(_sweep(tmp_path, scenario), target=0.8)
    results = _section(html, "results")
    assert len(IMAGE.findall(results)) == 1
    assert "dashed: target power 0.8" in results
    assert ">ttest<" not in results                                             # primary rows only
    assert '<td class="n">0.54<span class="ci">0.52–0.56</span></td>' in results  # 20 per arm, emax 2
    assert 'children per arm<span class="key"><code>design.<wbr>n_per_arm</code></span>' in results
    assert 'href="results.csv"' in html
    command = ("cbcp-sim sweep scenario.toml --grid design.n_per_arm=20,30,40 --grid "
               "treatment.dose_response.emax=2.0,4.0 --reps 1000 --seed 7 --out again")
    assert f"<pre><code>{command}</code></pre>" in html
    assert "The base scenario of the sweep; children per arm, largest effect" in html


def test_sweep_report_plots_against_the_first_numeric_axis_without_n_per_arm(tmp_path, scenario):
    points = [{"design.n_per_arm": 30, "design.arms": ["sham", "cord blood"], "treatment.dose_response.emax": e}
              for e in (2.0, 3.0, 4.0)]
    assert plots.curve_axis(_sweep_table(points)) == "treatment.dose_response.emax"
    html = _page(_sweep(tmp_path, scenario, points))
    assert 'alt="power by treatment.dose_response.emax"' in html
    assert "<h3>Power by largest effect of one dose at the peak of its time course</h3>" in html


def test_sweep_report_of_points_that_are_no_grid_offers_them_as_a_file(tmp_path, scenario):
    points = [{"design.n_per_arm": 30, "design.arms": arms} for arms in (["sham", "cord blood"], ["sham", "cord blood",
                                                                                                  "extra"])]
    points[1]["design.n_per_arm"] = 40
    html = _page(_sweep(tmp_path, scenario, points))
    assert "--points points.csv" in html
    data = re.search(r'download="points.csv" href="data:text/csv;base64,([^"]+)"', html).group(1)
    import base64

    assert base64.b64decode(data).decode().splitlines() == [
        "design.n_per_arm,design.arms", '30,"[""sham"", ""cord blood""]"', '40,"[""sham"", ""cord blood"", ""extra""]"']


def test_sweep_command_reproduces_the_sweep(tmp_path):
    """Run in the directory, the command on the page gives the same results.csv."""
    from cbcp_sim.cli import main

    out = tmp_path / "sweep"
    base = ["--set", "outcome.model=normal", "--set", "outcome.effect=3", "--jobs", "1"]
    assert main(["sweep", str(default_scenario_path()), "--grid", "design.n_per_arm=20,40", "--grid",
                 "outcome.sd=5.0,6.5", "--reps", "100", "--seed", "4", *base, "--out", str(out)]) == 0
    html = report(out).read_text(encoding="utf-8")
    command = unescape(re.search(r"<pre><code>(cbcp-sim sweep .*?)</code></pre>", html).group(1))
    cwd = os.getcwd()
    try:
        os.chdir(out)
        assert main([*shlex.split(command)[1:], "--jobs", "1"]) == 0
    finally:
        os.chdir(cwd)
    again = pd.read_csv(out / "again" / "results.csv")
    pd.testing.assert_frame_equal(again, pd.read_csv(out / "results.csv"))


def test_report_elsewhere_links_back_to_the_directory(tmp_path, scenario):
    directory = _sweep(tmp_path, scenario)
    (tmp_path / "pages").mkdir()
    html = report(directory, tmp_path / "pages" / "sweep.html").read_text(encoding="utf-8")
    assert 'href="../sweep/results.csv"' in html and 'href="../sweep/scenario.toml"' in html


def test_sample_size_report(tmp_path, scenario):
    html = _page(_sample_size(tmp_path, scenario))
    assert "37 children per arm, 74 in total" in html
    assert "the simulated power is 0.80 (95% interval 0.78–0.83)" in html
    assert "<pre><code>cbcp-sim sample-size scenario.toml --target 0.8 --reps 1000 --max-n 2000 --seed 7" in html
    assert '<td class="n">0.80<span class="ci">0.78–0.83</span></td>' in html


def test_sample_size_with_unequal_arms_by_total(tmp_path, scenario):
    result = _sample_size_result()
    result["n_per_arm"] = [25, 50]
    for row in result["curve"]:
        row["n_per_arm"] = [row["total"] // 3, 2 * row["total"] // 3]
    assert plots.sample_size(result).startswith(PNG)
    directory = _write(tmp_path / "n", "sample-size", {"target": 0.8}, {"result.json": result}, scenario.to_toml())
    assert "25/50 children per arm, 74 in total" in _page(directory)


def test_assurance_report(tmp_path, scenario):
    out = tmp_path / "elsewhere.html"
    assert report(_assurance(tmp_path, scenario), out) == out
    html = out.read_text(encoding="utf-8")
    assert len(IMAGE.findall(html)) == 1
    for text in ("Assurance of ancova (cord blood vs sham): 0.61 (95% interval 0.58–0.64)", "mean = 3, sd = 1",
                 '<td class="n">0.660</td>', "0.598", "<pre><code>cbcp-sim assurance scenario.toml --seed 7"):
        assert text in html, text


def test_sensitivity_report(tmp_path, scenario):
    html = _page(_sensitivity(tmp_path, scenario))
    results = _section(html, "results")
    assert len(IMAGE.findall(results)) == 2   # tornado and PRCC
    assert results.index("treatment.<wbr>dose_response.<wbr>emax") < results.index("dropout.<wbr>fraction")
    assert "64 Latin-hypercube points" in results
    assert '<td class="n">-0.412</td><td class="n">-0.600 to -0.200</td>' in results
    assert "<pre><code>cbcp-sim sensitivity scenario.toml --seed 7" in html
    assert "Ranges examined" in _section(html, "inputs")


def test_a_directory_without_scenario_toml_still_reports(tmp_path):
    result = _sample_size_result()
    directory = _write(tmp_path / "n", "sample-size", {"target": 0.8}, {"result.json": result}, None)
    html = report(directory).read_text(encoding="utf-8")
    assert "holds no scenario.toml" in html and SHOWN_HEADING in html


def test_a_scenario_toml_with_a_header_broken_over_lines_is_still_read(tmp_path, scenario):
    """A header comment that spills a value over several lines (not comments) leaves the values readable."""
    text = scenario.to_toml()
    head, body = text.split("\n\n", 1)
    broken = head + "\n# and population.ages = [\n    2,\n    5,\n].\n\n" + body
    directory = _write(tmp_path / "n", "sample-size", {"target": 0.8}, {"result.json": _sample_size_result()}, broken)
    assert "sham 36, cord blood 36 (72 in total)" in _page(directory)


def test_bad_directories_refused(tmp_path):
    with pytest.raises(ScenarioError, match=r"holds no manifest\.json: not a run or sweep directory"):
        report(tmp_path)
    (tmp_path / "manifest.json").write_text('{"kind": "timeline"}')
    with pytest.raises(ScenarioError, match="unknown kind 'timeline'"):
        report(tmp_path)
    (tmp_path / "manifest.json").write_text('{"kind": ')
    with pytest.raises(ScenarioError, match="cannot be read"):
        report(tmp_path)
    (tmp_path / "manifest.json").write_text('{"kind": "sample-size"}')
    with pytest.raises(ScenarioError, match=r"result\.json: is missing"):
        report(tmp_path)
    (tmp_path / "result.json").write_text('{"title": "t"}')
    with pytest.raises(ScenarioError, match=r"its sample-size results lack '\w+': written by another version"):
        report(tmp_path)
    assert not (tmp_path / "report.html").exists()


@pytest.mark.parametrize(("setup", "backend"), [("", "agg"),
                                                ("matplotlib.use('svg'); import matplotlib.pyplot", "svg")])
def test_plots_keep_a_backend_the_caller_chose(setup, backend):
    """Drawing uses Agg when nothing chose a backend (the CLI), and leaves a notebook's or script's own alone, so
    figures drawn after a cbcp_sim plot still show inline."""
    code = (f"import matplotlib; {setup or 'pass'}; from cbcp_sim.io import plots; plots._pyplot(); "
            "print(matplotlib.get_backend().lower())")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == backend


# --- the PRCC's bootstrap interval ---------------------------------------------------------------------------------


def _known_model(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """y = 2 x1 - x2 + noise; x3 is not used."""
    x = rng.uniform(size=(n, 3))
    return x, 2 * x[:, 0] - x[:, 1] + rng.normal(0.0, 0.6, n)


def test_prcc_bootstrap_interval_covers_the_true_prcc_in_most_samples():
    """The true PRCC of the model (its value in a sample of 200,000 points) lies inside the 95% interval from
    40 points in at least 85% of 60 samples, for each of the three inputs (the effect, the weaker negative
    effect, and none)."""
    true = prcc(*_known_model(np.random.default_rng(0), 200_000))
    assert true[0] > 0.6 and true[1] < -0.3 and abs(true[2]) < 0.01
    covered = []
    for seed in range(60):
        x, y = _known_model(np.random.default_rng(1000 + seed), 40)
        low, high = prcc_interval(x, y, seed)
        estimate = prcc(x, y)
        assert np.all(low <= estimate) and np.all(estimate <= high)
        covered.append((low <= true) & (true <= high))
    assert np.mean(covered, axis=0).min() >= 0.85


def test_prcc_bootstrap_interval_has_its_own_stream():
    x, y = _known_model(np.random.default_rng(5), 50)
    first = prcc_interval(x, y, seed=3)
    assert np.array_equal(first, prcc_interval(x, y, seed=3))          # the same seed: the same interval
    assert not np.array_equal(first, prcc_interval(x, y, seed=4))
    narrow = prcc_interval(*_known_model(np.random.default_rng(5), 400), seed=3)
    assert np.all(narrow[1] - narrow[0] < first[1] - first[0])          # more points, a narrower interval


def test_sensitivity_rows_carry_the_prcc_interval(tmp_path):
    from cbcp_sim.planning.sensitivity import sensitivity
    from cbcp_sim.run.settings import RunSettings

    s = load_scenario(default_scenario_path(), {"outcome.model": "normal", "outcome.effect": 3.0,
                                                "sensitivity.ranges": {"outcome.effect": [1.0, 5.0],
                                                                       "outcome.sd": [4.0, 8.0]},
                                                "sensitivity.samples": 12, "sensitivity.reps": 100})
    result = sensitivity(s, RunSettings(seed=2, jobs=1, progress=False), out=tmp_path / "s")
    saved = json.loads((tmp_path / "s" / "result.json").read_text())["global"]["rows"]
    for row, kept in zip(result.prcc, saved, strict=True):
        assert row["prcc_low"] <= row["prcc"] <= row["prcc_high"]
        assert kept["prcc_low"] == pytest.approx(row["prcc_low"]) and kept["prcc_high"] == pytest.approx(
            row["prcc_high"])
    assert "bootstrap 95% interval" in str(result)
    html = report(tmp_path / "s").read_text(encoding="utf-8")
    assert "bootstrap 95% interval" in html
