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
import os
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from marketplace_exporter.config_types import AnonymousWrites

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
        header = request.headers.get("Authorization", "")
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
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise http_error(400, f"body is not valid UTF-8 JSON: {exc}") from None
    except RecursionError:  # "[[[[…" nested deeper than the parser's stack, still under max_bytes
        raise http_error(400, "body is not usable JSON: nested too deeply") from None


__all__ = ["WriteAuth", "http_error", "is_loopback", "json_error", "read_json_body"]
