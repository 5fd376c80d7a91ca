"""Deploy markers cannot grow the series without bound (issue 14): f014b6e accepted 5,000 distinct
services, 35,073 series. ``deploys.max_services`` / ``deploys.max_environments`` refuse a marker for
one name more with a 422 naming the cap (nothing recorded, the refusal counted), over real HTTP and
a real SQLite audit log; the caps count what the log holds, across a restart. Also kept held: 200
parallel marks are all recorded."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from marketplace_exporter.deploys.api import DEPLOY_LOG
from marketplace_exporter.server import ConfigSource, create_app

TOKEN = "deploy-caps-token-7f3e"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CAPS = "deploys: {max_services: 3, max_environments: 2}\n"


def marker(service: str, environment: str = "production", version: str = "v1") -> dict[str, str]:
    return {"service": service, "environment": environment, "version": version}


@pytest.fixture
def exporter(tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Start an exporter on ``tmp_path``'s audit log with ``text`` as its config."""
    monkeypatch.setenv("MARKETPLACE_EXPORTER_DEPLOY_TOKEN", TOKEN)

    async def start(text: str = CAPS) -> TestClient[Any, Any]:
        path = tmp_path / "exporter.yml"
        path.write_text(text)
        source = ConfigSource(str(path))
        client: TestClient[Any, Any] = await aiohttp_client(
            create_app(source, source.load(), storage_path=str(tmp_path / "data")))
        return client
    return start


async def metrics(client: TestClient[Any, Any]) -> list[str]:
    return (await (await client.get("/metrics")).text()).splitlines()


async def test_a_new_service_past_the_cap_is_refused_named_and_counted(exporter: Any) -> None:
    """f014b6e: every new service was recorded and exported (7 series each)."""
    client = await exporter()
    for service in ("svc-a", "svc-b", "svc-c"):
        assert (await client.post("/api/v1/deploys", json=marker(service), headers=AUTH)).status == 201
    response = await client.post("/api/v1/deploys", json=marker("build-1234"), headers=AUTH)
    assert response.status == 422
    assert await response.json() == {
        "field": "service",
        "error": "deploys.max_services (3) reached: 'build-1234' would be a new service beyond the 3 services the "
                 "audit log already has; nothing was recorded. Reuse an existing service name, or raise "
                 "deploys.max_services in the exporter config if it is real"}
    # a known service still deploys; a third environment is the other cap
    assert (await client.post("/api/v1/deploys", json=marker("svc-a", "staging"), headers=AUTH)).status == 201
    third = await client.post("/api/v1/deploys", json=marker("svc-a", "canary"), headers=AUTH)
    assert third.status == 422 and (await third.json())["field"] == "environment"
    assert client.app[DEPLOY_LOG].count() == 4
    lines = await metrics(client)
    assert 'marketplace_deploy_markers_refused_total{reason="max_services"} 1.0' in lines
    assert 'marketplace_deploy_markers_refused_total{reason="max_environments"} 1.0' in lines
    assert not any("build-1234" in line or "canary" in line for line in lines)


async def test_many_new_services_leave_the_series_bounded(exporter: Any) -> None:
    """5,000 services gave 35,073 series on f014b6e; 200 here, against a cap of 3."""
    client = await exporter()
    statuses = [(await client.post("/api/v1/deploys", json=marker(f"svc-{i}"), headers=AUTH)).status
                for i in range(200)]
    assert statuses == [201] * 3 + [422] * 197
    services = {found.group(1) for line in await metrics(client)
                if line.startswith("marketplace_deploy") and (found := re.search(r'service="([^"]*)"', line))}
    assert services == {"svc-0", "svc-1", "svc-2"}
    assert 'marketplace_deploy_markers_refused_total{reason="max_services"} 197.0' in await metrics(client)


async def test_the_caps_count_the_audit_log_across_a_restart(exporter: Any) -> None:
    first = await exporter()
    for service in ("svc-a", "svc-b", "svc-c"):
        assert (await first.post("/api/v1/deploys", json=marker(service), headers=AUTH)).status == 201
    await first.close()
    second = await exporter()
    assert (await second.post("/api/v1/deploys", json=marker("svc-d"), headers=AUTH)).status == 422
    assert (await second.post("/api/v1/deploys", json=marker("svc-b", version="v2"), headers=AUTH)).status == 201


async def test_200_parallel_marks_are_all_kept(exporter: Any) -> None:
    """Issue 14's held behaviour, on the default SQLite log: no marker lost or duplicated."""
    client = await exporter("{}\n")
    responses = await asyncio.gather(*(
        client.post("/api/v1/deploys", json=marker(f"svc-{i % 20}", version=f"v{i}"), headers=AUTH)
        for i in range(200)))
    assert [response.status for response in responses] == [201] * 200
    ids = sorted([(await response.json())["deploy"]["id"] for response in responses])
    assert ids == list(range(1, 201))
    assert client.app[DEPLOY_LOG].count() == 200
    total = sum(float(line.rsplit(" ", 1)[1]) for line in await metrics(client)
                if line.startswith("marketplace_deploys_total{"))
    assert total == 200
