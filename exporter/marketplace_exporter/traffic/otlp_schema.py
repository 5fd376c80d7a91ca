"""The slice of the OTLP trace protocol the receiver reads, as protobuf message classes.

Field numbers and wire types are those of opentelemetry-proto v1 (``collector/trace/v1/
trace_service.proto``, ``trace/v1/trace.proto``, ``common/v1/common.proto``,
``resource/v1/resource.proto``); a unit test checks every one against the official descriptors.
Everything else in a span (ids, name, events, links, dropped counts, flags) is skipped by the
parser unread.

Why not the official generated classes: parsing is the same C code (protobuf's ``upb``), but
walking their spans from Python costs ~51,000 instructions per span here, most of it creating a
Python object for every attribute key and value to find the five we need. Declaring ``attributes``
as ``map<string, AnyValue>`` (wire-identical to ``repeated KeyValue``: a map entry *is* a
message with ``key = 1`` and ``value = 2``) lets us look the five up in C instead (bench/README.md
has the figures). Keys are unique by the OTLP spec; a repeated key would keep its last value.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PACKAGE = "marketplace_exporter.otlp"
_F = descriptor_pb2.FieldDescriptorProto
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED

#: (message, [(field, number, type, repeated, message type or None)]); names as in the .proto files
_MESSAGES: list[tuple[str, list[tuple[str, int, int, bool, str | None]]]] = [
    ("AnyValue", [("string_value", 1, _F.TYPE_STRING, False, None), ("int_value", 3, _F.TYPE_INT64, False, None),
                  ("array_value", 5, _F.TYPE_MESSAGE, False, "ArrayValue")]),
    ("ArrayValue", [("values", 1, _F.TYPE_MESSAGE, True, "AnyValue")]),
    ("Status", [("code", 3, _F.TYPE_INT32, False, None)]),
    ("Span", [("kind", 6, _F.TYPE_INT32, False, None), ("start_time_unix_nano", 7, _F.TYPE_FIXED64, False, None),
              ("end_time_unix_nano", 8, _F.TYPE_FIXED64, False, None),
              ("attributes", 9, _F.TYPE_MESSAGE, True, "Span.AttributesEntry"),
              ("status", 15, _F.TYPE_MESSAGE, False, "Status")]),
    ("ScopeSpans", [("spans", 2, _F.TYPE_MESSAGE, True, "Span")]),
    ("Resource", [("attributes", 1, _F.TYPE_MESSAGE, True, "Resource.AttributesEntry")]),
    ("ResourceSpans", [("resource", 1, _F.TYPE_MESSAGE, False, "Resource"),
                       ("scope_spans", 2, _F.TYPE_MESSAGE, True, "ScopeSpans")]),
    ("ExportTraceServiceRequest", [("resource_spans", 1, _F.TYPE_MESSAGE, True, "ResourceSpans")]),
    ("ExportTracePartialSuccess", [("rejected_spans", 1, _F.TYPE_INT64, False, None),
                                   ("error_message", 2, _F.TYPE_STRING, False, None)]),
    ("ExportTraceServiceResponse", [("partial_success", 1, _F.TYPE_MESSAGE, False, "ExportTracePartialSuccess")]),
]
#: messages whose ``attributes`` are read as a map
_WITH_ATTRIBUTE_MAP = ("Span", "Resource")


def _file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(name="marketplace_exporter/otlp_slice.proto", package=_PACKAGE,
                                               syntax="proto3")
    for name, fields in _MESSAGES:
        message = proto.message_type.add(name=name)
        if name in _WITH_ATTRIBUTE_MAP:
            entry = message.nested_type.add(name="AttributesEntry")
            entry.options.map_entry = True
            entry.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_OPTIONAL)
            entry.field.add(name="value", number=2, type=_F.TYPE_MESSAGE, label=_OPTIONAL,
                            type_name=f".{_PACKAGE}.AnyValue")
        for field, number, kind, repeated, type_name in fields:
            added = message.field.add(name=field, number=number, type=kind,
                                      label=_REPEATED if repeated else _OPTIONAL)
            if type_name:
                added.type_name = f".{_PACKAGE}.{type_name}"
    return proto


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())


def _class(name: str) -> Any:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.{name}"))


ExportTraceServiceRequest = _class("ExportTraceServiceRequest")
ExportTraceServiceResponse = _class("ExportTraceServiceResponse")
#: for the schema test: every message declared here, by name
MESSAGES = {name: _class(name) for name, _ in _MESSAGES}
