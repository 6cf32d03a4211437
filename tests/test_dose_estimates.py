"""MCP-Mod's dose estimates against R DoseFinding 1.0.3 (tests/fixtures/mcpmod/ed_average.json, made by
ed_average.R on the fixed data set data.csv): ED_p of every fitted model (DoseFinding's ``ED``), the delta-method
SEs of TD and ED_p (R: DoseFinding's ``vcov`` and central differences), the aveAIC weights and the TD and ED_p of
the gAIC-averaged curve with their SEs (R: ``uniroot`` on the weighted mean of ``predict(fit, "effect-curve")``);
and properties: ED_p and TD of every model class are the doses where the fitted curve reaches the level, and the
average of one model is that model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cbcp_sim.analysis.dose_finding import gaic_weights, mcpmod
from cbcp_sim.analysis.dose_fit import (
    DoseFit,
    averaged_effect,
    averaged_effective_dose,
    averaged_target_dose,
    effective_dose,
    estimate_se,
    fit_model,
    target_dose,
)
from cbcp_sim.analysis.dose_models import FIT_PARAMETERS, full_response

from .support import floats, stable

REF = json.loads((Path(__file__).parent / "fixtures" / "mcpmod" / "ed_average.json").read_text())
DOSES, EST, S = np.array(REF["doses"]), np.array(REF["estimates"])[None], np.array(REF["S"])
TOP = float(DOSES.max())


@pytest.mark.parametrize("ref", REF["fits"], ids=lambda r: r["model"])
def test_ed_and_the_delta_method_ses_equal_r(ref):
    """ED50 and ED90 to 1e-6 relative (DoseFinding's closed forms); the SEs of TD and ED to 1e-5 relative (R's
    vcov and its own central differences; the exponential's delta sits on its bound, as in R)."""
    fit = fit_model(ref["model"], DOSES, EST, S)
    np.testing.assert_allclose(fit.params[0], ref["params"], rtol=1e-5, atol=1e-6)
    for p in (0.5, 0.9):
        key = f"ed{round(100 * p)}"
        ed = effective_dose(fit.model, fit.params, p, TOP, fit.scal, fit.off)
        assert ed[0] == pytest.approx(ref[key], rel=1e-6)
        se = estimate_se([fit], DOSES, S, lambda q, p=p: effective_dose(fit.model, q[0], p, TOP, fit.scal, fit.off))
        assert se[0] == pytest.approx(ref[f"{key}_se"], rel=1e-5, abs=1e-9)
    se = estimate_se([fit], DOSES, S, lambda q: target_dose(fit.model, q[0], REF["delta"], fit.scal, fit.off))
    assert se[0] == pytest.approx(ref["td_se"], rel=1e-5)


def test_averaged_curve_weights_td_ed_and_ses_equal_r():
    """aveAIC weights to 1e-8; the averaged curve's TD, ED50 and ED90 to 1e-6 relative; their SEs (weights fixed)
    to 1e-5 relative; and through mcpmod(selection="average") the same numbers."""
    ref = REF["average"]
    fits = [fit_model(f["model"], DOSES, EST, S) for f in REF["fits"]]
    w = gaic_weights(np.array([[f.gaic[0] for f in fits]]))
    np.testing.assert_allclose(w[0], ref["weights"], rtol=1e-8)
    names, params = [f.model for f in fits], [f.params for f in fits]
    scal, off = fits[0].scal, fits[0].off
    td = averaged_target_dose(names, params, w, REF["delta"], TOP, scal, off)
    ed50 = averaged_effective_dose(names, params, w, 0.5, TOP, scal, off)
    assert td[0] == pytest.approx(ref["td"], rel=1e-6)
    assert ed50[0] == pytest.approx(ref["ed50"], rel=1e-6)
    assert averaged_effective_dose(names, params, w, 0.9, TOP, scal, off)[0] == pytest.approx(ref["ed90"], rel=1e-6)
    res = mcpmod(EST, S, DOSES, REF["models"], df=REF["df"], delta=REF["delta"], selection="average")
    assert res.model.td[0] == pytest.approx(ref["td"], rel=1e-6)
    assert res.model.td_se[0] == pytest.approx(ref["td_se"], rel=1e-5)
    assert res.model.ed[0] == pytest.approx(ref["ed50"], rel=1e-6)
    assert res.model.ed_se[0] == pytest.approx(ref["ed50_se"], rel=1e-5)
    chosen = mcpmod(EST, S, DOSES, REF["models"], df=REF["df"], delta=REF["delta"], p=0.9)
    emax = next(f for f in REF["fits"] if f["model"] == "emax")
    assert chosen.model.ed[0] == pytest.approx(emax["ed90"], rel=1e-6)
    assert chosen.model.ed_se[0] == pytest.approx(emax["ed90_se"], rel=1e-5)


#: A parameter vector of each model class, drawn within DoseFinding's default bounds for doses up to 10.
PARAMS = {
    "linear": st.tuples(floats(-2, 2), floats(0.05, 2)),
    "linlog": st.tuples(floats(-2, 2), floats(0.05, 2)),
    "quadratic": st.tuples(floats(-2, 2), floats(0.2, 2), floats(-0.15, -0.01)),
    "emax": st.tuples(floats(-2, 2), floats(0.5, 6), floats(0.05, 15)),
    "sigEmax": st.tuples(floats(-2, 2), floats(0.5, 6), floats(0.5, 15), floats(0.5, 6)),
    "exponential": st.tuples(floats(-2, 2), floats(0.05, 2), floats(1, 20)),
    "logistic": st.tuples(floats(-2, 2), floats(0.5, 6), floats(0.5, 15), floats(0.2, 5)),
    "betaMod": st.tuples(floats(-2, 2), floats(0.5, 6), floats(0.2, 3), floats(0.2, 3)),
}


@stable(60)
@given(st.sampled_from(sorted(PARAMS)).flatmap(lambda m: st.tuples(st.just(m), PARAMS[m])), floats(0.1, 0.95))
def test_closed_forms_are_where_the_fitted_curve_reaches_the_level(model_params, p):
    """For every model class: the effect at ED_p is p times the largest effect over [0, 10] (by a fine grid; for
    betaMod its effect at the mode, eMax, even where the mode lies past the largest dose, as DoseFinding's ED), no
    smaller dose reaches it, and the average of the model alone (weight 1) gives the same ED_p (where the largest
    effect is within the doses) and TD."""
    model, params = model_params
    q = np.array([params], dtype=float)
    scal, off, top = 12.0, 0.1, 10.0
    grid = np.linspace(0.0, top, 200_001)
    effect = (full_response(model, grid, q, scal, off) - full_response(model, np.zeros(1), q, scal, off))[0]
    within = not (model == "betaMod" and params[2] / (params[2] + params[3]) * scal > top)
    largest = effect.max() if within else params[1]
    ed = effective_dose(model, q, p, top, scal, off)[0]
    at = (full_response(model, np.array([ed]), q, scal, off) - full_response(model, np.zeros(1), q, scal, off))[0, 0]
    assert at == pytest.approx(p * largest, rel=1e-6, abs=1e-9)
    assert not (effect[grid < ed * (1 - 1e-6)] >= p * largest * (1 + 1e-9)).any()
    one = np.ones((1, 1))
    if within:
        assert averaged_effective_dose([model], [q], one, p, top, scal, off)[0] == pytest.approx(ed, rel=1e-6)
    delta = 0.5 * largest
    td = target_dose(model, q, delta, scal, off)[0]
    assert averaged_target_dose([model], [q], one, delta, top, scal, off)[0] == pytest.approx(td, rel=1e-6)


def test_zero_weights_ignore_models_not_fitted():
    """A model with weight 0 in a replicate (not significant there, its parameters NaN) adds nothing."""
    q = np.array([[0.0, 3.0, 2.0]])
    lin = np.array([[np.nan, np.nan]])
    w = np.array([[1.0, 0.0]])
    dose = np.array([1.0, 4.0])
    np.testing.assert_allclose(averaged_effect(["emax", "linear"], [q, lin], w, dose, 12.0, 0.1),
                               3.0 * dose / (2.0 + dose)[None])
    fit = DoseFit("emax", q, np.zeros(1), 12.0, 0.1)
    assert FIT_PARAMETERS[fit.model] == ("e0", "eMax", "ed50")
