"""Shopee adapter: signing vectors, request building, the error table, hostile bodies.

No HTTP: the adapter is driven with literals. Facts under test are from the sources in
docs/marketplaces/sources.md; the tags in comments name the source.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import pytest
from adapter_harness import NOW, adapter_driver, context_builder, json_response

from marketplace_exporter.adapters.shopee import (
    Shopee,
    ShopeeCredentials,
    base_string,
    error_reason,
    hmac_sha256_hex,
    read,
    sign,
)
from marketplace_exporter.catalogue import Credential, Reason, Step
from marketplace_exporter.model import (
    CredentialObservation,
)

PARTNER_KEY = "test-shopee-partner-key"
ACCESS = "59777174636562737266615546704c6d"
PARTNER_ID, SHOP_ID = 2001887, 14701711


def creds(**overrides: Any) -> ShopeeCredentials:
    values: dict[str, Any] = {"partner_id": PARTNER_ID, "partner_key": {"value": PARTNER_KEY},
                              "shop_id": SHOP_ID, "access_token": {"value": ACCESS}}
    return ShopeeCredentials.model_validate(values | overrides)


make_ctx = context_builder(alias="sg-main", site="SG", operation="get_shop_info",
                           credentials=creds)
drive = adapter_driver(Shopee)
resp = json_response


def shop_error(error: str, message: str = "") -> dict[str, Any]:
    return {"request_id": "d95d0000", "error": error, "message": message}


SHOP_INFO = {"error": "", "message": "", "request_id": "e3e3", "auth_time": 1741944925,
             "expire_time": 1773503999, "shop_name": "mysipuat", "region": "MY", "status": "NORMAL"}


# --- signing ------------------------------------------------------------------------------------


def test_official_worked_example_base_string() -> None:
    # [C1]: the guide's example; its digest needs the (unpublished) partner key, so only the base
    assert base_string(2001887, "/api/v2/shop/get_shop_info", 1655714431,
                       "59777174636562737266615546704c6d", 14701711) == (
        "2001887/api/v2/shop/get_shop_info165571443159777174636562737266615546704c6d14701711")


def test_sdk_hmac_sanity_vector() -> None:
    # [C4] (verified): the parts are not in Shopee's order, so this only checks the HMAC primitive
    parts = ["/api/v2/auth/token/get", "123456", "test_partner_id", "test_shop_id", "test_main_account_id"]
    assert hmac_sha256_hex("test_partner_key", "".join(parts)) == (
        "37c864bd9821ff5f2c2f46b2faca14eb1811a718d1fdc6dcf383cba7c74bf9e9")


@pytest.mark.parametrize(("token", "shop"), [(None, None), (ACCESS, SHOP_ID)])
def test_sign_is_hmac_of_the_base_string(token: str | None, shop: int | None) -> None:
    path = "/api/v2/shop/get_shop_info"
    expected = hmac.new(PARTNER_KEY.encode(), base_string(PARTNER_ID, path, 1655714431, token, shop).encode(),
                        hashlib.sha256).hexdigest()
    assert sign(PARTNER_KEY, PARTNER_ID, path, 1655714431, token, shop) == expected
    assert expected == expected.lower() and len(expected) == 64


def test_public_base_string() -> None:
    assert base_string(1, "/api/v2/public/get_shops_by_partner", 2) == "1/api/v2/public/get_shops_by_partner2"


@pytest.mark.parametrize(("token", "shop", "path"), [
    ("t", None, "/api/v2/x"), (None, 1, "/api/v2/x"), (None, None, "/shopee/api/v2/x"),
    (None, None, "https://partner.shopeemobile.com/api/v2/x"),
])
def test_base_string_rejects_mixed_or_prefixed_inputs(token: str | None, shop: int | None, path: str) -> None:
    with pytest.raises(ValueError):
        base_string(1, path, 2, token, shop)


# --- request building ---------------------------------------------------------------------------


@pytest.mark.parametrize(("sandbox", "base_url", "host"), [
    (False, None, "https://partner.shopeemobile.com"),
    (True, None, "https://openplatform.sandbox.test-stable.shopee.sg"),
    (False, "http://127.0.0.1:9763/shopee/", "http://127.0.0.1:9763/shopee"),
    (True, "https://openplatform.shopee.com.br", "https://openplatform.shopee.com.br"),
])
def test_shop_request(sandbox: bool, base_url: str | None, host: str) -> None:
    sent, outcome = drive(make_ctx(sandbox=sandbox, base_url=base_url), resp(200, SHOP_INFO))
    request = sent[0]
    assert (request.method, request.url, request.step, request.body) == (
        "GET", host + "/api/v2/shop/get_shop_info", Step.CALL, None)
    query = dict(request.query)
    assert [k for k, _ in request.query] == ["partner_id", "timestamp", "access_token", "shop_id", "sign"]
    assert query["partner_id"] == str(PARTNER_ID) and query["timestamp"] == str(int(NOW))
    assert query["access_token"] == ACCESS and query["shop_id"] == str(SHOP_ID)
    # the signed path is the API path, never the base-URL prefix
    path = "/api/v2/shop/get_shop_info"
    assert query["sign"] == sign(PARTNER_KEY, PARTNER_ID, path, int(NOW), ACCESS, SHOP_ID)
    assert {"access_token", "sign"} <= request.sensitive
    assert outcome.success


def test_public_request_carries_no_token() -> None:
    sent, _ = drive(make_ctx(operation="get_shops_by_partner", base_url="http://127.0.0.1:9763/shopee"),
                    resp(200, {"error": "", "authed_shop_list": [], "more": False}))
    query = dict(sent[0].query)
    assert sent[0].url == "http://127.0.0.1:9763/shopee/api/v2/public/get_shops_by_partner"
    assert "access_token" not in query and "shop_id" not in query
    assert query["sign"] == sign(PARTNER_KEY, PARTNER_ID, "/api/v2/public/get_shops_by_partner", int(NOW))
    assert (query["page_size"], query["page_no"]) == ("100", "1")


def test_timestamp_is_whole_seconds_of_ctx_now() -> None:
    sent, _ = drive(make_ctx(now=NOW + 0.9), resp(200, SHOP_INFO))
    assert dict(sent[0].query)["timestamp"] == str(int(NOW))


def test_unavailable_secret_fails_without_a_request() -> None:
    sent, outcome = drive(make_ctx(credentials=creds(access_token="${MARKETPLACE_EXPORTER_TEST_UNSET_VAR}")))
    assert sent == [] and outcome.reason is Reason.AUTH


def test_unknown_operation_is_internal() -> None:
    sent, outcome = drive(make_ctx(operation="get_item_list"))
    assert sent == [] and outcome.reason is Reason.INTERNAL


# --- the error table [C3]: the body decides, whatever the status (status UNCONFIRMED) -----------

ERRORS = [
    ("invalid_acceess_token", "Invalid access_token, please have a check.", Reason.AUTH),
    ("invalid_access_token", "Invalid access_token.", Reason.AUTH),
    ("error_auth", "Invalid access_token.", Reason.AUTH),
    ("error_auth", "Invalid partner_id or shopid.", Reason.AUTH),
    ("error_auth", "Invalid refresh_token.", Reason.AUTH),
    ("error_auth", "", Reason.AUTH),
    ("error_partner_key_expired", "Please reset the Live API Partner Key in Console", Reason.AUTH),
    ("shop_access_expired", "", Reason.AUTH),
    ("refresh_token_expired", "", Reason.AUTH),
    ("error_shop_refresh_token", "", Reason.AUTH),
    ("invalid_code", "", Reason.AUTH),
    ("error_auth", "No permission to current api.", Reason.PERMISSION),
    ("error_api_permission", "This app type has no permission to this API.", Reason.PERMISSION),
    ("error_api_call_restricted", "", Reason.PERMISSION),
    ("error_kyc_auth", "", Reason.PERMISSION),
    ("source_ip_undeclared", "", Reason.PERMISSION),
    ("shop_banned", "", Reason.PERMISSION),
    ("error_rate_limit", "Too many requests. You have reached the rate limit.", Reason.THROTTLED),
    ("error_limit", "You have reached the daily API call limit, please try again after 00:00 (UTC+08:00)",
     Reason.THROTTLED),
    ("error_server", "Something wrong. Please try later.", Reason.SERVER_ERROR),
    ("error_network", "Inner http call failed", Reason.SERVER_ERROR),
    ("error_sign", "Wrong sign.", Reason.CLIENT_ERROR),
    ("error_param", "Timestamp is expired.", Reason.CLIENT_ERROR),
    ("error_param", "There is no access_token in query.", Reason.CLIENT_ERROR),
    ("api_suspended", "The API is offline. Please call v2 API instead.", Reason.CLIENT_ERROR),
    ("error_data", "data not exist", Reason.CLIENT_ERROR),
    ("error_shop", "shopid is invalid", Reason.CLIENT_ERROR),
    ("error_not_exists", "The user does not exist.", Reason.CLIENT_ERROR),
    ("error_something_new", "?", Reason.CLIENT_ERROR),
    # get_shop_info's official common_error_list [C3]: the authorization/partner link is gone ...
    ("shop_no_linked", "Partner and shop has no linked.", Reason.AUTH),
    ("partner_shop_no_link", "Invalid partner_id or shop_id, please have a check.", Reason.AUTH),
    ("invalid_partner_id", "Invalid partner_id.", Reason.AUTH),
    # ... a permission the app lacks ...
    ("error_ashop_api_permission", "No permission to this api.", Reason.PERMISSION),
    # ... and Shopee's own failure behind the overloaded error_auth
    ("error_auth", "System error, please try again later.", Reason.SERVER_ERROR),
]


@pytest.mark.parametrize("status", [200, 400, 403, 429, 500])
@pytest.mark.parametrize(("error", "message", "reason"), ERRORS)
def test_error_table(error: str, message: str, reason: Reason, status: int) -> None:
    _, outcome = drive(make_ctx(), resp(status, shop_error(error, message)))
    assert not outcome.success
    assert (outcome.reason, outcome.code, outcome.http_status) == (reason, error, status)
    assert outcome.message.startswith(error)


def test_every_fact_sheet_code_is_known() -> None:
    fact_sheet = {"invalid_acceess_token", "error_auth", "refresh_token_expired", "error_shop_refresh_token",
                  "shop_access_expired", "invalid_code", "error_api_permission", "error_api_call_restricted",
                  "error_kyc_auth", "source_ip_undeclared", "error_sign", "error_param", "shop_banned",
                  "error_server", "error_network", "error_rate_limit", "error_limit",
                  "error_partner_key_expired", "api_suspended",
                  # get_shop_info's official common_error_list [C3]
                  "shop_no_linked", "partner_shop_no_link", "invalid_partner_id", "error_ashop_api_permission"}
    assert fact_sheet <= Shopee.known_codes
    assert {error for error, _, _ in ERRORS} - {"error_something_new"} <= Shopee.known_codes


def test_error_auth_permission_wording_is_case_insensitive() -> None:
    assert error_reason("error_auth", "NO PERMISSION to current api.") is Reason.PERMISSION


@pytest.mark.parametrize(("now", "expected"), [
    (NOW, 7 * 3600 + 6 * 60 + 40),  # 16:53:20 UTC+8 → 7 h 6 min 40 s to midnight
    (datetime(2025, 10, 9, 15, 59, 59, tzinfo=UTC).timestamp(), 1.0),  # 23:59:59 UTC+8
    (datetime(2025, 10, 9, 16, 0, 0, tzinfo=UTC).timestamp(), 86400.0),  # exactly 00:00 UTC+8
])
def test_daily_limit_retries_after_midnight_utc8(now: float, expected: float) -> None:
    outcome = read(resp(200, shop_error("error_limit", "daily")), now, SHOP_ID)
    assert outcome.retry_after_seconds == pytest.approx(expected)


def test_rate_limit_honours_retry_after_header_if_any() -> None:
    _, with_header = drive(make_ctx(), resp(429, shop_error("error_rate_limit"), {"retry-after": "3"}))
    _, without = drive(make_ctx(), resp(200, shop_error("error_rate_limit")))
    assert (with_header.retry_after_seconds, without.retry_after_seconds) == (3.0, None)


# --- no Shopee envelope: the status decides -----------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"<html>502</html>", b"[]", b"null", b"\xff\xfe", b"{" * 100_000,
                                  {"message": "no error key"}, {"error": None}, {"error": 5},
                                  {"error": ["error_auth"]}])
@pytest.mark.parametrize(("status", "reason"), [
    (200, Reason.INVALID_RESPONSE), (404, Reason.INVALID_RESPONSE), (429, Reason.THROTTLED),
    (500, Reason.SERVER_ERROR), (503, Reason.SERVER_ERROR),
])
def test_without_envelope_status_decides(body: Any, status: int, reason: Reason) -> None:
    _, outcome = drive(make_ctx(), resp(status, body))
    assert not outcome.success
    assert (outcome.reason, outcome.code, outcome.http_status) == (reason, None, status)


@pytest.mark.parametrize(("status", "reason"), [(500, Reason.SERVER_ERROR), (403, Reason.INVALID_RESPONSE)])
def test_empty_error_with_failing_status_is_not_success(status: int, reason: Reason) -> None:
    _, outcome = drive(make_ctx(), resp(status, {"error": "", "message": ""}))
    assert (outcome.success, outcome.reason) == (False, reason)


# --- success and credential observations --------------------------------------------------------


def test_shop_info_success_observes_authorization_expiry() -> None:
    _, outcome = drive(make_ctx(), resp(200, SHOP_INFO))
    assert outcome.success and outcome.http_status == 200
    assert outcome.credentials == (CredentialObservation(Credential.AUTHORIZATION, 1773503999.0),)
    assert outcome.values == (("shop_status_normal", 1.0),)


@pytest.mark.parametrize(("status", "value"), [("BANNED", 0.0), ("FROZEN", 0.0), ("NORMAL", 1.0)])
def test_shop_status_is_exported_not_judged(status: str, value: float) -> None:
    outcome = read(resp(200, SHOP_INFO | {"status": status}), NOW, SHOP_ID)
    assert outcome.success and outcome.values == (("shop_status_normal", value),)


def test_expiry_nested_under_response_is_read_too() -> None:
    outcome = read(resp(200, {"error": "", "response": {"expire_time": 1773503999}}), NOW, SHOP_ID)
    assert outcome.credentials == (CredentialObservation(Credential.AUTHORIZATION, 1773503999.0),)


@pytest.mark.parametrize("expire_time", ["1773503999", True, -1, 0, 10**30, 1773503999000, None, [1],
                                         1.5e308])
def test_hostile_expire_time_gives_no_observation_but_no_crash(expire_time: Any) -> None:
    outcome = read(resp(200, SHOP_INFO | {"expire_time": expire_time}), NOW, SHOP_ID)
    assert outcome.success and outcome.credentials == ()


def test_hostile_shop_status_and_huge_numbers() -> None:
    body = b'{"error": "", "expire_time": 1e999, "status": 12, "shop_name": "' + b"x" * 100_000 + b'"}'
    outcome = read(resp(200, body), NOW, SHOP_ID)
    assert outcome.success and outcome.credentials == () and outcome.values == ()


def test_configured_access_token_expiry_is_observed_on_success_and_failure() -> None:
    at = datetime(2025, 10, 9, 12, 0)  # naive = UTC
    ctx = make_ctx(credentials=creds(access_token_expires_at=at))
    expected = CredentialObservation(Credential.ACCESS_TOKEN,
                                     datetime(2025, 10, 9, 12, tzinfo=UTC).timestamp())
    _, ok = drive(ctx, resp(200, SHOP_INFO))
    _, failed = drive(ctx, resp(200, shop_error("invalid_acceess_token")))
    assert ok.credentials == (expected, CredentialObservation(Credential.AUTHORIZATION, 1773503999.0))
    assert failed.credentials == (expected,)


def test_shops_by_partner_reads_our_shop() -> None:
    body = {"error": "", "more": False, "request_id": "x", "authed_shop_list": [
        {"shop_id": 1, "region": "TW", "auth_time": 1610533441, "expire_time": 1642069441},
        {"shop_id": SHOP_ID, "region": "SG", "auth_time": 1610533441, "expire_time": 1773503999},
        "garbage", {"shop_id": True}]}
    _, outcome = drive(make_ctx(operation="get_shops_by_partner"), resp(200, body))
    assert outcome.success and "this shop listed" in outcome.message
    assert outcome.credentials == (CredentialObservation(Credential.AUTHORIZATION, 1773503999.0),)


def test_shops_by_partner_without_our_shop_is_still_a_working_api() -> None:
    body = {"error": "", "more": True, "authed_shop_list": [{"shop_id": 1, "expire_time": 1642069441}]}
    outcome = read(resp(200, body), NOW, SHOP_ID)
    assert outcome.success and outcome.credentials == () and "not on the first page" in outcome.message


@pytest.mark.parametrize("shops", [None, "x", {"shop_id": SHOP_ID}, 5])
def test_shops_by_partner_broken_list_is_invalid_response(shops: Any) -> None:
    outcome = read(resp(200, {"error": "", "authed_shop_list": shops}), NOW, SHOP_ID)
    assert (outcome.success, outcome.reason) == (False, Reason.INVALID_RESPONSE)


def test_error_message_is_bounded_and_never_shows_the_token() -> None:
    body = shop_error("error_auth", f"Invalid access_token {ACCESS} " + "y" * 10_000)
    drive(make_ctx(), resp(200, SHOP_INFO))  # the adapter revealed ACCESS: the redactor knows it
    outcome = read(resp(200, body), NOW, SHOP_ID)
    assert ACCESS not in outcome.message and len(outcome.message) <= 200


def test_hostile_error_code_is_bounded() -> None:
    outcome = read(resp(200, shop_error("e" * 10_000)), NOW, SHOP_ID)
    assert outcome.reason is Reason.CLIENT_ERROR and len(outcome.code or "") <= 64


# --- static description and credentials ---------------------------------------------------------


def test_operations_and_sites() -> None:
    info = Shopee.operations["get_shop_info"]
    assert (info.rate_per_second, info.burst, info.default_interval_seconds) == (None, None, 120.0)
    assert info.limits(sandbox=False) is None and info.limits(sandbox=True) is None
    assert Shopee.operations["get_shops_by_partner"].rate_per_second is None
    assert Shopee.sites == {"SG", "MY", "TH", "TW", "ID", "VN", "PH", "BR", "MX", "CO", "CL"}


@pytest.mark.parametrize("overrides", [
    {"refresh_token": {"value": "r"}},  # deliberately no refresh token: Shopee rotates them [C3]
    {"partner_id": True}, {"partner_id": "2001887"}, {"partner_id": 0}, {"shop_id": -1},
    {"access_token": "plain-string-token"},
])
def test_credentials_rejects(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        creds(**overrides)
