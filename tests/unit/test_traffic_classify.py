"""The traffic classifier: production URLs → marketplace/site/operation, answers → the SAME reason
and code the probes give, and nothing but bounded labels and numbers in a record."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from typing import Any

import pytest

from marketplace_exporter.adapters import (
    ADAPTERS,
    aliexpress,
    amazon_sp,
    ebay,
    lazada,
    mercadolibre,
    ozon,
    shopee,
    temu,
    tiktok_shop,
    walmart,
    wish,
)
from marketplace_exporter.adapters.ebay_responses import read_token as ebay_read_token
from marketplace_exporter.catalogue import Reason
from marketplace_exporter.model import HttpResponse, ProbeFailed, ProbeOutcome
from marketplace_exporter.traffic.classify import (
    MAX_BODY_BYTES,
    Classifier,
    decoded,
    status_class,
    transport_reason,
)

NOW = 1_760_000_000.0


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(("url", "marketplace", "operation", "site"), [
    ("https://partner.shopeemobile.com/api/v2/order/get_order_list?access_token=T&sign=S",
     "shopee", "order.get_order_list", "SG"),
    ("https://partner.shopeemobile.com/api/v2/shop/get_shop_info", "shopee", "get_shop_info", "SG"),
    ("https://partner.shopeemobile.com/api/v2/unheard/of_call", "shopee", "other", "SG"),
    ("https://sellingpartnerapi-eu.amazon.com/orders/v0/orders/203-1234567-1234567/orderItems",
     "amazon_sp", "orders.get_order_items", "SG"),
    ("https://api.amazon.com/auth/o2/token", "amazon_sp", "lwa_token", "SG"),
    ("https://api.lazada.co.th/rest/orders/get?access_token=T", "lazada", "orders.get", "TH"),
    ("https://api-sg.aliexpress.com/sync?method=aliexpress.trade.seller.orderlist.get&session=T",
     "aliexpress", "trade.seller_orderlist_get", "other"),
    ("https://open-api.tiktokglobalshop.com/order/202309/orders/search?shop_cipher=C",
     "tiktok_shop", "order.search", "SG"),
    ("https://api.mercadolibre.com/orders/2000001234", "mercadolibre", "orders.get", "other"),
    ("https://api.ebay.com/sell/fulfillment/v1/order/12-34567-89012", "ebay", "fulfillment.get_order", "SG"),
    ("https://marketplace.walmartapis.com/v3/orders/108829555555555/acknowledge", "walmart",
     "orders.acknowledge", "other"),
    ("https://merchant.wish.com/api/v3/orders/5e8d0000000000000000a1b2/tracking", "wish", "orders.tracking", "other"),
    ("https://merchant.wish.com/api/v3/orders", "wish", "orders.list", "other"),
    ("https://openapi-b-eu.temu.com/openapi/router", "temu", "router", "other"),
    ("https://api-seller.ozon.ru/v3/posting/fbs/list", "ozon", "posting.fbs_list", "other"),
    ("https://api-seller.ozon.ru/v1/roles", "ozon", "roles", "other"),
])
def test_production_urls_name_marketplace_operation_and_site(url: str, marketplace: str, operation: str,
                                                             site: str) -> None:
    classifier = Classifier(account="main", site="SG", clock=lambda: NOW)
    netloc, _, rest = url.removeprefix("https://").partition("/")
    path, _, query = ("/" + rest).partition("?")
    routed = classifier.route(netloc, path, query)
    assert routed is not None
    record = classifier.response(routed, 200, {}, None, 0.25)
    assert (record.marketplace, record.operation, record.site) == (marketplace, operation, site)


def test_calls_to_anything_else_are_not_reported() -> None:
    classifier = Classifier(account="main")
    assert classifier.route("erp.internal:8080", "/api/v2/shop/get_shop_info") is None
    assert classifier.route("api.github.com", "/repos") is None


def test_a_base_url_maps_the_simulator_or_a_proxy_to_its_marketplace() -> None:
    classifier = Classifier(account="main", base_urls={"http://127.0.0.1:9763/shopee": "shopee"})
    routed = classifier.route("127.0.0.1:9763", "/shopee/api/v2/shop/get_shop_info")
    assert routed is not None and routed[1].operation == "get_shop_info"
    assert classifier.route("127.0.0.1:9763", "/amazon/na/sellers/v1/account") is None
    with pytest.raises(ValueError, match="unknown marketplace"):
        Classifier(account="main", base_urls={"http://x": "etsy"})


@pytest.mark.parametrize("bad", ["", "seller 123", "a/b", "x" * 80])
def test_account_alias_must_be_a_label(bad: str) -> None:
    with pytest.raises(ValueError, match="account"):
        Classifier(account=bad)


# the probe flow's own classifier, per adapter, for answers that are failures
PROBE_CLASSIFIERS: dict[str, Any] = {
    "shopee": lambda r: shopee.read(r, NOW, 14701711),
    "amazon_sp": lambda r: amazon_sp.read_call(r, NOW),
    "lazada": lambda r: lazada.read(r, NOW),
    "tiktok_shop": lambda r: tiktok_shop.read(r, NOW),
    "mercadolibre": lambda r: mercadolibre.read(r, NOW),
    "aliexpress": lambda r: aliexpress.read(r, NOW, aliexpress.DEFAULT_METHOD),
    "ebay": lambda r: ebay.read_call(r, NOW, ebay._CALLS["privilege"]),
    "walmart": lambda r: walmart.read_call(r, NOW, "partner_profile"),
    "wish": lambda r: wish.read("oauth_test", r, NOW),
    "temu": lambda r: temu.read(r, NOW, ()),
    "ozon": lambda r: ozon.read("roles", r, NOW, ()),
}


def token_step(read: Callable[[HttpResponse, float], Any]) -> Callable[[HttpResponse], ProbeOutcome | None]:
    """What the probe's token step concludes from an answer: its failure, or None (a minted token)."""
    def step(response: HttpResponse) -> ProbeOutcome | None:
        try:
            read(response, NOW)
        except ProbeFailed as failed:
            return failed.outcome
        return None
    return step

FAILURES: list[tuple[str, str, int, bytes]] = [
    ("shopee", "get_shop_info", 200, body({"error": "error_rate_limit", "message": "slow down"})),
    ("shopee", "get_shop_info", 200, body({"error": "invalid_acceess_token", "message": "Invalid"})),
    ("shopee", "get_shop_info", 200, body({"error": "error_auth", "message": "No permission to current api."})),
    ("shopee", "get_shop_info", 200, body({"error": "brand_new_error", "message": "?"})),
    ("shopee", "get_shop_info", 502, b"<html>bad gateway</html>"),
    ("amazon_sp", "account", 403, body({"errors": [{
        "code": "Unauthorized", "message": "Access to requested resource is denied.",
        "details": "The access token you provided has expired."}]})),
    ("amazon_sp", "account", 403, body({"errors": [{"code": "Unauthorized", "message": "denied", "details": ""}]})),
    ("amazon_sp", "account", 429, body({"errors": [{"code": "QuotaExceeded", "message": "quota"}]})),
    ("lazada", "seller_get", 200, body({"code": "IllegalAccessToken", "type": "ISV", "message": "expired"})),
    ("lazada", "seller_get", 200, body({"code": "ApiCallLimit", "type": "ISV", "message": "ban will last 3 seconds"})),
    ("tiktok_shop", "authorized_shops", 200, body({"code": 105002, "message": "expired"})),
    ("tiktok_shop", "authorized_shops", 429, body({"code": 36009004, "message": "rate"})),
    ("mercadolibre", "users_me", 403, body({"error": "forbidden", "message": "no", "status": 403})),
    ("aliexpress", "merchant_profile", 200, body({"error_response": {"code": 7, "msg": "App Call Limited"}})),
    ("ebay", "privilege", 403, body({"errors": [{"errorId": 1100, "message": "Access denied"}]})),
    ("walmart", "partner_profile", 401, body({"errors": [{"code": "UNAUTHORIZED.GMP_GATEWAY_API"}]})),
    ("wish", "oauth_test", 400, body({"message": "This access token has expired", "code": 1007, "data": {}})),
    ("wish", "orders.list", 400, body({"message": "Unauthorized access on this API", "code": "1006", "data": {}})),
    ("temu", "router", 200, body({"success": False, "errorCode": 5000003, "errorMsg": "NOT_IN_IP_WHITE_LIST"})),
    ("temu", "router", 200, body({"success": False, "errorCode": 3000001, "errorMsg": "SIGN_UNVALID"})),
    ("ozon", "roles", 401, body({"code": 16, "message": "Invalid Api-Key, please check the key and try again"})),
    ("ozon", "posting.fbs_list", 429, body({"code": 8, "message": "You have reached request rate limit per second"})),
]


# every (traffic operation, probe classifier) pair whose answers are classified the same way:
# API calls as the probe's call step reads them, token exchanges as its token step reads them
PROBE_STEPS: list[tuple[str, str, Any]] = [
    *((name, operation, PROBE_CLASSIFIERS[name]) for name, operation in [
        ("shopee", "order.get_order_list"), ("amazon_sp", "orders.get_order_items"), ("lazada", "orders.get"),
        ("tiktok_shop", "order.search"), ("mercadolibre", "orders.get"), ("aliexpress", "merchant_profile"),
        ("walmart", "orders.acknowledge"), ("wish", "orders.list"), ("temu", "router"), ("ozon", "posting.fbs_list")]),
    ("ebay", "fulfillment.get_order", PROBE_CLASSIFIERS["ebay"]),
    ("amazon_sp", "lwa_token", token_step(amazon_sp.read_token)),
    ("ebay", "oauth_token", token_step(lambda r, now: ebay_read_token(r, now, "refresh_token"))),
    ("walmart", "token", token_step(walmart.read_token)),
]
MESSAGES = ["", "No permission to current api.", "The access token you provided has expired.",
            "This ban will last for 5 more seconds", "令牌已过期", "Unauthorized access on this API",
            "Api-Key is restricted to specific IP addresses", "Circle is open"]


def error_bodies(codes: frozenset[str]) -> list[bytes]:
    """Every known code (plus unknown ones) in every error envelope the adapters read, with messages
    that steer the text-reading rules (permission, expired token, ban seconds)."""
    bodies = [b"", b"<html>bad gateway</html>", b"local_rate_limited", b"{}", b'{"error": ""}', b'{"code": 0}',
              b'{"code": "0"}', b'{"errors": []}']
    for code in sorted(codes) + ["brand_new_code", "7", "105005"]:
        for message in MESSAGES:
            envelopes: list[dict[str, Any]] = [
                {"error": code, "message": message}, {"error": code, "error_description": message},
                {"code": code, "type": "ISV", "message": message},
                {"errors": [{"code": code, "message": "denied", "details": message}]},
                {"error_response": {"code": code, "msg": message, "sub_code": "isv.permission-denied"}}]
            if code.isdigit():
                envelopes += [{"code": int(code), "message": message},
                              {"success": False, "errorCode": int(code), "errorMsg": message},
                              {"errors": [{"errorId": int(code), "message": message}]}]
            bodies += [json.dumps(envelope, ensure_ascii=False).encode() for envelope in envelopes]
    return bodies


@pytest.mark.parametrize(("marketplace", "operation", "probe"), PROBE_STEPS,
                         ids=[f"{name}-{operation}" for name, operation, _ in PROBE_STEPS])
def test_traffic_labels_every_error_body_exactly_as_the_probe_does(marketplace: str, operation: str,
                                                                    probe: Any) -> None:
    adapter = ADAPTERS[marketplace]
    compared = 0
    for raw in error_bodies(adapter.known_codes):
        for status in (200, 400, 401, 403, 429, 503):
            for headers in ({}, {"retry-after": "7"}):
                outcome = probe(HttpResponse(status, headers, raw))
                if not isinstance(outcome, ProbeOutcome) or outcome.success:
                    continue  # a success (or a minted token) is no error body
                seen = adapter.classify(operation, status, headers, raw, NOW)
                if (200 <= status <= 299 and seen.reason is None and outcome.code is None
                        and outcome.reason is Reason.INVALID_RESPONSE):
                    continue  # a 2xx without the probe's own payload: its check, not an error body
                assert (seen.reason, seen.code) == (outcome.reason, outcome.code), (status, raw)
                compared += 1
    assert compared > 500


def test_traffic_classification_of_errors_renders_no_probe_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """The message (redacted, one line, bounded) is the probe's business: the seller's call pays for
    labels only, and the raw words stay unrendered in ``text``."""
    def refuse(self: ProbeOutcome) -> str:
        raise AssertionError("traffic rendered a probe message")

    monkeypatch.setattr(ProbeOutcome, "message", property(refuse))
    for marketplace, operation, status, raw in FAILURES:
        seen = ADAPTERS[marketplace].classify(operation, status, {}, raw, NOW)
        assert seen.reason is not None and seen.text


@pytest.mark.parametrize(("marketplace", "operation", "status", "raw"), FAILURES)
def test_a_production_failure_is_labelled_exactly_as_the_probe_labels_it(marketplace: str, operation: str,
                                                                          status: int, raw: bytes) -> None:
    adapter = ADAPTERS[marketplace]
    probe: ProbeOutcome = PROBE_CLASSIFIERS[marketplace](HttpResponse(status, {}, raw))
    assert not probe.success
    seen = adapter.classify(operation, status, {}, raw, NOW)
    assert (seen.reason, seen.code) == (probe.reason, probe.code)


def test_the_record_folds_unknown_codes_and_keeps_known_ones() -> None:
    classifier = Classifier(account="sg-main", site="SG")
    routed = classifier.route("partner.shopeemobile.com", "/api/v2/order/get_order_detail")
    assert routed is not None
    known = classifier.response(routed, 200, {}, body({"error": "error_rate_limit"}), 0.1)
    unknown = classifier.response(routed, 200, {}, body({"error": "secret_code_with_123456"}), 0.1)
    assert (known.reason, known.code) == ("throttled", "error_rate_limit")
    assert (unknown.reason, unknown.code) == ("client_error", "other")


def test_a_success_envelope_is_a_success_whatever_the_payload() -> None:
    classifier = Classifier(account="sg-main", site="SG")
    routed = classifier.route("partner.shopeemobile.com", "/api/v2/order/get_order_list")
    assert routed is not None
    record = classifier.response(routed, 200, {}, body({"error": "", "response": {"order_list": []}}), 0.1)
    assert (record.reason, record.code, record.status) == ("", "", 200)


def test_an_unread_or_large_body_leaves_the_status_to_decide() -> None:
    classifier = Classifier(account="sg-main", site="SG")
    routed = classifier.route("partner.shopeemobile.com", "/api/v2/order/get_order_list")
    assert routed is not None
    assert classifier.response(routed, 200, {}, None, 0.1).reason == ""
    assert classifier.response(routed, 429, {}, None, 0.1).reason == "throttled"
    huge = body({"error": "error_auth", "pad": "x" * MAX_BODY_BYTES})
    assert classifier.response(routed, 200, {}, huge, 0.1).reason == ""


def test_walmart_headers_give_headroom_without_a_ratio() -> None:
    adapter = ADAPTERS["walmart"]
    seen = adapter.classify("orders.get_all", 200, {"x-current-token-count": "12"}, b"{}", NOW)
    assert seen.reason is None and seen.rate_limit is not None and seen.rate_limit.remaining == 12
    assert seen.rate_limit.remaining_ratio is None  # the per-API limit is UNCONFIRMED


@pytest.mark.parametrize(("status", "headers", "body_bytes", "reason", "remaining"), [
    (200, {"x-current-token-count": "12", "x-next-replenish-time": "1760000100000"}, b"{}", "", 12.0),
    (429, {"x-current-token-count": "0"}, None, "throttled", 0.0),  # unread body: the headers still count
    (401, {"x-current-token-count": "7"}, b'{"errors":[{"code":"UNAUTHORIZED.GMP_GATEWAY_API"}]}', "auth", 7.0),
    (200, {}, b"{}", "", None),  # no header: no number
    (200, {"x-current-token-count": "lots"}, b"{}", "", None),  # garbage: no number
])
def test_a_walmart_record_carries_the_requests_left_not_a_ratio(status: int, headers: dict[str, str],
                                                                body_bytes: bytes | None, reason: str,
                                                                remaining: float | None) -> None:
    classifier = Classifier(account="us-main", site="US")
    routed = classifier.route("marketplace.walmartapis.com", "/v3/orders")
    assert routed is not None
    record = classifier.response(routed, status, headers, body_bytes, 0.1)
    assert (record.operation, record.reason, record.remaining, record.ratelimit) == ("orders.get_all", reason,
                                                                                      remaining, None)
    assert record.wire()["ratelimit_remaining"] == remaining


def test_a_record_carries_labels_and_numbers_only() -> None:
    classifier = Classifier(account="sg-main", site="SG")
    routed = classifier.route("partner.shopeemobile.com",
                              "/api/v2/order/get_order_detail", "access_token=SECRET&order_sn_list=2401ABC")
    assert routed is not None
    record = classifier.response(routed, 200, {"set-cookie": "SECRET"},
                                 body({"error": "error_param", "message": "order 2401ABC SECRET"}), 0.1)
    wire = json.dumps(record.wire())
    assert "SECRET" not in wire and "2401ABC" not in wire and "message" not in wire
    assert set(record.wire()) == {"marketplace", "site", "account", "operation", "status", "reason", "code",
                                  "duration", "ratelimit", "ratelimit_remaining"}


def test_transport_failures_map_to_the_catalogue_reasons() -> None:
    import ssl

    import httpx

    assert transport_reason(httpx.ConnectTimeout("t")) is Reason.TIMEOUT
    assert transport_reason(httpx.ConnectError("refused")) is Reason.CONNECT
    assert transport_reason(TimeoutError()) is Reason.TIMEOUT
    assert transport_reason(ssl.SSLCertVerificationError()) is Reason.TLS
    assert transport_reason(ConnectionResetError()) is Reason.CONNECT


def test_gzip_bodies_are_decoded_for_classification_and_others_are_not_guessed() -> None:
    raw = body({"error": "error_auth"})
    assert decoded(gzip.compress(raw), "gzip") == raw
    assert decoded(raw, None) == raw
    assert decoded(b"\x00\x01", "br") is None
    assert decoded(b"not gzip", "gzip") is None
    bomb = gzip.compress(b"{" + b" " * (10 * MAX_BODY_BYTES) + b"}")
    assert decoded(bomb, "gzip") is None


@pytest.mark.parametrize(("status", "expected"), [(200, "2xx"), (404, "4xx"), (503, "5xx"), (0, "error")])
def test_status_class(status: int, expected: str) -> None:
    assert status_class(status) == expected


def test_every_marketplace_adapter_names_its_probe_operations_for_traffic() -> None:
    for name, adapter in ADAPTERS.items():
        if name in ("http",):
            assert not adapter.api_operations
            continue
        assert set(adapter.operations) <= adapter.api_operations, name


@pytest.mark.parametrize(("status", "headers", "reason", "remaining"), [
    (200, {"wish-rate-limit-remaining": "287"}, "", 287.0),
    (429, {"wish-rate-limit-remaining": "0", "wish-rate-limit-reset": "1760000060"}, "throttled", 0.0),
    (400, {"wish-rate-limit-remaining": "12"}, "auth", 12.0),
    (200, {}, "", None),
])
def test_a_wish_record_carries_the_requests_left_not_a_ratio(status: int, headers: dict[str, str], reason: str,
                                                             remaining: float | None) -> None:
    classifier = Classifier(account="us-main", site="GLOBAL")
    routed = classifier.route("merchant.wish.com", "/api/v3/orders")
    assert routed is not None
    raw = body({"message": "expired" if status == 400 else "", "code": 1007 if status == 400 else 0, "data": {}})
    record = classifier.response(routed, status, headers, raw, 0.1)
    assert (record.reason, record.remaining, record.ratelimit) == (reason, remaining, None)
