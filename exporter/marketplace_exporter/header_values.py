"""What an HTTP header can carry, checked where config is loaded and again before a request is sent.

aiohttp refuses a header name or value with a control character (a line break is header
injection): raised inside a probe, that was an ``internal`` failure with a traceback, every
interval, for what is a config mistake (a secret with a newline, often a trailing one in an
environment variable). So a secret headed for a header is checked when the config loads
(``check-config`` and ``run`` name the key) and the transport checks every header before sending
(a token file rewritten later). Messages never quote the value: it is a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from marketplace_exporter.secrets import Secret, SecretUnavailable, secrets_checked

#: what aiohttp refuses in a header: control characters other than the tab, and DEL
_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
#: an RFC 9110 token
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def value_problem(value: str) -> str | None:
    """Why ``value`` cannot be sent as a header value, or None."""
    if _FORBIDDEN.search(value):
        return ("contains a line break or another control character, which no HTTP header can carry "
                "(a trailing newline in the environment variable or file?)")
    return None


def secret_problem(secret: Secret) -> str | None:
    """Why the secret's current value cannot be sent in a header, or None (also when it cannot be
    read: ``Secret.check_available`` reports that; and under ``check-config --syntax-only``, which
    reads no secret)."""
    if not secrets_checked():
        return None
    try:
        value = secret.reveal()
    except SecretUnavailable:
        return None
    problem = value_problem(value)
    return f"the secret's value {problem}" if problem else None


def request_problem(headers: Iterable[tuple[str, str]]) -> str | None:
    """Why a request with these headers cannot be sent, naming the header (never its value)."""
    for name, value in headers:
        if not _TOKEN.fullmatch(name):
            return f"header name {name[:40]!r} is not an HTTP token"
        if (problem := value_problem(value)) is not None:
            return f"header {name!r} {problem}"
    return None


__all__ = ["request_problem", "secret_problem", "value_problem"]
