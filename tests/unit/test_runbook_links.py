"""Every 处理手册 link a chat message carries works: each alert's ``runbook_url`` is absolute, points
at this repository's docs/runbooks.md under the configured base URL, and its ``#anchor`` is the one
GitHub gives an existing heading of that file (not only a hand-placed ``<a id>``); the Chinese link
(``runbook_url`` of ``language: zh``, ``runbook_url_zh`` of ``both``) does the same in
docs/runbooks.zh-CN.md."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from marketplace_exporter.mixin import generate as generator
from marketplace_exporter.mixin.config import DEFAULT_RUNBOOK_URL, AlertConfig
from marketplace_exporter.mixin.loader import MixinConfigError, parse

ROOT = Path(__file__).resolve().parents[2]
#: "https://github.com/<owner>/<repo>/blob/<branch>/<path>": the path inside the repository
_GITHUB_BLOB = re.compile(r"^/[^/]+/[^/]+/blob/[^/]+/(?P<path>.+)$")


def github_anchor(heading: str) -> str:
    """The id GitHub gives a Markdown heading: lower case, punctuation dropped, spaces → dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _headings(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return {github_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)}


def _runbook_urls(rules_text: str, key: str = "runbook_url") -> dict[str, str]:
    groups = yaml.safe_load(rules_text)["groups"]
    return {r["alert"]: r["annotations"][key] for g in groups for r in g["rules"] if "alert" in r}


def _assert_reaches_a_heading(alert: str, url: str, file_name: str) -> None:
    parts = urlsplit(url)
    assert parts.scheme == "https" and parts.netloc == "github.com", f"{alert}: {url} is not absolute"
    blob = _GITHUB_BLOB.match(parts.path)
    assert blob, f"{alert}: {url} is not a file on GitHub"
    assert blob.group("path") == f"docs/{file_name}", f"{alert}: {url} is not docs/{file_name}"
    target = ROOT / blob.group("path")
    assert target.is_file(), f"{alert}: {url} names {blob.group('path')}, not in the repository"
    assert parts.fragment in _headings(target), f"{alert}: no heading #{parts.fragment} in {target.name}"


def test_every_runbook_link_reaches_a_heading_of_the_repository_file() -> None:
    """The committed rules (``language: both``): English in runbook_url, Chinese in runbook_url_zh."""
    rules = (ROOT / "alert-rules" / generator.RULES_FILE).read_text(encoding="utf-8")
    urls, urls_zh = _runbook_urls(rules), _runbook_urls(rules, "runbook_url_zh")
    assert urls and urls.keys() == urls_zh.keys()
    for alert, url in urls.items():
        _assert_reaches_a_heading(alert, url, "runbooks.md")
        _assert_reaches_a_heading(alert, urls_zh[alert], "runbooks.zh-CN.md")


def test_chinese_alerts_link_the_chinese_runbook_and_english_ones_the_english() -> None:
    zh = _runbook_urls(generator.render_files(parse({"language": "zh"}))[generator.RULES_FILE])
    en = generator.render_files(parse({"language": "en"}))[generator.RULES_FILE]
    for alert, url in zh.items():
        _assert_reaches_a_heading(alert, url, "runbooks.zh-CN.md")
    for alert, url in _runbook_urls(en).items():
        _assert_reaches_a_heading(alert, url, "runbooks.md")
    assert "runbook_url_zh" not in en and "runbook_url_zh" not in yaml.safe_dump(zh)


def test_the_default_base_is_the_one_constant_and_another_base_is_used_as_given() -> None:
    assert AlertConfig().runbook_base_url == DEFAULT_RUNBOOK_URL
    wiki = "https://wiki.example.cn/sre/marketplace-runbooks.html"
    rules = generator.render_files(parse({"runbook_base_url": wiki}))[generator.RULES_FILE]
    urls = _runbook_urls(rules)
    assert all(url == f"{wiki}#{alert.lower()}" for alert, url in urls.items())
    assert "runbook_url_zh" not in rules, "a wiki page without a Chinese twin is linked in both languages"
    zh_wiki = "https://wiki.example.cn/sre/marketplace-runbooks-zh.html"
    both = generator.render_files(parse({"runbook_base_url": wiki, "runbook_base_url_zh": zh_wiki}))
    assert all(url == f"{zh_wiki}#{alert.lower()}"
               for alert, url in _runbook_urls(both[generator.RULES_FILE], "runbook_url_zh").items())


def test_a_relative_chinese_runbook_base_is_refused() -> None:
    with pytest.raises(MixinConfigError, match="runbook_base_url_zh: expected an absolute http"):
        parse({"runbook_base_url_zh": "docs/runbooks.zh-CN.md"})


def test_both_runbooks_have_one_section_per_alert_with_the_same_anchor() -> None:
    alerts = {alert.lower() for alert in _runbook_urls(
        (ROOT / "alert-rules" / generator.RULES_FILE).read_text(encoding="utf-8"))}
    for name in ("runbooks.md", "runbooks.zh-CN.md"):
        text = (ROOT / "docs" / name).read_text(encoding="utf-8")
        anchors = set(re.findall(r'^<a id="([a-z]+)"></a>$', text, flags=re.MULTILINE))
        assert anchors == alerts, f"{name}: sections without an alert {sorted(anchors - alerts)}, " \
                                  f"alerts without a section {sorted(alerts - anchors)}"


def test_the_anchor_rule_matches_githubs_for_our_headings() -> None:
    assert github_anchor("MarketplaceCheckFailing") == "marketplacecheckfailing"
    assert github_anchor("Second route") == "second-route"
    assert github_anchor("Runbooks for the marketplace-exporter alerts") == \
        "runbooks-for-the-marketplace-exporter-alerts"
