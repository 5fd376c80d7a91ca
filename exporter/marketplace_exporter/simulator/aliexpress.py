"""AliExpress Open Platform's new IOP gateway, verified the way it verifies (fact sheet section 7).

Routes (GET or POST; parameters in the query or a form body)::

    /aliexpress/sync                        business APIs by ``method=``; signed WITHOUT a path
                                            prefix, ``method`` itself signed [E1][E8]. Implemented:
                                            aliexpress.solution.merchant.profile.get [X3]
    /aliexpress/rest/auth/token/refresh     path-style system API, signed WITH ``/auth/token/refresh``;
                                            ROTATES (rotation UNCONFIRMED upstream): the exporter must
                                            never call it

Checks, in order: system parameters present, app key, timestamp (window UNCONFIRMED for IOP; the
simulator uses legacy TOP's ±10 min [E4]), HMAC-SHA256 signature, ``method``, then the seller token,
read from ``session`` (the official SDK's name [E9]) or ``access_token`` (the official vector's
[E8]). Errors are the IOP envelope [E1] at HTTP 200 (status UNCONFIRMED), server errors 500.
Token lifetimes are set per app category [E6] (UNCONFIRMED): the simulator issues 30-day tokens.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from marketplace_exporter.adapters.iop_signing import iop_prefix
from marketplace_exporter.simulator.accounts import SimAccounts
from marketplace_exporter.simulator.faults import RouteSpec
from marketplace_exporter.simulator.iop import (
    ILLEGAL_TOKEN,
    HeldIopTokens,
    IopApp,
    check_system_params,
    fault_response,
    initial_tokens,
    iop_error,
    json_response,
    missing,
    request_id,
    request_params,
    rotate_refresh,
)

NAME = "aliexpress"
MOUNT = "/aliexpress"
SYNC, REFRESH = "sync", "token_refresh"
REFRESH_PATH = "/auth/token/refresh"
PROFILE_METHOD = "aliexpress.solution.merchant.profile.get"
PROFILE_KEY = PROFILE_METHOD.replace(".", "_") + "_response"
TIMESTAMP_WINDOW_S = 600.0  # UNCONFIRMED for IOP: legacy TOP's ±10 min [E4][OBS E10]
#: the prefix of the tokens a refresh issues
PREFIX = "sim-aliexpress"
ACCESS_TTL_S, REFRESH_TTL_S = 30 * 86400, 60 * 86400  # UNCONFIRMED: the simulator's choice
#: UNCONFIRMED code for an unknown ``method`` (the simulator's choice)
UNKNOWN_METHOD = ("InvalidApiPath", "ISV", "The specified API does not exist")
_DAY = 86400


@dataclass(frozen=True)
class AliExpressSeller:
    """A seller that authorised the simulated app. Simulator-only fake values."""

    alias: str
    seller_id: int
    shop_id: int
    shop_name: str
    country_code: str
    login_id: str
    access_token: str
    refresh_token: str
    token_days_left: int
    posting_forbidden: bool = False


AliExpressApp = IopApp[AliExpressSeller]


SIM_APP = AliExpressApp(
    app_key="500731",
    app_secret="sim-aliexpress-app-secret-0001",
    sellers=(
        AliExpressSeller(alias="global-main", seller_id=2300710001, shop_id=1107310001,
                         shop_name="Sim Outfitters Store", country_code="ES", login_id="es_sim_outfitters",
                         access_token="sim-aliexpress-session-global-main",
                         refresh_token="sim-aliexpress-refresh-global-main", token_days_left=20),
        AliExpressSeller(alias="global-second", seller_id=2300710002, shop_id=1107310002,
                         shop_name="Sim Gadgets Store", country_code="FR", login_id="fr_sim_gadgets",
                         access_token="sim-aliexpress-session-global-second",
                         refresh_token="sim-aliexpress-refresh-global-second", token_days_left=3,
                         posting_forbidden=True),
    ),
)


class AliExpressSim(HeldIopTokens):
    name = NAME
    checks = frozenset({SYNC, REFRESH})
    #: errors come in 200 bodies too (status UNCONFIRMED), so a 200 error is testable
    min_error_status = 200
    token_prefix, token_ttls = PREFIX, (ACCESS_TTL_S, REFRESH_TTL_S)

    def __init__(self, accounts: SimAccounts, clock: Callable[[], float],
                 app: AliExpressApp = SIM_APP) -> None:
        self._clock = clock
        self.app = app
        self.aliases = frozenset(seller.alias for seller in app.sellers)
        self._sellers = {seller.alias: seller for seller in app.sellers}
        self.tokens, self.refresh_tokens = initial_tokens(app.sellers, clock(), (ACCESS_TTL_S, REFRESH_TTL_S), _DAY)

    def routes(self) -> list[RouteSpec]:
        return [(method, path, check, handler) for method in ("GET", "POST")
                for path, check, handler in ((f"{MOUNT}/sync", SYNC, self.sync),
                                             (f"{MOUNT}/rest{REFRESH_PATH}", REFRESH, self.refresh))]

    def check_of(self, request: web.Request) -> str:
        raise AssertionError("every AliExpress route names its check")

    # --- the fault protocol ---------------------------------------------------------------------
    async def identify(self, request: web.Request, check: str) -> str | None:
        params = await request_params(request)
        if check == REFRESH:
            issued = self.refresh_tokens.get(params.get("refresh_token", ""))
        else:
            issued = self.tokens.get(_token(params))
        return issued.alias if issued else None

    def extra_headers(self) -> dict[str, str]:
        return {}

    def error_response(self, request: web.Request, fault: str, status: int | None, check: str) -> web.Response:
        return fault_response(fault, status, refresh=check == REFRESH)

    def sample_body(self, check: str) -> bytes:
        seller = self.app.sellers[0]
        if check == REFRESH:
            return json.dumps(self._token_body(seller, "sample-access", "sample-refresh", 0.0)).encode()
        return json.dumps({PROFILE_KEY: self._profile(seller)}).encode()

    def huge_parts(self, check: str) -> tuple[bytes, bytes, bytes]:
        head = json.dumps({"request_id": request_id()})[:-1]
        item = json.dumps(self._profile(self.app.sellers[0])).encode()
        return head.encode() + f', "{PROFILE_KEY}": {{"shops": ['.encode(), item, b"]}}"

    # --- the API ----------------------------------------------------------------------------------
    async def sync(self, request: web.Request, check: str) -> web.Response:
        params = await request_params(request)
        method = params.get("method", "")
        if not method:
            return iop_error(missing("method"))
        # a business API: iop_prefix(method) is "" — nothing prefixed, ``method`` signed [E1][E8]
        error = check_system_params(params, self.app.app_key, self.app.app_secret, iop_prefix(method),
                                    self._clock(), TIMESTAMP_WINDOW_S)
        if error is not None:
            return iop_error(error)
        if method != PROFILE_METHOD:
            return iop_error(UNKNOWN_METHOD)
        issued = self.tokens.get(_token(params))
        if issued is None or self._clock() >= issued.expires_at:
            return iop_error(ILLEGAL_TOKEN)
        return json_response({PROFILE_KEY: self._profile(self._sellers[issued.alias])})

    async def refresh(self, request: web.Request, check: str) -> web.Response:
        params = await request_params(request)
        now = self._clock()
        rotated = rotate_refresh(params, self.app, REFRESH_PATH, TIMESTAMP_WINDOW_S, now, self.tokens,
                                 self.refresh_tokens, PREFIX, (ACCESS_TTL_S, REFRESH_TTL_S))
        if isinstance(rotated, web.Response):
            return rotated
        alias, access, refresh = rotated
        seller = self._sellers[alias]
        return json_response(self._token_body(seller, access, refresh, now))

    def _profile(self, seller: AliExpressSeller) -> dict[str, Any]:
        """The merchant profile's fields as the official SDK's response class names them [X3]."""
        return {"country_code": seller.country_code, "product_posting_forbidden": seller.posting_forbidden,
                "merchant_login_id": seller.login_id, "shop_id": seller.shop_id,
                "shop_name": seller.shop_name, "shop_type": "official",
                "shop_url": f"//www.aliexpress.com/store/{seller.shop_id}", "request_id": request_id()}

    def _token_body(self, seller: AliExpressSeller, access: str, refresh: str, now: float) -> dict[str, Any]:
        """The token response's fields [OBS E5]; ``expire_time`` and ``refresh_token_valid_time`` as
        Unix milliseconds (the unit is UNCONFIRMED)."""
        return {"access_token": access, "refresh_token": refresh, "expires_in": ACCESS_TTL_S,
                "refresh_expires_in": REFRESH_TTL_S, "expire_time": int((now + ACCESS_TTL_S) * 1000),
                "refresh_token_valid_time": int((now + REFRESH_TTL_S) * 1000),
                "user_id": str(seller.seller_id), "seller_id": str(seller.seller_id),
                "user_nick": seller.login_id, "account": seller.login_id, "account_platform": "seller_center",
                "havana_id": str(seller.seller_id), "sp": "ae", "locale": "en_US",
                "code": "0", "request_id": request_id()}


def _token(params: dict[str, str]) -> str:
    return params.get("session") or params.get("access_token") or ""
