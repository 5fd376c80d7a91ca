"""OTLP trace export requests (protobuf or JSON) → the few span facts traffic needs.

Both encodings come out as the same plain values: per resource, the resource attributes we read
(``service.name``, the configured account/site keys) and per span a :class:`Span` with its kind,
timestamps, error status and only the attributes :mod:`.otlp_spans` reads. Both encodings go
through one reader (:func:`read_attributes`), which looks the attributes up by name, in the order that
decides: the URL (``url.full``, else ``http.url``, else the host/port/path parts of either
generation), the status (``http.response.status_code``, else ``http.status_code``, else
``error.type``), ``marketplace.error_code``, the configured account/site keys and the response
headers the adapters read. Every other attribute, event, link and id is skipped unread.

Protobuf (here): protobuf's ``upb`` C parser with the slice of the OTLP schema in
:mod:`.otlp_schema` (attributes as a map, so the lookups above run in C). JSON: :mod:`.otlp_json`.
Attributes are read as the type the conventions give them: a string where a string is expected,
an integer (or a decimal string) for status codes and ports; any other type reads as empty
(strings) or -1 (integers: "present but unusable").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from google.protobuf.message import DecodeError

from marketplace_exporter.traffic.otlp_schema import ExportTraceServiceRequest, ExportTraceServiceResponse

#: captured response headers (``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE`` and
#: the like): ``http.response.header.<lower-case name>`` = [values]
HEADER_PREFIX = "http.response.header."
#: the response headers that change a traffic record (the headroom gauges): Walmart's token count
#: and replenish time, Wish's requests left. Others the adapters read (Retry-After, Wish's window
#: reset) only shape a probe's message or wait.
CAPTURED_HEADERS = ("x-current-token-count", "x-next-replenish-time", "wish-rate-limit-remaining")
ERROR_CODE_ATTRIBUTE = "marketplace.error_code"
SERVICE_ATTRIBUTE = "service.name"
URL_KEYS = ("url.full", "http.url")
#: where there is no full URL: host and path attributes, stable then older (strings), and ports
HOST_KEYS = ("server.address", "url.path", "url.query", "net.peer.name", "http.host", "http.target")
PORT_KEYS = ("server.port", "net.peer.port")
STATUS_KEYS = ("http.response.status_code", "http.status_code")
#: the keys the full URL and the status code are kept under, whichever generation sent them
URL, STATUS = "url", "status"
SPAN_KIND_CLIENT = 3
STATUS_CODE_ERROR = 2
KIND_NAMES = {"SPAN_KIND_UNSPECIFIED": 0, "SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2,
              "SPAN_KIND_CLIENT": 3, "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5}
STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_HEADER_KEYS = tuple((HEADER_PREFIX + name, name) for name in CAPTURED_HEADERS)
#: every attribute key :func:`read_attributes` looks up, but the configured account/site keys
READ_KEYS = frozenset((*URL_KEYS, *HOST_KEYS, *PORT_KEYS, *STATUS_KEYS, "error.type", ERROR_CODE_ATTRIBUTE,
                       *(key for key, _ in _HEADER_KEYS)))

Attributes = dict[str, object]


class Span(NamedTuple):
    """What one span says, as far as traffic cares. ``None`` for a timestamp the sender left out."""

    kind: int
    start_ns: int | None
    end_ns: int | None
    #: the span's status is ERROR (set by instrumentations on transport failures and 4xx/5xx)
    failed: bool
    attributes: Attributes
    #: captured response headers, lower-case name → first value; None when there are none
    headers: dict[str, str] | None = None


#: ``Span(...)`` runs the named tuple's ``__new__`` in Python; this builds the same tuple in C
#: (~1,500 instructions less per span, on paths that handle thousands of spans per request)
new_span = tuple.__new__


class ResourceSpans(NamedTuple):
    resource: Attributes
    spans: list[Span | None]  # None: a span too malformed to read (JSON only)


class BadRequest(ValueError):
    """The request as a whole cannot be read (answered 400, no span counted)."""


class AttributeValues(NamedTuple):
    """How one encoding turns an attribute's value into a string, an integer, a header value."""

    text: Callable[[Any], str]
    integer: Callable[[Any], int]
    header: Callable[[Any], str]


def integer_text(text: str) -> int:
    # isascii: str.isdigit() also accepts '²', which int() refuses (a 500 from the decoder)
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else -1


def read_attributes(get: Callable[[str], Any], values: AttributeValues,
                    labels: tuple[str, ...]) -> tuple[Attributes, dict[str, str] | None]:
    """The attributes traffic reads, by name through ``get`` (None: absent); the full URL and the
    status under :data:`URL` and :data:`STATUS` from whichever generation of names sent them."""
    found: Attributes = {}
    for key in URL_KEYS:
        value = get(key)
        if value is not None:
            found[URL] = values.text(value)
            break
    else:
        for key in HOST_KEYS:
            if (value := get(key)) is not None:
                found[key] = values.text(value)
        for key in PORT_KEYS:
            if (value := get(key)) is not None:
                found[key] = values.integer(value)
    for key in STATUS_KEYS:
        value = get(key)
        if value is not None:
            found[STATUS] = values.integer(value)
            break
    else:
        if (value := get("error.type")) is not None:
            found["error.type"] = values.text(value)
    if (value := get(ERROR_CODE_ATTRIBUTE)) is not None:
        found[ERROR_CODE_ATTRIBUTE] = values.text(value)
    for key in labels:
        if (value := get(key)) is not None:
            found[key] = values.text(value)
    headers: dict[str, str] | None = None
    for key, name in _HEADER_KEYS:
        if (value := get(key)) is not None and (header := values.header(value)):
            headers = headers or {}
            headers[name] = header
    return found, headers


# --- protobuf ---------------------------------------------------------------------------------------
def _proto_header(value: Any) -> str:
    array = value.array_value.values
    return array[0].string_value if array else value.string_value  # type: ignore[no-any-return]


_PROTO = AttributeValues(lambda value: value.string_value,
                         lambda value: value.int_value or integer_text(value.string_value), _proto_header)


def decode_protobuf(body: bytes, labels: tuple[str, ...]) -> Iterator[ResourceSpans]:
    """Parse an ``ExportTraceServiceRequest``; :class:`BadRequest` when it is not one.
    ``labels``: the configured account/site attribute keys (read on spans and resources)."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RecursionError) as exc:
        raise BadRequest(f"body is not an OTLP ExportTraceServiceRequest: {exc}") from None
    resource_keys = (SERVICE_ATTRIBUTE, *labels)
    for resource_spans in request.resource_spans:
        resource_attributes = resource_spans.resource.attributes
        resource: Attributes = {key: str(resource_attributes[key].string_value)
                                for key in resource_keys if key in resource_attributes}
        spans: list[Span | None] = []
        add = spans.append
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes, headers = read_attributes(span.attributes.get, _PROTO, labels)
                # the span status only matters for a call without an HTTP status (no answer)
                failed = STATUS not in attributes and span.status.code == STATUS_CODE_ERROR
                add(Span(span.kind, span.start_time_unix_nano or None, span.end_time_unix_nano or None, failed,
                         attributes, headers))
        yield ResourceSpans(resource, spans)


# --- answers --------------------------------------------------------------------------------------------
def encode_response(rejected: int, message: str, *, as_json: bool) -> bytes:
    """``ExportTraceServiceResponse`` in the request's encoding; ``partial_success`` only when
    something was rejected or there is something to say (the spec's empty value means success)."""
    if as_json:
        if not rejected and not message:
            return b"{}"
        return json.dumps({"partialSuccess": {"rejectedSpans": rejected, "errorMessage": message}}).encode()
    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    return bytes(response.SerializeToString())


def encode_status(code: int, message: str, *, as_json: bool) -> bytes:
    """A ``google.rpc.Status`` for an error answer (OTLP/HTTP: the body of a 4xx/5xx). Two fields,
    so written by hand rather than pulling in googleapis-common-protos for its one class."""
    if as_json:
        return json.dumps({"code": code, "message": message}).encode()
    text = message.encode("utf-8")
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
