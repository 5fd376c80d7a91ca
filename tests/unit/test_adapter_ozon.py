"""Ozon adapter: the two key headers, the key's expires_at as a client_secret expiry, method drift,
Ozon's documented texts deciding before the (UNCONFIRMED) status, and the long pause after auth and
permission failures (Ozon restricts accounts that keep sending erroneous requests [K1][K2]).

No HTTP: the adapter is driven with literals. The tags resolve in docs/marketplaces/sources.md."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from adapter_harness import NOW, adapter_driver, context_builder, json_response
from pydantic import ValidationError

from marketplace_exporter.adapters.ozon import AUTH_BACKOFF_S, Ozon, OzonCredentials, OzonParams, read
from marketplace_exporter.catalogue import Credential, Reason
from marketplace_exporter.model import HttpResponse

CLIENT_ID, KEY = "1836412", "test-ozon-api-key-0000000000000001"


def creds(**values: Any) -> OzonCredentials:
    return OzonCredentials.model_validate({"client_id": CLIENT_ID, "api_key": {"value": KEY}} | values)


make_ctx = context_builder(alias="ru-main", site="RU", operation="roles", credentials=creds, params=OzonParams)
drive = adapter_driver(Ozon)
EXPIRES = "2026-02-18T09:54:23.296Z"  # the spec's example [K1]
ROLES = {"expires_at": EXPIRES, "roles": [{"name": "Admin", "methods": ["/v1/actions", "/v1/roles"]},
                                          {"name": "Posting FBS", "methods": ["/v3/posting/fbs/list"]}]}


def rpc(code: int | str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "details": []}


@pytest.mark.parametrize(("operation", "base_url", "url"), [
    ("roles", None, "https://api-seller.ozon.ru/v1/roles"),
    ("seller_info", None, "https://api-seller.ozon.ru/v1/seller/info"),
    ("roles", "http://127.0.0.1:9763/ozon/", "http://127.0.0.1:9763/ozon/v1/roles"),
])
def test_a_post_with_the_two_key_headers(operation: str, base_url: str | None, url: str) -> None:
    sent, outcome = drive(make_ctx(operation=operation, base_url=base_url), json_response(200, ROLES))
    (request,) = sent
    assert (request.method, request.url, request.body) == ("POST", url, b"{}")
    headers = dict(request.headers)
    assert (headers["client-id"], headers["api-key"]) == (CLIENT_ID, KEY)  # [K1]
    assert "api-key" in request.sensitive and outcome.success


def test_client_id_is_digits_quoted_or_not() -> None:
    assert creds(client_id=1836412).client_id == "1836412"  # YAML reads an unquoted id as a number
    for bad in ("abc", "", True, 1.5):
        with pytest.raises(ValidationError):
            creds(client_id=bad)


def test_sandbox_is_refused_without_sending_anything() -> None:
    sent, outcome = drive(make_ctx(sandbox=True))  # there is no sandbox [K1][K2]
    assert not sent and outcome.reason is Reason.CLIENT_ERROR and "no sandbox" in outcome.message
    sent, _ = drive(make_ctx(sandbox=True, base_url="http://127.0.0.1:9763/ozon"), json_response(200, ROLES))
    assert len(sent) == 1  # an explicit test host is the user's call


def test_roles_export_the_key_expiry_and_its_methods() -> None:
    _, outcome = drive(make_ctx(), json_response(200, ROLES))
    expires = datetime(2026, 2, 18, 9, 54, 23, 296000, tzinfo=UTC).timestamp()
    assert [(o.credential, o.expires_at) for o in outcome.credentials] == [(Credential.CLIENT_SECRET, expires)]
    assert outcome.values == (("api_key_methods", 3.0),) and outcome.message == "key valid; 2 roles"
    _, no_expiry = drive(make_ctx(), json_response(200, {"roles": ROLES["roles"]}))
    assert no_expiry.success and not no_expiry.credentials and "no expires_at" in no_expiry.message


def test_a_configured_expiry_is_exported_even_when_the_key_fails() -> None:
    ctx = make_ctx(credentials=creds(api_key_expires_at="2026-01-01T00:00:00Z"))
    _, outcome = drive(ctx, json_response(401, rpc(16, "Invalid Api-Key, please check the key and try again")))
    assert outcome.reason is Reason.AUTH
    assert [o.credential for o in outcome.credentials] == [Credential.CLIENT_SECRET]


def test_a_required_method_the_roles_no_longer_grant_is_a_permission_failure() -> None:
    params = OzonParams(required_methods=("/v3/posting/fbs/list", "/v2/products/stocks"))
    _, outcome = drive(make_ctx(params=params), json_response(200, ROLES))
    assert outcome.reason is Reason.PERMISSION and "/v2/products/stocks" in outcome.message
    assert outcome.values == (("api_key_methods", 3.0), ("required_methods_missing", 1.0))


def test_seller_info_counts_ratings_by_status() -> None:
    body = {"company": {"name": "x"}, "ratings": [{"status": "OK"}, {"status": "WARNING"}, {"status": "CRITICAL"},
                                                  {"status": "CRITICAL"}], "subscription": {}}
    _, outcome = drive(make_ctx(operation="seller_info"), json_response(200, body))
    assert outcome.success and outcome.values == (("ratings_warning", 1.0), ("ratings_critical", 2.0))


TABLE: list[tuple[int, Any, Reason | None, str | None, float | None]] = [
    (200, ROLES, None, None, None),
    # the documented texts decide whatever the status [K1]
    (401, rpc(16, "Invalid Api-Key, please check the key and try again"), Reason.AUTH, "16", AUTH_BACKOFF_S),
    (400, rpc(3, "Invalid Api-Key, please check the key and try again"), Reason.AUTH, "3", AUTH_BACKOFF_S),
    (403, rpc(7, "Api-key is deactivated, use another one or generate a new one"), Reason.AUTH, "7", AUTH_BACKOFF_S),
    (401, rpc(16, "Client-Id and Api-Key headers are required"), Reason.AUTH, "16", AUTH_BACKOFF_S),  # [SDK K3]
    (404, rpc(5, "Api-Key is missing a required role for a method"), Reason.PERMISSION, "5", AUTH_BACKOFF_S),
    (400, rpc(7, "Api-Key is restricted to specific IP addresses"), Reason.PERMISSION, "7", AUTH_BACKOFF_S),
    (403, rpc(7, "Offer not signed"), Reason.PERMISSION, "7", AUTH_BACKOFF_S),  # [K2]
    (429, rpc(8, "You have reached request rate limit per second"), Reason.THROTTLED, "8", None),  # [OBS K6]
    (429, rpc("RESOURCE_EXHAUSTED", "You have reached operation items limits. Retry after 120 seconds. "
              "Remaining 10 items"), Reason.THROTTLED, "RESOURCE_EXHAUSTED", 120.0),  # a string code [K1]
    (400, rpc(8, "something else"), Reason.THROTTLED, "8", None),
    (500, rpc(13, "Circle is open"), Reason.SERVER_ERROR, "13", None),
    (500, rpc(13, "Internal error"), Reason.SERVER_ERROR, "13", None),
    (401, rpc(99, "who are you"), Reason.AUTH, "99", AUTH_BACKOFF_S),
    (404, rpc(5, "method is not allowed"), Reason.CLIENT_ERROR, "5", None),
    (502, b"<html>bad gateway</html>", Reason.SERVER_ERROR, None, None),
    (200, b"<html>ok</html>", Reason.INVALID_RESPONSE, None, None),
    (200, {"roles": "Admin"}, Reason.INVALID_RESPONSE, None, None),
    (400, {"code": True, "message": ""}, Reason.CLIENT_ERROR, None, None),
]


@pytest.mark.parametrize(("status", "body", "reason", "code", "retry"), TABLE)
def test_texts_then_codes_then_status(status: int, body: Any, reason: Reason | None, code: str | None,
                                      retry: float | None) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    _, outcome = drive(make_ctx(), HttpResponse(status, {}, raw))
    assert (outcome.reason, outcome.code, outcome.retry_after_seconds) == (reason, code, retry)
    traffic = Ozon().classify("posting.fbs_list", status, {}, raw, NOW)
    if status != 200:  # a 2xx body is only the probe's concern
        assert (traffic.reason, traffic.code) == (reason, code)


def test_retry_after_header_wins_for_throttling() -> None:
    _, outcome = drive(make_ctx(), HttpResponse(429, {"retry-after": "7"}, json.dumps(rpc(8, "rate limit")).encode()))
    assert outcome.retry_after_seconds == 7.0
    # the pause after an auth failure is the probe's own: production traffic carries no such hint
    traffic = Ozon().classify("roles", 401, {}, json.dumps(rpc(16, "Invalid Api-Key")).encode(), NOW)
    assert traffic.reason is Reason.AUTH and traffic.retry_after_seconds is None
    assert read("roles", HttpResponse(401, {}, json.dumps(rpc(16, "Invalid Api-Key")).encode()), NOW, ()
                ).retry_after_seconds == AUTH_BACKOFF_S
