"""The bridge as a real process: killed with SIGKILL while notifications wait for a failing robot,
restarted, and every notification still reaches the chat exactly once, in order."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from conftest import free_port
from fake_robots import FakeRobots, Robot
from test_bridge_delivery import am_payload

DING = Robot("dingtalk", "restart-token-4e5f6a7b8c", "SECrestart-secret-1a2b3c")

CONFIG = """\
storage_path: outbox.db
retry: {initial_backoff: 50ms, max_backoff: 200ms}
receivers:
  ding:
    channel: dingtalk
    url: ${RESTART_DING_URL}
    secret: ${RESTART_DING_SECRET}
"""


def start(config: Path, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as stderr:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "marketplace_exporter.bridge", "--log.level=debug", "bridge",
             f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr)


async def wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    async with httpx.AsyncClient() as client:
        while True:
            assert process.poll() is None, "bridge exited"
            try:
                if (await client.get(f"http://127.0.0.1:{port}/-/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "bridge not ready in 20s"
            await asyncio.sleep(0.1)


async def test_sigkill_mid_queue_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    robots = FakeRobots([DING])
    await robots.start()
    robots.fail("dingtalk", "http_500")  # until cleared: everything stays queued
    config = tmp_path / "bridge.yml"
    config.write_text(CONFIG, encoding="utf-8")
    env = {**os.environ, "RESTART_DING_URL": robots.url("dingtalk", DING.token),
           "RESTART_DING_SECRET": DING.secret or ""}
    port = free_port()
    log = tmp_path / "bridge.log"
    process = start(config, port, env, log)
    try:
        await wait_ready(port, process)
        names = [f"Queued{i:02d}" for i in range(10)]
        async with httpx.AsyncClient() as client:
            for name in names:
                response = await client.post(f"http://127.0.0.1:{port}/alertmanager/ding", json=am_payload(name))
                assert response.status_code == 200
        await robots.wait_for(lambda r: len(r.received) >= 3)  # the robot is failing and being retried
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

        robots.clear()
        process = start(config, port, env, log)
        await wait_ready(port, process)
        await robots.wait_for(lambda r: sum(m.text.count("**[告警] Queued") for m in r.delivered()) >= 10,
                              timeout=20)
        await asyncio.sleep(0.3)
        text = "".join(m.text for m in robots.delivered())
        assert [text.count(f"**[告警] {name}**") for name in names] == [1] * 10
        positions = [text.index(f"**[告警] {name}**") for name in names]
        assert positions == sorted(positions)

        history = subprocess.run(
            [sys.executable, "-m", "marketplace_exporter.bridge", "alerts", "history", f"--config.file={config}",
             "--format=json"], env=env, capture_output=True, check=True, timeout=30)
        rows: list[dict[str, Any]] = json.loads(history.stdout)
        assert [(row["alertname"], row["state"]) for row in rows] == [(name, "sent") for name in names]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        await robots.stop()
    logged = log.read_text(encoding="utf-8")
    assert "queued from before" in logged
    for secret in (DING.token, DING.secret or "-"):
        assert secret not in logged
