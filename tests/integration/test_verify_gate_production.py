"""The verify gate judging the deployed service's own calls: a real httpx client instrumented with the
traffic hook reports order-sync's Shopee calls to the real exporter, a deploy is marked, and the
real ``marketplace-exporter verify`` subprocess judges production next to the probes.

The fault hits only ``get_shops_by_partner``, which order-sync calls and no probe does: the probes
stay green, so a fail can only come from the production evidence."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from verify_stack import (
    AMAZON,
    ENVIRONMENT,
    SERVICE,
    SHOPEE_MY,
    SHOPEE_SG,
    TOKEN,
    TOKEN_ENV,
    GateStack,
    gate_stack,
    run_cli,
)

from marketplace_exporter.adapters.shopee import sign
from marketplace_exporter.traffic.httpx_hooks import TrafficTransport
from marketplace_exporter.traffic.reporter import TOKEN_ENV as TRAFFIC_TOKEN_ENV
from marketplace_exporter.traffic.reporter import Reporter

TRAFFIC_TOKEN = "verify-traffic-token-51d2"
PARTNER_ID, PARTNER_KEY = 2001887, "sim-shopee-partner-key-0001"
SHOPS = "/api/v2/public/get_shops_by_partner"
BASELINE_CALLS = 30


@pytest.fixture(autouse=True)
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv(TRAFFIC_TOKEN_ENV, TRAFFIC_TOKEN)


class ShiftedClock:
    """Wall clock plus ``shift``: the exporter files calls reported meanwhile that far back."""

    def __init__(self) -> None:
        self.shift = 0.0

    def __call__(self) -> float:
        return time.time() + self.shift


class OrderSync:
    """The seller's order-sync service: lists its Shopee shops through an instrumented httpx client."""

    def __init__(self, stack: GateStack) -> None:
        self.stack = stack
        self.statuses: list[int] = []

    def _url(self) -> str:
        timestamp = int(time.time())
        signature = sign(PARTNER_KEY, PARTNER_ID, SHOPS, timestamp)
        query = {"partner_id": PARTNER_ID, "timestamp": timestamp, "sign": signature}
        return f"{self.stack.simulator}/shopee{SHOPS}?{urlencode(query)}"

    def _client(self, reporter: Reporter) -> httpx.Client:
        return httpx.Client(transport=TrafficTransport(reporter, account="sg-main", site="SG",
                                                       base_urls={f"{self.stack.simulator}/shopee": "shopee"}))

    def _call(self, client: httpx.Client) -> None:
        response = client.get(self._url())
        body = response.json()
        self.statuses.append(response.status_code if not body.get("error") else 0)

    async def calls(self, count: int) -> None:
        """``count`` calls, all reported before this returns."""
        reporter = Reporter(self.stack.exporter, service=SERVICE, interval=0.05)

        def run() -> None:
            with self._client(reporter) as client:
                for _ in range(count):
                    self._call(client)
            reporter.close(5.0)
            assert reporter.sent == count and reporter.queued == 0

        await asyncio.to_thread(run)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Calls every 20 ms, reported as they go, while the block runs."""
        reporter = Reporter(self.stack.exporter, service=SERVICE, interval=0.05)
        stop = threading.Event()

        def run() -> None:
            with self._client(reporter) as client:
                while not stop.is_set():
                    self._call(client)
                    stop.wait(0.02)

        worker = asyncio.create_task(asyncio.to_thread(run))
        try:
            yield
        finally:
            stop.set()
            await worker
            await asyncio.to_thread(reporter.close, 5.0)


def verify_args(url: str, *extra: str, window: str, timeout: str) -> list[str]:
    return ["verify", "--service", SERVICE, "--environment", ENVIRONMENT, "--exporter.url", url,
            "--window", window, "--timeout", timeout, "--interval", "200ms", *extra]


async def deployed_after_a_healthy_half_hour(stack: GateStack, clock: ShiftedClock) -> OrderSync:
    """order-sync's calls in the minutes before the deploy (filed two minutes back, so they fall
    before the marker's minute), a probe baseline, and the ``started`` marker."""
    order_sync = OrderSync(stack)
    clock.shift = -120.0
    await order_sync.calls(BASELINE_CALLS)
    clock.shift = 0.0
    await stack.wait_for_baseline(AMAZON, SHOPEE_SG, SHOPEE_MY)
    await stack.mark("started")
    return order_sync


async def test_production_calls_failing_after_the_deploy_fail_the_gate_on_production_evidence(
        tmp_path: Path) -> None:
    clock = ShiftedClock()
    async with gate_stack(tmp_path, traffic_clock=clock) as stack:
        order_sync = await deployed_after_a_healthy_half_hour(stack, clock)
        await stack.fault(marketplace="shopee", check="get_shops_by_partner", fault="permission_denied")
        rollback = tmp_path / "rolled-back"
        async with order_sync.running():
            # a 10 minute window: only the production fast fail can end this within the test's timeout
            result = await run_cli(*verify_args(stack.exporter, "--output", "json", "--on-fail", f"touch {rollback}",
                                                window="10m", timeout="11m"), timeout=60)
        assert result.code == 1, result.stderr
        assert rollback.exists()
        answer = json.loads(result.stdout)
        assert answer["result"] == "fail" and answer["window_complete"] is False
        assert answer["decided_by"] == ["production"]
        assert {row["verdict"] for row in answer["checks"]} <= {"collecting", "pass"}  # probes saw nothing
        [shopee] = answer["production"]
        assert shopee["marketplace"] == "shopee" and shopee["verdict"] == "fail"
        assert shopee["baseline"] == {"requests": BASELINE_CALLS, "errors": 0, "error_ratio": 0.0}
        after = shopee["candidate"]
        assert after["requests"] >= 20 and after["errors"] == after["requests"]
        assert shopee["failures"] == [f"permission:error_auth ×{after['errors']}"]
        assert shopee["reasons"][0].startswith(
            f"production error ratio 0% → 100% ({after['errors']} of {after['requests']} calls since the gate began")
        assert "verify: shopee: production error ratio 0% → 100%" in result.stderr
        assert 0 in order_sync.statuses and 200 in order_sync.statuses  # the hook saw both, as the caller did
    assert TRAFFIC_TOKEN not in result.stdout + result.stderr


async def test_healthy_production_calls_pass_with_both_kinds_of_evidence(tmp_path: Path) -> None:
    clock = ShiftedClock()
    async with gate_stack(tmp_path, traffic_clock=clock) as stack:
        order_sync = await deployed_after_a_healthy_half_hour(stack, clock)
        async with order_sync.running():
            result = await run_cli(*verify_args(stack.exporter, window="4s", timeout="30s"), timeout=60)
        assert result.code == 0, result.stderr
        table = result.stdout.splitlines()
        start = table.index(f"production: {SERVICE}'s own marketplace calls (生产流量), all sites of each marketplace")
        assert table[start + 1].split() == ["MARKETPLACE", "BEFORE", "AFTER", "VERDICT", "DETAILS"]
        shopee = table[start + 2].split()
        assert shopee[:4] == ["shopee", "0%", "errors", "of"] and shopee[4] == str(BASELINE_CALLS)
        assert shopee[-1] == "PASS" and int(shopee[-2]) >= 20
        assert table[-2].startswith("RESULT: PASS 通过 — 3 check(s) within tolerance; production calls within "
                                    "tolerance: shopee (")
        assert table[-1] == "DECIDED BY 判定依据: probes 探测, production traffic 生产流量"
        assert set(order_sync.statuses) == {200}
