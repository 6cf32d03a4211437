"""Fuzzing scenario files and command-line options (issue 19, point 8): whatever the input, a command exits 0
without a warning, or exits 2 with one line ``error: ...`` and no traceback.

Scenario files: the bundled ``scenarios/*.toml`` are read and mutated (a value replaced by one of another type
or at or beyond its schema bounds, keys deleted, unknown keys added, arms duplicated, tables emptied, lists cut
or grown, keys set to other values they allow, entries of the planning tables keyed by any scenario path, the
text itself corrupted), written back and run by ``run``, ``sweep``, ``sample-size``, ``assurance``,
``sensitivity``, ``timeline``, ``trajectories``, ``trials`` and ``params`` with tiny work. Options: each command
gets values at and beyond their bounds, nan, inf, junk text, control characters, paths that are missing,
directories, symlink loops or hold NUL, odd ``--set`` paths and values, mutated data files, stray arguments.

Examples are derandomized (the same on every run) and their number bounds the file's time; valid values that
are only slow (an arm of 100,000 children) are not drawn. ``CBCP_FUZZ_EXAMPLES=N`` runs N examples per test
instead, for a longer campaign. Every bug found has a reproducer in the last section.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
import re
import shutil
import tomllib
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cbcp_sim.scenario import Scenario
from cbcp_sim.scenario.schema import describe, join_path, split_path
from cbcp_sim.scenario.spec import inline_toml

from .support import assert_one_line_error, cli, stable

ROOT = Path(__file__).resolve().parents[1]
TRIAL_CSV = ROOT / "tests" / "fixtures" / "analyze" / "trial.csv"
BASES = {p.stem: tomllib.loads(p.read_text()) for p in sorted((ROOT / "scenarios").glob("*.toml"))}
#: Every scenario key (a table's entries as ``<name>``) with what it allows, e.g. ``number in (0, 0.5]``.
KEYS = tuple((row["path"], row["allowed"]) for row in describe(Scenario))


def examples(n: int) -> settings:
    """``n`` derandomized examples (``CBCP_FUZZ_EXAMPLES`` overrides), fixtures shared by the examples."""
    return settings(stable(int(os.environ.get("CBCP_FUZZ_EXAMPLES", n))),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.filter_too_much, HealthCheck.data_too_large])


def holds(capsys, argv: list[str]) -> None:
    """The property: exit 0 with nothing on stderr, or exit 2 with one line ``error: ...``; no warning, no other
    exception."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = cli(capsys, *argv)
    assert not caught, [f"{w.category.__name__}: {w.message}" for w in caught]
    if code != 0:
        assert_one_line_error(code, out, err)
    else:
        assert err == ""


# --- values -------------------------------------------------------------------------------------------------------

NUMBERS = (0, 1, -1, 2, 3, 7, 0.5, -0.5, 1e-9, 5e-324, -0.0, 0.999999, 1.000001, 1e308, -1e308, math.inf, -math.inf,
           math.nan, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 10**30, 101, 1000, 100001)
TEXTS = ("", " ", "x", "\x00", "\x1b[31m", "a\nb", "\t", "\r", "\x7f", "\x85", "\u2028", "é", "\U0001f600", "x" * 5000,
         "nan", "inf", "1", "true", "a.b", '"', "'", "[]", "{}", "=", "..", "<name>", "design.n_per_arm")
DATES = (date(1979, 5, 27), time(7, 32), datetime(1979, 5, 27, 7, 32), datetime(1979, 5, 27, tzinfo=UTC))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


#: The words the scenarios and the schema use (arm names, analyses, cell products, ...): values that get past
#: the type checks.
WORDS = tuple(sorted({s for raw in BASES.values() for s in _strings(raw) if len(s) < 60}
                     | {w for _, allowed in KEYS for w in re.findall(r"'([^']+)'", allowed)}))
#: A key: one the scenarios use, or an odd one.
KEY_NAMES = st.one_of(st.sampled_from(WORDS), st.sampled_from(("", " ", "a.b", "x" * 300, "1", "é", "\u2028", "\x00",
                                                                "<name>")), st.text(max_size=8))
SCALARS = st.one_of(st.sampled_from(NUMBERS), st.integers(), st.floats(), st.booleans(), st.sampled_from(TEXTS),
                    st.text(max_size=12), st.sampled_from(WORDS), st.sampled_from(DATES))


def _nested(depth: int) -> list[Any]:
    value: list[Any] = [1]
    for _ in range(depth - 1):
        value = [value]
    return value


#: A hostile value: any scalar, lists and tables of them, deep lists (the reader's limit is 32 levels).
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=6),
    st.lists(st.sampled_from(NUMBERS), min_size=1, max_size=6),
    st.dictionaries(KEY_NAMES, SCALARS, max_size=3),
    st.sampled_from(([], {}, [[]], [{}], {"a": {}}, [1, "a"], [[1, 2], [3]], list(range(200))),),
    st.integers(28, 36).map(_nested),
)


def _bounds(allowed: str) -> list[Any]:
    """Values at, just inside and just beyond the bounds a schema entry states (``number in (0, 0.5]``, ``array of
    exactly 5 (...)``, ``one of 'a', 'b'``), arrays of them of the wrong and the right length."""
    numbers = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?|inf", allowed)]
    near = {v for x in numbers for v in (x, math.nextafter(x, math.inf), math.nextafter(x, -math.inf), x + 1, x - 1)}
    near |= {int(x) for x in numbers if math.isfinite(x) and x.is_integer()}
    near |= {(a + b) / 2 for a, b in itertools.pairwise(numbers) if math.isfinite(a + b)}
    words = re.findall(r"'([^']+)'", allowed)
    scalars = sorted(near, key=repr) + words or ["x"]
    if "array" in allowed or "list" in allowed:
        size = re.search(r"exactly (\d+)|(\d+) to (\d+)", allowed)
        lengths = {0, 1, 2} | ({int(g) + d for g in size.groups() if g for d in (-1, 0, 1)} if size else set())
        return scalars + [[scalars[i % len(scalars)] for i in range(n)] for n in sorted(lengths) if n <= 61]
    return scalars


def _allowed(allowed: str, path: str = "") -> st.SearchStrategy[Any]:
    """Values a schema entry allows (``number in (0, 0.5]``, ``one of 'a', 'b'``, ``array of 1 to 5 (...)``, a
    value or a list one per dose), or else its bounds."""
    scalar, _, listed = allowed.partition(", or a list")
    if listed:
        one = _allowed(scalar, path)
        return st.one_of(one, st.lists(one, min_size=1, max_size=3))
    number = re.fullmatch(r"(whole )?number in ([\[(])(\S+), (\S+)([\])])", allowed)
    array = re.fullmatch(r"array of (?:exactly (\d+)|(\d+) to (\d+)|at least (\d+)) \((.*)\)", allowed)
    words = re.findall(r"'([^']+)'", allowed)
    if number:
        whole, left, lo, hi, right = number.groups()
        if whole:
            return st.integers(int(lo), min(int(hi), SLOW.get(path, int(hi))))
        return st.floats(float(lo), float(hi), exclude_min=left == "(", exclude_max=right == ")", allow_nan=False)
    if array:
        exact, lo, hi, least, item = array.groups()
        low = int(exact or lo or least)
        return st.lists(_allowed(item), min_size=low, max_size=min(int(exact or hi or low + 3), low + 6))
    if words:
        return st.sampled_from(words)
    if allowed.startswith("one of "):
        return st.sampled_from([tomllib.loads(f"v = {w.lower()}")["v"] for w in allowed[7:].split(", ")])
    if allowed == "string":
        return st.sampled_from(WORDS)
    return st.sampled_from(_bounds(allowed))


#: Valid values of these keys above these sizes make a run slow, not hostile: not drawn.
SLOW = {"design.n_per_arm": 300, "operations.sites": 20, "sensitivity.samples": 20, "sensitivity.reps": 50,
        "assurance.draws": 5, "assurance.reps_per_draw": 20}


def _fast(path: str, value: Any) -> bool:
    limit = SLOW.get(path)
    if limit is None:
        return True
    values = value if isinstance(value, list) else [value]
    return not all(isinstance(v, int | float) and not isinstance(v, bool) and limit < v <= 100_000 for v in values)


# --- mutations of a scenario file ----------------------------------------------------------------------------------

Path_ = tuple[str | int, ...]


def _nodes(value: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every (path, value) below a table, lists' elements included."""
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield (*path, key), child
        yield from _nodes(child, (*path, key))


def _parent(raw: dict[str, Any], path: Path_) -> Any:
    node: Any = raw
    for key in path[:-1]:
        node = node[key]
    return node


def _put(raw: dict[str, Any], keys: list[str], value: Any) -> None:
    """``raw[k1][k2]... = value``, making (or replacing with) tables on the way."""
    node = raw
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[keys[-1]] = value


def _arm_names(raw: dict[str, Any]) -> list[str]:
    arms = raw.get("design", {}).get("arms") if isinstance(raw.get("design"), dict) else None
    names = [a for a in arms if isinstance(a, str)] if isinstance(arms, list) else []
    return names + (list(raw["arms"]) if isinstance(raw.get("arms"), dict) else [])


def _scenario_key(draw: st.DrawFn, raw: dict[str, Any], leaves_only: bool = True) -> tuple[list[str], str]:
    """A scenario key's keys (a table's ``<name>`` as one of the file's arm names or another name) and what it
    allows."""
    path, allowed = draw(st.sampled_from([k for k in KEYS if not leaves_only or "table of" not in k[1]]))
    name = draw(st.one_of(st.sampled_from(_arm_names(raw) or ["sham"]), KEY_NAMES)) if "<name>" in path else ""
    return [name if key == "<name>" else key for key in path.split(".")], allowed


def replace_value(draw: st.DrawFn, raw: dict[str, Any]) -> None:
    path, _ = draw(st.sampled_from(list(_nodes(raw))))
    _parent(raw, path)[path[-1]] = draw(VALUES)


def perturb_number(draw: st.DrawFn, raw: dict[str, Any]) -> None:
    numbers = [p for p, v in _nodes(raw) if isinstance(v, int | float) and not isinstance(v, bool)]
    if numbers:
        path = draw(st.sampled_from(numbers))
        x = _parent(raw, path)[path[-1]]
        change = draw(st.sampled_from((lambda x: -x, lambda x: 0, lambda x: x * 2, lambda x: x * 10, lambda x: x / 10,
                                       lambda x: x + 1, lambda x: x - 1, lambda x: math.nextafter(x, math.inf),
                                       lambda x: math.nextafter(x, -math.inf), lambda x: float(x),
                                       lambda x: round(x) if math.isfinite(x) else x, lambda x: x * 1e300,
                                       lambda x: str(x))))
        value = change(x)
        _parent(raw, path)[path[-1]] = value if _fast(".".join(map(str, path)), value) else x


def set_key(draw: st.DrawFn, raw: dict[str, Any]) -> None:
    """A scenario key, in the file or not, at or beyond its bounds, or any hostile value."""
    keys, allowed = _scenario_key(draw, raw)
    value = draw(st.one_of(st.sampled_from(_bounds(allowed)), VALUES).filter(lambda v: _fast(".".join(keys), v)))
    _put(raw, keys, value)


def set_allowed(draw: st.DrawFn, raw: dict[str, Any]) -> None:
    """One to four scenario keys set to values they allow: designs the files do not try, run to the end."""
    for _ in range(draw(st.integers(1, 4))):
        keys, allowed = _scenario_key(draw, raw)
        _put(raw, keys, draw(_allowed(allowed, ".".join(keys))))


def delete_key(draw: st.DrawFn, raw: dict[str, Any]) -> None:
    path, _ = draw(st.sampled_from(list(_nodes(raw))))
    del _parent(raw, path)[path[-1]]


def add_unknown_key(draw: st.DrawFn, raw: dict[str, Any]) -> None:
    tables = [(), *(p for p, v in _nodes(raw) if isinstance(v, dict))]
    path = draw(st.sampled_from(tables))
    (_parent(raw, (*path, "")) if path else raw)[draw(KEY_NAMES)] = draw(VALUES)


def empty_table(draw: st.DrawFn, raw: dict[str, Any]) -> None:
    tables = [p for p, v in _nodes(raw) if isinstance(v, dict)]
    if tables:
        path = draw(st.sampled_from(tables))
        _parent(raw, path)[path[-1]] = draw(st.sampled_from(({}, [], "", 0, [{}], {"": {}})))


def change_list(draw: st.DrawFn, raw: dict[str, Any]) -> None:
    lists = [p for p, v in _nodes(raw) if isinstance(v, list)]
    if lists:
        path = draw(st.sampled_from(lists))
        old = _parent(raw, path)[path[-1]]
        new = draw(st.sampled_from((lambda v: v[1:], lambda v: v[:-1], lambda v: v + v[-1:], lambda v: v[::-1],
                                    lambda v: [], lambda v: v * 3, lambda v: sorted(v, key=repr),
                                    lambda v: [v], lambda v: [*v, "x"], lambda v: v[:1] * 61)))(old)
        _parent(raw, path)[path[-1]] = new if _fast(".".join(map(str, path)), new) else old


def change_arms(draw: st.DrawFn, raw: dict[str, Any]) -> None:
    """Arm names duplicated, added, dropped or renamed, in design.arms and in [arms]."""
    design = raw.setdefault("design", {}) if isinstance(raw.get("design", {}), dict) else {}
    arms = design.get("arms", ["sham", "cord blood"])
    arms = arms if isinstance(arms, list) else [arms]
    table = raw.get("arms") if isinstance(raw.get("arms"), dict) else {}
    name = draw(st.one_of(st.sampled_from(arms or ["sham"]), KEY_NAMES))
    op = draw(st.sampled_from(("duplicate", "add", "drop", "rename", "copy", "one", "many")))
    if op == "duplicate" and arms:
        design["arms"] = [*arms, arms[draw(st.integers(0, len(arms) - 1))]]
    elif op == "add":
        design["arms"] = [*arms, name]
    elif op == "drop" and arms:
        design["arms"] = arms[:-1]
    elif op == "rename" and table:
        old = draw(st.sampled_from(sorted(table)))
        table[name] = table.pop(old)
    elif op == "copy" and table:
        table[name] = copy.deepcopy(table[draw(st.sampled_from(sorted(table)))])
        design["arms"] = [*arms, name]
    elif op == "one":
        design["arms"] = arms[:1]
    elif op == "many":
        design["arms"] = [*arms, *(f"arm {i}" for i in range(draw(st.integers(1, 12))))]


def planning_entry(draw: st.DrawFn, raw: dict[str, Any]) -> None:
    """An effect, a sensitivity range or a prior keyed by any scenario path, with odd values."""
    keys, allowed = _scenario_key(draw, raw)
    path = join_path(keys)
    bounds = st.sampled_from(_bounds(allowed))
    where = draw(st.sampled_from(("effects", "sensitivity", "assurance")))
    if where == "effects":
        _put(raw, ["effects", draw(st.sampled_from(("reported", "pooled", "x"))), path],
             draw(st.one_of(bounds, VALUES)))
    elif where == "sensitivity":
        _put(raw, ["sensitivity", "ranges", path], draw(st.one_of(st.lists(bounds, min_size=2, max_size=2), VALUES)))
    else:
        kind = draw(st.sampled_from(("normal", "lognormal", "uniform", "point", "file", "beta", "")))
        params = draw(st.dictionaries(st.sampled_from(("mean", "sd", "meanlog", "sdlog", "low", "high", "value",
                                                       "lower", "upper", "file", "column", "extra")),
                                      st.one_of(bounds, st.sampled_from(NUMBERS), st.sampled_from(TEXTS)),
                                      max_size=4))
        _put(raw, ["assurance", "priors", path], {"distribution": kind, **params})


MUTATIONS = (replace_value, perturb_number, set_key, set_allowed, set_allowed, set_allowed, delete_key,
             add_unknown_key, empty_table, change_list, change_arms, planning_entry)


def corrupt(draw: st.DrawFn, text: bytes) -> bytes:
    """The file's bytes cut, an invalid byte inserted, a BOM added, a line repeated (a duplicate key)."""
    at = draw(st.integers(0, len(text)))
    lines = text.splitlines(keepends=True) or [b""]
    line = draw(st.integers(0, len(lines) - 1))
    return draw(st.sampled_from((text[:at], text[:at] + b"\xff" + text[at:], b"\xef\xbb\xbf" + text,
                                 b"".join(lines[:line + 1] + lines[line:]), text[:at] + b"\x00" + text[at:],
                                 text.replace(b"=", b":", 1))))


@st.composite
def scenario_files(draw: st.DrawFn) -> tuple[dict[str, Any], bytes]:
    """A bundled scenario, mutated one to three times, as TOML bytes (sometimes corrupted)."""
    raw = BASES[draw(st.sampled_from(sorted(BASES)))]
    for _ in range(draw(st.integers(1, 3))):
        raw = copy.deepcopy(raw)  # the values drawn are shared constants: never changed in place
        draw(st.sampled_from(MUTATIONS))(draw, raw)
    data = tomli_w.dumps(raw).encode()
    return raw, corrupt(draw, data) if draw(st.integers(0, 9)) == 0 else data


#: Each command that reads a scenario, with tiny work; ``{out}`` is a fresh directory.
TINY = {
    "run": ["--reps", "20", "--quiet"],
    "sweep": ["--reps", "20", "--jobs", "1", "--quiet", "--out", "{out}"],
    "sample-size": ["--reps", "20", "--max-n", "40", "--target", "0.5", "--jobs", "1", "--quiet"],
    "assurance": ["--draws", "3", "--reps-per-draw", "5", "--jobs", "1", "--quiet"],
    "sensitivity": ["--samples", "0", "--reps", "10", "--jobs", "1", "--quiet"],
    "timeline": ["--reps", "5", "--quiet"],
    "trajectories": ["--children", "100"],
    "trials": ["--count", "2"],
    "params": [],
}
#: Run most often: the planning commands run it too.
SCENARIO_COMMANDS = st.sampled_from(["run"] * 6 + sorted(TINY))
GRIDS = ("design.alpha=0.04,0.05", "design.n_per_arm=10,12", "dropout.fraction=0:0.1:0.1")


def scenario_command(draw: st.DrawFn, command: str, raw: dict[str, Any], here: Path) -> list[str]:
    """The command line that runs ``s.toml`` in ``here``: tiny work, sometimes --json or one of its effects."""
    argv = [command, "s.toml", *(a.format(out=here / "out") for a in TINY[command])]
    if command == "sweep":
        argv += ["--grid", draw(st.sampled_from(GRIDS))]
    if command not in ("sweep", "trials") and draw(st.booleans()):
        argv.append("--json")
    effects = raw.get("effects")
    if isinstance(effects, dict) and effects and draw(st.booleans()):
        argv += ["--effect", draw(st.sampled_from(sorted(effects)))]
    return argv


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Callable[[], Path]:
    """A fresh working directory for each example, under tmp_path."""
    count = iter(range(10**9))

    def fresh() -> Path:
        where = tmp_path / f"example{next(count)}"
        where.mkdir()
        monkeypatch.chdir(where)
        return where

    return fresh


@examples(300)
@given(file=scenario_files(), command=SCENARIO_COMMANDS, data=st.data())
def test_mutated_scenario_files(capsys, workdir, file, command, data):
    raw, text = file
    here = workdir()
    (here / "s.toml").write_bytes(text)
    holds(capsys, scenario_command(data.draw, command, raw, here))


# --- option values ------------------------------------------------------------------------------------------------

JUNK = ("", " ", "nan", "-nan", "inf", "-inf", "Infinity", "1e3", "1.5", "0x10", "1_0", "\u0663", "+5", " 7 ", "--1",
        "-", "\x00", "5\x00", "a\nb", "\x1b[31m", "\u2028", "9" * 5000, "1" * 4300, "-" + "9" * 400, "1e309", "-0",
        "x" * 5000, "0.0", "true", "é")


def ints(lo: int, hi: int, fast: int | None = None) -> st.SearchStrategy[str]:
    """An integer option: valid values up to ``fast`` (valid larger ones are slow), edges beyond, junk."""
    top = hi if fast is None else min(hi, fast)
    edges = [v for v in (lo - 1, lo, hi, hi + 1, 0, -1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**30)
             if not top < v <= hi]
    return st.one_of(st.integers(lo, top).map(str), st.sampled_from(edges).map(str), st.sampled_from(JUNK))


def reals(*edges: float) -> st.SearchStrategy[str]:
    """A number option: its edges and their neighbours, any float, junk."""
    near = [f"{v!r}" for x in edges for v in (x, math.nextafter(x, math.inf), math.nextafter(x, -math.inf))]
    common = ["0", "-0.0", "1", "-1", "0.5", "1e-300", "5e-324", "1e308", "-1e308", "inf", "-inf", "nan"]
    return st.one_of(st.sampled_from(near + common), st.floats().map(repr), st.sampled_from(JUNK))


def lists_of(item: st.SearchStrategy[str], sep: str = ",") -> st.SearchStrategy[str]:
    return st.one_of(st.lists(item, max_size=6).map(sep.join), st.sampled_from(JUNK))


#: Paths an option can name, made in the example's directory when drawn; none outside it.
PLACES = ("new", "new.png", "new.svg", "new.pdf", "new.txt", "new.PNG", ".png", "new.csv", "new.html", "new.toml",
          "missing/deeper/x.png", "dir", "dir/", "file", "file/x.png", "loop", "loop/x.png", "link", "dangling",
          "trial.csv", "default.toml", "run", "sweep", "", "\x00", "a\x00b.png", "x" * 300 + ".png",
          "x" * 5000, "a\nb.png", "\x1b[31m.png", "-", ".", "..", "s p a c e.png", "dir/new.png")


def place(here: Path, name: str) -> str:
    """``name`` as a path in ``here``, with what it names made first: a directory, a file, a symlink loop, a link
    to a directory, a dangling link, a data file, a scenario, a finished run or sweep."""
    (here / "dir").mkdir(exist_ok=True)
    (here / "file").write_text("not a scenario\n")
    for link, target in (("loop", "loop"), ("link", "dir"), ("dangling", "missing")):
        if not (here / link).is_symlink():
            (here / link).symlink_to(target)
    if name == "trial.csv":
        shutil.copy(TRIAL_CSV, here / name)
    elif name == "default.toml":
        shutil.copy(ROOT / "scenarios" / name, here / name)
    elif name in ("run", "sweep") and not (here / name).exists():
        shutil.copytree(FINISHED[name], here / name, symlinks=True)
    return name


#: A finished run and sweep, made once (by the fixture ``finished``), for report and resumption.
FINISHED: dict[str, Path] = {}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> dict[str, Path]:
    from cbcp_sim.cli.commands import main

    root = tmp_path_factory.mktemp("finished")
    for name, argv in (("run", ["run", "--reps", "20", "--quiet"]),
                       ("sweep", ["sweep", "--grid", "design.n_per_arm=10,12", "--reps", "20", "--jobs", "1",
                                  "--quiet"])):
        assert main([*argv, "--out", str(root / name)]) == 0
        FINISHED[name] = root / name
    return FINISHED


def _set_path(draw: st.DrawFn) -> str:
    path = join_path(_scenario_key(draw, BASES["default"], leaves_only=False)[0])
    odd = ("", ".", "a..b", ".design", "design.", "design", 'arms."cord blood', "arms.'x'.kind", 'arms."a\\u0000".kind',
           "design.n_per_arm.x", "title.x", "x" * 300, "design . alpha", "effects.x.design.alpha", "arms.new.kind",
           "sensitivity.ranges", 'assurance.priors."outcome.effect".sd', "a\nb", "\x00", "é.é")
    return draw(st.one_of(st.just(path), st.sampled_from(odd)))


#: ``--set`` values: TOML of every kind, and text that is not TOML.
TOML_VALUES = ("0", "-1", "1e308", "inf", "-inf", "nan", "[]", "{}", "[[]]", "[1, 2]", '["a", "a"]', "{a = 1}",
               "true", "1979-05-27", "07:32:00", '"\\u0000"', '"\\u001b"', '"a\\nb"', "9" * 30, "9" * 5000,
               "[" * 40 + "]" * 40, '"x"', "'x'", "[1,", '"', "=", "a = b", "UCB-MNC", "cord blood", "mmrm")


@st.composite
def settings_values(draw: st.DrawFn) -> str:
    path = _set_path(draw)
    value = draw(st.one_of(st.sampled_from(TOML_VALUES), st.sampled_from(JUNK),
                           VALUES.filter(lambda v: _fast(path, v)).map(inline_toml)))
    return f"{path}={value}" if draw(st.integers(0, 9)) else draw(st.sampled_from((path, f"={value}", value)))


EFFECTS = st.sampled_from(("reported", "pooled", "", "x", "\x00", "a.b", "x" * 5000, "a\nb", "effects"))
COMPARISONS = st.sampled_from(("cord blood vs sham", "two doses vs sham", "", "vs", "sham vs cord blood", "x",
                               "\x00", "a\nb", "x" * 5000))
BACKENDS = st.sampled_from(("loky", "", "LOKY", "dask ", "threading", "\x00", "x" * 5000))
ADDRESSES = st.sampled_from(("tcp://127.0.0.1:1", "", "\x00", "x" * 5000, "tcp://", "[::1]"))
GRID_VALUES = st.sampled_from(("0", "1", "2", "10", "-1", "0.5", "nan", "inf", "-inf", "1e308", "-1e308", "5e-324", ""))


@st.composite
def grids(draw: st.DrawFn) -> str:
    path = _set_path(draw)
    lo, hi, step = (draw(GRID_VALUES) for _ in range(3))
    spec = draw(st.sampled_from((f"{lo}:{hi}:{step}", f"{lo},{hi}", f"{lo}:{hi}", f"{lo}:{hi}:{step}:1", lo,
                                 f"{lo},,{hi}", f'"{lo}","{hi}"')))
    return f"{path}={spec}" if draw(st.integers(0, 5)) else draw(st.sampled_from((path, f"={spec}", spec)))


PRIOR_ARGS = st.sampled_from(("3", "1.5", "0", "-1", "nan", "inf", "1e308", "", "x", "lower=0", "upper=1",
                              "lower=nan", "upper=-inf", "lower=5", "sd=1", "=", "draws.csv", "column=x"))


@st.composite
def priors(draw: st.DrawFn) -> str:
    path = _set_path(draw)
    kind = draw(st.sampled_from(("normal", "lognormal", "uniform", "point", "file", "beta", "", "NORMAL")))
    args = ", ".join(draw(st.lists(PRIOR_ARGS, max_size=4)))
    return draw(st.sampled_from((f"{path}={kind}({args})", f"{path}={kind}({args}", f"{path}={kind}", f"{kind}()",
                                 f"{path}=file(trial.csv, value)", f"{path}=file(trial.csv)",
                                 f"{path}=file(dir)", f"{path}=file(missing.csv)", f"{path}=file(\x00)")))


@st.composite
def ranges(draw: st.DrawFn) -> str:
    path = _set_path(draw)
    lo, hi = draw(GRID_VALUES), draw(GRID_VALUES)
    return draw(st.sampled_from((f"{path}={lo}:{hi}", f"{path}={lo}", f"{path}={lo}:{hi}:1", f"{lo}:{hi}", path)))


SCENARIO_ARGS = st.one_of(st.sampled_from(sorted(BASES)), st.sampled_from(("default.toml", "repeat_dose.toml", "x",
                                                                            "REPEAT_DOSE"))).map(lambda s: ("", s))
EXECUTION = {"--seed": ints(0, 2**63 - 1), "--jobs": ints(-64, 256, fast=2), "--backend": BACKENDS,
             "--address": ADDRESSES, "--quiet": None}
SETTINGS = {"--effect": EFFECTS, "--set": settings_values()}
PLANNING = {**EXECUTION, **SETTINGS, "--comparison": COMPARISONS, "--json": None}
ANALYSES = st.sampled_from(("change", "ttest", "welch", "ancova", "mmrm", "wilcoxon", "fisher", "chisquare",
                            "crossover_ttest", "single_arm", "", "TTEST", "x"))
COLUMNS = st.sampled_from(("id", "site", "arm", "age", "visit", "baseline", "value", "trial", "", "x", "ID", "a\nb",
                           "\x00", "x" * 5000))
LABELS = st.sampled_from(("0", "1", "sham", "Tehran", "", "0.0", "nan", "x", "\x00", "a\nb"))
TRIAL_ROWS = TRIAL_CSV.read_text().splitlines()


@st.composite
def data_files(draw: st.DrawFn) -> tuple[str, str]:
    """A data file for analyze: the fixture's rows with cells replaced (junk, edge numbers, empty), rows dropped or
    repeated, columns dropped; written as ``data.csv``."""
    rows = [line.split(",") for line in TRIAL_ROWS[:draw(st.integers(1, len(TRIAL_ROWS)))]]
    cells = st.one_of(st.sampled_from(JUNK), st.sampled_from(("0", "1", "2", "-1", "1e308", "nan", "inf", '"', "")))
    for _ in range(draw(st.integers(0, 6))):
        row = rows[draw(st.integers(0, len(rows) - 1))]
        change = draw(st.sampled_from(("cell", "cell", "drop", "repeat", "column")))
        if change == "cell":
            row[draw(st.integers(0, len(row) - 1))] = draw(cells)
        elif change == "drop" and len(rows) > 1:
            rows.remove(row)
        elif change == "repeat":
            rows.append(list(row))
        elif change == "column":
            column = draw(st.integers(0, len(rows[0]) - 1))
            rows = [r[:column] + r[column + 1:] for r in rows]
    return "csv", "\n".join(",".join(r) for r in rows) + "\n"

#: Each command: the arguments that keep its work tiny (an option given again later wins), its positional
#: arguments (a place to make, or a value), and its options with their values (None: a flag).
COMMANDS: dict[str, tuple[list[str], st.SearchStrategy | None, dict[str, Any]]] = {
    "run": (["--reps", "20", "--quiet"], SCENARIO_ARGS,
            {"--reps": ints(1, 1_000_000, fast=30), "--target-mcse": reals(0.0, 0.5), "--out": PLACES,
             **EXECUTION, **SETTINGS, "--json": None}),
    "scenarios": ([], None, {"--json": None}),
    "natural-history": (["--children", "100", "--gmfcs", "2", "--ages", "2:4"], None,
                        {"--gmfcs": lists_of(st.sampled_from(("1", "2", "5", "0", "6", "-1", "2.0", "nan", ""))),
                         "--ages": lists_of(GRID_VALUES | st.sampled_from(("21", "22", "1", "0.5", "2.5")), ":"),
                         "--enrol-ages": lists_of(GRID_VALUES | st.sampled_from(("21", "22", "1", "2.5")), ":"),
                         "--follow-up": reals(0.0, 240.0), "--mix": lists_of(GRID_VALUES),
                         "--scenario": PLACES, "--children": ints(100, 10_000_000, fast=300),
                         "--seed": ints(0, 2**63 - 1), "--plot": PLACES, **SETTINGS, "--json": None}),
    "trajectories": (["--children", "100"], SCENARIO_ARGS,
                     {"--children": ints(1, 10_000_000, fast=300), "--seed": ints(0, 2**63 - 1), "--plot": PLACES,
                      **SETTINGS, "--json": None}),
    "analyze": (["--method", "ttest"], st.one_of(data_files(), st.sampled_from((
                    "trial.csv", "trial.csv", "file", "dir", "missing.csv", "default.toml", "\x00", "loop")).map(
                    lambda s: ("@", s))),
                {"--method": ANALYSES, "--visit": reals(0.0, 1.5, 6.0), "--covariates": lists_of(COLUMNS),
                 "--endpoint": st.sampled_from(("change", "final", "", "x")), "--alpha": reals(0.0, 0.5, 1.0),
                 "--mcid": reals(0.0, 100.0), "--id-column": COLUMNS, "--arm-column": COLUMNS,
                 "--visit-column": COLUMNS, "--baseline-column": COLUMNS, "--value-column": COLUMNS,
                 "--trial-column": COLUMNS, "--control": LABELS, "--trial": LABELS | ints(-1, 10), "--json": None}),
    "trials": (["--count", "2"], SCENARIO_ARGS,
               {"--count": ints(1, 10_000, fast=5), "--seed": ints(0, 2**63 - 1), "--out": PLACES, **SETTINGS}),
    "boundaries": (["--info", "0.5,1"], None,
                   {"--info": lists_of(GRID_VALUES | st.sampled_from(("0.25", "0.75", "0.999"))),
                    "--alpha": reals(0.0, 0.5, 1.0), "--spending": st.sampled_from(("obf", "pocock", "", "OBF", "x")),
                    "--futility": lists_of(GRID_VALUES | st.sampled_from(("-0.5", "-10", "10", "3"))),
                    "--binding": None, "--json": None}),
    "timeline": (["--reps", "5", "--quiet"], SCENARIO_ARGS,
                 {"--reps": ints(1, 1_000_000, fast=10), **EXECUTION, **SETTINGS, "--plot": PLACES, "--json": None}),
    "params": ([], SCENARIO_ARGS, {**SETTINGS, "--markdown": None, "--json": None}),
    "sweep": (["--reps", "20", "--jobs", "1", "--quiet", "--out", "out", "--grid", "design.alpha=0.04,0.05"],
              SCENARIO_ARGS,
              {"--grid": grids(), "--points": PLACES, "--reps": ints(1, 1_000_000, fast=30), "--out": PLACES,
               "--parquet": None, "--plot": PLACES, "--target": reals(0.0, 1.0), **PLANNING}),
    "sample-size": (["--reps", "20", "--max-n", "40", "--target", "0.5", "--jobs", "1", "--quiet"], SCENARIO_ARGS,
                    {"--target": reals(0.0, 1.0), "--reps": ints(1, 1_000_000, fast=30),
                     "--max-n": ints(2, 100_000, fast=60), "--out": PLACES, "--plot": PLACES, **PLANNING}),
    "assurance": (["--draws", "3", "--reps-per-draw", "5", "--jobs", "1", "--quiet"], SCENARIO_ARGS,
                  {"--prior": priors(), "--draws": ints(1, 100_000, fast=5),
                   "--reps-per-draw": ints(1, 10_000, fast=20), "--out": PLACES, "--plot": PLACES, **PLANNING}),
    "sensitivity": (["--samples", "0", "--reps", "10", "--jobs", "1", "--quiet"], SCENARIO_ARGS,
                    {"--range": ranges(), "--samples": ints(0, 100_000, fast=12),
                     "--reps": ints(1, 1_000_000, fast=20), "--out": PLACES, "--plot": PLACES, **PLANNING}),
    "report": ([], st.sampled_from(("run", "sweep", "dir", "file", "missing", "loop", "\x00", "")).map(
        lambda s: ("@", s)), {"--out": PLACES}),
}
#: Arguments that are not options of the command: unknown options, stray values, options without their value.
STRAY = st.sampled_from(("--bogus", "-x", "--", "-", "extra", "--reps=", "--reps=5=6", "--json=1", "--set", "-h=x",
                         "a\nb", "\x1b[31m", "\x00", "--\x00", "x" * 5000))




@st.composite
def command_lines(draw: st.DrawFn, command: str) -> list[tuple[str, str]]:
    """The arguments of one command line as (kind, text), as :func:`argument` takes them."""
    base, positional, options = COMMANDS[command]
    argv = [("", command), *(("", a) for a in base)]
    for name in draw(st.lists(st.sampled_from(sorted(options)), max_size=4)):
        values = options[name]
        if values is None:
            argv.append(("", name))
        elif isinstance(values, tuple):
            argv += [("", name), ("@", draw(st.sampled_from(values)))]
        else:
            value = draw(values)
            argv += [("", f"{name}={value}")] if draw(st.booleans()) else [("", name), ("", value)]
    if positional is not None and draw(st.integers(0, 3)):
        argv.append(draw(positional))
    if draw(st.integers(0, 7)) == 0:
        argv.insert(draw(st.integers(1, len(argv))), ("", draw(STRAY)))
    return argv


def argument(here: Path, kind: str, text: str) -> str:
    """An argument as given: kind ``@`` names a place to make in ``here``, ``csv`` is a data file's text, else the
    text itself."""
    if kind == "csv":
        (here / "data.csv").write_text(text)
        return "data.csv"
    return place(here, text) if kind == "@" else text


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_abused_options(capsys, workdir, finished, command):
    @examples(40)
    @given(line=command_lines(command))
    def check(line):
        here = workdir()
        holds(capsys, [argument(here, *arg) for arg in line])

    check()


# --- reproducers of the bugs the fuzzing found ---------------------------------------------------------------------

def test_a_stray_argument_with_control_characters_stays_on_one_line(capsys):
    code, out, err = cli(capsys, "run", "a", "b\nc\x1b[31m")
    assert_one_line_error(code, out, err, "unrecognized arguments", "b\\nc\\x1b[31m")


def test_a_key_outside_the_basic_plane_is_quoted_so_that_it_reads_back():
    for key in ("\U00045dfe", "a\U000e0001b", "\x05\U0001f600"):
        assert split_path(join_path(["arms", key, "kind"])) == ("arms", key, "kind")


def test_a_refused_figure_file_leaves_no_figure_open(tmp_path, capsys):
    import matplotlib.pyplot as plt

    open_before = plt.get_fignums()
    assert_one_line_error(*cli(capsys, "trajectories", "--children", "100", "--plot", str(tmp_path / "figure.txt")),
                          "--plot")
    assert plt.get_fignums() == open_before


@pytest.mark.parametrize("argv", [
    ["natural-history", "--gmfcs", "2", "--ages", "2:4", "--children", "100", "--plot", "a\x00b.png"],
    ["timeline", "--reps", "5", "--quiet", "--plot", "a\x00b.png"],
    ["sweep", "--grid", "design.alpha=0.04,0.05", "--reps", "20", "--jobs", "1", "--out", "out", "--plot",
     "a\x00b.png"],
])
def test_a_nul_character_in_a_figure_name_is_a_one_line_error(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(*cli(capsys, *argv), "--plot", "NUL")


@pytest.mark.parametrize(("name", "says"), [("a\x00b.csv", "NUL"), ("x" * 300 + ".csv", "File name too long")])
def test_a_trials_file_name_that_cannot_exist_is_a_one_line_error(tmp_path, monkeypatch, capsys, name, says):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(*cli(capsys, "trials", "--out", name), "--out", says)


def test_the_analyze_command_suggested_after_trials_quotes_the_file_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli(capsys, "trials", "--out", "my trials.csv")
    assert code == 0 and "cbcp-sim analyze 'my trials.csv' --method" in out


def test_a_finite_ceiling_fraction_above_100_is_refused(capsys):
    """Near the largest float the ceiling overflowed (a warning; NaN with repeat doses), and from about 1e14 a second
    dose added nothing (1 - E/C rounded to 1); at 100, two doses still add up as with no ceiling."""
    for value in ("101", "1e20", "1.7e308"):
        assert_one_line_error(*cli(capsys, "run", "repeat_dose", "--reps", "20", "--set",
                                   f"treatment.ceiling_fraction={value}"), "treatment.ceiling_fraction", "or inf")
    two_doses = {}
    for value in ("100", "inf"):
        code, out, _ = cli(capsys, "trajectories", "repeat_dose", "--children", "200", "--json", "--set",
                           f"treatment.ceiling_fraction={value}")
        assert code == 0
        two_doses[value] = np.array(next(a for a in json.loads(out)["arms"] if a["name"] == "two doses")["difference"])
    assert two_doses["100"].max() > 10
    np.testing.assert_allclose(two_doses["100"], two_doses["inf"], atol=0.1)


@pytest.mark.parametrize("content", ["design.alpha\n" + "1" * 200_000 + "\n", None])
def test_a_points_file_with_a_huge_field_or_a_nul_in_its_name_is_a_one_line_error(tmp_path, monkeypatch, capsys,
                                                                                  content):
    monkeypatch.chdir(tmp_path)
    name = "a\x00b.csv" if content is None else "points.csv"
    if content is not None:
        Path(name).write_text(content)
    assert_one_line_error(*cli(capsys, "sweep", "--points", name, "--reps", "20", "--jobs", "1", "--out", "out"),
                          "--points", "cannot read")


def test_wilcoxon_of_arms_too_large_for_their_pairwise_differences_selects_the_same_bits(monkeypatch):
    """Arms of 100,000 children (10^10 differences, 80 GB) were a MemoryError; a replicate over the block size is
    now selected without building them, with the bits of the full sort."""
    from cbcp_sim.analysis import ranks

    rng = np.random.default_rng(5)
    for step in (1.0, 0.01, 1e-300):  # many ties; few; differences that round
        values = np.round(rng.normal(40.0, 4.0, (30, 40, 2)) / step) * step
        observed = rng.random((30, 40, 2)) > 0.2
        treated = rng.random((30, 40)) < 0.5
        treated[0] = False  # an arm without children
        whole = ranks.wilcoxon(values, observed, treated, 1)
        with monkeypatch.context() as m:
            m.setattr(ranks, "MAX_BLOCK_BYTES", 8)
            selected = ranks.wilcoxon(values, observed, treated, 1)
        for field in ("estimate", "se", "df", "p_two", "p_upper"):
            np.testing.assert_array_equal(getattr(selected, field), getattr(whole, field))
    big = np.zeros((1, 200_000, 2))
    big[0, :, 1] = np.arange(200_000) % 1000
    est = ranks.wilcoxon(big, np.ones((1, 200_000, 2), bool), np.arange(200_000) % 2 == 1, 1)
    assert est.estimate[0] == 1.0 and np.isfinite(est.se[0])


def test_a_nul_character_in_the_data_file_name_is_a_one_line_error(capsys):
    assert_one_line_error(*cli(capsys, "analyze", "a\x00b.csv", "--method", "ttest"), "NUL")


@pytest.mark.parametrize("argv", [["x" * 300], ["{run}", "--out", "loop/x.html"], ["{run}", "--out", "a\x00b.html"]])
def test_report_paths_that_cannot_exist_are_one_line_errors(tmp_path, monkeypatch, capsys, finished, argv):
    monkeypatch.chdir(tmp_path)
    Path("loop").symlink_to("loop")
    shutil.copytree(finished["run"], "run")
    assert_one_line_error(*cli(capsys, "report", *(a.format(run="run") for a in argv)))


@pytest.mark.parametrize("out", ["x" * 300, "a\x00b"])
@pytest.mark.parametrize("command", [["run", "--reps", "20"], ["sweep", "--grid", "design.alpha=0.04,0.05",
                                                                "--reps", "20", "--jobs", "1"]])
def test_an_out_directory_that_cannot_exist_is_a_one_line_error(tmp_path, monkeypatch, capsys, command, out):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(*cli(capsys, *command, "--out", out), "--out")


def test_an_empty_dose_stratum_runs_without_a_warning(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, _, err = cli(capsys, "run", "--reps", "20", "--set", "analysis.dose_strata=true", "--set",
                           "design.dose_threshold=1000")
    assert code == 0 and err == ""


@pytest.mark.parametrize("out", [".", "", "loop"])
def test_a_report_file_that_is_a_directory_or_a_loop_is_a_one_line_error(tmp_path, monkeypatch, capsys, finished,
                                                                        out):
    monkeypatch.chdir(tmp_path)
    Path("loop").symlink_to("loop")
    shutil.copytree(finished["run"], "run")
    assert_one_line_error(*cli(capsys, "report", "run", "--out", out), "--out")
