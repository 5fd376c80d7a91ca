"""Walmart's production headroom end to end: a real httpx client, instrumented with the traffic
hooks, calls the simulator's Walmart (token exchange, then ``/v3/token/detail``); the simulator
answers with ``x-current-token-count`` as Walmart does [OBS F10]; the exporter's /metrics must show
the count of the latest answer as ``marketplace_client_rate_limit_remaining``, and no ratio (the
per-API window size is UNCONFIRMED, so none is invented)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import httpx
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from marketplace_exporter import catalogue as cat
from marketplace_exporter.server import ConfigSource, create_app
from marketplace_exporter.simulator import create_simulator_app
from marketplace_exporter.traffic.httpx_hooks import TrafficTransport
from marketplace_exporter.traffic.reporter import TOKEN_ENV, Reporter

TOKEN = "traffic-headroom-test-token-0001"
CLIENT_ID, CLIENT_SECRET = "sim-wm-us-client-0001", "sim-wm-us-secret-0001"
CONFIG = """
accounts:
  - marketplace: walmart
    alias: us-main
    site: US
    base_url: {sim}/walmart
    credentials:
      client_id: sim-wm-us-client-0001
      client_secret: {{value: sim-wm-us-secret-0001}}
    checks:
      - operation: partner_profile
        interval: 1h
"""
LABELS = {"marketplace": "walmart", "site": "US", "account": "us-main", "service": "erp"}


@pytest.fixture(name="stack")
async def stack_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, str]]:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    simulator = TestServer(create_simulator_app(), host="127.0.0.1")
    await simulator.start_server()
    sim = f"http://127.0.0.1:{simulator.port}"
    path = tmp_path / "walmart.yml"
    path.write_text(CONFIG.format(sim=sim), encoding="utf-8")
    source = ConfigSource(str(path))
    exporter = TestServer(create_app(source, source.load()), host="127.0.0.1")
    await exporter.start_server()
    yield f"http://127.0.0.1:{exporter.port}", sim
    await exporter.close()
    await simulator.close()


def walmart_calls(reporter: Reporter, sim: str, calls: int) -> list[httpx.Response]:
    """What a seller's order sync does: mint a token, then call the API with it."""
    transport = TrafficTransport(reporter, account="us-main", site="US", base_urls={f"{sim}/walmart": "walmart"})
    headers = {"WM_SVC.NAME": "Walmart Marketplace", "Accept": "application/json"}
    with httpx.Client(transport=transport, headers=headers) as client:
        minted = client.post(f"{sim}/walmart/v3/token", data={"grant_type": "client_credentials"},
                             auth=(CLIENT_ID, CLIENT_SECRET), headers={"WM_QOS.CORRELATION_ID": str(uuid.uuid4())})
        assert minted.status_code == 200, minted.text
        token = minted.json()["access_token"]
        return [client.get(f"{sim}/walmart/v3/token/detail",
                           headers={"WM_SEC.ACCESS_TOKEN": token, "WM_QOS.CORRELATION_ID": str(uuid.uuid4())})
                for _ in range(calls)]


async def scrape(exporter: str) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
    async with aiohttp.ClientSession() as session, session.get(f"{exporter}/metrics") as response:
        text = await response.text()
    out: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return out


async def test_the_latest_token_count_walmart_sent_is_the_requests_left_gauge(stack: tuple[str, str]) -> None:
    exporter, sim = stack
    reporter = Reporter(exporter, service="erp", interval=0.05)
    answers = await asyncio.to_thread(walmart_calls, reporter, sim, 3)
    await asyncio.to_thread(reporter.close, 5.0)
    assert [a.status_code for a in answers] == [200, 200, 200]
    counts = [int(a.headers["x-current-token-count"]) for a in answers]
    assert counts[0] > counts[-1]  # each call took a token from the simulator's bucket
    assert reporter.sent == 4 and reporter.queued == 0

    samples = await scrape(exporter)
    left = samples.get(cat.CLIENT_RATE_LIMIT_REMAINING_REQUESTS.name, {})
    assert left == {frozenset(LABELS.items()): float(counts[-1])}
    assert not samples.get(cat.CLIENT_RATE_LIMIT_REMAINING.name)  # no window size: no ratio


async def test_a_throttled_answer_reports_zero_left(stack: tuple[str, str]) -> None:
    exporter, sim = stack
    async with aiohttp.ClientSession() as session:
        fault = {"marketplace": "walmart", "account": "us-main", "check": "token_detail", "fault": "throttle",
                 "count": 1}
        async with session.post(f"{sim}/__sim/faults", json=fault) as response:
            assert response.status == 201, await response.text()
    reporter = Reporter(exporter, service="erp", interval=0.05)
    answers = await asyncio.to_thread(walmart_calls, reporter, sim, 1)
    await asyncio.to_thread(reporter.close, 5.0)
    assert answers[0].status_code == 429 and answers[0].headers["x-current-token-count"] == "0"

    samples = await scrape(exporter)
    assert samples[cat.CLIENT_RATE_LIMIT_REMAINING_REQUESTS.name] == {frozenset(LABELS.items()): 0.0}
    errors = samples[cat.CLIENT_ERRORS.name]
    assert sum(v for k, v in errors.items() if ("reason", "throttled") in k) == 1
