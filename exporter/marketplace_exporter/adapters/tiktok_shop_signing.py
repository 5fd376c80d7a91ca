"""TikTok Shop Open API request signing, as pure functions ([G1] the SDK, [G7] the official guide).

The algorithm, step by step as the SDK implements it (``Client::prepareSignature`` [G1]):

1. take every query parameter except ``sign``, ``access_token`` and ``x-tts-access-token``;
2. sort them by key;
3. concatenate ``key + value`` for each (array values are skipped by the SDK);
4. put the request path in front (the API path only, never a base-URL prefix);
5. if the method is not GET and the content type is not multipart/form-data, append the raw body;
6. wrap the whole string with the app secret on both sides;
7. HMAC-SHA256 keyed with the app secret, lowercase hex.

The simulator verifies with these same functions, so a mistake here would be invisible to the
integration tests; the unit tests pin TikTok's own worked example from "Sign your API request"
[G7], the SDK's published vector [G1] and an independently computed POST-with-body digest.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence

#: never signed [G1]
EXCLUDED = frozenset({"sign", "access_token", "x-tts-access-token"})

ParamValue = str | int | Sequence[str]
Params = Mapping[str, ParamValue] | Iterable[tuple[str, ParamValue]]


def _pairs(params: Params) -> list[tuple[str, ParamValue]]:
    items = params.items() if isinstance(params, Mapping) else params
    return [(str(key), value) for key, value in items]


def base_string(app_secret: str, path: str, params: Params, *, method: str = "GET",
                body: bytes | str = b"", content_type: str | None = "application/json") -> str:
    """The string TikTok signs: ``secret + path + sorted key/value pairs [+ body] + secret`` [G1].

    ``path`` must be the API path (``/authorization/202309/shops``). A body is only signed for
    non-GET requests whose content type is not multipart/form-data; it is kept byte-exact (bytes
    that are not UTF-8 survive the round trip through ``surrogateescape``).
    """
    if not path.startswith("/") or "://" in path or "?" in path:
        raise ValueError("path must be the API path (starting with /), without host or query")
    signed = "".join(f"{key}{value}" for key, value in sorted(_pairs(params), key=lambda kv: kv[0])
                     if key not in EXCLUDED and isinstance(value, str | int) and not isinstance(value, bool))
    text = path + signed
    if method.upper() != "GET" and "multipart/form-data" not in (content_type or "").lower():
        raw = body if isinstance(body, bytes) else body.encode()
        text += raw.decode("utf-8", errors="surrogateescape")
    return f"{app_secret}{text}{app_secret}"


def hmac_sha256_hex(key: str, message: str) -> str:
    """HMAC-SHA256 of ``message`` keyed with ``key``, lowercase hex [G1]."""
    return hmac.new(key.encode(), message.encode("utf-8", errors="surrogateescape"),
                    hashlib.sha256).hexdigest()


def sign(app_secret: str, path: str, params: Params, *, method: str = "GET",
         body: bytes | str = b"", content_type: str | None = "application/json") -> str:
    """The ``sign`` query parameter for a request [G1]."""
    return hmac_sha256_hex(app_secret, base_string(app_secret, path, params, method=method, body=body,
                                                   content_type=content_type))
