"""TikTok Shop Partner API (versioned 202309+): one signed call with the token production holds.

Facts and source tags (resolved in docs/marketplaces/sources.md: [G1] EcomPHP/tiktokshop-php,
[OBS G2]-[OBS G6] third-party observations). What shapes this adapter:

* Whether a refresh rotates the refresh token is UNCONFIRMED. The safe assumption is that it does,
  so the exporter never calls ``auth.tiktok-shops.com`` (not even when ``auth_url`` is configured):
  it reads the access token production holds (``access_token`` or ``token_file``; a token file may
  carry TikTok's own absolute ``access_token_expire_in``/``refresh_token_expire_in`` timestamps).
* The HTTP status of errors is UNCONFIRMED: the SDK disables HTTP exceptions and decides on the
  body's ``code`` [G1], so the body decides here too; the status only matters when the code does
  not say (throttling, server errors) or there is no envelope at all.
* Groups 105 and 360 (first three digits of ``code``) are auth/token errors [G1]; 105005 "you
  should apply auth pkg for this api" is a missing permission package [OBS G5].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from marketplace_exporter.adapters.base import Marketplace, NoParams, ProbeContext, ProbeSteps, json_or_none
from marketplace_exporter.adapters.common import by_status, pick_host
from marketplace_exporter.adapters.routes import host_of, routes
from marketplace_exporter.adapters.tiktok_shop_signing import sign
from marketplace_exporter.catalogue import Reason, Step
from marketplace_exporter.credentials import HeldTokenCredentials
from marketplace_exporter.model import HttpResponse, Operation, ProbeFailed, ProbeOutcome, RequestSpec
from marketplace_exporter.secrets import Secret

HOST = "https://open-api.tiktokglobalshop.com"  # [G1]
#: the legacy (2022) sandbox host [OBS G2]; the SDK says the sandbox no longer works since API
#: version 202309 [G1], so ``sandbox: true`` mostly tells you that
SANDBOX_HOST = "https://open-api-sandbox.tiktokglobalshop.com"
#: never called (refresh rotation UNCONFIRMED); named so docs and tests can say so
AUTH_HOST = "https://auth.tiktok-shops.com"
#: TikTok Shop regions as labels (one API host serves them all [G1]). The fact sheet gives no
#: list; these are the regions the shop records' ``region`` field is known to carry, kept
#: permissive on purpose because the site is only a label
SITES = frozenset({"US", "GB", "ID", "MY", "PH", "SG", "TH", "VN", "ES", "IE", "FR", "DE", "IT", "MX",
                   "BR", "JP"})

#: the codes the fact sheet names [OBS G5]; every other code is exported as ``other``
EXPIRED_TOKEN = 105002
MISSING_PERMISSION_PACKAGE = 105005
KNOWN_CODES = frozenset({str(EXPIRED_TOKEN), str(MISSING_PERMISSION_PACKAGE)})
#: first three digits of auth/token error codes [G1]
AUTH_GROUPS = frozenset({"105", "360"})
_MAX_CODE = 10**12
API_HOSTS = frozenset({host_of(HOST), host_of(SANDBOX_HOST), host_of(AUTH_HOST)})
#: production calls named in traffic labels (any API version: ``\d{6}``): the probes', the token
#: calls production makes, and the order-sync, product and fulfillment calls [G1]
ROUTES = routes(
    (r"/authorization/\d{6}/shops", "authorized_shops"),
    (r"/event/\d{6}/webhooks", "shop_webhooks"),
    ("/api/v2/token/get", "auth.token_get"),
    ("/api/v2/token/refresh", "auth.token_refresh"),
    (r"/order/\d{6}/orders/search", "order.search"),
    (r"/order/\d{6}/orders", "order.get_detail"),
    (r"/product/\d{6}/products/search", "product.search"),
    (r"/product/\d{6}/products/[^/]+", "product.get"),
    (r"/product/\d{6}/products/[^/]+/inventory/update", "product.inventory_update"),
    (r"/fulfillment/\d{6}/packages/[^/]+/ship", "fulfillment.ship_package"),
)

Text = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[\x21-\x7e]+$")]


class TikTokShopCredentials(HeldTokenCredentials):
    """The app's key and secret plus the seller's *current* access token, as production holds it.

    No refresh token, on purpose: whether TikTok rotates refresh tokens is UNCONFIRMED, so the
    exporter never refreshes. ``shop_cipher`` (from Get Authorized Shops, ``cipher``) is needed by
    shop-scoped operations only; ``authorized_shops`` reports whether it is still listed.
    """

    app_key: Text
    app_secret: Secret
    shop_cipher: Text | None = None


@dataclass(frozen=True)
class _Call:
    path: str
    #: shop-scoped: sends ``shop_cipher`` (omitted for /authorization/* and /seller/* [G1])
    shop_scoped: bool


_CALLS: Mapping[str, _Call] = {
    "authorized_shops": _Call("/authorization/202309/shops", shop_scoped=False),
    "shop_webhooks": _Call("/event/202309/webhooks", shop_scoped=True),
}


class TikTokShop(Marketplace[TikTokShopCredentials, NoParams]):
    """TikTok Shop health: Get Authorized Shops (no cipher), or a cheap shop-scoped read."""

    name = "tiktok_shop"
    Credentials = TikTokShopCredentials
    Params = NoParams
    sites = SITES
    operations = {
        # quotas UNCONFIRMED [G1]: no budget is modelled; only the interval limits us
        "authorized_shops": Operation(
            "authorized_shops", "GET /authorization/202309/shops (Get Authorized Shops)",
            limit_source="UNCONFIRMED", default_interval_seconds=300.0),
        "shop_webhooks": Operation(
            "shop_webhooks", "GET /event/202309/webhooks (Get Shop Webhooks; needs shop_cipher)",
            limit_source="UNCONFIRMED", default_interval_seconds=300.0),
    }
    known_codes = KNOWN_CODES
    hosts = API_HOSTS
    routes = ROUTES

    def steps(self, ctx: ProbeContext[TikTokShopCredentials, NoParams]) -> ProbeSteps:
        creds, call = ctx.credentials, _CALLS[ctx.operation]
        if call.shop_scoped and creds.shop_cipher is None:
            raise ProbeFailed(ProbeOutcome.failed(
                Reason.CLIENT_ERROR, f"{ctx.operation} needs credentials.shop_cipher (the shop's "
                "cipher from authorized_shops)"))
        response = yield build_request(ctx, call, creds.held_token().access_token)
        return read(response, ctx.now, ctx.operation, creds.shop_cipher)

    def judge(self, operation: str, response: HttpResponse, body: Mapping[str, Any] | None,
              now: float) -> ProbeOutcome | None:
        """The body's ``code`` decides, even under HTTP 200."""
        return judge(response, body, now)


def host(ctx: ProbeContext[TikTokShopCredentials, NoParams]) -> str:
    """``ctx.base_url`` verbatim (simulator, proxies), else the global or legacy sandbox host."""
    return pick_host(ctx, HOST, SANDBOX_HOST)


def build_request(ctx: ProbeContext[TikTokShopCredentials, NoParams], call: _Call, token: str) -> RequestSpec:
    """GET with app_key, timestamp (s) [, shop_cipher] and sign in the query; the token in
    ``x-tts-access-token`` [G1]. The signature covers the API path only, never a base-URL prefix."""
    creds = ctx.credentials
    query: list[tuple[str, str]] = [("app_key", creds.app_key), ("timestamp", str(int(ctx.now)))]
    if call.shop_scoped and creds.shop_cipher is not None:
        query.append(("shop_cipher", creds.shop_cipher))
    query.append(("sign", sign(creds.app_secret.reveal(), call.path, query)))
    return RequestSpec(
        method="GET", url=host(ctx) + call.path, query=tuple(query),
        # the SDK sends application/json on every call; a GET body is never signed [G1]
        headers=(("x-tts-access-token", token), ("content-type", "application/json"),
                 ("accept", "application/json")),
        step=Step.CALL, sensitive=frozenset({"x-tts-access-token", "sign", "access_token"}))


def code_reason(code: int) -> Reason:
    """A non-zero business code → reason: 105005 permission; groups 105/360 auth [G1][OBS G5];
    anything else is a rejection of our request (bad sign, bad parameter...)."""
    if code == MISSING_PERMISSION_PACKAGE:
        return Reason.PERMISSION
    if str(code)[:3] in AUTH_GROUPS:
        return Reason.AUTH
    return Reason.CLIENT_ERROR


def read(response: HttpResponse, now: float, operation: str = "authorized_shops",
         shop_cipher: str | None = None) -> ProbeOutcome:
    """The probe's reading: the body's ``code`` decides whatever the status (status on errors
    UNCONFIRMED [G1]), then the success payload."""
    body = json_or_none(response.body)
    failure = judge(response, body, now)
    if failure is not None:
        return failure
    assert body is not None
    return _success(body, response.status, operation, shop_cipher)


def judge(response: HttpResponse, body: Mapping[str, Any] | None, now: float) -> ProbeOutcome | None:
    """What any TikTok Shop answer means when it is a failure, or None for ``code`` 0 with a 2xx.
    Shared by probes and production traffic."""
    status = response.status
    code = _code(body)
    if body is None or code is None:
        return by_status(response, "no TikTok Shop envelope", now, every_status=False)
    if code == 0:
        if not 200 <= status <= 299:
            return by_status(response, "code 0 with a failing status", now, every_status=False)
        return None
    reason = code_reason(code)
    if reason is Reason.CLIENT_ERROR:
        # throttling and server failures carry codes the fact sheet does not name (UNCONFIRMED):
        # the status says what they are (HTTP 429 per third-party notes)
        if status == 429:
            reason = Reason.THROTTLED
        elif 500 <= status <= 599:
            reason = Reason.SERVER_ERROR
    label = str(code)
    message = body.get("message")
    text = message if isinstance(message, str) else ""
    return ProbeOutcome.failed(reason, f"{label}: {text}" if text else label, code=label, http_status=status)


def _code(body: Mapping[str, Any] | None) -> int | None:
    """``code`` as an int, only if it is one (booleans, strings, floats and huge numbers are not)."""
    code = body.get("code") if body is not None else None
    if isinstance(code, bool) or not isinstance(code, int) or abs(code) > _MAX_CODE:
        return None
    return code


def _success(body: Mapping[str, Any], status: int, operation: str, shop_cipher: str | None) -> ProbeOutcome:
    """Get Authorized Shops answers ``data.shops[]`` with a ``cipher`` each [G1][OBS G6]; other
    reads only need ``data`` to be an object."""
    data = body.get("data")
    if not isinstance(data, dict):
        return ProbeOutcome.failed(Reason.INVALID_RESPONSE, "code 0 without a data object", http_status=status)
    if operation != "authorized_shops":
        webhooks = data.get("webhooks")
        count = f"{len(webhooks)} webhooks" if isinstance(webhooks, list) else "shop data returned"
        return ProbeOutcome.ok(status, message=count)
    shops = data.get("shops")
    if not isinstance(shops, list):
        return ProbeOutcome.failed(Reason.INVALID_RESPONSE, "data.shops is not a list", http_status=status)
    message = f"{len(shops)} authorized shops"
    values: tuple[tuple[str, float], ...] = ()
    if shop_cipher is not None:
        # exported, not judged: a shop that left the authorization is an alerting decision
        listed = any(isinstance(shop, dict) and shop.get("cipher") == shop_cipher for shop in shops)
        message += "; configured shop_cipher " + ("listed" if listed else "NOT listed")
        values = (("shop_cipher_listed", 1.0 if listed else 0.0),)
    return ProbeOutcome.ok(status, message=message, values=values)
