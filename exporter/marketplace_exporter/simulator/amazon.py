"""Amazon SP-API (Sellers API) and Login with Amazon, as the fact sheet describes them.

Routes (mounted on the simulator's one port)::

    POST /amazon/lwa/auth/o2/token                                  LWA refresh-token grant
    GET  /amazon/{host}/sellers/v1/marketplaceParticipations        getMarketplaceParticipations
    GET  /amazon/{host}/sellers/v1/account                          getAccount

``host`` is na/eu/fe (production usage plan: 0.016 rps, burst 15) or sandbox-na/-eu/-fe (every
sandbox call: 5 rps, burst 15; static-sandbox answers: the canned US participation). getAccount
exists in the EU region only [A24][A25]: on na/fe it answers 403 ``Unauthorized`` with empty
details, as SP-API answers a call to the wrong regional endpoint [OBS A21] (the exact answer for
getAccount outside the EU is UNCONFIRMED).
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from marketplace_exporter.simulator.accounts import US, AmazonAccount, AmazonMarketplace, SimAccounts
from marketplace_exporter.simulator.faults import RouteSpec
from marketplace_exporter.simulator.tokens import remember

NAME = "amazon_sp"
OPERATIONS = {"marketplace_participations": "marketplaceParticipations", "account": "account"}
TOKEN_CHECK = "token"
PRODUCTION_PLAN = (0.016, 15.0)
SANDBOX_PLAN = (5.0, 15.0)
HOST_PATTERN = "{host:(?:sandbox-)?(?:na|eu|fe)}"
ACCESS_TOKEN_TTL_S = 3600

DENIED = "Access to requested resource is denied."
MISSING_TOKEN = "Access token is missing in the request header."
INVALID_TOKEN = "The access token you provided is revoked, malformed or invalid."
EXPIRED_TOKEN = "The access token you provided has expired."
INVALID_GRANT = "The request has an invalid grant parameter : refresh_token"
QUOTA = ("QuotaExceeded", "You exceeded your quota for the requested resource.")
# error code + message per status; messages are the model's own response descriptions (sellers.json)
_ENVELOPES: dict[int, tuple[str, str, str]] = {
    400: ("InvalidInput", "Request has missing or invalid parameters and cannot be parsed.",
          "ValidationException"),
    403: ("Unauthorized", DENIED, "AccessDeniedException"),
    404: ("NotFound", "The resource specified does not exist.", "ResourceNotFoundException"),
    413: ("RequestEntityTooLarge", "The request size exceeded the maximum accepted size.",
          "RequestEntityTooLargeException"),
    415: ("UnsupportedMediaType",
          "The entity of the request is in a format not supported by the requested resource.",
          "UnsupportedMediaTypeException"),
    429: (*QUOTA, "QuotaExceededException"),
    500: ("InternalFailure",
          "Encountered an unexpected condition which prevented the server from fulfilling the request.",
          "InternalFailure"),
    503: ("ServiceUnavailable", "Temporary overloading or maintenance of the server.",
          "ServiceUnavailableException"),
}
# LWA (OAuth-style) error per status for faults on the token endpoint
_LWA_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request", "The request is missing a required parameter or is otherwise malformed."),
    401: ("invalid_client", "Client authentication failed."),
    403: ("access_denied", "The request was denied."),
    429: ("temporarily_unavailable", "The request rate is too high. Please try again later."),
    500: ("server_error", "The server encountered an unexpected error."),
    503: ("temporarily_unavailable", "The service is temporarily unavailable. Please try again later."),
}


@dataclass
class TokenBucket:
    """SP-API usage plan: ``rate`` tokens/s refill up to ``burst``; a call takes one token."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = max(self.updated, now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(frozen=True)
class IssuedToken:
    alias: str
    expires_at: float


def _json(status: int, body: Mapping[str, Any], headers: Mapping[str, str]) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json",
                        headers=dict(headers))


def participation(marketplace: AmazonMarketplace, store_name: str) -> dict[str, Any]:
    return {
        "marketplace": {
            "id": marketplace.id, "countryCode": marketplace.country_code, "name": marketplace.name,
            "defaultCurrencyCode": marketplace.default_currency_code,
            "defaultLanguageCode": marketplace.default_language_code,
            "domainName": marketplace.domain_name,
        },
        "participation": {"isParticipating": True, "hasSuspendedListings": False},
        "storeName": store_name,
    }


class AmazonSim:
    """State (issued tokens, buckets) lives on this instance, which lives on the app."""

    name = NAME
    checks = frozenset(OPERATIONS) | {TOKEN_CHECK}
    min_error_status = 400

    def __init__(self, accounts: SimAccounts, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._by_refresh = {account.refresh_token: account for account in accounts.amazon_sp}
        self.aliases = frozenset(account.alias for account in accounts.amazon_sp)
        self.tokens: dict[str, IssuedToken] = {}
        self.buckets: dict[tuple[str, str, str], TokenBucket] = {}

    def routes(self) -> list[RouteSpec]:
        routes: list[RouteSpec] = [("POST", "/amazon/lwa/auth/o2/token", TOKEN_CHECK, self.token)]
        for operation, segment in OPERATIONS.items():
            routes.append(("GET", f"/amazon/{HOST_PATTERN}/sellers/v1/{segment}", operation, self.call))
        return routes

    def check_of(self, request: web.Request) -> str:
        raise AssertionError("every Amazon route names its check")

    # --- the fault protocol ---------------------------------------------------------------------
    async def identify(self, request: web.Request, check: str) -> str | None:
        if check == TOKEN_CHECK:
            account = self._by_refresh.get(str((await _token_form(request)).get("refresh_token")))
            return account.alias if account else None
        issued = self.tokens.get(request.headers.get("x-amz-access-token", ""))
        return issued.alias if issued else None

    def extra_headers(self) -> dict[str, str]:
        return {"x-amzn-RequestId": str(uuid.uuid4())}

    def error_response(
        self, request: web.Request, fault: str, status: int | None, check: str,
    ) -> web.Response:
        if check == TOKEN_CHECK:
            return self._lwa_fault(fault, status)
        # throttle/token/permission keep their code at any status; the others follow the status
        code, message, details = {
            "throttle": (*QUOTA, ""),
            "token_expired": ("Unauthorized", DENIED, EXPIRED_TOKEN),
            "permission_denied": ("Unauthorized", DENIED, ""),
        }.get(fault, (None, None, ""))
        default = {"throttle": 429, "token_expired": 403, "permission_denied": 403}.get(fault, 500)
        return self.error(status or default, code, message, details, rate=_plan(request)[0])

    def sample_body(self, check: str) -> bytes:
        if check == TOKEN_CHECK:
            return json.dumps(self._token_body("Atzr|sim", "Atza|" + "0" * 64)).encode()
        return json.dumps(self._payload(check, None, "na")).encode()

    def huge_parts(self, check: str) -> tuple[bytes, bytes, bytes]:
        return b'{"payload":[', json.dumps(participation(US, "Sim Outfitters US")).encode(), b"]}"

    # --- errors -----------------------------------------------------------------------------------
    def error(self, status: int, code: str | None = None, message: str | None = None,
              details: str = "", rate: float | None = None) -> web.Response:
        """The SP-API ``errors`` envelope with x-amzn-RequestId and x-amzn-ErrorType."""
        default_code, default_message, error_type = _ENVELOPES.get(
            status, _ENVELOPES[500] if status >= 500 else _ENVELOPES[400])
        headers = self.extra_headers() | {"x-amzn-ErrorType": error_type}
        if rate is not None and status in (400, 404):
            headers["x-amzn-RateLimit-Limit"] = str(rate)
        body = {"errors": [{"code": code or default_code, "message": message or default_message,
                            "details": details}]}
        return _json(status, body, headers)

    def _lwa_fault(self, fault: str, status: int | None) -> web.Response:
        if fault == "token_expired":
            return self._lwa_error(status or 400, "invalid_grant", INVALID_GRANT)
        if fault == "permission_denied":
            return self._lwa_error(status or 400, "unauthorized_client",
                                   "The client is not authorized for the requested operation.")
        default = {"throttle": 429, "server_error": 500}.get(fault, 500)
        status = status or default
        error, description = _LWA_ERRORS.get(status, _LWA_ERRORS[500 if status >= 500 else 400])
        return self._lwa_error(status, error, description)

    def _lwa_error(self, status: int, error: str, description: str) -> web.Response:
        return _json(status, {"error": error, "error_description": description}, self.extra_headers())

    # --- LWA --------------------------------------------------------------------------------------
    async def token(self, request: web.Request, check: str) -> web.Response:
        form = await _token_form(request)
        if form.get("_malformed"):
            return self._lwa_error(400, "invalid_request", str(form["_malformed"]))
        for field in ("grant_type", "refresh_token", "client_id", "client_secret"):
            if not isinstance(form.get(field), str) or not form[field]:
                return self._lwa_error(400, "invalid_request",
                                       f"The request is missing a required parameter : {field}")
        if form["grant_type"] != "refresh_token":
            return self._lwa_error(
                400, "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server")
        clients = {(a.client_id, a.client_secret) for a in self._by_refresh.values()}
        if (form["client_id"], form["client_secret"]) not in clients:
            return self._lwa_error(401, "invalid_client", "Client authentication failed")
        account = self._by_refresh.get(form["refresh_token"])
        if account is None or account.client_id != form["client_id"]:
            return self._lwa_error(400, "invalid_grant", INVALID_GRANT)
        access_token = "Atza|" + secrets.token_urlsafe(48)
        self._remember(access_token, account)
        return _json(200, self._token_body(account.refresh_token, access_token),
                     self.extra_headers() | {"Cache-Control": "no-store"})

    @staticmethod
    def _token_body(refresh_token: str, access_token: str) -> dict[str, Any]:
        return {"access_token": access_token, "token_type": "bearer",
                "expires_in": ACCESS_TOKEN_TTL_S, "refresh_token": refresh_token}

    def _remember(self, access_token: str, account: AmazonAccount) -> None:
        remember(self.tokens, access_token, IssuedToken(account.alias, self._clock() + ACCESS_TOKEN_TTL_S))

    # --- Sellers API ------------------------------------------------------------------------------
    async def call(self, request: web.Request, operation: str) -> web.Response:
        host = request.match_info["host"]
        rate, burst = _plan(request)
        token = request.headers.get("x-amz-access-token")
        if not token:
            return self.error(403, details=MISSING_TOKEN)
        issued = self.tokens.get(token)
        if issued is None:
            return self.error(403, details=INVALID_TOKEN)
        now = self._clock()
        if now >= issued.expires_at:
            return self.error(403, details=EXPIRED_TOKEN)
        if operation == "account" and not host.endswith("eu"):  # getAccount: EU only [A24]
            return self.error(403)
        bucket = self.buckets.setdefault(
            (host, issued.alias, operation), TokenBucket(rate, burst, burst, now))
        if not bucket.take(now):
            return self.error(429)  # no x-amzn-RateLimit-Limit on throttled responses
        payload = self._payload(operation, issued.alias, host)
        return _json(200, payload, self.extra_headers() | {"x-amzn-RateLimit-Limit": str(rate)})

    def _payload(self, operation: str, alias: str | None, host: str) -> dict[str, Any]:
        account = next((a for a in self._by_refresh.values() if a.alias == alias), None)
        markets: tuple[AmazonMarketplace, ...]
        if account is None or host.startswith("sandbox-"):
            # the static sandbox's canned answer: one US participation
            store, markets = "Sim Sandbox Store", (US,)
        else:
            store, markets = account.store_name, account.marketplaces
        participations = [participation(m, store) for m in markets]
        if operation == "marketplace_participations":
            return {"payload": participations}
        return {"payload": {
            "marketplaceParticipationList": participations,
            "businessType": "PRIVATE_LIMITED",
            "sellingPlan": "PROFESSIONAL",
            "business": {"name": f"{store} Ltd", "registeredBusinessAddress": {
                "addressLine1": "1 Simulator Way", "city": "Seattle", "countryCode": markets[0].country_code,
                "postalCode": "98109"}},
        }}


def _plan(request: web.Request) -> tuple[float, float]:
    """(rate, burst) of the usage plan for the request's host."""
    return SANDBOX_PLAN if request.match_info.get("host", "").startswith("sandbox-") else PRODUCTION_PLAN


async def _token_form(request: web.Request) -> dict[str, Any]:
    """The LWA request's fields from a form-urlencoded or a JSON body (aiohttp caches the body)."""
    form: dict[str, Any]
    try:
        if request.content_type == "application/json":
            parsed = json.loads(await request.read())
            form = parsed if isinstance(parsed, dict) else {
                "_malformed": "The request body must be a JSON object."}
        else:
            form = {key: value for key, value in (await request.post()).items() if isinstance(value, str)}
    except (ValueError, UnicodeDecodeError, RecursionError):
        form = {"_malformed": "The request body could not be parsed."}
    return form
