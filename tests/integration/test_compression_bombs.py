"""Four checks answered by gzip/deflate bombs cannot hurt the exporter or a healthy check elsewhere.

Issue 14: the body limit was checked on the compressed length, so four hostile checks took the
exporter from 57 MiB to 1,353 MiB, stalled ``/-/healthy`` for 3.6 s, and eight gave a healthy
check on another host three false timeouts. Here the real app (create_app, generic HTTP checks)
probes four bombs (64 MiB inflated from 64 KiB, with a Content-Length, the path that was open)
every 250 ms and a healthy target on another port every 500 ms, for about three seconds, while
``/-/healthy`` is polled. Memory is traced for the whole run: the limit is 1 MiB per probe, so the
peak stays a few MiB where the old transport held 64 MiB per bomb probe in flight.
"""

from __future__ import annotations

import asyncio
import tracemalloc
import zlib
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from stacklib import Stack, value

from marketplace_exporter.server import ConfigSource, create_app

MIB = 1 << 20
#: four probes in flight at 1 MiB each, plus buffers and everything else the app allocates meanwhile
PEAK_LIMIT = 48 * MIB


def _bomb(wbits: int) -> bytes:
    deflater = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return b"".join(deflater.compress(bytes(MIB)) for _ in range(64)) + deflater.flush()


async def _serve(app: web.Application) -> TestServer:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def test_bombs_are_invalid_response_while_memory_healthy_checks_and_health_stay_fine(tmp_path: Path) -> None:
    """Regression: fails on the old transport (each bomb probe inflated to 64 MiB: the traced peak
    passes the limit several times over, and the bombs were not even classified)."""
    bombs = {"gzip": _bomb(31), "deflate": _bomb(15)}

    async def bomb(request: web.Request) -> web.Response:
        encoding = request.match_info["encoding"]
        return web.Response(body=bombs[encoding], headers={"Content-Encoding": encoding,
                                                           "Content-Type": "application/json"})

    hostile_app, healthy_app = web.Application(), web.Application()
    hostile_app.router.add_get("/{encoding}/{n}", bomb)
    healthy_app.router.add_get("/health", lambda request: web.json_response({"status": "ok"}))
    hostile, healthy = await _serve(hostile_app), await _serve(healthy_app)
    checks = "".join(f"  - {{name: bomb-{encoding}-{n}, url: 'http://127.0.0.1:{hostile.port}/{encoding}/{n}', "
                     "interval: 250ms, timeout: 250ms}\n" for encoding in bombs for n in (1, 2))
    config = tmp_path / "config.yml"
    config.write_text(f"http_checks:\n{checks}  - {{name: healthy, url: 'http://127.0.0.1:{healthy.port}/health', "
                      "interval: 500ms, timeout: 500ms}\n")
    source = ConfigSource(str(config))
    exporter = await _serve(create_app(source, source.load(), storage_path=str(tmp_path)))
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            stack = Stack(f"http://127.0.0.1:{exporter.port}", "", session)
            tracemalloc.start()
            try:
                for _ in range(30):  # ~3 s: /-/healthy answers all along (2 s client timeout)
                    async with session.get(f"{stack.exporter}/-/healthy") as response:
                        assert response.status == 200
                    await asyncio.sleep(0.1)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            samples = await stack.samples()
    finally:
        await exporter.close()
        await hostile.close()
        await healthy.close()
    assert peak < PEAK_LIMIT, f"{peak / MIB:.1f} MiB traced while four bombs were probed"
    for encoding in bombs:
        labels = {"marketplace": "http", "check": f"bomb-{encoding}-1"}
        assert (value(samples, "marketplace_probe_failures_total", **labels, reason="invalid_response") or 0) >= 3
    healthy_labels = {"marketplace": "http", "check": "healthy"}
    assert (value(samples, "marketplace_probes_total", **healthy_labels) or 0) >= 4
    assert value(samples, "marketplace_probe_failures_total", **healthy_labels, reason="timeout") is None
    assert value(samples, "marketplace_probe_success", **healthy_labels) == 1.0
