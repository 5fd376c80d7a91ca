"""The deploy audit log: one SQLite table, append-only, in ``<storage.path>/deploys.sqlite``.

Why SQLite: one file an auditor can copy and query with any tool, crash-safe (WAL mode with
``synchronous=FULL``: a marker the API acknowledged with 201 is on disk), no server to run.

"Append-only" is enforced by the database itself, not only by the API having no UPDATE/DELETE:
triggers abort any ``UPDATE`` or ``DELETE`` on the table, whoever issues it (a script, a sqlite3
shell), so a history cannot be quietly rewritten. Rotating old rows out is a deliberate,
visible act (drop the triggers) left to the operator.

One connection serves the whole process; calls take a lock and are short (a single-row insert or
an indexed query), so they run on the event loop without blocking it noticeably.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from marketplace_exporter.catalogue import DeployStatus
from marketplace_exporter.deploys.freeze import FreezeWindow
from marketplace_exporter.deploys.model import DeployMarker, DeployRecord

FILE_NAME = "deploys.sqlite"
SCHEMA_VERSION = 1
DEFAULT_PAGE = 100
MAX_PAGE = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deploys (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at   REAL    NOT NULL,
    deployed_at   REAL    NOT NULL,
    service       TEXT    NOT NULL,
    environment   TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    commit_id     TEXT    NOT NULL,
    sites         TEXT    NOT NULL,   -- JSON array of site codes
    status        TEXT    NOT NULL,
    pipeline_url  TEXT    NOT NULL,
    actor         TEXT    NOT NULL,
    notes         TEXT    NOT NULL,
    freeze        TEXT,
    freeze_policy TEXT,
    remote_addr   TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS deploys_by_target ON deploys (service, environment, id);
CREATE INDEX IF NOT EXISTS deploys_by_time ON deploys (received_at);
CREATE TRIGGER IF NOT EXISTS deploys_no_update BEFORE UPDATE ON deploys
BEGIN SELECT RAISE(ABORT, 'deploys is an append-only audit log: rows cannot be updated'); END;
CREATE TRIGGER IF NOT EXISTS deploys_no_delete BEFORE DELETE ON deploys
BEGIN SELECT RAISE(ABORT, 'deploys is an append-only audit log: rows cannot be deleted'); END;
"""
_COLUMNS = ("id, received_at, deployed_at, service, environment, version, commit_id, sites, status, "
            "pipeline_url, actor, notes, freeze, freeze_policy, remote_addr")


class StorageError(Exception):
    """The storage directory or database cannot be used; the message says what to fix."""


def prepare_storage(path: str) -> Path:
    """Create ``path`` if missing and check it is a writable directory (fail before listening)."""
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise StorageError(f"--storage.path {path}: exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"--storage.path {path}: cannot create the directory: {exc.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StorageError(f"--storage.path {path}: directory is not writable by this user")
    return directory


def check_storage(path: str) -> None:
    """Everything ``run`` needs before listening: the directory, and a log file it can open
    (not corrupt, not from a newer version). Raises :class:`StorageError` with the reason."""
    DeployLog.open(prepare_storage(path)).close()


class DeployLog:
    """``DeployLog.open(storage_dir)``; ``append`` a marker, ``query`` pages, ``latest`` state."""

    def __init__(self, connection: sqlite3.Connection, path: str) -> None:
        self._db = connection
        self._lock = threading.Lock()
        self.path = path

    @classmethod
    def open(cls, storage_dir: str | Path) -> DeployLog:
        """Open (creating if needed) ``deploys.sqlite`` in ``storage_dir``, in WAL mode."""
        return cls._connect(str(Path(storage_dir) / FILE_NAME))

    @classmethod
    def in_memory(cls) -> DeployLog:
        """A log that dies with the process (no ``--storage.path``: in-process tests, embedders)."""
        return cls._connect(":memory:")

    @classmethod
    def _connect(cls, path: str) -> DeployLog:
        try:
            db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=5.0)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                db.close()
                raise StorageError(f"{path}: written by a newer marketplace-exporter (schema {version}, "
                                   f"this one knows {SCHEMA_VERSION}); upgrade before using it")
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise StorageError(f"{path}: cannot open the deploy log: {exc}") from None
        return cls(db, path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def append(self, marker: DeployMarker, *, received_at: float | None = None,
               freeze: FreezeWindow | None = None, remote_addr: str = "") -> DeployRecord:
        """Insert one row (committed and synced before returning) and return it with its id."""
        received = time.time() if received_at is None else received_at
        deployed = marker.timestamp if marker.timestamp is not None else received
        values = (received, deployed, marker.service, marker.environment, marker.version, marker.commit,
                  json.dumps(list(marker.sites)), marker.status.value, marker.pipeline_url, marker.actor,
                  marker.notes, freeze.name if freeze else None, freeze.policy if freeze else None,
                  remote_addr)
        with self._lock:
            cursor = self._db.execute(
                f"INSERT INTO deploys ({_COLUMNS.removeprefix('id, ')}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
            row_id = cursor.lastrowid
        assert row_id is not None
        return _record((row_id, *values))

    def query(self, service: str | None = None, environment: str | None = None, since: float | None = None,
              limit: int = DEFAULT_PAGE, before_id: int | None = None) -> list[DeployRecord]:
        """Newest first; ``before_id`` continues from the last id of the previous page."""
        where, params = _filters(service, environment, since, before_id)
        params.append(max(1, min(limit, MAX_PAGE)))
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM deploys {where} ORDER BY id DESC LIMIT ?", params).fetchall()
        return [_record(row) for row in rows]

    def latest(self, service: str, environment: str, status: DeployStatus | None = None) -> DeployRecord | None:
        """The newest marker for a service/environment (optionally of one status)."""
        sql = f"SELECT {_COLUMNS} FROM deploys WHERE service = ? AND environment = ?"
        params: list[object] = [service, environment]
        if status is not None:
            sql += " AND status = ?"
            params.append(DeployStatus(status).value)
        with self._lock:
            row = self._db.execute(sql + " ORDER BY id DESC LIMIT 1", params).fetchone()
        return _record(row) if row else None

    def replay(self, batch: int = 1000) -> Iterator[DeployRecord]:
        """Every row, oldest first (rebuilding the in-memory state at start), in batches."""
        last = 0
        while True:
            with self._lock:
                rows = self._db.execute(f"SELECT {_COLUMNS} FROM deploys WHERE id > ? ORDER BY id LIMIT ?",
                                        (last, batch)).fetchall()
            if not rows:
                return
            for row in rows:
                yield _record(row)
            last = rows[-1][0]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM deploys").fetchone()[0])


def _filters(service: str | None, environment: str | None, since: float | None,
             before_id: int | None) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    for column, value in (("service = ?", service), ("environment = ?", environment),
                          ("received_at >= ?", since), ("id < ?", before_id)):
        if value is not None:
            clauses.append(column)
            params.append(value)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _record(row: tuple[Any, ...]) -> DeployRecord:
    (row_id, received, deployed, service, environment, version, commit, sites, status, url, actor, notes,
     freeze, policy, remote) = row
    return DeployRecord(
        id=int(row_id), received_at=float(received), deployed_at=float(deployed),
        service=str(service), environment=str(environment), version=str(version), commit=str(commit),
        sites=tuple(json.loads(str(sites))), status=DeployStatus(status), pipeline_url=str(url),
        actor=str(actor), notes=str(notes), freeze=None if freeze is None else str(freeze),
        freeze_policy=None if policy is None else str(policy), remote_addr=str(remote),
    )


__all__ = ["DeployLog", "StorageError", "check_storage", "prepare_storage"]
