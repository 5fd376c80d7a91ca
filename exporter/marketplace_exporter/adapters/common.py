"""Response helpers every adapter shares: short redacted messages, bounded number parsing,
Retry-After, configured dates as Unix time, and the meaning of an unwanted HTTP status.
All pure and safe on hostile input."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from re import Pattern
from typing import Any, ClassVar

from marketplace_exporter.adapters.base import (
    SUCCESS,
    Classification,
    ProbeContext,
    RouteMatch,
    Verdict,
    json_or_none,
)
from marketplace_exporter.catalogue import Reason
from marketplace_exporter.model import HttpResponse, ProbeOutcome, RateLimitObservation
from marketplace_exporter.secrets import REDACTOR

_WHITESPACE = re.compile(r"\s+")
#: larger than any token we reveal, so a secret is redacted before the text is cut
_REDACT_WINDOW = 8192
#: beyond this, an integer is not a quantity any API we probe would send (and float() may overflow)
_MAX_INT = 10**15


def short(text: str, limit: int = 160) -> str:
    """A one-line, redacted, bounded text for ProbeOutcome.message (bodies can be hostile)."""
    text = REDACTOR.redact(text[:_REDACT_WINDOW])
    if text.isprintable():
        # printable text has no whitespace but the ASCII space: when it has no runs of spaces and
        # no edges to strip, the normalisation below would change nothing (hot on traffic)
        if "  " not in text and text[:1] != " " and text[-1:] != " ":
            return text if len(text) <= limit else text[: limit - 1] + "…"
    else:
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = _WHITESPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def finite_number(value: object) -> float | None:
    """A JSON number as float; None for bools, strings, huge ints, NaN and infinities."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):
        return float(value) if abs(value) <= _MAX_INT else None
    return value if math.isfinite(value) else None


def retry_after_seconds(value: str | None, now: float, cap: float = 86400.0) -> float | None:
    """Retry-After as seconds from ``now`` (delta-seconds or HTTP-date); None if absent/garbage."""
    if not value:
        return None
    value = value.strip()[:64]
    if value.isascii() and value.isdigit():
        return min(float(int(value[:12])), cap)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(when.timestamp() - now, 0.0), cap)


def unix_time(value: date) -> float:
    """A configured date or datetime as Unix time: dates are midnight UTC, naive datetimes UTC."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()


def pick_host(ctx: ProbeContext, production: str, sandbox: str | None = None) -> str:
    """The API host for a probe: ``ctx.base_url`` verbatim (simulator, proxy, other region) if set,
    else the sandbox host when the account says sandbox and the platform has one, else production."""
    if ctx.base_url:
        return ctx.base_url.rstrip("/")
    return sandbox if ctx.sandbox and sandbox is not None else production


def reason_for_status(status: int) -> Reason | None:
    """The reason an unwanted HTTP status stands for; None for 1xx/2xx/3xx (caller decides)."""
    if 500 <= status <= 599:
        return Reason.SERVER_ERROR
    if status == 429:
        return Reason.THROTTLED
    if status == 401:
        return Reason.AUTH
    if status == 403:
        return Reason.PERMISSION
    if 400 <= status <= 499:
        return Reason.CLIENT_ERROR
    return None


def status_only(status: int) -> Classification:
    """An answer whose body was not read: the HTTP status alone decides (1xx-3xx: success)."""
    reason = reason_for_status(status)
    return SUCCESS if reason is None else Classification(reason)


class NoProductionTraffic:
    """Mixin for checks with no marketplace behind them (generic HTTP, TLS): production traffic is
    never attributed to them, so they match no route and judge an answer by its status alone."""

    api_operations: ClassVar[frozenset[str]] = frozenset()

    def match(self, host: str | None, path: str, query: str = "") -> RouteMatch | None:
        return None

    def classify(self, operation: str, status: int, headers: Mapping[str, str], body: bytes | None,
                 now: float) -> Classification:
        return status_only(status)


#: a route table: (compiled pattern matched against the END of the path, operation label)
Routes = Sequence[tuple[Pattern[str], str]]


def routes(*table: tuple[str, str]) -> tuple[tuple[Pattern[str], str], ...]:
    """Compile ``(path regex, operation)`` pairs. Patterns match the end of the path, so a base-URL
    prefix (``/shopee`` on the simulator, a proxy's ``/erp-gateway``) changes nothing; ids inside
    paths are ``[^/]+`` and never reach a label."""
    return tuple((re.compile(f"(?:^|/){pattern.lstrip('/')}/?$"), operation) for pattern, operation in table)


def match_path(table: Routes, path: str, site: str | None = None) -> RouteMatch:
    """The first route whose pattern ends ``path``, else ``other`` (still this marketplace)."""
    path = path[:512]
    for pattern, operation in table:
        if pattern.search(path):
            return RouteMatch(operation, site)
    return RouteMatch(OTHER_OPERATION, site)


#: the operation label of a call to a known platform host that no route names
OTHER_OPERATION = "other"


def route_operations(table: Routes) -> frozenset[str]:
    """The operation labels a route table names: an adapter's ``api_operations`` (plus any
    operations it names another way, such as AliExpress's ``method=`` APIs)."""
    return frozenset(operation for _, operation in table)


def match_hosts(hosts: frozenset[str], table: Routes, host: str | None, path: str) -> RouteMatch | None:
    """:meth:`Adapter.match` of a platform whose hosts do not tell the site: None for a host that is
    not one of ``hosts``, else the route of ``path``. ``host`` None means the caller mapped a base
    URL (simulator, proxy) to this platform: the path alone decides."""
    if host is not None and host not in hosts:
        return None
    return match_path(table, path)


#: an adapter's failure classifier, shared by its probes and production traffic:
#: (response, the body parsed as a JSON object or None, now) → the verdict, None for a success
FailureOf = Callable[[HttpResponse, Mapping[str, Any] | None, float], Verdict | None]


def classify_with(failure_of: FailureOf, status: int, headers: Mapping[str, str], body: bytes | None,
                  now: float) -> Classification:
    """:meth:`Adapter.classify` by the adapter's own ``failure_of``: a body the caller did not read
    leaves the status to decide; a read one is parsed once and judged as the probe judges it."""
    if body is None:
        return status_only(status)
    return Classification.of_verdict(failure_of(HttpResponse(status, headers, body), json_or_none(body), now))


def token_classification(minted: object, rate_limit: RateLimitObservation | None = None) -> Classification:
    """A 2xx token answer as the probe's token step reads it (``classify_token``): its failed
    outcome when the token is unusable, else a success."""
    return Classification.of(minted if isinstance(minted, ProbeOutcome) else None, rate_limit)


def host_of(url_or_host: str) -> str:
    """Lower-cased host without scheme, port or path (``https://API.x.com:443/p`` → ``api.x.com``)."""
    host = url_or_host.split("://", 1)[-1].split("/", 1)[0]
    return host.rsplit("@", 1)[-1].split(":", 1)[0].lower()
