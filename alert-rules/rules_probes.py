"""Alerts on the probes, the credentials, the exporter itself and the alert bridge."""

from __future__ import annotations

from rules_config import DAY_S, AlertConfig, CredentialExpiry
from rules_text import Rule, alert, by, matches, num, on_probe, sel

from marketplace_exporter import catalogue as c

#: Prometheus' own scrape-health series (not an exporter metric, so not in the catalogue)
UP = "up"

_ID = "{{ $labels.marketplace }}/{{ $labels.account }} ({{ $labels.site }}) check {{ $labels.check }}"
_ID_ZH = "{{ $labels.marketplace }}/{{ $labels.account }}（{{ $labels.site }}）检查项 {{ $labels.check }}"


def failing_checks(cfg: AlertConfig) -> str:
    """Checks failing N probes in a row: last success ≥ N intervals old (or never, after N probes)."""
    n = num(cfg.check_failing_consecutive)
    s = cfg.selector
    return f"""(
  (time() - {sel(s, c.PROBE_LAST_SUCCESS)})
    >= {n} * {sel(s, c.PROBE_INTERVAL)}
  or
  {sel(s, c.PROBES)} >= {n}
    unless {on_probe()} {sel(s, c.PROBE_LAST_SUCCESS)}
)
and {on_probe()}
  {sel(s, c.PROBE_SUCCESS)} == 0"""


def check_rules(cfg: AlertConfig) -> list[Rule]:
    n = cfg.check_failing_consecutive
    s = cfg.selector
    site = by(c.MARKETPLACE, c.SITE)
    site_down = f"""
count {site} (
{_indent(failing_checks(cfg), 2)}
)
  == count {site} ({sel(s, c.PROBE_SUCCESS)})
and count {site} ({sel(s, c.PROBE_SUCCESS)}) >= {num(cfg.site_down_min_checks)}
"""
    return [
        alert(
            "MarketplaceCheckFailing", failing_checks(cfg), cfg.check_failing_for, "critical", "probe",
            f"A marketplace check failed {n} or more times in a row.",
            f"{_ID} has failed at least {n} consecutive probes; "
            f"see {c.PROBE_FAILURES.name} for the reason.",
            f"市场接口检查连续失败 {n} 次及以上。",
            f"{_ID_ZH} 已连续至少 {n} 次探测失败，失败原因见 {c.PROBE_FAILURES.name} 的 reason 标签。",
        ),
        alert(
            "MarketplaceSiteDown", site_down, cfg.site_down_for, "critical", "probe",
            "Every check of a marketplace site is failing.",
            "All {{ $value }} checks of {{ $labels.marketplace }} site {{ $labels.site }} have failed "
            f"{n} or more probes in a row: the marketplace is down there, or our network or "
            "credentials towards it are broken.",
            "某市场站点的全部检查均失败。",
            "{{ $labels.marketplace }} 站点 {{ $labels.site }} 的全部 {{ $value }} 个检查项均已连续 "
            f"{n} 次以上探测失败：平台在该站点故障，或我方到该站点的网络/凭证出了问题。",
        ),
        alert(
            "MarketplaceAuthFailing",
            f"increase({sel(s, c.PROBE_FAILURES, matches(c.REASON, c.Reason.AUTH, c.Reason.PERMISSION))}"
            f"[{cfg.auth_window}]) > 0",
            cfg.auth_for, "critical", "probe",
            "A marketplace rejects the exporter's credentials (expired token or missing permission).",
            f"{_ID} failed with reason {{{{ $labels.reason }}}} "
            f"{{{{ printf \"%.0f\" $value }}}} time(s) in the last {cfg.auth_window}.",
            "市场平台拒绝了我方凭证（令牌过期或缺少权限）。",
            f"{_ID_ZH} 最近 {cfg.auth_window} 内因 {{{{ $labels.reason }}}} "
            f"失败 {{{{ printf \"%.0f\" $value }}}} 次。",
        ),
        alert(
            "MarketplaceThrottled",
            f"increase({sel(s, c.PROBE_FAILURES, matches(c.REASON, c.Reason.THROTTLED))}"
            f"[{cfg.throttled_window}]) > {num(cfg.throttled_min_failures)}",
            cfg.throttled_for, "warning", "probe",
            "A marketplace is throttling the exporter's probes.",
            f"{_ID} was throttled {{{{ printf \"%.0f\" $value }}}} time(s) "
            f"in the last {cfg.throttled_window}.",
            "市场平台正在对探测请求限流。",
            f"{_ID_ZH} 最近 {cfg.throttled_window} 内被限流 {{{{ printf \"%.0f\" $value }}}} 次。",
        ),
        alert(
            "MarketplaceRateLimitHeadroomLow",
            f"{sel(s, c.RATE_LIMIT_REMAINING)} < {num(cfg.headroom_ratio)}",
            cfg.headroom_for, "warning", "probe",
            "Little rate-limit headroom is left on a marketplace API.",
            f"{_ID} has {{{{ $value | humanizePercentage }}}} of its rate limit left "
            f"(source {{{{ $labels.source }}}}, threshold {num(cfg.headroom_ratio * 100)}%).",
            "市场 API 限流余量不足。",
            f"{_ID_ZH} 的限流余量仅剩 {{{{ $value | humanizePercentage }}}}"
            f"（来源 {{{{ $labels.source }}}}，阈值 {num(cfg.headroom_ratio * 100)}%）。",
        ),
        alert(
            "MarketplaceProbeResultsStale",
            f"(time() - {sel(s, c.PROBE_LAST_RUN)})\n  > {num(cfg.stale_intervals)} * {sel(s, c.PROBE_INTERVAL)}",
            cfg.stale_for, "warning", "probe",
            "A marketplace check has not run for several intervals; its results are stale.",
            f"{_ID} last ran {{{{ $value | humanizeDuration }}}} ago, "
            f"more than {cfg.stale_intervals} probe intervals.",
            "市场检查已多个周期未运行，结果已过时。",
            f"{_ID_ZH} 上次运行在 {{{{ $value | humanizeDuration }}}} 之前，已超过 {cfg.stale_intervals} 个探测周期。",
        ),
    ]


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line for line in text.splitlines())


def _days(value_s: int) -> tuple[str, str]:
    """(English, Chinese) for a threshold: "7 days"/"7 天", "a day"/"1 天", "12 hours"/"12 小时"."""
    if value_s % DAY_S == 0:
        d = value_s // DAY_S
        return ("a day" if d == 1 else f"{d} days"), f"{d} 天"
    hours = num(value_s / 3600)
    return f"{hours} hours", f"{hours} 小时"


_CRED_WHO = "{{ $labels.marketplace }}/{{ $labels.account }} ({{ $labels.site }})"
_CRED_WHO_ZH = "{{ $labels.marketplace }}/{{ $labels.account }}（{{ $labels.site }}）"


def credential_expiry_rules(cfg: AlertConfig, cred: CredentialExpiry) -> list[Rule]:
    """The warning and the critical rule for one credential kind (same alert names for all kinds)."""
    expiry = sel(cfg.selector, c.CREDENTIAL_EXPIRY, matches(c.CREDENTIAL, cred.kind))
    warn_en, warn_zh = _days(cred.warning_s)
    crit_en, crit_zh = _days(cred.critical_s)
    rules = [
        alert(
            "MarketplaceCredentialExpiringSoon",
            f"({expiry} - time()) < {num(cred.warning_s)}\n"
            f"  and ({expiry} - time()) >= {num(cred.critical_s)}\n",
            cfg.credential_warning_for, "warning", "credential",
            f"A marketplace {cred.name_en} expires within {warn_en}.",
            f"The {cred.name_en} of {_CRED_WHO} expires in {{{{ $value | humanizeDuration }}}}; "
            "renew it or have the seller re-authorise before then.",
            f"{cred.name_zh}将在 {warn_zh}内过期。",
            f"{_CRED_WHO_ZH}的{cred.name_zh}将在 {{{{ $value | humanizeDuration }}}} 后过期，"
            "请在到期前续期或联系卖家重新授权。",
        ),
        alert(
            "MarketplaceCredentialExpiringCritical",
            f"({expiry} - time()) < {num(cred.critical_s)}",
            cfg.credential_critical_for, "critical", "credential",
            f"A marketplace {cred.name_en} expires within {crit_en} or has expired.",
            f"The {cred.name_en} of {_CRED_WHO} expires in {{{{ $value | humanizeDuration }}}} "
            "(negative: already expired); every call with it fails from then on.",
            f"{cred.name_zh}将在 {crit_zh}内过期或已经过期。",
            f"{_CRED_WHO_ZH}的{cred.name_zh}剩余有效期 {{{{ $value | humanizeDuration }}}}"
            "（负数表示已过期），过期后所有调用都会失败，请立即续期或联系卖家重新授权。",
        ),
    ]
    for rule in rules:  # the series' own value; keeps the per-kind rules distinct for promtool
        rule["labels"][c.CREDENTIAL] = str(cred.kind)
    return rules


def credential_rules(cfg: AlertConfig) -> list[Rule]:
    rules: list[Rule] = []
    for cred in cfg.credentials:
        rules.extend(credential_expiry_rules(cfg, cred))
    tls = sel(cfg.selector, c.TLS_CERT_EXPIRY)
    deprecation = sel(cfg.selector, c.API_DEPRECATION)
    tls_en, tls_zh = _days(cfg.tls_warning_s)
    dep_en, dep_zh = _days(cfg.deprecation_window_s)
    return rules + [
        alert(
            "MarketplaceTLSCertificateExpiring",
            f"({tls} - time()) < {num(cfg.tls_warning_s)}",
            cfg.tls_for, "warning", "credential",
            f"A TLS certificate presented to the exporter expires within {tls_en}.",
            "The certificate of {{ $labels.host }} expires in {{ $value | humanizeDuration }}.",
            f"探测到的 TLS 证书将在 {tls_zh}内过期。",
            "{{ $labels.host }} 的 TLS 证书将在 {{ $value | humanizeDuration }} 后过期。",
        ),
        alert(
            # a removal date in the past does not match (> 0): the alert resolves on removal day
            # instead of firing forever; checks that still call the API then fail on their own
            "MarketplaceAPIDeprecationApproaching",
            f"({deprecation} - time()) < {num(cfg.deprecation_window_s)}\n"
            f"  and ({deprecation} - time()) > 0\n",
            cfg.deprecation_for, "info", "credential",
            f"A marketplace API the exporter depends on is removed within {dep_en}.",
            "{{ $labels.marketplace }} removes {{ $labels.api }} in {{ $value | humanizeDuration }}.",
            f"依赖的市场 API 将在 {dep_zh}内下线。",
            "{{ $labels.marketplace }} 将在 {{ $value | humanizeDuration }} 后下线 {{ $labels.api }}，请尽快完成迁移。",
        ),
    ]


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
            f"sum {channel} (increase({sel(b, c.BRIDGE_FAILURES, c.REASON + '!=' + repr_label(c.Reason.THROTTLED))}"
            f"[{cfg.bridge_failures_window}])) > 0",
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

