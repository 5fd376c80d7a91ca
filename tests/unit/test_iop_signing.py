"""Alibaba IOP signing and the shared error envelope (Lazada and AliExpress).

Vectors are from the sources in docs/marketplaces/sources.md: [D2] the Lazada SDK vector and [E8] the official
AliExpress vector (both "verified" there); [X2] is the worked example on Lazada's own request-sample
page, recomputed here. The tags are resolved in docs/marketplaces/lazada.md and aliexpress.md.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest

from marketplace_exporter.adapters.iop_errors import (
    ban_seconds,
    code_reason,
    code_text,
    is_zero,
    permission_hint,
)
from marketplace_exporter.adapters.iop_signing import (
    base_string,
    hmac_sha256_upper,
    iop_prefix,
    parse_timestamp,
    sign,
    signature_matches,
    timestamp_ms,
)
from marketplace_exporter.catalogue import Reason

LAZADA_SDK_PARAMS = {"foo": "1", "bar": "2", "foo_bar": "3", "foobar": "4"}
LAZADA_SDK_SIGN = "988085883BF9D32D251478D23122C7ECC91518CDF63BA22F792000A378F52409"
ALIEXPRESS_PARAMS = {"access_token": "test", "aliexpress_category_id": "200135143", "app_key": "123456",
                     "method": "aliexpress.logistics.redefining.getonlinelogisticsinfo",
                     "sign_method": "sha256", "timestamp": "1517820392000"}
ALIEXPRESS_SIGN = "F7F7926B67316C9D1E8E15F7E66940ED3059B1638C497D77973F30046EFB5BBB"


# --- vectors ------------------------------------------------------------------------------------


def test_lazada_sdk_vector() -> None:
    # [D2]: secret 1234, path /test/api
    assert base_string(LAZADA_SDK_PARAMS, "/test/api") == "/test/apibar2foo1foo_bar3foobar4"
    assert sign("1234", LAZADA_SDK_PARAMS, "/test/api") == LAZADA_SDK_SIGN


def test_lazada_request_sample_vector() -> None:
    # [X2]: GetOrder with secret "helloworld"
    params = {"app_key": "123456", "access_token": "test", "timestamp": "1517820392000",
              "sign_method": "sha256", "order_id": "1234"}
    assert base_string(params, "/order/get") == (
        "/order/getaccess_tokentestapp_key123456order_id1234sign_methodsha256timestamp1517820392000")
    assert sign("helloworld", params, "/order/get") == (
        "4190D32361CFB9581350222F345CB77F3B19F0E31D162316848A2C1FFD5FAB4A")


def test_aliexpress_official_business_vector_has_no_prefix() -> None:
    # [E8]: a method= business API; nothing prefixed, ``method`` itself signed
    method = ALIEXPRESS_PARAMS["method"]
    assert iop_prefix(method) == ""
    assert base_string(ALIEXPRESS_PARAMS, iop_prefix(method)).startswith("access_tokentestaliexpress_category_id")
    assert "methodaliexpress.logistics.redefining.getonlinelogisticsinfo" in base_string(ALIEXPRESS_PARAMS)
    assert sign("helloworld", ALIEXPRESS_PARAMS, iop_prefix(method)) == ALIEXPRESS_SIGN


def test_aliexpress_path_style_is_the_lazada_algorithm() -> None:
    # path-style system APIs are signed WITH the path [E1]: the very algorithm of the Lazada vector
    assert iop_prefix("/test/api") == "/test/api"
    assert sign("1234", LAZADA_SDK_PARAMS, iop_prefix("/test/api")) == LAZADA_SDK_SIGN
    assert iop_prefix("/auth/token/refresh") == "/auth/token/refresh"
    # and prefixing a business API would give a different signature
    assert sign("helloworld", ALIEXPRESS_PARAMS, "/sync") != ALIEXPRESS_SIGN


def test_uppercase_hmac_sha256() -> None:
    expected = hmac.new(b"k", b"m", hashlib.sha256).hexdigest().upper()
    assert hmac_sha256_upper("k", "m") == expected and expected.isupper()


# --- base string rules --------------------------------------------------------------------------


def test_sign_parameter_is_never_signed() -> None:
    with_sign = {**LAZADA_SDK_PARAMS, "sign": "ANYTHING"}
    assert sign("1234", with_sign, "/test/api") == LAZADA_SDK_SIGN


def test_keys_sort_in_ascii_order() -> None:
    assert base_string({"b": "1", "B": "2", "a_": "3", "a": "4"}) == "B2a4a_3b1"


def test_utf8_values() -> None:
    params = {"name": "Cửa hàng"}
    assert sign("s", params) == hmac.new(b"s", "nameCửa hàng".encode(), hashlib.sha256).hexdigest().upper()


def test_empty_values_java_and_python_readings() -> None:
    params = {"a": "1", "empty": ""}
    assert base_string(params) == "a1"  # Java sample [X1]
    assert base_string(params, keep_empty=True) == "a1empty"  # Python SDK [D1]
    for reading in (base_string(params), base_string(params, keep_empty=True)):
        assert signature_matches("s", params, hmac_sha256_upper("s", reading))


@pytest.mark.parametrize("path", ["test/api", "https://api.lazada.sg/rest/seller/get", "//x/seller/get"])
def test_base_string_rejects_urls_and_relative_paths(path: str) -> None:
    with pytest.raises(ValueError):
        base_string({}, path)


def test_signature_matches_is_exact() -> None:
    assert signature_matches("1234", LAZADA_SDK_PARAMS, LAZADA_SDK_SIGN, "/test/api")
    assert not signature_matches("1234", LAZADA_SDK_PARAMS, LAZADA_SDK_SIGN.lower(), "/test/api")
    assert not signature_matches("1234", LAZADA_SDK_PARAMS, LAZADA_SDK_SIGN, "/test/api2")
    assert not signature_matches("12345", LAZADA_SDK_PARAMS, LAZADA_SDK_SIGN, "/test/api")
    assert not signature_matches("1234", LAZADA_SDK_PARAMS, "é" * 64, "/test/api")


# --- timestamps ---------------------------------------------------------------------------------


def test_timestamp_is_milliseconds() -> None:
    assert timestamp_ms(1517820392.0009) == "1517820392000"


@pytest.mark.parametrize(("raw", "expected"), [
    ("1517820392000", 1517820392.0),
    ("2017-11-11T12:00:00Z", 1510401600.0),  # the ISO form Lazada accepts [D5]
    ("2017-11-11T12:00:00", 1510401600.0),
    ("2017-11-11T20:00:00+08:00", 1510401600.0),
    ("1517820392", 1517820.392),  # seconds read as milliseconds: rejected later by the window
])
def test_parse_timestamp(raw: str, expected: float) -> None:
    assert parse_timestamp(raw) == pytest.approx(expected)


@pytest.mark.parametrize("raw", ["", "abc", "1" * 40, "2017-11-11", "２０１７", "-1517820392000",
                                 "2017-13-45T99:00:00Z", "T" * 100])
def test_parse_timestamp_rejects(raw: str) -> None:
    assert parse_timestamp(raw) is None


# --- the shared error envelope ------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [
    ("Api access frequency exceeds the limit. this ban will last 3 seconds", 3.0),  # Lazada [OBS D11]
    ("This ban will last for 12 more seconds", 12.0),  # TOP [OBS E11]
    ("THIS BAN WILL LAST 1 SECOND", 1.0),
    ("this ban will last 99999999 seconds", None),  # more digits than any real ban: ignored
    ("this ban will last 9999999 seconds", 86400.0),  # capped at a day
    ("no ban here", None),
    ("ban will last -5 seconds", None),
])
def test_ban_seconds(text: str, seconds: float | None) -> None:
    assert ban_seconds(text) == seconds


@pytest.mark.parametrize(("code", "error_type", "reason"), [
    ("IllegalAccessToken", "ISV", Reason.AUTH),
    ("IllegalAccessToken", None, Reason.AUTH),
    ("InvalidCode", "ISP", Reason.AUTH),  # the code wins over the type
    ("ApiCallLimit", "ISV", Reason.THROTTLED),
    ("IncompleteSignature", "ISV", Reason.CLIENT_ERROR),
    ("SomethingNew", "ISV", Reason.CLIENT_ERROR),
    ("SomethingNew", "isp", Reason.SERVER_ERROR),
    ("SomethingNew", "SYSTEM", Reason.SERVER_ERROR),
    ("SomethingNew", None, Reason.CLIENT_ERROR),
    ("SomethingNew", "WHO", Reason.CLIENT_ERROR),
    ("InsufficientPermission", "ISV", Reason.PERMISSION),  # heuristic: a code naming permission
])
def test_code_reason(code: str, error_type: str | None, reason: Reason) -> None:
    assert code_reason(code, error_type) is reason


def test_permission_hint() -> None:
    assert permission_hint("isv.permission-ip-whitelist-limit") and permission_hint("x", "isv.invalid-permission")
    assert not permission_hint("IllegalAccessToken", "")


@pytest.mark.parametrize(("value", "text"), [("E1", "E1"), (7, "7"), (True, None), (None, None),
                                             (1.5, None), (10**20, None), ([], None)])
def test_code_text(value: object, text: str | None) -> None:
    assert code_text(value) == text


@pytest.mark.parametrize(("value", "zero"), [("0", True), (0, True), (False, False), ("", False),
                                             (0.0, False), ("00", False), (None, False)])
def test_is_zero(value: object, zero: bool) -> None:
    assert is_zero(value) is zero
