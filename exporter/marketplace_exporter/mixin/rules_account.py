"""Account-level alerts: one shop's failing check, its credentials, its throttling and headroom.

They go to the account's owner. A failing check, an auth failure and a credential about to expire
are ``warning`` unless the account has a check tagged ``cfg.critical_tag`` (the exporter exports
``marketplace_probe_tag_info``): each such alert is two rules of one name, ``and on (account)``
the tag at ``critical`` and ``unless`` it at ``warning``. The failure reason and the platform's own
error code are read into annotations (``reason``, ``code``) by a query in the template: labels
would have to be stable for the alert's lifetime, a shop failing with timeouts, then 500s, would
otherwise resolve and fire again.
"""

from __future__ import annotations

from marketplace_exporter import catalogue as c
from marketplace_exporter.mixin.config import DAY_S, AlertConfig, CredentialExpiry
from marketplace_exporter.mixin.promql import (
    Rule,
    alert,
    by,
    indent,
    matches,
    num,
    on,
    on_probe,
    recent_increase,
    sel,
)

_ID = "{{ $labels.marketplace }}/{{ $labels.account }} ({{ $labels.site }}) check {{ $labels.check }}"
_ID_ZH = "{{ $labels.marketplace }}/{{ $labels.account }}（{{ $labels.site }}）检查项 {{ $labels.check }}"
_ACCOUNT = (c.MARKETPLACE, c.SITE, c.ACCOUNT)
#: the account-level alerts a platform-level alert of the same marketplace inhibits
PLATFORM_INHIBITS = ("MarketplaceCheckFailing", "MarketplaceAuthFailing", "MarketplaceThrottled",
                     "MarketplaceRateLimitHeadroomLow", "MarketplaceProbeResultsStale")


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


def tagged_critical(cfg: AlertConfig) -> str:
    return sel(cfg.selector, c.PROBE_TAG_INFO, matches(c.TAG, cfg.critical_tag))


def by_account_tier(rule: Rule, cfg: AlertConfig) -> list[Rule]:
    """``rule`` as two rules: critical for accounts with a check tagged critical, else warning."""
    expr = rule["expr"].rstrip("\n")
    join = on(*_ACCOUNT)
    out = []
    for severity, op in (("critical", "and"), ("warning", "unless")):
        out.append({**rule, "expr": f"(\n{indent(expr, 2)}\n)\n{op} {join}\n  {tagged_critical(cfg)}\n",
                    "labels": {**rule["labels"], "severity": severity}})
    return out


def _probe_filter(cfg: AlertConfig) -> tuple[str, str]:
    """``{job..., marketplace=%q, ...}`` and its ``printf`` arguments: a query for this alert's check."""
    # explicit argument indexes: the query names the series three times (recent_increase)
    fmt = ", ".join([cfg.selector, *(f"{label}=%[{i}]q" for i, label in enumerate(c.PROBE_LABELS, 1))])
    args = " ".join(f"$labels.{label}" for label in c.PROBE_LABELS)
    return fmt, args


def latest_label(cfg: AlertConfig, spec: c.MetricSpec, label: str, extra: str = "") -> str:
    """A template printing ``label`` of the counter series of this check that rose most in the
    reason window (empty when none did): the reason or the platform's code of the failures."""
    fmt, args = _probe_filter(cfg)
    matchers = fmt + (f", {extra}" if extra else "")
    series = f"{spec.name}{{{matchers}}}"
    query = f"topk(1, {recent_increase(series, cfg.reason_window, cfg.selector)})"
    return f"{{{{ range query (printf `{query}` {args}) }}}}{{{{ .Labels.{label} }}}}{{{{ end }}}}"


def _with_cause(rule: Rule, cfg: AlertConfig, reason: bool = True) -> Rule:
    annotations = dict(rule["annotations"])
    if reason:
        annotations[c.REASON] = latest_label(cfg, c.PROBE_FAILURES, c.REASON)
    annotations[c.CODE] = latest_label(cfg, c.API_ERRORS, c.CODE)
    return {**rule, "annotations": annotations}


def check_rules(cfg: AlertConfig) -> list[Rule]:
    n = cfg.check_failing_consecutive
    s = cfg.selector
    failing = alert(
        "MarketplaceCheckFailing", failing_checks(cfg), cfg.check_failing_for, "warning", "probe",
        f"A marketplace check failed {n} or more times in a row.",
        f"{_ID} has failed at least {n} consecutive probes (reason and platform code below; "
        f"{c.PROBE_FAILURES.name} has the history).",
        f"市场接口检查连续失败 {n} 次及以上。",
        f"{_ID_ZH} 已连续至少 {n} 次探测失败（原因与平台错误码见下；历史见 {c.PROBE_FAILURES.name}）。",
    )
    auth = alert(
        "MarketplaceAuthFailing",
        recent_increase(sel(s, c.PROBE_FAILURES, matches(c.REASON, c.Reason.AUTH, c.Reason.PERMISSION)),
                        cfg.auth_window, cfg.selector),
        cfg.auth_for, "warning", "probe",
        "A marketplace rejects an account's credentials (expired token or missing permission).",
        f"{_ID} failed with reason {{{{ $labels.reason }}}} "
        f"{{{{ printf \"%.0f\" $value }}}} time(s) in the last {cfg.auth_window}.",
        "市场平台拒绝了某店铺的凭证（令牌过期或缺少权限）。",
        f"{_ID_ZH} 最近 {cfg.auth_window} 内因 {{{{ $labels.reason }}}} "
        f"失败 {{{{ printf \"%.0f\" $value }}}} 次。",
    )
    return [
        *by_account_tier(_with_cause(failing, cfg), cfg),
        *by_account_tier(_with_cause(auth, cfg, reason=False), cfg),
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
    # one account's credential is exported by the shard that owns the account, but by two processes
    # while a resharding rollout moves it (the old owner still on the old total) or when two
    # exporters share an account: the soonest expiry per account and credential, one alert, no
    # ``instance`` (the alert is about the seller's credential, not about a process)
    expiry = (f"min {by('job', c.MARKETPLACE, c.SITE, c.ACCOUNT, c.CREDENTIAL)} "
              f"({sel(cfg.selector, c.CREDENTIAL_EXPIRY, matches(c.CREDENTIAL, cred.kind))})")
    warn_en, warn_zh = _days(cred.warning_s)
    crit_en, crit_zh = _days(cred.critical_s)
    soon = alert(
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
    )
    critical = alert(
        "MarketplaceCredentialExpiringCritical",
        f"({expiry} - time()) < {num(cred.critical_s)}",
        cfg.credential_critical_for, "warning", "credential",
        f"A marketplace {cred.name_en} expires within {crit_en} or has expired.",
        f"The {cred.name_en} of {_CRED_WHO} expires in {{{{ $value | humanizeDuration }}}} "
        "(negative: already expired); every call with it fails from then on.",
        f"{cred.name_zh}将在 {crit_zh}内过期或已经过期。",
        f"{_CRED_WHO_ZH}的{cred.name_zh}剩余有效期 {{{{ $value | humanizeDuration }}}}"
        "（负数表示已过期），过期后所有调用都会失败，请立即续期或联系卖家重新授权。",
    )
    rules = [soon, *by_account_tier(critical, cfg)]
    for rule in rules:  # the series' own value; keeps the per-kind rules distinct for promtool
        rule["labels"] = {**rule["labels"], c.CREDENTIAL: str(cred.kind)}
    return rules


def credential_rules(cfg: AlertConfig) -> list[Rule]:
    rules: list[Rule] = []
    for cred in cfg.credentials:
        rules.extend(credential_expiry_rules(cfg, cred))
    # every shard that connected to a host exports its certificate, and every replica the config's
    # calendar: one value per host / API (the soonest), so one alert, labelled with the host / API
    tls = f"min {by('job', c.HOST)} ({sel(cfg.selector, c.TLS_CERT_EXPIRY)})"
    deprecation = f"min {by('job', c.MARKETPLACE, c.API)} ({sel(cfg.selector, c.API_DEPRECATION)})"
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
