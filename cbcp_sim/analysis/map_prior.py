"""Meta-analytic-predictive (MAP) prior of a mean or an effect (points) from earlier studies (Neuenschwander et
al. 2010, Clin Trials 7:5; Schmidli et al. 2014, Biometrics 70:1023), by quadrature rather than MCMC.

Study ``i`` reports ``y_i ~ N(theta_i, s_i^2)``; ``theta_i ~ N(mu, tau^2)``; flat prior on ``mu``; half-normal
prior on ``tau`` with scale ``tau_scale``. The MAP prior is the predictive distribution of a new study's
``theta ~ N(mu, tau^2)`` given the studies. Given ``tau``, with ``w_i = 1 / (s_i^2 + tau^2)``, ``mu`` is
``N(mu_hat, V)``: ``mu_hat = sum w y / sum w``, ``V = 1 / sum w``, and
``p(tau | y) ∝ HN(tau) sqrt(V) prod_i N(y_i; mu_hat, s_i^2 + tau^2)`` (``mu`` integrated out), so the MAP prior is
the continuous mixture over ``p(tau | y)`` of ``N(mu_hat(tau), V(tau) + tau^2)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from cbcp_sim.analysis.mixtures import Mixture

_NODES, _WEIGHTS = special.roots_legendre(64)  # quadrature over tau = a sinh(u)
_DROP = 40.0  # log-density below the highest value of p(u | y) left out of the span of u
_PILOT = 401  # points of each search grid for that span
_FIT = 200  # quantiles of the exact MAP prior where the approximation is fitted
_CHECK = np.linspace(-8.0, 8.0, 33)  # where its CDF error is measured, in SDs of each exact component


@dataclass(frozen=True)
class MapPrior:
    """A MAP prior: its approximation by a few normals (``mixture``), the quadrature mixture it approximates
    (``exact``) and the largest CDF difference between the two; the exact MAP's mean and SD (points), the
    posterior median of ``tau`` (points) and the number of studies."""

    mixture: Mixture
    exact: Mixture
    max_cdf_error: float
    mean: float
    sd: float
    tau_median: float
    studies: int


def study_summaries(rows: Sequence[Mapping[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Each study's estimate and standard error (points): from ``estimate`` and ``se``, or an arm's ``mean``,
    ``sd`` and ``n`` (``se = sd / sqrt(n)``). Other keys (a label) are ignored."""
    y, s = np.empty(len(rows)), np.empty(len(rows))
    for i, row in enumerate(rows):
        if "estimate" in row and "mean" in row:
            raise ValueError(f"study row {i}: give 'estimate' and 'se', or 'mean', 'sd' and 'n', not both")
        if "estimate" in row or "se" in row:
            y[i], s[i] = _number(row, i, "estimate"), _number(row, i, "se", positive=True)
        else:
            n = _number(row, i, "n", positive=True)
            y[i], s[i] = _number(row, i, "mean"), _number(row, i, "sd", positive=True) / np.sqrt(n)
    return y, s


def _number(row: Mapping[str, float], i: int, key: str, *, positive: bool = False) -> float:
    """``row[key]`` as a finite float (and > 0 if ``positive``), or a ValueError naming the row and key."""
    if key not in row:
        raise ValueError(f"study row {i}: missing {key!r}")
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"study row {i}: {key!r} must be a number, not {value!r}")
    if not np.isfinite(value) or (positive and value <= 0):
        raise ValueError(f"study row {i}: {key!r} must be {'> 0' if positive else 'finite'}, not {value!r}")
    return float(value)


def map_prior(estimates: Sequence[float] | np.ndarray, ses: Sequence[float] | np.ndarray, tau_scale: float, *,
              tolerance: float = 0.002, max_components: int = 4) -> MapPrior:
    """The MAP prior from studies' ``estimates`` and standard errors ``ses`` (points), with a half-normal prior of
    scale ``tau_scale`` (points) on the between-study SD ``tau``.

    ``exact``: the continuous mixture over ``tau`` by 64-point Gauss-Legendre quadrature in ``u``, ``tau = a
    sinh(u)`` with ``a`` the pooled SE (so the nodes resolve both ``tau`` below the studies' SEs and a long tail),
    over the span where ``p(u | y)`` is within ``e^-40`` of its highest value (a grid search, zooming in on a
    narrow posterior); one component per node. Its CDF, density (times the SD), mean and SD agree with an adaptive
    2-D integration over ``mu`` and ``tau`` to ~1e-12 (``tests/test_map_prior.py``); 32 nodes would give ~1e-6.

    ``mixture``: for ``K = 1, 2, ..., max_components`` in turn, the ``K``-normal mixture whose CDF is closest in
    least squares to the exact CDF at 200 of its quantiles (Levenberg-Marquardt, started from the exact components
    cut into ``K`` groups of equal posterior mass of ``tau``, so deterministic); the first whose largest CDF
    difference from ``exact`` (``max_cdf_error``, over points every half SD of each exact component) is at most
    ``tolerance`` is kept, or the ``max_components`` one if none is.

    ``tau_scale = 0`` fixes ``tau = 0``: the MAP prior is then exactly the pooled (fixed-effect) normal
    ``N(sum w y / sum w, 1 / sum w)``, ``w = 1 / s^2``, both ``mixture`` and ``exact``.
    """
    y, s = np.asarray(estimates, dtype=float), np.asarray(ses, dtype=float)
    if y.ndim != 1 or y.shape != s.shape or y.size < 1:
        raise ValueError(f"estimates and ses must be two lists of the same length >= 1, not {y.shape} and {s.shape}")
    if not (np.isfinite(y).all() and np.isfinite(s).all() and (s > 0).all()):
        raise ValueError("estimates must be finite and ses finite and > 0")
    if not (np.isfinite(tau_scale) and tau_scale >= 0):
        raise ValueError(f"tau_scale must be >= 0, not {tau_scale!r}")
    if not tolerance > 0 or isinstance(max_components, bool) or int(max_components) != max_components \
            or max_components < 1:
        raise ValueError(f"tolerance must be > 0 and max_components an integer >= 1, not {tolerance!r} and "
                         f"{max_components!r}")
    c = float(tau_scale)
    if c == 0:
        w = 1.0 / s**2
        pooled = Mixture(weights=np.ones(1), means=np.array([w @ y / w.sum()]), sds=np.array([w.sum() ** -0.5]))
        return MapPrior(mixture=pooled, exact=pooled, max_cdf_error=0.0, mean=float(pooled.means[0]),
                        sd=float(pooled.sds[0]), tau_median=0.0, studies=int(y.size))
    a = float(np.sum(s**-2.0) ** -0.5)  # tau = a sinh(u): linear below the pooled SE, logarithmic above
    lo, hi = _span(y, s, c, a)
    u = lo + (hi - lo) * (_NODES + 1.0) / 2.0
    log_mass, mu_hat, v = _posterior(u, y, s, c, a)
    top = log_mass.max()
    mass = _WEIGHTS * np.exp(log_mass - top)
    total = mass.sum()
    exact = Mixture(weights=mass / total, means=mu_hat, sds=np.sqrt(v + (a * np.sinh(u)) ** 2))
    mean = float(exact.weights @ exact.means)
    sd = float(np.sqrt(exact.weights @ (exact.sds**2 + (exact.means - mean) ** 2)))

    def below(end: float) -> float:  # P(u <= end | y) - 1/2, Gauss-Legendre on [lo, end]
        nodes = lo + (end - lo) * (_NODES + 1.0) / 2.0
        part = _WEIGHTS @ np.exp(_posterior(nodes, y, s, c, a)[0] - top) * (end - lo) / (hi - lo)
        return part / total - 0.5

    tau_median = a * np.sinh(optimize.brentq(below, lo, hi, xtol=1e-13, rtol=1e-13))
    mixture, error = _approximate(exact, mean, sd, tolerance, int(max_components))
    return MapPrior(mixture=mixture, exact=exact, max_cdf_error=error, mean=mean, sd=sd, tau_median=float(tau_median),
                    studies=int(y.size))


def _posterior(u: np.ndarray, y: np.ndarray, s: np.ndarray, tau_scale: float,
               a: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At ``tau = a sinh(u)``: ``log p(u | y)`` up to a constant, ``mu_hat(tau)`` and ``V(tau)``."""
    tau = a * np.sinh(u)
    var = s**2 + tau[:, None] ** 2
    w = 1.0 / var
    total = w.sum(axis=1)
    mu_hat = (w @ y) / total
    log_post = (np.log(np.cosh(u)) - 0.5 * (tau / tau_scale) ** 2 - 0.5 * np.log(total)
                - 0.5 * np.log(var).sum(axis=1) - 0.5 * (w * (y - mu_hat[:, None]) ** 2).sum(axis=1))
    return log_post, mu_hat, 1.0 / total


def _span(y: np.ndarray, s: np.ndarray, tau_scale: float, a: float) -> tuple[float, float]:
    """The span of ``u`` where ``log p(u | y)`` is within ``_DROP`` of its highest value.

    Beyond ``tau = (2 n D^2 c^2)^(1/4)`` (``D`` the range of ``y``, ``c = tau_scale``) ``log p(tau | y)`` falls
    faster than ``-tau / (2 c^2)``, so the search starts at ``tau`` from 0 to that + 12 c; it zooms in until the
    span holds 100 points of the search grid (at most 20 times).
    """
    lo, hi = 0.0, float(np.arcsinh(((2.0 * y.size * np.ptp(y) ** 2 * tau_scale**2) ** 0.25 + 12.0 * tau_scale) / a))
    for _ in range(20):
        grid = np.linspace(lo, hi, _PILOT)
        log_post = _posterior(grid, y, s, tau_scale, a)[0]
        inside = np.flatnonzero(log_post >= log_post.max() - _DROP)
        first, last = max(inside[0] - 1, 0), min(inside[-1] + 1, _PILOT - 1)
        lo, hi = grid[first], grid[last]
        if last - first >= 100:
            break
    return lo, hi


def _cdf(mixture: Mixture, x: np.ndarray) -> np.ndarray:
    """The mixture's CDF at each ``x``."""
    return special.ndtr((x[:, None] - mixture.means) / mixture.sds) @ mixture.weights


def _approximate(exact: Mixture, center: float, scale: float, tolerance: float,
                 max_components: int) -> tuple[Mixture, float]:
    """The fewest-component fit within ``tolerance`` of ``exact`` in CDF (or the last one tried) and its error;
    fitted in units of ``(x - center) / scale``, the exact mean and SD."""
    exact = Mixture(weights=exact.weights, means=(exact.means - center) / scale, sds=exact.sds / scale)
    check = np.sort((exact.means[:, None] + exact.sds[:, None] * _CHECK).ravel())
    check_cdf = _cdf(exact, check)
    x = np.interp((np.arange(_FIT) + 0.5) / _FIT, check_cdf, check)
    target = _cdf(exact, x)
    upper = np.cumsum(exact.weights)
    for k in range(1, max_components + 1):
        cuts = np.arange(k + 1) / k
        share = np.clip(np.minimum(upper[:, None], cuts[1:])
                        - np.maximum(upper[:, None] - exact.weights[:, None], cuts[:-1]), 0.0, None)
        pi = share.sum(axis=0)
        mu = (share.T @ exact.means) / pi
        sd = np.sqrt((share.T @ (exact.sds**2 + exact.means**2)) / pi - mu**2)
        fit = _fit(x, target, np.concatenate([np.log(pi[1:] / pi[0]), mu, np.log(sd)]), k)
        error = float(np.abs(_cdf(fit, check) - check_cdf).max())
        if error <= tolerance:
            break
    return Mixture(weights=fit.weights, means=center + scale * fit.means, sds=scale * fit.sds), error


def _fit(x: np.ndarray, target: np.ndarray, start: np.ndarray, k: int) -> Mixture:
    """Least-squares fit of a ``k``-normal mixture's CDF at ``x`` to ``target``; parameters: log weight ratios to
    the first component, means, log SDs."""

    def unpack(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pi = np.exp(np.concatenate([[0.0], theta[:k - 1]]))
        return pi / pi.sum(), theta[k - 1:2 * k - 1], np.exp(theta[2 * k - 1:])

    def residuals(theta: np.ndarray) -> np.ndarray:
        pi, mu, sd = unpack(theta)
        return special.ndtr((x[:, None] - mu) / sd) @ pi - target

    def jacobian(theta: np.ndarray) -> np.ndarray:
        pi, mu, sd = unpack(theta)
        z = (x[:, None] - mu) / sd
        cdf, pdf = special.ndtr(z), np.exp(-0.5 * z**2) / np.sqrt(2.0 * np.pi)
        return np.hstack([pi[1:] * (cdf[:, 1:] - (cdf @ pi)[:, None]), -pi * pdf / sd, -pi * pdf * z])

    pi, mu, sd = unpack(optimize.least_squares(residuals, start, jac=jacobian, method="lm").x)
    return Mixture(weights=pi, means=mu, sds=sd)
