"""aiohttp ≥ 3.12: a client middleware that reports every marketplace call of a ``ClientSession``.

To install::

    session = aiohttp.ClientSession(middlewares=[traffic_middleware(reporter, account="sg-main")],
                                    response_class=TrafficClientResponse)

(``response_class`` is optional: without it, or with a response class of your own, each answer's
class is switched to an observed subclass of it, which works the same and costs 2-5 µs more.)

Why a middleware and not :func:`~marketplace_exporter.traffic.aiohttp_trace.traffic_trace_config`:
any ``TraceConfig`` switches on aiohttp's tracing machinery for every request (a trace context,
``Trace`` objects, a signal per step, per connection reuse), about 14 µs per call before a hook
does anything. A middleware is one coroutine around the send.

What it sees: the middleware wraps one attempt (connect, send, status and headers). A transport
error is reported (``connect``/``tls``/``timeout``) and re-raised untouched; a stale keep-alive
connection that aiohttp retries by itself is not an error (the retry's outcome is reported, timed
from the first attempt). An answer's response object gets a subclass of its own class (same
layout, no copy) whose ``read()`` (which ``json()`` and ``text()`` use) reports the call with the
body the caller read: Shopee-style errors in HTTP 200 bodies are seen. A body the caller never
reads (streamed, or ignored) is reported from the status and headers when the response is
released or closed (the end of ``async with``), or when it is garbage-collected. Nothing here ever
reads a body itself, and nothing here raises into the caller.

Differences from the TraceConfig hook: a redirect hop is reported as its own call (its 3xx status),
and an unread body is reported at release instead of 2 s after the headers. A call the caller
cancels (``asyncio.timeout``, ``wait_for``) is reported as ``timeout``: the caller gave up waiting.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from marketplace_exporter.adapters import Adapter
from marketplace_exporter.adapters.base import RouteMatch
from marketplace_exporter.traffic.classify import MAX_BODY_BYTES, Classifier
from marketplace_exporter.traffic.reporter import Reporter

if TYPE_CHECKING:  # aiohttp >= 3.12; the module itself imports on older aiohttp too
    from aiohttp import ClientHandlerType, ClientMiddlewareType

Routed = tuple[Adapter, RouteMatch]

#: the methods aiohttp retries once on a dropped keep-alive connection (aiohttp.client.IDEMPOTENT_METHODS)
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
#: a failed first attempt that aiohttp is about to retry: ((method, url), start), per task
_RETRYING: contextvars.ContextVar[tuple[tuple[str, URL], float] | None] = contextvars.ContextVar(
    "marketplace_traffic_retrying", default=None)


class _Call:
    """Per answered attempt: what the report needs, kept on the response (not the response itself)."""

    __slots__ = ("classifier", "reporter", "routed", "start", "headers_at", "reported")

    def __init__(self, classifier: Classifier, reporter: Reporter, routed: Routed, start: float,
                 headers_at: float) -> None:
        self.classifier, self.reporter, self.routed = classifier, reporter, routed
        self.start, self.headers_at = start, headers_at
        self.reported = False

    def report(self, response: aiohttp.ClientResponse, body: bytes | None, end: float) -> None:
        if self.reported:
            return
        self.reported = True
        try:
            if body is not None and len(body) > MAX_BODY_BYTES:
                body = None
            # a CIMultiDictProxy is a case-insensitive Mapping already: no copy
            self.reporter.add(self.classifier.response(self.routed, response.status, response.headers, body,
                                                       end - self.start))
        except Exception:  # noqa: BLE001,S110 - reporting must never break the caller
            pass


class _Observed:
    """Marks the response classes made by :func:`_observed_class`."""

    #: the call an answer belongs to; set on the instance by the middleware
    _traffic_call: _Call | None = None


_OBSERVED: dict[type, type] = {}


def _observed_class(base: type[aiohttp.ClientResponse]) -> type[aiohttp.ClientResponse]:
    """``base`` with ``read()`` reporting the body the caller read, and ``release()``, ``close()``
    and the finaliser reporting an unread one from status and headers. No slots of its own, so an
    answer's ``__class__`` can be switched to it in place; one class per response class, made
    once. The base methods are bound here, not looked up through ``super()`` on every call."""
    cls = _OBSERVED.get(base)
    if cls is not None:
        return cls
    base_read, base_release, base_close = base.read, base.release, base.close
    base_del = getattr(base, "__del__", None)

    async def read(self: aiohttp.ClientResponse) -> bytes:
        body = await base_read(self)
        call: _Call | None = self._traffic_call  # type: ignore[attr-defined]
        if call is not None and not call.reported:
            call.report(self, body, time.perf_counter())
        return body

    def release(self: aiohttp.ClientResponse) -> Any:
        call: _Call | None = self._traffic_call  # type: ignore[attr-defined]
        if call is not None and not call.reported:
            call.report(self, None, call.headers_at)
        return base_release(self)

    def close(self: aiohttp.ClientResponse) -> None:
        call: _Call | None = self._traffic_call  # type: ignore[attr-defined]
        if call is not None and not call.reported:
            call.report(self, None, call.headers_at)
        base_close(self)

    def finalise(self: aiohttp.ClientResponse, *args: Any) -> None:
        call: _Call | None = self._traffic_call  # type: ignore[attr-defined]
        if call is not None and not call.reported:
            call.report(self, None, call.headers_at)  # never raises
        if base_del is not None:
            base_del(self, *args)

    cls = _OBSERVED[base] = type(f"Traffic{base.__name__}", (_Observed, base),
                                 {"__module__": __name__, "read": read, "release": release, "close": close,
                                  "__del__": finalise})
    return cls


#: pass as ``ClientSession(response_class=...)`` beside the middleware: answers are then made
#: observed, instead of having their class switched after the fact (which costs 2-5 µs per call: on
#: CPython 3.11 an object whose class was switched loses the interpreter's attribute fast paths)
TrafficClientResponse: type[aiohttp.ClientResponse] = _observed_class(aiohttp.ClientResponse)


def _will_retry(request: aiohttp.ClientRequest, error: BaseException) -> bool:
    """Whether aiohttp is about to retry this attempt by itself (a dropped keep-alive connection
    under an idempotent method; aiohttp.client's own rule), so its error is not the call's."""
    if not isinstance(error, (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
        return False
    if isinstance(error, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)):
        return False
    session = getattr(request, "_session", None)
    if request.method not in _IDEMPOTENT or not getattr(session, "_retry_connection", False):
        return False
    body = getattr(request, "_body", None)
    return not getattr(body, "consumed", False)


def traffic_middleware(reporter: Reporter, *, account: str, site: str | None = None,
                       base_urls: Mapping[str, str] | None = None) -> ClientMiddlewareType:
    """A client middleware for one client instance (``account``: its configured alias). Pass it in
    ``ClientSession(middlewares=[...])`` (first in the list, so its timing covers the others)."""
    classifier = Classifier(account=account, site=site, base_urls=base_urls)

    def failed(routed: Routed, error: BaseException, start: float) -> None:
        try:
            reporter.add(classifier.failure(routed, error, time.perf_counter() - start))
        except Exception:  # noqa: BLE001,S110 - reporting must never break the caller
            pass

    async def middleware(request: aiohttp.ClientRequest, handler: ClientHandlerType) -> aiohttp.ClientResponse:
        try:
            url = request.url
            host = url.raw_host or ""
            routed = classifier.route(host if url.explicit_port is None else f"{host}:{url.explicit_port}",
                                      url.raw_path, url.raw_query_string)
        except Exception:  # noqa: BLE001 - an odd URL is simply not reported
            routed = None
        if routed is None:
            response: aiohttp.ClientResponse = await handler(request)
            return response
        start = time.perf_counter()
        retrying = _RETRYING.get()
        first = True
        if retrying is not None:
            _RETRYING.set(None)
            if retrying[0] == (request.method, request.url):
                start, first = retrying[1], False
        try:
            response = await handler(request)
        except asyncio.CancelledError:
            failed(routed, TimeoutError(), start)  # aiohttp's total timeout, or the caller's own
            raise
        except Exception as exc:
            if first and _will_retry(request, exc):
                _RETRYING.set(((request.method, request.url), start))
            else:
                failed(routed, exc, start)
            raise
        call = _Call(classifier, reporter, routed, start, time.perf_counter())
        try:
            if not isinstance(response, _Observed):  # not made by TrafficClientResponse: observe it
                response.__class__ = _observed_class(type(response))
            response._traffic_call = call  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - an incompatible response class: the status decides now
            call.report(response, None, call.headers_at)
        return response

    return middleware
