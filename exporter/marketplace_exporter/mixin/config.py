"""The one config object of the alert rules and the Alertmanager config, and its profiles.

Like a mixin's ``config.libsonnet`` (style.md §6): every selector, threshold, window and ``for``
duration lives in :class:`AlertConfig`, each with the reason you would change it; the builders in
``rules_*.py`` and ``alertmanager.py`` only read it. A ``mixin.yml`` (``rules generate --config``)
overrides any field by name (:mod:`.loader`); ``alert-rules/mixin.example.yml`` lists them.

Who acts decides the level of an alert:

- **account level** (one shop's token, permission, failing check): the account's owner, at
  ``warning`` unless the account has a check tagged ``critical_tag`` (exported by the exporter as
  ``marketplace_probe_tag_info``), then ``critical``;
- **platform level** (a marketplace failing for several accounts, its error budget, its latency):
  measured across accounts from platform-side reasons only (``platform_reasons``); credential
  reasons never count. While it fires, the account-level alerts of that marketplace are inhibited.

``PROFILES["test"]`` is the same config with short ``for`` durations and Alertmanager timers, for
an end-to-end test that must see an alert within a minute; windows and names stay the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from marketplace_exporter import catalogue as c

DAY_S = 86400
Language = Literal["zh", "en", "both"]

#: a placeholder until the project is published: the canonical docs URL of the runbooks
DEFAULT_RUNBOOK_URL = "https://github.com/marketplace-exporter/marketplace-exporter/blob/main/docs/runbooks.md"

#: failures that say the marketplace (or the network towards it) is unwell: they burn its budget
PLATFORM_REASONS: tuple[str, ...] = (
    c.Reason.TIMEOUT, c.Reason.CONNECT, c.Reason.TLS, c.Reason.THROTTLED, c.Reason.SERVER_ERROR,
    c.Reason.INVALID_RESPONSE, c.Reason.ASSERTION_FAILED,
)
#: failures that are one seller's or ours to fix (credentials, a rejected request, an exporter bug):
#: they page the account's owner but never burn the platform's budget
ACCOUNT_REASONS: tuple[str, ...] = (
    c.Reason.AUTH, c.Reason.PERMISSION, c.Reason.CLIENT_ERROR, c.Reason.INTERNAL,
)


@dataclass(frozen=True)
class CredentialExpiry:
    """Expiry thresholds for one credential kind, with its name in both languages."""

    kind: c.Credential
    name_en: str
    name_zh: str
    warning_s: int = 7 * DAY_S
    critical_s: int = 1 * DAY_S


@dataclass(frozen=True)
class BurnWindow:
    """One multi-window burn-rate condition (Google SRE workbook, chapter 5, table 5-8)."""

    long: str
    short: str
    factor: float


@dataclass(frozen=True)
class Team:
    """An owner: a chat (one bridge receiver) for some marketplaces and, optionally, only some
    accounts of them (regular expressions on the ``account`` label). Account-specific owners must
    come before the marketplace-wide ones: the first matching team gets the alert."""

    receiver: str
    marketplaces: tuple[str, ...]
    accounts: tuple[str, ...] = ()


@dataclass(frozen=True)
class QuietHours:
    """A daily window (local time) in which warnings and info alerts wait for the morning."""

    name: str = "quiet-hours"
    location: str = "Asia/Shanghai"
    #: (start, end) pairs "HH:MM"; Alertmanager needs two ranges to cross midnight
    times: tuple[tuple[str, str], ...] = (("22:00", "24:00"), ("00:00", "08:00"))


@dataclass(frozen=True)
class Fallback:
    """The second route for MarketplaceAlertBridgeDown: straight from Alertmanager, not through the
    bridge (which is the thing that is down). E-mail and/or a webhook of another system (an SMS
    gateway, PagerDuty/Opsgenie's generic webhook). Addresses are placeholders to replace."""

    receiver: str = "bridge-down-fallback"
    email_to: str | None = "oncall@example.com"
    email_from: str = "alertmanager@example.com"
    smarthost: str = "smtp.example.com:587"
    #: file holding the SMTP password (only the path is generated)
    smtp_password_file: str | None = None
    webhook_url: str | None = None


@dataclass(frozen=True)
class Heartbeat:
    """Where the always-firing watchdog goes: an external dead man's switch that pages when the
    pings STOP (healthchecks.io, Cronitor, Opsgenie heartbeats, Grafana OnCall...)."""

    receiver: str = "heartbeat"
    url: str = "https://heartbeat.example.com/ping/marketplace-exporter"
    #: how often Alertmanager re-sends the still-firing watchdog: the switch's period must be longer
    repeat_interval: str = "1m"


@dataclass(frozen=True)
class Routing:
    """Who hears about what, and how often: shaped for chat robots limited to 20 messages/min."""

    #: every critical alert also goes to the on-call chat (continue: true keeps the owner's copy)
    oncall_receiver: str = "oncall"
    #: exporter, bridge and deploy alerts (no marketplace label) and anything no team claims
    platform_receiver: str = "platform"
    teams: tuple[Team, ...] = (
        Team("team-amazon", ("amazon_sp",)),
        Team("team-sea", ("shopee", "lazada", "tiktok_shop")),
        Team("team-americas", ("ebay", "walmart", "mercadolibre", "wish")),
        # the China-based cross-border channels (Ozon Global sells Chinese sellers' goods in Russia)
        Team("team-aliexpress", ("aliexpress", "temu", "ozon")),
    )
    #: one message per alert name and marketplace site: a site's accounts share one message
    group_by: tuple[str, ...] = ("alertname", c.MARKETPLACE, c.SITE)
    #: wait for siblings before the first message (critical waits less)
    group_wait: str = "30s"
    critical_group_wait: str = "10s"
    #: at most one update per group every 5 min: a few dozen groups stay far below 20 msg/min
    group_interval: str = "5m"
    #: re-notify still-firing alerts; chat is not a pager, so not too often
    repeat_interval: str = "4h"
    critical_repeat_interval: str = "1h"
    #: cap per webhook call (the bridge merges and says how many were cut from truncatedAlerts);
    #: keeps one notification well under the bridge's request size limit
    max_alerts: int = 100
    quiet_hours: QuietHours | None = field(default_factory=QuietHours)
    #: file holding the bridge's bearer token (deploy/bridge.yml sets auth.bearer_token, and the
    #: bridge answers 401 without it, which Alertmanager does not retry); None for a bridge without
    #: auth. Only the path is generated: the token never enters alertmanager.yml.
    bridge_credentials_file: str | None = "/etc/alertmanager/bridge-token"
    #: the bridge-down alert's route around the bridge; None leaves it to the bridge alone
    fallback: Fallback | None = field(default_factory=Fallback)
    #: the watchdog's dead man's switch; None drops the watchdog route (the alert still fires)
    heartbeat: Heartbeat | None = field(default_factory=Heartbeat)


@dataclass(frozen=True)
class AlertConfig:
    """Every tunable of the alert rules and of the routing, each with the reason you would change it."""

    #: selects the exporter's series; change it if your scrape job has another name
    selector: str = 'job="marketplace-exporter"'
    #: selects the bridge's series (its own process and scrape job)
    bridge_selector: str = 'job="marketplace-bridge"'
    #: annotations in Chinese, English or both (``summary`` + ``summary_zh``, as the bridge reads them)
    language: Language = "both"
    #: labels added to every alert (e.g. {cluster: prod-sh}); never a label the rules use themselves
    extra_labels: dict[str, str] = field(default_factory=dict)
    #: a check tag (checks[].tags in the exporter config) that makes its account's alerts critical
    critical_tag: str = "critical"
    #: "N consecutive failures": the last success is at least N probe intervals old (each check
    #: has its own interval, exported as catalogue.PROBE_INTERVAL)
    check_failing_consecutive: int = 3
    #: debounce on top of the N intervals; longer than platform_failing_for, so in an outage the
    #: platform alert fires (and inhibits this one) first
    check_failing_for: str = "1m"
    #: the window the failure reason and the platform's error code of an alert are read from
    reason_window: str = "15m"
    #: window over which auth/permission failures are counted; one failure is enough (they are
    #: not transient), the window only decides how long the alert stays up after a fix
    auth_window: str = "15m"
    auth_for: str = "5m"
    #: throttled probes in the window above this count fire; one 429 is normal life
    throttled_window: str = "30m"
    throttled_min_failures: int = 1
    throttled_for: str = "10m"
    #: headroom (0..1) below which the exporter's own probes and the seller's traffic share a
    #: nearly empty bucket
    headroom_ratio: float = 0.1
    headroom_for: str = "15m"
    #: credential kinds that get expiry alerts, each with its own thresholds; access tokens are
    #: refreshed every hour or so by the exporter itself and would page constantly (a broken
    #: refresh shows up as auth failures)
    credentials: tuple[CredentialExpiry, ...] = (
        CredentialExpiry(c.Credential.REFRESH_TOKEN, "refresh token", "刷新令牌（refresh token）"),
        CredentialExpiry(c.Credential.AUTHORIZATION, "seller authorization", "店铺授权"),
        CredentialExpiry(c.Credential.CLIENT_SECRET, "app client secret", "应用密钥（client secret）"),
    )
    credential_warning_for: str = "1h"
    credential_critical_for: str = "10m"
    #: certificates are renewed automatically 30 days out by most CAs; 14 days left means the
    #: renewal did not happen
    tls_warning_s: int = 14 * DAY_S
    tls_for: str = "1h"
    #: time to migrate off an API the marketplace removes
    deprecation_window_s: int = 90 * DAY_S
    deprecation_for: str = "1h"
    #: results are stale when the last run is older than this many intervals
    stale_intervals: int = 3
    stale_for: str = "5m"
    config_reload_for: str = "5m"
    #: Prometheus cannot scrape the exporter (or has no target at all) for this long
    exporter_down_for: str = "2m"
    #: fewer shards scraped than marketplace_exporter_total_shards says (a pod gone), for this long;
    #: longer than a shard's restart with a large config (it loads every accounts file)
    shards_missing_for: str = "5m"
    #: shards claiming one ordinal or disagreeing on the total: passes while a resize rolls out
    shards_inconsistent_for: str = "15m"
    #: the bridge failed deliveries (not counting throttling, which it retries) / kept a backlog
    bridge_failures_window: str = "15m"
    bridge_failures_for: str = "5m"
    bridge_backlog_for: str = "15m"
    bridge_down_for: str = "2m"
    # --- platform level ------------------------------------------------------------------------
    #: the labels a platform is measured by: (marketplace,) or (marketplace, site) when you have
    #: several accounts per site and want a regional outage told apart
    platform_by: tuple[str, ...] = (c.MARKETPLACE,)
    #: failure reasons that count against the platform (the rest are the account's or ours)
    platform_reasons: tuple[str, ...] = PLATFORM_REASONS
    #: a platform is failing when this many accounts fail for platform reasons ...
    platform_min_accounts: int = 3
    #: ... or this share of its accounts, provided at least platform_share_min_accounts fail (one
    #: account is never "the platform": with one shop per site it cannot be told apart)
    platform_min_share: float = 0.5
    platform_share_min_accounts: int = 2
    #: a failing account counts for the platform when it had platform-reason failures this recently
    platform_reason_window: str = "10m"
    platform_failing_for: str = "30s"
    #: keeps the platform alert (and its inhibition of the account alerts) up this long after the
    #: accounts recover, so their resolution is never sent as a stray "firing"; needs Prometheus
    #: >= 2.42 (keep_firing_for): set to null for older ones
    platform_keep_firing_for: str | None = "2m"
    #: SLO: share of probes failing for platform reasons, per platform, over 30 days
    slo_objective: float = 0.99
    slo_page_windows: tuple[BurnWindow, ...] = (BurnWindow("1h", "5m", 14.4), BurnWindow("6h", "30m", 6))
    slo_ticket_windows: tuple[BurnWindow, ...] = (BurnWindow("1d", "2h", 3), BurnWindow("3d", "6h", 1))
    slo_page_for: str = "2m"
    slo_ticket_for: str = "15m"
    #: latency against the check's own history: p95 over latency_window above latency_factor ×
    #: the 7-day p95 of that p95 (and above the floor, so 50 → 150 ms is no alert)
    latency_quantile: float = 0.95
    latency_window: str = "15m"
    latency_baseline_window: str = "7d"
    #: the baseline is trusted once the check has this much history
    latency_min_history: str = "1d"
    latency_factor: float = 2.0
    latency_floor_s: float = 1.0
    latency_for: str = "15m"
    # --- deploys -----------------------------------------------------------------------------
    #: a failed or rolled-back deploy marker alerts for this long (unless a later deploy succeeded)
    deploy_failed_window: str = "30m"
    deploy_failed_for: str = "0m"
    #: a failed post-deploy verification (the gate's "fail") alerts for this long
    deploy_verify_window: str = "30m"
    deploy_verify_for: str = "0m"
    #: a deploy marked while a freeze window covered its environment alerts for this long
    deploy_freeze_window: str = "1h"
    deploy_freeze_for: str = "0m"
    #: "errors rose after a deploy": the error ratio over this window after the latest deploy ...
    post_deploy_window: str = "15m"
    #: ... against the ratio over this baseline before it ...
    post_deploy_baseline: str = "1h"
    #: ... is more than this many times higher and above this floor (so 0 → 0.1% is no alert)
    post_deploy_factor: float = 2
    post_deploy_min_ratio: float = 0.05
    post_deploy_for: str = "5m"
    #: deploys of these environments only (empty: all); set it to your production environment
    #: names, because the seller's traffic carries no environment label
    post_deploy_environments: tuple[str, ...] = ()
    # --- links and delivery --------------------------------------------------------------------
    #: runbook_url = runbook_base_url + "#" + lower(alertname): absolute, so a chat link works
    runbook_base_url: str = DEFAULT_RUNBOOK_URL
    #: the Chinese runbook (docs/runbooks.zh-CN.md: the same headings, so the same anchors), linked by
    #: ``language: zh`` alerts and, with ``both``, by a ``runbook_url_zh`` annotation the bridge's
    #: Chinese messages use; unset: runbook_base_url with a final ``runbooks.md`` turned into
    #: ``runbooks.zh-CN.md`` (any other URL, e.g. a wiki page, is used for both languages)
    runbook_base_url_zh: str | None = None
    #: where Alertmanager posts: <bridge_url>/alertmanager/<receiver> (compose: the bridge service)
    bridge_url: str = "http://bridge:9762"
    routing: Routing = field(default_factory=Routing)


#: the test profile's ``for`` durations: account-level 10 s, the platform alert faster (so it
#: inhibits the account alerts of an outage from the start), the burn rates slower than a
#: three-probe outage detection at the demo's 5 s interval (so the platform alert speaks first)
E2E_FOR = "10s"
E2E_FOR_OVERRIDES = {"platform_failing_for": "2s", "slo_page_for": "45s", "slo_ticket_for": "45s"}


def e2e_profile(base: AlertConfig | None = None) -> AlertConfig:
    """``base`` with every ``for`` and Alertmanager timer short enough for an end-to-end test.

    Windows, thresholds and names are unchanged (the rules under test are the real ones); quiet
    hours are off, because the test may run at 03:00 Shanghai time; no bridge token file unless
    the test passes one (``write_profile(..., bridge_credentials_file=...)``); no heartbeat or
    fallback receiver unless ``base`` names real ones (the defaults are example.com placeholders).
    """
    cfg = base or AlertConfig()
    fors = {name: E2E_FOR_OVERRIDES.get(name, E2E_FOR) for name in cfg.__dataclass_fields__
            if name.endswith("_for") and getattr(cfg, name) is not None}
    r = cfg.routing
    routing = replace(r, group_wait="1s", critical_group_wait="1s", group_interval="5s",
                      repeat_interval="1h", critical_repeat_interval="1h", quiet_hours=None,
                      bridge_credentials_file=None,
                      # the placeholder addresses (example.com) are never contacted from a test
                      heartbeat=None if r.heartbeat == Heartbeat() else r.heartbeat,
                      fallback=None if r.fallback == Fallback() else r.fallback)
    return replace(cfg, routing=routing, **fors)  # type: ignore[arg-type]


PROFILES: dict[str, AlertConfig] = {"default": AlertConfig(), "test": e2e_profile()}
