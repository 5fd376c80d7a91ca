"""The deploy audit log in PostgreSQL (``--storage.url postgresql://...``): one log shared by
several exporter replicas, so a marker posted to one is seen by ``verify`` on another.

Driver: psycopg 3 (sync). The storage interface is synchronous for both backends and runs in a
worker thread (``asyncio.to_thread``), so the same code path serves SQLite and PostgreSQL, the
start-up check and the tests; psycopg 3 ships typed (mypy --strict), has binary wheels, speaks
libpq connection URLs and ``PG*`` variables as operators know them. asyncpg would have needed a
second, async-only storage interface beside SQLite's for no gain at a few markers a minute.

Order and time: ``received_at`` is the *database server's* clock (``clock_timestamp()``), not the
replica's, and every insert takes one transaction-scoped advisory lock first, so ids and receive
times grow together across replicas: "newest first" means the same thing on every replica.

Outage: a call that cannot reach the database raises :class:`StorageUnavailable` (the API answers
503, the CLI retries); the transaction is rolled back by the server, so nothing is half-written.
The connection is re-opened on the next call.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

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
    filters,
    marker_values,
    record,
    redact,
)

try:
    import psycopg
except ImportError:  # pragma: no cover - depends on the installation
    psycopg = None  # type: ignore[assignment]

SCHEMA_VERSION = len(migrations.POSTGRES)
#: advisory lock keys ("mpx" deploys): one for inserts, one for migrations
INSERT_LOCK = 0x6D7078_01
MIGRATE_LOCK = 0x6D7078_02
#: a database that does not answer within this many seconds counts as down
CONNECT_TIMEOUT = 5
STATEMENT_TIMEOUT_MS = 5000

T = TypeVar("T")

_INSERT = f"""
WITH server AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS now)
INSERT INTO deploys ({INSERT_COLUMNS})
SELECT COALESCE(%s::float8, server.now), COALESCE(%s::float8, %s::float8, server.now),
       %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s
FROM server RETURNING {COLUMNS}
"""


class PostgresLog:
    """``PostgresLog.connect(url)``: the same methods as the SQLite ``DeployLog``."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.path = redact(url)
        #: several replicas write it: each polls for the others' rows (:mod:`.log_follow`)
        self.shared = True
        self._lock = threading.Lock()
        self._conn: Any = None

    @classmethod
    def connect(cls, url: str) -> PostgresLog:
        """Connect and bring the schema up to date (or refuse one from a newer exporter)."""
        if psycopg is None:
            raise StorageError("--storage.url postgresql://...: the PostgreSQL driver is not installed "
                               "(pip install 'marketplace-exporter[postgres]')")
        log = cls(url)
        try:
            log._run(log._migrate)
        except StorageUnavailable as exc:
            raise StorageError(str(exc)) from None
        except BaseException:
            log.close()
            raise
        return log

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _run(self, work: Callable[[Any], T]) -> T:
        """One transaction on the (re-opened if needed) connection; a lost database becomes
        :class:`StorageUnavailable`, an append-only refusal stays a ``psycopg.Error``."""
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self._url, connect_timeout=CONNECT_TIMEOUT, autocommit=False)
                    self._conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
                    self._conn.commit()
                with self._conn.transaction(), self._conn.cursor() as cursor:
                    return work(cursor)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise StorageUnavailable(f"the audit log database {self.path} is unavailable: {reason}") from None

    def _migrate(self, cursor: Any) -> None:
        """Apply missing migrations under an advisory lock. A current schema needs no DDL, so the
        exporter may run as a role with only SELECT and INSERT (docs/deploys.md)."""
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
        cursor.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
        version = 0
        if cursor.fetchone()[0]:
            cursor.execute("SELECT COALESCE(max(version), 0) FROM schema_migrations")
            version = int(cursor.fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StorageError(f"{self.path}: written by a newer marketplace-exporter (schema {version}, "
                               f"this one knows {SCHEMA_VERSION}); upgrade before using it")
        if version == SCHEMA_VERSION:
            return
        try:
            cursor.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                           "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            for number, sql in enumerate(migrations.POSTGRES[version:], start=version + 1):
                cursor.execute(sql)
                cursor.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (number,))
        except psycopg.errors.InsufficientPrivilege as exc:
            raise StorageError(f"{self.path}: the schema is at version {version}, this exporter needs "
                               f"{SCHEMA_VERSION}, and this role may not migrate it ({exc}); run the exporter "
                               "once as the tables' owner (docs/deploys.md)") from None

    def append(self, marker: DeployMarker, *, received_at: float | None = None,
               freeze: FreezeWindow | None = None, remote_addr: str = "",
               baseline: Baseline | None = None) -> DeployRecord:
        """Insert under the insert lock (ids and server times in the same order), with the baseline
        of a ``started`` marker, in one transaction."""
        values = marker_values(marker, received_at, freeze, remote_addr)

        def insert(cursor: Any) -> DeployRecord:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (INSERT_LOCK,))
            cursor.execute(_INSERT, (values[0], values[1], values[0], *values[2:]))
            row = record(cursor.fetchone())
            if baseline is not None:
                cursor.execute("INSERT INTO verify_baselines (deploy_id, taken_at, data) VALUES (%s, %s, %s)",
                               (row.id, row.received_at, json.dumps(baseline, separators=(",", ":"))))
            return row

        return self._run(insert)

    def query(self, service: str | None = None, environment: str | None = None, since: float | None = None,
              limit: int = DEFAULT_PAGE, before_id: int | None = None) -> list[DeployRecord]:
        where, params = filters(service, environment, since, before_id, "%s")
        params.append(max(1, min(limit, MAX_PAGE)))

        def select(cursor: Any) -> list[DeployRecord]:
            cursor.execute(f"SELECT {COLUMNS} FROM deploys {where} ORDER BY id DESC LIMIT %s", params)
            return [record(row) for row in cursor.fetchall()]

        return self._run(select)

    def latest(self, service: str, environment: str, status: DeployStatus | None = None) -> DeployRecord | None:
        sql = f"SELECT {COLUMNS} FROM deploys WHERE service = %s AND environment = %s"
        params: list[object] = [service, environment]
        if status is not None:
            sql += " AND status = %s"
            params.append(DeployStatus(status).value)

        def select(cursor: Any) -> DeployRecord | None:
            cursor.execute(sql + " ORDER BY id DESC LIMIT 1", params)
            row = cursor.fetchone()
            return record(row) if row else None

        return self._run(select)

    def replay(self, batch: int = 1000, after: int = 0) -> Iterator[DeployRecord]:
        last = after
        while True:
            def page(cursor: Any, after: int = last) -> list[DeployRecord]:
                cursor.execute(f"SELECT {COLUMNS} FROM deploys WHERE id > %s ORDER BY id LIMIT %s", (after, batch))
                return [record(row) for row in cursor.fetchall()]

            rows = self._run(page)
            if not rows:
                return
            yield from rows
            last = rows[-1].id

    def baseline(self, deploy_id: int) -> Baseline | None:
        def select(cursor: Any) -> Baseline | None:
            cursor.execute("SELECT data FROM verify_baselines WHERE deploy_id = %s", (deploy_id,))
            row = cursor.fetchone()
            return None if row is None else dict(json.loads(row[0]))

        return self._run(select)

    def count(self) -> int:
        def select(cursor: Any) -> int:
            cursor.execute("SELECT count(*) FROM deploys")
            return int(cursor.fetchone()[0])

        return self._run(select)


__all__ = ["SCHEMA_VERSION", "PostgresLog"]
