"""What the arms receive: cell products, their presets, and each arm's regimen (scenario declarations).

A scenario describes cells in three places:

- ``[treatment]``: the default cell product (``cells`` picks a preset; any of its values can be overridden)
  and the parts of the effect model shared by all arms (heterogeneity, modifiers, repeat doses, the
  expectation response and assessor bias).
- ``[arms.<name>]``: what each arm named in ``design.arms`` receives: ``kind`` (cells, sham, placebo or
  nothing), the dose ``schedule`` (months), the ``cells`` and ``dose`` of each dose, the ``route``, and any
  product value that differs for this arm (``arms.<name>.waning_half_life_months``).
- :data:`PRESETS`: per product, the dose-response and time course (sources below, keys of ``docs/references.md``).

:func:`regimen` (``Scenario.regimens``) resolves all of this into one :class:`Regimen` per arm: an arm's
product value comes from the arm, else from ``[treatment]`` when the arm gives the default product, else
from the product's preset.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cbcp_sim.errors import ScenarioError
from cbcp_sim.scenario.schema import array, choice, number, param, per_gmfcs, section
from cbcp_sim.vocabulary import TOPOGRAPHIES

KINDS = ("cells", "sham", "placebo", "nothing")
ROUTES = ("intravenous", "intrathecal")
DOSE_MODELS = ("emax", "threshold")
#: Product values that a preset sets (``dose_response`` values are given as ``dose_response.<name>``).
TIME_COURSE = ("onset_months", "peak_months", "waning_half_life_months", "persistent_fraction")
DOSE_RESPONSE = ("model", "emax", "ed50", "hill", "threshold")
#: Default months after a dose at which ``retained_fraction`` applies.
RETAINED_MONTHS = 12.0
#: The kinds of arm that get no cells: the controls.
CONTROLS = ("sham", "placebo", "nothing")

#: Dose-response of cord blood: Emax 4 points at ED50 3 x 10^7 TNC/kg, Hill 2, near zero below 2 x 10^7/kg
#: ([Sun 2017]); the threshold form steps at 2 x 10^7/kg.
_CORD_BLOOD_DOSE = {"model": "emax", "emax": 4.0, "ed50": 3.0, "hill": 2.0, "threshold": 2.0}
#: Dose-response of MSC (and, as an ASSUMPTION, BM-MNC): about 2 points per course of the ACCeNT-CP regimen
#: (3 x 2 x 10^6/kg IV, [Sun 2022], +1.4 vs natural history): Emax 2, ED50
#: 10^6/kg, Hill 1 (ASSUMPTION).
_CELL_DOSE = {"model": "emax", "emax": 2.0, "ed50": 0.1, "hill": 1.0, "threshold": 0.1}
#: Per product: dose-response (dose in 10^7 cells/kg: TNC for cord blood, MNC or MSC otherwise) and time
#: course (rise with time constant ``onset_months`` to the peak at ``peak_months``, then waning with
#: ``waning_half_life_months`` toward ``persistent_fraction`` of the peak). The waning was first set as an
#: exponential time constant tau_w (ASSUMPTION); the half-life is tau_w ln 2.
PRESETS: dict[str, dict[str, Any]] = {
    # Pooled sham-controlled comparison of intrathecal UCB-MNC and UCT-MSC ([Nouri 2025]): UCB-MNC gains came
    # earlier, matched UCT-MSC at 6 months and partly deteriorated by 12.
    # tau_on 1.5, tau_w 6 months, persistent 0.5 (magnitudes ASSUMPTION).
    "UCB-MNC": {**_CORD_BLOOD_DOSE, "onset_months": 1.5, "peak_months": 6.0,
                "waning_half_life_months": 6.0 * math.log(2), "persistent_fraction": 0.5},
    # IPD meta-analysis plateau ([Finch-Edmondson 2025]): +1.36 at 6 vs +1.42 points at 12 months;
    # tau_w 12 months, persistent 0.85 (ASSUMPTION).
    "UCB-durable": {**_CORD_BLOOD_DOSE, "onset_months": 1.5, "peak_months": 6.0,
                    "waning_half_life_months": 12.0 * math.log(2), "persistent_fraction": 0.85},
    # Same pooled comparison: slower rise, more sustained at 12 months; tau_on 3, tau_w 12, persistent 0.7
    # (magnitudes ASSUMPTION).
    "UCT-MSC": {**_CELL_DOSE, "onset_months": 3.0, "peak_months": 6.0,
                "waning_half_life_months": 12.0 * math.log(2), "persistent_fraction": 0.7},
    # ASSUMPTION: mononuclear cells rise like UCB-MNC (tau_on 1.5); intrathecal BM-MNC showed no waning from
    # 6 to 12 months ([Liu 2017], via [Eggenberger 2019] Table 3: +1.25 at 6, +3.55 at 12 months vs
    # rehabilitation after 4 x 10^6/kg) and gains at 3, 6 and 12 months ([Nguyen 2017]; [Nguyen 2019]), so it
    # wanes like UCT-MSC.
    "BM-MNC": {**_CELL_DOSE, "onset_months": 1.5, "peak_months": 6.0,
               "waning_half_life_months": 12.0 * math.log(2), "persistent_fraction": 0.7},
}
PRODUCTS = tuple(PRESETS)


@dataclass(frozen=True)
class DoseResponse:
    """Largest effect of one dose as a function of dose per kg: Emax with Hill coefficient, or a step."""

    model: str | None = param(
        None, choice(*DOSE_MODELS),
        doc="emax: emax x d^hill / (ed50^hill + d^hill). threshold: emax at doses >= threshold, else 0.",
        source="emax form ASSUMPTION; threshold form after [Sun 2017] (gains only above about 2 x 10^7 TNC/kg)")
    emax: float | None = param(
        None, number(-50.0, 50.0), unit="GMFM-66 points",
        doc="Largest effect of one dose at the peak of its time course.",
        source="cell preset (ASSUMPTION calibrated to [Sun 2017], [Finch-Edmondson 2025] and [Sun 2022])")
    ed50: float | None = param(
        None, number(0.0, 100.0, lo_open=True), unit="10^7 cells/kg",
        doc="emax model: dose giving half of emax.",
        source="cell preset (ASSUMPTION calibrated to [Sun 2017], [Finch-Edmondson 2025] and [Sun 2022])")
    hill: float | None = param(
        None, number(0.1, 20.0), doc="emax model: Hill coefficient (steepness).",
        source="cell preset (ASSUMPTION calibrated to [Sun 2017], [Finch-Edmondson 2025] and [Sun 2022])")
    threshold: float | None = param(
        None, number(0.0, 100.0), unit="10^7 cells/kg",
        doc="threshold model: smallest dose with an effect.",
        source="cell preset: 2 x 10^7 TNC/kg for cord blood ([Sun 2017])")


@dataclass(frozen=True)
class Product:
    """A cell product's dose-response and time course; unset values come from the preset."""

    dose_response: DoseResponse = section(DoseResponse)
    onset_months: float | None = param(
        None, number(0.01, 120.0), unit="months",
        doc="Time constant of the rise toward the peak effect.",
        source="cell preset (ASSUMPTION; directions from [Nouri 2025], [Finch-Edmondson 2025] and [Liu 2017])")
    peak_months: float | None = param(
        None, number(0.0, 120.0, lo_open=True), unit="months",
        doc="Months after a dose when its effect peaks; waning starts there.",
        source="cell preset (ASSUMPTION; directions from [Nouri 2025], [Finch-Edmondson 2025] and [Liu 2017])")
    waning_half_life_months: float | None = param(
        None, number(0.01, math.inf, allow_inf=True), unit="months",
        doc="Half-life of the part of the peak effect that wanes (inf = durable).",
        source="cell preset (ASSUMPTION; directions from [Nouri 2025], [Finch-Edmondson 2025] and [Liu 2017])")
    persistent_fraction: float | None = param(
        None, number(0.0, 1.0), unit="fraction",
        doc="Share of the peak effect that never wanes.",
        source="cell preset (ASSUMPTION; directions from [Nouri 2025], [Finch-Edmondson 2025] and [Liu 2017])")
    retained_fraction: float | None = param(
        None, number(0.0, 1.0),  unit="fraction",
        doc="Instead of the half-life: share of the peak effect left retained_months after the dose "
            "(above persistent_fraction; 1 = durable).", source="user")
    retained_months: float = param(
        RETAINED_MONTHS, number(0.0, 240.0, lo_open=True), unit="months",
        doc="Months after the dose at which retained_fraction applies (after peak_months).", source="user")


@dataclass(frozen=True)
class Modifiers:
    """Multipliers of a child's cell effect by GMFCS level, topography, age at the dose and route."""

    gmfcs: tuple[float, ...] = param(
        (1.2, 1.2, 1.0, 0.6, 0.6), per_gmfcs(0.0, 10.0), unit="ratio",
        doc="Effect multiplier for GMFCS I-V.",
        source="ASSUMPTION, direction VERIFIED: milder CP benefited more ([Finch-Edmondson 2025])")
    topography: tuple[float, ...] = param(
        (1.0, 1.0, 1.0), array(number(0.0, 10.0), length=len(TOPOGRAPHIES)), unit="ratio",
        doc="Effect multiplier for hemiplegia, diplegia, quadriplegia.",
        source="ASSUMPTION 1 (no effect beyond GMFCS); [Lee 2012] saw responses in hemi- "
               "and diplegia, not quadriplegia (20 children, confounded with GMFCS): set quadriplegia < 1 to explore")
    age_breaks: tuple[float, ...] = param(
        (5.0,), array(number(0.0, 21.0), min_length=0, max_length=10, increasing=True), unit="years",
        doc="Ages (at the dose) where the age multiplier changes.",
        source="younger children (about < 5 years) benefited more ([Finch-Edmondson 2025])")
    age_factors: tuple[float, ...] = param(
        (1.0, 0.5), array(number(0.0, 10.0), max_length=11), unit="ratio",
        doc="Effect multiplier below the first age break, between breaks, and above the last "
            "(one more value than age_breaks).",
        source="ASSUMPTION x1.0 below 5 y, x0.5 from 5 y (direction: [Finch-Edmondson 2025])")
    intrathecal: float = param(
        1.0, number(0.0, 10.0), unit="ratio",
        doc="Effect multiplier of an intrathecal dose relative to the same dose intravenously.",
        source="ASSUMPTION: no trial compares routes head to head; sweep it. Intrathecal trials reported large "
               "gains at small doses ([Zarrabi 2022]; [Amanat 2021]) at high risk of bias")


@dataclass(frozen=True)
class Treatment(Product):
    """The default cell product and the effect model shared by every arm.

    Child i's cell effect at month t of a regimen with doses k (month t_k, dose d_k) is, before the ceiling,
    ``E_ik(t) = r_k x responder_i x response_i x modifier_ik x Emax_k(d_k) x course_k(t - t_k)``, with
    ``r_k`` = 1 for the first dose and ``relative_efficacy`` after; the doses combine under the child's
    ceiling ``C_i = ceiling_fraction x limit_i`` as ``C_i (1 - prod_k (1 - min(E_ik, C_i) / C_i))``.
    """

    cells: str = param(
        "UCB-MNC", choice(*PRODUCTS), doc="Default cell product of the arms; sets the preset.",
        source="UCB-MNC waning after [Nouri 2025]; UCB-durable after [Finch-Edmondson 2025]")
    response_cv: float = param(
        0.7, number(0.0, 5.0), unit="ratio",
        doc="Coefficient of variation of a responder's multiplicative response (gamma, mean 1; 0 = same for all).",
        source="ASSUMPTION: Gamma(shape 2, scale 0.5), 'benefit in some children' ([Finch-Edmondson 2025])")
    responder_fraction: float = param(
        1.0, number(0.0, 1.0), unit="fraction",
        doc="Share of children who respond at all (the others get no cell effect).",
        source="ASSUMPTION 1 (the gamma response already spreads benefit); [Lee 2012]: 5/20 improved")
    relative_efficacy: float = param(
        0.5, number(0.0, 10.0), unit="ratio",
        doc="Effect of each dose after the first relative to the first dose.",
        source="ASSUMPTION: no trial isolates the extra doses (ACCeNT-CP [Sun 2022], [Huang 2018], "
               "[Gu 2020], [Nguyen 2017]); 0.5 puts the 3-dose MSC course near 2 points")
    # a finite share above 100 caps nothing a child can gain, and loses the precision of doses combined under it
    # (1 - E/C rounds to 1; from about 1e14 repeat doses add nothing): inf says none
    ceiling_fraction: float = param(
        0.2, number(0.0, 100.0, lo_open=True, allow_inf=True), unit="fraction",
        doc="Largest total cell effect of a child, as a share of the child's own GMFM-66 limit (inf = none).",
        source="ASSUMPTION (a first draft capped repeat doses at 1.25 Emax); tying the cap to the motor limit lets "
               "a GMFCS II child (limit 68) gain at most 14 points, a GMFCS V child (22) 4")
    modifiers: Modifiers = section(Modifiers)
    expectation_response: float = param(
        0.0, number(-20.0, 20.0), unit="GMFM-66 points",
        doc="Placebo/expectation gain of children who get a procedure (cells, sham or placebo) and whose "
            "families are blinded or know they got cells.",
        source="ASSUMPTION 0: sham arms of CP trials gain like active arms ([Collet 2001], "
               "hyperbaric oxygen vs pressurised air) but no trial separates expectation from natural change")
    expectation_onset_months: float = param(
        1.0, number(0.01, 120.0), unit="months",
        doc="Time constant of the rise of the expectation response (it is held after that).", source="ASSUMPTION")
    assessor_bias: float = param(
        1.2, number(-20.0, 20.0), unit="GMFM-66 points",
        doc="Added to post-baseline scores of children an unblinded assessor knows got cells "
            "(design.blinding = open only).",
        source="DERIVED: unblinded assessors exaggerate effects on measurement scales by 0.23 SD "
               "([Hrobjartsson 2013]) x 5.2, the SD of 12-month GMFM-66 change from [Finch-Edmondson 2025]")


def _one_or_list(item: Any, allowed: str) -> Any:
    """A value, or a list of values one per dose."""

    def check(value: Any, path: str) -> tuple:
        if isinstance(value, list | tuple):
            return array(item, max_length=100)(value, path)
        return (item(value, path),)

    check.allowed = allowed  # type: ignore[attr-defined]
    return check


@dataclass(frozen=True)
class Arm(Product):
    """What one arm receives; product values given here apply to this arm only."""

    kind: str | None = param(
        None, choice(*KINDS),
        doc="cells; sham (procedure without cells); placebo (infusion without cells); nothing (untreated "
            "open-label control). Default: cells if the arm's table gives any cell value (cells, schedule, dose, "
            "route or a product value); else, in a parallel design, the kind an arm named sham, placebo or "
            "nothing is named for, and sham for the first arm; cells otherwise. A kind other than cells with a "
            "cell value is refused.",
        source="protocol")
    cells: tuple[str, ...] | None = param(
        None, _one_or_list(choice(*PRODUCTS), f"one of {', '.join(map(repr, PRODUCTS))}, or a list, one per dose"),
        doc="Cell product of each dose (default treatment.cells).", source="protocol")
    schedule: tuple[float, ...] | None = param(
        None, array(number(0.0, 240.0), max_length=100, increasing=True), unit="months",
        doc="Months of the doses after baseline, e.g. [0, 3] or four weekly injections [0, 0.23, 0.46, 0.69]. "
            "Default [0]; in a crossover design the first arm's is [design.crossover_month].",
        source="protocol; ACCeNT-CP MSC 0, 3, 6 ([Sun 2022]); [Nguyen 2017] 0, 3")
    dose: tuple[float, ...] | None = param(
        None, _one_or_list(number(0.0, 1000.0), "number in [0, 1000], or a list, one per dose"),
        unit="10^7 cells/kg",
        doc="Dose per kg of each dose; default: each child's dose from the population model (autologous unit "
            "or population.allogeneic_dose).", source="protocol")
    route: tuple[str, ...] | None = param(
        None, _one_or_list(choice(*ROUTES), "'intravenous' or 'intrathecal', or a list, one per dose"),
        doc="Route of each dose.", source="protocol", shown="[intravenous]")
    retained_months: float | None = param(
        None, number(0.0, 240.0, lo_open=True), unit="months",
        doc="Months after the dose at which retained_fraction applies (after peak_months).", source="user",
        shown=f"{RETAINED_MONTHS:g}")


@dataclass(frozen=True)
class Course:
    """A resolved product: the dose-response and time course of one dose."""

    product: str
    model: str
    emax: float
    ed50: float
    hill: float
    threshold: float
    onset_months: float
    peak_months: float
    waning_half_life_months: float
    persistent_fraction: float


@dataclass(frozen=True)
class Dose:
    """One dose of a regimen."""

    month: float
    course: Course
    dose: float | None  #: 10^7 cells/kg, or None for each child's dose from the population model
    route: str


@dataclass(frozen=True)
class Regimen:
    """What the children of one arm receive."""

    name: str
    kind: str
    doses: tuple[Dose, ...]  #: empty unless kind is 'cells'

    def describe(self) -> str:
        """One line: what the arm receives, e.g. ``UCB-MNC intravenous at month 0 (dose per child)``."""
        if not self.doses:
            return self.kind
        parts = []
        for d in self.doses:
            amount = "dose per child" if d.dose is None else f"{d.dose:g} x 10^7/kg"
            parts.append(f"{d.course.product} {d.route} at month {d.month:g} ({amount})")
        return ", ".join(parts)

    @property
    def procedure(self) -> bool:
        """Whether the arm gets a procedure (cells, sham or placebo) that can raise expectations."""
        return self.kind != "nothing"


def half_life_for(retained: float, persistent: float, months_after_peak: float, path: str) -> float:
    """Waning half-life that leaves ``retained`` of the peak ``months_after_peak`` after it."""
    if retained >= 1.0:
        return math.inf
    if retained <= persistent:
        raise ScenarioError(f"{path}.retained_fraction",
                            f"must be in ({persistent:g}, 1] (above persistent_fraction), got {retained:g}")
    return months_after_peak * math.log(2) / math.log((1.0 - persistent) / (retained - persistent))


def _product_value(key: str, owners: list[tuple[Product, str]], product: str) -> Any:
    """``key`` of ``product``: the first owner's value that is set, else the preset."""
    for owner, _ in owners:
        value = getattr(owner.dose_response if key in DOSE_RESPONSE else owner, key)
        if value is not None:
            return value
    return PRESETS[product][key]


def _course(arm: Arm | None, t: Treatment, product: str, path: str) -> Course:
    """The resolved course of ``product`` for an arm (``arm`` None: the default product of ``[treatment]``).

    A value comes from the arm, else from ``[treatment]`` when ``product`` is its product, else from the preset.
    Waning comes from the first of these owners that sets a half-life or a retained fraction; a retained
    fraction is turned into a half-life with this course's peak and persistent fraction. Only the first owner
    may give both, and then they must agree.
    """
    owners = [(o, where) for o, where in ((arm, path), (t if product == t.cells else None, "treatment"))
              if o is not None]
    values = {key: _product_value(key, owners, product) for key in (*DOSE_RESPONSE, *TIME_COURSE)}
    for i, (owner, where) in enumerate(owners):
        if owner.retained_fraction is not None:
            retained_months = RETAINED_MONTHS if owner.retained_months is None else owner.retained_months
            months = retained_months - values["peak_months"]
            if months <= 0:
                raise ScenarioError(f"{where}.retained_months",
                                    f"must be after peak_months ({values['peak_months']:g}), got "
                                    f"{retained_months:g}")
            half_life = half_life_for(owner.retained_fraction, values["persistent_fraction"], months, where)
            given = owner.waning_half_life_months
            if i == 0 and given is not None and not math.isclose(given, half_life, rel_tol=1e-9):
                raise ScenarioError(f"{where}.waning_half_life_months",
                                    "give either waning_half_life_months or retained_fraction, not both")
            values["waning_half_life_months"] = half_life
            break
        if owner.waning_half_life_months is not None:
            break
    return Course(product=product, **values)


def finish_treatment(t: Treatment) -> Treatment:
    """Fill the default product's unset values from its preset (after checking cross-field rules)."""
    course = _course(None, t, t.cells, "treatment")
    if len(t.modifiers.age_factors) != len(t.modifiers.age_breaks) + 1:
        raise ScenarioError("treatment.modifiers.age_factors",
                            f"must have {len(t.modifiers.age_breaks) + 1} values (one more than age_breaks), "
                            f"got {len(t.modifiers.age_factors)}")
    dr = DoseResponse(**{k: getattr(course, k) for k in DOSE_RESPONSE})
    return dataclasses.replace(t, dose_response=dr, **{k: getattr(course, k) for k in TIME_COURSE})


def _per_dose(values: tuple | None, n: int, path: str, default: Any) -> tuple:
    if values is None:
        return (default,) * n
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise ScenarioError(path, f"must give one value or {n} (one per dose in schedule), got {len(values)}")
    return values


def cell_values(arm: Arm | None) -> tuple[str, ...]:
    """The keys of an arm's table that say what cells it gets (``dose``, ``dose_response.emax``, ...): every key
    it gives but ``kind``, in declaration order."""
    if arm is None:
        return ()
    out = []
    for f in dataclasses.fields(arm):
        value = getattr(arm, f.name)
        if f.name == "kind":
            continue
        if isinstance(value, DoseResponse):
            out += [f"dose_response.{k}" for k in DOSE_RESPONSE if getattr(value, k) is not None]
        elif value is not None:
            out.append(f.name)
    return tuple(out)


def _named_kind(name: str, design_kind: str) -> str | None:
    """The control kind an arm of a parallel design is named for (``sham``, ``placebo``, ``nothing``), if any."""
    named = name.strip().lower()
    return named if design_kind == "parallel" and named in CONTROLS else None


def arm_kind(name: str, position: int, arm: Arm | None, design_kind: str = "parallel") -> str:
    """What arm ``name`` (at ``position`` in ``design.arms``; ``arm`` is its table, if any) is: its ``kind``;
    else cells when its table gives any cell value; else, in a parallel design, the control it is named for
    (an arm called sham, placebo or nothing) and sham for the first arm; cells otherwise. A control kind with
    a cell value is refused, naming the value: an arm's table is never silently ignored."""
    given = cell_values(arm)
    kind = arm.kind if arm is not None else None
    if kind is not None and kind != "cells" and given:
        raise ScenarioError(f"arms.{name}.{given[0]}",
                            f"gives cells to an arm of kind {kind!r}, which gets none: remove it, or set "
                            f"arms.{name}.kind = \"cells\"")
    if kind is not None:
        return kind
    if given:
        return "cells"
    named = _named_kind(name, design_kind)
    if named is not None:
        return named
    return "sham" if position == 0 and design_kind == "parallel" else "cells"


def regimen(name: str, position: int, arm: Arm | None, t: Treatment, autologous: bool, *,
            design_kind: str = "parallel", crossover_month: float = 12.0) -> Regimen:
    """Resolve arm ``name`` (at ``position`` in ``design.arms``; ``arm`` is its table, if any) of a design of
    ``design_kind``; its kind is :func:`arm_kind`'s."""
    path = f"arms.{name}"
    given = arm if arm is not None else Arm()
    kind = arm_kind(name, position, arm, design_kind)
    if kind != "cells":
        return Regimen(name=name, kind=kind, doses=())
    schedule = given.schedule
    if schedule is None:
        schedule = (crossover_month,) if position == 0 and design_kind == "crossover" else (0.0,)
    n = len(schedule)
    cells = _per_dose(given.cells, n, f"{path}.cells", t.cells)
    doses = _per_dose(given.dose, n, f"{path}.dose", None)
    routes = _per_dose(given.route, n, f"{path}.route", "intravenous")
    if autologous and n > 1 and any(d is None for d in doses):
        raise ScenarioError(f"{path}.dose", "an autologous unit gives one dose: set arms.<name>.dose for each "
                                            "repeat dose, or use population.source = 'allogeneic'")
    courses = {c: _course(arm, t, c, path) for c in dict.fromkeys(cells)}
    return Regimen(name=name, kind=kind, doses=tuple(
        Dose(month=m, course=courses[c], dose=d, route=r)
        for m, c, d, r in zip(schedule, cells, doses, routes, strict=True)))


def check_arms(arms: Mapping[str, Arm], names: tuple[str, ...], design_kind: str = "parallel") -> None:
    """Every ``[arms.<name>]`` table names an arm of ``design.arms``; and in a parallel design whose first arm
    (the reference every arm is compared with) says nothing of what it gets, no later arm is a control by its
    name alone: the first arm would be taken for a sham control beside it (``design.arms = ["cord blood",
    "sham"]``). A later control declared by its ``kind`` is a second control the user asked for."""
    for name in arms:
        if name not in names:
            raise ScenarioError(f"arms.{name}", f"is not an arm of design.arms {list(names)}")
    if design_kind != "parallel" or not names:
        return
    first = names[0]
    table = arms.get(first)
    if (table is not None and table.kind is not None) or cell_values(table) or _named_kind(first, design_kind):
        return
    for j, name in enumerate(names[1:], start=1):
        table = arms.get(name)
        kind = arm_kind(name, j, table, design_kind)
        if kind != "cells" and (table is None or table.kind is None):
            raise ScenarioError(f"arms.{first}.kind",
                                f"is not given, and {name!r} is a control ({kind}): put the control first in "
                                f"design.arms (every arm is compared with the first), or say what {first!r} gets "
                                f"(arms.{first}.kind, or its cells and dose)")
