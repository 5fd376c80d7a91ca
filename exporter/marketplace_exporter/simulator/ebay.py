"""eBay RESTful APIs and OAuth, as the fact sheet describes them (section 2).

Routes (mounted under ``/ebay``, which stands for ``https://api.ebay.com``)::

    POST /ebay/identity/v1/oauth2/token                       refresh_token and client_credentials grants
    GET  /ebay/sell/account/v1/privilege                      getPrivileges (user token)
    GET  /ebay/developer/analytics/v1_beta/rate_limit/        getRateLimits (application token)
    GET  /ebay/developer/analytics/v1_beta/user_rate_limit/   getUserRateLimits (user token)

Quotas are the documented daily numbers, counted per application (keyset) in windows that start at
midnight PST [B19]: Sell Account API 25 000/day [B11], Developer Analytics 5 000/day [B12], refresh grants
50 000/day and client-credentials grants 1 000/day [B10]. getRateLimits reports the two API
counters, so the exporter's observed headroom is what the simulator really counts.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from marketplace_exporter.simulator.accounts import SimAccounts
from marketplace_exporter.simulator.ebay_wire import (
    DAY_S,
    ERRORS,
    DailyQuota,
    basic,
    bearer,
    error_body,
    error_id_for_status,
    form,
    json_response,
)
from marketplace_exporter.simulator.faults import RouteSpec
from marketplace_exporter.simulator.tokens import remember

NAME = "ebay"
MOUNT = "/ebay"
TOKEN_CHECK = "token"
PATHS = {"privilege": "/sell/account/v1/privilege",
         "rate_limit": "/developer/analytics/v1_beta/rate_limit/",
         "user_rate_limit": "/developer/analytics/v1_beta/user_rate_limit/"}
ACCESS_TOKEN_TTL_S = 7200  # [B6]

SCOPE = "https://api.ebay.com/oauth/api_scope"
SELL_ACCOUNT = f"{SCOPE}/sell.account"
SELL_ACCOUNT_READONLY = f"{SCOPE}/sell.account.readonly"
SELL_INVENTORY = f"{SCOPE}/sell.inventory"
#: scopes an application token may carry (the simulator knows only the base scope [B13])
APP_SCOPES = frozenset({SCOPE})
#: what each API accepts: getPrivileges [B2], getRateLimits and getUserRateLimits [B13]
REQUIRED_SCOPES: Mapping[str, frozenset[str]] = {
    "privilege": frozenset({SELL_ACCOUNT, SELL_ACCOUNT_READONLY}),
    "rate_limit": frozenset({SCOPE}),
    "user_rate_limit": frozenset({SELL_INVENTORY, f"{SCOPE}/sell.inventory.readonly",
                                  f"{SCOPE}/sell.marketing", f"{SCOPE}/sell.marketing.readonly",
                                  f"{SCOPE}/sell.marketplace.insights.readonly",
                                  f"{SCOPE}/commerce.catalog.readonly"}),
}
#: MarketplaceIdEnum values of live marketplaces (X-EBAY-C-MARKETPLACE-ID) [B3][B4]
MARKETPLACE_IDS = frozenset({
    "EBAY_US", "EBAY_MOTORS_US", "EBAY_CA", "EBAY_GB", "EBAY_IE", "EBAY_AU", "EBAY_DE", "EBAY_AT",
    "EBAY_CH", "EBAY_FR", "EBAY_IT", "EBAY_ES", "EBAY_NL", "EBAY_BE", "EBAY_PL", "EBAY_HK", "EBAY_SG",
    "EBAY_MY", "EBAY_PH"})
#: (apiContext, apiName, apiVersion, resource) → documented daily limit
API_QUOTAS: Mapping[str, tuple[str, str, str, str, int]] = {
    "privilege": ("sell", "account", "v1", "sell.account", 25_000),  # [B11]
    "analytics": ("developer", "analytics", "v1_beta", "developer.analytics", 5_000),  # [B12]
}
GRANT_QUOTAS = {"refresh_token": 50_000, "client_credentials": 1_000}  # per app per day [B10]
_MISSING = "request is missing a required parameter"
_FAULT_ERRORS = {"token_expired": 1001, "permission_denied": 1100, "throttle": 2001, "server_error": 2003}

INVALID_GRANT = "the provided authorization grant code is invalid or was issued to another client"  # [B9]
INVALID_SCOPE = "The requested scope is invalid, unknown, malformed, or exceeds the scope granted to the client"


@dataclass(frozen=True)
class EbayUser:
    """A seller who consented to the simulated application (simulator-only fake values)."""

    alias: str
    refresh_token: str
    scopes: frozenset[str]
    registration_completed: bool
    #: sellingLimit: (amount, currency, quantity)
    selling_limit: tuple[str, str, int]


@dataclass(frozen=True)
class EbayApp:
    """The simulated application keyset (App ID = client_id, Cert ID = client_secret)."""

    client_id: str
    client_secret: str
    users: tuple[EbayUser, ...]

    def user(self, alias: str) -> EbayUser:
        for user in self.users:
            if user.alias == alias:
                return user
        raise KeyError(alias)


_USER_SCOPES = frozenset({SCOPE, SELL_ACCOUNT, SELL_ACCOUNT_READONLY, SELL_INVENTORY,
                          f"{SCOPE}/sell.fulfillment"})
EBAY_APP = EbayApp(
    client_id="SimOutfi-monitor-PRD-5a1b2c3d4-e5f60718",
    client_secret="PRD-sim0ebay0cert-0001",
    users=(
        EbayUser("us-main", "v^1.1#i^1#r^1#sim-ebay-refresh-us-main", _USER_SCOPES,
                 True, ("50000.0", "USD", 1000)),
        EbayUser("de-main", "v^1.1#i^1#r^1#sim-ebay-refresh-de-main", _USER_SCOPES,
                 True, ("20000.0", "EUR", 500)),
    ),
)


@dataclass(frozen=True)
class IssuedToken:
    alias: str | None  # None = application token
    scopes: frozenset[str]
    expires_at: float


class EbaySim:
    """State (issued tokens, daily counters) lives on this instance, which lives on the app."""

    name = NAME
    checks = frozenset(PATHS) | {TOKEN_CHECK}
    min_error_status = 400

    def __init__(self, accounts: SimAccounts, clock: Callable[[], float], app: EbayApp = EBAY_APP) -> None:
        self._clock = clock
        self.app = app
        self._by_refresh = {user.refresh_token: user for user in app.users}
        self.aliases = frozenset(user.alias for user in app.users)
        self.tokens: dict[str, IssuedToken] = {}
        self.quota = DailyQuota()

    def routes(self) -> list[RouteSpec]:
        routes: list[RouteSpec] = [("POST", f"{MOUNT}/identity/v1/oauth2/token", TOKEN_CHECK, self.token)]
        routes += [("GET", MOUNT + path, check, self.call) for check, path in PATHS.items()]
        return routes

    def check_of(self, request: web.Request) -> str:
        raise AssertionError("every eBay route names its check")

    # --- the fault protocol ---------------------------------------------------------------------
    async def identify(self, request: web.Request, check: str) -> str | None:
        if check == TOKEN_CHECK:
            fields = await form(request) or {}
            user = self._by_refresh.get(fields.get("refresh_token", ""))
            return user.alias if user and fields.get("grant_type") == "refresh_token" else None
        issued = self.tokens.get(bearer(request) or "")
        return issued.alias if issued else None

    def extra_headers(self) -> dict[str, str]:
        # seen on live responses, not in the official docs (UNCONFIRMED) [OBS B17]
        return {"X-EBAY-C-REQUEST-ID": f"ri={secrets.token_hex(6)},rci={secrets.token_hex(8)}"}

    def error_response(self, request: web.Request, fault: str, status: int | None, check: str) -> web.Response:
        if check == TOKEN_CHECK:
            return self._token_fault(fault, status)
        if fault == "server_error" and status is None and check == "privilege":
            return self.error(20500, 500)  # getPrivileges' own documented 500 [B2]
        if fault == "server_error" and status is not None:
            return self.error(error_id_for_status(status), status)  # 502 → 3005, other 5xx → 2003
        return self.error(_FAULT_ERRORS.get(fault) or error_id_for_status(status or 500), status)

    def sample_body(self, check: str) -> bytes:
        if check == TOKEN_CHECK:
            return json.dumps(_token_body("v^1.1#i^1#sim", "User Access Token")).encode()
        if check == "privilege":
            return json.dumps(_privilege(self.app.users[0])).encode()
        return json.dumps({"rateLimits": self._rate_limits(None, None)}).encode()

    def huge_parts(self, check: str) -> tuple[bytes, bytes, bytes]:
        if check in ("privilege", TOKEN_CHECK):  # the envelope allows warnings beside the payload [B3]
            payload = _token_body("v^1.1#i^1#sim", "User Access Token") if check == TOKEN_CHECK else \
                _privilege(self.app.users[0])
            head = json.dumps(payload)[:-1].encode()
            warning = json.dumps({"errorId": 2004, "domain": "ACCESS", "category": "REQUEST", "message": "w"})
            return head + b', "warnings": [', warning.encode(), b"]}"
        return b'{"rateLimits": [', json.dumps(self._rate_limits(None, None)[0]).encode(), b"]}"

    # --- errors -----------------------------------------------------------------------------------
    def error(self, error_id: int, status: int | None = None,
              parameters: list[dict[str, str]] | None = None) -> web.Response:
        """The ``errors`` envelope [B3] at the status eBay pairs with the errorId (or ``status``)."""
        return json_response(status or ERRORS[error_id][0], error_body(error_id, parameters), self.extra_headers())

    def _oauth_error(self, status: int, error: str, description: str) -> web.Response:
        return json_response(status, {"error": error, "error_description": description}, self.extra_headers())

    def _token_fault(self, fault: str, status: int | None) -> web.Response:
        if fault == "token_expired":
            return self._oauth_error(status or 400, "invalid_grant", INVALID_GRANT)
        if fault == "permission_denied":
            return self._oauth_error(status or 400, "invalid_scope", INVALID_SCOPE)
        status = status or {"throttle": 429}.get(fault, 500)
        if status == 429:  # OAuth-endpoint throttle body: UNCONFIRMED; the gateway's 2001 envelope
            return self.error(2001, 429)
        if status >= 500:
            return self._oauth_error(status, "server_error", "There was an internal error in the server.")
        if status == 401:
            return self._oauth_error(status, "invalid_client", "client authentication failed")
        return self._oauth_error(status, "invalid_request", "request is missing a required parameter or malformed")

    # --- OAuth ------------------------------------------------------------------------------------
    async def token(self, request: web.Request, check: str) -> web.Response:
        if basic(request) != (self.app.client_id, self.app.client_secret):
            return self._oauth_error(401, "invalid_client", "client authentication failed")
        fields = await form(request)
        if fields is None:
            return self._oauth_error(400, "invalid_request", "request body must be application/x-www-form-urlencoded")
        grant = fields.get("grant_type", "")
        requested = frozenset(fields["scope"].split()) if fields.get("scope") else None
        user: EbayUser | None = None
        if grant == "refresh_token":
            if not fields.get("refresh_token"):
                return self._oauth_error(400, "invalid_request", f"{_MISSING} : refresh_token")
            user = self._by_refresh.get(fields["refresh_token"])
            if user is None:
                return self._oauth_error(400, "invalid_grant", INVALID_GRANT)
            allowed = user.scopes
        elif grant == "client_credentials":
            if requested is None:
                return self._oauth_error(400, "invalid_request", f"{_MISSING} : scope")
            allowed = APP_SCOPES
        else:
            return self._oauth_error(400, "unsupported_grant_type",
                                     "grant type in request is not supported by the authorization server")
        if requested is not None and not requested <= allowed:
            return self._oauth_error(400, "invalid_scope", INVALID_SCOPE)
        if not self.quota.take(f"grant:{grant}", GRANT_QUOTAS[grant], self._clock()):
            return self.error(2001, 429)  # body UNCONFIRMED (see _token_fault)
        access_token = "v^1.1#i^1#f^0#p^3#I^3#r^0#t^" + secrets.token_urlsafe(48)
        remember(self.tokens, access_token,
                 IssuedToken(user.alias if user else None, requested or allowed, self._clock() + ACCESS_TOKEN_TTL_S))
        kind = "User Access Token" if user else "Application Access Token"
        return json_response(200, _token_body(access_token, kind), self.extra_headers())

    # --- APIs -------------------------------------------------------------------------------------
    async def call(self, request: web.Request, check: str) -> web.Response:
        header = request.headers.get("Authorization", "")
        if not header.strip():
            return self.error(1002)
        token = bearer(request)
        if token is None:
            return self.error(1003)
        issued = self.tokens.get(token)
        now = self._clock()
        if issued is None or now >= issued.expires_at:
            return self.error(1001)
        wants_app = check == "rate_limit"
        if (issued.alias is None) != wants_app or not issued.scopes & REQUIRED_SCOPES[check]:
            return self.error(1100)  # wrong kind of token or a scope the grant lacks
        marketplace = request.headers.get("X-EBAY-C-MARKETPLACE-ID")
        if marketplace is not None and marketplace not in MARKETPLACE_IDS:
            return self.error(2004, parameters=[{"name": "X-EBAY-C-MARKETPLACE-ID", "value": marketplace[:64]}])
        quota = "privilege" if check == "privilege" else "analytics"
        if not self.quota.take(quota, API_QUOTAS[quota][4], now):
            return self.error(2001)
        if check == "privilege":
            assert issued.alias is not None
            return json_response(200, _privilege(self.app.user(issued.alias)), self.extra_headers())
        if check == "user_rate_limit":
            # per-user quotas exist only for some APIs; none of the simulated ones has one [B13]
            return json_response(204, None, self.extra_headers())
        rate_limits = self._rate_limits(request.query.get("api_context"), request.query.get("api_name"))
        if not rate_limits:
            return json_response(204, None, self.extra_headers())
        return json_response(200, {"rateLimits": rate_limits}, self.extra_headers())

    def _rate_limits(self, api_context: str | None, api_name: str | None) -> list[dict[str, Any]]:
        """getRateLimits entries for the application's counters, filtered like eBay's [B13]."""
        self.quota.roll(self._clock())
        entries = []
        for quota, (context, name, version, resource, limit) in API_QUOTAS.items():
            if (api_context and api_context.lower() != context) or (api_name and api_name.lower() != name):
                continue
            used = self.quota.used.get(quota, 0)
            rate = {"count": used, "limit": limit, "remaining": max(0, limit - used),
                    "reset": self.quota.reset_at(), "timeWindow": DAY_S}
            entries.append({"apiContext": context, "apiName": name, "apiVersion": version,
                            "resources": [{"name": resource, "rates": [rate]}]})
        return entries


def _token_body(access_token: str, kind: str) -> dict[str, Any]:
    """A refresh grant returns no refresh_token and no refresh_token_expires_in [B6][OBS B8]."""
    return {"access_token": access_token, "expires_in": ACCESS_TOKEN_TTL_S, "token_type": kind}


def _privilege(user: EbayUser) -> dict[str, Any]:
    amount, currency, quantity = user.selling_limit
    return {"sellerRegistrationCompleted": user.registration_completed,
            "sellingLimit": {"amount": {"currency": currency, "value": amount}, "quantity": quantity}}
