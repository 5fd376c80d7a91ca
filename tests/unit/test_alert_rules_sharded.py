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


def owner_instance(labels: dict[str, str]) -> str | None:
    """The instance of the shard owning this per-check series, or None (a per-process series)."""
    marketplace, account, check = labels.get("marketplace"), labels.get("account"), labels.get("check")
    if "instance" not in labels or not marketplace or not account:
        return None
    if marketplace in GENERIC_MARKETPLACES:
        if not check:
            return None
        key = f"{marketplace}/{account}/{check}"
    else:
        key = f"{marketplace}/{account}"
    return f"shard-{shard_of(key, SHARDS)}:9761"


def sharded_series(series: str, used: Counter[str]) -> str:
    name, pairs = parse(series)
    instance = owner_instance(dict(pairs))
    if instance is None:
        return series
    used[instance] += 1
    body = ", ".join(f'{key}="{instance if key == "instance" else value}"' for key, value in pairs)
    return f"{name}{{{body}}}"


def sharded_test_file(document: dict[str, Any], rules: Path, used: Counter[str]) -> tuple[dict[str, Any], int]:
    """The test file with its series spread over the shards; also how many of its test groups
    mix series of two or more shards (what makes this test bite)."""
    document = {**document, "rule_files": [str(rules)]}
    mixed = 0
    for group in document["tests"]:
        in_group: Counter[str] = Counter()
        for series in group.get("input_series", []):
            series["series"] = sharded_series(series["series"], in_group)
        for case in group.get("alert_rule_test", []):
            for alert in case.get("exp_alerts") or []:
                instance = owner_instance(alert.get("exp_labels", {}))
                if instance is not None:
                    alert["exp_labels"]["instance"] = instance
        for case in group.get("promql_expr_test", []):
            for sample in case.get("exp_samples") or []:
                sample["labels"] = sharded_series(sample["labels"], Counter())
        mixed += len(in_group) >= 2
        used.update(in_group)
    return document, mixed


def test_every_alert_rule_test_passes_with_its_series_on_three_shards(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    used: Counter[str] = Counter()
    mixed = 0
    written = []
    for path in sorted(TESTS.glob("*.test.yml")):
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


def test_the_rewrite_moves_per_check_series_only() -> None:
    used: Counter[str] = Counter()
    per_check = ('marketplace_probe_success{job="marketplace-exporter", instance="exporter:9761", '
                 'marketplace="shopee", site="sg", account="sg-main", check="get_shop_info"}')
    moved = sharded_series(per_check, used)
    assert moved == per_check.replace("exporter:9761", f"shard-{shard_of('shopee/sg-main', SHARDS)}:9761")
    process = 'marketplace_exporter_build_info{job="marketplace-exporter", instance="exporter:9761", version="1"}'
    assert sharded_series(process, used) == process
    http = 'marketplace_probe_success{instance="e:1", marketplace="http", site="x", account="erp", check="orders"}'
    assert f"shard-{shard_of('http/erp/orders', SHARDS)}:9761" in sharded_series(http, used)
