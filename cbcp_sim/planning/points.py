"""The points of a plan: a base scenario with some values replaced, each point validated before anything runs."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from cbcp_sim.errors import ScenarioError
from cbcp_sim.scenario import Scenario


def shown(value: Any) -> Any:
    """A point's value in a message: lists and tables as JSON text."""
    return json.dumps(value) if isinstance(value, list | tuple | dict) else value


def point_scenarios(base: Scenario, points: Sequence[dict[str, Any]], source: str, *, label: str = "point",
                    per_path: bool = False, advice: Callable[[str], str] | None = None) -> list[Scenario]:
    """The scenario of every point (``{dotted path: value}``), all validated before anything runs.

    A refused point is blamed on ``source``, the parameter that gave the points. With ``per_path`` (``source``
    is a table by path, such as ``assurance.priors``) a refused value is blamed on ``source.<path>`` of the
    value, and ``advice(path)`` says what to change; a rule spanning several values is blamed on ``source``.
    """
    out = []
    for k, point in enumerate(points):
        try:
            out.append(base.replace(point))
        except ScenarioError as exc:
            path = next((p for p in point if exc.path == p or exc.path.startswith(f"{p}.")), None)
            where = f"{label} {k} ({', '.join(f'{p}={shown(v)}' for p, v in point.items())})"
            if not per_path or path is None:
                raise ScenarioError(source, f"{where} is refused: {exc}") from None
            hint = f"; {advice(path)}" if advice is not None else ""
            raise ScenarioError(f"{source}.{path}", f"{label} {k} gives {shown(point[path])}, which the scenario "
                                                    f"refuses ({exc.message}){hint}") from None
    return out
