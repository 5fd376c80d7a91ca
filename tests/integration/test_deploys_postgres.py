"""The deploy audit log on a real PostgreSQL 15 shared by two real exporter processes
(``marketplace-exporter run --storage.url postgresql://...``): what one replica records the other
serves, concurrent marks are neither lost nor reordered, the database refuses rewrites from any
client, and an outage is a clear 503 that ``deploy mark`` rides out by retrying — never a
half-written marker.

One cluster per test session (the ``postgres`` fixture in tests/conftest.py), a fresh database
per test; the two exporters are started once for the module."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from conftest import free_port, local_client, stop_process
from pg_cluster import PostgresCluster

from marketplace_exporter.catalogue import DeployStatus
from marketplace_exporter.deploys.model import DeployMarker
from marketplace_exporter.deploys.storage import StorageError, StorageUnavailable, open_log

TOKEN = "pg-test-token-7c1e"
CONFIG = """
http_checks:
  - name: self
    url: {url}/-/ready
    interval: 1s
    timeout: 500ms
"""
#: the role docs/deploys.md tells operators to run the exporter as: no UPDATE, DELETE or DDL
APPEND_ONLY_ROLE = """
CREATE ROLE mpx_exporter LOGIN PASSWORD 'mpx-role-pass';
GRANT SELECT, INSERT ON deploys, verify_baselines, schema_migrations TO mpx_exporter;
GRANT USAGE ON SEQUENCE deploys_id_seq TO mpx_exporter;
"""


@dataclass
class Replicas:
    urls: list[str]
    database: str
    procs: list[subprocess.Popen[bytes]]
    logs: list[Path]

    def env(self) -> dict[str, str]:
        return {**os.environ, "MARKETPLACE_EXPORTER_DEPLOY_TOKEN": TOKEN, "NO_PROXY": "127.0.0.1,localhost",
                "PYTHONUNBUFFERED": "1"}


def _start_exporter(database: str, workdir: Path, index: int, env: dict[str, str]) -> tuple[str, Any, Path]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = workdir / f"exporter-{index}.yml"
    config.write_text(CONFIG.format(url=url), encoding="utf-8")
    log = workdir / f"exporter-{index}.log"
    with log.open("wb") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "marketplace_exporter", "run", f"--config.file={config}",
                                 f"--web.listen-address=127.0.0.1:{port}", f"--storage.url={database}"],
                                stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 30
    with local_client(timeout=2.0) as client:
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if client.get(f"{url}/-/ready").status_code == 200:
                    return url, proc, log
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)


@pytest.fixture(scope="module")
def replicas(postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    database = postgres.create_database()
    workdir = tmp_path_factory.mktemp("pg-replicas")
    running = Replicas([], database, [], [])
    try:
        for index in range(2):
            url, proc, log = _start_exporter(database, workdir, index, running.env())
            running.urls.append(url)
            running.procs.append(proc)
            running.logs.append(log)
        yield running
    finally:
        for proc in running.procs:
            stop_process(proc, "an exporter replica")


def _marker(index: int, status: str = "succeeded", service: str = "order-sync") -> dict[str, Any]:
    return {"service": service, "environment": "production", "version": f"v{index}", "status": status,
            "notes": f"mark {index}"}


async def _post_all(urls: list[str], count: int) -> list[httpx.Response]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(timeout=30, trust_env=False, limits=httpx.Limits(max_connections=200)) as client:
        return await asyncio.gather(*(client.post(f"{urls[i % len(urls)]}/api/v1/deploys", json=_marker(i),
                                                  headers=headers) for i in range(count)))


def test_200_concurrent_marks_on_two_replicas_are_all_kept_in_server_time_order(replicas: Replicas) -> None:
    responses = asyncio.run(_post_all(replicas.urls, 200))
    assert [r.status_code for r in responses] == [201] * 200, [r.text for r in responses if r.status_code != 201]
    with psycopg.connect(replicas.database) as conn:
        rows = conn.execute("SELECT id, received_at, notes FROM deploys WHERE service = 'order-sync' "
                            "ORDER BY id").fetchall()
    assert sorted(notes for _, _, notes in rows) == sorted(f"mark {i}" for i in range(200))
    times = [received for _, received, _ in rows]
    assert times == sorted(times), "ids and the database server's receive times disagree on the order"
    # both replicas answer with the same history, newest first
    with local_client() as client:
        pages = [client.get(f"{url}/api/v1/deploys", params={"service": "order-sync", "limit": 1000},
                            headers={"Authorization": f"Bearer {TOKEN}"}).json()["deploys"] for url in replicas.urls]
    assert pages[0] == pages[1]
    assert [row["id"] for row in pages[0]] == [row_id for row_id, _, _ in reversed(rows)]
    # and both export the same counters: each folds in the other's markers within seconds
    series = 'marketplace_deploys_total{environment="production",service="order-sync",status="succeeded"} 200.0'
    deadline = time.monotonic() + 20
    with local_client() as client:
        while not all(series in client.get(f"{url}/metrics").text for url in replicas.urls):
            assert time.monotonic() < deadline, [client.get(f"{url}/metrics").text.count("order-sync")
                                                 for url in replicas.urls]
            time.sleep(0.5)


def test_a_started_marker_posted_to_one_replica_is_the_gate_marker_on_the_other(replicas: Replicas) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with local_client() as client:
        posted = client.post(f"{replicas.urls[0]}/api/v1/deploys", headers=headers,
                             json=_marker(1, status="started", service="listing-sync"))
        assert posted.status_code == 201, posted.text
        answer = client.post(f"{replicas.urls[1]}/api/v1/verify", headers=headers,
                             json={"service": "listing-sync", "environment": "production", "probe": False,
                                   "window_seconds": 1})
    assert answer.status_code == 200, answer.text
    assert answer.json()["marker"]["id"] == posted.json()["deploy"]["id"]
    assert not any("no 'started' deploy marker" in reason for reason in answer.json()["reasons"])


def test_the_database_refuses_rewrites_from_any_client(postgres: PostgresCluster) -> None:
    database = postgres.create_database()
    log = open_log(database)
    try:
        first = log.append(DeployMarker("order-sync", "production", "v1", status=DeployStatus.STARTED),
                           baseline={"checks": {}, "production": {}})
    finally:
        log.close()
    forged = ("INSERT INTO deploys (id, received_at, deployed_at, service, environment, version, commit_id, sites, "
              "status, pipeline_url, actor, notes, remote_addr) VALUES (%s, 1, 1, 'order-sync', 'production', "
              "'forged', '', '[]', 'succeeded', '', '', '', '')")
    with psycopg.connect(database, autocommit=True) as conn:  # the owner, a superuser even
        for sql in ("UPDATE deploys SET version = 'forged'", "DELETE FROM deploys", "TRUNCATE deploys CASCADE",
                    "UPDATE verify_baselines SET data = '{}'", "DELETE FROM verify_baselines",
                    forged + " ON CONFLICT (id) DO UPDATE SET version = 'forged'",
                    "INSERT INTO verify_baselines (deploy_id, taken_at, data) VALUES (%s, 1, '{}') "
                    "ON CONFLICT (deploy_id) DO UPDATE SET data = '{}'"):
            with pytest.raises(psycopg.Error, match="append-only"):
                conn.execute(sql, (first.id,) if "%s" in sql else None)
        assert conn.execute("SELECT version FROM deploys").fetchall() == [("v1",)]
        assert [v for (v,) in conn.execute("SELECT version FROM schema_migrations")] == [1]
        conn.execute(APPEND_ONLY_ROLE)
    restricted = postgres.url(database.rsplit("/", 1)[1], user="mpx_exporter", password="mpx-role-pass")
    log = open_log(restricted)  # schema current: the restricted role needs no DDL
    try:
        second = log.append(DeployMarker("order-sync", "production", "v2"))
        assert [r.version for r in log.query()] == ["v2", "v1"] and second.id == first.id + 1
        assert "mpx-role-pass" not in log.path
    finally:
        log.close()
    with psycopg.connect(restricted, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            conn.execute("UPDATE deploys SET version = 'forged'")


def test_a_database_from_a_newer_exporter_is_refused(postgres: PostgresCluster) -> None:
    database = postgres.create_database()
    open_log(database).close()
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version) VALUES (99)")
    with pytest.raises(StorageError, match="newer marketplace-exporter"):
        open_log(database)


def test_database_down_answers_503_and_deploy_mark_retries_until_it_is_back(
        replicas: Replicas, postgres: PostgresCluster) -> None:
    before = _count(replicas.database)
    postgres.pause()
    try:
        with local_client() as client:
            down = client.post(f"{replicas.urls[0]}/api/v1/deploys", json=_marker(500),
                               headers={"Authorization": f"Bearer {TOKEN}"})
        assert down.status_code == 503, down.text
        assert down.headers["Retry-After"] == "2"
        assert "audit log database" in down.json()["error"] and "nothing was recorded" in down.json()["error"]
        cli = subprocess.Popen(
            [sys.executable, "-m", "marketplace_exporter", "deploy", "mark", "--exporter.url", replicas.urls[1],
             "--service", "order-sync", "--environment", "production", "--version", "v501", "--notes", "retried"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=replicas.env())
        time.sleep(2.5)  # the CLI has been refused at least twice by now
    finally:
        postgres.resume()
    out, err = cli.communicate(timeout=60)
    assert cli.returncode == 0, err
    assert "retrying in 1s (1/5)" in err and "unavailable" in err, err
    assert out.startswith("recorded deploy #"), out
    with psycopg.connect(replicas.database) as conn:
        notes = [n for (n,) in conn.execute("SELECT notes FROM deploys WHERE id > 0 ORDER BY id DESC LIMIT 2")]
        orphans = conn.execute("SELECT count(*) FROM verify_baselines b LEFT JOIN deploys d ON d.id = b.deploy_id "
                               "WHERE d.id IS NULL").fetchone()
    assert _count(replicas.database) == before + 1  # the refused mark wrote nothing, the retried one once
    assert notes[0] == "retried" and "mark 500" not in notes
    assert orphans == (0,)


def test_storage_unavailable_names_the_database_without_its_password(postgres: PostgresCluster) -> None:
    dead = f"postgresql://someone:hunter2-secret@127.0.0.1:{free_port()}/deploys"
    with pytest.raises(StorageError) as raised:
        open_log(dead)
    assert "hunter2-secret" not in str(raised.value) and "someone:***@127.0.0.1" in str(raised.value)
    assert not isinstance(raised.value, StorageUnavailable) or "unavailable" in str(raised.value)


def _count(database: str) -> int:
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT count(*) FROM deploys").fetchone()
    assert row is not None
    return int(row[0])
