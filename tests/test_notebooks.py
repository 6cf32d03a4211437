"""The notebooks in notebooks/: each runs top to bottom without an error at a small replicate count, shows its
figures inline, and is committed without outputs.

Each notebook's first code cell is tagged "parameters" and sets ``REPS`` (simulated trials per run) and ``SEED``;
the test sets ``REPS`` to :data:`CI_REPS` there, so all six notebooks run in about a minute, and executes
the notebook with nbclient in a ``python3`` kernel whose working directory is notebooks/ (as when a user opens it
there). The executed copy is kept in memory; the files on disk are not changed.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
EXPECTED = ("01_quickstart.ipynb", "02_natural_history.ipynb", "03_design_comparison.ipynb",
            "04_sensitivity.ipynb", "05_bayesian_borrowing.ipynb", "06_which_dose.ipynb")
#: Replicates per run in CI: enough for every cell to run (sensitivity needs >= 1, the plots a few points).
CI_REPS = 200
REPS_LINE = re.compile(r"^REPS = [0-9_]+(?=\s|$)", re.MULTILINE)
#: Longest wait for one cell (s); a cell at CI_REPS takes a few seconds at most.
CELL_TIMEOUT = 300


def read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def parameters_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook's first code cell, which must be tagged "parameters"."""
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "parameters" in first.metadata.get("tags", []), "the first code cell must be tagged 'parameters'"
    return first


def test_every_notebook_is_listed():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", EXPECTED)
def test_committed_without_outputs(name):
    nb = read(name)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name} cell {i} has outputs: strip them before committing"
            assert cell.execution_count is None, f"{name} cell {i} has an execution count: strip it"


@pytest.mark.parametrize("name", EXPECTED)
def test_parameters_cell(name):
    source = parameters_cell(read(name)).source
    assert len(REPS_LINE.findall(source)) == 1, "the parameters cell sets REPS once, as `REPS = <number>`"
    reps = int(REPS_LINE.search(source).group(0).split("=")[1].replace("_", ""))
    assert 2000 <= reps <= 5000, "REPS is a user's default (2,000-5,000)"
    assert re.search(r"^SEED = 1\b", source, re.MULTILINE)


@pytest.mark.parametrize("name", EXPECTED)
def test_runs_without_error(name):
    nb = read(name)
    cell = parameters_cell(nb)
    cell.source = REPS_LINE.sub(f"REPS = {CI_REPS}", cell.source)
    # Any cell that raises makes execute() raise CellExecutionError naming the cell and the error.
    NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT,
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{name} shows no figure inline"
