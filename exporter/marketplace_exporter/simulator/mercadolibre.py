"""Mercado Libre API and OAuth token endpoint, as the fact sheet describes them (section 8).

Routes::

    GET  /mercadolibre/users/me        Bearer token; per-user rate limit → 429 local_rate_limited
    POST /mercadolibre/oauth/token     refresh grant: ROTATES (observed [OBS H3]): the used refresh
                                       token stops working; the exporter must never call it

Error bodies use the documented envelope ``{"message", "error", "status", "cause"}`` [OBS H3]. The
401 wording of an API call and ML's rate-limit numbers are UNCONFIRMED: the simulator's choices
are listed next to each value below and in ``docs/marketplaces/mercadolibre.md``.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from marketplace_exporter.simulator.accounts import SimAccounts
from marketplace_exporter.simulator.amazon import TokenBucket
from marketplace_exporter.simulator.erp import Grant
from marketplace_exporter.simulator.faults import RouteSpec
from marketplace_exporter.simulator.tokens import remember

NAME = "mercadolibre"
MOUNT = "/mercadolibre"
USERS_ME, TOKEN = "users_me", "token"
ACCESS_TOKEN_TTL_S = 21600  # 6 h [OBS H3]
#: ML's limits are UNCONFIRMED; the simulator's own per-user bucket (one third-party report saw
#: 429s at about 5-7 requests per second)
RATE_PER_SECOND, BURST = 5.0, 10.0

# default HTTP status → (error, message) of the envelope; "choice" = the simulator's wording
NO_HEADER = ("unauthorized", "authorization value not present")  # OBS (third-party logs)
BAD_TOKEN = ("unauthorized", "invalid access token")  # OBS (third-party logs)
FORBIDDEN = ("forbidden", "forbidden")  # error code [H2][OBS H4]; message choice
RATE_LIMITED = ("local_rate_limited", "local_rate_limited")  # [OBS H4]
INVALID_GRANT = "Error validating grant. Your authorization code or refresh token may be expired or it " \
                "was already used"  # [OBS H3]
_BY_STATUS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "bad request"), 401: BAD_TOKEN, 403: FORBIDDEN, 404: ("not_found", "resource not found"),
    429: RATE_LIMITED, 500: ("internal_error", "Internal server error"),
    503: ("service_unavailable", "Service unavailable"),
}


@dataclass(frozen=True)
class MeliUser:
    """A seller that authorised the simulated app. Simulator-only fake values."""

    alias: str
    user_id: int
    nickname: str
    site_id: str
    country_id: str
    access_token: str
    refresh_token: str


@dataclass(frozen=True)
class MeliApp:
    client_id: str
    client_secret: str
    users: tuple[MeliUser, ...]

    def user(self, alias: str) -> MeliUser:
        for user in self.users:
            if user.alias == alias:
                return user
        raise KeyError(alias)


SIM_APP = MeliApp(
    client_id="5961000000000001",
    client_secret="sim-meli-client-secret-0001",
    users=(
        MeliUser(alias="mla-main", user_id=295000001, nickname="SIM_OUTFITTERS_AR", site_id="MLA",
                 country_id="AR", access_token="APP_USR-5961000000000001-sim-access-mla-main-295000001",
                 refresh_token="TG-sim-refresh-mla-main-295000001"),
        MeliUser(alias="mlb-main", user_id=295000002, nickname="SIM_OUTFITTERS_BR", site_id="MLB",
                 country_id="BR", access_token="APP_USR-5961000000000001-sim-access-mlb-main-295000002",
                 refresh_token="TG-sim-refresh-mlb-main-295000002"),
    ),
)


def meli_error(status: int, error: str, message: str) -> web.Response:
    body = {"message": message, "error": error, "status": status, "cause": []}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def _grant_error(error: str, description: str, status: int = 400) -> web.Response:
    # the token endpoint's OAuth shape, as observed for invalid_grant [OBS H3]
    body = {"error": error, "error_description": description, "status": status, "cause": []}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


@dataclass(frozen=True)
class Issued:
    alias: str
    #: None: an identity token, which production keeps current (it never expires in the simulator)
    expires_at: float | None


class MercadoLibreSim:
    name = NAME
    checks = frozenset({USERS_ME, TOKEN})
    min_error_status = 400  # ML uses real HTTP statuses for errors [OBS H3]

    def __init__(self, accounts: SimAccounts, clock: Callable[[], float], app: MeliApp = SIM_APP) -> None:
        self._clock = clock
        self.app = app
        self.aliases = frozenset(user.alias for user in app.users)
        self._users = {user.alias: user for user in app.users}
        self.tokens: dict[str, Issued] = {user.access_token: Issued(user.alias, None) for user in app.users}
        #: refresh token → alias; a used one is removed (rotation [OBS H3])
        self.refresh_tokens: dict[str, str] = {user.refresh_token: user.alias for user in app.users}
        self.buckets: dict[str, TokenBucket] = {}

    def routes(self) -> list[RouteSpec]:
        return [("GET", MOUNT + "/users/me", USERS_ME, self.users_me),
                ("POST", MOUNT + "/oauth/token", TOKEN, self.token)]

    def check_of(self, request: web.Request) -> str:
        raise AssertionError("every Mercado Libre route names its check")

    # --- the fault protocol ---------------------------------------------------------------------
    async def identify(self, request: web.Request, check: str) -> str | None:
        if check == TOKEN:
            return self.refresh_tokens.get(str((await _form(request)).get("refresh_token", "")))
        issued = self.tokens.get(_bearer(request) or "")
        return issued.alias if issued else None

    def extra_headers(self) -> dict[str, str]:
        return {}

    def error_response(self, request: web.Request, fault: str, status: int | None, check: str) -> web.Response:
        if check == TOKEN and fault in ("token_expired", "permission_denied"):
            error = "invalid_grant" if fault == "token_expired" else "unauthorized_client"
            return _grant_error(error, INVALID_GRANT if fault == "token_expired" else
                                "the application has no grant for this user", status or 400)
        default = {"token_expired": 401, "permission_denied": 403, "throttle": 429}.get(fault, 500)
        status = status or default
        error, message = {"token_expired": BAD_TOKEN, "permission_denied": FORBIDDEN,
                          "throttle": RATE_LIMITED}.get(fault) or _BY_STATUS.get(
            status, _BY_STATUS[500] if status >= 500 else _BY_STATUS[400])
        return meli_error(status, error, message)

    def sample_body(self, check: str) -> bytes:
        user = self.app.users[0]
        if check == TOKEN:
            return json.dumps(self._token_body(user, "APP_USR-sample", "TG-sample")).encode()
        return json.dumps(self._user_body(user)).encode()

    def huge_parts(self, check: str) -> tuple[bytes, bytes, bytes]:
        user = self.app.users[0]
        head = json.dumps({"id": user.user_id, "nickname": user.nickname, "site_id": user.site_id})[:-1]
        return head.encode() + b', "tags": [', b'"normal"', b"]}"

    # --- the API ----------------------------------------------------------------------------------
    async def users_me(self, request: web.Request, check: str) -> web.Response:
        token = _bearer(request)
        if not token:
            return meli_error(401, *NO_HEADER)
        issued = self.tokens.get(token)
        if issued is None or (issued.expires_at is not None and self._clock() >= issued.expires_at):
            return meli_error(401, *BAD_TOKEN)
        now = self._clock()
        bucket = self.buckets.setdefault(issued.alias, TokenBucket(RATE_PER_SECOND, BURST, BURST, now))
        if not bucket.take(now):
            return meli_error(429, *RATE_LIMITED)
        return web.Response(text=json.dumps(self._user_body(self._users[issued.alias])),
                            content_type="application/json")

    @staticmethod
    def _user_body(user: MeliUser) -> dict[str, Any]:
        # a subset of the /users/me user object; fields beyond id/site_id are the simulator's choice
        return {"id": user.user_id, "nickname": user.nickname, "site_id": user.site_id,
                "country_id": user.country_id, "user_type": "normal", "tags": ["normal"],
                "status": {"site_status": "active"}}

    # --- OAuth --------------------------------------------------------------------------------------
    async def token(self, request: web.Request, check: str) -> web.Response:
        """``POST /oauth/token`` refresh grant (form body, or the query as some clients send it)."""
        form = await _form(request)
        for field in ("grant_type", "client_id", "client_secret", "refresh_token"):
            if not form.get(field):
                return _grant_error("invalid_request", f"missing required parameter: {field}")
        if form["grant_type"] != "refresh_token":
            return _grant_error("unsupported_grant_type", "only refresh_token is simulated")
        if form["client_id"] != self.app.client_id or not hmac.compare_digest(
                form["client_secret"].encode(), self.app.client_secret.encode()):
            return _grant_error("invalid_client", "invalid client_id or client_secret")  # choice
        grant = self._rotate(form["refresh_token"])
        if grant is None:  # unknown, or already used: rotation made it worthless [OBS H3]
            return _grant_error("invalid_grant", INVALID_GRANT)
        body = self._token_body(self._users[grant.alias], grant.access_token, grant.refresh_token)
        return web.Response(text=json.dumps(body), content_type="application/json")

    def _rotate(self, refresh_token: str) -> Grant | None:
        """The rotation: the used refresh token dies, a new pair is issued (None: refused)."""
        alias = self.refresh_tokens.pop(refresh_token, None)
        if alias is None:
            return None
        user = self._users[alias]
        access = f"APP_USR-{self.app.client_id}-{secrets.token_hex(12)}-{user.user_id}"
        refresh = f"TG-{secrets.token_hex(12)}-{user.user_id}"
        expires_at = self._clock() + ACCESS_TOKEN_TTL_S
        remember(self.tokens, access, Issued(alias, expires_at))
        self.refresh_tokens[refresh] = alias
        return Grant(alias, access, refresh, expires_at)

    # --- the tokens production holds (the demo's ERP stand-in, simulator/erp.py) ---------------------
    def held_aliases(self) -> tuple[str, ...]:
        return tuple(user.alias for user in self.app.users)

    def identity_grant(self, alias: str) -> Grant:
        """The identity token never expires here (production keeps it current): no expiry known."""
        user = self._users[alias]
        return Grant(alias, user.access_token, user.refresh_token, None)

    def refresh_grant(self, alias: str, refresh_token: str) -> Grant | None:
        grant = self._rotate(refresh_token)
        return grant if grant is None or grant.alias == alias else None

    @staticmethod
    def _token_body(user: MeliUser, access: str, refresh: str) -> dict[str, Any]:
        return {"access_token": access, "token_type": "Bearer", "expires_in": ACCESS_TOKEN_TTL_S,
                "scope": "offline_access read write", "user_id": user.user_id, "refresh_token": refresh}


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def _form(request: web.Request) -> dict[str, str]:
    """Token-request fields from a form body, else from the query (aiohttp caches the body)."""
    fields = {key: value for key, value in request.query.items()}
    if request.content_type == "application/x-www-form-urlencoded":
        try:
            fields |= {key: value for key, value in (await request.post()).items() if isinstance(value, str)}
        except (ValueError, UnicodeDecodeError):
            pass
    return fields
