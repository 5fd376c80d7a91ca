"""A trailing newline never passes validation (issue 14): Python's ``$`` also matches before a final
``\\n``, so ``re.match(r"^[a-z]+$", "production\\n")`` accepts a value that then forges a line in an
audit export or splits a label. Two guards: the code holds no ``$``-ended pattern given to Python's
``re`` (use ``fullmatch`` or ``\\Z``), and every field a request or a config names as a label, a
version or an identifier refuses ``value + "\\n"`` (f014b6e accepted ``production\\n`` through a
``$``-anchored ``re.match``; main then moved labels to one ``fullmatch`` rule, labels.py)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import Field, TypeAdapter, ValidationError

import marketplace_exporter
from marketplace_exporter.config import ConfigError, load_config
from marketplace_exporter.deploys.model import MarkerInvalid, parse_marker
from marketplace_exporter.durations import parse_duration
from marketplace_exporter.traffic.wire import TrafficBatch

PACKAGE = Path(marketplace_exporter.__file__).parent
RE_FUNCTIONS = {"compile", "match", "search", "fullmatch", "sub", "subn", "split", "findall", "finditer"}


def _pattern_text(node: ast.expr) -> str | None:
    """The pattern's literal text (an f-string's literal tail), if any."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[-1], ast.Constant):
        return str(node.values[-1].value)
    return None


def dollar_anchored_re_patterns() -> list[str]:
    """``file:line`` of every ``re.<function>(pattern, ...)`` whose literal pattern ends in ``$``."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                    and node.func.attr in RE_FUNCTIONS and node.func.attr != "fullmatch"):
                continue
            text = _pattern_text(node.args[0])
            if text is not None and text.endswith("$") and not text.endswith("\\$"):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {text[-40:]!r}")
    return found


def test_no_python_regex_is_anchored_with_a_dollar() -> None:
    """Also the simulator and the adapters' route tables (``/?$`` matched ``orders\\n``)."""
    assert dollar_anchored_re_patterns() == []


def test_pydantic_patterns_anchor_at_the_very_end() -> None:
    """``Field(pattern="^...$")`` is safe only because pydantic-core's Rust regex reads ``$`` as the
    end of the text; nothing in the package may switch a model to Python's ``re``."""
    assert TypeAdapter(Annotated[str, Field(pattern=r"^[a-z]+$")]).validate_python("prod") == "prod"
    with pytest.raises(ValidationError):
        TypeAdapter(Annotated[str, Field(pattern=r"^[a-z]+$")]).validate_python("prod\n")
    uses = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
            if "regex_engine" in path.read_text(encoding="utf-8")]
    assert uses == []


MARKER = {"service": "listing-sync", "environment": "production", "version": "v2.3.0", "commit": "9f8e7d6c",
          "sites": ["SG"], "pipeline_url": "https://ci.example.com/p/1"}


@pytest.mark.parametrize("field", sorted(MARKER))
def test_every_marker_field_refuses_a_trailing_newline(field: str) -> None:
    value: Any = MARKER[field]
    bad = [value[0] + "\n"] if isinstance(value, list) else value + "\n"
    parse_marker(MARKER, now=2e9)
    with pytest.raises(MarkerInvalid) as caught:
        parse_marker({**MARKER, field: bad}, now=2e9)
    assert caught.value.field == field


def test_a_traffic_service_refuses_a_trailing_newline() -> None:
    TrafficBatch.model_validate({"service": "erp"})
    with pytest.raises(ValidationError):
        TrafficBatch.model_validate({"service": "erp\n"})


GOOD_CONFIG = """\
accounts:
  - marketplace: shopee
    alias: sg-main
    site: SG
    credentials: {partner_id: 1, partner_key: {value: k}, shop_id: 1, access_token: {value: t}}
    checks: [{operation: get_shop_info, tags: [critical]}]
http_checks:
  - {name: erp-sync, url: "http://127.0.0.1:1/", account: self, site: global}
deploys:
  freeze_windows:
    - {name: double-11, environments: [production], start: 2026-11-10, end: 2026-11-12}
"""
CONFIG_FIELDS = [
    ("alias: sg-main", 'alias: "sg-main\\n"', "accounts[0].alias"),
    ("tags: [critical]", 'tags: ["critical\\n"]', "accounts[0].checks[0].tags[0]"),
    ("name: erp-sync", 'name: "erp-sync\\n"', "http_checks[0].name"),
    ("account: self", 'account: "self\\n"', "http_checks[0].account"),
    ("site: global", 'site: "global\\n"', "http_checks[0].site"),
    ("name: double-11", 'name: "double-11\\n"', "deploys.freeze_windows[0].name"),
    ("environments: [production]", 'environments: ["production\\n"]', "deploys.freeze_windows[0].environments[0]"),
]


@pytest.mark.parametrize(("good", "bad", "key"), CONFIG_FIELDS, ids=[key for _, _, key in CONFIG_FIELDS])
def test_config_names_refuse_a_trailing_newline(good: str, bad: str, key: str) -> None:
    load_config("f.yml", text=GOOD_CONFIG)
    with pytest.raises(ConfigError) as caught:
        load_config("f.yml", text=GOOD_CONFIG.replace(good, bad, 1))
    assert any(f": {key}: " in error for error in caught.value.errors), caught.value.errors


def test_a_duration_is_a_number_of_seconds_whatever_whitespace_surrounds_it() -> None:
    """Durations strip whitespace on purpose (the value becomes a float: no newline survives);
    what is between must match in full."""
    assert parse_duration(" 30s\n") == 30.0
    with pytest.raises(ValueError):
        parse_duration("30s\nx")
