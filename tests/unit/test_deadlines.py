"""Deadlines from one ticker behave like asyncio.timeout: the time-out becomes TimeoutError at the
await it interrupts, a finished block leaves no cancellation behind, and an outside cancellation
(shutdown) is never swallowed."""

from __future__ import annotations

import asyncio

import pytest

from marketplace_exporter.engine.deadlines import TICK, Deadlines


async def test_expiry_raises_timeout_error_within_a_tick() -> None:
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(TimeoutError):
        async with deadlines.within(0.05):
            await asyncio.sleep(5)
    assert 0.05 <= loop.time() - start < 0.05 + 3 * TICK + 0.05


async def test_a_block_that_finishes_in_time_leaves_no_cancellation_behind() -> None:
    deadlines = Deadlines()
    for _ in range(20):
        async with deadlines.within(0.02):
            await asyncio.sleep(0)
    await asyncio.sleep(0.05)  # a stray cancel would land here
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_an_outside_cancellation_is_not_swallowed() -> None:
    deadlines = Deadlines()
    started = asyncio.Event()

    async def probe() -> None:
        async with deadlines.within(10):
            started.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(probe())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_many_concurrent_deadlines_each_fire_for_their_own_task() -> None:
    deadlines = Deadlines()

    async def probe(seconds: float, sleep: float) -> str:
        try:
            async with deadlines.within(seconds):
                await asyncio.sleep(sleep)
        except TimeoutError:
            return "timeout"
        return "ok"

    results = await asyncio.gather(*(probe(0.05, 1) for _ in range(5)), *(probe(1, 0.01) for _ in range(5)))
    assert results == ["timeout"] * 5 + ["ok"] * 5
