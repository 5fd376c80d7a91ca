"""The bridge end to end in one process: real HTTP over loopback from an Alertmanager-style client
to the bridge, a real SQLite outbox, and fake robots that verify signatures, formats and limits."""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from fake_robots import FakeRobots, Robot

from marketplace_exporter.bridge import cli as bridge_cli
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


@pytest.fixture
async def robots(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeRobots]:
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


@pytest.fixture
async def start_bridge(tmp_path: Path, robots: FakeRobots) -> AsyncIterator[Start]:
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


@pytest.mark.parametrize(("receiver", "kind", "expected"), [
    ("ding", "dingtalk", "**[告警] DiskFull**"),
    ("wecom", "wecom", '**[<font color="warning">告警</font>] DiskFull**'),
    ("feishu", "feishu", "**[FIRING] DiskFull**"),
    ("hook", "webhook", "**[告警] DiskFull**"),
])
async def test_each_channel_delivers_a_message_its_robot_accepts(
        start_bridge: Start, robots: FakeRobots, receiver: str, kind: str, expected: str) -> None:
    client = await start_bridge()
    status, answer = await post(client, receiver, am_payload("DiskFull"))
    assert (status, answer["status"]) == (200, "queued")
    await robots.wait_for(lambda r: len(r.delivered(kind)) == 1)
    (message,) = robots.delivered(kind)
    assert expected in message.text
    assert [r.code for r in robots.received] == [0]  # signature, format and size were all accepted
    await asyncio.sleep(0.05)
    assert await metric(client, "marketplace_bridge_notifications_total", receiver=receiver, channel=kind) == 1
    assert await metric(client, "marketplace_bridge_queue_depth", receiver=receiver) == 0
    assert await metric(client, "marketplace_bridge_delivery_duration_seconds_count", receiver=receiver) == 1


async def test_resolved_follows_firing_in_order(start_bridge: Start, robots: FakeRobots) -> None:
    client = await start_bridge()
    await post(client, "ding", am_payload("DiskFull"))
    await post(client, "ding", am_payload("DiskFull", "resolved"))
    await robots.wait_for(lambda r: len(r.delivered()) == 2)
    assert ["告警" in m.title for m in robots.delivered()] == [True, False]
    assert "已恢复" in robots.delivered()[1].title


async def test_identical_resend_is_acknowledged_but_delivered_once(start_bridge: Start, robots: FakeRobots) -> None:
    client = await start_bridge()
    first = await post(client, "wecom", am_payload("DiskFull"))
    again = await post(client, "wecom", am_payload("DiskFull"))
    assert first[1]["status"] == "queued" and again == (200, {**first[1], "status": "duplicate"})
    await robots.wait_for(lambda r: len(r.delivered()) == 1)
    await asyncio.sleep(0.2)
    assert len(robots.received) == 1


async def test_wrong_signing_secret_is_permanent_loud_and_not_retried_forever(
        start_bridge: Start, robots: FakeRobots, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    client = await start_bridge(receivers=f"""\
  ding-bad:
    channel: dingtalk
    url: {{value: "{robots.url('dingtalk', DING.token)}"}}
    secret: {{value: wrong-secret-zz9y8x}}
    throttle_backoff: 100ms
""")
    caplog.set_level(logging.INFO)
    status, _ = await post(client, "ding-bad", am_payload("DiskFull"))
    assert status == 200
    await robots.wait_for(lambda r: len(r.received) == 2)
    await asyncio.sleep(0.4)
    assert [(r.code, r.status) for r in robots.received] == [(310000, 200), (310000, 200)]  # HTTP 200 is not success
    assert await metric(client, "marketplace_bridge_notification_failures_total", receiver="ding-bad",
                        reason="security") == 2
    assert await metric(client, "marketplace_bridge_notifications_total", receiver="ding-bad") == 0
    (row,) = history(tmp_path)
    assert (row["state"], row["message"]["code"]) == ("failed", "310000")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("REFUSED" in r.getMessage() for r in errors)
    assert any("NOT delivered" in r.getMessage() for r in errors)


async def test_throttle_codes_back_off_then_deliver_once(start_bridge: Start, robots: FakeRobots) -> None:
    client = await start_bridge()
    robots.fail("wecom", "throttle", count=2)
    await post(client, "wecom", am_payload("DiskFull"))
    await robots.wait_for(lambda r: len(r.delivered()) == 1)
    assert [r.code for r in robots.received] == [45009, 45009, 0]
    gaps = [b.at - a.at for a, b in zip(robots.received, robots.received[1:], strict=False)]
    assert all(gap >= 0.15 for gap in gaps)  # waited throttle_backoff (200ms), no hot loop
    assert await metric(client, "marketplace_bridge_notification_failures_total", receiver="wecom",
                        reason="throttled") == 2


async def test_robot_5xx_is_retried_with_backoff(start_bridge: Start, robots: FakeRobots) -> None:
    client = await start_bridge()
    robots.fail("feishu", "http_500", count=3)
    await post(client, "feishu", am_payload("DiskFull"))
    await robots.wait_for(lambda r: len(r.delivered()) == 1)
    assert [r.status for r in robots.received] == [500, 500, 500, 200]
    assert await metric(client, "marketplace_bridge_notification_failures_total", receiver="feishu",
                        reason="http") == 3


async def test_robot_down_then_up_gets_every_notification_once_in_order(
        start_bridge: Start, robots: FakeRobots) -> None:
    client = await start_bridge()
    port = robots.port
    await robots.stop()
    names = [f"Alert{i}" for i in range(6)]
    for name in names:
        assert (await post(client, "ding", am_payload(name)))[0] == 200
    deadline = time.monotonic() + 5
    while await metric(client, "marketplace_bridge_notification_failures_total", reason="transport") < 2:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert await metric(client, "marketplace_bridge_queue_depth", receiver="ding") == 6
    await robots.start(port)
    await robots.wait_for(lambda r: sum(m.text.count("**[告警]") for m in r.delivered()) >= 6)
    await asyncio.sleep(0.3)
    text = "".join(m.text for m in robots.delivered())
    positions = [text.index(f"**[告警] {name}**") for name in names]
    assert positions == sorted(positions)
    assert all(text.count(f"**[告警] {name}**") == 1 for name in names)
    assert await metric(client, "marketplace_bridge_queue_depth", receiver="ding") == 0


async def test_queued_notifications_are_merged_when_the_robot_limit_is_reached(
        start_bridge: Start, robots: FakeRobots) -> None:
    client = await start_bridge(receivers="""\
  slow:
    channel: webhook
    url: {value: "URL"}
    rate_limit: {per_minute: 20, per_second: 0.5}
""".replace("URL", robots.url("webhook", HOOK.token)))
    await post(client, "slow", am_payload("First"))
    await robots.wait_for(lambda r: len(r.delivered()) == 1)
    names = [f"Burst{i}" for i in range(4)]
    for name in names:  # arrive while the robot's window (1 per 2 s) is used up
        await post(client, "slow", am_payload(name))
    await robots.wait_for(lambda r: len(r.delivered()) == 2)
    first, merged = robots.delivered()
    assert "First" in first.text and "合并" not in first.text
    assert merged.title == "🔥 告警 Burst0 等（4 条）"
    assert "合并 4 条通知" in merged.text
    positions = [merged.text.index(f"**[告警] {name}**") for name in names]
    assert positions == sorted(positions)
    assert merged.at - first.at >= 1.5  # the limit held
    await asyncio.sleep(0.05)
    assert await metric(client, "marketplace_bridge_notifications_total", receiver="slow") == 2


async def test_a_merge_larger_than_the_byte_limit_leaves_the_rest_queued_for_the_next_message(
        start_bridge: Start, robots: FakeRobots) -> None:
    client = await start_bridge(receivers="""\
  small:
    channel: wecom
    url: ${TEST_WECOM_URL}
    rate_limit: {per_minute: 20, per_second: 0.5}
""")
    await post(client, "small", am_payload("First"))
    await robots.wait_for(lambda r: len(r.delivered()) == 1)
    names = [f"Storm{i:02d}" for i in range(12)]  # ~400 bytes each: more than one 4096-byte message
    for name in names:
        await post(client, "small", am_payload(name))
    await robots.wait_for(lambda r: sum(m.text.count("] Storm") for m in r.delivered()) >= 12, timeout=15)
    later = robots.delivered()[1:]
    assert len(later) >= 2
    assert all(len(m.text.encode()) <= 4096 for m in later)
    text = "".join(m.text for m in later)
    assert [text.count(f"] {name}**") for name in names] == [1] * 12
    positions = [text.index(f"] {name}**") for name in names]
    assert positions == sorted(positions)


@pytest.mark.parametrize(("receiver", "kind"), [("ding", "dingtalk"), ("wecom", "wecom"), ("feishu", "feishu")])
async def test_a_huge_group_is_cut_to_exactly_what_each_robot_accepts(
        start_bridge: Start, robots: FakeRobots, receiver: str, kind: str) -> None:
    client = await start_bridge(max_body=2_000_000)
    huge = am_payload("Storm", alerts=300)
    for index, item in enumerate(huge["alerts"]):
        item["annotations"]["summary_zh"] = f"第 {index} 个账号的令牌已过期，请在卖家中心重新授权。"
    huge["truncatedAlerts"] = 7
    assert (await post(client, receiver, huge))[0] == 200
    await robots.wait_for(lambda r: len(r.received) == 1)
    (message,) = robots.received
    assert message.code == 0, message.code  # not 460101 / 40058 / 9499: within the robot's byte limit
    limit = {"dingtalk": 20000, "wecom": 4096, "feishu": 20000}[kind]
    measured = len(message.text.encode()) if kind == "wecom" else message.size
    assert limit - 1000 < measured <= limit
    assert "截断了 7 条告警" in message.text or "truncated 7 more alerts" in message.text
    assert ("条告警未显示" in message.text) != ("more (message size limit)" in message.text)


async def test_a_burst_never_exceeds_feishus_five_a_second(start_bridge: Start, robots: FakeRobots) -> None:
    client = await start_bridge()
    receiver, count = "feishu", 12
    names = [f"Burst{i:02d}" for i in range(count)]
    for name in names:
        await post(client, receiver, am_payload(name))
    await robots.wait_for(lambda r: sum(m.text.count("] Burst") for m in r.delivered()) >= count, timeout=15)
    assert all(r.ok for r in robots.received)  # never 130101 / 11232
    text = "".join(m.text for m in robots.delivered())
    assert [text.count(f"] {name}**") for name in names] == [1] * count


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


async def test_robot_keyword_is_added_so_a_keyword_protected_robot_accepts_resolved_messages(
        start_bridge: Start, robots: FakeRobots) -> None:
    robots.robots.append(Robot("feishu", "feishu-keyword-hook-0123456789", None, "告警"))
    client = await start_bridge(receivers=f"""\
  guarded:
    channel: feishu
    url: {{value: "{robots.url('feishu', 'feishu-keyword-hook-0123456789')}"}}
    keyword: 告警
    language: en
  unguarded:
    channel: feishu
    url: {{value: "{robots.url('feishu', 'feishu-keyword-hook-0123456789')}"}}
    language: en
""")
    await post(client, "guarded", am_payload("DiskFull", "resolved"))
    await post(client, "unguarded", am_payload("DiskFull", "resolved"))
    await robots.wait_for(lambda r: len(r.received) == 2)
    codes = {r.title.startswith("告警"): r.code for r in robots.received}
    assert codes == {True: 0, False: 19024}


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
