"""The dashboards answer the same over several exporter processes as over one, for the series that
several processes export alike (``catalogue.REPLICATED``: certificates, the API calendar, the deploy
audit log, accounts files; an account's credentials while a resize moves it; the shard gauges).

Every dashboard query that reads such a family is evaluated by promtool three times over the same
facts: as one exporter exports them, as three shards do (the deploy series on shard 0 only, which
restarts mid-window as a new target; a certificate on every shard; a moving account on its old and
new shard), and as three replicas sharing a PostgreSQL audit log do (everything replicated, one
replica restarting as a new target). Each must give the one answer written below — what one process
gives. A query that summed per process, listed a host once per shard, or counted a marker again
after a restart fails here. The partitioned series (per check, summed) are compared live over three
shards by tests/stack/test_shards.py.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import require_binary

from marketplace_exporter import catalogue as cat

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"
#: Grafana's built-in windows as the test fills them in; every other ``$variable`` matches all
WINDOWS = {"__range": "1h", "__interval": "5m", "__rate_interval": "5m"}
EVAL = "60m"
MINUTES = 70
JOB = "marketplace-exporter"
#: families several processes export with one value (and the shard gauges, one per process)
SHARED_FAMILIES = frozenset(spec.name for spec in (*cat.REPLICATED, cat.CREDENTIAL_EXPIRY, cat.SHARD_ORDINAL,
                                                   cat.TOTAL_SHARDS))
#: queries that count processes on purpose: three shards are three
PROCESS_COUNTS = frozenset({"exporter:Exporter shards [A]"})

Values = list[float | None]


def step(before: float, after: float, at: int) -> Values:
    """``before`` until minute ``at``, ``after`` from it."""
    return [before if minute < at else after for minute in range(MINUTES + 1)]


def flat(value: float) -> Values:
    return [value] * (MINUTES + 1)


def window(values: Values, start: int, end: int) -> Values:
    """Only the samples of minutes [start, end): a process that ran then."""
    return [value if start <= minute < end else None for minute, value in enumerate(values)]


@dataclass(frozen=True)
class Fact:
    """One series as one exporter exports it; ``where`` says who exports it with several processes:
    ``every`` process, ``log`` (the deploy audit log's: shard 0 / every replica), ``moving`` (an
    account a resize moves from shard 1 to shard 2), ``owner`` (the shard owning the account)."""

    name: str
    labels: dict[str, str]
    values: Values
    where: str


def _deploy(name: str, values: Values, **labels: str) -> Fact:
    return Fact(name, {"service": "erp-sync", "environment": "production", **labels}, values, "log")


# seconds since the test's epoch: minute 57 is 3420 s
FACTS = [
    Fact(cat.TLS_CERT_EXPIRY.name, {"host": "partner.shopeemobile.com"}, flat(5 * 86400), "every"),
    Fact(cat.TLS_CERT_EXPIRY.name, {"host": "api.lazada.sg"}, flat(365 * 86400), "every"),
    Fact(cat.CREDENTIAL_EXPIRY.name, {"marketplace": "shopee", "site": "sg", "account": "sg-main",
                                      "credential": "authorization"}, flat(36000), "moving"),
    Fact(cat.CREDENTIAL_EXPIRY.name, {"marketplace": "lazada", "site": "my", "account": "my-main",
                                      "credential": "refresh_token"}, flat(30 * 86400), "owner"),
    Fact(cat.API_DEPRECATION.name, {"marketplace": "amazon_sp", "api": "orders_v0"}, flat(30 * 86400), "log"),
    _deploy(cat.DEPLOYS.name, step(5, 6, 57), status="succeeded"),
    _deploy(cat.DEPLOYS.name, step(6, 7, 45), status="started"),
    _deploy(cat.DEPLOYS.name, flat(1), status="failed"),
    _deploy(cat.DEPLOYS.name, flat(0), status="rolled_back"),
    _deploy(cat.DEPLOYS_IN_FREEZE.name, step(2, 3, 57)),
    _deploy(cat.DEPLOY_TIMESTAMP.name, step(-86400, 3420, 57), status="succeeded"),
    _deploy(cat.DEPLOY_TIMESTAMP.name, step(-86400, 2700, 45), status="started"),
    _deploy(cat.DEPLOY_TIMESTAMP.name, flat(-172800), status="failed"),
    _deploy(cat.DEPLOY_INFO.name, flat(1), version="v2", commit="abc123"),
    Fact(cat.DEPLOY_FREEZE_ACTIVE.name, {"environment": "production"}, flat(1), "log"),
    Fact(cat.DEPLOY_FREEZE_ACTIVE.name, {"environment": "staging"}, flat(0), "log"),
    Fact(cat.ACCOUNTS_FILES.name, {"state": "broken"}, flat(2), "every"),
    Fact(cat.ACCOUNTS_FILES.name, {"state": "ok"}, flat(10), "every"),
    Fact(cat.ACCOUNTS_FILE_ERRORS.name, {}, step(0, 1, 57), "every"),
]


def layout(kind: str) -> list[tuple[str, dict[str, str], Values]]:
    """(instance, labels, values) of every series the processes of ``kind`` export."""
    if kind == "one":
        gauges = [("exporter:9761", 0.0, 1.0)]
    else:
        total = 3.0 if kind == "shards" else 1.0
        gauges = [(f"{kind}-{i}:9761", float(i) if kind == "shards" else 0.0, total) for i in range(3)]
    series: list[tuple[str, dict[str, str], Values]] = []
    for instance, ordinal, total in gauges:
        series.append((instance, {"__name__": cat.SHARD_ORDINAL.name}, flat(ordinal)))
        series.append((instance, {"__name__": cat.TOTAL_SHARDS.name}, flat(total)))
    for fact in FACTS:
        labels = {"__name__": fact.name, **fact.labels}
        if kind == "one":
            series.append(("exporter:9761", labels, fact.values))
        elif fact.where == "every" or (fact.where == "log" and kind == "replicas"):
            # the third process restarts at minute 30 and comes back at 31 as a new target
            series += [(f"{kind}-0:9761", labels, fact.values), (f"{kind}-1:9761", labels, fact.values),
                       (f"{kind}-2:9761", labels, window(fact.values, 0, 30)),
                       (f"{kind}-2b:9761", labels, window(fact.values, 31, MINUTES + 1))]
        elif fact.where == "log":  # shard 0 only, restarting at minute 30 as a new target
            series += [(f"{kind}-0:9761", labels, window(fact.values, 0, 30)),
                       (f"{kind}-0b:9761", labels, window(fact.values, 31, MINUTES + 1))]
        elif fact.where == "moving":  # old and new owner both run for the last minutes before EVAL
            series += [(f"{kind}-1:9761", labels, window(fact.values, 0, 59)),
                       (f"{kind}-2:9761", labels, window(fact.values, 55, MINUTES + 1))]
        else:
            series.append((f"{kind}-0:9761", labels, fact.values))
    return series


def _text(instance: str, labels: dict[str, str]) -> str:
    name = labels["__name__"]
    pairs = [f'job="{JOB}"', f'instance="{instance}"'] + [f'{k}="{v}"' for k, v in labels.items() if k != "__name__"]
    return f"{name}{{{', '.join(pairs)}}}"


def _values(values: Values) -> str:
    return " ".join("_" if value is None else format(value, "g") for value in values)


#: what one exporter answers at EVAL (minute 60; $__range 1h, $__interval 5m), per query
EXPECTED: dict[str, list[tuple[dict[str, str], float]]] = {
    "credentials:Credentials expiring within 7 days [A]": [({}, 1)],
    "credentials:TLS certificates expiring within 7 days [A]": [({}, 1)],
    "credentials:APIs removed within 90 days [A]": [({}, 1)],
    "credentials:Credentials by time to expiry [A]": [
        ({"marketplace": "shopee", "site": "sg", "account": "sg-main", "credential": "authorization"}, 32400),
        ({"marketplace": "lazada", "site": "my", "account": "my-main", "credential": "refresh_token"}, 2588400)],
    "credentials:TLS certificates by time to expiry [A]": [
        ({"host": "partner.shopeemobile.com"}, 428400), ({"host": "api.lazada.sg"}, 31532400)],
    "credentials:API deprecation dates [A]": [({"marketplace": "amazon_sp", "api": "orders_v0"}, 2588400)],
    "deploys:Deploys (time range) [A]": [({}, 2)],
    "deploys:Failed or rolled back (time range) [A]": [({}, 0)],
    "deploys:Deploys during a freeze (time range) [A]": [({}, 1)],
    "deploys:Environments frozen now [A]": [({}, 1)],
    "deploys:Deploy timeline [A]": [({"service": "erp-sync", "environment": "production", "status": "succeeded"}, 1)],
    "deploys:Current version per service and environment [A]": [
        ({"service": "erp-sync", "environment": "production", "version": "v2", "commit": "abc123"}, 180)],
    "deploys:Freeze windows [A]": [({"environment": "production"}, 1), ({"environment": "staging"}, 0)],
    "deploys:Deploy markers by status (time range) [A]": [
        ({"service": "erp-sync", "environment": "production", "status": "succeeded"}, 1),
        ({"service": "erp-sync", "environment": "production", "status": "started"}, 1)],
    "overview:Latest deploys [A]": [
        ({"service": "erp-sync", "environment": "production", "status": "succeeded"}, 180),
        ({"service": "erp-sync", "environment": "production", "status": "started"}, 900),
        ({"service": "erp-sync", "environment": "production", "status": "failed"}, 176400)],
    "overview:Credentials due in 7d [A]": [({}, 1)],
    "overview:Certificates due in 7d [A]": [({}, 1)],
    "exporter:Shards missing [A]": [({}, 0)],
    "exporter:Broken accounts files [A]": [({}, 2)],
    # one refused version (the counter's step at minute 57) in the 5 m window
    "exporter:Config reloads [C]": [({}, 1)],
    **{f"{name}:annotation Deploys": [
        ({"service": "erp-sync", "environment": "production", "status": "succeeded"}, 3420000),
        ({"service": "erp-sync", "environment": "production", "status": "started"}, 2700000),
        ({"service": "erp-sync", "environment": "production", "status": "failed"}, -172800000)]
       for name in ("credentials", "deploys", "exporter", "marketplace", "overview")},
}


def _panels(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in node.get("panels", []):
        yield panel
        yield from _panels(panel)


def english(title: str) -> str:
    """The English part of a ``中文 · English`` title (dashboards/zh.py)."""
    return title.rpartition(" · ")[2]


def shared_queries() -> dict[str, str]:
    """query id → PromQL with the variables filled in, for every panel target and annotation that
    reads a family several processes export."""
    found: dict[str, str] = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        named = [(f"{path.stem}:{english(panel['title'])} [{t['refId']}]", t["expr"])
                 for panel in _panels(dashboard) for t in panel.get("targets", [])]
        named += [(f"{path.stem}:annotation {english(a['name'])}", a["expr"])
                  for a in dashboard["annotations"]["list"] if "expr" in a]
        for query_id, expr in named:
            if set(re.findall(r"[a-z_:]+", expr)) & SHARED_FAMILIES and query_id not in PROCESS_COUNTS:
                found[query_id] = concrete(expr)
    return found


def concrete(expr: str) -> str:
    for name, value in WINDOWS.items():
        expr = re.sub(r"\$\{?" + name + r"\b\}?", value, expr)
    return re.sub(r"\$\{?\w+(:\w+)?\}?", ".*", expr)


def _labels(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def test_every_query_on_a_shared_family_has_its_one_process_answer() -> None:
    # a new panel on such a family must say here what one process answers (and so be checked)
    assert set(shared_queries()) == set(EXPECTED)


@pytest.mark.parametrize("kind", ["one", "shards", "replicas"])
def test_dashboards_give_one_process_answer(kind: str, tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    queries = shared_queries()
    series = [{"series": _text(instance, labels), "values": _values(values)}
              for instance, labels, values in layout(kind)]
    (tmp_path / "none.yml").write_text("groups: []\n", encoding="utf-8")
    document = {"rule_files": ["none.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series,
        "promql_expr_test": [
            {"expr": queries[query_id], "eval_time": EVAL,
             "exp_samples": [{"labels": _labels(labels), "value": value} for labels, value in expected]}
            for query_id, expected in sorted(EXPECTED.items())]}]}
    path = tmp_path / f"dashboards-{kind}.test.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    result = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-3000:]
    if kind != "one":  # not vacuous: several processes export the shared series
        assert len({instance for instance, _labels, _values in layout(kind)}) >= 4
