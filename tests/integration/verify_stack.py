"""Shared by the verify-gate tests: the simulator and the REAL exporter app (deploy API + verify
API, SQLite audit log in a temp dir) on 127.0.0.1, with a small fast config, and a way to run the
real ``marketplace-exporter`` CLI against them as a subprocess without blocking the event loop
that serves them.

A plain module (not a conftest): ``from verify_stack import ...``.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp
from aiohttp.test_utils import TestServer

from marketplace_exporter.server import ConfigSource, create_app
from marketplace_exporter.server.app import CORE
from marketplace_exporter.simulator import create_simulator_app
from marketplace_exporter.traffic import api as traffic_api
from marketplace_exporter.traffic.aggregate import TrafficAggregator

TOKEN_ENV = "MARKETPLACE_EXPORTER_DEPLOY_TOKEN"
TOKEN = "verify-test-token-3f9c1e"
SERVICE = "order-sync"
ENVIRONMENT = "production"

#: three checks on three sites, probed every 300 ms; SP-API sandbox allows 5 rps with burst 15, so
#: a full quota budget leaves room for the gate's extra probes
FAST_CONFIG = """
defaults:
  interval: 300ms
  timeout: 250ms
  jitter: 0.1
  quota_budget: 1.0
accounts:
  - marketplace: amazon_sp
    alias: us-main
    site: US
    sandbox: true
    base_url: {sim}/amazon/sandbox-na
    auth_url: {sim}/amazon/lwa
    credentials:
      client_id: amzn1.application-oa2-client.sim0001
      client_secret: {{value: sim-lwa-secret-0001}}
      refresh_token: {{value: "Atzr|sim-refresh-us-main"}}
    checks:
      - operation: marketplace_participations
        tags: [critical]
  - marketplace: shopee
    alias: sg-main
    site: SG
    base_url: {sim}/shopee
    credentials:
      partner_id: 2001887
      partner_key: {{value: sim-shopee-partner-key-0001}}
      shop_id: 14701711
      access_token: {{value: sim-shopee-access-sg-main}}
    checks:
      - operation: get_shop_info
        tags: [critical]
  - marketplace: shopee
    alias: my-main
    site: MY
    base_url: {sim}/shopee
    credentials:
      partner_id: 2001887
      partner_key: {{value: sim-shopee-partner-key-0001}}
      shop_id: 14701712
      access_token: {{value: sim-shopee-access-my-main}}
    checks:
      - operation: get_shop_info
{extra}
"""

AMAZON = "amazon_sp/us-main/marketplace_participations"
SHOPEE_SG = "shopee/sg-main/get_shop_info"
SHOPEE_MY = "shopee/my-main/get_shop_info"


@dataclass
class GateStack:
    exporter: str
    simulator: str
    session: aiohttp.ClientSession
    app: Any

    def results(self, check_id: str) -> int:
        return len(self.app[CORE].store.recent_results(check_id))

    def finished_at(self, check_id: str) -> list[float]:
        """When each result this process holds for the check finished."""
        return [result.finished_at for result in self.app[CORE].store.recent_results(check_id)]

    async def wait_for_baseline(self, *check_ids: str, count: int = 4, seconds: float = 15.0) -> None:
        """Until every check has ``count`` results: the baseline a marker placed now will see."""
        deadline = time.monotonic() + seconds
        while any(self.results(check) < count for check in check_ids):
            assert time.monotonic() < deadline, {check: self.results(check) for check in check_ids}
            await asyncio.sleep(0.05)

    async def mark(self, status: str = "started", **fields: Any) -> dict[str, Any]:
        body = {"service": SERVICE, "environment": ENVIRONMENT, "version": "v1.4.2", "status": status,
                **fields}
        async with self.session.post(f"{self.exporter}/api/v1/deploys", json=body,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 201, await response.text()
            result: dict[str, Any] = await response.json()
            return result

    async def fault(self, **body: Any) -> None:
        async with self.session.post(f"{self.simulator}/__sim/faults", json=body) as response:
            assert response.status == 201, await response.text()

    async def metrics(self) -> str:
        async with self.session.get(f"{self.exporter}/metrics") as response:
            return await response.text()


@asynccontextmanager
async def gate_stack(tmp_path: Path, extra_config: str = "",
                     traffic_clock: Callable[[], float] | None = None) -> AsyncIterator[GateStack]:
    """Simulator + exporter (``create_app`` exactly as ``run`` builds it, audit log under
    ``tmp_path``). The caller sets the token variable (monkeypatch) before entering.

    ``traffic_clock``: the clock the exporter's traffic aggregator files reported calls by (its
    constructor's own parameter), so a test can report "the half hour before the deploy" in a
    second: the per-minute buckets before a marker's minute are the gate's production baseline."""
    simulator = TestServer(create_simulator_app(), host="127.0.0.1")
    await simulator.start_server()
    sim_url = f"http://127.0.0.1:{simulator.port}"
    path = tmp_path / "exporter.yml"
    path.write_text(FAST_CONFIG.format(sim=sim_url, extra=extra_config), encoding="utf-8")
    source = ConfigSource(str(path))
    storage = tmp_path / "data"
    storage.mkdir(exist_ok=True)
    if traffic_clock is None:
        app = create_app(source, source.load(), storage_path=str(storage))
    else:
        clocked = functools.partial(TrafficAggregator, clock=traffic_clock)
        with mock.patch.object(traffic_api, "TrafficAggregator", clocked):
            app = create_app(source, source.load(), storage_path=str(storage))
    exporter = TestServer(app, host="127.0.0.1")
    await exporter.start_server()
    # The exporter and the simulator run on the test process's loop, beside everything pytest has
    # collected so far: one full collection of that heap held the loop >100 ms in a full-suite run
    # and the gate read it as a latency regression of every check in flight. The exporter freezes
    # its own heap after a load for the same reason (engine._freeze_heap); so does the harness.
    gc.collect()
    gc.freeze()
    try:
        async with aiohttp.ClientSession() as session:
            yield GateStack(f"http://127.0.0.1:{exporter.port}", sim_url, session, app)
    finally:
        gc.unfreeze()
        await exporter.close()
        await simulator.close()


@dataclass
class Completed:
    code: int
    stdout: str
    stderr: str


async def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60.0) -> Completed:
    """``python -m marketplace_exporter ARGS`` as a subprocess; the loop keeps serving meanwhile."""
    return await run_process(sys.executable, "-m", "marketplace_exporter", *args, env=env, timeout=timeout)


async def run_process(*argv: str, env: dict[str, str] | None = None, timeout: float = 60.0,
                      cwd: Path | None = None) -> Completed:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_PROXY": "127.0.0.1,localhost", **(env or {})}
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
                                                env=full_env, cwd=cwd)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(f"{argv} did not finish in {timeout}s:\n{err.decode()}") from None
    assert proc.returncode is not None
    return Completed(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
