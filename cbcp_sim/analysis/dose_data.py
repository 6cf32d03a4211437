"""A real dose-finding trial analysed by MCP-Mod: :func:`analyze_dose` (``cbcp_sim.analyze(..., method="mcpmod")``,
``cbcp-sim analyze FILE --method mcpmod``).

>>> res = analyze_dose("doses.csv", models="emax:1,emax:4,sigEmax:3:3,exponential:4,linear")  # doctest: +SKIP
>>> res.selected, res.params, res.td                                                         # doctest: +SKIP
>>> print(res)                                                                              # doctest: +SKIP

The data are one row per child (a CSV file or a pandas DataFrame): a ``dose`` column (dose per kg; the dose
groups are its distinct values, the smallest, usually 0, the placebo), a ``response`` column (e.g. the change
from baseline at the visit analysed) and optionally a ``baseline`` column to adjust for. A row with an empty
response (or, with ``baseline``, an empty baseline) is a child without an outcome and is left out.

The per-dose estimates and their covariance are those of a linear model, and MCP-Mod proceeds on them as
DoseFinding's ``MCPMod(doses, est, S = vc, type = "general", df = df, selModel = "AIC", Delta = delta)``
(:func:`~cbcp_sim.analysis.dose_finding.mcpmod`):

- without a baseline, the one-way ANOVA ``lm(response ~ factor(dose) - 1)``: the dose means, ``S`` the pooled
  variance times ``diag(1 / n_k)``, ``df = n - K``;
- with a baseline, the ANCOVA ``response ~ factor(dose) + baseline`` (a common slope): the adjusted dose means
  at the mean baseline of the children analysed, ``S`` their covariance, ``df = n - K - 1``.

Bad input raises :class:`~cbcp_sim.errors.SettingsError` naming the parameter at fault, as
:mod:`~cbcp_sim.analysis.long_data` does: ``data`` for the data as a whole, ``data.<column>`` for a bad value
(with the line of the file, or the index label of the DataFrame), ``dose``, ``response``, ``baseline`` for a
column that is not there, ``models``, ``alpha``, ``delta`` for a bad value.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import special

from cbcp_sim.analysis.dose_finding import SELECTIONS, mcpmod
from cbcp_sim.analysis.dose_models import FIT_PARAMETERS, parse_candidates
from cbcp_sim.analysis.dose_response import log_interval
from cbcp_sim.analysis.long_data import _from_csv, _from_frame, _numbers, _Wanted
from cbcp_sim.analysis.mcpmod import critical_value
from cbcp_sim.errors import SettingsError

if TYPE_CHECKING:
    import pandas as pd

#: The fields of :meth:`DoseAnalysis.to_json`, in order (a public interface: ``cbcp-sim analyze --method mcpmod
#: --json``).
JSON_FIELDS = ("method", "adjustment", "n_subjects", "doses", "n_per_dose", "estimates", "covariance", "df",
               "alpha", "models", "tstats", "p_adjusted", "critical_value", "reject", "selected", "params", "gaic",
               "delta", "td", "td_se", "selection", "weights", "ed_p", "ed", "ed_se", "interval_level", "td_interval",
               "ed_interval")
#: The parameters naming a column of the data, and the other parameters of the method.
COLUMN_PARAMETERS = ("dose", "response", "baseline")
PARAMETERS = (*COLUMN_PARAMETERS, "models", "delta", "ed", "selection")


@dataclass(frozen=True)
class DoseAnalysis:
    """MCP-Mod on a real trial's per-dose estimates (one-sided: larger doses better)."""

    doses: tuple[float, ...]          #: the dose groups, ascending (the first the placebo)
    n_per_dose: tuple[int, ...]       #: children analysed per dose
    estimates: tuple[float, ...]      #: per-dose means (with a baseline: adjusted to the mean baseline)
    covariance: tuple[tuple[float, ...], ...]  #: their covariance ``S`` (K x K)
    df: int                           #: residual degrees of freedom, ``n - K`` (``n - K - 1`` with a baseline)
    alpha: float                      #: one-sided level of the multiple contrast test
    models: tuple[str, ...]           #: the candidates, ``name:parameters``, in the order given
    tstats: tuple[float, ...]         #: contrast t statistic of each candidate
    p_adjusted: tuple[float, ...]     #: its multiplicity-adjusted p-value
    critical_value: float             #: the t a statistic must exceed: ``P(max T > c) = alpha`` under no effect
    reject: bool                      #: a dose-response signal: the smallest adjusted p-value is below alpha
    selected: str | None              #: the model of smallest gAIC among the significant ones (None: no signal)
    params: dict[str, float] | None   #: its fitted parameters, DoseFinding's names (None: no signal)
    gaic: dict[str, float]            #: gAIC of each model class with a significant contrast
    delta: float                      #: effect over placebo defining the target dose (outcome units)
    td: float | None                  #: the selected (or averaged) curve's target dose (None: none, or not reached)
    td_se: float | None               #: its delta-method SE (None where there is no target dose)
    selection: str = "aic"            #: ``aic`` (smallest gAIC) or ``average`` (gAIC-weighted curve)
    weights: dict[str, float] | None = None  #: gAIC weights of the significant models (None: no signal)
    ed_p: float = 0.5                 #: the level of ``ED_p`` (0.5: ED50)
    ed: float | None = None           #: ``ED_p`` of the selected (or averaged) curve (None: no signal)
    ed_se: float | None = None        #: its delta-method SE
    interval_level: float = 0.95      #: level of the intervals, ``1 - 2 alpha``
    td_interval: tuple[float, float] | None = None  #: the TD's log-scale delta-method interval
    ed_interval: tuple[float, float] | None = None  #: the ED_p's
    response: str = "response"        #: the response column analysed
    baseline: str | None = None       #: the baseline column adjusted for (None: ANOVA)
    source: str = ""                  #: the CSV file analysed ("" for a DataFrame)

    method = "mcpmod"

    @property
    def n_subjects(self) -> int:
        """Children analysed."""
        return sum(self.n_per_dose)

    @property
    def adjustment(self) -> str:
        """``anova`` (dose means) or ``ancova`` (adjusted for the baseline)."""
        return "anova" if self.baseline is None else "ancova"

    @property
    def se(self) -> tuple[float, ...]:
        """Standard error of each per-dose estimate."""
        return tuple(math.sqrt(self.covariance[k][k]) for k in range(len(self.doses)))

    def to_json(self) -> dict[str, Any]:
        """The ``cbcp-sim analyze --method mcpmod --json`` object: exactly :data:`JSON_FIELDS`."""
        out = {name: getattr(self, name) for name in JSON_FIELDS}
        for name in ("doses", "n_per_dose", "estimates", "models", "tstats", "p_adjusted"):
            out[name] = list(out[name])
        out["covariance"] = [list(row) for row in self.covariance]
        out["params"] = None if self.params is None else dict(self.params)
        out["gaic"] = dict(self.gaic)
        out["weights"] = None if self.weights is None else dict(self.weights)
        for name in ("td_interval", "ed_interval"):
            out[name] = None if out[name] is None else list(out[name])
        return out

    def __str__(self) -> str:
        how = (f"ANCOVA on {self.baseline} (common slope; means at the mean baseline)" if self.baseline
               else "one-way ANOVA (pooled variance)")
        where = f"{self.source}: " if self.source else ""
        lines = [f"{where}MCP-Mod, {self.response} by dose, {self.n_subjects} children in {len(self.doses)} dose "
                 f"groups; {how}, df {self.df}",
                 f"  {'dose':>8}  {'n':>4}  {'estimate':>10}  {'se':>8}"]
        for d, n, m, s in zip(self.doses, self.n_per_dose, self.estimates, self.se, strict=True):
            lines.append(f"  {d:>8g}  {n:>4d}  {m:>10.4f}  {s:>8.4f}")
        width = max(len("model"), *(len(m) for m in self.models))
        lines.append(f"Multiple contrast test (one-sided alpha {self.alpha:g}; critical value "
                     f"{self.critical_value:.4f})")
        lines.append(f"  {'model':<{width}}  {'t':>8}  {'adj. p':>8}")
        for m, t, p in zip(self.models, self.tstats, self.p_adjusted, strict=True):
            lines.append(f"  {m:<{width}}  {t:>8.4f}  {p:>8.4f}{'  *' if p < self.alpha else ''}")
        if not self.reject:
            lines.append("No dose-response signal: no model is selected and no target dose estimated.")
            return "\n".join(lines)
        fitted = ", ".join(f"{name} {g:.4f}" for name, g in self.gaic.items())
        lines.append(f"Dose-response signal. gAIC of the significant models: {fitted}")
        assert self.params is not None
        shown = ", ".join(f"{k} {v:.4g}" for k, v in self.params.items())
        lines.append(f"  selected   {self.selected} ({shown})")
        if self.selection == "average":
            assert self.weights is not None
            lines.append("  averaged   the fitted curves with gAIC weights " + ", ".join(
                f"{name} {w:.3f}" for name, w in self.weights.items()) + "; TD and ED of the averaged curve")
        level = f"{100 * self.interval_level:g}%"
        if self.td is None:
            lines.append(f"  TD         not reached: the fitted effect stays below {self.delta:g} over placebo")
        else:
            lines.append(f"  TD         {self.td:.4f}{_precision(self.td_se, self.td_interval, level)}: the dose "
                         f"with an effect of {self.delta:g} over placebo")
        if self.ed is not None:
            label = "ED" + format(100 * self.ed_p, "g")
            lines.append(f"  {label:<11}{self.ed:.4f}{_precision(self.ed_se, self.ed_interval, level)}: the dose "
                         f"with {100 * self.ed_p:g}% of the largest effect over the doses")
        return "\n".join(lines)


def _precision(se: float | None, interval: tuple[float, float] | None, level: str) -> str:
    """`` (SE s; 95% interval a to b)`` of a dose estimate (delta method), or nothing without an SE."""
    if se is None or interval is None:
        return ""
    return f" (SE {se:.4f}; {level} interval {interval[0]:.4f} to {interval[1]:.4f}, delta method, log scale)"


def analyze_dose(data: str | PathLike[str] | pd.DataFrame, *, models: str | Any, dose: str = "dose",
                 response: str = "response", baseline: str | None = None, alpha: float = 0.025,
                 delta: float = 1.5, ed: float = 0.5, selection: str = "aic") -> DoseAnalysis:
    """MCP-Mod on a real trial's data, one row per child: the multiple contrast test of the candidate ``models``
    (``"emax:1,sigEmax:3:3,linear"``, DoseFinding's parametrisation; see
    :func:`~cbcp_sim.analysis.dose_models.parse_candidates`), at one-sided level ``alpha``, on the per-dose
    estimates of the ANOVA (or, with ``baseline``, the ANCOVA) of column ``response`` on the dose groups of column
    ``dose``; if it rejects, the significant model classes fitted by generalised least squares, the one of
    smallest gAIC selected (``selection = "aic"``) or the fitted curves averaged with gAIC weights
    (``"average"``), and that curve's target dose (the smallest dose whose effect over placebo is ``delta``) and
    ``ED_p`` for ``p = ed`` (the smallest dose with that share of the curve's largest effect over the doses), each
    with its delta-method SE and ``1 - 2 alpha`` interval on the log scale
    (:func:`~cbcp_sim.analysis.dose_response.log_interval`).

    Raises a one-line :class:`~cbcp_sim.errors.SettingsError` (see the module docstring): also for fewer than two
    dose groups, a dose group with fewer than two children, a negative dose, or no variation left.
    """
    cands = parse_candidates(models, "models") if isinstance(models, str) else _candidates(models)
    alpha = _real("alpha", alpha)
    if not 0.0 < alpha < 0.5:
        raise SettingsError("alpha", f"must be a one-sided level in (0, 0.5), got {alpha:g}")
    delta = _real("delta", delta)
    if not (math.isfinite(delta) and delta > 0.0):
        raise SettingsError("delta", f"must be a finite effect over placebo above 0, got {delta:g}")
    ed = _real("ed", ed)
    if not 0.0 < ed < 1.0:
        raise SettingsError("ed", f"must be a share of the largest effect in (0, 1), got {ed:g}")
    if selection not in SELECTIONS:
        raise SettingsError("selection", f"expected one of {', '.join(SELECTIONS)}, got {selection!r}")
    names: dict[str, str] = {}
    for role, name in (("dose", dose), ("response", response), ("baseline", baseline)):
        if name is None and role == "baseline":
            continue
        if not isinstance(name, str) or not name.strip():
            raise SettingsError(role, f"expected the name of a column (text), got {name!r}")
        other = next((r for r, n in names.items() if n == name.strip()), None)
        if other is not None:
            raise SettingsError(role, f"{name.strip()!r} is already the {other} column")
        names[role] = name.strip()
    wanted = _Wanted(coded={}, numbers=tuple(names.values()), trial=None, label=None)
    header = tuple(names.values())
    table = _from_csv(data, wanted, header) if isinstance(data, str | PathLike) else _from_frame(data, wanted, header)
    for role, name in names.items():
        if name not in table.header:
            raise SettingsError(role, f"no column {name!r} in {table.origin} ({table.listing})")
    x = _numbers(table, names["dose"], required=True)
    negative = np.flatnonzero(x < 0.0)
    if negative.size:
        k = int(negative[0])
        raise SettingsError(f"data.{names['dose']}", f"must be a dose >= 0 (the placebo 0 or the smallest dose), "
                                                     f"got {x[k]:g} at {table.row(k)} of {table.origin}")
    y = _numbers(table, names["response"], required=False)
    b = _numbers(table, names["baseline"], required=False) if baseline is not None else np.zeros_like(y)
    kept = np.flatnonzero(~np.isnan(y) & ~np.isnan(b))
    if kept.size == 0:
        what = f"{names['response']}" + (f" and {names['baseline']}" if baseline is not None else "")
        raise SettingsError("data", f"no row of {table.origin} has a value of {what}")
    doses, group, counts = np.unique(x[kept], return_inverse=True, return_counts=True)
    dose_col = f"data.{names['dose']}"
    with_outcome = "with a response" + (" and a baseline" if baseline is not None else "")
    if doses.size < 2:
        raise SettingsError(dose_col, f"only one dose ({doses[0]:g}) among the children {with_outcome} in "
                                      f"{table.origin}: MCP-Mod needs a placebo and at least one active dose")
    small = np.flatnonzero(counts < 2)
    if small.size:
        j = int(small[0])
        k = int(kept[np.flatnonzero(group == j)[0]])
        raise SettingsError(dose_col, f"dose {doses[j]:g} has {counts[j]} child {with_outcome} (at {table.row(k)} "
                                      f"of {table.origin}): each dose group needs at least 2")
    mu, S, df = _dose_means(y[kept], group, doses.size, None if baseline is None else b[kept], names, table.origin)

    res = mcpmod(mu[None], S, doses, cands, df=df, alpha=alpha, delta=delta, p=ed, selection=selection)
    step = res.model
    crit = critical_value(res.test.correlation, alpha, float(df))
    reject = bool(res.test.reject[0])
    selected = step.classes[int(step.selected[0])] if reject else None
    params = (dict(zip(FIT_PARAMETERS[selected], map(float, step.params[selected][0]), strict=True))
              if selected is not None else None)
    gaic = {name: float(g) for name, g in zip(step.classes, step.gaic[0], strict=True) if not math.isnan(g)}
    weights = ({name: float(w) for name, w in zip(step.classes, step.weights[0], strict=True) if name in gaic}
               if reject else None)
    z = float(special.ndtri(1.0 - alpha))
    doses_found = {key: _dose_found(float(getattr(step, key)[0]), float(getattr(step, f"{key}_se")[0]), z)
                   for key in ("td", "ed")}
    return DoseAnalysis(
        doses=tuple(map(float, doses)), n_per_dose=tuple(map(int, counts)), estimates=tuple(map(float, mu)),
        covariance=tuple(tuple(map(float, row)) for row in S), df=int(df), alpha=alpha,
        models=tuple(c.label for c in cands), tstats=tuple(map(float, res.test.tstats[0])),
        p_adjusted=tuple(map(float, res.test.p_adjusted[0])), critical_value=float(crit), reject=reject,
        selected=selected, params=params, gaic=gaic, delta=delta, td=doses_found["td"][0],
        td_se=doses_found["td"][1], selection=selection, weights=weights, ed_p=ed, ed=doses_found["ed"][0],
        ed_se=doses_found["ed"][1], interval_level=1.0 - 2.0 * alpha, td_interval=doses_found["td"][2],
        ed_interval=doses_found["ed"][2], response=names["response"], baseline=names.get("baseline"),
        source=table.source)


def _dose_found(estimate: float, se: float, z: float) -> tuple[float | None, float | None,
                                                                 tuple[float, float] | None]:
    """A dose estimate, its SE and its log-scale interval (:func:`~cbcp_sim.analysis.dose_response.log_interval`),
    None where not estimated."""
    if not math.isfinite(estimate):
        return None, None, None
    if not math.isfinite(se):
        return estimate, None, None
    low, high = log_interval(np.array(estimate), np.array(se), z)
    return estimate, se, (float(low), float(high))


def _dose_means(y: np.ndarray, group: np.ndarray, k: int, baseline: np.ndarray | None, names: dict[str, str],
                origin: str) -> tuple[np.ndarray, np.ndarray, int]:
    """The per-dose estimates, their covariance and the residual df: of the one-way ANOVA, or with ``baseline``
    of the ANCOVA with a common slope, the means adjusted to the mean baseline (centred, the dose coefficients
    are those means)."""
    n = y.size
    X = np.zeros((n, k + (baseline is not None)))
    X[np.arange(n), group] = 1.0
    if baseline is not None:
        X[:, k] = baseline - baseline.mean()
    df = n - X.shape[1]
    if df < 1:
        raise SettingsError("data", f"{n} children in {k} dose groups leave no residual degrees of freedom")
    if baseline is not None and np.linalg.matrix_rank(X) < X.shape[1]:
        raise SettingsError(f"data.{names['baseline']}", f"does not vary within the dose groups in {origin}: the "
                                                         "ANCOVA cannot estimate its slope")
    xtx_inv = np.linalg.inv(X.T @ X)
    coef = xtx_inv @ (X.T @ y)
    resid = y - X @ coef
    sigma2 = float(resid @ resid) / df
    scale = max(1.0, float(np.max(np.abs(y))))
    if not sigma2 > (1e-12 * scale) ** 2:
        raise SettingsError(f"data.{names['response']}", f"has no variation within the dose groups in {origin}: "
                                                         "the residual variance is 0")
    return coef[:k], sigma2 * xtx_inv[:k, :k], df


def _candidates(models: Any) -> tuple:
    """Candidates from a sequence of texts or :class:`~cbcp_sim.analysis.dose_models.Candidate`; a
    SettingsError on ``models`` for anything else."""
    if isinstance(models, bytes | bytearray) or not hasattr(models, "__iter__"):
        raise SettingsError("models", f"expected candidate models such as 'emax:1,sigEmax:3:3,linear', got "
                                      f"{models!r}")
    return parse_candidates(list(models), "models")


def _real(name: str, value: Any) -> float:
    """``value`` as a float if it is a real number (not a bool), else a SettingsError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SettingsError(name, f"expected a number, got {value!r}")
    return float(value)
