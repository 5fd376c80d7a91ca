"""The aiohttp hook over real loopback HTTP: a read body is classified, an unread one is reported
from its status once UNREAD_AFTER has passed, and every call is reported exactly once."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import weakref

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from marketplace_exporter.traffic import aiohttp_trace
from marketplace_exporter.traffic.aiohttp_trace import traffic_trace_config
from marketplace_exporter.traffic.classify import TrafficRecord
from marketplace_exporter.traffic.reporter import Reporter

SHOP_INFO = "/shopee/api/v2/shop/get_shop_info"
ERROR = json.dumps({"request_id": "r", "error": "invalid_acceess_token", "message": "Invalid access_token."})


async def shopee_error(_: web.Request) -> web.Response:
    return web.Response(text=ERROR, content_type="application/json")  # Shopee fails inside HTTP 200


def records(reporter: Reporter) -> list[TrafficRecord]:
    return list(reporter._queue)


async def serve() -> TestServer:
    app = web.Application()
    app.router.add_get(SHOP_INFO, shopee_error)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def test_read_bodies_are_classified_and_unread_ones_reported_from_the_status_later(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiohttp_trace, "UNREAD_AFTER", 0.2)
    server = await serve()
    base = str(server.make_url("/shopee"))
    reporter = Reporter("http://127.0.0.1:9", service="erp", interval=3600)
    trace = traffic_trace_config(reporter, account="sg-main", site="SG", base_urls={base: "shopee"})
    try:
        async with aiohttp.ClientSession(trace_configs=[trace]) as session:
            for _ in range(3):
                async with session.get(server.make_url(SHOP_INFO)) as response:
                    await response.read()
            async with session.get(server.make_url(SHOP_INFO)) as response:
                pass  # never read: only the status can speak
            read = records(reporter)
            assert [(r.reason, r.code) for r in read] == [("auth", "invalid_acceess_token")] * 3
            await asyncio.sleep(0.5)
        unread = records(reporter)[3:]
        assert [(r.status, r.reason, r.code) for r in unread] == [(200, "", "")]
    finally:
        reporter._queue.clear()
        reporter.close(0)
        await server.close()


async def test_many_calls_each_reported_once_and_the_unread_list_drains(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiohttp_trace, "UNREAD_AFTER", 0.1)
    server = await serve()
    base = str(server.make_url("/shopee"))
    reporter = Reporter("http://127.0.0.1:9", service="erp", interval=3600)
    trace = traffic_trace_config(reporter, account="sg-main", site="SG", base_urls={base: "shopee"})
    try:
        async with aiohttp.ClientSession(trace_configs=[trace]) as session:
            async def call(read: bool) -> None:
                async with session.get(server.make_url(SHOP_INFO)) as response:
                    if read:
                        await response.read()

            await asyncio.gather(*(call(read=i % 3 != 0) for i in range(60)))
            await asyncio.sleep(0.3)  # past UNREAD_AFTER: the sweep ran, and read calls stay single
            seen = records(reporter)
        assert len(seen) == 60
        assert sum(r.reason == "auth" for r in seen) == 40 and sum(r.reason == "" for r in seen) == 20
    finally:
        reporter._queue.clear()
        reporter.close(0)
        await server.close()


def test_a_finished_event_loop_is_not_kept_alive_by_an_unread_call() -> None:
    """``asyncio.run`` per job is common in sync code: the config outlives each loop."""
    reporter = Reporter("http://127.0.0.1:9", service="erp", interval=3600)
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def one_job(trace: aiohttp.TraceConfig) -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        app = web.Application()
        app.router.add_get(SHOP_INFO, shopee_error)
        server = TestServer(app, host="127.0.0.1", port=port)
        await server.start_server()
        try:
            async with aiohttp.ClientSession(trace_configs=[trace]) as session:
                async with session.get(server.make_url(SHOP_INFO)) as response:
                    await response.read()  # reported at once: the hook is routing these calls
                async with session.get(server.make_url(SHOP_INFO)):
                    pass  # unread: its sweep is still pending when the loop ends
        finally:
            await server.close()

    trace = traffic_trace_config(reporter, account="sg-main", site="SG",
                                 base_urls={f"http://127.0.0.1:{port}/shopee": "shopee"})
    try:
        for _ in range(2):
            asyncio.run(one_job(trace))
        assert [(r.reason, r.code) for r in records(reporter)] == [("auth", "invalid_acceess_token")] * 2
        gc.collect()
        assert [ref() for ref in loops] == [None, None]
    finally:
        reporter._queue.clear()
        reporter.close(0)


async def test_an_answer_raise_for_status_turns_into_an_error_is_reported_with_its_status() -> None:
    async def throttled(_: web.Request) -> web.Response:
        return web.Response(status=429, text='{"error": "error_rate_limit"}', headers={"Retry-After": "1"},
                            content_type="application/json")

    app = web.Application()
    app.router.add_get("/shopee/api/v2/order/get_order_list", throttled)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    reporter = Reporter("http://127.0.0.1:9", service="erp", interval=3600)
    trace = traffic_trace_config(reporter, account="sg-main", site="SG",
                                 base_urls={str(server.make_url("/shopee")): "shopee"})
    try:
        async with aiohttp.ClientSession(trace_configs=[trace], raise_for_status=True) as session:
            with pytest.raises(aiohttp.ClientResponseError):
                await session.get(server.make_url("/shopee/api/v2/order/get_order_list"))
        # not a transport error (status 0, "connect"): the answer's own status and labels
        assert [(r.status, r.operation, r.reason) for r in records(reporter)] == [
            (429, "order.get_order_list", "throttled")]
    finally:
        reporter._queue.clear()
        reporter.close(0)
        await server.close()
