"""A real Prometheus scraping the real demo exporter: faults injected into the simulator must show
up through PromQL exactly as the dashboards and alert rules will query them.

Why a real Prometheus and not parsing /metrics: it proves the exposition is accepted by the actual
parser, that counters behave as counters under ``increase()`` across scrapes, and that label sets
stay stable while checks flip between success and failure — none of which a text parse catches.

Timing: demo checks run every 5 s (±10 %), Prometheus scrapes and evaluates every 1 s, and its
first scrape lands about 6 s after it starts. Every wait below is a poll with a deadline.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import DemoExporter, free_port, local_client, require_binary, stop_process

pytestmark = pytest.mark.stack

#: (marketplace, account, check) of the checks in examples/demo.yml this test relies on; the demo
#: may grow, and any other configured check is held to the same rules whenever it has a result
DEMO_CHECKS = {
    ("amazon_sp", "us-main", "marketplace_participations"),
    ("amazon_sp", "eu-main", "marketplace_participations"),
    ("shopee", "sg-main", "get_shop_info"),
    ("shopee", "my-main", "get_shop_info"),
    ("http", "self", "erp-order-sync"),
}
#: eu-main runs under production SP-API limits: its quota budget may keep it from probing at all
#: while the test runs, so it is checked only when it has a result
BUDGET_LIMITED = {("amazon_sp", "eu-main", "marketplace_participations")}
#: checks that run every 5 s and must have results
EVERY_5S = DEMO_CHECKS - BUDGET_LIMITED
SG_MAIN = ("shopee", "sg-main", "get_shop_info")
MY_MAIN = ("shopee", "my-main", "get_shop_info")
US_MAIN = ("amazon_sp", "us-main", "marketplace_participations")
#: demo interval 5 s with 10 % jitter, plus a scrape interval, plus slack for a loaded machine
FAULT_VISIBLE_S = 20.0
#: a healthy 5 s check never has a last run older than this (5.5 s worst-case jitter + scrape + slack)
STALE_AFTER_S = 8.0

Series = list[dict[str, Any]]


@dataclass
class Prometheus:
    """A running Prometheus and its HTTP query API."""

    url: str
    log_path: Path

    def query(self, promql: str) -> Series:
        """Instant query; fails the test on a PromQL error (a typo must not read as 'no data')."""
        with local_client() as client:
            response = client.get(f"{self.url}/api/v1/query", params={"query": promql})
        body = response.json()
        assert body.get("status") == "success", f"{promql}: {body}"
        result: Series = body["data"]["result"]
        return result

    def targets(self) -> list[tuple[str, str, str]]:
        """(scrape URL, health, last error) of every target: why a wait timed out, if scraping broke."""
        with local_client() as client:
            active = client.get(f"{self.url}/api/v1/targets").json()["data"]["activeTargets"]
        return [(t["scrapeUrl"], t["health"], t["lastError"]) for t in active]

    def wait_for(self, promql: str, what: str, until: Callable[[Series], bool] = bool,
                 timeout: float = FAULT_VISIBLE_S) -> Series:
        """Poll ``promql`` every 0.5 s until ``until(result)``; fail with the last result."""
        deadline = time.monotonic() + timeout
        result = self.query(promql)
        while not until(result):
            if time.monotonic() > deadline:
                pytest.fail(f"after {timeout:g}s still waiting for {what}\n  {promql}\n  last result: "
                            f"{_brief(result)}\n  scrape targets: {self.targets()}", pytrace=False)
            time.sleep(0.5)
            result = self.query(promql)
        return result


def _key(series: dict[str, Any]) -> tuple[str, str, str]:
    labels = series["metric"]
    return labels["marketplace"], labels["account"], labels["check"]


def _value(series: dict[str, Any]) -> float:
    return float(series["value"][1])


def _brief(result: Series) -> list[tuple[dict[str, str], str]]:
    return [(series["metric"], series["value"][1]) for series in result]


def _window(since: float) -> str:
    """A PromQL range reaching back to the monotonic instant ``since`` and no further.

    Rounded down: a range reaching back past ``since`` would see samples from before a fault went
    in (a check still recovering from the previous test), and a fault cannot show in the first
    second after it was injected anyway (the next probe must run, then the next scrape).
    """
    return f"{max(1, int(time.monotonic() - since))}s"


@pytest.fixture(scope="module")
def prometheus(demo_exporter: DemoExporter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """Debian's Prometheus scraping the demo exporter every second; stopped by PID (SIGTERM)."""
    binary = require_binary("prometheus")
    workdir = tmp_path_factory.mktemp("prometheus")
    target = demo_exporter.url.removeprefix("http://")
    config = workdir / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: marketplace-exporter\n"
        f"    static_configs:\n      - targets: ['{target}']\n", encoding="utf-8")
    log_path = workdir / "prometheus.log"
    for _attempt in range(3):
        port = free_port()
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
        url = f"http://127.0.0.1:{port}"
        if _wait_ready(proc, url):
            break
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if "address already in use" not in log_path.read_text(errors="replace"):
            pytest.fail(f"prometheus did not start:\n{log_path.read_text(errors='replace')[-3000:]}",
                        pytrace=False)
    else:
        pytest.fail("prometheus: no free port after 3 attempts", pytrace=False)
    try:
        yield Prometheus(url, log_path)
    finally:
        code = stop_process(proc, "prometheus")
        assert code == 0, f"prometheus exited with {code}:\n{log_path.read_text(errors='replace')[-3000:]}"


def _wait_ready(proc: subprocess.Popen[bytes], url: str) -> bool:
    deadline = time.monotonic() + 15.0
    with local_client(timeout=2.0) as client:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if client.get(f"{url}/-/ready").status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    return False


@pytest.fixture
def sim(demo_exporter: DemoExporter) -> Iterator[DemoExporter]:
    """The demo exporter, with every simulator fault cleared afterwards even when a test fails."""
    yield demo_exporter
    demo_exporter.clear_faults()


def _wait_all_healthy(prometheus: Prometheus, timeout: float = 30.0) -> Series:
    """Every 5 s demo check has a result in Prometheus, and every result there is 1."""

    def healthy(result: Series) -> bool:
        seen = {_key(series): _value(series) for series in result}
        return EVERY_5S <= seen.keys() and all(value == 1 for value in seen.values())

    return prometheus.wait_for("marketplace_probe_success", "every demo check to report success 1",
                               healthy, timeout)


def _selector(check: tuple[str, str, str], **more: str) -> str:
    """A label selector for one check (an alias like sg-main may exist on several marketplaces)."""
    labels = {"marketplace": check[0], "account": check[1], "check": check[2], **more}
    return "{" + ",".join(f'{name}="{value}"' for name, value in labels.items()) + "}"


def _others(result: Series, faulted: tuple[str, str, str]) -> dict[tuple[str, str, str], float]:
    """The result's values by check, without the check the fault was injected into."""
    return {_key(series): _value(series) for series in result if _key(series) != faulted}


def _assert_others_healthy(prometheus: Prometheus, faulted: tuple[str, str, str], window: str) -> None:
    """Isolation: no other check failed at any scrape within ``window``."""
    others = _others(prometheus.query(f"min_over_time(marketplace_probe_success[{window}])"), faulted)
    assert EVERY_5S - {faulted} <= others.keys(), f"checks without results: {EVERY_5S - others.keys()}"
    failed = {check: value for check, value in others.items() if value != 1}
    assert not failed, f"other checks failed while only {faulted} was faulted: {failed}"


def test_every_demo_check_is_scraped_and_healthy(prometheus: Prometheus, demo_exporter: DemoExporter) -> None:
    configured = {tuple(check_id.split("/")) for check_id in demo_exporter.check_ids()}
    assert configured >= DEMO_CHECKS, f"the demo config lost checks: {DEMO_CHECKS - configured}"
    result = _wait_all_healthy(prometheus)
    assert {_key(series) for series in result} <= configured
    sites = {_key(series): series["metric"]["site"] for series in result}
    assert sites[US_MAIN] == "US" and sites[SG_MAIN] == "SG" and sites[MY_MAIN] == "MY", sites


def test_exporter_self_metrics(prometheus: Prometheus) -> None:
    build = prometheus.wait_for("marketplace_exporter_build_info == 1", "build_info")
    assert len(build) == 1 and build[0]["metric"].get("version"), _brief(build)
    assert _value(prometheus.wait_for("marketplace_exporter_config_last_reload_successful",
                                      "the reload gauge")[0]) == 1
    expiry = prometheus.wait_for(
        'marketplace_credential_expiry_timestamp_seconds{credential="access_token",marketplace="amazon_sp"}'
        " > time()", "an unexpired LWA access-token expiry for us-main",
        lambda result: any(s["metric"]["account"] == "us-main" for s in result))
    # an LWA access token lives one hour: an expiry further out than that is invented
    assert all(_value(series) < time.time() + 3700 for series in expiry), _brief(expiry)


def test_shopee_token_expired_is_auth_and_isolated(prometheus: Prometheus, sim: DemoExporter) -> None:
    _wait_all_healthy(prometheus)
    started = time.monotonic()
    sim.inject_fault("shopee", "token_expired", account="sg-main")

    prometheus.wait_for(f"marketplace_probe_success{_selector(SG_MAIN)} == 0", "sg-main to fail")
    prometheus.wait_for(f"increase(marketplace_probe_failures_total{_selector(SG_MAIN, reason='auth')}[1m]) > 0",
                        "an auth failure counted for sg-main")
    errors = prometheus.wait_for('marketplace_api_errors_total{code="invalid_acceess_token"} > 0',
                                 "Shopee's invalid_acceess_token error code")
    assert {_key(series) for series in errors} == {SG_MAIN}, _brief(errors)
    window = _window(started)
    counted = prometheus.query(f"increase(marketplace_probe_failures_total{_selector(SG_MAIN)}[{window}]) > 0")
    wrong = [series for series in counted if series["metric"]["reason"] != "auth"]
    assert wrong == [], f"token_expired counted under other reasons: {_brief(wrong)}"
    # isolation: my-main shares the partner key and the host with sg-main
    _assert_others_healthy(prometheus, SG_MAIN, window)

    sim.clear_faults()
    prometheus.wait_for(f"marketplace_probe_success{_selector(SG_MAIN)} == 1",
                        "sg-main to recover after the fault was cleared")


def test_hang_times_out_without_delaying_other_checks(prometheus: Prometheus, sim: DemoExporter) -> None:
    _wait_all_healthy(prometheus)
    started = time.monotonic()
    sim.inject_fault("shopee", "hang", account="my-main")

    # the demo timeout is 3 s: one hung probe needs up to 5.5 s to start plus 3 s to time out
    prometheus.wait_for(
        f"increase(marketplace_probe_failures_total{_selector(MY_MAIN, reason='timeout')}[1m]) > 0",
        "a timeout counted for my-main", timeout=FAULT_VISIBLE_S + 5)
    prometheus.wait_for(f"marketplace_probe_success{_selector(MY_MAIN)} == 0", "my-main to fail")
    window = _window(started)

    durations = _others(prometheus.query(f"max_over_time(marketplace_probe_duration_seconds[{window}])"), MY_MAIN)
    slow = {check: seconds for check, seconds in durations.items() if seconds > 1}
    assert not slow, f"other checks' probes slowed down while my-main hung: {slow}"
    ages = _others(prometheus.query(
        f"max_over_time((time() - marketplace_probe_last_run_timestamp_seconds)[{window}:1s])"), MY_MAIN)
    stale = {check: age for check, age in ages.items() if check in EVERY_5S and age > STALE_AFTER_S}
    assert not stale, f"other checks stopped running on schedule while my-main hung: {stale}"
    # the exposition writes le="1" (client_python floatToGoString); match "1.0" too so a change of
    # format cannot turn this into a query that matches nothing and always passes
    one_second = 'marketplace_exporter_probe_lateness_seconds_bucket{le=~"1|1[.]0"}'
    assert prometheus.query(one_second), f"no 1 s lateness bucket: {one_second}"
    late = prometheus.query(
        f"increase(marketplace_exporter_probe_lateness_seconds_count[{window}]) - ignoring(le)"
        f" increase({one_second}[{window}]) > 0")
    assert late == [], f"probes started over 1 s late while my-main hung: {_brief(late)}"
    _assert_others_healthy(prometheus, MY_MAIN, window)


def test_amazon_throttle_is_throttled(prometheus: Prometheus, sim: DemoExporter) -> None:
    _wait_all_healthy(prometheus)
    started = time.monotonic()
    sim.inject_fault("amazon_sp", "throttle", account="us-main")

    prometheus.wait_for(f"marketplace_probe_success{_selector(US_MAIN)} == 0", "us-main to fail")
    prometheus.wait_for(
        f"increase(marketplace_probe_failures_total{_selector(US_MAIN, reason='throttled')}[1m]) > 0",
        "a throttled failure counted for us-main")
    window = _window(started)
    counted = prometheus.query(
        f"increase(marketplace_probe_failures_total{_selector(US_MAIN)}[{window}]) > 0")
    wrong = [series for series in counted if series["metric"]["reason"] != "throttled"]
    assert wrong == [], f"a throttle was counted under another reason: {_brief(wrong)}"
    _assert_others_healthy(prometheus, US_MAIN, window)
