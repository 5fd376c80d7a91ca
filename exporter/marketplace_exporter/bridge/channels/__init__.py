"""Chat robot channels, sans-I/O: each builds the exact HTTP request for a rendered message
(signing included) and classifies the robot's answer. The delivery worker owns the HTTP client.

Classification follows chat-robots.md: success only when the body's code field is present and 0,
whatever the HTTP status; throttle codes back off; security codes are permanent and loud::

    verdict
    ├── ok            body code 0
    ├── throttled     DingTalk 410100/130101, WeCom 45009, Feishu 11232 (or 9499 "too many"), HTTP 429
    ├── transient     HTTP 5xx, connection errors, timeouts, unparseable 2xx bodies, code -1 (busy)
    └── permanent
        ├── security  DingTalk 310000/300001/300005/400101, WeCom 93000, Feishu 19021/19022/19024
        ├── too_large DingTalk 460101/101002, WeCom 40058
        └── rejected  any other non-zero code, or a 4xx without a robot body
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from marketplace_exporter.bridge.render import Budget, Mentions, Message
from marketplace_exporter.secrets import REDACTOR


class Outcome(StrEnum):
    OK = "ok"
    THROTTLED = "throttled"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Verdict:
    """What a robot's answer means. ``reason`` is the failure metric's label value (closed set:
    throttled, security, too_large, rejected, http, transport, invalid_response); ``detail`` is
    for logs and ``alerts history`` and never holds a key or secret."""

    outcome: Outcome
    reason: str = ""
    code: str = ""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


OK = Verdict(Outcome.OK)


@dataclass(frozen=True)
class OutboundRequest:
    """The request to send. ``url`` holds the robot key (and DingTalk's signature): never log it."""

    url: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json; charset=utf-8"),)

    def __repr__(self) -> str:
        return f"OutboundRequest(<url redacted>, {len(self.body)} bytes)"


@dataclass(frozen=True)
class Channel:
    """One robot kind: its byte budget, how to build a request, how to read the answer."""

    kind: str
    budget: Callable[[str, Mentions], Budget]
    build: Callable[[str, str | None, Message, float, str], OutboundRequest]
    classify: Callable[[int, bytes], Verdict]


def dumps(body: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON (Chinese stays 3 bytes a character, not 6 as ``\\uXXXX``)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def parse_body(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def no_code(status: int, what: str) -> Verdict:
    """The answer carries no robot code: decide from the HTTP status alone."""
    if status == 429:
        return Verdict(Outcome.THROTTLED, "throttled", "", f"HTTP 429 without {what}")
    if status >= 500 or 200 <= status < 300:
        return Verdict(Outcome.TRANSIENT, "http" if status >= 500 else "invalid_response", "",
                       f"HTTP {status} without {what}")
    return Verdict(Outcome.PERMANENT, "rejected", "", f"HTTP {status} without {what}")


@dataclass(frozen=True)
class ErrcodeTable:
    """How a robot that answers ``{"errcode": N, "errmsg": "..."}`` (DingTalk, WeCom) means its codes."""

    #: the robot's name in "HTTP 200 without a DingTalk errcode"
    robot: str
    throttle: frozenset[int]
    security: frozenset[int]
    too_large: frozenset[int]
    #: "system busy": worth retrying like a 5xx
    busy: int = -1


def classify_errcode(status: int, body: bytes, table: ErrcodeTable) -> Verdict:
    """Success only on errcode 0, whatever the HTTP status; every other code is classified."""
    data = parse_body(body)
    if data is None or not isinstance(data.get("errcode"), int):
        return no_code(status, f"a {table.robot} errcode")
    code = int(data["errcode"])
    detail = short(data.get("errmsg", ""))
    if code == 0:
        return OK
    if code in table.throttle:
        return Verdict(Outcome.THROTTLED, "throttled", str(code), detail)
    if code == table.busy:
        return Verdict(Outcome.TRANSIENT, "http", str(code), detail)
    if code in table.security:
        return Verdict(Outcome.PERMANENT, "security", str(code), detail)
    if code in table.too_large:
        return Verdict(Outcome.PERMANENT, "too_large", str(code), detail)
    return Verdict(Outcome.PERMANENT, "rejected", str(code), detail)


def register_url_secrets(url: str) -> None:
    """Make the robot key redactable wherever it appears on its own (query values, path ids)."""
    parts = urlsplit(url)
    for _, value in parse_qsl(parts.query):
        REDACTOR.register(value)
    last = parts.path.rstrip("/").rsplit("/", 1)[-1]
    if len(last) >= 16:
        REDACTOR.register(last)


def short(text: object) -> str:
    return REDACTOR.redact(str(text))[:300]


def channels() -> dict[str, Channel]:
    from marketplace_exporter.bridge.channels import dingtalk, feishu, webhook, wecom

    return {"dingtalk": dingtalk.CHANNEL, "wecom": wecom.CHANNEL, "feishu": feishu.CHANNEL,
            "webhook": webhook.CHANNEL}
