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
from marketplace_exporter.traffic.classify import MAX_BODY_BYTES, QUERY_ROUTED, Classifier, decoded
from marketplace_exporter.traffic.reporter import Reporter

Routed = tuple[Adapter, RouteMatch]
#: routes remembered per transport, by the URL's raw (scheme, host, port, path); paths carry ids,
#: so the memory is bounded (cleared when full: simple, and a miss costs only the lookup below)
ROUTE_CACHE_LIMIT = 2048


class _Observation:
    """Shared by the sync and async tees (which it is the base of: one object per call, not two):
    the bytes the caller's reads pulled through so far, and the one report at close."""

    __slots__ = ("_inner", "classifier", "reporter", "routed", "response", "start", "chunks", "size",
                 "complete", "reported")

    def __init__(self, inner: httpx.SyncByteStream | httpx.AsyncByteStream, classifier: Classifier,
                 reporter: Reporter, routed: Routed, response: httpx.Response, start: float) -> None:
        self._inner = inner
        self.classifier, self.reporter, self.routed = classifier, reporter, routed
        self.response, self.start = response, start
        self.chunks: list[bytes] = []
        self.size = 0
        self.complete = False
        self.reported = False

    def report(self) -> None:
        if self.reported:
            return
        self.reported = True
        try:
            response = self.response
            body = None
            if self.complete and self.size <= MAX_BODY_BYTES:
                body = decoded(b"".join(self.chunks), _content_encoding(response.headers))
            # httpx.Headers is a case-insensitive Mapping already: no copy
            self.reporter.add(self.classifier.response(self.routed, response.status_code, response.headers, body,
                                                       time.perf_counter() - self.start))
        except Exception:  # noqa: BLE001,S110 - reporting must never break the caller
            pass


class _TeeStream(_Observation, httpx.SyncByteStream):
    _inner: httpx.SyncByteStream

    def __iter__(self) -> Iterator[bytes]:
        chunks = self.chunks
        for chunk in self._inner:
            self.size += len(chunk)
            if self.size <= MAX_BODY_BYTES:
                chunks.append(chunk)
            yield chunk
        self.complete = True

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self.report()


class _AsyncTeeStream(_Observation, httpx.AsyncByteStream):
    _inner: httpx.AsyncByteStream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = self.chunks
        async for chunk in self._inner:
            self.size += len(chunk)
            if self.size <= MAX_BODY_BYTES:
                chunks.append(chunk)
            yield chunk
        self.complete = True

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self.report()


def _content_encoding(headers: httpx.Headers) -> str | None:
    """``headers.get("content-encoding")`` without its cost (it lower-cases and encodes the name,
    then builds a list of matches: over a microsecond, on every call): one pass over the parsed
    header list httpx keeps, names already lower-cased; the public lookup if that list changes."""
    try:
        values: list[bytes] = [value for _, key, value in headers._list if key == b"content-encoding"]
    except (AttributeError, ValueError, TypeError):
        found: str | None = headers.get("content-encoding")
        return found
    if not values:
        return None
    return ", ".join(value.decode("latin-1") for value in values)  # as httpx joins repeated headers


def _route(classifier: Classifier, request: httpx.Request) -> Routed | None:
    try:
        url = request.url
        return classifier.route(url.netloc.decode("ascii", "replace"), url.path,
                                url.query.decode("ascii", "replace"))
    except Exception:  # noqa: BLE001 - an unparseable URL is simply not reported
        return None


def _already_read(response: httpx.Response, classifier: Classifier, reporter: Reporter, routed: Routed,
                  start: float) -> bool:
    """A transport that hands back a response whose body it already read (``httpx.MockTransport``
    with ``content=``, a caching transport): nothing will flow through a tee, so report now from
    the decoded body it holds, and leave the stream alone."""
    if not response.is_stream_consumed:  # a stream, as a real transport gives: tee it
        return False
    try:
        try:
            body: bytes | None = response.content
        except httpx.ResponseNotRead:
            body = None  # consumed by the transport, not kept: the status decides
        if body is not None and len(body) > MAX_BODY_BYTES:
            body = None
        reporter.add(classifier.response(routed, response.status_code, response.headers, body,
                                         time.perf_counter() - start))
    except Exception:  # noqa: BLE001,S110 - reporting must never break the caller
        pass
    return True


class _Routes:
    """Per transport: which calls are marketplace calls, remembered by the URL's raw parts.

    ``url.netloc``, ``url.path`` (unquoting) and ``url.query`` build new values on every access;
    the parsed parts httpx already holds do not. A miss asks :func:`_route` (so the labels are
    the same); paths whose operation is named by the query string are never remembered."""

    __slots__ = ("_classifier", "_known")

    def __init__(self, classifier: Classifier) -> None:
        self._classifier = classifier
        self._known: dict[tuple[str, str, int | None, str], Routed | None] = {}

    def __call__(self, request: httpx.Request) -> Routed | None:
        try:
            parts = request.url._uri_reference
            key = (parts.scheme, parts.host, parts.port, parts.path)
        except AttributeError:  # another httpx: the public way, every time
            return _route(self._classifier, request)
        try:
            return self._known[key]
        except KeyError:
            pass
        routed = _route(self._classifier, request)
        if not key[3].endswith(QUERY_ROUTED):
            if len(self._known) >= ROUTE_CACHE_LIMIT:
                self._known.clear()
            self._known[key] = routed
        return routed


class TrafficTransport(httpx.BaseTransport):
    """Wraps ``transport`` (default: a plain ``httpx.HTTPTransport()``)."""

    def __init__(self, reporter: Reporter, *, account: str, site: str | None = None,
                 base_urls: Mapping[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._inner = transport if transport is not None else httpx.HTTPTransport()
        self._reporter = reporter
        self._classifier = Classifier(account=account, site=site, base_urls=base_urls)
        self._route = _Routes(self._classifier)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        routed = self._route(request)
        if routed is None:
            return self._inner.handle_request(request)
        start = time.perf_counter()
        try:
            response = self._inner.handle_request(request)
        except Exception as exc:
            self._reporter.add(self._classifier.failure(routed, exc, time.perf_counter() - start))
            raise
        if _already_read(response, self._classifier, self._reporter, routed, start):
            return response
        stream = response.stream
        if isinstance(stream, httpx.SyncByteStream):
            response.stream = _TeeStream(stream, self._classifier, self._reporter, routed, response, start)
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
        self._route = _Routes(self._classifier)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        routed = self._route(request)
        if routed is None:
            return await self._inner.handle_async_request(request)
        start = time.perf_counter()
        try:
            response = await self._inner.handle_async_request(request)
        except Exception as exc:
            self._reporter.add(self._classifier.failure(routed, exc, time.perf_counter() - start))
            raise
        if _already_read(response, self._classifier, self._reporter, routed, start):
            return response
        stream = response.stream
        if isinstance(stream, httpx.AsyncByteStream):
            response.stream = _AsyncTeeStream(stream, self._classifier, self._reporter, routed, response, start)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
