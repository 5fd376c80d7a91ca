"""Sharding by account: a stable, documented hash; an account never splits; auto mode reads the
StatefulSet ordinal; a bad combination fails with a message that says what to fix."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from marketplace_exporter.shard import (
    Shard,
    ShardError,
    jump_hash,
    key_hash,
    parse_shard,
    shard_key,
    shard_of,
)


@dataclass(frozen=True)
class Check:
    marketplace: str
    account: str
    name: str

    @property
    def id(self) -> str:
        return f"{self.marketplace}/{self.account}/{self.name}"


def test_jump_hash_matches_the_published_algorithm() -> None:
    # the values ClickHouse's jumpConsistentHash test expects for the same (key, buckets) pairs
    # (tests/queries/0_stateless/00580_consistent_hashing_functions.reference)
    pairs = [(1, 1), (42, 57), (256, 1024), (3735883980, 1), (3735883980, 666), (16045690984833335023, 255)]
    assert [jump_hash(key, buckets) for key, buckets in pairs] == [0, 43, 520, 0, 361, 237]


def test_key_hash_is_sha256_and_not_python_hash() -> None:
    # the first 8 bytes of sha256(b"amazon_sp/acme-us") are 29198d856e8fb5fe: pinned, so a change of
    # hash (which would move every account between shards) cannot slip in unnoticed
    assert key_hash("amazon_sp/acme-us") == 0x29198D856E8FB5FE == 2961553834197890558
    assert [shard_of("amazon_sp/acme-us", total) for total in range(1, 6)] == [0, 1, 1, 3, 3]


def test_growing_by_one_shard_moves_keys_only_to_the_new_shard() -> None:
    keys = [f"shopee/seller-{i}" for i in range(5000)]
    for total in range(1, 8):
        before = {key: shard_of(key, total) for key in keys}
        after = {key: shard_of(key, total + 1) for key in keys}
        moved = [key for key in keys if before[key] != after[key]]
        assert all(after[key] == total for key in moved)
        # about 1/(n+1) of them: 5000/(n+1) with a generous binomial margin
        expected = len(keys) / (total + 1)
        assert abs(len(moved) - expected) < 5 * (expected ** 0.5) + 5


def test_every_check_of_an_account_stays_on_one_shard() -> None:
    checks = [Check("amazon_sp", f"seller-{i}", op) for i in range(300)
              for op in ("participations", "orders", "account")]
    shards = [Shard(ordinal, 4) for ordinal in range(4)]
    owners: dict[str, set[int]] = {}
    for shard in shards:
        for check in shard.select(checks):
            owners.setdefault(check.account, set()).add(shard.ordinal)
    assert len(owners) == 300
    assert all(len(owner) == 1 for owner in owners.values())
    assert sum(len(shard.select(checks)) for shard in shards) == len(checks)
    assert {len(shard.select(checks)) // 3 for shard in shards} <= set(range(45, 106))


def test_generic_checks_are_keyed_by_themselves() -> None:
    http = [Check("http", "erp", f"endpoint-{i}") for i in range(200)]
    tls = Check("tls", "self", "api.example.com:8443")
    assert shard_key(http[0]) == "http/erp/endpoint-0"
    assert shard_key(tls) == "tls/self/api.example.com:8443"
    assert shard_key(Check("shopee", "sg-main", "shop_info")) == "shopee/sg-main"
    # one `account` label does not pull 200 generic checks onto one shard
    assert len({Shard(0, 3).owner(check) for check in http}) == 3


def test_select_keeps_config_order_and_one_shard_selects_everything() -> None:
    checks = [Check("ebay", f"a{i}", "privileges") for i in range(50)]
    assert Shard().select(checks) == tuple(checks)
    mine = Shard(1, 3).select(checks)
    assert list(mine) == [check for check in checks if Shard(1, 3).owns(check)]


@pytest.mark.parametrize(("shard", "total", "message"), [
    ("3", "3", "--shard: expected 0..2 (--total-shards=3), got 3"),
    ("-1", "2", "--shard: expected 0..1"),
    ("0", "0", "--total-shards: expected 1..1000, got 0"),
    ("one", "2", "--shard: expected a whole number, got 'one'"),
    ("0", "x", "--total-shards: expected a whole number, got 'x'"),
])
def test_bad_flags_say_what_is_expected(shard: str, total: str, message: str) -> None:
    with pytest.raises(ShardError, match="^" + message.replace("(", r"\(").replace(")", r"\)")
                       .replace(".", r"\.")):
        parse_shard(shard, total, env={})


def test_auto_mode_reads_the_statefulset_ordinal() -> None:
    shard = parse_shard("auto", "4", env={"POD_NAME": "marketplace-exporter-2"})
    assert (shard.ordinal, shard.total, shard.pod) == (2, 4, "marketplace-exporter-2")
    assert shard.pod_of(3) == "marketplace-exporter-3"
    assert shard.describe() == "shard 2 of 4 (pod marketplace-exporter-2)"
    # without $POD_NAME the host name (Kubernetes sets it to the pod name)
    assert parse_shard("auto", "3", env={}, hostname="mx-0").ordinal == 0
    # the total from the environment when the flag is absent
    assert parse_shard("auto", None, env={"POD_NAME": "mx-1", "MARKETPLACE_EXPORTER_TOTAL_SHARDS": "2"}).total == 2


def test_auto_mode_refuses_what_it_cannot_read() -> None:
    with pytest.raises(ShardError, match=r"cannot read an ordinal from the pod name 'exporter' "):
        parse_shard("auto", "3", env={"POD_NAME": "exporter"})
    with pytest.raises(ShardError, match="more replicas than shards"):
        parse_shard("auto", "3", env={"POD_NAME": "marketplace-exporter-3"})


def test_unsharded_is_the_default_and_owns_everything() -> None:
    shard = parse_shard("0", None, env={})
    assert (shard.ordinal, shard.total, shard.sharded) == (0, 1, False)
    assert shard.describe() == "not sharded"
    assert shard.owns(Check("walmart", "us", "items"))
