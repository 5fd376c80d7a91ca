"""The ``deploys:`` config section: who may write markers, freeze windows, Grafana annotations.

    deploys:
      token_env: MARKETPLACE_EXPORTER_DEPLOY_TOKEN   # variable holding the Bearer token
      anonymous_writes: never        # never | loopback (no token set: 127.0.0.1 only) | always
      freeze_windows:
        - name: double-11
          environments: [production]
          start: 2026-11-10          # a date (whole day) or a wall-clock time in `timezone`
          end: 2026-11-12            # a date is inclusive: the freeze lasts until 11-13 00:00
          timezone: Asia/Shanghai
          policy: block              # warn: flag the marker; block: `verify` fails the pipeline
      grafana:
        url: http://grafana:3000
        api_key: ${GRAFANA_API_KEY}
        dashboard_uid: mpx-deploys     # optional: annotate one dashboard, else all (org-wide)
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from marketplace_exporter.adapters.base import StrictModel
from marketplace_exporter.api_defaults import DEFAULT_TOKEN_ENV
from marketplace_exporter.config_types import AnonymousWritesSetting, Duration, LabelValue
from marketplace_exporter.deploys.freeze import FreezeWindow
from marketplace_exporter.secrets import Secret

_EnvVarName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]


class FreezeWindowConfig(StrictModel):
    """One dated freeze (大促封网): 11.11, 12.12, 618, Black Friday / Cyber Monday..."""

    name: LabelValue
    environments: Annotated[list[LabelValue], Field(min_length=1)]
    #: a date (from 00:00) or a date-time; without an offset it is read in ``timezone``
    start: datetime | date
    #: a date is inclusive (the freeze ends at 00:00 the next day); a date-time is exclusive
    end: datetime | date
    timezone: str = "UTC"
    policy: Literal["warn", "block"] = "warn"

    @field_validator("start", "end", mode="before")
    @classmethod
    def _quoted_date_is_a_date(cls, value: object) -> object:
        """``"2026-11-11"`` (quoted in YAML) means the same whole day as ``2026-11-11`` unquoted;
        pydantic alone would read it as midnight, shortening an inclusive end by a day."""
        if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
            try:
                return date.fromisoformat(value)
            except ValueError:
                return value
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"expected an IANA timezone such as Asia/Shanghai or UTC, got {value!r}") from None
        return value

    @model_validator(mode="after")
    def _ordered(self) -> FreezeWindowConfig:
        self.window()  # FreezeWindow refuses end <= start
        return self

    def window(self) -> FreezeWindow:
        zone = ZoneInfo(self.timezone)
        return FreezeWindow(
            name=self.name, environments=tuple(self.environments), policy=self.policy,
            start=_aware(self.start, zone, end=False), end=_aware(self.end, zone, end=True))


def _aware(value: datetime | date, zone: ZoneInfo, *, end: bool) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time(0, 0), tzinfo=zone)


class GrafanaConfig(StrictModel):
    """Where deploy annotations go (``POST {url}/api/annotations``); failures never fail a mark."""

    url: Annotated[str, Field(pattern=r"^https?://[^\s/$.?#][^\s]*$")]
    #: a service-account token (Editor on the dashboards): ${ENV}, {file: PATH} or {value: ...}
    api_key: Secret | None = None
    dashboard_uid: str | None = None
    timeout: Duration = 5.0
    #: attempts after the first one; back-off doubles from ``retry_backoff``
    retries: Annotated[int, Field(ge=0, le=10)] = 3
    retry_backoff: Duration = 1.0


class DeploysConfig(StrictModel):
    """The ``deploys:`` section (every key optional)."""

    token_env: _EnvVarName = DEFAULT_TOKEN_ENV
    anonymous_writes: AnonymousWritesSetting = "never"
    #: distinct services / environments markers may name; a marker for one more is refused (422),
    #: so a pipeline sending build numbers as services cannot grow the series without bound
    max_services: Annotated[int, Field(ge=1, le=100_000)] = 500
    max_environments: Annotated[int, Field(ge=1, le=10_000)] = 20
    freeze_windows: list[FreezeWindowConfig] = []
    grafana: GrafanaConfig | None = None

    @model_validator(mode="after")
    def _unique_windows(self) -> DeploysConfig:
        names = [window.name for window in self.freeze_windows]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"freeze window names must be unique, got {', '.join(duplicates)} twice")
        return self

    def windows(self) -> tuple[FreezeWindow, ...]:
        return tuple(window.window() for window in self.freeze_windows)


__all__ = ["DeploysConfig", "FreezeWindowConfig", "GrafanaConfig"]
