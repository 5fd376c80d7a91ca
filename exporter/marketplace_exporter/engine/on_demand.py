"""On-demand probes (``/probe``): what anyone who can reach the exporter may make it spend.

Before issue 14, every ``/probe`` request sent a probe upstream and recorded it as the check's own
result: 1,000 calls made 1,002 Shopee calls in 1.3 s, 300 calls spent 300 of eBay Analytics' 5,000
a day, and the flood's 396 ``timeout`` failures (probes queued behind each other for the host's
slots) tripped the burn-rate alerts. So an on-demand probe now:

* runs upstream at most once per check per ``interval`` (the rate the seller chose for the
  check), within the check's quota budget where the platform documents a limit, and never while
  the platform's Retry-After (or an adapter's pause) is in force, for background or on-demand;
* is shared: concurrent requests for one check wait for the same upstream probe, and at most
  :data:`MAX_IN_FLIGHT` run at once over all checks;
* is never recorded as the check's result: the background series, alerts and the deploy gate see
  only the scheduled probes. The result goes to the caller and is kept here for the next one.

A plain ``/probe`` is answered from the newest result younger than the check's interval (the
background's or an on-demand one) before anything is sent: a Prometheus scraping ``/probe`` every
15 s costs the platform nothing more than the background probes. ``debug=true`` asks for a fresh
probe with its trace; when the check's on-demand probe was already spent, the last trace is served
with its age, or, if there is none (quota, Retry-After), the caller gets a 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from marketplace_exporter.catalogue import Reason
from marketplace_exporter.config import CheckSpec
from marketplace_exporter.store import ProbeRecord, Store

#: on-demand probes in flight at once, all checks together: a caller walking every check id (the
#: 404 lists them) must not take the per-host slots the background probes need (their queued
#: probes would time out: the false timeouts of issue 14). Beyond it: cached, or 429 for a second.
MAX_IN_FLIGHT = 8


class Source(enum.Enum):
    """Where an answer's result comes from (the ``X-Probe-Result`` header of ``/probe``)."""

    FRESH = "fresh"  # this request's own upstream probe
    SHARED = "shared"  # an upstream probe another request started
    CACHED = "cached"  # an earlier result (``Age`` says how old)


@dataclass(frozen=True)
class Answer:
    """A result for the caller (``record`` set), or a refusal with the seconds until a fresh probe
    is possible (``record`` None)."""

    record: ProbeRecord | None
    source: Source | None
    #: seconds since the result was measured (0 for a fresh one)
    age: float
    #: seconds until this check may be probed on demand again
    next_fresh_in: float
    #: why no fresh probe was sent (quota budget, the platform's Retry-After, the interval)
    why: str = ""


@dataclass(frozen=True)
class Spent:
    """A probe that was not sent: the quota budget refused it for ``seconds``."""

    seconds: float


#: runs one unrecorded probe with its trace: a record, or Spent when the quota budget refuses
RunOnDemand = Callable[[CheckSpec], Awaitable[ProbeRecord | Spent]]


class OnDemandProbes:
    def __init__(self, run: RunOnDemand, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._run = run
        self._store = store
        self._clock = clock
        #: check id → (the spec it ran for, when it started, its record or None if refused)
        self._last: dict[str, tuple[CheckSpec, float, ProbeRecord | None]] = {}
        self._inflight: dict[str, asyncio.Task[ProbeRecord | Spent]] = {}
        #: check id → when the quota budget frees up again (on-demand refusals are not recorded)
        self._quota_until: dict[str, float] = {}

    async def answer(self, spec: CheckSpec, *, debug: bool) -> Answer:
        inflight = self._inflight.get(spec.id)
        if inflight is not None and self._last.get(spec.id, (None,))[0] is spec:
            return self._answered(spec, await asyncio.shield(inflight), Source.SHARED)
        now = self._clock()
        fresh_at, why = self._next_fresh(spec, now)
        if fresh_at <= now and len(self._inflight) >= MAX_IN_FLIGHT:
            fresh_at, why = now + 1.0, f"{MAX_IN_FLIGHT} on-demand probes of other checks are in flight"
        if not debug:
            newest = self._newest(spec)
            if newest is not None and (now - newest.finished_at < spec.interval or fresh_at > now):
                return Answer(newest, Source.CACHED, max(0.0, now - newest.finished_at),
                              max(0.0, fresh_at - now), why)
        if fresh_at > now:
            mine = self._mine(spec)
            if debug and mine is not None and mine.debug:
                return Answer(mine, Source.CACHED, max(0.0, now - mine.finished_at), fresh_at - now, why)
            return Answer(None, None, 0.0, fresh_at - now, why)
        return self._answered(spec, await asyncio.shield(self._start(spec, now)), Source.FRESH)

    def forget(self, check_ids: set[str]) -> None:
        """Drop what is kept for checks no longer configured (a reload)."""
        for kept in (self._last, self._quota_until):
            for check_id in [c for c in kept if c not in check_ids]:
                del kept[check_id]

    def stop(self) -> None:
        """Cancel the probes in flight (shutdown)."""
        for task in self._inflight.values():
            task.cancel()

    def _answered(self, spec: CheckSpec, result: ProbeRecord | Spent, source: Source) -> Answer:
        now = self._clock()
        if isinstance(result, Spent):
            return Answer(None, None, 0.0, result.seconds, "the check's quota budget is spent")
        fresh_at, why = self._next_fresh(spec, now)
        return Answer(result, source, 0.0, max(0.0, fresh_at - now), why)

    def _start(self, spec: CheckSpec, now: float) -> asyncio.Task[ProbeRecord | Spent]:
        """The upstream probe as a task of its own, so that a caller hanging up does not cancel the
        probe other callers share; the allowance is spent from the start."""
        self._last[spec.id] = (spec, now, self._mine(spec))
        task = asyncio.ensure_future(self._run(spec))
        self._inflight[spec.id] = task
        task.add_done_callback(lambda done: self._finished(spec, now, done))
        return task

    def _finished(self, spec: CheckSpec, started: float, task: asyncio.Task[ProbeRecord | Spent]) -> None:
        if self._inflight.get(spec.id) is task:
            del self._inflight[spec.id]
        if task.cancelled() or task.exception() is not None or self._last.get(spec.id, (None,))[0] is not spec:
            return  # shutdown, or the check changed meanwhile: the allowance stays spent
        result = task.result()
        if isinstance(result, Spent):  # nothing was sent: only the quota budget holds the check back
            self._quota_until[spec.id] = self._clock() + result.seconds
            self._last[spec.id] = (spec, started - spec.interval, self._mine(spec))
        else:
            self._last[spec.id] = (spec, started, result)

    def _mine(self, spec: CheckSpec) -> ProbeRecord | None:
        kept = self._last.get(spec.id)
        return kept[2] if kept is not None and kept[0] is spec else None

    def _newest(self, spec: CheckSpec) -> ProbeRecord | None:
        status = self._store.status(spec.id)
        background = status.last if status is not None else None
        mine = self._mine(spec)
        if background is None or (mine is not None and mine.finished_at > background.finished_at):
            return mine
        return background

    def _next_fresh(self, spec: CheckSpec, now: float) -> tuple[float, str]:
        """When this check may next be probed on demand, and what holds it back until then."""
        holds = [(0.0, "")]
        kept = self._last.get(spec.id)
        if kept is not None and kept[0] is spec:
            holds.append((kept[1] + spec.interval, f"one on-demand probe per check per interval ({spec.interval:g}s)"))
            if kept[2] is not None and kept[2].outcome.retry_after_seconds is not None:
                holds.append((kept[2].finished_at + kept[2].outcome.retry_after_seconds,
                              "the platform asked to wait (Retry-After)"))
        holds.append((self._quota_until.get(spec.id, 0.0), "the check's quota budget is spent"))
        status = self._store.status(spec.id)
        last = status.last if status is not None else None
        if (status is not None and last is not None and status.next_run_at is not None
                and (last.outcome.retry_after_seconds is not None or last.outcome.reason is Reason.THROTTLED)):
            holds.append((status.next_run_at, "the platform throttles this check (Retry-After or back-off)"))
        return max(holds, key=lambda hold: hold[0])


__all__ = ["MAX_IN_FLIGHT", "Answer", "OnDemandProbes", "RunOnDemand", "Source", "Spent"]
