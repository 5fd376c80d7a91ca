"""A sharded exporter probes and exports only its own accounts, says which shard it is (metrics,
status page), sends /probe for another shard's check to its owner (421), and re-selects on a reload
and when an accounts file changes. Real HTTP on 127.0.0.1 (aiohttp test server); the sellers' API
host is a closed local port (the checks run hourly; nothing needs to succeed)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from marketplace_exporter.server import ConfigSource, create_app
from marketplace_exporter.server.app import CORE
from marketplace_exporter.shard import Shard
from marketplace_exporter.webserver.lifecycle import LIFECYCLE_ENABLED

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
THREE = Shard(1, 3, pod="marketplace-exporter-1")


@dataclass(frozen=True)
class Key:
    marketplace: str
    account: str
    name: str = "get_shop_info"

    @property
    def id(self) -> str:
        return f"{self.marketplace}/{self.account}/{self.name}"


def seller(alias: str) -> dict[str, Any]:
    return {"marketplace": "shopee", "alias": alias, "site": "SG", "base_url": "http://127.0.0.1:9",
            "credentials": {"partner_id": 1, "partner_key": {"value": "k"}, "shop_id": 1,
                            "access_token": {"value": "t"}},
            "checks": [{"operation": "get_shop_info", "interval": "1h"}, {"operation": "get_shop_info",
                                                                          "name": "again", "interval": "1h"}]}


def write_config(tmp_path: Path, aliases: list[str]) -> Path:
    config = tmp_path / "exporter.yml"
    config.write_text(json.dumps({
        "accounts": [seller(alias) for alias in aliases],
        "accounts_files": ["sellers/"], "accounts_files_poll": 0.1,
        "deprecations": [{"marketplace": "shopee", "api": "v1.shop.get", "removal_date": "2031-01-01"}],
    }), encoding="utf-8")
    (tmp_path / "sellers").mkdir(exist_ok=True)
    return config


def mine(aliases: list[str], shard: Shard = THREE) -> set[str]:
    return {alias for alias in aliases if shard.owns(Key("shopee", alias))}


async def _until(predicate: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def exported_accounts(text: str) -> set[str]:
    return {part.split('"')[1] for part in text.split('account=')[1:]} - {"self"}


async def test_a_shard_probes_and_exports_only_its_own_accounts(tmp_path: Path,
                                                                 aiohttp_client: ClientFactory) -> None:
    aliases = [f"seller-{i}" for i in range(24)]
    source = ConfigSource(str(write_config(tmp_path, aliases)))
    app = create_app(source, source.load(), shard=THREE)
    client = await aiohttp_client(app)
    core = app[CORE]
    assert 0 < len(mine(aliases)) < len(aliases)
    assert {spec.account for spec in core.engine.config.checks} == mine(aliases)  # type: ignore[union-attr]
    assert len(core.config.checks) == 2 * len(aliases)  # the whole config stays the core's

    text = await (await client.get("/metrics")).text()
    assert exported_accounts(text) == mine(aliases)
    assert "marketplace_exporter_shard_ordinal 1.0" in text
    assert "marketplace_exporter_total_shards 3.0" in text
    # the config's deprecation calendar is shard 0's to export
    assert "marketplace_api_deprecation_timestamp_seconds{" not in text

    page = await (await client.get("/")).text()
    assert f"shard 1 of 3 (pod marketplace-exporter-1): probing {2 * len(mine(aliases))} of the 48" in page

    theirs = sorted(set(aliases) - mine(aliases))[0]
    owner = THREE.owner(Key("shopee", theirs))
    response = await client.get(f"/probe?check=shopee/{theirs}/again")
    assert response.status == 421
    assert response.headers["X-Marketplace-Exporter-Shard"] == str(owner)
    assert (await response.text()) == (
        f"check shopee/{theirs}/again is probed by shard {owner} of 3 (pod marketplace-exporter-{owner}), not "
        "by this exporter (shard 1 of 3 (pod marketplace-exporter-1)): ask that shard's /probe\n")
    own = sorted(mine(aliases))[0]
    assert (await client.get(f"/probe?check=shopee/{own}/again&debug=true")).status == 200
    assert (await client.get("/probe?check=shopee/nobody/again")).status == 404


async def test_reloads_and_accounts_files_re_select(tmp_path: Path, aiohttp_client: ClientFactory) -> None:
    aliases = [f"seller-{i}" for i in range(12)]
    source = ConfigSource(str(write_config(tmp_path, aliases)))
    app = create_app(source, source.load(), shard=THREE)
    app[LIFECYCLE_ENABLED] = True  # --web.enable-lifecycle: POST /-/reload
    client = await aiohttp_client(app)
    core = app[CORE]

    def running() -> set[str]:
        assert core.engine.config is not None
        return {spec.account for spec in core.engine.config.checks}

    # sellers' files written while running: only this shard's accounts start
    files = [f"file-{i}" for i in range(12)]
    for alias in files:
        (tmp_path / "sellers" / f"{alias}.json").write_text(json.dumps(seller(alias)), encoding="utf-8")

    async def files_applied() -> bool:
        return running() == mine(aliases + files)
    await _until(files_applied)
    assert 0 < len(mine(files)) < len(files)

    # a reload with other accounts in the main file: selected again
    changed = aliases[:6] + [f"new-{i}" for i in range(10)]
    write_config(tmp_path, changed)
    response = await client.post("/-/reload")
    assert response.status == 200, await response.text()
    assert running() == mine(changed + files)
    assert exported_accounts(await (await client.get("/metrics")).text()) == mine(changed + files)


async def test_shard_zero_exports_the_config_wide_series(tmp_path: Path, aiohttp_client: ClientFactory) -> None:
    source = ConfigSource(str(write_config(tmp_path, ["a", "b", "c", "d"])))
    client = await aiohttp_client(create_app(source, source.load(), shard=Shard(0, 2)))
    text = await (await client.get("/metrics")).text()
    assert 'marketplace_api_deprecation_timestamp_seconds{api="v1.shop.get",marketplace="shopee"}' in text
    assert "marketplace_exporter_shard_ordinal 0.0" in text


def test_run_refuses_a_shard_outside_the_total(tmp_path: Path) -> None:
    config = write_config(tmp_path, ["a"])
    result = subprocess.run([sys.executable, "-m", "marketplace_exporter", "run", f"--config.file={config}",
                             "--shard=3", "--total-shards=3"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr == "error: --shard: expected 0..2 (--total-shards=3), got 3\n"


async def test_writes_go_to_shard_zero_and_the_gate_to_prometheus(tmp_path: Path,
                                                                  aiohttp_client: ClientFactory) -> None:
    config = write_config(tmp_path, ["a", "b"])
    one = await aiohttp_client(create_app(ConfigSource(str(config)), ConfigSource(str(config)).load(), shard=THREE))
    zero = await aiohttp_client(create_app(ConfigSource(str(config)), ConfigSource(str(config)).load(),
                                           shard=Shard(0, 3, pod="marketplace-exporter-0")))
    for path in ("/api/v1/deploys", "/api/v1/traffic", "/api/v1/deploys/42", "/v1/traces"):
        response = await one.post(path, json={})
        assert response.status == 421, path
        assert "taken by shard 0 (pod marketplace-exporter-0) only" in (await response.json())["error"]
    # shard 0 serves them (here they refuse for want of a configured token: the APIs themselves answered)
    for path in ("/api/v1/deploys", "/api/v1/traffic", "/v1/traces"):
        response = await zero.post(path, json={})
        assert response.status in (401, 503) and "shard" not in await response.text(), path
    for client in (zero, one):
        response = await client.post("/api/v1/verify", json={})
        assert response.status == 409
        assert "verify --prometheus.url" in (await response.json())["error"]
    # the deploy series exist once: on shard 0
    assert "marketplace_deploys_total" in await (await zero.get("/metrics")).text()
    assert "marketplace_deploy" not in await (await one.get("/metrics")).text()


def test_check_config_tells_which_shard_probes_each_check(tmp_path: Path) -> None:
    aliases = [f"seller-{i}" for i in range(9)]
    config = write_config(tmp_path, aliases)
    result = subprocess.run([sys.executable, "-m", "marketplace_exporter", "check-config", str(config),
                             "--total-shards=3"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for alias in aliases:
        owner = Shard(0, 3).owner(Key("shopee", alias))
        assert f"  shopee/{alias}/again  every 3600s, timeout 10s  shard {owner}" in lines
    for ordinal in range(3):
        assert f"  shard {ordinal} of 3: {2 * len(mine(aliases, Shard(ordinal, 3)))} checks" in lines
