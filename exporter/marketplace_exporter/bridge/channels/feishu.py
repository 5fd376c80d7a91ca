"""Feishu / Lark custom bot (自定义机器人): an interactive card with one markdown element.

Signing (chat-robots.md §3.3): ``sign = base64(HMAC-SHA256(key=timestamp_s + "\\n" + secret,
msg=""))``, sent as top-level body fields ``timestamp`` (a string of seconds) and ``sign``.
Limit: the request body ≤ 20 KB; K=1000 or 1024 is unconfirmed, so 20,000 bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

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

BODY_LIMIT = 20000
THROTTLE_CODES = frozenset({11232})
BAD_REQUEST = 9499
SECURITY_CODES = frozenset({19021, 19022, 19024})
#: the invalid-hook answer's code is unconfirmed; its text is documented
_INVALID_HOOK_TEXT = "access token invalid"


def sign(secret: str, timestamp_s: int) -> str:
    """Base64 HMAC-SHA256 keyed by ``timestamp\\nsecret`` over an empty message."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode("ascii")


def _body(message: Message, text: str, timestamp: str | None, signature: str | None) -> dict[str, object]:
    body: dict[str, object] = {
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": True},
            "header": {"template": "red" if message.status == "firing" else "green",
                       "title": {"tag": "plain_text", "content": message.title}},
            "elements": [{"tag": "markdown", "content": text}],
        },
    }
    if timestamp is not None and signature is not None:
        body["timestamp"] = timestamp
        body["sign"] = signature
    return body


def budget(title: str, mentions: Mentions) -> Budget:
    probe = Message(title=title, text="", status="resolved", mentions=mentions, alerts_total=0, alerts_shown=0)
    # always count a signature (10-digit timestamp, 44-character sign) so signed and unsigned fit alike
    return Budget(limit=BODY_LIMIT, overhead=len(dumps(_body(probe, "", "0" * 10, "0" * 44))))


def build(url: str, secret: str | None, message: Message, now: float, msg_id: str) -> OutboundRequest:
    if secret:
        timestamp = int(now)
        return OutboundRequest(url, dumps(_body(message, message.text, str(timestamp), sign(secret, timestamp))))
    return OutboundRequest(url, dumps(_body(message, message.text, None, None)))


def classify(status: int, body: bytes) -> Verdict:
    data = parse_body(body)
    if data is None or not isinstance(data.get("code"), int):
        return no_code(status, "a Feishu code")
    code = int(data["code"])
    msg = str(data.get("msg", ""))
    detail = short(msg)
    if code == 0:
        return OK
    if code in THROTTLE_CODES or (code == BAD_REQUEST and "too many" in msg.lower()):
        return Verdict(Outcome.THROTTLED, "throttled", str(code), detail)
    if code in SECURITY_CODES or _INVALID_HOOK_TEXT in msg.lower():
        return Verdict(Outcome.PERMANENT, "security", str(code), detail)
    return Verdict(Outcome.PERMANENT, "rejected", str(code), detail)


CHANNEL = Channel("feishu", budget, build, classify)
