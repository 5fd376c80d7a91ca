"""Processes and readings shared by the probe_cost scenarios: CPU from /proc, the children the bench
starts (pinned, stopped by PID), the measured ``Window`` and the simulator every prober targets.

Shared by ``probe_cost.py`` (the CLI), ``probe_cost_blackbox.py`` and ``probe_cost_worker.py``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
ROUTE = "/http/health"

# --- /proc and small helpers ------------------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """utime+stime of a whole process (all threads), in seconds, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        stat = handle.read()
    fields = stat[stat.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (127.0.0.1 only)
        return response.status, response.read()


def wait_until(what: str, ok: Callable[[], bool], proc: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with status {proc.returncode} while starting")
        try:
            if ok():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise BenchError(f"{what} not ready after {timeout:g}s")


#: niceness for every process the bench starts (``--nice``); negative needs root
NICE = 0


def pinned(core: int | None) -> Callable[[], None] | None:
    """preexec_fn: pin the child to ``core`` and apply ``--nice``."""
    if core is None and NICE == 0:
        return None

    def setup() -> None:
        if core is not None:
            os.sched_setaffinity(0, {core})
        if NICE:
            os.setpriority(os.PRIO_PROCESS, 0, NICE)

    return setup


class BenchError(Exception):
    pass


class Children:
    """Every process this bench starts, stopped by PID (never by name)."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[Any]]] = []

    def start(self, name: str, argv: Sequence[str], core: int | None, **kwargs: Any) -> subprocess.Popen[Any]:
        proc = subprocess.Popen(list(argv), preexec_fn=pinned(core), **kwargs)  # noqa: PLW1509
        self.procs.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen[Any], timeout: float = 10.0) -> int:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = [(n, p) for n, p in self.procs if p is not proc]
        return proc.returncode

    def stop_all(self) -> None:
        for _, proc in reversed(list(self.procs)):
            self.stop(proc)


# --- measurement records ----------------------------------------------------------------------


@dataclass
class Window:
    probes: int
    seconds: float
    cpu: float  # prober CPU seconds
    target_cpu: float
    target_requests: int
    failures: int
    failure_detail: str = ""
    #: makes the run invalid (exit 1)
    note: str = ""
    #: printed, does not invalidate the run
    warning: str = ""

    @property
    def rate(self) -> float:
        return self.probes / self.seconds if self.seconds > 0 else 0.0

    @property
    def us_per_probe(self) -> float:
        return self.cpu / self.probes * 1e6 if self.probes else float("inf")

    @property
    def busy(self) -> float:
        """Share of the prober's core in use: near 1.0 = the prober is the bottleneck."""
        return self.cpu / self.seconds if self.seconds > 0 else 0.0

    @property
    def target_busy(self) -> float:
        return self.target_cpu / self.seconds if self.seconds > 0 else 0.0

    @property
    def target_us(self) -> float:
        return self.target_cpu / self.target_requests * 1e6 if self.target_requests else float("inf")


# --- the target: the project's simulator ------------------------------------------------------


class Target:
    def __init__(self, children: Children, core: int | None) -> None:
        self.core = core
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = self.base + ROUTE
        self.proc = children.start(
            "simulator",
            [sys.executable, "-m", "marketplace_exporter", "--log.level=warning", "simulate",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            core, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until("simulator", lambda: http_get(self.base + "/__sim/health")[0] == 200, self.proc)
        status, body = http_get(self.url)
        document = json.loads(body)
        if status != 200 or document.get("status") != "ok":
            raise BenchError(f"simulator {ROUTE} answered {status} {body[:200]!r}, expected 200 status=ok")
        self.body_bytes = len(body)

    def requests(self) -> int:
        return int(json.loads(http_get(self.base + "/__sim/requests")[1])["total"])

    def sample(self) -> tuple[float, int]:
        """(CPU seconds, requests served); CPU is read first so the counter GET is not in it."""
        cpu = proc_cpu(self.proc.pid)
        return cpu, self.requests()
