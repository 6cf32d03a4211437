"""The ``[bayes]`` section: Bayesian go/no-go decisions, with priors on the treatment effect or on the control
arm's mean (borrowing from historical controls or from the natural-history model), and their drift.

A scenario without the section is decided by its frequentist test alone; with it, every run also reports the
decisions' operating characteristics (docs/bayes.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cbcp_sim.errors import ScenarioError
from cbcp_sim.scenario.schema import build, choice, integer, number, param

SOURCE_DECISION = "[Lalonde 2007] go/no-go framework; design"
#: Control-arm priors: none, given components, a MAP prior of historical control arms, or the natural-history
#: model's mean for the enrolled children.
CONTROL_PRIORS = ("none", "prior", "historical", "natural_history")
MAX_COMPONENTS = 10
MAX_STUDIES = 200


@dataclass(frozen=True)
class Component:
    """One normal component of a mixture prior."""

    weight: float = param(1.0, number(0.0, 1.0, lo_open=True), doc="Weight (the weights sum to 1).",
                          source="user")
    mean: float = param(0.0, number(-1e4, 1e4), unit="GMFM-66 points", doc="Mean.", source="user")
    sd: float = param(1.0, number(0.0, 1e4, lo_open=True), unit="GMFM-66 points", doc="Standard deviation.",
                      source="user")


@dataclass(frozen=True)
class Study:
    """An earlier study's result: an estimate with its SE, or an arm's mean, SD and number of children."""

    estimate: float | None = param(None, number(-1e4, 1e4), unit="GMFM-66 points", doc="Estimate.", source="user")
    se: float | None = param(None, number(0.0, 1e4, lo_open=True), unit="GMFM-66 points",
                             doc="Its standard error.", source="user")
    mean: float | None = param(None, number(-1e4, 1e4), unit="GMFM-66 points", doc="Arm mean.", source="user")
    sd: float | None = param(None, number(0.0, 1e4, lo_open=True), unit="GMFM-66 points",
                             doc="Per-child SD.", source="user")
    n: int | None = param(None, integer(1, 1_000_000), unit="children", doc="Children.", source="user")

    def summary(self) -> tuple[float, float]:
        """(estimate, SE) in points."""
        if self.estimate is not None:
            return self.estimate, self.se  # type: ignore[return-value]
        return self.mean, self.sd / math.sqrt(self.n)  # type: ignore[operator, return-value]


def _list_of(cls: type, most: int, what: str, check_item: Any = None) -> Any:
    def check(value: Any, path: str) -> tuple:
        if not isinstance(value, list | tuple):
            raise ScenarioError(path, f"must be an array of {what} tables, got {value!r}")
        if len(value) > most:
            raise ScenarioError(path, f"must have at most {most} tables, got {len(value)}")
        items = tuple(build(cls, v, f"{path}[{i}]") for i, v in enumerate(value))
        for i, item in enumerate(items):
            if check_item is not None:
                check_item(item, f"{path}[{i}]")
        return items

    check.allowed = f"array of at most {most} {what} tables"  # type: ignore[attr-defined]
    return check


def _whole_study(s: Study, path: str) -> None:
    if (s.estimate is None) != (s.se is None) or (s.mean is None) != (s.sd is None) or (s.mean is None) != (
            s.n is None) or (s.estimate is None) == (s.mean is None):
        raise ScenarioError(path, "must give estimate and se, or mean, sd and n (not both)")


def _mixture(value: Any, path: str) -> tuple[Component, ...]:
    items = _list_of(Component, MAX_COMPONENTS, "{weight, mean, sd}")(value, path)
    total = sum(c.weight for c in items)
    if items and abs(total - 1.0) > 1e-6:
        raise ScenarioError(path, f"weights must sum to 1, got {total:g}")
    return items


_mixture.allowed = f"array of at most {MAX_COMPONENTS} {{weight, mean, sd}} tables, weights summing to 1"  # type: ignore[attr-defined]
_studies = _list_of(Study, MAX_STUDIES, "{estimate, se} or {mean, sd, n}", _whole_study)
HETEROGENEITY = ("ASSUMPTION: half-normal with scale half of one child's SD of 12-month change (about 5 points in "
                 "the model): moderate heterogeneity as in [Neuenschwander 2010]")


@dataclass(frozen=True)
class Bayes:
    """Bayesian go/no-go decisions on the primary comparison (docs/bayes.md)."""

    prior: tuple[Component, ...] = param(
        (), _mixture, unit="GMFM-66 points",
        doc="Prior of the treatment effect (active minus control), a normal mixture: [{weight, mean, sd}, ...]; "
            "empty: flat (or the MAP prior of studies).",
        source="user; pooled effects +1.36 (6 months) and +1.42 (12 months) of [Finch-Edmondson 2025]",
        shown="[] (flat)")
    studies: tuple[Study, ...] = param(
        (), _studies, doc="Earlier studies' effect estimates ({estimate, se}): the effect prior is then their "
                          "meta-analytic-predictive (MAP) prior (not with prior).",
        source="[Neuenschwander 2010]; [Schmidli 2014]", shown="[]")
    tau_scale: float = param(
        2.5, number(0.0, 1e3), unit="GMFM-66 points",
        doc="MAP priors: scale of the half-normal prior of the between-study SD (0: no heterogeneity, the pooled "
            "estimate).", source=HETEROGENEITY)
    robust_weight: float = param(
        0.0, number(0.0, 1.0, hi_open=True),
        doc="Weight of a vague component (one child's worth, mean of the prior) added to the effect prior "
            "(RBesT's robustify).", source="[Schmidli 2014]")
    control: str = param(
        "none", choice(*CONTROL_PRIORS),
        doc="Prior of the control arm's mean endpoint: none; prior (control_prior); historical (MAP prior of "
            "control_studies); natural_history (the model's mean for the enrolled children, SD control_sd). "
            "The decision then reads the arms' means (a flat prior on the active arm's).",
        source="[Viele 2014] (borrowing controls); design")
    control_prior: tuple[Component, ...] = param(
        (), _mixture, unit="GMFM-66 points", doc="control = prior: the control mean's prior, a normal mixture.",
        source="user", shown="[]")
    control_studies: tuple[Study, ...] = param(
        (), _studies, doc="control = historical: earlier control arms ({mean, sd, n} or {estimate, se}).",
        source="user; e.g. the natural-history cohort of [Sun 2022]", shown="[]")
    control_sd: float = param(
        1.0, number(0.0, 1e3, lo_open=True), unit="GMFM-66 points",
        doc="control = natural_history: SD of the prior of the control mean around the model's mean.",
        source="ASSUMPTION: the model's mean change is known to about a point")
    control_robust_weight: float = param(
        0.0, number(0.0, 1.0, hi_open=True),
        doc="Weight of a vague component (one child's worth) added to the control prior.",
        source="[Schmidli 2014]")
    drift: float = param(
        0.0, number(-100.0, 100.0), unit="GMFM-66 points",
        doc="Control borrowing: the true control mean minus the prior's mean (every child's endpoint shifted, "
            "the effect unchanged).", source="[Viele 2014] (drift)")
    endpoint: str = param(
        "change", choice("change", "vs_expected"),
        doc="Control borrowing: the arms' mean change from baseline to the primary visit, or change minus each "
            "child's expected natural change (the ACCeNT-CP endpoint).",
        source="[Sun 2022]")
    likelihood: str = param(
        "normal", choice("normal", "t"),
        doc="normal: the estimate is N(effect, SE^2); t: a Student t with the analysis's df (each arm's n - 1 "
            "with control borrowing).", source="design")
    unit_sd: float = param(
        0.0, number(0.0, 1e3), unit="GMFM-66 points",
        doc="One child's SD of the endpoint, for effective sample sizes and vague components; 0: the model's "
            "(untreated children of the first arm).", source="design", shown="0 (from the model)")
    go_threshold: float = param(
        0.0, number(-100.0, 100.0), unit="GMFM-66 points",
        doc="GO if P(effect > go_threshold | data) >= go_probability.", source=SOURCE_DECISION)
    go_probability: float = param(
        0.975, number(0.5, 1.0, hi_open=True), doc="Posterior probability a GO needs.", source=SOURCE_DECISION)
    nogo_threshold: float = param(
        1.0, number(-100.0, 100.0), unit="GMFM-66 points",
        doc="NO-GO if P(effect < nogo_threshold | data) >= nogo_probability (and not GO); else GRAY.",
        source="ASSUMPTION: an effect under 1 point is below GMFM-66 MCIDs ([Oeffinger 2008]); "
               + SOURCE_DECISION)
    nogo_probability: float = param(
        0.9, number(0.5, 1.0, hi_open=True), doc="Posterior probability a NO-GO needs.", source=SOURCE_DECISION)
    credible_level: float = param(
        0.95, number(0.5, 1.0, lo_open=True, hi_open=True), doc="Level of the equal-tailed credible interval.",
        source="convention")
    conflict_level: float = param(
        0.05, number(0.0, 0.5, lo_open=True),
        doc="Prior-data conflict when the prior-predictive p-value of the data is below this.",
        source="[Box 1980]")
    ess_method: str = param(
        "elir", choice("elir", "moment"),
        doc="Effective sample size of priors: elir (expected local information ratio) or moment (variance "
            "matching).", source="[Neuenschwander 2020]")
    futility_predictive: float = param(
        0.0, number(0.0, 1.0, hi_open=True),
        doc="With interim looks (sequential.interims) and an effect prior: stop for futility (a NO-GO) when the "
            "predictive probability of a final GO is below this (0: no such stop).",
        source="[Saville 2014]")

    @property
    def borrows(self) -> bool:
        """Whether the control arm's mean has a prior (the decision reads the arms' means)."""
        return self.control != "none"
