"""Shared by the bridge integration tests: fake robots on loopback (the ``robots`` fixture), a
bridge on a real SQLite outbox behind a test client (``start_bridge``), Alertmanager-style payloads,
and readers for the bridge's /metrics and delivery history.

A plain module (not a conftest): import ``robots_fixture`` and ``start_bridge_fixture`` into a test
module to use the ``robots`` and ``start_bridge`` fixtures there."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from fake_robots import FakeRobots, Robot

from marketplace_exporter.bridge.app import create_bridge_app
from marketplace_exporter.bridge.config import load_bridge_config
from marketplace_exporter.webserver.lifecycle import LIFECYCLE_ENABLED

DING = Robot("dingtalk", "ding-token-5f1c2a9e7b3d", "SECding-signing-secret-8a7b6c")
WECOM = Robot("wecom", "wecom-key-0b6e2f3a-91c4-4d5e")
FEISHU = Robot("feishu", "feishu-hook-7d2c1b0a-3e4f", "feishu-signing-secret-q9w8e7")
HOOK = Robot("webhook", "generic-hook-1")
TOKEN = "bridge-bearer-token-3c4d5e6f"
SECRET_VALUES = [DING.token, DING.secret, WECOM.token, FEISHU.token, FEISHU.secret, TOKEN, "wrong-secret-zz9y8x"]


def am_payload(name: str, status: str = "firing", *, account: str = "us-main", alerts: int = 1) -> dict[str, Any]:
    return {
        "version": "4", "groupKey": f'{{}}:{{alertname="{name}"}}', "truncatedAlerts": 0, "status": status,
        "receiver": "chat", "groupLabels": {"alertname": name}, "commonLabels": {"alertname": name},
        "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": status,
            "labels": {"alertname": name, "severity": "critical", "marketplace": "amazon_sp",
                       "account": f"{account}-{index}" if alerts > 1 else account},
            "annotations": {"summary": f"{name} summary", "summary_zh": f"{name} 告警摘要"},
            "startsAt": "2024-05-01T10:00:00Z",
            "endsAt": "2024-05-01T10:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph", "fingerprint": f"{name}-{index}",
        } for index in range(alerts)],
    }


def config_text(robots: FakeRobots, extra: str = "", receivers: str = "", max_body: int = 20000) -> str:
    return f"""\
storage_path: outbox.db
max_body_bytes: {max_body}
auth:
  bearer_token: ${{TEST_BRIDGE_TOKEN}}
defaults: {{grafana_url: http://grafana:3000, alertmanager_url: http://alertmanager:9093}}
retry: {{initial_backoff: 50ms, max_backoff: 200ms, security_attempts: 2, request_timeout: 2s}}
{extra}
receivers:
  ding:
    channel: dingtalk
    url: ${{TEST_DING_URL}}
    secret: ${{TEST_DING_SECRET}}
    throttle_backoff: 200ms
    mentions: {{mobiles: ["13800000000"]}}
  wecom:
    channel: wecom
    url: ${{TEST_WECOM_URL}}
    throttle_backoff: 200ms
  feishu:
    channel: feishu
    url: ${{TEST_FEISHU_URL}}
    secret: ${{TEST_FEISHU_SECRET}}
    language: en
    throttle_backoff: 200ms
  hook:
    channel: webhook
    url: {{value: "{robots.url('webhook', HOOK.token)}"}}
{receivers}"""


@pytest.fixture(name="robots")
async def robots_fixture(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeRobots]:
    fake = FakeRobots([DING, WECOM, FEISHU, HOOK])
    await fake.start()
    monkeypatch.setenv("TEST_BRIDGE_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_DING_URL", fake.url("dingtalk", DING.token))
    monkeypatch.setenv("TEST_DING_SECRET", DING.secret or "")
    monkeypatch.setenv("TEST_WECOM_URL", fake.url("wecom", WECOM.token))
    monkeypatch.setenv("TEST_FEISHU_URL", fake.url("feishu", FEISHU.token))
    monkeypatch.setenv("TEST_FEISHU_SECRET", FEISHU.secret or "")
    yield fake
    await fake.stop()


Start = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture(name="start_bridge")
async def start_bridge_fixture(tmp_path: Path, robots: FakeRobots) -> AsyncIterator[Start]:
    clients: list[TestClient[Any, Any]] = []

    async def start(extra: str = "", receivers: str = "", max_body: int = 20000) -> TestClient[Any, Any]:
        path = tmp_path / "bridge.yml"
        path.write_text(config_text(robots, extra, receivers, max_body), encoding="utf-8")
        app = create_bridge_app(str(path), load_bridge_config(path))
        app[LIFECYCLE_ENABLED] = True  # as with --web.enable-lifecycle: the tests reload over HTTP
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def post(client: TestClient[Any, Any], receiver: str, body: Any) -> tuple[int, Any]:
    response = await client.post(f"/alertmanager/{receiver}", json=body, headers=AUTH)
    return response.status, await response.json()


async def metric(client: TestClient[Any, Any], name: str, **labels: str) -> float:
    text = await (await client.get("/metrics")).text()
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def history(tmp_path: Path) -> list[dict[str, Any]]:
    from marketplace_exporter.bridge.outbox import history as read

    return read(tmp_path / "outbox.db", since=0)
