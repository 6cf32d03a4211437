"""The MMRM of every arm (mmrm_differences, issue 23): the arms' differences from control, their joint covariance
and df against R, the two-arm fit unchanged, and MCP-Mod on it in a dose design keeping its type I error.

References: ``tests/fixtures/mmrm_kr/reference.json``, entry ``arms4_n15`` (``kenward_roger.R``: four arms, a
visit-by-arm term per active arm, REML polished to a score below 1e-8; per month ``L Phi L'``, Kenward and Roger's
``L Phi_A L'`` and df ``m`` of the three arms' contrasts together, and ``nlme::gls``'s estimates and vcov refitted
from that optimum); the data are ``tests/fixtures/mmrm/arms4_n15.csv`` (``make_data.py``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cbcp_sim
from cbcp_sim.analysis.mmrm import mmrm, mmrm_differences
from cbcp_sim.scenario import load_scenario

from .test_mmrm import _trials

HERE = Path(__file__).parent / "fixtures"
REFERENCE = json.loads((HERE / "mmrm_kr" / "reference.json").read_text())["arms4_n15"]
MONTHS = (1, 3, 6, 12)
SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "allogeneic_three_doses.toml"


def _arms4() -> tuple[np.ndarray, ...]:
    """arms4_n15.csv as arrays: values and observed ``(1, 60, 5)`` (baseline first), arm ``(60,)``."""
    d = pd.read_csv(HERE / "mmrm" / "arms4_n15.csv")
    children = d.groupby("id").first()
    wide = d.pivot(index="id", columns="visit", values="value").reindex(index=children.index, columns=MONTHS)
    values = np.column_stack([children["baseline"], wide.to_numpy()])[None]
    return np.nan_to_num(values), np.isfinite(values), children["arm"].to_numpy()


@pytest.mark.parametrize("month", MONTHS)
def test_four_arms_match_r(month):
    """Four arms, 19% monotone MAR dropout: the three differences from control at each month equal nlme::gls's
    estimates (1e-9) and vcov block (1e-8 relative), the KR covariance R's exact ``L Phi_A L'`` (1e-8) and the df
    Kenward and Roger's ``m`` for the three contrasts together (1e-6; at month 1, seen by all, it is n - 5 = 55).
    Fails if an arm's column, the cross-arm covariance, the matrix KR terms or the df formula is wrong."""
    values, observed, arm = _arms4()
    r = REFERENCE["matrices"][str(month)]
    visit = MONTHS.index(month) + 1
    sat = mmrm_differences(values, observed, arm, visit, arms=4, mmrm_df="satterthwaite")
    kr = mmrm_differences(values, observed, arm, visit, arms=4)
    np.testing.assert_allclose(sat.estimate[0], r["gls_estimate"], rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(kr.estimate, sat.estimate)
    np.testing.assert_allclose(sat.covariance[0], r["gls_covariance"], rtol=1e-8)
    np.testing.assert_allclose(kr.covariance[0], r["covariance_kr_observed"], rtol=1e-8)
    assert kr.df[0] == sat.df[0] == pytest.approx(r["df_kr_observed"], rel=1e-6)
    if month == 1:
        assert kr.df[0] == pytest.approx(55.0, rel=1e-8)
    for j in range(3):  # each arm alone: the diagonal is the one contrast's KR variance
        one = REFERENCE["contrasts"][f"{month}_{j + 1}"]
        assert math.sqrt(kr.covariance[0, j, j]) == pytest.approx(one["se_kr_observed"], rel=1e-8)


def test_two_arms_are_mmrm_exactly():
    """With two arms the fit is :func:`mmrm`'s, bit for bit (estimate, variance, df), in every baseline mode with
    intermittent gaps and a covariate. Fails if generalising the arm column changed the two-arm fit."""
    values, observed, treated, cov = _trials(6, 10, 12, 13, missing="intermittent", covariates=1)
    for baseline in ("covariate", "response", "response_unconstrained", "none"):
        one = mmrm(values, observed, treated, 3, covariates=cov, mmrm_baseline=baseline)
        diff = mmrm_differences(values, observed, treated.astype(int), 3, arms=2, covariates=cov,
                                mmrm_baseline=baseline)
        np.testing.assert_array_equal(diff.estimate[:, 0], one.estimate)
        np.testing.assert_array_equal(np.sqrt(diff.covariance[:, 0, 0]), one.se)
        np.testing.assert_array_equal(diff.df, one.df)


def test_an_arm_too_small_fails_the_replicate():
    """A replicate where one arm has a single child seen at a visit is NaN throughout (failed), the others not.
    Fails if a thin arm gives numbers."""
    values, observed, arm = _arms4()
    values, observed = np.repeat(values, 2, axis=0), np.repeat(observed, 2, axis=0)
    observed[1, np.flatnonzero(arm == 2)[1:], 4] = False
    diff = mmrm_differences(values, observed, arm, 4, arms=4)
    assert np.isfinite(diff.estimate[0]).all() and np.isfinite(diff.df[0])
    assert np.isnan(diff.estimate[1]).all() and np.isnan(diff.covariance[1]).all() and np.isnan(diff.df[1])


def test_mcpmod_on_mmrm_keeps_type1_error():
    """The dose design analysed by MMRM (analysis.primary = "mmrm": MCP-Mod on mmrm_differences), no effect, 1,000
    trials: the test's rejection rate in both passes is within the 99% Monte Carlo band of one-sided alpha (0.025),
    and the text names the MMRM. Fails if the wiring leaves the ANCOVA in place or the MMRM's covariance or df is
    so wrong as to inflate the test."""
    none = load_scenario(SCENARIO).replace({"treatment.dose_response.emax": 0.0, "analysis.primary": "mmrm"})
    result = cbcp_sim.simulate(none, reps=1000, seed=11)
    b = result.dose_response
    alpha, half = b["alpha"], 2.576 * math.sqrt(b["alpha"] * (1 - b["alpha"]) / 1000)
    assert b["n_failed"] == 0
    assert abs(b["type1"] - alpha) < half and abs(b["power"] - alpha) < half
    assert "MCP-Mod dose-response, MMRM at month 12" in str(result)
