"""Shopee Open Platform v2: one signed call with the access token production already holds.

Facts and source tags: ``docs/marketplaces/shopee.md`` and ``docs/marketplaces/sources.md`` ([C1]
API-calls guide, [C2] authorization guide, [C3] official API doc records, [C4] SDK). Two facts shape
this adapter:

* Shopee refresh tokens are single-use and rotate on every refresh [C3]. A monitor that refreshed
  would invalidate the token production holds, so this adapter never calls the refresh endpoint and
  has no refresh-token field at all: it reads the access token production keeps (``{file: P}``
  re-reads a file the seller's ERP rewrites).
* The HTTP status of error responses is UNCONFIRMED (the SDKs decide on the body ``error`` field
  [C4][C6]), so the body decides whatever the status; the status only matters when there is no
  Shopee envelope at all.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from marketplace_exporter.adapters.base import Marketplace, NoParams, ProbeContext, ProbeSteps, json_or_none
from marketplace_exporter.adapters.common import by_status, finite_number, pick_host, short
from marketplace_exporter.adapters.routes import host_of, routes
from marketplace_exporter.catalogue import Credential, Reason, Step
from marketplace_exporter.credentials import HeldTokenCredentials
from marketplace_exporter.model import (
    CredentialObservation,
    HttpResponse,
    Operation,
    ProbeOutcome,
    RequestSpec,
)
from marketplace_exporter.secrets import Secret

#: production host for servers near Singapore / global [C1]; the CN and BR hosts
#: (https://openplatform.shopee.cn, https://openplatform.shopee.com.br) are chosen with base_url
HOST = "https://partner.shopeemobile.com"
SANDBOX_HOST = "https://openplatform.sandbox.test-stable.shopee.sg"  # [C1][C2]
#: Shopee markets (region codes of shop records [C3][C4]); the site is a label, not a host
SITES = frozenset({"SG", "MY", "TH", "TW", "ID", "VN", "PH", "BR", "MX", "CO", "CL"})

PositiveInt = Annotated[int, Field(gt=0, strict=True)]
#: every host a seller's system may call (production SG/global, CN, BR, sandbox) [C1][C2]
API_HOSTS = frozenset({host_of(HOST), host_of(SANDBOX_HOST), "openplatform.shopee.cn",
                       "openplatform.shopee.com.br", "partner.test-stable.shopeemobile.com",
                       "openplatform.test-stable.shopee.cn"})  # the SDK's CN test host [C4]
#: production calls named in traffic labels: the probes' own, plus the order-sync and token calls
#: an ERP makes most ([C3] API reference paths). Anything else on a Shopee host is ``other``.
ROUTES = routes(
    ("/api/v2/shop/get_shop_info", "get_shop_info"),
    ("/api/v2/public/get_shops_by_partner", "get_shops_by_partner"),
    ("/api/v2/auth/token/get", "auth.token_get"),
    ("/api/v2/auth/access_token/get", "auth.access_token_get"),
    ("/api/v2/order/get_order_list", "order.get_order_list"),
    ("/api/v2/order/get_order_detail", "order.get_order_detail"),
    ("/api/v2/order/get_shipment_list", "order.get_shipment_list"),
    ("/api/v2/logistics/ship_order", "logistics.ship_order"),
    ("/api/v2/logistics/get_tracking_number", "logistics.get_tracking_number"),
    ("/api/v2/product/get_item_list", "product.get_item_list"),
    ("/api/v2/product/get_item_base_info", "product.get_item_base_info"),
    ("/api/v2/product/update_stock", "product.update_stock"),
    ("/api/v2/product/update_price", "product.update_price"),
)


def base_string(partner_id: int | str, path: str, timestamp: int | str,
                access_token: str | None = None, shop_id: int | str | None = None) -> str:
    """What Shopee signs: partner_id + path + timestamp [+ access_token + shop_id], no separators [C1].

    ``path`` is the API path only (``/api/v2/shop/get_shop_info``), never a base-URL prefix. For
    merchant APIs pass the merchant_id as ``shop_id`` (same position in the string [C1]).
    """
    if (access_token is None) != (shop_id is None):
        raise ValueError("shop APIs sign access_token and shop_id together; public APIs sign neither")
    if not path.startswith("/api/"):
        raise ValueError("path must be the API path, starting with /api/")
    base = f"{partner_id}{path}{timestamp}"
    return base if access_token is None else f"{base}{access_token}{shop_id}"


def hmac_sha256_hex(key: str, message: str) -> str:
    """HMAC-SHA256, hex lowercase [C1]."""
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def sign(partner_key: str, partner_id: int | str, path: str, timestamp: int | str,
         access_token: str | None = None, shop_id: int | str | None = None) -> str:
    """The ``sign`` query parameter: HMAC-SHA256(partner_key, base_string(...))."""
    return hmac_sha256_hex(partner_key, base_string(partner_id, path, timestamp, access_token, shop_id))


class ShopeeCredentials(HeldTokenCredentials):
    """Partner credentials plus the shop's *current* access token, as production holds it.

    No refresh token, on purpose: Shopee refresh tokens are single-use and every refresh returns a
    new one [C3]; if the monitor refreshed, production's refresh token would stop working. Give
    ``access_token`` (``{file: /run/erp/shopee_token}`` is re-read when production rewrites it) or
    ``token_file`` (JSON/YAML with the token and its expiry dates, see credentials.py).
    ``access_token_expires_at`` is optional, for when production records the expiry (4 h [C2]).
    """

    partner_id: PositiveInt
    partner_key: Secret
    shop_id: PositiveInt


@dataclass(frozen=True)
class _Call:
    path: str
    shop_api: bool
    query: tuple[tuple[str, str], ...] = ()


_CALLS: Mapping[str, _Call] = {
    "get_shop_info": _Call("/api/v2/shop/get_shop_info", shop_api=True),
    # one page of up to 100 shops [C7]; our shop's expiry is read if it is on that page
    "get_shops_by_partner": _Call("/api/v2/public/get_shops_by_partner", shop_api=False,
                                  query=(("page_size", "100"), ("page_no", "1"))),
}

# error codes → reason [C3]. Everything not listed (and every non-empty unknown code) is CLIENT_ERROR.
_AUTH_CODES = frozenset({
    "invalid_acceess_token",  # sic, double c [C3]
    "invalid_access_token",  # not in the docs: the correct spelling, in case Shopee fixes the typo
    "error_partner_key_expired", "shop_access_expired",
    # refresh/code errors: never expected (we do not refresh), but they mean "credential dead"
    "refresh_token_expired", "error_shop_refresh_token", "invalid_code",
    # get_shop_info's official common_error_list [C3]: the partner-shop authorization is gone, so
    # the seller must authorize again ("Partner and shop has no linked.", "Invalid partner_id or
    # shop_id…", an unknown partner id)
    "shop_no_linked", "partner_shop_no_link", "invalid_partner_id",
})
_PERMISSION_CODES = frozenset({"error_api_permission", "error_api_call_restricted", "error_kyc_auth",
                               "source_ip_undeclared", "shop_banned",
                               "error_ashop_api_permission"})  # [C3] common_error_list
_THROTTLED_CODES = frozenset({"error_rate_limit", "error_limit"})
_SERVER_CODES = frozenset({"error_server", "error_network"})
_CLIENT_CODES = frozenset({"error_sign", "error_param", "api_suspended",
                           # from the get_shop_info doc record's error_list [C3], not the fact sheet
                           "error_data", "error_shop", "error_not_exists"})
#: one lookup on the traffic hot path (the sets are disjoint)
_CODE_REASONS: Mapping[str, Reason] = {
    code: reason for codes, reason in ((_AUTH_CODES, Reason.AUTH), (_PERMISSION_CODES, Reason.PERMISSION),
                                       (_THROTTLED_CODES, Reason.THROTTLED), (_SERVER_CODES, Reason.SERVER_ERROR))
    for code in codes}
KNOWN_CODES = (_AUTH_CODES | _PERMISSION_CODES | _THROTTLED_CODES | _SERVER_CODES | _CLIENT_CODES
               | {"error_auth"})
_UTC8 = 8 * 3600
_MAX_UNIX_SECONDS = 1e11


class Shopee(Marketplace[ShopeeCredentials, NoParams]):
    """Shopee v2 health: a signed shop call (get_shop_info) or a public one (get_shops_by_partner)."""

    name = "shopee"
    Credentials = ShopeeCredentials
    Params = NoParams
    sites = SITES
    operations = {
        # numeric quotas are UNCONFIRMED [C3]: no budget is modelled; only the interval limits us
        "get_shop_info": Operation("get_shop_info", "GET /api/v2/shop/get_shop_info (shop API)",
                                   limit_source="UNCONFIRMED", default_interval_seconds=120.0),
        "get_shops_by_partner": Operation("get_shops_by_partner",
                                          "GET /api/v2/public/get_shops_by_partner (public API)",
                                          limit_source="UNCONFIRMED", default_interval_seconds=300.0),
    }
    known_codes = frozenset(KNOWN_CODES)
    hosts = API_HOSTS
    routes = ROUTES

    def steps(self, ctx: ProbeContext[ShopeeCredentials, NoParams]) -> ProbeSteps:
        # the held token is read even for public calls: its expiry dates are exported (deadlines)
        token = ctx.credentials.held_token().access_token
        response = yield build_request(ctx, _CALLS[ctx.operation], token)
        return read(response, ctx.now, ctx.credentials.shop_id)

    def judge(self, operation: str, response: HttpResponse, body: Mapping[str, Any] | None,
              now: float) -> ProbeOutcome | None:
        """The body's ``error`` decides, even under HTTP 200 (Shopee's usual way of failing)."""
        return judge(response, body, now)


def host(ctx: ProbeContext[ShopeeCredentials, NoParams]) -> str:
    """``ctx.base_url`` verbatim (simulator, CN/BR hosts), else the SG/global or sandbox host."""
    return pick_host(ctx, HOST, SANDBOX_HOST)


def build_request(ctx: ProbeContext[ShopeeCredentials, NoParams], call: _Call, token: str) -> RequestSpec:
    """GET with every parameter in the query [C1]; the signature covers the API path only."""
    creds = ctx.credentials
    timestamp = int(ctx.now)  # valid 5 minutes [C1]
    partner_key = creds.partner_key.reveal()
    query: list[tuple[str, str]] = [("partner_id", str(creds.partner_id)), ("timestamp", str(timestamp))]
    if call.shop_api:
        signature = sign(partner_key, creds.partner_id, call.path, timestamp, token, creds.shop_id)
        query += [("access_token", token), ("shop_id", str(creds.shop_id))]
    else:
        signature = sign(partner_key, creds.partner_id, call.path, timestamp)
    query += [("sign", signature), *call.query]
    return RequestSpec(method="GET", url=host(ctx) + call.path, query=tuple(query),
                       headers=(("accept", "application/json"),), step=Step.CALL,
                       sensitive=frozenset({"access_token", "sign"}))


def read(response: HttpResponse, now: float, shop_id: int) -> ProbeOutcome:
    """The probe's reading: the body's ``error`` decides whatever the HTTP status (status on errors
    UNCONFIRMED), then the success payload."""
    body = json_or_none(response.body)
    failure = judge(response, body, now)
    if failure is not None:
        return failure
    assert body is not None
    return _success(body, response.status, shop_id)


def judge(response: HttpResponse, body: Mapping[str, Any] | None, now: float) -> ProbeOutcome | None:
    """What any Shopee answer means when it is a failure, or None when its envelope says success
    (``error`` empty with a 2xx). Shared by probes and production traffic."""
    status = response.status
    error = body.get("error") if body is not None else None
    if body is None or not isinstance(error, str) or (error == "" and not 200 <= status <= 299):
        return by_status(response, "no Shopee envelope" if error != "" else "empty error field", now,
                         every_status=False)
    if error == "":
        return None
    text = body.get("message")
    text = text if isinstance(text, str) else ""
    reason = error_reason(error, text)
    code = short(error, 64)
    # "try again after 00:00 (UTC+08:00)" [C3]; other throttles: Retry-After (headers UNCONFIRMED)
    retry = _until_midnight_utc8(now) if error == "error_limit" else None
    return ProbeOutcome.failed(reason, f"{code}: {text}" if text else code, code=code, http_status=status,
                               retry_after_seconds=retry)


def error_reason(error: str, message: str) -> Reason:
    """Shopee error code (+ message, for the overloaded ``error_auth``) → reason [C3]."""
    if error == "error_auth":
        # "Invalid access_token." / "Invalid partner_id or shopid." are auth; "No permission to
        # current api." is permission; "System error, please try again later." is Shopee's own
        # failure [C3]. Unknown texts count as auth: the code says so.
        lowered = message.lower()
        if "system error" in lowered:
            return Reason.SERVER_ERROR
        return Reason.PERMISSION if "permission" in lowered else Reason.AUTH
    return _CODE_REASONS.get(error, Reason.CLIENT_ERROR)


def _success(body: Mapping[str, Any], status: int, shop_id: int) -> ProbeOutcome:
    """get_shop_info answers at the top level (``expire_time``, ``status``) [C3]; the shop list of
    get_shops_by_partner is ``authed_shop_list`` [C7]. ``response`` is checked too, in case."""
    nested = body.get("response")
    fields = {**nested, **body} if isinstance(nested, dict) else body
    shops = fields.get("authed_shop_list")
    if "authed_shop_list" in fields:
        if not isinstance(shops, list):
            return ProbeOutcome.failed(Reason.INVALID_RESPONSE, "authed_shop_list is not a list",
                                       http_status=status)
        ours = next((s for s in shops if isinstance(s, dict) and _same_id(s.get("shop_id"), shop_id)), None)
        expiry = _unix_seconds(ours.get("expire_time")) if ours is not None else None
        found = "listed" if ours is not None else "not on the first page"
        return ProbeOutcome.ok(status, message=f"{len(shops)} authorised shops; this shop {found}",
                               credentials=_authorization(expiry))
    expiry = _unix_seconds(fields.get("expire_time"))
    shop_status = fields.get("status")
    values: tuple[tuple[str, float], ...] = ()
    message = "shop info returned"
    if isinstance(shop_status, str):
        # NORMAL / BANNED / FROZEN [C3]: exported, not judged; the call itself worked
        values = (("shop_status_normal", 1.0 if shop_status == "NORMAL" else 0.0),)
        message = short(f"shop status {shop_status}", 60)
    return ProbeOutcome.ok(status, message=message, values=values, credentials=_authorization(expiry))


def _authorization(expiry: float | None) -> tuple[CredentialObservation, ...]:
    return (CredentialObservation(Credential.AUTHORIZATION, expiry),) if expiry is not None else ()


def _unix_seconds(value: object) -> float | None:
    seconds = finite_number(value)
    return seconds if seconds is not None and 0 < seconds < _MAX_UNIX_SECONDS else None


def _until_midnight_utc8(now: float) -> float:
    local = now + _UTC8
    return (local // 86400 + 1) * 86400 - local


def _same_id(value: object, shop_id: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value == shop_id
