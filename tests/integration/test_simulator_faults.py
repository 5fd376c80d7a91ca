"""The simulator's fault injection and control API over real HTTP (pytest-aiohttp's server on
127.0.0.1, port 0): every fault kind per marketplace, matching and counting, bad definitions."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import httpx
import pytest
from aiohttp import web
from sim_harness import (
    Client,
    FakeClock,
    clock_fixture,  # noqa: F401  (the `clock` fixture)
)
from simulator_requests import (
    EU_MAIN,
    MY,
    SHOP_INFO,
    SHOPS,
    US_MAIN,
    access_token,
    add_fault,
    lwa_form,
    shopee_query,
    sim_client_fixture,  # noqa: F401  (the `sim` fixture)
    sp_get,
)

from marketplace_exporter.simulator import create_simulator_app
from marketplace_exporter.simulator.app import FAULTS

# --- faults ---------------------------------------------------------------------------------------

async def test_latency_delays_then_answers_normally(sim: Client) -> None:
    await add_fault(sim, marketplace="http", check="health", fault="latency", value=0.3)
    started = time.monotonic()
    response = await sim.get("/http/health")
    assert time.monotonic() - started >= 0.3
    assert response.status == 200 and (await response.json())["status"] == "ok"


@pytest.mark.parametrize(("fault", "value", "status", "code", "details"), [
    ("http_status", 503, 503, "ServiceUnavailable", ""),
    ("http_status", 404, 404, "NotFound", ""),
    ("throttle", None, 429, "QuotaExceeded", ""),
    ("token_expired", None, 403, "Unauthorized", "The access token you provided has expired."),
    ("permission_denied", None, 403, "Unauthorized", ""),
    ("server_error", None, 500, "InternalFailure", ""),
    ("server_error", 503, 503, "ServiceUnavailable", ""),
])
async def test_amazon_error_faults(sim: Client, fault: str, value: int | None, status: int, code: str,
                                   details: str) -> None:
    token = await access_token(sim)
    await add_fault(sim, marketplace="amazon_sp", check="marketplace_participations", fault=fault,
                    value=value)
    response = await sp_get(sim, token)
    error = (await response.json())["errors"][0]
    assert (response.status, error["code"], error["details"]) == (status, code, details)
    assert response.headers["x-amzn-ErrorType"] and response.headers["x-amzn-RequestId"]
    assert ("x-amzn-RateLimit-Limit" in response.headers) == (status == 404)
    if fault == "permission_denied":
        assert error["message"] == "Access to requested resource is denied."
        assert "token" not in error["details"]


@pytest.mark.parametrize(("fault", "value", "status", "error"), [
    ("token_expired", None, 400, "invalid_grant"),
    ("throttle", None, 429, "temporarily_unavailable"),
    ("server_error", None, 500, "server_error"),
    ("http_status", 401, 401, "invalid_client"),
])
async def test_lwa_faults_by_refresh_token_account(sim: Client, fault: str, value: int | None, status: int,
                                                   error: str) -> None:
    await add_fault(sim, marketplace="amazon_sp", account="us-main", check="token", fault=fault, value=value)
    response = await sim.post("/amazon/lwa/auth/o2/token", data=lwa_form(US_MAIN))
    assert (response.status, (await response.json())["error"]) == (status, error)
    assert (await sim.post("/amazon/lwa/auth/o2/token", data=lwa_form(EU_MAIN))).status == 200


@pytest.mark.parametrize(("fault", "value", "status", "error", "message"), [
    ("throttle", None, 429, "error_rate_limit",
     "Too many requests. You have reached the rate limit. Please try again later."),
    ("throttle", 200, 200, "error_rate_limit",
     "Too many requests. You have reached the rate limit. Please try again later."),
    ("token_expired", None, 200, "invalid_acceess_token", "Invalid access_token, please have a check."),
    ("permission_denied", None, 200, "error_auth", "No permission to current api."),
    ("server_error", None, 500, "error_server", "Something wrong. Please try later."),
    ("server_error", 200, 200, "error_server", "Something wrong. Please try later."),
    ("http_status", 502, 502, "error_server", "Something wrong. Please try later."),
])
async def test_shopee_error_faults(sim: Client, fault: str, value: int | None, status: int, error: str,
                                   message: str) -> None:
    await add_fault(sim, marketplace="shopee", account="sg-main", fault=fault, value=value)
    response = await sim.get("/shopee" + SHOP_INFO, params=shopee_query())
    body = await response.json()
    assert (response.status, body["error"], body["message"]) == (status, error, message)
    assert body["request_id"]
    untouched = await (await sim.get("/shopee" + SHOP_INFO, params=shopee_query(shop=MY))).json()
    assert untouched["error"] == ""


@pytest.mark.parametrize(("fault", "value", "status"), [
    ("throttle", None, 429), ("token_expired", None, 401), ("permission_denied", None, 403),
    ("server_error", None, 500), ("http_status", 418, 418)])
async def test_http_target_error_faults(sim: Client, fault: str, value: int | None, status: int) -> None:
    await add_fault(sim, marketplace="http", check="health", fault=fault, value=value)
    response = await sim.get("/http/health")
    assert response.status == status
    if fault == "throttle":
        assert response.headers["Retry-After"] == "1"


@pytest.mark.parametrize(("marketplace", "request_args"), [
    ("amazon_sp", None), ("shopee", ("/shopee" + SHOP_INFO, shopee_query())), ("http", ("/http/health", {}))])
async def test_malformed_body_is_truncated_json(sim: Client, marketplace: str,
                                                request_args: tuple[str, dict[str, str]] | None) -> None:
    await add_fault(sim, marketplace=marketplace, fault="malformed_body")
    if request_args is None:
        response = await sp_get(sim, "Atza|any")
    else:
        response = await sim.get(request_args[0], params=request_args[1])
    raw = await response.read()
    assert response.status == 200 and response.content_type == "application/json" and raw.startswith(b"{")
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)


async def test_huge_body_streams_valid_json_chunked(sim: Client) -> None:
    await add_fault(sim, marketplace="shopee", check="get_shops_by_partner", fault="huge_body", value=3)
    response = await sim.get("/shopee" + SHOPS, params=shopee_query(SHOPS))
    assert response.status == 200 and "Content-Length" not in response.headers
    assert response.headers["Transfer-Encoding"] == "chunked"
    raw = await response.read()
    assert 3 * 1024 * 1024 - 200 <= len(raw) <= 3 * 1024 * 1024
    assert len(json.loads(raw)["authed_shop_list"]) > 1000


async def test_huge_body_default_50_mib_client_may_stop_reading(sim: Client) -> None:
    fault_id = await add_fault(sim, marketplace="http", fault="huge_body")
    listed = (await (await sim.get("/__sim/faults")).json())["faults"]
    assert [(f["id"], f["value"]) for f in listed] == [(fault_id, 50.0)]
    response = await sim.get("/http/health")
    received = 0
    async for chunk in response.content.iter_chunked(65536):
        received += len(chunk)
        if received > 1024 * 1024:
            break
    response.close()
    await sim.delete("/__sim/faults")
    assert (await sim.get("/http/health")).status == 200


async def test_reset_aborts_the_connection(sim: Client) -> None:
    await add_fault(sim, marketplace="http", fault="reset")
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    writer.write(b"GET /http/health HTTP/1.1\r\nHost: sim\r\n\r\n")
    await writer.drain()
    with pytest.raises(ConnectionResetError):
        await reader.read(1024)
    writer.close()
    with pytest.raises(aiohttp.ClientConnectionError):
        await sim.get("/http/health")
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.TransportError):
            await client.get(f"http://127.0.0.1:{sim.port}/http/health")


async def test_hang_holds_until_the_client_leaves(sim: Client) -> None:
    await add_fault(sim, marketplace="amazon_sp", check="account", fault="hang", count=1)
    baseline = len(asyncio.all_tasks())
    with pytest.raises(asyncio.TimeoutError):
        await sim.get("/amazon/na/sellers/v1/account", timeout=aiohttp.ClientTimeout(total=0.3))
    for _ in range(40):  # the server's handler notices the disconnect and ends
        if len(asyncio.all_tasks()) <= baseline:
            break
        await asyncio.sleep(0.05)
    assert len(asyncio.all_tasks()) <= baseline
    assert (await sim.get("/amazon/na/sellers/v1/account")).status == 403  # count=1: used up


async def test_shutdown_releases_a_hanging_request(clock: FakeClock) -> None:
    app = create_simulator_app(clock=clock)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        created = await client.post("/__sim/faults", json={"marketplace": "http", "fault": "hang"})
        assert created.status_code == 201
        pending = asyncio.ensure_future(client.get("/http/health", timeout=30))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await runner.cleanup()
        assert time.monotonic() - started < 3
        with pytest.raises(httpx.TransportError):
            await pending


async def test_fault_matching_count_order_and_deletion(sim: Client) -> None:
    first = await add_fault(sim, marketplace="http", fault="http_status", value=500, count=1)
    await add_fault(sim, marketplace="http", fault="http_status", value=502, count=2)
    keep = await add_fault(sim, marketplace="http", check="status", fault="http_status", value=418)
    statuses = [(await sim.get("/http/health")).status for _ in range(4)]
    assert statuses == [500, 502, 502, 200]  # oldest first; used-up faults expire
    assert [f["id"] for f in (await (await sim.get("/__sim/faults")).json())["faults"]] == [keep]
    assert (await sim.get("/http/status/200")).status == 418
    assert first != keep and (await sim.delete(f"/__sim/faults/{first}")).status == 404
    assert (await sim.delete(f"/__sim/faults/{keep}")).status == 200
    assert (await sim.get("/http/status/200")).status == 200
    await add_fault(sim, marketplace="shopee", fault="throttle")
    assert await (await sim.delete("/__sim/faults")).json() == {"deleted": 1}


async def test_amazon_fault_matches_account_by_access_token(sim: Client) -> None:
    us, eu = await access_token(sim), await access_token(sim, EU_MAIN)
    await add_fault(sim, marketplace="amazon_sp", account="eu-main", fault="throttle")
    assert (await sp_get(sim, us)).status == 200
    assert (await sp_get(sim, eu)).status == 429
    assert (await sp_get(sim, "Atza|unknown")).status == 403  # unidentified: account faults skip it


# --- control API ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "fragment"), [
    (b"{broken", "valid JSON"),
    (b"\xff", "valid JSON"),
    (b"[]", "JSON object"),
    (b'{"marketplace": "etsy", "fault": "throttle"}', "marketplace must be one of"),
    (b'{"marketplace": "amazon_sp", "fault": "explode"}', "fault must be one of"),
    (b'{"marketplace": "amazon_sp", "fault": "throttle", "account": "nobody"}', "account must be one of"),
    (b'{"marketplace": "http", "fault": "throttle", "account": "x"}', "has no accounts"),
    (b'{"marketplace": "shopee", "fault": "throttle", "check": "get_order"}', "check must be one of"),
    (b'{"marketplace": "http", "fault": "latency"}', "needs a 'value'"),
    (b'{"marketplace": "http", "fault": "latency", "value": -1}', "latency value"),
    (b'{"marketplace": "http", "fault": "latency", "value": "1"}', "must be a number"),
    (b'{"marketplace": "http", "fault": "latency", "value": true}', "must be a number"),
    (b'{"marketplace": "http", "fault": "latency", "value": NaN}', "must be a number"),
    (b'{"marketplace": "amazon_sp", "fault": "http_status", "value": 200}', "HTTP status 400-599"),
    (b'{"marketplace": "shopee", "fault": "http_status", "value": 700}', "HTTP status 200-599"),
    (b'{"marketplace": "http", "fault": "reset", "value": 1}', "takes no 'value'"),
    (b'{"marketplace": "http", "fault": "huge_body", "value": 1e9}', "huge_body value"),
    (b'{"marketplace": "http", "fault": "reset", "count": 0}', "count must be"),
    (b'{"marketplace": "http", "fault": "reset", "count": true}', "count must be"),
    (b'{"marketplace": "http", "fault": "reset", "when": "now"}', "unknown field"),
])
async def test_bad_fault_definitions_are_400(sim: Client, body: bytes, fragment: str) -> None:
    response = await sim.post("/__sim/faults", data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert fragment in (await response.json())["error"]


async def test_request_counts(sim: Client) -> None:
    token = await access_token(sim)
    await sp_get(sim, token)
    await add_fault(sim, marketplace="shopee", fault="server_error")
    await sim.get("/shopee" + SHOP_INFO, params=shopee_query(shop=MY))
    await sim.get("/shopee" + SHOPS, params=shopee_query(SHOPS))
    await sim.get("/http/status/200")
    await sim.get("/__sim/health")
    counts = await (await sim.get("/__sim/requests")).json()
    assert counts == {
        "total": 5,
        "routes": {"amazon_sp:marketplace_participations": 1, "amazon_sp:token": 1, "http:status": 1,
                   "shopee:get_shop_info": 1, "shopee:get_shops_by_partner": 1},
        "accounts": {"amazon_sp:us-main:marketplace_participations": 1, "amazon_sp:us-main:token": 1,
                     "shopee:my-main:get_shop_info": 1},
    }
    assert (await sim.delete("/__sim/requests")).status == 200
    assert (await (await sim.get("/__sim/requests")).json())["total"] == 0


async def test_health_index_and_isolated_apps(sim: Client, clock: FakeClock) -> None:
    assert (await sim.get("/__sim/health")).status == 200
    assert "/__sim/faults" in await (await sim.get("/")).text()
    await add_fault(sim, marketplace="http", fault="reset")
    other = create_simulator_app(clock=clock)
    assert sim.app is not None and other is not sim.app
    assert other[FAULTS].all() == [] and len(sim.app[FAULTS].all()) == 1
