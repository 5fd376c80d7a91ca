"""One worker per receiver: takes queued notifications in order, merges them when the robot's
rate limit would otherwise hold them back, renders, signs, sends, and records the outcome.

Rules (docs/bridge.md has the table):
- the robot's limit is never exceeded, whichever receivers share it (:mod:`robots`: one gate per
  robot URL; a slot is reserved before the request; DingTalk and WeCom are also paced at 5
  messages per 10 s); when more notifications wait than the limiter allows right now, as many as
  fit the byte limit go out as ONE merged message and the rest stay queued for the next one —
  nothing is summarised away;
- throttle codes → the robot pauses for the receiver's ``throttle_backoff``, then retry;
- transient failures (5xx, connection errors, timeouts) → the robot is "down": one probe at a
  time at an exponential back-off capped by ``retry.max_backoff`` (20 s), retried until delivered
  (never dropped); its first success wakes every receiver waiting for that robot;
- security failures (bad signature, unknown key) → ERROR log each time, retried
  ``retry.security_attempts`` times ``throttle_backoff`` apart, then ``failed`` (kept in the
  archive, shown by ``alerts history``; ``POST /-/reload`` with a changed receiver re-queues them);
- other rejections (message too large, unknown codes) → ``failed`` at once, ERROR log.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable

import aiohttp
from yarl import URL

from marketplace_exporter.bridge.channels import (
    Channel,
    OutboundRequest,
    Outcome,
    Verdict,
    channels,
    register_url_secrets,
    short,
)
from marketplace_exporter.bridge.config import BridgeConfig, ReceiverConfig
from marketplace_exporter.bridge.outbox import Archived, Outbox, Queued
from marketplace_exporter.bridge.ratelimit import SlidingWindowLimiter, limits_for, strictest
from marketplace_exporter.bridge.render import Message, RenderOptions, render
from marketplace_exporter.bridge.robots import RobotGate, robot_key
from marketplace_exporter.bridge.stats import Stats

log = logging.getLogger("marketplace_exporter.bridge")

_MAX_RESPONSE = 64 * 1024
#: how many queued notifications one merged message may consider
_MERGE_WINDOW = 200


def render_options(receiver: ReceiverConfig) -> RenderOptions:
    m = receiver.mentions
    return RenderOptions(
        channel=receiver.channel, language=receiver.language, timezone=receiver.timezone,
        grafana_url=receiver.grafana_url, alertmanager_url=receiver.alertmanager_url,
        runbook_base_url=receiver.runbook_base_url, mobiles=m.mobiles, user_ids=m.user_ids, at_all=m.all,
        mobiles_from=m.mobiles_from, user_ids_from=m.user_ids_from, allowed_mobiles=m.allowed_mobiles,
        allowed_user_ids=m.allowed_user_ids, max_mentions=m.max_mentions, keyword=receiver.keyword)


def render_batch(batch: list[Queued], receiver: ReceiverConfig, channel: Channel) -> tuple[Message, list[Queued]]:
    """The message for the longest prefix of ``batch`` whose alerts all fit (at least the first
    notification, cut if it alone is too large)."""
    options = render_options(receiver)
    group = batch
    while True:
        message = render([q.notification for q in group], options, channel.budget)
        if len(group) == 1:
            return message, group
        shown, fully = message.alerts_shown, 0
        for q in group:
            if shown < len(q.notification.alerts):
                break
            shown -= len(q.notification.alerts)
            fully += 1
        if fully == len(group):
            return message, group
        group = group[:max(1, fully)]


class Worker:
    def __init__(self, receiver: ReceiverConfig, delivery: Delivery) -> None:
        self.receiver = receiver
        self.delivery = delivery
        self.channel = channels()[receiver.channel]
        self.wake = asyncio.Event()
        #: waiting for work (not for a back-off or the rate limit): only then does a new
        #: notification need to wake the worker, so a burst does not spin it once per POST
        self.idle = False
        self.stopping = False
        self.not_before = 0.0
        self.backoff = 0.0
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        name = self.receiver.name
        while not self.stopping:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop delivery for good: log, pause, go on
                log.exception("bridge worker %s: unexpected error; retrying in 5s", name)
                await self._sleep(5.0)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake early for new work (``wake`` is cleared at the start of each step, before
        the outbox is read, so a notification committed meanwhile is never missed)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout=max(0.0, seconds))

    async def _step(self) -> None:
        d = self.delivery
        name = self.receiver.name
        self.wake.clear()
        if d.outbox.depth[name] <= 0 and not d.outbox.head(name, 1):
            self.idle = True
            try:
                await self._sleep(3600.0)
            finally:
                self.idle = False
            return
        now = d.clock()
        if now < self.not_before:
            await self._sleep(self.not_before - now)
            return
        gate = d.gate(self.receiver)
        wait = gate.wait_time(now)
        if wait > 0:
            await self._sleep(wait)
            return
        # more queued than the robot takes right now → merge; else send the oldest alone.
        # Only as many rows as needed to decide are read (the common case reads one or a few).
        # No await from the gate's check to the reservation: no other receiver can take the slot.
        remaining = gate.remaining(now)
        batch = d.outbox.head(name, 1 if remaining >= _MERGE_WINDOW else remaining + 1)
        if not batch:
            return
        if len(batch) > remaining:
            batch = d.outbox.head(name, _MERGE_WINDOW)
        else:
            batch = batch[:1]
        message, group = render_batch(batch, self.receiver, self.channel)
        reservation = gate.reserve(d.clock())
        if reservation is None:
            return
        try:
            verdict = await self._send(message, group)
        finally:
            # counted at its answer time (the latest the robot can have seen it), also on failure
            gate.answered(reservation, d.clock())
            d.outbox.record_send(gate.key, d.wall())
        self._settle(verdict, message, group, gate)

    async def _send(self, message: Message, group: list[Queued]) -> Verdict:
        d = self.delivery
        receiver = self.receiver
        msg_id = hashlib.sha256(",".join(str(q.id) for q in group).encode()).hexdigest()[:32]
        try:
            url = receiver.url.reveal()
            register_url_secrets(url)
            secret = receiver.secret.reveal() if receiver.secret else None
        except Exception as exc:  # SecretUnavailable: env var gone, file unreadable
            return Verdict(Outcome.TRANSIENT, "secret_unavailable", "", short(exc))
        request = self.channel.build(url, secret, message, d.wall(), msg_id)
        return await d.post(request, self.channel.classify)

    def _settle(self, verdict: Verdict, message: Message, group: list[Queued], gate: RobotGate) -> None:
        d = self.delivery
        r = self.receiver
        ids = [q.id for q in group]
        now = d.clock()
        if verdict.ok:
            d.outbox.finish(r.name, ids, self._archived("sent", verdict, message), now=d.wall())
            d.stats.ok(r.name, r.channel, [max(0.0, d.wall() - q.accepted_at) for q in group])
            self.backoff = 0.0
            gate.succeeded()
            log.info("bridge: delivered %d notification(s) to %s (%s)", len(ids), r.name, r.channel)
            return
        d.stats.failed(r.name, r.channel, verdict.reason)
        what = f"{r.name} ({r.channel}): {verdict.reason} code={verdict.code or '-'} {verdict.detail}"
        retry = d.config.retry
        if verdict.outcome is Outcome.THROTTLED:  # the robot's pause, for every receiver using it
            gate.throttled(now, r.throttle_backoff)
            d.outbox.attempted(ids, what, count=False)
            log.warning("bridge: robot throttled %s; retrying in %gs", what, r.throttle_backoff)
        elif verdict.outcome is Outcome.TRANSIENT and verdict.reason == "secret_unavailable":
            # this receiver's secret source, not the robot: back off this receiver only
            self.backoff = min(retry.max_backoff, self.backoff * 2 if self.backoff else retry.initial_backoff)
            self.not_before = now + self.backoff
            d.outbox.attempted(ids, what, count=False)
            log.warning("bridge: delivery failed %s; retrying in %gs", what, self.backoff)
        elif verdict.outcome is Outcome.TRANSIENT:  # the robot is down: one probe at a time, capped
            backoff = gate.failed(now, retry.initial_backoff, retry.max_backoff)
            d.outbox.attempted(ids, what, count=False)
            log.warning("bridge: delivery failed %s; retrying in %gs", what, backoff)
        elif verdict.reason == "security" and max(q.attempts for q in group) + 1 < d.config.retry.security_attempts:
            d.outbox.attempted(ids, what, count=True)
            self.not_before = now + r.throttle_backoff
            log.error("bridge: robot REFUSED our credentials %s — check the receiver's url/secret; "
                      "retrying in %gs", what, r.throttle_backoff)
        else:
            d.outbox.finish(r.name, ids, self._archived("failed", verdict, message), now=d.wall())
            log.error("bridge: %d notification(s) NOT delivered, marked failed: %s — see "
                      "`marketplace-exporter alerts history`; fix the receiver and POST /-/reload to retry",
                      len(ids), what)

    def _archived(self, outcome: str, verdict: Verdict, message: Message) -> Archived:
        return Archived(channel=self.receiver.channel, outcome=outcome, code=verdict.code, detail=verdict.detail,
                        title=message.title, text=message.text, alerts_total=message.alerts_total,
                        alerts_shown=message.alerts_shown)


def _limits(receiver: ReceiverConfig) -> list[tuple[int, float]]:
    return limits_for(receiver.per_minute, receiver.per_second, receiver.per_10s)


def _robot_of(receiver: ReceiverConfig) -> str | None:
    """The receiver's robot key; None while its URL's secret source is unavailable."""
    try:
        return robot_key(receiver.url.reveal())
    except Exception:  # SecretUnavailable: the send itself reports it
        return None


class Delivery:
    """Owns the workers, the HTTP session and the per-robot gates (limits, pauses, back-off)."""

    def __init__(self, config: BridgeConfig, outbox: Outbox, stats: Stats, *,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.config = config
        self.outbox = outbox
        self.stats = stats
        self.clock = clock
        self.wall = wall
        self.workers: dict[str, Worker] = {}
        self._gates: dict[str, RobotGate] = {}
        #: robot key → the strictest limits of the receivers posting to it (set by apply)
        self._robot_limits: dict[str, list[tuple[int, float]]] = {}
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        self.apply(self.config)

    def apply(self, config: BridgeConfig) -> None:
        """Start workers for new receivers, restart changed ones, stop removed ones."""
        self.config = config
        per_robot: dict[str, list[list[tuple[int, float]]]] = {}
        for receiver in config.receivers.values():
            key = _robot_of(receiver)
            if key is not None:
                per_robot.setdefault(key, []).append(_limits(receiver))
        self._robot_limits = {key: strictest(sets) for key, sets in per_robot.items()}
        for name in list(self.workers):
            current = config.receivers.get(name)
            if current is None or current.fingerprint != self.workers[name].receiver.fingerprint:
                self._stop_worker(name)
                if current is not None:
                    requeued = self.outbox.requeue_failed(name)
                    if requeued:
                        log.info("bridge: receiver %s changed; %d failed notification(s) queued again", name, requeued)
        for name, receiver in config.receivers.items():
            if name not in self.workers:
                worker = Worker(receiver, self)
                worker.task = asyncio.get_running_loop().create_task(worker.run(), name=f"bridge-worker-{name}")
                self.workers[name] = worker

    def _stop_worker(self, name: str) -> None:
        worker = self.workers.pop(name)
        worker.stopping = True
        if worker.task is not None:
            worker.task.cancel()

    def notify(self, receiver: str) -> None:
        worker = self.workers.get(receiver)
        if worker is not None and worker.idle:
            worker.wake.set()

    def gate(self, receiver: ReceiverConfig) -> RobotGate:
        """The robot's gate, shared by every receiver posting to the same URL; (re)built from the
        outbox's record of recent sends when first needed or when the robot's limits changed."""
        key = _robot_of(receiver) or f"receiver:{receiver.name}"
        limits = self._robot_limits.get(key) or _limits(receiver)
        gate = self._gates.get(key)
        if gate is None or gate.limits != limits:
            fresh = RobotGate(key, SlidingWindowLimiter(limits), on_recovered=self._wake_robot)
            if gate is not None:  # a reload: keep what the robot told us
                fresh.not_before, fresh.backoff, fresh.down = gate.not_before, gate.backoff, gate.down
            longest = max((window for _, window in limits), default=0.0)
            offset = self.clock() - self.wall()
            fresh.seed([at + offset for at in self.outbox.robot_sends(key, self.wall() - longest)])
            self._gates[key] = gate = fresh
        return gate

    def _wake_robot(self, key: str) -> None:
        """The robot answers again: every receiver waiting for it tries now, not at its back-off."""
        for worker in self.workers.values():
            if _robot_of(worker.receiver) == key:
                worker.wake.set()

    async def post(self, request: OutboundRequest, classify: Callable[[int, bytes], Verdict]) -> Verdict:
        """Send and classify; a response body is read whatever the status (robots put the verdict
        in the body). Exception texts go through the redactor (a URL can carry the key)."""
        assert self._session is not None
        channel_timeout = aiohttp.ClientTimeout(total=self.config.retry.request_timeout)
        try:
            async with self._session.post(URL(request.url, encoded=True), data=request.body,
                                          headers=dict(request.headers), timeout=channel_timeout,
                                          allow_redirects=False) as response:
                body = await response.content.read(_MAX_RESPONSE)
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return Verdict(Outcome.TRANSIENT, "transport", "", short(f"{type(exc).__name__}: {exc}"))
        return classify(status, body)

    async def stop(self) -> None:
        tasks = [w.task for w in self.workers.values() if w.task is not None]
        for name in list(self.workers):
            self._stop_worker(name)
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
