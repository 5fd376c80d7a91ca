"""What a pipeline sends (:class:`DeployMarker`, validated field by field) and what the audit log
holds (:class:`DeployRecord`, the marker plus what the exporter added: id, receive time, freeze).

Validation is strict because the values end up in three places that each need care: metric labels
(service, environment, version, commit: restricted charset and length so a typo cannot explode
cardinality), an audit log (no control characters that could forge lines in an export), and a
Grafana annotation. Every error names the field, so a pipeline's log says what to fix.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field, ValidationInfo, field_validator

from marketplace_exporter.catalogue import DeployStatus
from marketplace_exporter.labels import LABEL_VALUE_EXPECTED, LABEL_VALUE_PATTERN
from marketplace_exporter.request_models import RequestInvalid, RequestModel, kind_of, parse_body, required

#: a version label: tags, semver, calendar versions, image tags ("v1.4.2", "2026.11.26-3", "api:1.2")
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+\-:/@]{0,127}$"
COMMIT_PATTERN = r"^[0-9a-fA-F]{4,64}$"
SITE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,31}$"
URL_PATTERN = r"^https?://[^\s/$.?#][^\s]*$"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MAX_SITES = 64
MAX_ACTOR = 128
MAX_URL = 2048
MAX_NOTES = 4096
#: a marker may say when the deploy happened (backfills, slow pipelines) but not in the future
MAX_FUTURE_SKEW = 300.0
#: earliest accepted timestamp: anything before is a unit mistake (ms vs s) or garbage
MIN_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC).timestamp()

#: kept for callers that name the error class of this module
MarkerInvalid = RequestInvalid

def _or_empty(pattern: str) -> str:
    """``^(?:|body)$``: the pattern, or nothing (an optional field sent as "")."""
    return f"^(?:|{pattern[1:-1]})$"


_LABEL = Field(pattern=LABEL_VALUE_PATTERN, description=LABEL_VALUE_EXPECTED)


class MarkerBody(RequestModel):
    """The JSON body of ``POST /api/v1/deploys`` as a pipeline sends it."""

    service: Annotated[str, _LABEL]
    environment: Annotated[str, _LABEL]
    version: Annotated[str, Field(pattern=VERSION_PATTERN, description=(
        "a version such as v1.4.2 or 2026.11.26-3 (max 128, no spaces)"))]
    commit: Annotated[str, Field(pattern=_or_empty(COMMIT_PATTERN),
                                 description="a hexadecimal commit id (4 to 64 characters)")] = ""
    sites: tuple[Annotated[str, Field(pattern=SITE_PATTERN)], ...] = Field(
        default=(), description="a list of site codes such as US or SG (max 32 characters)")
    status: DeployStatus = Field(default=DeployStatus.SUCCEEDED, description=(
        "one of " + ", ".join(status.value for status in DeployStatus)))
    pipeline_url: Annotated[str, Field(pattern=_or_empty(URL_PATTERN), max_length=MAX_URL,
                                       description=f"an http(s) URL of at most {MAX_URL} characters")] = ""
    actor: Annotated[str, Field(max_length=MAX_ACTOR)] = ""
    notes: Annotated[str, Field(max_length=MAX_NOTES)] = ""
    #: when the deploy happened (unix seconds or RFC 3339), if the pipeline says so
    timestamp: float | None = None

    @field_validator("service", "environment", "version", mode="before")
    @classmethod
    def _required(cls, value: object, info: ValidationInfo) -> object:
        if value is None or value == "":
            raise required(cls, str(info.field_name))
        return value

    @field_validator("commit", "pipeline_url", "actor", "notes", "status", mode="before")
    @classmethod
    def _null_is_unset(cls, value: object, info: ValidationInfo) -> object:
        if value is None:
            return DeployStatus.SUCCEEDED if info.field_name == "status" else ""
        return value

    @field_validator("sites", mode="before")
    @classmethod
    def _site_list(cls, value: object) -> object:
        if value is None:
            return ()
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            if len(value) > MAX_SITES:
                raise ValueError(f"at most {MAX_SITES} sites, got {len(value)}")
            for site in value:
                if not isinstance(site, str) or not re.fullmatch(SITE_PATTERN[1:-1], site):
                    raise ValueError(f"expected site codes such as US or SG (max 32 characters), "
                                     f"got {kind_of(site)}")
            return tuple(dict.fromkeys(value))
        return value

    @field_validator("actor", "notes")
    @classmethod
    def _no_control_characters(cls, value: str, info: ValidationInfo) -> str:
        if _CONTROL.search(value) or (info.field_name != "notes" and "\n" in value):
            raise ValueError("control characters are not allowed")
        return value

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp(cls, value: object, info: ValidationInfo) -> float | None:
        return parse_timestamp(value, (info.context or {}).get("now"))


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
    body_model = parse_body(MarkerBody, body, context={"now": now})
    return DeployMarker(**body_model.model_dump())


def parse_timestamp(value: object, now: float | None) -> float | None:
    """Unix seconds (number) or an RFC 3339 string with an offset; never in the future."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected unix seconds or RFC 3339, got {kind_of(value)}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            raise ValueError("not a unix time (too large)") from None
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"expected unix seconds or RFC 3339 such as 2026-11-11T00:00:00+08:00, "
                             f"got {kind_of(value)}") from None
        if parsed.tzinfo is None:
            raise ValueError("an RFC 3339 timestamp needs an offset (Z or +08:00)")
        seconds = parsed.timestamp()
    else:
        raise ValueError(f"expected unix seconds or RFC 3339, got {kind_of(value)}")
    if not math.isfinite(seconds):
        raise ValueError("not a finite number")
    if seconds < MIN_TIMESTAMP:
        raise ValueError("expected unix seconds after 2000-01-01")
    if now is not None and seconds > now + MAX_FUTURE_SKEW:
        if seconds > 1e11:
            raise ValueError("in the future: looks like milliseconds; send seconds")
        raise ValueError(f"{seconds - now:.0f}s in the future (allowed skew "
                         f"{MAX_FUTURE_SKEW:.0f}s): check the sender's clock")
    return seconds


__all__ = ["DeployMarker", "DeployRecord", "MarkerBody", "MarkerInvalid", "parse_marker", "parse_timestamp"]
