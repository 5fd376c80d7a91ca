"""The engine's two hand-made queues keep the guarantees of the asyncio primitives they replaced
(for CPU per probe): a host's slots are never over-booked, are handed out first come first served
and survive cancelled waiters; the scheduler's idle workers take every due check, also when a
worker is cancelled while it waits or just after being woken."""

from __future__ import annotations

import asyncio

import pytest

from marketplace_exporter.engine.runner import HostSlot
from marketplace_exporter.engine.scheduler import Scheduler


async def _take(slot: HostSlot) -> None:
    if slot.free:
        slot.free -= 1
    else:
        await slot.wait()


async def test_a_host_slot_admits_at_most_its_size_in_arrival_order() -> None:
    slot = HostSlot(2)
    inside, most, order = 0, 0, []

    async def user(name: int) -> None:
        nonlocal inside, most
        await _take(slot)
        order.append(name)
        inside += 1
        most = max(most, inside)
        await asyncio.sleep(0.01)
        inside -= 1
        slot.release()

    await asyncio.gather(*(user(n) for n in range(7)))
    assert most == 2
    assert order == list(range(7))
    assert slot.free == 2


async def test_a_cancelled_waiter_gives_up_its_place_and_loses_no_slot() -> None:
    slot = HostSlot(1)
    await _take(slot)
    waiting = asyncio.create_task(_take(slot))
    behind = asyncio.create_task(_take(slot))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    slot.release()  # goes to the waiter behind the cancelled one
    await asyncio.wait_for(behind, 1)
    slot.release()
    assert slot.free == 1


async def test_a_waiter_cancelled_just_after_being_handed_the_slot_passes_it_on() -> None:
    slot = HostSlot(1)
    await _take(slot)
    first = asyncio.create_task(_take(slot))
    second = asyncio.create_task(_take(slot))
    await asyncio.sleep(0)
    slot.release()  # handed to `first` ...
    first.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 1)
    slot.release()
    assert slot.free == 1


class _Spec:
    def __init__(self, check_id: str) -> None:
        self.id = check_id


async def test_idle_workers_take_every_due_check_even_when_one_is_cancelled() -> None:
    ran: list[str] = []
    done = asyncio.Event()

    async def run(spec: _Spec, lateness: float) -> None:
        ran.append(spec.id)
        await asyncio.sleep(0)
        if len(ran) == 6:
            done.set()

    scheduler = Scheduler(run, lambda spec: 3600.0)  # type: ignore[arg-type]
    scheduler.set_concurrency(3)
    await asyncio.sleep(0)  # every worker idle, waiting
    scheduler._workers[0].cancel()  # one of them goes away while it waits
    specs = tuple(_Spec(f"c{n}") for n in range(6))
    scheduler.set_checks(specs, lambda spec: 0.0)  # type: ignore[arg-type]
    await asyncio.wait_for(done.wait(), 2)
    await scheduler.stop()
    assert sorted(ran) == [f"c{n}" for n in range(6)]


async def test_a_worker_cancelled_after_being_woken_leaves_the_check_to_another() -> None:
    ran = asyncio.Event()

    async def run(spec: _Spec, lateness: float) -> None:
        ran.set()

    scheduler = Scheduler(run, lambda spec: 3600.0)  # type: ignore[arg-type]
    scheduler.set_concurrency(2)
    await asyncio.sleep(0)  # both workers idle
    scheduler.set_checks((_Spec("only"),), lambda spec: 0.0)  # type: ignore[arg-type]
    woken = scheduler._idle[0]
    while not woken.done():  # the dispatcher hands the check to the first idle worker ...
        await asyncio.sleep(0)
    scheduler._workers[0].cancel()  # ... which is cancelled before it runs
    await asyncio.wait_for(ran.wait(), 2)
    await scheduler.stop()
