"""Exporter self-health: is the exporter itself up, on schedule and fed, and does the bridge deliver?

A stuck scheduler or a failed reload makes every other dashboard lie quietly; this one says so.
``up`` and ``scrape_duration_seconds`` are Prometheus' own series per scrape target (the ``job``
variable picks the exporter's job); the bridge panels read the bridge's own /metrics job.
"""

from lib import (
    COUNT_BAD,
    NEUTRAL,
    UP_DOWN,
    UP_DOWN_TEXT,
    by,
    datasource_variable,
    label_variable,
    layout,
    make_dashboard,
    stat,
    table,
    timeseries,
)

from marketplace_exporter import catalogue as cat

JOB = 'job=~"$job"'
_LATE = cat.PROBE_LATENESS.name
_DELIVERY = cat.BRIDGE_DELIVERY_DURATION.name
_BRIDGE_KEYS = by(cat.RECEIVER, cat.CHANNEL)
#: the 1 s bucket: the exporter writes le="1", Prometheus 3 and prometheus_client write le="1.0"
_LE_1S = 'le=~"1(\\\\.0)?"'

up = stat("Exporter up", f"min(up{{{JOB}}})", UP_DOWN, mappings=UP_DOWN_TEXT, no_value="no data",
          description="Prometheus reached every selected exporter target on its last scrape.")
reload_ok = stat(
    "Last config reload", f"min({cat.CONFIG_RELOAD_OK.name}{{{JOB}}})", UP_DOWN, mappings=UP_DOWN_TEXT,
    no_value="no data", description="FAILING: the last reload was rejected and the previous good config keeps running.")
since_reload = stat(
    "Config loaded", f"time() - max({cat.CONFIG_RELOAD_TS.name}{{{JOB}}})", NEUTRAL, unit="s", color_mode="value",
    no_value="no data", description="Time since the last successful configuration (re)load.")
late_share = stat(
    "Probes > 1 s late",
    f"(sum(increase({_LATE}_count{{{JOB}}}[$__range])) - sum(increase({_LATE}_bucket{{{JOB}, {_LE_1S}}}[$__range])))"
    f" / sum(increase({_LATE}_count{{{JOB}}}[$__range]))",
    [{"color": "green", "value": None}, {"color": "orange", "value": 0.01}, {"color": "red", "value": 0.05}],
    unit="percentunit", no_value="no data",
    description="Share of probes over the selected time range that started more than a second after their "
                "schedule (per-host concurrency slots, an overloaded event loop).")

lateness = timeseries(
    "Probe lateness percentiles",
    [(f"histogram_quantile({q}, sum by (le) (rate({_LATE}_bucket{{{JOB}}}[$__rate_interval])))", f"p{round(q * 100)}")
     for q in (0.5, 0.9, 0.99)],
    unit="s", description="How late probes start against their schedule, from the lateness histogram.")
scrape = timeseries(
    "Scrape duration and samples",
    [(f"scrape_duration_seconds{{{JOB}}}", "duration {{instance}}"),
     (f"scrape_samples_scraped{{{JOB}}} / 1e6", "million samples {{instance}}")],
    unit="s", description="How long Prometheus needs to scrape /metrics (the exposition must stay fast as series "
                          "grow), and how many samples it gets (samples are shown in millions on the same axis).")
throughput = timeseries(
    "Probes per second (all checks)",
    [(f"sum(rate({cat.PROBES.name}{{{JOB}}}[$__rate_interval]))", "probes"),
     (f"sum(rate({cat.PROBE_SKIPPED.name}{{{JOB}}}[$__rate_interval]))", "skipped (quota budget)")],
    unit="ops")
reloads = timeseries(
    "Config reloads",
    [(f"changes({cat.CONFIG_RELOAD_TS.name}{{{JOB}}}[$__interval])", "successful reloads"),
     (f"1 - {cat.CONFIG_RELOAD_OK.name}{{{JOB}}}", "last reload failed (1)"),
     # every shard reads every accounts file and refuses the same bad version: max per job, not sum
     (f"sum(max by (job) (increase({cat.ACCOUNTS_FILE_ERRORS.name}{{{JOB}}}[$__interval])))",
      "accounts file versions refused")],
    bars=True)
build = table(
    "Build", f"{cat.BUILD_INFO.name}{{{JOB}}}", NEUTRAL, cell="auto", hidden=("Time", "__name__", "Value"),
    description="Which build each target runs: version, git revision and branch, Python version.")
bridge_build = table(
    "Bridge build", cat.BRIDGE_BUILD_INFO.name, NEUTRAL, cell="auto", hidden=("Time", "__name__", "Value"),
    description="Which build each alert bridge runs (its own job: not filtered by the job variable above).")
tags = table(
    "Check tags (alert routing)", f"{cat.PROBE_TAG_INFO.name}{{{JOB}}}", NEUTRAL, cell="auto",
    hidden=("Time", "__name__", "Value", "job", "instance"),
    description="checks[].tags as the alert rules see them: an account with a check tagged critical gets "
                "critical account-level alerts, every other account warnings.")

queue = timeseries(
    "Bridge queue depth", [(f"sum {_BRIDGE_KEYS} ({cat.BRIDGE_QUEUE_DEPTH.name})", "{{receiver}} {{channel}}")],
    thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 10}, {"color": "red", "value": 100}],
    threshold_lines=True, description="Notifications accepted from Alertmanager and durably queued, not yet "
                                      "delivered to the chat robot.")
deliveries = timeseries(
    "Bridge deliveries and failures",
    [(f"sum {_BRIDGE_KEYS} (increase({cat.BRIDGE_NOTIFICATIONS.name}[$__interval]))", "delivered {{receiver}} "
      "{{channel}}"),
     (f"sum {by(cat.RECEIVER, cat.CHANNEL, cat.REASON)} (increase({cat.BRIDGE_FAILURES.name}[$__interval])) > 0",
      "failed {{receiver}} {{channel}} {{reason}}")],
    bars=True)
delivery_latency = timeseries(
    "Bridge delivery latency p90",
    [(f"histogram_quantile(0.9, sum {by('le', cat.RECEIVER, cat.CHANNEL)} "
      f"(rate({_DELIVERY}_bucket[$__rate_interval])))", "{{receiver}} {{channel}}")],
    unit="s", description="From accepting an Alertmanager notification to the robot confirming it.")
traffic = timeseries(
    "Traffic records",
    [(f"sum {by(cat.SERVICE, cat.RESULT)} (increase({cat.TRAFFIC_RECORDS.name}[$__interval])) > 0",
      "{{service}} {{result}}"),
     (f"sum {by(cat.SERVICE)} (increase({cat.TRAFFIC_SERIES_CAPPED.name}[$__interval])) > 0",
      "{{service}} folded into other (series cap)"),
     (f"sum {by(cat.RESULT, cat.REASON)} (increase({cat.OTLP_SPANS.name}[$__interval])) > 0",
      "OTLP spans {{result}} {{reason}}")],
    bars=True, description="Production-traffic records the sellers' systems reported: accepted, rejected (bad "
                           "record), dropped (client queue full); and OTLP spans received at /v1/traces: "
                           "accepted, ignored (not a marketplace client call), rejected (with the reason).")
broken_files = stat(
    "Broken accounts files",
    f"sum(max by (job) ({cat.ACCOUNTS_FILES.name}{{{JOB}, state=\"broken\"}})) or vector(0)", COUNT_BAD,
    # every shard reads every accounts file: the most any process of a job reports, not the sum
    description="Per-seller accounts files that cannot be used now (each keeps its last good version); the "
                "status page names them. New bad versions: "
                f"{cat.ACCOUNTS_FILE_ERRORS.name}.")
shards = stat(
    "Exporter shards", f"count({cat.SHARD_ORDINAL.name}{{{JOB}}})", NEUTRAL, color_mode="value", no_value="no data",
    description="Exporter processes scraped (1 unless run --shard/--total-shards; docs/kubernetes.md).")
shards_missing = stat(
    "Shards missing",
    # distinct ordinals: two processes claiming one shard do not make up for a missing one
    f"max({cat.TOTAL_SHARDS.name}{{{JOB}}}) - count(count_values(\"ordinal\", {cat.SHARD_ORDINAL.name}{{{JOB}}}))",
    COUNT_BAD,
    no_value="no data",
    description="Shards the exporters declare (--total-shards) but Prometheus does not scrape: their accounts "
                "are not probed and their series are gone (alert: MarketplaceExporterShardsMissing).")
failing_deliveries = stat(
    "Bridge delivery failures",
    f"sum(increase({cat.BRIDGE_FAILURES.name}[$__range])) or vector(0)", COUNT_BAD,
    description="Failed delivery attempts to chat robots over the selected time range (any reason).")

dashboard = make_dashboard(
    "Marketplace exporter / Exporter",
    layout([
        # two rows of four: eight stats in one row leave 3 grid columns each, too narrow for a
        # bilingual title (tests/unit/test_dashboards.py measures them)
        (5, [up, reload_ok, since_reload, shards]),
        (5, [shards_missing, broken_files, late_share, failing_deliveries]),
        (8, [lateness, scrape]),
        (8, [throughput, reloads]),
        (6, [build, bridge_build, tags]),
        (8, [queue, deliveries]),
        (8, [delivery_latency, traffic]),
    ]),
    [datasource_variable(), label_variable("job", cat.BUILD_INFO)],
)
