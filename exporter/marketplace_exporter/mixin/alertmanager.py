"""Build the Alertmanager routing (routes, inhibitions, quiet hours, receivers) as plain data.

Written for Alertmanager >= 0.25 (Debian's): ``matchers`` / ``source_matchers`` /
``target_matchers`` (0.22+), top-level ``time_intervals`` with a ``location`` (0.25), and
``mute_time_intervals`` on routes. Three shapes come out of the same data:

- :func:`build` — a whole ``alertmanager.yml`` (the example the compose stack runs);
- :func:`fragment` — one route (matching this project's alerts) with its receivers, inhibitions
  and time intervals, to merge into an existing Alertmanager config;
- :mod:`.operator` — the same as a prometheus-operator ``AlertmanagerConfig`` object.

Routing, in order (the first matching route wins unless it says ``continue``):

0. the watchdog → the heartbeat (dead man's switch) only; never a chat;
1. MarketplaceAlertBridgeDown → the fallback receiver (e-mail/webhook, NOT the bridge), and on;
2. ``severity="critical"`` → the on-call chat, and on (``continue: true``) to the owner below;
3. ``component=~"bridge|deploy|exporter"`` (no marketplace label) → the platform chat;
4. each team's ``marketplace`` (and ``account``, for account-specific owners) → that team's chat;
5. anything else → the platform chat (the root receiver: nothing is dropped for lack of a route).

Under 3–5, warnings and info alerts are muted during quiet hours; criticals never are.
"""

from __future__ import annotations

from typing import Any

from marketplace_exporter import catalogue as c
from marketplace_exporter.mixin.config import AlertConfig, Routing
from marketplace_exporter.mixin.promql import Rule
from marketplace_exporter.mixin.rules_account import PLATFORM_INHIBITS
from marketplace_exporter.mixin.rules_ops import WATCHDOG
from marketplace_exporter.mixin.rules_platform import PLATFORM_FAILING

Config = dict[str, Any]
#: (label, operator, value): rendered as ``label=~"value"`` or as the operator's structured form
Matcher = tuple[str, str, str]

#: Prometheus' target label (not an exporter label, so not in the catalogue)
INSTANCE = "instance"
BRIDGE_DOWN = "MarketplaceAlertBridgeDown"
BURN_FAST = "MarketplaceErrorBudgetBurnFast"
BURN_SLOW = "MarketplaceErrorBudgetBurnSlow"
#: components the exporter feeds: muted by MarketplaceExporterDown of the same instance
EXPORTER_FED = ("credential", "exporter", "probe")
PLATFORM_COMPONENTS = ("bridge", "deploy", "exporter")
#: the receiver the watchdog goes to when no heartbeat is configured (no integration: dropped)
WATCHDOG_SINK = "watchdog-sink"


def matcher(label: str, *values: str, negate: bool = False) -> Matcher:
    if len(values) == 1:
        return (label, "!=" if negate else "=", values[0])
    return (label, "!~" if negate else "=~", "|".join(sorted(values)))


def as_text(m: Matcher) -> str:
    return f'{m[0]}{m[1]}"{m[2]}"'


def named_alerts() -> set[str]:
    """Every alert name the routing refers to (checked against the generated rules)."""
    return {WATCHDOG, BRIDGE_DOWN, BURN_FAST, BURN_SLOW, PLATFORM_FAILING, "MarketplaceExporterDown",
            "MarketplaceAlertBridgeBacklog", "MarketplaceAlertBridgeDeliveryFailing", *PLATFORM_INHIBITS}


def _bridge_receiver(cfg: AlertConfig, name: str) -> Config:
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


def receivers(cfg: AlertConfig) -> list[Config]:
    r = cfg.routing
    names = [r.oncall_receiver, r.platform_receiver, *(t.receiver for t in r.teams)]
    out = [_bridge_receiver(cfg, name) for name in dict.fromkeys(names)]
    if r.fallback is not None:
        fb = r.fallback
        fallback: Config = {"name": fb.receiver}
        if fb.email_to:
            email: Config = {"to": fb.email_to, "from": fb.email_from, "smarthost": fb.smarthost,
                             "send_resolved": True}
            if fb.smtp_password_file:
                email["auth_username"] = fb.email_from
                email["auth_password_file"] = fb.smtp_password_file
            fallback["email_configs"] = [email]
        if fb.webhook_url:
            fallback["webhook_configs"] = [{"url": fb.webhook_url, "send_resolved": True}]
        out.append(fallback)
    if r.heartbeat is not None:
        out.append({"name": r.heartbeat.receiver,
                    "webhook_configs": [{"url": r.heartbeat.url, "send_resolved": False}]})
    else:
        out.append({"name": WATCHDOG_SINK})
    return out


def _severity_routes(routing: Routing) -> list[Config]:
    critical: Config = {
        "matchers": [matcher("severity", "critical")],
        "group_wait": routing.critical_group_wait,
        "repeat_interval": routing.critical_repeat_interval,
    }
    calm: Config = {"matchers": [matcher("severity", "info", "warning")]}
    if routing.quiet_hours is not None:
        calm["mute_time_intervals"] = [routing.quiet_hours.name]
    return [critical, calm]


def child_routes(cfg: AlertConfig) -> list[Config]:
    """The routes under the root, with structured matchers (see :func:`as_text`)."""
    r = cfg.routing
    heartbeat = r.heartbeat
    children: list[Config] = [{
        "receiver": heartbeat.receiver if heartbeat else WATCHDOG_SINK,
        "matchers": [matcher("alertname", WATCHDOG)],
        "group_by": ["alertname"],
        "group_wait": "0s",
        "group_interval": heartbeat.repeat_interval if heartbeat else "5m",
        "repeat_interval": heartbeat.repeat_interval if heartbeat else "24h",
    }]
    if r.fallback is not None:
        children.append({"receiver": r.fallback.receiver, "matchers": [matcher("alertname", BRIDGE_DOWN)],
                         "group_wait": r.critical_group_wait, "continue": True})
    children += [
        {
            "receiver": r.oncall_receiver,
            "matchers": [matcher("severity", "critical")],
            "group_wait": r.critical_group_wait,
            "repeat_interval": r.critical_repeat_interval,
            "continue": True,
        },
        {
            "receiver": r.platform_receiver,
            "matchers": [matcher("component", *PLATFORM_COMPONENTS)],
            # deploy alerts per service and environment, exporter/bridge alerts per instance
            "group_by": ["alertname", c.SERVICE, c.ENVIRONMENT, INSTANCE],
            "routes": _severity_routes(r),
        },
    ]
    for team in r.teams:
        matchers = [matcher(c.MARKETPLACE, *team.marketplaces)]
        if team.accounts:
            matchers.append(matcher(c.ACCOUNT, *team.accounts))
        children.append({"receiver": team.receiver, "matchers": matchers, "routes": _severity_routes(r)})
    children.append({"receiver": r.platform_receiver, "routes": _severity_routes(r)})
    return children


def route(cfg: AlertConfig, matchers: list[Matcher] | None = None) -> Config:
    r = cfg.routing
    top: Config = {"receiver": r.platform_receiver}
    if matchers:
        top["matchers"] = matchers
    top.update({
        "group_by": list(r.group_by),
        "group_wait": r.group_wait,
        "group_interval": r.group_interval,
        "repeat_interval": r.repeat_interval,
        "routes": child_routes(cfg),
    })
    return top


def inhibit_rules(cfg: AlertConfig) -> list[Config]:
    platform = list(cfg.platform_by)
    return [
        {   # an outage is one page: the platform alert holds back its accounts' own alerts
            "source_matchers": [matcher("alertname", PLATFORM_FAILING)],
            "target_matchers": [matcher("alertname", *PLATFORM_INHIBITS, BURN_FAST, BURN_SLOW)],
            "equal": platform,
        },
        {
            "source_matchers": [matcher("alertname", "MarketplaceExporterDown")],
            "target_matchers": [matcher("component", *EXPORTER_FED),
                                matcher("alertname", "MarketplaceExporterDown", negate=True)],
            "equal": [INSTANCE],
        },
        {
            "source_matchers": [matcher("alertname", BURN_FAST)],
            "target_matchers": [matcher("alertname", BURN_SLOW)],
            "equal": platform,
        },
        {
            "source_matchers": [matcher("alertname", BRIDGE_DOWN)],
            "target_matchers": [matcher("alertname", "MarketplaceAlertBridgeBacklog",
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


def _text_matchers(node: Any) -> Any:
    """Structured matchers → Alertmanager's text form, everywhere in a route/inhibit tree."""
    if isinstance(node, list):
        return [_text_matchers(item) for item in node]
    if isinstance(node, dict):
        return {k: ([as_text(m) for m in v] if k.endswith("matchers") else _text_matchers(v))
                for k, v in node.items()}
    return node


def check_names(alerts: list[Rule]) -> None:
    missing = named_alerts() - {rule["alert"] for rule in alerts}
    if missing:
        raise ValueError(f"alertmanager config names alerts the rules do not define: {sorted(missing)}")


def build(cfg: AlertConfig, alerts: list[Rule]) -> Config:
    """The whole config; ``alerts`` (the generated rules) are used to check every named alert exists."""
    check_names(alerts)
    config: Config = {
        "global": {"resolve_timeout": "5m"},
        "route": _text_matchers(route(cfg)),
        "inhibit_rules": _text_matchers(inhibit_rules(cfg)),
        "receivers": receivers(cfg),
    }
    intervals = time_intervals(cfg.routing)
    if intervals:
        config["time_intervals"] = intervals
    return config


#: what selects this project's alerts in someone else's Alertmanager
OWN_ALERTS: Matcher = ("alertname", "=~", "Marketplace.+")


def fragment(cfg: AlertConfig, alerts: list[Rule]) -> Config:
    """What to merge into an existing config: put ``route`` FIRST under your root ``routes:``
    (it matches only ``alertname=~"Marketplace.+"``), and append the rest to your own lists."""
    check_names(alerts)
    out: Config = {
        "route": _text_matchers(route(cfg, [OWN_ALERTS])),
        "inhibit_rules": _text_matchers(inhibit_rules(cfg)),
        "receivers": receivers(cfg),
    }
    intervals = time_intervals(cfg.routing)
    if intervals:
        out["time_intervals"] = intervals
    return out
