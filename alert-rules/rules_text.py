"""Small text builders shared by the rule modules: PromQL pieces, rule dicts and the YAML writer.

Metric names always come from a :class:`catalogue.MetricSpec` (:func:`sel`), numbers are formatted
on purpose (:func:`num`: no float noise like sloth's ``14.4 * 0.0009999999999999432``), and the YAML
is deterministic, so the committed files diff cleanly.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import yaml
from rules_config import AlertConfig

from marketplace_exporter import catalogue as c
from marketplace_exporter.durations import parse_duration

Rule = dict[str, Any]
Group = dict[str, Any]

SEVERITIES = ("critical", "warning", "info")


def num(value: float | int | Decimal) -> str:
    """A number as PromQL text, formatted on purpose: no float noise, no exponent."""
    dec = value if isinstance(value, Decimal) else Decimal(repr(value))
    return format(dec.normalize(), "f")


def dec(value: float | int) -> Decimal:
    """``value`` as the Decimal of its shortest repr (0.99 → Decimal("0.99"), not 0.98999...)."""
    return Decimal(repr(value))


def seconds(duration: str) -> int:
    """"15m" → 900: windows are written once, as Prometheus durations, and converted here."""
    return int(parse_duration(duration))


def sel(selector: str, spec: c.MetricSpec, *matchers: str, suffix: str = "") -> str:
    """``name{job selector, extra matchers}``; the name always comes from the catalogue."""
    parts = [m for m in (selector, *matchers) if m]
    return f"{spec.name}{suffix}{{{', '.join(parts)}}}"


def matches(label: str, *values: str) -> str:
    """``label="v"`` for one value, ``label=~"a|b"`` (sorted) for several: deterministic text."""
    if len(values) == 1:
        return f'{label}="{values[0]}"'
    return f'{label}=~"{"|".join(sorted(values))}"'


def on(*labels: str) -> str:
    """``on (a, b)`` from catalogue label names."""
    return f"on ({', '.join(labels)})"


def by(*labels: str) -> str:
    """``by (a, b)`` from catalogue label names."""
    return f"by ({', '.join(labels)})"


def on_probe() -> str:
    """``on (marketplace, site, account, check)``: the probe identity."""
    return on(*c.PROBE_LABELS)


def _expr(text: str) -> str:
    stripped = text.strip()
    return stripped + "\n" if "\n" in stripped else stripped


def alert(name: str, expr: str, for_: str, severity: str, component: str, summary: str,
          description: str, summary_zh: str, description_zh: str) -> Rule:
    """One alerting rule: severity and component labels, static summaries, templated descriptions.

    ``component`` (probe, credential, slo, exporter, bridge, deploy) is what Alertmanager routes
    platform alerts and inhibitions on; ``severity`` decides paging and quiet hours.
    """
    assert severity in SEVERITIES, severity
    assert "{{" not in summary + summary_zh, f"{name}: summaries are static"
    return {
        "alert": name,
        "expr": _expr(expr),
        "for": for_,
        "labels": {"severity": severity, "component": component},
        "annotations": {
            "summary": summary,
            "description": description,
            "summary_zh": summary_zh,
            "description_zh": description_zh,
        },
    }


def record(name: str, expr: str, labels: dict[str, str] | None = None) -> Rule:
    """One recording rule."""
    rule: Rule = {"record": name, "expr": _expr(expr)}
    if labels:
        rule["labels"] = labels
    return rule


def add_runbook_links(groups: list[Group], cfg: AlertConfig) -> list[Group]:
    """Give every alert ``runbook_url = base#lower(alertname)`` unless it already has one.

    A post-pass, as kubernetes-mixin's ``add-runbook-links``: no alert can miss its link.
    """
    out: list[Group] = []
    for group in groups:
        rules: list[Rule] = []
        for rule in group["rules"]:
            if "alert" in rule:
                annotations = dict(rule["annotations"])
                annotations.setdefault("runbook_url", f"{cfg.runbook_base_url}#{rule['alert'].lower()}")
                rule = {**rule, "annotations": annotations}
            rules.append(rule)
        out.append({**group, "rules": rules})
    return out


_CLOCK = re.compile(r"^\d+:\d+$")


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (the PromQL), plain style otherwise; no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    # "08:00" must stay a string for every YAML reader (YAML 1.1 reads 22:00 as the integer 1320)
    style = "|" if "\n" in data else ("'" if _CLOCK.match(data) else None)
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_representer)


def dump_yaml(header: str, data: Any) -> str:
    """``header`` + deterministic YAML of ``data`` (key order as built, UTF-8 text kept)."""
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000,
                     default_flow_style=False)
    return header + body
