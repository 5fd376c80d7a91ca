"""The deploy audit trail as an operator runs it: a real ``marketplace-exporter run`` process on a
real SQLite file, marked by the real ``deploy mark`` command and by concurrent HTTP clients, stopped
with SIGTERM and started again on the same file: history, ids and metrics come back."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

TOKEN = "integration-token-77f3"
CONFIG = """\
deploys:
  freeze_windows:
    - name: double-11-2031
      environments: [production]
      start: 2031-11-10
      end: 2031-11-11
      timezone: Asia/Shanghai
      policy: block
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("GITHUB_", "GITLAB_", "CI_", "BUILD_", "JENKINS_"))}
    env.pop("MARKETPLACE_EXPORTER_DEPLOY_TOKEN", None)
    return env | extra


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "marketplace_exporter", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen([sys.executable, "-m", "marketplace_exporter", *args], env=env,
                                stdout=output, stderr=subprocess.STDOUT)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exporter exited early:\n{log.read_text()}"
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready within {seconds}s:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=20)


def _deploy_metrics(url: str) -> list[str]:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sorted(line for line in text.splitlines()
                  if line.startswith(("marketplace_deploy_info", "marketplace_deploys_total",
                                      "marketplace_deploy_timestamp_seconds", "marketplace_deploys_in_freeze")))


def test_marks_survive_a_restart_on_the_same_sqlite_file(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    storage = tmp_path / "data"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = _env(MARKETPLACE_EXPORTER_DEPLOY_TOKEN=TOKEN)
    run = ["run", f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}", f"--storage.path={storage}"]
    process = _start(run, tmp_path / "first.log", env)
    try:
        _wait_ready(url, process, tmp_path / "first.log")
        github = env | {"GITHUB_ACTIONS": "true", "GITHUB_SHA": "5e6f7a8b9c0d", "GITHUB_ACTOR": "octo-sre",
                        "GITHUB_REPOSITORY": "acme/order-sync", "GITHUB_RUN_ID": "42"}
        started = _cli("deploy", "mark", "--service", "order-sync", "--environment", "production",
                       "--version", "v7.0.0", "--status", "started", f"--exporter.url={url}", env=github)
        assert started.returncode == 0, started.stderr
        assert started.stdout.startswith("recorded deploy #1: order-sync v7.0.0 in production, started")

        http = httpx.Client(base_url=url, timeout=10, headers={"Authorization": f"Bearer {TOKEN}"})

        def post(index: int) -> int:
            body = {"service": f"svc-{index % 3}", "environment": "staging", "version": f"v{index}"}
            return http.post("/api/v1/deploys", json=body).status_code

        with http, ThreadPoolExecutor(max_workers=12) as pool:
            cli_marks = [pool.submit(_cli, "deploy", "mark", "--service", "order-sync", "--environment",
                                     "canary", "--version", f"v7.0.{n}", f"--exporter.url={url}", env=env)
                         for n in range(2)]
            statuses = list(pool.map(post, range(30)))
            assert [mark.result().returncode for mark in cli_marks] == [0, 0]
        assert statuses == [201] * 30
        succeeded = {"service": "order-sync", "environment": "production", "version": "v7.0.0",
                     "status": "succeeded", "commit": "5e6f7a8b9c0d", "actor": "octo-sre",
                     "pipeline_url": "https://github.com/acme/order-sync/actions/runs/42"}
        assert httpx.post(f"{url}/api/v1/deploys", json=succeeded, headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=10).status_code == 201
        before = _deploy_metrics(url)
        assert ('marketplace_deploy_info{commit="5e6f7a8b9c0d",environment="production",service="order-sync",'
                'version="v7.0.0"} 1.0') in before
        assert sum(float(line.split()[-1]) for line in before if line.startswith("marketplace_deploys_total")) == 34
    finally:
        assert _stop(process) == 0

    with sqlite3.connect(storage / "deploys.sqlite") as db:  # the file an auditor would copy
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT count(*), count(DISTINCT id) FROM deploys").fetchone() == (34, 34)

    process = _start(run, tmp_path / "second.log", env)
    try:
        _wait_ready(url, process, tmp_path / "second.log")
        assert _deploy_metrics(url) == before
        listed = _cli("deploys", "list", "--format", "json", "--environment", "production", f"--exporter.url={url}",
                      env=env)
        assert listed.returncode == 0, listed.stderr
        rows = json.loads(listed.stdout)
        assert [(row["status"], row["actor"], row["pipeline_url"]) for row in rows] == [
            ("succeeded", "octo-sre", "https://github.com/acme/order-sync/actions/runs/42"),
            ("started", "octo-sre", "https://github.com/acme/order-sync/actions/runs/42")]
        after = httpx.post(f"{url}/api/v1/deploys", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10,
                           json={"service": "order-sync", "environment": "production", "version": "v7.0.1"})
        assert after.json()["deploy"]["id"] == 35  # ids continue: nothing was overwritten
        exported = _cli("deploys", "export", "--format", "csv", f"--exporter.url={url}", env=env)
        assert exported.returncode == 0 and len(exported.stdout.strip().splitlines()) == 1 + 35
    finally:
        assert _stop(process) == 0
    assert TOKEN not in (tmp_path / "first.log").read_text() + (tmp_path / "second.log").read_text()


def test_demo_uses_a_temporary_directory_and_loopback_only_anonymous_marks(tmp_path: Path) -> None:
    port, sim_port = _free_port(), _free_port()
    url = f"http://127.0.0.1:{port}"
    env = _env()
    log = tmp_path / "demo.log"
    process = _start(["demo", f"--web.listen-address=127.0.0.1:{port}",
                      f"--simulator.listen-address=127.0.0.1:{sim_port}"], log, env)
    try:
        _wait_ready(url, process, log)
        mark = _cli("deploy", "mark", "--service", "demo-app", "--environment", "production", "--version", "v1",
                    f"--exporter.url={url}", env=env)
        assert mark.returncode == 0, mark.stderr
        announced = re.search(r"deploy audit log in the temporary directory (\S+) ", log.read_text())
        assert announced, log.read_text()
        directory = Path(announced.group(1))
        assert (directory / "deploys.sqlite").is_file()
        assert "anonymous markers accepted from 127.0.0.1/::1 only" in log.read_text()
    finally:
        assert _stop(process) == 0
    assert not directory.exists()


def test_run_refuses_a_storage_path_it_cannot_use(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("{}\n")
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    result = _cli("run", f"--config.file={config}", f"--storage.path={blocker}",
                  f"--web.listen-address=127.0.0.1:{_free_port()}", env=_env())
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: --storage.path {blocker}: exists and is not a directory"


def test_run_refuses_a_storage_url_it_cannot_use_without_printing_the_password(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("{}\n")
    for url, message in (
            ("mysql://audit:s3cret-pw@db/deploys", "expected sqlite:///FILE or postgresql://"),
            (f"postgresql://audit:s3cret-pw@127.0.0.1:{_free_port()}/deploys", "audit:***@127.0.0.1"),
            (f"sqlite:///{tmp_path}/missing-dir/audit.db", "does not exist")):
        result = _cli("run", f"--config.file={config}", f"--storage.url={url}",
                      f"--web.listen-address=127.0.0.1:{_free_port()}", env=_env())
        assert result.returncode == 1, result.stderr
        assert message in result.stderr and "s3cret-pw" not in result.stderr, result.stderr
