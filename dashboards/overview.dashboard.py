"""Overview: which marketplace and site is broken, since when, why, and which deploy came right before."""

from lib import (
    BURN_RATE,
    COUNT_BAD,
    NEUTRAL,
    RATIO,
    SLO_OBJECTIVE,
    UP_DOWN,
    UP_DOWN_TEXT,
    WEEK_S,
    by,
    datasource_variable,
    drill_down_link,
    expiring_within,
    layout,
    make_dashboard,
    once,
    stat,
    table,
    timeseries,
)

from marketplace_exporter import catalogue as cat

_PROBE_KEYS = ", ".join(cat.PROBE_LABELS)
_FIRING = 'ALERTS{alertstate="firing"}'

failing = stat(
    "Checks failing now", f"count({cat.PROBE_SUCCESS.name} == 0) or vector(0)", COUNT_BAD,
    description="Checks whose last background probe failed.")
success_ratio = stat(
    "Probe success ratio",
    f"1 - sum(increase({cat.PROBE_FAILURES.name}[$__range])) / sum(increase({cat.PROBES.name}[$__range]))",
    RATIO, unit="percentunit", description="Share of probes that succeeded over the selected time range.",
    no_value="no data")
stale = stat(
    "Probes stale",
    f"count(time() - {cat.PROBE_LAST_RUN.name} > 3 * {cat.PROBE_INTERVAL.name}) or vector(0)", COUNT_BAD,
    description="Checks whose last probe finished more than three intervals ago (scheduler stuck or "
                "quota budget holding them back).")
firing_count = stat(
    "Alerts firing", f"count({_FIRING}) or vector(0)", COUNT_BAD,
    description="Alerts Prometheus evaluates as firing now (from the generated rules in alert-rules/).")

expiring = stat(
    "Credentials due in 7d", expiring_within(cat.CREDENTIAL_EXPIRY, WEEK_S),
    COUNT_BAD, description="Tokens, secrets and authorisations that expire within a week: see Credentials.")
certs = stat(
    "Certificates due in 7d", expiring_within(cat.TLS_CERT_EXPIRY, WEEK_S),
    COUNT_BAD, description="TLS certificates of probed (or configured extra) hosts that expire within a week.")

matrix = table(
    "Health matrix: marketplace × site",
    f"min {by(cat.MARKETPLACE, cat.SITE)} ({cat.PROBE_SUCCESS.name})", UP_DOWN,
    description="OK when every check of the marketplace and site succeeded on its last probe, FAILING when any "
                "failed; empty cells: no check for that site.",
    # groupingToMatrix names its first column "<rowField>\<columnField>"
    sort_by=f"{cat.MARKETPLACE}\\{cat.SITE}", value_title="healthy", mappings=UP_DOWN_TEXT,
    transformations=[{"id": "groupingToMatrix", "options": {
        "columnField": cat.SITE, "rowField": cat.MARKETPLACE, "valueField": "Value"}}],
)
failing_since = table(
    "Failing checks: time since last success",
    f"(time() - {cat.PROBE_LAST_SUCCESS.name}) and on ({_PROBE_KEYS}) ({cat.PROBE_SUCCESS.name} == 0)",
    COUNT_BAD, unit="s", descending=True, value_title="since last success", links=[drill_down_link()],
    description="Every check failing now, longest-broken first (absent until a check ever succeeded). "
                "Click a row for the Marketplace drill-down.")

_FAILING_NOW = f"on ({_PROBE_KEYS}) ({cat.PROBE_SUCCESS.name} == 0)"
why_reason = table(
    "Failing checks: why (failure reasons, last 15 min)",
    f"sum {by(*cat.PROBE_LABELS, cat.REASON)} (increase({cat.PROBE_FAILURES.name}[15m])) > 0 and {_FAILING_NOW}",
    COUNT_BAD, descending=True, value_title="failures", links=[drill_down_link()],
    description="For every check failing now: the reasons its probes failed with over the last 15 minutes.")
why_code = table(
    "Failing checks: the platform's codes (last 15 min)",
    f"sum {by(*cat.PROBE_LABELS, cat.CODE)} (increase({cat.API_ERRORS.name}[15m])) > 0 and {_FAILING_NOW}",
    COUNT_BAD, descending=True, value_title="errors", links=[drill_down_link()],
    description="For every check failing now: the marketplace's own error codes over the last 15 minutes (none "
                "for transport failures such as timeouts).")

success_over_time = timeseries(
    "Probe success by marketplace and site",
    [(f"avg {by(cat.MARKETPLACE, cat.SITE)} ({cat.PROBE_SUCCESS.name})", "{{marketplace}} {{site}}")],
    unit="percentunit", value_min=0, value_max=1)
burn = timeseries(
    f"SLO error-budget burn rate ({SLO_OBJECTIVE:.0%} probe success)",
    [(f"max {by(cat.MARKETPLACE)} ({cat.slo_error_ratio_rule(window)}) / {1 - SLO_OBJECTIVE:g}",
      f"{{{{marketplace}}}} {window}") for window in ("1h", "6h")],
    thresholds=BURN_RATE, threshold_lines=True,
    description="How fast each marketplace spends its error budget: 1 = exactly the budget over 30 days; "
                "14.4 over 1 h and 6 over 6 h page (the burn-rate alerts in alert-rules/). From the "
                "recording rules marketplace:probe_error_ratio:rate<window>.")
reasons = table(
    "Top failure reasons (time range)",
    f"topk(10, sum {by(cat.MARKETPLACE, cat.SITE, cat.REASON)} "
    f"(increase({cat.PROBE_FAILURES.name}[$__range])) > 0)",
    COUNT_BAD, descending=True, value_title="failures", links=[drill_down_link((cat.MARKETPLACE, cat.SITE))],
    description="Failed probes by reason (closed set: timeout, connect, tls, auth, permission, throttled, "
                "server_error, client_error, invalid_response, assertion_failed, internal).")
codes = table(
    "Top platform error codes (time range)",
    f"topk(10, sum {by(cat.MARKETPLACE, cat.SITE, cat.CODE)} (increase({cat.API_ERRORS.name}[$__range])) > 0)",
    COUNT_BAD, descending=True, value_title="errors", links=[drill_down_link((cat.MARKETPLACE, cat.SITE))],
    description="The marketplace's own error codes seen by probes; unknown codes fold into 'other'.")
alerts = table(
    "Firing alerts", _FIRING, COUNT_BAD, value_title="firing", cell="auto",
    hidden=("Time", "__name__", "instance", "job", "alertstate", "Value"),
    description="Every alert firing now with its labels (severity, marketplace, site, account, check...).")
deploys = table(
    "Latest deploys", f"time() - {once(cat.DEPLOY_TIMESTAMP)}",
    NEUTRAL, unit="s", value_title="ago", cell="auto",
    description="The latest deploy marker per service, environment and status, most recent first: compare with "
                "'since last success' on the left. The purple markers on the time series are the same deploys.")

dashboard = make_dashboard(
    "Marketplace exporter / Overview",
    layout([
        (5, [failing, success_ratio, stale, firing_count, expiring, certs]),
        (9, [matrix, failing_since]),
        (7, [why_reason, why_code]),
        (9, [success_over_time, burn]),
        (9, [reasons, codes]),
        (8, [alerts, deploys]),
    ]),
    [datasource_variable()],
)
