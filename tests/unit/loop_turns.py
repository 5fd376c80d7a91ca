"""Counting event-loop turns, for tests that pin "this long piece of work lets the loop run"."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


@asynccontextmanager
async def loop_turns() -> AsyncIterator[list[int]]:
    """A one-item list: how often the event loop has turned since entering (a task that only
    yields counts them). Record ``turns[0]`` as the work goes: equal readings ran in one turn."""
    turns = [0]

    async def ticker() -> None:
        while True:
            await asyncio.sleep(0)
            turns[0] += 1

    task = asyncio.create_task(ticker())
    try:
        yield turns
    finally:
        task.cancel()
