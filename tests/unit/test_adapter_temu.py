"""Temu adapter: the signed router request, the errorCode table (whatever the HTTP status), the
authorisation expiry and scope drift from one bg.open.accesstoken.info.get, and no refresh field.

No HTTP: the adapter is driven with literals. The signing itself is pinned against Temu's worked
example in test_temu_signing.py; the tags resolve in docs/marketplaces/sources.md."""

from __future__ import annotations

import json
from typing import Any

import pytest
from adapter_harness import NOW, adapter_driver, context_builder, json_response
from pydantic import ValidationError

from marketplace_exporter.adapters.temu import INFO_TYPE, Temu, TemuCredentials, TemuParams, read
from marketplace_exporter.adapters.temu_signing import sign
from marketplace_exporter.catalogue import Credential, Reason
from marketplace_exporter.model import HttpResponse

APP_KEY, SECRET, TOKEN = "0123456789abcdef0123456789abcdef", "test-temu-secret-0001", "test-temu-token-0001"


def creds(**values: Any) -> TemuCredentials:
    base: dict[str, Any] = {"app_key": APP_KEY, "app_secret": {"value": SECRET}, "access_token": {"value": TOKEN}}
    return TemuCredentials.model_validate(base | values)


make_ctx = context_builder(alias="us-main", site="US", operation="accesstoken_info", credentials=creds,
                           params=TemuParams)
drive = adapter_driver(Temu)


def temu(code: int, message: str = "", result: Any = None, success: bool | None = None) -> dict[str, Any]:
    return {"success": code == 1000000 if success is None else success, "errorCode": code, "errorMsg": message,
            "requestId": "us-0b0bfc9c-f61d-4530-b1a3-bb19704de637", "result": result}


INFO = {"accessToken": TOKEN, "expiredTime": int(NOW) + 86400 * 100, "mallId": 634418210000001, "regionId": 211,
        "apiScopeList": [INFO_TYPE, "bg.order.list.v2.get"]}
OK = temu(1000000, "SUCCESS", INFO)


@pytest.mark.parametrize(("site", "base_url", "url"), [
    ("US", None, "https://openapi-b-us.temu.com/openapi/router"),
    ("EU", None, "https://openapi-b-eu.temu.com/openapi/router"),
    ("GLOBAL", None, "https://openapi-b-global.temu.com/openapi/router"),
    ("US", "http://127.0.0.1:9763/temu/us/", "http://127.0.0.1:9763/temu/us/openapi/router"),
])
def test_a_signed_post_to_the_sites_router(site: str, base_url: str | None, url: str) -> None:
    sent, outcome = drive(make_ctx(site=site, base_url=base_url), json_response(200, OK))
    (request,) = sent
    assert (request.method, request.url, request.query) == ("POST", url, ())
    assert dict(request.headers)["content-type"] == "application/json"
    assert request.body is not None
    body = json.loads(request.body)
    params = {key: value for key, value in body.items() if key != "sign"}
    assert params == {"type": INFO_TYPE, "app_key": APP_KEY, "timestamp": int(NOW), "data_type": "JSON",
                      "access_token": TOKEN}  # [J1 dg/12]
    assert body["sign"] == sign(SECRET, params) and len(body["sign"]) == 32 and body["sign"].isupper()
    assert outcome.success


def test_success_exports_the_authorisation_expiry_and_the_granted_apis() -> None:
    _, outcome = drive(make_ctx(), json_response(200, OK))
    assert outcome.success and outcome.values == (("api_scopes", 2.0),)
    assert [(o.credential, o.expires_at) for o in outcome.credentials] == [
        (Credential.AUTHORIZATION, NOW + 86400 * 100)]  # expiredTime is the authorisation's end [J1 dg/07]


def test_a_required_api_no_longer_granted_is_a_permission_failure() -> None:
    params = TemuParams(required_scopes=("bg.order.list.v2.get", "bg.logistics.shipment.confirm"))
    _, outcome = drive(make_ctx(params=params), json_response(200, OK))
    assert (outcome.success, outcome.reason) == (False, Reason.PERMISSION)
    assert "bg.logistics.shipment.confirm" in outcome.message
    assert outcome.values == (("api_scopes", 2.0), ("required_scopes_missing", 1.0))
    assert outcome.credentials  # the expiry is still exported


def test_no_refresh_field() -> None:
    with pytest.raises(ValidationError, match="no refresh flow"):
        creds(refresh_token={"value": "x"})


TABLE: list[tuple[int, Any, Reason | None, str | None]] = [
    (200, OK, None, None),
    (200, temu(3000034, "access_token is expired or have been refreshed"), Reason.AUTH, "3000034"),
    (200, temu(3000031, "access_token not exists"), Reason.AUTH, "3000031"),
    (200, temu(3000033, "not mapping"), Reason.AUTH, "3000033"),
    (200, temu(3000032, "no permission"), Reason.PERMISSION, "3000032"),
    (200, temu(5000003, "NOT_IN_IP_WHITE_LIST"), Reason.PERMISSION, "5000003"),  # the IP allow-list [J1 dg/09]
    (200, temu(3000022, "app suspended"), Reason.PERMISSION, "3000022"),
    (200, temu(4000004, "too frequent requests"), Reason.THROTTLED, "4000004"),
    (429, temu(4000004, "too frequent requests"), Reason.THROTTLED, "4000004"),
    (200, temu(4000000, "SYSTEM_EXCEPTION"), Reason.SERVER_ERROR, "4000000"),
    (200, temu(3000001, "SIGN_UNVALID"), Reason.CLIENT_ERROR, "3000001"),
    (200, temu(3000004, "type has been sunset"), Reason.CLIENT_ERROR, "3000004"),
    (500, temu(3000034, "expired"), Reason.AUTH, "3000034"),  # the code wins over the status
    (200, temu(9999999, "brand new"), Reason.CLIENT_ERROR, "9999999"),
    (503, temu(9999999, "brand new"), Reason.SERVER_ERROR, "9999999"),
    (200, {**temu(1000000, "SUCCESS", INFO), "errorCode": "1000000"}, None, None),  # a string code parses
    (200, temu(1000000, "SUCCESS", INFO, success=False), Reason.INVALID_RESPONSE, None),
    (200, temu(1000000, "SUCCESS", {"apiScopeList": "all"}), Reason.INVALID_RESPONSE, None),
    (502, b"<html>bad gateway</html>", Reason.SERVER_ERROR, None),
    (200, b"[]", Reason.INVALID_RESPONSE, None),
]


@pytest.mark.parametrize(("status", "body", "reason", "code"), TABLE)
def test_the_error_code_decides_whatever_the_status(status: int, body: Any, reason: Reason | None,
                                                     code: str | None) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    outcome = read(HttpResponse(status, {}, raw), NOW, ())
    assert (outcome.reason, outcome.code) == (reason, code)
    if code == "3000001":
        assert "token's state is unknown" in outcome.message  # a bad sign hides it [J1 sop-3000001]
    traffic = Temu().classify("router", status, {}, raw, NOW)
    if body is not TABLE[17][1]:  # a scope list that is not a list is only the probe's concern
        assert (traffic.reason, traffic.code) == (reason, code)
