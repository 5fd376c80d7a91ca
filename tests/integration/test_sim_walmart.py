"""Walmart simulator: its own checks over raw HTTP, then round-trips through the REAL adapter and
the REAL engine (config loaded by ``load_config``, ``Engine.probe_now``) for every fault kind.

Facts are from the sources in docs/marketplaces/sources.md. Bucket sizes are the simulator's own choice
(Walmart's per-API figures are UNCONFIRMED).
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from sim_harness import Client, ClientFactory, LateStart, SimStack, sim_stack, simulator_client

from marketplace_exporter.catalogue import Credential, RateLimitSource, Reason, Step
from marketplace_exporter.simulator.walmart import BUCKETS, WALMART_ACCOUNTS, WalmartAccount
from marketplace_exporter.store import ProbeRecord

US, MX, PARTNER = WALMART_ACCOUNTS


class Clock:
    """Real time, unless frozen (buckets stop refilling) or shifted (tokens age)."""

    def __init__(self) -> None:
        self.frozen: float | None = None
        self.offset = 0.0

    def __call__(self) -> float:
        return self.frozen if self.frozen is not None else time.time() + self.offset


def basic(account: WalmartAccount, secret: str | None = None) -> str:
    raw = f"{account.client_id}:{secret or account.client_secret}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def token_headers(account: WalmartAccount = US, /, **overrides: str) -> dict[str, str]:
    headers = {"Authorization": basic(account), "WM_SVC.NAME": "Walmart Marketplace",
               "WM_QOS.CORRELATION_ID": "b3261d2d-028a-4ef7-8602-633c23200af6", "WM_MARKET": account.market,
               "Accept": "application/json"}
    headers.update(overrides)
    return {key: value for key, value in headers.items() if value != "<omit>"}


def call_headers(token: str, account: WalmartAccount = US, /, **overrides: str) -> dict[str, str]:
    """What every V3 call carries: the token, WM_MARKET [F17][F21], and Mexico's channel type [F17]."""
    headers = {"WM_SEC.ACCESS_TOKEN": token, "WM_SVC.NAME": "Walmart Marketplace",
               "WM_QOS.CORRELATION_ID": "c5e3b2a1-0000-4000-8000-000000000001", "Accept": "application/json",
               "WM_MARKET": account.market}
    if account.channel_type is not None:
        headers["WM_CONSUMER.CHANNEL.TYPE"] = account.channel_type
    headers.update(overrides)
    return {key: value for key, value in headers.items() if value != "<omit>"}


# --- the simulator over raw HTTP ------------------------------------------------------------------

@pytest.fixture
def clock() -> Clock:
    clock = Clock()
    clock.frozen = 1_750_000_000.0
    return clock


@pytest.fixture
async def sim(aiohttp_client: ClientFactory, clock: Clock) -> Client:
    return await simulator_client(aiohttp_client, clock)


async def mint(sim: Client, account: WalmartAccount = US) -> str:
    form = {"grant_type": "client_credentials"}
    headers = token_headers(account)
    if account.refresh_token is not None:
        form = {"grant_type": "refresh_token", "refresh_token": account.refresh_token}
        headers["WM_PARTNER.ID"] = account.partner_id
    response = await sim.post("/walmart/v3/token", data=form, headers=headers)
    body = await response.json()
    assert response.status == 200, body
    assert set(body) == {"access_token", "token_type", "expires_in"}  # never a refresh token [F1]
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 900)
    return str(body["access_token"])


def first_error(body: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = body["error"][0]  # the live gateway envelope [OBS F20]
    assert {"code", "description", "info", "severity", "category", "causes", "errorIdentifiers"} <= set(item)
    return item


@pytest.mark.parametrize("account", WALMART_ACCOUNTS, ids=lambda a: a.alias)
async def test_each_identity_mints_a_token_and_reads_both_apis(sim: Client, account: WalmartAccount) -> None:
    token = await mint(sim, account)
    detail = await sim.get("/walmart/v3/token/detail", headers=call_headers(token, account))
    body = await detail.json()
    assert detail.status == 200
    assert body["is_valid"] is True and body["is_channel_match"] is True
    assert int(body["expire_at"]) - int(body["issued_at"]) == 900_000  # epoch ms strings [F1]
    assert body["scopes"] == dict(account.scopes)
    profile = await sim.get("/walmart/v3/settings/partnerprofile", headers=call_headers(token, account))
    if account.market != "us":  # the Settings API is US only [F22]
        assert (profile.status, first_error(await profile.json())["code"]) == (404, "URI_NOT_FOUND")
        return
    body = await profile.json()
    assert body["partner"]["partnerId"] == account.partner_id
    assert body["configurations"] == [{"configurationName": "ACCOUNT", "configuration": {"status": account.status}}]


@pytest.mark.parametrize(("headers", "form", "status", "code", "field"), [
    (token_headers(**{"WM_SVC.NAME": "<omit>"}), None, 400, "MISSING_REQUEST_HEADER", "WM_SVC.NAME"),
    (token_headers(**{"WM_QOS.CORRELATION_ID": " "}), None, 400, "MISSING_REQUEST_HEADER", "WM_QOS.CORRELATION_ID"),
    (token_headers(WM_MARKET="br"), None, 400, "INVALID_REQUEST_HEADER", "WM_MARKET"),
    (token_headers(Authorization="<omit>"), None, 401, "UNAUTHORIZED.GMP_GATEWAY_API", "UNAUTHORIZED"),
    (token_headers(Authorization="Basic !!!"), None, 401, "UNAUTHORIZED.GMP_GATEWAY_API", "UNAUTHORIZED"),
    (token_headers(Authorization=basic(US, "wrong")), None, 401, "UNAUTHORIZED.GMP_GATEWAY_API", "UNAUTHORIZED"),
    # the US key used for the MX market: "wrong environment keys" [F5]
    (token_headers(WM_MARKET="mx"), None, 401, "UNAUTHORIZED.GMP_GATEWAY_API", "UNAUTHORIZED"),
    # Canada does not take client id/secret at all (Consumer ID + signature [F18]; live 401 [OBS F20])
    (token_headers(WM_MARKET="ca"), None, 401, "UNAUTHORIZED.GMP_GATEWAY_API", "UNAUTHORIZED"),
    (token_headers(), {"grant_type": "password"}, 400, "INVALID_REQUEST_PARAM", "grant_type"),
    # a solution provider's key needs a seller: client_credentials alone is refused
    (token_headers(PARTNER), {"grant_type": "client_credentials"}, 401, "UNAUTHORIZED.GMP_GATEWAY_API",
     "UNAUTHORIZED"),
    (token_headers(PARTNER), {"grant_type": "refresh_token", "refresh_token": PARTNER.refresh_token}, 400,
     "MISSING_REQUEST_HEADER", "WM_PARTNER.ID"),
    (token_headers(PARTNER, **{"WM_PARTNER.ID": PARTNER.partner_id}), {"grant_type": "refresh_token"}, 400,
     "MISSING_REQUEST_PARAM", "refresh_token"),
    (token_headers(PARTNER, **{"WM_PARTNER.ID": PARTNER.partner_id}),
     {"grant_type": "refresh_token", "refresh_token": "revoked"}, 401, "UNAUTHORIZED.GMP_GATEWAY_API", "UNAUTHORIZED"),
    (token_headers(PARTNER, **{"WM_PARTNER.ID": "99999999"}),
     {"grant_type": "refresh_token", "refresh_token": PARTNER.refresh_token}, 401, "UNAUTHORIZED.GMP_GATEWAY_API",
     "UNAUTHORIZED"),
])
async def test_token_endpoint_rejections(sim: Client, headers: dict[str, str], form: dict[str, str] | None,
                                         status: int, code: str, field: str) -> None:
    response = await sim.post("/walmart/v3/token", data=form or {"grant_type": "client_credentials"}, headers=headers)
    item = first_error(await response.json())
    assert (response.status, item["code"], item["field"]) == (status, code, field)


async def test_token_endpoint_wants_a_form_body(sim: Client) -> None:
    response = await sim.post("/walmart/v3/token", json={"grant_type": "client_credentials"}, headers=token_headers())
    assert response.status == 415 and first_error(await response.json())["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_a_bearer_token_instead_of_wm_sec_access_token_is_401(sim: Client) -> None:
    token = await mint(sim)
    headers = call_headers(token, **{"WM_SEC.ACCESS_TOKEN": "<omit>"}) | {"Authorization": f"Bearer {token}"}
    response = await sim.get("/walmart/v3/token/detail", headers=headers)
    item = first_error(await response.json())
    assert (response.status, item["code"]) == (401, "UNAUTHORIZED.GMP_GATEWAY_API")  # [OBS F7]
    assert item["info"] == "Unauthorized token or incorrect authorization header"
    assert "x-current-token-count" not in response.headers


@pytest.mark.parametrize(("overrides", "status", "code"), [
    ({"WM_SEC.ACCESS_TOKEN": "eyJunknown"}, 401, "UNAUTHORIZED.GMP_GATEWAY_API"),
    ({"WM_SVC.NAME": "<omit>"}, 400, "MISSING_REQUEST_HEADER"),
    ({"WM_QOS.CORRELATION_ID": "<omit>"}, 400, "MISSING_REQUEST_HEADER"),
])
async def test_call_rejections(sim: Client, overrides: dict[str, str], status: int, code: str) -> None:
    response = await sim.get("/walmart/v3/settings/partnerprofile", headers=call_headers(await mint(sim), **overrides))
    assert (response.status, first_error(await response.json())["code"]) == (status, code)


#: request defect → the simulator's answer, for a Mexican seller's API call (sources in the comments)
MX_CALL_DEFECTS: list[tuple[str, str, dict[str, str], int, str]] = [
    # without WM_MARKET the call is answered in the us market [F17]: an MX seller's token is not valid there
    ("no WM_MARKET", "/v3/token/detail", {"WM_MARKET": "<omit>"}, 401, "UNAUTHORIZED.GMP_GATEWAY_API"),
    ("WM_MARKET us", "/v3/token/detail", {"WM_MARKET": "us"}, 401, "UNAUTHORIZED.GMP_GATEWAY_API"),
    ("WM_MARKET br", "/v3/token/detail", {"WM_MARKET": "br"}, 400, "INVALID_REQUEST_HEADER"),
    # WM_CONSUMER.CHANNEL.TYPE: "Yes for V3" in Mexico [F17]
    ("no channel type", "/v3/token/detail", {"WM_CONSUMER.CHANNEL.TYPE": "<omit>"}, 400, "MISSING_REQUEST_HEADER"),
    # the Settings API is US only [F22] (the MX answer is UNCONFIRMED: "probably 404")
    ("partner profile", "/v3/settings/partnerprofile", {}, 404, "URI_NOT_FOUND"),
]


@pytest.mark.parametrize(("defect", "path", "overrides", "status", "code"), MX_CALL_DEFECTS,
                         ids=[row[0] for row in MX_CALL_DEFECTS])
async def test_mexican_call_defects(sim: Client, defect: str, path: str, overrides: dict[str, str], status: int,
                                    code: str) -> None:
    token = await mint(sim, MX)
    assert (await sim.get("/walmart/v3/token/detail", headers=call_headers(token, MX))).status == 200
    response = await sim.get("/walmart" + path, headers=call_headers(token, MX, **overrides))
    assert (response.status, first_error(await response.json())["code"]) == (status, code)


async def test_tokens_expire_after_15_minutes(sim: Client, clock: Clock) -> None:
    token = await mint(sim)
    assert clock.frozen is not None
    clock.frozen += 899
    assert (await sim.get("/walmart/v3/token/detail", headers=call_headers(token))).status == 200
    clock.frozen += 1
    response = await sim.get("/walmart/v3/token/detail", headers=call_headers(token))
    assert response.status == 401


async def test_per_api_bucket_headers_throttling_and_refill(sim: Client, clock: Clock) -> None:
    token = await mint(sim)
    size, rate = BUCKETS["partner_profile"]
    assert clock.frozen is not None
    for left in range(int(size) - 1, -1, -1):
        response = await sim.get("/walmart/v3/settings/partnerprofile", headers=call_headers(token))
        assert response.status == 200 and response.headers["x-current-token-count"] == str(left)
        assert int(response.headers["x-next-replenish-time"]) == int((clock.frozen + 1 / rate) * 1000)
    throttled = await sim.get("/walmart/v3/settings/partnerprofile", headers=call_headers(token))
    assert throttled.status == 429
    assert first_error(await throttled.json())["code"] == "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"
    assert throttled.headers["x-current-token-count"] == "0"
    # another API has its own bucket, and so has another account
    assert (await sim.get("/walmart/v3/token/detail", headers=call_headers(token))).status == 200
    other = await sim.get("/walmart/v3/settings/partnerprofile",
                          headers=call_headers(await mint(sim, PARTNER), PARTNER))
    assert other.status == 200
    clock.frozen += 1 / rate
    refilled = await sim.get("/walmart/v3/settings/partnerprofile", headers=call_headers(token))
    assert refilled.status == 200 and refilled.headers["x-current-token-count"] == "0"


@pytest.mark.parametrize(("fault", "status", "code"), [
    ({"fault": "token_expired"}, 401, "UNAUTHORIZED.GMP_GATEWAY_API"),
    ({"fault": "permission_denied"}, 403, "FORBIDDEN.GMP_GATEWAY_API"),
    ({"fault": "throttle"}, 429, "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"),
    ({"fault": "server_error"}, 500, "SYSTEM_ERROR"),
    ({"fault": "server_error", "value": 504}, 504, "DOWNSTREAM_SYSTEM_TIME_OUT"),
    ({"fault": "http_status", "value": 404}, 404, "URI_NOT_FOUND"),
    ({"fault": "http_status", "value": 418}, 418, "INVALID_REQUEST"),
    ({"fault": "throttle", "value": 400}, 400, "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"),
    ({"fault": "server_error", "value": 503}, 503, None),  # gateway unreachable: status only [F13]
])
@pytest.mark.parametrize("check", ["token", "token_detail"])
async def test_fault_bodies(sim: Client, fault: dict[str, Any], status: int, code: str | None, check: str) -> None:
    token = await mint(sim)
    added = await sim.post("/__sim/faults", json={"marketplace": "walmart", "account": "us-main", "check": check,
                                                  **fault})
    assert added.status == 201, await added.text()
    if check == "token":
        response = await sim.post("/walmart/v3/token", data={"grant_type": "client_credentials"},
                                  headers=token_headers())
    else:
        response = await sim.get("/walmart/v3/token/detail", headers=call_headers(token))
    assert response.status == status
    if code is None:
        assert await response.read() == b""
    else:
        assert first_error(await response.json())["code"] == code
    throttled_call = fault["fault"] == "throttle" and check != "token"
    assert ("x-current-token-count" in response.headers) == throttled_call


# --- the real adapter and engine against the simulator -------------------------------------------

CONFIG = """
defaults:
  interval: 1h
  timeout: 500ms
accounts:
  - marketplace: walmart
    alias: us-main
    site: US
    base_url: {sim}/walmart
    credentials:
      client_id: sim-wm-us-client-0001
      client_secret: {{value: sim-wm-us-secret-0001}}
    checks:
      - operation: token_detail
      - operation: partner_profile
  - marketplace: walmart
    alias: mx-main
    site: MX
    base_url: {sim}/walmart
    auth_url: {sim}/walmart
    credentials:
      client_id: sim-wm-mx-client-0001
      client_secret: {{value: sim-wm-mx-secret-0001}}
      channel_type: sim-wm-mx-channel-0001
    checks:
      - operation: token_detail
  - marketplace: walmart
    alias: us-partner
    site: US
    base_url: {sim}/walmart
    credentials:
      client_id: sim-wm-sp-client-0001
      client_secret: {{value: sim-wm-sp-secret-0001}}
      partner_id: 10003003
      refresh_token: {{value: sim-wm-refresh-us-partner}}
      refresh_token_expires_at: 2026-12-01
    checks:
      - operation: partner_profile
"""


@dataclass
class Rig(SimStack):
    """The shared stack (probes on their own session, first runs late) and the simulator's clock;
    faults are Walmart's unless the body says otherwise."""

    clock: Clock = field(default_factory=Clock)

    async def fault(self, **body: Any) -> None:
        await super().fault(**{"marketplace": "walmart", **body})

    async def clear_faults(self) -> None:
        await self.clear()

    async def counts(self) -> dict[str, int]:
        return cast(dict[str, int], (await self.requests())["accounts"])


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = Clock()
    async with sim_stack(lambda sim_url: CONFIG.format(sim=sim_url), "walmart-test.yml", clock=clock,
                         rng=LateStart(), own_probe_session=True) as stack:
        yield Rig(stack.sim_url, stack.session, stack.engine, clock=clock)


US_DETAIL, US_PROFILE = "walmart/us-main/token_detail", "walmart/us-main/partner_profile"
MX_DETAIL, PARTNER_PROFILE = "walmart/mx-main/token_detail", "walmart/us-partner/partner_profile"


async def test_every_account_succeeds_and_one_token_serves_both_checks(rig: Rig) -> None:
    for _ in range(3):
        for check in (US_DETAIL, US_PROFILE, MX_DETAIL, PARTNER_PROFILE):
            record = await rig.probe(check)
            assert record.outcome.success, (check, record.outcome)
    counts = await rig.counts()
    assert counts["walmart:us-main:token"] == 1  # cached, shared by both checks of the account
    assert counts["walmart:us-main:token_detail"] == 3 and counts["walmart:us-main:partner_profile"] == 3
    assert counts["walmart:mx-main:token"] == 1 and counts["walmart:us-partner:token"] == 1


async def test_headroom_and_expiry_are_observed(rig: Rig) -> None:
    first, second = await rig.probe(US_DETAIL), await rig.probe(US_DETAIL)
    assert first.steps == (Step.TOKEN, Step.CALL) and second.steps == (Step.CALL,)
    size, rate = BUCKETS["token_detail"]
    for record, left in ((first, size - 1), (second, size - 2)):
        observed = record.outcome.rate_limit
        assert observed is not None and observed.source is RateLimitSource.OBSERVED
        assert observed.remaining_ratio is None and observed.remaining is not None
        assert left <= observed.remaining <= left + 1  # real time refills between the two
        # the next whole token, as the simulator saw the time during the call
        assert observed.reset_at is not None
        assert record.started_at <= observed.reset_at <= record.finished_at + 1 / rate
    expiry = {o.credential: o.expires_at for o in second.outcome.credentials}
    assert 830 < expiry[Credential.ACCESS_TOKEN] - time.time() <= 900  # /v3/token/detail expire_at [F1]
    assert dict(second.outcome.values)["token_scopes_with_access"] == len(US.scopes)


async def test_solution_provider_flow_reports_account_status_and_refresh_expiry(rig: Rig) -> None:
    record = await rig.probe(PARTNER_PROFILE)
    assert record.outcome.success and record.outcome.message == "account status ONBOARDING_ACTIVE"
    assert record.outcome.values == (("account_status_active", 0.0),)
    kinds = {o.credential for o in record.outcome.credentials}
    assert kinds == {Credential.ACCESS_TOKEN, Credential.REFRESH_TOKEN}


async def test_a_token_the_simulator_expired_is_reminted_on_the_next_probe(rig: Rig) -> None:
    assert (await rig.probe(US_DETAIL)).outcome.success
    rig.clock.offset = 901.0  # Walmart's clock says the token is dead; the exporter's cache does not
    dead = await rig.probe(US_DETAIL)
    assert (dead.outcome.reason, dead.outcome.code) == (Reason.AUTH, "UNAUTHORIZED.GMP_GATEWAY_API")
    again = await rig.probe(US_DETAIL)
    assert again.outcome.success and again.steps == (Step.TOKEN, Step.CALL)


async def test_an_empty_bucket_throttles_with_the_real_signals(rig: Rig) -> None:
    rig.clock.frozen = time.time()  # no refill while the bucket is drained, however slow the machine
    size, rate = BUCKETS["partner_profile"]
    for _ in range(int(size)):
        assert (await rig.probe(US_PROFILE)).outcome.success
    record = await rig.probe(US_PROFILE)
    outcome = record.outcome
    assert (outcome.reason, outcome.code, outcome.http_status) == (
        Reason.THROTTLED, "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API", 429)
    assert outcome.rate_limit is not None and outcome.rate_limit.remaining == 0.0
    assert outcome.retry_after_seconds is not None and outcome.retry_after_seconds <= 1 / rate
    assert (await rig.probe(US_DETAIL)).outcome.success  # the other API's bucket is untouched
    rig.clock.frozen += 1 / rate
    assert (await rig.probe(US_PROFILE)).outcome.success


US_FAULTS: list[tuple[dict[str, Any], Reason, str | None]] = [
    # (fault, expected reason, expected code label)
    ({"fault": "token_expired"}, Reason.AUTH, "UNAUTHORIZED.GMP_GATEWAY_API"),
    ({"fault": "permission_denied"}, Reason.PERMISSION, "FORBIDDEN.GMP_GATEWAY_API"),
    ({"fault": "throttle"}, Reason.THROTTLED, "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"),
    ({"fault": "server_error"}, Reason.SERVER_ERROR, "SYSTEM_ERROR"),
    ({"fault": "server_error", "value": 503}, Reason.SERVER_ERROR, None),
    ({"fault": "http_status", "value": 404}, Reason.CLIENT_ERROR, "URI_NOT_FOUND"),
    ({"fault": "http_status", "value": 504}, Reason.SERVER_ERROR, "DOWNSTREAM_SYSTEM_TIME_OUT"),
    ({"fault": "http_status", "value": 418}, Reason.CLIENT_ERROR, "INVALID_REQUEST"),
    ({"fault": "malformed_body"}, Reason.INVALID_RESPONSE, None),
    ({"fault": "huge_body", "value": 3}, Reason.INVALID_RESPONSE, None),
    ({"fault": "hang"}, Reason.TIMEOUT, None),
    ({"fault": "latency", "value": 1}, Reason.TIMEOUT, None),
    ({"fault": "reset"}, Reason.CONNECT, None),
    # on the token endpoint (the cache is emptied first by an expired-token answer)
    ({"fault": "token_expired", "check": "token"}, Reason.AUTH, "UNAUTHORIZED.GMP_GATEWAY_API"),
    ({"fault": "permission_denied", "check": "token"}, Reason.PERMISSION, "FORBIDDEN.GMP_GATEWAY_API"),
    ({"fault": "throttle", "check": "token"}, Reason.THROTTLED, "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"),
    ({"fault": "server_error", "check": "token"}, Reason.SERVER_ERROR, "SYSTEM_ERROR"),
    ({"fault": "malformed_body", "check": "token"}, Reason.INVALID_RESPONSE, None),
    ({"fault": "reset", "check": "token"}, Reason.CONNECT, None),
]


@pytest.mark.parametrize(("fault", "reason", "code"), US_FAULTS,
                         ids=[f"{f.get('check', 'call')}-{f['fault']}{f.get('value', '')}" for f, _, _ in US_FAULTS])
async def test_each_fault_through_the_real_adapter_and_engine(rig: Rig, fault: dict[str, Any], reason: Reason,
                                                              code: str | None) -> None:
    assert (await rig.probe(US_DETAIL)).outcome.success  # warm: a cached token
    on_token = fault.get("check") == "token"
    if on_token:  # the API rejects the cached token once, so the next probe must mint
        await rig.fault(account="us-main", check="token_detail", fault="token_expired", count=1)
        assert (await rig.probe(US_DETAIL)).outcome.reason is Reason.AUTH
    await rig.fault(account="us-main", check=fault.get("check", "token_detail"),
                    **{k: v for k, v in fault.items() if k != "check"})
    record = await rig.probe(US_DETAIL)
    assert (record.outcome.reason, record.code_label) == (reason, code), record.outcome
    assert record.steps == ((Step.TOKEN,) if on_token else (Step.CALL,))
    assert (await rig.probe(MX_DETAIL)).outcome.success  # another account is untouched
    await rig.clear_faults()
    assert (await rig.probe(US_DETAIL)).outcome.success


async def test_latency_within_the_timeout_still_succeeds(rig: Rig) -> None:
    await rig.fault(account="mx-main", fault="latency", value=0.1)
    record = await rig.probe(MX_DETAIL)
    assert record.outcome.success and record.duration >= 0.1


async def test_the_debug_trace_redacts_every_walmart_secret(rig: Rig) -> None:
    record = await rig.engine.probe_now(PARTNER_PROFILE, debug=True)
    assert isinstance(record, ProbeRecord)
    trace = "\n".join(record.debug)
    assert "wm_sec.access_token: <redacted>" in trace and "authorization: <redacted>" in trace
    assert "refresh_token=<redacted>" in trace
    assert PARTNER.refresh_token is not None
    for secret in (PARTNER.client_secret, PARTNER.refresh_token, basic(PARTNER).removeprefix("Basic ")):
        assert secret not in trace
    assert "eyJsim." not in trace  # the minted token, in the response body and the call header
