"""``/probe`` cannot be used to spend a seller's quota or to fake the check's own results.

The simulator and the exporter run in-process with the demo config, every interval stretched to an
hour and no jitter: each check runs its first background probe within a second and then not again
during the test, so the simulator's request counter (``/__sim/requests``) shows exactly what
``/probe`` sent upstream. Regression for issue 14 (on the old endpoint 1,000 calls made 1,002
Shopee calls, 300 made 300 eBay Analytics calls, and flooded probes were recorded as the check's
own timeouts): every assertion on upstream counts and on the check's series fails there.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from stacklib import Stack, value

from marketplace_exporter.cli import DEMO_SIMULATOR, demo_config_path
from marketplace_exporter.server import ConfigSource, create_app
from marketplace_exporter.simulator import create_simulator_app

SHOPEE = "shopee/sg-main/get_shop_info"
SHOPEE_OTHER = "shopee/my-main/get_shop_info"
#: eBay Developer Analytics: 5,000 calls a day and no burst documented, so no modelled bucket
EBAY_ANALYTICS = "ebay/us-main/rate_limit"


def _hourly(text: str, sim_url: str) -> str:
    return (text.replace(DEMO_SIMULATOR, sim_url).replace("interval: 5s", "interval: 1h")
            .replace("jitter: 0.1", "jitter: 0").replace("timeout: 3s", "timeout: 1s"))


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    simulator = TestServer(create_simulator_app(), host="127.0.0.1")
    await simulator.start_server()
    sim_url = f"http://127.0.0.1:{simulator.port}"
    source = ConfigSource(demo_config_path(), transform=lambda text: _hourly(text, sim_url))
    exporter = TestServer(create_app(source, source.load()), host="127.0.0.1")
    await exporter.start_server()
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector) as session:
        stack = Stack(f"http://127.0.0.1:{exporter.port}", sim_url, session)
        # every check's first background probe (within a second), then none for the test's duration
        await stack.wait_for(lambda s: all(count >= 1 for (name, _), count in s.items()
                                           if name == "marketplace_probes_total"))
        yield stack
    await exporter.close()
    await simulator.close()


def _labels(check_id: str) -> dict[str, str]:
    marketplace, account, check = check_id.split("/")
    return {"marketplace": marketplace, "account": account, "check": check}


async def _upstream_calls(stack: Stack) -> dict[str, int]:
    async with stack.session.get(f"{stack.simulator}/__sim/requests") as response:
        counts: dict[str, int] = (await response.json())["routes"]
    return counts


def _route(check_id: str) -> str:
    """The simulator's per-route count (per account only where it can tell the account: eBay's
    Analytics call carries an application token)."""
    marketplace, _, check = check_id.split("/")
    return f"{marketplace}:{check}"


async def _flood(stack: Stack, check_id: str, calls: int, **params: str) -> list[tuple[int, str, str]]:
    async def one() -> tuple[int, str, str]:
        async with stack.session.get(f"{stack.exporter}/probe", params={"check": check_id, **params}) as response:
            return response.status, response.headers.get("X-Probe-Result", ""), await response.text()
    return list(await asyncio.gather(*(one() for _ in range(calls))))


async def test_a_flood_of_probe_requests_makes_at_most_one_upstream_call_per_check(stack: Stack) -> None:
    before, metrics_before = await _upstream_calls(stack), await stack.samples()
    plain = await _flood(stack, SHOPEE, 1000)
    # answered from the background result (younger than the interval): nothing sent at all
    assert {status for status, _, _ in plain} == {200} and {source for _, source, _ in plain} == {"cached"}
    assert all('marketplace_probe_success{account="sg-main"' in text for _, _, text in plain)
    traced = await _flood(stack, SHOPEE, 300, debug="true") + await _flood(stack, EBAY_ANALYTICS, 300, debug="true")
    assert {status for status, _, _ in traced} == {200}
    assert sorted(source for _, source, _ in traced).count("fresh") == 2  # one per check, shared or cached after
    after = await _upstream_calls(stack)
    sent = {route: after.get(route, 0) - before.get(route, 0) for route in map(_route, (SHOPEE, EBAY_ANALYTICS))}
    assert sent == {_route(SHOPEE): 1, _route(EBAY_ANALYTICS): 1}
    # and none of it became the checks' own results
    samples = await stack.samples()
    for check in (SHOPEE, EBAY_ANALYTICS):
        assert (value(samples, "marketplace_probes_total", **_labels(check))
                == value(metrics_before, "marketplace_probes_total", **_labels(check)) == 1.0)


async def test_failing_on_demand_probes_are_returned_but_never_recorded_as_the_checks_results(stack: Stack) -> None:
    await stack.fault(marketplace="shopee", account="my-main", fault="hang")
    try:
        traced = await _flood(stack, SHOPEE_OTHER, 200, debug="true")
    finally:
        async with stack.session.delete(f"{stack.simulator}/__sim/faults"):
            pass
    assert {status for status, _, _ in traced} == {200}
    assert all("reason=timeout" in text for _, _, text in traced)
    samples = await stack.samples()
    labels = _labels(SHOPEE_OTHER)
    assert value(samples, "marketplace_probe_failures_total", **labels, reason="timeout") is None
    assert value(samples, "marketplace_probe_success", **labels) == 1.0
    assert value(samples, "marketplace_probes_total", **labels) == 1.0
    # once the on-demand probe is spent, a trace request is the cached trace, said to be one
    async with stack.session.get(f"{stack.exporter}/probe", params={"check": SHOPEE_OTHER, "debug": "1"}) as response:
        first_line = (await response.text()).splitlines()[0]
        assert response.headers["X-Probe-Result"] == "cached" and "Age" in response.headers
    assert first_line.startswith("# cached: this trace is")
    assert "one on-demand probe per check per interval" in first_line


async def test_unknown_checks_and_urls_are_refused_without_a_request(stack: Stack) -> None:
    before = await _upstream_calls(stack)
    for check in ("http://evil.example/", "http://127.0.0.1:9/", "shopee/sg-main/nope", ""):
        async with stack.session.get(f"{stack.exporter}/probe", params={"check": check}) as response:
            assert response.status == (400 if check == "" else 404)
            assert SHOPEE in await response.text()  # the configured checks are listed instead
    assert await _upstream_calls(stack) == before

