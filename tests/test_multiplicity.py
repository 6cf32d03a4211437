"""Holm, Hochberg and Dunnett adjustments: R / statsmodels values, Dunnett's tables, scipy's multivariate
normal and t, and hypothesis properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import special, stats
from statsmodels.stats.multitest import multipletests

from cbcp_sim.analysis import multiplicity
from cbcp_sim.analysis.multiplicity import dunnett, dunnett_critical, hochberg, holm
from tests.support import stable


def test_holm_and_hochberg_by_hand():
    """R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") is 0.03 0.06 0.06 0.02; "hochberg" 0.03 0.04 0.04 0.02."""
    p = np.array([[0.01, 0.04, 0.03, 0.005], [0.5, 0.5, 0.5, 0.5]])
    np.testing.assert_allclose(holm(p), [[0.03, 0.06, 0.06, 0.02], [1.0, 1.0, 1.0, 1.0]], rtol=1e-15)
    np.testing.assert_allclose(hochberg(p), [[0.03, 0.04, 0.04, 0.02], [0.5, 0.5, 0.5, 0.5]], rtol=1e-15)


def test_holm_and_hochberg_equal_statsmodels():
    rng = np.random.default_rng(7)
    p = rng.random((24, 5)) ** 3          # (multipletests is slow: it runs the garbage collector)
    p[:8, 1] = p[:8, 3]                   # ties
    p[8:16] = np.round(p[8:16], 1)        # more ties, zeros
    h, g = holm(p), hochberg(p)
    for r in range(len(p)):
        np.testing.assert_allclose(h[r], multipletests(p[r], method="holm")[1], rtol=1e-14)
        np.testing.assert_allclose(g[r], multipletests(p[r], method="simes-hochberg")[1], rtol=1e-14)


def test_nan_makes_the_row_nan():
    p = np.array([[0.01, np.nan, 0.2], [0.01, 0.02, 0.2]])
    for adjust in (holm, hochberg):
        out = adjust(p)
        assert np.isnan(out[0]).all()
        np.testing.assert_array_equal(out[1], adjust(p[1:])[0])


_P = st.tuples(st.integers(1, 4), st.integers(1, 6)).flatmap(
    lambda shape: arrays(float, shape, elements=st.floats(0.0, 1.0)))


@stable(200)
@given(_P)
def test_step_adjustments_properties(p):
    h, g = holm(p), hochberg(p)
    for adj in (h, g):
        assert (adj >= p).all() and (adj <= 1.0).all()
        for row, raw in zip(adj, p, strict=True):
            order = np.argsort(raw, kind="stable")
            assert (np.diff(row[order]) >= 0).all()
    assert (h >= g).all()


# Dunnett


@pytest.mark.parametrize(("df", "table"), [(np.inf, 2.21), (20, 2.38), (10, 2.57)])
def test_dunnett_critical_value_equals_dunnett_table(df, table):
    """Two-sided 5%, two treatments, equal n: Dunnett (1964, Biometrics 20:482) Table II; rho = 1/2.
    Checked independently with scipy's (randomised) multivariate t probability."""
    c = dunnett_critical(0.05, df, 10, [10, 10], sides=2)
    assert round(c, 2) == table
    rho = np.array([[1.0, 0.5], [0.5, 1.0]])
    law = stats.multivariate_t(shape=rho, df=df, seed=1) if np.isfinite(df) else stats.multivariate_normal(
        cov=rho, seed=1)
    inside = law.cdf([c, c], lower_limit=[-c, -c])
    assert inside == pytest.approx(0.95, abs=2e-4)
    p = dunnett(np.array([[c, 0.0]]), np.array([df]), np.array([10]), np.array([[10, 10]]), sides=2)
    assert p[0, 0] == pytest.approx(0.05, abs=1e-9)


@pytest.mark.parametrize("df", [2, 7, 30, 250, np.inf])
def test_one_comparison_is_the_t_test(df):
    t = np.array([[-3.1], [-0.4], [0.0], [0.9], [2.05], [4.5]])
    n0, n1 = np.array([10, 20, 4, 30, 7, 12]), np.array([[10], [13], [30], [3], [7], [40]])
    dfs = np.full(6, float(df))
    np.testing.assert_allclose(dunnett(t, dfs, n0, n1, sides=2)[:, 0], 2 * special.stdtr(df, -np.abs(t[:, 0])),
                               rtol=0, atol=1e-10)
    np.testing.assert_allclose(dunnett(t, dfs, n0, n1, sides=1)[:, 0], special.stdtr(df, -t[:, 0]), rtol=0, atol=1e-10)
    assert dunnett_critical(0.05, df, 10, [7], sides=2) == pytest.approx(special.stdtrit(df, 0.975), abs=1e-8)


@pytest.mark.parametrize("sides", [1, 2])
def test_dunnett_equals_multivariate_normal_with_unequal_arms(sides):
    n0, n = 10, np.array([5, 12, 30])
    lam = np.sqrt(n / (n0 + n))
    corr = np.outer(lam, lam) + np.diag(1 - lam**2)
    law = stats.multivariate_normal(cov=corr, abseps=1e-9, releps=0, maxpts=200_000, seed=3)
    t = np.array([[1.2, -2.3, 2.0]])
    p = dunnett(t, np.array([np.inf]), np.array([n0]), n[None], sides=sides)[0]
    for j, c in enumerate(t[0]):
        inside = law.cdf(np.full(3, abs(c)), lower_limit=np.full(3, -abs(c))) if sides == 2 else law.cdf(np.full(3, c))
        assert p[j] == pytest.approx(1 - inside, abs=1e-6)


@pytest.mark.parametrize("alternative", ["two-sided", "greater"])
def test_dunnett_equals_scipy_dunnett_on_samples(alternative):
    rng = np.random.default_rng(11)
    sizes = (12, 9, 15)  # control first
    for _ in range(4):
        control, *active = (rng.normal(0.4 * i, 1.0, n) for i, n in enumerate(sizes))
        ref = stats.dunnett(*active, control=control, alternative=alternative, rng=np.random.default_rng(2))
        p = dunnett(ref.statistic[None], np.array([sum(sizes) - 3]), np.array([sizes[0]]), np.array([sizes[1:]]),
                    sides=2 if alternative == "two-sided" else 1)
        np.testing.assert_allclose(p[0], ref.pvalue, rtol=0, atol=1e-3)


def test_dunnett_blocks_broadcast_and_nan(monkeypatch):
    rng = np.random.default_rng(4)
    t = rng.normal(1.0, 1.5, (9, 3))
    df = np.array([5.0, 20, np.inf, 40, np.nan, 12, 8, 100, 60])
    n0 = rng.integers(5, 30, 9)
    whole = dunnett(t, df, n0, np.array([8, 10, 20]), sides=2)
    monkeypatch.setattr(multiplicity, "MAX_BLOCK_BYTES", 1)
    blocked = dunnett(t, df, n0, np.tile([8, 10, 20], (9, 1)), sides=2)
    np.testing.assert_allclose(blocked, whole, rtol=1e-15, atol=0)
    assert np.isnan(whole[4]).all() and np.isfinite(np.delete(whole, 4, axis=0)).all()


@stable(40)
@given(arrays(float, (3, 3), elements=st.floats(-6.0, 6.0)), st.sampled_from([3.0, 15.0, np.inf]),
       st.integers(5, 40), arrays(np.int64, 3, elements=st.integers(2, 40)), st.sampled_from([1, 2]))
def test_dunnett_properties(t, df, n0, n, sides):
    """Between the unadjusted and the Bonferroni p-value, at most 1, and ordered as the statistics."""
    p = dunnett(t, np.full(3, df), np.full(3, n0), np.tile(n, (3, 1)), sides=sides)
    raw = 2 * special.stdtr(df, -np.abs(t)) if sides == 2 else special.stdtr(df, -t)
    assert (p >= raw - 1e-9).all()
    assert (p <= np.minimum(3 * raw, 1.0) + 1e-9).all()
    key = np.abs(t) if sides == 2 else t
    for row, k in zip(p, key, strict=True):
        assert (np.diff(row[np.argsort(-k, kind="stable")]) >= -1e-12).all()
