"""Walmart Marketplace on the wire: how a request is authenticated and how an answer reads.

Pure functions, so every rule is a unit test (fact sheet section 5):

* the token call authenticates with ``Authorization: Basic base64(clientId:clientSecret)`` [F1][F4];
* every call carries a fresh ``WM_QOS.CORRELATION_ID`` UUID [F1][F13]. Adapters have no randomness
  and no clock of their own, so the id is a UUID5 of (alias, operation, step, ``now``): unique per
  call in practice (``now`` is the probe's start time in microseconds, and the token and API calls
  of one probe differ by step), reproducible in tests, and still a well-formed UUID. Walmart uses it
  only as a trace key; whether it must be random is not documented.
* headroom comes from ``x-current-token-count`` and the next-replenish time, which Walmart's own
  pages spell two ways (``x-next-replenish-time`` [OBS F10], ``X-Next-Replenishment-Time`` [F9]);
* errors come in the ``{"error": [{code, description, info, ...}]}`` envelope live gateways send
  [OBS F20] (the models say ``errors`` [F13][F14]; both are read), or as a bare status when the
  gateway is unreachable (e.g. 503) [F13].

No request signature: the legacy RSA ``WM_SEC.AUTH_SIGNATURE`` scheme [F8] is what Canada's legacy
APIs require [F18]. It is not implemented, on purpose: Walmart requires CA sellers to move to the
Global APIs with token authentication [F19], so a signer (and the RSA dependency it needs, e.g.
``cryptography``) would serve an integration path that is being retired, while what the Global APIs
expose for CA is UNCONFIRMED. ``site: CA`` is refused in config instead (see walmart.py).
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from marketplace_exporter.adapters.base import reason_for_status
from marketplace_exporter.adapters.common import finite_number, short
from marketplace_exporter.catalogue import RateLimitSource, Reason
from marketplace_exporter.model import RateLimitObservation

#: namespace of the exporter's correlation ids (a UUID5 of a fixed URL-like name)
CORRELATION_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "marketplace-exporter/walmart/correlation-id")
COUNT_HEADER = "x-current-token-count"
#: both spellings of the next-replenish header, lower-cased [OBS F10][F9]
REPLENISH_HEADERS = ("x-next-replenish-time", "x-next-replenishment-time")

_NUMBER = re.compile(r"[0-9]{1,16}(?:\.[0-9]{1,9})?")
#: a number at least this large is epoch milliseconds (1e11 s is the year 5138)
_MS_THRESHOLD = 1e11
#: a number below this (2001-09-09 in seconds) is no epoch time: could be a delta, in s or ms,
#: which is not documented, so it is ignored rather than guessed
_MIN_EPOCH_S = 1e9
#: a replenish time further than this from now is garbage
_MAX_DISTANCE_S = 366 * 86400.0
_MAX_COUNT = 1e9


def basic_authorization(client_id: str, client_secret: str) -> str:
    """The token call's ``Authorization`` value: ``Basic base64(clientId:clientSecret)`` [F1][F4]."""
    if ":" in client_id:
        raise ValueError("a client id containing ':' cannot be sent with Basic authentication")
    raw = f"{client_id}:{client_secret}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def correlation_id(alias: str, operation: str, step: str, now: float) -> str:
    """A fresh-per-call ``WM_QOS.CORRELATION_ID``, derived instead of drawn (see module doc)."""
    return str(uuid.uuid5(CORRELATION_NAMESPACE, f"{alias}|{operation}|{step}|{now!r}"))


def header(headers: Mapping[str, str], *names: str) -> str | None:
    """The first of ``names`` present, matched case-insensitively (the engine lower-cases names,
    but a test or another caller might not)."""
    for name in names:
        if name in headers:
            return headers[name]
    wanted = {name.lower() for name in names}
    for key, value in headers.items():
        if key.lower() in wanted:
            return value
    return None


def token_count(value: str | None) -> float | None:
    """``x-current-token-count`` as a number of calls left; None for absent or garbage values."""
    if value is None:
        return None
    text = value.strip()
    if not _NUMBER.fullmatch(text):
        return None
    count = float(text)
    return count if count <= _MAX_COUNT else None


def replenish_time(value: str | None, now: float) -> float | None:
    """The next-replenish header as Unix time, tolerant of every form seen or plausible.

    The format is not in the fact sheet. Third-party clients read it as epoch milliseconds
    [OBS F10], as Walmart's ``/v3/token/detail`` writes its times [F1]; epoch seconds, ISO-8601 and
    HTTP-dates are accepted too. Small numbers (a delta?) and times more than a year from ``now``
    are ignored.
    """
    if value is None:
        return None
    text = value.strip()[:64]
    when: float | None
    if _NUMBER.fullmatch(text):
        number = float(text)
        when = number / 1000.0 if number >= _MS_THRESHOLD else number if number >= _MIN_EPOCH_S else None
    else:
        when = _date_text(text)
    if when is None or abs(when - now) > _MAX_DISTANCE_S:
        return None
    return when


def epoch_field(value: object) -> float | None:
    """A Walmart timestamp field (``expire_at``: epoch milliseconds as a string [F1]) as Unix time.

    Numbers are accepted too; values that are not plausible epoch times give None."""
    if isinstance(value, str):
        text = value.strip()
        if not _NUMBER.fullmatch(text):
            return None
        number = float(text)
    else:
        found = finite_number(value)  # None for bools, NaN, infinities and huge integers
        if found is None:
            return None
        number = found
    if number < _MIN_EPOCH_S:  # too small to be a time
        return None
    seconds = number / 1000.0 if number >= _MS_THRESHOLD else number
    return seconds if seconds < _MS_THRESHOLD else None


def _date_text(text: str) -> float | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


# --- errors ----------------------------------------------------------------------------------------

#: codes the fact sheet names [F5][F14][OBS F11], plus the rest of the error-code table it cites
#: [F13]. Walmart appends the API's name to some (``.GMP_GATEWAY_API``): the part before the first
#: dot decides the reason, the whole code is the label.
KNOWN_CODES = frozenset({
    "UNAUTHORIZED.GMP_GATEWAY_API", "FORBIDDEN.GMP_GATEWAY_API", "REQUEST_THRESHOLD_VIOLATED",
    "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API", "SYSTEM_ERROR", "DOWNSTREAM_SYSTEM_TIME_OUT",
    "UNAUTHORIZED", "INVALID_REQUEST", "INVALID_REQUEST_HEADER", "INVALID_REQUEST_PARAM",
    "INVALID_REQUEST_CONTENT", "MISSING_REQUEST_HEADER", "MISSING_REQUEST_PARAM", "MALFORMED_REQUEST_CONTENT",
    "CONTENT_NOT_FOUND", "URI_NOT_FOUND", "METHOD_NOT_ALLOWED", "INVALID_ACCEPT_TYPE", "UNSUPPORTED_MEDIA_TYPE",
    "RESOURCE_IS_LOCKED.GMP_RECEIVER_API", "INVALID_SYSTEM_STATE",
})
#: base code → reason, used when the status alone does not decide (a 400 or 404 naming one of these)
_CODE_REASONS: Mapping[str, Reason] = {
    "UNAUTHORIZED": Reason.AUTH, "FORBIDDEN": Reason.PERMISSION, "REQUEST_THRESHOLD_VIOLATED": Reason.THROTTLED,
    "SYSTEM_ERROR": Reason.SERVER_ERROR, "DOWNSTREAM_SYSTEM_TIME_OUT": Reason.SERVER_ERROR,
    "INVALID_SYSTEM_STATE": Reason.SERVER_ERROR,
    # not Walmart's documented envelope: OAuth's (RFC 6749) codes, in case a bad refresh token is
    # answered that way (the refresh grant's error body is UNCONFIRMED)
    "invalid_grant": Reason.AUTH, "invalid_client": Reason.AUTH,
}


def error_reason(status: int, code: str | None) -> Reason:
    """The status decides where it is unambiguous (401 auth, 403 permission, 429 throttled, 5xx
    [F5][F13]); for other 4xx the code may name one of those classes; otherwise client_error."""
    decided = reason_for_status(status)
    if decided is not None and decided is not Reason.CLIENT_ERROR:
        return decided
    if decided is Reason.CLIENT_ERROR:
        base = code.split(".", 1)[0] if code else None
        return _CODE_REASONS.get(base or "", Reason.CLIENT_ERROR)
    return Reason.INVALID_RESPONSE  # 1xx/3xx: not an answer we can read


def first_error(body: Mapping[str, Any] | None) -> tuple[str | None, str]:
    """(code, "description/message info") of the first error in Walmart's envelope.

    Real gateway answers carry ``{"error": [{code, field, description, info, severity, category,
    causes, errorIdentifiers}]}`` [OBS F20]; the documented models say ``errors`` [F13][F14]. Both
    are read, as is ``{"errors": {"error": {...}}}`` (XML-style JSON older integrations parse) and
    OAuth's ``{"error": "<code>", "error_description"}``. Anything else gives (None, "")."""
    if body is None:
        return None, ""
    errors = body.get("error")
    if not isinstance(errors, list):
        errors = body.get("errors")
        if isinstance(errors, dict):
            errors = errors.get("error")
    first = errors[0] if isinstance(errors, list) and errors else errors
    if isinstance(first, dict):
        code = first.get("code")
        parts = [first.get(key) for key in ("description", "message", "info")]
    elif isinstance(body.get("error"), str):
        code, parts = body.get("error"), [body.get("error_description")]
    else:
        return None, ""
    seen: list[str] = []
    for part in parts:
        if isinstance(part, str) and part and part not in seen:
            seen.append(part)
    return (short(code, 64) if isinstance(code, str) and code else None), " ".join(seen)


def observe_headroom(headers: Mapping[str, str], now: float) -> RateLimitObservation | None:
    """Tokens left and the next replenish time, as reported [OBS F10][F9]; no ratio (the per-API
    limit is UNCONFIRMED), None when neither header is usable."""
    remaining = token_count(header(headers, COUNT_HEADER))
    reset_at = replenish_time(header(headers, *REPLENISH_HEADERS), now)
    if remaining is None and reset_at is None:
        return None
    return RateLimitObservation(remaining_ratio=None, source=RateLimitSource.OBSERVED, remaining=remaining,
                                reset_at=reset_at)
