"""Temu Open Platform partner API, verified the way Temu verifies (fact sheet section 10).

Routes (one JSON router per region, as Temu has [J1 dg/11]; ``{region}`` is us, eu or global)::

    POST /temu/{region}/openapi/router     check router: the API is the body's ``type``; only
                                           bg.open.accesstoken.info.get is served [J1 ref/02]

POST with a JSON body only; common and business parameters together [J1 dg/11, dg/12]. The MD5
``sign`` is verified with the adapter's own ``temu_signing`` functions, before anything that needs
a valid request (a bad signature hides every other error [J1 sop-3000001]). Every answer is Temu's
envelope ``{"success", "errorCode", "errorMsg", "requestId", "result"}`` [J1 dg/15, ref/00].

The HTTP status of errors is UNCONFIRMED (the docs specify body codes only): the simulator answers
every envelope with HTTP 200, and a fault's ``value`` overrides it. Which error wins when several
apply, the region check and the CN-gateway code family are the simulator's choices, listed in
``docs/marketplaces/temu.md``.
"""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from marketplace_exporter.adapters.temu_signing import sign
from marketplace_exporter.simulator.accounts import SimAccounts
from marketplace_exporter.simulator.amazon import TokenBucket
from marketplace_exporter.simulator.ebay_wire import json_response
from marketplace_exporter.simulator.faults import RouteSpec
from marketplace_exporter.simulator.networks import source_allowed

NAME = "temu"
MOUNT = "/temu"
ROUTER = "router"
REGIONS = ("us", "eu", "global")
INFO_TYPE = "bg.open.accesstoken.info.get"  # [J1 ref/02]
TIMESTAMP_WINDOW_S = 300  # [J1 dg/12]
RATE_PER_SECOND = 20.0  # "the initial rate limit for each app_key is 20 requests per second" [J1 dg/14]
_DAY = 86400

# (errorCode, errorMsg) [J1 dg/15] unless marked
SUCCESS = (1000000, "SUCCESS")
SIGN_INVALID = (3000001, "SIGN_UNVALID")
TYPE_MISSING = (3000002, "type is required")
TYPE_UNKNOWN = (3000003, "type not exists")
TIMESTAMP_MISSING = (3000010, "timestamp is required")
TIMESTAMP_FUTURE = (3000011, "timestamp is greater than now + 300s")
TIMESTAMP_EXPIRED = (3000012, "timestamp expired")
DATA_TYPE_MISSING = (3000013, "data_type is required")
DATA_TYPE_INVALID = (3000014, "data_type is invalid")
APP_KEY_MISSING = (3000019, "app_key is required")
APP_KEY_UNKNOWN = (3000020, "app_key not exists")
TOKEN_MISSING = (3000030, "access_token is required")
TOKEN_UNKNOWN = (3000031, "access_token not exists")
TOKEN_NO_API = (3000032, "access_token has no permission to this type, please contact seller to "
                "authorize and share the new access_token")
TOKEN_APP_MISMATCH = (3000033, "access_token and app_key not mapping")
TOKEN_EXPIRED = (3000034, "access_token is expired or have been refreshed, please contact seller to share "
                 "the new access_token")
SIGN_MISSING = (3000040, "sign is required")
SYSTEM_ERROR = (4000000, "SYSTEM_EXCEPTION")
RATE_LIMITED = (4000004, "too frequent requests, exceeding rate limit.")  # [J1 dg/14, sop-4000004]
NOT_IN_ALLOW_LIST = (5000003, "NOT_IN_IP_WHITE_LIST")


@dataclass(frozen=True)
class TemuMall:
    """A mall (shop) that authorised an app. Simulator-only fake values."""

    alias: str
    mall_id: int
    region: str  # the router that knows its token
    region_id: int
    access_token: str
    #: days from the simulator's start until the token's ``expiredTime``
    expires_in_days: int
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class TemuApp:
    app_key: str
    app_secret: str
    #: source IPs declared in the app's security questionnaire [J1 dg/09]
    allowed_networks: tuple[str, ...]
    malls: tuple[TemuMall, ...]


_SCOPES = ("bg.open.accesstoken.info.get", "bg.order.list.v2.get", "bg.order.detail.v2.get",
           "bg.logistics.shipment.confirm", "bg.local.goods.list.query")
_LOOPBACK = ("127.0.0.0/8", "::1/128")
#: two apps: one whose declared IPs include loopback, one that allows only a documentation network
SIM_APPS: tuple[TemuApp, ...] = (
    TemuApp("sim0temu0app0key0000000000000001", "sim-temu-app-secret-0001", _LOOPBACK, (
        TemuMall("us-main", 634418210000001, "us", 211, "sim-temu-access-us-main", 240, _SCOPES),
        TemuMall("eu-main", 634418210000002, "eu", 76, "sim-temu-access-eu-main", 12, _SCOPES[:3]),
        # authorised without the Basic Management package: info.get answers 3000032
        TemuMall("mx-orders", 634418210000004, "global", 12, "sim-temu-access-mx-orders", 90, _SCOPES[1:3]),
    )),
    TemuApp("sim0temu0app0key0000000000000002", "sim-temu-app-secret-0002", ("203.0.113.0/24",), (
        TemuMall("ip-locked", 634418210000003, "us", 211, "sim-temu-access-ip-locked", 200, _SCOPES),
    )),
)


def request_id(region: str) -> str:
    """Region-prefixed, like ``us-0b0bfc9c-f61d-4530-b1a3-bb19704de637`` [J1 ref/00]."""
    return f"{region}-{uuid.uuid4()}"


def envelope(region: str, error: tuple[int, str], result: Any = None, status: int = 200) -> web.Response:
    code, message = error
    body = {"success": code == SUCCESS[0], "errorCode": code, "errorMsg": message,
            "requestId": request_id(region), "result": result}
    return json_response(status, body, {})


async def body_params(request: web.Request) -> Mapping[str, Any]:
    """The JSON object body; empty for anything else (aiohttp caches the body for the handler)."""
    try:
        data = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


class TemuSim:
    name = NAME
    checks = frozenset({ROUTER})
    #: Temu answers errors in 200 bodies (status UNCONFIRMED), so a 200 error is testable
    min_error_status = 200

    def __init__(self, accounts: SimAccounts, clock: Callable[[], float],
                 apps: tuple[TemuApp, ...] = SIM_APPS) -> None:
        self._clock = clock
        self._apps = {app.app_key: app for app in apps}
        self.aliases = frozenset(mall.alias for app in apps for mall in app.malls)
        started = int(clock())
        #: token → (app, mall, expiredTime): fixed at start, stable for the simulator's lifetime
        self.tokens = {mall.access_token: (app, mall, started + mall.expires_in_days * _DAY)
                       for app in apps for mall in app.malls}
        self.buckets: dict[str, TokenBucket] = {}

    def routes(self) -> list[RouteSpec]:
        return [("POST", f"{MOUNT}/{region}/openapi/router", ROUTER, self.handle) for region in REGIONS]

    def check_of(self, request: web.Request) -> str:
        raise AssertionError("every Temu route names its check")

    # --- the fault protocol ---------------------------------------------------------------------
    async def identify(self, request: web.Request, check: str) -> str | None:
        token = (await body_params(request)).get("access_token")
        known = self.tokens.get(token) if isinstance(token, str) else None
        return known[1].alias if known else None

    def extra_headers(self) -> dict[str, str]:
        return {}

    def error_response(self, request: web.Request, fault: str, status: int | None, check: str) -> web.Response:
        error, default = {"token_expired": (TOKEN_EXPIRED, 200), "permission_denied": (TOKEN_NO_API, 200),
                          "throttle": (RATE_LIMITED, 200)}.get(fault, (SYSTEM_ERROR, 500))
        return envelope(_region(request), error, None, status or default)

    def sample_body(self, check: str) -> bytes:
        app, mall, expires = next(iter(self.tokens.values()))
        body = {"success": True, "errorCode": SUCCESS[0], "errorMsg": SUCCESS[1], "requestId": request_id("us"),
                "result": self._info(app, mall, expires)}
        return json.dumps(body).encode()

    def huge_parts(self, check: str) -> tuple[bytes, bytes, bytes]:
        head = json.dumps({"success": True, "errorCode": SUCCESS[0], "requestId": request_id("us")})[:-1]
        return head.encode() + b', "result": {"apiScopeList": [', json.dumps(INFO_TYPE).encode(), b"]}}"

    # --- the router ---------------------------------------------------------------------------------
    async def handle(self, request: web.Request, check: str) -> web.Response:
        region = _region(request)
        params = await body_params(request)
        error = self._verify(request, params)
        if error is not None:
            return envelope(region, error)
        token = params.get("access_token")
        if not isinstance(token, str) or not token:
            return envelope(region, TOKEN_MISSING)
        known = self.tokens.get(token)
        if known is None or known[1].region != region:  # choice: a router knows its region's tokens
            return envelope(region, TOKEN_UNKNOWN)
        app, mall, expires = known
        if app.app_key != params.get("app_key"):
            return envelope(region, TOKEN_APP_MISMATCH)
        if self._clock() >= expires:
            return envelope(region, TOKEN_EXPIRED)
        if INFO_TYPE not in mall.scopes:  # the Basic Management packages grant it [J1 ref/02]
            return envelope(region, TOKEN_NO_API)
        bucket = self.buckets.setdefault(app.app_key, TokenBucket(RATE_PER_SECOND, RATE_PER_SECOND,
                                                                  RATE_PER_SECOND, self._clock()))
        if not bucket.take(self._clock()):  # per app_key, shared by every mall of the app [J1 dg/14]
            return envelope(region, RATE_LIMITED)
        return envelope(region, SUCCESS, self._info(app, mall, expires))

    def _verify(self, request: web.Request, params: Mapping[str, Any]) -> tuple[int, str] | None:
        """app_key, sign, timestamp, data_type, type, source IP: the request-level checks (order: choice,
        except that the sign comes before everything it protects [J1 sop-3000001])."""
        app_key = params.get("app_key")
        if not isinstance(app_key, str) or not app_key:
            return APP_KEY_MISSING
        app = self._apps.get(app_key)
        if app is None:
            return APP_KEY_UNKNOWN
        given = params.get("sign")
        if not isinstance(given, str) or not given:
            return SIGN_MISSING
        if not hmac.compare_digest(sign(app.app_secret, params).encode(), given.encode()):
            return SIGN_INVALID
        timestamp = params.get("timestamp")
        if isinstance(timestamp, str) and timestamp.isascii() and timestamp.isdigit():
            timestamp = int(timestamp)
        if isinstance(timestamp, bool) or not isinstance(timestamp, int):
            return TIMESTAMP_MISSING
        if timestamp > self._clock() + TIMESTAMP_WINDOW_S:
            return TIMESTAMP_FUTURE
        if timestamp < self._clock() - TIMESTAMP_WINDOW_S:
            return TIMESTAMP_EXPIRED
        if "data_type" not in params:  # "required" in the guide, "optional" per API: strict (choice)
            return DATA_TYPE_MISSING
        if params["data_type"] != "JSON":
            return DATA_TYPE_INVALID
        kind = params.get("type")
        if not isinstance(kind, str) or not kind:
            return TYPE_MISSING
        if kind != INFO_TYPE:
            return TYPE_UNKNOWN
        if not source_allowed(request.remote, app.allowed_networks):
            return NOT_IN_ALLOW_LIST
        return None

    @staticmethod
    def _info(app: TemuApp, mall: TemuMall, expires: int) -> dict[str, Any]:
        # bg.open.accesstoken.info.get result fields [J1 ref/02]; the values are the simulator's
        return {"accessToken": mall.access_token, "expiredTime": expires, "mallId": mall.mall_id,
                "regionId": mall.region_id, "mallType": "LOCAL" if mall.region == "us" else "CROSS_BORDER",
                "apiScopeList": list(mall.scopes), "appSubscribeEventCodeList": [], "appSubscribeStatus": 1,
                "authEventCodeList": [], "associatedMallTokenList": [],
                "semiUniqueId": f"sim-semi-{mall.mall_id}"}


def _region(request: web.Request) -> str:
    return request.path.removeprefix(MOUNT + "/").split("/", 1)[0]

