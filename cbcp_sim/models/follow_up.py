"""Enrolled children followed over months under a regimen: the one pipeline of simulated trials and trajectories.

:func:`draw` gives what every regimen acts on, drawn once for a set of enrolled children: each child's untreated
true GMFM-66 at the months (natural history), the measurement noise of each assessment and what the cell effect
needs of each child. :func:`follow` puts a regimen on (some of) those children: their true scores plus the
regimen's nonspecific response (expectation, assessor bias) and cell effect, observed with that noise. Regimens
followed on the same :class:`FollowUp` differ by their assumed effects and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cbcp_sim.models import natural_history, treatment
from cbcp_sim.models.layout import pick
from cbcp_sim.models.population import Children
from cbcp_sim.models.streams import Streams
from cbcp_sim.scenario import Scenario
from cbcp_sim.scenario.products import Regimen

#: No treatment and no procedure: natural history alone.
UNTREATED = Regimen(name="untreated", kind="nothing", doses=())


@dataclass(frozen=True)
class FollowUp:
    """Enrolled children at ``months`` before any regimen: arrays ``(R, N, V)`` and ``(R, N)``."""

    months: np.ndarray  #: (V,) months after baseline, or each child's actual months (R, N, V)
    true: np.ndarray    #: (R, N, V) untreated true GMFM-66: own curve, fluctuation and trial effect
    noise: np.ndarray   #: (R, N, V) standard normal measurement deviates
    recipient: dict[str, np.ndarray]  #: (R, N) each: what :func:`cbcp_sim.models.treatment.cell_effect` needs

    def at(self, visits: slice) -> FollowUp:
        """The same children at some of the months only."""
        return FollowUp(months=self.months[..., visits], true=self.true[..., visits],
                        noise=self.noise[..., visits], recipient=self.recipient)


@dataclass(frozen=True)
class Followed:
    """Children followed under one regimen, arrays ``(R, M, V)`` (``(1, M, V)`` when picked by a mask)."""

    scores: np.ndarray  #: observed GMFM-66
    without_cells: np.ndarray | None  #: observed under the regimen without its cell effect, when asked
    cell_effect: np.ndarray  #: the cell effect on the true score (zero for a regimen without cells)


def draw(s: Scenario, enrolled: Children, months: np.ndarray, sizes: tuple[int, ...], streams: Streams) -> FollowUp:
    """The untreated follow-up of the ``enrolled`` children (stored in ``sizes`` groups) at ``months`` ((V,), or
    each child's (R, N, V)), from the streams ``limit``, ``rate``, ``occasion``, ``measurement``, ``response``
    and ``responder``."""
    true, growth = natural_history.true_scores(s.natural_history, enrolled.gmfcs, enrolled.age, months, sizes,
                                               streams)
    noise = natural_history.measurement_noise(sizes, enrolled.gmfcs.shape[0], months.shape[-1], streams)
    recipient = treatment.recipients(s.treatment, enrolled, growth.limit, sizes, streams)
    return FollowUp(months=months, true=true, noise=noise, recipient=recipient)


def follow(s: Scenario, regimen: Regimen, children: FollowUp, where: slice | np.ndarray = slice(None), *,
           dose_months: list[np.ndarray] | None = None, nonspecific: bool = True,
           without_cells: bool = False) -> Followed:
    """Observed GMFM-66 of the children ``where`` (a slice of the child axis or an ``(R, N)`` mask, as
    :func:`cbcp_sim.models.layout.pick` takes) under ``regimen``.

    ``dose_months``: one per dose, each child's actual month of that dose ``(R, N)`` (default: the schedule's).
    ``nonspecific=False`` leaves out the expectation response and assessor bias (the cells alone);
    ``without_cells=True`` also observes the same children under the regimen without its cell effect (the
    trial with no effect), from the same noise.
    """
    nh, t = s.natural_history, s.treatment
    months = children.months if children.months.ndim == 1 else pick(children.months, where)
    base = pick(children.true, where)
    if nonspecific:
        extra = treatment.nonspecific(t, regimen, s.design.blinding, months)
        if extra.any():
            base = base + extra
    noise = pick(children.noise, where)
    if not regimen.doses:
        scores = natural_history.observe(nh, base, noise)
        return Followed(scores=scores, without_cells=scores if without_cells else None,
                        cell_effect=np.zeros(base.shape))
    null = natural_history.observe(nh, base, noise) if without_cells else None
    effect = treatment.cell_effect(t, regimen, months, **{k: pick(v, where) for k, v in children.recipient.items()},
                                   dose_months=None if dose_months is None else [pick(g, where)
                                                                                 for g in dose_months])
    return Followed(scores=natural_history.observe(nh, base + effect, noise), without_cells=null,
                    cell_effect=effect)
