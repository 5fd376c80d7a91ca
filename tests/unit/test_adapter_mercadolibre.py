"""Mercado Libre adapter: request building, the error table, hostile bodies, expiry from the held
token, and the rule that it never refreshes (refresh tokens rotate [OBS H3]).

No HTTP: the adapter is driven with literals. Facts under test are from the sources in
docs/marketplaces/sources.md; the tags in comments name the source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from adapter_harness import NOW, adapter_driver, context_builder, json_response

from marketplace_exporter.adapters.mercadolibre import (
    MercadoLibre,
    MercadoLibreCredentials,
    error_code,
    read,
)
from marketplace_exporter.catalogue import Credential, Reason, Step
from marketplace_exporter.model import CredentialObservation, HttpResponse
from marketplace_exporter.simulator import mercadolibre as sim_meli
from marketplace_exporter.traffic.classify import Classifier

ACCESS = "APP_USR-5961000000000001-test-access-295000001"


def creds(**overrides: Any) -> MercadoLibreCredentials:
    values: dict[str, Any] = {"access_token": {"value": ACCESS}}
    return MercadoLibreCredentials.model_validate({k: v for k, v in (values | overrides).items() if v is not None})


make_ctx = context_builder(alias="mla-main", site="MLA", operation="users_me",
                           credentials=creds)
drive = adapter_driver(MercadoLibre)
resp = json_response


def meli(status: int, error: str, message: str = "") -> dict[str, Any]:
    return {"message": message, "error": error, "status": status, "cause": []}


USER = {"id": 295000001, "nickname": "SIM_OUTFITTERS_AR", "site_id": "MLA", "country_id": "AR"}


# --- request building [H1] ----------------------------------------------------------------------


@pytest.mark.parametrize(("sandbox", "base_url", "url"), [
    (False, None, "https://api.mercadolibre.com/users/me"),
    (True, None, "https://api.mercadolibre.com/users/me"),  # no sandbox host (UNCONFIRMED)
    (False, "http://127.0.0.1:9763/mercadolibre/", "http://127.0.0.1:9763/mercadolibre/users/me"),
])
@pytest.mark.parametrize("site", ["MLA", "MLB", "MLM"])
def test_users_me_request(sandbox: bool, base_url: str | None, url: str, site: str) -> None:
    sent, outcome = drive(make_ctx(sandbox=sandbox, base_url=base_url, site=site), resp(200, USER | {"site_id": site}))
    (request,) = sent
    assert (request.method, request.url, request.step, request.body, request.query) == (
        "GET", url, Step.CALL, None, ())
    assert dict(request.headers)["authorization"] == f"Bearer {ACCESS}"  # header, never the query [H1]
    assert "authorization" in request.sensitive
    assert outcome.success and outcome.message == "token accepted"


def test_unavailable_token_fails_without_a_request() -> None:
    sent, outcome = drive(make_ctx(credentials=creds(access_token="${MARKETPLACE_EXPORTER_TEST_UNSET_VAR}")))
    assert sent == [] and outcome.reason is Reason.AUTH


def test_unknown_operation_is_internal() -> None:
    sent, outcome = drive(make_ctx(operation="orders_search"))
    assert sent == [] and outcome.reason is Reason.INTERNAL


# --- never refresh: refresh tokens rotate [OBS H3] ----------------------------------------------


@pytest.mark.parametrize("auth_url", [None, "http://127.0.0.1:9763/mercadolibre", "https://api.mercadolibre.com"])
@pytest.mark.parametrize("answer", [resp(200, USER), resp(401, meli(401, "unauthorized", "invalid access token"))])
def test_never_calls_the_token_endpoint(auth_url: str | None, answer: HttpResponse) -> None:
    ctx = make_ctx(auth_url=auth_url)
    sent, _ = drive(ctx, answer)  # exactly one request, even after a 401
    assert [r.url.rsplit("/", 2)[-2:] for r in sent] == [["users", "me"]]
    assert all("/oauth/token" not in r.url for r in sent) and ctx.tokens._tokens == {}


@pytest.mark.parametrize("key", ["refresh_token", "refresh", "auto_refresh"])
def test_credentials_refuse_a_refresh_token(key: str) -> None:
    with pytest.raises(ValueError, match="never refreshes"):
        creds(**{key: {"value": "TG-r"}})


@pytest.mark.parametrize("overrides", [{"client_secret": {"value": "s"}}, {"access_token": "plain"},
                                       {"access_token": None}, {"token_file": "/t.json"}])
def test_credentials_rejects(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        creds(**overrides)


# --- the error table [H2][OBS H3][OBS H4] -------------------------------------------------------

ERRORS = [
    # status, body, reason, code
    (401, meli(401, "unauthorized", "invalid access token"), Reason.AUTH, "unauthorized"),
    (401, meli(401, "unauthorized", "authorization value not present"), Reason.AUTH, "unauthorized"),
    (401, {"message": "invalid_token", "cause": [], "error": "not_found", "status": 401}, Reason.AUTH, "not_found"),
    (401, {"code": "unauthorized", "message": "invalid access token"}, Reason.AUTH, "unauthorized"),
    (401, b"", Reason.AUTH, None),  # API 401 body UNCONFIRMED: any 401 is auth
    (400, {"error": "invalid_grant", "error_description": "Error validating grant.", "status": 400, "cause": []},
     Reason.AUTH, "invalid_grant"),
    (400, meli(400, "unauthorized_client"), Reason.AUTH, "unauthorized_client"),
    (403, meli(403, "unauthorized_application"), Reason.PERMISSION, "unauthorized_application"),
    (403, meli(403, "forbidden", "forbidden"), Reason.PERMISSION, "forbidden"),
    (403, {"message": "At least one policy returned UNAUTHORIZED.", "code": "PA_UNAUTHORIZED_RESULT_FROM_POLICIES",
           "status": 403, "blocked_by": "PolicyAgent"}, Reason.PERMISSION, "PA_UNAUTHORIZED_RESULT_FROM_POLICIES"),
    (403, b"<html>denied</html>", Reason.PERMISSION, None),
    (429, meli(429, "local_rate_limited", "local_rate_limited"), Reason.THROTTLED, "local_rate_limited"),
    (429, b"local_rate_limited", Reason.THROTTLED, "local_rate_limited"),  # a bare rate-limit layer body
    (429, b"", Reason.THROTTLED, None),
    (500, meli(500, "internal_error", "Internal server error"), Reason.SERVER_ERROR, "internal_error"),
    (503, b"<html>503</html>", Reason.SERVER_ERROR, None),
    (404, meli(404, "not_found", "resource not found"), Reason.CLIENT_ERROR, "not_found"),
    (400, meli(400, "bad_request"), Reason.CLIENT_ERROR, "bad_request"),
    (302, b"", Reason.INVALID_RESPONSE, None),
]


@pytest.mark.parametrize(("status", "body", "reason", "code"), ERRORS)
def test_error_table(status: int, body: Any, reason: Reason, code: str | None) -> None:
    _, outcome = drive(make_ctx(), resp(status, body))
    assert not outcome.success
    assert (outcome.reason, outcome.code, outcome.http_status) == (reason, code, status)
    assert outcome.message.startswith(f"HTTP {status}")


def test_fact_sheet_codes_and_the_observed_401_code_are_known() -> None:
    assert MercadoLibre.known_codes == {"invalid_grant", "forbidden", "local_rate_limited", "unauthorized_client",
                                       "unauthorized_application", "unauthorized"}


def exported(code: str | None) -> str:
    """The ``code`` label value, folded as the engine and the traffic classifier fold it."""
    return "" if code is None else code if code in MercadoLibre.known_codes else "other"


#: 401 answers → the (reason, code label) a probe and a production call must both show
REJECTED_TOKEN = [
    (meli(401, "unauthorized", "invalid access token"), "auth", "unauthorized"),  # unknown/expired token
    (meli(401, "unauthorized", "authorization value not present"), "auth", "unauthorized"),  # no header
    ({"message": "invalid_token", "cause": [], "error": "not_found", "status": 401}, "auth", "other"),  # older
    (b"", "auth", ""),  # no body: the status alone
]


@pytest.mark.parametrize(("body", "reason", "code"), REJECTED_TOKEN)
def test_a_rejected_token_has_the_same_labels_on_probes_and_production_traffic(body: Any, reason: str,
                                                                              code: str) -> None:
    answer = resp(401, body)
    _, probed = drive(make_ctx(), answer)
    classifier = Classifier(account="mla-main", site="MLA")
    routed = classifier.route("api.mercadolibre.com", "/users/me")
    assert routed is not None
    record = classifier.response(routed, 401, answer.headers, answer.body, 0.1)
    assert (probed.reason.value if probed.reason else "", exported(probed.code)) == (reason, code)
    assert (record.reason, record.code) == (reason, code)


def test_the_simulator_answers_a_rejected_token_with_the_known_code() -> None:
    """The simulator's 401 bodies (missing header, unknown or expired token) carry ``unauthorized``."""
    for error, _message in (sim_meli.NO_HEADER, sim_meli.BAD_TOKEN):
        assert error in MercadoLibre.known_codes


def test_the_status_leads_codes_do_not_override_429_or_5xx() -> None:
    assert read(resp(500, meli(500, "forbidden")), NOW).reason is Reason.SERVER_ERROR
    assert read(resp(429, meli(429, "forbidden")), NOW).reason is Reason.THROTTLED
    assert read(resp(401, meli(401, "local_rate_limited")), NOW).reason is Reason.AUTH


def test_throttle_honours_retry_after() -> None:
    _, outcome = drive(make_ctx(), resp(429, meli(429, "local_rate_limited"), {"retry-after": "12"}))
    assert outcome.retry_after_seconds == 12.0
    _, denied = drive(make_ctx(), resp(403, meli(403, "forbidden"), {"retry-after": "12"}))
    assert denied.retry_after_seconds is None


@pytest.mark.parametrize(("body", "raw", "code"), [
    ({"error": "forbidden", "code": "x"}, b"", "forbidden"), ({"error": "", "code": "c"}, b"", "c"),
    ({"error": 5}, b"", None), (None, b"  local_rate_limited\n", "local_rate_limited"),
    (None, b"something else", None), (None, b"\xff" * 100, None),
])
def test_error_code_sources(body: dict[str, Any] | None, raw: bytes, code: str | None) -> None:
    assert error_code(body, raw) == code


def test_hostile_error_fields_are_bounded() -> None:
    drive(make_ctx(), resp(200, USER))  # the token was revealed: the redactor knows it
    outcome = read(resp(403, meli(403, "e" * 10_000, f"bad {ACCESS} " + "m" * 10_000)), NOW)
    assert outcome.reason is Reason.PERMISSION
    assert len(outcome.code or "") <= 64 and len(outcome.message) <= 200 and ACCESS not in outcome.message


# --- success ------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"[]", b"null", b"{", {"id": "295000001"}, {"id": True}, {"id": 0},
                                  {"id": -5}, {"id": 10**30}, {"id": 1.5}, {"nickname": "x"}, b"\xff\xfe"])
def test_2xx_without_a_user_id_is_invalid_response(body: Any) -> None:
    _, outcome = drive(make_ctx(), resp(200, body))
    assert (outcome.success, outcome.reason, outcome.http_status) == (False, Reason.INVALID_RESPONSE, 200)


def test_site_mismatch_is_reported_not_failed() -> None:
    outcome = read(resp(200, USER | {"site_id": "MLB"}), NOW, "MLA")
    assert outcome.success and "site_id is MLB, configured site MLA" in outcome.message
    assert read(resp(200, USER | {"site_id": ["x"]}), NOW, "MLA").message == "token accepted"


# --- expiry: from the token production holds (6 h tokens [OBS H3]) ------------------------------


def test_token_file_expiry_is_observed_on_success_and_failure(tmp_path: Path) -> None:
    path = tmp_path / "meli-token.json"
    path.write_text(json.dumps({"access_token": "APP_USR-file-token-0001", "expires_at": "2025-10-09T14:53:20Z",
                                "refresh_token": "TG-never-read", "refresh_expires_at": 1775000000}))
    ctx = make_ctx(credentials=creds(access_token=None, token_file=str(path)))
    sent, ok = drive(ctx, resp(200, USER))
    _, failed = drive(ctx, resp(401, meli(401, "unauthorized", "invalid access token")))
    assert dict(sent[0].headers)["authorization"] == "Bearer APP_USR-file-token-0001"
    expected = {CredentialObservation(Credential.ACCESS_TOKEN, NOW + 21600),
                CredentialObservation(Credential.REFRESH_TOKEN, 1775000000.0)}
    assert set(ok.credentials) == expected and set(failed.credentials) == expected


def test_operations_and_sites() -> None:
    operation = MercadoLibre.operations["users_me"]
    assert (operation.rate_per_second, operation.burst, operation.limit_source) == (None, None, "UNCONFIRMED")
    assert {"MLA", "MLB", "MLM", "MLC", "MCO"} <= MercadoLibre.sites
