"""Each check's recent results for the post-deploy gate, packed 9 bytes a result.

The gate (deploys/verify.py) compares a check's results in the 30 minutes before a deploy with the
results after it, so every check keeps 120-600 of them. As tuples that cost ~130 bytes a result
(16-78 KB a check, gigabytes at 50,000 checks); here a result is 9 bytes in a ring:

* ``finished_at`` as signed milliseconds from the ring's own epoch (4 bytes): a window of
  ±24 days around it; a result outside that moves the epoch and forgets results older than 24
  days, which no gate looks at (it reads the last day at most);
* ``duration`` in microseconds (4 bytes: up to 71 minutes, far beyond any probe timeout);
* success and reason in one byte.

The platform's raw error code (the gate shows it to a person) lives in a dict by slot created only
for checks that ever saw a code (a dict of numbers and strings is never tracked by the garbage
collector; a list would be, in its oldest generation, for every such check). Times round to the
millisecond and durations to the microsecond; the gate's windows and percentiles work in minutes
and milliseconds.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from marketplace_exporter.catalogue import Reason

_REASONS: tuple[Reason, ...] = tuple(Reason)
_REASON_INDEX = {reason: index + 1 for index, reason in enumerate(_REASONS)}
_MS_LIMIT = 2**31 - 1
_US_LIMIT = 2**32 - 1
#: finish time (ms from the epoch, signed), duration (µs), success + reason: 9 bytes
_ENTRY = struct.Struct("<iIB")


class RecentResult(NamedTuple):
    """One finished probe, reduced to what the verification gate compares."""

    finished_at: float
    success: bool
    duration: float
    reason: Reason | None
    #: the platform's own code, unfolded (the gate shows it to a person; it is never a label)
    code: str | None


class ResultRing:
    """The newest ``capacity`` results of one check, oldest first when read.

    One bytearray of ``capacity`` packed entries, allocated with the first result at its final size
    (no regrowth: growing three arrays result by result left ~1.9 KB a check in fragments; this is
    ~1.2 KB at 120 results)."""

    __slots__ = ("_buf", "_codes", "_count", "_epoch", "_next", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._clear()

    def _clear(self) -> None:
        self._buf: bytearray | None = None
        self._codes: dict[int, str] | None = None
        self._count = 0
        self._epoch = 0.0
        #: the slot the next result goes to (once full: the oldest one)
        self._next = 0

    def __len__(self) -> int:
        return self._count

    def append(self, finished_at: float, success: bool, duration: float, reason: Reason | None,
               code: str | None) -> None:
        if self._count == 0:
            self._epoch = float(int(finished_at))  # a ring without results adopts any epoch
        offset = round((finished_at - self._epoch) * 1000)
        if not -_MS_LIMIT <= offset <= _MS_LIMIT:
            self._move_epoch(finished_at)
            if self._count == 0:
                self._epoch = float(int(finished_at))
            offset = round((finished_at - self._epoch) * 1000)
        buf = self._buf
        if buf is None:
            buf = self._buf = bytearray(_ENTRY.size * self.capacity)
        slot = self._next
        _ENTRY.pack_into(buf, slot * _ENTRY.size, offset, min(_US_LIMIT, max(0, round(duration * 1_000_000))),
                         (0 if reason is None else _REASON_INDEX[reason] << 1) | (1 if success else 0))
        codes = self._codes
        if code is not None:
            if codes is None:
                codes = self._codes = {}
            codes[slot] = code
        elif codes:
            codes.pop(slot, None)
        self._next = (slot + 1) % self.capacity
        if self._count < self.capacity:
            self._count += 1

    def results(self) -> list[RecentResult]:
        """Every kept result, oldest first."""
        buf, codes, epoch, capacity = self._buf, self._codes, self._epoch, self.capacity
        if buf is None:
            return []
        out = []
        first = (self._next - self._count) % capacity
        for i in range(self._count):
            slot = (first + i) % capacity
            offset, micros, flags = _ENTRY.unpack_from(buf, slot * _ENTRY.size)
            reason_index = flags >> 1
            out.append(RecentResult(
                epoch + offset / 1000, bool(flags & 1), micros / 1_000_000,
                _REASONS[reason_index - 1] if reason_index else None,
                codes.get(slot) if codes else None))
        return out

    def resized(self, capacity: int) -> ResultRing:
        """A ring of another capacity holding the newest results of this one."""
        ring = ResultRing(capacity)
        for result in self.results()[-capacity:]:
            ring.append(*result)
        return ring

    def _move_epoch(self, finished_at: float) -> None:
        """Re-anchor near ``finished_at``, keeping the results still within reach of it."""
        kept = [r for r in self.results() if abs(r.finished_at - finished_at) * 1000 < _MS_LIMIT]
        self._clear()
        for result in kept:
            self.append(*result)


__all__ = ["RecentResult", "ResultRing"]
