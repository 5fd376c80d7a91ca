"""Ebay adapter, the request side: request building per site/sandbox/override, both OAuth grants and
their caching, and the classification of the token endpoint's answers.

No HTTP: the adapter is driven with literals (see adapters/base.py). Facts under test are from
the sources in docs/marketplaces/sources.md; the tags in comments name the source.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

import pytest
from adapter_harness import NOW
from ebay_fixtures import (
    APP_GRANT,
    APP_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    PRIVILEGE,
    RATE_LIMITS,
    REFRESH,
    SELL_ACCOUNT,
    USER_GRANT,
    USER_TOKEN,
    cached_ctx,
    creds,
    drive,
    error,
    make_ctx,
    resp,
)

from marketplace_exporter.adapters.ebay import (
    APP_SCOPE,
    SITE_MARKETPLACES,
    Ebay,
    EbayParams,
    basic_authorization,
    token_key,
)
from marketplace_exporter.catalogue import Credential, Reason, Step
from marketplace_exporter.secrets import REDACTED, REDACTOR, Secret

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
