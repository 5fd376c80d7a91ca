"""A platform's Retry-After is honoured up to ``defaults.max_retry_after`` (15 min by default), and
a check held back by one says so on the status page and in ``/api/v1/checks``.

One ``Retry-After: 86400`` stopped a check for about 24.5 h (issue 14): a throttled seller would
see no probe, no recovery and no fresh failure for a day. Shorter values keep their effect."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import ClassVar

import pytest
from aiohttp import web

from marketplace_exporter.adapters.base import NoParams, ProbeContext, ProbeSteps, retry_after_seconds
from marketplace_exporter.catalogue import Reason, Step
from marketplace_exporter.config import CheckSpec, ConfigError, load_config
from marketplace_exporter.engine import Engine
from marketplace_exporter.engine.transport import new_session
from marketplace_exporter.model import HttpResponse, Operation, ProbeOutcome, RequestSpec
from marketplace_exporter.server.checks_query import CheckFilter, query
from marketplace_exporter.server.checks_views import page_json
from marketplace_exporter.server.status_page import render_status_page
from marketplace_exporter.store import ProbeRecord, Store


class RetryAfterAdapter:
    """GETs ``{base_url}/{operation}``: 429 is ``throttled`` with the answer's Retry-After."""

    name: ClassVar[str] = "fake"
    operations: ClassVar[dict[str, Operation]] = {"day": Operation("day", "429, Retry-After: 86400")}
    known_codes: ClassVar[frozenset[str]] = frozenset()
    sites: ClassVar[frozenset[str]] = frozenset({"XX"})
    Credentials = NoParams
    Params = NoParams

    def probe(self, ctx: ProbeContext[NoParams, NoParams]) -> ProbeSteps:
        response: HttpResponse = yield RequestSpec("GET", f"{ctx.base_url}/{ctx.operation}")
        retry = retry_after_seconds(response.header("retry-after"), ctx.now)
        return ProbeOutcome.failed(Reason.THROTTLED, "slow down", http_status=response.status,
                                   retry_after_seconds=retry)


def _spec(base_url: str | None, interval: float = 0.1) -> CheckSpec:
    adapter = RetryAfterAdapter()
    return CheckSpec(
        marketplace="fake", site="XX", account="a1", name="day", adapter=adapter,  # type: ignore[arg-type]
        operation=adapter.operations["day"], interval=interval, timeout=0.5, jitter=0.0, quota_budget=0.5,
        tags=(), base_url=base_url, auth_url=None, sandbox=False, credentials=None, params=NoParams(),
        fingerprint="day")


class _Config:
    """The parts of LoadedConfig the engine reads."""

    def __init__(self, check: CheckSpec, max_retry_after: float) -> None:
        self.checks = (check,)
        self.max_body_bytes = 1 << 20
        self.concurrency = 4
        self.concurrency_per_host = 4
        self.max_retry_after = max_retry_after
        self.deprecations: dict[tuple[str, str], float] = {}
        self.request_duration_histogram = True


@pytest.fixture
async def day_long_retry_after(aiohttp_server: object) -> AsyncIterator[str]:
    async def day(request: web.Request) -> web.Response:
        return web.Response(status=429, headers={"Retry-After": "86400"})

    app = web.Application()
    app.router.add_get("/day", day)
    server = await aiohttp_server(app)  # type: ignore[operator]
    yield f"http://127.0.0.1:{server.port}"


async def test_a_day_long_retry_after_holds_a_check_back_only_max_retry_after(day_long_retry_after: str) -> None:
    """Regression (issue 14): fails on the old engine, which waited the whole 86,400 s (one probe)."""
    store = Store()
    check = _spec(day_long_retry_after)
    async with new_session(limit=4) as session:
        engine = Engine(session, store, rng=random.Random(1))
        engine.apply(_Config(check, max_retry_after=0.3))  # type: ignore[arg-type]
        await asyncio.sleep(1.0)
        await engine.stop()
    status = store.status(check.id)
    assert status is not None and status.last is not None
    assert status.probes >= 2, "the 86,400 s Retry-After was not capped"
    assert status.last.outcome.retry_after_seconds == 0.3


def _throttled(store: Store, check: CheckSpec, retry_after: float, next_run_at: float) -> None:
    outcome = ProbeOutcome.failed(Reason.THROTTLED, "slow down", http_status=429, retry_after_seconds=retry_after)
    store.reconcile((check,))
    store.record(check, ProbeRecord(outcome=outcome, code_label=None, started_at=999.0, finished_at=1000.0,
                                    duration=1.0, call_duration=1.0, steps=(Step.CALL,)), None)
    store.mark_next_run(check, next_run_at)


async def test_the_status_page_and_api_say_when_a_throttled_check_runs_next() -> None:
    store, check, now = Store(), _spec(None, interval=60), 1000.0
    _throttled(store, check, retry_after=900.0, next_run_at=now + 900)
    page = await query(store, CheckFilter(), now)
    note = "throttled by the platform, next probe at 00:31:40 UTC (in 15m)"
    assert note in render_status_page(store, page, now=now)
    [shown] = page_json(page, store, now)["checks"]
    assert (shown["held_back"], shown["retry_after_seconds"], shown["next_run"]) == (note, 900.0, now + 900)
    # once the time has come (or for a plain failure) nothing is said
    later = await query(store, CheckFilter(), now + 901)
    assert "throttled by the platform" not in render_status_page(store, later, now=now + 901)
    assert page_json(later, store, now + 901)["checks"][0]["held_back"] is None
    # an adapter's own pause after another failure (Ozon after an auth error) is named as such
    paused = ProbeOutcome.failed(Reason.AUTH, "bad key", http_status=403, retry_after_seconds=600.0)
    store.record(check, ProbeRecord(outcome=paused, code_label=None, started_at=1001.0, finished_at=1002.0,
                                    duration=1.0, call_duration=1.0, steps=(Step.CALL,)), None)
    store.mark_next_run(check, now + 600)
    assert "paused after this auth failure, next probe at 00:26:40 UTC (in 10m)" in render_status_page(
        store, await query(store, CheckFilter(), now), now=now)


CONFIG = """\
defaults: {%s}
http_checks:
  - {name: health, url: "http://127.0.0.1:1/health"}
"""


def test_max_retry_after_defaults_to_15_minutes_and_is_bounded(tmp_path: object) -> None:
    assert load_config("f.yml", text=CONFIG % "").max_retry_after == 900.0
    assert load_config("f.yml", text=CONFIG % "max_retry_after: 1h").max_retry_after == 3600.0
    for bad, expected in (("500ms", "greater than or equal to 1"), ("2d", "less than or equal to 86400")):
        with pytest.raises(ConfigError) as raised:
            load_config("f.yml", text=CONFIG % f"max_retry_after: {bad}")
        assert f"f.yml:1: defaults.max_retry_after: expected {expected}" in str(raised.value)
