"""Overview: which marketplace and site is broken, since when, and why."""

from lib import COUNT_BAD, RATIO, UP_DOWN, by, datasource_variable, layout, make_dashboard, stat, table, timeseries

from marketplace_exporter import catalogue as cat

_PROBE_KEYS = ", ".join(cat.PROBE_LABELS)

failing = stat(
    "Checks failing now", f"count({cat.PROBE_SUCCESS.name} == 0) or vector(0)", COUNT_BAD,
    description="Checks whose last background probe failed.")
success_ratio = stat(
    "Probe success ratio (time range)",
    f"1 - sum(increase({cat.PROBE_FAILURES.name}[$__range])) / sum(increase({cat.PROBES.name}[$__range]))",
    RATIO, unit="percentunit", description="Share of probes that succeeded over the selected time range.",
    no_value="no data")
stale = stat(
    "Probes stale",
    f"count(time() - {cat.PROBE_LAST_RUN.name} > 3 * {cat.PROBE_INTERVAL.name}) or vector(0)", COUNT_BAD,
    description="Checks whose last probe finished more than three intervals ago (scheduler stuck or "
                "quota budget holding them back).")

matrix = table(
    "Health matrix: marketplace × site",
    f"min {by(cat.MARKETPLACE, cat.SITE)} ({cat.PROBE_SUCCESS.name})", UP_DOWN,
    description="1 when every check of the marketplace and site succeeded on its last probe, 0 when any failed.",
    # groupingToMatrix names its first column "<rowField>\<columnField>"
    sort_by=f"{cat.MARKETPLACE}\\{cat.SITE}", value_title="healthy",
    transformations=[{"id": "groupingToMatrix", "options": {
        "columnField": cat.SITE, "rowField": cat.MARKETPLACE, "valueField": "Value"}}],
)
failing_since = table(
    "Failing checks: time since last success",
    f"(time() - {cat.PROBE_LAST_SUCCESS.name}) and on ({_PROBE_KEYS}) ({cat.PROBE_SUCCESS.name} == 0)",
    COUNT_BAD, unit="s", descending=True, value_title="since last success",
    description="Every check failing now, longest-broken first (absent until a check ever succeeded).")

success_over_time = timeseries(
    "Probe success by marketplace and site",
    [(f"avg {by(cat.MARKETPLACE, cat.SITE)} ({cat.PROBE_SUCCESS.name})", "{{marketplace}} {{site}}")],
    unit="percentunit", value_min=0, value_max=1)
reasons = table(
    "Top failure reasons (time range)",
    f"topk(10, sum {by(cat.MARKETPLACE, cat.SITE, cat.REASON)} "
    f"(increase({cat.PROBE_FAILURES.name}[$__range])) > 0)",
    COUNT_BAD, descending=True, value_title="failures",
    description="Failed probes by reason (closed set: timeout, connect, tls, auth, permission, throttled, "
                "server_error, client_error, invalid_response, assertion_failed, internal).")
codes = table(
    "Top platform error codes (time range)",
    f"topk(10, sum {by(cat.MARKETPLACE, cat.SITE, cat.CODE)} (increase({cat.API_ERRORS.name}[$__range])) > 0)",
    COUNT_BAD, descending=True, value_title="errors",
    description="The marketplace's own error codes seen by probes; unknown codes fold into 'other'.")

dashboard = make_dashboard(
    "Marketplace exporter / Overview",
    layout([
        (5, [failing, success_ratio, stale]),
        (9, [matrix, failing_since]),
        (9, [success_over_time]),
        (9, [reasons, codes]),
    ]),
    [datasource_variable()],
)
