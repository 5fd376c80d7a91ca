"""The routing as a prometheus-operator ``AlertmanagerConfig`` (monitoring.coreos.com/v1alpha1).

Same routes, receivers and inhibitions as :mod:`.alertmanager`, in the CRD's camelCase shape with
structured matchers. Differences the CRD forces, each on purpose:

- secrets are Secret references, never file paths: the bridge token is
  ``Secret marketplace-bridge-token, key token`` (``Routing.bridge_credentials_file`` only says
  whether a token is used), the SMTP password ``Secret marketplace-alerting-smtp, key password``;
- v1alpha1 time intervals have no ``location``: the quiet hours are converted to UTC, which is
  exact only for a zone without daylight saving (Asia/Shanghai): a zone with DST is refused;
- the operator adds a ``namespace`` matcher to the top route itself (alerts of this namespace).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from marketplace_exporter.mixin.alertmanager import Matcher, check_names, child_routes, inhibit_rules, receivers
from marketplace_exporter.mixin.config import AlertConfig, QuietHours
from marketplace_exporter.mixin.promql import Rule

Config = dict[str, Any]
API_VERSION = "monitoring.coreos.com/v1alpha1"
KIND = "AlertmanagerConfig"
NAME = "marketplace-exporter"
BRIDGE_TOKEN_SECRET = {"name": "marketplace-bridge-token", "key": "token"}
SMTP_SECRET = {"name": "marketplace-alerting-smtp", "key": "password"}

_KEYS = {"group_by": "groupBy", "group_wait": "groupWait", "group_interval": "groupInterval",
         "repeat_interval": "repeatInterval", "mute_time_intervals": "muteTimeIntervals",
         "send_resolved": "sendResolved", "max_alerts": "maxAlerts", "source_matchers": "sourceMatch",
         "target_matchers": "targetMatch", "auth_username": "authUsername"}


def _matcher(m: Matcher) -> Config:
    return {"name": m[0], "matchType": m[1], "value": m[2]}


def _route(node: Config) -> Config:
    out: Config = {}
    for key, value in node.items():
        if key == "matchers":
            out["matchers"] = [_matcher(m) for m in value]
        elif key == "routes":
            out["routes"] = [_route(child) for child in value]
        else:
            out[_KEYS.get(key, key)] = value
    return out


def _receiver(cfg: AlertConfig, receiver: Config) -> Config:
    out: Config = {"name": receiver["name"]}
    for webhook in receiver.get("webhook_configs", []):
        item: Config = {_KEYS.get(k, k): v for k, v in webhook.items() if k != "http_config"}
        if "http_config" in webhook:
            item["httpConfig"] = {"authorization": {"type": "Bearer", "credentials": dict(BRIDGE_TOKEN_SECRET)}}
        out.setdefault("webhookConfigs", []).append(item)
    for email in receiver.get("email_configs", []):
        item = {_KEYS.get(k, k): v for k, v in email.items() if k != "auth_password_file"}
        if "auth_password_file" in email:
            item["authPassword"] = dict(SMTP_SECRET)
        out.setdefault("emailConfigs", []).append(item)
    return out


def utc_times(quiet: QuietHours) -> list[tuple[str, str]]:
    """The quiet hours as UTC ranges (v1alpha1 has no location), split where they cross midnight."""
    zone = ZoneInfo(quiet.location)
    offsets = {datetime(2026, month, 1, tzinfo=zone).utcoffset() for month in (1, 7)}
    if len(offsets) != 1:
        raise ValueError(f"quiet hours in {quiet.location} (daylight saving) cannot be written as the UTC "
                         "times AlertmanagerConfig v1alpha1 needs; give the quiet hours in UTC")
    offset = int((offsets.pop() or timedelta()).total_seconds() // 60)
    minutes: list[tuple[int, int]] = []
    for start, end in quiet.times:
        s = (_minutes(start) - offset) % 1440
        e = s + (_minutes(end) - _minutes(start))
        minutes += [(s, min(e, 1440))] + ([(0, e - 1440)] if e > 1440 else [])
    merged: list[tuple[int, int]] = []
    for s, e in sorted(minutes):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return [(_clock(s), _clock(e)) for s, e in merged if e > s]


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def build(cfg: AlertConfig, alerts: list[Rule], namespace: str | None = None) -> Config:
    """The AlertmanagerConfig object (``namespace`` None: the one you ``kubectl apply -n`` it to)."""
    check_names(alerts)
    r = cfg.routing
    top: Config = {
        "receiver": r.platform_receiver,
        "groupBy": list(r.group_by),
        "groupWait": r.group_wait,
        "groupInterval": r.group_interval,
        "repeatInterval": r.repeat_interval,
        "routes": [_route(child) for child in child_routes(cfg)],
    }
    spec: Config = {
        "route": top,
        "receivers": [_receiver(cfg, receiver) for receiver in receivers(cfg)],
        "inhibitRules": [_route(rule) for rule in inhibit_rules(cfg)],
    }
    for rule in spec["inhibitRules"]:  # _route renamed the keys; the matchers are still tuples
        for key in ("sourceMatch", "targetMatch"):
            rule[key] = [_matcher(m) for m in rule[key]]
    if r.quiet_hours is not None:
        spec["muteTimeIntervals"] = [{"name": r.quiet_hours.name, "timeIntervals": [{"times": [
            {"startTime": s, "endTime": e} for s, e in utc_times(r.quiet_hours)]}]}]
    metadata: Config = {"name": NAME, "labels": {"app.kubernetes.io/name": NAME}}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}
