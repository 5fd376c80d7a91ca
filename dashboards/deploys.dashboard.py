"""Deploys: what was deployed where and when, whether errors rose after it, and the freeze windows.

Everything here comes from the exporter's deploy markers (``POST /api/v1/deploys``, the
``marketplace-exporter deploy`` CLI): versions per service and environment, the audit-log counters,
the post-deploy verification gate and the configured freeze windows. The probe error ratio is the
exporter's own, drawn under the deploy annotations so before/after is visible at a glance.

The deploy series are the audit log's, exported alike by every replica sharing it (PostgreSQL) and
by shard 0 before and after each restart: they are read once (``lib.once``, ``lib.log_growth``,
``lib.log_steps``), never summed over processes. The gate's verification counter and the annotation
and refusal counters count on the one process that did the work, so those are summed.
"""

from lib import (
    COUNT_BAD,
    FREEZE_TEXT,
    NEUTRAL,
    ON_ATTENTION,
    RATIO,
    by,
    chained_variables,
    layout,
    log_growth,
    log_steps,
    make_dashboard,
    once,
    selector,
    stat,
    state_timeline,
    table,
    timeseries,
)

from marketplace_exporter import catalogue as cat

_DEPLOY_LABELS = (cat.ENVIRONMENT, cat.SERVICE)
SEL = selector(_DEPLOY_LABELS)
SEL_ENV = selector((cat.ENVIRONMENT,))
_FAILED = "|".join((cat.DeployStatus.FAILED.value, cat.DeployStatus.ROLLED_BACK.value))
_KEYS = by(cat.SERVICE, cat.ENVIRONMENT)


def _error_ratio(window: str, offset: str = "") -> str:
    """Probe error ratio per marketplace over ``window`` (optionally ``offset`` earlier)."""
    shift = f" offset {offset}" if offset else ""
    return (f"sum {by(cat.MARKETPLACE)} (increase({cat.PROBE_FAILURES.name}[{window}]{shift})) / "
            f"sum {by(cat.MARKETPLACE)} (increase({cat.PROBES.name}[{window}]{shift}))")


deploys_range = stat(
    "Deploys (time range)", f"sum({log_growth(cat.DEPLOYS, SEL, '$__range')}) or vector(0)", NEUTRAL,
    color_mode="value", description="Deploy markers recorded (every status) in the selected time range.")
failed_range = stat(
    "Failed or rolled back (time range)",
    f"sum({log_growth(cat.DEPLOYS, selector(_DEPLOY_LABELS, regex={cat.STATUS: _FAILED}), '$__range')}) "
    "or vector(0)", COUNT_BAD)
in_freeze = stat(
    "Deploys during a freeze (time range)",
    f"sum({log_growth(cat.DEPLOYS_IN_FREEZE, SEL, '$__range')}) or vector(0)", COUNT_BAD,
    description="Deploy markers recorded while a freeze window (11.11, Black Friday...) covered the environment: "
                "recorded and flagged, never refused.")
frozen_now = stat(
    "Environments frozen now", f"count({once(cat.DEPLOY_FREEZE_ACTIVE, SEL_ENV)} == 1) or vector(0)", ON_ATTENTION)

timeline = timeseries(
    "Deploy timeline",
    [(f"{log_steps(cat.DEPLOYS, SEL)} > 0",
      "{{service}} {{environment}} {{status}}")],
    bars=True, description="Deploy markers per interval by service, environment and status (started, succeeded, "
                           "failed, rolled_back).")
versions = table(
    "Current version per service and environment",
    f"{once(cat.DEPLOY_INFO, SEL)} * on ({cat.SERVICE}, {cat.ENVIRONMENT}) group_left() "
    f"(time() - max {_KEYS} ({cat.DEPLOY_TIMESTAMP.name}{SEL}))",
    NEUTRAL, unit="s", value_title="deployed", cell="auto",
    description="The latest deploy per service and environment: version, commit and how long ago.")

error_ratio = timeseries(
    "Probe error ratio around deploys",
    [(f"{_error_ratio('$__rate_interval')}", "{{marketplace}}")],
    unit="percentunit", value_min=0, thresholds=RATIO,
    description="Share of failed probes per marketplace; the purple markers are deploys: a step up right after a "
                "marker is the deploy to suspect.")
before_after = timeseries(
    "Error ratio: last 30 min vs the 30 min before",
    [(_error_ratio("30m"), "{{marketplace}} last 30m"), (_error_ratio("30m", "30m"), "{{marketplace}} 30m before")],
    unit="percentunit", value_min=0,
    description="At any instant, the error ratio of the 30 minutes up to it against the 30 minutes before: read it "
                "30 minutes after a deploy marker for the before/after comparison the verify gate makes.")
verifications = timeseries(
    "Post-deploy verification results",
    [(f"sum {by(cat.SERVICE, cat.ENVIRONMENT, cat.RESULT)} "
      f"(increase({cat.DEPLOY_VERIFICATIONS.name}{SEL}[$__interval])) > 0", "{{service}} {{environment}} {{result}}")],
    bars=True, description="`marketplace-exporter verify` runs by result: pass, fail (errors rose after the "
                           "deploy), undecided (too little data).")
freeze = state_timeline(
    "Freeze windows", [(once(cat.DEPLOY_FREEZE_ACTIVE, SEL_ENV), "{{environment}}")],
    ON_ATTENTION, FREEZE_TEXT, description="FROZEN while a configured freeze window covers the environment.")
history = table(
    "Deploy markers by status (time range)",
    f"{log_growth(cat.DEPLOYS, SEL, '$__range')} > 0",
    NEUTRAL, value_title="deploys", descending=True, cell="auto")
annotation_pushes = timeseries(
    "Grafana annotation pushes",
    [(f"sum {by(cat.RESULT)} (increase({cat.ANNOTATION_PUSHES.name}[$__interval])) > 0", "{{result}}")],
    bars=True, description="Deploy annotations the exporter pushed to Grafana's HTTP API, when configured (failed "
                           "pushes never block a deploy marker).")

refused = timeseries(
    "Markers refused by the caps",
    [(f"sum {by(cat.REASON)} (increase({cat.DEPLOY_MARKERS_REFUSED.name}[$__interval]))", "{{reason}}")],
    bars=True, description="Deploy markers refused because a new service or environment would pass "
                           "deploys.max_services / deploys.max_environments (the pipeline got a 422 and nothing was "
                           "recorded): a pipeline sending build numbers as service names, or a cap to raise.")

dashboard = make_dashboard(
    "Marketplace exporter / Deploys",
    layout([
        (5, [deploys_range, failed_range, in_freeze, frozen_now]),
        (8, [timeline, versions]),
        (9, [error_ratio, before_after]),
        (8, [verifications, freeze]),
        (8, [history, annotation_pushes, refused]),
    ]),
    chained_variables(_DEPLOY_LABELS, cat.DEPLOY_INFO),
    time_from="now-7d",
)
