"""Each check's recent results for the post-deploy gate, packed into three arrays.

The gate (deploys/verify.py) compares a check's results in the 30 minutes before a deploy with the
results after it, so every check keeps 120-600 of them. As tuples that cost ~130 bytes a result
(16-78 KB a check, gigabytes at 50,000 checks); here a result is 9 bytes in a ring of arrays:

* ``finished_at`` as signed milliseconds from the ring's own epoch (``i``, 4 bytes): a window of
  ±24 days around it; a result outside that moves the epoch and forgets results older than 24
  days, which no gate looks at (it reads the last day at most);
* ``duration`` in microseconds (``I``, 4 bytes: up to 71 minutes, far beyond any probe timeout);
* success and reason in one byte (``B``).

The platform's raw error code (the gate shows it to a person) lives in a list created only for
checks that ever saw a code. Times round to the millisecond and durations to the microsecond; the
gate's windows and percentiles work in minutes and milliseconds.
"""

from __future__ import annotations

from array import array
from typing import NamedTuple

from marketplace_exporter.catalogue import Reason

_REASONS: tuple[Reason, ...] = tuple(Reason)
_REASON_INDEX = {reason: index + 1 for index, reason in enumerate(_REASONS)}
_MS_LIMIT = 2**31 - 1
_US_LIMIT = 2**32 - 1


class RecentResult(NamedTuple):
    """One finished probe, reduced to what the verification gate compares."""

    finished_at: float
    success: bool
    duration: float
    reason: Reason | None
    #: the platform's own code, unfolded (the gate shows it to a person; it is never a label)
    code: str | None


class ResultRing:
    """The newest ``capacity`` results of one check, oldest first when read."""

    __slots__ = ("_at", "_codes", "_duration", "_epoch", "_flags", "_next", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._clear()

    def _clear(self) -> None:
        self._at = array("i")
        self._duration = array("I")
        self._flags = array("B")
        self._codes: list[str | None] | None = None
        self._epoch = 0.0
        #: where the next result goes once the arrays are full (the oldest slot)
        self._next = 0

    def __len__(self) -> int:
        return len(self._flags)

    def append(self, finished_at: float, success: bool, duration: float, reason: Reason | None,
               code: str | None) -> None:
        if not self._flags:
            self._epoch = float(int(finished_at))  # a ring without results adopts any epoch
        offset = round((finished_at - self._epoch) * 1000)
        if not -_MS_LIMIT <= offset <= _MS_LIMIT:
            self._move_epoch(finished_at)
            if not self._flags:
                self._epoch = float(int(finished_at))
            offset = round((finished_at - self._epoch) * 1000)
        micros = min(_US_LIMIT, max(0, round(duration * 1_000_000)))
        flags = (0 if reason is None else _REASON_INDEX[reason] << 1) | (1 if success else 0)
        if code is not None and self._codes is None:
            self._codes = [None] * len(self._flags)
        if len(self._flags) < self.capacity:
            self._at.append(offset)
            self._duration.append(micros)
            self._flags.append(flags)
            if self._codes is not None:
                self._codes.append(code)
            return
        slot = self._next
        self._at[slot] = offset
        self._duration[slot] = micros
        self._flags[slot] = flags
        if self._codes is not None:
            self._codes[slot] = code
        self._next = (slot + 1) % self.capacity

    def results(self) -> list[RecentResult]:
        """Every kept result, oldest first."""
        out = []
        epoch, codes = self._epoch, self._codes
        count = len(self._flags)
        for i in range(count):
            slot = (self._next + i) % count
            flags = self._flags[slot]
            reason_index = flags >> 1
            out.append(RecentResult(
                epoch + self._at[slot] / 1000, bool(flags & 1), self._duration[slot] / 1_000_000,
                _REASONS[reason_index - 1] if reason_index else None,
                codes[slot] if codes is not None else None))
        return out

    def resized(self, capacity: int) -> ResultRing:
        """A ring of another capacity holding the newest results of this one."""
        ring = ResultRing(capacity)
        for result in self.results()[-capacity:]:
            ring.append(*result)
        return ring

    def _move_epoch(self, finished_at: float) -> None:
        """Re-anchor at ``finished_at``, keeping the results still within reach of it."""
        kept = [r for r in self.results() if abs(r.finished_at - finished_at) * 1000 < _MS_LIMIT]
        self._clear()
        for result in kept:
            self.append(*result)


__all__ = ["RecentResult", "ResultRing"]
