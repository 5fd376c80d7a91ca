"""The append-only SQLite audit log: rows survive reopening the file, pages come newest first,
``latest`` answers per service/environment, and the database itself refuses UPDATE and DELETE."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from marketplace_exporter.catalogue import DeployStatus
from marketplace_exporter.deploys.freeze import FreezeWindow
from marketplace_exporter.deploys.log import FILE_NAME, DeployLog, StorageError, prepare_storage
from marketplace_exporter.deploys.model import DeployMarker
from marketplace_exporter.deploys.state import DeployState


def _marker(service: str = "listing-sync", environment: str = "production", version: str = "v1.0.0",
            status: DeployStatus = DeployStatus.SUCCEEDED, **extra: object) -> DeployMarker:
    return DeployMarker(service=service, environment=environment, version=version, status=status,
                        **extra)  # type: ignore[arg-type]


@pytest.fixture
def deploy_log(tmp_path: Path) -> Iterator[DeployLog]:
    log = DeployLog.open(tmp_path)
    yield log
    log.close()


def test_appended_rows_come_back_after_reopening_the_file(tmp_path: Path) -> None:
    first = DeployLog.open(tmp_path)
    record = first.append(_marker(commit="a1b2c3d4", sites=("US", "DE"), actor="ci-bot",
                                  pipeline_url="https://ci.example.com/run/7", notes="first\nsecond line"),
                          received_at=1_800_000_000.5, remote_addr="10.0.0.7")
    first.close()

    reopened = DeployLog.open(tmp_path)
    try:
        [again] = reopened.query()
    finally:
        reopened.close()
    assert again == record
    assert again.id == 1 and again.received_at == 1_800_000_000.5 == again.deployed_at
    assert again.sites == ("US", "DE") and again.remote_addr == "10.0.0.7"


def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    DeployLog.open(tmp_path).close()
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_database_refuses_update_and_delete_whoever_asks(tmp_path: Path, deploy_log: DeployLog) -> None:
    deploy_log.append(_marker())
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("UPDATE deploys SET version = 'forged'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("DELETE FROM deploys")
    assert [record.version for record in deploy_log.query()] == ["v1.0.0"]


def test_query_pages_newest_first_with_filters(deploy_log: DeployLog) -> None:
    for index in range(5):
        deploy_log.append(_marker(version=f"v{index}"), received_at=1_800_000_000 + index)
    deploy_log.append(_marker(service="order-sync"), received_at=1_800_000_010)
    deploy_log.append(_marker(environment="staging"), received_at=1_800_000_011)

    page = deploy_log.query(service="listing-sync", environment="production", limit=2)
    assert [record.version for record in page] == ["v4", "v3"]
    rest = deploy_log.query(service="listing-sync", environment="production", limit=10, before_id=page[-1].id)
    assert [record.version for record in rest] == ["v2", "v1", "v0"]
    assert [record.version for record in deploy_log.query(since=1_800_000_003, service="listing-sync",
                                                          environment="production")] == ["v4", "v3"]
    assert len(deploy_log.query()) == 7


def test_latest_per_target_and_per_status(deploy_log: DeployLog) -> None:
    assert deploy_log.latest("listing-sync", "production") is None
    deploy_log.append(_marker(version="v1", status=DeployStatus.STARTED))
    deploy_log.append(_marker(version="v1", status=DeployStatus.SUCCEEDED))
    deploy_log.append(_marker(version="v2", status=DeployStatus.STARTED))
    deploy_log.append(_marker(environment="staging", version="v3", status=DeployStatus.STARTED))

    latest = deploy_log.latest("listing-sync", "production")
    assert latest is not None and (latest.version, latest.status) == ("v2", DeployStatus.STARTED)
    succeeded = deploy_log.latest("listing-sync", "production", DeployStatus.SUCCEEDED)
    assert succeeded is not None and succeeded.version == "v1"
    assert deploy_log.latest("listing-sync", "production", DeployStatus.ROLLED_BACK) is None


def test_a_freeze_and_an_explicit_deploy_time_are_kept(deploy_log: DeployLog) -> None:
    from datetime import UTC, datetime

    window = FreezeWindow("double-11", ("production",), datetime(2026, 11, 10, tzinfo=UTC),
                          datetime(2026, 11, 12, tzinfo=UTC), "block")
    record = deploy_log.append(_marker(timestamp=1_700_000_000.0), received_at=1_800_000_000.0, freeze=window)
    assert (record.freeze, record.freeze_policy) == ("double-11", "block")
    assert record.deployed_at == 1_700_000_000.0 and record.received_at == 1_800_000_000.0
    assert deploy_log.query()[0] == record


def test_replayed_state_matches_what_was_appended(deploy_log: DeployLog) -> None:
    live = DeployState()
    for status in (DeployStatus.STARTED, DeployStatus.FAILED, DeployStatus.STARTED, DeployStatus.SUCCEEDED):
        live.observe(deploy_log.append(_marker(status=status)))
    replayed = DeployState.replay(deploy_log.replay(batch=3))
    assert replayed == live
    assert replayed.counts[("listing-sync", "production", "started")] == 2


def test_prepare_storage_creates_the_directory_and_refuses_a_file(tmp_path: Path) -> None:
    assert prepare_storage(str(tmp_path / "a" / "b")).is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="--storage.path"):
        prepare_storage(str(blocker / "sub"))


def test_a_newer_schema_is_refused_rather_than_misread(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(StorageError, match="newer"):
        DeployLog.open(tmp_path)


def test_insert_or_replace_and_upsert_cannot_rewrite_a_row(tmp_path: Path, deploy_log: DeployLog) -> None:
    """The security review's finding: ``INSERT OR REPLACE`` deleted and rewrote row 1 without firing
    the DELETE trigger. A BEFORE INSERT trigger now refuses any insert naming an existing id."""
    first = deploy_log.append(_marker(status=DeployStatus.STARTED), baseline={"checks": {}, "production": {}})
    columns = ("id, received_at, deployed_at, service, environment, version, commit_id, sites, status, "
               "pipeline_url, actor, notes, remote_addr")
    values = f"({first.id}, 1, 1, 'listing-sync', 'production', 'forged', '', '[]', 'succeeded', '', '', '', '')"
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        for verb in ("INSERT OR REPLACE INTO", "REPLACE INTO", "INSERT INTO"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(f"{verb} deploys ({columns}) VALUES {values}")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(f"INSERT INTO deploys ({columns}) VALUES {values} ON CONFLICT (id) DO UPDATE SET version = 'x'")
        for sql in (f"INSERT OR REPLACE INTO verify_baselines VALUES ({first.id}, 1, '{{}}')",
                    "UPDATE verify_baselines SET data = '{}'", "DELETE FROM verify_baselines"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(sql)
    assert [record.version for record in deploy_log.query()] == ["v1.0.0"]
    assert deploy_log.baseline(first.id) == {"checks": {}, "production": {}}


def test_a_version_1_file_from_an_earlier_release_is_migrated_in_place(tmp_path: Path) -> None:
    from marketplace_exporter.deploys import migrations

    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        db.executescript(migrations.SQLITE[0])
        db.execute("PRAGMA user_version=1")
        db.execute("INSERT INTO deploys (received_at, deployed_at, service, environment, version, commit_id, sites, "
                   "status, pipeline_url, actor, notes, remote_addr) VALUES (1e9, 1e9, 'old', 'production', 'v0', "
                   "'', '[]', 'succeeded', '', '', '', '')")
    log = DeployLog.open(tmp_path)
    try:
        assert [record.service for record in log.query()] == ["old"]
        log.append(_marker(status=DeployStatus.STARTED), baseline={"checks": {}})
    finally:
        log.close()
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(migrations.SQLITE) == 2
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("INSERT OR REPLACE INTO deploys SELECT * FROM deploys WHERE id = 1")


def test_storage_url_sqlite_opens_that_file_and_other_schemes_are_refused(tmp_path: Path) -> None:
    from marketplace_exporter.deploys.storage import open_log

    log = open_log(f"sqlite:///{tmp_path}/audit.db")
    try:
        log.append(_marker())
    finally:
        log.close()
    assert (tmp_path / "audit.db").is_file()
    with pytest.raises(StorageError, match="expected sqlite:///FILE or postgresql://"):
        open_log("mysql://root:pw@db/deploys")
    with pytest.raises(StorageError, match="does not exist"):
        open_log(f"sqlite:///{tmp_path}/missing/audit.db")


def test_a_replica_folds_in_other_replicas_rows_once_and_keeps_the_newest_as_latest(deploy_log: DeployLog) -> None:
    """A shared log: this replica recorded #3 itself before reading #2 (another replica's); the
    counters count each row once and "latest" stays #3."""
    first = deploy_log.append(_marker(version="v1"))
    state = DeployState.replay(deploy_log.replay())
    other = deploy_log.append(_marker(version="v2"))  # written by "another replica"
    mine = deploy_log.append(_marker(version="v3"))
    state.observe(mine)
    assert state.follow(deploy_log.replay(after=state.watermark)) == 1
    assert state.follow(deploy_log.replay(after=state.watermark)) == 0
    assert state.counts[("listing-sync", "production", "succeeded")] == 3
    assert state.latest[("listing-sync", "production")] == mine
    assert state.watermark == mine.id and state.ahead == set() and first.id < other.id < mine.id
