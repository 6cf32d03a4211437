"""Maximum-likelihood fit of GMFM-66 growth curves with child-level random effects to registry data.

The stable-limit model of Rosenbaum et al. (2002), a nonlinear mixed model by GMFCS level ``g``::

    y_ij = lim_i (1 - exp(-exp(lrc_i) a_ij)) + e_ij,      lim_i = lim_g + b1_i,   lrc_i = lrc_g + b2_i
    (b1_i, b2_i) ~ N(0, [[sd_limit^2, corr sd_limit sd_lograte], [., sd_lograte^2]]),   e_ij ~ N(0, residual_sd^2)

(``a`` age in years, ``exp(lrc)`` the growth rate per year, age-90 = ln 10 / exp(lrc)), as R's ``nlme(score ~ lim *
(1 - exp(-exp(lrc) * age)), fixed = lim + lrc ~ factor(gmfcs), random = pdSymm(lim + lrc ~ 1))``. The
peak-and-decline variant (Hanna et al. 2009) lets levels III-V fall linearly after a peak age, ``decline`` points
from the peak to age 21, exactly as the simulator's natural history (:mod:`cbcp_sim.models.natural_history`), the
peak ages given (Hanna's by default: a registry with a few assessments per child does not identify them; free peak
ages wandered to the edge of the ages observed on 1,000 simulated children)::

    y_ij = rise_i(a) - slope_i max(a - peak_g, 0),   slope_i = (decline_g + rise_i(21) - rise_i(peak_g)) / (21 - peak_g)

The mean is linear in the random limit ``b1`` given ``b2``, so ``b1`` is integrated exactly (a rank-one update of
the residual covariance) and the marginal likelihood is a one-dimensional integral over ``b2`` per child, done by
adaptive Gauss-Hermite quadrature (:data:`NODES` nodes centred at each child's conditional mode and scaled by its
curvature; [Pinheiro 1995]), vectorised over children. This is the exact marginal likelihood up to the
quadrature error; nlme maximises the Lindstrom-Bates linearisation of it. Fixed effects and variance parameters
are estimated jointly by quasi-Newton (BFGS) on an unconstrained scale (log SDs, atanh of the correlation), with the
standard errors from the observed information (the inverse Hessian of minus the log-likelihood, by central
differences of its gradient).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import optimize

from cbcp_sim.analysis.registry import Registry
from cbcp_sim.vocabulary import DECLINE_END_AGE, GROWTH_METHODS, GROWTH_MODELS

if TYPE_CHECKING:
    import pandas as pd

#: The growth models fitted, and the likelihoods maximised (``agq`` exact, ``nlme`` as R's nlme).
MODELS, METHODS = GROWTH_MODELS, GROWTH_METHODS
#: GMFCS levels whose scores decline after a peak in the peak-and-decline model (Hanna 2009).
DECLINING = (3, 4, 5)
#: Their peak ages, years (Hanna et al. 2009, as the natural history's default ``peak_age``).
HANNA_PEAKS = {3: 7.92, 4: 6.92, 5: 6.92}
#: Adaptive Gauss-Hermite nodes per child (the log-likelihood changes by < 1e-6 from 15 to 30 nodes on the
#: recovery data sets of tests/test_calibrate.py).
NODES = 15
#: Ages-90 (years) outside which a level's growth rate counts as not identified: a rate running to infinity (a
#: level whose children are all on their plateau) or to 0 (all still far below it).
MIN_AGE90, MAX_AGE90 = 0.2, 40.0
#: Centiles of the visual predictive check, and age bands per GMFCS level.
VPC_CENTILES = (10, 50, 90)
VPC_BANDS = 6
#: Most rounds of quasi-Newton iterations with the quadrature nodes held, each followed by moving the nodes to the
#: children's new conditional modes (holding them keeps the objective smooth for the line searches).
MODE_ROUNDS = 10
#: Largest gradient (of minus the log-likelihood, unconstrained scale) at which a fit counts as converged.
GRADIENT_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Estimate:
    """A parameter's maximum-likelihood estimate and its standard error (NaN where not estimable)."""

    value: float
    se: float

    def to_json(self) -> dict[str, float | None]:
        return {"value": json_number(self.value), "se": json_number(self.se)}


@dataclass(frozen=True)
class LevelFit:
    """The fixed effects of one GMFCS level."""

    gmfcs: int
    n_children: int
    n_scores: int
    limit: Estimate        #: limit of a typical child (GMFM-66 points)
    log_rate: Estimate     #: log growth rate, log(1/years)
    age90: Estimate        #: age at 90% of the limit, years (ln 10 / rate; SE by the delta method)
    peak_age: float | None = None     #: peak-and-decline model, levels III-V: age of the peak (given), years
    decline: Estimate | None = None   #: peak-and-decline model, levels III-V: loss from the peak to age 21, points


@dataclass(frozen=True)
class GrowthFit:
    """A fitted growth model: its estimates, likelihood and convergence diagnostics."""

    model: str
    levels: tuple[LevelFit, ...]
    sd_limit: Estimate      #: between-child SD of the limit (points)
    sd_lograte: Estimate    #: between-child SD of the log growth rate
    corr: Estimate          #: correlation of the random limit and log rate
    residual_sd: Estimate   #: SD of a score around the child's own curve (points)
    loglik: float
    n_parameters: int
    n_children: int
    n_scores: int
    converged: bool
    iterations: int
    gradient: float         #: largest absolute gradient at the estimate (unconstrained scale)
    message: str            #: the optimiser's, or why the fit is not trusted
    method: str = "agq"     #: the likelihood maximised (:data:`METHODS`)
    nodes: int = NODES
    theta: np.ndarray = field(default=None, repr=False, compare=False)  #: the estimate, unconstrained scale
    covariance: np.ndarray = field(default=None, repr=False, compare=False)  #: its covariance (inverse Hessian)

    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * self.n_parameters

    @property
    def bic(self) -> float:
        """BIC with the number of scores as the sample size, as R's ``BIC`` of an nlme fit."""
        return -2.0 * self.loglik + math.log(self.n_scores) * self.n_parameters

    def level(self, gmfcs: int) -> LevelFit | None:
        return next((lv for lv in self.levels if lv.gmfcs == gmfcs), None)

    def simulate(self, registry: Registry, rng: np.random.Generator, n_sims: int = 1) -> np.ndarray:
        """Scores ``(n_sims, S)`` drawn from the fitted model for the registry's children at their ages: new
        random effects per child and new residuals per score."""
        g = np.array([self._index(level) for level in registry.gmfcs])
        n = registry.n_children
        sd1, sd2, rho = self.sd_limit.value, self.sd_lograte.value, self.corr.value
        u = rng.standard_normal((2, n_sims, n))
        b1 = sd1 * u[0]
        b2 = sd2 * (rho * u[0] + math.sqrt(1.0 - rho**2) * u[1])
        lim = np.array([lv.limit.value for lv in self.levels])[g] + b1
        rate = np.exp(np.array([lv.log_rate.value for lv in self.levels])[g] + b2)
        peak = np.array([DECLINE_END_AGE if lv.peak_age is None else lv.peak_age for lv in self.levels])[g]
        decline = np.array([lv.decline.value if lv.decline else 0.0 for lv in self.levels])[g]
        falls = np.array([lv.peak_age is not None for lv in self.levels])[g]
        i = registry.child
        z, c = _design(registry.age, rate[:, i], peak[i], decline[i], falls[i])
        return lim[:, i] * z + c + self.residual_sd.value * rng.standard_normal((n_sims, registry.n_scores))

    def _index(self, gmfcs: int) -> int:
        return next(k for k, lv in enumerate(self.levels) if lv.gmfcs == gmfcs)


def fit(registry: Registry, model: str = "stable_limit", method: str = "agq", nodes: int = NODES,
        peaks: Mapping[int, float] | None = None, progress: Callable[[int, float], None] | None = None) -> GrowthFit:
    """The maximum-likelihood fit of ``model`` (:data:`MODELS`) to ``registry`` by ``method`` (:data:`METHODS`);
    ``peaks``: the peak age (years) of each level of :data:`DECLINING` in the peak-and-decline model (default
    :data:`HANNA_PEAKS`); ``progress(iteration, loglik)`` is called after each quasi-Newton iteration."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    problem = _Problem(registry, model, nodes, HANNA_PEAKS if peaks is None else peaks)
    if method == "nlme":
        return _lindstrom_bates(problem, progress)
    theta = problem.start()
    modes = problem.modes(theta)
    count = [0]

    def callback(theta: np.ndarray) -> None:
        count[0] += 1
        if progress is not None:
            progress(count[0], -problem.negloglik(theta, modes))

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for _ in range(MODE_ROUNDS):  # quasi-Newton with the nodes held, then the nodes moved to the new modes
            result = optimize.minimize(problem.gradient, theta, args=(modes,), jac=True, method="BFGS",
                                       callback=callback, options={"maxiter": 500, "gtol": GRADIENT_TOLERANCE / 10})
            moved = np.max(np.abs(result.x - theta))
            theta = result.x
            modes = problem.modes(theta, modes)
            if moved < 1e-6:
                break
        value, grad = problem.gradient(theta, modes)
        cov, positive = _inverse(problem.hessian(theta, modes))
    gradient = float(np.max(np.abs(grad)))
    message = str(result.message)
    if gradient >= GRADIENT_TOLERANCE:
        message = f"the gradient ({gradient:.2g}) is not small at the estimate: {message}"
    return problem.summary(theta, -value, cov, positive, gradient < GRADIENT_TOLERANCE, gradient, message,
                           count[0], "agq")


class _Problem:
    """The marginal likelihood of one model on one registry, on the unconstrained scale ``theta``:
    ``limit (G), log rate (G), decline (D), log sd_limit, log sd_lograte, atanh corr, log sd`` (``G`` levels in
    the data, ``D`` of them declining, after the ``peaks`` given by level)."""

    def __init__(self, registry: Registry, model: str, nodes: int, peaks: Mapping[int, float]) -> None:
        self.registry, self.model = registry, model
        self.levels = tuple(int(g) for g in np.unique(registry.gmfcs))
        self.g = np.searchsorted(self.levels, registry.gmfcs)  # each child's level index
        self.age, self.score, self.mask = registry.padded()
        self.count = self.mask.sum(axis=1)
        falling = [lv for lv in self.levels if model == "peak_decline" and lv in DECLINING]
        self.declining = tuple(self.levels.index(lv) for lv in falling)
        self.falls = np.isin(self.g, self.declining)
        self.peak = np.array([peaks[lv] if k in self.declining else DECLINE_END_AGE
                              for k, lv in enumerate(self.levels)], dtype=float)
        self.x, self.w = np.polynomial.hermite.hermgauss(nodes)
        self.nodes = nodes

    @property
    def size(self) -> int:
        return 2 * len(self.levels) + len(self.declining) + 4

    def unpack(self, theta: np.ndarray) -> dict[str, np.ndarray | float]:
        k, d = len(self.levels), len(self.declining)
        decline = np.zeros(k)
        decline[list(self.declining)] = theta[2 * k:2 * k + d]
        tail = theta[2 * k + d:]
        return {"limit": theta[:k], "log_rate": theta[k:2 * k], "peak": self.peak, "decline": decline,
                "sd_limit": math.exp(tail[0]), "sd_lograte": math.exp(tail[1]), "corr": math.tanh(tail[2]),
                "sd": math.exp(tail[3])}

    def start(self) -> np.ndarray:
        """Starting values: each level's curve by least squares, then moderate variance components."""
        k, d = len(self.levels), len(self.declining)
        r = self.registry
        limit, log_rate, residuals = np.empty(k), np.empty(k), []
        for j, level in enumerate(self.levels):
            rows = r.gmfcs[r.child] == level
            a, y = r.age[rows], r.score[rows]

            def misfit(p: np.ndarray, a: np.ndarray = a, y: np.ndarray = y) -> np.ndarray:
                return p[0] * -np.expm1(-np.exp(p[1]) * a) - y

            guess = np.array([max(np.quantile(y, 0.9), 1.0), math.log(math.log(10.0) / 4.0)])
            sol = optimize.least_squares(misfit, guess)
            limit[j], log_rate[j] = sol.x
            residuals.append(sol.fun)
        spread = float(np.std(np.concatenate(residuals)))
        tail = [math.log(max(0.6 * spread, 1.0)), math.log(0.2), 0.0, math.log(max(0.5 * spread, 0.5))]
        return np.concatenate([limit, log_rate, np.zeros(d), tail])

    def log_integrand(self, theta: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """``log p(y_i | b2 = sd_lograte eta) + log phi(eta)`` for standardised ``eta`` ``(K, N)``, with the random
        limit integrated out."""
        p = self.unpack(theta)
        sd1, sd2, rho, s2 = p["sd_limit"], p["sd_lograte"], p["corr"], p["sd"] ** 2
        g = self.g
        rate = np.exp(p["log_rate"][g] + sd2 * eta)
        z, c = _design(self.age, rate[..., None], p["peak"][g, None], p["decline"][g, None], self.falls[:, None])
        z = np.where(self.mask, z, 0.0)
        mean = p["limit"][g] + rho * sd1 * eta
        r = np.where(self.mask, self.score - c - mean[..., None] * z, 0.0)
        v = sd1**2 * (1.0 - rho**2)
        szz, szr, srr = (z * z).sum(-1), (z * r).sum(-1), (r * r).sum(-1)
        quad = (srr - v * szr**2 / (s2 + v * szz)) / s2
        return -0.5 * (self.count * math.log(2.0 * math.pi * s2) + np.log1p(v * szz / s2) + quad
                       + eta**2 + math.log(2.0 * math.pi))

    def modes(self, theta: np.ndarray, previous: tuple[np.ndarray, np.ndarray] | None = None,
              ) -> tuple[np.ndarray, np.ndarray]:
        """Each child's conditional mode of ``eta`` and the scale ``1 / sqrt(-d2 log integrand)`` there: a grid
        (or the previous modes), then safeguarded Newton steps with central differences."""
        n = self.registry.n_children
        if previous is None:
            grid = np.linspace(-5.0, 5.0, 41)[:, None] * np.ones(n)
            m = grid[np.argmax(self.log_integrand(theta, grid), axis=0), np.arange(n)]
        else:
            m = previous[0].copy()
        h = 1e-3
        for _ in range(20):
            f = self.log_integrand(theta, np.stack([m - h, m, m + h]))
            d1 = (f[2] - f[0]) / (2 * h)
            d2 = (f[2] - 2 * f[1] + f[0]) / h**2
            step = np.where(d2 < 0.0, -d1 / np.where(d2 < 0.0, d2, -1.0), np.sign(d1) * 0.5)
            step = np.clip(step, -1.0, 1.0)
            for _ in range(10):  # halve any step that lowers the integrand
                better = self.log_integrand(theta, (m + step)[None])[0] >= f[1] - 1e-12
                if better.all():
                    break
                step = np.where(better, step, step / 2.0)
            m = m + np.where(better, step, 0.0)
            if np.max(np.abs(step)) < 1e-7:
                break
        f = self.log_integrand(theta, np.stack([m - h, m, m + h]))
        d2 = (f[2] - 2 * f[1] + f[0]) / h**2
        scale = np.where(d2 < 0.0, 1.0 / np.sqrt(np.where(d2 < 0.0, -d2, 1.0)), 1.0)
        return m, scale

    def negloglik(self, theta: np.ndarray, modes: tuple[np.ndarray, np.ndarray]) -> float:
        """Minus the log-likelihood by adaptive Gauss-Hermite quadrature at the children's ``modes``."""
        m, s = modes
        eta = m + math.sqrt(2.0) * s * self.x[:, None]
        f = self.log_integrand(theta, eta) + (self.x**2 + np.log(self.w))[:, None]
        top = f.max(axis=0)
        per_child = top + np.log(np.exp(f - top).sum(axis=0)) + np.log(math.sqrt(2.0) * s)
        total = -float(per_child.sum())
        return total if math.isfinite(total) else math.inf

    def curve(self, theta: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each child's mean scores ``(N, M)`` at random effects ``b`` ``(2, N)`` (limit, log rate), and their
        derivatives in ``b``."""
        p = self.unpack(theta)
        g = self.g
        rate = np.exp(p["log_rate"][g] + b[1])[:, None]
        peak, falls = p["peak"][g, None], self.falls[:, None]
        z, c = _design(self.age, rate, peak, p["decline"][g, None], falls)
        span = np.maximum(DECLINE_END_AGE - peak, 1e-9)
        after = np.where(falls, np.maximum(self.age - peak, 0.0), 0.0) / span
        dz = rate * (self.age * np.exp(-rate * self.age)
                     - after * (DECLINE_END_AGE * np.exp(-rate * DECLINE_END_AGE) - peak * np.exp(-rate * peak)))
        limit = (p["limit"][g] + b[0])[:, None]
        return limit * z + c, z, limit * dz

    def fixed_jacobian(self, theta: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Derivatives ``(N, M, P)`` of the children's mean scores in the fixed effects (the first ``P`` entries of
        ``theta``), random effects held at ``b``, by central differences."""
        n_fixed = theta.size - 4
        out = np.empty((*self.age.shape, n_fixed))
        for j in range(n_fixed):
            h = 1e-6 * max(1.0, abs(theta[j]))
            up, down = theta.copy(), theta.copy()
            up[j] += h
            down[j] -= h
            out[..., j] = (self.curve(up, b)[0] - self.curve(down, b)[0]) / (2 * h)
        return out

    def pnls(self, theta: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Penalised nonlinear least squares at the variance parameters of ``theta``: the fixed effects and the
        children's random effects ``(2, N)`` minimising ``|y - f|^2 / sd^2 + sum b' Psi^-1 b``, by joint
        Gauss-Newton steps (the fixed effects' equations with each child's random effects eliminated by its own
        2 x 2 block) with step halving, from ``theta`` and ``b``."""
        theta, b = theta.copy(), b.copy()
        n_fixed = theta.size - 4
        p = self.unpack(theta)
        s2, inv = p["sd"] ** 2, np.linalg.inv(_psi(p))

        def objective(t: np.ndarray, b: np.ndarray) -> float:
            r = np.where(self.mask, self.score - self.curve(t, b)[0], 0.0)
            return float((r * r).sum() / s2 + np.einsum("in,ij,jn->", b, inv, b))

        for _ in range(100):
            f, z, dz = self.curve(theta, b)
            r = np.where(self.mask, self.score - f, 0.0)
            zz = np.where(self.mask[..., None], np.stack([z, dz], axis=-1), 0.0)               # (N, M, 2)
            xx = np.where(self.mask[..., None], self.fixed_jacobian(theta, b), 0.0)            # (N, M, P)
            a = np.einsum("nmi,nmj->nij", zz, zz) / s2 + inv                                  # (N, 2, 2)
            c = np.einsum("nmi,nm->ni", zz, r) / s2 - (inv @ b).T                             # (N, 2)
            cross = np.einsum("nmi,nmp->nip", zz, xx) / s2                                    # (N, 2, P)
            a_cross, a_c = np.linalg.solve(a, cross), np.linalg.solve(a, c[..., None])[..., 0]
            lhs = np.einsum("nmp,nmq->pq", xx, xx) / s2 - np.einsum("nip,niq->pq", cross, a_cross)
            rhs = np.einsum("nmp,nm->p", xx, r) / s2 - np.einsum("nip,ni->p", cross, a_c)
            step_fixed = np.linalg.solve(lhs, rhs)
            step_random = (a_c - a_cross @ step_fixed).T
            before = objective(theta, b)
            for _ in range(30):
                trial = theta.copy()
                trial[:n_fixed] += step_fixed
                if objective(trial, b + step_random) <= before:
                    break
                step_fixed, step_random = step_fixed / 2.0, step_random / 2.0
            theta[:n_fixed] += step_fixed
            b = b + step_random
            if max(np.max(np.abs(step_fixed) / np.maximum(np.abs(theta[:n_fixed]), 1.0)),
                   np.max(np.abs(step_random))) < 1e-10:
                break
        return theta, b

    def gradient(self, theta: np.ndarray, modes: tuple[np.ndarray, np.ndarray]) -> tuple[float, np.ndarray]:
        """Minus the log-likelihood and its gradient by central differences, quadrature nodes held fixed."""
        value = self.negloglik(theta, modes)
        grad = np.empty(theta.size)
        for j in range(theta.size):
            h = 1e-5 * max(1.0, abs(theta[j]))
            up, down = theta.copy(), theta.copy()
            up[j] += h
            down[j] -= h
            grad[j] = (self.negloglik(up, modes) - self.negloglik(down, modes)) / (2 * h)
        if not np.isfinite(grad).all():
            grad = np.where(np.isfinite(grad), grad, 0.0)
            return math.inf, grad
        return value, grad

    def hessian(self, theta: np.ndarray, modes: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Hessian of minus the log-likelihood by central differences of the gradient, symmetrised."""
        out = np.empty((theta.size, theta.size))
        for j in range(theta.size):
            h = 1e-4 * max(1.0, abs(theta[j]))
            up, down = theta.copy(), theta.copy()
            up[j] += h
            down[j] -= h
            out[j] = (self.gradient(up, modes)[1] - self.gradient(down, modes)[1]) / (2 * h)
        return (out + out.T) / 2.0

    def summary(self, theta: np.ndarray, loglik: float, cov: np.ndarray, positive: bool, settled: bool,
                gradient: float, message: str, iterations: int, method: str) -> GrowthFit:
        """The fit at ``theta`` with covariance ``cov`` (``positive``: its information matrix is positive
        definite; ``settled``: the optimiser's own convergence criterion holds)."""
        p = self.unpack(theta)
        se = np.sqrt(np.where(np.diag(cov) > 0.0, np.diag(cov), np.nan))
        k, d = len(self.levels), len(self.declining)
        r = self.registry
        levels = []
        for j, level in enumerate(self.levels):
            mine = r.gmfcs == level
            rate_se = se[k + j]
            age90 = math.log(10.0) / math.exp(p["log_rate"][j])
            peak = decline = None
            if j in self.declining:
                m = self.declining.index(j)
                peak = float(p["peak"][j])
                decline = Estimate(float(p["decline"][j]), float(se[2 * k + m]))
            levels.append(LevelFit(gmfcs=level, n_children=int(mine.sum()),
                                   n_scores=int(mine[r.child].sum()),
                                   limit=Estimate(float(p["limit"][j]), float(se[j])),
                                   log_rate=Estimate(float(p["log_rate"][j]), float(rate_se)),
                                   age90=Estimate(age90, age90 * float(rate_se)), peak_age=peak, decline=decline))
        t = 2 * k + d
        corr = p["corr"]
        boundary = abs(corr) > 0.999 or p["sd_lograte"] < 1e-4 or p["sd_limit"] < 1e-4
        converged = bool(math.isfinite(loglik) and settled and positive and not boundary)
        runaway = [lv.gmfcs for lv in levels if not MIN_AGE90 <= lv.age90.value <= MAX_AGE90]
        if runaway:
            converged = False
            message = (f"the growth rate of GMFCS {', '.join(map(str, runaway))} is not identified (age-90 ran outside "
                       f"{MIN_AGE90:g}-{MAX_AGE90:g} years): too few children of that level are young enough to show "
                       "the rise to the limit")
        elif not positive:
            message = "the information matrix is not positive definite at the estimate: a parameter is not identified"
        elif boundary:
            message = "a variance parameter is at its boundary (an SD near 0 or a correlation near +/-1)"
        return GrowthFit(model=self.model, levels=tuple(levels),
                         sd_limit=Estimate(p["sd_limit"], p["sd_limit"] * float(se[t])),
                         sd_lograte=Estimate(p["sd_lograte"], p["sd_lograte"] * float(se[t + 1])),
                         corr=Estimate(corr, (1.0 - corr**2) * float(se[t + 2])),
                         residual_sd=Estimate(p["sd"], p["sd"] * float(se[t + 3])),
                         loglik=loglik, n_parameters=self.size, n_children=r.n_children, n_scores=r.n_scores,
                         converged=converged, iterations=iterations, gradient=gradient, message=message,
                         method=method, nodes=self.nodes, theta=theta, covariance=cov)


def visual_check(f: GrowthFit, registry: Registry, rng: np.random.Generator, n_sims: int,
                 centiles: tuple[int, ...] = VPC_CENTILES, bands: int = VPC_BANDS) -> pd.DataFrame:
    """Visual predictive check: by GMFCS level and age band (equal shares of the level's scores), the observed
    ``centiles`` of the scores and the 5th, 50th and 95th centiles of the same centiles over ``n_sims``
    registries simulated from ``f`` (same children, same ages). One row per level, band and centile: ``gmfcs``,
    ``age_low``, ``age_high``, ``age`` (the band's median age), ``centile``, ``observed``, ``low``, ``median``,
    ``high``."""
    import pandas as pd

    simulated = f.simulate(registry, rng, n_sims)
    level = registry.gmfcs[registry.child]
    rows = []
    for g in np.unique(level):
        mine = np.flatnonzero(level == g)
        ages = registry.age[mine]
        cuts = np.quantile(ages, np.linspace(0.0, 1.0, min(bands, max(1, mine.size // 10)) + 1))
        band = np.clip(np.searchsorted(cuts, ages, side="right") - 1, 0, cuts.size - 2)
        for k in range(cuts.size - 1):
            rows_k = mine[band == k]
            if rows_k.size == 0:
                continue
            observed = np.percentile(registry.score[rows_k], centiles)
            sims = np.percentile(simulated[:, rows_k], centiles, axis=1)  # (centiles, n_sims)
            low, mid, high = np.percentile(sims, (5, 50, 95), axis=1)
            for j, c in enumerate(centiles):
                rows.append({"gmfcs": int(g), "age_low": float(cuts[k]), "age_high": float(cuts[k + 1]),
                             "age": float(np.median(registry.age[rows_k])), "centile": c,
                             "observed": float(observed[j]), "low": float(low[j]), "median": float(mid[j]),
                             "high": float(high[j])})
    return pd.DataFrame(rows)


def _lindstrom_bates(problem: _Problem, progress: Callable[[int, float], None] | None) -> GrowthFit:
    """R nlme's fit ([Lindstrom 1990]; [Pinheiro 2000], section 7.1): alternate penalised nonlinear
    least squares for the fixed effects and the children's random effects (variance parameters held), and the
    maximum-likelihood fit of the linear mixed model linearised at them (fixed effects by GLS), until the
    parameters stop changing. The log-likelihood is the linear mixed model's at the end, as nlme reports it."""
    theta = problem.start()
    n_fixed = theta.size - 4
    b = np.zeros((2, problem.registry.n_children))
    settled = False
    message = "the alternating algorithm did not settle in 200 iterations"
    iteration = 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            for iteration in range(1, 201):
                theta, b = problem.pnls(theta, b)
                lme = _Linearised(problem, theta, b)
                before = theta.copy()
                theta = lme.fit(theta)
                if progress is not None:
                    progress(iteration, -lme.negloglik(theta[n_fixed:]))
                if np.max(np.abs(theta - before) / np.maximum(np.abs(before), 1.0)) < 1e-8:
                    settled, message = True, "converged"
                    break
            theta, b = problem.pnls(theta, b)
            lme = _Linearised(problem, theta, b)
            variance = theta[n_fixed:]
            cov_variance, positive = _inverse(lme.hessian(variance))
            cov_fixed, positive_fixed = _inverse(lme.information(variance))
            loglik = -lme.negloglik(variance)
        except np.linalg.LinAlgError:  # as R's nlme stops with an error
            nan = np.full((theta.size, theta.size), np.nan)
            return problem.summary(theta, math.nan, nan, False, False, math.nan, "a step of the alternating "
                                   "algorithm met a singular system", iteration, "nlme")
    cov = np.zeros((theta.size, theta.size))
    cov[:n_fixed, :n_fixed], cov[n_fixed:, n_fixed:] = cov_fixed, cov_variance
    return problem.summary(theta, loglik, cov, positive and positive_fixed, settled, math.nan, message, iteration,
                           "nlme")


class _Linearised:
    """The linear mixed model ``w = X beta + Z b + e`` that nlme fits at the current estimates (``X`` and ``Z`` the
    derivatives of the mean in the fixed and random effects, ``w`` the working response), with ``beta``
    profiled out by GLS."""

    def __init__(self, problem: _Problem, theta: np.ndarray, b: np.ndarray) -> None:
        self.n_fixed = theta.size - 4
        f, z, dz = problem.curve(theta, b)
        mask = problem.mask
        x = np.where(mask[..., None], problem.fixed_jacobian(theta, b), 0.0)  # (N, M, P)
        z = np.where(mask[..., None], np.stack([z, dz], axis=-1), 0.0)     # (N, M, 2)
        # the working response less X times the current fixed effects (kept small: no digits lost in the sums)
        w = np.where(mask, problem.score - f + np.einsum("nmq,qn->nm", z, b), 0.0)
        self.origin = theta[:self.n_fixed].copy()
        # the cross-products each child contributes: the GLS needs nothing else (Woodbury's identity)
        self.zz, self.zx, self.zw = np.einsum("nmi,nmj->nij", z, z), np.einsum("nmi,nmp->nip", z, x), \
            np.einsum("nmi,nm->ni", z, w)
        self.xx, self.xw, self.ww = np.einsum("nmp,nmq->pq", x, x), np.einsum("nmp,nm->p", x, w), float((w * w).sum())
        self.n_scores = int(mask.sum())

    def gls(self, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """The GLS fixed effects, ``X' V^-1 X`` and minus the log-likelihood at ``variance`` (log SDs, atanh corr,
        log SD), with ``V_i^-1 = (I - Z_i A_i^-1 Z_i') / sd^2``, ``A_i = sd^2 Psi^-1 + Z_i' Z_i``, and
        ``|V_i| = sd^(2 n_i) |I + Psi Z_i' Z_i / sd^2|``."""
        p = {"sd_limit": math.exp(variance[0]), "sd_lograte": math.exp(variance[1]), "corr": math.tanh(variance[2])}
        psi, s2 = _psi(p), math.exp(2.0 * variance[3])
        a = s2 * np.linalg.inv(psi) + self.zz
        det = a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] ** 2  # A_i^-1 of each 2 x 2 A_i by its adjugate
        inverse = np.stack([np.stack([a[:, 1, 1], -a[:, 0, 1]], -1), np.stack([-a[:, 0, 1], a[:, 0, 0]], -1)], -2)
        inverse /= det[:, None, None]
        a_zx = inverse @ self.zx
        xvx = (self.xx - np.einsum("nip,niq->pq", self.zx, a_zx)) / s2
        xvw = (self.xw - np.einsum("nip,nij,nj->p", self.zx, inverse, self.zw)) / s2
        beta = np.linalg.solve(xvx, xvw)
        zr = self.zw - self.zx @ beta
        rss = (self.ww - 2.0 * beta @ self.xw + beta @ self.xx @ beta
               - np.einsum("ni,nij,nj->", zr, inverse, zr)) / s2
        # |I + Psi Z'Z / sd^2| = |A| |Psi| / sd^4
        logdet = np.log(det) + math.log(np.linalg.det(psi)) - 2.0 * math.log(s2) if (det > 0).all() else math.inf
        total = self.n_scores * math.log(s2) + float(np.sum(logdet))
        return self.origin + beta, xvx, 0.5 * (total + float(rss) + self.n_scores * math.log(2.0 * math.pi))

    def negloglik(self, variance: np.ndarray) -> float:
        value = self.gls(variance)[2]
        return value if math.isfinite(value) else math.inf

    def information(self, variance: np.ndarray) -> np.ndarray:
        return self.gls(variance)[1]

    def fit(self, theta: np.ndarray) -> np.ndarray:
        """``theta`` with the variance parameters maximising the likelihood and the GLS fixed effects there."""
        result = optimize.minimize(self.negloglik, theta[self.n_fixed:], method="BFGS",
                                   options={"gtol": 1e-9, "maxiter": 500})
        return np.concatenate([self.gls(result.x)[0], result.x])

    def hessian(self, variance: np.ndarray) -> np.ndarray:
        """Hessian of minus the profiled log-likelihood in the variance parameters, by central differences."""
        k, h = variance.size, 1e-4
        out = np.empty((k, k))
        for i in range(k):
            for j in range(k):
                ei, ej = np.eye(k)[i] * h, np.eye(k)[j] * h
                out[i, j] = (self.negloglik(variance + ei + ej) - self.negloglik(variance + ei - ej)
                             - self.negloglik(variance - ei + ej) + self.negloglik(variance - ei - ej)) / (4 * h * h)
        return (out + out.T) / 2.0


def _inverse(information: np.ndarray) -> tuple[np.ndarray, bool]:
    """The inverse of an information matrix, and whether it is positive definite."""
    try:
        positive = bool(np.all(np.linalg.eigvalsh(information) > 0.0))
        return np.linalg.inv(information), positive
    except np.linalg.LinAlgError:
        return np.full(information.shape, np.nan), False


def _psi(p: dict[str, Any]) -> np.ndarray:
    """The covariance of the random limit and log rate."""
    sd1, sd2, rho = p["sd_limit"], p["sd_lograte"], p["corr"]
    return np.array([[sd1**2, rho * sd1 * sd2], [rho * sd1 * sd2, sd2**2]])


def _design(age: np.ndarray, rate: np.ndarray, peak: np.ndarray | float, decline: np.ndarray | float,
            falls: np.ndarray | bool) -> tuple[np.ndarray, np.ndarray]:
    """The mean score is ``limit z + c``: ``z`` the rise ``1 - exp(-rate age)`` less the decline's share of it,
    ``c`` the fixed part of the decline (zero where a child's level does not ``fall``); arrays broadcast."""
    span = np.maximum(DECLINE_END_AGE - peak, 1e-9)
    after = np.where(falls, np.maximum(age - peak, 0.0), 0.0) / span
    rise = -np.expm1(-rate * age)
    lost = -np.expm1(-rate * DECLINE_END_AGE) + np.expm1(-rate * peak)
    return rise - after * lost, -after * decline


def json_number(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None
