"""Scenario: a trial design plus assumptions about children and cells, validated and frozen.

A scenario is read from TOML (:func:`load_scenario`) or built from a dict (:func:`scenario_from_dict`).
Every omitted value takes the default declared below, each with its source; ``shared/reference``
section numbers (``ref §7.1``) point at the project's parameter file, which gives full citations.
Overrides use dotted paths (``design.n_per_arm=40``), exactly as the CLI's ``--set``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import itertools
import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cbcp_sim.errors import ScenarioError
from cbcp_sim.scenario import hypotheses, products
from cbcp_sim.scenario.priors import Assurance, Sensitivity, check_priors
from cbcp_sim.scenario.products import Arm, Treatment
from cbcp_sim.scenario.schema import (
    array,
    build,
    choice,
    describe,
    gmfcs_mix,
    integer,
    number,
    param,
    per_gmfcs,
    section,
    table_of,
    text,
    topography_table,
)
from cbcp_sim.vocabulary import (
    ANALYSES,
    COVARIATES,
    CROSSOVER_ANALYSES,
    DAYS_PER_MONTH,
    GMFCS_LEVELS,
    PARALLEL_ANALYSES,
    SINGLE_ARM_ANALYSES,
    T_ANALYSES,
    TOPOGRAPHIES,
)

#: Largest SD of the random GMFM-66 limit on the logit scale; beyond about sqrt(2) a logit-normal is bimodal,
#: piling limits near 0 and 100.
MAX_LIMIT_LOGIT_SD = 1.4

@dataclass(frozen=True)
class Population:
    """Children referred to the trial: age, sex, GMFCS level, topography, body weight and banked unit."""

    ages: tuple[float, float] = param(
        (1.0, 6.0), array(number(0.5, 21.0), length=2, increasing=True), unit="years",
        doc="Age range of referred children.",
        source="Sun et al. 2017 Stem Cells Transl Med 6:2071 (Duke autologous UCB RCT, ages 1-6); ref §3")
    age_distribution: str = param(
        "uniform", choice("uniform", "lognormal"),
        doc="Ages within the range: uniform, or log-normal (age_median, age_gsd) truncated to the range.",
        source="design choice")
    age_median: float = param(
        3.0, number(0.5, 21.0), unit="years",
        doc="lognormal ages: median before truncation.",
        source="ASSUMPTION; Sun et al. 2017 median 2.1 (1-6), ACCeNT-CP 3.6 (2-5), Lee et al. 2012 4.6; ref §3")
    age_gsd: float = param(
        1.6, number(1.0, 10.0, lo_open=True), unit="ratio",
        doc="lognormal ages: geometric SD before truncation.", source="ASSUMPTION")
    male_share: float = param(
        0.56, number(0.0, 1.0), unit="share",
        doc="Share of boys.",
        source="Reid et al. 2011 Res Dev Disabil 32:2909 (Victorian CP register, 1658/2956 = 56.1%, DERIVED); "
               "Franzen et al. 2017 BMC Musculoskelet Disord 18:520 (CPUP, 57%)")
    gmfcs_mix: tuple[float, ...] = param(
        (0.20, 0.25, 0.20, 0.25, 0.10), gmfcs_mix, unit="share",
        doc="Shares of GMFCS levels I-V among referred children ({1 = 0.2, 2 = 0.25, ...}); eligibility and "
            "dose screening shift the enrolled shares.",
        source="ASSUMPTION: typical trial enrichment of II-IV, ref §7.7. Registries: about 32/29/8/15/16% "
               "(Himmelmann et al. 2006 DMCN 48:417), ref §6")
    topography: tuple[tuple[float, ...], ...] = param(
        ((0.78, 0.20, 0.01, 0.01, 0.01), (0.18, 0.64, 0.65, 0.05, 0.01), (0.04, 0.16, 0.34, 0.94, 0.98)),
        topography_table, unit="share",
        doc="Share of hemiplegia, diplegia and quadriplegia within each GMFCS level I-V (spastic CP).",
        source="DERIVED from registers: topography 35/28/37% (Howard et al. 2005 J Paediatr Child Health 41:479), "
               "87.8% of hemiplegia at level I (Gorter et al. 2004 DMCN 46:461), GMFCS IV-V in 1% / 2% / 76% of "
               "hemi- / di- / quadriplegia (Shevell et al. 2009 DMCN 51:872); split within I-III ASSUMPTION")
    unit_tnc_median: float = param(
        4.7, number(0.0, 100.0, lo_open=True), unit="10^8 TNC",
        doc="Median pre-cryopreservation total nucleated cells of a privately banked unit.",
        source="Sun et al. 2010 Transfusion 50:1980 (VERIFIED); ref §4")
    unit_tnc_gsd: float = param(
        1.8, number(1.0, 5.0), unit="ratio",
        doc="Geometric SD of banked-unit TNC (log-normal).",
        source="ASSUMPTION; with recovery and weight it gives the dose spread of Lee et al. 2012 "
               "(5.5 +/- 3.8 x 10^7/kg), ref §4, §7.5")
    recovery_mean: float = param(
        0.80, number(0.0, 1.0, lo_open=True, hi_open=True), unit="fraction",
        doc="Mean post-thaw TNC recovery (Beta distributed).",
        source="Kurtzberg et al. 2008 Blood 112:4318 (COBLT: infused / pre-cryopreservation dose 3.9 / 5.1 = 0.76); "
               "ref §4, §7.5")
    recovery_sd: float = param(
        0.10, number(0.0, 0.5), unit="fraction",
        doc="SD of post-thaw TNC recovery; 0 makes it constant.", source="ASSUMPTION, ref §7.5")
    weight_factor: tuple[float, ...] = param(
        (0.95, 0.92, 0.84, 0.80, 0.76), per_gmfcs(0.3, 1.5), unit="ratio",
        doc="Body weight relative to the general-population median for age and sex, GMFCS I-V.",
        source="DERIVED: exp(weight_sd_log x WAZ) with WAZ -0.57 (I-II), -1.75 (III-V) (Ruiz Brunner et al. 2022 "
               "Sci Rep) and -2.25 in quadriplegia (Krick et al. 1996 J Am Diet Assoc 96:680); direction per "
               "Brooks et al. 2011 Pediatrics 128:e299")
    weight_sd_log: float = param(
        0.12, number(0.0, 1.0), unit="log kg",
        doc="Between-child SD of log body weight around the median for age, sex and GMFCS.",
        source="ASSUMPTION (about 1 z-score of weight-for-age), ref §7.5")
    max_dose: float = param(
        5.0, number(0.0, 100.0, lo_open=True), unit="10^7 TNC/kg",
        doc="Autologous infused dose is capped at this value.",
        source="Sun et al. 2017 protocol: 1-5 x 10^7 TNC/kg; ref §3, §7.5")
    source: str = param(
        "autologous", choice("autologous", "allogeneic"),
        doc="Autologous: dose per kg = banked unit TNC x recovery / weight. Allogeneic: a fixed dose per kg.",
        source="Sun et al. 2017 (autologous); Sun et al. 2022 DMCN ACCeNT-CP (allogeneic); ref §3")
    allogeneic_dose: float = param(
        10.0, number(0.0, 100.0), unit="10^7 TNC/kg",
        doc="Dose per kg when source = 'allogeneic'.",
        source="Sun et al. 2022 DMCN 64:1477 ACCeNT-CP target; ref §3, §4")


@dataclass(frozen=True)
class Eligibility:
    """Who of the referred children is enrolled; the rest are screen failures (their share is reported)."""

    ages: tuple[float, float] = param(
        (0.0, 21.0), array(number(0.0, 21.0), length=2, increasing=True), unit="years",
        doc="Eligible ages at enrolment.", source="protocol")
    gmfcs: tuple[int, ...] = param(
        (1, 2, 3, 4, 5), array(choice(*GMFCS_LEVELS), max_length=5), doc="Eligible GMFCS levels.",
        source="protocol; e.g. ACCeNT-CP I-IV, Zarrabi et al. 2022 II-V; ref §3, §5")
    topography: tuple[str, ...] = param(
        TOPOGRAPHIES, array(choice(*TOPOGRAPHIES), max_length=3), doc="Eligible topographies.",
        source="protocol; e.g. Zarrabi et al. 2022: spastic diplegia or quadriplegia; ref §5")
    min_dose: float = param(
        1.0, number(0.0, 100.0), unit="10^7 TNC/kg",
        doc="Autologous: children whose unit gives less than this dose are not eligible.",
        source="Sun et al. 2010: units shipped only if > 1 x 10^7 TNC/kg; ref §4, §7.5")


@dataclass(frozen=True)
class NaturalHistory:
    """GMFM-66 motor growth without treatment: stable-limit curves, decline for III-V, child and visit variation."""

    limit: tuple[float, ...] = param(
        (87.7, 68.4, 54.3, 40.4, 22.3), per_gmfcs(1.0, 99.0), unit="GMFM-66 points",
        doc="Limit (plateau) of a typical child's motor growth curve, GMFCS I-V.",
        source="Rosenbaum et al. 2002 JAMA 288:1357 (RECALLED, consistent with Shi et al. 2012); ref §1a")
    age90: tuple[float, ...] = param(
        (4.8, 4.4, 3.7, 3.5, 2.7), per_gmfcs(0.1, 20.0), unit="years",
        doc="Age at which a typical child reaches 90% of the limit, GMFCS I-V; time constant = age90 / ln 10.",
        source="Rosenbaum et al. 2002 via Prosser et al. (VERIFIED); ref §1a")
    limit_sd: tuple[float, ...] = param(
        (8.0, 9.0, 8.0, 7.0, 5.0), per_gmfcs(0.0, 50.0), unit="GMFM-66 points",
        doc="Between-child SD of the limit near its median, GMFCS I-V (normal on the logit scale, so limits "
            "stay inside 0-100); at most 1.4 x limit x (1 - limit / 100).",
        source="ASSUMPTION mimicking Hanna et al. 2008 Phys Ther 88:596 percentile spread; ref §7.1")
    rate_sd_log: float = param(
        0.25, number(0.0, 2.0), unit="log(1/years)",
        doc="Between-child SD of the log growth rate 1 / time constant.",
        source="ASSUMPTION (variance components of Rosenbaum et al. 2002 not published); ref §7.1, §8")
    limit_rate_corr: float = param(
        0.0, number(-0.99, 0.99),
        doc="Correlation between a child's limit and log growth rate (random effects on the normal scale).",
        source="ASSUMPTION (variance components of Rosenbaum et al. 2002 not published); ref §7.1, §8")
    peak_age: tuple[float, ...] = param(
        (21.0, 21.0, 7.92, 6.92, 6.92), per_gmfcs(0.0, 21.0), unit="years",
        doc="Age after which scores decline linearly, GMFCS I-V (21 = no decline).",
        source="Hanna et al. 2009 DMCN doi:10.1111/j.1469-8749.2008.03196.x (VERIFIED); ref §1b")
    decline: tuple[float, ...] = param(
        (0.0, 0.0, 4.7, 7.8, 6.4), per_gmfcs(0.0, 100.0), unit="GMFM-66 points",
        doc="Loss from the score at the peak age to the score at age 21, GMFCS I-V.",
        source="Hanna et al. 2009 (VERIFIED); linear form ASSUMPTION; ref §1b, §7.1")
    sem: float = param(
        1.2, number(0.0, 20.0), unit="GMFM-66 points",
        doc="Standard error of measurement of one GMFM-66 assessment at mid-scale (scores 30-75).",
        source="GMAE-2 worked example 95% CI half-width / 1.96 (DERIVED); ref §2, §7.1")
    sem_extreme: float = param(
        2.0, number(0.0, 20.0), unit="GMFM-66 points",
        doc="SEM at scores below 20 or above 85 (linear from the mid-scale SEM over 20-30 and 75-85).",
        source="ASSUMPTION: Rasch SE rises near floor and ceiling (RECALLED); ref §2, §7.1")
    occasion_sd: float = param(
        3.5, number(0.0, 20.0), unit="GMFM-66 points",
        doc="SD of a child's fluctuation around own curve (true performance, beyond measurement error).",
        source="ASSUMPTION calibrated to the ACCeNT-CP natural-history arm's SD of 12-month excess change "
               "(4.9, Sun et al. 2022 DMCN 64:1477); ref §3, §7.1")
    occasion_months: float = param(
        6.0, number(0.01, 240.0), unit="months",
        doc="Time over which the fluctuation decorrelates (correlation exp(-months apart / occasion_months)); "
            "visits a week apart share it, so test-retest error is mostly the SEM.",
        source="ASSUMPTION: centile prediction error similar at 6-24 month horizons (ref §1b); "
               "test-retest ICC 0.99 (Russell et al. 2000 Phys Ther 80:873), ref §2")
    trial_effect_per_year: float = param(
        3.1, number(-20.0, 20.0), unit="GMFM-66 points/year",
        doc="Gain beyond the growth curves of every enrolled child (trial participation, selection, practice), "
            "accruing linearly from baseline for trial_effect_months. Cancels between randomised arms; biases "
            "comparisons with the curves. 0 turns it off.",
        source="Sun et al. 2022 DMCN 64:1477 ACCeNT-CP natural-history arm: +3.1 (1.4-5.0) beyond expected at "
               "12 months (VERIFIED); ref §3, §7.1")
    trial_effect_months: float = param(
        12.0, number(0.0, 240.0), unit="months",
        doc="Months over which the trial effect accrues; it is held after that.",
        source="ASSUMPTION: ACCeNT-CP measured it over 12 months only; ref §3")


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
        source="two-arm sham-controlled parallel design (Zarrabi et al. 2022; Amanat et al. 2021); ref §3")
    n_per_arm: tuple[int, ...] = param(
        (36,), _n_per_arm, unit="children",
        doc="Children per arm: one number for all arms, or a list with one per arm (control first).",
        source="36 per arm as in Zarrabi et al. 2022 and Amanat et al. 2021; ref §3")
    visits: tuple[float, ...] = param(
        (0.0, 1.0, 3.0, 6.0, 12.0), array(number(0.0, 240.0), min_length=2, max_length=60, increasing=True),
        unit="months", doc="Assessment times after the infusion; the first must be 0 (baseline).",
        source="Zarrabi/Amanat registry IRCT201706176907N13; ref §5, §7.6")
    primary_visit: float = param(
        12.0, number(0.0, 240.0, lo_open=True), unit="months",
        doc="Visit of the primary comparison (must be one of visits).", source="ref §3, §7.6")
    alpha: float = param(
        0.05, number(0.0, 0.5, lo_open=True), doc="Significance level of the primary test.",
        source="convention")
    sides: int = param(2, choice(1, 2), doc="1: one-sided (active > control); 2: two-sided.",
                       source="convention")
    blinding: str = param(
        "double", choice("double", "assessor", "open"),
        doc="double: families and assessors blinded; assessor: families know the arm (expectation response "
            "only with cells), assessors do not; open: both know (adds treatment.assessor_bias).",
        source="protocol; Zarrabi et al. 2022 double-blind, ACCeNT-CP assessor-blinded, Lee et al. 2012 open")
    kind: str = param(
        "parallel", choice("parallel", "crossover", "single_arm"),
        doc="parallel: each arm against the first; crossover: two sequences that switch at crossover_month "
            "(the first arm gets cells then, the second at month 0); single_arm: one treated arm judged "
            "against its expected natural change.",
        source="Zarrabi et al. 2022 parallel; Sun et al. 2017 crossover; Lee et al. 2012 single arm; ref §3")
    crossover_month: float = param(
        12.0, number(0.0, 240.0, lo_open=True), unit="months",
        doc="crossover: the switch visit (end of period 1); must be one of visits, before the last.",
        source="Sun et al. 2017: 12-month periods, no washout; ref §3, §7")
    randomisation: str = param(
        "fixed", choice("fixed", "blocks"),
        doc="fixed: exactly n_per_arm children per arm (complete randomisation with fixed sizes); blocks: "
            "permuted blocks within strata in enrolment order, sum(n_per_arm) children in the ratio of "
            "n_per_arm, so arm sizes vary a little between trials.",
        source="ICH E9 §2.3.1; stratified permuted blocks as in Zarrabi et al. 2022")
    strata: tuple[str, ...] = param(
        ("gmfcs", "age"), array(choice("gmfcs", "age", "dose"), min_length=0, max_length=3),
        doc="blocks: stratification factors: GMFCS level, age band (age_bands), dose stratum (dose_threshold).",
        source="ASSUMPTION: GMFCS and age, the strongest predictors of motor change (ref §1)")
    block_size: int = param(
        0, integer(0, 1000), unit="children",
        doc="blocks: children per block, a multiple of the allocation ratio's sum; 0 means twice that sum.",
        source="convention (small blocks keep strata balanced)")
    age_bands: tuple[float, ...] = param(
        (5.0,), array(number(0.0, 21.0, lo_open=True), min_length=0, max_length=10, increasing=True),
        unit="years", doc="Age-band boundaries for the age stratum.",
        source="the age-5 break of treatment.modifiers (Finch-Edmondson 2025 IPD-MA); ref §7.2")
    dose_threshold: float = param(
        2.0, number(0.0, 1000.0, lo_open=True), unit="10^7 TNC/kg",
        doc="Dose stratum boundary, for randomisation strata and for analysis.dose_strata.",
        source="Sun et al. 2017: GMFM-66 gains above expected only at doses >= 2 x 10^7/kg; ref §3")




@dataclass(frozen=True)
class Dropout:
    """Monotone dropout: a child lost stays lost; constant hazard (MCAR) or score-dependent (MAR)."""

    mechanism: str = param(
        "mcar", choice("mcar", "mar"),
        doc="mcar: dropout unrelated to scores; mar: after each visit, the odds of leaving rise by "
            "mar_odds_ratio per SD lower score at that visit (missing at random given observed scores).",
        source="Little & Rubin 2019; design.md dropout mechanisms")
    mar_odds_ratio: float = param(
        2.0, number(1.0, 100.0), doc="mar: odds ratio of leaving after a visit per SD lower observed score.",
        source="ASSUMPTION: families of children progressing least leave most")
    fraction: float = param(
        0.05, number(0.0, 1.0, hi_open=True), unit="fraction",
        doc="Cumulative fraction of children lost by month `by_month` (mar: of an average child).",
        source="ASSUMPTION from the 0-8.6% seen by 6-12 months (Min 2013, Gu 2020, ACCeNT-CP); ref §5, §7.6")
    by_month: float = param(
        12.0, number(0.0, 240.0, lo_open=True), unit="months",
        doc="Month at which `fraction` have dropped out.", source="ref §7.6")


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
        source="ANCOVA on baseline: Borm et al. 2007 J Clin Epidemiol 60:1234; EMA covariate guideline")
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
        source="ICH E9 / EMA 2015 covariate guideline: adjust for stratification factors")
    multiplicity: str = param(
        "holm", choice("none", "holm", "hochberg", "dunnett"),
        doc="With more than one active arm, how each analysis's p-values over the arms are adjusted "
            "(dunnett: t-based analyses only).",
        source="Holm 1979; Hochberg 1988; Dunnett 1955; EMA multiplicity guideline 2017")
    mcid: float = param(
        1.5, number(0.0, 100.0, lo_open=True), unit="GMFM-66 points",
        doc="fisher and chisquare: a responder gains at least this much.",
        source="RECALLED, low confidence: GMFM-66 MCIDs of about 1-2 points (Oeffinger 2008); ref §2")
    dose_strata: bool = param(
        False, choice(False, True),
        doc="Add secondary comparisons of each active arm's children dosed at or above, and below, "
            "design.dose_threshold against the reference arm (as the autologous trials reported).",
        source="Sun et al. 2017 dose subgroups; ref §3")
    expected_error: float = param(
        0.0, number(-100.0, 100.0), unit="GMFM-66 points",
        doc="single_arm: error added to each child's expected natural change (negative: the expectation is "
            "too low, as from growth curves that miss the trial effect).",
        source="design check (Rosenbaum 2002 curves vs trial effect, ref §1)")


@dataclass(frozen=True)
class Operations:
    """The trial on the calendar (SimPy): sites, screening, banked units, infusion slots, visit windows."""

    enabled: bool = param(
        False, choice(False, True),
        doc="Simulate each trial's calendar: enrolment and infusion dates, actual visit times (which feed the "
            "outcome model), missed visits and dropout times, and milestones. Needed for interim looks.",
        source="design (off: every child is seen exactly on schedule and the trial has no calendar)")
    sites: int = param(
        1, integer(1, 500), unit="sites", doc="Recruiting sites.",
        source="single-site trials: Sun et al. 2017 (Duke), Zarrabi et al. 2022 (Royan); ref §3")
    activation_months: float = param(
        0.0, number(0.0, 120.0), unit="months",
        doc="The first site opens at month 0, each other at a uniform random time in [0, activation_months].",
        source="ASSUMPTION: staggered openings over the first months of multicentre trials")
    screening_rate: float = param(
        8.0, number(0.0, 1000.0, lo_open=True), unit="children per site per month",
        doc="Referred children screened per open site per month (Poisson arrivals); population and eligibility "
            "decide who is eligible.",
        source="ASSUMPTION anchored on single-site enrolment of 6.7 children per month in ACCeNT-CP (91 "
               "randomised 10 Apr 2018 - 30 May 2019, NCT03473301 results) and 10.2 in Min et al. 2013 (105 in "
               "10.3 months, NCT01193660): 87% of referred children are eligible in the default scenario, so it "
               "randomises about 7 a month")
    screening_dispersion: float = param(
        0.0, number(0.0, 2.0), unit="(CV of site rate)^2",
        doc="Variation of screening rates between sites: each site's rate is screening_rate times a gamma "
            "frailty with this variance, so counts are negative binomial; 0: Poisson at every site.",
        source="negative binomial recruitment model (Anisimov & Fedorov 2007, Stat Med 26:4958)")
    unit_lead_days: float = param(
        28.0, number(0.0, 365.0), unit="days",
        doc="Mean time from an eligible child's consent to a released unit at the site (retrieval from the "
            "bank, shipping, qualification); gamma distributed.",
        source="ASSUMPTION: about 4 weeks for a private autologous unit (release, HLA identity check, dry-shipper "
               "courier; no published duration); public units: 80% ship within 14 days of the order (2,931 US "
               "shipments FY2018-22, 'Cord blood: defining urgency & delivering speed')")
    unit_lead_cv: float = param(
        0.5, number(0.0, 5.0), doc="Coefficient of variation of the unit lead time (0: fixed).",
        source="ASSUMPTION")
    unit_failure: float = param(
        0.0, number(0.0, 1.0, hi_open=True), unit="probability",
        doc="Chance that a child's unit is not released (fails qualification); the child is not randomised "
            "and another is screened.",
        source="ASSUMPTION: 0 because population.eligibility already applies the dose criterion; units that "
               "fail sterility or identity testing are rare (Sun et al. 2010); set it for other products")
    infusions_per_week: int = param(
        4, integer(0, 1000), unit="infusions per site per week",
        doc="Infusion (and sedation) slots per site per calendar week; children wait in order for the next "
            "free slot. 0: no limit.",
        source="Duke's expanded-access programme gave about 3.6 IV infusions a week (302 from Nov 2017 to Jun "
               "2019); ASSUMPTION of 4 slots at an experienced site")
    window_days: tuple[float, ...] = param(
        (), array(number(0.0, 365.0), min_length=0, max_length=59), unit="days",
        doc="Visit windows: each follow-up visit falls uniformly within target +/- this many days; one value for "
            "every follow-up visit or one per follow-up visit. Empty: 7 days up to month 1, 14 up to month 6, 30 "
            "later, each at most a quarter of the gap to a neighbouring visit.",
        source="Gu et al. 2020: 1, 3, 6 months +/- 7 days, 12 months +/- 15 days; a Vinmec phase II trial +/- 21 "
               "days at 6-18 months")
    missed_visit: float = param(
        0.03, number(0.0, 1.0, hi_open=True), unit="probability",
        doc="Chance that a child still in the trial misses a follow-up visit (the later visits still happen).",
        source="ASSUMPTION: no figure for CP trials was found")
    lock_days: float = param(
        36.0, number(0.0, 730.0), unit="days", doc="Database lock after the last child's last visit.",
        source="median about 36 days from last patient last visit to lock (Tufts CSDD / Veeva EDC survey)")


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
        source="Lan & DeMets 1983 Biometrika 70:659")
    spending: str = param(
        "obf", choice("obf", "pocock"),
        doc="Alpha-spending function: O'Brien-Fleming-type or Pocock-type (rpact asOF, asP), spent at each "
            "look's actual information fraction.",
        source="Lan & DeMets 1983; rpact getDesignGroupSequential")
    futility: tuple[float, ...] = param(
        (), array(number(-10.0, 10.0), min_length=0, max_length=19), unit="z",
        doc="Futility bounds on the z scale, one per interim (stop when z falls below); empty: none.",
        source="design")
    binding: bool = param(
        False, choice(False, True),
        doc="Futility bounds binding (the efficacy bounds use them) or not (the usual choice).",
        source="rpact bindingFutility")


@dataclass(frozen=True)
class Outcome:
    """The outcome model: the GMFM-66 model of children and cells, or a plain normal model."""

    model: str = param(
        "gmfm66", choice("gmfm66", "normal"),
        doc="gmfm66: population, natural history and treatment models. normal: bivariate normal "
            "baseline and primary-visit scores set by sd, effect and correlation.", source="design")
    sd: float = param(
        5.5, number(0.0, 1000.0, lo_open=True), unit="outcome units",
        doc="normal model: SD of the score at baseline and at the primary visit.",
        source="with correlation 0.5 the SD of change is 5.5, the SD of 12-month change in ref §7.7")
    effect: float = param(
        3.3, number(-1000.0, 1000.0), unit="outcome units",
        doc="normal model: mean difference at the primary visit, active minus control.",
        source="ACCeNT-CP high-dose allogeneic UCB vs natural history +3.3 (Sun et al. 2022); ref §3")
    correlation: float = param(
        0.5, number(-1.0, 1.0, lo_open=True, hi_open=True),
        doc="normal model: correlation of baseline with the primary-visit score.",
        source="ASSUMPTION chosen so that SD of change equals sd")


@dataclass(frozen=True)
class Scenario:
    """A validated, frozen scenario. Build it with :func:`load_scenario` or :func:`scenario_from_dict`."""

    title: str = param("Untitled scenario", text, doc="One line saying what the trial is.", source="user")
    population: Population = section(Population)
    eligibility: Eligibility = section(Eligibility)
    natural_history: NaturalHistory = section(NaturalHistory)
    treatment: Treatment = section(Treatment)
    design: Design = section(Design)
    arms: dict[str, Arm] = table_of(
        Arm, doc="What each arm of design.arms receives, by arm name.", source="protocol")
    dropout: Dropout = section(Dropout)
    analysis: Analysis = section(Analysis)
    outcome: Outcome = section(Outcome)
    operations: Operations = section(Operations)
    sequential: Sequential = section(Sequential)
    assurance: Assurance = section(Assurance)
    sensitivity: Sensitivity = section(Sensitivity)
    effects: hypotheses.Effects = param(
        (), hypotheses.effects_table,
        doc="Named effect hypotheses, each a table of dotted-path values that hold under it (e.g. [effects.reported] "
            "and [effects.pooled]; an empty table is the file as written); --effect NAME applies one.",
        source="design (a trial judged under the effect it reported and the effect pooled evidence suggests)",
        shown="none")

    @property
    def analyses(self) -> tuple[str, ...]:
        """Primary analysis first, then secondary ones, without repeats."""
        return tuple(dict.fromkeys((self.analysis.primary, *self.analysis.secondary)))

    @property
    def regimens(self) -> tuple[products.Regimen, ...]:
        """What each arm receives, in ``design.arms`` order, every value resolved."""
        autologous = self.population.source == "autologous"
        d = self.design
        return tuple(products.regimen(name, i, self.arms.get(name), self.treatment, autologous, design_kind=d.kind,
                                   crossover_month=d.crossover_month)
                     for i, name in enumerate(d.arms))

    @property
    def primary_index(self) -> int:
        """Index of the primary visit in ``design.visits``."""
        return self.design.visits.index(self.design.primary_visit)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict of every set value (defaults and presets resolved), as TOML would hold it."""
        return _drop_none(_plain(dataclasses.asdict(self)))

    def digest(self) -> str:
        """A stable hash of every value, to tell a changed scenario from the same one."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def replace(self, overrides: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> Scenario:
        """A new scenario with dotted-path overrides, validated like a file.

        Product values equal to the current cell preset follow the preset of a new ``treatment.cells``
        (and a half-life derived from ``retained_fraction`` is derived again); to keep such a value when
        changing cells, give it again in ``overrides``.
        """
        raw = self.to_dict()
        t, preset = raw["treatment"], products.PRESETS[self.treatment.cells]
        for key in products.TIME_COURSE:
            if t.get(key) == preset[key]:
                del t[key]  # keep following the preset if `cells` changes
        for key in products.DOSE_RESPONSE:
            if t["dose_response"].get(key) == preset[key]:
                del t["dose_response"][key]
        if "retained_fraction" in t:
            t.pop("waning_half_life_months", None)
        return scenario_from_dict(raw, overrides)

    def with_effect(self, name: str) -> Scenario:
        """This scenario under its named effect hypothesis ``[effects.<name>]``."""
        return self.replace(hypotheses.overrides(self.effects, name))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _drop_none(value: Any) -> Any:
    """A nested dict without its unset (None) values, as a TOML file would omit them."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


def parse_value(text_value: str) -> Any:
    """A ``--set`` value: a TOML value (``40``, ``[30, 40]``, ``inf``, ``"x"``) or else a bare string."""
    try:
        return tomllib.loads(f"v = {text_value}")["v"]
    except tomllib.TOMLDecodeError:
        return text_value


def set_dotted(raw: dict[str, Any], path: str, value: Any) -> None:
    """Set ``raw[a][b][c] = value`` for path ``a.b.c``, creating tables on the way."""
    keys = path.split(".")
    if not all(keys):
        raise ScenarioError(path, "must be a dotted path such as design.n_per_arm")
    node = raw
    for i, key in enumerate(keys[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ScenarioError(".".join(keys[: i + 1]), "is a value, not a table")
        node = child
    node[keys[-1]] = value


def scenario_from_dict(raw: Mapping[str, Any],
                       overrides: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> Scenario:
    """Validate a nested dict (as read from TOML) plus dotted-path overrides into a Scenario."""
    data = copy.deepcopy(dict(raw))
    items = overrides.items() if isinstance(overrides, Mapping) else overrides
    for path, value in items:
        set_dotted(data, path, value)
    scenario = build(Scenario, data, "")
    return _finish(scenario)


def _finish(s: Scenario) -> Scenario:
    """Resolve presets and check rules that span fields."""
    t = products.finish_treatment(s.treatment)
    d = s.design
    n = d.n_per_arm
    if len(n) == 1:
        n = n * len(d.arms)
    elif len(n) != len(d.arms):
        raise ScenarioError("design.n_per_arm", f"must give one number or {len(d.arms)} (one per arm), got {len(n)}")
    if d.visits[0] != 0.0:
        raise ScenarioError("design.visits", f"must start with the baseline visit 0, got {d.visits[0]:g}")
    if d.primary_visit not in d.visits:
        raise ScenarioError("design.primary_visit",
                            f"must be one of design.visits {[f'{v:g}' for v in d.visits]}, got {d.primary_visit:g}")
    p = s.population
    if p.recovery_sd ** 2 >= p.recovery_mean * (1 - p.recovery_mean):
        limit = math.sqrt(p.recovery_mean * (1 - p.recovery_mean))
        raise ScenarioError("population.recovery_sd",
                            f"must be below sqrt(mean x (1 - mean)) = {limit:.3f} for a Beta distribution, "
                            f"got {p.recovery_sd:g}")
    nh = s.natural_history
    for g, (limit, sd) in enumerate(zip(nh.limit, nh.limit_sd, strict=True)):
        largest = MAX_LIMIT_LOGIT_SD * limit * (1.0 - limit / 100.0)
        if sd > largest:
            raise ScenarioError(f"natural_history.limit_sd[{g}]",
                                f"must be at most {largest:.3g} for a limit of {limit:g} (its logit-scale SD "
                                f"{MAX_LIMIT_LOGIT_SD:g} x 100 p (1 - p), p = limit / 100), got {sd:g}")
    e = s.eligibility
    if p.source == "autologous" and e.min_dose > p.max_dose:
        raise ScenarioError("eligibility.min_dose", f"must not exceed population.max_dose ({p.max_dose:g}), "
                                                    f"got {e.min_dose:g}")
    if p.age_distribution == "lognormal" and not p.ages[0] <= p.age_median <= p.ages[1]:
        raise ScenarioError("population.age_median", f"must lie in population.ages {list(p.ages)}, "
                                                     f"got {p.age_median:g}")
    if not any(p.gmfcs_mix[g - 1] > 0.0 for g in e.gmfcs):
        raise ScenarioError("eligibility.gmfcs", "no referred child has an eligible GMFCS level "
                                                 "(population.gmfcs_mix gives them no share)")
    if e.ages[1] <= p.ages[0] or e.ages[0] >= p.ages[1]:
        raise ScenarioError("eligibility.ages", f"must overlap population.ages {list(p.ages)}, got {list(e.ages)}")
    products.check_arms(s.arms, d.arms)
    if len(set(d.arms)) != len(d.arms):
        raise ScenarioError("design.arms", f"arm names must differ, got {list(d.arms)}")
    out = dataclasses.replace(s, treatment=t, design=dataclasses.replace(d, n_per_arm=n))
    _check_design(out)
    check_priors(out.assurance)
    _check_planning_paths(out)
    return _check_operations(out)


@functools.cache
def _key_patterns() -> tuple[re.Pattern[str], ...]:
    """Every scenario key as a pattern (a table's ``<name>`` matches any name)."""
    return tuple(re.compile(re.escape(r["path"]).replace("<name>", "[^.]+")) for r in describe(Scenario))


def _check_planning_paths(s: Scenario) -> None:
    """Priors, sensitivity ranges and effects name scenario keys (not theirs: they are not simulated)."""
    named = [(f"assurance.priors.{p}", p) for p in s.assurance.priors]
    named += [(f"sensitivity.ranges.{p}", p) for p, _, _ in s.sensitivity.ranges]
    named += [(f"effects.{name}.{p}", p) for name, items in s.effects for p, _ in items]
    for where, path in named:
        if path.startswith(hypotheses.NOT_SIMULATED) or not any(k.fullmatch(path) for k in _key_patterns()):
            raise ScenarioError(where, "is not a scenario key that can vary (cbcp-sim params lists them)")


def _check_design(s: Scenario) -> None:
    """Rules tying the design's kind, arms, randomisation and analyses together; resolves every arm."""
    d, a = s.design, s.analysis
    regimens = s.regimens
    k = len(d.arms)

    def only(allowed: tuple[str, ...], why: str) -> None:
        for path, names in (("analysis.primary", (a.primary,)), ("analysis.secondary", a.secondary)):
            for name in names:
                if name not in allowed:
                    raise ScenarioError(path, f"{name!r} {why}; use one of {', '.join(allowed)}")

    if d.kind == "single_arm":
        if k != 1:
            raise ScenarioError("design.arms", f"a single_arm design has one arm, got {k}")
        if not regimens[0].doses:
            raise ScenarioError(f"arms.{d.arms[0]}.kind", "the arm of a single_arm design gets cells")
        only(SINGLE_ARM_ANALYSES, "does not apply to a single_arm design")
        if a.dose_strata:
            raise ScenarioError("analysis.dose_strata", "compares dose strata with a reference arm, which a "
                                                        "single_arm design lacks")
        return
    if k < 2:
        raise ScenarioError("design.arms", "needs two or more arms, the reference first (one arm: design.kind = "
                                           "'single_arm')")
    if d.kind == "crossover":
        if k != 2:
            raise ScenarioError("design.arms", f"a crossover design has two sequences, got {k}")
        if d.crossover_month not in d.visits or d.crossover_month == d.visits[-1]:
            raise ScenarioError("design.crossover_month", f"must be one of design.visits before the last, got "
                                                          f"{d.crossover_month:g}")
        if d.primary_visit > d.crossover_month:
            raise ScenarioError("design.primary_visit", f"must be in period 1 (at most design.crossover_month "
                                                        f"{d.crossover_month:g}), got {d.primary_visit:g}")
        for r, first in zip(regimens, (d.crossover_month, 0.0), strict=True):
            if not r.doses:
                raise ScenarioError(f"arms.{r.name}.kind", "both sequences of a crossover get cells (placebo is "
                                                           "the other period's infusion)")
            if r.doses[0].month != first:
                raise ScenarioError(f"arms.{r.name}.schedule", f"must give cells first at month {first:g} (a "
                                                               "crossover's first arm at the switch, the other at 0)")
        only(PARALLEL_ANALYSES + CROSSOVER_ANALYSES, "does not apply to a crossover design")
    else:
        only(PARALLEL_ANALYSES, "does not apply to a parallel design")
    if a.multiplicity == "dunnett":
        only(T_ANALYSES, "has no t statistic for analysis.multiplicity = 'dunnett'")
    if d.randomisation == "blocks":
        ratio = allocation_ratio(d.n_per_arm)
        if d.block_size % sum(ratio):
            raise ScenarioError("design.block_size", f"must be a multiple of {sum(ratio)} (allocation ratio "
                                                     f"{':'.join(map(str, ratio))}), got {d.block_size}")


def _check_operations(s: Scenario) -> Scenario:
    """Check the visit windows and the interim looks."""
    o, q, d = s.operations, s.sequential, s.design
    windows = visit_windows(o, d.visits)
    spans = [(0.0, 0.0)] + [(m - w / DAYS_PER_MONTH, m + w / DAYS_PER_MONTH)
                            for m, w in zip(d.visits[1:], windows, strict=True)]
    if any(later[0] <= earlier[1] for earlier, later in itertools.pairwise(spans)):
        raise ScenarioError("operations.window_days", f"windows {[f'{w:g}' for w in windows]} days overlap each "
                                                      "other or the baseline; each must be less than half the gap "
                                                      "to its neighbouring visits")
    if q.interims:
        if not o.enabled:
            raise ScenarioError("sequential.interims", "interim looks need the trial calendar: set "
                                                       "operations.enabled = true")
        if q.timing == "information" and q.interims[-1] >= 1.0:
            raise ScenarioError("sequential.interims", f"information fractions must be in (0, 1), got "
                                                       f"{list(q.interims)}")
        if len(d.arms) > 2:
            raise ScenarioError("sequential.interims", f"interim looks are for one comparison (two arms or a "
                                                       f"single arm), got {len(d.arms)} arms")
    if q.futility and len(q.futility) != len(q.interims):
        raise ScenarioError("sequential.futility", f"must give one bound per interim ({len(q.interims)}), got "
                                                   f"{len(q.futility)}")
    if q.futility and q.timing == "information":
        _check_futility(q, d.alpha / d.sides)
    return s


def visit_windows(o: Operations, visits: tuple[float, ...]) -> tuple[float, ...]:
    """Half-width in days of each follow-up visit's window: ``o.window_days`` (one for all, or one each), or by
    default 7 days up to month 1, 14 up to month 6, 30 later, each at most a quarter of the gap to a neighbour."""
    if not o.window_days:
        gaps = [b - a for a, b in itertools.pairwise(visits)]
        rule = [7.0 if m <= 1.0 else 14.0 if m <= 6.0 else 30.0 for m in visits[1:]]
        near = [min(gaps[i:i + 2]) for i in range(len(gaps))]
        return tuple(min(w, 0.25 * g * DAYS_PER_MONTH) for w, g in zip(rule, near, strict=True))
    if len(o.window_days) == 1:
        return o.window_days * (len(visits) - 1)
    if len(o.window_days) == len(visits) - 1:
        return o.window_days
    raise ScenarioError("operations.window_days", f"must give one value or {len(visits) - 1} (one per follow-up "
                                                  f"visit), got {len(o.window_days)}")


def _check_futility(q: Sequential, alpha: float) -> None:
    """Futility bounds below the efficacy bounds at the planned information fractions."""
    from cbcp_sim.analysis.boundaries import boundaries

    try:
        boundaries((*q.interims, 1.0), alpha=alpha, spending=q.spending, futility=q.futility, binding=q.binding)
    except ScenarioError as exc:
        raise ScenarioError("sequential.futility" if exc.path == "futility" else "sequential.interims",
                            exc.message) from None


def allocation_ratio(n_per_arm: tuple[int, ...]) -> tuple[int, ...]:
    """Children per arm reduced by their greatest common divisor: ``(36, 72) -> (1, 2)``."""
    g = math.gcd(*n_per_arm)
    return tuple(n // g for n in n_per_arm)


def load_scenario(path: str | Path, overrides: Mapping[str, Any] | Iterable[tuple[str, Any]] = (),
                  effect: str | None = None) -> Scenario:
    """Read a TOML scenario file, apply its effect hypothesis ``effect`` (``[effects.<name>]``), then the
    dotted-path overrides, validate, and freeze. Every named effect is checked to give a valid scenario.

    Raises :class:`ScenarioError` for a missing file, malformed TOML, or any invalid value.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ScenarioError(str(path), "scenario file not found") from None
    except IsADirectoryError:
        raise ScenarioError(str(path), "is a directory, not a scenario file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(str(path), f"malformed TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ScenarioError(str(path), "malformed TOML: not UTF-8 text") from None
    settings = list(overrides.items() if isinstance(overrides, Mapping) else overrides)
    scenario = scenario_from_dict(raw, settings)
    under = {name: _under_effect(raw, name, items, settings) for name, items in scenario.effects}
    if effect is None:
        return scenario
    if effect not in under:
        raise hypotheses.unknown(scenario.effects, effect)
    return under[effect]


def _under_effect(raw: Mapping[str, Any], name: str, items: tuple[tuple[str, Any], ...],
                  settings: list[tuple[str, Any]]) -> Scenario:
    """The scenario under effect ``name``, then the settings; a refused value is blamed on the effect."""
    try:
        return scenario_from_dict(raw, [*items, *settings])
    except ScenarioError as exc:
        where = f".{exc.path}" if exc.path in dict(items) else ""
        raise ScenarioError(f"effects.{name}{where}", exc.message) from None


def default_scenario_path() -> Path:
    """The default scenario, ``scenarios/default.toml`` (in the source tree, or packaged in a wheel)."""
    source_tree = Path(__file__).resolve().parents[2] / "scenarios" / "default.toml"
    if source_tree.is_file():
        return source_tree
    from importlib.resources import files

    return Path(str(files("cbcp_sim.scenarios") / "default.toml"))
