"""Every assumption can be checked: citations point into docs/references.md and nothing points outside the repository
(issue 18, point 7).

A citation is an ``[Author Year]`` key (``[Rosenbaum 2002]``, ``[Lan & DeMets 1983]``, ``[rpact n.d.]``); each key is
the heading of one entry of ``docs/references.md``. Author-year mentions in prose ("Rosenbaum et al. 2002", "Lan &
DeMets 1983", "Hills & Armitage (1979") must name an entry too: the surname of one of its authors (or a word of its
key) and its year. The checks read the package, the scenario files, the README, the docs and the notebooks, and the
sources that ``cbcp-sim params`` prints.
"""

from __future__ import annotations

import functools
import json
import os
import re
import unicodedata
from pathlib import Path

import pytest

from cbcp_sim.cli import main
from cbcp_sim.scenario import Scenario, load_scenario
from cbcp_sim.scenario.schema import describe

ROOT = Path(__file__).resolve().parents[1]
REFERENCES = ROOT / "docs" / "references.md"

#: A citation key: a letter, up to 40 more characters, a space and a year (optionally lettered) or ``n.d.``.
KEY = re.compile(r"\[([A-Za-z][^\[\]\n]{0,40}? (?:(?:19|20)\d\d[a-z]?|n\.d\.))\]")
#: An author-year mention: a capitalised word (a surname, or "et al." after one), then a year.
NAME_YEAR = re.compile(r"(?<![\w/])([A-Z][A-Za-z0-9'\-]*)(?: et al\.?)?,? \(?((?:19|20)\d\d)(?![\d/-])")
#: Capitalised words that precede a year without citing anything.
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec", "January",
          "February", "March", "April", "June", "July", "August", "September", "October", "November", "December")
NOT_NAMES = frozenset(("In", "On", "By", "From", "Since", "Until", "Before", "After", "To", "Of", "And", "The",
                       "Version", *MONTHS))
#: Text that points at a file outside the repository (the reference notes the project started from, or a
#: machine's own directories).
OUTSIDE = re.compile(r"(?<![\w.])shared/|parameters\.md|\bref(?:erence)? §|(?<![\w.~])/(?:work|home|Users|root|mnt)/",
                     re.I)
#: A relative path that climbs out of its file's directory.
CLIMB = re.compile(r"(?:\.\./)+[\w.\-/]*")
#: Files whose text is checked for paths outside the repository.
TEXT_SUFFIXES = (".py", ".md", ".toml", ".ipynb", ".txt", ".cfg", ".ini", ".yml", ".yaml", ".R", ".sh")
SKIP_DIRS = {"__pycache__", "figures", "baseline", "node_modules", "build", "dist"}
#: Entries kept although nothing cites them, with the reason (none at present).
KEPT: dict[str, str] = {}


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def slug(key: str) -> str:
    """The anchor of an entry: the key in lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^a-z0-9 \-]", "", _ascii(key).lower())
    return re.sub(r" +", "-", text.strip())


@functools.cache
def entries() -> dict[str, str]:
    """Each entry of docs/references.md (its ``### `` heading, the key) with its text, up to the Gaps section."""
    text = REFERENCES.read_text(encoding="utf-8").split("\n## Gaps")[0]
    parts = re.split(r"^### (.+)$", text, flags=re.M)
    return {key.strip(): body for key, body in zip(parts[1::2], parts[2::2], strict=True)}


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@functools.cache
def cited_texts() -> tuple[tuple[str, str], ...]:
    """(path, text) of everything whose citations must resolve: the package, the docs' builder, the scenario files,
    the README, the docs (but the references themselves) and the notebooks (their cells, not their outputs)."""
    files = [*sorted((ROOT / "cbcp_sim").rglob("*.py")), *sorted((ROOT / "docs").glob("*.py")),
             *sorted((ROOT / "scenarios").glob("*.toml")), ROOT / "README.md",
             *(p for p in sorted((ROOT / "docs").glob("*.md")) if p != REFERENCES), ROOT / "notebooks" / "README.md"]
    out = [(_rel(p), p.read_text(encoding="utf-8")) for p in files]
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        out.append((_rel(notebook), "\n".join("".join(c["source"]) for c in cells)))
    return tuple(out)


def unknown_keys(text: str) -> list[str]:
    """The citation keys in ``text`` that have no entry."""
    return [k for k in KEY.findall(text) if k not in entries()]


def _names_entry(name: str, year: str, key: str, text: str) -> bool:
    """Whether ``name`` is a word of ``text`` (an entry's key or citation) and the entry is of ``year``."""
    of_year = key.endswith(year) or re.search(rf" {year}[a-z]$", key)
    return bool(of_year) and _ascii(name) in set(re.findall(r"[A-Za-z0-9'\-]+", _ascii(text)))


def resolve(name: str, year: str) -> str | None:
    """The entry an author-year mention names (by a word of its key first, then by any author), or None."""
    keyed = (key for key in entries() if _names_entry(name, year, key, key))
    authored = (key for key, body in entries().items() if _names_entry(name, year, key, body.split("\n- ")[0]))
    return next(keyed, None) or next(authored, None)


def author_years(text: str) -> list[tuple[str, str]]:
    """Every author-year mention in ``text`` (name, year), leaving out words that are not names."""
    return [(n, y) for n, y in NAME_YEAR.findall(_ascii(text)) if n not in NOT_NAMES]


def unresolved_mentions(text: str) -> list[str]:
    return [f"{n} {y}" for n, y in author_years(text) if resolve(n, y) is None]


def outside_references(text: str, where: Path) -> list[str]:
    """What in ``text`` (of a file in directory ``where``) points outside the repository."""
    found = [m.group(0) for m in OUTSIDE.finditer(text)]
    for m in CLIMB.finditer(text):
        target = Path(os.path.normpath(where / m.group(0)))  # not resolve(): .venv links out of the tree
        if not target.is_relative_to(ROOT):
            found.append(m.group(0))
    return found


def _repository_text_files() -> list[Path]:
    out = []
    for path in sorted(ROOT.rglob("*")):
        parts = path.relative_to(ROOT).parts
        hidden = any(p.startswith(".") and p not in (".ci", ".github") for p in parts)
        if hidden or any(p in SKIP_DIRS or p.endswith(".egg-info") for p in parts) or not path.is_file():
            continue
        if path.suffix in TEXT_SUFFIXES or path.name in ("Makefile", "run") or path.name.startswith("README"):
            out.append(path)
    return [p for p in out if p != Path(__file__).resolve()]


def test_every_entry_has_its_anchor_its_source_and_what_the_project_takes_from_it():
    assert len(entries()) >= 40
    text = REFERENCES.read_text(encoding="utf-8")
    for key, body in entries().items():
        assert KEY.fullmatch(f"[{key}]"), f"{key}: not a key of the form [Author Year]"
        assert f'<a id="{slug(key)}"></a>' in body, f"{key}: no anchor {slug(key)}"
        assert re.search(r"doi:10\.|PMID \d|not\s+verified|NOT FOUND|\d{4}\.", body), f"{key}: no identifier note"
        assert "\n- " in body or "Cited in" in body, f"{key}: does not say what is taken from it"
    assert '<a id="gaps"></a>' in text
    assert len(set(map(slug, entries()))) == len(entries()), "two entries share an anchor"


def test_every_citation_key_has_an_entry():
    missing = [f"{path}: [{key}]" for path, text in cited_texts() for key in unknown_keys(text)]
    assert not missing, "citation keys with no entry in docs/references.md:\n" + "\n".join(missing)


def test_every_author_year_citation_names_an_entry():
    missing = [f"{path}: {m}" for path, text in cited_texts() for m in unresolved_mentions(text)]
    assert not missing, "author-year citations naming no entry of docs/references.md:\n" + "\n".join(missing)


def test_links_into_the_references_reach_an_anchor():
    anchors = {slug(k) for k in entries()} | {"gaps"}
    bad = [f"{path}: #{a}" for path, text in cited_texts() for a in re.findall(r"references\.md#([\w\-]+)", text)
           if a not in anchors]
    assert not bad


def test_every_entry_is_cited():
    keys = {k for _, text in cited_texts() for k in KEY.findall(text)}
    named = {resolve(n, y) for _, text in cited_texts() for n, y in author_years(text)}
    uncited = set(entries()) - keys - named - set(KEPT)
    assert not uncited, f"entries nothing cites (cite them, or say in KEPT why they stay): {sorted(uncited)}"


def test_no_text_refers_to_a_file_outside_the_repository():
    bad = [f"{_rel(p)}: {hit}" for p in _repository_text_files()
           for hit in outside_references(p.read_text(encoding="utf-8", errors="replace"), p.parent)]
    assert not bad, "references outside the repository:\n" + "\n".join(bad)


def test_every_declared_source_cites_keys_that_resolve():
    rows = describe(Scenario)
    bad = [f"{r['path']}: {r['source']}" for r in rows
           if unknown_keys(r["source"]) or unresolved_mentions(r["source"]) or outside_references(r["source"], ROOT)]
    assert not bad
    assert sum(bool(KEY.search(r["source"])) for r in rows) >= 60


@pytest.mark.parametrize("scenario", sorted(p.stem for p in (ROOT / "scenarios").glob("*.toml")))
def test_params_prints_sources_whose_keys_resolve(scenario, capsys):
    """`cbcp-sim params SCENARIO --json` names sources by keys that have entries, and never the old notes."""
    assert main(["params", str(ROOT / "scenarios" / f"{scenario}.toml"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    sources = [r["source"] for r in rows]
    assert any(KEY.search(s) for s in sources)
    bad = [s for s in sources if unknown_keys(s) or unresolved_mentions(s) or outside_references(s, ROOT)]
    assert not bad
    load_scenario(ROOT / "scenarios" / f"{scenario}.toml")  # the file the keys came from still loads


def test_the_checks_catch_a_planted_bad_citation():
    """Each check fails on what it is meant to catch (the same functions the tests above apply to the repository)."""
    assert unknown_keys("as [Nobody 1999] showed; [Rosenbaum 2002] too") == ["Nobody 1999"]
    assert unresolved_mentions("Nobody et al. 1999 and Rosenbaum et al. 2002; Lan & DeMets 1983; in Nov 2017") == [
        "Nobody 1999"]
    assert resolve("Campbell", "2005") == "O'Hagan 2005" and resolve("Hrobjartsson", "2013") == "Hrobjartsson 2013"
    assert outside_references("see shared/reference/parameters.md §3", ROOT)
    assert outside_references("(ref §7.2)", ROOT)
    assert outside_references("python /work/main/x.py", ROOT)
    assert outside_references("[notes](../../notes.md)", ROOT / "docs")
    assert not outside_references("[Planning](../README.md#planning)", ROOT / "docs")
