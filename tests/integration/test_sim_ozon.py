"""Ozon end to end. The simulator over raw HTTP: each request defect → the rpcStatus answer the
sources give ([K1]; statuses and numeric codes the simulator's choice where UNCONFIRMED), the key's
``expires_at``, the 50 requests per second per Client-Id. Then the REAL adapter driven by the REAL
engine: every fault classified, the key's expiry and roles, and the 10-minute pause after an auth
failure (Ozon restricts accounts that keep sending erroneous requests)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest
from sim_harness import (
    T0,
    TRANSPORT_FAULTS,
    Client,
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
from marketplace_exporter.simulator.ozon import SIM_SELLERS

RU, CN, LOCKED = SIM_SELLERS
ROLES, INFO = "/ozon/v1/roles", "/ozon/v1/seller/info"
_DAY = 86400



def keys(seller: Any = RU) -> dict[str, str]:
    return {"Client-Id": seller.client_id, "Api-Key": seller.api_key}


async def call(raw: Client, path: str = ROLES, headers: dict[str, str] | None = None,
               body: bytes = b"{}") -> tuple[int, dict[str, Any]]:
    sent = keys() if headers is None else headers
    response = await raw.post(path, data=body, headers={**sent, "Content-Type": "application/json"})
    return response.status, await response.json()


async def test_roles_return_the_key_expiry_and_its_methods(raw: Client) -> None:
    status, body = await call(raw)
    assert status == 200 and set(body) == {"expires_at", "roles"}
    assert body["expires_at"].endswith(".296Z")  # rendered like the spec's example [K1]
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00")).timestamp()
    assert expires == pytest.approx(T0 + 150 * _DAY + 0.296)
    assert body["roles"][0]["name"] == "Admin" and "/v1/roles" in body["roles"][0]["methods"]
    status, info = await call(raw, INFO)
    assert status == 200 and {"company", "ratings", "subscription"} <= set(info)
    assert (await call(raw, body=b""))[0] == 200  # an empty body counts as {} (choice)


# (defect, path, headers, body) → (HTTP status, code, message). Texts [K1]; the missing-header answer
# [SDK K3]; 429/8 [OBS K6]; the rest of the statuses and codes are the simulator's choice
DEFECTS: list[tuple[str, str, dict[str, str] | None, bytes, int, int, str]] = [
    ("no headers", ROLES, {}, b"{}", 401, 16, "Client-Id and Api-Key headers are required"),
    ("Api-Key missing", ROLES, {"Client-Id": RU.client_id}, b"{}", 401, 16, "Client-Id and Api-Key headers"),
    ("Client-Id missing", ROLES, {"Api-Key": RU.api_key}, b"{}", 401, 16, "Client-Id and Api-Key headers"),
    ("Bearer instead of the two headers", ROLES, {"Authorization": f"Bearer {RU.api_key}"}, b"{}", 401, 16,
     "Client-Id and Api-Key headers"),
    ("key of another seller", ROLES, {"Client-Id": RU.client_id, "Api-Key": CN.api_key}, b"{}", 401, 16,
     "Invalid Api-Key, please check the key and try again"),
    ("unknown Client-Id", ROLES, {"Client-Id": "42", "Api-Key": RU.api_key}, b"{}", 401, 16, "Invalid Api-Key"),
    ("key restricted to other networks", ROLES, keys(LOCKED), b"{}", 403, 7,
     "Api-Key is restricted to specific IP addresses"),
    ("role without the method", INFO, keys(CN), b"{}", 403, 7, "Api-Key is missing a required role for a method"),
    ("body not JSON", ROLES, None, b"roles please", 400, 3, "invalid request payload"),
    ("body a JSON array", ROLES, None, b"[]", 400, 3, "invalid request payload"),
]


@pytest.mark.parametrize(("defect", "path", "headers", "body", "status", "code", "message"), DEFECTS,
                         ids=[d[0] for d in DEFECTS])
async def test_request_defects(raw: Client, defect: str, path: str, headers: dict[str, str] | None, body: bytes,
                               status: int, code: int, message: str) -> None:
    got_status, answer = await call(raw, path, headers, body)
    assert (got_status, answer["code"], answer["details"]) == (status, code, [])
    assert answer["message"].startswith(message)


async def test_reads_are_post_only(raw: Client) -> None:
    response = await raw.get(ROLES, headers=keys())
    assert response.status == 405  # every Seller API method is POST [K1]


async def test_an_expired_key_is_deactivated(raw: Client, clock: FakeClock) -> None:
    clock.now = T0 + 11 * _DAY  # cn-main's key expires 11 days after the simulator started (+0.296 s)
    assert (await call(raw, headers=keys(CN)))[0] == 200
    clock.now = T0 + 11 * _DAY + 1
    status, body = await call(raw, headers=keys(CN))
    assert (status, body["code"]) == (401, 16)
    assert body["message"] == "Api-key is deactivated, use another one or generate a new one"


async def test_50_requests_per_second_per_client_id(raw: Client, clock: FakeClock) -> None:
    for _ in range(50):
        assert (await call(raw))[0] == 200
    status, body = await call(raw, INFO)  # across all methods [K1]
    assert (status, body["code"], body["message"]) == (429, 8, "You have reached request rate limit per second")
    assert (await call(raw, headers=keys(CN)))[0] == 200  # another Client-Id has its own
    clock.now = T0 + 0.1
    assert (await call(raw))[0] == 200


# --- the REAL adapter driven by the REAL engine against the simulator (port 0) ------------------

RU_ROLES = "ozon/ru-main/roles"


def config_text(sim: str, interval: str = "1h", timeout: str = "500ms") -> str:
    accounts = "".join(f"""
  - marketplace: ozon
    alias: {seller.alias}
    site: {"RU" if seller.alias == "ru-main" else "GLOBAL"}
    base_url: {sim}/ozon
    credentials:
      client_id: "{seller.client_id}"
      api_key: {{value: {seller.api_key}}}
    checks:
      - operation: roles
      - operation: seller_info
""" for seller in (RU, CN, LOCKED))
    return f"defaults:\n  interval: {interval}\n  timeout: {timeout}\n  jitter: 0\naccounts:{accounts}"


ENGINE_FAULTS: list[FaultCase] = [
    # (fault, value, reason, raw code, exported code label)
    ("token_expired", None, Reason.AUTH, "16", "16"),
    ("permission_denied", None, Reason.PERMISSION, "7", "7"),
    ("throttle", None, Reason.THROTTLED, "8", "8"),
    ("server_error", None, Reason.SERVER_ERROR, "13", "13"),
    ("http_status", 404, Reason.CLIENT_ERROR, "3", "3"),
    *TRANSPORT_FAULTS,
]


@pytest.mark.parametrize(("fault", "value", "reason", "code", "label"), ENGINE_FAULTS,
                         ids=fault_ids(ENGINE_FAULTS))
async def test_every_fault_through_the_real_engine(sim: str, fault: str, value: int | None, reason: Reason,
                                                   code: str | None, label: str | None) -> None:
    body = {"marketplace": "ozon", "account": "ru-main", "check": "roles", "fault": fault}
    async with running(config_text(sim), "ozon.yml") as engine:
        await fault_round_trip(engine, sim, RU_ROLES, body if value is None else {**body, "value": value},
                               (reason, code, label), unaffected=("ozon/ru-main/seller_info",))


async def test_expiry_roles_and_restrictions_through_the_engine(sim: str) -> None:
    async with running(config_text(sim), "ozon.yml") as engine:
        roles = (await probe(engine, RU_ROLES)).outcome
        no_role = (await probe(engine, "ozon/cn-main/seller_info")).outcome
        locked = (await probe(engine, "ozon/ip-locked/roles")).outcome
    assert roles.success and roles.values == (("api_key_methods", 6.0),)
    (expiry,) = roles.credentials
    assert expiry.credential.value == "client_secret" and expiry.expires_at > time.time() + 149 * 86400
    assert (no_role.reason, no_role.code) == (Reason.PERMISSION, "7")
    assert (locked.reason, locked.code) == (Reason.PERMISSION, "7")


async def test_after_an_auth_failure_the_key_is_left_alone_for_10_minutes(sim: str) -> None:
    await sim_json("POST", f"{sim}/__sim/faults", json={"marketplace": "ozon", "account": "ru-main", "check": "roles",
                                                        "fault": "token_expired"})
    async with running(config_text(sim, interval="200ms", timeout="200ms"), "ozon.yml") as engine:
        await probes_until(engine, "ozon/cn-main/roles", 5)  # time enough for ru-main to have retried
        state = engine.store.status(RU_ROLES)
        assert state is not None
        assert (state.probes, state.failures[Reason.AUTH]) == (1, 1)  # one try, then quiet
        assert state.next_run_at is not None and state.next_run_at - time.time() > 590
