"""Per-robot sliding windows: never more than the documented sends in any window."""

from __future__ import annotations

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
