"""The SQLite outbox: order, dedupe window, atomic archive, survival across reopen; and the v4
payload parser behind it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from marketplace_exporter.bridge.alertmanager import PayloadError, parse_notification
from marketplace_exporter.bridge.outbox import Archived, Outbox, history


def raw(name: str = "A", status: str = "firing", starts: str = "2024-05-01T10:00:00Z") -> dict[str, Any]:
    return {
        "version": "4", "groupKey": f'{{}}:{{alertname="{name}"}}', "status": status, "receiver": "r",
        "groupLabels": {"alertname": name}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "",
        "truncatedAlerts": 0, "notification_reason": "new in v0.32", "routeLabels": {"x": "y"},
        "alerts": [{"status": status, "labels": {"alertname": name}, "annotations": {}, "startsAt": starts,
                    "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "f1"}],
    }


SENT = Archived(channel="dingtalk", outcome="sent", code="", detail="", title="t", text="body",
                alerts_total=1, alerts_shown=1)


def test_payload_v4_parses_and_ignores_unknown_fields() -> None:
    notification = parse_notification(raw())
    assert notification.alerts[0].ended() is None  # Alertmanager's zero time means "not ended"
    assert notification.groupLabels == {"alertname": "A"}


@pytest.mark.parametrize(("data", "fragment"), [
    ([], "expected a JSON object"),
    ({"version": "3"}, "version"),
    ({**raw(), "alerts": []}, "alerts"),
    ({**raw(), "status": "burning"}, "status"),
    ({**raw(), "alerts": [{"status": "firing"}]}, "alerts.0.labels"),
])
def test_garbage_payloads_raise_payload_error_naming_the_field(data: Any, fragment: str) -> None:
    with pytest.raises(PayloadError, match=fragment.replace(".", r"\.")):
        parse_notification(data)


def test_dedupe_key_is_stable_for_resends_and_changes_with_state() -> None:
    first = parse_notification(raw()).dedupe_key("r")
    assert parse_notification(raw()).dedupe_key("r") == first
    assert parse_notification(raw(status="resolved")).dedupe_key("r") != first
    assert parse_notification(raw(starts="2024-05-01T11:00:00Z")).dedupe_key("r") != first
    assert parse_notification(raw()).dedupe_key("other") != first


def test_queue_is_in_arrival_order_and_duplicates_within_the_window_are_not_stored(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    a, dup_a = outbox.accept("r", parse_notification(raw("A")), now=1000)
    b, _ = outbox.accept("r", parse_notification(raw("B")), now=1001)
    again, dup = outbox.accept("r", parse_notification(raw("A")), now=1500, dedupe_window=600)
    assert (dup_a, dup, again) == (False, True, a)
    later, dup_late = outbox.accept("r", parse_notification(raw("A")), now=2000, dedupe_window=600)
    assert not dup_late and later > b
    assert [q.id for q in outbox.head("r")] == [a, b, later]
    assert outbox.depth["r"] == 3


def test_finish_archives_and_removes_from_the_queue_atomically(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    a, _ = outbox.accept("r", parse_notification(raw("A")), now=1000)
    b, _ = outbox.accept("r", parse_notification(raw("B")), now=1000)
    outbox.finish("r", [a, b], SENT, now=1002)
    assert outbox.head("r") == []
    assert outbox.depth["r"] == 0
    rows = history(tmp_path / "o.db", since=0)
    assert [(r["alertname"], r["state"], r["message"]["notifications"]) for r in rows] == [("A", "sent", 2),
                                                                                          ("B", "sent", 2)]


def test_queued_notifications_survive_reopening_the_file(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    outbox.accept("r", parse_notification(raw("A")), now=1000)
    outbox.accept("s", parse_notification(raw("B")), now=1000)
    outbox.close()
    reopened = Outbox(tmp_path / "o.db")
    assert [q.notification.groupLabels["alertname"] for q in reopened.head("r")] == ["A"]
    assert reopened.depth == {"r": 1, "s": 1}
    assert reopened._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_failed_notifications_can_be_requeued_and_attempts_counted(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    a, _ = outbox.accept("r", parse_notification(raw("A")), now=1000)
    outbox.attempted([a], "security 310000", count=True)
    assert outbox.head("r")[0].attempts == 1
    outbox.finish("r", [a], Archived("dingtalk", "failed", "310000", "sign not match", "t", "x", 1, 1), now=1001)
    assert outbox.depth["r"] == 0
    assert history(tmp_path / "o.db", since=0)[0]["error"] == "sign not match"
    assert outbox.requeue_failed("r") == 1
    assert [q.id for q in outbox.head("r")] == [a]
    assert outbox.depth["r"] == 1


def test_prune_drops_only_old_finished_rows(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    old, _ = outbox.accept("r", parse_notification(raw("A")), now=1000)
    outbox.finish("r", [old], SENT, now=1000)
    outbox.accept("r", parse_notification(raw("B")), now=1000)  # still queued: never pruned
    assert outbox.prune(100, now=5000) == 1
    assert [q.notification.groupLabels["alertname"] for q in outbox.head("r")] == ["B"]


def test_history_is_read_only(tmp_path: Path) -> None:
    Outbox(tmp_path / "o.db").close()
    history(tmp_path / "o.db", since=0)
    with pytest.raises(sqlite3.OperationalError):
        history(tmp_path / "missing.db", since=0)


def test_robot_sends_are_kept_per_robot_across_receivers_and_pruned(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    for at in (900.0, 1000.0, 1010.0):
        outbox.record_send("robot-a", at)
    outbox.record_send("robot-b", 1005.0)
    outbox.close()
    outbox = Outbox(tmp_path / "o.db")  # a restart
    assert outbox.robot_sends("robot-a", since=950.0) == [1000.0, 1010.0]
    assert outbox.robot_sends("other", since=0) == []
    outbox.prune(retention=86400.0, now=1005.0 + 3600.0)  # robot_sends keep an hour
    assert outbox.robot_sends("robot-a", since=0) == [1010.0]


async def test_concurrent_accepts_share_one_transaction_and_dedupe_within_it(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    results = await asyncio.gather(*(outbox.accept_soon("r", parse_notification(raw(name)))
                                     for name in ("A", "B", "A", "C")))
    assert [dup for _, dup in results] == [False, False, True, False]
    assert results[2][0] == results[0][0]
    assert [q.notification.groupLabels["alertname"] for q in outbox.head("r")] == ["A", "B", "C"]
    assert outbox.depth["r"] == 3


async def test_a_failed_group_commit_fails_every_waiting_accept(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    outbox._db.execute("DROP TABLE notifications")
    with pytest.raises(sqlite3.OperationalError):
        await asyncio.gather(outbox.accept_soon("r", parse_notification(raw("A"))),
                             outbox.accept_soon("r", parse_notification(raw("B"))))
    assert outbox.depth["r"] == 0
