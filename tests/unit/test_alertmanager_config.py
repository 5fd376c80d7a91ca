"""The generated Alertmanager config: accepted by amtool, routes each alert to the right chats,
inhibits what a bigger alert makes redundant (a platform alert holds back its accounts' alerts),
keeps warnings quiet at night and never mutes a critical, sends the watchdog to the heartbeat only
and the bridge-down alert around the bridge. The last test runs the real Alertmanager against a
fake bridge (and a fake fallback webhook) to prove it does what the YAML claims."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiohttp import web
from conftest import free_port, require_binary

from marketplace_exporter.mixin import generate as generator
from marketplace_exporter.mixin.config import Fallback, QuietHours

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "alert-rules"
AM_CONFIG = RULES_DIR / "alertmanager.yml"


def _config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(AM_CONFIG.read_text(encoding="utf-8"))
    return data


def _alert_names() -> set[str]:
    rules = yaml.safe_load((RULES_DIR / "marketplace-alerts.yml").read_text(encoding="utf-8"))
    return {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}


def _routes(route: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield route
    for child in route.get("routes", []):
        yield from _routes(child)


def test_amtool_accepts_the_committed_config() -> None:
    amtool = require_binary("amtool")
    result = subprocess.run([amtool, "check-config", str(AM_CONFIG)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_amtool_accepts_the_test_profile(tmp_path: Path) -> None:
    amtool = require_binary("amtool")
    written = generator.write_profile(tmp_path, "test", "http://127.0.0.1:9")
    result = subprocess.run([amtool, "check-config", str(written["alertmanager.yml"])],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


ROUTE_CASES = [
    # critical: the on-call chat and the owning team's chat
    ({"alertname": "MarketplacePlatformFailing", "severity": "critical", "component": "platform",
      "marketplace": "amazon_sp"}, "oncall,team-amazon"),
    ({"alertname": "MarketplaceAuthFailing", "severity": "critical", "component": "probe",
      "marketplace": "shopee"}, "oncall,team-sea"),
    # one shop's token, an account not tagged critical: its owner only
    ({"alertname": "MarketplaceAuthFailing", "severity": "warning", "component": "probe",
      "marketplace": "shopee", "account": "my-main"}, "team-sea"),
    # the watchdog: the dead man's switch only, never a chat
    ({"alertname": "MarketplaceWatchdog", "severity": "none", "component": "meta"}, "heartbeat"),
    # the bridge being down: around the bridge (e-mail) AND the chats, in case only scraping broke
    ({"alertname": "MarketplaceAlertBridgeDown", "severity": "critical", "component": "bridge"},
     "bridge-down-fallback,oncall,platform"),
    ({"alertname": "MarketplaceErrorBudgetBurnFast", "severity": "critical", "component": "slo",
      "marketplace": "mercadolibre"}, "oncall,team-americas"),
    # warnings and info: only the team
    ({"alertname": "MarketplaceThrottled", "severity": "warning", "component": "probe",
      "marketplace": "walmart"}, "team-americas"),
    ({"alertname": "MarketplaceAPIDeprecationApproaching", "severity": "info", "component": "credential",
      "marketplace": "aliexpress"}, "team-aliexpress"),
    ({"alertname": "MarketplaceCredentialExpiringSoon", "severity": "warning", "component": "credential",
      "marketplace": "tiktok_shop"}, "team-sea"),
    ({"alertname": "MarketplaceCredentialExpiringSoon", "severity": "warning", "component": "credential",
      "marketplace": "ozon"}, "team-aliexpress"),
    ({"alertname": "MarketplaceAuthFailing", "severity": "critical", "component": "probe",
      "marketplace": "temu"}, "oncall,team-aliexpress"),
    ({"alertname": "MarketplaceThrottled", "severity": "warning", "component": "probe",
      "marketplace": "wish"}, "team-americas"),
    # exporter, bridge and deploy alerts carry no marketplace: the platform chat
    ({"alertname": "MarketplaceExporterDown", "severity": "critical", "component": "exporter"},
     "oncall,platform"),
    ({"alertname": "MarketplaceDeployFailed", "severity": "warning", "component": "deploy",
      "service": "erp-sync"}, "platform"),
    ({"alertname": "MarketplaceAlertBridgeBacklog", "severity": "warning", "component": "bridge"}, "platform"),
    # a marketplace no team claims (generic HTTP checks) and an alert nobody planned for: platform,
    # never dropped
    ({"alertname": "MarketplaceCheckFailing", "severity": "warning", "component": "probe",
      "marketplace": "http"}, "platform"),
    ({"alertname": "SomethingElse"}, "platform"),
]


def _case_id(value: object) -> str:
    return str(value.get("alertname")) if isinstance(value, dict) else str(value)


@pytest.mark.parametrize(("labels", "receivers"), ROUTE_CASES, ids=_case_id)
def test_amtool_routes(labels: dict[str, str], receivers: str) -> None:
    amtool = require_binary("amtool")
    args = [f"{k}={v}" for k, v in labels.items()]
    result = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={AM_CONFIG}", f"--verify.receivers={receivers}", *args],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{labels} went to {result.stdout.strip()!r}, expected {receivers!r}"
    assert result.stdout.strip() == receivers


def test_every_team_marketplace_is_one_the_exporter_knows() -> None:
    from marketplace_exporter.adapters import ADAPTERS
    teams = [r for r in _config()["route"]["routes"] if r.get("receiver", "").startswith("team-")]
    claimed = [m for r in teams for m in r["matchers"][0].split('"')[1].split("|")]
    assert len(claimed) == len(set(claimed)), "a marketplace belongs to two teams"
    assert set(claimed) <= set(ADAPTERS)
    assert set(ADAPTERS) - set(claimed) == {"http"}


def test_only_warnings_and_info_are_muted_and_only_in_quiet_hours() -> None:
    config = _config()
    muted = [r for r in _routes(config["route"]) if "mute_time_intervals" in r]
    assert muted
    for route in muted:
        assert route["matchers"] == ['severity=~"info|warning"'], route
        assert route["mute_time_intervals"] == ["quiet-hours"]
    [quiet] = config["time_intervals"]
    assert quiet["name"] == "quiet-hours"
    assert quiet["time_intervals"] == [{
        "times": [{"start_time": "22:00", "end_time": "24:00"}, {"start_time": "00:00", "end_time": "08:00"}],
        "location": "Asia/Shanghai",
    }]


def test_every_receiver_posts_to_its_own_bridge_path_and_sends_resolved() -> None:
    config = _config()
    used = {r.get("receiver") for r in _routes(config["route"])} - {None}
    names = {r["name"] for r in config["receivers"]}
    assert used == names
    around = {"heartbeat", "bridge-down-fallback"}  # the two receivers that must NOT need the bridge
    for receiver in config["receivers"]:
        if receiver["name"] in around:
            urls = [h["url"] for h in receiver.get("webhook_configs", [])]
            assert all("bridge" not in url for url in urls), receiver
            continue
        [hook] = receiver["webhook_configs"]
        assert hook["url"] == f"http://bridge:9762/alertmanager/{receiver['name']}"
        assert hook["send_resolved"] is True
        assert 0 < hook["max_alerts"] <= 100
        # the bridge requires a bearer token; only the file's path is in the config
        assert hook["http_config"] == {"authorization": {
            "type": "Bearer", "credentials_file": "/etc/alertmanager/bridge-token"}}


def test_timers_suit_chat_robots_limited_to_20_messages_a_minute() -> None:
    route = _config()["route"]
    assert route["group_by"] == ["alertname", "marketplace", "site"]
    assert route["group_wait"] == "30s" and route["group_interval"] == "5m"
    assert route["repeat_interval"] == "4h"
    critical = [r for r in _routes(route) if r.get("matchers") == ['severity="critical"']]
    assert critical and all(r["group_wait"] == "10s" and r["repeat_interval"] == "1h" for r in critical)


def test_inhibitions_name_real_alerts() -> None:
    names = _alert_names()
    for rule in _config()["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            if matcher.startswith("alertname"):
                for name in matcher.split('"')[1].split("|"):
                    assert name in names, f"inhibit rule names unknown alert {name}"


def test_platform_alert_mutes_its_accounts_and_exporter_down_mutes_what_it_feeds() -> None:
    rules = {r["source_matchers"][0]: r for r in _config()["inhibit_rules"]}
    platform = rules['alertname="MarketplacePlatformFailing"']
    assert platform["equal"] == ["marketplace"]
    muted = platform["target_matchers"][0].split('"')[1].split("|")
    assert {"MarketplaceCheckFailing", "MarketplaceAuthFailing", "MarketplaceErrorBudgetBurnFast"} <= set(muted)
    assert not any("Credential" in name for name in muted)  # an expiring token is no platform matter
    exporter = rules['alertname="MarketplaceExporterDown"']
    assert exporter["equal"] == ["instance"]
    assert exporter["target_matchers"] == ['component=~"credential|exporter|probe"',
                                           'alertname!="MarketplaceExporterDown"']
    slo = rules['alertname="MarketplaceErrorBudgetBurnFast"']
    assert slo["target_matchers"] == ['alertname="MarketplaceErrorBudgetBurnSlow"']
    assert slo["equal"] == ["marketplace"]


# --- the real Alertmanager, with a fake bridge ----------------------------------------------------------

BRIDGE_TOKEN = "test-bridge-token"


class FakeBridge:
    """Records every webhook Alertmanager posts, by receiver (the path after /alertmanager/).

    Like the real bridge it answers 401 without the right bearer token.
    """

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.unauthorized = 0

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {BRIDGE_TOKEN}":
            self.unauthorized += 1
            return web.json_response({"error": "unauthorized"}, status=401)
        self.posts.append((request.match_info["receiver"], await request.json()))
        return web.json_response({"status": "queued"})

    async def fallback(self, request: web.Request) -> web.Response:
        """Another system's webhook (an SMS gateway, say): no bridge token expected."""
        self.posts.append(("fallback", await request.json()))
        return web.json_response({"status": "ok"})

    def delivered(self) -> set[tuple[str, str, str]]:
        """(receiver, alertname, marketplace or instance) of every firing alert delivered."""
        return {(receiver, a["labels"]["alertname"], a["labels"].get("marketplace") or a["labels"].get("instance", ""))
                for receiver, payload in self.posts for a in payload["alerts"] if a["status"] == "firing"}


@pytest.fixture
async def fake_bridge() -> AsyncIterator[tuple[FakeBridge, str]]:
    bridge = FakeBridge()
    app = web.Application()
    app.router.add_post("/alertmanager/{receiver}", bridge.handle)
    app.router.add_post("/fallback", bridge.fallback)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield bridge, f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def _alert(name: str, severity: str, component: str, **labels: str) -> dict[str, Any]:
    return {"labels": {"alertname": name, "severity": severity, "component": component, **labels},
            "annotations": {"summary": name}}


async def test_real_alertmanager_inhibits_and_keeps_warnings_quiet(
        tmp_path: Path, fake_bridge: tuple[FakeBridge, str]) -> None:
    binary = require_binary("prometheus-alertmanager")
    bridge, bridge_url = fake_bridge
    # quiet hours all day long, so the test does not depend on the time it runs
    token_file = tmp_path / "bridge-token"
    token_file.write_text(BRIDGE_TOKEN + "\n", encoding="utf-8")
    cfg = generator.profile_config("test", bridge_url, str(token_file))
    all_day = QuietHours(times=(("00:00", "24:00"),))
    # the bridge-down fallback: a webhook of "another system" (here the fake's /fallback path)
    fallback = Fallback(email_to=None, webhook_url=f"{bridge_url}/fallback")
    cfg = replace(cfg, routing=replace(cfg.routing, quiet_hours=all_day, fallback=fallback, heartbeat=None))
    config = tmp_path / "alertmanager.yml"
    config.write_text(generator.render_files(cfg)["alertmanager.yml"], encoding="utf-8")
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if (await client.get("/-/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "alertmanager did not become ready"
                await asyncio.sleep(0.2)
            alerts = [
                _alert("MarketplacePlatformFailing", "critical", "platform", marketplace="amazon_sp"),
                # muted by the platform alert of the same marketplace
                _alert("MarketplaceCheckFailing", "critical", "probe", marketplace="amazon_sp", site="us",
                       check="orders", instance="exporter:9761"),
                # another marketplace: not muted
                _alert("MarketplaceCheckFailing", "critical", "probe", marketplace="walmart", site="us",
                       check="items", instance="exporter-eu:9761"),
                # muted by quiet hours (a warning)
                _alert("MarketplaceThrottled", "warning", "probe", marketplace="shopee", site="sg",
                       instance="exporter:9761"),
                _alert("MarketplaceExporterDown", "critical", "exporter", instance="exporter-b:9761",
                       job="marketplace-exporter"),
                # fed by the exporter that is down: muted
                _alert("MarketplaceAuthFailing", "critical", "probe", marketplace="lazada", site="my",
                       instance="exporter-b:9761"),
                _alert("MarketplaceErrorBudgetBurnFast", "critical", "slo", marketplace="ebay", long_window="1h"),
                # the page covers the ticket of the same marketplace
                _alert("MarketplaceErrorBudgetBurnSlow", "warning", "slo", marketplace="ebay", long_window="1d"),
                _alert("MarketplaceAlertBridgeDown", "critical", "bridge", instance="bridge:9762"),
                # a critical, so only the inhibition by the bridge-down alert keeps it quiet
                _alert("MarketplaceAlertBridgeDeliveryFailing", "critical", "bridge", instance="bridge:9762",
                       receiver="team-sea", channel="wecom"),
            ]
            assert (await client.post("/api/v2/alerts", json=alerts)).status_code == 200
            expected = {
                ("oncall", "MarketplacePlatformFailing", "amazon_sp"),
                ("team-amazon", "MarketplacePlatformFailing", "amazon_sp"),
                ("oncall", "MarketplaceCheckFailing", "walmart"),
                ("team-americas", "MarketplaceCheckFailing", "walmart"),
                ("oncall", "MarketplaceExporterDown", "exporter-b:9761"),
                ("platform", "MarketplaceExporterDown", "exporter-b:9761"),
                ("oncall", "MarketplaceErrorBudgetBurnFast", "ebay"),
                ("team-americas", "MarketplaceErrorBudgetBurnFast", "ebay"),
                ("oncall", "MarketplaceAlertBridgeDown", "bridge:9762"),
                ("platform", "MarketplaceAlertBridgeDown", "bridge:9762"),
                # around the bridge: the fallback webhook (no bridge token, another system)
                ("fallback", "MarketplaceAlertBridgeDown", "bridge:9762"),
            }
            deadline = time.monotonic() + 30
            while not expected <= bridge.delivered():
                assert time.monotonic() < deadline, f"delivered only {sorted(bridge.delivered())}"
                await asyncio.sleep(0.2)
            await asyncio.sleep(3)  # the muted groups flush at the same time (group_wait 1s): give them a chance
            assert bridge.delivered() == expected
            assert bridge.unauthorized == 0
            status = {(a["labels"]["alertname"], a["labels"].get("marketplace", "")): a["status"]
                      for a in (await client.get("/api/v2/alerts")).json()}
            assert status[("MarketplaceCheckFailing", "amazon_sp")]["inhibitedBy"]
            assert not status[("MarketplaceCheckFailing", "walmart")]["inhibitedBy"]
            assert status[("MarketplaceAuthFailing", "lazada")]["inhibitedBy"]
            assert status[("MarketplaceErrorBudgetBurnSlow", "ebay")]["inhibitedBy"]
            assert status[("MarketplaceAlertBridgeDeliveryFailing", "")]["inhibitedBy"]
            assert not status[("MarketplaceThrottled", "shopee")]["inhibitedBy"]  # muted by the hour, not inhibited
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
