"""Walmart adapter: hosts and markets, token requests and caching, the error table, headroom
headers in both spellings, token-detail and partner-profile bodies, hostile input.

No HTTP: the adapter is driven with literals. Facts under test are from the sources in
docs/marketplaces/sources.md; the tags in comments name the source.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl

import pytest
from adapter_harness import NOW, adapter_driver, context_builder, json_response

from marketplace_exporter.adapters.base import ProbeContext
from marketplace_exporter.adapters.walmart import (
    HOST,
    SANDBOX_HOST,
    Walmart,
    WalmartCredentials,
    read_call,
    token_key,
)
from marketplace_exporter.adapters.walmart_signing import (
    CORRELATION_NAMESPACE,
    basic_authorization,
    correlation_id,
    epoch_field,
    first_error,
    observe_headroom,
    replenish_time,
    token_count,
)
from marketplace_exporter.catalogue import Credential, RateLimitSource, Reason, Step
from marketplace_exporter.config import ConfigError, load_config
from marketplace_exporter.model import (
    CredentialObservation,
    HttpResponse,
    RateLimitObservation,
)
from marketplace_exporter.secrets import REDACTED, REDACTOR, Secret

NOW_MS = "1760000000000"
CLIENT_ID = "0f1e2d3c-test-client-id"
CLIENT_SECRET = "test-walmart-client-secret-value"
REFRESH = "APXcIoTpKMH9OQN-test-refresh-token"
TOKEN = "eyJraWQiOiI1MWY3MjM0Ny0wYWY5LTRhZ.test-access-token"


def creds(**overrides: Any) -> WalmartCredentials:
    values: dict[str, Any] = {"client_id": CLIENT_ID, "client_secret": {"value": CLIENT_SECRET}}
    return WalmartCredentials.model_validate(values | overrides)


def partner_creds(**overrides: Any) -> WalmartCredentials:
    return creds(partner_id="43423324", refresh_token={"value": REFRESH}, **overrides)


make_ctx = context_builder(alias="us-main", site="US", operation="token_detail",
                           credentials=creds)
drive = adapter_driver(Walmart)
resp = json_response


def wm_error(code: str, description: str = "", **extra: Any) -> dict[str, Any]:
    """Walmart's error envelope as live gateways send it: ``error``, a list [OBS F20]."""
    return {"error": [{"code": code, "description": description, "severity": "ERROR", "category": "DATA",
                       **extra}]}


#: a live 401 body, verbatim [OBS F20] (highsidelabs/walmart-api-php#5)
LIVE_401 = (b'{"error":[{"code":"UNAUTHORIZED.GMP_GATEWAY_API","field":"UNAUTHORIZED","description":'
            b'"Unauthorized","info":"Unauthorized token or incorrect authorization header","severity":"ERROR",'
            b'"category":"DATA","causes":[],"errorIdentifiers":{}}]}')


@pytest.mark.parametrize(("status", "body", "reason", "code"), [
    (401, LIVE_401, Reason.AUTH, "UNAUTHORIZED.GMP_GATEWAY_API"),
    (429, b'{"error":[{"code":"REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"}]}', Reason.THROTTLED,
     "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"),  # a third-party fixture [OBS F20]
    # the documented models' spelling [F13][F14] is still read
    (401, b'{"errors":[{"code":"UNAUTHORIZED.GMP_GATEWAY_API"}]}', Reason.AUTH, "UNAUTHORIZED.GMP_GATEWAY_API"),
    # a 400 whose code names the class refines the reason (only possible once the code is read)
    (400, b'{"error":[{"code":"UNAUTHORIZED.GMP_GATEWAY_API"}]}', Reason.AUTH, "UNAUTHORIZED.GMP_GATEWAY_API"),
])
def test_real_error_bodies_fill_the_code(status: int, body: bytes, reason: Reason, code: str) -> None:
    _, outcome = drive(cached_ctx(), HttpResponse(status, {}, body))
    assert (outcome.reason, outcome.code) == (reason, code)
    production = Walmart().classify("orders.get_all", status, {}, body, NOW)
    assert (production.reason, production.code) == (reason, code)


GOOD_TOKEN = resp(200, {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 900})  # [F1]
DETAIL = {"expire_at": "1760000900000", "issued_at": NOW_MS, "is_valid": True, "is_channel_match": True,
          "scopes": {"reports": "view_only", "item": "full_access", "price": "no_access"}}  # [F1]
PROFILE = {"partner": {"partnerId": "43423324", "partnerDisplayName": "Sim"},
           "configurations": [{"configurationName": "ACCOUNT", "configuration": {"status": "ACTIVE"}}]}  # [F15]
HEADROOM = {"x-current-token-count": "17", "x-next-replenish-time": "1760000003000"}
GOOD_DETAIL = resp(200, DETAIL, HEADROOM)
UNAUTHORIZED = wm_error("UNAUTHORIZED.GMP_GATEWAY_API", "Unauthorized", field="UNAUTHORIZED",
                        info="Unauthorized token or incorrect authorization header")  # [F5][F14]


def cached_ctx(**overrides: Any) -> ProbeContext:
    ctx = make_ctx(**overrides)
    ctx.tokens.put(token_key(ctx, _token_url(ctx)), TOKEN, NOW + 600)
    return ctx


def _token_url(ctx: ProbeContext) -> str:
    base = (ctx.base_url or (SANDBOX_HOST if ctx.sandbox else HOST)).rstrip("/")
    return f"{(ctx.auth_url or base).rstrip('/')}/v3/token"


# --- hosts, markets and request building --------------------------------------------------------


MX_CHANNEL = "0f3e4dd4-0514-4346-b39d-af0e00ea066d"


@pytest.mark.parametrize(("site", "sandbox", "base_url", "auth_url", "api", "token_url", "market"), [
    ("US", False, None, None, HOST, HOST + "/v3/token", "us"),
    ("MX", False, None, None, HOST, HOST + "/v3/token", "mx"),
    ("US", True, None, None, SANDBOX_HOST, SANDBOX_HOST + "/v3/token", "us"),
    ("MX", True, None, None, SANDBOX_HOST, SANDBOX_HOST + "/v3/token", "mx"),
    # the simulator: one prefix for the API and the token endpoint
    ("US", False, "http://127.0.0.1:9763/walmart/", None, "http://127.0.0.1:9763/walmart",
     "http://127.0.0.1:9763/walmart/v3/token", "us"),
    ("MX", True, "http://127.0.0.1:9763/walmart", "http://127.0.0.1:9763/auth/", "http://127.0.0.1:9763/walmart",
     "http://127.0.0.1:9763/auth/v3/token", "mx"),
])
def test_hosts_and_market_per_site_sandbox_and_override(site: str, sandbox: bool, base_url: str | None,
                                                         auth_url: str | None, api: str, token_url: str,
                                                         market: str) -> None:
    ctx = make_ctx(site=site, sandbox=sandbox, base_url=base_url, auth_url=auth_url,
                   credentials=creds(channel_type=MX_CHANNEL))
    sent, outcome = drive(ctx, GOOD_TOKEN, GOOD_DETAIL)
    assert [r.url for r in sent] == [token_url, api + "/v3/token/detail"]
    # on every call: without it Walmart answers in the us market [F17], as its SDK sends it [F21]
    assert [dict(r.headers)["wm_market"] for r in sent] == [market, market]
    assert outcome.success


def test_mx_calls_carry_the_channel_type_walmart_requires() -> None:
    sent, _ = drive(make_ctx(site="MX", credentials=creds(channel_type=MX_CHANNEL)), GOOD_TOKEN, GOOD_DETAIL)
    assert dict(sent[1].headers)["wm_consumer.channel.type"] == MX_CHANNEL  # "Yes for V3" [F17]


@pytest.mark.parametrize(("site", "channel", "refused"), [
    ("CA", MX_CHANNEL, "Consumer ID and an RSA digital signature"),
    ("CA", None, "migrate to the Global APIs"),
    ("MX", None, "WM_CONSUMER.CHANNEL.TYPE"),
])
def test_accounts_walmart_would_refuse_send_nothing(site: str, channel: str | None, refused: str) -> None:
    sent, outcome = drive(make_ctx(site=site, credentials=creds(channel_type=channel)))
    assert sent == [] and outcome.reason is Reason.CLIENT_ERROR and refused in outcome.text
    problems = Walmart().account_problems(site, creds(channel_type=channel), ["token_detail"])
    assert [where for where, _ in problems] == [("site",)] and refused in problems[0][1]


def test_partner_profile_is_refused_outside_the_us_settings_api() -> None:
    mx = creds(channel_type=MX_CHANNEL)
    assert Walmart().account_problems("US", creds(), ["token_detail", "partner_profile"]) == []
    problems = Walmart().account_problems("MX", mx, ["token_detail", "partner_profile"])
    assert [where for where, _ in problems] == [("checks", 1, "operation")]
    assert "US sellers only" in problems[0][1]


def test_sites_are_the_three_markets() -> None:
    assert Walmart.sites == {"US", "MX", "CA"}


def test_client_credentials_token_request() -> None:
    sent, _ = drive(make_ctx(), GOOD_TOKEN, GOOD_DETAIL)
    token = sent[0]
    headers = dict(token.headers)
    assert (token.method, token.step, token.query) == ("POST", Step.TOKEN, ())
    assert dict(parse_qsl(token.body.decode())) == {"grant_type": "client_credentials"}  # type: ignore[union-attr]
    assert headers == {
        "authorization": basic_authorization(CLIENT_ID, CLIENT_SECRET),
        "content-type": "application/x-www-form-urlencoded",
        "accept": "application/json",
        "wm_svc.name": "Walmart Marketplace",
        "wm_qos.correlation_id": correlation_id("us-main", "token_detail", "token", NOW),
        "wm_market": "us",
    }
    assert "authorization" in token.sensitive


def test_solution_provider_refresh_grant_sends_partner_id() -> None:
    sent, outcome = drive(make_ctx(credentials=partner_creds()), GOOD_TOKEN, GOOD_DETAIL)
    token = sent[0]
    assert dict(parse_qsl(token.body.decode())) == {  # type: ignore[union-attr]
        "grant_type": "refresh_token", "refresh_token": REFRESH}
    assert dict(token.headers)["wm_partner.id"] == "43423324"
    assert {"authorization", "refresh_token"} <= token.sensitive
    assert outcome.success


def test_call_headers() -> None:
    sent, _ = drive(cached_ctx(), GOOD_DETAIL)
    call = sent[0]
    headers = dict(call.headers)
    assert (call.method, call.step, call.query, call.body) == ("GET", Step.CALL, (), None)
    assert headers["wm_sec.access_token"] == TOKEN  # never Authorization: Bearer [OBS F7]
    assert "authorization" not in headers
    assert headers["wm_qos.correlation_id"] == correlation_id("us-main", "token_detail", "call", NOW)
    assert headers["wm_svc.name"] == "Walmart Marketplace" and headers["accept"] == "application/json"
    assert headers["content-type"] == "application/x-www-form-urlencoded"  # the detail model declares it [F1]
    assert "wm_consumer.channel.type" not in headers
    assert call.sensitive == {"wm_sec.access_token"}


def test_partner_profile_call_and_optional_headers() -> None:
    ctx = cached_ctx(operation="partner_profile",
                     credentials=creds(service_name="Acme ERP", channel_type="0f3e4dd4-0514-4346-b39d"))
    sent, outcome = drive(ctx, resp(200, PROFILE))
    headers = dict(sent[0].headers)
    assert sent[0].url == HOST + "/v3/settings/partnerprofile"
    assert headers["wm_svc.name"] == "Acme ERP"
    assert headers["wm_consumer.channel.type"] == "0f3e4dd4-0514-4346-b39d"
    assert "content-type" not in headers
    assert outcome.success


# --- the two pure "signing" pieces: Basic auth and correlation ids ------------------------------


def test_basic_authorization_vector() -> None:
    # RFC 7617's example; Walmart wants Basic base64(clientId:clientSecret) [F1][F4]
    assert basic_authorization("Aladdin", "open sesame") == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    with pytest.raises(ValueError):
        basic_authorization("a:b", "secret")


def test_correlation_id_is_a_fresh_uuid_per_call_yet_reproducible() -> None:
    value = correlation_id("us-main", "token_detail", "call", NOW)
    assert value == "c8aa48b6-ff39-556d-a70f-917d6b7dc71f"
    assert uuid.UUID(value).version == 5
    assert value == str(uuid.uuid5(CORRELATION_NAMESPACE, f"us-main|token_detail|call|{NOW!r}"))
    others = {correlation_id("us-main", "token_detail", "token", NOW),
              correlation_id("us-main", "token_detail", "call", NOW + 0.000001),
              correlation_id("mx-main", "token_detail", "call", NOW),
              correlation_id("us-main", "partner_profile", "call", NOW)}
    assert value not in others and len(others) == 4


def test_token_and_call_of_one_probe_carry_different_correlation_ids() -> None:
    sent, _ = drive(make_ctx(), GOOD_TOKEN, GOOD_DETAIL)
    ids = [dict(r.headers)["wm_qos.correlation_id"] for r in sent]
    assert len(set(ids)) == 2


# --- token cache --------------------------------------------------------------------------------


def test_token_is_cached_for_its_lifetime_minus_a_minute() -> None:
    ctx = make_ctx()
    sent, first = drive(ctx, GOOD_TOKEN, GOOD_DETAIL)
    assert [r.step for r in sent] == [Step.TOKEN, Step.CALL]
    sent, second = drive(replace(ctx, now=NOW + 839), GOOD_DETAIL)
    assert [r.step for r in sent] == [Step.CALL]
    sent, third = drive(replace(ctx, now=NOW + 841), GOOD_TOKEN, GOOD_DETAIL)  # 900 - 60 s margin
    assert [r.step for r in sent] == [Step.TOKEN, Step.CALL]
    assert first.success and second.success and third.success


def test_token_key_holds_no_secret() -> None:
    ctx = make_ctx(credentials=partner_creds())
    key = token_key(ctx, HOST + "/v3/token")
    assert CLIENT_SECRET not in key and REFRESH not in key
    assert "us-main" in key and CLIENT_ID in key and "43423324" in key and HOST in key


def test_minted_token_and_basic_credentials_are_registered_for_redaction() -> None:
    minted = "eyJfreshly-minted-walmart-token"
    drive(make_ctx(), resp(200, {"access_token": minted, "expires_in": 900}), GOOD_DETAIL)
    basic = basic_authorization(CLIENT_ID, CLIENT_SECRET).removeprefix("Basic ")
    assert REDACTOR.redact(f"a {minted} b {basic}") == f"a {REDACTED} b {REDACTED}"


def test_access_token_expiry_comes_from_token_detail_when_walmart_reports_it() -> None:
    _, outcome = drive(make_ctx(), GOOD_TOKEN, GOOD_DETAIL)
    assert outcome.credentials == (CredentialObservation(Credential.ACCESS_TOKEN, NOW + 900),)


def test_access_token_expiry_from_the_token_response_otherwise() -> None:
    _, outcome = drive(make_ctx(operation="partner_profile"), GOOD_TOKEN, resp(200, PROFILE))
    assert outcome.credentials == (CredentialObservation(Credential.ACCESS_TOKEN, NOW + 900),)


def test_an_earlier_server_expiry_shortens_the_cached_token() -> None:
    ctx = cached_ctx()  # cached until NOW + 600
    _, outcome = drive(ctx, resp(200, {**DETAIL, "expire_at": str(int((NOW + 100) * 1000))}))
    assert outcome.success
    assert ctx.tokens.get(token_key(ctx, HOST + "/v3/token"), NOW, margin=0) == (TOKEN, NOW + 100)
    sent, _ = drive(replace(ctx, now=NOW + 50), GOOD_TOKEN, GOOD_DETAIL)  # within the 60 s margin
    assert [r.step for r in sent] == [Step.TOKEN, Step.CALL]


@pytest.mark.parametrize("answer", [
    resp(401, UNAUTHORIZED),
    resp(200, {**DETAIL, "is_valid": False}),
])
def test_auth_failure_drops_the_cached_token_so_the_next_probe_remints(answer: HttpResponse) -> None:
    ctx = cached_ctx()
    _, outcome = drive(ctx, answer)
    assert outcome.reason is Reason.AUTH
    assert ctx.tokens.get(token_key(ctx, HOST + "/v3/token"), NOW) is None
    sent, again = drive(replace(ctx, now=NOW + 60), GOOD_TOKEN, GOOD_DETAIL)
    assert [r.step for r in sent] == [Step.TOKEN, Step.CALL] and again.success


def test_permission_failure_keeps_the_cached_token() -> None:
    ctx = cached_ctx()
    _, outcome = drive(ctx, resp(403, wm_error("FORBIDDEN.GMP_GATEWAY_API", "Forbidden")))
    assert outcome.reason is Reason.PERMISSION
    assert ctx.tokens.get(token_key(ctx, HOST + "/v3/token"), NOW) == (TOKEN, NOW + 600)


def test_failed_token_exchange_caches_nothing_and_skips_the_call() -> None:
    ctx = make_ctx()
    sent, outcome = drive(ctx, resp(401, UNAUTHORIZED))
    assert len(sent) == 1 and outcome.reason is Reason.AUTH
    assert ctx.tokens.get(token_key(ctx, HOST + "/v3/token"), NOW) is None
    assert not any(o.credential is Credential.ACCESS_TOKEN for o in outcome.credentials)


def test_a_refresh_token_in_the_token_answer_is_ignored() -> None:
    # the refresh grant does not rotate [F1]: even if one came back, nothing would be stored
    ctx = make_ctx(credentials=partner_creds())
    body = {"access_token": TOKEN, "expires_in": 900, "refresh_token": "a-new-one"}
    sent, outcome = drive(ctx, resp(200, body), GOOD_DETAIL)
    assert outcome.success
    assert ctx.credentials.refresh_token.reveal() == REFRESH
    assert all(b"a-new-one" not in (r.body or b"") for r in sent)


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


# --- credentials ----------------------------------------------------------------------------------


def test_refresh_token_expiry_is_observed_on_success_and_failure() -> None:
    ctx = make_ctx(credentials=partner_creds(refresh_token_expires_at=date(2026, 10, 1)))
    expected = CredentialObservation(Credential.REFRESH_TOKEN, datetime(2026, 10, 1, tzinfo=UTC).timestamp())
    _, ok = drive(ctx, GOOD_TOKEN, GOOD_DETAIL)
    assert expected in ok.credentials
    _, failed = drive(make_ctx(credentials=ctx.credentials), resp(401, UNAUTHORIZED))
    assert failed.credentials == (expected,)


def test_unavailable_secret_fails_without_a_request() -> None:
    ctx = make_ctx(credentials=creds(client_secret="${MARKETPLACE_EXPORTER_TEST_UNSET_VAR}"))
    sent, outcome = drive(ctx)
    assert sent == [] and outcome.reason is Reason.AUTH
    assert "MARKETPLACE_EXPORTER_TEST_UNSET_VAR" in outcome.message


def test_unknown_operation_is_internal_and_unknown_site_refused() -> None:
    sent, outcome = drive(make_ctx(operation="nope"))
    assert sent == [] and outcome.reason is Reason.INTERNAL
    sent, outcome = drive(make_ctx(site="BR"))
    assert sent == [] and outcome.reason is Reason.CLIENT_ERROR and "unknown site 'BR'" in outcome.message


@pytest.mark.parametrize(("overrides", "error"), [
    ({"refresh_token": {"value": REFRESH}}, "refresh_token and partner_id go together"),
    ({"partner_id": "43423324"}, "refresh_token and partner_id go together"),
    ({"refresh_token_expires_at": "2026-10-01"}, "only meaningful with a refresh_token"),
    ({"refresh_token": REFRESH, "partner_id": "1"}, "expected ${ENV_VAR}"),  # a plain string is no secret
    ({"client_id": "a:b"}, "should match pattern"),
    ({"client_id": ""}, "should match pattern"),
    ({"service_name": "x\r\nInjected: 1"}, "should match pattern"),
    ({"channel_type": " padded"}, "should match pattern"),
    ({"partner_id": "12 34", "refresh_token": {"value": REFRESH}}, "should match pattern"),
    ({"seller_id": "1"}, "Extra inputs are not permitted"),
])
def test_credentials_validation(overrides: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error.replace("$", r"\$").replace("{", r"\{")):
        creds(**overrides)


def test_credentials_accept_a_numeric_partner_id_and_keep_secrets_out_of_dumps() -> None:
    model = creds(partner_id=43423324, refresh_token={"value": REFRESH})
    assert model.partner_id == "43423324"
    assert isinstance(model.client_secret, Secret) and isinstance(model.refresh_token, Secret)
    dumped = json.dumps(model.model_dump(mode="json"))
    assert CLIENT_SECRET not in dumped and REFRESH not in dumped and CLIENT_SECRET not in repr(model)


# --- static description ---------------------------------------------------------------------------


def test_operations_claim_no_undocumented_limits() -> None:
    for name in ("token_detail", "partner_profile"):
        op = Walmart.operations[name]
        assert (op.name, op.rate_per_second, op.burst, op.limit_source) == (name, None, None, "UNCONFIRMED")
        assert op.limits(sandbox=False) is None and op.limits(sandbox=True) is None


def test_known_codes_cover_the_fact_sheet() -> None:
    assert {"UNAUTHORIZED.GMP_GATEWAY_API", "REQUEST_THRESHOLD_VIOLATED", "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API",
            "SYSTEM_ERROR", "DOWNSTREAM_SYSTEM_TIME_OUT", "FORBIDDEN.GMP_GATEWAY_API"} <= Walmart.known_codes
    assert all(code == code.strip() and len(code) <= 64 for code in Walmart.known_codes)


def test_config_refuses_what_walmart_would_refuse_with_file_line_and_key() -> None:
    text = """
accounts:
  - marketplace: walmart
    alias: ca-main
    site: CA
    credentials: {client_id: a, client_secret: {value: b}}
    checks: [{operation: token_detail}]
  - marketplace: walmart
    alias: mx-main
    site: MX
    credentials: {client_id: a, client_secret: {value: b}}
    checks: [{operation: token_detail}, {operation: partner_profile}]
"""
    with pytest.raises(ConfigError) as refused:
        load_config("walmart.yml", text=text)
    errors = refused.value.errors
    assert any(e.startswith("walmart.yml:5: accounts[0].site: Walmart Canada") and "Global APIs" in e
               for e in errors), errors
    assert any(e.startswith("walmart.yml:10: accounts[1].site: ") and "WM_CONSUMER.CHANNEL.TYPE" in e
               for e in errors), errors
    assert any(e.startswith("walmart.yml:12: accounts[1].checks[1].operation: partner_profile calls the Settings")
               for e in errors), errors
    assert len(errors) == 3
