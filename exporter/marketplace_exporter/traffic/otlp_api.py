"""``POST /v1/traces``: OTLP/HTTP trace exports from the sellers' instrumented systems.

Most ERPs and order-sync tools are Java, Node.js, Go, PHP or .NET, and many already export spans of
their HTTP client calls with OpenTelemetry. Pointing that exporter (or a Collector) here turns each
client span to a marketplace host into one traffic record: the same labels, the same limits and the
same aggregation as ``POST /api/v1/traffic`` (docs/otlp.md).

The protocol as the OTLP/HTTP specification has it: protobuf (``application/x-protobuf``) or JSON
(``application/json``), optionally ``Content-Encoding: gzip``; the answer is an
``ExportTraceServiceResponse`` in the request's encoding, with ``partial_success`` (the number of
rejected spans and why) when spans were rejected; an error is a ``google.rpc.Status`` with 400
(unreadable request), 401/503 (the traffic token's check), 413 (over ``traffic.max_body_bytes``,
counted after decompression) or 415 (another content type or encoding). None of these is retryable
by the spec except 503. Spans that are not HTTP client calls to a marketplace are ignored without
complaint: a Collector or an SDK sends every span it has, and keeping only ours is our job.

``/v1/metrics`` is not ingested: HTTP client metrics carry no URL path, so no operation, no error
code and no account could be told; it answers 404 with that reason instead of silently dropping.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterable, Iterator

from aiohttp import __version__ as aiohttp_version
from aiohttp import web
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from marketplace_exporter import catalogue as c
from marketplace_exporter.core import Core
from marketplace_exporter.traffic.aggregate import TrafficAggregator
from marketplace_exporter.traffic.api import TRAFFIC, write_auth
from marketplace_exporter.traffic.otlp_decode import (
    BadRequest,
    ResourceSpans,
    decode_protobuf,
    encode_response,
    encode_status,
)
from marketplace_exporter.traffic.otlp_json import decode_json
from marketplace_exporter.traffic.otlp_settings import OtlpConfig
from marketplace_exporter.traffic.otlp_spans import Outcome, SpanMapper, duration
from marketplace_exporter.traffic.settings import TrafficConfig
from marketplace_exporter.traffic.wire import TrafficRecordIn
from marketplace_exporter.webserver.marks import own_credentials

TRACES_ROUTE = "/v1/traces"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
#: what aiohttp decodes for us before the body is read (and what the OTLP exporters send)
_ENCODINGS = frozenset({"", "identity", "gzip", "x-gzip", "deflate"})
_CHUNK = 64 * 1024
#: aiohttp inflates request bodies itself; before 3.13.3 it inflated each received chunk whole
#: (GHSA-6mq8-rvhq-8wgg), so a small gzip bomb could take gigabytes before we saw a byte
_INFLATES_BOUNDED = tuple(int(p) for p in aiohttp_version.split(".")[:3] if p.isdigit()) >= (3, 13, 3)
#: google.rpc.Code values for the Status body of an error answer
_RPC_CODES = {400: 3, 401: 16, 404: 5, 413: 8, 415: 3, 503: 14}
#: rejection reasons named in one partial-success message (counts cover all of them)
_MAX_NAMED = 5
BAD_DURATION, NO_SERVICE = ("rejected", "bad_duration"), ("rejected", "no_service")


class OtlpReceiver:
    """The span mapper for the running config and the span counters the collector exposes."""

    def __init__(self, settings: OtlpConfig) -> None:
        self._lock = threading.Lock()
        self.spans: Counter[tuple[str, str]] = Counter()
        self.configure(settings)

    def configure(self, settings: OtlpConfig) -> None:
        self.mapper = SpanMapper(settings)

    def count(self, outcomes: Counter[tuple[str, str]]) -> None:
        with self._lock:
            self.spans.update(outcomes)

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self.spans)


OTLP = web.AppKey("otlp", OtlpReceiver)


class OtlpCollector(Collector):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for (result, reason), count in sorted(self._receiver.snapshot().items()):
            family.add_metric([result, reason], count)
        yield family

    @staticmethod
    def _family() -> CounterMetricFamily:
        spec = c.OTLP_SPANS
        return CounterMetricFamily(spec.family_name, spec.help, labels=list(spec.labels))


def install(core: Core, app: web.Application) -> None:
    """Add ``/v1/traces`` (after :func:`marketplace_exporter.traffic.api.install`, whose aggregator
    it feeds), the span counters and a reload hook for the ``traffic.otlp`` block."""
    receiver = OtlpReceiver(core.initial.traffic.otlp)
    app[OTLP] = receiver
    core.registry.register(OtlpCollector(receiver))
    core.on_reload(lambda new: receiver.configure(new.traffic.otlp))
    app.router.add_post(TRACES_ROUTE, post_traces)
    app.router.add_post("/v1/metrics", not_ingested)
    app.router.add_post("/v1/logs", not_ingested)


def _error(status: int, message: str, as_json: bool, headers: dict[str, str] | None = None) -> web.Response:
    body = encode_status(_RPC_CODES.get(status, 2), message, as_json=as_json)
    return web.Response(status=status, body=body, content_type=JSON if as_json else PROTOBUF, headers=headers)


async def not_ingested(request: web.Request) -> web.Response:
    return _error(404, "this exporter ingests traces only (POST /v1/traces): HTTP client metrics carry no URL "
                       "path, so no operation or error code could be told; set OTEL_METRICS_EXPORTER=none "
                       "and OTEL_LOGS_EXPORTER=none, or point only the traces endpoint here",
                  request.content_type != PROTOBUF)


@own_credentials
async def post_traces(request: web.Request) -> web.Response:
    aggregator = request.app[TRAFFIC]
    settings = aggregator.settings
    content_type = request.content_type
    as_json = content_type != PROTOBUF
    try:
        write_auth(settings).check(request)
    except web.HTTPException as refused:
        return _error(refused.status, _message_of(refused), as_json, _auth_headers(refused))
    if content_type not in (PROTOBUF, JSON):
        return _error(415, f"Content-Type {content_type!r}: expected {PROTOBUF} or {JSON}", as_json)
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in _ENCODINGS:
        return _error(415, f"Content-Encoding {encoding!r}: expected gzip or none", as_json)
    if encoding not in ("", "identity") and not _INFLATES_BOUNDED:
        return _error(415, f"Content-Encoding {encoding!r} needs aiohttp >= 3.13.3 on the exporter "
                           f"(this one has {aiohttp_version}); send uncompressed", as_json)
    body = await _read_body(request, settings.max_body_bytes)
    if isinstance(body, web.Response):
        return body
    receiver = request.app[OTLP]
    mapper = receiver.mapper
    decode = decode_json if as_json else decode_protobuf
    try:
        outcomes, rejected_reasons, detail = ingest_spans(aggregator, mapper, decode(body, mapper.labels))
    except BadRequest as exc:
        return _error(400, str(exc), as_json)
    receiver.count(outcomes)
    rejected = sum(rejected_reasons.values())
    message = _rejection_message(rejected_reasons, detail, settings) if rejected else ""
    return web.Response(body=encode_response(rejected, message, as_json=as_json),
                        content_type=JSON if as_json else PROTOBUF)


def ingest_spans(aggregator: TrafficAggregator, mapper: SpanMapper,
                 decoded: Iterable[ResourceSpans]) -> tuple[Counter[tuple[str, str]], Counter[str], str]:
    """Map every span, then count the records per service through the native path's aggregator.
    Decoding finishes before anything is counted, so a request answered 400 counted nothing.

    Spans of one call shape share one memoised outcome (:meth:`SpanMapper.shape`) and differ only
    in their durations: they reach the aggregator as one group per shape, counted once per group
    with every duration observed (:meth:`TrafficAggregator.ingest_shapes`)."""
    outcomes: Counter[tuple[str, str]] = Counter()
    #: per service: id of a shape's outcome -> (the outcome, kept so that its id is not reused, its
    #: record and checked fields, the durations of its spans)
    per_service: dict[str, dict[int, tuple[Outcome, dict[str, object], TrafficRecordIn, list[float]]]] = {}
    detail = ""
    shape_of = mapper.shape
    for resource_spans in decoded:
        context = mapper.context(resource_spans.resource)
        service = context.service
        groups = per_service.setdefault(service, {}) if service is not None else {}
        for span in resource_spans.spans:
            known = shape_of(span, context)
            record, checked = known.record, known.checked
            if record is None or checked is None or span is None:
                outcomes[known.result, known.reason] += 1
                detail = detail or known.detail
                continue
            seconds = duration(span)
            if seconds is None:
                outcomes[BAD_DURATION] += 1
            elif service is None:
                outcomes[NO_SERVICE] += 1
            else:
                group = groups.get(id(known))
                if group is None:
                    groups[id(known)] = (known, record, checked, [seconds])
                else:
                    group[3].append(seconds)
    for service, groups in per_service.items():
        if not groups:
            continue
        if not aggregator.known_service(service):
            outcomes["rejected", "too_many_services"] += sum(len(group[3]) for group in groups.values())
            continue
        outcomes["accepted", ""] += aggregator.ingest_shapes(service, [group[1:] for group in groups.values()])
    rejected = Counter({reason: n for (kind, reason), n in outcomes.items() if kind == "rejected"})
    return outcomes, rejected, detail


_EXPLAINED = {
    "malformed": "span is not an OTLP span object",
    "no_status": "no http.response.status_code (or http.status_code) and no error",
    "bad_status": "status code is not 100..599",
    "bad_duration": "end time before start time, missing, or longer than a day",
    "no_service": "resource has no service.name usable as a label (ASCII letters, digits, _ . -)",
}


def _rejection_message(reasons: Counter[str], detail: str, settings: TrafficConfig) -> str:
    parts = []
    for reason, count in reasons.most_common(_MAX_NAMED):
        why = _EXPLAINED.get(reason, "")
        if reason == "too_many_services":
            why = f"traffic.max_services = {settings.max_services} services already report"
        elif reason == "invalid_record":
            why = detail
        parts.append(f"{count} {reason}" + (f" ({why})" if why else ""))
    return f"rejected {sum(reasons.values())} marketplace spans: " + "; ".join(parts)


async def _read_body(request: web.Request, max_bytes: int) -> bytes | web.Response:
    """The body as aiohttp hands it over, i.e. already gunzipped: counting those bytes bounds the
    decompressed size (aiohttp ≥ 3.13.3 inflates at most a chunk at a time, so a gzip bomb stops
    at the limit plus one chunk). A compressed body over the limit is refused before reading."""
    as_json = request.content_type != PROTOBUF
    if request.content_length is not None and request.content_length > max_bytes:
        return _error(413, f"body is {request.content_length} bytes; the limit is {max_bytes} "
                           "(traffic.max_body_bytes)", as_json)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                return _error(413, f"body exceeds {max_bytes} bytes after decompression "
                                   "(traffic.max_body_bytes)", as_json)
            chunks.append(chunk)
    except Exception as exc:  # noqa: BLE001 - aiohttp's ContentEncodingError and the like: a bad body
        if isinstance(exc, ConnectionError):
            raise
        return _error(400, f"body cannot be decoded: {type(exc).__name__}", as_json)
    return b"".join(chunks)


def _message_of(refused: web.HTTPException) -> str:
    try:
        message = json.loads(refused.text or "{}").get("error")
    except ValueError:
        message = None
    return message if isinstance(message, str) else refused.reason


def _auth_headers(refused: web.HTTPException) -> dict[str, str] | None:
    challenge = refused.headers.get("WWW-Authenticate")
    return {"WWW-Authenticate": challenge} if challenge else None
