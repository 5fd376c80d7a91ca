"""OTLP trace export requests (protobuf or JSON) → the few span facts traffic needs.

Both encodings come out as the same plain values: per resource, the resource attributes we read
(``service.name``, the configured account/site keys) and per span a :class:`Span` with its kind,
timestamps, error status and only the attributes :mod:`.otlp_spans` reads. Both encodings go
through one reader (:func:`_read`), which looks the attributes up by name, in the order that
decides: the URL (``url.full``, else ``http.url``, else the host/port/path parts of either
generation), the status (``http.response.status_code``, else ``http.status_code``, else
``error.type``), ``marketplace.error_code``, the configured account/site keys and the response
headers the adapters read. Every other attribute, event, link and id is skipped unread.

Protobuf: protobuf's ``upb`` C parser with the slice of the OTLP schema in :mod:`.otlp_schema`
(attributes as a map, so the lookups above run in C). JSON follows the OTLP/JSON rules
(lowerCamelCase keys, enums as integers, 64-bit integers as decimal strings or numbers, hex ids we
never read), parsed by orjson (:func:`parse_json`; ``google.protobuf.json_format`` is 10× slower
than even the standard library).
Attributes are read as the type the conventions give them: a string where a string is expected,
an integer (or a decimal string) for status codes and ports; any other type reads as empty
(strings) or -1 (integers: "present but unusable").
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import orjson
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
_KIND_NAMES = {"SPAN_KIND_UNSPECIFIED": 0, "SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2,
               "SPAN_KIND_CLIENT": 3, "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5}
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_HEADER_KEYS = tuple((HEADER_PREFIX + name, name) for name in CAPTURED_HEADERS)
#: every attribute key :func:`_read` looks up, but the configured account/site keys
_READ_KEYS = frozenset((*URL_KEYS, *HOST_KEYS, *PORT_KEYS, *STATUS_KEYS, "error.type", ERROR_CODE_ATTRIBUTE,
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
_new_span = tuple.__new__


class ResourceSpans(NamedTuple):
    resource: Attributes
    spans: list[Span | None]  # None: a span too malformed to read (JSON only)


class BadRequest(ValueError):
    """The request as a whole cannot be read (answered 400, no span counted)."""


class _Values(NamedTuple):
    """How one encoding turns an attribute's value into a string, an integer, a header value."""

    text: Callable[[Any], str]
    integer: Callable[[Any], int]
    header: Callable[[Any], str]


def _integer(text: str) -> int:
    # isascii: str.isdigit() also accepts '²', which int() refuses (a 500 from the decoder)
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else -1


def _read(get: Callable[[str], Any], values: _Values,
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


_PROTO = _Values(lambda value: value.string_value, lambda value: value.int_value or _integer(value.string_value),
                 _proto_header)


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
                attributes, headers = _read(span.attributes.get, _PROTO, labels)
                # the span status only matters for a call without an HTTP status (no answer)
                failed = STATUS not in attributes and span.status.code == STATUS_CODE_ERROR
                add(Span(span.kind, span.start_time_unix_nano or None, span.end_time_unix_nano or None, failed,
                         attributes, headers))
        yield ResourceSpans(resource, spans)


# --- JSON ---------------------------------------------------------------------------------------------
def _json_text(value: Any) -> str:
    text = value.get("stringValue") if isinstance(value, dict) else None
    return text if isinstance(text, str) else ""


def _json_integer(value: Any) -> int:
    number = value.get("intValue", value.get("stringValue")) if isinstance(value, dict) else None
    if isinstance(number, int) and not isinstance(number, bool):
        return number
    return _integer(number) if isinstance(number, str) else -1


def _json_header(value: Any) -> str:
    array = value.get("arrayValue") if isinstance(value, dict) else None
    if isinstance(array, dict) and isinstance(array.get("values"), list) and array["values"]:
        return _json_text(array["values"][0])
    return _json_text(value)


_JSON = _Values(_json_text, _json_integer, _json_header)


def _json_int(raw: object) -> int | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 20:
        return int(raw)
    return None


def _json_enum(raw: object, names: Mapping[str, int]) -> int | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    return names.get(raw) if isinstance(raw, str) else None


def _json_wanted(attributes: object, wanted: frozenset[str]) -> dict[str, Any]:
    """Only the attributes :func:`_read` may look up, in one pass over the list: an SDK sends a
    dozen per span, and a dict of them all cost more than the rest of the span. The loop trusts
    the shape SDKs send; anything else (not a list, an entry that is not ``{key, value}``, a key
    that is not a string) falls to :func:`_json_wanted_carefully`, which skips what it cannot use."""
    found: dict[str, Any] = {}
    try:
        for kv in attributes:  # type: ignore[attr-defined]
            key = kv["key"]
            if key in wanted:
                found[key] = kv.get("value")
    except (TypeError, KeyError, AttributeError):
        return _json_wanted_carefully(attributes, wanted)
    return found


def _json_wanted_carefully(attributes: object, wanted: frozenset[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if isinstance(attributes, list):
        for kv in attributes:
            if isinstance(kv, dict):
                key = kv.get("key")
                if isinstance(key, str) and key in wanted:
                    found[key] = kv.get("value")
    return found


def _json_span(span: object, labels: tuple[str, ...], wanted: frozenset[str]) -> Span | None:
    if not isinstance(span, dict):
        return None
    kind = span.get("kind", 0)
    if type(kind) is not int:  # an enum name, or not an enum at all (a bool is not one)
        kind = _json_enum(kind, _KIND_NAMES)
    status = span.get("status")
    code = status.get("code", 0) if isinstance(status, dict) else 0
    if type(code) is not int:
        code = _json_enum(code, _STATUS_NAMES)
    if kind is None or code is None:
        return None
    start, end = span.get("startTimeUnixNano"), span.get("endTimeUnixNano")
    if type(start) is not int:
        start = _json_int(start)
    if type(end) is not int:
        end = _json_int(end)
    if kind != SPAN_KIND_CLIENT:  # ignored before its attributes are looked at
        return _new_span(Span, (kind, start, end, code == STATUS_CODE_ERROR, {}, None))
    attributes, headers = _read(_json_wanted(span.get("attributes", ()), wanted).get, _JSON, labels)
    return _new_span(Span, (kind, start, end, code == STATUS_CODE_ERROR, attributes, headers))


def _json_list(node: Mapping[str, Any], key: str) -> list[Any]:
    value = node.get(key, [])
    if not isinstance(value, list):
        raise BadRequest(f"{key}: expected a list")
    return value


#: JSON's escapes of UTF-16 surrogates: only a body holding one can fail on a lone half
_SURROGATE_ESCAPES = (b"\\ud", b"\\uD")


def parse_json(body: bytes) -> Any:
    """The body as JSON, by orjson (a third of the standard library's instructions on OTLP/JSON,
    bench/README.md): UTF-8 only, no NaN or Infinity, at most 1,024 levels deep; integers past
    64 bits read as floats (which no OTLP field accepts) and past a double's range are refused.

    orjson refuses a lone UTF-16 surrogate escape (``"\\ud83d"``), which Node's JSON.stringify writes
    for a string cut inside a pair (an attribute length limit does that). Refusing the request would
    lose every span in it for one attribute we probably never read, so such a body is read by the
    standard library instead, as the Collector reads it; the strings we read only ever reach labels
    through the adapters' and the config's fixed sets."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        reason = str(exc)
        if reason.startswith("number is infinity"):
            raise BadRequest(f"body is not usable JSON: a number is out of range{reason[reason.find(':'):]}") from None
        if reason.startswith("depth limit exceeded"):
            raise BadRequest("body is not usable JSON: nested deeper than 1024 levels") from None
        if "surrogate in string" not in reason or not any(escape in body for escape in _SURROGATE_ESCAPES):
            raise BadRequest(f"body is not valid UTF-8 JSON: {reason}") from None
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite_float)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"body is not valid UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("body is not usable JSON: nested too deeply") from None
    except ValueError as exc:  # NaN, 1e999, an integer over 4,300 digits
        raise BadRequest(f"body is not usable JSON: {str(exc).split(';')[0]}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is out of range for a number")
    return value


def decode_json(body: bytes, labels: tuple[str, ...]) -> Iterator[ResourceSpans]:
    """Parse an OTLP/JSON ``ExportTraceServiceRequest``; :class:`BadRequest` when the document or
    its structure is unusable. A single malformed span is kept as ``None`` (rejected, counted)."""
    document = parse_json(body)
    if not isinstance(document, dict):
        raise BadRequest("body must be a JSON object {resourceSpans: [...]}")
    resource_keys = (SERVICE_ATTRIBUTE, *labels)
    wanted, wanted_on_resource = _READ_KEYS.union(labels), frozenset(resource_keys)
    for resource_spans in _json_list(document, "resourceSpans"):
        if not isinstance(resource_spans, dict):
            raise BadRequest("resourceSpans: expected objects")
        resource_node = resource_spans.get("resource")
        raw = (_json_wanted(resource_node.get("attributes", ()), wanted_on_resource)
               if isinstance(resource_node, dict) else {})
        resource: Attributes = {key: _json_text(raw[key]) for key in resource_keys if key in raw}
        spans: list[Span | None] = []
        for scope_spans in _json_list(resource_spans, "scopeSpans"):
            if not isinstance(scope_spans, dict):
                raise BadRequest("scopeSpans: expected objects")
            spans.extend(_json_span(span, labels, wanted) for span in _json_list(scope_spans, "spans"))
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
