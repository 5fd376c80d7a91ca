"""The bridge's write paths locked (issue 14), over real HTTP on loopback with the fake robots that
check signatures, formats and byte limits. Each test reproduces a failure of f014b6e:

* a bridge.yml without ``auth`` accepted anyone's webhooks, silently (anonymous posts reached
  DingTalk); ``POST /-/reload`` needed nothing;
* a non-UTF-8 ``Authorization`` header and a JSON integer over 4,300 digits were a 500 with a
  traceback, which Alertmanager retries forever (a payload that can never succeed must be a 400);
* label values reached Feishu (``<at id=all></at>``) and WeCom (``<@all>``) raw;
* 3,000 DingTalk mentions built a 42 KB body the robot refused: the alert never arrived.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from bridge_harness import (
    AUTH,
    Start,
    am_payload,
    post,
    robots_fixture,  # noqa: F401  (the `robots` fixture)
    start_bridge_fixture,  # noqa: F401  (the `start_bridge` fixture)
)
from conftest import raw_http_request
from fake_robots import FakeRobots

from marketplace_exporter.bridge.config import load_bridge_config
from marketplace_exporter.cli import main
from marketplace_exporter.config.yaml_loading import ConfigError

RECEIVER = "receivers:\n  hook: {channel: webhook, url: {value: 'http://127.0.0.1:9/hook'}}\n"


def test_credentials_are_required_unless_anonymity_is_asked_for(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as caught:
        load_bridge_config(tmp_path / "bridge.yml", text=RECEIVER)
    assert caught.value.errors == [
        f"{tmp_path / 'bridge.yml'}:1: auth: expected bearer_token or basic (what Alertmanager's webhook_configs "
        "send with http_config.authorization / basic_auth), or anonymous: true to accept webhooks from anyone who "
        "can reach the bridge"]
    with pytest.raises(ConfigError, match="auth.anonymous: expected no anonymous: true next to credentials"):
        load_bridge_config(tmp_path / "bridge.yml",
                           text="auth:\n  bearer_token: {value: t0k}\n  anonymous: true\n" + RECEIVER)
    path = tmp_path / "bridge.yml"
    path.write_text("auth: {anonymous: true}\n" + RECEIVER)
    monkeypatch.setattr("marketplace_exporter.cli.setup_logging", lambda *_: None)
    assert main(["bridge", f"--config.file={path}", "--check"]) == 0
    assert "webhooks accepted from ANYONE (auth.anonymous: true)" in capsys.readouterr().out


async def test_an_anonymous_bridge_says_so_loudly_at_start_and_reload(
        start_bridge: Start, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "marketplace_exporter.bridge")
    client = await start_bridge()
    path = tmp_path / "bridge.yml"
    path.write_text(path.read_text().replace("bearer_token: ${TEST_BRIDGE_TOKEN}", "anonymous: true"))
    assert not [r for r in caplog.records if "ANYONE" in r.getMessage()]
    assert (await client.post("/-/reload", headers=AUTH)).status == 200
    assert (await client.post("/alertmanager/hook", json=am_payload("Open"))).status == 200
    assert [r.levelname for r in caplog.records if "auth.anonymous: true: ANYONE" in r.getMessage()] == ["WARNING"]


async def test_reload_needs_the_webhook_credentials(start_bridge: Start) -> None:
    client = await start_bridge()
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = await client.post("/-/reload", headers=headers)
        assert response.status == 401 and "Bearer" in response.headers["WWW-Authenticate"]
    assert (await client.post("/-/reload", headers=AUTH)).status == 200


@pytest.mark.parametrize("route", ["/alertmanager/hook", "/-/reload"])
async def test_an_authorization_header_that_is_not_utf8_is_400(start_bridge: Start, route: str) -> None:
    client = await start_bridge()
    assert client.port is not None
    head = (f"POST {route} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Authorization: Bearer ").encode() + b"\xff\xfe" + b"\r\n"
    status, body = await raw_http_request(client.port, head, json.dumps(am_payload("X")).encode())
    assert (status, json.loads(body)) == (400, {"error": "the Authorization header is not UTF-8 text"})


async def test_a_payload_that_can_never_succeed_is_400_so_alertmanager_stops_retrying(
        start_bridge: Start) -> None:
    client = await start_bridge()
    body = json.dumps(am_payload("Big")).replace('"truncatedAlerts": 0', '"truncatedAlerts": ' + "9" * 5000)
    response = await client.post("/alertmanager/hook", data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status == 400
    assert (await response.json())["error"].startswith("body is not usable JSON: Exceeds the limit (4300 digits)")


INJECTED = {"account": "<at id=all></at>", "shop": "<@all>", "owner": "@13800000000",
            "note": "[click](http://evil.example/)"}


async def test_label_values_cannot_mention_anyone_in_feishu_wecom_or_dingtalk(
        start_bridge: Start, robots: FakeRobots) -> None:
    client = await start_bridge()
    for receiver in ("feishu", "wecom", "ding"):
        payload = am_payload(f"Inject-{receiver}")
        payload["alerts"][0]["labels"].update(INJECTED, feishu_at_user_ids="all,ou_intruder",
                                              wecom_mentions="@all", dingtalk_at_mobiles="13900000000")
        payload["alerts"][0]["annotations"]["summary"] = "see <at id=all></at> and <@all>"
        payload["alerts"][0]["annotations"]["runbook_url"] = "http://wiki/x)<at id=all></at>"
        assert (await post(client, receiver, payload))[0] == 200
    await robots.wait_for(lambda r: len([m for m in r.delivered() if "Inject" in m.text]) == 3)
    for message in [m for m in robots.delivered() if "Inject" in m.text]:
        raw = json.dumps(message.body, ensure_ascii=False)
        # no mention markup at all: none of these receivers configures anyone, and labels may not
        assert "<at" not in raw and "<@" not in raw and "@13900000000" not in raw, raw
        assert "＜at id=all＞＜/at＞" in message.text  # shown, not interpreted
        assert "[click](http" not in message.text
        assert "(http://wiki/x%29%3Cat%20id=all%3E%3C/at%3E)" in message.text  # the link cannot be closed early
        if message.kind == "dingtalk":
            assert message.body["at"] == {"atMobiles": ["13800000000"], "atUserIds": [], "isAtAll": False}


async def test_three_thousand_mentions_are_capped_and_the_alert_still_arrives(
        start_bridge: Start, robots: FakeRobots) -> None:
    people = [f"139{i:08d}" for i in range(3000)]
    allowed = "\n".join(f"        - '{person}'" for person in people)
    client = await start_bridge(max_body=200_000, receivers=f"""\
  crowd:
    channel: dingtalk
    url: ${{TEST_DING_URL}}
    secret: ${{TEST_DING_SECRET}}
    mentions:
      allowed_mobiles:
{allowed}
""")
    payload = am_payload("Crowd")
    payload["alerts"][0]["labels"]["dingtalk_at_mobiles"] = ",".join(people)
    assert (await post(client, "crowd", payload))[0] == 200
    await robots.wait_for(lambda r: any("Crowd" in m.title for m in r.received))
    message = next(m for m in robots.received if "Crowd" in m.title)
    assert message.ok and message.size <= 20000, (message.code, message.size)
    assert message.body["at"]["atMobiles"] == people[:20]
    assert message.text.rstrip().endswith("另有 2980 人未 @（每条消息最多 @ 20 人）")
