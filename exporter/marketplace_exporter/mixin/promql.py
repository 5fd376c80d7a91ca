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

from marketplace_exporter import catalogue as c
from marketplace_exporter.durations import parse_duration
from marketplace_exporter.mixin.config import AlertConfig

Rule = dict[str, Any]
Group = dict[str, Any]

SEVERITIES = ("critical", "warning", "info")
#: the watchdog's severity: routed to the heartbeat only, never to a chat
NONE_SEVERITY = "none"


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
          description: str, summary_zh: str, description_zh: str, keep_firing_for: str | None = None) -> Rule:
    """One alerting rule: severity and component labels, static summaries, templated descriptions.

    ``component`` (probe, credential, platform, slo, exporter, bridge, deploy, meta) is what
    Alertmanager routes and inhibits on; ``severity`` decides paging and quiet hours.
    """
    assert severity in (*SEVERITIES, NONE_SEVERITY), severity
    assert "{{" not in summary + summary_zh, f"{name}: summaries are static"
    rule: Rule = {"alert": name, "expr": _expr(expr), "for": for_}
    if keep_firing_for:
        rule["keep_firing_for"] = keep_firing_for
    rule["labels"] = {"severity": severity, "component": component}
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "summary_zh": summary_zh,
        "description_zh": description_zh,
    }
    return rule


def recent_increase(series: str, window: str, target: str) -> str:
    """Counter series that rose within ``window``, robust to a counter's first appearance.

    ``increase()`` needs two samples, so a failure counter that is created at its first failure
    (value 1, not pre-created at 0) shows no increase; the ``unless ... offset`` arm catches a
    series that exists now and did not ``window`` ago (its whole value is new) — but only when the
    target (``up{target}``) was already scraped ``window`` ago: right after Prometheus itself
    starts, every old counter would otherwise look new and page.
    """
    return (f"((increase({series}[{window}]) > 0) or ({series} > 0 unless {series} offset {window} "
            f"and on (job, instance) up{{{target}}} offset {window}))")


def indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line for line in text.splitlines())


def record(name: str, expr: str, labels: dict[str, str] | None = None) -> Rule:
    """One recording rule."""
    rule: Rule = {"record": name, "expr": _expr(expr)}
    if labels:
        rule["labels"] = labels
    return rule


def runbook_url(cfg: AlertConfig, alertname: str, zh: bool = False) -> str:
    """``base#anchor``: the anchor GitHub (and docs/runbooks.md's ``<a id>``) gives the heading;
    ``zh``: the same anchor in the Chinese runbook."""
    return f"{zh_runbook_base(cfg) if zh else cfg.runbook_base_url}#{alertname.lower()}"


def zh_runbook_base(cfg: AlertConfig) -> str:
    """``runbook_base_url_zh``, else the Chinese file beside a ``…/runbooks.md``, else the same URL."""
    if cfg.runbook_base_url_zh:
        return cfg.runbook_base_url_zh
    base = cfg.runbook_base_url
    return base.removesuffix("runbooks.md") + "runbooks.zh-CN.md" if base.endswith("/runbooks.md") else base


def finish_alerts(groups: list[Group], cfg: AlertConfig) -> list[Group]:
    """Post-passes over every alert, as kubernetes-mixin's ``add-runbook-links``, so no alert can
    miss one: ``runbook_url`` (absolute; ``runbook_url_zh`` too with ``both``), the configured
    ``extra_labels``, and the annotations of the configured language (``zh``/``en``: the chosen
    text in ``summary``/``description``; ``both``: English there plus ``summary_zh``/
    ``description_zh``, as the bridge reads them)."""
    out: list[Group] = []
    for group in groups:
        rules: list[Rule] = []
        for rule in group["rules"]:
            if "alert" in rule:
                labels = {**rule["labels"], **cfg.extra_labels}
                rule = {**rule, "labels": labels, "annotations": _language(rule["annotations"], cfg)}
                _add_runbook_links(rule["annotations"], cfg, rule["alert"])
            rules.append(rule)
        out.append({**group, "rules": rules})
    return out


def _add_runbook_links(annotations: dict[str, str], cfg: AlertConfig, alertname: str) -> None:
    """``runbook_url`` in the alert's language; with ``both`` also ``runbook_url_zh`` (when the
    Chinese runbook is another page), which the bridge links in Chinese messages."""
    annotations.setdefault("runbook_url", runbook_url(cfg, alertname, zh=cfg.language == "zh"))
    zh = runbook_url(cfg, alertname, zh=True)
    if cfg.language == "both" and zh != annotations["runbook_url"]:
        annotations.setdefault("runbook_url_zh", zh)


_LOCALISED = ("summary", "description")


def _language(annotations: dict[str, str], cfg: AlertConfig) -> dict[str, str]:
    if cfg.language == "both":
        return dict(annotations)
    out = {k: v for k, v in annotations.items() if not k.endswith("_zh")}
    if cfg.language == "zh":
        for key in _LOCALISED:
            if f"{key}_zh" in annotations:
                out[key] = annotations[f"{key}_zh"]
    return out


_CLOCK = re.compile(r"^\d+:\d+\Z")


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
