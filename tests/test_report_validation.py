"""``cbcp-sim report`` checks what it reads (issue 19, point 5): a results directory whose JSON or CSV files hold a
value of the wrong type, miss a key or a column, or are not JSON objects at all gives one line naming the file, the
key and what was expected (exit 2), never a traceback; values a writer leaves null (NaN) still render.

Real directories are made once (``made``): a small run (group-sequential, with the trial calendar), a sweep, a
sample size, an assurance and a sensitivity analysis. Every key of each of their JSON files is then replaced by a
string, a number, null, a list and an object, or deleted, and the whole document by a list: ``report`` must write a
page or raise the one :class:`ScenarioError` the command line prints as its one line, naming the file and the key
(the command line itself: the explicit cases). A key the report reads (declared in ``report_inputs.READS``) is
changed alone; the keys it does not read are changed all at once (those at the same depth together) and must leave
a page. Of a list, and of an object whose values are all objects (a table by name: trial-calendar quantities,
priors), the first item stands for the others; the scenario a manifest keeps is one value (the report reads
``scenario.toml``). In that loop figures are built but not drawn (drawing takes most of the time); pages with every
nullable value null are drawn in full.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import struct
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cbcp_sim.cli import main
from cbcp_sim.errors import ScenarioError
from cbcp_sim.io import plots
from cbcp_sim.io.report import report
from cbcp_sim.io.report_inputs import KIND, READS, ListOf, Object, Value
from cbcp_sim.run.store import MANIFEST
from tests.support import assert_one_line_error, cli

NORMAL = ["--set", "outcome.model=normal", "--set", "outcome.effect=3", "--jobs", "1", "--quiet"]
COMMANDS = {
    "run": ["run", "group_sequential", "--reps", "200", "--quiet"],
    "sweep": ["sweep", *NORMAL, "--grid", "design.n_per_arm=20,40", "--grid", "outcome.sd=5,6.5", "--reps", "100"],
    "sample-size": ["sample-size", *NORMAL, "--reps", "200"],
    "assurance": ["assurance", *NORMAL, "--prior", "outcome.effect=normal(3, 1)", "--draws", "6",
                  "--reps-per-draw", "50"],
    "sensitivity": ["sensitivity", *NORMAL, "--range", "outcome.effect=1:5", "--range", "outcome.sd=4:8",
                    "--samples", "12", "--reps", "50"],
}
DELETE = object()
MUTATIONS = {"a string": "text", "a number": 1.5, "null": None, "a list": [1.5], "an object": {"x": 1.5},
             "deleted": DELETE}
#: A PNG header (800 × 600) standing for a figure built but not drawn.
UNDRAWN = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + struct.pack(">II", 800, 600)


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """One finished directory of each kind, written by the command line."""
    root = tmp_path_factory.mktemp("made")
    for kind, argv in COMMANDS.items():
        assert main([*argv, "--out", str(root / kind)]) == 0, kind
    return {kind: root / kind for kind in COMMANDS}


@pytest.fixture
def undrawn(monkeypatch):
    """Figures built from the data but not drawn."""
    monkeypatch.setattr(plots, "_output", lambda fig, path: (plots._pyplot().close(fig), UNDRAWN)[1])


def _copy(directory: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(directory, tmp_path / directory.name, ignore=shutil.ignore_patterns("chunks")))


def _write(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document))


def _keys(value: Any, key: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path of a JSON document (see the module's doc for what stands for what)."""
    if isinstance(value, dict):
        table = bool(value) and all(isinstance(v, dict) for v in value.values())
        for i, name in enumerate(value):
            yield (*key, name)
            if (i == 0 or not table) and (*key, name) != ("inputs", "scenario"):
                yield from _keys(value[name], (*key, name))
    elif isinstance(value, list) and value:
        yield (*key, 0)
        yield from _keys(value[0], (*key, 0))


def _declared(key: tuple[Any, ...], spec: Any) -> bool:
    """Whether the report reads the value at ``key`` (``spec`` describes the file)."""
    for part in key:
        if isinstance(spec, ListOf):
            spec = spec.item
        elif isinstance(spec, Object):
            spec = {**spec.required, **spec.optional}.get(part, spec.rest)
        else:
            return False
        if spec is None:
            return False
    return True


def _mutated(document: Any, keys: list[tuple[Any, ...]], value: Any) -> Any:
    """``document`` with the value at each of ``keys`` replaced by ``value`` (deleted for :data:`DELETE`)."""
    out = copy.deepcopy(document)
    for key in keys:
        parent = out
        for part in key[:-1]:
            parent = parent[part]
        if value is DELETE:
            del parent[key[-1]]
        else:
            parent[key[-1]] = copy.deepcopy(value)
    return out


def _shown(key: tuple[Any, ...]) -> str:
    return "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in key).lstrip(".")


def _cases(document: Any, specs: list[Any]) -> Iterator[tuple[str, Any, str | None]]:
    """``(what was changed, the document changed, what the line must name)``: each key the report reads alone (a
    page or a line naming the key's first part), the others at each depth together (a page: None), the document
    as a list."""
    keys = list(_keys(document))
    read = [k for k in keys if any(_declared(k, spec) for spec in specs)]
    for key in read:
        for words, value in MUTATIONS.items():
            yield f"{_shown(key)} as {words}", _mutated(document, [key], value), str(key[0])
    others = [k for k in keys if k not in read]
    for depth in sorted({len(k) for k in others}):
        at = [k for k in others if len(k) == depth]
        for words, value in MUTATIONS.items():
            yield f"{len(at)} unread keys at depth {depth} as {words}", _mutated(document, at, value), None
    yield "the document as a list", [document], "must be a JSON object, got a list"


def _outcome(directory: Path, name: str, key: str | None) -> str | None:
    """None if ``report`` writes a page, or (for a ``key``) raises a :class:`ScenarioError` naming the file ``name``
    and ``key``; else what it did."""
    try:
        report(directory)
    except ScenarioError as exc:
        return None if key is not None and name in str(exc) and key in str(exc) else f"error: {exc}"
    except Exception:  # any other escape is the failure this test looks for
        return traceback.format_exc(limit=-2)
    return None


JSON_FILES = [(kind, name) for kind in COMMANDS for name in READS[kind] if name.endswith(".json")]


@pytest.mark.parametrize(("kind", "name"), JSON_FILES, ids=[f"{k}-{n}" for k, n in JSON_FILES])
def test_every_key_of_every_json_file_replaced_or_deleted(undrawn, made, tmp_path, kind, name):
    directory = _copy(made[kind], tmp_path)
    path = directory / name
    specs = [READS[kind][name], *([KIND] if name == MANIFEST else [])]
    failures, count = [], 0
    for change, document, key in _cases(json.loads(path.read_text()), specs):
        count += 1
        _write(path, document)
        problem = _outcome(directory, name, key)
        if problem:
            failures.append(f"{change}: {problem}")
    assert not failures, f"{len(failures)} of {count} changes:\n" + "\n".join(failures[:20])


@pytest.mark.parametrize(("kind", "name", "key", "value", "message"), [
    ("run", "result.json", ("power",), "x", "power: must be a number in [0, 1] or null, got a string"),
    ("run", "result.json", ("ci_low",), [0.1], "ci_low: must be a number in [0, 1] or null, got a list"),
    ("run", "result.json", ("n_reps",), 200.5, "n_reps: must be a whole number, got 200.5"),
    ("run", "result.json", ("analyses", 0, "power"), DELETE,
     "its run results lack 'analyses[0].power': written by another version?"),
    ("run", "result.json", ("analyses", 0, "power_all_trials"), "x",
     "analyses[0].power_all_trials: must be a number in [0, 1] or null, got a string"),
    ("run", "result.json", ("analyses", 0, "coverage"), 1.5,
     "analyses[0].coverage: must be a number in [0, 1] or null, got 1.5"),
    ("run", "result.json", ("operations", "screened"), [], "operations.screened: must be a JSON object, got an empty"),
    ("run", "result.json", ("sequential", "looks"), None, "sequential.looks: must be a whole number, got null"),
    ("run", "manifest.json", ("kind",), ["run"], "kind: must be a string, got a list"),
    ("run", "manifest.json", ("inputs", "chunk_size"), "1000", "inputs.chunk_size: must be a whole number"),
    ("sweep", "manifest.json", ("inputs", "points", 1, "outcome.sd"), DELETE,
     'inputs.points[1]: must set the keys of inputs.points[0] (design.n_per_arm, outcome.sd), got design.n_per_arm'),
    ("sweep", "manifest.json", ("inputs", "points", 0, "outcome.sd"), None,
     'inputs.points[0]."outcome.sd": must be a value (no null), got null'),
    ("sweep", "manifest.json", ("inputs", "points"), [], "inputs.points: must be a non-empty list, got an empty"),
    ("sample-size", "result.json", ("curve", 2, "n_per_arm"), "40", "curve[2].n_per_arm: must be a whole number or a"),
    ("sample-size", "result.json", ("target",), None, "target: must be a number in [0, 1], got null"),
    ("assurance", "result.json", ("priors", "outcome.effect", "distribution"), 3,
     'priors."outcome.effect".distribution: must be a string, got 3'),
    ("assurance", "result.json", ("power_quantiles", "q50"), "0.7",
     "power_quantiles.q50: must be a number in [0, 1], got a string"),
    ("sensitivity", "result.json", ("tornado", 1, "rank"), 1.5, "tornado[1].rank: must be a whole number, got 1.5"),
    ("sensitivity", "result.json", ("global", "rows"), {}, "global.rows: must be a list, got a JSON object"),
])
def test_the_line_names_the_file_the_key_and_what_was_expected(capsys, made, tmp_path, kind, name, key, value,
                                                               message):
    directory = _copy(made[kind], tmp_path)
    path = directory / name
    _write(path, _mutated(json.loads(path.read_text()), [key], value))
    assert_one_line_error(*cli(capsys, "report", str(directory)), f"error: {path}: {message}")


def test_a_document_that_is_not_an_object_or_not_json(capsys, made, tmp_path):
    directory = _copy(made["run"], tmp_path)
    path = directory / "result.json"
    with_nan = json.dumps({**json.loads(path.read_text()), "power": float("nan")})
    for text, message in (("[]", "must be a JSON object, got an empty list"),
                          ('"run"', "must be a JSON object, got a string"),
                          (with_nan, "power: must be a number in [0, 1] or null, got NaN"),
                          ("[" * 100_000, "cannot be read")):
        path.write_text(text)
        assert_one_line_error(*cli(capsys, "report", str(directory)), f"error: {path}: {message}")


@pytest.mark.parametrize(("kind", "name", "column", "value", "message"), [
    ("sweep", "results.csv", "power", "x", "must be a number in [0, 1], got a string"),
    ("sweep", "results.csv", "coverage", 1.5, "must be a number in [0, 1], got 1.5"),
    ("sweep", "results.csv", "n_failed", 2.5, "must be a whole number, got 2.5"),
    ("assurance", "draws.csv", "power", "x", "must be a number in [0, 1], got a string"),
])
def test_csv_columns_of_the_wrong_type(capsys, made, tmp_path, kind, name, column, value, message):
    directory = _copy(made[kind], tmp_path)
    path = directory / name
    table = pd.read_csv(path).astype({column: object})
    table.loc[1, column] = value
    table.to_csv(path, index=False)
    assert_one_line_error(*cli(capsys, "report", str(directory)), f"error: {path}: column {column}, row 2: {message}")


@pytest.mark.parametrize(("kind", "name", "column"), [("sweep", "results.csv", "power"),
                                                      ("sweep", "results.csv", "role"),
                                                      ("assurance", "draws.csv", "power")])
def test_csv_columns_missing(capsys, made, tmp_path, kind, name, column):
    directory = _copy(made[kind], tmp_path)
    path = directory / name
    pd.read_csv(path).drop(columns=column).to_csv(path, index=False)
    assert_one_line_error(*cli(capsys, "report", str(directory)),
                          f"error: {path}: its {kind} results lack '{column}': written by another version?")


def _nulled(value: Any, spec: Any) -> Any:
    """``value`` with every value its spec allows to be null (a :class:`Value`) set to null."""
    if isinstance(spec, ListOf):
        return [_nulled(v, spec.item) for v in value]
    if isinstance(spec, Object) and isinstance(value, dict):
        known = {**spec.required, **spec.optional}
        return {k: None if isinstance(s := known.get(k, spec.rest), Value) and s.null else _nulled(v, s)
                for k, v in value.items()}
    return value


@pytest.mark.parametrize("kind", COMMANDS)
def test_values_a_writer_leaves_null_still_render(made, tmp_path, kind):
    """Every value that may be null (NaN written as null: an MCSE from one trial, an unknown true effect, a power
    no trial gave) null at once, and in a sweep's table those cells (and the failures) empty: the page is drawn in
    full, with no "nan" in it."""
    directory = _copy(made[kind], tmp_path)
    for name, spec in READS[kind].items():
        if name.endswith(".json"):
            path = directory / name
            _write(path, _nulled(json.loads(path.read_text()), spec))
    if kind == "sweep":
        table = pd.read_csv(directory / "results.csv")
        table[["power", "mcse", "ci_low", "ci_high", "n_failed"]] = float("nan")
        table.to_csv(directory / "results.csv", index=False)
    html = report(directory).read_text(encoding="utf-8")
    if kind in ("run", "assurance"):
        assert "not computed (no trial could be analysed)" in html
    assert not re.search(r"\bnan\b", re.sub(r'src="data:[^"]*"', "", html), re.IGNORECASE)


def test_power_over_all_trials_shown_only_when_an_analysis_failed(made, tmp_path):
    directory = _copy(made["run"], tmp_path)
    assert "power, all trials" not in report(directory).read_text(encoding="utf-8")
    path = directory / "result.json"
    result = json.loads(path.read_text())
    row = result["analyses"][-1]
    row.update(n_failed=40, power_all_trials=0.123, power=0.15)
    _write(path, result)
    html = report(directory).read_text(encoding="utf-8")
    assert html.count("<th>power, all trials</th>") == 1
    assert '<td class="n">0.12</td>' in html   # MCSE sqrt(0.123 × 0.877 / 200) = 0.023: two decimals
