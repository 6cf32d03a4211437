"""What a scenario says about uncertain values: prior distributions for assurance, ranges for sensitivity.

``[assurance.priors."<dotted path>"]`` gives a prior of any scenario value (the effect, the waning
half-life, the dose-response): normal, log-normal, uniform (each optionally truncated to ``lower`` /
``upper``), a point mass, or draws read from a CSV file. ``[sensitivity.ranges]`` gives a low and a high
value per dotted path for one-at-a-time and Latin-hypercube sensitivity analyses.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cbcp_sim.errors import ScenarioError
from cbcp_sim.scenario.schema import DOTTED, choice, integer, number, param, split_path, table_of, text, value_at

DISTRIBUTIONS = ("normal", "lognormal", "uniform", "point", "file")
#: The parameters each distribution needs (``lower``/``upper`` are optional for normal and lognormal).
NEEDS = {"normal": ("mean", "sd"), "lognormal": ("meanlog", "sdlog"), "uniform": ("low", "high"),
         "point": ("value",), "file": ("file",)}
OPTIONAL = {"normal": ("lower", "upper"), "lognormal": ("lower", "upper"), "file": ("column",)}
SOURCE = "[O'Hagan 2005] (assurance); design"


def _given(check: Any, doc: str) -> Any:
    """A prior's parameter: absent unless its distribution uses it."""
    return param(None, check, doc=doc, source="user", shown="none")


@dataclass(frozen=True)
class Prior:
    """The prior distribution of one scenario value, keyed by its dotted path."""

    distribution: str = param("normal", choice(*DISTRIBUTIONS),
                              doc="normal (mean, sd), lognormal (meanlog, sdlog: of the log), uniform (low, high), "
                                  "point (value) or file (draws in a CSV column).", source=SOURCE)
    mean: float | None = _given(number(-1e6, 1e6), "normal: mean.")
    sd: float | None = _given(number(0.0, 1e6, lo_open=True), "normal: standard deviation.")
    meanlog: float | None = _given(number(-100.0, 100.0), "lognormal: mean of the log.")
    sdlog: float | None = _given(number(0.0, 100.0, lo_open=True), "lognormal: SD of the log.")
    low: float | None = _given(number(-1e6, 1e6), "uniform: lower end.")
    high: float | None = _given(number(-1e6, 1e6), "uniform: upper end.")
    value: float | None = _given(number(-1e6, 1e6), "point: the value (all prior mass).")
    lower: float | None = _given(number(-1e6, 1e6), "normal, lognormal: truncate below (e.g. 0 for an effect that "
                                                    "cannot harm).")
    upper: float | None = _given(number(-1e6, 1e6), "normal, lognormal: truncate above.")
    file: str | None = _given(text, "file: CSV of prior draws (e.g. posterior samples), relative to the working "
                                    "directory; draws are resampled with replacement.")
    column: str | None = _given(text, "file: the column of the draws (default: the dotted path).")

    def parameters(self) -> dict[str, Any]:
        """The values this prior's distribution uses, by name."""
        return {k: getattr(self, k) for k in ("distribution", *NEEDS[self.distribution],
                                              *OPTIONAL.get(self.distribution, ())) if getattr(self, k) is not None}


@dataclass(frozen=True)
class Assurance:
    """Assurance (probability of success): power averaged over priors of uncertain values."""

    draws: int = param(200, integer(1, 100_000), doc="Draws from the priors; each is one scenario.",
                       source="ASSUMPTION: 200 draws give the prior's spread of power; MCSE is reported")
    reps_per_draw: int = param(100, integer(1, 10_000), unit="trials",
                               doc="Simulated trials per draw (fewer trials over more draws estimate assurance "
                                   "best for the same work).",
                               source="ASSUMPTION; see docs/planning.md (variance of the estimate)")
    priors: dict[str, Prior] = table_of(Prior, doc="Prior of each uncertain value, by dotted path.", source=SOURCE)


def _ranges(value: Any, path: str) -> tuple[tuple[str, float, float], ...]:
    """``{"dotted.path" = [low, high], ...}`` (or a list of ``[path, low, high]``) as ``((path, low, high), ...)``."""
    if isinstance(value, list | tuple) and all(isinstance(v, list | tuple) and len(v) == 3 for v in value):
        value = {v[0]: v[1:] for v in value}
    if not isinstance(value, Mapping):
        raise ScenarioError(path, f"must be a table of \"dotted.path\" = [low, high], got {value!r}")
    out = []
    for key, pair in value.items():
        where = f"{path}.{key}"
        if not DOTTED.fullmatch(str(key)):
            raise ScenarioError(where, "must be a dotted path such as treatment.waning_half_life_months")
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ScenarioError(where, f"must be [low, high], got {pair!r}")
        low, high = (number(-1e6, 1e6)(v, where) for v in pair)
        if not low < high:
            raise ScenarioError(where, f"must be [low, high] with low < high, got {list(pair)!r}")
        out.append((str(key), low, high))
    return tuple(out)


_ranges.allowed = "table of \"dotted.path\" = [low, high]"  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Sensitivity:
    """Which assumptions move power most: one at a time (tornado) and over a Latin hypercube (PRCC)."""

    ranges: tuple[tuple[str, float, float], ...] = param(
        (), _ranges, doc="Low and high value of each assumption examined, by dotted path.", source="user",
        shown="none")
    samples: int = param(
        50, integer(0, 100_000), doc="Latin-hypercube points of the global analysis (0: one at a time only).",
        source="[McKay 1979] (Latin hypercube); [Marino 2008] (PRCC)")
    reps: int = param(2000, integer(1, 1_000_000), unit="trials", doc="Simulated trials per point.",
                      source="ASSUMPTION: MCSE of power at most 0.011; common random numbers pair the points")


def check_priors(a: Assurance) -> None:
    """Each prior names a dotted path and gives exactly what its distribution needs."""
    for path, p in a.priors.items():
        where = f"assurance.priors.{path}"
        if not DOTTED.fullmatch(path):
            raise ScenarioError(where, "the prior's key must be a dotted path such as treatment.dose_response.emax")
        given = {k for k in ("mean", "sd", "meanlog", "sdlog", "low", "high", "value", "lower", "upper", "file",
                             "column") if getattr(p, k) is not None}
        needs, optional = set(NEEDS[p.distribution]), set(OPTIONAL.get(p.distribution, ()))
        if needs - given:
            raise ScenarioError(where, f"a {p.distribution} prior needs {', '.join(sorted(needs - given))}")
        if given - needs - optional:
            raise ScenarioError(f"{where}.{sorted(given - needs - optional)[0]}",
                                f"is not used by a {p.distribution} prior (it takes {', '.join(NEEDS[p.distribution])}"
                                + (f"; optionally {', '.join(OPTIONAL[p.distribution])}" if optional else "") + ")")
        if p.distribution == "uniform" and not p.low < p.high:
            raise ScenarioError(where, f"a uniform prior needs low < high, got {p.low:g} and {p.high:g}")
        lower = -math.inf if p.lower is None else p.lower
        upper = math.inf if p.upper is None else p.upper
        if not lower < upper or (p.distribution == "lognormal" and upper <= 0.0):
            raise ScenarioError(where, f"truncation to [{lower:g}, {upper:g}] leaves no mass")


def draw(path: str, p: Prior, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws of prior ``p`` of ``path``, by inversion of one uniform per draw (so a truncated prior
    costs no rejections and the draws of every prior read the stream the same way)."""
    u = rng.random(n)
    if p.distribution == "point":
        return np.full(n, float(p.value))
    if p.distribution == "uniform":
        return p.low + (p.high - p.low) * u
    if p.distribution == "file":
        column = p.column or path
        values = read_draws(p.file, column, f"assurance.priors.{path}.file")
        return values[np.minimum((u * values.size).astype(int), values.size - 1)]
    from scipy import stats  # not at import: every command imports the scenario schema

    dist = stats.norm(p.mean, p.sd) if p.distribution == "normal" else stats.lognorm(p.sdlog, scale=math.exp(p.meanlog))
    lo = dist.cdf(-np.inf if p.lower is None else p.lower)
    hi = dist.cdf(np.inf if p.upper is None else p.upper)
    if not hi > lo:
        raise ScenarioError(f"assurance.priors.{path}", "truncation to [lower, upper] leaves no prior mass")
    return dist.ppf(lo + (hi - lo) * u)


def read_draws(file: str | Path, column: str, where: str) -> np.ndarray:
    """The finite numbers of ``column`` in a CSV file of prior draws."""
    try:
        with Path(file).open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(where, f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
    if not rows or column not in rows[0]:
        raise ScenarioError(where, f"{file} has no column {column!r}")
    try:
        values = np.array([float(r[column]) for r in rows])
    except (TypeError, ValueError):
        raise ScenarioError(where, f"{file}: column {column!r} must hold numbers only") from None
    if not np.isfinite(values).all():
        raise ScenarioError(where, f"{file}: column {column!r} must hold finite numbers")
    return values


def typed_value(raw: Mapping[str, Any], path: str, value: float) -> Any:
    """``value`` as the scenario key at ``path`` holds it: rounded to a whole number where the key's current
    value in ``raw`` (a scenario's :meth:`~cbcp_sim.scenario.Scenario.to_dict`) is whole (children per arm,
    block size), else a float."""
    node = lookup(raw, path)
    whole = (isinstance(node, int) and not isinstance(node, bool)) or (
        isinstance(node, list) and node and all(isinstance(v, int) and not isinstance(v, bool) for v in node))
    return round(value) if whole else float(value)


def lookup(raw: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of a nested dict (None if absent), its keys split as TOML splits them."""
    return value_at(raw, split_path(path))


def parse_prior(text: str, source: str = "assurance.priors") -> tuple[str, dict[str, Any]]:
    """``path=normal(3, 1.5)`` (or ``lognormal(meanlog, sdlog)``, ``uniform(low, high)``, ``point(value)``,
    ``file(draws.csv[, column])``; ``lower=``/``upper=`` may follow) as ``(path, prior table)``; an error names
    ``source``, the parameter that gave the text."""
    path, sep, spec = text.partition("=")
    match = re.fullmatch(r"\s*(\w+)\s*\((.*)\)\s*", spec)
    usage = "expected path=distribution(parameters), e.g. outcome.effect=normal(3, 1.5)"
    if not sep or not DOTTED.fullmatch(path.strip()) or not match:
        raise ScenarioError(source, f"{usage}; got {text!r}")
    name, args = match.group(1).lower(), [a.strip() for a in match.group(2).split(",") if a.strip()]
    if name not in NEEDS:
        raise ScenarioError(source, f"{path.strip()}: unknown distribution {name!r}; allowed: {', '.join(NEEDS)}")
    table: dict[str, Any] = {"distribution": name}
    positional = [a for a in args if "=" not in a]
    names = [*NEEDS[name], *OPTIONAL.get(name, ())]
    if len(positional) > len(names):
        raise ScenarioError(source, f"{path.strip()}: {name} takes {', '.join(names)}; got {len(positional)} values")
    pairs = list(zip(names, positional, strict=False)) + [tuple(a.split("=", 1)) for a in args if "=" in a]
    for key, value in pairs:
        key = key.strip()
        if key in table:
            raise ScenarioError(source, f"{path.strip()}: {key} is given twice")
        if key in ("file", "column"):
            table[key] = value.strip().strip("\"'")
            continue
        try:
            table[key] = float(value)
        except ValueError:
            raise ScenarioError(source, f"{path.strip()}: {key} must be a number, got {value.strip()!r}") from None
    return path.strip(), table
