"""Mercado Libre end to end: the REAL adapter driven by the REAL engine against the simulator on
127.0.0.1 (port 0), every fault kind classified, and proof from ``/__sim/requests`` that the
exporter never calls the rotating ``/oauth/token`` endpoint. Then the simulator's own behaviour over
raw HTTP: Bearer validation, the per-user rate limit, and refresh-token rotation."""

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

from marketplace_exporter.catalogue import Reason
from marketplace_exporter.engine import Engine
from marketplace_exporter.simulator.mercadolibre import BURST, RATE_PER_SECOND, SIM_APP

MLA, MLB = SIM_APP.user("mla-main"), SIM_APP.user("mlb-main")
T0 = 1_750_000_000.0
MLA_CHECK = "mercadolibre/mla-main/users_me"


def account(sim: str, user: Any) -> str:
    return f"""
  - marketplace: mercadolibre
    alias: {user.alias}
    site: {user.site_id}
    base_url: {sim}/mercadolibre
    auth_url: {sim}/mercadolibre
    credentials:
      access_token: {{value: {user.access_token}}}
    checks:
      - operation: users_me
"""


def config_text(sim: str, interval: str = "1h", timeout: str = "500ms") -> str:
    return (f"defaults:\n  interval: {interval}\n  timeout: {timeout}\n  jitter: 0\naccounts:"
            + account(sim, MLA) + account(sim, MLB))


def running(text: str) -> AbstractAsyncContextManager[Engine]:
    return run_engine(text, "meli.yml")


FAULTS = [
    # (fault, value, reason, code: known codes export as themselves, others as "other")
    ("token_expired", None, Reason.AUTH, "unauthorized", "unauthorized"),
    ("permission_denied", None, Reason.PERMISSION, "forbidden", "forbidden"),
    ("throttle", None, Reason.THROTTLED, "local_rate_limited", "local_rate_limited"),
    ("server_error", None, Reason.SERVER_ERROR, "internal_error", "other"),
    ("server_error", 503, Reason.SERVER_ERROR, "service_unavailable", "other"),
    ("http_status", 404, Reason.CLIENT_ERROR, "not_found", "other"),
    ("http_status", 401, Reason.AUTH, "unauthorized", "unauthorized"),
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
        assert (await probe(engine, MLA_CHECK)).outcome.success
        body: dict[str, Any] = {"marketplace": "mercadolibre", "account": "mla-main", "check": "users_me",
                                "fault": fault}
        if value is not None:
            body["value"] = value
        await sim_json("POST", f"{sim}/__sim/faults", json=body)
        record = await probe(engine, MLA_CHECK)
        outcome = record.outcome
        assert (outcome.success, outcome.reason, outcome.code, record.code_label) == (False, reason, code, label)
        # the fault is scoped to one account
        assert (await probe(engine, "mercadolibre/mlb-main/users_me")).outcome.success
        await sim_json("DELETE", f"{sim}/__sim/faults")
        assert (await probe(engine, MLA_CHECK)).outcome.success


async def test_success_names_no_mismatch_when_the_site_is_right(sim: str) -> None:
    async with running(config_text(sim)) as engine:
        outcome = (await probe(engine, "mercadolibre/mlb-main/users_me")).outcome
    assert (outcome.success, outcome.http_status, outcome.message) == (True, 200, "token accepted")


async def test_the_exporter_never_calls_the_token_endpoint(sim: str) -> None:
    await sim_json("DELETE", f"{sim}/__sim/requests")
    # a 401 is exactly when a careless monitor would refresh: tempt it
    await sim_json("POST", f"{sim}/__sim/faults", json={"marketplace": "mercadolibre", "account": "mla-main",
                                                        "fault": "token_expired", "count": 3})
    async with running(config_text(sim, interval="200ms", timeout="200ms")) as engine:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            state = engine.store.status(MLA_CHECK)
            if state is not None and state.probes >= 6 and state.failures[Reason.AUTH] >= 1:
                break
            await asyncio.sleep(0.05)
    counts = await sim_json("GET", f"{sim}/__sim/requests")
    assert counts["routes"].get("mercadolibre:users_me", 0) >= 6
    assert "mercadolibre:token" not in counts["routes"]
    assert not any(key.endswith(":token") for key in counts["accounts"])


# --- the simulator's own behaviour, over raw HTTP -----------------------------------------------



@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def raw(aiohttp_client: ClientFactory, clock: FakeClock) -> Client:
    return await simulator_client(aiohttp_client, clock)


async def users_me(raw: Client, authorization: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = await raw.get("/mercadolibre/users/me", headers=headers)
    return response.status, await response.json()


async def test_users_me_shape(raw: Client) -> None:
    status, body = await users_me(raw, f"Bearer {MLB.access_token}")
    assert status == 200 and (body["id"], body["site_id"], body["nickname"]) == (
        MLB.user_id, "MLB", MLB.nickname)


@pytest.mark.parametrize(("authorization", "message"), [
    (None, "authorization value not present"), ("Bearer ", "authorization value not present"),
    (f"Basic {MLA.access_token}", "authorization value not present"),
    ("Bearer APP_USR-unknown", "invalid access token"),
])
async def test_bearer_validation(raw: Client, authorization: str | None, message: str) -> None:
    status, body = await users_me(raw, authorization)
    assert (status, body) == (401, {"message": message, "error": "unauthorized", "status": 401, "cause": []})


async def test_rate_limit_per_user_then_refill(raw: Client, clock: FakeClock) -> None:
    statuses = [(await users_me(raw, f"Bearer {MLA.access_token}"))[0] for _ in range(int(BURST) + 1)]
    assert statuses == [200] * int(BURST) + [429]
    _, body = await users_me(raw, f"Bearer {MLA.access_token}")
    assert body == {"message": "local_rate_limited", "error": "local_rate_limited", "status": 429, "cause": []}
    assert (await users_me(raw, f"Bearer {MLB.access_token}"))[0] == 200  # another user's bucket
    clock.now += 1 / RATE_PER_SECOND
    assert (await users_me(raw, f"Bearer {MLA.access_token}"))[0] == 200


def grant(token: str, **overrides: str) -> dict[str, str]:
    form = {"grant_type": "refresh_token", "client_id": SIM_APP.client_id,
            "client_secret": SIM_APP.client_secret, "refresh_token": token} | overrides
    return {key: value for key, value in form.items() if value != "<omit>"}


async def test_refresh_rotates_and_new_tokens_last_6_hours(raw: Client, clock: FakeClock) -> None:
    response = await raw.post("/mercadolibre/oauth/token", data=grant(MLA.refresh_token))
    body = await response.json()
    assert response.status == 200
    assert (body["token_type"], body["expires_in"], body["user_id"]) == ("Bearer", 21600, MLA.user_id)
    assert body["access_token"].startswith("APP_USR-") and body["refresh_token"].startswith("TG-")
    assert body["refresh_token"] != MLA.refresh_token
    # rotation [OBS H3]: the used refresh token now fails with invalid_grant
    again = await raw.post("/mercadolibre/oauth/token", data=grant(MLA.refresh_token))
    assert again.status == 400 and (await again.json())["error"] == "invalid_grant"
    # the new one works (once), also when sent in the query as some clients do
    rotated = await raw.post("/mercadolibre/oauth/token", params=grant(body["refresh_token"]))
    assert rotated.status == 200
    assert (await users_me(raw, f"Bearer {body['access_token']}"))[0] == 200
    clock.now += 21600
    assert (await users_me(raw, f"Bearer {body['access_token']}"))[0] == 401
    counts = await (await raw.get("/__sim/requests")).json()
    assert counts["routes"]["mercadolibre:token"] == 3  # counted: its absence above means something


@pytest.mark.parametrize(("overrides", "error"), [
    ({"refresh_token": "TG-unknown"}, "invalid_grant"), ({"client_secret": "wrong"}, "invalid_client"),
    ({"client_id": "1"}, "invalid_client"), ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
    ({"refresh_token": "<omit>"}, "invalid_request"), ({"grant_type": "<omit>"}, "invalid_request"),
])
async def test_token_rejections(raw: Client, overrides: dict[str, str], error: str) -> None:
    response = await raw.post("/mercadolibre/oauth/token", data=grant(MLB.refresh_token, **overrides))
    body = await response.json()
    assert (response.status, body["error"], body["status"], body["cause"]) == (400, error, 400, [])
    assert isinstance(body["error_description"], str)


@pytest.mark.parametrize(("fault", "value", "status", "error"), [
    ("token_expired", None, 401, "unauthorized"), ("permission_denied", None, 403, "forbidden"),
    ("throttle", None, 429, "local_rate_limited"), ("server_error", None, 500, "internal_error"),
    ("http_status", 400, 400, "bad_request"), ("throttle", 503, 503, "local_rate_limited"),
])
async def test_error_faults_answer_meli_envelopes(raw: Client, fault: str, value: int | None, status: int,
                                                  error: str) -> None:
    body: dict[str, Any] = {"marketplace": "mercadolibre", "account": "mlb-main", "fault": fault}
    if value is not None:
        body["value"] = value
    assert (await raw.post("/__sim/faults", json=body)).status == 201
    got_status, answer = await users_me(raw, f"Bearer {MLB.access_token}")
    assert (got_status, answer["error"], answer["status"], answer["cause"]) == (status, error, status, [])


async def test_token_endpoint_faults_match_by_refresh_token(raw: Client) -> None:
    fault = {"marketplace": "mercadolibre", "account": "mla-main", "check": "token", "fault": "token_expired"}
    assert (await raw.post("/__sim/faults", json=fault)).status == 201
    response = await raw.post("/mercadolibre/oauth/token", data=grant(MLA.refresh_token))
    assert response.status == 400 and (await response.json())["error"] == "invalid_grant"
    other = await raw.post("/mercadolibre/oauth/token", data=grant(MLB.refresh_token))
    assert other.status == 200
