"""When each check runs: one timer heap, one dispatcher, a fixed pool of workers.

A task per check sleeping on its own timer costs a timer, a future and a semaphore round-trip per
probe; measured flat out, that was a fifth of the engine's CPU (bench/README.md). Here every due
time sits in one heap; a single dispatcher moves due checks to a ready queue (waking at most every
``COALESCE_SECONDS``, so a thousand checks cost a few dozen wake-ups a second, not thousands), and
``concurrency`` workers take them from the queue. The worker count *is* the global concurrency
limit. A slow or hanging check occupies one worker until its deadline and never delays the heap:
other workers keep taking due checks, and per-host limits live in the runner.

A check has at most one entry in the heap or the queue at a time: a worker re-schedules it only
after its probe finished, so the interval is measured from the end of a probe, as with a loop.
Entries of checks removed or changed by a reload are dropped when they come up (identity test).

A heap entry is ``(due, number)`` with the spec in a dict by number: a tuple of two numbers is not
a container the garbage collector keeps walking, while ``(due, number, spec)`` was one per check,
alive for a whole interval, in the oldest generation a full collection walks (50,000 at 50,000
checks).
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import logging
import math
from collections.abc import Awaitable, Callable

from marketplace_exporter.config import CheckSpec

log = logging.getLogger(__name__)

#: a due check may start up to this late so the dispatcher can hand out batches
COALESCE_SECONDS = 0.005

RunProbe = Callable[[CheckSpec, float], Awaitable[object]]
NextDelay = Callable[[CheckSpec], float]


class Scheduler:
    def __init__(self, run: RunProbe, next_delay: NextDelay) -> None:
        self._run = run
        self._next_delay = next_delay
        self._active: dict[str, CheckSpec] = {}
        self._heap: list[tuple[float, int]] = []
        #: heap entry number → the spec it schedules
        self._entries: dict[int, CheckSpec] = {}
        self._order = itertools.count()
        #: due checks waiting for a worker, oldest first; idle workers wait on their own future
        #: (a deque and futures: ``asyncio.Queue`` cost ~10 Python calls per check passed on)
        self._ready: collections.deque[tuple[float, CheckSpec]] = collections.deque()
        self._idle: collections.deque[asyncio.Future[None]] = collections.deque()
        self._wake = asyncio.Event()
        self._next_wake = math.inf
        self._workers: list[asyncio.Task[None]] = []
        self._dispatcher: asyncio.Task[None] | None = None

    def current(self, check_id: str) -> CheckSpec | None:
        return self._active.get(check_id)

    def set_checks(self, specs: tuple[CheckSpec, ...], first_delay: NextDelay) -> None:
        """Adopt ``specs``: checks already running keep their place (pass the same objects)."""
        new = [spec for spec in specs if self._active.get(spec.id) is not spec]
        self._active = {spec.id: spec for spec in specs}
        for spec in new:
            self._push(spec, first_delay(spec))
        if self._dispatcher is None:
            self._dispatcher = asyncio.create_task(self._dispatch(), name="probe dispatcher")

    def set_concurrency(self, workers: int) -> None:
        while len(self._workers) < workers:
            self._workers.append(asyncio.create_task(self._work(), name=f"probe worker {len(self._workers)}"))
        while len(self._workers) > workers:
            self._workers.pop().cancel()  # an in-flight probe of that worker is abandoned

    async def stop(self) -> None:
        tasks = [*self._workers, *([self._dispatcher] if self._dispatcher else [])]
        self._workers, self._dispatcher = [], None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _push(self, spec: CheckSpec, delay: float) -> None:
        due = asyncio.get_running_loop().time() + delay
        number = next(self._order)
        self._entries[number] = spec
        heapq.heappush(self._heap, (due, number))
        if due < self._next_wake:
            self._wake.set()

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            heap = self._heap
            entries = self._entries
            while heap and heap[0][0] <= now + COALESCE_SECONDS:
                due, number = heapq.heappop(heap)
                spec = entries.pop(number)
                if self._active.get(spec.id) is spec:
                    self._ready.append((due, spec))
                    self._wake_worker()
            self._next_wake = heap[0][0] if heap else math.inf
            self._wake.clear()
            if not heap:
                await self._wake.wait()
                continue
            try:
                async with asyncio.timeout(max(self._next_wake - now, COALESCE_SECONDS)):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _wake_worker(self) -> None:
        """Wake one idle worker, if any waits, for an entry just made ready."""
        idle = self._idle
        while idle:
            waiter = idle.popleft()
            if not waiter.done():  # a cancelled worker's future is skipped
                waiter.set_result(None)
                return

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        ready = self._ready
        while True:
            while not ready:
                waiter = loop.create_future()
                self._idle.append(waiter)
                try:
                    await waiter
                except asyncio.CancelledError:
                    if waiter.done() and not waiter.cancelled() and ready:
                        self._wake_worker()  # woken for an entry it will not take: pass it on
                    raise
            due, spec = ready.popleft()
            if self._active.get(spec.id) is not spec:
                continue
            try:
                await self._run(spec, max(0.0, loop.time() - due))
            except asyncio.CancelledError:
                raise
            except Exception:  # a worker must survive anything; the runner already classifies
                log.exception("unexpected error while probing %s", spec.id)
            if self._active.get(spec.id) is spec:
                self._push(spec, self._next_delay(spec))
