"""Where the deploy audit log lives, and what every backend offers.

    --storage.path DIR                    DIR/deploys.sqlite (the default, ``./data``): one box
    --storage.url sqlite:///FILE          the same SQLite log at an explicit file
    --storage.url postgresql://USER@HOST/DB   one log shared by several exporter replicas

Both backends are append-only *in the database* (triggers refuse UPDATE, DELETE and an INSERT
that would replace or upsert an existing row, whoever sends it), carry a versioned schema
(:mod:`.migrations`), and keep the post-deploy gate's baseline next to the ``started`` marker it
belongs to, so an exporter restart between the marker and ``verify`` no longer loses it.

The backends are synchronous (one short transaction per call); the HTTP handlers call them
through ``asyncio.to_thread`` so a slow fsync or a database round trip never stalls the event
loop that also serves ``/metrics`` and runs the probes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from marketplace_exporter.catalogue import DeployStatus
from marketplace_exporter.deploys.freeze import FreezeWindow
from marketplace_exporter.deploys.model import DeployMarker, DeployRecord

DEFAULT_PAGE = 100
MAX_PAGE = 1000
#: the row columns, in the order :func:`record` reads them
COLUMNS = ("id, received_at, deployed_at, service, environment, version, commit_id, sites, status, "
           "pipeline_url, actor, notes, \"freeze\", freeze_policy, remote_addr")
#: the columns an insert writes (everything but the id the database assigns)
INSERT_COLUMNS = COLUMNS.removeprefix("id, ")


class StorageError(Exception):
    """The storage cannot be used; the message says what to fix (never a password)."""


class StorageUnavailable(StorageError):
    """The database is down or unreachable right now: nothing was written; retrying may work."""


#: what the gate keeps per ``started`` marker: the probe baseline of every check and the deployed
#: service's production calls per marketplace, both measured over the 30 minutes before the marker
Baseline = dict[str, Any]


class AuditLog(Protocol):
    """The deploy audit log, whichever database holds it."""

    #: where it is, for log lines (a URL without its password)
    path: str
    #: other exporters write to it too (their rows reach this one's metrics by polling)
    shared: bool

    def append(self, marker: DeployMarker, *, received_at: float | None = None,
               freeze: FreezeWindow | None = None, remote_addr: str = "",
               baseline: Baseline | None = None) -> DeployRecord:
        """Insert the marker (and the gate's baseline for a ``started`` one) in one transaction,
        committed before returning; ``received_at`` None means "the database's clock now"."""
        ...

    def query(self, service: str | None = None, environment: str | None = None, since: float | None = None,
              limit: int = DEFAULT_PAGE, before_id: int | None = None) -> list[DeployRecord]:
        """Newest first; ``before_id`` continues from the last id of the previous page."""
        ...

    def latest(self, service: str, environment: str, status: DeployStatus | None = None) -> DeployRecord | None:
        """The newest marker for a service/environment (optionally of one status)."""
        ...

    def replay(self, batch: int = 1000, after: int = 0) -> Iterator[DeployRecord]:
        """Every row with an id above ``after``, oldest first, in batches."""
        ...

    def baseline(self, deploy_id: int) -> Baseline | None:
        """The baseline stored with marker ``deploy_id`` (None: none was stored)."""
        ...

    def count(self) -> int: ...

    def close(self) -> None: ...


def open_log(location: str) -> AuditLog:
    """``location`` is a ``--storage.path`` directory or a ``--storage.url``; raises
    :class:`StorageError` with the reason (before the exporter listens)."""
    scheme = location.split("://", 1)[0].lower() if "://" in location else ""
    if scheme in ("postgresql", "postgres"):
        from marketplace_exporter.deploys.log_postgres import PostgresLog

        return PostgresLog.connect(location)
    from marketplace_exporter.deploys.log import DeployLog, prepare_storage

    if scheme == "sqlite":
        return DeployLog.open_file(sqlite_file(location))
    if scheme:
        raise StorageError(f"--storage.url {redact(location)}: expected sqlite:///FILE or postgresql://...")
    return DeployLog.open(prepare_storage(location))


def check_storage(location: str) -> None:
    """Everything ``run`` needs before listening: the database opens, its schema is current (or
    was migrated) and not from a newer version."""
    open_log(location).close()


def sqlite_file(url: str) -> str:
    """``sqlite:///data/deploys.sqlite`` → ``data/deploys.sqlite``; ``sqlite:////var/x.db`` → ``/var/x.db``."""
    parts = urlsplit(url)
    if parts.netloc or not parts.path.startswith("/") or len(parts.path) < 2:
        raise StorageError(f"--storage.url {url}: expected sqlite:///relative/file or sqlite:////absolute/file")
    return parts.path[1:]


def redact(url: str) -> str:
    """A database URL fit for a log line or an error: the password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}{port}", parts.path, parts.query, parts.fragment))


def marker_values(marker: DeployMarker, received_at: float | None, freeze: FreezeWindow | None,
                  remote_addr: str) -> tuple[Any, ...]:
    """The insert's values in :data:`INSERT_COLUMNS` order (``deployed_at`` None: the receive time)."""
    return (received_at, marker.timestamp, marker.service, marker.environment, marker.version, marker.commit,
            json.dumps(list(marker.sites)), marker.status.value, marker.pipeline_url, marker.actor, marker.notes,
            freeze.name if freeze else None, freeze.policy if freeze else None, remote_addr)


def filters(service: str | None, environment: str | None, since: float | None, before_id: int | None,
            placeholder: str) -> tuple[str, list[object]]:
    """The WHERE clause of a page query, with the backend's parameter placeholder."""
    clauses: list[str] = []
    params: list[object] = []
    for column, value in (("service = ", service), ("environment = ", environment),
                          ("received_at >= ", since), ("id < ", before_id)):
        if value is not None:
            clauses.append(column + placeholder)
            params.append(value)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def record(row: tuple[Any, ...] | Any) -> DeployRecord:
    (row_id, received, deployed, service, environment, version, commit, sites, status, url, actor, notes,
     freeze, policy, remote) = row
    return DeployRecord(
        id=int(row_id), received_at=float(received), deployed_at=float(deployed),
        service=str(service), environment=str(environment), version=str(version), commit=str(commit),
        sites=tuple(json.loads(str(sites))), status=DeployStatus(status), pipeline_url=str(url),
        actor=str(actor), notes=str(notes), freeze=None if freeze is None else str(freeze),
        freeze_policy=None if policy is None else str(policy), remote_addr=str(remote),
    )


__all__ = ["COLUMNS", "DEFAULT_PAGE", "INSERT_COLUMNS", "MAX_PAGE", "AuditLog", "Baseline", "StorageError",
           "StorageUnavailable", "check_storage", "filters", "marker_values", "open_log", "record", "redact",
           "sqlite_file"]
