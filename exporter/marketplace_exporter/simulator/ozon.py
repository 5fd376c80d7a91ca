"""Ozon Seller API, as the fact sheet describes it (section 11; docs/marketplaces/ozon.md).

Routes (mounted under ``/ozon``; the real host is ``https://api-seller.ozon.ru`` [K1])::

    POST /ozon/v1/roles          check roles: the key's ``expires_at`` and its roles/methods [K1]
    POST /ozon/v1/seller/info    check seller_info: company, ratings, subscription [K1]

Every call carries ``Client-Id`` and ``Api-Key`` headers; no signing, no token exchange [K1].
Errors are ``rpcStatus {code, message, details[]}`` [K1][SDK K3] with Ozon's documented texts [K1].
A key expires 6 months after it is made [K1]; the simulator's keys expire on fixed days from its
start. The HTTP status and numeric ``code`` of the invalid / deactivated / role / IP errors are
UNCONFIRMED: the simulator's choices (gRPC-like 16 and 7 with 401 and 403, as the observed
missing-header answer is 401 code 16 [SDK K3]) are marked "choice" and listed in the docs page.
There is no refresh and nothing to rotate: a key is a key [K1].
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from marketplace_exporter.simulator.accounts import SimAccounts
from marketplace_exporter.simulator.amazon import TokenBucket
from marketplace_exporter.simulator.ebay_wire import json_response
from marketplace_exporter.simulator.faults import RouteSpec
from marketplace_exporter.simulator.networks import source_allowed

NAME = "ozon"
MOUNT = "/ozon"
ROLES, SELLER_INFO = "roles", "seller_info"
API_PATHS = {ROLES: "/v1/roles", SELLER_INFO: "/v1/seller/info"}
RATE_PER_SECOND = 50.0  # per Client-Id across all methods [K1]
_DAY = 86400

# (code, message, HTTP status). Texts [K1] unless marked; statuses and codes: see the docstring
MISSING_HEADERS = (16, "Client-Id and Api-Key headers are required", 401)  # [SDK K3] fixture
INVALID_KEY = (16, "Invalid Api-Key, please check the key and try again", 401)  # text [K1]; 401/16 choice
DEACTIVATED = (16, "Api-key is deactivated, use another one or generate a new one", 401)  # text [K1]
MISSING_ROLE = (7, "Api-Key is missing a required role for a method", 403)  # text [K1]; 403/7 choice
IP_RESTRICTED = (7, "Api-Key is restricted to specific IP addresses", 403)  # text [K1]; 403/7 choice
RATE_LIMITED = (8, "You have reached request rate limit per second", 429)  # text [K1]; 429/8 [OBS K6]
BAD_PAYLOAD = (3, "invalid request payload", 400)  # choice (text and code)
INTERNAL = (13, "Internal error", 500)  # text [K1]; 500/13 choice


@dataclass(frozen=True)
class OzonSeller:
    """A seller's Seller API key. Simulator-only fake values."""

    alias: str
    client_id: str
    api_key: str
    company: str
    #: days from the simulator's start until the key's ``expires_at``
    key_expires_in_days: int
    roles: tuple[tuple[str, tuple[str, ...]], ...]
    #: the key's optional "allowed networks" [K1]; empty = any source
    allowed_networks: tuple[str, ...] = ()

    def methods(self) -> frozenset[str]:
        return frozenset(method for _, methods in self.roles for method in methods)


_ADMIN = ("Admin", ("/v1/roles", "/v1/seller/info", "/v3/product/list", "/v3/posting/fbs/list",
                    "/v2/products/stocks", "/v1/product/import/prices"))
_FBS = ("Posting FBS", ("/v1/roles", "/v3/posting/fbs/list", "/v3/posting/fbs/get"))
SIM_SELLERS: tuple[OzonSeller, ...] = (
    OzonSeller("ru-main", "1836412", "sim-ozon-api-key-ru-main-0000000000000001", "ООО «Сим Аутфиттерс»",
               150, (_ADMIN,)),
    OzonSeller("cn-main", "1915733", "sim-ozon-api-key-cn-main-0000000000000002", "Sim Trading (Shenzhen) Co.",
               11, (_FBS,)),
    OzonSeller("ip-locked", "1926001", "sim-ozon-api-key-ip-locked-00000000000003", "Sim Locked LLC",
               170, (_ADMIN,), allowed_networks=("203.0.113.0/24",)),
)


def ozon_error(error: tuple[int, str, int], status: int | None = None) -> web.Response:
    code, message, default = error
    return json_response(status or default, {"code": code, "message": message, "details": []}, {})


def iso(when: float) -> str:
    """``expires_at`` as the spec's example renders it: ``2026-02-18T09:54:23.296Z`` [K1]."""
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class OzonSim:
    name = NAME
    checks = frozenset(API_PATHS)
    min_error_status = 400  # Ozon answers errors with HTTP error statuses [K1]

    def __init__(self, accounts: SimAccounts, clock: Callable[[], float],
                 sellers: tuple[OzonSeller, ...] = SIM_SELLERS) -> None:
        self._clock = clock
        self.sellers = {seller.alias: seller for seller in sellers}
        self.aliases = frozenset(self.sellers)
        self._by_client = {seller.client_id: seller for seller in sellers}
        started = clock()
        #: expiry fixed at start (with a millisecond part, as Ozon's example has): stable for the run
        self.expires_at = {seller.alias: started + seller.key_expires_in_days * _DAY + 0.296
                           for seller in sellers}
        self.buckets: dict[str, TokenBucket] = {}

    def routes(self) -> list[RouteSpec]:
        return [("POST", MOUNT + path, check, self.handle) for check, path in API_PATHS.items()]

    def check_of(self, request: web.Request) -> str:
        raise AssertionError("every Ozon route names its check")

    # --- the fault protocol ---------------------------------------------------------------------
    async def identify(self, request: web.Request, check: str) -> str | None:
        seller = self._by_client.get(request.headers.get("Client-Id", ""))
        return seller.alias if seller else None

    def extra_headers(self) -> dict[str, str]:
        return {}

    def error_response(self, request: web.Request, fault: str, status: int | None, check: str) -> web.Response:
        error = {"token_expired": DEACTIVATED, "permission_denied": MISSING_ROLE,
                 "throttle": RATE_LIMITED}.get(fault)
        if error is None:
            error = INTERNAL if (status or 500) >= 500 else BAD_PAYLOAD
        return ozon_error(error, status)

    def sample_body(self, check: str) -> bytes:
        seller = next(iter(self.sellers.values()))
        body = self._seller_info(seller) if check == SELLER_INFO else self._roles(seller)
        return json.dumps(body, ensure_ascii=False).encode()

    def huge_parts(self, check: str) -> tuple[bytes, bytes, bytes]:
        seller = next(iter(self.sellers.values()))
        head = json.dumps({"expires_at": iso(self.expires_at[seller.alias])})[:-1]
        item = json.dumps({"name": "Admin", "methods": ["/v1/roles"]}).encode()
        return head.encode() + b', "roles": [', item, b"]}"

    # --- the API ----------------------------------------------------------------------------------
    async def handle(self, request: web.Request, check: str) -> web.Response:
        client_id, api_key = request.headers.get("Client-Id", ""), request.headers.get("Api-Key", "")
        if not client_id or not api_key:
            return ozon_error(MISSING_HEADERS)
        seller = self._by_client.get(client_id)
        if seller is None or not hmac.compare_digest(seller.api_key.encode(), api_key.encode()):
            return ozon_error(INVALID_KEY)
        now = self._clock()
        if now >= self.expires_at[seller.alias]:  # choice: an expired key answers as deactivated
            return ozon_error(DEACTIVATED)
        if seller.allowed_networks and not source_allowed(request.remote, seller.allowed_networks):
            return ozon_error(IP_RESTRICTED)
        bucket = self.buckets.setdefault(seller.client_id, TokenBucket(RATE_PER_SECOND, RATE_PER_SECOND,
                                                                       RATE_PER_SECOND, now))
        if not bucket.take(now):
            return ozon_error(RATE_LIMITED)
        if API_PATHS[check] not in seller.methods():
            return ozon_error(MISSING_ROLE)
        raw = await request.read()
        try:
            payload = json.loads(raw) if raw.strip() else {}  # choice: an empty body counts as {}
        except (ValueError, UnicodeDecodeError, RecursionError):
            payload = None
        if not isinstance(payload, dict):
            return ozon_error(BAD_PAYLOAD)
        body = self._roles(seller) if check == ROLES else self._seller_info(seller)
        return json_response(200, body, {})

    def _roles(self, seller: OzonSeller) -> dict[str, Any]:
        # AccessAPI_RolesByToken: {expires_at (date-time), roles[{name, methods[]}]} [K1]
        return {"expires_at": iso(self.expires_at[seller.alias]),
                "roles": [{"name": name, "methods": list(methods)} for name, methods in seller.roles]}

    @staticmethod
    def _seller_info(seller: OzonSeller) -> dict[str, Any]:
        # SellerAPI_SellerInfo: company, ratings[] (status OK/WARNING/CRITICAL), subscription [K1];
        # a subset, with the simulator's values
        return {"company": {"name": seller.company, "country": "RU" if seller.alias.startswith("ru") else "CN",
                            "currency": "RUB" if seller.alias.startswith("ru") else "CNY",
                            "ownership_form": "LLC", "tax_system": "USN"},
                "ratings": [{"name": "Rating", "rating": "rating_on_time", "status": "OK",
                             "current_value": {"value": 98.5}, "past_value": {"value": 97.9}}],
                "subscription": {"is_premium": False, "type": "STANDARD"}}

