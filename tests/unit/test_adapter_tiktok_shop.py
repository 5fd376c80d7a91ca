"""TikTok Shop adapter: signing vectors, request building, the error table, hostile bodies, and the
rule that it never refreshes.

No HTTP: the adapter is driven with literals. Facts under test are from the sources in
docs/marketplaces/sources.md; the tags in comments name the source.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from adapter_harness import NOW, adapter_driver, context_builder, json_response

from marketplace_exporter.adapters.tiktok_shop import (
    AUTH_HOST,
    TikTokShop,
    TikTokShopCredentials,
    code_reason,
    read,
)
from marketplace_exporter.adapters.tiktok_shop_signing import base_string, hmac_sha256_hex, sign
from marketplace_exporter.catalogue import Credential, Reason, Step
from marketplace_exporter.model import CredentialObservation, HttpResponse

APP_KEY, APP_SECRET = "6simtts0001ab", "test-tiktok-app-secret"
ACCESS = "ROW_test-tiktok-access-token-0001"
CIPHER = "ROW_test-cipher-0001"
SHOPS_PATH, WEBHOOKS_PATH = "/authorization/202309/shops", "/event/202309/webhooks"


def creds(**overrides: Any) -> TikTokShopCredentials:
    values: dict[str, Any] = {"app_key": APP_KEY, "app_secret": {"value": APP_SECRET},
                              "access_token": {"value": ACCESS}, "shop_cipher": CIPHER}
    return TikTokShopCredentials.model_validate({k: v for k, v in (values | overrides).items() if v is not None})


make_ctx = context_builder(alias="us-main", site="US", operation="authorized_shops",
                           credentials=creds)
drive = adapter_driver(TikTokShop)
resp = json_response


def tt(code: int, message: str = "", data: Any = None) -> dict[str, Any]:
    return {"code": code, "message": message, "request_id": "20240710170328026B85572D809D2BFFC5", "data": data}


SHOP = {"id": "7000714532876273420", "name": "Maomao beauty shop", "region": "GB", "seller_type": "CROSS_BORDER",
        "cipher": CIPHER, "code": "CNGBCBA4LLU8"}
SHOPS_OK = tt(0, "Success", {"shops": [SHOP]})


# --- signing [G1] -------------------------------------------------------------------------------


def test_sdk_vector() -> None:
    # tests/ClientTest.php: secret app_secret, GET /test-api, {foo: bar} (verified)
    assert base_string("app_secret", "/test-api", {"foo": "bar"}) == "app_secret/test-apifoobarapp_secret"
    assert sign("app_secret", "/test-api", {"foo": "bar"}) == (
        "d3cb7fe11ecae942802ceeca67e7cf10120cc12f1517d45fbc1c8cfe5413c80f")


def test_official_doc_vector() -> None:
    # TikTok Shop "Sign your API request" worked example [G7]: app_key 29a39d, timestamp 1623812664,
    # app_secret e59af819cc, GET /authorization/202309/shops
    params = {"app_key": "29a39d", "timestamp": "1623812664"}
    assert base_string("e59af819cc", "/authorization/202309/shops", params) == (
        "e59af819cc/authorization/202309/shopsapp_key29a39dtimestamp1623812664e59af819cc")
    assert sign("e59af819cc", "/authorization/202309/shops", params) == (
        "b596b73e0cc6de07ac26f036364178ab16b0a907af13d43f0a0cd2345f582dc8")


POST_PARAMS = {"timestamp": "1700000000", "shop_cipher": "ROW_c", "app_key": "k123", "page_size": "10",
               "sign": "ignored", "access_token": "ignored-too", "x-tts-access-token": "never"}
POST_BODY = b'{"order_status":"UNPAID"}'


def test_post_with_body_vector() -> None:
    # digest computed independently with `openssl dgst -sha256 -hmac app_secret` over the string below
    expected_base = ('app_secret/order/202309/orders/searchapp_keyk123page_size10shop_cipherROW_c'
                     'timestamp1700000000{"order_status":"UNPAID"}app_secret')
    assert base_string("app_secret", "/order/202309/orders/search", POST_PARAMS, method="POST",
                       body=POST_BODY) == expected_base
    assert sign("app_secret", "/order/202309/orders/search", POST_PARAMS, method="POST", body=POST_BODY) == (
        "729b04a712713d9efadeecb8b8637cefbe2d2ac97cf46d8f73ef8456bd9e42f0")


@pytest.mark.parametrize(("method", "content_type", "signed"), [
    ("GET", "application/json", False),  # a GET body is never signed
    ("POST", "multipart/form-data; boundary=x", False),  # nor a multipart one [G1]
    ("PUT", "application/json", True), ("post", None, True),
])
def test_body_is_signed_only_for_non_get_non_multipart(method: str, content_type: str | None, signed: bool) -> None:
    text = base_string("s", "/p", {}, method=method, body=b"BODY", content_type=content_type)
    assert text == ("s/pBODYs" if signed else "s/ps")


def test_array_values_are_skipped_and_keys_sorted() -> None:
    params = [("z", "1"), ("ids", ["a", "b"]), ("a", "2"), ("m", 3)]
    assert base_string("s", "/p", params) == "s/pa2m3z1s"


def test_non_utf8_body_is_signed_byte_exact() -> None:
    body = b"\xff\xfe{}"
    expected = hmac.new(b"s", b"s/p" + body + b"s", hashlib.sha256).hexdigest()
    assert sign("s", "/p", {}, method="POST", body=body) == expected


def test_hmac_primitive() -> None:
    assert hmac_sha256_hex("k", "m") == hmac.new(b"k", b"m", hashlib.sha256).hexdigest()


@pytest.mark.parametrize("path", ["authorization/202309/shops", "https://open-api.tiktokglobalshop.com/x",
                                  "/x?y=1"])
def test_base_string_rejects_non_paths(path: str) -> None:
    with pytest.raises(ValueError):
        base_string("s", path, {})


# --- request building ---------------------------------------------------------------------------


@pytest.mark.parametrize(("sandbox", "base_url", "host"), [
    (False, None, "https://open-api.tiktokglobalshop.com"),
    (True, None, "https://open-api-sandbox.tiktokglobalshop.com"),
    (False, "http://127.0.0.1:9763/tiktok/", "http://127.0.0.1:9763/tiktok"),
    (True, "http://127.0.0.1:9763/tiktok", "http://127.0.0.1:9763/tiktok"),
])
@pytest.mark.parametrize("site", ["US", "GB", "TH"])
def test_authorized_shops_request(sandbox: bool, base_url: str | None, host: str, site: str) -> None:
    sent, outcome = drive(make_ctx(sandbox=sandbox, base_url=base_url, site=site), resp(200, SHOPS_OK))
    (request,) = sent
    assert (request.method, request.url, request.step, request.body) == ("GET", host + SHOPS_PATH, Step.CALL, None)
    assert [k for k, _ in request.query] == ["app_key", "timestamp", "sign"]  # no shop_cipher [G1]
    query = dict(request.query)
    assert query["app_key"] == APP_KEY and query["timestamp"] == str(int(NOW))
    # the signed path is the API path, never the base-URL prefix
    assert query["sign"] == sign(APP_SECRET, SHOPS_PATH, {"app_key": APP_KEY, "timestamp": str(int(NOW))})
    headers = dict(request.headers)
    assert headers["x-tts-access-token"] == ACCESS and "authorization" not in headers
    assert "access_token" not in query  # the token travels in the header only
    assert {"x-tts-access-token", "sign"} <= request.sensitive
    assert outcome.success


def test_shop_scoped_request_signs_the_cipher() -> None:
    sent, outcome = drive(make_ctx(operation="shop_webhooks", base_url="http://127.0.0.1:9763/tiktok"),
                          resp(200, tt(0, "Success", {"shop_id": "1", "webhooks": [{}, {}]})))
    query = dict(sent[0].query)
    assert sent[0].url == "http://127.0.0.1:9763/tiktok" + WEBHOOKS_PATH
    assert query["shop_cipher"] == CIPHER
    assert query["sign"] == sign(APP_SECRET, WEBHOOKS_PATH, {"app_key": APP_KEY, "timestamp": str(int(NOW)),
                                                             "shop_cipher": CIPHER})
    assert outcome.success and outcome.message == "2 webhooks"


def test_shop_scoped_operation_without_cipher_sends_nothing() -> None:
    sent, outcome = drive(make_ctx(operation="shop_webhooks", credentials=creds(shop_cipher=None)))
    assert sent == [] and outcome.reason is Reason.CLIENT_ERROR and "shop_cipher" in outcome.message


def test_timestamp_is_whole_seconds() -> None:
    sent, _ = drive(make_ctx(now=NOW + 0.99), resp(200, SHOPS_OK))
    assert dict(sent[0].query)["timestamp"] == str(int(NOW))


@pytest.mark.parametrize("overrides", [{"app_secret": "${MARKETPLACE_EXPORTER_TEST_UNSET_VAR}"},
                                       {"access_token": "${MARKETPLACE_EXPORTER_TEST_UNSET_VAR}"}])
def test_unavailable_secret_fails_without_a_request(overrides: dict[str, Any]) -> None:
    sent, outcome = drive(make_ctx(credentials=creds(**overrides)))
    assert sent == [] and outcome.reason is Reason.AUTH


def test_unknown_operation_is_internal() -> None:
    sent, outcome = drive(make_ctx(operation="get_order_list"))
    assert sent == [] and outcome.reason is Reason.INTERNAL


# --- never refresh (rotation UNCONFIRMED) -------------------------------------------------------


@pytest.mark.parametrize("auth_url", [None, "http://127.0.0.1:9763/tiktok-auth", AUTH_HOST])
@pytest.mark.parametrize("answer", [resp(200, SHOPS_OK), resp(401, tt(105002, "access token is expired"))])
def test_never_calls_the_auth_host(auth_url: str | None, answer: HttpResponse) -> None:
    ctx = make_ctx(auth_url=auth_url, base_url="http://127.0.0.1:9763/tiktok")
    sent, _ = drive(ctx, answer)  # exactly one request, even after an expired-token answer
    assert len(sent) == 1
    assert all("auth" not in r.url.split("/")[2] and "/token/" not in r.url for r in sent)
    assert ctx.tokens._tokens == {}  # nothing minted, nothing cached


@pytest.mark.parametrize("key", ["refresh_token", "refresh", "auto_refresh"])
def test_credentials_refuse_a_refresh_token(key: str) -> None:
    with pytest.raises(ValueError, match="never refreshes"):
        creds(**{key: {"value": "ROW_r"}})


# --- the error table: the body's code decides, whatever the status [G1][OBS G5] ------------------

ERRORS = [
    (105002, "access token is expired, please refresh it", Reason.AUTH, "105002"),
    (105005, "you should apply auth pkg for this api", Reason.PERMISSION, "105005"),
    (105001, "access token is invalid", Reason.AUTH, "105001"),  # group 105 → auth [G1]
    (36009004, "Invalid credentials. The 'x-tts-access-token' header is invalid", Reason.AUTH, "36009004"),
    (36004005, "can not find related auth record", Reason.AUTH, "36004005"),  # group 360 [G1]
    (106001, "Invalid credentials. The 'sign' query parameter is invalid.", Reason.CLIENT_ERROR, "106001"),
    (106013, "Missing identifier. The 'shop_cipher' query parameter is required", Reason.CLIENT_ERROR, "106013"),
    (-1, "", Reason.CLIENT_ERROR, "-1"),
]


@pytest.mark.parametrize("status", [200, 400, 401, 403])
@pytest.mark.parametrize(("code", "message", "reason", "label"), ERRORS)
def test_error_table(code: int, message: str, reason: Reason, label: str, status: int) -> None:
    _, outcome = drive(make_ctx(), resp(status, tt(code, message)))
    assert not outcome.success
    assert (outcome.reason, outcome.code, outcome.http_status) == (reason, label, status)
    assert outcome.message.startswith(label)


@pytest.mark.parametrize(("status", "reason"), [(429, Reason.THROTTLED), (500, Reason.SERVER_ERROR),
                                                (503, Reason.SERVER_ERROR), (404, Reason.CLIENT_ERROR)])
def test_unnamed_codes_take_their_meaning_from_the_status(status: int, reason: Reason) -> None:
    # throttling and server codes are UNCONFIRMED: the status says what they are
    outcome = read(resp(status, tt(98765, "x")), NOW)
    assert (outcome.reason, outcome.code) == (reason, "98765")


@pytest.mark.parametrize("status", [429, 500])
def test_auth_codes_win_over_the_status(status: int) -> None:
    assert read(resp(status, tt(105002, "expired")), NOW).reason is Reason.AUTH
    assert read(resp(status, tt(105005, "pkg")), NOW).reason is Reason.PERMISSION


def test_only_fact_sheet_codes_are_known() -> None:
    assert TikTokShop.known_codes == {"105002", "105005"}


@pytest.mark.parametrize(("code", "reason"), [
    (105002, Reason.AUTH), (105005, Reason.PERMISSION), (105999, Reason.AUTH), (36000000, Reason.AUTH),
    (36009004, Reason.AUTH), (106001, Reason.CLIENT_ERROR), (-105002, Reason.CLIENT_ERROR),
    # the SDK reads the first three *digits* [G1], whatever the magnitude: so do we
    (3600, Reason.AUTH), (1050, Reason.AUTH),
])
def test_code_groups(code: int, reason: Reason) -> None:
    assert code_reason(code) is reason


def test_throttle_honours_retry_after() -> None:
    _, outcome = drive(make_ctx(), resp(429, tt(429, "Too many requests"), {"retry-after": "7"}))
    assert (outcome.reason, outcome.retry_after_seconds) == (Reason.THROTTLED, 7.0)
    _, expired = drive(make_ctx(), resp(401, tt(105002, "x"), {"retry-after": "7"}))
    assert expired.retry_after_seconds is None


# --- no envelope: the status decides ------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"<html>502</html>", b"[]", b"null", b"\xff\xfe", b"[" * 100_000,
                                  {"message": "no code"}, {"code": None}, {"code": "105002"}, {"code": True},
                                  {"code": 1.5}, {"code": 10**30}, {"code": [105002]}])
@pytest.mark.parametrize(("status", "reason"), [
    (200, Reason.INVALID_RESPONSE), (401, Reason.INVALID_RESPONSE), (429, Reason.THROTTLED),
    (500, Reason.SERVER_ERROR), (504, Reason.SERVER_ERROR),
])
def test_without_envelope_status_decides(body: Any, status: int, reason: Reason) -> None:
    _, outcome = drive(make_ctx(), resp(status, body))
    assert not outcome.success
    assert (outcome.reason, outcome.code, outcome.http_status) == (reason, None, status)


@pytest.mark.parametrize(("status", "reason"), [(500, Reason.SERVER_ERROR), (403, Reason.INVALID_RESPONSE)])
def test_code_zero_with_failing_status_is_not_success(status: int, reason: Reason) -> None:
    outcome = read(resp(status, SHOPS_OK), NOW)
    assert (outcome.success, outcome.reason) == (False, reason)


# --- success ------------------------------------------------------------------------------------


def test_authorized_shops_reports_whether_our_cipher_is_listed() -> None:
    listed = read(resp(200, SHOPS_OK), NOW, "authorized_shops", CIPHER)
    gone = read(resp(200, tt(0, "Success", {"shops": [SHOP | {"cipher": "other"}, "junk", 5]})), NOW,
                    "authorized_shops", CIPHER)
    unconfigured = read(resp(200, SHOPS_OK), NOW, "authorized_shops", None)
    assert listed.success and listed.values == (("shop_cipher_listed", 1.0),) and "listed" in listed.message
    assert gone.success and gone.values == (("shop_cipher_listed", 0.0),) and "NOT listed" in gone.message
    assert unconfigured.success and unconfigured.values == () and unconfigured.message == "1 authorized shops"


@pytest.mark.parametrize("data", [None, [], "x", {"shops": None}, {"shops": {"cipher": CIPHER}}, {}])
def test_broken_shop_list_is_invalid_response(data: Any) -> None:
    outcome = read(resp(200, tt(0, "Success", data)), NOW)
    assert (outcome.success, outcome.reason) == (False, Reason.INVALID_RESPONSE)


def test_shop_read_needs_a_data_object() -> None:
    assert read(resp(200, tt(0, "ok", {})), NOW, "shop_webhooks").success
    assert read(resp(200, tt(0, "ok", [])), NOW, "shop_webhooks").reason is Reason.INVALID_RESPONSE


def test_error_message_is_bounded_and_never_shows_the_token() -> None:
    drive(make_ctx(), resp(200, SHOPS_OK))  # the adapter revealed ACCESS: the redactor knows it
    outcome = read(resp(200, tt(36009004, f"token {ACCESS} invalid " + "y" * 10_000)), NOW)
    assert ACCESS not in outcome.message and len(outcome.message) <= 200


# --- expiry: from the token production holds ----------------------------------------------------


def test_token_file_with_tiktoks_absolute_expiry_fields(tmp_path: Path) -> None:
    # TikTok's token response gives ABSOLUTE access_token_expire_in / refresh_token_expire_in [G1][OBS G3];
    # an ERP that writes the response's data object as the token file gives both expiry series
    path = tmp_path / "tiktok-token.json"
    path.write_text(json.dumps({"access_token": "ROW_file-token-0001", "access_token_expire_in": 1760600000,
                                "refresh_token": "ROW_never-read", "refresh_token_expire_in": 4841467787}))
    ctx = make_ctx(credentials=creds(access_token=None, token_file=str(path)))
    sent, ok = drive(ctx, resp(200, SHOPS_OK))
    _, failed = drive(ctx, resp(401, tt(105002, "expired")))
    assert dict(sent[0].headers)["x-tts-access-token"] == "ROW_file-token-0001"
    expected = {CredentialObservation(Credential.ACCESS_TOKEN, 1760600000.0),
                CredentialObservation(Credential.REFRESH_TOKEN, 4841467787.0)}
    assert set(ok.credentials) == expected and set(failed.credentials) == expected


def test_configured_access_token_expiry_is_observed() -> None:
    ctx = make_ctx(credentials=creds(access_token_expires_at=datetime(2025, 10, 16, 12, 0)))
    _, outcome = drive(ctx, resp(200, SHOPS_OK))
    assert outcome.credentials == (CredentialObservation(
        Credential.ACCESS_TOKEN, datetime(2025, 10, 16, 12, tzinfo=UTC).timestamp()),)


# --- static description and credentials ---------------------------------------------------------


def test_operations_and_sites() -> None:
    for operation in TikTokShop.operations.values():
        assert (operation.rate_per_second, operation.burst, operation.limit_source) == (None, None, "UNCONFIRMED")
        assert operation.limits(sandbox=False) is None
    assert {"US", "GB", "ID", "MY", "PH", "SG", "TH", "VN"} <= TikTokShop.sites


@pytest.mark.parametrize("overrides", [
    {"app_key": ""}, {"app_key": "has space"}, {"app_secret": "plain-string"}, {"shop_cipher": ""},
    {"access_token": None}, {"token_file": "/x.json"},  # exactly one token source
])
def test_credentials_rejects(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        creds(**overrides)
