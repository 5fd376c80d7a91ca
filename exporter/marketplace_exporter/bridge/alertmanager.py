"""Typed parse of the Alertmanager webhook payload, version 4 (chat-robots.md §4.1).

Unknown fields are ignored (Alertmanager keeps adding some: ``notification_reason``,
``routeLabels``); missing or mistyped required ones raise :class:`PayloadError`, which the app
answers with 400 (the only case where a 4xx is right: the same body can never succeed).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

#: Alertmanager's "no end time yet" value for firing alerts
ZERO_TIME = "0001-01-01T00:00:00Z"


class PayloadError(ValueError):
    """The body is not an Alertmanager v4 payload; the message names the offending field."""


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Alert(_Lenient):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str = ""

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    def ended(self) -> datetime | None:
        """The end time, or None while Alertmanager still hides it (firing alerts)."""
        if self.endsAt is None or self.endsAt.year <= 1:
            return None
        return self.endsAt


class Notification(_Lenient):
    version: Literal["4"]
    groupKey: str
    truncatedAlerts: int = 0
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[Alert] = Field(min_length=1)

    def dedupe_key(self, receiver: str) -> str:
        """Identical resends of a group (same alerts, same states, same times) share this key."""
        parts = sorted((a.fingerprint or json.dumps(a.labels, sort_keys=True), a.status,
                        a.startsAt.isoformat(), a.endsAt.isoformat() if a.endsAt else "")
                       for a in self.alerts)
        raw = json.dumps([receiver, self.groupKey, self.status, parts], ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()


def parse_notification(data: Any) -> Notification:
    """Validate the decoded JSON; raise :class:`PayloadError` naming the first problems."""
    if not isinstance(data, dict):
        raise PayloadError(f"expected a JSON object (Alertmanager webhook v4), got {type(data).__name__}")
    try:
        return Notification.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False)[:5]:
            where = ".".join(str(part) for part in err["loc"]) or "(root)"
            problems.append(f"{where}: {err['msg']}")
        raise PayloadError("not an Alertmanager webhook v4 payload: " + "; ".join(problems)) from None


def load_stored(text: str) -> Notification:
    """A notification as the outbox stored it (already validated once)."""
    return Notification.model_validate_json(text)
