"""Sharding with real processes, in place of a cluster: three ``run --shard=i --total-shards=3``
exporters against one simulator, scraped by one real Prometheus; one unsharded exporter on the same
simulator, scraped by a second Prometheus, is what "one process" answers.

Asserted:

* each account is probed by exactly one shard, the one its key hashes to: every request the
  simulator counted for an account (``/__sim/requests``, bracketed between two reads of the
  exporters' own request counters) came from that shard, and no other shard exports a series of it;
* no per-check series is duplicated across shards in Prometheus, and the series several shards do
  export are the per-process ones (and the shared request-duration histogram, summed by the rules);
* every dashboard query returns the same series (labels, ``instance`` aside; values too for counts)
  from the three shards as from the one process;
* restarting as four shards moves exactly the accounts jump hash moves (only onto the new shard)
  and probes nothing twice.

The alert rules over three shards are checked deterministically by promtool
(tests/unit/test_alert_rules_sharded.py).
"""

from __future__ import annotations

import os
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import local_client, require_binary, stop_process
from dashboard_query_cases import concrete, dashboard_queries
from loopback_configs import generated_rule_files
from prometheus_client.parser import text_string_to_metric_families
from test_dashboards_live import _Process, _spawn

from marketplace_exporter import catalogue as cat
from marketplace_exporter.adapters import ADAPTERS
from marketplace_exporter.cli import DEMO_SIMULATOR, demo_config_path
from marketplace_exporter.shard import Shard, shard_key

pytestmark = pytest.mark.stack

EXPORTER = [sys.executable, "-m", "marketplace_exporter"]
#: the demo config's default share of a documented rate limit
QUOTA_BUDGET = 0.5
#: generic checks added to the demo config, so generic sharding (keyed per check) is exercised too
HTTP_CHECKS = 9
#: series families every process exports once (so once per shard): not duplicates (process_* too)
PER_PROCESS = frozenset({
    cat.BUILD_INFO.name, cat.CONFIG_RELOAD_OK.name, cat.CONFIG_RELOAD_TS.name, "marketplace_exporter_shard_ordinal",
    "marketplace_exporter_total_shards", "marketplace_exporter_accounts_files",
    "marketplace_exporter_accounts_file_errors_total", "up", "scrape_duration_seconds", "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling", "scrape_series_added",
    *(f"{cat.PROBE_LATENESS.name}{suffix}" for suffix in ("_bucket", "_count", "_sum"))})
#: per (marketplace, site, check), shared by the accounts of one site: each shard has the part of
#: its own accounts, and every query sums the buckets (sum by (le, ...))
SUMMED = frozenset(f"{cat.REQUEST_DURATION.name}{suffix}" for suffix in ("_bucket", "_count", "_sum"))


#: dashboard queries that count exporter processes: three shards are three, one process is one
PROCESS_COUNTS = frozenset({"exporter:Exporter shards [A]"})
#: dashboard query → labels whose values depend on a race inside each process, compared without them
RACY_LABELS: dict[str, tuple[str, ...]] = {
    # an account's checks share one access token: which check's probe exchanges it first (and so
    # carries the step="token" series) is the order its probes happen to start in, in any process
    "marketplace:Prober's own requests per hour, by step [A]": ("check",),
}


@dataclass(frozen=True)
class Key:
    """A check as sharding sees it (shard.Keyed)."""

    marketplace: str
    account: str
    name: str

    @property
    def id(self) -> str:
        return f"{self.marketplace}/{self.account}/{self.name}"


def config_text(sim_url: str) -> str:
    """The demo config against this simulator, probing every second, plus generic checks."""
    config: dict[str, Any] = yaml.safe_load(Path(demo_config_path()).read_text(encoding="utf-8")
                                            .replace(DEMO_SIMULATOR, sim_url))
    config["defaults"].update(interval="1s", timeout="800ms")
    # every check on the 1 s default, so each has run on both sides before their answers are compared
    # (a 15-minute check would have run in one process and not yet in the other)
    for account in config["accounts"]:
        for check in account["checks"]:
            check.pop("interval", None)
            check.pop("timeout", None)
    # a check whose documented limit allows less than a probe a second (SP-API production: one a
    # minute) starts skipping after its burst: when depends on its process's start, which differs
    # between the shards and the one process, and the dashboards would rightly say so
    config["accounts"] = [account for account in config["accounts"] if all(
        (limits := ADAPTERS[account["marketplace"]].operations[check["operation"]].limits(
            bool(account.get("sandbox")))) is None or limits[0] * QUOTA_BUDGET >= 1.0
        for check in account["checks"])]
    # one check name on one site for several ERP instances: their request-duration histogram
    # (per marketplace, site, check) is split over shards and summed back by the queries
    config["http_checks"] += [{"name": "health", "url": f"{sim_url}/http/health", "account": f"erp-{index}"}
                              for index in range(HTTP_CHECKS)]
    return yaml.safe_dump(config, allow_unicode=True, sort_keys=False)


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with local_client() as client:
        text = client.get(f"{url}/metrics").text
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def requests_by_account(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> dict[str, float]:
    """``marketplace:account`` → requests this exporter sent for it (every step)."""
    out: dict[str, float] = defaultdict(float)
    for (name, labels), value in samples.items():
        if name == cat.PROBE_REQUESTS.name:
            found = dict(labels)
            out[f"{found['marketplace']}:{found['account']}"] += value
    return out


def probed_checks(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> set[Key]:
    return {Key(found["marketplace"], found["account"], found["check"])
            for (name, labels), value in samples.items() if name == cat.PROBES.name and value > 0
            for found in [dict(labels)]}


def exported_checks(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> set[Key]:
    return {Key(found["marketplace"], found["account"], found["check"])
            for (_name, labels), _value in samples.items()
            for found in [dict(labels)] if "account" in found and "check" in found}


@dataclass
class Stack:
    workdir: Path
    sim_url: str
    config: Path
    processes: list[_Process] = field(default_factory=list)
    shards: list[tuple[_Process, str]] = field(default_factory=list)

    def start_shards(self, total: int, phase: str, *, auto: bool = False) -> None:
        """``--shard=i --total-shards=n``, or (``auto``) ``--shard=auto`` with the StatefulSet's pod
        name and the total in the environment, as the Kubernetes manifests run it."""
        for ordinal in range(total):
            flags = ["--shard=auto"] if auto else [f"--shard={ordinal}", f"--total-shards={total}"]
            env = {**os.environ, "POD_NAME": f"marketplace-exporter-{ordinal}",
                   "MARKETPLACE_EXPORTER_TOTAL_SHARDS": str(total)} if auto else None
            process, address = _spawn(
                f"shard-{phase}-{ordinal}",
                [*EXPORTER, "run", f"--config.file={self.config}", *flags,
                 f"--storage.path={self.workdir / f'data-{phase}-{ordinal}'}"],
                "/-/ready", self.workdir, env=env, port_flag="--web.listen-address")
            self.processes.append(process)
            self.shards.append((process, f"http://{address}"))

    def stop(self, process: _Process) -> None:
        self.processes.remove(process)
        code = stop_process(process.proc, process.name)
        assert code == 0, f"{process.name} exited with {code}:\n{process.log.read_text(errors='replace')[-2000:]}"

    def stop_shards(self) -> None:
        for process, _url in self.shards:
            self.stop(process)
        self.shards = []

    def sim(self, method: str, path: str) -> Any:
        with local_client() as client:
            response = client.request(method, f"{self.sim_url}{path}")
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("shards")
    simulator, sim_address = _spawn("simulator", [*EXPORTER, "simulate"], "/__sim/health", workdir,
                                    port_flag="--web.listen-address")
    config = workdir / "config.yml"
    config.write_text(config_text(f"http://{sim_address}"), encoding="utf-8")
    live = Stack(workdir, f"http://{sim_address}", config, [simulator])
    try:
        yield live
    finally:
        for process in reversed(live.processes):
            if process.proc.poll() is None:
                stop_process(process.proc, process.name)


def _prometheus(stack: Stack, name: str, targets: list[str]) -> str:
    prometheus = require_binary("prometheus")
    rule_files = [str(path) for path in generated_rule_files()]

    def write_config(address: str) -> None:
        addresses = [url.removeprefix("http://") for url in targets]
        config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                  "rule_files": rule_files,
                  "scrape_configs": [{"job_name": "marketplace-exporter", "static_configs": [{"targets": addresses}]}]}
        (stack.workdir / f"{name}.yml").write_text(yaml.safe_dump(config), encoding="utf-8")

    process, address = _spawn(name, [prometheus, f"--config.file={stack.workdir / f'{name}.yml'}",
                                     f"--storage.tsdb.path={stack.workdir / f'{name}-tsdb'}"],
                              "/-/ready", stack.workdir, port_flag="--web.listen-address", prepare=write_config)
    stack.processes.append(process)
    return f"http://{address}"


def query(prometheus: str, promql: str, at: float) -> list[dict[str, Any]]:
    with local_client() as client:
        body = client.get(f"{prometheus}/api/v1/query", params={"query": promql, "time": at}).json()
    assert body["status"] == "success", f"{promql}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"] if body["data"]["resultType"] == "vector" else []
    return result


def wait_until(what: str, predicate: Any, seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"after {seconds:g}s still waiting for {what}", pytrace=False)
        time.sleep(0.3)


def mine(checks: list[Key], ordinal: int, total: int) -> list[Key]:
    return [check for check in checks if Shard(0, total).owner(check) == ordinal]


def configured(stack: Stack) -> list[Key]:
    from marketplace_exporter.config import load_config

    return [Key(check.marketplace, check.account, check.name) for check in load_config(str(stack.config)).checks]


def assert_each_account_probed_by_its_owner(stack: Stack, shard_urls: list[str], total: int,
                                            extra: tuple[str, ...] = ()) -> dict[str, int]:
    """Every simulator request for an account came from the shard owning it; returns account → shard.

    The exporters count a request when its probe ends, after the simulator counted it: so the
    simulator's total lies between the exporters' totals read just before and just after it. Per
    account the simulator can only count the requests it attributes to one (some token and rate
    API calls name no shop): those are at most what the exporters counted for it afterwards."""
    urls = [*shard_urls, *extra]
    before = [requests_by_account(scrape(url)) for url in urls]
    counts = stack.sim("GET", "/__sim/requests")
    sim: dict[str, int] = defaultdict(int)
    for key, count in counts["accounts"].items():
        marketplace, alias, _check = key.split(":", 2)
        sim[f"{marketplace}:{alias}"] += count
    owners: dict[str, int] = {}
    for account in sim:
        senders = [index for index, requests in enumerate(before[:len(shard_urls)]) if requests.get(account)]
        marketplace, alias = account.split(":", 1)
        owners[account] = Shard(0, total).owner(Key(marketplace, alias, ""))
        assert senders in ([], [owners[account]]), f"{account}: probed by shards {senders}, owner {owners[account]}"

    problems: list[str] = []

    def bracketed() -> bool:
        after = [requests_by_account(scrape(url)) for url in urls]
        low, high = (sum(sum(requests.values()) for requests in side) for side in (before, after))
        problems[:] = [f"{account}: simulator {count} > exporters {seen}" for account, count in sim.items()
                       if count > (seen := sum(requests.get(account, 0) for requests in after))]
        if not low <= counts["total"] <= high:
            problems.append(f"total: exporters before {low}, simulator {counts['total']}, exporters after {high}")
        return not problems

    deadline = time.monotonic() + 10
    while not bracketed():
        assert time.monotonic() < deadline, f"requests the simulator counted and no exporter did: {problems}"
        time.sleep(0.3)
    return owners


def test_three_shards_then_four(stack: Stack) -> None:
    checks = configured(stack)
    assert len({shard_key(check) for check in checks}) >= 20
    stack.start_shards(3, "three")
    shard_urls = [url for _process, url in stack.shards]
    one, one_address = _spawn("one-process", [*EXPORTER, "run", f"--config.file={stack.config}",
                                              f"--storage.path={stack.workdir / 'data-one'}"],
                              "/-/ready", stack.workdir, port_flag="--web.listen-address")
    stack.processes.append(one)
    prometheus_shards = _prometheus(stack, "prometheus-shards", shard_urls)
    prometheus_one = _prometheus(stack, "prometheus-one", [f"http://{one_address}"])

    # --- each check is exported by its owner shard only; each account's requests come from it ---
    three = Shard(0, 3)
    for ordinal, url in enumerate(shard_urls):
        exported = exported_checks(scrape(url))
        assert exported == {check for check in checks if three.owner(check) == ordinal}, ordinal
    wait_until("a second probe of every 1 s check on its shard",
               lambda: all(sum(value for (name, labels), value in scrape(url).items() if name == cat.PROBES.name)
                           >= 2 * sum(1 for check in checks if three.owner(check) == ordinal)
                           for ordinal, url in enumerate(shard_urls)), 20)
    owners_three = assert_each_account_probed_by_its_owner(stack, shard_urls, 3, (f"http://{one_address}",))
    assert len(set(owners_three.values())) == 3, owners_three

    # --- in Prometheus: no per-check series twice; what several shards export is per process -------
    every_check = f"count(marketplace_probe_success) == {len(checks)}"
    wait_until("Prometheus to scrape all three shards and the one process, with every check probed", lambda: (
        len(query(prometheus_shards, 'up{job="marketplace-exporter"} == 1', time.time())) == 3
        and query(prometheus_one, every_check, time.time()) and query(prometheus_shards, every_check, time.time())), 40)
    time.sleep(2.5)  # two more scrapes and rule evaluations on both sides
    now = time.time() - 0.5
    named = 'label_replace({job="marketplace-exporter"}, "metric_name", "$1", "__name__", "(.+)")'
    twice = query(prometheus_shards, f"count without (instance) ({named}) > 1", now)
    assert [item["metric"] for item in twice if "account" in item["metric"]] == []
    assert {name for item in twice if not (name := item["metric"]["metric_name"]).startswith("process_")} \
        <= PER_PROCESS | SUMMED, twice
    assert {item["metric"]["metric_name"] for item in twice} & SUMMED, "no site's accounts split over shards: vacuous"

    # --- every dashboard query: the same series from three shards as from one process -------------
    queries = dashboard_queries()
    assert set(RACY_LABELS) | PROCESS_COUNTS <= {item.id for item in queries}, "an exemption names no query"
    differences = []
    answered = counted = 0
    for item in queries:
        expr = concrete(item.expr)
        sharded, single = (query(prometheus, expr, now) for prometheus in (prometheus_shards, prometheus_one))

        ignored = frozenset({"instance", *RACY_LABELS.get(item.id, ())})

        def shape(result: list[dict[str, Any]], ignored: frozenset[str] = ignored) -> set[frozenset[tuple[str, str]]]:
            return {frozenset((k, v) for k, v in row["metric"].items() if k not in ignored) for row in result}

        answered += bool(sharded)
        if shape(sharded) != shape(single):
            differences.append(f"{item.id}: {expr}\n  shards: {sorted(map(sorted, shape(sharded)))}\n"
                               f"  one:    {sorted(map(sorted, shape(single)))}")
        elif item.id in PROCESS_COUNTS:
            values = [[row["value"][1] for row in result] for result in (sharded, single)]
            assert values == [["3"], ["1"]], (item.id, values)
        elif expr.lstrip().startswith("count") and not expr.lstrip().startswith("count_"):
            values = [sorted(row["value"][1] for row in result) for result in (sharded, single)]
            counted += bool(sharded)
            if values[0] != values[1]:
                differences.append(f"{item.id}: {expr}\n  shards {values[0]} != one {values[1]}")
    assert differences == [], "\n".join(differences)
    print(f"dashboard queries with data: {answered}, counts compared: {counted}")
    assert answered >= 40 and counted >= 5, (answered, counted)

    # --- restart as four shards (--shard=auto, as in Kubernetes): only the accounts jump hash moves
    # move, onto the new shard -----------------------------------------------------------------------
    stack.stop(one)
    stack.stop_shards()
    stack.sim("DELETE", "/__sim/requests")
    stack.start_shards(4, "four", auto=True)
    shard_urls = [url for _process, url in stack.shards]
    four = Shard(0, 4)
    for ordinal, url in enumerate(shard_urls):
        assert exported_checks(scrape(url)) == {check for check in checks if four.owner(check) == ordinal}
    with local_client() as client:
        page = client.get(f"{shard_urls[3]}/").text
    assert f"shard 3 of 4 (pod marketplace-exporter-3): probing {len(mine(checks, 3, 4))} of the {len(checks)}" in page
    moved = {check for check in checks if three.owner(check) != four.owner(check)}
    assert moved and {four.owner(check) for check in moved} == {3}, moved
    time.sleep(2.5)  # a couple of probes of every check
    owners_four = assert_each_account_probed_by_its_owner(stack, shard_urls, 4)
    assert owners_four.keys() == owners_three.keys()
    moved_accounts = {account for account, owner in owners_four.items() if owner != owners_three[account]}
    assert moved_accounts == {f"{check.marketplace}:{check.account}" for check in moved
                              if check.marketplace not in ("http", "tls")}
    assert all(owners_four[account] == 3 for account in moved_accounts)
