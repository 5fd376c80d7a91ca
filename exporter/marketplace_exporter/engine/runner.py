"""Runs one probe: drives the adapter's steps over HTTP under one deadline and measures them.

The engine, not the adapter, applies timeouts, measures duration, spends quota and classifies
transport failures. Nothing an adapter or a response does can raise out of :meth:`ProbeRunner.run`:
an exception inside an adapter is a bug, logged with its traceback and recorded as ``internal``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp

from marketplace_exporter.adapters.base import ProbeContext, ProbeSteps
from marketplace_exporter.catalogue import Reason, Step
from marketplace_exporter.config import CheckSpec
from marketplace_exporter.engine import transport
from marketplace_exporter.engine.deadlines import Deadlines
from marketplace_exporter.engine.debuglog import DebugLog
from marketplace_exporter.model import ProbeOutcome, TokenCache
from marketplace_exporter.store import ProbeRecord, fold_code

log = logging.getLogger(__name__)
#: the log of a probe nobody asked to debug: records nothing, so one serves every such probe
_QUIET = DebugLog(False)


class ProbeRunner:
    def __init__(self, session: aiohttp.ClientSession, *, max_body_bytes: int, concurrency_per_host: int,
                 max_retry_after: float = 900.0, certificates: transport.CertificateWatcher | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._session = session
        self._max_retry_after = max_retry_after
        self._certificates = certificates
        self._deadlines = Deadlines()
        self._max_body = max_body_bytes
        self._per_host = concurrency_per_host
        self._host_slots: dict[str, HostSlot] = {}
        self._clock = clock
        self.tokens = TokenCache()

    def reconfigure(self, *, max_body_bytes: int, concurrency_per_host: int, max_retry_after: float = 900.0) -> None:
        """Apply reloaded limits; host slots are rebuilt lazily at the new size."""
        self._max_body = max_body_bytes
        self._max_retry_after = max_retry_after
        if concurrency_per_host != self._per_host:
            self._per_host = concurrency_per_host
            self._host_slots.clear()

    async def run(self, spec: CheckSpec, *, debug: bool = False,
                  on_call: Callable[[], None] | None = None) -> ProbeRecord:
        """Run ``spec`` once. ``on_call`` is told each time a CALL step is sent (quota spend)."""
        trace = DebugLog(True) if debug else _QUIET
        started_at = self._clock()
        t0 = time.perf_counter()
        steps: list[Step] = []
        call_duration: float | None = None
        https_hosts: set[tuple[str, int]] | None = None
        # positional (alias, site, base_url, auth_url, sandbox, credentials, operation, params, now,
        # tokens): keywords cost twice as much here
        ctx = ProbeContext(spec.account, spec.site, spec.base_url, spec.auth_url, spec.sandbox, spec.credentials,
                           spec.operation.name, spec.params, started_at, self.tokens)
        if debug:
            trace.add(f"probe {spec.id} (timeout {spec.timeout:g}s)")
        steps_gen: ProbeSteps | None = None
        # the deadline's steps without ``async with`` (two coroutines fewer per probe): its own
        # cancellation becomes a timeout below, any other propagates
        deadline = self._deadlines.within(spec.timeout)
        deadline.enter()
        try:
            steps_gen = spec.adapter.probe(ctx)
            request = next(steps_gen)
            while True:
                if debug:
                    trace.request(request)
                steps.append(request.step)
                if request.step is Step.CALL and on_call is not None:
                    on_call()
                slot = self._host_slot(request.url)
                if slot.free:  # uncontended: taken without a coroutine
                    slot.free -= 1
                else:
                    await slot.wait()
                # timed from here: waiting for our own per-host slot is not the platform's latency
                sent = time.perf_counter()
                try:
                    response = await transport.send(self._session, request, self._max_body)
                finally:
                    slot.release()
                elapsed = time.perf_counter() - sent
                if request.step is Step.CALL:
                    call_duration = elapsed
                if request.url.startswith("https://"):
                    if https_hosts is None:
                        https_hosts = set()
                    https_hosts.add(_host_port(request.url))
                if debug:
                    trace.response(response, elapsed)
                request = steps_gen.send(response)
        except StopIteration as done:  # the adapter finished (also before sending anything)
            outcome = done.value
        except asyncio.CancelledError:
            if not deadline.timed_out():
                raise
            outcome = _timed_out(spec)
        except TimeoutError:
            outcome = _timed_out(spec)
        except transport.TransportFailure as failure:
            outcome = ProbeOutcome.failed(failure.reason, failure.message, http_status=failure.http_status)
        except Exception:
            log.exception("adapter %s raised while probing %s", spec.marketplace, spec.id)
            outcome = ProbeOutcome.failed(Reason.INTERNAL, "exporter bug while probing: see the exporter log")
        finally:
            deadline.leave()
            if steps_gen is not None:
                steps_gen.close()
        if not isinstance(outcome, ProbeOutcome):
            log.error("adapter %s returned %r instead of a ProbeOutcome", spec.marketplace, type(outcome))
            outcome = ProbeOutcome.failed(Reason.INTERNAL, "exporter bug: adapter returned no outcome")
        if outcome.retry_after_seconds is not None and outcome.retry_after_seconds > self._max_retry_after:
            # the one cap on how long a platform may hold a check back (defaults.max_retry_after)
            outcome = outcome.amended(retry_after_seconds=self._max_retry_after)
        if outcome.text:
            # redacted NOW, while the redactor holds the tokens this probe used: the record is shown
            # for as long as it is the last one, and a token dropped after a 401 is forgotten by the
            # redactor once 256 newer values went through its grace set
            outcome = outcome._replace(text=outcome.message)
        duration = time.perf_counter() - t0
        tls = await self._certificate_expiries(https_hosts, started_at) if https_hosts else ()
        if debug:
            trace.add(f"= {'success' if outcome.success else 'failure'}"
                  f"{'' if outcome.success else f' reason={outcome.reason}'}"
                  f"{f' code={outcome.code}' if outcome.code else ''} in {duration * 1000:.1f} ms"
                  f"{f': {outcome.message}' if outcome.message else ''}")
        # positional (outcome, code_label, started_at, finished_at, duration, call_duration, steps,
        # debug, tls): keywords cost twice as much here
        return ProbeRecord(
            outcome, fold_code(outcome.code, spec.adapter.known_codes) if outcome.code else None, started_at,
            started_at + duration, duration, call_duration, tuple(steps), tuple(trace.lines) if debug else (), tls)

    async def _certificate_expiries(self, hosts: set[tuple[str, int]], now: float) -> tuple[tuple[str, float], ...]:
        """Outside the probe's timing: at most one extra handshake per host per hour."""
        if self._certificates is None or not hosts:
            return ()
        found = []
        for host, port in sorted(hosts):
            not_after = await self._certificates.not_after(host, port, now)
            if not_after is not None:
                found.append((host if port == 443 else f"{host}:{port}", not_after))
        return tuple(found)

    def _host_slot(self, url: str) -> HostSlot:
        host = _host(url)
        slot = self._host_slots.get(host)
        if slot is None:
            slot = self._host_slots[host] = HostSlot(self._per_host)
        return slot


class HostSlot:
    """``concurrency_per_host`` slots for one host, first come first served, like an
    ``asyncio.Semaphore`` but taken without a coroutine while one is free: the runner decrements
    :attr:`free` itself and awaits :meth:`wait` only when none is (the semaphore's ``async with``
    cost three coroutines and a generator per request). A released slot passes straight to the
    oldest waiter, so ``free > 0`` means nobody waits."""

    __slots__ = ("_waiters", "free")

    def __init__(self, size: int) -> None:
        self.free = size
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def wait(self) -> None:
        """Wait for a released slot (when :attr:`free` is 0); it is ours when this returns."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as we were cancelled: pass it on
            raise

    def release(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():  # a cancelled waiter gave up its place
                waiter.set_result(None)
                return
        self.free += 1


def _timed_out(spec: CheckSpec) -> ProbeOutcome:
    return ProbeOutcome.failed(Reason.TIMEOUT, f"no complete answer within {spec.timeout:g}s")


def _host(url: str) -> str:
    """``https://api.example.com:8443/x`` → ``api.example.com:8443`` (the host label, no userinfo)."""
    host = _HOSTS.get(url)
    if host is None:
        netloc = url.split("/", 3)[2] if "://" in url else url
        host = netloc.rsplit("@", 1)[-1]
        if len(_HOSTS) < MAX_CACHED_HOSTS:
            _HOSTS[url] = host
    return host


#: url → its host, for the URLs probes send to (most are the same string probe after probe);
#: strings only, so the garbage collector does not track the dict. Full, it admits no more.
_HOSTS: dict[str, str] = {}
MAX_CACHED_HOSTS = 4096


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
