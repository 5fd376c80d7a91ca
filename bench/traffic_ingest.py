"""Ingest for bench/traffic_overhead.py: the exporter's real app in a child process on loopback,
pre-encoded batches of 1,000 records POSTed flat out (``wrk``, or aiohttp senders without it);
prints records per second of wall time and of the exporter's own CPU.

Run as a script (``CONFIG``), it is that child: the exporter, printing its port, until killed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time

import aiohttp
from aiohttp import web

from marketplace_exporter.server import ConfigSource, create_app

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
    child = subprocess.Popen([sys.executable, __file__, handle.name], stdout=subprocess.PIPE, text=True)
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


if __name__ == "__main__":
    serve_exporter(sys.argv[1])
