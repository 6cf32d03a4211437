"""Analytic power of an MMRM comparison at the last visit with monotone dropout: Lu, Luo and Chen's formula
[Lu 2008, formula (3)], as R longpower's ``power.mmrm`` computes it (same arguments, same conventions).

Group a's contrast at the last of ``J`` post-baseline visits has variance ``phi_a sigma² / n_a``, where

    phi_a = 1 / [sum_j p_j (R_j⁻¹ padded to J x J)]⁻¹_JJ,   p_j = r_j - r_(j+1)  (r_(J+1) = 0)

sums over the dropout patterns (``p_j`` the share of children seen at exactly the first ``j`` visits, ``R_j`` the
leading ``j x j`` block of the correlation ``R``). With ``R = L Lᵀ`` (Cholesky) the information sum is
``L⁻ᵀ diag(r) L⁻¹``, so ``phi = sum_k L_Jk² / r_k``: one factorisation, no inverses. ``phi = 1`` without dropout;
it grows as retention falls and as the earlier visits predict the last one less. With allocation
``lambda = n1 / n2`` the total size is

    N = (phi_a + lambda phi_b) (1 + 1 / lambda) (z_(1-alpha') + z_power)² sigma² / delta²

(``alpha' = alpha / 2`` two-sided; the far tail ignored, as in longpower). The t version puts the quantiles of t
with ``N - 2`` degrees of freedom in place of z and solves for the ``N`` at which both sides agree: the fixed
point of the one step longpower's examples take from the z answer (Lu 2008, Table 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, stats

from cbcp_sim.errors import SettingsError

ALTERNATIVES = ("two.sided", "one.sided")
TESTS = ("z", "t")
STRUCTURES = ("cs", "ar1")


@dataclass(frozen=True)
class MmrmPower:
    """The answer of :func:`mmrm_power`: every quantity of the design, the one solved for filled in."""

    N: float  #: children in total (not rounded)
    n1: float  #: children in group a
    n2: float  #: children in group b
    power: float
    delta: float  #: difference in means at the last visit (units of sigmaa)
    phi1: float  #: variance inflation of group a from its dropout
    phi2: float  #: variance inflation of group b
    sig_level: float
    lambda_: float  #: allocation ratio n1 / n2
    sigma: float  #: SD at the last visit used (sigmaa, or the mean of sigmaa and sigmab)
    ra: tuple[float, ...]
    rb: tuple[float, ...]
    alternative: str
    test: str
    solved: str  #: "N", "power" or "delta"

    @property
    def phi(self) -> float:
        """The dropout inflation of the comparison: N over the N of the same design without dropout,
        ``(phi1 + lambda phi2) / (1 + lambda)``."""
        return (self.phi1 + self.lambda_ * self.phi2) / (1.0 + self.lambda_)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "mmrm-power", "method": "Lu, Luo & Chen (2008) formula (3), as longpower power.mmrm",
                "solved": self.solved, "test": self.test, "alternative": self.alternative,
                "sig_level": self.sig_level, "N": self.N, "n1": self.n1, "n2": self.n2, "power": self.power,
                "delta": self.delta, "sigma": self.sigma, "lambda": self.lambda_, "phi": self.phi,
                "phi1": self.phi1, "phi2": self.phi2, "retention1": list(self.ra), "retention2": list(self.rb),
                "df": self.N - 2.0 if self.test == "t" else None}

    def __str__(self) -> str:
        mark = {name: " (solved)" if name == self.solved else "" for name in ("N", "power", "delta")}
        same = self.ra == self.rb and self.phi1 == self.phi2
        retention = ", ".join(f"{r:g}" for r in self.ra)
        lines = [f"Analytic MMRM power (Lu, Luo & Chen 2008; as longpower power.mmrm), {self.test} test, "
                 f"{self.alternative} alpha {self.sig_level:g}",
                 f"  N          {self.N:.2f} in total{mark['N']}; n1 {self.n1:.2f}, n2 {self.n2:.2f} (lambda "
                 f"{self.lambda_:g}); whole children {math.ceil(self.n1 - 1e-9)} + {math.ceil(self.n2 - 1e-9)}",
                 f"  power      {self.power:.4f}{mark['power']}",
                 f"  delta      {self.delta:.4g}{mark['delta']} at the last visit (sigma {self.sigma:g})",
                 f"  phi        {self.phi:.4f}: dropout inflates N by {100 * (self.phi - 1):.1f}%"
                 + ("" if same else f" (phi1 {self.phi1:.4f}, phi2 {self.phi2:.4f})"),
                 f"  retention  {retention}" + ("" if self.ra == self.rb else
                                                 f" (group a); {', '.join(f'{r:g}' for r in self.rb)} (group b)")]
        return "\n".join(lines)


def correlation_matrix(structure: str, rho: float, visits: int) -> np.ndarray:
    """The ``visits x visits`` correlation of the post-baseline visits: ``"cs"`` (exchangeable, ``rho`` between
    any two) or ``"ar1"`` (``rho^|i - j|``)."""
    if structure not in STRUCTURES:
        raise SettingsError("correlation", f"must be cs:RHO or ar1:RHO, got {structure!r}")
    if isinstance(visits, bool) or not isinstance(visits, int) or not 1 <= visits <= 100:
        raise SettingsError("visits", f"must be a whole number of post-baseline visits in [1, 100], got {visits!r}")
    low = -1.0 / (visits - 1) if structure == "cs" and visits > 1 else -1.0
    if not isinstance(rho, int | float) or isinstance(rho, bool) or not low < rho < 1.0:
        raise SettingsError("correlation", f"{structure} needs rho in ({low:g}, 1) for {visits} visits, got {rho!r}")
    lag = np.abs(np.subtract.outer(np.arange(visits), np.arange(visits)))
    return np.where(lag == 0, 1.0, rho if structure == "cs" else float(rho) ** lag)


def phi(R: Any, r: Any, *, name: str = "Ra", retention: str = "ra") -> float:
    """Lu et al.'s variance inflation of one group: ``sum_k L_Jk² / r_k`` with ``R = L Lᵀ`` (module docstring);
    ``R`` the correlation of the post-baseline visits, ``r`` the share of children still observed at each."""
    R, r = _correlation(R, name), _retention(r, retention)
    if r.size != R.shape[0]:
        raise SettingsError(retention, f"needs one retention per visit of {name} ({R.shape[0]}), got {r.size}")
    last = np.linalg.cholesky(R)[-1]
    return float(np.sum(last**2 / r))


def mmrm_power(N: float | None = None, delta: float | None = None, power: float | None = None,
               sig_level: float = 0.05, *, Ra: Any, ra: Any, sigmaa: float, Rb: Any = None, rb: Any = None,
               sigmab: float | None = None, lambda_: float = 1.0, alternative: str = "two.sided",
               test: str = "z") -> MmrmPower:
    """Total size ``N``, ``power`` or effect ``delta`` of a two-group MMRM comparison at the last visit, the one
    given as None solved from the others (R longpower ``power.mmrm``; module docstring for the formula).

    Parameters
    ----------
    N : total children (both groups; need not be whole).
    delta : difference in means at the last visit, > 0, in the units of ``sigmaa``.
    power : in (alpha', 1), alpha' = sig_level / 2 two-sided, sig_level one-sided.
    sig_level : type I error in (0, 1).
    Ra, ra, sigmaa : group a's correlation matrix of the ``J`` post-baseline visits (symmetric, unit diagonal,
        positive definite), retention at each visit (in (0, 1], non-increasing) and SD at the last visit.
    Rb, rb, sigmab : the same for group b; default group a's. Given ``sigmab``, the SD used is the mean of the
        two, as in longpower.
    lambda_ : allocation ratio n1 / n2, > 0.
    alternative : ``"two.sided"`` or ``"one.sided"``.
    test : ``"z"`` (Lu et al. and longpower) or ``"t"`` (t quantiles with N - 2 df, solved to its fixed point).

    Source: Lu, Luo and Chen (2008), formula (3); Donohue, longpower ``power.mmrm``.
    """
    if [N, delta, power].count(None) != 1:
        raise SettingsError("N", "exactly one of N, delta and power must be left out (None): it is solved for")
    solved = "N" if N is None else "delta" if delta is None else "power"
    if alternative not in ALTERNATIVES:
        raise SettingsError("alternative", f"must be one of {', '.join(ALTERNATIVES)}, got {alternative!r}")
    if test not in TESTS:
        raise SettingsError("test", f"must be z or t, got {test!r}")
    sig_level = _number("sig_level", sig_level, 0.0, 1.0)
    lambda_ = _number("lambda_", lambda_, 0.0, math.inf)
    sigma = _number("sigmaa", sigmaa, 0.0, math.inf)
    if sigmab is not None:
        sigma = (sigma + _number("sigmab", sigmab, 0.0, math.inf)) / 2.0
    phi1 = phi(Ra, ra)
    phi2 = phi(Ra if Rb is None else Rb, ra if rb is None else rb, name="Rb" if Rb is not None else "Ra",
               retention="rb" if rb is not None else "ra")
    tail = sig_level / 2.0 if alternative == "two.sided" else sig_level
    # N = scale (q_(1-tail) + q_power)² / delta²: scale is everything but the quantiles and the effect
    scale = (phi1 + lambda_ * phi2) * (1.0 + 1.0 / lambda_) * sigma**2
    low_n = 2.0 if test == "t" else 0.0

    def quantile(p: float, n: float) -> float:
        return float(stats.norm.ppf(p) if test == "z" else stats.t.ppf(p, n - 2.0))

    if N is None:
        power = _number("power", power, tail, 1.0, f"must be in ({tail:g}, 1) (above the one-tail alpha)")
        delta = _number("delta", delta, 0.0, math.inf)
        N = _solve_n(scale / delta**2, tail, power, test)
    else:
        N = _number("N", N, low_n, math.inf, f"must be a total above {low_n:g}"
                    + (" (the t test has N - 2 degrees of freedom)" if test == "t" else ""))
        if power is None:
            delta = _number("delta", delta, 0.0, math.inf)
            shift = math.sqrt(N / scale) * delta - quantile(1.0 - tail, N)
            power = float(stats.norm.cdf(shift) if test == "z" else stats.t.cdf(shift, N - 2.0))
        else:
            power = _number("power", power, tail, 1.0, f"must be in ({tail:g}, 1) (above the one-tail alpha)")
            delta = (quantile(1.0 - tail, N) + quantile(power, N)) * math.sqrt(scale / N)
    n1 = N * lambda_ / (1.0 + lambda_)
    r1 = tuple(float(x) for x in np.atleast_1d(ra))
    r2 = r1 if rb is None else tuple(float(x) for x in np.atleast_1d(rb))
    return MmrmPower(N=float(N), n1=n1, n2=N - n1, power=float(power), delta=float(delta), phi1=phi1, phi2=phi2,
                     sig_level=sig_level, lambda_=lambda_, sigma=sigma, ra=r1, rb=r2, alternative=alternative,
                     test=test, solved=solved)


def _solve_n(k: float, tail: float, power: float, test: str) -> float:
    """``N`` with ``N = k (q_(1-tail) + q_power)²``: closed form for z; for t the root in ``N > 2`` of that
    equation with N - 2 df (above the z answer, since t quantiles are farther out)."""
    n_z = k * (stats.norm.ppf(1.0 - tail) + stats.norm.ppf(power)) ** 2
    if test == "z":
        return float(n_z)

    def gap(n: float) -> float:
        return n - k * (stats.t.ppf(1.0 - tail, n - 2.0) + stats.t.ppf(power, n - 2.0)) ** 2

    low = max(n_z, 3.0)
    if gap(low) >= 0:
        raise SettingsError("delta", "the t version needs N above 3 in total; this design would need fewer "
                                     "(an effect far larger than sigma)")
    high = 2.0 * low
    while gap(high) < 0:
        high *= 2.0
    return float(optimize.brentq(gap, low, high, xtol=1e-12, rtol=4 * np.finfo(float).eps))


def _number(name: str, value: Any, low: float, high: float, message: str | None = None) -> float:
    """``value`` as a float strictly inside ``(low, high)`` (``high`` itself allowed when it is 1 for a level)."""
    ok = isinstance(value, int | float | np.floating | np.integer) and not isinstance(value, bool)
    if ok and math.isfinite(value) and low < value < high:
        return float(value)
    raise SettingsError(name, (message or f"must be a number in ({low:g}, {high:g})") + f", got {value!r}")


def _correlation(R: Any, name: str) -> np.ndarray:
    try:
        matrix = np.array(R, dtype=float)
    except (TypeError, ValueError):
        raise SettingsError(name, f"must be a square matrix of numbers, got {R!r}") from None
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.size == 0:
        raise SettingsError(name, f"must be a square matrix (one row and column per post-baseline visit), got "
                                  f"shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise SettingsError(name, "must hold finite numbers")
    if not np.allclose(matrix, matrix.T, atol=1e-10) or not np.allclose(np.diag(matrix), 1.0, atol=1e-10):
        raise SettingsError(name, "must be a correlation matrix: symmetric with ones on the diagonal")
    if np.linalg.eigvalsh(matrix)[0] <= 1e-10:
        raise SettingsError(name, f"must be positive definite (smallest eigenvalue "
                                  f"{np.linalg.eigvalsh(matrix)[0]:.3g})")
    return matrix


def _retention(r: Any, name: str) -> np.ndarray:
    try:
        values = np.atleast_1d(np.array(r, dtype=float))
    except (TypeError, ValueError):
        raise SettingsError(name, f"must be a list of retentions in (0, 1], got {r!r}") from None
    if values.ndim != 1 or not np.all(np.isfinite(values)) or np.any(values <= 0) or np.any(values > 1):
        raise SettingsError(name, f"must be retentions in (0, 1], one per visit, got {values.tolist()}")
    if np.any(np.diff(values) > 0):
        raise SettingsError(name, f"must not increase from visit to visit (dropout is monotone), got "
                                  f"{values.tolist()}")
    return values
