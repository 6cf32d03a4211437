"""Normal mixtures, batched over replicates: priors and posteriors of a mean or an effect (GMFM-66 points).

Closed forms and quadrature, vectorised, no MCMC. A batch of mixtures has arrays of shape ``(R, K)``: ``R``
replicates (simulated trials), ``K`` components; a prior of shape ``(K,)`` broadcasts over the replicates.

- :func:`posterior`: a normal-mixture prior (or a flat one) updated by a normal likelihood ``N(estimate | theta,
  se^2)`` is again a normal mixture, its weights from each component's marginal likelihood.
- :func:`posterior_t`: a Student t likelihood is a scale mixture of normals over ``lambda ~ Gamma(df/2, df/2)``;
  a trapezoidal rule in ``log lambda`` makes the posterior a mixture of ``K * nodes`` normals. With a flat prior
  the posterior is the :class:`StudentT` itself, so decisions equal the t-test's exactly.
- :func:`robustify` (RBesT's), :func:`predictive_p` (Box's prior-predictive p-value), :func:`ess` (ELIR and
  moment effective sample sizes, [Neuenschwander 2020]).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

NODES = 48  #: nodes in ``lambda`` for a t likelihood (see :func:`posterior_t`)
#: The fewest nodes by the smallest df of a batch: each keeps the scale mixture's tail probabilities within 1e-6
#: of the t's (measured against ``stdtr`` over x in [-8, 8]: 3.7e-7 at df 10 with 16 nodes, 4.2e-8 at df 5 with 24,
#: 1.3e-7 at df 2 with 48), so large trials need not pay for small ones' accuracy.
_NODES_BY_DF = ((10.0, 16), (5.0, 24), (0.0, NODES))
_TAIL = 1e-8  # mass of the t's mixing distribution left beyond each end of the nodes
_LEGENDRE = special.roots_legendre(16)  # per panel of the ELIR integral (see :func:`ess`)
_PANELS = np.arange(-10.0, 10.5)  # panel ends, SDs from each component's mean
_QUANTILE_TOL = 1e-12  # points: the last Newton step of a quantile (the error is far smaller)
_QUANTILE_ITERATIONS = 100


def nodes_for(df: np.ndarray | float) -> int:
    """Nodes for a t likelihood or :meth:`StudentT.as_mixture` of degrees of freedom ``df`` (a batch: by its
    smallest finite df), within 1e-6 of the t's tail probabilities."""
    df = np.asarray(df, dtype=float)
    finite = df[np.isfinite(df)]
    smallest = finite.min() if finite.size else np.inf
    return next(nodes for least, nodes in _NODES_BY_DF if smallest >= least)


def _broadcast(weights: np.ndarray, means: np.ndarray, sds: np.ndarray) -> Mixture:
    weights, means, sds = np.broadcast_arrays(weights, means, sds)
    return Mixture(weights=weights, means=means, sds=sds)


def _sum(a: np.ndarray) -> np.ndarray:
    """Sum over the last axis (as a matrix product: several times faster than ``sum`` over a few components)."""
    return a @ np.ones(a.shape[-1])


def _flatten(a: np.ndarray) -> np.ndarray:
    """The last two axes as one."""
    return a.reshape(*a.shape[:-2], a.shape[-2] * a.shape[-1])


@dataclass(frozen=True)
class Mixture:
    """Normal mixtures with arrays of shape ``(..., K)``: one mixture of ``K`` components per leading index."""

    weights: np.ndarray  #: (..., K), summing to 1 over the last axis
    means: np.ndarray    #: (..., K) points
    sds: np.ndarray      #: (..., K) points, > 0

    @classmethod
    def of(cls, components: Iterable[tuple[float, float, float]]) -> Mixture:
        """One mixture from ``(weight, mean, sd)`` triples; the weights are normalised to sum to 1."""
        weights, means, sds = (np.array(c, dtype=float) for c in zip(*components, strict=True))
        return cls(weights=weights / weights.sum(), means=means, sds=sds)

    @property
    def components(self) -> int:
        """``K``, the number of components."""
        return self.weights.shape[-1]

    def mean(self) -> np.ndarray:
        """Mean (points), of the batch's shape."""
        return _sum(self.weights * self.means)

    def var(self) -> np.ndarray:
        """Variance (points^2), of the batch's shape."""
        centred = self.means - self.mean()[..., None]
        return _sum(self.weights * (self.sds**2 + centred**2))

    def _z(self, x: np.ndarray | float) -> np.ndarray:
        return (np.asarray(x, dtype=float)[..., None] - self.means) / self.sds

    def pdf(self, x: np.ndarray | float) -> np.ndarray:
        """Density at ``x`` (points; broadcast to the batch's shape), per point."""
        z = self._z(x)
        return _sum(self.weights * np.exp(-0.5 * z**2) / (np.sqrt(2.0 * np.pi) * self.sds))

    def cdf(self, x: np.ndarray | float) -> np.ndarray:
        """P(X <= x)."""
        return _sum(self.weights * special.ndtr(self._z(x)))

    def sf(self, x: np.ndarray | float) -> np.ndarray:
        """P(X > x), accurate in the upper tail."""
        return _sum(self.weights * special.ndtr(-self._z(x)))

    def quantile(self, q: np.ndarray | float) -> np.ndarray:
        """The ``q`` quantile (points; ``q`` a scalar or of the batch's shape), to ~1e-12 points.

        Newton's method kept inside a bracket, bisecting when a step leaves it: the ``q`` quantile lies between
        the smallest and the largest of the components' ``q`` quantiles. Upper quantiles solve ``sf = 1 - q``.
        """
        q = np.asarray(q, dtype=float)
        q = np.broadcast_to(q, np.broadcast_shapes(q.shape, self.weights.shape[:-1]))
        sign = np.where(q > 0.5, -1.0, 1.0)  # -1: solve sf(x) = 1 - q
        tail = np.where(q > 0.5, 1.0 - q, q)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            density = self.weights / (np.sqrt(2.0 * np.pi) * self.sds)
            ends = self.means + self.sds * special.ndtri(q)[..., None]
            lo, hi = ends.min(axis=-1), ends.max(axis=-1)
            x = np.clip(self.mean() + np.sqrt(self.var()) * special.ndtri(q), lo, hi)
            for _ in range(_QUANTILE_ITERATIONS):
                z = self._z(x)
                g = sign * (_sum(self.weights * special.ndtr(sign[..., None] * z)) - tail)  # F(x) - q
                lo, hi = np.where(g < 0.0, x, lo), np.where(g < 0.0, hi, x)
                step = x - g / _sum(density * np.exp(-0.5 * z * z))
                new = np.where((step >= lo) & (step <= hi), step, 0.5 * (lo + hi))
                done = ~(np.abs(new - x) > _QUANTILE_TOL) | ~(hi - lo > _QUANTILE_TOL)
                x = np.where(np.isfinite(new), new, x)
                if done.all():
                    break
        return x

    def shift(self, delta: np.ndarray | float) -> Mixture:
        """The mixture of ``X + delta`` (points; a scalar or of the batch's shape)."""
        return _broadcast(self.weights, self.means + np.asarray(delta, dtype=float)[..., None], self.sds)

    def pruned(self, tolerance: float = 1e-10) -> Mixture:
        """The same mixtures without their lightest components: in each, the heaviest components holding all but
        at most ``tolerance`` of the weight are kept (as many for every mixture of the batch as the one that
        needs most) and the weights renormalised, so no probability moves by more than ``tolerance``."""
        order = np.argsort(-self.weights, axis=-1)
        weights = np.take_along_axis(self.weights, order, axis=-1)
        needed = (np.cumsum(weights, axis=-1) < 1.0 - tolerance).sum(axis=-1) + 1
        keep = order[..., :int(min(needed.max(initial=1), self.components))]
        weights = np.take_along_axis(self.weights, keep, axis=-1)
        return Mixture(weights=weights / _sum(weights)[..., None], means=np.take_along_axis(self.means, keep, -1),
                       sds=np.take_along_axis(self.sds, keep, -1))

    def difference(self, other: Mixture) -> Mixture:
        """The mixture of ``X - Y`` for independent ``X ~ self``, ``Y ~ other``: ``K1 * K2`` components, batched."""
        weights, means, sds = np.broadcast_arrays(self.weights[..., :, None] * other.weights[..., None, :],
                                                  self.means[..., :, None] - other.means[..., None, :],
                                                  np.hypot(self.sds[..., :, None], other.sds[..., None, :]))
        return Mixture(weights=_flatten(weights), means=_flatten(means), sds=_flatten(sds))


@dataclass(frozen=True)
class StudentT:
    """Location-scale Student t distributions, batched: ``loc + scale * T_df`` (arrays of one shape)."""

    loc: np.ndarray    #: points
    scale: np.ndarray  #: points, > 0
    df: np.ndarray     #: degrees of freedom, > 0 (inf: normal)

    def mean(self) -> np.ndarray:
        """Mean (points); NaN for ``df <= 1``."""
        return np.where(self.df > 1.0, self.loc, np.nan)

    def var(self) -> np.ndarray:
        """Variance (points^2); inf for ``df <= 2``."""
        with np.errstate(divide="ignore"):
            return self.scale**2 * np.where(self.df > 2.0, 1.0 + 2.0 / (self.df - 2.0), np.inf)

    def pdf(self, x: np.ndarray | float) -> np.ndarray:
        """Density at ``x`` (points), per point."""
        return stats.t.pdf((x - self.loc) / self.scale, self.df) / self.scale

    def cdf(self, x: np.ndarray | float) -> np.ndarray:
        """P(X <= x)."""
        return special.stdtr(self.df, (x - self.loc) / self.scale)

    def sf(self, x: np.ndarray | float) -> np.ndarray:
        """P(X > x), accurate in the upper tail: with ``loc`` an estimate and ``scale`` its SE, ``sf(0)`` is one
        minus the one-sided t-test's p-value ``stdtr(df, -loc / scale)``."""
        return special.stdtr(self.df, (self.loc - x) / self.scale)

    def quantile(self, q: np.ndarray | float) -> np.ndarray:
        """The ``q`` quantile (points)."""
        return self.loc + self.scale * special.stdtrit(self.df, q)

    def shift(self, delta: np.ndarray | float) -> StudentT:
        """The distribution of ``X + delta``."""
        loc, scale, df = np.broadcast_arrays(self.loc + delta, self.scale, self.df)
        return StudentT(loc=loc, scale=scale, df=df)

    def as_mixture(self, nodes: int = NODES) -> Mixture:
        """The scale mixture ``sum_j c_j N(loc, scale^2 / lambda_j)`` on the nodes of :func:`posterior_t` (for
        differences with a mixture); NaN where ``df`` is NaN or ``<= 0``."""
        lam, log_mass = _scale_grid(self.df, nodes)
        with np.errstate(invalid="ignore"):
            mass = np.exp(log_mass - log_mass.max(axis=-1, keepdims=True))
            return _broadcast(mass / mass.sum(axis=-1, keepdims=True), np.asarray(self.loc)[..., None],
                              np.asarray(self.scale)[..., None] / np.sqrt(lam))


def _scale_grid(df: np.ndarray, nodes: int, conflict: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``lambda_j`` and log masses (up to a constant per distribution), ``(..., nodes)``, of the trapezoidal
    rule in ``u = log lambda`` for ``lambda ~ Gamma(df/2, rate df/2)``, the mixing distribution of ``t_df``.

    The nodes run evenly from the ``_TAIL`` quantile of ``Gamma(df/2, rate df/2 + conflict)`` to the
    ``1 - _TAIL`` quantile of ``Gamma(df/2 + 1/2, rate df/2)``: an estimate ``d`` from a component's mean moves the
    posterior of ``lambda`` down, at most as far as the rate ``df/2 + d^2 / (2 se^2)`` would (``conflict`` is the
    largest ``d^2 / (2 se^2)``), and a likelihood moves it up by at most a factor ``sqrt(lambda)``. The
    integrands are analytic in a strip around the real ``u`` axis and vanish fast at both ends, so the rule
    converges geometrically in ``nodes`` ([Trefethen & Weideman 2014]), unlike Gauss-Laguerre in
    ``lambda``, whose error falls only as a power of ``nodes`` for small ``df`` (the likelihood goes as
    ``sqrt(lambda)`` near 0). ``df = inf`` gives ``lambda = 1``; ``df`` NaN or
    ``<= 0`` gives NaN.
    """
    a = np.asarray(df, dtype=float) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.log(special.gammaincinv(a, _TAIL) / (a + conflict))
        hi = np.log(special.gammainccinv(a + 0.5, _TAIL) / a)
        u = lo[..., None] + (hi - lo)[..., None] * np.linspace(0.0, 1.0, nodes)
        log_mass = -a[..., None] * (np.expm1(u) - u)  # log of lambda^(df/2) exp(-lambda df/2), up to a constant
    normal = (a == np.inf)[..., None]
    return np.where(normal, 1.0, np.exp(u)), np.where(normal, 0.0, log_mass)


def _update(log_weights: np.ndarray, means: np.ndarray, sds: np.ndarray, estimate: np.ndarray,
            se: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Conjugate update of each normal component by ``N(estimate | theta, se^2)`` (all arrays broadcast, the
    components on the last axis): weights normalised in logs, posterior means and SDs."""
    with np.errstate(invalid="ignore", divide="ignore"):
        prior_var, lik_var = sds**2, se**2
        total = prior_var + lik_var
        log_w = log_weights - 0.5 * np.log(total) - 0.5 * (estimate - means) ** 2 / total
        w = np.exp(log_w - log_w.max(axis=-1, keepdims=True))
        w = w / _sum(w)[..., None]
        return np.broadcast_arrays(w, (means * lik_var + estimate * prior_var) / total,
                                   np.sqrt(prior_var * lik_var / total))


def _log(a: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(a)


def posterior(prior: Mixture | None, estimate: np.ndarray, se: np.ndarray) -> Mixture:
    """The posterior of ``theta`` given ``estimate ~ N(theta, se^2)`` (points, ``(R,)``) and a normal-mixture
    prior (``None``: flat, the posterior ``N(estimate, se^2)``). A NaN estimate gives a NaN posterior."""
    estimate, se = np.asarray(estimate, dtype=float), np.asarray(se, dtype=float)
    if prior is None:
        return _broadcast(np.ones(1), estimate[..., None], se[..., None])
    return Mixture(*_update(_log(prior.weights), prior.means, prior.sds, estimate[..., None], se[..., None]))


def posterior_t(prior: Mixture | None, estimate: np.ndarray, se: np.ndarray, df: np.ndarray,
                nodes: int = NODES) -> Mixture | StudentT:
    """The posterior of ``theta`` given a Student t likelihood ``t_df((estimate - theta) / se) / se`` (``(R,)``
    arrays; ``df`` may vary by replicate, as Welch's or Satterthwaite's).

    A flat prior (``None``) gives the :class:`StudentT` ``(estimate, se, df)``, exactly. A mixture prior: with
    ``t_df = int N(0, se^2 / lambda) Gamma(lambda; df/2, rate df/2) dlambda`` and ``nodes`` nodes in ``lambda``
    (:func:`_scale_grid`), the posterior is the mixture of the ``K * nodes`` conjugate updates, its weights
    exact given the nodes; ``df = inf`` gives :func:`posterior`. Measured against quadrature of prior x t density
    over ``theta`` (normal priors and 2- and 3-component ones with vague components; SEs 0.3 to 3 prior SDs;
    estimates up to 12 SEs from the prior mean; thresholds from 3 SEs below to 3 SEs above the estimate), the
    largest error of ``sf`` with the default 48 nodes is 1.3e-7 at ``df = 2``, 1.4e-8 at ``df = 2.5`` and 2e-9
    for ``df >= 3`` (40 nodes: 3e-6 at ``df = 2``; 56 nodes: 8e-9).
    """
    estimate, se, df = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (estimate, se, df)))
    if prior is None:
        return StudentT(loc=estimate, scale=se, df=df)
    with np.errstate(invalid="ignore", divide="ignore"):
        conflict = ((estimate[..., None] - prior.means) ** 2).max(-1) / (2.0 * se**2)
    lam, log_mass = _scale_grid(df, nodes, conflict)
    log_w, means, sds, lik_sd = np.broadcast_arrays(_log(prior.weights)[..., :, None] + log_mass[..., None, :],
                                                    prior.means[..., :, None], prior.sds[..., :, None],
                                                    (se[..., None] / np.sqrt(lam))[..., None, :])
    return Mixture(*_update(_flatten(log_w), _flatten(means), _flatten(sds), estimate[..., None], _flatten(lik_sd)))


def robustify(prior: Mixture, weight: float, sd: float, mean: float | np.ndarray | None = None) -> Mixture:
    """RBesT's ``robustify`` for a normal endpoint: the prior with weight ``1 - weight`` plus a vague component
    ``N(mean, sd^2)`` with weight ``weight``; ``sd`` is one child's SD (points), so the component is worth one
    child; ``mean`` defaults to the prior's mean. ``weight = 0`` returns the prior itself."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"weight must be in [0, 1), not {weight}")
    if weight == 0.0:
        return prior
    mean = np.asarray(prior.mean() if mean is None else mean, dtype=float)
    batch = np.broadcast_shapes(prior.weights.shape[:-1], mean.shape)

    def joined(informative: np.ndarray, vague: np.ndarray | float) -> np.ndarray:
        return np.concatenate([np.broadcast_to(informative, (*batch, prior.components)),
                               np.broadcast_to(vague, (*batch, 1))], axis=-1)

    return Mixture(weights=joined(prior.weights * (1.0 - weight), weight), means=joined(prior.means, mean[..., None]),
                   sds=joined(prior.sds, sd))


def predictive_p(prior: Mixture | None, estimate: np.ndarray, se: np.ndarray) -> np.ndarray:
    """Box's prior-predictive p-value of ``estimate`` (points, ``(R,)``): two-sided, ``2 min(F, 1 - F)`` with
    ``F`` the CDF of the prior predictive ``sum_k w_k N(m_k, s_k^2 + se^2)``. NaN with a flat prior."""
    estimate, se = np.asarray(estimate, dtype=float), np.asarray(se, dtype=float)
    if prior is None:
        return np.full(np.broadcast_shapes(estimate.shape, se.shape), np.nan)
    predictive = _broadcast(prior.weights, prior.means, np.hypot(prior.sds, se[..., None]))
    return np.minimum(1.0, 2.0 * np.minimum(predictive.cdf(estimate), predictive.sf(estimate)))


def ess(prior: Mixture, sigma: float, method: str = "elir") -> float:
    """Effective sample size (children) of a single mixture prior for a normal endpoint with per-child SD
    ``sigma`` (points).

    ``"elir"``: the expected local-information ratio, ``sigma^2 E_prior[-d^2/dtheta^2 log p(theta)]``
    (Neuenschwander, Weber, Schmidli & O'Hagan 2020, Biometrics 76:578), which for a density vanishing at both
    ends equals ``sigma^2 int p (p'/p)^2``. The integral is a composite 16-point Gauss-Legendre rule on panels
    one SD wide out to 10 SDs either side of every component's mean, so the narrowest component's scale is
    resolved wherever it matters (Gauss-Hermite within each component is not: under a wide component the
    integrand changes on the scale of a narrow one). Relative error below 1e-12 on the mixtures tried; a single
    normal gives ``sigma^2 / s^2`` to rounding. ``"moment"``: ``sigma^2 / Var(prior)``.
    """
    if method == "moment":
        return float(sigma**2 / prior.var())
    if method != "elir":
        raise ValueError(f"method must be 'elir' or 'moment', not {method!r}")
    w, m, s = (np.asarray(a, dtype=float) for a in (prior.weights, prior.means, prior.sds))
    edges = np.unique(m[:, None] + s[:, None] * _PANELS)
    x, h = _LEGENDRE
    mid, half = (edges[1:] + edges[:-1]) / 2.0, (edges[1:] - edges[:-1]) / 2.0
    theta = (mid[:, None] + half[:, None] * x).ravel()
    log_phi = _log(w) + stats.norm.logpdf(theta[:, None], m, s)  # (nodes, K)
    log_p = special.logsumexp(log_phi, axis=1)
    score = (np.exp(log_phi - log_p[:, None]) * (m - theta[:, None]) / s**2).sum(axis=1)  # p'/p
    return float(sigma**2 * (half[:, None] * h).ravel() @ (np.exp(log_p) * score**2))
