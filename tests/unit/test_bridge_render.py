"""Rendering: golden messages (zh/en, firing/resolved), time zones, mentions, and byte-exact
truncation that never splits a UTF-8 character."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from marketplace_exporter.bridge.alertmanager import Notification, parse_notification
from marketplace_exporter.bridge.channels import channels, dingtalk, feishu, wecom
from marketplace_exporter.bridge.render import Budget, RenderOptions, cut_to_bytes, fit, render, silence_url


def alert(name: str = "MarketplaceCheckFailing", status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": name, "severity": "critical", "marketplace": "amazon_sp", "account": "us-main",
                   **labels},
        "annotations": {"summary": "A marketplace check failed 3 or more times in a row.",
                        "summary_zh": "市场检查连续失败 3 次以上。",
                        "description": "amazon_sp/us-main check account failed.",
                        "description_zh": "amazon_sp/us-main 的 account 检查连续失败。",
                        "runbook_url": "docs/runbooks.md#marketplacecheckfailing"},
        "startsAt": "2024-05-01T10:00:00Z",
        "endsAt": "2024-05-01T10:30:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        "fingerprint": f"fp-{name}-{sorted(labels.items())}",
    }


def payload(*alerts: dict[str, Any], status: str | None = None) -> Notification:
    status = status or ("firing" if any(a["status"] == "firing" for a in alerts) else "resolved")
    return parse_notification({
        "version": "4", "groupKey": '{}:{alertname="MarketplaceCheckFailing"}', "truncatedAlerts": 0,
        "status": status, "receiver": "ops", "groupLabels": {"alertname": alerts[0]["labels"]["alertname"]},
        "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts)})


def options(channel: str, language: str = "zh", tz: str = "Asia/Shanghai", **extra: Any) -> RenderOptions:
    return RenderOptions(channel=channel, language=language, timezone=ZoneInfo(tz),
                         grafana_url="http://grafana:3000/d/overview",
                         runbook_base_url="https://git.example.com/ops/blob/main", **extra)


SILENCE = ("http://alertmanager:9093/#/silences/new?filter=%7Baccount%3D%22us-main%22%2Calertname%3D%22"
           "MarketplaceCheckFailing%22%2Cmarketplace%3D%22amazon_sp%22%2Cseverity%3D%22critical%22%7D")

GRAFANA = "[Grafana](http://grafana:3000/d/overview)"
RUNBOOK = "https://git.example.com/ops/blob/main/docs/runbooks.md#marketplacecheckfailing"
QUERY = "http://prometheus:9090/graph?g0.expr=up"

GOLDEN_ZH_FIRING_DINGTALK = f"""#### 🔥 告警 MarketplaceCheckFailing

**[告警] MarketplaceCheckFailing** · critical
- 摘要: 市场检查连续失败 3 次以上。
- 详情: amazon_sp/us-main 的 account 检查连续失败。
- 标签: account=us-main, marketplace=amazon_sp
- 开始: 2024-05-01 18:00:00 CST
- {GRAFANA} | [处理手册]({RUNBOOK}) | [静默]({SILENCE}) | [查询]({QUERY})
"""

GOLDEN_EN_RESOLVED_WECOM = f"""#### ✅ RESOLVED MarketplaceCheckFailing

**[<font color="info">RESOLVED</font>] MarketplaceCheckFailing** · critical
- summary: A marketplace check failed 3 or more times in a row.
- description: amazon_sp/us-main check account failed.
- labels: account=us-main, marketplace=amazon_sp
- started: 2024-05-01 18:00:00 CST
- ended: 2024-05-01 18:30:00 CST
- {GRAFANA} | [Runbook]({RUNBOOK}) | [Query]({QUERY})
"""

GOLDEN_EN_FIRING_FEISHU = f"""#### 🔥 FIRING MarketplaceCheckFailing

**[FIRING] MarketplaceCheckFailing** · critical
- summary: A marketplace check failed 3 or more times in a row.
- description: amazon_sp/us-main check account failed.
- labels: account=us-main, marketplace=amazon_sp
- started: 2024-05-01 03:00:00 PDT
- {GRAFANA} | [Runbook]({RUNBOOK}) | [Silence]({SILENCE}) | [Query]({QUERY})

<at id=ou_abc></at>
"""

GOLDEN_ZH_RESOLVED_DINGTALK = f"""#### ✅ 已恢复 MarketplaceCheckFailing

**[已恢复] MarketplaceCheckFailing** · critical
- 摘要: 市场检查连续失败 3 次以上。
- 详情: amazon_sp/us-main 的 account 检查连续失败。
- 标签: account=us-main, marketplace=amazon_sp
- 开始: 2024-05-01 18:00:00 CST
- 结束: 2024-05-01 18:30:00 CST
- {GRAFANA} | [处理手册]({RUNBOOK}) | [查询]({QUERY})
"""


def test_golden_zh_firing_dingtalk() -> None:
    message = render([payload(alert())], options("dingtalk"), dingtalk.budget)
    assert message.title == "🔥 告警 MarketplaceCheckFailing"
    assert message.text == GOLDEN_ZH_FIRING_DINGTALK
    assert (message.alerts_total, message.alerts_shown) == (1, 1)


def test_golden_zh_resolved_dingtalk_has_an_end_time_and_no_silence_link() -> None:
    message = render([payload(alert(status="resolved"))], options("dingtalk"), dingtalk.budget)
    assert message.title == "✅ 已恢复 MarketplaceCheckFailing"
    assert message.text == GOLDEN_ZH_RESOLVED_DINGTALK


def test_golden_en_resolved_wecom_uses_wecom_colours() -> None:
    message = render([payload(alert(status="resolved"))], options("wecom", "en"), wecom.budget)
    assert message.text == GOLDEN_EN_RESOLVED_WECOM


def test_golden_en_firing_feishu_in_another_time_zone_with_mention() -> None:
    message = render([payload(alert())], options("feishu", "en", "America/Los_Angeles", user_ids=("ou_abc",)),
                     feishu.budget)
    assert message.text == GOLDEN_EN_FIRING_FEISHU


def test_english_falls_back_to_the_plain_annotation_and_chinese_to_it_when_no_zh_variant() -> None:
    raw = alert()
    del raw["annotations"]["summary_zh"]
    message = render([payload(raw)], options("dingtalk", "zh"), dingtalk.budget)
    assert "- 摘要: A marketplace check failed 3 or more times in a row." in message.text


def test_chinese_messages_link_the_chinese_runbook_when_the_alert_carries_one() -> None:
    raw = alert()
    raw["annotations"]["runbook_url_zh"] = "docs/runbooks.zh-CN.md#marketplacecheckfailing"
    zh = render([payload(raw)], options("dingtalk", "zh"), dingtalk.budget)
    en = render([payload(raw)], options("dingtalk", "en"), dingtalk.budget)
    assert "[处理手册](https://git.example.com/ops/blob/main/docs/runbooks.zh-CN.md#marketplacecheckfailing)" in zh.text
    assert f"[Runbook]({RUNBOOK})" in en.text and "zh-CN" not in en.text


def test_dingtalk_mentions_come_from_config_and_alert_labels_and_appear_in_the_text() -> None:
    raw = alert(dingtalk_at_mobiles="13800000001, 13800000002")
    message = render([payload(raw)], options("dingtalk", mobiles=("13800000000",),
                                             mobiles_from=("dingtalk_at_mobiles",),
                                             allowed_mobiles=("13800000001", "13800000002")), dingtalk.budget)
    assert message.mentions.mobiles == ("13800000000", "13800000001", "13800000002")
    assert message.text.endswith("\n@13800000000 @13800000001 @13800000002\n")
    labels_line = next(line for line in message.text.splitlines() if line.startswith("- 标签:"))
    assert "dingtalk_at_mobiles" not in labels_line  # routing metadata is not listed as a label
    body = json.loads(dingtalk.build("http://x/robot/send?access_token=t", None, message, 0, "id").body)
    assert body["at"] == {"atMobiles": ["13800000000", "13800000001", "13800000002"], "atUserIds": [],
                          "isAtAll": False}


def test_wecom_mentions_use_userid_syntax_from_annotations() -> None:
    raw = alert()
    raw["annotations"]["wecom_mentions"] = "zhangsan;lisi"
    message = render([payload(raw)], options("wecom", user_ids_from=("wecom_mentions",),
                                             allowed_user_ids=("zhangsan", "lisi")), wecom.budget)
    assert message.text.endswith("\n<@zhangsan> <@lisi>\n")


def test_merged_notifications_say_so_in_title_and_text() -> None:
    first = payload(alert("A"))
    second = payload(alert("B", status="resolved"))
    message = render([first, second], options("dingtalk"), dingtalk.budget)
    assert message.title == "🔥 告警 A 等（2 条）"
    assert "合并 2 条通知" in message.text
    assert message.text.index("**[告警] A**") < message.text.index("**[已恢复] B**")


def test_silence_link_matches_exactly_this_alert_and_escapes_quotes() -> None:
    url = silence_url("http://am:9093/", {"alertname": "X", "path": 'a"b'})
    assert url == "http://am:9093/#/silences/new?filter=%7Balertname%3D%22X%22%2Cpath%3D%22a%5C%22b%22%7D"


def test_markdown_in_label_values_cannot_break_links() -> None:
    message = render([payload(alert(account="[evil](http://x)"))], options("dingtalk"), dingtalk.budget)
    assert "[evil](http://x)" not in message.text


# --- byte limits ---------------------------------------------------------------------------------

def many_alerts(count: int) -> Notification:
    alerts = []
    for index in range(count):
        raw = alert(account=f"账号-{index:03d}")
        raw["annotations"]["description_zh"] = "探测失败，令牌已过期，请尽快在卖家中心重新授权。" * 3
        alerts.append(raw)
    return payload(*alerts)


@pytest.mark.parametrize("kind", ["dingtalk", "feishu"])
def test_whole_json_body_stays_within_20000_bytes_with_an_and_n_more_footer(kind: str) -> None:
    channel = channels()[kind]
    message = render([many_alerts(200)], options(kind, user_ids=("ou_x",)), channel.budget)
    body = channel.build("http://x/robot/send?access_token=t", "SECsecret", message, 1_700_000_000, "0" * 32).body
    assert len(body) <= 20000
    assert len(body) > 19000  # filled, not cut short for nothing
    body.decode("utf-8")
    hidden = message.alerts_total - message.alerts_shown
    assert hidden > 0
    assert f"… 另有 {hidden} 条告警未显示（超出消息长度限制）" in message.text
    assert message.text.count("**[告警]") == message.alerts_shown


def test_wecom_markdown_content_stays_within_4096_bytes() -> None:
    message = render([many_alerts(50)], options("wecom", "en", user_ids=("zhangsan",)), wecom.budget)
    assert len(message.text.encode("utf-8")) <= 4096
    assert len(message.text.encode("utf-8")) > 4096 - 700  # less than one more alert section left over
    assert f"… and {message.alerts_total - message.alerts_shown} more (message size limit)" in message.text
    assert message.text.endswith("<@zhangsan>\n")  # the mention survives truncation


def test_one_alert_too_large_alone_is_cut_at_a_character_boundary() -> None:
    raw = alert()
    raw["annotations"]["description_zh"] = "告" * 3000  # 9000 bytes of 3-byte characters
    message = render([payload(raw)], options("wecom"), wecom.budget)
    encoded = message.text.encode("utf-8")
    assert len(encoded) <= 4096
    assert encoded.decode("utf-8") == message.text
    assert "…" in message.text
    assert message.alerts_shown == 1


def test_cut_to_bytes_never_splits_a_character_at_any_limit() -> None:
    text = "a告😀é" * 20

    def cost(s: str) -> int:
        return len(s.encode("utf-8"))
    for limit in range(0, 120):
        cut = cut_to_bytes(text, limit, cost)
        assert cost(cut) <= limit
        assert text.startswith(cut.removesuffix("…\n"))


def test_fit_is_exact_at_the_boundary() -> None:
    sections = ["告警一\n", "告警二\n"]
    whole = "H\n" + "".join(sections)
    exact = Budget(limit=len(whole.encode()), json_escaped=False)
    text, shown = fit("H\n", sections, "", lambda n: f"+{n}\n", exact)
    assert (text, shown) == (whole, 2)
    one_less = Budget(limit=len(whole.encode()) - 1, json_escaped=False)
    text, shown = fit("H\n", sections, "", lambda n: f"+{n}\n", one_less)
    assert (text, shown) == ("H\n告警一\n+1\n", 1)


def test_json_escaping_counts_towards_the_limit() -> None:
    budget = Budget(limit=10, overhead=0, json_escaped=True)
    assert budget.cost('"\n') == 4
    assert budget.cost("告") == 3


def test_a_robot_keyword_is_put_in_front_of_titles_that_lack_it() -> None:
    resolved = render([payload(alert(status="resolved"))], options("dingtalk", keyword="告警"), dingtalk.budget)
    assert resolved.title == "告警 ✅ 已恢复 MarketplaceCheckFailing"
    firing = render([payload(alert())], options("dingtalk", keyword="告警"), dingtalk.budget)
    assert firing.title == "🔥 告警 MarketplaceCheckFailing"


def test_the_platforms_error_code_and_the_reason_are_in_the_message() -> None:
    """Regression (issue 16): the platform's code (e.g. invalid_acceess_token) appeared in none of
    323 robot messages. The mixin's rules carry it as an annotation (the reason too, or as a label)."""
    auth = alert("MarketplaceAuthFailing", reason="auth")
    auth["annotations"]["code"] = "invalid_acceess_token"
    failing = alert()
    failing["annotations"].update(reason="server_error", code="")  # no code: only the reason shows
    zh = render([payload(auth, failing)], options("dingtalk"), channels()["dingtalk"].budget).text
    assert "- 原因: auth · 平台错误码: invalid_acceess_token\n" in zh
    assert "- 原因: server_error\n" in zh
    en = render([payload(auth)], options("wecom", "en"), channels()["wecom"].budget).text
    assert "- reason: auth · platform code: invalid_acceess_token\n" in en
    plain = render([payload(alert())], options("dingtalk"), channels()["dingtalk"].budget).text
    assert "原因" not in plain and "错误码" not in plain
