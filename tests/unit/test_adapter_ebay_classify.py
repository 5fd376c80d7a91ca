"""Ebay adapter, the answer side: classification of every API error the fact sheet lists, the
privilege call, the Analytics headroom, hostile bodies, and what fails before any request.

No HTTP: the adapter is driven with literals (see adapters/base.py). Facts under test are from
the sources in docs/marketplaces/sources.md; the tags in comments name the source.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from ebay_fixtures import (
    CLIENT_SECRET,
    PRIVILEGE,
    RATE_LIMITS,
    REFRESH,
    SELL_ACCOUNT,
    USER_TOKEN,
    cached_ctx,
    creds,
    drive,
    error,
    make_ctx,
    rate,
    resp,
)

from marketplace_exporter.adapters.ebay import Ebay
from marketplace_exporter.adapters.ebay_responses import read_rate_limits
from marketplace_exporter.catalogue import Credential, RateLimitSource, Reason
from marketplace_exporter.secrets import Secret

# --- API classification ------------------------------------------------------------------------

API_CASES = [
    # the common errors table [B3]; errorId decides, status pairs as documented
    (401, 1001, "Invalid access token", Reason.AUTH),
    (400, 1002, "Missing access token", Reason.AUTH),
    (400, 1003, "Token type in the Authorization header is invalid", Reason.AUTH),
    (500, 1004, "Internal error", Reason.SERVER_ERROR),
    (403, 1100, "Access denied", Reason.PERMISSION),  # domain ACCESS live [OBS B15]
    (429, 2001, "Too many requests", Reason.THROTTLED),  # [B3][OBS B15]
    (404, 2002, "Resource not found", Reason.CLIENT_ERROR),
    (500, 2003, "Internal error", Reason.SERVER_ERROR),
    (400, 2004, "Invalid request", Reason.CLIENT_ERROR),
    (400, 3001, "Request Rejected", Reason.CLIENT_ERROR),
    (400, 3002, "Malformed request", Reason.CLIENT_ERROR),
    (404, 3003, "Resource not found", Reason.CLIENT_ERROR),
    (500, 3004, "Internal Error", Reason.SERVER_ERROR),
    (502, 3005, "Service unavailable", Reason.SERVER_ERROR),
    (500, 105000, "Internal error", Reason.SERVER_ERROR),  # Analytics contract [B13]
    # the errorId wins over a status a proxy may have rewritten
    (500, 2001, "Too many requests", Reason.THROTTLED),
    (400, 1100, "Access denied", Reason.PERMISSION),
    # unknown ids: the status decides, the id is still the code (folded to "other" by the engine)
    (409, 25001, "Conflict", Reason.CLIENT_ERROR),
    (503, 99999, "Down", Reason.SERVER_ERROR),
    (429, 77777, "Slow down", Reason.THROTTLED),
]


@pytest.mark.parametrize(("status", "error_id", "message", "reason"), API_CASES)
@pytest.mark.parametrize("operation", ["privilege", "rate_limit", "user_rate_limit"])
def test_api_errors(status: int, error_id: int, message: str, reason: Reason, operation: str) -> None:
    _, outcome = drive(cached_ctx(operation=operation), resp(status, error(error_id, message, "long text")))
    assert not outcome.success
    assert (outcome.reason, outcome.code, outcome.http_status) == (reason, str(error_id), status)
    assert outcome.message == f"HTTP {status} errorId {error_id}: {message} long text"


def test_known_codes_are_every_fact_sheet_code() -> None:
    assert Ebay.known_codes == {
        "1001", "1002", "1003", "1004", "1100", "2001", "2002", "2003", "2004", "3001", "3002", "3003",
        "3004", "3005", "105000", "20500", "invalid_grant", "invalid_client", "unauthorized_client", "access_denied",
        "invalid_scope", "invalid_request", "unsupported_grant_type", "server_error", "temporarily_unavailable"}


@pytest.mark.parametrize(("error_id", "code"), [
    ("1001", "1001"), ("001001", "1001"), (True, None), (0, None), (-5, None), (1.5, None), ("10x", None),
    ("1" * 13, None), (10**13, None), (None, None), ([1001], None),
])
def test_error_id_shapes(error_id: Any, code: str | None) -> None:
    _, outcome = drive(cached_ctx(), resp(401, error(error_id)))
    assert (outcome.reason, outcome.code) == (Reason.AUTH, code)


@pytest.mark.parametrize("body", [
    b"", b"<html>oops</html>", b"[]", b"null", b"\xff", b'{"errors": "nope"}', b'{"errors": []}',
    b'{"errors": [null]}', b'{"errors": [{"errorId": "x", "message": ["x"]}]}', b"[" * 50_000,
    b'{"warnings": [{"errorId": 1001}]}',
])
@pytest.mark.parametrize(("status", "reason"), [
    (401, Reason.AUTH), (403, Reason.PERMISSION), (429, Reason.THROTTLED), (500, Reason.SERVER_ERROR),
    (400, Reason.CLIENT_ERROR), (302, Reason.INVALID_RESPONSE),
])
def test_hostile_error_bodies_classify_by_status(body: bytes, status: int, reason: Reason) -> None:
    _, outcome = drive(cached_ctx(), resp(status, body))
    assert (outcome.reason, outcome.code) == (reason, None)


@pytest.mark.parametrize(("header", "expected"), [
    ("7", 7.0), ("Thu, 09 Oct 2025 08:54:00 GMT", 40.0), ("soon", None), ("", None), ("99999999999", 99999999999.0),
])
def test_throttle_honours_retry_after_when_present(header: str, expected: float | None) -> None:
    _, outcome = drive(cached_ctx(), resp(429, error(2001, "Too many requests"), {"retry-after": header}))
    assert outcome.reason is Reason.THROTTLED and outcome.retry_after_seconds == expected


def test_error_message_is_bounded_and_redacted() -> None:
    Secret.literal(USER_TOKEN).reveal()
    _, outcome = drive(cached_ctx(), resp(401, error(1001, "x " * 500, f"token {USER_TOKEN}")))
    assert len(outcome.message) <= 160 and USER_TOKEN not in outcome.message


# --- privilege ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "values", "message"), [
    (PRIVILEGE.body, (("seller_registration_completed", 1.0), ("selling_limit_quantity", 250.0)),
     "seller registration completed"),
    ({"sellerRegistrationCompleted": False}, (("seller_registration_completed", 0.0),),
     "seller registration NOT completed"),
    ({}, (), "privileges returned"),  # both fields optional [B2]
    ({"sellerRegistrationCompleted": "yes", "sellingLimit": {"quantity": "many"}}, (), "privileges returned"),
    ({"sellingLimit": {"quantity": -1}}, (), "privileges returned"),
    ({"sellingLimit": [1]}, (), "privileges returned"),
])
def test_privilege_success(body: Any, values: tuple[tuple[str, float], ...], message: str) -> None:
    _, outcome = drive(cached_ctx(), resp(200, body))
    assert outcome.success and outcome.values == values and outcome.message == message
    assert outcome.rate_limit is None  # no rate-limit headers documented on ordinary calls [B13]


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b"null", b'"x"', b"\xff", b"{" * 10_000])
def test_privilege_without_a_json_object_is_invalid_response(body: bytes) -> None:
    _, outcome = drive(cached_ctx(), resp(200, body))
    assert (outcome.success, outcome.reason, outcome.http_status) == (False, Reason.INVALID_RESPONSE, 200)


# --- Developer Analytics: observed headroom ------------------------------------------------------


def test_tightest_resource_becomes_the_observed_headroom() -> None:
    _, outcome = drive(cached_ctx(operation="rate_limit"), RATE_LIMITS)
    observed = outcome.rate_limit
    assert outcome.success and observed is not None
    assert observed.source is RateLimitSource.OBSERVED
    assert (observed.remaining_ratio, observed.remaining, observed.limit) == (0.1, 500.0, 5000.0)
    assert observed.reset_at == datetime(2025, 10, 10, tzinfo=UTC).timestamp()
    assert observed.limit_per_second is None
    assert outcome.message == ("tightest of 2: developer analytics v1_beta developer.analytics: 500/5000 left, "
                               "resets 2025-10-10T00:00:00Z")


def test_several_rates_per_resource_and_several_resources() -> None:
    body = {"rateLimits": [{"apiContext": "sell", "apiName": "inventory", "apiVersion": "v1", "resources": [
        {"name": "sell.inventory", "rates": [rate(2_000_000, 1_999_000), rate(100, 40)]},
        {"name": "sell.inventory.item", "rates": [rate(10, 9)]}]}]}
    outcome = read_rate_limits(200, body)
    assert outcome.rate_limit is not None and outcome.rate_limit.remaining_ratio == 0.4
    assert "sell inventory v1 sell.inventory: 40/100" in outcome.message


def test_no_content_is_success_without_an_observation() -> None:
    _, outcome = drive(cached_ctx(operation="rate_limit"), resp(204, b""))
    assert outcome.success and outcome.rate_limit is None and outcome.http_status == 204


@pytest.mark.parametrize("body", [b"", b"[]", b"not json", {"rateLimits": None}, {"rateLimits": {"a": 1}}, {}])
def test_rate_limits_without_the_list_are_invalid_response(body: Any) -> None:
    _, outcome = drive(cached_ctx(operation="rate_limit"), resp(200, body))
    assert (outcome.success, outcome.reason) == (False, Reason.INVALID_RESPONSE)


@pytest.mark.parametrize("entry", [
    rate(0, 0), rate(-1, 0), rate(100, -1), rate("100", 50), rate(100, "50"), rate(True, 1), rate(100, None),
    rate(float("nan"), 1), rate(10**13, 1), rate(100, 10**13), None, [], "rate",
])
def test_unusable_rate_entries_are_skipped(entry: Any) -> None:
    body = json.dumps({"rateLimits": [{"resources": [{"rates": [entry]}]}, "junk", {"resources": "x"},
                                      {"resources": [None, {"rates": "y"}]}]}).replace("NaN", "1e999").encode()
    _, outcome = drive(cached_ctx(operation="rate_limit"), resp(200, body))
    assert outcome.success and outcome.rate_limit is None
    assert outcome.message == "4 APIs listed, no usable rate entry"


@pytest.mark.parametrize(("reset", "expected"), [
    ("2025-10-10T00:00:00.000Z", datetime(2025, 10, 10, tzinfo=UTC).timestamp()),
    ("2025-10-10T02:00:00+02:00", datetime(2025, 10, 10, tzinfo=UTC).timestamp()),
    ("2025-10-10T00:00:00", datetime(2025, 10, 10, tzinfo=UTC).timestamp()),  # naive means UTC
    ("tomorrow", None), ("", None), (12345, None), (None, None), ("2025-10-10T00:00:00Z" + " " * 40, None),
])
def test_reset_time_parsing(reset: Any, expected: float | None) -> None:
    outcome = read_rate_limits(200, {"rateLimits": [{"resources": [{"rates": [rate(10, 5, reset)]}]}]})
    assert outcome.rate_limit is not None and outcome.rate_limit.reset_at == expected


def test_remaining_above_limit_is_capped_at_full_headroom() -> None:
    outcome = read_rate_limits(200, {"rateLimits": [{"resources": [{"rates": [rate(10, 12)]}]}]})
    assert outcome.rate_limit is not None
    assert (outcome.rate_limit.remaining_ratio, outcome.rate_limit.remaining) == (1.0, 12.0)


def test_hostile_names_are_bounded_and_printable() -> None:
    body = {"rateLimits": [{"apiContext": "x" * 5000, "apiName": "a\nb\x00c", "apiVersion": 7,
                            "resources": [{"name": ["n"], "rates": [rate(10, 1)]}]}]}
    outcome = read_rate_limits(200, body)
    assert outcome.success and len(outcome.message) <= 160 and "\n" not in outcome.message


# --- credentials, operations, failures before any request ---------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    (date(2027, 5, 1), datetime(2027, 5, 1, tzinfo=UTC).timestamp()),
    ("2027-05-01T12:00:00Z", datetime(2027, 5, 1, 12, tzinfo=UTC).timestamp()),
    (datetime(2027, 5, 1, 12), datetime(2027, 5, 1, 12, tzinfo=UTC).timestamp()),
])
@pytest.mark.parametrize("operation", ["privilege", "rate_limit"])
def test_configured_refresh_token_expiry_is_observed_on_success_and_failure(
        value: Any, expected: float, operation: str) -> None:
    ctx = make_ctx(credentials=creds(refresh_token_expires_at=value), operation=operation)
    _, ok = drive(replace(ctx, tokens=cached_ctx().tokens), PRIVILEGE if operation == "privilege" else RATE_LIMITS)
    _, failed = drive(ctx, resp(400, {"error": "invalid_grant"}))
    for outcome in (ok, failed):
        assert (Credential.REFRESH_TOKEN, expected) in {(o.credential, o.expires_at) for o in outcome.credentials}


def test_unavailable_secret_fails_without_a_request() -> None:
    ctx = make_ctx(credentials=creds(refresh_token="${MARKETPLACE_EXPORTER_TEST_UNSET_VAR}"))
    sent, outcome = drive(ctx)
    assert sent == [] and outcome.reason is Reason.AUTH
    assert "MARKETPLACE_EXPORTER_TEST_UNSET_VAR" in outcome.message


@pytest.mark.parametrize("overrides", [{"operation": "nope"}, {"site": "XX"}, {"site": "BE"}])
def test_unknown_operation_or_site_is_internal(overrides: dict[str, str]) -> None:
    sent, outcome = drive(make_ctx(**overrides))
    assert sent == [] and outcome.reason is Reason.INTERNAL


def test_operations_state_daily_quotas_without_an_invented_burst() -> None:
    ops = Ebay.operations
    assert set(ops) == {"privilege", "rate_limit", "user_rate_limit"}
    assert ops["privilege"].rate_per_second == pytest.approx(25_000 / 86_400)  # Account API [B11]
    assert ops["rate_limit"].rate_per_second == pytest.approx(5_000 / 86_400)  # Analytics [B12]
    assert ops["user_rate_limit"].rate_per_second == pytest.approx(5_000 / 86_400)
    for op in ops.values():
        assert op.burst is None and op.limits(sandbox=False) is None and op.limits(sandbox=True) is None
    assert (ops["privilege"].limit_source, ops["rate_limit"].limit_source) == ("B11", "B12")
    assert ops["rate_limit"].default_interval_seconds == 900.0


def test_credentials_model_keeps_secrets_out_of_dumps() -> None:
    model = creds(scopes=[SELL_ACCOUNT])
    assert isinstance(model.refresh_token, Secret) and model.scopes == (SELL_ACCOUNT,)
    dumped = json.dumps(model.model_dump(mode="json"))
    assert REFRESH not in dumped and CLIENT_SECRET not in dumped and REFRESH not in repr(model)
    for bad in ({"refresh_token": REFRESH}, {"client_secret": CLIENT_SECRET}, {"scopes": ["sell.account"]},
                {"scopes": ["https://api.ebay.com/oauth/api_scope x"]}, {"client_id": "has space"},
                {"refresh_token_expires_in": 47304000}, {"access_token": {"value": "x"}}):
        with pytest.raises(ValueError):
            creds(**bad)
