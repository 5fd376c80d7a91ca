"""Probe deadlines enforced by one ticker instead of a timer per probe.

``asyncio.timeout`` schedules a timer per probe; cancelled timers stay in the loop's heap until
they would have fired, so at thousands of probes a second the heap holds thousands of dead entries
and every push and pop pays Python-level comparisons — the largest single cost in the engine's own
profile (bench/README.md). Here in-flight probes register a deadline in a dict; one callback, only
scheduled while something is in flight, wakes every ``TICK`` seconds and cancels the tasks whose
deadline passed. A deadline therefore fires up to ``TICK`` late, which is nothing next to probe
timeouts of seconds.

Semantics follow ``asyncio.timeout``: the expired task gets a ``CancelledError`` at the await it is
suspended on, the ``Deadline`` context turns it into ``TimeoutError``, and a cancellation from
elsewhere (shutdown) that arrives at the same time is not swallowed.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

TICK = 0.01


class Deadline:
    """``async with deadlines.within(seconds):`` — raises TimeoutError when the time is up.

    The runner uses the same steps without the context manager (two coroutines fewer per probe):
    :meth:`enter`, then :meth:`timed_out` when a ``CancelledError`` arrives, and :meth:`leave`."""

    __slots__ = ("_owner", "_seconds", "_task", "_cancelling", "at", "expired")

    def __init__(self, owner: Deadlines, seconds: float) -> None:
        self._owner = owner
        self._seconds = seconds
        self.expired = False

    def enter(self) -> None:
        """Start watching the current task."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        assert task is not None
        self._task = task
        self._cancelling = task.cancelling()
        self.at = loop.time() + self._seconds
        self._owner._watch(task, self)

    def leave(self) -> None:
        """Stop watching (the deadline can no longer fire)."""
        self._owner._unwatch(self._task)

    def timed_out(self) -> bool:
        """For a ``CancelledError`` that reached the watched code: True when it is this deadline's
        own cancellation (now withdrawn: treat it as a timeout), False when it came from elsewhere
        (shutdown) and must propagate, also if it arrived together with the deadline's."""
        return self.expired and self._task.uncancel() <= self._cancelling

    async def __aenter__(self) -> Deadline:
        self.enter()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool:
        self.leave()
        if kind is asyncio.CancelledError and self.timed_out():
            raise TimeoutError from exc
        return False


class Deadlines:
    def __init__(self) -> None:
        self._watched: dict[asyncio.Task[object], Deadline] = {}
        self._ticking = False

    def within(self, seconds: float) -> Deadline:
        return Deadline(self, seconds)

    def _watch(self, task: asyncio.Task[object], deadline: Deadline) -> None:
        self._watched[task] = deadline
        if not self._ticking:
            self._ticking = True
            asyncio.get_running_loop().call_later(TICK, self._tick)

    def _unwatch(self, task: asyncio.Task[object]) -> None:
        self._watched.pop(task, None)

    def _tick(self) -> None:
        now = asyncio.get_running_loop().time()
        for task, deadline in list(self._watched.items()):
            if deadline.at <= now and not deadline.expired:
                deadline.expired = True
                task.cancel()
        if self._watched:
            asyncio.get_running_loop().call_later(TICK, self._tick)
        else:
            self._ticking = False
