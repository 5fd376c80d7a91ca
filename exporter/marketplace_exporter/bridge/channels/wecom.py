"""WeCom group robot (企业微信群机器人), ``markdown`` messages with ``<@userid>`` mentions.

The ``key`` query parameter is the only credential (no signing). Limit: the markdown ``content``
≤ 4,096 bytes of UTF-8 (chat-robots.md §2.2); the title becomes the first line of the content.
"""

from __future__ import annotations

from marketplace_exporter.bridge.channels import (
    OK,
    Channel,
    OutboundRequest,
    Outcome,
    Verdict,
    dumps,
    no_code,
    parse_body,
    short,
)
from marketplace_exporter.bridge.render import Budget, Mentions, Message

CONTENT_LIMIT = 4096
THROTTLE_CODES = frozenset({45009})
SECURITY_CODES = frozenset({93000})
TOO_LARGE_CODES = frozenset({40058})
BUSY = -1


def budget(title: str, mentions: Mentions) -> Budget:
    return Budget(limit=CONTENT_LIMIT, overhead=0, json_escaped=False)


def build(url: str, secret: str | None, message: Message, now: float, msg_id: str) -> OutboundRequest:
    return OutboundRequest(url, dumps({"msgtype": "markdown", "markdown": {"content": message.text}}))


def classify(status: int, body: bytes) -> Verdict:
    data = parse_body(body)
    if data is None or not isinstance(data.get("errcode"), int):
        return no_code(status, "a WeCom errcode")
    code = int(data["errcode"])
    detail = short(data.get("errmsg", ""))
    if code == 0:
        return OK
    if code in THROTTLE_CODES:
        return Verdict(Outcome.THROTTLED, "throttled", str(code), detail)
    if code == BUSY:
        return Verdict(Outcome.TRANSIENT, "http", str(code), detail)
    if code in SECURITY_CODES:
        return Verdict(Outcome.PERMANENT, "security", str(code), detail)
    if code in TOO_LARGE_CODES:
        return Verdict(Outcome.PERMANENT, "too_large", str(code), detail)
    return Verdict(Outcome.PERMANENT, "rejected", str(code), detail)


CHANNEL = Channel("wecom", budget, build, classify)
