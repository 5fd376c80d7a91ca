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
Lazada, TikTok Shop, AliExpress, Wish, Temu) are invisible unless the caller copies the platform's
code into the span attribute ``marketplace.error_code``; it is then wrapped in that platform's error
envelope and classified exactly as the body would have been.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from typing import NamedTuple

from marketplace_exporter.traffic.classify import OTHER, QUERY_ROUTED, Classifier, transport_reason_named
from marketplace_exporter.traffic.otlp_decode import (
    ERROR_CODE_ATTRIBUTE,
    SERVICE_ATTRIBUTE,
    SPAN_KIND_CLIENT,
    STATUS,
    URL,
    Attributes,
    Span,
)
from marketplace_exporter.traffic.otlp_settings import OtlpConfig
from marketplace_exporter.traffic.wire import MAX_DURATION, TrafficRecordIn, parse_record

_MAX_CODE_LENGTH = 128
_MEMO_LIMIT = 4096
_MAX_DURATION_NS = int(MAX_DURATION) * 10**9
_SERVICE_BAD_CHARS = re.compile(r"[^A-Za-z0-9_.\-]")


def _number_or_text(code: str) -> object:
    """Numeric codes as the JSON numbers those platforms send (Wish ``code``, Temu ``errorCode``,
    Ozon ``rpcStatus.code``); anything else as the text it is."""
    return int(code) if code.isascii() and code.isdigit() and len(code) <= 12 else code


def _digits(code: str) -> bool:
    """ASCII digits only: ``str.isdigit()`` also accepts '²', which ``int()`` refuses (a 500)."""
    return code.isascii() and code.isdigit()


def _errors_list(key: str) -> Callable[[str], object]:
    return lambda code: {"errors": [{key: int(code) if key == "errorId" else code, "message": ""}]}


def _oauth(code: str) -> object:
    """RFC 6749's token-endpoint error (Amazon LWA, eBay and Walmart token exchanges)."""
    return {"error": code, "error_description": ""}


Envelope = Callable[[str], object]
#: each platform's error envelopes around a bare code, as its adapter reads one, in the order they
#: are tried: the first the adapter reads a code from (the code itself, or ``other``) decides; a
#: token exchange answers in another envelope than the API. A unit test feeds every known code of
#: every adapter through these and requires the same labels as the native path gives that body.
ENVELOPES: Mapping[str, tuple[Envelope, ...]] = {
    "shopee": (lambda code: {"error": code, "message": ""},),
    "mercadolibre": (lambda code: {"error": code, "message": ""},),
    "lazada": (lambda code: {"code": code, "type": "ISV", "message": ""},),
    # AliExpress: legacy TOP codes are numbers inside ``error_response``, IOP codes are words
    "aliexpress": (lambda code: ({"error_response": {"code": int(code), "msg": ""}} if _digits(code)
                                 else {"code": code, "type": "ISV", "message": ""}),),
    "tiktok_shop": (lambda code: {"code": _number_or_text(code), "message": ""},),
    "amazon_sp": (_errors_list("code"), _oauth),
    "walmart": (_errors_list("code"), _oauth),
    "ebay": (lambda code: _errors_list("errorId")(code) if _digits(code) else _oauth(code),),
    "wish": (lambda code: {"code": _number_or_text(code), "message": ""},),
    "temu": (lambda code: {"success": False, "errorCode": _number_or_text(code), "errorMsg": ""},),
    "ozon": (lambda code: {"code": _number_or_text(code), "message": "", "details": []},),
}


class Outcome(NamedTuple):
    """What became of one span: ``record`` for ``TrafficAggregator.ingest`` when accepted, with
    ``checked``, its fields as :func:`parse_record` read them; else ``result`` ``ignored`` (not a
    marketplace call: not counted as a problem) or ``rejected``, with parse_record's ``detail``
    for an ``invalid_record``."""

    result: str
    reason: str
    record: dict[str, object] | None = None
    checked: TrafficRecordIn | None = None
    detail: str = ""


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


class Context(NamedTuple):
    """What a resource says for all its spans: the service and the account/site defaults."""

    service: str | None
    account: str
    site: str


class SpanMapper:
    """Maps spans for one config (rebuilt on reload): the configured attribute keys and proxy base
    URLs, one :class:`Classifier` whose route cache all requests share, and a bounded memo of
    labels by the call's shape (host, path, status, code, headers, account, site): a batch
    repeats a handful of shapes, so most spans cost a dict copy instead of a classification."""

    def __init__(self, settings: OtlpConfig, clock: Callable[[], float] = time.time) -> None:
        self._classifier = Classifier(account=OTHER, base_urls=settings.base_urls, clock=clock)
        self._account_keys = settings.account_attributes
        self._site_keys = settings.site_attributes
        #: the configured attribute keys the decoders read on spans and resources
        self.labels = tuple(dict.fromkeys((*self._account_keys, *self._site_keys)))
        self._memo: dict[tuple[object, ...], Outcome] = {}

    def context(self, resource: Attributes) -> Context:
        return Context(service_name(resource), _first(self._account_keys, resource, OTHER),
                       _first(self._site_keys, resource, OTHER))

    def outcome(self, span: Span | None, context: Context) -> Outcome:
        """What becomes of one span: its call shape's outcome, and when accepted its own record
        (the shape's plus this span's duration). The receiver counts per shape instead
        (:meth:`shape` and :func:`duration`); this is the same decision, one span at a time."""
        known = self.shape(span, context)
        if known.record is None or span is None:
            return known
        seconds = duration(span)
        if seconds is None:
            return BAD_DURATION
        return known._replace(record=known.record | {"duration": seconds})

    def shape(self, span: Span | None, context: Context) -> Outcome:
        """The outcome of the span's call shape (all but its duration): memoised, so the same
        object for every span of that shape. Accepted: ``record`` without ``duration`` and
        ``checked``, what :func:`parse_record` read of it (see :func:`_checked`)."""
        if span is None:
            return MALFORMED
        if span.kind != SPAN_KIND_CLIENT:
            return NOT_CLIENT
        attrs = span.attributes
        url = attrs.get(URL)
        where: tuple[str, str, str] | None = None
        if url and isinstance(url, str):  # the usual span: the URL up to its query is the shape
            base, _, query = url.partition("?")
            shape: tuple[str, str] = (base, query if base.endswith(QUERY_ROUTED) else "")
        else:
            where = _url_parts(attrs)
            if where is None:
                return NOT_HTTP
            shape = (where[0] + where[1], where[2] if where[1].endswith(QUERY_ROUTED) else "")
        status = attrs.get(STATUS)
        headers = span.headers
        key = (shape, status, attrs.get(ERROR_CODE_ATTRIBUTE), tuple(sorted(headers.items())) if headers else (),
               span.failed, attrs.get("error.type") if status is None else None, context,
               *map(attrs.get, self.labels))
        known = self._memo.get(key)
        if known is None:
            where = where or _url_parts(attrs)
            if where is None:
                known = NOT_HTTP
            else:
                account = _first(self._account_keys, attrs, context.account)
                site = _first(self._site_keys, attrs, context.site)
                known = _checked(self._labels(where, status, attrs, headers, account, site, span.failed))
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            self._memo[key] = known
        return known

    def _labels(self, where: tuple[str, str, str], status: object, attrs: Attributes,
                headers: dict[str, str] | None, account: str, site: str, failed: bool) -> Outcome:
        """The outcome of a call of this shape, its record without the duration (memoised)."""
        routed = self._classifier.route(*where)
        if routed is None:
            return NOT_MARKETPLACE
        adapter, matched = routed
        if status is None:
            error_type = attrs.get("error.type")
            if not failed and not error_type:
                return NO_STATUS
            # no answer: error.type (an exception's name, Node's ECONNREFUSED) decides between
            # connect, timeout and TLS, as the hooks decide from the exception
            reason = transport_reason_named([error_type if isinstance(error_type, str) else ""])
            return Outcome("accepted", "", {
                "marketplace": adapter.name, "site": matched.site or site, "account": account,
                "operation": matched.operation, "status": 0, "reason": reason.value, "code": ""})
        if not isinstance(status, int) or not 100 <= status <= 599:
            return BAD_STATUS
        code = attrs.get(ERROR_CODE_ATTRIBUTE)
        record = self._classifier.response(routed, status, headers or {}, None, 0.0)
        if isinstance(code, str) and code:
            for wrap in ENVELOPES.get(adapter.name, ()):
                body = json.dumps(wrap(code[:_MAX_CODE_LENGTH])).encode()
                record = self._classifier.response(routed, status, headers or {}, body, 0.0)
                if record.code:
                    break  # the adapter read a code from this envelope
        return Outcome("accepted", "", {
            "marketplace": record.marketplace, "site": matched.site or site, "account": account,
            "operation": record.operation, "status": status, "reason": record.reason, "code": record.code,
            "duration": 0.0, "ratelimit": record.ratelimit, "ratelimit_remaining": record.remaining})


def _checked(outcome: Outcome) -> Outcome:
    """An accepted call shape with its record checked by the native path's own validation, once:
    each span of that shape differs only in its duration, which :meth:`SpanMapper.outcome` holds to
    the same 0..MAX_DURATION seconds. A shape that fails is each of its spans' ``invalid_record``."""
    if outcome.record is None:
        return outcome
    checked = parse_record(outcome.record | {"duration": 0.0})
    if isinstance(checked, str):
        return Outcome("rejected", "invalid_record", detail=checked)
    return outcome._replace(checked=checked)


def duration(span: Span) -> float | None:
    """The span's duration in seconds; None when a time is missing, the end is before the start or
    it is longer than the native path accepts (:data:`~.wire.MAX_DURATION`)."""
    start, end = span.start_ns, span.end_ns
    if start is None or end is None or not 0 <= end - start <= _MAX_DURATION_NS:
        return None
    return (end - start) / 1e9


def _first(keys: tuple[str, ...], attrs: Attributes, default: str) -> str:
    """The first configured key set to a non-empty string, else ``default``. The aggregator folds
    any value outside the configured sets into ``other`` again."""
    for key in keys:
        value = attrs.get(key)
        if value and isinstance(value, str):
            return value
    return default


def _url_parts(attrs: Attributes) -> tuple[str, str, str] | None:
    """(netloc, path, query) of the call: the full URL (``url.full``/``http.url``) when present,
    else the host and port attributes with ``url.path``/``url.query`` or ``http.target``. None:
    not an HTTP span."""
    url = attrs.get(URL)
    if url and isinstance(url, str):
        parts = url.split("/", 3)  # "https:", "", "host:port", "path?query"
        if len(parts) >= 3 and parts[1] == "" and parts[0].endswith(":"):
            netloc = parts[2]
            rest = "/" + parts[3] if len(parts) == 4 else "/"
            if "?" in netloc or "#" in netloc:  # "https://host?q": no path at all
                cut = min(i for i in (netloc.find("?"), netloc.find("#"), len(netloc)) if i >= 0)
                netloc, rest = netloc[:cut], "/" + netloc[cut:]
            if "@" in netloc:  # user:password@ (instrumentations redact it anyway)
                netloc = netloc.rpartition("@")[2]
            if "#" in rest:
                rest = rest.partition("#")[0]
            path, _, query = rest.partition("?")
            return netloc, path or "/", query
        return None
    host = attrs.get("server.address") or attrs.get("net.peer.name") or attrs.get("http.host")
    if not isinstance(host, str) or not host:
        return None
    port = attrs.get("server.port") or attrs.get("net.peer.port")
    if isinstance(port, int) and ":" not in host and port not in (80, 443):
        host = f"{host}:{port}"
    url_path, url_query = attrs.get("url.path"), attrs.get("url.query")
    if isinstance(url_path, str) and url_path:
        return host, url_path, url_query if isinstance(url_query, str) else ""
    target = attrs.get("http.target")
    target_path, _, target_query = target.partition("?") if isinstance(target, str) else ("/", "", "")
    return host, target_path or "/", target_query
