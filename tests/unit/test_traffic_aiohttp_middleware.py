"""The aiohttp middleware hook over real loopback HTTP: a read body is classified, an unread one is
reported from its status when released (or dropped), transport errors are reported and re-raised,
aiohttp's own retry of a dropped keep-alive connection is not an error, and nothing raises into
the caller."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from marketplace_exporter.traffic.aiohttp_middleware import TrafficClientResponse, traffic_middleware
from marketplace_exporter.traffic.classify import TrafficRecord
from marketplace_exporter.traffic.reporter import Reporter

SHOP_INFO = "/shopee/api/v2/shop/get_shop_info"
ERROR = json.dumps({"request_id": "r", "error": "invalid_acceess_token", "message": "Invalid access_token."})
#: with TrafficClientResponse, and without it (each answer's class is switched instead)
RESPONSE_CLASSES = pytest.mark.parametrize("response_class", [TrafficClientResponse, None],
                                           ids=["response_class", "class-switched"])


async def shopee_error(_: web.Request) -> web.Response:
    return web.Response(text=ERROR, content_type="application/json")  # Shopee fails inside HTTP 200


async def throttled(_: web.Request) -> web.Response:
    return web.Response(status=429, text='{"error": "error_rate_limit"}', headers={"Retry-After": "1"},
                        content_type="application/json")


async def slow(_: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.Response(text="{}")


def records(reporter: Reporter) -> list[tuple[int, str, str, str]]:
    seen: list[TrafficRecord] = list(reporter._queue)
    return [(r.status, r.operation, r.reason, r.code) for r in seen]


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    app = web.Application()
    app.router.add_get(SHOP_INFO, shopee_error)
    app.router.add_get("/shopee/api/v2/product/get_item_list", slow)
    app.router.add_get("/elsewhere", shopee_error)
    app.router.add_get("/shopee/api/v2/order/get_order_list", throttled)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    yield test_server
    await test_server.close()


@pytest.fixture
def reporter() -> Any:
    reporter = Reporter("http://127.0.0.1:9", service="erp", interval=3600)
    yield reporter
    reporter._queue.clear()
    reporter.close(0)


def session_for(reporter: Reporter, base: str, response_class: type[aiohttp.ClientResponse] | None,
                **kwargs: Any) -> aiohttp.ClientSession:
    middleware = traffic_middleware(reporter, account="sg-main", site="SG", base_urls={base: "shopee"})
    if response_class is not None:
        kwargs["response_class"] = response_class
    return aiohttp.ClientSession(middlewares=[middleware], **kwargs)


@RESPONSE_CLASSES
async def test_a_read_body_is_classified_and_reported_once(server: TestServer, reporter: Reporter,
                                                           response_class: type[aiohttp.ClientResponse] | None) -> None:
    async with session_for(reporter, str(server.make_url("/shopee")), response_class) as session:
        for _ in range(2):
            async with session.get(server.make_url(SHOP_INFO)) as response:
                assert (await response.json())["error"] == "invalid_acceess_token"  # the caller's body is intact
                await response.text()  # a second read is not a second call
    assert records(reporter) == [(200, "get_shop_info", "auth", "invalid_acceess_token")] * 2


@RESPONSE_CLASSES
async def test_an_unread_body_is_reported_from_the_status_at_release(
        server: TestServer, reporter: Reporter, response_class: type[aiohttp.ClientResponse] | None) -> None:
    async with session_for(reporter, str(server.make_url("/shopee")), response_class) as session:
        async with session.get(server.make_url(SHOP_INFO)) as response:
            assert records(reporter) == []  # the caller may still read it
        assert records(reporter) == [(200, "get_shop_info", "", "")]  # the error inside was never seen
        async with session.get(server.make_url(SHOP_INFO)) as response:
            async for _ in response.content.iter_chunked(4):
                pass  # streamed by the caller: the hook reads nothing, the status decides
        assert records(reporter)[1:] == [(200, "get_shop_info", "", "")]


async def test_a_dropped_unreleased_answer_is_still_reported(server: TestServer, reporter: Reporter) -> None:
    async with session_for(reporter, str(server.make_url("/shopee")), TrafficClientResponse) as session:
        response = await session.get(server.make_url(SHOP_INFO))
        assert records(reporter) == []
        del response
        gc.collect()
        assert records(reporter) == [(200, "get_shop_info", "", "")]


async def test_an_answer_raise_for_status_turns_into_an_error_is_reported_with_its_status(
        server: TestServer, reporter: Reporter) -> None:
    async with session_for(reporter, str(server.make_url("/shopee")), TrafficClientResponse,
                           raise_for_status=True) as session:
        with pytest.raises(aiohttp.ClientResponseError) as raised:
            await session.get(server.make_url("/shopee/api/v2/order/get_order_list"))
    assert raised.value.status == 429
    assert records(reporter) == [(429, "order.get_order_list", "throttled", "")]  # unread: the status decides


async def test_calls_to_other_hosts_pass_through_unreported(server: TestServer, reporter: Reporter) -> None:
    async with session_for(reporter, str(server.make_url("/shopee")), TrafficClientResponse) as session:
        async with session.get(server.make_url("/elsewhere")) as response:
            assert (await response.json())["error"] == "invalid_acceess_token"
    assert records(reporter) == []


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_refused_connection_is_reported_and_raised_as_aiohttp_raises_it(reporter: Reporter) -> None:
    base = f"http://127.0.0.1:{_closed_port()}/shopee"
    async with session_for(reporter, base, TrafficClientResponse) as session:
        with pytest.raises(aiohttp.ClientConnectorError):
            await session.get(base + SHOP_INFO.removeprefix("/shopee"))
    assert records(reporter) == [(0, "get_shop_info", "connect", "")]


async def test_a_timeout_is_reported_as_timeout_and_the_caller_gets_aiohttp_s_error(
        server: TestServer, reporter: Reporter) -> None:
    timeout = aiohttp.ClientTimeout(total=0.2)
    async with session_for(reporter, str(server.make_url("/shopee")), TrafficClientResponse,
                           timeout=timeout) as session:
        with pytest.raises(asyncio.TimeoutError):
            await session.get(server.make_url("/shopee/api/v2/product/get_item_list"))
    assert records(reporter) == [(0, "product.get_item_list", "timeout", "")]


async def _one_answer_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers the first request of a connection (keep-alive) and drops the connection on the
    second without a word: what a server closing an idle keep-alive connection looks like."""
    body = ERROR.encode()
    try:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")  # the second request: dropped unanswered
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the client closed first
    writer.close()


async def test_aiohttp_s_own_retry_of_a_dropped_keep_alive_connection_is_not_an_error(reporter: Reporter) -> None:
    raw = await asyncio.start_server(_one_answer_per_connection, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{raw.sockets[0].getsockname()[1]}/shopee"
    try:
        async with session_for(reporter, base, TrafficClientResponse) as session:
            for _ in range(2):  # the second goes out on the first's connection, which is dropped
                async with session.get(base + SHOP_INFO.removeprefix("/shopee")) as response:
                    await response.read()
    finally:
        raw.close()
        await raw.wait_closed()
    assert records(reporter) == [(200, "get_shop_info", "auth", "invalid_acceess_token")] * 2


async def test_a_failing_reporter_never_reaches_the_caller(server: TestServer, reporter: Reporter,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_: TrafficRecord) -> None:
        raise RuntimeError("reporter bug")

    monkeypatch.setattr(reporter, "add", broken)
    async with session_for(reporter, str(server.make_url("/shopee")), TrafficClientResponse) as session:
        async with session.get(server.make_url(SHOP_INFO)) as response:
            assert (await response.json())["error"] == "invalid_acceess_token"
        async with session.get(server.make_url(SHOP_INFO)):
            pass
    closed = f"http://127.0.0.1:{_closed_port()}/shopee"
    async with session_for(reporter, closed, None) as session:
        with pytest.raises(aiohttp.ClientConnectorError):  # aiohttp's own error, not the reporter's
            await session.get(closed + SHOP_INFO.removeprefix("/shopee"))
