"""A large page of checks is rendered a few rows per loop turn, on ``/`` and ``/api/v1/checks``.

``per_page`` goes up to 1,000: rendered in one go, such a page held the event loop ~10-20 ms at
50,000 checks (bench/scale.py's loop probe), and every probe in flight reported the wait as API
latency. The handlers render :data:`checks_views.ITEMS_PER_TURN` rows, then let the loop run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from loop_turns import loop_turns
from test_store_collector_page import record, spec

from marketplace_exporter.config import LoadedConfig
from marketplace_exporter.config.source import ConfigSource
from marketplace_exporter.core import Core
from marketplace_exporter.model import ProbeOutcome
from marketplace_exporter.server import checks_views, scrape
from marketplace_exporter.store import Store

CHECKS = 1000


@pytest.fixture
def store() -> Store:
    store = Store()
    checks = [spec(f"acct-{n:04d}", "orders") for n in range(CHECKS)]
    store.reconcile(checks)
    for n, check in enumerate(checks):
        store.record(check, record(ProbeOutcome.ok(200), at=1000 + n), None)
    return store


@pytest.mark.parametrize(("path", "renderer"), [("/?per_page=1000", "row_html"),
                                                ("/api/v1/checks?per_page=1000", "check_json")])
async def test_a_page_of_a_thousand_checks_lets_the_loop_run_while_it_renders(
        aiohttp_client: Any, store: Store, monkeypatch: pytest.MonkeyPatch, path: str, renderer: str) -> None:
    app = web.Application()
    unused = LoadedConfig(path="unused.yml", checks=(), max_body_bytes=1 << 20, concurrency=1, concurrency_per_host=1)
    checks_views.install(Core(source=ConfigSource("unused.yml"), initial=unused, store=store,
                              registry=scrape.feature_registry()), app)
    client = await aiohttp_client(app)
    seen = []
    render: Callable[..., Any] = getattr(checks_views, renderer)
    async with loop_turns() as turns:

        def watched(*args: Any) -> Any:
            seen.append(turns[0])  # how often the loop had turned when this row was rendered
            return render(*args)

        monkeypatch.setattr(checks_views, renderer, watched)
        response = await client.get(path)
        assert response.status == 200
        await response.read()
    assert len(seen) == CHECKS
    batches = [seen[n:n + checks_views.ITEMS_PER_TURN] for n in range(0, CHECKS, checks_views.ITEMS_PER_TURN)]
    assert all(len(set(batch)) == 1 for batch in batches), "rows of one batch are rendered in one turn"
    assert all(later[0] > earlier[0] for earlier, later in zip(batches, batches[1:], strict=False)), seen
