"""eBay RESTful APIs: mint an OAuth access token (if none is cached), then one cheap call.

Facts and source tags are from /work/shared/marketplaces.md section 2 ([B1] official OAuth client,
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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Annotated, ClassVar, Literal
from urllib.parse import urlencode

from pydantic import Field

from marketplace_exporter.adapters.base import (
    Classification,
    ProbeContext,
    ProbeSteps,
    RouteMatch,
    StrictModel,
    json_or_none,
)
from marketplace_exporter.adapters.common import (
    host_of,
    match_hosts,
    pick_host,
    route_operations,
    routes,
    short,
    status_only,
    token_classification,
    unix_time,
)
from marketplace_exporter.adapters.ebay_responses import (
    KNOWN_CODES,
    classify_error,
    classify_privilege,
    classify_rate_limits,
    classify_token,
    error_verdict,
    token_failure_of,
)
from marketplace_exporter.catalogue import Credential, Reason, Step
from marketplace_exporter.model import CredentialObservation, HttpResponse, Operation, ProbeOutcome, RequestSpec
from marketplace_exporter.secrets import REDACTOR, Secret, SecretUnavailable

HOST = "https://api.ebay.com"  # [B1]
SANDBOX_HOST = "https://api.sandbox.ebay.com"  # [B1]
TOKEN_PATH = "/identity/v1/oauth2/token"  # [B5]
#: the application scope the Developer Analytics rate_limit call needs [B13]
APP_SCOPE = "https://api.ebay.com/oauth/api_scope"
#: our margin, not an eBay figure: a cached token is replaced 60 s before it expires. With eBay's
#: 7200 s lifetime [B6] that is one refresh grant per account every ~2 h (≈ 12 a day, against the
#: 50 000/day per app cap [B10]) and one client-credentials grant per app (≈ 12 a day of 1 000).
TOKEN_MARGIN_SECONDS = 60.0
#: the OAuth token exchange as a traffic operation (classified by :func:`classify_token`)
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


class Ebay:
    """eBay health (getPrivileges with the seller's token) and observed headroom (Analytics)."""

    name: ClassVar[str] = "ebay"
    operations: ClassVar[Mapping[str, Operation]] = {
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
    known_codes: ClassVar[frozenset[str]] = KNOWN_CODES
    sites: ClassVar[frozenset[str]] = frozenset(SITE_MARKETPLACES)
    Credentials: ClassVar[type[StrictModel]] = EbayCredentials
    Params: ClassVar[type[StrictModel]] = EbayParams
    api_operations: ClassVar[frozenset[str]] = route_operations(ROUTES)

    def match(self, host: str | None, path: str, query: str = "") -> RouteMatch | None:
        return match_hosts(API_HOSTS, ROUTES, host, path)

    def classify(self, operation: str, status: int, headers: Mapping[str, str], body: bytes | None,
                 now: float) -> Classification:
        """Token answers as the token step reads them; API answers by the ``errors`` envelope."""
        if body is None:
            return status_only(status)
        response = HttpResponse(status, headers, body)
        if operation == TOKEN_OPERATION:
            if 200 <= status <= 299:  # as the token step reads a 2xx: a usable token or a failure
                minted = classify_token(response, now, "refresh_token")
                return token_classification(minted)
            return Classification.of_verdict(token_failure_of(response, json_or_none(body), now, "refresh_token"))
        return Classification.of_verdict(None if 200 <= status <= 299 else error_verdict(response, now))

    def probe(self, ctx: ProbeContext) -> ProbeSteps:
        creds: EbayCredentials = ctx.credentials
        observed = list(_configured_expiry(creds))
        call = _CALLS.get(ctx.operation)
        site = SITE_MARKETPLACES.get(ctx.site)
        if call is None or site is None:
            what = f"operation {ctx.operation!r}" if call is None else f"site {ctx.site!r}"
            return ProbeOutcome.failed(Reason.INTERNAL, f"ebay: unknown {what}", credentials=tuple(observed))
        key = token_key(ctx, app_token=call.app_token)
        cached = ctx.tokens.get(key, ctx.now, margin=TOKEN_MARGIN_SECONDS)
        if cached is None:
            try:
                request = token_request(ctx, creds, app_token=call.app_token)
            except SecretUnavailable as exc:
                return ProbeOutcome.failed(Reason.AUTH, short(f"credential unavailable: {exc}"),
                                           credentials=tuple(observed))
            token_response = yield request
            grant = "client_credentials" if call.app_token else "refresh_token"
            minted = classify_token(token_response, ctx.now, grant)
            if isinstance(minted, ProbeOutcome):
                return replace(minted, credentials=tuple(observed))
            REDACTOR.register(minted[0])  # redact it in logs and messages like any secret
            ctx.tokens.put(key, *minted)
            cached = minted
        token, expires_at = cached
        if not call.app_token:
            # only the seller's token: the shared app token is not this account's credential
            observed.append(CredentialObservation(Credential.ACCESS_TOKEN, expires_at))
        response = yield call_request(ctx, call, token, site)
        outcome = classify_call(response, ctx.now, call)
        if outcome.reason is Reason.AUTH:
            ctx.tokens.drop(key)  # the next probe mints a fresh token instead of reusing a dead one
        return replace(outcome, credentials=tuple(observed))


def api_base(ctx: ProbeContext) -> str:
    """``ctx.base_url`` verbatim if set, else the (sandbox) host: eBay has no regional hosts [B1]."""
    return pick_host(ctx, HOST, SANDBOX_HOST)


def token_url(ctx: ProbeContext) -> str:
    """``ctx.auth_url`` + the token path, else the environment's own token endpoint [B1][B5]."""
    base = ctx.auth_url.rstrip("/") if ctx.auth_url else (SANDBOX_HOST if ctx.sandbox else HOST)
    return base + TOKEN_PATH


def token_key(ctx: ProbeContext, *, app_token: bool) -> str:
    """Cache key without any secret. The application token is shared by every account of the same
    keyset and token endpoint (fewer client-credentials grants); user tokens are per account."""
    creds: EbayCredentials = ctx.credentials
    if app_token:
        return f"ebay:app:{token_url(ctx)}:{creds.client_id}"
    return f"ebay:user:{token_url(ctx)}:{creds.client_id}:{ctx.alias}:{' '.join(creds.scopes)}"


def basic_authorization(client_id: str, client_secret: str) -> str:
    """``Basic base64(client_id:client_secret)``, exactly as eBay's OAuth client builds it [B1][B5]."""
    return "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")


def token_request(ctx: ProbeContext, creds: EbayCredentials, *, app_token: bool) -> RequestSpec:
    """The refresh-token grant (user token) or the client-credentials grant (app token) [B5]."""
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


def call_request(ctx: ProbeContext, call: _Call, token: str, site: tuple[str, str | None]) -> RequestSpec:
    """GET with the bearer token and the marketplace header (+ Accept-Language where needed)."""
    marketplace, language = site
    headers = [("authorization", f"Bearer {token}"), ("accept", "application/json"),
               ("x-ebay-c-marketplace-id", marketplace)]
    if language is not None:
        headers.append(("accept-language", language))
    query: tuple[tuple[str, str], ...] = ()
    params = ctx.params
    if call.analytics and isinstance(params, EbayParams):
        query = tuple((name, value) for name, value in (("api_context", params.api_context),
                                                         ("api_name", params.api_name)) if value)
    return RequestSpec(method="GET", url=api_base(ctx) + call.path, query=query, headers=tuple(headers),
                       step=Step.CALL, sensitive=frozenset({"authorization"}))


def classify_call(response: HttpResponse, now: float, call: _Call) -> ProbeOutcome:
    """2xx: the operation's own reading; otherwise the ``errors`` envelope [B3]."""
    status = response.status
    if not 200 <= status <= 299:
        return classify_error(response, now)
    body = json_or_none(response.body)
    if call.analytics:
        return classify_rate_limits(status, body)
    return classify_privilege(status, body)


def _configured_expiry(creds: EbayCredentials) -> Iterator[CredentialObservation]:
    if creds.refresh_token_expires_at is not None:
        yield CredentialObservation(Credential.REFRESH_TOKEN, unix_time(creds.refresh_token_expires_at))
