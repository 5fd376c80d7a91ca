"""Shared by the adapter unit tests: build a ProbeContext, drive an adapter's probe generator with
literal responses, make JSON responses. No HTTP. A plain module (not a conftest): test files in
tests/unit import it as ``from adapter_harness import ...``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from marketplace_exporter.adapters.base import Adapter, NoParams, ProbeContext
from marketplace_exporter.model import HttpResponse, ProbeOutcome, RequestSpec, TokenCache

NOW = 1_760_000_000.0  # 2025-10-09 08:53:20 UTC

ContextBuilder = Callable[..., ProbeContext]
Driver = Callable[..., tuple[list[RequestSpec], ProbeOutcome]]


def context_builder(*, alias: str, site: str, operation: str, credentials: Callable[[], Any],
                    params: Callable[[], Any] = NoParams, now: float = NOW) -> ContextBuilder:
    """A ``make_ctx(**overrides)``: a fresh context (new credentials, params and token cache on
    every call; no base/auth URL override, not sandbox) with any field replaced."""

    def make_ctx(**overrides: Any) -> ProbeContext:
        ctx = ProbeContext(alias=alias, site=site, base_url=None, auth_url=None, sandbox=False,
                           credentials=credentials(), operation=operation, params=params(), now=now,
                           tokens=TokenCache())
        return replace(ctx, **overrides)

    return make_ctx


def drive_probe(adapter: Adapter, ctx: ProbeContext,
                *responses: HttpResponse) -> tuple[list[RequestSpec], ProbeOutcome]:
    """Run the probe, answering each request with the next response; return requests + outcome.
    Fails if the adapter wants more requests than there are responses."""
    steps = adapter.probe(ctx)
    sent: list[RequestSpec] = []
    try:
        request = next(steps)
        for response in responses:
            sent.append(request)
            request = steps.send(response)
    except StopIteration as done:
        return sent, done.value
    raise AssertionError(f"adapter wanted another request: {request}")


def adapter_driver(adapter: Callable[[], Adapter]) -> Driver:
    """A ``drive(ctx, *responses)`` that runs a new ``adapter()`` each time."""

    def drive(ctx: ProbeContext, *responses: HttpResponse) -> tuple[list[RequestSpec], ProbeOutcome]:
        return drive_probe(adapter(), ctx, *responses)

    return drive


def json_response(status: int, body: Any = None, headers: dict[str, str] | None = None) -> HttpResponse:
    """An HttpResponse whose body is ``body`` as JSON (bytes are sent as they are)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse(status, headers or {}, raw)
