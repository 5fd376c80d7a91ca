"""A histogram the store owns: bucket counts, sum and count, read out cumulatively at export.

The store keeps one request-duration histogram per (marketplace, site, check), 50,000 at 50,000
generic checks, created with their first probes. As objects they were 50,000 more containers in
the garbage collector's oldest generation; kept :data:`Packed` (a ``bytearray`` of doubles, which
the collector does not track: an ``array.array`` is tracked) they cost a full collection nothing.
:class:`Histogram` is what readers get.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

#: bucket counts, then the sum, then the count, as doubles (counts exact up to 2**53)
Packed = bytearray


@dataclass(slots=True)
class Histogram:
    """Cumulative-at-export histogram: per-bucket counts, sum and count."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        out, running = [], 0
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == math.inf else f"{bound:g}", running))
        return out

    def copy(self) -> Histogram:
        return Histogram(self.bounds, list(self.counts), self.total, self.count)


def packed(bounds: tuple[float, ...]) -> Packed:
    """An empty packed histogram for ``bounds``."""
    return bytearray(8 * (len(bounds) + 3))


def observe_packed(histogram: Packed, bounds: tuple[float, ...], value: float) -> None:
    with memoryview(histogram).cast("d") as slots:
        slots[bisect.bisect_left(bounds, value)] += 1
        slots[-2] += value
        slots[-1] += 1


def unpacked(bounds: tuple[float, ...], histogram: Packed) -> Histogram:
    with memoryview(histogram).cast("d") as slots:
        return Histogram(bounds, [int(count) for count in slots[:-2]], slots[-2], int(slots[-1]))
