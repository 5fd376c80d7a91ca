"""What every write API on the exporter (deploy markers, the verify gate, traffic reports, OTLP)
does the same way: Bearer authentication with one anonymous policy, a size-capped JSON body, and
JSON errors.

Errors are JSON ``{"error": "..."}`` with the status a client can act on: 401 (no/wrong token, with
``WWW-Authenticate``), 403 (anonymous from a non-loopback address under ``loopback``), 413 (body too
large), 400 (not JSON), 503 (no token configured and anonymous writes are off: a misconfiguration,
not the caller's fault). The token's value never appears in a response or a log line.

The policy (:data:`~marketplace_exporter.config_types.AnonymousWrites`):

* ``never``: a token is required; without one configured every call is a 503.
* ``loopback``: while no token is configured, calls from 127.0.0.1/::1 need none (a one-box demo
  or a sidecar); once one is set it is required from everyone.
* ``always``: calls without an ``Authorization`` header pass (a trusted network); a wrong token
  is still refused.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import math
import os
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from marketplace_exporter.config_types import AnonymousWrites
from marketplace_exporter.webserver.marks import WEB_USER

_CHALLENGE = 'Bearer realm="marketplace-exporter"'


@dataclass(frozen=True)
class WriteAuth:
    """Who may call one write API: the variable holding its token and the anonymous policy.
    ``api`` names the API in messages (``deploy API``, ``traffic API``)."""


    token_env: str
    anonymous: AnonymousWrites
    api: str
    #: the config section that sets it (``deploys``, ``traffic``), named in warnings
    section: str

    def check(self, request: web.Request) -> None:
        """Raise a 401/403/503 JSON error unless the request may write. The variable is read on
        every request, so rotating the token needs no restart."""
        # a token pasted from a file or a Kubernetes secret often ends in a newline: never part of it
        expected = os.environ.get(self.token_env, "").strip()
        header = authorization_header(request)
        if request.get(WEB_USER):  # Basic auth of the web config (--web.config.file): anonymous here
            header = ""
        scheme, _, given = header.partition(" ")
        anonymous = self.anonymous == "always"
        if self.anonymous == "loopback" and not expected:
            if not is_loopback(request.remote):
                raise http_error(403, f"anonymous {self.api} calls are accepted from 127.0.0.1 only; set "
                                      f"{self.token_env} on the exporter and send it as a Bearer token")
            anonymous = True
        if not expected:
            if anonymous:
                return
            raise http_error(503, f"no API token configured: set the environment variable {self.token_env} "
                                  "on the exporter (or enable anonymous writes explicitly)")
        if scheme.lower() != "bearer" or not given:
            if anonymous and not header:
                return
            raise http_error(401, "missing Bearer token", {"WWW-Authenticate": _CHALLENGE})
        if not hmac.compare_digest(given.strip().encode(), expected.encode()):
            raise http_error(401, "invalid Bearer token",
                             {"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'})

    def startup_warning(self, routes: str, writes: str) -> str | None:
        """What will not work (or is open) because no token is set, said at start rather than at
        the first call; None when a token is set. ``routes``: e.g. ``POST/GET /api/v1/deploys``;
        ``writes``: what anonymous callers send (``markers``)."""
        if os.environ.get(self.token_env):
            return None
        if self.anonymous == "never":
            return f"{self.api}: {self.token_env} is not set, so {routes} answer 503 until it is"
        where = "127.0.0.1/::1 only" if self.anonymous == "loopback" else "anywhere"
        return (f"{self.api}: {self.token_env} is not set; anonymous {writes} accepted from {where} "
                f"({self.section}.anonymous_writes: {self.anonymous})")


def authorization_header(request: web.Request) -> str:
    """The ``Authorization`` header, or a 400 when it is not UTF-8 text.

    aiohttp hands undecodable header bytes over as lone surrogates; comparing them with a token
    (``.encode()``) raised ``UnicodeEncodeError``, a 500 and a traceback on f014b6e. No token can
    ever match such a header, so it is the client's error: 400 (Alertmanager does not retry a 4xx).
    """
    header = request.headers.get("Authorization", "")
    if not _is_text(header):
        raise http_error(400, "the Authorization header is not UTF-8 text")
    return header


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def json_error(status: int, message: str, **extra: Any) -> web.Response:
    """A JSON error response (``extra`` adds fields such as ``field`` for validation errors)."""
    return web.json_response({"error": message, **extra}, status=status)


_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 403: web.HTTPForbidden,
    415: web.HTTPUnsupportedMediaType, 503: web.HTTPServiceUnavailable,
}


def http_error(status: int, message: str, headers: dict[str, str] | None = None,
               **extra: Any) -> web.HTTPException:
    """A JSON error to raise from a handler."""
    body = json.dumps({"error": message, **extra})
    if status == 413:
        return web.HTTPRequestEntityTooLarge(max_size=0, actual_size=0, text=body,
                                             content_type="application/json", headers=headers)
    return _ERRORS[status](text=body, content_type="application/json", headers=headers)


async def read_json_body(request: web.Request, max_bytes: int) -> Any:
    """The request's JSON body, refusing anything over ``max_bytes`` before reading it all.

    Reads in chunks so a client lying in Content-Length (or sending chunked data) cannot make the
    server buffer more than ``max_bytes + 1`` bytes.
    """
    if request.content_length is not None and request.content_length > max_bytes:
        raise http_error(413, f"body is {request.content_length} bytes; the limit is {max_bytes}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise http_error(413, f"body exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        text = raw.decode("utf-8")
        data = strict_json_loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise http_error(400, f"body is not valid UTF-8 JSON: {exc}") from None
    except RecursionError:  # "[[[[…" nested deeper than the parser's stack, still under max_bytes
        raise http_error(400, "body is not usable JSON: nested too deeply") from None
    except ValueError as exc:  # an integer over 4,300 digits (a 500 on f014b6e), NaN, 1e999
        raise http_error(400, f"body is not usable JSON: {str(exc).split(';')[0]}") from None
    if any(escape in text for escape in _SURROGATE_ESCAPES) and not _all_text(data):
        raise http_error(400, "body is not usable JSON: a string holds a lone UTF-16 surrogate (\\ud800-\\udfff), "
                              "which is not text")
    return data


#: JSON's escapes of UTF-16 surrogates; only with one can a decoded string hold an unpaired half
#: (searched as is: lower-casing a 4 MB traffic batch would cost more than the check)
_SURROGATE_ESCAPES = ("\\ud", "\\uD")


def strict_json_loads(text: str) -> Any:
    """``json.loads`` for JSON as written: NaN, Infinity and numbers out of a float's range are a
    ``ValueError`` (Python's reader would accept them), as are integers over 4,300 digits."""
    return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)


def _no_constant(name: str) -> Any:
    """Python's json reads NaN, Infinity and -Infinity, which JSON does not have."""
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is out of range for a number")
    return value


def _all_text(value: Any) -> bool:
    """Every string (keys too) is encodable: a lone surrogate cannot be stored in SQLite, sent to a
    chat robot or shown on a page."""
    if isinstance(value, str):
        return _is_text(value)
    if isinstance(value, list):
        return all(_all_text(item) for item in value)
    if isinstance(value, dict):
        return all(_is_text(key) and _all_text(item) for key, item in value.items())
    return True


__all__ = ["WriteAuth", "authorization_header", "http_error", "is_loopback", "json_error", "read_json_body",
           "strict_json_loads"]
