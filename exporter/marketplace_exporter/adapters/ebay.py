"""eBay RESTful APIs: mint an OAuth access token (if none is cached), then one cheap call.

Facts and source tags (resolved in docs/marketplaces/sources.md: [B1] official OAuth client,
[B3] RESTful-API guide, [B5] refresh request, [B6] token response, [B10] OAuth limits, [B11][B12]
call limits, [B13] Developer Analytics contract). An eBay refresh does **not** rotate the refresh
token: it mints an access token with the same authorization and returns no new refresh token
[B5][OBS B8]. So, like SP-API, the exporter mints its own access tokens from the production refresh
token without disturbing production, and caches each for its full 2 h lifetime minus a margin,
because eBay caps refresh grants at 50 000 a day per application (client credentials: 1 000) [B10].

There is no request signing for these calls: the bearer token is the whole authentication. One
host per environment; the marketplace is the ``X-EBAY-C-MARKETPLACE-ID`` header, plus
``Accept-Language`` on the multi-locale sites [B3][B4]. Error and analytics parsing live in
:mod:`marketplace_exporter.adapters.ebay_responses`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from pydantic import Field

from marketplace_exporter.adapters.base import Marketplace, ProbeContext, ProbeSteps, StrictModel, json_or_none
from marketplace_exporter.adapters.common import configured_dates, pick_host
from marketplace_exporter.adapters.ebay_responses import (
    KNOWN_CODES,
    judge,
    read_privilege,
    read_rate_limits,
    read_token,
)
from marketplace_exporter.adapters.routes import host_of, routes
from marketplace_exporter.adapters.tokens import cached_token, token_answer
from marketplace_exporter.catalogue import Credential, Reason, Step
from marketplace_exporter.model import (
    CredentialObservation,
    HttpResponse,
    Operation,
    ProbeFailed,
    ProbeOutcome,
    RequestSpec,
)
from marketplace_exporter.secrets import Secret

HOST = "https://api.ebay.com"  # [B1]
SANDBOX_HOST = "https://api.sandbox.ebay.com"  # [B1]
TOKEN_PATH = "/identity/v1/oauth2/token"  # [B5]
#: the application scope the Developer Analytics rate_limit call needs [B13]
APP_SCOPE = "https://api.ebay.com/oauth/api_scope"
#: our margin, not an eBay figure: a cached token is replaced 60 s before it expires. With eBay's
#: 7200 s lifetime [B6] that is one refresh grant per account every ~2 h (≈ 12 a day, against the
#: 50 000/day per app cap [B10]) and one client-credentials grant per app (≈ 12 a day of 1 000).
TOKEN_MARGIN_SECONDS = 60.0
#: the OAuth token exchange as a traffic operation (classified by :func:`read_token`)
TOKEN_OPERATION = "oauth_token"
API_HOSTS = frozenset({host_of(HOST), host_of(SANDBOX_HOST)})
#: production calls named in traffic labels: the probes', the token call, and the order-sync,
#: inventory and offer calls of the Sell APIs [B3]; anything else (Trading API included) is ``other``
ROUTES = routes(
    (TOKEN_PATH, TOKEN_OPERATION),
    ("/sell/account/v1/privilege", "privilege"),
    ("/developer/analytics/v1_beta/rate_limit", "rate_limit"),
    ("/developer/analytics/v1_beta/user_rate_limit", "user_rate_limit"),
    ("/sell/fulfillment/v1/order", "fulfillment.get_orders"),
    ("/sell/fulfillment/v1/order/[^/]+", "fulfillment.get_order"),
    ("/sell/fulfillment/v1/order/[^/]+/shipping_fulfillment(?:/[^/]+)?", "fulfillment.shipping_fulfillment"),
    ("/sell/inventory/v1/inventory_item(?:/[^/]+)?", "inventory.inventory_item"),
    ("/sell/inventory/v1/bulk_update_price_quantity", "inventory.bulk_update_price_quantity"),
    ("/sell/inventory/v1/offer(?:/[^/]+)?", "inventory.offer"),
)

#: config ``site`` → (X-EBAY-C-MARKETPLACE-ID, Accept-Language or None) [B3][B4]. Canada and
#: Belgium are one marketplace each with two locales, selected by Accept-Language (fr-CA, fr-BE,
#: nl-BE [B4]); Belgium's default locale differs between eBay's own pages, so BE is only offered
#: with an explicit language. EBAY_IN (closed) and the "reserved for future use" IDs are left out.
SITE_MARKETPLACES: Mapping[str, tuple[str, str | None]] = {
    "US": ("EBAY_US", None), "MOTORS": ("EBAY_MOTORS_US", None),
    "CA": ("EBAY_CA", "en-CA"), "CA_FR": ("EBAY_CA", "fr-CA"),
    "GB": ("EBAY_GB", None), "IE": ("EBAY_IE", None), "AU": ("EBAY_AU", None),
    "DE": ("EBAY_DE", None), "AT": ("EBAY_AT", None), "CH": ("EBAY_CH", None),
    "FR": ("EBAY_FR", None), "IT": ("EBAY_IT", None), "ES": ("EBAY_ES", None),
    "NL": ("EBAY_NL", None), "BE_FR": ("EBAY_BE", "fr-BE"), "BE_NL": ("EBAY_BE", "nl-BE"),
    "PL": ("EBAY_PL", None), "HK": ("EBAY_HK", None), "SG": ("EBAY_SG", None),
    "MY": ("EBAY_MY", None), "PH": ("EBAY_PH", None),
}

ClientId = Annotated[str, Field(pattern=r"^[\x21-\x7e]{1,256}$")]
Scope = Annotated[str, Field(pattern=r"^https://[\x21-\x7e]{1,250}$")]
ApiName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]


class EbayCredentials(StrictModel):
    """The application keyset plus the seller's refresh token.

    ``scopes`` is optional: without it eBay issues a token with every scope the seller consented to;
    with it, the list must be a subset of them (else ``invalid_scope``) [B5]. eBay returns no
    refresh-token expiry on a refresh [B6], so ``refresh_token_expires_at`` (about 18 months after
    the seller's consent, 47 304 000 s [B6][B7]) is the only source of that expiry series.
    A date means midnight UTC; a naive datetime means UTC.
    """

    client_id: ClientId
    client_secret: Secret
    refresh_token: Secret
    scopes: tuple[Scope, ...] = ()
    refresh_token_expires_at: datetime | date | None = None


class EbayParams(StrictModel):
    """Filters of the Developer Analytics calls [B13]; the ``privilege`` operation ignores them."""

    #: the contract lists buy, sell, commerce and developer [B13]; ``tradingapi`` is not in it
    #: (UNCONFIRMED, kept because eBay's own rate-limit reports use it as a context: harmless)
    api_context: Literal["buy", "sell", "commerce", "developer", "tradingapi"] | None = None
    api_name: ApiName | None = None


@dataclass(frozen=True)
class _Call:
    path: str
    #: True = application token (client-credentials grant); False = the seller's user token
    app_token: bool
    analytics: bool


_CALLS: Mapping[str, _Call] = {
    "privilege": _Call("/sell/account/v1/privilege", app_token=False, analytics=False),
    "rate_limit": _Call("/developer/analytics/v1_beta/rate_limit/", app_token=True, analytics=True),
    "user_rate_limit": _Call("/developer/analytics/v1_beta/user_rate_limit/", app_token=False, analytics=True),
}

# eBay limits are *daily quotas* (calls per 24 h window), not token buckets [B11][B12]. The
# rate is the documented daily number spread over a day. A daily quota may be spent in one burst,
# but no bucket size is documented, so ``burst`` stays None (UNCONFIRMED): then the engine neither
# enforces a budget nor models headroom for eBay. Headroom is OBSERVED instead, from rate_limit.
_ACCOUNT_API_PER_DAY = 25_000  # Sell Account API [B11]
_ANALYTICS_API_PER_DAY = 5_000  # Developer Analytics API [B12]


class Ebay(Marketplace[EbayCredentials, EbayParams]):
    """eBay health (getPrivileges with the seller's token) and observed headroom (Analytics)."""

    name = "ebay"
    Credentials = EbayCredentials
    Params = EbayParams
    sites = frozenset(SITE_MARKETPLACES)
    operations = {
        "privilege": Operation(
            "privilege", "GET /sell/account/v1/privilege (user token; Account API 25 000/day)",
            rate_per_second=_ACCOUNT_API_PER_DAY / 86400, burst=None, limit_source="B11",
            default_interval_seconds=300.0),
        "rate_limit": Operation(
            "rate_limit", "GET /developer/analytics/v1_beta/rate_limit/ (app token; 5 000/day)",
            rate_per_second=_ANALYTICS_API_PER_DAY / 86400, burst=None, limit_source="B12",
            default_interval_seconds=900.0),
        "user_rate_limit": Operation(
            "user_rate_limit", "GET /developer/analytics/v1_beta/user_rate_limit/ (user token; 5 000/day)",
            rate_per_second=_ANALYTICS_API_PER_DAY / 86400, burst=None, limit_source="B12",
            default_interval_seconds=900.0),
    }
    known_codes = KNOWN_CODES
    hosts = API_HOSTS
    routes = ROUTES

    def deadlines(self, credentials: EbayCredentials) -> tuple[CredentialObservation, ...]:
        """The refresh token's expiry the seller recorded (eBay reports it nowhere on a refresh [B6])."""
        return configured_dates((Credential.REFRESH_TOKEN, credentials.refresh_token_expires_at))

    def steps(self, ctx: ProbeContext[EbayCredentials, EbayParams]) -> ProbeSteps:
        call, site = _CALLS[ctx.operation], SITE_MARKETPLACES.get(ctx.site)
        if site is None:
            raise ProbeFailed(ProbeOutcome.failed(Reason.INTERNAL, f"ebay: unknown site {ctx.site!r}"))
        grant = "client_credentials" if call.app_token else "refresh_token"
        key = token_key(ctx, app_token=call.app_token)
        token, expires_at = yield from cached_token(
            ctx, key, TOKEN_MARGIN_SECONDS, lambda: token_request(ctx, app_token=call.app_token),
            lambda response, now: read_token(response, now, grant))
        response = yield call_request(ctx, call, token, site)
        outcome = read_call(response, ctx.now, call)
        if outcome.reason is Reason.AUTH:
            ctx.tokens.drop(key)  # the next probe mints a fresh token instead of reusing a dead one
        if call.app_token:  # the shared app token is not this account's credential
            return outcome
        return outcome.with_credentials((CredentialObservation(Credential.ACCESS_TOKEN, expires_at),))

    def judge(self, operation: str, response: HttpResponse, body: Mapping[str, Any] | None,
              now: float) -> ProbeOutcome | None:
        """Token answers as the token step reads them; API answers by the ``errors`` envelope."""
        if operation == TOKEN_OPERATION:
            return token_answer(lambda answer, at: read_token(answer, at, "refresh_token"), response, now)
        return judge(response, body, now)


def api_base(ctx: ProbeContext[EbayCredentials, EbayParams]) -> str:
    """``ctx.base_url`` verbatim if set, else the (sandbox) host: eBay has no regional hosts [B1]."""
    return pick_host(ctx, HOST, SANDBOX_HOST)


def token_url(ctx: ProbeContext[EbayCredentials, EbayParams]) -> str:
    """``ctx.auth_url`` + the token path, else the environment's own token endpoint [B1][B5]."""
    base = ctx.auth_url.rstrip("/") if ctx.auth_url else (SANDBOX_HOST if ctx.sandbox else HOST)
    return base + TOKEN_PATH


def token_key(ctx: ProbeContext[EbayCredentials, EbayParams], *, app_token: bool) -> str:
    """Cache key without any secret. The application token is shared by every account of the same
    keyset and token endpoint (fewer client-credentials grants); user tokens are per account."""
    creds = ctx.credentials
    if app_token:
        return f"ebay:app:{token_url(ctx)}:{creds.client_id}"
    return f"ebay:user:{token_url(ctx)}:{creds.client_id}:{ctx.alias}:{' '.join(creds.scopes)}"


def basic_authorization(client_id: str, client_secret: str) -> str:
    """``Basic base64(client_id:client_secret)``, exactly as eBay's OAuth client builds it [B1][B5]."""
    return "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")


def token_request(ctx: ProbeContext[EbayCredentials, EbayParams], *, app_token: bool) -> RequestSpec:
    """The refresh-token grant (user token) or the client-credentials grant (app token) [B5]."""
    creds = ctx.credentials
    fields: dict[str, str]
    if app_token:
        fields = {"grant_type": "client_credentials", "scope": APP_SCOPE}
    else:
        fields = {"grant_type": "refresh_token", "refresh_token": creds.refresh_token.reveal()}
        if creds.scopes:
            fields["scope"] = " ".join(creds.scopes)  # space-separated, URL-encoded by urlencode
    authorization = basic_authorization(creds.client_id, creds.client_secret.reveal())
    return RequestSpec(
        method="POST",
        url=token_url(ctx),
        headers=(("content-type", "application/x-www-form-urlencoded"), ("authorization", authorization),
                 ("accept", "application/json")),
        body=urlencode(fields).encode(),
        step=Step.TOKEN,
        sensitive=frozenset({"authorization", "refresh_token"}),
    )


def call_request(ctx: ProbeContext[EbayCredentials, EbayParams], call: _Call, token: str,
                 site: tuple[str, str | None]) -> RequestSpec:
    """GET with the bearer token and the marketplace header (+ Accept-Language where needed)."""
    marketplace, language = site
    headers = [("authorization", f"Bearer {token}"), ("accept", "application/json"),
               ("x-ebay-c-marketplace-id", marketplace)]
    if language is not None:
        headers.append(("accept-language", language))
    query: tuple[tuple[str, str], ...] = ()
    params = ctx.params
    if call.analytics:
        query = tuple((name, value) for name, value in (("api_context", params.api_context),
                                                         ("api_name", params.api_name)) if value)
    return RequestSpec(method="GET", url=api_base(ctx) + call.path, query=query, headers=tuple(headers),
                       step=Step.CALL, sensitive=frozenset({"authorization"}))


def read_call(response: HttpResponse, now: float, call: _Call) -> ProbeOutcome:
    """The probe's reading: the ``errors`` envelope [B3] for a failure, else the operation's own."""
    body = json_or_none(response.body)
    failure = judge(response, body, now)
    if failure is not None:
        return failure
    return read_rate_limits(response.status, body) if call.analytics else read_privilege(response.status, body)

