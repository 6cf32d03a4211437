"""What the app runs: ``cbcp-sim`` command lines, in a per-session working folder.

Every result the app shows is printed by the command line itself, run as ``python -m cbcp_sim.cli`` in a child
process: the same library calls (``simulate``, ``sample_size``, ``sweep``, ``assurance``, ``sensitivity``,
``trajectories``, ``natural-history``, ``report``), the same text, and the command the Export screen shows is the
one that ran. Arguments are passed as a list, never through a shell, and no text from the page is evaluated.

The working folder is a fresh temporary directory per session. The app writes only there, under names it chooses
(an uploaded file is saved as ``uploaded.toml`` whatever it was called), and every path it hands out is checked to
lie inside it.
"""

from __future__ import annotations

import math
import re
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cbcp_sim.errors import InputError
from cbcp_sim.planning.sweep import parse_axis
from cbcp_sim.run.settings import CHUNK_SIZE
from cbcp_sim.scenario import Scenario
from cbcp_sim.scenario.spec import bundled_scenarios, inline_toml

#: The name an uploaded scenario is saved under in the working folder.
UPLOADED = "uploaded.toml"
#: The path a power curve runs over: children per arm.
CHILDREN = "design.n_per_arm"
#: Largest scenario file taken from the page (the bundled ones are under 10 kB).
MAX_UPLOAD_BYTES = 1_000_000


class Workspace:
    """A session's working folder: a new temporary directory, removed by :meth:`close`."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="cbcp-app-")).resolve()
        self._count = 0

    def inside(self, name: str) -> Path:
        """``root/name`` for a name the app chose; refused if it would lie outside the folder."""
        path = (self.root / name).resolve()
        if path == self.root or self.root not in path.parents:
            raise InputError("file", f"{name!r} is not a name inside the working folder")
        return path

    def fresh(self, stem: str) -> Path:
        """A new, not yet existing path ``root/stem-N`` (one per command, so no run meets another's files)."""
        self._count += 1
        return self.inside(f"{stem}-{self._count}")

    def save_upload(self, data: bytes) -> Path:
        """An uploaded scenario's bytes saved as ``root/uploaded.toml``: the page's file name is never used."""
        if len(data) > MAX_UPLOAD_BYTES:
            raise InputError("scenario", f"an uploaded scenario of at most {MAX_UPLOAD_BYTES:,} bytes, got "
                                         f"{len(data):,}")
        path = self.inside(UPLOADED)
        path.write_bytes(data)
        return path

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def shown_name(name: str) -> str:
    """An uploaded file's name as the page may show it: its last part, printable characters only, at most 80."""
    last = re.split(r"[\\/]", name)[-1]
    return re.sub(r"[^\w .()+-]", "_", last)[:80] or "scenario.toml"


@dataclass(frozen=True)
class Base:
    """The scenario the page starts from: a bundled scenario by name, or an uploaded file saved in the working
    folder (``shown`` is the name the user gave it, for the command shown)."""

    path: Path
    shown: str

    @classmethod
    def bundled(cls, name: str) -> Base:
        scenarios = bundled_scenarios()
        if name not in scenarios:
            raise InputError("scenario", f"one of the bundled scenarios ({', '.join(scenarios)}), got {name!r}")
        return cls(scenarios[name], name)


def scenario_args(base: Base, effect: str | None, items: tuple[tuple[str, Any], ...]) -> list[str]:
    """The scenario part of a command: the file, ``--effect`` and one ``--set PATH=VALUE`` per override, each value
    written as ``--set`` reads it."""
    args = [str(base.path)]
    if effect:
        args += ["--effect", effect]
    for path, value in items:
        args += ["--set", f"{path}={inline_toml(value)}"]
    return args


@dataclass(frozen=True)
class Command:
    """One ``cbcp-sim`` command: its arguments, the directory it writes (if any), the file the page shows or sends
    (a figure, the report; if any), and how many chunks it saves when that is known in advance (for the progress
    bar)."""

    args: tuple[str, ...]
    out: Path | None = None
    file: Path | None = None
    chunks: int | None = None

    def argv(self) -> list[str]:
        """The child process's arguments: this Python running the command line."""
        return [sys.executable, "-m", "cbcp_sim.cli", *self.args]

    def text(self, base: Base, workspace: Workspace) -> str:
        """The command as a user types it: the scenario by the name they know, working-folder paths relative."""
        shown = []
        for arg in self.args:
            arg = base.shown if arg == str(base.path) else arg.replace(f"{workspace.root}/", "")
            shown.append(arg)
        return shlex.join(["cbcp-sim", *shown])


def _settings(reps: str, seed: str, jobs: str) -> list[str]:
    return ["--reps", reps, "--seed", seed, "--jobs", jobs]


def _chunks(reps: str, points: int = 1) -> int | None:
    """Chunks a command of ``reps`` trials per point saves (``None`` if ``reps`` is not a whole number: the command
    line then refuses it)."""
    return points * math.ceil(int(reps) / CHUNK_SIZE) if reps.isdigit() and int(reps) > 0 else None


def run(scenario: list[str], reps: str, seed: str, jobs: str, workspace: Workspace) -> Command:
    """``cbcp-sim run``, saving its chunks and result in a new directory (for the CSV and the report)."""
    out = workspace.fresh("run")
    return Command(("run", *scenario, *_settings(reps, seed, jobs), "--out", str(out)), out, chunks=_chunks(reps))


def sample_size(scenario: list[str], target: str, reps: str, seed: str, jobs: str,
                workspace: Workspace) -> Command:
    """``cbcp-sim sample-size`` with its power-curve figure."""
    out = workspace.fresh("sample-size")
    plot = out.with_suffix(".png")
    return Command(("sample-size", *scenario, "--target", target, *_settings(reps, seed, jobs),
                    "--out", str(out), "--plot", str(plot)), out, plot)


def power_curve(scenario: list[str], sizes: str, reps: str, seed: str, jobs: str, workspace: Workspace,
                target: str | None = None) -> Command:
    """``cbcp-sim sweep --grid design.n_per_arm=SIZES`` (``first:last:step`` or ``n1,n2,...``, read by the sweep's
    own parser, which refuses what it cannot read) with its power-curve figure."""
    out = workspace.fresh("power-curve")
    plot = out.with_suffix(".png")
    grid = f"{CHILDREN}={sizes.strip()}"
    args = ["sweep", *scenario, "--grid", grid, *_settings(reps, seed, jobs), "--out", str(out), "--plot", str(plot)]
    if target is not None:
        args += ["--target", target]
    try:
        points = len(parse_axis(grid).values)
    except InputError:  # the command line says why, as it runs
        points = None
    return Command(tuple(args), out, plot, None if points is None else _chunks(reps, points))


def assurance(scenario: list[str], draws: str, reps_per_draw: str, seed: str, jobs: str,
              workspace: Workspace) -> Command:
    """``cbcp-sim assurance`` over the scenario's priors, with its histogram of power over the draws."""
    out = workspace.fresh("assurance")
    plot = out.with_suffix(".png")
    return Command(("assurance", *scenario, "--draws", draws, "--reps-per-draw", reps_per_draw, "--seed", seed,
                    "--jobs", jobs, "--out", str(out), "--plot", str(plot)), out, plot)


def tornado(scenario: list[str], reps: str, seed: str, jobs: str, workspace: Workspace) -> Command:
    """``cbcp-sim sensitivity`` one at a time (no Latin-hypercube points) over the scenario's ranges: the tornado."""
    out = workspace.fresh("sensitivity")
    plot = out.with_suffix(".png")
    return Command(("sensitivity", *scenario, "--samples", "0", *_settings(reps, seed, jobs), "--out", str(out),
                    "--plot", str(plot)), out, plot)


def trajectories(scenario: list[str], workspace: Workspace) -> Command:
    """``cbcp-sim trajectories`` with its figure: the assumed GMFM-66 course by arm and untreated."""
    plot = workspace.fresh("trajectories").with_suffix(".png")
    return Command(("trajectories", *scenario, "--plot", str(plot)), file=plot)


def natural_history(scenario: Scenario, args: list[str], workspace: Workspace) -> Command:
    """``cbcp-sim natural-history`` of the children ``scenario`` enrols (read from ``args``, the scenario part of a
    command): ages at enrolment, the eligible GMFCS levels in the population's mix, followed to the primary
    visit."""
    mix = scenario.population.gmfcs_mix
    levels = [g for g in scenario.eligibility.gmfcs if mix[g - 1] > 0] or list(scenario.eligibility.gmfcs)
    lo, hi = scenario.population.ages
    plot = workspace.fresh("natural-history").with_suffix(".png")
    return Command(("natural-history", "--scenario", *args, "--enrol-ages", f"{lo:g}:{hi:g}",
                    "--gmfcs", ",".join(map(str, levels)), "--mix", ",".join(f"{mix[g - 1]:g}" for g in levels),
                    "--follow-up", f"{scenario.design.primary_visit:g}", "--plot", str(plot)), file=plot)


def report(run_dir: Path, workspace: Workspace) -> Command:
    """``cbcp-sim report`` of a finished run's directory."""
    page = workspace.fresh("report").with_suffix(".html")
    return Command(("report", str(run_dir), "--out", str(page)), file=page)
