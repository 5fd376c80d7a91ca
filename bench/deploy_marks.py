#!/usr/bin/env python3
"""Deploy markers: how long a mark holds the event loop, before and after moving the write off it.

The exporter's event loop also serves ``/metrics`` and runs every probe, so a mark that writes on
the loop stalls all of them for as long as the commit takes (SQLite with ``synchronous=FULL``: an
fsync, ~4 ms on our machines). The deploy API now writes in a worker thread
(``asyncio.to_thread``). This bench measures both ways in one run, on the same audit log:

- **inline** (the reference: how it was): ``log.append`` called on the loop;
- **to_thread** (how it is): ``await asyncio.to_thread(log.append, ...)``.

For each, ``--marks`` markers are appended with ``--concurrency`` in flight while a ticker task
asks the loop to wake every millisecond; the figures are the ticker's lateness (how long the loop
was held: p50, p99, max) and marks per second. Printed, never asserted.

    .venv/bin/python bench/deploy_marks.py                                 # SQLite in a temp dir
    .venv/bin/python bench/deploy_marks.py --storage-url postgresql://...  # a PostgreSQL you run
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable

from marketplace_exporter.catalogue import DeployStatus
from marketplace_exporter.deploys.model import DeployMarker
from marketplace_exporter.deploys.storage import AuditLog, open_log

TICK = 0.001


async def measure(append: Callable[[DeployMarker], Awaitable[object]], marks: int,
                  concurrency: int) -> tuple[list[float], float]:
    late: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            asked = time.perf_counter()
            await asyncio.sleep(TICK)
            late.append(time.perf_counter() - asked - TICK)

    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with gate:
            await append(DeployMarker("bench-app", "production", f"v{index}", status=DeployStatus.SUCCEEDED))

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    late.clear()
    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(marks)))
    elapsed = time.perf_counter() - started
    done.set()
    await tick
    return late, marks / elapsed


def row(name: str, late: list[float], rate: float) -> str:
    ordered = sorted(late)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return (f"{name:<12} loop held p50 {statistics.median(ordered) * 1000:6.2f} ms  p99 {p99 * 1000:6.2f} ms  "
            f"max {ordered[-1] * 1000:6.2f} ms   {rate:7.0f} marks/s")


async def run(audit_log: AuditLog, marks: int, concurrency: int) -> None:
    async def inline(marker: DeployMarker) -> object:
        return audit_log.append(marker)

    async def threaded(marker: DeployMarker) -> object:
        return await asyncio.to_thread(audit_log.append, marker)

    for name, append in (("inline", inline), ("to_thread", threaded)):
        late, rate = await measure(append, marks, concurrency)
        print(row(name, late, rate), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--marks", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--storage-url", default=None, help="default: SQLite in a temporary directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-marks-") as directory:
        audit_log = open_log(args.storage_url or directory)
        try:
            print(f"{args.marks} marks, {args.concurrency} in flight, audit log {audit_log.path}")
            print("reference: inline = the write on the event loop (before); to_thread = now")
            asyncio.run(run(audit_log, args.marks, args.concurrency))
        finally:
            audit_log.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
