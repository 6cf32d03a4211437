"""A real trial's scores in long format, as arrays the analyses take (one replicate: ``R = 1``).

The data are a CSV file (a header line, then the rows) or a pandas DataFrame, with one row per child and
post-baseline visit:

- ``id``: the child (any text; in a DataFrame any value);
- ``arm``: 0 (control) or 1 (treated), the same on every row of the child;
- ``visit``: months after baseline, > 0 (the baseline itself is not a row);
- ``baseline``: the child's baseline score, the same on every row of the child (empty on every row: no baseline);
- ``value``: the score at that visit; a missed visit is an absent row or an empty ``value``.

Further columns are ignored unless named as covariates: those must be numbers, complete, and the same on
every row of a child (per-child covariates such as age at enrolment). A missing value is an empty cell (in a
DataFrame also NaN, None or ``pd.NA``). A file and a DataFrame are checked by the same code.

Bad input raises :class:`~cbcp_sim.errors.SettingsError` naming the parameter at fault: ``data`` for the file
or DataFrame as a whole (unreadable, empty, a column missing, a line with too few fields), ``data.<column>``
for a bad value in a column, with the line of the file (or the index label of the DataFrame) of the first bad
row, ``covariates`` for a bad list of covariates, and ``visit`` for a visit not in the data.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np

from cbcp_sim.errors import SettingsError

if TYPE_CHECKING:
    import pandas as pd

#: The columns every data set must have.
REQUIRED = ("id", "arm", "visit", "baseline", "value")
#: How messages name data given as a DataFrame (a file is named by its path).
FRAME = "the DataFrame"

_MONTHS_TOLERANCE = 1e-9


@dataclass(frozen=True)
class LongData:
    """One trial as the analyses see it: ``R = 1`` replicate, ``N`` children, ``V`` post-baseline visits.

    Children are in the order they first appear in the data. Where a score is not observed its value
    is NaN (analyses use only observed entries).
    """

    ids: np.ndarray          #: ``(N,)`` child identifiers (text from a file; as given in a DataFrame)
    months: np.ndarray       #: ``(V + 1,)`` months after baseline: 0, then the sorted distinct visits
    values: np.ndarray       #: ``(1, N, V + 1)`` scores; column 0 is the baseline
    observed: np.ndarray     #: ``(1, N, V + 1)`` bool
    treated: np.ndarray      #: ``(N,)`` bool, arm 1
    covariates: np.ndarray   #: ``(1, N, C)`` per-child covariates, complete
    covariate_names: tuple[str, ...] = ()
    source: str = ""         #: the file read ("" for a DataFrame)

    @property
    def origin(self) -> str:
        """Where the data came from, as messages name it: the file, or "the DataFrame"."""
        return self.source or FRAME

    def visit_index(self, month: float) -> int:
        """Index into the last axis of ``values`` of the visit ``month`` months after baseline (> 0); a
        SettingsError on ``visit`` when the data have no such visit."""
        hits = np.flatnonzero(np.abs(self.months[1:] - month) <= _MONTHS_TOLERANCE * max(1.0, abs(month)))
        if not math.isfinite(month) or hits.size == 0:
            visits = ", ".join(f"{m:g}" for m in self.months[1:])
            raise SettingsError("visit", f"must be one of the visits in {self.origin} ({visits} months), "
                                         f"got {month:g}")
        return int(hits[0]) + 1


def covariate_names(covariates: str | Iterable[str] | None) -> tuple[str, ...]:
    """The names of the covariate columns, each stripped: from a sequence of names, or from one text of names
    separated by commas (``"age,gmfcs"``); ``None`` is none. A SettingsError on ``covariates`` for an empty
    name, a name that is not text, a required column, or a name given twice."""
    if covariates is None:
        return ()
    if isinstance(covariates, str):
        items: list[Any] = covariates.split(",")
    elif isinstance(covariates, Iterable):
        items = list(covariates)
    else:
        raise SettingsError("covariates", f"expected column names, such as ('age', 'gmfcs'), got {covariates!r}")
    odd = [name for name in items if not isinstance(name, str)]
    if odd:
        raise SettingsError("covariates", f"expected column names (text), got {odd[0]!r}")
    names = tuple(name.strip() for name in items)
    if any(not name for name in names):
        raise SettingsError("covariates", "expected column names separated by commas, such as age,gmfcs")
    taken = [name for name in names if name in REQUIRED]
    if taken:
        raise SettingsError("covariates", f"{', '.join(taken)} is a required column, not a covariate")
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise SettingsError("covariates", f"{', '.join(twice)} named more than once")
    return names


def read_long(data: str | PathLike[str] | pd.DataFrame, covariates: str | Iterable[str] | None = ()) -> LongData:
    """Long-format data (see the module docstring), a CSV file's path or a DataFrame, as :class:`LongData`.

    ``covariates``: the per-child columns to keep (see :func:`covariate_names`).
    """
    names = covariate_names(covariates)
    wanted = (*REQUIRED, *names)
    table = _from_csv(data, wanted) if isinstance(data, str | PathLike) else _from_frame(data, wanted)
    missing = [c for c in REQUIRED if c not in table.header]
    if missing:
        raise SettingsError("data", f"missing required column{'s' * (len(missing) > 1)} {', '.join(missing)} in "
                                    f"{table.origin} ({table.listing})")
    absent = [c for c in names if c not in table.header]
    if absent:
        raise SettingsError("covariates", f"no column {', '.join(absent)} in {table.origin} ({table.listing})")

    ids = [_identifier(cell) for cell in table.columns["id"]]
    if None in ids:
        raise SettingsError("data.id", f"missing value at {table.row(ids.index(None))} of {table.origin}")
    arm = _numbers(table, "arm", required=True)
    bad = np.flatnonzero((arm != 0.0) & (arm != 1.0))
    if bad.size:
        k = int(bad[0])
        raise SettingsError("data.arm", f"must be 0 (control) or 1 (treated), got {_text(table.columns['arm'][k])!r} "
                                        f"at {table.row(k)} of {table.origin}")
    visit = _numbers(table, "visit", required=True)
    bad = np.flatnonzero(visit <= 0.0)
    if bad.size:
        k = int(bad[0])
        raise SettingsError("data.visit", f"must be months after baseline, > 0 (the baseline is the baseline "
                                          f"column, not a row), got {visit[k]:g} at {table.row(k)} of {table.origin}")
    baseline = _numbers(table, "baseline", required=False)
    value = _numbers(table, "value", required=False)
    extra = [_numbers(table, name, required=True) for name in names]

    child_of: dict[Any, int] = {}
    child = np.array([child_of.setdefault(i, len(child_of)) for i in ids], dtype=np.intp)
    first = np.unique(child, return_index=True)[1]  # the first row of each child (children numbered in order)
    for name, x in (("arm", arm), ("baseline", baseline), *zip(names, extra, strict=True)):
        _check_constant(table, name, x, child, first, ids)
    treated = arm[first] == 1.0
    if treated.all() or not treated.any():
        raise SettingsError("data.arm", f"only arm {int(treated[0])} in {table.origin}: both 0 (control) and 1 "
                                        "(treated) are needed")

    visits, slot = np.unique(visit, return_inverse=True)
    seen: dict[tuple[int, int], int] = {}
    for k, key in enumerate(zip(child.tolist(), slot.tolist(), strict=True)):
        if key in seen:
            raise SettingsError("data.id", f"child {ids[k]!r} has two rows at visit {visits[key[1]]:g} "
                                           f"({table.rows(seen[key], k)} of {table.origin})")
        seen[key] = k

    n, v = len(child_of), visits.size
    values = np.full((1, n, v + 1), np.nan)
    values[0, :, 0] = baseline[first]
    values[0, child, slot + 1] = value
    children = np.empty(n, dtype=object)
    for i, key in enumerate(child_of):  # one by one: an identifier may itself be a sequence
        children[i] = key
    return LongData(
        ids=children,
        months=np.concatenate([[0.0], visits]),
        values=values,
        observed=~np.isnan(values),
        treated=treated,
        covariates=np.stack(extra, axis=-1)[first][None] if names else np.zeros((1, n, 0)),
        covariate_names=names,
        source=table.source,
    )


@dataclass(frozen=True)
class _Table:
    """The cells of the wanted columns, whatever the data came from, and how messages name a row."""

    header: list[str]                 #: every column name
    columns: dict[str, list[Any]]     #: the cells of the wanted columns present; None where empty
    places: list[Any]                 #: per row: its line in the file, or its index label in the DataFrame
    source: str                       #: the file ("" for a DataFrame)

    @property
    def origin(self) -> str:
        return self.source or FRAME

    @property
    def listing(self) -> str:
        """The columns there are, for a message about a missing one."""
        names = ", ".join(self.header) or "nothing"
        return f"the header has: {names}" if self.source else f"its columns are: {names}"

    def row(self, k: int) -> str:
        """Row ``k`` as a person finds it: ``line 4`` of a file, ``index 3`` of a DataFrame."""
        return f"line {self.places[k]}" if self.source else f"index {_label(self.places[k])}"

    def rows(self, j: int, k: int) -> str:
        if self.source:
            return f"lines {self.places[j]} and {self.places[k]}"
        return f"index {_label(self.places[j])} and {_label(self.places[k])}"


def _from_csv(path: str | PathLike[str], wanted: tuple[str, ...]) -> _Table:
    """The header (names stripped) and the non-blank rows of a CSV file, with their line numbers."""
    source = str(path)
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
        raise SettingsError("data", f"cannot read {source}: no such file") from None
    except IsADirectoryError:
        raise SettingsError("data", f"{source} is a directory, not a CSV file") from None
    except UnicodeDecodeError:
        raise SettingsError("data", f"cannot read {source}: not UTF-8 text") from None
    except OSError as exc:
        raise SettingsError("data", f"cannot read {source}: {exc.strerror or exc}") from None
    except csv.Error as exc:
        raise SettingsError("data", f"{source} is not a readable CSV file: {' '.join(str(exc).split())}") from None
    if not any(header):
        raise SettingsError("data", f"{source} is empty: expected a header line {','.join(REQUIRED)} and one row "
                                    "per child and visit")
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise SettingsError("data", f"column {', '.join(twice)} appears more than once in the header of {source}")
    if not rows:
        raise SettingsError("data", f"{source} has a header but no rows: expected one row per child and visit")
    for row, line in zip(rows, lines, strict=True):
        if len(row) != len(header):
            raise SettingsError("data", f"line {line} of {source} has {len(row)} fields, the header has "
                                        f"{len(header)}")
    columns = {name: [row[i] if row[i].strip() else None for row in rows]
               for i, name in enumerate(header) if name in wanted}
    return _Table(header=header, columns=columns, places=lines, source=source)


def _from_frame(frame: pd.DataFrame, wanted: tuple[str, ...]) -> _Table:
    """The columns of a DataFrame as cells (None where missing), with the index labels of its rows."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise SettingsError("data", f"expected a pandas DataFrame or the path of a CSV file, got "
                                    f"{type(frame).__name__}")
    header = [str(name) for name in frame.columns]
    if not header:
        raise SettingsError("data", f"{FRAME} has no columns: expected {', '.join(REQUIRED)} and one row per "
                                    "child and visit")
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise SettingsError("data", f"column {', '.join(twice)} appears more than once in {FRAME}")
    if frame.empty:
        raise SettingsError("data", f"{FRAME} has no rows: expected one row per child and visit")
    columns = {}
    for i, name in enumerate(header):
        if name in wanted:
            cells = frame.iloc[:, i]
            columns[name] = [None if gone else cell
                             for cell, gone in zip(cells.tolist(), cells.isna().tolist(), strict=True)]
    return _Table(header=header, columns=columns, places=frame.index.tolist(), source="")


def _identifier(cell: Any) -> Any:
    """A child's identifier: text stripped, another value as it is (a NumPy scalar as Python's); None if empty."""
    if isinstance(cell, str):
        return cell.strip() or None
    return cell.item() if isinstance(cell, np.generic) else cell


def _text(cell: Any) -> str:
    return "" if cell is None else cell.strip() if isinstance(cell, str) else str(cell)


def _label(place: Any) -> str:
    return str(place) if isinstance(place, int | np.integer) else repr(place)


def _numbers(table: _Table, name: str, *, required: bool) -> np.ndarray:
    """Column ``name`` as floats; an empty cell is NaN unless ``required``."""
    cells = table.columns[name]
    out = np.empty(len(cells))
    for k, cell in enumerate(cells):
        text = _text(cell)
        if not text:
            if required:
                raise SettingsError(f"data.{name}", f"missing value at {table.row(k)} of {table.origin}")
            out[k] = math.nan
            continue
        try:
            x = float(text if isinstance(cell, str) else cell)
        except (TypeError, ValueError):
            x = math.nan
        if not math.isfinite(x):
            raise SettingsError(f"data.{name}", f"expected a number, got {text!r} at {table.row(k)} of "
                                                f"{table.origin} (the first non-numeric value in the column)")
        out[k] = x
    return out


def _check_constant(table: _Table, name: str, x: np.ndarray, child: np.ndarray, first: np.ndarray,
                    ids: Sequence[Any]) -> None:
    """Every row of a child has the value of its first row (an empty cell differs from a number)."""
    ref = x[first][child]
    differs = np.flatnonzero(~((x == ref) | (np.isnan(x) & np.isnan(ref))))
    if differs.size:
        k = int(differs[0])
        j = int(first[child[k]])
        raise SettingsError(f"data.{name}", f"must be the same on every row of a child: child {ids[k]!r} has "
                                            f"{_show(x[j])} at {table.row(j)} but {_show(x[k])} at {table.row(k)} "
                                            f"of {table.origin}")


def _show(x: float) -> str:
    return "nothing" if math.isnan(x) else f"{x:.15g}"
