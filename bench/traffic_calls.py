"""The calls bench/traffic_overhead.py measures: the simulator's Shopee ``get_shop_info`` answers
and the labels each must get, idle reporters, the hook path alone, and each client (httpx in
memory and over loopback, requests, aiohttp with either hook) plain and hooked against an answer
server in its own process.

Run as a script, it is that answer server (a child process: prints its port, serves until killed).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable

import aiohttp
import httpx
import requests
from aiohttp import web

from marketplace_exporter.traffic.aiohttp_middleware import TrafficClientResponse, traffic_middleware
from marketplace_exporter.traffic.aiohttp_trace import traffic_trace_config
from marketplace_exporter.traffic.classify import Classifier
from marketplace_exporter.traffic.httpx_hooks import TrafficTransport
from marketplace_exporter.traffic.reporter import Reporter
from marketplace_exporter.traffic.requests_adapter import instrument_session

SHOP_INFO = "/api/v2/shop/get_shop_info"
#: what the simulator answers for each kind (its shop record; its error texts and statuses)
ANSWERS: dict[str, tuple[int, dict[str, str], bytes]] = {
    "success": (200, {}, json.dumps({
        "request_id": "5f1b2c3d4e5f60718293a4b5c6d7e8f9", "error": "", "message": "", "shop_name": "sim shop SG",
        "region": "SG", "status": "NORMAL", "auth_time": 1764115200, "expire_time": 1795651200,
        "is_cb": False, "is_sip": False, "is_upgraded_cbsc": False, "merchant_id": None,
        "shop_fulfillment_flag": "Others", "is_main_shop": False, "is_direct_shop": False,
        "linked_main_shop_id": 0, "linked_direct_shop_list": [], "sip_affi_shops": []}).encode()),
    "error in body": (200, {}, json.dumps({
        "request_id": "5f1b2c3d4e5f60718293a4b5c6d7e8f9", "error": "invalid_acceess_token",
        "message": "Invalid access_token, please have a check."}).encode()),
    "4xx": (429, {"Retry-After": "1"}, json.dumps({
        "request_id": "5f1b2c3d4e5f60718293a4b5c6d7e8f9", "error": "error_rate_limit",
        "message": "Too many requests. You have reached the rate limit. Please try again later."}).encode()),
}
#: the labels each answer must get (the bench checks them: a hook that classified nothing
#: would be cheap for the wrong reason)
EXPECTED = {"success": ("", ""), "error in body": ("auth", "invalid_acceess_token"),
            "4xx": ("throttled", "error_rate_limit")}
KINDS = tuple(ANSWERS)

IDLE_REPORTERS: list[Reporter] = []


def idle_reporter() -> Reporter:
    """A reporter whose sender never runs during the measurement (caller's path only)."""
    reporter = Reporter("http://127.0.0.1:9", service="bench", interval=3600, max_queue=1_000_000)
    IDLE_REPORTERS.append(reporter)
    return reporter


def check_labels(reporter: Reporter, kind: str) -> None:
    """The hooked calls of one measurement were classified as the probes would label them."""
    seen = {(record.reason, record.code) for record in reporter._queue}
    reporter._queue.clear()
    if seen != {EXPECTED[kind]}:
        raise SystemExit(f"{kind}: hooked calls were labelled {seen}, expected {EXPECTED[kind]}")


def pin(core: int) -> None:
    """Keep this process on one core (when there are two): no migrations inside a measurement."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {core})


def unpin() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


def hook_path_loop(kind: str, iterations: int) -> Callable[[], None]:
    """One client's worth of hook work for ``iterations`` answers of ``kind`` (no client, no I/O)."""
    reporter = idle_reporter()
    classifier = Classifier(account="sg-main", site="SG")
    status, extra, body = ANSWERS[kind]
    headers = httpx.Headers({"content-type": "application/json; charset=utf-8",
                             "content-length": str(len(body)), "date": "Thu, 26 Nov 2026 17:00:00 GMT",
                             "server": "Python/3.11 aiohttp/3.14.5", **extra})

    def run() -> None:
        for _ in range(iterations):
            routed = classifier.route("partner.shopeemobile.com", SHOP_INFO, "partner_id=1&sign=2")
            assert routed is not None
            reporter.add(classifier.response(routed, status, headers, body, 0.1))
        check_labels(reporter, kind)

    return run


def serve_answers() -> None:
    """Child process: a server giving the simulator's Shopee answers by ``?answer=``; prints its port."""
    pin(1)

    async def handler(request: web.Request) -> web.Response:
        status, extra, body = ANSWERS[request.query.get("answer", "success")]
        return web.Response(status=status, body=body, headers=extra, content_type="application/json")

    async def run() -> None:
        app = web.Application()
        app.router.add_get("/shopee" + SHOP_INFO, handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(run())


#: the clients measured; the last is a reference (aiohttp's own tracing machinery, no hook)
CLIENTS = ("httpx (in-memory)", "httpx", "requests", "aiohttp (middleware)", "aiohttp (TraceConfig)",
           "aiohttp (empty trace)")
REFERENCE = "aiohttp (empty trace)"


def answer_url(base: str, kind: str) -> str:
    return f"{base}/shopee{SHOP_INFO}?answer={kind.replace(' ', '+')}&partner_id=1&sign=2"


def in_memory_answer(request: httpx.Request) -> httpx.Response:
    """What the answer server says, without a network: ``stream=`` as a real transport answers
    (``content=`` would make httpx read the body in the constructor, and the hook, which tees
    what the caller reads, would see nothing)."""
    status, extra, body = ANSWERS[request.url.params.get("answer", "success")]
    return httpx.Response(status, headers={"content-type": "application/json",
                                           "content-length": str(len(body)), **extra},
                          stream=httpx.ByteStream(body))


def sync_pair(client: str, server: str, reporter: Reporter) -> tuple[Callable[[str], object],
                                                                     Callable[[str], object], str]:
    """(plain get, hooked get, base URL) for a sync client; closed when the process ends."""
    if client == "httpx (in-memory)":
        plain = httpx.Client(transport=httpx.MockTransport(in_memory_answer))
        hooked = httpx.Client(transport=TrafficTransport(reporter, account="sg-main", site="SG",
                                                         transport=httpx.MockTransport(in_memory_answer)))
        return plain.get, hooked.get, "https://partner.shopeemobile.com"
    bases = {f"{server}/shopee": "shopee"}
    if client == "httpx":
        plain = httpx.Client()
        hooked = httpx.Client(transport=TrafficTransport(reporter, account="sg-main", site="SG", base_urls=bases))
        return plain.get, hooked.get, server
    plain_session, hooked_session = requests.Session(), requests.Session()
    instrument_session(hooked_session, reporter, account="sg-main", site="SG", base_urls=bases)
    return plain_session.get, hooked_session.get, server


def aiohttp_sessions(client: str, server: str, reporter: Reporter) -> tuple[aiohttp.ClientSession,
                                                                           aiohttp.ClientSession]:
    """(plain, hooked) sessions; for the reference row, "hooked" has an empty TraceConfig."""
    bases = {f"{server}/shopee": "shopee"}
    if client == "aiohttp (middleware)":
        middleware = traffic_middleware(reporter, account="sg-main", site="SG", base_urls=bases)
        return aiohttp.ClientSession(), aiohttp.ClientSession(middlewares=[middleware],
                                                              response_class=TrafficClientResponse)
    trace = (aiohttp.TraceConfig() if client == REFERENCE else
             traffic_trace_config(reporter, account="sg-main", site="SG", base_urls=bases))
    return aiohttp.ClientSession(), aiohttp.ClientSession(trace_configs=[trace])


async def fetch(session: aiohttp.ClientSession, url: str) -> bytes:
    async with session.get(url) as response:
        return await response.read()


def expect(client: str, reporter: Reporter, kind: str) -> None:
    if client == REFERENCE:
        reporter._queue.clear()  # nothing hooked, nothing to check
    else:
        check_labels(reporter, kind)


def start_answer_server() -> tuple[str, subprocess.Popen[str]]:
    child = subprocess.Popen([sys.executable, __file__], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    return f"http://127.0.0.1:{int(child.stdout.readline())}", child


IN_MEMORY = "httpx (in-memory)"


if __name__ == "__main__":
    serve_answers()
