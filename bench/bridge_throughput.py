#!/usr/bin/env python3
"""Bridge accept throughput: Alertmanager-style POSTs per second the bridge answers 200 to.

One run starts, each as its own process on 127.0.0.1 (free ports):

* the fake robots (``tests/integration/fake_robots.py``) with one fast generic webhook robot;
* the bridge (``python -m marketplace_exporter.bridge bridge``) with one receiver pointing at it
  (robot limit raised so delivery keeps up) and its SQLite outbox in a temporary directory;
* the reference: a bare aiohttp server whose handler reads the body, ``json.loads`` it and answers
  200 — no validation, no SQLite, no delivery: the ceiling any aiohttp receiver has on this machine.

The same client (aiohttp, ``--concurrency`` requests in flight, distinct notifications so none is
deduplicated) posts ``--count`` v4 payloads to each, in turn, after a warm-up. Printed per target:
accepted notifications/s, p50 and p99 accept latency, and for the bridge the time until the robot
had received every notification (delivery drained). The goal from the issue is ≥ 1,000/s accepted;
the number is reported, never asserted. Exit 1 if any POST was not answered 200 or any
notification did not reach the robot; 2 on a start-up failure.

    .venv/bin/python bench/bridge_throughput.py [--count 3000] [--concurrency 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
FAKE_ROBOTS = ROOT / "tests" / "integration" / "fake_robots.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def payload(index: int, run: str) -> dict[str, Any]:
    name = f"Bench{run}"
    return {
        "version": "4", "groupKey": f'{{}}:{{alertname="{name}",n="{index}"}}', "truncatedAlerts": 0,
        "status": "firing", "receiver": "bench", "groupLabels": {"alertname": name},
        "commonLabels": {"alertname": name, "severity": "critical"},
        "commonAnnotations": {"summary": "p99 latency above 1s"}, "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": name, "severity": "critical", "marketplace": "amazon_sp", "account": f"a{index}"},
            "annotations": {"summary": "Marketplace check failing", "summary_zh": "市场检查失败",
                            "runbook_url": "docs/runbooks.md#marketplacecheckfailing"},
            "startsAt": "2024-05-01T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=up", "fingerprint": f"{index:016x}",
        }],
    }


NULL_SERVER = """
import json, sys
from aiohttp import web
async def handle(request):
    json.loads(await request.read())
    return web.json_response({"status": "queued"})
app = web.Application()
app.router.add_post("/alertmanager/{receiver}", handle)
app.router.add_get("/-/ready", lambda r: handle_ready())
async def handle_ready():
    return web.Response(text="OK")
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


async def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"bench: {process.args!r} exited with {process.returncode}")
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"bench: {url} not ready in 30 s")


async def blast(url: str, bodies: list[bytes], concurrency: int) -> tuple[float, list[float], int]:
    """POST every body with ``concurrency`` in flight; returns (seconds, latencies, non-200 count)."""
    latencies: list[float] = []
    bad = 0
    queue = iter(bodies)
    headers = {"Content-Type": "application/json", "User-Agent": "Alertmanager/0.27.0"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            nonlocal bad
            for body in queue:
                start = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        bad += 1
                latencies.append(time.perf_counter() - start)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - began, latencies, bad


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def robot_count(robots_url: str, session: aiohttp.ClientSession, run: str) -> int:
    async with session.get(f"{robots_url}/__robots/messages") as response:
        messages = await response.json()
    return sum(m["text"].count(f"Bench{run}**") for m in messages if m["code"] == 0)


async def main_async(args: argparse.Namespace) -> int:
    processes: list[subprocess.Popen[bytes]] = []
    tmp = tempfile.TemporaryDirectory(prefix="bridge-bench-")
    rc = 0
    try:
        robots_port, bridge_port, null_port = free_port(), free_port(), free_port()
        processes.append(subprocess.Popen(
            [sys.executable, str(FAKE_ROBOTS), "--listen", f"127.0.0.1:{robots_port}", "--robot", "webhook:bench"],
            stdout=subprocess.DEVNULL))
        config = Path(tmp.name) / "bridge.yml"
        config.write_text(f"""\
storage_path: outbox.db
dedupe_window: 10m
receivers:
  bench:
    channel: webhook
    url: {{value: "http://127.0.0.1:{robots_port}/hook/bench"}}
    rate_limit: {{per_minute: 1000000}}
""", encoding="utf-8")
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "marketplace_exporter.bridge", "--log.level=warning", "bridge",
             f"--config.file={config}", f"--web.listen-address=127.0.0.1:{bridge_port}"],
            stdout=subprocess.DEVNULL))
        processes.append(subprocess.Popen([sys.executable, "-c", NULL_SERVER, str(null_port)]))
        robots_url = f"http://127.0.0.1:{robots_port}"
        await wait_ready(f"http://127.0.0.1:{bridge_port}/-/ready", processes[1])
        await wait_ready(f"http://127.0.0.1:{null_port}/-/ready", processes[2])
        await wait_ready(f"{robots_url}/__robots/messages", processes[0])

        targets = {"bridge": f"http://127.0.0.1:{bridge_port}/alertmanager/bench",
                   "reference (bare aiohttp, no work)": f"http://127.0.0.1:{null_port}/alertmanager/bench"}
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in targets}
        drains: list[float] = []
        print(f"bridge accept throughput: {args.count} notifications x {args.rounds} rounds, "
              f"{args.concurrency} in flight, {os.cpu_count()} CPUs", flush=True)
        warm = [json.dumps(payload(i, "warm")).encode() for i in range(200)]
        for url in targets.values():
            await blast(url, warm, args.concurrency)
        async with aiohttp.ClientSession() as session:
            for round_no in range(args.rounds):
                for name, url in targets.items():
                    run = f"r{round_no}{'b' if name == 'bridge' else 'n'}"
                    bodies = [json.dumps(payload(i, run)).encode() for i in range(args.count)]
                    seconds, latencies, bad = await blast(url, bodies, args.concurrency)
                    if bad:
                        print(f"  {name}: {bad} POST(s) not answered 200", flush=True)
                        rc = 1
                    results[name].append((args.count / seconds, pct(latencies, 0.5), pct(latencies, 0.99)))
                    if name == "bridge":
                        began = time.perf_counter() - seconds
                        deadline = time.monotonic() + 120
                        while await robot_count(robots_url, session, run) < args.count:
                            if time.monotonic() > deadline:
                                print("  bridge: not every notification reached the robot in 120 s", flush=True)
                                rc = 1
                                break
                            await asyncio.sleep(0.05)
                        drains.append(time.perf_counter() - began)
        print(f"\n{'target':36} {'accepted/s':>11} {'p50 ms':>8} {'p99 ms':>8}   (median of rounds)")
        for name, rows in results.items():
            rate = statistics.median(r[0] for r in rows)
            p50 = statistics.median(r[1] for r in rows) * 1000
            p99 = statistics.median(r[2] for r in rows) * 1000
            print(f"{name:36} {rate:11.0f} {p50:8.2f} {p99:8.2f}")
        bridge_rate = statistics.median(r[0] for r in results["bridge"])
        ceiling = statistics.median(r[0] for r in results["reference (bare aiohttp, no work)"])
        print(f"\nbridge / reference: {bridge_rate / ceiling:.2f}x   goal >= 1000/s: "
              f"{'met' if bridge_rate >= 1000 else 'NOT met'}")
        print(f"bridge: first POST to last notification at the robot: median {statistics.median(drains):.2f} s "
              f"for {args.count} (delivery {args.count / statistics.median(drains):.0f}/s, one message each)")
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
            if process.returncode not in (0, -15, None) and rc == 0:
                print(f"bench: {process.args[:3]!r} exited with {process.returncode}")
        tmp.cleanup()
    return rc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
