"""The bridge end to end in one process, delivery: real HTTP over loopback from an Alertmanager-style
client to the bridge, a real SQLite outbox, and fake robots that verify signatures, formats and
limits: every channel, order, dedup, retries and back-off, merging and cutting to each robot's limit."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from bridge_harness import (
    DING,
    HOOK,
    Start,
    am_payload,
    history,
    metric,
    post,
    robots_fixture,  # noqa: F401  (the `robots` fixture)
    start_bridge_fixture,  # noqa: F401  (the `start_bridge` fixture)
)
from fake_robots import FakeRobots, Robot


@pytest.mark.parametrize(("receiver", "kind", "expected"), [
    ("ding", "dingtalk", "**[告警] DiskFull**"),
    ("wecom", "wecom", '**[<font color="warning">告警</font>] DiskFull**'),
    ("feishu", "feishu", "**[FIRING] DiskFull**"),
    ("hook", "webhook", "**[告警] DiskFull**"),
])
async def test_each_channel_delivers_a_message_its_robot_accepts(
        start_bridge: Start, robots: FakeRobots, receiver: str, kind: str, expected: str) -> None:
    client = await start_bridge()
    status, answer = await post(client, receiver, am_payload("DiskFull"))
    assert (status, answer["status"]) == (200, "queued")
    await robots.wait_for(lambda r: len(r.delivered(kind)) == 1)
    (message,) = robots.delivered(kind)
    assert expected in message.text
    assert [r.code for r in robots.received] == [0]  # signature, format and size were all accepted
    await asyncio.sleep(0.05)
    assert await metric(client, "marketplace_bridge_notifications_total", receiver=receiver, channel=kind) == 1
    assert await metric(client, "marketplace_bridge_queue_depth", receiver=receiver) == 0
    assert await metric(client, "marketplace_bridge_delivery_duration_seconds_count", receiver=receiver) == 1


async def test_resolved_follows_firing_in_order(start_bridge: Start, robots: FakeRobots) -> None:
    client = await start_bridge()
    await post(client, "ding", am_payload("DiskFull"))
    await post(client, "ding", am_payload("DiskFull", "resolved"))
    await robots.wait_for(lambda r: len(r.delivered()) == 2)
    assert ["告警" in m.title for m in robots.delivered()] == [True, False]
    assert "已恢复" in robots.delivered()[1].title


async def test_identical_resend_is_acknowledged_but_delivered_once(start_bridge: Start, robots: FakeRobots) -> None:
    client = await start_bridge()
    first = await post(client, "wecom", am_payload("DiskFull"))
    again = await post(client, "wecom", am_payload("DiskFull"))
    assert first[1]["status"] == "queued" and again == (200, {**first[1], "status": "duplicate"})
    await robots.wait_for(lambda r: len(r.delivered()) == 1)
    await asyncio.sleep(0.2)
    assert len(robots.received) == 1


async def test_wrong_signing_secret_is_permanent_loud_and_not_retried_forever(
        start_bridge: Start, robots: FakeRobots, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    client = await start_bridge(receivers=f"""\
  ding-bad:
    channel: dingtalk
    url: {{value: "{robots.url('dingtalk', DING.token)}"}}
    secret: {{value: wrong-secret-zz9y8x}}
    throttle_backoff: 100ms
""")
    caplog.set_level(logging.INFO)
    status, _ = await post(client, "ding-bad", am_payload("DiskFull"))
    assert status == 200
    await robots.wait_for(lambda r: len(r.received) == 2)
    await asyncio.sleep(0.4)
    assert [(r.code, r.status) for r in robots.received] == [(310000, 200), (310000, 200)]  # HTTP 200 is not success
    assert await metric(client, "marketplace_bridge_notification_failures_total", receiver="ding-bad",
                        reason="security") == 2
    assert await metric(client, "marketplace_bridge_notifications_total", receiver="ding-bad") == 0
    (row,) = history(tmp_path)
    assert (row["state"], row["message"]["code"]) == ("failed", "310000")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("REFUSED" in r.getMessage() for r in errors)
    assert any("NOT delivered" in r.getMessage() for r in errors)


async def test_throttle_codes_back_off_then_deliver_once(start_bridge: Start, robots: FakeRobots) -> None:
    client = await start_bridge()
    robots.fail("wecom", "throttle", count=2)
    await post(client, "wecom", am_payload("DiskFull"))
    await robots.wait_for(lambda r: len(r.delivered()) == 1)
    assert [r.code for r in robots.received] == [45009, 45009, 0]
    gaps = [b.at - a.at for a, b in zip(robots.received, robots.received[1:], strict=False)]
    assert all(gap >= 0.15 for gap in gaps)  # waited throttle_backoff (200ms), no hot loop
    assert await metric(client, "marketplace_bridge_notification_failures_total", receiver="wecom",
                        reason="throttled") == 2


async def test_robot_5xx_is_retried_with_backoff(start_bridge: Start, robots: FakeRobots) -> None:
    client = await start_bridge()
    robots.fail("feishu", "http_500", count=3)
    await post(client, "feishu", am_payload("DiskFull"))
    await robots.wait_for(lambda r: len(r.delivered()) == 1)
    assert [r.status for r in robots.received] == [500, 500, 500, 200]
    assert await metric(client, "marketplace_bridge_notification_failures_total", receiver="feishu",
                        reason="http") == 3


async def test_robot_down_then_up_gets_every_notification_once_in_order(
        start_bridge: Start, robots: FakeRobots) -> None:
    client = await start_bridge()
    port = robots.port
    await robots.stop()
    names = [f"Alert{i}" for i in range(6)]
    for name in names:
        assert (await post(client, "ding", am_payload(name)))[0] == 200
    deadline = time.monotonic() + 5
    while await metric(client, "marketplace_bridge_notification_failures_total", reason="transport") < 2:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert await metric(client, "marketplace_bridge_queue_depth", receiver="ding") == 6
    await robots.start(port)
    await robots.wait_for(lambda r: sum(m.text.count("**[告警]") for m in r.delivered()) >= 6)
    await asyncio.sleep(0.3)
    text = "".join(m.text for m in robots.delivered())
    positions = [text.index(f"**[告警] {name}**") for name in names]
    assert positions == sorted(positions)
    assert all(text.count(f"**[告警] {name}**") == 1 for name in names)
    assert await metric(client, "marketplace_bridge_queue_depth", receiver="ding") == 0


async def test_queued_notifications_are_merged_when_the_robot_limit_is_reached(
        start_bridge: Start, robots: FakeRobots) -> None:
    client = await start_bridge(receivers="""\
  slow:
    channel: webhook
    url: {value: "URL"}
    rate_limit: {per_minute: 20, per_second: 0.5}
""".replace("URL", robots.url("webhook", HOOK.token)))
    await post(client, "slow", am_payload("First"))
    await robots.wait_for(lambda r: len(r.delivered()) == 1)
    names = [f"Burst{i}" for i in range(4)]
    for name in names:  # arrive while the robot's window (1 per 2 s) is used up
        await post(client, "slow", am_payload(name))
    await robots.wait_for(lambda r: len(r.delivered()) == 2)
    first, merged = robots.delivered()
    assert "First" in first.text and "合并" not in first.text
    assert merged.title == "🔥 告警 Burst0 等（4 条）"
    assert "合并 4 条通知" in merged.text
    positions = [merged.text.index(f"**[告警] {name}**") for name in names]
    assert positions == sorted(positions)
    assert merged.at - first.at >= 1.5  # the limit held
    await asyncio.sleep(0.05)
    assert await metric(client, "marketplace_bridge_notifications_total", receiver="slow") == 2


async def test_a_merge_larger_than_the_byte_limit_leaves_the_rest_queued_for_the_next_message(
        start_bridge: Start, robots: FakeRobots) -> None:
    client = await start_bridge(receivers="""\
  small:
    channel: wecom
    url: ${TEST_WECOM_URL}
    rate_limit: {per_minute: 20, per_second: 0.5}
""")
    await post(client, "small", am_payload("First"))
    await robots.wait_for(lambda r: len(r.delivered()) == 1)
    names = [f"Storm{i:02d}" for i in range(12)]  # ~400 bytes each: more than one 4096-byte message
    for name in names:
        await post(client, "small", am_payload(name))
    await robots.wait_for(lambda r: sum(m.text.count("] Storm") for m in r.delivered()) >= 12, timeout=15)
    later = robots.delivered()[1:]
    assert len(later) >= 2
    assert all(len(m.text.encode()) <= 4096 for m in later)
    text = "".join(m.text for m in later)
    assert [text.count(f"] {name}**") for name in names] == [1] * 12
    positions = [text.index(f"] {name}**") for name in names]
    assert positions == sorted(positions)


@pytest.mark.parametrize(("receiver", "kind"), [("ding", "dingtalk"), ("wecom", "wecom"), ("feishu", "feishu")])
async def test_a_huge_group_is_cut_to_exactly_what_each_robot_accepts(
        start_bridge: Start, robots: FakeRobots, receiver: str, kind: str) -> None:
    client = await start_bridge(max_body=2_000_000)
    huge = am_payload("Storm", alerts=300)
    for index, item in enumerate(huge["alerts"]):
        item["annotations"]["summary_zh"] = f"第 {index} 个账号的令牌已过期，请在卖家中心重新授权。"
    huge["truncatedAlerts"] = 7
    assert (await post(client, receiver, huge))[0] == 200
    await robots.wait_for(lambda r: len(r.received) == 1)
    (message,) = robots.received
    assert message.code == 0, message.code  # not 460101 / 40058 / 9499: within the robot's byte limit
    limit = {"dingtalk": 20000, "wecom": 4096, "feishu": 20000}[kind]
    measured = len(message.text.encode()) if kind == "wecom" else message.size
    assert limit - 1000 < measured <= limit
    assert "截断了 7 条告警" in message.text or "truncated 7 more alerts" in message.text
    assert ("条告警未显示" in message.text) != ("more (message size limit)" in message.text)


async def test_a_burst_never_exceeds_feishus_five_a_second(start_bridge: Start, robots: FakeRobots) -> None:
    client = await start_bridge()
    receiver, count = "feishu", 12
    names = [f"Burst{i:02d}" for i in range(count)]
    for name in names:
        await post(client, receiver, am_payload(name))
    await robots.wait_for(lambda r: sum(m.text.count("] Burst") for m in r.delivered()) >= count, timeout=15)
    assert all(r.ok for r in robots.received)  # never 130101 / 11232
    text = "".join(m.text for m in robots.delivered())
    assert [text.count(f"] {name}**") for name in names] == [1] * count


async def test_robot_keyword_is_added_so_a_keyword_protected_robot_accepts_resolved_messages(
        start_bridge: Start, robots: FakeRobots) -> None:
    robots.robots.append(Robot("feishu", "feishu-keyword-hook-0123456789", None, "告警"))
    client = await start_bridge(receivers=f"""\
  guarded:
    channel: feishu
    url: {{value: "{robots.url('feishu', 'feishu-keyword-hook-0123456789')}"}}
    keyword: 告警
    language: en
  unguarded:
    channel: feishu
    url: {{value: "{robots.url('feishu', 'feishu-keyword-hook-0123456789')}"}}
    language: en
""")
    await post(client, "guarded", am_payload("DiskFull", "resolved"))
    await post(client, "unguarded", am_payload("DiskFull", "resolved"))
    await robots.wait_for(lambda r: len(r.received) == 2)
    codes = {r.title.startswith("告警"): r.code for r in robots.received}
    assert codes == {True: 0, False: 19024}
