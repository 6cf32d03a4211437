"""The HTML report in a real browser: headless Chromium (Debian's ``chromium``; ``.ci/run`` installs it) renders the
report of a small run and of a small sweep at 1,000 and 1,400 pixels wide, screenshots each page, and measures the
page: no horizontal scroll, every table, figure and block within the window.

The measurements come from a copy of the page with a small script that writes them into the DOM, read back with
``--dump-dom``; the screenshot is of the page itself. Set ``CBCP_SCREENSHOTS=DIR`` to keep the screenshots.
This test is never skipped: without Chromium it fails and says how to install it.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from cbcp_sim import load_scenario, simulate
from cbcp_sim.io.report import report
from cbcp_sim.planning.sweep import Axis, grid_points, sweep
from cbcp_sim.run.settings import RunSettings
from cbcp_sim.scenario import default_scenario_path

from .support import chromium

WIDTHS = (1000, 1400)
#: Changes that make a long heading (title, then every key and value changed).
CHANGES = {"population.source": "allogeneic", "population.ages": [2, 5], "eligibility.gmfcs": [2, 3, 4],
           "treatment.waning_half_life_months": 9.0, "dropout.fraction": 0.1}
MEASURE = """<script>
(function () {
  var doc = document.documentElement, r = {innerWidth: innerWidth, scrollWidth: doc.scrollWidth,
           bodyScrollWidth: document.body.scrollWidth, height: doc.scrollHeight, tables: [], outside: []};
  document.querySelectorAll("table").forEach(function (t) {
    var b = t.getBoundingClientRect();
    r.tables.push({left: b.left, right: b.right, text: t.textContent.slice(0, 60)});
  });
  document.querySelectorAll("body *").forEach(function (e) {
    var b = e.getBoundingClientRect();
    if (b.width > 0 && (b.right > innerWidth + 0.5 || b.left < -0.5)) {
      r.outside.push(e.tagName + " " + Math.round(b.left) + "-" + Math.round(b.right));
    }
  });
  var out = document.createElement("pre");
  out.id = "measurements";
  out.textContent = JSON.stringify(r);
  document.body.appendChild(out);
})();
</script>
"""


def _chromium(tmp_path: Path, *args: str) -> str:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    command = [chromium("the report's browser test"), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-dev-shm-usage", "--hide-scrollbars", "--no-first-run", "--disable-extensions",
               f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _measure(page: Path, width: int, tmp_path: Path) -> dict[str, Any]:
    """The page's measurements in a window ``width`` pixels wide."""
    probe = page.with_name(f"measure-{width}-{page.name}")
    text = page.read_text(encoding="utf-8")
    assert text.count("</body>") == 1
    probe.write_text(text.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    dom = _chromium(tmp_path, f"--window-size={width},900", "--dump-dom", probe.as_uri())
    found = re.search(r'<pre id="measurements">(.*?)</pre>', dom, re.S)
    assert found, "the measuring script did not run"
    return json.loads(html.unescape(found.group(1)))


def _screenshot(page: Path, width: int, height: int, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / f"{name}-{width}.png"
    _chromium(tmp_path, f"--window-size={width},{height}", f"--screenshot={shot}", page.as_uri())
    keep = os.environ.get("CBCP_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)
    return shot


def _check(page: Path, tmp_path: Path, name: str) -> None:
    import matplotlib.image

    for width in WIDTHS:
        m = _measure(page, width, tmp_path)
        assert m["innerWidth"] == width
        assert m["scrollWidth"] <= m["innerWidth"], f"{name} at {width} px scrolls sideways: {m['outside'][:8]}"
        assert m["bodyScrollWidth"] <= m["innerWidth"]
        assert m["tables"], "the page has tables"
        for table in m["tables"]:
            assert table["left"] >= 0 and table["right"] <= m["innerWidth"], (width, table)
        assert not m["outside"], f"{name} at {width} px: outside the window: {m['outside'][:8]}"
        height = min(int(m["height"]) + 16, 12000)
        shot = matplotlib.image.imread(_screenshot(page, width, height, tmp_path, name))
        assert shot.shape[:2] == (height, width)
        margin = shot[: int(m["height"]), -8:, :3]   # the right edge stays page background: nothing runs into it
        assert margin.min() > 0.95, f"{name} at {width} px: something reaches the right edge"


def test_run_report_fits_1000_to_1400_pixels(tmp_path):
    scenario = load_scenario(default_scenario_path(), CHANGES)
    simulate(scenario, reps=200, seed=3, jobs=1, out=tmp_path / "run", progress=False)
    page = report(tmp_path / "run")
    text = page.read_text(encoding="utf-8")
    assert "data:image/png" in text and 'id="inputs"' in text and 'id="results"' in text
    _check(page, tmp_path, "run")


def test_sweep_report_fits_1000_to_1400_pixels(tmp_path):
    base = load_scenario(default_scenario_path(), CHANGES)
    points = grid_points([Axis("design.n_per_arm", (20, 30, 40)), Axis("treatment.dose_response.emax", (3.0, 5.0))])
    sweep(base, points, RunSettings(reps=200, seed=3, jobs=1, progress=False), out=tmp_path / "sweep")
    page = report(tmp_path / "sweep", target=0.8)
    assert 'href="results.csv"' in page.read_text(encoding="utf-8")
    _check(page, tmp_path, "sweep")
