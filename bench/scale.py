#!/usr/bin/env python3
"""Scale: one exporter process with 1k, 10k and 50k checks, scraped like Prometheus, in one run.

For each size it starts the project's simulator (once) and a real exporter (``marketplace-exporter
run``) with a generated config: generic http checks on ``/http/health``, ``N // 50`` "latency"
checks on ``/http/status/200`` that the simulator's ``latency`` fault delays by ``--latency``
seconds, and a marketplace mix (the demo config's 15 accounts of all eight marketplaces, copied
``max(1, N // 1000)`` times under new aliases). Interval ``--interval`` (60 s), jitter 0.5,
``concurrency`` and ``concurrency_per_host`` ``--concurrency`` (256: everything talks to one simulator
host, and at 50k checks 833 probes/s with 64 workers leave each probe under 77 ms, which a
simulator on a loaded machine does not keep).

After a warm-up (every check has run once) it scrapes every ``--every`` (15) seconds, alternating
plain text and gzip+OpenMetrics (Prometheus' own headers; with curl, a C client), and loads the status page and
``/api/v1/checks`` between scrapes, while a separate pinger process GETs ``/-/healthy`` every
10 ms. It prints, per size:

* scrape wall time (plain, gzip) and the exporter's CPU during scrapes (minus its probing
  baseline), beside prometheus_client's ``generate_latest`` (and ``gzip.compress``, what its
  handler does) over the same samples, parsed from the exporter's own output, in this process;
* the longest ``/-/healthy`` wait during scrapes and during page loads (event-loop stalls), and
  how busy the exporter was between scrapes ("busy": CPU seconds per second; near 100 % the
  exporter is saturated and lateness and latency figures measure the machine, not the design);
* RSS (and its peak), probe lateness p50/p99 (from the exporter's histogram between the first
  and last scrape, interpolated within buckets), and reported minus injected latency p50/p99 of
  the latency checks probed during the scrapes, beside the same figure from a bare client: a
  separate process timing the same route every 60 ms with nothing else to do (blocking
  http.client). The bare client's error is the simulator's and the machine's share (the
  simulator's own event loop, four processes on two cores); the difference is the exporter's.

Figures print; nothing is asserted. Exit 0 after a complete run, 2 when a prerequisite is missing.
Beside this script: scale_processes.py (the exporter with its GC log, the pinger, /proc readings)
and scale_readings.py (scrape series, histogram quantiles, longest waits, percentiles).

    .venv/bin/python bench/scale.py [--sizes 1000,10000,50000] [--interval 60] [--scrapes 4] [--pin-exporter]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from scale_processes import cpu_seconds, exporter_cmd, exporter_main, free_port, memory_mb, pinger_main, stop, wait_http
from scale_readings import gauge_lines, histogram_quantile, lateness, longest_wait, pct

HERE = Path(__file__).resolve()
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
                     "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
#: the route the ``latency`` fault delays (the latency checks and the bare client use it)
LATENCY_ROUTE = "/http/status/200"
#: how often the bare client times it: ~the 1,000 latency checks' rate at 50k (every 60 s)
BARE_CLIENT_EVERY = 0.06
PAGES = ("/", "/?state=failing", "/api/v1/checks?state=ok&page=40", "/?q=lat-00")


# --- the generated config ----------------------------------------------------------------------

def demo_accounts(sim: str) -> list[dict[str, Any]]:
    from marketplace_exporter.cli import DEMO_SIMULATOR, demo_config_path

    text = Path(demo_config_path()).read_text().replace(DEMO_SIMULATOR, sim)
    accounts: list[dict[str, Any]] = yaml.safe_load(text)["accounts"]
    return accounts


def config(size: int, sim: str, interval: float, concurrency: int) -> tuple[str, int, int]:
    """YAML text, number of latency checks, number of marketplace checks."""
    copies = max(1, size // 1000)
    accounts = []
    for copy in range(copies):
        for account in demo_accounts(sim):
            accounts.append({**account, "alias": f"{account['alias']}-{copy:03d}"})
    mix = sum(len(a["checks"]) for a in accounts)
    latency = max(1, size // 50)
    generic = size - mix - latency
    http_checks = [{"name": f"gen-{i:05d}", "url": f"{sim}/http/health", "expect_status": [200]}
                   for i in range(generic)]
    http_checks += [{"name": f"lat-{i:05d}", "url": f"{sim}{LATENCY_ROUTE}", "expect_status": [200]}
                    for i in range(latency)]
    doc = {"defaults": {"interval": f"{interval:g}s", "timeout": "10s", "jitter": 0.5, "concurrency": concurrency,
                        "concurrency_per_host": min(concurrency, 256)},
           "accounts": accounts, "http_checks": http_checks}
    return yaml.safe_dump(doc, sort_keys=False), latency, mix


@dataclass
class Result:
    size: int
    series: int = 0
    load_s: float = 0.0
    plain: list[float] = field(default_factory=list)
    gzipped: list[float] = field(default_factory=list)
    plain_mb: float = 0.0
    gzip_mb: float = 0.0
    scrape_cpu: list[float] = field(default_factory=list)
    reference_s: float = 0.0
    reference_cpu: float = 0.0
    reference_gzip_s: float = 0.0
    stall_scrape_ms: float = 0.0
    stall_page_ms: float = 0.0
    ping_p50_ms: float = 0.0
    pages: list[tuple[str, int, float]] = field(default_factory=list)
    rss: tuple[float, float] = (0.0, 0.0)
    late_p50_ms: float = 0.0
    late_p99_ms: float = 0.0
    latency_errors_ms: list[float] = field(default_factory=list)
    #: the same route timed by a bare client in its own process (the reference: the simulator's
    #: and the machine's share of the error)
    bare_errors_ms: list[float] = field(default_factory=list)
    failing: int = 0
    busy: float = 0.0
    sim_busy: float = 0.0
    rss_ready: float = 0.0
    failing_by: dict[str, int] = field(default_factory=dict)
    scrape_windows: list[tuple[float, float]] = field(default_factory=list)
    page_windows: list[tuple[float, float]] = field(default_factory=list)
    #: the longest garbage collection during the scrape phase, and how many full ones took >= 2 ms
    gc_max_ms: float = 0.0
    gc_max_cpu_ms: float = 0.0
    gc_full: int = 0
    #: the most common types in the oldest generation at the first full collection over 20 ms
    gc_census: str = ""


async def fetch(url: str, headers: dict[str, str], workdir: Path) -> tuple[bytes, float]:
    """GET with curl, a C client like Prometheus' Go one (a Python client reading 100 MB would time
    itself, not the exporter): (body as sent, curl's total time)."""
    out = workdir / "body"
    argv = ["curl", "-s", "-o", str(out), "-w", "%{time_total}"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    proc = await asyncio.create_subprocess_exec(*argv, url, stdout=asyncio.subprocess.PIPE)
    stdout, _ = await proc.communicate()
    return out.read_bytes(), float(stdout)


async def measure(url: str, pid: int, result: Result, args: argparse.Namespace, workdir: Path,
                  sim_pid: int) -> bytes:
    """The scrape/page phase; returns the last plain scrape's body."""
    scrape_windows, page_windows = result.scrape_windows, result.page_windows
    before_cpu, sim_cpu, before_t = cpu_seconds(pid), cpu_seconds(sim_pid), time.monotonic()
    await asyncio.sleep(4)
    baseline = (cpu_seconds(pid) - before_cpu) / (time.monotonic() - before_t)
    result.busy = baseline
    result.sim_busy = (cpu_seconds(sim_pid) - sim_cpu) / (time.monotonic() - before_t)
    first_late: list[tuple[float, float]] = []
    last_plain = b""
    last_runs: dict[bytes, float] = {}
    for n in range(args.scrapes):
        zipped = n % 2 == 1
        headers = ({"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"} if zipped
                   else {"Accept-Encoding": "identity"})
        cpu0, wall0 = cpu_seconds(pid), time.time()
        body, elapsed = await fetch(f"{url}/metrics", headers, workdir)
        scrape_windows.append((wall0, time.time()))
        result.scrape_cpu.append(max(0.0, cpu_seconds(pid) - cpu0 - baseline * elapsed))
        text = gzip.decompress(body) if zipped else body
        if zipped:
            result.gzipped.append(elapsed)
            result.gzip_mb = len(body) / 1e6
        else:
            result.plain.append(elapsed)
            result.plain_mb = len(body) / 1e6
            last_plain = body
        if not first_late:
            first_late = lateness(text)
        last_late = lateness(text)
        runs = gauge_lines(text, b"marketplace_probe_last_run_timestamp_seconds{")
        durations = gauge_lines(text, b"marketplace_probe_duration_seconds{")
        for labels, at in runs.items():
            if b'check="lat-' in labels and last_runs and last_runs.get(labels) != at:
                result.latency_errors_ms.append((durations[labels] - args.latency) * 1000)
        last_runs = runs
        failing = [k for k, v in gauge_lines(text, b"marketplace_probe_success{").items() if v == 0]
        result.failing = len(failing)
        result.failing_by = {}
        for labels in failing:
            where = labels.split(b'marketplace="')[1].split(b'"')[0].decode()
            result.failing_by[where] = result.failing_by.get(where, 0) + 1
        await asyncio.sleep(max(0.0, args.every / 2 - elapsed))
        for path in PAGES:
            wall0 = time.time()
            page, seconds = await fetch(f"{url}{path}", {}, workdir)
            result.pages.append((path, len(page), seconds))
            page_windows.append((wall0, time.time()))
            await asyncio.sleep(0.5)
        await asyncio.sleep(max(0.0, args.every / 2 - 2))
    deltas = [(le, count - dict(first_late).get(le, 0.0)) for le, count in last_late]
    result.late_p50_ms = histogram_quantile(0.5, deltas) * 1000
    result.late_p99_ms = histogram_quantile(0.99, deltas) * 1000
    result.rss = memory_mb(pid)
    return last_plain


def reference(body: bytes, result: Result) -> None:
    """prometheus_client over the same samples: parse our output, time generate_latest on it."""
    families = list(text_string_to_metric_families(body.decode()))
    result.series = sum(len(f.samples) for f in families)

    class Parsed:
        def collect(self) -> list[Any]:
            return families

    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Parsed())
    cpu0, t0 = time.process_time(), time.perf_counter()
    output = generate_latest(registry)
    result.reference_s = time.perf_counter() - t0
    result.reference_cpu = time.process_time() - cpu0
    t0 = time.perf_counter()
    gzip.compress(output)
    result.reference_gzip_s = result.reference_s + time.perf_counter() - t0


def run_size(size: int, sim: str, sim_pid: int, workdir: Path, args: argparse.Namespace) -> Result:
    result = Result(size)
    text, latency_ids, mix = config(size, sim, args.interval, args.concurrency)
    path = workdir / f"scale-{size}.yml"
    path.write_text(text)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (workdir / f"exporter-{size}.log").open("wb")
    start = time.monotonic()
    gc_log = workdir / f"gc-{size}.txt"
    cpus = args.exporter_cpus
    proc = subprocess.Popen([sys.executable, str(HERE), "_exporter", str(gc_log), "run", f"--config.file={path}",
                             f"--web.listen-address=127.0.0.1:{port}", f"--storage.path={workdir / f'data-{size}'}"],
                            stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)  # noqa: PLW1509
    pinger = bare = None
    try:
        wait_http(f"{url}/-/ready", proc, timeout=300)
        result.load_s = time.monotonic() - start
        result.rss_ready = memory_mb(proc.pid)[0]
        warmup = min(args.interval, 1 + args.interval * 0.5) + 10
        print(f"  {size:,} checks ({mix} marketplace, {latency_ids} latency): ready in {result.load_s:.1f}s, "
              f"warming up {warmup:.0f}s", flush=True)
        time.sleep(warmup)
        pings = workdir / f"pings-{size}.txt"
        pinger = subprocess.Popen([sys.executable, str(HERE), "_pinger", url, str(pings)])
        bare_times = workdir / f"bare-{size}.txt"
        bare = subprocess.Popen([sys.executable, str(HERE), "_bare_client", f"{sim}{LATENCY_ROUTE}", str(bare_times)])
        time.sleep(1)
        body = asyncio.run(measure(url, proc.pid, result, args, workdir, sim_pid))
        stop(pinger)
        stop(bare)
        window = (result.scrape_windows[0][0], result.scrape_windows[-1][1])
        result.bare_errors_ms = [(float(took) - args.latency) * 1000 for at, took in
                                 (line.split() for line in bare_times.read_text().splitlines())
                                 if window[0] <= float(at) <= window[1]]
        samples = [(float(a), float(b)) for a, b in (line.split() for line in pings.read_text().splitlines())]
        result.stall_scrape_ms = longest_wait(samples, result.scrape_windows)
        result.stall_page_ms = longest_wait(samples, result.page_windows)
        result.ping_p50_ms = statistics.median(latency for _, latency in samples) * 1000
        phase = (result.scrape_windows[0][0], result.scrape_windows[-1][1])
        collections = [(int(gen), float(secs), float(cpu)) for at, gen, secs, cpu in
                       (line.split() for line in gc_log.read_text().splitlines()) if phase[0] <= float(at) <= phase[1]]
        result.gc_max_ms = max((secs for _, secs, _ in collections), default=0.0) * 1000
        result.gc_max_cpu_ms = max((cpu for _, _, cpu in collections), default=0.0) * 1000
        result.gc_full = sum(1 for gen, _, _ in collections if gen == 2)
        census = gc_log.with_suffix(".census")
        if census.exists():
            result.gc_census = ", ".join(census.read_text().split("\n")[:6])
    finally:
        for child in (pinger, bare):
            if child is not None:
                stop(child)
        stop(proc)
        log.close()
    reference(body, result)
    return result


def report(results: list[Result], args: argparse.Namespace) -> None:
    print()
    print(f"interval {args.interval:g}s, scrapes every {args.every:g}s, injected latency "
          f"{args.latency * 1000:.0f} ms; goals at 50k: scrape <= 0.1x generate_latest, stall <= 20 ms, "
          "RSS <= 400 MB, lateness p99 <= 50 ms, latency error p99 within +-5 ms")
    head = ("checks", "series", "MB (gz)", "scrape s", "gen_latest s", "ratio", "gz scrape s", "gen+gzip s",
            "scrape CPU s", "CPU ratio", "stall scr/page ms", "RSS ready/end/peak MB", "late p50/p99 ms",
            "lat err p50/p99 ms", "bare client p50/p99", "GC max wall/CPU ms (full)", "busy", "failing")
    rows = []
    for r in results:
        scrape = statistics.median(r.plain)
        rows.append((f"{r.size:,}", f"{r.series:,}", f"{r.plain_mb:.1f} ({r.gzip_mb:.1f})", f"{scrape:.3f}",
                     f"{r.reference_s:.2f}", f"{scrape / r.reference_s:.3f}",
                     f"{statistics.median(r.gzipped) if r.gzipped else float('nan'):.3f}", f"{r.reference_gzip_s:.2f}",
                     f"{statistics.median(r.scrape_cpu):.3f}",
                     f"{statistics.median(r.scrape_cpu) / r.reference_cpu:.3f}",
                     f"{r.stall_scrape_ms:.0f}/{r.stall_page_ms:.0f}",
                     f"{r.rss_ready:.0f}/{r.rss[0]:.0f}/{r.rss[1]:.0f}", f"{r.late_p50_ms:.1f}/{r.late_p99_ms:.1f}",
                     f"{pct(r.latency_errors_ms, 0.5):+.1f}/{pct(r.latency_errors_ms, 0.99):+.1f}",
                     f"{pct(r.bare_errors_ms, 0.5):+.1f}/{pct(r.bare_errors_ms, 0.99):+.1f}",
                     f"{r.gc_max_ms:.0f}/{r.gc_max_cpu_ms:.0f} ({r.gc_full})", f"{r.busy:.0%}", str(r.failing)))
    widths = [max(len(row[i]) for row in (head, *rows)) for i in range(len(head))]
    for row in (head, *rows):
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    for r in results:
        pages = ", ".join(f"{p} {max(b for q, b, _ in r.pages if q == p) / 1024:.0f} KB "
                          f"{1000 * max(s for q, _, s in r.pages if q == p):.0f} ms" for p in PAGES)
        print(f"{r.size:,}: exporter ready {r.load_s:.1f}s after start; simulator busy {r.sim_busy:.0%}; "
              f"ping median {r.ping_p50_ms:.1f} ms; "
              f"latency samples {len(r.latency_errors_ms)} (bare client {len(r.bare_errors_ms)}); "
              f"failing by marketplace {r.failing_by or '-'}; "
              f"pages (largest, slowest): {pages}"
              + (f"; oldest generation at a long full collection: {r.gc_census}" if r.gc_census else ""))


def main(argv: list[str]) -> int:
    if argv[:1] == ["_bare_client"]:  # the latency reference: a bare client on the latency route
        return pinger_main(argv[1], argv[2], every=BARE_CLIENT_EVERY)
    if argv[:1] == ["_pinger"]:
        return pinger_main(argv[1], argv[2])
    if argv[:1] == ["_exporter"]:
        return exporter_main(argv[1], argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--interval", type=float, default=60.0)
    parser.add_argument("--every", type=float, default=15.0, help="seconds between scrapes")
    parser.add_argument("--scrapes", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.05, help="injected latency, seconds")
    parser.add_argument("--concurrency", type=int, default=256, help="the exporter's probes in flight")
    parser.add_argument("--pin-exporter", action="store_true",
                        help="the exporter alone on the last CPU, the simulator, pinger, bare client, curl and this "
                             "process on the others (how far the machine's sharing explains the latency error)")
    args = parser.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    args.exporter_cpus = None
    if args.pin_exporter and len(cpus) >= 2:
        args.exporter_cpus = {cpus[-1]}
        os.sched_setaffinity(0, set(cpus[:-1]))  # inherited by every child started from here on
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        workdir = Path(tmp)
        sim_port = free_port()
        sim_url = f"http://127.0.0.1:{sim_port}"
        sim = subprocess.Popen([*exporter_cmd(), "simulate", f"--web.listen-address=127.0.0.1:{sim_port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_http(f"{sim_url}/__sim/faults", sim, timeout=30)
            request = urllib.request.Request(f"{sim_url}/__sim/faults", method="POST", data=json.dumps(
                {"marketplace": "http", "check": "status", "fault": "latency", "value": args.latency}).encode(),
                headers={"Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=5).close()  # noqa: S310 (127.0.0.1)
            pinned = (f"; exporter pinned to CPU {min(args.exporter_cpus)}, the rest to "
                      f"{sorted(os.sched_getaffinity(0))}" if args.exporter_cpus else "")
            print(f"simulator on {sim_url}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}{pinned}",
                  flush=True)
            results = [run_size(size, sim_url, sim.pid, workdir, args) for size in sizes]
        finally:
            stop(sim)
    report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
