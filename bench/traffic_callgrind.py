"""Instruction counts for bench/traffic_overhead.py: one ``valgrind --tool=callgrind`` run of this
module as a child process, split into blocks at MARK calls, gives the hook path's and every
client's plain and hooked instructions per call (the client process's user space only).

Run as a script (``SERVER CALLS CLIENT...``), it is that child: the blocks to count.
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from functools import partial

from traffic_calls import (
    IDLE_REPORTERS,
    KINDS,
    aiohttp_sessions,
    answer_url,
    fetch,
    hook_path_loop,
    idle_reporter,
    sync_pair,
)

from marketplace_exporter.traffic.reporter import Reporter

#: a libc call nothing else in these processes makes (checked: the number of dumps must match):
#: callgrind dumps its counters before each one (``--dump-before=getsid``), which splits one run
#: into the phases between MARKs
MARK = partial(os.getsid, 0)


HOOK_ITERATIONS = 1000


def counted_block(run: Callable[[], object]) -> None:
    """One measured phase under callgrind: a full collection first (outside the phase, so every
    phase starts from the same garbage-collector state), then ``run`` between two MARKs."""
    gc.collect()
    MARK()
    run()
    MARK()


def hook_phases(iterations: int) -> None:
    """Under callgrind: per kind, ``iterations`` hook paths (after a warm-up)."""
    loops = {kind: hook_path_loop(kind, iterations) for kind in KINDS}
    for kind in KINDS:
        hook_path_loop(kind, 500)()
    for kind in KINDS:
        counted_block(loops[kind])


def count_child(server: str, calls: int, clients: list[str]) -> None:
    """The child process under callgrind: the hook path alone per kind, then per client (after a
    warm-up) and per kind, ``calls`` plain calls and ``calls`` hooked calls, each a counted block."""
    hook_phases(HOOK_ITERATIONS)
    for client in clients:
        reporter = idle_reporter()
        if client.startswith("aiohttp"):
            asyncio.run(_count_aiohttp(client, server, reporter, calls))
            continue
        plain, hooked, base = sync_pair(client, server, reporter)
        urls = [answer_url(base, kind) for kind in KINDS]
        for url in urls * 10:
            plain(url)
            hooked(url)
        for url in urls:
            for fn in (plain, hooked):
                counted_block(partial(repeat, partial(fn, url), calls))
    for reporter in IDLE_REPORTERS:
        reporter._queue.clear()


def repeat(fn: Callable[[], object], times: int) -> None:
    for _ in range(times):
        fn()


async def _count_aiohttp(client: str, server: str, reporter: Reporter, calls: int) -> None:
    plain, hooked = aiohttp_sessions(client, server, reporter)
    urls = [answer_url(server, kind) for kind in KINDS]
    async with plain, hooked:
        for url in urls * 10:
            await fetch(plain, url)
            await fetch(hooked, url)
        for url in urls:
            for session in (plain, hooked):
                gc.collect()
                MARK()
                for _ in range(calls):
                    await fetch(session, url)
                MARK()


def callgrind_dumps(args: list[str]) -> list[int]:
    """Run this script with ``args`` under callgrind: the instructions between consecutive MARKs,
    in order (entry i ends at MARK i). The client process's user-space instructions only: the
    kernel and the server process are not counted."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-before=getsid",
                        sys.executable, __file__, *args],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        dumps = sorted((name for name in os.listdir(tmp) if name.startswith("cg.out.")),
                       key=lambda name: int(name.rsplit(".", 1)[1]))
        counts = []
        for name in dumps:
            with open(os.path.join(tmp, name), encoding="utf-8") as handle:
                line = next(line for line in handle if line.startswith(("summary:", "totals:")))
            counts.append(int(line.split()[1]))
    return counts


def counted(clients: tuple[str, ...], server: str, calls: int) -> tuple[dict[str, float],
                                                                       dict[str, dict[str, tuple[float, float]]]]:
    """One callgrind run of :func:`count_child`: (kind → hook-path instructions per call,
    client → kind → (plain, hooked) instructions per call)."""
    dumps = callgrind_dumps([server, str(calls), *clients])
    blocks = len(KINDS) * (1 + 2 * len(clients))
    if len(dumps) != 2 * blocks:
        raise SystemExit(f"callgrind: {len(dumps)} dumps, expected {2 * blocks} (does something else call getsid?)")
    counts = dumps[1::2]  # the even ones are set-up, warm-up and collections before each block
    hook = {kind: counts[i] / HOOK_ITERATIONS for i, kind in enumerate(KINDS)}
    table: dict[str, dict[str, tuple[float, float]]] = {}
    at = len(KINDS)
    for client in clients:
        table[client] = {kind: (counts[at + 2 * i] / calls, counts[at + 2 * i + 1] / calls)
                         for i, kind in enumerate(KINDS)}
        at += 2 * len(KINDS)
    return hook, table


if __name__ == "__main__":
    count_child(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
