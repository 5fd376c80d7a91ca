"""Lazada Open Platform (Lazop), verified the way the gateway verifies (fact sheet section 4).

Routes (GET or POST; parameters in the query or a form body; signatures cover the API path
*without* the mount prefix, e.g. ``/seller/get``)::

    /lazada/{country}/rest/seller/get           country ∈ sg, my, vn, th, ph, id: the seller profile
    /lazada/auth/rest/auth/token/refresh        refresh grant: ROTATES (the used refresh token stops
                                                working); the exporter must never call it

Checks, in order: system parameters present, app key, timestamp within 7200 s [D5], HMAC-SHA256
signature [D2][D5], the app's daily call cap [D7], then the access token (known, unexpired, and
issued for this country's gateway). Whether Lazada rotates refresh tokens is UNCONFIRMED; the
simulator rotates, the safe model of a platform a monitor must not refresh. HTTP statuses of
errors are UNCONFIRMED (SDKs read the body ``code``): errors answer 200, server errors 500.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from marketplace_exporter.simulator.accounts import SimAccounts
from marketplace_exporter.simulator.faults import RouteSpec
from marketplace_exporter.simulator.iop import (
    ILLEGAL_TOKEN,
    HeldIopTokens,
    IopApp,
    ban_text,
    check_system_params,
    fault_response,
    initial_tokens,
    iop_error,
    json_response,
    request_id,
    request_params,
    rotate_refresh,
)

NAME = "lazada"
MOUNT = "/lazada"
COUNTRIES = ("sg", "my", "vn", "th", "ph", "id")
SELLER_GET, REFRESH = "seller_get", "token_refresh"
SELLER_PATH, REFRESH_PATH = "/seller/get", "/auth/token/refresh"
TIMESTAMP_WINDOW_S = 7200.0  # [D5]
#: the simulated app is *online*: access 30 d, refresh 180 d, 10 M calls/day [D7]
#: the prefix of the tokens a refresh issues
PREFIX = "sim-lazada"
ACCESS_TTL_S, REFRESH_TTL_S = 30 * 86400, 180 * 86400
DAILY_CAP = 10_000_000
#: the day the cap counts in: UNCONFIRMED; the simulator uses UTC+8 (Lazada's home time zone)
_UTC8 = 8 * 3600
#: the ban a ``throttle`` fault announces (real ban lengths are UNCONFIRMED)
_DAY = 86400


@dataclass(frozen=True)
class LazadaSeller:
    """A seller that authorised the simulated app, on one country's gateway. Fake values."""

    alias: str
    country: str
    seller_id: int
    user_id: int
    short_code: str
    name: str
    access_token: str
    refresh_token: str
    #: days the access token has left when the simulator starts (it was issued 30 d before expiry)
    token_days_left: int


LazadaApp = IopApp[LazadaSeller]


SIM_APP = LazadaApp(
    app_key="100731",
    app_secret="sim-lazada-app-secret-0001",
    sellers=(
        LazadaSeller(alias="th-main", country="th", seller_id=100071001, user_id=200071001,
                     short_code="TH1SIMAB", name="Sim Outfitters TH",
                     access_token="sim-lazada-access-th-main", refresh_token="sim-lazada-refresh-th-main",
                     token_days_left=25),
        LazadaSeller(alias="vn-main", country="vn", seller_id=100071002, user_id=200071002,
                     short_code="VN1SIMCD", name="Sim Outfitters VN",
                     access_token="sim-lazada-access-vn-main", refresh_token="sim-lazada-refresh-vn-main",
                     token_days_left=5),
    ),
)


class LazadaSim(HeldIopTokens):
    name = NAME
    checks = frozenset({SELLER_GET, REFRESH})
    #: errors come in 200 bodies too (status UNCONFIRMED), so a 200 error is testable
    min_error_status = 200
    token_prefix, token_ttls = PREFIX, (ACCESS_TTL_S, REFRESH_TTL_S)

    def __init__(self, accounts: SimAccounts, clock: Callable[[], float], app: LazadaApp = SIM_APP) -> None:
        self._clock = clock
        self.app = app
        self.aliases = frozenset(seller.alias for seller in app.sellers)
        self._sellers = {seller.alias: seller for seller in app.sellers}
        self.tokens, self.refresh_tokens = initial_tokens(app.sellers, clock(), (ACCESS_TTL_S, REFRESH_TTL_S), _DAY)
        self.daily_cap = DAILY_CAP
        self.calls: dict[int, int] = {}

    def routes(self) -> list[RouteSpec]:
        seller = f"{MOUNT}/{{country:{'|'.join(COUNTRIES)}}}/rest{SELLER_PATH}"
        refresh = f"{MOUNT}/auth/rest{REFRESH_PATH}"
        return [(method, path, check, handler) for method in ("GET", "POST")
                for path, check, handler in ((seller, SELLER_GET, self.seller_get),
                                             (refresh, REFRESH, self.refresh))]

    def check_of(self, request: web.Request) -> str:
        raise AssertionError("every Lazada route names its check")

    # --- the fault protocol ---------------------------------------------------------------------
    async def identify(self, request: web.Request, check: str) -> str | None:
        params = await request_params(request)
        if check == REFRESH:
            issued = self.refresh_tokens.get(params.get("refresh_token", ""))
        else:
            issued = self.tokens.get(params.get("access_token", ""))
        return issued.alias if issued else None

    def extra_headers(self) -> dict[str, str]:
        return {}

    def error_response(self, request: web.Request, fault: str, status: int | None, check: str) -> web.Response:
        return fault_response(fault, status, refresh=check == REFRESH)

    def sample_body(self, check: str) -> bytes:
        seller = self.app.sellers[0]
        if check == REFRESH:
            return json.dumps(self._token_body(seller, "sample-access", "sample-refresh")).encode()
        return json.dumps({"code": "0", "request_id": request_id(), "data": self._seller(seller)}).encode()

    def huge_parts(self, check: str) -> tuple[bytes, bytes, bytes]:
        head = json.dumps({"code": "0", "request_id": request_id()})[:-1]
        item = json.dumps(self._seller(self.app.sellers[0])).encode()
        return head.encode() + b', "data": {"warehouses": [', item, b"]}}"

    # --- the API ----------------------------------------------------------------------------------
    async def seller_get(self, request: web.Request, check: str) -> web.Response:
        params = await request_params(request)
        now = self._clock()
        error = check_system_params(params, self.app.app_key, self.app.app_secret, SELLER_PATH, now,
                                    TIMESTAMP_WINDOW_S)
        if error is not None:
            return iop_error(error)
        banned = self._count_call(now)
        if banned is not None:
            return iop_error(("ApiCallLimit", "ISV", ban_text(banned)))
        issued = self.tokens.get(params.get("access_token", ""))
        if issued is None or now >= issued.expires_at:
            return iop_error(ILLEGAL_TOKEN)
        seller = self._sellers[issued.alias]
        if seller.country != request.match_info["country"]:
            return iop_error(ILLEGAL_TOKEN)  # a token works on its own country's gateway (UNCONFIRMED)
        return json_response({"code": "0", "request_id": request_id(), "data": self._seller(seller)})

    async def refresh(self, request: web.Request, check: str) -> web.Response:
        params = await request_params(request)
        now = self._clock()
        rotated = rotate_refresh(params, self.app, REFRESH_PATH, TIMESTAMP_WINDOW_S, now, self.tokens,
                                 self.refresh_tokens, PREFIX, (ACCESS_TTL_S, REFRESH_TTL_S))
        if isinstance(rotated, web.Response):
            return rotated
        alias, access, refresh = rotated
        seller = self._sellers[alias]
        return json_response(self._token_body(seller, access, refresh))

    def _count_call(self, now: float) -> int | None:
        """Count a call against the app's daily cap; the ban's seconds once it is spent."""
        day = int((now + _UTC8) // _DAY)
        if day not in self.calls:
            self.calls = {day: 0}  # only today's count is kept
        self.calls[day] += 1
        if self.calls[day] <= self.daily_cap:
            return None
        return max(1, int((day + 1) * _DAY - (now + _UTC8)))

    def _seller(self, seller: LazadaSeller) -> dict[str, Any]:
        # the fact sheet lists no /seller/get fields; these are illustrative (UNCONFIRMED)
        return {"name": seller.name, "seller_id": seller.seller_id, "short_code": seller.short_code,
                "email": f"{seller.alias}@seller.sim.invalid", "location": seller.country.upper(),
                "cb": False, "verified": True, "status": "ACTIVE"}

    def _token_body(self, seller: LazadaSeller, access: str, refresh: str) -> dict[str, Any]:
        """The token response's fields [D2][D6]."""
        return {"access_token": access, "refresh_token": refresh, "expires_in": ACCESS_TTL_S,
                "refresh_expires_in": REFRESH_TTL_S, "country": seller.country,
                "account_platform": "seller_center", "account": f"{seller.alias}@seller.sim.invalid",
                "country_user_info": [{"country": seller.country, "user_id": str(seller.user_id),
                                       "seller_id": str(seller.seller_id), "short_code": seller.short_code}],
                "code": "0", "request_id": request_id()}
