"""Per-robot send limits as sliding windows ("at most N sends in any W seconds"), with reservations.

The robots document their limits as windows — DingTalk and WeCom 20 messages a minute (DingTalk
then blocks the robot for ten minutes), Feishu 100 a minute *and* 5 a second. A classic token
bucket of capacity 20 refilled at 1/3 s would allow 21 sends in the first minute after a burst
and trip DingTalk's block; a sliding window is the token bucket that cannot: a token spent at
``t`` comes back at exactly ``t + W``.

A send is counted from the moment it is *reserved* (before the request leaves), not when the
robot answers: two senders sharing a robot cannot both pass the check and then both send. While
the request is in flight it counts in every window (it may reach the robot at any moment); once
answered, it counts at its answer time, the latest moment the robot can have seen it. That is
conservative on both ends: however slow or uneven the network, the robot never sees more than N
requests in any W seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: how long to wait when only in-flight requests block a slot (they end within the request timeout;
#: their end wakes nobody, so the waiter looks again soon)
IN_FLIGHT_POLL_S = 0.1


@dataclass(eq=False)  # compared by identity: two reservations at the same instant are still two
class Reservation:
    """One reserved send; :meth:`done` when the robot answered (or the request failed)."""

    limiter: SlidingWindowLimiter
    at: float
    in_flight: bool = True

    def done(self, now: float) -> None:
        if self.in_flight:
            self.in_flight = False
            self.at = max(self.at, now)
            self.limiter._in_flight.remove(self)
            self.limiter._sent.append(self.at)
            self.limiter._sent.sort()


class SlidingWindowLimiter:
    """``limits`` is a list of ``(count, window_seconds)``; all must allow a send."""

    def __init__(self, limits: Sequence[tuple[int, float]]) -> None:
        self.limits = [(max(1, int(count)), float(window)) for count, window in limits]
        self._longest = max((window for _, window in self.limits), default=0.0)
        #: answer times of finished sends, sorted; older than the longest window are dropped
        self._sent: list[float] = []
        self._in_flight: list[Reservation] = []

    def _forget(self, now: float) -> None:
        cut = 0
        while cut < len(self._sent) and self._sent[cut] <= now - self._longest:
            cut += 1
        if cut:
            del self._sent[:cut]

    def _in_window(self, window: float, now: float) -> list[float]:
        return [t for t in self._sent if t > now - window]

    def remaining(self, now: float) -> int:
        """How many sends are allowed right now."""
        self._forget(now)
        left = [count - len(self._in_window(window, now)) - len(self._in_flight) for count, window in self.limits]
        return max(0, min(left, default=1 << 30))

    def wait_time(self, now: float) -> float:
        """Seconds until one send is allowed (0 when allowed now)."""
        self._forget(now)
        wait = 0.0
        for count, window in self.limits:
            sent = self._in_window(window, now)
            over = len(sent) + len(self._in_flight) - count + 1
            if over <= 0:
                continue
            if over > len(sent):  # only in-flight requests are in the way: they end soon
                wait = max(wait, IN_FLIGHT_POLL_S)
            else:
                wait = max(wait, sent[over - 1] + window - now)
        return wait

    def reserve(self, now: float) -> Reservation | None:
        """Take a slot if one is free now (no await between the check and the taking)."""
        if self.wait_time(now) > 0:
            return None
        reservation = Reservation(self, now)
        self._in_flight.append(reservation)
        return reservation

    def record(self, at: float) -> None:
        """A send that already happened (a restart's memory: the outbox's record of recent sends)."""
        self._sent.append(at)
        self._sent.sort()


def limits_for(per_minute: float, per_second: float | None, per_10s: int = 0) -> list[tuple[int, float]]:
    """Per-minute limit (fractions allowed: 0.5/min → 1 per 2 minutes), optional per-second limit and
    optional pacing (at most ``per_10s`` in any 10 s)."""
    limits: list[tuple[int, float]] = []
    if per_10s:
        limits.append((per_10s, 10.0))
    if per_minute >= 1:
        limits.append((int(per_minute), 60.0))
    elif per_minute > 0:
        limits.append((1, 60.0 / per_minute))
    if per_second:
        if per_second >= 1:
            limits.append((int(per_second), 1.0))
        else:
            limits.append((1, 1.0 / per_second))
    return limits


def strictest(limit_sets: Sequence[Sequence[tuple[int, float]]]) -> list[tuple[int, float]]:
    """One robot, several receivers with their own settings: the smallest count per window wins."""
    best: dict[float, int] = {}
    for limits in limit_sets:
        for count, window in limits:
            best[window] = min(count, best.get(window, count))
    return sorted(((count, window) for window, count in best.items()), key=lambda cw: cw[1])
