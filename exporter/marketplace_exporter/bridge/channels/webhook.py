"""A generic JSON webhook: the rendered message plus its status, for anything that is not one of
the three robots (an on-call tool, a ticket system). Success is any 2xx; 429 throttles; 5xx and
connection errors are retried; other statuses are permanent.

Body: ``{"title": ..., "text": ..., "status": "firing|resolved", "alerts_total": n,
"alerts_shown": m, "id": "<idempotency key>"}``
"""

from __future__ import annotations

from marketplace_exporter.bridge.channels import OK, Channel, OutboundRequest, Outcome, Verdict, dumps
from marketplace_exporter.bridge.render import Budget, Mentions, Message

BODY_LIMIT = 256 * 1024


def _body(message: Message, text: str, msg_id: str) -> dict[str, object]:
    return {"title": message.title, "text": text, "status": message.status,
            "alerts_total": message.alerts_total, "alerts_shown": message.alerts_shown, "id": msg_id}


def budget(title: str, mentions: Mentions) -> Budget:
    probe = Message(title=title, text="", status="resolved", mentions=mentions, alerts_total=10**6,
                    alerts_shown=10**6)
    return Budget(limit=BODY_LIMIT, overhead=len(dumps(_body(probe, "", "0" * 32))))


def build(url: str, secret: str | None, message: Message, now: float, msg_id: str) -> OutboundRequest:
    return OutboundRequest(url, dumps(_body(message, message.text, msg_id)))


def classify(status: int, body: bytes) -> Verdict:
    if 200 <= status < 300:
        return OK
    if status == 429:
        return Verdict(Outcome.THROTTLED, "throttled", str(status), "HTTP 429")
    if status >= 500:
        return Verdict(Outcome.TRANSIENT, "http", str(status), f"HTTP {status}")
    return Verdict(Outcome.PERMANENT, "rejected", str(status), f"HTTP {status}")


CHANNEL = Channel("webhook", budget, build, classify)
