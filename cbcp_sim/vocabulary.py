"""Names shared by every layer: analyses, covariates, GMFCS levels, topographies and units.

Dependency-free, so that the scenario, the models and the analyses can all speak the same words without
importing one another.
"""

from __future__ import annotations

#: Analyses of two or more parallel arms (the keys of :data:`cbcp_sim.analysis.ANALYSES`; a test keeps them equal).
PARALLEL_ANALYSES = ("ttest", "welch", "ancova", "mmrm", "wilcoxon", "fisher", "chisquare")
#: Analyses that read only each arm's count, mean and sum of squares of the analysed value.
MOMENT_ANALYSES = ("ttest", "welch")
#: Analyses of a two-period crossover.
CROSSOVER_ANALYSES = ("crossover", "period2")
#: Analyses of one open arm against an expectation (natural history) or against baseline.
SINGLE_ARM_ANALYSES = ("above_expected", "count_above", "before_after")
ANALYSES = PARALLEL_ANALYSES + CROSSOVER_ANALYSES + SINGLE_ARM_ANALYSES
#: Analyses that read every visit up to the compared one (the others read baseline and that visit).
LONGITUDINAL_ANALYSES = ("mmrm", *CROSSOVER_ANALYSES)
#: Analyses whose statistic is a t statistic with df, as Dunnett's adjustment needs.
T_ANALYSES = ("ttest", "welch", "ancova", "mmrm")
#: Analyses that assume missing at random and impute from a normal linear model: those a delta adjustment (tipping
#: point) applies to.
DELTA_ADJUSTED_ANALYSES = ("ancova", "mmrm")
#: Per-child covariates an analysis can adjust for: age (years), GMFCS level, cell dose (10^7 TNC/kg).
COVARIATES = ("age", "gmfcs", "dose")
#: Gross Motor Function Classification System levels, I (mildest) to V.
GMFCS_LEVELS = (1, 2, 3, 4, 5)
#: The growth models ``cbcp-sim calibrate`` fits: stable limit (Rosenbaum et al. 2002), peak and decline for III-V
#: (Hanna et al. 2009).
GROWTH_MODELS = ("stable_limit", "peak_decline")
#: The likelihoods it maximises: exact (adaptive Gauss-Hermite quadrature) or R nlme's Lindstrom-Bates approximation.
GROWTH_METHODS = ("agq", "nlme")
#: Age (years) to which the decline of GMFCS levels III-V is measured (Hanna et al. 2009: peak to age 21).
DECLINE_END_AGE = 21.0
#: Distribution of motor impairment over the body.
TOPOGRAPHIES = ("hemiplegia", "diplegia", "quadriplegia")
#: Days per month (365.25 / 12): operations take days, the rest of the model months.
DAYS_PER_MONTH = 30.4375
