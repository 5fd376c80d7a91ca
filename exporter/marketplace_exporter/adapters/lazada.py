"""Lazada Open Platform (Lazop): one signed ``GET /seller/get`` on the site's own gateway, with the
access token production already holds.

Facts and source tags (resolved in docs/marketplaces/sources.md: [D1] official Python SDK
mirror, [D2] JS SDK, [D5] calling parameters, [D6] quoted token responses, [D7] lifetimes). Three
facts shape this adapter:

* Whether ``/auth/token/refresh`` rotates the refresh token is UNCONFIRMED [D2][D6]. Until proven
  otherwise it is treated as rotating: the exporter never calls the auth host
  (``https://auth.lazada.com/rest``) and has no refresh-token field; it reads the token production
  holds (:class:`~marketplace_exporter.credentials.HeldTokenCredentials`). ``ctx.auth_url`` is
  therefore never used.
* Every call is signed (IOP, :mod:`.iop_signing`), path prefixed, timestamp in milliseconds and
  within 7200 s of UTC [D5]: the exporter host needs a correct clock.
* The HTTP status of error answers is UNCONFIRMED (the SDKs read the body ``code`` [D1][D2]): the
  body decides whatever the status (:mod:`.iop_errors`).

Token lifetimes (test app 7 d / 14 d, online app 30 d / 180 d [D7]) depend on the app's status and
on per-category policies [D8], so no lifetime is assumed: expiry series come only from the
configured dates (``token_file`` or ``access_token_expires_at``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from marketplace_exporter.adapters.base import Marketplace, NoParams, ProbeContext, ProbeSteps, json_or_none
from marketplace_exporter.adapters.common import by_status
from marketplace_exporter.adapters.iop_errors import IOP_CODES, code_text, is_zero, judge_iop_error, text_field
from marketplace_exporter.adapters.iop_errors import retry_after as iop_retry_after
from marketplace_exporter.adapters.iop_signing import SIGN_METHOD, sign, timestamp_ms
from marketplace_exporter.adapters.routes import RouteMatch, host_of, match_path, routes
from marketplace_exporter.catalogue import Reason, Step
from marketplace_exporter.credentials import HeldTokenCredentials
from marketplace_exporter.model import HttpResponse, Operation, ProbeFailed, ProbeOutcome, RequestSpec
from marketplace_exporter.secrets import Secret

#: one gateway per country [D1][D2]; the site picks it
GATEWAYS: Mapping[str, str] = {
    "SG": "https://api.lazada.sg/rest",
    "MY": "https://api.lazada.com.my/rest",
    "VN": "https://api.lazada.vn/rest",
    "TH": "https://api.lazada.co.th/rest",
    "PH": "https://api.lazada.com.ph/rest",
    "ID": "https://api.lazada.co.id/rest",
}
#: token create/refresh for every country [D1][D3]: documented here, never called (see above)
AUTH_HOST = "https://auth.lazada.com/rest"
#: Lazada app keys are short identifiers; no whitespace, nothing a URL would mangle
AppKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]

#: operation → API path (the signed path, never a base-URL prefix)
_CALLS: Mapping[str, str] = {"seller_get": "/seller/get"}
KNOWN_CODES = frozenset(IOP_CODES)
#: gateway host → site: the host alone tells a production call's country [D1][D2]
HOST_SITES: Mapping[str, str] = {host_of(url): site for site, url in GATEWAYS.items()}
#: production calls named in traffic labels: the probe's, the token calls production makes on the
#: auth host, and the order-sync and stock calls of the API reference; anything else is ``other``
ROUTES = routes(
    ("/seller/get", "seller_get"),
    ("/auth/token/create", "auth.token_create"),
    ("/auth/token/refresh", "auth.token_refresh"),
    ("/orders/get", "orders.get"),
    ("/order/get", "order.get"),
    ("/order/items/get", "order.items_get"),
    ("/orders/items/get", "orders.items_get"),
    ("/order/rts", "order.rts"),
    ("/products/get", "products.get"),
    ("/product/item/get", "product.item_get"),
    ("/product/price_quantity/update", "product.price_quantity_update"),
)


class LazadaCredentials(HeldTokenCredentials):
    """App credentials plus the seller's *current* access token, as production holds it.

    No refresh token, on purpose: whether Lazada's refresh rotates is UNCONFIRMED, so a refresh by
    the monitor could break production's token chain. Give ``access_token`` (``{file: PATH}`` is
    re-read when production rewrites it) or ``token_file`` (JSON/YAML with the token and its expiry
    dates; your ERP computes them from ``expires_in``/``refresh_expires_in`` [D2]).
    """

    app_key: AppKey
    app_secret: Secret


class Lazada(Marketplace[LazadaCredentials, NoParams]):
    """Lazada health: the seller profile (``/seller/get``) on the site's country gateway."""

    name = "lazada"
    Credentials = LazadaCredentials
    Params = NoParams
    sites = frozenset(GATEWAYS)
    operations = {
        # per-API quota UNCONFIRMED [OBS D12]; only daily app caps are documented (10 000/day in test
        # status, 10 M/day online [D7]), so no budget is modelled: a 5-minute interval is 288 calls/day
        "seller_get": Operation("seller_get", "GET /seller/get (seller profile, seller API)",
                                limit_source="UNCONFIRMED", default_interval_seconds=300.0),
    }
    known_codes = KNOWN_CODES
    hosts = frozenset(HOST_SITES) | {host_of(AUTH_HOST)}
    routes = ROUTES

    def match(self, host: str | None, path: str, query: str = "") -> RouteMatch | None:
        """The country gateway's host tells the site of a production call."""
        if host is None or host == host_of(AUTH_HOST):
            return match_path(ROUTES, path)
        site = HOST_SITES.get(host)
        return None if site is None else match_path(ROUTES, path, site)

    def steps(self, ctx: ProbeContext[LazadaCredentials, NoParams]) -> ProbeSteps:
        creds = ctx.credentials
        base = gateway(ctx)
        if base is None:
            raise ProbeFailed(ProbeOutcome.failed(Reason.INTERNAL, f"lazada: no gateway for site {ctx.site!r}"))
        response = yield build_request(base, _CALLS[ctx.operation], creds.app_key, creds.app_secret.reveal(),
                                       creds.held_token().access_token, ctx.now)
        return read(response, ctx.now)

    def retry_after(self, response: HttpResponse, outcome: ProbeOutcome, now: float) -> float | None:
        return iop_retry_after(response, outcome, now)

    def judge(self, operation: str, response: HttpResponse, body: Mapping[str, Any] | None,
              now: float) -> ProbeOutcome | None:
        """The body's ``code`` decides, even under HTTP 200 (the IOP envelope)."""
        return judge(response, body, now)


def gateway(ctx: ProbeContext[LazadaCredentials, NoParams]) -> str | None:
    """``ctx.base_url`` verbatim (simulator, a test host), else the site's country gateway.

    ``sandbox`` changes nothing: Lazada has no separate sandbox host (the SDK's
    ``api.lazada.test`` is UNCONFIRMED [D4]); a new app in *test status* calls the same
    gateways with lower caps [D7]."""
    if ctx.base_url:
        return ctx.base_url.rstrip("/")
    return GATEWAYS.get(ctx.site.upper())


def build_request(base: str, path: str, app_key: str, app_secret: str, token: str,
                  now: float) -> RequestSpec:
    """GET with every parameter in the query; the signature covers the API path and every system
    parameter [D5]. The Python SDK's extra ``partner_id`` (its own version) is not sent."""
    params = {"app_key": app_key, "timestamp": timestamp_ms(now), "sign_method": SIGN_METHOD,
              "access_token": token}
    query = (*params.items(), ("sign", sign(app_secret, params, path)))
    return RequestSpec(method="GET", url=base + path, query=query,
                       headers=(("accept", "application/json"),), step=Step.CALL,
                       sensitive=frozenset({"access_token", "sign"}))


def read(response: HttpResponse, now: float) -> ProbeOutcome:
    """The probe's reading: the body's ``code`` decides whatever the HTTP status; ``"0"`` with a
    non-2xx status or without a ``data`` object is never a success."""
    body = json_or_none(response.body)
    failure = judge(response, body, now)
    if failure is not None:
        return failure
    assert body is not None
    return _success(body, response.status)


def judge(response: HttpResponse, body: Mapping[str, Any] | None, now: float) -> ProbeOutcome | None:
    """What any Lazada answer means when it is a failure, or None for ``code "0"`` with a 2xx.
    Shared by probes and production traffic."""
    status = response.status
    if body is None or "code" not in body:
        return by_status(response, "no Lazada envelope", now)
    raw = body.get("code")
    if is_zero(raw):
        if not 200 <= status <= 299:
            return by_status(response, 'code "0" with a failing status', now)
        return None
    code = code_text(raw)
    if not code:
        return by_status(response, "code is not a string", now)
    error_type = body.get("type")
    return judge_iop_error(response, now, code, error_type if isinstance(error_type, str) else None,
                       text_field(body, "message"))


def _success(body: Mapping[str, Any], status: int) -> ProbeOutcome:
    """Success carries ``data`` [D1][D2]; for /seller/get it is the seller object. Its fields are not
    in the fact sheet, so nothing is read from it beyond its presence."""
    if not isinstance(body.get("data"), dict):
        return ProbeOutcome.failed(Reason.INVALID_RESPONSE, 'code "0" without a data object',
                                   http_status=status)
    return ProbeOutcome.ok(status, message="seller profile returned")
