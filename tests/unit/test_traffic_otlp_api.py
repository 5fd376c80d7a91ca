"""``POST /v1/traces`` as an OTLP/HTTP exporter meets it: encodings, gzip, auth, limits, answers."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from otlp_requests import SERVER, export_request, json_body, protobuf_body, span
from prometheus_client.parser import text_string_to_metric_families

from marketplace_exporter.server import ConfigSource, create_app, reload_config
from marketplace_exporter.traffic.api import TRAFFIC

TOKEN = "otlp-traffic-token-7Hq2"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROTO = {**AUTH, "Content-Type": "application/x-protobuf"}
JSON = {**AUTH, "Content-Type": "application/json"}
CONFIG = """
accounts:
  - marketplace: shopee
    alias: sg-main
    site: SG
    base_url: http://127.0.0.1:9/shopee
    credentials: {partner_id: 1, partner_key: {value: k}, shop_id: 2, access_token: {value: t}}
    checks: [{operation: get_shops_by_partner, interval: 1h}]
traffic:
  max_body_bytes: 65536
  max_services: 2
  otlp:
    account_attributes: [seller.account]
"""
SHOPEE = {"url.full": "https://partner.shopeemobile.com/api/v2/order/get_order_detail?sign=s",
          "http.request.method": "GET"}
ERP = {"service.name": "order-sync", "seller.account": "sg-main", "seller.site": "SG"}
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def client(tmp_path: Path, aiohttp_client: ClientFactory,
                 monkeypatch: pytest.MonkeyPatch) -> TestClient[Any, Any]:
    monkeypatch.setenv("MARKETPLACE_EXPORTER_TRAFFIC_TOKEN", TOKEN)
    path = tmp_path / "config.yml"
    path.write_text(CONFIG)
    source = ConfigSource(str(path))
    return await aiohttp_client(create_app(source, source.load()))


def calls(*statuses: int, **extra: object) -> list[dict[str, Any]]:
    return [span(SHOPEE | {"http.response.status_code": status} | extra) for status in statuses]


async def samples(client: TestClient[Any, Any], name: str) -> dict[frozenset[tuple[str, str]], float]:
    text = await (await client.get("/metrics")).text()
    return {frozenset(s.labels.items()): s.value for f in text_string_to_metric_families(text)
            for s in f.samples if s.name == name}


async def test_protobuf_and_json_spans_become_traffic_counters(client: TestClient[Any, Any]) -> None:
    request = export_request((ERP, calls(200, 429, 503) + [span(SHOPEE | {"http.response.status_code": 200},
                                                                kind=SERVER)]))
    proto = await client.post("/v1/traces", data=protobuf_body(request), headers=PROTO)
    assert proto.status == 200 and proto.content_type == "application/x-protobuf"
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(await proto.read())
    assert not answer.HasField("partial_success")  # the server span is ignored, not rejected
    as_json = await client.post("/v1/traces", data=json_body(request), headers=JSON)
    assert as_json.status == 200 and as_json.content_type == "application/json"
    assert await as_json.json() == {}

    requests = await samples(client, "marketplace_client_requests_total")
    labels = {("marketplace", "shopee"), ("site", "SG"), ("account", "sg-main"),
              ("operation", "order.get_order_detail"), ("service", "order-sync")}
    assert requests[frozenset(labels | {("status_class", "2xx")})] == 2
    assert requests[frozenset(labels | {("status_class", "4xx")})] == 2
    assert requests[frozenset(labels | {("status_class", "5xx")})] == 2
    spans = await samples(client, "marketplace_traffic_spans_total")
    assert spans == {frozenset({("result", "accepted"), ("reason", "")}): 6,
                     frozenset({("result", "ignored"), ("reason", "not_client")}): 2}
    records = await samples(client, "marketplace_traffic_records_total")
    assert records[frozenset({("service", "order-sync"), ("result", "accepted")})] == 6


async def test_gzip_bodies_are_accepted_and_bounded_after_decompression(client: TestClient[Any, Any]) -> None:
    body = protobuf_body(export_request((ERP, calls(200))))
    ok = await client.post("/v1/traces", data=gzip.compress(body), headers=PROTO | {"Content-Encoding": "gzip"})
    assert ok.status == 200
    # 64 MiB of zeros in ~64 KiB on the wire: refused at the 64 KiB limit, never inflated whole
    deflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    bomb = b"".join(deflater.compress(bytes(1 << 20)) for _ in range(64)) + deflater.flush()
    assert len(bomb) < 65536
    refused = await client.post("/v1/traces", data=bomb, headers=PROTO | {"Content-Encoding": "gzip"})
    assert refused.status == 413
    assert b"after decompression" in await refused.read()
    gzipped_json = JSON | {"Content-Encoding": "gzip"}
    broken = await client.post("/v1/traces", data=b"\x1f\x8b\x08\x00garbage", headers=gzipped_json)
    assert broken.status == 400
    assert (await client.post("/v1/traces", data=body, headers=PROTO | {"Content-Encoding": "snappy"})).status == 415


async def test_oversized_unreadable_and_foreign_bodies_get_otlp_errors(client: TestClient[Any, Any]) -> None:
    too_big = await client.post("/v1/traces", data=bytes(70000), headers=PROTO)
    assert too_big.status == 413
    garbage = await client.post("/v1/traces", data=b"\xff\xff\xff\xff", headers=PROTO)
    assert garbage.status == 400 and garbage.content_type == "application/x-protobuf"
    bad_json = await client.post("/v1/traces", data=b'{"resourceSpans": 5}', headers=JSON)
    assert bad_json.status == 400 and (await bad_json.json())["message"] == "resourceSpans: expected a list"
    form = await client.post("/v1/traces", data=b"a=b", headers=AUTH | {"Content-Type": "text/plain"})
    assert form.status == 415
    metrics = await client.post("/v1/metrics", data=b"{}", headers=JSON)
    assert metrics.status == 404 and "traces only" in (await metrics.json())["message"]
    assert await samples(client, "marketplace_traffic_spans_total") == {}


async def test_the_traffic_token_is_required(client: TestClient[Any, Any]) -> None:
    body = protobuf_body(export_request((ERP, calls(200))))
    missing = await client.post("/v1/traces", data=body, headers={"Content-Type": "application/x-protobuf"})
    assert missing.status == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert missing.content_type == "application/x-protobuf"
    wrong = await client.post("/v1/traces", data=body, headers=PROTO | {"Authorization": "Bearer deploy-token"})
    assert wrong.status == 401 and b"invalid Bearer token" in await wrong.read()
    assert TOKEN.encode() not in await wrong.read()
    assert await samples(client, "marketplace_client_requests_total") == {}


async def test_rejected_spans_are_a_partial_success_with_reasons(client: TestClient[Any, Any]) -> None:
    no_status = [span(SHOPEE)]
    request = export_request((ERP, calls(200) + no_status + calls(700)),
                             ({"seller.account": "sg-main"}, calls(200)),
                             ({"service.name": "second"}, calls(200)),
                             ({"service.name": "third"}, calls(200, 200)))
    response = await client.post("/v1/traces", data=json_body(request), headers=JSON)
    assert response.status == 200
    partial = (await response.json())["partialSuccess"]
    assert partial["rejectedSpans"] == 5
    message = partial["errorMessage"]
    assert "2 too_many_services (traffic.max_services = 2" in message
    assert "1 no_status" in message and "1 bad_status" in message and "1 no_service" in message
    spans = await samples(client, "marketplace_traffic_spans_total")
    assert spans[frozenset({("result", "accepted"), ("reason", "")})] == 2
    assert spans[frozenset({("result", "rejected"), ("reason", "too_many_services")})] == 2


async def test_accounts_outside_the_config_fold_into_other(client: TestClient[Any, Any]) -> None:
    request = export_request(({"service.name": "erp", "seller.account": "shop-77120391"}, calls(200)))
    assert (await client.post("/v1/traces", data=protobuf_body(request), headers=PROTO)).status == 200
    requests = await samples(client, "marketplace_client_requests_total")
    assert {dict(labels)["account"] for labels in requests} == {"other"}


async def test_a_reload_applies_new_attribute_keys(client: TestClient[Any, Any], tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text(CONFIG.replace("[seller.account]", "[tenant]"))
    ok, _ = reload_config(client.app)
    assert ok
    request = export_request(({"service.name": "erp", "tenant": "sg-main"}, calls(200)))
    assert (await client.post("/v1/traces", data=protobuf_body(request), headers=PROTO)).status == 200
    totals = client.app[TRAFFIC].totals("erp")
    assert totals["shopee"].requests == 1
    requests = await samples(client, "marketplace_client_requests_total")
    assert {dict(labels)["account"] for labels in requests} == {"sg-main"}
    assert json.dumps(dict(next(iter(requests)))).count("sign") == 0
