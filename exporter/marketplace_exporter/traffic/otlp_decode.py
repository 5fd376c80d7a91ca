"""OTLP trace export requests (protobuf or JSON) → the few span facts traffic needs.

Both encodings come out as the same plain values: per resource, the resource attributes we read
(``service.name``, the configured account/site keys) and per span a :class:`Span` with its kind,
timestamps, error status and only the attributes :mod:`.otlp_spans` reads (HTTP semantic
conventions, old and stable, ``marketplace.error_code``, captured response headers and the
configured account/site keys). Every other attribute, event, link and id is skipped unread.

Protobuf is parsed by ``opentelemetry-proto``'s generated classes on the ``upb`` C runtime of
``protobuf``: about 1 µs per span to parse and 5–7 µs to walk here, where a hand-written varint
decoder in Python costs several times that; the import costs ~30–50 ms once. JSON follows the
OTLP/JSON rules (lowerCamelCase keys, enums as integers, 64-bit integers as strings or numbers,
hex ids that we never read) and is walked as parsed by the standard library, because
``google.protobuf.json_format`` would be 10× slower for the same result.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

#: captured response headers (``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE`` and
#: the like): ``http.response.header.<lower-case name>`` = [values]
HEADER_PREFIX = "http.response.header."
SPAN_KIND_CLIENT = 3
STATUS_CODE_ERROR = 2
_KIND_NAMES = {"SPAN_KIND_UNSPECIFIED": 0, "SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2,
               "SPAN_KIND_CLIENT": 3, "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5}
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
#: array attributes are only read for captured headers: the first few values are plenty
_MAX_ARRAY_VALUES = 4

Attributes = dict[str, object]


class Span(NamedTuple):
    """What one span says, as far as traffic cares. ``None`` for a timestamp the sender left out."""

    kind: int
    start_ns: int | None
    end_ns: int | None
    #: the span's status is ERROR (set by instrumentations on transport failures and 4xx/5xx)
    failed: bool
    attributes: Attributes


class ResourceSpans(NamedTuple):
    resource: Attributes
    spans: list[Span | None]  # None: a span too malformed to read (JSON only)


class BadRequest(ValueError):
    """The request as a whole cannot be read (answered 400, no span counted)."""


# --- protobuf ---------------------------------------------------------------------------------------
def _proto_value(value: AnyValue) -> object:
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "array_value":
        return [_proto_value(v) for v in value.array_value.values[:_MAX_ARRAY_VALUES]]
    if which == "double_value":
        return value.double_value
    if which == "bool_value":
        return value.bool_value
    return None  # kvlist, bytes, empty: never a label source


def _proto_attributes(attributes: Any, wanted: frozenset[str], headers: bool) -> Attributes:
    found: Attributes = {}
    for kv in attributes:
        key = kv.key
        if key in wanted or (headers and key.startswith(HEADER_PREFIX)):
            found[key] = _proto_value(kv.value)
    return found


def decode_protobuf(body: bytes, span_keys: frozenset[str],
                    resource_keys: frozenset[str]) -> Iterator[ResourceSpans]:
    """Parse an ``ExportTraceServiceRequest``; :class:`BadRequest` when it is not one."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RecursionError) as exc:
        raise BadRequest(f"body is not an OTLP ExportTraceServiceRequest: {exc}") from None
    for resource_spans in request.resource_spans:
        resource = _proto_attributes(resource_spans.resource.attributes, resource_keys, False)
        spans: list[Span | None] = []
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                start, end = span.start_time_unix_nano, span.end_time_unix_nano
                spans.append(Span(span.kind, start or None, end or None,
                                  span.status.code == STATUS_CODE_ERROR,
                                  _proto_attributes(span.attributes, span_keys, True)))
        yield ResourceSpans(resource, spans)


# --- JSON ---------------------------------------------------------------------------------------------
def _json_value(value: object) -> object:
    if not isinstance(value, dict):
        return None
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:  # int64: a decimal string by the proto3 JSON mapping, or a number
        return _json_int(value["intValue"])
    if "arrayValue" in value:
        values = value["arrayValue"].get("values") if isinstance(value["arrayValue"], dict) else None
        return [_json_value(v) for v in values[:_MAX_ARRAY_VALUES]] if isinstance(values, list) else None
    if "doubleValue" in value:
        return value["doubleValue"]
    if "boolValue" in value:
        return value["boolValue"]
    return None


def _json_int(raw: object) -> int | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.isdigit() and len(raw) <= 20:
        return int(raw)
    return None


def _json_attributes(attributes: object, wanted: frozenset[str], headers: bool) -> Attributes:
    found: Attributes = {}
    if not isinstance(attributes, list):
        return found
    for kv in attributes:
        key = kv.get("key") if isinstance(kv, dict) else None
        if isinstance(key, str) and (key in wanted or (headers and key.startswith(HEADER_PREFIX))):
            found[key] = _json_value(kv.get("value"))
    return found


def _json_enum(raw: object, names: Mapping[str, int]) -> int | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    return names.get(raw) if isinstance(raw, str) else None


def _json_span(span: object, span_keys: frozenset[str]) -> Span | None:
    if not isinstance(span, dict):
        return None
    kind = _json_enum(span.get("kind", 0), _KIND_NAMES)
    status = span.get("status")
    code = _json_enum(status.get("code", 0), _STATUS_NAMES) if isinstance(status, dict) else 0
    if kind is None or code is None:
        return None
    return Span(kind, _json_int(span.get("startTimeUnixNano")), _json_int(span.get("endTimeUnixNano")),
                code == STATUS_CODE_ERROR, _json_attributes(span.get("attributes"), span_keys, True))


def _json_list(node: Mapping[str, Any], key: str) -> list[Any]:
    value = node.get(key, [])
    if not isinstance(value, list):
        raise BadRequest(f"{key}: expected a list")
    return value


def decode_json(body: bytes, span_keys: frozenset[str],
                resource_keys: frozenset[str]) -> Iterator[ResourceSpans]:
    """Parse an OTLP/JSON ``ExportTraceServiceRequest``; :class:`BadRequest` when the document or
    its structure is unusable. A single malformed span is kept as ``None`` (rejected, counted)."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadRequest(f"body is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(document, dict):
        raise BadRequest("body must be a JSON object {resourceSpans: [...]}")
    for resource_spans in _json_list(document, "resourceSpans"):
        if not isinstance(resource_spans, dict):
            raise BadRequest("resourceSpans: expected objects")
        resource_node = resource_spans.get("resource")
        resource = (_json_attributes(resource_node.get("attributes"), resource_keys, False)
                    if isinstance(resource_node, dict) else {})
        spans: list[Span | None] = []
        for scope_spans in _json_list(resource_spans, "scopeSpans"):
            if not isinstance(scope_spans, dict):
                raise BadRequest("scopeSpans: expected objects")
            spans.extend(_json_span(span, span_keys) for span in _json_list(scope_spans, "spans"))
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
        response.partial_success.CopyFrom(ExportTracePartialSuccess(rejected_spans=rejected, error_message=message))
    return response.SerializeToString()


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
