"""The bridge as a real process: killed with SIGKILL three times while notifications wait for a
failing robot (once in the middle of a burst of posts), restarted each time, and every notification
it acknowledged with 200 still reaches the chat exactly once, in order (issue 14 keeps this held)."""

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
from bridge_harness import am_payload
from conftest import free_port
from fake_robots import FakeRobots, Robot

DING = Robot("dingtalk", "restart-token-4e5f6a7b8c", "SECrestart-secret-1a2b3c")

TOKEN = "restart-bridge-token-5c6d"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONFIG = """\
storage_path: outbox.db
auth:
  bearer_token: ${RESTART_BRIDGE_TOKEN}
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


async def test_three_sigkills_lose_no_acknowledged_notification_and_duplicate_none(tmp_path: Path) -> None:
    robots = FakeRobots([DING])
    await robots.start()
    robots.fail("dingtalk", "http_500")  # until cleared: everything stays queued
    config = tmp_path / "bridge.yml"
    config.write_text(CONFIG, encoding="utf-8")
    env = {**os.environ, "RESTART_DING_URL": robots.url("dingtalk", DING.token),
           "RESTART_DING_SECRET": DING.secret or "", "RESTART_BRIDGE_TOKEN": TOKEN}
    port = free_port()
    url = f"http://127.0.0.1:{port}/alertmanager/ding"
    log = tmp_path / "bridge.log"
    process = start(config, port, env, log)
    acknowledged: list[str] = []
    unacknowledged: list[str] = []
    try:
        await wait_ready(port, process)
        async with httpx.AsyncClient() as client:
            # kill 1: a queue of five, the robot failing and being retried
            for name in [f"Queued{i:02d}" for i in range(5)]:
                assert (await client.post(url, json=am_payload(name), headers=AUTH)).status_code == 200
                acknowledged.append(name)
            await robots.wait_for(lambda r: len(r.received) >= 3)
            process = await _kill_and_restart(process, config, port, env, log)

            # kill 2: in the middle of a stream of posts from four clients: what got its 200 is kept,
            # what was in flight may or may not be
            names = iter(f"Burst{i:03d}" for i in range(1000))

            async def stream() -> None:
                while True:
                    name = next(names)
                    try:
                        response = await client.post(url, json=am_payload(name), headers=AUTH, timeout=10)
                    except httpx.TransportError:
                        unacknowledged.append(name)
                        return
                    (acknowledged if response.status_code == 200 else unacknowledged).append(name)

            streams = [asyncio.create_task(stream()) for _ in range(4)]
            while len(acknowledged) < 5 + 10:
                await asyncio.sleep(0.001)
            process = await _kill_and_restart(process, config, port, env, log)
            await asyncio.gather(*streams)
            assert unacknowledged, "no post was in flight when the bridge was killed"

            # kill 3: the queue from before the restarts is still waiting, five more join it
            for name in [f"Later{i:02d}" for i in range(5)]:
                assert (await client.post(url, json=am_payload(name), headers=AUTH)).status_code == 200
                acknowledged.append(name)
            process = await _kill_and_restart(process, config, port, env, log)

        robots.clear()
        await robots.wait_for(lambda r: all(_count(r, name) >= 1 for name in acknowledged), timeout=30)
        await asyncio.sleep(0.3)
        assert [name for name in acknowledged if _count(robots, name) != 1] == []
        assert [name for name in unacknowledged if _count(robots, name) > 1] == []
        text = "".join(m.text for m in robots.delivered())
        in_order = [name for name in acknowledged if not name.startswith("Burst")]
        positions = [text.index(f"**[告警] {name}**") for name in in_order]
        assert positions == sorted(positions)

        history = subprocess.run(
            [sys.executable, "-m", "marketplace_exporter.bridge", "alerts", "history", f"--config.file={config}",
             "--format=json"], env=env, capture_output=True, check=True, timeout=30)
        rows: list[dict[str, Any]] = json.loads(history.stdout)
        states = {row["alertname"]: row["state"] for row in rows}
        assert {name: states.get(name) for name in acknowledged} == dict.fromkeys(acknowledged, "sent")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        await robots.stop()
    logged = log.read_text(encoding="utf-8")
    assert logged.count("queued from before") == 4
    for secret in (DING.token, DING.secret or "-", TOKEN):
        assert secret not in logged


def _count(robots: FakeRobots, name: str) -> int:
    return "".join(m.text for m in robots.delivered()).count(f"**[告警] {name}**")


async def _kill_and_restart(process: subprocess.Popen[bytes], config: Path, port: int, env: dict[str, str],
                            log: Path) -> subprocess.Popen[bytes]:
    """SIGKILL by PID (no shutdown handler runs), then a new process on the same outbox."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    restarted = start(config, port, env, log)
    await wait_ready(port, restarted)
    return restarted
