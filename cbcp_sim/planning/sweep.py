"""Sweeps: a scenario run at many points (values of any keys by dotted path), with common random numbers.

A point is a set of dotted-path overrides of a base scenario (``design.n_per_arm = 40``,
``treatment.waning_half_life_months = 6``). Points come from ``--grid`` axes (their full product) and/or a
CSV file of points (one column per path). Every point is run with the same seed, so the k-th child of each
arm gets the same random numbers at every point (see :mod:`cbcp_sim.models.streams`): curves over a grid are
smooth and differences between points are paired. The result is a tidy table, one row per point ×
analysis (× comparison), written to ``results.csv`` (and Parquet when asked) in a directory that also
holds each finished chunk, so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cbcp_sim.errors import ScenarioError
from cbcp_sim.planning.points import point_scenarios
from cbcp_sim.run.engine import point_tasks, run_points
from cbcp_sim.run.result import SimulationResult, scenario_comparison
from cbcp_sim.run.settings import RunSettings
from cbcp_sim.run.store import Store
from cbcp_sim.scenario import Scenario, parse_value
from cbcp_sim.scenario.schema import DOTTED, MAX_INTEGER

if TYPE_CHECKING:
    import pandas as pd

#: Most points in one sweep.
MAX_POINTS = 100_000
#: Group-sequential operating characteristics added to each row of a sweep of a design with interim looks.
SEQUENTIAL_COLUMNS = ("power", "mcse", "type1_error", "expected_children", "expected_information_n",
                      "expected_months")
#: The ``bayes_*`` columns of a sweep whose scenario has a ``[bayes]`` section (:attr:`SimulationResult.bayes`).
BAYES_COLUMNS = ("p_go", "p_go_mcse", "p_nogo", "p_gray", "p_go_null", "p_go_null_mcse", "posterior_mean_bias",
                 "posterior_rmse", "coverage", "conflict_rate", "borrowed_controls", "prior_ess")
#: The ``dose_response_*`` columns of a sweep whose scenario runs MCP-Mod (``analysis.dose_response_models``;
#: :attr:`SimulationResult.dose_response`).
DOSE_RESPONSE_COLUMNS = ("power", "power_mcse", "type1", "type1_mcse", "td_mean", "td_bias", "td_rmse",
                         "td_within_25", "td_coverage", "ed50_mean", "ed50_bias", "ed50_rmse", "ed50_within_25",
                         "ed50_coverage")


@dataclass(frozen=True)
class Axis:
    """One ``--grid`` axis: a dotted path and its values, in order."""

    path: str
    values: tuple[Any, ...]


def _split_top(text: str) -> list[str]:
    """``text`` split at commas outside brackets and quotes (``[20, 40],[30, 60]`` is two values)."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def _number(text: str, source: str, spec: str) -> int | float:
    value = parse_value(text.strip())
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or (abs(value) > MAX_INTEGER if isinstance(value, int) else not math.isfinite(value))):
        raise ScenarioError(source, f"{spec}: start, stop and step must be finite numbers, got {text.strip()!r}")
    return value


def parse_axis(text: str, source: str = "grid") -> Axis:
    """An axis from ``path=start:stop:step`` (stop included; ``start:stop`` steps by 1) or ``path=v1,v2,...``
    (each a TOML value: ``20``, ``6.5``, ``"UCB-durable"``, ``[20, 40]``)."""
    path, sep, spec = text.partition("=")
    path, spec = path.strip(), spec.strip()
    if not sep or not path or not spec:
        raise ScenarioError(source, f"expected path=start:stop:step or path=v1,v2,..., got {text!r}")
    if not DOTTED.fullmatch(path):
        raise ScenarioError(source, f"{path!r} is not a dotted path such as design.n_per_arm")
    if ":" in spec and not spec.startswith(("[", '"', "'")):
        pieces = spec.split(":")
        if len(pieces) not in (2, 3):
            raise ScenarioError(source, f"{path}: a range is start:stop or start:stop:step, got {spec!r}")
        start, stop, step = (*(_number(p, source, path) for p in pieces), 1)[:3]
        if step <= 0 or stop < start:
            raise ScenarioError(source, f"{path}: a range needs step > 0 and stop >= start, got {spec!r}")
        if step < sys.float_info.min:  # subnormal: (stop - start) / step overflows or loses all precision
            raise ScenarioError(source, f"{path}: a range needs a step of at least {sys.float_info.min:g}, got "
                                        f"{spec!r}")
        try:
            ratio = (stop - start) / step
        except OverflowError:
            ratio = math.inf
        if not ratio < MAX_POINTS:  # counted before any value is made (inf and NaN too)
            raise ScenarioError(source, f"{path}: {spec!r} gives more than {MAX_POINTS} values; at most "
                                        f"{MAX_POINTS} points in a sweep")
        count = math.floor(ratio + 1e-9) + 1
        if count > MAX_POINTS:
            raise ScenarioError(source, f"{path}: {count} values; at most {MAX_POINTS} points in a sweep")
        whole = all(isinstance(v, int) for v in (start, stop, step))
        values = tuple(start + k * step if whole else round(start + k * step, 12) for k in range(count))
    else:
        pieces = _split_top(spec)
        if any(not p.strip() for p in pieces):
            raise ScenarioError(source, f"{path}: an empty value in {spec!r}")
        values = tuple(parse_value(p.strip()) for p in pieces)
    return Axis(path, values)


def read_points(path: str | Path, source: str = "points") -> list[dict[str, Any]]:
    """Points from a CSV file: a header of dotted paths, then one point per row (TOML values)."""
    try:
        with Path(path).open(newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, ValueError, csv.Error) as exc:  # ValueError: not UTF-8, or a NUL in the name
        raise ScenarioError(source, f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if len(rows) < 2 or not all(h.strip() for h in rows[0]):
        raise ScenarioError(source, f"{path}: expected a header of dotted paths and at least one row of values")
    header = [h.strip() for h in rows[0]]
    if len(set(header)) < len(header):
        raise ScenarioError(source, f"{path}: a column is given twice in {header}")
    points = []
    for i, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise ScenarioError(source, f"{path} line {i}: {len(row)} values for {len(header)} columns")
        points.append({h: parse_value(v.strip()) for h, v in zip(header, row, strict=True)})
    return points


def grid_points(axes: Sequence[Axis], points: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """Every listed point (or one empty point) combined with every combination of the axes' values; the last
    axis varies fastest."""
    paths = [a.path for a in axes] + [p for p in (points[0] if points else {})]
    repeated = sorted({p for p in paths if paths.count(p) > 1})
    if repeated:
        raise ScenarioError("grid", f"{repeated[0]} is given more than once")
    count = math.prod(len(a.values) for a in axes) * max(len(points), 1)
    if count > MAX_POINTS:
        raise ScenarioError("grid", f"{count} points; at most {MAX_POINTS} in a sweep")
    combos = list(itertools.product(*(a.values for a in axes)))
    return [{**base, **dict(zip([a.path for a in axes], combo, strict=True))}
            for base in (points or [{}]) for combo in combos]


@dataclass(frozen=True)
class Sweep:
    """The runs of a sweep, one per point, in point order."""

    scenario: Scenario
    points: tuple[dict[str, Any], ...]
    results: tuple[SimulationResult, ...]
    reps: int
    seed: int

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(self.points[0]) if self.points else ()

    @property
    def table(self) -> pd.DataFrame:
        """One row per point × analysis (× comparison): ``point``, the point's values, then the summary of
        :func:`cbcp_sim.analysis.metrics.operating_characteristics`; with interim looks also ``sequential_*``
        columns, with a ``[bayes]`` section ``bayes_*`` columns (:data:`BAYES_COLUMNS`; the same on every
        analysis's row of a point: they decide on the primary analysis), with MCP-Mod ``dose_response_*`` columns
        (:data:`DOSE_RESPONSE_COLUMNS`, likewise). A path with a list value at any point is
        a column of JSON text (one type per column, as Parquet needs)."""
        import pandas as pd

        structured = {k for point in self.points for k, v in point.items() if isinstance(v, list | tuple | dict)}
        rows = []
        for i, (point, result) in enumerate(zip(self.points, self.results, strict=True)):
            values = {"point": i, **{k: json.dumps(v) if k in structured else v for k, v in point.items()}}
            extra = ({f"sequential_{k}": result.sequential[k] for k in SEQUENTIAL_COLUMNS}
                     if result.sequential is not None else {})
            if result.bayes is not None:
                extra.update({f"bayes_{k}": result.bayes[k] for k in BAYES_COLUMNS})
            if result.dose_response is not None:
                extra.update({f"dose_response_{k}": result.dose_response[k] for k in DOSE_RESPONSE_COLUMNS})
            rows += [{**values, **row, **extra} for row in result.rows]
        return pd.DataFrame(rows)

    def power_rows(self, comparison: str | None = None) -> pd.DataFrame:
        """The rows of :attr:`table` that a power curve shows: the primary analysis's rows of ``comparison``
        (a label such as ``"two doses vs sham"``, checked against the base scenario's comparisons: an unknown
        one is refused with the labels listed); None: the primary rows of every arm comparison
        (``role == "primary"``)."""
        table = self.table
        if comparison is None:
            return table[table["role"] == "primary"]
        label = scenario_comparison(self.scenario, comparison, monitored=False)
        return table[(table["analysis"] == self.scenario.analyses[0]) & (table["comparison"] == label)]


def sweep(base: Scenario, points: Sequence[dict[str, Any]], settings: RunSettings | None = None, *,
          out: str | Path, parquet: bool = False, source: str = "points") -> Sweep:
    """Run ``base`` at every point (``{dotted path: value}``, e.g. from :func:`grid_points`) with
    ``settings.reps`` trials each and the same seed, saving every finished chunk in directory ``out`` and the
    table in ``out/results.csv`` (and ``out/results.parquet``).

    Run again with the same arguments, it reads the chunks already saved and runs only the rest; with
    another scenario, points, reps or seed it refuses the directory. A refused point is blamed on ``source``
    (``"grid"`` when the points are a grid's).
    """
    settings = settings or RunSettings()
    if not points:
        raise ScenarioError("points", "a sweep needs at least one point (a grid axis or a row of points)")
    scenarios = point_scenarios(base, points, source)
    if parquet:
        _need_pyarrow()
    store = Store(out, "sweep", {"scenario": base.to_dict(), "points": [dict(p) for p in points],
                                 "reps": settings.reps, "seed": settings.seed, "chunk_size": settings.chunk_size})
    store.log(event="start", jobs=settings.jobs, backend=settings.backend, address=settings.address,
              resumed=store.resumed)
    results = run_points([point_tasks(s, settings) for s in scenarios], settings, store=store, label="sweep")
    result = Sweep(base, tuple(dict(p) for p in points), tuple(results), settings.reps, settings.seed)
    table = result.table
    store.write("scenario.toml", base.to_toml())
    store.write_table("results.csv", table)
    if parquet:
        store.write_table("results.parquet", table)
    store.log(event="finish", points=len(points))
    return result


def _need_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ScenarioError("parquet", "needs pyarrow: pip install 'cbcp_sim[parquet]'") from None
