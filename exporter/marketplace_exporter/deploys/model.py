"""What a pipeline sends (:class:`DeployMarker`, validated field by field) and what the audit log
holds (:class:`DeployRecord`, the marker plus what the exporter added: id, receive time, freeze).

Validation is strict because the values end up in three places that each need care: metric labels
(service, environment, version, commit: restricted charset and length so a typo cannot explode
cardinality), an audit log (no control characters that could forge lines in an export), and a
Grafana annotation. Every error names the field, so a pipeline's log says what to fix.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from marketplace_exporter.catalogue import DeployStatus

#: service / environment: they become metric labels and appear in dashboards' variable lists
LABEL_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$")
#: a version label: tags, semver, calendar versions, image tags ("v1.4.2", "2026.11.26-3", "api:1.2")
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\-:/@]{0,127}$")
COMMIT = re.compile(r"^[0-9a-fA-F]{4,64}$")
SITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,31}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MAX_SITES = 64
MAX_ACTOR = 128
MAX_URL = 2048
MAX_NOTES = 4096
#: a marker may say when the deploy happened (backfills, slow pipelines) but not in the future
MAX_FUTURE_SKEW = 300.0
#: earliest accepted timestamp: anything before is a unit mistake (ms vs s) or garbage
MIN_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC).timestamp()

FIELDS = ("service", "environment", "version", "commit", "sites", "status", "pipeline_url", "actor",
          "notes", "timestamp")


class MarkerInvalid(ValueError):
    """One field of a marker is wrong; ``field`` names it (``body`` for the document itself)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class DeployMarker:
    """A validated deploy marker as a pipeline reported it."""

    service: str
    environment: str
    version: str
    commit: str = ""
    sites: tuple[str, ...] = ()
    status: DeployStatus = DeployStatus.SUCCEEDED
    pipeline_url: str = ""
    actor: str = ""
    notes: str = ""
    #: when the deploy happened, if the pipeline says so; else the exporter's receive time is used
    timestamp: float | None = None


@dataclass(frozen=True)
class DeployRecord:
    """One row of the append-only audit log."""

    id: int
    received_at: float
    deployed_at: float
    service: str
    environment: str
    version: str
    commit: str
    sites: tuple[str, ...]
    status: DeployStatus
    pipeline_url: str
    actor: str
    notes: str
    #: name of the freeze window active for the environment when recorded, else None
    freeze: str | None = None
    freeze_policy: str | None = None
    #: the client address the marker came from (self-reported ``actor`` is not proof)
    remote_addr: str = ""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["sites"] = list(self.sites)
        data["status"] = self.status.value
        data["received_at_iso"] = _iso(self.received_at)
        data["deployed_at_iso"] = _iso(self.deployed_at)
        return data


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_marker(body: object, *, now: float) -> DeployMarker:
    """The JSON body of ``POST /api/v1/deploys`` → a marker, or :class:`MarkerInvalid`."""
    if not isinstance(body, dict):
        raise MarkerInvalid("body", f"expected a JSON object, got {_kind(body)}")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise MarkerInvalid(str(unknown[0]), f"unknown field; expected some of {', '.join(FIELDS)}")
    return DeployMarker(
        service=_required(body, "service", LABEL_SAFE, "letters, digits, '_', '.', '-' (max 63)"),
        environment=_required(body, "environment", LABEL_SAFE, "letters, digits, '_', '.', '-' (max 63)"),
        version=_required(body, "version", VERSION, "a version such as v1.4.2 or 2026.11.26-3 (max 128, "
                                                     "no spaces)"),
        commit=_optional_pattern(body, "commit", COMMIT, "a hexadecimal commit id (4 to 64 characters)"),
        sites=_sites(body.get("sites")),
        status=_status(body.get("status")),
        pipeline_url=_url(body.get("pipeline_url")),
        actor=_text(body, "actor", MAX_ACTOR),
        notes=_text(body, "notes", MAX_NOTES, multiline=True),
        timestamp=_timestamp(body.get("timestamp"), now),
    )


def _kind(value: object) -> str:
    """A short, JSON-flavoured description of a wrong value for an error message."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return json.dumps(value, ensure_ascii=False)[:60]


def _string(body: dict[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MarkerInvalid(field, f"expected a string, got {_kind(value)}")
    return value


def _required(body: dict[str, Any], field: str, pattern: re.Pattern[str], expected: str) -> str:
    value = _string(body, field)
    if value is None or value == "":
        raise MarkerInvalid(field, "required")
    if not pattern.match(value):
        raise MarkerInvalid(field, f"expected {expected}, got {json.dumps(value[:80])}")
    return value


def _optional_pattern(body: dict[str, Any], field: str, pattern: re.Pattern[str], expected: str) -> str:
    value = _string(body, field)
    if not value:
        return ""
    if not pattern.match(value):
        raise MarkerInvalid(field, f"expected {expected}, got {json.dumps(value[:80])}")
    return value


def _sites(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list):
        raise MarkerInvalid("sites", f"expected a list of site codes, got {_kind(value)}")
    if len(value) > MAX_SITES:
        raise MarkerInvalid("sites", f"at most {MAX_SITES} sites, got {len(value)}")
    for site in value:
        if not isinstance(site, str) or not SITE.match(site):
            raise MarkerInvalid("sites", f"expected site codes such as US or SG (max 32 characters), "
                                         f"got {_kind(site)}")
    return tuple(dict.fromkeys(value))


def _status(value: object) -> DeployStatus:
    if value is None:
        return DeployStatus.SUCCEEDED
    allowed = {status.value: status for status in DeployStatus}
    if not isinstance(value, str) or value not in allowed:
        raise MarkerInvalid("status", f"expected one of {', '.join(allowed)}, got {_kind(value)}")
    return allowed[value]


def _url(value: object) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise MarkerInvalid("pipeline_url", f"expected a string, got {_kind(value)}")
    if len(value) > MAX_URL or not re.match(r"^https?://[^\s/$.?#][^\s]*$", value):
        raise MarkerInvalid("pipeline_url", f"expected an http(s) URL of at most {MAX_URL} characters")
    return value


def _text(body: dict[str, Any], field: str, limit: int, *, multiline: bool = False) -> str:
    value = _string(body, field) or ""
    if len(value) > limit:
        raise MarkerInvalid(field, f"at most {limit} characters, got {len(value)}")
    if _CONTROL.search(value) or (not multiline and "\n" in value):
        raise MarkerInvalid(field, "control characters are not allowed")
    return value


def _timestamp(value: object, now: float) -> float | None:
    """Unix seconds (number) or an RFC 3339 string with an offset; never in the future."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise MarkerInvalid("timestamp", f"expected unix seconds or RFC 3339, got {_kind(value)}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            raise MarkerInvalid("timestamp", "not a unix time (too large)") from None
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise MarkerInvalid("timestamp", f"expected unix seconds or RFC 3339 such as "
                                             f"2026-11-11T00:00:00+08:00, got {_kind(value)}") from None
        if parsed.tzinfo is None:
            raise MarkerInvalid("timestamp", "an RFC 3339 timestamp needs an offset (Z or +08:00)")
        seconds = parsed.timestamp()
    else:
        raise MarkerInvalid("timestamp", f"expected unix seconds or RFC 3339, got {_kind(value)}")
    if not math.isfinite(seconds):
        raise MarkerInvalid("timestamp", "not a finite number")
    if seconds < MIN_TIMESTAMP:
        raise MarkerInvalid("timestamp", "expected unix seconds after 2000-01-01")
    if seconds > now + MAX_FUTURE_SKEW:
        if seconds > 1e11:
            raise MarkerInvalid("timestamp", "in the future: looks like milliseconds; send seconds")
        raise MarkerInvalid("timestamp", f"{seconds - now:.0f}s in the future (allowed skew "
                                         f"{MAX_FUTURE_SKEW:.0f}s): check the sender's clock")
    return seconds


__all__ = ["DeployMarker", "DeployRecord", "MarkerInvalid", "parse_marker"]
