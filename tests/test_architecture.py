"""The package's layers hold: imports only go down (docs/architecture.md), as the import contracts in pyproject.toml
say, and those contracts fail when an upward import is planted in a copy of the package.

The linter runs as ``lint-imports`` does, in a subprocess of this interpreter with the contracts of pyproject.toml.
The copy is found first on the path (the editable install's finder comes after the path on ``sys.meta_path``); each
run prints where ``cbcp_sim`` was found, and the test checks it is the tree it meant to lint.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "pyproject.toml"
CONTRACTS = {c["id"]: c for c in tomllib.loads(CONFIG.read_text())["tool"]["importlinter"]["contracts"]}
PAGE = ROOT / "docs" / "architecture.md"

# `python -m importlinter.cli` does nothing and exits 0 (import-linter 2.17 has no __main__ there), so call the
# function behind the `lint-imports` script. --no-cache: no .import_linter_cache directory left behind.
_LINT = """\
import importlib.util, sys
print("cbcp_sim found at", importlib.util.find_spec("cbcp_sim").origin)
from importlinter.cli import lint_imports_command
lint_imports_command(["--no-cache", "--no-logo", *sys.argv[1:]])
"""


def _lint(root: Path) -> tuple[int, str]:
    """Run the contracts of pyproject.toml on the ``cbcp_sim`` under ``root``; return (exit status, output)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
           "COLUMNS": "500", "NO_COLOR": "1"}  # one line per contract name, no colour codes
    done = subprocess.run([sys.executable, "-c", _LINT, str(CONFIG)], cwd=root, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    out = done.stdout + done.stderr
    assert f"cbcp_sim found at {root / 'cbcp_sim' / '__init__.py'}\n" in out, out
    return done.returncode, out


def _plant(path: Path, code: str) -> int:
    """Insert ``code`` after the module's ``from __future__`` line; return the line number of its last line."""
    lines = path.read_text().splitlines(keepends=True)
    at = next((i + 1 for i, line in enumerate(lines) if line.startswith("from __future__")), 0)
    lines[at:at] = [f"{line}\n" for line in code.splitlines()]
    path.write_text("".join(lines))
    return at + len(code.splitlines())


def test_contracts_are_declared():
    assert set(CONTRACTS) == {"layers", "analysis-blind", "leaves"}


def test_package_keeps_every_contract():
    code, out = _lint(ROOT)
    assert code == 0, out
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in out, out


def test_architecture_page_shows_the_layers_and_every_module():
    """docs/architecture.md gives the contract's layers in order, and a row for every module (a sub-package's
    ``__init__.py`` may go without one)."""
    text = PAGE.read_text()
    layers = ", ".join(f"`{layer}`" for layer in CONTRACTS["layers"]["layers"])
    assert f"Top to bottom: {layers}." in " ".join(text.split())
    modules = [p.relative_to(ROOT / "cbcp_sim") for p in (ROOT / "cbcp_sim").rglob("*.py")]
    rows = {f"| {'(root)' if p.parent == Path() else f'`{p.parent}/`'} | `{p.name}` |" for p in modules
            if p.parent == Path() or p.name != "__init__.py"}
    assert not [row for row in sorted(rows) if row not in text]


@pytest.mark.parametrize(
    ("module", "code", "chain", "broken"),
    [
        pytest.param("analysis/ttests.py", "import cbcp_sim.cli",
                     "cbcp_sim.analysis.ttests -> cbcp_sim.cli", {"layers", "analysis-blind"}, id="analysis-to-cli"),
        pytest.param("analysis/inference.py", "from cbcp_sim.scenario import Scenario",
                     "cbcp_sim.analysis.inference -> cbcp_sim.scenario", {"analysis-blind"},
                     id="analysis-to-scenario"),
        pytest.param("models/trial.py",
                     "import typing\nif typing.TYPE_CHECKING:\n    from cbcp_sim.run.result import SimulationResult",
                     "cbcp_sim.models.trial -> cbcp_sim.run.result", {"layers"}, id="type-checking-only"),
        pytest.param("explore/centiles.py", "def _planted():\n    import cbcp_sim.planning.sweep",
                     "cbcp_sim.explore.centiles -> cbcp_sim.planning.sweep", {"layers"}, id="inside-a-function"),
        pytest.param("vocabulary.py", "from cbcp_sim.errors import ScenarioError",
                     "cbcp_sim.vocabulary -> cbcp_sim.errors", {"layers", "leaves"}, id="vocabulary-to-errors"),
    ],
)
def test_planted_upward_import_breaks_its_contract(tmp_path, module, code, chain, broken):
    shutil.copytree(ROOT / "cbcp_sim", tmp_path / "cbcp_sim", ignore=shutil.ignore_patterns("__pycache__"))
    line = _plant(tmp_path / "cbcp_sim" / module, code)
    status, out = _lint(tmp_path)
    assert status == 1, out
    assert f"{chain} (l.{line})" in out, out
    for contract, options in CONTRACTS.items():
        assert f"{options['name']} {'BROKEN' if contract in broken else 'KEPT'}" in out, out
