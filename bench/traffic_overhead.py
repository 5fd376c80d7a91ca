#!/usr/bin/env python3
"""Production traffic reporting: what the hooks add to each call, and what the exporter ingests.

Numbers, printed, never asserted (goals: < 20 µs added per call; ≥ 50,000 records/s ingested).

1. **Hook path alone**: the work a hook adds to one call, without any client: route lookup
   (cached), the adapter's classification (``json.loads`` of the body included), the record, the
   ``deque.append``. CPU per call (``time.thread_time``), median of rounds, per answer kind.
   ``--instructions`` also counts it in instructions with ``valgrind --tool=callgrind``
   (repeatable to a fraction of a percent, where times move by tens of percent on a shared machine).

2. **Added CPU per call, client × answer**: in ONE run, each client (httpx, requests, aiohttp;
   plus httpx over an in-memory transport, no network at all) calls the same local server with and
   without the hook. The server is a separate process (its own core when there are two), so the
   client process's CPU (``time.process_time``: all its threads) is the client's own work:
   the wall time of a loopback round trip (300-3000 µs here, moving by ±500 µs between runs on a
   shared machine) never enters the figure. Rounds of ``--calls`` calls alternate plain/hooked
   (ABBA order, so drift hits both equally); the figure is the median over rounds of (hooked −
   plain) CPU per call, with the interquartile range of the per-round differences beside it.

   Answers, as the project's simulator gives them for Shopee ``get_shop_info``: ``success`` (HTTP
   200, the shop record), ``error in body`` (HTTP 200 ``invalid_acceess_token``: Shopee's way of
   failing), ``4xx`` (HTTP 429 ``error_rate_limit`` with ``Retry-After``).

   The reporters' sender threads are idle during the measurement (long interval): this is the
   caller's path only. Their own cost (JSON + urllib POST per batch of 1,000) is in number 3.

3. **Ingest**: the exporter's real app (``create_app`` with ``traffic.anonymous_writes``) in a
   child process on loopback; pre-encoded batches of 1,000 records (operations, statuses and
   errors mixed) POSTed flat out by ``wrk`` (4 connections; aiohttp senders when wrk is missing).
   Printed: accepted records / wall time, and accepted records per second of the exporter
   process's own CPU (utime + stime from /proc): its capacity.

    .venv/bin/python bench/traffic_overhead.py [--calls 200] [--rounds 15] [--instructions]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial

import aiohttp
import httpx
import requests
from aiohttp import web

from marketplace_exporter.server import ConfigSource, create_app
from marketplace_exporter.traffic.aiohttp_trace import traffic_trace_config
from marketplace_exporter.traffic.classify import Classifier
from marketplace_exporter.traffic.httpx_hooks import TrafficTransport
from marketplace_exporter.traffic.reporter import Reporter
from marketplace_exporter.traffic.requests_adapter import instrument_session

GOAL_US = 20.0
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

_IDLE: list[Reporter] = []


def idle_reporter() -> Reporter:
    """A reporter whose sender never runs during the measurement (caller's path only)."""
    reporter = Reporter("http://127.0.0.1:9", service="bench", interval=3600, max_queue=1_000_000)
    _IDLE.append(reporter)
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


# --- 1. the hook path alone ------------------------------------------------------------------------

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


def hook_path(rounds: int, iterations: int = 20_000) -> dict[str, float]:
    """CPU µs per call of the hook path alone, median of ``rounds`` per kind (kinds interleaved)."""
    loops = {kind: hook_path_loop(kind, iterations) for kind in KINDS}
    samples: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for kind in KINDS:
        hook_path_loop(kind, 2_000)()  # warm-up
    for _ in range(rounds):
        for kind in KINDS:
            cpu = time.thread_time()
            loops[kind]()
            samples[kind].append((time.thread_time() - cpu) / iterations * 1e6)
    return {kind: statistics.median(values) for kind, values in samples.items()}


def instructions(kind: str, iterations: int) -> int | None:
    """Instructions the hook path executes per call for ``kind`` (callgrind: Ir of a run with
    ``iterations`` calls minus Ir of a run with none, over ``iterations``); None without valgrind."""
    if shutil.which("valgrind") is None:
        return None
    counts = []
    for n in (0, iterations):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "callgrind.out")
            subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                            sys.executable, __file__, "_hook", kind, str(n)],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with open(out, encoding="utf-8") as handle:
                summary = next(line for line in handle if line.startswith(("summary:", "totals:")))
            counts.append(int(summary.split()[1]))
    return round((counts[1] - counts[0]) / iterations)


def hook_child(kind: str, iterations: int) -> None:
    """Child process for --instructions: imports, warm-up (both runs alike), then the calls."""
    hook_path_loop(kind, 500)()
    if iterations:
        hook_path_loop(kind, iterations)()
    for reporter in _IDLE:
        reporter._queue.clear()


# --- 2. added CPU per call, client × answer ------------------------------------------------------

class Cell:
    """One client × answer: per-round CPU µs per call of the plain and the hooked client."""

    def __init__(self) -> None:
        self.plain: list[float] = []
        self.hooked: list[float] = []

    def added(self) -> tuple[float, float, float]:
        """(median, first quartile, third quartile) of the per-round differences."""
        diffs = [h - p for p, h in zip(self.plain, self.hooked, strict=True)]
        q1, median, q3 = statistics.quantiles(diffs, n=4, method="inclusive")
        return median, q1, q3


def measure(plain: Callable[[], object], hooked: Callable[[], object], calls: int, rounds: int) -> Cell:
    cell = Cell()
    for fn in (plain, hooked, plain, hooked):  # connections open, caches warm
        for _ in range(30):
            fn()
    for i in range(rounds):
        order = ((plain, cell.plain), (hooked, cell.hooked))
        for fn, out in order if i % 2 == 0 else order[::-1]:
            cpu = time.process_time()
            for _ in range(calls):
                fn()
            out.append((time.process_time() - cpu) / calls * 1e6)
    return cell


async def measure_async(plain: Callable[[], Awaitable[object]], hooked: Callable[[], Awaitable[object]],
                        calls: int, rounds: int) -> Cell:
    cell = Cell()
    for fn in (plain, hooked, plain, hooked):
        for _ in range(30):
            await fn()
    for i in range(rounds):
        order = ((plain, cell.plain), (hooked, cell.hooked))
        for fn, out in order if i % 2 == 0 else order[::-1]:
            cpu = time.process_time()
            for _ in range(calls):
                await fn()
            out.append((time.process_time() - cpu) / calls * 1e6)
    return cell


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


def in_memory(calls: int, rounds: int) -> dict[str, Cell]:
    """httpx over ``MockTransport``: no network at all, so the difference is the hook alone."""
    cells = {}
    for kind in KINDS:
        status, extra, body = ANSWERS[kind]

        def answer(request: httpx.Request, status: int = status, extra: dict[str, str] = extra,
                   body: bytes = body) -> httpx.Response:
            # stream=, as a real transport answers: content= would make httpx read the body inside
            # the constructor, and the hook (which tees what the caller reads) would see nothing
            return httpx.Response(status, headers={"content-type": "application/json",
                                                   "content-length": str(len(body)), **extra},
                                  stream=httpx.ByteStream(body))

        url = f"https://partner.shopeemobile.com{SHOP_INFO}?partner_id=1&timestamp=2&sign=3"
        reporter = idle_reporter()
        with httpx.Client(transport=httpx.MockTransport(answer)) as plain, httpx.Client(
                transport=TrafficTransport(reporter, account="sg-main", site="SG",
                                           transport=httpx.MockTransport(answer))) as hooked:
            cells[kind] = measure(partial(plain.get, url), partial(hooked.get, url), calls * 5, rounds)
        check_labels(reporter, kind)
    return cells


def loopback(server: str, calls: int, rounds: int) -> dict[str, dict[str, Cell]]:
    """httpx, requests and aiohttp, plain and hooked, against the answer server."""
    base = {f"{server}/shopee": "shopee"}
    results: dict[str, dict[str, Cell]] = {"httpx": {}, "requests": {}, "aiohttp": {}}
    for kind in KINDS:
        url = f"{server}/shopee{SHOP_INFO}?answer={kind.replace(' ', '+')}&partner_id=1&sign=2"
        reporter = idle_reporter()
        with httpx.Client() as plain_client, httpx.Client(transport=TrafficTransport(
                reporter, account="sg-main", site="SG", base_urls=base)) as hooked_client:
            results["httpx"][kind] = measure(partial(plain_client.get, url), partial(hooked_client.get, url),
                                             calls, rounds)
        check_labels(reporter, kind)
        with requests.Session() as plain_session, requests.Session() as hooked_session:
            instrument_session(hooked_session, reporter, account="sg-main", site="SG", base_urls=base)
            results["requests"][kind] = measure(partial(plain_session.get, url), partial(hooked_session.get, url),
                                                calls, rounds)
        check_labels(reporter, kind)
        results["aiohttp"][kind] = asyncio.run(_aiohttp(url, base, reporter, calls, rounds))
        check_labels(reporter, kind)
    return results


async def _aiohttp(url: str, base: dict[str, str], reporter: Reporter, calls: int, rounds: int) -> Cell:
    trace = traffic_trace_config(reporter, account="sg-main", site="SG", base_urls=base)
    async with aiohttp.ClientSession() as plain, aiohttp.ClientSession(trace_configs=[trace]) as hooked:
        async def get(session: aiohttp.ClientSession) -> bytes:
            async with session.get(url) as response:
                return await response.read()

        return await measure_async(lambda: get(plain), lambda: get(hooked), calls, rounds)


def start_answer_server() -> tuple[str, subprocess.Popen[str]]:
    child = subprocess.Popen([sys.executable, __file__, "_answers"], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    return f"http://127.0.0.1:{int(child.stdout.readline())}", child


def print_table(cells: dict[str, dict[str, Cell]]) -> None:
    print(f"  {'client':<18} {'answer':<14} {'plain':>8} {'hooked':>8} {'added':>8}  {'IQR of rounds':<15} goal")
    for client, by_kind in cells.items():
        for kind, cell in by_kind.items():
            added, q1, q3 = cell.added()
            verdict = "met" if added < GOAL_US else "MISSED"
            print(f"  {client:<18} {kind:<14} {statistics.median(cell.plain):>8.1f} "
                  f"{statistics.median(cell.hooked):>8.1f} {added:>+8.1f}  {q1:>+6.1f} .. {q3:>+5.1f}  "
                  f"< {GOAL_US:.0f} {verdict}")


# --- 3. ingest ------------------------------------------------------------------------------------

CONFIG = """
traffic: {anonymous_writes: true, max_body_bytes: 8388608}
accounts:
  - marketplace: shopee
    alias: sg-main
    site: SG
    base_url: http://127.0.0.1:9/shopee
    credentials:
      partner_id: 1
      partner_key: {value: k}
      shop_id: 1
      access_token: {value: t}
    checks: [{operation: get_shops_by_partner, interval: 24h}]
"""


def batch_bytes(size: int) -> bytes:
    operations = ["get_shop_info", "order.get_order_list", "order.get_order_detail", "product.update_stock"]
    records = []
    for i in range(size):
        failed = i % 10 == 0
        records.append({"marketplace": "shopee", "site": "SG", "account": "sg-main",
                        "operation": operations[i % len(operations)], "status": 200,
                        "reason": "throttled" if failed else "", "code": "error_rate_limit" if failed else "",
                        "duration": 0.05 + (i % 50) / 100, "ratelimit": None})
    return json.dumps({"service": "bench", "instance": "b", "dropped": 0, "records": records},
                      separators=(",", ":")).encode()


def serve_exporter(config_path: str) -> None:
    """Child process: the exporter's real app on a loopback port; prints the port, serves until killed."""
    os.environ.pop("MARKETPLACE_EXPORTER_TRAFFIC_TOKEN", None)
    logging.disable(logging.WARNING)

    async def run() -> None:
        source = ConfigSource(config_path)
        runner = web.AppRunner(create_app(source, source.load()), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(run())


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def ingest(batches: int, senders: int = 4, size: int = 1000) -> None:
    """The exporter in its own process; senders here. Prints wall rate and exporter-CPU rate."""
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        handle.write(CONFIG)
    child = subprocess.Popen([sys.executable, __file__, "_exporter", handle.name], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        url = f"http://127.0.0.1:{port}/api/v1/traffic"
        payload = batch_bytes(size)
        if shutil.which("wrk"):
            accepted, elapsed, cpu, sender = await _wrk(url, payload, child.pid, senders)
        else:
            accepted, elapsed, cpu, sender = await _aiohttp_senders(url, payload, child.pid, batches, senders)
    finally:
        child.terminate()
        child.wait(10)
        os.unlink(handle.name)
    print(f"  {accepted:,} records in {elapsed:.2f} s = {accepted / elapsed:,.0f} records/s wall; "
          f"exporter CPU {cpu:.2f} s = {accepted / max(cpu, 1e-9):,.0f} records per CPU-second "
          f"(batches of {size}, {senders} connections, sender: {sender}; goal >= 50,000/s)")


async def _accepted(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url.replace("/api/v1/traffic", "/metrics")) as r:
        text = await r.text()
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
               if line.startswith("marketplace_traffic_records_total{") and 'result="accepted"' in line)


async def _wrk(url: str, payload: bytes, pid: int, connections: int) -> tuple[int, float, float, str]:
    """wrk (C, one thread) POSTs the batch flat out for 3 s: the sender costs little CPU."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        body = payload.decode()
        assert "]]" not in body  # a Lua long string is raw up to the first ]]
        script.write(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                     f"wrk.body = [[{body}]]\n")
    try:
        before = await _accepted(url)
        cpu0, start = cpu_seconds(pid), time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            "wrk", "-t1", f"-c{connections}", "-d3s", "-s", script.name, url,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        await proc.wait()
        elapsed, cpu = time.perf_counter() - start, cpu_seconds(pid) - cpu0
        return await _accepted(url) - before, elapsed, cpu, "wrk"
    finally:
        os.unlink(script.name)


async def _aiohttp_senders(url: str, payload: bytes, pid: int, batches: int,
                           senders: int) -> tuple[int, float, float, str]:
    async with aiohttp.ClientSession(headers={"Content-Type": "application/json"}) as session:
        async def send(n: int) -> int:
            count = 0
            for _ in range(n):
                async with session.post(url, data=payload) as response:
                    count += (await response.json())["accepted"]
            return count

        await send(5)  # warm-up
        cpu0, start = cpu_seconds(pid), time.perf_counter()
        results = await asyncio.gather(*(send(batches // senders) for _ in range(senders)))
        return sum(results), time.perf_counter() - start, cpu_seconds(pid) - cpu0, "aiohttp"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200, help="calls per client, answer, variant and round")
    parser.add_argument("--rounds", type=int, default=15, help="alternating plain/hooked rounds per cell")
    parser.add_argument("--batches", type=int, default=200, help="batches of 1,000 records (aiohttp senders)")
    parser.add_argument("--instructions", action="store_true",
                        help="also count the hook path's instructions per call with callgrind (~1 min)")
    parser.add_argument("--no-ingest", action="store_true", help="skip the exporter ingest measurement")
    if sys.argv[1:2] == ["_exporter"]:
        serve_exporter(sys.argv[2])
        return
    if sys.argv[1:2] == ["_answers"]:
        serve_answers()
        return
    if sys.argv[1:2] == ["_hook"]:
        hook_child(sys.argv[2], int(sys.argv[3]))
        return
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"traffic hooks: CPU µs per call in the client process; {os.cpu_count()} CPUs, load average "
          f"{load:.1f}; goal < {GOAL_US:.0f} µs added per call")
    print(f"hook path alone (route, classification, record, append; median of {args.rounds} rounds)")
    alone = hook_path(args.rounds)
    for kind in KINDS:
        counted = instructions(kind, 2000) if args.instructions else None
        extra = f"  {counted:,} instructions/call (callgrind)" if counted is not None else ""
        print(f"  {kind:<14} {alone[kind]:>6.1f} µs CPU/call{extra}")
    pin(0)
    server, child = start_answer_server()
    try:
        print(f"added CPU per call, plain vs hooked client in one run (median of {args.rounds} ABBA rounds "
              f"of {args.calls} calls; loopback server in its own process)", flush=True)
        cells = {"httpx (in-memory)": in_memory(args.calls, args.rounds)}
        cells.update(loopback(server, args.calls, args.rounds))
    finally:
        child.terminate()
        child.wait(10)
    print_table(cells)
    for reporter in _IDLE:
        reporter._queue.clear()  # nothing to deliver: the bench's reporters point nowhere
    if not args.no_ingest:
        unpin()
        print("exporter ingest (POST /api/v1/traffic over loopback; the exporter in its own process)")
        asyncio.run(ingest(args.batches))


if __name__ == "__main__":
    main()
