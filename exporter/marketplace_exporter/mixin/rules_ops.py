"""Alerts on the monitoring itself: the exporter, the alert bridge, and the always-firing watchdog.

The watchdog proves the whole path Prometheus → Alertmanager → receiver works: it always fires,
Alertmanager re-sends it every ``Heartbeat.repeat_interval`` to an external dead man's switch,
and that service pages (by its own means) when the pings stop. MarketplaceAlertBridgeDown is
routed around the bridge as well (``Routing.fallback``): a bridge that is down cannot say so.
"""

from __future__ import annotations

from marketplace_exporter import catalogue as c
from marketplace_exporter.mixin.config import AlertConfig
from marketplace_exporter.mixin.promql import NONE_SEVERITY, Rule, alert, by, recent_increase, sel

#: Prometheus' own scrape-health series (not an exporter metric, so not in the catalogue)
UP = "up"
WATCHDOG = "MarketplaceWatchdog"


def watchdog_rules(cfg: AlertConfig) -> list[Rule]:
    return [alert(
        WATCHDOG, "vector(1)", "0m", NONE_SEVERITY, "meta",
        "Always firing: proves that the alerting pipeline works.",
        "This alert fires all the time. Alertmanager sends it to an external dead man's switch, "
        "which pages when it STOPS arriving: then Prometheus, its rule evaluation, Alertmanager or "
        "the network between them is broken, and no other alert can reach anyone.",
        "始终触发：用于证明告警链路正常。",
        "该告警始终处于触发状态，Alertmanager 会把它持续发送到外部“死人开关”（心跳）服务；"
        "一旦心跳中断，说明 Prometheus、规则评估、Alertmanager 或它们之间的网络出了问题，其他告警都无法送达。",
    )]


def exporter_rules(cfg: AlertConfig) -> list[Rule]:
    up = f"{UP}{{{cfg.selector}}}"
    return [
        alert(
            "MarketplaceExporterDown",
            f"{up} == 0\nor\nabsent({up})\n",
            cfg.exporter_down_for, "critical", "exporter",
            "Prometheus cannot scrape the marketplace exporter.",
            "{{ with $labels.instance }}Exporter {{ . }} cannot be scraped{{ else }}No marketplace "
            "exporter target is being scraped at all{{ end }} ({{ $labels.job }}): no probe results, "
            "so no marketplace alert can fire.",
            "Prometheus 无法抓取 marketplace exporter。",
            "{{ with $labels.instance }}exporter {{ . }} 抓取失败{{ else }}没有任何 exporter 抓取目标"
            "{{ end }}（{{ $labels.job }}）：没有探测结果，所有市场告警都无法触发。",
        ),
        alert(
            "MarketplaceExporterConfigReloadFailed",
            f"{sel(cfg.selector, c.CONFIG_RELOAD_OK)} == 0",
            cfg.config_reload_for, "warning", "exporter",
            "The marketplace exporter failed to reload its configuration.",
            "{{ $labels.instance }} could not load its new configuration and keeps running the "
            "previous good one.",
            "marketplace exporter 配置重载失败。",
            "{{ $labels.instance }} 无法加载新配置，仍在使用上一份有效配置运行。",
        ),
    ]


def bridge_rules(cfg: AlertConfig) -> list[Rule]:
    b = cfg.bridge_selector
    up = f"{UP}{{{b}}}"
    # job and instance stay, so MarketplaceAlertBridgeDown of the same instance inhibits this one
    channel = by("job", "instance", c.RECEIVER, c.CHANNEL)
    # a failure counter may first appear at 1 (not pre-created): recent_increase counts that one
    failures = sel(b, c.BRIDGE_FAILURES, c.REASON + "!=" + repr_label(c.Reason.THROTTLED))
    return [
        alert(
            "MarketplaceAlertBridgeDown",
            f"{up} == 0\nor\nabsent({up})\n",
            cfg.bridge_down_for, "critical", "bridge",
            "Prometheus cannot scrape the alert bridge; chat notifications may not be delivered.",
            "{{ with $labels.instance }}Bridge {{ . }} cannot be scraped{{ else }}No bridge target "
            "is being scraped at all{{ end }} ({{ $labels.job }}); check the Alertmanager UI for "
            "alerts that could not be sent.",
            "Prometheus 无法抓取告警桥接服务（bridge），群消息可能无法送达。",
            "{{ with $labels.instance }}bridge {{ . }} 抓取失败{{ else }}没有任何 bridge 抓取目标"
            "{{ end }}（{{ $labels.job }}）；请在 Alertmanager 页面查看未能发出的告警。",
        ),
        alert(
            "MarketplaceAlertBridgeDeliveryFailing",
            f"sum {channel} (\n  {recent_increase(failures, cfg.bridge_failures_window, b)}\n) > 0",
            cfg.bridge_failures_for, "critical", "bridge",
            "The alert bridge fails to deliver messages to a chat robot.",
            "Receiver {{ $labels.receiver }} ({{ $labels.channel }}) had {{ printf \"%.0f\" $value }} "
            f"failed delivery attempt(s) in the last {cfg.bridge_failures_window} (throttling not counted): "
            "its group may be missing alerts.",
            "告警桥接服务向群机器人推送消息失败。",
            "接收方 {{ $labels.receiver }}（{{ $labels.channel }}）最近 "
            f"{cfg.bridge_failures_window} 内推送失败 {{{{ printf \"%.0f\" $value }}}} 次（不含限流），"
            "该群可能漏收告警。",
        ),
        alert(
            "MarketplaceAlertBridgeBacklog",
            f"{sel(b, c.BRIDGE_QUEUE_DEPTH)} > 0",
            cfg.bridge_backlog_for, "warning", "bridge",
            "The alert bridge has had undelivered messages queued for a long time.",
            "{{ printf \"%.0f\" $value }} notification(s) for {{ $labels.receiver }} "
            f"({{{{ $labels.channel }}}}) have waited in the queue for more than {cfg.bridge_backlog_for}.",
            "告警桥接服务积压了长时间未送达的消息。",
            "{{ $labels.receiver }}（{{ $labels.channel }}）有 {{ printf \"%.0f\" $value }} 条通知在队列中"
            f"等待超过 {cfg.bridge_backlog_for}。",
        ),
    ]


def repr_label(value: str) -> str:
    """A label value as a PromQL string literal."""
    return f'"{value}"'

