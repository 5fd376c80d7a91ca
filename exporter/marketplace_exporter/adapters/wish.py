"""Wish Merchant API v3: the access token production holds, tested with ``GET /api/v3/oauth/test``.

Facts and source tags: docs/marketplaces/wish.md (tags resolve in docs/marketplaces/sources.md).

* **Never refresh.** Wish's refresh "will generate a new token … Existing access tokens will be
  revoked after calling this API" [I1]: one refresh by the monitor would revoke the token the
  seller's ERP is using. So there is no refresh-token field (a ``refresh_token`` key is a config
  error) and the exporter reads the token production holds (``access_token`` or ``token_file``;
  Wish's own ``expiry_time`` in a token file is the access token's expiry).
* The body's ``code`` decides (0 = success [I1]); Wish declares HTTP 400 for failures [I1] and a
  missing header was seen as 401 ``1012`` [OBS I6]. ``code`` is an integer in the schema but quoted
  as a string in the examples [I1]: both parse.
* ``Wish-Rate-Limit-Remaining`` is on every response [I1]: observed requests left (the window's size
  is UNCONFIRMED, so no ratio). ``Wish-Rate-Limit-Reset`` (429 [I1]) has an UNCONFIRMED format:
  Unix seconds or milliseconds, ISO-8601 and HTTP dates are accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

from marketplace_exporter.adapters.base import Marketplace, NoParams, ProbeContext, ProbeSteps, json_or_none
from marketplace_exporter.adapters.common import by_status, finite_number, pick_host, retry_after_seconds, short
from marketplace_exporter.adapters.routes import host_of, routes
from marketplace_exporter.catalogue import RateLimitSource, Reason, Step
from marketplace_exporter.credentials import HeldTokenCredentials
from marketplace_exporter.model import HttpResponse, Operation, ProbeOutcome, RateLimitObservation, RequestSpec

HOST = "https://merchant.wish.com"  # the only API server of the v3 spec [I1]
SANDBOX_HOST = "https://sandbox.merchant.wish.com"  # [I1]
#: production, sandbox, and the China merchant host (v3 calls there: UNCONFIRMED [I2])
API_HOSTS = frozenset({host_of(HOST), host_of(SANDBOX_HOST), "china-merchant.wish.com"})
#: a label: merchants of the global and the China portal call the same host (see the docs)
SITES = frozenset({"GLOBAL", "CN"})
PATHS: Mapping[str, str] = {"oauth_test": "/api/v3/oauth/test",
                            "account_details": "/api/v3/merchant/account_details"}
#: production calls named in traffic labels: the probes', the OAuth endpoints and the order and
#: product calls an ERP makes most [I1]; anything else on a Wish host is ``other``
ROUTES = routes(
    (PATHS["oauth_test"], "oauth_test"),
    (PATHS["account_details"], "account_details"),
    ("/api/v3/oauth/access_token", "oauth.access_token"),
    ("/api/v3/oauth/refresh_token", "oauth.refresh_token"),
    ("/api/v3/orders", "orders.list"),
    ("/api/v3/orders/shipping_carriers", "orders.shipping_carriers"),
    ("/api/v3/orders/[^/]+/tracking", "orders.tracking"),
    ("/api/v3/orders/[^/]+/refund", "orders.refund"),
    ("/api/v3/orders/[^/]+", "orders.get"),
    ("/api/v3/products", "products.list"),
    ("/api/v3/products/[^/]+", "products.get"),
)
REMAINING, RESET = "wish-rate-limit-remaining", "wish-rate-limit-reset"

#: body codes [I1] (1016: v2's "revoked" [OBS I7]; 1012: missing header [OBS I6])
AUTH_CODES = frozenset({"1007", "1008", "1012", "1016"})
#: 1006 is "No access token found…" (auth) or "Unauthorized access on this API" (permission) [I1]
TOKEN_OR_SCOPE = "1006"
PERMISSION_CODES = frozenset({"1002"})  # "Cannot access API due to account is disabled" [I1]
KNOWN_CODES = AUTH_CODES | PERMISSION_CODES | {TOKEN_OR_SCOPE, "1001", "10001", "10002", "10004", "10008"}
_MAX_CODE = 10**9
_CAP_S = 86400.0


class WishCredentials(HeldTokenCredentials):
    """The merchant's *current* access token (30 days [I1]), as production holds it: ``access_token``
    (``{file: PATH}`` is re-read when it changes) or ``token_file`` (JSON/YAML; Wish's own
    ``expiry_time`` is read as its expiry). Never a refresh token: Wish's refresh revokes the access
    token production is using [I1]."""

    why_no_refresh: ClassVar[str] = (
        "Wish's refresh revokes the access token your production system is using at that moment "
        "(\"Existing access tokens will be revoked after calling this API\"), so the exporter never refreshes")


class Wish(Marketplace[WishCredentials, NoParams]):
    """Wish v3 health: can the held token be used (``/oauth/test``), and is the account active."""

    name = "wish"
    Credentials = WishCredentials
    Params = NoParams
    sites = SITES
    operations = {
        # numbers UNCONFIRMED [I1]: no budget; the probe spends from production's window [I1]
        "oauth_test": Operation("oauth_test", "GET /api/v3/oauth/test (can the token be used)",
                                limit_source="UNCONFIRMED", default_interval_seconds=300.0),
        "account_details": Operation("account_details", "GET /api/v3/merchant/account_details (merchant:read)",
                                     limit_source="UNCONFIRMED", default_interval_seconds=900.0),
    }
    known_codes = KNOWN_CODES
    hosts = API_HOSTS
    routes = ROUTES

    def steps(self, ctx: ProbeContext[WishCredentials, NoParams]) -> ProbeSteps:
        token = ctx.credentials.held_token().access_token
        response = yield build_request(ctx, token)
        return read(ctx.operation, response, ctx.now)

    def judge(self, operation: str, response: HttpResponse, body: Mapping[str, Any] | None,
              now: float) -> ProbeOutcome | None:
        return judge(response, body, now)

    def retry_after(self, response: HttpResponse, outcome: ProbeOutcome, now: float) -> float | None:
        """Until the window resets (``Wish-Rate-Limit-Reset`` [I1]), else ``Retry-After``."""
        return throttle_wait(response, now)

    def classify(self, operation: str, status: int, headers: Mapping[str, str], body: bytes | None,
                 now: float) -> ProbeOutcome:
        """The base's judgement, with the requests left every Wish answer reports [I1]."""
        outcome = super().classify(operation, status, headers, body, now)
        headroom = observed(headers, now)
        return outcome if headroom is None else outcome.amended(rate_limit=headroom)


def build_request(ctx: ProbeContext[WishCredentials, NoParams], token: str) -> RequestSpec:
    """A GET with the Bearer token [I1] (never v2's ``access_token`` query parameter [I3])."""
    url = pick_host(ctx, HOST, SANDBOX_HOST) + PATHS[ctx.operation]
    return RequestSpec(method="GET", url=url,
                       headers=(("authorization", f"Bearer {token}"), ("accept", "application/json")),
                       step=Step.CALL, sensitive=frozenset({"authorization"}))


def read(operation: str, response: HttpResponse, now: float) -> ProbeOutcome:
    """The probe's reading: the shared judgement, then the success payload, with the headroom."""
    body = json_or_none(response.body)
    headroom = observed(response.headers, now)
    outcome = judge(response, body, now) or _success(operation, body, response.status)
    return outcome if headroom is None else outcome.amended(rate_limit=headroom)


def body_code(body: Mapping[str, Any] | None) -> str | None:
    """The envelope's ``code`` as a decimal string (int or numeric string [I1]); None without one."""
    value = body.get("code") if body is not None else None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip()[:10])
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _MAX_CODE:
        return None
    return str(value)


def judge(response: HttpResponse, body: Mapping[str, Any] | None, now: float) -> ProbeOutcome | None:
    """What a Wish answer means when it is a failure (None: ``code`` 0 under a 2xx). Shared by probes
    and production traffic."""
    status = response.status
    code = body_code(body)
    if code is None:
        return by_status(response, "no Wish envelope", now)
    if code == "0":
        return None if 200 <= status <= 299 else by_status(response, "code 0 with an error status", now)
    message = body.get("message") if body is not None else None
    text = message if isinstance(message, str) else ""
    return ProbeOutcome.failed(code_reason(code, text, status), f"{code}: {text}" if text else code, code=code,
                               http_status=status)


def code_reason(code: str, message: str, status: int) -> Reason:
    """Body code (+ message for the two-faced 1006) → reason [I1]; HTTP 429/5xx for the rest."""
    if code in AUTH_CODES:
        return Reason.AUTH
    if code == TOKEN_OR_SCOPE:
        return Reason.PERMISSION if "unauthorized access" in message.lower() else Reason.AUTH
    if code in PERMISSION_CODES:
        return Reason.PERMISSION
    if status == 429:
        return Reason.THROTTLED  # the 429 body code is UNCONFIRMED
    if 500 <= status <= 599:
        return Reason.SERVER_ERROR
    return Reason.CLIENT_ERROR


def observed(headers: Mapping[str, str], now: float) -> RateLimitObservation | None:
    """Requests left (``Wish-Rate-Limit-Remaining`` [I1]) and the reset time when given; no ratio:
    the window's size is UNCONFIRMED."""
    raw = headers.get(REMAINING)
    if raw is None or not raw.strip().isascii() or not raw.strip().isdigit() or len(raw.strip()) > 9:
        return None
    return RateLimitObservation(None, RateLimitSource.OBSERVED, remaining=float(int(raw.strip())),
                                reset_at=reset_time(headers.get(RESET), now))


def reset_time(value: str | None, now: float) -> float | None:
    """``Wish-Rate-Limit-Reset`` as Unix time; its format is UNCONFIRMED, so: Unix seconds, Unix
    milliseconds, a small number as seconds from now, ISO-8601, or an HTTP date. None for garbage."""
    if not value:
        return None
    value = value.strip()[:64]
    number = finite_number(int(value)) if value.isascii() and value.isdigit() and len(value) <= 15 else None
    if number is not None:
        if number >= 1e11:
            return number / 1000.0
        return number if number >= 1e9 else now + min(number, _CAP_S)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def throttle_wait(response: HttpResponse, now: float) -> float | None:
    """Seconds until the window resets (``Wish-Rate-Limit-Reset`` [I1]), else ``Retry-After``."""
    reset = reset_time(response.header(RESET), now)
    if reset is not None:
        return min(max(reset - now, 0.0), _CAP_S)
    return retry_after_seconds(response.header("retry-after"), now)


def _success(operation: str, body: Mapping[str, Any] | None, status: int) -> ProbeOutcome:
    data = body.get("data") if body is not None else None
    if not isinstance(data, dict):
        return ProbeOutcome.failed(Reason.INVALID_RESPONSE, "code 0 without a data object", http_status=status)
    if operation == "oauth_test":
        merchant = data.get("merchant_id")
        if not isinstance(merchant, str) or not merchant:
            return ProbeOutcome.failed(Reason.INVALID_RESPONSE, "oauth/test without a merchant_id",
                                       http_status=status)
        return ProbeOutcome.ok(status, message="token accepted")
    account = data.get("status")
    if not isinstance(account, str):
        return ProbeOutcome.failed(Reason.INVALID_RESPONSE, "account_details without a status", http_status=status)
    # ACTIVE / INACTIVE [I1]: exported, not judged (the call itself worked)
    return ProbeOutcome.ok(status, message=short(f"account {account}", 60),
                           values=(("account_active", 1.0 if account == "ACTIVE" else 0.0),))
