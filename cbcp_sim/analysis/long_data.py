"""A real trial's scores in long format, as arrays the analyses take (one replicate: ``R = 1``).

The data are a CSV file (a header line, then the rows) or a pandas DataFrame, with one row per child and
visit. Each column has a role, and by default the role's name (``columns`` maps a role to another name, e.g.
``columns={"id": "patient", "arm": "group", "visit": "month", "value": "gmfm66", "baseline": "gmfm66_0"}``):

- ``id``: the child (any text; in a DataFrame any value);
- ``arm``: the child's arm, the same on every row of the child: 0 (control) or 1 (treated), or any two labels
  (``sham``, ``cord blood``) when ``control`` names the control's label (the other label is the treated arm);
- ``visit``: months after baseline, >= 0; a row at visit 0 is the child's baseline visit;
- ``baseline`` (optional): the child's baseline score, the same on every row of the child (empty on every row:
  no baseline);
- ``value``: the score at that visit; a missed visit is an absent row or an empty ``value``;
- ``trial`` (optional): which trial a row belongs to, in a file of several trials (``cbcp-sim trials``):
  ``trial`` chooses one; data holding more than one trial need it.

A child's baseline is its ``baseline`` value where the data have that column and the child's cell is not
empty, else the ``value`` of its visit-0 row; a child with both must have the same number in each (a child
with neither has no baseline, and the analyses leave it out). Data need a baseline column or visit-0 rows.

Further columns are ignored unless named as covariates: those must be numbers, complete, and the same on
every row of a child (per-child covariates such as age at enrolment). A missing value is an empty cell (in a
DataFrame also NaN, None or ``pd.NA``). A file and a DataFrame are checked by the same code. Labels (of arms
and trials) compare as text, except that numbers compare as numbers (``1``, ``1.0`` and ``"1"`` are one label).

Bad input raises :class:`~cbcp_sim.errors.SettingsError` naming the parameter at fault: ``data`` for the file
or DataFrame as a whole (unreadable, empty, a column missing, a line with too few fields, more than
:data:`MAX_ROWS` rows), ``data.<column>`` for a bad value in a column (the data's own name for it), with the line
of the file (or the index label of the DataFrame) of the first bad row, ``columns`` or ``columns.<role>`` for a
bad mapping or a mapped column that is not there, ``control`` for a control label not among the arms, ``trial``
for a trial not in the data (or several trials and none chosen), ``covariates`` for a bad list of covariates,
and ``visit`` for a visit not in the data.

The data are read :data:`CHUNK_ROWS` rows at a time, keeping only the columns of the roles and the covariates as
arrays (about 50 bytes a row, plus 8 a covariate) and, with ``trial``, only that trial's rows: the memory needed
grows with the rows kept, not with the file's other columns or other trials. Reading stops with an error at the
first row past :data:`MAX_ROWS`.
"""

from __future__ import annotations

import csv
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import compress
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np

from cbcp_sim.errors import SettingsError

if TYPE_CHECKING:
    import pandas as pd

#: The roles of the columns, each a column of that name unless ``columns`` maps it to another.
ROLES = ("id", "arm", "visit", "baseline", "value", "trial")
#: The columns every data set must have (``baseline`` may instead come from rows at visit 0; ``trial`` only
#: matters in a file of several trials).
REQUIRED = ("id", "arm", "visit", "value")
#: The header of a data set of one trial, in order.
COLUMNS = ("id", "arm", "visit", "baseline", "value")
#: How messages name data given as a DataFrame (a file is named by its path).
FRAME = "the DataFrame"
#: The arm labels of data with 0/1 arms (no ``control`` given): control, treated.
NUMBERED_ARMS = ("0", "1")
#: The most rows read (of the trial chosen, in data of several trials): 1,000,000. An analysis is of one trial:
#: a cell-therapy trial has 12-150 children seen a few times (hundreds of rows), and a registry of 100,000
#: children seen 10 times still fits. At the limit, reading and an MMRM take about 8 s (CPU) and 350 MB; more rows
#: are not one trial's data, and time and memory would grow without bound. Reading stops at the first row past
#: the limit with an error: the rest of a file is not read.
MAX_ROWS = 1_000_000
#: Rows converted at a time while reading: the cells of the kept columns of this many rows are Python objects
#: at once (a few MB); the rows read before are arrays.
CHUNK_ROWS = 10_000

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
    treated: np.ndarray      #: ``(N,)`` bool: in the treated arm (arm 1, or not the control's label)
    covariates: np.ndarray   #: ``(1, N, C)`` per-child covariates, complete
    covariate_names: tuple[str, ...] = ()
    source: str = ""         #: the file read ("" for a DataFrame)
    arms: tuple[str, str] = NUMBERED_ARMS  #: the labels of the control and the treated arm
    trial: str | None = None  #: the trial chosen from data of several trials (its label)

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


@dataclass(frozen=True)
class Columns:
    """The data's name for each role (:data:`ROLES`), and the roles the caller mapped to a name of its own."""

    names: dict[str, str]
    mapped: frozenset[str] = frozenset()

    def __getitem__(self, role: str) -> str:
        return self.names[role]

    def path(self, role: str) -> str:
        """The parameter an error about the role's column names: ``columns.<role>`` if mapped, else ``data``."""
        return f"columns.{role}" if role in self.mapped else "data"


def column_names(columns: Mapping[str, str] | None) -> Columns:
    """The data's column for each role: ``columns`` maps roles (:data:`ROLES`) to the data's names; a role left
    out keeps its own name. A role left out whose name another role's mapping takes has no column (for
    ``baseline`` and ``trial``; a required role so shadowed is an error).

    Raises a SettingsError on ``columns`` for a mapping that is not one or names an unknown role, and on
    ``columns.<role>`` for a name that is not text or is already another role's column.
    """
    columns = {} if columns is None else columns
    names = mapped_columns(columns, ROLES, "{'arm': 'group'}")
    taken = set(names.values())
    for role in ROLES:
        if role in names:
            continue
        if role in taken:
            mapped_as = next(r for r, n in names.items() if n == role)
            if role in REQUIRED:
                raise SettingsError(f"columns.{mapped_as}", f"{role!r} is the {role} column's own name: map "
                                                            f"{role} to its column as well")
            continue  # an optional role without a column
        names[role] = role
    return Columns(names=names, mapped=frozenset(columns))


def mapped_columns(columns: Mapping[str, str], roles: Sequence[str], example: str) -> dict[str, str]:
    """The column names ``columns`` maps roles to, stripped, in the order of ``roles``: a SettingsError on
    ``columns`` for a mapping that is not one (``example`` shows one) or names an unknown role, and on
    ``columns.<role>`` for a name that is not text or is already another role's column."""
    if not isinstance(columns, Mapping):
        raise SettingsError("columns", f"expected a mapping of roles to column names, such as {example}, got "
                                       f"{columns!r}")
    unknown = [role for role in columns if role not in roles]
    if unknown:
        raise SettingsError("columns", f"unknown role {unknown[0]!r}: the roles are {', '.join(roles)}")
    names: dict[str, str] = {}
    for role in roles:
        if role not in columns:
            continue
        name = columns[role]
        if not isinstance(name, str) or not name.strip():
            raise SettingsError(f"columns.{role}", f"expected the name of a column (text), got {name!r}")
        name = name.strip()
        other = next((r for r, n in names.items() if n == name), None)
        if other is not None:
            raise SettingsError(f"columns.{role}", f"{name!r} is already the {other} column")
        names[role] = name
    return names


def covariate_names(covariates: str | Iterable[str] | None, columns: Columns | None = None) -> tuple[str, ...]:
    """The names of the covariate columns, each stripped: from a sequence of names, or from one text of names
    separated by commas (``"age,gmfcs"``); ``None`` is none. A SettingsError on ``covariates`` for an empty
    name, a name that is not text, the column of a role (``columns``, default the roles' own names), or a
    name given twice."""
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
    roles = {name: role for role, name in (columns or column_names(None)).names.items()}
    taken = [name for name in names if name in roles]
    if taken:
        raise SettingsError("covariates", f"{taken[0]} is the {roles[taken[0]]} column"
                                          f"{' (a required column)' if roles[taken[0]] in REQUIRED else ''}, "
                                          "not a covariate")
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise SettingsError("covariates", f"{', '.join(twice)} named more than once")
    return names


def read_long(data: str | PathLike[str] | pd.DataFrame, covariates: str | Iterable[str] | None = (), *,
              columns: Mapping[str, str] | None = None, control: str | float | None = None,
              trial: str | float | None = None) -> LongData:
    """Long-format data (see the module docstring), a CSV file's path or a DataFrame, as :class:`LongData`.

    ``covariates``: the per-child columns to keep (see :func:`covariate_names`). ``columns``: the data's own
    names for the roles (see :func:`column_names`). ``control``: the control arm's label, when the arms are
    labelled otherwise than 0 and 1 (the other label is the treated arm). ``trial``: the trial to read from data
    of several trials (a ``trial`` column).
    """
    cols = column_names(columns)
    names = covariate_names(covariates, cols)
    control = _control(control)
    label = _trial(trial)
    numeric = (*(cols[role] for role in ("visit", "baseline", "value") if role in cols.names), *names)
    wanted = _Wanted(coded={cols["id"]: _identifier, cols["arm"]: _label}, numbers=numeric,
                     trial=cols.names.get("trial"), label=label)
    header = tuple(cols[role] if role in cols.names else role for role in COLUMNS)
    table = _from_csv(data, wanted, header) if isinstance(data, str | PathLike) else _from_frame(data, wanted, header)
    for role in ROLES:
        if role in cols.mapped and cols[role] not in table.header:
            raise SettingsError(f"columns.{role}", f"no column {cols[role]!r} in {table.origin} ({table.listing})")
    missing = [cols[role] for role in REQUIRED if cols[role] not in table.header]
    if missing:
        raise SettingsError("data", f"missing required column{'s' * (len(missing) > 1)} {', '.join(missing)} in "
                                    f"{table.origin} ({table.listing})")
    absent = [c for c in names if c not in table.header]
    if absent:
        raise SettingsError("covariates", f"no column {', '.join(absent)} in {table.origin} ({table.listing})")
    chosen = _one_trial(table, cols, label)

    id_name, arm_name, visit_name, value_name = (cols[role] for role in REQUIRED)
    base_name = cols.names.get("baseline")
    if base_name not in table.header:
        base_name = None
    identifiers = table.columns[id_name]
    if None in identifiers.keys:
        raise SettingsError(f"data.{id_name}", f"missing value at {table.row(identifiers.first(None))} of "
                                               f"{table.origin}")
    arm, arms = _arms(table, arm_name, control)
    visit = _numbers(table, visit_name, required=True)
    bad = np.flatnonzero(visit < 0.0)
    if bad.size:
        k = int(bad[0])
        raise SettingsError(f"data.{visit_name}", f"must be months after baseline, >= 0 (a row at 0 is the "
                                                  f"baseline visit), got {visit[k]:g} at {table.row(k)} of "
                                                  f"{table.origin}")
    at_baseline = visit == 0.0
    if base_name is None and not at_baseline.any():
        expected = cols.names.get("baseline", "baseline")
        raise SettingsError("data", f"no baseline in {table.origin}: expected a column {expected} or rows at visit "
                                    f"0 ({table.listing})")
    baseline = _numbers(table, base_name, required=False) if base_name else np.full(visit.size, math.nan)
    value = _numbers(table, value_name, required=False)
    extra = [_numbers(table, name, required=True) for name in names]

    ids = identifiers.keys
    child = identifiers.codes  # children numbered in order of first row
    first = np.array(identifiers.firsts, dtype=np.intp)  # the first row of each child
    treated_rows = (arm.codes != arm.code(arms[0])).astype(float)
    _check_constant(table, arm_name, treated_rows, child, first, ids, shown=lambda k: repr(arm.keys[arm.codes[k]]))
    checks = ((base_name, baseline),) if base_name else ()
    for name, x in (*checks, *zip(names, extra, strict=True)):
        _check_constant(table, name, x, child, first, ids)
    treated = treated_rows[first] == 1.0
    if treated.all() or not treated.any():
        only = arms[int(treated[0])]
        if control is None:
            raise SettingsError(f"data.{arm_name}", f"only arm {only} in {table.origin}: both 0 (control) and 1 "
                                                    "(treated) are needed")
        raise SettingsError(f"data.{arm_name}", f"only arm {only!r} in {table.origin}: the control and a treated "
                                                "arm are needed")

    visits, slot = np.unique(visit, return_inverse=True)
    _, earliest, pair = np.unique(child * visits.size + slot, return_index=True, return_inverse=True)
    again = np.flatnonzero(earliest[pair] != np.arange(child.size))  # rows of a child and visit seen before
    if again.size:
        k = int(again[0])
        raise SettingsError(f"data.{id_name}", f"child {ids[child[k]]!r} has two rows at visit {visits[slot[k]]:g} "
                                               f"({table.rows(int(earliest[pair[k]]), k)} of {table.origin})")
    n = len(ids)
    start = baseline[first]
    zero = np.flatnonzero(at_baseline & ~np.isnan(value))  # at most one row per child
    given = start[child[zero]]
    clash = np.flatnonzero(~np.isnan(given) & (given != value[zero]))
    if clash.size:
        k = int(zero[clash[0]])
        i = int(child[k])
        raise SettingsError(f"data.{base_name}", f"must agree with the child's value at visit 0: child "
                                                 f"{ids[i]!r} has baseline {_show(start[i])} at "
                                                 f"{table.row(int(first[i]))} but {value_name} {_show(value[k])} at "
                                                 f"visit 0 at {table.row(k)} of {table.origin}")
    start[child[zero]] = np.where(np.isnan(given), value[zero], given)
    after = ~at_baseline
    if not after.any():
        raise SettingsError(f"data.{visit_name}", f"no visit after baseline (> 0) in {table.origin}")
    visits, slot = np.unique(visit[after], return_inverse=True)
    v = visits.size
    values = np.full((1, n, v + 1), np.nan)
    values[0, :, 0] = start
    values[0, child[after], slot + 1] = value[after]
    children = np.empty(n, dtype=object)
    for i, key in enumerate(ids):  # one by one: an identifier may itself be a sequence
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
        arms=arms,
        trial=chosen,
    )


def _control(control: Any) -> str | None:
    """The control arm's label (see :func:`_label`), or None; a SettingsError on ``control`` for one that is not
    text or a number, or is empty."""
    if control is None:
        return None
    if not isinstance(control, str | numbers.Real | np.generic) or isinstance(control, bool):
        raise SettingsError("control", f"expected the control arm's label (text or a number), got {control!r}")
    label = _label(control)
    if label is None:
        raise SettingsError("control", f"expected the control arm's label, got {control!r}")
    return label


def _trial(trial: Any) -> str | None:
    """The label of the trial to read (see :func:`_label`), or None; a SettingsError on ``trial`` for one that is
    not text or a number, or is empty."""
    if trial is None:
        return None
    if isinstance(trial, bool) or not isinstance(trial, str | numbers.Real | np.generic) or _label(trial) is None:
        raise SettingsError("trial", f"expected the label of a trial (text or a number), got {trial!r}")
    return _label(trial)


def _arms(table: _Table, name: str, control: str | None) -> tuple[_Coded, tuple[str, str]]:
    """The arm column (each row's label coded), and the labels of the control and the treated arm: 0 and 1 without
    ``control``, else ``control`` and the other label."""
    column = table.columns[name]
    found = column.keys
    if None in found:
        raise SettingsError(f"data.{name}", f"missing value at {table.row(column.first(None))} of {table.origin}")
    if control is None:
        odd = next((c for c, label in enumerate(found) if label not in NUMBERED_ARMS), None)
        if odd is not None:  # a label's first row is the first row with a label not 0 or 1
            raise SettingsError(f"data.{name}", f"must be 0 (control) or 1 (treated), got "
                                                f"{_text(column.cells[odd])!r} at {table.row(column.firsts[odd])} "
                                                f"of {table.origin} (for arms with other labels, name the "
                                                "control arm's label in control)")
        return column, NUMBERED_ARMS
    if len(found) > 2:
        raise SettingsError(f"data.{name}", f"has {len(found)} arms in {table.origin} "
                                            f"({', '.join(map(repr, found))}): the analysis compares the control "
                                            "with one treated arm; keep the rows of those two")
    if control not in found:
        raise SettingsError("control", f"no arm {control!r} in {table.origin} (its arms: "
                                       f"{', '.join(map(repr, found))})")
    treated = next((label for label in found if label != control), control)
    return column, (control, treated)


def _one_trial(table: _Table, cols: Columns, label: str | None) -> str | None:
    """The label of the trial read (its rows alone are in ``table``), or None when ``label`` is None and the data
    hold one trial at most."""
    name = cols.names.get("trial")
    if label is None:
        if table.trials is not None and len(table.trials.keys) > 1:
            raise SettingsError("trial", f"{table.origin} holds {len(table.trials.keys)} trials (column {name}: "
                                         f"{_listing(table.trials.keys)}): choose the one to analyse")
        return None
    if table.trials is None:
        raise SettingsError("trial", f"there is no column {name or 'trial'} in {table.origin} to choose trial "
                                     f"{label} from ({table.listing})")
    if not table.size:
        raise SettingsError("trial", f"no rows of trial {label} in {table.origin} (its trials: "
                                     f"{_listing(table.trials.keys)})")
    return label


def _listing(labels: Sequence[str | None], most: int = 8) -> str:
    """Labels for a message, the middle left out when there are many: ``0, 1, 2, ..., 99``."""
    shown = ["(empty)" if label is None else label for label in labels]
    if len(shown) > most:
        shown = [*shown[:most - 2], "...", shown[-1]]
    return ", ".join(shown)


@dataclass(frozen=True)
class _Wanted:
    """What to keep of the data: the columns ``coded`` (by their function: :func:`_identifier`, :func:`_label`)
    and ``numbers``, and where the data have the column ``trial``, the rows of trial ``label`` (all if None)."""

    coded: dict[str, Callable[[Any], Any]]
    numbers: tuple[str, ...]
    trial: str | None
    label: str | None


class _Coded:
    """A column as integer codes of its cells' keys (``key(cell)``), numbered in order of first appearance."""

    def __init__(self, key: Callable[[Any], Any]) -> None:
        self.key = key
        self.keys: list[Any] = []              #: the distinct keys in order (None: an empty cell)
        self.firsts: list[int] = []            #: each key's first row (of the rows kept)
        self.cells: list[Any] = []             #: each key's first cell, as given
        self.codes = np.empty(0, dtype=np.intp)  #: per row, its key's index in ``keys`` (once finished)
        self.size = 0                          #: the rows kept
        self._parts: list[np.ndarray] = []
        self._number: dict[Any, int] = {}      # key -> code
        self._seen: dict[Any, int] = {}        # cell -> code

    def add(self, cells: Sequence[Any], keep: bool = True) -> np.ndarray:
        """The codes of ``cells`` (the next rows), kept unless ``keep`` is false."""
        codes = []
        for k, cell in enumerate(cells):
            try:
                code = self._seen[cell]
            except KeyError:
                code = self._seen[cell] = self._code(cell, self.size + k)
            except TypeError:  # an unhashable cell of a DataFrame
                code = self._code(cell, self.size + k)
            codes.append(code)
        out = np.array(codes, dtype=np.intp)
        if keep:
            self._parts.append(out)
            self.size += out.size
        return out

    def _code(self, cell: Any, row: int) -> int:
        key = self.key(cell)
        code = self._number.get(key)
        if code is None:
            code = self._number[key] = len(self.keys)
            self.keys.append(key)
            self.firsts.append(row)
            self.cells.append(cell)
        return code

    def code(self, key: Any) -> int:
        """The code of ``key``, -1 if no cell has it."""
        return self._number.get(key, -1)

    def first(self, key: Any) -> int:
        """The first row with ``key``."""
        return self.firsts[self._number[key]]

    def finish(self) -> None:
        self.codes = np.concatenate([self.codes, *self._parts])
        self._parts = []


class _Floats:
    """A column of numbers as floats (NaN where empty), with its first empty cell and its first cell that is not a
    finite number."""

    def __init__(self) -> None:
        self.values = np.empty(0)               #: per row (once finished)
        self.empty: int | None = None           #: the first row with an empty cell
        self.bad: tuple[int, str] | None = None  #: the first row whose cell is not a finite number, and its text
        self.size = 0                           #: the rows kept
        self._parts: list[np.ndarray] = []

    def add(self, cells: Sequence[Any]) -> None:
        """Append ``cells`` (the next rows)."""
        try:
            x = np.array([math.nan if cell is None else float(cell) for cell in cells], dtype=float)
            given = np.array([cell is not None for cell in cells], dtype=bool)
        except (TypeError, ValueError):  # text not a number, or blank, or a value of another kind
            given = np.array([bool(_text(cell)) for cell in cells], dtype=bool)
            x = np.array([_number(cell) if g else math.nan for cell, g in zip(cells, given.tolist(), strict=True)],
                         dtype=float)
        if self.empty is None and not given.all():
            self.empty = self.size + int(np.argmin(given))
        bad = given & ~np.isfinite(x)
        if self.bad is None and bad.any():
            k = int(np.argmax(bad))
            self.bad = self.size + k, _text(cells[k])
        self._parts.append(x)
        self.size += x.size

    def finish(self) -> None:
        self.values = np.concatenate([self.values, *self._parts])
        self._parts = []


class _Table:
    """The wanted columns of the data's rows (with ``trial``, of that trial's rows only), compact, read a chunk of
    rows at a time (:meth:`add`); and how messages name a row."""

    def __init__(self, header: list[str], source: str, wanted: _Wanted, index: pd.Index | None = None) -> None:
        self.header = header                    #: every column name
        self.source = source                    #: the file ("" for a DataFrame)
        self.columns: dict[str, _Coded | _Floats] = {
            **{name: _Coded(key) for name, key in wanted.coded.items() if name in header},
            **{name: _Floats() for name in wanted.numbers if name in header}}
        #: the trial column's labels (None: no trial column), read on every row, kept only as the labels seen
        self.trials = _Coded(_label) if wanted.trial in header else None
        self.label = wanted.label if self.trials is not None else None  #: the trial kept (None: every row)
        self._trial = wanted.trial
        #: the columns whose cells :meth:`add` takes
        self.reads = [*self.columns, *([wanted.trial] if self.trials is not None else [])]
        self.places = np.empty(0, dtype=np.int64)  #: per row: its line in the file, or its position in the DataFrame
        self.read = 0                           #: the rows read, of every trial
        self.size = 0                           #: the rows kept
        self._index = index                     # the DataFrame's index, which names its rows
        self._parts: list[np.ndarray] = []

    def add(self, cells: dict[str, list[Any]], places: np.ndarray) -> None:
        """Keep the next rows: ``cells`` of each column of :attr:`reads` (None where empty), at ``places``; a
        SettingsError on ``data`` once more than :data:`MAX_ROWS` rows are kept."""
        self.read += places.size
        if self.trials is not None:
            codes = self.trials.add(cells[self._trial], keep=False)
            if self.label is not None:
                keep = (codes == self.trials.code(self.label)).tolist()
                places = places[keep]
                cells = {name: list(compress(cells[name], keep)) for name in self.columns}
        if self.size + places.size > MAX_ROWS:
            of = f" of trial {self.label}" if self.label is not None else ""
            seen = self.trials.keys if self.trials is not None and self.label is None else []
            several = (f"; the rows read hold {len(seen)} trials (column {self._trial}: {_listing(seen)}): choose "
                       "one" if len(seen) > 1 else "")
            raise SettingsError("data", f"{self.origin} has more than {MAX_ROWS} rows{of}, the limit (the first row "
                                        f"past it is {self._name(places[MAX_ROWS - self.size])}): an analysis "
                                        f"takes the rows of one trial{several}")
        for name, column in self.columns.items():
            column.add(cells[name])
        self._parts.append(places)
        self.size += places.size

    def finish(self) -> _Table:
        """The table with every row added, as arrays."""
        self.places = np.concatenate([self.places, *self._parts])
        self._parts = []
        for column in self.columns.values():
            column.finish()
        return self

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
        return self._name(self.places[k])

    def rows(self, j: int, k: int) -> str:
        if self.source:
            return f"lines {self.places[j]} and {self.places[k]}"
        return f"index {self._at(self.places[j])} and {self._at(self.places[k])}"

    def _name(self, place: int) -> str:
        return f"line {place}" if self.source else f"index {self._at(place)}"

    def _at(self, place: int) -> str:
        """The index label of the DataFrame's row at ``place``, for a message."""
        return _place(self._index[int(place):int(place) + 1].tolist()[0])


def _from_csv(path: str | PathLike[str], wanted: _Wanted, expected: tuple[str, ...] = COLUMNS) -> _Table:
    """The wanted columns of a CSV file's non-blank rows (the header's names stripped), with their line numbers,
    read :data:`CHUNK_ROWS` rows at a time."""
    source = str(path)
    if "\0" in source:
        raise SettingsError("data", "a file name cannot hold a NUL character")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            if not any(header):
                raise SettingsError("data", f"{source} is empty: expected a header line {','.join(expected)} and "
                                            "one row per child and visit")
            twice = sorted({name for name in header if header.count(name) > 1})
            if twice:
                raise SettingsError("data", f"column {', '.join(twice)} appears more than once in the header of "
                                            f"{source}")
            table = _Table(header, source, wanted)
            chunk: dict[str, list[Any]] = {name: [] for name in table.reads}
            slots = [(header.index(name), chunk[name].append) for name in table.reads]
            lines: list[int] = []
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise SettingsError("data", f"line {reader.line_num} of {source} has {len(row)} fields, the "
                                                f"header has {len(header)}")
                for i, append in slots:
                    cell = row[i]
                    append(cell if cell.strip() else None)
                lines.append(reader.line_num)
                if len(lines) == CHUNK_ROWS:
                    table.add(chunk, np.array(lines, dtype=np.int64))
                    for cells in chunk.values():
                        cells.clear()
                    lines.clear()
            table.add(chunk, np.array(lines, dtype=np.int64))
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
    if not table.read:
        raise SettingsError("data", f"{source} has a header but no rows: expected one row per child and visit")
    return table.finish()


def _from_frame(frame: pd.DataFrame, wanted: _Wanted, expected: tuple[str, ...] = COLUMNS) -> _Table:
    """The wanted columns of a DataFrame (None where missing), with the positions of its rows, converted
    :data:`CHUNK_ROWS` rows at a time."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise SettingsError("data", f"expected a pandas DataFrame or the path of a CSV file, got "
                                    f"{type(frame).__name__}")
    header = [str(name) for name in frame.columns]
    if not header:
        raise SettingsError("data", f"{FRAME} has no columns: expected {', '.join(expected)} and one row per "
                                    "child and visit")
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise SettingsError("data", f"column {', '.join(twice)} appears more than once in {FRAME}")
    if frame.empty:
        raise SettingsError("data", f"{FRAME} has no rows: expected one row per child and visit")
    table = _Table(header, "", wanted, index=frame.index)
    for start in range(0, len(frame), CHUNK_ROWS):
        part = frame.iloc[start:start + CHUNK_ROWS]
        chunk = {}
        for name in table.reads:
            cells = part.iloc[:, header.index(name)]
            chunk[name] = [None if gone else cell
                           for cell, gone in zip(cells.tolist(), cells.isna().tolist(), strict=True)]
        table.add(chunk, np.arange(start, start + len(part), dtype=np.int64))
    return table.finish()


def _identifier(cell: Any) -> Any:
    """A child's identifier: text stripped, another value as it is (a NumPy scalar as Python's); None if empty."""
    if isinstance(cell, str):
        return cell.strip() or None
    return cell.item() if isinstance(cell, np.generic) else cell


def _text(cell: Any) -> str:
    return "" if cell is None else cell.strip() if isinstance(cell, str) else str(cell)


def _place(place: Any) -> str:
    return str(place) if isinstance(place, int | np.integer) else repr(place)


def _label(cell: Any) -> str | None:
    """An arm's or a trial's label: a number as a number (``1``, ``1.0`` and ``"1"`` are ``"1"``), other text
    stripped; None if empty."""
    text = _text(cell)
    if not text:
        return None
    try:
        x = float(text if isinstance(cell, str) else cell)
    except (TypeError, ValueError):
        return text
    if not math.isfinite(x):
        return text
    return str(int(x)) if x.is_integer() else repr(x)


def _number(cell: Any) -> float:
    """A cell as a float: NaN if it is not a number."""
    try:
        return float(cell.strip() if isinstance(cell, str) else cell)
    except (TypeError, ValueError):
        return math.nan


def _numbers(table: _Table, name: str, *, required: bool) -> np.ndarray:
    """Column ``name`` as floats; an empty cell is NaN unless ``required``."""
    column = table.columns[name]
    empty = column.empty if required else None
    if column.bad is not None and (empty is None or column.bad[0] < empty):
        k, text = column.bad
        raise SettingsError(f"data.{name}", f"expected a number, got {text!r} at {table.row(k)} of "
                                            f"{table.origin} (the first non-numeric value in the column)")
    if empty is not None:
        raise SettingsError(f"data.{name}", f"missing value at {table.row(empty)} of {table.origin}")
    return column.values


def _check_constant(table: _Table, name: str, x: np.ndarray, child: np.ndarray, first: np.ndarray,
                    ids: Sequence[Any], shown: Callable[[int], str] | None = None) -> None:
    """Every row of a child has the value of its first row (an empty cell differs from a number); ``ids`` are the
    children's identifiers, ``shown`` gives row ``k``'s value for the message (default the number ``x[k]``)."""
    ref = x[first][child]
    differs = np.flatnonzero(~((x == ref) | (np.isnan(x) & np.isnan(ref))))
    if differs.size:
        k = int(differs[0])
        j = int(first[child[k]])
        show = shown or (lambda row: _show(x[row]))
        raise SettingsError(f"data.{name}", f"must be the same on every row of a child: child {ids[child[k]]!r} has "
                                            f"{show(j)} at {table.row(j)} but {show(k)} at {table.row(k)} "
                                            f"of {table.origin}")


def _show(x: float) -> str:
    return "nothing" if math.isnan(x) else f"{x:.15g}"
