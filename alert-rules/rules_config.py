"""The one config object of the alert rules and the Alertmanager config, and its profiles.

Like a mixin's ``config.libsonnet`` (style.md §6): every selector, threshold, window and ``for``
duration lives in :class:`AlertConfig`, each with the reason you would change it; the builders in
``rules_*.py`` and ``alertmanager_config.py`` only read it. ``PROFILES["test"]`` is the same config
with short ``for`` durations and Alertmanager timers, for an end-to-end test that must see an alert
within a minute or two; windows and names stay the same, so the test exercises the real rules.

tests/unit/test_dashboards.py loads this file on its own (the dashboards divide by the same SLO
objective): keep its imports to the catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from marketplace_exporter import catalogue as c

DAY_S = 86400


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
    """A team that owns some marketplaces; its group chat is one bridge receiver."""

    receiver: str
    marketplaces: tuple[str, ...]


@dataclass(frozen=True)
class QuietHours:
    """A daily window (local time) in which warnings and info alerts wait for the morning."""

    name: str = "quiet-hours"
    location: str = "Asia/Shanghai"
    #: (start, end) pairs "HH:MM"; Alertmanager needs two ranges to cross midnight
    times: tuple[tuple[str, str], ...] = (("22:00", "24:00"), ("00:00", "08:00"))


@dataclass(frozen=True)
class Routing:
    """Who hears about what, and how often: shaped for chat robots limited to 20 messages/min."""

    #: every critical alert also goes to the on-call chat (continue: true keeps the team's copy)
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
    #: one message per alert name and marketplace: a site outage lists its sites in one message
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


@dataclass(frozen=True)
class AlertConfig:
    """Every tunable of the alert rules and of the routing, each with the reason you would change it."""

    #: selects the exporter's series; change it if your scrape job has another name
    selector: str = 'job="marketplace-exporter"'
    #: selects the bridge's series (its own process and scrape job)
    bridge_selector: str = 'job="marketplace-bridge"'
    #: "N consecutive failures": the last success is at least N probe intervals old (each check
    #: has its own interval, exported as catalogue.PROBE_INTERVAL)
    check_failing_consecutive: int = 3
    #: debounce on top of the N intervals, so one late scrape does not flap the alert
    check_failing_for: str = "1m"
    #: every check of a marketplace site failing N in a row: the site (or our access to it) is
    #: down; it mutes the per-check alerts. With a single check per site, "site down" would only
    #: repeat MarketplaceCheckFailing, hence the minimum.
    site_down_min_checks: int = 2
    site_down_for: str = "1m"
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
    #: the bridge failed deliveries (not counting throttling, which it retries) / kept a backlog
    bridge_failures_window: str = "15m"
    bridge_failures_for: str = "5m"
    bridge_backlog_for: str = "15m"
    bridge_down_for: str = "2m"
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
    #: SLO: share of successful probes per marketplace over the 30-day budget period
    slo_objective: float = 0.99
    slo_page_windows: tuple[BurnWindow, ...] = (BurnWindow("1h", "5m", 14.4), BurnWindow("6h", "30m", 6))
    slo_ticket_windows: tuple[BurnWindow, ...] = (BurnWindow("1d", "2h", 3), BurnWindow("3d", "6h", 1))
    slo_page_for: str = "2m"
    slo_ticket_for: str = "15m"
    #: runbook_url = runbook_base_url + "#" + lower(alertname); set an absolute URL in deployments
    runbook_base_url: str = "docs/runbooks.md"
    #: where Alertmanager posts: <bridge_url>/alertmanager/<receiver> (compose: the bridge service)
    bridge_url: str = "http://bridge:9762"
    routing: Routing = field(default_factory=Routing)


def e2e_profile(base: AlertConfig | None = None) -> AlertConfig:
    """``base`` with every ``for`` and Alertmanager timer short enough for an end-to-end test.

    Windows, thresholds and names are unchanged (the rules under test are the real ones); quiet
    hours are off, because the test may run at 03:00 Shanghai time; no bridge token file unless
    the test passes one (``write_profile(..., bridge_credentials_file=...)``).
    """
    cfg = base or AlertConfig()
    fors = {name: "10s" for name in cfg.__dataclass_fields__ if name.endswith("_for")}
    routing = replace(cfg.routing, group_wait="1s", critical_group_wait="1s", group_interval="5s",
                      repeat_interval="1h", critical_repeat_interval="1h", quiet_hours=None,
                      bridge_credentials_file=None)
    return replace(cfg, routing=routing, **fors)  # type: ignore[arg-type]


PROFILES: dict[str, AlertConfig] = {"default": AlertConfig(), "test": e2e_profile()}
