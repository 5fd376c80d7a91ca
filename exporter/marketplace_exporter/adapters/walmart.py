"""Walmart Marketplace: mint an OAuth access token (if none is cached), then one cheap call with it.

Facts and source tags: ``docs/marketplaces/walmart.md`` and ``docs/marketplaces/sources.md`` ([F1]
Walmart's OpenAPI auth model, [F4][F5] the authentication guides, [F9][OBS F10] rate-limit headers,
[F13] error codes, [F15] partner configurations, [F17] the MX authentication page, [F18][F19] CA
authentication and the Global APIs migration). Walmart refresh grants do not rotate (no new refresh
token comes back [F1]) and client-credentials tokens need no refresh token at all, so the exporter
mints its own 15-minute tokens without touching anything production holds. Tokens are cached for
their lifetime minus a minute, keyed without secrets.

Markets: ``WM_MARKET`` goes on **every** call, token and API alike: without it Walmart answers in
the ``us`` market [F17], as Walmart's generated SDK does [F21]. Mexico also requires
``WM_CONSUMER.CHANNEL.TYPE`` on every V3 call [F17] (config refuses an MX account without it).
Canada's legacy integrations authenticate with a Consumer ID and an RSA digital signature on every
call [F18], not OAuth (client id/secret is rejected there [OBS F20]); Walmart requires CA sellers to
migrate to the Global APIs, which use token authentication [F19]. Whether ``/v3/token/detail`` exists
for CA on the Global APIs is UNCONFIRMED, so ``site: CA`` is refused in config with that explanation
rather than probed into a standing false ``auth`` alert. The Settings API (partner profile) is US
only [F22]: refused for MX in config (MX answer UNCONFIRMED, probably 404).

Headroom is *observed*: responses carry ``x-current-token-count`` and the next-replenish time
(two spellings) [OBS F10][F9]. The limits behind them vary per API and are UNCONFIRMED for the two
probed endpoints, so no ratio is computed and no budget is modelled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from pydantic import BeforeValidator, Field, model_validator

from marketplace_exporter.adapters.base import (
    AccountProblem,
    Marketplace,
    NoParams,
    ProbeContext,
    ProbeSteps,
    StrictModel,
    json_or_none,
)
from marketplace_exporter.adapters.common import configured_dates, pick_host, retry_after_seconds, short
from marketplace_exporter.adapters.routes import host_of, routes
from marketplace_exporter.adapters.tokens import cached_token, read_oauth_token, token_answer
from marketplace_exporter.adapters.walmart_signing import (
    KNOWN_CODES,
    REPLENISH_HEADERS,
    basic_authorization,
    correlation_id,
    epoch_field,
    error_reason,
    first_error,
    header,
    observe_headroom,
    replenish_time,
)
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
from marketplace_exporter.secrets import REDACTOR, Secret

HOST = "https://marketplace.walmartapis.com"  # [F1][F2]
SANDBOX_HOST = "https://sandbox.walmartapis.com"  # US and MX models only [F1][F2]
#: site → ``WM_MARKET`` header value, sent on every call (missing means ``us``) [F1][F17]
MARKETS: Mapping[str, str] = {"US": "us", "MX": "mx", "CA": "ca"}
#: ``WM_SVC.NAME``: the model's example is "Walmart Service Name", integrations send this [F1][F6]
SERVICE_NAME = "Walmart Marketplace"
TOKEN_MARGIN_SECONDS = 60.0
#: Walmart says 900 [F1][F4]; a token "valid" for more than a day is a broken or hostile response
_MAX_EXPIRES_IN = 86400.0
#: the token exchange as a traffic operation (classified by :func:`read_token`)
TOKEN_OPERATION = "token"
API_HOSTS = frozenset({host_of(HOST), host_of(SANDBOX_HOST)})
#: production calls named in traffic labels: the probes', the token call, and the order-sync,
#: inventory, item and feed calls of the Marketplace API [F1]; anything else is ``other``
ROUTES = routes(
    ("/v3/token/detail", "token_detail"),
    ("/v3/settings/partnerprofile", "partner_profile"),
    ("/v3/token", TOKEN_OPERATION),
    ("/v3/orders", "orders.get_all"),
    ("/v3/orders/released", "orders.get_released"),
    ("/v3/orders/[^/]+", "orders.get"),
    ("/v3/orders/[^/]+/acknowledge", "orders.acknowledge"),
    ("/v3/orders/[^/]+/shipping", "orders.ship"),
    ("/v3/orders/[^/]+/cancel", "orders.cancel"),
    ("/v3/inventory", "inventory"),
    ("/v3/inventories(?:/[^/]+)?", "inventories"),
    ("/v3/items(?:/[^/]+)?", "items"),
    ("/v3/feeds(?:/[^/]+)?", "feeds"),
    ("/v3/price", "price"),
)

#: printable ASCII, no CR/LF: these values go into headers
_HeaderText = Annotated[str, Field(pattern=r"^[\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?$")]
#: a seller id is numeric in every example [F1]; YAML may give it as a number
_PartnerId = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) and not isinstance(v, bool)
                                            else v), Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]



class WalmartCredentials(StrictModel):
    """A direct seller's API key (client credentials), or a solution provider's app plus the
    seller's refresh token and seller id (``WM_PARTNER.ID``) [F1][F4].

    Minting from either is safe: a refresh grant returns no new refresh token [F1], so the one
    production holds stays valid. ``refresh_token_expires_at``: refresh tokens live one year [F4];
    Walmart reports the date nowhere, so the seller records it.
    """

    client_id: Annotated[str, Field(pattern=r"^[\x21-\x39\x3b-\x7e]{1,256}$")]  # no ':' (Basic auth)
    client_secret: Secret
    partner_id: _PartnerId | None = None
    refresh_token: Secret | None = None
    refresh_token_expires_at: datetime | date | None = None
    service_name: _HeaderText = SERVICE_NAME
    #: ``WM_CONSUMER.CHANNEL.TYPE``, the id Walmart gave you at onboarding: required for MX (every V3
    #: call [F17]), optional for US [F1]
    channel_type: _HeaderText | None = None

    @model_validator(mode="after")
    def _solution_provider_pair(self) -> WalmartCredentials:
        if (self.refresh_token is None) != (self.partner_id is None):
            raise ValueError("refresh_token and partner_id go together: the refresh_token grant needs the "
                             "seller id in WM_PARTNER.ID; a direct seller's key needs neither")
        if self.refresh_token_expires_at is not None and self.refresh_token is None:
            raise ValueError("refresh_token_expires_at is only meaningful with a refresh_token")
        return self


#: operation → API path. Quotas for both are UNCONFIRMED [F3]: no rate is claimed, no budget modelled.
_PATHS: Mapping[str, str] = {
    "token_detail": "/v3/token/detail",
    "partner_profile": "/v3/settings/partnerprofile",
}


class Walmart(Marketplace[WalmartCredentials, NoParams]):
    """Walmart health: token exchange (non-rotating, cached), then token/detail or partner profile."""

    name = "walmart"
    Credentials = WalmartCredentials
    Params = NoParams
    sites = frozenset(MARKETS)
    operations = {
        "token_detail": Operation(
            "token_detail", "GET /v3/token/detail (validates the token and lists its scopes) [F1]",
            limit_source="UNCONFIRMED", default_interval_seconds=300.0),
        "partner_profile": Operation(
            "partner_profile", "GET /v3/settings/partnerprofile (seller account status) [F15]",
            limit_source="UNCONFIRMED", default_interval_seconds=300.0),
    }
    known_codes = KNOWN_CODES
    hosts = API_HOSTS
    routes = ROUTES

    def deadlines(self, credentials: WalmartCredentials) -> tuple[CredentialObservation, ...]:
        """The refresh token's expiry the seller recorded (one year [F4]; Walmart reports it nowhere)."""
        return configured_dates((Credential.REFRESH_TOKEN, credentials.refresh_token_expires_at))

    def account_problems(self, site: str, credentials: WalmartCredentials,
                         operations: Sequence[str]) -> list[AccountProblem]:
        """CA legacy auth is a digital signature; MX needs its channel type; Settings is US only."""
        problems: list[AccountProblem] = [(("site",), problem) for problem in site_problems(site, credentials)]
        problems += [(("checks", index, "operation"), f"{operation} calls the Settings API, which Walmart offers "
                      "for US sellers only [F22] (not in the MX model; an MX call would fail for good): use "
                      "token_detail for MX") for index, operation in enumerate(operations)
                     if operation == "partner_profile" and site.upper() != "US" and site.upper() in MARKETS]
        return problems

    def steps(self, ctx: ProbeContext[WalmartCredentials, NoParams]) -> ProbeSteps:
        creds, path, market = ctx.credentials, _PATHS[ctx.operation], MARKETS.get(ctx.site.upper())
        refused = site_problems(ctx.site, creds)
        if market is None or refused:  # config refuses these; a probe built another way is refused too
            raise ProbeFailed(ProbeOutcome.failed(Reason.CLIENT_ERROR, refused[0] if refused else
                                                  f"walmart: unknown site {ctx.site!r}"))
        base = pick_host(ctx, HOST, SANDBOX_HOST)  # one host for every market [F1]
        token_url = f"{(ctx.auth_url or base).rstrip('/')}/v3/token"
        key = token_key(ctx, token_url)
        correlation = correlation_id(ctx.alias, ctx.operation, Step.TOKEN, ctx.now)
        token, expires_at = yield from cached_token(
            ctx, key, TOKEN_MARGIN_SECONDS, lambda: token_request(token_url, creds, market, correlation), read_token)
        response = yield call_request(base + path, token, creds, market, correlation_id(
            ctx.alias, ctx.operation, Step.CALL, ctx.now), form_content_type=ctx.operation == "token_detail")
        outcome = read_call(response, ctx.now, ctx.operation)
        if outcome.reason is Reason.AUTH:
            ctx.tokens.drop(key)  # the next probe mints a fresh token instead of reusing a dead one
        reported = [o for o in outcome.credentials if o.credential is Credential.ACCESS_TOKEN]
        if reported and reported[0].expires_at < expires_at and outcome.success:
            ctx.tokens.put(key, token, reported[0].expires_at)  # Walmart knows better than our clock
        access = tuple(reported) or (CredentialObservation(Credential.ACCESS_TOKEN, expires_at),)
        others = tuple(o for o in outcome.credentials if o.credential is not Credential.ACCESS_TOKEN)
        return outcome.amended(credentials=access + others)

    def classify(self, operation: str, status: int, headers: Mapping[str, str], body: bytes | None,
                 now: float) -> ProbeOutcome:
        """Errors from status and body; headroom from the token-count headers on every answer."""
        headroom = observe_headroom(headers, now)
        outcome = super().classify(operation, status, headers, body, now)
        return outcome if headroom is None else outcome.amended(rate_limit=headroom)

    def retry_after(self, response: HttpResponse, outcome: ProbeOutcome, now: float) -> float | None:
        """Retry-After, else the next token replenishment [OBS F10][F9]."""
        retry = retry_after_seconds(response.header("retry-after"), now)
        reset = replenish_time(header(response.headers, *REPLENISH_HEADERS), now)
        if retry is None and reset is not None:
            retry = min(max(reset - now, 0.0), 86400.0)
        return retry

    def judge(self, operation: str, response: HttpResponse, body: Mapping[str, Any] | None,
              now: float) -> ProbeOutcome | None:
        """Token answers as the token step reads them; every other call by status and ``errors``."""
        if operation == TOKEN_OPERATION:
            return token_answer(read_token, response, now)
        return judge(response, body, now)


def token_key(ctx: ProbeContext[WalmartCredentials, NoParams], token_url: str) -> str:
    """Cache key per account, app, seller and token host; holds no secret."""
    creds = ctx.credentials
    return f"walmart:{ctx.alias}:{creds.client_id}:{creds.partner_id or '-'}@{token_url}"


def token_request(token_url: str, creds: WalmartCredentials, market: str, correlation: str) -> RequestSpec:
    """``POST /v3/token`` [F1][F4]: Basic auth, form body, market and service headers; a solution
    provider adds ``WM_PARTNER.ID`` and uses the (non-rotating) refresh_token grant."""
    authorization = basic_authorization(creds.client_id, creds.client_secret.reveal())
    REDACTOR.register(authorization.removeprefix("Basic "))  # base64 of the secret is a secret too
    form = {"grant_type": "client_credentials"}
    if creds.refresh_token is not None:
        form = {"grant_type": "refresh_token", "refresh_token": creds.refresh_token.reveal()}
    headers = [("authorization", authorization),
               ("content-type", "application/x-www-form-urlencoded"),
               ("accept", "application/json"),
               ("wm_svc.name", creds.service_name),
               ("wm_qos.correlation_id", correlation),
               ("wm_market", market)]
    if creds.partner_id is not None:
        headers.append(("wm_partner.id", creds.partner_id))
    return RequestSpec(method="POST", url=token_url, headers=tuple(headers), body=urlencode(form).encode(),
                       step=Step.TOKEN, sensitive=frozenset({"authorization", "refresh_token"}))


def site_problems(site: str, creds: WalmartCredentials) -> list[str]:
    """Why an account of ``site`` cannot be probed as configured (empty: it can)."""
    if site.upper() == "CA":
        return ["Walmart Canada's legacy APIs authenticate every call with a Consumer ID and an RSA "
                "digital signature (WM_CONSUMER.ID, WM_SEC.AUTH_SIGNATURE) [F18], not with a client id and "
                "secret, so they cannot be probed this way; Walmart requires CA sellers to migrate to the "
                "Global APIs, which use token authentication [F19] (see docs/marketplaces/walmart.md, "
                "'Canada'). Whether the token endpoints exist for CA there is UNCONFIRMED: CA is refused "
                "until it is"]
    if site.upper() == "MX" and creds.channel_type is None:
        return ["Walmart Mexico requires the WM_CONSUMER.CHANNEL.TYPE header on every V3 call [F17]: set "
                "credentials.channel_type to the consumer channel type id Walmart gave you at onboarding"]
    return []


def call_request(url: str, token: str, creds: WalmartCredentials, market: str, correlation: str, *,
                 form_content_type: bool = False) -> RequestSpec:
    """An API call: the token goes in ``WM_SEC.ACCESS_TOKEN``, never ``Authorization: Bearer``
    (Walmart answers that with 401 [OBS F7]); ``WM_MARKET`` on every call, or Walmart answers in the
    ``us`` market [F17][F21]. The token-detail model declares a Content-Type even though the GET has
    no body [F1], so it is sent there."""
    headers = [("wm_sec.access_token", token),
               ("wm_qos.correlation_id", correlation),
               ("wm_svc.name", creds.service_name),
               ("wm_market", market),
               ("accept", "application/json")]
    if form_content_type:
        headers.append(("content-type", "application/x-www-form-urlencoded"))
    if creds.channel_type is not None:
        headers.append(("wm_consumer.channel.type", creds.channel_type))
    return RequestSpec(method="GET", url=url, headers=tuple(headers), step=Step.CALL,
                       sensitive=frozenset({"wm_sec.access_token"}))


def read_token(response: HttpResponse, now: float) -> Minted:
    """The access token and its expiry from a good token answer [F1]; raises :class:`ProbeFailed`
    with what any other answer says."""
    body = json_or_none(response.body)
    if not 200 <= response.status <= 299:
        raise ProbeFailed(judge_error(response, body, now, "token request: "))
    return read_oauth_token(response, body, now, what="token response", max_expires_in=_MAX_EXPIRES_IN)


# --- classification -------------------------------------------------------------------------------

def read_call(response: HttpResponse, now: float, operation: str) -> ProbeOutcome:
    """The probe's reading: errors from status and body, else the success body per operation;
    headroom from the headers either way."""
    status = response.status
    headroom = observe_headroom(response.headers, now)
    body = json_or_none(response.body)
    failure = judge(response, body, now)
    if failure is not None:
        return failure if headroom is None else failure.amended(rate_limit=headroom)
    if body is None:
        return ProbeOutcome.failed(Reason.INVALID_RESPONSE, f"HTTP {status}: body is not a JSON object",
                                   http_status=status, rate_limit=headroom)
    outcome = _token_detail(body, status) if operation == "token_detail" else _partner_profile(body, status)
    return outcome if headroom is None else outcome.amended(rate_limit=headroom)


def _token_detail(body: Mapping[str, Any], status: int) -> ProbeOutcome:
    """``is_valid`` decides [F1]; ``expire_at`` (epoch ms string) is the token's expiry."""
    valid = body.get("is_valid")
    if not isinstance(valid, bool):
        return ProbeOutcome.failed(Reason.INVALID_RESPONSE, f"HTTP {status} without a boolean is_valid",
                                   http_status=status)
    expiry = epoch_field(body.get("expire_at"))
    observed = (CredentialObservation(Credential.ACCESS_TOKEN, expiry),) if expiry is not None else ()
    if not valid:
        return ProbeOutcome.failed(Reason.AUTH, "token detail: is_valid is false", http_status=status,
                                   credentials=observed)
    values: list[tuple[str, float]] = []
    scopes = body.get("scopes")
    message = "token valid"
    if isinstance(scopes, dict):
        levels = [level for level in scopes.values() if isinstance(level, str)]
        granted = sum(level in ("full_access", "view_only") for level in levels)
        values += [("token_scopes_with_access", float(granted)),
                   ("token_scopes_full_access", float(levels.count("full_access")))]
        message = f"token valid; {granted} of {len(levels)} scopes with access"
    channel = body.get("is_channel_match")
    if isinstance(channel, bool):
        values.append(("token_channel_match", 1.0 if channel else 0.0))  # exported, not judged
    return ProbeOutcome.ok(status, message=message, values=tuple(values), credentials=observed)


def _partner_profile(body: Mapping[str, Any], status: int) -> ProbeOutcome:
    """``partner`` and ``configurations[ACCOUNT].configuration.status`` [F15]."""
    partner, configurations = body.get("partner"), body.get("configurations")
    if not isinstance(partner, dict) and not isinstance(configurations, list):
        return ProbeOutcome.failed(Reason.INVALID_RESPONSE, f"HTTP {status} without partner or configurations",
                                   http_status=status)
    account = next((c.get("configuration") for c in (configurations if isinstance(configurations, list) else ())
                    if isinstance(c, dict) and c.get("configurationName") == "ACCOUNT"), None)
    account_status = account.get("status") if isinstance(account, dict) else None
    if not isinstance(account_status, str) or not account_status:
        return ProbeOutcome.ok(status, message="partner profile returned")
    # ACTIVE, ONBOARDING_ACTIVE, ONBOARDING_INACTIVE, SUSPENDED, TNS_DECLINED, TERMINATED [F15]:
    # exported, not judged; the call itself worked
    return ProbeOutcome.ok(status, message=short(f"account status {account_status}", 60),
                           values=(("account_status_active", 1.0 if account_status == "ACTIVE" else 0.0),))


def judge(response: HttpResponse, body: Mapping[str, Any] | None, now: float) -> ProbeOutcome | None:
    """What a non-2xx answer says (None for a 2xx), token answers included. Shared by probes and
    production traffic."""
    return None if 200 <= response.status <= 299 else judge_error(response, body, now, "")


def judge_error(response: HttpResponse, body: Mapping[str, Any] | None, now: float, prefix: str) -> ProbeOutcome:
    """A non-2xx answer: the status decides where it is unambiguous (401, 403, 429, 5xx [F5][F13]);
    for other 4xx the body's code may name one of those classes; otherwise client_error."""
    status = response.status
    code, text = first_error(body)
    reason = error_reason(status, code)
    message = f"{prefix}HTTP {status}" + (f" {code}" if code else "") + (f": {text}" if text else "")
    if code is None and not text and status == 503:
        message += " without a body (gateway unreachable [F13])"
    return ProbeOutcome.failed(reason, message, code=code, http_status=status)
