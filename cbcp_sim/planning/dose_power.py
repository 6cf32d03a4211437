"""Analytic power and sample size of MCP-Mod's multiple contrast test for a parallel dose-finding design, as R
DoseFinding's ``optContr``, ``critVal``, ``powMCT`` and ``sampSizeMCT`` [Bretz 2005] [Pinheiro 2014]: no
simulation.

The per-dose means are estimated from ``n_k`` children each with a common SD ``sigma`` (one-way ANOVA:
``S = sigma² diag(1 / n)``, ``df = sum(n) - K``); the test is one-sided (larger is better) at level ``alpha``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cbcp_sim.analysis.dose_models import Candidate, add_args, mean_response, parse_candidates
from cbcp_sim.analysis.mcpmod import (
    contrast_correlation,
    critical_value,
    optimal_contrasts,
    power_mct,
    shapes,
    smallest_n,
)
from cbcp_sim.errors import SettingsError

#: Summaries of the candidates' powers a sample size can target: the smallest (every model reaches the target)
#: or the mean (DoseFinding's ``sampSizeMCT`` default, ``sumFct = mean``).
CRITERIA = ("min", "mean")


@dataclass(frozen=True)
class DosePower:
    """The answer of :func:`dose_power`."""

    doses: tuple[float, ...]
    models: tuple[str, ...]           #: candidate labels, ``name:parameters``
    n: tuple[int, ...]                #: children per dose
    sigma: float
    placebo_effect: float
    max_effect: float
    alpha: float
    contrasts: tuple[tuple[float, ...], ...]  #: one per model, one coefficient per dose
    correlation: tuple[tuple[float, ...], ...]
    df: float
    critical_value: float
    power: dict[str, float]           #: model label -> power when that model is true
    target_power: float | None = None
    criterion: str = "min"
    n_per_dose: int | None = None     #: smallest n per dose (times the allocation) reaching the target
    power_at_n: dict[str, float] | None = None  #: the powers at that size

    def to_json(self) -> dict[str, Any]:
        out = {"kind": "dose-power", "method": "MCP-Mod multiple contrast test, as DoseFinding optContr/powMCT",
               "doses": list(self.doses), "models": list(self.models), "n": list(self.n), "sd": self.sigma,
               "placebo_effect": self.placebo_effect, "max_effect": self.max_effect, "alpha": self.alpha,
               "alternative": "one.sided", "contrasts": [list(c) for c in self.contrasts],
               "correlation": [list(c) for c in self.correlation], "df": self.df,
               "critical_value": self.critical_value, "power": dict(self.power)}
        if self.target_power is not None:
            out.update({"target_power": self.target_power, "criterion": self.criterion,
                        "n_per_dose": self.n_per_dose, "power_at_n_per_dose": dict(self.power_at_n or {})})
        return out

    def __str__(self) -> str:
        width = max(len(m) for m in self.models)
        lines = [f"MCP-Mod multiple contrast test (DoseFinding optContr/powMCT), one-sided alpha {self.alpha:g}",
                 f"  doses           {', '.join(f'{d:g}' for d in self.doses)}",
                 f"  n per dose      {', '.join(str(n) for n in self.n)} (sd {self.sigma:g}, df {self.df:g})",
                 f"  effect          placebo {self.placebo_effect:g}, maximum {self.max_effect:g} over placebo",
                 f"  critical value  {self.critical_value:.4f} (multivariate t)",
                 "  optimal contrasts (one row per model, one column per dose)"]
        rows = zip(self.models, self.contrasts, strict=True)
        lines += [f"    {m:<{width}}  " + "  ".join(f"{c:8.4f}" for c in row) for m, row in rows]
        lines.append("  power when each model is true")
        lines += [f"    {m:<{width}}  {p:.4f}" for m, p in self.power.items()]
        if self.target_power is not None:
            lines.append(f"  n per dose for {self.criterion} power >= {self.target_power:g}: {self.n_per_dose}")
            lines += [f"    {m:<{width}}  {p:.4f}" for m, p in (self.power_at_n or {}).items()]
        return "\n".join(lines)


def dose_power(doses: Sequence[float], models: str | Sequence[str | Candidate], *, sigma: float,
               n: int | Sequence[int], max_effect: float, placebo_effect: float = 0.0, alpha: float = 0.025,
               allocation: Sequence[float] | None = None, target_power: float | None = None,
               criterion: str = "min") -> DosePower:
    """Optimal contrasts, critical value and power of MCP-Mod's test for a dose-finding design.

    Parameters
    ----------
    doses
        The doses, placebo (0) first, ascending (10^7 TNC/kg, or any unit the model parameters share).
    models
        Candidate shapes as ``"emax:1,sigEmax:3:3,linear"`` (DoseFinding's names and parameter order) or a
        sequence of such texts or :class:`~cbcp_sim.analysis.dose_models.Candidate`.
    sigma
        SD of the response within a dose group (GMFM-66 points).
    n
        Children per dose: one number, or one per dose.
    max_effect, placebo_effect
        Each model's effect over placebo at the largest dose (DoseFinding's ``maxEff``; at the mode for
        ``betaMod`` and ``quadratic``), and the placebo response, for its power.
    alpha
        One-sided level, in (0, 0.5).
    allocation
        Relative sizes of the dose groups for the sample size (default equal); the size searched is the
        smallest group's.
    target_power
        With a target in (0, 1): also the smallest ``n`` per dose (the smallest group's, times ``allocation``)
        whose ``criterion`` power reaches it.
    criterion
        ``min`` (every model's power reaches the target) or ``mean`` (DoseFinding's ``sampSizeMCT`` default).
    """
    d = _doses(doses)
    cands = parse_candidates(models)
    sigma = _positive("sigma", sigma)
    alpha = _real("alpha", alpha)
    if not 0.0 < alpha < 0.5:
        raise SettingsError("alpha", f"must be in (0, 0.5), got {alpha:g}")
    sizes = _sizes(n, d.size)
    if criterion not in CRITERIA:
        raise SettingsError("criterion", f"expected one of {', '.join(CRITERIA)}, got {criterion!r}")
    max_effect, placebo_effect = _real("max_effect", max_effect), _real("placebo_effect", placebo_effect)
    if max_effect <= 0:
        raise SettingsError("max_effect", f"must be positive (an increasing dose-response), got {max_effect:g}")
    ratio = np.ones(d.size) if allocation is None else _allocation(allocation, d.size)
    if target_power is not None:
        target_power = _real("target_power", target_power)
        if not 0.0 < target_power < 1.0:
            raise SettingsError("target_power", f"must be in (0, 1), got {target_power:g}")
    scal, off = add_args(d)
    means = np.stack([mean_response(c, d, placebo_effect, max_effect, scal, off) for c in cands])
    mu = shapes(cands, d)
    labels = tuple(c.label for c in cands)

    def evaluate(sz: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        S = sigma**2 * np.diag(1.0 / sz)
        contrasts = optimal_contrasts(mu, S)
        corr = contrast_correlation(contrasts, S)
        df = float(sz.sum() - d.size)
        crit = critical_value(corr, alpha, df)
        return contrasts, corr, crit, power_mct(contrasts, S, means, df, crit)

    contrasts, corr, crit, power = evaluate(sizes)
    n_best = power_best = None
    if target_power is not None:
        summary = np.min if criterion == "min" else np.mean
        scaled = ratio / ratio.min()

        def at(m: int) -> np.ndarray:
            return evaluate(np.round(m * scaled))[3]

        n_best = smallest_n(lambda m: float(summary(at(m))), target_power)
        power_best = dict(zip(labels, map(float, at(n_best)), strict=True))
    return DosePower(tuple(map(float, d)), labels, tuple(int(s) for s in sizes), sigma, placebo_effect, max_effect,
                     alpha, tuple(tuple(map(float, col)) for col in contrasts.T),
                     tuple(tuple(map(float, row)) for row in corr), float(sizes.sum() - d.size), float(crit),
                     dict(zip(labels, map(float, power), strict=True)), target_power, criterion, n_best, power_best)


def _real(name: str, value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise SettingsError(name, f"expected a number, got {value!r}") from None
    if not math.isfinite(out) or isinstance(value, bool):
        raise SettingsError(name, f"expected a finite number, got {value!r}")
    return out


def _positive(name: str, value: Any) -> float:
    out = _real(name, value)
    if out <= 0:
        raise SettingsError(name, f"must be positive, got {out:g}")
    return out


def _doses(doses: Sequence[float]) -> np.ndarray:
    try:
        d = np.array([_real("doses", v) for v in doses], dtype=float)
    except TypeError:
        raise SettingsError("doses", f"expected a sequence of numbers, got {doses!r}") from None
    if d.size < 3 or d[0] != 0.0 or np.any(np.diff(d) <= 0):
        raise SettingsError("doses", "expected placebo 0 and at least two larger doses, ascending without repeats")
    return d


def _sizes(n: int | Sequence[int], k: int) -> np.ndarray:
    values = [n] if np.ndim(n) == 0 else list(n)  # type: ignore[arg-type]
    out = np.array([_real("n", v) for v in values])
    if out.size not in (1, k) or np.any(out < 2) or np.any(out != np.round(out)):
        raise SettingsError("n", f"expected one whole number >= 2, or one per dose ({k}), got {n!r}")
    return np.broadcast_to(out, (k,)).copy()


def _allocation(allocation: Sequence[float], k: int) -> np.ndarray:
    out = np.array([_positive("allocation", v) for v in allocation])
    if out.size != k:
        raise SettingsError("allocation", f"expected one ratio per dose ({k}), got {out.size}")
    return out
