"""Lazada adapter: request building per site, signing, the error table, hostile bodies, held tokens.

No HTTP: the adapter is driven with literals. Facts under test are from the sources in
docs/marketplaces/sources.md; the tags in comments name the source.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from adapter_harness import NOW, adapter_driver, context_builder, json_response

from marketplace_exporter.adapters.iop_signing import sign
from marketplace_exporter.adapters.lazada import AUTH_HOST, GATEWAYS, Lazada, LazadaCredentials, read
from marketplace_exporter.catalogue import Credential, Reason, Step
from marketplace_exporter.model import (
    CredentialObservation,
)

APP_KEY, APP_SECRET = "100731", "test-lazada-app-secret"
ACCESS = "50000601c30atpedfgu3LVvik87Ixlsvle3mSoB7701ceb156fPunYZ43GBg"


def creds(**overrides: Any) -> LazadaCredentials:
    values: dict[str, Any] = {"app_key": APP_KEY, "app_secret": {"value": APP_SECRET},
                              "access_token": {"value": ACCESS}}
    return LazadaCredentials.model_validate({**values, **overrides})


make_ctx = context_builder(alias="th-main", site="TH", operation="seller_get",
                           credentials=creds)
drive = adapter_driver(Lazada)
resp = json_response


def lazada_error(code: str, error_type: str | None = "ISV", message: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": "0b8ae2f415263703419498863"}
    if error_type is not None:
        body["type"] = error_type
    return body


SELLER = {"code": "0", "request_id": "0ba2887315178178017221014",
          "data": {"name": "Sim Outfitters TH", "seller_id": 100071001, "short_code": "TH1SIMAB"}}


# --- request building ---------------------------------------------------------------------------


@pytest.mark.parametrize(("site", "host"), [
    ("SG", "https://api.lazada.sg/rest"), ("MY", "https://api.lazada.com.my/rest"),
    ("VN", "https://api.lazada.vn/rest"), ("TH", "https://api.lazada.co.th/rest"),
    ("PH", "https://api.lazada.com.ph/rest"), ("ID", "https://api.lazada.co.id/rest"),
])
@pytest.mark.parametrize("sandbox", [False, True])  # no sandbox host: test-status apps use these [D7]
def test_site_picks_the_country_gateway(site: str, host: str, sandbox: bool) -> None:
    sent, outcome = drive(make_ctx(site=site, sandbox=sandbox), resp(200, SELLER))
    assert sent[0].url == host + "/seller/get" and outcome.success
    assert Lazada.sites == frozenset(GATEWAYS)


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:9763/lazada/th/rest",
                                      "http://127.0.0.1:9763/lazada/th/rest/"])
def test_base_url_overrides_the_host_but_never_the_signed_path(base_url: str) -> None:
    sent, _ = drive(make_ctx(base_url=base_url), resp(200, SELLER))
    request = sent[0]
    assert (request.method, request.url, request.step, request.body) == (
        "GET", "http://127.0.0.1:9763/lazada/th/rest/seller/get", Step.CALL, None)
    query = dict(request.query)
    assert [key for key, _ in request.query] == ["app_key", "timestamp", "sign_method", "access_token", "sign"]
    assert query == {"app_key": APP_KEY, "timestamp": "1760000000000", "sign_method": "sha256",
                     "access_token": ACCESS, "sign": query["sign"]}
    unsigned = {key: value for key, value in query.items() if key != "sign"}
    assert query["sign"] == sign(APP_SECRET, unsigned, "/seller/get")  # [D2][D5]
    assert query["sign"] != sign(APP_SECRET, unsigned, "/lazada/th/rest/seller/get")
    assert {"access_token", "sign"} <= request.sensitive


def test_auth_url_is_never_used_and_one_request_only() -> None:
    # rotation UNCONFIRMED → treated as rotating: the auth host is never called
    sent, outcome = drive(make_ctx(auth_url="http://127.0.0.1:9763/lazada/auth/rest"), resp(200, SELLER))
    assert len(sent) == 1 and outcome.success
    assert "auth" not in sent[0].url and not sent[0].url.startswith(AUTH_HOST)


def test_timestamp_is_milliseconds_of_ctx_now() -> None:
    sent, _ = drive(make_ctx(now=NOW + 0.1234), resp(200, SELLER))
    assert dict(sent[0].query)["timestamp"] == "1760000000123"


def test_unavailable_secret_fails_without_a_request() -> None:
    sent, outcome = drive(make_ctx(credentials=creds(app_secret="${MARKETPLACE_EXPORTER_TEST_UNSET_VAR}")))
    assert sent == [] and outcome.reason is Reason.AUTH
    sent, outcome = drive(make_ctx(credentials=creds(access_token=None, token_file="/nonexistent/token.json")))
    assert sent == [] and outcome.reason is Reason.AUTH


@pytest.mark.parametrize(("overrides", "why"), [({"operation": "orders_get"}, "unknown operation"),
                                                ({"site": "XX"}, "no gateway")])
def test_bad_operation_or_site_is_internal(overrides: dict[str, Any], why: str) -> None:
    sent, outcome = drive(make_ctx(**overrides))
    assert sent == [] and outcome.reason is Reason.INTERNAL and why in outcome.message


# --- the error table: the body decides whatever the status (status UNCONFIRMED [D1][D2]) ---------

ERRORS = [
    ("IllegalAccessToken", "ISV", "The specified access token is invalid or expired", Reason.AUTH),  # [D6]
    ("InvalidCode", "ISP", "Invalid authorization code", Reason.AUTH),  # [D6]
    ("ApiCallLimit", "ISV", "Api access frequency exceeds the limit. this ban will last 3 seconds",
     Reason.THROTTLED),  # [OBS D11]
    ("IncompleteSignature", "ISV", "The request signature does not conform to platform standards",
     Reason.CLIENT_ERROR),  # [OBS E10][X4]
    # no source names these codes: the type decides [D10]
    ("MissingParameter", "ISV", "The input parameter 'sign' is not supplied", Reason.CLIENT_ERROR),
    ("InvalidTimestamp", "ISV", "", Reason.CLIENT_ERROR),
    ("1001", "ISV", "The parameters are not in JSON format", Reason.CLIENT_ERROR),
    ("InternalError", "ISP", "Backend service error", Reason.SERVER_ERROR),
    ("ServiceTimeout", "SYSTEM", "", Reason.SERVER_ERROR),
    ("SomethingNew", None, "", Reason.CLIENT_ERROR),
    ("InsufficientPermission", "ISV", "", Reason.PERMISSION),  # heuristic on the code's name
]


@pytest.mark.parametrize("status", [200, 400, 403, 429, 500])
@pytest.mark.parametrize(("code", "error_type", "message", "reason"), ERRORS)
def test_error_table(code: str, error_type: str | None, message: str, reason: Reason, status: int) -> None:
    _, outcome = drive(make_ctx(), resp(status, lazada_error(code, error_type, message)))
    assert not outcome.success
    assert (outcome.reason, outcome.code, outcome.http_status) == (reason, code, status)
    assert outcome.message.startswith(code)


def test_every_fact_sheet_code_is_known() -> None:
    assert {"IllegalAccessToken", "InvalidCode", "ApiCallLimit"} <= Lazada.known_codes
    assert "IncompleteSignature" in Lazada.known_codes  # the shared IOP gateway's signature error


@pytest.mark.parametrize(("message", "headers", "retry"), [
    ("Api access frequency exceeds the limit. this ban will last 3 seconds", {}, 3.0),
    ("this ban will last 3 seconds", {"retry-after": "60"}, 3.0),  # the message wins
    ("Api access frequency exceeds the limit.", {"retry-after": "60"}, 60.0),
    ("Api access frequency exceeds the limit.", {}, None),
])
def test_throttle_retry_after(message: str, headers: dict[str, str], retry: float | None) -> None:
    _, outcome = drive(make_ctx(), resp(200, lazada_error("ApiCallLimit", "ISV", message), headers))
    assert outcome.reason is Reason.THROTTLED and outcome.retry_after_seconds == retry


def test_only_throttles_carry_retry_after() -> None:
    _, outcome = drive(make_ctx(), resp(200, lazada_error("IllegalAccessToken", message="ban will last 3 seconds"),
                                        {"retry-after": "9"}))
    assert outcome.reason is Reason.AUTH and outcome.retry_after_seconds is None


# --- no envelope: the status decides ------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"<html>502 Bad Gateway</html>", b"[]", b"null", b"\xff\xfe",
                                  b"{" * 100_000, {"message": "no code key"}, {"data": {}}])
@pytest.mark.parametrize(("status", "reason"), [
    (200, Reason.INVALID_RESPONSE), (302, Reason.INVALID_RESPONSE), (401, Reason.AUTH),
    (403, Reason.PERMISSION), (404, Reason.CLIENT_ERROR), (429, Reason.THROTTLED),
    (500, Reason.SERVER_ERROR), (503, Reason.SERVER_ERROR),
])
def test_without_envelope_status_decides(body: Any, status: int, reason: Reason) -> None:
    _, outcome = drive(make_ctx(), resp(status, body))
    assert not outcome.success
    assert (outcome.reason, outcome.code, outcome.http_status) == (reason, None, status)


@pytest.mark.parametrize("code", [None, True, False, [], {}, 1.5, ""])
def test_hostile_code_values_are_not_errors_we_trust(code: Any) -> None:
    outcome = read(resp(200, {"code": code, "type": "ISV", "message": "x"}), NOW)
    assert (outcome.success, outcome.reason, outcome.code) == (False, Reason.INVALID_RESPONSE, None)


def test_integer_error_codes_are_read_as_text() -> None:
    outcome = read(resp(200, {"code": 1001, "type": "ISV", "message": "bad json"}), NOW)
    assert (outcome.reason, outcome.code) == (Reason.CLIENT_ERROR, "1001")


def test_retry_after_header_on_a_bare_429() -> None:
    _, outcome = drive(make_ctx(), resp(429, b"slow down", {"retry-after": "7"}))
    assert (outcome.reason, outcome.retry_after_seconds) == (Reason.THROTTLED, 7.0)


# --- success ------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["0", 0])
def test_success_needs_code_zero_and_a_data_object(code: Any) -> None:
    _, outcome = drive(make_ctx(), resp(200, {**SELLER, "code": code}))
    assert outcome.success and outcome.http_status == 200 and outcome.credentials == ()


@pytest.mark.parametrize("data", [None, [], "x", 5])
def test_code_zero_without_data_object_is_invalid(data: Any) -> None:
    outcome = read(resp(200, {"code": "0", "data": data}), NOW)
    assert (outcome.success, outcome.reason) == (False, Reason.INVALID_RESPONSE)


@pytest.mark.parametrize(("status", "reason"), [(500, Reason.SERVER_ERROR), (403, Reason.PERMISSION)])
def test_code_zero_with_failing_status_is_not_success(status: int, reason: Reason) -> None:
    outcome = read(resp(status, SELLER), NOW)
    assert (outcome.success, outcome.reason) == (False, reason)


def test_hostile_success_body_does_not_crash() -> None:
    body = b'{"code": "0", "data": {"name": "' + b"x" * 200_000 + b'", "seller_id": 1e999}}'
    assert read(resp(200, body), NOW).success


def test_error_message_is_bounded_and_never_shows_the_token() -> None:
    drive(make_ctx(), resp(200, SELLER))  # the adapter revealed ACCESS: the redactor knows it
    body = lazada_error("IllegalAccessToken", "ISV", f"token {ACCESS} is invalid " + "y" * 10_000)
    outcome = read(resp(200, body), NOW)
    assert ACCESS not in outcome.message and len(outcome.message) <= 200


def test_hostile_error_code_is_bounded() -> None:
    outcome = read(resp(200, lazada_error("E" * 10_000, "ISP")), NOW)
    assert outcome.reason is Reason.SERVER_ERROR and len(outcome.code or "") <= 64


def test_message_of_wrong_type_is_ignored() -> None:
    outcome = read(resp(200, {"code": "ApiCallLimit", "type": ["ISV"], "message": {"x": 1}}), NOW)
    assert (outcome.reason, outcome.message, outcome.retry_after_seconds) == (
        Reason.THROTTLED, "ApiCallLimit", None)


# --- held tokens: expiry from configured dates only, never a refresh ----------------------------


def test_configured_expiry_is_observed_on_success_and_failure() -> None:
    ctx = make_ctx(credentials=creds(access_token_expires_at=datetime(2025, 10, 30, 12, 0)))
    expected = (CredentialObservation(Credential.ACCESS_TOKEN,
                                      datetime(2025, 10, 30, 12, tzinfo=UTC).timestamp()),)
    _, ok = drive(ctx, resp(200, SELLER))
    _, failed = drive(ctx, resp(200, lazada_error("IllegalAccessToken")))
    assert ok.credentials == expected and failed.credentials == expected


def test_token_file_gives_token_and_both_expiries(tmp_path: Path) -> None:
    token_file = tmp_path / "lazada-th.json"
    token_file.write_text(json.dumps({
        "access_token": "from-the-erp", "refresh_token": "never-read-by-us",
        "expires_at": "2025-11-08T08:00:00Z", "refresh_expires_at": 1775000000}))
    ctx = make_ctx(credentials=creds(access_token=None, token_file=str(token_file)))
    sent, outcome = drive(ctx, resp(200, SELLER))
    assert dict(sent[0].query)["access_token"] == "from-the-erp"
    assert outcome.credentials == (
        CredentialObservation(Credential.ACCESS_TOKEN, datetime(2025, 11, 8, 8, tzinfo=UTC).timestamp()),
        CredentialObservation(Credential.REFRESH_TOKEN, 1775000000.0))


@pytest.mark.parametrize("overrides", [
    {"refresh_token": {"value": "r"}},  # rotation UNCONFIRMED: the exporter never refreshes
    {"access_token": None},  # neither source
    {"token_file": "tokens.json"},  # both sources
    {"app_key": ""}, {"app_key": "has space"}, {"app_key": 100731},
    {"app_secret": "plain-string-secret"},
])
def test_credentials_rejects(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        creds(**overrides)


def test_operations_have_no_invented_limits() -> None:
    operation = Lazada.operations["seller_get"]
    assert (operation.rate_per_second, operation.burst, operation.limit_source) == (None, None, "UNCONFIRMED")
    assert operation.limits(sandbox=False) is None and operation.limits(sandbox=True) is None
    assert operation.default_interval_seconds == 300.0
