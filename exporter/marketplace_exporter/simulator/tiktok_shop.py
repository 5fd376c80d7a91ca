"""TikTok Shop Open API (202309) and its auth host, verified the way TikTok verifies (section 6).

Routes (signatures cover the API path *without* the ``/tiktok`` mount prefix)::

    GET /tiktok/authorization/202309/shops      Get Authorized Shops: app_key, timestamp, sign;
                                                 x-tts-access-token; no shop_cipher
    GET /tiktok/event/202309/webhooks           Get Shop Webhooks: the same plus shop_cipher
    GET /tiktok-auth/api/v2/token/refresh       refresh grant: ROTATES (the used refresh token
                                                 stops working); the exporter must never call it

Whether TikTok rotates refresh tokens is UNCONFIRMED; the simulator rotates, the safe model of a
platform a monitor must not refresh. HTTP statuses of errors are UNCONFIRMED too (the SDK decides
on the body's ``code`` [G1]); the simulator's choices are listed next to each error below, and
``docs/marketplaces/tiktok_shop.md`` has the table with its sources.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from marketplace_exporter.adapters.tiktok_shop_signing import sign
from marketplace_exporter.simulator.accounts import SimAccounts
from marketplace_exporter.simulator.erp import Grant
from marketplace_exporter.simulator.faults import RouteSpec
from marketplace_exporter.simulator.tokens import remember

NAME = "tiktok_shop"
API_MOUNT, AUTH_MOUNT = "/tiktok", "/tiktok-auth"
SHOPS, WEBHOOKS, REFRESH = "authorized_shops", "shop_webhooks", "token_refresh"
API_PATHS = {SHOPS: "/authorization/202309/shops", WEBHOOKS: "/event/202309/webhooks"}
REFRESH_PATH = "/api/v2/token/refresh"
#: "within 5 minutes … must be a 10-digit Unix timestamp" (the official signing guide [G7])
TIMESTAMP_WINDOW_S = 300
#: observed: access tokens expire ~7 days after issue; refresh expiry far in the future [OBS G3]
ACCESS_TOKEN_TTL_S = 7 * 86400
REFRESH_EXPIRE_AT = 4841467787  # the observed absolute refresh_token_expire_in [OBS G3]

# (code, message, default HTTP status). Sources: [OBS G5] for 105002/105005; third-party
# production logs for 106001 (sign), 106013 and 36009004 (quoted in docs/marketplaces/tiktok_shop.md)
# and the 401 status of header errors; developers quoting the official guide for "status code of
# 401 … signature is invalid (error code: 106001)" [OBS G8]; everything marked "choice" is the
# simulator's own (the other "Invalid credentials" 106001 answers take the bad signature's 401).
BAD_SIGN = (106001, "Invalid credentials. The 'sign' query parameter is invalid.", 401)  # [OBS G8]
BAD_APP_KEY = (106001, "Invalid credentials. The 'app_key' query parameter is invalid.", 401)  # choice
BAD_TIMESTAMP = (106001, "Invalid credentials. The 'timestamp' query parameter is invalid or "
                 "expired.", 401)  # choice: the window is [G7], the status is the bad signature's
BAD_TOKEN = (36009004, "Invalid credentials. The 'x-tts-access-token' header is invalid", 401)
EXPIRED = (105002, "access token is expired, please refresh it", 401)
NO_PACKAGE = (105005, "you should apply auth pkg for this api", 200)
CIPHER_MISSING = (106013, "Missing identifier. The 'shop_cipher' query parameter is required to "
                  "identify the target shop.", 200)
CIPHER_UNWANTED = (36009004, "The 'shop_cipher' query parameter is not required for this request", 200)
CIPHER_FOREIGN = (106013, "Invalid identifier. The 'shop_cipher' query parameter does not match a "
                  "shop authorized to this access token.", 200)  # choice
# refresh errors: 36004005 / 36004001 [OBS, EcomPHP/tiktokshop-php PR #15]
NO_AUTH_RECORD = (36004005, "can not find related auth record", 200)
REFRESH_EXPIRED = (36004001, "rt has expired", 200)
BAD_APP_SECRET = (106001, "Invalid credentials. The 'app_secret' query parameter is invalid.", 200)  # choice
BAD_GRANT_TYPE = (106001, "Invalid parameter. The 'grant_type' query parameter must be "
                  "refresh_token.", 200)  # choice


@dataclass(frozen=True)
class TikTokShopIdentity:
    """A seller (one shop) that authorised the simulated app. Simulator-only fake values."""

    alias: str
    shop_id: str
    shop_name: str
    region: str
    cipher: str
    seller_type: str
    access_token: str
    refresh_token: str


@dataclass(frozen=True)
class TikTokApp:
    app_key: str
    app_secret: str
    shops: tuple[TikTokShopIdentity, ...]

    def shop(self, alias: str) -> TikTokShopIdentity:
        for shop in self.shops:
            if shop.alias == alias:
                return shop
        raise KeyError(alias)


SIM_APP = TikTokApp(
    app_key="6simtts0001ab",
    app_secret="sim-tiktok-app-secret-0001",
    shops=(
        TikTokShopIdentity(
            alias="us-main", shop_id="7494000000000000001", shop_name="Sim Outfitters US", region="US",
            cipher="ROW_sim-cipher-us-main", seller_type="LOCAL",
            access_token="ROW_sim-tiktok-access-us-main", refresh_token="ROW_sim-tiktok-refresh-us-main"),
        TikTokShopIdentity(
            alias="gb-main", shop_id="7494000000000000002", shop_name="Sim Outfitters GB", region="GB",
            cipher="GCP_sim-cipher-gb-main", seller_type="CROSS_BORDER",
            access_token="GCP_sim-tiktok-access-gb-main", refresh_token="GCP_sim-tiktok-refresh-gb-main"),
    ),
)


def request_id() -> str:
    """Shaped like TikTok's: UTC yyyymmddHHMMSS + 20 uppercase hex digits [OBS G5]."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(10).upper()


def envelope(code: int, message: str, data: Any = None, status: int = 200) -> web.Response:
    body = {"code": code, "message": message, "request_id": request_id(), "data": data}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def tiktok_error(code: int, message: str, status: int) -> web.Response:
    return envelope(code, message, None, status)


@dataclass(frozen=True)
class Issued:
    alias: str
    #: None: an identity token, which production keeps current (it never expires in the simulator)
    expires_at: float | None


class TikTokShopSim:
    name = NAME
    checks = frozenset(API_PATHS) | {REFRESH}
    #: TikTok answers errors in 200 bodies too (status UNCONFIRMED), so a 200 error is testable
    min_error_status = 200

    def __init__(self, accounts: SimAccounts, clock: Callable[[], float], app: TikTokApp = SIM_APP) -> None:
        self._clock = clock
        self.app = app
        self.aliases = frozenset(shop.alias for shop in app.shops)
        self._shops = {shop.alias: shop for shop in app.shops}
        self.tokens: dict[str, Issued] = {shop.access_token: Issued(shop.alias, None) for shop in app.shops}
        #: refresh token → alias; a used one is removed (rotation)
        self.refresh_tokens: dict[str, str] = {shop.refresh_token: shop.alias for shop in app.shops}

    def routes(self) -> list[RouteSpec]:
        routes: list[RouteSpec] = [("GET", API_MOUNT + path, check, self.handle) for check, path in API_PATHS.items()]
        routes.append(("GET", AUTH_MOUNT + REFRESH_PATH, REFRESH, self.refresh))
        return routes

    def check_of(self, request: web.Request) -> str:
        raise AssertionError("every TikTok Shop route names its check")

    # --- the fault protocol ---------------------------------------------------------------------
    async def identify(self, request: web.Request, check: str) -> str | None:
        if check == REFRESH:
            alias = self.refresh_tokens.get(request.query.get("refresh_token", ""))
            return alias
        issued = self.tokens.get(request.headers.get("x-tts-access-token", ""))
        return issued.alias if issued else None

    def extra_headers(self) -> dict[str, str]:
        return {}

    def error_response(self, request: web.Request, fault: str, status: int | None, check: str) -> web.Response:
        if fault == "token_expired":
            code, message, default = REFRESH_EXPIRED if check == REFRESH else EXPIRED
        elif fault == "permission_denied":
            code, message, default = NO_PACKAGE
        else:
            # TikTok's codes for throttling and server failures are UNCONFIRMED: the simulator
            # puts the HTTP status in ``code`` as a placeholder (never a fact-sheet code)
            default = {"throttle": 429, "server_error": 500}.get(fault, 500)
            code = status or default
            message = "Too many requests" if code == 429 else "Internal error (simulated)"
        return tiktok_error(code, message, status or default)

    def sample_body(self, check: str) -> bytes:
        shop = self.app.shops[0]
        if check == REFRESH:
            data: Any = self._token_data(shop, "ROW_sample-access", "ROW_sample-refresh")
        elif check == WEBHOOKS:
            data = self._webhooks(shop)
        else:
            data = {"shops": [self._shop_record(shop)]}
        return json.dumps({"code": 0, "message": "Success", "request_id": request_id(), "data": data}).encode()

    def huge_parts(self, check: str) -> tuple[bytes, bytes, bytes]:
        head = json.dumps({"code": 0, "message": "Success", "request_id": request_id()})[:-1]
        item = json.dumps(self._shop_record(self.app.shops[0])).encode()
        return head.encode() + b', "data": {"shops": [', item, b"]}}"

    # --- the API ----------------------------------------------------------------------------------
    async def handle(self, request: web.Request, check: str) -> web.Response:
        query = request.query
        if query.get("app_key") != self.app.app_key:
            return tiktok_error(*BAD_APP_KEY)
        timestamp = _int(query.get("timestamp"))
        if timestamp is None or abs(timestamp - self._clock()) > TIMESTAMP_WINDOW_S:
            return tiktok_error(*BAD_TIMESTAMP)
        body = await request.read()
        expected = sign(self.app.app_secret, API_PATHS[check], list(query.items()), method=request.method,
                        body=body, content_type=request.headers.get("content-type"))
        if not hmac.compare_digest(expected.encode(), query.get("sign", "").encode()):
            return tiktok_error(*BAD_SIGN)
        issued = self.tokens.get(request.headers.get("x-tts-access-token", ""))
        if issued is None:
            return tiktok_error(*BAD_TOKEN)
        if issued.expires_at is not None and self._clock() >= issued.expires_at:
            return tiktok_error(*EXPIRED)
        shop = self._shops[issued.alias]
        cipher = query.get("shop_cipher")
        if check == SHOPS:
            if cipher is not None:
                return tiktok_error(*CIPHER_UNWANTED)
            return envelope(0, "Success", {"shops": [self._shop_record(shop)]})
        if not cipher:
            return tiktok_error(*CIPHER_MISSING)
        if cipher != shop.cipher:
            return tiktok_error(*CIPHER_FOREIGN)
        return envelope(0, "Success", self._webhooks(shop))

    @staticmethod
    def _shop_record(shop: TikTokShopIdentity) -> dict[str, Any]:
        # Get Authorized Shops fields [G1][OBS G6]
        return {"id": shop.shop_id, "name": shop.shop_name, "region": shop.region,
                "seller_type": shop.seller_type, "cipher": shop.cipher,
                "code": f"{shop.region}LCSIM{shop.shop_id[-4:]}"}

    def _webhooks(self, shop: TikTokShopIdentity) -> dict[str, Any]:
        # the shape of Get Shop Webhooks' data is UNCONFIRMED: the simulator's choice
        started = 1_750_000_000
        return {"shop_id": shop.shop_id, "webhooks": [
            {"event_type": "ORDER_STATUS_CHANGE", "address": f"https://erp.example/tiktok/{shop.alias}",
             "create_time": started, "update_time": started}]}

    # --- the auth host ------------------------------------------------------------------------------
    async def refresh(self, request: web.Request, check: str) -> web.Response:
        """``GET /api/v2/token/refresh?app_key&app_secret&refresh_token&grant_type`` [G1], rotating."""
        query = request.query
        if query.get("app_key") != self.app.app_key:
            return tiktok_error(*BAD_APP_KEY)
        if not hmac.compare_digest(query.get("app_secret", "").encode(), self.app.app_secret.encode()):
            return tiktok_error(*BAD_APP_SECRET)
        if query.get("grant_type") != "refresh_token":
            return tiktok_error(*BAD_GRANT_TYPE)
        grant = self._rotate(query.get("refresh_token", ""))
        if grant is None:  # unknown, or already used: rotation made it worthless
            return tiktok_error(*NO_AUTH_RECORD)
        return envelope(0, "success", self._token_data(self._shops[grant.alias], grant.access_token,
                                                       grant.refresh_token))

    def _rotate(self, refresh_token: str) -> Grant | None:
        """The rotation: the used refresh token dies, a new pair is issued (None: refused)."""
        alias = self.refresh_tokens.pop(refresh_token, None)
        if alias is None:
            return None
        access, refresh = f"ROW_{secrets.token_urlsafe(32)}", f"ROW_{secrets.token_urlsafe(32)}"
        expires_at = self._clock() + ACCESS_TOKEN_TTL_S
        remember(self.tokens, access, Issued(alias, expires_at))
        self.refresh_tokens[refresh] = alias
        return Grant(alias, access, refresh, expires_at, float(REFRESH_EXPIRE_AT))

    # --- the tokens production holds (the demo's ERP stand-in, simulator/erp.py) ---------------------
    def held_aliases(self) -> tuple[str, ...]:
        return tuple(shop.alias for shop in self.app.shops)

    def identity_grant(self, alias: str) -> Grant:
        """The identity token never expires here (production keeps it current): no expiry known."""
        shop = self._shops[alias]
        return Grant(alias, shop.access_token, shop.refresh_token, None, float(REFRESH_EXPIRE_AT))

    def refresh_grant(self, alias: str, refresh_token: str) -> Grant | None:
        grant = self._rotate(refresh_token)
        return grant if grant is None or grant.alias == alias else None

    def _token_data(self, shop: TikTokShopIdentity, access: str, refresh: str) -> dict[str, Any]:
        # the token response fields; both *_expire_in are ABSOLUTE Unix times [G1][OBS G3]
        return {"access_token": access, "access_token_expire_in": int(self._clock()) + ACCESS_TOKEN_TTL_S,
                "refresh_token": refresh, "refresh_token_expire_in": REFRESH_EXPIRE_AT,
                "open_id": f"sim-open-id-{shop.alias}", "seller_name": shop.shop_name,
                "seller_base_region": shop.region, "user_type": 0,
                "granted_scopes": ["seller.authorization.info", "seller.shop.info"]}


def _int(raw: str | None) -> int | None:
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        return None
    return int(raw)
