"""The processes of bench/scale.py and what /proc says about them: the exporter with a
garbage-collector log (a child: ``scale.py _exporter GC_LOG ARGV...``), the pinger that GETs
``/-/healthy`` every 10 ms from its own process (``scale.py _pinger URL OUT``: the bench's own work
must not look like a stall), CPU seconds and memory of a PID, a free port, readiness, stop by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")


def exporter_cmd() -> list[str]:
    return [sys.executable, "-m", "marketplace_exporter"]


#: collections at least this long are written to the exporter's GC log
GC_LOG_MIN_SECONDS = 0.002
#: the first full collection at least this long writes a census of what it walked
GC_CENSUS_MIN_SECONDS = 0.02


def exporter_main(gc_log: str, argv: list[str]) -> int:
    """``marketplace-exporter`` with a garbage-collector log: every collection of at least
    :data:`GC_LOG_MIN_SECONDS` as ``wall-clock generation seconds cpu-seconds``, so a stall the
    pinger sees can be told apart from one the collector caused (and a collection that was long
    because the process waited for a core from one that had much to walk)."""
    import gc
    from collections import Counter

    from marketplace_exporter.cli import main as exporter

    log = open(gc_log, "w", buffering=1)  # noqa: SIM115 (open for the process's life)
    census = Path(gc_log).with_suffix(".census")
    censused: list[bool] = []
    started = [0.0, 0.0]

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[:] = time.perf_counter(), time.thread_time()
            return
        seconds = time.perf_counter() - started[0]
        if seconds >= GC_LOG_MIN_SECONDS:
            cpu = time.thread_time() - started[1]
            log.write(f"{time.time():.3f} {info['generation']} {seconds:.4f} {cpu:.4f}\n")
        # after the engine's gc.freeze(): what the probing exporter keeps, not the start-up's imports
        if info["generation"] == 2 and seconds >= GC_CENSUS_MIN_SECONDS and not censused and gc.get_freeze_count():
            # what a long full collection walked: the oldest generation's objects by type, once
            censused.append(True)
            kinds = Counter(type(o).__name__ for o in gc.get_objects(2))
            census.write_text("".join(f"{count} {kind}\n" for kind, count in kinds.most_common(25)))

    gc.callbacks.append(timed)
    return int(exporter(argv) or 0)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        fields = handle.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    values = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(("VmRSS", "VmHWM")):
                values[line.split(":")[0]] = int(line.split()[1]) / 1024
    return values["VmRSS"], values["VmHWM"]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (127.0.0.1)
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} not ready within {timeout:g}s")


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def pinger_main(url: str, out: str, every: float = 0.010) -> int:
    """GET ``url`` (``/-/healthy`` by default) on one kept-alive connection every ``every``
    seconds until SIGTERM, writing ``start seconds`` per request (blocking http.client: nothing
    else runs in this process, so a slow answer is the server's)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    path = parts.path or "/-/healthy"
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    conn = http.client.HTTPConnection(host, parts.port, timeout=30)
    with open(out, "w") as handle:
        while running[0]:
            start = time.time()
            t0 = time.perf_counter()
            try:
                conn.request("GET", path)
                conn.getresponse().read()
            except OSError:
                conn = http.client.HTTPConnection(host, parts.port, timeout=30)
                continue
            handle.write(f"{start:.4f} {time.perf_counter() - t0:.5f}\n")
            time.sleep(max(0.0, every - (time.time() - start)))
    return 0
