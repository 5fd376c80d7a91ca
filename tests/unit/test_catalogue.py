"""The catalogue is the one list of names: the README table is generated from it, every metric it
lists is emitted, and names follow the Prometheus naming rules."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from marketplace_exporter import catalogue, docs_gen
from marketplace_exporter.collector import new_registry
from marketplace_exporter.docs_gen import main as docs_gen_main
from marketplace_exporter.metric_help_zh import HELP_ZH, StaleTranslation
from marketplace_exporter.store import Store

ROOT = Path(__file__).resolve().parents[2]


def test_readme_metric_table_is_fresh() -> None:
    assert docs_gen_main(["--check", "--readme", str(ROOT / "README.md")]) == 0


def test_chinese_readme_metric_table_is_fresh_and_translates_every_metric() -> None:
    assert docs_gen_main(["--check", "--readme", str(ROOT / "README.zh-CN.md")]) == 0
    assert set(HELP_ZH) == {spec.name for spec in catalogue.ALL}, "a translation for a metric that is gone"


def test_an_edited_english_help_makes_its_chinese_meaning_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    edited = dataclasses.replace(catalogue.PROBE_SUCCESS, help="1 if the check's last probe passed, else 0.")
    monkeypatch.setattr(catalogue, "ALL", (edited, *catalogue.ALL[1:]))
    with pytest.raises(StaleTranslation, match="marketplace_probe_success: its English HELP changed"):
        docs_gen.metric_table("zh")
    assert "1 if the check's last probe passed" in docs_gen.metric_table("en")


def test_names_follow_prometheus_conventions() -> None:
    for spec in catalogue.ALL:
        assert spec.name.startswith(catalogue.NAMESPACE + "_")
        assert re.fullmatch(r"[a-z_]+", spec.name)
        assert spec.name.endswith("_total") == (spec.kind == "counter"), spec.name
        assert not any(label in spec.name for label in ("marketplace_site", "_account_", "_check_"))
        assert spec.help.endswith("."), spec.name
    assert len({spec.name for spec in catalogue.ALL}) == len(catalogue.ALL)


def test_every_probe_metric_family_is_exposed_even_with_no_checks() -> None:
    text = generate_latest(new_registry(Store())).decode()
    exposed = {family.name for family in text_string_to_metric_families(text)}
    assert exposed == {spec.family_name if spec.kind != "info" else spec.name
                       for spec in catalogue.PROBE_METRICS + catalogue.ALERTING_METRICS}


def test_metric_groups_partition_the_catalogue() -> None:
    groups = (catalogue.PROBE_METRICS, catalogue.ACCOUNTS_FILES_METRICS, catalogue.SHARD_METRICS,
              catalogue.ALERTING_METRICS, catalogue.DEPLOY_METRICS, catalogue.TRAFFIC_METRICS,
              catalogue.OTLP_METRICS, catalogue.BRIDGE_METRICS)
    assert sum(len(group) for group in groups) == len(catalogue.ALL)
    assert {spec for group in groups for spec in group} == set(catalogue.ALL)
