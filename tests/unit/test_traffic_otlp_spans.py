"""OTLP spans → traffic records: both encodings, both semconv generations, the adapters' own labels."""

from __future__ import annotations

import json
from typing import Any

import pytest
from otlp_requests import CLIENT, INTERNAL, SERVER, export_request, json_body, protobuf_body, span

from marketplace_exporter.adapters import ADAPTERS
from marketplace_exporter.traffic.aggregate import TrafficAggregator
from marketplace_exporter.traffic.classify import Classifier
from marketplace_exporter.traffic.otlp_api import ingest_spans
from marketplace_exporter.traffic.otlp_decode import BadRequest, ResourceSpans, decode_protobuf
from marketplace_exporter.traffic.otlp_json import decode_json
from marketplace_exporter.traffic.otlp_settings import OtlpConfig
from marketplace_exporter.traffic.otlp_spans import ENVELOPES, SpanMapper, service_name
from marketplace_exporter.traffic.wire import parse_record

SHOPEE = "https://partner.shopeemobile.com/api/v2/order/get_order_list?partner_id=1&sign=abc"
AMAZON = "https://sellingpartnerapi-na.amazon.com/orders/v0/orders/123-4567890-1234567"
STABLE = {"http.request.method": "GET", "url.full": SHOPEE, "server.address": "partner.shopeemobile.com",
          "server.port": 443, "http.response.status_code": 429}
OLD = {"http.method": "GET", "http.url": SHOPEE, "net.peer.name": "partner.shopeemobile.com",
       "http.status_code": 429}
OLD_PARTS = {"http.method": "GET", "http.scheme": "https", "net.peer.name": "partner.shopeemobile.com",
             "http.target": "/api/v2/order/get_order_list?partner_id=1", "http.status_code": 429}
STABLE_PARTS = {"http.request.method": "GET", "server.address": "partner.shopeemobile.com",
                "url.path": "/api/v2/order/get_order_list", "http.response.status_code": 429}
RESOURCE: dict[str, object] = {"service.name": "order-sync", "seller.account": "sg-main", "seller.site": "SG"}


def decoded(spans: list[dict[str, Any]], resource: dict[str, object] | None = None,
            encoding: str = "protobuf", mapper: SpanMapper | None = None) -> list[ResourceSpans]:
    mapper = mapper or SpanMapper(OtlpConfig())
    request = export_request((RESOURCE if resource is None else resource, spans))
    if encoding == "protobuf":
        return list(decode_protobuf(protobuf_body(request), mapper.labels))
    return list(decode_json(json_body(request, enum_names=encoding == "json-names"), mapper.labels))


def outcomes(spans: list[dict[str, Any]], resource: dict[str, object] | None = None, encoding: str = "protobuf",
             config: OtlpConfig | None = None) -> list[tuple[str, str, dict[str, object] | None]]:
    mapper = SpanMapper(config or OtlpConfig(), clock=lambda: 1_765_000_000.0)
    result = []
    for resource_spans in decoded(spans, resource, encoding, mapper):
        context = mapper.context(resource_spans.resource)
        for item in resource_spans.spans:
            outcome = mapper.outcome(item, context)
            result.append((outcome.result, outcome.reason, outcome.record))
    return result


@pytest.mark.parametrize("encoding", ["protobuf", "json", "json-names"])
@pytest.mark.parametrize("attributes", [STABLE, OLD, OLD_PARTS, STABLE_PARTS],
                         ids=["stable", "old", "old-target", "stable-path"])
def test_both_semconv_generations_and_encodings_give_the_hooks_labels(encoding: str,
                                                                     attributes: dict[str, object]) -> None:
    [(result, _, record)] = outcomes([span(attributes, seconds=0.231)], encoding=encoding)
    assert result == "accepted" and record is not None
    assert record == {"marketplace": "shopee", "site": "SG", "account": "sg-main",
                      "operation": "order.get_order_list", "status": 429, "reason": "throttled", "code": "",
                      "duration": pytest.approx(0.231), "ratelimit": None, "ratelimit_remaining": None}


def test_only_http_client_spans_to_marketplace_hosts_count() -> None:
    spans = [span(STABLE, kind=SERVER), span(STABLE, kind=INTERNAL),
             span({"db.system": "postgresql", "db.name": "orders"}, kind=CLIENT),
             span({"url.full": "https://hooks.example.com/order", "http.response.status_code": 200}),
             span(STABLE)]
    assert [(r, why) for r, why, _ in outcomes(spans)] == [
        ("ignored", "not_client"), ("ignored", "not_client"), ("ignored", "not_http"),
        ("ignored", "not_marketplace"), ("accepted", "")]


def test_spans_the_exporter_cannot_use_are_rejected_with_a_reason() -> None:
    no_status = {k: v for k, v in STABLE.items() if k != "http.response.status_code"}
    spans = [span(no_status), span(STABLE | {"http.response.status_code": 700}),
             span(STABLE | {"http.response.status_code": "teapot"}), span(STABLE, seconds=-1.0),
             span(STABLE, start=0)]
    assert [(r, why) for r, why, _ in outcomes(spans)] == [
        ("rejected", "no_status"), ("rejected", "bad_status"), ("rejected", "bad_status"),
        ("rejected", "bad_duration"), ("rejected", "bad_duration")]


@pytest.mark.parametrize(("error_type", "reason"), [
    ("requests.exceptions.ConnectTimeout", "timeout"), ("ETIMEDOUT", "timeout"), ("ECONNREFUSED", "connect"),
    ("ssl.SSLCertVerificationError", "tls"), ("CERT_HAS_EXPIRED", "tls"), ("", "connect")])
def test_a_call_without_an_answer_is_a_transport_failure(error_type: str, reason: str) -> None:
    attributes = {k: v for k, v in STABLE.items() if k != "http.response.status_code"}
    if error_type:
        attributes["error.type"] = error_type
    [(result, _, record)] = outcomes([span(attributes, error=True)])
    assert result == "accepted" and record is not None
    assert (record["status"], record["reason"], record["code"]) == (0, reason, "")


def test_an_error_code_attribute_is_classified_as_the_body_would_be() -> None:
    """Shopee's errors come inside HTTP 200: a span alone says success, the attribute says why not."""
    plain, coded, unknown = outcomes([span(STABLE | {"http.response.status_code": 200}),
                                      span(STABLE | {"http.response.status_code": 200,
                                                     "marketplace.error_code": "error_rate_limit"}),
                                      span(STABLE | {"http.response.status_code": 200,
                                                     "marketplace.error_code": "seller_12345_secret"})])
    assert plain[2] is not None and (plain[2]["reason"], plain[2]["code"]) == ("", "")
    assert coded[2] is not None and (coded[2]["reason"], coded[2]["code"]) == ("throttled", "error_rate_limit")
    assert unknown[2] is not None and unknown[2]["code"] == "other"


@pytest.mark.parametrize("marketplace", sorted(ENVELOPES))
def test_every_known_code_survives_its_envelope(marketplace: str) -> None:
    """The envelope table must say what each adapter reads: every known code comes back as itself
    (at an error status, and at 200 where the platform reports errors in 2xx bodies)."""
    adapter = ADAPTERS[marketplace]
    operations = sorted(adapter.api_operations)
    lost = []
    for code in sorted(adapter.known_codes):
        bodies = [json.dumps(wrap(code)).encode() for wrap in ENVELOPES[marketplace]]
        if not any(adapter.classify(operation, status, {}, body, 0.0).code == code
                   for operation in operations for status in (400, 401, 200) for body in bodies):
            lost.append(code)
    assert not lost, f"{marketplace}: codes not found in their envelope: {lost}"
    assert set(ENVELOPES) == {name for name, a in ADAPTERS.items() if a.api_operations}


def test_account_and_site_come_from_the_span_then_the_resource() -> None:
    config = OtlpConfig(account_attributes=("tenant.account", "seller.account"))
    [by_span, by_resource, none] = outcomes(
        [span(STABLE | {"tenant.account": "my-main", "seller.site": "MY"}), span(STABLE),
         span(STABLE)], resource=RESOURCE, config=config)[:2] + outcomes([span(STABLE)], resource={}, config=config)
    assert by_span[2] is not None and (by_span[2]["account"], by_span[2]["site"]) == ("my-main", "MY")
    assert by_resource[2] is not None and (by_resource[2]["account"], by_resource[2]["site"]) == ("sg-main", "SG")
    assert none[2] is not None and (none[2]["account"], none[2]["site"]) == ("other", "other")


def test_a_host_that_tells_the_site_wins_over_the_attribute() -> None:
    lazada = {"url.full": "https://api.lazada.co.th/rest/orders/get?created_after=x",
              "http.response.status_code": 200}
    [(_, _, record)] = outcomes([span(lazada)], resource=RESOURCE | {"seller.site": "SG"})
    assert record is not None and (record["marketplace"], record["site"], record["operation"]) == (
        "lazada", "TH", "orders.get")


def test_a_proxy_base_url_maps_to_its_marketplace() -> None:
    config = OtlpConfig(base_urls={"http://127.0.0.1:29999/amazon/na": "amazon_sp"})
    stable = {"url.full": "http://127.0.0.1:29999/amazon/na/orders/v0/orders", "http.response.status_code": 403}
    parts = {"server.address": "127.0.0.1", "server.port": 29999, "url.path": "/amazon/na/orders/v0/orders",
             "http.response.status_code": 403}
    other_port = stable | {"url.full": "http://127.0.0.1:29998/amazon/na/orders/v0/orders"}
    results = outcomes([span(stable), span(parts), span(other_port)], config=config)
    assert [(r[0], r[2] and r[2]["operation"]) for r in results] == [
        ("accepted", "orders.get_orders"), ("accepted", "orders.get_orders"), ("ignored", None)]


def test_captured_response_headers_reach_the_classifier() -> None:
    """Walmart and Wish state the requests left in every answer; an instrumentation that captures
    response headers passes them on and the headroom gauge fills from spans too."""
    walmart = {"url.full": "https://marketplace.walmartapis.com/v3/orders?limit=10", "http.response.status_code": 200,
               "http.response.header.x-current-token-count": ["17"]}
    [(_, _, record)] = outcomes([span(walmart)], resource=RESOURCE | {"seller.site": "US"})
    assert record is not None and record["ratelimit_remaining"] == 17
    wish = {"url.full": "https://merchant.wish.com/api/v3/orders", "http.response.status_code": 429,
            "http.response.header.wish-rate-limit-remaining": ["0"]}
    [(_, _, record)] = outcomes([span(wish)])
    assert record is not None and (record["reason"], record["ratelimit_remaining"]) == ("throttled", 0)


def test_service_names_fit_the_label_pattern() -> None:
    assert service_name({"service.name": "order-sync"}) == "order-sync"
    assert service_name({"service.name": "unknown_service:node"}) == "unknown_service_node"
    assert service_name({"service.name": "订单同步"}) is None  # nothing left of it: rejected as no_service
    assert service_name({"service.name": "订单-sync"}) == "sync"
    assert service_name({}) is None and service_name({"service.name": ""}) is None


def test_unreadable_requests_are_bad_requests() -> None:
    mapper = SpanMapper(OtlpConfig())
    for body in (b"\xff\xff\xff", b"\x0a\x05abc"):
        with pytest.raises(BadRequest):
            list(decode_protobuf(body, mapper.labels))
    for raw in (b"not json", b"[]", b'{"resourceSpans": {}}', b'{"resourceSpans": [{"scopeSpans": 3}]}'):
        with pytest.raises(BadRequest):
            list(decode_json(raw, mapper.labels))
    # one malformed span in JSON is that span's problem, not the request's
    [resource] = decode_json(b'{"resourceSpans": [{"scopeSpans": [{"spans": [7, {"kind": "nope"}]}]}]}',
                             mapper.labels)
    assert resource.spans == [None, None]


def test_the_schema_slice_matches_the_official_otlp_descriptors() -> None:
    """Every field the receiver declares has the official field number and a wire-compatible type
    (enums read as int32; attributes as a map, i.e. repeated {key = 1, value = 2} entries)."""
    from google.protobuf.descriptor import FieldDescriptor
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    from opentelemetry.proto.common.v1 import common_pb2
    from opentelemetry.proto.resource.v1 import resource_pb2
    from opentelemetry.proto.trace.v1 import trace_pb2

    from marketplace_exporter.traffic.otlp_schema import MESSAGES

    official = {"AnyValue": common_pb2.AnyValue, "ArrayValue": common_pb2.ArrayValue,
                "Status": trace_pb2.Status, "Span": trace_pb2.Span, "ScopeSpans": trace_pb2.ScopeSpans,
                "Resource": resource_pb2.Resource, "ResourceSpans": trace_pb2.ResourceSpans,
                "ExportTraceServiceRequest": trace_service_pb2.ExportTraceServiceRequest,
                "ExportTracePartialSuccess": trace_service_pb2.ExportTracePartialSuccess,
                "ExportTraceServiceResponse": trace_service_pb2.ExportTraceServiceResponse}
    assert set(MESSAGES) == set(official)
    checked = 0
    for name, slim in MESSAGES.items():
        for field in slim.DESCRIPTOR.fields:
            theirs = official[name].DESCRIPTOR.fields_by_name[field.name]
            assert field.number == theirs.number, (name, field.name)
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                assert theirs.message_type.name == "KeyValue" and theirs.is_repeated, (name, field.name)
                # later fields (key_strindex = 3) index the profiles signal's string table, never traces'
                assert [(f.name, f.number) for f in theirs.message_type.fields][:2] == [("key", 1), ("value", 2)]
            elif theirs.type == FieldDescriptor.TYPE_ENUM:
                assert field.type == FieldDescriptor.TYPE_INT32, (name, field.name)
            else:
                assert (field.type, field.is_repeated) == (theirs.type, theirs.is_repeated), (name, field.name)
            checked += 1
    assert checked >= 15


def test_spans_of_one_shape_share_labels_but_keep_their_own_numbers() -> None:
    """The memo by call shape must never leak one span's duration, status or account into another."""
    spans = [span(STABLE | {"http.response.status_code": 200}, seconds=0.1),
             span(STABLE | {"http.response.status_code": 200, "url.full": SHOPEE.replace("sign=abc", "sign=x")},
                  seconds=0.7),
             span(STABLE | {"http.response.status_code": 500}, seconds=0.2),
             span(STABLE | {"http.response.status_code": 200, "seller.account": "my-main"}, seconds=0.3)]
    records = [record for _, _, record in outcomes(spans)]
    assert [(r["status"], r["account"], r["duration"]) for r in records if r] == [
        (200, "sg-main", pytest.approx(0.1)), (200, "sg-main", pytest.approx(0.7)),
        (500, "sg-main", pytest.approx(0.2)), (200, "my-main", pytest.approx(0.3))]
    assert records[0] is not records[1]


#: production URLs per marketplace as an ERP calls them: an API call, and the token exchange where
#: the platform answers it in an envelope of its own (OAuth error codes)
PRODUCTION_URLS: dict[str, tuple[str, ...]] = {
    "shopee": (SHOPEE,),
    "amazon_sp": (AMAZON, "https://api.amazon.com/auth/o2/token"),
    "lazada": ("https://api.lazada.co.th/rest/orders/get?access_token=T",),
    "aliexpress": ("https://api-sg.aliexpress.com/sync?method=aliexpress.trade.seller.orderlist.get&session=T",),
    "tiktok_shop": ("https://open-api.tiktokglobalshop.com/order/202309/orders/search?shop_cipher=C",),
    "mercadolibre": ("https://api.mercadolibre.com/orders/2000001234",),
    "ebay": ("https://api.ebay.com/sell/fulfillment/v1/order/12-34567-89012",
             "https://api.ebay.com/identity/v1/oauth2/token"),
    "walmart": ("https://marketplace.walmartapis.com/v3/orders/108829555555555/acknowledge",
                "https://marketplace.walmartapis.com/v3/token"),
    "wish": ("https://merchant.wish.com/api/v3/orders/5e8d0000000000000000a1b2/tracking",),
    "temu": ("https://openapi-b-eu.temu.com/openapi/router",),
    "ozon": ("https://api-seller.ozon.ru/v3/posting/fbs/list",),
}
PARITY_STATUSES = (200, 400, 401, 403, 404, 429, 500, 503)


def code_only_bodies(code: str) -> list[bytes]:
    """``code`` without any message in every error envelope the adapters read (a span carries the
    code at most: the words of a message never reach it)."""
    envelopes: list[object] = [
        {"error": code, "message": ""}, {"error": code, "error_description": ""},
        {"code": code, "type": "ISV", "message": ""}, {"code": code, "message": ""},
        {"errors": [{"code": code, "message": ""}]}, {"error_response": {"code": code, "msg": ""}}]
    if code.isdigit():
        envelopes += [{"code": int(code), "message": ""}, {"success": False, "errorCode": int(code), "errorMsg": ""},
                      {"errors": [{"errorId": int(code), "message": ""}]}]
    return [json.dumps(envelope).encode() for envelope in envelopes]


def span_labels(url: str, status: int, code: str | None) -> tuple[object, object]:
    attributes: dict[str, object] = {"url.full": url, "http.response.status_code": status}
    if code is not None:
        attributes["marketplace.error_code"] = code
    [(result, _, record)] = outcomes([span(attributes)])
    assert result == "accepted" and record is not None
    return record["reason"], record["code"]


@pytest.mark.parametrize("marketplace", sorted(PRODUCTION_URLS))
def test_a_span_is_labelled_as_the_native_traffic_path_labels_the_same_call(marketplace: str) -> None:
    """Parity with ``/api/v1/traffic``: the hooks' Classifier gives a call's status (body unread)
    the reason and code a span with that status gets, and a body carrying a platform code the
    reason and code a span gets from that code in ``marketplace.error_code``. Where one platform
    reads the same code differently in two envelopes (AliExpress: TOP ``error_response`` and IOP),
    the span's label must be one of them."""
    adapter = ADAPTERS[marketplace]
    classifier = Classifier(account="sg-main", site="SG", clock=lambda: 1_765_000_000.0)
    uncovered = set(adapter.known_codes)
    for url in PRODUCTION_URLS[marketplace]:
        netloc, _, rest = url.split("://", 1)[1].partition("/")
        path, _, query = ("/" + rest).partition("?")
        routed = classifier.route(netloc, path, query)
        assert routed is not None and routed[0] is adapter
        for status in PARITY_STATUSES:
            native = classifier.response(routed, status, {}, None, 0.0)
            assert span_labels(url, status, None) == (native.reason, native.code), (url, status)
            for code in sorted(adapter.known_codes) + ["brand_new_code", "99999"]:
                natives = {(record.reason, record.code) for record in
                           (classifier.response(routed, status, {}, raw, 0.0) for raw in code_only_bodies(code))
                           if record.code in (code, "other")}  # else: not this platform's envelope
                if natives:
                    assert span_labels(url, status, code) in natives, (url, status, code, natives)
                    uncovered.discard(code)
    assert not uncovered, "known codes no envelope carried"


def test_accepted_spans_carry_what_the_native_validation_reads_of_their_record() -> None:
    """The mapper checks one record per call shape; with the span's own duration (which the
    aggregator reads from the record), ``checked`` must be what parse_record gives for the record."""
    walmart = {"url.full": "https://marketplace.walmartapis.com/v3/orders?limit=10", "http.response.status_code": 200,
               "http.response.header.x-current-token-count": ["17"]}
    spans = [span(STABLE, seconds=0.5), span(STABLE, seconds=2.0), span(walmart),
             span({"url.full": SHOPEE, "error.type": "TimeoutError"}, error=True),
             span(STABLE | {"http.response.status_code": 200, "marketplace.error_code": "error_auth"})]
    mapper = SpanMapper(OtlpConfig())
    [resource] = decoded(spans, mapper=mapper)
    context = mapper.context(resource.resource)
    for item in resource.spans:
        outcome = mapper.outcome(item, context)
        assert outcome.result == "accepted" and outcome.checked is not None and outcome.record is not None
        native = parse_record(outcome.record)
        assert not isinstance(native, str) and native.duration == outcome.record["duration"] > 0
        assert outcome.checked.model_dump() | {"duration": native.duration} == native.model_dump()


def test_a_call_shape_the_native_validation_refuses_rejects_each_of_its_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unreachable with today's adapters (they bound what they read), kept as on the native path:
    a platform claiming 150 % headroom makes an invalid record, and each span of it says why."""
    answer = Classifier.response
    monkeypatch.setattr(Classifier, "response", lambda *args: answer(*args)._replace(ratelimit=1.5))
    mapper = SpanMapper(OtlpConfig())
    [resource] = decoded([span(STABLE), span(STABLE)], mapper=mapper)
    aggregator = TrafficAggregator()
    outcomes, rejected, detail = ingest_spans(aggregator, mapper, [resource])
    assert outcomes == {("rejected", "invalid_record"): 2} and rejected == {"invalid_record": 2}
    assert detail == parse_record({"marketplace": "shopee", "status": 429, "duration": 0.0, "ratelimit": 1.5})
    assert detail.startswith("ratelimit:") and aggregator.records == {}
