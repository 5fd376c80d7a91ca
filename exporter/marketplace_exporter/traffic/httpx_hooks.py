"""httpx: a transport wrapper (sync and async) that reports every marketplace call.

One line to install::

    client = httpx.Client(transport=TrafficTransport(reporter, account="sg-main"))
    client = httpx.AsyncClient(transport=AsyncTrafficTransport(reporter, account="sg-main"))

Why a transport and not ``event_hooks``: a response hook runs before the body is read, so it could
not see Shopee-style errors inside HTTP 200 bodies. The wrapper tees the bytes the CALLER reads
(never reading anything itself) and reports when the response is closed: with ``client.get()`` that
is right after the body was read; a streamed response is reported when the caller closes it, from
what it read (up to 64 KiB; beyond, the status alone decides). Calls to hosts that are not a
marketplace pass straight through.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Mapping

import httpx

from marketplace_exporter.adapters import Adapter
from marketplace_exporter.adapters.base import RouteMatch
from marketplace_exporter.traffic.classify import MAX_BODY_BYTES, Classifier, decoded
from marketplace_exporter.traffic.reporter import Reporter

Routed = tuple[Adapter, RouteMatch]


class _Observation:
    """Shared by the sync and async tees: the bytes seen so far and the one report at close."""

    __slots__ = ("classifier", "reporter", "routed", "response", "start", "chunks", "size", "complete",
                 "reported")

    def __init__(self, classifier: Classifier, reporter: Reporter, routed: Routed,
                 response: httpx.Response, start: float) -> None:
        self.classifier, self.reporter, self.routed = classifier, reporter, routed
        self.response, self.start = response, start
        self.chunks: list[bytes] = []
        self.size = 0
        self.complete = False
        self.reported = False

    def seen(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size <= MAX_BODY_BYTES:
            self.chunks.append(chunk)

    def report(self) -> None:
        if self.reported:
            return
        self.reported = True
        try:
            response = self.response
            body = None
            if self.complete and self.size <= MAX_BODY_BYTES:
                body = decoded(b"".join(self.chunks), response.headers.get("content-encoding"))
            # httpx.Headers is a case-insensitive Mapping already: no copy
            self.reporter.add(self.classifier.response(self.routed, response.status_code, response.headers, body,
                                                       time.perf_counter() - self.start))
        except Exception:  # noqa: BLE001,S110 - reporting must never break the caller
            pass


class _TeeStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, seen: _Observation) -> None:
        self._inner, self._seen = inner, seen

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._seen.seen(chunk)
            yield chunk
        self._seen.complete = True

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._seen.report()


class _AsyncTeeStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, seen: _Observation) -> None:
        self._inner, self._seen = inner, seen

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._seen.seen(chunk)
            yield chunk
        self._seen.complete = True

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._seen.report()


def _route(classifier: Classifier, request: httpx.Request) -> Routed | None:
    try:
        url = request.url
        return classifier.route(url.netloc.decode("ascii", "replace"), url.path,
                                url.query.decode("ascii", "replace"))
    except Exception:  # noqa: BLE001 - an unparseable URL is simply not reported
        return None


class TrafficTransport(httpx.BaseTransport):
    """Wraps ``transport`` (default: a plain ``httpx.HTTPTransport()``)."""

    def __init__(self, reporter: Reporter, *, account: str, site: str | None = None,
                 base_urls: Mapping[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._inner = transport if transport is not None else httpx.HTTPTransport()
        self._reporter = reporter
        self._classifier = Classifier(account=account, site=site, base_urls=base_urls)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        routed = _route(self._classifier, request)
        if routed is None:
            return self._inner.handle_request(request)
        start = time.perf_counter()
        try:
            response = self._inner.handle_request(request)
        except Exception as exc:
            self._reporter.add(self._classifier.failure(routed, exc, time.perf_counter() - start))
            raise
        stream = response.stream
        if isinstance(stream, httpx.SyncByteStream):
            response.stream = _TeeStream(stream, _Observation(self._classifier, self._reporter, routed,
                                                              response, start))
        return response

    def close(self) -> None:
        self._inner.close()


class AsyncTrafficTransport(httpx.AsyncBaseTransport):
    """Wraps ``transport`` (default: a plain ``httpx.AsyncHTTPTransport()``)."""

    def __init__(self, reporter: Reporter, *, account: str, site: str | None = None,
                 base_urls: Mapping[str, str] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._inner = transport if transport is not None else httpx.AsyncHTTPTransport()
        self._reporter = reporter
        self._classifier = Classifier(account=account, site=site, base_urls=base_urls)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        routed = _route(self._classifier, request)
        if routed is None:
            return await self._inner.handle_async_request(request)
        start = time.perf_counter()
        try:
            response = await self._inner.handle_async_request(request)
        except Exception as exc:
            self._reporter.add(self._classifier.failure(routed, exc, time.perf_counter() - start))
            raise
        stream = response.stream
        if isinstance(stream, httpx.AsyncByteStream):
            response.stream = _AsyncTeeStream(stream, _Observation(self._classifier, self._reporter, routed,
                                                                   response, start))
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
