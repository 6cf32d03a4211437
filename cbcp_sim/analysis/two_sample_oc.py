"""Analytic operating characteristics of a two-sample normal design with normal-mixture priors, as RBesT's
``oc2S`` (Schmidli, Gsteiger, Roychoudhury, O'Hagan, Spiegelhalter & Neuenschwander 2014, Biometrics 70:1023).

Arm ``j``'s mean endpoint is ``ybar_j ~ N(theta_j, sigma^2 / n_j)`` with known ``sigma`` (points), and
``theta_1``, ``theta_2`` have independent mixture priors (or flat ones). The decision is taken when
``P(theta_1 - theta_2 > threshold | ybar_1, ybar_2) >= probability``. A normal likelihood has a monotone
likelihood ratio, so for fixed ``ybar_2`` the posterior of ``theta_1`` and that probability increase with
``ybar_1``: the decision is ``ybar_1 > c(ybar_2)`` for a critical value ``c``, and

    P(decision) = int P(ybar_1 > c(ybar_2)) N(ybar_2; theta_2, sigma^2 / n_2) dybar_2.

RBesT interpolates ``c`` on a grid; here ``c`` is solved (Chandrupatla's bracketing method, to 1e-10 points)
at every node of an adaptive quadrature of that integral, so the answer is exact to about 1e-10.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import special
from scipy.optimize import elementwise

from cbcp_sim.analysis.mixtures import Mixture, posterior

_SPAN = 8.5  # ybar_2 integrated over theta_2 +- _SPAN SEs (the mass left out is 2e-17)
_PANELS = 16  # first panels over that span, then each bisected until its two halves agree with it
_LEGENDRE = special.roots_legendre(8)  # points per panel
_TOL = 1e-10  # absolute error allowed on the probability, shared out over the span
_DEPTH = 30  # bisections at most
_XTOL = 1e-10  # points: the critical value's tolerance


def _critical(prior1: Mixture | None, prior2: Mixture | None, se1: float, se2: float, threshold: float,
              probability: float, ybar2: np.ndarray) -> np.ndarray:
    """``c(ybar2)``: the ``ybar1`` at which ``P(theta1 - theta2 > threshold | ybar1, ybar2) = probability``."""
    def excess(ybar1: np.ndarray, ybar2: np.ndarray) -> np.ndarray:
        difference = posterior(prior1, ybar1, se1).difference(posterior(prior2, ybar2, se2))
        return difference.sf(threshold) - probability

    guess = ybar2 + threshold + np.hypot(se1, se2) * special.ndtri(probability)  # the answer with flat priors
    bracket = elementwise.bracket_root(excess, guess - se1, guess + se1, args=(ybar2,))
    return elementwise.find_root(excess, bracket.bracket, args=(ybar2,), tolerances={"xatol": _XTOL}).x


def _panels(f: Callable[[np.ndarray, np.ndarray], np.ndarray], a: np.ndarray, b: np.ndarray,
            owner: np.ndarray) -> np.ndarray:
    """Gauss-Legendre integrals of ``f(z, owner)`` over the panels ``[a, b]``."""
    x, w = _LEGENDRE
    half = (b - a) / 2.0
    return half * (f((a + half)[:, None] + half[:, None] * x, owner) @ w)


def _adaptive(f: Callable[[np.ndarray, np.ndarray], np.ndarray], size: int) -> np.ndarray:
    """``int f(z, i) dz`` over ``[-_SPAN, _SPAN]`` for ``i < size``, all at once: a panel is kept when the sum over
    its halves is within its share of ``_TOL`` of its own value, else its halves become panels."""
    edges = np.linspace(-_SPAN, _SPAN, _PANELS + 1)
    owner = np.repeat(np.arange(size), _PANELS)
    a, b = np.tile(edges[:-1], size), np.tile(edges[1:], size)
    whole = _panels(f, a, b, owner)
    total = np.zeros(size)
    for _ in range(_DEPTH):
        mid = (a + b) / 2.0
        left, right = np.split(_panels(f, np.concatenate([a, mid]), np.concatenate([mid, b]),
                                       np.concatenate([owner, owner])), 2)
        ok = np.abs(left + right - whole) <= _TOL * (b - a) / (2.0 * _SPAN)
        total += np.bincount(owner[ok], left[ok] + right[ok], minlength=size)
        if ok.all():
            return total
        split = ~ok
        owner = np.concatenate([owner[split], owner[split]])
        a, b = np.concatenate([a[split], mid[split]]), np.concatenate([mid[split], b[split]])
        whole = np.concatenate([left[split], right[split]])
    return total + np.bincount(owner, whole, minlength=size)


def oc_two_sample(prior1: Mixture | None, prior2: Mixture | None, n1: float, n2: float, sigma: float,
                  threshold: float, probability: float, theta1: np.ndarray | float,
                  theta2: np.ndarray | float) -> np.ndarray:
    """P(decision) at true means ``theta1``, ``theta2`` (points, broadcast together), for the decision
    ``P(theta1 - theta2 > threshold | data) >= probability`` with ``n1``, ``n2`` children, per-child SD ``sigma``
    (points) and priors ``prior1``, ``prior2`` (``None``: flat); see the module's docstring.
    """
    se1, se2 = sigma / np.sqrt(n1), sigma / np.sqrt(n2)
    theta1, theta2 = np.broadcast_arrays(np.asarray(theta1, dtype=float), np.asarray(theta2, dtype=float))
    t1, t2 = theta1.ravel(), theta2.ravel()

    def integrand(z: np.ndarray, owner: np.ndarray) -> np.ndarray:  # z: ybar2 in SEs from theta2
        ybar2 = t2[owner, None] + se2 * z
        c = _critical(prior1, prior2, se1, se2, threshold, probability, ybar2.ravel()).reshape(z.shape)
        return np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi) * special.ndtr((t1[owner, None] - c) / se1)

    return _adaptive(integrand, t1.size).reshape(theta1.shape)
