"""Walmart Marketplace, as the fact sheet describes it (section 5).

Routes (mounted under ``/walmart``; one host serves every market, ``WM_MARKET`` picks it)::

    POST /walmart/v3/token                      client_credentials, or refresh_token + WM_PARTNER.ID
    GET  /walmart/v3/token/detail               check token_detail
    GET  /walmart/v3/settings/partnerprofile    check partner_profile

Calls authenticate with ``WM_SEC.ACCESS_TOKEN``; ``Authorization: Bearer`` instead gets 401
``UNAUTHORIZED.GMP_GATEWAY_API`` [OBS F7]. Every call is answered in the market its ``WM_MARKET``
names, ``us`` when it is missing [F17]: a token of another market's seller gets 401 there
(SIMULATOR CHOICE: the review expects a 401 or a channel mismatch [F17]). Mexico's V3 calls need
``WM_CONSUMER.CHANNEL.TYPE`` [F17] (400 ``MISSING_REQUEST_HEADER`` without it); the Settings API is
US only [F22] (404 ``URI_NOT_FOUND`` for MX, SIMULATOR CHOICE: "probably 404"). Errors use the live
gateway envelope ``{"error": [...]}`` [OBS F20]. Each (account, API) has a token bucket and every answer
past authentication carries ``x-current-token-count`` and ``x-next-replenish-time`` (epoch ms);
an empty bucket answers 429 ``REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API``. Walmart's real sizes
and rates per API are UNCONFIRMED: the numbers in :data:`BUCKETS` are the simulator's own choice.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from marketplace_exporter.simulator.accounts import SimAccounts
from marketplace_exporter.simulator.faults import RouteSpec
from marketplace_exporter.simulator.tokens import remember

NAME = "walmart"
MOUNT = "/walmart"
TOKEN_CHECK = "token"
API_PATHS = {"token_detail": "/v3/token/detail", "partner_profile": "/v3/settings/partnerprofile"}
ACCESS_TOKEN_TTL_S = 900  # [F1][F4]
MARKETS = frozenset({"us", "mx", "ca"})  # [F1]
#: SIMULATOR-CHOSEN (Walmart's per-API figures are UNCONFIRMED): (bucket size, tokens per second).
#: Generous enough that a demo probing every 200 ms never drains them on its own.
BUCKETS: Mapping[str, tuple[float, float]] = {"token_detail": (300.0, 5.0), "partner_profile": (120.0, 2.0)}
FULL_SCOPES = ("reports", "item", "price", "lagtime", "feeds", "returns", "orders", "inventory", "content")


@dataclass(frozen=True)
class WalmartAccount:
    """A seller the simulator knows. A direct seller owns ``client_id``/``client_secret`` (the
    client_credentials grant); a seller reached through a solution provider's app has a
    ``refresh_token`` for that app instead (refresh_token grant with ``WM_PARTNER.ID``)."""

    alias: str
    partner_id: str
    market: str
    client_id: str
    client_secret: str
    refresh_token: str | None
    display_name: str
    status: str
    scopes: tuple[tuple[str, str], ...]
    #: the ``WM_CONSUMER.CHANNEL.TYPE`` Walmart issued this seller (MX: required on every V3 call)
    channel_type: str | None = None


_ALL = tuple((scope, "full_access") for scope in FULL_SCOPES)
#: simulator-only fake identities: they open nothing real
WALMART_ACCOUNTS: tuple[WalmartAccount, ...] = (
    WalmartAccount("us-main", "10001001", "us", "sim-wm-us-client-0001", "sim-wm-us-secret-0001", None,
                   "Sim Outfitters US", "ACTIVE", _ALL),
    WalmartAccount("mx-main", "10002002", "mx", "sim-wm-mx-client-0001", "sim-wm-mx-secret-0001", None,
                   "Sim Outfitters MX", "ACTIVE",
                   (("reports", "view_only"), ("item", "full_access"), ("price", "no_access"),
                    ("orders", "full_access"), ("inventory", "full_access")),
                   channel_type="sim-wm-mx-channel-0001"),
    WalmartAccount("us-partner", "10003003", "us", "sim-wm-sp-client-0001", "sim-wm-sp-secret-0001",
                   "sim-wm-refresh-us-partner", "Sim Partner Goods", "ONBOARDING_ACTIVE", _ALL),
)

UNAUTHORIZED_INFO = "Unauthorized token or incorrect authorization header"  # [F5][F14]
#: status → (code, category, description) for injected statuses; codes and categories from [F13]
_BY_STATUS: dict[int, tuple[str, str, str]] = {
    400: ("INVALID_REQUEST", "DATA", "Bad Request"),
    401: ("UNAUTHORIZED.GMP_GATEWAY_API", "DATA", "Unauthorized"),
    403: ("FORBIDDEN.GMP_GATEWAY_API", "DATA", "Forbidden"),
    404: ("URI_NOT_FOUND", "DATA", "Not Found"),
    405: ("METHOD_NOT_ALLOWED", "DATA", "Method Not Allowed"),
    406: ("INVALID_ACCEPT_TYPE", "APPLICATION", "Not Acceptable"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "DATA", "Unsupported Media Type"),
    423: ("RESOURCE_IS_LOCKED.GMP_RECEIVER_API", "APPLICATION", "Locked"),
    429: ("REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API", "REQUEST", "Too Many Requests"),
    500: ("SYSTEM_ERROR", "SYSTEM", "Internal Server Error"),
    504: ("DOWNSTREAM_SYSTEM_TIME_OUT", "SYSTEM", "Gateway Timeout"),
}
_FAULT_STATUS = {"token_expired": 401, "permission_denied": 403, "throttle": 429, "server_error": 500}


@dataclass
class Bucket:
    """Continuous refill at ``rate`` tokens/s up to ``size``; a call takes one token."""

    size: float
    rate: float
    tokens: float
    updated: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.size, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = max(self.updated, now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def headers(self, now: float) -> dict[str, str]:
        """The count left and when the next whole token arrives (epoch ms)."""
        missing = 1.0 - (self.tokens - math.floor(self.tokens))
        return rate_headers(math.floor(self.tokens), now + missing / self.rate)


@dataclass(frozen=True)
class IssuedToken:
    alias: str
    issued_at: float
    expires_at: float


def rate_headers(count: int, next_at: float) -> dict[str, str]:
    return {"x-current-token-count": str(count), "x-next-replenish-time": str(int(next_at * 1000))}


def error(status: int, code: str | None = None, *, field: str | None = None, description: str | None = None,
          info: str | None = None, headers: Mapping[str, str] | None = None) -> web.Response:
    """Walmart's error envelope as live gateways send it, ``{"error": [...]}`` [OBS F20] (gateway
    schema fields [F2][F13]); a 503 is status-only [F13]."""
    if status == 503:
        return web.Response(status=503, headers=dict(headers or {}))
    default_code, category, default_description = _BY_STATUS.get(
        status, _BY_STATUS[500] if status >= 500 else _BY_STATUS[400])
    code = code or default_code
    if code.startswith("UNAUTHORIZED"):
        field, info = field or "UNAUTHORIZED", info or UNAUTHORIZED_INFO
    item: dict[str, Any] = {"code": code, "field": field, "description": description or default_description,
                            "info": info or description or default_description, "severity": "ERROR",
                            "category": category, "causes": [], "errorIdentifiers": {}}
    return web.Response(status=status, text=json.dumps({"error": [item]}), content_type="application/json",
                        headers=dict(headers or {}))


def _json(body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(text=json.dumps(body), content_type="application/json", headers=dict(headers or {}))


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(client id, secret) from ``Authorization: Basic …``; None for anything else."""
    if not header or not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, secret = decoded.partition(":")
    return (client_id, secret) if colon and client_id else None


class WalmartSim:
    name = NAME
    checks = frozenset(API_PATHS) | {TOKEN_CHECK}
    min_error_status = 400

    def __init__(self, accounts: SimAccounts, clock: Callable[[], float],
                 walmart: tuple[WalmartAccount, ...] = WALMART_ACCOUNTS) -> None:
        self._clock = clock
        self._accounts = walmart
        self.aliases = frozenset(account.alias for account in walmart)
        self.tokens: dict[str, IssuedToken] = {}
        self.buckets: dict[tuple[str, str], Bucket] = {}

    def routes(self) -> list[RouteSpec]:
        routes: list[RouteSpec] = [("POST", f"{MOUNT}/v3/token", TOKEN_CHECK, self.token)]
        routes += [("GET", MOUNT + path, check, self.call) for check, path in API_PATHS.items()]
        return routes

    def check_of(self, request: web.Request) -> str:
        raise AssertionError("every Walmart route names its check")

    # --- the fault protocol ---------------------------------------------------------------------
    async def identify(self, request: web.Request, check: str) -> str | None:
        if check == TOKEN_CHECK:
            account = self._token_account(request)
            return account.alias if account else None
        issued = self.tokens.get(request.headers.get("WM_SEC.ACCESS_TOKEN", ""))
        return issued.alias if issued else None

    def extra_headers(self) -> dict[str, str]:
        return {}  # a server-generated request id is UNCONFIRMED [F13]

    def error_response(self, request: web.Request, fault: str, status: int | None, check: str) -> web.Response:
        status = status or _FAULT_STATUS.get(fault, 500)
        # throttle/token/permission keep their code at any status; the others follow the status
        code = {"token_expired": "UNAUTHORIZED.GMP_GATEWAY_API", "permission_denied": "FORBIDDEN.GMP_GATEWAY_API",
                "throttle": "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"}.get(fault)
        headers: dict[str, str] = {}
        if fault == "throttle" and check != TOKEN_CHECK:
            headers = rate_headers(0, self._clock() + 1.0 / BUCKETS[check][1])
        return error(status, code, headers=headers)

    def sample_body(self, check: str) -> bytes:
        account = self._accounts[0]
        if check == TOKEN_CHECK:
            return json.dumps({"access_token": "eyJsim." + "0" * 64, "token_type": "Bearer",
                               "expires_in": ACCESS_TOKEN_TTL_S}).encode()
        if check == "token_detail":
            now = self._clock()
            return json.dumps(self._detail(account, IssuedToken(account.alias, now, now + 900))).encode()
        return json.dumps(self._profile(account)).encode()

    def huge_parts(self, check: str) -> tuple[bytes, bytes, bytes]:
        if check == "partner_profile":
            item = json.dumps({"configurationName": "ACCOUNT", "configuration": {"status": "ACTIVE"}}).encode()
            return b'{"partner": {"partnerId": "10001001"}, "configurations": [', item, b"]}"
        # token and token detail: a scopes object with its key repeated (still valid JSON)
        return b'{"is_valid": true, "expires_in": 900, "scopes": {', b'"item": "full_access"', b"}}"

    # --- token endpoint ---------------------------------------------------------------------------
    def _token_account(self, request: web.Request) -> WalmartAccount | None:
        basic = basic_credentials(request.headers.get("Authorization"))
        if basic is None:
            return None
        partner = request.headers.get("WM_PARTNER.ID")
        for account in self._accounts:
            if (account.client_id, account.client_secret) == basic and (
                    account.refresh_token is None or account.partner_id == partner):
                return account
        return None

    async def token(self, request: web.Request, check: str) -> web.Response:
        missing = _missing_headers(request, ("WM_SVC.NAME", "WM_QOS.CORRELATION_ID"))
        if missing is not None:
            return missing
        market = request.headers.get("WM_MARKET", "us").strip().lower()
        if market not in MARKETS:
            return error(400, "INVALID_REQUEST_HEADER", field="WM_MARKET", description="Invalid WM_MARKET header")
        basic = basic_credentials(request.headers.get("Authorization"))
        if basic is None or not any((a.client_id, a.client_secret) == basic for a in self._accounts):
            return error(401)
        if market == "ca":  # CA legacy auth is a digital signature, not client id/secret [F18][OBS F20]
            return error(401)
        if request.content_type != "application/x-www-form-urlencoded":
            return error(415)
        form = {key: value for key, value in (await request.post()).items() if isinstance(value, str)}
        grant = form.get("grant_type")
        keyed = [a for a in self._accounts if (a.client_id, a.client_secret) == basic]
        if grant == "client_credentials":
            account = next((a for a in keyed if a.refresh_token is None), None)
        elif grant == "refresh_token":
            partner = request.headers.get("WM_PARTNER.ID")
            if not partner:
                return error(400, "MISSING_REQUEST_HEADER", field="WM_PARTNER.ID",
                             description="Missing WM_PARTNER.ID header")
            if not form.get("refresh_token"):
                return error(400, "MISSING_REQUEST_PARAM", field="refresh_token",
                             description="Missing refresh_token")
            account = next((a for a in keyed if a.partner_id == partner
                            and a.refresh_token == form["refresh_token"]), None)
        else:
            return error(400, "INVALID_REQUEST_PARAM", field="grant_type", description="Invalid grant_type")
        # SIMULATOR CHOICE (UNCONFIRMED upstream): a key of another market, a solution provider's
        # key used without a seller, or an unknown refresh token all answer the documented 401
        if account is None or account.market != market:
            return error(401)
        access_token = "eyJsim." + secrets.token_urlsafe(48)
        now = self._clock()
        remember(self.tokens, access_token, IssuedToken(account.alias, now, now + ACCESS_TOKEN_TTL_S))
        # no refresh_token in the answer, for either grant [F1]: nothing rotates
        return _json({"access_token": access_token, "token_type": "Bearer", "expires_in": ACCESS_TOKEN_TTL_S})

    # --- API calls --------------------------------------------------------------------------------
    async def call(self, request: web.Request, check: str) -> web.Response:
        missing = _missing_headers(request, ("WM_SVC.NAME", "WM_QOS.CORRELATION_ID"))
        if missing is not None:
            return missing
        market = request.headers.get("WM_MARKET", "us").strip().lower()  # missing: us [F17]
        if market not in MARKETS:
            return error(400, "INVALID_REQUEST_HEADER", field="WM_MARKET", description="Invalid WM_MARKET header")
        issued = self.tokens.get(request.headers.get("WM_SEC.ACCESS_TOKEN", ""))
        now = self._clock()
        if issued is None or now >= issued.expires_at:  # missing, Bearer-only, unknown or expired
            return error(401)
        account = next(a for a in self._accounts if a.alias == issued.alias)
        if account.market != market:  # e.g. an MX seller's call without WM_MARKET lands in us [F17]
            return error(401)
        if market == "mx" and not request.headers.get("WM_CONSUMER.CHANNEL.TYPE", "").strip():
            return error(400, "MISSING_REQUEST_HEADER", field="WM_CONSUMER.CHANNEL.TYPE",
                         description="Missing WM_CONSUMER.CHANNEL.TYPE header")
        if check == "partner_profile" and market != "us":  # Settings API: US only [F22]
            return error(404)
        size, rate = BUCKETS[check]
        bucket = self.buckets.setdefault((issued.alias, check), Bucket(size, rate, size, now))
        if not bucket.take(now):
            return error(429, headers=bucket.headers(now))
        channel = request.headers.get("WM_CONSUMER.CHANNEL.TYPE")
        body = self._detail(account, issued, channel) if check == "token_detail" else self._profile(account)
        return _json(body, bucket.headers(now))

    @staticmethod
    def _detail(account: WalmartAccount, issued: IssuedToken, channel: str | None = None) -> dict[str, Any]:
        """``TokenDetailResponse`` [F1]: times are epoch milliseconds as strings. ``is_channel_match``
        compares the call's channel type with the seller's (its exact rule is UNCONFIRMED)."""
        match = account.channel_type is None or channel == account.channel_type
        return {"expire_at": str(int(issued.expires_at * 1000)), "issued_at": str(int(issued.issued_at * 1000)),
                "is_valid": True, "is_channel_match": match, "scopes": dict(account.scopes)}

    @staticmethod
    def _profile(account: WalmartAccount) -> dict[str, Any]:
        """Get Partner Configurations [F15]."""
        return {"partner": {"partnerId": account.partner_id, "partnerName": f"{account.display_name} LLC",
                            "partnerDisplayName": account.display_name, "partnerStoreId": account.partner_id},
                "configurations": [{"configurationName": "ACCOUNT", "configuration": {"status": account.status}}]}


def _missing_headers(request: web.Request, names: tuple[str, ...]) -> web.Response | None:
    """400 ``MISSING_REQUEST_HEADER`` naming the first required header absent or blank [F13]."""
    for name in names:
        if not request.headers.get(name, "").strip():
            return error(400, "MISSING_REQUEST_HEADER", field=name, description=f"Missing {name} header")
    return None
