"""A scenario's ``[bayes]`` section made into the priors and rule of :mod:`cbcp_sim.analysis.decisions`, and the
run's Bayesian operating characteristics.

The priors are fixed before any trial is simulated: MAP priors are computed from their studies, and the
natural-history prior of the control mean, like one child's SD of the endpoint, from the model itself
(:func:`natural_course`: a large cohort drawn with a fixed seed, whatever the run's seed).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cbcp_sim.analysis.arm_means import ArmMeans, arm_means
from cbcp_sim.analysis.decisions import Decisions, Model, Rule, decide, predictive_go, summarise
from cbcp_sim.analysis.inference import Estimates
from cbcp_sim.analysis.map_prior import map_prior
from cbcp_sim.analysis.mixtures import Mixture, ess, robustify
from cbcp_sim.models import trial
from cbcp_sim.models.streams import Streams
from cbcp_sim.run.monitoring import Monitoring
from cbcp_sim.scenario import Scenario
from cbcp_sim.scenario.bayes import Component, Study

#: Children of the cohort that gives the natural-history prior and one child's SD (their Monte Carlo SE is
#: under 0.03 points for a 4-point SD) and its seed, fixed so the prior never depends on the run's seed.
COURSE_CHILDREN = 20_000
COURSE_SEED = 20_261_206

_COURSES: dict[str, tuple[float, float]] = {}


def natural_course(s: Scenario) -> tuple[float, float]:
    """Mean and SD (points) of the ``bayes.endpoint`` at the primary visit of the first arm's children without
    cells (the control arm, or a single arm's children untreated), sham or placebo response and trial effect
    included: the model's truth, so ``bayes.drift = 0`` means a natural-history prior centred on it. From
    :data:`COURSE_CHILDREN` children, no dropout, no calendar; cached per scenario."""
    key = s.digest()
    if key not in _COURSES:
        k = len(s.design.arms)
        plain = {"design.n_per_arm": [COURSE_CHILDREN] + [2] * (k - 1), "design.randomisation": "fixed",
                 "dropout.fraction": 0.0, "operations.enabled": False, "sequential.interims": [],
                 "sequential.futility": [], "sequential.beta_spending": "none"}
        cohort = s.replace({**plain, **({"bayes.futility_predictive": 0.0} if s.bayes is not None else {})})
        data = trial.generate(cohort, 1, Streams(COURSE_SEED, 0))
        first = data.arm[0] == 0
        means = arm_means(data.null_values, data.null_observed, ~first, data.primary,
                          expected=data.expected if _endpoint(s) == "vs_expected" else None)
        _COURSES[key] = float(means.control[0]), float(means.control_se[0] * math.sqrt(means.control_n[0]))
    return _COURSES[key]


def _endpoint(s: Scenario) -> str:
    return s.bayes.endpoint if s.bayes is not None else "change"


def _mixture(components: tuple[Component, ...]) -> Mixture:
    return Mixture.of((c.weight, c.mean, c.sd) for c in components)


def _map(studies: tuple[Study, ...], tau_scale: float) -> Mixture:
    y, se = np.array([st.summary() for st in studies]).T
    return map_prior(y, se, tau_scale).mixture


@dataclass(frozen=True)
class Priors:
    """What a run decides with: the decision's model and rule, one child's SD of the endpoint (points), and the
    effective sample size of the prior (children per arm for an effect prior, controls for a control prior;
    0 for a flat one)."""

    model: Model
    rule: Rule
    unit_sd: float
    prior_ess: float


def priors(s: Scenario) -> Priors:
    """The priors and rule of scenario ``s`` (which has a ``[bayes]`` section)."""
    b = s.bayes
    assert b is not None
    rule = Rule(go_threshold=b.go_threshold, go_probability=b.go_probability, nogo_threshold=b.nogo_threshold,
                nogo_probability=b.nogo_probability, credible_level=b.credible_level,
                conflict_level=b.conflict_level)
    effect = _mixture(b.prior) if b.prior else _map(b.studies, b.tau_scale) if b.studies else None
    if not b.borrows and effect is None:  # a flat prior: nothing needs one child's SD
        return Priors(Model(likelihood=b.likelihood), rule, b.unit_sd or math.nan, 0.0)
    unit_sd = b.unit_sd or natural_course(s)[1]
    if b.borrows:
        informative = {"prior": lambda: _mixture(b.control_prior),
                       "historical": lambda: _map(b.control_studies, b.tau_scale),
                       "natural_history": lambda: Mixture.of([(1.0, natural_course(s)[0], b.control_sd)]),
                       }[b.control]()
        control = robustify(informative, b.control_robust_weight, unit_sd)
        model = Model(control=control, likelihood=b.likelihood, unit_sd=unit_sd, informative=informative)
        return Priors(model, rule, unit_sd, ess(control, unit_sd, b.ess_method))
    assert effect is not None
    vague = unit_sd * math.sqrt(2.0)  # one child per arm
    model = Model(effect=robustify(effect, b.robust_weight, vague), likelihood=b.likelihood, unit_sd=unit_sd,
                  informative=effect)
    return Priors(model, rule, unit_sd, ess(model.effect, vague, b.ess_method))


def decisions(s: Scenario, p: Priors, data: Estimates | ArmMeans, drift: float | None = None) -> Decisions:
    """The decisions on one pass's trials: ``data`` is the primary analysis's estimates (an effect prior) or
    the arms' means (a control prior); ``drift`` defaults to the scenario's."""
    b = s.bayes
    assert b is not None
    drift = b.drift if drift is None else drift
    if isinstance(data, ArmMeans):
        return decide(p.model, p.rule, arms=data, drift=drift)
    return decide(p.model, p.rule, estimates=data)


def with_futility(s: Scenario, p: Priors, decided: Decisions, looks: Monitoring) -> tuple[Decisions, np.ndarray]:
    """``decided`` with ``bayes.futility_predictive``: a trial whose predictive probability of a final GO falls
    below it at an interim look stops there, a NO-GO; and per trial the look at which it stopped (-1: none)."""
    b = s.bayes
    assert b is not None and looks.estimate is not None and looks.se is not None
    stop = np.full(decided.go.shape, -1)
    for j in range(looks.fraction.shape[1] - 1):
        pp = predictive_go(p.model.effect, p.rule, looks.estimate[:, j], looks.se[:, j], looks.fraction[:, j])
        with np.errstate(invalid="ignore"):
            stop[(stop < 0) & (pp < b.futility_predictive)] = j
    stopped = stop >= 0
    go = decided.go & ~stopped
    return dataclasses.replace(decided, go=go, nogo=(decided.nogo | stopped) & ~go), stop


def operating_characteristics(s: Scenario, p: Priors, alt: Decisions, null: Decisions,
                              true_effect: float) -> dict[str, Any]:
    """The ``bayes`` block of a run's result: the rule's operating characteristics and what was decided with."""
    b = s.bayes
    assert b is not None
    prior = p.model.control if b.borrows else p.model.effect
    return {**summarise(alt, null, true_effect, p.rule), "prior_ess": p.prior_ess, "ess_method": b.ess_method,
            "prior_on": "control mean" if b.borrows else "effect", "control": b.control,
            "prior_components": None if prior is None else [
                {"weight": float(w), "mean": float(m), "sd": float(sd)}
                for w, m, sd in zip(prior.weights, prior.means, prior.sds, strict=True)],
            "unit_sd": p.unit_sd, "drift": b.drift, "likelihood": b.likelihood, "endpoint": b.endpoint,
            "go_threshold": b.go_threshold, "go_probability": b.go_probability, "nogo_threshold": b.nogo_threshold,
            "nogo_probability": b.nogo_probability, "credible_level": b.credible_level,
            "futility_predictive": b.futility_predictive}


def summary(s: Scenario, data: dict[str, Estimates | ArmMeans], true_effect: float,
            looks: dict[str, Monitoring] | None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A run's Bayesian block and its per-replicate decisions, from each pass's ``data`` (the first comparison's
    primary estimates, or its arms' means) and, with predictive futility, its interim ``looks``."""
    p = priors(s)
    decided = {k: decisions(s, p, data[k]) for k in ("alt", "null")}
    stops = {}
    if looks is not None:
        for k in decided:
            decided[k], stops[k] = with_futility(s, p, decided[k], looks[k])
    alt, null = decided["alt"], decided["null"]
    arrays = {f"{prefix}{name}": getattr(d, name) for prefix, d in (("", alt), ("null_", null))
              for name in ("go", "nogo", "prob_go", "mean", "lower", "upper")}
    out = operating_characteristics(s, p, alt, null, true_effect)
    if looks is not None:
        interims = looks["alt"].fraction.shape[1] - 1
        for prefix, k in (("", "alt"), ("_null", "null")):
            out[f"p_stop_futility{prefix}"] = [float((stops[k] == j).mean()) for j in range(interims)]
            arrays[f"{'null_' if prefix else ''}futility_look"] = stops[k]
    return out, arrays
