"""Scenario: a trial design plus assumptions about children and cells, validated and frozen.

A scenario is read from TOML (:func:`load_scenario`) or built from a dict (:func:`scenario_from_dict`).
Every omitted value takes the default its section declares, each with its source (the sections in
:mod:`cbcp_sim.scenario.sections`, the treatment and arms in :mod:`cbcp_sim.scenario.products`, assurance and
sensitivity in :mod:`cbcp_sim.scenario.priors`). Here: the :class:`Scenario` itself, the rules that span fields
and sections, and the loading. Overrides use dotted paths (``design.n_per_arm=40``), exactly as the CLI's
``--set``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import itertools
import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cbcp_sim.errors import ScenarioError
from cbcp_sim.scenario import hypotheses, mvn, products
from cbcp_sim.scenario.bayes import Bayes
from cbcp_sim.scenario.priors import Assurance, Sensitivity, check_priors
from cbcp_sim.scenario.products import Arm, Treatment
from cbcp_sim.scenario.schema import (
    MAX_DEPTH,
    MAX_INTEGER,
    build,
    check_raw,
    describe,
    join_path,
    leaves,
    optional_section,
    param,
    section,
    split_path,
    table_of,
    text,
)
from cbcp_sim.scenario.sections import (
    MAX_LIMIT_LOGIT_SD,
    Analysis,
    Design,
    Dropout,
    Eligibility,
    NaturalHistory,
    Operations,
    Outcome,
    Population,
    Sequential,
)
from cbcp_sim.vocabulary import (
    CROSSOVER_ANALYSES,
    DAYS_PER_MONTH,
    DELTA_ADJUSTED_ANALYSES,
    PARALLEL_ANALYSES,
    SINGLE_ARM_ANALYSES,
    T_ANALYSES,
)

if TYPE_CHECKING:
    from cbcp_sim.scenario.boundaries import Boundaries

#: The analyses the classical Dunnett test takes (``cbcp_sim.analysis.ARM_MODELS``): one model of every arm.
ONE_MODEL_ANALYSES = ("ttest", "ancova")


@dataclass(frozen=True)
class Origin:
    """Where a scenario's values came from: the file read, the effect hypothesis applied (``[effects.<name>]``,
    with its values) and the dotted-path overrides given after it (``--set``, :meth:`Scenario.replace`), in order.
    """

    file: str | None = None
    file_paths: tuple[str, ...] = ()  #: the dotted paths the file sets
    effect: str | None = None
    effect_values: tuple[tuple[str, Any], ...] = ()
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def changes(self) -> tuple[tuple[str, Any], ...]:
        """Every value set after the file was read: the effect's, then the overrides (a later value wins)."""
        return (*self.effect_values, *self.overrides)

    def describe(self) -> str:
        """One line of what was changed, e.g. ``effect [effects.pooled]: treatment.dose_response.emax = 4.4;
        set design.n_per_arm = 60``; empty when nothing was."""
        parts = []
        if self.effect is not None:
            values = ", ".join(f"{p} = {inline_toml(v)}" for p, v in self.effect_values) or "the file as written"
            parts.append(f"effect [effects.{self.effect}]: {values}")
        if self.overrides:
            parts.append("set " + ", ".join(f"{p} = {inline_toml(v)}" for p, v in self.overrides))
        return "; ".join(parts)


def inline_toml(value: Any) -> str:
    """A value as an inline TOML value, on one line (strings quoted, lists bracketed, tables braced), as ``--set``,
    ``--grid`` and a points file read it."""
    import tomli_w

    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {inline_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(inline_toml(v) for v in value) + "]"
    return tomli_w.dumps({"v": value}).removeprefix("v = ").strip()


def _toml_key(key: str) -> str:
    """A table key as TOML writes it: bare if it can be, else quoted."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else inline_toml(key)


@dataclass(frozen=True)
class Scenario:
    """A validated, frozen scenario. Build it with :func:`load_scenario` or :func:`scenario_from_dict`."""

    title: str = param("Untitled scenario", text, doc="One line saying what the trial is.", source="user")
    population: Population = section(Population)
    eligibility: Eligibility = section(Eligibility)
    natural_history: NaturalHistory = section(NaturalHistory)
    treatment: Treatment = section(Treatment)
    design: Design = section(Design)
    arms: dict[str, Arm] = table_of(
        Arm, doc="What each arm of design.arms receives, by arm name.", source="protocol")
    dropout: Dropout = section(Dropout)
    analysis: Analysis = section(Analysis)
    outcome: Outcome = section(Outcome)
    operations: Operations = section(Operations)
    sequential: Sequential = section(Sequential)
    bayes: Bayes | None = optional_section(Bayes)
    assurance: Assurance = section(Assurance)
    sensitivity: Sensitivity = section(Sensitivity)
    effects: hypotheses.Effects = param(
        (), hypotheses.effects_table,
        doc="Named effect hypotheses, each a table of dotted-path values that hold under it (e.g. [effects.reported] "
            "and [effects.pooled]; an empty table is the file as written); --effect NAME applies one.",
        source="design (a trial judged under the effect it reported and the effect pooled evidence suggests)",
        shown="none")

    @property
    def analyses(self) -> tuple[str, ...]:
        """Primary analysis first, then secondary ones, without repeats."""
        return tuple(dict.fromkeys((self.analysis.primary, *self.analysis.secondary)))

    @functools.cached_property
    def regimens(self) -> tuple[products.Regimen, ...]:
        """What each arm receives, in ``design.arms`` order, every value resolved.

        Resolved once per scenario (first read during validation) and kept in the instance ``__dict__`` beside
        the fields: equality, ``to_dict``, ``digest`` and ``dataclasses.replace`` see the fields only, and a
        pickled scenario carries its regimens along.
        """
        autologous = self.population.source == "autologous"
        d = self.design
        return tuple(products.regimen(name, i, self.arms.get(name), self.treatment, autologous, design_kind=d.kind,
                                   crossover_month=d.crossover_month)
                     for i, name in enumerate(d.arms))

    @property
    def origin(self) -> Origin:
        """Where the values came from (kept beside the fields, like :attr:`regimens`: equality and the digest
        see the values only)."""
        return self.__dict__.get("_origin", Origin())

    @property
    def heading(self) -> str:
        """The title, followed by what was changed since the file was read (``[...]``), if anything was: the
        heading of every text output, figure and report of this scenario."""
        changed = self.origin.describe()
        return f"{self.title} [{changed}]" if changed else self.title

    def _with_origin(self, origin: Origin) -> Scenario:
        object.__setattr__(self, "_origin", origin)
        return self

    def to_toml(self) -> str:
        """The resolved scenario as a TOML file: every value as simulated (defaults and presets as numbers), with
        the origin in a header comment. :func:`load_scenario` of it gives a scenario with the same values
        (the same :meth:`digest`), so a run of it gives the same result."""
        import tomli_w

        raw = self._as_file()
        o = self.origin
        head = ["# Resolved scenario written by cbcp_sim: every value as simulated, defaults and presets included.",
                f"# Read from {o.file or 'a table in Python'}" + (f"; then {o.describe()}." if o.describe() else ".")]
        if o.effect is not None:
            head.append(f"# [effects.{o.effect}] is already applied below: run this file without --effect.")
        comment = "\n".join(f"# {line.removeprefix('# ')}" for text in head for line in text.splitlines())
        return comment + "\n\n" + tomli_w.dumps(raw)

    @property
    def primary_index(self) -> int:
        """Index of the primary visit in ``design.visits``."""
        return self.design.visits.index(self.design.primary_visit)

    def _as_file(self) -> dict[str, Any]:
        """:meth:`to_dict` with its tables keyed as a scenario file keys them (effects by name, sensitivity
        ranges by dotted path), so a dotted path can set one entry."""
        raw = self.to_dict()
        raw["effects"] = {name: dict(items) for name, items in self.effects}
        raw["sensitivity"]["ranges"] = {path: [low, high] for path, low, high in self.sensitivity.ranges}
        return raw

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict of every set value (defaults and presets resolved), as TOML would hold it."""
        return _drop_none(_plain(dataclasses.asdict(self)))

    def digest(self) -> str:
        """A stable hash of every value, to tell a changed scenario from the same one."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def replace(self, overrides: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> Scenario:
        """A new scenario with dotted-path overrides, validated like a file.

        Product values equal to the current cell preset follow the preset of a new ``treatment.cells``
        (and a half-life derived from ``retained_fraction`` is derived again); to keep such a value when
        changing cells, give it again in ``overrides``.
        """
        raw = self._as_file()
        t, preset = raw["treatment"], products.PRESETS[self.treatment.cells]
        for key in products.TIME_COURSE:
            if t.get(key) == preset[key]:
                del t[key]  # keep following the preset if `cells` changes
        for key in products.DOSE_RESPONSE:
            if t["dose_response"].get(key) == preset[key]:
                del t["dose_response"][key]
        if "retained_fraction" in t:
            t.pop("waning_half_life_months", None)
        items = tuple(overrides.items() if isinstance(overrides, Mapping) else overrides)
        o = self.origin
        return scenario_from_dict(raw, items)._with_origin(dataclasses.replace(o, overrides=(*o.overrides, *items)))

    def with_effect(self, name: str) -> Scenario:
        """This scenario under its named effect hypothesis ``[effects.<name>]``."""
        values = hypotheses.overrides(self.effects, name)
        o = self.origin
        return self.replace(values)._with_origin(dataclasses.replace(o, effect=name, effect_values=tuple(values)))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _drop_none(value: Any) -> Any:
    """A nested dict without its unset (None) values (in tables within arrays too), as a TOML file would omit
    them."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def parse_value(text_value: str) -> Any:
    """A ``--set`` value: a TOML value (``40``, ``[30, 40]``, ``inf``, ``"x"``) or else a bare string."""
    try:
        return tomllib.loads(f"v = {text_value}")["v"]
    except tomllib.TOMLDecodeError:
        return text_value
    except RecursionError:
        raise ScenarioError("value", f"tables and arrays nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:  # a whole number of more than 4,300 digits
        raise ScenarioError("value", f"whole number out of range (at most {MAX_INTEGER} in size)") from None


def set_dotted(raw: dict[str, Any], path: str, value: Any) -> None:
    """Set ``raw[a][b][c] = value`` for path ``a.b.c``, creating tables on the way. The path is split as TOML
    splits a dotted key (:func:`~cbcp_sim.scenario.schema.split_path`): ``arms."single dose".kind`` and
    ``arms.single dose.kind`` are the same key."""
    keys = split_path(path)
    node = raw
    for i, key in enumerate(keys[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ScenarioError(join_path(keys[: i + 1]), "is a value, not a table")
        node = child
    node[keys[-1]] = value


def scenario_from_dict(raw: Mapping[str, Any],
                       overrides: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> Scenario:
    """Validate a nested dict (as read from TOML) plus dotted-path overrides into a Scenario."""
    check_raw(raw, "")
    items = tuple(overrides.items() if isinstance(overrides, Mapping) else overrides)
    for path, value in items:
        check_raw(value, path)
    data = copy.deepcopy(dict(raw))
    for path, value in items:
        set_dotted(data, path, value)
    scenario = build(Scenario, data, "")
    return _finish(scenario)


def _finish(s: Scenario) -> Scenario:
    """Resolve presets and check rules that span fields."""
    t = products.finish_treatment(s.treatment)
    d = s.design
    n = d.n_per_arm
    if len(n) == 1:
        n = n * len(d.arms)
    elif len(n) != len(d.arms):
        raise ScenarioError("design.n_per_arm", f"must give one number or {len(d.arms)} (one per arm), got {len(n)}")
    if d.visits[0] != 0.0:
        raise ScenarioError("design.visits", f"must start with the baseline visit 0, got {d.visits[0]:g}")
    if d.primary_visit not in d.visits:
        raise ScenarioError("design.primary_visit",
                            f"must be one of design.visits {[f'{v:g}' for v in d.visits]}, got {d.primary_visit:g}")
    p = s.population
    if p.recovery_sd ** 2 >= p.recovery_mean * (1 - p.recovery_mean):
        limit = math.sqrt(p.recovery_mean * (1 - p.recovery_mean))
        raise ScenarioError("population.recovery_sd",
                            f"must be below sqrt(mean x (1 - mean)) = {limit:.3f} for a Beta distribution, "
                            f"got {p.recovery_sd:g}")
    nh = s.natural_history
    for g, (limit, sd) in enumerate(zip(nh.limit, nh.limit_sd, strict=True)):
        largest = MAX_LIMIT_LOGIT_SD * limit * (1.0 - limit / 100.0)
        if sd > largest:
            raise ScenarioError(f"natural_history.limit_sd[{g}]",
                                f"must be at most {largest:.3g} for a limit of {limit:g} (its logit-scale SD "
                                f"{MAX_LIMIT_LOGIT_SD:g} x 100 p (1 - p), p = limit / 100), got {sd:g}")
    e = s.eligibility
    if p.source == "autologous" and e.min_dose > p.max_dose:
        raise ScenarioError("eligibility.min_dose", f"must not exceed population.max_dose ({p.max_dose:g}), "
                                                    f"got {e.min_dose:g}")
    if p.age_distribution == "lognormal" and not p.ages[0] <= p.age_median <= p.ages[1]:
        raise ScenarioError("population.age_median", f"must lie in population.ages {list(p.ages)}, "
                                                     f"got {p.age_median:g}")
    if not any(p.gmfcs_mix[g - 1] > 0.0 for g in e.gmfcs):
        raise ScenarioError("eligibility.gmfcs", "no referred child has an eligible GMFCS level "
                                                 "(population.gmfcs_mix gives them no share)")
    if e.ages[1] <= p.ages[0] or e.ages[0] >= p.ages[1]:
        raise ScenarioError("eligibility.ages", f"must overlap population.ages {list(p.ages)}, got {list(e.ages)}")
    products.check_arms(s.arms, d.arms, d.kind)
    if len(set(d.arms)) != len(d.arms):
        raise ScenarioError("design.arms", f"arm names must differ, got {list(d.arms)}")
    out = dataclasses.replace(s, treatment=t, design=dataclasses.replace(d, n_per_arm=n))
    _check_design(out)
    _check_tipping(out)
    _check_dose_slope(out)
    _check_dose_response(out)
    _check_bayes(out)
    check_priors(out.assurance)
    _check_planning_paths(out)
    return _check_operations(out)


@functools.cache
def _keys() -> dict[int, tuple[tuple[str, ...], ...]]:
    """Every scenario key split at its dots, by the number of its parts (compared part by part, not as patterns:
    compiling a pattern per key cost a run a twentieth of a second)."""
    keys: dict[int, list[tuple[str, ...]]] = {}
    for r in describe(Scenario):
        parts = tuple(r["path"].split("."))
        keys.setdefault(len(parts), []).append(parts)
    return {n: tuple(k) for n, k in keys.items()}


def _is_key(path: str) -> bool:
    """Whether ``path`` is a scenario key (a table's ``<name>`` part stands for any name)."""
    parts = path.split(".")
    return any(all(p == k or (k == "<name>" and p) for p, k in zip(parts, key, strict=True))
               for key in _keys().get(len(parts), ()))


def _check_planning_paths(s: Scenario) -> None:
    """Priors, sensitivity ranges and effects name scenario keys (not theirs: they are not simulated)."""
    named = [(f"assurance.priors.{p}", p) for p in s.assurance.priors]
    named += [(f"sensitivity.ranges.{p}", p) for p, _, _ in s.sensitivity.ranges]
    named += [(f"effects.{name}.{p}", p) for name, items in s.effects for p, _ in items]
    for where, path in named:
        if path.startswith(hypotheses.NOT_SIMULATED) or not _is_key(path):
            raise ScenarioError(where, "is not a scenario key that can vary (cbcp-sim params lists them)")


#: Most follow-up visits an MMRM analyses: its unstructured covariance then has 300 parameters and a fit about
#: 1 s, two per trial (10,000 trials about 6 hours on one core); the time grows with the fourth power of the visits.
MAX_MMRM_FOLLOW_UPS = 24


def _check_design(s: Scenario) -> None:
    """Rules tying the design's kind, arms, randomisation and analyses together; resolves every arm."""
    d, a = s.design, s.analysis
    regimens = s.regimens
    k = len(d.arms)

    def only(allowed: tuple[str, ...], why: str) -> None:
        for path, names in (("analysis.primary", (a.primary,)), ("analysis.secondary", a.secondary)):
            for name in names:
                if name not in allowed:
                    raise ScenarioError(path, f"{name!r} {why}; use one of {', '.join(allowed)}")

    model = s.outcome.model
    if model == "normal":  # baseline, primary visit, a crossover's end
        sd = s.outcome.sd
        if isinstance(sd, tuple) and len(sd) not in (1, k):
            raise ScenarioError("outcome.sd", f"must give one number or {k} (one per arm), got {len(sd)}")
        if d.kind == "crossover" and d.primary_visit != d.crossover_month:
            raise ScenarioError("design.primary_visit", f"the normal model's crossover compares period 1 at the "
                                                        f"switch: must equal design.crossover_month "
                                                        f"({d.crossover_month:g}), got {d.primary_visit:g}")
    if model == "mvn":
        mvn.check(s.outcome, d)
    if model != "gmfm66":  # no children's covariates or doses
        if a.covariates:
            raise ScenarioError("analysis.covariates", f"the {model} outcome model simulates no covariates; leave "
                                                       "analysis.covariates empty or use outcome.model = 'gmfm66'")
        if a.dose_strata:
            raise ScenarioError("analysis.dose_strata", f"the {model} outcome model simulates no cell doses; set "
                                                        "analysis.dose_strata = false or use outcome.model = 'gmfm66'")
    if d.kind == "single_arm":
        if k != 1:
            raise ScenarioError("design.arms", f"a single_arm design has one arm, got {k}")
        if not regimens[0].doses:
            raise ScenarioError(f"arms.{d.arms[0]}.kind", "the arm of a single_arm design gets cells")
        only(SINGLE_ARM_ANALYSES, "does not apply to a single_arm design")
        if a.dose_strata:
            raise ScenarioError("analysis.dose_strata", "compares dose strata with a reference arm, which a "
                                                        "single_arm design lacks")
        return
    if k < 2:
        raise ScenarioError("design.arms", "needs two or more arms, the reference first (one arm: design.kind = "
                                           "'single_arm')")
    if d.kind == "crossover":
        if k != 2:
            raise ScenarioError("design.arms", f"a crossover design has two sequences, got {k}")
        if d.crossover_month not in d.visits or d.crossover_month == d.visits[-1]:
            raise ScenarioError("design.crossover_month", f"must be one of design.visits before the last, got "
                                                          f"{d.crossover_month:g}")
        if d.primary_visit > d.crossover_month:
            raise ScenarioError("design.primary_visit", f"must be in period 1 (at most design.crossover_month "
                                                        f"{d.crossover_month:g}), got {d.primary_visit:g}")
        for r, first in zip(regimens, (d.crossover_month, 0.0), strict=True):
            if not r.doses:
                raise ScenarioError(f"arms.{r.name}.kind", "both sequences of a crossover get cells (placebo is "
                                                           "the other period's infusion)")
            if r.doses[0].month != first:
                raise ScenarioError(f"arms.{r.name}.schedule", f"must give cells first at month {first:g} (a "
                                                               "crossover's first arm at the switch, the other at 0)")
        only(PARALLEL_ANALYSES + CROSSOVER_ANALYSES, "does not apply to a crossover design")
    else:
        only(PARALLEL_ANALYSES, "does not apply to a parallel design")
    if a.multiplicity == "dunnett":
        only(ONE_MODEL_ANALYSES, "is not one model of every arm with a pooled variance, as analysis.multiplicity = "
                                 "'dunnett' needs (analysis.multiplicity = 'dunnett_separate' approximates it with "
                                 "each comparison's own fit)")
    if a.multiplicity == "dunnett_separate":
        only(T_ANALYSES, "has no t statistic for analysis.multiplicity = 'dunnett_separate'")
    if "mmrm" in s.analyses and len(d.visits) - 1 > MAX_MMRM_FOLLOW_UPS:
        raise ScenarioError("design.visits", f"analysis 'mmrm' fits an unstructured covariance of every follow-up "
                                             f"visit: at most {MAX_MMRM_FOLLOW_UPS} follow-up visits, got "
                                             f"{len(d.visits) - 1}; drop visits or analyse with ancova")
    if d.randomisation == "blocks":
        ratio = allocation_ratio(d.n_per_arm)
        if d.block_size % sum(ratio):
            raise ScenarioError("design.block_size", f"must be a multiple of {sum(ratio)} (allocation ratio "
                                                     f"{':'.join(map(str, ratio))}), got {d.block_size}")


def _check_tipping(s: Scenario) -> None:
    """``analysis.tipping_deltas`` needs what the delta adjustment is defined for: an ancova or mmrm (baseline a
    covariate) primary analysis of one active arm against the reference in a parallel design."""
    a, d = s.analysis, s.design
    if not a.tipping_deltas:
        return
    why = None
    if a.primary not in DELTA_ADJUSTED_ANALYSES:
        why = f"adjusts an ancova or mmrm primary analysis, not {a.primary!r}"
    elif a.primary == "mmrm" and a.mmrm_baseline != "covariate":
        why = f"of an mmrm needs analysis.mmrm_baseline = 'covariate', got {a.mmrm_baseline!r}"
    elif d.kind != "parallel" or len(d.arms) != 2:
        why = (f"is of one active arm against the reference in a parallel design, got a {d.kind} design with "
               f"{len(d.arms)} arms")
    if why is not None:
        raise ScenarioError("analysis.tipping_deltas", f"the delta adjustment {why}")


def treated_arms(s: Scenario) -> tuple[int, ...]:
    """The arms whose children's doses ``analysis.dose_slope`` analyses, pooled: the single arm, else every active
    arm (:func:`_check_dose_slope`: all receive the same cells at each child's own dose)."""
    return (0,) if s.design.kind == "single_arm" else tuple(range(1, len(s.design.arms)))


def _check_dose_slope(s: Scenario) -> None:
    """``analysis.dose_slope`` needs doses that vary between the treated children: children (the gmfm66 model), an
    autologous source, a parallel or single-arm design whose treated arms (every active arm, or the single arm) all
    receive the same cells at each child's own dose."""
    if s.analysis.dose_slope_strata and not s.analysis.dose_slope:
        raise ScenarioError("analysis.dose_slope_strata", "splits the dose slope's children into dose strata: set "
                                                          "analysis.dose_slope = true, or leave it empty")
    if not s.analysis.dose_slope:
        return
    d = s.design
    why = None
    if s.outcome.model != "gmfm66":
        why = f"needs children with doses (outcome.model = 'gmfm66'), got {s.outcome.model!r}"
    elif s.population.source != "autologous":
        why = f"needs doses that vary between children (population.source = 'autologous'), got {s.population.source!r}"
    elif d.kind not in ("parallel", "single_arm"):
        why = f"is of the treated arms of a parallel or single-arm design, got a {d.kind} design"
    else:
        arms = treated_arms(s)
        first = s.regimens[arms[0]]
        for arm in arms:
            regimen = s.regimens[arm]
            if not regimen.doses:
                why = f"needs cells in arm {d.arms[arm]!r} (a treated arm), which receives {regimen.kind}"
            elif any(dose.dose is not None for dose in regimen.doses):
                why = (f"needs each child's own dose in arm {d.arms[arm]!r} (a treated arm), which receives a fixed "
                       "dose (arms.<name>.dose)")
            elif regimen.doses != first.doses:
                why = (f"pools the treated arms, which must receive the same cells: arm {d.arms[arm]!r} receives "
                       f"{regimen.describe()}, arm {d.arms[arms[0]]!r} {first.describe()}")
            if why is not None:
                break
    if why is not None:
        raise ScenarioError("analysis.dose_slope", f"the dose slope {why}")


def dose_design(s: Scenario) -> tuple[float, ...] | str:
    """The doses per kg (10^7 TNC/kg) of a dose design, placebo (0) first, or why ``s`` is not one: a parallel
    design of at least three arms (children, the gmfm66 model), the first receiving no cells, every other one
    product's cells at one fixed dose per arm (``arms.<name>.dose``, or population.allogeneic_dose with an
    allogeneic source), distinct and increasing."""
    d = s.design
    if s.outcome.model != "gmfm66":
        return f"needs doses per kg (outcome.model = 'gmfm66'), got {s.outcome.model!r}"
    if d.kind != "parallel" or len(d.arms) < 3:
        return f"needs a parallel design of placebo and at least two dose arms, got a {d.kind} design with " \
               f"{len(d.arms)} arm(s)"
    if s.regimens[0].doses:
        return f"needs placebo or sham first, but arm {d.arms[0]!r} receives cells"
    doses, courses = [0.0], set()
    for name, regimen in zip(d.arms[1:], s.regimens[1:], strict=True):
        if not regimen.doses:
            return f"needs cells in every arm after the first, but arm {name!r} receives {regimen.kind}"
        fixed = {x.dose if x.dose is not None else (s.population.allogeneic_dose
                                                    if s.population.source == "allogeneic" else None)
                 for x in regimen.doses}
        if None in fixed or len(fixed) != 1:
            return (f"needs one fixed dose per kg in arm {name!r} (arms.{name}.dose, or population.source = "
                    "'allogeneic')")
        doses.append(float(fixed.pop()))
        courses.add(regimen.doses[0].course)
    if len(courses) != 1:
        return "needs one product and dose-response in every dose arm"
    if any(b <= a for a, b in itertools.pairwise(doses)):
        return f"needs distinct doses increasing with the arms, got {', '.join(f'{x:g}' for x in doses[1:])}"
    return tuple(doses)


def _check_dose_response(s: Scenario) -> None:
    """``analysis.dose_response_models`` on a dose design (:func:`dose_design`); the models themselves are parsed
    as a run starts (:func:`cbcp_sim.run.engine.point_tasks`: the scenario layer does not import the analyses).
    ``dose_response_selection`` and ``dose_response_primary`` need the models; MCP-Mod as the primary analysis is
    refused beside a ``[bayes]`` section (two definitions of success) and with interim looks."""
    a = s.analysis
    if not a.dose_response_models:
        for key in ("dose_response_primary", "dose_response_selection"):
            if getattr(a, key) not in (None, False):
                raise ScenarioError(f"analysis.{key}", "applies to MCP-Mod: give analysis.dose_response_models too")
        return
    why = dose_design(s)
    if isinstance(why, str):
        raise ScenarioError("analysis.dose_response_models", f"MCP-Mod {why}")
    if a.dose_response_primary and s.bayes is not None:
        raise ScenarioError("analysis.dose_response_primary", "and a [bayes] section both define a trial's success: "
                                                              "keep one")
    if a.dose_response_primary and s.sequential.interims:
        raise ScenarioError("analysis.dose_response_primary", "has no interim looks: the group-sequential boundaries "
                                                              "monitor analysis.primary; leave sequential.interims "
                                                              "empty")


#: Primary analyses whose estimate is not in points, which a prior in points cannot describe.
NOT_IN_POINTS = ("fisher", "chisquare", "count_above")


def _check_bayes(s: Scenario) -> None:
    """Rules of the ``[bayes]`` section: one prior model (on the effect, or on the control arm's mean), each
    prior given the way its kind needs, and what the design can decide on."""
    b = s.bayes
    if b is None:
        return
    if b.prior and b.studies:
        raise ScenarioError("bayes.studies", "gives the effect prior as a MAP prior: leave bayes.prior empty")
    if b.robust_weight and not (b.prior or b.studies):
        raise ScenarioError("bayes.robust_weight", "robustifies an informative effect prior: give bayes.prior or "
                                                   "bayes.studies, or set it to 0")
    if b.futility_predictive and not s.sequential.interims:
        raise ScenarioError("bayes.futility_predictive", "stops at interim looks: give sequential.interims, or set "
                                                         "it to 0")
    if b.futility_predictive and b.borrows:
        raise ScenarioError("bayes.futility_predictive", "reads the primary analysis at each look, with an effect "
                                                         "prior: not with a control-arm prior (bayes.control)")
    needs = {"prior": "control_prior", "historical": "control_studies"}
    for kind, key in needs.items():
        given = bool(getattr(b, key))
        if given != (b.control == kind):
            raise ScenarioError(f"bayes.{key}", f"is the control prior of bayes.control = '{kind}'" if given
                                else f"must be given with bayes.control = '{kind}'")
    if not b.borrows:
        for key in ("drift", "control_robust_weight"):
            if getattr(b, key):
                raise ScenarioError(f"bayes.{key}", "applies to a control-arm prior: set bayes.control, or set it "
                                                    "to 0")
        if b.endpoint != "change":
            raise ScenarioError("bayes.endpoint", "is the endpoint of the arms' means with a control-arm prior; "
                                                  "without one the decision reads the primary analysis")
        if s.analysis.primary in NOT_IN_POINTS:
            raise ScenarioError("analysis.primary", f"{s.analysis.primary!r} estimates a proportion, not points: "
                                                    "a Bayesian decision on the effect needs an analysis in points")
    else:
        if b.prior or b.studies:
            raise ScenarioError("bayes.control", "a control-arm prior and an effect prior are two models of the "
                                                 "decision: give one (leave bayes.prior and bayes.studies empty)")
        if s.design.kind == "crossover":
            raise ScenarioError("bayes.control", "borrows for a control arm, which a crossover design lacks")
        if s.outcome.model != "gmfm66" and (b.control == "natural_history" or b.endpoint == "vs_expected"):
            field = "bayes.control" if b.control == "natural_history" else "bayes.endpoint"
            raise ScenarioError(field, "needs the natural-history model (outcome.model = 'gmfm66')")


def _check_operations(s: Scenario) -> Scenario:
    """Check the visit windows and the interim looks."""
    o, q, d = s.operations, s.sequential, s.design
    windows = visit_windows(o, d.visits)
    spans = [(0.0, 0.0)] + [(m - w / DAYS_PER_MONTH, m + w / DAYS_PER_MONTH)
                            for m, w in zip(d.visits[1:], windows, strict=True)]
    if any(later[0] <= earlier[1] for earlier, later in itertools.pairwise(spans)):
        raise ScenarioError("operations.window_days", f"windows {[f'{w:g}' for w in windows]} days overlap each "
                                                      "other or the baseline; each must be less than half the gap "
                                                      "to its neighbouring visits")
    if q.interims:
        if not o.enabled:
            raise ScenarioError("sequential.interims", "interim looks need the trial calendar: set "
                                                       "operations.enabled = true")
        if q.timing == "information" and q.interims[-1] >= 1.0:
            raise ScenarioError("sequential.interims", f"information fractions must be in (0, 1), got "
                                                       f"{list(q.interims)}")
        if d.alpha / d.sides >= 0.5:
            raise ScenarioError("design.alpha", f"with interim looks the one-sided level (design.alpha / "
                                                f"design.sides) must be below 0.5, got {d.alpha / d.sides:g}")
        if len(d.arms) > 2:
            raise ScenarioError("sequential.interims", f"interim looks are for one comparison (two arms or a "
                                                       f"single arm), got {len(d.arms)} arms")
    _check_spending(q)
    if q.futility and len(q.futility) != len(q.interims):
        raise ScenarioError("sequential.futility", f"must give one bound per interim ({len(q.interims)}), got "
                                                   f"{len(q.futility)}")
    if q.beta_spending != "none":
        if q.futility:
            raise ScenarioError("sequential.futility", "and sequential.beta_spending both set futility bounds: give "
                                                       "z values or a beta-spending function, not both")
        if not q.interims or q.timing != "information":
            raise ScenarioError("sequential.beta_spending", "needs interim looks at information fractions "
                                                            "(sequential.interims with timing 'information')")
    if (q.futility or q.beta_spending != "none") and q.timing == "information":
        _check_futility(q, d.alpha / d.sides)
    return s


def visit_windows(o: Operations, visits: tuple[float, ...]) -> tuple[float, ...]:
    """Half-width in days of each follow-up visit's window: ``o.window_days`` (one for all, or one each), or by
    default 7 days up to month 1, 14 up to month 6, 30 later, each at most a quarter of the gap to a neighbour."""
    if not o.window_days:
        gaps = [b - a for a, b in itertools.pairwise(visits)]
        rule = [7.0 if m <= 1.0 else 14.0 if m <= 6.0 else 30.0 for m in visits[1:]]
        near = [min(gaps[i:i + 2]) for i in range(len(gaps))]
        return tuple(min(w, 0.25 * g * DAYS_PER_MONTH) for w, g in zip(rule, near, strict=True))
    if len(o.window_days) == 1:
        return o.window_days * (len(visits) - 1)
    if len(o.window_days) == len(visits) - 1:
        return o.window_days
    raise ScenarioError("operations.window_days", f"must give one value or {len(visits) - 1} (one per follow-up "
                                                  f"visit), got {len(o.window_days)}")


def _check_spending(q: Sequential) -> None:
    """The (beta-)spending parameter given for kim-demets and hsd spending, and only for them."""
    from cbcp_sim.scenario.boundaries import check_spending

    try:
        check_spending(q.spending, q.spending_parameter)
        if q.beta_spending != "none":
            check_spending(q.beta_spending, q.beta_spending_parameter, "beta_spending")
        elif q.beta_spending_parameter is not None:
            raise ScenarioError("beta_spending_parameter", f"is used only with beta_spending kim-demets or hsd, not "
                                                           f"none; got {q.beta_spending_parameter:g}")
    except ScenarioError as exc:
        raise ScenarioError(f"sequential.{exc.path}", exc.message) from None


def planned_boundaries(q: Sequential, alpha: float) -> Boundaries:
    """The design at the planned information fractions ``(*q.interims, 1)`` (timing 'information'): efficacy bounds
    for one-sided ``alpha`` and the futility bounds given or from beta spending, as rpact's
    ``getDesignGroupSequential`` computes them with ``informationRates`` = those fractions."""
    from cbcp_sim.scenario.boundaries import boundaries

    beta_spending = None if q.beta_spending == "none" else q.beta_spending
    return boundaries((*q.interims, 1.0), alpha=alpha, spending=q.spending, futility=q.futility or None,
                      binding=q.binding, spending_parameter=q.spending_parameter, beta_spending=beta_spending,
                      beta=q.beta, beta_spending_parameter=q.beta_spending_parameter)


def _check_futility(q: Sequential, alpha: float) -> None:
    """Futility bounds (given, or from beta spending at a drift giving power 1 - beta) below the efficacy bounds at
    the planned information fractions."""
    try:
        planned_boundaries(q, alpha)
    except ScenarioError as exc:
        where = {"futility": "sequential.futility" if q.futility else "sequential.beta_spending",
                 "alpha": "design.alpha", "beta": "sequential.beta"}
        raise ScenarioError(where.get(exc.path, "sequential.interims"), exc.message) from None


def allocation_ratio(n_per_arm: tuple[int, ...]) -> tuple[int, ...]:
    """Children per arm reduced by their greatest common divisor: ``(36, 72) -> (1, 2)``."""
    g = math.gcd(*n_per_arm)
    return tuple(n // g for n in n_per_arm)


def load_scenario(path: str | Path, overrides: Mapping[str, Any] | Iterable[tuple[str, Any]] = (),
                  effect: str | None = None) -> Scenario:
    """Read a TOML scenario file, apply its effect hypothesis ``effect`` (``[effects.<name>]``), then the
    dotted-path overrides, validate, and freeze. Every named effect is checked to give a valid scenario.

    ``path`` may also name a bundled scenario (``"repeat_dose"`` or ``"repeat_dose.toml"``, see
    :func:`bundled_scenarios`) when no such file exists; a file that exists always wins.

    Raises :class:`ScenarioError` for a missing file, malformed TOML, or any invalid value.
    """
    if "\0" in str(path):
        raise ScenarioError(str(path), "a file name cannot hold a NUL character")
    try:
        path = _scenario_file(path)
    except OSError as exc:  # a name too long, a symlink loop, ...
        raise ScenarioError(str(path), f"cannot read the scenario file: {exc.strerror or exc}") from None
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ScenarioError(str(path), "scenario file not found") from None
    except IsADirectoryError:
        raise ScenarioError(str(path), "is a directory, not a scenario file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(str(path), f"malformed TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ScenarioError(str(path), "malformed TOML: not UTF-8 text") from None
    except RecursionError:
        raise ScenarioError(str(path), f"tables and arrays nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:  # a whole number of more than 4,300 digits
        raise ScenarioError(str(path), f"whole number out of range (at most {MAX_INTEGER} in size)") from None
    except OSError as exc:  # a name too long, a symlink loop, no permission, ...
        raise ScenarioError(str(path), f"cannot read the scenario file: {exc.strerror or exc}") from None
    settings = tuple(overrides.items() if isinstance(overrides, Mapping) else overrides)
    scenario = scenario_from_dict(raw, settings)
    under = {name: _under_effect(raw, name, items, settings) for name, items in scenario.effects}
    origin = Origin(file=str(path), file_paths=tuple(".".join(keys) for keys, _ in leaves(raw)), overrides=settings)
    if effect is None:
        return scenario._with_origin(origin)
    if effect not in under:
        raise hypotheses.unknown(scenario.effects, effect)
    values = dict(scenario.effects)[effect]
    return under[effect]._with_origin(dataclasses.replace(origin, effect=effect, effect_values=values))


def _under_effect(raw: Mapping[str, Any], name: str, items: tuple[tuple[str, Any], ...],
                  settings: tuple[tuple[str, Any], ...]) -> Scenario:
    """The scenario under effect ``name``, then the settings; a refused value is blamed on the effect."""
    try:
        return scenario_from_dict(raw, [*items, *settings])
    except ScenarioError as exc:
        where = f".{exc.path}" if exc.path in dict(items) else ""
        raise ScenarioError(f"effects.{name}{where}", exc.message) from None


def default_scenario_path() -> Path:
    """The default scenario, ``scenarios/default.toml`` (in the source tree, or packaged in a wheel)."""
    source_tree = Path(__file__).resolve().parents[2] / "scenarios" / "default.toml"
    if source_tree.is_file():
        return source_tree
    from importlib.resources import files

    return Path(str(files("cbcp_sim.scenarios") / "default.toml"))


def bundled_scenarios() -> dict[str, Path]:
    """The scenarios that come with the package, by name (the file name without ``.toml``), in name order: the
    ``*.toml`` files beside :func:`default_scenario_path` (``scenarios/`` in the source tree, or the installed
    package ``cbcp_sim.scenarios``)."""
    return {p.stem: p for p in sorted(default_scenario_path().parent.glob("*.toml"))}


def _scenario_file(path: str | Path) -> Path:
    """``path`` as given if it is a file or has a directory part; a bare name without ``.toml`` whose ``.toml``
    file is here; else the bundled scenario of that name (with or without ``.toml``); a bare name that is none
    of these is refused with the bundled names."""
    given, text = Path(path), str(path)
    if given.is_file() or given.name != text:
        return given
    if not text.endswith(".toml") and Path(f"{text}.toml").is_file():
        return Path(f"{text}.toml")
    bundled = bundled_scenarios()
    name = text.removesuffix(".toml")
    if name in bundled:
        return bundled[name]
    if given.exists():
        return given  # a directory: refused as one when read
    raise ScenarioError(text, f"scenario file not found, nor a bundled scenario of that name (bundled: "
                              f"{', '.join(bundled)})")
