#!/usr/bin/env python3
"""Bridge accept throughput: Alertmanager-style POSTs per second the bridge answers 200 to.

One run starts, each as its own process on 127.0.0.1 (free ports):

* the fake robots (``tests/integration/fake_robots.py``): a signed DingTalk robot enforcing the
  real 20 messages/minute, and a fast generic webhook robot;
* the bridge (``python -m marketplace_exporter.bridge bridge``) with receiver ``ding`` (the
  DingTalk robot, real limits: queued notifications are merged) and ``hook`` (the webhook robot,
  limit lifted) and its SQLite outbox in a temporary directory;
* the reference: a bare aiohttp server whose handler reads the body, ``json.loads`` it and answers
  200 — no validation, no SQLite, no delivery: the ceiling any aiohttp receiver has on this machine.

Accept phase: the same client (aiohttp, ``--concurrency`` in flight, distinct notifications so none
is deduplicated) posts ``--count`` v4 payloads to ``/alertmanager/ding`` and to the reference, in
turn, after a warm-up; per target it prints accepted notifications/s, p50/p99 accept latency and
the server's CPU per notification (utime+stime from /proc: steadier than rates on a shared
machine). Drain phase: ``--count`` notifications to ``hook``, timed until the robot has every one
(delivery throughput when the robot does not limit). The issue's goal is >= 1,000/s accepted; the
number is reported, never asserted. Exit 1 if any POST was not answered 200, the robot rejected
any request (bad signature, over its limit) or a notification did not arrive; 2 on start-up failure.

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


async def robot_messages(robots_url: str, session: aiohttp.ClientSession) -> list[dict[str, Any]]:
    async with session.get(f"{robots_url}/__robots/messages") as response:
        result: list[dict[str, Any]] = await response.json()
        return result


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main_async(args: argparse.Namespace) -> int:
    processes: list[subprocess.Popen[bytes]] = []
    tmp = tempfile.TemporaryDirectory(prefix="bridge-bench-")
    rc = 0
    try:
        robots_port, bridge_port, null_port = free_port(), free_port(), free_port()
        processes.append(subprocess.Popen(
            [sys.executable, str(FAKE_ROBOTS), "--listen", f"127.0.0.1:{robots_port}",
             "--robot", "dingtalk:bench-token:SECbench-secret", "--robot", "webhook:bench"],
            stdout=subprocess.DEVNULL))
        config = Path(tmp.name) / "bridge.yml"
        config.write_text(f"""\
storage_path: outbox.db
auth: {{anonymous: true}}   # loopback only, this process's own clients
receivers:
  ding:
    channel: dingtalk
    url: {{value: "http://127.0.0.1:{robots_port}/robot/send?access_token=bench-token"}}
    secret: {{value: SECbench-secret}}
  hook:
    channel: webhook
    url: {{value: "http://127.0.0.1:{robots_port}/hook/bench"}}
    rate_limit: {{per_minute: 1000000}}
""", encoding="utf-8")
        bridge = subprocess.Popen(
            [sys.executable, "-m", "marketplace_exporter.bridge", "--log.level=warning", "bridge",
             f"--config.file={config}", f"--web.listen-address=127.0.0.1:{bridge_port}"],
            stdout=subprocess.DEVNULL)
        processes.append(bridge)
        null = subprocess.Popen([sys.executable, "-c", NULL_SERVER, str(null_port)])
        processes.append(null)
        robots_url = f"http://127.0.0.1:{robots_port}"
        await wait_ready(f"http://127.0.0.1:{bridge_port}/-/ready", bridge)
        await wait_ready(f"http://127.0.0.1:{null_port}/-/ready", null)
        await wait_ready(f"{robots_url}/__robots/messages", processes[0])

        targets = {"bridge (receiver ding)": (f"http://127.0.0.1:{bridge_port}/alertmanager/ding", bridge.pid),
                   "reference (bare aiohttp, no work)": (f"http://127.0.0.1:{null_port}/alertmanager/x", null.pid)}
        results: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in targets}
        print(f"bridge accept throughput: {args.count} notifications x {args.rounds} rounds, "
              f"{args.concurrency} in flight, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)
        warm = [json.dumps(payload(i, "warm")).encode() for i in range(200)]
        for url, _ in targets.values():
            await blast(url, warm, args.concurrency)
        for round_no in range(args.rounds):
            for name, (url, pid) in targets.items():
                bodies = [json.dumps(payload(i, f"r{round_no}")).encode() for i in range(args.count)]
                cpu_before = cpu_seconds(pid)
                seconds, latencies, bad = await blast(url, bodies, args.concurrency)
                cpu = cpu_seconds(pid) - cpu_before
                if bad:
                    print(f"  {name}: {bad} POST(s) not answered 200", flush=True)
                    rc = 1
                results[name].append((args.count / seconds, pct(latencies, 0.5), pct(latencies, 0.99),
                                      cpu / args.count))
        print(f"\n{'target':36} {'accepted/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/notif':>13}"
              "   (median of rounds)")
        for name, rows in results.items():
            print(f"{name:36} {statistics.median(r[0] for r in rows):11.0f} "
                  f"{statistics.median(r[1] for r in rows) * 1000:8.2f} "
                  f"{statistics.median(r[2] for r in rows) * 1000:8.2f} "
                  f"{statistics.median(r[3] for r in rows) * 1e6:13.0f}")
        names = list(results)
        bridge_rate = statistics.median(r[0] for r in results[names[0]])
        ceiling = statistics.median(r[0] for r in results[names[1]])
        print(f"\nbridge / reference: {bridge_rate / ceiling:.2f}x   goal >= 1000/s: "
              f"{'met' if bridge_rate >= 1000 else 'NOT met'} (at the machine's current load)")

        async with aiohttp.ClientSession() as session:
            bodies = [json.dumps(payload(i, "drain")).encode() for i in range(args.count)]
            began = time.perf_counter()
            _, _, bad = await blast(f"http://127.0.0.1:{bridge_port}/alertmanager/hook", bodies, args.concurrency)
            rc = rc or (1 if bad else 0)
            deadline = time.monotonic() + 120
            while True:
                messages = await robot_messages(robots_url, session)
                arrived = sum(m["text"].count("Benchdrain**") for m in messages if m["kind"] == "webhook")
                if arrived >= args.count or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            drain = time.perf_counter() - began
            ding = [m for m in messages if m["kind"] == "dingtalk"]
            rejected = [m for m in messages if m["code"] != 0]
        print(f"drain (receiver hook, robot unlimited): {arrived}/{args.count} at the robot {drain:.2f} s after the "
              f"first POST ({arrived / drain:.0f}/s)")
        print(f"receiver ding meanwhile: {len(ding)} signed DingTalk message(s) (merged, within 20/min), "
              f"robot rejections: {len(rejected)}")
        if arrived < args.count or rejected:
            rc = 1
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
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
