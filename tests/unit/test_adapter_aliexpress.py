"""AliExpress adapter: the /sync request, signing without a path prefix, IOP and legacy TOP errors,
hostile bodies, held tokens.

No HTTP: the adapter is driven with literals. Facts under test are from the sources in
docs/marketplaces/sources.md, [X…] tags included.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import pytest
from adapter_harness import NOW, adapter_driver, context_builder, json_response

from marketplace_exporter.adapters.aliexpress import (
    DEFAULT_METHOD,
    HOST,
    AliExpress,
    AliExpressCredentials,
    AliExpressParams,
    read,
)
from marketplace_exporter.adapters.iop_signing import sign
from marketplace_exporter.catalogue import Credential, Reason, Step
from marketplace_exporter.model import (
    CredentialObservation,
    RequestSpec,
)

APP_KEY, APP_SECRET = "500731", "test-aliexpress-app-secret"
SESSION = "50000900a38bGkcsqyiTqRwqYwh8JgCkEpGZ1c2ee6e9fSxZGdHrStVYnxP3"
PROFILE_KEY = "aliexpress_solution_merchant_profile_get_response"
PROFILE = {PROFILE_KEY: {"country_code": "ES", "product_posting_forbidden": False,
                         "merchant_login_id": "es1329072766xyzq", "shop_id": 1234321,
                         "shop_name": "test store", "shop_type": "official",
                         "shop_url": "//www.aliexpress.com/store/1234321", "request_id": "2101"}}


def creds(**overrides: Any) -> AliExpressCredentials:
    values: dict[str, Any] = {"app_key": APP_KEY, "app_secret": {"value": APP_SECRET},
                              "access_token": {"value": SESSION}}
    return AliExpressCredentials.model_validate({**values, **overrides})


make_ctx = context_builder(alias="global-main", site="GLOBAL", operation="merchant_profile",
                           credentials=creds, params=AliExpressParams)
drive = adapter_driver(AliExpress)
resp = json_response


def form(request: RequestSpec) -> dict[str, str]:
    assert request.body is not None
    return dict(parse_qsl(request.body.decode(), keep_blank_values=True, strict_parsing=True))


def iop_error(code: str, error_type: str | None = "ISV", message: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": "2140e4d716"}
    if error_type is not None:
        body["type"] = error_type
    return body


def top_error(code: Any, msg: str = "", sub_code: str = "", sub_msg: str = "") -> dict[str, Any]:
    return {"error_response": {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg,
                               "request_id": "rxvsf5lo4ufl"}}


# --- request building ---------------------------------------------------------------------------


@pytest.mark.parametrize(("base_url", "sandbox", "url"), [
    (None, False, "https://api-sg.aliexpress.com/sync"),
    (None, True, "https://api-sg.aliexpress.com/sync"),  # no sandbox host is known (UNCONFIRMED)
    ("http://127.0.0.1:9763/aliexpress", False, "http://127.0.0.1:9763/aliexpress/sync"),
    ("http://127.0.0.1:9763/aliexpress/", True, "http://127.0.0.1:9763/aliexpress/sync"),
])
def test_business_call_on_sync(base_url: str | None, sandbox: bool, url: str) -> None:
    sent, outcome = drive(make_ctx(base_url=base_url, sandbox=sandbox), resp(200, PROFILE))
    request = sent[0]
    assert (request.method, request.url, request.step, request.query) == ("POST", url, Step.CALL, ())
    assert dict(request.headers)["content-type"].startswith("application/x-www-form-urlencoded")
    fields = form(request)
    assert fields == {"app_key": APP_KEY, "method": DEFAULT_METHOD, "sign_method": "sha256",
                      "timestamp": "1760000000000", "session": SESSION, "format": "json",
                      "simplify": "false", "sign": fields["sign"]}
    unsigned = {key: value for key, value in fields.items() if key != "sign"}
    # business API: signed WITHOUT a path prefix, ``method`` itself signed [E1][E8]
    assert fields["sign"] == sign(APP_SECRET, unsigned)
    assert fields["sign"] != sign(APP_SECRET, unsigned, "/sync")
    assert {"session", "access_token", "sign"} <= request.sensitive
    assert outcome.success and HOST == "https://api-sg.aliexpress.com"


def test_token_param_and_method_are_configurable() -> None:
    params = AliExpressParams(method="aliexpress.solution.seller.category.tree.query",
                              token_param="access_token")
    sent, _ = drive(make_ctx(params=params), resp(200, {"code": "0"}))
    fields = form(sent[0])
    assert fields["access_token"] == SESSION and "session" not in fields
    assert fields["method"] == "aliexpress.solution.seller.category.tree.query"
    assert fields["sign"] == sign(APP_SECRET, {k: v for k, v in fields.items() if k != "sign"})


def test_auth_url_is_never_used_and_one_request_only() -> None:
    sent, outcome = drive(make_ctx(auth_url="http://127.0.0.1:9763/aliexpress/rest"), resp(200, PROFILE))
    assert len(sent) == 1 and sent[0].url.endswith("/sync") and outcome.success


def test_timestamp_is_milliseconds() -> None:
    sent, _ = drive(make_ctx(now=NOW + 0.5), resp(200, PROFILE))
    assert form(sent[0])["timestamp"] == "1760000000500"


def test_unavailable_secret_fails_without_a_request() -> None:
    sent, outcome = drive(make_ctx(credentials=creds(app_secret="${MARKETPLACE_EXPORTER_TEST_UNSET_VAR}")))
    assert sent == [] and outcome.reason is Reason.AUTH


def test_unknown_operation_is_internal() -> None:
    sent, outcome = drive(make_ctx(operation="orders"))
    assert sent == [] and outcome.reason is Reason.INTERNAL


@pytest.mark.parametrize("params", [
    {"method": "/auth/token/refresh"},  # path-style system APIs are not health probes
    {"method": "aliexpress"}, {"method": "aliexpress.x y.z"}, {"method": "taobao.user.get"},
    {"method": "aliexpress.solution.merchant.profile.get&session=x"},
    {"token_param": "token"}, {"colour": "red"},
])
def test_params_rejects(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        AliExpressParams.model_validate(params)


# --- the IOP envelope [E1]: the body decides whatever the status --------------------------------

IOP_ERRORS = [
    ("IllegalAccessToken", "ISV", "The specified access token is invalid or expired", Reason.AUTH),
    ("ApiCallLimit", "ISV", "Api access frequency exceeds the limit. this ban will last 2 seconds",
     Reason.THROTTLED),  # [OBS E11]
    ("IncompleteSignature", "ISV", "The request signature does not conform to platform standards",
     Reason.CLIENT_ERROR),  # [OBS E10]
    ("InvalidAppKey", "ISV", "The specified App Key is invalid", Reason.CLIENT_ERROR),
    ("InternalError", "ISP", "", Reason.SERVER_ERROR),
    ("Whatever", "SYSTEM", "", Reason.SERVER_ERROR),
    ("Whatever", None, "", Reason.CLIENT_ERROR),
    ("InsufficientPermission", "ISV", "", Reason.PERMISSION),
]


@pytest.mark.parametrize("status", [200, 400, 429, 500])
@pytest.mark.parametrize(("code", "error_type", "message", "reason"), IOP_ERRORS)
def test_iop_errors(code: str, error_type: str | None, message: str, reason: Reason, status: int) -> None:
    _, outcome = drive(make_ctx(), resp(status, iop_error(code, error_type, message)))
    assert (outcome.success, outcome.reason, outcome.code, outcome.http_status) == (False, reason, code, status)


@pytest.mark.parametrize("status", [200, 400, 500])
@pytest.mark.parametrize(("code", "error_type", "reason"), [
    ("IllegalAccessToken", "ISV", Reason.AUTH), ("IncompleteSignature", "ISV", Reason.CLIENT_ERROR),
    ("InvalidAppKey", "ISV", Reason.CLIENT_ERROR), ("Busy", "ISP", Reason.SERVER_ERROR),
])
def test_iop_codes_inside_error_response(code: str, error_type: str, reason: Reason, status: int) -> None:
    # seen in third-party fixtures: the IOP code and type inside TOP's wrapper
    body = {"error_response": {"type": error_type, "code": code, "msg": "m", "request_id": "2138"}}
    outcome = read(resp(status, body), NOW, DEFAULT_METHOD)
    assert (outcome.reason, outcome.code) == (reason, code)


# --- legacy TOP error_response [OBS E11][X5] ----------------------------------------------------

TOP_ERRORS = [
    (7, "App Call Limited", "accesscontrol.limited-by-app-api-access-count",
     "This ban will last for 2 more seconds", Reason.THROTTLED, 2.0),
    ("7", "App Call Limited", "", "", Reason.THROTTLED, None),
    (11, "Insufficient isv permissions", "isv.permission-ip-whitelist-limit", "ip not allowed",
     Reason.PERMISSION, None),
    (27, "Invalid session", "invalid-sessionkey", "SessionKey非法", Reason.AUTH, None),
    (15, "Remote service error", "isp.top-remote-unknown-error", "", Reason.SERVER_ERROR, None),
    (15, "Remote service error", "isv.invalid-parameter", "", Reason.CLIENT_ERROR, None),
    (15, "Remote service error", "isv.invalid-permission", "", Reason.PERMISSION, None),
    (99, "Daily limit", "accesscontrol.limited-by-app-access-count", "", Reason.THROTTLED, None),
    (40, "Missing required arguments", "", "", Reason.CLIENT_ERROR, None),
]


@pytest.mark.parametrize("status", [200, 500])
@pytest.mark.parametrize(("code", "msg", "sub_code", "sub_msg", "reason", "retry"), TOP_ERRORS)
def test_legacy_top_errors(code: Any, msg: str, sub_code: str, sub_msg: str, reason: Reason,
                           retry: float | None, status: int) -> None:
    _, outcome = drive(make_ctx(), resp(status, top_error(code, msg, sub_code, sub_msg)))
    assert (outcome.reason, outcome.code, outcome.retry_after_seconds) == (reason, str(code), retry)
    assert outcome.message.startswith(f"{code}: {msg}")


def test_every_fact_sheet_code_is_known() -> None:
    assert {"ApiCallLimit", "IncompleteSignature", "IllegalAccessToken", "7"} <= AliExpress.known_codes
    assert {"11", "27"} <= AliExpress.known_codes  # observed beyond the fact sheet [X5]


@pytest.mark.parametrize("error", [{}, {"code": None}, {"code": [7]}, {"code": True}, {"msg": "no code"}])
def test_error_response_without_a_usable_code(error: dict[str, Any]) -> None:
    outcome = read(resp(200, {"error_response": error}), NOW, DEFAULT_METHOD)
    assert (outcome.success, outcome.reason, outcome.code) == (False, Reason.INVALID_RESPONSE, None)


# --- success and everything else ----------------------------------------------------------------


@pytest.mark.parametrize(("forbidden", "value"), [(False, 0.0), (True, 1.0)])
def test_merchant_profile_exports_posting_forbidden(forbidden: bool, value: float) -> None:
    body = {PROFILE_KEY: {**PROFILE[PROFILE_KEY], "product_posting_forbidden": forbidden}}
    outcome = read(resp(200, body), NOW, DEFAULT_METHOD)
    assert outcome.success and outcome.values == (("product_posting_forbidden", value),)


@pytest.mark.parametrize("body", [{**PROFILE, "code": "0"}, {"code": "0", "request_id": "x"},
                                  {PROFILE_KEY: {"product_posting_forbidden": "no"}}])
def test_other_success_shapes(body: dict[str, Any]) -> None:
    outcome = read(resp(200, body), NOW, DEFAULT_METHOD)
    assert outcome.success and outcome.reason is None


def test_another_method_is_read_by_its_own_wrapper() -> None:
    method = "aliexpress.solution.seller.category.tree.query"
    ok = read(resp(200, {"aliexpress_solution_seller_category_tree_query_response": {}}), NOW, method)
    wrong = read(resp(200, PROFILE), NOW, method)
    assert ok.success and ok.values == () and not wrong.success


@pytest.mark.parametrize("body", [b"", b"<html>gateway error</html>", b"[]", b"\xff", b"{" * 100_000,
                                  {"request_id": "x"}, {PROFILE_KEY: "not an object"}, {"result": {}}])
@pytest.mark.parametrize(("status", "reason"), [
    (200, Reason.INVALID_RESPONSE), (401, Reason.AUTH), (404, Reason.CLIENT_ERROR),
    (429, Reason.THROTTLED), (502, Reason.SERVER_ERROR),
])
def test_without_envelope_status_decides(body: Any, status: int, reason: Reason) -> None:
    _, outcome = drive(make_ctx(), resp(status, body))
    assert (outcome.success, outcome.reason, outcome.code, outcome.http_status) == (False, reason, None, status)


@pytest.mark.parametrize(("status", "reason"), [(500, Reason.SERVER_ERROR), (403, Reason.PERMISSION)])
def test_success_body_with_failing_status_is_not_success(status: int, reason: Reason) -> None:
    outcome = read(resp(status, PROFILE), NOW, DEFAULT_METHOD)
    assert (outcome.success, outcome.reason) == (False, reason)


@pytest.mark.parametrize("code", [None, True, [], 1.5])
def test_hostile_iop_code(code: Any) -> None:
    outcome = read(resp(200, {"code": code, "type": "ISV"}), NOW, DEFAULT_METHOD)
    assert (outcome.success, outcome.reason) == (False, Reason.INVALID_RESPONSE)


def test_error_message_is_bounded_and_never_shows_the_session() -> None:
    drive(make_ctx(), resp(200, PROFILE))  # the adapter revealed SESSION: the redactor knows it
    body = top_error(27, "Invalid session", "invalid-sessionkey", f"session {SESSION} " + "z" * 10_000)
    outcome = read(resp(200, body), NOW, DEFAULT_METHOD)
    assert SESSION not in outcome.message and len(outcome.message) <= 200


def test_throttle_without_ban_text_uses_retry_after() -> None:
    _, outcome = drive(make_ctx(), resp(200, iop_error("ApiCallLimit"), {"retry-after": "30"}))
    assert (outcome.reason, outcome.retry_after_seconds) == (Reason.THROTTLED, 30.0)


# --- held tokens --------------------------------------------------------------------------------


def test_configured_expiry_is_observed_on_success_and_failure() -> None:
    ctx = make_ctx(credentials=creds(access_token_expires_at=datetime(2025, 11, 1, tzinfo=UTC)))
    expected = (CredentialObservation(Credential.ACCESS_TOKEN, datetime(2025, 11, 1, tzinfo=UTC).timestamp()),)
    _, ok = drive(ctx, resp(200, PROFILE))
    _, failed = drive(ctx, resp(200, iop_error("IllegalAccessToken")))
    assert ok.credentials == expected and failed.credentials == expected


@pytest.mark.parametrize("overrides", [
    {"refresh_token": {"value": "r"}}, {"auto_refresh": True},  # rotation UNCONFIRMED: never refresh
    {"access_token": None}, {"app_key": "a b"}, {"app_secret": "literal"},
])
def test_credentials_rejects(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        creds(**overrides)


def test_static_description() -> None:
    operation = AliExpress.operations["merchant_profile"]
    assert (operation.rate_per_second, operation.burst, operation.limit_source) == (None, None, "UNCONFIRMED")
    assert AliExpress.sites == {"GLOBAL"}
    assert AliExpressParams() == AliExpressParams(method=DEFAULT_METHOD, token_param="session")
