"""``GET /metrics``: the cached probe families, then the features' own collectors, streamed.

The probe families come from exposition.py (rendered text per check, kept current in the
background as results land; a scrape renders what changed in the last second, in batches that
yield to the event loop, then writes bytes). The features (accounts files, deploys, traffic, the
verification gate, OTLP) keep prometheus_client collectors in ``core.registry``: their families
are small and are written after the cached ones. The registry also holds a collector that
only *describes* the probe families, so a feature registering a clashing name fails at start-up
(prometheus_client's duplicate check) and the response never carries a family twice.

Compression: gzip when the scraper accepts it (Prometheus does), at level 1 (metrics text
compresses about 10x even so, at several times level 6's speed), in a worker thread: zlib releases
the GIL, so compressing tens of MB never stalls probes.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Callable, Iterable
from typing import cast

from aiohttp import hdrs, web
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE
from prometheus_client.registry import Collector

from marketplace_exporter import __version__
from marketplace_exporter.core import Core
from marketplace_exporter.exposition import FAMILIES, Exposition
from marketplace_exporter.metric_families import empty_family

EXPOSITION = web.AppKey("exposition", Exposition)
FEATURE_REGISTRY = web.AppKey("feature_registry", CollectorRegistry)
#: pieces smaller than this are compressed on the loop (a thread hop costs more than the work)
THREAD_MIN_BYTES = 64 * 1024
generate_openmetrics = cast(Callable[[CollectorRegistry], bytes], openmetrics.generate_latest)
GZIP_LEVEL = 1


class _ProbeNames(Collector):
    """Describes the exposition's families and collects nothing: reserves their names in the registry."""

    def describe(self) -> Iterable[Metric]:
        return [empty_family(spec) for spec in FAMILIES]

    def collect(self) -> Iterable[Metric]:
        return ()


def feature_registry() -> CollectorRegistry:
    """The registry features add their collectors to (``core.registry``), the exposition's family
    names already taken."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_ProbeNames())
    return registry


def wants_openmetrics(accept: str) -> bool:
    """prometheus_client's negotiation: the first of OpenMetrics or text/plain named in ``Accept``."""
    for accepted in accept.split(","):
        media = accepted.split(";")[0].strip()
        if media == "application/openmetrics-text":
            return True
        if media == "text/plain":
            return False
    return False


def accepts_gzip(accept_encoding: str) -> bool:
    for coding in accept_encoding.split(","):
        name, _, params = coding.partition(";")
        if name.strip().lower() == "gzip":
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


async def metrics(request: web.Request) -> web.StreamResponse:
    exposition = request.app[EXPOSITION]
    openmetrics = wants_openmetrics(",".join(request.headers.getall(hdrs.ACCEPT, [])))
    gzip = accepts_gzip(request.headers.get(hdrs.ACCEPT_ENCODING, ""))
    await exposition.refresh()
    response = web.StreamResponse(headers={
        hdrs.CONTENT_TYPE: OPENMETRICS_CONTENT_TYPE if openmetrics else CONTENT_TYPE_PLAIN_0_0_4,
        hdrs.VARY: hdrs.ACCEPT_ENCODING + ", " + hdrs.ACCEPT})
    if gzip:
        response.headers[hdrs.CONTENT_ENCODING] = "gzip"
    # app.py's middleware sets Server after the handler returns: too late for a streamed response
    response.headers[hdrs.SERVER] = f"marketplace-exporter/{__version__}"
    await response.prepare(request)
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS) if gzip else None

    async def send(data: bytes) -> None:
        if compressor is not None:
            data = (await asyncio.to_thread(compressor.compress, data) if len(data) >= THREAD_MIN_BYTES
                    else compressor.compress(data))
        if data:
            await response.write(data)
        # write() suspends only when the socket's buffer is full: a fast reader (curl, Prometheus
        # on loopback) would get all 128 MB of a 50k-check scrape in one stretch of the loop
        # (a 100 ms stall measured by bench/scale.py); one piece (~256 KB) per loop turn instead
        await asyncio.sleep(0)

    for chunk in exposition.chunks(openmetrics):
        await send(chunk)
    registry = request.app[FEATURE_REGISTRY]
    await send(generate_openmetrics(registry) if openmetrics else generate_latest(registry))
    if compressor is not None:
        await response.write(compressor.flush())
    await response.write_eof()
    return response


def install(core: Core, app: web.Application) -> None:
    """Serve ``/metrics``: the store's families, then the features' collectors in ``core.registry``;
    while the app runs, the exposition is kept rendered as results land."""
    exposition = app[EXPOSITION] = Exposition(core.store)
    app[FEATURE_REGISTRY] = core.registry
    app.router.add_get("/metrics", metrics)

    async def renderer(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(exposition.keep_current(), name="exposition renderer")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    app.cleanup_ctx.append(renderer)


__all__ = ["EXPOSITION", "accepts_gzip", "feature_registry", "install", "wants_openmetrics"]
