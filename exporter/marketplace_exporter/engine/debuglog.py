"""The ``/probe?debug=true`` log: what was sent and what came back, with every secret removed.

Two layers: names an adapter marks sensitive (``access_token``, ``sign``, ``x-amz-access-token``...)
are printed as ``<redacted>`` structurally, then every line passes through the process-wide
:data:`~marketplace_exporter.secrets.REDACTOR`, which knows every secret value revealed so far
(configured ones and tokens the engine minted). Bodies are cut to a short excerpt.
"""

from __future__ import annotations

import re

from marketplace_exporter.model import HttpResponse, RequestSpec
from marketplace_exporter.secrets import REDACTED, REDACTOR

BODY_EXCERPT = 512
_ALWAYS_SENSITIVE = frozenset({"authorization", "cookie", "set-cookie", "proxy-authorization"})
#: JSON fields that carry credentials in token responses (LWA, OAuth, Shopee): the response is
#: logged before the adapter has read (and registered) the token, so redact them by name
_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://)[^/?#@]*@", re.IGNORECASE)
_JSON_SECRET = re.compile(
    r'("(?:access_token|refresh_token|id_token|client_secret|restrictedDataToken|password)"\s*:\s*)"[^"]*"?')


class DebugLog:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.lines: list[str] = []

    def add(self, text: str) -> None:
        if self.enabled:
            self.lines.append(REDACTOR.redact(text))

    def request(self, request: RequestSpec) -> None:
        if not self.enabled:
            return
        sensitive = {name.lower() for name in request.sensitive} | _ALWAYS_SENSITIVE
        query = "&".join(f"{k}={REDACTED if k.lower() in sensitive else v}" for k, v in request.query)
        url = _USERINFO.sub(rf"\1{REDACTED}@", request.url)  # config refuses one; never print it anyway
        self.add(f"> [{request.step}] {request.method} {url}{'?' + query if query else ''}")
        for name, value in request.headers:
            self.add(f">   {name}: {REDACTED if name.lower() in sensitive else value}")
        if request.body:
            self.add(f">   body: {_excerpt(request.body, sensitive)}")

    def response(self, response: HttpResponse, seconds: float) -> None:
        if not self.enabled:
            return
        self.add(f"< {response.status} in {seconds * 1000:.1f} ms, {len(response.body)} bytes")
        for name, value in sorted(response.headers.items()):
            self.add(f"<   {name}: {REDACTED if name in _ALWAYS_SENSITIVE else value}")
        if response.body:
            self.add(f"<   body: {_excerpt(response.body, frozenset())}")


def _excerpt(body: bytes, sensitive: set[str] | frozenset[str]) -> str:
    # redact over a window wider than any token, then cut: a cut never splits a secret in two
    text = body[:8192].decode("utf-8", errors="replace")
    if sensitive and "=" in text and "{" not in text:
        # form bodies (LWA token exchange): redact sensitive fields by name
        parts = []
        for pair in text.split("&"):
            key, _, value = pair.partition("=")
            parts.append(f"{key}={REDACTED}" if key.lower() in sensitive else pair)
        text = "&".join(parts)
    text = REDACTOR.redact(_JSON_SECRET.sub(rf'\1"{REDACTED}"', text))[:BODY_EXCERPT]
    suffix = f" … ({len(body)} bytes)" if len(body) > BODY_EXCERPT else ""
    return text.replace("\n", " ") + suffix
