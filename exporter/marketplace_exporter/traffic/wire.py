"""What ``POST /api/v1/traffic`` accepts, as pydantic models: the batch and each record in it.

Unknown fields are ignored here (unlike the deploy API): a reporter newer than the exporter may send
more, and refusing a whole batch of production evidence for it would lose data. Label values
(site, account, operation, code) are not validated but folded into the configured world by the
aggregator. Every refusal names the field and what was expected.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, ValidationInfo, field_validator

from marketplace_exporter.adapters import ADAPTERS
from marketplace_exporter.catalogue import Reason
from marketplace_exporter.labels import LABEL_VALUE_PATTERN, is_label_value
from marketplace_exporter.request_models import describe, kind_of

#: marketplaces traffic may name (the generic http and tls checks have no routes)
MARKETPLACES = frozenset(name for name, adapter in ADAPTERS.items() if adapter.api_operations)
REASONS = frozenset(reason.value for reason in Reason)
MAX_DURATION = 86400.0
MAX_DROPPED = 10**12
#: more requests left than any platform's window holds (Walmart's token counts are in the
#: thousands at most): a larger number is a broken or hostile record, not headroom
MAX_RATELIMIT_REMAINING = 1e9


class TrafficBatch(BaseModel):
    """``{service, instance, dropped, records}`` from one reporting process."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    service: str = Field(description=f"a name matching {LABEL_VALUE_PATTERN}")
    instance: Any = None
    dropped: Annotated[StrictInt, Field(ge=0, le=MAX_DROPPED)] = Field(
        default=0, description="a non-negative integer")
    records: list[Any] = Field(default=[], description="a list")

    @field_validator("service", mode="before")
    @classmethod
    def _service(cls, value: object) -> object:
        if not is_label_value(value):
            raise ValueError(f"expected a name matching {LABEL_VALUE_PATTERN}")
        return value


class TrafficRecordIn(BaseModel):
    """One reported call (label values are folded later, not refused)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    marketplace: str
    status: Annotated[StrictInt, Field(ge=0, le=599)] = Field(description="an integer 0..599 (0: no response)")
    reason: str = ""
    duration: Annotated[float, Field(ge=0, le=MAX_DURATION)] = Field(description=f"seconds 0..{MAX_DURATION:.0f}")
    ratelimit: Annotated[float, Field(ge=0, le=1)] | None = Field(default=None, description="a ratio 0..1 or null")
    ratelimit_remaining: Annotated[float, Field(ge=0, le=MAX_RATELIMIT_REMAINING)] | None = Field(
        default=None, description=f"a request count 0..{MAX_RATELIMIT_REMAINING:.0f} or null")

    @field_validator("marketplace", mode="before")
    @classmethod
    def _marketplace(cls, value: object) -> object:
        if not isinstance(value, str) or value not in MARKETPLACES:
            raise ValueError(f"expected one of {', '.join(sorted(MARKETPLACES))}")
        return value

    @field_validator("reason", mode="before")
    @classmethod
    def _reason(cls, value: object) -> object:
        if not value:
            return ""
        if not isinstance(value, str) or value not in REASONS:
            raise ValueError("expected one of the catalogue's reasons or empty")
        return value

    @field_validator("duration", "ratelimit", "ratelimit_remaining", mode="before")
    @classmethod
    def _json_number(cls, value: object, info: ValidationInfo) -> object:
        """JSON numbers only (``true`` is not 1 here), and finite ones."""
        if value is None or (isinstance(value, int | float) and not isinstance(value, bool)
                             and math.isfinite(value)):
            return value
        wanted = cls.model_fields[str(info.field_name)].description
        raise ValueError(f"expected {wanted}, got {kind_of(value)}")


def parse_record(raw: object) -> TrafficRecordIn | str:
    """A record, or why it is refused (``field: expected ...``)."""
    if not isinstance(raw, dict):
        return "record is not an object"
    try:
        return TrafficRecordIn.model_validate(raw)
    except ValidationError as exc:
        return str(describe(TrafficRecordIn, exc.errors(include_url=False)[0]))


__all__ = ["MARKETPLACES", "MAX_DROPPED", "REASONS", "TrafficBatch", "TrafficRecordIn", "parse_record"]
