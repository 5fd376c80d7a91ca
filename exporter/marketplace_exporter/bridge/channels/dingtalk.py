"""DingTalk custom group robot (自定义机器人), markdown messages, optional 加签 signing.

Signing (chat-robots.md §1.3): ``sign = urlencode(base64(HMAC-SHA256(key=secret,
msg=timestamp_ms + "\\n" + secret)))`` as ``timestamp``/``sign`` query parameters next to
``access_token``. The body's ``msgUuid`` makes a retry after an unknown outcome idempotent.
Limit: the whole JSON body ≤ 20,000 bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote_plus

from marketplace_exporter.bridge.channels import (
    Channel,
    ErrcodeTable,
    OutboundRequest,
    Verdict,
    classify_errcode,
    dumps,
)
from marketplace_exporter.bridge.render import Budget, Mentions, Message

BODY_LIMIT = 20000
THROTTLE_CODES = frozenset({410100, 130101})
#: 310000 covers bad signature, expired timestamp, missing keyword and IP not allowed; the token codes
#: mean the robot is gone or the URL is wrong: none can succeed until the config changes
SECURITY_CODES = frozenset({310000, 300001, 300005, 400101})
TOO_LARGE_CODES = frozenset({460101, 101002})
BUSY = -1
_UUID_PLACEHOLDER = "0" * 32


def sign(secret: str, timestamp_ms: int) -> str:
    """Base64 HMAC-SHA256 with the secret as key and ``timestamp\\nsecret`` as message (not yet
    URL-encoded)."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """The webhook URL plus ``timestamp`` and ``sign``, percent-encoded exactly once."""
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}timestamp={timestamp_ms}&sign={quote_plus(sign(secret, timestamp_ms))}"


def _body(message: Message, msg_id: str, text: str) -> dict[str, object]:
    m = message.mentions
    return {
        "msgtype": "markdown",
        "markdown": {"title": message.title, "text": text},
        "at": {"atMobiles": list(m.mobiles), "atUserIds": list(m.user_ids), "isAtAll": m.at_all},
        "msgUuid": msg_id,
    }


def budget(title: str, mentions: Mentions) -> Budget:
    probe = Message(title=title, text="", status="firing", mentions=mentions, alerts_total=0, alerts_shown=0)
    return Budget(limit=BODY_LIMIT, overhead=len(dumps(_body(probe, _UUID_PLACEHOLDER, ""))))


def build(url: str, secret: str | None, message: Message, now: float, msg_id: str) -> OutboundRequest:
    target = signed_url(url, secret, int(now * 1000)) if secret else url
    return OutboundRequest(target, dumps(_body(message, msg_id, message.text)))


TABLE = ErrcodeTable("DingTalk", throttle=THROTTLE_CODES, security=SECURITY_CODES, too_large=TOO_LARGE_CODES,
                     busy=BUSY)


def classify(status: int, body: bytes) -> Verdict:
    return classify_errcode(status, body, TABLE)

CHANNEL = Channel("dingtalk", budget, build, classify)
