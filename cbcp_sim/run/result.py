"""The result of a simulation run: tidy summary rows, per-replicate arrays, and a readable print."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cbcp_sim.analysis import ESTIMAND
from cbcp_sim.analysis.metrics import wilson
from cbcp_sim.errors import SettingsError
from cbcp_sim.run.comparisons import comparisons
from cbcp_sim.run.settings import CHUNK_SIZE
from cbcp_sim.scenario import Scenario

if TYPE_CHECKING:
    import pandas as pd

#: Fields of the primary analysis repeated at the top level of ``--json`` (a public interface).
PRIMARY_FIELDS = ("analysis", "comparison", "power", "mcse", "ci_low", "ci_high", "type1_error", "type1_mcse",
                  "type1_ci_low", "type1_ci_high", "true_effect", "mean_estimate", "bias", "bias_mcse",
                  "empirical_se", "rmse", "coverage", "n_failed", "power_all_trials")


@dataclass(frozen=True)
class SimulationResult:
    """Operating characteristics of one scenario.

    ``rows`` has one dict per analysis (primary first); :attr:`table` is the same as a tidy
    DataFrame. ``replicates`` holds per-replicate arrays by analysis (estimate, se, df, p, reject,
    and the same under no effect), in replicate order.
    """

    scenario: Scenario
    rows: tuple[dict[str, Any], ...]
    n_reps: int
    seed: int
    jobs: int
    seconds: float
    true_effect: float
    screen_failure: float
    replicates: dict[str, dict[str, np.ndarray]] = field(repr=False)
    chunk_size: int = CHUNK_SIZE  #: replicates per chunk: part of the random-number layout
    #: With a trial calendar: per quantity (milestones in months since the first site opened, children
    #: screened, unit failures, share of visits missed, infusion wait in days) its mean and 5/50/95% quantiles.
    operations: dict[str, dict[str, float]] | None = None
    #: With interim looks: the group-sequential operating characteristics
    #: (:func:`cbcp_sim.run.monitoring.sequential_summary`).
    sequential: dict[str, Any] | None = None
    #: The true effect (GMFM-66 points) of each comparison, by label (:attr:`true_effect` is the first's).
    true_effects: dict[str, float] = field(default_factory=dict)
    #: With two or more arm comparisons: per analysis, the family-wise error (``rate``: the share of trials under
    #: no effect rejecting at least one arm comparison, as adjusted by ``analysis.multiplicity``), its ``mcse`` and
    #: Wilson 95% interval (``ci_low``, ``ci_high``): :func:`cbcp_sim.analysis.metrics.familywise`.
    familywise: dict[str, dict[str, float]] | None = None
    #: With a ``[bayes]`` section: the go/no-go rule's operating characteristics
    #: (:func:`cbcp_sim.run.bayes.operating_characteristics`).
    bayes: dict[str, Any] | None = None
    #: With a ``[bayes]`` section, per pass (``"alt"``, ``"null"``): what its decisions read, the first
    #: comparison's primary estimates (:class:`~cbcp_sim.analysis.Estimates`) or arms' means
    #: (:class:`~cbcp_sim.analysis.arm_means.ArmMeans`); kept with the replicates.
    bayes_data: dict[str, Any] = field(default_factory=dict, repr=False)
    #: With ``analysis.tipping_deltas``: the delta-adjusted sensitivity analysis of the primary analysis of the
    #: first comparison (:func:`cbcp_sim.analysis.tipping_point.summary`, with its ``analysis`` and ``comparison``);
    #: each trial's tipping point is in :attr:`replicates` (``tipping_point``).
    tipping_point: dict[str, Any] | None = None
    #: With ``analysis.dose_slope``: the slopes of change on dose among the treated children, unadjusted and adjusted
    #: (:func:`cbcp_sim.analysis.dose_slope.summary`, with the ``treated`` arms, the ``scale`` and ``adjusted_for``);
    #: each trial's slopes and true slope are in :attr:`replicates` (``dose_slope``).
    dose_slope: dict[str, Any] | None = None
    #: With ``analysis.dose_response_models``: MCP-Mod of every trial (:func:`cbcp_sim.analysis.dose_response.summary`
    #: with the ``models``, ``doses``, ``delta``, ``true_effects`` and ``true_curve``); per-trial results are in
    #: :attr:`replicates` (``dose_response``).
    dose_response: dict[str, Any] | None = None

    @property
    def dose_response_primary(self) -> bool:
        """MCP-Mod's test is the scenario's primary analysis (``analysis.dose_response_primary``): the design's
        power (:attr:`design_power`) is its power."""
        return bool(self.scenario.analysis.dose_response_primary) and self.dose_response is not None

    @property
    def primary(self) -> dict[str, Any]:
        """Summary of the primary analysis (of the first comparison)."""
        return self.rows[0]

    @property
    def comparisons(self) -> tuple[str, ...]:
        """The labels of the design's comparisons, in order: the first is the one :attr:`primary` reports and,
        with interim looks, the one monitored."""
        return tuple(dict.fromkeys(r["comparison"] for r in self.rows))

    def comparison(self, comparison: str | None = None) -> str:
        """The label of ``comparison`` (None: the first), checked: an unknown label is refused with the labels
        listed; with interim looks, so is any but the first (the only one monitored)."""
        return choose_comparison(self.comparisons, comparison, monitored=self.sequential is not None)

    def row(self, comparison: str | None = None, analysis: str | None = None) -> dict[str, Any]:
        """Summary of ``analysis`` (default the primary analysis) for ``comparison`` (a label such as ``"two
        doses vs sham"``; default the first comparison)."""
        label = choose_comparison(self.comparisons, comparison, monitored=False)
        name = analysis or self.scenario.analyses[0]
        for r in self.rows:
            if r["comparison"] == label and r["analysis"] == name:
                return r
        raise SettingsError("analysis", f"{name!r} is not an analysis of this run; its analyses: "
                                        f"{', '.join(map(repr, self.scenario.analyses))}")

    @property
    def successes(self) -> tuple[int, int]:
        """Trials that succeeded and trials counted, for the design as run: with interim looks, rejection at
        any look (the group-sequential power); else the primary analysis's rejection. Failed analyses are
        not counted. Of the first comparison: :meth:`successes_for` names another."""
        return self.successes_for(None)

    def successes_for(self, comparison: str | None = None) -> tuple[int, int]:
        """:attr:`successes` of ``comparison`` (a label; None: the first): the primary analysis's rejections of
        that comparison (adjusted for multiplicity as the scenario says). With interim looks only the first
        comparison is monitored, and another is refused. With a ``[bayes]`` section, the first comparison
        succeeds on a GO (so sample size, assurance and sensitivity plan for P(GO)); with
        ``analysis.dose_response_primary``, when MCP-Mod's test finds a dose-response (so they plan for its
        power)."""
        label = self.comparison(comparison)
        if self.dose_response_primary and label == self.comparisons[0]:
            assert self.dose_response is not None
            power, failed = self.dose_response["power"], self.dose_response["n_failed"]
        elif self.bayes is not None and label == self.comparisons[0]:
            power, failed = self.bayes["p_go"], self.bayes["n_failed"]
        elif self.sequential is not None:
            power, failed = self.sequential["power"], self.sequential["n_failed"]
        else:
            row = self.row(label)
            power, failed = row["power"], row["n_failed"]
        trials = self.n_reps - failed
        return (round(power * trials) if trials else 0), trials

    @property
    def design_power(self) -> dict[str, float]:
        """Power of the design as run (see :attr:`successes`) with its MCSE and Wilson 95% interval."""
        return self.design_power_for(None)

    def design_power_for(self, comparison: str | None = None) -> dict[str, float]:
        """:attr:`design_power` of ``comparison`` (a label; None: the first; see :meth:`successes_for`)."""
        k, n = self.successes_for(comparison)
        p = k / n if n else math.nan
        low, high = wilson(k, n)
        return {"power": p, "mcse": math.sqrt(p * (1 - p) / n) if n else math.nan, "ci_low": low, "ci_high": high}

    def true_effect_for(self, comparison: str | None = None) -> float:
        """The true effect (GMFM-66 points) of ``comparison`` (a label; None: the first)."""
        label = choose_comparison(self.comparisons, comparison, monitored=False)
        if label == self.comparisons[0]:
            return self.true_effect
        return self.true_effects.get(label, math.nan)

    def replicates_for(self, comparison: str | None = None, analysis: str | None = None) -> dict[str, np.ndarray]:
        """The per-replicate arrays (:attr:`replicates`) of ``analysis`` (default the primary analysis) for
        ``comparison`` (a label; None: the first)."""
        label = choose_comparison(self.comparisons, comparison, monitored=False)
        name = analysis or self.scenario.analyses[0]
        return self.replicates[name if label == self.comparisons[0] else f"{name}: {label}"]

    @property
    def table(self) -> pd.DataFrame:
        """One row per analysis: power, MCSE, interval, type I error, bias, RMSE, coverage, ..."""
        import pandas as pd

        return pd.DataFrame(list(self.rows))

    def replicate_table(self) -> pd.DataFrame:
        """One row per replicate and analysis (long format); ``analysis`` is the key of :attr:`replicates`."""
        import pandas as pd

        frames = [pd.DataFrame({"analysis": name, "replicate": np.arange(self.n_reps), **arrays})
                  for name, arrays in self.replicates.items()]
        return pd.concat(frames, ignore_index=True)

    def command(self, file: str = "scenario.toml") -> str:
        """The command that runs this result again from ``file``, the scenario's :meth:`Scenario.to_toml` saved
        there (any number of jobs gives the same result)."""
        if self.chunk_size == CHUNK_SIZE:
            return f"cbcp-sim run {file} --reps {self.n_reps} --seed {self.seed}"
        return (f"python -c \"import cbcp_sim; print(cbcp_sim.simulate('{file}', reps={self.n_reps}, "
                f"seed={self.seed}, chunk_size={self.chunk_size}))\"")

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object: the primary analysis at top level, every analysis under ``analyses``; each
        with what it estimates (``estimand``, in ``unit``), and the ``endpoint`` analysed; the primary analysis's
        family-wise error (``familywise_*``, null with fewer than two arm comparisons)."""
        s = self.scenario
        out = {k: self.primary[k] for k in PRIMARY_FIELDS}
        error = (self.familywise or {}).get(self.primary["analysis"], {})
        out.update({f"familywise_{'error' if k == 'rate' else k}": error.get(k)
                    for k in ("rate", "mcse", "ci_low", "ci_high")})
        out.update(described(s, self.primary["analysis"]))
        out.update({"endpoint": s.analysis.endpoint, "endpoint_text": endpoint_text(s),
                    "n_reps": self.n_reps, "seed": self.seed, "jobs": self.jobs, "seconds": self.seconds,
                    "screen_failure": self.screen_failure, "title": self.scenario.title,
                    "heading": self.scenario.heading, "effect": self.scenario.origin.effect,
                    "changes": [{"path": p, "value": v} for p, v in self.scenario.origin.changes],
                    "scenario_digest": self.scenario.digest(),
                    "analyses": [{**r, **described(s, r["analysis"])} for r in self.rows],
                    "scenario_toml": self.scenario.to_toml(), "command": self.command()})
        if self.operations is not None:
            out["operations"] = self.operations
        if self.sequential is not None:
            out["sequential"] = self.sequential
        if self.bayes is not None:
            out["bayes"] = self.bayes
        if self.tipping_point is not None:
            out["tipping_point"] = self.tipping_point
        if self.dose_slope is not None:
            out["dose_slope"] = self.dose_slope
        if self.dose_response is not None:
            out["dose_response"] = self.dose_response
        return out

    def __str__(self) -> str:
        s = self.scenario
        d = s.design
        arms = ", ".join(f"{a} {n}" for a, n in zip(d.arms, d.n_per_arm, strict=True))
        sided = "two-sided" if d.sides == 2 else "one-sided"
        lines = [s.heading,
                 f"  design   {arms}; primary visit month {d.primary_visit:g}; alpha {d.alpha:g} {sided}",
                 f"  model    {s.outcome.model}; {self.n_reps:,} replicates; seed {self.seed}; "
                 f"{self.seconds:.2f} s"]
        if s.outcome.model == "gmfm66":
            lines.append("  arms     " + "; ".join(f"{r.name}: {r.describe()}" for r in s.regimens)
                         + f"; blinding {d.blinding}")
            lines.append(f"  children {s.population.source} source; screen failures {100 * self.screen_failure:.1f}%")
        lines.append(f"  endpoint {endpoint_text(s)}")
        several = len({r["comparison"] for r in self.rows}) > 1
        for r in self.rows:
            lines += [
                f"  {r['analysis']} ({r['role']})" + (f", {r['comparison']}" if several else "")
                + f": {estimand(s, r['analysis'])}",
                f"    power         {r['power']:.3f}  MCSE {r['mcse']:.4f}  "
                f"95% CI {r['ci_low']:.3f} to {r['ci_high']:.3f}",
                f"    type I error  {r['type1_error']:.4f}  MCSE {r['type1_mcse']:.4f}  (nominal {d.alpha:g})",
                _effect_line(r),
                f"    RMSE {r['rmse']:.3f}  coverage {r['coverage']:.3f}  failed replicates {r['n_failed']}"
                if math.isfinite(r["true_effect"]) else f"    failed replicates {r['n_failed']}",
            ] + ([f"    power over all {r['n_reps']} trials {r['power_all_trials']:.3f} (a failed analysis counted "
                  "as not significant; power above is over analysed trials)"] if r["n_failed"] else [])
        lines += (_familywise_lines(self.familywise, s.analysis.multiplicity, d.alpha)
                  + _operations_lines(self.operations) + _sequential_lines(self.sequential, self.comparisons[0])
                  + _bayes_lines(self.bayes, s, self.comparisons[0]) + _tipping_lines(self.tipping_point, s)
                  + _dose_slope_lines(self.dose_slope, s) + _dose_response_lines(self.dose_response, s))
        return "\n".join(lines)


def choose_comparison(labels: tuple[str, ...], comparison: str | None, *, monitored: bool = False) -> str:
    """The comparison label ``comparison`` among ``labels`` (None: the first). An unknown label is refused (the
    parameter ``comparison``) with the labels listed; with interim looks (``monitored``) any but the first is
    refused, as only the first comparison is monitored."""
    if comparison is None:
        return labels[0]
    if comparison not in labels:
        raise SettingsError("comparison", f"{comparison!r} is not a comparison of this design; its comparisons: "
                                          f"{', '.join(map(repr, labels))}")
    if monitored and comparison != labels[0]:
        raise SettingsError("comparison", f"with interim looks (sequential.interims) only the first comparison, "
                                          f"{labels[0]!r}, is monitored; {comparison!r} has no group-sequential "
                                          "power")
    return comparison


def scenario_comparison(s: Scenario, comparison: str | None, *, monitored: bool | None = None) -> str:
    """:func:`choose_comparison` among the comparisons of scenario ``s``, before anything runs (``monitored``:
    whether only the first may be chosen; default, when ``s`` has interim looks)."""
    return choose_comparison(tuple(c.label for c in comparisons(s)), comparison,
                             monitored=bool(s.sequential.interims) if monitored is None else monitored)


def endpoint_text(s: Scenario) -> str:
    """What the analyses compare, in words: the change from baseline or the score at the primary visit
    (``analysis.endpoint``), and which analyses it does not touch."""
    at = f"month {s.design.primary_visit:g}"
    text = (f"change from baseline to {at} (analysis.endpoint = \"change\")" if s.analysis.endpoint == "change"
            else f"final score at {at}, not the change from baseline (analysis.endpoint = \"final\")")
    adjusted = [a for a in s.analyses if a in ("ancova", "mmrm")]
    changes = [a for a in s.analyses if a not in (*ENDPOINT_ANALYSES, *adjusted)]
    if adjusted:
        text += (f"; {_listed(adjusted)} {'adjusts' if len(adjusted) == 1 else 'adjust'} for baseline: the "
                 "same estimate for change or final score")
    if changes:
        text += (f"; {_listed(changes)} {'compares' if len(changes) == 1 else 'compare'} changes whatever "
                 "the endpoint")
    return text


def _listed(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


#: Analyses whose compared value follows ``analysis.endpoint`` (ancova and mmrm adjust for baseline, which
#: gives the same estimate either way; crossover and single-arm analyses compare changes).
ENDPOINT_ANALYSES = ("ttest", "welch", "wilcoxon", "fisher", "chisquare")


def estimand(s: Scenario, analysis: str) -> str:
    """What ``analysis`` estimates in scenario ``s``, in words with its unit: GMFM-66 points (``outcome units``
    for the normal and mvn models), or, where the estimate is not in points, what it is instead (a difference in
    responder proportions, with no df)."""
    points = "GMFM-66 points" if s.outcome.model == "gmfm66" else "outcome units"
    at = f"month {s.design.primary_visit:g}"
    y = "change from baseline" if s.analysis.endpoint == "change" else "score"
    text = {
        "ttest": f"difference in mean {y} at {at}, active minus control ({points})",
        "welch": f"difference in mean {y} at {at}, active minus control ({points}; Welch df)",
        "ancova": f"baseline-adjusted difference in mean score at {at}, active minus control ({points})",
        "mmrm": f"baseline-adjusted difference in mean score at {at} from every visit, active minus control "
                f"({points})",
        "wilcoxon": f"Hodges-Lehmann shift in {y} at {at}, active minus control ({points}; no df; its true "
                    "value is not computed)",
        "fisher": f"difference in the proportion of responders ({y} at {at} >= {s.analysis.mcid:g} points), active "
                  f"minus control: a proportion, not {points}; no df",
        "chisquare": f"difference in the proportion of responders ({y} at {at} >= {s.analysis.mcid:g} points), "
                     f"active minus control: a proportion, not {points}; no df",
        "crossover": f"within-child effect of cells, period-adjusted (half the difference between sequences of "
                     f"period-1 minus period-2 change; {points})",
        "period2": f"difference in mean period-2 change, cells then minus cells earlier ({points})",
        "above_expected": f"mean change from baseline to {at} above the expected natural change ({points})",
        "count_above": f"proportion of children above their expected change at {at}, minus one half: a "
                       f"proportion, not {points}; no df; its true value is not computed",
        "before_after": f"mean change from baseline to {at}, against no change ({points})",
    }
    return text.get(analysis, analysis)


def unit(s: Scenario, analysis: str) -> str:
    """The unit of ``analysis``'s estimate: ``GMFM-66 points`` (``outcome units`` for the normal and mvn models) or
    ``proportion``."""
    if ESTIMAND.get(analysis, "points") == "responders" or analysis == "count_above":
        return "proportion"
    return "GMFM-66 points" if s.outcome.model == "gmfm66" else "outcome units"


def described(s: Scenario, analysis: str) -> dict[str, str]:
    """The JSON fields that say what ``analysis`` estimates: ``estimand`` (in words) and ``unit``."""
    return {"estimand": estimand(s, analysis), "unit": unit(s, analysis)}


#: Labels of the calendar quantities printed, in months unless said.
OPERATIONS_LABELS = {"last_child_in": "last child randomised", "last_primary_visit": "last primary visit",
                     "database_lock": "database lock", "screened": "children screened",
                     "infusion_wait_days": "wait for infusion (days)", "missed_visits": "visits missed (share)"}


def _familywise_lines(errors: dict[str, dict[str, float]] | None, method: str, alpha: float) -> list[str]:
    if errors is None:
        return []
    adjusted = "not adjusted" if method == "none" else f"adjusted by {method}"
    return [f"  family-wise error: under no effect, any arm comparison rejecting ({adjusted}; nominal {alpha:g})"] + [
        f"    {name:<13} {e['rate']:.4f}  MCSE {e['mcse']:.4f}  95% CI {e['ci_low']:.4f} to {e['ci_high']:.4f}"
        for name, e in errors.items()]


def _operations_lines(ops: dict[str, dict[str, float]] | None) -> list[str]:
    if ops is None:
        return []
    lines = ["  calendar (months since the first site opened; median, 5-95%)"]
    for key, label in OPERATIONS_LABELS.items():
        q = ops[key]
        digits = 3 if key == "missed_visits" else 1
        lines.append(f"    {label:<26}{q['q50']:8.{digits}f}  ({q['q05']:.{digits}f} to {q['q95']:.{digits}f})")
    return lines


def _sequential_lines(seq: dict[str, Any] | None, monitored: str = "") -> list[str]:
    if seq is None:
        return []
    looks = ", ".join(f"{x:.3g}" for x in seq["interims"])
    parameter = seq.get("spending_parameter")  # absent from results saved before it was reported
    spending = seq["spending"] if parameter is None else f"{seq['spending']} ({parameter:g})"
    lines = [f"  group sequential, monitoring {monitored} only ({spending} spending; interims at "
             f"{seq['timing']} {looks}; the analyses above are the fixed design, without interim stopping)",
             f"    power         {seq['power']:.3f}  MCSE {seq['mcse']:.4f}",
             f"    type I error  {seq['type1_error']:.4f}  MCSE {seq['type1_mcse']:.4f}  (nominal {seq['alpha']:g} "
             "one-sided)",
             "    look   month  fraction  stop for efficacy  futility   (under no effect)"]
    for k in range(seq["looks"]):
        lines.append(f"    {k + 1:>4}  {seq['look_months'][k]:6.1f}  {seq['look_fraction'][k]:8.3f}  "
                     f"{seq['stop_efficacy'][k]:17.3f}  {seq['stop_futility'][k]:8.3f}   "
                     f"({seq['null_stop_efficacy'][k]:.3f}, {seq['null_stop_futility'][k]:.3f})")
    if "expected_information_n" in seq:  # absent from results saved before it was reported
        lines.append(f"    expected children analysed at the stopping look {seq['expected_information_n']:.1f} "
                     f"({seq['null_expected_information_n']:.1f})")
    lines.append(f"    expected children randomised {seq['expected_children']:.1f} "
                 f"({seq['null_expected_children']:.1f}); "
                 f"expected months {seq['expected_months']:.1f} ({seq['null_expected_months']:.1f}); "
                 f"failed final analyses {seq['n_failed']}"
                 + (f" (power over all trials {seq['power_all_trials']:.3f})" if seq["n_failed"] else ""))
    return lines


def _effect_line(r: dict[str, Any]) -> str:
    if not math.isfinite(r["true_effect"]):
        return f"    effect        mean estimate {r['mean_estimate']:.3f} (its true value is not computed)"
    return (f"    effect        true {r['true_effect']:.3f}  mean estimate {r['mean_estimate']:.3f}  "
            f"bias {r['bias']:+.3f} (MCSE {r['bias_mcse']:.3f})")


def _bayes_lines(b: dict[str, Any] | None, s: Scenario, compared: str) -> list[str]:
    if b is None:
        return []
    if b["prior_on"] == "effect":
        prior = "a flat prior" if b["prior_components"] is None else f"a {mixture_text(b['prior_components'])} prior"
        read = f"{b['likelihood']} likelihood of {s.analyses[0]}'s estimate"
        ess = f"prior ESS {b['prior_ess']:.1f} children per arm ({b['ess_method']})"
    else:
        prior = f"a {mixture_text(b['prior_components'])} prior on the control mean ({b['control']})"
        read = f"{b['likelihood']} likelihood of each arm's mean {_bayes_endpoint(b['endpoint'])}"
        ess = (f"prior ESS {b['prior_ess']:.1f} controls ({b['ess_method']}); controls borrowed on average "
               f"{_or_none(b['borrowed_controls'], '.1f')} ({_or_none(b['borrowed_controls_null'], '.1f')}); "
               f"drift {b['drift']:+g}")
    conflict = (f"; prior-data conflict {_or_none(b['conflict_rate'], '.3f')} "
                f"({_or_none(b['conflict_rate_null'], '.3f')})" if b["conflict_rate"] is not None else "")
    level = f"{100 * b['credible_level']:g}%"
    return [f"  Bayesian go/no-go, {compared}: {prior}, {read}; under no effect in brackets",
            f"    GO if P(effect > {b['go_threshold']:g}) >= {b['go_probability']:g}; NO-GO if P(effect < "
            f"{b['nogo_threshold']:g}) >= {b['nogo_probability']:g}; else GRAY",
            f"    P(GO)     {b['p_go']:.3f}  MCSE {b['p_go_mcse']:.4f}   ({b['p_go_null']:.4f}  MCSE "
            f"{b['p_go_null_mcse']:.4f}: the Bayesian type I error)",
            f"    P(NO-GO)  {b['p_nogo']:.3f}  MCSE {b['p_nogo_mcse']:.4f}   ({b['p_nogo_null']:.4f})",
            f"    P(GRAY)   {b['p_gray']:.3f}  MCSE {b['p_gray_mcse']:.4f}   ({b['p_gray_null']:.4f})",
            f"    posterior mean bias {b['posterior_mean_bias']:+.3f} (MCSE {b['posterior_mean_bias_mcse']:.3f}); "
            f"RMSE {b['posterior_rmse']:.3f}; {level} credible interval coverage {b['coverage']:.3f} "
            f"({b['coverage_null']:.3f})",
            f"    {ess}{conflict}; failed {b['n_failed']}"] + ([
            f"    stopped for futility (predictive P(final GO) < {b['futility_predictive']:g}) at each interim: "
            + ", ".join(f"{x:.3f}" for x in b["p_stop_futility"]) + " ("
            + ", ".join(f"{x:.3f}" for x in b["p_stop_futility_null"]) + "); a stop is a NO-GO"]
            if b.get("p_stop_futility") is not None else [])


def _tipping_lines(t: dict[str, Any] | None, s: Scenario) -> list[str]:
    if t is None:
        return []
    points = "GMFM-66 points" if s.outcome.model == "gmfm66" else "outcome units"
    lines = [f"  tipping point, {t['analysis']} ({t['comparison']}): the active arm's children missing at month "
             f"{s.design.primary_visit:g} ({100 * t['missing_share']:.1f}% on average) scoring delta {points} below "
             "what missing at random predicts",
             "    delta      power   MCSE    (still significant in the direction of the primary test)"]
    lines += [f"    {d:8.3g}  {p:6.3f}  {m:.4f}" for d, p, m in zip(t["deltas"], t["power"], t["mcse"], strict=True)]
    quartiles = "  ".join(f"{k} {_delta_text(t[k])}" for k in ("q25", "median", "q75"))
    lines.append(f"    tipping point over the {t['n_significant']:,} trials significant in favour of the active arm: "
                 f"{quartiles}; infinite (no active child missing) {_or_none(t['share_infinite'], '.3f')}")
    return lines


def _dose_slope_lines(b: dict[str, Any] | None, s: Scenario) -> list[str]:
    if b is None:
        return []
    unit = "10^7 TNC/kg" if b["scale"] == "linear" else "unit log dose (an e-fold dose)"
    lines = [f"  dose slope, {b['treated']}: GMFM-66 change at month {s.design.primary_visit:g} per {unit}, over the "
             "treated children's own (not randomised) doses",
             f"    true slope {b['true_slope']:.3f} (MCSE {b['true_slope_mcse']:.3f}; each child's effect over the "
             f"trial's doses: what randomised doses would show); effects received on doses received "
             f"{b['received_slope']:.3f}", *_estimator_lines(b)]
    strata = b.get("strata")
    if strata is not None:
        cuts = ", ".join(f"{x:g}" for x in strata["cuts"])
        lines += [f"  by dose strata cut at {cuts} x 10^7 TNC/kg: trend of the change per stratum (one cut: higher "
                  "minus lower stratum)",
                  f"    true trend {strata['true_slope']:.3f} (MCSE {strata['true_slope_mcse']:.3f}); effects "
                  f"received {strata['received_slope']:.3f}", *_estimator_lines(strata)]
    lines.append(f"    adjusted for {', '.join(b['adjusted_for'])}; power: a significant positive slope; no-effect "
                 "positive: the same in the trials without cell effect")
    return lines


def _estimator_lines(b: dict[str, Any]) -> list[str]:
    """The unadjusted and adjusted rows of a dose-slope block (or of its strata)."""
    lines = ["    estimator    mean     bias (MCSE)        RMSE   coverage  power (MCSE)     no-effect positive"]
    for name in ("unadjusted", "adjusted"):
        e = b[name]
        lines.append(f"    {name:<11} {e['mean_estimate']:7.3f}  {e['bias']:7.3f} ({e['bias_mcse']:.3f})  "
                     f"{e['rmse']:7.3f}  {e['coverage']:7.3f}   {e['power']:.3f} ({e['power_mcse']:.4f})  "
                     f"{e['type1']:.3f} ({e['type1_mcse']:.4f})"
                     + (f"  failed {e['n_failed']}" if e["n_failed"] else ""))
    return lines


def _dose_response_lines(b: dict[str, Any] | None, s: Scenario) -> list[str]:
    if b is None:
        return []
    def num(x: float | None, f: str = ".3f") -> str:
        return "n/a" if x is None else format(x, f)
    doses = ", ".join(f"{x:g}" for x in b["doses"])
    fit = "MMRM" if s.analysis.primary == "mmrm" else "ANCOVA"
    lines = [f"  MCP-Mod dose-response, {fit} at month {s.design.primary_visit:g}, doses {doses} x 10^7/kg, "
             f"models {', '.join(b['models'])} (one-sided alpha {b['alpha']:g})",
             f"    true effects {', '.join(f'{x:.2f}' for x in b['true_effects'])}; true curve there "
             f"{', '.join(f'{x:.2f}' for x in b['true_curve'])}; true TD ({b['delta']:g} points) {num(b['true_td'])}",
             f"    power {b['power']:.3f} (MCSE {b['power_mcse']:.4f}); type I error without effect {b['type1']:.4f} "
             f"(MCSE {b['type1_mcse']:.4f})" + (f"; failed {b['n_failed']}" if b["n_failed"] else ""),
             "    selected " + ", ".join(f"{k} {v:.3f}" for k, v in b["selection"].items()) + " (no rejection: "
             f"{1 - sum(b['selection'].values()):.3f})",
             ] + [_dose_estimate_line(b, name, label) for name, label in (("td", "TD"), ("ed50", "ED50"))]
    if b["primary"]:
        lines.insert(1, "    the scenario's primary analysis (analysis.dose_response_primary): its power is the "
                        "design's, which sample-size, sweep, assurance and sensitivity plan on")
    return lines


def _dose_estimate_line(b: dict[str, Any], name: str, label: str) -> str:
    """One line of the TD's or the ED50's operating characteristics in the ``dose_response`` block."""
    def num(key: str) -> str:
        return _or_none(b[key], ".3f")
    return (f"    {label} ({b['selection_method']}; true {num(f'true_{name}')}) over {b[f'n_{name}']:,} trials: "
            f"mean {num(f'{name}_mean')}, bias {num(f'{name}_bias')} (MCSE {num(f'{name}_bias_mcse')}), "
            f"RMSE {num(f'{name}_rmse')}, within 25% of the truth {num(f'{name}_within_25')}; "
            f"{100 * b['interval_level']:g}% interval (within the doses) length mean {num(f'{name}_interval_mean')}, "
            f"median {num(f'{name}_interval_median')}, coverage {num(f'{name}_coverage')}")


def _delta_text(x: float | None) -> str:
    return "n/a" if x is None or math.isnan(x) else "inf" if math.isinf(x) else f"{x:.2f}"


def _or_none(x: float | None, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def mixture_text(components: list[dict[str, float]]) -> str:
    """``N(1.4, 0.8^2)`` or ``0.8 N(1.4, 0.8^2) + 0.2 N(1.4, 4.9^2)``."""
    if len(components) == 1:
        c = components[0]
        return f"N({c['mean']:.3g}, {c['sd']:.3g}^2)"
    return " + ".join(f"{c['weight']:.3g} N({c['mean']:.3g}, {c['sd']:.3g}^2)" for c in components)


def _bayes_endpoint(endpoint: str) -> str:
    return "change from baseline" if endpoint == "change" else "change minus expected natural change"
