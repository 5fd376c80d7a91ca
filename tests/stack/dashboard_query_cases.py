"""Every query of every committed dashboard as a test case (panel targets, template variables,
annotations), Grafana's variables filled in as the live test runs them, and the queries that cannot
have data in a test run, each with its reason (test_dashboards_live.py reports them as skips)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"

#: Grafana's built-in variables as the live test fills them in: windows long enough for the data a
#: one-minute stack run has, short enough that a fault injected during the run dominates them
WINDOWS = {"__rate_interval": "30s", "__interval": "30s", "__range": "10m"}

#: (dashboard, panel title[, refId]) → why that query has no data in a test run
EXEMPT: dict[tuple[str, ...], str] = {
    ("deploys", "Grafana annotation pushes"):
        "needs a Grafana HTTP API to push to (deploys.grafana); there is no Grafana server here",
    ("exporter", "Traffic records", "B"):
        "series folded into 'other' only after a service exceeds its label-combination cap",
    ("deploys", "Error ratio: last 30 min vs the 30 min before", "B"):
        "compares with 30 minutes ago (offset 30m): the run's Prometheus has a minute of history",
    ("credentials", "TLS certificates by time to expiry"):
        "the demo simulator speaks plain HTTP and the demo config names no tls_hosts: no certificate to read",
    ("marketplace", "Quota-budget skips"):
        "no demo check spends its quota budget within a one-minute run (the 'Quota-budget skips (time "
        "range)' count panel is checked)",
}


@dataclass(frozen=True)
class Query:
    dashboard: str
    where: str
    expr: str
    #: "range" (a time-series panel), "instant" (stat/table) or "series" (a label_values variable)
    kind: str
    key: tuple[str, ...] = field(default=())
    #: label columns the panel's data links read (``${__data.fields.<label>}``)
    link_fields: tuple[str, ...] = field(default=())

    @property
    def id(self) -> str:
        return f"{self.dashboard}:{self.where}"


_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<selector>.*),\s*(?P<label>\w+)\s*\)\s*$", re.S)


def _panels(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in node.get("panels", []):
        yield panel
        yield from _panels(panel)


def dashboard_queries() -> list[Query]:
    queries = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        name, dashboard = path.stem, json.loads(path.read_text(encoding="utf-8"))
        for panel in _panels(dashboard):
            for target in panel.get("targets", []):
                links = " ".join(link["url"] for link in panel["fieldConfig"]["defaults"].get("links", []))
                english = panel["title"].rpartition(" · ")[2]  # titles read "中文 · English"
                queries.append(Query(name, f"{english} [{target['refId']}]", target["expr"],
                                     "instant" if target.get("instant") else "range",
                                     (name, english, target["refId"]),
                                     tuple(sorted(set(re.findall(r"\$\{__data\.fields\.(\w+)\}", links))))))
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                match = _LABEL_VALUES.match(variable["query"])
                assert match, f"{name}: variable {variable['name']} is not label_values(...)"
                queries.append(Query(name, f"variable {variable['name']}", match.group("selector"), "series",
                                     (name, f"${variable['name']}")))
        for annotation in dashboard["annotations"]["list"]:
            if "expr" in annotation:
                queries.append(Query(name, f"annotation {annotation['name']}", annotation["expr"], "range",
                                     (name, f"annotation {annotation['name']}")))
    return queries


def concrete(expr: str) -> str:
    """Grafana's variables filled in: built-in windows from :data:`WINDOWS`, dashboard variables match all."""
    for name, window in WINDOWS.items():
        expr = re.sub(r"\$\{?" + name + r"\b\}?", window, expr)
    return re.sub(r"\$\{?\w+(:\w+)?\}?", ".*", expr)


def exemption(query: Query) -> str | None:
    for length in (3, 2):
        reason = EXEMPT.get(query.key[:length])
        if reason is not None:
            return reason
    return None
