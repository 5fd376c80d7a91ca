"""The one catalogue of metric names, label names and closed label-value sets.

Everything that names a metric imports it from here: the exposition, the status page, the READMEs'
tables (``docs_gen``), dashboards and alert rules. A name that is not in this module does not exist.

Probe values come from *background* probes: marketplace quotas (SP-API allows about one
``getMarketplaceParticipations`` a minute) forbid probing per scrape. Every probe HELP text says so.

Failure reasons form a closed tree (the ``reason`` label)::

    failure
    ├── transport            the request never produced a complete HTTP response
    │   ├── timeout          the engine's deadline for the whole probe expired
    │   ├── connect          DNS, refused, reset or closed connection
    │   └── tls              certificate or handshake failure
    ├── marketplace said no  a complete response, classified by the adapter from status AND body
    │   ├── auth             token expired, revoked, invalid or missing (SP-API 403 Unauthorized)
    │   ├── permission       credential is valid but lacks the role/scope/whitelisted IP
    │   ├── throttled        rate limit or daily quota reached (HTTP 429, Shopee error_rate_limit)
    │   ├── server_error     the platform failed (5xx, Shopee error_server)
    │   └── client_error     any other rejection of our request (4xx, bad signature, bad params)
    ├── invalid_response     unparseable, truncated or oversized body; missing expected fields
    ├── assertion_failed     a generic HTTP check's expectation (status, JSON value) did not hold
    └── internal             a bug in the exporter: logged with a traceback, never kills the loop
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

NAMESPACE = "marketplace"

# --- label names -------------------------------------------------------------------------------
MARKETPLACE = "marketplace"
SITE = "site"
ACCOUNT = "account"
CHECK = "check"
REASON = "reason"
CODE = "code"
CREDENTIAL = "credential"
SOURCE = "source"
STEP = "step"
VALUE_NAME = "name"
VERSION = "version"
REVISION = "revision"
BRANCH = "branch"
PYTHON_VERSION = "pythonversion"
HOST = "host"
API = "api"

PROBE_LABELS: tuple[str, ...] = (MARKETPLACE, SITE, ACCOUNT, CHECK)

#: the label value every unknown platform error code folds into (bounded cardinality)
OTHER_CODE = "other"


class Reason(StrEnum):
    """Why a probe failed: a closed set, drawn as a tree in the module docstring."""

    TIMEOUT = "timeout"
    CONNECT = "connect"
    TLS = "tls"
    AUTH = "auth"
    PERMISSION = "permission"
    THROTTLED = "throttled"
    SERVER_ERROR = "server_error"
    CLIENT_ERROR = "client_error"
    INVALID_RESPONSE = "invalid_response"
    ASSERTION_FAILED = "assertion_failed"
    INTERNAL = "internal"


class Credential(StrEnum):
    """Which credential an expiry series is about."""

    ACCESS_TOKEN = "access_token"
    REFRESH_TOKEN = "refresh_token"
    CLIENT_SECRET = "client_secret"
    AUTHORIZATION = "authorization"


class SkipReason(StrEnum):
    """Why a due probe was not sent."""

    #: the exporter already spent its configured share of the documented rate limit
    QUOTA_BUDGET = "quota_budget"


class RateLimitSource(StrEnum):
    """Where a headroom value comes from: never invented, always labelled."""

    #: read from the platform's own response (headers, analytics API)
    OBSERVED = "observed"
    #: computed client-side from the documented rate/burst and the exporter's own spend
    MODELLED = "modelled"


class Step(StrEnum):
    """Which request of a multi-step probe was sent (quota spend is counted per step)."""

    TOKEN = "token"
    CALL = "call"


MetricKind = Literal["gauge", "counter", "histogram", "info"]

_BACKGROUND = " Set by background probes on each check's own interval, not at scrape time."


@dataclass(frozen=True)
class MetricSpec:
    """One exported metric: its full name (counters end in ``_total``), type, help and labels."""

    name: str
    kind: MetricKind
    help: str
    labels: tuple[str, ...]

    @property
    def family_name(self) -> str:
        """The name prometheus_client's families expect (counters without ``_total``)."""
        if self.kind == "counter" and self.name.endswith("_total"):
            return self.name[: -len("_total")]
        if self.kind == "info" and self.name.endswith("_info"):
            return self.name[: -len("_info")]
        return self.name


PROBE_SUCCESS = MetricSpec(
    "marketplace_probe_success", "gauge",
    "1 if the check's last probe succeeded, else 0." + _BACKGROUND, PROBE_LABELS)
PROBE_DURATION = MetricSpec(
    "marketplace_probe_duration_seconds", "gauge",
    "Wall time of the check's last probe, all steps (token exchange included)." + _BACKGROUND,
    PROBE_LABELS)
PROBE_HTTP_STATUS = MetricSpec(
    "marketplace_probe_http_status_code", "gauge",
    "HTTP status of the last probe's final response; 0 when no response came back." + _BACKGROUND,
    PROBE_LABELS)
PROBE_LAST_RUN = MetricSpec(
    "marketplace_probe_last_run_timestamp_seconds", "gauge",
    "Unix time the check's last probe finished; alert when it is older than a few intervals.",
    PROBE_LABELS)
PROBE_LAST_SUCCESS = MetricSpec(
    "marketplace_probe_last_success_timestamp_seconds", "gauge",
    "Unix time of the check's last successful probe (absent until one succeeds).", PROBE_LABELS)
PROBE_INTERVAL = MetricSpec(
    "marketplace_probe_interval_seconds", "gauge",
    "Configured interval between the check's background probes (for staleness rules).",
    PROBE_LABELS)
PROBES = MetricSpec(
    "marketplace_probes_total", "counter",
    "Probes run for the check on its schedule (and by the deploy gate); on-demand /probe results are "
    "not counted." + _BACKGROUND, PROBE_LABELS)
PROBE_FAILURES = MetricSpec(
    "marketplace_probe_failures_total", "counter",
    "Failed probes by reason (closed set): auth, permission and throttled exist at 0 for every "
    "check, other reasons appear with their first failure." + _BACKGROUND,
    PROBE_LABELS + (REASON,))
PROBE_SKIPPED = MetricSpec(
    "marketplace_probe_skipped_total", "counter",
    "Due probes not sent because the exporter's share of the documented rate limit was spent "
    "(at 0 for checks whose operation has a documented limit).",
    PROBE_LABELS + (REASON,))
PROBE_REQUESTS = MetricSpec(
    "marketplace_probe_requests_total", "counter",
    "HTTP requests the exporter itself sent for the check, per step: what monitoring costs in quota "
    "(step=call at 0 for every check, step=token from the first token exchange).",
    PROBE_LABELS + (STEP,))
API_ERRORS = MetricSpec(
    "marketplace_api_errors_total", "counter",
    "Marketplace error codes seen by probes (the platform's own code; unknown codes fold into "
    "'other')." + _BACKGROUND, PROBE_LABELS + (CODE,))
REQUEST_DURATION = MetricSpec(
    "marketplace_request_duration_seconds", "histogram",
    "Latency of the marketplace API call of each probe (token exchange excluded)." + _BACKGROUND,
    (MARKETPLACE, SITE, CHECK))
RATE_LIMIT_REMAINING = MetricSpec(
    "marketplace_rate_limit_remaining_ratio", "gauge",
    "Rate-limit headroom 0..1, only where the platform reports it (source=observed) or where it is "
    "modelled from documented rate/burst and the exporter's own spend (source=modelled)."
    + _BACKGROUND, PROBE_LABELS + (SOURCE,))
RATE_LIMIT_REMAINING_COUNT = MetricSpec(
    "marketplace_rate_limit_remaining", "gauge",
    "Requests left in the current rate-limit window, as the platform reports it (eBay Developer "
    "Analytics remaining, Walmart x-current-token-count); absent where nothing is reported."
    + _BACKGROUND, PROBE_LABELS + (SOURCE,))
RATE_LIMIT_RESET = MetricSpec(
    "marketplace_rate_limit_reset_timestamp_seconds", "gauge",
    "Unix time the platform says the rate-limit window resets or the next token arrives."
    + _BACKGROUND, PROBE_LABELS)
CREDENTIAL_EXPIRY = MetricSpec(
    "marketplace_credential_expiry_timestamp_seconds", "gauge",
    "Unix time a credential expires, from token responses, platform APIs or configured dates.",
    (MARKETPLACE, SITE, ACCOUNT, CREDENTIAL))
PROBE_VALUE = MetricSpec(
    "marketplace_probe_value", "gauge",
    "Numbers a generic HTTP check extracts from JSON or headers (e.g. seconds since last order "
    "synced)." + _BACKGROUND, PROBE_LABELS + (VALUE_NAME,))
TLS_CERT_EXPIRY = MetricSpec(
    "marketplace_tls_cert_expiry_timestamp_seconds", "gauge",
    "Unix time the TLS certificate a probed (or configured extra) host presented expires.",
    (HOST,))
API_DEPRECATION = MetricSpec(
    "marketplace_api_deprecation_timestamp_seconds", "gauge",
    "Unix time a marketplace API you depend on is removed (shipped calendar plus config entries).",
    (MARKETPLACE, API))
BUILD_INFO = MetricSpec(
    "marketplace_exporter_build_info", "gauge",
    "Always 1; version, revision (git commit), branch and pythonversion say which build runs, as in "
    "prometheus_build_info.", (VERSION, REVISION, BRANCH, PYTHON_VERSION))
CONFIG_RELOAD_OK = MetricSpec(
    "marketplace_exporter_config_last_reload_successful", "gauge",
    "1 if the last configuration (re)load succeeded; on 0 the previous good config keeps running.",
    ())
CONFIG_RELOAD_TS = MetricSpec(
    "marketplace_exporter_config_last_reload_success_timestamp_seconds", "gauge",
    "Unix time of the last successful configuration load.", ())
PROBE_LATENESS = MetricSpec(
    "marketplace_exporter_probe_lateness_seconds", "histogram",
    "How late probes start against their schedule (waiting for a per-host concurrency slot).", ())

#: failure reasons exported at 0 before they first happen: alerts react to their FIRST failure, which
#: rate()/increase() cannot see in a counter born at 1 (docs/metrics.md, "Series per check")
PRECREATED_REASONS: tuple[Reason, ...] = (Reason.AUTH, Reason.PERMISSION, Reason.THROTTLED)
#: steps exported at 0 for every check (the token step appears with the first token exchange)
PRECREATED_STEPS: tuple[Step, ...] = (Step.CALL,)

#: the probe engine's metrics and the exporter's self-metrics (exposition.py renders these)
PROBE_METRICS: tuple[MetricSpec, ...] = (
    PROBE_SUCCESS, PROBE_DURATION, PROBE_HTTP_STATUS, PROBE_LAST_RUN, PROBE_LAST_SUCCESS,
    PROBE_INTERVAL, PROBES, PROBE_FAILURES, PROBE_SKIPPED, PROBE_REQUESTS, API_ERRORS,
    REQUEST_DURATION, RATE_LIMIT_REMAINING, RATE_LIMIT_REMAINING_COUNT, RATE_LIMIT_RESET,
    CREDENTIAL_EXPIRY, TLS_CERT_EXPIRY, API_DEPRECATION, PROBE_VALUE,
    BUILD_INFO, CONFIG_RELOAD_OK, CONFIG_RELOAD_TS, PROBE_LATENESS,
)

# --- per-seller accounts files (exporter, ``accounts_files:``; server/accounts_watch.py) ---------
FILE_STATE = "state"
ACCOUNTS_FILES = MetricSpec(
    "marketplace_exporter_accounts_files", "gauge",
    "Accounts files by state: ok, or broken (the file's last good version, if any, stays in use; "
    "the status page and the log name the file and the error).", (FILE_STATE,))
ACCOUNTS_FILE_ERRORS = MetricSpec(
    "marketplace_exporter_accounts_file_errors_total", "counter",
    "New versions of accounts files that could not be used (unreadable, invalid, unavailable secret).", ())

ACCOUNTS_FILES_METRICS: tuple[MetricSpec, ...] = (ACCOUNTS_FILES, ACCOUNTS_FILE_ERRORS)

# --- shards by account (exporter, ``--shard``/``--total-shards``; shard.py, docs/kubernetes.md) ---------
SHARD_ORDINAL = MetricSpec(
    "marketplace_exporter_shard_ordinal", "gauge",
    "This process's shard (0 when not sharded): it probes the accounts whose key hashes to it; "
    "every per-check series is exported by exactly one shard.", ())
TOTAL_SHARDS = MetricSpec(
    "marketplace_exporter_total_shards", "gauge",
    "How many shards the accounts are split over (--total-shards; 1 when not sharded): fewer shards "
    "scraped than this means accounts nobody probes.", ())

SHARD_METRICS: tuple[MetricSpec, ...] = (SHARD_ORDINAL, TOTAL_SHARDS)

# --- deploy markers, audit trail, verification gate, freeze windows (exporter, /api/v1/deploys) ----
SERVICE = "service"
ENVIRONMENT = "environment"
COMMIT = "commit"
STATUS = "status"
RESULT = "result"


class DeployStatus(StrEnum):
    """The states a pipeline reports for a deploy (the ``status`` label and the API's field)."""

    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


class VerifyResult(StrEnum):
    """What the post-deploy gate decided (``verify`` exits 0, 1, 2 in this order)."""

    PASS = "pass"
    FAIL = "fail"
    UNDECIDED = "undecided"


DEPLOY_INFO = MetricSpec(
    "marketplace_deploy_info", "gauge",
    "Always 1, for the latest deploy per service and environment; version and commit say what runs.",
    (SERVICE, ENVIRONMENT, VERSION, COMMIT))
DEPLOY_TIMESTAMP = MetricSpec(
    "marketplace_deploy_timestamp_seconds", "gauge",
    "Unix time of the latest deploy marker per service, environment and status (from the audit log).",
    (SERVICE, ENVIRONMENT, STATUS))
DEPLOYS = MetricSpec(
    "marketplace_deploys_total", "counter",
    "Deploy markers recorded per service, environment and status (rebuilt from the audit log at start).",
    (SERVICE, ENVIRONMENT, STATUS))
DEPLOYS_IN_FREEZE = MetricSpec(
    "marketplace_deploys_in_freeze_total", "counter",
    "Deploy markers recorded while a freeze window was active for their environment (flagged, kept).",
    (SERVICE, ENVIRONMENT))
DEPLOY_FREEZE_ACTIVE = MetricSpec(
    "marketplace_deploy_freeze_active", "gauge",
    "1 while a configured freeze window (11.11, Black Friday...) covers the environment, else 0.",
    (ENVIRONMENT,))
DEPLOY_VERIFICATIONS = MetricSpec(
    "marketplace_deploy_verifications_total", "counter",
    "Post-deploy verification gate runs by result (pass, fail, undecided).",
    (SERVICE, ENVIRONMENT, RESULT))
ANNOTATION_PUSHES = MetricSpec(
    "marketplace_grafana_annotation_pushes_total", "counter",
    "Deploy annotations pushed to Grafana by result (ok, failed after retries); never blocks a mark.",
    (RESULT,))

DEPLOY_MARKERS_REFUSED = MetricSpec(
    "marketplace_deploy_markers_refused_total", "counter",
    "Deploy markers refused because a new service or environment would exceed deploys.max_services or "
    "deploys.max_environments (the pipeline got a 422; nothing was recorded).",
    (REASON,))

DEPLOY_METRICS: tuple[MetricSpec, ...] = (
    DEPLOY_INFO, DEPLOY_TIMESTAMP, DEPLOYS, DEPLOYS_IN_FREEZE, DEPLOY_FREEZE_ACTIVE,
    DEPLOY_VERIFICATIONS, ANNOTATION_PUSHES, DEPLOY_MARKERS_REFUSED,
)

# --- production traffic reported by the sellers' own systems (exporter, /api/v1/traffic) ---------
OPERATION = "operation"
STATUS_CLASS = "status_class"

CLIENT_REQUESTS = MetricSpec(
    "marketplace_client_requests_total", "counter",
    "Production API calls the seller's systems reported, by status class (2xx..5xx, error when no "
    "response came back).",
    (MARKETPLACE, SITE, ACCOUNT, OPERATION, SERVICE, STATUS_CLASS))
CLIENT_ERRORS = MetricSpec(
    "marketplace_client_errors_total", "counter",
    "Reported production calls that failed, classified by the same adapter code as the probes.",
    (MARKETPLACE, SITE, ACCOUNT, OPERATION, SERVICE, REASON, CODE))
CLIENT_REQUEST_DURATION = MetricSpec(
    "marketplace_client_request_duration_seconds", "histogram",
    "Latency of reported production calls.",
    (MARKETPLACE, SITE, OPERATION, SERVICE))
CLIENT_RATE_LIMIT_REMAINING = MetricSpec(
    "marketplace_client_rate_limit_remaining_ratio", "gauge",
    "Rate-limit headroom 0..1 read from production responses, only where the platform reports both "
    "the remaining count and the window size (preferred over modelled values).",
    (MARKETPLACE, SITE, ACCOUNT, SERVICE))
CLIENT_RATE_LIMIT_REMAINING_REQUESTS = MetricSpec(
    "marketplace_client_rate_limit_remaining", "gauge",
    "Requests left in the rate-limit window as the latest production response reported it (e.g. "
    "Walmart x-current-token-count).",
    (MARKETPLACE, SITE, ACCOUNT, SERVICE))
TRAFFIC_RECORDS = MetricSpec(
    "marketplace_traffic_records_total", "counter",
    "Traffic records by result: accepted, rejected (bad record), dropped (client queue full, as "
    "reported by the client).",
    (SERVICE, RESULT))
TRAFFIC_SERIES_CAPPED = MetricSpec(
    "marketplace_traffic_series_capped_total", "counter",
    "Records folded into 'other' because the service reached its cap on label combinations.",
    (SERVICE,))

TRAFFIC_METRICS: tuple[MetricSpec, ...] = (
    CLIENT_REQUESTS, CLIENT_ERRORS, CLIENT_REQUEST_DURATION, CLIENT_RATE_LIMIT_REMAINING,
    CLIENT_RATE_LIMIT_REMAINING_REQUESTS, TRAFFIC_RECORDS, TRAFFIC_SERIES_CAPPED,
)
#: the OTLP receiver's own accounting (traffic/otlp_api.py); its accepted spans are traffic records
OTLP_SPANS = MetricSpec(
    "marketplace_traffic_spans_total", "counter",
    "OTLP spans received at /v1/traces by result: accepted (counted as a traffic record), ignored "
    "(not an HTTP client span to a marketplace host), rejected (a marketplace span the exporter "
    "could not use), with the reason.",
    (RESULT, REASON))
OTLP_METRICS: tuple[MetricSpec, ...] = (OTLP_SPANS,)

# --- the alert bridge (its own process on :9762) ---------------------------------------------------
RECEIVER = "receiver"
CHANNEL = "channel"

BRIDGE_NOTIFICATIONS = MetricSpec(
    "marketplace_bridge_notifications_total", "counter",
    "Messages the bridge delivered to a chat robot (body code 0).", (RECEIVER, CHANNEL))
BRIDGE_FAILURES = MetricSpec(
    "marketplace_bridge_notification_failures_total", "counter",
    "Failed delivery attempts by reason (throttled, security, http, transport, rejected...).",
    (RECEIVER, CHANNEL, REASON))
BRIDGE_QUEUE_DEPTH = MetricSpec(
    "marketplace_bridge_queue_depth", "gauge",
    "Notifications accepted and durably queued but not yet delivered.", (RECEIVER, CHANNEL))
BRIDGE_DELIVERY_DURATION = MetricSpec(
    "marketplace_bridge_delivery_duration_seconds", "histogram",
    "Time from accepting an Alertmanager notification to the robot confirming it.", (RECEIVER, CHANNEL))

BRIDGE_BUILD_INFO = MetricSpec(
    "marketplace_bridge_build_info", "gauge",
    "Always 1; the bridge's version, revision, branch and pythonversion (marketplace_exporter_build_info's "
    "labels, for the bridge process).", (VERSION, REVISION, BRANCH, PYTHON_VERSION))

BRIDGE_METRICS: tuple[MetricSpec, ...] = (
    BRIDGE_NOTIFICATIONS, BRIDGE_FAILURES, BRIDGE_QUEUE_DEPTH, BRIDGE_DELIVERY_DURATION, BRIDGE_BUILD_INFO,
)

# --- what alert routing needs to know about a check (exporter; marketplace_exporter.check_tags) ---
TAG = "tag"

PROBE_TAG_INFO = MetricSpec(
    "marketplace_probe_tag_info", "gauge",
    "Always 1, one series per tag of a configured check (checks[].tags); alert rules join on it "
    "(e.g. an account with a check tagged 'critical' gets critical account-level alerts).",
    PROBE_LABELS + (TAG,))

ALERTING_METRICS: tuple[MetricSpec, ...] = (PROBE_TAG_INFO,)

# --- one answer from several processes (shards, replicas sharing a PostgreSQL audit log): each family
# is REPLICATED, PER_PROCESS or, by default, partitioned (summed); docs/metrics.md says which and why.
#: the same value from every process that exports it: read with ``max by``/``min by``, never ``sum``
REPLICATED: tuple[MetricSpec, ...] = (
    TLS_CERT_EXPIRY, API_DEPRECATION, ACCOUNTS_FILES, ACCOUNTS_FILE_ERRORS,
    DEPLOY_INFO, DEPLOY_TIMESTAMP, DEPLOYS, DEPLOYS_IN_FREEZE, DEPLOY_FREEZE_ACTIVE,
)
#: about the process itself, one per process: per-instance panels and alerts (a sum counts processes)
PER_PROCESS: tuple[MetricSpec, ...] = (
    BUILD_INFO, CONFIG_RELOAD_OK, CONFIG_RELOAD_TS, PROBE_LATENESS, SHARD_ORDINAL, TOTAL_SHARDS,
    BRIDGE_BUILD_INFO,
)

#: every metric this project emits (exporter and bridge), in exposition order
ALL: tuple[MetricSpec, ...] = (PROBE_METRICS + ACCOUNTS_FILES_METRICS + SHARD_METRICS + ALERTING_METRICS
                               + DEPLOY_METRICS + TRAFFIC_METRICS + OTLP_METRICS + BRIDGE_METRICS)

# --- Prometheus recording rules (marketplace_exporter.mixin writes them; dashboards read them) ----
#: windows of the multi-window multi-burn-rate SLO alerts (Google SRE workbook, 14.4/6/3/1)
SLO_WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def slo_error_ratio_rule(window: str) -> str:
    """Recording rule: the share of probes failing for platform-side reasons per marketplace over
    ``window`` (credential and other account-side failures are left out of both sides)."""
    return f"marketplace:probe_error_ratio:rate{window}"


#: histogram buckets (seconds): marketplace APIs answer in 0.1-2 s; >10 s means trouble
REQUEST_DURATION_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: lateness: a healthy engine starts probes within milliseconds (bench/scale.py reads p50/p99 from these)
LATENESS_BUCKETS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0)
