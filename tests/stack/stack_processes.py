"""The processes of the alerting stack (tests/stack/alerting_stack.py): one child process with its
log file, started and stopped by PID, and the wait until it answers ready.

Nothing here imports pytest (``bench/alert_latency.py`` starts the same stack); ``conftest`` is
importable once alerting_stack.py (or pytest) has put ``tests/`` on ``sys.path``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from conftest import local_client

#: a component is ready ~0.1–1 s after start; 20 s is for a loaded CI machine
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


@dataclass
class Process:
    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.popen = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, env=self.env, cwd=self.log_path.parent)

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]

    def kill(self) -> None:
        """SIGKILL by PID: no shutdown handler runs (a crash, the OOM killer)."""
        assert self.popen is not None
        os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> int | None:
        """SIGTERM by PID and wait; SIGKILL after the timeout. None if it was already gone."""
        if self.popen is None or self.popen.poll() is not None:
            return None
        os.kill(self.popen.pid, signal.SIGTERM)
        try:
            return self.popen.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait()
            raise AssertionError(f"{self.name} (pid {self.popen.pid}) ignored SIGTERM for {STOP_TIMEOUT_S:g}s") \
                from None


def wait_ready(process: Process, url: str, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    with local_client(timeout=2.0) as client:
        while True:
            if not process.alive():
                raise AssertionError(f"{process.name} exited while starting:\n{process.log_tail()}")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{process.name} not ready at {url} within {timeout:g}s:\n{process.log_tail()}")
            time.sleep(0.1)
