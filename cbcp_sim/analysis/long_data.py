"""A real trial's scores in long format, as arrays the analyses take (one replicate: ``R = 1``).

The CSV file has a header line and one row per child and post-baseline visit:

- ``id``: the child (any text);
- ``arm``: 0 (control) or 1 (treated), the same on every row of the child;
- ``visit``: months after baseline, > 0 (the baseline itself is not a row);
- ``baseline``: the child's baseline score, the same on every row of the child (empty on every row: no baseline);
- ``value``: the score at that visit; a missed visit is an absent row or an empty ``value``.

Further columns are ignored unless named as covariates: those must be numbers, complete, and the same on
every row of a child (per-child covariates such as age at enrolment). Bad input raises
:class:`~cbcp_sim.errors.ScenarioError` naming the file or the column, with the line number of the
first bad row.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike

import numpy as np

from cbcp_sim.errors import ScenarioError

#: The columns every file must have.
REQUIRED = ("id", "arm", "visit", "baseline", "value")

_MONTHS_TOLERANCE = 1e-9


@dataclass(frozen=True)
class LongData:
    """One trial as the analyses see it: ``R = 1`` replicate, ``N`` children, ``V`` post-baseline visits.

    Children are in the order they first appear in the file. Where a score is not observed its value
    is NaN (analyses use only observed entries).
    """

    ids: np.ndarray          #: ``(N,)`` child identifiers (text)
    months: np.ndarray       #: ``(V + 1,)`` months after baseline: 0, then the sorted distinct visits
    values: np.ndarray       #: ``(1, N, V + 1)`` scores; column 0 is the baseline
    observed: np.ndarray     #: ``(1, N, V + 1)`` bool
    treated: np.ndarray      #: ``(N,)`` bool, arm 1
    covariates: np.ndarray   #: ``(1, N, C)`` per-child covariates, complete
    covariate_names: tuple[str, ...] = ()
    source: str = ""         #: the file read, for messages

    def visit_index(self, month: float) -> int:
        """Index into the last axis of ``values`` of the visit ``month`` months after baseline (> 0); a
        ScenarioError on ``--visit`` when the file has no such visit."""
        hits = np.flatnonzero(np.abs(self.months[1:] - month) <= _MONTHS_TOLERANCE * max(1.0, abs(month)))
        if not math.isfinite(month) or hits.size == 0:
            where = f" in {self.source}" if self.source else ""
            visits = ", ".join(f"{m:g}" for m in self.months[1:])
            raise ScenarioError("--visit", f"must be one of the visits{where} ({visits} months), got {month:g}")
        return int(hits[0]) + 1


def read_long(path: str | PathLike[str], covariates: Sequence[str] = ()) -> LongData:
    """Read a long-format CSV file (see the module docstring) into :class:`LongData`."""
    source = str(path)
    names = tuple(covariates)
    _check_covariate_names(names)
    header, rows, lines = _read_rows(path, source)
    index = {name: i for i, name in enumerate(header)}
    missing = [c for c in REQUIRED if c not in index]
    if missing:
        raise ScenarioError(source, f"missing required column{'s' * (len(missing) > 1)} {', '.join(missing)} "
                                    f"(the header has: {', '.join(header) or 'nothing'})")
    absent = [c for c in names if c not in index]
    if absent:
        raise ScenarioError("--covariates", f"no column {', '.join(absent)} in {source} "
                                            f"(the header has: {', '.join(header)})")

    def column(name: str, *, required: bool) -> np.ndarray:
        return _numbers([row[index[name]] for row in rows], lines, name, source, required=required)

    ids = [row[index["id"]].strip() for row in rows]
    if "" in ids:
        raise ScenarioError("id", f"missing value at line {lines[ids.index('')]} of {source}")
    arm = column("arm", required=True)
    bad = np.flatnonzero((arm != 0.0) & (arm != 1.0))
    if bad.size:
        k = int(bad[0])
        raise ScenarioError("arm", f"must be 0 (control) or 1 (treated), got {rows[k][index['arm']].strip()!r} "
                                   f"at line {lines[k]} of {source}")
    visit = column("visit", required=True)
    bad = np.flatnonzero(visit <= 0.0)
    if bad.size:
        k = int(bad[0])
        raise ScenarioError("visit", f"must be months after baseline, > 0 (the baseline is the baseline column, "
                                     f"not a row), got {visit[k]:g} at line {lines[k]} of {source}")
    baseline = column("baseline", required=False)
    value = column("value", required=False)
    extra = [column(name, required=True) for name in names]

    child_of: dict[str, int] = {}
    child = np.array([child_of.setdefault(i, len(child_of)) for i in ids], dtype=np.intp)
    first = np.unique(child, return_index=True)[1]  # the first row of each child (children numbered in order)
    for name, x in (("arm", arm), ("baseline", baseline), *zip(names, extra, strict=True)):
        _check_constant(name, x, child, first, ids, lines, source)
    treated = arm[first] == 1.0
    if treated.all() or not treated.any():
        raise ScenarioError("arm", f"only arm {int(treated[0])} in {source}: both 0 (control) and 1 (treated) "
                                   "are needed")

    visits, slot = np.unique(visit, return_inverse=True)
    seen: dict[tuple[int, int], int] = {}
    for k, key in enumerate(zip(child.tolist(), slot.tolist(), strict=True)):
        if key in seen:
            raise ScenarioError("id", f"child {ids[k]!r} has two rows at visit {visits[key[1]]:g} "
                                      f"(lines {lines[seen[key]]} and {lines[k]} of {source})")
        seen[key] = k

    n, v = len(child_of), visits.size
    values = np.full((1, n, v + 1), np.nan)
    values[0, :, 0] = baseline[first]
    values[0, child, slot + 1] = value
    return LongData(
        ids=np.array(list(child_of), dtype=object),
        months=np.concatenate([[0.0], visits]),
        values=values,
        observed=~np.isnan(values),
        treated=treated,
        covariates=np.stack(extra, axis=-1)[first][None] if names else np.zeros((1, n, 0)),
        covariate_names=names,
        source=source,
    )


def _check_covariate_names(names: tuple[str, ...]) -> None:
    if any(not name for name in names):
        raise ScenarioError("--covariates", "expected column names separated by commas, such as age,gmfcs")
    taken = [name for name in names if name in REQUIRED]
    if taken:
        raise ScenarioError("--covariates", f"{', '.join(taken)} is a required column, not a covariate")
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ScenarioError("--covariates", f"{', '.join(twice)} named more than once")


def _read_rows(path: str | PathLike[str], source: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Header (names stripped) and the non-blank rows with their line numbers in the file."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            rows, lines = [], []
            for row in reader:
                if any(cell.strip() for cell in row):
                    rows.append(row)
                    lines.append(reader.line_num)
    except FileNotFoundError:
        raise ScenarioError(source, "no such file") from None
    except IsADirectoryError:
        raise ScenarioError(source, "is a directory, not a CSV file") from None
    except UnicodeDecodeError:
        raise ScenarioError(source, "cannot read: not UTF-8 text") from None
    except OSError as exc:
        raise ScenarioError(source, f"cannot read: {exc.strerror or exc}") from None
    except csv.Error as exc:
        raise ScenarioError(source, f"not a readable CSV file: {' '.join(str(exc).split())}") from None
    if not any(header):
        raise ScenarioError(source, f"is empty: expected a header line {','.join(REQUIRED)} and one row per child "
                                    "and visit")
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise ScenarioError(source, f"column {', '.join(twice)} appears more than once in the header")
    if not rows:
        raise ScenarioError(source, "has a header but no rows: expected one row per child and visit")
    for row, line in zip(rows, lines, strict=True):
        if len(row) != len(header):
            raise ScenarioError(source, f"line {line} has {len(row)} fields, the header has {len(header)}")
    return header, rows, lines


def _numbers(cells: list[str], lines: list[int], name: str, source: str, *, required: bool) -> np.ndarray:
    """A column as floats; an empty cell is NaN unless ``required``."""
    out = np.empty(len(cells))
    for k, cell in enumerate(cells):
        text = cell.strip()
        if not text:
            if required:
                raise ScenarioError(name, f"missing value at line {lines[k]} of {source}")
            out[k] = math.nan
            continue
        try:
            x = float(text)
        except ValueError:
            x = math.nan
        if not math.isfinite(x):
            raise ScenarioError(name, f"expected a number, got {text!r} at line {lines[k]} of {source} "
                                      "(the first non-numeric value in the column)")
        out[k] = x
    return out


def _check_constant(name: str, x: np.ndarray, child: np.ndarray, first: np.ndarray, ids: list[str],
                    lines: list[int], source: str) -> None:
    """Every row of a child has the value of its first row (an empty cell differs from a number)."""
    ref = x[first][child]
    differs = np.flatnonzero(~((x == ref) | (np.isnan(x) & np.isnan(ref))))
    if differs.size:
        k = int(differs[0])
        j = int(first[child[k]])
        raise ScenarioError(name, f"must be the same on every row of a child: child {ids[k]!r} has "
                                  f"{_show(x[j])} at line {lines[j]} but {_show(x[k])} at line {lines[k]} of {source}")


def _show(x: float) -> str:
    return "nothing" if math.isnan(x) else f"{x:.15g}"
