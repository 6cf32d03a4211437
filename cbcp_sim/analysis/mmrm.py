"""MMRM: mixed model for repeated measures, unstructured covariance, REML, Kenward-Roger or Satterthwaite; batched.

The model of the post-baseline visits ``t = 1..T`` of child ``i`` is

    y_it = a_t + d_t arm_i + g_t baseline_i (+ h_t' covariates_i) + e_it,    e_i ~ N(0, Sigma)

with ``Sigma`` unstructured (``T (T + 1) / 2`` parameters): visit-by-arm and visit-by-baseline fixed
effects, as R's ``mmrm(y ~ visit * arm + visit * baseline + us(visit | id))`` or
``nlme::gls(..., correlation = corSymm(), weights = varIdent(~ 1 | visit), method = "REML")``. With ``K`` arms
(:func:`mmrm_differences`) ``arm_i`` is ``K - 1`` indicators, one ``d_t`` per active arm.
A child contributes the visits it was seen at (monotone or intermittent missingness, valid under MAR).
``mmrm_baseline`` moves baseline: out of the model (``none``), or into the responses as visit 0 with the arm
effect there fixed at zero (``response``: cLDA, [Liang & Zeger 2000]) or free (``response_unconstrained``).

Every fixed effect is visit-specific, so ``X_i = I_T (x) x_i'`` and the REML criterion depends on the data
only through sums over children sharing a missingness pattern ``p`` (``n_p``, ``S_p = sum x x'``,
``Y_p = sum y x'``, ``U_p = sum y y'``): with ``W_p`` the inverse of ``Sigma`` on the observed visits
(zero elsewhere) and ``M = sum_p W_p (x) S_p``,

    -2 l_R = sum_p n_p log|Sigma_p| + log|M| + sum_p tr(W_p U_p) - b' M^-1 b + const,   b = vec(sum_p W_p Y_p).

Its gradient in ``Sigma`` is ``sum_p n_p W_p - W_p (R_p + K_p) W_p`` (``R_p`` the residual cross-products,
``K_p[a, b] = tr(C_ab S_p)``, ``C = M^-1``), and its observed Hessian has a closed form too
(:func:`_hessian`), so each replicate is fitted from a few small matrices: Newton steps with step
halving on the ``T (T + 1) / 2`` free elements of ``Sigma``, from a moment start and a few EM steps, all
replicates at once (those converged drop out); near the optimum a step reuses the last Hessian (a chord step).
A coefficient fixed at zero (cLDA's arm at baseline) leaves ``M``: ``C = N (N' M N)^-1 N'`` for the kept
coefficients ``N`` replaces ``M^-1`` throughout, ``log|N' M N|`` replaces ``log|M|``.

With monotone missingness (each child seen at the first visits up to its last: dropout) and each visit's free
coefficients including the previous visit's, the optimum has a closed form instead (:func:`_monotone`, the
factored likelihood of [Little & Rubin 2019] carried to REML). Write ``y_t = x' gamma_t + phi_t' y_<t + e_t``
with independent ``e_t ~ N(0, var_t)``: ``beta`` to ``gamma`` is triangular with Jacobian one, so the REML
likelihood (the likelihood integrated over ``beta``) is a product of one regression per visit, of ``y_t`` on
``x`` and ``y_<t`` over the ``n_t`` children seen at ``t``: ``phi_t`` and ``gamma_t`` are its coefficients and
``var_t = RSS_t / (n_t - k_t)`` (``k_t`` the visit's free coefficients). Then ``beta = A^-1 gamma``
(``A y = e``), ``C = (A^-1 (x) I) blockdiag(var_t (X_t' X_t)^-1) (A^-1 (x) I)'``, ``W_p = sum_(t in p) A_t'
A_t / var_t``, and the inverse observed information in ``psi = (phi_t, var_t)`` is ``blockdiag(var_t E_t^-1,
2 var_t^2 / (n_t - k_t))`` (``E_t`` the cross-products of the residuals of ``y_<t`` on ``x``); the gradient
being zero there, the one in the elements ``theta`` of ``Sigma`` is ``G (.) G'``, ``G = dtheta / dpsi``, so no
Newton step and no Hessian in ``theta``. Both ways agree to rounding (the iterative fit stops at about 1e-12).

The treatment contrast ``k'beta`` has the model-based variance ``v = k' C k`` (``mmrm_df = "satterthwaite"``:
as ``mmrm`` with Satterthwaite, and ``gls``) or, with ``mmrm_df = "kenward_roger"``, Kenward and Roger's
``k' Phi_A k`` ([Kenward 1997]), which adds the small-sample bias of ``v`` and the variability of the
estimated ``Sigma``: ``Phi_A = Phi + 2 Phi {sum_kl W_kl (Q_kl - P_k Phi P_l - R_kl / 4)} Phi`` with ``theta`` the
elements of ``Sigma``, so ``R_kl = 0`` (``Sigma`` is linear in ``theta``: the "linear" KR of SAS's
``ddfm=kr(linear)`` and ``mmrm``'s "Kenward-Roger-Linear") and ``W`` the inverse observed REML information
(as ``mmrm`` and SAS). Both use the Satterthwaite df ``2 v^2 / (g' W g)``, ``g = dv/dtheta`` (Satterthwaite
1946; Christensen 2018; the ``mmrm`` package's vignette, [mmrm n.d.]): for one contrast Kenward and Roger's
``A1 = A2 = g' W g / v^2``, so their df ``m`` is exactly ``2 / A2``, this df from the unadjusted ``v`` (not
from ``Phi_A``), and their F scale ``lambda`` is 1. Checked against ``nlme::gls`` with exact Satterthwaite df
(``tests/fixtures/mmrm``) and against an exact R implementation of Kenward-Roger that reproduces SAS on the
``mmrm`` package's ``fev_data`` (``tests/fixtures/mmrm_kr``). Several contrasts ``L`` (the ``K - 1`` arms) have the
covariance ``L Phi L'`` or ``L Phi_A L'`` and Kenward and Roger's df ``m`` for ``L`` (from ``A1``, ``A2``; not the
normal approximation of [Pinheiro 2014], so small trials keep a t reference), checked there too.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from cbcp_sim.analysis.ancova import ArmDifferences
from cbcp_sim.analysis.inference import Estimates

#: Newton steps at most, and the relative step in Sigma below which a replicate has converged (its
#: error is then about the square of that, Newton's convergence being quadratic).
MAX_STEPS = 50
#: EM steps (each a REML score, no Hessian) between the moment start and Newton, plus one per analysed visit beyond
#: four: each brings Newton closer, and a Hessian costs ``O(T^6)`` to an EM step's ``O(T^3)``.
EM_STEPS = 2
TOLERANCE = 1e-6
#: Relative distance from where a replicate's observed Hessian was computed within which its next Newton step reuses
#: it (a chord step: it contracts the error by about that distance, for the cost of a score instead of a Hessian).
CHORD = 1e-3
#: Bytes of the largest intermediate (at most ``P T^4`` doubles per replicate: ``W B_k W`` per pattern and element)
#: per batch of fits: replicates are fitted in batches under it, so memory stays bounded with many visits
#: (each fit is independent of the others: batches agree with one batch of all to rounding).
BATCH_BYTES = 64 * 2**20
#: The contrast's inference (``analysis.mmrm_df``) and baseline's place in the model (``analysis.mmrm_baseline``).
DF_METHODS = ("kenward_roger", "satterthwaite")
BASELINES = ("covariate", "response", "response_unconstrained", "none")


def mmrm(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int, *, endpoint: str = "change",
         covariates: np.ndarray | None = None, mmrm_df: str = "kenward_roger",
         mmrm_baseline: str = "covariate") -> Estimates:
    """Treated minus control at ``visit`` from an MMRM of every visit; Kenward-Roger or Satterthwaite inference.

    ``mmrm_df`` (:data:`DF_METHODS`): ``kenward_roger`` (the SE from the adjusted covariance ``Phi_A``) or
    ``satterthwaite`` (the model-based SE); the df are the same (see the module). ``mmrm_baseline``
    (:data:`BASELINES`): ``covariate`` (a per-visit baseline effect), ``response`` (baseline the first response,
    no arm effect at baseline: cLDA), ``response_unconstrained`` (an arm effect at baseline too; the change
    endpoint compares the arm effects at ``visit`` and at baseline, ``final`` the one at ``visit``) or ``none``.
    Children need a baseline; those seen at no analysed visit add nothing. Otherwise ``endpoint`` does not
    change the contrast. A replicate whose fit does not converge, or with fewer than two children of an arm
    seen at some analysed visit, gives NaN (counted as failed).
    """
    return _estimates(_fitted(values, observed, treated, 2, visit, endpoint, covariates, mmrm_df, mmrm_baseline)[0])


def mmrm_differences(values: np.ndarray, observed: np.ndarray, arm: np.ndarray, visit: int, *, arms: int,
                     endpoint: str = "change", covariates: np.ndarray | None = None, mmrm_df: str = "kenward_roger",
                     mmrm_baseline: str = "covariate") -> ArmDifferences:
    """One MMRM of all ``arms`` arms (``arm``: each child's arm, control 0, ``(N,)`` or ``(R, N)``; a visit-by-arm
    effect per active arm): each active arm minus control at ``visit`` and their joint covariance, model-based
    ``L Phi L'`` or (``kenward_roger``) ``L Phi_A L'``, what generalised MCP-Mod takes [Pinheiro 2014].

    ``df``: Kenward and Roger's denominator df ``m`` of the ``(arms - 1)``-dimensional contrast ``L`` (their
    ``A1``, ``A2`` from the unadjusted ``Phi``, with either ``mmrm_df``; for two arms the one contrast's df of
    :func:`mmrm`). Other arguments and failures as :func:`mmrm` (every arm needs two children at every visit).
    """
    return _fitted(values, observed, arm, arms, visit, endpoint, covariates, mmrm_df, mmrm_baseline)[0]


def _estimates(diff: ArmDifferences) -> Estimates:
    """The one contrast of a two-arm fit."""
    return Estimates(diff.estimate[:, 0], np.sqrt(diff.covariance[:, 0, 0]), diff.df)


def expected_residuals(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int, *,
                       endpoint: str = "change", covariates: np.ndarray | None = None,
                       mmrm_df: str = "kenward_roger",
                       mmrm_baseline: str = "covariate") -> tuple[Estimates, np.ndarray]:
    """:func:`mmrm`'s estimates and, per child with a baseline not seen at ``visit``, the expected residual of its
    ``visit`` score given the visits it was seen at, under the fitted model: ``Sigma_vo Sigma_oo^-1 e_o``, ``e_o``
    its residuals (score minus fitted mean) at those visits; ``(R, N)``, zero for other children and NaN in a
    replicate that failed. A child's expected ``visit`` score under MAR is its fitted mean plus this."""
    diff, model = _fitted(values, observed, treated, 2, visit, endpoint, covariates, mmrm_df, mmrm_baseline)
    est = _estimates(diff)
    out = np.zeros(observed.shape[:2])
    if model is None:
        return est, out * np.nan
    y, x, seen, sigma, beta = model
    sigma = np.where(np.isfinite(sigma), sigma, np.eye(sigma.shape[-1]))  # failed replicates: NaN below
    residual = np.where(seen, y - np.einsum("rnq,rtq->rnt", x, beta), 0.0)
    t = visit - (values.shape[-1] - seen.shape[-1])  # the visit among the responses
    missing = observed[..., 0] & ~seen[..., t]
    codes = seen @ (1 << np.arange(seen.shape[-1]))
    for code in np.unique(codes[missing]):
        mask = (code >> np.arange(seen.shape[-1])) & 1 == 1
        if not mask.any():
            continue  # seen at no analysed visit: its expected residual is zero
        o = np.flatnonzero(mask)
        weights = np.linalg.solve(sigma[:, o[:, None], o], sigma[:, o, t][..., None])[..., 0]  # (R, |o|)
        member = missing & (codes == code)
        out = np.where(member, (residual[..., o] * weights[:, None, :]).sum(axis=-1), out)
    return est, np.where(np.isfinite(est.estimate)[:, None], out, np.nan)  # beta is NaN there too


def _fitted(values: np.ndarray, observed: np.ndarray, arm: np.ndarray, arms: int, visit: int, endpoint: str,
            covariates: np.ndarray | None, mmrm_df: str,
            mmrm_baseline: str) -> tuple[ArmDifferences, tuple[np.ndarray, ...] | None]:
    """Each active arm minus control (``arm``: control 0, or a treated mask when ``arms`` is 2) and the fitted
    model: the responses and regressors as fitted (centred), where each child was seen, and per replicate ``Sigma``
    ``(R, T, T)`` and the coefficients ``(R, T, q)`` (NaN where the replicate failed); None when no child is seen
    after baseline."""
    if mmrm_df not in DF_METHODS:
        raise ValueError(f"mmrm_df: expected one of {', '.join(DF_METHODS)}, got {mmrm_df!r}")
    if mmrm_baseline not in BASELINES:
        raise ValueError(f"mmrm_baseline: expected one of {', '.join(BASELINES)}, got {mmrm_baseline!r}")
    base = observed[..., 0]
    arm = np.broadcast_to(arm, base.shape)
    columns = [np.ones(base.shape)] + [(arm == j).astype(float) for j in range(1, arms)]
    if mmrm_baseline == "covariate":
        columns.append(values[..., 0])
    if covariates is not None:
        columns += list(np.moveaxis(covariates, -1, 0))
    response = mmrm_baseline.startswith("response")
    first = 0 if response else 1  # the first response visit
    seen = observed[..., first:] & base[..., None]
    R, T, q, J = len(seen), seen.shape[-1], len(columns), arms - 1
    free = np.ones((T, q), dtype=bool)
    free[0, 1:arms] = mmrm_baseline != "response"  # cLDA: no arm effect at baseline
    contrast = np.zeros((J, T, q))  # row j - 1: arm j at visit (minus arm j at baseline)
    contrast[np.arange(J), visit - first, np.arange(1, arms)] = 1.0
    if mmrm_baseline == "response_unconstrained" and endpoint == "change":
        contrast[np.arange(J), 0, np.arange(1, arms)] -= 1.0
    y, x = _centred(np.where(seen, values[..., first:], 0.0), seen, np.stack(columns, axis=-1), arms)
    sums = _Sums.of(y, seen, x, free.ravel())
    out = ArmDifferences(np.full((R, J), np.nan), np.full((R, J, J), np.nan), np.full(R, np.nan))
    if sums is None:
        return out, None
    sigmas, betas = np.full((R, T, T), np.nan), np.full((R, T, q), np.nan)
    counts = np.einsum("pt,rpj->rjt", sums.masks, sums.S[..., 0, :arms])  # seen per visit: all, each active arm
    counts[:, 0] -= counts[:, 1:].sum(axis=1)                             # control
    good = np.flatnonzero((counts >= 2).all(axis=(1, 2)) & (sums.n.sum(axis=1) > T + q) & sums.full_rank())
    batch = max(1, BATCH_BYTES // (8 * len(sums.masks) * T ** 4))
    for start in range(0, good.size, batch):
        rows = good[start:start + batch]
        part = sums.take(rows)
        fit = _monotone(part)
        if fit is None:
            sigma, converged = _solve(part, _start(part))
            fit = sigma, converged, _score(part, sigma), None
        sigma, converged, s, cov_theta = fit
        estimate, covariance, df, beta = _contrast(part, s, contrast.reshape(J, T * q), cov_theta,
                                                   kenward_roger=mmrm_df == "kenward_roger")
        variances = np.diagonal(covariance, axis1=1, axis2=2)
        ok = converged & np.isfinite(df) & (df > 0) & (variances > 0).all(axis=1)
        out.estimate[rows] = np.where(ok[:, None], estimate, np.nan)
        out.covariance[rows] = np.where(ok[:, None, None], covariance, np.nan)
        out.df[rows] = np.where(ok, df, np.nan)
        failed = ~ok[:, None, None]
        sigmas[rows], betas[rows] = np.where(failed, np.nan, sigma), np.where(failed, np.nan, beta)
    return out, (y, x, seen, sigmas, betas)


def _centred(y: np.ndarray, seen: np.ndarray, x: np.ndarray, arms: int) -> tuple[np.ndarray, np.ndarray]:
    """For precision, ``y`` ``(R, N, T)`` (zero where not ``seen``) centred per visit and the covariates after the
    ``arms - 1`` arm columns of ``x`` ``(R, N, q)`` over the children in the fit (seen at some visit; the others'
    regressors zero): shifts the intercepts absorb, so the arm contrast does not change. (Sums over children as
    products with ones: numpy's reduction over the middle axis is ten times slower.)"""
    ones = np.ones(seen.shape[1])
    included = seen.any(axis=-1)
    y = y - seen * (ones @ y / np.maximum(ones @ seen, 1.0))[:, None]
    x = np.where(included[..., None], x, 0.0)
    shift = ones @ x / np.maximum(included @ ones, 1.0)[:, None]
    shift[:, :arms] = 0.0
    return y, x - included[..., None] * shift[:, None]


@dataclass(frozen=True)
class _Sums:
    """Per replicate and missingness pattern ``p``: children ``n``, ``S = sum x x'``, ``Y = sum y x'``,
    ``U = sum y y'`` (missing visits zero), the patterns' visit masks ``(P, T)``, and which of the ``T q``
    visit-by-regressor coefficients (visit-major) are in the model (the others are fixed at zero)."""

    n: np.ndarray       #: (R, P)
    S: np.ndarray       #: (R, P, q, q)
    Y: np.ndarray       #: (R, P, T, q)
    U: np.ndarray       #: (R, P, T, T)
    masks: np.ndarray   #: (P, T) bool
    free: np.ndarray    #: (T q,) bool

    @classmethod
    def of(cls, y: np.ndarray, seen: np.ndarray, x: np.ndarray, free: np.ndarray) -> _Sums | None:
        """Sums of ``y`` ``(R, N, T)`` seen where ``seen``, regressors ``x`` ``(R, N, q)``, both as
        :func:`_centred` gives them (``None`` when no child is seen after baseline)."""
        codes = seen @ (1 << np.arange(seen.shape[-1]))
        included = codes > 0
        if not included.any():
            return None
        patterns = np.unique(codes[included])
        z = np.concatenate([x, y], axis=-1)
        zt = np.swapaxes(z, 1, 2)
        member = [((codes == code) & included).astype(float) for code in patterns]
        n = np.stack([m.sum(axis=1) for m in member], axis=1)
        blocks = np.stack([(zt * m[:, None, :]) @ z for m in member], axis=1)  # sums of z z' per pattern
        q = x.shape[-1]
        S, Y, U = blocks[..., :q, :q], blocks[..., q:, :q], blocks[..., q:, q:]
        masks = (patterns[:, None] >> np.arange(seen.shape[-1])) & 1 == 1
        return cls(n=n, S=S, Y=Y, U=U, masks=masks, free=free)

    def full_rank(self) -> np.ndarray:
        """``(R,)`` True where the regressors of the children in the fit are not collinear."""
        total = self.S.sum(axis=1)
        scale = np.sqrt(np.maximum(np.diagonal(total, axis1=1, axis2=2), 1e-300))
        with np.errstate(invalid="ignore"):
            return np.linalg.eigvalsh(total / scale[:, :, None] / scale[:, None, :])[:, 0] > 1e-10

    def take(self, rows: np.ndarray) -> _Sums:
        return _Sums(n=self.n[rows], S=self.S[rows], Y=self.Y[rows], U=self.U[rows], masks=self.masks,
                     free=self.free)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(R, T, q)``."""
        return self.n.shape[0], self.masks.shape[1], self.S.shape[-1]


def _start(d: _Sums) -> np.ndarray:
    """Moment start: per-visit least squares, pooled residual cross-products, shrunk to positive definite."""
    _, T, q = d.shape
    m = d.masks.astype(float)
    xtx = np.einsum("pt,rpij->rtij", m, d.S) + 1e-9 * np.eye(q)
    xty = np.einsum("pt,rpti->rti", m, d.Y)
    try:
        coef = np.linalg.solve(xtx, xty[..., None])[..., 0]      # (R, T, q)
    except np.linalg.LinAlgError:  # one singular member: NaN for it (a failed replicate), not a failed batch
        coef = (_inverse(xtx) @ xty[..., None])[..., 0]
    ys = d.Y @ np.swapaxes(coef, 1, 2)[:, None]
    resid = d.U - ys - np.swapaxes(ys, -1, -2) + coef[:, None] @ d.S @ np.swapaxes(coef, 1, 2)[:, None]
    both = m[:, :, None] * m[:, None, :]
    cov = (resid * both).sum(axis=1) / np.maximum(np.einsum("rp,pab->rab", d.n, both) - q, 1.0)
    sd = np.sqrt(np.maximum(np.diagonal(cov, axis1=1, axis2=2), 1e-8))
    corr = np.clip(cov / (sd[:, :, None] * sd[:, None, :]), -0.95, 0.95)
    start = np.eye(T) * sd[:, :, None] ** 2
    for shrink in (0.5, 1.0):  # the least shrunk positive definite start
        candidate = (shrink * corr + (1.0 - shrink) * np.eye(T)) * sd[:, :, None] * sd[:, None, :]
        start = np.where(_positive_definite(candidate)[:, None, None], candidate, start)
    return start


def _monotone(d: _Sums) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray] | None:
    """REML in closed form when every pattern is a run of first visits (monotone dropout) and each visit's free
    coefficients include the previous visit's (see the module): ``Sigma``, a flag where the optimum exists, the GLS
    pieces there (``w``, ``c``, ``beta`` as :func:`_score`) and the inverse observed REML information in
    ``theta``; None otherwise."""
    R, T, q = d.shape
    free = d.free.reshape(T, q)
    if not ((d.masks == (np.arange(T) < d.masks.sum(axis=1)[:, None])).all() and (free[:-1] <= free[1:]).all()):
        return None
    z = np.block([[d.S, np.swapaxes(d.Y, 2, 3)], [d.Y, d.U]])  # sums of (x, y)(x, y)' per pattern
    at = np.einsum("pt,rpij->trij", d.masks.astype(float), z)  # over the children seen at each visit
    n = d.n @ d.masks
    unit = np.broadcast_to(np.eye(T), (R, T, T)).copy()       # A y = e: e independent, variances var
    lower = unit.copy()                                        # A^-1
    var, gamma = np.ones((R, T)), np.zeros((R, T, q))
    cov_gamma, cov_psi = np.zeros((R, T, q, T, q)), np.zeros((R, T * (T + 1) // 2, T * (T + 1) // 2))
    ok = np.ones(R, dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        for t in range(T):  # y_t on its free regressors and y_<t (psi's rows t (t + 1) / 2 on: phi_t, var_t)
            cols = np.flatnonzero(free[t])
            k = cols.size
            kept = np.concatenate([cols, q + np.arange(t)])
            inverse = _inverse(at[t][:, kept[:, None], kept])
            g = at[t][:, kept, q + t]
            coef = (inverse @ g[..., None])[..., 0]
            variance = (at[t][:, q + t, q + t] - (coef * g).sum(axis=1)) / (n[:, t] - k)
            xx = _inverse(at[t][:, cols[:, None], cols])
            bad = ~(np.isfinite(variance) & (variance > 0) & np.isfinite(coef).all(axis=1))
            ok &= ~bad  # no optimum: a harmless stand-in below
            inverse[bad], coef[bad], variance[bad], xx[bad] = np.eye(kept.size), 0.0, 1.0, np.eye(k)
            var[:, t] = variance
            unit[:, t, :t] = -coef[:, k:]
            lower[:, t, :t] = (coef[:, k:, None] * lower[:, :t, :t]).sum(axis=1)
            gamma[:, t, cols] = coef[:, :k]
            cov_gamma[:, t, cols[:, None], t, cols] = variance[:, None, None] * xx
            first = t * (t + 1) // 2
            cov_psi[:, first:first + t, first:first + t] = variance[:, None, None] * inverse[:, k:, k:]
            cov_psi[:, first + t, first + t] = 2.0 * variance**2 / (n[:, t] - k)
    sigma = (lower * var[:, None, :]) @ np.swapaxes(lower, 1, 2)
    # beta_t = sum_j lower_tj gamma_j, and the inverse of Sigma on the first k visits is sum_t<k A_t' A_t / var_t
    big = np.kron(lower, np.eye(q))
    cumulative = np.cumsum(unit[..., None] * unit[:, :, None] / var[:, :, None, None], axis=1)
    c = big @ cov_gamma.reshape(R, T * q, T * q) @ np.swapaxes(big, 1, 2)
    s = {"w": cumulative[:, d.masks.sum(axis=1) - 1], "c": c, "beta": lower @ gamma}
    # d Sigma / d psi: u v' + v u' with u = lower e_t, v = Sigma e_j for phi_tj and lower e_t / 2 for var_t
    t, j = np.tril_indices(T)
    u = lower[:, :, t]
    v = np.where(t == j, 0.5 * u, sigma[:, :, j])
    i, m = np.triu_indices(T)
    jacobian = u[:, i] * v[:, m] + u[:, m] * v[:, i]  # (R, theta, psi)
    return sigma, ok, s, jacobian @ cov_psi @ np.swapaxes(jacobian, 1, 2)


def _score(d: _Sums, sigma: np.ndarray) -> dict[str, np.ndarray]:
    """-2 REML log-likelihood (without constants) ``f``, its gradient in Sigma, and the GLS pieces; NaN for a
    replicate whose matrices are singular (a failed replicate, counted as such, without a warning)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return _score_terms(d, sigma)


def _score_terms(d: _Sums, sigma: np.ndarray) -> dict[str, np.ndarray]:
    R, T, q = d.shape
    P = d.masks.shape[0]
    outer = d.masks[:, :, None] & d.masks[:, None, :]
    a = np.where(outer, sigma[:, None], 0.0) + np.eye(T) * ~d.masks[:, None, :]
    _, logdet = np.linalg.slogdet(a)
    w = _inverse(a) * outer  # a singular member (a replicate that cannot be fitted) gives NaN, not an error
    m = _kron_sum(w, d.S)
    kept = np.flatnonzero(d.free)  # C = N (N' M N)^-1 N' for the kept coefficients N, zero elsewhere
    m = m[:, kept[:, None], kept]
    c = np.zeros((R, T * q, T * q))
    c[:, kept[:, None], kept] = _inverse(m)
    b = (w @ d.Y).sum(axis=1).reshape(R, T * q)
    beta = (c @ b[..., None]).reshape(R, T, q)
    ys = d.Y @ np.swapaxes(beta, 1, 2)[:, None]
    resid = d.U - ys - np.swapaxes(ys, -1, -2) + beta[:, None] @ d.S @ np.swapaxes(beta, 1, 2)[:, None]
    blocks = c.reshape(R, T, q, T, q).transpose(0, 1, 3, 4, 2).reshape(R, T * T, q * q)
    k = np.swapaxes(blocks @ np.swapaxes(d.S.reshape(R, P, q * q), 1, 2), 1, 2).reshape(R, P, T, T)
    grad = (d.n[..., None, None] * w - w @ (resid + k) @ w).sum(axis=1)
    _, logdet_m = np.linalg.slogdet(m)
    f = ((d.n * logdet).sum(axis=1) + logdet_m + (w * d.U).sum(axis=(1, 2, 3))
         - (b * beta.reshape(R, T * q)).sum(axis=1))
    return {"f": f, "grad": 0.5 * (grad + np.swapaxes(grad, 1, 2)), "w": w, "c": c, "beta": beta,
            "resid": resid, "k": k}


def _hessian(d: _Sums, s: dict[str, np.ndarray]) -> np.ndarray:
    """Observed Hessian ``(R, K, K)`` of -2 l_R in the free elements ``theta`` of Sigma
    (``Sigma = sum_k theta_k B_k``).

    With ``P = V^-1 - V^-1 X C X' V^-1`` and ``e = P y``: ``H_kl = -tr(P B_k P B_l) + 2 e' B_k P B_l e``,
    expanded over patterns: ``tr(P B_k P B_l) = T1 - 2 T2 + T3`` (see :func:`_information`) and
    ``e' B_k P B_l e = T4 - T5``.
    """
    R, T, q = d.shape
    w, c = s["w"], s["c"]
    z, t3 = _shared_terms(d, s)
    e = w @ s["resid"] @ w                                       # T4: sum of e e' over the pattern
    f = d.Y - s["beta"][:, None] @ d.S                           # T5: sum of r x' over the pattern
    hk = _basis_product(w, f).reshape(R, -1, T * q)
    t5 = hk @ c @ hk.swapaxes(1, 2)
    left = 2.0 * (z + e) - d.n[..., None, None] * w             # -(T1 - 2 T2) + 2 T4 share kron(., W_p)
    h = _basis_sum(left, w) - t3 - 2.0 * t5
    return 0.5 * (h + np.swapaxes(h, 1, 2))


def _information(d: _Sums, s: dict[str, np.ndarray]) -> np.ndarray:
    """Expected Hessian ``(R, K, K)`` of -2 l_R, ``tr(P B_k P B_l) = T1 - 2 T2 + T3`` (twice the REML Fisher
    information): ``T1 = sum_p n_p tr(W B_k W B_l)``, ``T2 = sum_p tr(B_k W B_l W K_p W)``,
    ``T3 = tr(C D_k C D_l)`` with ``D_k = sum_p W B_k W (x) S_p``."""
    z, t3 = _shared_terms(d, s)
    w = s["w"]
    h = _basis_sum(d.n[..., None, None] * w - 2.0 * z, w) + t3
    return 0.5 * (h + np.swapaxes(h, 1, 2))


def _shared_terms(d: _Sums, s: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """What both Hessians use: ``W K_p W`` and ``T3``."""
    R = d.shape[0]
    w, c = s["w"], s["c"]
    wbw = _wbw(w)
    K = wbw.shape[2]
    cd = c[:, None] @ _kron_sum_k(wbw, d.S)
    t3 = cd.reshape(R, K, -1) @ np.swapaxes(cd, 2, 3).reshape(R, K, -1).swapaxes(1, 2)
    return w @ s["k"] @ w, t3


def _wbw(w: np.ndarray) -> np.ndarray:
    """``W B_k W`` ``(R, P, K, T, T)`` for ``W`` ``(R, P, T, T)``."""
    return w[:, :, None] @ _basis(w.shape[-1]) @ w[:, :, None]


def _solve(d: _Sums, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Newton steps (Fisher scoring where the observed Hessian is not positive definite) with step
    halving, each on the replicates not yet converged; Sigma and a converged flag per replicate.

    A replicate whose last full Newton step ended within :data:`CHORD` of its Hessian's point keeps that Hessian.
    It has converged when a full step at a positive definite observed Hessian is at most :data:`TOLERANCE`
    relative and, with a kept Hessian, at most ``TOLERANCE^2`` over the distance from that Hessian's point (the
    error left is about the step times that distance, as a fresh Newton step's is about its square); one whose
    criterion is not finite, or that stalls, is not converged.
    """
    R, T, _ = d.shape
    sigma = sigma.copy()
    done = np.zeros(R, dtype=bool)
    rows = np.arange(R)
    sub = d
    s = _score(sub, sigma)
    n = np.maximum(d.n.sum(axis=1), 1.0)[:, None, None]
    for _ in range(EM_STEPS + max(T - 4, 0)):  # REML EM steps (Laird, Lange & Stram 1987): cheap, monotone
        candidate = sigma - sigma @ s["grad"] @ sigma / n  # positive definite, and bring Newton close
        candidate = 0.5 * (candidate + np.swapaxes(candidate, 1, 2))
        sigma = np.where((_positive_definite(candidate) & np.isfinite(candidate).all(axis=(1, 2)))[:, None, None],
                         candidate, sigma)
        s = _score(sub, sigma)
    stale, drift, last = np.zeros(R, dtype=bool), np.zeros(R), np.ones(R)  # keeps its Hessian; distance from
    # that Hessian's point; the last step's size
    h = newton = None
    for _ in range(MAX_STEPS):
        live = np.isfinite(s["f"]) & np.isfinite(s["grad"]).all(axis=(1, 2))
        renew = np.flatnonzero(~stale)
        if renew.size == len(rows):
            h, newton = _newton_hessian(sub, s, live)
        elif renew.size:
            h[renew], newton[renew] = _newton_hessian(sub.take(renew), {k: v[renew] for k, v in s.items()},
                                                      live[renew])
        step = _step(h, _to_theta(s["grad"], derivative=True), live)
        theta = _to_theta(sigma[rows])
        accept = ~live
        new = sigma[rows]
        for halving in range(30):
            candidate = _from_theta(theta - step / 2.0**halving, T)
            trial = _score(sub, candidate)
            better = ~accept & _positive_definite(candidate) & (trial["f"] <= s["f"] + 1e-12 * np.abs(s["f"]))
            new = np.where(better[:, None, None], candidate, new)
            accept |= better
            if halving == 0:
                full = better
            if accept.all():
                break
        sigma[rows] = new
        size = np.abs(step).max(axis=1) / np.abs(theta).max(axis=1)
        drift = np.where(stale, drift, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):  # a chord step's contraction, measured
            rate = np.where(stale, size / last, 0.0)
        done[rows] = full & newton & (size * np.maximum(size, np.maximum(drift, rate)) <= TOLERANCE**2)
        drift, last = drift + size, size
        stale = full & newton & (drift <= CHORD)
        finished = done[rows] | ~live
        if finished.all():
            break
        keep = ~finished
        rows, sub = rows[keep], sub.take(np.flatnonzero(keep))
        h, newton, stale, drift, last = h[keep], newton[keep], stale[keep], drift[keep], last[keep]
        s = ({k: v[keep] for k, v in trial.items()} if halving == 0
             else _score(sub, sigma[rows]))  # every step full: the trial point is the new point
    return sigma, done


def _newton_hessian(d: _Sums, s: dict[str, np.ndarray], live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The observed Hessian, the expected one (Fisher scoring) where it is not positive definite, and where it is."""
    h = _hessian(d, s)
    newton = _positive_definite(h) & live
    if not newton.all():
        other = np.flatnonzero(~newton)
        h[other] = _information(d.take(other), {k: v[other] for k, v in s.items()})
    return h, newton


def _contrast(d: _Sums, s: dict[str, np.ndarray], contrasts: np.ndarray, cov_theta: np.ndarray | None, *,
              kenward_roger: bool) -> tuple[np.ndarray, ...]:
    """Contrasts ``L beta`` (``L`` ``(J, T q)``): estimates ``(R, J)``, covariance ``(R, J, J)`` (model-based
    ``L Phi L'``, or Kenward-Roger's ``L Phi_A L'``), df (for one contrast Satterthwaite's ``2 v^2 / (g' W g)``,
    which are Kenward-Roger's too; for several Kenward and Roger's ``m``) and the coefficients ``(R, T, q)``."""
    R, T, q = d.shape
    J = len(contrasts)
    u = [s["c"] @ k for k in contrasts]                              # Phi k
    covariance = np.stack([np.stack([u[i] @ contrasts[j] for j in range(J)], axis=-1) for i in range(J)], axis=-2)
    us = [ui.reshape(R, 1, T, q) @ d.S for ui in u]                  # U S_p, (R, P, T, q)
    z = {(i, j): s["w"] @ (us[i] @ u[j].reshape(R, 1, T, q).swapaxes(2, 3)) @ s["w"]  # W U_i S_p U_j' W
         for i in range(J) for j in range(i, J)}
    g = np.stack([_to_theta((z[i, j] if i == j else 0.5 * (z[i, j] + np.swapaxes(z[i, j], -1, -2))).sum(axis=1),
                            derivative=True) for i, j in z])         # d(L Phi L')_ij / dtheta, (pairs, R, K)
    with np.errstate(invalid="ignore", divide="ignore"):
        if cov_theta is None:                                        # inverse observed REML information
            cov_theta = 2.0 * _inverse(_hessian(d, s))
        if J == 1:
            df = 2.0 * covariance[:, 0, 0]**2 / (g[0][:, None, :] @ cov_theta @ g[0][..., None])[:, 0, 0]
        else:
            df = _kenward_roger_df(covariance, _symmetric(g, z, J), cov_theta)
        if kenward_roger:
            covariance = covariance + _kenward_roger(d, s, us, z, cov_theta, J)
        return s["beta"].reshape(R, T * q) @ contrasts.T, covariance, df, s["beta"]


def _symmetric(pairs: np.ndarray, keys: dict, J: int) -> np.ndarray:
    """``(R, ..., J, J)`` from the values ``(pairs, R, ...)`` of the pairs ``i <= j`` (in ``keys``' order)."""
    out = np.empty((*pairs.shape[1:], J, J))
    for value, (i, j) in zip(pairs, keys, strict=True):
        out[..., i, j] = out[..., j, i] = value
    return out


def _kenward_roger_df(v: np.ndarray, g: np.ndarray, cov_theta: np.ndarray) -> np.ndarray:
    """Kenward and Roger's df ``m`` of a ``J``-dimensional contrast with covariance ``v`` ``(R, J, J)``, derivatives
    ``g`` ``(R, K, J, J)`` in theta, ``W = cov_theta``: ``A1 = sum W_kl tr(V^-1 G_k) tr(V^-1 G_l)``,
    ``A2 = sum W_kl tr(V^-1 G_k V^-1 G_l)`` and their section 4 (as ``pbkrtest::Lb_ddf``; ``2 / A2`` for one)."""
    J = v.shape[-1]
    vg = np.linalg.solve(v[:, None], g)                                          # V^-1 G_k
    trace = np.trace(vg, axis1=2, axis2=3)
    a1 = np.einsum("rk,rkl,rl->r", trace, cov_theta, trace)
    a2 = np.einsum("rkl,rkab,rlba->r", cov_theta, vg, vg)
    b = (a1 + 6.0 * a2) / (2.0 * J)
    gamma = ((J + 1) * a1 - (J + 4) * a2) / ((J + 2) * a2)
    den = 3.0 * J + 2.0 - 2.0 * gamma
    c1, c2, c3 = gamma / den, (J - gamma) / den, (J + 2.0 - gamma) / den
    e = 1.0 / (1.0 - a2 / J)
    var = 2.0 / J * (1.0 + c1 * b) / (1.0 - c2 * b) ** 2 / (1.0 - c3 * b)
    rho = var / (2.0 * e**2)
    return 4.0 + (J + 2.0) / (J * rho - 1.0)


def _kenward_roger(d: _Sums, s: dict[str, np.ndarray], us: list[np.ndarray], z: dict, cov_theta: np.ndarray,
                   J: int) -> np.ndarray:
    """``L (Phi_A - Phi) L'``, ``(R, J, J)``: ``2 sum_kl W_kl (u_i' Q_kl u_j - u_i' P_k Phi P_l u_j)``,
    ``u_i = Phi L_i`` ([Kenward 1997]).

    ``P_k = -D_k``, ``Q_kl = sum_p W B_k W B_l W (x) S_p``; ``R_kl = 0`` (Sigma is linear in theta). So
    ``u_i' Q_kl u_j = sum_p tr(B_k W B_l Z_p)`` with ``Z_p = W U_i S_p U_j' W`` (symmetric in ``i, j`` once summed
    with ``W_kl``), and ``P_k u_i = -sum_p W B_k W U_i S_p``.
    """
    R, T, q = d.shape
    w = s["w"]
    pu = [_basis_product(w, usi).reshape(R, -1, T * q) for usi in us]
    out = []
    for i, j in z:
        quadratic = _basis_sum(w, z[i, j])
        bias = pu[i] @ s["c"] @ pu[j].swapaxes(1, 2)
        out.append(2.0 * (cov_theta * (quadratic - bias)).sum(axis=(1, 2)))
    return _symmetric(np.stack(out), z, J)


def _to_theta(matrix: np.ndarray, *, derivative: bool = False) -> np.ndarray:
    """The free elements (upper triangle) of symmetric ``(R, T, T)``; for a derivative ``d/dSigma``, the
    off-diagonal entries count twice (each is two matrix elements)."""
    T = matrix.shape[-1]
    iu = np.triu_indices(T)
    theta = matrix[:, iu[0], iu[1]]
    if derivative:
        theta = theta * np.where(iu[0] == iu[1], 1.0, 2.0)
    return theta


def _from_theta(theta: np.ndarray, T: int) -> np.ndarray:
    iu = np.triu_indices(T)
    out = np.zeros((theta.shape[0], T, T))
    out[:, iu[0], iu[1]] = theta
    out[:, iu[1], iu[0]] = theta
    return out


def _positive_definite(sigma: np.ndarray) -> np.ndarray:
    """``(R,)`` True where the symmetric ``(R, T, T)`` matrix is positive definite (smallest eigenvalue above
    1e-12 of the largest diagonal element); a Cholesky factorisation settles the common all-definite case."""
    scale = np.abs(np.diagonal(sigma, axis1=1, axis2=2)).max(axis=1)
    with np.errstate(invalid="ignore"):
        try:
            np.linalg.cholesky(sigma - 1e-12 * scale[:, None, None] * np.eye(sigma.shape[-1]))
        except np.linalg.LinAlgError:
            return np.linalg.eigvalsh(sigma)[:, 0] > 1e-12 * scale
        return np.isfinite(sigma).all(axis=(1, 2))


def _inverse(a: np.ndarray) -> np.ndarray:
    """Inverses of stacked matrices; a singular one gives NaN instead of failing the whole batch."""
    try:
        return np.linalg.inv(a)
    except np.linalg.LinAlgError:
        out = np.full(a.shape, np.nan)
        for i, one in enumerate(a):
            with contextlib.suppress(np.linalg.LinAlgError):
                out[i] = np.linalg.inv(one)
        return out


def _basis_sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``vec(B_k)' (sum_p A_p (x) B_p) vec(B_l)`` ``(R, K, K)`` for ``A``, ``B`` ``(R, P, T, T)`` and the basis
    :func:`_basis`, without the Kronecker products: ``M = sum_p vec(A_p) vec(B_p)'`` holds every product
    ``A_p[i, m] B_p[j, n]`` summed over ``p``, and each ``B_k`` has its ones at ``(i, j)`` and ``(j, i)``."""
    R, P, T, _ = a.shape
    m = np.swapaxes(a.reshape(R, P, T * T), 1, 2) @ b.reshape(R, P, T * T)   # m[i T + m, j T + n]
    i, j = np.triu_indices(T)
    ends = ((i, j, 1.0), (j, i, (i != j).astype(float)))  # the second one of an off-diagonal element only
    out = np.zeros((R, len(i), len(i)))
    for row, col, weight in ends:
        for row2, col2, weight2 in ends:
            out += np.outer(weight, weight2) * m[:, row[:, None] * T + row2, col[:, None] * T + col2]
    return out


def _basis_product(w: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``sum_p W_p B_k W_p M_p`` ``(R, K, T, c)`` for ``W`` ``(R, P, T, T)``, ``M`` ``(R, P, T, c)`` and the basis
    :func:`_basis`, without ``W B_k W``: ``n[x, i, j] = sum_p W_p[x, i] (W_p M_p)[j]`` holds every product, and
    ``B_k`` has its ones at ``(i, j)`` and ``(j, i)``."""
    R, P, T, _ = w.shape
    wm = w @ m
    n = (np.swapaxes(w.reshape(R, P, T * T), 1, 2) @ wm.reshape(R, P, -1)).reshape(R, T, T, T, -1)
    i, j = np.triu_indices(T)
    out = n[:, :, i, j] + (i != j)[:, None] * n[:, :, j, i]  # (R, T, K, c)
    return np.swapaxes(out, 1, 2)


def _kron_sum(w: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``sum_p W_p (x) S_p`` over the pattern axis 1: ``(R, T q, T q)``."""
    R, P, T, _ = w.shape
    q = s.shape[-1]
    flat = np.swapaxes(w.reshape(R, P, T * T), 1, 2) @ s.reshape(R, P, q * q)
    return flat.reshape(R, T, T, q, q).transpose(0, 1, 3, 2, 4).reshape(R, T * q, T * q)


def _kron_sum_k(wbw: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``D_k = sum_p A_pk (x) S_p`` for ``A`` ``(R, P, K, T, T)``: ``(R, K, T q, T q)``."""
    R, P, K, T, _ = wbw.shape
    q = s.shape[-1]
    flat = wbw.transpose(0, 2, 3, 4, 1).reshape(R, K, T * T, P) @ s.reshape(R, 1, P, q * q)
    return flat.reshape(R, K, T, T, q, q).transpose(0, 1, 2, 4, 3, 5).reshape(R, K, T * q, T * q)


def _basis(T: int) -> np.ndarray:
    """``(K, T, T)``: the symmetric matrix of each free element of Sigma (upper triangle order)."""
    iu = np.triu_indices(T)
    out = np.zeros((len(iu[0]), T, T))
    out[np.arange(len(iu[0])), iu[0], iu[1]] = 1.0
    out[np.arange(len(iu[0])), iu[1], iu[0]] = 1.0
    return out


def _step(h: np.ndarray, g: np.ndarray, live: np.ndarray) -> np.ndarray:
    """``H^-1 g`` where ``H`` is positive definite, a diagonally scaled gradient step elsewhere, and zero where
    the replicate is not ``live`` (non-finite)."""
    h = np.where(live[:, None, None], h, np.eye(h.shape[-1]))
    g = np.where(live[:, None], g, 0.0)
    pd = _positive_definite(h)
    with np.errstate(invalid="ignore", divide="ignore"):
        solved = np.linalg.solve(np.where(pd[:, None, None], h, np.eye(h.shape[-1])), g[..., None])[..., 0]
        diag = np.abs(np.diagonal(h, axis1=1, axis2=2))
        fallback = g / np.where(np.isfinite(diag) & (diag > 0), diag, 1.0)
    return np.where(pd[:, None], solved, fallback)
