"""Shared by the raw simulator HTTP tests (test_simulator_*.py): the simulator behind pytest-aiohttp's
test client as the ``sim`` fixture, and the requests they send it: an LWA form, an SP-API GET, a
signed Shopee query, a fault through ``/__sim/faults``.

A plain module (not a conftest): import ``sim_client_fixture`` (and ``clock_fixture`` from
sim_harness) into a test module to use the ``sim`` (and ``clock``) fixture there."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from sim_harness import T0, Client, ClientFactory, FakeClock, simulator_client

from marketplace_exporter.simulator import SIM_ACCOUNTS
from marketplace_exporter.simulator.shopee import sign

US_MAIN = SIM_ACCOUNTS.amazon("us-main")
EU_MAIN = SIM_ACCOUNTS.amazon("eu-main")
PARTNER = SIM_ACCOUNTS.shopee
SG, MY = SIM_ACCOUNTS.shop("sg-main"), SIM_ACCOUNTS.shop("my-main")
PARTICIPATIONS = "/amazon/{host}/sellers/v1/marketplaceParticipations"
SHOP_INFO = "/api/v2/shop/get_shop_info"
SHOPS = "/api/v2/public/get_shops_by_partner"


@pytest.fixture(name="sim")
async def sim_client_fixture(aiohttp_client: ClientFactory, clock: FakeClock) -> Client:
    """The simulator on the ``clock`` fixture behind a test client."""
    return await simulator_client(aiohttp_client, clock)


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
