#!/usr/bin/env python3
"""Probe cost: this exporter's engine vs Debian's prometheus-blackbox-exporter, side by side.

One run starts the project's simulator (``marketplace-exporter simulate``) pinned to one core and
drives, against the same route ``GET /http/health``, in turn and pinned to the other core:

* blackbox  ``prometheus-blackbox-exporter`` with an http module (status 200, body must match
  ``"status": "ok"``), driven by ``wrk -c10`` on ``/probe?module=...&target=...``; CPU is the
  blackbox process's only (wrk runs on the target's core and is not counted);
* ours flat-out  a worker process running the exporter's own app (``create_app``, started without
  listening: the production session, Engine, scheduler loop -> ProbeRunner -> http adapter ->
  transport -> Store) over a generated config of many ``http_checks`` with
  ``concurrency: 10`` and far more offered probes than it can run, so it runs flat out at 10 in
  flight, like wrk -c10 does to blackbox;
* ours paced  200 checks at the default ``concurrency: 64``, offered (1,000 probes/s) well below
  saturation: the scheduler's cost with many checks sleeping and waking;
* reference  bare aiohttp loops (GET, read, json.loads) on the same probe session, 10 in flight,
  no engine: the HTTP-client floor any aiohttp prober pays (skip with ``--no-floor``).

CPU per probe = utime+stime of the prober process over a measured window / probes completed in
that window (start-up and warm-up excluded). The target's CPU per request is measured the same
way for every scenario (its /proc/PID/stat, its own request counter ``/__sim/requests``).
Medians of ``--rounds`` rounds; scenario order rotates between rounds.

Exit status: 0 when every probe succeeded and no process died, 1 otherwise (a bench with failing
probes is invalid), 2 when a prerequisite is missing. The ratio is reported, never asserted.

    .venv/bin/python bench/probe_cost.py [--rounds 3] [--duration 3.5] [--warmup 1]
    .venv/bin/python bench/probe_cost.py --profile            # cProfile one flat-out window of ours
    .venv/bin/python bench/probe_cost.py --profile=py-spy     # sampling profile (py-spy on PATH)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"
GOAL = 0.30  # issue 11: <= 0.30x blackbox at the median of 5 rounds
CLK_TCK = os.sysconf("SC_CLK_TCK")
HERE = Path(__file__).resolve()
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


@dataclass
class Scenario:
    key: str
    label: str
    windows: list[Window] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return float(statistics.median(float(getattr(w, attr)) for w in self.windows))

    def span(self, attr: str) -> tuple[float, float]:
        values = [getattr(w, attr) for w in self.windows]
        return min(values), max(values)


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


# --- blackbox ---------------------------------------------------------------------------------

BLACKBOX_CONFIG = """\
modules:
  bench_http:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      valid_status_codes: [200]
      method: GET
      fail_if_body_not_matches_regexp:
        - '"status": *"ok"'
"""

# one wrk thread: counts probe results by reading blackbox's answer
WRK_SCRIPT = """\
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; failed = 0; non200 = 0 end
function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1
  elseif string.find(body, "\\nprobe_success 1", 1, true) then ok = ok + 1
  else failed = failed + 1 end
end
function done(summary, latency, requests)
  local ok, failed, non200 = 0, 0, 0
  for _, t in ipairs(threads) do
    ok = ok + t:get("ok"); failed = failed + t:get("failed"); non200 = non200 + t:get("non200")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "ok": %d, "failed": %d, "non200": %d, "errors": %d}\\n',
    summary.requests, summary.duration, ok, failed, non200,
    e.connect + e.read + e.write + e.timeout))
end
"""


class Blackbox:
    def __init__(self, children: Children, workdir: Path, prober_core: int | None,
                 load_core: int | None, target: Target, connections: int) -> None:
        self.children = children
        self.target = target
        self.load_core = load_core
        self.connections = connections
        (workdir / "blackbox.yml").write_text(BLACKBOX_CONFIG)
        self.script = workdir / "probe.lua"
        self.script.write_text(WRK_SCRIPT)
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.probe_url = f"{self.base}/probe?module=bench_http&target={target.url}"
        self.proc = children.start(
            "blackbox",
            [BLACKBOX, f"--config.file={workdir / 'blackbox.yml'}", f"--web.listen-address=127.0.0.1:{port}",
             "--log.level=warn"],
            prober_core, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until("blackbox", lambda: http_get(self.base + "/-/healthy")[0] == 200, self.proc)
        status, body = http_get(self.probe_url, timeout=6)
        if status != 200 or b"\nprobe_success 1" not in body:
            raise BenchError(f"blackbox sanity probe failed ({status}):\n{body.decode(errors='replace')[:2000]}")

    def run_wrk(self, seconds: float) -> dict[str, int]:
        argv = ["wrk", "-t1", f"-c{self.connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
                "-s", str(self.script), self.probe_url]
        proc = self.children.start("wrk", argv, self.load_core, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        out, err = proc.communicate(timeout=seconds + 30)
        self.children.procs = [(n, p) for n, p in self.children.procs if p is not proc]
        if proc.returncode != 0:
            raise BenchError(f"wrk failed ({proc.returncode}): {err.strip()}")
        for line in out.splitlines():
            if line.startswith("WRKJSON "):
                return dict(json.loads(line[len("WRKJSON "):]))
        raise BenchError(f"wrk printed no result:\n{out}\n{err}")

    def measure(self, seconds: float, warmup: float) -> Window:
        if warmup > 0:
            self.run_wrk(warmup)  # connections to blackbox, Go's pools and GC settle
        cpu0, (tcpu0, treq0) = proc_cpu(self.proc.pid), self.target.sample()
        result = self.run_wrk(seconds)
        cpu1, (tcpu1, treq1) = proc_cpu(self.proc.pid), self.target.sample()
        if self.proc.poll() is not None:
            raise BenchError(f"blackbox died with status {self.proc.returncode}")
        answered = result["ok"] + result["failed"] + result["non200"]
        failures = result["failed"] + result["non200"] + result["errors"]
        detail = (f"{result['failed']} probe_success 0, {result['non200']} non-200, "
                  f"{result['errors']} socket errors" if failures else "")
        window = Window(probes=answered, seconds=result["duration_us"] / 1e6, cpu=cpu1 - cpu0,
                        target_cpu=tcpu1 - tcpu0, target_requests=treq1 - treq0,
                        failures=failures, failure_detail=detail)
        if window.busy < 0.8:
            window.warning = (f"blackbox only {window.busy:.0%} busy (other processes on the cores?): "
                              "µs/probe less comparable")
        return window


def blackbox_version() -> str:
    proc = subprocess.run([BLACKBOX, "--version"], capture_output=True, text=True, check=False)
    text = (proc.stdout or proc.stderr).strip().splitlines()
    return text[0] if text else "unknown"


# --- ours: a worker process running the real Engine -------------------------------------------


def ours_config(url: str, checks: int, interval_ms: int, concurrency: int) -> str:
    """``timeout == interval`` (the loader allows timeout <= interval). The per-host limit equals the
    global one, so with a single target host the only queue is the engine's global semaphore,
    which is outside the probe's deadline: saturating the engine makes probes late, not failed."""
    lines = [
        "# generated by bench/probe_cost.py",
        "defaults:",
        f"  interval: {interval_ms}ms",
        f"  timeout: {interval_ms}ms",
        "  jitter: 0",
        f"  concurrency: {concurrency}",
        f"  concurrency_per_host: {min(concurrency, 256)}",
        "http_checks:",
    ]
    for index in range(checks):
        lines += [
            f"  - name: bench-{index:05d}",
            f"    url: {url}",
            "    expect_status: [200]",
            "    expect_json:",
            "      - {path: $.status, equals: ok}",
        ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class OursSpec:
    key: str
    label: str
    checks: int
    interval_ms: int
    concurrency: int

    @property
    def offered(self) -> float:
        return self.checks / (self.interval_ms / 1000)


class Ours:
    """Python workers (this file's ``_worker`` / ``_floor`` modes), pinned to the prober core."""

    def __init__(self, children: Children, workdir: Path, prober_core: int | None, target: Target) -> None:
        self.children = children
        self.workdir = workdir
        self.core = prober_core
        self.target = target

    def measure(self, spec: OursSpec, seconds: float, warmup: float, profile: Path | None = None) -> Window:
        config = self.workdir / f"{spec.key}.yml"
        if not config.exists():
            config.write_text(ours_config(self.target.url, spec.checks, spec.interval_ms, spec.concurrency))
        argv = ["_worker", str(config), f"--warmup={warmup}", f"--window={seconds}"]
        if profile is not None:
            argv.append(f"--profile={profile}")
        window = self._run(spec.key, argv, seconds + warmup)
        if spec.key == "flat" and window.rate > 0.8 * spec.offered:
            window.note = (f"NOT saturated ({window.rate:,.0f}/s of {spec.offered:,.0f}/s offered): "
                           "raise --flat-checks")
        elif spec.key == "flat" and window.busy < 0.8:
            bound = "target-bound?" if window.target_busy > 0.8 else "other processes on the cores?"
            window.warning = (f"flat-out prober only {window.busy:.0%} busy ({bound}): "
                              "µs/probe less comparable")
        return window

    def floor(self, concurrency: int, seconds: float, warmup: float) -> Window:
        argv = ["_floor", self.target.url, f"--concurrency={concurrency}", f"--warmup={warmup}",
                f"--window={seconds}"]
        return self._run("floor", argv, seconds + warmup)

    def _run(self, key: str, argv: list[str], seconds: float) -> Window:
        proc = self.children.start(f"worker {key}", [sys.executable, str(HERE), *argv], self.core,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        marks: dict[str, dict[str, Any]] = {}
        target_marks: dict[str, tuple[float, int]] = {}
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                if not line.startswith("MARK "):
                    continue
                mark = json.loads(line[5:])
                target_marks[mark["event"]] = self.target.sample()
                marks[mark["event"]] = mark
                if mark["event"] == "end":
                    break
            code = proc.wait(timeout=seconds + 120)
        finally:
            err = proc.stderr.read() if proc.stderr else ""
            self.children.stop(proc)
        if code != 0 or "end" not in marks:
            raise BenchError(f"worker {key} exited with status {code}:\n{err.strip()[-3000:]}")
        start, end = marks["start"], marks["end"]
        failures = end["failures_total"]
        last = end["last_failure"] or "none failing at the end (transient)"
        detail = f"by reason {end['failures_by_reason']}; last: {last}" if failures else ""
        return Window(
            probes=end["probes"] - start["probes"], seconds=end["t"] - start["t"],
            cpu=end["cpu"] - start["cpu"],
            target_cpu=target_marks["end"][0] - target_marks["start"][0],
            target_requests=target_marks["end"][1] - target_marks["start"][1],
            failures=failures, failure_detail=detail)


def floor_main(argv: Sequence[str]) -> int:
    """The HTTP-client floor: ``concurrency`` loops of GET + read + json.loads + check on the
    probe session (transport.new_session), no engine. What any aiohttp-based prober pays."""
    parser = argparse.ArgumentParser(prog="probe_cost.py _floor")
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--warmup", type=float, required=True)
    parser.add_argument("--window", type=float, required=True)
    args = parser.parse_args(argv)

    import asyncio
    import resource

    from marketplace_exporter.engine.transport import new_session

    counts = {"probes": 0, "failures": 0}
    last_failure = [""]

    def snapshot(event: str) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        mark = {"event": event, "t": time.perf_counter(), "cpu": usage.ru_utime + usage.ru_stime,
                "probes": counts["probes"], "failures_total": counts["failures"],
                "failures_by_reason": {}, "last_failure": last_failure[0]}
        sys.stdout.write("MARK " + json.dumps(mark) + "\n")
        sys.stdout.flush()

    async def loop(session: Any, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with session.get(args.url) as response:
                    body = await response.read()
                    ok = response.status == 200 and json.loads(body).get("status") == "ok"
            except Exception as exc:  # noqa: BLE001 (counted and shown)
                ok, last_failure[0] = False, repr(exc)
            counts["probes"] += 1
            counts["failures"] += not ok

    async def run() -> None:
        async with new_session(limit=max(args.concurrency, 16)) as session:
            stop = asyncio.Event()
            tasks = [asyncio.create_task(loop(session, stop)) for _ in range(args.concurrency)]
            await asyncio.sleep(args.warmup)
            snapshot("start")
            await asyncio.sleep(args.window)
            snapshot("end")
            stop.set()
            await asyncio.gather(*tasks)

    asyncio.run(run())
    return 0


def worker_main(argv: Sequence[str]) -> int:
    """Runs inside the pinned worker process: the exporter's own aiohttp app is built from the
    config and started without listening (``AppRunner.setup`` runs its cleanup_ctx, which creates
    the probe session and the Engine exactly as ``marketplace-exporter run`` does); the bench only
    reads the app's Store."""
    parser = argparse.ArgumentParser(prog="probe_cost.py _worker")
    parser.add_argument("config")
    parser.add_argument("--warmup", type=float, required=True)
    parser.add_argument("--window", type=float, required=True)
    parser.add_argument("--profile")
    args = parser.parse_args(argv)

    import asyncio
    import resource

    from aiohttp import web

    from marketplace_exporter.config import ConfigError
    from marketplace_exporter.server.app import CORE, ConfigSource, create_app

    source = ConfigSource(args.config)
    try:
        config = source.load()
    except ConfigError as exc:
        print("\n".join(exc.errors), file=sys.stderr)
        return 1

    def snapshot(event: str, app: web.Application) -> None:
        # one synchronous callback: CPU and counters are read with no probe step in between
        usage = resource.getrusage(resource.RUSAGE_SELF)
        probes = failures = 0
        by_reason: dict[str, int] = {}
        last_failure = ""
        for state in app[CORE].store.statuses():
            probes += state.probes
            for reason, count in state.failures.items():
                if count:
                    failures += count
                    by_reason[str(reason.value)] = by_reason.get(str(reason.value), 0) + count
            if state.last is not None and not state.last.outcome.success:
                last_failure = f"{state.spec.id}: {state.last.outcome.reason} {state.last.outcome.message}"
            for skip, count in state.skipped.items():
                if count:
                    failures += count
                    by_reason[f"skipped:{skip.value}"] = by_reason.get(f"skipped:{skip.value}", 0) + count
        mark = {"event": event, "t": time.perf_counter(), "cpu": usage.ru_utime + usage.ru_stime,
                "probes": probes, "failures_total": failures, "failures_by_reason": by_reason,
                "last_failure": last_failure}
        sys.stdout.write("MARK " + json.dumps(mark) + "\n")
        sys.stdout.flush()

    async def run() -> None:
        app = create_app(source, config)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()  # starts the engine; no site, so nothing listens
        try:
            await asyncio.sleep(args.warmup)
            profiler = None
            if args.profile:
                import cProfile

                profiler = cProfile.Profile()
            snapshot("start", app)
            if profiler is not None:
                profiler.enable()
            await asyncio.sleep(args.window)
            if profiler is not None:
                profiler.disable()
            snapshot("end", app)
        finally:
            await runner.cleanup()
        if profiler is not None:
            profiler.dump_stats(args.profile)

    asyncio.run(run())
    return 0


# --- the run ----------------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import aiohttp

        aiohttp_version = aiohttp.__version__
    except ImportError:
        aiohttp_version = "?"
    return (f"{os.cpu_count()} CPU {model}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, aiohttp {aiohttp_version}")


def revision() -> str:
    """The exporter code measured: commit, and whether the package has uncommitted changes."""
    repo = HERE.parent.parent
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "exporter"],
                               capture_output=True, text=True, check=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown revision"
    return f"{head}{' + uncommitted changes in exporter/' if dirty else ''}"


def fmt_row(cells: Sequence[str], widths: Sequence[int]) -> str:
    out = [cells[0].ljust(widths[0])]
    out += [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
    return "  ".join(out).rstrip()


def report(scenarios: list[Scenario], blackbox_key: str, headline: str) -> float:
    bb = next(s for s in scenarios if s.key == blackbox_key)
    bb_us = bb.median("us_per_probe")
    header = ["scenario", "probes/s", "CPU µs/probe (min-max)", "× blackbox", "prober core",
              "target CPU µs/req", "failed"]
    rows = []
    for s in scenarios:
        lo, hi = s.span("us_per_probe")
        rows.append([
            s.label,
            f"{s.median('rate'):,.0f}",
            f"{s.median('us_per_probe'):,.0f} ({lo:,.0f}-{hi:,.0f})",
            f"{s.median('us_per_probe') / bb_us:.2f}",
            f"{s.median('busy'):.0%}",
            f"{s.median('target_us'):,.0f}",
            str(sum(w.failures for w in s.windows)),
        ])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(fmt_row(header, widths))
    print(fmt_row(["-" * w for w in widths], widths))
    for row in rows:
        print(fmt_row(row, widths))
    ours = next(s for s in scenarios if s.key == headline)
    ratio = ours.median("us_per_probe") / bb_us
    per_round = [o.us_per_probe / b.us_per_probe for o, b in zip(ours.windows, bb.windows, strict=False)]
    print(f"(medians of {len(bb.windows)} rounds; {ours.key} / blackbox per round: "
          f"{', '.join(f'{r:.2f}' for r in per_round)})")
    print(f"ratio ours/blackbox = {ratio:.2f} (goal <= {GOAL})")
    return ratio


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_worker"]:
        return worker_main(argv[1:])
    if argv[:1] == ["_floor"]:
        return floor_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the table shows medians")
    parser.add_argument("--duration", type=float, default=3.5, help="measured seconds per scenario and round")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each window")
    parser.add_argument("--connections", type=int, default=10, help="wrk connections to blackbox")
    parser.add_argument("--flat-checks", type=int, default=1000, help="checks in the flat-out scenario")
    parser.add_argument("--flat-interval-ms", type=int, default=100)
    parser.add_argument("--flat-concurrency", type=int, default=10,
                        help="probes in flight (defaults.concurrency), like wrk -c10 to blackbox")
    parser.add_argument("--paced-checks", type=int, default=200, help="checks in the paced scenario")
    parser.add_argument("--paced-interval-ms", type=int, default=200)
    parser.add_argument("--paced-concurrency", type=int, default=64, help="the config default")
    parser.add_argument("--nice", type=int, default=0,
                        help="niceness of every process the bench starts, e.g. -10 on a machine shared with "
                             "other work (negative needs root); the same for target and both probers")
    parser.add_argument("--no-floor", action="store_true",
                        help="skip the aiohttp-floor reference (plain ClientSession loops, no engine)")
    parser.add_argument("--profile", nargs="?", const="cprofile", choices=["cprofile", "py-spy"],
                        help="no comparison: profile one flat-out window of ours and print the hot spots "
                             "(py-spy: sampling, low overhead, needs `py-spy` on PATH)")
    parser.add_argument("--profile-top", type=int, default=30)
    args = parser.parse_args(argv)

    missing = [tool for tool in (BLACKBOX, "wrk") if shutil.which(tool) is None]
    if missing and not args.profile:
        print(f"probe_cost: missing {', '.join(missing)}; install with\n  apt-get install -y "
              "--no-install-recommends prometheus-blackbox-exporter wrk   (or `make deps`)", file=sys.stderr)
        return 2
    global NICE
    NICE = args.nice
    if NICE < 0 and os.geteuid() != 0:
        print("probe_cost: --nice below 0 needs root", file=sys.stderr)
        return 2
    cores = sorted(os.sched_getaffinity(0))
    target_core: int | None
    prober_core: int | None
    if len(cores) >= 2:
        target_core, prober_core = cores[0], cores[1]
        os.sched_setaffinity(0, {target_core})  # this driver only waits and reads /proc
    else:
        target_core = prober_core = None
        print("probe_cost: WARNING: fewer than 2 cores available, running unpinned", file=sys.stderr)

    flat = OursSpec("flat", f"ours flat-out: {args.flat_checks} checks @{args.flat_interval_ms}ms, "
                    f"concurrency {args.flat_concurrency}",
                    args.flat_checks, args.flat_interval_ms, args.flat_concurrency)
    paced = OursSpec("paced", f"ours paced: {args.paced_checks} checks @{args.paced_interval_ms}ms, "
                     f"concurrency {args.paced_concurrency}",
                     args.paced_checks, args.paced_interval_ms, args.paced_concurrency)

    children = Children()
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    problems: list[str] = []
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="probe-cost-") as tmp:
            workdir = Path(tmp)
            target = Target(children, target_core)
            ours = Ours(children, workdir, prober_core, target)
            print(f"probe_cost {time.strftime('%Y-%m-%d %H:%M:%S %Z')} on {machine()}")
            print(f"exporter: {revision()}")
            print(f"target: marketplace-exporter simulate, GET {ROUTE} ({target.body_bytes} B JSON), "
                  f"core {target_core}; probers on core {prober_core}")
            if args.profile:
                return profile(ours, flat, args)
            blackbox = Blackbox(children, workdir, prober_core, target_core, target, args.connections)
            print(f"blackbox: {blackbox_version()}, wrk -t1 -c{args.connections} on core {target_core}")
            print(f"rounds: {args.rounds} x ({args.duration:g}s measured + {args.warmup:g}s warm-up) per scenario"
                  + (f", every process at nice {NICE}" if NICE else ""), flush=True)
            bb = Scenario("blackbox", f"blackbox /probe, wrk c{args.connections} (new conn per probe)")
            scenarios = [bb, Scenario(flat.key, flat.label), Scenario(paced.key, paced.label)]
            runs: dict[str, Callable[[], Window]] = {
                "blackbox": lambda: blackbox.measure(args.duration, min(args.warmup, 1.0)),
                "flat": lambda: ours.measure(flat, args.duration, args.warmup),
                "paced": lambda: ours.measure(paced, args.duration, args.warmup),
            }
            if not args.no_floor:
                scenarios.append(Scenario("floor", f"reference: bare aiohttp loops, c{args.flat_concurrency}, "
                                          "no engine"))
                runs["floor"] = lambda: ours.floor(args.flat_concurrency, args.duration, min(args.warmup, 1.0))
            order = [s.key for s in scenarios]
            for round_no in range(args.rounds):
                for key in order[round_no % len(order):] + order[:round_no % len(order)]:
                    window = runs[key]()
                    scenario = next(s for s in scenarios if s.key == key)
                    scenario.windows.append(window)
                    print(f"  round {round_no + 1} {key:8s} {window.rate:7,.0f} probes/s "
                          f"{window.us_per_probe:6,.0f} µs/probe (core {window.busy:4.0%})  "
                          f"target {window.target_us:4,.0f} µs/req (core {window.target_busy:4.0%}, "
                          f"{window.target_requests:,} req)  failed {window.failures}"
                          + (f"  [{window.failure_detail}]" if window.failure_detail else "")
                          + (f"  {window.note}" if window.note else "")
                          + (f"  WARNING: {window.warning}" if window.warning else ""), flush=True)
                    if window.failures:
                        problems.append(f"{key} round {round_no + 1}: {window.failures} failed probes "
                                        f"({window.failure_detail})")
                    if window.note:
                        problems.append(f"{key} round {round_no + 1}: {window.note}")
                for name, proc in children.procs:
                    if proc.poll() is not None:
                        raise BenchError(f"{name} died with status {proc.returncode}")
            print()
            report(scenarios, "blackbox", "flat")
            print(f"(run took {time.monotonic() - started:.0f}s)")
    except BenchError as exc:
        print(f"probe_cost: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        children.stop_all()
        signal.signal(signal.SIGTERM, previous)
    if problems:
        print("probe_cost: INVALID run:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    return 0


def profile(ours: Ours, flat: OursSpec, args: argparse.Namespace) -> int:
    if args.profile == "py-spy":
        return profile_py_spy(ours, flat, args)
    import pstats

    out = Path(tempfile.gettempdir()) / f"probe-cost-{os.getpid()}.prof"
    window = ours.measure(flat, args.duration, args.warmup, profile=out)
    print(f"profiled window (cProfile inflates CPU and over-weights many small calls): {window.rate:,.0f} "
          f"probes/s, {window.us_per_probe:,.1f} µs/probe, failed {window.failures}\n")
    stats = pstats.Stats(str(out))
    stats.strip_dirs()
    for key in ("tottime", "cumulative"):
        print(f"--- top {args.profile_top} by {key} ---")
        stats.sort_stats(key).print_stats(args.profile_top)
    print(f"raw profile kept: {out}  (python -m pstats {out})")
    return 1 if window.failures else 0


#: where self time goes, by the file of the innermost frame
_BUCKETS = (("marketplace_exporter", "engine code (marketplace_exporter)"),
            ("aiohttp", "aiohttp/yarl/multidict"), ("yarl", "aiohttp/yarl/multidict"),
            ("multidict", "aiohttp/yarl/multidict"), ("/json/", "json"), ("urllib", "urllib.parse"),
            ("asyncio", "asyncio (loop, timers, locks, timeouts)"),
            ("selectors", "asyncio (loop, timers, locks, timeouts)"), ("<string>", "dataclass __init__"))


def profile_py_spy(ours: Ours, flat: OursSpec, args: argparse.Namespace) -> int:
    import collections
    import threading

    spy = shutil.which("py-spy")
    if spy is None:
        print("probe_cost: py-spy not on PATH (pip install py-spy, in any venv)", file=sys.stderr)
        return 2
    raw = Path(tempfile.gettempdir()) / f"probe-cost-{os.getpid()}.pyspy.txt"
    seconds = max(args.duration, 4.0)
    result: dict[str, Window] = {}
    # the window outlasts the sampling: config load and warm-up vary, sampling starts after both
    runner = threading.Thread(target=lambda: result.update(w=ours.measure(flat, seconds + 6, args.warmup)))
    runner.start()
    deadline = time.monotonic() + 120
    pid = None
    while pid is None and runner.is_alive() and time.monotonic() < deadline:
        pid = next((p.pid for n, p in ours.children.procs if n == "worker flat"), None)
        time.sleep(0.05)
    if pid is None:
        runner.join()
        print("probe_cost: worker did not start", file=sys.stderr)
        return 1
    time.sleep(args.warmup + 4.0)  # imports + config load + warm-up: sample the steady state only
    subprocess.run([spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "200", "--nonblocking",
                    "-f", "raw", "-o", str(raw)], preexec_fn=pinned(ours.target.core),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    runner.join()
    window = result.get("w")
    if window is None or not raw.exists():
        print("probe_cost: profiling failed", file=sys.stderr)
        return 1
    buckets: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n, leaf = int(count), stack.split(";")[-1]
        total += n
        buckets[next((name for key, name in _BUCKETS if key in leaf), "other")] += n
        func, _, where = leaf.partition(" (")
        leaves[f"{func} ({where.rsplit('/', 1)[-1]}" if func.strip() else "(native or unnamed frame)"] += n
    us = window.us_per_probe
    print(f"window: {window.rate:,.0f} probes/s, {us:,.0f} µs/probe, prober core {window.busy:.0%}, "
          f"failed {window.failures}; {total} samples\n")
    print("self time by where it is spent (µs/probe = share × the window's µs/probe):")
    for name, n in buckets.most_common():
        print(f"  {n / total:6.1%}  {n / total * us:6.0f} µs  {name}")
    print(f"\ntop {args.profile_top} lines by self time:")
    for name, n in leaves.most_common(args.profile_top):
        print(f"  {n / total:6.1%}  {n / total * us:6.1f} µs  {name}")
    print(f"\nraw samples kept: {raw}")
    return 1 if window.failures else 0


if __name__ == "__main__":
    sys.exit(main())
