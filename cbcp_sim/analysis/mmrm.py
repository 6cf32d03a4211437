"""MMRM: mixed model for repeated measures, unstructured covariance, REML, Kenward-Roger or Satterthwaite; batched.

The model of the post-baseline visits ``t = 1..T`` of child ``i`` is

    y_it = a_t + d_t arm_i + g_t baseline_i (+ h_t' covariates_i) + e_it,    e_i ~ N(0, Sigma)

with ``Sigma`` unstructured (``T (T + 1) / 2`` parameters): visit-by-arm and visit-by-baseline fixed
effects, as R's ``mmrm(y ~ visit * arm + visit * baseline + us(visit | id))`` or
``nlme::gls(..., correlation = corSymm(), weights = varIdent(~ 1 | visit), method = "REML")``.
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
halving on the ``T (T + 1) / 2`` free elements of ``Sigma``, from a moment start, all replicates at
once (those converged drop out). A coefficient fixed at zero (cLDA's arm at baseline) leaves ``M``:
``C = N (N' M N)^-1 N'`` for the kept coefficients ``N`` replaces ``M^-1`` throughout, ``log|N' M N|`` replaces
``log|M|``.

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
``mmrm`` package's ``fev_data`` (``tests/fixtures/mmrm_kr``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from cbcp_sim.analysis.inference import Estimates

#: Newton steps at most, and the relative step in Sigma below which a replicate has converged (its
#: error is then about the square of that, Newton's convergence being quadratic).
MAX_STEPS = 50
#: EM steps (each a REML score, no Hessian) between the moment start and Newton.
EM_STEPS = 2
TOLERANCE = 1e-6
#: Bytes of the largest intermediate (the observed Hessian's Kronecker products, ``P T^4`` doubles per replicate)
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
    return _fitted(values, observed, treated, visit, endpoint, covariates, mmrm_df, mmrm_baseline)[0]


def expected_residuals(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int, *,
                       endpoint: str = "change", covariates: np.ndarray | None = None,
                       mmrm_df: str = "kenward_roger",
                       mmrm_baseline: str = "covariate") -> tuple[Estimates, np.ndarray]:
    """:func:`mmrm`'s estimates and, per child with a baseline not seen at ``visit``, the expected residual of its
    ``visit`` score given the visits it was seen at, under the fitted model: ``Sigma_vo Sigma_oo^-1 e_o``, ``e_o``
    its residuals (score minus fitted mean) at those visits; ``(R, N)``, zero for other children and NaN in a
    replicate that failed. A child's expected ``visit`` score under MAR is its fitted mean plus this."""
    est, model = _fitted(values, observed, treated, visit, endpoint, covariates, mmrm_df, mmrm_baseline)
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


def _fitted(values: np.ndarray, observed: np.ndarray, treated: np.ndarray, visit: int, endpoint: str,
            covariates: np.ndarray | None, mmrm_df: str,
            mmrm_baseline: str) -> tuple[Estimates, tuple[np.ndarray, ...] | None]:
    """:func:`mmrm`'s estimates and the fitted model: the responses and regressors as fitted (centred), where each
    child was seen, and per replicate ``Sigma`` ``(R, T, T)`` and the coefficients ``(R, T, q)`` (NaN where the
    replicate failed); None when no child is seen after baseline."""
    if mmrm_df not in DF_METHODS:
        raise ValueError(f"mmrm_df: expected one of {', '.join(DF_METHODS)}, got {mmrm_df!r}")
    if mmrm_baseline not in BASELINES:
        raise ValueError(f"mmrm_baseline: expected one of {', '.join(BASELINES)}, got {mmrm_baseline!r}")
    base = observed[..., 0]
    treated = np.broadcast_to(treated, base.shape)
    columns = [np.ones(base.shape), treated.astype(float)]
    if mmrm_baseline == "covariate":
        columns.append(values[..., 0])
    if covariates is not None:
        columns += list(np.moveaxis(covariates, -1, 0))
    response = mmrm_baseline.startswith("response")
    first = 0 if response else 1  # the first response visit
    seen = observed[..., first:] & base[..., None]
    R, T, q = len(seen), seen.shape[-1], len(columns)
    free = np.ones((T, q), dtype=bool)
    free[0, 1] = mmrm_baseline != "response"  # cLDA: no arm effect at baseline
    contrast = np.zeros((T, q))
    contrast[visit - first, 1] = 1.0
    if mmrm_baseline == "response_unconstrained" and endpoint == "change":
        contrast[0, 1] -= 1.0
    y, x = _centred(np.where(seen, values[..., first:], 0.0), seen, np.stack(columns, axis=-1))
    sums = _Sums.of(y, seen, x, free.ravel())
    out = Estimates(*(np.full(R, np.nan) for _ in range(3)))
    if sums is None:
        return out, None
    sigmas, betas = np.full((R, T, T), np.nan), np.full((R, T, q), np.nan)
    arm_counts = np.stack([(seen & ~treated[..., None]).sum(axis=1), (seen & treated[..., None]).sum(axis=1)])
    good = np.flatnonzero((arm_counts >= 2).all(axis=(0, 2)) & (sums.n.sum(axis=1) > T + q) & sums.full_rank())
    batch = max(1, BATCH_BYTES // (8 * len(sums.masks) * T ** 4))
    for start in range(0, good.size, batch):
        rows = good[start:start + batch]
        part = sums.take(rows)
        sigma, converged = _solve(part, _start(part))
        estimate, se, df, beta = _contrast(part, sigma, contrast.ravel(), kenward_roger=mmrm_df == "kenward_roger")
        ok = converged & np.isfinite(df) & (df > 0) & (se > 0)
        for name, value in zip(("estimate", "se", "df"), (estimate, se, df), strict=True):
            getattr(out, name)[rows] = np.where(ok, value, np.nan)
        sigmas[rows], betas[rows] = sigma, beta
    return out, (y, x, seen, sigmas, betas)


def _centred(y: np.ndarray, seen: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For precision, ``y`` ``(R, N, T)`` centred per visit and the covariates after the arm column of ``x``
    ``(R, N, q)`` over the children in the fit (seen at some visit; the others' regressors zero): shifts the
    intercepts absorb, so the arm contrast does not change."""
    included = seen.any(axis=-1)
    seen_count = np.maximum(seen.sum(axis=1, keepdims=True), 1)
    y = np.where(seen, y - np.where(seen, y, 0.0).sum(axis=1, keepdims=True) / seen_count, 0.0)
    weight = included[..., None]
    count = np.maximum(weight.sum(axis=1, keepdims=True), 1)
    x = x.copy()
    x[..., 2:] -= (np.where(weight, x, 0.0).sum(axis=1, keepdims=True) / count)[..., 2:]
    return y, np.where(weight, x, 0.0)


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
        included = seen.any(axis=-1)
        if not included.any():
            return None
        codes = seen @ (1 << np.arange(seen.shape[-1]))
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
    flat, wbw, z, t3 = _shared_terms(d, s)
    e = w @ s["resid"] @ w                                       # T4: sum of e e' over the pattern
    f = d.Y - s["beta"][:, None] @ d.S                           # T5: sum of r x' over the pattern
    hk = (wbw @ f[:, :, None]).sum(axis=1).reshape(R, flat.shape[0], T * q)
    t5 = hk @ c @ hk.swapaxes(1, 2)
    left = 2.0 * (z + e) - d.n[..., None, None] * w             # -(T1 - 2 T2) + 2 T4 share kron(., W_p)
    h = flat @ _kron(left, w).sum(axis=1) @ flat.T - t3 - 2.0 * t5
    return 0.5 * (h + np.swapaxes(h, 1, 2))


def _information(d: _Sums, s: dict[str, np.ndarray]) -> np.ndarray:
    """Expected Hessian ``(R, K, K)`` of -2 l_R, ``tr(P B_k P B_l) = T1 - 2 T2 + T3`` (twice the REML Fisher
    information): ``T1 = sum_p n_p tr(W B_k W B_l)``, ``T2 = sum_p tr(B_k W B_l W K_p W)``,
    ``T3 = tr(C D_k C D_l)`` with ``D_k = sum_p W B_k W (x) S_p``."""
    flat, _, z, t3 = _shared_terms(d, s)
    w = s["w"]
    h = flat @ _kron(d.n[..., None, None] * w - 2.0 * z, w).sum(axis=1) @ flat.T + t3
    return 0.5 * (h + np.swapaxes(h, 1, 2))


def _shared_terms(d: _Sums, s: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """What both Hessians use: the basis as rows ``(K, T^2)``, ``W B_k W`` per pattern ``(R, P, K, T, T)``,
    ``W K_p W`` and ``T3``."""
    R, T, _ = d.shape
    w, c = s["w"], s["c"]
    basis = _basis(T)
    wbw = w[:, :, None] @ basis @ w[:, :, None]
    cd = c[:, None] @ _kron_sum_k(wbw, d.S)
    t3 = cd.reshape(R, len(basis), -1) @ np.swapaxes(cd, 2, 3).reshape(R, len(basis), -1).swapaxes(1, 2)
    return basis.reshape(len(basis), T * T), wbw, w @ s["k"] @ w, t3


def _solve(d: _Sums, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Newton steps (Fisher scoring where the observed Hessian is not positive definite) with step
    halving, each on the replicates not yet converged; Sigma and a converged flag per replicate.

    A replicate has converged when a full Newton step, at a positive definite observed Hessian, is at
    most :data:`TOLERANCE` relative; one whose criterion is not finite, or that stalls, is not converged.
    """
    R, T, _ = d.shape
    sigma = sigma.copy()
    done = np.zeros(R, dtype=bool)
    rows = np.arange(R)
    sub = d
    s = _score(sub, sigma)
    n = np.maximum(d.n.sum(axis=1), 1.0)[:, None, None]
    for _ in range(EM_STEPS):  # REML EM steps (Laird, Lange & Stram 1987): cheap, monotone, keep Sigma
        candidate = sigma - sigma @ s["grad"] @ sigma / n  # positive definite, and bring Newton close
        candidate = 0.5 * (candidate + np.swapaxes(candidate, 1, 2))
        sigma = np.where((_positive_definite(candidate) & np.isfinite(candidate).all(axis=(1, 2)))[:, None, None],
                         candidate, sigma)
        s = _score(sub, sigma)
    for _ in range(MAX_STEPS):
        live = np.isfinite(s["f"]) & np.isfinite(s["grad"]).all(axis=(1, 2))
        h = _hessian(sub, s)
        newton = _positive_definite(h) & live
        if not newton.all():  # Fisher scoring for the others
            other = np.flatnonzero(~newton)
            h[other] = _information(sub.take(other), {k: v[other] for k, v in s.items()})
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
        small = np.abs(step).max(axis=1) <= TOLERANCE * np.abs(theta).max(axis=1)
        done[rows] = full & newton & small
        finished = done[rows] | ~live
        if finished.all():
            break
        keep = ~finished
        rows, sub = rows[keep], sub.take(np.flatnonzero(keep))
        s = ({k: v[keep] for k, v in trial.items()} if halving == 0
             else _score(sub, sigma[rows]))  # every step full: the trial point is the new point
    return sigma, done


def _contrast(d: _Sums, sigma: np.ndarray, k: np.ndarray, *, kenward_roger: bool) -> tuple[np.ndarray, ...]:
    """Contrast ``k'beta`` (``k`` over the ``T q`` coefficients): estimate, SE (model-based, or Kenward-Roger's
    adjusted), df (Satterthwaite's, which for one contrast are Kenward-Roger's too), and the coefficients
    ``(R, T, q)``."""
    R, T, q = d.shape
    s = _score(d, sigma)
    hessian = _hessian(d, s)
    u = s["c"] @ k                                                  # Phi k
    variance = u @ k
    us = u.reshape(R, 1, T, q) @ d.S                                 # U S_p, (R, P, T, q)
    quad = us @ u.reshape(R, 1, T, q).swapaxes(2, 3)                 # U S_p U'
    z = s["w"] @ quad @ s["w"]
    g = _to_theta(z.sum(axis=1), derivative=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        cov_theta = 2.0 * _inverse(hessian)                          # inverse observed REML information
        df = 2.0 * variance**2 / (g[:, None, :] @ cov_theta @ g[..., None])[:, 0, 0]
        if kenward_roger:
            variance = variance + _kenward_roger(d, s, u, us, z, cov_theta)
        return s["beta"].reshape(R, T * q) @ k, np.sqrt(variance), df, s["beta"]


def _kenward_roger(d: _Sums, s: dict[str, np.ndarray], u: np.ndarray, us: np.ndarray, z: np.ndarray,
                   cov_theta: np.ndarray) -> np.ndarray:
    """``k' (Phi_A - Phi) k = 2 sum_kl W_kl (u' Q_kl u - u' P_k Phi P_l u)``, ``u = Phi k`` ([Kenward 1997]).

    ``P_k = -D_k``, ``Q_kl = sum_p W B_k W B_l W (x) S_p``; ``R_kl = 0`` (Sigma is linear in theta). So
    ``u' Q_kl u = sum_p tr(B_k W B_l Z_p)`` with ``Z_p = W U S_p U' W``, and ``P_k u = -sum_p W B_k W U S_p``.
    """
    R, T, q = d.shape
    w = s["w"]
    basis = _basis(T)
    flat = basis.reshape(len(basis), T * T)
    quadratic = flat @ _kron(w, z).sum(axis=1) @ flat.T
    pu = ((w[:, :, None] @ basis @ w[:, :, None]) @ us[:, :, None]).sum(axis=1).reshape(R, len(basis), T * q)
    bias = pu @ s["c"] @ pu.swapaxes(1, 2)
    return 2.0 * (cov_theta * (quadratic - bias)).sum(axis=(1, 2))


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


def _kron(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Kronecker products of stacked matrices: ``(..., m, n)`` and ``(..., p, q)`` give ``(..., m p, n q)``."""
    *lead, m, n = a.shape
    p, q = b.shape[-2:]
    return (a[..., :, None, :, None] * b[..., None, :, None, :]).reshape(*lead, m * p, n * q)


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
