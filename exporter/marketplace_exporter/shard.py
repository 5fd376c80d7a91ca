"""Shards by account: which of ``n`` exporter processes probes which checks.

When one process is not enough (tens of thousands of seller accounts), ``n`` processes run the
same config with ``--shard=i --total-shards=n`` and each probes only the checks it owns. Prometheus
scrapes all of them; every per-check series exists on exactly one shard, so the dashboards and
alert rules (which aggregate with ``sum``/``count``/``max by``) answer as one process would.

**The key.** A marketplace check's shard key is ``marketplace/account`` (for example
``amazon_sp/acme-us``): every check of a seller account runs on one shard, so the account's quota
budget (kept per marketplace, account and operation in the engine) and its cached access token
stay in one process and the exporter never spends more of a seller's rate limit than it promises.
A generic check, which has no seller quota, is keyed by itself: ``http/<account>/<name>`` for an
``http_checks`` entry and ``tls/self/<host[:port]>`` for a ``tls_hosts`` entry (the check id),
so they spread evenly even when they share an ``account`` label.

**The hash.** The first 8 bytes of SHA-256 of the key (UTF-8), read big-endian, give a stable
64-bit number (the same on every machine, Python version and run; Python's own ``hash()`` is
salted per process and would not do); jump consistent hash (Lamping & Veach, "A Fast, Minimal
Memory, Consistent Hash Algorithm", 2014, arXiv:1406.2294) maps it to a shard. Going from ``n`` to
``n + 1`` shards moves only the keys the new shard takes, about ``1/(n+1)`` of them, and nothing
moves between the old shards (bench/shard_moves.py measures it over 50,000 accounts).

**Automatic mode** (kube-state-metrics style): ``--shard=auto`` takes the ordinal from the
StatefulSet pod name ``<statefulset>-<ordinal>`` (``$POD_NAME`` from the downward API, else the
host name, which Kubernetes sets to the pod name). The total comes from ``--total-shards`` (or
``$MARKETPLACE_EXPORTER_TOTAL_SHARDS``): the exporter does not ask the Kubernetes API for the
StatefulSet's replicas, so it needs no RBAC; the generated manifests keep the two equal.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

#: marketplaces whose checks have no seller account behind them: each check is its own shard key
GENERIC_MARKETPLACES = frozenset({"http", "tls"})

#: ``--total-shards`` when the flag is absent
TOTAL_SHARDS_ENV = "MARKETPLACE_EXPORTER_TOTAL_SHARDS"
#: the pod name ``--shard=auto`` reads first (Kubernetes downward API ``metadata.name``)
POD_NAME_ENV = "POD_NAME"
#: far above any sensible deployment; a typo such as ``--total-shards=30000`` fails loudly
MAX_SHARDS = 1000

_POD_NAME = re.compile(r"(?P<set>[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?)-(?P<ordinal>[0-9]+)")
_MASK64 = (1 << 64) - 1


class Keyed(Protocol):
    """What sharding needs of a check (config.CheckSpec has it)."""

    @property
    def marketplace(self) -> str: ...

    @property
    def account(self) -> str: ...

    @property
    def id(self) -> str: ...


K = TypeVar("K", bound=Keyed)


class ShardError(ValueError):
    """A ``--shard``/``--total-shards`` combination that cannot work; the message says why."""


def shard_key(check: Keyed) -> str:
    """``marketplace/account`` for a seller account's checks; the check id for a generic check."""
    if check.marketplace in GENERIC_MARKETPLACES:
        return check.id
    return f"{check.marketplace}/{check.account}"


def key_hash(key: str) -> int:
    """A stable 64-bit number for ``key``: the first 8 bytes of its SHA-256, big-endian."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")


def jump_hash(key: int, buckets: int) -> int:
    """Jump consistent hash (Lamping & Veach 2014, the paper's C++ transcribed): the bucket in
    ``[0, buckets)`` for a 64-bit ``key``. Growing ``buckets`` by one moves a key only into the new
    bucket, with probability ``1/buckets``."""
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    bucket, jump = -1, 0
    while jump < buckets:
        bucket = jump
        key = (key * 2862933555777941757 + 1) & _MASK64
        jump = int((bucket + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return bucket


def shard_of(key: str, total: int) -> int:
    """The shard (``0 <= shard < total``) that owns the shard key ``key``."""
    return jump_hash(key_hash(key), total)


@dataclass(frozen=True)
class Shard:
    """This process's part of the checks: shard ``ordinal`` of ``total``. ``pod`` is the
    StatefulSet pod name in automatic mode (so messages can name the owner's pod)."""

    ordinal: int = 0
    total: int = 1
    pod: str | None = None
    #: shard key -> owner, kept between selects: a reload or an accounts-file change re-selects
    #: tens of thousands of checks on the event loop, and hashing them all again costs ~0.2 s
    _owners: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.total <= MAX_SHARDS:
            raise ShardError(f"--total-shards: expected 1..{MAX_SHARDS}, got {self.total}")
        if not 0 <= self.ordinal < self.total:
            raise ShardError(f"--shard: expected 0..{self.total - 1} (--total-shards={self.total}), "
                             f"got {self.ordinal}")

    @property
    def sharded(self) -> bool:
        return self.total > 1

    def owner(self, check: Keyed) -> int:
        """The shard that probes ``check``."""
        if self.total == 1:
            return 0
        key = shard_key(check)
        owner = self._owners.get(key)
        return owner if owner is not None else shard_of(key, self.total)

    def owns(self, check: Keyed) -> bool:
        return self.total == 1 or self.owner(check) == self.ordinal

    def select(self, checks: Iterable[K]) -> tuple[K, ...]:
        """The checks this shard probes, in their config order (one hash per account, not per check)."""
        if self.total == 1:
            return tuple(checks)
        owners, total, ordinal = self._owners, self.total, self.ordinal
        mine: list[K] = []
        keys = 0
        for check in checks:
            key = check.id if check.marketplace in GENERIC_MARKETPLACES else f"{check.marketplace}/{check.account}"
            owner = owners.get(key)
            if owner is None:
                owner = owners[key] = shard_of(key, total)
            keys += 1
            if owner == ordinal:
                mine.append(check)
        if len(owners) > 2 * keys + 1024:
            owners.clear()  # accounts removed since: forget them (the next select re-hashes)
        return tuple(mine)

    def pod_of(self, ordinal: int) -> str | None:
        """The pod name of shard ``ordinal`` in automatic mode (same StatefulSet, other ordinal)."""
        if self.pod is None:
            return None
        match = _POD_NAME.fullmatch(self.pod)
        return None if match is None else f"{match['set']}-{ordinal}"

    def describe(self) -> str:
        """``shard 1 of 3 (pod marketplace-exporter-1)``, or ``not sharded``."""
        if not self.sharded:
            return "not sharded"
        pod = f" (pod {self.pod})" if self.pod else ""
        return f"shard {self.ordinal} of {self.total}{pod}"


def parse_shard(shard: str, total_shards: str | None, env: Mapping[str, str] | None = None,
                hostname: str | None = None) -> Shard:
    """Turn ``--shard`` (a number or ``auto``) and ``--total-shards`` (None: the environment
    variable, else 1) into a :class:`Shard`; :class:`ShardError` names what is wrong."""
    env = os.environ if env is None else env
    total_text = total_shards if total_shards is not None else env.get(TOTAL_SHARDS_ENV, "1")
    total = _count(total_text, "--total-shards" if total_shards is not None else f"${TOTAL_SHARDS_ENV}")
    if shard.strip().lower() != "auto":
        return Shard(_count(shard, "--shard"), total)
    pod = env.get(POD_NAME_ENV) or (hostname if hostname is not None else socket.gethostname())
    match = _POD_NAME.fullmatch(pod)
    if match is None:
        raise ShardError(f"--shard=auto: cannot read an ordinal from the pod name {pod!r} "
                         f"(${POD_NAME_ENV} or the host name); expected <statefulset>-<ordinal>, "
                         "e.g. marketplace-exporter-2")
    ordinal = int(match["ordinal"])
    if ordinal >= total:
        raise ShardError(f"--shard=auto: pod {pod} has ordinal {ordinal} but --total-shards is {total}: "
                         "the StatefulSet has more replicas than shards (keep replicas == --total-shards)")
    return Shard(ordinal, total, pod=pod)


def _count(text: str, flag: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ShardError(f"{flag}: expected a whole number, got {text!r}") from None


__all__ = ["GENERIC_MARKETPLACES", "Keyed", "Shard", "ShardError", "jump_hash", "key_hash", "parse_shard",
           "shard_key", "shard_of"]
