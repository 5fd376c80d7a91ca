"""Real httpx (sync and async), aiohttp and requests clients, instrumented with the traffic hooks,
call the simulator's Shopee with faults; the exporter's /metrics must match what happened, including
Shopee's errors inside HTTP 200 bodies. Also: the exporter down or slow never touches the calls."""

from __future__ import annotations

import asyncio
import io
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import httpx
import pytest
import requests
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from marketplace_exporter.adapters.shopee import sign
from marketplace_exporter.server import ConfigSource, create_app
from marketplace_exporter.simulator import create_simulator_app
from marketplace_exporter.traffic.aiohttp_middleware import TrafficClientResponse, traffic_middleware
from marketplace_exporter.traffic.aiohttp_trace import traffic_trace_config
from marketplace_exporter.traffic.httpx_hooks import AsyncTrafficTransport, TrafficTransport
from marketplace_exporter.traffic.reporter import TOKEN_ENV, Reporter
from marketplace_exporter.traffic.requests_adapter import instrument_session

PARTNER_ID, PARTNER_KEY = 2001887, "sim-shopee-partner-key-0001"
SHOP_ID, ACCESS_TOKEN = 14701711, "sim-shopee-access-sg-main"
SHOP_INFO = "/api/v2/shop/get_shop_info"
TOKEN = "traffic-test-token-0001"

CONFIG = """
accounts:
  - marketplace: shopee
    alias: sg-main
    site: SG
    base_url: {sim}/shopee
    credentials:
      partner_id: 2001887
      partner_key: {{value: sim-shopee-partner-key-0001}}
      shop_id: 14701711
      access_token: {{value: sim-shopee-access-sg-main}}
    checks:
      - operation: get_shops_by_partner
        interval: 1h
  - marketplace: amazon_sp
    alias: us-main
    site: US
    base_url: {sim}/amazon/na
    auth_url: {sim}/amazon/lwa
    credentials:
      client_id: amzn1.application-oa2-client.sim0001
      client_secret: {{value: sim-lwa-secret-0001}}
      refresh_token: {{value: "Atzr|sim-refresh-us-main"}}
    checks:
      - operation: marketplace_participations
        interval: 1h
"""


@dataclass
class Traffic:
    exporter: str
    simulator: str
    session: aiohttp.ClientSession

    async def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        async with self.session.get(f"{self.exporter}/metrics") as response:
            text = await response.text()
        return {(s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    async def fault(self, **body: object) -> None:
        async with self.session.post(f"{self.simulator}/__sim/faults", json=body) as response:
            assert response.status == 201, await response.text()

    def shop_info_url(self) -> str:
        timestamp = int(time.time())
        query = {"partner_id": PARTNER_ID, "timestamp": timestamp, "access_token": ACCESS_TOKEN,
                 "shop_id": SHOP_ID,
                 "sign": sign(PARTNER_KEY, PARTNER_ID, SHOP_INFO, timestamp, ACCESS_TOKEN, SHOP_ID)}
        return f"{self.simulator}/shopee{SHOP_INFO}?{urlencode(query)}"


def total(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(value for (sample, got), value in samples.items() if sample == name and want <= got)


@pytest.fixture(name="traffic")
async def traffic_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Traffic]:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    simulator = TestServer(create_simulator_app(), host="127.0.0.1")
    await simulator.start_server()
    sim = f"http://127.0.0.1:{simulator.port}"
    path = tmp_path / "traffic.yml"
    path.write_text(CONFIG.format(sim=sim), encoding="utf-8")
    source = ConfigSource(str(path))
    exporter = TestServer(create_app(source, source.load()), host="127.0.0.1")
    await exporter.start_server()
    async with aiohttp.ClientSession() as session:
        yield Traffic(f"http://127.0.0.1:{exporter.port}", sim, session)
    await exporter.close()
    await simulator.close()


def _httpx_sync(reporter: Reporter, traffic: Traffic, urls: list[str]) -> list[int]:
    transport = TrafficTransport(reporter, account="sg-main", site="SG",
                                 base_urls={f"{traffic.simulator}/shopee": "shopee"})
    with httpx.Client(transport=transport) as client:
        return [client.get(url).status_code for url in urls]


def _requests(reporter: Reporter, traffic: Traffic, urls: list[str]) -> list[int]:
    with requests.Session() as session:
        instrument_session(session, reporter, account="sg-main", site="SG",
                           base_urls={f"{traffic.simulator}/shopee": "shopee"})
        return [session.get(url, timeout=5).status_code for url in urls]


async def _httpx_async(reporter: Reporter, traffic: Traffic, urls: list[str]) -> list[int]:
    transport = AsyncTrafficTransport(reporter, account="sg-main", site="SG",
                                      base_urls={f"{traffic.simulator}/shopee": "shopee"})
    async with httpx.AsyncClient(transport=transport) as client:
        return [(await client.get(url)).status_code for url in urls]


async def _aiohttp(reporter: Reporter, traffic: Traffic, urls: list[str]) -> list[int]:
    trace = traffic_trace_config(reporter, account="sg-main", site="SG",
                                 base_urls={f"{traffic.simulator}/shopee": "shopee"})
    statuses = []
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        for url in urls:
            async with session.get(url) as response:
                await response.json()
                statuses.append(response.status)
    return statuses


async def _aiohttp_middleware(reporter: Reporter, traffic: Traffic, urls: list[str]) -> list[int]:
    middleware = traffic_middleware(reporter, account="sg-main", site="SG",
                                    base_urls={f"{traffic.simulator}/shopee": "shopee"})
    statuses = []
    async with aiohttp.ClientSession(middlewares=[middleware], response_class=TrafficClientResponse) as session:
        for url in urls:
            async with session.get(url) as response:
                await response.json()
                statuses.append(response.status)
    return statuses


Caller = Callable[[Reporter, Traffic, list[str]], object]
CLIENTS: dict[str, tuple[Caller, bool]] = {
    "httpx": (_httpx_sync, False), "httpx_async": (_httpx_async, True),
    "aiohttp": (_aiohttp, True), "aiohttp_middleware": (_aiohttp_middleware, True),
    "requests": (_requests, False),
}


async def call(client: str, reporter: Reporter, traffic: Traffic, urls: list[str]) -> list[int]:
    function, is_async = CLIENTS[client]
    if is_async:
        return await function(reporter, traffic, urls)  # type: ignore[no-any-return,misc]
    return await asyncio.to_thread(function, reporter, traffic, urls)  # type: ignore[arg-type]


@pytest.mark.parametrize("client", sorted(CLIENTS))
async def test_exporter_counts_what_the_instrumented_client_saw(traffic: Traffic, client: str) -> None:
    await traffic.fault(marketplace="shopee", account="sg-main", fault="throttle", value=200, count=1)
    await traffic.fault(marketplace="shopee", account="sg-main", fault="permission_denied", count=1)
    await traffic.fault(marketplace="shopee", account="sg-main", fault="server_error", count=1)
    reporter = Reporter(traffic.exporter, service="erp", interval=0.05)
    urls = [traffic.shop_info_url() for _ in range(5)] + [f"{traffic.simulator}/__sim/faults"]
    statuses = await call(client, reporter, traffic, urls)
    assert statuses == [200, 200, 500, 200, 200, 200]  # the last call is not a marketplace's
    await asyncio.to_thread(reporter.close, 5.0)
    assert reporter.sent == 5 and reporter.queued == 0

    samples = await traffic.metrics()
    shop = {"marketplace": "shopee", "site": "SG", "account": "sg-main", "operation": "get_shop_info",
            "service": "erp"}
    assert total(samples, "marketplace_client_requests_total", **shop, status_class="2xx") == 4
    assert total(samples, "marketplace_client_requests_total", **shop, status_class="5xx") == 1
    errors = "marketplace_client_errors_total"
    # the two 200s with an error inside are errors, labelled as the probes label them
    assert total(samples, errors, **shop, reason="throttled", code="error_rate_limit") == 1
    assert total(samples, errors, **shop, reason="permission", code="error_auth") == 1
    assert total(samples, errors, **shop, reason="server_error", code="error_server") == 1
    assert total(samples, errors) == 3
    latency = {k: v for k, v in shop.items() if k != "account"}  # no account label on the histogram
    assert total(samples, "marketplace_client_request_duration_seconds_count", **latency) == 5
    assert total(samples, "marketplace_traffic_records_total", service="erp", result="accepted") == 5
    assert total(samples, "marketplace_traffic_records_total", service="erp", result="rejected") == 0
    # nothing of the URL leaves the process: no token, id or signature in any label
    text = repr(samples)
    assert ACCESS_TOKEN not in text and str(SHOP_ID) not in text and "sign" not in text


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("client", ["httpx", "aiohttp", "aiohttp_middleware"])
async def test_exporter_down_drops_oldest_and_counts_them_once_it_is_back(traffic: Traffic, client: str) -> None:
    reporter = Reporter(f"http://127.0.0.1:{_closed_port()}", service="erp", max_queue=3,
                        interval=3600, timeout=0.5)
    statuses = await call(client, reporter, traffic, [traffic.shop_info_url() for _ in range(5)])
    assert statuses == [200] * 5  # the caller never noticed
    assert reporter.queued == 3 and reporter.dropped == 2
    assert await asyncio.to_thread(reporter.flush_once) is False  # still down: kept, not lost
    assert reporter.queued == 0 and reporter.failed_sends == 1

    reporter.url = f"{traffic.exporter}/api/v1/traffic"  # the exporter is back
    assert await asyncio.to_thread(reporter.flush_once) is True
    samples = await traffic.metrics()
    assert total(samples, "marketplace_traffic_records_total", service="erp", result="accepted") == 3
    assert total(samples, "marketplace_traffic_records_total", service="erp", result="dropped") == 2
    reporter.close()


async def test_a_hanging_exporter_does_not_slow_the_calls(traffic: Traffic) -> None:
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/api/v1/traffic", hang)
    slow = TestServer(app, host="127.0.0.1")
    await slow.start_server()
    try:
        reporter = Reporter(f"http://127.0.0.1:{slow.port}", service="erp", interval=0.01, timeout=0.3)
        statuses = await call("httpx_async", reporter, traffic, [traffic.shop_info_url() for _ in range(5)])
        assert statuses == [200] * 5
        await asyncio.sleep(0.5)  # the sender is stuck in its timeout meanwhile, the caller is not
        assert reporter.failed_sends >= 1 and reporter.sent == 0
        release.set()
        reporter.close(timeout=0.5)
    finally:
        await slow.close()


async def test_bad_token_and_bad_records_are_refused_with_reasons(traffic: Traffic) -> None:
    url = f"{traffic.exporter}/api/v1/traffic"
    good = {"marketplace": "shopee", "site": "SG", "account": "sg-main", "operation": "get_shop_info",
            "status": 200, "reason": "", "code": "", "duration": 0.1, "ratelimit": None}
    batch = {"service": "erp", "records": [good]}
    async with traffic.session.post(url, json=batch) as response:
        assert response.status == 401
    async with traffic.session.post(url, json=batch, headers={"Authorization": "Bearer nope"}) as response:
        assert response.status == 401
        assert TOKEN not in await response.text()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    batch = {"service": "erp", "records": [
        good, {**good, "marketplace": "etsy"}, {**good, "status": "200"},
        {**good, "account": "1234567890", "operation": "/api/v2/order/123", "code": "whatever"}]}
    async with traffic.session.post(url, json=batch, headers=auth) as response:
        assert response.status == 200
        body = await response.json()
    assert body["accepted"] == 2 and body["rejected"] == 2
    assert [error["index"] for error in body["errors"]] == [1, 2]
    assert "marketplace" in body["errors"][0]["error"] and "status" in body["errors"][1]["error"]
    samples = await traffic.metrics()
    # an unconfigured account and an unknown operation fold into "other"
    assert total(samples, "marketplace_client_requests_total", account="other", operation="other") == 1
    async with traffic.session.post(url, json={"records": []}, headers=auth) as response:
        assert response.status == 400 and "service" in (await response.json())["error"]
    async with traffic.session.post(url, data=io.BytesIO(b"x" * (5 * 1024 * 1024)), headers=auth) as response:
        assert response.status == 413


async def _expect_errors(client: str, reporter: Reporter, traffic: Traffic, url: str) -> None:
    """One call that must fail in the caller's code exactly as it would without the hook."""
    if client == "httpx":
        def sync_call() -> None:
            with httpx.Client(transport=TrafficTransport(reporter, account="sg-main", site="SG", base_urls={
                    f"{traffic.simulator}/shopee": "shopee"})) as http:
                with pytest.raises(httpx.TransportError):
                    http.get(url)
        await asyncio.to_thread(sync_call)
    elif client == "requests":
        def requests_call() -> None:
            with requests.Session() as session:
                instrument_session(session, reporter, account="sg-main", site="SG",
                                   base_urls={f"{traffic.simulator}/shopee": "shopee"})
                with pytest.raises(requests.ConnectionError):
                    session.get(url, timeout=5)
        await asyncio.to_thread(requests_call)
    elif client == "aiohttp_middleware":
        middleware = traffic_middleware(reporter, account="sg-main", site="SG",
                                        base_urls={f"{traffic.simulator}/shopee": "shopee"})
        async with aiohttp.ClientSession(middlewares=[middleware]) as session:  # the class switched per answer
            with pytest.raises(aiohttp.ClientError):
                async with session.get(url) as response:
                    await response.read()
    else:
        trace = traffic_trace_config(reporter, account="sg-main", site="SG",
                                     base_urls={f"{traffic.simulator}/shopee": "shopee"})
        async with aiohttp.ClientSession(trace_configs=[trace]) as session:
            with pytest.raises(aiohttp.ClientError):
                async with session.get(url) as response:
                    await response.read()


@pytest.mark.parametrize("client", ["aiohttp", "aiohttp_middleware", "httpx", "requests"])
async def test_a_reset_connection_is_a_connect_error_and_still_raises_in_the_caller(traffic: Traffic,
                                                                                   client: str) -> None:
    # twice: aiohttp (3.14) retries an idempotent request once after a reset
    await traffic.fault(marketplace="shopee", account="sg-main", fault="reset", count=2)
    reporter = Reporter(traffic.exporter, service="erp", interval=0.05)
    await _expect_errors(client, reporter, traffic, traffic.shop_info_url())
    await asyncio.to_thread(reporter.close, 5.0)
    samples = await traffic.metrics()
    shop = {"marketplace": "shopee", "operation": "get_shop_info", "service": "erp"}
    assert total(samples, "marketplace_client_requests_total", **shop, status_class="error") == 1
    assert total(samples, "marketplace_client_errors_total", **shop, reason="connect") == 1


async def test_a_streamed_body_is_left_to_the_caller_and_the_status_decides(traffic: Traffic) -> None:
    await traffic.fault(marketplace="shopee", account="sg-main", fault="token_expired", count=1)
    reporter = Reporter(traffic.exporter, service="erp", interval=0.05)

    def streamed() -> bytes:
        with requests.Session() as session:
            instrument_session(session, reporter, account="sg-main", site="SG",
                               base_urls={f"{traffic.simulator}/shopee": "shopee"})
            response = session.get(traffic.shop_info_url(), stream=True, timeout=5)
            return bytes(response.raw.read())  # the caller's stream is untouched by the hook

    raw = await asyncio.to_thread(streamed)
    assert b"invalid_acceess_token" in raw
    await asyncio.to_thread(reporter.close, 5.0)
    samples = await traffic.metrics()
    # HTTP 200 and an unread body: counted, but the error inside it cannot be known
    assert total(samples, "marketplace_client_requests_total", status_class="2xx") == 1
    assert total(samples, "marketplace_client_errors_total") == 0


async def test_amazon_token_exchange_and_calls_are_labelled_like_the_probes(traffic: Traffic) -> None:
    participations = {"marketplace": "amazon_sp", "account": "us-main", "check": "marketplace_participations"}
    await traffic.fault(**participations, fault="throttle", count=1)
    await traffic.fault(**participations, fault="token_expired", count=1)
    reporter = Reporter(traffic.exporter, service="erp", interval=0.05)
    bases = {f"{traffic.simulator}/amazon/na": "amazon_sp", f"{traffic.simulator}/amazon/lwa": "amazon_sp"}

    def erp() -> list[int]:
        with httpx.Client(transport=TrafficTransport(reporter, account="us-main", site="US",
                                                     base_urls=bases)) as client:
            token = client.post(f"{traffic.simulator}/amazon/lwa/auth/o2/token", data={
                "grant_type": "refresh_token", "refresh_token": "Atzr|sim-refresh-us-main",
                "client_id": "amzn1.application-oa2-client.sim0001", "client_secret": "sim-lwa-secret-0001",
            }).json()["access_token"]
            bad = client.post(f"{traffic.simulator}/amazon/lwa/auth/o2/token", data={
                "grant_type": "refresh_token", "refresh_token": "Atzr|revoked",
                "client_id": "amzn1.application-oa2-client.sim0001", "client_secret": "sim-lwa-secret-0001"})
            headers = {"x-amz-access-token": token}
            calls = [client.get(f"{traffic.simulator}/amazon/na/sellers/v1/marketplaceParticipations", headers=headers)
                     for _ in range(3)]
            return [bad.status_code] + [call.status_code for call in calls]

    assert await asyncio.to_thread(erp) == [400, 429, 403, 200]
    await asyncio.to_thread(reporter.close, 5.0)
    samples = await traffic.metrics()
    amazon = {"marketplace": "amazon_sp", "site": "US", "account": "us-main", "service": "erp"}
    errors = "marketplace_client_errors_total"
    assert total(samples, "marketplace_client_requests_total", **amazon, operation="lwa_token") == 2
    assert total(samples, errors, **amazon, operation="lwa_token", reason="auth", code="invalid_grant") == 1
    sellers = {**amazon, "operation": "marketplace_participations"}
    assert total(samples, errors, **sellers, reason="throttled", code="QuotaExceeded") == 1
    # an expired token under 403 is auth, as the probe reads it from the details text
    assert total(samples, errors, **sellers, reason="auth", code="Unauthorized") == 1
    assert total(samples, "marketplace_client_requests_total", **sellers, status_class="2xx") == 1
