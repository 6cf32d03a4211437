"""Scenario files: TOML validated into a frozen, typed Scenario with cited defaults and one-line errors.

Spec lines pinned here (issue): "Scenario files in TOML, validated into a frozen, typed Scenario. Every
parameter has a default whose source is cited. A wrong key, type or range gives one line naming the dotted
field and what is allowed." Plus presets by cell product, dotted overrides (``--set``) and the digest.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
from pathlib import Path

import pytest

import cbcp_sim
from cbcp_sim import Scenario, ScenarioError, load_scenario, scenario_from_dict
from cbcp_sim.scenario import default_scenario_path, parse_value, products
from cbcp_sim.scenario.products import PRESETS as CELL_PRESETS
from cbcp_sim.scenario.products import DoseResponse
from cbcp_sim.scenario.schema import describe

DEFAULT_TOML = Path(__file__).resolve().parents[1] / "scenarios" / "default.toml"
PRESET_KEYS = ("onset_months", "peak_months", "waning_half_life_months", "persistent_fraction")


def _get(scenario: Scenario, dotted: str):
    node = scenario
    for key in dotted.split("."):
        node = node[key] if isinstance(node, dict) else getattr(node, key)
    return node


# --- defaults and their sources ---------------------------------------------------------------------------


def test_public_api_exports():
    """The package exposes load_scenario, scenario_from_dict, Scenario and ScenarioError (a ValueError)."""
    assert cbcp_sim.load_scenario is load_scenario
    assert cbcp_sim.scenario_from_dict is scenario_from_dict
    assert issubclass(ScenarioError, ValueError)


def test_every_parameter_has_doc_source_and_allowed():
    """Every parameter has a default whose source is cited (and a description and allowed values)."""
    rows = describe(Scenario)
    assert len(rows) > 30
    paths = [r["path"] for r in rows]
    assert len(paths) == len(set(paths))
    for row in rows:
        for key in ("doc", "source", "allowed", "default"):
            assert row[key].strip(), f"{row['path']} has an empty {key}"


def test_describe_covers_the_issue_keys():
    """describe() lists the keys the issue names as public (normal model, design, analysis, presets)."""
    paths = {r["path"] for r in describe(Scenario)}
    for path in ("outcome.model", "outcome.sd", "outcome.effect", "outcome.correlation", "design.n_per_arm",
                 "design.alpha", "design.sides", "analysis.primary", "treatment.cells",
                 "treatment.dose_response.emax", "treatment.waning_half_life_months"):
        assert path in paths


def test_every_described_path_resolves_on_a_scenario():
    """Each dotted path of describe() is a real attribute of a built Scenario (no stale documentation)."""
    scenario = scenario_from_dict({"arms": {"sham": {"kind": "sham"}}, "bayes": {},
                                   "assurance": {"priors": {"outcome.effect": {"distribution": "point", "value": 1}}}})
    prior = "assurance.priors.<name>."
    for row in describe(Scenario):
        path = row["path"]
        if path.startswith(prior):  # a prior is keyed by a dotted path
            getattr(scenario.assurance.priors["outcome.effect"], path.removeprefix(prior))
        else:
            _get(scenario, path.replace("<name>", "sham"))  # raises AttributeError if the path is wrong


def test_empty_dict_gives_the_declared_defaults():
    """Omitted values take the declared defaults; preset-driven fields come from the default cell preset."""
    s = scenario_from_dict({})
    assert s.design.alpha == 0.05
    assert s.design.sides == 2
    assert s.design.n_per_arm == (36, 36)
    assert s.design.primary_visit == 12.0
    assert s.analysis.primary == "ancova"
    assert s.outcome.model == "gmfm66"
    assert s.treatment.cells == "UCB-MNC"
    for key in PRESET_KEYS:
        assert getattr(s.treatment, key) == pytest.approx(CELL_PRESETS["UCB-MNC"][key])


def test_default_values_round_trip_through_validation():
    """to_dict() of a scenario validates back to the same scenario (every default passes its own check)."""
    s = scenario_from_dict({})
    assert scenario_from_dict(s.to_dict()) == s
    d = load_scenario(DEFAULT_TOML)
    assert scenario_from_dict(d.to_dict()) == d


# --- the default scenario file ----------------------------------------------------------------------------


def test_default_scenario_path_is_the_shipped_file():
    """With no SCENARIO the CLI runs scenarios/default.toml: default_scenario_path() points at it."""
    assert default_scenario_path().resolve() == DEFAULT_TOML
    assert load_scenario(default_scenario_path()) == load_scenario(DEFAULT_TOML)


def test_default_scenario_matches_what_it_says():
    """scenarios/default.toml: ages 2-10, GMFCS I-IV mix, sham vs cord blood, visits 0-12, primary month 12."""
    s = load_scenario(DEFAULT_TOML)
    assert "ages 2-10" in s.title
    assert s.population.ages == (2.0, 10.0)
    assert s.population.gmfcs_mix == pytest.approx((0.2, 0.3, 0.25, 0.25, 0.0))
    assert s.population.gmfcs_mix[4] == 0.0  # no GMFCS V
    assert s.population.source == "autologous"
    assert s.design.arms == ("sham", "cord blood")
    assert s.design.n_per_arm == (36, 36)
    assert s.design.visits == (0.0, 1.0, 3.0, 6.0, 12.0)
    assert s.design.primary_visit == 12.0
    assert s.primary_index == 4
    assert s.design.alpha == 0.05
    assert s.design.sides == 2
    assert s.treatment.cells == "UCB-MNC"
    assert s.treatment.dose_response.emax == 4.0
    assert s.analysis.primary == "ancova"
    assert s.analyses == ("ancova", "ttest")


def test_scenario_is_typed():
    """Values are converted to their declared types: TOML ints become floats where a number is declared."""
    s = load_scenario(DEFAULT_TOML)
    assert type(s.design.alpha) is float
    assert type(s.design.sides) is int
    assert all(type(a) is float for a in s.population.ages)  # written as [2, 10]
    assert all(type(v) is float for v in s.design.visits)
    assert all(type(n) is int for n in s.design.n_per_arm)
    assert isinstance(s.design.visits, tuple)
    assert isinstance(s.treatment.dose_response, DoseResponse)


# --- frozen -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target, attr, value", [
    ("scenario", "title", "changed"),
    ("design", "alpha", 0.1),
    ("dose_response", "emax", 9.0),
])
def test_scenario_is_frozen(target, attr, value):
    """The Scenario (and every section of it) is frozen: assignment raises."""
    s = scenario_from_dict({})
    obj = {"scenario": s, "design": s.design, "dose_response": s.treatment.dose_response}[target]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, attr, value)


def test_sequences_are_immutable():
    """Sequences are tuples, so a frozen scenario cannot be changed in place either."""
    s = scenario_from_dict({})
    with pytest.raises(AttributeError):
        s.design.visits.append(24.0)  # type: ignore[attr-defined]
    assert hash(s.design.visits) is not None


# --- design.n_per_arm ---------------------------------------------------------------------------------------


def test_n_per_arm_int_expands_to_every_arm():
    """design.n_per_arm as one number applies to every arm."""
    s = scenario_from_dict({"design": {"n_per_arm": 20}})
    assert s.design.n_per_arm == (20, 20)
    assert len(s.design.n_per_arm) == len(s.design.arms)


def test_n_per_arm_list_is_kept_control_first():
    """design.n_per_arm as a list gives one number per arm, control first."""
    s = scenario_from_dict({"design": {"n_per_arm": [30, 40]}})
    assert s.design.n_per_arm == (30, 40)
    assert s.design.arms[0] == "sham"


@pytest.mark.parametrize("value", [[30, 40, 50], []])
def test_n_per_arm_wrong_length_names_the_field(value):
    """A list of the wrong length is rejected, naming design.n_per_arm and the needed count."""
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict({"design": {"n_per_arm": value}})
    assert str(info.value).startswith("design.n_per_arm:")
    assert info.value.path == "design.n_per_arm"
    assert "2" in info.value.message


# --- cell presets -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cells", sorted(CELL_PRESETS))
def test_cells_preset_resolves_time_course(cells):
    """treatment.cells sets onset and waning from CELL_PRESETS."""
    t = scenario_from_dict({"treatment": {"cells": cells}}).treatment
    assert t.cells == cells
    for key in PRESET_KEYS:
        assert getattr(t, key) == pytest.approx(CELL_PRESETS[cells][key])


def test_uct_msc_preset_values():
    """UCT-MSC: slower rise (onset 3 months), half-life 12 ln 2, persistent 0.7 (ASSUMPTION after [Nouri 2025])."""
    t = scenario_from_dict({"treatment": {"cells": "UCT-MSC"}}).treatment
    assert t.onset_months == 3.0
    assert t.waning_half_life_months == pytest.approx(12 * math.log(2))
    assert t.persistent_fraction == 0.7


def test_explicit_value_overrides_preset():
    """An explicit treatment.onset_months overrides the preset; the other preset values still apply."""
    t = scenario_from_dict({"treatment": {"cells": "UCT-MSC", "onset_months": 2.0}}).treatment
    assert t.onset_months == 2.0
    assert t.persistent_fraction == CELL_PRESETS["UCT-MSC"]["persistent_fraction"]
    assert t.waning_half_life_months == pytest.approx(CELL_PRESETS["UCT-MSC"]["waning_half_life_months"])


def test_replace_cells_follows_the_new_preset():
    """Scenario.replace({"treatment.cells": ...}) takes the new product's time course, not the old one."""
    s = scenario_from_dict({"treatment": {"cells": "UCT-MSC"}})
    r = s.replace({"treatment.cells": "UCB-durable"})
    assert r.treatment.cells == "UCB-durable"
    for key in PRESET_KEYS:
        assert getattr(r.treatment, key) == pytest.approx(CELL_PRESETS["UCB-durable"][key])
    assert s.treatment.cells == "UCT-MSC"  # the original is unchanged


def test_cells_preset_resolves_dose_response():
    """treatment.cells also sets the dose-response of the product (UCT-MSC: Emax 2 at ED50 10^6/kg)."""
    dr = scenario_from_dict({"treatment": {"cells": "UCT-MSC"}}).treatment.dose_response
    assert (dr.model, dr.emax, dr.ed50, dr.hill) == ("emax", 2.0, 0.1, 1.0)
    r = scenario_from_dict({"treatment": {"cells": "UCT-MSC"}}).replace({"treatment.cells": "UCB-MNC"})
    assert r.treatment.dose_response.emax == CELL_PRESETS["UCB-MNC"]["emax"]


def test_replace_rederives_half_life_from_retained_fraction():
    """With retained_fraction set, replace() derives the half-life again for a new peak instead of
    keeping the old derived value (which would contradict the retained fraction)."""
    s = scenario_from_dict({}, {"treatment.retained_fraction": 0.5, "treatment.persistent_fraction": 0.0,
                                "treatment.peak_months": 6.0})
    assert s.treatment.waning_half_life_months == pytest.approx(6.0)
    r = s.replace({"treatment.peak_months": 3.0})
    assert r.treatment.waning_half_life_months == pytest.approx(9.0)


def test_replace_cells_keeps_an_explicit_non_preset_value():
    """An explicit value that differs from the preset survives a change of cells."""
    s = scenario_from_dict({"treatment": {"cells": "UCT-MSC", "onset_months": 2.0}})
    r = s.replace({"treatment.cells": "UCB-durable"})
    assert r.treatment.onset_months == 2.0
    assert r.treatment.persistent_fraction == CELL_PRESETS["UCB-durable"]["persistent_fraction"]


def test_cells_choice_is_case_insensitive():
    """Choices compare case-insensitively and return the canonical spelling."""
    s = scenario_from_dict({"treatment": {"cells": "uct-msc"}, "analysis": {"primary": "Welch"}})
    assert s.treatment.cells == "UCT-MSC"
    assert s.analysis.primary == "welch"


# --- dotted overrides ---------------------------------------------------------------------------------------


def test_dotted_overrides_mapping_and_pairs():
    """Overrides by dotted path, given as a mapping or as (path, value) pairs, including nested sections."""
    overrides = {"design.n_per_arm": 40, "treatment.dose_response.emax": 6.5, "analysis.primary": "welch"}
    a = scenario_from_dict({}, overrides)
    b = scenario_from_dict({}, list(overrides.items()))
    assert a == b
    assert a.design.n_per_arm == (40, 40)
    assert a.treatment.dose_response.emax == 6.5
    assert a.treatment.dose_response.ed50 == 3.0  # siblings keep their defaults
    assert a.analysis.primary == "welch"


def test_override_beats_the_file():
    """An override replaces a value written in the file (the CLI's --set)."""
    s = load_scenario(DEFAULT_TOML, {"design.n_per_arm": 20, "population.ages": [3, 8]})
    assert s.design.n_per_arm == (20, 20)
    assert s.population.ages == (3.0, 8.0)
    assert s.design.visits == (0.0, 1.0, 3.0, 6.0, 12.0)  # the rest of the file still applies


def test_later_override_wins():
    """When the same path is set twice, the last value wins."""
    s = scenario_from_dict({}, [("design.alpha", 0.1), ("design.alpha", 0.025)])
    assert s.design.alpha == 0.025


def test_normal_outcome_model_keys():
    """The plain normal model: outcome.model = "normal" with sd, effect and correlation; sides and primary."""
    s = scenario_from_dict({"outcome": {"model": "normal", "sd": 10.0, "effect": 2.5, "correlation": 0.3},
                            "design": {"n_per_arm": [25, 50], "alpha": 0.025, "sides": 1},
                            "analysis": {"primary": "ttest"}})
    assert (s.outcome.model, s.outcome.sd, s.outcome.effect, s.outcome.correlation) == ("normal", 10.0, 2.5, 0.3)
    assert s.design.n_per_arm == (25, 50)
    assert (s.design.alpha, s.design.sides) == (0.025, 1)
    assert s.analysis.primary == "ttest"


def test_replace_validates_and_leaves_original():
    """Scenario.replace gives a new validated scenario and leaves the original unchanged."""
    s = scenario_from_dict({})
    r = s.replace({"design.alpha": 0.1})
    assert r.design.alpha == 0.1
    assert s.design.alpha == 0.05
    with pytest.raises(ScenarioError, match=r"^design\.alpha:"):
        s.replace({"design.alpha": 0.9})


def test_waning_half_life_accepts_inf():
    """treatment.waning_half_life_months = inf means a durable effect and is allowed."""
    s = scenario_from_dict({}, {"treatment.waning_half_life_months": parse_value("inf")})
    assert s.treatment.waning_half_life_months == math.inf


@pytest.mark.parametrize("text, expected", [
    ("40", 40),
    ("0.05", 0.05),
    ("[30, 40]", [30, 40]),
    ("inf", math.inf),
    ("welch", "welch"),
    ("UCB-MNC", "UCB-MNC"),
    ('"two words"', "two words"),
    ("true", True),
    ("{1 = 0.5, 2 = 0.5}", {"1": 0.5, "2": 0.5}),
])
def test_parse_value(text, expected):
    """A --set value is read as a TOML value, or else as a bare string."""
    value = parse_value(text)
    assert value == expected
    assert type(value) is type(expected)


# --- errors: one line naming the dotted field and what is allowed -----------------------------------------

ERROR_CASES = [
    # (id, raw dict, overrides, dotted path in the message, fragment naming what is allowed)
    ("unknown key", {}, {"design.n_per_arn": 3}, "design.n_per_arn", "n_per_arm"),
    ("unknown section", {"desing": {"alpha": 0.1}}, {}, "desing", "design"),
    ("unknown nested key", {}, {"treatment.dose_response.emx": 1.0}, "treatment.dose_response.emx", "emax"),
    ("wrong type: string for number", {}, {"design.alpha": "x"}, "design.alpha", "(0, 0.5]"),
    ("wrong type: boolean for number", {}, {"design.alpha": True}, "design.alpha", "(0, 0.5]"),
    ("wrong type: float for whole number", {}, {"design.n_per_arm": 36.5}, "design.n_per_arm", "whole number"),
    ("wrong type: number for string", {}, {"title": 3}, "title", "string"),
    ("wrong type: value for section", {}, {"design": 3}, "design", "table"),
    ("path through a value", {}, {"design.alpha.x": 1}, "design.alpha", "table"),
    ("alpha too large", {}, {"design.alpha": 0.7}, "design.alpha", "(0, 0.5]"),
    ("alpha zero (open end)", {}, {"design.alpha": 0}, "design.alpha", "(0, 0.5]"),
    ("alpha inf", {}, {"design.alpha": math.inf}, "design.alpha", "(0, 0.5]"),
    ("alpha nan", {}, {"design.alpha": math.nan}, "design.alpha", "(0, 0.5]"),
    ("sides not 1 or 2", {}, {"design.sides": 3}, "design.sides", "1, 2"),
    ("unknown analysis", {}, {"analysis.primary": "anova"}, "analysis.primary", "'welch'"),
    ("unknown outcome model", {}, {"outcome.model": "binary"}, "outcome.model", "'normal'"),
    ("unknown cells", {}, {"treatment.cells": "MSC"}, "treatment.cells", "'UCT-MSC'"),
    ("correlation at 1", {}, {"outcome.correlation": 1.0}, "outcome.correlation", "(-1, 1)"),
    ("half-life zero", {}, {"treatment.waning_half_life_months": 0}, "treatment.waning_half_life_months",
     "[0.01, inf]"),
    ("n_per_arm too small", {}, {"design.n_per_arm": 1}, "design.n_per_arm", "[2, 100000]"),
    ("n_per_arm item too small", {}, {"design.n_per_arm": [30, 1]}, "design.n_per_arm[1]", "[2, 100000]"),
    ("n_per_arm wrong length", {}, {"design.n_per_arm": [30, 40, 50]}, "design.n_per_arm", "one per arm"),
    ("ages decreasing", {}, {"population.ages": [10, 2]}, "population.ages", "increasing"),
    ("ages one value", {}, {"population.ages": [2]}, "population.ages", "exactly 2"),
    ("ages out of range", {}, {"population.ages": [0.1, 6]}, "population.ages[0]", "[0.5, 21]"),
    ("gmfcs_mix not summing to 1", {}, {"population.gmfcs_mix": {"1": 0.5, "2": 0.4}}, "population.gmfcs_mix",
     "sum to 1"),
    ("gmfcs_mix bad level", {}, {"population.gmfcs_mix": {"6": 1.0}}, "population.gmfcs_mix", "1-5"),
    ("gmfcs_mix share above 1", {}, {"population.gmfcs_mix": {"1": 1.5}}, "population.gmfcs_mix.1", "[0, 1]"),
    ("gmfcs_mix not a table", {}, {"population.gmfcs_mix": 3}, "population.gmfcs_mix", "GMFCS level"),
    ("primary_visit not a visit", {}, {"design.primary_visit": 9}, "design.primary_visit", "design.visits"),
    ("visits not starting at 0", {}, {"design.visits": [1, 3, 12]}, "design.visits", "0"),
    ("visits not increasing", {}, {"design.visits": [0, 6, 3, 12]}, "design.visits", "increasing"),
    ("recovery_sd too large for a Beta", {}, {"population.recovery_sd": 0.45}, "population.recovery_sd", "sqrt"),
    ("min_dose above max_dose", {}, {"population.min_dose": 6.0}, "population.min_dose", "max_dose"),
]


@pytest.mark.parametrize("raw, overrides, path, allowed", [c[1:] for c in ERROR_CASES],
                         ids=[c[0] for c in ERROR_CASES])
def test_error_names_dotted_field_and_what_is_allowed(raw, overrides, path, allowed):
    """Each bad key, type or range raises ScenarioError: one line, starting with the dotted path, saying what is
    allowed."""
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(raw, overrides)
    err = info.value
    assert str(err).startswith(f"{path}: ")
    assert err.path == path
    assert allowed in err.message
    assert "\n" not in str(err)


def test_unknown_key_lists_every_allowed_key():
    """An unknown key lists all the keys allowed in its table."""
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict({"design": {"n_per_arn": 3}})
    message = info.value.message
    assert "unknown key" in message
    for key in ("arms", "n_per_arm", "visits", "primary_visit", "alpha", "sides"):
        assert key in message


def test_wrong_value_is_echoed():
    """The message says what was given, as well as what is allowed."""
    with pytest.raises(ScenarioError, match=r"got 0\.7"):
        scenario_from_dict({}, {"design.alpha": 0.7})


def test_error_in_a_file_names_the_field(tmp_path):
    """A bad value written in a TOML file is reported by its dotted field (not the file)."""
    path = tmp_path / "s.toml"
    path.write_text('[design]\nalpha = "x"\n')
    with pytest.raises(ScenarioError, match=r"^design\.alpha: "):
        load_scenario(path)


@pytest.mark.parametrize("content, fragment", [
    ('title = "unterminated\n', "malformed TOML"),
    ("[design\nalpha = 0.1\n", "malformed TOML"),
    ("design.alpha = 0.1\ndesign.alpha = 0.2\n", "malformed TOML"),
])
def test_malformed_toml(tmp_path, content, fragment):
    """Malformed TOML raises a one-line ScenarioError naming the file."""
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.path == str(path)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_not_utf8(tmp_path):
    """A binary file is reported as malformed, not as a UnicodeDecodeError."""
    path = tmp_path / "bin.toml"
    path.write_bytes(b"\xff\xfe\x00title")
    with pytest.raises(ScenarioError, match="malformed TOML"):
        load_scenario(path)


def test_missing_file(tmp_path):
    """A missing file raises ScenarioError naming the file."""
    path = tmp_path / "nope.toml"
    with pytest.raises(ScenarioError, match="not found") as info:
        load_scenario(path)
    assert info.value.path == str(path)


def test_directory_is_not_a_scenario(tmp_path):
    """A directory given as the scenario is a ScenarioError, not an IsADirectoryError."""
    with pytest.raises(ScenarioError, match="directory"):
        load_scenario(tmp_path)


# --- digest -------------------------------------------------------------------------------------------------


def test_digest_equal_for_equal_scenarios():
    """digest() is the same for equal scenarios, however they were written."""
    a = load_scenario(DEFAULT_TOML)
    b = load_scenario(DEFAULT_TOML)
    assert a.digest() == b.digest()
    assert scenario_from_dict({"design": {"n_per_arm": 36}}).digest() == \
        scenario_from_dict({"design": {"n_per_arm": [36, 36]}}).digest()
    assert a.replace({}).digest() == a.digest()
    assert len(a.digest()) == 16
    int(a.digest(), 16)  # hexadecimal


@pytest.mark.parametrize("overrides", [
    {"design.alpha": 0.025},
    {"design.n_per_arm": [36, 37]},
    {"treatment.dose_response.emax": 4.5},
    {"treatment.cells": "UCB-durable"},
    {"title": "another"},
])
def test_digest_changes_with_any_value(overrides):
    """digest() differs after a change of any value."""
    a = load_scenario(DEFAULT_TOML)
    assert a.replace(overrides).digest() != a.digest()


# --- regimens, resolved once ----------------------------------------------------------------------------------

SCENARIO_FILES = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.toml"))


def _hash_or_error(value: object) -> object:
    """hash(value), or the type of the error it raises (a scenario holds a dict of arms)."""
    try:
        return hash(value)
    except TypeError as exc:
        return type(exc)


def _resolved(s: Scenario) -> tuple[products.Regimen, ...]:
    """Every arm's regimen resolved afresh, as Scenario.regimens promises."""
    d = s.design
    return tuple(products.regimen(name, i, s.arms.get(name), s.treatment, s.population.source == "autologous",
                                  design_kind=d.kind, crossover_month=d.crossover_month)
                 for i, name in enumerate(d.arms))


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_regimens_resolved_once_and_right(path):
    """Scenario.regimens is computed once per scenario (the same tuple on every read) and equals every arm
    resolved afresh; a scenario made by dataclasses.replace resolves its own."""
    s = load_scenario(path)
    assert s.regimens is s.regimens
    assert s.regimens == _resolved(s)
    renamed = dataclasses.replace(s, design=dataclasses.replace(s.design, arms=tuple(f"arm {i}" for i, _ in
                                                                                     enumerate(s.design.arms))))
    assert [r.name for r in renamed.regimens] == list(renamed.design.arms)
    assert [r.name for r in s.regimens] == list(s.design.arms)


def test_regimens_cache_leaves_digest_dict_equality_and_hash_alone():
    """Reading Scenario.regimens changes none of digest(), to_dict(), equality and hashing."""
    s = load_scenario(DEFAULT_TOML)
    bare = dataclasses.replace(s)  # the same values, its regimens not read yet
    assert "regimens" not in vars(bare)
    before = (bare.digest(), bare.to_dict(), _hash_or_error(bare))
    assert bare.regimens == s.regimens
    assert "regimens" in vars(bare)
    assert (bare.digest(), bare.to_dict(), _hash_or_error(bare)) == before
    assert bare == s
    assert before[0] == load_scenario(DEFAULT_TOML).digest()


@pytest.mark.parametrize("protocol", [pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_pickle_round_trip(path, protocol):
    """A scenario sent to a worker process (joblib pickles it) comes back equal, with the same digest and
    regimens, whether or not its regimens were read before; the copy stays frozen."""
    s = load_scenario(path)
    for sent in (s, dataclasses.replace(s)):
        copy = pickle.loads(pickle.dumps(sent, protocol=protocol))
        assert copy == s
        assert copy.digest() == s.digest()
        assert copy.to_dict() == s.to_dict()
        assert copy.regimens == s.regimens
        with pytest.raises(dataclasses.FrozenInstanceError):
            copy.title = "changed"  # type: ignore[misc]


# --- an arm is what its table says (issue 18 point 4) -------------------------------------------------------

REPEAT_DOSE = Path(__file__).resolve().parents[1] / "scenarios" / "repeat_dose.toml"


def _kinds(s: Scenario) -> dict[str, str]:
    return {r.name: r.kind for r in s.regimens}


def test_reordered_arms_keep_the_kind_their_tables_give():
    """repeat_dose with design.arms = ["single dose", "two doses"]: the single-dose arm, whose table gives a
    dose and a route, stays a cells arm (it used to turn into sham for standing first), and it is the
    reference of the one comparison left."""
    s = load_scenario(REPEAT_DOSE, {"design.arms": ["single dose", "two doses"]})
    assert _kinds(s) == {"single dose": "cells", "two doses": "cells"}
    assert [d.dose for d in s.regimens[0].doses] == [0.5]
    assert s.regimens[0].doses[0].route == "intrathecal"


@pytest.mark.parametrize("value", [{"route": "intravenous"}, {"schedule": [0]}, {"cells": "UCT-MSC"},
                                   {"dose": 2.0}, {"dose_response": {"emax": 3.0}}, {"onset_months": 2.0},
                                   {"retained_fraction": 0.8}, {"retained_months": 18.0}],
                         ids=lambda v: next(iter(v)))
def test_any_cell_value_makes_the_first_arm_cells(value):
    """Any cell value in the first arm's table (even one equal to its default, such as route "intravenous")
    makes it a cells arm, not the sham a first arm without a table defaults to."""
    s = scenario_from_dict({"design": {"arms": ["a", "b"]}, "arms": {"a": value}})
    assert _kinds(s) == {"a": "cells", "b": "cells"}


def test_first_arm_without_a_table_is_still_sham():
    """The default stays: a first arm whose table gives nothing is the sham control (results unchanged)."""
    assert _kinds(scenario_from_dict({"design": {"arms": ["control", "cord blood"]}})) == {
        "control": "sham", "cord blood": "cells"}
    assert _kinds(load_scenario(DEFAULT_TOML)) == {"sham": "sham", "cord blood": "cells"}


@pytest.mark.parametrize("kind", ["sham", "placebo", "nothing"])
def test_control_kind_with_a_cell_value_is_refused_naming_the_value(kind):
    """kind sham, placebo or nothing beside a dose: refused, naming the dose, never silently dropped."""
    with pytest.raises(ScenarioError) as err:
        load_scenario(REPEAT_DOSE, {"arms.single dose.kind": kind})
    assert err.value.path == "arms.single dose.dose"
    assert f"kind {kind!r}" in err.value.message and 'kind = "cells"' in err.value.message


def test_arm_named_as_a_control_is_that_control():
    """An arm named sham, placebo or nothing (any case) with no kind is that control wherever it stands in a
    parallel design; elsewhere the name means nothing."""
    s = load_scenario(REPEAT_DOSE, {"design.arms": ["single dose", "Sham", "two doses"]})
    assert _kinds(s) == {"single dose": "cells", "Sham": "sham", "two doses": "cells"}
    assert _kinds(scenario_from_dict({"design": {"arms": ["placebo", "x"]}})) == {"placebo": "placebo", "x": "cells"}


def test_first_arm_by_default_beside_a_control_by_name_is_refused():
    """design.arms = ["cord blood", "sham"] (no tables): the first arm would be sham by position beside the
    sham arm, and the comparison inverted; refused, naming the first arm's kind."""
    with pytest.raises(ScenarioError) as err:
        load_scenario(DEFAULT_TOML, {"design.arms": ["cord blood", "sham"]})
    assert err.value.path == "arms.cord blood.kind"
    assert "'sham' is a control" in err.value.message
    s = load_scenario(DEFAULT_TOML, {"design.arms": ["cord blood", "sham"], "arms.cord blood.kind": "cells"})
    assert _kinds(s) == {"cord blood": "cells", "sham": "sham"}


def test_reordered_arms_refused_on_the_command_line_in_one_line(capsys):
    """The CLI prints one line naming the field."""
    from .support import assert_one_line_error, cli

    assert_one_line_error(*cli(capsys, "run", str(REPEAT_DOSE), "--reps", "10", "--set",
                               'arms."single dose".kind="sham"'), "arms.single dose.dose", "kind 'sham'")


def test_arm_route_and_retained_months_unset_until_given():
    """An arm's route and retained_months are None until given (so a table that gives them can be told from
    one that does not); the regimen still defaults to intravenous and 12 months."""
    s = scenario_from_dict({"design": {"arms": ["sham", "a"]}, "arms": {"a": {"retained_fraction": 0.8}}})
    assert s.arms["a"].route is None and s.arms["a"].retained_months is None
    assert s.regimens[1].doses[0].route == "intravenous"
    explicit = scenario_from_dict({"design": {"arms": ["sham", "a"]},
                                   "arms": {"a": {"retained_fraction": 0.8, "retained_months": 12.0}}})
    assert explicit.regimens[1] == s.regimens[1]


# --- dotted paths split as TOML splits them ------------------------------------------------------------------


@pytest.mark.parametrize(("path", "keys"), [
    ("design.n_per_arm", ("design", "n_per_arm")),
    ("arms.cord blood.dose", ("arms", "cord blood", "dose")),
    ('arms."single dose".kind', ("arms", "single dose", "kind")),
    ("arms.'single dose'.kind", ("arms", "single dose", "kind")),
    ('arms . "single dose" . kind', ("arms", "single dose", "kind")),
    ('arms."v1.2".dose', ("arms", "v1.2", "dose")),
    ('effects.pooled."treatment.dose_response.emax"', ("effects", "pooled", "treatment.dose_response.emax")),
    ('arms."a \\"b\\"".kind', ("arms", 'a "b"', "kind")),
])
def test_split_path_as_toml(path, keys):
    """split_path splits like TOML (quoted keys whole, escapes decoded), and join_path gives a path that splits
    back to the same keys; DOTTED accepts every such path."""
    import tomllib

    from cbcp_sim.scenario.schema import DOTTED, join_path, split_path

    assert split_path(path) == keys
    assert split_path(join_path(keys)) == keys
    assert DOTTED.fullmatch(path)
    if " " not in path.replace('" ', "").replace(' "', ""):  # TOML itself: bare keys have no spaces
        doc = tomllib.loads(f"{path} = 0")
        for key in keys:
            doc = doc[key]
        assert doc == 0


@pytest.mark.parametrize("path", ["a..b", 'a."b', 'a."b"c', "a.", ".a", 'a."\\q".b', "a.b'c"])
def test_split_path_refuses_malformed_paths(path):
    from cbcp_sim.scenario.schema import split_path

    with pytest.raises(ScenarioError) as err:
        split_path(path)
    assert err.value.path == path


def test_quoted_and_unquoted_paths_set_the_same_value():
    """arms."single dose".dose and arms.single dose.dose are one key, in set_dotted, load_scenario and replace;
    a quoted name with a dot reaches the effect's table."""
    quoted = load_scenario(REPEAT_DOSE, {'arms."single dose".dose': 0.7})
    bare = load_scenario(REPEAT_DOSE, {"arms.single dose.dose": 0.7})
    assert quoted == bare and quoted.arms["single dose"].dose == (0.7,)
    assert load_scenario(REPEAT_DOSE).replace({"arms.'single dose'.dose": 0.7}) == bare
    effect = load_scenario(REPEAT_DOSE, {'effects.pooled."treatment.dose_response.emax"': 5.5}, "pooled")
    assert effect.treatment.dose_response.emax == 5.5


def test_set_option_accepts_quoted_names():
    """--set arms."single dose".kind=sham: the path split at the first = outside quotes, written back in the
    plain dotted form the rest of the package reads."""
    import argparse

    from cbcp_sim.cli.options import _setting

    assert _setting('arms."single dose".kind=sham') == ("arms.single dose.kind", "sham")
    assert _setting("arms.cord blood.dose=3") == ("arms.cord blood.dose", 3)
    assert _setting('arms."a=b".kind = "sham"') == ('arms."a=b".kind', "sham")
    assert _setting('effects.pooled."treatment.dose_response.emax"=5') == (
        'effects.pooled."treatment.dose_response.emax"', 5)
    for bad in ("x", "=3", 'a."b=3', "a..b=1"):
        with pytest.raises(argparse.ArgumentTypeError):
            _setting(bad)
