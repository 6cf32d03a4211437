"""The MMRM's Kenward-Roger inference and its baseline options against an exact R reference (issue 20, points 1, 6).

References: ``tests/fixtures/mmrm_kr`` (``kenward_roger.R``: REML fits polished to a score below 1e-8, Kenward and
Roger's ``Phi_A`` and df written out from their formulas; see its README). That script reproduces SAS PROC MIXED
``ddfm=kr(linear)`` on the ``mmrm`` package's ``fev_data`` (SAS's numbers as the ``mmrm`` repository stores them).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path

import numpy as np
import pytest

from cbcp_sim import analyze
from cbcp_sim.analysis.long_data import read_long
from cbcp_sim.analysis.mmrm import BASELINES, DF_METHODS, mmrm
from cbcp_sim.errors import SettingsError
from cbcp_sim.scenario import load_scenario
from cbcp_sim.scenario.sections import Analysis

from .test_mmrm import _trials

HERE = Path(__file__).parent / "fixtures"
REFERENCE = json.loads((HERE / "mmrm_kr" / "reference.json").read_text())
FEV = HERE / "mmrm_kr" / "fev_data.csv"
FIXTURE_SETS = ("mar_n36", "monotone_n20", "intermittent_n16", "unequal_n10_n25")
MODULE = importlib.import_module("cbcp_sim.analysis.mmrm")


@pytest.mark.parametrize("name", FIXTURE_SETS)
def test_kenward_roger_matches_r(name):
    """Every visit of four nlme fixtures (monotone, intermittent, unequal arms): the KR SE equals R's exact
    ``sqrt(k' Phi_A k)`` to 1e-8 relative (we get ~2e-10), the model-based SE and the estimate to 1e-9, and the df
    R's Kenward-Roger df (observed information) to 1e-6 (~1e-8). Fails if a term of ``Phi_A`` is missing or
    mis-scaled (the factor 2, W as twice the inverse Hessian of -2 l_R, the P Phi P term's sign)."""
    data = read_long(HERE / "mmrm" / f"{name}.csv")
    for month, r in REFERENCE[name]["contrasts"].items():
        visit = data.visit_index(float(month))
        kr = mmrm(data.values, data.observed, data.treated, visit, mmrm_df="kenward_roger")
        sat = mmrm(data.values, data.observed, data.treated, visit, mmrm_df="satterthwaite")
        assert kr.estimate[0] == pytest.approx(r["estimate"], rel=1e-9) == sat.estimate[0]
        assert kr.se[0] == pytest.approx(r["se_kr_observed"], rel=1e-8), month
        assert sat.se[0] == pytest.approx(r["se"], rel=1e-9), month
        assert kr.df[0] == pytest.approx(r["df_kr_observed"], rel=1e-6) == sat.df[0]


def test_one_contrast_kr_df_are_satterthwaite_df_of_the_unadjusted_variance():
    """Kenward and Roger's df for one contrast, from their general formula (A1, A2, rho; as pbkrtest and mmrm), equal
    the Satterthwaite df of the unadjusted variance, and their F scale lambda is 1, at every contrast of every R
    reference (with observed or expected information): A1 = A2 for a rank-one contrast. So the df do not come from
    ``Phi_A``. Fails if the reference or that identity is wrong."""
    for name, ref in REFERENCE.items():
        if name.startswith("_"):
            continue
        for r in ref["contrasts"].values():
            for kind in ("observed", "expected"):
                assert r[f"df_kr_{kind}"] == pytest.approx(r[f"df_satterthwaite_{kind}"], rel=1e-9)
                assert r[f"lambda_kr_{kind}"] == pytest.approx(1.0, abs=1e-9)


def test_reference_script_reproduces_sas():
    """The R script's Kenward-Roger on fev_data, FEV1 ~ ARMCD with an unstructured covariance, agrees with SAS PROC
    MIXED ddfm=kr(linear) (mmrm's design/ddfm_covtype/kr1_us.csv): estimate to 1e-5, SE to 2e-4, df to 5e-4 with
    the observed information (SAS stops its fit about 1e-5 short of the optimum); the expected information misses
    the df by 6%. Fails if the script's formulas are not Kenward and Roger's as SAS computes them."""
    ref = REFERENCE["fev_arm_only"]
    r, sas = ref["contrasts"]["arm"], ref["sas"]
    assert r["estimate"] == pytest.approx(sas["estimate"], rel=1e-5)
    assert r["se_kr_observed"] == pytest.approx(sas["se_kr_linear"], rel=2e-4)
    assert r["df_kr_observed"] == pytest.approx(sas["df_kr"], rel=5e-4)
    assert abs(r["df_kr_expected"] / sas["df_kr"] - 1.0) > 0.05


@pytest.mark.parametrize(("baseline", "reference"), [("none", "fev_none"), ("covariate", "fev_covariate")])
@pytest.mark.parametrize("df", DF_METHODS)
def test_analyze_fev_data_matches_r(baseline, reference, df):
    """analyze() on the mmrm package's fev_data (200 patients, 537 values, intermittent gaps; arms PBO and TRT,
    visits 1-4, FEV1_BL the baseline column) with mmrm_baseline none (FEV1 ~ AVISIT * ARMCD) and covariate (+ AVISIT *
    FEV1_BL): estimate and SE to 1e-8, df to 1e-6 of R at every visit. Fails if the options are not passed
    through or a mode fits a different model."""
    for visit, r in REFERENCE[reference]["contrasts"].items():
        res = analyze(FEV, method="mmrm", control="PBO", visit=float(visit), mmrm_df=df, mmrm_baseline=baseline)
        assert res.n_subjects == REFERENCE[reference]["n_subjects"] == 197
        assert res.estimate == pytest.approx(r["estimate"], rel=1e-8)
        assert res.se == pytest.approx(r["se_kr_observed" if df == "kenward_roger" else "se"], rel=1e-8)
        assert res.df == pytest.approx(r["df_kr_observed"], rel=1e-6)


@pytest.mark.parametrize("baseline", ["response", "response_unconstrained"])
def test_baseline_as_response_matches_r(baseline):
    """Baseline as visit 0 of the responses on mar_n36: cLDA (no arm effect at baseline) and the unconstrained model
    (the change contrast: arm at the visit minus arm at baseline), each with both SEs, equal R to 1e-8 (df 1e-6).
    Fails if the constraint or the contrast is wrong."""
    data = read_long(HERE / "mmrm" / "mar_n36.csv")
    for month, r in REFERENCE[f"mar_n36_{baseline}"]["contrasts"].items():
        visit = data.visit_index(float(month))
        for df, se in (("kenward_roger", "se_kr_observed"), ("satterthwaite", "se")):
            est = mmrm(data.values, data.observed, data.treated, visit, mmrm_df=df, mmrm_baseline=baseline)
            assert est.estimate[0] == pytest.approx(r["estimate"], rel=1e-8)
            assert est.se[0] == pytest.approx(r[se], rel=1e-8)
            assert est.df[0] == pytest.approx(r["df_kr_observed"], rel=1e-6)


def test_clda_estimate_equals_baseline_covariate_estimate_with_complete_baselines():
    """With every baseline observed, cLDA's estimate equals the baseline-covariate MMRM's (a known identity; R's
    references agree to 1e-8) while its SE differs; the unconstrained model with endpoint final estimates the arm
    effect at the visit. Fails if the constraint leaks (cLDA estimating something else)."""
    values, observed, treated, _ = _trials(5, 20, 15, 15, missing="monotone")
    for visit in (2, 4):
        clda = mmrm(values, observed, treated, visit, mmrm_baseline="response")
        covariate = mmrm(values, observed, treated, visit)
        np.testing.assert_allclose(clda.estimate, covariate.estimate, rtol=1e-7, atol=1e-7)
        assert not np.allclose(clda.se, covariate.se, rtol=1e-4)
    final = mmrm(values, observed, treated, 4, endpoint="final", mmrm_baseline="response_unconstrained")
    change = mmrm(values, observed, treated, 4, endpoint="change", mmrm_baseline="response_unconstrained")
    assert not np.allclose(final.estimate, change.estimate)


def test_complete_data_kr_changes_nothing():
    """Complete data: the GLS estimate does not depend on Sigma, so Phi_A = Phi and the KR SE equals the model-based
    SE to 1e-9 over 30 replicates (with a covariate). Fails if the adjustment does not cancel when it must."""
    values, observed, treated, cov = _trials(2, 30, 11, 14, covariates=1)
    kr = mmrm(values, observed, treated, 4, covariates=cov, mmrm_df="kenward_roger")
    sat = mmrm(values, observed, treated, 4, covariates=cov, mmrm_df="satterthwaite")
    np.testing.assert_allclose(kr.se, sat.se, rtol=1e-9)


def test_kenward_roger_batches_as_one(monkeypatch):
    """KR for 12 replicates (intermittent gaps) equals each replicate fitted alone, and batches of 2 under a small
    BATCH_BYTES equal one batch, to 1e-10. Fails if replicates leak into each other's adjustment."""
    values, observed, treated, _ = _trials(8, 12, 10, 12, missing="intermittent")
    together = mmrm(values, observed, treated, 4)
    for r in range(12):
        alone = mmrm(values[r:r + 1], observed[r:r + 1], treated, 4)
        np.testing.assert_allclose(alone.se, together.se[r:r + 1], rtol=1e-10)
    monkeypatch.setattr(MODULE, "BATCH_BYTES", 2 * 8 * 16 * 4**4)
    batched = mmrm(values, observed, treated, 4)
    np.testing.assert_allclose(batched.se, together.se, rtol=1e-10)
    np.testing.assert_allclose(batched.df, together.df, rtol=1e-10)


def test_kenward_roger_is_the_default_and_larger():
    """The scenario default, analyze()'s and the function's is kenward_roger, with baseline a covariate; with
    missing data the KR SE exceeds the model-based SE in every replicate. Fails if a default drifts or the
    adjustment has the wrong sign."""
    a = Analysis()
    assert (a.mmrm_df, a.mmrm_baseline) == ("kenward_roger", "covariate")
    values, observed, treated, _ = _trials(4, 20, 12, 12, missing="monotone")
    kr, sat = mmrm(values, observed, treated, 4), mmrm(values, observed, treated, 4, mmrm_df="satterthwaite")
    assert (kr.se > sat.se).all()
    fev = analyze(FEV, method="mmrm", control="PBO")
    assert fev.se == pytest.approx(REFERENCE["fev_covariate"]["contrasts"]["4"]["se_kr_observed"], rel=1e-8)


def test_scenario_keys_and_errors():
    """The scenario's choices are the analysis's (DF_METHODS, BASELINES); a scenario sets them; a wrong value is one
    error naming the key; analyze() names mmrm_df / mmrm_baseline for a wrong value or another method; mmrm()
    refuses an unknown value. Fails if the two lists part or a message loses its field."""
    fields = {f.name: f for f in dataclasses.fields(Analysis)}
    assert fields["mmrm_df"].metadata and fields["mmrm_baseline"].metadata
    for key, allowed in (("mmrm_df", DF_METHODS), ("mmrm_baseline", BASELINES)):
        for value in allowed:
            assert getattr(load_scenario("default", overrides={f"analysis.{key}": value}).analysis, key) == value
        with pytest.raises(Exception, match=f"analysis.{key}"):
            load_scenario("default", overrides={f"analysis.{key}": "nonesuch"})
        with pytest.raises(SettingsError, match=f"^{key}: expected one of {', '.join(allowed)}"):
            analyze(FEV, method="mmrm", control="PBO", **{key: "nonesuch"})
        with pytest.raises(SettingsError, match=f"^{key}: applies to the mmrm analysis, not ancova"):
            analyze(FEV, method="ancova", control="PBO", **{key: allowed[0]})
        with pytest.raises(ValueError, match=key):
            mmrm(np.zeros((1, 4, 3)), np.ones((1, 4, 3), bool), np.arange(4) % 2 == 0, 1, **{key: "nonesuch"})
