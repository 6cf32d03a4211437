"""The multivariate-normal outcome model's inputs (``outcome.model = "mvn"``) over the visits of ``design.visits``:
the control arm's mean, what cells add and the SD at every visit, the correlation of every two visits, and the
checks that tie them to the design.

Keys left empty are derived from the normal model's cited defaults (docs/designs.md, The multivariate normal
model): the control mean grows by ``expected_change`` every ``primary_visit`` months, the effect rises linearly
to ``effect`` at the primary visit and holds, the SD is ``sd`` at every visit, and ``cs`` or ``ar1`` take
``correlation`` as their rho.
"""

from __future__ import annotations

import numpy as np

from cbcp_sim.errors import ScenarioError
from cbcp_sim.scenario.sections import Design, Outcome

#: Largest asymmetry of a correlation matrix taken as rounding.
SYMMETRY_TOLERANCE = 1e-9


def control_means(o: Outcome, d: Design) -> np.ndarray:
    """``(V,)``: the control arm's mean score at each visit of ``d.visits`` (outcome units)."""
    if o.arm_means:
        return np.array(o.arm_means[0])
    if o.visit_means:
        return np.array(o.visit_means)
    return o.expected_change * np.array(d.visits) / d.primary_visit


def effect_rows(d: Design) -> int:
    """Rows of :func:`effects`: one per active arm of a parallel design, else one (a single arm's arm, or the
    effect profile both sequences of a crossover follow from their cells)."""
    return len(d.arms) - 1 if d.kind == "parallel" else 1


def effects(o: Outcome, d: Design) -> np.ndarray:
    """``(A, V)``: what cells add to the mean score at each visit of ``d.visits``, one row per :func:`effect_rows`
    (outcome units; in a crossover, at that many months since the sequence's cells)."""
    if o.arm_means:
        means = np.array(o.arm_means)
        return means[1:] - means[0]
    if o.visit_effects:
        profile = np.array(o.visit_effects)
    else:
        profile = o.effect * np.minimum(np.array(d.visits) / d.primary_visit, 1.0)
    return np.broadcast_to(profile, (effect_rows(d), len(d.visits)))


def sds(o: Outcome, d: Design) -> np.ndarray:
    """``(V,)``: the SD of the score at each visit of ``d.visits``, alike in every arm (outcome units)."""
    given = o.visit_sd if o.visit_sd != () else o.sd
    return np.broadcast_to(np.array(given, dtype=float), (len(d.visits),))


def rho(o: Outcome) -> float:
    """The correlation of ``cs`` and ``ar1``: ``visit_correlation``, else ``correlation``."""
    return o.correlation if o.visit_correlation is None else o.visit_correlation


def correlation(o: Outcome, d: Design) -> np.ndarray:
    """``(V, V)``: the correlation of a child's scores at every two visits of ``d.visits``."""
    n = len(d.visits)
    lag = np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    if o.covariance == "unstructured":
        return np.array(o.correlation_matrix)
    if o.covariance == "toeplitz":
        return np.array((1.0, *o.toeplitz))[lag]
    if o.covariance == "ar1":
        return rho(o) ** lag
    return np.where(lag == 0, 1.0, rho(o))


def covariance(o: Outcome, d: Design) -> np.ndarray:
    """``(V, V)``: the covariance of a child's scores at the visits of ``d.visits`` (outcome units squared)."""
    sd = sds(o, d)
    return sd[:, None] * correlation(o, d) * sd


def check(o: Outcome, d: Design) -> None:
    """Refuse, naming the key, inputs that do not fit the design's visits and arms, or a correlation that is not
    one."""
    n = len(d.visits)
    _check_means(o, d, n)
    _check_effects(o, d, n)
    if o.visit_sd == () and isinstance(o.sd, tuple) and len(o.sd) > 1:
        raise ScenarioError("outcome.sd", "the mvn model has one SD per visit for every arm: give one number, or "
                                          "the SDs in outcome.visit_sd")
    if isinstance(o.visit_sd, tuple) and len(o.visit_sd) not in (0, 1, n):
        raise ScenarioError("outcome.visit_sd", f"must give one number or {n} (one per visit of design.visits), "
                                                f"got {len(o.visit_sd)}")
    _check_correlation(o, n)
    _check_positive_definite(o, d)


def _per_visit(path: str, values: tuple[float, ...], n: int) -> None:
    """``values`` at ``path`` hold one value per visit of the ``n``."""
    if len(values) != n:
        raise ScenarioError(path, f"must give one value per visit of design.visits ({n}), got {len(values)}")


def _check_means(o: Outcome, d: Design, n: int) -> None:
    """``visit_means``, or ``arm_means`` alone, one value per visit; ``arm_means`` in a parallel design, a row per
    arm, baselines equal (arms are randomised)."""
    if o.visit_means:
        _per_visit("outcome.visit_means", o.visit_means, n)
    if not o.arm_means:
        return
    if o.visit_means or o.visit_effects:
        raise ScenarioError("outcome.arm_means", "gives every arm's means: leave outcome.visit_means and "
                                                 "outcome.visit_effects empty")
    if d.kind != "parallel":
        raise ScenarioError("outcome.arm_means", f"gives the arms of a parallel design; a {d.kind} design takes "
                                                 "outcome.visit_means and outcome.visit_effects")
    if len(o.arm_means) != len(d.arms):
        raise ScenarioError("outcome.arm_means", f"must give one list per arm of design.arms ({len(d.arms)}, "
                                                 f"control first), got {len(o.arm_means)}")
    for i, row in enumerate(o.arm_means):
        _per_visit(f"outcome.arm_means[{i}]", row, n)
    baselines = [row[0] for row in o.arm_means]
    if len(set(baselines)) > 1:
        raise ScenarioError("outcome.arm_means", f"every arm's baseline mean (the first) must be the control's "
                                                 f"(arms are randomised), got {[f'{b:g}' for b in baselines]}")


def _check_effects(o: Outcome, d: Design, n: int) -> None:
    """``visit_effects``: one list, or one per active arm, each with a value per visit and 0 at baseline."""
    e = o.visit_effects
    if not e:
        return
    if isinstance(e[0], tuple):
        rows = effect_rows(d)
        if len(e) not in (1, rows):
            raise ScenarioError("outcome.visit_effects", f"must give one list for every active arm, or one per "
                                                         f"active arm ({rows}), got {len(e)}")
        named = [(f"outcome.visit_effects[{i}]", row) for i, row in enumerate(e)]
    else:
        named = [("outcome.visit_effects", e)]
    for path, row in named:
        _per_visit(path, row, n)
        if row[0] != 0.0:
            raise ScenarioError(path, f"must be 0 at baseline (arms are randomised), got {row[0]:g}")


#: The covariance structures that read each correlation key.
READ_BY = {"visit_correlation": ("cs", "ar1"), "toeplitz": ("toeplitz",), "correlation_matrix": ("unstructured",)}


def _check_correlation(o: Outcome, n: int) -> None:
    """Each correlation key given only with its structure, and always with it (rho of cs and ar1 has a default);
    one lag per visit but the first, or a full matrix of the visits, symmetric with 1 on the diagonal."""
    for key, structures in READ_BY.items():
        given = getattr(o, key) not in (None, ())
        if given and o.covariance not in structures:
            raise ScenarioError(f"outcome.{key}", f"is read with outcome.covariance = "
                                                  f"{' or '.join(map(repr, structures))}, not {o.covariance!r}")
        if not given and o.covariance in structures and key != "visit_correlation":
            raise ScenarioError(f"outcome.{key}", f"must be given with outcome.covariance = {o.covariance!r}")
    if o.covariance == "toeplitz" and len(o.toeplitz) != n - 1:
        raise ScenarioError("outcome.toeplitz", f"must give one correlation per lag ({n - 1}, for the {n} visits of "
                                                f"design.visits), got {len(o.toeplitz)}")
    if o.covariance == "unstructured":
        _per_visit("outcome.correlation_matrix", o.correlation_matrix, n)
        for i, row in enumerate(o.correlation_matrix):
            _per_visit(f"outcome.correlation_matrix[{i}]", row, n)
        _check_matrix(np.array(o.correlation_matrix))


def _check_matrix(r: np.ndarray) -> None:
    """A full correlation matrix: 1 on the diagonal, symmetric."""
    off = np.flatnonzero(np.diag(r) != 1.0)
    if off.size:
        i = int(off[0])
        raise ScenarioError("outcome.correlation_matrix", f"must have 1 on the diagonal, got {r[i, i]:g} in row {i}")
    i, j = np.unravel_index(np.argmax(np.abs(r - r.T)), r.shape)
    if abs(r[i, j] - r[j, i]) > SYMMETRY_TOLERANCE:
        raise ScenarioError("outcome.correlation_matrix", f"must be symmetric, got {r[i, j]:g} in row {i}, column "
                                                          f"{j} but {r[j, i]:g} in row {j}, column {i}")


def _check_positive_definite(o: Outcome, d: Design) -> None:
    """The correlation of the visits positive definite, else an error naming the key that made it."""
    n = len(d.visits)
    smallest = float(np.linalg.eigvalsh(correlation(o, d)).min())
    if smallest > 1e-10:
        return
    key = {"toeplitz": "toeplitz", "unstructured": "correlation_matrix"}.get(
        o.covariance, "correlation" if o.visit_correlation is None else "visit_correlation")
    hint = f"; cs needs rho above -1/{n - 1}" if o.covariance == "cs" else ""
    raise ScenarioError(f"outcome.{key}", f"gives a correlation of the {n} visits that is not positive definite "
                                          f"(smallest eigenvalue {smallest:.3g}){hint}")
