"""The simulator's marketplace APIs answered over real HTTP (pytest-aiohttp's server on 127.0.0.1,
port 0): LWA, SP-API Sellers and its rate buckets, Shopee signing, the generic HTTP targets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sim_harness import (
    T0,
    Client,
    FakeClock,
    clock_fixture,  # noqa: F401  (the `clock` fixture)
)
from simulator_requests import (
    EU_MAIN,
    MY,
    PARTNER,
    SG,
    SHOP_INFO,
    SHOPS,
    US_MAIN,
    access_token,
    lwa_form,
    shopee_query,
    sim_client_fixture,  # noqa: F401  (the `sim` fixture)
    sp_get,
)

from marketplace_exporter.simulator.shopee import sign

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
