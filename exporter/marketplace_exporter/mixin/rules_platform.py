"""Platform-level rules: a marketplace failing across accounts, and its error budget.

Who acts: the marketplace's team (and on-call), not a shop owner. Both alerts are measured across
the accounts of a platform (``cfg.platform_by``: the marketplace, or marketplace and site) from
platform-side failure reasons only (``cfg.platform_reasons``: timeouts, 5xx, throttling...);
credential and other account-side reasons never count, so one seller's revoked token cannot page
anybody about the marketplace. Both fire only when several accounts (or a configured share of
them) fail: one account is never "the platform".

- ``MarketplacePlatformFailing`` — accounts whose checks fail N in a row for platform reasons, now.
  It lists the failing accounts, keeps firing a little after they recover (``keep_firing_for``)
  and Alertmanager inhibits the account-level alerts of the same platform while it fires: an
  outage is one page per route, not one per shop.
- ``MarketplaceErrorBudgetBurnFast`` / ``…Slow`` — the multi-window multi-burn-rate alerts of the
  Google SRE workbook (chapter 5, table 5-8): 14.4× over 1h & 5m or 6× over 6h & 30m page, 3× over
  1d & 2h or 1× over 3d & 6h are a ticket; the pairs are joined with ``or`` (as sloth does), so one
  burn is one alert. A burn the platform alert already paged for (it was pending or firing within
  the pair's short window) does not page again.
"""

from __future__ import annotations

from decimal import Decimal

from marketplace_exporter import catalogue as c
from marketplace_exporter.mixin.config import AlertConfig, BurnWindow
from marketplace_exporter.mixin.promql import (
    Rule,
    alert,
    by,
    dec,
    indent,
    matches,
    num,
    on,
    on_probe,
    recent_increase,
    record,
    sel,
)
from marketplace_exporter.mixin.rules_account import failing_checks

#: the error budget is spent over this period (30 days, as in the SRE workbook)
BUDGET_DAYS = 30
PLATFORM_FAILING = "MarketplacePlatformFailing"
#: per account: how many of its checks fail N in a row with platform-side reasons (absent: none)
ACCOUNT_FAILING = "marketplace_account:probe_platform_failing_checks:count"
#: per platform: accounts probed, and accounts failing for platform reasons now
ACCOUNTS = "marketplace:probe_accounts:count"
FAILING_ACCOUNTS = "marketplace:probe_platform_failing_accounts:count"
_ACCOUNT = (c.MARKETPLACE, c.SITE, c.ACCOUNT)


def failed_accounts_rule(window: str) -> str:
    """Recording rule: accounts with at least one platform-reason failure within ``window``."""
    return f"marketplace:probe_platform_failed_accounts:count{window}"


def _platform_failures(cfg: AlertConfig) -> str:
    return sel(cfg.selector, c.PROBE_FAILURES, matches(c.REASON, *cfg.platform_reasons))


def _other_failures(cfg: AlertConfig) -> str:
    others = sorted({str(r) for r in c.Reason} - {str(r) for r in cfg.platform_reasons})
    return sel(cfg.selector, c.PROBE_FAILURES, matches(c.REASON, *others))


def _sum_rate_or_zero(cfg: AlertConfig, series: str, window: str) -> str:
    """``sum by (platform) (rate(series))``, 0 (not absent) where no such counter exists yet."""
    per = by(*cfg.platform_by)
    return f"sum {per} (rate({series}[{window}]) or 0 * rate({sel(cfg.selector, c.PROBES)}[{window}]))"


def gate(cfg: AlertConfig, count: str) -> str:
    """``count`` (accounts failing, per platform) where it means the platform: at least
    ``platform_min_accounts``, or ``platform_min_share`` of the accounts and at least
    ``platform_share_min_accounts``. Keeps ``count``'s value."""
    per = on(*cfg.platform_by)
    return (f"{count} >= {num(cfg.platform_min_accounts)}\n"
            f"or\n"
            f"(\n  {count} >= {num(cfg.platform_share_min_accounts)}\n"
            f"  and {per} ({count} / {per} {ACCOUNTS} >= {num(cfg.platform_min_share)})\n)")


def recording_rules(cfg: AlertConfig) -> list[Rule]:
    per = by(*cfg.platform_by)
    platform_recent = recent_increase(_platform_failures(cfg), cfg.platform_reason_window, cfg.selector)
    account_failing = f"""count {by(*_ACCOUNT)} (
{indent(failing_checks(cfg), 2)}
  and {on_probe()}
    sum {by(*c.PROBE_LABELS)} {platform_recent}
)"""
    rules = [
        record(ACCOUNT_FAILING, account_failing),
        # every configured check exports its interval; probes_total is there too once it ran
        record(ACCOUNTS, (f"count {per} (count {by(*_ACCOUNT)} "
                          f"({sel(cfg.selector, c.PROBE_INTERVAL)} or {sel(cfg.selector, c.PROBES)}))")),
        record(FAILING_ACCOUNTS, f"count {per} ({ACCOUNT_FAILING})"),
    ]
    for window in _short_windows(cfg):
        failed = recent_increase(_platform_failures(cfg), window, cfg.selector)
        rules.append(record(failed_accounts_rule(window), f"count {per} (\n  sum {by(*_ACCOUNT)} {failed}\n)"))
    for window in c.SLO_WINDOWS:
        valid = (f"sum {per} (rate({sel(cfg.selector, c.PROBES)}[{window}]))\n"
                 f"  - {_sum_rate_or_zero(cfg, _other_failures(cfg), window)}")
        rules.append(record(
            c.slo_error_ratio_rule(window),
            f"{_sum_rate_or_zero(cfg, _platform_failures(cfg), window)}\n/\n(\n  {valid}\n)\n"))
    return rules


def _short_windows(cfg: AlertConfig) -> list[str]:
    return sorted({w.short for w in (*cfg.slo_page_windows, *cfg.slo_ticket_windows)},
                  key=list(c.SLO_WINDOWS).index)


def _platform_query(cfg: AlertConfig, rule: str) -> str:
    fmt = ", ".join(f"{label}=%[{i}]q" for i, label in enumerate(cfg.platform_by, 1))
    args = " ".join(f"$labels.{label}" for label in cfg.platform_by)
    return f"(printf `{rule}{{{fmt}}}` {args})"


def platform_failing_rule(cfg: AlertConfig) -> Rule:
    n = cfg.check_failing_consecutive
    # sortByLabel: the order of a query's result is not stable
    accounts = (f"{{{{ range sortByLabel \"account\" (query {_platform_query(cfg, ACCOUNT_FAILING)}) }}}}"
                "{{ .Labels.account }} ({{ .Labels.site }}) {{ end }}")
    accounts_zh = (f"{{{{ range sortByLabel \"account\" (query {_platform_query(cfg, ACCOUNT_FAILING)}) }}}}"
                   "{{ .Labels.account }}（{{ .Labels.site }}） {{ end }}")
    total = f"{{{{ range query {_platform_query(cfg, ACCOUNTS)} }}}}{{{{ .Value }}}}{{{{ end }}}}"
    where = " ".join(f"{{{{ $labels.{label} }}}}" for label in cfg.platform_by)
    return alert(
        PLATFORM_FAILING, gate(cfg, FAILING_ACCOUNTS), cfg.platform_failing_for, "critical", "platform",
        "A marketplace is failing for several accounts at once (platform-side errors).",
        f"{{{{ $value }}}} of {total} accounts of {where} have checks failing {n} or more probes in "
        "a row for platform-side reasons (timeouts, 5xx, throttling...): the marketplace or our "
        f"network towards it is the problem, not one shop. Failing: {accounts}. The accounts' own "
        "alerts are held back while this fires.",
        "某市场平台多个店铺同时失败（平台侧错误）。",
        f"{where} 的 {total} 个店铺中有 {{{{ $value }}}} 个店铺的检查因平台侧原因（超时、5xx、限流等）"
        f"连续 {n} 次以上失败：问题在平台或我方到平台的网络，而非单个店铺。失败店铺：{accounts_zh}。"
        "告警期间，各店铺自身的告警会被抑制。",
        keep_firing_for=cfg.platform_keep_firing_for,
    )


def error_budget(cfg: AlertConfig) -> Decimal:
    """1 - objective, exactly (0.99 → 0.01, not 0.010000000000000009)."""
    return Decimal(1) - dec(cfg.slo_objective)


def _burn_condition(cfg: AlertConfig, w: BurnWindow) -> str:
    for window in (w.long, w.short):
        if window not in c.SLO_WINDOWS:
            raise ValueError(f"burn window {window} has no recording rule (catalogue.SLO_WINDOWS)")
    threshold = num(dec(w.factor) * error_budget(cfg))
    per = on(*cfg.platform_by)
    already_paged = f'max_over_time(ALERTS{{alertname="{PLATFORM_FAILING}"}}[{w.short}])'
    return (f"(\n  {c.slo_error_ratio_rule(w.long)} > {threshold}\n"
            f"  and {c.slo_error_ratio_rule(w.short)} > {threshold}\n"
            f"  and {per} (\n{indent(gate(cfg, failed_accounts_rule(w.short)), 4)}\n  )\n"
            f"  unless {per} {already_paged}\n)")


def _burn_alert(cfg: AlertConfig, name: str, windows: tuple[BurnWindow, ...], severity: str, for_: str,
                summary: str, summary_zh: str) -> Rule:
    objective = num(dec(cfg.slo_objective) * 100)
    pairs = " or ".join(f"{num(w.factor)}x over {w.long} and {w.short}" for w in windows)
    pairs_zh = "，或".join(f"{w.long} 与 {w.short} 均超过 {num(w.factor)} 倍" for w in windows)
    lasts = num(round(Decimal(BUDGET_DAYS) / dec(min(w.factor for w in windows)), 1))
    where = " ".join(f"{{{{ $labels.{label} }}}}" for label in cfg.platform_by)
    return alert(
        name, "\nor\n".join(_burn_condition(cfg, w) for w in windows) + "\n", for_, severity, "slo",
        summary,
        f"{where} probes fail for platform-side reasons {{{{ $value | humanizePercentage }}}} of the "
        f"time over the long window, on several accounts, and still fail over the short one "
        f"(it fires at {pairs} the rate the {objective}% objective allows). At the slowest of these paces the "
        f"{BUDGET_DAYS}-day error budget is gone in {lasts} days. Credential failures do not count.",
        summary_zh,
        f"{where} 的探测因平台侧原因失败的比例在长窗口内为 {{{{ $value | humanizePercentage }}}}，"
        f"涉及多个店铺，短窗口内仍在失败（触发条件：{pairs_zh}于 {objective}% 可用性目标允许的速率）；"
        f"照此速度，{BUDGET_DAYS} 天的错误预算最多约 {lasts} 天内耗尽。凭证类失败不计入。",
    )


def burn_rate_rules(cfg: AlertConfig) -> list[Rule]:
    """The page (critical) and the ticket (warning): one rule each, its window pairs or-ed."""
    return [
        _burn_alert(cfg, "MarketplaceErrorBudgetBurnFast", cfg.slo_page_windows, "critical", cfg.slo_page_for,
                    "A marketplace is burning its error budget fast, on several accounts.",
                    "市场平台错误预算正在快速消耗（多个店铺），需要立即处理。"),
        _burn_alert(cfg, "MarketplaceErrorBudgetBurnSlow", cfg.slo_ticket_windows, "warning", cfg.slo_ticket_for,
                    "A marketplace is steadily burning its error budget, on several accounts.",
                    "市场平台错误预算正在持续消耗（多个店铺），请建工单跟进。"),
    ]


def platform_rules(cfg: AlertConfig) -> list[Rule]:
    return [platform_failing_rule(cfg), *burn_rate_rules(cfg)]
