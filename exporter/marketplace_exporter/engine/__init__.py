"""The probe engine: one asyncio task per check, each on its own interval.

A slow or hanging target never delays another check: every check has its own task, its own
deadline (``asyncio.timeout``), and waits only for a slot on the host it talks to. The engine owns
time, quota budgets, back-off and the store; adapters only build requests and classify answers.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from marketplace_exporter.catalogue import SkipReason
from marketplace_exporter.config import CheckSpec, LoadedConfig
from marketplace_exporter.engine.backoff import first_delay, next_delay
from marketplace_exporter.engine.budget import BudgetKey, QuotaBudgets
from marketplace_exporter.engine.runner import ProbeRunner
from marketplace_exporter.engine.transport import CertificateWatcher
from marketplace_exporter.store import ProbeRecord, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuotaWait:
    """A probe was not sent: the exporter's share of the documented limit is spent."""

    seconds: float


class Engine:
    def __init__(self, session: aiohttp.ClientSession, store: Store, *,
                 certificates: CertificateWatcher | None = None,
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None) -> None:
        self.store = store
        self._session = session
        self._certificates = certificates
        self._clock = clock
        self._rng = rng or random.Random()
        self._budgets = QuotaBudgets()
        self._tasks: dict[str, tuple[CheckSpec, asyncio.Task[None]]] = {}
        self._slots = asyncio.Semaphore(64)
        self._runner: ProbeRunner | None = None
        self.config: LoadedConfig | None = None

    def apply(self, config: LoadedConfig) -> None:
        """Start, restart or stop check tasks so they match ``config``. Unchanged checks keep
        running undisturbed (their schedule and counters survive a reload)."""
        if self._runner is None:
            self._runner = ProbeRunner(self._session, max_body_bytes=config.max_body_bytes,
                                       concurrency_per_host=config.concurrency_per_host,
                                       certificates=self._certificates, clock=self._clock)
        else:
            self._runner.reconfigure(max_body_bytes=config.max_body_bytes,
                                     concurrency_per_host=config.concurrency_per_host)
        if self.config is None or config.concurrency != self.config.concurrency:
            self._slots = asyncio.Semaphore(config.concurrency)
        wanted = config.by_id()
        for check_id, (spec, task) in list(self._tasks.items()):
            if check_id not in wanted or wanted[check_id].fingerprint != spec.fingerprint:
                task.cancel()
                del self._tasks[check_id]
        kept = {check_id: spec for check_id, (spec, _) in self._tasks.items()}
        # unchanged checks keep their spec object so records of their running probe still land
        specs = tuple(kept.get(check.id, check) for check in config.checks)
        self.store.reconcile(specs)
        self.store.deprecations = dict(config.deprecations)
        for spec in specs:
            if spec.id not in self._tasks:
                task = asyncio.create_task(self._loop(spec), name=f"probe {spec.id}")
                self._tasks[spec.id] = (spec, task)
        self.config = config

    async def stop(self) -> None:
        tasks = [task for _, task in self._tasks.values()]
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def spec(self, check_id: str) -> CheckSpec | None:
        entry = self._tasks.get(check_id)
        return entry[0] if entry else None

    async def probe_now(self, check_id: str, *, debug: bool = False) -> ProbeRecord | QuotaWait | None:
        """Run a configured check immediately (``/probe``), within its quota budget."""
        spec = self.spec(check_id)
        if spec is None:
            return None
        return await self._probe(spec, debug=debug, scheduled_at=None)

    async def _loop(self, spec: CheckSpec) -> None:
        delay = first_delay(spec.interval, spec.jitter, self._rng)
        while True:
            scheduled_at = self._clock() + delay
            state = self.store.checks.get(spec.id)
            if state is not None:
                state.next_run_at = scheduled_at
            await asyncio.sleep(delay)
            try:
                await self._probe(spec, debug=False, scheduled_at=scheduled_at)
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must survive anything; the runner already classifies
                log.exception("unexpected error in the probe loop of %s", spec.id)
            state = self.store.checks.get(spec.id)
            throttles = state.consecutive_throttles if state is not None else 0
            retry_after = None
            if state is not None and state.last is not None:
                retry_after = state.last.outcome.retry_after_seconds
            delay = next_delay(spec.interval, spec.jitter, consecutive_throttles=throttles,
                               retry_after=retry_after, rng=self._rng)

    async def _probe(self, spec: CheckSpec, *, debug: bool, scheduled_at: float | None) -> ProbeRecord | QuotaWait:
        assert self._runner is not None
        key: BudgetKey = (spec.marketplace, spec.account, spec.operation.name, spec.sandbox)
        limits = spec.operation.limits(spec.sandbox)
        wait = self._budgets.try_acquire(key, limits, spec.quota_budget, self._clock())
        if wait is not None:
            self.store.record_skip(spec, SkipReason.QUOTA_BUDGET, self._clock())
            return QuotaWait(wait)
        modelled: list[float | None] = [None]

        def spent() -> None:
            modelled[0] = self._budgets.spend(key, limits, self._clock())

        async with self._slots:
            if scheduled_at is not None:
                self.store.lateness.observe(max(0.0, self._clock() - scheduled_at))
            record = await self._runner.run(spec, debug=debug, on_call=spent)
        self.store.record(spec, record, modelled[0])
        return record
