"""The batched MMRM (unstructured covariance, REML, Satterthwaite df) against R, closed forms and invariances.

References: ``tests/fixtures/mmrm`` (nlme::gls REML fits with exact Satterthwaite df, see its README), and
for complete data the closed form of multivariate regression. Data generated here use the fixtures' model
(baseline N(50, 12^2), visit SDs 2-4.5, correlations 0.4-0.85) with numpy's seeded generator.

Small trials with a poor start, boundary optima, collinear covariates and empty batches are covered too:
each once made the fit stall, report a degenerate fit as converged, or raise for the whole batch.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from scipy.special import expit

from cbcp_sim.analysis import infer
from cbcp_sim.analysis.long_data import read_long
from cbcp_sim.analysis.mmrm import mmrm

from .support import floats, stable

FIXTURES = Path(__file__).parent / "fixtures" / "mmrm"
REFERENCE = json.loads((FIXTURES / "reference.json").read_text())
DATA_SETS = sorted(name for name in REFERENCE if not name.startswith("_"))

SD = np.array([2.0, 2.5, 3.5, 4.5])
CORR = np.array([[1.00, 0.80, 0.60, 0.40], [0.80, 1.00, 0.75, 0.55], [0.60, 0.75, 1.00, 0.85],
                 [0.40, 0.55, 0.85, 1.00]])
COV = CORR * np.outer(SD, SD)
TREND = np.array([1.0, 2.0, 3.5, 5.0])


def _trials(seed: int, reps: int, n0: int, n1: int, *, missing: str = "none", effect: float = 0.0,
            covariates: int = 0) -> tuple[np.ndarray, ...]:
    """``reps`` trials of ``n0`` control and ``n1`` treated children (arms interleaved), 4 post-baseline visits.

    ``missing``: "none"; "monotone" (MAR dropout after visits 1-3, more likely after a small gain, and more
    likely in the control arm); "intermittent" (any post-baseline visit missed with probability 0.2).
    Returns values (R, N, 5), observed (R, N, 5) with the baseline always seen, treated (N,), covariates
    (R, N, C) (each with a real effect on the scores).
    """
    rng = np.random.default_rng(seed)
    n = n0 + n1
    treated = rng.permutation(np.arange(n) < n1)
    base = rng.normal(50.0, 12.0, (reps, n))
    cov = rng.uniform(2.0, 10.0, (reps, n, covariates))
    post = (base[..., None] + TREND + effect * treated[:, None] + 0.3 * cov.sum(axis=-1, keepdims=True)
            + rng.multivariate_normal(np.zeros(4), COV, (reps, n)))
    values = np.concatenate([base[..., None], post], axis=-1)
    observed = np.ones(values.shape, dtype=bool)
    if missing == "monotone":
        for t in range(2, 5):
            p = expit(-2.2 - 0.25 * (values[..., t - 1] - base) + 0.5 * ~treated)
            observed[..., t] = observed[..., t - 1] & (rng.random((reps, n)) >= p)
    elif missing == "intermittent":
        observed[..., 1:] = rng.random((reps, n, 4)) >= 0.2
    return values, observed, treated, cov


def _closed_form(values: np.ndarray, treated: np.ndarray, visit: int, cov: np.ndarray) -> tuple[np.ndarray, ...]:
    """Complete data: per-visit OLS of the score on (1, arm, baseline, covariates); Sigma = E'E / (n - q)."""
    est, se, df = [], [], []
    for r in range(values.shape[0]):
        x = np.column_stack([np.ones(len(treated)), treated, values[r, :, 0], cov[r]])
        coef, *_ = np.linalg.lstsq(x, values[r, :, 1:], rcond=None)
        resid = values[r, :, 1:] - x @ coef
        n, q = x.shape
        sigma = resid.T @ resid / (n - q)
        est.append(coef[1, visit - 1])
        se.append(np.sqrt(sigma[visit - 1, visit - 1] * np.linalg.inv(x.T @ x)[1, 1]))
        df.append(n - q)
    return np.array(est), np.array(se), np.array(df, dtype=float)


def _assert_same(a, b, *, rel: float = 1e-10, rel_df: float = 1e-10) -> None:
    """Two Estimates agree: estimate and SE to ``rel`` (of the SE for the estimate), df to ``rel_df``."""
    np.testing.assert_array_equal(np.isnan(a.estimate), np.isnan(b.estimate))
    np.testing.assert_allclose(a.estimate, b.estimate, rtol=rel, atol=rel * np.nanmax(b.se))
    np.testing.assert_allclose(a.se, b.se, rtol=rel)
    np.testing.assert_allclose(a.df, b.df, rtol=rel_df)


# 1. R fixtures ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DATA_SETS)
def test_matches_nlme_gls_with_satterthwaite_df(name):
    """Every fixture and visit equals R's REML fit: estimate and SE to 1e-8 relative (the spec asks 1e-4; we
    get ~1e-9 and ~1e-11), df to 1e-5 of the exact Satterthwaite df, p to 1e-5 (we get ~1e-8 and ~1e-10).
    Fails if the REML criterion, its optimum, the Hessian or the df formula is off, or the CSV is misread."""
    ref = REFERENCE[name]
    covariates = ("age",) if name.startswith("covariate") else ()
    data = read_long(FIXTURES / ref["file"], covariates)
    assert data.values.shape[1] == ref["n_subjects"]
    assert data.observed[..., 1:].sum() == ref["n_observations"]
    assert (data.treated.sum(), (~data.treated).sum()) == (ref["n_treated"], ref["n_control"])
    for month, r in ref["arm_difference"].items():
        est = mmrm(data.values, data.observed, data.treated, data.visit_index(float(month)),
                   covariates=data.covariates if covariates else None, mmrm_df="satterthwaite")
        p = infer(est, alpha=0.05, sides=2).p
        assert est.estimate[0] == pytest.approx(r["estimate"], rel=1e-8), month
        assert est.se[0] == pytest.approx(r["se"], rel=1e-8), month
        assert est.df[0] == pytest.approx(r["df_satterthwaite"], rel=1e-5), month
        assert p[0] == pytest.approx(r["p_satterthwaite"], abs=1e-5), month


def test_satterthwaite_df_can_exceed_n_minus_q():
    """R's own exact Satterthwaite df exceed n - q (subjects minus coefficients per visit) at month 3 of three
    fixtures, and ours agree: so df <= n - q is not a valid property with missing data (only complete data
    give exactly n - q). Fails if the fixtures or the fit change so that this documented fact no longer holds."""
    for name in ("monotone_n20", "mar_n36", "unequal_n10_n25"):
        ref = REFERENCE[name]
        bound = ref["n_subjects"] - 3
        assert ref["arm_difference"]["3"]["df_satterthwaite"] > bound + 0.1
        data = read_long(FIXTURES / ref["file"])
        assert mmrm(data.values, data.observed, data.treated, data.visit_index(3.0)).df[0] > bound + 0.1


# 2. Complete data: the closed form -------------------------------------------------------------------------


@pytest.mark.parametrize(("n0", "n1", "covariates"), [(10, 14, 0), (25, 25, 0), (12, 17, 2)])
def test_complete_data_equals_multivariate_regression(n0, n1, covariates):
    """With no missing value the REML fit is per-visit OLS: estimate and SE (Sigma = E'E/(n - q)) to 1e-9 for 60
    replicates at once, and Satterthwaite df = n - q to 1e-5 (q = 3 + covariates). Fails if the GLS weights,
    the REML divisor, the Newton optimum or the df are wrong, or covariates enter differently from OLS."""
    values, observed, treated, cov = _trials(n0 + covariates, 60, n0, n1, covariates=covariates)
    for visit in (1, 4):
        est = mmrm(values, observed, treated, visit, covariates=cov if covariates else None)
        ref_est, ref_se, ref_df = _closed_form(values, treated, visit, cov)
        np.testing.assert_allclose(est.estimate, ref_est, rtol=1e-9, atol=1e-9 * ref_se.max())
        np.testing.assert_allclose(est.se, ref_se, rtol=1e-9)
        np.testing.assert_allclose(est.df, ref_df, rtol=1e-5)


# 3. Batching ----------------------------------------------------------------------------------------------


def test_batch_equals_one_replicate_at_a_time():
    """Fitting 8 replicates (monotone and intermittent gaps, so their missingness patterns differ) together
    gives each one's lone fit to 1e-10. Fails if replicates leak into each other (shared patterns, shared
    convergence, step halving of one replicate moving another)."""
    for missing in ("monotone", "intermittent"):
        values, observed, treated, _ = _trials(3, 8, 14, 16, missing=missing)
        together = mmrm(values, observed, treated, 4)
        assert not np.isnan(together.estimate).any()
        for r in range(8):
            alone = mmrm(values[r:r + 1], observed[r:r + 1], treated, 4)
            _assert_same(type(alone)(together.estimate[r:r + 1], together.se[r:r + 1], together.df[r:r + 1]), alone)



def test_memory_batches_give_exactly_the_same_fits(monkeypatch):
    """Under a memory budget the replicates are fitted in batches (here of one replicate) with the same patterns:
    every estimate, SE and df equals that of one batch of all to rounding (1e-12)."""
    module = importlib.import_module("cbcp_sim.analysis.mmrm")

    values, observed, treated, _ = _trials(5, 12, 14, 16, missing="intermittent")
    whole = mmrm(values, observed, treated, 4)
    monkeypatch.setattr(module, "BATCH_BYTES", 1)
    batched = mmrm(values, observed, treated, 4)
    for name in ("estimate", "se", "df"):
        np.testing.assert_allclose(getattr(batched, name), getattr(whole, name), rtol=1e-12, atol=0.0)

def test_per_replicate_treated_equals_broadcast():
    """``treated`` (R, N) equal in every row gives exactly what (N,) gives, and rows that differ give what each
    replicate's own (N,) assignment gives. Fails if the (R, N) form is mixed up across replicates."""
    values, observed, treated, _ = _trials(4, 6, 12, 12, missing="monotone")
    one = mmrm(values, observed, treated, 3)
    many = mmrm(values, observed, np.tile(treated, (6, 1)), 3)
    for name in ("estimate", "se", "df"):
        np.testing.assert_array_equal(getattr(many, name), getattr(one, name))
    rows = np.stack([np.random.default_rng(r).permutation(treated) for r in range(6)])
    mixed = mmrm(values, observed, rows, 3)
    for r in range(6):
        alone = mmrm(values[r:r + 1], observed[r:r + 1], rows[r], 3)
        _assert_same(type(alone)(mixed.estimate[r:r + 1], mixed.se[r:r + 1], mixed.df[r:r + 1]), alone)


# 4. Invariances -------------------------------------------------------------------------------------------


def test_endpoint_does_not_change_the_contrast():
    """``endpoint="change"`` and ``"final"`` give identical arrays (baseline is a regressor, so analysing the
    change only moves the baseline slope by 1). Fails if the endpoint is used to transform the response."""
    values, observed, treated, _ = _trials(5, 10, 15, 15, missing="monotone")
    a = mmrm(values, observed, treated, 4, endpoint="change")
    b = mmrm(values, observed, treated, 4, endpoint="final")
    for name in ("estimate", "se", "df"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize("missing", ["monotone", "intermittent"])
def test_contrast_invariant_to_shifts_absorbed_by_the_model(missing):
    """With missing data, adding a constant per visit (baseline included) or c x baseline to every post-baseline
    score leaves estimate, SE and df unchanged: both are X delta for some fixed-effect delta (intercepts,
    baseline slopes), so beta moves by delta and the residuals, hence Sigma, do not. Permuting children (and
    ``treated`` with them) changes nothing either. Tolerance 1e-9 (df 1e-7), but 1e-6 for the c x baseline: the
    Newton stopping rule leaves ~1e-7 relative error in Sigma there (a line search on a noisy -2 l_R takes a
    halved last step; see the report). Fails if intercepts or baseline slopes are not visit-specific,
    covariates are not centred consistently, or results depend on the order of the children."""
    values, observed, treated, _ = _trials(6, 12, 14, 16, missing=missing)
    ref = mmrm(values, observed, treated, 3)
    assert not np.isnan(ref.estimate).any()
    shifted = values + np.array([7.0, -3.0, 11.0, 0.5, 40.0])
    _assert_same(mmrm(shifted, observed, treated, 3), ref, rel=1e-9, rel_df=1e-7)
    tilted = values.copy()
    tilted[..., 1:] += np.array([0.3, -0.7, 1.5, 2.0]) * values[..., :1]
    _assert_same(mmrm(tilted, observed, treated, 3), ref, rel=1e-6, rel_df=1e-6)
    order = np.random.default_rng(0).permutation(values.shape[1])
    _assert_same(mmrm(values[:, order], observed[:, order], treated[order], 3), ref, rel=1e-9, rel_df=1e-7)


@pytest.mark.parametrize("missing", ["none", "monotone", "intermittent"])
def test_shifting_treated_scores_shifts_the_estimate(missing):
    """Adding d to the treated children's observed scores at the compared visit adds exactly d to the
    estimate (1e-9) and leaves SE and df alone; adding d at another visit leaves the compared visit's
    estimate alone. This holds with missing data too (no need for complete data): the shift is X delta with
    delta = d at that visit's arm coefficient, since the arm column of X is nonzero exactly on the treated
    children's observed rows of that visit, so GLS moves that one coefficient by d whatever Sigma is. (GLS
    borrowing across visits only matters for shifts outside the column space of X, e.g. of some children.)
    Fails if the arm effect is not visit-specific or missing entries are handled inconsistently."""
    values, observed, treated, _ = _trials(7, 10, 13, 15, missing=missing)
    ref = mmrm(values, observed, treated, 3)
    assert not np.isnan(ref.estimate).any()
    for visit, expected in ((3, 2.5), (2, 0.0), (4, 0.0)):
        moved = values.copy()
        moved[:, treated, visit] += 2.5
        est = mmrm(moved, observed, treated, 3)
        np.testing.assert_allclose(est.estimate, ref.estimate + expected, rtol=0, atol=1e-9)
        np.testing.assert_allclose(est.se, ref.se, rtol=1e-9)
        np.testing.assert_allclose(est.df, ref.df, rtol=1e-7)


def test_swapping_arms_and_scaling():
    """Swapping the arms negates the estimate; multiplying every score by 3 multiplies estimate and SE by 3;
    df stays. Fails if the contrast has the wrong sign convention or the fit is not scale equivariant."""
    values, observed, treated, _ = _trials(8, 10, 12, 16, missing="monotone")
    ref = mmrm(values, observed, treated, 4)
    swapped = mmrm(values, observed, ~treated, 4)
    np.testing.assert_allclose(swapped.estimate, -ref.estimate, rtol=1e-9, atol=1e-9 * ref.se.max())
    np.testing.assert_allclose(swapped.se, ref.se, rtol=1e-9)
    np.testing.assert_allclose(swapped.df, ref.df, rtol=1e-7)
    scaled = mmrm(3.0 * values, observed, treated, 4)
    np.testing.assert_allclose(scaled.estimate, 3.0 * ref.estimate, rtol=1e-9, atol=1e-9 * ref.se.max())
    np.testing.assert_allclose(scaled.se, 3.0 * ref.se, rtol=1e-9)
    np.testing.assert_allclose(scaled.df, ref.df, rtol=1e-7)


# 5. Missingness -------------------------------------------------------------------------------------------


def test_too_few_children_in_an_arm_fails_only_that_replicate():
    """A replicate where an arm has only one (or no) child seen at some visit gives NaN estimate, SE and df
    (counted as failed), and the other replicates of the batch equal their fit without it (1e-10).
    Fails if the guard is missing, applied to the wrong replicate, or a bad replicate disturbs the batch."""
    values, observed, treated, _ = _trials(9, 6, 12, 12, missing="monotone")
    observed = observed.copy()
    control = np.flatnonzero(~treated)
    observed[1][control[1:], 2] = False           # replicate 1: one control child seen at visit 2
    observed[4][treated, 3] = False               # replicate 4: no treated child seen at visit 3
    est = mmrm(values, observed, treated, 4)
    bad = np.array([False, True, False, False, True, False])
    assert np.isnan(est.estimate[bad]).all() and np.isnan(est.se[bad]).all() and np.isnan(est.df[bad]).all()
    assert infer(est, alpha=0.05, sides=2).failed.tolist() == bad.tolist()
    rest = mmrm(values[~bad], observed[~bad], treated, 4)
    _assert_same(type(est)(est.estimate[~bad], est.se[~bad], est.df[~bad]), rest)



def test_no_replicate_fittable_gives_nan_not_an_error():
    """When no replicate has two children of each arm (a tiny dose stratum), every result is NaN (failed)."""
    values, observed, treated, _ = _trials(4, 3, 5, 1)
    out = mmrm(values, observed, treated, 4)
    assert np.isnan(out.estimate).all() and np.isnan(out.se).all() and np.isnan(out.df).all()

def test_children_without_post_baseline_values_or_baseline_are_ignored():
    """Adding children (both arms) seen only at baseline, or seen after baseline but without a baseline, changes
    nothing (1e-10); neither do NaN or huge numbers in unobserved cells. Fails if such children enter the
    covariate centring, the pattern sums or the arm counts, or unobserved values are read."""
    values, observed, treated, _ = _trials(10, 8, 12, 14, missing="intermittent")
    ref = mmrm(values, observed, treated, 4)
    assert not np.isnan(ref.estimate).any()
    rng = np.random.default_rng(1)
    extra = rng.normal(60.0, 30.0, (8, 6, 5))
    extra_seen = np.zeros((8, 6, 5), dtype=bool)
    extra_seen[:, :3, 0] = True                   # children 0-2: baseline only
    extra_seen[:, 3:, 1:] = True                  # children 3-5: every visit but no baseline
    extra[:, 3:, 0] = np.nan
    more = mmrm(np.concatenate([values, extra], axis=1), np.concatenate([observed, extra_seen], axis=1),
                np.concatenate([treated, [True, False, True, False, True, False]]), 4)
    _assert_same(more, ref)
    junk = np.where(observed, values, np.nan)
    _assert_same(mmrm(junk, observed, treated, 4), ref)
    _assert_same(mmrm(np.where(observed, values, 1e12), observed, treated, 4), ref)
    # unobserving one child's baseline is the same as dropping that child
    drop = observed.copy()
    drop[:, 0, 0] = False
    _assert_same(mmrm(values, drop, treated, 4), mmrm(values[:, 1:], observed[:, 1:], treated[1:], 4))


# 6. Type I error under MAR ---------------------------------------------------------------------------------


def test_null_rejection_rate_under_mar_dropout():
    """No treatment effect, monotone MAR dropout (depends on the last observed gain and on the arm; ~20% gone
    by the last visit), 2000 trials of 30 per arm: the two-sided rejection rate at 0.05 lies in the 99%
    Monte Carlo band of 0.05 and no trial fails. Fails if SE or df are biased (e.g. residual df, or an
    analysis that is not valid under MAR such as complete cases with outcome-dependent dropout)."""
    reps = 2000
    values, observed, treated, _ = _trials(2024, reps, 30, 30, missing="monotone")
    assert 0.15 < 1.0 - observed[..., 4].mean() < 0.3
    inf = infer(mmrm(values, observed, treated, 4), alpha=0.05, sides=2)
    assert not inf.failed.any()
    half = stats.norm.ppf(0.995) * np.sqrt(0.05 * 0.95 / reps)
    assert abs(inf.reject.mean() - 0.05) < half, inf.reject.mean()


# 7. A property --------------------------------------------------------------------------------------------


@st.composite
def _sparse_trials(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """A small trial: T = 1-4 visits, a random positive-definite covariance (Cholesky factor with diagonal
    0.5-3), a complete core of k children per arm with 2 k - 3 >= T + 1, plus up to 10 children with random
    masks (possibly no visit at all, or no baseline)."""
    T = draw(st.integers(1, 4))
    k = draw(st.integers(6, 9))
    chol = np.zeros((T, T))
    for i in range(T):
        chol[i, i] = draw(floats(0.5, 3.0))
        for j in range(i):
            chol[i, j] = draw(floats(-2.0, 2.0))
    masks = draw(st.lists(st.lists(st.booleans(), min_size=T + 2, max_size=T + 2), max_size=10))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = 2 * k + len(masks)
    values = np.concatenate([rng.normal(50.0, 12.0, (1, n, 1)), rng.normal(size=(1, n, T)) @ chol.T + 50.0], -1)
    observed = np.ones((1, n, T + 1), dtype=bool)
    treated = np.arange(n) % 2 == 1
    for i, mask in enumerate(masks):
        observed[0, 2 * k + i] = mask[:T + 1]
        treated[2 * k + i] = mask[T + 1]
    return values, observed, treated, draw(st.integers(1, T))


@stable(40)
@given(_sparse_trials())
def test_fit_is_finite_with_a_complete_core(trial):
    """Random covariance and masks: estimate and SE are finite, SE > 0 and df > 0 (and df = n - 3 when the
    data are complete). The condition used is at least T + 4 complete children, >= 3 per arm: then the
    complete children's residual cross-products are positive definite, -2 l_R -> inf at the boundary and the
    REML optimum is interior. "Each arm >= 2 children at every visit" is not enough (the optimum can lie on
    the boundary, e.g. two visits never seen together), and df <= n - q does not hold with missing data
    (see test_satterthwaite_df_can_exceed_n_minus_q), so only df > 0 is asserted.
    Fails if the optimiser stops short of an interior optimum or the guards reject a good fit."""
    values, observed, treated, visit = trial
    est = mmrm(values, observed, treated, visit)
    assert np.isfinite(est.estimate[0]) and np.isfinite(est.se[0]) and est.se[0] > 0
    assert np.isfinite(est.df[0]) and est.df[0] > 0
    fitted = observed[0, :, 0] & observed[0, :, 1:].any(axis=-1)
    if observed[0, fitted].all():
        assert est.df[0] == pytest.approx(fitted.sum() - 3, rel=1e-5)


# Known bugs -----------------------------------------------------------------------------------------------


def test_complete_data_small_trials_never_fail():
    """Complete data, 10 per arm, 4 visits, random covariance (some strongly correlated): every replicate has
    the closed-form REML fit, so none may fail. 36 of 3000 fail (e.g. replicate 28; also 4 per arm: ~12%)."""
    R, N, T = 3000, 20, 4
    rng = np.random.default_rng(7)
    chol = np.tril(rng.normal(size=(R, T, T)), -1) + np.eye(T) * rng.uniform(0.5, 3, (R, 1, T))
    values = np.concatenate([rng.normal(50, 10, (R, N, 1)),
                             np.einsum("rij,rnj->rni", chol, rng.normal(size=(R, N, T)))], -1)
    r = 28
    est = mmrm(values[r:r + 1], np.ones((1, N, T + 1), bool), np.arange(N) % 2 == 1, 4)
    ref_est, ref_se, _ = _closed_form(values[r:r + 1], np.arange(N) % 2 == 1, 4, np.zeros((1, N, 0)))
    assert est.estimate[0] == pytest.approx(ref_est[0], rel=1e-9)
    assert est.se[0] == pytest.approx(ref_se[0], rel=1e-9)


def test_intermittent_small_trial_converges():
    """Replicate 3 of these trials has an interior REML optimum (found by BFGS on a Cholesky factor and polished
    by this module's own Newton steps: estimate -0.8635, SE 2.2136, df 20.673); mmrm must return it."""
    values, observed, treated, _ = _trials(3, 8, 11, 13, missing="intermittent")
    est = mmrm(values[3:4], observed[3:4], treated, 4, mmrm_df="satterthwaite")
    assert est.estimate[0] == pytest.approx(-0.86347075, rel=1e-6)
    assert est.se[0] == pytest.approx(2.21362241, rel=1e-6)
    assert est.df[0] == pytest.approx(20.67267221, rel=1e-6)


def test_boundary_fit_is_failed_not_converged():
    """10 children, 2 visits, only 3 seen at both: REML has no interior optimum (the correlation goes to -1),
    so the replicate must be failed; it is returned with df = 42956 and a gradient of 2.7 at the 'optimum'."""
    rng = np.random.default_rng(31)
    values = rng.normal(size=(1, 10, 3))
    observed = rng.random((1, 10, 3)) < 0.6
    observed[..., 0] = True
    est = mmrm(values, observed, np.arange(10) >= 5, 2)
    assert np.isnan(est.df[0])


def test_rank_deficient_covariate_fails_that_replicate_only():
    """A constant covariate in one replicate (collinear with the intercept) gives NaN for that replicate only."""
    values, observed, treated, cov = _trials(11, 3, 12, 12, covariates=1)
    cov[1] = 0.0
    est = mmrm(values, observed, treated, 4, covariates=cov)
    assert np.isnan(est.estimate[1]) and np.isfinite(est.estimate[[0, 2]]).all()


def test_no_post_baseline_data_gives_nan():
    """A batch where nobody is seen after baseline gives NaN (failed), as a single such replicate does."""
    observed = np.zeros((1, 6, 3), dtype=bool)
    observed[..., 0] = True
    est = mmrm(np.zeros((1, 6, 3)), observed, np.arange(6) % 2 == 0, 1)
    assert np.isnan(est.estimate[0])
