"""The durable outbox and the message archive (告警记录归档), one SQLite file in WAL mode.

A notification is answered 200 only after its row is committed here, so it survives a bridge
crash or restart and a robot outage; a worker per receiver takes rows in id order (= arrival
order) and marks them ``sent`` or ``failed`` in the same transaction that archives the message
the robot got. Delivery is at-least-once: a crash between the robot's "ok" and our commit resends
that one message (DingTalk's ``msgUuid`` then suppresses the duplicate).

Durability: WAL with ``synchronous=NORMAL``: a commit survives a killed process (SIGKILL, OOM),
which is what the bridge must survive; after a *power loss* the last transactions before the
crash may roll back (SQLite's documented WAL trade-off), and Alertmanager resends unresolved
alerts on its repeat_interval anyway.

Identical resends of the same group (same receiver, group key, status and alert
fingerprints/times) within ``dedupe_window`` are acknowledged without a second row.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from marketplace_exporter.bridge.alertmanager import Notification, load_stored

SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver     TEXT    NOT NULL,
    dedupe_key   TEXT    NOT NULL,
    group_key    TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    alertname    TEXT    NOT NULL,
    accepted_at  REAL    NOT NULL,
    payload      TEXT    NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'queued',   -- queued | sent | failed
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT    NOT NULL DEFAULT '',
    done_at      REAL,
    message_id   INTEGER
);
CREATE INDEX IF NOT EXISTS notifications_queue ON notifications (state, receiver, id);
CREATE INDEX IF NOT EXISTS notifications_dedupe ON notifications (dedupe_key, accepted_at);
CREATE INDEX IF NOT EXISTS notifications_accepted ON notifications (accepted_at);
CREATE TABLE IF NOT EXISTS messages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver      TEXT    NOT NULL,
    channel       TEXT    NOT NULL,
    at            REAL    NOT NULL,
    outcome       TEXT    NOT NULL,                    -- sent | failed
    code          TEXT    NOT NULL DEFAULT '',
    detail        TEXT    NOT NULL DEFAULT '',
    title         TEXT    NOT NULL,
    text          TEXT    NOT NULL,
    notifications INTEGER NOT NULL,
    alerts_total  INTEGER NOT NULL,
    alerts_shown  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_at ON messages (at);
-- every request sent to a robot (answered or not), by robot (a hash of its URL, shared by all the
-- receivers that post to it): the limiter is rebuilt from it after a restart
CREATE TABLE IF NOT EXISTS robot_sends (
    robot TEXT NOT NULL,
    at    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS robot_sends_robot_at ON robot_sends (robot, at);
"""
#: robot_sends older than this are of no use to any limiter (the longest window is minutes)
ROBOT_SENDS_KEEP_S = 3600.0


@dataclass(frozen=True)
class Queued:
    """A notification waiting for delivery (parsed only when rendered: a worker looks at up to a
    few hundred queued rows per send but usually renders one)."""

    id: int
    receiver: str
    payload: str
    accepted_at: float
    attempts: int

    @cached_property
    def notification(self) -> Notification:
        return load_stored(self.payload)


@dataclass(frozen=True)
class Archived:
    """What a robot was sent (or refused), for the archive."""

    channel: str
    outcome: str
    code: str
    detail: str
    title: str
    text: str
    alerts_total: int
    alerts_shown: int


class Outbox:
    """One connection, used from the event loop's thread only (each call is a short local
    transaction, well under a millisecond)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        self._pending: list[tuple[tuple[str, Notification, float, float], asyncio.Future[tuple[int, bool]]]] = []
        #: queued rows per receiver, kept in memory for the queue-depth gauge
        self.depth: Counter[str] = Counter(dict(self._db.execute(
            "SELECT receiver, COUNT(*) FROM notifications WHERE state = 'queued' GROUP BY receiver").fetchall()))

    def close(self) -> None:
        self._db.close()

    def accept(self, receiver: str, notification: Notification, *, now: float | None = None,
               dedupe_window: float = 600.0) -> tuple[int, bool]:
        """Commit a notification; returns ``(id, duplicate)``. A duplicate is not stored again."""
        return self._commit([(receiver, notification, time.time() if now is None else now, dedupe_window)])[0]

    async def accept_soon(self, receiver: str, notification: Notification, *,
                          dedupe_window: float = 600.0) -> tuple[int, bool]:
        """:meth:`accept`, with every accept of the same event-loop turn committed in ONE
        transaction (group commit): under a burst of Alertmanager posts the per-transaction cost
        is shared; each caller still gets its answer only after its row is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, bool]] = loop.create_future()
        self._pending.append(((receiver, notification, time.time(), dedupe_window), future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        try:
            results = self._commit([item for item, _ in pending])
        except Exception as exc:
            for _, future in pending:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(pending, results, strict=True):
            if not future.done():
                future.set_result(result)

    def _commit(self, items: Sequence[tuple[str, Notification, float, float]]) -> list[tuple[int, bool]]:
        db = self._db
        results: list[tuple[int, bool]] = []
        added: Counter[str] = Counter()
        in_batch: dict[str, int] = {}
        db.execute("BEGIN IMMEDIATE")
        try:
            for receiver, notification, now, window in items:
                key = notification.dedupe_key(receiver)
                if key in in_batch:
                    results.append((in_batch[key], True))
                    continue
                row = db.execute("SELECT id FROM notifications WHERE dedupe_key = ? AND accepted_at >= ? LIMIT 1",
                                 (key, now - window)).fetchone()
                if row is not None:
                    results.append((int(row[0]), True))
                    continue
                alertname = (notification.groupLabels.get("alertname")
                             or notification.commonLabels.get("alertname") or notification.alerts[0].name)
                cursor = db.execute(
                    "INSERT INTO notifications (receiver, dedupe_key, group_key, status, alertname, accepted_at,"
                    " payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (receiver, key, notification.groupKey, notification.status, alertname, now,
                     notification.model_dump_json()))
                nid = int(cursor.lastrowid or 0)
                in_batch[key] = nid
                added[receiver] += 1
                results.append((nid, False))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.depth.update(added)
        return results

    def head(self, receiver: str, limit: int = 200) -> list[Queued]:
        """The oldest queued notifications of a receiver, in arrival order."""
        rows = self._db.execute(
            "SELECT id, payload, accepted_at, attempts FROM notifications WHERE state = 'queued' AND receiver = ?"
            " ORDER BY id LIMIT ?", (receiver, limit)).fetchall()
        return [Queued(int(r[0]), receiver, str(r[1]), float(r[2]), int(r[3])) for r in rows]

    def attempted(self, ids: Sequence[int], error: str, *, count: bool) -> None:
        """Remember the last error; ``count`` adds to the attempts that lead to ``failed``."""
        self._db.executemany("UPDATE notifications SET last_error = ?, attempts = attempts + ? WHERE id = ?",
                             [(error, 1 if count else 0, i) for i in ids])

    def finish(self, receiver: str, ids: Sequence[int], archived: Archived, *, now: float | None = None) -> int:
        """Archive the message and mark its notifications sent/failed, atomically."""
        now = time.time() if now is None else now
        state = "sent" if archived.outcome == "sent" else "failed"
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            cursor = db.execute(
                "INSERT INTO messages (receiver, channel, at, outcome, code, detail, title, text, notifications,"
                " alerts_total, alerts_shown) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (receiver, archived.channel, now, archived.outcome, archived.code, archived.detail,
                 archived.title, archived.text, len(ids), archived.alerts_total, archived.alerts_shown))
            message_id = int(cursor.lastrowid or 0)
            changed = 0
            for nid in ids:
                changed += db.execute(
                    "UPDATE notifications SET state = ?, done_at = ?, message_id = ?, last_error = ?"
                    " WHERE id = ? AND state = 'queued'",
                    (state, now, message_id, "" if state == "sent" else archived.detail, nid)).rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.depth[receiver] -= changed
        return message_id

    def record_send(self, robot: str, at: float) -> None:
        """A request reached (or may have reached) ``robot`` at wall time ``at``."""
        self._db.execute("INSERT INTO robot_sends (robot, at) VALUES (?, ?)", (robot, at))

    def robot_sends(self, robot: str, since: float) -> list[float]:
        """Wall times of the requests sent to ``robot`` since ``since`` by ANY receiver (oldest
        first): seeds the robot's limiter after a restart, so neither a crash loop nor another
        receiver's recent messages can push the robot over its limit."""
        rows = self._db.execute("SELECT at FROM robot_sends WHERE robot = ? AND at >= ? ORDER BY at",
                                (robot, since)).fetchall()
        return [float(r[0]) for r in rows]

    def requeue_failed(self, receiver: str) -> int:
        """Give failed notifications another chance (after the receiver's config was fixed)."""
        changed = self._db.execute(
            "UPDATE notifications SET state = 'queued', attempts = 0 WHERE receiver = ? AND state = 'failed'",
            (receiver,)).rowcount
        self.depth[receiver] += changed
        return int(changed)

    def prune(self, retention: float, *, now: float | None = None) -> int:
        """Drop delivered/failed rows and archived messages older than ``retention`` seconds."""
        now = time.time() if now is None else now
        cutoff = now - retention
        db = self._db
        removed = db.execute("DELETE FROM notifications WHERE state != 'queued' AND done_at < ?", (cutoff,)).rowcount
        db.execute("DELETE FROM messages WHERE at < ?", (cutoff,))
        db.execute("DELETE FROM robot_sends WHERE at < ?", (now - ROBOT_SENDS_KEEP_S,))
        return int(removed)


def history(path: str | Path, since: float, receivers: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Every notification accepted since ``since`` with what became of it, oldest first (read-only:
    safe while the bridge runs)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        wanted = list(receivers)
        where = "n.accepted_at >= ?" + (f" AND n.receiver IN ({','.join('?' * len(wanted))})" if wanted else "")
        rows = db.execute(
            "SELECT n.id, n.receiver, n.alertname, n.status, n.group_key, n.accepted_at, n.state, n.attempts,"
            " n.last_error, n.done_at, m.id, m.channel, m.code, m.title, m.text, m.notifications, m.alerts_total,"
            " m.alerts_shown FROM notifications n LEFT JOIN messages m ON m.id = n.message_id"
            f" WHERE {where} ORDER BY n.id", (since, *wanted)).fetchall()
    finally:
        db.close()
    out = []
    for r in rows:
        out.append({
            "id": r[0], "receiver": r[1], "alertname": r[2], "status": r[3], "group_key": r[4],
            "accepted_at": r[5], "state": r[6], "attempts": r[7], "error": r[8], "done_at": r[9],
            "message": None if r[10] is None else {
                "id": r[10], "channel": r[11], "code": r[12], "title": r[13], "text": r[14],
                "notifications": r[15], "alerts_total": r[16], "alerts_shown": r[17]},
        })
    return out


def dump_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, ensure_ascii=False, indent=2)
