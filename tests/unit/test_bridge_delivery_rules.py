"""The worker's pure decisions: which queued notifications go into one message, and the rate
limiter remembering the robot's recent sends across a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from marketplace_exporter.bridge.alertmanager import parse_notification
from marketplace_exporter.bridge.channels import channels
from marketplace_exporter.bridge.config import BridgeConfig, load_bridge_config
from marketplace_exporter.bridge.delivery import Delivery, render_batch
from marketplace_exporter.bridge.outbox import Archived, Outbox, Queued
from marketplace_exporter.bridge.stats import Stats


def config(tmp_path: Path) -> BridgeConfig:
    return load_bridge_config(tmp_path / "bridge.yml", text="""\
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


def test_the_limiter_remembers_sends_from_before_a_restart(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    outbox = Outbox(tmp_path / "o.db")
    for i in range(20):
        nid, _ = outbox.accept("ding", queued(i).notification, now=1000.0 + i)
        outbox.finish("ding", [nid], Archived("dingtalk", "sent", "", "", "t", "x", 1, 1), now=1000.0 + i)
    delivery = Delivery(cfg, outbox, Stats(), clock=lambda: 50.0, wall=lambda: 1030.0)
    limiter = delivery.limiter(cfg.receivers["ding"])
    assert limiter.remaining(50.0) == 0  # 20 sends in the last minute: DingTalk's limit is used up
    assert limiter.wait_time(50.0) == 30.0  # the first of them leaves the window at wall time 1060
