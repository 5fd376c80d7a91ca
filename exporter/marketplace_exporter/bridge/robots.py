"""One gate per robot (per webhook URL), shared by every receiver that posts to it.

The robot counts requests, not receivers: two receivers pointing at one WeCom robot share its 20
messages a minute and its 5 in 10 s. So the limiter, the throttle pause and the outage back-off
live here, keyed by a hash of the URL (the URL carries the robot's key, so it is never stored):

- **limits**: the strictest of the receivers' settings, reserved before each request
  (:class:`~.ratelimit.SlidingWindowLimiter`), rebuilt after a restart from the outbox's
  ``robot_sends`` (every receiver's requests to this robot);
- **throttled**: the robot said "too fast": nobody sends to it until the pause is over;
- **down** (5xx, connection refused, timeout): ONE request at a time probes it, at a back-off
  that doubles up to ``retry.max_backoff`` (default 20 s); the first success wakes every waiting
  receiver, so queued messages flow again within that cap of the robot coming back — without the
  receivers hammering a robot that is down.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from marketplace_exporter.bridge.ratelimit import Reservation, SlidingWindowLimiter

#: while a probe of a robot that is down is in flight, others look again after this long
PROBE_POLL_S = 0.2


def robot_key(url: str) -> str:
    """A stable id of the robot behind ``url`` that does not reveal its key."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]


@dataclass
class RobotGate:
    key: str
    limiter: SlidingWindowLimiter
    #: no request before this (monotonic): a throttle pause or the outage back-off
    not_before: float = 0.0
    backoff: float = 0.0
    down: bool = False
    probing: int = 0
    #: called with the key when the robot answers again after being down (wakes its receivers)
    on_recovered: Callable[[str], None] | None = field(default=None, repr=False)

    @property
    def limits(self) -> list[tuple[int, float]]:
        return self.limiter.limits

    def wait_time(self, now: float) -> float:
        """Seconds before a request may go to this robot (0: now)."""
        if now < self.not_before:
            return self.not_before - now
        if self.down and self.probing:
            return PROBE_POLL_S
        return self.limiter.wait_time(now)

    def remaining(self, now: float) -> int:
        return 0 if self.wait_time(now) > 0 else self.limiter.remaining(now)

    def reserve(self, now: float) -> Reservation | None:
        if self.wait_time(now) > 0:
            return None
        reservation = self.limiter.reserve(now)
        if reservation is not None and self.down:
            self.probing += 1
        return reservation

    def answered(self, reservation: Reservation, now: float) -> None:
        """The request of ``reservation`` is over (whatever the outcome)."""
        if self.down and self.probing:
            self.probing -= 1
        reservation.done(now)

    def succeeded(self) -> None:
        was_down = self.down
        self.down, self.backoff, self.not_before = False, 0.0, 0.0
        if was_down and self.on_recovered is not None:
            self.on_recovered(self.key)

    def throttled(self, now: float, pause: float) -> None:
        self.not_before = max(self.not_before, now + pause)

    def failed(self, now: float, initial: float, cap: float) -> float:
        """A transient failure (5xx, transport): back off, doubling up to ``cap``; the back-off."""
        self.down = True
        self.backoff = min(cap, self.backoff * 2 if self.backoff else initial)
        self.not_before = max(self.not_before, now + self.backoff)
        return self.backoff

    def seed(self, sends: Sequence[float]) -> None:
        for at in sends:
            self.limiter.record(at)
