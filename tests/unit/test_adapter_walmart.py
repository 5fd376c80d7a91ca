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
from adapter_harness import NOW
from walmart_fixtures import (
    CLIENT_ID,
    CLIENT_SECRET,
    DETAIL,
    GOOD_DETAIL,
    GOOD_TOKEN,
    PROFILE,
    REFRESH,
    TOKEN,
    UNAUTHORIZED,
    cached_ctx,
    creds,
    drive,
    make_ctx,
    partner_creds,
    resp,
    wm_error,
)

from marketplace_exporter.adapters.walmart import (
    HOST,
    SANDBOX_HOST,
    Walmart,
    token_key,
)
from marketplace_exporter.adapters.walmart_signing import (
    CORRELATION_NAMESPACE,
    basic_authorization,
    correlation_id,
)
from marketplace_exporter.catalogue import Credential, Reason, Step
from marketplace_exporter.config import ConfigError, load_config
from marketplace_exporter.model import (
    CredentialObservation,
    HttpResponse,
)
from marketplace_exporter.secrets import REDACTED, REDACTOR, Secret

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
