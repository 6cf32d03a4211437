"""The MAP prior (analysis.map_prior): the pooled normal at tau = 0, a direct 2-D integration of the joint posterior
of (mu, tau), closed forms for a single study, the mixture approximation's CDF error, and RBesT's printed Crohn's
disease example."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import integrate, special, stats

from cbcp_sim.analysis.map_prior import map_prior, study_summaries
from cbcp_sim.analysis.mixtures import Mixture

# RBesT's crohn data (its reference: Hueber et al. 2012, Gut 61:1693): placebo arms, change in CDAI, per-patient SD 88.
CROHN_N = np.array([74, 166, 328, 20, 25, 58])
CROHN_Y = np.array([-51.0, -49.0, -36.0, -47.0, -90.0, -54.0])
CROHN_S = 88.0 / np.sqrt(CROHN_N)
HETERO = (np.array([1.0, 4.0, -2.0, 6.0]), np.array([1.5, 2.0, 1.0, 3.0]), 3.0)
CASES = {"crohn": (CROHN_Y, CROHN_S, 44.0), "single": (np.array([3.0]), np.array([1.0]), 10.0), "hetero": HETERO}


def _cdf(mix: Mixture, x: np.ndarray) -> np.ndarray:
    return stats.norm.cdf(np.asarray(x)[:, None], mix.means, mix.sds) @ mix.weights


def _pdf(mix: Mixture, x: np.ndarray) -> np.ndarray:
    return stats.norm.pdf(np.asarray(x)[:, None], mix.means, mix.sds) @ mix.weights


def _moments(mix: Mixture) -> tuple[float, float]:
    mean = float(mix.weights @ mix.means)
    return mean, float(np.sqrt(mix.weights @ (mix.sds**2 + mix.means**2) - mean**2))


def _pooled(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    w = 1 / s**2
    return float(np.sum(w * y) / np.sum(w)), float(1 / np.sqrt(np.sum(w)))


def _integrated(y: np.ndarray, s: np.ndarray, c: float, x: np.ndarray, upper: float | None = None) -> np.ndarray:
    """The integral over the joint posterior p(mu, tau | y) ∝ HN(tau; c) prod_i N(y_i; mu, s_i^2 + tau^2), up to a
    constant factor, with tau from 0 to ``upper`` (by default all of it), of 1, mu, E(theta_new^2 | mu, tau) and the
    CDF and density of theta_new ~ N(mu, tau^2) at ``x`` (adaptive quadrature in mu, then tau)."""
    reference = np.sum(stats.norm.logpdf(y, np.mean(y), np.sqrt(s**2 + c**2)))

    def given_tau(tau: float) -> np.ndarray:
        var = s**2 + tau**2
        log_prior = -0.5 * (tau / c) ** 2 - 0.5 * np.sum(np.log(2 * np.pi * var)) - reference

        def joint(mu: float) -> np.ndarray:
            density = np.exp(log_prior - 0.5 * np.sum((y - mu) ** 2 / var))
            z = (x - mu) / tau
            return density * np.concatenate([[1.0, mu, mu**2 + tau**2], special.ndtr(z),
                                             np.exp(-0.5 * z**2) / (np.sqrt(2 * np.pi) * tau)])

        reach = 15 * (s.max() + tau)
        return integrate.quad_vec(joint, y.min() - reach, y.max() + reach, points=[*x, np.mean(y)],
                                  epsabs=1e-14, epsrel=1e-10, limit=2000)[0]

    end = 15 * c + np.sqrt(np.sum(s**2) + c**2) if upper is None else upper
    return integrate.quad_vec(given_tau, 0.0, end, points=[min(c, end / 2)], epsabs=1e-14, epsrel=1e-10,
                              limit=2000)[0]


def test_tau_scale_zero_is_the_pooled_normal():
    y, s = np.array([2.0, -1.0, 4.5]), np.array([1.0, 2.0, 0.5])
    mean, sd = _pooled(y, s)
    prior = map_prior(y, s, 0.0)
    for mix in (prior.mixture, prior.exact):
        assert mix.weights.shape == (1,)
        np.testing.assert_allclose([mix.weights[0], mix.means[0], mix.sds[0]], [1.0, mean, sd], rtol=0, atol=1e-12)
    assert prior.max_cdf_error == 0.0 and prior.tau_median == 0.0 and prior.studies == 3
    np.testing.assert_allclose([prior.mean, prior.sd], [mean, sd], rtol=0, atol=1e-12)


def test_tiny_tau_scale_is_nearly_the_pooled_normal():
    y, s = np.array([2.0, -1.0, 4.5]), np.array([1.0, 2.0, 0.5])
    mean, sd = _pooled(y, s)
    prior = map_prior(y, s, 1e-4)
    for m, d in ((prior.mean, prior.sd), _moments(prior.exact), _moments(prior.mixture)):
        assert abs(m - mean) < 1e-4 and abs(d - sd) < 1e-4
    assert prior.tau_median < 1e-4


@pytest.mark.parametrize("case", CASES)
def test_exact_map_equals_a_2d_integration(case):
    """Density, CDF, mean, SD and the median of tau."""
    y, s, c = CASES[case]
    prior = map_prior(y, s, c)
    x = prior.mean + prior.sd * np.array([-2.5, -0.2, 0.3, 1.5])
    total = _integrated(y, s, c, x)
    mass, (mean, square) = total[0], total[1:3] / total[0]
    cdf, pdf = np.split(total[3:] / mass, 2)
    np.testing.assert_allclose(_cdf(prior.exact, x), cdf, rtol=0, atol=1e-9)
    np.testing.assert_allclose(_pdf(prior.exact, x) * prior.sd, pdf * prior.sd, rtol=0, atol=1e-9)
    np.testing.assert_allclose([prior.mean, prior.sd], [mean, np.sqrt(square - mean**2)], rtol=1e-9)
    np.testing.assert_allclose(_moments(prior.exact), [prior.mean, prior.sd], rtol=1e-12)
    np.testing.assert_allclose(_integrated(y, s, c, np.empty(0), upper=prior.tau_median)[0] / mass, 0.5,
                               rtol=0, atol=1e-9)


@pytest.mark.parametrize(("case", "tolerance"), [("crohn", 0.002), ("hetero", 0.002), ("crohn", 0.02),
                                                 ("single", 0.005)])
def test_approximation_is_the_smallest_within_tolerance(case, tolerance):
    y, s, c = CASES[case]
    prior = map_prior(y, s, c, tolerance=tolerance)
    k = prior.mixture.weights.size
    np.testing.assert_allclose(prior.mixture.weights.sum(), 1.0, rtol=1e-12)
    lo, hi = prior.mean - 12 * prior.sd, prior.mean + 12 * prior.sd
    x = np.concatenate([np.linspace(lo, hi, 20001), prior.exact.means])
    error = np.abs(_cdf(prior.mixture, x) - _cdf(prior.exact, x)).max()
    assert prior.max_cdf_error <= tolerance
    assert abs(error - prior.max_cdf_error) < 1e-5
    assert k > 1 and map_prior(y, s, c, tolerance=tolerance, max_components=k - 1).max_cdf_error > tolerance


def test_no_fit_within_tolerance_gives_the_largest():
    prior = map_prior([3.0], [1.0], 10.0, tolerance=1e-5, max_components=2)
    assert prior.mixture.weights.size == 2 and prior.max_cdf_error > 1e-5


def test_single_study_has_heavy_tails_growing_with_tau_scale():
    """One study: p(tau | y) is the prior HN(c), so var = s^2 + 2 c^2 and the median of tau is c z_0.75."""
    sds = []
    for c in (0.5, 2.0, 8.0, 32.0):
        prior = map_prior([3.0], [1.0], c)
        mean, sd = _moments(prior.exact)
        kurtosis = prior.exact.weights @ (3 * prior.exact.sds**4) / sd**4  # the means are all 3
        expected = np.sqrt(1 + 2 * c**2)
        np.testing.assert_allclose([prior.mean, mean, prior.sd, sd], [3.0, 3.0, expected, expected], rtol=1e-9)
        np.testing.assert_allclose(prior.tau_median, c * stats.norm.ppf(0.75), rtol=1e-9)
        assert prior.sd > 1.0 and kurtosis > 3.2
        sds.append(prior.sd)
    assert np.all(np.diff(sds) > 0)


def test_tau_median_grows_with_the_spread_of_the_estimates():
    base, s = np.array([-1.5, -0.5, 0.0, 0.5, 1.5]), np.full(5, 1.0)
    medians = [map_prior(spread * base, s, 5.0).tau_median for spread in (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)]
    assert np.all(np.diff(medians) > 0)
    assert medians[-1] > 5 * medians[0]


def test_rbest_crohn_example():
    """RBesT 1.7-2, vignette "Getting started with RBesT (normal)", print(map_mcmc) for the crohn data with
    tau ~ HN(44) and mu ~ N(0, 88): MAP mean -49.9, SD 19.8; tau median 12.5. That MCMC sample (4000 draws)
    moves between releases: the same vignette printed means -50.1 to -49.5, SDs 18.8 to 19.8 and tau medians 12.3 to
    12.7 (RBesT 1.3-8 to 1.7-2). Their N(0, 88) prior on mu, not flat, moves the mean by about +0.5, the SD by
    -0.26 and the tau median by -0.15 (a grid integration with and without it); so 1.0, 1.0 and 0.5."""
    prior = map_prior(CROHN_Y, CROHN_S, 44.0)
    assert abs(prior.mean - -49.9) < 1.0
    assert abs(prior.sd - 19.8) < 1.0
    assert abs(prior.tau_median - 12.5) < 0.5
    assert prior.studies == 6


def test_ten_studies_are_fast():
    rng = np.random.default_rng(3)
    y, s = rng.normal(0.0, 3.0, 10), rng.uniform(1.0, 4.0, 10)
    map_prior(y, s, 5.0)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        map_prior(y, s, 5.0)
        times.append(time.perf_counter() - start)
    assert min(times) < 0.05


def test_map_prior_is_deterministic():
    a, b = map_prior(*HETERO), map_prior(*HETERO)
    for field in ("weights", "means", "sds"):
        np.testing.assert_array_equal(getattr(a.mixture, field), getattr(b.mixture, field))


@pytest.mark.parametrize(("estimates", "ses", "tau_scale"), [([], [], 1.0), ([1.0, 2.0], [1.0], 1.0),
                                                             ([1.0], [0.0], 1.0), ([1.0], [-1.0], 1.0),
                                                             ([np.nan], [1.0], 1.0), ([1.0], [1.0], -0.5),
                                                             ([1.0], [1.0], np.inf)])
def test_map_prior_rejects_bad_input(estimates, ses, tau_scale):
    with pytest.raises(ValueError):
        map_prior(estimates, ses, tau_scale)


def test_study_summaries():
    y, s = study_summaries([{"mean": 2.0, "sd": 6.0, "n": 9}, {"estimate": -1.5, "se": 0.7, "study": "B"},
                            {"mean": 0.5, "sd": 4.0, "n": 16.0}])
    np.testing.assert_array_equal(y, [2.0, -1.5, 0.5])
    np.testing.assert_allclose(s, [2.0, 0.7, 1.0], rtol=1e-15)


@pytest.mark.parametrize(("row", "key"), [({"estimate": 1.0}, "'se'"), ({"mean": 1.0, "sd": 2.0}, "'n'"),
                                          ({"estimate": 1.0, "se": 0.0}, "'se'"), ({"mean": 1.0, "sd": -2.0, "n": 4},
                                                                                   "'sd'"),
                                          ({"mean": 1.0, "sd": 2.0, "n": 0}, "'n'"),
                                          ({"estimate": "1", "se": 1.0}, "'estimate'"),
                                          ({"estimate": np.nan, "se": 1.0}, "'estimate'"),
                                          ({"estimate": True, "se": 1.0}, "'estimate'"), ({}, "'n'"),
                                          ({"estimate": 1.0, "se": 1.0, "mean": 1.0}, "'estimate'")])
def test_study_summaries_name_the_bad_row(row, key):
    with pytest.raises(ValueError, match=rf"row 1\b.*{key}"):
        study_summaries([{"estimate": 0.0, "se": 1.0}, row])
