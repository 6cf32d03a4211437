"""Scenario parameters declared once: default, check, unit, description and source.

Each section of a scenario is a frozen dataclass whose fields are made with :func:`param`.
Validation, the parameter tables of the docs (docs/scenarios.md) and printing all read the same declaration
(the rpact idea of one place per parameter). A check takes the raw TOML value and its
dotted path and returns the typed value, or raises :class:`~cbcp_sim.errors.ScenarioError`
naming the path and the allowed range.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from cbcp_sim.errors import ScenarioError
from cbcp_sim.vocabulary import GMFCS_LEVELS, TOPOGRAPHIES

Check = Callable[[Any, str], Any]
#: A key in TOML quotes: a basic string (with escapes) or a literal one.
_QUOTED = r"\"(?:[^\"\\\x00-\x1f]|\\.)*\"|'[^'\x00-\x1f]*'"
#: A dotted path to a scenario value (``design.n_per_arm``, ``arms.cord blood.dose``); a key may be quoted as in
#: TOML (``arms."single dose".kind``); :func:`split_path` gives its keys.
DOTTED = re.compile(rf"(?:[A-Za-z_][\w-]*|{_QUOTED})(?:\s*\.\s*(?:{_QUOTED}|[A-Za-z_][\w -]*))+")
_QUOTED_KEY = re.compile(_QUOTED)
#: A key written without quotes in a path made by :func:`join_path`.
_BARE = re.compile(r"[A-Za-z_](?:[\w -]*[\w-])?")


def value_at(raw: Mapping[str, Any], keys: Sequence[str]) -> Any:
    """The value a nested table holds under ``keys`` (None if absent)."""
    node: Any = raw
    for key in keys:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def split_path(path: str) -> tuple[str, ...]:
    """The keys of a dotted path, split as TOML splits a dotted key: at the dots outside quotes, a key in double
    quotes (escapes as in TOML) or single quotes taken whole, whitespace around a key dropped; an unquoted key
    may hold spaces (``arms.cord blood.dose`` is ``("arms", "cord blood", "dose")``, as is
    ``arms."cord blood".dose``). A malformed path (an empty key, an unclosed quote, text after a quoted key) is
    refused, naming it."""
    bad = ScenarioError(path, "must be a dotted path such as design.n_per_arm (a key with spaces or dots may be "
                              "quoted: arms.\"single dose\".kind)")
    keys, i, n = [], 0, len(path)
    while True:
        while i < n and path[i] in " \t":
            i += 1
        if i < n and path[i] in "\"'":
            match = _QUOTED_KEY.match(path, i)
            try:
                keys.append(tomllib.loads(f"k = {match.group()}")["k"])  # type: ignore[union-attr]
            except (AttributeError, tomllib.TOMLDecodeError):  # no closing quote, or a bad escape
                raise bad from None
            i = match.end()
            while i < n and path[i] in " \t":
                i += 1
            if i < n and path[i] != ".":
                raise bad
        else:
            end = path.find(".", i)
            end = n if end < 0 else end
            key = path[i:end].strip()
            if not key or any(q in key for q in "\"'"):
                raise bad
            keys.append(key)
            i = end
        if i >= n:
            return tuple(keys)
        i += 1  # the dot


def leaves(table: Mapping[str, Any], keys: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every value set in a nested table with the keys that lead to it, in the table's order: ``{"a": {"b": 1}}``
    gives ``[(("a", "b"), 1)]``."""
    out = []
    for key, value in table.items():
        out += leaves(value, (*keys, key)) if isinstance(value, Mapping) else [((*keys, key), value)]
    return out


def join_path(keys: Iterable[str]) -> str:
    """A dotted path of ``keys`` (the inverse of :func:`split_path`), a key quoted only where it must be (a dot,
    a quote, or spaces at its ends): ``arms.single dose.kind``, ``arms."v1.2".dose``."""
    return ".".join(k if _BARE.fullmatch(k) else _quoted(k) for k in keys)


def _quoted(key: str) -> str:
    """``key`` as a TOML basic string."""
    escaped = key.replace("\\", "\\\\").replace("\"", "\\\"")
    return "\"" + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}"
                         for c in escaped) + "\""


def param(default: Any, check: Check, *, unit: str = "", doc: str, source: str, shown: str | None = None) -> Any:
    """A scenario field: its default (``shown`` as such in the docs if given), how it is checked, its unit,
    meaning and source."""
    return dataclasses.field(
        default=default, metadata={"check": check, "unit": unit, "doc": doc, "source": source, "shown": shown}
    )


def section(cls: type) -> Any:
    """A nested section (a frozen dataclass) used as a field of another section."""
    return dataclasses.field(default_factory=cls, metadata={"section": cls})


def optional_section(cls: type) -> Any:
    """A nested section that is absent (None) unless the scenario gives it; absent, it is not in the scenario's
    dict, so adding one to the package changes no existing scenario's digest."""
    return dataclasses.field(default=None, metadata={"section": cls})


def table_of(cls: type, *, doc: str, source: str) -> Any:
    """A table of named sections ``[<field>.<name>]``, each a ``cls`` (e.g. one per arm); empty by default."""
    return dataclasses.field(default_factory=dict, metadata={"table": cls, "doc": doc, "source": source})


def _fmt(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:g}"


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "table"}.get(type(value), type(value).__name__)


def number(lo: float = -math.inf, hi: float = math.inf, *, lo_open: bool = False,
           hi_open: bool = False, allow_inf: bool = False) -> Check:
    """A real number in [lo, hi] (open ends as asked); ``inf`` only where ``allow_inf``, beyond a finite ``hi`` too.
    The check carries ``bounds`` ``(lo, hi)`` (so does an :func:`array` of such numbers)."""
    interval = f"{'(' if lo_open else '['}{_fmt(lo)}, {_fmt(hi)}{')' if hi_open else ']'}"
    interval += ", or inf" if allow_inf and math.isfinite(hi) else ""

    def check(value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScenarioError(path, f"must be a number in {interval}, got {_type_name(value)} {value!r}")
        try:
            x = float(value)
        except OverflowError:
            raise ScenarioError(path, f"must be in {interval}, got a number too large") from None
        bad = (math.isnan(x) or (math.isinf(x) and not allow_inf) or x < lo or (x > hi and not math.isinf(x))
               or (lo_open and x == lo) or (hi_open and x == hi))
        if bad:
            raise ScenarioError(path, f"must be in {interval}, got {value!r}")
        return x

    check.allowed = f"number in {interval}"  # type: ignore[attr-defined]
    check.bounds = (lo, hi)  # type: ignore[attr-defined]
    return check


def integer(lo: int, hi: int) -> Check:
    """A whole number in [lo, hi]."""

    def check(value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(path, f"must be a whole number in [{lo}, {hi}], got {_type_name(value)} {value!r}")
        if not lo <= value <= hi:
            raise ScenarioError(path, f"must be in [{lo}, {hi}], got {value!r}")
        return int(value)

    check.allowed = f"whole number in [{lo}, {hi}]"  # type: ignore[attr-defined]
    return check


def choice(*options: Any) -> Check:
    """One of a fixed set of values (strings compare case-insensitively)."""
    shown = ", ".join(repr(o) for o in options)

    def check(value: Any, path: str) -> Any:
        for option in options:
            same = (isinstance(option, str) and isinstance(value, str)
                    and option.lower() == value.lower())
            if same or (not isinstance(option, str) and value == option and type(value) is type(option)):
                return option
        raise ScenarioError(path, f"must be one of {shown}, got {value!r}")

    check.allowed = f"one of {shown}"  # type: ignore[attr-defined]
    return check


#: Deepest nesting of tables and arrays read from a scenario file or a value (a scenario needs about 5).
MAX_DEPTH = 32
#: Largest whole number read (TOML's own limit, a signed 64-bit integer); a larger one is refused before it is
#: ever formatted (Python will not write an integer of more than 4,300 digits).
MAX_INTEGER = 2 ** 63 - 1
#: Control characters (C0, DEL, C1, line and paragraph separators): refused in scenario strings and keys, so a
#: title, an arm name or a path can never break a line or send a terminal escape sequence.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_raw(value: Any, path: str) -> None:
    """Refuse what no check should see: tables and arrays nested deeper than :data:`MAX_DEPTH`, whole numbers
    beyond :data:`MAX_INTEGER`, and keys with control characters. Iterative, so any depth is refused, not a
    ``RecursionError``."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        node, where, depth = stack.pop()
        if isinstance(node, Mapping | list | tuple):
            if depth >= MAX_DEPTH:
                raise ScenarioError(where or "scenario", f"tables and arrays nested deeper than {MAX_DEPTH} levels")
            if isinstance(node, Mapping):
                for key, child in node.items():
                    if isinstance(key, str) and CONTROL.search(key):
                        raise ScenarioError(where or "scenario", f"key {join_path([key])} holds a control "
                                                                 "character")
                    name = join_path([str(key)])
                    stack.append((child, f"{where}.{name}" if where else name, depth + 1))
            else:
                stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(node))
        elif isinstance(node, int) and not isinstance(node, bool) and abs(node) > MAX_INTEGER:
            raise ScenarioError(where or "scenario", f"whole number out of range (at most {MAX_INTEGER} in size), "
                                                     f"got one of about {int(node.bit_length() * 0.30103) + 1} digits")


def text(value: Any, path: str) -> str:
    """Any string without control characters (newlines, tabs, escape sequences)."""
    if not isinstance(value, str):
        raise ScenarioError(path, f"must be a string, got {_type_name(value)} {value!r}")
    if CONTROL.search(value):
        raise ScenarioError(path, f"must be a string without control characters (newlines, tabs, escapes), "
                                  f"got {_quoted(value)}")
    return value


text.allowed = "string"  # type: ignore[attr-defined]


def array(item: Check, *, length: int | None = None, min_length: int = 1,
          max_length: int | None = None, increasing: bool = False) -> Check:
    """A list of items, each checked by ``item``; returned as a tuple."""
    size = (f"exactly {length}" if length is not None
            else f"{min_length} to {max_length}" if max_length is not None else f"at least {min_length}")

    def check(value: Any, path: str) -> tuple:
        if not isinstance(value, list | tuple):
            raise ScenarioError(path, f"must be an array of {size} values, got {_type_name(value)} {value!r}")
        n = len(value)
        if (length is not None and n != length) or n < min_length or (max_length is not None and n > max_length):
            raise ScenarioError(path, f"must have {size} values, got {n}")
        out = tuple(item(v, f"{path}[{i}]") for i, v in enumerate(value))
        if increasing and any(b <= a for a, b in itertools.pairwise(out)):
            raise ScenarioError(path, f"must be strictly increasing, got {list(value)!r}")
        return out

    check.allowed = f"array of {size} ({getattr(item, 'allowed', 'values')})"  # type: ignore[attr-defined]
    if hasattr(item, "bounds"):
        check.bounds = item.bounds  # type: ignore[attr-defined]
    return check


def per_gmfcs(lo: float, hi: float, **kwargs: Any) -> Check:
    """Five values, one per GMFCS level I-V."""
    return array(number(lo, hi, **kwargs), length=len(GMFCS_LEVELS))


def gmfcs_mix(value: Any, path: str) -> tuple[float, ...]:
    """Shares of GMFCS levels I-V summing to 1: a table ``{1 = 0.2, 2 = 0.3, ...}`` or five shares."""
    if isinstance(value, list | tuple):
        value = dict(zip(map(str, GMFCS_LEVELS), array(number(0.0, 1.0), length=5)(value, path), strict=True))
    if not isinstance(value, Mapping):
        raise ScenarioError(path, f"must be a table of GMFCS level (1-5) = share, got {_type_name(value)} {value!r}")
    shares = [0.0] * len(GMFCS_LEVELS)
    seen: set[str] = set()
    for key, share in value.items():
        level = str(key).strip().upper()
        level = {"I": "1", "II": "2", "III": "3", "IV": "4", "V": "5"}.get(level, level)
        if level not in {str(g) for g in GMFCS_LEVELS}:
            raise ScenarioError(path, f"keys must be GMFCS levels 1-5, got {key!r}")
        if level in seen:
            raise ScenarioError(path, f"GMFCS level {level} is given twice")
        seen.add(level)
        shares[int(level) - 1] = number(0.0, 1.0)(share, f"{path}.{key}")
    total = sum(shares)
    if abs(total - 1.0) > 1e-6:
        raise ScenarioError(path, f"shares must sum to 1, got {total:g}")
    return tuple(s / total for s in shares)


gmfcs_mix.allowed = "table of GMFCS level (1-5) = share, or 5 shares (I-V), summing to 1"  # type: ignore[attr-defined]


def topography_table(value: Any, path: str) -> tuple[tuple[float, ...], ...]:
    """Share of each topography within each GMFCS level: ``{hemiplegia = [5 shares], diplegia = [...], ...}``;
    for every level the shares sum to 1. Also three such rows in :data:`TOPOGRAPHIES` order, as returned."""
    if isinstance(value, list | tuple) and len(value) == len(TOPOGRAPHIES):
        value = dict(zip(TOPOGRAPHIES, value, strict=True))
    if not isinstance(value, Mapping):
        raise ScenarioError(path, f"must be a table of topography = 5 shares (GMFCS I-V), got {_type_name(value)}")
    unknown = sorted(set(value) - set(TOPOGRAPHIES))
    if unknown:
        raise ScenarioError(f"{path}.{unknown[0]}", f"unknown topography; allowed: {', '.join(TOPOGRAPHIES)}")
    rows = tuple(per_gmfcs(0.0, 1.0)(value.get(t, [0.0] * 5), f"{path}.{t}") for t in TOPOGRAPHIES)
    for g, total in zip(GMFCS_LEVELS, map(sum, zip(*rows, strict=True)), strict=True):
        if abs(total - 1.0) > 1e-6:
            raise ScenarioError(path, f"shares for GMFCS level {g} must sum to 1, got {total:g}")
    return rows


topography_table.allowed = (  # type: ignore[attr-defined]
    "table of hemiplegia, diplegia, quadriplegia = 5 shares (GMFCS I-V); each level's shares sum to 1")


def build(cls: type, raw: Any, path: str) -> Any:
    """Validate the raw TOML table ``raw`` into the frozen dataclass ``cls``."""
    if not isinstance(raw, Mapping):
        raise ScenarioError(path, f"must be a table, got {_type_name(raw)} {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        f = fields.get(key)
        if f is None:
            shown = key if key.isprintable() else repr(key)
            raise ScenarioError(f"{path}.{shown}" if path else shown, f"unknown key; allowed: {', '.join(fields)}")
        where = f"{path}.{key}" if path else key
        if "section" in f.metadata:
            values[key] = build(f.metadata["section"], value, where)
        elif "table" in f.metadata:
            if not isinstance(value, Mapping):
                raise ScenarioError(where, f"must be a table of name = table, got {_type_name(value)} {value!r}")
            values[key] = {str(name): build(f.metadata["table"], table, f"{where}.{name}")
                           for name, table in value.items()}
        else:
            values[key] = f.metadata["check"](value, where)
    return cls(**values)


def describe(cls: type, path: str = "") -> list[dict[str, str]]:
    """Every parameter of ``cls`` (recursively) as rows: path, default, allowed, unit, doc, source."""
    rows: list[dict[str, str]] = []
    for f in dataclasses.fields(cls):
        where = f"{path}.{f.name}" if path else f.name
        if "section" in f.metadata:
            rows += describe(f.metadata["section"], where)
            continue
        if "table" in f.metadata:
            rows += describe(f.metadata["table"], f"{where}.<name>")
            continue
        meta = f.metadata
        rows.append({
            "path": where,
            "default": meta.get("shown") or _show_default(f.default),
            "allowed": getattr(meta["check"], "allowed", ""),
            "unit": meta["unit"],
            "doc": meta["doc"],
            "source": meta["source"],
        })
    return rows


def _show_default(value: Any) -> str:
    if value is None:
        return "from preset"
    if isinstance(value, tuple):
        return "[" + ", ".join(_show_default(v) for v in value) + "]"
    if isinstance(value, float):
        return _fmt(value)
    return str(value)
