"""eBay on the wire, for the simulator: the ``errors`` envelope table, daily quota windows, and
reading the Basic/Bearer Authorization headers and the token form (fact sheet section 2)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

DAY_S = 86400

# errorId → (status, domain, category, message, longMessage) [B3][OBS B15]. The fact sheet gives the
# ids, statuses and the texts of 1001, 1100 and 2001; the other texts are the simulator's wording.
ERRORS: Mapping[int, tuple[int, str, str, str, str]] = {
    1001: (401, "OAuth", "REQUEST", "Invalid access token",
           "Invalid access token. Check the value of the Authorization HTTP request header."),
    1002: (400, "OAuth", "REQUEST", "Missing access token",
           "Access token is required. Set the Authorization HTTP request header."),
    1003: (400, "OAuth", "REQUEST", "Token type in the Authorization header is invalid",
           "Token type in the Authorization header is invalid. Use the Bearer scheme."),
    # the official table says domain OAuth for 1100; live bodies say ACCESS [OBS B15]
    1100: (403, "ACCESS", "REQUEST", "Access denied", "Insufficient permissions to fulfill the request."),
    2001: (429, "ACCESS", "REQUEST", "Too many requests", "The request limit has been reached for the resource."),
    2002: (404, "ACCESS", "REQUEST", "Resource not found", "The requested resource was not found."),
    2003: (500, "ACCESS", "APPLICATION", "Internal error",
           "There was a problem with an eBay internal system or process. Contact eBay developer support "
           "for assistance."),
    2004: (400, "ACCESS", "REQUEST", "Invalid request",
           "Request has errors. For help, see the documentation for this API."),
    3005: (502, "ROUTING", "APPLICATION", "Service unavailable", "The service is currently unavailable."),
    # getPrivileges' documented 500 [B2]
    20500: (500, "API_ACCOUNT", "APPLICATION", "System error.",
            "There was a problem with an eBay internal system or process. Contact eBay developer support "
            "for assistance."),
}
_BY_STATUS = {400: 2004, 401: 1001, 403: 1100, 404: 2002, 429: 2001, 500: 2003, 502: 3005}


def error_id_for_status(status: int) -> int:
    """The common error eBay pairs with a status [B3]; other 4xx → 2004, other 5xx → 2003."""
    return _BY_STATUS.get(status, 2004 if status < 500 else 2003)


def error_body(error_id: int, parameters: list[dict[str, str]] | None = None) -> dict[str, Any]:
    _, domain, category, message, long_message = ERRORS[error_id]
    entry: dict[str, Any] = {"errorId": error_id, "domain": domain, "category": category,
                             "message": message, "longMessage": long_message}
    if parameters:
        entry["parameters"] = parameters
    return {"errors": [entry]}


#: "The day starts at midnight, 00:00:00 PST (not GMT)" [B19]: UTC-8, all year (the quote says PST)
DAY_START_OFFSET_S = -8 * 3600


@dataclass
class DailyQuota:
    """Calls per counter in the current eBay day; a new day starts every counter at zero.

    eBay states daily limits and reports ``reset``/``timeWindow`` [B11][B13]. Its day starts at
    midnight PST, as eBay documents for the Trading API's call limits [B19]; that the REST APIs
    count the same day is UNCONFIRMED and assumed here (the adapter only reads ``reset``).
    """

    day: int = -1
    used: dict[str, int] = field(default_factory=dict)

    def roll(self, now: float) -> None:
        day = int((now + DAY_START_OFFSET_S) // DAY_S)
        if day != self.day:
            self.day, self.used = day, {}

    def take(self, counter: str, limit: int, now: float) -> bool:
        """Count one call unless the counter is at its limit (then the call is refused)."""
        self.roll(now)
        if self.used.get(counter, 0) >= limit:
            return False
        self.used[counter] = self.used.get(counter, 0) + 1
        return True

    def spend(self, counter: str, calls: int, now: float) -> None:
        """Count calls made elsewhere (tests: production traffic that used most of the day)."""
        self.roll(now)
        self.used[counter] = self.used.get(counter, 0) + calls

    def reset_at(self) -> str:
        next_day = (self.day + 1) * DAY_S - DAY_START_OFFSET_S
        return datetime.fromtimestamp(next_day, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def json_response(status: int, body: Mapping[str, Any] | None, headers: Mapping[str, str]) -> web.Response:
    if body is None:
        return web.Response(status=status, headers=dict(headers))
    return web.Response(status=status, text=json.dumps(body), content_type="application/json",
                        headers=dict(headers))


def bearer(request: web.Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``; None for any other scheme or none."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def basic(request: web.Request) -> tuple[str, str] | None:
    """(client_id, client_secret) of ``Authorization: Basic base64(id:secret)`` [B5]."""
    scheme, _, encoded = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, client_secret = decoded.partition(":")
    return (client_id, client_secret) if colon else None


async def form(request: web.Request) -> dict[str, str] | None:
    """The token request's form fields; None unless the body is form-urlencoded [B5]. aiohttp
    caches the body, so the fault machinery and the handler can both read it."""
    if request.content_type != "application/x-www-form-urlencoded":
        return None
    try:
        return {key: value for key, value in (await request.post()).items() if isinstance(value, str)}
    except (ValueError, UnicodeDecodeError):
        return None
