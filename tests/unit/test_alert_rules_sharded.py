"""The alert rules answer the same over three shards as over one process: every promtool unit test
of alert-rules/tests/ passes again with its per-check input series spread over three exporter
instances, each series on the instance of the shard that owns its account
(marketplace_exporter.shard), and the expected alerts' ``instance`` moved the same way.

A rule that joined or aggregated on ``instance`` (or counted exporter processes where it meant
checks) would fail here; the sharded multi-process test (tests/stack/test_shards.py) checks the
dashboards' queries live.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from conftest import require_binary

from marketplace_exporter.shard import GENERIC_MARKETPLACES, shard_of

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "alert-rules" / "tests"
SHARDS = 3
_SERIES = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)?\{(?P<labels>.*)\}$", re.S)
_PAIR = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse(series: str) -> tuple[str, list[tuple[str, str]]]:
    match = _SERIES.match(series.strip())
    assert match, series
    return match["name"] or "", _PAIR.findall(match["labels"])


#: the one exporter of the committed tests; other instances (exporter-a, bridge...) stay as they are
ONE = "exporter:9761"
#: per-process series: every shard has its own (its target's ``up``, its build and reload state...)
PER_PROCESS = re.compile(r"^(up|marketplace_exporter_\w+)$")


def instances(name: str, labels: dict[str, str]) -> list[str] | None:
    """Where a series of the one exporter lives with three shards: the owner shard of its account
    (per-check series), every shard (per-process series), or shard 0 (the config-wide series:
    deprecations, deploys, traffic; and the shared ones, such as a site's request-duration
    histogram, which a shard exports for its own accounts). None: not the one exporter's."""
    if labels.get("instance") != ONE:
        return None
    marketplace, account, check = labels.get("marketplace"), labels.get("account"), labels.get("check")
    if marketplace and account and (check or marketplace not in GENERIC_MARKETPLACES):
        key = f"{marketplace}/{account}/{check}" if marketplace in GENERIC_MARKETPLACES else f"{marketplace}/{account}"
        return [f"shard-{shard_of(key, SHARDS)}:9761"]
    if PER_PROCESS.match(name or labels.get("alertname", "")) or labels.get("alertname", "").startswith(
            "MarketplaceExporter"):
        return [f"shard-{index}:9761" for index in range(SHARDS)]
    return ["shard-0:9761"]


def sharded_series(series: str, used: Counter[str]) -> list[str]:
    name, pairs = parse(series)
    moved = instances(name, dict(pairs))
    if moved is None:
        return [series]
    out = []
    for instance in moved:
        used[instance] += 1
        body = ", ".join(f'{key}="{instance if key == "instance" else value}"' for key, value in pairs)
        out.append(f"{name}{{{body}}}")
    return out


def sharded_alerts(alertname: str, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for alert in alerts:
        labels = alert.get("exp_labels", {})
        moved = instances("", {"alertname": alertname, **labels}) if labels else None
        if moved is None:
            out.append(alert)
            continue
        for instance in moved:
            copy = yaml.safe_load(yaml.safe_dump(alert).replace(ONE, instance))
            out.append(copy)
    return out


def sharded_test_file(document: dict[str, Any], rules: Path, used: Counter[str]) -> tuple[dict[str, Any], int]:
    """The test file with the one exporter's series spread over the shards; also how many of its
    test groups mix per-check series of two or more shards (what makes this test bite)."""
    document = {**document, "rule_files": [str(rules)]}
    mixed = 0
    for group in document["tests"]:
        in_group: Counter[str] = Counter()
        per_check: set[str] = set()
        series_list = []
        for series in group.get("input_series", []):
            name, pairs = parse(series["series"])
            targets = instances(name, dict(pairs))
            if targets is not None and len(targets) == 1 and "account" in dict(pairs):
                per_check.update(targets)
            series_list += [{**series, "series": text} for text in sharded_series(series["series"], in_group)]
        group["input_series"] = series_list
        for case in group.get("alert_rule_test", []):
            if case.get("exp_alerts"):
                case["exp_alerts"] = sharded_alerts(case["alertname"], case["exp_alerts"])
        mixed += len(per_check) >= 2
        used.update(in_group)
    return document, mixed


def test_every_alert_rule_test_passes_with_its_series_on_three_shards(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    used: Counter[str] = Counter()
    mixed = 0
    written = []
    # shards.test.yml is about shards already (several exporter instances with their shard numbers)
    for path in sorted(set(TESTS.glob("*.test.yml")) - {TESTS / "shards.test.yml"}):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        rules = [(path.parent / rule_file).resolve() for rule_file in document["rule_files"]]
        assert len(rules) == 1, path
        sharded, groups_mixed = sharded_test_file(document, rules[0], used)
        mixed += groups_mixed
        out = tmp_path / path.name
        out.write_text(yaml.safe_dump(sharded, allow_unicode=True, sort_keys=False), encoding="utf-8")
        written.append(str(out))
    result = subprocess.run([promtool, "test", "rules", *written], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    # not vacuous: the series really went to all three shards, and many tests mix shards
    assert sorted(used) == [f"shard-{i}:9761" for i in range(SHARDS)], used
    assert mixed >= 5, mixed


def test_the_rewrite_puts_each_series_where_a_sharded_exporter_has_it() -> None:
    used: Counter[str] = Counter()
    per_check = ('marketplace_probe_success{job="marketplace-exporter", instance="exporter:9761", '
                 'marketplace="shopee", site="sg", account="sg-main", check="get_shop_info"}')
    assert sharded_series(per_check, used) == [
        per_check.replace("exporter:9761", f"shard-{shard_of('shopee/sg-main', SHARDS)}:9761")]
    up = 'up{job="marketplace-exporter", instance="exporter:9761"}'
    assert sharded_series(up, used) == [up.replace("exporter:9761", f"shard-{i}:9761") for i in range(SHARDS)]
    calendar = 'marketplace_api_deprecation_timestamp_seconds{instance="exporter:9761", marketplace="ebay", api="x"}'
    assert sharded_series(calendar, used) == [calendar.replace("exporter:9761", "shard-0:9761")]
    http = 'marketplace_probe_success{instance="exporter:9761", marketplace="http", site="x", account="erp", check="o"}'
    assert sharded_series(http, used) == [http.replace("exporter:9761", f"shard-{shard_of('http/erp/o', SHARDS)}:9761")]
    other = 'up{job="marketplace-exporter", instance="exporter-a:9761"}'
    assert sharded_series(other, used) == [other]
