"""``marketplace_probe_tag_info``: every configured check tag, one series each, following the config."""

from __future__ import annotations

from dataclasses import replace

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from marketplace_exporter import catalogue as c
from marketplace_exporter.cli import demo_config_path
from marketplace_exporter.collector import new_registry
from marketplace_exporter.config import load_config
from marketplace_exporter.store import Store


def _tags(store: Store) -> set[tuple[str, str, str]]:
    text = generate_latest(new_registry(store)).decode()
    family = next(f for f in text_string_to_metric_families(text) if f.name == c.PROBE_TAG_INFO.name)
    assert all(sample.value == 1 for sample in family.samples)
    return {(s.labels["marketplace"], s.labels["account"], s.labels["tag"]) for s in family.samples}


def test_tags_of_the_configured_checks_are_exported_and_follow_a_reload() -> None:
    checks = tuple(load_config(demo_config_path()).checks)
    store = Store()
    store.reconcile(checks)
    tags = _tags(store)
    assert ("shopee", "sg-main", "critical") in tags and ("amazon_sp", "us-main", "critical") in tags
    assert not {t for t in tags if t[1] in ("my-main", "vn-main")}  # untagged accounts: no series
    # a reload that drops the tag: its series vanish with the next scrape
    store.reconcile(tuple(replace(check, tags=()) if check.labels[2] == "sg-main" else check for check in checks))
    assert ("shopee", "sg-main", "critical") not in _tags(store)
