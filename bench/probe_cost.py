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
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import probe_cost_processes
from probe_cost_blackbox import BLACKBOX, Blackbox, blackbox_version
from probe_cost_processes import ROUTE, BenchError, Children, Target, Window, pinned
from probe_cost_worker import Ours, OursSpec, floor_main, worker_main

GOAL = 0.30  # issue 11: <= 0.30x blackbox at the median of 5 rounds
HERE = Path(__file__).resolve()

# --- the table --------------------------------------------------------------------------------


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
    parser.add_argument("--flat-interval-ms", type=int, default=50,
                        help="interval (= timeout) of the flat-out checks: 1000 checks @50ms offer "
                             "20,000 probes/s, far beyond one core")
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
    probe_cost_processes.NICE = args.nice  # read by pinned() in every child's preexec_fn
    if args.nice < 0 and os.geteuid() != 0:
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
                  + (f", every process at nice {args.nice}" if args.nice else ""), flush=True)
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
