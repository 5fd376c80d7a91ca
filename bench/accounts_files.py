"""How long 50,000 sellers' accounts files take to load, and what watching them costs.

Writes N accounts files (one seller each, as an ERP would: JSON by default, ``--format yaml`` for
YAML) into a temporary directory, then times, in one process:

* the cold load (``load_config``: main file, every accounts file read, validated and resolved into
  checks) beside the goal (50,000 accounts in <= 10 s);
* a rescan with nothing changed (what the watcher does every ``accounts_files_poll``);
* a rescan after 1 % of the files changed (the ERP rewrote them), which re-reads only those;
* the same rescan in a worker thread while the event loop runs a 1 ms ticker: the longest loop
  stall it caused (the watcher scans off the loop).

Prints numbers, asserts nothing. The temporary directory is removed at the end.

    .venv/bin/python bench/accounts_files.py                 # 50,000 JSON files
    .venv/bin/python bench/accounts_files.py --accounts 5000 --format yaml
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from marketplace_exporter.config import load_config
from marketplace_exporter.config.accounts_files import AccountsFiles

GOAL_SECONDS = 10.0
SITES = ("SG", "MY", "TH", "VN", "PH", "ID", "TW", "BR")


def account(index: int) -> dict[str, object]:
    return {"marketplace": "shopee", "alias": f"seller-{index}", "site": SITES[index % len(SITES)],
            "base_url": "http://127.0.0.1:9",
            "credentials": {"partner_id": 2000000 + index, "partner_key": "${BENCH_PARTNER_KEY}",
                            "shop_id": 100000 + index, "access_token": {"value": f"tok-{index:08d}-x"}},
            "checks": [{"operation": "get_shop_info", "interval": "5m"}]}


def write_files(directory: Path, count: int, fmt: str) -> None:
    for index in range(count):
        data = account(index)
        if fmt == "json":
            text = json.dumps(data)
        else:
            creds = data["credentials"]
            assert isinstance(creds, dict)
            text = (f"marketplace: shopee\nalias: {data['alias']}\nsite: {data['site']}\n"
                    f"base_url: {data['base_url']}\ncredentials:\n  partner_id: {creds['partner_id']}\n"
                    f"  partner_key: ${{BENCH_PARTNER_KEY}}\n  shop_id: {creds['shop_id']}\n"
                    f"  access_token: {{value: {creds['access_token']['value']}}}\n"  # type: ignore[index]
                    "checks:\n  - {operation: get_shop_info, interval: 5m}\n")
        (directory / f"seller-{index}.{fmt if fmt == 'json' else 'yml'}").write_text(text)


async def longest_stall_during(work: object) -> tuple[float, float]:
    """Run ``work`` in a thread; (its wall time, the longest gap of a 1 ms ticker on the loop)."""
    longest = 0.0
    done = False

    async def ticker() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            longest = max(longest, now - last - 0.001)
            last = now

    tick = asyncio.create_task(ticker())
    start = time.perf_counter()
    await asyncio.to_thread(work)  # type: ignore[arg-type]
    wall = time.perf_counter() - start
    done = True
    await tick
    return wall, longest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--format", choices=["json", "yaml"], default="json")
    args = parser.parse_args()
    os.environ.setdefault("BENCH_PARTNER_KEY", "bench-partner-key-0123456789")
    with tempfile.TemporaryDirectory(prefix="mpx-accounts-bench-") as tmp:
        root = Path(tmp)
        (root / "sellers").mkdir()
        started = time.perf_counter()
        write_files(root / "sellers", args.accounts, args.format)
        print(f"wrote {args.accounts:,} {args.format} accounts files in {time.perf_counter() - started:.1f} s")
        config = root / "exporter.yml"
        config.write_text("accounts_files: [sellers/]\n")
        files = AccountsFiles()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        loaded = load_config(config, accounts=files)
        cold, cold_cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        assert len(loaded.checks) == args.accounts and not files.broken(), files.broken()
        rate = args.accounts / cold
        print(f"cold load          {cold:7.2f} s  (CPU {cold_cpu:.2f} s, {rate:,.0f} accounts/s)   "
              f"goal for 50,000: <= {GOAL_SECONDS:.0f} s -> at this rate {50_000 / rate:.1f} s")
        wall0 = time.perf_counter()
        changed = files.scan(loaded.accounts_files, loaded.account_context)
        print(f"rescan, unchanged  {time.perf_counter() - wall0:7.2f} s  (changed: {changed})")
        step = 100
        for index in range(0, args.accounts, step):
            path = root / "sellers" / f"seller-{index}.{args.format if args.format == 'json' else 'yml'}"
            path.write_text(path.read_text().replace("interval: 5m", "interval: 10m")
                            .replace('"interval": "5m"', '"interval": "10m"'))
        wall0 = time.perf_counter()
        changed = files.scan(loaded.accounts_files, loaded.account_context)
        print(f"rescan, 1% changed {time.perf_counter() - wall0:7.2f} s  (changed: {changed})")
        for index in range(1, args.accounts, step):
            path = root / "sellers" / f"seller-{index}.{args.format if args.format == 'json' else 'yml'}"
            path.write_text(path.read_text().replace("interval: 5m", "interval: 15m")
                            .replace('"interval": "5m"', '"interval": "15m"'))
        wall, stall = asyncio.run(longest_stall_during(
            lambda: files.scan(loaded.accounts_files, loaded.account_context)))
        _, idle = asyncio.run(longest_stall_during(lambda: time.sleep(wall)))
        print(f"rescan in a thread {wall:7.2f} s  longest event-loop stall meanwhile {stall * 1000:.1f} ms; "
              f"the same ticker beside an idle thread: {idle * 1000:.1f} ms (this machine's own noise; "
              f"GIL switch interval {sys.getswitchinterval() * 1000:.0f} ms)")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS           {rss:7.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
