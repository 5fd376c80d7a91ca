"""Walmart adapter: what answers say. The token step's and API calls' error tables, the success
bodies of token detail and partner profile, and headroom headers in both spellings; hostile input
throughout.

No HTTP: the adapter is driven with literals. Facts under test are from the sources in
docs/marketplaces/sources.md; the tags in comments name the source.
"""

from __future__ import annotations

from typing import Any

import pytest
from adapter_harness import NOW
from walmart_fixtures import (
    CLIENT_SECRET,
    DETAIL,
    GOOD_DETAIL,
    HEADROOM,
    PROFILE,
    TOKEN,
    UNAUTHORIZED,
    cached_ctx,
    drive,
    make_ctx,
    resp,
    wm_error,
)

from marketplace_exporter.adapters.walmart import (
    HOST,
    read_call,
    token_key,
)
from marketplace_exporter.adapters.walmart_signing import (
    epoch_field,
    first_error,
    observe_headroom,
    replenish_time,
    token_count,
)
from marketplace_exporter.catalogue import Credential, RateLimitSource, Reason
from marketplace_exporter.model import (
    CredentialObservation,
    RateLimitObservation,
)

# --- token step classification ------------------------------------------------------------------

TOKEN_CASES = [
    (401, UNAUTHORIZED, Reason.AUTH, "UNAUTHORIZED.GMP_GATEWAY_API"),  # wrong keys / environment [F5]
    (403, wm_error("FORBIDDEN.GMP_GATEWAY_API"), Reason.PERMISSION, "FORBIDDEN.GMP_GATEWAY_API"),
    (429, wm_error("REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"), Reason.THROTTLED,
     "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"),
    (400, wm_error("MISSING_REQUEST_HEADER", field="WM_QOS.CORRELATION_ID"), Reason.CLIENT_ERROR,
     "MISSING_REQUEST_HEADER"),
    (400, wm_error("INVALID_REQUEST_HEADER"), Reason.CLIENT_ERROR, "INVALID_REQUEST_HEADER"),
    (500, wm_error("SYSTEM_ERROR"), Reason.SERVER_ERROR, "SYSTEM_ERROR"),
    (503, b"", Reason.SERVER_ERROR, None),  # gateway unreachable: status only [F13]
    # OAuth-style answers to a bad refresh token (UNCONFIRMED shape): tolerated
    (400, {"error": "invalid_grant", "error_description": "refresh token expired"}, Reason.AUTH, "invalid_grant"),
    (400, b"Bad Request", Reason.CLIENT_ERROR, None),
    (302, b"", Reason.INVALID_RESPONSE, None),
]


@pytest.mark.parametrize(("status", "body", "reason", "code"), TOKEN_CASES)
def test_token_errors(status: int, body: Any, reason: Reason, code: str | None) -> None:
    sent, outcome = drive(make_ctx(), resp(status, body))
    assert len(sent) == 1 and not outcome.success
    assert (outcome.reason, outcome.code, outcome.http_status) == (reason, code, status)
    assert outcome.message.startswith(f"token request: HTTP {status}")


@pytest.mark.parametrize("body", [
    b"not json", b"", b"[]", b"null", b"\xff\xfe", b"{" * 100_000,
    {"token_type": "Bearer", "expires_in": 900},
    {"access_token": 123, "expires_in": 900},
    {"access_token": "", "expires_in": 900},
    {"access_token": "eyJ x", "expires_in": 900},
    {"access_token": "eyJ\r\nInjected: 1", "expires_in": 900},
    {"access_token": "e" * 9000, "expires_in": 900},
    {"access_token": TOKEN},
    {"access_token": TOKEN, "expires_in": "900"},
    {"access_token": TOKEN, "expires_in": True},
    {"access_token": TOKEN, "expires_in": 0},
    {"access_token": TOKEN, "expires_in": -900},
    {"access_token": TOKEN, "expires_in": 86401},
    {"access_token": TOKEN, "expires_in": 10**30},
    b'{"access_token": "eyJx", "expires_in": 1e999}',
    b'{"access_token": "eyJx", "expires_in": NaN}',
])
def test_hostile_token_success_bodies_are_invalid_response(body: Any) -> None:
    ctx = make_ctx()
    sent, outcome = drive(ctx, resp(200, body))
    assert len(sent) == 1 and (outcome.success, outcome.reason) == (False, Reason.INVALID_RESPONSE)
    assert ctx.tokens.get(token_key(ctx, HOST + "/v3/token"), NOW) is None


def test_token_throttle_retry_after() -> None:
    _, outcome = drive(make_ctx(), resp(429, b"", {"retry-after": "12"}))
    assert outcome.reason is Reason.THROTTLED and outcome.retry_after_seconds == 12.0


def test_a_secret_echoed_by_the_token_endpoint_never_reaches_the_message() -> None:
    body = wm_error("UNAUTHORIZED.GMP_GATEWAY_API", f"bad secret {CLIENT_SECRET} " + "x" * 5000)
    _, outcome = drive(make_ctx(), resp(401, body))
    assert CLIENT_SECRET not in outcome.message and len(outcome.message) <= 160


# --- API call classification --------------------------------------------------------------------

CALL_CASES = [
    # the fact sheet's errors [F5][F13][F14][OBS F11]
    (401, UNAUTHORIZED, Reason.AUTH, "UNAUTHORIZED.GMP_GATEWAY_API"),
    (401, wm_error("UNAUTHORIZED"), Reason.AUTH, "UNAUTHORIZED"),
    (403, wm_error("FORBIDDEN.GMP_GATEWAY_API", "Forbidden"), Reason.PERMISSION, "FORBIDDEN.GMP_GATEWAY_API"),
    (429, wm_error("REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"), Reason.THROTTLED,
     "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"),
    (429, wm_error("REQUEST_THRESHOLD_VIOLATED"), Reason.THROTTLED, "REQUEST_THRESHOLD_VIOLATED"),
    (500, wm_error("SYSTEM_ERROR"), Reason.SERVER_ERROR, "SYSTEM_ERROR"),
    (500, wm_error("INVALID_SYSTEM_STATE"), Reason.SERVER_ERROR, "INVALID_SYSTEM_STATE"),
    (504, wm_error("DOWNSTREAM_SYSTEM_TIME_OUT"), Reason.SERVER_ERROR, "DOWNSTREAM_SYSTEM_TIME_OUT"),
    (503, b"", Reason.SERVER_ERROR, None),
    (502, b"<html>Bad Gateway</html>", Reason.SERVER_ERROR, None),
    # the rest of the error-code table [F13]
    (400, wm_error("INVALID_REQUEST_HEADER", field="WM_QOS.CORRELATION_ID"), Reason.CLIENT_ERROR,
     "INVALID_REQUEST_HEADER"),
    (400, wm_error("MISSING_REQUEST_HEADER"), Reason.CLIENT_ERROR, "MISSING_REQUEST_HEADER"),
    (400, wm_error("INVALID_REQUEST_PARAM"), Reason.CLIENT_ERROR, "INVALID_REQUEST_PARAM"),
    (404, wm_error("URI_NOT_FOUND"), Reason.CLIENT_ERROR, "URI_NOT_FOUND"),
    (404, wm_error("CONTENT_NOT_FOUND"), Reason.CLIENT_ERROR, "CONTENT_NOT_FOUND"),
    (405, wm_error("METHOD_NOT_ALLOWED"), Reason.CLIENT_ERROR, "METHOD_NOT_ALLOWED"),
    (406, wm_error("INVALID_ACCEPT_TYPE"), Reason.CLIENT_ERROR, "INVALID_ACCEPT_TYPE"),
    (415, wm_error("UNSUPPORTED_MEDIA_TYPE"), Reason.CLIENT_ERROR, "UNSUPPORTED_MEDIA_TYPE"),
    (423, wm_error("RESOURCE_IS_LOCKED.GMP_RECEIVER_API"), Reason.CLIENT_ERROR,
     "RESOURCE_IS_LOCKED.GMP_RECEIVER_API"),
    (413, wm_error("REQUEST_ENTITY_TOO_LARGE"), Reason.CLIENT_ERROR, "REQUEST_ENTITY_TOO_LARGE"),
    # where the status does not decide, the code names the class
    (400, wm_error("REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"), Reason.THROTTLED,
     "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"),
    (400, wm_error("UNAUTHORIZED.GMP_GATEWAY_API"), Reason.AUTH, "UNAUTHORIZED.GMP_GATEWAY_API"),
    (404, wm_error("FORBIDDEN.GMP_GATEWAY_API"), Reason.PERMISSION, "FORBIDDEN.GMP_GATEWAY_API"),
    (400, wm_error("SYSTEM_ERROR"), Reason.SERVER_ERROR, "SYSTEM_ERROR"),
    # where it does, it wins
    (403, UNAUTHORIZED, Reason.PERMISSION, "UNAUTHORIZED.GMP_GATEWAY_API"),
    (429, wm_error("SYSTEM_ERROR"), Reason.THROTTLED, "SYSTEM_ERROR"),
    # XML-style JSON that older integrations parse (errors.error as an object)
    (401, {"errors": {"error": {"code": "UNAUTHORIZED.GMP_GATEWAY_API", "description": "Unauthorized"}}},
     Reason.AUTH, "UNAUTHORIZED.GMP_GATEWAY_API"),
    (400, {"errors": {"error": [{"code": "INVALID_REQUEST_PARAM"}]}}, Reason.CLIENT_ERROR, "INVALID_REQUEST_PARAM"),
    (302, b"", Reason.INVALID_RESPONSE, None),
    (101, wm_error("UNAUTHORIZED"), Reason.INVALID_RESPONSE, "UNAUTHORIZED"),
]


@pytest.mark.parametrize(("status", "body", "reason", "code"), CALL_CASES)
def test_call_errors(status: int, body: Any, reason: Reason, code: str | None) -> None:
    _, outcome = drive(cached_ctx(), resp(status, body))
    assert not outcome.success
    assert (outcome.reason, outcome.code, outcome.http_status) == (reason, code, status)
    assert outcome.message.startswith(f"HTTP {status}")


def test_error_message_joins_description_and_info() -> None:
    _, outcome = drive(cached_ctx(), resp(401, UNAUTHORIZED))
    assert outcome.message == ("HTTP 401 UNAUTHORIZED.GMP_GATEWAY_API: Unauthorized Unauthorized token or "
                               "incorrect authorization header")


def test_bodyless_503_says_the_gateway_was_unreachable() -> None:
    _, outcome = drive(cached_ctx(), resp(503, b""))
    assert outcome.message == "HTTP 503 without a body (gateway unreachable [F13])"


@pytest.mark.parametrize("body", [
    b"", b"<html>oops</html>", b"[]", b"null", b"\xff", b'{"errors": "nope"}', b'{"errors": []}',
    b'{"errors": [null]}', b'{"errors": [[1]]}', b'{"errors": {"error": 5}}', b'{"errors": [{"code": 5}]}',
    b'{"error": 7}', b"[" * 50_000,
])
@pytest.mark.parametrize(("status", "reason"), [
    (401, Reason.AUTH), (403, Reason.PERMISSION), (429, Reason.THROTTLED), (500, Reason.SERVER_ERROR),
    (400, Reason.CLIENT_ERROR),
])
def test_hostile_error_bodies_classify_by_status(body: bytes, status: int, reason: Reason) -> None:
    _, outcome = drive(cached_ctx(), resp(status, body))
    assert (outcome.reason, outcome.code) == (reason, None)


def test_error_code_is_bounded() -> None:
    _, outcome = drive(cached_ctx(), resp(400, wm_error("X" * 500)))
    assert outcome.code is not None and len(outcome.code) <= 64


def test_first_error_parts() -> None:
    assert first_error({"errors": [{"code": "C", "message": "m", "description": "d", "info": "d"}]}) == ("C", "d m")
    assert first_error({"error": "invalid_grant"}) == ("invalid_grant", "")
    assert first_error(None) == (None, "")


# --- success bodies -----------------------------------------------------------------------------


def test_token_detail_success_values() -> None:
    _, outcome = drive(cached_ctx(), GOOD_DETAIL)
    assert outcome.success and outcome.http_status == 200
    assert outcome.message == "token valid; 2 of 3 scopes with access"
    assert dict(outcome.values) == {"token_scopes_with_access": 2.0, "token_scopes_full_access": 1.0,
                                    "token_channel_match": 1.0}


def test_token_detail_channel_mismatch_is_exported_not_judged() -> None:
    _, outcome = drive(cached_ctx(), resp(200, {**DETAIL, "is_channel_match": False}))
    assert outcome.success and dict(outcome.values)["token_channel_match"] == 0.0


def test_token_detail_invalid_token_is_auth_with_its_expiry() -> None:
    _, outcome = drive(cached_ctx(), resp(200, {**DETAIL, "is_valid": False}))
    assert (outcome.reason, outcome.http_status) == (Reason.AUTH, 200)
    assert outcome.credentials == (CredentialObservation(Credential.ACCESS_TOKEN, NOW + 900),)


@pytest.mark.parametrize("body", [
    b"not json", b"[]", {}, {"is_valid": "true"}, {"is_valid": 1}, {"is_valid": None},
    {"errors": [{"code": "UNAUTHORIZED.GMP_GATEWAY_API"}]},
])
def test_token_detail_without_is_valid_is_invalid_response(body: Any) -> None:
    _, outcome = drive(cached_ctx(), resp(200, body))
    assert (outcome.success, outcome.reason) == (False, Reason.INVALID_RESPONSE)


@pytest.mark.parametrize(("expire_at", "expected"), [
    ("1760000900000", NOW + 900), (1760000900000, NOW + 900), ("1760000900", NOW + 900), (1760000900.5, NOW + 900.5),
    (" 1760000900000 ", NOW + 900),
    # garbage: the token response's own expiry (cached: NOW + 600) is reported instead
    ("soon", None), ("", None), (True, None), (None, None), ("-1", None), (12, None), ("1e12", None),
    (10**30, None), ("9" * 17, None), ([1], None),
])
def test_token_detail_expire_at_forms(expire_at: Any, expected: float | None) -> None:
    _, outcome = drive(cached_ctx(), resp(200, {**DETAIL, "expire_at": expire_at}))
    assert outcome.success
    assert outcome.credentials == (CredentialObservation(Credential.ACCESS_TOKEN, expected or NOW + 600),)


@pytest.mark.parametrize("scopes", [None, [], "all", {"item": 5}, {}])
def test_token_detail_odd_scopes_never_raise(scopes: Any) -> None:
    _, outcome = drive(cached_ctx(), resp(200, {**DETAIL, "scopes": scopes}))
    assert outcome.success


@pytest.mark.parametrize(("status", "value"), [
    ("ACTIVE", 1.0), ("ONBOARDING_ACTIVE", 0.0), ("ONBOARDING_INACTIVE", 0.0), ("SUSPENDED", 0.0),
    ("TNS_DECLINED", 0.0), ("TERMINATED", 0.0),  # [F15]
])
def test_partner_profile_account_status(status: str, value: float) -> None:
    body = {**PROFILE, "configurations": [{"configurationName": "ACCOUNT", "configuration": {"status": status}}]}
    _, outcome = drive(cached_ctx(operation="partner_profile"), resp(200, body))
    assert outcome.success and outcome.values == (("account_status_active", value),)
    assert outcome.message == f"account status {status}"


@pytest.mark.parametrize("body", [
    {"partner": {"partnerId": "1"}}, {"configurations": []}, {"partner": {}, "configurations": 5},
    {"partner": {}, "configurations": "ACCOUNT"}, {"partner": {}, "configurations": [None, 1, {"x": 1}]},
    {"partner": {}, "configurations": [{"configurationName": "ACCOUNT", "configuration": "ACTIVE"}]},
    {"partner": {}, "configurations": [{"configurationName": "ACCOUNT", "configuration": {"status": 1}}]},
])
def test_partner_profile_without_a_status_is_still_success(body: Any) -> None:
    _, outcome = drive(cached_ctx(operation="partner_profile"), resp(200, body))
    assert outcome.success and outcome.values == ()


@pytest.mark.parametrize("body", [b"nope", b"[]", {}, {"partner": "x"}, {"configurations": {}}])
def test_partner_profile_without_partner_or_configurations_is_invalid_response(body: Any) -> None:
    _, outcome = drive(cached_ctx(operation="partner_profile"), resp(200, body))
    assert (outcome.success, outcome.reason) == (False, Reason.INVALID_RESPONSE)


# --- headroom -----------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {"x-current-token-count": "17", "x-next-replenish-time": "1760000003000"},  # [OBS F10]
    {"x-current-token-count": "17", "x-next-replenishment-time": "1760000003000"},  # [F9]
    {"X-Current-Token-Count": "17", "X-Next-Replenishment-Time": "1760000003000"},  # not lower-cased
    {"x-current-token-count": " 17 ", "x-next-replenish-time": "1760000003"},  # seconds
    {"x-current-token-count": "17", "x-next-replenish-time": "2025-10-09T08:53:23Z"},
    {"x-current-token-count": "17", "x-next-replenish-time": "Thu, 09 Oct 2025 08:53:23 GMT"},
])
def test_headroom_is_observed_in_every_spelling(headers: dict[str, str]) -> None:
    assert observe_headroom(headers, NOW) == RateLimitObservation(
        remaining_ratio=None, source=RateLimitSource.OBSERVED, remaining=17.0, reset_at=NOW + 3)


def test_headroom_rides_on_successes_and_errors() -> None:
    _, ok = drive(cached_ctx(), GOOD_DETAIL)
    assert ok.rate_limit is not None and (ok.rate_limit.remaining, ok.rate_limit.reset_at) == (17.0, NOW + 3)
    _, throttled = drive(cached_ctx(), resp(429, wm_error("REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"),
                                            {"x-current-token-count": "0", "x-next-replenish-time": "1760000004500"}))
    assert throttled.rate_limit is not None and throttled.rate_limit.remaining == 0.0
    assert throttled.retry_after_seconds == 4.5  # from the replenish time when no Retry-After
    _, none = drive(cached_ctx(), resp(200, DETAIL))
    assert none.rate_limit is None


def test_retry_after_wins_over_the_replenish_time() -> None:
    _, outcome = drive(cached_ctx(), resp(429, b"", {"retry-after": "30", "x-next-replenish-time": "1760000004500"}))
    assert outcome.retry_after_seconds == 30.0


def test_a_past_replenish_time_means_retry_now() -> None:
    _, outcome = drive(cached_ctx(), resp(429, b"", {"x-next-replenish-time": "1759999990000"}))
    assert outcome.retry_after_seconds == 0.0


@pytest.mark.parametrize(("value", "expected"), [
    ("0", 0.0), ("250", 250.0), ("3.5", 3.5), (None, None), ("", None), ("-1", None), ("lots", None),
    ("1e3", None), ("nan", None), ("9" * 20, None), ("\u0661\u0662", None), ("2000000000", None),
])
def test_token_count_parsing(value: str | None, expected: float | None) -> None:
    assert token_count(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("1760000003000", NOW + 3), ("1760000003", NOW + 3), ("1760000003000.0", NOW + 3),
    ("2025-10-09T08:53:23+00:00", NOW + 3), ("2025-10-09T08:53:23", NOW + 3),
    (None, None), ("", None), ("soon", None), ("3000", None), ("180", None),  # deltas are not guessed
    ("4102444800000", None),  # 2100: more than a year away
    ("0", None), ("-1760000003000", None), ("\u0661" * 13, None), ("x" * 10_000, None),
    ("Thu, 32 Oct 2025 08:53:23 GMT", None),
])
def test_replenish_time_parsing(value: str | None, expected: float | None) -> None:
    assert replenish_time(value, NOW) == expected


def test_garbage_headroom_headers_are_ignored() -> None:
    assert observe_headroom({"x-current-token-count": "many", "x-next-replenish-time": "later"}, NOW) is None
    only_count = observe_headroom({"x-current-token-count": "3"}, NOW)
    assert only_count is not None and (only_count.remaining, only_count.reset_at) == (3.0, None)


def test_read_call_never_reports_a_ratio() -> None:
    outcome = read_call(resp(200, DETAIL, HEADROOM), NOW, "token_detail")
    assert outcome.rate_limit is not None and outcome.rate_limit.remaining_ratio is None


@pytest.mark.parametrize(("value", "expected"), [
    ("1560973098000", 1560973098.0), (1560973098000, 1560973098.0), (float("nan"), None),
    (float("inf"), None), (False, None), ({}, None),
])
def test_epoch_field(value: Any, expected: float | None) -> None:
    assert epoch_field(value) == expected
