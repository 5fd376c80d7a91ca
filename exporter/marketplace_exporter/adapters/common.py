"""Response helpers every adapter shares: bounded number parsing, Retry-After, configured dates as
Unix time, the API host of a probe. All pure and safe on hostile input."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

from marketplace_exporter.adapters.base import ProbeContext, reason_for_status, retry_after_seconds
from marketplace_exporter.adapters.routes import host_of
from marketplace_exporter.catalogue import Credential, Reason
from marketplace_exporter.model import CredentialObservation, HttpResponse, ProbeOutcome, short

#: beyond this, an integer is not a quantity any API we probe would send (and float() may overflow)
_MAX_INT = 10**15


def finite_number(value: object) -> float | None:
    """A JSON number as float; None for bools, strings, huge ints, NaN and infinities."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):
        return float(value) if abs(value) <= _MAX_INT else None
    return value if math.isfinite(value) else None


def unix_time(value: date) -> float:
    """A configured date or datetime as Unix time: dates are midnight UTC, naive datetimes UTC."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()


def configured_dates(*dates: tuple[Credential, date | None]) -> tuple[CredentialObservation, ...]:
    """Expiry dates the seller recorded in config (no API reports them) as observations; dates
    left out (None) are skipped."""
    return tuple(CredentialObservation(credential, unix_time(when)) for credential, when in dates
                 if when is not None)


def pick_host(ctx: ProbeContext[Any, Any], production: str, sandbox: str | None = None) -> str:
    """The API host for a probe: ``ctx.base_url`` verbatim (simulator, proxy, other region) if set,
    else the sandbox host when the account says sandbox and the platform has one, else production."""
    if ctx.base_url:
        return ctx.base_url.rstrip("/")
    return sandbox if ctx.sandbox and sandbox is not None else production



def by_status(response: HttpResponse, why: str, now: float, *, every_status: bool = True) -> ProbeOutcome:
    """An answer without the platform's envelope (a gateway page, a proxy, a broken body): the HTTP
    status is all there is. ``every_status`` False: only 5xx and 429 speak (platforms whose 4xx
    always carry an envelope), any other status is an ``invalid_response``."""
    status = response.status
    if every_status:
        reason = reason_for_status(status) or Reason.INVALID_RESPONSE
    else:
        reason = (Reason.SERVER_ERROR if 500 <= status <= 599 else Reason.THROTTLED if status == 429
                  else Reason.INVALID_RESPONSE)
    return ProbeOutcome.failed(reason, f"HTTP {status}: {why}", http_status=status)


__all__ = ["by_status", "configured_dates", "finite_number", "host_of", "pick_host", "retry_after_seconds", "short",
           "unix_time"]
