"""Build OTLP trace export requests for tests: the same spans as protobuf bytes or OTLP/JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

CLIENT, SERVER, INTERNAL = 3, 2, 1
START_NS = 1_765_000_000_000_000_000


def any_value(value: object) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list):
        result = AnyValue()
        result.array_value.values.extend(any_value(v) for v in value)
        return result
    return AnyValue(string_value=str(value))


def key_values(attributes: Mapping[str, object]) -> list[KeyValue]:
    return [KeyValue(key=key, value=any_value(value)) for key, value in attributes.items()]


def span(attributes: Mapping[str, object], *, kind: int = CLIENT, seconds: float = 0.25, error: bool = False,
         start: int = START_NS) -> dict[str, Any]:
    return {"attributes": attributes, "kind": kind, "start": start, "end": start + int(seconds * 1e9),
            "error": error}


def export_request(*resources: tuple[Mapping[str, object], list[dict[str, Any]]]) -> ExportTraceServiceRequest:
    """``resources``: (resource attributes, spans made by :func:`span`) per resource."""
    request = ExportTraceServiceRequest()
    for resource_attributes, spans in resources:
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.extend(key_values(resource_attributes))
        scope_spans = resource_spans.scope_spans.add()
        scope_spans.scope.name = "tests"
        for index, item in enumerate(spans):
            message = scope_spans.spans.add()
            message.trace_id = bytes(range(16))
            message.span_id = index.to_bytes(8, "big")
            message.name = "GET"
            message.kind = item["kind"]
            message.start_time_unix_nano = item["start"]
            message.end_time_unix_nano = item["end"]
            message.attributes.extend(key_values(item["attributes"]))
            if item["error"]:
                message.status.code = 2  # type: ignore[assignment]  # STATUS_CODE_ERROR; an int at run time
    return request


def protobuf_body(request: ExportTraceServiceRequest) -> bytes:
    return bytes(request.SerializeToString())


def json_body(request: ExportTraceServiceRequest, *, enum_names: bool = False) -> bytes:
    """OTLP/JSON: lowerCamelCase keys, int64 as strings, enums as integers (or names, which some
    hand-written senders use and we accept too)."""
    document = MessageToDict(request, use_integers_for_enums=not enum_names)
    return json.dumps(document).encode()
