"""WeCom group robot (企业微信群机器人), ``markdown`` messages with ``<@userid>`` mentions.

The ``key`` query parameter is the only credential (no signing). Limit: the markdown ``content``
≤ 4,096 bytes of UTF-8 (chat-robots.md §2.2); the title becomes the first line of the content.
"""

from __future__ import annotations

from marketplace_exporter.bridge.channels import (
    Channel,
    ErrcodeTable,
    OutboundRequest,
    Verdict,
    classify_errcode,
    dumps,
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


TABLE = ErrcodeTable("WeCom", throttle=THROTTLE_CODES, security=SECURITY_CODES, too_large=TOO_LARGE_CODES,
                     busy=BUSY)


def classify(status: int, body: bytes) -> Verdict:
    return classify_errcode(status, body, TABLE)

CHANNEL = Channel("wecom", budget, build, classify)
