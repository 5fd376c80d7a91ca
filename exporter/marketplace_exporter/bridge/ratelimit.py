"""Per-robot send limits as sliding windows ("at most N sends in any W seconds").

The robots document their limits as windows — DingTalk and WeCom 20 messages a minute (DingTalk
then blocks the robot for ten minutes), Feishu 100 a minute *and* 5 a second. A classic token
bucket of capacity 20 refilled at 1/3 s would allow 21 sends in the first minute after a burst
and trip DingTalk's block; a sliding window is the token bucket that cannot: a token spent at
``t`` comes back at exactly ``t + W``. Several receivers pointing at the same robot share one
limiter (the robot counts, not the receiver).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence


class SlidingWindowLimiter:
    """``limits`` is a list of ``(count, window_seconds)``; all must allow a send."""

    def __init__(self, limits: Sequence[tuple[int, float]]) -> None:
        self.limits = [(max(1, int(count)), float(window)) for count, window in limits]
        self._sent: deque[float] = deque()
        self._longest = max((window for _, window in self.limits), default=0.0)

    def _forget(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self._longest:
            self._sent.popleft()

    def remaining(self, now: float) -> int:
        """How many sends are allowed right now."""
        self._forget(now)
        left = None
        for count, window in self.limits:
            used = sum(1 for t in self._sent if t > now - window)
            left = count - used if left is None else min(left, count - used)
        return max(0, left if left is not None else 1 << 30)

    def wait_time(self, now: float) -> float:
        """Seconds until one send is allowed (0 when allowed now)."""
        self._forget(now)
        wait = 0.0
        for count, window in self.limits:
            recent = [t for t in self._sent if t > now - window]
            if len(recent) >= count:
                wait = max(wait, recent[len(recent) - count] + window - now)
        return wait

    def record(self, now: float) -> None:
        """A send happened (successful or not: the robot counts attempts)."""
        self._sent.append(now)


def limits_for(per_minute: float, per_second: float | None) -> list[tuple[int, float]]:
    """Per-minute limit (fractions allowed: 0.5/min → 1 per 2 minutes), optional per-second limit."""
    limits: list[tuple[int, float]] = []
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
