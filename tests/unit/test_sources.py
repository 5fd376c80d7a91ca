"""Every source a reader meets in the repository resolves inside it.

The marketplace facts carry tags such as ``[A17]`` or ``[OBS F10]``; each must be listed in
``docs/marketplaces/sources.md`` with where to read it. And nothing committed may point at a
document on the machine it was written on (``/work/...``, a home directory, ``../shared``, the
research fact sheets that never ship): a reader of a clone has none of them. Scratch directories
a procedure creates at run time (``mkdir -p /tmp/e2e`` in a walkthrough, a temporary directory the
demo reports) are not references; in code and tests ``/tmp/`` is refused, temp dirs come from
``tmp_path``/``tempfile``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from marketplace_exporter.adapters import ADAPTERS

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "docs" / "marketplaces" / "sources.md"
#: a source tag as the docs and code write it: [A17], [OBS F10], [X3]
TAG = re.compile(r"\[(?:OBS )?([A-Z]{1,2}[0-9]{1,3})\]")
#: a tag's definition line in sources.md
DEFINED = re.compile(r"^- \*\*([A-Z]{1,2}[0-9]{1,3})\*\* ", re.MULTILINE)
#: references to places outside the repository, anywhere in code, docs and tests
OUTSIDE = re.compile(r"(?<![\w.~-])/(?:work|home|Users|root)/|\.\./shared\b"
                     r"|\b(?:marketplaces|marketplaces-more|fidelity-review)\.md\b")
#: a /tmp path literal (refused in code and tests; see the module doc)
TMP = re.compile(r"(?<![\w.~-])/tmp/")
CHECKED = (".py", ".md", ".yml", ".yaml", ".toml", ".txt", ".json", ".cfg", ".ini", ".sh")


def tracked_files() -> list[Path]:
    """The files git tracks plus new ones it does not ignore (what a commit would carry)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\n")
    return [ROOT / name for name in listed if name.endswith(CHECKED) and (ROOT / name).is_file()]


def defined_tags() -> set[str]:
    return set(DEFINED.findall(SOURCES.read_text(encoding="utf-8")))


def test_sources_define_each_tag_once() -> None:
    tags = DEFINED.findall(SOURCES.read_text(encoding="utf-8"))
    assert len(tags) > 100
    assert sorted({t for t in tags if tags.count(t) > 1}) == []


def test_every_tag_used_resolves_in_sources_md() -> None:
    defined = defined_tags()
    unresolved = []
    used = 0
    for path in tracked_files():
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for tag in TAG.findall(line):
                used += 1
                if tag not in defined:
                    unresolved.append(f"{path.relative_to(ROOT)}:{number}: [{tag}]")
    assert used > 400  # the check looked at the repository, not at nothing
    assert unresolved == []


def test_every_documented_limit_names_a_listed_source() -> None:
    defined = defined_tags()
    for adapter in ADAPTERS.values():
        for operation in adapter.operations.values():
            assert operation.limit_source in defined | {"", "UNCONFIRMED"}, (adapter.name, operation.name)


def test_nothing_points_outside_the_repository() -> None:
    found = []
    for path in tracked_files():
        relative = path.relative_to(ROOT)
        if path == Path(__file__).resolve():
            continue  # this file names what it refuses
        in_code = relative.suffix == ".py"
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if OUTSIDE.search(line) or (in_code and TMP.search(line)):
                found.append(f"{relative}:{number}: {line.strip()[:100]}")
    assert found == []


@pytest.mark.parametrize(("line", "refused"), [
    ("Facts are from /work/shared/marketplaces.md section 5", True),
    ("see ../shared/fidelity-review.md", True),
    ('config = "/home/dev/exporter.yml"', True),
    ("the fact sheet (`marketplaces-more.md`, section 9)", True),
    ("see docs/marketplaces/walmart.md and sources.md", False),
    ("token_file: /run/secrets/shopee_token.json", False),
])
def test_the_outside_pattern_catches_references_not_repo_paths(line: str, refused: bool) -> None:
    assert bool(OUTSIDE.search(line)) is refused


def test_the_tag_pattern_reads_both_spellings() -> None:
    assert TAG.findall("limits [A17]; headers [F9][OBS F10]; not [a1] or [A] or [A1234]") == ["A17", "F9", "F10"]
