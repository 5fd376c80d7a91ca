"""The simulator answered over real HTTP (pytest-aiohttp's server on 127.0.0.1, port 0)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from marketplace_exporter.simulator import SIM_ACCOUNTS, create_simulator_app
from marketplace_exporter.simulator.app import FAULTS
from marketplace_exporter.simulator.shopee import sign

US_MAIN = SIM_ACCOUNTS.amazon("us-main")
EU_MAIN = SIM_ACCOUNTS.amazon("eu-main")
PARTNER = SIM_ACCOUNTS.shopee
SG, MY = SIM_ACCOUNTS.shop("sg-main"), SIM_ACCOUNTS.shop("my-main")
PARTICIPATIONS = "/amazon/{host}/sellers/v1/marketplaceParticipations"
SHOP_INFO = "/api/v2/shop/get_shop_info"
SHOPS = "/api/v2/public/get_shops_by_partner"
T0 = 1_750_000_000.0

Client = TestClient[web.Request, web.Application]


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sim(aiohttp_client: Callable[[web.Application], Awaitable[Client]], clock: FakeClock) -> Client:
    return await aiohttp_client(create_simulator_app(clock=clock))


def lwa_form(account: Any = US_MAIN, **overrides: str) -> dict[str, str]:
    form = {"grant_type": "refresh_token", "refresh_token": account.refresh_token,
            "client_id": account.client_id, "client_secret": account.client_secret}
    form.update(overrides)
    return {key: value for key, value in form.items() if value != "<omit>"}


async def access_token(sim: Client, account: Any = US_MAIN) -> str:
    response = await sim.post("/amazon/lwa/auth/o2/token", data=lwa_form(account))
    assert response.status == 200
    return str((await response.json())["access_token"])


async def sp_get(
    sim: Client, token: str | None, host: str = "na", path: str = PARTICIPATIONS,
) -> aiohttp.ClientResponse:
    headers = {"x-amz-access-token": token} if token is not None else {}
    return await sim.get(path.format(host=host), headers=headers)


def shopee_query(
    check_path: str = SHOP_INFO, shop: Any = SG, *, ts: float = T0, key: str = PARTNER.partner_key,
    sign_path: str | None = None, **overrides: str,
) -> dict[str, str]:
    query = {"partner_id": str(PARTNER.partner_id), "timestamp": str(int(ts))}
    parts = [query["partner_id"], sign_path or check_path, query["timestamp"]]
    if check_path == SHOP_INFO:
        query |= {"access_token": shop.access_token, "shop_id": str(shop.shop_id)}
        parts += [query["access_token"], query["shop_id"]]
    query["sign"] = sign(key, *parts)
    query.update(overrides)
    return {key: value for key, value in query.items() if value != "<omit>"}


async def add_fault(sim: Client, **fault: Any) -> str:
    response = await sim.post("/__sim/faults", json=fault)
    assert response.status == 201, await response.text()
    return str((await response.json())["id"])


# --- LWA ------------------------------------------------------------------------------------------

async def test_lwa_form_grant_echoes_refresh_token(sim: Client) -> None:
    response = await sim.post("/amazon/lwa/auth/o2/token", data=lwa_form())
    body = await response.json()
    assert response.status == 200 and response.headers["x-amzn-RequestId"]
    assert body["access_token"].startswith("Atza|") and len(body["access_token"]) > 20
    assert (body["token_type"], body["expires_in"]) == ("bearer", 3600)
    assert body["refresh_token"] == US_MAIN.refresh_token


async def test_lwa_accepts_json_body_and_issues_fresh_tokens(sim: Client) -> None:
    first = await (await sim.post("/amazon/lwa/auth/o2/token", json=lwa_form(EU_MAIN))).json()
    second = await (await sim.post("/amazon/lwa/auth/o2/token", json=lwa_form(EU_MAIN))).json()
    assert first["refresh_token"] == EU_MAIN.refresh_token
    assert first["access_token"] != second["access_token"]


@pytest.mark.parametrize(("overrides", "status", "error", "description"), [
    ({"refresh_token": "Atzr|revoked"}, 400, "invalid_grant",
     "The request has an invalid grant parameter : refresh_token"),
    ({"client_secret": "wrong"}, 401, "invalid_client", None),
    ({"client_id": "amzn1.application-oa2-client.other"}, 401, "invalid_client", None),
    ({"refresh_token": "<omit>"}, 400, "invalid_request", None),
    ({"client_id": "<omit>"}, 400, "invalid_request", None),
    ({"client_secret": "<omit>"}, 400, "invalid_request", None),
    ({"grant_type": "<omit>"}, 400, "invalid_request", None),
    ({"grant_type": "authorization_code"}, 400, "unsupported_grant_type", None),
])
async def test_lwa_rejections(sim: Client, overrides: dict[str, str], status: int, error: str,
                              description: str | None) -> None:
    response = await sim.post("/amazon/lwa/auth/o2/token", data=lwa_form(**overrides))
    body = await response.json()
    assert (response.status, body["error"]) == (status, error)
    assert body["error_description"] == (description or body["error_description"])


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"x"', b"\xff\xfe"])
async def test_lwa_hostile_json_is_invalid_request(sim: Client, raw: bytes) -> None:
    response = await sim.post(
        "/amazon/lwa/auth/o2/token", data=raw, headers={"Content-Type": "application/json"})
    assert response.status == 400 and (await response.json())["error"] == "invalid_request"


# --- SP-API Sellers -------------------------------------------------------------------------------

async def test_participations_shape_and_rate_header(sim: Client) -> None:
    response = await sp_get(sim, await access_token(sim))
    body = await response.json()
    assert response.status == 200
    assert response.headers["x-amzn-RateLimit-Limit"] == "0.016" and response.headers["x-amzn-RequestId"]
    first = body["payload"][0]
    assert set(first["marketplace"]) == {"id", "countryCode", "name", "defaultCurrencyCode",
                                         "defaultLanguageCode", "domainName"}
    assert first["marketplace"]["id"] == "ATVPDKIKX0DER"
    assert first["participation"] == {"isParticipating": True, "hasSuspendedListings": False}


async def test_account_operation_for_eu_seller(sim: Client) -> None:
    response = await sp_get(sim, await access_token(sim, EU_MAIN), "eu", "/amazon/{host}/sellers/v1/account")
    payload = (await response.json())["payload"]
    assert response.status == 200 and payload["sellingPlan"] == "PROFESSIONAL"
    countries = [p["marketplace"]["countryCode"] for p in payload["marketplaceParticipationList"]]
    assert countries == ["GB", "DE", "FR"]


async def test_sandbox_host_is_canned_us_with_sandbox_rate(sim: Client) -> None:
    response = await sp_get(sim, await access_token(sim, EU_MAIN), "sandbox-eu")
    assert response.headers["x-amzn-RateLimit-Limit"] == "5.0"
    assert [p["marketplace"]["id"] for p in (await response.json())["payload"]] == ["ATVPDKIKX0DER"]


async def test_unknown_host_is_not_routed(sim: Client) -> None:
    assert (await sp_get(sim, "x", "xx")).status == 404


@pytest.mark.parametrize(("token", "details"), [
    (None, "Access token is missing in the request header."),
    ("Atza|forged", "The access token you provided is revoked, malformed or invalid."),
    ("expired", "The access token you provided has expired."),
])
async def test_sp_api_token_errors_are_403_unauthorized(sim: Client, clock: FakeClock, token: str | None,
                                                        details: str) -> None:
    if token == "expired":
        token = await access_token(sim)
        clock.now += 3600
    response = await sp_get(sim, token)
    assert response.status == 403
    assert await response.json() == {"errors": [
        {"code": "Unauthorized", "message": "Access to requested resource is denied.", "details": details}]}
    assert response.headers["x-amzn-ErrorType"] and response.headers["x-amzn-RequestId"]
    assert "x-amzn-RateLimit-Limit" not in response.headers


@pytest.mark.parametrize("host", ["na", "fe"])
async def test_get_account_outside_the_eu_is_refused_like_a_wrong_region(sim: Client, host: str) -> None:
    """getAccount is EU only [A24][A25]; elsewhere the empty-details 403 of a wrong-region call [OBS A21]."""
    response = await sp_get(sim, await access_token(sim), host, "/amazon/{host}/sellers/v1/account")
    assert response.status == 403
    assert await response.json() == {"errors": [
        {"code": "Unauthorized", "message": "Access to requested resource is denied.", "details": ""}]}


async def test_bucket_empties_after_burst_then_refills_on_the_clock(sim: Client, clock: FakeClock) -> None:
    token = await access_token(sim)
    statuses = [(await sp_get(sim, token)).status for _ in range(15)]
    throttled = await sp_get(sim, token)
    assert statuses == [200] * 15 and throttled.status == 429
    assert (await throttled.json())["errors"][0] == {
        "code": "QuotaExceeded", "message": "You exceeded your quota for the requested resource.",
        "details": ""}
    assert "x-amzn-RateLimit-Limit" not in throttled.headers and throttled.headers["x-amzn-RequestId"]
    # another account, another operation: their own buckets (getAccount is EU only [A24])
    eu_token = await access_token(sim, EU_MAIN)
    assert (await sp_get(sim, eu_token)).status == 200
    assert (await sp_get(sim, eu_token, "eu", "/amazon/{host}/sellers/v1/account")).status == 200
    clock.now += 30  # 0.48 token: still empty
    assert (await sp_get(sim, token)).status == 429
    clock.now += 33  # 63 s * 0.016 = 1.008 tokens
    assert [(await sp_get(sim, token)).status for _ in range(2)] == [200, 429]


async def test_sandbox_bucket_is_5_per_second(sim: Client, clock: FakeClock) -> None:
    token = await access_token(sim)
    statuses = [(await sp_get(sim, token, "sandbox-na")).status for _ in range(16)]
    assert statuses == [200] * 15 + [429]
    clock.now += 0.2
    assert (await sp_get(sim, token, "sandbox-na")).status == 200


# --- Shopee ---------------------------------------------------------------------------------------

async def test_get_shop_info(sim: Client) -> None:
    for shop in (SG, MY):
        response = await sim.get("/shopee" + SHOP_INFO, params=shopee_query(shop=shop))
        body = await response.json()
        assert response.status == 200 and (body["error"], body["message"]) == ("", "")
        assert len(body["request_id"]) == 32
        assert (body["region"], body["status"]) == (shop.region, "NORMAL")
        assert body["auth_time"] == int(T0) - shop.authorized_days_ago * 86400
        assert body["expire_time"] - body["auth_time"] == 365 * 86400


async def test_get_shops_by_partner_and_paging(sim: Client) -> None:
    body = await (await sim.get("/shopee" + SHOPS, params=shopee_query(SHOPS))).json()
    assert [s["shop_id"] for s in body["authed_shop_list"]] == [SG.shop_id, MY.shop_id]
    assert body["more"] is False and body["error"] == "" and body["authed_shop_list"][0]["expire_time"]
    page = await (await sim.get("/shopee" + SHOPS, params=shopee_query(SHOPS, page_size="1"))).json()
    assert len(page["authed_shop_list"]) == 1 and page["more"] is True


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"partner_id": "<omit>"}, "error_param", "There is no partner_id in query."),
    ({"timestamp": "<omit>"}, "error_param", "no timestamp"),
    ({"sign": "<omit>"}, "error_param", "There is no sign in query."),
    ({"access_token": "<omit>"}, "error_param", "There is no access_token in query."),
    ({"partner_id": "999"}, "error_param", "Invalid partner_id."),
    ({"ts": T0 - 301}, "error_param", "Timestamp is expired."),
    ({"ts": T0 + 301}, "error_param", "Timestamp is expired."),
    ({"timestamp": "soon"}, "error_param",
     "Timestamp is invalid, should be an integer between 0 and 4294967295."),
    ({"sign_path": "/shopee" + SHOP_INFO}, "error_sign", "Wrong sign."),
    ({"key": "not-the-partner-key"}, "error_sign", "Wrong sign."),
    ({"sign": "A" * 64}, "error_sign", "Wrong sign."),
    ({"shop": type("Shop", (), {"access_token": "stolen", "shop_id": SG.shop_id})},
     "invalid_acceess_token", "Invalid access_token, please have a check."),
    ({"shop": type("Shop", (), {"access_token": SG.access_token, "shop_id": MY.shop_id})},
     "error_auth", "Invalid partner_id or shopid."),
    # a shop the partner holds no authorization for: get_shop_info's common_error_list [C3]
    ({"shop": type("Shop", (), {"access_token": SG.access_token, "shop_id": 99999})},
     "shop_no_linked", "Partner and shop has no linked."),
])
async def test_shopee_verification_failures(
    sim: Client, kwargs: dict[str, Any], error: str, message: str,
) -> None:
    response = await sim.get("/shopee" + SHOP_INFO, params=shopee_query(**kwargs))
    body = await response.json()
    assert response.status == 200  # the simulator's choice for business errors (UNCONFIRMED upstream)
    assert (body["error"], body["message"]) == (error, message) and len(body["request_id"]) == 32


async def test_shopee_timestamp_window_is_inclusive(sim: Client) -> None:
    for ts in (T0 - 300, T0 + 300):
        body = await (await sim.get("/shopee" + SHOPS, params=shopee_query(SHOPS, ts=ts))).json()
        assert body["error"] == ""


async def test_public_api_sign_excludes_token_and_shop(sim: Client) -> None:
    query = shopee_query(SHOPS)
    wrong = sign(PARTNER.partner_key, query["partner_id"], SHOPS, query["timestamp"],
                 SG.access_token, SG.shop_id)
    body = await (await sim.get("/shopee" + SHOPS, params=query | {"sign": wrong})).json()
    assert body["error"] == "error_sign"


# --- generic HTTP targets -------------------------------------------------------------------------

async def test_http_health_uses_the_clock(sim: Client) -> None:
    body = await (await sim.get("/http/health")).json()
    assert body["status"] == "ok" and body["queue_depth"] == 3
    assert datetime.fromisoformat(body["last_order_synced_at"]).timestamp() == T0 - 30


async def test_http_status_route(sim: Client) -> None:
    assert (await sim.get("/http/status/503")).status == 503
    assert (await sim.get("/http/status/204")).status == 204
    assert (await sim.get("/http/status/abc")).status == 400
    assert (await sim.get("/http/status/" + "9" * 5000)).status == 400


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
