"""eBay end to end: the REAL adapter driven by the REAL engine against the simulator on 127.0.0.1
(port 0) — both OAuth grants and their caching, every fault kind classified, daily quotas and the
observed headroom they produce. Then the simulator's own checks over raw HTTP: Basic and Bearer
authentication, grants and scopes, the marketplace header, quota windows on an injected clock."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from sim_harness import Client, ClientFactory, FakeClock, LateStart, probe, serve_simulator, sim_json, simulator_client
from sim_harness import running as run_engine

from marketplace_exporter.catalogue import Credential, RateLimitSource, Reason, Step
from marketplace_exporter.engine import Engine
from marketplace_exporter.simulator.app import PLATFORMS
from marketplace_exporter.simulator.ebay import EBAY_APP, EbaySim

US, DE = EBAY_APP.user("us-main"), EBAY_APP.user("de-main")
PRIVILEGE, RATE_LIMIT, USER_RATE_LIMIT = (f"ebay/us-main/{op}" for op in ("privilege", "rate_limit", "user_rate_limit"))
DE_PRIVILEGE = "ebay/de-main/privilege"
TOKEN_PATH = "/ebay/identity/v1/oauth2/token"
T0 = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC
SCOPE = "https://api.ebay.com/oauth/api_scope"


def account(sim: str, user: Any, site: str, extra: str = "") -> str:
    return f"""
  - marketplace: ebay
    alias: {user.alias}
    site: {site}
    base_url: {sim}/ebay
    auth_url: {sim}/ebay
    credentials:
      client_id: {EBAY_APP.client_id}
      client_secret: {{value: {EBAY_APP.client_secret}}}
      refresh_token: {{value: "{user.refresh_token}"}}
      refresh_token_expires_at: 2027-06-01{extra}
    checks:
      - operation: privilege
      - operation: rate_limit
      - operation: user_rate_limit
"""


def config_text(sim: str, us_extra: str = "", timeout: str = "500ms") -> str:
    return (f"defaults:\n  interval: 1h\n  timeout: {timeout}\n  jitter: 0.1\naccounts:"
            + account(sim, US, "US", us_extra) + account(sim, DE, "DE"))


@pytest.fixture
async def sim() -> AsyncIterator[tuple[str, EbaySim]]:
    async with serve_simulator() as (url, app):
        platform = app[PLATFORMS]["ebay"]
        assert isinstance(platform, EbaySim)
        yield url, platform


def running(text: str) -> AbstractAsyncContextManager[Engine]:
    return run_engine(text, "ebay.yml", rng=LateStart())


async def test_every_operation_succeeds_for_both_sites(sim: tuple[str, EbaySim]) -> None:
    url, _ = sim
    async with running(config_text(url)) as engine:
        records = {check: await probe(engine, check) for check in (PRIVILEGE, RATE_LIMIT, USER_RATE_LIMIT,
                                                                     DE_PRIVILEGE, "ebay/de-main/rate_limit")}
        store = engine.store
    for check, record in records.items():
        assert record.outcome.success, (check, record.outcome)
    assert records[PRIVILEGE].outcome.values == (("seller_registration_completed", 1.0),
                                                 ("selling_limit_quantity", 1000.0))
    assert records[DE_PRIVILEGE].outcome.values[1] == ("selling_limit_quantity", 500.0)
    # getUserRateLimits: the simulated APIs have no per-user quota, so nothing to report (204)
    assert records[USER_RATE_LIMIT].outcome.http_status == 204 and records[USER_RATE_LIMIT].outcome.rate_limit is None
    expiry = store.credential_expiry(("ebay", "US", "us-main", Credential.REFRESH_TOKEN))
    assert expiry == 1811808000.0  # 2027-06-01, configured: eBay returns no refresh expiry on refresh
    access = store.credential_expiry(("ebay", "US", "us-main", Credential.ACCESS_TOKEN))
    assert access - records[PRIVILEGE].started_at == pytest.approx(7200, abs=1)


async def test_observed_headroom_is_the_simulators_own_count(sim: tuple[str, EbaySim]) -> None:
    url, platform = sim
    platform.quota.spend("privilege", 10_000, time.time())  # production's calls today
    async with running(config_text(url)) as engine:
        for _ in range(3):
            await probe(engine, PRIVILEGE)
        await probe(engine, DE_PRIVILEGE)
        first = (await probe(engine, RATE_LIMIT)).outcome
        platform.quota.spend("analytics", 4_000, time.time())
        second = (await probe(engine, "ebay/de-main/rate_limit")).outcome
        state = engine.store.status("ebay/de-main/rate_limit")
    observed = first.rate_limit
    assert observed is not None and observed.source is RateLimitSource.OBSERVED
    # the tightest is the Account API: 10 004 of 25 000 spent (the Analytics call itself is 1 of 5 000)
    assert (observed.remaining, observed.limit, observed.remaining_ratio) == (14_996.0, 25_000.0, 0.59984)
    assert "sell account v1 sell.account: 14996/25000 left" in first.message
    assert observed.reset_at is not None and (observed.reset_at - 8 * 3600) % 86400 == 0  # next midnight PST [B19]
    assert second.rate_limit is not None and (second.rate_limit.remaining, second.rate_limit.limit) == (998.0, 5000.0)
    assert "developer analytics v1_beta developer.analytics" in second.message
    assert state.observed_rate_limit == second.rate_limit


async def test_tokens_are_minted_once_and_the_app_token_is_shared(sim: tuple[str, EbaySim]) -> None:
    url, _ = sim
    async with running(config_text(url)) as engine:
        for _ in range(3):
            for check in (PRIVILEGE, RATE_LIMIT, USER_RATE_LIMIT, DE_PRIVILEGE, "ebay/de-main/rate_limit"):
                assert (await probe(engine, check)).outcome.success
        spent = {state.spec.id: dict(state.requests) for state in engine.store.statuses()}
    counts = await sim_json("GET", f"{url}/__sim/requests")
    # one refresh grant per seller, one client-credentials grant for the shared keyset
    assert counts["routes"]["ebay:token"] == 3
    assert counts["accounts"]["ebay:us-main:token"] == 1 and counts["accounts"]["ebay:de-main:token"] == 1
    assert counts["routes"]["ebay:privilege"] == 6 and counts["routes"]["ebay:rate_limit"] == 6
    assert sum(steps.get(Step.TOKEN, 0) for steps in spent.values()) == 3  # the exporter's own count agrees


def fault_id(fault: dict[str, Any]) -> str:
    return "-".join(str(fault.get(key)) for key in ("check", "fault", "value") if fault.get(key) is not None)


FAULTS: list[tuple[dict[str, Any], str, Reason, str | None, str | None]] = [
    # (fault, check probed, reason, code, code label after folding)
    ({"account": "us-main", "check": "privilege", "fault": "token_expired"}, PRIVILEGE, Reason.AUTH, "1001", "1001"),
    ({"account": "us-main", "check": "privilege", "fault": "permission_denied"}, PRIVILEGE,
     Reason.PERMISSION, "1100", "1100"),
    ({"account": "us-main", "check": "privilege", "fault": "throttle"}, PRIVILEGE, Reason.THROTTLED, "2001", "2001"),
    # getPrivileges' own documented 500: errorId 20500, domain API_ACCOUNT [B2]
    ({"account": "us-main", "check": "privilege", "fault": "server_error"}, PRIVILEGE,
     Reason.SERVER_ERROR, "20500", "20500"),
    ({"account": "us-main", "check": "privilege", "fault": "server_error", "value": 502}, PRIVILEGE,
     Reason.SERVER_ERROR, "3005", "3005"),
    ({"account": "us-main", "check": "privilege", "fault": "server_error", "value": 503}, PRIVILEGE,
     Reason.SERVER_ERROR, "2003", "2003"),
    ({"account": "us-main", "check": "privilege", "fault": "http_status", "value": 404}, PRIVILEGE,
     Reason.CLIENT_ERROR, "2002", "2002"),
    ({"account": "us-main", "check": "privilege", "fault": "http_status", "value": 502}, PRIVILEGE,
     Reason.SERVER_ERROR, "3005", "3005"),
    ({"account": "us-main", "check": "privilege", "fault": "http_status", "value": 409}, PRIVILEGE,
     Reason.CLIENT_ERROR, "2004", "2004"),
    ({"account": "us-main", "check": "privilege", "fault": "malformed_body"}, PRIVILEGE,
     Reason.INVALID_RESPONSE, None, None),
    ({"account": "us-main", "check": "privilege", "fault": "huge_body", "value": 2}, PRIVILEGE,
     Reason.INVALID_RESPONSE, None, None),
    ({"account": "us-main", "check": "privilege", "fault": "hang"}, PRIVILEGE, Reason.TIMEOUT, None, None),
    ({"account": "us-main", "check": "privilege", "fault": "latency", "value": 2}, PRIVILEGE,
     Reason.TIMEOUT, None, None),
    ({"account": "us-main", "check": "privilege", "fault": "reset"}, PRIVILEGE, Reason.CONNECT, None, None),
    # the token step (refresh grant of us-main)
    ({"account": "us-main", "check": "token", "fault": "token_expired"}, PRIVILEGE,
     Reason.AUTH, "invalid_grant", "invalid_grant"),
    ({"account": "us-main", "check": "token", "fault": "permission_denied"}, PRIVILEGE,
     Reason.PERMISSION, "invalid_scope", "invalid_scope"),
    ({"account": "us-main", "check": "token", "fault": "throttle"}, PRIVILEGE, Reason.THROTTLED, "2001", "2001"),
    ({"account": "us-main", "check": "token", "fault": "server_error"}, PRIVILEGE,
     Reason.SERVER_ERROR, "server_error", "server_error"),
    ({"account": "us-main", "check": "token", "fault": "http_status", "value": 401}, PRIVILEGE,
     Reason.AUTH, "invalid_client", "invalid_client"),
    ({"account": "us-main", "check": "token", "fault": "malformed_body"}, PRIVILEGE,
     Reason.INVALID_RESPONSE, None, None),
    ({"account": "us-main", "check": "token", "fault": "reset"}, PRIVILEGE, Reason.CONNECT, None, None),
    # application-token calls carry no seller identity: faults target the check
    ({"check": "rate_limit", "fault": "throttle"}, RATE_LIMIT, Reason.THROTTLED, "2001", "2001"),
    ({"check": "rate_limit", "fault": "token_expired"}, RATE_LIMIT, Reason.AUTH, "1001", "1001"),
    ({"check": "rate_limit", "fault": "malformed_body"}, RATE_LIMIT, Reason.INVALID_RESPONSE, None, None),
    ({"check": "rate_limit", "fault": "huge_body", "value": 2}, RATE_LIMIT, Reason.INVALID_RESPONSE, None, None),
    ({"check": "rate_limit", "fault": "hang"}, RATE_LIMIT, Reason.TIMEOUT, None, None),
    ({"account": "us-main", "check": "user_rate_limit", "fault": "permission_denied"}, USER_RATE_LIMIT,
     Reason.PERMISSION, "1100", "1100"),
]


@pytest.mark.parametrize(("fault", "check", "reason", "code", "label"), FAULTS, ids=[fault_id(f[0]) for f in FAULTS])
async def test_each_fault_is_classified_and_isolated(
        sim: tuple[str, EbaySim], fault: dict[str, Any], check: str, reason: Reason, code: str | None,
        label: str | None) -> None:
    url, _ = sim
    async with running(config_text(url)) as engine:
        await sim_json("POST", f"{url}/__sim/faults", json={"marketplace": "ebay", **fault})
        record = await probe(engine, check)
        assert not record.outcome.success
        assert (record.outcome.reason, record.outcome.code, record.code_label) == (reason, code, label)
        assert (await probe(engine, DE_PRIVILEGE)).outcome.success  # the other seller is unaffected
        await sim_json("DELETE", f"{url}/__sim/faults")
        assert (await probe(engine, check)).outcome.success  # and the faulted check recovers


async def test_an_auth_failure_drops_the_token_and_the_next_probe_mints_a_new_one(sim: tuple[str, EbaySim]) -> None:
    url, _ = sim
    async with running(config_text(url)) as engine:
        assert (await probe(engine, PRIVILEGE)).outcome.success
        await sim_json("POST", f"{url}/__sim/faults", json={"marketplace": "ebay", "account": "us-main",
                                                          "fault": "token_expired", "count": 1})
        assert (await probe(engine, PRIVILEGE)).outcome.reason is Reason.AUTH
        again = await probe(engine, PRIVILEGE)
    assert again.outcome.success and [str(step) for step in again.steps] == ["token", "call"]


async def test_spent_daily_quota_throttles_with_2001_and_shows_zero_headroom(sim: tuple[str, EbaySim]) -> None:
    url, platform = sim
    platform.quota.spend("privilege", 25_000, time.time())  # production used the whole day
    async with running(config_text(url)) as engine:
        throttled = (await probe(engine, PRIVILEGE)).outcome
        report = (await probe(engine, RATE_LIMIT)).outcome
    assert (throttled.reason, throttled.code, throttled.http_status) == (Reason.THROTTLED, "2001", 429)
    assert "The request limit has been reached for the resource." in throttled.message
    assert report.rate_limit is not None
    assert (report.rate_limit.remaining_ratio, report.rate_limit.remaining) == (0.0, 0.0)


async def test_configured_scopes_narrow_the_token(sim: tuple[str, EbaySim]) -> None:
    url, _ = sim
    narrow = f"\n      scopes: [{SCOPE}]"
    async with running(config_text(url, us_extra=narrow)) as engine:
        denied = (await probe(engine, PRIVILEGE)).outcome
    assert (denied.reason, denied.code) == (Reason.PERMISSION, "1100")
    wide = f"\n      scopes: [{SCOPE}/sell.account.readonly, {SCOPE}/sell.marketing]"
    async with running(config_text(url, us_extra=wide)) as engine:
        rejected = (await probe(engine, PRIVILEGE)).outcome  # sell.marketing was never consented
    assert (rejected.reason, rejected.code, rejected.http_status) == (Reason.PERMISSION, "invalid_scope", 400)


# --- the simulator itself, over raw HTTP, on an injected clock -------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def client(aiohttp_client: ClientFactory, clock: FakeClock) -> Client:
    return await simulator_client(aiohttp_client, clock)


def basic(client_id: str = EBAY_APP.client_id, secret: str = EBAY_APP.client_secret) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def grant(client: Client, form: dict[str, str], headers: dict[str, str] | None = None) -> tuple[int, Any]:
    response = await client.post(TOKEN_PATH, data=form, headers=basic() if headers is None else headers)
    return response.status, await response.json()


async def user_token(client: Client, user: Any = US, **extra: str) -> str:
    status, body = await grant(client, {"grant_type": "refresh_token", "refresh_token": user.refresh_token, **extra})
    assert status == 200, body
    return str(body["access_token"])


async def app_token(client: Client) -> str:
    status, body = await grant(client, {"grant_type": "client_credentials", "scope": SCOPE})
    assert status == 200, body
    return str(body["access_token"])


async def call(client: Client, path: str, token: str | None, scheme: str = "Bearer",
               **headers: str) -> tuple[int, Any]:
    sent = dict(headers)
    if token is not None:
        sent["Authorization"] = f"{scheme} {token}"
    response = await client.get(f"/ebay{path}", headers=sent)
    return response.status, (await response.json() if response.status != 204 else None)


def error_id(body: Any) -> int:
    return int(body["errors"][0]["errorId"])


async def test_token_responses_follow_the_fact_sheet(client: Client) -> None:
    status, body = await grant(client, {"grant_type": "refresh_token", "refresh_token": US.refresh_token})
    assert status == 200
    # refresh grants carry no refresh token and no refresh expiry [B6][OBS B8]
    assert set(body) == {"access_token", "expires_in", "token_type"}
    assert (body["expires_in"], body["token_type"]) == (7200, "User Access Token")
    status, body = await grant(client, {"grant_type": "client_credentials", "scope": SCOPE})
    assert (status, body["token_type"], body["expires_in"]) == (200, "Application Access Token", 7200)


@pytest.mark.parametrize(("form", "headers", "status", "error"), [
    ({"grant_type": "refresh_token", "refresh_token": US.refresh_token}, basic(secret="wrong"), 401, "invalid_client"),
    ({"grant_type": "refresh_token", "refresh_token": US.refresh_token}, {}, 401, "invalid_client"),
    ({"grant_type": "refresh_token", "refresh_token": US.refresh_token}, {"Authorization": "Basic !!"}, 401,
     "invalid_client"),
    ({"grant_type": "refresh_token", "refresh_token": "v^1.1#revoked"}, None, 400, "invalid_grant"),
    ({"grant_type": "refresh_token"}, None, 400, "invalid_request"),
    ({"grant_type": "refresh_token", "refresh_token": US.refresh_token, "scope": f"{SCOPE}/sell.marketing"},
     None, 400, "invalid_scope"),
    ({"grant_type": "client_credentials"}, None, 400, "invalid_request"),
    ({"grant_type": "client_credentials", "scope": f"{SCOPE}/sell.account"}, None, 400, "invalid_scope"),
    ({"grant_type": "authorization_code", "code": "x"}, None, 400, "unsupported_grant_type"),
    ({}, None, 400, "unsupported_grant_type"),
])
async def test_token_endpoint_rejections(client: Client, form: dict[str, str], headers: dict[str, str] | None,
                                         status: int, error: str) -> None:
    got, body = await grant(client, form, headers)
    assert (got, body["error"]) == (status, error)
    assert isinstance(body["error_description"], str)


async def test_invalid_grant_wording_is_ebays(client: Client) -> None:
    _, body = await grant(client, {"grant_type": "refresh_token", "refresh_token": "v^1.1#gone"})
    assert body["error_description"] == ("the provided authorization grant code is invalid or was issued to "
                                         "another client")  # [B9]


async def test_a_json_token_request_is_rejected(client: Client) -> None:
    response = await client.post(TOKEN_PATH, json={"grant_type": "client_credentials", "scope": SCOPE},
                                 headers=basic())
    assert response.status == 400 and (await response.json())["error"] == "invalid_request"


async def test_api_authentication_checks(client: Client, clock: FakeClock) -> None:
    token = await user_token(client)
    status, body = await call(client, "/sell/account/v1/privilege", None)
    assert (status, error_id(body)) == (400, 1002)
    status, body = await call(client, "/sell/account/v1/privilege", token, scheme="Basic")
    assert (status, error_id(body)) == (400, 1003)
    status, body = await call(client, "/sell/account/v1/privilege", "v^1.1#forged")
    assert (status, error_id(body), body["errors"][0]["message"]) == (401, 1001, "Invalid access token")
    assert (await call(client, "/sell/account/v1/privilege", token))[0] == 200
    clock.now += 7200  # the token's 2 h are over [B6]
    status, body = await call(client, "/sell/account/v1/privilege", token)
    assert (status, error_id(body)) == (401, 1001)


async def test_token_kinds_and_scopes_are_enforced(client: Client) -> None:
    user, app = await user_token(client), await app_token(client)
    status, body = await call(client, "/sell/account/v1/privilege", app)
    assert (status, error_id(body), body["errors"][0]["longMessage"]) == (
        403, 1100, "Insufficient permissions to fulfill the request.")
    assert body["errors"][0]["domain"] == "ACCESS"  # live bodies say ACCESS [OBS B15]
    assert (await call(client, "/developer/analytics/v1_beta/rate_limit/", user))[0] == 403
    assert (await call(client, "/developer/analytics/v1_beta/user_rate_limit/", app))[0] == 403
    narrow = await user_token(client, scope=SCOPE)
    status, body = await call(client, "/sell/account/v1/privilege", narrow)
    assert (status, error_id(body)) == (403, 1100)


@pytest.mark.parametrize(("marketplace", "status"), [
    ("EBAY_US", 200), ("EBAY_DE", 200), ("EBAY_MOTORS_US", 200), ("EBAY_BE", 200), ("EBAY_XX", 400),
    ("ebay_us", 400), ("", 400),
])
async def test_marketplace_header_is_validated(client: Client, marketplace: str, status: int) -> None:
    token = await user_token(client)
    got, body = await call(client, "/sell/account/v1/privilege", token, **{"X-EBAY-C-MARKETPLACE-ID": marketplace})
    assert got == status
    if status == 400:
        assert error_id(body) == 2004
        assert body["errors"][0]["parameters"] == [{"name": "X-EBAY-C-MARKETPLACE-ID", "value": marketplace}]


async def test_every_response_carries_a_request_id(client: Client) -> None:
    response = await client.get("/ebay/sell/account/v1/privilege")
    assert response.headers["X-EBAY-C-REQUEST-ID"].startswith("ri=")


async def test_daily_quota_counts_refuses_and_resets_at_midnight_pst(client: Client, clock: FakeClock) -> None:
    token, app = await user_token(client), await app_token(client)
    platform = client.app[PLATFORMS]["ebay"]
    assert isinstance(platform, EbaySim)
    platform.quota.spend("privilege", 24_999, clock.now)
    assert (await call(client, "/sell/account/v1/privilege", token))[0] == 200
    status, body = await call(client, "/sell/account/v1/privilege", token)
    assert (status, error_id(body), body["errors"][0]["message"]) == (429, 2001, "Too many requests")
    status, body = await call(client, "/developer/analytics/v1_beta/rate_limit/?api_context=sell", app)
    assert status == 200
    (entry,) = body["rateLimits"]
    assert (entry["apiContext"], entry["apiName"], entry["apiVersion"]) == ("sell", "account", "v1")
    (resource,) = entry["resources"]
    assert resource["name"] == "sell.account"
    assert resource["rates"] == [{"count": 25_000, "limit": 25_000, "remaining": 0,
                                  "reset": "2025-06-16T08:00:00.000Z", "timeWindow": 86400}]
    clock.now = 1_750_060_799.0  # 2025-06-15 23:59:59 PST: still the same eBay day [B19]
    assert (await call(client, "/sell/account/v1/privilege", await user_token(client)))[0] == 429
    clock.now = 1_750_060_800.0  # 2025-06-16 00:00:00 PST (08:00 UTC): a new day
    token = await user_token(client)  # the old one expired meanwhile
    assert (await call(client, "/sell/account/v1/privilege", token))[0] == 200


@pytest.mark.parametrize(("query", "names"), [
    ("", ["account", "analytics"]), ("?api_context=developer", ["analytics"]), ("?api_name=Account", ["account"]),
    ("?api_context=sell&api_name=analytics", []), ("?api_context=buy", []),
])
async def test_rate_limit_filters_and_no_content(client: Client, query: str, names: list[str]) -> None:
    status, body = await call(client, f"/developer/analytics/v1_beta/rate_limit/{query}", await app_token(client))
    if names:
        assert status == 200 and [entry["apiName"] for entry in body["rateLimits"]] == names
    else:
        assert (status, body) == (204, None)  # nothing to report [B13]


async def test_client_credentials_grants_are_capped_per_day(client: Client, clock: FakeClock) -> None:
    platform = client.app[PLATFORMS]["ebay"]
    assert isinstance(platform, EbaySim)
    platform.quota.spend("grant:client_credentials", 1_000, clock.now)  # 1 000 a day per app [B10]
    status, body = await grant(client, {"grant_type": "client_credentials", "scope": SCOPE})
    assert (status, error_id(body)) == (429, 2001)
    assert (await grant(client, {"grant_type": "refresh_token", "refresh_token": DE.refresh_token}))[0] == 200
