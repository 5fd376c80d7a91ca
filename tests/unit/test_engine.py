"""The engine owns time: deadlines, isolation between checks, quota budgets, back-off, and survival
of anything an adapter or a target does. A tiny adapter defined here talks to a real aiohttp server
on 127.0.0.1, so the real transport and runner are exercised."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import ClassVar

import pytest
from aiohttp import web

from marketplace_exporter.adapters.base import NoParams, ProbeContext, ProbeSteps
from marketplace_exporter.catalogue import Reason, SkipReason
from marketplace_exporter.config import CheckSpec
from marketplace_exporter.engine import Engine, QuotaWait
from marketplace_exporter.engine.backoff import MAX_BACKOFF_FACTOR, next_delay
from marketplace_exporter.engine.budget import QuotaBudgets, TokenBucket
from marketplace_exporter.engine.runner import ProbeRunner
from marketplace_exporter.engine.transport import new_session
from marketplace_exporter.model import HttpResponse, Operation, ProbeOutcome, RequestSpec
from marketplace_exporter.store import Store


class FakeAdapter:
    """Probes ``{base_url}/{operation}``; 200 → success, 429 → throttled (Retry-After honoured)."""

    name: ClassVar[str] = "fake"
    operations: ClassVar[dict[str, Operation]] = {
        "fast": Operation("fast", "answers at once"),
        "hang": Operation("hang", "never answers"),
        "huge": Operation("huge", "answers 5 MB"),
        "throttled": Operation("throttled", "always 429"),
        "limited": Operation("limited", "documented limit", rate_per_second=0.016, burst=15),
        "crash": Operation("crash", "the adapter raises"),
        "slow": Operation("slow", "answers after 0.3 s"),
    }
    known_codes: ClassVar[frozenset[str]] = frozenset({"QuotaExceeded"})
    sites: ClassVar[frozenset[str]] = frozenset({"XX"})
    Credentials = NoParams
    Params = NoParams

    def probe(self, ctx: ProbeContext) -> ProbeSteps:
        if ctx.operation == "crash":
            raise RuntimeError("adapter bug")
        response: HttpResponse = yield RequestSpec("GET", f"{ctx.base_url}/{ctx.operation}")
        if response.status == 429:
            retry = response.header("retry-after")
            return ProbeOutcome.failed(Reason.THROTTLED, "slow down", code="QuotaExceeded",
                                       http_status=429, retry_after_seconds=float(retry) if retry else None)
        if response.status == 200:
            return ProbeOutcome.ok(200)
        return ProbeOutcome.failed(Reason.SERVER_ERROR, "boom", code="Mystery", http_status=response.status)


def spec(base_url: str, operation: str, *, interval: float = 0.2, timeout: float = 0.5,
         account: str = "a1", budget: float = 0.5) -> CheckSpec:
    adapter = FakeAdapter()
    return CheckSpec(
        marketplace="fake", site="XX", account=account, name=operation, adapter=adapter,
        operation=adapter.operations[operation], interval=interval, timeout=timeout, jitter=0.0,
        quota_budget=budget, tags=(), base_url=base_url, auth_url=None, sandbox=False,
        credentials=None, params=NoParams(), fingerprint=operation)


@pytest.fixture
async def target(aiohttp_server: object) -> AsyncIterator[str]:
    async def fast(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.json_response({})

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(80):
            await response.write(b"x" * 65536)
        return response

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.3)
        return web.json_response({"ok": True})

    async def throttled(request: web.Request) -> web.Response:
        return web.json_response({"errors": [{"code": "QuotaExceeded"}]}, status=429,
                                 headers={"Retry-After": "7"})

    app = web.Application()
    for name, handler in [("fast", fast), ("hang", hang), ("huge", huge), ("throttled", throttled),
                          ("limited", fast), ("crash", fast), ("slow", slow)]:
        app.router.add_get(f"/{name}", handler)
    server = await aiohttp_server(app)  # type: ignore[operator]
    yield f"http://127.0.0.1:{server.port}"


class _Config:
    """The parts of LoadedConfig the engine reads."""

    def __init__(self, *checks: CheckSpec, max_body: int = 1 << 20) -> None:
        self.checks = checks
        self.max_body_bytes = max_body
        self.concurrency = 8
        self.concurrency_per_host = 4
        self.max_retry_after = 900.0
        self.path = "test"
        self.deprecations: dict[tuple[str, str], float] = {}
        self.request_duration_histogram = True

    def by_id(self) -> dict[str, CheckSpec]:
        return {check.id: check for check in self.checks}


async def run_engine(config: _Config, seconds: float) -> Store:
    store = Store()
    async with new_session(limit=16) as session:
        engine = Engine(session, store, rng=random.Random(1))
        engine.apply(config)  # type: ignore[arg-type]
        await asyncio.sleep(seconds)
        await engine.stop()
    return store


async def test_a_hanging_target_times_out_without_delaying_other_checks(target: str) -> None:
    store = await run_engine(_Config(spec(target, "fast"), spec(target, "hang")), 1.6)
    fast, hang = store.status("fake/a1/fast"), store.status("fake/a1/hang")
    assert fast.probes >= 5 and fast.failures[Reason.TIMEOUT] == 0
    assert fast.last is not None and fast.last.outcome.success
    assert hang.failures[Reason.TIMEOUT] >= 1
    assert hang.last is not None and hang.last.outcome.reason is Reason.TIMEOUT
    assert 0.45 < hang.last.duration < 1.0


async def test_an_oversized_body_is_invalid_response_not_read_to_the_end(target: str) -> None:
    store = await run_engine(_Config(spec(target, "huge"), max_body=64 * 1024), 0.5)
    last = store.status("fake/a1/huge").last
    assert last is not None and last.outcome.reason is Reason.INVALID_RESPONSE
    assert "limit" in last.outcome.message


async def test_an_adapter_exception_is_internal_and_the_loop_keeps_running(target: str,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    store = await run_engine(_Config(spec(target, "crash")), 0.7)
    state = store.status("fake/a1/crash")
    assert state.failures[Reason.INTERNAL] >= 2  # the loop survived the first crash
    assert "adapter fake raised" in caplog.text


async def test_a_refused_connection_is_classified_connect_and_logged_once(
        caplog: pytest.LogCaptureFixture) -> None:
    store = await run_engine(_Config(spec("http://127.0.0.1:9", "fast")), 0.5)
    last = store.status("fake/a1/fast").last
    assert last is not None and last.outcome.reason is Reason.CONNECT
    assert store.status("fake/a1/fast").probes >= 2
    # the state change is logged, not every repeat of it
    assert caplog.text.count("fake/a1/fast failing: reason=connect") == 1


async def test_throttling_backs_off_and_honours_retry_after(target: str) -> None:
    store = await run_engine(_Config(spec(target, "throttled", interval=0.1, timeout=0.1)), 0.6)
    state = store.status("fake/a1/throttled")
    # Retry-After: 7 means one probe in 0.6 s, not six
    assert state.probes == 1 and state.failures[Reason.THROTTLED] == 1
    assert state.api_errors == {"QuotaExceeded": 1}


async def test_unknown_platform_codes_fold_into_other(target: str) -> None:
    store = await run_engine(_Config(spec(target + "/nope", "fast")), 0.3)
    assert set(store.status("fake/a1/fast").api_errors) == {"other"}


async def test_quota_budget_skips_probes_beyond_the_share_of_the_documented_limit(target: str) -> None:
    # 0.016 rps, burst 15, budget 0.5 → 7 calls then nothing for ~2 minutes
    store = await run_engine(_Config(spec(target, "limited", interval=0.05, timeout=0.05)), 0.8)
    state = store.status("fake/a1/limited")
    assert state.probes == 7
    assert state.skipped[SkipReason.QUOTA_BUDGET] >= 3
    assert state.modelled_ratio == pytest.approx(8 / 15, abs=0.01)


async def test_probe_now_respects_the_budget(target: str) -> None:
    store = Store()
    check = spec(target, "limited", interval=3600, timeout=1, budget=0.1)
    async with new_session(limit=4) as session:
        engine = Engine(session, store)
        engine.apply(_Config(check))  # type: ignore[arg-type]
        first = await engine.probe_now(check.id)
        second = await engine.probe_now(check.id)
        await engine.stop()
    assert first is not None and not isinstance(first, QuotaWait) and first.outcome.success
    assert isinstance(second, QuotaWait) and second.seconds > 100


async def test_reload_keeps_unchanged_checks_and_drops_removed_ones(target: str) -> None:
    store = Store()
    keep, drop = spec(target, "fast"), spec(target, "throttled")
    async with new_session(limit=4) as session:
        engine = Engine(session, store, rng=random.Random(2))
        engine.apply(_Config(keep, drop))  # type: ignore[arg-type]
        await asyncio.sleep(0.5)
        probes_before = store.status(keep.id).probes
        engine.apply(_Config(spec(target, "fast")))  # type: ignore[arg-type]
        await asyncio.sleep(0.3)
        await engine.stop()
    assert set(store.check_ids()) == {keep.id}
    assert store.status(keep.id).probes > probes_before  # counters survived the reload


async def test_waiting_for_the_per_host_slot_is_not_counted_as_the_platforms_latency(target: str) -> None:
    """With one connection per host, the second of two probes waits for the first: its probe
    takes ~0.6 s, but the platform answered its request in ~0.3 s, and that is what the
    request-duration histogram must show."""
    async with new_session(limit=16) as session:
        runner = ProbeRunner(session, max_body_bytes=1 << 20, concurrency_per_host=1)
        check = spec(target, "slow", timeout=2.0)
        first, second = await asyncio.gather(runner.run(check), runner.run(check))
    assert first.outcome.success and second.outcome.success
    assert max(first.duration, second.duration) > 0.55  # one of them waited for the slot
    assert first.call_duration is not None and second.call_duration is not None
    assert first.call_duration < 0.5 and second.call_duration < 0.5


def test_backoff_doubles_per_throttle_up_to_a_cap_and_respects_retry_after() -> None:
    rng = random.Random(0)
    delays = [next_delay(60, 0, consecutive_throttles=n, retry_after=None, rng=rng) for n in range(7)]
    assert delays == [60, 120, 240, 480, 960, 960, 960]
    assert MAX_BACKOFF_FACTOR == 16
    assert next_delay(60, 0, consecutive_throttles=1, retry_after=900, rng=rng) == 900
    # a pause the adapter asks for after another failure (Ozon after an auth failure) is a floor
    assert next_delay(60, 0, consecutive_throttles=0, retry_after=900, rng=rng) == 900
    assert next_delay(600, 0, consecutive_throttles=0, retry_after=30, rng=rng) == 600


def test_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket.full(rate=0.5, capacity=2, now=0)
    assert bucket.try_take(0) and bucket.try_take(0) and not bucket.try_take(0)
    assert bucket.seconds_until(0) == pytest.approx(2.0)
    assert bucket.try_take(2.0)


def test_undocumented_limits_are_neither_enforced_nor_modelled() -> None:
    budgets = QuotaBudgets()
    key = ("shopee", "a", "get_shop_info", False)
    assert all(budgets.try_acquire(key, None, 0.5, now=0) is None for _ in range(1000))
    assert budgets.spend(key, None, now=0) is None
