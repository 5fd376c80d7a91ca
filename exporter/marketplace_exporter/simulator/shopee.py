"""Shopee Open Platform v2, verified the way Shopee verifies (fact sheet section 3).

Routes (mounted under ``/shopee``; signatures are over the API path *without* that prefix)::

    GET /shopee/api/v2/shop/get_shop_info            Shop API:   partner_id, timestamp, sign,
                                                                 access_token, shop_id
    GET /shopee/api/v2/public/get_shops_by_partner   Public API: partner_id, timestamp, sign
    POST /shopee/api/v2/auth/access_token/get        refresh: public-API signature, JSON body
                                                     {refresh_token, partner_id, shop_id}; ROTATES:
                                                     the refresh token used stops working [C3]

The refresh route exists so tests can prove from ``/__sim/requests`` that the exporter never calls
it (a monitor that refreshed would break the seller's single-use refresh-token chain).

HTTP status on errors is UNCONFIRMED upstream (SDKs decide on the body's ``error``). The
simulator's choice: 200 for business errors (error_param, error_sign, error_auth,
invalid_acceess_token), 429 for error_rate_limit, 500 for error_server. A fault's ``value``
overrides the status, so "an error in a 200 body" is testable for every error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from typing import Any

from aiohttp import web

from marketplace_exporter.simulator.accounts import ShopeeShop, SimAccounts
from marketplace_exporter.simulator.faults import RouteSpec

NAME = "shopee"
MOUNT = "/shopee"
SHOP_INFO, SHOPS_BY_PARTNER = "get_shop_info", "get_shops_by_partner"
API_PATHS = {SHOP_INFO: "/api/v2/shop/get_shop_info", SHOPS_BY_PARTNER: "/api/v2/public/get_shops_by_partner"}
TOKEN_REFRESH, REFRESH_PATH = "token_refresh", "/api/v2/auth/access_token/get"
ACCESS_TOKEN_SECONDS = 4 * 3600  # [C2]
TIMESTAMP_WINDOW_S = 300
AUTHORIZATION_DAYS = 365
_DAY = 86400

# (error, message, default HTTP status); messages are Shopee's documented texts
RATE_LIMIT = ("error_rate_limit",
              "Too many requests. You have reached the rate limit. Please try again later.", 429)
SERVER_ERROR = ("error_server", "Something wrong. Please try later.", 500)
BAD_TOKEN = ("invalid_acceess_token", "Invalid access_token, please have a check.", 200)
NO_PERMISSION = ("error_auth", "No permission to current api.", 200)
BAD_SHOP = ("error_auth", "Invalid partner_id or shopid.", 200)
#: get_shop_info's common_error_list [C3]; which request gets it is a SIMULATOR CHOICE: a shop id
#: the partner has no authorization for
NOT_LINKED = ("shop_no_linked", "Partner and shop has no linked.", 200)
WRONG_SIGN = ("error_sign", "Wrong sign.", 200)
_RANGE = "should be an integer between 0 and 4294967295."
_FAULTS = {"throttle": RATE_LIMIT, "server_error": SERVER_ERROR, "token_expired": BAD_TOKEN,
           "permission_denied": NO_PERMISSION}
_MISSING = {
    "partner_id": "There is no partner_id in query.",
    "timestamp": "no timestamp",
    "sign": "There is no sign in query.",
    "access_token": "There is no access_token in query.",
    "shop_id": "Wrong parameters, detail: shop_id is required.",
}


def sign(partner_key: str, *parts: object) -> str:
    """Shopee's v2 signature: HMAC-SHA256(partner_key, concatenated parts), lowercase hex."""
    base = "".join(str(part) for part in parts)
    return hmac.new(partner_key.encode(), base.encode(), hashlib.sha256).hexdigest()


def request_id() -> str:
    return secrets.token_hex(16)


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def shopee_error(error: str, message: str, status: int = 200) -> web.Response:
    return _json({"request_id": request_id(), "error": error, "message": message}, status)


class ShopeeSim:
    name = NAME
    checks = frozenset(API_PATHS) | {TOKEN_REFRESH}
    min_error_status = 200

    def __init__(self, accounts: SimAccounts, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._partner = accounts.shopee
        self.aliases = frozenset(shop.alias for shop in self._partner.shops)
        self._by_id = {shop.shop_id: shop for shop in self._partner.shops}
        self._by_token = {shop.access_token: shop for shop in self._partner.shops}
        # authorisation times are fixed when the simulator starts: stable for its lifetime
        started = int(clock())
        self.auth_time = {
            shop.alias: started - shop.authorized_days_ago * _DAY for shop in self._partner.shops}
        #: live refresh tokens (single-use): the initial ones are simulator-only fake values
        self.refresh_tokens = {f"sim-shopee-refresh-{shop.alias}": shop for shop in self._partner.shops}

    def routes(self) -> list[RouteSpec]:
        routes: list[RouteSpec] = [("GET", MOUNT + path, check, self.handle) for check, path in API_PATHS.items()]
        return [*routes, ("POST", MOUNT + REFRESH_PATH, TOKEN_REFRESH, self.refresh)]

    def check_of(self, request: web.Request) -> str:
        raise AssertionError("every Shopee route names its check")

    # --- the fault protocol ---------------------------------------------------------------------
    async def identify(self, request: web.Request, check: str) -> str | None:
        shop = self._by_id.get(_int(request.query.get("shop_id")) or -1)
        return shop.alias if shop and check == SHOP_INFO else None

    def extra_headers(self) -> dict[str, str]:
        return {}

    def error_response(
        self, request: web.Request, fault: str, status: int | None, check: str,
    ) -> web.Response:
        error, message, default = _FAULTS.get(fault, RATE_LIMIT if status == 429 else SERVER_ERROR)
        return shopee_error(error, message, status or default)

    def sample_body(self, check: str) -> bytes:
        shop = self._partner.shops[0]
        body = self._shop_info(shop) if check != SHOPS_BY_PARTNER else self._shops_by_partner(1, 100)
        return json.dumps(body).encode()

    def huge_parts(self, check: str) -> tuple[bytes, bytes, bytes]:
        item = json.dumps(self._authed_shop(self._partner.shops[0])).encode()
        head = json.dumps({"request_id": request_id(), "error": "", "message": ""})[:-1]
        return head.encode() + b', "authed_shop_list": [', item, b'], "more": false}'

    # --- the API ----------------------------------------------------------------------------------
    async def handle(self, request: web.Request, check: str) -> web.Response:
        query = request.query
        shop_api = check == SHOP_INFO
        required = ("partner_id", "timestamp", "sign") + (("access_token", "shop_id") if shop_api else ())
        for name in required:
            if not query.get(name):
                return shopee_error("error_param", _MISSING[name])
        partner_id = _int(query["partner_id"])
        if partner_id is None:
            return shopee_error("error_param", f"Partner_id is invalid, {_RANGE}")
        if partner_id != self._partner.partner_id:
            return shopee_error("error_param", "Invalid partner_id.")
        timestamp = _int(query["timestamp"])
        if timestamp is None:
            return shopee_error("error_param", f"Timestamp is invalid, {_RANGE}")
        if abs(timestamp - self._clock()) > TIMESTAMP_WINDOW_S:
            return shopee_error("error_param", "Timestamp is expired.")
        parts: tuple[str, ...] = (query["partner_id"], API_PATHS[check], query["timestamp"])
        if shop_api:
            parts += (query["access_token"], query["shop_id"])
        if not hmac.compare_digest(sign(self._partner.partner_key, *parts).encode(), query["sign"].encode()):
            return shopee_error(*WRONG_SIGN)
        if not shop_api:
            return self._list_shops(query.get("page_no"), query.get("page_size"))
        if _int(query["shop_id"]) not in {shop.shop_id for shop in self._partner.shops}:
            return shopee_error(*NOT_LINKED)
        owner = self._by_token.get(query["access_token"])
        if owner is None:
            return shopee_error(*BAD_TOKEN)
        if owner.shop_id != _int(query["shop_id"]):
            return shopee_error(*BAD_SHOP)
        return _json(self._shop_info(owner))

    async def refresh(self, request: web.Request, check: str) -> web.Response:
        """Shopee's refresh: returns a new access token AND a new refresh token; the old refresh
        token is dead from now on [C3]."""
        query = request.query
        for name in ("partner_id", "timestamp", "sign"):
            if not query.get(name):
                return shopee_error("error_param", _MISSING[name])
        if _int(query["partner_id"]) != self._partner.partner_id:
            return shopee_error("error_param", "Invalid partner_id.")
        timestamp = _int(query["timestamp"])
        if timestamp is None or abs(timestamp - self._clock()) > TIMESTAMP_WINDOW_S:
            return shopee_error("error_param", "Timestamp is expired.")
        expected = sign(self._partner.partner_key, query["partner_id"], REFRESH_PATH, query["timestamp"])
        if not hmac.compare_digest(expected.encode(), query["sign"].encode()):
            return shopee_error(*WRONG_SIGN)
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return shopee_error("error_param", "Wrong parameters, detail: invalid json body.")
        token = body.get("refresh_token") if isinstance(body, dict) else None
        shop = self.refresh_tokens.pop(token, None) if isinstance(token, str) else None
        if shop is None or _int(str(body.get("shop_id"))) != shop.shop_id:
            return shopee_error("error_auth", "Invalid refresh_token.")
        access, refresh = f"sim-shopee-access-{secrets.token_hex(8)}", f"sim-shopee-refresh-{secrets.token_hex(8)}"
        self._by_token[access] = shop
        self.refresh_tokens[refresh] = shop
        return _json({"request_id": request_id(), "error": "", "message": "", "partner_id": self._partner.partner_id,
                      "shop_id": shop.shop_id, "access_token": access, "refresh_token": refresh,
                      "expire_in": ACCESS_TOKEN_SECONDS})

    def _list_shops(self, page_no: str | None, page_size: str | None) -> web.Response:
        number, size = _int(page_no or "1"), _int(page_size or "100")
        if number is None or number < 1 or size is None or not 1 <= size <= 100:
            return shopee_error("error_param",
                                "Wrong parameters, detail: page_no >= 1, 1 <= page_size <= 100.")
        return _json(self._shops_by_partner(number, size))

    def _shops_by_partner(self, page_no: int, page_size: int) -> dict[str, Any]:
        start = (page_no - 1) * page_size
        page = self._partner.shops[start:start + page_size]
        return {"request_id": request_id(), "error": "", "message": "",
                "authed_shop_list": [self._authed_shop(shop) for shop in page],
                "more": start + page_size < len(self._partner.shops)}

    def _authed_shop(self, shop: ShopeeShop) -> dict[str, Any]:
        auth_time = self.auth_time[shop.alias]
        return {"region": shop.region, "shop_id": shop.shop_id, "auth_time": auth_time,
                "expire_time": auth_time + AUTHORIZATION_DAYS * _DAY, "sip_affi_shop_list": []}  # [C7]

    def _shop_info(self, shop: ShopeeShop) -> dict[str, Any]:
        auth_time = self.auth_time[shop.alias]
        return {
            "request_id": request_id(), "error": "", "message": "",
            "shop_name": shop.shop_name, "region": shop.region, "status": "NORMAL",
            "auth_time": auth_time, "expire_time": auth_time + AUTHORIZATION_DAYS * _DAY,
            "is_cb": False, "is_sip": False, "is_upgraded_cbsc": False, "merchant_id": None,
            "shop_fulfillment_flag": "Others", "is_main_shop": False, "is_direct_shop": False,
            "linked_main_shop_id": 0, "linked_direct_shop_list": [], "sip_affi_shops": [],
        }


def _int(raw: str | None) -> int | None:
    """A decimal integer in Shopee's accepted range 0..4294967295, else None."""
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        return None
    value = int(raw)
    return value if value <= 4294967295 else None
