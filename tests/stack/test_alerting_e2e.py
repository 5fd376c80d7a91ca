"""End to end, with nothing mocked but the marketplaces and the chat robots: a simulator fault
makes the demo exporter's probes fail, a REAL Prometheus evaluates the GENERATED rules (test
profile: account-level ``for`` 10 s), a REAL Alertmanager routes with the GENERATED
alertmanager.yml, the bridge (its own process, SQLite outbox) posts to fake DingTalk, WeCom and
Feishu robots that check signatures, formats and limits. Then: a bridge SIGKILLed with
notifications queued loses none; the fault is cleared and "resolved" arrives; a robot that was
down gets every notification once when it is back; the NOISE BUDGET (messages counted per route
and printed): one shop's fault is one firing + one resolved per route, a marketplace outage is one
page per route with the failing accounts listed, a flapping check stays within one notification
per group_interval; the watchdog reaches the heartbeat and never a chat; a 40-alert group reaches
WeCom cut within its 4,096 bytes.

One module-scoped stack, scenarios in file order (each depends on the state the previous one
left). First faults: Shopee sg-main and Amazon us-main (both with a check tagged ``critical`` in
the demo config) and Lazada vn-main (untagged) answer HTTP 500 (``server_error``). The generated
routing sends the criticals to ``oncall`` (→ DingTalk here) and, with ``continue``, to the owning
team: ``team-sea`` (Shopee, Lazada → WeCom) and ``team-amazon`` (Amazon → Feishu); Lazada's
warning goes to ``team-sea`` only. The bridge.yml mapping receivers to robots is this test's
deployment choice.

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
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from alerting_e2e_scenarios import (
    ALERT,
    AMAZON,
    FIRING_TIMEOUT_S,
    GROUP_INTERVAL_S,
    LAZADA,
    PLATFORM,
    REDELIVERY_TIMEOUT_S,
    RESOLVED_TIMEOUT_S,
    SHOPEE,
    SHOPEE_MY,
    Timeline,
    arrived,
    firing_in_prometheus,
    history_rows,
    print_noise_budget,
)
from alerting_stack import MOBILE, RECEIVER_ROBOTS, ROBOT_SECRETS, AlertingStack, alert_annotations
from chat_robots import DINGTALK, FEISHU, HEARTBEAT, WECOM, sections
from conftest import DemoExporter, local_client, require_binary
from fake_robots import DINGTALK_LIMIT, FEISHU_LIMIT, WECOM_MARKDOWN_LIMIT, Received

pytestmark = pytest.mark.stack


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
    lazada = routes(alertname=ALERT, severity="warning", component="probe", **LAZADA)
    platform = routes(alertname=PLATFORM, severity="critical", component="platform", marketplace="shopee")
    watchdog = routes(alertname="MarketplaceWatchdog", severity="none", component="meta")
    assert shopee == ["oncall", "team-sea"] and amazon == ["oncall", "team-amazon"], (shopee, amazon)
    assert lazada == ["team-sea"] and platform == ["oncall", "team-sea"] and watchdog == ["heartbeat"]
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
    stack.inject_fault("lazada", "server_error", account=LAZADA["account"])

    ding_shopee = stack.wait_for(f"DingTalk to get {ALERT} firing for shopee/sg-main",
                                 lambda: arrived(stack, "dingtalk", "firing", SHOPEE), FIRING_TIMEOUT_S)[0]
    stack.wait_for(f"DingTalk to get {ALERT} firing for amazon_sp/us-main",
                   lambda: arrived(stack, "dingtalk", "firing", AMAZON), FIRING_TIMEOUT_S)
    wecom_shopee = stack.wait_for(f"WeCom to get {ALERT} firing for shopee/sg-main",
                                  lambda: arrived(stack, "wecom", "firing", SHOPEE), FIRING_TIMEOUT_S)[0]
    wecom_lazada = stack.wait_for(f"WeCom to get {ALERT} firing for lazada/vn-main (a warning)",
                                  lambda: arrived(stack, "wecom", "firing", LAZADA), FIRING_TIMEOUT_S)[0]
    assert "· warning" in wecom_lazada.text and "· critical" in wecom_shopee.text

    # the chat says what the generated rule says, in Chinese, with working links
    annotations = alert_annotations(stack.generated["marketplace-alerts.yml"], ALERT)
    for section in (ding_shopee, wecom_shopee):
        assert {k: section.labels.get(k) for k in SHOPEE} == SHOPEE, section.text
        assert f"摘要: {annotations['summary_zh']}" in section.text, section.text
        assert "sg-main（SG）检查项 get_shop_info" in section.text, section.text  # description_zh, templated
        # the reason and Shopee's own error code (annotations the rule reads from the counters)
        assert "- 原因: server_error · 平台错误码: error_server" in section.text, section.text
        # absolute, so the link works in the chat (tests/unit/test_runbook_links.py follows it), and
        # the Chinese message links the Chinese runbook
        assert f"[处理手册]({annotations['runbook_url_zh']})" in section.text and "://" in annotations["runbook_url_zh"]
        assert annotations["runbook_url_zh"].endswith(f"runbooks.zh-CN.md#{ALERT.lower()}")
        assert f"{stack.am_url}/#/silences/new?filter=" in section.text, section.text
    ding_message = next(m for m in stack.robots.received(DINGTALK) if m.ok and ding_shopee.text in m.text)
    assert ding_message.title == f"🔥 告警 {ALERT}", ding_message.title
    assert f"@{MOBILE}" in ding_message.text and MOBILE in ding_message.body["at"]["atMobiles"], ding_message.body
    assert '<font color="warning">告警</font>' in wecom_shopee.text

    # routing: Shopee never reaches the Amazon team's Feishu, Amazon never the SEA team's WeCom,
    # Lazada's warning never the on-call DingTalk
    assert not arrived(stack, "wecom", "firing", AMAZON)
    assert not arrived(stack, "dingtalk", "firing", LAZADA)
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
        lambda: history_rows(stack, "team-amazon", ALERT, "queued"), REDELIVERY_TIMEOUT_S)
    failed_attempts = [r for r in stack.robots.received(FEISHU) if r.status == 500]
    assert failed_attempts, "Feishu was never tried while it was down"
    assert stack.queue_depth("team-amazon") >= 1

    stack.kill_bridge()
    timeline.bridge_killed_at = time.time()
    stack.robots.clear()  # Feishu is back
    stack.restart_bridge()

    card_section = stack.wait_for(f"Feishu to get {ALERT} firing for amazon_sp/us-main after the bridge restarted",
                                  lambda: arrived(stack, "feishu", "firing", AMAZON), REDELIVERY_TIMEOUT_S)[0]
    assert card_section.at > timeline.bridge_killed_at, "Feishu accepted it before the kill: nothing was queued"
    stack.wait_for("the bridge to drain team-amazon's queue",
                   lambda: not history_rows(stack, "team-amazon", ALERT, "queued"), REDELIVERY_TIMEOUT_S)
    sent = [row for row in stack.history() if row["id"] in {q["id"] for q in queued}]
    assert [row["state"] for row in sent] == ["sent"] * len(queued), sent
    assert len(arrived(stack, "feishu", "firing", AMAZON)) == 1, "delivered more than once after the restart"
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
                           lambda: arrived(stack, "wecom", "resolved", SHOPEE), RESOLVED_TIMEOUT_S)[0]
    feishu = stack.wait_for(f"Feishu to get {ALERT} resolved for amazon_sp/us-main",
                            lambda: arrived(stack, "feishu", "resolved", AMAZON), RESOLVED_TIMEOUT_S)[0]
    stack.wait_for(f"WeCom to get {ALERT} resolved for lazada/vn-main",
                   lambda: arrived(stack, "wecom", "resolved", LAZADA), RESOLVED_TIMEOUT_S)
    for section, labels in ((wecom, SHOPEE), (feishu, AMAZON)):
        assert section.at > timeline.cleared_at
        assert {k: section.labels.get(k) for k in labels} == labels, section.text
        assert "结束: " in section.text, section.text  # the end time, in the receiver's time zone
        assert "silences/new" not in section.text  # no silence link for what is over
    card = next(m for m in stack.robots.received(FEISHU) if m.ok and feishu.text in m.text)
    assert card.title == f"✅ 已恢复 {ALERT}" and card.body["card"]["header"]["template"] == "green", card.body


# --- 4. robot down for a while, then back ------------------------------------------------------

def test_robot_down_then_back_gets_every_notification_once(stack: AlertingStack, timeline: Timeline,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert stack.robots is not None
    robots = stack.robots
    down_since = timeline.robot_down["dingtalk"][0]

    def waiting_while_down() -> bool:
        """Both resolved notifications sit in the bridge's queue for DingTalk, and DingTalk has
        refused at least 3 attempts (the worker sends oldest first, so the refused ones may be
        an older notification that is ahead of them in the queue)."""
        queued = [row for row in history_rows(stack, "oncall", ALERT, "queued") if row["status"] == "resolved"]
        refused = [r for r in robots.received(DINGTALK) if r.status == 500 and r.at >= down_since]
        return len(queued) == 2 and len(refused) >= 3

    stack.wait_for(f"both {ALERT} resolved notifications queued for DingTalk while it answers 500 "
                   "(and 3 refused attempts)", waiting_while_down, RESOLVED_TIMEOUT_S)
    robots.clear()
    timeline.robot_down["dingtalk"] = (timeline.robot_down["dingtalk"][0], time.time())

    for labels in (SHOPEE, AMAZON):
        stack.wait_for(f"DingTalk to get {ALERT} resolved for {labels['marketplace']}/{labels['account']}",
                       partial(arrived, stack, "dingtalk", "resolved", labels),
                       REDELIVERY_TIMEOUT_S)
    stack.wait_for("every bridge queue to drain", lambda: all(
        row["state"] == "sent" for row in stack.history()), REDELIVERY_TIMEOUT_S)
    time.sleep(2.0)  # a late duplicate (a retry of something already accepted) would land now

    found = sections(robots.received())
    counts = Counter(s.key() for s in found if s.labels.get("marketplace"))
    expected = {
        (robot, state, ALERT, labels["marketplace"], labels["account"]): 1
        for state in ("firing", "resolved")
        for robot, labels in (("dingtalk", SHOPEE), ("dingtalk", AMAZON), ("wecom", SHOPEE), ("feishu", AMAZON),
                              ("wecom", LAZADA))}
    print_noise_budget(capsys, "one shop's fault (3 shops of 3 marketplaces)", counts)
    # the noise budget: nothing but the shops' own alert, once firing and once resolved per route;
    # no platform alert, no burn-rate page for one shop's 500s
    assert dict(counts) == expected, f"each notification exactly once per robot; got {dict(counts)}"
    # besides: the bridge's own alert about the robot outages this test made on purpose
    ops = Counter(s.key() for s in found if not s.labels.get("marketplace"))
    print_noise_budget(capsys, "(ops alerts caused by the test's robot outages)", ops)
    assert {key[2] for key in ops} <= {"MarketplaceAlertBridgeDeliveryFailing"}, ops
    timeline.one_shop_end = len(robots.received())
    down_until = timeline.robot_down["dingtalk"][1]
    resolved = arrived(stack, "dingtalk", "resolved", SHOPEE) + arrived(stack, "dingtalk", "resolved", AMAZON)
    assert all(s.at >= down_until for s in resolved), "delivered while DingTalk was still down?"


# --- 5. noise budget: a marketplace outage across all its accounts ------------------------------

def test_marketplace_outage_is_one_page_per_route_listing_the_failing_accounts(
        stack: AlertingStack, timeline: Timeline, capsys: pytest.CaptureFixture[str]) -> None:
    """Both Shopee accounts fail with 5xx: MarketplacePlatformFailing pages on-call and the SEA team
    ONCE each (then resolves once); the accounts' own MarketplaceCheckFailing fire in Prometheus but
    Alertmanager holds them back, and the burn-rate alerts stay quiet for what was already paged."""
    assert stack.robots is not None
    robots = stack.robots
    stack.wait_healthy([(SHOPEE["marketplace"], SHOPEE["account"]), (SHOPEE_MY["marketplace"], SHOPEE_MY["account"])])
    start = len(robots.received())
    stack.inject_fault("shopee", "server_error")  # every Shopee account
    ding = stack.wait_for(f"DingTalk to get {PLATFORM} firing for shopee", lambda: [
        s for s in sections(robots.received()[start:]) if s.robot == "dingtalk" and s.alertname == PLATFORM], 60)[0]
    wecom = stack.wait_for(f"WeCom to get {PLATFORM} firing for shopee", lambda: [
        s for s in sections(robots.received()[start:]) if s.robot == "wecom" and s.alertname == PLATFORM], 30)[0]
    for section in (ding, wecom):  # the summary of the affected accounts
        assert "失败店铺：my-main（MY） sg-main（SG）" in section.text, section.text
        assert "shopee 的 2 个店铺中有 2 个店铺" in section.text, section.text
    # the accounts' own alerts do fire — and are inhibited, not sent
    stack.wait_for(f"{ALERT} firing in Prometheus for both Shopee accounts",
                   lambda: len(firing_in_prometheus(stack, ALERT, "shopee")) == 2, 40)
    stack.wait_for(f"Alertmanager to show {ALERT} of Shopee inhibited by {PLATFORM}", lambda: [
        a for a in stack.am_alerts() if a["labels"].get("alertname") == ALERT
        and a["labels"].get("marketplace") == "shopee" and a["status"]["inhibitedBy"]], 20)
    time.sleep(GROUP_INTERVAL_S + 1)  # a stray per-account message would arrive now
    stack.clear_faults()
    for robot in ("dingtalk", "wecom"):
        stack.wait_for(f"{robot} to get {PLATFORM} resolved", lambda robot=robot: [
            s for s in sections(robots.received()[start:]) if s.robot == robot and s.alertname == PLATFORM
            and s.state == "resolved"], 60)
    time.sleep(2 * GROUP_INTERVAL_S)
    found = sections(robots.received()[start:])
    counts = Counter(s.key() for s in found if s.labels.get("marketplace"))
    print_noise_budget(capsys, "marketplace outage (shopee, 2 of 2 accounts)", counts)
    expected = {(robot, state, PLATFORM, "shopee", ""): 1
                for robot in ("dingtalk", "wecom") for state in ("firing", "resolved")}
    assert dict(counts) == expected, f"one page (and one resolved) per route; got {dict(counts)}"
    # besides: only the bridge's own alert about the robot outages of the earlier scenarios (its
    # group may be re-notified when a second receiver's failures join it)
    ops = {s.alertname for s in found if not s.labels.get("marketplace")}
    assert ops <= {"MarketplaceAlertBridgeDeliveryFailing"}, ops
    assert not firing_in_prometheus(stack, "MarketplaceErrorBudgetBurnFast", "shopee")


# --- 6. noise budget: a flapping check ----------------------------------------------------------

def test_a_flapping_check_stays_within_one_notification_per_group_interval(
        stack: AlertingStack, capsys: pytest.CaptureFixture[str]) -> None:
    """Lazada vn-main fails every other probe for 30 s (a one-request fault injected every 10 s at a
    5 s probe interval): no rule may turn that into a message storm."""
    assert stack.robots is not None
    robots = stack.robots
    start, began = len(robots.received()), time.monotonic()
    flaps = 0
    while time.monotonic() - began < 30:
        stack.inject_fault("lazada", "server_error", account=LAZADA["account"], count=1)
        flaps += 1
        time.sleep(10)
    time.sleep(2 * GROUP_INTERVAL_S)
    duration = time.monotonic() - began
    failures = stack.query(f'sum(increase(marketplace_probe_failures_total{{marketplace="lazada", '
                           f'account="vn-main"}}[{int(duration)}s]))')
    messages = robots.received()[start:]
    counts = Counter(s.key() for s in sections(messages))
    print_noise_budget(capsys, f"flapping check (lazada/vn-main, {flaps} injected failures, "
                  f"~{float(failures[0]['value'][1]) if failures else 0:.0f} counted, {duration:.0f} s)", counts)
    per_group = Counter((s.robot, s.alertname, s.labels.get("marketplace", "")) for s in sections(messages))
    bound = int(duration / GROUP_INTERVAL_S) + 1
    assert all(n <= bound for n in per_group.values()), per_group
    # what the rules make of it: no 3 failures in a row, one account only: nothing to say at all
    assert not [s for s in sections(messages) if s.labels.get("marketplace") == "lazada"], counts


# --- 7. a group too large for one WeCom message --------------------------------------------------

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


# --- 8. across the whole run --------------------------------------------------------------------

def test_the_watchdog_reaches_the_heartbeat_and_never_a_chat(stack: AlertingStack,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert stack.robots is not None
    pings = [r for r in stack.robots.received(HEARTBEAT) if r.ok]
    names = {a["labels"]["alertname"] for r in pings for a in r.body.get("alerts", [])}
    with capsys.disabled():
        print(f"\nheartbeat: {len(pings)} watchdog ping(s) from Alertmanager")
    assert pings and names == {"MarketplaceWatchdog"}, names
    assert not [s for s in sections(stack.robots.received()) if s.alertname == "MarketplaceWatchdog"]


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
