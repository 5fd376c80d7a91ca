"""``GET /`` (the status page) and ``GET /api/v1/checks`` (the same query as JSON, for scripts).

Both take ``?marketplace=&site=&state=&q=&page=&per_page=`` (state: failing, expiring, pending,
ok; q: part of the check id ``marketplace/account/check``) and answer from the store's status
index (checks_query.py): neither walks the checks' states, so a browser tab refreshing the page
costs the probes nothing noticeable at 50,000 checks. Nothing here can carry a secret: checks
show labels, outcomes and the adapters' messages, which are written to be shown.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from aiohttp import web

from marketplace_exporter.core import Core
from marketplace_exporter.server.accounts_watch import render_broken_files
from marketplace_exporter.server.checks_query import CheckFilter, CheckPage, FilterInvalid, ShownCheck, query
from marketplace_exporter.server.status_page import CSP, held_back_until, held_note, render_status_page, row_html
from marketplace_exporter.shard_serving import status_html as shard_status_html
from marketplace_exporter.store import Store

T = TypeVar("T")
R = TypeVar("R")
#: rows (HTML or JSON) rendered per loop turn
ITEMS_PER_TURN = 50


async def status_page(core: Core, request: web.Request) -> web.Response:
    store = core.store
    try:
        flt = CheckFilter.parse(request.query)
    except FilterInvalid as exc:
        return web.Response(status=400, text=f"bad filter: {exc}\n")
    now = time.time()
    page = await query(store, flt, now)
    rows = await in_turns(page.checks, lambda shown: row_html(store, shown, now))
    html = render_status_page(store, page, now=now, rows=rows,
                              extra_html=shard_status_html(core) + render_broken_files(core.accounts.broken()))
    return web.Response(text=html, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store", "Content-Security-Policy": CSP})


async def checks_api(core: Core, request: web.Request) -> web.Response:
    store = core.store
    try:
        flt = CheckFilter.parse(request.query)
    except FilterInvalid as exc:
        return web.json_response({"error": str(exc), "field": exc.field}, status=400)
    now = time.time()
    page = await query(store, flt, now)
    checks = await in_turns(page.checks, lambda shown: check_json(shown, store, now))
    return web.json_response(page_json(page, store, now, checks), headers={"Cache-Control": "no-store"})


async def in_turns(items: Iterable[T], render: Callable[[T], R]) -> list[R]:
    """``render`` each item, :data:`ITEMS_PER_TURN` per loop turn: a page of 1,000 checks
    (``per_page``'s maximum) rendered in one go held the loop ~20 ms at 50,000 checks, and every
    probe in flight would report that as API latency."""
    out = []
    for n, item in enumerate(items, 1):
        out.append(render(item))
        if n % ITEMS_PER_TURN == 0:
            await asyncio.sleep(0)
    return out


def page_json(page: CheckPage, store: Store, now: float, checks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "generated_at": now, "total": page.total, "page": page.filter.page, "pages": page.pages,
        "per_page": page.filter.per_page, "filter": page.filter.params(page=None, per_page=None),
        "last_reload_successful": page.reload_ok,
        "summary": [{"marketplace": row.marketplace, "site": row.site, "failing": row.failing,
                     "expiring": row.expiring, "pending": row.pending, "ok": row.ok, "total": row.total}
                    for row in page.summary],
        "checks": checks if checks is not None else [check_json(shown, store, now) for shown in page.checks],
    }


def check_json(shown: ShownCheck, store: Store, now: float) -> dict[str, Any]:
    status = shown.status
    spec, last = status.spec, status.last
    outcome = last.outcome if last is not None else None
    observed = status.observed_rate_limit
    return {
        "id": spec.id, "marketplace": spec.marketplace, "site": spec.site, "account": spec.account,
        "check": spec.name, "state": status.health.value, "tags": list(spec.tags),
        "reason": outcome.reason.value if outcome is not None and outcome.reason is not None else None,
        "code": outcome.code if outcome is not None else None,
        "message": outcome.message if outcome is not None and not outcome.success else None,
        "http_status": outcome.http_status if outcome is not None else None,
        "duration_seconds": last.duration if last is not None else None,
        "last_run": last.finished_at if last is not None else None,
        "last_success": status.last_success_at, "next_run": status.next_run_at,
        "retry_after_seconds": outcome.retry_after_seconds if outcome is not None else None,
        "held_back": held_note(status, held, now) if (held := held_back_until(status, now)) is not None else None,
        "interval_seconds": spec.interval, "probes": status.probes,
        "consecutive_failures": status.consecutive_failures, "last_skip": status.last_skip_at,
        "credentials": [{"credential": key[3].value, "expires_at": at}
                        for key, at in store.credentials((spec.marketplace, spec.site, spec.account))],
        "expiring": ({"credential": shown.expiring[1][3].value, "expires_at": shown.expiring[0]}
                     if shown.expiring is not None else None),
        "rate_limit": {
            "observed_ratio": observed.remaining_ratio if observed is not None else None,
            "observed_remaining": observed.remaining if observed is not None else None,
            "source": observed.source.value if observed is not None else None,
            "modelled_ratio": status.modelled_ratio},
    }


def install(core: Core, app: web.Application) -> None:
    app.router.add_get("/", functools.partial(status_page, core))
    app.router.add_get("/api/v1/checks", functools.partial(checks_api, core))


__all__ = ["check_json", "install", "page_json"]
