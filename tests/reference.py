"""Independent closed-form references for power, used by the tests (statsmodels, scipy)."""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, stats
from statsmodels.stats.power import TTestIndPower


def ttest_power(delta: float, sd: float, n0: int, n1: int, alpha: float, sides: int) -> float:
    """Power of the pooled two-sample t-test (statsmodels TTestIndPower)."""
    alternative = "two-sided" if sides == 2 else "larger"
    return float(TTestIndPower().power(effect_size=delta / sd, nobs1=n1, alpha=alpha, ratio=n0 / n1,
                                       alternative=alternative))


def t_power(ncp: float, df: float, alpha: float, sides: int) -> float:
    """Power of a t-test whose statistic is noncentral t with ``df`` and noncentrality ``ncp``."""
    crit = stats.t.ppf(1 - alpha / sides, df)
    power = stats.nct.sf(crit, df, ncp)
    if sides == 2:
        power += stats.nct.cdf(-crit, df, ncp)
    return float(power)


def welch_power(delta: float, sd: float, n0: int, n1: int, alpha: float, sides: int,
                sd1: float | None = None) -> float:
    """Welch test power, noncentral t with Satterthwaite df at the true variances (G*Power's approximation);
    ``sd1``: the active arm's SD when it differs from the control arm's ``sd``."""
    v0, v1 = sd**2 / n0, (sd if sd1 is None else sd1) ** 2 / n1
    df = (v0 + v1) ** 2 / (v0**2 / (n0 - 1) + v1**2 / (n1 - 1))
    return t_power(delta / math.sqrt(v0 + v1), df, alpha, sides)


def ancova_power_borm(delta: float, sd: float, rho: float, n0: int, n1: int, alpha: float, sides: int) -> float:
    """Borm et al. 2007: t-test power at the residual variance sd^2 (1 - rho^2)."""
    return ttest_power(delta, sd * math.sqrt(1 - rho**2), n0, n1, alpha, sides)


def ancova_power_exact(delta: float, sd: float, rho: float, n0: int, n1: int, alpha: float, sides: int) -> float:
    """Exact power of ANCOVA with a normal baseline covariate.

    Given the baselines, the arm estimate has variance s^2 (1/n0 + 1/n1)(1 + F/(n - 2)) with
    s^2 = sd^2 (1 - rho^2) and F = (baseline imbalance)^2 / within SS, scaled, ~ F(1, n - 2); the
    t statistic is noncentral t with n - 3 df. Power is its average over F.
    """
    n = n0 + n1
    df = n - 3
    crit = stats.t.ppf(1 - alpha / sides, df)
    scale = sd * math.sqrt((1 - rho**2) * (1 / n0 + 1 / n1))

    def conditional(f: float) -> float:
        ncp = delta / (scale * math.sqrt(1 + f / (n - 2)))
        p = stats.nct.sf(crit, df, ncp)
        if sides == 2:
            p += stats.nct.cdf(-crit, df, ncp)
        return p * stats.f.pdf(f, 1, n - 2)

    value, _ = integrate.quad(conditional, 0, np.inf, limit=200)
    return float(value)
