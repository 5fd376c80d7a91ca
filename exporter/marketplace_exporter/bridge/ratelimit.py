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
    """``limits`` is a list of ``(count, window_seconds)``; all must allow a send. Each limit keeps
    the times of its sends still inside its window, so every call is O(1) amortised."""

    def __init__(self, limits: Sequence[tuple[int, float]]) -> None:
        self.limits = [(max(1, int(count)), float(window)) for count, window in limits]
        self._sent: list[deque[float]] = [deque() for _ in self.limits]

    def _forget(self, now: float) -> None:
        for (_, window), sent in zip(self.limits, self._sent, strict=True):
            while sent and sent[0] <= now - window:
                sent.popleft()

    def remaining(self, now: float) -> int:
        """How many sends are allowed right now."""
        self._forget(now)
        left = [count - len(sent) for (count, _), sent in zip(self.limits, self._sent, strict=True)]
        return max(0, min(left, default=1 << 30))

    def wait_time(self, now: float) -> float:
        """Seconds until one send is allowed (0 when allowed now)."""
        self._forget(now)
        wait = 0.0
        for (count, window), sent in zip(self.limits, self._sent, strict=True):
            if len(sent) >= count:
                wait = max(wait, sent[len(sent) - count] + window - now)
        return wait

    def record(self, now: float) -> None:
        """A send happened (the robot counts every request it answered, failed or not)."""
        for sent in self._sent:
            sent.append(now)


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
