"""Generic HTTP check: params validation, the JSONPath subset, request building, classification,
extraction, hostile bodies, and the shared response helpers. No HTTP: literals only."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from adapter_harness import NOW, context_builder, drive_probe, json_response

from marketplace_exporter import __version__
from marketplace_exporter.adapters.base import ProbeContext, json_document
from marketplace_exporter.adapters.common import (
    finite_number,
    reason_for_status,
    retry_after_seconds,
    short,
    unix_time,
)
from marketplace_exporter.adapters.http import (
    HttpCheck,
    HttpParams,
    JsonPathError,
    json_equal,
    parse_json_path,
    resolve,
)
from marketplace_exporter.catalogue import Reason, Step
from marketplace_exporter.model import HttpResponse, ProbeOutcome, RequestSpec
from marketplace_exporter.secrets import REDACTED, Secret

URL = "https://erp.example.com/health"


def params(**values: Any) -> HttpParams:
    return HttpParams.model_validate({"url": URL} | values)


def make_ctx(p: HttpParams) -> ProbeContext:
    return context_builder(alias="self", site="global", operation="request", credentials=lambda: None,
                           params=lambda: p)()


def drive(p: HttpParams, response: HttpResponse | None = None) -> tuple[list[RequestSpec], ProbeOutcome]:
    """At most one request: the response to it (None: the adapter must not send any)."""
    return drive_probe(HttpCheck(), make_ctx(p), *([] if response is None else [response]))


def resp(status: int = 200, body: Any = b"", headers: dict[str, str] | None = None) -> HttpResponse:
    return json_response(status, body, headers)


def check(p: HttpParams, response: HttpResponse) -> ProbeOutcome:
    return drive(p, response)[1]


# --- JSONPath subset ----------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "steps"), [
    ("$", ()),
    ("$.status", ("status",)),
    ("$.a.b[0]", ("a", "b", 0)),
    ("$[2]", (2,)),
    ("$.orders[-1].updated_at", ("orders", -1, "updated_at")),
    ("$['last-sync at']", ("last-sync at",)),
    ('$["a.b"][0]', ("a.b", 0)),
    ("$.queue-depth_2", ("queue-depth_2",)),
])
def test_json_path_parses(path: str, steps: tuple[str | int, ...]) -> None:
    assert parse_json_path(path) == steps


@pytest.mark.parametrize(("path", "message"), [
    ("status", "must start with '$'"),
    ("$.", "expected a key after '.' at position 1"),
    ("$..a", "expected a key after '.' at position 1"),
    ("$.a[*]", "unexpected '[' at position 3"),
    ("$.a[0:2]", "unexpected '[' at position 3"),
    ("$.a b", "unexpected ' ' at position 3"),
    ("$[?(@.x)]", "unexpected '[' at position 1"),
])
def test_json_path_errors_say_where(path: str, message: str) -> None:
    with pytest.raises(JsonPathError, match=re.escape(message)):
        parse_json_path(path)


DOC = {"a": {"b": [10, {"c": None}]}, "list": [1, 2, 3], "flag": False}


@pytest.mark.parametrize(("path", "expected"), [
    ("$", DOC), ("$.a.b[0]", 10), ("$.a.b[1].c", None), ("$.list[-1]", 3), ("$.flag", False),
])
def test_resolve_finds(path: str, expected: Any) -> None:
    assert resolve(DOC, parse_json_path(path)) == expected


@pytest.mark.parametrize("path", ["$.missing", "$.a.b[2]", "$.a.b[-3]", "$.list.x", "$.a[0]", "$.flag.x",
                                  "$.a.b[0].c"])
def test_resolve_missing(path: str) -> None:
    from marketplace_exporter.adapters.http import _MISSING
    assert resolve(DOC, parse_json_path(path)) is _MISSING


@pytest.mark.parametrize(("got", "want", "equal"), [
    (1, 1.0, True), (True, 1, False), (1, True, False), (False, False, True), (None, None, True),
    ("ok", "ok", True), ("1", 1, False), ([1, {"a": True}], [1.0, {"a": True}], True),
    ([1, 2], [1], False), ({"a": 1}, {"a": 1, "b": 2}, False), ({"a": 1}, {"a": True}, False),
])
def test_json_equal(got: Any, want: Any, equal: bool) -> None:
    assert json_equal(got, want) is equal


# --- params validation --------------------------------------------------------------------------


@pytest.mark.parametrize(("values", "message"), [
    ({"url": "ftp://x/y"}, "absolute http"),
    ({"url": "/relative"}, "absolute http"),
    ({"url": "https://exa mple.com"}, "absolute http"),
    ({"url": "https://user:pw@erp.example.com/"}, "must not carry user:password"),
    ({"method": "DELETE"}, "method"),
    ({"body": "{}"}, "only allowed with method POST"),
    ({"method": "HEAD", "expect_json": [{"path": "$.a", "exists": True}]}, "method HEAD returns no body"),
    ({"expect_status": [200, 700]}, "100-599"),
    ({"expect_json": [{"path": "$.a"}]}, "exactly one of 'equals' or 'exists'"),
    ({"expect_json": [{"path": "$.a", "equals": 1, "exists": True}]}, "exactly one of 'equals' or 'exists'"),
    ({"expect_json": [{"path": "a", "exists": True}]}, "must start with '\\$'"),
    ({"extract": [{"name": "x"}]}, "exactly one of 'json_path' or 'header'"),
    ({"extract": [{"name": "x", "json_path": "$.a", "header": "age"}]}, "exactly one of 'json_path'"),
    ({"extract": [{"name": "Bad-Name", "json_path": "$.a"}]}, "pattern"),
    ({"extract": [{"name": "x", "header": "bad header"}]}, "not a valid header name"),
    ({"extract": [{"name": "x", "json_path": "$.a"}, {"name": "x", "json_path": "$.b"}]}, "unique"),
    ({"extract": [{"name": "x", "json_path": "$.a", "kind": "ratio"}]}, "kind"),
    ({"headers": {"X-A": "a\r\nInjected: 1"}}, "line breaks"),
    ({"headers": {"bad header": "a"}}, "not a valid header name"),
    ({"headers": {"X-A": "1", "x-a": "2"}}, "given twice"),
    ({"headers": {"Authorization": {"env": "X"}}}, "expected"),
    ({"timeout": "5s"}, "Extra inputs"),
])
def test_params_rejected_with_a_clear_message(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        params(**values)


def test_params_accepted_and_secret_headers_parsed() -> None:
    p = params(method="POST", body='{"ping": 1}', headers={
        "Authorization": "${ERP_TOKEN}", "X-Key": {"file": "/run/secrets/erp"}, "X-Lit": {"value": "s3cr3t"},
        "Content-Type": "application/json"},
        expect_status=[200, 204], expect_json=[{"path": "$.status", "equals": "ok"},
                                               {"path": "$.error", "equals": None},
                                               {"path": "$.errors", "exists": False}],
        extract=[{"name": "lag_seconds", "json_path": "$.synced_at", "kind": "seconds_since"},
                 {"name": "age", "header": "Age"}])
    assert isinstance(p.headers["Authorization"], Secret) and p.headers["Authorization"].source == "env"
    assert isinstance(p.headers["X-Key"], Secret) and isinstance(p.headers["X-Lit"], Secret)
    assert p.headers["Content-Type"] == "application/json"
    assert "equals" in p.expect_json[1].model_fields_set  # equals: null is an assertion, not absent
    # the config loader re-validates parsed values: that must round-trip
    again = HttpParams.model_validate({key: getattr(p, key) for key in HttpParams.model_fields})
    assert again.headers["Authorization"] is p.headers["Authorization"]
    assert "s3cr3t" not in json.dumps(p.model_dump(mode="json"))


# --- request building ---------------------------------------------------------------------------


def test_request_splits_query_and_marks_secret_headers_sensitive() -> None:
    p = params(url="https://erp.example.com/api/health?deep=1&token=abc#frag",
               headers={"Authorization": {"value": "Bearer top-secret"}, "X-Trace": "yes"})
    sent, outcome = drive(p, resp(200))
    request = sent[0]
    assert (request.method, request.url, request.step, request.body) == (
        "GET", "https://erp.example.com/api/health", Step.CALL, None)
    assert request.query == (("deep", "1"), ("token", "abc"))
    headers = dict(request.headers)
    assert headers["authorization"] == "Bearer top-secret" and headers["x-trace"] == "yes"
    assert headers["user-agent"] == f"marketplace-exporter/{__version__}"
    assert {"authorization", "token"} <= request.sensitive and "x-trace" not in request.sensitive
    assert outcome.success


def test_post_body_and_own_user_agent() -> None:
    sent, _ = drive(params(method="POST", body="ping", headers={"User-Agent": "erp-probe/1"}), resp(204))
    assert sent[0].body == b"ping"
    assert [v for k, v in sent[0].headers if k == "user-agent"] == ["erp-probe/1"]


def test_unavailable_header_secret_fails_without_a_request() -> None:
    sent, outcome = drive(params(headers={"Authorization": "${MARKETPLACE_EXPORTER_TEST_UNSET_VAR}"}))
    assert sent == [] and outcome.reason is Reason.AUTH


# --- status -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("expect", "status", "reason"), [
    ([], 200, None), ([], 204, None), ([], 299, None),
    ([], 301, Reason.ASSERTION_FAILED), ([], 100, Reason.ASSERTION_FAILED),
    ([], 400, Reason.CLIENT_ERROR), ([], 401, Reason.AUTH), ([], 403, Reason.PERMISSION),
    ([], 404, Reason.CLIENT_ERROR), ([], 429, Reason.THROTTLED), ([], 500, Reason.SERVER_ERROR),
    ([], 503, Reason.SERVER_ERROR),
    ([200], 204, Reason.ASSERTION_FAILED), ([200], 200, None), ([401], 401, None), ([503], 503, None),
    ([200, 302], 302, None), ([200], 500, Reason.SERVER_ERROR),
])
def test_status_classification(expect: list[int], status: int, reason: Reason | None) -> None:
    outcome = check(params(expect_status=expect), resp(status, b"<html/>"))
    assert outcome.success is (reason is None)
    assert (outcome.reason, outcome.http_status, outcome.code) == (reason, status, None)
    if reason is not None:
        assert outcome.message == f"HTTP {status}, expected {','.join(map(str, expect)) or '2xx'}"


def test_429_honours_retry_after() -> None:
    assert check(params(), resp(429, headers={"retry-after": "12"})).retry_after_seconds == 12.0


# --- JSON assertions ----------------------------------------------------------------------------

BODY = {"status": "degraded", "ok": True, "count": 3, "errors": [], "detail": None, "big": "z" * 500}


@pytest.mark.parametrize(("expectation", "message"), [
    ({"path": "$.status", "equals": "ok"}, '$.status: expected "ok", got "degraded"'),
    ({"path": "$.ok", "equals": 1}, "$.ok: expected 1, got true"),
    ({"path": "$.count", "equals": "3"}, '$.count: expected "3", got 3'),
    ({"path": "$.missing", "equals": None}, "$.missing: expected null, got nothing"),
    ({"path": "$.errors", "exists": False}, "$.errors: expected absent, got []"),
    ({"path": "$.nope", "exists": True}, "$.nope: expected present, got nothing"),
])
def test_json_assertion_failures_name_path_expected_and_got(expectation: dict[str, Any],
                                                            message: str) -> None:
    outcome = check(params(expect_json=[expectation]), resp(200, BODY))
    assert (outcome.reason, outcome.message, outcome.http_status) == (Reason.ASSERTION_FAILED, message, 200)


@pytest.mark.parametrize("expectation", [
    {"path": "$.status", "equals": "degraded"}, {"path": "$.count", "equals": 3.0},
    {"path": "$.detail", "equals": None}, {"path": "$.detail", "exists": True},
    {"path": "$.nope", "exists": False}, {"path": "$.errors", "equals": []},
])
def test_json_assertions_that_hold(expectation: dict[str, Any]) -> None:
    assert check(params(expect_json=[expectation]), resp(200, BODY)).success


def test_long_values_are_truncated_in_messages() -> None:
    outcome = check(params(expect_json=[{"path": "$.big", "equals": "small"}]), resp(200, BODY))
    assert outcome.reason is Reason.ASSERTION_FAILED
    assert len(outcome.message) < 120 and outcome.message.endswith("…")


def test_top_level_array_body() -> None:
    outcome = check(params(expect_json=[{"path": "$[0].id", "equals": 7}]), resp(200, [{"id": 7}]))
    assert outcome.success


@pytest.mark.parametrize("body", [b"", b"<html>ok</html>", b"\xff\xfe", b"[" * 100_000, b"1" * 5000,
                                  b'{"a": 1} trailing', b"{'single': 'quotes'}"])
def test_hostile_bodies_are_invalid_response(body: bytes) -> None:
    outcome = check(params(expect_json=[{"path": "$.a", "exists": True}]), resp(200, body))
    assert (outcome.success, outcome.reason) == (False, Reason.INVALID_RESPONSE)


def test_body_is_not_parsed_when_nothing_needs_it() -> None:
    assert check(params(), resp(200, b"\xff not json")).success


# --- extraction ---------------------------------------------------------------------------------

SYNCED = datetime(2025, 10, 9, 8, 50, 0, tzinfo=UTC).timestamp()  # 200 s before NOW


@pytest.mark.parametrize(("extraction", "body", "headers", "value"), [
    ({"json_path": "$.q"}, {"q": 12}, {}, 12.0),
    ({"json_path": "$.q"}, {"q": 2.5}, {}, 2.5),
    ({"json_path": "$.q"}, {"q": " 7 "}, {}, 7.0),
    ({"json_path": "$.q"}, {"q": True}, {}, 1.0),
    ({"json_path": "$.q"}, {"q": False}, {}, 0.0),
    ({"json_path": "$.t", "kind": "seconds_since"}, {"t": "2025-10-09T08:50:00Z"}, {}, 200.0),
    ({"json_path": "$.t", "kind": "seconds_since"}, {"t": "2025-10-09T16:50:00+08:00"}, {}, 200.0),
    ({"json_path": "$.t", "kind": "seconds_since"}, {"t": "2025-10-09T08:50:00"}, {}, 200.0),
    ({"json_path": "$.t", "kind": "seconds_since"}, {"t": SYNCED}, {}, 200.0),
    ({"json_path": "$.t", "kind": "seconds_since"}, {"t": str(int(SYNCED))}, {}, 200.0),
    ({"json_path": "$.t", "kind": "seconds_since"}, {"t": NOW + 10}, {}, -10.0),  # clock skew shows
    ({"header": "X-Queue-Depth"}, b"", {"x-queue-depth": "41"}, 41.0),
    ({"header": "Last-Modified", "kind": "seconds_since"}, b"",
     {"last-modified": "Thu, 09 Oct 2025 08:50:00 GMT"}, 200.0),
])
def test_extractions(extraction: dict[str, Any], body: Any, headers: dict[str, str], value: float) -> None:
    outcome = check(params(extract=[{"name": "v"} | extraction]), resp(200, body, headers))
    assert outcome.success and outcome.values == (("v", value),)


@pytest.mark.parametrize(("extraction", "body", "headers", "message"), [
    ({"json_path": "$.q"}, {"x": 1}, {}, "extract v: $.q is not a number (got nothing)"),
    ({"json_path": "$.q"}, {"q": None}, {}, "extract v: $.q is not a number (got null)"),
    ({"json_path": "$.q"}, {"q": "many"}, {}, 'extract v: $.q is not a number (got "many")'),
    ({"json_path": "$.q"}, {"q": [1]}, {}, "extract v: $.q is not a number (got [1])"),
    ({"json_path": "$.q"}, {"q": "nan"}, {}, 'extract v: $.q is not a number (got "nan")'),
    ({"json_path": "$.q"}, b'{"q": 1e999}', {}, "extract v: $.q is not a number (got Infinity)"),
    ({"json_path": "$.q"}, {"q": 10**20}, {}, "extract v: $.q is not a number"),
    ({"json_path": "$.t", "kind": "seconds_since"}, {"t": "yesterday"}, {}, "is not a timestamp"),
    ({"json_path": "$.t", "kind": "seconds_since"}, {"t": SYNCED * 1000}, {}, "is not a timestamp"),
    ({"json_path": "$.t", "kind": "seconds_since"}, {"t": -5}, {}, "is not a timestamp"),
    ({"json_path": "$.t", "kind": "seconds_since"}, {"t": True}, {}, "is not a timestamp"),
    ({"json_path": "$.t", "kind": "seconds_since"}, {"t": "9999-99-99"}, {}, "is not a timestamp"),
    ({"header": "X-Depth"}, b"", {}, "extract v: header X-Depth is not a number (got nothing)"),
    ({"header": "X-Depth"}, b"", {"x-depth": "lots"}, "is not a number"),
])
def test_extraction_failures_are_invalid_response(extraction: dict[str, Any], body: Any,
                                                  headers: dict[str, str], message: str) -> None:
    outcome = check(params(extract=[{"name": "v"} | extraction]), resp(200, body, headers))
    assert (outcome.success, outcome.reason) == (False, Reason.INVALID_RESPONSE)
    assert message in outcome.message


def test_assertions_run_before_extractions() -> None:
    p = params(expect_json=[{"path": "$.status", "equals": "ok"}],
               extract=[{"name": "v", "json_path": "$.none"}])
    assert check(p, resp(200, {"status": "down"})).reason is Reason.ASSERTION_FAILED


# --- shared helpers -----------------------------------------------------------------------------


def test_short_redacts_flattens_and_bounds() -> None:
    Secret.literal("very-secret-value-42").reveal()
    text = short("a\n\tb\x00 very-secret-value-42 " + "x" * 500, 40)
    assert text.startswith(f"a b {REDACTED} ") and len(text) == 40 and text.endswith("…")
    assert short("  fine  ") == "fine"


@pytest.mark.parametrize("cut_inside", range(1, len(REDACTED)))
def test_a_cut_never_leaves_half_a_redaction_marker(cut_inside: int) -> None:
    """``token: <redac…`` would read as a value that escaped redaction (pages and logs are
    searched for exactly that), so the cut falls before the marker instead."""
    Secret.literal("another-secret-value-7").reveal()
    prefix = "x" * 30 + " token: "
    text = short(prefix + "another-secret-value-7 and more", len(prefix) + cut_inside + 1)
    assert text == prefix + "…"


@pytest.mark.parametrize(("value", "expected"), [
    (3, 3.0), (2.5, 2.5), (True, None), ("3", None), (None, None), (float("nan"), None),
    (float("inf"), None), (10**16, None), (-(10**15), -1e15),
])
def test_finite_number(value: object, expected: float | None) -> None:
    assert finite_number(value) == expected


@pytest.mark.parametrize(("header", "expected"), [
    (None, None), ("", None), ("5", 5.0), (" 5 ", 5.0), ("-5", None), ("1.5", None), ("\u0665", None),
    ("Thu, 09 Oct 2025 08:54:00 GMT", 40.0), ("Thu, 09 Oct 2025 08:00:00 GMT", 0.0), ("garbage", None),
    ("9" * 100, 999999999999.0),  # not capped here: the engine caps (defaults.max_retry_after)
])
def test_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert retry_after_seconds(header, NOW) == expected


def test_unix_time() -> None:
    assert unix_time(date(1970, 1, 2)) == 86400.0
    assert unix_time(datetime(1970, 1, 2)) == 86400.0
    assert unix_time(datetime(1970, 1, 2, tzinfo=UTC)) == 86400.0


@pytest.mark.parametrize(("status", "reason"), [
    (200, None), (302, None), (400, Reason.CLIENT_ERROR), (401, Reason.AUTH), (403, Reason.PERMISSION),
    (418, Reason.CLIENT_ERROR), (429, Reason.THROTTLED), (500, Reason.SERVER_ERROR),
    (599, Reason.SERVER_ERROR), (600, None),
])
def test_reason_for_status(status: int, reason: Reason | None) -> None:
    assert reason_for_status(status) is reason


def test_static_description() -> None:
    assert HttpCheck.name == "http" and set(HttpCheck.operations) == {"request"}
    assert HttpCheck.operations["request"].limits(sandbox=False) is None
    assert HttpCheck.known_codes == frozenset() and HttpCheck.Params is HttpParams
    assert HttpCheck.Credentials is type(None)  # no account: secrets are header values


def test_ctx_is_not_needed_beyond_params_and_now() -> None:
    ctx = replace(make_ctx(params()), base_url="http://ignored", sandbox=True)
    steps = HttpCheck().probe(ctx)
    assert next(steps).url == URL


@pytest.mark.parametrize("body", [
    b'{"status": "ok"}', b'[1, 2.5, -0, "x"]', b'{"a": 1, "a": 2} \r\n\t', b'{} x', b'{"a": NaN}', b'[1e400]',
    b'["\\ud800"]', b'{"a": "line\nbreak"}', b'{\x00}', b'[' * 3000 + b']' * 3000, b'{"\xff": 1}',
    b'\xef\xbb\xbf{"bom": true}', '{"utf16": 1}'.encode("utf-16"), b' {"leading": 1}', b'"text"', b'', b'{',
])
def test_json_document_is_json_loads(body: bytes) -> None:
    """The fast path of the probe's JSON parse gives what json.loads gives: the same value, or an
    error of the same class."""
    def outcome(parse: Callable[[bytes], object]) -> tuple[str, str]:
        try:
            return "value", repr(parse(body))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            return "error", type(exc).__name__

    assert outcome(json_document) == outcome(json.loads)


class _WrappedHttpCheck(HttpCheck):
    plain_steps = False


@pytest.mark.parametrize("response", [
    resp(200, {"status": "ok"}), resp(429), resp(429, headers={"retry-after": "12"}),
    resp(429, headers={"retry-after": "Sun, 06 Nov 1994 08:49:37 GMT"}), resp(503, headers={"retry-after": "5"}),
    resp(200, b"not json"), resp(200, {"status": "down"}),
])
def test_the_http_check_needs_no_wrapper_around_its_steps(response: HttpResponse) -> None:
    """``plain_steps``: the probe hands out the check's own steps, and they end exactly as the
    wrapped ones (Retry-After of a 429 read by the steps themselves, no deadlines to add)."""
    p = params(expect_json=[{"path": "$.status", "equals": "ok"}])
    plain = drive_probe(HttpCheck(), make_ctx(p), response)
    wrapped = drive_probe(_WrappedHttpCheck(), make_ctx(p), response)
    assert plain == wrapped
