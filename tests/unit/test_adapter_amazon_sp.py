"""AmazonSP adapter: request building, LWA token caching, classification tables, hostile bodies.

No HTTP: the adapter is driven with literals (see adapters/base.py). Facts under test are from
the sources in docs/marketplaces/sources.md; the tags in test ids name the source.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

import pytest
from adapter_harness import NOW, adapter_driver, context_builder, json_response

from marketplace_exporter import __version__
from marketplace_exporter.adapters.amazon_sp import (
    AmazonCredentials,
    AmazonSP,
    read_call,
    token_key,
)
from marketplace_exporter.adapters.base import ProbeContext
from marketplace_exporter.catalogue import Credential, Reason, Step
from marketplace_exporter.model import (
    CredentialObservation,
)
from marketplace_exporter.secrets import REDACTED, REDACTOR, Secret

REFRESH = "Atzr|test-refresh-token-value"
CLIENT_SECRET = "amzn1.oa2-cs.v1.test-client-secret"
TOKEN = "Atza|test-access-token"


def creds(**overrides: Any) -> AmazonCredentials:
    values: dict[str, Any] = {
        "client_id": "amzn1.application-oa2-client.test",
        "client_secret": {"value": CLIENT_SECRET},
        "refresh_token": {"value": REFRESH},
    }
    return AmazonCredentials.model_validate(values | overrides)


make_ctx = context_builder(alias="us-main", site="US", operation="marketplace_participations",
                           credentials=creds)
drive = adapter_driver(AmazonSP)
resp = json_response


GOOD_TOKEN = resp(200, {"access_token": TOKEN, "token_type": "bearer", "expires_in": 3600,
                        "refresh_token": REFRESH})
GOOD_CALL = resp(200, {"payload": [{"marketplace": {"id": "ATVPDKIKX0DER"}, "participation": {}}]},
                 {"x-amzn-ratelimit-limit": "0.0167"})


def api_error(code: str, message: str, details: str = "") -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message, "details": details}]}


def cached_ctx(**overrides: Any) -> ProbeContext:
    ctx = make_ctx(**overrides)
    ctx.tokens.put(token_key(ctx), TOKEN, NOW + 3000)
    return ctx


# --- hosts and request building -----------------------------------------------------------------


@pytest.mark.parametrize(("site", "sandbox", "base_url", "expected"), [
    ("US", False, None, "https://sellingpartnerapi-na.amazon.com"),
    ("BR", False, None, "https://sellingpartnerapi-na.amazon.com"),
    ("DE", False, None, "https://sellingpartnerapi-eu.amazon.com"),
    ("UK", False, None, "https://sellingpartnerapi-eu.amazon.com"),
    ("IN", False, None, "https://sellingpartnerapi-eu.amazon.com"),
    ("JP", False, None, "https://sellingpartnerapi-fe.amazon.com"),
    ("AU", True, None, "https://sandbox.sellingpartnerapi-fe.amazon.com"),
    ("US", True, None, "https://sandbox.sellingpartnerapi-na.amazon.com"),
    ("US", True, "http://127.0.0.1:9763/amazon/na/", "http://127.0.0.1:9763/amazon/na"),
])
def test_call_url_per_site_sandbox_and_override(site: str, sandbox: bool, base_url: str | None,
                                                 expected: str) -> None:
    sent, outcome = drive(cached_ctx(site=site, sandbox=sandbox, base_url=base_url), GOOD_CALL)
    assert sent[0].url == expected + "/sellers/v1/marketplaceParticipations"
    assert outcome.success


def test_sites_are_the_fact_sheet_country_codes() -> None:
    assert AmazonSP.sites == {"US", "CA", "MX", "BR", "IE", "ES", "UK", "FR", "BE", "NL", "DE", "IT", "SE",
                              "ZA", "PL", "SA", "EG", "TR", "AE", "IN", "SG", "AU", "JP"}


def test_account_operation_path() -> None:
    sent, outcome = drive(cached_ctx(operation="account"), resp(200, {"payload": {"business": {}}}))
    assert sent[0].url.endswith("/sellers/v1/account")
    assert outcome.success


@pytest.mark.parametrize(("auth_url", "expected"), [
    (None, "https://api.amazon.com/auth/o2/token"),
    ("http://127.0.0.1:9763/amazon/lwa/", "http://127.0.0.1:9763/amazon/lwa/auth/o2/token"),
])
def test_token_request_is_a_form_post(auth_url: str | None, expected: str) -> None:
    sent, outcome = drive(make_ctx(auth_url=auth_url), GOOD_TOKEN, GOOD_CALL)
    token = sent[0]
    assert (token.method, token.url, token.step) == ("POST", expected, Step.TOKEN)
    assert dict(token.headers)["content-type"].startswith("application/x-www-form-urlencoded")
    assert dict(parse_qsl(token.body.decode())) == {  # type: ignore[union-attr]
        "grant_type": "refresh_token", "refresh_token": REFRESH,
        "client_id": "amzn1.application-oa2-client.test", "client_secret": CLIENT_SECRET}
    assert {"refresh_token", "client_secret"} <= token.sensitive
    assert outcome.success


def test_call_headers() -> None:
    sent, _ = drive(make_ctx(), GOOD_TOKEN, GOOD_CALL)
    call = sent[1]
    headers = dict(call.headers)
    assert (call.method, call.step, call.query, call.body) == ("GET", Step.CALL, (), None)
    assert headers["x-amz-access-token"] == TOKEN
    assert headers["user-agent"] == f"marketplace-exporter/{__version__} (Language=Python)"
    assert headers["accept"] == "application/json"
    assert "x-amz-access-token" in call.sensitive


# --- token cache --------------------------------------------------------------------------------


def test_token_is_cached_and_reused() -> None:
    ctx = make_ctx()
    sent, first = drive(ctx, GOOD_TOKEN, GOOD_CALL)
    assert [r.step for r in sent] == [Step.TOKEN, Step.CALL]
    sent, second = drive(replace(ctx, now=NOW + 600), GOOD_CALL)
    assert [r.step for r in sent] == [Step.CALL]
    expected = CredentialObservation(Credential.ACCESS_TOKEN, NOW + 3600)  # fresh or cached alike
    assert expected in first.credentials and expected in second.credentials


def test_minted_token_is_registered_for_redaction() -> None:
    minted = "Atza|freshly-minted-token-for-redaction"
    drive(make_ctx(), resp(200, {"access_token": minted, "expires_in": 3600}), GOOD_CALL)
    assert REDACTOR.redact(f"log line {minted}") == f"log line {REDACTED}"


def test_token_key_holds_no_secret() -> None:
    key = token_key(make_ctx())
    assert REFRESH not in key and CLIENT_SECRET not in key and "us-main" in key


def test_token_near_expiry_is_reminted() -> None:
    ctx = make_ctx()
    ctx.tokens.put(token_key(ctx), TOKEN, NOW + 59)  # inside the 60 s margin [A7]
    sent, outcome = drive(ctx, GOOD_TOKEN, GOOD_CALL)
    assert [r.step for r in sent] == [Step.TOKEN, Step.CALL] and outcome.success


@pytest.mark.parametrize("details", [
    "The access token you provided has expired.",
    "The access token you provided is revoked, malformed or invalid.",
    "Access token is missing in the request header.",
])
def test_auth_failure_drops_cached_token_so_next_probe_remints(details: str) -> None:
    ctx = cached_ctx()
    _, outcome = drive(ctx, resp(403, api_error("Unauthorized", "Access to requested resource is denied.",
                                                details)))
    assert (outcome.reason, outcome.code) == (Reason.AUTH, "Unauthorized")
    assert ctx.tokens.get(token_key(ctx), NOW) is None
    sent, again = drive(replace(ctx, now=NOW + 300), GOOD_TOKEN, GOOD_CALL)
    assert [r.step for r in sent] == [Step.TOKEN, Step.CALL] and again.success


def test_permission_failure_keeps_cached_token() -> None:
    ctx = cached_ctx()
    _, outcome = drive(ctx, resp(403, api_error("Unauthorized", "Access to requested resource is denied.")))
    assert outcome.reason is Reason.PERMISSION
    assert ctx.tokens.get(token_key(ctx), NOW) == (TOKEN, NOW + 3000)


def test_failed_token_exchange_caches_nothing_and_skips_the_call() -> None:
    ctx = make_ctx()
    sent, outcome = drive(ctx, resp(400, {"error": "invalid_grant"}))
    assert len(sent) == 1 and not outcome.success
    assert ctx.tokens.get(token_key(ctx), NOW) is None
    assert not any(o.credential is Credential.ACCESS_TOKEN for o in outcome.credentials)


# --- LWA classification -------------------------------------------------------------------------

LWA_CASES = [
    # revoked/unknown refresh token [OBS A13]
    (400, {"error": "invalid_grant",
           "error_description": "The request has an invalid grant parameter : refresh_token"},
     Reason.AUTH, "invalid_grant"),
    (401, {"error": "invalid_client", "error_description": "Client authentication failed"},
     Reason.AUTH, "invalid_client"),
    (400, {"error": "unauthorized_client"}, Reason.PERMISSION, "unauthorized_client"),
    (400, {"error": "access_denied"}, Reason.PERMISSION, "access_denied"),
    (400, {"error": "invalid_request"}, Reason.CLIENT_ERROR, "invalid_request"),
    (400, {"error": "invalid_scope"}, Reason.CLIENT_ERROR, "invalid_scope"),
    (500, {"error": "server_error"}, Reason.SERVER_ERROR, "server_error"),
    (503, {"error": "temporarily_unavailable"}, Reason.SERVER_ERROR, "temporarily_unavailable"),
    (400, {"error": "temporarily_unavailable"}, Reason.SERVER_ERROR, "temporarily_unavailable"),
    (429, {"error": "invalid_request"}, Reason.THROTTLED, "invalid_request"),
    (429, b"Too Many Requests", Reason.THROTTLED, None),
    (502, b"<html>bad gateway</html>", Reason.SERVER_ERROR, None),
    (400, {"error": "brand_new_code"}, Reason.CLIENT_ERROR, "brand_new_code"),
    (401, b"", Reason.AUTH, None),
    (302, b"", Reason.INVALID_RESPONSE, None),
    (400, {"error": 42}, Reason.CLIENT_ERROR, None),
    (400, [1, 2], Reason.CLIENT_ERROR, None),
]


@pytest.mark.parametrize(("status", "body", "reason", "code"), LWA_CASES)
def test_lwa_errors(status: int, body: Any, reason: Reason, code: str | None) -> None:
    sent, outcome = drive(make_ctx(), resp(status, body))
    assert len(sent) == 1 and not outcome.success
    assert (outcome.reason, outcome.code, outcome.http_status) == (reason, code, status)
    assert outcome.message.startswith(f"LWA token request: HTTP {status}")


@pytest.mark.parametrize("body", [
    b"not json", b"", b"[]", b"null", b"\xff\xfe", b"{" * 100_000,
    {"token_type": "bearer", "expires_in": 3600},
    {"access_token": 123, "expires_in": 3600},
    {"access_token": "", "expires_in": 3600},
    {"access_token": "Atza|x\r\nInjected: 1", "expires_in": 3600},
    {"access_token": "Atza|" + "x" * 5000, "expires_in": 3600},
    {"access_token": TOKEN},
    {"access_token": TOKEN, "expires_in": "3600"},
    {"access_token": TOKEN, "expires_in": True},
    {"access_token": TOKEN, "expires_in": -5},
    {"access_token": TOKEN, "expires_in": 0},
    {"access_token": TOKEN, "expires_in": 10**30},
    b'{"access_token": "Atza|x", "expires_in": 1e999}',
    b'{"access_token": "Atza|x", "expires_in": NaN}',
])
def test_lwa_hostile_success_bodies_are_invalid_response(body: Any) -> None:
    ctx = make_ctx()
    sent, outcome = drive(ctx, resp(200, body))
    assert len(sent) == 1
    assert (outcome.success, outcome.reason) == (False, Reason.INVALID_RESPONSE)
    assert ctx.tokens.get(token_key(ctx), NOW) is None


def test_lwa_throttle_honours_retry_after() -> None:
    _, outcome = drive(make_ctx(), resp(429, b"", {"retry-after": "30"}))
    assert outcome.retry_after_seconds == 30.0


def test_lwa_echoing_a_secret_never_reaches_the_message() -> None:
    body = {"error": "invalid_grant", "error_description": f"bad refresh_token {REFRESH} " + "x" * 5000}
    _, outcome = drive(make_ctx(), resp(400, body))
    assert REFRESH not in outcome.message and len(outcome.message) <= 200


# --- SP-API classification ----------------------------------------------------------------------

API_CASES = [
    # throttle [A5][OBS A20]
    (429, api_error("QuotaExceeded", "You exceeded your quota for the requested resource."),
     Reason.THROTTLED, "QuotaExceeded"),
    # token problems come as 403 [A2][OBS A21]
    (403, api_error("Unauthorized", "Access to requested resource is denied.",
                    "The access token you provided has expired."), Reason.AUTH, "Unauthorized"),
    (403, api_error("Unauthorized", "Access to requested resource is denied.",
                    "The access token you provided is revoked, malformed or invalid."),
     Reason.AUTH, "Unauthorized"),
    (403, api_error("Unauthorized", "Access to requested resource is denied.",
                    "Access token is missing in the request header."), Reason.AUTH, "Unauthorized"),
    (403, api_error("MissingAuthenticationToken", "Missing Authentication Token"),
     Reason.AUTH, "MissingAuthenticationToken"),
    # role not granted: same envelope, no token details [A5][OBS A21]
    (403, api_error("Unauthorized", "Access to requested resource is denied."),
     Reason.PERMISSION, "Unauthorized"),
    (403, {"errors": [{"code": "Unauthorized", "message": "Access to requested resource is denied."}]},
     Reason.PERMISSION, "Unauthorized"),
    (401, api_error("Unauthorized", "Access to requested resource is denied."), Reason.AUTH, "Unauthorized"),
    (500, api_error("InternalFailure", "We encountered an internal error."),
     Reason.SERVER_ERROR, "InternalFailure"),
    (503, api_error("ServiceUnavailable", "Service temporarily unavailable."),
     Reason.SERVER_ERROR, "ServiceUnavailable"),
    (400, api_error("InvalidInput", "Invalid input."), Reason.CLIENT_ERROR, "InvalidInput"),
    (404, api_error("NotFound", "Resource not found."), Reason.CLIENT_ERROR, "NotFound"),
    (413, api_error("RequestTooLarge", "too large"), Reason.CLIENT_ERROR, "RequestTooLarge"),
    (415, api_error("UnsupportedMediaType", "bad type"), Reason.CLIENT_ERROR, "UnsupportedMediaType"),
    (302, b"", Reason.INVALID_RESPONSE, None),
]


@pytest.mark.parametrize(("status", "body", "reason", "code"), API_CASES)
def test_api_errors(status: int, body: Any, reason: Reason, code: str | None) -> None:
    _, outcome = drive(cached_ctx(), resp(status, body))
    assert not outcome.success
    assert (outcome.reason, outcome.code, outcome.http_status) == (reason, code, status)
    assert outcome.message.startswith(f"HTTP {status}")


@pytest.mark.parametrize("body", [
    b"", b"<html>oops</html>", b"[]", b"null", b"\xff", b'{"errors": "nope"}', b'{"errors": []}',
    b'{"errors": [null]}', b'{"errors": [{"code": 5, "message": ["x"]}]}', b"[" * 50_000,
])
@pytest.mark.parametrize(("status", "reason"), [
    (403, Reason.PERMISSION), (429, Reason.THROTTLED), (500, Reason.SERVER_ERROR), (400, Reason.CLIENT_ERROR),
])
def test_api_hostile_error_bodies_classify_by_status(body: bytes, status: int, reason: Reason) -> None:
    _, outcome = drive(cached_ctx(), resp(status, body))
    assert (outcome.reason, outcome.code) == (reason, None)


@pytest.mark.parametrize(("operation", "body"), [
    ("marketplace_participations", b"not json"),
    ("marketplace_participations", b"[]"),
    ("marketplace_participations", {"payload": None}),
    ("marketplace_participations", {"payload": {"a": 1}}),
    ("marketplace_participations", {"errors": []}),
    ("account", {"payload": []}),
    ("account", {"payload": "x"}),
])
def test_success_without_expected_payload_is_invalid_response(operation: str, body: Any) -> None:
    _, outcome = drive(cached_ctx(operation=operation), resp(200, body))
    assert (outcome.success, outcome.reason, outcome.http_status) == (False, Reason.INVALID_RESPONSE, 200)


def test_success_reports_stated_rate_as_a_value_not_headroom() -> None:
    _, outcome = drive(cached_ctx(), GOOD_CALL)
    assert outcome.success and outcome.rate_limit is None
    assert outcome.values == (("rate_limit_per_second", 0.0167),)
    assert outcome.message == "1 marketplace participations"


@pytest.mark.parametrize(("header", "values"), [
    ("0.5", (("rate_limit_per_second", 0.5),)),
    (" 2 ", (("rate_limit_per_second", 2.0),)),
    ("fast", ()), ("", ()), ("nan", ()), ("inf", ()), ("-1", ()), ("0", ()), ("1" * 100, ()),
])
def test_rate_limit_header_parsing(header: str, values: tuple[tuple[str, float], ...]) -> None:
    outcome = read_call(resp(200, {"payload": []}, {"x-amzn-ratelimit-limit": header}), NOW)
    assert outcome.success and outcome.values == values


def test_rate_limit_header_is_reported_on_errors_too() -> None:
    outcome = read_call(resp(400, api_error("InvalidInput", "bad"), {"x-amzn-ratelimit-limit": "1"}), NOW)
    assert outcome.values == (("rate_limit_per_second", 1.0),)


@pytest.mark.parametrize(("header", "expected"), [
    ("7", 7.0), ("Thu, 09 Oct 2025 08:54:00 GMT", 40.0),  # NOW is 2025-10-09 08:53:20 UTC
    ("Thu, 09 Oct 2025 08:00:00 GMT", 0.0), ("soon", None), ("", None), ("\u00b2", None),
    ("99999999999", 99999999999.0),  # capped by the engine (defaults.max_retry_after), not here
])
def test_api_throttle_retry_after(header: str, expected: float | None) -> None:
    _, outcome = drive(cached_ctx(), resp(429, api_error("QuotaExceeded", "q"), {"retry-after": header}))
    assert outcome.reason is Reason.THROTTLED and outcome.retry_after_seconds == expected


def test_error_message_is_bounded_and_redacted() -> None:
    body = api_error("Unauthorized", "denied " * 500, f"token {TOKEN} invalid")
    ctx = cached_ctx()
    Secret.literal(TOKEN).reveal()  # the engine has seen it: the redactor knows it
    _, outcome = drive(ctx, resp(403, body))
    assert len(outcome.message) <= 200 and TOKEN not in outcome.message


# --- credential observations --------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    (date(2027, 3, 1), datetime(2027, 3, 1, tzinfo=UTC).timestamp()),
    ("2027-03-01", datetime(2027, 3, 1, tzinfo=UTC).timestamp()),
    (datetime(2027, 3, 1, 12, 0), datetime(2027, 3, 1, 12, tzinfo=UTC).timestamp()),
    (datetime(2027, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=8))),
     datetime(2027, 3, 1, 4, tzinfo=UTC).timestamp()),
    ("2027-03-01T12:00:00Z", datetime(2027, 3, 1, 12, tzinfo=UTC).timestamp()),
])
def test_configured_deadlines_are_observed(value: Any, expected: float) -> None:
    ctx = cached_ctx(credentials=creds(client_secret_expires_at=value, authorization_expires_at=value))
    _, outcome = drive(ctx, GOOD_CALL)
    kinds = {o.credential: o.expires_at for o in outcome.credentials}
    assert kinds == {Credential.CLIENT_SECRET: expected, Credential.AUTHORIZATION: expected,
                     Credential.ACCESS_TOKEN: NOW + 3000}


def test_configured_deadlines_are_observed_on_failures_too() -> None:
    ctx = make_ctx(credentials=creds(client_secret_expires_at=date(2027, 3, 1)))
    _, outcome = drive(ctx, resp(401, {"error": "invalid_client"}))
    assert [o.credential for o in outcome.credentials] == [Credential.CLIENT_SECRET]


def test_unavailable_secret_fails_without_a_request() -> None:
    ctx = make_ctx(credentials=creds(refresh_token="${MARKETPLACE_EXPORTER_TEST_UNSET_VAR}"))
    sent, outcome = drive(ctx)
    assert sent == [] and outcome.reason is Reason.AUTH
    assert "MARKETPLACE_EXPORTER_TEST_UNSET_VAR" in outcome.message


@pytest.mark.parametrize("overrides", [{"operation": "nope"}, {"site": "XX"}])
def test_unknown_operation_or_site_is_internal(overrides: dict[str, str]) -> None:
    sent, outcome = drive(make_ctx(**overrides))
    assert sent == [] and outcome.reason is Reason.INTERNAL


# --- static description ------------------------------------------------------------------------


def test_operations_carry_the_documented_plan() -> None:
    for name in ("marketplace_participations", "account"):
        op = AmazonSP.operations[name]
        assert (op.name, op.rate_per_second, op.burst, op.limit_source) == (name, 0.016, 15, "A5")
        assert op.limits(sandbox=True) == (5.0, 15) and op.limits(sandbox=False) == (0.016, 15)
        assert op.default_interval_seconds == 300.0


def test_known_codes() -> None:
    assert AmazonSP.known_codes == {
        "invalid_grant", "invalid_client", "unauthorized_client", "access_denied", "invalid_scope",
        "invalid_request", "server_error", "temporarily_unavailable",
        "QuotaExceeded", "Unauthorized", "MissingAuthenticationToken"}


def test_credentials_model_keeps_secrets_out_of_dumps() -> None:
    model = creds()
    assert isinstance(model.refresh_token, Secret)
    dumped = json.dumps(model.model_dump(mode="json"))
    assert REFRESH not in dumped and CLIENT_SECRET not in dumped and REFRESH not in repr(model)
    with pytest.raises(ValueError):
        creds(refresh_token=REFRESH)  # a plain string is not a secret reference
    with pytest.raises(ValueError):
        creds(seller_id="A1")  # unknown keys are errors

