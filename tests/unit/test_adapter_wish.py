"""Wish adapter: the request, the body-code table (int or string codes, the two-faced 1006), observed
headroom from Wish-Rate-Limit-Remaining, every Reset format, expiry from the token production
holds, and the rule that it never refreshes (a refresh revokes the held access token [I1]).

No HTTP: the adapter is driven with literals. The tags in comments resolve in
docs/marketplaces/sources.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from adapter_harness import NOW, adapter_driver, context_builder, json_response
from pydantic import ValidationError

from marketplace_exporter.adapters.wish import Wish, WishCredentials, judge, read, reset_time
from marketplace_exporter.catalogue import Credential, RateLimitSource, Reason, Step
from marketplace_exporter.model import HttpResponse
from marketplace_exporter.simulator import wish as sim_wish

TOKEN = "sim-wish-access-test-0001"


def creds(**values: Any) -> WishCredentials:
    return WishCredentials.model_validate(values or {"access_token": {"value": TOKEN}})


make_ctx = context_builder(alias="us-main", site="GLOBAL", operation="oauth_test", credentials=creds)
drive = adapter_driver(Wish)


def wish(code: int | str, message: str = "", data: Any = None) -> dict[str, Any]:
    return {"message": message, "code": code, "data": {} if data is None else data}


OK = wish(0, data={"merchant_id": "5e8d000000000000000000a1"})


@pytest.mark.parametrize(("sandbox", "base_url", "operation", "url"), [
    (False, None, "oauth_test", "https://merchant.wish.com/api/v3/oauth/test"),
    (True, None, "oauth_test", "https://sandbox.merchant.wish.com/api/v3/oauth/test"),
    (False, None, "account_details", "https://merchant.wish.com/api/v3/merchant/account_details"),
    (False, "http://127.0.0.1:9763/wish/", "oauth_test", "http://127.0.0.1:9763/wish/api/v3/oauth/test"),
])
def test_the_request_is_a_get_with_the_bearer_token(sandbox: bool, base_url: str | None, operation: str,
                                                    url: str) -> None:
    sent, outcome = drive(make_ctx(sandbox=sandbox, base_url=base_url, operation=operation),
                          json_response(200, OK if operation == "oauth_test" else wish(0, data={"status": "ACTIVE"})))
    (request,) = sent
    assert (request.method, request.url, request.query, request.body, request.step) == ("GET", url, (), None, Step.CALL)
    assert dict(request.headers)["authorization"] == f"Bearer {TOKEN}"  # never v2's query parameter [I3]
    assert "authorization" in request.sensitive and outcome.success


def test_a_refresh_token_is_refused_with_the_reason() -> None:
    with pytest.raises(ValidationError, match="revoke"):
        WishCredentials.model_validate({"access_token": {"value": TOKEN}, "refresh_token": {"value": "r"}})


# (status, body, headers) → (reason, code); codes and texts [I1] unless marked
TABLE: list[tuple[int, Any, Reason | None, str | None]] = [
    (200, OK, None, None),
    (400, wish(1007, "This access token has expired"), Reason.AUTH, "1007"),
    (400, wish("1007", "This access token has expired"), Reason.AUTH, "1007"),  # quoted as in the examples
    (400, wish(1008, "This access token has been revoked"), Reason.AUTH, "1008"),
    (400, wish(1016, "This access token has been revoked."), Reason.AUTH, "1016"),  # v2 [OBS I7]
    (401, wish(1012, "Missing access token in authorization header"), Reason.AUTH, "1012"),  # [OBS I6]
    (400, wish(1006, "No access token found or the app does not existd"), Reason.AUTH, "1006"),
    (400, wish(1006, "Unauthorized access on this API"), Reason.PERMISSION, "1006"),
    (400, wish(1002, "Cannot access API due to account is disabled"), Reason.PERMISSION, "1002"),
    (400, wish(1001, "Invalid parameter"), Reason.CLIENT_ERROR, "1001"),
    (429, wish(429, "slow down"), Reason.THROTTLED, "429"),  # the 429 body code is UNCONFIRMED
    (500, wish(5000, "oops"), Reason.SERVER_ERROR, "5000"),
    (200, wish(1007, "expired"), Reason.AUTH, "1007"),  # an error in a 200 body: the code decides
    (400, wish(0, ""), Reason.CLIENT_ERROR, None),  # code 0 under an error status
    (502, b"<html>bad gateway</html>", Reason.SERVER_ERROR, None),
    (429, b"", Reason.THROTTLED, None),
    (401, b"Unauthorized", Reason.AUTH, None),
    (200, b"not json", Reason.INVALID_RESPONSE, None),
    (200, wish(True, ""), Reason.INVALID_RESPONSE, None),  # a bool is not a code
    (200, wish(0, data=[]), Reason.INVALID_RESPONSE, None),
    (200, wish(0, data={}), Reason.INVALID_RESPONSE, None),  # no merchant_id
]


@pytest.mark.parametrize(("status", "body", "reason", "code"), TABLE)
def test_the_body_code_decides(status: int, body: Any, reason: Reason | None, code: str | None) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    outcome = read("oauth_test", HttpResponse(status, {}, raw), NOW)
    assert (outcome.reason, outcome.code, outcome.http_status) == (reason, code, status)
    # production traffic gets the same labels from the same judgement
    traffic = Wish().classify("orders.list", status, {}, raw, NOW)
    if reason is not Reason.INVALID_RESPONSE or status != 200:
        assert (traffic.reason, traffic.code) == (reason, code)


def test_headroom_is_the_requests_left_on_every_answer() -> None:
    headers = {"wish-rate-limit-remaining": "287", "wish-request-id": "abc"}
    _, outcome = drive(make_ctx(), HttpResponse(200, headers, json.dumps(OK).encode()))
    rate = outcome.rate_limit
    assert rate is not None and (rate.remaining_ratio, rate.source, rate.remaining) == (
        None, RateLimitSource.OBSERVED, 287.0)  # no ratio: the window's size is UNCONFIRMED
    throttled = {"wish-rate-limit-remaining": "0", "wish-rate-limit-reset": str(int(NOW) + 42)}
    _, outcome = drive(make_ctx(), HttpResponse(429, throttled, json.dumps(wish(429)).encode()))
    assert outcome.reason is Reason.THROTTLED and outcome.retry_after_seconds == 42
    assert outcome.rate_limit is not None and (outcome.rate_limit.remaining, outcome.rate_limit.reset_at) == (
        0.0, NOW + 42)
    traffic = Wish().classify("orders.list", 200, {"wish-rate-limit-remaining": "5"}, None, NOW)
    assert traffic.success and traffic.rate_limit is not None and traffic.rate_limit.remaining == 5.0
    for garbage in ("-1", "lots", "1" * 12, ""):
        assert read("oauth_test", HttpResponse(200, {"wish-rate-limit-remaining": garbage},
                                               json.dumps(OK).encode()), NOW).rate_limit is None


@pytest.mark.parametrize(("value", "expected"), [
    (str(int(NOW) + 60), NOW + 60),  # Unix seconds
    (str(int(NOW) * 1000 + 60_000), NOW + 60),  # Unix milliseconds
    ("60", NOW + 60),  # a small number: seconds from now
    ("2025-10-09T08:54:20Z", NOW + 60),  # ISO-8601
    ("Thu, 09 Oct 2025 08:54:20 GMT", NOW + 60),  # HTTP date
    ("soon", None), ("", None), (None, None),
])
def test_reset_header_formats(value: str | None, expected: float | None) -> None:
    assert reset_time(value, NOW) == expected  # the format is UNCONFIRMED [I1]: all are accepted


def test_account_details_exports_whether_the_account_is_active() -> None:
    for status, value in (("ACTIVE", 1.0), ("INACTIVE", 0.0)):
        _, outcome = drive(make_ctx(operation="account_details"), json_response(200, wish(0, data={"status": status})))
        assert outcome.success and outcome.values == (("account_active", value),)


def test_expiry_comes_from_the_token_file_wish_wrote(tmp_path: Path) -> None:
    # the ERP stores Wish's refresh answer's data object: expiry_time is absolute [I1][OBS I7]
    path = tmp_path / "wish.json"
    path.write_text(json.dumps({"access_token": TOKEN, "refresh_token": "never read",
                                "expiry_time": "2025-11-08T08:53:20.000+00:00", "merchant_id": "m"}))
    _, outcome = drive(make_ctx(credentials=creds(token_file=str(path))),
                       json_response(400, wish(1007, "This access token has expired")))
    assert outcome.reason is Reason.AUTH  # expiry is exported on failures too
    assert [(o.credential, o.expires_at) for o in outcome.credentials] == [
        (Credential.ACCESS_TOKEN, NOW + 30 * 86400)]


def test_the_simulators_answers_read_as_the_fact_sheet_says() -> None:
    for (number, message, status), reason in ((sim_wish.EXPIRED, Reason.AUTH), (sim_wish.REVOKED, Reason.AUTH),
                                              (sim_wish.NO_TOKEN, Reason.AUTH), (sim_wish.MISSING_TOKEN, Reason.AUTH),
                                              (sim_wish.NO_SCOPE, Reason.PERMISSION),
                                              (sim_wish.DISABLED, Reason.PERMISSION),
                                              (sim_wish.THROTTLED, Reason.THROTTLED)):
        answer = wish(number, message)
        outcome = judge(HttpResponse(status, {}, json.dumps(answer).encode()), answer, NOW)
        assert outcome is not None and (outcome.reason, outcome.code) == (reason, str(number))
