"""On-demand probes (``/probe``) respect each check's interval, quota budget and the platform's
Retry-After, share one upstream probe between concurrent callers, and are never recorded as the
check's own result (engine/on_demand.py). Driven with a hand-set clock and a counting probe."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from marketplace_exporter.adapters.base import NoParams
from marketplace_exporter.catalogue import Reason, Step
from marketplace_exporter.config import CheckSpec
from marketplace_exporter.engine.on_demand import MAX_IN_FLIGHT, OnDemandProbes, Source, Spent
from marketplace_exporter.model import Operation, ProbeOutcome
from marketplace_exporter.store import ProbeRecord, Store

INTERVAL = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _spec() -> CheckSpec:
    return CheckSpec(
        marketplace="shopee", site="SG", account="sg-main", name="get_shop_info", adapter=None,  # type: ignore[arg-type]
        operation=Operation("get_shop_info", "test"), interval=INTERVAL, timeout=5, jitter=0, quota_budget=0.5,
        tags=(), base_url=None, auth_url=None, sandbox=False, credentials=None, params=NoParams())


OK = ProbeOutcome.ok(200)


def _record(at: float, outcome: ProbeOutcome = OK, trace: tuple[str, ...] = ()) -> ProbeRecord:
    return ProbeRecord(outcome=outcome, code_label=None, started_at=at - 0.1, finished_at=at, duration=0.1,
                       call_duration=0.1, steps=(Step.CALL,), debug=trace)


class Upstream:
    """The probe the engine would run: counts calls; ``gate`` holds them; ``answers`` queues results."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.answers: list[ProbeOutcome | Spent] = []

    async def __call__(self, spec: CheckSpec) -> ProbeRecord | Spent:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        answer = self.answers.pop(0) if self.answers else ProbeOutcome.ok(200)
        if isinstance(answer, Spent):
            return answer
        return _record(self.clock.now, answer, trace=(f"probe {self.calls}",))


@pytest.fixture
def rig() -> tuple[OnDemandProbes, Upstream, Store, Clock, CheckSpec]:
    clock, store, spec = Clock(), Store(), _spec()
    store.reconcile((spec,))
    upstream = Upstream(clock)
    return OnDemandProbes(upstream, store, clock), upstream, store, clock, spec


Rig = tuple[OnDemandProbes, Upstream, Store, Clock, CheckSpec]


async def test_concurrent_callers_share_one_upstream_probe_and_nothing_is_recorded(rig: Rig) -> None:
    """Regression (issue 14): every /probe request went upstream (1,000 calls, 1,002 Shopee calls)
    and was recorded as the check's result (a flood's timeouts tripped the burn-rate alerts)."""
    on_demand, upstream, store, _, spec = rig
    upstream.gate = asyncio.Event()
    callers = [asyncio.ensure_future(on_demand.answer(spec, debug=True)) for _ in range(50)]
    await asyncio.sleep(0)
    upstream.gate.set()
    answers = await asyncio.gather(*callers)
    assert upstream.calls == 1
    assert sorted(a.source.value for a in answers if a.source) == ["fresh"] + ["shared"] * 49
    assert {a.record.debug for a in answers if a.record} == {("probe 1",)}
    status = store.status(spec.id)
    assert status is not None and status.probes == 0 and status.last is None


async def test_one_fresh_probe_per_interval_then_the_trace_is_served_with_its_age(rig: Rig) -> None:
    on_demand, upstream, _, clock, spec = rig
    assert (await on_demand.answer(spec, debug=True)).source is Source.FRESH
    clock.now += 20
    again = await on_demand.answer(spec, debug=True)
    assert (again.source, again.age, again.next_fresh_in, upstream.calls) == (Source.CACHED, 20.0, 40.0, 1)
    assert "one on-demand probe per check per interval" in again.why
    clock.now += 40
    assert (await on_demand.answer(spec, debug=True)).source is Source.FRESH and upstream.calls == 2


async def test_a_plain_probe_is_answered_from_a_background_result_younger_than_the_interval(rig: Rig) -> None:
    on_demand, upstream, store, clock, spec = rig
    store.record(spec, _record(clock.now - 30), None)
    cached = await on_demand.answer(spec, debug=False)
    assert (cached.source, cached.age, upstream.calls) == (Source.CACHED, 30.0, 0)
    clock.now += 31  # the background result is now older than the interval (a stalled schedule)
    assert (await on_demand.answer(spec, debug=False)).source is Source.FRESH and upstream.calls == 1


async def test_a_spent_quota_budget_is_a_refusal_until_it_frees_up(rig: Rig) -> None:
    on_demand, upstream, store, clock, spec = rig
    upstream.answers = [Spent(30.0)]
    refused = await on_demand.answer(spec, debug=True)
    assert refused.record is None and refused.next_fresh_in == 30.0 and "quota budget" in refused.why
    clock.now += 10
    again = await on_demand.answer(spec, debug=True)
    assert again.record is None and again.next_fresh_in == 20.0 and upstream.calls == 1
    store.record(spec, _record(clock.now - 100), None)  # an old background result: served, not refused
    assert (await on_demand.answer(spec, debug=False)).source is Source.CACHED
    clock.now += 20
    assert (await on_demand.answer(spec, debug=True)).source is Source.FRESH and upstream.calls == 2


async def test_the_platforms_retry_after_holds_on_demand_probes_too(rig: Rig) -> None:
    on_demand, upstream, store, clock, spec = rig
    upstream.answers = [ProbeOutcome.failed(Reason.THROTTLED, "slow down", retry_after_seconds=300.0)]
    await on_demand.answer(spec, debug=True)
    clock.now += INTERVAL + 1  # past the interval, not past the Retry-After
    held = await on_demand.answer(spec, debug=True)
    assert held.source is Source.CACHED and held.next_fresh_in == pytest.approx(239.0) and upstream.calls == 1
    assert "Retry-After" in held.why
    # a background probe throttled with a back-off: nothing is sent before its next run either
    clock.now += 300
    throttled = ProbeOutcome.failed(Reason.THROTTLED, "slow down", http_status=429)
    store.record(spec, _record(clock.now, throttled), None)
    store.mark_next_run(spec, clock.now + 120)
    waiting = await on_demand.answer(spec, debug=True)
    assert waiting.next_fresh_in == 120.0 and upstream.calls == 1


async def test_a_caller_hanging_up_does_not_cancel_the_probe_others_share(rig: Rig) -> None:
    on_demand, upstream, _, _, spec = rig
    upstream.gate = asyncio.Event()
    first = asyncio.ensure_future(on_demand.answer(spec, debug=True))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(on_demand.answer(spec, debug=True))
    await asyncio.sleep(0)
    first.cancel()
    upstream.gate.set()
    answer = await second
    assert answer.record is not None and answer.record.outcome.success and upstream.calls == 1


async def test_on_demand_probes_in_flight_are_bounded_over_all_checks(rig: Rig) -> None:
    """A caller walking every check id cannot take the per-host slots the background needs."""
    on_demand, upstream, store, _, spec = rig
    specs = [dataclasses.replace(spec, name=f"check{n}") for n in range(MAX_IN_FLIGHT + 3)]
    store.reconcile(specs)
    upstream.gate = asyncio.Event()
    callers = [asyncio.ensure_future(on_demand.answer(one, debug=True)) for one in specs]
    await asyncio.sleep(0)
    upstream.gate.set()
    answers = await asyncio.gather(*callers)
    assert upstream.calls == MAX_IN_FLIGHT
    refused = [a for a in answers if a.record is None]
    assert len(refused) == 3 and all(a.next_fresh_in == 1.0 and "in flight" in a.why for a in refused)
