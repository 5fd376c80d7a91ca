"""aiohttp: a ``TraceConfig`` that reports every marketplace call of a ``ClientSession``.

For aiohttp 3.9 to 3.11. On aiohttp 3.12 and newer use
:func:`~marketplace_exporter.traffic.aiohttp_middleware.traffic_middleware` instead: any
``TraceConfig`` switches on aiohttp's tracing for every request (about 14 µs per call before this
hook runs), and the middleware costs about half of this hook in all (see docs/traffic.md "Cost").

One line to install::

    session = aiohttp.ClientSession(trace_configs=[traffic_trace_config(reporter, account="sg-main")])

aiohttp signals the end of a request when the headers arrive, before the caller reads the body;
its ``read()`` (which ``json()`` and ``text()`` use) then signals the whole body once. So a call is
reported when the caller reads the body (and classified with it: Shopee-style errors in HTTP 200
bodies are seen), or, if the caller streams or never reads it, :data:`UNREAD_AFTER` seconds after
the headers, from the status and headers alone. Nothing here ever reads a body itself.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from types import SimpleNamespace

import aiohttp
from yarl import URL

from marketplace_exporter.adapters import Adapter
from marketplace_exporter.adapters.base import RouteMatch
from marketplace_exporter.traffic.classify import MAX_BODY_BYTES, Classifier
from marketplace_exporter.traffic.reporter import Reporter

#: seconds after the headers after which an unread body is given up on (status-only report)
UNREAD_AFTER = 2.0


class _Call:
    """Per request: what the hooks learn, and the single report."""

    __slots__ = ("routed", "start", "status", "headers", "headers_at", "reported")

    def __init__(self, routed: tuple[Adapter, RouteMatch], start: float) -> None:
        self.routed = routed
        self.start = start
        #: from the response when its headers arrive; not the response itself, which holds the
        #: body, the connection and the event loop (a call may wait in the unread list)
        self.status = 0
        self.headers: Mapping[str, str] | None = None
        self.headers_at = start
        self.reported = False


class _Unread:
    """Answered calls of one event loop whose body is not read yet, oldest first, and ONE timer
    that reports those still unread :data:`UNREAD_AFTER` seconds after their headers.

    Not a timer per call: ``call_later`` pushes onto the loop's heap with Python-level comparisons,
    and the cancelled handle stays in that heap; at hundreds of calls per second that cost more
    than classifying the answer. Here a call costs one ``deque.append``."""

    __slots__ = ("_calls", "_report", "_scheduled")

    # no reference to the loop (nor to a timer handle, which holds one): this is the value of a
    # WeakKeyDictionary keyed by the loop, and must not keep a finished loop alive
    def __init__(self, report: Callable[[_Call, bytes | None, float], None]) -> None:
        self._calls: deque[_Call] = deque()
        self._report = report
        self._scheduled = False

    def add(self, call: _Call, loop: asyncio.AbstractEventLoop) -> None:
        self._calls.append(call)
        if not self._scheduled:
            self._scheduled = True
            loop.call_later(UNREAD_AFTER, self._sweep)

    def _sweep(self) -> None:
        self._scheduled = False
        now = time.perf_counter()
        calls = self._calls
        while calls:
            call = calls[0]
            due = call.headers_at + UNREAD_AFTER
            if due > now:
                # not at each due time (that is a timer per call again when calls are frequent):
                # an unread body is reported between UNREAD_AFTER and 1.5 x UNREAD_AFTER
                self._scheduled = True
                asyncio.get_running_loop().call_later(max(due - now, UNREAD_AFTER / 2), self._sweep)
                return
            calls.popleft()
            if not call.reported:
                self._report(call, None, call.headers_at - call.start)


def _netloc(url: URL) -> str:
    host = url.raw_host or ""
    return host if url.explicit_port is None else f"{host}:{url.explicit_port}"


def traffic_trace_config(reporter: Reporter, *, account: str, site: str | None = None,
                         base_urls: Mapping[str, str] | None = None) -> aiohttp.TraceConfig:
    """A TraceConfig for one client instance (``account``: its configured alias)."""
    classifier = Classifier(account=account, site=site, base_urls=base_urls)
    config = aiohttp.TraceConfig()
    #: per event loop (a config may serve sessions on several threads' loops)
    unread: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Unread] = weakref.WeakKeyDictionary()

    def report(call: _Call, body: bytes | None, duration: float) -> None:
        if call.reported or call.headers is None:
            return
        call.reported = True
        try:
            reporter.add(classifier.response(call.routed, call.status, call.headers, body, duration))
        except Exception:  # noqa: BLE001,S110 - reporting must never break the caller
            pass

    async def on_start(_: aiohttp.ClientSession, ctx: SimpleNamespace,
                       params: aiohttp.TraceRequestStartParams) -> None:
        try:
            url = params.url
            routed = classifier.route(_netloc(url), url.raw_path, url.raw_query_string)
        except Exception:  # noqa: BLE001 - an odd URL is simply not reported
            routed = None
        ctx.traffic = _Call(routed, time.perf_counter()) if routed is not None else None

    async def on_end(_: aiohttp.ClientSession, ctx: SimpleNamespace,
                     params: aiohttp.TraceRequestEndParams) -> None:
        call: _Call | None = getattr(ctx, "traffic", None)
        if call is None:
            return
        response = params.response
        call.status = response.status
        call.headers = response.headers  # a case-insensitive Mapping already: no copy
        call.headers_at = time.perf_counter()
        try:
            loop = asyncio.get_running_loop()
            pending = unread.get(loop)
            if pending is None:
                pending = unread[loop] = _Unread(report)
            pending.add(call, loop)
        except Exception:  # noqa: BLE001 - no loop: report now, from the status
            report(call, None, call.headers_at - call.start)

    async def on_body(_: aiohttp.ClientSession, ctx: SimpleNamespace,
                      params: aiohttp.TraceResponseChunkReceivedParams) -> None:
        call: _Call | None = getattr(ctx, "traffic", None)
        if call is None:
            return
        body = params.chunk if len(params.chunk) <= MAX_BODY_BYTES else None
        report(call, body, time.perf_counter() - call.start)

    async def on_error(_: aiohttp.ClientSession, ctx: SimpleNamespace,
                       params: aiohttp.TraceRequestExceptionParams) -> None:
        call: _Call | None = getattr(ctx, "traffic", None)
        if call is None or call.reported:
            return
        error = params.exception
        if type(error) is aiohttp.ClientResponseError and error.__cause__ is None and 100 <= error.status <= 599:
            # ``raise_for_status`` turned an answer into an error (before on_request_end): the
            # answer's status and headers decide, not a transport reason. (A malformed answer is a
            # ClientResponseError too, but raised from the parser's error: that one is transport.)
            call.status = error.status
            call.headers = error.headers if isinstance(error.headers, Mapping) else {}
            call.headers_at = time.perf_counter()
            report(call, None, call.headers_at - call.start)
            return
        call.reported = True
        try:
            reporter.add(classifier.failure(call.routed, params.exception, time.perf_counter() - call.start))
        except Exception:  # noqa: BLE001,S110 - reporting must never break the caller
            pass

    config.on_request_start.append(on_start)
    config.on_request_end.append(on_end)
    config.on_response_chunk_received.append(on_body)
    config.on_request_exception.append(on_error)
    return config
