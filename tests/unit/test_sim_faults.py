"""Simulator pieces without a server: fault parsing and matching, the SP-API bucket, Shopee signing."""

from __future__ import annotations

import pytest

from marketplace_exporter.simulator import SIM_ACCOUNTS, create_simulator_app
from marketplace_exporter.simulator.amazon import TokenBucket
from marketplace_exporter.simulator.app import PLATFORMS
from marketplace_exporter.simulator.faults import FaultError, FaultSpec, FaultStore, parse_fault
from marketplace_exporter.simulator.shopee import sign

PLATFORM_MAP = create_simulator_app(clock=lambda: 0.0)[PLATFORMS]


def test_shopee_sign_matches_the_sdk_test_vector() -> None:
    # congminh1254/shopee-sdk signature test (fact sheet, "verified"): an HMAC sanity check
    digest = sign("test_partner_key", "/api/v2/auth/token/get", "123456", "test_partner_id",
                  "test_shop_id", "test_main_account_id")
    assert digest == "37c864bd9821ff5f2c2f46b2faca14eb1811a718d1fdc6dcf383cba7c74bf9e9"


def test_bucket_refills_at_rate_and_caps_at_burst() -> None:
    bucket = TokenBucket(rate=0.5, burst=2, tokens=2, updated=100.0)
    assert [bucket.take(100.0) for _ in range(3)] == [True, True, False]
    assert bucket.take(101.0) is False  # 0.5 token
    assert bucket.take(102.0) is True  # 1.0 token
    assert bucket.take(1000.0) and bucket.take(1000.0) and not bucket.take(1000.0)  # capped at burst
    assert bucket.take(900.0) is False  # a clock going backwards adds nothing


def test_store_matching_filters_and_count() -> None:
    store = FaultStore()
    store.add(FaultSpec("amazon_sp", "throttle", account="us-main", count=2))
    store.add(FaultSpec("amazon_sp", "server_error", check="account"))
    assert store.take("amazon_sp", None, "marketplace_participations") is None
    assert store.take("shopee", "us-main", "get_shop_info") is None
    assert [store.take("amazon_sp", "us-main", "account") for _ in range(3)] == [
        FaultSpec("amazon_sp", "throttle", account="us-main", count=2),
        FaultSpec("amazon_sp", "throttle", account="us-main", count=2),
        FaultSpec("amazon_sp", "server_error", check="account"),
    ]
    (remaining,) = store.all()
    assert (remaining.id, remaining.applied, remaining.remaining) == ("f2", 1, None)


@pytest.mark.parametrize(("data", "expected"), [
    ({"marketplace": "http", "fault": "huge_body"}, FaultSpec("http", "huge_body", value=50.0)),
    ({"marketplace": "shopee", "fault": "throttle", "value": 200, "account": "my-main", "count": 3},
     FaultSpec("shopee", "throttle", account="my-main", value=200.0, count=3)),
    ({"marketplace": "amazon_sp", "fault": "latency", "value": 2, "check": "token"},
     FaultSpec("amazon_sp", "latency", check="token", value=2.0)),
    ({"marketplace": "http", "fault": "hang", "check": "anything"},
     FaultSpec("http", "hang", check="anything")),
])
def test_parse_valid_faults(data: dict[str, object], expected: FaultSpec) -> None:
    assert parse_fault(data, PLATFORM_MAP) == expected


@pytest.mark.parametrize("data", [
    None, [], {"fault": "reset"}, {"marketplace": "http"},
    {"marketplace": "http", "fault": "throttle", "value": 150},
    {"marketplace": "http", "fault": "throttle", "value": 404.5},
    {"marketplace": "http", "fault": "latency", "value": 3601},
    {"marketplace": "http", "fault": "latency", "value": float("inf")},
    {"marketplace": "http", "fault": "reset", "check": ""},
    {"marketplace": "http", "fault": "reset", "count": 1.5},
    {"marketplace": "amazon_sp", "fault": "reset", "account": 7},
])
def test_parse_rejects(data: object) -> None:
    with pytest.raises(FaultError):
        parse_fault(data, PLATFORM_MAP)


def test_accounts_are_the_documented_fake_identities() -> None:
    assert [a.refresh_token for a in SIM_ACCOUNTS.amazon_sp] == [
        "Atzr|sim-refresh-us-main", "Atzr|sim-refresh-eu-main"]
    assert {a.client_id for a in SIM_ACCOUNTS.amazon_sp} == {"amzn1.application-oa2-client.sim0001"}
    assert (SIM_ACCOUNTS.shopee.partner_id, SIM_ACCOUNTS.shop("my-main").shop_id) == (2001887, 14701712)
    with pytest.raises(KeyError):
        SIM_ACCOUNTS.amazon("nobody")
