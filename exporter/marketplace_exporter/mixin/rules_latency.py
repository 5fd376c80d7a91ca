"""Latency against the check's own history (根据历史数据设定动态阈值), not a fixed number.

A fixed "p95 > 2 s" is wrong for every check at once: SP-API's participations call answers in
300 ms, a Mercado Libre user lookup from Shanghai in 1.5 s. Instead each check (marketplace, site,
check: the request-duration histogram has no account label) is compared with itself:

    p95 over the last 15 m  >  k × (the 95th percentile of that p95 over the last 7 days)
                            and >  an absolute floor (50 → 150 ms is no incident)

Recording rules keep it cheap: the 15-minute p95 is computed once per evaluation from the
histogram buckets (one series per check); the 7-day baseline reads that one recorded series
(``quantile_over_time`` over 7 days of it) instead of 7 days of every bucket. The baseline is only
trusted once the check has ``latency_min_history`` of recorded p95. A slow drift moves the
baseline with it (no alert); a step change leaves it behind (alert), until the new level has been
normal for long enough to become the baseline itself (after ~5% of 7 days, about 8 hours).
"""

from __future__ import annotations

from marketplace_exporter import catalogue as c
from marketplace_exporter.mixin.config import AlertConfig
from marketplace_exporter.mixin.promql import Rule, alert, by, num, on, record, sel

_CHECK = (c.MARKETPLACE, c.SITE, c.CHECK)
LATENCY_ALERT = "MarketplaceLatencyAboveBaseline"


def _pct(cfg: AlertConfig) -> str:
    return num(cfg.latency_quantile * 100)


def p95_rule(cfg: AlertConfig) -> str:
    """``marketplace_check:request_duration_seconds:p95_15m`` (the quantile and window as configured)."""
    return f"marketplace_check:request_duration_seconds:p{_pct(cfg)}_{cfg.latency_window}"


def baseline_rule(cfg: AlertConfig) -> str:
    """``…:p95_15m:p95_7d``: the check's usual p95, the 95th percentile of its recorded p95."""
    return f"{p95_rule(cfg)}:p{_pct(cfg)}_{cfg.latency_baseline_window}"


def recording_rules(cfg: AlertConfig) -> list[Rule]:
    q = num(cfg.latency_quantile)
    buckets = sel(cfg.selector, c.REQUEST_DURATION, suffix="_bucket")
    current = p95_rule(cfg)
    return [
        record(current, f"histogram_quantile({q}, sum {by(*_CHECK, 'le')} (rate({buckets}[{cfg.latency_window}])))"),
        record(baseline_rule(cfg), (
            f"quantile_over_time({q}, {current}[{cfg.latency_baseline_window}])\n"
            f"  and {on(*_CHECK)} ({current} offset {cfg.latency_min_history})\n")),
    ]


def latency_rules(cfg: AlertConfig) -> list[Rule]:
    current = p95_rule(cfg)
    baseline = baseline_rule(cfg)
    k = num(cfg.latency_factor)
    floor = num(cfg.latency_floor_s)
    p = _pct(cfg)
    who = "{{ $labels.marketplace }} ({{ $labels.site }}) check {{ $labels.check }}"
    who_zh = "{{ $labels.marketplace }}（{{ $labels.site }}）检查项 {{ $labels.check }}"
    usual = (f"{{{{ range query (printf `{baseline}{{marketplace=%[1]q, site=%[2]q, check=%[3]q}}` "
             "$labels.marketplace $labels.site $labels.check) }}{{ .Value | humanizeDuration }}{{ end }}")
    return [alert(
        LATENCY_ALERT,
        f"{current}\n  > {on(*_CHECK)} ({k} * {baseline})\nand\n{current} > {floor}\n",
        cfg.latency_for, "warning", "platform",
        "A marketplace API answers much slower than it usually does.",
        f"The p{p} latency of {who} over the last {cfg.latency_window} is {{{{ $value | humanizeDuration }}}}, "
        f"more than {k}x its usual {usual} (p{p} of the last {cfg.latency_baseline_window}) and above "
        f"the {floor} s floor.",
        "市场 API 响应明显慢于其历史水平。",
        f"{who_zh} 最近 {cfg.latency_window} 的 p{p} 延迟为 {{{{ $value | humanizeDuration }}}}，"
        f"超过其历史水平 {usual}（最近 {cfg.latency_baseline_window} 的 p{p}）的 {k} 倍，且高于 {floor} 秒下限。",
    )]
