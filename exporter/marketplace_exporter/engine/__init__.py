"""The probe engine: every check on its own interval, run by a pool of workers.

A slow or hanging target never delays another check: each probe has its own deadline
(``asyncio.timeout`` in the runner), occupies one worker, and waits only for a slot on the host it
talks to (see scheduler.py). The engine owns time, quota budgets, back-off and the store; adapters
only build requests and classify answers.
"""

from __future__ import annotations

import gc
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
from marketplace_exporter.engine.on_demand import Answer, OnDemandProbes, Spent
from marketplace_exporter.engine.runner import ProbeRunner
from marketplace_exporter.engine.scheduler import Scheduler
from marketplace_exporter.engine.transport import CertificateWatcher
from marketplace_exporter.store import Health, ProbeRecord, Store

log = logging.getLogger(__name__)

#: configs at least this large move the heap out of the garbage collector's sight after a load
FREEZE_MIN_CHECKS = 1000


def _freeze_heap() -> None:
    """A full garbage collection walks every object: ~0.2 s of stalled event loop at 50,000 checks
    (config, specs and store), during which every probe in flight measures the stall as API
    latency. The config and the store live until the next reload, so after a load they are moved
    into the collector's permanent generation (``gc.freeze``), which collections skip. The collection
    just before releases the previous config's garbage first; small configs skip both (cheap
    either way, and tests apply configs many times)."""
    gc.collect()
    gc.freeze()


#: what :meth:`Engine._budget` answers for an operation without a documented limit (most probes)
_NO_BUDGET: tuple[None, None, None] = (None, None, None)


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
        # the scheduler calls _probe(spec, lateness) itself: no wrapper call or coroutine per probe
        self._scheduler = Scheduler(self._probe, self._delay_after)
        self._runner: ProbeRunner | None = None
        self._on_demand = OnDemandProbes(self._unrecorded_probe, store, clock)
        self.config: LoadedConfig | None = None

    def apply(self, config: LoadedConfig) -> None:
        """Start, restart or stop checks so they match ``config``. Unchanged checks keep running
        undisturbed (their schedule, counters and cached tokens survive a reload)."""
        if self._runner is None:
            self._runner = ProbeRunner(self._session, max_body_bytes=config.max_body_bytes,
                                       concurrency_per_host=config.concurrency_per_host,
                                       max_retry_after=config.max_retry_after,
                                       certificates=self._certificates, clock=self._clock)
        else:
            self._runner.reconfigure(max_body_bytes=config.max_body_bytes,
                                     concurrency_per_host=config.concurrency_per_host,
                                     max_retry_after=config.max_retry_after)
        # unchanged checks keep their spec object, so their queued entry and in-flight probe stay valid
        running = (self._scheduler.current(check.id) for check in config.checks)
        specs = tuple(old if old is not None and old.fingerprint == new.fingerprint else new
                      for old, new in zip(running, config.checks, strict=True))
        self.store.reconcile(specs)
        self._on_demand.forget({spec.id for spec in specs})
        self.store.set_deprecations(config.deprecations)
        self.store.keep_request_durations(config.request_duration_histogram)
        self._scheduler.set_checks(specs, self._first_delay)
        self._scheduler.set_concurrency(config.concurrency)
        self.config = config
        if len(config.checks) >= FREEZE_MIN_CHECKS:
            _freeze_heap()

    async def stop(self) -> None:
        self._on_demand.stop()
        await self._scheduler.stop()

    def spec(self, check_id: str) -> CheckSpec | None:
        return self._scheduler.current(check_id)

    async def probe_now(self, check_id: str, *, debug: bool = False) -> ProbeRecord | QuotaWait | None:
        """Run a configured check immediately within its quota budget, recorded as its own result:
        the exporter's own callers (the deploy gate's fresh rounds), never an HTTP client."""
        spec = self.spec(check_id)
        if spec is None:
            return None
        return await self._probe(spec, None, debug=debug)

    async def probe_on_demand(self, check_id: str, *, debug: bool = False) -> Answer | None:
        """``/probe``: a result for anyone who asks, at most one upstream probe per check per
        interval, shared, never recorded as the check's result (engine/on_demand.py)."""
        spec = self.spec(check_id)
        if spec is None:
            return None
        return await self._on_demand.answer(spec, debug=debug)

    def _first_delay(self, spec: CheckSpec) -> float:
        delay = first_delay(spec.interval, spec.jitter, self._rng)
        self._mark_next_run(spec, delay)
        return delay

    def _delay_after(self, spec: CheckSpec) -> float:
        throttles, retry_after = self.store.backoff_inputs(spec.id)
        delay = next_delay(spec.interval, spec.jitter, consecutive_throttles=throttles, retry_after=retry_after,
                           rng=self._rng)
        self._mark_next_run(spec, delay)
        return delay

    def _mark_next_run(self, spec: CheckSpec, delay: float) -> None:
        self.store.mark_next_run(spec, self._clock() + delay)

    def _budget(self, spec: CheckSpec) -> tuple[float | None, Callable[[], None] | None, list[float | None] | None]:
        """(seconds to wait or None, what to call when the CALL step is sent, the modelled ratio it
        leaves once spent) for ``spec``'s documented limit; nothing is enforced (or modelled) without one."""
        limits = spec.operation.limits(spec.sandbox)
        if limits is None:
            return _NO_BUDGET
        modelled: list[float | None] = [None]
        key: BudgetKey = (spec.marketplace, spec.account, spec.operation.name, spec.sandbox)
        wait = self._budgets.try_acquire(key, limits, spec.quota_budget, self._clock())
        if wait is not None:
            return wait, None, modelled

        def spent() -> None:
            modelled[0] = self._budgets.spend(key, limits, self._clock())

        return None, spent, modelled

    async def _unrecorded_probe(self, spec: CheckSpec) -> ProbeRecord | Spent:
        """An on-demand probe: same budget, traced, recorded nowhere (not even a skip)."""
        assert self._runner is not None
        wait, spent, _ = self._budget(spec)
        if wait is not None:
            return Spent(wait)
        return await self._runner.run(spec, debug=True, on_call=spent)

    async def _probe(self, spec: CheckSpec, lateness: float | None, debug: bool = False) -> ProbeRecord | QuotaWait:
        """``lateness``: how late a scheduled probe started (None: run on request)."""
        assert self._runner is not None
        wait, spent, modelled = self._budget(spec)
        if wait is not None:
            self.store.record_skip(spec, SkipReason.QUOTA_BUDGET, self._clock())
            return QuotaWait(wait)
        if lateness is not None:
            self.store.observe_lateness(lateness)
        was_failing = self.store.health(spec.id) is Health.FAILING
        record = await self._runner.run(spec, debug=debug, on_call=spent)
        self.store.record(spec, record, modelled[0] if modelled is not None else None)
        _log_transition(spec, record, was_failing)
        return record


def _log_transition(spec: CheckSpec, record: ProbeRecord, was_failing: bool) -> None:
    """State changes at WARNING/INFO (what an operator greps for), every result at DEBUG."""
    outcome = record.outcome
    if outcome.success:
        if was_failing:
            log.info("%s recovered (HTTP %s in %.0f ms)", spec.id, outcome.http_status, record.duration * 1000)
    elif not was_failing:
        log.warning("%s failing: reason=%s code=%s HTTP %s: %s", spec.id, outcome.reason, outcome.code or "-",
                    outcome.http_status or "-", outcome.message)
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%s %s in %.0f ms", spec.id, "ok" if outcome.success else f"failed ({outcome.reason})",
                  record.duration * 1000)
