"""Grafana annotations pushed to a fake Grafana on 127.0.0.1 (a real aiohttp server): retried after
a transient failure, given up on after the retries or on a 4xx, counted, and never failing the mark."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from marketplace_exporter.catalogue import DeployStatus
from marketplace_exporter.deploys.annotations import annotation_body
from marketplace_exporter.deploys.api import DEPLOYS
from marketplace_exporter.deploys.model import DeployRecord
from marketplace_exporter.server import ConfigSource, create_app

TOKEN = "deploy-token-0b9c"
GRAFANA_KEY = "glsa_fakegrafanakey_7731"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MARKER = {"service": "order-sync", "environment": "production", "version": "v5.0.1", "commit": "cafe1234",
          "sites": ["US", "MX"], "actor": "ci-bot"}


@dataclass
class FakeGrafana:
    """Answers ``statuses`` in turn (the last one repeats) and keeps what it received."""

    statuses: list[int]
    received: list[tuple[dict[str, Any], str]] = field(default_factory=list)

    async def annotations(self, request: web.Request) -> web.Response:
        self.received.append((await request.json(), request.headers.get("Authorization", "")))
        status = self.statuses[min(len(self.received), len(self.statuses)) - 1]
        return web.json_response({"id": len(self.received), "message": "Annotation added"}, status=status)


async def _stack(tmp_path: Path, grafana: FakeGrafana, retries: int = 2) -> tuple[TestClient[Any, Any], TestServer]:
    fake = web.Application()
    fake.router.add_post("/api/annotations", grafana.annotations)
    server = TestServer(fake, host="127.0.0.1")
    await server.start_server()
    config = tmp_path / "config.yml"
    config.write_text(f"deploys:\n  grafana:\n    url: http://127.0.0.1:{server.port}\n"
                      f"    api_key: ${{GRAFANA_TEST_KEY}}\n    dashboard_uid: deploys\n"
                      f"    retries: {retries}\n    retry_backoff: 10ms\n")
    source = ConfigSource(str(config))
    client = TestClient(TestServer(create_app(source, source.load(), storage_path=str(tmp_path / "data")),
                                   host="127.0.0.1"))
    await client.start_server()
    return client, server


async def _until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def _pushes(client: TestClient[Any, Any]) -> dict[str, int]:
    return dict(client.app[DEPLOYS].state.annotation_pushes)


@pytest.fixture(autouse=True)
def _tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETPLACE_EXPORTER_DEPLOY_TOKEN", TOKEN)
    monkeypatch.setenv("GRAFANA_TEST_KEY", GRAFANA_KEY)


async def test_a_failed_first_push_is_retried_and_succeeds(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    grafana = FakeGrafana([500, 200])
    client, server = await _stack(tmp_path, grafana)
    try:
        response = await client.post("/api/v1/deploys", json=MARKER, headers=AUTH)
        assert response.status == 201
        await _until(lambda: client.app[DEPLOYS].state.annotation_pushes["ok"] == 1)
        assert len(grafana.received) == 2
        body, authorization = grafana.received[-1]
        assert authorization == f"Bearer {GRAFANA_KEY}"
        assert body["dashboardUID"] == "deploys"
        assert body["tags"] == ["deploy", "service:order-sync", "environment:production", "version:v5.0.1",
                                "status:succeeded"]
        metrics = await (await client.get("/metrics")).text()
        assert 'marketplace_grafana_annotation_pushes_total{result="ok"} 1.0' in metrics
        assert 'marketplace_grafana_annotation_pushes_total{result="failed"} 0.0' in metrics
    finally:
        await client.close()
        await server.close()
    assert GRAFANA_KEY not in caplog.text and TOKEN not in caplog.text


async def test_a_grafana_that_always_fails_never_fails_the_mark(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    grafana = FakeGrafana([503])
    client, server = await _stack(tmp_path, grafana, retries=2)
    try:
        response = await client.post("/api/v1/deploys", json=MARKER, headers=AUTH)
        assert response.status == 201
        await _until(lambda: client.app[DEPLOYS].state.annotation_pushes["failed"] == 1)
        assert len(grafana.received) == 3  # the first attempt and two retries
        assert await _pushes(client) == {"failed": 1}
        assert "not pushed" in caplog.text and "HTTP 503" in caplog.text and "deploy itself is recorded" in caplog.text
    finally:
        await client.close()
        await server.close()
    assert GRAFANA_KEY not in caplog.text


async def test_a_refused_key_is_not_retried(tmp_path: Path) -> None:
    grafana = FakeGrafana([401])
    client, server = await _stack(tmp_path, grafana, retries=3)
    try:
        assert (await client.post("/api/v1/deploys", json=MARKER, headers=AUTH)).status == 201
        await _until(lambda: client.app[DEPLOYS].state.annotation_pushes["failed"] == 1)
        assert len(grafana.received) == 1
    finally:
        await client.close()
        await server.close()


async def test_an_unreachable_grafana_is_counted_as_failed(tmp_path: Path) -> None:
    grafana = FakeGrafana([200])
    client, server = await _stack(tmp_path, grafana, retries=1)
    await server.close()  # nothing listens on the configured port any more
    try:
        assert (await client.post("/api/v1/deploys", json=MARKER, headers=AUTH)).status == 201
        await _until(lambda: client.app[DEPLOYS].state.annotation_pushes["failed"] == 1)
        assert grafana.received == []
    finally:
        await client.close()


def test_the_annotation_text_carries_the_details_a_reader_needs() -> None:
    record = DeployRecord(id=7, received_at=1_800_000_000.0, deployed_at=1_799_999_999.25, service="order-sync",
                          environment="production", version="v5.0.1", commit="cafe1234deadbeef",
                          sites=("US", "MX"), status=DeployStatus.ROLLED_BACK,
                          pipeline_url="https://ci.example.com/p/1", actor="ci-bot", notes="",
                          freeze="double-11", freeze_policy="warn")
    body = annotation_body(record, None)
    assert body["time"] == 1_799_999_999_250
    assert "dashboardUID" not in body
    assert body["text"] == ("Deploy order-sync v5.0.1 to production: rolled_back (commit cafe1234dead; by ci-bot; "
                            "sites US,MX; inside freeze double-11 (warn)) pipeline: https://ci.example.com/p/1")
