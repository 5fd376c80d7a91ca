"""The receiver's shortcuts must not change a count: the memo of labels per call shape, and the
aggregator counting a request's spans once per shape instead of once per span."""

from __future__ import annotations

from typing import Any

import pytest
from otlp_requests import SERVER, export_request, protobuf_body, span

from marketplace_exporter.traffic import otlp_spans
from marketplace_exporter.traffic.aggregate import TrafficAggregator, TrafficState
from marketplace_exporter.traffic.otlp_api import ingest_spans
from marketplace_exporter.traffic.otlp_decode import decode_protobuf
from marketplace_exporter.traffic.otlp_settings import OtlpConfig
from marketplace_exporter.traffic.otlp_spans import SpanMapper
from marketplace_exporter.traffic.settings import TrafficConfig

NOW = 1_765_000_000.0
SHOPEE = "https://partner.shopeemobile.com/api/v2/order/get_order_list?partner_id=1&timestamp={i}&sign=s{i}"
LAZADA = "https://api.lazada.{tld}/rest/orders/get?access_token=T"
WALMART = "https://marketplace.walmartapis.com/v3/orders?limit={i}"
ACCOUNTS = {"shopee": {"sg-main", "sg-2"}, "lazada": {"th-main", "sg-main"}, "walmart": {"us-main"}}


def mixed_spans() -> list[tuple[dict[str, object], list[dict[str, Any]]]]:
    """Resources of spans with repeated and distinct shapes: hosts that tell the site and hosts that
    do not, accounts from the span and from the resource, statuses, codes, headers, odd spans."""
    spans = []
    for i in range(60):
        status = (200, 200, 429, 500, 403)[i % 5]
        attributes: dict[str, object] = {"url.full": SHOPEE.format(i=i), "http.response.status_code": status}
        if i % 7 == 0:
            attributes["marketplace.error_code"] = "error_rate_limit"
        if i % 4 == 0:
            attributes["seller.account"] = "sg-2"
        if i % 3 == 0:
            attributes["seller.site"] = ("MY", "TH", "VN", "PH", "ID", "BR", "TW")[i % 7]
        spans.append(span(attributes, seconds=0.01 * (i % 13) + 0.003))
    spans += [span({"url.full": LAZADA.format(tld=tld), "http.response.status_code": 200}, seconds=0.2 + i / 10)
              for i, tld in enumerate(["co.th", "sg", "co.th", "sg", "com.my"])]
    spans += [span({"url.full": WALMART.format(i=i % 3), "http.response.status_code": 200,
                    "http.response.header.x-current-token-count": [str(20 - i)]}) for i in range(6)]
    spans += [span({"url.full": SHOPEE.format(i=0), "error.type": "TimeoutError"}, error=True, seconds=5.0),
              span({"url.full": SHOPEE.format(i=1), "http.response.status_code": 200}, seconds=-1.0),
              span({"url.full": SHOPEE.format(i=2), "http.response.status_code": 200}, kind=SERVER)]
    return [({"service.name": "order-sync", "seller.account": "sg-main", "seller.site": "SG"}, spans),
            ({"service.name": "order-sync", "seller.account": "th-main", "seller.site": "TH"}, spans[:30]),
            ({"service.name": "stock-sync", "seller.account": "us-main"}, spans[60:]),
            ({"seller.account": "sg-main"}, spans[:5])]


def state_without_totals(aggregator: TrafficAggregator) -> tuple[TrafficState, dict[Any, float]]:
    state = aggregator.copy_state()
    totals = {key: total for key, (_, total) in state.durations.items()}
    return TrafficState(state.requests, state.errors, {k: (counts, 0.0) for k, (counts, _) in state.durations.items()},
                        state.headroom, state.remaining, state.records, state.capped), totals


@pytest.mark.parametrize("max_series", [100, 10], ids=["uncapped", "series-cap"])
def test_spans_counted_per_shape_equal_their_records_counted_one_by_one(max_series: int) -> None:
    """Every counter, histogram, headroom gauge, cap count and error window the aggregator keeps
    comes out as if each accepted span's own record had been posted to /api/v1/traffic."""
    settings = TrafficConfig(max_series_per_service=max_series)
    grouped = TrafficAggregator(settings, ACCOUNTS, clock=lambda: NOW)
    one_by_one = TrafficAggregator(settings, ACCOUNTS, clock=lambda: NOW)
    mapper = SpanMapper(OtlpConfig(), clock=lambda: NOW)
    decoded = list(decode_protobuf(protobuf_body(export_request(*mixed_spans())), mapper.labels))
    outcomes, rejected, _ = ingest_spans(grouped, mapper, decoded)

    fresh = SpanMapper(OtlpConfig(), clock=lambda: NOW)
    expected: dict[tuple[str, str], int] = {}
    for resource in decoded:
        context = fresh.context(resource.resource)
        records = []
        for item in resource.spans:
            outcome = fresh.outcome(item, context)
            if outcome.record is not None and context.service is None:
                outcome = outcome._replace(result="rejected", reason="no_service")
            expected[outcome.result, outcome.reason] = expected.get((outcome.result, outcome.reason), 0) + 1
            if outcome.record is not None and context.service is not None:
                records.append(outcome.record)
        if records and context.service is not None:
            assert one_by_one.ingest(context.service, 0, records).rejected == 0
    assert outcomes == expected
    assert rejected == {"bad_duration": 2, "no_service": 5}
    assert outcomes["accepted", ""] == sum(n for (_, result), n in one_by_one.records.items() if result == "accepted")
    (state, totals), (expected_state, expected_totals) = state_without_totals(grouped), state_without_totals(one_by_one)
    assert state == expected_state
    assert totals == pytest.approx(expected_totals)
    assert bool(state.capped) == (max_series == 10)
    for service in ("order-sync", "stock-sync"):
        assert grouped.window(NOW - 60, NOW + 60, service=service) == one_by_one.window(NOW - 60, NOW + 60,
                                                                                        service=service)
        assert grouped.totals(service) == one_by_one.totals(service)


def labels_of(mapper: SpanMapper, resources: list[tuple[dict[str, object], list[dict[str, Any]]]]) -> list[Any]:
    out = []
    for resource in decode_protobuf(protobuf_body(export_request(*resources)), mapper.labels):
        context = mapper.context(resource.resource)
        out += [mapper.outcome(item, context) for item in resource.spans]
    return out


def test_the_call_shape_memo_tells_hosts_sites_and_accounts_apart() -> None:
    """One mapper for everything gives what a fresh mapper gives each span alone: the same path on
    another host (another site), the same URL for another account (span or resource attribute)
    or site (resource attribute, where the host does not tell it)."""
    same_url = {"url.full": SHOPEE.format(i=1), "http.response.status_code": 200}
    resources: list[tuple[dict[str, object], list[dict[str, Any]]]] = [
        ({"service.name": "a", "seller.account": "sg-main", "seller.site": "SG"},
         [span(same_url), span(same_url | {"seller.account": "sg-2"}), span(same_url | {"seller.site": "MY"}),
          span({"url.full": LAZADA.format(tld="co.th"), "http.response.status_code": 200}),
          span({"url.full": LAZADA.format(tld="sg"), "http.response.status_code": 200})]),
        ({"service.name": "a", "seller.account": "sg-2", "seller.site": "MY"}, [span(same_url)]),
        ({"service.name": "b", "seller.account": "sg-main", "seller.site": "SG"}, [span(same_url)]),
    ]
    shared = labels_of(SpanMapper(OtlpConfig()), resources)
    alone = [labels_of(SpanMapper(OtlpConfig()), [(resource, [item])])[0]
             for resource, items in resources for item in items]
    assert shared == alone
    labels = [(o.record["marketplace"], o.record["site"], o.record["account"]) for o in shared]
    assert labels == [("shopee", "SG", "sg-main"), ("shopee", "SG", "sg-2"), ("shopee", "MY", "sg-main"),
                      ("lazada", "TH", "sg-main"), ("lazada", "SG", "sg-main"), ("shopee", "MY", "sg-2"),
                      ("shopee", "SG", "sg-main")]


def test_the_call_shape_memo_is_bounded_and_stays_correct(monkeypatch: pytest.MonkeyPatch) -> None:
    """A path with an id in it (Amazon's order ids) is a new shape per call: the memo is emptied
    when full rather than grown, and labels stay those of a fresh mapper."""
    monkeypatch.setattr(otlp_spans, "_MEMO_LIMIT", 8)
    mapper = SpanMapper(OtlpConfig())
    sizes = []
    resource: dict[str, object] = {"service.name": "a", "seller.account": "na-main"}
    for i in range(40):
        url = f"https://sellingpartnerapi-na.amazon.com/orders/v0/orders/123-{i:07d}-1234567"
        [outcome] = labels_of(mapper, [(resource, [span({"url.full": url, "http.response.status_code": 200})])])
        sizes.append(len(mapper._memo))
        [fresh] = labels_of(SpanMapper(OtlpConfig()), [(resource, [span({"url.full": url,
                                                                          "http.response.status_code": 200})])])
        assert outcome == fresh and outcome.record is not None
        assert outcome.record["operation"] == "orders.get_order"
    assert max(sizes) == 8 and min(sizes[8:]) >= 1
