"""What basic auth from ``--web.config.file`` costs a scrape, and what it costs the event loop.

A bcrypt check at cost 10 (what ``htpasswd -nBC 10`` writes, exporter-toolkit's example) takes
~70 ms of CPU on a desktop and more on a loaded host. The gate runs it in a worker thread and
caches each outcome, as exporter-toolkit caches it. Printed beside the reference (the same
exporter without a web config, and the bcrypt check alone):

* request latency without a web config, with basic auth (first request: one bcrypt; then cached);
* the event loop's longest stall while 20 requests with a new wrong password each are checked
  (a probe due then would be late by that much; bcrypt on the loop would stall ~bcrypt x 20).

Prints, asserts nothing. ``.venv/bin/python bench/web_auth.py``
"""

from __future__ import annotations

import asyncio
import base64
import logging
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import bcrypt
from aiohttp import web

from marketplace_exporter.server import ConfigSource, create_app
from marketplace_exporter.webserver.listener import Listener
from marketplace_exporter.webserver.options import WebOptions

PASSWORD = b"bench-password"
ROUNDS = 200


def header(password: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(b"prometheus:" + password).decode()}


async def serve(directory: Path, web_config: str | None) -> tuple[web.AppRunner, str]:
    (directory / "config.yml").write_text("{}\n")
    path = None
    if web_config is not None:
        path = str(directory / "web.yml")
        Path(path).write_text(web_config)
    source = ConfigSource(str(directory / "config.yml"))
    listener = Listener.prepare(WebOptions(config_file=path))
    runner = web.AppRunner(listener.wrap(create_app(source, source.load(), storage_path=str(directory))))
    await listener.start(runner, "127.0.0.1:0", "--web.listen-address")
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/-/healthy"


async def latencies(url: str, headers: dict[str, str], rounds: int) -> list[float]:
    out = []
    async with aiohttp.ClientSession() as session:
        for _ in range(rounds):
            start = time.perf_counter()
            async with session.get(url, headers=headers) as response:
                await response.read()
            out.append(time.perf_counter() - start)
    return out


async def longest_stall(work: asyncio.Future[None]) -> float:
    """The longest gap between 1 ms ticks of the loop while ``work`` runs."""
    worst, last = 0.0, time.perf_counter()
    while not work.done():
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        worst, last = max(worst, now - last - 0.001), now
    return worst


async def main() -> None:
    hashed = bcrypt.hashpw(PASSWORD, bcrypt.gensalt(10)).decode()
    start = time.perf_counter()
    bcrypt.checkpw(PASSWORD, hashed.encode())
    one_check = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as plain_dir, tempfile.TemporaryDirectory() as auth_dir:
        plain, plain_url = await serve(Path(plain_dir), None)
        guarded, auth_url = await serve(Path(auth_dir), f"basic_auth_users:\n  prometheus: '{hashed}'\n")
        try:
            base = await latencies(plain_url, {}, ROUNDS)
            first = await latencies(auth_url, header(PASSWORD), 1)
            cached = await latencies(auth_url, header(PASSWORD), ROUNDS)

            async def wrong_passwords() -> None:
                async with aiohttp.ClientSession() as session:
                    await asyncio.gather(*(session.get(auth_url, headers=header(b"wrong-%d" % n)) for n in range(20)))

            work = asyncio.ensure_future(wrong_passwords())
            stall = await longest_stall(work)
            await work
        finally:
            await guarded.cleanup()
            await plain.cleanup()
    print(f"bcrypt cost 10, one check in this process:       {one_check * 1000:7.1f} ms  (reference: "
          "exporter-toolkit docs ~70 ms)")
    print(f"GET /-/healthy, no web config (median of {ROUNDS}):    {statistics.median(base) * 1000:7.2f} ms")
    print(f"GET /-/healthy, basic auth, first request:        {first[0] * 1000:7.2f} ms  (one bcrypt, in a thread)")
    print(f"GET /-/healthy, basic auth, cached (median):      {statistics.median(cached) * 1000:7.2f} ms")
    print(f"event loop's longest stall, 20 new wrong passwords: {stall * 1000:5.1f} ms  (bcrypt on the loop: "
          f"~{one_check * 20 * 1000:.0f} ms)")


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)  # the empty config's start-up warnings are not the point
    asyncio.run(main())
