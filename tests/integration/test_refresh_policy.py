"""The refresh policy, proven from the simulator's own request log: the exporter mints tokens only
where refresh does not rotate (Amazon LWA, eBay, Walmart) and never calls the refresh endpoint of
a platform whose refresh tokens rotate or may rotate (Shopee, Lazada, AliExpress, TikTok Shop,
Mercado Libre) or whose refresh revokes the live access token (Wish) — not even after those
platforms reject the token it holds."""

from __future__ import annotations

import asyncio

import pytest
from stacklib import Stack, stack_fixture  # noqa: F401  (stack_fixture: the `stack` fixture)

ROTATING_REFRESH_ROUTES = {
    "shopee": "shopee:token_refresh",
    "lazada": "lazada:token_refresh",
    "aliexpress": "aliexpress:token_refresh",
    "tiktok_shop": "tiktok_shop:token_refresh",
    "mercadolibre": "mercadolibre:token",
    # Wish's refresh also revokes the access token production holds [I1]
    "wish": "wish:token_refresh",
}
MINTING_TOKEN_ROUTES = ("amazon_sp:token", "ebay:token", "walmart:token")


@pytest.mark.parametrize("marketplace", sorted(ROTATING_REFRESH_ROUTES))
async def test_rotating_platforms_are_never_refreshed_even_after_auth_failures(
        stack: Stack, marketplace: str) -> None:
    await stack.fault(marketplace=marketplace, fault="token_expired")
    await stack.wait_for(lambda s: any(
        name == "marketplace_probe_failures_total" and ("marketplace", marketplace) in labels
        and ("reason", "auth") in labels and count >= 2 for (name, labels), count in s.items()))
    await asyncio.sleep(0.5)
    async with stack.session.get(f"{stack.simulator}/__sim/requests") as response:
        routes = (await response.json())["routes"]
    assert routes.get(ROTATING_REFRESH_ROUTES[marketplace], 0) == 0, routes
    assert sum(count for route, count in routes.items() if route.startswith(f"{marketplace}:")) >= 2
    # and the non-rotating platforms did mint their own tokens meanwhile
    for route in MINTING_TOKEN_ROUTES:
        assert routes.get(route, 0) >= 1, (route, routes)


async def test_the_refresh_routes_exist_and_rotate(stack: Stack) -> None:
    """The check above means something only if the simulator really serves those routes."""
    async with stack.session.get(f"{stack.simulator}/") as response:
        index = await response.text()
    for route in ROTATING_REFRESH_ROUTES.values():
        assert f"[{route}]" in index


async def test_shopee_refresh_tokens_are_single_use_in_the_simulator(stack: Stack) -> None:
    import time

    from marketplace_exporter.adapters.shopee import sign
    from marketplace_exporter.simulator import SIM_ACCOUNTS

    partner = SIM_ACCOUNTS.shopee
    shop = partner.shops[0]
    path = "/api/v2/auth/access_token/get"

    async def refresh(token: str) -> dict[str, object]:
        timestamp = int(time.time())
        query = {"partner_id": str(partner.partner_id), "timestamp": str(timestamp),
                 "sign": sign(partner.partner_key, partner.partner_id, path, timestamp)}
        body = {"refresh_token": token, "partner_id": partner.partner_id, "shop_id": shop.shop_id}
        async with stack.session.post(f"{stack.simulator}/shopee{path}", params=query, json=body) as response:
            result: dict[str, object] = await response.json()
            return result

    first = await refresh(f"sim-shopee-refresh-{shop.alias}")
    assert first["error"] == "" and isinstance(first["refresh_token"], str)
    again = await refresh(f"sim-shopee-refresh-{shop.alias}")
    assert again["error"] == "error_auth"  # the used refresh token is dead: rotation
    assert (await refresh(str(first["refresh_token"])))["error"] == ""
