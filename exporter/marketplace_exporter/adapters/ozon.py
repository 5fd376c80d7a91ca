"""Ozon Seller API: ``POST /v1/roles`` (the key's expiry and roles) with ``Client-Id`` + ``Api-Key``.

Facts and source tags: docs/marketplaces/ozon.md (tags resolve in docs/marketplaces/sources.md).

* A key, not a token: two headers on every call, no signing, nothing to refresh [K1]. Keys last
  6 months and ``/v1/roles`` tells ``expires_at`` [K1]: exported as ``credential="client_secret"``
  (a static secret a human must re-issue).
* **Back off hard on auth failures.** Ozon may revoke a key on suspicious activity and "may restrict
  access to Seller API without warning" when many identical or erroneous requests come in [K1][K2].
  After an ``auth`` or ``permission`` failure the outcome asks for :data:`AUTH_BACKOFF_S` before
  the next probe (the engine's back-off takes it as a floor under the interval).
* Which HTTP status goes with which key error is UNCONFIRMED, so Ozon's documented texts decide
  first [K1], then the status. ``rpcStatus.code`` is an integer, except in the official 429 example
  where it is a string [K1]: both are read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from marketplace_exporter.adapters.base import (
    Marketplace,
    ProbeContext,
    ProbeSteps,
    StrictModel,
    json_or_none,
    reason_for_status,
)
from marketplace_exporter.adapters.common import retry_after_seconds, unix_time
from marketplace_exporter.adapters.grants import GrantName, drift, granted_names
from marketplace_exporter.adapters.routes import host_of, routes
from marketplace_exporter.catalogue import Credential, Reason, Step
from marketplace_exporter.model import CredentialObservation, HttpResponse, Operation, ProbeOutcome, RequestSpec
from marketplace_exporter.secrets import Secret

HOST = "https://api-seller.ozon.ru"  # the only environment, Ozon Global included [K1]
API_HOSTS = frozenset({host_of(HOST)})
SITES = frozenset({"RU", "GLOBAL"})
PATHS: Mapping[str, str] = {"roles": "/v1/roles", "seller_info": "/v1/seller/info"}
#: 10 minutes at least between probes of a check after an auth/permission failure (see the module
#: docstring). Shorter than MarketplaceAuthFailing's 15-minute window, so a dead key keeps that alert
#: firing instead of flapping between pauses
AUTH_BACKOFF_S = 600.0
#: production calls named in traffic labels: the probes' and the order, stock, price and product
#: methods an ERP calls most [K1]; anything else on the host is ``other``
ROUTES = routes(
    ("/v1/roles", "roles"),
    ("/v1/seller/info", "seller_info"),
    ("/v3/posting/fbs/list", "posting.fbs_list"),
    ("/v3/posting/fbs/unfulfilled/list", "posting.fbs_unfulfilled_list"),
    ("/v3/posting/fbs/get", "posting.fbs_get"),
    ("/v2/posting/fbo/list", "posting.fbo_list"),
    ("/v3/product/list", "product.list"),
    ("/v3/product/info/list", "product.info_list"),
    ("/v3/product/import", "product.import"),
    ("/v4/product/info/limit", "product.info_limit"),
    ("/v2/products/stocks", "products.stocks"),
    ("/v1/product/import/prices", "product.import_prices"),
    ("/v2/warehouse/list", "warehouse.list"),
)

#: Ozon's documented texts [K1][K2][SDK K3] → reason, whatever the status (lower-cased fragments)
TEXT_REASONS: tuple[tuple[str, Reason], ...] = (
    ("invalid api-key", Reason.AUTH),
    ("api-key is deactivated", Reason.AUTH),
    ("client-id and api-key headers are required", Reason.AUTH),
    ("missing a required role", Reason.PERMISSION),
    ("restricted to specific ip", Reason.PERMISSION),
    ("offer not signed", Reason.PERMISSION),
    ("circle is open", Reason.SERVER_ERROR),  # the method's circuit breaker [K1]
    ("rate limit", Reason.THROTTLED),
    ("limit exceeded", Reason.THROTTLED),
)
#: rpcStatus codes that mean throttling: 8 [OBS K6], RESOURCE_EXHAUSTED / TOO_MANY_REQUESTS [K1]
THROTTLE_CODES = frozenset({"8", "RESOURCE_EXHAUSTED", "TOO_MANY_REQUESTS"})
KNOWN_CODES = THROTTLE_CODES | {"3", "5", "7", "13", "16"}
_RETRY_IN_TEXT = re.compile(r"retry after (\d{1,6}) seconds", re.IGNORECASE)  # [K1] item limits
_CAP_S = 86400.0

def _digits_as_text(value: object) -> object:
    """YAML reads an unquoted ``client_id: 1836412`` as a number: accept it as its digits."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


ClientId = Annotated[str, BeforeValidator(_digits_as_text), Field(min_length=1, max_length=20, pattern=r"^[0-9]+$")]


class OzonCredentials(StrictModel):
    """The seller's Client ID and a Seller API key [K1]. ``api_key_expires_at`` only for keys whose
    ``/v1/roles`` answer has no ``expires_at`` (issued before 2026-03: UNCONFIRMED whether they
    expire [K1][K2])."""

    client_id: ClientId
    api_key: Secret
    api_key_expires_at: datetime | None = None


class OzonParams(StrictModel):
    """Method paths (``/v3/posting/fbs/list``, …) the seller's systems need: one the key's roles no
    longer grant fails ``roles`` with ``permission``."""

    required_methods: tuple[GrantName, ...] = ()


class Ozon(Marketplace[OzonCredentials, OzonParams]):
    """Ozon health: the key's own record (``/v1/roles``) or the seller account (``/v1/seller/info``)."""

    name = "ozon"
    Credentials = OzonCredentials
    Params = OzonParams
    sites = SITES
    operations = {
        # 50 rps per Client-Id across all methods, shared with production [K1]: not modelled
        "roles": Operation("roles", "POST /v1/roles (the key's expires_at and roles)", limit_source="K1",
                           default_interval_seconds=300.0),
        "seller_info": Operation("seller_info", "POST /v1/seller/info (company, ratings, subscription)",
                                 limit_source="K1",
                                 default_interval_seconds=900.0),
    }
    known_codes = KNOWN_CODES
    hosts = API_HOSTS
    routes = ROUTES

    def steps(self, ctx: ProbeContext[OzonCredentials, OzonParams]) -> ProbeSteps:
        if ctx.sandbox and not ctx.base_url:
            # whoever wrote sandbox: true expects not to touch the live store; there is none [K1][K2]
            return ProbeOutcome.failed(Reason.CLIENT_ERROR, "ozon: there is no sandbox (every call reaches the "
                                       "live store); set sandbox: false, or base_url for a test host")
        response = yield build_request(ctx, ctx.credentials.api_key.reveal())
        return read(ctx.operation, response, ctx.now, ctx.params.required_methods)

    def judge(self, operation: str, response: HttpResponse, body: Mapping[str, Any] | None,
              now: float) -> ProbeOutcome | None:
        return judge(response, body, now)

    def retry_after(self, response: HttpResponse, outcome: ProbeOutcome, now: float) -> float | None:
        """``Retry-After``, else the wait an item-limit message states ("Retry after 120 seconds" [K1])."""
        retry = retry_after_seconds(response.header("retry-after"), now)
        found = _RETRY_IN_TEXT.search(outcome.text[:512]) if retry is None else None
        return min(float(found.group(1)), _CAP_S) if found is not None else retry

    def deadlines(self, credentials: OzonCredentials) -> tuple[CredentialObservation, ...]:
        expires = credentials.api_key_expires_at
        return () if expires is None else (CredentialObservation(Credential.CLIENT_SECRET, unix_time(expires)),)


def build_request(ctx: ProbeContext[OzonCredentials, OzonParams], api_key: str) -> RequestSpec:
    """POST with an empty JSON object and the two key headers [K1]. There is no sandbox [K1]."""
    url = (ctx.base_url.rstrip("/") if ctx.base_url else HOST) + PATHS[ctx.operation]
    return RequestSpec(method="POST", url=url, body=b"{}",
                       headers=(("client-id", ctx.credentials.client_id), ("api-key", api_key),
                                ("content-type", "application/json"), ("accept", "application/json")),
                       step=Step.CALL, sensitive=frozenset({"api-key"}))


def rpc_code(body: Mapping[str, Any] | None) -> str | None:
    """``rpcStatus.code`` as text: an int, or a short upper-case word as in the 429 example [K1]."""
    value = body.get("code") if body is not None else None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**6:
        return str(value)
    if isinstance(value, str) and 0 < len(value) <= 64 and value.replace("_", "").isalnum() and value.isascii():
        return value
    return None


def judge(response: HttpResponse, body: Mapping[str, Any] | None, now: float) -> ProbeOutcome | None:
    """What an Ozon answer means when it is a failure (None for a 2xx). The documented texts decide
    first, then the code, then the status. Shared by probes and production traffic."""
    status = response.status
    if 200 <= status <= 299:
        return None
    code = rpc_code(body)
    message = body.get("message") if body is not None else None
    text = message if isinstance(message, str) else ""
    reason = text_reason(text)
    if reason is None:
        reason = Reason.THROTTLED if status == 429 or code in THROTTLE_CODES else (
            reason_for_status(status) or Reason.INVALID_RESPONSE)
    detail = f"HTTP {status}" + (f" {code}" if code else "") + (f": {text}" if text else "")
    return ProbeOutcome.failed(reason, detail, code=code, http_status=status)


def text_reason(text: str) -> Reason | None:
    lowered = text[:512].lower()
    for fragment, reason in TEXT_REASONS:
        if fragment in lowered:
            return reason
    return None


def read(operation: str, response: HttpResponse, now: float, required: tuple[str, ...]) -> ProbeOutcome:
    """The probe's reading: the shared judgement, then the success payload [K1]."""
    body = json_or_none(response.body)
    failure = judge(response, body, now)
    if failure is not None:
        if failure.reason in (Reason.AUTH, Reason.PERMISSION):
            # a probe-only hint: do not hammer a dead or restricted key [K1][K2]
            return failure.amended(retry_after_seconds=AUTH_BACKOFF_S)
        return failure
    status = response.status
    if body is None:
        return ProbeOutcome.failed(Reason.INVALID_RESPONSE, f"HTTP {status} without a JSON object",
                                   http_status=status)
    if operation == "seller_info":
        return _seller_info(body, status)
    roles = body.get("roles")
    if not isinstance(roles, list):
        return ProbeOutcome.failed(Reason.INVALID_RESPONSE, "roles is not a list", http_status=status)
    methods: set[str] = set()
    for role in roles:
        listed = granted_names(role.get("methods")) if isinstance(role, dict) else None
        methods |= listed or frozenset()
    expires = expiry(body.get("expires_at"))
    outcome = drift(frozenset(methods), required, status=status, what="Ozon methods", count_name="api_key_methods",
                    missing_name="required_methods_missing",
                    message=f"key valid; {len(roles)} roles" + ("" if expires else "; no expires_at"))
    if expires is None:
        return outcome
    return outcome.amended(credentials=(CredentialObservation(Credential.CLIENT_SECRET, expires),))


def expiry(value: object) -> float | None:
    """``expires_at`` (date-time, e.g. ``2026-02-18T09:54:23.296Z`` [K1]) as Unix time."""
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return unix_time(when)


def _seller_info(body: Mapping[str, Any], status: int) -> ProbeOutcome:
    """Rating statuses OK/WARNING/CRITICAL [K1], counted: exported, not judged."""
    ratings = body.get("ratings")
    listed = [r.get("status") for r in ratings if isinstance(r, dict)] if isinstance(ratings, list) else []
    values = (("ratings_warning", float(listed.count("WARNING"))),
              ("ratings_critical", float(listed.count("CRITICAL"))))
    return ProbeOutcome.ok(status, message=f"seller info returned; {len(listed)} ratings", values=values)
