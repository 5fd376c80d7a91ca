"""The httpx transport wrapper's own plumbing: what the caller read is classified whether the inner
transport streams the body or hands it back already read, a gzip body is classified as the caller
decoded it, other hosts pass through, and the route memory is bounded and never keeps a route the
query string decides."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

from marketplace_exporter.traffic import httpx_hooks
from marketplace_exporter.traffic.classify import TrafficRecord
from marketplace_exporter.traffic.httpx_hooks import AsyncTrafficTransport, TrafficTransport
from marketplace_exporter.traffic.reporter import Reporter

SHOPEE = "https://partner.shopeemobile.com/api/v2/shop/get_shop_info?partner_id=1&sign=2"
ERROR = json.dumps({"request_id": "r", "error": "invalid_acceess_token", "message": "Invalid access_token."}).encode()
AUTH = (200, "get_shop_info", "auth", "invalid_acceess_token")


def records(reporter: Reporter) -> list[tuple[int, str, str, str]]:
    seen: list[TrafficRecord] = list(reporter._queue)
    return [(r.status, r.operation, r.reason, r.code) for r in seen]


@pytest.fixture
def reporter() -> object:
    reporter = Reporter("http://127.0.0.1:9", service="erp", interval=3600)
    yield reporter
    reporter._queue.clear()
    reporter.close(0)


def streamed(body: bytes, **headers: str) -> httpx.MockTransport:
    """Answers as a real transport does: a stream the caller's read pulls through."""
    return httpx.MockTransport(lambda _: httpx.Response(200, headers=headers, stream=httpx.ByteStream(body)))


def already_read(body: bytes) -> httpx.MockTransport:
    """Answers with a body httpx reads in the Response constructor (``content=``)."""
    return httpx.MockTransport(lambda _: httpx.Response(200, content=body))


@pytest.mark.parametrize("inner", [streamed(ERROR), already_read(ERROR)], ids=["streamed", "already-read"])
def test_the_body_the_caller_got_is_classified_once(reporter: Reporter, inner: httpx.MockTransport) -> None:
    with httpx.Client(transport=TrafficTransport(reporter, account="sg-main", site="SG", transport=inner)) as client:
        for _ in range(2):
            assert client.get(SHOPEE).json()["error"] == "invalid_acceess_token"
    assert records(reporter) == [AUTH] * 2


async def test_the_async_wrapper_classifies_what_the_caller_read(reporter: Reporter) -> None:
    inner = httpx.MockTransport(lambda _: httpx.Response(200, stream=httpx.ByteStream(ERROR)))
    transport = AsyncTrafficTransport(reporter, account="sg-main", site="SG", transport=inner)
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get(SHOPEE)).json()["error"] == "invalid_acceess_token"
    assert records(reporter) == [AUTH]


def test_a_gzip_body_is_classified_as_the_caller_decoded_it(reporter: Reporter) -> None:
    inner = streamed(gzip.compress(ERROR), **{"Content-Encoding": "gzip"})
    with httpx.Client(transport=TrafficTransport(reporter, account="sg-main", site="SG", transport=inner)) as client:
        assert client.get(SHOPEE).json()["error"] == "invalid_acceess_token"
    assert records(reporter) == [AUTH]


def test_other_hosts_pass_through_unreported(reporter: Reporter) -> None:
    with httpx.Client(transport=TrafficTransport(reporter, account="sg-main", transport=streamed(ERROR))) as client:
        assert client.get("https://example.com/api/v2/shop/get_shop_info").status_code == 200
    assert records(reporter) == []


def test_the_route_memory_is_bounded(reporter: Reporter, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(httpx_hooks, "ROUTE_CACHE_LIMIT", 8)
    transport = TrafficTransport(reporter, account="us-main", transport=streamed(b"{}"))
    with httpx.Client(transport=transport) as client:
        for order in range(50):  # ids in paths: every URL is new
            client.get(f"https://sellingpartnerapi-na.amazon.com/orders/v0/orders/{order}-000")
    assert 0 < len(transport._route._known) <= 8
    assert len(reporter._queue) == 50
    assert {record.operation for record in reporter._queue} != {"other"}


def test_a_route_the_query_string_names_is_looked_up_every_time(reporter: Reporter) -> None:
    transport = TrafficTransport(reporter, account="ae-main", transport=streamed(b"{}"))
    with httpx.Client(transport=transport) as client:
        for method in ("aliexpress.solution.merchant.profile.get", "aliexpress.trade.seller.orderlist.get"):
            client.get(f"https://api-sg.aliexpress.com/sync?method={method}&app_key=1")
    assert [record.operation for record in reporter._queue] == ["merchant_profile", "trade.seller_orderlist_get"]
    assert transport._route._known == {}
