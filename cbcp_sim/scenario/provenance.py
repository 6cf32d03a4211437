"""Where each resolved value of a scenario came from: the scenario file, an override, the effect hypothesis, the
cell product's preset, or the code's default with its source.

What ``cbcp-sim params SCENARIO`` prints: every parameter with the value simulated (preset values as numbers),
its unit and meaning, and its origin, so every assumption behind a result can be checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cbcp_sim.scenario.schema import describe, value_at
from cbcp_sim.scenario.spec import Scenario

#: Placeholder of a table's entry name in a parameter's path (``arms.<name>.dose``).
NAME = "<name>"


def _covers(given: str, path: str) -> bool:
    """Whether a value given at dotted path ``given`` sets parameter ``path`` (the same, a table holding it, or an
    entry of it)."""
    return given == path or path.startswith(f"{given}.") or given.startswith(f"{path}.")


def _arm_value(s: Scenario, name: str, field: str) -> Any:
    """What arm ``name`` receives for a product field it leaves unset, as resolved in its regimen: one value, or
    one per dose where they differ; ``None`` for an arm without cells."""
    regimen = next(r for r in s.regimens if r.name == name)
    if field == "kind":
        return regimen.kind
    if not regimen.doses:
        return None
    key = field.split(".")[-1]
    per_dose = {"cells": [d.course.product for d in regimen.doses], "schedule": [d.month for d in regimen.doses],
                "dose": [d.dose for d in regimen.doses], "route": [d.route for d in regimen.doses]}.get(key)
    if per_dose is None:
        per_dose = [getattr(d.course, key, None) for d in regimen.doses]
    return per_dose[0] if field != "schedule" and len(set(map(str, per_dose))) == 1 else per_dose


def _ordered(rows: list[dict[str, str]], raw: Mapping[str, Any]) -> list[tuple[dict[str, str], str, list[str]]]:
    """Each parameter row with its concrete paths; a table's rows grouped by entry (every field of one arm, then
    the next)."""
    out: list[tuple[dict[str, str], str, list[str]]] = []
    i = 0
    while i < len(rows):
        if NAME not in rows[i]["path"]:
            out.append((rows[i], rows[i]["path"], rows[i]["path"].split(".")))
            i += 1
            continue
        head = rows[i]["path"].split(f".{NAME}")[0]
        group = []
        while i < len(rows) and rows[i]["path"].startswith(f"{head}.{NAME}"):
            group.append(rows[i])
            i += 1
        table = value_at(raw, head.split("."))
        for name in (list(table) if isinstance(table, Mapping) else []):
            for row in group:
                rest = row["path"].split(f".{NAME}", 1)[1].removeprefix(".")
                keys = [*head.split("."), name, *(rest.split(".") if rest else [])]
                out.append((row, ".".join(keys), keys))
    return out


def resolved_values(s: Scenario) -> list[dict[str, Any]]:
    """Every parameter of ``s``: ``path``, ``value`` (as simulated; ``None`` for an optional value not set),
    ``unit``, ``doc``, ``allowed``, ``origin`` (``scenario file``, ``override (--set)``, ``effect
    [effects.<name>]``, ``preset <cells>``, ``treatment section`` for an arm's product value it leaves to the
    treatment, or ``default``) and ``source`` (the citation of the default or preset)."""
    raw = s.to_dict()
    o = s.origin
    rows = []
    for row, path, keys in _ordered(describe(Scenario), raw):
        value = value_at(raw, keys)
        if path == "effects":
            value = {name: dict(items) for name, items in s.effects}
        elif path == "sensitivity.ranges":
            value = {p: [low, high] for p, low, high in s.sensitivity.ranges}
        if any(_covers(given, path) for given, _ in o.overrides):
            origin = "override (--set)"
        elif any(_covers(given, path) for given, _ in o.effect_values):
            origin = f"effect [effects.{o.effect}]"
        elif any(_covers(given, path) for given in o.file_paths):
            origin = "scenario file"
        elif keys[0] == "arms" and value is None:
            value = _arm_value(s, keys[1], ".".join(keys[2:]))
            origin = "treatment section" if keys[2] not in ("kind", "schedule", "dose") else "default"
        elif row["default"] == "from preset" and value is not None:
            origin = f"preset {s.treatment.cells}"
        else:
            origin = "default"
        rows.append({"path": path, "value": value, "unit": row["unit"], "doc": row["doc"],
                     "allowed": row["allowed"], "origin": origin, "source": row["source"]})
    return rows
