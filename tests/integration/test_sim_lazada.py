"""Lazada end to end: the REAL adapter and engine against the simulator on 127.0.0.1 (port 0).

Part 1 drives ``Engine.probe_now`` through every fault kind and checks reason, code and isolation,
and that the exporter never calls the refresh endpoint (rotation UNCONFIRMED → never refresh).
Part 2 checks the simulator verifies like the gateway: signature over the API path, the 7200 s
timestamp window, tokens per country gateway, expiry, the daily cap, refresh rotation.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from sim_harness import Client, ClientFactory, FakeClock, sim_stack, simulator_client
from sim_harness import SimStack as Stack

from marketplace_exporter.adapters.iop_signing import sign
from marketplace_exporter.adapters.lazada import Lazada, build_request, read
from marketplace_exporter.catalogue import Credential, Reason
from marketplace_exporter.model import HttpResponse, ProbeOutcome
from marketplace_exporter.simulator.app import PLATFORMS
from marketplace_exporter.simulator.lazada import SIM_APP, LazadaSim

TH, VN = SIM_APP.seller("th-main"), SIM_APP.seller("vn-main")
TH_CHECK, VN_CHECK = "lazada/th-main/seller_get", "lazada/vn-main/seller_get"
T0 = 1_760_000_000.0


def config_text(sim_url: str, vn_credentials: str = "") -> str:
    vn_credentials = vn_credentials or f"access_token: {{value: {VN.access_token}}}"
    return textwrap.dedent(f"""\
        defaults: {{interval: 1h, timeout: 500ms, jitter: 0}}
        accounts:
          - marketplace: lazada
            alias: th-main
            site: TH
            base_url: {sim_url}/lazada/th/rest
            auth_url: {sim_url}/lazada/auth/rest
            credentials:
              app_key: "{SIM_APP.app_key}"
              app_secret: {{value: {SIM_APP.app_secret}}}
              access_token: {{value: {TH.access_token}}}
            checks: [{{operation: seller_get}}]
          - marketplace: lazada
            alias: vn-main
            site: VN
            base_url: {sim_url}/lazada/vn/rest
            credentials:
              app_key: "{SIM_APP.app_key}"
              app_secret: {{value: {SIM_APP.app_secret}}}
              {vn_credentials}
            checks: [{{operation: seller_get}}]
        """)


async def start_stack(tmp_path: Path, vn_credentials: str = "") -> AsyncIterator[Stack]:
    async with sim_stack(lambda sim_url: config_text(sim_url, vn_credentials), tmp_path / "lazada.yml",
                         debug=True) as stack:
        yield stack


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async for value in start_stack(tmp_path):
        yield value


# --- part 1: every fault, through the real adapter and engine -----------------------------------

FAULTS: list[tuple[dict[str, object], Reason, str | None, str | None, float | None]] = [
    # (fault, reason, raw code, exported code label, retry_after)
    ({"fault": "token_expired"}, Reason.AUTH, "IllegalAccessToken", "IllegalAccessToken", None),
    # no source names Lazada's permission code: the simulator's choice, read by the name heuristic
    ({"fault": "permission_denied"}, Reason.PERMISSION, "InsufficientPermission", "other", None),
    ({"fault": "throttle"}, Reason.THROTTLED, "ApiCallLimit", "ApiCallLimit", 10.0),
    ({"fault": "throttle", "value": 429}, Reason.THROTTLED, "ApiCallLimit", "ApiCallLimit", 10.0),
    ({"fault": "server_error"}, Reason.SERVER_ERROR, "InternalError", "other", None),
    ({"fault": "server_error", "value": 200}, Reason.SERVER_ERROR, "InternalError", "other", None),
    ({"fault": "http_status", "value": 404}, Reason.CLIENT_ERROR, None, None, None),
    ({"fault": "http_status", "value": 503}, Reason.SERVER_ERROR, None, None, None),
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
    assert (await stack.probe(TH_CHECK)).outcome.success
    await stack.fault(marketplace="lazada", account="th-main", **fault)
    record = await stack.probe(TH_CHECK)
    outcome = record.outcome
    assert (outcome.success, outcome.reason, outcome.code, record.code_label) == (False, reason, code, label)
    assert outcome.retry_after_seconds == retry
    other = await stack.probe(VN_CHECK)  # a fault on one seller never affects another
    assert other.outcome.success, other.outcome
    await stack.clear()
    assert (await stack.probe(TH_CHECK)).outcome.success


async def test_small_latency_still_succeeds(stack: Stack) -> None:
    await stack.fault(marketplace="lazada", account="vn-main", fault="latency", value=0.05)
    record = await stack.probe(VN_CHECK)
    assert record.outcome.success and record.duration >= 0.05


async def test_the_exporter_never_calls_the_refresh_endpoint(stack: Stack) -> None:
    for _ in range(3):
        assert (await stack.probe(TH_CHECK)).outcome.success
        assert (await stack.probe(VN_CHECK)).outcome.success
    counts = await stack.requests()
    lazada_routes = {route for route in counts["routes"] if route.startswith("lazada:")}
    assert lazada_routes == {"lazada:seller_get"}
    assert counts["accounts"]["lazada:th-main:seller_get"] >= 3
    assert counts["accounts"]["lazada:vn-main:seller_get"] >= 3


async def test_debug_trace_redacts_token_signature_and_secret(stack: Stack) -> None:
    trace = "\n".join((await stack.probe(TH_CHECK)).debug)
    assert "/lazada/th/rest/seller/get?" in trace
    assert "access_token=<redacted>" in trace and "sign=<redacted>" in trace
    assert TH.access_token not in trace and SIM_APP.app_secret not in trace


async def test_token_file_expiry_is_exported_and_its_token_used(tmp_path: Path) -> None:
    token_file = tmp_path / "vn-token.json"
    token_file.write_text(json.dumps({"access_token": VN.access_token, "refresh_token": VN.refresh_token,
                                      "expires_at": "2031-01-01T00:00:00Z"}))
    async for stack in start_stack(tmp_path, f"token_file: {token_file}"):
        outcome = (await stack.probe(VN_CHECK)).outcome
        assert outcome.success
        assert [(o.credential, o.expires_at) for o in outcome.credentials] == [
            (Credential.ACCESS_TOKEN, 1924992000.0)]
        assert "lazada:token_refresh" not in (await stack.requests())["routes"]


# --- part 2: the simulator verifies like the gateway (injected clock) ---------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def sim(aiohttp_client: ClientFactory, clock: FakeClock) -> Client:
    return await simulator_client(aiohttp_client, clock)


def seller_query(seller: Any = TH, *, now: float = T0, secret: str = SIM_APP.app_secret,
                 **overrides: str) -> dict[str, str]:
    """What the real adapter sends, optionally altered (``<omit>`` drops a parameter)."""
    request = build_request("http://sim", "/seller/get", SIM_APP.app_key, secret, seller.access_token, now)
    query = dict(request.query) | overrides
    return {key: value for key, value in query.items() if value != "<omit>"}


async def seller_get(sim: Client, country: str, query: dict[str, str], post: bool = False) -> ProbeOutcome:
    path = f"/lazada/{country}/rest/seller/get"
    response = await (sim.post(path, data=query) if post else sim.get(path, params=query))
    answer = HttpResponse(response.status, dict(response.headers), await response.read())
    outcome = read(answer, T0)
    if outcome.reason is Reason.THROTTLED:  # what the probe then asks: when to try again
        outcome = outcome.amended(retry_after_seconds=Lazada().retry_after(answer, outcome, T0))
    return outcome


async def iop_code(response: aiohttp.ClientResponse) -> tuple[int, str, str]:
    body = await response.json()
    return response.status, body["code"], body["type"]


@pytest.mark.parametrize("post", [False, True])  # the SDK posts form bodies by default [D1]
async def test_get_and_post_both_verify(sim: Client, post: bool) -> None:
    assert (await seller_get(sim, "th", seller_query(), post)).success
    assert (await seller_get(sim, "vn", seller_query(VN), post)).success


def resigned(query: dict[str, str], path: str = "/seller/get", secret: str = SIM_APP.app_secret) -> dict[str, str]:
    unsigned = {key: value for key, value in query.items() if key != "sign"}
    return unsigned | {"sign": sign(secret, unsigned, path)}


@pytest.mark.parametrize(("query", "code"), [
    (seller_query(secret="wrong-secret"), "IncompleteSignature"),
    (resigned(seller_query(), "/lazada/th/rest/seller/get"), "IncompleteSignature"),  # mount prefix signed
    (resigned(seller_query(), ""), "IncompleteSignature"),  # path missing from the signature
    (seller_query(sign=seller_query()["sign"].lower()), "IncompleteSignature"),
    (resigned(seller_query(sign_method="md5")), "IncompleteSignature"),
    (seller_query(app_key="999999"), "InvalidAppKey"),
    (seller_query(sign="<omit>"), "MissingParameter"),
    (seller_query(timestamp="<omit>"), "MissingParameter"),
    (seller_query(app_key="<omit>"), "MissingParameter"),
    (seller_query(now=T0 - 7201), "InvalidTimestamp"),
    (seller_query(now=T0 + 7201), "InvalidTimestamp"),
    (resigned(seller_query(timestamp="yesterday")), "InvalidTimestamp"),
    (resigned(seller_query(access_token="<omit>")), "IllegalAccessToken"),
    (resigned(seller_query(access_token="sim-lazada-access-unknown")), "IllegalAccessToken"),
    (seller_query(VN), "IllegalAccessToken"),  # a VN token on the TH gateway
])
async def test_gateway_rejections(sim: Client, query: dict[str, str], code: str) -> None:
    response = await sim.get("/lazada/th/rest/seller/get", params=query)
    status, got, error_type = await iop_code(response)
    assert (status, got, error_type) == (200, code, "ISV")


@pytest.mark.parametrize("skew", [-7200, 7200])
async def test_timestamp_window_edges_and_iso_form(sim: Client, skew: int) -> None:
    assert (await seller_get(sim, "th", seller_query(now=T0 + skew))).success
    iso = resigned(seller_query(timestamp="2025-10-09T08:53:20Z"))  # == T0 [D5]
    assert (await seller_get(sim, "th", iso)).success


async def test_held_token_expires_on_the_simulators_clock(sim: Client, clock: FakeClock) -> None:
    clock.now = T0 + VN.token_days_left * 86400 - 1
    assert (await seller_get(sim, "vn", seller_query(VN, now=clock.now))).success
    clock.now += 1
    outcome = await seller_get(sim, "vn", seller_query(VN, now=clock.now))
    assert (outcome.reason, outcome.code) == (Reason.AUTH, "IllegalAccessToken")


async def test_daily_cap_bans_until_midnight_utc8(sim: Client) -> None:
    platform = cast(LazadaSim, sim.app[PLATFORMS]["lazada"])
    platform.daily_cap = 2
    assert (await seller_get(sim, "th", seller_query())).success
    assert (await seller_get(sim, "vn", seller_query(VN))).success  # the cap is per app
    outcome = await seller_get(sim, "th", seller_query())
    # T0 is 16:53:20 in UTC+8: 7 h 6 min 40 s to the next day
    assert (outcome.reason, outcome.code, outcome.retry_after_seconds) == (
        Reason.THROTTLED, "ApiCallLimit", 25600.0)
    assert "this ban will last 25600 seconds" in outcome.message


def refresh_query(refresh_token: str, *, path: str = "/auth/token/refresh") -> dict[str, str]:
    params = {"app_key": SIM_APP.app_key, "timestamp": str(int(T0 * 1000)), "sign_method": "sha256",
              "refresh_token": refresh_token}
    return params | {"sign": sign(SIM_APP.app_secret, params, path)}


async def test_refresh_rotates_and_is_signed_with_its_path(sim: Client) -> None:
    wrong = await sim.post("/lazada/auth/rest/auth/token/refresh", data=refresh_query(TH.refresh_token, path=""))
    assert (await iop_code(wrong))[1] == "IncompleteSignature"
    response = await sim.post("/lazada/auth/rest/auth/token/refresh", data=refresh_query(TH.refresh_token))
    body = await response.json()
    assert response.status == 200 and body["code"] == "0"
    assert {"access_token", "refresh_token", "expires_in", "refresh_expires_in", "country",
            "account_platform", "account", "country_user_info", "request_id"} <= set(body)  # [D2][D6]
    assert (body["country"], body["account_platform"], body["expires_in"]) == ("th", "seller_center", 2592000)
    assert body["refresh_token"] != TH.refresh_token
    # rotation: the used refresh token is dead
    reused = await sim.get("/lazada/auth/rest/auth/token/refresh", params=refresh_query(TH.refresh_token))
    assert (await iop_code(reused))[1] == "IllegalRefreshToken"
    # the new access token works on the seller's own gateway
    new_query = build_request("http://sim", "/seller/get", SIM_APP.app_key, SIM_APP.app_secret,
                              body["access_token"], T0).query
    assert (await seller_get(sim, "th", dict(new_query))).success


async def test_unknown_country_is_not_a_route(sim: Client) -> None:
    response = await sim.get("/lazada/cb/rest/seller/get", params=seller_query())
    assert response.status == 404
