"""The helpers behind every adapter's production-traffic entry points (``match``/``classify``):
host filtering, the unread-body rule, one parse per read body, and token answers read as the
probe's token step reads them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marketplace_exporter.adapters.base import SUCCESS, Classification, RouteMatch, Verdict
from marketplace_exporter.adapters.common import (
    classify_with,
    match_hosts,
    route_operations,
    routes,
    token_classification,
)
from marketplace_exporter.catalogue import Reason
from marketplace_exporter.model import HttpResponse, ProbeOutcome, RateLimitObservation, RateLimitSource

TABLE = routes(("/v1/orders", "orders.list"), ("/v1/orders/[0-9]+", "orders.get"))
HOSTS = frozenset({"api.example-market.com"})


def test_route_operations_are_the_table_labels() -> None:
    assert route_operations(TABLE) == {"orders.list", "orders.get"}


def test_match_hosts_refuses_other_hosts_and_routes_known_ones() -> None:
    assert match_hosts(HOSTS, TABLE, "api.other.com", "/v1/orders") is None
    assert match_hosts(HOSTS, TABLE, "api.example-market.com", "/v1/orders/42") == RouteMatch("orders.get")
    assert match_hosts(HOSTS, TABLE, "api.example-market.com", "/v2/x") == RouteMatch("other")
    # None: a base URL the caller mapped to this platform (simulator, proxy): the path alone decides
    assert match_hosts(HOSTS, TABLE, None, "/sim/v1/orders") == RouteMatch("orders.list")


class Recorder:
    """A failure classifier that remembers what it was given and fails on ``"error"`` in the body."""

    def __init__(self) -> None:
        self.seen: list[tuple[HttpResponse, Mapping[str, Any] | None, float]] = []

    def __call__(self, response: HttpResponse, body: Mapping[str, Any] | None, now: float) -> Verdict | None:
        self.seen.append((response, body, now))
        if body is not None and body.get("error"):
            return Verdict(Reason.AUTH, str(body["error"]), lambda: ProbeOutcome.failed(Reason.AUTH, "x"))
        return None


def test_classify_with_leaves_an_unread_body_to_the_status() -> None:
    failure_of = Recorder()
    assert classify_with(failure_of, 429, {}, None, 5.0) == Classification(Reason.THROTTLED)
    assert classify_with(failure_of, 200, {}, None, 5.0) is SUCCESS
    assert failure_of.seen == []  # never called without a body


def test_classify_with_parses_a_read_body_once_and_asks_the_adapter() -> None:
    failure_of = Recorder()
    headers = {"x-request-id": "r1"}
    assert classify_with(failure_of, 200, headers, b'{"error": "bad_token"}', 5.0) == Classification(
        Reason.AUTH, "bad_token")
    assert classify_with(failure_of, 200, headers, b"not json", 6.0) == SUCCESS
    (first, parsed, now), (second, unparsed, later) = failure_of.seen
    assert (first.status, first.headers, parsed, now) == (200, headers, {"error": "bad_token"}, 5.0)
    assert (second.body, unparsed, later) == (b"not json", None, 6.0)


def test_token_classification_reads_a_minted_token_as_success_and_a_failure_as_itself() -> None:
    headroom = RateLimitObservation(None, RateLimitSource.OBSERVED, remaining=3.0)
    assert token_classification(("token", 1.0)) == SUCCESS
    assert token_classification(("token", 1.0), headroom) == Classification(None, None, headroom)
    failed = ProbeOutcome.failed(Reason.INVALID_RESPONSE, "no usable access_token", http_status=200)
    assert token_classification(failed) == Classification(Reason.INVALID_RESPONSE, None)
