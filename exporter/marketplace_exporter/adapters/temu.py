"""Temu Open Platform: one signed ``bg.open.accesstoken.info.get`` on the shop's regional router.

Facts and source tags: docs/marketplaces/temu.md (tags resolve in docs/marketplaces/sources.md).

* One call answers token validity, the authorisation's expiry (``expiredTime``) and the granted
  APIs (``apiScopeList``) [J1 ref/02]. ``expiredTime`` is when the seller's authorisation of the app
  ends [J1 dg/07]: exported as ``credential="authorization"``.
* No refresh exists to break [J1 dg/07, ref/00]; renewal is a new authorisation. The credentials
  hold the token the seller shared (``access_token`` or ``token_file``), never a refresh token.
* Every call is MD5-signed (``temu_signing``) and must come from an IP declared on the app
  [J1 dg/09]; others get ``5000003`` (``permission``).
* ``errorCode`` decides whatever the HTTP status (statuses are UNCONFIRMED; Temu documents body
  codes only [J1 dg/15]). A bad sign (``3000001``) is checked first and hides the token's state
  [J1 sop-3000001]: its own code label lets an alert name it.
* The limit is 20 rps per app_key, shared by every seller of the app and by production [J1 dg/14]:
  nothing is modelled (a model from our own spend would say "plenty"); intervals stay long.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import Field

from marketplace_exporter.adapters.base import (
    Marketplace,
    ProbeContext,
    ProbeSteps,
    StrictModel,
    json_or_none,
)
from marketplace_exporter.adapters.common import by_status, finite_number
from marketplace_exporter.adapters.grants import GrantName, drift, granted_names
from marketplace_exporter.adapters.routes import host_of, routes
from marketplace_exporter.adapters.temu_signing import request_body
from marketplace_exporter.catalogue import Credential, Reason, Step
from marketplace_exporter.credentials import HeldTokenCredentials
from marketplace_exporter.model import CredentialObservation, HttpResponse, Operation, ProbeOutcome, RequestSpec
from marketplace_exporter.secrets import Secret

#: the regional routers [J1 dg/11]; the site picks one
ROUTERS: Mapping[str, str] = {"US": "https://openapi-b-us.temu.com", "EU": "https://openapi-b-eu.temu.com",
                              "GLOBAL": "https://openapi-b-global.temu.com"}
ROUTER_PATH = "/openapi/router"
INFO_TYPE = "bg.open.accesstoken.info.get"  # [J1 ref/02]
#: the documented routers plus the CN and PA gateways third-party clients use [SDK J4][OBS J6]
API_HOSTS = frozenset({host_of(url) for url in ROUTERS.values()}
                      | {"openapi.kuajingmaihuo.com", "openapi-b-partner.temu.com"})
#: every production call goes to the router and names its API in the request body, which the
#: traffic hooks never read: one operation label for all of them
ROUTES = routes((ROUTER_PATH, "router"))

SUCCESS_CODE = 1000000
# errorCode → reason [J1 dg/15] (7000xxx: CN-gateway family, third-party only [SDK J4], UNCONFIRMED)
_AUTH = (3000030, 3000031, 3000033, 3000034, 7000003, 7000018, 7000020, 7000006)
_PERMISSION = (3000032, 3000021, 3000027, 3000022, 3000028, 5000000, 5000003)
_THROTTLED = (4000004,)
_SERVER = (4000000, 7000000, 6000001)
_CLIENT = (3000001, 3000002, 3000003, 3000004, 3000010, 3000011, 3000012, 3000013, 3000014, 3000019, 3000020,
           3000025, 3000026, 3000040, 2000000, 5000002, 7000015, 7000002, 7000016, 110020001, 110020002,
           110020003)
CODE_REASONS: Mapping[int, Reason] = {
    code: reason for codes, reason in ((_AUTH, Reason.AUTH), (_PERMISSION, Reason.PERMISSION),
                                       (_THROTTLED, Reason.THROTTLED), (_SERVER, Reason.SERVER_ERROR),
                                       (_CLIENT, Reason.CLIENT_ERROR))
    for code in codes}
KNOWN_CODES = frozenset(str(code) for code in CODE_REASONS)
_MAX_UNIX_SECONDS = 1e11

Text = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[\x21-\x7e]+$")]


class TemuCredentials(HeldTokenCredentials):
    """The app's key and secret (every call is signed [J1 dg/13]) and the access token the seller
    shared. Temu has no refresh flow [J1 dg/07]: a re-authorisation gives a new token (point
    ``access_token`` at a file, or use ``token_file``, and the ERP's update is picked up)."""

    why_no_refresh: ClassVar[str] = (
        "Temu has no refresh flow: a seller re-authorises the app and shares a new access token")

    app_key: Text
    app_secret: Secret


class TemuParams(StrictModel):
    """API types (``bg.order.list.v2.get``, …) the seller's systems need: one missing from the
    token's ``apiScopeList`` fails the check with ``permission``."""

    required_scopes: tuple[GrantName, ...] = ()


class Temu(Marketplace[TemuCredentials, TemuParams]):
    """Temu health: the token's own record (mall, expiry, granted APIs) in one signed call."""

    name = "temu"
    Credentials = TemuCredentials
    Params = TemuParams
    sites = frozenset(ROUTERS)
    operations = {
        # 20 rps per app_key, shared by every mall of the app and production [J1 dg/14]: not modelled
        "accesstoken_info": Operation("accesstoken_info", f"POST {ROUTER_PATH} type={INFO_TYPE}",
                                      limit_source="J1",
                                      default_interval_seconds=600.0),
    }
    known_codes = KNOWN_CODES
    hosts = API_HOSTS
    routes = ROUTES
    #: the probe's operation is a traffic label value like every adapter's, although production
    #: calls of that API are labelled ``router`` (their API is named in the body, never read)
    api_operations = frozenset({"router", "accesstoken_info"})

    def steps(self, ctx: ProbeContext[TemuCredentials, TemuParams]) -> ProbeSteps:
        creds = ctx.credentials
        request = build_request(ctx, creds.app_secret.reveal(), creds.held_token().access_token)
        response = yield request
        return read(response, ctx.now, ctx.params.required_scopes)

    def judge(self, operation: str, response: HttpResponse, body: Mapping[str, Any] | None,
              now: float) -> ProbeOutcome | None:
        return judge(response, body, now)


def router_url(ctx: ProbeContext[TemuCredentials, TemuParams]) -> str:
    """``base_url`` + the router path (simulator, CN/PA gateways), else the site's router [J1 dg/11].
    Temu's test shops run on the production routers [J1 dg/07], so ``sandbox`` changes nothing."""
    host = ctx.base_url.rstrip("/") if ctx.base_url else ROUTERS[ctx.site]
    return host + ROUTER_PATH


def build_request(ctx: ProbeContext[TemuCredentials, TemuParams], app_secret: str, token: str) -> RequestSpec:
    """POST, JSON body with every parameter and its MD5 ``sign``, sent exactly as signed [J1 dg/11-13]."""
    params: dict[str, object] = {"type": INFO_TYPE, "app_key": ctx.credentials.app_key,
                                 "timestamp": int(ctx.now), "data_type": "JSON", "access_token": token}
    return RequestSpec(method="POST", url=router_url(ctx), body=request_body(app_secret, params),
                       headers=(("content-type", "application/json"), ("accept", "application/json")),
                       step=Step.CALL, sensitive=frozenset({"access_token", "sign"}))


def error_code(body: Mapping[str, Any] | None) -> int | None:
    value = body.get("errorCode") if body is not None else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**12 else None


def judge(response: HttpResponse, body: Mapping[str, Any] | None, now: float) -> ProbeOutcome | None:
    """What a Temu answer means when it is a failure (None: success true, 1000000, a 2xx). Shared by
    probes and production traffic."""
    status = response.status
    code = error_code(body)
    if code is None:
        return by_status(response, "no Temu envelope", now, every_status=False)
    assert body is not None
    if code == SUCCESS_CODE:
        if body.get("success") is True and 200 <= status <= 299:
            return None
        return by_status(response, "errorCode 1000000 without success", now, every_status=False)
    reason = CODE_REASONS.get(code)
    if reason is None:
        reason = (Reason.THROTTLED if status == 429 else Reason.SERVER_ERROR if 500 <= status <= 599
                  else Reason.CLIENT_ERROR)
    message = body.get("errorMsg")
    text = f"{code}: {message}" if isinstance(message, str) and message else str(code)
    if code == 3000001:
        text += " (the sign is checked first: the token's state is unknown)"  # [J1 sop-3000001]
    return ProbeOutcome.failed(reason, text, code=str(code), http_status=status)


def read(response: HttpResponse, now: float, required: tuple[str, ...]) -> ProbeOutcome:
    """The probe's reading: the shared judgement, then the token record [J1 ref/02]."""
    body = json_or_none(response.body)
    failure = judge(response, body, now)
    if failure is not None:
        return failure
    assert body is not None
    result = body.get("result")
    scopes = granted_names(result.get("apiScopeList")) if isinstance(result, dict) else None
    if not isinstance(result, dict) or scopes is None:
        return ProbeOutcome.failed(Reason.INVALID_RESPONSE, "success without result.apiScopeList",
                                   http_status=response.status)
    expires = finite_number(result.get("expiredTime"))
    observed = ((CredentialObservation(Credential.AUTHORIZATION, expires),)
                if expires is not None and 0 < expires < _MAX_UNIX_SECONDS else ())
    outcome = drift(scopes, required, status=response.status, what="Temu APIs", count_name="api_scopes",
                    missing_name="required_scopes_missing", message=f"token valid; {len(scopes)} APIs granted")
    return outcome.amended(credentials=observed)
