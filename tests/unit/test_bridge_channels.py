"""What each robot's answer means (body code over HTTP status) and what each request looks like."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from marketplace_exporter.bridge.channels import Outcome, dingtalk, feishu, webhook, wecom
from marketplace_exporter.bridge.render import Mentions, Message


def body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


@pytest.mark.parametrize(("status", "raw", "outcome", "reason"), [
    (200, body(errcode=0, errmsg="ok"), Outcome.OK, ""),
    (200, body(errcode=310000, errmsg="sign not match"), Outcome.PERMANENT, "security"),
    (200, body(errcode=310000, errmsg="description:机器人发送签名不匹配;solution:..."), Outcome.PERMANENT, "security"),
    (200, body(errcode=300001, errmsg="token is not exist"), Outcome.PERMANENT, "security"),
    (200, body(errcode=410100, errmsg="发送速度太快而限流"), Outcome.THROTTLED, "throttled"),
    (200, body(errcode=130101, errmsg="send too fast, exceed 20 times per minute"), Outcome.THROTTLED, "throttled"),
    (200, body(errcode=460101, errmsg="message too long, exceed 20000 bytes"), Outcome.PERMANENT, "too_large"),
    (200, body(errcode=-1, errmsg="系统繁忙"), Outcome.TRANSIENT, "http"),
    (200, body(errcode=430104, errmsg="content unsafe"), Outcome.PERMANENT, "rejected"),
    (200, b"<html>proxy</html>", Outcome.TRANSIENT, "invalid_response"),
    (200, body(errmsg="ok"), Outcome.TRANSIENT, "invalid_response"),  # no code is not success
    (502, b"Bad Gateway", Outcome.TRANSIENT, "http"),
    (404, b"not found", Outcome.PERMANENT, "rejected"),
    (429, b"", Outcome.THROTTLED, "throttled"),
    (500, body(errcode=0), Outcome.OK, ""),  # the body decides, whatever the status
])
def test_dingtalk_classification(status: int, raw: bytes, outcome: Outcome, reason: str) -> None:
    verdict = dingtalk.classify(status, raw)
    assert (verdict.outcome, verdict.reason) == (outcome, reason)


@pytest.mark.parametrize(("raw", "outcome", "reason"), [
    (body(errcode=0, errmsg="ok"), Outcome.OK, ""),
    (body(errcode=93000, errmsg="invalid webhook url"), Outcome.PERMANENT, "security"),
    (body(errcode=45009, errmsg="api freq out of limit"), Outcome.THROTTLED, "throttled"),
    (body(errcode=40058, errmsg="markdown.content exceed max length 4096"), Outcome.PERMANENT, "too_large"),
    (body(errcode=12345, errmsg="something new"), Outcome.PERMANENT, "rejected"),
])
def test_wecom_classification_with_http_200(raw: bytes, outcome: Outcome, reason: str) -> None:
    verdict = wecom.classify(200, raw)
    assert (verdict.outcome, verdict.reason) == (outcome, reason)


@pytest.mark.parametrize(("status", "raw", "outcome", "reason"), [
    (200, body(StatusCode=0, StatusMessage="success", code=0, data={}, msg="success"), Outcome.OK, ""),
    (200, body(code=19021, msg="sign match fail or timestamp is not within one hour"), Outcome.PERMANENT, "security"),
    (200, body(code=19022, msg="Ip Not Allowed"), Outcome.PERMANENT, "security"),
    (200, body(code=19024, msg="Key Words Not Found"), Outcome.PERMANENT, "security"),
    (200, body(code=11232, msg="frequency limited"), Outcome.THROTTLED, "throttled"),
    (400, body(code=9499, msg="too many request"), Outcome.THROTTLED, "throttled"),
    (400, body(code=9499, msg="Bad Request"), Outcome.PERMANENT, "rejected"),
    (200, body(code=19001, msg="param invalid: incoming webhook access token invalid"), Outcome.PERMANENT,
     "security"),
    (200, body(StatusCode=0, StatusMessage="success"), Outcome.TRANSIENT, "invalid_response"),
])
def test_feishu_classification(status: int, raw: bytes, outcome: Outcome, reason: str) -> None:
    verdict = feishu.classify(status, raw)
    assert (verdict.outcome, verdict.reason) == (outcome, reason)


@pytest.mark.parametrize(("status", "outcome"), [
    (200, Outcome.OK), (204, Outcome.OK), (429, Outcome.THROTTLED), (503, Outcome.TRANSIENT), (400, Outcome.PERMANENT),
])
def test_generic_webhook_goes_by_status(status: int, outcome: Outcome) -> None:
    assert webhook.classify(status, b"").outcome is outcome


MESSAGE = Message(title="🔥 告警 X", text="正文", status="firing",
                  mentions=Mentions(("13800000000",), ("u1",), False), alerts_total=1, alerts_shown=1)


def test_dingtalk_request_is_signed_markdown_with_mentions_and_msg_uuid() -> None:
    request = dingtalk.build("http://h/robot/send?access_token=tok", "SECx", MESSAGE, 1_700_000_000.5, "m" * 32)
    query = parse_qs(urlsplit(request.url).query)
    assert query["timestamp"] == ["1700000000500"]
    assert query["sign"] == [dingtalk.sign("SECx", 1700000000500)]
    assert json.loads(request.body) == {
        "msgtype": "markdown", "markdown": {"title": "🔥 告警 X", "text": "正文"},
        "at": {"atMobiles": ["13800000000"], "atUserIds": ["u1"], "isAtAll": False}, "msgUuid": "m" * 32}
    assert "正文".encode() in request.body  # UTF-8, not \\u escapes
    assert "tok" not in repr(request)


def test_feishu_request_carries_timestamp_string_and_sign_in_the_body() -> None:
    request = feishu.build("http://h/open-apis/bot/v2/hook/abc", "demo", MESSAGE, 1599360473.9, "id")
    data = json.loads(request.body)
    assert data["timestamp"] == "1599360473"
    assert data["sign"] == "l1N0gAcBjdwBvGm1xMjOF0XSyaLRpR7tuO5dHfhAYc8="
    assert data["msg_type"] == "interactive"
    assert data["card"]["elements"] == [{"tag": "markdown", "content": "正文"}]
    assert request.url == "http://h/open-apis/bot/v2/hook/abc"


def test_unsigned_feishu_request_has_no_signature_fields() -> None:
    data = json.loads(feishu.build("http://h/hook", None, MESSAGE, 1, "id").body)
    assert "sign" not in data and "timestamp" not in data


def test_wecom_request_is_markdown_content() -> None:
    request = wecom.build("http://h/cgi-bin/webhook/send?key=k", None, MESSAGE, 0, "id")
    assert json.loads(request.body) == {"msgtype": "markdown", "markdown": {"content": "正文"}}
