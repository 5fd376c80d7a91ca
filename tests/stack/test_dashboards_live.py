"""Every dashboard query returns data from a real Prometheus scraping the real demo stack.

The stack is the compose stack on loopback: the demo exporter (simulator included), the bridge
(deploy/bridge.yml, robots on the fake robots of tests/integration), a real Alertmanager with the
generated alert-rules/alertmanager.yml (webhooks at the local bridge: no DNS lookup of ``bridge``),
and Prometheus running deploy/prometheus.yml itself, as
:func:`stack_prometheus_config` changes it: target addresses, intervals and the rule-file paths,
nothing else (tests/unit/test_compose.py pins that), with the generated rules loaded so the SLO
recording rules exist.

It is fed what a real installation gets: deploy markers through ``POST /api/v1/deploys``,
production traffic through ``POST /api/v1/traffic`` and ``POST /v1/traces``, one Alertmanager notification through the
bridge to a (fake) DingTalk robot, and a simulator fault (Shopee sg-main's token expires) so the
failure panels have failures to show.

Then every panel target, template variable and annotation of every committed dashboard is one test
case: Grafana's variables become match-all regexes and fixed windows, time series run as range
queries and instant panels as instant queries, and each must return at least one series (with
every label its drill-down link reads). What
cannot have data in a test run is listed in :data:`EXEMPT` with the reason, and reported as a skip
with that reason, never silently.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import DemoExporter, free_port, local_client, require_binary, stop_process
from dashboard_query_cases import DASHBOARDS, EXEMPT, Query, concrete, dashboard_queries, exemption
from loopback_configs import PROMETHEUS_CONFIG, generated_rule_files, stack_alertmanager_config, stack_prometheus_config

from marketplace_exporter import catalogue as cat

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]
BRIDGE_CONFIG = ROOT / "deploy" / "bridge.yml"
BRIDGE_ENV_EXAMPLE = ROOT / "deploy" / "bridge.env.example"
FAKE_ROBOTS = ROOT / "tests" / "integration" / "fake_robots.py"

#: how far back the range queries of time-series panels look, and their step
RANGE_S, STEP_S = 60, 5
#: how long one query may take to return data after the stack is warm (a slow counter, a skip)
QUERY_DEADLINE_S = 45.0

DEPLOY_TOKEN = "live-dashboards-deploy-token"
TRAFFIC_TOKEN = "live-dashboards-traffic-token"
ROBOT_TOKEN, ROBOT_SECRET = "live-dashboards-robot", "SEClive-dashboards-secret"


# --- the stack --------------------------------------------------------------------------------------------


@dataclass
class LiveStack:
    prometheus: str
    exporter: DemoExporter
    bridge: str
    robots: str
    workdir: Path

    def api(self, path: str, **params: Any) -> Any:
        with local_client() as client:
            response = client.get(f"{self.prometheus}/api/v1/{path}", params=params)
        body = response.json()
        assert body.get("status") == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=promql)["result"]
        return result

    def wait_for(self, promql: str, what: str, timeout: float = 40.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while not (result := self.query(promql)):
            if time.monotonic() > deadline:
                targets = [(t["scrapeUrl"], t["health"], t["lastError"])
                           for t in self.api("targets")["activeTargets"]]
                pytest.fail(f"after {timeout:g}s still waiting for {what}: {promql}\n  targets: {targets}",
                            pytrace=False)
            time.sleep(0.5)
        return result


@dataclass
class _Process:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path


def _spawn(name: str, argv: list[str], ready_url: str, workdir: Path, env: Mapping[str, str] | None = None,
           port_flag: str = "", prepare: Callable[[str], None] | None = None) -> tuple[_Process, str]:
    """Start ``argv`` + ``port_flag=127.0.0.1:<free port>`` until it answers ``ready_url``; retry on a lost port.

    ``prepare(address)`` runs before each attempt (Prometheus' config names its own address).
    """
    log = workdir / f"{name}.log"
    for _attempt in range(3):
        port = free_port()
        address = f"127.0.0.1:{port}"
        if prepare is not None:
            prepare(address)
        with log.open("wb") as handle:
            proc = subprocess.Popen([*argv, f"{port_flag}={address}"], stdout=handle, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=workdir, env=dict(env or os.environ))
        deadline = time.monotonic() + 20.0
        with local_client(timeout=2.0) as client:
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    if client.get(f"http://{address}{ready_url}").status_code == 200:
                        return _Process(name, proc, log), address
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if "address already in use" not in log.read_text(errors="replace").lower():
            break
    pytest.fail(f"{name} did not start:\n{log.read_text(errors='replace')[-3000:]}", pytrace=False)


def _env_file(path: Path) -> dict[str, str]:
    pairs = (line.partition("=") for line in path.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.lstrip().startswith("#"))
    return {key.strip(): value.strip() for key, _, value in pairs}


@pytest.fixture(scope="module")
def feed_tokens() -> Iterator[None]:
    """Bearer tokens for the deploy and traffic APIs, in the environment the demo exporter inherits."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MARKETPLACE_EXPORTER_DEPLOY_TOKEN", DEPLOY_TOKEN)
        patch.setenv("MARKETPLACE_EXPORTER_TRAFFIC_TOKEN", TRAFFIC_TOKEN)
        yield


@pytest.fixture(scope="module")
def stack(feed_tokens: None, demo_exporter: DemoExporter,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    prometheus_bin = require_binary("prometheus")
    alertmanager_bin = require_binary("prometheus-alertmanager")
    workdir = tmp_path_factory.mktemp("live-dashboards")
    processes: list[_Process] = []
    try:
        robots, robots_address = _spawn(
            "fake-robots", [sys.executable, str(FAKE_ROBOTS), f"--robot=dingtalk:{ROBOT_TOKEN}:{ROBOT_SECRET}",
                            "--robot=wecom:live-wecom", "--robot=feishu:live-feishu"],
            "/__robots/messages", workdir, port_flag="--listen")
        processes.append(robots)

        # deploy/bridge.yml itself, its outbox moved from /var/lib (the compose volume) into the test's tmp
        bridge_yml = workdir / "bridge.yml"
        bridge_yml.write_text(re.sub(r"(?m)^storage_path: .*$", f"storage_path: {workdir / 'outbox.db'}",
                                     BRIDGE_CONFIG.read_text(encoding="utf-8")), encoding="utf-8")
        bridge_env = {**os.environ, **_env_file(BRIDGE_ENV_EXAMPLE),
                      "DINGTALK_WEBHOOK_URL": f"http://{robots_address}/robot/send?access_token={ROBOT_TOKEN}",
                      "DINGTALK_SECRET": ROBOT_SECRET,
                      "WECOM_WEBHOOK_URL": f"http://{robots_address}/cgi-bin/webhook/send?key=live-wecom",
                      "FEISHU_WEBHOOK_URL": f"http://{robots_address}/open-apis/bot/v2/hook/live-feishu"}
        bridge, bridge_address = _spawn(
            "bridge", [sys.executable, "-m", "marketplace_exporter", "bridge", f"--config.file={bridge_yml}"],
            "/-/ready", workdir, env=bridge_env, port_flag="--web.listen-address")
        processes.append(bridge)

        token_file = workdir / "bridge-token"
        token_file.write_text(bridge_env["BRIDGE_TOKEN"], encoding="utf-8")
        alertmanager_yml = workdir / "alertmanager.yml"
        alertmanager_yml.write_text(yaml.safe_dump(stack_alertmanager_config(bridge_address, token_file)),
                                    encoding="utf-8")
        alertmanager, alertmanager_address = _spawn(
            "alertmanager", [alertmanager_bin, f"--config.file={alertmanager_yml}",
                             f"--storage.path={workdir / 'alertmanager'}", "--cluster.listen-address="],
            "/-/ready", workdir, port_flag="--web.listen-address")
        processes.append(alertmanager)

        def write_config(address: str) -> None:
            config = stack_prometheus_config(
                {"exporter": demo_exporter.url.removeprefix("http://"), "bridge": bridge_address,
                 "alertmanager": alertmanager_address, "prometheus": address},
                generated_rule_files(), interval="1s")
            (workdir / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")

        prometheus, prometheus_address = _spawn(
            "prometheus", [prometheus_bin, f"--config.file={workdir / 'prometheus.yml'}",
                           f"--storage.tsdb.path={workdir / 'tsdb'}"],
            "/-/ready", workdir, port_flag="--web.listen-address", prepare=write_config)
        processes.append(prometheus)
        live = LiveStack(f"http://{prometheus_address}", demo_exporter, f"http://{bridge_address}",
                         f"http://{robots_address}", workdir)
        _feed(live)
        yield live
    finally:
        demo_exporter.clear_faults()
        failures = []
        for process in reversed(processes):
            if process.proc.poll() is not None:
                failures.append(f"{process.name} exited early with {process.proc.returncode}:\n"
                                f"{process.log.read_text(errors='replace')[-2000:]}")
                continue
            code = stop_process(process.proc, process.name)
            if code not in (0, -15):
                tail = process.log.read_text(errors="replace")[-2000:]
                failures.append(f"{process.name} exited with {code}:\n{tail}")
        assert not failures, "\n".join(failures)


def _post(url: str, token: str, body: dict[str, Any]) -> httpx.Response:
    with local_client() as client:
        return client.post(url, json=body, headers={"Authorization": f"Bearer {token}"})


def _post_deploys(live: LiveStack, round_: int) -> None:
    now = time.time()
    for service, environment, status, age in (("order-sync", "production", "succeeded", 120),
                                              ("listing-api", "production", "failed", 60),
                                              ("order-sync", "staging", "started", 5)):
        response = _post(f"{live.exporter.url}/api/v1/deploys", DEPLOY_TOKEN, {
            "service": service, "environment": environment, "version": f"v1.4.{round_}", "commit": "0123abcd",
            "status": status, "sites": ["SG"], "timestamp": now - age, "actor": "live-dashboards-test"})
        assert response.status_code == 201, f"deploy marker refused: {response.status_code} {response.text}"


def _post_traffic(live: LiveStack) -> None:
    response = _post(f"{live.exporter.url}/api/v1/traffic", TRAFFIC_TOKEN, {
        "service": "erp", "instance": "erp-01", "dropped": 1, "records": [
            {"marketplace": "shopee", "site": "SG", "account": "sg-main", "operation": "order.get_order_list",
             "status": 200, "duration": 0.2, "ratelimit": 0.6},
            {"marketplace": "shopee", "site": "SG", "account": "sg-main", "operation": "order.get_order_list",
             "status": 403, "reason": "auth", "code": "invalid_acceess_token", "duration": 0.1, "ratelimit": 0.5},
            # Walmart reports requests left (x-current-token-count), never a ratio
            {"marketplace": "walmart", "site": "US", "account": "us-main", "operation": "orders.get_all",
             "status": 200, "duration": 0.3, "ratelimit_remaining": 17}]})
    assert response.status_code == 200 and response.json()["accepted"] == 3, response.text
    # the same kind of call as an OpenTelemetry SDK exports it (OTLP/JSON), plus a span it ignores
    now = time.time_ns()
    spans = [{"kind": kind, "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 200_000_000),
              "attributes": [{"key": "url.full", "value": {"stringValue": url}},
                             {"key": "http.response.status_code", "value": {"intValue": "200"}}]}
             for kind, url in ((3, "https://partner.shopeemobile.com/api/v2/order/get_order_list"), (2, "/orders"))]
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "erp"}},
                               {"key": "seller.account", "value": {"stringValue": "sg-main"}}]}
    response = _post(f"{live.exporter.url}/v1/traces", TRAFFIC_TOKEN,
                     {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]})
    assert response.status_code == 200 and response.json() == {}, response.text


def _verify(live: LiveStack) -> None:
    """One post-deploy gate run to its final answer (``POST /api/v1/verify`` rounds, as the CLI does)."""
    body: dict[str, Any] = {"service": "order-sync", "environment": "staging", "window_seconds": 2}
    deadline = time.monotonic() + 20
    while True:
        response = _post(f"{live.exporter.url}/api/v1/verify", DEPLOY_TOKEN, body)
        assert response.status_code == 200, f"verify refused: {response.status_code} {response.text}"
        answer = response.json()
        if answer["final"]:
            return
        assert time.monotonic() < deadline, f"the verify gate gave no final answer: {answer}"
        body["since"] = answer["since"]
        time.sleep(0.5)


def _feed(live: LiveStack) -> None:
    """What a real installation gets: deploys, traffic, a notification, and a failing check."""
    sg_main = '{marketplace="shopee",account="sg-main"}'
    live.wait_for(f"{cat.PROBE_SUCCESS.name}{sg_main} == 1", "Shopee sg-main to succeed once (before its fault)")

    # Counters twice, a scrape apart: increase() cannot count a series' first sample, and a real
    # installation's series exist long before the deploy or error a panel shows.
    for round_ in (1, 2):
        _post_deploys(live, round_)
        _post_traffic(live)
        _verify(live)
        if round_ == 1:
            live.wait_for(f"{cat.DEPLOYS.name} and on () {cat.CLIENT_ERRORS.name} and on () "
                          f"{cat.DEPLOY_VERIFICATIONS.name} and on () {cat.OTLP_SPANS.name}",
                          "the first markers, traffic, spans and verification")

    notification = {
        "version": "4", "status": "firing", "receiver": "", "groupKey": '{}:{alertname="LiveTest"}',
        "truncatedAlerts": 0, "groupLabels": {"alertname": "LiveTest"},
        "commonLabels": {"alertname": "LiveTest", "severity": "warning"}, "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{"status": "firing", "labels": {"alertname": "LiveTest", "severity": "warning"},
                    "annotations": {"summary": "live dashboards test"}, "startsAt": "2026-01-01T00:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "0123456789abcdef"}]}
    bridge_token = _env_file(BRIDGE_ENV_EXAMPLE)["BRIDGE_TOKEN"]
    # the WeCom robot answers HTTP 500 for 4 s: the bridge's retries (1 s, 2 s...) fail, then deliver
    with local_client() as client:
        response = client.post(f"{live.robots}/__robots/faults", json={"robot": "wecom", "mode": "http_500",
                                                                       "seconds": 4})
        assert response.status_code in (200, 201, 204), response.text
    receivers = yaml.safe_load(BRIDGE_CONFIG.read_text(encoding="utf-8"))["receivers"]
    for channel in ("dingtalk", "wecom"):
        receiver = next(name for name, spec in sorted(receivers.items()) if spec["channel"] == channel)
        response = _post(f"{live.bridge}/alertmanager/{receiver}", bridge_token, {**notification, "receiver": receiver})
        assert response.status_code in (200, 202), f"bridge refused the notification: {response.status_code} " \
                                                   f"{response.text}"

    live.exporter.inject_fault("shopee", "token_expired", account="sg-main")
    live.wait_for(f"{cat.PROBE_SUCCESS.name}{sg_main} == 0", "sg-main to fail after its token expired")
    live.wait_for(f"increase({cat.API_ERRORS.name}[1m]) > 0", "a platform error code")
    live.wait_for(f"{cat.BRIDGE_NOTIFICATIONS.name} > 0", "the bridge to deliver to the fake robot")
    live.wait_for(f"increase({cat.BRIDGE_FAILURES.name}[1m]) > 0", "the bridge to count the robot's HTTP 500s")
    live.wait_for(f"increase({cat.DEPLOYS.name}[1m]) > 0", "the second round of deploy markers")
    live.wait_for(f"increase({cat.DEPLOY_VERIFICATIONS.name}[1m]) > 0", "the second verification")
    live.wait_for(cat.slo_error_ratio_rule(cat.SLO_WINDOWS[0]), "the SLO recording rules")


# --- the tests ----------------------------------------------------------------------------------------------

QUERIES = dashboard_queries()


def test_every_dashboard_contributes_queries_and_exemptions_name_real_panels() -> None:
    assert {q.dashboard for q in QUERIES} == {p.stem for p in DASHBOARDS.glob("*.json")}
    keys = {q.key for q in QUERIES} | {q.key[:2] for q in QUERIES}
    assert set(EXEMPT) <= keys, f"exemptions for panels that do not exist: {set(EXEMPT) - keys}"


def test_stack_prometheus_runs_the_compose_config_and_scrapes_every_job(stack: LiveStack) -> None:
    jobs = {job["job_name"] for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))["scrape_configs"]}
    result = stack.wait_for("count by (job) (up == 1)", "every job up")
    deadline = time.monotonic() + 20
    while {s["metric"]["job"] for s in result} != jobs and time.monotonic() < deadline:
        time.sleep(0.5)
        result = stack.query("count by (job) (up == 1)")
    assert {s["metric"]["job"] for s in result} == jobs
    rules = {rule["name"] for group in stack.api("rules")["groups"] for rule in group["rules"]}
    assert {cat.slo_error_ratio_rule(window) for window in cat.SLO_WINDOWS} <= rules


@pytest.mark.parametrize("query", QUERIES, ids=[q.id for q in QUERIES])
def test_dashboard_query_returns_data(stack: LiveStack, query: Query) -> None:
    reason = exemption(query)
    promql = concrete(query.expr)
    if reason is not None:
        # exempt from "returns data" (the reason is in EXEMPT and checked to name a real panel), not
        # from running: Prometheus must still evaluate it without error. Not a skip, so a CI run with
        # REQUIRE_STACK=1 shows no skipped stack tests.
        if query.kind == "series":
            stack.api("series", **{"match[]": promql, "start": str(time.time() - RANGE_S)})
        else:
            stack.query(promql)
        return

    deadline = time.monotonic() + QUERY_DEADLINE_S
    while True:
        if query.kind == "series":
            found = stack.api("series", **{"match[]": promql, "start": str(time.time() - RANGE_S)})
        elif query.kind == "instant":
            found = stack.query(promql)
        else:
            end = time.time()
            found = stack.api("query_range", query=promql, start=str(end - RANGE_S), end=str(end),
                              step=str(STEP_S))["result"]
        if found:
            missing = {field for field in query.link_fields for series in found if field not in series["metric"]}
            assert not missing, f"{query.id}: its drill-down link reads {sorted(missing)}, which the query drops"
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{query.id}: no data after {QUERY_DEADLINE_S:g}s\n  {promql}", pytrace=False)
        time.sleep(1.0)
