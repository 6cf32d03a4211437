"""Bayesian go/no-go decisions on each simulated trial, exactly and batched over replicates (no MCMC).

Two models of the decision (docs/bayes.md):

- **effect prior**: a normal-mixture prior (or a flat one) on the treatment effect, updated by the primary
  analysis's estimate as N(effect, SE^2), or a Student t with the analysis's df;
- **control borrowing**: a normal-mixture prior on the control arm's mean endpoint, updated by the control
  children's mean, and a flat prior on the active arm's mean; the effect is their difference. ``drift`` (the
  true control mean minus the prior's, points) shifts every child's endpoint, which for these arm means is
  the same as moving the prior by ``-drift``: so every drift is decided on the same trials.

GO if P(effect > go_threshold | data) >= go_probability; NO-GO if P(effect < nogo_threshold | data) >=
nogo_probability and not GO; GRAY otherwise [Lalonde 2007].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special, stats

from cbcp_sim.analysis.arm_means import ArmMeans
from cbcp_sim.analysis.inference import Estimates
from cbcp_sim.analysis.metrics import rate
from cbcp_sim.analysis.mixtures import Mixture, StudentT, nodes_for, posterior, posterior_t, predictive_p

#: Bisection steps of :func:`go_boundary` (its bracket shrinks to 2^-80 of its width).
BISECTIONS = 80


@dataclass(frozen=True)
class Rule:
    """The go/no-go rule and what is reported beside it."""

    go_threshold: float = 0.0      #: points
    go_probability: float = 0.975
    nogo_threshold: float = 1.0    #: points
    nogo_probability: float = 0.9
    credible_level: float = 0.95
    conflict_level: float = 0.05


@dataclass(frozen=True)
class Model:
    """The priors of a decision: on the effect (``control`` None; ``effect`` None is flat), or on the control
    arm's mean (``control``); the likelihood (``"normal"`` or ``"t"``); one child's SD of the endpoint
    (``unit_sd``, points), for the controls borrowed; and the prior that prior-data conflict is judged against
    (``informative``: the prior before a vague component was added, whose heavy tail would hide any conflict;
    None: the prior itself)."""

    effect: Mixture | None = None
    control: Mixture | None = None
    likelihood: str = "normal"
    unit_sd: float = math.nan
    informative: Mixture | None = None


@dataclass(frozen=True)
class Decisions:
    """Per replicate ``(R,)``: the posterior probabilities of the rule, the decisions, the posterior mean and
    equal-tailed credible interval of the effect, the prior-predictive p-value of the data (NaN with a flat
    prior), the controls borrowed (NaN without a control prior) and whether the trial could not be analysed."""

    prob_go: np.ndarray
    prob_nogo: np.ndarray
    go: np.ndarray
    nogo: np.ndarray
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    conflict_p: np.ndarray
    borrowed: np.ndarray
    failed: np.ndarray


def _flat(estimate: np.ndarray, se: np.ndarray, df: np.ndarray, likelihood: str) -> Mixture | StudentT:
    """The posterior of a mean under a flat prior."""
    if likelihood == "t":
        return posterior_t(None, estimate, se, df)
    return posterior(None, estimate, se)


def _update(prior: Mixture | None, estimate: np.ndarray, se: np.ndarray, df: np.ndarray,
            likelihood: str) -> Mixture | StudentT:
    if prior is None:
        return _flat(estimate, se, df, likelihood)
    if likelihood == "t":
        return posterior_t(prior, estimate, se, df, nodes=nodes_for(df))
    return posterior(prior, estimate, se)


def effect_posterior(model: Model, *, estimates: Estimates | None = None, arms: ArmMeans | None = None,
                     drift: float = 0.0) -> tuple[Mixture | StudentT, Mixture | None, np.ndarray, np.ndarray]:
    """The effect's posterior per replicate; the control mean's posterior (with a control prior); the
    prior-predictive p-value of the data; and the failed replicates."""
    if model.control is None:
        assert estimates is not None
        failed = estimates.failed
        est = np.where(failed, np.nan, estimates.estimate)
        post = _update(model.effect, est, estimates.se, estimates.df, model.likelihood)
        p = predictive_p(model.informative or model.effect, est, estimates.se)
        return post, None, p, failed
    assert arms is not None
    prior = model.control.shift(-drift)
    has_controls = arms.control_n > 0
    failed = (arms.active_n < 2) | (has_controls & (arms.control_n < 2))
    active = _flat(np.where(failed, np.nan, arms.active), arms.active_se, arms.active_n - 1.0, model.likelihood)
    if has_controls.any():
        c_mean = np.where(failed, np.nan, arms.control)
        control = _update(prior, c_mean, arms.control_se, arms.control_n - 1.0, model.likelihood)
        p = predictive_p((model.informative or model.control).shift(-drift), c_mean, arms.control_se)
    else:  # a single-arm design: the comparator is the prior alone
        shape = arms.active.shape
        control = Mixture(weights=np.broadcast_to(prior.weights, (*shape, prior.components)),
                          means=np.broadcast_to(prior.means, (*shape, prior.components)),
                          sds=np.broadcast_to(prior.sds, (*shape, prior.components)))
        p = np.full(shape, np.nan)
    assert isinstance(control, Mixture)
    if isinstance(active, StudentT):  # scale mixtures of both arms: keep the components that carry weight
        return active.as_mixture(nodes_for(active.df)).difference(control).pruned(), control, p, failed
    return active.difference(control), control, p, failed


def decide(model: Model, rule: Rule, *, estimates: Estimates | None = None, arms: ArmMeans | None = None,
           drift: float = 0.0) -> Decisions:
    """The rule's decisions on each replicate (see the module's docstring); failed replicates decide nothing."""
    post, control, p, failed = effect_posterior(model, estimates=estimates, arms=arms, drift=drift)
    tail = (1.0 - rule.credible_level) / 2.0
    with np.errstate(invalid="ignore"):
        prob_go = post.sf(rule.go_threshold)
        prob_nogo = post.cdf(rule.nogo_threshold)
        go = (prob_go >= rule.go_probability) & ~failed
        nogo = (prob_nogo >= rule.nogo_probability) & ~go & ~failed
        borrowed = np.full(failed.shape, np.nan) if control is None or arms is None else _borrowed(model, arms,
                                                                                                  control.var())
    return Decisions(prob_go=prob_go, prob_nogo=prob_nogo, go=go, nogo=nogo, mean=post.mean(),
                     lower=post.quantile(tail), upper=post.quantile(1.0 - tail), conflict_p=p,
                     borrowed=np.where(failed, np.nan, borrowed), failed=failed)


def _borrowed(model: Model, arms: ArmMeans, posterior_var: np.ndarray) -> np.ndarray:
    """Controls the posterior of the control mean is worth beyond those enrolled: ``n_c (e_c^2 / V - 1)``, the
    control arm's own variance ``n_c e_c^2`` over the posterior variance ``V`` (negative when a conflicting
    robust prior widens it); with no control arm, ``unit_sd^2 / V``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(arms.control_n > 0, arms.control_n * (arms.control_se ** 2 / posterior_var - 1.0),
                        model.unit_sd ** 2 / posterior_var)


def go_boundary(prior: Mixture | None, rule: Rule, se: np.ndarray) -> np.ndarray:
    """The smallest estimate that gives a GO with standard error ``se`` (points, per replicate) under a normal
    likelihood: ``P(effect > go_threshold | y) >= go_probability`` holds exactly for ``y`` at or above it (the
    posterior is stochastically increasing in ``y``). Closed form for a flat prior, else bisection."""
    z = float(stats.norm.isf(1.0 - rule.go_probability))
    flat = rule.go_threshold + z * se
    if prior is None:
        return flat
    spread = float(np.max(np.abs(prior.means - rule.go_threshold)) + 10.0 * np.max(prior.sds))
    lo, hi = flat - spread - 10.0 * se, flat + spread + 10.0 * se
    for _ in range(BISECTIONS):
        mid = 0.5 * (lo + hi)
        go = posterior(prior, mid, se).sf(rule.go_threshold) >= rule.go_probability
        lo, hi = np.where(go, lo, mid), np.where(go, mid, hi)
    return hi


def predictive_go(prior: Mixture | None, rule: Rule, estimate: np.ndarray, se: np.ndarray,
                  fraction: np.ndarray) -> np.ndarray:
    """The predictive probability of a GO at the final analysis, per replicate, given an interim ``estimate``
    with ``se`` at information ``fraction`` of the final (whose SE is then ``se sqrt(fraction)``), under a normal
    likelihood at both [Saville 2014]: with the interim posterior ``sum_k w_k N(m_k, s_k^2)``, the final estimate
    is ``t y + (1 - t) y_new`` with ``y_new ~ N(effect, se^2 t / (1 - t))``, so
    ``P(GO) = sum_k w_k P(N(t y + (1 - t) m_k, (1 - t)^2 (se^2 t / (1 - t) + s_k^2)) >= c)``, ``c`` the final
    GO boundary (:func:`go_boundary`). NaN where the interim analysis failed."""
    t = np.asarray(fraction, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        post = posterior(prior, estimate, se)
        c = go_boundary(prior, rule, se * np.sqrt(t))
        centre = t[..., None] * np.asarray(estimate)[..., None] + (1.0 - t)[..., None] * post.means
        spread = (1.0 - t)[..., None] * np.sqrt((se ** 2 * t / (1.0 - t))[..., None] + post.sds ** 2)
        return (post.weights * special.ndtr((centre - c[..., None]) / spread)).sum(axis=-1)


def _mean(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else None


def summarise(alt: Decisions, null: Decisions, true_effect: float, rule: Rule) -> dict[str, Any]:
    """Operating characteristics of the rule, with Monte Carlo SEs, under the scenario's effect (``alt``, whose
    true effect is ``true_effect`` points) and under no effect (``null``): P(GO), P(NO-GO), P(GRAY); the
    posterior mean's bias and RMSE; the credible interval's coverage; the rate of prior-data conflict (prior
    predictive p below ``rule.conflict_level``; None with a flat prior); the mean controls borrowed (None
    without a control prior)."""
    out: dict[str, Any] = {}
    for label, d, truth in (("", alt, true_effect), ("_null", null, 0.0)):
        shares = {"p_go": d.go, "p_nogo": d.nogo, "p_gray": ~d.go & ~d.nogo,
                  "coverage": (d.lower <= truth) & (truth <= d.upper)}
        for key, hits in shares.items():
            share = rate(hits, d.failed)
            out.update({f"{key}{label}": share["rate"], f"{key}{label}_mcse": share["mcse"]})
        conflicted = np.isfinite(d.conflict_p)
        out.update({f"conflict_rate{label}": (rate(d.conflict_p < rule.conflict_level, d.failed | ~conflicted)["rate"]
                                              if conflicted.any() else None),
                    f"borrowed_controls{label}": _mean(d.borrowed)})
        error = d.mean[~d.failed] - truth
        n = error.size
        if label == "" and n:
            out.update({"posterior_mean_bias": float(error.mean()),
                        "posterior_mean_bias_mcse": float(error.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
                        "posterior_rmse": float(math.sqrt((error ** 2).mean()))})
        elif label == "":
            out.update({"posterior_mean_bias": math.nan, "posterior_mean_bias_mcse": math.nan,
                        "posterior_rmse": math.nan})
    out["n_failed"] = int(alt.failed.sum())
    return out
