"""Normal-mixture priors and posteriors (cbcp_sim.analysis.mixtures) against independent references.

Posteriors against scipy.integrate.quad of prior x likelihood over theta; flat priors against the z- and t-tests
replicate by replicate; the ELIR against quad of ``-p (log p)''``; the prior-predictive p-value against scipy.stats
and, simulated from the prior predictive, against the uniform distribution.
"""

from __future__ import annotations

import math
import warnings
from itertools import pairwise

import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

from cbcp_sim.analysis import mixtures
from cbcp_sim.analysis.mixtures import (
    Mixture,
    StudentT,
    ess,
    nodes_for,
    posterior,
    posterior_t,
    predictive_p,
    robustify,
)

PRIORS = {
    "normal": Mixture.of([(1.0, 1.0, 2.0)]),
    "two": Mixture.of([(0.3, -0.2, 2.0), (0.7, 0.0, 50.0)]),  # RBesT's oc2S example: informative + vague
    "three": Mixture.of([(0.5, 3.0, 1.0), (0.3, 5.0, 2.5), (0.2, 4.0, 12.0)]),
}
CASES = [(-1.0, 0.7), (0.5, 1.5), (4.0, 1.0), (9.0, 2.0)]  # (estimate, se): agreeing with the priors or not


def _normal_pdf(x: float, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * ((x - mean) / sd) ** 2) / (sd * math.sqrt(2.0 * math.pi))


def _t_pdf(z: float, df: float) -> float:
    log_c = math.lgamma((df + 1.0) / 2.0) - math.lgamma(df / 2.0) - 0.5 * math.log(df * math.pi)
    return math.exp(log_c - (df + 1.0) / 2.0 * math.log1p(z * z / df))


def _density(prior: Mixture, theta: float) -> float:
    return float(prior.weights @ _normal_pdf(theta, prior.means, prior.sds))


def _quad(f, prior: Mixture, estimate: float, se: float, lower: float = -np.inf) -> float:
    """int f over [lower, inf), split where prior or likelihood change (prior tails beyond 40 SDs left out)."""
    steps = np.array([-40.0, -8.0, -3.0, -1.0, 0.0, 1.0, 3.0, 8.0, 40.0])
    ends = np.concatenate([(prior.means[:, None] + prior.sds[:, None] * steps).ravel(), estimate + se * steps[1:-1]])
    ends = np.unique(np.clip(ends, max(lower, ends.min()), None))
    return sum(integrate.quad(f, a, b, epsabs=1e-15, epsrel=1e-12, limit=200)[0] for a, b in pairwise(ends))


def _reference_sf(prior: Mixture, likelihood, estimate: float, se: float, thresholds: tuple[float, ...]) -> list:
    """P(theta > c | data) for each threshold c, by quadrature of prior x likelihood."""
    f = lambda theta: _density(prior, theta) * likelihood(theta)  # noqa: E731
    total = _quad(f, prior, estimate, se)
    return [_quad(f, prior, estimate, se, lower=c) / total for c in thresholds]


@pytest.mark.parametrize("name", PRIORS)
def test_posterior_tail_probabilities_equal_quadrature(name):
    prior = PRIORS[name]
    estimate, se = (np.array(a) for a in zip(*CASES, strict=True))
    post = posterior(prior, estimate, se)
    assert post.weights.shape == (len(CASES), prior.components)
    np.testing.assert_allclose(post.weights.sum(axis=-1), 1.0, atol=1e-15)
    thresholds = (-2.0, 0.0, 0.8, 3.5, 7.0)
    expected = np.array([_reference_sf(prior, lambda t, y=y, e=e: float(_normal_pdf(y, t, e)), y, e, thresholds)
                         for y, e in CASES]).T
    sf = post.sf(np.array(thresholds)[:, None])
    np.testing.assert_allclose(sf, expected, rtol=0, atol=1e-8)
    np.testing.assert_allclose(post.cdf(np.array(thresholds)[:, None]), 1.0 - expected, rtol=0, atol=1e-8)
    assert sf.min() < 1e-3 and sf.max() > 1.0 - 1e-3


@pytest.mark.parametrize("name", PRIORS)
def test_posterior_mean_and_variance_equal_quadrature(name):
    prior = PRIORS[name]
    estimate, se = (np.array(a) for a in zip(*CASES, strict=True))
    post = posterior(prior, estimate, se)
    for r, (y, e) in enumerate(CASES):
        kernel = lambda t, y=y, e=e: _density(prior, t) * float(_normal_pdf(y, t, e))  # noqa: E731
        z = _quad(kernel, prior, y, e)
        mean = _quad(lambda t: t * kernel(t), prior, y, e) / z  # noqa: B023
        var = _quad(lambda t: (t - mean) ** 2 * kernel(t), prior, y, e) / z  # noqa: B023
        np.testing.assert_allclose([post.mean()[r], post.var()[r]], [mean, var], rtol=1e-8)


@pytest.mark.parametrize("df", [2.0, 2.5, 5.0, 12.3, 60.0])
@pytest.mark.parametrize("name", ["two", "three"])
def test_t_likelihood_posterior_equals_quadrature_to_documented_accuracy(name, df):
    """posterior_t's docstring: tail probabilities within 1e-6 of quadrature for df >= 2 (measured 2e-9 at
    df >= 2.5 with the default nodes), also when the estimate is far from the prior."""
    prior = PRIORS[name]
    estimate, se = (np.array(a) for a in zip(*CASES, strict=True))
    post = posterior_t(prior, estimate, se, np.full(len(CASES), df))
    assert isinstance(post, Mixture)
    thresholds = (-1.0, 0.8, 4.0, 7.0)
    expected = np.array([_reference_sf(prior, lambda t, y=y, e=e: _t_pdf((y - t) / e, df) / e, y, e, thresholds)
                         for y, e in CASES]).T
    np.testing.assert_allclose(post.sf(np.array(thresholds)[:, None]), expected, rtol=0, atol=1e-6)
    normal = posterior(prior, estimate, se).sf(np.array(thresholds)[:, None])
    assert np.abs(normal - expected).max() > 1e-4  # the t's heavier tails matter here


def test_t_posterior_takes_df_per_replicate_and_infinite_df_is_the_normal_posterior():
    prior = PRIORS["three"]
    estimate, se, df = np.array([2.0, 6.0, 4.0]), np.array([1.0, 0.5, 2.0]), np.array([3.0, 40.0, np.inf])
    batched = posterior_t(prior, estimate, se, df)
    for r in range(3):
        alone = posterior_t(prior, estimate[r:r + 1], se[r:r + 1], df[r:r + 1])
        np.testing.assert_allclose(batched.sf(np.array([4.5]))[r], alone.sf(4.5)[0], rtol=1e-13)
    normal = posterior(prior, estimate, se)
    np.testing.assert_allclose(batched.sf(4.5)[2], normal.sf(4.5)[2], rtol=1e-13)
    np.testing.assert_allclose(batched.quantile(0.9)[2], normal.quantile(0.9)[2], rtol=1e-10)


def test_flat_prior_normal_likelihood_decides_as_the_one_sided_z_test():
    rng = np.random.default_rng(20240611)
    se = rng.uniform(0.5, 3.0, 20_000)
    estimate = rng.normal(0.0, 2.0, se.size) * se
    post = posterior(None, estimate, se)
    np.testing.assert_array_equal(post.sf(0.0), stats.norm.cdf(estimate / se))
    for alpha in (0.025, 0.05, 0.1):
        reject = stats.norm.sf(estimate / se) <= alpha
        assert 0 < reject.sum() < reject.size
        np.testing.assert_array_equal(post.sf(0.0) >= 1.0 - alpha, reject)


def test_flat_prior_t_likelihood_decides_as_the_one_sided_t_test():
    rng = np.random.default_rng(7)
    se = rng.uniform(0.5, 3.0, 20_000)
    df = rng.uniform(2.0, 60.0, se.size)
    estimate = rng.normal(0.0, 2.5, se.size) * se
    post = posterior_t(None, estimate, se, df)
    assert isinstance(post, StudentT)
    p = special.stdtr(df, -estimate / se)
    np.testing.assert_allclose(post.sf(0.0), 1.0 - p, rtol=0, atol=1e-15)
    for alpha in (0.025, 0.05, 0.1):
        assert 0 < (p <= alpha).sum() < p.size
        np.testing.assert_array_equal(post.sf(0.0) >= 1.0 - alpha, p <= alpha)
    np.testing.assert_allclose(post.quantile(0.975), estimate + se * stats.t.ppf(0.975, df), rtol=1e-12)


def test_student_t_moments_and_its_scale_mixture():
    t = StudentT(loc=np.array([1.0, -2.0, 0.5]), scale=np.array([2.0, 0.5, 1.0]), df=np.array([2.0, 5.0, 12.3]))
    np.testing.assert_allclose(t.var(), [np.inf, 0.25 * 5.0 / 3.0, 12.3 / 10.3])
    np.testing.assert_array_equal(t.mean(), t.loc)
    mixture = t.as_mixture()
    x = np.linspace(-30.0, 30.0, 61)[:, None]
    np.testing.assert_allclose(mixture.sf(x), t.sf(x), rtol=0, atol=1e-7)
    np.testing.assert_allclose(mixture.mean(), t.loc, atol=1e-12)
    np.testing.assert_allclose(t.shift(1.5).cdf(x + 1.5), t.cdf(x), atol=1e-15)
    np.testing.assert_allclose(t.pdf(x), stats.t.pdf((x - t.loc) / t.scale, t.df) / t.scale)


def _tail(post: Mixture, r: int, x: float, q: float) -> float:
    """F(x) - q of replicate r, from the upper tail when q > 1/2 (increasing in x either way)."""
    if q > 0.5:
        return 1.0 - q - float(post.weights[r] @ stats.norm.sf(x, post.means[r], post.sds[r]))
    return float(post.weights[r] @ stats.norm.cdf(x, post.means[r], post.sds[r])) - q


def test_quantile_inverts_the_cdf():
    prior = PRIORS["two"]
    post = posterior(prior, np.array([-3.0, 0.2, 4.0, 25.0]), np.array([0.3, 1.0, 2.0, 1.0]))
    for q in (1e-9, 0.025, 0.5, 0.975, 1.0 - 1e-9):
        x = post.quantile(q)
        tail = post.sf(x) if q > 0.5 else post.cdf(x)
        np.testing.assert_allclose(tail, min(q, 1.0 - q), rtol=1e-9)
        for r in range(x.size):
            root = optimize.brentq(lambda v, r=r, q=q: _tail(post, r, v, q), -300.0, 300.0, xtol=1e-13)
            assert x[r] == pytest.approx(root, abs=1e-9)
    q = np.array([0.1, 0.2, 0.7, 0.99])
    np.testing.assert_allclose(post.cdf(post.quantile(q)), q, rtol=1e-12)
    np.testing.assert_array_equal(post.quantile(0.0), -np.inf)
    np.testing.assert_array_equal(post.quantile(1.0), np.inf)


def test_difference_equals_the_convolution():
    x = posterior(PRIORS["three"], np.array([4.0, 1.0]), np.array([1.0, 2.0]))
    y = posterior(PRIORS["two"], np.array([0.5, -1.0]), np.array([0.8, 1.2]))
    d = x.difference(y)
    assert d.weights.shape == (2, 3 * 2)
    np.testing.assert_allclose(d.mean(), x.mean() - y.mean(), rtol=1e-13)
    np.testing.assert_allclose(d.var(), x.var() + y.var(), rtol=1e-13)
    for r in range(2):
        for c in (-1.0, 2.0, 5.0):
            def f(v, r=r, c=c):  # P(X > c + v) f_Y(v)
                return (y.weights[r] @ stats.norm.pdf(v, y.means[r], y.sds[r])
                        * x.weights[r] @ stats.norm.sf(c + v, x.means[r], x.sds[r]))
            ends = np.unique(np.concatenate([y.means[r] + y.sds[r] * k for k in (-40, -5, 0, 5, 40)]))
            expected = sum(integrate.quad(f, a, b, epsabs=1e-15, epsrel=1e-12, limit=200)[0]
                           for a, b in pairwise(ends))
            assert d.sf(c)[r] == pytest.approx(expected, abs=1e-10)


def test_shift_moves_every_component():
    post = posterior(PRIORS["three"], np.array([4.0, 1.0, 6.0]), np.array([1.0, 2.0, 0.5]))
    delta = np.array([0.5, -1.0, 2.0])
    moved = post.shift(delta)
    np.testing.assert_allclose(moved.sf(3.0 + delta), post.sf(3.0), atol=1e-15)
    np.testing.assert_allclose(moved.mean(), post.mean() + delta)
    np.testing.assert_array_equal(moved.sds, post.sds)
    prior = PRIORS["two"].shift(-1.5)
    np.testing.assert_allclose(prior.means, PRIORS["two"].means - 1.5)


def test_robustify_adds_a_unit_information_component():
    prior = PRIORS["three"]
    assert robustify(prior, 0.0, 10.0) is prior
    robust = robustify(prior, 0.2, 10.0)
    assert robust.components == prior.components + 1
    assert robust.weights.sum() == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_allclose(robust.weights[:-1], 0.8 * prior.weights)
    assert (robust.weights[-1], robust.means[-1], robust.sds[-1]) == pytest.approx((0.2, prior.mean(), 10.0))
    assert robustify(prior, 0.5, 10.0, mean=-3.0).means[-1] == -3.0
    with pytest.raises(ValueError, match="weight"):
        robustify(prior, 1.0, 10.0)


def test_of_normalises_the_weights():
    prior = Mixture.of([(3.0, 0.0, 1.0), (1.0, 2.0, 4.0)])
    np.testing.assert_array_equal(prior.weights, [0.75, 0.25])
    np.testing.assert_array_equal(prior.sds, [1.0, 4.0])


def test_ess_of_a_normal_prior_is_sigma_squared_over_its_variance():
    prior = Mixture.of([(1.0, 3.0, 2.5)])
    for method in ("elir", "moment"):
        assert ess(prior, 10.0, method) == pytest.approx(16.0, rel=1e-10)
    with pytest.raises(ValueError, match="method"):
        ess(prior, 10.0, "morita")


@pytest.mark.parametrize("name", ["two", "three"])
def test_ess_of_a_mixture_equals_quadrature(name):
    prior = PRIORS[name]
    w, m, s = prior.weights, prior.means, prior.sds

    def information(theta):  # p(theta) * -(log p)''(theta), from the derivatives of the mixture density
        phi = w * stats.norm.pdf(theta, m, s)
        p, d1, d2 = phi.sum(), (phi * (m - theta) / s**2).sum(), (phi * ((theta - m) ** 2 / s**4 - 1 / s**2)).sum()
        return p * ((d1 / p) ** 2 - d2 / p)

    ends = np.unique(np.concatenate([m + s * k for k in np.arange(-12.0, 12.5, 0.5)]))
    elir = 9.0 * sum(integrate.quad(information, a, b, epsabs=0, epsrel=1e-12)[0] for a, b in pairwise(ends))
    assert ess(prior, 3.0) == pytest.approx(elir, rel=1e-8)
    var = sum(integrate.quad(lambda t: (t - prior.mean()) ** 2 * _density(prior, t), a, b, epsabs=0,
                             epsrel=1e-12)[0] for a, b in pairwise(ends))
    assert ess(prior, 3.0, "moment") == pytest.approx(9.0 / var, rel=1e-8)
    assert ess(prior, 3.0) != pytest.approx(ess(prior, 3.0, "moment"), rel=1e-3)


def test_predictive_p_of_a_normal_prior_equals_scipy():
    prior = PRIORS["normal"]
    estimate, se = np.array([-6.0, 0.0, 1.0, 2.5, 9.0]), np.array([1.0, 0.5, 2.0, 1.0, 3.0])
    predictive = stats.norm(1.0, np.sqrt(4.0 + se**2))
    expected = 2.0 * np.minimum(predictive.cdf(estimate), predictive.sf(estimate))
    np.testing.assert_allclose(predictive_p(prior, estimate, se), expected, rtol=1e-12)
    assert np.isnan(predictive_p(None, estimate, se)).all()


def test_predictive_p_is_uniform_under_the_prior_predictive():
    prior = PRIORS["three"]
    rng = np.random.default_rng(11)
    n = 20_000
    k = rng.choice(prior.components, size=n, p=prior.weights)
    theta = rng.normal(prior.means[k], prior.sds[k])
    se = rng.uniform(0.5, 4.0, n)
    p = predictive_p(prior, theta + se * rng.standard_normal(n), se)
    assert stats.kstest(p, "uniform").pvalue > 0.001
    assert abs(p.mean() - 0.5) < 3.0 * np.sqrt(1.0 / 12.0 / n)
    assert stats.kstest(predictive_p(prior, theta + 2.0 + se * rng.standard_normal(n), se), "uniform").pvalue < 1e-6


def test_nan_estimates_give_nan_rows_without_warnings():
    estimate = np.array([1.0, np.nan, 3.0, np.nan, np.nan])
    se, df = np.array([1.0, np.nan, 0.5, 2.0, 0.0]), np.array([5.0, np.nan, 12.0, 0.0, 1.0])  # failed: any se, df
    bad = np.isnan(estimate)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for prior in (None, PRIORS["three"]):
            for post in (posterior(prior, estimate, se), posterior_t(prior, estimate, se, df)):
                values = [post.sf(0.5), post.cdf(0.5), post.quantile(0.025), post.quantile(0.975), post.mean()]
                if isinstance(post, Mixture):
                    values += [post.var(), post.pdf(0.5), post.difference(posterior(None, estimate, se)).sf(0.0)]
                else:
                    values += [post.as_mixture().sf(0.5)]
                for v in values:
                    assert np.isnan(v[bad]).all()
                    assert np.isfinite(v[~bad]).all()
            p = predictive_p(prior, estimate, se)
            assert np.isnan(p[bad]).all()


@pytest.mark.parametrize("df", [2.0, 3.0, 4.9, 5.0, 7.5, 10.0, 23.0, 60.0])
def test_nodes_for_a_df_keep_the_t_within_1e_6(df):
    x = np.linspace(-8.0, 8.0, 161)
    t = StudentT(loc=np.zeros(x.size), scale=np.ones(x.size), df=np.full(x.size, df))
    approx = t.as_mixture(nodes_for(np.array([df, 1e3])))  # the batch's smallest df decides
    assert np.abs(approx.sf(x) - special.stdtr(df, -x)).max() < 1e-6
    assert nodes_for(np.array([np.nan, np.inf])) == min(n for _, n in mixtures._NODES_BY_DF)


def test_pruning_moves_no_probability_by_more_than_its_tolerance():
    rng = np.random.default_rng(7)
    weights = rng.dirichlet(np.full(60, 0.05), size=200)  # many near-empty components
    mix = Mixture(weights=weights, means=rng.normal(0, 3, (200, 60)), sds=rng.uniform(0.2, 4, (200, 60)))
    pruned = mix.pruned(1e-9)
    assert pruned.components < mix.components
    x = rng.normal(0, 3, 200)
    assert np.abs(pruned.sf(x) - mix.sf(x)).max() <= 1e-9
    np.testing.assert_allclose(pruned.weights.sum(axis=-1), 1.0, rtol=0, atol=1e-12)
