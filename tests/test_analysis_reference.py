"""The batched analyses equal textbook fits replicate by replicate (scipy.stats, statsmodels OLS)."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from cbcp_sim.analysis import analyse, infer


def _trials(seed: int, n_reps: int = 12, n: int = 30, visits: int = 4, missing: float = 0.25):
    """Random trials on the GMFM-66 scale with baseline always observed and monotone-ish gaps."""
    rng = np.random.default_rng(seed)
    base = rng.normal(50, 15, (n_reps, n, 1))
    values = base + np.cumsum(rng.normal(1.5, 3, (n_reps, n, visits)), axis=2)
    values[..., 0] = base[..., 0]
    observed = rng.random((n_reps, n, visits)) > missing
    observed[..., 0] = True
    treated = np.arange(n) % 3 == 0  # unequal arms, interleaved
    values[:, treated, 1:] += 2.0
    return values, observed, treated


@pytest.mark.parametrize("endpoint", ["change", "final"])
@pytest.mark.parametrize("sides", [1, 2])
def test_ttest_and_welch_equal_scipy(endpoint, sides):
    values, observed, treated = _trials(1)
    visit = 3
    for name, equal_var in (("ttest", True), ("welch", False)):
        est = analyse(name, values, observed, treated, visit, endpoint=endpoint)
        inf = infer(est, alpha=0.05, sides=sides)
        for r in range(values.shape[0]):
            y = values[r, :, visit] - (values[r, :, 0] if endpoint == "change" else 0.0)
            keep = observed[r, :, visit]
            a, b = y[keep & treated], y[keep & ~treated]
            ref = stats.ttest_ind(a, b, equal_var=equal_var, alternative="two-sided" if sides == 2 else "greater")
            assert est.estimate[r] == pytest.approx(a.mean() - b.mean(), rel=1e-12, abs=1e-12)
            assert inf.statistic[r] == pytest.approx(ref.statistic, rel=1e-10)
            assert inf.p[r] == pytest.approx(ref.pvalue, rel=1e-8)
            assert est.df[r] == pytest.approx(ref.df, rel=1e-10)
            ci = ref.confidence_interval(0.95 if sides == 2 else 0.90)
            if sides == 2:
                assert (inf.ci_low[r], inf.ci_high[r]) == pytest.approx((ci.low, ci.high), rel=1e-9)


@pytest.mark.parametrize("visit", [1, 3])
def test_ancova_equals_statsmodels_ols(visit):
    values, observed, treated = _trials(2)
    est = analyse("ancova", values, observed, treated, visit)
    inf = infer(est, alpha=0.05, sides=2)
    for r in range(values.shape[0]):
        keep = observed[r, :, visit] & observed[r, :, 0]
        x = np.column_stack([np.ones(keep.sum()), treated[keep].astype(float), values[r, keep, 0]])
        fit = sm.OLS(values[r, keep, visit], x).fit()
        assert est.estimate[r] == pytest.approx(fit.params[1], rel=1e-10, abs=1e-10)
        assert est.se[r] == pytest.approx(fit.bse[1], rel=1e-10)
        assert est.df[r] == fit.df_resid
        assert inf.p[r] == pytest.approx(fit.pvalues[1], rel=1e-8)
        low, high = fit.conf_int(0.05)[1]
        assert (inf.ci_low[r], inf.ci_high[r]) == pytest.approx((low, high), rel=1e-10)


def test_ancova_same_estimate_for_change_and_final():
    values, observed, treated = _trials(3)
    a = analyse("ancova", values, observed, treated, 2, endpoint="change")
    b = analyse("ancova", values, observed, treated, 2, endpoint="final")
    np.testing.assert_array_equal(a.estimate, b.estimate)


def test_ancova_is_exact_far_from_zero():
    """Centring keeps sums exact when scores sit at a large level (no cancellation)."""
    values, observed, treated = _trials(4)
    shifted = analyse("ancova", values + 1e6, observed, treated, 3)
    plain = analyse("ancova", values, observed, treated, 3)
    np.testing.assert_allclose(shifted.estimate, plain.estimate, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(shifted.se, plain.se, rtol=1e-7)


@pytest.mark.parametrize("name", ["ttest", "welch", "ancova"])
def test_too_few_children_fail_instead_of_not_rejecting(name):
    """A replicate with fewer than two observed children in an arm is failed, not a non-rejection."""
    values, observed, treated = _trials(5, n_reps=3)
    observed[0, treated, 1:] = False
    observed[0, np.flatnonzero(treated)[0], 1:] = True  # one treated child left in replicate 0
    est = analyse(name, values, observed, treated, 3)
    inf = infer(est, alpha=0.05, sides=2)
    assert inf.failed.tolist() == [True, False, False]
    assert not inf.reject[0] and np.isnan(inf.p[0])


def test_every_scenario_analysis_name_has_an_implementation():
    from cbcp_sim.analysis import ANALYSES
    from cbcp_sim.vocabulary import ANALYSES as NAMES

    assert set(ANALYSES) == set(NAMES)
