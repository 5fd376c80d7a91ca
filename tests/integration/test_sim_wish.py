"""Wish end to end. The simulator over raw HTTP: each request defect → the answer the sources give
(docs/marketplaces/wish.md; the simulator's own choices marked), the rate-limit headers on every
answer to a known merchant, a refresh that revokes the merchant's current access token. Then the
REAL adapter driven by the REAL engine: every fault classified, and proof from ``/__sim/requests``
that the exporter never calls the refresh endpoint."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sim_harness import (
    T0,
    TRANSPORT_FAULTS,
    Client,
    ClientFactory,
    FakeClock,
    FaultCase,
    clock_fixture,  # noqa: F401  (the `clock` fixture)
    fault_ids,
    fault_round_trip,
    probe,
    probes_until,
    raw_fixture,  # noqa: F401  (the `raw` fixture)
    running,
    sim_json,
    sim_url_fixture,  # noqa: F401  (the `sim` fixture)
)

from marketplace_exporter.catalogue import Reason
from marketplace_exporter.simulator import create_simulator_app, wish
from marketplace_exporter.simulator.app import ERP, PLATFORMS
from marketplace_exporter.simulator.wish import ACCESS_TOKEN_TTL_S, SIM_APP, WINDOW_CALLS, WishSim

US, CN, CLOSED = SIM_APP.merchant("us-main"), SIM_APP.merchant("cn-main"), SIM_APP.merchant("closed")
TEST, DETAILS = "/wish/api/v3/oauth/test", "/wish/api/v3/merchant/account_details"



async def call(raw: Client, path: str = TEST, token: str | None = US.access_token,
               headers: dict[str, str] | None = None, **query: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    response = await raw.get(path, headers=sent, params=query)
    return response.status, dict(response.headers), await response.json()


async def test_oauth_test_answers_the_merchant_with_headroom_and_a_request_id(raw: Client) -> None:
    status, headers, body = await call(raw)
    assert status == 200 and body == {"message": "", "code": 0, "data": {"merchant_id": US.merchant_id}}
    assert headers["Wish-Rate-Limit-Remaining"] == str(WINDOW_CALLS - 1)
    assert len(headers["Wish-Request-Id"]) == 32 and "Wish-Rate-Limit-Reset" not in headers
    status, headers, body = await call(raw, DETAILS)
    assert status == 200 and body["data"]["status"] == "ACTIVE"
    assert headers["Wish-Rate-Limit-Remaining"] == str(WINDOW_CALLS - 2)  # one window per merchant


# (defect, path, token, extra headers, query) → (status, code, message start, rate headers?)
DEFECTS: list[tuple[str, str, str | None, dict[str, str], dict[str, str], int, int, str, bool]] = [
    ("no Authorization header", TEST, None, {}, {}, 401, 1012, "Missing access token", False),  # [OBS I6]
    ("Basic instead of Bearer", TEST, None, {"Authorization": "Basic dXM6cHc="}, {}, 401, 1012, "Missing", False),
    # v2 sent the token as a query parameter [I3]; v3 wants the header [I1]
    ("v2-style access_token in the query", TEST, None, {}, {"access_token": US.access_token}, 401, 1012,
     "Missing", False),
    ("unknown token", TEST, "sim-wish-unknown", {}, {}, 400, 1006, "No access token found", False),  # [I1]
    ("account disabled", TEST, CLOSED.access_token, {}, {}, 400, 1002, "Cannot access API", True),  # [I1]
    # a missing scope answers 1006's second text (the pairing is the simulator's choice)
    ("account_details without merchant:read", DETAILS, CN.access_token, {}, {}, 400, 1006,
     "Unauthorized access on this API", True),
]


@pytest.mark.parametrize(("defect", "path", "token", "headers", "query", "status", "code", "message", "rate"),
                         DEFECTS, ids=[d[0] for d in DEFECTS])
async def test_request_defects(raw: Client, defect: str, path: str, token: str | None, headers: dict[str, str],
                               query: dict[str, str], status: int, code: int, message: str, rate: bool) -> None:
    got_status, got_headers, body = await call(raw, path, token, headers, **query)
    assert (got_status, body["code"], body["data"]) == (status, code, {})
    assert body["message"].startswith(message)
    assert ("Wish-Rate-Limit-Remaining" in got_headers) is rate


async def test_a_token_expires_30_days_after_issue(raw: Client, clock: FakeClock) -> None:
    assert raw.app is not None
    sim = raw.app[PLATFORMS]["wish"]
    assert isinstance(sim, WishSim)
    expiry = sim.expiry_of("us-main")
    assert expiry == T0 + ACCESS_TOKEN_TTL_S - 4 * 86400  # the identity token was issued 4 days before start
    clock.now = expiry - 1
    assert (await call(raw))[2]["code"] == 0
    clock.now = expiry
    status, headers, body = await call(raw)
    assert (status, body["code"]) == (400, 1007) and body["message"].startswith("This access token has expired")
    assert "Wish-Rate-Limit-Remaining" in headers


async def test_the_window_runs_out_with_429_and_a_reset_time(raw: Client, clock: FakeClock,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wish, "WINDOW_CALLS", 3)
    for left in (2, 1, 0):
        assert (await call(raw))[1]["Wish-Rate-Limit-Remaining"] == str(left)
    status, headers, body = await call(raw)
    assert status == 429 and body["code"] == 429  # the body code is UNCONFIRMED: the status stands in
    assert headers["Wish-Rate-Limit-Remaining"] == "0"
    assert headers["Wish-Rate-Limit-Reset"] == str(int(T0) + wish.WINDOW_S)  # Unix seconds (choice)
    assert (await call(raw, token=CN.access_token))[0] == 200  # per merchant
    clock.now = T0 + wish.WINDOW_S
    assert (await call(raw))[0] == 200  # a new window


async def test_refresh_revokes_the_access_token_production_holds(raw: Client) -> None:
    async def refresh(token: str, **override: str) -> dict[str, Any]:
        query = {"client_id": SIM_APP.client_id, "client_secret": SIM_APP.client_secret,
                 "refresh_token": token, "grant_type": "refresh_token", **override}
        response = await raw.get("/wish/api/v3/oauth/refresh_token", params=query)
        result: dict[str, Any] = await response.json()
        return result

    assert (await refresh(US.refresh_token, grant_type="authorization_code"))["code"] == 1001
    assert (await refresh(US.refresh_token, client_secret="wrong"))["code"] == 10001
    fresh = await refresh(US.refresh_token)
    assert fresh["code"] == 0 and set(fresh["data"]) == {"access_token", "refresh_token", "expiry_time",
                                                         "merchant_id", "scopes"}
    assert fresh["data"]["expiry_time"].endswith("+00:00")  # absolute date-time [I1][OBS I7]
    status, _, body = await call(raw)  # the token production held: revoked by the refresh [I1]
    assert (status, body["code"]) == (400, 1008)
    assert (await call(raw, token=fresh["data"]["access_token"]))[2]["code"] == 0
    assert (await refresh(US.refresh_token))["code"] == 1001  # the used refresh token is gone (choice)


# --- the REAL adapter driven by the REAL engine against the simulator (port 0) ------------------

US_TEST = "wish/us-main/oauth_test"


def config_text(sim: str, interval: str = "1h", timeout: str = "500ms") -> str:
    accounts = "".join(f"""
  - marketplace: wish
    alias: {merchant.alias}
    site: GLOBAL
    base_url: {sim}/wish
    credentials:
      access_token: {{value: {merchant.access_token}}}
    checks:
      - operation: oauth_test
      - operation: account_details
""" for merchant in (US, CN))
    return f"defaults:\n  interval: {interval}\n  timeout: {timeout}\n  jitter: 0\naccounts:{accounts}"


ENGINE_FAULTS: list[FaultCase] = [
    # (fault, value, reason, raw code, exported code label)
    ("token_expired", None, Reason.AUTH, "1007", "1007"),
    ("permission_denied", None, Reason.PERMISSION, "1006", "1006"),
    ("throttle", None, Reason.THROTTLED, "429", "other"),  # the 429 body code is UNCONFIRMED
    ("server_error", None, Reason.SERVER_ERROR, "500", "other"),
    ("http_status", 404, Reason.CLIENT_ERROR, "404", "other"),
    *TRANSPORT_FAULTS,
]


@pytest.mark.parametrize(("fault", "value", "reason", "code", "label"), ENGINE_FAULTS,
                         ids=fault_ids(ENGINE_FAULTS))
async def test_every_fault_through_the_real_engine(sim: str, fault: str, value: int | None, reason: Reason,
                                                   code: str | None, label: str | None) -> None:
    body = {"marketplace": "wish", "account": "us-main", "check": "oauth_test", "fault": fault}
    async with running(config_text(sim), "wish.yml") as engine:
        assert (await probe(engine, US_TEST)).outcome.rate_limit is not None  # requests left, observed
        await fault_round_trip(engine, sim, US_TEST, body if value is None else {**body, "value": value},
                               (reason, code, label), unaffected=("wish/cn-main/oauth_test",))


async def test_scope_and_account_state_through_the_engine(sim: str) -> None:
    async with running(config_text(sim), "wish.yml") as engine:
        details = (await probe(engine, "wish/us-main/account_details")).outcome
        no_scope = (await probe(engine, "wish/cn-main/account_details")).outcome
    assert details.success and details.values == (("account_active", 1.0),)
    assert (no_scope.reason, no_scope.code) == (Reason.PERMISSION, "1006")  # no merchant:read


async def test_the_exporter_never_calls_the_refresh_endpoint(sim: str) -> None:
    await sim_json("DELETE", f"{sim}/__sim/requests")
    # an expired token is exactly when a careless monitor would refresh: tempt it
    await sim_json("POST", f"{sim}/__sim/faults", json={"marketplace": "wish", "account": "us-main",
                                                        "fault": "token_expired", "count": 3})
    async with running(config_text(sim, interval="200ms", timeout="200ms"), "wish.yml") as engine:
        await probes_until(engine, US_TEST, 5, Reason.AUTH)
    counts = await sim_json("GET", f"{sim}/__sim/requests")
    assert counts["routes"].get("wish:oauth_test", 0) >= 5
    assert "wish:token_refresh" not in counts["routes"]


async def test_the_demo_erp_holds_wish_tokens_and_its_refresh_revokes_the_one_in_use(
        aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    """What the demo shows on the token-file path: the ERP (not the exporter) refreshes, Wish revokes
    the token in use [I1], and the file the exporter reads already holds the new one."""
    clock = FakeClock(T0)
    app = create_simulator_app(clock=clock, tokens_dir=tmp_path / "tokens")
    erp, raw = app[ERP], await aiohttp_client(app)
    path = erp.token_file("wish", "us-main")
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["access_token"] == US.access_token  # Wish tells the expiry: no refresh needed at start
    expires = T0 + ACCESS_TOKEN_TTL_S - 4 * 86400  # issued 4 days before the simulator started
    assert datetime.fromisoformat(document["expires_at"].replace("Z", "+00:00")).timestamp() == expires
    clock.now = expires - 1800  # within the ERP's hour before expiry
    assert erp.tick() >= 1
    fresh = json.loads(path.read_text(encoding="utf-8"))["access_token"]
    assert fresh != US.access_token
    assert (await call(raw))[2]["code"] == 1008  # the token production held is revoked
    assert (await call(raw, token=fresh))[2]["code"] == 0
