"""How many accounts move when a sharded exporter grows from n to n+1 shards.

Measures, over 50,000 seller accounts (``marketplace/alias`` keys spread over the shipped
marketplaces), for n = 1..10: the accounts whose shard changes with the exporter's hash (SHA-256
key, jump consistent hash; marketplace_exporter/shard.py), beside the two references printed in
the same run: the ideal ``1/(n+1)`` (only the new shard's share moves) and a plain
``hash mod n`` (which moves about ``n/(n+1)`` of them). Also prints the largest shard's size over
the mean (balance) and how long selecting one shard's checks from 50,000 takes.

    .venv/bin/python bench/shard_moves.py [--accounts 50000] [--max-shards 10]

Pure computation, no I/O, deterministic (the same figures on every machine except the timing).
Exit status 0; 1 if a key moved between two old shards (jump hash must never do that).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

from marketplace_exporter.shard import Shard, key_hash, shard_of

MARKETPLACES = ("amazon_sp", "ebay", "shopee", "lazada", "walmart", "tiktok_shop", "aliexpress", "mercadolibre")


@dataclass(frozen=True)
class Account:
    marketplace: str
    account: str

    @property
    def id(self) -> str:
        return f"{self.marketplace}/{self.account}/check"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--max-shards", type=int, default=10)
    args = parser.parse_args(argv)

    keys = [f"{MARKETPLACES[i % len(MARKETPLACES)]}/seller-{i:06d}" for i in range(args.accounts)]
    hashes = [key_hash(key) for key in keys]
    print(f"{args.accounts:,} accounts; moved = accounts whose shard changes from n to n+1 shards")
    print(f"{'n -> n+1':>9} {'moved':>7} {'moved %':>8} {'ideal 1/(n+1)':>14} {'mod-n moved %':>14} "
          f"{'between old shards':>19} {'largest/mean (n+1)':>19}")
    bad = 0
    for n in range(1, args.max_shards + 1):
        before = [shard_of(key, n) for key in keys]
        after = [shard_of(key, n + 1) for key in keys]
        moved = sum(1 for old, new in zip(before, after, strict=True) if old != new)
        between_old = sum(1 for old, new in zip(before, after, strict=True) if old != new and new != n)
        bad += between_old
        modulo = sum(1 for value in hashes if value % n != value % (n + 1))
        sizes = [0] * (n + 1)
        for shard in after:
            sizes[shard] += 1
        balance = max(sizes) / (args.accounts / (n + 1))
        print(f"{n:>4} -> {n + 1:<2} {moved:>7,} {100 * moved / args.accounts:>7.2f}% "
              f"{100 / (n + 1):>13.2f}% {100 * modulo / args.accounts:>13.2f}% {between_old:>19} {balance:>19.3f}")

    checks = [Account(MARKETPLACES[i % len(MARKETPLACES)], f"seller-{i:06d}") for i in range(args.accounts)]
    shard = Shard(1, 3)
    started = time.perf_counter()
    mine = shard.select(checks)
    first = time.perf_counter() - started
    started = time.perf_counter()
    shard.select(checks)
    again = time.perf_counter() - started
    print(f"select shard 1 of 3 from {len(checks):,} checks: {len(mine):,} kept; first select (hashes every "
          f"account) {first * 1000:.0f} ms, again (reload, accounts-file change) {again * 1000:.0f} ms")
    if bad:
        print(f"FAIL: {bad} keys moved between two old shards", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
