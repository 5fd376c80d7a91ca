"""Marketplace drill-down: one marketplace / site / account / check, with latency, codes and quota.

The probe rows come from the exporter's background probes; the last row is the sellers' own
production traffic where their systems report it (``POST /api/v1/traffic``), which has no
``check`` label (it is per operation) and so follows the marketplace, site and account variables.
"""

from lib import COUNT_BAD, HEADROOM, UP_DOWN, by, layout, make_dashboard, probe_variables, selector, stat, timeseries

from marketplace_exporter import catalogue as cat

SEL = selector()
#: marketplace_request_duration_seconds has no account label
SEL_NO_ACCOUNT = selector((cat.MARKETPLACE, cat.SITE, cat.CHECK))
SEL_QUOTA_SKIP = selector(**{cat.REASON: cat.SkipReason.QUOTA_BUDGET.value})
_KEYS = by(cat.MARKETPLACE, cat.SITE, cat.ACCOUNT, cat.CHECK)
_LEGEND = "{{marketplace}} {{site}} {{account}} {{check}}"
_BUCKET = cat.REQUEST_DURATION.name + "_bucket"
#: production traffic has operation/service instead of check
SEL_TRAFFIC = selector((cat.MARKETPLACE, cat.SITE, cat.ACCOUNT))
SEL_TRAFFIC_NO_ACCOUNT = selector((cat.MARKETPLACE, cat.SITE))

checks_failing = stat("Checks failing", f"count({cat.PROBE_SUCCESS.name}{SEL} == 0) or vector(0)", COUNT_BAD)
success_now = stat("Success now", f"min({cat.PROBE_SUCCESS.name}{SEL})", UP_DOWN,
                   description="0 when any selected check failed its last probe.", no_value="no data")
quota_skips = stat(
    "Quota-budget skips (time range)",
    f"sum(increase({cat.PROBE_SKIPPED.name}{SEL_QUOTA_SKIP}[$__range])) or vector(0)",
    COUNT_BAD, description="Due probes not sent because the exporter's share of the rate limit was spent.")

success = timeseries("Probe success", [(f"{cat.PROBE_SUCCESS.name}{SEL}", _LEGEND)], value_min=0, value_max=1)
latency = timeseries(
    "API latency percentiles", [
        (f"histogram_quantile({q}, sum {by('le', cat.MARKETPLACE, cat.SITE, cat.CHECK)} "
         f"(rate({_BUCKET}{SEL_NO_ACCOUNT}[$__rate_interval])))", f"p{round(q * 100)} {{{{marketplace}}}} "
         "{{site}} {{check}}")
        for q in (0.5, 0.9, 0.99)],
    unit="s", description="From the marketplace_request_duration_seconds histogram (token exchange excluded).")
duration = timeseries("Probe duration (all steps)", [(f"{cat.PROBE_DURATION.name}{SEL}", _LEGEND)], unit="s")
status = timeseries("HTTP status of the last probe", [(f"{cat.PROBE_HTTP_STATUS.name}{SEL}", _LEGEND)],
                    description="0 when no response came back (timeout, connect, TLS).")
reasons = timeseries(
    "Failures by reason",
    [(f"sum {by(cat.REASON)} (increase({cat.PROBE_FAILURES.name}{SEL}[$__rate_interval])) > 0", "{{reason}}")],
    bars=True)
codes = timeseries(
    "Platform error codes",
    [(f"sum {by(cat.MARKETPLACE, cat.CODE)} (increase({cat.API_ERRORS.name}{SEL}[$__rate_interval])) > 0",
      "{{marketplace}} {{code}}")],
    bars=True)
headroom = timeseries(
    "Rate-limit headroom (remaining ratio)",
    [(f"{cat.RATE_LIMIT_REMAINING.name}{SEL}", _LEGEND + " ({{source}})")],
    unit="percentunit", thresholds=HEADROOM, value_min=0, value_max=1,
    description="observed: reported by the platform; modelled: from documented rate/burst and our own spend.")
remaining = timeseries(
    "Rate-limit requests remaining",
    [(f"{cat.RATE_LIMIT_REMAINING_COUNT.name}{SEL}", _LEGEND + " ({{source}})")],
    description="Requests left in the current window, where the platform reports it.")
spend = timeseries(
    "Prober's own requests per hour, by step",
    [(f"sum {by(cat.MARKETPLACE, cat.ACCOUNT, cat.CHECK, cat.STEP)} "
      f"(rate({cat.PROBE_REQUESTS.name}{SEL}[$__rate_interval])) * 3600",
      "{{marketplace}} {{account}} {{check}} {{step}}")],
    unit="reqph", description="What monitoring costs in marketplace quota (token exchange and API call).")
skips = timeseries(
    "Quota-budget skips",
    [(f"sum {_KEYS} (increase({cat.PROBE_SKIPPED.name}{SEL_QUOTA_SKIP}[$__rate_interval])) > 0", _LEGEND)],
    bars=True)

reset = timeseries(
    "Rate-limit window resets in",
    [(f"{cat.RATE_LIMIT_RESET.name}{SEL} - time()", _LEGEND)], unit="s",
    description="When the platform says the window resets or the next token arrives (where it says so).")
values = timeseries(
    "Values extracted by HTTP checks",
    [(f"{cat.PROBE_VALUE.name}{SEL}", _LEGEND + " {{name}}")],
    description="Numbers generic HTTP checks read from JSON or headers (e.g. seconds since the last order synced).")

client_calls = timeseries(
    "Production calls reported, by status class",
    [(f"sum {by(cat.MARKETPLACE, cat.STATUS_CLASS)} (rate({cat.CLIENT_REQUESTS.name}{SEL_TRAFFIC}"
      "[$__rate_interval]))", "{{marketplace}} {{status_class}}")],
    unit="reqps", description="API calls the seller's own systems made and reported; 'error' = no response.")
client_errors = timeseries(
    "Production errors by reason and code",
    [(f"sum {by(cat.MARKETPLACE, cat.REASON, cat.CODE)} (increase({cat.CLIENT_ERRORS.name}{SEL_TRAFFIC}"
      "[$__rate_interval])) > 0", "{{marketplace}} {{reason}} {{code}}")],
    bars=True, description="Reported production failures, classified by the same adapter code as the probes.")
client_latency = timeseries(
    "Production latency p90 by operation",
    [(f"histogram_quantile(0.9, sum {by('le', cat.MARKETPLACE, cat.OPERATION)} "
      f"(rate({cat.CLIENT_REQUEST_DURATION.name}_bucket{SEL_TRAFFIC_NO_ACCOUNT}[$__rate_interval])))",
      "{{marketplace}} {{operation}}")],
    unit="s")
client_headroom = timeseries(
    "Production rate-limit headroom",
    [(f"{cat.CLIENT_RATE_LIMIT_REMAINING.name}{SEL_TRAFFIC}", "{{marketplace}} {{site}} {{account}} {{service}}")],
    unit="percentunit", thresholds=HEADROOM, value_min=0, value_max=1, threshold_lines=True,
    description="Share of the window left, only where the platform reports both the count and the window size "
                "(see docs/traffic.md: no marketplace does today).")
client_remaining = timeseries(
    "Production requests left in the rate-limit window",
    [(f"{cat.CLIENT_RATE_LIMIT_REMAINING_REQUESTS.name}{SEL_TRAFFIC}",
      "{{marketplace}} {{site}} {{account}} {{service}}")],
    value_min=0,
    description="Requests left as the latest production answer reported them (Walmart x-current-token-count, "
                "Wish Wish-Rate-Limit-Remaining); "
                "0 means the next call is throttled until the bucket refills.")

dashboard = make_dashboard(
    "Marketplace exporter / Marketplace",
    layout([
        (5, [checks_failing, success_now, quota_skips]),
        (8, [success, latency]),
        (8, [duration, status]),
        (8, [reasons, codes]),
        (8, [headroom, remaining]),
        (8, [spend, skips]),
        (8, [reset, values]),
        (8, [client_calls, client_errors]),
        (8, [client_latency, client_headroom, client_remaining]),
    ]),
    probe_variables(),
)
