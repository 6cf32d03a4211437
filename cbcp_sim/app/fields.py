"""The app's inputs, taken from the parameter declarations: which dotted paths each part of the Scenario screen
edits, and for each its value as simulated, unit, allowed values, meaning and cited source (from
:func:`cbcp_sim.scenario.provenance.resolved_values`, never restated here).

A field holds a value as ``--set`` reads it (an inline TOML value such as ``40``, ``[0, 6, 12]`` or ``"UCB-MNC"``,
or a bare word); a field whose text differs from the base scenario's value becomes a ``--set`` override, and the
scenario is read again with every override by :func:`cbcp_sim.scenario.load_scenario`, the CLI's own loader, so
an invalid value gives the CLI's one-line message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cbcp_sim.errors import InputError, printable
from cbcp_sim.scenario import Scenario, load_scenario, parse_value
from cbcp_sim.scenario.provenance import NAME, resolved_values
from cbcp_sim.scenario.schema import describe
from cbcp_sim.scenario.spec import inline_toml

#: The parts of the Scenario screen and the dotted paths each edits, in order; the design's part also gets each arm's
#: regimen (:data:`ARM_KEYS`).
GROUPS: dict[str, tuple[str, ...]] = {
    "Design": ("design.arms", "design.n_per_arm", "design.visits", "design.primary_visit", "design.alpha",
               "design.sides"),
    "Population": ("population.source", "population.ages", "population.gmfcs_mix", "eligibility.gmfcs",
                   "eligibility.ages", "population.allogeneic_dose"),
    "Effect assumptions": ("treatment.cells", "treatment.dose_response.model", "treatment.dose_response.emax",
                           "treatment.dose_response.ed50", "treatment.dose_response.hill",
                           "treatment.onset_months", "treatment.peak_months", "treatment.waning_half_life_months",
                           "treatment.persistent_fraction"),
    "Dropout": ("dropout.mechanism", "dropout.fraction", "dropout.by_month"),
}
#: An arm's regimen: what it receives, the cells, the dose, when, by which route.
ARM_KEYS = ("kind", "cells", "dose", "schedule", "route")
#: Longest text a field takes (a value, not a file).
MAX_TEXT = 2000


@dataclass(frozen=True)
class Field:
    """One input: the dotted path it sets, its value as simulated in the base scenario (as text), and the
    declaration's unit, allowed values, meaning, cited source and where the value came from."""

    path: str
    text: str
    unit: str
    allowed: str
    doc: str
    source: str
    origin: str

    @property
    def id(self) -> str:
        return field_id(self.path)


def field_id(path: str) -> str:
    """The input id of the field of ``path``, made of the path's hash: safe as an HTML id whatever an arm is
    called."""
    return "f_" + hashlib.sha1(path.encode()).hexdigest()[:12]


def value_text(value: Any) -> str:
    """A resolved value as a field shows it: the inline TOML ``--set`` reads, empty when not set."""
    return "" if value is None else inline_toml(value)


def fields(base: Scenario) -> dict[str, list[Field]]:
    """The fields of each part of the Scenario screen for ``base``, with its values as simulated; the design's part
    ends with each arm's regimen (:data:`ARM_KEYS`), set or not (``--set arms.<name>.dose=5`` adds the arm's table)."""
    rows = {r["path"]: r for r in resolved_values(base)}
    declared = {r["path"]: r for r in describe(Scenario)}
    arm_paths = tuple(f"arms.{arm}.{key}" for arm in base.design.arms for key in ARM_KEYS)
    groups = {**GROUPS, "Design": (*GROUPS["Design"], *arm_paths)}
    out: dict[str, list[Field]] = {}
    for group, paths in groups.items():
        out[group] = []
        for path in paths:
            row = rows.get(path)
            if row is None:  # an arm without an [arms] table entry: the declaration, no value set
                row = {**declared[f"arms.{NAME}.{path.rsplit('.', 1)[1]}"], "value": None, "origin": "not set"}
            out[group].append(Field(path, value_text(row["value"]), row["unit"], row["allowed"], row["doc"],
                                    row["source"], row["origin"]))
    return out


def overrides(all_fields: Mapping[str, list[Field]], texts: Mapping[str, str]) -> list[tuple[str, Any]]:
    """The ``--set`` overrides the page asks for: each field (by id in ``texts``) whose text differs from the base
    value, parsed as ``--set`` parses it (:func:`cbcp_sim.scenario.parse_value`). Text is never evaluated as code."""
    out: list[tuple[str, Any]] = []
    for group in all_fields.values():
        for f in group:
            given = texts.get(f.id)
            if given is None:
                continue
            given = given.strip()
            if given == f.text or (not given and not f.text):
                continue
            if len(given) > MAX_TEXT:
                raise InputError(f.path, f"a value of at most {MAX_TEXT} characters, got {len(given)}")
            out.append((f.path, parse_value(given)))
    return out


@dataclass(frozen=True)
class Built:
    """The scenario the page describes, or the CLI's one-line message and the path it names."""

    scenario: Scenario | None
    overrides: tuple[tuple[str, Any], ...]
    error: str = ""
    error_path: str = ""


def build(path: Path, effect: str | None, all_fields: Mapping[str, list[Field]], texts: Mapping[str, str]) -> Built:
    """The scenario file ``path`` under ``effect`` with the page's overrides, read by the CLI's loader; a refused
    value gives ``error: <path>: <what is allowed>`` as the CLI prints it."""
    items: tuple[tuple[str, Any], ...] = ()
    try:
        items = tuple(overrides(all_fields, texts))
        return Built(load_scenario(path, items, effect), items)
    except InputError as exc:
        return Built(None, items, f"error: {printable(str(exc))}", exc.path)


def notes(scenario: Scenario, all_fields: Mapping[str, list[Field]],
          items: tuple[tuple[str, Any], ...]) -> dict[str, str]:
    """For each field the page left as it was but whose value ``scenario`` simulates differently (a cell preset's
    value after ``treatment.cells`` changed, an effect hypothesis's value), by field id: the value now simulated and
    where it comes from."""
    rows = {r["path"]: r for r in resolved_values(scenario)}
    given = {path for path, _ in items}
    out = {}
    for group in all_fields.values():
        for f in group:
            row = rows.get(f.path)
            if row is None or f.path in given:
                continue
            now = value_text(row["value"])
            if now != f.text:
                out[f.id] = f"simulated now: {now} ({row['origin']})"
    return out


def field_of(error_path: str, all_fields: Mapping[str, list[Field]]) -> Field | None:
    """The field an error names: the same path, a table or array entry under it, or the effect that set it."""
    for group in all_fields.values():
        for f in group:
            if error_path == f.path or error_path.startswith((f"{f.path}.", f"{f.path}[")):
                return f
    return None
