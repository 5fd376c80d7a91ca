"""One OpenTelemetry HTTP client span → one traffic record, labelled by the adapters' own code.

A span is the same fact the traffic hooks report: a call, its URL, its status or its transport
error, its duration. So it takes the same road: the host (or a configured proxy base URL) picks the
adapter, the adapter's :meth:`~marketplace_exporter.adapters.base.Adapter.match` names the
operation, and its :meth:`~marketplace_exporter.adapters.base.Adapter.classify` gives ``reason``
and ``code`` (through :class:`~marketplace_exporter.traffic.classify.Classifier`, the hooks' own
route cache and classification). The record then goes to ``TrafficAggregator.ingest`` like any
record posted to ``/api/v1/traffic``, with its validation, label folding and cardinality cap.

Both generations of the HTTP semantic conventions are read: the stable ones (semconv 1.23+:
``http.request.method``, ``url.full``, ``server.address``/``server.port`` + ``url.path``/``url.query``,
``http.response.status_code``, ``error.type``) first, the older ones (``http.url``,
``http.method``, ``http.status_code``, ``net.peer.name``/``net.peer.port``, ``http.host``,
``http.target``) where the stable ones are missing.

A span carries no response body, so errors that platforms put inside HTTP 200 answers (Shopee,
Lazada, TikTok Shop, AliExpress) are invisible unless the caller copies the platform's code into
the span attribute ``marketplace.error_code``; it is then wrapped in that platform's error envelope
and classified exactly as the body would have been.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping
from typing import NamedTuple

from marketplace_exporter.adapters import Adapter
from marketplace_exporter.adapters.base import RouteMatch
from marketplace_exporter.traffic.classify import OTHER, Classifier, transport_reason_named
from marketplace_exporter.traffic.otlp_decode import HEADER_PREFIX, SPAN_KIND_CLIENT, Attributes, Span
from marketplace_exporter.traffic.otlp_settings import OtlpConfig

#: the span attribute a caller may set to the platform's own error code (read from the body)
ERROR_CODE_ATTRIBUTE = "marketplace.error_code"
#: the resource attribute naming the reporting service (the ``service`` label)
SERVICE_ATTRIBUTE = "service.name"
#: every span attribute read here, besides configured account/site keys and captured headers
HTTP_ATTRIBUTES = frozenset({
    "url.full", "http.url", "server.address", "server.port", "url.path", "url.query", "url.scheme",
    "net.peer.name", "net.peer.port", "http.host", "http.target", "http.scheme",
    "http.response.status_code", "http.status_code", "error.type", ERROR_CODE_ATTRIBUTE,
})
_MAX_CODE_LENGTH = 128
_MAX_DURATION_NS = 86400 * 10**9
_SERVICE_BAD_CHARS = re.compile(r"[^A-Za-z0-9_.\-]")


def _errors_list(key: str) -> Callable[[str], object]:
    return lambda code: {"errors": [{key: int(code) if key == "errorId" else code, "message": ""}]}


#: each platform's error envelope around a bare code, as its adapter reads one (a unit test feeds
#: every known code of every adapter through these and requires the adapter to find it again)
ENVELOPES: Mapping[str, Callable[[str], object]] = {
    "shopee": lambda code: {"error": code, "message": ""},
    "mercadolibre": lambda code: {"error": code, "message": ""},
    "lazada": lambda code: {"code": code, "type": "ISV", "message": ""},
    "aliexpress": lambda code: {"code": code, "type": "ISV", "message": ""},
    "tiktok_shop": lambda code: {"code": int(code) if code.isdigit() else code, "message": ""},
    "amazon_sp": _errors_list("code"),
    "walmart": _errors_list("code"),
    "ebay": lambda code: _errors_list("errorId")(code) if code.isdigit() else {"error": code},
}


class Outcome(NamedTuple):
    """What became of one span: ``record`` for ``TrafficAggregator.ingest`` when accepted, else
    ``result`` ``ignored`` (not a marketplace call: not counted as a problem) or ``rejected``."""

    result: str
    reason: str
    record: dict[str, object] | None = None


NOT_CLIENT = Outcome("ignored", "not_client")
NOT_HTTP = Outcome("ignored", "not_http")
NOT_MARKETPLACE = Outcome("ignored", "not_marketplace")
MALFORMED = Outcome("rejected", "malformed")
NO_STATUS = Outcome("rejected", "no_status")
BAD_STATUS = Outcome("rejected", "bad_status")
BAD_DURATION = Outcome("rejected", "bad_duration")


def service_name(resource: Attributes) -> str | None:
    """The ``service`` label from ``service.name``, made to fit the label pattern the native path
    requires (``unknown_service:node`` → ``unknown_service_node``); None when absent or empty."""
    name = resource.get(SERVICE_ATTRIBUTE)
    if not isinstance(name, str):
        return None
    name = _SERVICE_BAD_CHARS.sub("_", name.strip())[:63].lstrip("_.-")
    return name or None


class SpanMapper:
    """Maps spans for one config (rebuilt on reload): the configured attribute keys and proxy base
    URLs, and one :class:`Classifier` whose route cache all requests share."""

    def __init__(self, settings: OtlpConfig, clock: Callable[[], float] = time.time) -> None:
        self._classifier = Classifier(account=OTHER, base_urls=settings.base_urls, clock=clock)
        self._account_keys = settings.account_attributes
        self._site_keys = settings.site_attributes
        #: what the decoders keep of each span and each resource
        self.span_keys = HTTP_ATTRIBUTES | frozenset(self._account_keys) | frozenset(self._site_keys)
        self.resource_keys = frozenset({SERVICE_ATTRIBUTE, *self._account_keys, *self._site_keys})

    def outcome(self, span: Span | None, resource: Attributes) -> Outcome:
        if span is None:
            return MALFORMED
        if span.kind != SPAN_KIND_CLIENT:
            return NOT_CLIENT
        attrs = span.attributes
        where = _url_parts(attrs)
        if where is None:
            return NOT_HTTP
        routed = self._classifier.route(*where)
        if routed is None:
            return NOT_MARKETPLACE
        start, end = span.start_ns, span.end_ns
        if start is None or end is None or not 0 <= end - start <= _MAX_DURATION_NS:
            return BAD_DURATION
        duration = (end - start) / 1e9
        status = _status(attrs)
        if status is None:
            error_type = attrs.get("error.type")
            if not span.failed and not error_type:
                return NO_STATUS
            return self._failure(routed, error_type, duration, attrs, resource)
        if not 100 <= status <= 599:
            return BAD_STATUS
        adapter = routed[0]
        code = attrs.get(ERROR_CODE_ATTRIBUTE)
        body = _envelope(adapter.name, code) if isinstance(code, str) and code else None
        record = self._classifier.response(routed, status, _headers(attrs), body, duration)
        return Outcome("accepted", "", {
            "marketplace": record.marketplace, "site": self._site(routed[1], attrs, resource),
            "account": self._first(self._account_keys, attrs, resource), "operation": record.operation,
            "status": status, "reason": record.reason, "code": record.code, "duration": duration,
            "ratelimit": record.ratelimit, "ratelimit_remaining": record.remaining})

    def _failure(self, routed: tuple[Adapter, RouteMatch], error_type: object, duration: float,
                 attrs: Attributes, resource: Attributes) -> Outcome:
        """A call that got no answer: ``error.type`` (an exception's name, Node's ``ECONNREFUSED``)
        decides between connect, timeout and TLS, as the hooks decide from the exception."""
        adapter, matched = routed
        reason = transport_reason_named([error_type if isinstance(error_type, str) else ""])
        return Outcome("accepted", "", {
            "marketplace": adapter.name, "site": self._site(matched, attrs, resource),
            "account": self._first(self._account_keys, attrs, resource), "operation": matched.operation,
            "status": 0, "reason": reason.value, "code": "", "duration": duration})

    def _site(self, matched: RouteMatch, attrs: Attributes, resource: Attributes) -> str:
        return matched.site or self._first(self._site_keys, attrs, resource)

    @staticmethod
    def _first(keys: tuple[str, ...], attrs: Attributes, resource: Attributes) -> str:
        """The first configured key the span, then the resource, sets to a string; else ``other``.
        The aggregator folds any value outside the configured sets into ``other`` again."""
        for where in (attrs, resource):
            for key in keys:
                value = where.get(key)
                if isinstance(value, str) and value:
                    return value
        return OTHER


def _url_parts(attrs: Attributes) -> tuple[str, str, str] | None:
    """(netloc, path, query) of the call: ``url.full``/``http.url`` when present, else the host and
    port attributes with ``url.path``/``url.query`` or ``http.target``. None: not an HTTP span."""
    url = attrs.get("url.full") or attrs.get("http.url")
    if isinstance(url, str) and "://" in url:
        rest = url[url.index("://") + 3:]
        cut = len(rest)
        for mark in ("/", "?", "#"):
            at = rest.find(mark)
            if 0 <= at < cut:
                cut = at
        netloc, rest = rest[:cut], rest[cut:]
        netloc = netloc.rpartition("@")[2]  # user:password@ (instrumentations redact it anyway)
        path, _, query = rest.partition("#")[0].partition("?")
        return netloc, path or "/", query
    host = attrs.get("server.address") or attrs.get("net.peer.name") or attrs.get("http.host")
    if not isinstance(host, str) or not host:
        return None
    port = attrs.get("server.port") or attrs.get("net.peer.port")
    if isinstance(port, int) and ":" not in host and port not in (80, 443):
        host = f"{host}:{port}"
    url_path, url_query = attrs.get("url.path"), attrs.get("url.query")
    if isinstance(url_path, str):
        return host, url_path or "/", url_query if isinstance(url_query, str) else ""
    target = attrs.get("http.target")
    target_path, _, target_query = target.partition("?") if isinstance(target, str) else ("/", "", "")
    return host, target_path or "/", target_query


def _status(attrs: Attributes) -> int | None:
    raw = attrs.get("http.response.status_code")
    if raw is None:
        raw = attrs.get("http.status_code")
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.isdigit() and len(raw) <= 3:
        return int(raw)
    if isinstance(raw, float) and math.isfinite(raw) and raw.is_integer():
        return int(raw)
    return None if raw is None else -1


def _headers(attrs: Attributes) -> dict[str, str]:
    """Response headers an instrumentation captured: ``http.response.header.x-current-token-count``
    = ["42"] → {"x-current-token-count": "42"} (lower-case names, first value)."""
    headers: dict[str, str] = {}
    for key, value in attrs.items():
        if key.startswith(HEADER_PREFIX):
            first = value[0] if isinstance(value, list) and value else value
            if isinstance(first, str):
                headers[key[len(HEADER_PREFIX):].lower()] = first
    return headers


def _envelope(marketplace: str, code: str) -> bytes | None:
    wrap = ENVELOPES.get(marketplace)
    if wrap is None:
        return None
    return json.dumps(wrap(code[:_MAX_CODE_LENGTH])).encode()
