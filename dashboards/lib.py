"""House style for the marketplace-exporter dashboards, built on ``grafanalib.core``.

The pattern of grafanalib's own ``weave.py``: small constructors that fix the conventions once, so
each ``*.dashboard.py`` only says *what* to chart.

- Every panel and every query target uses the ``datasource`` template variable as the dict
  ``{"type": "prometheus", "uid": "${datasource}"}``, so the JSON imports into any Grafana.
- Metric and label names come from ``marketplace_exporter.catalogue``; never type one here.
- Every Stat and Table gets explicit thresholds; every template variable gets a default.
- Options Grafana would otherwise fill from its defaults are written out, so every panel validates
  against the panel-plugin schema derived from ``@grafana/schema`` (``dashboards/schema/``).
- Deploy markers are an annotation on every dashboard (which deploy came right before it broke).

grafanalib is a dashboards-only (dev) dependency: nothing in the exporter imports this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grafanalib import core

from marketplace_exporter import catalogue as cat

#: the one datasource every panel, target and query variable uses
DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}

#: the import input: Grafana's Import asks for a Prometheus datasource and writes it into the
#: ``datasource`` variable's default (provisioned copies fall back to the default datasource)
DS_INPUT = "DS_PROMETHEUS"

#: the probe SLO the burn-rate panels are drawn against: 99 % of probes per marketplace succeed
#: (the objective alert-rules/ uses for its burn-rate alerts; the recording rules carry the ratios)
SLO_OBJECTIVE = 0.99

#: Grafana's ``All`` option for multi-value variables
ALL = "$__all"

DAY_S = 86400
WEEK_S = 7 * DAY_S

#: the label selector of the marketplace drill-down's variables, by label
VARIABLE_LABELS: tuple[str, ...] = (cat.MARKETPLACE, cat.SITE, cat.ACCOUNT, cat.CHECK)

# --- thresholds (explicit for every Stat/Table: a strict schema and a readable colour) ------------


def steps(base: str, *levels: tuple[float, str]) -> list[dict[str, Any]]:
    """Threshold steps: ``base`` colour below the first level, then each ``(value, colour)``."""
    return [{"color": base, "value": None}] + [{"color": colour, "value": value} for value, colour in levels]


#: 0 is fine, anything above is bad (counts of failing/stale things)
COUNT_BAD = steps("green", (1, "red"))
#: probe_success-like values: 0 red, 1 green
UP_DOWN = steps("red", (1, "green"))
#: seconds left before something expires: red under a day, orange under a week
EXPIRY_7D_1D = steps("red", (DAY_S, "orange"), (WEEK_S, "green"))
#: seconds left before an API is removed: red under 30 days, orange under 90 days
DEPRECATION_90D_30D = steps("red", (30 * DAY_S, "orange"), (90 * DAY_S, "green"))
#: a success ratio: red under 95 %, orange under 99 %
RATIO = steps("red", (0.95, "orange"), (0.99, "green"))
#: rate-limit headroom: red under 10 %, orange under 30 %
HEADROOM = steps("red", (0.1, "orange"), (0.3, "green"))
#: neutral (colour carries no meaning)
NEUTRAL = steps("blue")
#: SLO burn rate: orange from the 6x (page, 6 h) rate, red from the 14.4x (page, 1 h) rate
BURN_RATE = steps("green", (1, "yellow"), (6, "orange"), (14.4, "red"))
#: freeze windows and other on/off states where "on" deserves attention
ON_ATTENTION = steps("green", (1, "orange"))

#: value mappings for probe_success-like values
UP_DOWN_TEXT: list[dict[str, Any]] = [{"type": "value", "options": {
    "0": {"text": "FAILING", "color": "red", "index": 0}, "1": {"text": "OK", "color": "green", "index": 1}}}]
#: value mappings for freeze windows
FREEZE_TEXT: list[dict[str, Any]] = [{"type": "value", "options": {
    "0": {"text": "open", "color": "green", "index": 0}, "1": {"text": "FROZEN", "color": "orange", "index": 1}}}]

# --- selectors -------------------------------------------------------------------------------------


def selector(labels: Sequence[str] = VARIABLE_LABELS, regex: dict[str, str] | None = None, **extra: str) -> str:
    """``{label=~"$label", ...}`` for the drill-down variables, plus ``regex`` and exact ``extra`` matchers."""
    parts = [f'{label}=~"${label}"' for label in labels]
    parts += [f'{label}=~"{value}"' for label, value in (regex or {}).items()]
    parts += [f'{label}="{value}"' for label, value in extra.items()]
    return "{" + ", ".join(parts) + "}"


def by(*labels: str) -> str:
    """``by (a, b)`` for aggregations."""
    return "by (" + ", ".join(labels) + ")"


# --- families several processes export (catalogue.REPLICATED; docs/metrics.md, "One answer from
# several processes"): every shard that connected to a host, every replica sharing the deploy audit
# log, shard 0 before and after a restart (a new ``instance``) export the same value ---------------


def once(spec: cat.MetricSpec, matchers: str = "", agg: str = "max") -> str:
    """``agg by (the family's own labels) (series)``: one series per thing (host, account, marker),
    not one per process; ``min`` for an expiry (the soonest a process saw), else ``max``. For the
    replicated families, and for an account's credentials (on two shards while a resize moves it)."""
    return f"{agg} {by(*spec.labels)} ({spec.name}{matchers})"


def expiring_within(spec: cat.MetricSpec, seconds: int) -> str:
    """How many credentials / hosts / APIs expire within ``seconds``: each counted once, at the
    soonest expiry any process exports for it (not once per shard that saw it)."""
    return f"count({once(spec, agg='min')} - time() < {seconds}) or vector(0)"


def time_left(spec: cat.MetricSpec) -> str:
    """Seconds until each credential / host / API expires (soonest first), one row each."""
    return f"sort({once(spec, agg='min')} - time())"


def log_growth(spec: cat.MetricSpec, matchers: str, window: str) -> str:
    """How much a deploy-log counter grew over ``window``, per its own labels, read once.

    These counters are the audit log's counts, rebuilt from the log at every start, so every
    replica and every restart of shard 0 exports the same value: the log's count at the end of the
    window minus at its start (the highest value any process showed minus the lowest). ``sum of
    increase()`` would count each marker once per replica; ``max of increase()`` would lose the
    markers before a restart that changed the ``instance``. Like ``increase()``, it cannot see the
    very first marker of a new series (one that appears at 1).
    """
    assert spec in cat.REPLICATED and spec.kind == "counter", spec.name
    series, grouping = f"{spec.name}{matchers}", by(*spec.labels)
    return (f"(max {grouping} (max_over_time({series}[{window}]))"
            f" - min {grouping} (min_over_time({series}[{window}])))")


def log_steps(spec: cat.MetricSpec, matchers: str) -> str:
    """A deploy-log counter's growth between consecutive graph steps (``$__interval``): each marker
    lands in exactly one bar however many processes export the count (see :func:`log_growth`)."""
    assert spec in cat.REPLICATED and spec.kind == "counter", spec.name
    now = once(spec, matchers)
    return f"{now} - {once(spec, matchers + ' offset $__interval')}"


# --- targets and template variables ------------------------------------------------------------------


def target(expr: str, legend: str = "", ref_id: str = "A", instant: bool = False,
           table: bool = False) -> core.Target:
    """A Prometheus query on the ``${datasource}`` variable."""
    return core.Target(
        expr=expr, legendFormat=legend, refId=ref_id, instant=instant, datasource=DATASOURCE,
        format=core.TABLE_TARGET_FORMAT if table else core.TIME_SERIES_TARGET_FORMAT)


def targets(*queries: tuple[str, str]) -> list[core.Target]:
    """Several ``(expr, legend)`` time-series targets with refIds A, B, C..."""
    return [target(expr, legend, ref_id=chr(ord("A") + i)) for i, (expr, legend) in enumerate(queries)]


def datasource_variable() -> core.Template:
    """The ``datasource`` variable: any Prometheus; its default is the import input :data:`DS_INPUT`."""
    return core.Template(name="datasource", label="Data source", query="prometheus", type="datasource",
                         default="${" + DS_INPUT + "}")


def datasource_input() -> core.DataSourceInput:
    """What Grafana's Import asks for: one Prometheus datasource."""
    return core.DataSourceInput(name=DS_INPUT, label="Prometheus", pluginId="prometheus", pluginName="Prometheus",
                                description="The Prometheus that scrapes marketplace-exporter (and the bridge)")


def label_variable(label: str, metric: cat.MetricSpec, depends_on: Sequence[str] = ()) -> core.Template:
    """A multi-value variable from ``label_values(metric{earlier vars}, label)``, ``All`` by default."""
    matchers = selector(depends_on) if depends_on else ""
    return core.Template(
        name=label, label=label.capitalize(), query=f"label_values({metric.name}{matchers}, {label})",
        dataSource=DATASOURCE, includeAll=True, multi=True, allValue=".*", default=ALL,
        refresh=core.REFRESH_ON_TIME_RANGE_CHANGE)


def probe_variables(metric: cat.MetricSpec = cat.PROBE_SUCCESS) -> list[core.Template]:
    """datasource, then marketplace, site, account, check, each narrowed by the ones before it."""
    return chained_variables(VARIABLE_LABELS, metric)


def chained_variables(labels: Sequence[str], metric: cat.MetricSpec) -> list[core.Template]:
    """datasource, then one multi-value variable per label of ``metric``, each narrowed by the ones before."""
    variables = [datasource_variable()]
    for i, label in enumerate(labels):
        variables.append(label_variable(label, metric, labels[:i]))
    return variables


# --- annotations ------------------------------------------------------------------------------------


_DEPLOY_TAGS = (cat.SERVICE, cat.ENVIRONMENT, cat.STATUS)


def deploy_annotation() -> dict[str, Any]:
    """Deploy markers from the exporter's deploy audit log, on the ``${datasource}`` Prometheus.

    ``marketplace_deploy_timestamp_seconds`` holds the Unix time of the latest marker per service,
    environment and status; with ``useValueForTime`` Grafana places one event at that time (equal
    values in consecutive steps merge into one), tagged with service, environment and status.
    """
    return {
        "datasource": DATASOURCE, "enable": True, "hide": False, "iconColor": "purple", "name": "Deploys",
        # one event per marker, not one per replica exporting the shared log
        "expr": f"{once(cat.DEPLOY_TIMESTAMP)} * 1000",
        "step": "1m", "useValueForTime": True,
        "titleFormat": "Deploy " + " ".join("{{" + label + "}}" for label in _DEPLOY_TAGS),
        "textFormat": "", "tagKeys": ",".join(_DEPLOY_TAGS),
    }


def builtin_annotation() -> dict[str, Any]:
    """Grafana's own annotations and alerts (what a dashboard gets by default), kept explicit."""
    return {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
            "target": {"limit": 100, "matchAny": False, "tags": [], "type": "dashboard"}, "type": "dashboard"}


# --- panels ---------------------------------------------------------------------------------------

#: stat options Grafana >= 10 would fill with defaults; written out for the derived panel schema
_STAT_OPTIONS = {"options": {"showPercentChange": False, "percentChangeColorMode": "standard", "wideLayout": True}}


def _merge(*parts: dict[str, Any] | None) -> dict[str, Any]:
    """Deep-merge ``extraJson`` fragments (later wins)."""
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in (part or {}).items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = _merge(merged[key], value)
            else:
                merged[key] = value
    return merged


def _field_defaults(mappings: list[dict[str, Any]] | None = None,
                    links: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    if mappings:
        defaults["mappings"] = mappings
    if links:
        defaults["links"] = links
    return {"fieldConfig": {"defaults": defaults}} if defaults else {}


def stat(title: str, expr: str, thresholds: list[dict[str, Any]], unit: str = "none",
         description: str = "", color_mode: str = "background", no_value: str = "0",
         mappings: list[dict[str, Any]] | None = None) -> core.Stat:
    """A single number (instant query, last value) coloured by explicit thresholds.

    ``no_value`` is what an empty result shows: ``0`` for counts, ``no data`` where 0 would lie.
    """
    return core.Stat(
        title=title, description=description or None, dataSource=DATASOURCE,
        targets=[target(expr, instant=True)], thresholds=thresholds, format=unit, reduceCalc="lastNotNull",
        graphMode="none", colorMode=color_mode, noValue=no_value, maxDataPoints=None,
        mappings=mappings or [], extraJson=_STAT_OPTIONS)


def timeseries(title: str, queries: Sequence[tuple[str, str]], unit: str = "", description: str = "",
               bars: bool = False, thresholds: list[dict[str, Any]] | None = None,
               value_min: int | None = None, value_max: int | None = None,
               threshold_lines: bool = False) -> core.TimeSeries:
    """A time series of ``(expr, legend)`` queries; ``bars`` for counts per interval.

    ``threshold_lines`` draws the thresholds as dashed lines (burn-rate limits, headroom floors).
    """
    extra: dict[str, Any] = {"options": {"legend": {"showLegend": True}}}
    if threshold_lines:
        extra["fieldConfig"] = {"defaults": {"custom": {"thresholdsStyle": {"mode": "dashed"}}}}
    return core.TimeSeries(
        title=title, description=description or None, dataSource=DATASOURCE, targets=targets(*queries),
        unit=unit, drawStyle="bars" if bars else "line", fillOpacity=60 if bars else 10,
        stacking={"mode": "normal", "group": "A"} if bars else {"mode": "none", "group": "A"},
        legendDisplayMode="table", legendPlacement="right", legendCalcs=["lastNotNull", "max"],
        tooltipMode="multi", thresholds=thresholds or NEUTRAL, valueMin=value_min, valueMax=value_max,
        maxDataPoints=None, extraJson=extra)


def table(title: str, expr: str, thresholds: list[dict[str, Any]], unit: str = "none",
          description: str = "", sort_by: str = "Value", descending: bool = False,
          value_title: str = "Value", transformations: list[dict[str, Any]] | None = None,
          hidden: Sequence[str] = ("Time", "__name__", "instance", "job"),
          mappings: list[dict[str, Any]] | None = None, links: list[dict[str, Any]] | None = None,
          cell: str = "color-background") -> core.Table:
    """An instant query as a table, the value column coloured by thresholds and sorted.

    ``links`` are data links on every cell (e.g. :func:`drill_down_link`); ``cell`` is the cell type of
    the numeric columns (``color-background``, ``color-text``, ``auto``): label columns stay plain
    text, or a string column would be painted in the thresholds' base colour.
    """
    organize = {"id": "organize", "options": {"excludeByName": {name: True for name in hidden},
                                              "renameByName": {"Value": value_title}}}
    extra = _merge(
        {"options": {"frameIndex": 0}, "fieldConfig": {"defaults": {"custom": {
            "cellOptions": {"type": "auto"}, "inspect": False}}}},
        _field_defaults(mappings, links))
    numbers = [] if cell == "auto" else [{"matcher": {"id": "byType", "options": "number"},
                                          "properties": [{"id": "custom.cellOptions", "value": {"type": cell}}]}]
    return core.Table(
        title=title, description=description or None, dataSource=DATASOURCE,
        targets=[target(expr, instant=True, table=True)], thresholds=thresholds, unit=unit,
        filterable=True, maxDataPoints=None, overrides=numbers,
        sortBy=[core.TableSortByField(displayName=value_title if sort_by == "Value" else sort_by,
                                      desc=descending)],
        transformations=(transformations or []) + [organize], extraJson=extra)


def state_timeline(title: str, queries: Sequence[tuple[str, str]], thresholds: list[dict[str, Any]],
                   mappings: list[dict[str, Any]], description: str = "") -> core.StateTimeline:
    """A state timeline (one row per series) coloured by thresholds, values shown through ``mappings``."""
    extra = {"options": {"tooltip": {"sort": "none"}, "legend": {"showLegend": True, "calcs": []}, "perPage": 20}}
    return core.StateTimeline(
        title=title, description=description or None, dataSource=DATASOURCE, targets=targets(*queries),
        thresholds=thresholds, mappings=mappings, showValue="never", rowHeight=0.8, maxDataPoints=None,
        extraJson=extra)


def drill_down_link(labels: Sequence[str] = VARIABLE_LABELS) -> dict[str, Any]:
    """A data link to the Marketplace drill-down for the clicked row, keeping time range and datasource."""
    params = "&".join(f"var-{label}=${{__data.fields.{label}}}" for label in labels)
    return {"title": "Open in the Marketplace drill-down", "targetBlank": False,
            "url": f"/d/mpx-marketplace/?{params}&var-datasource=${{datasource}}&${{__url_time_range}}"}


# --- dashboard and layout ---------------------------------------------------------------------------


def layout(rows: Sequence[tuple[int, Sequence[core.Panel]]]) -> list[core.Panel]:
    """Place panels on Grafana's 24-column grid: each ``(height, panels)`` row splits its width evenly."""
    placed: list[core.Panel] = []
    y = 0
    for height, panels in rows:
        width = 24 // len(panels)
        for i, panel in enumerate(panels):
            panel.gridPos = core.GridPos(h=height, w=width, x=i * width, y=y)
            placed.append(panel)
        y += height
    return placed


#: the dashboard model version the panels are written for (Grafana 10.x): no migrations on load
SCHEMA_VERSION = 39

#: every dashboard carries this tag; the dashboard links below list all of them
TAG = "marketplace-exporter"


def make_dashboard(title: str, panels: list[core.Panel], templates: list[core.Template],
                   time_from: str = "now-6h") -> core.Dashboard:
    """A dashboard with the house links (all tagged dashboards, keeping time and variables), the
    datasource import input and the deploy-marker annotation."""
    return core.Dashboard(
        title=title, tags=[TAG], panels=panels, schemaVersion=SCHEMA_VERSION,
        templating=core.Templating(list=templates), inputs=[datasource_input()],
        annotations=core.Annotations(list=[builtin_annotation(), deploy_annotation()]),
        time=core.Time(time_from, "now"), refresh="1m", timezone="browser",
        graphTooltip=core.GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR,
        links=[core.DashboardLink(title="Marketplace exporter", tags=[TAG], asDropdown=True,
                                  includeVars=True, keepTime=True, type="dashboards")],
    )
