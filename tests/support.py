"""Shared test helpers: running the CLI in-process, one-line error checks, hypothesis strategies."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from cbcp_sim.cli import main
from cbcp_sim.scenario import MAX_LIMIT_LOGIT_SD


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``cbcp-sim argv`` in-process; return (exit status, stdout, stderr). Argparse errors exit via SystemExit."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, out: str, err: str, *fragments: str) -> None:
    """Exit 2, nothing on stdout, exactly one stderr line starting with 'error:' and naming the field."""
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error:")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def stable(max_examples: int) -> settings:
    """Derandomized settings: the same examples on every run."""
    return settings(derandomize=True, max_examples=max_examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def floats(lo: float, hi: float, **kwargs: Any) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, **kwargs)


def five(lo: float, hi: float) -> st.SearchStrategy[list[float]]:
    """One value per GMFCS level I-V."""
    return st.lists(floats(lo, hi), min_size=5, max_size=5)


@st.composite
def nh_overrides(draw: st.DrawFn) -> dict[str, Any]:
    """Every natural-history value drawn from the schema's allowed range (limit_sd within its limit's bound)."""
    limit = draw(five(1.0, 99.0))
    return {
        "natural_history.limit": limit,
        "natural_history.limit_sd": [draw(floats(0.0, MAX_LIMIT_LOGIT_SD * x * (1.0 - x / 100.0))) for x in limit],
        "natural_history.age90": draw(five(0.1, 20.0)),
        "natural_history.peak_age": draw(five(0.0, 21.0)),
        "natural_history.decline": draw(five(0.0, 100.0)),
        "natural_history.rate_sd_log": draw(floats(0.0, 2.0)),
        "natural_history.limit_rate_corr": draw(floats(-0.99, 0.99)),
        "natural_history.sem": draw(floats(0.0, 20.0)),
        "natural_history.sem_extreme": draw(floats(0.0, 20.0)),
        "natural_history.occasion_sd": draw(floats(0.0, 20.0)),
        "natural_history.occasion_months": draw(floats(0.01, 240.0)),
        "natural_history.trial_effect_per_year": draw(floats(-20.0, 20.0)),
        "natural_history.trial_effect_months": draw(floats(0.0, 240.0)),
    }


#: The plain normal model: baseline and primary-visit scores bivariate normal, SD 5.5, correlation 0.5 (so the
#: SD of the change is 5.5), no dropout, a t-test of the change.
PLAIN = {"outcome.model": "normal", "analysis.primary": "ttest", "analysis.secondary": [], "dropout.fraction": 0.0,
         "outcome.sd": 5.5, "outcome.correlation": 0.5}


def plain_toml(effect: float = 3.0, n_per_arm: object = 36) -> str:
    """The plain normal model as a scenario file."""
    return f"""title = "plain normal model"
[outcome]
model = "normal"
effect = {effect}
sd = 5.5
correlation = 0.5
[design]
n_per_arm = {n_per_arm}
[dropout]
fraction = 0.0
[analysis]
primary = "ttest"
secondary = []
"""


def kill_after_chunks(command: list[str], chunks: Path, count: int, within: float = 60.0) -> None:
    """Start ``command`` in a session of its own, SIGKILL the whole group (the process and its workers) as soon as
    ``chunks`` holds ``count`` saved chunks (``*.npz``), and wait until every process of the group has gone."""
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + within
        while len(list(chunks.glob("*.npz"))) < count:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, f"no {count} chunks saved in {within:g} s"
            time.sleep(0.005)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    gone = time.monotonic() + 10
    while True:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        assert time.monotonic() < gone, "processes of the killed run are still alive"
        time.sleep(0.05)


#: Names of a headless Chromium on PATH, Debian's first.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium(purpose: str) -> str:
    """The path of a headless Chromium; without one the test fails (never skips) and says how to install it."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(f"headless Chromium is needed for {purpose}: apt-get install -y chromium (Debian; `make test` "
                "installs it)")
