"""Build the Alertmanager configuration (routing, inhibitions, quiet hours, bridge receivers).

Written for the Alertmanager Debian ships (0.25): ``matchers`` / ``source_matchers`` /
``target_matchers`` (0.22+), top-level ``time_intervals`` with a ``location`` (0.25), and
``mute_time_intervals`` on routes. Every receiver is a webhook to the bridge at
``<bridge_url>/alertmanager/<receiver>``; the bridge maps a receiver to its group robots.

Routing, in order (the first matching route wins unless it says ``continue``):

1. ``severity="critical"`` → the on-call chat, and on (``continue: true``) to the owner below;
2. ``component=~"bridge|deploy|exporter"`` (no marketplace label) → the platform chat;
3. ``marketplace=~...`` of each team → that team's chat;
4. anything else → the platform chat (the root receiver: nothing is dropped for lack of a route).

Under 2–4, warnings and info alerts are muted during quiet hours; criticals never are. Muted
notifications are not lost: Alertmanager sends the still-firing alerts at the first group flush
after the quiet hours end.
"""

from __future__ import annotations

from typing import Any

from rules_config import AlertConfig, Routing
from rules_text import Rule

from marketplace_exporter import catalogue as c

Config = dict[str, Any]

#: Prometheus' target label (not an exporter label, so not in the catalogue)
INSTANCE = "instance"

#: alerts a site-down alert makes redundant (same marketplace and site)
SITE_DOWN_MUTES = ("MarketplaceCheckFailing", "MarketplaceProbeResultsStale", "MarketplaceThrottled",
                   "MarketplaceRateLimitHeadroomLow")
#: components the exporter feeds: muted by MarketplaceExporterDown of the same instance
EXPORTER_FED = ("credential", "exporter", "probe")
PLATFORM_COMPONENTS = ("bridge", "deploy", "exporter")


def _re(*values: str) -> str:
    return "|".join(sorted(values))


def _matcher(label: str, *values: str, negate: bool = False) -> str:
    if len(values) == 1:
        return f'{label}{"!=" if negate else "="}"{values[0]}"'
    return f'{label}{"!~" if negate else "=~"}"{_re(*values)}"'


def receiver(cfg: AlertConfig, name: str) -> Config:
    """A webhook receiver posting to the bridge under the receiver's own path."""
    webhook: Config = {
        "url": f"{cfg.bridge_url.rstrip('/')}/alertmanager/{name}",
        "send_resolved": True,
        "max_alerts": cfg.routing.max_alerts,
    }
    if cfg.routing.bridge_credentials_file:
        webhook["http_config"] = {"authorization": {
            "type": "Bearer", "credentials_file": cfg.routing.bridge_credentials_file}}
    return {"name": name, "webhook_configs": [webhook]}


def _severity_routes(routing: Routing) -> list[Config]:
    critical: Config = {
        "matchers": [_matcher("severity", "critical")],
        "group_wait": routing.critical_group_wait,
        "repeat_interval": routing.critical_repeat_interval,
    }
    calm: Config = {"matchers": [_matcher("severity", "info", "warning")]}
    if routing.quiet_hours is not None:
        calm["mute_time_intervals"] = [routing.quiet_hours.name]
    return [critical, calm]


def routes(cfg: AlertConfig) -> Config:
    r = cfg.routing
    children: list[Config] = [
        {
            "receiver": r.oncall_receiver,
            "matchers": [_matcher("severity", "critical")],
            "group_wait": r.critical_group_wait,
            "repeat_interval": r.critical_repeat_interval,
            "continue": True,
        },
        {
            "receiver": r.platform_receiver,
            "matchers": [_matcher("component", *PLATFORM_COMPONENTS)],
            # deploy alerts per service and environment, exporter/bridge alerts per instance
            "group_by": ["alertname", c.SERVICE, c.ENVIRONMENT, INSTANCE],
            "routes": _severity_routes(r),
        },
    ]
    for team in r.teams:
        children.append({
            "receiver": team.receiver,
            "matchers": [_matcher(c.MARKETPLACE, *team.marketplaces)],
            "routes": _severity_routes(r),
        })
    children.append({"receiver": r.platform_receiver, "routes": _severity_routes(r)})
    return {
        "receiver": r.platform_receiver,
        "group_by": list(r.group_by),
        "group_wait": r.group_wait,
        "group_interval": r.group_interval,
        "repeat_interval": r.repeat_interval,
        "routes": children,
    }


def inhibit_rules() -> list[Config]:
    return [
        {
            "source_matchers": [_matcher("alertname", "MarketplaceSiteDown")],
            "target_matchers": [_matcher("alertname", *SITE_DOWN_MUTES)],
            "equal": [c.MARKETPLACE, c.SITE],
        },
        {
            "source_matchers": [_matcher("alertname", "MarketplaceExporterDown")],
            "target_matchers": [_matcher("component", *EXPORTER_FED),
                                _matcher("alertname", "MarketplaceExporterDown", negate=True)],
            "equal": [INSTANCE],
        },
        {
            "source_matchers": [_matcher("alertname", "MarketplaceErrorBudgetBurnFast")],
            "target_matchers": [_matcher("alertname", "MarketplaceErrorBudgetBurnSlow")],
            "equal": [c.MARKETPLACE],
        },
        {
            "source_matchers": [_matcher("alertname", "MarketplaceAlertBridgeDown")],
            "target_matchers": [_matcher("alertname", "MarketplaceAlertBridgeBacklog",
                                         "MarketplaceAlertBridgeDeliveryFailing")],
            "equal": [INSTANCE],
        },
    ]


def time_intervals(routing: Routing) -> list[Config]:
    q = routing.quiet_hours
    if q is None:
        return []
    return [{
        "name": q.name,
        "time_intervals": [{
            "times": [{"start_time": start, "end_time": end} for start, end in q.times],
            "location": q.location,
        }],
    }]


def receiver_names(cfg: AlertConfig) -> list[str]:
    r = cfg.routing
    names = [r.oncall_receiver, r.platform_receiver, *(t.receiver for t in r.teams)]
    return list(dict.fromkeys(names))


def build(cfg: AlertConfig, alerts: list[Rule]) -> Config:
    """The whole config; ``alerts`` (the generated rules) are used to check every named alert exists."""
    known = {rule["alert"] for rule in alerts}
    named = {"MarketplaceSiteDown", "MarketplaceExporterDown", "MarketplaceErrorBudgetBurnFast",
             "MarketplaceErrorBudgetBurnSlow", "MarketplaceAlertBridgeDown",
             "MarketplaceAlertBridgeBacklog", "MarketplaceAlertBridgeDeliveryFailing",
             *SITE_DOWN_MUTES}
    missing = named - known
    if missing:
        raise ValueError(f"alertmanager config names alerts the rules do not define: {sorted(missing)}")
    config: Config = {
        "global": {"resolve_timeout": "5m"},
        "route": routes(cfg),
        "inhibit_rules": inhibit_rules(),
        "receivers": [receiver(cfg, name) for name in receiver_names(cfg)],
    }
    intervals = time_intervals(cfg.routing)
    if intervals:
        config["time_intervals"] = intervals
    return config
