"""The deploy audit log in SQLite: ``<storage.path>/deploys.sqlite`` (or ``--storage.url
sqlite:///FILE``), append-only, for one exporter on one box.

Why SQLite: one file an auditor can copy and query with any tool, crash-safe (WAL mode with
``synchronous=FULL``: a marker the API acknowledged with 201 is on disk), no server to run.
Several replicas need one shared log: ``--storage.url postgresql://...`` (:mod:`.log_postgres`).

"Append-only" is enforced by the database itself, not only by the API having no UPDATE/DELETE:
triggers abort any ``UPDATE``, ``DELETE`` or replacing ``INSERT`` (:mod:`.migrations`), whoever
issues it (a script, a sqlite3 shell), so a history cannot be quietly rewritten. Rotating old rows
out is a deliberate, visible act (drop the triggers) left to the operator.

One connection serves the whole process behind a lock; the HTTP handlers call it from a worker
thread (``asyncio.to_thread``): the fsync of a commit (~4 ms) never runs on the event loop.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from marketplace_exporter.catalogue import DeployStatus
from marketplace_exporter.deploys import migrations
from marketplace_exporter.deploys.freeze import FreezeWindow
from marketplace_exporter.deploys.model import DeployMarker, DeployRecord
from marketplace_exporter.deploys.storage import (
    COLUMNS,
    DEFAULT_PAGE,
    INSERT_COLUMNS,
    MAX_PAGE,
    Baseline,
    StorageError,
    StorageUnavailable,
    check_storage,
    filters,
    marker_values,
    record,
)

FILE_NAME = "deploys.sqlite"
#: the newest schema version this exporter knows (:mod:`.migrations`)
SCHEMA_VERSION = len(migrations.SQLITE)


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


class DeployLog:
    """``DeployLog.open(storage_dir)``; ``append`` a marker, ``query`` pages, ``latest`` state."""

    def __init__(self, connection: sqlite3.Connection, path: str) -> None:
        self._db = connection
        self._lock = threading.Lock()
        self.path = path
        #: one exporter writes it (SQLite: one box)
        self.shared = False

    @classmethod
    def open(cls, storage_dir: str | Path) -> DeployLog:
        """Open (creating if needed) ``deploys.sqlite`` in ``storage_dir``, in WAL mode."""
        return cls._connect(str(Path(storage_dir) / FILE_NAME))

    @classmethod
    def open_file(cls, file: str) -> DeployLog:
        """``--storage.url sqlite:///FILE``: that file (its directory must exist)."""
        directory = Path(file).parent
        if not directory.is_dir():
            raise StorageError(f"--storage.url sqlite:///{file}: the directory {directory} does not exist")
        return cls._connect(file)

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
            db.execute("PRAGMA foreign_keys=ON")
            _migrate(db, path)
        except sqlite3.Error as exc:
            raise StorageError(f"{path}: cannot open the deploy log: {exc}") from None
        return cls(db, path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def append(self, marker: DeployMarker, *, received_at: float | None = None,
               freeze: FreezeWindow | None = None, remote_addr: str = "",
               baseline: Baseline | None = None) -> DeployRecord:
        """Insert one row (and its baseline) in one transaction, committed and synced before returning."""
        received = time.time() if received_at is None else received_at
        values = marker_values(marker, received, freeze, remote_addr)
        values = (values[0], received if values[1] is None else values[1], *values[2:])
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    cursor = self._db.execute(f"INSERT INTO deploys ({INSERT_COLUMNS}) "
                                              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
                    row_id = cursor.lastrowid
                    assert row_id is not None
                    if baseline is not None:
                        self._db.execute("INSERT INTO verify_baselines (deploy_id, taken_at, data) VALUES (?, ?, ?)",
                                         (row_id, received, json.dumps(baseline, separators=(",", ":"))))
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:  # disk full, locked past the timeout, read-only
                raise StorageUnavailable(f"the audit log {self.path} cannot record the marker now: {exc}") from None
        return record((row_id, *values))

    def query(self, service: str | None = None, environment: str | None = None, since: float | None = None,
              limit: int = DEFAULT_PAGE, before_id: int | None = None) -> list[DeployRecord]:
        """Newest first; ``before_id`` continues from the last id of the previous page."""
        where, params = filters(service, environment, since, before_id, "?")
        params.append(max(1, min(limit, MAX_PAGE)))
        with self._lock:
            rows = self._db.execute(
                f"SELECT {COLUMNS} FROM deploys {where} ORDER BY id DESC LIMIT ?", params).fetchall()
        return [record(row) for row in rows]

    def latest(self, service: str, environment: str, status: DeployStatus | None = None) -> DeployRecord | None:
        """The newest marker for a service/environment (optionally of one status)."""
        sql = f"SELECT {COLUMNS} FROM deploys WHERE service = ? AND environment = ?"
        params: list[object] = [service, environment]
        if status is not None:
            sql += " AND status = ?"
            params.append(DeployStatus(status).value)
        with self._lock:
            row = self._db.execute(sql + " ORDER BY id DESC LIMIT 1", params).fetchone()
        return record(row) if row else None

    def replay(self, batch: int = 1000, after: int = 0) -> Iterator[DeployRecord]:
        """Every row after ``after``, oldest first (rebuilding the in-memory state at start), in batches."""
        last = after
        while True:
            with self._lock:
                rows = self._db.execute(f"SELECT {COLUMNS} FROM deploys WHERE id > ? ORDER BY id LIMIT ?",
                                        (last, batch)).fetchall()
            if not rows:
                return
            for row in rows:
                yield record(row)
            last = rows[-1][0]

    def baseline(self, deploy_id: int) -> Baseline | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM verify_baselines WHERE deploy_id = ?", (deploy_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM deploys").fetchone()[0])


def _migrate(db: sqlite3.Connection, path: str) -> None:
    """Apply the migrations this file has not seen, each in its own transaction."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        db.close()
        raise StorageError(f"{path}: written by a newer marketplace-exporter (schema {version}, "
                           f"this one knows {SCHEMA_VERSION}); upgrade before using it")
    for number, sql in enumerate(migrations.SQLITE[version:], start=version + 1):
        db.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version={number};\nCOMMIT;")


__all__ = ["FILE_NAME", "SCHEMA_VERSION", "DeployLog", "StorageError", "StorageUnavailable", "check_storage",
           "prepare_storage"]
