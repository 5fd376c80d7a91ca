"""The deploy gate's per-check history packed into arrays (history.py): same results back, in
order, bounded, at 9 bytes a result instead of a tuple each."""

from __future__ import annotations

from marketplace_exporter.catalogue import Reason
from marketplace_exporter.history import RecentResult, ResultRing


def test_the_ring_returns_the_newest_results_oldest_first_with_their_codes() -> None:
    ring = ResultRing(3)
    ring.append(100.25, True, 0.125, None, None)
    ring.append(101.5, False, 2.5, Reason.THROTTLED, "QuotaExceeded")
    ring.append(102.0, False, 0.000001, Reason.INTERNAL, None)
    ring.append(103.75, True, 0.2, None, None)
    assert ring.results() == [
        RecentResult(101.5, False, 2.5, Reason.THROTTLED, "QuotaExceeded"),
        RecentResult(102.0, False, 0.000001, Reason.INTERNAL, None),
        RecentResult(103.75, True, 0.2, None, None)]
    assert len(ring) == 3


def test_times_keep_milliseconds_and_durations_microseconds() -> None:
    ring = ResultRing(2)
    ring.append(1_765_000_000.1234, True, 0.1234567, None, None)
    (result,) = ring.results()
    assert abs(result.finished_at - 1_765_000_000.123) < 1e-6
    assert result.duration == 0.123457


def test_a_result_far_from_the_epoch_moves_it_and_forgets_what_is_out_of_reach() -> None:
    ring = ResultRing(4)
    ring.append(1000.0, True, 0.1, None, None)
    ring.append(1000.0 + 20 * 86400, True, 0.1, None, None)
    ring.append(1000.0 + 40 * 86400, False, 0.1, Reason.AUTH, "x")  # 40 days after the first
    assert [r.finished_at for r in ring.results()] == [1000.0 + 20 * 86400, 1000.0 + 40 * 86400]
    ring.append(1000.0 + 90 * 86400, True, 0.1, None, None)
    assert [r.finished_at for r in ring.results()] == [1000.0 + 90 * 86400]


def test_resizing_keeps_the_newest() -> None:
    ring = ResultRing(5)
    for t in range(5):
        ring.append(float(t), True, 0.1, None, "c" if t == 4 else None)
    smaller = ring.resized(2)
    assert smaller.results() == [RecentResult(3.0, True, 0.1, None, None), RecentResult(4.0, True, 0.1, None, "c")]
