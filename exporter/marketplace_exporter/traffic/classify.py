"""One finished marketplace call in the seller's process → one traffic record of labels and numbers.

This runs on the caller's path (inside the HTTP client hook), so it is cheap and bounded: the host
picks the adapter, the adapter's own :meth:`~marketplace_exporter.adapters.base.Adapter.match` names
the operation and its own :meth:`~marketplace_exporter.adapters.base.Adapter.classify` reads status,
headers and (if the caller already read it, and it is small) the body, exactly as the probes do.

What leaves the process is only what :class:`TrafficRecord` holds: label values from bounded sets
(the adapter's sites, ``api_operations`` and ``known_codes``, the ``Reason`` set, the configured
account alias; anything else is ``other``) and numbers. Never a URL, a query string, a token, an id
or a byte of the body.
"""

from __future__ import annotations

import ssl
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

from marketplace_exporter.adapters import ADAPTERS, Adapter
from marketplace_exporter.adapters.base import RouteMatch
from marketplace_exporter.adapters.common import host_of
from marketplace_exporter.catalogue import Reason
from marketplace_exporter.labels import LABEL_VALUE_PATTERN, is_label_value

#: bodies larger than this are never looked at: the status and headers decide
MAX_BODY_BYTES = 64 * 1024
#: adapters that stand for a marketplace (the generic http and tls checks have no routes)
_MARKETPLACES: tuple[Adapter, ...] = tuple(a for a in ADAPTERS.values() if a.api_operations)
_ROUTE_CACHE_LIMIT = 4096
#: paths whose operation is named by the query string (AliExpress ``/sync?method=``): not cached
QUERY_ROUTED = ("/sync", "/sync/")
#: the label value for anything outside the bounded sets
OTHER = "other"


class TrafficRecord(NamedTuple):
    """One reported call. ``status`` 0: no response came back (``reason`` says why). A tuple: one
    is made per call on the caller's path, and a frozen dataclass costs four times as much to make."""

    marketplace: str
    site: str
    account: str
    operation: str
    status: int
    reason: str
    code: str
    duration: float
    #: rate-limit headroom 0..1 the platform reported on this answer, if it did
    ratelimit: float | None
    #: requests left in the rate-limit window the platform reported (Walmart x-current-token-count)
    remaining: float | None = None

    def wire(self) -> dict[str, object]:
        """The JSON object sent to ``POST /api/v1/traffic``."""
        return {"marketplace": self.marketplace, "site": self.site, "account": self.account,
                "operation": self.operation, "status": self.status, "reason": self.reason,
                "code": self.code, "duration": round(self.duration, 6), "ratelimit": self.ratelimit,
                "ratelimit_remaining": self.remaining}


def label(value: str | None, what: str) -> str:
    """A caller-given label value, checked once at install time (a typo fails loudly there)."""
    if not is_label_value(value):
        raise ValueError(f"{what} must match {LABEL_VALUE_PATTERN}, got {value!r}")
    assert value is not None
    return value


class Classifier:
    """Classifies calls for one client instance: its ``account`` alias (a configured alias, never a
    seller id), its ``site`` when the host does not tell it, and ``base_urls`` mapping non-platform
    base URLs (simulator, proxy) to the marketplace behind them."""

    def __init__(self, *, account: str, site: str | None = None,
                 base_urls: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.account = label(account, "account")
        self.site = label(site, "site") if site is not None else None
        self._clock = clock
        self._bases: list[tuple[str, str, Adapter]] = []
        for base, marketplace in (base_urls or {}).items():
            adapter = ADAPTERS.get(marketplace)
            if adapter is None or not adapter.api_operations:
                raise ValueError(f"base_urls: unknown marketplace {marketplace!r} for {base!r}")
            parts = urlsplit(base)
            self._bases.append((parts.netloc.lower(), parts.path.rstrip("/"), adapter))
        self._routes: dict[tuple[str, str], tuple[Adapter, RouteMatch] | None] = {}

    def route(self, netloc: str, path: str, query: str = "") -> tuple[Adapter, RouteMatch] | None:
        """Which adapter and operation a URL's parts belong to; None for calls to anything else."""
        if path.endswith(QUERY_ROUTED):
            return self._find(netloc.lower(), path, query)  # AliExpress names the API in the query
        key = (netloc, path)
        try:
            return self._routes[key]
        except KeyError:
            pass
        found = self._find(netloc.lower(), path, query)
        if len(self._routes) >= _ROUTE_CACHE_LIMIT:
            self._routes.clear()  # paths carry ids: keep the cache bounded, not clever
        self._routes[key] = found
        return found

    def _find(self, netloc: str, path: str, query: str) -> tuple[Adapter, RouteMatch] | None:
        for base_netloc, base_path, adapter in self._bases:
            if netloc == base_netloc and (path == base_path or path.startswith(base_path + "/")):
                matched = adapter.match(None, path[len(base_path):], query)
                return None if matched is None else (adapter, matched)
        host = host_of(netloc)
        for adapter in _MARKETPLACES:
            matched = adapter.match(host, path, query)
            if matched is not None:
                return adapter, matched
        return None

    def response(self, routed: tuple[Adapter, RouteMatch], status: int, headers: Mapping[str, str],
                 body: bytes | None, duration: float) -> TrafficRecord:
        """The record of a call that got an answer. ``headers`` looked up by lower-case name (the
        clients' case-insensitive header mappings as they are); ``body`` None unless
        the caller already read it and it is at most :data:`MAX_BODY_BYTES`."""
        adapter, matched = routed
        if body is not None and len(body) > MAX_BODY_BYTES:
            body = None
        try:
            result = adapter.classify(matched.operation, status, headers, body, self._clock())
        except Exception:  # noqa: BLE001 - a classifier bug must never reach the caller
            return self._record(adapter, matched, status, Reason.INTERNAL.value, "", duration, None)
        code = result.code or ""
        if code and code not in adapter.known_codes:
            code = OTHER
        observed = result.rate_limit
        reason = result.reason.value if result.reason is not None else ""
        if observed is None:
            return self._record(adapter, matched, status, reason, code, duration, None)
        return self._record(adapter, matched, status, reason, code, duration, observed.remaining_ratio,
                            observed.remaining)

    def failure(self, routed: tuple[Adapter, RouteMatch], error: BaseException,
                duration: float) -> TrafficRecord:
        """The record of a call that got no answer (timeout, refused, TLS)."""
        adapter, matched = routed
        return self._record(adapter, matched, 0, transport_reason(error).value, "", duration, None)

    def _record(self, adapter: Adapter, matched: RouteMatch, status: int, reason: str, code: str,
                duration: float, ratio: float | None, remaining: float | None = None) -> TrafficRecord:
        site = matched.site or self.site or OTHER
        if site not in adapter.sites:
            site = OTHER
        operation = matched.operation if matched.operation in adapter.api_operations else OTHER
        return TrafficRecord(adapter.name, site, self.account, operation, status, reason, code,
                             max(duration, 0.0), ratio, remaining)


def transport_reason(error: BaseException) -> Reason:
    """A client library's exception → the catalogue's transport reasons (by type and name, so no
    client library is imported here)."""
    if isinstance(error, ssl.SSLError):
        return Reason.TLS
    if isinstance(error, TimeoutError):
        return Reason.TIMEOUT
    return transport_reason_named(cls.__name__ for cls in type(error).__mro__)


def transport_reason_named(names: Iterable[str]) -> Reason:
    """The transport reason for error names alone: exception class names, or an OpenTelemetry
    span's ``error.type`` (``requests.exceptions.ConnectTimeout``, Node's ``ETIMEDOUT``, ``CERT_HAS_EXPIRED``)."""
    lowered = [name.lower() for name in names]
    if any("ssl" in n or "cert" in n or "tls" in n for n in lowered):
        return Reason.TLS
    if any("timeout" in n or "timedout" in n for n in lowered):
        return Reason.TIMEOUT
    return Reason.CONNECT


def status_class(status: int) -> str:
    """``2xx`` … ``5xx`` for an HTTP status; ``error`` when no response came back (status 0)."""
    if 100 <= status <= 599:
        return f"{status // 100}xx"
    return "error"


def decoded(body: bytes, content_encoding: str | None) -> bytes | None:
    """A raw body as the caller's library would decode it (gzip/deflate), bounded; None when it
    cannot be decoded cheaply (brotli, zstd, garbage): then the status alone decides."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        return None
    try:
        wbits = 16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS
        inflater = zlib.decompressobj(wbits)
        out = inflater.decompress(body, MAX_BODY_BYTES + 1)
    except zlib.error:
        return None
    return out if len(out) <= MAX_BODY_BYTES else None
