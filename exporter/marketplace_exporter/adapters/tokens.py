"""Access tokens the exporter mints itself (non-rotating grants only: SP-API LWA, eBay, Walmart):
the cached-token step and the reading of an OAuth token answer, shared by those adapters."""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Mapping
from typing import Any

from marketplace_exporter.adapters.base import ProbeContext
from marketplace_exporter.adapters.common import finite_number
from marketplace_exporter.catalogue import Reason
from marketplace_exporter.model import SUCCESS, HttpResponse, Minted, ProbeFailed, ProbeOutcome, RequestSpec
from marketplace_exporter.secrets import REDACTOR

#: printable ASCII without spaces: a token goes into a header
TOKEN_SHAPE = re.compile(r"[\x21-\x7e]{1,8192}")

TokenStep = Generator[RequestSpec, HttpResponse, Minted]


def cached_token(ctx: ProbeContext[Any, Any], key: str, margin: float, request: Callable[[], RequestSpec],
                 read: Callable[[HttpResponse, float], Minted]) -> TokenStep:
    """The token cached under ``key`` while it is valid ``margin`` seconds from now, else one token
    exchange: yield ``request()``, ``read`` the answer (it raises :class:`ProbeFailed` when the
    answer is no usable token), cache the token and register it for redaction like any secret.
    ``key`` holds no secret. Use as ``token, expires_at = yield from cached_token(...)``."""
    cached = ctx.tokens.get(key, ctx.now, margin=margin)
    if cached is not None:
        return Minted(*cached)
    minted = read((yield request()), ctx.now)
    REDACTOR.register(minted.token)
    ctx.tokens.put(key, minted.token, minted.expires_at)
    return minted


def read_oauth_token(response: HttpResponse, body: Mapping[str, Any] | None, now: float, *, what: str,
                     max_expires_in: float, shape: re.Pattern[str] = TOKEN_SHAPE) -> Minted:
    """``access_token`` + ``expires_in`` from a 2xx OAuth answer (RFC 6749 §5.1); raises
    :class:`ProbeFailed` (``invalid_response``) for a body without a usable pair. ``max_expires_in``
    bounds what a broken or hostile answer could claim."""
    status = response.status
    if body is None:
        raise ProbeFailed(ProbeOutcome.failed(Reason.INVALID_RESPONSE, f"{what}: response is not a JSON object",
                                              http_status=status))
    token, expires_in = body.get("access_token"), finite_number(body.get("expires_in"))
    if not isinstance(token, str) or not shape.fullmatch(token):
        raise ProbeFailed(ProbeOutcome.failed(Reason.INVALID_RESPONSE, f"{what}: no usable access_token",
                                              http_status=status))
    if expires_in is None or not 0 < expires_in <= max_expires_in:
        raise ProbeFailed(ProbeOutcome.failed(Reason.INVALID_RESPONSE, f"{what}: no usable expires_in",
                                              http_status=status))
    return Minted(token, now + expires_in)


def token_answer(read: Callable[[HttpResponse, float], Minted], response: HttpResponse, now: float) -> ProbeOutcome:
    """A token answer as production traffic sees it: what the probe's token step would conclude
    (its failure, or a success when it would have cached a token)."""
    try:
        read(response, now)
    except ProbeFailed as failed:
        return failed.outcome
    return SUCCESS
