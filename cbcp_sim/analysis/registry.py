"""A registry's repeated GMFM-66 scores by age and GMFCS level, as arrays the growth-curve fit takes.

The data are a CSV file or a pandas DataFrame with one row per child and assessment. Each column has a role, by
by default the role's name (``columns`` maps a role to another name, e.g. ``{"child": "patient", "age": "age_y"}``):

- ``child``: the child (any text; in a DataFrame any value);
- ``age``: age at the assessment, years (or months with ``age_unit = "months"``), above 0 and at most 25 years;
- ``gmfcs``: GMFCS level, 1-5 or I-V, the same on every row of a child;
- ``score``: the GMFM-66 score, 0-100, in a column named ``gmfm66`` by default; an empty cell is an assessment
  not done (the row is skipped).

Bad input raises :class:`~cbcp_sim.errors.SettingsError` naming the parameter at fault, as ``cbcp-sim analyze``
does (:mod:`cbcp_sim.analysis.long_data`, whose reader this shares): ``data`` for the file or DataFrame as a whole,
``data.<column>`` for a bad value with the line (or index label) of the first bad row, ``columns.<role>`` for a
mapped column that is not there, ``age_unit`` for an unknown unit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np

from cbcp_sim.analysis.long_data import (
    _check_constant,
    _from_csv,
    _from_frame,
    _identifier,
    _numbers,
    _text,
    _Wanted,
    mapped_columns,
)
from cbcp_sim.errors import SettingsError
from cbcp_sim.vocabulary import GMFCS_LEVELS

if TYPE_CHECKING:
    import pandas as pd

#: The roles of a registry's columns, each a column of that name unless ``columns`` maps it to another.
ROLES = ("child", "age", "gmfcs", "score")
#: The column of a role whose default column is not its own name.
DEFAULT_COLUMNS = {"score": "gmfm66"}
#: Units of the age column, and years per unit.
AGE_UNITS = {"years": 1.0, "months": 1.0 / 12.0}
#: The oldest age a registry row may have, years: the natural-history model runs to 21.
MAX_AGE = 25.0
#: GMFCS levels written as Roman numerals.
ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5}


@dataclass(frozen=True)
class Registry:
    """Scores of ``N`` children (``S`` scores in all), sorted by child and age."""

    ids: np.ndarray      #: (N,) child identifiers, in order of first appearance
    gmfcs: np.ndarray    #: (N,) GMFCS level, 1-5
    child: np.ndarray    #: (S,) index of each score's child
    age: np.ndarray      #: (S,) age at the assessment, years
    score: np.ndarray    #: (S,) GMFM-66
    source: str = ""     #: the file read ("" for a DataFrame)

    @property
    def n_children(self) -> int:
        return int(self.ids.size)

    @property
    def n_scores(self) -> int:
        return int(self.score.size)

    def padded(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ages and scores ``(N, M)`` with each child's scores in its row (``M`` the most any child has), and the
        mask of the cells that hold one."""
        counts = np.bincount(self.child, minlength=self.n_children)
        slot = np.arange(self.child.size) - np.repeat(np.cumsum(counts) - counts, counts)
        width = int(counts.max())
        age, score = np.zeros((self.n_children, width)), np.zeros((self.n_children, width))
        mask = np.zeros((self.n_children, width), dtype=bool)
        age[self.child, slot], score[self.child, slot], mask[self.child, slot] = self.age, self.score, True
        return age, score, mask


def read_registry(data: str | PathLike[str] | pd.DataFrame, *, columns: Mapping[str, str] | None = None,
                  age_unit: str = "years") -> Registry:
    """Registry data (see the module docstring), a CSV file's path or a DataFrame, as :class:`Registry`."""
    if age_unit not in AGE_UNITS:
        raise SettingsError("age_unit", f"expected one of {', '.join(AGE_UNITS)}, got {age_unit!r}")
    names = _column_names(columns)
    child_name, age_name, gmfcs_name, score_name = (names[role] for role in ROLES)
    wanted = _Wanted(coded={child_name: _identifier, gmfcs_name: _gmfcs_key}, numbers=(age_name, score_name),
                     trial=None, label=None)
    header = tuple(names[role] for role in ROLES)
    table = _from_csv(data, wanted, header) if isinstance(data, str | PathLike) else _from_frame(data, wanted, header)
    for role in ROLES:
        if names[role] not in table.header:
            where = f"columns.{role}" if columns and role in columns else "data"
            raise SettingsError(where, f"no column {names[role]!r} in {table.origin} ({table.listing}); map the "
                                       f"{role} column with columns (--{role} on the command line)")
    children = table.columns[child_name]
    if None in children.keys:
        raise SettingsError(f"data.{child_name}", f"missing value at {table.row(children.first(None))} of "
                                                  f"{table.origin}")
    level_column = table.columns[gmfcs_name]
    if None in level_column.keys:
        raise SettingsError(f"data.{gmfcs_name}", f"missing value at {table.row(level_column.first(None))} of "
                                                  f"{table.origin}")
    bad = next((k for k, key in enumerate(level_column.keys) if key not in GMFCS_LEVELS), None)
    if bad is not None:
        raise SettingsError(f"data.{gmfcs_name}", f"must be a GMFCS level 1-5 (or I-V), got "
                                                  f"{_text(level_column.cells[bad])!r} at "
                                                  f"{table.row(level_column.firsts[bad])} of {table.origin}")
    levels = np.array(level_column.keys, dtype=float)[level_column.codes]
    age = _numbers(table, age_name, required=True) * AGE_UNITS[age_unit]
    score = _numbers(table, score_name, required=False)
    _check_range(table, age_name, age / AGE_UNITS[age_unit], 0.0, MAX_AGE / AGE_UNITS[age_unit], age_unit,
                 lo_open=True)
    _check_range(table, score_name, score, 0.0, 100.0, "GMFM-66 points")
    child, first = children.codes, np.array(children.firsts, dtype=np.intp)
    ids = np.empty(len(children.keys), dtype=object)
    ids[:] = children.keys
    _check_constant(table, gmfcs_name, levels, child, first, ids)
    seen = ~np.isnan(score)
    if not seen.any():
        raise SettingsError(f"data.{score_name}", f"no scores in {table.origin}")
    order = np.lexsort((age[seen], child[seen]))
    kept = np.unique(child[seen])  # children with at least one score, renumbered in order of first row
    renumber = np.full(ids.size, -1)
    renumber[kept] = np.arange(kept.size)
    return Registry(ids=ids[kept], gmfcs=levels[first[kept]].astype(int), child=renumber[child[seen][order]],
                    age=age[seen][order], score=score[seen][order], source=table.source)


def _column_names(columns: Mapping[str, str] | None) -> dict[str, str]:
    """The data's column for each role: its default unless ``columns`` maps it (an unmapped role whose default
    another role's mapping takes is an error naming that mapping)."""
    names = mapped_columns({} if columns is None else columns, ROLES, "{'child': 'id'}")
    for role in ROLES:
        if role in names:
            continue
        default = DEFAULT_COLUMNS.get(role, role)
        other = next((r for r, n in names.items() if n == default), None)
        if other is not None:
            raise SettingsError(f"columns.{other}", f"{default!r} is the {role} column's default name: map {role} "
                                                    "to its column as well")
        names[role] = default
    return {role: names[role] for role in ROLES}


def _gmfcs_key(cell: Any) -> int | str | None:
    """A GMFCS cell as its level 1-5 where it names one (``2``, ``2.0``, ``II``), else its text; None if empty."""
    text = _text(cell).upper()
    if not text:
        return None
    if text in ROMAN:
        return ROMAN[text]
    try:
        x = float(text)
    except ValueError:
        return text
    return int(x) if math.isfinite(x) and x.is_integer() and int(x) in GMFCS_LEVELS else text


def _check_range(table: Any, name: str, x: np.ndarray, lo: float, hi: float, unit: str,
                 lo_open: bool = False) -> None:
    """Every given value of column ``name`` in [``lo``, ``hi``] (``lo`` excluded if ``lo_open``)."""
    outside = (x <= lo if lo_open else x < lo) | (x > hi)
    bad = np.flatnonzero(outside & ~np.isnan(x))
    if bad.size:
        k = int(bad[0])
        interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
        raise SettingsError(f"data.{name}", f"must be in {interval} {unit}, got {x[k]:g} at {table.row(k)} of "
                                            f"{table.origin}")

