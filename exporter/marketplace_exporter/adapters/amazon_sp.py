"""Amazon Selling Partner API: mint an LWA access token (if none is cached), then one Sellers call.

Facts and source tags: ``docs/marketplaces/amazon_sp.md`` and ``docs/marketplaces/sources.md`` ([A2]
developer guide, [A5] API models, [A7] official Java auth SDK, [A17] usage plans, [A24][A25] the
Sellers API roles table and use-case guide). LWA does not rotate refresh tokens (the
response echoes the one sent [A2]), so the exporter may mint its own access tokens from the
production refresh token without breaking production. Since 2023-10-02 no SigV4 signing is needed
[A14]: the LWA token in ``x-amz-access-token`` is the whole authentication.

SP-API exposes no "remaining tokens" header. ``x-amzn-RateLimit-Limit`` is the *rate* applied
(best effort, only on 2xx/400/404 [A17]), not headroom; so ``rate_limit`` stays None and the rate is
reported as the value ``rate_limit_per_second``. Headroom is modelled by the engine from the
documented rate/burst in :attr:`AmazonSP.operations`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from marketplace_exporter import __version__
from marketplace_exporter.adapters.base import (
    AccountProblem,
    Marketplace,
    NoParams,
    ProbeContext,
    ProbeSteps,
    StrictModel,
    json_or_none,
    reason_for_status,
)
from marketplace_exporter.adapters.common import configured_dates, short
from marketplace_exporter.adapters.routes import host_of, routes
from marketplace_exporter.adapters.tokens import cached_token, read_oauth_token, token_answer
from marketplace_exporter.catalogue import Credential, Reason, Step
from marketplace_exporter.model import (
    CredentialObservation,
    HttpResponse,
    Minted,
    Operation,
    ProbeFailed,
    ProbeOutcome,
    RequestSpec,
)
from marketplace_exporter.secrets import Secret

#: country code → endpoint region [A1]. Amazon spells the United Kingdom "UK".
REGION_SITES: Mapping[str, frozenset[str]] = {
    "na": frozenset({"US", "CA", "MX", "BR"}),
    "eu": frozenset({"IE", "ES", "UK", "FR", "BE", "NL", "DE", "IT", "SE", "ZA", "PL", "SA", "EG", "TR",
                     "AE", "IN"}),
    "fe": frozenset({"SG", "AU", "JP"}),
}
SITE_REGION: Mapping[str, str] = {site: region for region, sites in REGION_SITES.items() for site in sites}

USER_AGENT = f"marketplace-exporter/{__version__} (Language=Python)"  # required format [A2]
LWA_HOST = "https://api.amazon.com"
#: the official Java SDK treats a cached token as expired 60 s early [A7]
TOKEN_MARGIN_SECONDS = 60.0
#: LWA says 3600 [A2]; anything beyond a year is a broken or hostile response
_MAX_EXPIRES_IN = 366 * 86400.0
#: printable ASCII, no spaces: it goes into a header. LWA tokens are ≤ 2048 bytes [A2]
_TOKEN_SHAPE = re.compile(r"[\x21-\x7e]{1,4096}")

#: LWA OAuth error codes enumerated by the official SDK [A7] → reason
LWA_CODES: Mapping[str, Reason] = {
    "invalid_grant": Reason.AUTH,  # revoked/unknown refresh token (HTTP 400) [OBS A13]
    "invalid_client": Reason.AUTH,  # wrong or expired client secret (HTTP 401) [OBS A13]
    "unauthorized_client": Reason.PERMISSION,
    "access_denied": Reason.PERMISSION,
    "invalid_scope": Reason.CLIENT_ERROR,  # we send no scope: our request is wrong
    "invalid_request": Reason.CLIENT_ERROR,
    "server_error": Reason.SERVER_ERROR,
    "temporarily_unavailable": Reason.SERVER_ERROR,
}
#: why config refuses ``account`` outside the EU region
ACCOUNT_EU_ONLY = ("getAccount (operation account) is available in the EU region only [A24][A25]; site {site} is in "
                   "the {region} region, where the call would fail on every probe. Use marketplace_participations "
                   "(roles: see docs/marketplaces/amazon_sp.md)")
#: SP-API `errors[].code` values named in the fact sheet [A2][A5][OBS A20][OBS A21]
API_CODES = frozenset({"QuotaExceeded", "Unauthorized", "MissingAuthenticationToken"})
_TOKEN_WORDS = ("expired", "revoked", "malformed", "invalid", "missing")

#: the LWA token exchange as a traffic operation (classified by :func:`read_token`)
LWA_OPERATION = "lwa_token"
#: SP-API hosts by region, production and sandbox [A1]; LWA on its own host [A2]
API_HOSTS = frozenset(f"{prefix}sellingpartnerapi-{region}.amazon.com"
                      for region in REGION_SITES for prefix in ("", "sandbox."))
LWA_HOSTS = frozenset({host_of(LWA_HOST)})
#: the hosts production calls to SP-API go to: the regional API hosts and LWA's token host
TRAFFIC_HOSTS = API_HOSTS | LWA_HOSTS
#: production calls named in traffic labels: the probes' own, LWA, and the order-sync, inventory,
#: listings, feeds and reports calls of the SP-API models [A5]; anything else is ``other``
ROUTES = routes(
    ("/sellers/v1/marketplaceParticipations", "marketplace_participations"),
    ("/sellers/v1/account", "account"),
    ("/auth/o2/token", LWA_OPERATION),
    ("/orders/v0/orders", "orders.get_orders"),
    ("/orders/v0/orders/[^/]+", "orders.get_order"),
    ("/orders/v0/orders/[^/]+/orderItems", "orders.get_order_items"),
    ("/orders/v0/orders/[^/]+/address", "orders.get_order_address"),
    ("/orders/v0/orders/[^/]+/buyerInfo", "orders.get_order_buyer_info"),
    ("/fba/inventory/v1/summaries", "fba_inventory.get_inventory_summaries"),
    ("/listings/2021-08-01/items/[^/]+/[^/]+", "listings.item"),
    ("/feeds/2021-06-30/feeds(?:/[^/]+)?", "feeds"),
    ("/feeds/2021-06-30/documents(?:/[^/]+)?", "feeds.documents"),
    ("/reports/2021-06-30/reports(?:/[^/]+)?", "reports"),
    ("/reports/2021-06-30/documents/[^/]+", "reports.documents"),
    ("/tokens/2021-03-01/restrictedDataToken", "tokens.restricted_data_token"),
)


class AmazonCredentials(StrictModel):
    """LWA app credentials plus the seller's refresh token, and two calendar deadlines.

    The deadlines are not returned by any API: the LWA client secret must be rotated every 180 days
    [A9] and public apps must be re-authorized every 365 days [A8], so the seller records when.
    A date means midnight UTC; a naive datetime means UTC.
    """

    client_id: str
    client_secret: Secret
    refresh_token: Secret
    client_secret_expires_at: datetime | date | None = None
    authorization_expires_at: datetime | date | None = None


def _sellers_plan(name: str, description: str) -> Operation:
    """Both Sellers operations share one plan: 0.016 rps / burst 15 (≈ one call a minute) [A5];
    every sandbox call shares 5 rps / burst 15 [A3][A4]. A 5-minute interval leaves the seller's
    own bucket almost untouched."""
    return Operation(name, description, rate_per_second=0.016, burst=15, limit_source="A5",
                     sandbox_rate_per_second=5.0, sandbox_burst=15, default_interval_seconds=300.0)


#: operation → (path, JSON type of ``payload`` on success)
_CALLS: Mapping[str, tuple[str, type]] = {
    "marketplace_participations": ("/sellers/v1/marketplaceParticipations", list),
    "account": ("/sellers/v1/account", dict),
}


class AmazonSP(Marketplace[AmazonCredentials, NoParams]):
    """SP-API health: LWA token exchange (non-rotating, cached) and a cheap Sellers API call."""

    name = "amazon_sp"
    Credentials = AmazonCredentials
    Params = NoParams
    sites = frozenset(SITE_REGION)
    operations = {
        "marketplace_participations": _sellers_plan(
            "marketplace_participations",
            "GET /sellers/v1/marketplaceParticipations (getMarketplaceParticipations)"),
        "account": _sellers_plan("account", "GET /sellers/v1/account (getAccount; EU sites only [A24])"),
    }
    known_codes = frozenset(LWA_CODES) | API_CODES
    hosts = TRAFFIC_HOSTS
    routes = ROUTES

    def deadlines(self, credentials: AmazonCredentials) -> tuple[CredentialObservation, ...]:
        """The client-secret rotation and re-authorization dates the seller recorded [A8][A9]."""
        return configured_dates((Credential.CLIENT_SECRET, credentials.client_secret_expires_at),
                                (Credential.AUTHORIZATION, credentials.authorization_expires_at))

    def account_problems(self, site: str, credentials: AmazonCredentials,
                         operations: Sequence[str]) -> list[AccountProblem]:
        """getAccount exists in the EU region only [A24][A25]: elsewhere it fails for good."""
        region = SITE_REGION.get(site.upper())
        return [(("checks", index, "operation"), ACCOUNT_EU_ONLY.format(site=site, region=(region or "?").upper()))
                for index, operation in enumerate(operations) if operation == "account" and region != "eu"]

    def steps(self, ctx: ProbeContext[AmazonCredentials, NoParams]) -> ProbeSteps:
        base = api_base(ctx)
        if base is None:
            raise ProbeFailed(ProbeOutcome.failed(Reason.INTERNAL, f"amazon_sp: unknown site {ctx.site!r}"))
        key = token_key(ctx)
        token, expires_at = yield from cached_token(
            ctx, key, TOKEN_MARGIN_SECONDS, lambda: token_request(ctx.auth_url, ctx.credentials), read_token)
        path, payload_type = _CALLS[ctx.operation]
        response = yield RequestSpec(
            method="GET",
            url=base + path,
            headers=(("x-amz-access-token", token), ("user-agent", USER_AGENT),
                     ("accept", "application/json")),
            step=Step.CALL,
            sensitive=frozenset({"x-amz-access-token"}),
        )
        outcome = read_call(response, ctx.now, payload_type)
        if outcome.reason is Reason.AUTH:
            ctx.tokens.drop(key)  # the next probe mints a fresh token instead of reusing a dead one
        return outcome.with_credentials((CredentialObservation(Credential.ACCESS_TOKEN, expires_at),))

    def judge(self, operation: str, response: HttpResponse, body: Mapping[str, Any] | None,
              now: float) -> ProbeOutcome | None:
        """LWA answers as the token step reads them; every other call as the Sellers call does."""
        if operation == LWA_OPERATION:
            return token_answer(read_token, response, now)
        return judge(response, body, now)


def token_key(ctx: ProbeContext[AmazonCredentials, NoParams]) -> str:
    """Cache key per account and LWA app; holds no secret (client ids are not secret)."""
    return f"amazon_sp:{ctx.alias}:{ctx.credentials.client_id}"


def api_base(ctx: ProbeContext[AmazonCredentials, NoParams]) -> str | None:
    """``ctx.base_url`` verbatim if set, else the (sandbox) host of the site's region [A1][A2]."""
    if ctx.base_url:
        return ctx.base_url.rstrip("/")
    region = SITE_REGION.get(ctx.site.upper())
    if region is None:
        return None
    prefix = "sandbox." if ctx.sandbox else ""
    return f"https://{prefix}sellingpartnerapi-{region}.amazon.com"


def token_request(auth_url: str | None, creds: AmazonCredentials) -> RequestSpec:
    """The LWA refresh-token grant as a form POST [A2][A6]. Reveals two secrets."""
    form = urlencode({
        "grant_type": "refresh_token",
        "refresh_token": creds.refresh_token.reveal(),
        "client_id": creds.client_id,
        "client_secret": creds.client_secret.reveal(),
    })
    return RequestSpec(
        method="POST",
        url=f"{(auth_url or LWA_HOST).rstrip('/')}/auth/o2/token",
        headers=(("content-type", "application/x-www-form-urlencoded;charset=UTF-8"),
                 ("accept", "application/json"), ("user-agent", USER_AGENT)),
        body=form.encode(),
        step=Step.TOKEN,
        sensitive=frozenset({"refresh_token", "client_secret"}),
    )


def read_token(response: HttpResponse, now: float) -> Minted:
    """The access token and its expiry from a good LWA answer; raises :class:`ProbeFailed` with
    what any other answer says."""
    body = json_or_none(response.body)
    if not 200 <= response.status <= 299:
        raise ProbeFailed(judge_token(response, body, now))
    return read_oauth_token(response, body, now, what="LWA token response", max_expires_in=_MAX_EXPIRES_IN,
                            shape=_TOKEN_SHAPE)


def judge_token(response: HttpResponse, body: Mapping[str, Any] | None, now: float) -> ProbeOutcome:
    """What a non-2xx LWA answer says, by its OAuth ``error``."""
    status = response.status
    error = body.get("error") if body is not None else None
    code = short(error, 64) if isinstance(error, str) and error else None
    if status == 429:
        reason = Reason.THROTTLED
    elif code is not None and code in LWA_CODES:
        reason = LWA_CODES[code]
    else:
        reason = reason_for_status(status) or Reason.INVALID_RESPONSE
    description = body.get("error_description") if body is not None else None
    text = f"LWA token request: HTTP {status}" + (f" {code}" if code else "")
    if isinstance(description, str) and description:
        text += f": {description}"
    return ProbeOutcome.failed(reason, text, code=code, http_status=status)


def read_call(response: HttpResponse, now: float, payload_type: type = list) -> ProbeOutcome:
    """The probe's reading of an SP-API answer: the `errors` envelope [A5], expired tokens under
    403 [A2], then the ``payload``; the stated rate as a value."""
    status = response.status
    rate = _stated_rate(response.header("x-amzn-ratelimit-limit"))
    values = (("rate_limit_per_second", rate),) if rate is not None else ()
    body = json_or_none(response.body)
    failure = judge(response, body, now)
    if failure is not None:
        return failure.amended(values=values)
    payload = body.get("payload") if body is not None else None
    if not isinstance(payload, payload_type):
        kind = "list" if payload_type is list else "object"
        return ProbeOutcome.failed(Reason.INVALID_RESPONSE, f"HTTP {status} without a payload {kind}",
                                   http_status=status, values=values)
    text = f"{len(payload)} marketplace participations" if isinstance(payload, list) else "account found"
    return ProbeOutcome.ok(status, message=text, values=values)


def judge(response: HttpResponse, body: Mapping[str, Any] | None, now: float) -> ProbeOutcome | None:
    """What a non-2xx SP-API answer says (None for a 2xx): the ``errors`` envelope [A5], expired
    tokens under 403 [A2]. Shared by probes and production traffic."""
    status = response.status
    if 200 <= status <= 299:
        return None
    code, text = _first_error(body)
    if status == 429:
        reason = Reason.THROTTLED  # QuotaExceeded [A5]; retryable with back-off [A17]
    elif status in (401, 403):
        reason = Reason.AUTH if status == 401 or _token_problem(code, text) else Reason.PERMISSION
    else:
        reason = reason_for_status(status) or Reason.INVALID_RESPONSE
    message = f"HTTP {status}" + (f" {code}" if code else "") + (f": {text}" if text else "")
    return ProbeOutcome.failed(reason, message, code=code, http_status=status)


def _first_error(body: Mapping[str, Any] | None) -> tuple[str | None, str]:
    """(errors[0].code, "message details") from the SP-API envelope; tolerant of any shape."""
    errors = body.get("errors") if body is not None else None
    first = errors[0] if isinstance(errors, list) and errors else None
    if not isinstance(first, dict):
        return None, ""
    code = first.get("code")
    parts = [first.get(k) for k in ("message", "details")]
    text = " ".join(p for p in parts if isinstance(p, str) and p)
    return (short(code, 64) if isinstance(code, str) and code else None), text


def _token_problem(code: str | None, text: str) -> bool:
    """True when a 403 is about the access token itself rather than a missing role.

    Both come as 403 ``Unauthorized`` "Access to requested resource is denied."; only ``details``
    tells them apart ("The access token you provided has expired.", "…is revoked, malformed or
    invalid.", "Access token is missing…") [A2][OBS A21]. Without such details we say PERMISSION.
    """
    if code == "MissingAuthenticationToken":
        return True
    lowered = text.lower()
    return "token" in lowered and any(word in lowered for word in _TOKEN_WORDS)


def _stated_rate(header: str | None) -> float | None:
    """x-amzn-RateLimit-Limit as requests/second; None for absent or garbage values."""
    if not header or len(header) > 32:
        return None
    try:
        rate = float(header.strip())
    except ValueError:
        return None
    return rate if 0 < rate < 1e6 else None  # also rejects nan and inf

