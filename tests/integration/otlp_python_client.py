"""A Python "ERP" instrumented the way its team would do it: the OpenTelemetry SDK, the requests
instrumentation and the OTLP/HTTP (protobuf) span exporter, configured by the standard
``OTEL_*`` environment variables (endpoint, headers, compression, service name, resource).

Run as its own process by tests/integration/test_otlp_sdks.py: the SDK's tracer provider and the
instrumentation patch ``requests`` process-wide, which must not leak into the test process.
Reads ``{"calls": [{"method", "url", "headers", "body"}], "setup": optional code}`` from stdin, prints the statuses seen
(``"error"`` when no answer came back), then shuts the provider down, which exports every span.
"""

from __future__ import annotations

import json
import sys

import requests
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def main() -> int:
    plan = json.load(sys.stdin)
    provider = TracerProvider(resource=Resource.create())  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # OTEL_EXPORTER_OTLP_TRACES_*
    trace.set_tracer_provider(provider)
    if "setup" in plan:  # code that instruments requests itself (the docs' response hook example)
        exec(plan["setup"], {})  # noqa: S102 - the test's own plan
    else:
        RequestsInstrumentor().instrument()
    statuses: list[int | str] = []
    with requests.Session() as session:
        session.trust_env = False  # loopback only: never through a proxy from the environment
        for call in plan["calls"]:
            try:
                response = session.request(call["method"], call["url"], headers=call.get("headers"),
                                           data=call.get("body"), timeout=5)
                statuses.append(response.status_code)
            except requests.RequestException:
                statuses.append("error")
    provider.shutdown()
    print(json.dumps(statuses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
