"""A real trial's data analysed by the simulator's own analysis code, in one call: :func:`analyze`.

>>> import cbcp_sim
>>> result = cbcp_sim.analyze("trial.csv", method="ancova", visit=12)   # doctest: +SKIP
>>> cbcp_sim.analyze("pilot.csv", method="ancova", control="sham",       # doctest: +SKIP
...                  columns={"id": "patient", "arm": "group", "visit": "month", "value": "gmfm66"})
>>> result.estimate, result.confidence_interval()                       # doctest: +SKIP
>>> result.confidence_interval(0.9)                                     # doctest: +SKIP
>>> print(result)                                                       # doctest: +SKIP

The data are long format (one row per child and visit; see :mod:`cbcp_sim.analysis.long_data`), as a pandas
DataFrame or the path of a CSV file. ``cbcp-sim analyze`` is this function with options for its parameters.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np

from cbcp_sim.analysis import ANALYSES, CROSSOVER, LONGITUDINAL, SINGLE_ARM, Estimates, accepts, analyse, infer
from cbcp_sim.analysis import tipping_point as delta_adjustment
from cbcp_sim.analysis.long_data import NUMBERED_ARMS, column_names, covariate_names, read_long
from cbcp_sim.analysis.mmrm import BASELINES, DF_METHODS
from cbcp_sim.errors import SettingsError

if TYPE_CHECKING:
    import pandas as pd

    from cbcp_sim.analysis.dose_data import DoseAnalysis

#: The compared quantity: the change from baseline, or the visit's score.
ENDPOINTS = ("change", "final")
#: The fields of :meth:`AnalysisResult.to_json`, in order (a public interface: ``cbcp-sim analyze --json``).
JSON_FIELDS = ("method", "visit", "n_subjects", "estimate", "se", "df", "ci_low", "ci_high", "p", "alpha", "level")


@dataclass(frozen=True)
class AnalysisResult:
    """The treated arm minus the control (arm 1 minus arm 0) at one visit of a real trial, two-sided.

    ``df`` is infinite for analyses with a normal interval (the rank and responder analyses); those give
    their own p-value, the others a t test's.
    """

    method: str                     #: the analysis asked for (``change`` or a key of ``ANALYSES``)
    visit: float                    #: months after baseline of the compared visit
    n_subjects: int                 #: children analysed
    estimate: float                 #: treated minus control (GMFM-66 points, or a difference in proportions)
    se: float                       #: standard error of the estimate
    df: float                       #: degrees of freedom of the t interval (inf: normal)
    p: float                        #: two-sided p-value of no difference
    alpha: float                    #: the default interval is 1 - alpha
    endpoint: str = "change"        #: change from baseline or the visit's score (``final``)
    covariates: tuple[str, ...] = ()  #: the per-child columns adjusted for
    mcid: float | None = None       #: the responder threshold given (None: the analysis's default)
    source: str = ""                #: the CSV file analysed ("" for a DataFrame)
    arms: tuple[str, str] = NUMBERED_ARMS  #: the labels of the control and the treated arm
    trial: str | None = None        #: the trial analysed, from data of several trials
    #: With ``tipping_point=True``: the smallest delta (outcome units) by which the treated children missing at the
    #: visit would have to score below what MAR predicts for the two-sided test to stop rejecting
    #: (:mod:`cbcp_sim.analysis.tipping_point`); inf if no treated child is missing, NaN if the test does not
    #: reject in favour of the treated arm. None: not asked.
    tipping_point: float | None = None
    missing_share: float | None = None  #: with the tipping point: the treated arm's share missing at the visit

    @property
    def level(self) -> float:
        """Confidence level of the default interval, ``1 - alpha``."""
        return round(1.0 - self.alpha, 12)

    def confidence_interval(self, level: float | None = None) -> tuple[float, float]:
        """Two-sided interval ``(low, high)`` for the estimate at ``level`` (default ``1 - alpha``), from the
        estimate, its SE and df as every simulated replicate's interval is made."""
        if level is None:
            alpha = self.alpha
        else:
            level = _real("level", level)
            if not 0.0 < level < 1.0:
                raise SettingsError("level", f"must be in (0, 1), got {level:g}")
            alpha = 1.0 - level
        est = Estimates(estimate=np.array([self.estimate]), se=np.array([self.se]), df=np.array([self.df]))
        ci = infer(est, alpha=alpha, sides=2)
        return float(ci.ci_low[0]), float(ci.ci_high[0])

    def to_json(self) -> dict[str, Any]:
        """The ``cbcp-sim analyze --json`` object: exactly :data:`JSON_FIELDS`; an infinite df is None (null)."""
        low, high = self.confidence_interval()
        out = {"method": self.method, "visit": self.visit, "n_subjects": self.n_subjects, "estimate": self.estimate,
               "se": self.se, "df": self.df, "ci_low": low, "ci_high": high, "p": self.p, "alpha": self.alpha,
               "level": self.level}
        out = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in out.items()}
        if self.tipping_point is not None:
            out["tipping_point"] = {"delta": self.tipping_point if math.isfinite(self.tipping_point) else None,
                                    "status": _tipping_status(self.tipping_point), "missing_share": self.missing_share}
        return out

    def __str__(self) -> str:
        low, high = self.confidence_interval()
        df = self.df
        rows = [("method", self.method), ("visit", f"{self.visit:g} months"), ("n_subjects", str(self.n_subjects)),
                ("estimate", f"{self.estimate:.4f}"), ("se", f"{self.se:.4f}"),
                ("df", f"{df:.0f}" if not math.isfinite(df) or df == round(df) else f"{df:.2f}"),
                (f"{100.0 * self.level:g}% CI", f"{low:.4f} to {high:.4f}"), ("p", f"{self.p:.4g}")]
        if self.tipping_point is not None:
            missing = f"{100 * self.missing_share:.1f}% of the treated arm missing"
            status = _tipping_status(self.tipping_point)
            rows.append(("tipping point", f"{self.tipping_point:.4f} ({status}; {missing})"
                         if math.isfinite(self.tipping_point) else f"{status} ({missing})"))
        width = max(len(key) for key, _ in rows)
        control, treated = self.arms
        compared = ("arm 1 minus arm 0" if self.arms == NUMBERED_ARMS else f"{treated} minus {control}")
        where = f"{self.source or ''}{f' (trial {self.trial})' if self.trial is not None else ''}"
        title = f"{where}: {compared} (two-sided)" if where else f"{compared} (two-sided)"
        return "\n".join([title, *(f"  {k:<{width}}  {v}" for k, v in rows)])


def _tipping_status(delta: float) -> str:
    """The tipping point in words: ``finite`` (the delta at which significance is lost), ``infinite`` (no treated
    child missing), ``not significant`` (nothing to tip: the test does not reject in favour of the treated arm)."""
    return "finite" if math.isfinite(delta) else "infinite" if math.isinf(delta) else "not significant"


def methods() -> tuple[str, ...]:
    """The methods :func:`analyze` takes, sorted: ``change``, ``mcpmod`` (dose finding) and every analysis of two
    parallel arms in ``ANALYSES`` now (crossover and single-arm analyses need a design)."""
    return tuple(sorted([*_registry(), "change", "mcpmod"]))


def analyze(data: str | PathLike[str] | pd.DataFrame, *, method: str, visit: float | None = None,
            covariates: str | Iterable[str] | None = (), endpoint: str | None = None, alpha: float | None = None,
            mcid: float | None = None, columns: Mapping[str, str] | None = None, control: str | float | None = None,
            trial: str | float | None = None, mmrm_df: str | None = None,
            mmrm_baseline: str | None = None, tipping_point: bool = False, models: str | None = None,
            dose: str | None = None, response: str | None = None, baseline: str | None = None,
            delta: float | None = None, ed: float | None = None,
            selection: str | None = None) -> AnalysisResult | DoseAnalysis:
    """Fit analysis ``method`` to a real trial's long-format data and compare the treated arm with the control
    at one visit; or, with ``method="mcpmod"``, run MCP-Mod on a dose-finding trial's data, one row per child
    (:func:`~cbcp_sim.analysis.dose_data.analyze_dose`: the parameters ``models``, ``dose``, ``response``,
    ``baseline``, ``alpha``, ``delta``, ``ed`` and ``selection``, and no other).

    Parameters
    ----------
    data
        A pandas DataFrame, or the path of a CSV file, with columns ``id``, ``arm`` (0 control, 1 treated, or two
        labels with ``control``), ``visit`` (months after baseline, >= 0), ``baseline`` (the child's baseline
        score on every row of the child) and ``value``; one row per child and visit, a missed visit an absent
        row or an empty value. A child's row at visit 0 gives its baseline where the data have no baseline
        column or the child's cell is empty (where both are given they must agree). Further columns are ignored
        unless named in ``covariates``: a file is read a chunk of rows at a time, keeping only the columns used.
        Children without a baseline are left out. At most :data:`~cbcp_sim.analysis.long_data.MAX_ROWS` rows
        (1,000,000, of the trial chosen) are read. See :mod:`cbcp_sim.analysis.long_data`.
    method
        ``change`` (Student's t-test of the change from baseline) or an analysis of :data:`ANALYSES` for two
        parallel arms (``ttest``, ``welch``, ``ancova``, ``mmrm``, ``wilcoxon``, ``fisher``, ``chisquare``).
    visit
        Months after baseline of the compared visit, one of the data's visits (default: the last).
    covariates
        Per-child numeric columns to adjust for: names, or one text of names separated by commas. Only
        analyses that take covariates (``ancova``, ``mmrm``).
    endpoint
        ``change`` (from baseline) or ``final`` (the visit's score); default ``change``. ``ancova`` gives
        the same estimate either way.
    alpha
        Two-sided level, in (0, 1): the result's interval is ``1 - alpha`` (default 0.05). ``mcpmod``: the
        one-sided level of the multiple contrast test, in (0, 0.5) (default 0.025).
    mcid
        ``fisher`` and ``chisquare`` only: a responder's change (or score) is at least this many points
        (default the analyses' own, 1.5).
    columns
        The data's own column names, by role: a mapping with any of the keys ``id``, ``arm``, ``visit``,
        ``value``, ``baseline`` and ``trial``, e.g. ``{"id": "patient", "arm": "group", "visit": "month",
        "value": "gmfm66", "baseline": "gmfm66_0"}``; a role left out is the column of its own name.
    control
        The control arm's label when the arms are labelled as text (``"sham"``): the one other label is the
        treated arm, and a third label is an error. Without it the arms must be 0 (control) and 1 (treated).
    trial
        In data of several trials (a ``trial`` column, as ``cbcp-sim trials`` writes), the label of the one to
        analyse; data holding more than one trial need it.
    mmrm_df
        ``mmrm`` only: ``kenward_roger`` (default; the Kenward-Roger adjusted SE) or ``satterthwaite`` (the
        model-based SE); both with Satterthwaite's df (see :mod:`cbcp_sim.analysis.mmrm`).
    mmrm_baseline
        ``mmrm`` only: ``covariate`` (default), ``response`` (cLDA), ``response_unconstrained`` or ``none``, as
        the scenario key ``analysis.mmrm_baseline``; with ``response*`` children seen at baseline only count.
    tipping_point
        ``ancova`` and ``mmrm`` (baseline a covariate) only: also the tipping point of the two-sided test, the
        delta of the delta-adjusted sensitivity analysis at which it stops rejecting
        (:mod:`cbcp_sim.analysis.tipping_point`).
    models, dose, response, baseline, delta, ed, selection
        ``mcpmod`` only (see :func:`~cbcp_sim.analysis.dose_data.analyze_dose`): the candidate models
        (required; ``"emax:1,sigEmax:3:3,linear"``), the columns of the dose (default ``dose``), the response
        (default ``response``) and a baseline to adjust for (default none), the effect over placebo defining
        the target dose (default 1.5), the level ``p`` of ``ED_p`` (default 0.5) and the curve: ``"aic"``
        (default, the smallest gAIC) or ``"average"`` (gAIC weights).

    Returns
    -------
    AnalysisResult
        The estimate, SE, df and p-value of the treated arm minus the control, with
        :meth:`~AnalysisResult.confidence_interval`.
    DoseAnalysis
        With ``method="mcpmod"``: the test, the selected model, its parameters and the target dose.

    Raises
    ------
    SettingsError
        Naming the parameter at fault (``data``, ``data.<column>``, ``method``, ``visit``, ``covariates``,
        ``endpoint``, ``alpha``, ``mcid``, ``columns``, ``columns.<role>``, ``control``, ``trial``, ``mmrm_df``,
        ``mmrm_baseline``, ``tipping_point``): a bad value,
        bad data or more than ``MAX_ROWS`` rows, fewer than two children per arm with a baseline and a value at
        the visit, or a fit that fails (no variation left, collinear covariates).
    """
    registry = _registry()
    if not isinstance(method, str) or method not in (*registry, "change", "mcpmod"):
        raise SettingsError("method", f"expected one of {', '.join(methods())}, got {method!r}")
    dose_options = {"models": models, "dose": dose, "response": response, "baseline": baseline, "delta": delta,
                    "ed": ed, "selection": selection}
    if method == "mcpmod":
        others = {"visit": visit, "covariates": covariates or None, "endpoint": endpoint, "mcid": mcid,
                  "columns": columns, "control": control, "trial": trial, "mmrm_df": mmrm_df,
                  "mmrm_baseline": mmrm_baseline, "tipping_point": tipping_point or None}
        given = next((key for key, value in others.items() if value is not None), None)
        if given == "columns" and isinstance(columns, Mapping) and columns:
            given = f"columns.{next(iter(columns))}"
        if given is not None:
            raise SettingsError(given, "applies to the analyses of two arms, not mcpmod (whose parameters are "
                                       "models, dose, response, baseline, alpha, delta, ed and selection)")
        if models is None:
            raise SettingsError("models", "mcpmod needs the candidate models, such as 'emax:1,sigEmax:3:3,linear'")
        from cbcp_sim.analysis.dose_data import analyze_dose

        chosen = {key: value for key, value in dose_options.items() if value is not None}
        return analyze_dose(data, alpha=0.025 if alpha is None else alpha, **chosen)
    given = next((key for key, value in dose_options.items() if value is not None), None)
    if given is not None:
        raise SettingsError(given, f"applies to method mcpmod, not {method}")
    alpha = 0.05 if alpha is None else alpha
    name = "ttest" if method == "change" else method
    if endpoint is not None and endpoint not in ENDPOINTS:
        raise SettingsError("endpoint", f"expected one of {', '.join(ENDPOINTS)}, got {endpoint!r}")
    if method == "change" and endpoint == "final":
        raise SettingsError("endpoint", "method change is the t-test of the change from baseline; for the visit's "
                                        "score use method ttest with endpoint final")
    alpha = _real("alpha", alpha)
    if not 0.0 < alpha < 1.0:
        raise SettingsError("alpha", f"must be in (0, 1), got {alpha:g}")
    names = covariate_names(covariates, column_names(columns))
    if names and "covariates" not in accepts(name):
        adjusting = [k for k in registry if "covariates" in accepts(k)]
        raise SettingsError("covariates", f"the {method} analysis does not adjust for covariates "
                                          f"(those that do: {', '.join(adjusting) or 'none yet'})")
    if mcid is not None:
        if "mcid" not in accepts(name):
            responders = [k for k in registry if "mcid" in accepts(k)]
            raise SettingsError("mcid", f"applies to the responder analyses ({', '.join(responders)}), not {method}")
        mcid = _real("mcid", mcid)
        if not (math.isfinite(mcid) and mcid > 0.0):
            raise SettingsError("mcid", f"must be a finite number of points above 0, got {mcid:g}")
    options = {"mmrm_df": (mmrm_df, DF_METHODS), "mmrm_baseline": (mmrm_baseline, BASELINES)}
    for key, (value, allowed) in options.items():
        if value is None:
            continue
        if key not in accepts(name):
            raise SettingsError(key, f"applies to the mmrm analysis, not {method}")
        if value not in allowed:
            raise SettingsError(key, f"expected one of {', '.join(allowed)}, got {value!r}")
    if not isinstance(tipping_point, bool):
        raise SettingsError("tipping_point", f"expected True or False, got {tipping_point!r}")
    if tipping_point and (name not in delta_adjustment.ANALYSES or (mmrm_baseline or "covariate") != "covariate"):
        which = f"mmrm with mmrm_baseline {mmrm_baseline}" if name == "mmrm" else method
        raise SettingsError("tipping_point", f"applies to {' and '.join(delta_adjustment.ANALYSES)} (mmrm with "
                                             f"baseline a covariate), not {which}")
    month = None if visit is None else _real("visit", visit)

    long = read_long(data, names, columns=columns, control=control, trial=trial)
    index = long.months.size - 1 if month is None else long.visit_index(month)
    month = float(long.months[index])
    observed = long.observed & long.observed[..., :1]  # children without a baseline are left out
    at_visit = observed[0, :, index]
    counts = int(np.sum(at_visit & ~long.treated)), int(np.sum(at_visit & long.treated))
    if min(counts) < 2:
        last = " (the last visit)" if visit is None else ""
        raise SettingsError("visit", f"at {month:g} months{last} {counts[0]} control and {counts[1]} treated "
                                     f"children of {long.origin} have a baseline and an observed value; at least 2 "
                                     "per arm are needed")
    first = 0 if (mmrm_baseline or "").startswith("response") else 1  # baseline a response: baseline-only count
    n_subjects = int(observed[0, :, first:].any(axis=1).sum()) if name in LONGITUDINAL else sum(counts)
    context = {"endpoint": endpoint or "change", "covariates": long.covariates if names else None, "mcid": mcid,
               "mmrm_df": mmrm_df, "mmrm_baseline": mmrm_baseline}
    tipped = None
    try:
        if tipping_point:
            est, adjusted = delta_adjustment.delta_adjusted(name, long.values, observed, long.treated, index,
                                                            **context)
            tipped = (float(delta_adjustment.tipping_point(est, adjusted, alpha=alpha, sides=2)[0]),
                      float(adjusted.missing[0]))
        else:
            est = analyse(name, long.values, observed, long.treated, index, **context)
    except np.linalg.LinAlgError as exc:
        raise SettingsError("method", f"{method} could not be fitted at {month:g} months: {exc}") from None
    result = infer(est, alpha=alpha, sides=2)
    if result.failed[0]:
        raise SettingsError("method", f"{method} could not be fitted at {month:g} months (no finite estimate and "
                                      "standard error: no variation left, or collinear covariates)")
    return AnalysisResult(method=method, visit=month, n_subjects=n_subjects, estimate=float(est.estimate[0]),
                          se=float(est.se[0]), df=float(est.df[0]), p=float(result.p[0]), alpha=alpha,
                          endpoint=endpoint or "change", covariates=names, mcid=mcid, source=long.source,
                          arms=long.arms, trial=long.trial, tipping_point=None if tipped is None else tipped[0],
                          missing_share=None if tipped is None else tipped[1])


def _registry() -> dict[str, Any]:
    """The analyses of two parallel arms, read from ``ANALYSES`` at call time (one registered later counts)."""
    return {k: fn for k, fn in ANALYSES.items() if k not in CROSSOVER | SINGLE_ARM}


def _real(name: str, value: Any) -> float:
    """``value`` as a float if it is a real number (not a bool), else a SettingsError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SettingsError(name, f"expected a number, got {value!r}")
    return float(value)
