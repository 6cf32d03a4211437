"""Analytic operating characteristics of a two-sample normal design (cbcp_sim.analysis.two_sample_oc) against
brute-force simulation of the two sample means, and, with flat priors, against the closed-form z-test power."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from cbcp_sim.analysis.mixtures import Mixture, posterior, robustify
from cbcp_sim.analysis.two_sample_oc import oc_two_sample

# RBesT's oc2S example: an informative-or-vague prior on the treated arm, a vague one on the control arm
PRIOR1 = Mixture.of([(0.3, -0.2, 2.0), (0.7, 0.0, 50.0)])
PRIOR2 = Mixture.of([(1.0, 0.0, 50.0)])
N1, N2, SIGMA, THRESHOLD, PROBABILITY = 10, 20, 1.0, 0.0, 0.8
DRAWS = 40_000


def _simulated(prior1: Mixture | None, prior2: Mixture | None, n1: int, n2: int, sigma: float, threshold: float,
               probability: float, theta1: float, theta2: float, seed: int) -> float:
    """The share of simulated trials deciding: sample means drawn, each arm's posterior, the difference's tail."""
    rng = np.random.default_rng(seed)
    se1, se2 = sigma / np.sqrt(n1), sigma / np.sqrt(n2)
    ybar1, ybar2 = rng.normal(theta1, se1, DRAWS), rng.normal(theta2, se2, DRAWS)
    difference = posterior(prior1, ybar1, se1).difference(posterior(prior2, ybar2, se2))
    return float((difference.sf(threshold) >= probability).mean())


@pytest.mark.parametrize(("theta1", "theta2"), [(0.0, 0.0), (0.25, 0.0), (0.5, 0.0), (1.0, 0.0), (-1.0, -1.0)])
def test_rbest_example_equals_simulation(theta1, theta2):
    oc = float(oc_two_sample(PRIOR1, PRIOR2, N1, N2, SIGMA, THRESHOLD, PROBABILITY, theta1, theta2))
    share = _simulated(PRIOR1, PRIOR2, N1, N2, SIGMA, THRESHOLD, PROBABILITY, theta1, theta2, seed=2014)
    assert abs(share - oc) <= 3.0 * np.sqrt(oc * (1.0 - oc) / DRAWS)


def test_robust_priors_on_both_arms_equal_simulation():
    """A strong prior on the control arm with a robust component: the critical value bends where data and prior
    conflict, which the adaptive quadrature must follow."""
    prior1 = robustify(Mixture.of([(0.6, 1.0, 0.3), (0.4, 2.0, 0.6)]), 0.2, 3.0)
    prior2 = robustify(Mixture.of([(1.0, 0.0, 0.2)]), 0.5, 2.0)
    theta1, theta2 = np.array([0.5, 1.5, 2.5]), np.array([0.0, 0.5, 0.0])
    oc = oc_two_sample(prior1, prior2, 40, 6, 2.0, 0.5, 0.9, theta1, theta2)
    for k in range(3):
        share = _simulated(prior1, prior2, 40, 6, 2.0, 0.5, 0.9, theta1[k], theta2[k], seed=k)
        assert abs(share - oc[k]) <= 3.0 * np.sqrt(oc[k] * (1.0 - oc[k]) / DRAWS)


def test_rbest_example_is_increasing_in_theta1_and_broadcasts():
    theta1 = np.linspace(-1.0, 2.0, 13)
    oc = oc_two_sample(PRIOR1, PRIOR2, N1, N2, SIGMA, THRESHOLD, PROBABILITY, theta1[:, None], np.array([0.0, 0.5]))
    assert oc.shape == (13, 2)
    assert (np.diff(oc, axis=0) > 0.0).all()
    assert oc[0, 0] < 0.01 and oc[-1, 0] > 0.99


@pytest.mark.parametrize(("n1", "n2", "sigma", "threshold", "probability"),
                         [(10, 20, 1.0, 0.0, 0.8), (15, 15, 11.0, 2.0, 0.975), (40, 8, 6.5, -1.0, 0.5)])
def test_flat_priors_give_the_z_test_power(n1, n2, sigma, threshold, probability):
    """Flat priors: theta1 - theta2 | data ~ N(ybar1 - ybar2, v), v = sigma^2 (1/n1 + 1/n2), so the decision is
    ybar1 - ybar2 > threshold + sqrt(v) Phi^-1(probability), with power Phi((delta - threshold) / sqrt(v) - z)."""
    sd = sigma * np.sqrt(1.0 / n1 + 1.0 / n2)
    theta2 = np.full(11, 1.5)
    theta1 = theta2 + threshold + sd * np.linspace(-4.0, 6.0, 11)
    power = special.ndtr((theta1 - theta2 - threshold) / sd - special.ndtri(probability))
    oc = oc_two_sample(None, None, n1, n2, sigma, threshold, probability, theta1, theta2)
    np.testing.assert_allclose(oc, power, rtol=0, atol=1e-8)
    assert power.min() < 0.01 and power.max() > 0.99
