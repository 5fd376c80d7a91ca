"""What the simulated Lazada and AliExpress gateways share: Alibaba's IOP conventions.

Request parameters come from the query and, for POST, a form body (the SDKs post ``data=`` [E1]);
signatures are verified with the adapters' own :mod:`~marketplace_exporter.adapters.iop_signing`
(one implementation, so the vectors tested there are what the simulator checks); errors are the IOP
envelope ``{"type", "code", "message", "request_id"}`` [D1][D2][E1].

Codes the fact sheet names are used as named (``IllegalAccessToken``, ``ApiCallLimit``,
``IncompleteSignature``); every other code below is the simulator's own choice, marked
UNCONFIRMED here and in the "Simulator" sections of docs/marketplaces/lazada.md and aliexpress.md;
the adapters classify such codes by ``type`` like any unknown code.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from aiohttp import web

from marketplace_exporter.adapters.iop_signing import SIGN_METHOD, parse_timestamp, signature_matches
from marketplace_exporter.simulator.erp import Grant
from marketplace_exporter.simulator.tokens import remember

#: (code, type, message). Sources: [D6] token, [OBS D11] throttle, [OBS E10][X4] signature
ILLEGAL_TOKEN = ("IllegalAccessToken", "ISV", "The specified access token is invalid or expired")
BAD_SIGNATURE = ("IncompleteSignature", "ISV", "The request signature does not conform to platform standards")
# UNCONFIRMED: the simulator's own codes for errors no source names
BAD_APP_KEY = ("InvalidAppKey", "ISV", "The specified App Key is invalid")  # seen in third-party fixtures
BAD_TIMESTAMP = ("InvalidTimestamp", "ISV", "The timestamp is invalid or outside the accepted window")
NO_PERMISSION = ("InsufficientPermission", "ISV", "The app has no permission to call this API")
SERVER_ERROR = ("InternalError", "ISP", "Backend service error, please try again later")
BAD_REFRESH = ("IllegalRefreshToken", "ISV", "The specified refresh token is invalid or expired")


class _Seller(Protocol):
    @property
    def alias(self) -> str: ...

    @property
    def access_token(self) -> str: ...

    @property
    def refresh_token(self) -> str: ...


SellerT = TypeVar("SellerT", bound=_Seller)


@dataclass(frozen=True)
class IopApp(Generic[SellerT]):
    """A simulated IOP application (Lazada, AliExpress) and the sellers that authorised it."""

    app_key: str
    app_secret: str
    sellers: tuple[SellerT, ...]

    def seller(self, alias: str) -> SellerT:
        for seller in self.sellers:
            if seller.alias == alias:
                return seller
        raise KeyError(alias)


@dataclass(frozen=True)
class Issued:
    """A token the simulator issued: whose it is and until when it works."""

    alias: str
    expires_at: float


def initial_tokens(sellers: tuple[Any, ...], started: float, ttls: tuple[float, float],
                   day: float = 86400.0) -> tuple[dict[str, Issued], dict[str, Issued]]:
    """Access and refresh tokens of the identities: each seller's access token has
    ``token_days_left`` when the simulator starts; its refresh token outlives it by the TTL gap."""
    tokens: dict[str, Issued] = {}
    refresh_tokens: dict[str, Issued] = {}
    for seller in sellers:
        expires = started + seller.token_days_left * day
        tokens[seller.access_token] = Issued(seller.alias, expires)
        refresh_tokens[seller.refresh_token] = Issued(seller.alias, expires - ttls[0] + ttls[1])
    return tokens, refresh_tokens


def rotate_refresh(params: Mapping[str, str], app: IopApp[Any], path: str, window: float, now: float,
                   tokens: dict[str, Issued], refresh_tokens: dict[str, Issued], prefix: str,
                   ttls: tuple[float, float]) -> web.Response | tuple[str, str, str]:
    """IOP's signed ``/auth/token/refresh``: the refresh token used dies (rotation is UNCONFIRMED
    upstream; the simulator rotates, the safe assumption). Returns (alias, access, refresh) or the
    error response."""
    error = check_system_params(params, app.app_key, app.app_secret, path, now, window)
    if error is not None:
        return iop_error(error)
    if not params.get("refresh_token"):
        return iop_error(missing("refresh_token"))
    grant = refresh_grant(params["refresh_token"], now, tokens, refresh_tokens, prefix, ttls)
    if grant is None:
        return iop_error(BAD_REFRESH)
    return grant.alias, grant.access_token, grant.refresh_token


def refresh_grant(refresh_token: str, now: float, tokens: dict[str, Issued], refresh_tokens: dict[str, Issued],
                  prefix: str, ttls: tuple[float, float]) -> Grant | None:
    """The rotation itself: the used refresh token dies, a new pair is issued (None: refused)."""
    used = refresh_tokens.pop(refresh_token, None)
    if used is None or now >= used.expires_at:
        return None
    access, refresh = f"{prefix}-access-{secrets.token_hex(12)}", f"{prefix}-refresh-{secrets.token_hex(12)}"
    remember(tokens, access, Issued(used.alias, now + ttls[0]))
    remember(refresh_tokens, refresh, Issued(used.alias, now + ttls[1]))
    return Grant(used.alias, access, refresh, now + ttls[0], now + ttls[1])


class HeldIopTokens:
    """The tokens production holds on an IOP platform (Lazada, AliExpress), for the demo's ERP
    stand-in (:class:`~marketplace_exporter.simulator.erp.HoldsTokens`)."""

    app: IopApp[Any]
    tokens: dict[str, Issued]
    refresh_tokens: dict[str, Issued]
    _clock: Callable[[], float]
    #: what a refresh issues: token prefix and (access, refresh) lifetimes
    token_prefix: str
    token_ttls: tuple[float, float]

    def held_aliases(self) -> tuple[str, ...]:
        return tuple(seller.alias for seller in self.app.sellers)

    def identity_grant(self, alias: str) -> Grant:
        """The identity's tokens as issued when the simulator started (:func:`initial_tokens`)."""
        seller = self.app.seller(alias)
        issued, refresh = self.tokens[seller.access_token], self.refresh_tokens.get(seller.refresh_token)
        return Grant(alias, seller.access_token, seller.refresh_token, issued.expires_at,
                     refresh.expires_at if refresh is not None else None)

    def refresh_grant(self, alias: str, refresh_token: str) -> Grant | None:
        return refresh_grant(refresh_token, self._clock(), self.tokens, self.refresh_tokens, self.token_prefix,
                             self.token_ttls)


#: the ban a ``throttle`` fault announces (real lengths UNCONFIRMED)
FAULT_BAN_S = 10


def fault_response(fault: str, status: int | None, refresh: bool) -> web.Response:
    """The IOP answer to an injected error fault (Lazada and AliExpress answer alike)."""
    if fault == "http_status":
        # no documented envelope belongs to a bare status: a gateway page, as a proxy would send
        return web.Response(status=status or 500, text=f"HTTP {status} (simulated gateway page)")
    if fault == "token_expired":
        return iop_error(BAD_REFRESH if refresh else ILLEGAL_TOKEN, status or 200)
    if fault == "permission_denied":
        return iop_error(NO_PERMISSION, status or 200)
    if fault == "throttle":
        return iop_error(("ApiCallLimit", "ISV", ban_text(FAULT_BAN_S)), status or 200)
    return iop_error(SERVER_ERROR, status or 500)


def missing(name: str) -> tuple[str, str, str]:
    """UNCONFIRMED code for a missing system parameter (the simulator's choice)."""
    return ("MissingParameter", "ISV", f"The input parameter '{name}' that is mandatory for processing "
            "this request is not supplied")


def ban_text(seconds: int) -> str:
    """Lazada's throttle message [OBS D11]; AliExpress returns the same IOP code [OBS E11]."""
    return f"Api access frequency exceeds the limit. this ban will last {seconds} seconds"


def request_id() -> str:
    return secrets.token_hex(13)


def json_response(body: Mapping[str, Any], status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def iop_error(error: tuple[str, str, str], status: int = 200) -> web.Response:
    """The IOP error envelope. HTTP status of errors is UNCONFIRMED upstream; the simulator answers
    200 unless told otherwise (a fault's ``value``, or 500 for server errors)."""
    code, error_type, message = error
    return json_response({"type": error_type, "code": code, "message": message,
                          "request_id": request_id()}, status)


async def request_params(request: web.Request) -> dict[str, str]:
    """Query parameters, then (for a form POST) body fields, which win. aiohttp caches the body, so
    ``identify`` and the handler can both call this."""
    params = dict(request.query)
    if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = await request.post()
        except ValueError:
            return params
        params.update({key: value for key, value in form.items() if isinstance(value, str)})
    return params


def check_system_params(
    params: Mapping[str, str], app_key: str, app_secret: str, api_path: str, now: float, window: float,
) -> tuple[str, str, str] | None:
    """The gateway's own checks, in order: required system parameters, app key, timestamp window,
    signature. Returns the error to answer, or None when the request may proceed."""
    for name in ("app_key", "timestamp", "sign_method", "sign"):
        if not params.get(name):
            return missing(name)
    if params["app_key"] != app_key:
        return BAD_APP_KEY
    when = parse_timestamp(params["timestamp"])
    if when is None or abs(when - now) > window:
        return BAD_TIMESTAMP
    if params["sign_method"] != SIGN_METHOD:
        return BAD_SIGNATURE  # only HMAC-SHA256 is simulated
    if not signature_matches(app_secret, params, params["sign"], api_path):
        return BAD_SIGNATURE
    return None
