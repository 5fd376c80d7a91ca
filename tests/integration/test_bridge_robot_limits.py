"""Regression tests for the bridge failures issue 16 lists, over real HTTP with fake robots that
count and limit on their own (not with the bridge's limiter):

- two receivers sharing one robot sent more than its limit (each checked, sent, and recorded only
  when the robot answered) — here at a 3-a-second scale, with slow and uneven answers;
- a robot outage delayed delivery ~99 s after the robot came back (back-off grew to 5 minutes) —
  here: delivered within the back-off cap of the robot's return, one probe at a time.
The restart case and the 10-second window are pinned in tests/unit (test_bridge_delivery_rules.py,
test_bridge_ratelimit.py), where the clock can be controlled.
"""

from __future__ import annotations

import asyncio
import time

# the bridge tests' shared fixtures (robots, start_bridge) are reused as they are
from bridge_harness import (
    Start,
    am_payload,
    metric,
    post,
    robots_fixture,  # noqa: F401  (the `robots` fixture)
    start_bridge_fixture,  # noqa: F401  (the `start_bridge` fixture)
)
from fake_robots import FakeRobots, Robot

from marketplace_exporter.bridge.config import Retry

#: two receivers, ONE WeCom robot, 3 messages a second at most (the fake robot enforces it)
SHARED = """\
  team-a:
    channel: wecom
    url: ${TEST_WECOM_URL}
    throttle_backoff: 200ms
    rate_limit: {per_minute: 600, per_second: 3, per_10s: 0}
  team-b:
    channel: wecom
    url: ${TEST_WECOM_URL}
    throttle_backoff: 200ms
    rate_limit: {per_minute: 600, per_second: 3, per_10s: 0}
"""


def _own_robot(fake: FakeRobots, key: str, receivers: str) -> str:
    """``receivers`` posting to a WeCom robot of their own (the fixture's ``wecom`` receiver uses
    TEST_WECOM_URL; its 5-in-10-s pacing would otherwise apply to this robot too)."""
    fake.robots.append(Robot("wecom", key))
    return receivers.replace("${TEST_WECOM_URL}", f'{{value: "{fake.url("wecom", key)}"}}')


async def test_two_receivers_sharing_a_robot_never_exceed_its_limit(
        start_bridge: Start, robots: FakeRobots) -> None:
    robots.limits["wecom"] = [(3, 1.0)]
    robots.latency["wecom"] = (0.0, 0.4)  # slow, uneven answers: the window the old code got wrong
    client = await start_bridge(receivers=_own_robot(robots, "wecom-shared-key", SHARED))
    for index in range(12):
        for receiver in ("team-a", "team-b"):
            assert (await post(client, receiver, am_payload(f"{receiver}-{index}")))[0] == 200
        await asyncio.sleep(0.05)  # a steady stream, not one burst that merges into two messages
    names = {f"{r}-{i}" for r in ("team-a", "team-b") for i in range(12)}

    def delivered_all(r: FakeRobots) -> bool:
        return all(sum(f"] {n}**" in m.text for m in r.delivered("wecom")) == 1 for n in names)

    await robots.wait_for(delivered_all, timeout=30)
    refused = [r.code for r in robots.received if r.code != 0]
    print(f"\nshared robot: {len(robots.received)} requests, {len(robots.delivered())} accepted, refused {refused}")
    assert refused == [], "the robot throttled the bridge: its limit was exceeded"
    arrivals = sorted(r.at for r in robots.received)
    assert all(sum(1 for t in arrivals if start <= t < start + 1.0) <= 3 for start in arrivals)
    assert await metric(client, "marketplace_bridge_notification_failures_total", reason="throttled") == 0


async def test_after_an_outage_messages_flow_within_the_backoff_cap_without_hammering(
        start_bridge: Start, robots: FakeRobots) -> None:
    """Scaled down (the test config's retry: 50 ms doubling to a 200 ms cap; the default cap is 20 s);
    the robot is down for 3 s while two receivers have messages for it."""
    receivers = _own_robot(robots, "wecom-ops-key", SHARED.replace("team-a", "ops-a").replace("team-b", "ops-b"))
    client = await start_bridge(receivers=receivers)
    robots.fail("wecom", "http_500", seconds=3.0)
    down_at = time.monotonic()
    for receiver in ("ops-a", "ops-b"):
        await post(client, receiver, am_payload(f"{receiver}-outage"))
    await asyncio.sleep(3.0 - (time.monotonic() - down_at))
    back_at = time.time()
    await robots.wait_for(lambda r: len(r.delivered("wecom")) >= 1, timeout=5)
    recovered_after = robots.delivered("wecom")[0].at - back_at
    while_down = [r for r in robots.received if r.status == 500]
    print(f"\noutage: {len(while_down)} probes in 3 s for 2 receivers, first delivery "
          f"{recovered_after:.2f} s after the robot was back")
    assert recovered_after <= 0.2 + 0.3, "recovery must come within the back-off cap"
    # one probe at a time for the robot, not one per receiver: 0.05+0.1+0.2+0.2+... over 3 s
    assert len(while_down) <= 3.0 / 0.2 + 4
    # both receivers' first messages may leave before the robot is known to be down; from then
    # on, one probe at a time, at least the initial back-off apart
    gaps = [b.at - a.at for a, b in zip(while_down[1:], while_down[2:], strict=False)]
    assert min(gaps, default=1.0) >= 0.045, f"probes too close together: {gaps}"
    await robots.wait_for(lambda r: len(r.delivered("wecom")) >= 2 or
                          sum("outage" in m.text for m in r.delivered("wecom")) >= 2, timeout=5)


def test_the_default_backoff_cap_keeps_recovery_within_about_30_seconds() -> None:
    """Regression (issue 16): messages reached the chats a median 99 s after the robots came back,
    because the back-off grew to 5 minutes."""
    assert Retry().max_backoff <= 30.0
