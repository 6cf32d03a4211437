"""ANCOVA with covariates equals statsmodels OLS replicate by replicate; without covariates, the closed form.

Collinear covariates (a constant, a copy of baseline) must fail the replicate, not give finite wrong numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from cbcp_sim.analysis import infer
from cbcp_sim.analysis.ancova import ancova, ancova_arms, ancova_differences


def _trials(seed: int, reps: int = 12, n: int = 41, visits: int = 4) -> tuple[np.ndarray, ...]:
    """GMFM-like scores with ~25% of post-baseline and ~5% of baseline values missing (unobserved cells NaN),
    unequal interleaved arms, and covariates age (2-12 years) and GMFCS level (1-5, numeric), both with real
    effects. Returns values (R, N, V + 1), observed, treated (N,), covariates (R, N, 2)."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(2.0, 12.0, (reps, n))
    gmfcs = rng.integers(1, 6, (reps, n)).astype(float)
    base = rng.normal(70.0 - 8.0 * gmfcs, 6.0)
    treated = np.arange(n) % 3 == 1
    change = (np.cumsum(rng.normal(1.5, 2.5, (reps, n, visits)), axis=-1) + 0.3 * age[..., None]
              - 0.5 * gmfcs[..., None] + 2.0 * treated[:, None])
    values = np.concatenate([base[..., None], base[..., None] + change], axis=-1)
    observed = rng.random(values.shape) > 0.25
    observed[..., 0] = rng.random((reps, n)) > 0.05
    return np.where(observed, values, np.nan), observed, treated, np.stack([age, gmfcs], axis=-1)


@pytest.mark.parametrize("visit", [1, 4])
@pytest.mark.parametrize("endpoint", ["change", "final"])
def test_ancova_with_covariates_equals_statsmodels_ols(visit, endpoint):
    """``y ~ arm + baseline + age + gmfcs`` over the children seen at baseline and at the visit: estimate, SE,
    df_resid and two-sided p (via infer) equal statsmodels OLS to 1e-10, and the one-sided p equals the t
    upper tail, for every replicate (also a change-score response, which only moves the baseline slope).
    Fails if masked rows are not dropped, covariates are not adjusted for, or df ignores the covariates."""
    values, observed, treated, cov = _trials(1)
    est = ancova(values, observed, treated, visit, endpoint=endpoint, covariates=cov)
    two = infer(est, alpha=0.05, sides=2)
    one = infer(est, alpha=0.05, sides=1)
    for r in range(values.shape[0]):
        keep = observed[r, :, visit] & observed[r, :, 0]
        y = values[r, keep, visit] - (values[r, keep, 0] if endpoint == "change" else 0.0)
        x = np.column_stack([np.ones(keep.sum()), treated[keep], values[r, keep, 0], cov[r, keep]])
        fit = sm.OLS(y, x).fit()
        assert est.estimate[r] == pytest.approx(fit.params[1], rel=1e-10, abs=1e-10 * fit.bse[1])
        assert est.se[r] == pytest.approx(fit.bse[1], rel=1e-10)
        assert est.df[r] == fit.df_resid == keep.sum() - 5
        assert two.p[r] == pytest.approx(fit.pvalues[1], rel=1e-10)
        assert one.p[r] == pytest.approx(stats.t.sf(fit.tvalues[1], fit.df_resid), rel=1e-9)


def test_ancova_without_covariates_equals_closed_form():
    """No covariates: the pooled within-arm closed form (slope b = Sxy/Sxx, estimate = dy - b dx,
    s^2 = (Syy - b Sxy)/(n - 3), SE = s sqrt(1/n0 + 1/n1 + dx^2/Sxx), df = n - 3) to 1e-10; and
    ``covariates`` of shape (R, N, 0) (what read_long gives without covariates) is identical to None.
    Fails if adding covariate support changed the plain ANCOVA or an empty covariate array is mishandled."""
    values, observed, treated, _ = _trials(2)
    visit = 3
    est = ancova(values, observed, treated, visit)
    for r in range(values.shape[0]):
        keep = observed[r, :, visit] & observed[r, :, 0]
        arms = [keep & ~treated, keep & treated]
        x = [values[r, a, 0] for a in arms]
        y = [values[r, a, visit] for a in arms]
        sxx = sum(((xi - xi.mean()) ** 2).sum() for xi in x)
        sxy = sum(((xi - xi.mean()) * (yi - yi.mean())).sum() for xi, yi in zip(x, y, strict=True))
        syy = sum(((yi - yi.mean()) ** 2).sum() for yi in y)
        slope = sxy / sxx
        dx = x[1].mean() - x[0].mean()
        n0, n1 = len(x[0]), len(x[1])
        s2 = (syy - slope * sxy) / (n0 + n1 - 3)
        se = np.sqrt(s2 * (1 / n0 + 1 / n1 + dx**2 / sxx))
        assert est.estimate[r] == pytest.approx(y[1].mean() - y[0].mean() - slope * dx, rel=1e-10, abs=1e-10 * se)
        assert est.se[r] == pytest.approx(se, rel=1e-10)
        assert est.df[r] == n0 + n1 - 3
    empty = ancova(values, observed, treated, visit, covariates=np.zeros((*values.shape[:2], 0)))
    for name in ("estimate", "se", "df"):
        np.testing.assert_array_equal(getattr(empty, name), getattr(est, name))


def test_rank_deficient_replicate_does_not_disturb_the_others():
    """A replicate whose covariates are rank deficient (constant, or collinear with another) raises nothing and
    leaves the other replicates exactly as fitted without it. Fails if one singular solve breaks the batch."""
    values, observed, treated, cov = _trials(3, reps=6)
    ref = ancova(values, observed, treated, 2, covariates=cov)
    bad = cov.copy()
    bad[1, :, 1] = 3.0                       # constant GMFCS: collinear with the intercept
    bad[4, :, 1] = 2.0 * bad[4, :, 0] + 1.0  # GMFCS a linear function of age
    est = ancova(values, observed, treated, 2, covariates=bad)
    others = [0, 2, 3, 5]
    for name in ("estimate", "se", "df"):
        np.testing.assert_array_equal(getattr(est, name)[others], getattr(ref, name)[others])


@pytest.mark.parametrize("constant", [0.0, 1.0, 7.3, 1000.0 / 3.0])
def test_rank_deficient_covariates_give_nan(constant):
    """A constant covariate (or one collinear with another) gives NaN estimate, SE and df (counted as failed)
    and no exception, in every replicate. Fails if the singular solve returns numbers or raises."""
    values, observed, treated, cov = _trials(4)
    for bad in (np.concatenate([cov, np.full((*cov.shape[:2], 1), constant)], axis=-1),
                np.concatenate([cov, constant * cov[..., :1] - 2.0 * cov[..., 1:]], axis=-1)):
        est = ancova(values, observed, treated, 2, covariates=bad)
        assert infer(est, alpha=0.05, sides=2).failed.all()
        assert np.isnan(est.estimate).all() and np.isnan(est.se).all()


@pytest.mark.parametrize("with_covariates", [False, True])
def test_arm_differences_and_their_covariance_equal_statsmodels_ols(with_covariates):
    """``ancova_differences`` of four arms: each active arm minus control, their joint covariance and df equal
    statsmodels OLS of ``y ~ arm (treatment coding) + baseline (+ age + gmfcs)`` to 1e-10, replicate by
    replicate; the diagonal is the square of ``ancova_arms``' SEs. This is what a dose-response test of dose arms
    takes (generalised MCP-Mod)."""
    values, observed, _, covariates = _trials(11, reps=6, n=48)
    arm = np.arange(48) % 4
    diff = ancova_differences(values, observed, arm, 3, arms=4, covariates=covariates if with_covariates else None)
    pairwise = ancova_arms(values, observed, arm, 3, arms=4, covariates=covariates if with_covariates else None)
    np.testing.assert_allclose(np.sqrt(np.diagonal(diff.covariance, axis1=1, axis2=2)),
                               np.stack([e.se for e in pairwise], axis=1), rtol=1e-10)
    for r in range(6):
        seen = observed[r, :, 3] & observed[r, :, 0]
        dummies = (arm[seen, None] == np.arange(1, 4)).astype(float)
        columns = [dummies, values[r, seen, :1]] + ([covariates[r, seen]] if with_covariates else [])
        fit = sm.OLS(values[r, seen, 3], sm.add_constant(np.hstack(columns))).fit()
        np.testing.assert_allclose(diff.estimate[r], fit.params[1:4], rtol=1e-10)
        np.testing.assert_allclose(diff.covariance[r], fit.cov_params()[1:4, 1:4], rtol=1e-9, atol=1e-12)
        assert diff.df[r] == fit.df_resid
