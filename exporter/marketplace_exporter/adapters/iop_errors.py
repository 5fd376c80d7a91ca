"""The IOP error envelope, shared by Lazada and AliExpress: classification and the ban duration.

Facts (tags resolved in docs/marketplaces/sources.md): errors are ``{"code": "<non-zero>", "type": "SYSTEM" |
"ISV" | "ISP", "message", "request_id"}`` and success is ``code: "0"`` [D1][D2][E1]. ``type`` says
who is at fault: SYSTEM = the API platform, ISV = our request or business data, ISP = the backend
service [D10]. The HTTP status of error answers is UNCONFIRMED (the SDKs only read ``code`` [D1][D2]),
so the body decides whatever the status; the status only speaks when there is no envelope.

Codes are named only where a source names them; everything else is classified by ``type``
(ISV → client_error, ISP/SYSTEM → server_error, no type → client_error).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from marketplace_exporter.adapters.common import retry_after_seconds, short
from marketplace_exporter.catalogue import Reason
from marketplace_exporter.model import HttpResponse, ProbeOutcome

#: IOP codes a source names → reason
IOP_CODES: Mapping[str, Reason] = {
    # "The specified access token is invalid or expired" (ISV) [D6]; AliExpress: the same family,
    # exact code UNCONFIRMED [E1]
    "IllegalAccessToken": Reason.AUTH,
    # "Invalid authorization code" (ISP) [D6]: only on /auth/token/create, which we never call;
    # a dead credential all the same
    "InvalidCode": Reason.AUTH,
    # "... this ban will last N seconds" [OBS D11][OBS E11]
    "ApiCallLimit": Reason.THROTTLED,
    # "The request signature does not conform to platform standards" (ISV) [OBS E10][X4]
    "IncompleteSignature": Reason.CLIENT_ERROR,
}
_BY_TYPE: Mapping[str, Reason] = {"ISV": Reason.CLIENT_ERROR, "ISP": Reason.SERVER_ERROR,
                                  "SYSTEM": Reason.SERVER_ERROR}
#: "this ban will last 3 seconds" (Lazada [OBS D11]) and "This ban will last for 3 more seconds"
#: (TOP [OBS E11]); bounded digits so a hostile number cannot overflow
_BAN = re.compile(r"ban\s+will\s+last\s+(?:for\s+)?(\d{1,7})\s+(?:more\s+)?seconds?", re.IGNORECASE)
#: a ban longer than a day is not one we would wait for in one piece
_MAX_BAN_S = 86400.0
CODE_LIMIT = 64


def ban_seconds(text: str) -> float | None:
    """Seconds from a throttle message's "ban will last N seconds", else None."""
    match = _BAN.search(text[:4096])
    return min(float(match.group(1)), _MAX_BAN_S) if match else None


def permission_hint(*names: str) -> bool:
    """True when a code or sub-code names a permission problem. A heuristic, not a sourced code:
    TOP's sub-codes are ``isv.permission-*`` / ``isv.invalid-permission`` [X5]; no IOP permission
    code is documented, so any code spelling "permission" is read the same way."""
    return any("permission" in name.lower() for name in names)


def code_reason(code: str, error_type: str | None) -> Reason:
    """A non-zero IOP ``code`` (+ ``type``) → reason: named codes first, then the type."""
    if code in IOP_CODES:
        return IOP_CODES[code]
    if permission_hint(code):
        return Reason.PERMISSION
    return _BY_TYPE.get((error_type or "").upper(), Reason.CLIENT_ERROR)


def text_field(body: Mapping[str, object], *names: str) -> str:
    """The first of ``names`` that is a string in ``body`` (hostile bodies give "")."""
    for name in names:
        value = body.get(name)
        if isinstance(value, str):
            return value
    return ""


def code_text(value: object) -> str | None:
    """An error ``code`` as text: strings as-is, integers (TOP) in decimal; None for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**12:
        return str(value)
    return None


def is_zero(value: object) -> bool:
    """``code`` meaning success: "0" as the SDKs compare it [D1][D2] (or a bare 0)."""
    return value == "0" or (value == 0 and not isinstance(value, bool) and isinstance(value, int))


def judge_iop_error(response: HttpResponse, now: float, code: str, error_type: str | None,
                message: str, reason: Reason | None = None) -> ProbeOutcome:
    """What an error envelope says (a throttled probe's retry time: :func:`retry_after`)."""
    reason = reason or code_reason(code, error_type)
    label = short(code, CODE_LIMIT)
    return ProbeOutcome.failed(reason, f"{label}: {message}" if message else label, code=label,
                               http_status=response.status)


def retry_after(response: HttpResponse, outcome: ProbeOutcome, now: float) -> float | None:
    """A throttled IOP probe retries after the ban its message states, else after ``Retry-After``
    if the platform ever sends one (headers UNCONFIRMED)."""
    ban = ban_seconds(outcome.text)
    return ban if ban is not None else retry_after_seconds(response.header("retry-after"), now)

