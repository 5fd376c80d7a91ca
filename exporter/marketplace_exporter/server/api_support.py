"""What every write API on the exporter (deploy markers, traffic records) does the same way:
Bearer authentication against a token read from the environment, and a size-capped JSON body.

Errors are JSON ``{"error": "..."}`` with the status a client can act on: 401 (no/wrong token, with
``WWW-Authenticate``), 413 (body too large), 400 (not JSON), 503 (the server has no token configured
and anonymous writes are off: a misconfiguration, not the caller's fault). The token's value never
appears in a response or a log line.
"""

from __future__ import annotations

import hmac
import json
import os
from typing import Any

from aiohttp import web

from marketplace_exporter.api_defaults import DEFAULT_TOKEN_ENV


def json_error(status: int, message: str, **extra: Any) -> web.Response:
    """A JSON error response (``extra`` adds fields such as ``field`` for validation errors)."""
    return web.json_response({"error": message, **extra}, status=status)


def _http_error(status: int, message: str, headers: dict[str, str] | None,
                extra: dict[str, Any]) -> web.HTTPException:
    classes: dict[int, type[web.HTTPException]] = {
        400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 413: web.HTTPRequestEntityTooLarge,
        415: web.HTTPUnsupportedMediaType, 503: web.HTTPServiceUnavailable,
    }
    body = json.dumps({"error": message, **extra})
    if status == 413:
        return web.HTTPRequestEntityTooLarge(max_size=0, actual_size=0, text=body,
                                             content_type="application/json", headers=headers)
    return classes[status](text=body, content_type="application/json", headers=headers)


def check_bearer(request: web.Request, token_env: str, *, allow_anonymous: bool = False) -> None:
    """Raise a 401/503 JSON error unless the request carries ``Authorization: Bearer <token>``
    matching the value of environment variable ``token_env`` (compared in constant time).

    The variable is read on every request, so rotating the token needs no restart. With
    ``allow_anonymous`` (an explicit config choice) a request without a token is let through.
    """
    # a token pasted from a file or a Kubernetes secret often ends in a newline: never part of it
    expected = os.environ.get(token_env, "").strip()
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if not expected:
        if allow_anonymous:
            return
        raise _http_error(503, f"no API token configured: set the environment variable {token_env} "
                               "on the exporter (or enable anonymous writes explicitly)", None, {})
    if scheme.lower() != "bearer" or not given:
        if allow_anonymous and not header:
            return
        raise _http_error(401, "missing Bearer token", {"WWW-Authenticate": 'Bearer realm="marketplace-exporter"'}, {})
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise _http_error(401, "invalid Bearer token",
                          {"WWW-Authenticate": 'Bearer realm="marketplace-exporter", error="invalid_token"'}, {})


async def read_json_body(request: web.Request, max_bytes: int) -> Any:
    """The request's JSON body, refusing anything over ``max_bytes`` before reading it all.

    Reads in chunks so a client lying in Content-Length (or sending chunked data) cannot make the
    server buffer more than ``max_bytes + 1`` bytes.
    """
    if request.content_length is not None and request.content_length > max_bytes:
        raise _http_error(413, f"body is {request.content_length} bytes; the limit is {max_bytes}", None, {})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise _http_error(413, f"body exceeds the limit of {max_bytes} bytes", None, {})
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _http_error(400, f"body is not valid UTF-8 JSON: {exc}", None, {}) from None
    except RecursionError:  # "[[[[…" nested deeper than the parser's stack, still under max_bytes
        raise _http_error(400, "body is not usable JSON: nested too deeply", None, {}) from None


__all__ = ["DEFAULT_TOKEN_ENV", "check_bearer", "json_error", "read_json_body"]
