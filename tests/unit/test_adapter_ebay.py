"""Ebay adapter: request building per site/sandbox/override, both OAuth grants and their caching,
classification of every error the fact sheet lists, the Analytics headroom, hostile bodies.

No HTTP: the adapter is driven with literals (see adapters/base.py). Facts under test are from
the sources in docs/marketplaces/sources.md; the tags in comments name the source.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl

import pytest
from adapter_harness import NOW, adapter_driver, context_builder, json_response

from marketplace_exporter.adapters.base import ProbeContext
from marketplace_exporter.adapters.ebay import (
    APP_SCOPE,
    SITE_MARKETPLACES,
    Ebay,
    EbayCredentials,
    EbayParams,
    basic_authorization,
    token_key,
)
from marketplace_exporter.adapters.ebay_responses import read_rate_limits
from marketplace_exporter.catalogue import Credential, RateLimitSource, Reason, Step
from marketplace_exporter.secrets import REDACTED, REDACTOR, Secret

CLIENT_ID = "TestSell-monitor-PRD-1a2b3c4d5-6e7f8a9b"
CLIENT_SECRET = "PRD-test-cert-id-0001"
REFRESH = "v^1.1#i^1#r^1#test-refresh-token"
USER_TOKEN = "v^1.1#i^1#p^3#test-user-token"
APP_TOKEN = "v^1.1#i^1#p^1#test-app-token"
SELL_ACCOUNT = "https://api.ebay.com/oauth/api_scope/sell.account.readonly"


def creds(**overrides: Any) -> EbayCredentials:
    values: dict[str, Any] = {"client_id": CLIENT_ID, "client_secret": {"value": CLIENT_SECRET},
                              "refresh_token": {"value": REFRESH}}
    return EbayCredentials.model_validate(values | overrides)


make_ctx = context_builder(alias="us-main", site="US", operation="privilege",
                           credentials=creds, params=EbayParams)
drive = adapter_driver(Ebay)
resp = json_response


USER_GRANT = resp(200, {"access_token": USER_TOKEN, "expires_in": 7200, "token_type": "User Access Token"})
APP_GRANT = resp(200, {"access_token": APP_TOKEN, "expires_in": 7200, "token_type": "Application Access Token"})
PRIVILEGE = resp(200, {"sellerRegistrationCompleted": True,
                       "sellingLimit": {"amount": {"currency": "USD", "value": "5000.0"}, "quantity": 250}})


def rate(limit: Any, remaining: Any, reset: Any = "2025-10-10T00:00:00.000Z") -> dict[str, Any]:
    return {"count": 0, "limit": limit, "remaining": remaining, "reset": reset, "timeWindow": 86400}


def rate_limits(*apis: tuple[str, str, str, str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {"rateLimits": [{"apiContext": c, "apiName": n, "apiVersion": v,
                            "resources": [{"name": r, "rates": rates}]} for c, n, v, r, rates in apis]}


RATE_LIMITS = resp(200, rate_limits(("sell", "account", "v1", "sell.account", [rate(25000, 24000)]),
                                    ("developer", "analytics", "v1_beta", "developer.analytics", [rate(5000, 500)])))


def error(error_id: Any, message: str = "m", long_message: str = "", **extra: Any) -> dict[str, Any]:
    entry = {"errorId": error_id, "domain": "ACCESS", "category": "REQUEST", "message": message,
             "longMessage": long_message} | extra
    return {"errors": [entry]}


def cached_ctx(**overrides: Any) -> ProbeContext:
    ctx = make_ctx(**overrides)
    ctx.tokens.put(token_key(ctx, app_token=False), USER_TOKEN, NOW + 3000)
    ctx.tokens.put(token_key(ctx, app_token=True), APP_TOKEN, NOW + 3000)
    return ctx


# --- hosts, sites and request building ------------------------------------------------------------


@pytest.mark.parametrize(("sandbox", "base_url", "auth_url", "api", "token"), [
    (False, None, None, "https://api.ebay.com", "https://api.ebay.com"),  # [B1]
    (True, None, None, "https://api.sandbox.ebay.com", "https://api.sandbox.ebay.com"),  # [B1]
    (False, "http://127.0.0.1:9763/ebay/", "http://127.0.0.1:9763/ebay/",
     "http://127.0.0.1:9763/ebay", "http://127.0.0.1:9763/ebay"),
    (True, "http://127.0.0.1:9763/ebay", None, "http://127.0.0.1:9763/ebay", "https://api.sandbox.ebay.com"),
])
def test_hosts_per_environment_and_override(sandbox: bool, base_url: str | None, auth_url: str | None,
                                            api: str, token: str) -> None:
    sent, outcome = drive(make_ctx(sandbox=sandbox, base_url=base_url, auth_url=auth_url), USER_GRANT, PRIVILEGE)
    assert sent[0].url == token + "/identity/v1/oauth2/token"
    assert sent[1].url == api + "/sell/account/v1/privilege"
    assert outcome.success


@pytest.mark.parametrize(("site", "marketplace", "language"), [
    ("US", "EBAY_US", None), ("MOTORS", "EBAY_MOTORS_US", None), ("GB", "EBAY_GB", None),
    ("DE", "EBAY_DE", None), ("AU", "EBAY_AU", None), ("FR", "EBAY_FR", None), ("IT", "EBAY_IT", None),
    ("ES", "EBAY_ES", None), ("CA", "EBAY_CA", "en-CA"), ("CA_FR", "EBAY_CA", "fr-CA"),  # [B4]
    ("BE_FR", "EBAY_BE", "fr-BE"), ("BE_NL", "EBAY_BE", "nl-BE"),  # [B4]
])
def test_marketplace_header_and_accept_language_per_site(site: str, marketplace: str,
                                                          language: str | None) -> None:
    sent, _ = drive(cached_ctx(site=site), PRIVILEGE)
    headers = dict(sent[0].headers)
    assert headers["x-ebay-c-marketplace-id"] == marketplace  # one host; the header picks the site [B3]
    assert headers.get("accept-language") == language


def test_sites_are_live_marketplaces_only() -> None:
    assert Ebay.sites == set(SITE_MARKETPLACES)
    assert {m for m, _ in SITE_MARKETPLACES.values()} == {
        "EBAY_US", "EBAY_MOTORS_US", "EBAY_CA", "EBAY_GB", "EBAY_IE", "EBAY_AU", "EBAY_DE", "EBAY_AT",
        "EBAY_CH", "EBAY_FR", "EBAY_IT", "EBAY_ES", "EBAY_NL", "EBAY_BE", "EBAY_PL", "EBAY_HK", "EBAY_SG",
        "EBAY_MY", "EBAY_PH"}
    assert "BE" not in Ebay.sites and "IN" not in Ebay.sites


def test_call_headers_have_the_bearer_token_and_no_body() -> None:
    sent, _ = drive(cached_ctx(), PRIVILEGE)
    call = sent[0]
    headers = dict(call.headers)
    assert (call.method, call.step, call.query, call.body) == ("GET", Step.CALL, (), None)
    assert headers["authorization"] == f"Bearer {USER_TOKEN}"
    assert headers["accept"] == "application/json"
    assert "authorization" in call.sensitive


def test_basic_authorization_vector() -> None:
    # Basic base64(client_id:client_secret) [B1][B5], no URL-encoding of either part
    assert basic_authorization("client", "secret") == "Basic Y2xpZW50OnNlY3JldA=="
    assert basic_authorization(CLIENT_ID, CLIENT_SECRET) == "Basic " + base64.b64encode(
        f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()


@pytest.mark.parametrize(("scopes", "expected_scope"), [
    ((), None),
    ((SELL_ACCOUNT,), SELL_ACCOUNT),
    ((APP_SCOPE, SELL_ACCOUNT), f"{APP_SCOPE} {SELL_ACCOUNT}"),
])
def test_refresh_grant_request(scopes: tuple[str, ...], expected_scope: str | None) -> None:
    sent, _ = drive(make_ctx(credentials=creds(scopes=list(scopes))), USER_GRANT, PRIVILEGE)
    token = sent[0]
    headers = dict(token.headers)
    assert (token.method, token.step) == ("POST", Step.TOKEN)
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert headers["authorization"] == basic_authorization(CLIENT_ID, CLIENT_SECRET)
    form = dict(parse_qsl(token.body.decode()))  # type: ignore[union-attr]
    expected = {"grant_type": "refresh_token", "refresh_token": REFRESH}
    assert form == expected | ({"scope": expected_scope} if expected_scope else {})
    assert b"client_secret" not in token.body  # type: ignore[operator]  # Basic auth only [B5]
    assert {"authorization", "refresh_token"} <= token.sensitive


def test_client_credentials_grant_for_rate_limit() -> None:
    sent, outcome = drive(make_ctx(operation="rate_limit"), APP_GRANT, RATE_LIMITS)
    form = dict(parse_qsl(sent[0].body.decode()))  # type: ignore[union-attr]
    assert form == {"grant_type": "client_credentials", "scope": "https://api.ebay.com/oauth/api_scope"}  # [B13]
    assert sent[1].url == "https://api.ebay.com/developer/analytics/v1_beta/rate_limit/"
    assert dict(sent[1].headers)["authorization"] == f"Bearer {APP_TOKEN}"
    assert outcome.success


def test_user_rate_limit_uses_the_user_token() -> None:
    sent, outcome = drive(make_ctx(operation="user_rate_limit"), USER_GRANT, RATE_LIMITS)
    assert dict(parse_qsl(sent[0].body.decode()))["grant_type"] == "refresh_token"  # type: ignore[union-attr]
    assert sent[1].url.endswith("/developer/analytics/v1_beta/user_rate_limit/")
    assert outcome.success and outcome.rate_limit is not None


@pytest.mark.parametrize(("params", "query"), [
    ({}, ()),
    ({"api_context": "sell"}, (("api_context", "sell"),)),
    ({"api_context": "tradingapi", "api_name": "tradingapi"},
     (("api_context", "tradingapi"), ("api_name", "tradingapi"))),
    ({"api_name": "inventory"}, (("api_name", "inventory"),)),
])
def test_analytics_filters_become_query_parameters(params: dict[str, str], query: tuple[tuple[str, str], ...]) -> None:
    ctx = cached_ctx(operation="rate_limit", params=EbayParams.model_validate(params))
    sent, _ = drive(ctx, RATE_LIMITS)
    assert sent[0].query == query
    sent, _ = drive(replace(ctx, operation="privilege"), PRIVILEGE)
    assert sent[0].query == ()  # privilege ignores them


@pytest.mark.parametrize("params", [{"api_context": "selling"}, {"api_name": "a b"}, {"api_name": ""},
                                    {"unknown": 1}])
def test_bad_params_are_rejected(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        EbayParams.model_validate(params)


# --- token cache --------------------------------------------------------------------------------


def test_user_token_is_cached_for_its_lifetime_minus_margin() -> None:
    ctx = make_ctx()
    sent, first = drive(ctx, USER_GRANT, PRIVILEGE)
    assert [r.step for r in sent] == [Step.TOKEN, Step.CALL]
    sent, second = drive(replace(ctx, now=NOW + 7100), PRIVILEGE)  # 7200 s lifetime [B6], 60 s margin
    assert [r.step for r in sent] == [Step.CALL]
    sent, _ = drive(replace(ctx, now=NOW + 7141), USER_GRANT, PRIVILEGE)
    assert [r.step for r in sent] == [Step.TOKEN, Step.CALL]
    expected = (Credential.ACCESS_TOKEN, NOW + 7200)
    assert expected in {(o.credential, o.expires_at) for o in first.credentials}
    assert expected in {(o.credential, o.expires_at) for o in second.credentials}


def test_app_token_is_shared_by_accounts_of_one_keyset_user_tokens_are_not() -> None:
    ctx = make_ctx(operation="rate_limit")
    sent, _ = drive(ctx, APP_GRANT, RATE_LIMITS)
    other = replace(ctx, alias="de-main", site="DE")
    sent, _ = drive(other, RATE_LIMITS)
    assert [r.step for r in sent] == [Step.CALL]  # the app token minted for us-main is reused
    sent, _ = drive(replace(other, operation="privilege"), USER_GRANT, PRIVILEGE)
    assert [r.step for r in sent] == [Step.TOKEN, Step.CALL]  # each seller has their own user token
    assert token_key(ctx, app_token=True) != token_key(replace(ctx, auth_url="http://127.0.0.1:1/e"),
                                                        app_token=True)


def test_app_token_expiry_is_not_reported_as_the_accounts_access_token() -> None:
    _, outcome = drive(make_ctx(operation="rate_limit"), APP_GRANT, RATE_LIMITS)
    assert outcome.success and outcome.credentials == ()


def test_token_keys_hold_no_secret() -> None:
    ctx = make_ctx(credentials=creds(scopes=[SELL_ACCOUNT]))
    for app_token in (False, True):
        key = token_key(ctx, app_token=app_token)
        assert REFRESH not in key and CLIENT_SECRET not in key and CLIENT_ID in key


def test_minted_token_is_registered_for_redaction() -> None:
    minted = "v^1.1#i^1#freshly-minted-ebay-token"
    drive(make_ctx(), resp(200, {"access_token": minted, "expires_in": 7200}), PRIVILEGE)
    assert REDACTOR.redact(f"log {minted}") == f"log {REDACTED}"


@pytest.mark.parametrize(("error_id", "status"), [(1001, 401), (1002, 400), (1003, 400)])
def test_auth_failure_drops_the_cached_token(error_id: int, status: int) -> None:
    ctx = cached_ctx()
    _, outcome = drive(ctx, resp(status, error(error_id, "Invalid access token")))
    assert (outcome.reason, outcome.code) == (Reason.AUTH, str(error_id))
    assert ctx.tokens.get(token_key(ctx, app_token=False), NOW) is None
    sent, again = drive(replace(ctx, now=NOW + 300), USER_GRANT, PRIVILEGE)
    assert [r.step for r in sent] == [Step.TOKEN, Step.CALL] and again.success


def test_permission_failure_keeps_the_cached_token() -> None:
    ctx = cached_ctx()
    _, outcome = drive(ctx, resp(403, error(1100, "Access denied", "Insufficient permissions to fulfill the request.")))
    assert (outcome.reason, outcome.code) == (Reason.PERMISSION, "1100")
    assert ctx.tokens.get(token_key(ctx, app_token=False), NOW) == (USER_TOKEN, NOW + 3000)


def test_failed_token_exchange_caches_nothing_and_skips_the_call() -> None:
    ctx = make_ctx()
    sent, outcome = drive(ctx, resp(400, {"error": "invalid_grant"}))
    assert len(sent) == 1 and not outcome.success
    assert ctx.tokens.get(token_key(ctx, app_token=False), NOW) is None


# --- token endpoint classification ------------------------------------------------------------

TOKEN_CASES = [
    # revoked consent, changed password, CS revocation [B9]
    (400, {"error": "invalid_grant", "error_description": "the provided authorization grant code is invalid "
                                                          "or was issued to another client"},
     Reason.AUTH, "invalid_grant"),
    (401, {"error": "invalid_client", "error_description": "client authentication failed"},
     Reason.AUTH, "invalid_client"),
    (400, {"error": "invalid_scope"}, Reason.PERMISSION, "invalid_scope"),  # scope ⊄ consent [B5]
    (400, {"error": "unauthorized_client"}, Reason.PERMISSION, "unauthorized_client"),
    (400, {"error": "access_denied"}, Reason.PERMISSION, "access_denied"),
    (400, {"error": "invalid_request"}, Reason.CLIENT_ERROR, "invalid_request"),
    (400, {"error": "unsupported_grant_type"}, Reason.CLIENT_ERROR, "unsupported_grant_type"),
    (500, {"error": "server_error"}, Reason.SERVER_ERROR, "server_error"),
    (503, {"error": "temporarily_unavailable"}, Reason.SERVER_ERROR, "temporarily_unavailable"),
    # 50 000 refresh grants a day per app [B10]; the throttle body is UNCONFIRMED: any body is throttled
    (429, error(2001, "Too many requests"), Reason.THROTTLED, "2001"),
    (429, {"error": "invalid_request"}, Reason.THROTTLED, "invalid_request"),
    (429, b"Too Many Requests", Reason.THROTTLED, None),
    (401, error(1001, "Invalid access token"), Reason.AUTH, "1001"),
    (502, b"<html>bad gateway</html>", Reason.SERVER_ERROR, None),
    (400, {"error": "brand_new_code"}, Reason.CLIENT_ERROR, "brand_new_code"),
    (401, b"", Reason.AUTH, None),
    (403, b"", Reason.PERMISSION, None),
    (302, b"", Reason.INVALID_RESPONSE, None),
    (400, {"error": 42}, Reason.CLIENT_ERROR, None),
]


@pytest.mark.parametrize(("status", "body", "reason", "code"), TOKEN_CASES)
@pytest.mark.parametrize("operation", ["privilege", "rate_limit"])
def test_token_errors(status: int, body: Any, reason: Reason, code: str | None, operation: str) -> None:
    sent, outcome = drive(make_ctx(operation=operation), resp(status, body))
    assert len(sent) == 1 and not outcome.success
    assert (outcome.reason, outcome.code, outcome.http_status) == (reason, code, status)
    grant = "client_credentials" if operation == "rate_limit" else "refresh_token"
    assert outcome.message.startswith(f"eBay token request ({grant} grant): HTTP {status}")


@pytest.mark.parametrize("body", [
    b"not json", b"", b"[]", b"null", b"\xff\xfe", b"{" * 100_000,
    {"token_type": "User Access Token", "expires_in": 7200},
    {"access_token": 123, "expires_in": 7200},
    {"access_token": "", "expires_in": 7200},
    {"access_token": "v^1.1#x\r\nInjected: 1", "expires_in": 7200},
    {"access_token": "v^1.1#" + "x" * 9000, "expires_in": 7200},
    {"access_token": USER_TOKEN},
    {"access_token": USER_TOKEN, "expires_in": "7200"},
    {"access_token": USER_TOKEN, "expires_in": True},
    {"access_token": USER_TOKEN, "expires_in": -5},
    {"access_token": USER_TOKEN, "expires_in": 0},
    {"access_token": USER_TOKEN, "expires_in": 10**30},
    b'{"access_token": "v^1.1#x", "expires_in": 1e999}',
    b'{"access_token": "v^1.1#x", "expires_in": NaN}',
])
def test_hostile_token_success_bodies_are_invalid_response(body: Any) -> None:
    ctx = make_ctx()
    sent, outcome = drive(ctx, resp(200, body))
    assert len(sent) == 1
    assert (outcome.success, outcome.reason) == (False, Reason.INVALID_RESPONSE)
    assert ctx.tokens.get(token_key(ctx, app_token=False), NOW) is None


def test_refresh_token_expires_in_in_a_response_is_not_used() -> None:
    # eBay sends refresh_token_expires_in only on the authorization-code grant [B6]; on a refresh it
    # would be about some other token, so only the configured date counts
    body = {"access_token": USER_TOKEN, "expires_in": 7200, "refresh_token_expires_in": 47304000}
    _, outcome = drive(make_ctx(), resp(200, body), PRIVILEGE)
    assert [o.credential for o in outcome.credentials] == [Credential.ACCESS_TOKEN]


def test_token_throttle_honours_retry_after() -> None:
    _, outcome = drive(make_ctx(), resp(429, b"", {"retry-after": "30"}))
    assert outcome.retry_after_seconds == 30.0


def test_token_error_echoing_a_secret_never_reaches_the_message() -> None:
    body = {"error": "invalid_grant", "error_description": f"bad {REFRESH} " + "x" * 5000}
    Secret.literal(REFRESH).reveal()
    _, outcome = drive(make_ctx(), resp(400, body))
    assert REFRESH not in outcome.message and len(outcome.message) <= 160


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
