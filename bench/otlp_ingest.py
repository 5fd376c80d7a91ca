#!/usr/bin/env python3
"""OTLP ingest: spans/s the exporter turns into traffic records, beside the native path's records/s.

Numbers, printed, never asserted (goal: OTLP spans/s >= half of ``/api/v1/traffic`` records/s).

The exporter's real app (``create_app`` with ``traffic.anonymous_writes``) runs in a child process
on loopback. In one run, rounds alternate four windows of ``--duration`` seconds each, all POSTed
flat out by ``wrk`` (one thread, ``--connections`` connections; C, so the sender costs little):

* ``native JSON``: ``POST /api/v1/traffic``, a batch of 1,000 records (what the Python hooks'
  ``Reporter`` sends);
* ``OTLP protobuf``, ``OTLP protobuf+gzip``, ``OTLP JSON``: ``POST /v1/traces``, an export
  request of 1,000 HTTP client spans of the same calls, shaped as an SDK sends them (trace and span
  ids, name, kind, times, status, the stable HTTP attributes plus a few the receiver skips, a
  resource with ``service.name``, SDK and host attributes and ``seller.account``).

The calls are the native bench's: Shopee, four operations, one in ten throttled (a 200 with
``error_rate_limit`` in the body, carried in spans as ``marketplace.error_code``). Before timing,
one request of each kind must be accepted whole with the same labels. Printed per kind: median
over rounds of accepted items per wall second (from the exporter's own counters) and per second of
the exporter process's CPU (utime + stime from /proc), with the min-max over rounds, and the
ratio of each OTLP kind to the native path. Then, because timings on a shared machine move by tens
of percent, the instructions per item of the work after the HTTP layer (parse, map, count), counted
in process by ``valgrind --tool=callgrind``: repeatable to about a percent.

    .venv/bin/python bench/otlp_ingest.py [--rounds 3] [--duration 3] [--connections 4] [--no-instructions]

Needs ``wrk`` (``make deps``); exit status 2 without it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import gzip
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from traffic_ingest import cpu_seconds, serve_exporter  # the native bench's exporter child and CPU reading

from marketplace_exporter.traffic.aggregate import TrafficAggregator
from marketplace_exporter.traffic.otlp_api import ingest_spans
from marketplace_exporter.traffic.otlp_decode import decode_protobuf
from marketplace_exporter.traffic.otlp_json import decode_json
from marketplace_exporter.traffic.otlp_settings import OtlpConfig
from marketplace_exporter.traffic.otlp_spans import SpanMapper

BATCH = 1000
OPERATIONS = {"get_shop_info": "/api/v2/shop/get_shop_info", "order.get_order_list": "/api/v2/order/get_order_list",
              "order.get_order_detail": "/api/v2/order/get_order_detail",
              "product.update_stock": "/api/v2/product/update_stock"}
CONFIG = """
traffic: {anonymous_writes: always, max_body_bytes: 8388608}
accounts:
  - marketplace: shopee
    alias: sg-main
    site: SG
    base_url: http://127.0.0.1:9/shopee
    credentials: {partner_id: 1, partner_key: {value: k}, shop_id: 1, access_token: {value: t}}
    checks: [{operation: get_shops_by_partner, interval: 24h}]
"""


def native_batch() -> bytes:
    names = list(OPERATIONS)
    records = []
    for i in range(BATCH):
        failed = i % 10 == 0
        records.append({"marketplace": "shopee", "site": "SG", "account": "sg-main", "operation": names[i % 4],
                        "status": 200, "reason": "throttled" if failed else "",
                        "code": "error_rate_limit" if failed else "", "duration": 0.05 + (i % 50) / 100,
                        "ratelimit": None})
    return json.dumps({"service": "bench-native", "instance": "b", "dropped": 0, "records": records},
                      separators=(",", ":")).encode()


def _kv(key: str, value: object) -> KeyValue:
    any_value = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=str(value))
    return KeyValue(key=key, value=any_value)


def otlp_request() -> ExportTraceServiceRequest:
    rng = random.Random(7)
    names = list(OPERATIONS)
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(_kv(k, v) for k, v in {
        "service.name": "bench-otlp", "service.instance.id": "erp-01", "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.language": "python", "telemetry.sdk.version": "1.45.2", "host.name": "erp-01",
        "process.pid": 4242, "seller.account": "sg-main"}.items())
    scope = resource_spans.scope_spans.add()
    scope.scope.name, scope.scope.version = "opentelemetry.instrumentation.requests", "0.66b2"
    start = time.time_ns()
    for i in range(BATCH):
        failed = i % 10 == 0
        path = OPERATIONS[names[i % 4]]
        span = scope.spans.add()
        span.trace_id, span.span_id = rng.randbytes(16), rng.randbytes(8)
        span.parent_span_id = rng.randbytes(8)
        span.name, span.kind = "GET", 3  # type: ignore[assignment]  # SPAN_KIND_CLIENT
        span.start_time_unix_nano = start + i * 1000
        span.end_time_unix_nano = span.start_time_unix_nano + int((0.05 + (i % 50) / 100) * 1e9)
        attributes = {"http.request.method": "GET", "server.address": "partner.shopeemobile.com",
                      "server.port": 443, "network.protocol.version": "1.1",
                      "url.full": f"https://partner.shopeemobile.com{path}?partner_id=1001&timestamp="
                                  f"{1765000000 + i}&access_token=REDACTED&shop_id=2002&sign=REDACTED",
                      "http.response.status_code": 200, "user_agent.original": "python-requests/2.32.3"}
        if failed:
            attributes["marketplace.error_code"] = "error_rate_limit"
        span.attributes.extend(_kv(k, v) for k, v in attributes.items())
    return request


def otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON as the spec has it: hex ids, integer enums (MessageToDict gives base64 ids)."""
    document = MessageToDict(request, use_integers_for_enums=True)
    for resource_spans, message in zip(document["resourceSpans"], request.resource_spans, strict=True):
        for span, span_message in zip(resource_spans["scopeSpans"][0]["spans"], message.scope_spans[0].spans,
                                      strict=True):
            span["traceId"], span["spanId"] = span_message.trace_id.hex(), span_message.span_id.hex()
            span["parentSpanId"] = span_message.parent_span_id.hex()
    return json.dumps(document, separators=(",", ":")).encode()


# --- instructions per item, in process (repeatable where timings are not) ---------------------------
def pipelines(kinds: list[Kind]) -> dict[str, Callable[[], object]]:
    """Each kind's work after the HTTP layer, exactly as the handlers do it: parse and count through
    ``TrafficAggregator.ingest`` (the OTLP kinds through the receiver's decode + span mapping)."""
    aggregator = TrafficAggregator(accounts={"shopee": ["sg-main"]})
    mapper = SpanMapper(OtlpConfig())
    native, protobuf, _, as_json = (kind.body for kind in kinds)
    return {"native JSON": lambda: aggregator.ingest("n", 0, json.loads(native)["records"]),
            "OTLP protobuf": lambda: ingest_spans(aggregator, mapper, decode_protobuf(protobuf, mapper.labels)),
            "OTLP JSON": lambda: ingest_spans(aggregator, mapper, decode_json(as_json, mapper.labels))}


def count_child(batches: int) -> None:
    """Under callgrind: each pipeline warmed, then ``batches`` runs between two ``getsid`` marks."""
    runs = pipelines(make_kinds())
    for run in runs.values():
        run()
        gc.collect()
        os.getsid(0)
        for _ in range(batches):
            run()
        os.getsid(0)


def instructions(batches: int) -> dict[str, float]:
    """Instructions per item of each pipeline (valgrind --tool=callgrind, --dump-before=getsid)."""
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "cg.out")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-before=getsid",
                        sys.executable, __file__, "_count", str(batches)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        dumps = sorted((n for n in os.listdir(folder) if n.startswith("cg.out.")),
                       key=lambda n: int(n.rsplit(".", 1)[1]))
        counts = []
        for name in dumps:
            with open(os.path.join(folder, name), encoding="utf-8") as handle:
                counts.append(int(next(line for line in handle if line.startswith(("summary:", "totals:"))).split()[1]))
    names = list(pipelines(make_kinds()))
    measured = counts[1::2]  # dumps alternate: warm-up + mark, then the measured block
    if len(measured) != len(names):
        sys.exit(f"otlp_ingest: expected {2 * len(names)} callgrind dumps, got {len(counts)}")
    return {name: count / (batches * BATCH) for name, count in zip(names, measured, strict=True)}


class Kind:
    def __init__(self, name: str, route: str, content_type: str, body: bytes, counter: str,
                 encoding: str = "") -> None:
        self.name, self.route, self.content_type, self.body = name, route, content_type, body
        self.counter, self.encoding = counter, encoding
        self.wall: list[float] = []
        self.cpu: list[float] = []


async def accepted(base: str, counter: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as response:
        text = await response.text()
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
               if line.startswith(counter + "{") and 'result="accepted"' in line)


async def check_once(base: str, kind: Kind) -> None:
    """One request of the kind must be accepted whole, with nothing rejected."""
    headers = {"Content-Type": kind.content_type} | ({"Content-Encoding": kind.encoding} if kind.encoding else {})
    before = await accepted(base, kind.counter)
    async with aiohttp.ClientSession() as session, session.post(base + kind.route, data=kind.body,
                                                                headers=headers) as response:
        answer = await response.read()
        if response.status != 200:
            sys.exit(f"{kind.name}: HTTP {response.status}: {answer[:300]!r}")
    if (got := await accepted(base, kind.counter) - before) != BATCH:
        sys.exit(f"{kind.name}: {got} of {BATCH} accepted; answer {answer[:300]!r}")


async def window(base: str, pid: int, kind: Kind, duration: int, connections: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        body = Path(folder, "body")
        body.write_bytes(kind.body)
        script = Path(folder, "post.lua")
        encoding = f'wrk.headers["Content-Encoding"] = "{kind.encoding}"\n' if kind.encoding else ""
        script.write_text(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "{kind.content_type}"\n{encoding}'
                          f'local f = io.open("{body}", "rb")\nwrk.body = f:read("*a")\nf:close()\n')
        before = await accepted(base, kind.counter)
        cpu0, start = cpu_seconds(pid), time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "-s", str(script), base + kind.route,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        await process.wait()
        elapsed, cpu = time.perf_counter() - start, cpu_seconds(pid) - cpu0
        count = await accepted(base, kind.counter) - before
    kind.wall.append(count / elapsed)
    kind.cpu.append(count / max(cpu, 1e-9))


def report(kinds: list[Kind]) -> None:
    native = statistics.median(kinds[0].wall)
    native_cpu = statistics.median(kinds[0].cpu)
    print(f"{'kind':<20}{'items/s wall (min-max)':>32}{'items per exporter CPU-s (min-max)':>40}"
          f"{'× native wall / CPU':>22}  goal >= 0.5 (CPU)")
    for kind in kinds:
        wall, cpu = statistics.median(kind.wall), statistics.median(kind.cpu)
        ratio = verdict = ""
        if kind is not kinds[0]:
            ratio = f"{wall / native:.2f} / {cpu / native_cpu:.2f}"
            verdict = "met" if cpu / native_cpu >= 0.5 else "missed"
        print(f"{kind.name:<20}{wall:>12,.0f} ({min(kind.wall):,.0f}-{max(kind.wall):,.0f})"
              f"{cpu:>20,.0f} ({min(kind.cpu):,.0f}-{max(kind.cpu):,.0f}){ratio:>22}  {verdict}")


def make_kinds() -> list[Kind]:
    request = otlp_request()
    protobuf = request.SerializeToString()
    return [Kind("native JSON", "/api/v1/traffic", "application/json", native_batch(),
                 "marketplace_traffic_records_total"),
            Kind("OTLP protobuf", "/v1/traces", "application/x-protobuf", protobuf, "marketplace_traffic_spans_total"),
            Kind("OTLP protobuf+gzip", "/v1/traces", "application/x-protobuf", gzip.compress(protobuf),
                 "marketplace_traffic_spans_total", "gzip"),
            Kind("OTLP JSON", "/v1/traces", "application/json", otlp_json(request), "marketplace_traffic_spans_total")]


async def run(args: argparse.Namespace) -> None:
    kinds = make_kinds()
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        handle.write(CONFIG)
    child = subprocess.Popen([sys.executable, __file__, "_exporter", handle.name], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        base = f"http://127.0.0.1:{int(child.stdout.readline())}"
        for kind in kinds:
            await check_once(base, kind)
        sizes = ", ".join(f"{k.name} {len(k.body) / 1024:,.0f} KiB" for k in kinds)
        print(f"batches of {BATCH:,} ({sizes}); wrk -t1 -c{args.connections}, {args.duration:g} s windows, "
              f"{args.rounds} rounds")
        for round_number in range(args.rounds):
            order = kinds[round_number % len(kinds):] + kinds[:round_number % len(kinds)]
            for kind in order:
                await window(base, child.pid, kind, args.duration, args.connections)
        report(kinds)
    finally:
        child.terminate()
        child.wait(10)
        os.unlink(handle.name)
    if args.no_instructions or shutil.which("valgrind") is None:
        return
    counted = instructions(args.count_batches)
    native = counted["native JSON"]
    print(f"instructions per item after the HTTP layer (callgrind, {args.count_batches} batches; repeatable "
          "to ~1 %):")
    for name, count in counted.items():
        share = "" if name == "native JSON" else f"   native/this = {native / count:.2f}"
        print(f"  {name:<18}{count:>10,.0f}{share}")


def main() -> None:
    if sys.argv[1:2] == ["_exporter"]:
        serve_exporter(sys.argv[2])
        return
    if sys.argv[1:2] == ["_count"]:
        count_child(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each runs every kind once (rotated)")
    parser.add_argument("--duration", type=int, default=3, help="seconds per window (whole seconds: wrk)")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections")
    parser.add_argument("--count-batches", type=int, default=3, help="batches per pipeline under callgrind")
    parser.add_argument("--no-instructions", action="store_true",
                        help="skip the callgrind instruction counts (about a minute; skipped without valgrind)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("otlp_ingest: wrk is missing (make deps)", file=sys.stderr)
        sys.exit(2)
    load = os.getloadavg()[0]
    print(f"OTLP ingest vs /api/v1/traffic; {os.cpu_count()} CPUs, load average {load:.1f}; Python "
          f"{sys.version.split()[0]}, aiohttp {aiohttp.__version__}")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
