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
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import bcrypt
import pytest
from aiohttp.test_utils import TestServer
from stacklib import Stack, value

from marketplace_exporter.cli import DEMO_SIMULATOR, demo_config_path
from marketplace_exporter.server import ConfigSource, create_app
from marketplace_exporter.simulator import create_simulator_app
from marketplace_exporter.webserver.listener import Listener
from marketplace_exporter.webserver.options import WebOptions

SHOPEE = "shopee/sg-main/get_shop_info"
SHOPEE_OTHER = "shopee/my-main/get_shop_info"
#: eBay Developer Analytics: 5,000 calls a day and no burst documented, so no modelled bucket
EBAY_ANALYTICS = "ebay/us-main/rate_limit"


def _hourly(text: str, sim_url: str) -> str:
    return (text.replace(DEMO_SIMULATOR, sim_url).replace("interval: 5s", "interval: 1h")
            .replace("jitter: 0.1", "jitter: 0").replace("timeout: 3s", "timeout: 1s"))


@asynccontextmanager
async def _running(web_config: Path | None = None, headers: dict[str, str] | None = None) -> AsyncIterator[Stack]:
    """Simulator and exporter in-process, the exporter behind ``web_config`` (as
    ``--web.config.file``) when given; the stack's session sends ``headers``."""
    simulator = TestServer(create_simulator_app(), host="127.0.0.1")
    await simulator.start_server()
    sim_url = f"http://127.0.0.1:{simulator.port}"
    source = ConfigSource(demo_config_path(), transform=lambda text: _hourly(text, sim_url))
    app = create_app(source, source.load())
    if web_config is not None:
        app = Listener.prepare(WebOptions(config_file=str(web_config))).wrap(app)
    exporter = TestServer(app, host="127.0.0.1")
    await exporter.start_server()
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        stack = Stack(f"http://127.0.0.1:{exporter.port}", sim_url, session)
        # every check's first background probe (within a second), then none for the test's duration
        await stack.wait_for(lambda s: all(count >= 1 for (name, _), count in s.items()
                                           if name == "marketplace_probes_total"))
        yield stack
    await exporter.close()
    await simulator.close()


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with _running() as running:
        yield running


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



async def test_with_web_config_users_probe_answers_only_a_web_user_and_sends_nothing_for_anyone_else(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 14: ``/probe`` needs authentication whenever the web config has users. Anonymous
    callers, a wrong password and a write API's Bearer token get 401 before the engine is asked:
    nothing goes upstream and not even the configured check ids are listed."""
    token = "deploy-token-probe-Hq27"
    monkeypatch.setenv("MARKETPLACE_EXPORTER_DEPLOY_TOKEN", token)
    web_config = tmp_path / "web.yml"
    hashed = bcrypt.hashpw(b"probe pass", bcrypt.gensalt(4)).decode()  # cost 4: the cheapest bcrypt
    web_config.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    user = {"Authorization": _basic("prometheus:probe pass")}
    async with _running(web_config, headers=user) as stack, aiohttp.ClientSession() as anonymous:
        before = await _upstream_calls(stack)
        refusals: list[dict[str, str]] = [{}, {"Authorization": f"Bearer {token}"},
                                          {"Authorization": _basic("prometheus:wrong")}]
        for headers in refusals:
            for params in ({"check": SHOPEE, "debug": "true"}, {"check": EBAY_ANALYTICS}, {"check": "nope"}, {}):
                async with anonymous.get(f"{stack.exporter}/probe", params=params, headers=headers) as response:
                    text = await response.text()
                    assert (response.status, response.headers.get("WWW-Authenticate")) == (401, "Basic"), params
                    assert SHOPEE not in text and "X-Probe-Result" not in response.headers
        assert await _upstream_calls(stack) == before
        # the web user is served as before: one fresh probe, sent once
        async with stack.session.get(f"{stack.exporter}/probe", params={"check": SHOPEE, "debug": "true"}) as response:
            assert (response.status, response.headers["X-Probe-Result"]) == (200, "fresh")
            assert "/api/v2/shop/get_shop_info" in await response.text()
        after = await _upstream_calls(stack)
        assert after.get(_route(SHOPEE), 0) - before.get(_route(SHOPEE), 0) == 1


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()
