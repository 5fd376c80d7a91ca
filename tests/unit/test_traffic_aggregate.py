"""The exporter-side aggregator: bad records rejected one by one, labels folded into ``other``,
the per-service series cap, and the error-ratio windows the deploy gate reads."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from marketplace_exporter.traffic.aggregate import TrafficAggregator
from marketplace_exporter.traffic.collector import TrafficCollector
from marketplace_exporter.traffic.settings import TrafficConfig

T0 = 1_760_000_040.0  # a minute boundary + 0 s


def record(**overrides: Any) -> dict[str, Any]:
    base = {"marketplace": "shopee", "site": "SG", "account": "sg-main", "operation": "get_shop_info",
            "status": 200, "reason": "", "code": "", "duration": 0.2, "ratelimit": None}
    return {**base, **overrides}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def aggregator(clock: Clock | None = None, **settings: Any) -> TrafficAggregator:
    return TrafficAggregator(TrafficConfig(**settings), {"shopee": {"sg-main"}}, clock=clock or Clock())


def test_a_bad_record_is_rejected_with_its_index_and_the_rest_counts() -> None:
    traffic = aggregator()
    result = traffic.ingest("erp", 0, [record(), "nope", record(status=-1), record(duration=float("nan")),
                                      record(reason="bored"), record(ratelimit=2), record(marketplace="etsy")])
    assert (result.accepted, result.rejected) == (1, 6)
    assert [e["index"] for e in result.errors] == [1, 2, 3, 4, 5, 6]
    assert traffic.records == {("erp", "accepted"): 1, ("erp", "rejected"): 6, ("erp", "dropped"): 0}


def test_values_outside_the_configured_world_fold_into_other() -> None:
    traffic = aggregator()
    traffic.ingest("erp", 0, [record(account="seller-1234567", site="ATLANTIS", operation="/api/v2/x/1",
                                     status=200, reason="client_error", code="made_up")])
    assert list(traffic.requests) == [("shopee", "other", "other", "other", "erp", "2xx")]
    assert list(traffic.errors) == [("shopee", "other", "other", "other", "erp", "client_error", "other")]


def test_the_series_cap_folds_new_combinations_and_counts_them() -> None:
    traffic = aggregator(max_series_per_service=10)
    operations = ["get_shop_info", "get_shops_by_partner", "order.get_order_list", "order.get_order_detail",
                  "order.get_shipment_list", "logistics.ship_order", "logistics.get_tracking_number",
                  "product.get_item_list", "product.get_item_base_info", "product.update_stock",
                  "product.update_price", "auth.token_get"]
    traffic.ingest("erp", 0, [record(operation=op) for op in operations])
    combos = {key[:4] for key in traffic.requests}
    assert len(combos) == 11  # ten allowed, and the folded one
    assert ("shopee", "other", "other", "other") in combos
    assert traffic.capped == {"erp": 2}
    traffic.ingest("other-service", 0, [record(operation="auth.token_get")])  # the cap is per service
    assert ("shopee", "SG", "sg-main", "auth.token_get", "other-service", "2xx") in traffic.requests


def test_services_beyond_the_limit_are_not_known() -> None:
    traffic = aggregator(max_services=1)
    assert traffic.known_service("erp")
    traffic.ingest("erp", 0, [record()])
    assert traffic.known_service("erp") and not traffic.known_service("wms")


def test_error_ratio_windows_before_and_after_a_deploy() -> None:
    clock = Clock()
    traffic = aggregator(clock)
    traffic.ingest("erp", 0, [record()] * 99 + [record(reason="server_error", status=500)])
    clock.now = T0 + 600  # the deploy happened at T0 + 300
    traffic.ingest("erp", 0, [record()] * 80 + [record(reason="auth", status=200, code="error_auth")] * 20)
    before = traffic.window(T0 - 300, T0 + 300, service="erp")
    after = traffic.window(T0 + 300, T0 + 900, service="erp", marketplace="shopee")
    assert before is not None and (before.requests, before.errors) == (100, 1)
    assert after is not None and after.error_ratio == 0.2
    assert traffic.window(T0, T0 + 900, service="wms") is None  # nothing reported: fall back to probes
    before, after = traffic.around(T0 + 300, 600, service="erp")
    assert before is not None and before.error_ratio == 0.01
    assert after is not None and after.error_ratio == 0.2


def test_old_minutes_leave_the_ring_after_the_retention() -> None:
    clock = Clock()
    traffic = aggregator(clock, retention=600)
    traffic.ingest("erp", 0, [record()])
    clock.now = T0 + 3600
    traffic.ingest("erp", 0, [record()])
    window = traffic.window(T0 - 60, T0 + 7200)
    assert window is not None and window.requests == 1


def test_the_collector_emits_the_catalogue_families() -> None:
    traffic = aggregator()
    traffic.ingest("erp", 3, [record(duration=0.07, ratelimit=0.25), record(duration=3.0, status=503,
                                                                           reason="server_error")])
    registry = CollectorRegistry()
    registry.register(TrafficCollector(traffic))
    get = registry.get_sample_value
    labels = {"marketplace": "shopee", "site": "SG", "operation": "get_shop_info", "service": "erp"}
    assert get("marketplace_client_request_duration_seconds_bucket", {**labels, "le": "0.1"}) == 1
    assert get("marketplace_client_request_duration_seconds_bucket", {**labels, "le": "+Inf"}) == 2
    assert get("marketplace_client_request_duration_seconds_sum", labels) == 3.07
    assert get("marketplace_client_rate_limit_remaining_ratio",
               {"marketplace": "shopee", "site": "SG", "account": "sg-main", "service": "erp"}) == 0.25
    assert get("marketplace_traffic_records_total", {"service": "erp", "result": "dropped"}) == 3
    assert get("marketplace_client_errors_total", {**labels, "account": "sg-main", "reason": "server_error",
                                                   "code": ""}) == 1


WALMART = {"marketplace": "walmart", "site": "US", "account": "us-main", "operation": "orders.get_all"}
HEADROOM_KEY = ("walmart", "US", "us-main", "erp")


def walmart_aggregator() -> TrafficAggregator:
    return TrafficAggregator(TrafficConfig(), {"walmart": {"us-main"}}, clock=Clock())


def test_requests_left_keep_the_latest_reported_value_per_key() -> None:
    traffic = walmart_aggregator()
    traffic.ingest("erp", 0, [record(**WALMART, ratelimit_remaining=120), record(**WALMART, ratelimit_remaining=119),
                              record(**WALMART, status=429, reason="throttled", ratelimit_remaining=0)])
    assert traffic.remaining == {HEADROOM_KEY: 0.0}  # the latest answer, not a sum or a maximum
    traffic.ingest("erp", 0, [record(**WALMART)])  # an answer without the header leaves the last value
    assert traffic.remaining == {HEADROOM_KEY: 0.0}
    assert traffic.headroom == {}  # a bare count is no ratio: nothing is invented


def test_a_bad_requests_left_value_is_rejected_with_a_clear_reason() -> None:
    traffic = walmart_aggregator()
    bad = [-1, 1e10, float("inf"), "17", True, [17]]
    result = traffic.ingest("erp", 0, [record(**WALMART, ratelimit_remaining=value) for value in bad]
                            + [record(**WALMART, ratelimit_remaining=17.0)])
    assert (result.accepted, result.rejected) == (1, len(bad))
    assert {e["error"].partition(", got ")[0] for e in result.errors} == {
        "ratelimit_remaining: expected a request count 0..1000000000 or null"}  # each also says what it got
    assert traffic.remaining == {HEADROOM_KEY: 17.0}


def test_requests_left_follow_the_label_folding() -> None:
    traffic = walmart_aggregator()
    traffic.ingest("erp", 0, [record(**{**WALMART, "account": "seller-8812", "site": "BR"}, ratelimit_remaining=5)])
    assert traffic.remaining == {("walmart", "other", "other", "erp"): 5.0}


def test_the_collector_emits_requests_left() -> None:
    traffic = walmart_aggregator()
    traffic.ingest("erp", 0, [record(**WALMART, ratelimit_remaining=42)])
    registry = CollectorRegistry()
    registry.register(TrafficCollector(traffic))
    labels = dict(zip(("marketplace", "site", "account", "service"), HEADROOM_KEY, strict=True))
    assert registry.get_sample_value("marketplace_client_rate_limit_remaining", labels) == 42
    assert registry.get_sample_value("marketplace_client_rate_limit_remaining_ratio", labels) is None


def test_headroom_no_service_reported_for_the_retention_disappears() -> None:
    """A count from hours ago is not today's headroom: a service that stopped calling (or stopped
    getting the header) loses its gauges after ``retention``, not before."""
    clock = Clock()
    traffic = TrafficAggregator(TrafficConfig(retention=600), {"walmart": {"us-main"}}, clock=clock)
    traffic.ingest("erp", 0, [record(**WALMART, ratelimit_remaining=3, ratelimit=0.5)])
    traffic.ingest("wms", 0, [record(**WALMART, ratelimit_remaining=9)])
    clock.now = T0 + 540
    traffic.ingest("wms", 0, [record(**WALMART, ratelimit_remaining=8)])
    assert traffic.remaining[HEADROOM_KEY] == 3.0  # nine minutes: still within the retention
    clock.now = T0 + 720
    traffic.ingest("wms", 0, [record(**WALMART)])  # a call without the header keeps nothing alive
    assert traffic.remaining == {("walmart", "US", "us-main", "wms"): 8.0}
    assert traffic.headroom == {}
