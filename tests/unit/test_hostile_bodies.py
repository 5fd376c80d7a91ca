"""Hostile and broken upstream answers are classified, with memory bounded by ``max_body_bytes``.

One local aiohttp server plays every hostile upstream; a tiny adapter probes ``{base_url}/{name}``
through the real runner and transport (the engine's deadline included), so what is pinned here is
what a probe does. Memory is measured with tracemalloc around the probe: the body limit is 1 MiB
and every bomb inflates to 64 MiB, so "flat" means a peak a few MiB, not tens.
"""

from __future__ import annotations

import asyncio
import tracemalloc
import zlib
from collections.abc import AsyncIterator
from typing import ClassVar

import pytest
from aiohttp import web

from marketplace_exporter.adapters.base import NoParams, ProbeContext, ProbeSteps
from marketplace_exporter.catalogue import Reason, Step
from marketplace_exporter.config import CheckSpec
from marketplace_exporter.engine.runner import ProbeRunner
from marketplace_exporter.engine.transport import ACCEPT_ENCODING, new_session
from marketplace_exporter.model import HttpResponse, Operation, ProbeOutcome, RequestSpec
from marketplace_exporter.store import ProbeRecord

MIB = 1 << 20
LIMIT = MIB
BOMB_MIB = 64
#: a probe's peak allocation may not grow with the bomb: the limit plus buffers, far below 64 MiB
FLAT_PEAK = 8 * MIB


def _bomb(wbits: int) -> bytes:
    """64 MiB of zeros compressed (~64 KiB): gzip (31), zlib deflate (15) or raw deflate (-15)."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = bytes(MIB)
    return b"".join(deflater.compress(block) for _ in range(BOMB_MIB)) + deflater.flush()


GZIP_BOMB, DEFLATE_BOMB, RAW_DEFLATE_BOMB = _bomb(31), _bomb(15), _bomb(-15)


class PathAdapter:
    """GETs ``{base_url}/{operation}``; any status below 400 is a success carrying the body size."""

    name: ClassVar[str] = "hostile"
    operations: ClassVar[dict[str, Operation]] = {}
    known_codes: ClassVar[frozenset[str]] = frozenset()
    sites: ClassVar[frozenset[str]] = frozenset({"XX"})
    Credentials = NoParams
    Params = NoParams

    def probe(self, ctx: ProbeContext[NoParams, NoParams]) -> ProbeSteps:
        path, _, token_path = ctx.operation.partition("+token:")
        if token_path:  # a token exchange first: the same transport, the same limit
            yield RequestSpec("POST", f"{ctx.base_url}/{token_path}", step=Step.TOKEN)
        response: HttpResponse = yield RequestSpec("GET", f"{ctx.base_url}/{path}")
        if response.status < 400:
            return ProbeOutcome.ok(response.status, values=(("body_bytes", float(len(response.body))),))
        return ProbeOutcome.failed(Reason.SERVER_ERROR, "error status", http_status=response.status)


def _spec(base_url: str, path: str, timeout: float = 1.0) -> CheckSpec:
    adapter = PathAdapter()
    return CheckSpec(
        marketplace="hostile", site="XX", account="a1", name=path, adapter=adapter,  # type: ignore[arg-type]
        operation=Operation(path, path), interval=60.0, timeout=timeout, jitter=0.0, quota_budget=0.5,
        tags=(), base_url=base_url, auth_url=None, sandbox=False, credentials=None, params=NoParams(),
        fingerprint=path)


async def _dribble(request: web.Request) -> web.StreamResponse:
    """Slowloris: headers at once, then one byte every 50 ms for ever."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    for _ in range(10_000):
        await response.write(b" ")
        await asyncio.sleep(0.05)
    return response


async def _lying_short(request: web.Request) -> web.StreamResponse:
    """Announces 1,000 bytes, sends 10, closes."""
    response = web.StreamResponse(headers={"Content-Length": "1000"})
    await response.prepare(request)
    await response.write(b"0123456789")
    assert request.transport is not None
    request.transport.close()
    return response


async def _raw(request: web.Request, head: bytes) -> web.StreamResponse:
    """Write ``head`` (status line, headers, maybe a body) straight onto the socket and close it."""
    assert request.transport is not None
    request.transport.write(head)
    request.transport.close()
    return web.Response()  # never sent: the transport is closed


async def _huge(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    block = b" " * 65536
    try:
        for _ in range(BOMB_MIB * 16):
            await response.write(block)
    except ConnectionError:
        pass  # the probe stopped reading at the limit and closed the connection
    return response


async def _encoded(request: web.Request, body: bytes, encoding: str, *, chunked: bool = False) -> web.StreamResponse:
    """``body`` as is, labelled ``Content-Encoding: encoding``: with a Content-Length, or chunked."""
    headers = {"Content-Encoding": encoding, "Content-Type": "application/json"}
    if not chunked:
        return web.Response(body=body, headers=headers)
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    for start in range(0, len(body), 4096):
        await response.write(body[start:start + 4096])
    await response.write_eof()
    return response


@pytest.fixture(scope="module")
def counted() -> dict[str, int]:
    return {}


@pytest.fixture
async def upstream(aiohttp_server: object, counted: dict[str, int]) -> AsyncIterator[str]:
    small = zlib.compressobj(6, zlib.DEFLATED, 31)
    encoded: dict[str, tuple[bytes, str]] = {
        "gzip-bomb": (GZIP_BOMB, "gzip"), "gzip-bomb-chunked": (GZIP_BOMB, "gzip"),
        "deflate-bomb": (DEFLATE_BOMB, "deflate"), "raw-deflate-bomb": (RAW_DEFLATE_BOMB, "deflate"),
        "small-gzip": (small.compress(b'{"ok": true}') + small.flush(), "gzip"),
        "unasked-br": (b"\x8b\x02\x80not brotli at all", "br"),
    }

    async def handle(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        counted[name] = counted.get(name, 0) + 1
        if name in encoded:
            return await _encoded(request, *encoded[name], chunked=name.endswith("-chunked"))
        if name == "accept-encoding":
            return web.Response(text=request.headers.get("Accept-Encoding", ""))
        if name == "redirect":
            raise web.HTTPFound("/landing")
        if name == "landing":
            return web.Response(text="followed")
        if name == "dribble":
            return await _dribble(request)
        if name == "lying-short":
            return await _lying_short(request)
        if name == "lying-huge":
            return await _raw(request, b"HTTP/1.1 200 OK\r\nContent-Length: 5000000000\r\n\r\n{}")
        if name == "big-headers":
            return await _raw(request, b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
        if name == "reset":
            return await _raw(request, b"")
        if name == "huge-chunked":  # 64 MiB unencoded, chunked, written as long as it is read
            return await _huge(request)
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_route("*", "/{name}", handle)
    server = await aiohttp_server(app)  # type: ignore[operator]
    yield f"http://127.0.0.1:{server.port}"


async def _probe(base_url: str, path: str, timeout: float = 1.0) -> tuple[ProbeRecord, int]:
    """One probe through the real runner; (record, peak bytes allocated while it ran)."""
    async with new_session(limit=4) as session:
        runner = ProbeRunner(session, max_body_bytes=LIMIT, concurrency_per_host=4)
        tracemalloc.start()
        try:
            record = await runner.run(_spec(base_url, path, timeout))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return record, peak


@pytest.mark.parametrize("path", ["gzip-bomb", "deflate-bomb", "raw-deflate-bomb", "gzip-bomb-chunked",
                                  "small-gzip+token:gzip-bomb"])
async def test_a_compression_bomb_is_invalid_response_with_flat_memory(upstream: str, path: str) -> None:
    """Regression (issue 14), fails on the old transport for the three answers with a
    Content-Length: the limit was checked on the compressed size, so a 64 KiB gzip answer was
    inflated whole (64 MiB handed to the adapter, ~141 MiB peak). The chunked bomb was already cut
    (it is kept so that neither path regresses). Token exchanges go through the same transport."""
    record, peak = await _probe(upstream, path)
    assert record.outcome.reason is Reason.INVALID_RESPONSE, record.outcome
    assert "exceeds the 1048576-byte limit once decoded" in record.outcome.message
    assert peak < FLAT_PEAK, f"{peak / MIB:.1f} MiB allocated for a {LIMIT // MIB} MiB limit"


async def test_a_small_compressed_body_is_decoded_and_the_session_asks_only_for_what_is_bounded(
        upstream: str) -> None:
    record, _ = await _probe(upstream, "small-gzip")
    assert record.outcome.success and dict(record.outcome.values) == {"body_bytes": 12.0}
    async with new_session(limit=1) as session, session.get(f"{upstream}/accept-encoding") as response:
        assert await response.text() == ACCEPT_ENCODING == "gzip, deflate"


async def test_an_encoding_nobody_asked_for_is_invalid_response(upstream: str) -> None:
    record, _ = await _probe(upstream, "unasked-br")
    assert record.outcome.reason is Reason.INVALID_RESPONSE


async def test_redirects_are_never_followed(upstream: str, counted: dict[str, int]) -> None:
    """A redirect is the upstream's answer (a moved API is news), never a request elsewhere:
    following one would let a hostile upstream point the exporter, with its headers, anywhere."""
    before = counted.get("landing", 0)
    record, _ = await _probe(upstream, "redirect")
    assert record.outcome.http_status == 302 and counted.get("landing", 0) == before


async def test_a_server_dribbling_bytes_is_cut_by_the_probe_deadline(upstream: str) -> None:
    record, peak = await _probe(upstream, "dribble", timeout=0.4)
    assert record.outcome.reason is Reason.TIMEOUT
    assert record.duration < 2.0  # the deadline, not the dribble (200 s), ended it
    assert peak < FLAT_PEAK


@pytest.mark.parametrize(("path", "reason"), [
    ("lying-short", Reason.INVALID_RESPONSE),  # Content-Length 1000, 10 bytes, close
    ("lying-huge", Reason.INVALID_RESPONSE),  # Content-Length 5 GB: refused unread
    ("big-headers", Reason.INVALID_RESPONSE),  # a 200 KB header line
    ("reset", Reason.CONNECT),  # closed without a response
    ("huge-chunked", Reason.INVALID_RESPONSE),  # 64 MiB with no Content-Length: cut at the limit
])
async def test_broken_answers_are_classified_with_flat_memory(upstream: str, path: str, reason: Reason) -> None:
    record, peak = await _probe(upstream, path)
    assert record.outcome.reason is reason, record.outcome
    assert peak < FLAT_PEAK
