"""Plain YAML built from parser events means exactly what PyYAML's safe loader builds, and anything
that is not plain goes PyYAML's way (where duplicate keys and bad values are located)."""

from __future__ import annotations

import datetime

import pytest
import yaml

from marketplace_exporter.config.load import load_config
from marketplace_exporter.config.yaml_events import NotPlain, plain_data
from marketplace_exporter.config.yaml_loading import ConfigError, read_document

PLAIN = """
defaults: {interval: 30s, jitter: 0.25, concurrency: 64, ratio: 1e3, flag: yes, off: no, nothing: ~}
empty:
binary: !!binary aGk=
explicit: !!str 123
when: 2026-12-06
stamp: 2026-12-06 07:00:00
numbers: [0x1F, 0o17, -12, +3.5, .inf, -.Inf, .nan, 1_000]
quoted: ["yes", '1', "", "null"]
nested:
  - name: a
    list: [[1, 2], {k: v}, []]
    map: {}
  - plain text with: colon
  - |
    literal
    block
  - >
    folded
    text
"""


def same(a: object, b: object) -> bool:
    """Equal, with NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def test_a_plain_document_is_built_as_the_safe_loader_builds_it() -> None:
    built = plain_data(PLAIN)
    assert same(built, yaml.safe_load(PLAIN))
    assert built["when"] == datetime.date(2026, 12, 6) and built["defaults"]["flag"] is True
    assert (built["binary"], built["explicit"], built["empty"]) == (b"hi", "123", None)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "42", "just text", "[1, 2]"])
def test_documents_without_a_mapping(text: str) -> None:
    assert same(plain_data(text), yaml.safe_load(text))


@pytest.mark.parametrize("text", [
    "a: &x 1\nb: *x\n",  # anchors and aliases
    "base: &b {x: 1}\nother:\n  <<: *b\n",  # merge keys
    "a: 1\na: 2\n",  # a duplicate key: the full path reports it
    "a: !!python/name:os.system x\n",  # a tag the safe loader refuses
    "a: !!set {x: null}\n",  # ... on a collection
    "a: !custom x\n",  # a local tag
    "? [1, 2]\n: x\n",  # a collection as a key
    "a: 2026-02-30\n",  # a value YAML cannot build: the full path locates it
    "a: [1\n",  # a syntax error
    "a: 1\n---\nb: 2\n",  # two documents
    "a: " + "[" * 40 + "]" * 40 + "\n",  # deeper than MAX_DEPTH
])
def test_anything_else_takes_the_full_path(text: str) -> None:
    with pytest.raises(NotPlain):
        plain_data(text)


def test_lines_are_found_only_when_an_error_needs_one() -> None:
    data, lines = read_document("f.yml", "a: 1\nb:\n  c: [x, y]\n")
    assert data == {"a": 1, "b": {"c": ["x", "y"]}} and lines.errors == [] and lines.lines == {}
    assert lines.error(("b", "c", 1), "wrong") == "f.yml:3: b.c[1]: wrong"


def test_a_duplicate_key_is_still_an_error_with_its_line() -> None:
    with pytest.raises(ConfigError) as error:
        load_config("dup.yml", text="defaults:\n  interval: 30s\n  interval: 60s\n")
    assert "dup.yml:3: defaults.interval: duplicate key" in str(error.value)
