"""In-memory delivery counters the collector turns into metrics (nothing global: one per app)."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

#: delivery latency buckets (seconds): from "immediately" to "after a 10-minute DingTalk block"
LATENCY_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


@dataclass
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        out = []
        running = 0
        for bound, count in zip(LATENCY_BUCKETS, self.counts, strict=False):
            running += count
            out.append((f"{bound:g}", float(running)))
        out.append(("+Inf", float(running + self.counts[-1])))
        return out


@dataclass
class Stats:
    delivered: Counter[tuple[str, str]] = field(default_factory=Counter)
    failures: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    latency: dict[tuple[str, str], Histogram] = field(default_factory=dict)

    def ok(self, receiver: str, channel: str, latencies: list[float]) -> None:
        self.delivered[(receiver, channel)] += 1
        hist = self.latency.setdefault((receiver, channel), Histogram())
        for value in latencies:
            hist.observe(value)

    def failed(self, receiver: str, channel: str, reason: str) -> None:
        self.failures[(receiver, channel, reason)] += 1
