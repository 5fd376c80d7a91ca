"""Amazon Selling Partner API: mint an LWA access token (if none is cached), then one Sellers call.

Facts and source tags are from /work/shared/marketplaces.md section 1 ([A2] developer guide, [A5] API
models, [A7] official Java auth SDK, [A17] usage plans). LWA does not rotate refresh tokens (the
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
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import Any, ClassVar
from urllib.parse import urlencode

from marketplace_exporter import __version__
from marketplace_exporter.adapters.base import (
    Classification,
    NoParams,
    ProbeContext,
    ProbeSteps,
    RouteMatch,
    StrictModel,
    Verdict,
    json_or_none,
)
from marketplace_exporter.adapters.common import (
    finite_number,
    host_of,
    match_hosts,
    reason_for_status,
    retry_after_seconds,
    route_operations,
    routes,
    short,
    status_only,
    token_classification,
    unix_time,
)
from marketplace_exporter.catalogue import Credential, Reason, Step
from marketplace_exporter.model import (
    CredentialObservation,
    HttpResponse,
    Operation,
    ProbeOutcome,
    RequestSpec,
)
from marketplace_exporter.secrets import REDACTOR, Secret, SecretUnavailable

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
#: SP-API `errors[].code` values named in the fact sheet [A2][A5][OBS A20][OBS A21]
API_CODES = frozenset({"QuotaExceeded", "Unauthorized", "MissingAuthenticationToken"})
_TOKEN_WORDS = ("expired", "revoked", "malformed", "invalid", "missing")

#: the LWA token exchange as a traffic operation (classified by :func:`classify_token`)
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


class AmazonSP:
    """SP-API health: LWA token exchange (non-rotating, cached) and a cheap Sellers API call."""

    name: ClassVar[str] = "amazon_sp"
    operations: ClassVar[Mapping[str, Operation]] = {
        "marketplace_participations": _sellers_plan(
            "marketplace_participations",
            "GET /sellers/v1/marketplaceParticipations (getMarketplaceParticipations)"),
        "account": _sellers_plan("account", "GET /sellers/v1/account (getAccount)"),
    }
    known_codes: ClassVar[frozenset[str]] = frozenset(LWA_CODES) | API_CODES
    sites: ClassVar[frozenset[str]] = frozenset(SITE_REGION)
    Credentials: ClassVar[type[StrictModel]] = AmazonCredentials
    Params: ClassVar[type[StrictModel]] = NoParams
    api_operations: ClassVar[frozenset[str]] = route_operations(ROUTES)

    def match(self, host: str | None, path: str, query: str = "") -> RouteMatch | None:
        return match_hosts(TRAFFIC_HOSTS, ROUTES, host, path)

    def classify(self, operation: str, status: int, headers: Mapping[str, str], body: bytes | None,
                 now: float) -> Classification:
        """LWA answers as the token step reads them; every other call as the Sellers call does."""
        if body is None:
            return status_only(status)
        response = HttpResponse(status, headers, body)
        if operation == LWA_OPERATION:
            if 200 <= status <= 299:  # as the token step reads a 2xx: a usable token or a failure
                minted = classify_token(response, now)
                return token_classification(minted)
            return Classification.of_verdict(token_failure_of(response, json_or_none(body), now))
        return Classification.of_verdict(failure_of(response, json_or_none(body), now))

    def probe(self, ctx: ProbeContext) -> ProbeSteps:
        creds: AmazonCredentials = ctx.credentials
        observed = list(_configured_deadlines(creds))
        call = _CALLS.get(ctx.operation)
        base = api_base(ctx)
        if call is None or base is None:
            what = f"operation {ctx.operation!r}" if call is None else f"site {ctx.site!r}"
            return ProbeOutcome.failed(Reason.INTERNAL, f"amazon_sp: unknown {what}",
                                       credentials=tuple(observed))
        key = token_key(ctx)
        cached = ctx.tokens.get(key, ctx.now, margin=TOKEN_MARGIN_SECONDS)
        if cached is None:
            try:
                request = token_request(ctx.auth_url, creds)
            except SecretUnavailable as exc:
                return ProbeOutcome.failed(Reason.AUTH, short(f"credential unavailable: {exc}"),
                                           credentials=tuple(observed))
            token_response = yield request
            minted = classify_token(token_response, ctx.now)
            if isinstance(minted, ProbeOutcome):
                return replace(minted, credentials=tuple(observed))
            REDACTOR.register(minted[0])  # a secret like any other: redact it in logs and messages
            ctx.tokens.put(key, *minted)
            cached = minted
        token, expires_at = cached
        observed.append(CredentialObservation(Credential.ACCESS_TOKEN, expires_at))
        path, payload_type = call
        response = yield RequestSpec(
            method="GET",
            url=base + path,
            headers=(("x-amz-access-token", token), ("user-agent", USER_AGENT),
                     ("accept", "application/json")),
            step=Step.CALL,
            sensitive=frozenset({"x-amz-access-token"}),
        )
        outcome = classify_call(response, ctx.now, payload_type)
        if outcome.reason is Reason.AUTH:
            ctx.tokens.drop(key)  # the next probe mints a fresh token instead of reusing a dead one
        return replace(outcome, credentials=tuple(observed))


def token_key(ctx: ProbeContext) -> str:
    """Cache key per account and LWA app; holds no secret (client ids are not secret)."""
    return f"amazon_sp:{ctx.alias}:{ctx.credentials.client_id}"


def api_base(ctx: ProbeContext) -> str | None:
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


def classify_token(response: HttpResponse, now: float) -> tuple[str, float] | ProbeOutcome:
    """(access token, expires_at) from a good LWA response, else the failed outcome."""
    status = response.status
    body = json_or_none(response.body)
    if 200 <= status <= 299:
        if body is None:
            return ProbeOutcome.failed(Reason.INVALID_RESPONSE, "LWA token response is not a JSON object",
                                       http_status=status)
        token, expires_in = body.get("access_token"), finite_number(body.get("expires_in"))
        if not isinstance(token, str) or not _TOKEN_SHAPE.fullmatch(token):
            return ProbeOutcome.failed(Reason.INVALID_RESPONSE,
                                       "LWA token response has no usable access_token", http_status=status)
        if expires_in is None or not 0 < expires_in <= _MAX_EXPIRES_IN:
            return ProbeOutcome.failed(Reason.INVALID_RESPONSE, "LWA token response has no usable expires_in",
                                       http_status=status)
        return token, now + expires_in
    return token_failure_of(response, body, now).outcome()


def token_failure_of(response: HttpResponse, body: Mapping[str, Any] | None, now: float) -> Verdict:
    """What a non-2xx LWA answer means, by its OAuth ``error``. Shared by probes and traffic."""
    status = response.status
    error = body.get("error") if body is not None else None
    code = short(error, 64) if isinstance(error, str) and error else None
    if status == 429:
        reason = Reason.THROTTLED
    elif code is not None and code in LWA_CODES:
        reason = LWA_CODES[code]
    else:
        reason = reason_for_status(status) or Reason.INVALID_RESPONSE

    def outcome() -> ProbeOutcome:
        description = body.get("error_description") if body is not None else None
        text = f"LWA token request: HTTP {status}" + (f" {code}" if code else "")
        if isinstance(description, str) and description:
            text += f": {description}"
        retry = retry_after_seconds(response.header("retry-after"), now) if reason is Reason.THROTTLED else None
        return ProbeOutcome.failed(reason, short(text), code=code, http_status=status, retry_after_seconds=retry)

    return Verdict(reason, code, outcome)


def classify_call(response: HttpResponse, now: float, payload_type: type = list) -> ProbeOutcome:
    """Classify an SP-API response: the `errors` envelope [A5], expired tokens under 403 [A2]."""
    status = response.status
    rate = _stated_rate(response.header("x-amzn-ratelimit-limit"))
    values = (("rate_limit_per_second", rate),) if rate is not None else ()
    body = json_or_none(response.body)
    failure = failure_of(response, body, now)
    if failure is not None:
        return replace(failure.outcome(), values=values)
    payload = body.get("payload") if body is not None else None
    if not isinstance(payload, payload_type):
        kind = "list" if payload_type is list else "object"
        return ProbeOutcome.failed(Reason.INVALID_RESPONSE, f"HTTP {status} without a payload {kind}",
                                   http_status=status, values=values)
    text = f"{len(payload)} marketplace participations" if isinstance(payload, list) else "account found"
    return ProbeOutcome.ok(status, message=text, values=values)


def failure_of(response: HttpResponse, body: Mapping[str, Any] | None, now: float) -> Verdict | None:
    """What a non-2xx SP-API answer means (None for a 2xx): the ``errors`` envelope [A5], expired
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

    def outcome() -> ProbeOutcome:
        retry = retry_after_seconds(response.header("retry-after"), now) if status == 429 else None
        message = f"HTTP {status}" + (f" {code}" if code else "") + (f": {text}" if text else "")
        return ProbeOutcome.failed(reason, short(message), code=code, http_status=status,
                                   retry_after_seconds=retry)

    return Verdict(reason, code, outcome)


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


def _configured_deadlines(creds: AmazonCredentials) -> Iterator[CredentialObservation]:
    if creds.client_secret_expires_at is not None:
        yield CredentialObservation(Credential.CLIENT_SECRET, unix_time(creds.client_secret_expires_at))
    if creds.authorization_expires_at is not None:
        yield CredentialObservation(Credential.AUTHORIZATION, unix_time(creds.authorization_expires_at))
