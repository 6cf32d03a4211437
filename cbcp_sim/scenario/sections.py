"""The scenario's sections: children, eligibility, natural history, design, dropout, analysis, calendar, interim
looks and outcome model, each a frozen dataclass whose fields declare their default, check, unit, description
and source (:func:`cbcp_sim.scenario.schema.param`).

Each section checks its own values one at a time; rules that span fields or sections, and the loading from TOML,
are :mod:`cbcp_sim.scenario.spec`'s. Sources cite ``[Author Year]`` keys, entries of
``docs/references.md`` with the full citations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cbcp_sim.scenario.schema import (
    Check,
    array,
    choice,
    gmfcs_mix,
    integer,
    number,
    param,
    per_gmfcs,
    text,
    topography_table,
)
from cbcp_sim.vocabulary import ANALYSES, COVARIATES, GMFCS_LEVELS, TOPOGRAPHIES

#: Largest SD of the random GMFM-66 limit on the logit scale; beyond about sqrt(2) a logit-normal is bimodal,
#: piling limits near 0 and 100.
MAX_LIMIT_LOGIT_SD = 1.4


@dataclass(frozen=True)
class Population:
    """Children referred to the trial: age, sex, GMFCS level, topography, body weight and banked unit."""

    ages: tuple[float, float] = param(
        (1.0, 6.0), array(number(0.5, 21.0), length=2, increasing=True), unit="years",
        doc="Age range of referred children.",
        source="[Sun 2017] (Duke autologous UCB RCT, ages 1-6)")
    age_distribution: str = param(
        "uniform", choice("uniform", "lognormal"),
        doc="Ages within the range: uniform, or log-normal (age_median, age_gsd) truncated to the range.",
        source="design choice")
    age_median: float = param(
        3.0, number(0.5, 21.0), unit="years",
        doc="lognormal ages: median before truncation.",
        source="ASSUMPTION; median 2.1 (1-6) in [Sun 2017], 3.6 (2-5) in ACCeNT-CP [Sun 2022], 4.6 in [Lee 2012]")
    age_gsd: float = param(
        1.6, number(1.0, 10.0, lo_open=True), unit="ratio",
        doc="lognormal ages: geometric SD before truncation.", source="ASSUMPTION")
    male_share: float = param(
        0.56, number(0.0, 1.0), unit="share",
        doc="Share of boys.",
        source="[Reid 2011] (Victorian CP register, 1658/2956 = 56.1%, DERIVED); [Franzen 2017] (CPUP, 57%)")
    gmfcs_mix: tuple[float, ...] = param(
        (0.20, 0.25, 0.20, 0.25, 0.10), gmfcs_mix, unit="share",
        doc="Shares of GMFCS levels I-V among referred children ({1 = 0.2, 2 = 0.25, ...}); eligibility and "
            "dose screening shift the enrolled shares.",
        source="ASSUMPTION: typical trial enrichment of II-IV. Registries: about 32/29/8/15/16% "
               "([Himmelmann 2006])")
    topography: tuple[tuple[float, ...], ...] = param(
        ((0.78, 0.20, 0.01, 0.01, 0.01), (0.18, 0.64, 0.65, 0.05, 0.01), (0.04, 0.16, 0.34, 0.94, 0.98)),
        topography_table, unit="share",
        doc="Share of hemiplegia, diplegia and quadriplegia within each GMFCS level I-V (spastic CP).",
        source="DERIVED from registers: topography 35/28/37% ([Howard 2005]), 87.8% of hemiplegia at level I "
               "([Gorter 2004]), GMFCS IV-V in 1% / 2% / 76% of hemi- / di- / quadriplegia ([Shevell 2009]); "
               "split within I-III ASSUMPTION")
    unit_tnc_median: float = param(
        4.7, number(0.0, 100.0, lo_open=True), unit="10^8 TNC",
        doc="Median pre-cryopreservation total nucleated cells of a privately banked unit.",
        source="[Sun 2010] (VERIFIED)")
    unit_tnc_gsd: float = param(
        1.8, number(1.0, 5.0), unit="ratio",
        doc="Geometric SD of banked-unit TNC (log-normal).",
        source="ASSUMPTION; with recovery and weight it gives the dose spread of [Lee 2012] "
               "(5.5 +/- 3.8 x 10^7/kg)")
    recovery_mean: float = param(
        0.80, number(0.0, 1.0, lo_open=True, hi_open=True), unit="fraction",
        doc="Mean post-thaw TNC recovery (Beta distributed).",
        source="[Kurtzberg 2008] (COBLT: infused / pre-cryopreservation dose 3.9 / 5.1 = 0.76)")
    recovery_sd: float = param(
        0.10, number(0.0, 0.5), unit="fraction",
        doc="SD of post-thaw TNC recovery; 0 makes it constant.", source="ASSUMPTION")
    weight_factor: tuple[float, ...] = param(
        (0.95, 0.92, 0.84, 0.80, 0.76), per_gmfcs(0.3, 1.5), unit="ratio",
        doc="Body weight relative to the general-population median for age and sex, GMFCS I-V.",
        source="DERIVED: exp(weight_sd_log x WAZ) with WAZ -0.57 (I-II), -1.75 (III-V) ([Ruiz Brunner 2022]) "
               "and -2.25 in quadriplegia ([Krick 1996]); direction per [Brooks 2011]")
    weight_sd_log: float = param(
        0.12, number(0.0, 1.0), unit="log kg",
        doc="Between-child SD of log body weight around the median for age, sex and GMFCS.",
        source="ASSUMPTION (about 1 z-score of weight-for-age)")
    max_dose: float = param(
        5.0, number(0.0, 100.0, lo_open=True), unit="10^7 TNC/kg",
        doc="Autologous infused dose is capped at this value.",
        source="[Sun 2017] protocol: 1-5 x 10^7 TNC/kg")
    source: str = param(
        "autologous", choice("autologous", "allogeneic"),
        doc="Autologous: dose per kg = banked unit TNC x recovery / weight. Allogeneic: a fixed dose per kg.",
        source="[Sun 2017] (autologous); ACCeNT-CP [Sun 2022] (allogeneic)")
    allogeneic_dose: float = param(
        10.0, number(0.0, 100.0), unit="10^7 TNC/kg",
        doc="Dose per kg when source = 'allogeneic'.",
        source="ACCeNT-CP target [Sun 2022]")


@dataclass(frozen=True)
class Eligibility:
    """Who of the referred children is enrolled; the rest are screen failures (their share is reported)."""

    ages: tuple[float, float] = param(
        (0.0, 21.0), array(number(0.0, 21.0), length=2, increasing=True), unit="years",
        doc="Eligible ages at enrolment.", source="protocol")
    gmfcs: tuple[int, ...] = param(
        (1, 2, 3, 4, 5), array(choice(*GMFCS_LEVELS), max_length=5), doc="Eligible GMFCS levels.",
        source="protocol; e.g. I-IV in ACCeNT-CP [Sun 2022], II-V in [Zarrabi 2022]")
    topography: tuple[str, ...] = param(
        TOPOGRAPHIES, array(choice(*TOPOGRAPHIES), max_length=3), doc="Eligible topographies.",
        source="protocol; e.g. [Zarrabi 2022]: spastic diplegia or quadriplegia")
    min_dose: float = param(
        1.0, number(0.0, 100.0), unit="10^7 TNC/kg",
        doc="Autologous: children whose unit gives less than this dose are not eligible.",
        source="[Sun 2010]: units shipped only if > 1 x 10^7 TNC/kg")


@dataclass(frozen=True)
class NaturalHistory:
    """GMFM-66 motor growth without treatment: stable-limit curves, decline for III-V, child and visit variation."""

    limit: tuple[float, ...] = param(
        (87.7, 68.4, 54.3, 40.4, 22.3), per_gmfcs(1.0, 99.0), unit="GMFM-66 points",
        doc="Limit (plateau) of a typical child's motor growth curve, GMFCS I-V.",
        source="[Rosenbaum 2002] (RECALLED, consistent with [Shi 2012])")
    age90: tuple[float, ...] = param(
        (4.8, 4.4, 3.7, 3.5, 2.7), per_gmfcs(0.1, 20.0), unit="years",
        doc="Age at which a typical child reaches 90% of the limit, GMFCS I-V; time constant = age90 / ln 10.",
        source="[Rosenbaum 2002] (VERIFIED through a secondary citation)")
    limit_sd: tuple[float, ...] = param(
        (8.0, 9.0, 8.0, 7.0, 5.0), per_gmfcs(0.0, 50.0), unit="GMFM-66 points",
        doc="Between-child SD of the limit near its median, GMFCS I-V (normal on the logit scale, so limits "
            "stay inside 0-100); at most 1.4 x limit x (1 - limit / 100).",
        source="ASSUMPTION mimicking the percentile spread of [Hanna 2008]")
    rate_sd_log: float = param(
        0.25, number(0.0, 2.0), unit="log(1/years)",
        doc="Between-child SD of the log growth rate 1 / time constant.",
        source="ASSUMPTION (variance components of [Rosenbaum 2002] not published)")
    limit_rate_corr: float = param(
        0.0, number(-0.99, 0.99),
        doc="Correlation between a child's limit and log growth rate (random effects on the normal scale).",
        source="ASSUMPTION (variance components of [Rosenbaum 2002] not published)")
    peak_age: tuple[float, ...] = param(
        (21.0, 21.0, 7.92, 6.92, 6.92), per_gmfcs(0.0, 21.0), unit="years",
        doc="Age after which scores decline linearly, GMFCS I-V (21 = no decline).",
        source="[Hanna 2009] (VERIFIED)")
    decline: tuple[float, ...] = param(
        (0.0, 0.0, 4.7, 7.8, 6.4), per_gmfcs(0.0, 100.0), unit="GMFM-66 points",
        doc="Loss from the score at the peak age to the score at age 21, GMFCS I-V.",
        source="[Hanna 2009] (VERIFIED); linear form ASSUMPTION")
    sem: float = param(
        1.2, number(0.0, 20.0), unit="GMFM-66 points",
        doc="Standard error of measurement of one GMFM-66 assessment at mid-scale (scores 30-75).",
        source="[GMAE-2 n.d.] worked example: 95% CI half-width / 1.96 (DERIVED)")
    sem_extreme: float = param(
        2.0, number(0.0, 20.0), unit="GMFM-66 points",
        doc="SEM at scores below 20 or above 85 (linear from the mid-scale SEM over 20-30 and 75-85).",
        source="ASSUMPTION: Rasch SE rises near floor and ceiling (RECALLED)")
    occasion_sd: float = param(
        3.5, number(0.0, 20.0), unit="GMFM-66 points",
        doc="SD of a child's fluctuation around own curve (true performance, beyond measurement error).",
        source="ASSUMPTION calibrated to the ACCeNT-CP natural-history arm's SD of 12-month excess change "
               "(4.9, [Sun 2022])")
    occasion_months: float = param(
        6.0, number(0.01, 240.0), unit="months",
        doc="Time over which the fluctuation decorrelates (correlation exp(-months apart / occasion_months)); "
            "visits a week apart share it, so test-retest error is mostly the SEM.",
        source="ASSUMPTION: centile prediction error similar at 6-24 month horizons (a US hospital cohort, "
               "source not identified); test-retest ICC 0.99 ([Russell 2000])")
    trial_effect_per_year: float = param(
        3.1, number(-20.0, 20.0), unit="GMFM-66 points/year",
        doc="Gain beyond the growth curves of every enrolled child (trial participation, selection, practice), "
            "accruing linearly from baseline for trial_effect_months. Cancels between randomised arms; biases "
            "comparisons with the curves. 0 turns it off.",
        source="ACCeNT-CP natural-history arm [Sun 2022]: +3.1 (1.4-5.0) beyond expected at "
               "12 months (VERIFIED)")
    trial_effect_months: float = param(
        12.0, number(0.0, 240.0), unit="months",
        doc="Months over which the trial effect accrues; it is held after that.",
        source="ASSUMPTION: ACCeNT-CP [Sun 2022] measured it over 12 months only")


def _n_per_arm(value: Any, path: str) -> tuple[int, ...]:
    one = integer(2, 100_000)
    if isinstance(value, list | tuple):
        return tuple(one(v, f"{path}[{i}]") for i, v in enumerate(value))
    return (one(value, path),)


_n_per_arm.allowed = "whole number in [2, 100000], or a list of them, one per arm"  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Design:
    """Arms, sizes, visits and the test's error rate."""

    arms: tuple[str, ...] = param(
        ("sham", "cord blood"), array(text, max_length=12),
        doc="Arm names, the reference (control) arm first; [arms.<name>] says what each receives.",
        source="two-arm sham-controlled parallel design ([Zarrabi 2022]; [Amanat 2021])")
    n_per_arm: tuple[int, ...] = param(
        (36,), _n_per_arm, unit="children",
        doc="Children per arm: one number for all arms, or a list with one per arm (control first).",
        source="36 per arm as in [Zarrabi 2022] and [Amanat 2021]")
    visits: tuple[float, ...] = param(
        (0.0, 1.0, 3.0, 6.0, 12.0), array(number(0.0, 240.0), min_length=2, max_length=60, increasing=True),
        unit="months", doc="Assessment times after the infusion; the first must be 0 (baseline).",
        source="registry IRCT201706176907N13 of [Zarrabi 2022] and [Amanat 2021]")
    primary_visit: float = param(
        12.0, number(0.0, 240.0, lo_open=True), unit="months",
        doc="Visit of the primary comparison (must be one of visits).",
        source="12-month primary endpoints of [Zarrabi 2022], [Amanat 2021], [Sun 2017] and [Sun 2022]")
    alpha: float = param(
        0.05, number(0.0, 0.5, lo_open=True), doc="Significance level of the primary test.",
        source="convention")
    sides: int = param(2, choice(1, 2), doc="1: one-sided (active > control); 2: two-sided.",
                       source="convention")
    blinding: str = param(
        "double", choice("double", "assessor", "open"),
        doc="double: families and assessors blinded; assessor: families know the arm (expectation response "
            "only with cells), assessors do not; open: both know (adds treatment.assessor_bias).",
        source="protocol; [Zarrabi 2022] double-blind, ACCeNT-CP [Sun 2022] assessor-blinded, [Lee 2012] open")
    kind: str = param(
        "parallel", choice("parallel", "crossover", "single_arm"),
        doc="parallel: each arm against the first; crossover: two sequences that switch at crossover_month "
            "(the first arm gets cells then, the second at month 0); single_arm: one treated arm judged "
            "against its expected natural change.",
        source="[Zarrabi 2022] parallel; [Sun 2017] crossover; [Lee 2012] single arm")
    crossover_month: float = param(
        12.0, number(0.0, 240.0, lo_open=True), unit="months",
        doc="crossover: the switch visit (end of period 1); must be one of visits, before the last.",
        source="[Sun 2017]: 12-month periods, no washout")
    randomisation: str = param(
        "fixed", choice("fixed", "blocks"),
        doc="fixed: exactly n_per_arm children per arm (complete randomisation with fixed sizes); blocks: "
            "permuted blocks within strata in enrolment order, sum(n_per_arm) children in the ratio of "
            "n_per_arm, so arm sizes vary a little between trials.",
        source="[ICH E9 1998] §2.3.1; stratified permuted blocks as in [Zarrabi 2022]")
    strata: tuple[str, ...] = param(
        ("gmfcs", "age"), array(choice("gmfcs", "age", "dose"), min_length=0, max_length=3),
        doc="blocks: stratification factors: GMFCS level, age band (age_bands), dose stratum (dose_threshold).",
        source="ASSUMPTION: GMFCS and age, the strongest predictors of motor change ([Rosenbaum 2002])")
    block_size: int = param(
        0, integer(0, 1000), unit="children",
        doc="blocks: children per block, a multiple of the allocation ratio's sum; 0 means twice that sum.",
        source="convention (small blocks keep strata balanced)")
    age_bands: tuple[float, ...] = param(
        (5.0,), array(number(0.0, 21.0, lo_open=True), min_length=0, max_length=10, increasing=True),
        unit="years", doc="Age-band boundaries for the age stratum.",
        source="the age-5 break of treatment.modifiers ([Finch-Edmondson 2025])")
    dose_threshold: float = param(
        2.0, number(0.0, 1000.0, lo_open=True), unit="10^7 TNC/kg",
        doc="Dose stratum boundary, for randomisation strata and for analysis.dose_strata.",
        source="[Sun 2017]: GMFM-66 gains above expected only at doses >= 2 x 10^7/kg")


@dataclass(frozen=True)
class Dropout:
    """Monotone dropout: a child lost stays lost; constant hazard (MCAR) or score-dependent (MAR, MNAR)."""

    mechanism: str = param(
        "mcar", choice("mcar", "mar", "mnar"),
        doc="mcar: dropout unrelated to scores; mar: after each visit, the odds of leaving rise by "
            "mar_odds_ratio per SD lower score at that visit (missing at random given observed scores); "
            "mnar: by mnar_odds_ratio per SD lower score at the next visit, the one missed (missing not at "
            "random: a selection model).",
        source="[Little & Rubin 2019]; docs/designs.md, Dropout")
    mar_odds_ratio: float = param(
        2.0, number(1.0, 100.0), doc="mar: odds ratio of leaving after a visit per SD lower observed score.",
        source="ASSUMPTION: families of children progressing least leave most")
    mnar_odds_ratio: float = param(
        2.0, number(1.0, 100.0),
        doc="mnar: odds ratio of leaving after a visit per SD lower score at the next visit (unobserved; "
            "standardised over the children still in the trial).",
        source="ASSUMPTION, as mar_odds_ratio; [Little & Rubin 2019] selection models")
    fraction: float = param(
        0.05, number(0.0, 1.0, hi_open=True), unit="fraction",
        doc="Cumulative fraction of children lost by month `by_month` (mar, mnar: of an average child).",
        source="ASSUMPTION from the 0-8.6% seen by 6-12 months ([Min 2013], [Gu 2020], ACCeNT-CP [Sun 2022])")
    by_month: float = param(
        12.0, number(0.0, 240.0, lo_open=True), unit="months",
        doc="Month at which `fraction` have dropped out.",
        source="ASSUMPTION (with fraction: 5% by the 12-month primary visit)")


@dataclass(frozen=True)
class Analysis:
    """How each simulated trial is analysed."""

    primary: str = param(
        "ancova", choice(*ANALYSES),
        doc="Primary analysis: ttest (pooled t on the change), welch, ancova (adjusted for baseline), mmrm "
            "(all visits, unstructured), wilcoxon (rank sum), fisher or chisquare (responders, change >= mcid); "
            "crossover designs: crossover (within-child) or period2; single_arm: above_expected (one-sample t "
            "on the excess over expected change), count_above (sign test) or before_after (one-sample t of the "
            "change against 0, no expectation). A crossover design's parallel "
            "analyses compare the arms in period 1.",
        source="ANCOVA on baseline: [Borm 2007]; [EMA 2015] covariate guideline")
    secondary: tuple[str, ...] = param(
        (), array(choice(*ANALYSES), min_length=0), doc="Further analyses reported beside the primary.",
        source="convention")
    endpoint: str = param(
        "change", choice("change", "final"),
        doc="What ttest, welch, wilcoxon, fisher and chisquare compare: change from baseline or the score at "
            "the primary visit (ancova and mmrm give the same estimate for both).",
        source="convention in CP trials (GMFM-66 change)")
    covariates: tuple[str, ...] = param(
        (), array(choice(*COVARIATES), min_length=0, max_length=3),
        doc="Covariates of ancova and mmrm beside baseline: age (years), gmfcs (level, linear), dose "
            "(10^7 TNC/kg); typically the stratification factors.",
        source="[ICH E9 1998] / [EMA 2015] covariate guideline: adjust for stratification factors")
    mmrm_df: str = param(
        "kenward_roger", choice("kenward_roger", "satterthwaite"),
        doc="mmrm: kenward_roger (the SE from Kenward and Roger's adjusted covariance, which allows for the "
            "estimated covariance) or satterthwaite (the model-based SE); for one contrast both use "
            "Satterthwaite's df. Type I error at 12 per arm, 20% MAR dropout, 40,000 trials: "
            "0.0521 kenward_roger, 0.0572 satterthwaite (99% Monte Carlo band 0.0472-0.0528).",
        source="[Kenward 1997]; [Satterthwaite 1946]; measured (docs/designs.md, MMRM)")
    mmrm_baseline: str = param(
        "covariate", choice("covariate", "response", "response_unconstrained", "none"),
        doc="mmrm: baseline as a covariate with a per-visit effect; response: the first response, no arm "
            "effect at baseline (cLDA); response_unconstrained: an arm effect at baseline too (change: the "
            "arm effect at the visit minus that at baseline); none: not in the model.",
        source="[Liang & Zeger 2000] (cLDA); [mmrm n.d.]")
    tipping_deltas: tuple[float, ...] | None = param(
        None, array(number(0.0, 1000.0), min_length=0, max_length=20, increasing=True),
        unit="GMFM-66 points", shown="[] (off)",
        doc="Delta-adjusted sensitivity analysis of an ancova or mmrm primary analysis (two arms, parallel): per "
            "delta, the power if the active arm's children missing at the primary visit scored delta lower than "
            "missing at random predicts, and the tipping point of each trial significant in favour of the active "
            "arm (the delta at which it stops being significant). Empty: off.",
        source="[ICH E9(R1) 2019]; delta-adjusted multiple imputation [Ratitch 2013], [Carpenter 2013], in its "
               "limit of many imputations (docs/designs.md, Tipping point)")
    dose_slope: bool | None = param(
        None, choice(False, True), shown="false (off)",
        doc="Natural dose variation (autologous source; the children of every active arm, all given the same cells "
            "at their own dose, or of the single arm): the slope of GMFM-66 change at the primary visit on each "
            "treated child's dose (10^7 TNC/kg), unadjusted and adjusted for baseline, age, weight and GMFCS level, "
            "with its bias against the true slope of the cell effect on dose, RMSE, coverage and the power to find a "
            "positive slope.",
        source="confounding by indication of a non-randomised dose ([Hernan & Robins 2020]); the dose subgroups "
               "of [Sun 2017] (docs/dose.md, Natural dose variation)")
    dose_slope_scale: str | None = param(
        None, choice("linear", "log"), shown="'linear'",
        doc="analysis.dose_slope: the slope per 10^7 TNC/kg (linear) or per unit natural log of the dose (log).",
        source="convention (an Emax curve is closer to linear in log dose)")
    dose_slope_strata: tuple[float, ...] | None = param(
        None, array(number(0.0, 1000.0, lo_open=True), min_length=0, max_length=10, increasing=True),
        unit="10^7 TNC/kg", shown="[] (off)",
        doc="analysis.dose_slope by dose strata: the treated children split at these doses (a child dosed at a "
            "cut point is in the stratum above it), and the trend of GMFM-66 change across the strata (points per "
            "stratum; with one cut point, the higher stratum minus the lower), unadjusted and adjusted for the "
            "same confounders, with its bias against the true stratum contrast and its power. Empty: off.",
        source="the 2 x 10^7 TNC/kg threshold of [Sun 2017]; a trend test across ordered exposure categories "
               "(docs/dose.md, Dose strata)")
    dose_response_models: str | None = param(
        None, text, shown="'' (off)",
        doc="Dose designs (parallel; placebo or sham first, then arms of fixed doses per kg): the candidate models "
            "of MCP-Mod in the dose-power syntax (e.g. 'emax:1,sigEmax:3:3,linear'), its multiple contrast test "
            "on the ANCOVA (or, with analysis.primary = mmrm, the MMRM) of every arm at the primary visit, the "
            "model selected by gAIC, its target dose and "
            "ED50, with power, type I error, selection probabilities, and the TD's and ED50's bias, RMSE and "
            "delta-method interval length and coverage. Empty: off.",
        source="generalised MCP-Mod [Pinheiro 2014], [Bretz 2005] (docs/dose.md, Dose designs)")
    dose_response_delta: float | None = param(
        None, number(0.0, 100.0, lo_open=True), unit="GMFM-66 points", shown="1.5",
        doc="analysis.dose_response_models: the effect over placebo that defines the target dose (TD).",
        source="ASSUMPTION: about the GMFM-66 minimal clinically important difference ([Oeffinger 2008])")
    dose_response_selection: str | None = param(
        None, choice("aic", "average"), shown="'aic'",
        doc="analysis.dose_response_models: the dose-response curve whose TD and ED50 are estimated: the "
            "significant model of smallest gAIC (aic), or the average of the significant models' fitted curves "
            "with weights exp(-gAIC/2) (average).",
        source="DoseFinding's MCPMod selModel = 'AIC' or 'aveAIC'; doses from the averaged curve as [Wheeler 2007]; "
               "selection and averaging in dose finding compared by [Schorning 2016]")
    dose_response_primary: bool | None = param(
        None, choice(False, True), shown="false (off)",
        doc="analysis.dose_response_models: the MCP-Mod test is the scenario's primary analysis: a trial succeeds "
            "when it finds a dose-response, so run reports its power as the design's and sample-size, sweep, "
            "assurance and sensitivity plan on it (the ANCOVA rows stay, as secondary information).",
        source="MCP-Mod as the primary analysis of a dose-finding trial [EMA 2014] [Pinheiro 2014]")
    multiplicity: str = param(
        "holm", choice("none", "holm", "hochberg", "dunnett", "dunnett_separate"),
        doc="With more than one active arm, how each analysis's p-values over the arms are adjusted "
            "(dunnett: ttest and ancova as one model of every arm with a pooled variance, the classical test; "
            "dunnett_separate: any t-based analysis, each comparison's own fit, an approximation).",
        source="[Holm 1979]; [Hochberg 1988]; [Dunnett 1955]; [EMA 2017] multiplicity guideline")
    mcid: float = param(
        1.5, number(0.0, 100.0, lo_open=True), unit="GMFM-66 points",
        doc="fisher and chisquare: a responder gains at least this much.",
        source="RECALLED, low confidence: GMFM-66 MCIDs of about 1-2 points ([Oeffinger 2008])")
    dose_strata: bool = param(
        False, choice(False, True),
        doc="Add secondary comparisons of each active arm's children dosed at or above, and below, "
            "design.dose_threshold against the reference arm (as the autologous trials reported).",
        source="[Sun 2017] dose subgroups")
    expected_error: float = param(
        0.0, number(-100.0, 100.0), unit="GMFM-66 points",
        doc="single_arm: error added to each child's expected natural change (negative: the expectation is "
            "too low, as from growth curves that miss the trial effect).",
        source="design check ([Rosenbaum 2002] curves vs the trial effect of [Sun 2022])")


@dataclass(frozen=True)
class Operations:
    """The trial on the calendar: sites, screening, banked units, infusion slots, visit windows."""

    enabled: bool = param(
        False, choice(False, True),
        doc="Simulate each trial's calendar: enrolment and infusion dates, actual visit times (which feed the "
            "outcome model), missed visits and dropout times, and milestones. Needed for interim looks.",
        source="design (off: every child is seen exactly on schedule and the trial has no calendar)")
    sites: int = param(
        1, integer(1, 500), unit="sites", doc="Recruiting sites.",
        source="single-site trials: [Sun 2017] (Duke), [Zarrabi 2022] (Royan)")
    activation_months: float = param(
        0.0, number(0.0, 120.0), unit="months",
        doc="The first site opens at month 0, each other at a uniform random time in [0, activation_months].",
        source="ASSUMPTION: staggered openings over the first months of multicentre trials")
    screening_rate: float = param(
        8.0, number(0.0, 1000.0, lo_open=True), unit="children per site per month",
        doc="Referred children screened per open site per month (Poisson arrivals); population and eligibility "
            "decide who is eligible.",
        source="ASSUMPTION anchored on single-site enrolment of 6.7 children per month in ACCeNT-CP [Sun 2022] "
               "(91 randomised 10 Apr 2018 - 30 May 2019, NCT03473301 results) and 10.2 in [Min 2013] (105 in "
               "10.3 months, NCT01193660): 87% of referred children are eligible in the default scenario, so it "
               "randomises about 7 a month")
    screening_dispersion: float = param(
        0.0, number(0.0, 2.0), unit="(CV of site rate)^2",
        doc="Variation of screening rates between sites: each site's rate is screening_rate times a gamma "
            "frailty with this variance, so counts are negative binomial; 0: Poisson at every site.",
        source="negative binomial recruitment model ([Anisimov & Fedorov 2007])")
    unit_lead_days: float = param(
        28.0, number(0.0, 365.0), unit="days",
        doc="Mean time from an eligible child's consent to a released unit at the site (retrieval from the "
            "bank, shipping, qualification); gamma distributed.",
        source="ASSUMPTION: about 4 weeks for a private autologous unit (release, HLA identity check, dry-shipper "
               "courier; no published duration); public units: 80% ship within 14 days of the order (2,931 US "
               "shipments FY2018-22, [Cord blood urgency n.d.])")
    unit_lead_cv: float = param(
        0.5, number(0.0, 5.0), doc="Coefficient of variation of the unit lead time (0: fixed).",
        source="ASSUMPTION")
    unit_failure: float = param(
        0.0, number(0.0, 1.0, hi_open=True), unit="probability",
        doc="Chance that a child's unit is not released (fails qualification); the child is not randomised "
            "and another is screened.",
        source="ASSUMPTION: 0 because population.eligibility already applies the dose criterion; units that "
               "fail sterility or identity testing are rare ([Sun 2010]); set it for other products")
    infusions_per_week: int = param(
        4, integer(0, 1000), unit="infusions per site per week",
        doc="Infusion (and sedation) slots per site per calendar week; children wait in order for the next "
            "free slot. 0: no limit.",
        source="Duke's expanded-access programme [Duke EAP n.d.] gave about 3.6 IV infusions a week (302 from "
               "Nov 2017 to Jun 2019); ASSUMPTION of 4 slots at an experienced site")
    window_days: tuple[float, ...] = param(
        (), array(number(0.0, 365.0), min_length=0, max_length=59), unit="days",
        doc="Visit windows: each follow-up visit falls uniformly within target +/- this many days; one value for "
            "every follow-up visit or one per follow-up visit. Empty: 7 days up to month 1, 14 up to month 6, 30 "
            "later, each at most a quarter of the gap to a neighbouring visit.",
        source="[Gu 2020]: 1, 3, 6 months +/- 7 days, 12 months +/- 15 days; a Vinmec phase II trial (not "
               "identified) +/- 21 days at 6-18 months")
    missed_visit: float = param(
        0.03, number(0.0, 1.0, hi_open=True), unit="probability",
        doc="Chance that a child still in the trial misses a follow-up visit (the later visits still happen).",
        source="ASSUMPTION: no figure for CP trials was found")
    lock_days: float = param(
        36.0, number(0.0, 730.0), unit="days", doc="Database lock after the last child's last visit.",
        source="median about 36 days from last patient last visit to lock ([Tufts CSDD 2017] survey)")


@dataclass(frozen=True)
class Sequential:
    """Interim analyses of the primary analysis with Lan-DeMets spending boundaries."""

    interims: tuple[float, ...] = param(
        (), array(number(0.0, 1000.0, lo_open=True), min_length=0, max_length=19, increasing=True),
        doc="Interim looks before the final analysis: information fractions in (0, 1) (timing 'information') "
            "or months since the first site opened (timing 'calendar'). Empty: a fixed design.",
        source="design")
    timing: str = param(
        "information", choice("information", "calendar"),
        doc="information: a look when that fraction of the children who will have a primary outcome have it; "
            "calendar: a look at that month (skipped if after the final analysis).",
        source="[Lan & DeMets 1983]")
    spending: str = param(
        "obf", choice("obf", "pocock", "kim-demets", "hsd"),
        doc="Alpha-spending function: O'Brien-Fleming-type, Pocock-type, Kim-DeMets power family or "
            "Hwang-Shih-DeCani family (rpact asOF, asP, asKD, asHSD), spent at each look's actual information "
            "fraction.",
        source="[Lan & DeMets 1983]; [Kim & DeMets 1987]; [Hwang Shih & DeCani 1990]; getDesignGroupSequential "
               "of [rpact n.d.]")
    spending_parameter: float | None = param(
        None, number(-10.0, 8.0), shown="none",
        doc="Parameter of the spending function, required by kim-demets and hsd only (rpact gammaA): kim-demets "
            "spends alpha t^rho, rho in [0.4, 8] (1: Pocock-like, 3: O'Brien-Fleming-like); hsd spends "
            "alpha (1 - exp(-gamma t)) / (1 - exp(-gamma)), gamma in [-10, 5] (-4: O'Brien-Fleming-like, "
            "1: Pocock-like).",
        source="[Kim & DeMets 1987]; [Hwang Shih & DeCani 1990]; ranges: rpact's validated bounds [rpact n.d.]")
    futility: tuple[float, ...] = param(
        (), array(number(-10.0, 10.0), min_length=0, max_length=19), unit="z",
        doc="Futility bounds on the z scale, one per interim (stop when z falls below); empty: none (or from "
            "beta_spending, not both).",
        source="design")
    beta_spending: str = param(
        "none", choice("none", "obf", "pocock", "kim-demets", "hsd"),
        doc="Futility bounds from a beta-spending function (rpact bsOF, bsP, bsKD, bsHSD): solved once at the "
            "planned fractions (interims, 1), as getDesignGroupSequential does, so that at the drift giving power "
            "1 - beta the chance of stopping for futility by each look is the beta spent; applied as z bounds at "
            "each trial's actual looks. Needs timing 'information'; none: no beta spending.",
        source="[Lan & DeMets 1983] applied to beta; typeBetaSpending of [rpact n.d.]")
    beta_spending_parameter: float | None = param(
        None, number(-10.0, 8.0), shown="none",
        doc="Parameter of the beta-spending function, required by kim-demets and hsd only (rpact gammaB): "
            "beta t^rho, rho in [0.4, 8], or beta (1 - exp(-gamma t)) / (1 - exp(-gamma)), gamma in [-10, 5].",
        source="[Kim & DeMets 1987]; [Hwang Shih & DeCani 1990]; ranges: rpact's validated bounds [rpact n.d.]")
    beta: float = param(
        0.2, number(0.0, 0.5, lo_open=True, hi_open=True), unit="probability",
        doc="Type II error the beta-spending futility bounds spend (power 1 - beta at the design's drift); used "
            "only with beta_spending.",
        source="beta of getDesignGroupSequential [rpact n.d.]; 0.2 (power 80%) by convention")
    binding: bool = param(
        False, choice(False, True),
        doc="Futility bounds (given or from beta spending) binding (the efficacy bounds use them) or not (the "
            "usual choice).",
        source="bindingFutility of [rpact n.d.]")


_SD = number(0.0, 1000.0, lo_open=True)
#: A mean or an effect in the outcome's units.
_MEAN = number(-1000.0, 1000.0)
#: A correlation of two visits.
_CORRELATION = number(-1.0, 1.0, lo_open=True, hi_open=True)
#: Most visits of design.visits.
_VISITS = 60


def _one_or_each(item: Check, each: str, *, min_length: int = 1, max_length: int) -> Check:
    """One value for every arm (or visit), or a list of them with one each."""

    def check(value: Any, path: str) -> Any:
        if isinstance(value, list | tuple):
            return array(item, min_length=min_length, max_length=max_length)(value, path)
        return item(value, path)

    check.allowed = f"{item.allowed}, or a list of them, one per {each}"  # type: ignore[attr-defined]
    return check


_sd = _one_or_each(_SD, "arm", max_length=12)


def _visit_effects(value: Any, path: str) -> tuple[float, ...] | tuple[tuple[float, ...], ...]:
    """A list with one effect per visit, or a list of such lists, one per active arm."""
    if isinstance(value, list | tuple) and value and all(isinstance(v, list | tuple) for v in value):
        return array(array(_MEAN, max_length=_VISITS), max_length=11)(value, path)
    return array(_MEAN, min_length=0, max_length=_VISITS)(value, path)


_visit_effects.allowed = (  # type: ignore[attr-defined]
    f"array of {_MEAN.allowed} (one per visit), or an array of such arrays (one per active arm)")


@dataclass(frozen=True)
class Outcome:
    """The outcome model: the GMFM-66 model of children and cells, a plain normal model, or a multivariate normal
    model of every visit from a pilot study's visit summaries."""

    model: str = param(
        "gmfm66", choice("gmfm66", "normal", "mvn"),
        doc="gmfm66: population, natural history and treatment models. normal: bivariate normal "
            "baseline and primary-visit scores set by sd, effect and correlation (a crossover adds the end of "
            "period 2: period_effect, within_correlation, carryover). mvn: multivariate normal scores at every "
            "visit of design.visits (visit_means, visit_effects or arm_means, visit_sd, covariance).",
        source="design")
    sd: float | tuple[float, ...] = param(
        5.5, _sd, unit="outcome units",
        doc="normal model: SD of the score at baseline and at the primary visit; one number for all arms, or a "
            "list with one per arm (control first). mvn: the SD at every visit when visit_sd is empty.",
        source="with correlation 0.5 the SD of change is 5.5: ASSUMPTION between the SDs of 12-month change "
               "implied by [Finch-Edmondson 2025] (about 5.2) and [Sun 2022] (4.9-6.5)")
    effect: float = param(
        3.3, number(-1000.0, 1000.0), unit="outcome units",
        doc="normal model: mean difference at the primary visit, active minus control (single_arm: the arm's "
            "change beyond expected_change; crossover: in period 1, and the placebo-first sequence gains it in "
            "period 2). mvn: the effect at the primary visit when visit_effects and arm_means are empty.",
        source="ACCeNT-CP high-dose allogeneic UCB vs natural history +3.3 ([Sun 2022])")
    correlation: float = param(
        0.5, number(-1.0, 1.0, lo_open=True, hi_open=True),
        doc="normal model: correlation of baseline with the primary-visit score. mvn: the correlation rho of "
            "cs and ar1 when visit_correlation is not given.",
        source="ASSUMPTION chosen so that SD of change equals sd")
    expected_change: float = param(
        0.0, number(-1000.0, 1000.0), unit="outcome units",
        doc="normal model: mean change from baseline to the primary visit without cells, in every arm; a "
            "single_arm design's analyses expect this change (plus analysis.expected_error). mvn: the control "
            "mean grows by it every primary_visit months when visit_means and arm_means are empty.",
        source="ASSUMPTION: no natural change (it cancels between arms); a single arm is judged against the "
               "expected change as in [Lee 2012]")
    period_effect: float = param(
        0.0, number(-1000.0, 1000.0), unit="outcome units",
        doc="normal model, crossover: mean change over period 2 minus that over period 1 without cells, alike "
            "in both sequences (e.g. slower growth as children age).",
        source="period effect of the AB/BA model ([Senn 2002]); ASSUMPTION: none (the crossover analysis "
               "removes it)")
    within_correlation: float = param(
        0.0, number(-1.0, 1.0, lo_open=True, hi_open=True),
        doc="normal model, crossover: within-child correlation of the period-1 and period-2 changes without "
            "cells; the period-2 change has the SD of the period-1 change, sd x sqrt(2 (1 - correlation)).",
        source="within-patient correlation of the AB/BA model ([Senn 2002]), of period changes here; "
               "ASSUMPTION: 0, the switch visit's measurement error (-0.5 alone) offset by children's own "
               "growth rates")
    carryover: float = param(
        0.0, number(-1000.0, 1000.0), unit="outcome units",
        doc="normal model, crossover: mean extra change over period 2 of the cells-first sequence, the "
            "period-1 effect growing (> 0) or waning (< 0) after the switch (-effect: all of it lost); part "
            "of the cell effect, so absent from the trials without effect.",
        source="carry-over of the AB/BA model ([Senn 2002]; [Hills & Armitage 1979]); ASSUMPTION: none, a "
               "durable effect kept as it is")
    visit_means: tuple[float, ...] = param(
        (), array(_MEAN, min_length=0, max_length=_VISITS), unit="outcome units",
        doc="mvn: the control arm's mean score at each visit of design.visits (baseline first), e.g. a pilot "
            "study's visit means. Empty: expected_change x months / primary_visit (0 at baseline, "
            "expected_change at the primary visit, growing at that rate after it).",
        source="user (a pilot study's visit summaries); default DERIVED from expected_change (ASSUMPTION: no "
               "natural change)")
    visit_effects: tuple[float, ...] | tuple[tuple[float, ...], ...] = param(
        (), _visit_effects, unit="outcome units",
        doc="mvn: mean difference at each visit of design.visits, active minus control (0 at baseline): one list "
            "for every active arm, or one list per active arm (parallel). A crossover's cells-first sequence "
            "follows it from month 0, the placebo-first one from the switch (months since its cells, linear "
            "between visits). Empty: effect x min(months / primary_visit, 1) (a linear rise to effect at the "
            "primary visit, held after it).",
        source="user; default DERIVED from effect ([Sun 2022], +3.3 at 12 months; linear rise ASSUMPTION)")
    arm_means: tuple[tuple[float, ...], ...] = param(
        (), array(array(_MEAN, min_length=2, max_length=_VISITS), min_length=0, max_length=12),
        unit="outcome units",
        doc="mvn, parallel: each arm's mean score at each visit (one list per arm, control first, equal "
            "baselines), instead of visit_means and visit_effects: the effects are each arm's means minus the "
            "control's. Empty: visit_means and visit_effects.",
        source="user (a pilot study's visit means by arm)")
    visit_sd: float | tuple[float, ...] = param(
        (), _one_or_each(_SD, "visit", min_length=0, max_length=_VISITS), unit="outcome units",
        doc="mvn: SD of the score at each visit of design.visits, alike in every arm: one number for every "
            "visit, or one per visit. Empty: sd at every visit.",
        source="user (a pilot study's visit SDs); default sd (5.5, see outcome.sd)")
    covariance: str = param(
        "cs", choice("cs", "ar1", "toeplitz", "unstructured"),
        doc="mvn: correlation of a child's scores at two visits: cs (compound symmetry, visit_correlation "
            "between any two), ar1 (visit_correlation^lag, the lag counted in visits, not months), toeplitz "
            "(one correlation per lag, outcome.toeplitz) or unstructured (correlation_matrix).",
        source="ASSUMPTION: cs, so that with correlation 0.5 baseline and primary visit correlate as in the "
               "normal model; [mmrm n.d.] covariance structures")
    visit_correlation: float | None = param(
        None, _CORRELATION, shown="outcome.correlation",
        doc="mvn, covariance cs or ar1: the correlation rho; not given: outcome.correlation (0.5).",
        source="user (a pilot study's correlations); default outcome.correlation (ASSUMPTION)")
    toeplitz: tuple[float, ...] = param(
        (), array(_CORRELATION, min_length=0, max_length=_VISITS - 1),
        doc="mvn, covariance toeplitz: correlation of two visits 1, 2, ... visits apart (one per lag, "
            "len(design.visits) - 1 values); the matrix must be positive definite.",
        source="user (a pilot study's correlations)")
    correlation_matrix: tuple[tuple[float, ...], ...] = param(
        (), array(array(number(-1.0, 1.0), min_length=2, max_length=_VISITS), min_length=0, max_length=_VISITS),
        doc="mvn, covariance unstructured: the correlation of every two visits of design.visits, one row per "
            "visit; symmetric, 1 on the diagonal, positive definite.",
        source="user (a pilot study's correlation matrix)")
