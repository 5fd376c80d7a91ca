"""Wish Merchant API v3, as the fact sheet describes it (section 9; docs/marketplaces/wish.md).

Routes (mounted under ``/wish``; the real host is ``https://merchant.wish.com`` [I1])::

    GET /wish/api/v3/oauth/test                  check oauth_test: "can this token be used" [I1]
    GET /wish/api/v3/merchant/account_details    check account_details: scope merchant:read [I1]
    GET /wish/api/v3/oauth/refresh_token         refresh: REVOKES the merchant's current access
                                                 tokens [I1]; the exporter must never call it

Calls authenticate with ``Authorization: Bearer <access_token>`` [I1]. Every answer is Wish's
envelope ``{"message", "code", "data"}`` (code 0 = success [I1]). Token errors answer HTTP 400 as
the spec declares [I1]; a missing header answers 401 code 1012 as observed live [OBS I6]. Every
answer to a recognised merchant carries ``Wish-Rate-Limit-Remaining`` and ``Wish-Request-Id``;
a 429 adds ``Wish-Rate-Limit-Reset`` [I1]. Wish's window length, call count, the reset header's
format and the 429 body code are UNCONFIRMED: the values below marked "choice" are the
simulator's own.
"""

from __future__ import annotations

import hmac
import json
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from marketplace_exporter.simulator.accounts import SimAccounts
from marketplace_exporter.simulator.ebay_wire import bearer, json_response
from marketplace_exporter.simulator.erp import Grant
from marketplace_exporter.simulator.faults import RouteSpec
from marketplace_exporter.simulator.tokens import remember

NAME = "wish"
MOUNT = "/wish"
OAUTH_TEST, ACCOUNT_DETAILS, REFRESH = "oauth_test", "account_details", "token_refresh"
API_PATHS = {OAUTH_TEST: "/api/v3/oauth/test", ACCOUNT_DETAILS: "/api/v3/merchant/account_details"}
REFRESH_PATH = "/api/v3/oauth/refresh_token"
ACCESS_TOKEN_TTL_S = 30 * 86400  # "the access token will expire after 30 days" [I1]
#: choice: Wish limits per merchant per app in windows of UNCONFIRMED length and size [I1]
WINDOW_S, WINDOW_CALLS = 60, 300
REMAINING, RESET, REQUEST_ID = "Wish-Rate-Limit-Remaining", "Wish-Rate-Limit-Reset", "Wish-Request-Id"
_DAY = 86400

# (code, message, default HTTP status). Codes and texts [I1] unless marked; statuses: the spec
# declares 400 for failures [I1], the missing-header 401 is observed [OBS I6]
MISSING_TOKEN = (1012, "Missing access token in authorization header", 401)  # [OBS I6]
NO_TOKEN = (1006, "No access token found or the app does not existd", 400)  # sic [I1]
NO_SCOPE = (1006, "Unauthorized access on this API", 400)  # [I1]; used for a missing scope: choice
EXPIRED = (1007, "This access token has expired. Please restart the OAuth process", 400)
REVOKED = (1008, "This access token has been revoked", 400)
DISABLED = (1002, "Cannot access API due to account is disabled", 400)
BAD_PARAM = (1001, "Invalid parameter: grant_type", 400)
BAD_CLIENT = (10001, "client_id, client_secret or redirect_url mismatch", 400)  # [I1] 10001
#: choice: the 429 body code is UNCONFIRMED, so the HTTP status stands in for it (never a Wish code)
THROTTLED = (429, "Request rate limit exceeded (simulated)", 429)


@dataclass(frozen=True)
class WishMerchant:
    """A merchant that authorised the simulated app. Simulator-only fake values."""

    alias: str
    merchant_id: str
    display_name: str
    access_token: str
    refresh_token: str
    #: when, relative to the simulator's start, the merchant's current token was issued
    issued_days_ago: int
    scopes: tuple[str, ...]
    disabled: bool = False


@dataclass(frozen=True)
class WishApp:
    client_id: str
    client_secret: str
    merchants: tuple[WishMerchant, ...]

    def merchant(self, alias: str) -> WishMerchant:
        for merchant in self.merchants:
            if merchant.alias == alias:
                return merchant
        raise KeyError(alias)


_READ = ("merchant:read", "orders:read", "products:read", "webhook:read")
SIM_APP = WishApp(
    client_id="5f0c0000000000000000sim1",
    client_secret="sim-wish-client-secret-0001",
    merchants=(
        WishMerchant("us-main", "5e8d000000000000000000a1", "Sim Outfitters", "sim-wish-access-us-main",
                     "sim-wish-refresh-us-main", issued_days_ago=4, scopes=_READ),
        WishMerchant("cn-main", "5e8d000000000000000000b2", "Sim Trading Shenzhen", "sim-wish-access-cn-main",
                     "sim-wish-refresh-cn-main", issued_days_ago=19, scopes=("orders:read", "products:read")),
        WishMerchant("closed", "5e8d000000000000000000c3", "Sim Closed Store", "sim-wish-access-closed",
                     "sim-wish-refresh-closed", issued_days_ago=2, scopes=_READ, disabled=True),
    ),
)


@dataclass
class Issued:
    alias: str
    expires_at: float
    revoked: bool = False


@dataclass
class Window:
    """A fixed rate-limit window per merchant (choice: Wish's is UNCONFIRMED)."""

    started: float
    used: int = 0

    def take(self, now: float) -> bool:
        if now >= self.started + WINDOW_S:
            self.started, self.used = now - (now - self.started) % WINDOW_S, 0
        if self.used >= WINDOW_CALLS:
            return False
        self.used += 1
        return True

    def remaining(self) -> int:
        return max(0, WINDOW_CALLS - self.used)

    def reset_at(self) -> int:
        return math.ceil(self.started + WINDOW_S)


def envelope(code: int, message: str, data: Any, status: int = 200,
             headers: dict[str, str] | None = None) -> web.Response:
    return json_response(status, {"message": message, "code": code, "data": data},
                         {REQUEST_ID: secrets.token_hex(16), **(headers or {})})


def iso(when: float) -> str:
    """Wish's date-time rendering, e.g. ``2022-10-19T04:16:35.661+00:00`` [OBS I7]."""
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds")


class WishSim:
    name = NAME
    checks = frozenset(API_PATHS) | {REFRESH}
    #: Wish declares 400 for failures [I1]; 200 is allowed so "an error in a 200 body" is testable
    min_error_status = 200

    def __init__(self, accounts: SimAccounts, clock: Callable[[], float], app: WishApp = SIM_APP) -> None:
        self._clock = clock
        self.app = app
        self.aliases = frozenset(merchant.alias for merchant in app.merchants)
        self._merchants = {merchant.alias: merchant for merchant in app.merchants}
        started = clock()
        self.tokens: dict[str, Issued] = {
            m.access_token: Issued(m.alias, started + ACCESS_TOKEN_TTL_S - m.issued_days_ago * _DAY)
            for m in app.merchants}
        #: refresh token → alias; a used one is removed (whether it survives is UNCONFIRMED [I1])
        self.refresh_tokens = {merchant.refresh_token: merchant.alias for merchant in app.merchants}
        self.windows: dict[str, Window] = {}

    def expiry_of(self, alias: str) -> float:
        """When the merchant's identity token expires (what production's ``expiry_time`` says)."""
        return self.tokens[self._merchants[alias].access_token].expires_at

    def routes(self) -> list[RouteSpec]:
        routes: list[RouteSpec] = [("GET", MOUNT + path, check, self.handle) for check, path in API_PATHS.items()]
        return [*routes, ("GET", MOUNT + REFRESH_PATH, REFRESH, self.refresh)]

    def check_of(self, request: web.Request) -> str:
        raise AssertionError("every Wish route names its check")

    # --- the fault protocol ---------------------------------------------------------------------
    async def identify(self, request: web.Request, check: str) -> str | None:
        if check == REFRESH:
            return self.refresh_tokens.get(request.query.get("refresh_token", ""))
        issued = self.tokens.get(bearer(request) or "")
        return issued.alias if issued else None

    def extra_headers(self) -> dict[str, str]:
        return {REQUEST_ID: secrets.token_hex(16)}

    def error_response(self, request: web.Request, fault: str, status: int | None, check: str) -> web.Response:
        code, message, default = {"token_expired": EXPIRED, "permission_denied": NO_SCOPE,
                                  "throttle": THROTTLED}.get(fault, (0, "", 0))
        if not code:  # server_error / http_status: Wish's codes for these are UNCONFIRMED
            default = 500
            code = status or default
            message = "Internal server error (simulated)" if code >= 500 else "Error (simulated)"
        headers = self._rate_headers(request, throttled=fault == "throttle")
        return envelope(code, message, {}, status or default, headers)

    def sample_body(self, check: str) -> bytes:
        merchant = self.app.merchants[0]
        data = self._details(merchant) if check == ACCOUNT_DETAILS else {"merchant_id": merchant.merchant_id}
        return json.dumps({"message": "", "code": 0, "data": data}).encode()

    def huge_parts(self, check: str) -> tuple[bytes, bytes, bytes]:
        merchant = self.app.merchants[0]
        head = json.dumps({"message": "", "code": 0})[:-1]
        return (head.encode() + b', "data": {"merchant_id": "' + merchant.merchant_id.encode() + b'", "scopes": [',
                b'"orders:read"', b"]}}")

    # --- the API ----------------------------------------------------------------------------------
    async def handle(self, request: web.Request, check: str) -> web.Response:
        token = bearer(request)
        if token is None:
            return envelope(*_err(MISSING_TOKEN))
        issued = self.tokens.get(token)
        if issued is None:
            return envelope(*_err(NO_TOKEN))
        merchant = self._merchants[issued.alias]
        window = self._window(issued.alias)
        if not window.take(self._clock()):
            return envelope(*_err(THROTTLED), self._rate_headers(request, throttled=True))
        headers = self._rate_headers(request)
        if issued.revoked:
            return envelope(*_err(REVOKED), headers)
        if self._clock() >= issued.expires_at:
            return envelope(*_err(EXPIRED), headers)
        if merchant.disabled:
            return envelope(*_err(DISABLED), headers)
        if check == OAUTH_TEST:  # no scope required [I1]
            return envelope(0, "", {"merchant_id": merchant.merchant_id}, 200, headers)
        if "merchant:read" not in merchant.scopes:
            return envelope(*_err(NO_SCOPE), headers)
        return envelope(0, "", self._details(merchant), 200, headers)

    def _window(self, alias: str) -> Window:
        return self.windows.setdefault(alias, Window(self._clock()))

    def _rate_headers(self, request: web.Request, *, throttled: bool = False) -> dict[str, str]:
        """``Wish-Rate-Limit-Remaining`` for a recognised merchant (+ ``…-Reset`` on 429) [I1]; none
        when the token names no merchant (choice). The reset is Unix seconds (choice: UNCONFIRMED)."""
        issued = self.tokens.get(bearer(request) or "")
        if issued is None:
            return {}
        window = self._window(issued.alias)
        headers = {REMAINING: "0" if throttled else str(window.remaining())}
        if throttled:
            headers[RESET] = str(window.reset_at())
        return headers

    @staticmethod
    def _details(merchant: WishMerchant) -> dict[str, Any]:
        # a subset of account_details [I1]; the values are the simulator's
        return {"id": merchant.merchant_id, "display_name": merchant.display_name,
                "status": "INACTIVE" if merchant.disabled else "ACTIVE",
                "revenue_type": "MERCHANT", "product_boost_status": "ENABLED"}

    # --- OAuth --------------------------------------------------------------------------------------
    async def refresh(self, request: web.Request, check: str) -> web.Response:
        """``GET /api/v3/oauth/refresh_token?client_id&client_secret&refresh_token&grant_type`` [I1]:
        a new token pair, and every access token the merchant held so far is revoked [I1]."""
        query = request.query
        if query.get("grant_type") != "refresh_token":
            return envelope(*_err(BAD_PARAM))
        if query.get("client_id") != self.app.client_id or not hmac.compare_digest(
                query.get("client_secret", "").encode(), self.app.client_secret.encode()):
            return envelope(*_err(BAD_CLIENT))
        grant = self._rotate(query.get("refresh_token", ""))
        if grant is None:  # choice: Wish's answer to a dead refresh token is UNCONFIRMED
            return envelope(1001, "Invalid parameter: refresh_token", {}, 400)
        assert grant.expires_at is not None
        merchant = self._merchants[grant.alias]
        return envelope(0, "", {"access_token": grant.access_token, "refresh_token": grant.refresh_token,
                                "expiry_time": iso(grant.expires_at), "merchant_id": merchant.merchant_id,
                                "scopes": list(merchant.scopes)})

    def _rotate(self, refresh_token: str) -> Grant | None:
        """Wish's refresh: a new pair, the used refresh token gone, and every access token the
        merchant held so far revoked [I1] (None: an unknown or used refresh token)."""
        alias = self.refresh_tokens.pop(refresh_token, None)
        if alias is None:
            return None
        for issued in self.tokens.values():
            if issued.alias == alias:
                issued.revoked = True
        access, refresh = f"sim-wish-access-{secrets.token_hex(12)}", f"sim-wish-refresh-{secrets.token_hex(12)}"
        expires = self._clock() + ACCESS_TOKEN_TTL_S
        remember(self.tokens, access, Issued(alias, expires))
        self.refresh_tokens[refresh] = alias
        return Grant(alias, access, refresh, expires)

    # --- the tokens production holds (the demo's ERP stand-in, simulator/erp.py) ---------------------
    def held_aliases(self) -> tuple[str, ...]:
        return tuple(merchant.alias for merchant in self.app.merchants)

    def identity_grant(self, alias: str) -> Grant:
        """The identity token and its expiry (30 days from issue [I1]): Wish tells it, so the ERP
        needs no refresh to know when the token dies."""
        merchant = self._merchants[alias]
        return Grant(alias, merchant.access_token, merchant.refresh_token, self.expiry_of(alias))

    def refresh_grant(self, alias: str, refresh_token: str) -> Grant | None:
        grant = self._rotate(refresh_token)
        return grant if grant is None or grant.alias == alias else None


def _err(error: tuple[int, str, int]) -> tuple[int, str, dict[str, Any], int]:
    code, message, status = error
    return code, message, {}, status
