"""House style for the marketplace-exporter dashboards, built on ``grafanalib.core``.

The pattern of grafanalib's own ``weave.py``: small constructors that fix the conventions once, so
each ``*.dashboard.py`` only says *what* to chart.

- Every panel and every query target uses the ``datasource`` template variable as the dict
  ``{"type": "prometheus", "uid": "${datasource}"}``, so the JSON imports into any Grafana.
- Metric and label names come from ``marketplace_exporter.catalogue``; never type one here.
- Every Stat and Table gets explicit thresholds; every template variable gets a default.

grafanalib is a dashboards-only (dev) dependency: nothing in the exporter imports this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grafanalib import core

from marketplace_exporter import catalogue as cat

#: the one datasource every panel, target and query variable uses
DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}

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

# --- selectors -------------------------------------------------------------------------------------


def selector(labels: Sequence[str] = VARIABLE_LABELS, **extra: str) -> str:
    """``{label=~"$label", ...}`` for the drill-down variables, plus exact ``extra`` matchers."""
    parts = [f'{label}=~"${label}"' for label in labels]
    parts += [f'{label}="{value}"' for label, value in extra.items()]
    return "{" + ", ".join(parts) + "}"


def by(*labels: str) -> str:
    """``by (a, b)`` for aggregations."""
    return "by (" + ", ".join(labels) + ")"


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
    """The ``datasource`` variable: any Prometheus; the default is Grafana's default datasource."""
    return core.Template(name="datasource", label="Data source", query="prometheus", type="datasource",
                         default="default")


def label_variable(label: str, metric: cat.MetricSpec, depends_on: Sequence[str] = ()) -> core.Template:
    """A multi-value variable from ``label_values(metric{earlier vars}, label)``, ``All`` by default."""
    matchers = selector(depends_on) if depends_on else ""
    return core.Template(
        name=label, label=label.capitalize(), query=f"label_values({metric.name}{matchers}, {label})",
        dataSource=DATASOURCE, includeAll=True, multi=True, allValue=".*", default=ALL,
        refresh=core.REFRESH_ON_TIME_RANGE_CHANGE)


def probe_variables(metric: cat.MetricSpec = cat.PROBE_SUCCESS) -> list[core.Template]:
    """datasource, then marketplace, site, account, check, each narrowed by the ones before it."""
    variables = [datasource_variable()]
    for i, label in enumerate(VARIABLE_LABELS):
        variables.append(label_variable(label, metric, VARIABLE_LABELS[:i]))
    return variables


# --- panels ---------------------------------------------------------------------------------------


def stat(title: str, expr: str, thresholds: list[dict[str, Any]], unit: str = "none",
         description: str = "", color_mode: str = "background", no_value: str = "0") -> core.Stat:
    """A single number (instant query, last value) coloured by explicit thresholds.

    ``no_value`` is what an empty result shows: ``0`` for counts, ``no data`` where 0 would lie.
    """
    return core.Stat(
        title=title, description=description or None, dataSource=DATASOURCE,
        targets=[target(expr, instant=True)], thresholds=thresholds, format=unit, reduceCalc="lastNotNull",
        graphMode="none", colorMode=color_mode, noValue=no_value)


def timeseries(title: str, queries: Sequence[tuple[str, str]], unit: str = "", description: str = "",
               bars: bool = False, thresholds: list[dict[str, Any]] | None = None,
               value_min: int | None = None, value_max: int | None = None) -> core.TimeSeries:
    """A time series of ``(expr, legend)`` queries; ``bars`` for counts per interval."""
    return core.TimeSeries(
        title=title, description=description or None, dataSource=DATASOURCE, targets=targets(*queries),
        unit=unit, drawStyle="bars" if bars else "line", fillOpacity=60 if bars else 10,
        stacking={"mode": "normal", "group": "A"} if bars else {"mode": "none", "group": "A"},
        legendDisplayMode="table", legendPlacement="right", legendCalcs=["lastNotNull", "max"],
        tooltipMode="multi", thresholds=thresholds or NEUTRAL, valueMin=value_min, valueMax=value_max)


def table(title: str, expr: str, thresholds: list[dict[str, Any]], unit: str = "none",
          description: str = "", sort_by: str = "Value", descending: bool = False,
          value_title: str = "Value", transformations: list[dict[str, Any]] | None = None,
          hidden: Sequence[str] = ("Time", "__name__", "instance", "job")) -> core.Table:
    """An instant query as a table, the value column coloured by thresholds and sorted."""
    organize = {"id": "organize", "options": {"excludeByName": {name: True for name in hidden},
                                              "renameByName": {"Value": value_title}}}
    return core.Table(
        title=title, description=description or None, dataSource=DATASOURCE,
        targets=[target(expr, instant=True, table=True)], thresholds=thresholds, unit=unit,
        displayMode="color-background", filterable=True,
        sortBy=[core.TableSortByField(displayName=value_title if sort_by == "Value" else sort_by,
                                      desc=descending)],
        transformations=(transformations or []) + [organize])


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
    """A dashboard with the house links (all tagged dashboards, keeping time and variables)."""
    return core.Dashboard(
        title=title, tags=[TAG], panels=panels, schemaVersion=SCHEMA_VERSION,
        templating=core.Templating(list=templates),
        time=core.Time(time_from, "now"), refresh="1m", timezone="browser",
        graphTooltip=core.GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR,
        links=[core.DashboardLink(title="Marketplace exporter", tags=[TAG], asDropdown=True,
                                  includeVars=True, keepTime=True, type="dashboards")],
    )
