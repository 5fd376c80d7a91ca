"""eBay answers → outcomes: the OAuth token endpoint, the REST ``errors`` envelope, and the
Developer Analytics rate-limit report. Pure functions, safe on hostile input.

Facts and source tags: ``docs/marketplaces/ebay.md`` and ``docs/marketplaces/sources.md``: [B2] the
Sell Account contract, [B3] the RESTful-API guide and its error table, [B5][B6] token requests and
responses, [B9] ``invalid_grant``, [B13] the Developer Analytics contract, [OBS B15] live 403/429
bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from marketplace_exporter.adapters.base import json_or_none, reason_for_status
from marketplace_exporter.adapters.common import finite_number, short
from marketplace_exporter.adapters.tokens import read_oauth_token
from marketplace_exporter.catalogue import RateLimitSource, Reason
from marketplace_exporter.model import HttpResponse, Minted, ProbeFailed, ProbeOutcome, RateLimitObservation

#: eBay's common ``errorId`` values [B3] → reason. The status eBay pairs with each is in the comment;
#: the errorId decides even when the status disagrees (a proxy may rewrite statuses, not bodies).
ERROR_REASONS: Mapping[int, Reason] = {
    1001: Reason.AUTH,  # 401 "Invalid access token" (expired, revoked, unknown)
    1002: Reason.AUTH,  # 400 missing access token: the catalogue's auth covers "missing"
    1003: Reason.AUTH,  # 400 token type in the Authorization header is invalid (wrong kind of token)
    1004: Reason.SERVER_ERROR,  # 500 internal
    1100: Reason.PERMISSION,  # 403 "Access denied" / "Insufficient permissions…" (scope not granted)
    2001: Reason.THROTTLED,  # 429 "Too many requests" (daily quota spent)
    2002: Reason.CLIENT_ERROR,  # 404 resource not found
    2003: Reason.SERVER_ERROR,  # 500 "Internal error"
    2004: Reason.CLIENT_ERROR,  # 400
    3001: Reason.CLIENT_ERROR,  # 400
    3002: Reason.CLIENT_ERROR,  # 400
    3003: Reason.CLIENT_ERROR,  # 404
    3004: Reason.SERVER_ERROR,  # 500
    3005: Reason.SERVER_ERROR,  # 502
    # not in the fact sheet's table but in the Developer Analytics contract it cites [B13]:
    # 500, domain API_ANALYTICS, "There was a problem with an eBay internal system or process."
    105000: Reason.SERVER_ERROR,
    # getPrivileges' documented 500, domain API_ACCOUNT, "System error." [B2]
    20500: Reason.SERVER_ERROR,
}
#: OAuth ``error`` values of the token endpoint. The fact sheet names ``invalid_grant`` [B9]; the
#: others are the standard OAuth 2.0 codes (RFC 6749 §5.2, §4.1.2.1) an OAuth server may send.
OAUTH_CODES: Mapping[str, Reason] = {
    "invalid_grant": Reason.AUTH,  # refresh token revoked, password changed, expired [B9]
    "invalid_client": Reason.AUTH,  # wrong client id or secret
    "unauthorized_client": Reason.PERMISSION,  # the app may not use this grant
    "access_denied": Reason.PERMISSION,
    # a configured scope the seller never consented to: the credential lacks that scope [B5]
    "invalid_scope": Reason.PERMISSION,
    "invalid_request": Reason.CLIENT_ERROR,
    "unsupported_grant_type": Reason.CLIENT_ERROR,
    "server_error": Reason.SERVER_ERROR,
    "temporarily_unavailable": Reason.SERVER_ERROR,
}
KNOWN_CODES = frozenset(str(error_id) for error_id in ERROR_REASONS) | frozenset(OAUTH_CODES)

#: eBay says 7200 [B6]; anything beyond a year is a broken or hostile response
_MAX_EXPIRES_IN = 366 * 86400.0
_MAX_ERROR_ID = 10**12
#: a rate entry's counts beyond this are not a quota eBay would send
_MAX_COUNT = 10**12


def read_token(response: HttpResponse, now: float, grant: str) -> Minted:
    """The access token and its expiry from a good token answer; raises :class:`ProbeFailed` with
    what any other answer says."""
    body = json_or_none(response.body)
    if not 200 <= response.status <= 299:
        raise ProbeFailed(judge_token(response, body, now, grant))
    return read_oauth_token(response, body, now, what=f"eBay token request ({grant} grant)",
                            max_expires_in=_MAX_EXPIRES_IN)


def judge_token(response: HttpResponse, body: Mapping[str, Any] | None, now: float, grant: str) -> ProbeOutcome:
    """What a non-2xx token answer says: its OAuth ``error``, or the REST envelope some gateways
    send instead."""
    status = response.status
    error = body.get("error") if body is not None else None
    code = short(error, 64) if isinstance(error, str) and error else None
    description = body.get("error_description") if body is not None else None
    text = description if isinstance(description, str) else ""
    if code is None:  # some gateways answer with the REST envelope instead
        error_id, text = first_error(body)
        code = error_id
    if status == 429:
        reason = Reason.THROTTLED  # refresh grants are capped at 50 000/day per app [B10]
    elif code is not None and code in OAUTH_CODES:
        reason = OAUTH_CODES[code]
    elif code is not None and code.isascii() and code.isdigit() and int(code) in ERROR_REASONS:
        reason = ERROR_REASONS[int(code)]
    else:
        reason = reason_for_status(status) or Reason.INVALID_RESPONSE
    what = f"eBay token request ({grant} grant)"
    message = f"{what}: HTTP {status}" + (f" {code}" if code else "") + (f": {text}" if text else "")
    return ProbeOutcome.failed(reason, message, code=code, http_status=status)


def judge(response: HttpResponse, body: Mapping[str, Any] | None, now: float) -> ProbeOutcome | None:
    """What an API answer says when it fails (None for a 2xx): ``errors[0].errorId`` decides [B3];
    without one, the status does. Shared by probes and production traffic."""
    status = response.status
    if 200 <= status <= 299:
        return None
    code, text = first_error(body)
    named = ERROR_REASONS.get(int(code)) if code is not None else None
    reason = named if named is not None else reason_for_status(status) or Reason.INVALID_RESPONSE
    # Retry-After on eBay 429s is not documented; honoured when present (the probe asks), else the
    # engine backs off
    message = f"HTTP {status}" + (f" errorId {code}" if code else "") + (f": {text}" if text else "")
    return ProbeOutcome.failed(reason, message, code=code, http_status=status)


def first_error(body: Mapping[str, Any] | None) -> tuple[str | None, str]:
    """(errors[0].errorId as a string, "message longMessage") from the envelope [B3][B16]."""
    errors = body.get("errors") if body is not None else None
    first = errors[0] if isinstance(errors, list) and errors else None
    if not isinstance(first, dict):
        return None, ""
    error_id = first.get("errorId")
    code: str | None = None
    if isinstance(error_id, int) and not isinstance(error_id, bool) and 0 < error_id < _MAX_ERROR_ID:
        code = str(error_id)
    elif isinstance(error_id, str) and error_id.isascii() and error_id.isdigit() and len(error_id) <= 12:
        code = str(int(error_id))
    parts = [first.get(key) for key in ("message", "longMessage")]
    text = " ".join(part for part in parts if isinstance(part, str) and part)
    return code, text


def read_privilege(status: int, body: Mapping[str, Any] | None) -> ProbeOutcome:
    """``getPrivileges``: ``sellerRegistrationCompleted`` and ``sellingLimit`` [B2], both optional."""
    if body is None:
        return ProbeOutcome.failed(Reason.INVALID_RESPONSE, f"HTTP {status} without a JSON object",
                                   http_status=status)
    values: list[tuple[str, float]] = []
    message = "privileges returned"
    registered = body.get("sellerRegistrationCompleted")
    if isinstance(registered, bool):
        values.append(("seller_registration_completed", 1.0 if registered else 0.0))
        message = "seller registration " + ("completed" if registered else "NOT completed")
    limit = body.get("sellingLimit")
    quantity = finite_number(limit.get("quantity")) if isinstance(limit, dict) else None
    if quantity is not None and 0 <= quantity < _MAX_COUNT:
        values.append(("selling_limit_quantity", quantity))
    return ProbeOutcome.ok(status, message=message, values=tuple(values))


def read_rate_limits(status: int, body: Mapping[str, Any] | None) -> ProbeOutcome:
    """``getRateLimits``/``getUserRateLimits`` [B13]: 204 = nothing to report; otherwise the
    tightest rate (lowest remaining/limit) becomes the OBSERVED headroom."""
    if status == 204:
        return ProbeOutcome.ok(status, message="no rate-limit data to report (HTTP 204)")
    rate_limits = body.get("rateLimits") if body is not None else None
    if not isinstance(rate_limits, list):
        return ProbeOutcome.failed(Reason.INVALID_RESPONSE, f"HTTP {status} without a rateLimits list",
                                   http_status=status)
    best: tuple[float, RateLimitObservation, str] | None = None
    count = 0
    for api in rate_limits:
        if not isinstance(api, dict) or not isinstance(api.get("resources"), list):
            continue
        for resource in api["resources"]:
            if not isinstance(resource, dict) or not isinstance(resource.get("rates"), list):
                continue
            for rate in resource["rates"]:
                observation = _rate(rate)
                if observation is None:
                    continue
                count += 1
                ratio = observation.remaining_ratio
                assert ratio is not None
                if best is None or ratio < best[0]:
                    best = (ratio, observation, _describe(api, resource))
    if best is None:
        return ProbeOutcome.ok(status, message=f"{len(rate_limits)} APIs listed, no usable rate entry")
    _, observation, where = best
    assert observation.remaining is not None and observation.limit is not None
    reset = (f", resets {datetime.fromtimestamp(observation.reset_at, UTC):%Y-%m-%dT%H:%M:%SZ}"
             if observation.reset_at is not None else "")
    message = (f"tightest of {count}: {where}: {observation.remaining:.0f}/{observation.limit:.0f} "
               f"left{reset}")
    return ProbeOutcome.ok(status, message=short(message), rate_limit=observation)


def _rate(rate: object) -> RateLimitObservation | None:
    """One ``rates[]`` entry as an observation; None unless limit > 0 and 0 ≤ remaining."""
    if not isinstance(rate, dict):
        return None
    limit, remaining = finite_number(rate.get("limit")), finite_number(rate.get("remaining"))
    if limit is None or remaining is None or not 0 < limit < _MAX_COUNT or not 0 <= remaining < _MAX_COUNT:
        return None
    return RateLimitObservation(
        remaining_ratio=min(1.0, remaining / limit), source=RateLimitSource.OBSERVED,
        remaining=remaining, limit=limit, reset_at=_iso_time(rate.get("reset")))


def _iso_time(value: object) -> float | None:
    """``reset``: ISO-8601 UTC such as ``2018-08-04T07:09:00.000Z`` [B13]; naive means UTC."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _describe(api: Mapping[str, Any], resource: Mapping[str, Any]) -> str:
    parts = [api.get("apiContext"), api.get("apiName"), api.get("apiVersion"), resource.get("name")]
    return " ".join(short(part, 40) for part in parts if isinstance(part, str) and part) or "unnamed resource"
