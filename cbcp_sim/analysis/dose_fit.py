"""MCP-Mod's modelling step on per-dose estimates, batched over replicates: generalised least-squares fits of the
dose-response models, gAIC, the target dose and ``ED_p`` of one fit or of the gAIC-averaged curve, and their
delta-method SEs [Pinheiro 2014] [Bornkamp 2009], as R DoseFinding's ``fitMod(..., S = S, type = "general")``,
``gAIC``, ``TD`` and ``ED``.

Fit: minimise ``gRSS = (mu_hat - f)' S⁻¹ (mu_hat - f)`` over the parameters. The linear parameters are profiled
out by weighted least squares; the nonlinear ones are bounded by DoseFinding's ``defBnds(max dose)`` and found as
DoseFinding does: a grid (30 midpoints for one parameter, the 144-point Fibonacci lattice for two), then a local
search from the best point, batched over replicates: golden section in its grid cell (DoseFinding's ``optimize``),
or for two parameters a bounded trust-region Newton search (:func:`_trust_region`, where DoseFinding runs the
quasi-Newton ``nlminb`` per replicate from the same start). ``gAIC = gRSS + 2 p``, ``p`` the number of
parameters. The covariance of the parameters is ``(J' S⁻¹ J)⁻¹`` (``J`` the Jacobian of the means),
DoseFinding's ``vcov``; a dose estimate's SE is the delta method through it (:func:`estimate_se`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cbcp_sim.analysis.dose_models import FIT_PARAMETERS, NONLINEAR, full_response, shape

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
_STEPS = 70  # golden-section steps: the bracket shrinks by 0.618^70 ~ 2e-15
_FD = 1e-5  # finite-difference step of the trust-region search's Hessian, in the unit square of the parameters
_FD_GRAD = 1e-7  # and of its gradient
_TRUST_STEPS = 200  # most trust-region steps (measured on 2,700 trials: median 5 to 11, largest 186)


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

    def grss_at(theta: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:  # (R, G, q) -> (R, G)
        return _wls(_design(model, doses, theta, scal, off), W[rows], mu_hat[rows])[1]

    grid = _grid(bounds)
    at_grid = grss_at(np.broadcast_to(grid, (n_r, *grid.shape)))
    theta = grid[np.argmin(at_grid, axis=1)]  # (R, q)
    if len(bounds) == 1:
        dif = (bounds[0, 1] - bounds[0, 0]) / 30.0
        a = np.maximum(theta[:, 0] - 1.1 * dif, bounds[0, 0])
        b = np.minimum(theta[:, 0] + 1.1 * dif, bounds[0, 1])
        theta = _golden(lambda x: grss_at(x[:, None, None])[:, 0], a, b)[:, None]
    else:
        lo, width = bounds[:, 0], bounds[:, 1] - bounds[:, 0]
        unit = _trust_region(lambda rows, u: grss_at(lo + u * width, rows), (theta - lo) / width)
        theta = np.where(unit >= 1.0, bounds[:, 1], lo + unit * width)
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


def _trust_region(f: Callable[[np.ndarray, np.ndarray], np.ndarray], u: np.ndarray) -> np.ndarray:
    """Batched minimisation of ``f(rows, u)`` (points ``u`` ``(n, G, 2)`` of the replicates ``rows`` to ``(n, G)``)
    over the unit square from ``u`` ``(R, 2)``: a trust-region Newton method [Conn 2000] on finite-difference
    gradients and Hessians, each step the exact minimiser of the quadratic model on the box where the trust region
    (max norm) meets the bounds (:func:`_box_quadratic`), so a parameter can land on its bound and stay there; a
    replicate stops when the model predicts a decrease below 1e-15 of ``f``."""
    eye = np.eye(2)
    stencil = _FD * np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [1.0, 1.0], [-1.0, -1.0]])

    def probe(rows: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """f at ``at`` ``(n, 2)``; its Hessian by the stencil around the nearest point at least ``_FD`` inside the
        square; its gradient by central differences along each coordinate, moved inside along that one only."""
        centre = np.clip(at, _FD, 1.0 - _FD)
        along = np.clip(at, _FD_GRAD, 1.0 - _FD_GRAD)
        lines = np.where(eye[:, None] > 0, along[:, None, None] + _FD_GRAD * np.array([1.0, -1.0])[:, None],
                         at[:, None, None])  # (n, 2, 2, 2): coordinate j moved up and down
        v = f(rows, np.concatenate([at[:, None], centre[:, None] + stencil, lines.reshape(-1, 4, 2)], axis=1))
        f0, up, down = v[:, 1:2], v[:, 2:4], v[:, 4:6]
        cross = (v[:, 6] + v[:, 7] - up.sum(axis=1) - down.sum(axis=1) + 2.0 * f0[:, 0]) / (2.0 * _FD**2)
        diag = (up + down - 2.0 * f0) / _FD**2
        hess = np.stack([np.stack([diag[:, 0], cross], axis=1), np.stack([cross, diag[:, 1]], axis=1)], axis=1)
        grad = (v[:, 8::2] - v[:, 9::2]) / (2.0 * _FD_GRAD) + diag * (at - along)
        return v[:, 0], grad, hess

    u = u.copy()
    rows = np.arange(u.shape[0])
    fu, grad, hess = probe(rows, u)
    radius = np.full(u.shape[0], 0.1)
    for _ in range(_TRUST_STEPS):
        x, g, h, r = u[rows], grad[rows], hess[rows], radius[rows]
        new = _box_quadratic(g, h, x, np.maximum(x - r[:, None], 0.0), np.minimum(x + r[:, None], 1.0))
        s = new - x
        pred = -(np.einsum("ri,ri->r", g, s) + 0.5 * np.einsum("ri,rij,rj->r", s, h, s))
        go = pred > 1e-15 * fu[rows]
        rows, new, s, pred, r = rows[go], new[go], s[go], pred[go], r[go]
        if not rows.size:
            break
        fn, gn, hn = probe(rows, new)
        rho = (fu[rows] - fn) / pred
        size = np.abs(s).max(axis=1)
        radius[rows] = np.where(rho < 0.25, 0.25 * size, np.where((rho > 0.75) & (size > 0.99 * r), 2.0 * r, r))
        ok = fn < fu[rows]
        a = rows[ok]
        u[a], fu[a], grad[a], hess[a] = new[ok], fn[ok], gn[ok], hn[ok]
    return u


def _box_quadratic(g: np.ndarray, h: np.ndarray, x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``(n, 2)`` the point ``y`` in the box ``[lo, hi]`` (which holds ``x``) minimising the quadratic model
    ``g'(y - x) + (y - x)'h(y - x) / 2``, exactly: the best of ``x``, the stationary point where ``h`` is positive
    definite and it lies inside, and on each of the four edges its minimiser along the edge and both corners."""
    det = h[:, 0, 0] * h[:, 1, 1] - h[:, 0, 1] ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        newton = x - np.linalg.solve(np.where((det > 0)[:, None, None], h, np.eye(2)), g[..., None])[..., 0]
    inside = (det > 0) & (h[:, 0, 0] > 0) & np.all((newton >= lo) & (newton <= hi), axis=1)
    cands = [x, np.where(inside[:, None], newton, x)]
    for j in (0, 1):
        k = 1 - j
        for edge in (lo[:, j], hi[:, j]):
            slope = g[:, k] + h[:, k, j] * (edge - x[:, j])
            curve = h[:, k, k]
            best = np.clip(x[:, k] - slope / np.where(curve > 0, curve, 1.0), lo[:, k], hi[:, k])
            for along in (np.where(curve > 0, best, lo[:, k]), lo[:, k], hi[:, k]):
                cands.append(np.stack([edge, along], axis=1) if j == 0 else np.stack([along, edge], axis=1))
    y = np.stack(cands, axis=1)  # (n, C, 2)
    s = y - x[:, None]
    model = np.einsum("ri,rci->rc", g, s) + 0.5 * np.einsum("rci,rij,rcj->rc", s, h, s)
    return y[np.arange(y.shape[0]), np.argmin(model, axis=1)]


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
    """The beta model's target dose: where its standardised shape reaches ``delta / eMax``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(delta > p[:, 1], np.nan, _beta_dose(p, delta / p[:, 1], scal))


def _beta_dose(p: np.ndarray, level: np.ndarray | float, scal: float) -> np.ndarray:
    """``(R,)`` the smallest dose where the beta model's standardised shape (maximum 1 at its mode) reaches
    ``level``: batched bisection between 0 and the mode."""
    mode = p[:, 2] / (p[:, 2] + p[:, 3]) * scal
    lo, hi = np.zeros_like(mode), mode.copy()
    for _ in range(80):
        mid = (lo + hi) / 2.0
        above = shape("betaMod", mid, [p[:, 2], p[:, 3]], scal, 0.0) >= level
        lo, hi = np.where(above, lo, mid), np.where(above, mid, hi)
    return (lo + hi) / 2.0


def effective_dose(model: str, params: np.ndarray, p: float, max_dose: float, scal: float,
                   off: float) -> np.ndarray:
    """``(R,)`` ``ED_p``: the smallest dose with ``p`` times the fitted curve's largest effect over placebo on
    ``[0, max_dose]`` (at the vertex for ``quadratic``; for ``betaMod`` at its mode, even past ``max_dose``),
    DoseFinding's closed forms of ``ED(fit, p, EDtype = "continuous")``; NaN where the curve is flat."""
    q = np.atleast_2d(np.asarray(params, dtype=float))
    d = max_dose
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if model == "linear":
            ed = np.full(q.shape[0], p * d)
        elif model == "linlog":
            ed = np.full(q.shape[0], off * (math.exp(p * (math.log(d + off) - math.log(off))) - 1.0))
        elif model == "quadratic":
            mode = -q[:, 1] / (2.0 * q[:, 2])
            mode = np.where((mode > d) | (mode < 0), d, mode)
            top = q[:, 1] * mode + q[:, 2] * mode**2
            disc = np.sqrt(4.0 * q[:, 2] * top * p + q[:, 1] ** 2)
            roots = np.stack([-(disc + q[:, 1]), disc - q[:, 1]], axis=1) / q[:, 2:3] / 2.0
            ed = np.where(roots > 0, roots, np.inf).min(axis=1)
        elif model == "emax":
            ed = p * q[:, 2] * d / ((1.0 - p) * d + q[:, 2])
        elif model == "sigEmax":
            h = q[:, 3]
            ed = (p * q[:, 2] ** h * d**h / ((1.0 - p) * d**h + q[:, 2] ** h)) ** (1.0 / h)
        elif model == "exponential":
            ed = q[:, 2] * np.log(p * np.exp(d / q[:, 2]) - p + 1.0)
        elif model == "logistic":
            e50, dl = q[:, 2], q[:, 3]
            res1 = (p - 1.0) * np.exp(d / dl + e50 / dl) - np.exp(2.0 * e50 / dl) - p * np.exp(e50 / dl)
            res2 = (p * np.exp(e50 / dl) + 1.0) * np.exp(d / dl) + (1.0 - p) * np.exp(e50 / dl)
            ed = e50 - dl * np.log(-res1 / res2)
        elif model == "betaMod":
            ed = _beta_dose(q, p, scal)
        else:
            raise ValueError(f"unknown model {model!r}")
    return np.where((q[:, 1] != 0) & np.isfinite(ed), ed, np.nan)


def sensitivity(fit: DoseFit, doses: np.ndarray, S: np.ndarray) -> np.ndarray:
    """``(R, p, K)`` first-order sensitivity ``A = (J' S⁻¹ J)⁻¹ J' S⁻¹`` of the fitted parameters to the per-dose
    estimates (``J`` by central differences); ``A S A' = (J' S⁻¹ J)⁻¹`` is DoseFinding's ``vcov``."""
    J = _jacobian(lambda p: full_response(fit.model, doses, p, fit.scal, fit.off), fit.params)
    S = np.broadcast_to(np.asarray(S, dtype=float), (fit.params.shape[0], doses.size, doses.size))
    sj = np.linalg.solve(S, J)
    return np.linalg.solve(np.swapaxes(J, -1, -2) @ sj, np.swapaxes(sj, -1, -2))


def estimate_se(fits: Sequence[DoseFit], doses: np.ndarray, S: np.ndarray,
                estimator: Callable[[list[np.ndarray]], np.ndarray]) -> np.ndarray:
    """``(R,)`` delta-method SE of a dose estimate ``estimator([params of each fit]) -> (R,)`` computed from one
    or several fits to the same per-dose estimates (a model average: its weights held fixed): the gradient
    through each fit's :func:`sensitivity` to ``mu_hat``, ``g = sum_m (d est / d theta_m) A_m``, and
    ``SE² = g' S g``; for one fit ``grad' (J' S⁻¹ J)⁻¹ grad``. Gradients by central differences."""
    S = np.broadcast_to(np.asarray(S, dtype=float), (fits[0].params.shape[0], doses.size, doses.size))
    params = [f.params for f in fits]
    g = np.zeros((params[0].shape[0], doses.size))
    for m, fit in enumerate(fits):
        def moved(q: np.ndarray, m: int = m) -> np.ndarray:
            return estimator([q if j == m else params[j] for j in range(len(params))])[:, None]
        grad = np.nan_to_num(_jacobian(moved, params[m])[:, 0])
        g += np.einsum("rp,rpk->rk", grad, np.nan_to_num(sensitivity(fit, doses, S)))
    return np.sqrt(np.einsum("rk,rkl,rl->r", g, S, g))


#: Doses in ``(0, max dose]`` on which a model-averaged curve is searched, before bisection between two of them.
AVERAGE_GRID = 2048


def averaged_effect(models: Sequence[str], params: Sequence[np.ndarray], weights: np.ndarray, dose: np.ndarray,
                    scal: float, off: float) -> np.ndarray:
    """The model-averaged effect over placebo ``sum_m w_m (f_m(dose) - f_m(0))`` of fits ``params[m]`` ``(R, p_m)``
    with weights ``(R, M)`` (a zero weight: a model not fitted in that replicate, its parameters may be NaN);
    ``dose`` ``(G,)`` common or ``(R, 1)`` one per replicate. Returns ``(R, G)`` or ``(R, 1)``."""
    zero = np.zeros(1)
    out = np.zeros(1)
    for m, (name, q) in enumerate(zip(models, params, strict=True)):
        w = weights[:, m:m + 1]
        f = full_response(name, dose, q, scal, off) - full_response(name, zero, q, scal, off)
        out = out + w * np.where(w > 0, f, 0.0)
    return out


def _first_reaching(curve: Callable[[np.ndarray], np.ndarray], level: np.ndarray, max_dose: float) -> np.ndarray:
    """``(R,)`` the smallest dose in ``(0, max_dose]`` where ``curve`` (doses ``(G,)`` or ``(R, 1)`` to ``(R, G)``)
    reaches ``level`` ``(R,)``: the first of :data:`AVERAGE_GRID` equally spaced doses that does, then bisection
    back to the previous one; NaN where none does."""
    grid = max_dose * np.arange(1, AVERAGE_GRID + 1) / AVERAGE_GRID
    reached = curve(grid) >= level[:, None]
    i = np.argmax(reached, axis=1)
    hi = grid[i]
    lo = np.where(i > 0, grid[np.maximum(i - 1, 0)], 0.0)
    for _ in range(60):
        mid = (lo + hi) / 2.0
        above = curve(mid[:, None])[:, 0] >= level
        lo, hi = np.where(above, lo, mid), np.where(above, mid, hi)
    return np.where(reached.any(axis=1), (lo + hi) / 2.0, np.nan)


def averaged_target_dose(models: Sequence[str], params: Sequence[np.ndarray], weights: np.ndarray, delta: float,
                         max_dose: float, scal: float, off: float) -> np.ndarray:
    """``(R,)`` the target dose of the model-averaged curve (:func:`averaged_effect`): the smallest dose in
    ``(0, max dose]`` with averaged effect ``delta`` over placebo; NaN where it is not reached."""
    return _first_reaching(lambda x: averaged_effect(models, params, weights, x, scal, off),
                           np.full(weights.shape[0], float(delta)), max_dose)


def averaged_effective_dose(models: Sequence[str], params: Sequence[np.ndarray], weights: np.ndarray, p: float,
                            max_dose: float, scal: float, off: float) -> np.ndarray:
    """``(R,)`` ``ED_p`` of the model-averaged curve: the smallest dose with ``p`` times its largest effect over
    placebo on ``(0, max dose]`` (the best of :data:`AVERAGE_GRID` doses, refined by golden section between its
    neighbours); NaN where that effect is not positive."""
    def curve(x: np.ndarray) -> np.ndarray:
        return averaged_effect(models, params, weights, x, scal, off)

    grid = max_dose * np.arange(1, AVERAGE_GRID + 1) / AVERAGE_GRID
    at = curve(grid)
    i = np.argmax(at, axis=1)
    peak = _golden(lambda x: -curve(x[:, None])[:, 0], grid[np.maximum(i - 1, 0)],
                   grid[np.minimum(i + 1, grid.size - 1)])
    top = np.maximum(at.max(axis=1), curve(peak[:, None])[:, 0])
    with np.errstate(invalid="ignore"):
        return np.where(top > 0, _first_reaching(curve, p * top, max_dose), np.nan)
