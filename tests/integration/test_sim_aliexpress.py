"""AliExpress end to end: the REAL adapter and engine against the simulator on 127.0.0.1 (port 0).

Part 1 drives ``Engine.probe_now`` through every fault kind (reason, code, isolation) and checks the
exporter never calls the path-style refresh API (rotation UNCONFIRMED → never refresh). Part 2
checks the simulator verifies like the IOP gateway: ``/sync`` signed without a prefix with
``method`` signed, ``/rest/auth/token/refresh`` signed with its path, the token in ``session`` or
``access_token``, the timestamp window, expiry and rotation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from sim_harness import Client, ClientFactory, FakeClock, sim_stack, simulator_client
from sim_harness import SimStack as Stack

from marketplace_exporter.adapters.aliexpress import AliExpressParams, build_request, read
from marketplace_exporter.adapters.iop_signing import sign
from marketplace_exporter.catalogue import Reason
from marketplace_exporter.model import HttpResponse, ProbeOutcome
from marketplace_exporter.simulator.aliexpress import PROFILE_METHOD, SIM_APP

MAIN, SECOND = SIM_APP.seller("global-main"), SIM_APP.seller("global-second")
MAIN_CHECK, SECOND_CHECK = "aliexpress/global-main/merchant_profile", "aliexpress/global-second/merchant_profile"
T0 = 1_760_000_000.0


def config_text(sim_url: str) -> str:
    accounts = ""
    for seller, extra in ((MAIN, ""), (SECOND, "\n        params: {token_param: access_token}")):
        accounts += f"""
  - marketplace: aliexpress
    alias: {seller.alias}
    site: GLOBAL
    base_url: {sim_url}/aliexpress
    auth_url: {sim_url}/aliexpress/rest
    credentials:
      app_key: "{SIM_APP.app_key}"
      app_secret: {{value: {SIM_APP.app_secret}}}
      access_token: {{value: {seller.access_token}}}
    checks:
      - operation: merchant_profile{extra}
"""
    return "defaults: {interval: 1h, timeout: 500ms, jitter: 0}\naccounts:" + accounts


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with sim_stack(config_text, tmp_path / "aliexpress.yml", debug=True) as stack:
        yield stack


# --- part 1: every fault, through the real adapter and engine -----------------------------------

FAULTS: list[tuple[dict[str, object], Reason, str | None, str | None, float | None]] = [
    # (fault, reason, raw code, exported code label, retry_after)
    ({"fault": "token_expired"}, Reason.AUTH, "IllegalAccessToken", "IllegalAccessToken", None),
    ({"fault": "permission_denied"}, Reason.PERMISSION, "InsufficientPermission", "other", None),
    ({"fault": "throttle"}, Reason.THROTTLED, "ApiCallLimit", "ApiCallLimit", 10.0),
    ({"fault": "throttle", "value": 429}, Reason.THROTTLED, "ApiCallLimit", "ApiCallLimit", 10.0),
    ({"fault": "server_error"}, Reason.SERVER_ERROR, "InternalError", "other", None),
    ({"fault": "http_status", "value": 403}, Reason.PERMISSION, None, None, None),
    ({"fault": "http_status", "value": 502}, Reason.SERVER_ERROR, None, None, None),
    ({"fault": "malformed_body"}, Reason.INVALID_RESPONSE, None, None, None),
    ({"fault": "huge_body", "value": 3}, Reason.INVALID_RESPONSE, None, None, None),
    ({"fault": "hang"}, Reason.TIMEOUT, None, None, None),
    ({"fault": "latency", "value": 2}, Reason.TIMEOUT, None, None, None),
    ({"fault": "reset"}, Reason.CONNECT, None, None, None),
]


@pytest.mark.parametrize(("fault", "reason", "code", "label", "retry"), FAULTS,
                         ids=[f"{f['fault']}{f.get('value', '')}" for f, *_ in FAULTS])
async def test_each_fault_is_classified_and_isolated(
        stack: Stack, fault: dict[str, object], reason: Reason, code: str | None, label: str | None,
        retry: float | None) -> None:
    assert (await stack.probe(MAIN_CHECK)).outcome.success
    await stack.fault(marketplace="aliexpress", account="global-main", **fault)
    record = await stack.probe(MAIN_CHECK)
    outcome = record.outcome
    assert (outcome.success, outcome.reason, outcome.code, record.code_label) == (False, reason, code, label)
    assert outcome.retry_after_seconds == retry
    other = await stack.probe(SECOND_CHECK)  # a fault on one seller never affects another
    assert other.outcome.success, other.outcome
    await stack.clear()
    assert (await stack.probe(MAIN_CHECK)).outcome.success


async def test_small_latency_still_succeeds(stack: Stack) -> None:
    await stack.fault(marketplace="aliexpress", account="global-main", fault="latency", value=0.05)
    record = await stack.probe(MAIN_CHECK)
    assert record.outcome.success and record.duration >= 0.05


async def test_success_values_and_both_token_parameter_names(stack: Stack) -> None:
    main, second = (await stack.probe(MAIN_CHECK)).outcome, (await stack.probe(SECOND_CHECK)).outcome
    assert main.values == (("product_posting_forbidden", 0.0),)
    assert second.values == (("product_posting_forbidden", 1.0),)  # sent as access_token=


async def test_the_exporter_never_calls_the_refresh_endpoint(stack: Stack) -> None:
    for _ in range(3):
        assert (await stack.probe(MAIN_CHECK)).outcome.success
        assert (await stack.probe(SECOND_CHECK)).outcome.success
    counts = await stack.requests()
    assert {route for route in counts["routes"] if route.startswith("aliexpress:")} == {"aliexpress:sync"}
    assert counts["accounts"]["aliexpress:global-main:sync"] >= 3
    assert counts["accounts"]["aliexpress:global-second:sync"] >= 3


async def test_debug_trace_redacts_session_signature_and_secret(stack: Stack) -> None:
    trace = "\n".join((await stack.probe(MAIN_CHECK)).debug)
    assert "POST http://127.0.0.1" in trace and "/aliexpress/sync" in trace
    assert "session=<redacted>" in trace and "sign=<redacted>" in trace
    assert MAIN.access_token not in trace and SIM_APP.app_secret not in trace


# --- part 2: the simulator verifies like the IOP gateway (injected clock) -----------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def sim(aiohttp_client: ClientFactory, clock: FakeClock) -> Client:
    return await simulator_client(aiohttp_client, clock)


def sync_fields(seller: Any = MAIN, *, now: float = T0, secret: str = SIM_APP.app_secret,
                params: AliExpressParams | None = None, **overrides: str) -> dict[str, str]:
    """The form the real adapter posts, optionally altered (``<omit>`` drops a field)."""
    request = build_request("http://sim", SIM_APP.app_key, secret, seller.access_token,
                            params or AliExpressParams(), now)
    assert request.body is not None
    fields = dict(parse_qsl(request.body.decode())) | overrides
    return {key: value for key, value in fields.items() if value != "<omit>"}


def resigned(fields: dict[str, str], path: str = "") -> dict[str, str]:
    unsigned = {key: value for key, value in fields.items() if key != "sign"}
    return unsigned | {"sign": sign(SIM_APP.app_secret, unsigned, path)}


async def call_sync(sim: Client, fields: dict[str, str], post: bool = True) -> ProbeOutcome:
    response = await (sim.post("/aliexpress/sync", data=fields) if post
                      else sim.get("/aliexpress/sync", params=fields))
    body = await response.read()
    return read(HttpResponse(response.status, dict(response.headers), body), T0, PROFILE_METHOD)


@pytest.mark.parametrize("post", [True, False])
async def test_sync_accepts_form_and_query(sim: Client, post: bool) -> None:
    assert (await call_sync(sim, sync_fields(), post)).success


async def test_official_vector_shape_is_accepted(sim: Client) -> None:
    # the official vector's parameter set [E8]: access_token=, no format/simplify
    fields = {"access_token": MAIN.access_token, "app_key": SIM_APP.app_key, "method": PROFILE_METHOD,
              "sign_method": "sha256", "timestamp": str(int(T0 * 1000))}
    assert (await call_sync(sim, resigned(fields))).success


@pytest.mark.parametrize(("fields", "code"), [
    (sync_fields(secret="wrong"), "IncompleteSignature"),
    (resigned(sync_fields(), "/sync"), "IncompleteSignature"),  # a business API signs no prefix
    (resigned(sync_fields(method="<omit>")), "MissingParameter"),
    (sync_fields(method="aliexpress.solution.seller.category.tree.query"), "IncompleteSignature"),
    (resigned(sync_fields(method="aliexpress.nothing.here")), "InvalidApiPath"),
    (sync_fields(app_key="1"), "InvalidAppKey"),
    (sync_fields(now=T0 - 601), "InvalidTimestamp"),
    (resigned(sync_fields(session="<omit>")), "IllegalAccessToken"),
    (resigned(sync_fields(session="sim-aliexpress-session-unknown")), "IllegalAccessToken"),
])
async def test_gateway_rejections(sim: Client, fields: dict[str, str], code: str) -> None:
    response = await sim.post("/aliexpress/sync", data=fields)
    body = await response.json()
    assert (response.status, body["code"], body["type"]) == (200, code, "ISV")


async def test_held_token_expires_on_the_simulators_clock(sim: Client, clock: FakeClock) -> None:
    clock.now = T0 + SECOND.token_days_left * 86400 - 1
    assert (await call_sync(sim, sync_fields(SECOND, now=clock.now))).success
    clock.now += 1
    outcome = await call_sync(sim, sync_fields(SECOND, now=clock.now))
    assert (outcome.reason, outcome.code) == (Reason.AUTH, "IllegalAccessToken")


def refresh_fields(refresh_token: str, path: str = "/auth/token/refresh") -> dict[str, str]:
    params = {"app_key": SIM_APP.app_key, "timestamp": str(int(T0 * 1000)), "sign_method": "sha256",
              "refresh_token": refresh_token}
    return params | {"sign": sign(SIM_APP.app_secret, params, path)}


async def test_path_style_refresh_is_signed_with_its_path_and_rotates(sim: Client) -> None:
    url = "/aliexpress/rest/auth/token/refresh"
    unprefixed = await sim.post(url, data=refresh_fields(MAIN.refresh_token, path=""))
    assert (await unprefixed.json())["code"] == "IncompleteSignature"
    response = await sim.post(url, data=refresh_fields(MAIN.refresh_token))
    body = await response.json()
    assert response.status == 200 and body["code"] == "0"
    assert {"access_token", "refresh_token", "expires_in", "refresh_expires_in", "expire_time",
            "refresh_token_valid_time", "user_id", "seller_id", "user_nick", "account",
            "account_platform", "havana_id", "sp", "locale", "request_id"} <= set(body)  # [OBS E5]
    reused = await sim.post(url, data=refresh_fields(MAIN.refresh_token))
    assert (await reused.json())["code"] == "IllegalRefreshToken"
    fields = sync_fields(**{"session": body["access_token"]})
    assert (await call_sync(sim, resigned(fields))).success
