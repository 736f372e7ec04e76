"""The documents name what exists: every repository path in README.md and docs/*.md,
every relative link between them, and every section of docs/contract.md the code cites.

A module move (a regrouping, a rename) that leaves a document pointing at the old place
fails here instead of misleading the next reader.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
CONTRACT = ROOT / "docs" / "contract.md"
CONTRACT_SECTIONS = ("Devices", "Marketplace resources", "Roles and data scoping", "Jobs", "Quality bars")
# where the code cites the contract's sections
CITING = [ROOT / "run.py", ROOT / "settings.py", ROOT / "pyproject.toml", *DOCUMENTS]
for top in ("registry", "schemas", "tests", "bench", "deploy", "scripts"):
    CITING += [p for p in (ROOT / top).rglob("*") if p.suffix in {".py", ".html", ".sh", ".toml"}]

# a repository path: starts at one of the top-level folders, not inside a longer word,
# URL or absolute path (/etc/der-registry/…, oadr://der-registry/…)
REPO_PATH = re.compile(r"(?<![\w./:-])((?:registry|schemas|tests|bench|deploy|scripts|docs|hooks|admin_ui)/[\w./*-]*)")
# top-level folders of an older layout (now under registry/): a path into them is stale,
# their bare names are also the sub-packages' names (the README's layout tree)
FORMER = ("hooks/", "admin_ui/")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
CITATION = re.compile(r"docs/contract\.md\s*[,(]?\s*((?:\"[^\"\n]+\"(?:\s*(?:,|and)\s*)?)+)")


def named_paths(text: str) -> set[str]:
    paths = set()
    for match in REPO_PATH.finditer(text):
        path = match.group(1).rstrip(".")  # a path ending a sentence
        if path not in FORMER:
            paths.add(path)
    return paths


def exists(path: str) -> bool:
    if "*" in path:
        return any(ROOT.glob(path))
    return (ROOT / path).exists() and ((ROOT / path).is_dir() or not path.endswith("/"))


def current_text(text: str) -> str:
    """A document without the old places it records on purpose: in a section headed
    "Moves …" (docs/architecture.md), the first column of each table row is the old path."""
    kept, in_moves, in_code = [], False, False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif line.startswith("#") and not in_code:
            in_moves = line.lstrip("#").strip().startswith("Moves")
        if in_moves and line.startswith("|"):
            line = "|".join(line.split("|")[2:])
        kept.append(line)
    return "\n".join(kept)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_a_document_names_exists(document: Path) -> None:
    missing = sorted(p for p in named_paths(current_text(document.read_text(encoding="utf-8"))) if not exists(p))
    assert not missing, f"{document.relative_to(ROOT)} names paths that do not exist: {missing}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_of_a_document_exists(document: Path) -> None:
    broken = []
    for target in MARKDOWN_LINK.findall(document.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a URL, or an anchor in the same page
        path = (document.parent / target.split("#")[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert not broken, f"{document.relative_to(ROOT)} links to files that do not exist: {broken}"


def test_the_path_check_sees_stale_paths() -> None:
    """The checker itself: it finds paths, and a moved module is reported."""
    text = "see `registry/store.py`, registry/api/data_layer.py and `tests/test_docs.py::test_x`."
    found = named_paths(text)
    assert found == {"registry/store.py", "registry/api/data_layer.py", "tests/test_docs.py"}
    assert [p for p in sorted(found) if not exists(p)] == ["registry/store.py"]
    assert named_paths("/etc/der-registry/registry.env and oadr://der-registry/flexibility") == set()
    assert named_paths("`hooks/access.py`, `admin_ui/`, registry/hooks/") == {"hooks/access.py", "registry/hooks/"}
    assert not exists("hooks/access.py")
    assert exists("deploy/systemd/*.service") and not exists("deploy/systemd/*.timer")
    moves = "## Moves\n\n| old | new |\n|---|---|\n| `registry/store.py` | `registry/api/data_layer.py` |\n"
    assert named_paths(current_text(moves)) == {"registry/api/data_layer.py"}
    assert "registry/store.py" in named_paths(current_text(moves.replace("## Moves", "## Layout")))


def contract_headings() -> set[str]:
    return {m.group(1).strip() for m in re.finditer(r"^#{2,3} (.+)$", CONTRACT.read_text(encoding="utf-8"), re.M)}


def test_the_contract_has_the_sections_the_code_cites() -> None:
    missing = [section for section in CONTRACT_SECTIONS if section not in contract_headings()]
    assert not missing, f"docs/contract.md lacks the sections {missing}"


def citations(text: str) -> list[str]:
    """The section names cited after each ``docs/contract.md`` (comment markers and
    line breaks between them ignored)."""
    flat = re.sub(r"\n\s*(#|//|\*)?\s*", " ", text)
    return [name for match in CITATION.finditer(flat) for name in re.findall(r"\"([^\"]+)\"", match.group(1))]


def test_every_cited_section_of_the_contract_exists() -> None:
    headings = contract_headings()
    cited: dict[str, set[str]] = {}
    for path in CITING:
        if path in (CONTRACT, Path(__file__).resolve()) or not path.is_file():
            continue
        for name in citations(path.read_text(encoding="utf-8", errors="replace")):
            cited.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    assert set(CONTRACT_SECTIONS) <= set(cited), f"the code no longer cites {set(CONTRACT_SECTIONS) - set(cited)}"
    unknown = {name: sorted(where) for name, where in cited.items() if name not in headings}
    assert not unknown, f"sections cited but not in docs/contract.md: {unknown}"


def test_the_citation_check_reads_every_form() -> None:
    comment = (
        '# what every operation answers (docs/contract.md,\n# "Roles and data scoping" and "Quality bars"; README)'
    )
    assert citations(comment) == ["Roles and data scoping", "Quality bars"]
    assert citations('"""offers (docs/contract.md, "Marketplace resources", docs/marketplace.md)."""') == [
        "Marketplace resources"
    ]
    assert citations('policy of docs/contract.md ("Roles and data scoping"), enforced') == ["Roles and data scoping"]
