"""Rank and responder analyses equal scipy's per-replicate tests (Mann-Whitney, Fisher, chi-square)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from cbcp_sim.analysis import infer, ranks
from cbcp_sim.analysis.ranks import wilcoxon
from cbcp_sim.analysis.responder import MCID, chisquare, fisher


def _trials(seed: int, n_reps: int = 150, n: int = 14, visits: int = 3, missing: float = 0.25, step: float = 1.0):
    """Scores on a coarse grid (many ties), random gaps and random allocation per replicate; a few
    replicates have one child or none in an arm."""
    rng = np.random.default_rng(seed)
    values = np.round(rng.normal(40, 4, (n_reps, n, visits)) / step) * step
    values[..., 1:] = values[..., :1] + np.round(rng.normal(1.5, 2, (n_reps, n, visits - 1)) / step) * step
    observed = rng.random((n_reps, n, visits)) > missing
    treated = rng.random((n_reps, n)) < 0.5
    treated[:3] = False
    treated[:3, :1] = True   # at most one active child
    treated[3] = True        # no control child
    return values, observed, treated


def _arms(values, observed, treated, r, visit, endpoint):
    y = values[r, :, visit] - (values[r, :, 0] if endpoint == "change" else 0.0)
    keep = observed[r, :, visit] & (observed[r, :, 0] if endpoint == "change" else True)
    return y[keep & treated[r]], y[keep & ~treated[r]]


@pytest.mark.parametrize("endpoint", ["change", "final"])
def test_wilcoxon_equals_scipy_mann_whitney(endpoint):
    values, observed, treated = _trials(1)
    est = wilcoxon(values, observed, treated, 2, endpoint=endpoint)
    analysed = 0
    for r in range(values.shape[0]):
        a, b = _arms(values, observed, treated, r, 2, endpoint)
        if min(a.size, b.size) < 2:
            assert np.isnan([est.estimate[r], est.se[r], est.df[r], est.p_two[r], est.p_upper[r]]).all()
            continue
        analysed += 1
        two = stats.mannwhitneyu(a, b, use_continuity=True, method="asymptotic")
        greater = stats.mannwhitneyu(a, b, use_continuity=True, method="asymptotic", alternative="greater")
        assert est.p_two[r] == pytest.approx(two.pvalue, rel=0, abs=1e-12)
        assert est.p_upper[r] == pytest.approx(greater.pvalue, rel=0, abs=1e-12)
        diffs = np.sort(np.subtract.outer(a, b).ravel())
        assert est.estimate[r] == np.median(diffs)
        mn = diffs.size
        k = max(int(np.floor(mn / 2 - 1.959964 * np.sqrt(mn * (a.size + b.size + 1) / 12))), 0)
        assert est.se[r] == pytest.approx((diffs[mn - k - 1] - diffs[k]) / (2 * 1.959964), rel=1e-6)
        assert est.df[r] == np.inf
    assert analysed > 100


def test_wilcoxon_pvalues_reach_infer():
    values, observed, treated = _trials(2)
    est = wilcoxon(values, observed, treated, 1)
    ok = ~est.failed
    np.testing.assert_array_equal(infer(est, alpha=0.05, sides=2).p[ok], est.p_two[ok])
    np.testing.assert_array_equal(infer(est, alpha=0.05, sides=1).p[ok], est.p_upper[ok])


def test_wilcoxon_blocks_and_shared_allocation(monkeypatch):
    """Small blocks give the same bits; an ``(N,)`` allocation equals the same one repeated per replicate."""
    values, observed, _ = _trials(3, n=20, step=0.5)
    treated = np.arange(20) % 3 == 0
    whole = wilcoxon(values, observed, treated, 2)
    monkeypatch.setattr(ranks, "MAX_BLOCK_BYTES", 8 * 7 * 14 * 7)
    blocked = wilcoxon(values, observed, np.tile(treated, (values.shape[0], 1)), 2)
    for field in ("estimate", "se", "df", "p_two", "p_upper"):
        np.testing.assert_array_equal(getattr(blocked, field), getattr(whole, field))


def test_wilcoxon_estimate_follows_a_shift():
    values, observed, treated = _trials(4, step=0.01)
    shifted = values + np.where(treated, 3.0, 0.0)[:, :, None] * (np.arange(values.shape[2]) > 0)
    a, b = wilcoxon(values, observed, treated, 2), wilcoxon(shifted, observed, treated, 2)
    np.testing.assert_allclose(b.estimate, a.estimate + 3.0, atol=1e-9)
    np.testing.assert_allclose(b.se, a.se, atol=1e-9)


def _tables(seed: int, n_reps: int = 300):
    """Changes around the MCID with exact hits on it; some replicates all or no responders."""
    values, observed, treated = _trials(seed, n_reps=n_reps, n=12, missing=0.2)
    values[..., 2] = values[..., 0] + np.random.default_rng(seed).choice([0.0, MCID, 3.0], values.shape[:2])
    values[10:20, :, 2] = values[10:20, :, 0] + 5.0
    values[20:30, :, 2] = values[20:30, :, 0] - 5.0
    return values, observed, treated


def _table(values, observed, treated, r, endpoint="change", mcid=MCID):
    a, b = _arms(values, observed, treated, r, 2, endpoint)
    return np.array([[np.sum(a >= mcid), np.sum(a < mcid)], [np.sum(b >= mcid), np.sum(b < mcid)]])


def test_fisher_and_chisquare_equal_scipy():
    values, observed, treated = _tables(5)
    f, c = fisher(values, observed, treated, 2), chisquare(values, observed, treated, 2)
    zero_cells = degenerate = 0
    for r in range(values.shape[0]):
        table = _table(values, observed, treated, r)
        if table.sum(axis=1).min() < 2:
            for est in (f, c):
                assert np.isnan([est.estimate[r], est.se[r], est.df[r], est.p_two[r], est.p_upper[r]]).all()
            continue
        zero_cells += (table == 0).any()
        assert f.p_two[r] == pytest.approx(stats.fisher_exact(table).pvalue, rel=0, abs=1e-12)
        assert f.p_upper[r] == pytest.approx(stats.fisher_exact(table, alternative="greater").pvalue, rel=0, abs=1e-12)
        if table.sum(axis=0).min() == 0:
            degenerate += 1
            assert c.p_two[r] == c.p_upper[r] == f.p_two[r] == f.p_upper[r] == 1.0
            continue
        ref = stats.chi2_contingency(table, correction=False)
        assert c.p_two[r] == pytest.approx(ref.pvalue, rel=1e-10, abs=1e-14)
        lead = table[0, 0] / table[0].sum() > table[1, 0] / table[1].sum()
        assert c.p_upper[r] == pytest.approx(ref.pvalue / 2 if lead else 1 - ref.pvalue / 2, rel=1e-10, abs=1e-14)
    assert zero_cells > 50 and degenerate >= 15


@pytest.mark.parametrize("endpoint", ["change", "final"])
def test_responder_estimate_and_agresti_caffo_se(endpoint):
    values, observed, treated = _tables(6, n_reps=60)
    mcid = MCID if endpoint == "change" else 42.0
    f = fisher(values, observed, treated, 2, endpoint=endpoint, mcid=mcid)
    c = chisquare(values, observed, treated, 2, endpoint=endpoint, mcid=mcid)
    for r in range(values.shape[0]):
        (x1, f1), (x0, f0) = _table(values, observed, treated, r, endpoint, mcid)
        n1, n0 = x1 + f1, x0 + f0
        if min(n0, n1) < 2:
            continue
        a1, a0 = (x1 + 1) / (n1 + 2), (x0 + 1) / (n0 + 2)
        se = np.sqrt(a1 * (1 - a1) / (n1 + 2) + a0 * (1 - a0) / (n0 + 2))
        for est in (f, c):
            assert est.estimate[r] == pytest.approx(x1 / n1 - x0 / n0, abs=1e-15)
            assert est.se[r] == pytest.approx(se, rel=1e-14)
            assert est.df[r] == np.inf


def test_fisher_tolerance_is_r_fisher_test():
    """Hand-checked R values: fisher.test(matrix(c(3, 1, 1, 3), 2)) p = 0.4857 (= 34/70), and the
    one-sided ``greater`` p = 17/70; ties in probability count towards the two-sided p."""
    values = np.zeros((1, 8, 2))
    values[0, [0, 1, 2, 4], 1] = 2.0
    observed = np.ones((1, 8, 2), bool)
    treated = np.arange(8) < 4
    est = fisher(values, observed, treated, 1)
    assert est.p_two[0] == pytest.approx(34 / 70, rel=1e-14)
    assert est.p_upper[0] == pytest.approx(17 / 70, rel=1e-14)
    z = (3 / 4 - 1 / 4) / np.sqrt(0.25 * 0.5)
    assert chisquare(values, observed, treated, 1).p_upper[0] == pytest.approx(special.ndtr(-z), rel=1e-14)
