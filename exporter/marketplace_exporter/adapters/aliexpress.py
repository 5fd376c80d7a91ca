"""AliExpress Open Platform (new IOP gateway): one signed business call on ``/sync`` with the access
token production already holds.

Facts and source tags (resolved in docs/marketplaces/sources.md): [E1] IOP SDK, [E3] HTTP
request sample, [E8] official signature vector, [E9] the Python SDK's constants, [E11] throttling in
third-party code, [X…] sources read while building it.

* One global gateway ``https://api-sg.aliexpress.com``: business APIs on ``/sync`` addressed by
  ``method=`` (signed without a path prefix, ``method`` itself signed), path-style system APIs on
  ``/rest/<path>`` (signed with the path) [E1][E3]. The only path-style APIs named are token
  create/refresh, which the exporter never calls: whether a refresh rotates is UNCONFIRMED, so it
  is treated as rotating (:class:`~marketplace_exporter.credentials.HeldTokenCredentials`).
* The health probe is UNCONFIRMED in the fact sheet. Default: ``aliexpress.solution.merchant.profile.get``,
  "API for oversea sellers to obtain the normal information, e.g. store id, registration country
  code" — read-only, no parameters, a seller token [X3]. ``params.method`` swaps in another read-only
  business API if the app lacks that permission.
* The token parameter: the official Python SDK names it ``session`` [E9] while the official vector
  signs ``access_token`` [E8]. We send ``session``, as the official SDK does;
  ``params.token_param: access_token`` switches. Which one the gateway prefers is UNCONFIRMED.
* Errors arrive in the IOP envelope like Lazada's [E1] or, from bridged legacy APIs, as TOP's
  ``error_response{code,msg,sub_code,sub_msg}`` [OBS E11]; the body decides whatever the status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlencode

from pydantic import Field

from marketplace_exporter.adapters.base import Marketplace, ProbeContext, ProbeSteps, StrictModel, json_or_none
from marketplace_exporter.adapters.common import by_status, pick_host, short
from marketplace_exporter.adapters.iop_errors import (
    IOP_CODES,
    code_text,
    is_zero,
    judge_iop_error,
    permission_hint,
    text_field,
)
from marketplace_exporter.adapters.iop_errors import retry_after as iop_retry_after
from marketplace_exporter.adapters.iop_signing import SIGN_METHOD, iop_prefix, sign, timestamp_ms
from marketplace_exporter.adapters.routes import (
    OTHER_OPERATION,
    RouteMatch,
    host_of,
    match_path,
    route_operations,
    routes,
)
from marketplace_exporter.catalogue import Reason, Step
from marketplace_exporter.credentials import HeldTokenCredentials
from marketplace_exporter.model import HttpResponse, Operation, ProbeOutcome, RequestSpec
from marketplace_exporter.secrets import Secret

HOST = "https://api-sg.aliexpress.com"  # [E1][E3]; sandbox host UNCONFIRMED
SYNC_PATH = "/sync"
#: one gateway for every seller: the site is a single label value
SITES = frozenset({"GLOBAL"})
DEFAULT_METHOD = "aliexpress.solution.merchant.profile.get"  # [X3], UNCONFIRMED as a health probe
AppKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]
MethodName = Annotated[str, Field(pattern=r"^aliexpress(\.[a-z0-9_]{1,64}){2,8}$")]

#: legacy TOP ``error_response.code`` values → reason. 7 "App Call Limited" [OBS E11]; 11
#: "Insufficient isv permissions" and 27 "Invalid session" are observed beyond the fact sheet [X5]
TOP_CODES: Mapping[str, Reason] = {"7": Reason.THROTTLED, "11": Reason.PERMISSION, "27": Reason.AUTH}
KNOWN_CODES = frozenset(IOP_CODES) | frozenset(TOP_CODES)
#: business APIs named in traffic labels (``method=`` on ``/sync``): the probe's own and the
#: order-sync calls [X3]; other methods are ``other``. The method is read from the query string in
#: the seller's process; a method sent only in a POST form body is not seen (``other``).
SYNC_METHODS: Mapping[str, str] = {
    DEFAULT_METHOD: "merchant_profile",
    "aliexpress.trade.seller.orderlist.get": "trade.seller_orderlist_get",
    "aliexpress.trade.new.redefining.findorderbyid": "trade.findorderbyid",
    "aliexpress.solution.order.get": "solution.order_get",
    "aliexpress.solution.order.info.get": "solution.order_info_get",
    "aliexpress.solution.product.list.get": "solution.product_list_get",
    "aliexpress.solution.batch.product.inventory.update": "solution.product_inventory_update",
    "aliexpress.logistics.sellershipmentfortop": "logistics.sellershipment",
}
#: path-style system APIs on ``/rest`` [E1]
ROUTES = routes(("/rest/auth/token/create", "auth.token_create"),
                ("/rest/auth/token/refresh", "auth.token_refresh"))


class AliExpressCredentials(HeldTokenCredentials):
    """App credentials plus the seller's *current* access token, as production holds it (rotation
    on refresh is UNCONFIRMED, so no refresh token is accepted)."""

    app_key: AppKey
    app_secret: Secret


class AliExpressParams(StrictModel):
    """Which business API the health probe calls, and the name of the token parameter."""

    #: a read-only business API (``method=``); the default is UNCONFIRMED as a health probe
    method: MethodName = DEFAULT_METHOD
    #: ``session`` as the official SDK sends it [E9], or ``access_token`` as the official vector [E8]
    token_param: Literal["session", "access_token"] = "session"


class AliExpress(Marketplace[AliExpressCredentials, AliExpressParams]):
    """AliExpress health: one signed ``/sync`` business call (merchant profile by default)."""

    name = "aliexpress"
    Credentials = AliExpressCredentials
    Params = AliExpressParams
    sites = SITES
    operations = {
        # quotas UNCONFIRMED [E1]: no budget modelled; a 5-minute interval is 288 calls/day
        "merchant_profile": Operation(
            "merchant_profile", f"POST /sync method={DEFAULT_METHOD} (or params.method; UNCONFIRMED probe)",
            limit_source="UNCONFIRMED", default_interval_seconds=300.0),
    }
    known_codes = KNOWN_CODES
    hosts = frozenset({host_of(HOST)})
    routes = ROUTES
    api_operations = frozenset(SYNC_METHODS.values()) | route_operations(ROUTES)

    def match(self, host: str | None, path: str, query: str = "") -> RouteMatch | None:
        """Business APIs share ``/sync``: the ``method=`` of the query string names the operation."""
        if host is not None and host not in self.hosts:
            return None
        if path.rstrip("/").endswith(SYNC_PATH):
            method = next((value for name, value in parse_qsl(query[:4096]) if name == "method"), "")
            return RouteMatch(SYNC_METHODS.get(method, OTHER_OPERATION))
        return match_path(ROUTES, path)

    def steps(self, ctx: ProbeContext[AliExpressCredentials, AliExpressParams]) -> ProbeSteps:
        creds, params = ctx.credentials, ctx.params
        response = yield build_request(host(ctx), creds.app_key, creds.app_secret.reveal(),
                                       creds.held_token().access_token, params, ctx.now)
        return read(response, ctx.now, params.method)

    def retry_after(self, response: HttpResponse, outcome: ProbeOutcome, now: float) -> float | None:
        return iop_retry_after(response, outcome, now)

    def judge(self, operation: str, response: HttpResponse, body: Mapping[str, Any] | None,
              now: float) -> ProbeOutcome | None:
        """TOP ``error_response`` or a non-zero IOP ``code`` fail, even under HTTP 200."""
        return judge(response, body, now)


def host(ctx: ProbeContext[AliExpressCredentials, AliExpressParams]) -> str:
    """``ctx.base_url`` verbatim (simulator: ``http://127.0.0.1:9763/aliexpress``), else the global
    gateway. ``sandbox`` changes nothing: no sandbox host is known (UNCONFIRMED)."""
    return pick_host(ctx, HOST)


def build_request(base: str, app_key: str, app_secret: str, token: str, params: AliExpressParams,
                  now: float) -> RequestSpec:
    """POST to ``/sync`` with the parameters as a form body, as the official SDKs do (the generated
    Java class declares POST for the merchant profile [X3]; the Python SDK posts ``data=`` [E1]).
    ``format=json`` and ``simplify=false`` are sent and signed like the SDK does, so the answer's
    shape does not depend on a gateway default."""
    fields = {"app_key": app_key, "method": params.method, "sign_method": SIGN_METHOD,
              "timestamp": timestamp_ms(now), params.token_param: token,
              "format": "json", "simplify": "false"}
    # business API: iop_prefix(method) is "" — nothing prefixed, ``method`` signed [E1][E8]
    fields["sign"] = sign(app_secret, fields, iop_prefix(params.method))
    body = urlencode(fields).encode()
    return RequestSpec(method="POST", url=base + SYNC_PATH, body=body,
                       headers=(("content-type", "application/x-www-form-urlencoded;charset=utf-8"),
                                ("accept", "application/json")),
                       step=Step.CALL, sensitive=frozenset({"session", "access_token", "sign"}))


def read(response: HttpResponse, now: float, method: str) -> ProbeOutcome:
    """The probe's reading: TOP ``error_response`` first, then the IOP ``code``, then the method's
    ``<name>_response``."""
    body = json_or_none(response.body)
    failure = judge(response, body, now, method)
    if failure is not None:
        return failure
    assert body is not None
    wrapper = body.get(method.replace(".", "_") + "_response")
    return _success(wrapper if isinstance(wrapper, dict) else {}, response.status, method)


def judge(response: HttpResponse, body: Mapping[str, Any] | None, now: float,
          method: str | None = None) -> ProbeOutcome | None:
    """What an AliExpress answer means when it is a failure, or None for a success. ``method`` None
    (production traffic: the method is not known for sure) skips the ``<method>_response`` check."""
    status = response.status
    if body is None:
        return by_status(response, "no AliExpress envelope", now)
    legacy = body.get("error_response")
    if isinstance(legacy, dict):
        return _judge_error_response(response, now, legacy)
    raw = body.get("code")
    if "code" in body and not is_zero(raw):
        code = code_text(raw)
        if not code:
            return by_status(response, "code is not a string", now)
        error_type = body.get("type")
        return judge_iop_error(response, now, code, error_type if isinstance(error_type, str) else None,
                           text_field(body, "message", "msg"))
    if method is not None:
        wrapper = body.get(method.replace(".", "_") + "_response")
        if not isinstance(wrapper, dict) and not is_zero(raw):
            return by_status(response, f"no {method} response object", now)
    if not 200 <= status <= 299:
        return by_status(response, "success body with a failing status", now)
    return None


def _judge_error_response(response: HttpResponse, now: float, error: Mapping[str, Any]) -> ProbeOutcome:
    """``error_response``: TOP's numeric code with ``msg``/``sub_code``/``sub_msg`` [OBS E11], or an IOP
    string code with ``type`` in the same wrapper. The ban duration is in ``sub_msg``."""
    code = code_text(error.get("code"))
    if not code:
        return by_status(response, "error_response without a code", now)
    sub_code = text_field(error, "sub_code")
    message = " ".join(part for part in (text_field(error, "msg", "message"), sub_code,
                                         text_field(error, "sub_msg")) if part)
    if code.isdigit():
        reason = TOP_CODES.get(code)
        if reason is None:
            # TOP sub-code families: accesscontrol.* = throttling [OBS E11], isp.* = backend,
            # isv.* = our request [X5]; a "permission" sub-code is read as permission
            if sub_code.startswith("accesscontrol."):
                reason = Reason.THROTTLED
            elif permission_hint(sub_code):
                reason = Reason.PERMISSION
            elif sub_code.startswith("isp."):
                reason = Reason.SERVER_ERROR
            else:
                reason = Reason.CLIENT_ERROR
        return judge_iop_error(response, now, code, None, message, reason)
    error_type = error.get("type")
    return judge_iop_error(response, now, code, error_type if isinstance(error_type, str) else None, message)


def _success(fields: Mapping[str, Any], status: int, method: str) -> ProbeOutcome:
    """The merchant profile carries ``product_posting_forbidden`` [X3]: exported, not judged (the API
    worked; alerting on a seller who cannot post is a rule decision)."""
    forbidden = fields.get("product_posting_forbidden")
    if method == DEFAULT_METHOD and isinstance(forbidden, bool):
        return ProbeOutcome.ok(status, message="merchant profile returned",
                               values=(("product_posting_forbidden", 1.0 if forbidden else 0.0),))
    return ProbeOutcome.ok(status, message=short(f"{method} answered", 100))
