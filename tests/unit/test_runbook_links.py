"""Every 处理手册 link a chat message carries works: each alert's ``runbook_url`` is absolute, points
at this repository's docs/runbooks.md under the configured base URL, and its ``#anchor`` is the one
GitHub gives an existing heading of that file (not only a hand-placed ``<a id>``)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from marketplace_exporter.mixin import generate as generator
from marketplace_exporter.mixin.config import DEFAULT_RUNBOOK_URL, AlertConfig
from marketplace_exporter.mixin.loader import parse

ROOT = Path(__file__).resolve().parents[2]
#: "https://github.com/<owner>/<repo>/blob/<branch>/<path>": the path inside the repository
_GITHUB_BLOB = re.compile(r"^/[^/]+/[^/]+/blob/[^/]+/(?P<path>.+)$")


def github_anchor(heading: str) -> str:
    """The id GitHub gives a Markdown heading: lower case, punctuation dropped, spaces → dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _headings(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return {github_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)}


def _runbook_urls(rules_text: str) -> dict[str, str]:
    groups = yaml.safe_load(rules_text)["groups"]
    return {r["alert"]: r["annotations"]["runbook_url"] for g in groups for r in g["rules"] if "alert" in r}


def test_every_runbook_link_reaches_a_heading_of_the_repository_file() -> None:
    urls = _runbook_urls((ROOT / "alert-rules" / generator.RULES_FILE).read_text(encoding="utf-8"))
    assert urls
    for alert, url in urls.items():
        parts = urlsplit(url)
        assert parts.scheme == "https" and parts.netloc == "github.com", f"{alert}: {url} is not absolute"
        blob = _GITHUB_BLOB.match(parts.path)
        assert blob, f"{alert}: {url} is not a file on GitHub"
        target = ROOT / blob.group("path")
        assert target.is_file(), f"{alert}: {url} names {blob.group('path')}, not in the repository"
        assert parts.fragment in _headings(target), f"{alert}: no heading #{parts.fragment} in {target.name}"


def test_the_default_base_is_the_one_constant_and_another_base_is_used_as_given() -> None:
    assert AlertConfig().runbook_base_url == DEFAULT_RUNBOOK_URL
    wiki = "https://wiki.example.cn/sre/marketplace-runbooks.html"
    urls = _runbook_urls(generator.render_files(parse({"runbook_base_url": wiki}))[generator.RULES_FILE])
    assert all(url == f"{wiki}#{alert.lower()}" for alert, url in urls.items())


def test_the_anchor_rule_matches_githubs_for_our_headings() -> None:
    assert github_anchor("MarketplaceCheckFailing") == "marketplacecheckfailing"
    assert github_anchor("Second route") == "second-route"
    assert github_anchor("Runbooks for the marketplace-exporter alerts") == \
        "runbooks-for-the-marketplace-exporter-alerts"
