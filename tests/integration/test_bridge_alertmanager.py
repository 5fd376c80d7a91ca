"""A REAL Alertmanager posting to the bridge: its actual v4 payloads parse, a firing alert reaches
the (fake, signature-checking) DingTalk robot, and so does the resolved message afterwards."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestServer
from conftest import free_port, require_binary
from fake_robots import FakeRobots, Robot

from marketplace_exporter.bridge.app import create_bridge_app
from marketplace_exporter.bridge.config import load_bridge_config

pytestmark = pytest.mark.stack

DING = Robot("dingtalk", "am-token-9f8e7d6c5b", "SECam-secret-0a1b2c3d")
TOKEN = "am-bridge-token-42x"


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[FakeRobots, str]]:
    binary = require_binary("prometheus-alertmanager")
    robots = FakeRobots([DING])
    await robots.start()
    monkeypatch.setenv("AM_TEST_DING_URL", robots.url("dingtalk", DING.token))
    monkeypatch.setenv("AM_TEST_DING_SECRET", DING.secret or "")
    monkeypatch.setenv("AM_TEST_TOKEN", TOKEN)
    bridge_config = tmp_path / "bridge.yml"
    bridge_config.write_text("""\
storage_path: outbox.db
auth:
  bearer_token: ${AM_TEST_TOKEN}
receivers:
  team-amazon:
    channel: dingtalk
    url: ${AM_TEST_DING_URL}
    secret: ${AM_TEST_DING_SECRET}
""", encoding="utf-8")
    server = TestServer(create_bridge_app(str(bridge_config), load_bridge_config(bridge_config)), host="127.0.0.1")
    await server.start_server()
    (tmp_path / "token").write_text(TOKEN)
    am_port = free_port()
    (tmp_path / "alertmanager.yml").write_text(f"""\
route:
  receiver: team-amazon
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: team-amazon
    webhook_configs:
      - url: http://127.0.0.1:{server.port}/alertmanager/team-amazon
        send_resolved: true
        http_config:
          authorization: {{credentials_file: {tmp_path / "token"}}}
""", encoding="utf-8")
    with (tmp_path / "am.log").open("wb") as log:
        process = subprocess.Popen(
            [binary, f"--config.file={tmp_path / 'alertmanager.yml'}", f"--storage.path={tmp_path / 'am'}",
             f"--web.listen-address=127.0.0.1:{am_port}", f"--web.external-url=http://127.0.0.1:{am_port}",
             "--cluster.listen-address="],
            stdout=log, stderr=subprocess.STDOUT)
    am_url = f"http://127.0.0.1:{am_port}"
    try:
        deadline = time.monotonic() + 20
        async with httpx.AsyncClient(trust_env=False) as client:
            while True:
                assert process.poll() is None, (tmp_path / "am.log").read_text()
                try:
                    if (await client.get(f"{am_url}/-/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "alertmanager not ready in 20s"
                await asyncio.sleep(0.1)
        yield robots, am_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        await server.close()
        await robots.stop()


def alert(ends: datetime) -> list[dict[str, Any]]:
    return [{
        "labels": {"alertname": "MarketplaceAuthFailing", "severity": "critical", "marketplace": "amazon_sp",
                   "account": "us-main"},
        "annotations": {"summary": "A marketplace rejects the exporter's credentials.",
                        "summary_zh": "市场拒绝了凭证（令牌过期或缺少权限）。",
                        "runbook_url": "docs/runbooks.md#marketplaceauthfailing"},
        "startsAt": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
        "endsAt": ends.isoformat(),
        "generatorURL": "http://prometheus:9090/graph?g0.expr=x",
    }]


async def test_real_alertmanager_firing_then_resolved_reaches_the_robot(stack: tuple[FakeRobots, str]) -> None:
    robots, am_url = stack
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(f"{am_url}/api/v2/alerts", json=alert(datetime.now(UTC) + timedelta(hours=1)))
        assert response.status_code == 200
        await robots.wait_for(lambda r: len(r.delivered()) >= 1, timeout=30)
        firing = robots.delivered()[0]
        assert firing.title == "🔥 告警 MarketplaceAuthFailing"
        assert "市场拒绝了凭证（令牌过期或缺少权限）。" in firing.text
        assert f"{am_url}/#/silences/new?filter=" in firing.text  # Alertmanager's externalURL
        response = await client.post(f"{am_url}/api/v2/alerts", json=alert(datetime.now(UTC)))
        assert response.status_code == 200
        await robots.wait_for(lambda r: len(r.delivered()) >= 2, timeout=30)
    resolved = robots.delivered()[1]
    assert resolved.title == "✅ 已恢复 MarketplaceAuthFailing"
    assert "结束:" in resolved.text
    assert all(r.ok for r in robots.received)  # every request was signed correctly and within limits
