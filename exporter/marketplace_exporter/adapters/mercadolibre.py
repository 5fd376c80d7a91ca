"""Mercado Libre: ``GET /users/me`` with the Bearer token production holds.

Facts and source tags: ``docs/marketplaces/mercadolibre.md`` and ``docs/marketplaces/sources.md``
([H1]/[H2] official auth pages, [OBS H3] third-party client fixtures, [OBS H4] third-party notes on
the error reference, [H5] Mercado Pago's official renewal page: the same OAuth server).

* Refresh tokens rotate (observed [OBS H3]; stated officially for the same OAuth server [H5]):
  every refresh returns a new refresh token and the used one stops working. A monitor that refreshed
  would break production's token chain, so the exporter never calls ``/oauth/token`` (not even when
  ``auth_url`` is configured): it reads the access token production holds (``access_token`` or
  ``token_file``). Access tokens last 6 h [OBS H3].
* One host for every site [H1]; the site (an ML site id such as MLA or MLB) is a label.
* Errors are ``{"message", "error", "status", "cause"}`` [OBS H3] with real HTTP statuses, so the
  status leads and the ``error`` field refines: ``forbidden`` (403) → permission,
  ``local_rate_limited`` (429) → throttled, ``invalid_grant`` → auth [H2][OBS H4]. The 401 body of
  an API call is UNCONFIRMED in the fact sheet: any 401 is ``auth``. Third-party logs show
  ``{"message": "invalid access token" | "authorization value not present", "error": "unauthorized",
  "status": 401, "cause": []}``, so ``unauthorized`` is a known code (``auth:unauthorized`` rather
  than ``auth:other``, for probes and production traffic alike); an older ``error: "not_found"``
  401 body stays ``other`` (a "not found" code would mislead under an auth failure).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marketplace_exporter.adapters.base import (
    Marketplace,
    NoParams,
    ProbeContext,
    ProbeSteps,
    json_or_none,
    reason_for_status,
)
from marketplace_exporter.adapters.common import pick_host, short
from marketplace_exporter.adapters.routes import host_of, routes
from marketplace_exporter.catalogue import Reason, Step
from marketplace_exporter.credentials import HeldTokenCredentials
from marketplace_exporter.model import HttpResponse, Operation, ProbeOutcome, RequestSpec

HOST = "https://api.mercadolibre.com"  # every site [H1]
API_HOSTS = frozenset({host_of(HOST)})
#: never called (refresh rotates [OBS H3]); named so docs and tests can say so
TOKEN_PATH = "/oauth/token"
#: Mercado Libre site ids (the ``site_id`` of users and items); one API host serves them all [H1].
#: The fact sheet names MLA, MLB, MLM, MLC, MCO "…"; the rest are the other Latin-American sites
#: ML lists, kept here because the site is only a label
SITES = frozenset({"MLA", "MLB", "MLM", "MLC", "MCO", "MLU", "MPE", "MEC", "MLV", "MBO", "MPY", "MCR",
                   "MPA", "MRD", "MGT", "MHN", "MNI", "MSV"})

#: ``error`` values the fact sheet names [H2][OBS H3][OBS H4] → reason when the status is a 4xx
#: other than 401/429 (those decide on their own)
ERROR_REASONS: Mapping[str, Reason] = {
    "invalid_grant": Reason.AUTH,  # expired, revoked or already-used grant [OBS H3]
    # an API call's 401 (token missing, unknown or expired), as third-party logs show it (OBS)
    "unauthorized": Reason.AUTH,
    # the app has no grant with that user any more: the seller must authorize again [OBS H4]
    "unauthorized_client": Reason.AUTH,
    "unauthorized_application": Reason.PERMISSION,  # the application itself is blocked [OBS H4]
    "forbidden": Reason.PERMISSION,  # another user's token, blocked IP, missing scope [OBS H4]
    "local_rate_limited": Reason.THROTTLED,  # [OBS H4]
}
KNOWN_CODES = frozenset(ERROR_REASONS)
#: production calls named in traffic labels: the probe's, the token refresh production makes, and
#: the order-sync, item and shipment reads of the API docs [H1]; anything else is ``other``
ROUTES = routes(
    ("/users/me", "users_me"),
    (TOKEN_PATH, "oauth_token"),
    ("/orders/search", "orders.search"),
    ("/orders/[0-9]+", "orders.get"),
    ("/items", "items.multiget"),
    ("/items/[^/]+", "items.get"),
    ("/shipments/[0-9]+", "shipments.get"),
    ("/questions/search", "questions.search"),
)
_MAX_USER_ID = 10**15


class MercadoLibreCredentials(HeldTokenCredentials):
    """The seller's *current* access token (``APP_USR-…``, 6 h [OBS H3]), as production holds it.

    No refresh token and no client secret, on purpose: refresh tokens rotate on every refresh
    [OBS H3], so the exporter never refreshes. ``token_file`` may carry ``expires_at`` (and
    ``refresh_expires_at``) written by the ERP when it refreshes; see credentials.py.
    """


class MercadoLibre(Marketplace[MercadoLibreCredentials, NoParams]):
    """Mercado Libre health: who the token belongs to (``GET /users/me`` [H1])."""

    name = "mercadolibre"
    Credentials = MercadoLibreCredentials
    Params = NoParams
    sites = SITES
    operations = {
        # rate-limit numbers UNCONFIRMED [H1]: no budget is modelled; only the interval limits us
        "users_me": Operation("users_me", "GET /users/me (the token's user)", limit_source="UNCONFIRMED",
                              default_interval_seconds=300.0),
    }
    known_codes = KNOWN_CODES
    hosts = API_HOSTS
    routes = ROUTES

    def steps(self, ctx: ProbeContext[MercadoLibreCredentials, NoParams]) -> ProbeSteps:
        response = yield build_request(ctx, ctx.credentials.held_token().access_token)
        return read(response, ctx.now, ctx.site)

    def judge(self, operation: str, response: HttpResponse, body: Mapping[str, Any] | None,
              now: float) -> ProbeOutcome | None:
        """Status first (ML uses real statuses), the ``error`` code refines a 4xx."""
        return judge(response, body, now)


def host(ctx: ProbeContext[MercadoLibreCredentials, NoParams]) -> str:
    """``ctx.base_url`` verbatim (simulator, proxies), else the one production host. There is no
    sandbox host (UNCONFIRMED: ML test users live on production), so ``sandbox`` changes nothing."""
    return pick_host(ctx, HOST)


def build_request(ctx: ProbeContext[MercadoLibreCredentials, NoParams], token: str) -> RequestSpec:
    """The token in the Authorization header, as the docs require for every call [H1]."""
    return RequestSpec(method="GET", url=host(ctx) + "/users/me",
                       headers=(("authorization", f"Bearer {token}"), ("accept", "application/json")),
                       step=Step.CALL, sensitive=frozenset({"authorization", "access_token"}))


def error_code(body: Mapping[str, Any] | None, raw: bytes) -> str | None:
    """``error`` of the envelope (``code`` as a fallback, seen on some 403 bodies), or a bare
    text body that is one known code (a plain ``local_rate_limited`` from a rate-limit layer)."""
    if body is not None:
        for key in ("error", "code"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return short(value, 64)
        return None
    text = raw[:64].decode("utf-8", errors="replace").strip()
    return text if text in KNOWN_CODES else None


def read(response: HttpResponse, now: float, site: str | None = None) -> ProbeOutcome:
    """The probe's reading: status first (ML uses real statuses), the ``error`` code refines a 4xx."""
    body = json_or_none(response.body)
    failure = judge(response, body, now)
    return _success(body, response.status, site) if failure is None else failure


def judge(response: HttpResponse, body: Mapping[str, Any] | None, now: float) -> ProbeOutcome | None:
    """What a non-2xx answer means (None for a 2xx). Shared by probes and production traffic."""
    status = response.status
    if 200 <= status <= 299:
        return None
    code = error_code(body, response.body)
    if status == 429:
        reason = Reason.THROTTLED
    elif 500 <= status <= 599:
        reason = Reason.SERVER_ERROR
    elif status == 401:
        reason = Reason.AUTH  # API 401 body UNCONFIRMED: any 401 means the token is not accepted
    elif code is not None and code in ERROR_REASONS and 400 <= status <= 499:
        reason = ERROR_REASONS[code]
    else:
        reason = reason_for_status(status) or Reason.INVALID_RESPONSE
    message = body.get("message") if body is not None else None
    text = f"HTTP {status}" + (f" {code}" if code else "")
    if isinstance(message, str) and message and message != code:
        text += f": {message}"
    return ProbeOutcome.failed(reason, text, code=code, http_status=status)


def _success(body: Mapping[str, Any] | None, status: int, site: str | None) -> ProbeOutcome:
    """``/users/me`` answers the user object: an integer ``id`` and the user's ``site_id``."""
    user_id = body.get("id") if body is not None else None
    if isinstance(user_id, bool) or not isinstance(user_id, int) or not 0 < user_id < _MAX_USER_ID:
        return ProbeOutcome.failed(Reason.INVALID_RESPONSE, f"HTTP {status} without a user id",
                                   http_status=status)
    assert body is not None
    site_id = body.get("site_id")
    message = "token accepted"
    if isinstance(site_id, str) and site is not None and site_id != site:
        # not a failure: the token works; the configured site label is probably wrong
        message += short(f"; the user's site_id is {site_id}, configured site {site}", 100)
    return ProbeOutcome.ok(status, message=message)
