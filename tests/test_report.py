"""Figures and the HTML report of the planning commands' directories: ``cbcp_sim.io.plots`` and ``cbcp_sim.io.report``.

Each directory is written here by hand with plausible values (no simulation), in the layout the commands write:
``manifest.json`` naming the kind, and that kind's ``result.json`` and CSV files.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cbcp_sim.errors import InputError, ScenarioError
from cbcp_sim.io import plots
from cbcp_sim.io.report import report

TITLE = 'Cord blood vs sham <GMFCS I-IV> & "ages 2-10"'
SHOWN_TITLE = "Cord blood vs sham &lt;GMFCS I-IV&gt; &amp; &quot;ages 2-10&quot;"
DIGEST = "3f2a9c0d1e4b"
PNG = b"\x89PNG\r\n\x1a\n"
IMAGE = re.compile(r'<img alt="[^"]*" src="data:image/png;base64,[A-Za-z0-9+/=]{100,}">')
SUMMARY = {"mcse": 0.012, "type1_error": 0.049, "type1_mcse": 0.007, "type1_ci_low": 0.036, "type1_ci_high": 0.063,
           "true_effect": 2.5, "mean_estimate": 2.48, "bias": -0.02, "bias_mcse": 0.03, "empirical_se": 1.1,
           "mean_se": 1.08, "rmse": 1.1, "coverage": 0.948, "n_reps": 1000, "n_failed": 0, "n_failed_null": 0}


def _row(analysis: str, role: str, power: float) -> dict[str, Any]:
    return {"analysis": analysis, "comparison": "cord blood vs sham", "role": role, "power": power,
            **SUMMARY, "ci_low": power - 0.024, "ci_high": power + 0.024}


def _write(directory: Path, kind: str, inputs: dict[str, Any], files: dict[str, Any]) -> Path:
    """A run directory: the manifest, JSON files from dicts and CSV files from DataFrames."""
    directory.mkdir()
    (directory / "manifest.json").write_text(json.dumps({"kind": kind, "inputs_digest": DIGEST, "inputs": inputs}))
    for name, content in files.items():
        if isinstance(content, pd.DataFrame):
            content.to_csv(directory / name, index=False)
        else:
            (directory / name).write_text(json.dumps(content))
    return directory


def _sweep_table(points: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for i, point in enumerate(points):
        power = min(0.3 + 0.012 * point["design.n_per_arm"] * point.get("treatment.dose_response.emax", 3.0) / 3,
                    0.97)
        shown = {k: json.dumps(v) if isinstance(v, list) else v for k, v in point.items()}
        rows += [{"point": i, **shown, **_row("ancova", "primary", power)},
                 {"point": i, **shown, **_row("t-test", "secondary", power - 0.05)}]
    return pd.DataFrame(rows)


def _sweep(tmp_path: Path, points: list[dict[str, Any]] | None = None) -> Path:
    if points is None:
        points = [{"design.n_per_arm": n, "treatment.dose_response.emax": e} for e in (2.0, 4.0) for n in (20, 30, 40)]
    inputs = {"scenario": {"title": TITLE, "design": {"n_per_arm": 36}}, "points": points, "reps": 1000, "seed": 7,
              "chunk_size": 500}
    return _write(tmp_path / "sweep", "sweep", inputs, {"results.csv": _sweep_table(points)})


def _run(tmp_path: Path) -> Path:
    analyses = [_row("ancova", "primary", 0.81), _row("t-test", "secondary", 0.74)]
    result = {"title": TITLE, **analyses[0], "seed": 7, "scenario_digest": DIGEST, "analyses": analyses,
              "operations": {"last_child_in": {"mean": 21.4, "q05": 17.9, "q50": 21.2, "q95": 25.6}},
              "sequential": {"looks": 2, "timing": "information", "spending": "obrien-fleming", "interims": [0.5],
                             "stop_efficacy": [0.21, 0.58], "look_months": [14.2, 26.0], "power": 0.79}}
    return _write(tmp_path / "run", "run", {"reps": 1000, "seed": 7},
                  {"result.json": result, "summary.csv": pd.DataFrame(analyses)})


def _sample_size_result() -> dict[str, Any]:
    sizes = ((20, 0.55, 0.56), (30, 0.71, 0.70), (37, 0.803, 0.80), (45, 0.87, 0.87))
    curve = [{"n_per_arm": n, "total": 2 * n, "power": p, "mcse": 0.012, "ci_low": p - 0.024, "ci_high": p + 0.024,
              "fitted_power": f} for n, p, f in sizes]
    return {"kind": "sample-size", "title": TITLE, "scenario_digest": DIGEST, "analysis": "ancova",
            "comparison": "cord blood vs sham", "target": 0.8, "n_per_arm": 37, "total": 74, "power": 0.803,
            "mcse": 0.012, "ci_low": 0.779, "ci_high": 0.827, "fitted_power": 0.8, "reps": 1000, "seed": 7,
            "curve": curve}


def _sample_size(tmp_path: Path) -> Path:
    result = _sample_size_result()
    return _write(tmp_path / "n", "sample-size", {"target": 0.8}, {"result.json": result,
                                                                    "curve.csv": pd.DataFrame(result["curve"])})


def _assurance_result() -> dict[str, Any]:
    return {"kind": "assurance", "title": TITLE, "scenario_digest": DIGEST, "analysis": "ancova",
            "comparison": "cord blood vs sham", "assurance": 0.612, "mcse": 0.015, "ci_low": 0.583, "ci_high": 0.641,
            "favourable": 0.598, "draws": 40, "reps_per_draw": 200, "seed": 7,
            "priors": {"treatment.dose_response.emax": {"distribution": "normal", "mean": 3.0, "sd": 1.0}},
            "power_quantiles": {"q05": 0.12, "q25": 0.41, "q50": 0.66, "q75": 0.84, "q95": 0.96}}


def _draws() -> pd.DataFrame:
    emax = [1.0 + 0.1 * i for i in range(40)]
    return pd.DataFrame({"draw": range(40), "treatment.dose_response.emax": emax,
                         "power": [min(0.05 + 0.2 * e, 0.99) for e in emax], "true_effect": emax})


def _assurance(tmp_path: Path) -> Path:
    return _write(tmp_path / "a", "assurance", {"draws": 40},
                  {"result.json": _assurance_result(), "draws.csv": _draws()})


def _sensitivity_result() -> dict[str, Any]:
    tornado = [{"path": "treatment.dose_response.emax", "base": 4.0, "low": 3.0, "high": 5.0, "power_low": 0.62,
                "power_high": 0.91, "mcse_low": 0.015, "mcse_high": 0.009, "swing": 0.29, "rank": 1},
               {"path": "dropout.by_month_12", "base": 0.05, "low": 0.0, "high": 0.2, "power_low": 0.82,
                "power_high": 0.74, "mcse_low": 0.012, "mcse_high": 0.014, "swing": 0.08, "rank": 2}]
    return {"kind": "sensitivity", "title": TITLE, "scenario_digest": DIGEST, "analysis": "ancova",
            "comparison": "cord blood vs sham", "base_power": 0.8, "reps": 1000, "seed": 7, "tornado": tornado,
            "global": {"samples": 64, "rows": [{"path": "treatment.dose_response.emax", "prcc": 0.873, "rank": 1},
                                               {"path": "dropout.by_month_12", "prcc": -0.412, "rank": 2}]}}


def _sensitivity(tmp_path: Path) -> Path:
    result = _sensitivity_result()
    glob = pd.DataFrame({"sample": range(3), "treatment.dose_response.emax": [3.2, 4.1, 4.8],
                         "dropout.by_month_12": [0.1, 0.02, 0.15], "power": [0.7, 0.82, 0.86]})
    return _write(tmp_path / "s", "sensitivity", {"reps": 1000},
                  {"result.json": result, "tornado.csv": pd.DataFrame(result["tornado"]), "global.csv": glob})


FIGURES = {
    "power_curves": lambda path: plots.power_curves(_sweep_table(
        [{"design.n_per_arm": n, "treatment.dose_response.emax": e} for e in (2.0, 4.0) for n in (20, 30)]),
        "design.n_per_arm", path, target=0.8),
    "sample_size": lambda path: plots.sample_size(_sample_size_result(), path),
    "tornado": lambda path: plots.tornado(_sensitivity_result(), path),
    "assurance": lambda path: plots.assurance(_draws(), _assurance_result(), path),
}


@pytest.mark.parametrize("name", FIGURES)
def test_figures_saved_as_png_and_svg_or_returned_as_png(tmp_path, name):
    draw = FIGURES[name]
    assert draw(tmp_path / "f.png") is None
    assert draw(tmp_path / "f.svg") is None
    assert (tmp_path / "f.png").read_bytes().startswith(PNG)
    assert "<svg" in (tmp_path / "f.svg").read_text()
    assert draw(None).startswith(PNG)


def test_power_curves_of_a_named_analysis_and_refusals(tmp_path):
    table = _sweep_table([{"design.n_per_arm": n, "design.arms": ["sham", "cord blood"]} for n in (20, 40)])
    assert plots.swept_columns(table) == ["design.n_per_arm", "design.arms"]
    assert plots.curve_axis(table) == "design.n_per_arm"
    assert plots.curve_axis(table[table["design.n_per_arm"] == 20]) is None
    assert plots.power_curves(table, "design.n_per_arm", analysis="t-test").startswith(PNG)
    with pytest.raises(ScenarioError, match="not a numeric swept column"):
        plots.power_curves(table, "design.arms")
    with pytest.raises(ScenarioError, match="no rows of mmrm; it has: ancova, t-test"):
        plots.power_curves(table, "design.n_per_arm", analysis="mmrm")
    with pytest.raises(InputError, match=r"path: file must end in \.png") as info:
        plots.power_curves(table, "design.n_per_arm", tmp_path / "f.jpg")
    assert info.value.path == "path"


def _page(directory: Path) -> str:
    path = report(directory)
    assert path == directory / "report.html"
    html = path.read_text(encoding="utf-8")
    assert f"<h1>{SHOWN_TITLE}</h1>" in html
    assert TITLE not in html
    assert DIGEST in html
    assert 'src="http' not in html and "<script" not in html and "<link" not in html
    return html


def test_sweep_report(tmp_path):
    html = _page(_sweep(tmp_path))
    assert len(IMAGE.findall(html)) == 1
    assert "treatment.dose_response.emax" in html and ">t-test<" not in html   # primary rows only
    assert "<td>0.54</td>" in html                                              # power at 20 per arm, emax 2


def test_sweep_report_plots_against_the_first_numeric_axis_without_n_per_arm(tmp_path):
    points = [{"design.n_per_arm": 30, "design.arms": ["sham", "cord blood"], "treatment.dose_response.emax": e}
              for e in (2.0, 3.0, 4.0)]
    assert plots.curve_axis(_sweep_table(points)) == "treatment.dose_response.emax"
    assert 'alt="power by treatment.dose_response.emax"' in _page(_sweep(tmp_path, points))


def test_sweep_report_without_a_numeric_axis_has_no_figure(tmp_path):
    html = _page(_sweep(tmp_path, [{"design.n_per_arm": 30, "design.arms": arms}
                                   for arms in (["sham", "cord blood"], ["sham", "low", "high"])]))
    assert "data:image/png" not in html
    assert '<td>["sham", "low", "high"]</td>' in html


def test_run_report(tmp_path):
    html = _page(_run(tmp_path))
    assert "data:image/png" not in html
    for text in ("Power of ancova (cord blood vs sham): 0.810", "<td>0.74</td>", "last_child_in", "<td>21.4</td>",
                 "Group-sequential design", "obrien-fleming", "<td>0.58</td>"):
        assert text in html


def test_sample_size_report(tmp_path):
    html = _page(_sample_size(tmp_path))
    assert len(IMAGE.findall(html)) == 1
    assert "37 children per arm, 74 in total" in html
    assert "<td>0.803</td>" in html


def test_sample_size_with_unequal_arms_by_total(tmp_path):
    result = _sample_size_result()
    result["n_per_arm"] = [25, 50]
    for row in result["curve"]:
        row["n_per_arm"] = [row["total"] // 3, 2 * row["total"] // 3]
    assert plots.sample_size(result).startswith(PNG)
    directory = _write(tmp_path / "n", "sample-size", {"target": 0.8}, {"result.json": result})
    assert "25/50 children per arm, 74 in total" in _page(directory)


def test_assurance_report(tmp_path):
    out = tmp_path / "elsewhere.html"
    assert report(_assurance(tmp_path), out) == out
    html = out.read_text(encoding="utf-8")
    assert len(IMAGE.findall(html)) == 1
    for text in ("Assurance of ancova (cord blood vs sham): 0.612", "mean=3, sd=1", "<td>0.66</td>", "0.598"):
        assert text in html


def test_sensitivity_report(tmp_path):
    html = _page(_sensitivity(tmp_path))
    assert len(IMAGE.findall(html)) == 1
    assert html.index("treatment.dose_response.emax") < html.index("dropout.by_month_12")
    assert "64 samples" in html and "<td>-0.412</td>" in html


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
