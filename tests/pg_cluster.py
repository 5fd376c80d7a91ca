"""A throwaway PostgreSQL 15 cluster for the tests: ``initdb`` in a fresh temp dir, ``pg_ctl``
start on a free loopback port, stopped by its postmaster's PID at the end.

Real PostgreSQL (Debian's ``postgresql`` package, installed by ``make deps``), never a mock. As
root (CI) the cluster runs as the ``postgres`` user, which PostgreSQL requires; as anyone else it
runs as that user. Missing binaries skip the tests, or fail them when ``REQUIRE_STACK=1``.
A plain module: ``from pg_cluster import PostgresCluster``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from conftest import free_port

#: Debian's PostgreSQL 15 (the ``postgresql`` package on bookworm)
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def require_postgres() -> Path:
    if (PG_BIN / "initdb").is_file() and (PG_BIN / "pg_ctl").is_file():
        return PG_BIN
    reason = f"PostgreSQL 15 is not installed ({PG_BIN}/initdb missing; `make deps` installs it, as root)"
    if os.environ.get("REQUIRE_STACK") == "1":
        pytest.fail(f"REQUIRE_STACK=1 and {reason}", pytrace=False)
    pytest.skip(reason)


class PostgresCluster:
    """``cluster = PostgresCluster.start()``; ``cluster.create_database()`` → a URL; ``cluster.stop()``."""

    def __init__(self, root: Path, port: int, run_as: list[str]) -> None:
        self.root = root
        self.port = port
        self._run_as = run_as
        self.data = root / "data"

    @classmethod
    def start(cls) -> PostgresCluster:
        bin_dir = require_postgres()
        root = Path(tempfile.mkdtemp(prefix="mpx-pg-"))
        run_as: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            user = pwd.getpwnam("postgres")
            os.chown(root, user.pw_uid, user.pw_gid)
            run_as = ["runuser", "-u", "postgres", "--"]
        cluster = cls(root, free_port(), run_as)
        cluster._pg(str(bin_dir / "initdb"), "-D", str(cluster.data), "-U", "postgres", "--auth=trust",
                    "--no-sync", "-E", "UTF8", "--locale=C")
        options = (f"-c listen_addresses=127.0.0.1 -c port={cluster.port} -c unix_socket_directories={root} "
                   "-c fsync=off -c max_connections=50")
        cluster._pg(str(bin_dir / "pg_ctl"), "-D", str(cluster.data), "-l", str(root / "server.log"),
                    "-o", options, "-w", "-t", "30", "start")
        return cluster

    def _pg(self, *argv: str) -> None:
        done = subprocess.run([*self._run_as, *argv], capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            log = self.root / "server.log"
            raise AssertionError(f"{argv[0]} failed: {done.stdout}{done.stderr}"
                                 + (log.read_text() if log.exists() else ""))

    @property
    def pid(self) -> int:
        """The postmaster's PID (first line of postmaster.pid)."""
        return int((self.data / "postmaster.pid").read_text().splitlines()[0])

    def url(self, database: str = "postgres", user: str = "postgres", password: str | None = None) -> str:
        auth = user if password is None else f"{user}:{password}"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh, empty database on this cluster; its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        """SIGTERM-free fast shutdown by PID: SIGINT is PostgreSQL's "fast" mode."""
        try:
            pid = self.pid
        except FileNotFoundError:
            pid = None
        if pid is not None:
            os.kill(pid, signal.SIGINT)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
        shutil.rmtree(self.root, ignore_errors=True)

    def pause(self) -> int:
        """Stop the server (an outage) keeping its data; :meth:`resume` starts it again."""
        pid = self.pid
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while (self.data / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return pid

    def resume(self) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} "
                   "-c fsync=off -c max_connections=50")
        self._pg(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                 "-o", options, "-w", "-t", "30", "start")
