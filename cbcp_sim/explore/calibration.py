"""The natural history fitted to a centre's own registry: :func:`calibrate`, and the ``natural_history`` keys that
make the simulator draw children from the fitted model.

>>> import cbcp_sim
>>> cal = cbcp_sim.calibrate("registry.csv")            # doctest: +SKIP
>>> print(cal)                                          # doctest: +SKIP
>>> open("fitted.toml", "w").write(cal.toml())          # doctest: +SKIP

``cbcp-sim run default --set-file fitted.toml`` then simulates the trial on the fitted natural history. The fit
(:mod:`cbcp_sim.analysis.growth_fit`) has one random limit on the GMFM-66 scale and a residual around each child's
curve; the simulator's limit is normal on the logit scale (so that it stays inside 0-100), and its ``limit`` and
``limit_sd`` are chosen so that its children's limits have the fitted mean and SD by level (the median lies above
the mean near the ceiling: for level I a mean of 85.6 is a median of 87.7). The simulator's residual is the
fluctuation (``occasion_sd``) and the measurement error (``sem``) together, so ``occasion_sd`` is the fitted
residual SD with the SEM taken out in quadrature. Levels without children in the registry keep their defaults.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import optimize

from cbcp_sim.analysis.growth_fit import (
    DECLINING,
    METHODS,
    MODELS,
    Estimate,
    GrowthFit,
    LevelFit,
    fit,
    json_number,
    visual_check,
)
from cbcp_sim.analysis.registry import Registry, read_registry
from cbcp_sim.errors import SettingsError
from cbcp_sim.explore.centiles import cohort
from cbcp_sim.models import natural_history
from cbcp_sim.scenario import MAX_LIMIT_LOGIT_SD, NaturalHistory
from cbcp_sim.scenario.spec import inline_toml
from cbcp_sim.vocabulary import DECLINE_END_AGE, GMFCS_LEVELS

if TYPE_CHECKING:
    import pandas as pd

#: The fields of :meth:`Calibration.to_json`, in order (a public interface: ``cbcp-sim calibrate --json``).
JSON_FIELDS = ("model", "method", "levels", "sd_limit", "sd_limit_se", "sd_lograte", "sd_lograte_se", "corr",
               "corr_se", "residual_sd", "residual_sd_se", "loglik", "aic", "bic", "n_parameters", "n_children",
               "n_scores", "converged", "iterations", "message", "comparison", "vpc_coverage", "natural_history",
               "notes", "source")
#: Simulated registries in the visual predictive check.
VPC_SIMULATIONS = 200


@dataclass(frozen=True)
class Calibration:
    """A growth model fitted to a registry, the models compared, the visual predictive check, and the
    ``natural_history`` keys of the fitted model."""

    fit: GrowthFit
    comparison: tuple[GrowthFit, ...]   #: every model fitted (the chosen one included), in :data:`MODELS` order
    registry: Registry
    natural_history: dict[str, Any]     #: scenario keys of the ``[natural_history]`` table
    notes: tuple[str, ...]              #: what the keys could not carry over as fitted
    vpc: pd.DataFrame                   #: observed and simulated centiles by level and age band
    seed: int

    @property
    def vpc_coverage(self) -> float:
        """Share of the observed centiles inside the 90% band of the simulated ones."""
        return float(((self.vpc.observed >= self.vpc.low) & (self.vpc.observed <= self.vpc.high)).mean())

    def to_json(self) -> dict[str, Any]:
        f = self.fit
        out = {"model": f.model, "method": f.method, "levels": [_level_json(lv) for lv in f.levels]}
        for name in ("sd_limit", "sd_lograte", "corr", "residual_sd"):
            est = getattr(f, name).to_json()
            out[name], out[f"{name}_se"] = est["value"], est["se"]
        out.update(loglik=json_number(f.loglik), aic=json_number(f.aic), bic=json_number(f.bic),
                   n_parameters=f.n_parameters, n_children=f.n_children, n_scores=f.n_scores, converged=f.converged,
                   iterations=f.iterations, message=f.message,
                   comparison=[{"model": c.model, "loglik": json_number(c.loglik), "aic": json_number(c.aic),
                                "bic": json_number(c.bic), "n_parameters": c.n_parameters, "converged": c.converged}
                               for c in self.comparison],
                   vpc_coverage=self.vpc_coverage, natural_history=self.natural_history, notes=list(self.notes),
                   source=self.registry.source)
        return {key: out[key] for key in JSON_FIELDS}

    def toml(self) -> str:
        """A ``[natural_history]`` table a scenario can hold, or ``--set-file`` can apply, with its provenance as
        comments."""
        f = self.fit
        where = self.registry.source or "a DataFrame"
        lines = [f"# natural_history fitted by cbcp-sim calibrate to {where}: {f.n_children} children, "
                 f"{f.n_scores} scores;",
                 f"# {f.model} model, maximum likelihood ({_method_text(f)}), log-likelihood {f.loglik:.2f}, "
                 f"AIC {f.aic:.2f}, {'converged' if f.converged else 'NOT CONVERGED: ' + f.message}.",
                 *[f"# {note}" for note in self.notes], "[natural_history]"]
        lines += [f"{key} = {inline_toml(value)}" for key, value in self.natural_history.items()]
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        f = self.fit
        head = (f"Natural history fitted to {self.registry.source or 'a DataFrame'}: {f.n_children} children, "
                f"{f.n_scores} scores; {f.model} model by maximum likelihood ({_method_text(f)})")
        rows = ["  GMFCS  children  scores   limit (SE)      age-90, years (SE)"
                + ("   peak age        decline (SE)" if f.model == "peak_decline" else "")]
        for lv in f.levels:
            row = (f"  {lv.gmfcs:>5}  {lv.n_children:>8}  {lv.n_scores:>6}   {_est(lv.limit, 1):<14}  "
                   f"{_est(lv.age90, 2):<18}")
            if lv.peak_age is not None:
                row += f"   {lv.peak_age:<14.2f}  {_est(lv.decline, 1)}"
            rows.append(row.rstrip())
        variance = (f"  between children: SD of limit {_est(f.sd_limit, 2)}, SD of log rate {_est(f.sd_lograte, 3)}, "
                    f"correlation {_est(f.corr, 2)}; residual SD {_est(f.residual_sd, 2)}")
        models = "  models: " + "; ".join(f"{c.model} log-likelihood {c.loglik:.2f}, AIC {c.aic:.2f}, BIC {c.bic:.2f}"
                                          + ("" if c.converged else " (not converged)") for c in self.comparison)
        status = (f"  converged in {f.iterations} iterations" if f.converged
                  else f"  NOT CONVERGED after {f.iterations} iterations: {f.message}")
        check = (f"  visual predictive check: {self.vpc_coverage:.0%} of observed centiles (10th, 50th, 90th by level "
                 f"and age band) inside the 90% band of {VPC_SIMULATIONS} simulated registries")
        notes = [f"  note: {note}" for note in self.notes]
        return "\n".join([head, *rows, variance, models, status, check, *notes])


def calibrate(data: str | PathLike[str] | pd.DataFrame, *, columns: Mapping[str, str] | None = None,
              age_unit: str = "years", model: str | None = None, method: str = "agq", seed: int = 1,
              progress: Callable[[str, int, float], None] | None = None) -> Calibration:
    """Fit the natural history to registry ``data`` (a CSV file or a DataFrame; columns and errors as
    :mod:`cbcp_sim.analysis.registry`).

    ``model``: ``stable_limit`` or ``peak_decline`` (:data:`~cbcp_sim.analysis.growth_fit.MODELS`); by default
    both are fitted and the one of lower AIC kept (the stable limit alone when no child is of level III-V).
    ``method``: ``agq`` (exact marginal likelihood, default) or ``nlme`` (R nlme's Lindstrom-Bates fit).
    ``seed``: of the visual predictive check's simulations. ``progress(model, iteration, loglik)`` is called as
    the fit goes.
    """
    if model is not None and model not in MODELS:
        raise SettingsError("model", f"expected one of {', '.join(MODELS)}, got {model!r}")
    if method not in METHODS:
        raise SettingsError("method", f"expected one of {', '.join(METHODS)}, got {method!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SettingsError("seed", f"expected a whole number >= 0, got {seed!r}")
    registry = read_registry(data, columns=columns, age_unit=age_unit)
    counts = np.bincount(registry.gmfcs, minlength=6)[1:]
    small = [level for level, n in zip(GMFCS_LEVELS, counts, strict=True) if 0 < n < 3]
    if small:
        raise SettingsError("data", f"GMFCS level {small[0]} has {counts[small[0] - 1]} children in "
                                    f"{registry.source or 'the DataFrame'}: at least 3 per level are needed")
    declining = bool(np.isin(registry.gmfcs, DECLINING).any())
    if model == "peak_decline" and not declining:
        raise SettingsError("model", "peak_decline needs children of GMFCS level III, IV or V")
    wanted = (model,) if model else tuple(m for m in MODELS if m == "stable_limit" or declining)
    fits = []
    for name in wanted:
        step = None if progress is None else (lambda i, ll, name=name: progress(name, i, ll))
        fits.append(fit(registry, name, method=method, progress=step))
    chosen = min(fits, key=lambda f: (not f.converged, f.aic))
    keys, notes = natural_history_keys(chosen)
    vpc = visual_check(chosen, registry, np.random.default_rng(seed), VPC_SIMULATIONS)
    return Calibration(fit=chosen, comparison=tuple(fits), registry=registry, natural_history=keys,
                       notes=tuple(notes), vpc=vpc, seed=seed)


def simulated_registry(nh: NaturalHistory, n_children: int, visits: int, mix: Sequence[float],
                       ages: tuple[float, float], rng: np.random.Generator) -> pd.DataFrame:
    """A registry in the columns :func:`calibrate` reads (child, age, gmfcs, gmfm66), simulated by the natural
    history ``nh``: ``n_children`` untreated children (numbered from 1) of GMFCS levels drawn with shares ``mix``
    (I-V), first scored at an age uniform on ``ages`` (years), then yearly, ``visits`` scores each."""
    import pandas as pd

    gmfcs = rng.choice(len(GMFCS_LEVELS), n_children, p=mix) + 1
    first = rng.uniform(*ages, n_children)
    scores = cohort(nh, gmfcs, first, np.arange(visits) * 12.0, rng).scores
    return pd.DataFrame({"child": np.repeat(np.arange(1, n_children + 1), visits),
                         "age": (first[:, None] + np.arange(visits)).ravel(),
                         "gmfcs": np.repeat(gmfcs, visits), "gmfm66": scores.ravel()})


def natural_history_keys(f: GrowthFit) -> tuple[dict[str, Any], list[str]]:
    """The ``natural_history`` keys of fit ``f`` (levels not fitted keep the defaults), and notes on what had to
    be moved into the simulator's ranges."""
    nh = NaturalHistory()
    keys = {name: list(getattr(nh, name)) for name in ("limit", "age90", "limit_sd", "peak_age", "decline")}
    notes = []

    def put(name: str, index: int | None, value: float, what: str) -> None:
        """Key ``name`` (its ``index``-th value) set to ``value`` moved into the key's declared range."""
        lo, hi = declared_range(name)
        kept = min(max(value, lo), hi)
        if kept != value:
            notes.append(f"{what} {value:.4g} is outside the simulator's range [{lo:g}, {hi:g}]: {kept:g} used")
        if index is None:
            keys[name] = round(kept, 4)
        else:
            keys[name][index] = round(kept, 4)

    lowest, highest = declared_range("limit")
    for lv in f.levels:
        g = lv.gmfcs - 1
        median, spread = simulator_limit(lv.limit.value, f.sd_limit.value)
        mean, sd = natural_history.limit_moments(median, spread)
        if abs(mean - lv.limit.value) > 0.01 or abs(sd - f.sd_limit.value) > 0.01:
            notes.append(f"GMFCS {lv.gmfcs}: the simulator's limits cannot have mean {lv.limit.value:.2f} and SD "
                         f"{f.sd_limit.value:.2f} inside {lowest:g}-{highest:g}; mean {float(mean):.2f} and SD "
                         f"{float(sd):.2f} used")
        keys["limit"][g], keys["limit_sd"][g] = round(median, 4), round(spread, 4)
        put("age90", g, lv.age90.value, f"GMFCS {lv.gmfcs} age-90")
        if lv.peak_age is not None:
            keys["peak_age"][g] = lv.peak_age
            put("decline", g, lv.decline.value, f"GMFCS {lv.gmfcs} decline")
        else:
            keys["peak_age"][g], keys["decline"][g] = DECLINE_END_AGE, 0.0
    put("rate_sd_log", None, f.sd_lograte.value, "SD of the log rate")
    put("limit_rate_corr", None, f.corr.value, "limit-rate correlation")
    occasion = math.sqrt(max(f.residual_sd.value**2 - nh.sem**2, 0.0))
    if f.residual_sd.value < nh.sem:
        notes.append(f"residual SD {f.residual_sd.value:.3g} is below the SEM {nh.sem:g}: occasion_sd 0 used")
    put("occasion_sd", None, occasion, "occasion SD")
    missing = [lv for lv in GMFCS_LEVELS if f.level(lv) is None]
    if missing:
        notes.append(f"GMFCS {', '.join(map(str, missing))}: no children in the registry, defaults kept")
    return {fd.name: keys[fd.name] for fd in dataclasses.fields(NaturalHistory) if fd.name in keys}, notes


def declared_range(name: str) -> tuple[float, float]:
    """The range the scenario declares for ``natural_history.<name>`` (each value's, for a key per level)."""
    return next(fd for fd in dataclasses.fields(NaturalHistory) if fd.name == name).metadata["check"].bounds


def simulator_limit(mean: float, sd: float) -> tuple[float, float]:
    """The simulator's ``limit`` (median) and ``limit_sd`` whose logit-normal limits have this ``mean`` and ``sd``
    (points) over children, as the fit's normal random limit has; the nearest reachable pair where none has."""
    def cap(median: float) -> float:
        return MAX_LIMIT_LOGIT_SD * median * (1.0 - median / 100.0)

    def misfit(x: np.ndarray) -> np.ndarray:
        m, s = natural_history.limit_moments(x[0], x[1] * cap(x[0]))
        return np.array([m - mean, s - sd])

    start = np.clip(mean, 2.0, 98.0)
    guess = np.array([start, np.clip(sd / cap(start), 0.0, 1.0)])
    lowest, highest = declared_range("limit")
    x = optimize.least_squares(misfit, guess, bounds=([lowest, 0.0], [highest, 1.0]), xtol=1e-12, ftol=1e-12).x
    return float(x[0]), float(x[1] * cap(x[0]))


def _level_json(lv: LevelFit) -> dict[str, Any]:
    out = {"gmfcs": lv.gmfcs, "n_children": lv.n_children, "n_scores": lv.n_scores}
    for name in ("limit", "log_rate", "age90", "decline"):
        est = getattr(lv, name)
        if est is not None:
            out[name], out[f"{name}_se"] = est.to_json()["value"], est.to_json()["se"]
    if lv.peak_age is not None:
        out["peak_age"] = lv.peak_age
    return out


def _est(e: Estimate, digits: int) -> str:
    se = f"{e.se:.{digits}f}" if math.isfinite(e.se) else "n/a"
    return f"{e.value:.{digits}f} ({se})"


def _method_text(f: GrowthFit) -> str:
    return (f"adaptive Gauss-Hermite, {f.nodes} nodes" if f.method == "agq"
            else "Lindstrom-Bates approximation, as R nlme")


