"""Shared test helpers: free ports, the real demo exporter as a subprocess, required binaries.

Why a subprocess rather than an in-process aiohttp app: the stack and integration tests check what
an operator gets — the CLI wiring, the simulator and exporter listening on real sockets, a clean
shutdown on SIGTERM, and the log the process actually writes — none of which an in-process test
client sees. Test modules import the plain helpers with ``from conftest import free_port,
require_binary`` and get the exporter through the ``demo_exporter`` fixture.

Nothing here is autouse or otherwise global: each test file owns its own fixtures.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import yaml

#: the exporter imports, starts the simulator, loads the config and listens in ~1 s; 20 s is for
#: a loaded CI machine, not for a slow start we would accept
READY_TIMEOUT_S = 20.0
#: a clean shutdown (probe tasks cancelled, sessions closed) takes well under a second
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago.

    The exporter needs the port on its command line (with ``:0`` it would not tell us which port it
    got), so there is a small race between closing this socket and the child binding it; the
    fixture below retries when it loses that race.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def raw_http_request(port: int, head: bytes, body: bytes = b"") -> tuple[int, str]:
    """Send bytes no HTTP client library would (they refuse to encode them, e.g. a header that is
    not UTF-8) to 127.0.0.1:``port``; ``head`` is the request line and headers, each ending in CRLF.
    Returns (status, body)."""
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2].decode("utf-8", "replace")


def require_binary(name: str) -> str:
    """The path of executable ``name`` (a command name or an absolute path).

    When it is missing the test is skipped on a developer machine, but fails when
    ``REQUIRE_STACK=1`` (CI): a CI run must never go green because the stack tests quietly skipped.
    """
    path = shutil.which(name)
    if path is not None:
        return path
    reason = f"{name} is not installed (`make deps` installs it, as root)"
    if os.environ.get("REQUIRE_STACK") == "1":
        pytest.fail(f"REQUIRE_STACK=1 and {reason}", pytrace=False)
    pytest.skip(reason)


#: secrets in examples/demo.yml that must never leave the exporter; demo_secret_values() also
#: reads the file, and this list guards against that parse silently finding nothing
KNOWN_DEMO_SECRETS = (
    "sim-lwa-secret-0001",
    "Atzr|sim-refresh-us-main",
    "sim-shopee-partner-key-0001",
    "sim-shopee-access-sg-main",
)


def demo_secret_values() -> list[str]:
    """Every ``{value: ...}`` secret in the bundled demo config, plus :data:`KNOWN_DEMO_SECRETS`.

    Read from the file so a secret added to the demo later is covered without editing the tests.
    """
    from marketplace_exporter.cli import demo_config_path

    found: set[str] = set(KNOWN_DEMO_SECRETS)

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if set(node) == {"value"} and isinstance(node["value"], str | int):
                found.add(str(node["value"]))
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    with open(demo_config_path(), encoding="utf-8") as handle:
        walk(yaml.safe_load(handle))
    return sorted(found)


def local_client(timeout: float = 10.0) -> httpx.Client:
    """An httpx client for 127.0.0.1 that ignores proxy environment variables (a CI proxy must
    never see, or break, traffic to the processes under test)."""
    return httpx.Client(timeout=timeout, trust_env=False)


@dataclass
class DemoExporter:
    """A running ``marketplace-exporter demo`` process and how to reach it."""

    #: base URL of the exporter (status page, /metrics, /probe), no trailing slash
    url: str
    #: base URL of the bundled simulator (marketplace routes and the /__sim/ control API)
    sim_url: str
    pid: int
    stdout_path: Path
    stderr_path: Path
    _files: list[IO[bytes]] = field(default_factory=list, repr=False)

    def log_text(self) -> str:
        """Everything the exporter wrote to stderr so far (its log)."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stdout_text(self) -> str:
        """Everything the exporter wrote to stdout so far (the start-up banner)."""
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def inject_fault(self, marketplace: str, fault: str, **fields: Any) -> dict[str, Any]:
        """``POST /__sim/faults``; ``fields`` are account, check, value, count. Returns the stored
        fault as the simulator echoes it."""
        body = {"marketplace": marketplace, "fault": fault, **fields}
        with local_client() as client:
            response = client.post(f"{self.sim_url}/__sim/faults", json=body)
        assert response.status_code in (200, 201), f"fault {body} rejected: {response.text}"
        result: dict[str, Any] = response.json()
        return result

    def clear_faults(self) -> None:
        """``DELETE /__sim/faults``: the simulator answers normally again."""
        with local_client() as client:
            response = client.delete(f"{self.sim_url}/__sim/faults")
        assert response.status_code in (200, 204), response.text

    def check_ids(self) -> list[str]:
        """The configured check ids (``marketplace/account/check``), from ``GET /probe``."""
        with local_client() as client:
            response = client.get(f"{self.url}/probe")
        assert response.status_code == 400, response.text
        lines = response.text.splitlines()
        return [line.strip() for line in lines[1:] if line.strip()]


#: ``marketplace-exporter`` whose ``demo`` reads the config file given as the first argument instead of
#: the bundled one: the real CLI, simulator, ERP stand-in and logging, on a module's edited demo config
_DEMO_WITH_CONFIG = ("import sys\n"
                     "from marketplace_exporter import cli\n"
                     "config = sys.argv.pop(1)\n"
                     "cli.demo_config_path = lambda: config\n"
                     "raise SystemExit(cli.main(sys.argv[1:]))\n")


def _start_demo(workdir: Path, log_level: str,
                edit: Callable[[str], str] | None = None) -> tuple[subprocess.Popen[bytes], DemoExporter]:
    """Start the demo on fresh ports and wait for ``/-/ready``; retry if a port got taken. ``edit``:
    the demo runs on the bundled demo config changed by it (e.g. shorter intervals)."""
    command = [sys.executable, "-m", "marketplace_exporter"]
    if edit is not None:
        from marketplace_exporter.cli import demo_config_path

        edited = workdir / "demo.yml"
        edited.write_text(edit(Path(demo_config_path()).read_text(encoding="utf-8")), encoding="utf-8")
        command = [sys.executable, "-c", _DEMO_WITH_CONFIG, str(edited)]
    last_error = ""
    for attempt in range(3):
        port = free_port()
        sim_port = free_port()
        while sim_port == port:
            sim_port = free_port()
        stdout_path = workdir / f"exporter-{attempt}.stdout.log"
        stderr_path = workdir / f"exporter-{attempt}.stderr.log"
        stdout = stdout_path.open("wb")
        stderr = stderr_path.open("wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [*command, f"--log.level={log_level}", "demo",
             f"--web.listen-address=127.0.0.1:{port}", f"--simulator.listen-address=127.0.0.1:{sim_port}"],
            stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, cwd=workdir, env=env)
        exporter = DemoExporter(
            url=f"http://127.0.0.1:{port}", sim_url=f"http://127.0.0.1:{sim_port}", pid=proc.pid,
            stdout_path=stdout_path, stderr_path=stderr_path, _files=[stdout, stderr])
        if _wait_ready(proc, exporter.url):
            return proc, exporter
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stdout.close()
        stderr.close()
        last_error = exporter.log_text()[-4000:]
        if "address already in use" not in last_error.lower():
            break
    pytest.fail(f"the demo exporter did not become ready within {READY_TIMEOUT_S:g}s; "
                f"its stderr ends with:\n{last_error}", pytrace=False)


def _wait_ready(proc: subprocess.Popen[bytes], url: str) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_S
    with local_client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            try:
                if client.get(f"{url}/-/ready").status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    return False


def stop_process(proc: subprocess.Popen[bytes], what: str, timeout: float = STOP_TIMEOUT_S) -> int:
    """SIGTERM ``proc`` by its PID and wait; a process that needs SIGKILL fails the test."""
    if proc.poll() is not None:
        pytest.fail(f"{what} (pid {proc.pid}) died during the test with exit code {proc.returncode}",
                    pytrace=False)
    os.kill(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"{what} (pid {proc.pid}) did not exit within {timeout:g}s of SIGTERM", pytrace=False)


@pytest.fixture(scope="module")
def demo_exporter(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoExporter]:
    """The real ``marketplace-exporter demo`` (simulator included) on free 127.0.0.1 ports.

    Module scope: one process per test module, so faults one module injects can never leak into
    another, while the tests of a module share the probes' warm-up. A module may set
    ``EXPORTER_LOG_LEVEL = "debug"`` to run it with more logging, and ``DEMO_CONFIG_EDIT`` (text ->
    text) to run it on an edited demo config (shorter intervals: faster tests). Teardown asserts a
    clean shutdown: exit code 0 within 10 s of SIGTERM.
    """
    log_level = getattr(request.module, "EXPORTER_LOG_LEVEL", "info")
    workdir = tmp_path_factory.mktemp("demo-exporter")
    proc, exporter = _start_demo(workdir, log_level, getattr(request.module, "DEMO_CONFIG_EDIT", None))
    try:
        yield exporter
    finally:
        try:
            code = stop_process(proc, "the demo exporter")
        finally:
            for handle in exporter._files:
                handle.close()
        assert code == 0, (f"the demo exporter exited with {code} on SIGTERM; stderr ends with:\n"
                           f"{exporter.log_text()[-4000:]}")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """One throwaway PostgreSQL 15 cluster for the whole session (tests/pg_cluster.py); each test
    takes a fresh database from it with ``postgres.create_database()``."""
    from pg_cluster import PostgresCluster

    cluster = PostgresCluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
