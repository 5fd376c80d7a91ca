"""The bridge end to end in one process, its HTTP side: what Alertmanager gets back for bad requests
and unknown receivers, the fallback receiver, basic auth, reload over HTTP, secrets kept out of
every output, health and readiness, and the alerts-history CLI flags."""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import time
from pathlib import Path

import pytest
from bridge_harness import (
    AUTH,
    DING,
    SECRET_VALUES,
    Start,
    am_payload,
    history,
    metric,
    post,
    robots_fixture,  # noqa: F401  (the `robots` fixture)
    start_bridge_fixture,  # noqa: F401  (the `start_bridge` fixture)
)
from fake_robots import FakeRobots

from marketplace_exporter.bridge import cli as bridge_cli


async def test_bad_requests_get_the_status_alertmanager_needs(start_bridge: Start, robots: FakeRobots) -> None:
    client = await start_bridge()
    bad_json = await client.post("/alertmanager/ding", data=b"{not json", headers=AUTH)
    assert bad_json.status == 400
    wrong_shape = await client.post("/alertmanager/ding", json={"version": "4", "alerts": []}, headers=AUTH)
    assert wrong_shape.status == 400
    assert "groupKey" in (await wrong_shape.json())["error"]
    big = am_payload("Big")
    big["commonAnnotations"] = {"x": "告" * 10000}
    assert (await client.post("/alertmanager/ding", json=big, headers=AUTH)).status == 413
    assert (await client.post("/alertmanager/ding", json=am_payload("A"))).status == 401
    wrong = await client.post("/alertmanager/ding", json=am_payload("A"), headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401 and "Bearer" in wrong.headers["WWW-Authenticate"]
    await asyncio.sleep(0.1)
    assert robots.received == []


async def test_unknown_receiver_is_503_so_alertmanager_retries_and_it_is_counted(
        start_bridge: Start, robots: FakeRobots, caplog: pytest.LogCaptureFixture) -> None:
    client = await start_bridge()
    status, answer = await post(client, "typo-receiver", am_payload("DiskFull"))
    assert status == 503 and "typo-receiver" in answer["error"]
    assert await metric(client, "marketplace_bridge_notification_failures_total", receiver="_unknown",
                        reason="unknown_receiver") == 1
    assert any(r.levelno == logging.ERROR and "typo-receiver" in r.getMessage() for r in caplog.records)


async def test_a_url_without_receiver_is_also_503_not_a_silent_404(start_bridge: Start) -> None:
    client = await start_bridge()
    response = await client.post("/alertmanager", json=am_payload("DiskFull"), headers=AUTH)
    assert response.status == 503


async def test_unknown_receiver_goes_to_the_fallback_when_configured(start_bridge: Start, robots: FakeRobots) -> None:
    client = await start_bridge(extra="fallback_receiver: wecom")
    status, answer = await post(client, "typo-receiver", am_payload("DiskFull"))
    assert (status, answer["receiver"]) == (200, "wecom")
    await robots.wait_for(lambda r: len(r.delivered("wecom")) == 1)


async def test_basic_auth(start_bridge: Start, robots: FakeRobots, monkeypatch: pytest.MonkeyPatch,
                          tmp_path: Path) -> None:
    monkeypatch.setenv("TEST_BASIC_PASSWORD", "basic-pass-77")
    client = await start_bridge()
    path = tmp_path / "bridge.yml"
    path.write_text(path.read_text().replace("bearer_token: ${TEST_BRIDGE_TOKEN}",
                                             "basic: {username: am, password: '${TEST_BASIC_PASSWORD}'}"))
    assert (await client.post("/-/reload", headers=AUTH)).status == 200
    good = {"Authorization": "Basic " + base64.b64encode(b"am:basic-pass-77").decode()}
    bad = {"Authorization": "Basic " + base64.b64encode(b"am:nope").decode()}
    assert (await client.post("/alertmanager/hook", json=am_payload("A"), headers=good)).status == 200
    assert (await client.post("/alertmanager/hook", json=am_payload("B"), headers=bad)).status == 401
    assert (await client.post("/alertmanager/hook", json=am_payload("C"), headers=AUTH)).status == 401


async def test_reload_keeps_the_old_config_on_error_and_requeues_failed_after_a_fix(
        start_bridge: Start, robots: FakeRobots, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_DING_SECRET", "wrong-secret-zz9y8x")
    client = await start_bridge()
    await post(client, "ding", am_payload("DiskFull"))
    deadline = time.monotonic() + 5
    while not history(tmp_path) or history(tmp_path)[0]["state"] != "failed":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    config = tmp_path / "bridge.yml"
    good = config.read_text()
    config.write_text(good.replace("channel: wecom", "channel: pigeon"))
    bad = await client.post("/-/reload", headers=AUTH)
    assert bad.status == 400 and "receivers.wecom.channel" in await bad.text()
    assert (await post(client, "wecom", am_payload("StillWorks")))[0] == 200
    await robots.wait_for(lambda r: len(r.delivered("wecom")) == 1)
    monkeypatch.setenv("TEST_DING_SECRET", DING.secret or "")
    config.write_text(good.replace("throttle_backoff: 200ms\n    mentions", "throttle_backoff: 300ms\n    mentions"))
    assert (await client.post("/-/reload", headers=AUTH)).status == 200
    await robots.wait_for(lambda r: len(r.delivered("dingtalk")) == 1)
    assert history(tmp_path)[0]["state"] == "sent"


async def test_secrets_never_reach_logs_metrics_errors_history_or_the_database(
        start_bridge: Start, robots: FakeRobots, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    client = await start_bridge(receivers=f"""\
  ding-bad:
    channel: dingtalk
    url: {{value: "{robots.url('dingtalk', DING.token)}"}}
    secret: {{value: wrong-secret-zz9y8x}}
    throttle_backoff: 50ms
""")
    robots.fail("feishu", "disconnect", count=1)
    robots.fail("wecom", "http_500", count=1)
    answers = []
    for receiver in ("ding", "wecom", "feishu", "ding-bad", "nope"):
        response = await client.post(f"/alertmanager/{receiver}", json=am_payload("Leak"), headers=AUTH)
        answers.append(await response.text())
    answers.append(await (await client.post("/alertmanager/ding", data=b"[", headers=AUTH)).text())
    await robots.wait_for(lambda r: len(r.delivered()) == 3 and sum(1 for m in r.received if m.code == 310000) == 2)
    await asyncio.sleep(0.2)
    metrics = await (await client.get("/metrics")).text()
    page = await (await client.get("/")).text()
    args = argparse.Namespace(config_file=None, storage_path=str(tmp_path / "outbox.db"), since="1d",
                              receiver=[], format="json")
    assert bridge_cli._history(args) == 0
    args.format = "table"
    assert bridge_cli._history(args) == 0
    out = capsys.readouterr().out
    database = b"".join(p.read_bytes() for p in tmp_path.glob("outbox.db*"))
    haystacks = {"logs": caplog.text, "metrics": metrics, "page": page, "answers": "".join(answers),
                 "history": out}
    for value in SECRET_VALUES:
        for where, text in haystacks.items():
            assert value not in text, f"secret found in {where}"
        assert value.encode() not in database
    assert "Leak" in out and "failed" in out


async def test_health_and_readiness(start_bridge: Start) -> None:
    client = await start_bridge()
    assert (await client.get("/-/healthy")).status == 200
    assert (await client.get("/-/ready")).status == 200
    assert "ding" in await (await client.get("/")).text()


def test_alerts_history_cli_parses_its_flags() -> None:
    parser = argparse.ArgumentParser()
    bridge_cli.add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["alerts", "history", "--since", "2h", "--format", "json", "--storage.path", "x"])
    assert (args.since, args.format, args.storage_path) == ("2h", "json", "x")
