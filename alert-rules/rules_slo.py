"""SLO: probe error ratio recording rules and multi-window multi-burn-rate alerts per marketplace.

The shape follows the Google SRE workbook (chapter 5, "Alerting on SLOs", table 5-8) and sloth's
output: one recording rule per window in ``catalogue.SLO_WINDOWS`` named by
``catalogue.slo_error_ratio_rule`` (the dashboards read the same names), then a *page* alert when
both the long and the short window burn at 14.4× (1h & 5m) or 6× (6h & 30m) the sustainable rate,
and a *ticket* alert at 3× (1d & 2h) or 1× (3d & 6h). The short window makes the alert resolve soon
after the problem stops. Unlike sloth, each (long, short) pair is its own rule with
``long_window``/``short_window`` labels, so the message can say which window fired and how long
the budget lasts at that pace.

The SLI is the share of failed probes (``marketplace_probe_failures_total`` over
``marketplace_probes_total``), aggregated per marketplace across sites, accounts and checks.
"""

from __future__ import annotations

from decimal import Decimal

from rules_config import AlertConfig, BurnWindow
from rules_text import Rule, alert, by, dec, num, record, sel

from marketplace_exporter import catalogue as c

#: the error budget is spent over this period (30 days, as in the SRE workbook)
BUDGET_DAYS = 30


def recording_rules(cfg: AlertConfig) -> list[Rule]:
    """``marketplace:probe_error_ratio:rate<w>`` for every window in catalogue.SLO_WINDOWS."""
    per = by(c.MARKETPLACE)
    return [
        record(
            c.slo_error_ratio_rule(window),
            f"sum {per} (rate({sel(cfg.selector, c.PROBE_FAILURES)}[{window}]))\n"
            f"  / sum {per} (rate({sel(cfg.selector, c.PROBES)}[{window}]))\n",
        )
        for window in c.SLO_WINDOWS
    ]


def error_budget(cfg: AlertConfig) -> Decimal:
    """1 - objective, exactly (0.99 → 0.01, not 0.010000000000000009)."""
    return Decimal(1) - dec(cfg.slo_objective)


def _burn_alert(cfg: AlertConfig, name: str, w: BurnWindow, severity: str, for_: str,
                summary: str, summary_zh: str) -> Rule:
    for window in (w.long, w.short):
        if window not in c.SLO_WINDOWS:
            raise ValueError(f"burn window {window} has no recording rule (catalogue.SLO_WINDOWS)")
    threshold = num(dec(w.factor) * error_budget(cfg))
    objective = num(dec(cfg.slo_objective) * 100)
    factor = num(w.factor)
    lasts = num(round(Decimal(BUDGET_DAYS) / dec(w.factor), 1))
    rule = alert(
        name,
        f"{c.slo_error_ratio_rule(w.long)} > {threshold}\n"
        f"and {c.slo_error_ratio_rule(w.short)} > {threshold}\n",
        for_, severity, "slo",
        summary,
        f"{{{{ $labels.marketplace }}}} probes failed {{{{ $value | humanizePercentage }}}} of the time "
        f"over the last {w.long} and still fail over the last {w.short}: {factor}x the rate the "
        f"{objective}% objective allows. At this pace the {BUDGET_DAYS}-day error budget is gone in "
        f"{lasts} days.",
        summary_zh,
        f"{{{{ $labels.marketplace }}}} 最近 {w.long} 探测失败率为 {{{{ $value | humanizePercentage }}}}，"
        f"最近 {w.short} 仍在失败，是 {objective}% 可用性目标所允许速率的 {factor} 倍；"
        f"照此速度，{BUDGET_DAYS} 天的错误预算约 {lasts} 天内耗尽。",
    )
    rule["labels"].update({"long_window": w.long, "short_window": w.short})
    return rule


def burn_rate_rules(cfg: AlertConfig) -> list[Rule]:
    """Page alerts (critical) and ticket alerts (warning), one rule per (long, short) pair."""
    page = [
        _burn_alert(cfg, "MarketplaceErrorBudgetBurnFast", w, "critical", cfg.slo_page_for,
                    "A marketplace is burning its probe error budget fast.",
                    "市场探测错误预算正在快速消耗，需要立即处理。")
        for w in cfg.slo_page_windows
    ]
    ticket = [
        _burn_alert(cfg, "MarketplaceErrorBudgetBurnSlow", w, "warning", cfg.slo_ticket_for,
                    "A marketplace is steadily burning its probe error budget.",
                    "市场探测错误预算正在持续消耗，请建工单跟进。")
        for w in cfg.slo_ticket_windows
    ]
    return page + ticket
