"""The real command line as an operator uses it: `simulate` and `run` as subprocesses, SIGHUP
reloads (a bad file is rejected and the old config keeps probing), SIGTERM stops cleanly."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from marketplace_exporter.cli import DEMO_SIMULATOR, demo_config_path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(*args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as stderr:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "marketplace_exporter", *args],
                                stdout=subprocess.DEVNULL, stderr=stderr)


def _wait_http(url: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready within {seconds}s")


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=10)


def _metric(base: str, name: str) -> str:
    lines = [line for line in httpx.get(f"{base}/metrics").text.splitlines() if line.startswith(name + " ")]
    assert lines, f"{name} missing"
    return lines[0].split()[-1]


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    process = _start("simulate", f"--web.listen-address=127.0.0.1:{port}", log=tmp_path / "sim.log")
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/__sim/health")
        yield url
    finally:
        assert _stop(process) == 0


def test_sighup_reload_and_sigterm_shutdown(simulator: str, tmp_path: Path) -> None:
    good = Path(demo_config_path()).read_text().replace(DEMO_SIMULATOR, simulator)
    config = tmp_path / "config.yml"
    config.write_text(good)
    port = _free_port()
    log = tmp_path / "exporter.log"
    process = _start("run", f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
                     f"--storage.path={tmp_path / 'data'}", log=log)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{base}/-/ready")
        assert _metric(base, "marketplace_exporter_config_last_reload_successful") == "1.0"
        config.write_text(good.replace("interval: 5s", "interval: often"))
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while _metric(base, "marketplace_exporter_config_last_reload_successful") != "0.0":
            assert time.monotonic() < deadline, "bad reload not reported"
            time.sleep(0.1)
        assert "config reload failed, keeping the previous config" in log.read_text()
        assert "defaults.interval: expected a duration" in log.read_text()
        assert 'check="get_shop_info"' in httpx.get(f"{base}/metrics").text  # still probing
        config.write_text(good)
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while _metric(base, "marketplace_exporter_config_last_reload_successful") != "1.0":
            assert time.monotonic() < deadline, "good reload not applied"
            time.sleep(0.1)
    finally:
        code = _stop(process)
    assert code == 0
    assert "Traceback" not in log.read_text()


def test_run_with_an_invalid_config_exits_1_before_listening(tmp_path: Path) -> None:
    config = tmp_path / "bad.yml"
    config.write_text("accounts: [{marketplace: amazon_sp}]\n")
    result = subprocess.run([sys.executable, "-m", "marketplace_exporter", "run", f"--config.file={config}",
                             f"--storage.path={tmp_path / 'data'}"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert f"{config}:1: accounts[0].alias: missing required key" in result.stderr
