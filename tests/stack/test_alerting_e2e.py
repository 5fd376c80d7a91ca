"""End to end, with nothing mocked but the marketplaces and the chat robots: a simulator fault
makes the demo exporter's probes fail, a REAL Prometheus evaluates the GENERATED rules (test
profile: every ``for`` 10 s), a REAL Alertmanager routes with the GENERATED alertmanager.yml, the
bridge (its own process, SQLite outbox) posts to fake DingTalk, WeCom and Feishu robots that
check signatures, formats and byte limits. Then: a bridge SIGKILLed with notifications queued
loses none; the fault is cleared and "resolved" arrives; a robot that was down gets every
notification once when it is back; a 40-alert group reaches WeCom cut within its 4,096 bytes.

One module-scoped stack, scenarios in file order (each depends on the state the previous one
left). Faults: Shopee sg-main and Amazon us-main answer HTTP 500 (``server_error``), so
MarketplaceCheckFailing fires for both. The generated routing sends criticals to ``oncall`` (→
DingTalk here) and, with ``continue``, to the owning team: ``team-sea`` (Shopee → WeCom) and
``team-amazon`` (Amazon → Feishu); so all three robots get messages from the generated config
alone. The bridge.yml mapping receivers to robots is this test's deployment choice.

Timing (docs/alerting-e2e.md): a check fails 3 probes in a row (≤ 15.5 s at a 5 s interval), then
``for: 10s``, Alertmanager's 1 s group_wait: the first robot message comes ~20–30 s after the
fault. Every wait is a poll with a deadline that reports what each component said last.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from alerting_stack import (
    DINGTALK,
    FEISHU,
    MOBILE,
    RECEIVER_ROBOTS,
    ROBOT_SECRETS,
    RUNBOOK_BASE,
    WECOM,
    AlertingStack,
    Section,
    alert_annotations,
    sections,
)
from conftest import DemoExporter, local_client, require_binary
from fake_robots import DINGTALK_LIMIT, FEISHU_LIMIT, WECOM_MARKDOWN_LIMIT, Received

pytestmark = pytest.mark.stack

ALERT = "MarketplaceCheckFailing"
SHOPEE = {"marketplace": "shopee", "account": "sg-main", "site": "SG", "check": "get_shop_info"}
AMAZON = {"marketplace": "amazon_sp", "account": "us-main", "site": "US", "check": "marketplace_participations"}
#: fault → first robot message is ~25 s (3 failed 5 s probes + for 10 s); 60 s leaves room for a
#: loaded 2-core CI machine without hiding a broken chain for long
FIRING_TIMEOUT_S = 60.0
#: fault cleared → resolved: next probe (≤ 5.5 s), scrape + eval (2 s), group_interval (5 s)
RESOLVED_TIMEOUT_S = 30.0
#: a bridge retrying every ≤ 1 s delivers within a few seconds of the robot's return
REDELIVERY_TIMEOUT_S = 20.0


@dataclass
class Timeline:
    """What earlier scenarios did, for the later ones."""

    fault_at: float = 0.0
    bridge_killed_at: float = 0.0
    cleared_at: float = 0.0
    #: robot kind → (down since, back at)
    robot_down: dict[str, tuple[float, float]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def stack(demo_exporter: DemoExporter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlertingStack]:
    require_binary("amtool")
    alerting = AlertingStack(tmp_path_factory.mktemp("alerting-e2e"), demo_exporter.url, demo_exporter.sim_url,
                             require_binary)
    problems: list[str] = []
    try:
        alerting.start()
        yield alerting
    finally:
        try:
            demo_exporter.clear_faults()
        finally:
            problems = alerting.stop()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def timeline() -> Timeline:
    return Timeline()


def _one(found: list[Section], robot: str, state: str, labels: dict[str, str]) -> list[Section]:
    return [s for s in found if s.robot == robot and s.state == state and s.alertname == ALERT
            and s.labels.get("marketplace") == labels["marketplace"] and s.labels.get("account") == labels["account"]]


def _arrived(stack: AlertingStack, robot: str, state: str, labels: dict[str, str]) -> list[Section]:
    assert stack.robots is not None
    return _one(sections(stack.robots.received()), robot, state, labels)


def _history_rows(stack: AlertingStack, receiver: str, alertname: str, state: str) -> list[dict[str, Any]]:
    return [row for row in stack.history()
            if row["receiver"] == receiver and row["alertname"] == alertname and row["state"] == state]


# --- 0. the wiring ----------------------------------------------------------------------------

def test_generated_config_routes_to_all_three_robots(stack: AlertingStack) -> None:
    amtool = require_binary("amtool")
    am_config = stack.generated["alertmanager.yml"]
    checked = subprocess.run([amtool, "check-config", str(am_config)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    def routes(**labels: str) -> list[str]:
        done = subprocess.run([amtool, "config", "routes", "test", f"--config.file={am_config}",
                               *(f"{k}={v}" for k, v in labels.items())], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().split(",")

    shopee = routes(alertname=ALERT, severity="critical", component="probe", **SHOPEE)
    amazon = routes(alertname=ALERT, severity="critical", component="probe", **AMAZON)
    robots = {receiver: RECEIVER_ROBOTS[receiver].kind for receiver in shopee + amazon if receiver in RECEIVER_ROBOTS}
    assert shopee == ["oncall", "team-sea"] and amazon == ["oncall", "team-amazon"], (shopee, amazon)
    assert set(robots.values()) == {"dingtalk", "wecom", "feishu"}, robots

    rules = {rule["name"]: rule for group in stack.query_rules() for rule in group["rules"]}
    assert rules[ALERT]["duration"] == 10, "Prometheus did not load the test profile's rules"
    stack.wait_healthy([(SHOPEE["marketplace"], SHOPEE["account"]), (AMAZON["marketplace"], AMAZON["account"])])


# --- 1. fault → DingTalk and WeCom ------------------------------------------------------------

def test_fault_reaches_dingtalk_and_wecom_with_alert_content(stack: AlertingStack, timeline: Timeline) -> None:
    assert stack.robots is not None
    stack.wait_healthy([(SHOPEE["marketplace"], SHOPEE["account"]), (AMAZON["marketplace"], AMAZON["account"])])
    # Feishu is down from the start: Amazon's notifications pile up in the bridge for scenario 2
    stack.robots.fail(FEISHU, "http_500")
    timeline.fault_at = time.time()
    stack.inject_fault("shopee", "server_error", account=SHOPEE["account"])
    stack.inject_fault("amazon_sp", "server_error", account=AMAZON["account"])

    ding_shopee = stack.wait_for(f"DingTalk to get {ALERT} firing for shopee/sg-main",
                                 lambda: _arrived(stack, "dingtalk", "firing", SHOPEE), FIRING_TIMEOUT_S)[0]
    stack.wait_for(f"DingTalk to get {ALERT} firing for amazon_sp/us-main",
                   lambda: _arrived(stack, "dingtalk", "firing", AMAZON), FIRING_TIMEOUT_S)
    wecom_shopee = stack.wait_for(f"WeCom to get {ALERT} firing for shopee/sg-main",
                                  lambda: _arrived(stack, "wecom", "firing", SHOPEE), FIRING_TIMEOUT_S)[0]

    # the chat says what the generated rule says, in Chinese, with working links
    annotations = alert_annotations(stack.generated["marketplace-alerts.yml"], ALERT)
    for section in (ding_shopee, wecom_shopee):
        assert {k: section.labels.get(k) for k in SHOPEE} == SHOPEE, section.text
        assert f"摘要: {annotations['summary_zh']}" in section.text, section.text
        assert "sg-main（SG）检查项 get_shop_info" in section.text, section.text  # description_zh, templated
        assert f"{RUNBOOK_BASE}/{annotations['runbook_url']}" in section.text, section.text
        assert f"{stack.am_url}/#/silences/new?filter=" in section.text, section.text
    ding_message = next(m for m in stack.robots.received(DINGTALK) if m.ok and ding_shopee.text in m.text)
    assert ding_message.title == f"🔥 告警 {ALERT}", ding_message.title
    assert f"@{MOBILE}" in ding_message.text and MOBILE in ding_message.body["at"]["atMobiles"], ding_message.body
    assert '<font color="warning">告警</font>' in wecom_shopee.text

    # routing: Shopee never reaches the Amazon team's Feishu, Amazon never the SEA team's WeCom
    assert not _arrived(stack, "wecom", "firing", AMAZON)
    assert not [r for r in stack.robots.received(FEISHU) if "sg-main" in r.text]

    # the fake DingTalk checked the HMAC signature (and Feishu's, below): no request was refused
    # for a signature, a format or a size, and WeCom's markdown stayed within its 4,096 bytes
    for message in stack.robots.received(DINGTALK) + stack.robots.received(WECOM):
        assert message.ok, f"{message.kind} refused a message: code {message.code}, status {message.status}"
    for message in stack.robots.received(WECOM):
        assert len(message.text.encode("utf-8")) <= WECOM_MARKDOWN_LIMIT


# --- 2. bridge SIGKILLed with queued notifications --------------------------------------------

def test_bridge_killed_with_queued_notifications_delivers_them_after_restart(
        stack: AlertingStack, timeline: Timeline) -> None:
    assert stack.robots is not None
    queued = stack.wait_for(
        f"the bridge to hold {ALERT} for team-amazon queued (Feishu answers 500)",
        lambda: _history_rows(stack, "team-amazon", ALERT, "queued"), REDELIVERY_TIMEOUT_S)
    failed_attempts = [r for r in stack.robots.received(FEISHU) if r.status == 500]
    assert failed_attempts, "Feishu was never tried while it was down"
    assert stack.queue_depth("team-amazon") >= 1

    stack.kill_bridge()
    timeline.bridge_killed_at = time.time()
    stack.robots.clear()  # Feishu is back
    stack.restart_bridge()

    card_section = stack.wait_for(f"Feishu to get {ALERT} firing for amazon_sp/us-main after the bridge restarted",
                                  lambda: _arrived(stack, "feishu", "firing", AMAZON), REDELIVERY_TIMEOUT_S)[0]
    assert card_section.at > timeline.bridge_killed_at, "Feishu accepted it before the kill: nothing was queued"
    stack.wait_for("the bridge to drain team-amazon's queue",
                   lambda: not _history_rows(stack, "team-amazon", ALERT, "queued"), REDELIVERY_TIMEOUT_S)
    sent = [row for row in stack.history() if row["id"] in {q["id"] for q in queued}]
    assert [row["state"] for row in sent] == ["sent"] * len(queued), sent
    assert len(_arrived(stack, "feishu", "firing", AMAZON)) == 1, "delivered more than once after the restart"
    card = next(m for m in stack.robots.received(FEISHU) if m.ok and card_section.text in m.text)
    assert card.body["msg_type"] == "interactive" and card.body["card"]["header"]["template"] == "red", card.body
    assert len(card.body["sign"]) > 0 and card.size <= FEISHU_LIMIT


# --- 3. fault cleared → resolved ---------------------------------------------------------------

def test_fault_cleared_resolved_message_arrives(stack: AlertingStack, timeline: Timeline) -> None:
    assert stack.robots is not None
    # DingTalk is down while the resolved notifications come (scenario 4 checks it catches up)
    stack.robots.fail(DINGTALK, "http_500")
    timeline.robot_down["dingtalk"] = (time.time(), 0.0)
    stack.clear_faults()
    timeline.cleared_at = time.time()

    wecom = stack.wait_for(f"WeCom to get {ALERT} resolved for shopee/sg-main",
                           lambda: _arrived(stack, "wecom", "resolved", SHOPEE), RESOLVED_TIMEOUT_S)[0]
    feishu = stack.wait_for(f"Feishu to get {ALERT} resolved for amazon_sp/us-main",
                            lambda: _arrived(stack, "feishu", "resolved", AMAZON), RESOLVED_TIMEOUT_S)[0]
    for section, labels in ((wecom, SHOPEE), (feishu, AMAZON)):
        assert section.at > timeline.cleared_at
        assert {k: section.labels.get(k) for k in labels} == labels, section.text
        assert "结束: " in section.text, section.text  # the end time, in the receiver's time zone
        assert "silences/new" not in section.text  # no silence link for what is over
    card = next(m for m in stack.robots.received(FEISHU) if m.ok and feishu.text in m.text)
    assert card.title == f"✅ 已恢复 {ALERT}" and card.body["card"]["header"]["template"] == "green", card.body


# --- 4. robot down for a while, then back ------------------------------------------------------

def test_robot_down_then_back_gets_every_notification_once(stack: AlertingStack, timeline: Timeline) -> None:
    assert stack.robots is not None
    robots = stack.robots
    down_since = timeline.robot_down["dingtalk"][0]

    def waiting_while_down() -> bool:
        """Both resolved notifications sit in the bridge's queue for DingTalk, and DingTalk has
        refused at least 3 attempts (the worker sends oldest first, so the refused ones may be
        an older notification that is ahead of them in the queue)."""
        queued = [row for row in _history_rows(stack, "oncall", ALERT, "queued") if row["status"] == "resolved"]
        refused = [r for r in robots.received(DINGTALK) if r.status == 500 and r.at >= down_since]
        return len(queued) == 2 and len(refused) >= 3

    stack.wait_for(f"both {ALERT} resolved notifications queued for DingTalk while it answers 500 "
                   "(and 3 refused attempts)", waiting_while_down, RESOLVED_TIMEOUT_S)
    robots.clear()
    timeline.robot_down["dingtalk"] = (timeline.robot_down["dingtalk"][0], time.time())

    for labels in (SHOPEE, AMAZON):
        stack.wait_for(f"DingTalk to get {ALERT} resolved for {labels['marketplace']}/{labels['account']}",
                       partial(_arrived, stack, "dingtalk", "resolved", labels),
                       REDELIVERY_TIMEOUT_S)
    stack.wait_for("every bridge queue to drain", lambda: all(
        row["state"] == "sent" for row in stack.history()), REDELIVERY_TIMEOUT_S)
    time.sleep(2.0)  # a late duplicate (a retry of something already accepted) would land now

    counts = Counter(s.key() for s in sections(robots.received()) if s.alertname == ALERT)
    expected = {
        (robot, state, ALERT, labels["marketplace"], labels["account"]): 1
        for state in ("firing", "resolved")
        for robot, labels in (("dingtalk", SHOPEE), ("dingtalk", AMAZON), ("wecom", SHOPEE), ("feishu", AMAZON))}
    assert dict(counts) == expected, f"each notification exactly once per robot; got {dict(counts)}"
    down_until = timeline.robot_down["dingtalk"][1]
    resolved = _arrived(stack, "dingtalk", "resolved", SHOPEE) + _arrived(stack, "dingtalk", "resolved", AMAZON)
    assert all(s.at >= down_until for s in resolved), "delivered while DingTalk was still down?"


# --- 5. a group too large for one WeCom message --------------------------------------------------

def test_group_too_large_for_wecom_is_cut_within_4096_bytes(stack: AlertingStack) -> None:
    """40 alerts in one Alertmanager group reach the SEA team's WeCom robot as ONE markdown message
    of at most 4,096 bytes that says how many alerts it could not show.

    The demo cannot make 40 Shopee checks fail in one site, so these alerts are posted to the real
    Alertmanager's API (as Prometheus would); routing, grouping and the bridge are the real ones.
    """
    assert stack.robots is not None
    now = datetime.now(UTC)
    alertname = "MarketplaceThrottled"  # a warning: team-sea only (quiet hours are off in the test profile)
    annotations = alert_annotations(stack.generated["marketplace-alerts.yml"], alertname)
    alerts = [{
        "labels": {"alertname": alertname, "severity": "warning", "component": "probe", "marketplace": "shopee",
                   "site": "SG", "account": f"sg-shop-{index:02d}", "check": "get_shop_info", "reason": "throttled",
                   "job": "marketplace-exporter"},
        "annotations": {**annotations, "description_zh": f"shopee/sg-shop-{index:02d}（SG）检查项 get_shop_info "
                                                         "最近 30m 内被限流 12 次：店铺授权下的调用额度已接近上限。"},
        "startsAt": (now - timedelta(minutes=3)).isoformat(), "endsAt": (now + timedelta(minutes=10)).isoformat(),
        "generatorURL": f"{stack.prom_url}/graph?g0.expr=x",
    } for index in range(40)]
    with local_client() as client:
        response = client.post(f"{stack.am_url}/api/v2/alerts", json=alerts)
    assert response.status_code == 200, response.text

    def accounted(message: Received) -> int:
        """Alerts a message shows plus those its "另有 N 条" footer says it left out."""
        shown = len([s for s in sections([message]) if s.alertname == alertname])
        footer = re.search(r"另有 (\d+) 条告警未显示", message.text)
        return shown + (int(footer.group(1)) if footer else 0)

    def wecom_message() -> list[Any]:
        # Alertmanager may notify before all 40 posted alerts joined the group (the test profile's
        # group_wait is short), then again with the whole group: wait for the message covering all 40
        if stack.robots is None:
            return []
        return [m for m in stack.robots.received(WECOM) if m.ok and alertname in m.text and accounted(m) == 40]

    message = stack.wait_for(f"WeCom to get the {alertname} group of 40 alerts", wecom_message, FIRING_TIMEOUT_S)[0]
    shown = len([s for s in sections([message]) if s.alertname == alertname])
    content = message.text.encode("utf-8")
    assert len(content) <= WECOM_MARKDOWN_LIMIT, len(content)
    assert len(content) > WECOM_MARKDOWN_LIMIT - 1000, f"cut far below the limit: {len(content)} bytes"
    assert 0 < shown < 40 and f"另有 {40 - shown} 条告警未显示" in message.text, message.text[-300:]
    assert not [s for s in sections(stack.robots.received()) if s.alertname == alertname and s.robot != "wecom"]

    with local_client() as client:  # resolve them again: the next scenario checks the whole run
        response = client.post(f"{stack.am_url}/api/v2/alerts",
                               json=[{**alert, "endsAt": datetime.now(UTC).isoformat()} for alert in alerts])
    assert response.status_code == 200, response.text


# --- 6. across the whole run --------------------------------------------------------------------

def test_every_robot_request_was_signed_and_within_limits_and_no_secret_leaked(stack: AlertingStack) -> None:
    assert stack.robots is not None and stack.bridge is not None
    refused = [(r.kind, r.code, r.status) for r in stack.robots.received() if not r.ok and r.status != 500]
    assert not refused, f"robots refused requests (signature, format, size or rate): {refused}"
    for message in stack.robots.received():
        limit = {"dingtalk": DINGTALK_LIMIT, "feishu": FEISHU_LIMIT}.get(message.kind)
        if limit is not None:
            assert message.size <= limit, (message.kind, message.size)
        if message.kind == "wecom":
            assert len(message.text.encode("utf-8")) <= WECOM_MARKDOWN_LIMIT
    for log in (stack.workdir / "bridge.log", stack.workdir / "alertmanager.log", stack.workdir / "prometheus.log"):
        text = log.read_text(encoding="utf-8", errors="replace")
        leaked = [secret for secret in ROBOT_SECRETS if secret in text]
        assert not leaked, f"{log.name} contains robot keys or secrets"
