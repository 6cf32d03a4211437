"""Candidate dose-response models of MCP-Mod, with R DoseFinding's names, parameters and standardisation
[Bornkamp 2009] [Pinheiro 2014].

A model is ``e0 + eMax * f(dose; theta)``: ``f`` the standardised shape with its nonlinear parameters ``theta``
(:data:`SHAPE_PARAMETERS`, in DoseFinding's order), ``e0`` the placebo response. Doses in 10^7 TNC/kg (any unit,
as long as all agree); responses in GMFM-66 points.

==============  ===========================================  ===================  ==========================
model           f(dose; theta)                               theta                full parameters (fit)
==============  ===========================================  ===================  ==========================
``linear``      d                                            --                   e0, delta
``linlog``      log(d + off)   (``off`` fixed)               --                   e0, delta
``quadratic``   d + delta d^2                                delta                e0, b1, b2
``emax``        d / (ED50 + d)                               ED50                 e0, eMax, ed50
``sigEmax``     d^h / (ED50^h + d^h)                         ED50, h              e0, eMax, ed50, h
``exponential`` exp(d / delta) - 1                           delta                e0, e1, delta
``logistic``    1 / (1 + exp((ED50 - d) / delta))            ED50, delta          e0, eMax, ed50, delta
``betaMod``     B(delta1, delta2) (d/scal)^delta1 (1 - d/scal)^delta2    delta1, delta2     e0, eMax, delta1, delta2
==============  ===========================================  ===================  ==========================

``B = (delta1 + delta2)^(delta1 + delta2) / (delta1^delta1 delta2^delta2)`` scales the beta model's maximum to 1;
``scal`` defaults to 1.2 times the largest dose and ``off`` to 0.01 times it (DoseFinding's ``getAddArgs``).
``quadratic`` is fitted as a linear model (``e0 + b1 d + b2 d^2``) and ``linear``, ``linlog`` too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cbcp_sim.errors import SettingsError

#: The models and their shape parameters, in DoseFinding's order.
SHAPE_PARAMETERS: dict[str, tuple[str, ...]] = {
    "linear": (), "linlog": (), "quadratic": ("delta",), "emax": ("ed50",), "sigEmax": ("ed50", "h"),
    "exponential": ("delta",), "logistic": ("ed50", "delta"), "betaMod": ("delta1", "delta2")}
#: The fitted parameters of each model, DoseFinding's names (``coef(fitMod(...))``).
FIT_PARAMETERS: dict[str, tuple[str, ...]] = {
    "linear": ("e0", "delta"), "linlog": ("e0", "delta"), "quadratic": ("e0", "b1", "b2"),
    "emax": ("e0", "eMax", "ed50"), "sigEmax": ("e0", "eMax", "ed50", "h"), "exponential": ("e0", "e1", "delta"),
    "logistic": ("e0", "eMax", "ed50", "delta"), "betaMod": ("e0", "eMax", "delta1", "delta2")}
#: Models fitted by nonlinear least squares (the others are linear in their parameters).
NONLINEAR = ("emax", "sigEmax", "exponential", "logistic", "betaMod")


@dataclass(frozen=True)
class Candidate:
    """One candidate shape: a model name and its shape parameters (DoseFinding's order)."""

    model: str
    theta: tuple[float, ...] = ()

    @property
    def label(self) -> str:
        """``name:parameters`` as written on the command line (``emax:4``, ``sigEmax:3:3``, ``linear``)."""
        return ":".join([self.model, *(f"{t:g}" for t in self.theta)])


def parse_candidates(text: str | Sequence[str | Candidate], name: str = "models") -> tuple[Candidate, ...]:
    """Candidates from ``"emax:1,emax:4,sigEmax:3:3,linear"`` (or a sequence of such texts or of
    :class:`Candidate`); a one-line :class:`SettingsError` naming ``name`` for an unknown model, a wrong number of
    parameters, a parameter out of range or a repeated candidate."""
    items = [t.strip() for t in text.split(",")] if isinstance(text, str) else list(text)
    out: list[Candidate] = []
    for item in items:
        if isinstance(item, Candidate):
            cand = item
        else:
            head, *rest = str(item).split(":")
            if head not in SHAPE_PARAMETERS:
                raise SettingsError(name, f"unknown model {head!r}; expected one of {', '.join(SHAPE_PARAMETERS)}")
            try:
                cand = Candidate(head, tuple(float(v) for v in rest))
            except ValueError:
                raise SettingsError(name, f"{item!r}: parameters must be numbers") from None
        want = SHAPE_PARAMETERS.get(cand.model)
        if want is None:
            raise SettingsError(name, f"unknown model {cand.model!r}; expected one of {', '.join(SHAPE_PARAMETERS)}")
        if len(cand.theta) != len(want):
            raise SettingsError(name, f"{cand.label!r}: {cand.model} takes {len(want)} parameter(s)"
                                      f"{' (' + ', '.join(want) + ')' if want else ''}, got {len(cand.theta)}")
        if not all(np.isfinite(cand.theta)) or (cand.model != "quadratic" and any(t <= 0 for t in cand.theta)):
            raise SettingsError(name, f"{cand.label!r}: parameters must be finite"
                                      f"{' and positive' if cand.model != 'quadratic' else ''}")
        if cand.model == "quadratic" and cand.theta[0] >= 0:
            raise SettingsError(name, f"{cand.label!r}: the quadratic's delta must be negative (an umbrella shape)")
        out.append(cand)
    if not out:
        raise SettingsError(name, "expected at least one model")
    labels = [c.label for c in out]
    if len(set(labels)) != len(labels):
        raise SettingsError(name, f"repeated candidate in {', '.join(labels)}")
    return tuple(out)


def add_args(doses: np.ndarray) -> tuple[float, float]:
    """DoseFinding's defaults ``(scal, off)``: 1.2 and 0.01 times the largest dose."""
    top = float(np.max(doses))
    return 1.2 * top, 0.01 * top


def shape(model: str, dose: np.ndarray, theta: np.ndarray | Sequence[float], scal: float, off: float) -> np.ndarray:
    """The standardised shape ``f(dose; theta)`` (DoseFinding's ``e0 = 0, eMax = 1``); ``theta`` entries may be
    arrays that broadcast with ``dose`` (a grid of parameters). For ``quadratic`` ``d + delta d^2``."""
    d = np.asarray(dose, dtype=float)
    t = [np.asarray(v, dtype=float) for v in theta]
    if model == "linear":
        return d
    if model == "linlog":
        return np.log(d + off)
    if model == "quadratic":
        return d + t[0] * d**2
    if model == "emax":
        return d / (t[0] + d)
    if model == "sigEmax":
        return d ** t[1] / (t[0] ** t[1] + d ** t[1])
    if model == "exponential":
        return np.expm1(d / t[0])
    if model == "logistic":
        return 1.0 / (1.0 + np.exp((t[0] - d) / t[1]))
    if model == "betaMod":
        d1, d2 = t
        log_max = _xlogx(d1) + _xlogx(d2) - _xlogx(d1 + d2)
        x = d / scal
        return np.exp(-log_max) * x**d1 * (1.0 - x) ** d2
    raise ValueError(f"unknown model {model!r}")


def _xlogx(x: np.ndarray) -> np.ndarray:
    return np.where(x == 0, 0.0, x * np.log(np.where(x == 0, 1.0, x)))


def mean_response(cand: Candidate, doses: np.ndarray, placebo: float, max_effect: float,
                  scal: float, off: float) -> np.ndarray:
    """Mean response at ``doses`` of a candidate scaled as DoseFinding's ``Mods(..., placEff, maxEff)``: placebo
    response ``placebo`` and effect ``max_effect`` over placebo at the largest dose (at the vertex for
    ``quadratic``, at the mode for ``betaMod``), as ``getLinPars``."""
    f = shape(cand.model, doses, cand.theta, scal, off)
    f0 = shape(cand.model, np.array(0.0), cand.theta, scal, off)
    if cand.model == "quadratic":
        top = -1.0 / (2.0 * cand.theta[0])
    elif cand.model == "betaMod":
        top = cand.theta[0] / (cand.theta[0] + cand.theta[1]) * scal
    else:
        top = float(np.max(doses))
    f_top = shape(cand.model, np.array(top), cand.theta, scal, off)
    return placebo + max_effect * (f - f0) / (f_top - f0)


def full_response(model: str, dose: np.ndarray, params: np.ndarray, scal: float, off: float) -> np.ndarray:
    """The fitted model's mean at ``dose`` from its full parameters (:data:`FIT_PARAMETERS` order) ``(..., p)``."""
    p = np.asarray(params, dtype=float)
    d = np.asarray(dose, dtype=float)
    if model == "quadratic":
        return p[..., 0:1] + p[..., 1:2] * d + p[..., 2:3] * d**2
    f = shape(model, d, [p[..., j:j + 1] for j in range(2, p.shape[-1])], scal, off)
    return p[..., 0:1] + p[..., 1:2] * f
