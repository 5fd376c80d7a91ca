"""TikTok Shop end to end: the REAL adapter driven by the REAL engine against the simulator on
127.0.0.1 (port 0), every fault kind classified, and proof from ``/__sim/requests`` that the
exporter never calls the (rotating) token-refresh endpoint. Then the simulator's own verification
over raw HTTP: signature, timestamp window, token, shop_cipher, and refresh rotation."""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from sim_harness import (
    Client,
    ClientFactory,
    FakeClock,
    probe,
    sim_json,
    sim_url_fixture,  # noqa: F401  (the `sim` fixture)
    simulator_client,
)
from sim_harness import running as run_engine

from marketplace_exporter.adapters.tiktok_shop_signing import sign
from marketplace_exporter.catalogue import Reason
from marketplace_exporter.engine import Engine
from marketplace_exporter.simulator.tiktok_shop import SIM_APP, TIMESTAMP_WINDOW_S

US, GB = SIM_APP.shop("us-main"), SIM_APP.shop("gb-main")
SHOPS, WEBHOOKS = "/authorization/202309/shops", "/event/202309/webhooks"
T0 = 1_750_000_000.0


def account(sim: str, shop: Any, site: str) -> str:
    return f"""
  - marketplace: tiktok_shop
    alias: {shop.alias}
    site: {site}
    base_url: {sim}/tiktok
    auth_url: {sim}/tiktok-auth
    credentials:
      app_key: {SIM_APP.app_key}
      app_secret: {{value: {SIM_APP.app_secret}}}
      access_token: {{value: {shop.access_token}}}
      shop_cipher: {shop.cipher}
    checks:
      - operation: authorized_shops
      - operation: shop_webhooks
"""


def config_text(sim: str, interval: str = "1h", timeout: str = "500ms") -> str:
    return (f"defaults:\n  interval: {interval}\n  timeout: {timeout}\n  jitter: 0\naccounts:"
            + account(sim, US, "US") + account(sim, GB, "GB"))


def running(text: str) -> AbstractAsyncContextManager[Engine]:
    return run_engine(text, "tiktok.yml")


US_SHOPS = "tiktok_shop/us-main/authorized_shops"

FAULTS = [
    # (fault, value, reason, raw code, exported code label)
    ("token_expired", None, Reason.AUTH, "105002", "105002"),
    ("permission_denied", None, Reason.PERMISSION, "105005", "105005"),
    ("throttle", None, Reason.THROTTLED, "429", "other"),  # TikTok's throttle code: UNCONFIRMED
    ("server_error", None, Reason.SERVER_ERROR, "500", "other"),
    ("server_error", 503, Reason.SERVER_ERROR, "503", "other"),
    ("http_status", 404, Reason.CLIENT_ERROR, "404", "other"),
    ("malformed_body", None, Reason.INVALID_RESPONSE, None, None),
    ("huge_body", 3, Reason.INVALID_RESPONSE, None, None),
    ("hang", None, Reason.TIMEOUT, None, None),
    ("latency", 2, Reason.TIMEOUT, None, None),
    ("reset", None, Reason.CONNECT, None, None),
]


@pytest.mark.parametrize(("fault", "value", "reason", "code", "label"), FAULTS,
                         ids=[f"{f[0]}{f[1] or ''}" for f in FAULTS])
async def test_every_fault_through_the_real_engine(sim: str, fault: str, value: int | None, reason: Reason,
                                                   code: str | None, label: str | None) -> None:
    async with running(config_text(sim)) as engine:
        assert (await probe(engine, US_SHOPS)).outcome.success
        body: dict[str, Any] = {"marketplace": "tiktok_shop", "account": "us-main", "check": "authorized_shops",
                                "fault": fault}
        if value is not None:
            body["value"] = value
        await sim_json("POST", f"{sim}/__sim/faults", json=body)
        record = await probe(engine, US_SHOPS)
        outcome = record.outcome
        assert (outcome.success, outcome.reason, outcome.code, record.code_label) == (False, reason, code, label)
        # the fault is scoped: the other account and the other check still work
        assert (await probe(engine, "tiktok_shop/gb-main/authorized_shops")).outcome.success
        assert (await probe(engine, "tiktok_shop/us-main/shop_webhooks")).outcome.success
        await sim_json("DELETE", f"{sim}/__sim/faults")
        assert (await probe(engine, US_SHOPS)).outcome.success


async def test_success_reports_the_shop_and_the_cipher(sim: str) -> None:
    async with running(config_text(sim)) as engine:
        shops = (await probe(engine, "tiktok_shop/gb-main/authorized_shops")).outcome
        hooks = (await probe(engine, "tiktok_shop/gb-main/shop_webhooks")).outcome
    assert shops.success and shops.message == "1 authorized shops; configured shop_cipher listed"
    assert shops.values == (("shop_cipher_listed", 1.0),) and shops.http_status == 200
    assert hooks.success and hooks.message == "1 webhooks"


async def test_the_exporter_never_calls_the_refresh_endpoint(sim: str) -> None:
    await sim_json("DELETE", f"{sim}/__sim/requests")
    # an expiring token is exactly when a careless monitor would refresh: tempt it
    await sim_json("POST", f"{sim}/__sim/faults", json={"marketplace": "tiktok_shop", "account": "us-main",
                                                        "fault": "token_expired", "count": 3})
    async with running(config_text(sim, interval="200ms", timeout="200ms")) as engine:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            state = engine.store.status(US_SHOPS)
            if state is not None and state.probes >= 6 and state.failures[Reason.AUTH] >= 1:
                break
            await asyncio.sleep(0.05)
    counts = await sim_json("GET", f"{sim}/__sim/requests")
    assert counts["routes"].get("tiktok_shop:authorized_shops", 0) >= 6
    assert counts["routes"].get("tiktok_shop:shop_webhooks", 0) >= 1
    assert "tiktok_shop:token_refresh" not in counts["routes"]
    assert not any("token_refresh" in key for key in counts["accounts"])


# --- the simulator's own verification, over raw HTTP --------------------------------------------



@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def raw(aiohttp_client: ClientFactory, clock: FakeClock) -> Client:
    return await simulator_client(aiohttp_client, clock)


def signed(path: str, *, ts: float = T0, secret: str = SIM_APP.app_secret, cipher: str | None = None,
           **overrides: str) -> dict[str, str]:
    query = {"app_key": SIM_APP.app_key, "timestamp": str(int(ts))}
    if cipher is not None:
        query["shop_cipher"] = cipher
    query["sign"] = sign(secret, path, query)
    query.update(overrides)
    return {key: value for key, value in query.items() if value != "<omit>"}


async def call(raw: Client, path: str, query: dict[str, str], token: str | None = US.access_token
               ) -> tuple[int, dict[str, Any]]:
    headers = {"x-tts-access-token": token} if token is not None else {}
    response = await raw.get("/tiktok" + path, params=query, headers=headers)
    return response.status, await response.json()


async def test_get_authorized_shops_shape(raw: Client) -> None:
    status, body = await call(raw, SHOPS, signed(SHOPS))
    assert status == 200 and (body["code"], body["message"]) == (0, "Success")
    assert len(body["request_id"]) == 34
    (shop,) = body["data"]["shops"]
    assert set(shop) == {"id", "name", "region", "seller_type", "cipher", "code"}
    assert (shop["cipher"], shop["region"]) == (US.cipher, "US")


@pytest.mark.parametrize(("path", "query", "token", "status", "code"), [
    # a bad signature: HTTP 401 with 106001 [OBS G8]; app_key and timestamp share it (simulator choice)
    (SHOPS, {"app_key": "nope"}, US.access_token, 401, 106001),
    (SHOPS, {"app_key": "<omit>"}, US.access_token, 401, 106001),
    (SHOPS, {"sign": "0" * 64}, US.access_token, 401, 106001),
    (SHOPS, {"sign": "<omit>"}, US.access_token, 401, 106001),
    (SHOPS, {"timestamp": "<omit>"}, US.access_token, 401, 106001),
    (SHOPS, {"timestamp": "soon"}, US.access_token, 401, 106001),
    (SHOPS, {}, None, 401, 36009004),
    (SHOPS, {}, "ROW_unknown", 401, 36009004),
    (WEBHOOKS, {}, US.access_token, 200, 106013),  # shop-scoped without shop_cipher
])
async def test_verification_failures(raw: Client, path: str, query: dict[str, str], token: str | None,
                                     status: int, code: int) -> None:
    got_status, body = await call(raw, path, signed(path, **query), token)
    assert (got_status, body["code"]) == (status, code)
    assert body["data"] is None and isinstance(body["message"], str) and body["request_id"]


async def test_sign_covers_the_path_and_a_wrong_secret_fails(raw: Client) -> None:
    assert (await call(raw, SHOPS, signed(SHOPS, secret="wrong")))[1]["code"] == 106001
    # the signature is over the API path without the /tiktok mount prefix
    prefixed = {"app_key": SIM_APP.app_key, "timestamp": str(int(T0))}
    prefixed["sign"] = sign(SIM_APP.app_secret, "/tiktok" + SHOPS, prefixed)
    assert (await call(raw, SHOPS, prefixed))[1]["code"] == 106001


async def test_timestamp_window_is_300s_inclusive(raw: Client) -> None:
    assert TIMESTAMP_WINDOW_S == 300  # "within 5 minutes", 10-digit seconds [G7]
    for offset, code in ((-300, 0), (300, 0), (-301, 106001), (301, 106001)):
        assert (await call(raw, SHOPS, signed(SHOPS, ts=T0 + offset)))[1]["code"] == code
    milliseconds = {"app_key": SIM_APP.app_key, "timestamp": str(int(T0 * 1000))}
    milliseconds["sign"] = sign(SIM_APP.app_secret, SHOPS, milliseconds)
    status, body = await call(raw, SHOPS, milliseconds)
    assert (status, body["code"]) == (401, 106001)  # a 13-digit (milliseconds) timestamp is refused


async def test_shop_cipher_rules(raw: Client) -> None:
    assert (await call(raw, WEBHOOKS, signed(WEBHOOKS, cipher=US.cipher)))[1]["code"] == 0
    assert (await call(raw, WEBHOOKS, signed(WEBHOOKS, cipher=GB.cipher)))[1]["code"] == 106013
    assert (await call(raw, SHOPS, signed(SHOPS, cipher=US.cipher)))[1]["code"] == 36009004  # not wanted there


def refresh_query(token: str, **overrides: str) -> dict[str, str]:
    return {"app_key": SIM_APP.app_key, "app_secret": SIM_APP.app_secret, "refresh_token": token,
            "grant_type": "refresh_token"} | overrides


async def test_refresh_rotates_and_new_tokens_expire_after_7_days(raw: Client, clock: FakeClock) -> None:
    response = await raw.get("/tiktok-auth/api/v2/token/refresh", params=refresh_query(GB.refresh_token))
    body = await response.json()
    data = body["data"]
    assert (response.status, body["code"]) == (200, 0)
    assert data["access_token_expire_in"] == int(T0) + 7 * 86400  # ABSOLUTE timestamps [G1][OBS G3]
    assert data["refresh_token_expire_in"] == 4841467787
    assert data["refresh_token"] != GB.refresh_token
    # rotation: the used refresh token is worthless now, the new one works once
    again = await (await raw.get("/tiktok-auth/api/v2/token/refresh", params=refresh_query(GB.refresh_token))).json()
    assert (again["code"], again["message"]) == (36004005, "can not find related auth record")
    # the minted access token works, then expires on the simulator's clock
    assert (await call(raw, SHOPS, signed(SHOPS), data["access_token"]))[1]["code"] == 0
    clock.now = T0 + 7 * 86400
    assert (await call(raw, SHOPS, signed(SHOPS, ts=clock.now), data["access_token"]))[1]["code"] == 105002
    counts = await (await raw.get("/__sim/requests")).json()
    assert counts["routes"]["tiktok_shop:token_refresh"] == 2  # counted: its absence above means something
    assert counts["accounts"]["tiktok_shop:gb-main:token_refresh"] == 1


@pytest.mark.parametrize(("overrides", "code"), [
    ({"app_key": "nope"}, 106001), ({"app_secret": "wrong"}, 106001), ({"grant_type": "authorized_code"}, 106001),
    ({"refresh_token": "ROW_unknown"}, 36004005),
])
async def test_refresh_rejections(raw: Client, overrides: dict[str, str], code: int) -> None:
    body = await (await raw.get("/tiktok-auth/api/v2/token/refresh",
                                params=refresh_query(US.refresh_token, **overrides))).json()
    assert body["code"] == code


@pytest.mark.parametrize(("fault", "value", "status", "code"), [
    ("token_expired", None, 401, 105002), ("permission_denied", None, 200, 105005),
    ("throttle", None, 429, 429), ("server_error", None, 500, 500), ("token_expired", 200, 200, 105002),
    ("http_status", 418, 418, 418),
])
async def test_error_faults_answer_tiktok_envelopes(raw: Client, fault: str, value: int | None, status: int,
                                                    code: int) -> None:
    body: dict[str, Any] = {"marketplace": "tiktok_shop", "account": "us-main", "fault": fault}
    if value is not None:
        body["value"] = value
    assert (await raw.post("/__sim/faults", json=body)).status == 201
    got_status, answer = await call(raw, SHOPS, signed(SHOPS))
    assert (got_status, answer["code"], answer["data"]) == (status, code, None)
    assert isinstance(answer["message"], str) and len(answer["request_id"]) == 34
