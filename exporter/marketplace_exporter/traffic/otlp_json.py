"""OTLP/JSON trace export requests → the span facts traffic needs (:mod:`.otlp_decode` for both).

OTLP/JSON (the OTLP/HTTP specification): lowerCamelCase keys, enums as integers (names accepted),
64-bit integers as decimal strings or numbers, hex ids we never read. Two readers give the same
:class:`~.otlp_decode.ResourceSpans`:

* **typed** (every SDK's body): msgspec decodes the body straight into the slice of the schema the
  receiver reads (:class:`_Request` and below, each field as the OTLP/JSON mapping types it). Ids,
  names, events, links and every other field are skipped without building a Python object, and the
  structs are not tracked by the garbage collector. A body that does not fit that slice in any
  place (a ``null``, a bool where a number goes, an integer past 64 bits, a span that is not an
  object, bad UTF-8 anywhere...) is not refused here: it goes to the careful reader.
* **careful**: orjson parses the whole document (:func:`parse_json`: UTF-8 only, no NaN, at most
  1,024 levels) and each node's type is checked where it is read: a malformed span becomes
  ``None`` (rejected, counted) and the rest of the request counts; an unusable request is a
  :class:`~.otlp_decode.BadRequest` with the reason.

Both read an attribute as the conventions type it (:func:`~.otlp_decode.read_attributes`); a unit
test decodes SDK-shaped and odd bodies both ways and requires the same spans. One difference, on
purpose: fields the receiver never reads are checked for JSON syntax, escapes and UTF-8 only, so a
number past a double's range there (``1e999``) no longer refuses an SDK-shaped request; in a field
that is read, it still does (the typed reader leaves such a body to the careful one).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Annotated, Any

import msgspec
import orjson
from msgspec import UNSET, UnsetType

from marketplace_exporter.traffic.otlp_decode import (
    KIND_NAMES,
    READ_KEYS,
    SERVICE_ATTRIBUTE,
    SPAN_KIND_CLIENT,
    STATUS_CODE_ERROR,
    STATUS_NAMES,
    Attributes,
    AttributeValues,
    BadRequest,
    ResourceSpans,
    Span,
    integer_text,
    new_span,
    read_attributes,
)
from marketplace_exporter.write_api import strict_json_loads

# --- typed: msgspec into the slice of the schema we read ------------------------------------------------
#: an integer as orjson reads one (past 64 bits it is a float there): wider ones leave the typed reader
_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class _AnyValue(msgspec.Struct, rename="camel", gc=False):
    string_value: str | UnsetType = UNSET
    int_value: _Int64 | str | UnsetType = UNSET
    array_value: _ArrayValue | UnsetType = UNSET


class _ArrayValue(msgspec.Struct, gc=False):
    values: list[_AnyValue] = msgspec.field(default_factory=list)


class _KeyValue(msgspec.Struct, gc=False):
    key: str
    value: _AnyValue


class _Status(msgspec.Struct, gc=False):
    code: _Int64 | str = 0


class _Span(msgspec.Struct, rename="camel", gc=False):
    kind: _Int64 | str = 0
    start_time_unix_nano: _Int64 | str | UnsetType = UNSET
    end_time_unix_nano: _Int64 | str | UnsetType = UNSET
    attributes: list[_KeyValue] = msgspec.field(default_factory=list)
    status: _Status | UnsetType = UNSET


class _ScopeSpans(msgspec.Struct, gc=False):
    spans: list[_Span] = msgspec.field(default_factory=list)


class _Resource(msgspec.Struct, gc=False):
    attributes: list[_KeyValue] = msgspec.field(default_factory=list)


class _ResourceSpans(msgspec.Struct, rename="camel", gc=False):
    resource: _Resource | UnsetType = UNSET
    scope_spans: list[_ScopeSpans] = msgspec.field(default_factory=list)


class _Request(msgspec.Struct, rename="camel", gc=False):
    resource_spans: list[_ResourceSpans] = msgspec.field(default_factory=list)


_TYPED = msgspec.json.Decoder(_Request)


def _typed_text(value: _AnyValue) -> str:
    text = value.string_value
    return "" if text is UNSET else text


def _typed_integer(value: _AnyValue) -> int:
    number = value.int_value
    if number is UNSET:
        number = value.string_value
    if type(number) is int:
        return number
    return integer_text(number) if isinstance(number, str) else -1


def _typed_header(value: _AnyValue) -> str:
    array = value.array_value
    if array is not UNSET and array.values:
        return _typed_text(array.values[0])
    return _typed_text(value)


_TYPED_VALUES = AttributeValues(_typed_text, _typed_integer, _typed_header)


def decode_typed(body: bytes, labels: tuple[str, ...]) -> list[ResourceSpans] | None:
    """The request read through the typed slice; None when it does not fit (read it carefully)."""
    if not body.isascii():
        try:  # msgspec checks UTF-8 only in the strings it keeps; the careful reader everywhere
            body.decode("utf-8")
        except UnicodeDecodeError:
            return None
    try:
        request = _TYPED.decode(body)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return None
    resource_keys = (SERVICE_ATTRIBUTE, *labels)
    wanted, wanted_on_resource = READ_KEYS.union(labels), frozenset(resource_keys)
    decoded = []
    for resource_spans in request.resource_spans:
        node = resource_spans.resource
        raw = {} if node is UNSET else {kv.key: kv.value for kv in node.attributes if kv.key in wanted_on_resource}
        resource: Attributes = {key: _typed_text(raw[key]) for key in resource_keys if key in raw}
        spans: list[Span | None] = []
        add = spans.append
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                kind: int | str | None = span.kind
                if type(kind) is not int:
                    kind = KIND_NAMES.get(kind)  # type: ignore[arg-type]  # a str here
                status = span.status
                code: int | str | None = 0 if status is UNSET else status.code
                if type(code) is not int:
                    code = STATUS_NAMES.get(code)  # type: ignore[arg-type]
                if kind is None or code is None:
                    add(None)
                    continue
                start: object = span.start_time_unix_nano
                end: object = span.end_time_unix_nano
                if type(start) is not int:
                    start = _json_int(start)
                if type(end) is not int:
                    end = _json_int(end)
                if kind != SPAN_KIND_CLIENT:  # ignored before its attributes are looked at
                    add(new_span(Span, (kind, start, end, code == STATUS_CODE_ERROR, {}, None)))
                    continue
                found = {kv.key: kv.value for kv in span.attributes if kv.key in wanted}
                attributes, headers = read_attributes(found.get, _TYPED_VALUES, labels)
                add(new_span(Span, (kind, start, end, code == STATUS_CODE_ERROR, attributes, headers)))
        decoded.append(ResourceSpans(resource, spans))
    return decoded


# --- careful: orjson's document, each node checked where it is read --------------------------------------
def _json_text(value: Any) -> str:
    text = value.get("stringValue") if isinstance(value, dict) else None
    return text if isinstance(text, str) else ""


def _json_integer(value: Any) -> int:
    number = value.get("intValue", value.get("stringValue")) if isinstance(value, dict) else None
    if isinstance(number, int) and not isinstance(number, bool):
        return number
    return integer_text(number) if isinstance(number, str) else -1


def _json_header(value: Any) -> str:
    array = value.get("arrayValue") if isinstance(value, dict) else None
    if isinstance(array, dict) and isinstance(array.get("values"), list) and array["values"]:
        return _json_text(array["values"][0])
    return _json_text(value)


_JSON = AttributeValues(_json_text, _json_integer, _json_header)


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
    """Only the attributes :func:`read_attributes` may look up, skipping entries that are not
    ``{key, value}`` objects with a string key."""
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
    kind = _json_enum(span.get("kind", 0), KIND_NAMES)
    status = span.get("status")
    code = _json_enum(status.get("code", 0) if isinstance(status, dict) else 0, STATUS_NAMES)
    if kind is None or code is None:
        return None
    start, end = _json_int(span.get("startTimeUnixNano")), _json_int(span.get("endTimeUnixNano"))
    if kind != SPAN_KIND_CLIENT:  # ignored before its attributes are looked at
        return Span(kind, start, end, code == STATUS_CODE_ERROR, {}, None)
    attributes, headers = read_attributes(_json_wanted(span.get("attributes", ()), wanted).get, _JSON, labels)
    return Span(kind, start, end, code == STATUS_CODE_ERROR, attributes, headers)


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
        return strict_json_loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"body is not valid UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("body is not usable JSON: nested too deeply") from None
    except ValueError as exc:  # NaN, 1e999, an integer over 4,300 digits
        raise BadRequest(f"body is not usable JSON: {str(exc).split(';')[0]}") from None


def decode_carefully(body: bytes, labels: tuple[str, ...]) -> Iterator[ResourceSpans]:
    """The careful reader: :class:`BadRequest` when the document or its structure is unusable; a
    single malformed span is kept as ``None`` (rejected, counted)."""
    document = parse_json(body)
    if not isinstance(document, dict):
        raise BadRequest("body must be a JSON object {resourceSpans: [...]}")
    resource_keys = (SERVICE_ATTRIBUTE, *labels)
    wanted, wanted_on_resource = READ_KEYS.union(labels), frozenset(resource_keys)
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


def decode_json(body: bytes, labels: tuple[str, ...]) -> Iterator[ResourceSpans]:
    """Parse an OTLP/JSON ``ExportTraceServiceRequest`` (``labels``: the configured account/site
    attribute keys, read on spans and resources): typed when it fits, else carefully."""
    typed = decode_typed(body, labels)
    if typed is None:
        yield from decode_carefully(body, labels)
    else:
        yield from typed
