"""Every signing test vector of chat-robots.md §1.3 and §3.3, including the negative ones."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from marketplace_exporter.bridge.channels import dingtalk, feishu

DINGTALK_VECTORS = [
    (1700000000000, "secret", "OuzzJR5+xZ4/EYwqtNt6sMYZQMTa/HEGvc9miJe7XzY=",
     "OuzzJR5%2BxZ4%2FEYwqtNt6sMYZQMTa%2FHEGvc9miJe7XzY%3D"),
    (1700000000000, "this is secret", "sSFWELbV2YwjdDQhWZwTcWlX5BWUx5J6TPpsZmuPii0=",
     "sSFWELbV2YwjdDQhWZwTcWlX5BWUx5J6TPpsZmuPii0%3D"),
    (1700000000000, "SECtest0123456789", "yBKp5IlG6qCzcQWmgyRK/ziJBdVNJmHfFE2ST/CzT/g=",
     "yBKp5IlG6qCzcQWmgyRK%2FziJBdVNJmHfFE2ST%2FCzT%2Fg%3D"),
]
FEISHU_VECTORS = [
    (1599360473, "demo", "l1N0gAcBjdwBvGm1xMjOF0XSyaLRpR7tuO5dHfhAYc8="),
    (1700000000, "secret", "fiWS2+gh28DOydAv7hzONH/mDn9+b1Y4Y5ivXWXy8vA="),
]


@pytest.mark.parametrize(("timestamp", "secret", "b64", "query_value"), DINGTALK_VECTORS)
def test_dingtalk_sign_matches_the_fact_sheet(timestamp: int, secret: str, b64: str, query_value: str) -> None:
    assert dingtalk.sign(secret, timestamp) == b64


@pytest.mark.parametrize(("timestamp", "secret", "b64", "query_value"), DINGTALK_VECTORS)
def test_dingtalk_signed_url_encodes_the_sign_exactly_once(timestamp: int, secret: str, b64: str,
                                                          query_value: str) -> None:
    url = dingtalk.signed_url("https://oapi.dingtalk.com/robot/send?access_token=abc", secret, timestamp)
    assert url.endswith(f"&timestamp={timestamp}&sign={query_value}")
    query = parse_qs(urlsplit(url).query)
    assert query["sign"] == [b64]  # one decode gives back the Base64 value
    assert query["access_token"] == ["abc"]


def test_dingtalk_rejects_the_feishu_style_negative_vector() -> None:
    assert dingtalk.sign("secret", 1700000000000) != "EqNC8iQNW1bZ/0+RxqMhcxOEF0ZH8rSfaxU43xU9N6g="
    assert feishu.sign("secret", 1700000000000) == "EqNC8iQNW1bZ/0+RxqMhcxOEF0ZH8rSfaxU43xU9N6g="


@pytest.mark.parametrize(("timestamp", "secret", "expected"), FEISHU_VECTORS)
def test_feishu_sign_matches_the_fact_sheet(timestamp: int, secret: str, expected: str) -> None:
    assert feishu.sign(secret, timestamp) == expected


def test_feishu_rejects_the_dingtalk_style_negative_vector() -> None:
    negative = "DkEDUyVoOOJ539qBvUgMyzkzIdRWlf4e/V3Rq+ONJnQ="
    assert feishu.sign("demo", 1599360473) != negative
    assert dingtalk.sign("demo", 1599360473) == negative


def test_dingtalk_url_without_a_query_gets_one() -> None:
    assert dingtalk.signed_url("http://h/robot/send", "secret", 1).startswith("http://h/robot/send?timestamp=1&sign=")
