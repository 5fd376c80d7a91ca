"""The alert rules answer the same over several exporter processes as over one: every promtool unit
test of alert-rules/tests/ passes again with its input series laid out as several processes export
them, and the expected alerts' ``instance`` moved the same way. Two layouts:

* three shards (``run --shard``): each per-check series on the shard that owns its account
  (marketplace_exporter.shard), the per-process ones on every shard, and a TLS certificate on every
  shard (each shard probing that marketplace connects to its API host);
* three replicas sharing a PostgreSQL audit log (docs/deploys.md): the replicated views
  (``catalogue.REPLICATED``: deploy markers, freeze windows, the API calendar, certificates) on every
  replica, what one replica did (a gate run, a traffic report) on one of them, the checks on one.

A rule that joined or aggregated on ``instance``, counted exporter processes where it meant checks,
or read a replicated series per process (one alert per replica or shard) fails here; the multi-process
test (tests/stack/test_shards.py) and tests/unit/test_dashboards_sharded.py check the dashboards.
"""

from __future__ import annotations

import re
import subprocess
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from conftest import require_binary

from marketplace_exporter import catalogue as cat
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
#: series names of the families every process that has them exports with the same value
REPLICATED = frozenset(spec.name for spec in cat.REPLICATED)
SHARDS_LAYOUT, REPLICAS_LAYOUT = "shard", "replica"


def _per_check_key(labels: dict[str, str]) -> str | None:
    marketplace, account, check = labels.get("marketplace"), labels.get("account"), labels.get("check")
    if marketplace and account and (check or marketplace not in GENERIC_MARKETPLACES):
        return f"{marketplace}/{account}/{check}" if marketplace in GENERIC_MARKETPLACES else f"{marketplace}/{account}"
    return None


def instances(name: str, labels: dict[str, str], layout: str = SHARDS_LAYOUT) -> list[str] | None:
    """Where a series of the one exporter lives with three processes. Shards: the owner shard of its
    account (per-check series), every shard (per-process series, a probed host's certificate), or
    shard 0 (the config-wide series: deprecations, deploys, traffic; and the shared ones, such as a
    site's request-duration histogram, which a shard exports for its own accounts). Replicas: every
    replica (per-process series, replicated views), replica 0 (the checks: one replica probes), or the
    one replica that did the work (a gate run, a traffic report: spread by the series' labels).
    None: not the one exporter's."""
    if labels.get("instance") != ONE:
        return None
    every = [f"{layout}-{index}:9761" for index in range(SHARDS)]
    key = _per_check_key(labels)
    alertname = labels.get("alertname", "")
    if PER_PROCESS.match(name or alertname) or alertname.startswith("MarketplaceExporter"):
        return every
    if layout == SHARDS_LAYOUT:
        if key is not None:
            return [f"shard-{shard_of(key, SHARDS)}:9761"]
        return every if name == cat.TLS_CERT_EXPIRY.name else ["shard-0:9761"]
    if name in REPLICATED:
        return every
    if key is not None:
        return ["replica-0:9761"]
    served_by = zlib.crc32(repr(sorted(labels.items())).encode()) % SHARDS
    return [f"replica-{served_by}:9761"]


def sharded_series(series: str, used: Counter[str], layout: str = SHARDS_LAYOUT) -> list[str]:
    name, pairs = parse(series)
    moved = instances(name, dict(pairs), layout)
    if moved is None:
        return [series]
    out = []
    for instance in moved:
        used[instance] += 1
        body = ", ".join(f'{key}="{instance if key == "instance" else value}"' for key, value in pairs)
        out.append(f"{name}{{{body}}}")
    return out


def sharded_alerts(alertname: str, alerts: list[dict[str, Any]], layout: str = SHARDS_LAYOUT) -> list[dict[str, Any]]:
    out = []
    for alert in alerts:
        labels = alert.get("exp_labels", {})
        moved = instances("", {"alertname": alertname, **labels}, layout) if labels else None
        if moved is None:
            out.append(alert)
            continue
        for instance in moved:
            copy = yaml.safe_load(yaml.safe_dump(alert).replace(ONE, instance))
            out.append(copy)
    return out


def has_replicated_series(group: dict[str, Any]) -> bool:
    return any(parse(series["series"])[0] in REPLICATED for series in group.get("input_series", []))


def sharded_test_file(document: dict[str, Any], rules: Path, used: Counter[str],
                      layout: str = SHARDS_LAYOUT) -> tuple[dict[str, Any], int, int]:
    """The test file with the one exporter's series spread over the processes; also how many of its
    test groups mix per-check series of two or more shards, and how many test a replicated series
    from every process (what makes this test bite). The replicas layout keeps only the groups with a
    replicated series: in the others one replica does all the work, as the one exporter did."""
    document = {**document, "rule_files": [str(rules)]}
    if layout == REPLICAS_LAYOUT:
        document["tests"] = [group for group in document["tests"] if has_replicated_series(group)]
    mixed = replicated = 0
    for group in document["tests"]:
        in_group: Counter[str] = Counter()
        per_check: set[str] = set()
        series_list = []
        for series in group.get("input_series", []):
            name, pairs = parse(series["series"])
            targets = instances(name, dict(pairs), layout)
            if targets is not None and len(targets) == 1 and "account" in dict(pairs):
                per_check.update(targets)
            series_list += [{**series, "series": text}
                            for text in sharded_series(series["series"], in_group, layout)]
        group["input_series"] = series_list
        for case in group.get("alert_rule_test", []):
            if case.get("exp_alerts"):
                case["exp_alerts"] = sharded_alerts(case["alertname"], case["exp_alerts"], layout)
        mixed += len(per_check) >= 2
        replicated += has_replicated_series(group) and any(
            case.get("exp_alerts") for case in group.get("alert_rule_test", []))
        used.update(in_group)
    return document, mixed, replicated


def run_layout(tmp_path: Path, layout: str) -> tuple[Counter[str], int, int]:
    """promtool over every test file of alert-rules/tests/ in ``layout``: (instances used, groups
    mixing shards, groups where a replicated series from several processes must fire)."""
    promtool = require_binary("promtool")
    used: Counter[str] = Counter()
    mixed = replicated = 0
    written = []
    # shards.test.yml is about several processes already (exporter instances with their shard numbers)
    for path in sorted(set(TESTS.glob("*.test.yml")) - {TESTS / "shards.test.yml"}):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        rules = [(path.parent / rule_file).resolve() for rule_file in document["rule_files"]]
        assert len(rules) == 1, path
        sharded, groups_mixed, groups_replicated = sharded_test_file(document, rules[0], used, layout)
        if not sharded["tests"]:
            continue
        mixed += groups_mixed
        replicated += groups_replicated
        out = tmp_path / f"{layout}-{path.name}"
        out.write_text(yaml.safe_dump(sharded, allow_unicode=True, sort_keys=False), encoding="utf-8")
        written.append(str(out))
    result = subprocess.run([promtool, "test", "rules", *written], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return used, mixed, replicated


def test_every_alert_rule_test_passes_with_its_series_on_three_shards(tmp_path: Path) -> None:
    used, mixed, replicated = run_layout(tmp_path, SHARDS_LAYOUT)
    # not vacuous: the series really went to all three shards, many tests mix shards, and a probed
    # host's certificate from three shards still fires once
    assert sorted(used) == [f"shard-{i}:9761" for i in range(SHARDS)], used
    assert mixed >= 5, mixed
    assert replicated >= 1, replicated


def test_every_alert_on_a_replicated_series_fires_once_from_three_replicas(tmp_path: Path) -> None:
    used, _mixed, replicated = run_layout(tmp_path, REPLICAS_LAYOUT)
    assert sorted(used) == [f"replica-{i}:9761" for i in range(SHARDS)], used
    # deploy failed, deploy during a freeze, errors rose after a deploy, a certificate, the calendar
    assert replicated >= 5, replicated


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
    cert = 'marketplace_tls_cert_expiry_timestamp_seconds{instance="exporter:9761", host="partner.shopeemobile.com"}'
    assert sharded_series(cert, used) == [cert.replace("exporter:9761", f"shard-{i}:9761") for i in range(SHARDS)]


def test_the_rewrite_puts_each_series_where_replicas_sharing_the_audit_log_have_it() -> None:
    used: Counter[str] = Counter()
    marker = ('marketplace_deploys_total{instance="exporter:9761", service="erp-sync", environment="production", '
              'status="started"}')
    assert sharded_series(marker, used, REPLICAS_LAYOUT) == [
        marker.replace("exporter:9761", f"replica-{i}:9761") for i in range(SHARDS)]
    gate_run = ('marketplace_deploy_verifications_total{instance="exporter:9761", service="erp-sync", '
                'environment="production", result="fail"}')
    [served] = sharded_series(gate_run, used, REPLICAS_LAYOUT)
    assert re.search(r'instance="replica-[0-2]:9761"', served), served
    check = ('marketplace_probe_success{instance="exporter:9761", marketplace="shopee", site="sg", account="a", '
             'check="c"}')
    assert sharded_series(check, used, REPLICAS_LAYOUT) == [check.replace("exporter:9761", "replica-0:9761")]
