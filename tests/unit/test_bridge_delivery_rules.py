"""The worker's pure decisions: which queued notifications go into one message; one gate per robot
shared by its receivers, reserved before sending, remembering the robot's recent sends across a
restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from marketplace_exporter.bridge.alertmanager import parse_notification
from marketplace_exporter.bridge.channels import channels
from marketplace_exporter.bridge.config import BridgeConfig, load_bridge_config
from marketplace_exporter.bridge.delivery import Delivery, render_batch
from marketplace_exporter.bridge.outbox import Outbox, Queued
from marketplace_exporter.bridge.robots import robot_key
from marketplace_exporter.bridge.stats import Stats


def config(tmp_path: Path) -> BridgeConfig:
    return load_bridge_config(tmp_path / "bridge.yml", text="""\
auth: {anonymous: true}
receivers:
  ding: {channel: dingtalk, url: {value: "http://127.0.0.1:1/robot/send?access_token=tok-1234"}}
  wecom: {channel: wecom, url: {value: "http://127.0.0.1:1/cgi-bin/webhook/send?key=k-1234"}}
""")


def queued(index: int, alerts: int = 1) -> Queued:
    data: dict[str, Any] = {
        "version": "4", "groupKey": f"g{index}", "status": "firing", "groupLabels": {"alertname": f"N{index}"},
        "alerts": [{"status": "firing", "labels": {"alertname": f"N{index}", "i": str(i)},
                    "annotations": {"description_zh": "令牌过期，请重新授权。" * 4},
                    "startsAt": "2024-05-01T10:00:00Z", "fingerprint": f"{index}-{i}"} for i in range(alerts)]}
    return Queued(index, "r", parse_notification(data).model_dump_json(), 0.0, 0)


def test_everything_that_fits_is_merged_in_order(tmp_path: Path) -> None:
    receiver = config(tmp_path).receivers["ding"]
    message, group = render_batch([queued(i) for i in range(5)], receiver, channels()["dingtalk"])
    assert [q.id for q in group] == [0, 1, 2, 3, 4]
    assert message.alerts_shown == 5


def test_what_does_not_fit_stays_queued_for_the_next_message(tmp_path: Path) -> None:
    receiver = config(tmp_path).receivers["wecom"]
    batch = [queued(i) for i in range(30)]
    message, group = render_batch(batch, receiver, channels()["wecom"])
    assert 1 < len(group) < 30
    assert [q.id for q in group] == list(range(len(group)))  # a prefix: order is kept
    assert message.alerts_shown == len(group)
    assert len(message.text.encode()) <= 4096


def test_one_notification_too_large_alone_is_still_sent_truncated(tmp_path: Path) -> None:
    receiver = config(tmp_path).receivers["wecom"]
    message, group = render_batch([queued(0, alerts=40), queued(1)], receiver, channels()["wecom"])
    assert [q.id for q in group] == [0]
    assert 0 < message.alerts_shown < 40
    assert "… 另有" in message.text


def shared(tmp_path: Path) -> BridgeConfig:
    """Two receivers posting to ONE WeCom robot (as the shipped config does), one with its own pacing."""
    url = "http://127.0.0.1:1/cgi-bin/webhook/send?key=k-shared"
    return load_bridge_config(tmp_path / "bridge.yml", text=f"""\
auth: {{anonymous: true}}
receivers:
  team-a: {{channel: wecom, url: {{value: "{url}"}}}}
  team-b: {{channel: wecom, url: {{value: "{url}"}}, rate_limit: {{per_10s: 3}}}}
""")


async def test_receivers_sharing_a_robot_share_one_gate_with_the_strictest_limits(tmp_path: Path) -> None:
    cfg = shared(tmp_path)
    delivery = Delivery(cfg, Outbox(tmp_path / "o.db"), Stats(), clock=lambda: 0.0, wall=lambda: 1000.0)
    delivery.apply(cfg)
    try:
        a, b = (delivery.gate(cfg.receivers[name]) for name in ("team-a", "team-b"))
        assert a is b
        assert a.limits == [(3, 10.0), (20, 60.0)]
    finally:
        await delivery.stop()


async def test_a_slot_is_reserved_before_sending_so_two_receivers_cannot_both_take_the_last(
        tmp_path: Path) -> None:
    """Regression (issue 16): each receiver checked the shared limit, sent, and recorded only when
    the robot answered: both passed the check and the robot got a 21st message within 60 s."""
    cfg = shared(tmp_path)
    delivery = Delivery(cfg, Outbox(tmp_path / "o.db"), Stats(), clock=lambda: 0.0, wall=lambda: 1000.0)
    delivery.apply(cfg)
    try:
        gate = delivery.gate(cfg.receivers["team-a"])
        taken = [gate.reserve(t) for t in (0.0, 0.0, 0.1)]  # in flight: no answer yet
        assert all(taken) and gate.reserve(0.2) is None  # the (strictest) 3 in 10 s are used up
        assert delivery.gate(cfg.receivers["team-b"]).reserve(0.3) is None  # the other receiver waits too
    finally:
        await delivery.stop()


def test_the_gate_remembers_every_receivers_sends_from_before_a_restart(tmp_path: Path) -> None:
    """Regression (issue 16): after a restart the limiter only knew the receiver's own messages, so
    the other receiver's recent ones were forgotten and the first send was rejected."""
    cfg = shared(tmp_path)
    outbox = Outbox(tmp_path / "o.db")
    key = robot_key(cfg.receivers["team-a"].url.reveal())
    for i in range(20):  # the robot's last minute, half of it from each receiver, all the same robot
        outbox.record_send(key, 1000.0 + i)
    outbox.close()
    delivery = Delivery(cfg, Outbox(tmp_path / "o.db"), Stats(), clock=lambda: 50.0, wall=lambda: 1030.0)
    gate = delivery.gate(cfg.receivers["team-b"])
    assert gate.remaining(50.0) == 0  # 20 sends in the last minute: WeCom's limit is used up
    assert gate.wait_time(50.0) == 30.0  # the first of them leaves the window at wall time 1060
