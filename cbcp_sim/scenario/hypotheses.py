"""Named effect hypotheses of a scenario: ``[effects.<name>]`` tables of dotted-path overrides.

A published trial is judged under more than one effect: the effect it reported and the effect the pooled
evidence suggests. ``[effects.reported]`` and ``[effects.pooled]`` each list the scenario values that hold
under that hypothesis (an empty table: the file as written). ``--effect NAME`` on every command that reads
a scenario applies them before any ``--set``; :func:`cbcp_sim.scenario.load_scenario` (``effect=``) and
:meth:`cbcp_sim.scenario.Scenario.with_effect` do the same from Python.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cbcp_sim.errors import ScenarioError
from cbcp_sim.scenario.schema import DOTTED

#: An effect's name: letters, digits, ``-`` and ``_``.
NAME = re.compile(r"[A-Za-z0-9_-]+")
#: Sections an effect cannot set: they describe the planning commands, not the simulated trial.
NOT_SIMULATED = ("effects.", "assurance.", "sensitivity.")

Effects = tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]


def effects_table(value: Any, path: str) -> Effects:
    """``{name = {"dotted.path" = value, ...}, ...}`` as ``((name, ((path, value), ...)), ...)``, in file order
    (that form, as lists, is read back too: :meth:`Scenario.to_dict` writes it)."""
    if isinstance(value, list | tuple) and all(isinstance(v, list | tuple) and len(v) == 2 for v in value):
        value = {name: dict(items) for name, items in value}
    if not isinstance(value, Mapping):
        raise ScenarioError(path, f"must be a table of [{path}.<name>] tables, got {value!r}")
    out = []
    for name, table in value.items():
        where = f"{path}.{name}"
        if not NAME.fullmatch(str(name)):
            raise ScenarioError(where, "an effect's name is letters, digits, '-' and '_'")
        if not isinstance(table, Mapping):
            raise ScenarioError(where, f"must be a table of \"dotted.path\" = value, got {table!r}")
        for key in table:
            if not DOTTED.fullmatch(str(key)) or str(key).startswith(NOT_SIMULATED):
                raise ScenarioError(f"{where}.{key}", "must be a quoted dotted path of a simulated scenario value, "
                                                      "e.g. \"treatment.dose_response.emax\" = 2.0")
        out.append((str(name), tuple((str(k), v) for k, v in table.items())))
    return tuple(out)


effects_table.allowed = "table of [effects.<name>] tables of \"dotted.path\" = value"  # type: ignore[attr-defined]


def unknown(effects: Effects, name: str) -> ScenarioError:
    """The error for an effect the scenario does not name, listing those it does."""
    names = ", ".join(n for n, _ in effects) or "none"
    return ScenarioError("effect", f"the scenario has no effect {name!r}; its [effects] are: {names}")


def overrides(effects: Effects, name: str) -> tuple[tuple[str, Any], ...]:
    """The dotted-path values of effect ``name``."""
    found = dict(effects)
    if name not in found:
        raise unknown(effects, name)
    return found[name]
