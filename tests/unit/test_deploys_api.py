"""``/api/v1/deploys`` over real HTTP (aiohttp test server on 127.0.0.1, a real SQLite file):
authentication, validation naming the field, size limits, pagination, freeze flags, metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from marketplace_exporter.deploys.api import DEPLOY_LOG, DEPLOYS
from marketplace_exporter.server import ConfigSource, create_app, reload_config
from marketplace_exporter.write_api import is_loopback

TOKEN = "deploy-token-Zq81xv"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MARKER = {"service": "listing-sync", "environment": "production", "version": "v2.3.0"}
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


def _freeze_yaml(policy: str = "block", environment: str = "production") -> str:
    now = datetime.now(UTC)
    return (f"deploys:\n  freeze_windows:\n    - name: double-11\n      environments: [{environment}]\n"
            f"      start: {(now - timedelta(hours=1)).isoformat()}\n"
            f"      end: {(now + timedelta(hours=1)).isoformat()}\n      policy: {policy}\n")


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[[str], web.Application]:
    def build(config_text: str = "{}\n") -> web.Application:
        path = tmp_path / "config.yml"
        path.write_text(config_text)
        source = ConfigSource(str(path))
        return create_app(source, source.load(), storage_path=str(tmp_path / "data"))
    return build


@pytest.fixture
async def client(make_app: Callable[[str], web.Application], aiohttp_client: ClientFactory,
                 monkeypatch: pytest.MonkeyPatch) -> TestClient[Any, Any]:
    monkeypatch.setenv("MARKETPLACE_EXPORTER_DEPLOY_TOKEN", TOKEN)
    return await aiohttp_client(make_app("{}\n"))


async def _metrics(client: TestClient[Any, Any]) -> str:
    response = await client.get("/metrics")
    return str(await response.text())


async def test_a_marker_with_the_token_is_recorded(client: TestClient[Any, Any]) -> None:
    response = await client.post("/api/v1/deploys", json={**MARKER, "commit": "9f8e7d6c", "status": "started"},
                                 headers=AUTH)
    assert response.status == 201
    body = await response.json()
    assert body["deploy"]["id"] == 1 and body["deploy"]["status"] == "started"
    assert body["freeze"] is None and body["warnings"] == []
    assert body["deploy"]["remote_addr"] == "127.0.0.1"
    stored = client.app[DEPLOY_LOG].latest("listing-sync", "production")
    assert stored is not None and stored.commit == "9f8e7d6c"


@pytest.mark.parametrize(("headers", "error"), [
    ({}, "missing Bearer token"),
    ({"Authorization": "Bearer wrong-token"}, "invalid Bearer token"),
    ({"Authorization": f"Basic {TOKEN}"}, "missing Bearer token"),
    ({"Authorization": f"Bearer {TOKEN}x"}, "invalid Bearer token"),
])
async def test_without_the_right_token_nothing_is_written_or_read(client: TestClient[Any, Any],
                                                                 headers: dict[str, str], error: str) -> None:
    response = await client.post("/api/v1/deploys", json=MARKER, headers=headers)
    assert response.status == 401
    assert "Bearer" in response.headers["WWW-Authenticate"]
    text = await response.text()
    assert error in text and TOKEN not in text
    assert (await client.get("/api/v1/deploys", headers=headers)).status == 401
    assert client.app[DEPLOY_LOG].count() == 0


async def test_no_token_configured_means_503_not_anonymous(make_app: Callable[[str], web.Application],
                                                          aiohttp_client: ClientFactory,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MARKETPLACE_EXPORTER_DEPLOY_TOKEN", raising=False)
    client = await aiohttp_client(make_app("{}\n"))
    response = await client.post("/api/v1/deploys", json=MARKER)
    assert response.status == 503
    assert "MARKETPLACE_EXPORTER_DEPLOY_TOKEN" in (await response.json())["error"]


async def test_the_token_variable_is_configurable(make_app: Callable[[str], web.Application],
                                                 aiohttp_client: ClientFactory,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETPLACE_EXPORTER_DEPLOY_TOKEN", TOKEN)
    monkeypatch.setenv("TEAM_DEPLOY_TOKEN", "other-token")
    client = await aiohttp_client(make_app("deploys: {token_env: TEAM_DEPLOY_TOKEN}\n"))
    assert (await client.post("/api/v1/deploys", json=MARKER, headers=AUTH)).status == 401
    response = await client.post("/api/v1/deploys", json=MARKER, headers={"Authorization": "Bearer other-token"})
    assert response.status == 201


async def test_loopback_anonymous_writes_only_while_no_token_is_set(make_app: Callable[[str], web.Application],
                                                                   aiohttp_client: ClientFactory,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MARKETPLACE_EXPORTER_DEPLOY_TOKEN", raising=False)
    client = await aiohttp_client(make_app("deploys: {anonymous_writes: loopback}\n"))
    assert (await client.post("/api/v1/deploys", json=MARKER)).status == 201
    monkeypatch.setenv("MARKETPLACE_EXPORTER_DEPLOY_TOKEN", TOKEN)  # the demo uses the token once it is set
    assert (await client.post("/api/v1/deploys", json=MARKER)).status == 401
    assert (await client.post("/api/v1/deploys", json=MARKER, headers=AUTH)).status == 201


def test_only_loopback_addresses_count_as_local() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("127.8.9.10")
    assert not is_loopback("10.0.0.1") and not is_loopback(None) and not is_loopback("unix-socket")


@pytest.mark.parametrize(("body", "field"), [
    ({"environment": "production", "version": "v1"}, "service"),
    ({"service": "listing-sync", "version": "v1"}, "environment"),
    ({"service": "listing-sync", "environment": "production"}, "version"),
    ({**MARKER, "status": "deployed"}, "status"),
    ({**MARKER, "timestamp": "last tuesday"}, "timestamp"),
    ({**MARKER, "timestamp": 4_102_444_800}, "timestamp"),  # 2100-01-01: in the future
    ({**MARKER, "timestamp": 1_764_000_000_000}, "timestamp"),  # milliseconds
    ({**MARKER, "service": "listing sync!"}, "service"),
    ({**MARKER, "colour": "blue"}, "colour"),
])
async def test_validation_errors_name_the_field(client: TestClient[Any, Any], body: dict[str, Any],
                                                field: str) -> None:
    response = await client.post("/api/v1/deploys", json=body, headers=AUTH)
    assert response.status == 400
    assert (await response.json())["field"] == field
    assert client.app[DEPLOY_LOG].count() == 0


async def test_a_body_that_is_not_json_is_400(client: TestClient[Any, Any]) -> None:
    response = await client.post("/api/v1/deploys", data=b"service=listing-sync", headers=AUTH)
    assert response.status == 400
    assert "not valid UTF-8 JSON" in (await response.json())["error"]


async def test_an_oversized_body_is_413_and_not_recorded(client: TestClient[Any, Any]) -> None:
    huge = {**MARKER, "notes": "x" * (70 * 1024)}
    response = await client.post("/api/v1/deploys", json=huge, headers=AUTH)
    assert response.status == 413
    assert client.app[DEPLOY_LOG].count() == 0


async def test_concurrent_marks_are_all_recorded_and_counted(client: TestClient[Any, Any]) -> None:
    responses = await asyncio.gather(*(
        client.post("/api/v1/deploys", json={**MARKER, "version": f"v{i}"}, headers=AUTH) for i in range(40)))
    assert [response.status for response in responses] == [201] * 40
    ids = {(await response.json())["deploy"]["id"] for response in responses}
    assert ids == set(range(1, 41))
    assert ('marketplace_deploys_total{environment="production",service="listing-sync",status="succeeded"} 40.0'
            in await _metrics(client))


async def test_list_pages_newest_first_with_filters(client: TestClient[Any, Any]) -> None:
    for index in range(5):
        await client.post("/api/v1/deploys", json={**MARKER, "version": f"v{index}"}, headers=AUTH)
    await client.post("/api/v1/deploys", json={**MARKER, "environment": "staging"}, headers=AUTH)

    seen: list[str] = []
    params: dict[str, str] = {"environment": "production", "limit": "2"}
    while True:
        page = await (await client.get("/api/v1/deploys", params=params, headers=AUTH)).json()
        seen += [deploy["version"] for deploy in page["deploys"]]
        if page["next_before"] is None:
            break
        params["before"] = str(page["next_before"])
    assert seen == ["v4", "v3", "v2", "v1", "v0"]
    everything = await (await client.get("/api/v1/deploys", headers=AUTH)).json()
    assert len(everything["deploys"]) == 6 and everything["next_before"] is None
    future = await (await client.get("/api/v1/deploys", params={"since": "2100-01-01T00:00:00Z"},
                                     headers=AUTH)).json()
    assert future["deploys"] == []


@pytest.mark.parametrize(("params", "field"), [
    ({"since": "yesterday"}, "since"), ({"since": "2026-11-01T00:00:00"}, "since"), ({"since": "nan"}, "since"),
    ({"limit": "0"}, "limit"), ({"limit": "5000"}, "limit"), ({"before": "-3"}, "before"),
    ({"service": "s" * 64}, "service"),
])
async def test_bad_list_parameters_name_the_field(client: TestClient[Any, Any], params: dict[str, str],
                                                  field: str) -> None:
    response = await client.get("/api/v1/deploys", params=params, headers=AUTH)
    assert response.status == 400 and (await response.json())["field"] == field


async def test_a_marker_inside_a_freeze_is_recorded_and_flagged(make_app: Callable[[str], web.Application],
                                                               aiohttp_client: ClientFactory,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETPLACE_EXPORTER_DEPLOY_TOKEN", TOKEN)
    client = await aiohttp_client(make_app(_freeze_yaml("block")))
    response = await client.post("/api/v1/deploys", json=MARKER, headers=AUTH)
    assert response.status == 201
    body = await response.json()
    assert body["freeze"]["name"] == "double-11" and body["freeze"]["policy"] == "block"
    assert body["deploy"]["freeze"] == "double-11" and body["deploy"]["freeze_policy"] == "block"
    assert "verify gate will fail" in body["warnings"][0]
    staging = await (await client.post("/api/v1/deploys", json={**MARKER, "environment": "staging"},
                                       headers=AUTH)).json()
    assert staging["freeze"] is None and staging["deploy"]["freeze"] is None
    metrics = await _metrics(client)
    assert 'marketplace_deploy_freeze_active{environment="production"} 1.0' in metrics
    assert 'marketplace_deploy_freeze_active{environment="staging"} 0.0' in metrics
    assert 'marketplace_deploys_in_freeze_total{environment="production",service="listing-sync"} 1.0' in metrics
    assert 'marketplace_deploys_in_freeze_total{environment="staging",service="listing-sync"} 0.0' in metrics


async def test_freeze_windows_follow_a_config_reload(make_app: Callable[[str], web.Application],
                                                    aiohttp_client: ClientFactory, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETPLACE_EXPORTER_DEPLOY_TOKEN", TOKEN)
    client = await aiohttp_client(make_app("{}\n"))
    assert 'marketplace_deploy_freeze_active{environment="production"}' not in await _metrics(client)
    (tmp_path / "config.yml").write_text(_freeze_yaml("warn"))
    assert reload_config(client.app)[0]
    assert [window.name for window in client.app[DEPLOYS].windows] == ["double-11"]
    body = await (await client.post("/api/v1/deploys", json=MARKER, headers=AUTH)).json()
    assert body["freeze"]["policy"] == "warn" and "verify gate" not in body["warnings"][0]
    assert 'marketplace_deploy_freeze_active{environment="production"} 1.0' in await _metrics(client)


async def test_metrics_show_the_latest_deploy_per_target(client: TestClient[Any, Any]) -> None:
    for status, version in (("started", "v1"), ("succeeded", "v1"), ("started", "v2"), ("rolled_back", "v2")):
        await client.post("/api/v1/deploys", json={**MARKER, "version": version, "status": status,
                                                   "commit": "abcd1234"}, headers=AUTH)
    metrics = await _metrics(client)
    info = [line for line in metrics.splitlines() if line.startswith("marketplace_deploy_info{")]
    assert info == ['marketplace_deploy_info{commit="abcd1234",environment="production",service="listing-sync",'
                    'version="v2"} 1.0']
    assert 'marketplace_deploys_total{environment="production",service="listing-sync",status="started"} 2.0' in metrics
    assert 'marketplace_deploys_total{environment="production",service="listing-sync",status="failed"} 0.0' in metrics
    assert ('marketplace_deploy_timestamp_seconds{environment="production",service="listing-sync",'
            'status="rolled_back"}') in metrics


async def test_start_up_says_what_will_not_work(make_app: Callable[[str], web.Application],
                                               aiohttp_client: ClientFactory, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("MARKETPLACE_EXPORTER_DEPLOY_TOKEN", raising=False)
    monkeypatch.delenv("UNSET_GRAFANA_KEY", raising=False)
    config = "deploys:\n  grafana: {url: 'http://127.0.0.1:9', api_key: '${UNSET_GRAFANA_KEY}'}\n"
    await aiohttp_client(make_app(config))
    assert "MARKETPLACE_EXPORTER_DEPLOY_TOKEN is not set, so POST/GET /api/v1/deploys answer 503" in caplog.text
    assert "deploys.grafana.api_key: environment variable UNSET_GRAFANA_KEY is not set" in caplog.text
