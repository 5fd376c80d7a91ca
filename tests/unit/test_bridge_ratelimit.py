"""Per-robot sliding windows: never more than the documented sends in any window."""

from __future__ import annotations

from typing import Any

from marketplace_exporter.bridge.ratelimit import SlidingWindowLimiter, limits_for


def test_twenty_a_minute_never_allows_a_twenty_first_within_sixty_seconds() -> None:
    limiter = SlidingWindowLimiter(limits_for(20, None))
    sent: list[float] = []
    now = 0.0
    while now < 300:
        if limiter.wait_time(now) == 0:
            limiter.record(now)
            sent.append(now)
        now += 0.5
    for start in sent:
        assert sum(1 for t in sent if start <= t < start + 60) <= 20
    assert len(sent) == 100  # and the budget is used: 20 per minute over 5 minutes


def test_wait_time_is_until_the_oldest_send_leaves_the_window() -> None:
    limiter = SlidingWindowLimiter([(2, 60.0)])
    limiter.record(0.0)
    limiter.record(10.0)
    assert limiter.remaining(20.0) == 0
    assert limiter.wait_time(20.0) == 40.0
    assert limiter.remaining(60.0) == 1


def test_feishu_has_both_a_per_second_and_a_per_minute_limit() -> None:
    limiter = SlidingWindowLimiter(limits_for(100, 5))
    for _ in range(5):
        limiter.record(0.0)
    assert limiter.remaining(0.5) == 0
    assert limiter.wait_time(0.5) == 0.5
    assert limiter.remaining(1.0) == 5


def test_fractional_rates_become_one_send_per_interval() -> None:
    assert limits_for(0.5, None) == [(1, 120.0)]
    assert limits_for(20, 0.5) == [(20, 60.0), (1, 2.0)]


def test_dingtalk_pacing_spreads_a_storm_over_the_minute() -> None:
    limiter = SlidingWindowLimiter(limits_for(20, None, 5))
    sent = []
    now = 0.0
    while now < 60:
        if limiter.wait_time(now) == 0:
            limiter.record(now)
            sent.append(now)
        now += 0.1
    assert len(sent) == 20  # the minute's budget is still used
    assert max(b - a for a, b in zip(sent, sent[1:], strict=False)) <= 10.0  # never a silent minute


def test_a_reserved_send_counts_while_in_flight_and_then_at_its_answer_time() -> None:
    """Regression (issue 16): WeCom got 6 messages in 9 s against the bridge's promise of at most 5
    in any 10 s. The robot sees a request somewhere between its start and its answer; counting it
    from the answer time keeps every 10 s window of the ROBOT's view within 5, however slow or
    uneven the answers."""
    limiter = SlidingWindowLimiter(limits_for(20, None, 5))
    reservations = [limiter.reserve(float(t)) for t in range(5)]
    assert all(reservations) and limiter.reserve(5.0) is None  # five in flight: nothing more
    # the first request was slow: it may have reached the robot as late as its answer at 4.5 s
    slow, *others = [r for r in reservations if r is not None]
    slow.done(4.5)
    for index, reservation in enumerate(others, start=1):
        reservation.done(index + 0.1)
    assert limiter.wait_time(10.05) > 0  # 10 s after the FIRST start is not enough ...
    assert limiter.wait_time(11.1) == 0  # ... 10 s after the earliest answer (1.1) is
    assert limiter.reserve(11.1) is not None and limiter.reserve(11.1) is None  # one slot, until 12.1


def test_reservations_keep_any_robot_window_within_the_limit_with_random_latency() -> None:
    """Simulated: a sender loop with answers 0–3 s late; the robot's arrival times (anywhere in each
    request's [start, answer]) never hold more than 5 in any 10 s, nor 20 in any 60 s."""
    import random

    rng = random.Random(16)
    limiter = SlidingWindowLimiter(limits_for(20, None, 5))
    pending: list[tuple[float, Any]] = []
    arrivals: list[float] = []
    now = 0.0
    while now < 600:
        for answer_at, reservation in [p for p in pending if p[0] <= now]:
            reservation.done(answer_at)
            pending.remove((answer_at, reservation))
        reservation = limiter.reserve(now)
        if reservation is not None:
            latency = rng.uniform(0, 3)
            pending.append((now + latency, reservation))
            arrivals.append(now + rng.uniform(0, latency))  # the robot saw it somewhere in flight
        now += 0.05
    arrivals.sort()
    for start in arrivals:
        assert sum(1 for t in arrivals if start <= t < start + 10) <= 5
        assert sum(1 for t in arrivals if start <= t < start + 60) <= 20
    assert len(arrivals) > 150  # and the budget is still mostly used (20/min → 200 in 10 min)
