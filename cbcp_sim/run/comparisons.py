"""What each simulated trial compares: every active arm against the reference arm, optionally split by
dose stratum, or a single arm against its expected natural change."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cbcp_sim.scenario import Scenario


@dataclass(frozen=True)
class Comparison:
    """``active`` arm against ``control`` arm (``None``: against expectation), in dose stratum ``dose``
    (``"high"``: at or above ``design.dose_threshold``, ``"low"``: below; ``None``: every child). A child's
    dose is the one the population model gives it, known for control children too (their own banked unit,
    or the allogeneic dose)."""

    label: str
    active: int
    control: int | None
    dose: str | None = None

    @property
    def multiplicity(self) -> bool:
        """Whether the comparison is one of the arm comparisons adjusted together for multiplicity."""
        return self.dose is None and self.control is not None

    def groups(self, arm: np.ndarray, dose: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Masks of the active group and of the children in the comparison, ``(N,)`` for an ``(N,)`` ``arm``
        outside dose strata, else ``(R, N)``: in a dose stratum, the children of both arms whose (banked or
        assigned) dose falls in it, so the comparison stays randomised."""
        active, control = arm == self.active, (arm == self.control) if self.control is not None else None
        if self.dose is not None:
            stratum = self.stratum(dose, threshold)
            active, control = active & stratum, (control & stratum) if control is not None else None
        return active, active if control is None else active | control

    def stratum(self, dose: np.ndarray, threshold: float) -> np.ndarray:
        """``(R, N)`` children (of any arm) in this comparison's dose stratum (``dose`` must be set)."""
        return (dose >= threshold) if self.dose == "high" else (dose < threshold)


def comparisons(s: Scenario) -> tuple[Comparison, ...]:
    """The comparisons of ``s``'s design, arm comparisons first."""
    d = s.design
    if d.kind == "single_arm":
        return (Comparison(label=f"{d.arms[0]} vs expected", active=0, control=None),)
    out = [Comparison(label=f"{name} vs {d.arms[0]}", active=j, control=0) for j, name in enumerate(d.arms) if j]
    if s.analysis.dose_strata:
        for j, name in enumerate(d.arms[1:], start=1):
            out.append(Comparison(label=f"{name} dose >= {d.dose_threshold:g} vs {d.arms[0]}", active=j, control=0,
                                  dose="high"))
            out.append(Comparison(label=f"{name} dose < {d.dose_threshold:g} vs {d.arms[0]}", active=j, control=0,
                                  dose="low"))
    return tuple(out)
