"""What the HTML report reads from a results directory, written down once per kind and file, and checked right
after reading, before anything is rendered.

A JSON document is described by an :class:`Object` (its required and optional keys, each with the spec of its
value), a :class:`ListOf` items or a :class:`Value` (a number, a whole number, a string, ...). Only the keys the
report reads are described; others are kept as they are. Null is allowed where a writer puts it:
:func:`cbcp_sim.run.store.json_safe` writes a NaN (an MCSE from one trial, a type I error no trial gave, an
unknown true effect, a PRCC of a constant power) as null, and such a number is read back as NaN. A CSV file is
described by an :class:`Object` of its columns: each cell of a number column is empty or as the column's spec says.
Anything else is a :class:`~cbcp_sim.errors.ScenarioError` naming the file, the key path (``analyses[0].power``) or
column and what was expected.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from cbcp_sim.errors import ScenarioError
from cbcp_sim.run.store import MANIFEST


class _Misfit(Exception):
    """A value at ``key`` that is not what the spec says (``problem``), or a key that is missing (None)."""

    def __init__(self, key: str, problem: str | None = None) -> None:
        super().__init__(key, problem)
        self.key, self.problem = key, problem


def _given(value: Any) -> str:
    """What a JSON value is, for an error: ``a string``, ``null``, ``1.5``."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float):
        text = json.dumps(value)
        return text if len(text) <= 24 else f"a number of {len(text)} digits"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    return "a JSON object"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _toml(value: Any) -> bool:
    """Whether ``value`` is a TOML value: no null anywhere in it (a point's value in a ``--grid`` or points file)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if item is None:
            return False
        stack.extend(item.values() if isinstance(item, dict) else item if isinstance(item, list) else ())
    return True


def _join(key: str, name: str) -> str:
    """The path of ``name`` inside ``key``: ``analyses[0].power``; a key that is no bare word quoted as TOML does."""
    shown = name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)
    return f"{key}.{shown}" if key else shown


@dataclass(frozen=True)
class Value:
    """One value: ``what`` it must be, in words, and the ``test`` it passes; ``null`` allows null too. A
    ``numeric`` value's null is read back as NaN, and its CSV column is checked cell by cell."""

    what: str
    test: Callable[[Any], bool]
    null: bool = False
    numeric: bool = False

    def read(self, value: Any, key: str) -> Any:
        if value is None and self.null:
            return math.nan if self.numeric else None
        if not self.test(value):
            raise _Misfit(key, f"must be {self.what}{' or null' if self.null else ''}, got {_given(value)}")
        return value


@dataclass(frozen=True)
class Object:
    """A JSON object: ``required`` and ``optional`` keys with the spec of each value, any other key checked against
    ``rest`` (None: not read, kept as it is); ``null`` allows null instead of the object."""

    required: Mapping[str, Spec] = field(default_factory=dict)
    optional: Mapping[str, Spec] = field(default_factory=dict)
    rest: Spec | None = None
    null: bool = False

    def read(self, value: Any, key: str) -> dict[str, Any] | None:
        if value is None and self.null:
            return None
        if not isinstance(value, dict):
            raise _Misfit(key, f"must be a JSON object, got {_given(value)}")
        missing = next((name for name in self.required if name not in value), None)
        if missing is not None:
            raise _Misfit(_join(key, missing))
        known = {**self.required, **self.optional}
        out = {}
        for name, item in value.items():
            spec = known.get(name, self.rest)
            out[name] = item if spec is None else spec.read(item, _join(key, name))
        return out


@dataclass(frozen=True)
class ListOf:
    """A JSON list of ``item`` (``nonempty``: at least one); ``same_keys``: every item (an object) has the first's
    keys."""

    item: Spec
    nonempty: bool = False
    same_keys: bool = False

    def read(self, value: Any, key: str) -> list[Any]:
        if not isinstance(value, list) or (self.nonempty and not value):
            raise _Misfit(key, f"must be a {'non-empty ' if self.nonempty else ''}list, got {_given(value)}")
        out = [self.item.read(item, f"{key}[{i}]") for i, item in enumerate(value)]
        if self.same_keys:
            for i, item in enumerate(out[1:], 1):
                if set(item) != set(out[0]):
                    raise _Misfit(f"{key}[{i}]", f"must set the keys of {key}[0] ({', '.join(out[0])}), got "
                                                 f"{', '.join(item) or 'none'}")
        return out


Spec = Value | Object | ListOf

NUMBER = Value("a number", _finite, numeric=True)
RATE = Value("a number in [0, 1]", lambda v: _finite(v) and 0 <= v <= 1, numeric=True)  #: power, coverage, ...
CORRELATION = Value("a number in [-1, 1]", lambda v: _finite(v) and -1 <= v <= 1, numeric=True)
WHOLE = Value("a whole number", _whole, numeric=True)
TEXT = Value("a string", lambda v: isinstance(v, str))
ANY = Value("any value", lambda v: True, null=True)
PER_ARM = Value("a whole number or a list of them", lambda v: _whole(v) or (
    isinstance(v, list) and bool(v) and all(map(_whole, v))))


#: The same or null (a NaN written as null).
MAYBE_NUMBER, MAYBE_RATE, MAYBE_CORRELATION = (replace(spec, null=True) for spec in (NUMBER, RATE, CORRELATION))


def _each(spec: Value, *names: str) -> dict[str, Value]:
    return dict.fromkeys(names, spec)


#: A summary row of one analysis (``result.json``'s ``analyses``, a row of a sweep's ``results.csv``).
ROW = Object(required={"analysis": TEXT, "comparison": TEXT, "role": TEXT,
                       **_each(MAYBE_RATE, "power", "type1_error")},
             optional={**_each(MAYBE_RATE, "ci_low", "ci_high", "type1_ci_low", "type1_ci_high", "coverage",
                               "power_all_trials"),
                       **_each(MAYBE_NUMBER, "mcse", "type1_mcse", "true_effect", "mean_estimate", "bias", "bias_mcse",
                               "rmse"),
                       **_each(WHOLE, "n_reps", "n_failed")})


def _result(required: dict[str, Spec], optional: dict[str, Spec] | None = None) -> Object:
    """A ``result.json``: what every kind's has, then ``required`` and ``optional`` keys of its own."""
    change = Object(required={"path": TEXT, "value": ANY})
    return Object(required={"analysis": TEXT, "comparison": TEXT, "seed": WHOLE, "scenario_digest": TEXT, **required},
                  optional={"heading": TEXT, "title": TEXT, "changes": ListOf(change), **(optional or {})})


def _manifest(inputs: Object | None = None, *, required: bool = False) -> Object:
    """A ``manifest.json`` (its ``kind`` is checked first) with the ``inputs`` the page reads."""
    given = {"inputs": inputs or Object()}
    return Object(required=given if required else {}, optional={"inputs_digest": TEXT, **({} if required else given)})


#: A manifest's ``kind``, read before anything else.
KIND = Object(optional={"kind": TEXT})

#: The fields of a dose-slope block and of its strata.
_DOSE_SLOPE = {"true_slope": MAYBE_NUMBER, **dict.fromkeys(("unadjusted", "adjusted"), Object(
    required=_each(MAYBE_NUMBER, "mean_estimate", "bias", "bias_mcse", "rmse"),
    optional=_each(MAYBE_RATE, "coverage", "power", "type1")))}

RUN = _result(
    {**_each(MAYBE_RATE, "power", "ci_low", "ci_high", "type1_error"), "n_reps": WHOLE, "analyses": ListOf(ROW)},
    {**_each(MAYBE_NUMBER, "mcse", "type1_mcse"), "command": TEXT,
     "operations": Object(rest=Object(optional=_each(MAYBE_NUMBER, "mean", "q05", "q50", "q95"))),
     "sequential": Object(required={"looks": WHOLE}),
     "bayes": Object(required=_each(MAYBE_RATE, "p_go", "p_nogo", "p_gray", "p_go_null")),
     "tipping_point": Object(required={"analysis": TEXT, "comparison": TEXT, "n_significant": WHOLE,
                                       **dict.fromkeys(("deltas", "power", "mcse", "ci_low", "ci_high"),
                                                      ListOf(MAYBE_NUMBER))}),
     "dose_slope": Object(required={"treated": TEXT, "scale": TEXT, **_DOSE_SLOPE},
                          optional={"strata": Object(required={"cuts": ListOf(MAYBE_NUMBER), **_DOSE_SLOPE})}),
     "dose_response": Object(required={"models": ListOf(TEXT), "doses": ListOf(MAYBE_NUMBER),
                                       "true_effects": ListOf(MAYBE_NUMBER), "true_curve": ListOf(MAYBE_NUMBER),
                                       **_each(MAYBE_NUMBER, "true_td", "power", "type1", "td_mean", "td_bias",
                                               "td_rmse", "td_within_25")})})

SAMPLE_SIZE = _result(
    {"target": RATE, "n_per_arm": PER_ARM, "total": WHOLE, **_each(RATE, "power", "ci_low", "ci_high", "fitted_power"),
     "reps": WHOLE,
     "curve": ListOf(Object(required={"n_per_arm": PER_ARM, "total": WHOLE, "mcse": MAYBE_NUMBER,
                                      **_each(RATE, "power", "ci_low", "ci_high", "fitted_power")}), nonempty=True)},
    {"mcse": MAYBE_NUMBER})

ASSURANCE = _result(
    {**_each(MAYBE_RATE, "assurance", "ci_low", "ci_high", "favourable"), "draws": WHOLE, "reps_per_draw": WHOLE,
     "priors": Object(rest=Object(required={"distribution": TEXT},
                                  rest=Value("a number or a string", lambda v: _finite(v) or isinstance(v, str)))),
     "power_quantiles": Object(rest=RATE)},
    {"mcse": MAYBE_NUMBER})

SENSITIVITY = _result(
    {"base_power": MAYBE_RATE, "reps": WHOLE,
     "tornado": ListOf(Object(required={"path": TEXT, "base": ANY, "low": NUMBER, "high": NUMBER, "rank": WHOLE,
                                        "swing": MAYBE_NUMBER, **_each(MAYBE_RATE, "power_low", "power_high")},
                              optional=_each(MAYBE_NUMBER, "mcse_low", "mcse_high")))},
    {"base_mcse": MAYBE_NUMBER,
     "global": Object(required={"samples": WHOLE, "rows": ListOf(Object(
         required={"path": TEXT, "rank": WHOLE, "prcc": MAYBE_CORRELATION},
         optional=_each(MAYBE_CORRELATION, "prcc_low", "prcc_high")))}, null=True)})

#: A sweep's points: every one sets the same keys, each to a value a ``--grid`` or points file can give.
POINTS = ListOf(Object(rest=Value("a value (no null)", _toml)), nonempty=True, same_keys=True)

#: What each kind's page reads besides ``scenario.toml``, by file: a JSON document by its spec, a CSV table by an
#: :class:`Object` of its columns.
READS: dict[str, dict[str, Object]] = {
    "run": {MANIFEST: _manifest(Object(optional={"chunk_size": WHOLE})), "result.json": RUN},
    "sweep": {MANIFEST: _manifest(Object(required={"points": POINTS, "reps": WHOLE, "seed": WHOLE},
                                         optional={"chunk_size": WHOLE, "scenario": Object(optional={"title": TEXT})}),
                                  required=True),
              "results.csv": Object(required={"point": WHOLE, **ROW.required}, optional=ROW.optional)},
    "sample-size": {MANIFEST: _manifest(Object(optional={"max_n": WHOLE})), "result.json": SAMPLE_SIZE},
    "assurance": {MANIFEST: _manifest(), "result.json": ASSURANCE,
                  "draws.csv": Object(required={"power": MAYBE_RATE})},
    "sensitivity": {MANIFEST: _manifest(), "result.json": SENSITIVITY},
}


def _lacking(path: Path, kind: str, key: str) -> ScenarioError:
    return ScenarioError(str(path), f"its {kind} results lack {key!r}: written by another version?")


def checked(path: Path, value: Any, spec: Spec, kind: str) -> Any:
    """``value``, read from the JSON file ``path`` of a ``kind`` directory, as ``spec`` says (nulls of numbers as
    NaN); a :class:`ScenarioError` naming the file, the key and what was expected if it does not fit."""
    try:
        return spec.read(value, "")
    except _Misfit as exc:
        if exc.problem is None:
            raise _lacking(path, kind, exc.key) from None
        raise ScenarioError(str(path), f"{exc.key}: {exc.problem}" if exc.key else exc.problem) from None


def _cell(value: Any) -> Any:
    """A CSV cell as JSON holds it: an empty cell (NaN) as null, a whole float (of a column with empty cells) as a
    whole number, a number read as text (of a column with a cell that is not a number) as that number."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, float) and (math.isnan(value) or value.is_integer()):
        return None if math.isnan(value) else int(value)
    return value


def checked_table(path: Path, table: pd.DataFrame, columns: Object, kind: str) -> pd.DataFrame:
    """``table``, read from the CSV file ``path`` of a ``kind`` directory, with the ``columns`` it needs, each cell of
    a number column empty or as its spec says; a :class:`ScenarioError` naming the file, the column and the row if
    not."""
    for name, spec in {**columns.required, **columns.optional}.items():
        if name not in table:
            if name in columns.required:
                raise _lacking(path, kind, name)
            continue
        cells = enumerate(map(_cell, table[name].tolist()), 1) if spec.numeric else ()
        bad = next(((row, v) for row, v in cells if v is not None and not spec.test(v)), None)
        if bad is not None:
            raise ScenarioError(str(path), f"column {name}, row {bad[0]}: must be {spec.what}, got {_given(bad[1])}")
    return table
