"""MCP-Mod's modelling step on per-dose estimates, batched over replicates: generalised least-squares fits of the
dose-response models, gAIC, and the target dose with its delta-method SE [Pinheiro 2014] [Bornkamp 2009], as R
DoseFinding's ``fitMod(..., S = S, type = "general")``, ``gAIC`` and ``TD``.

Fit: minimise ``gRSS = (mu_hat - f)' S⁻¹ (mu_hat - f)`` over the parameters. The linear parameters are profiled
out by weighted least squares; the nonlinear ones are bounded by DoseFinding's ``defBnds(max dose)`` and found as
DoseFinding does: a grid (30 midpoints for one parameter, the 144-point Fibonacci lattice for two), then a local
search: golden section in the grid cell around the best point (batched; DoseFinding's ``optimize``), or a bounded
quasi-Newton search from it (per replicate; DoseFinding's ``nlminb``). ``gAIC = gRSS + 2 p``, ``p`` the number of
parameters; the model-averaging weights are ``exp(-gAIC / 2)`` normalised. The covariance of the parameters is
``(J' S⁻¹ J)⁻¹`` (``J`` the Jacobian of the means), DoseFinding's ``vcov``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from cbcp_sim.analysis.dose_models import FIT_PARAMETERS, NONLINEAR, full_response, shape

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
_STEPS = 70  # golden-section steps: the bracket shrinks by 0.618^70 ~ 2e-15


def default_bounds(model: str, max_dose: float) -> np.ndarray:
    """DoseFinding's ``defBnds(max dose)`` for a nonlinear model: ``(q, 2)`` rows of (lower, upper)."""
    d = max_dose
    return np.array({"emax": [[0.001 * d, 1.5 * d]], "exponential": [[0.1 * d, 2.0 * d]],
                     "logistic": [[0.001 * d, 1.5 * d], [0.01 * d, 0.5 * d]],
                     "sigEmax": [[0.001 * d, 1.5 * d], [0.5, 10.0]], "betaMod": [[0.05, 4.0], [0.05, 4.0]]}[model])


def _grid(bounds: np.ndarray) -> np.ndarray:
    """DoseFinding's ``getGrid``: ``(G, q)`` starting points inside ``bounds``."""
    if len(bounds) == 1:
        nodes = (2.0 * np.arange(1, 31) - 1.0) / 60.0
        return (bounds[0, 0] + nodes * (bounds[0, 1] - bounds[0, 0]))[:, None]
    k = np.arange(1, 145)
    unit = np.stack([(k - 0.5) / 144.0, ((89.0 * k - 0.5) / 144.0) % 1.0], axis=1)
    return bounds[:, 0] + unit * (bounds[:, 1] - bounds[:, 0])


@dataclass(frozen=True)
class DoseFit:
    """One model fitted to each replicate's per-dose estimates."""

    model: str
    params: np.ndarray   #: ``(R, p)`` in :data:`~cbcp_sim.analysis.dose_models.FIT_PARAMETERS` order
    grss: np.ndarray     #: ``(R,)`` generalised residual sum of squares
    scal: float
    off: float

    @property
    def names(self) -> tuple[str, ...]:
        return FIT_PARAMETERS[self.model]

    @property
    def gaic(self) -> np.ndarray:
        """``(R,)`` ``gRSS + 2 p`` (DoseFinding's ``gAIC``)."""
        return self.grss + 2.0 * self.params.shape[1]


def _design(model: str, doses: np.ndarray, theta: np.ndarray, scal: float, off: float) -> np.ndarray:
    """``(..., K, 2 or 3)`` columns of the linear parameters given the nonlinear ``theta`` ``(..., q)``."""
    if model == "quadratic":
        return np.stack([np.ones_like(doses), doses, doses**2], axis=-1)
    f = shape(model, doses, [theta[..., j:j + 1] for j in range(theta.shape[-1])], scal, off)
    return np.stack([np.ones_like(f), f], axis=-1)


def _wls(X: np.ndarray, W: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear parameters ``(..., p)`` and gRSS ``(...)`` of ``y ~ X`` with ``S⁻¹ = W'W``; ``W`` ``(R, K, K)``,
    ``X`` ``(R, ..., K, p)`` and ``y`` ``(R, K)`` broadcast over the middle axes."""
    extra = X.ndim - 3
    w = W.reshape(W.shape[0], *([1] * extra), *W.shape[1:])
    wx = w @ X
    wy = (w @ y.reshape(y.shape[0], *([1] * extra), y.shape[1], 1))[..., 0]
    beta = np.linalg.solve(np.swapaxes(wx, -1, -2) @ wx, (np.swapaxes(wx, -1, -2) @ wy[..., None]))[..., 0]
    resid = wy - (wx @ beta[..., None])[..., 0]
    return beta, (resid**2).sum(axis=-1)


def fit_model(model: str, doses: np.ndarray, mu_hat: np.ndarray, S: np.ndarray,
              bounds: np.ndarray | None = None) -> DoseFit:
    """Fit ``model`` to per-dose estimates ``mu_hat`` ``(R, K)`` with covariance ``S`` ``(K, K)`` or
    ``(R, K, K)`` by generalised least squares (DoseFinding ``fitMod(type = "general")``); ``bounds`` ``(q, 2)``
    for a nonlinear model (default :func:`default_bounds`)."""
    doses = np.asarray(doses, dtype=float)
    mu_hat = np.atleast_2d(np.asarray(mu_hat, dtype=float))
    n_r = mu_hat.shape[0]
    S = np.broadcast_to(np.asarray(S, dtype=float), (n_r, doses.size, doses.size))
    W = np.linalg.inv(np.linalg.cholesky(S))  # W'W = S⁻¹
    scal, off = 1.2 * doses.max(), 0.01 * doses.max()
    if model not in NONLINEAR:
        beta, grss = _wls(np.broadcast_to(_design(model, doses, np.zeros(0), scal, off), (n_r, doses.size,
                          3 if model == "quadratic" else 2)), W, mu_hat)
        return DoseFit(model, beta, grss, scal, off)
    bounds = default_bounds(model, doses.max()) if bounds is None else np.asarray(bounds, dtype=float)

    def grss_at(theta: np.ndarray) -> np.ndarray:  # theta (R, G, q) -> (R, G)
        return _wls(_design(model, doses, theta, scal, off), W, mu_hat)[1]

    grid = _grid(bounds)
    at_grid = grss_at(np.broadcast_to(grid, (n_r, *grid.shape)))
    theta = grid[np.argmin(at_grid, axis=1)]  # (R, q)
    if len(bounds) == 1:
        dif = (bounds[0, 1] - bounds[0, 0]) / 30.0
        a = np.maximum(theta[:, 0] - 1.1 * dif, bounds[0, 0])
        b = np.minimum(theta[:, 0] + 1.1 * dif, bounds[0, 1])
        theta = _golden(lambda x: grss_at(x[:, None, None])[:, 0], a, b)[:, None]
    else:
        for r in range(n_r):
            res = optimize.minimize(lambda x, r=r: float(_wls(_design(model, doses, x[None, None], scal, off),
                                                              W[r:r + 1], mu_hat[r:r + 1])[1][0, 0]),
                                    theta[r], method="L-BFGS-B", bounds=bounds,
                                    options={"ftol": 1e-14, "gtol": 1e-10, "maxiter": 500})
            theta[r] = res.x
    beta, grss = _wls(_design(model, doses, theta[:, None, :], scal, off), W, mu_hat)
    return DoseFit(model, np.concatenate([beta[:, 0], theta], axis=1), grss[:, 0], scal, off)


def _golden(f: Callable[[np.ndarray], np.ndarray], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched golden-section minimisation of ``f`` (``(R,) -> (R,)``) on ``[a, b]``."""
    x1, x2 = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    f1, f2 = f(x1), f(x2)
    for _ in range(_STEPS):
        left = f1 <= f2
        b = np.where(left, x2, b)
        a = np.where(left, a, x1)
        x1, x2 = np.where(left, b - _GOLDEN * (b - a), x2), np.where(left, x1, a + _GOLDEN * (b - a))
        new = f(np.where(left, x1, x2))
        f1, f2 = np.where(left, new, f2), np.where(left, f1, new)
    return (a + b) / 2.0


def covariance(fit: DoseFit, doses: np.ndarray, S: np.ndarray) -> np.ndarray:
    """``(R, p, p)`` covariance ``(J' S⁻¹ J)⁻¹`` of the fitted parameters (DoseFinding's ``vcov``); ``J`` by
    central differences."""
    J = _jacobian(lambda p: full_response(fit.model, doses, p, fit.scal, fit.off), fit.params)
    S = np.broadcast_to(np.asarray(S, dtype=float), (fit.params.shape[0], doses.size, doses.size))
    return np.linalg.inv(np.swapaxes(J, -1, -2) @ np.linalg.solve(S, J))


def _jacobian(fun: Callable[[np.ndarray], np.ndarray], params: np.ndarray) -> np.ndarray:
    """``(R, n_out, p)`` central-difference Jacobian of ``fun`` (``(R, p) -> (R, n_out)``)."""
    cols = []
    for j in range(params.shape[1]):
        h = 1e-6 * np.maximum(np.abs(params[:, j]), 1e-3)
        up, down = params.copy(), params.copy()
        up[:, j] += h
        down[:, j] -= h
        cols.append((fun(up) - fun(down)) / (2.0 * h[:, None]))
    return np.stack(cols, axis=-1)


def target_dose(model: str, params: np.ndarray, delta: float, scal: float, off: float) -> np.ndarray:
    """``(R,)`` the smallest dose with effect over placebo ``delta`` on the fitted curve (DoseFinding's
    ``TD(..., TDtype = "continuous")``); NaN where the curve never reaches it."""
    p = np.atleast_2d(np.asarray(params, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        if model == "linear":
            td = delta / p[:, 1]
        elif model == "linlog":
            td = off * np.exp(delta / p[:, 1]) - off
        elif model == "quadratic":
            disc = 4.0 * p[:, 2] * delta + p[:, 1] ** 2
            roots = np.stack([-(np.sqrt(disc) + p[:, 1]), np.sqrt(disc) - p[:, 1]], axis=1) / (2.0 * p[:, 2:3])
            td = np.where(roots > 0, roots, np.inf).min(axis=1)
            td = np.where((disc >= 0) & np.isfinite(td), td, np.nan)
        elif model == "emax":
            td = np.where(delta > p[:, 1], np.nan, delta * p[:, 2] / (p[:, 1] - delta))
        elif model == "sigEmax":
            td = np.where(delta > p[:, 1], np.nan, (delta * p[:, 2] ** p[:, 3] / (p[:, 1] - delta)) ** (1 / p[:, 3]))
        elif model == "exponential":
            td = np.where(delta / p[:, 1] < 0, np.nan, p[:, 2] * np.log(delta / p[:, 1] + 1.0))
        elif model == "logistic":
            e, ed50, dl = p[:, 1], p[:, 2], p[:, 3]
            reach = e * (1.0 - 1.0 / (1.0 + np.exp(ed50 / dl)))
            tmp = np.exp(ed50 / dl)
            td = np.where(delta > reach, np.nan, ed50 - dl * np.log((tmp * e - delta * tmp - delta)
                                                                      / (e + delta * tmp + delta)))
        elif model == "betaMod":
            td = _beta_td(p, delta, scal)
        else:
            raise ValueError(f"unknown model {model!r}")
    return np.where(td > 0, td, np.nan)


def _beta_td(p: np.ndarray, delta: float, scal: float) -> np.ndarray:
    """The beta model's target dose by batched bisection between 0 and the mode."""
    mode = p[:, 2] / (p[:, 2] + p[:, 3]) * scal
    lo, hi = np.zeros_like(mode), mode.copy()
    for _ in range(80):
        mid = (lo + hi) / 2.0
        above = p[:, 1] * shape("betaMod", mid, [p[:, 2], p[:, 3]], scal, 0.0) >= delta
        lo, hi = np.where(above, lo, mid), np.where(above, mid, hi)
    return np.where(delta > p[:, 1], np.nan, (lo + hi) / 2.0)


def target_dose_se(fit: DoseFit, doses: np.ndarray, S: np.ndarray, delta: float) -> np.ndarray:
    """``(R,)`` delta-method SE of :func:`target_dose` (gradient by central differences; DoseFinding gives none)."""
    grad = _jacobian(lambda q: target_dose(fit.model, q, delta, fit.scal, fit.off)[:, None], fit.params)[:, 0]
    cov = covariance(fit, doses, S)
    return np.sqrt(np.einsum("rp,rpq,rq->r", grad, cov, grad))
