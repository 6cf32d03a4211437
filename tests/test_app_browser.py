"""The web app in a real browser: ``cbcp-sim app`` started as a user starts it, driven by Playwright in headless
Chromium (Debian's ``chromium``, which ``make test`` installs; Playwright is pointed at it, no browser download).

Checks: children per arm set and 2,000 trials run, the power shown is the power ``cbcp-sim run --json`` gives for
the same scenario and seed; a bad value shows the CLI's one-line message beside its field; a cancelled run leaves
the page responsive and its processes stopped; the sample size shown is the CLI's; the exports reproduce the run.
A screenshot of each screen is saved to ``$CBCP_SCREENSHOTS`` when set (``docs/app/`` holds the README's).
Never skipped: without Chromium or Playwright it fails and says how to install them.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cbcp_sim.app.fields import field_id
from cbcp_sim.cli import main as cli_main

from .support import chromium

#: The scenario of the power check: the default with 40 children per arm, 2,000 trials, seed 3.
N_PER_ARM, REPS, SEED = 40, 2000, 3
WAIT_MS = 120_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "cbcp_sim.cli", "app", "--no-browser", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"cbcp-sim app did not start: {process.stdout.read().decode()[-2000:]}")
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}/"
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is needed for the app's browser test: pip install -e '.[test]' (`make test`)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium("the app's browser test"),
                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(WAIT_MS)
    pg.goto(server)
    pg.wait_for_selector("text=design.n_per_arm")
    yield pg
    context.close()


def _field(page: Any, path: str) -> Any:
    return page.locator(f"#{field_id(path)}")


def _error_slot(page: Any, path: str) -> Any:
    return page.locator(f"#err-{field_id(path)}")


def _set(page: Any, path: str, value: str) -> None:
    box = _field(page, path)
    box.fill(value)
    box.press("Tab")


def _screen(page: Any, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def _screenshot(page: Any, name: str, part: Any = None) -> None:
    """The whole page, or ``part`` of it (a locator), saved to ``$CBCP_SCREENSHOTS`` when set."""
    keep = os.environ.get("CBCP_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        path = str(Path(keep) / f"app-{name}.png")
        if part is None:
            page.screenshot(path=path, full_page=True)
        else:
            part.screenshot(path=path)


def _cli(capsys: Any, *args: str) -> tuple[int, str, str]:
    status = cli_main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_bad_value_shows_the_cli_message_beside_its_field(page, capsys):
    _set(page, "design.alpha", "2")
    status, _, err = _cli(capsys, "run", "default", "--set", "design.alpha=2", "--reps", "10")
    assert status == 2 and err.count("\n") == 1
    slot = _error_slot(page, "design.alpha")
    page.wait_for_function("(e) => e.textContent.length > 0", arg=slot.element_handle())
    assert slot.text_content() == err.strip()
    assert "is-invalid" in _field(page, "design.alpha").get_attribute("class")
    _screenshot(page, "1-scenario-error", page.locator(".card", has=_field(page, "design.alpha")))
    _set(page, "design.alpha", "0.05")
    page.wait_for_function("(e) => e.textContent.length == 0", arg=slot.element_handle())
    _set(page, "treatment.cells", "UCB-durable")  # the preset's values move: noted beside the fields left as they were
    note = page.locator(f"#note-{field_id('treatment.waning_half_life_months')}")
    page.wait_for_function("(e) => e.textContent.endsWith('(preset UCB-durable)')", arg=note.element_handle())


def test_run_power_equals_the_cli_and_exports_reproduce_it(page, capsys, tmp_path):
    _set(page, "design.n_per_arm", str(N_PER_ARM))
    page.wait_for_selector(f"text=[set design.n_per_arm = {N_PER_ARM}]")
    _screenshot(page, "1-scenario")
    _screen(page, "2 Look before running")
    page.wait_for_selector("#trajectories_plot img[src^='data:image/png']")
    page.wait_for_selector("#natural_plot img[src^='data:image/png']")
    assert "cord blood - sham" in page.locator("#trajectories_text").text_content()
    _screenshot(page, "2-look")
    _screen(page, "3 Run")
    page.locator("#reps").fill(str(REPS))
    page.locator("#seed").fill(str(SEED))
    page.locator("#run").click()
    page.wait_for_selector("#run_table table")
    shown = page.locator("#run_text").text_content()
    status, out, _ = _cli(capsys, "run", "default", "--set", f"design.n_per_arm={N_PER_ARM}", "--reps", str(REPS),
                          "--seed", str(SEED), "--json")
    cli = json.loads(out)
    assert status == 0
    power = re.search(r"^\s+power\s+([0-9.]+)", shown, re.M)
    assert power and float(power.group(1)) == pytest.approx(cli["power"], abs=5e-4)
    table_power = page.locator("#run_table tbody tr").first.locator("td").nth(3).text_content()
    assert float(table_power) == cli["power"]  # 2,000 trials: power is a multiple of 0.0005, shown exactly
    assert f"{cli['power']:.3f}" in shown and f"{REPS:,} replicates; seed {SEED}" in shown
    _screenshot(page, "3-run")

    _screen(page, "5 Export")
    page.wait_for_selector("#command >> text=cbcp-sim run")
    command = page.locator("#command").text_content()
    assert command.startswith(f"cbcp-sim run default --set design.n_per_arm={N_PER_ARM} --reps {REPS} --seed {SEED}")
    with page.expect_download() as dl:
        page.locator("#download_toml").click()
    toml = tmp_path / "scenario.toml"
    dl.value.save_as(toml)
    status, out, _ = _cli(capsys, "run", str(toml), "--reps", str(REPS), "--seed", str(SEED), "--json")
    assert status == 0 and json.loads(out)["power"] == cli["power"]
    with page.expect_download() as dl:
        page.locator("#download_csv").click()
    dl.value.save_as(tmp_path / "results.csv")
    assert f",{cli['power']}," in (tmp_path / "results.csv").read_text()
    with page.expect_download() as dl:
        page.locator("#download_report").click()
    dl.value.save_as(tmp_path / "report.html")
    assert "<html" in (tmp_path / "report.html").read_text()[:500].lower()
    _screenshot(page, "5-export")


def test_cancel_leaves_the_page_responsive(page):
    _screen(page, "3 Run")
    page.locator("#reps").fill("1000000")
    page.locator("#run").click()
    page.wait_for_selector("#run_progress .bar")
    page.wait_for_selector("#run_progress >> text=/of 1000 chunks; \\d+ s elapsed; about \\d+ s left/")
    page.locator("#cancel_run").click()
    page.wait_for_selector("#run_progress >> text=Cancelled.", timeout=30_000)
    _screen(page, "1 Scenario")
    _set(page, "design.visits", "[0, 12, 6]")
    slot = _error_slot(page, "design.visits")
    page.wait_for_function("(e) => e.textContent.startsWith('error: design.visits')", arg=slot.element_handle(),
                           timeout=10_000)


def test_sample_size_equals_the_cli(page, capsys):
    _set(page, "treatment.dose_response.emax", "20")
    page.wait_for_selector("text=[set treatment.dose_response.emax = 20]")
    _screen(page, "4 Plan")
    page.locator("#ss_reps").fill("500")
    page.locator("#sample_size").click()
    page.wait_for_selector("#plan_plot img[src^='data:image/png']")
    shown = page.locator("#plan_text").text_content()
    status, out, _ = _cli(capsys, "sample-size", "default", "--set", "treatment.dose_response.emax=20", "--target",
                          "0.8", "--reps", "500", "--seed", "1", "--jobs", "1", "--json")
    assert status == 0
    n = json.loads(out)["n_per_arm"]
    assert re.search(rf"^\s+n_per_arm\s+{n}\s", shown, re.M), shown[:600]
    _screenshot(page, "4-plan")


def test_an_uploaded_scenario_is_checked_by_the_cli_loader(page, capsys):
    status, _, err = _cli(capsys, "run", "default", "--set", "design.alpha=3", "--reps", "10")
    assert status == 2
    page.locator("#upload").set_input_files(files=[{"name": "../" * 2 + "evil.toml", "mimeType": "application/toml",
                                                    "buffer": b"[design]\nalpha = 3\n"}])
    page.wait_for_selector(f"#status >> text={err.strip()}")
    page.locator("#upload").set_input_files(files=[{"name": "my trial.toml", "mimeType": "application/toml",
                                                    "buffer": b'title = "My trial"\n[design]\nn_per_arm = 12\n'}])
    page.wait_for_selector("#scenario_title >> text=My trial")
    assert _field(page, "design.n_per_arm").input_value() == "[12, 12]"
    assert page.locator("#status").text_content() == ""


def _running(marker: str) -> list[str]:
    found = subprocess.run(["ps", "-ww", "-eo", "stat=,args="], capture_output=True, text=True, check=True).stdout
    return [line for line in found.splitlines() if marker in line and not line.startswith("Z")]


def test_a_closed_page_stops_its_run_and_removes_its_folder(browser, server):
    context = browser.new_context()
    pg = context.new_page()
    pg.set_default_timeout(WAIT_MS)
    pg.goto(server)
    pg.wait_for_selector("text=design.n_per_arm")
    _screen(pg, "3 Run")
    pg.locator("#reps").fill("999999")
    pg.locator("#run").click()
    pg.wait_for_selector("#run_progress >> text=chunks")
    running = _running("--reps 999999")
    assert len(running) == 1, running
    folder = Path(re.search(r"--out (\S+)/run-\d+", running[0]).group(1))
    assert folder.is_dir()
    context.close()
    deadline = time.monotonic() + 30
    while (_running("--reps 999999") or folder.exists()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _running("--reps 999999") == [] and not folder.exists()
