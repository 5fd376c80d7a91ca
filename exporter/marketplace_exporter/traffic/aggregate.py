"""Counters, histograms and headroom from reported production calls, with a cardinality guard.

Every record is checked (a bad one is rejected with a reason, the rest of the batch counts) and its
labels are bounded twice over:

* values outside the configured world fold into ``other``: an account alias not configured for that
  marketplace, a site or operation the adapter does not know, a code outside its ``known_codes``;
* each service may create at most ``max_series_per_service`` (marketplace, site, account, operation)
  combinations; records beyond that fold into (marketplace, other, other, other) and are counted in
  ``marketplace_traffic_series_capped_total``. Status class, reason and code are small closed sets
  on top of that.

A coarse ring of one-minute buckets per (service, marketplace) keeps request and error counts for
``retention`` seconds, so the deploy gate can compare production error ratios before and after a
deploy marker (:meth:`TrafficAggregator.window`).
"""

from __future__ import annotations

import math
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from marketplace_exporter.adapters import ADAPTERS, Adapter
from marketplace_exporter.catalogue import REQUEST_DURATION_BUCKETS
from marketplace_exporter.traffic.classify import OTHER, status_class
from marketplace_exporter.traffic.settings import TrafficConfig
from marketplace_exporter.traffic.wire import TrafficRecordIn, parse_record

_MARKETPLACES: Mapping[str, Adapter] = {name: a for name, a in ADAPTERS.items() if a.api_operations}
_BUCKET_SECONDS = 60
#: rejection reasons listed back per batch (the counts cover all of them)
MAX_LISTED_ERRORS = 20
_FOLD_MEMO_LIMIT = 10_000

RequestKey = tuple[str, str, str, str, str, str]  # marketplace, site, account, operation, service, class
ErrorKey = tuple[str, str, str, str, str, str, str]  # ... service, reason, code
DurationKey = tuple[str, str, str, str]  # marketplace, site, operation, service
HeadroomKey = tuple[str, str, str, str]  # marketplace, site, account, service


@dataclass(frozen=True)
class TrafficState:
    """One scrape's copy of the aggregator (see :meth:`TrafficAggregator.copy_state`)."""

    requests: dict[RequestKey, int]
    errors: dict[ErrorKey, int]
    durations: dict[DurationKey, tuple[list[int], float]]
    #: headroom ratio 0..1 per key, where the platform let one be computed
    headroom: dict[HeadroomKey, float]
    #: requests left in the window per key, as the latest production answer reported
    remaining: dict[HeadroomKey, float]
    records: dict[tuple[str, str], int]
    capped: dict[str, int]


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    rejected: int
    errors: list[dict[str, object]]


@dataclass(frozen=True)
class TrafficWindow:
    """Reported production calls in a time window and how many of them failed."""

    requests: int
    errors: int

    @property
    def error_ratio(self) -> float | None:
        return self.errors / self.requests if self.requests else None


@dataclass(frozen=True)
class TrafficTotals:
    """One service's calls to one marketplace since the exporter started (the values behind
    ``marketplace_client_requests_total`` and ``marketplace_client_errors_total``)."""

    requests: int
    #: errors by (reason, code); code ``""`` when the platform gave none
    errors: Mapping[tuple[str, str], int]


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(REQUEST_DURATION_BUCKETS) + 1))
    total: float = 0.0


class TrafficAggregator:
    """All traffic state of one exporter. Thread-safe (one lock); ingest is on the event loop."""

    def __init__(self, settings: TrafficConfig | None = None,
                 accounts: Mapping[str, Iterable[str]] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.requests: dict[RequestKey, int] = {}
        self.errors: dict[ErrorKey, int] = {}
        self.durations: dict[DurationKey, _Histogram] = {}
        self.headroom: dict[HeadroomKey, float] = {}
        #: requests left in the window, the latest reported value per key (not summed: a gauge)
        self.remaining: dict[HeadroomKey, float] = {}
        #: the minute each headroom key was last reported: a key silent for ``retention`` is dropped
        self._headroom_minute: dict[HeadroomKey, int] = {}
        self._headroom_pruned = 0
        self.records: dict[tuple[str, str], int] = {}
        self.capped: dict[str, int] = {}
        self._series: dict[str, set[tuple[str, str, str, str]]] = {}
        self._ring: dict[tuple[str, str], dict[int, list[int]]] = {}
        self.configure(settings or TrafficConfig(), accounts or {})

    def configure(self, settings: TrafficConfig, accounts: Mapping[str, Iterable[str]]) -> None:
        """Apply (re)loaded config: limits and the configured aliases per marketplace."""
        self.settings = settings
        self._accounts = {marketplace: frozenset(aliases) for marketplace, aliases in accounts.items()}
        self._fold_memo: dict[tuple[str, object, object, object], tuple[str, str, str]] = {}

    # --- ingest -----------------------------------------------------------------------------------
    def known_service(self, service: str) -> bool:
        """True if ``service`` already reports or there is room for one more service."""
        return service in self._series or len(self._series) < self.settings.max_services

    def ingest(self, service: str, dropped: int, records: list[Any]) -> IngestResult:
        """Count one batch from ``service``. Each bad record is rejected with its index and why."""
        errors: list[dict[str, object]] = []
        rejected = 0
        accepted = 0
        minute = int(self._clock()) // _BUCKET_SECONDS
        with self._lock:
            series = self._series.setdefault(service, set())
            for index, raw in enumerate(records):
                record = parse_record(raw)
                if isinstance(record, str):
                    rejected += 1
                    if len(errors) < MAX_LISTED_ERRORS:
                        errors.append({"index": index, "error": record})
                    continue
                self._count(service, series, raw, record, (record.duration,), minute)
                accepted += 1
            self._add_records(service, "accepted", accepted)
            self._add_records(service, "rejected", rejected)
            self._add_records(service, "dropped", dropped)
            self._prune(minute)
        return IngestResult(accepted, rejected, errors)

    def ingest_shapes(self, service: str,
                      shapes: Iterable[tuple[Mapping[str, object], TrafficRecordIn, list[float]]]) -> int:
        """Count calls from ``service`` that come in groups differing only in their durations (OTLP
        spans of one call shape): per group, the record, what :func:`parse_record` read of it
        (its own ``duration`` unused) and the calls' durations, each within 0..MAX_DURATION as
        parse_record holds them. Every counter moves once per group by the group's size, every
        duration is observed; the labels and the cardinality cap are applied as to one record.
        Returns the number of calls counted (all of them: the records were checked already)."""
        accepted = 0
        minute = int(self._clock()) // _BUCKET_SECONDS
        with self._lock:
            series = self._series.setdefault(service, set())
            for raw, record, durations in shapes:
                self._count(service, series, raw, record, durations, minute)
                accepted += len(durations)
            self._add_records(service, "accepted", accepted)
            self._add_records(service, "rejected", 0)
            self._add_records(service, "dropped", 0)
            self._prune(minute)
        return accepted

    def _add_records(self, service: str, result: str, count: int) -> None:
        key = (service, result)
        self.records[key] = self.records.get(key, 0) + count

    def _count(self, service: str, series: set[tuple[str, str, str, str]], raw: Any, record: TrafficRecordIn,
               durations: Sequence[float], minute: int) -> None:
        """Count ``len(durations)`` calls that share ``raw``'s labels (one for a native record)."""
        calls = len(durations)
        marketplace, status, reason = record.marketplace, record.status, record.reason
        ratio, remaining = record.ratelimit, record.ratelimit_remaining
        adapter = _MARKETPLACES[marketplace]
        site, account, operation = self._labels(adapter, marketplace, raw.get("site"), raw.get("account"),
                                                raw.get("operation"))
        combo = (marketplace, site, account, operation)
        if combo not in series:
            if len(series) >= self.settings.max_series_per_service:
                combo = (marketplace, OTHER, OTHER, OTHER)
                site = account = operation = OTHER
                self.capped[service] = self.capped.get(service, 0) + calls
            series.add(combo)
        key = (marketplace, site, account, operation, service, status_class(status))
        self.requests[key] = self.requests.get(key, 0) + calls
        failed = bool(reason)
        if failed:
            code = raw.get("code") or ""
            code = _folded(code, adapter.known_codes) if code else ""
            error_key = (marketplace, site, account, operation, service, reason, code)
            self.errors[error_key] = self.errors.get(error_key, 0) + calls
        duration_key = (marketplace, site, operation, service)
        histogram = self.durations.get(duration_key)
        if histogram is None:
            histogram = self.durations[duration_key] = _Histogram()
        counts, total = histogram.counts, histogram.total
        for duration in durations:
            counts[bisect_left(REQUEST_DURATION_BUCKETS, duration)] += 1
            total += duration
        histogram.total = total
        if ratio is not None or remaining is not None:
            headroom_key = (marketplace, site, account, service)
            self._headroom_minute[headroom_key] = minute
            if ratio is not None:
                self.headroom[headroom_key] = float(ratio)
            if remaining is not None:
                self.remaining[headroom_key] = float(remaining)
        buckets = self._ring.setdefault((service, marketplace), {})
        bucket = buckets.get(minute)
        if bucket is None:
            bucket = buckets[minute] = [0, 0]
        bucket[0] += calls
        if failed:
            bucket[1] += calls

    def _labels(self, adapter: Adapter, marketplace: str, site: object, account: object,
                operation: object) -> tuple[str, str, str]:
        """(site, account, operation) folded into the configured world; memoised per raw triple
        (a batch repeats a handful of them), the memo bounded and reset on reload."""
        key = (marketplace, site, account, operation)
        try:
            return self._fold_memo[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value (a list...): not a label anyway
            return OTHER, OTHER, OTHER
        folded = (_folded(site, adapter.sites),
                  _folded(account, self._accounts.get(marketplace, frozenset())),
                  _folded(operation, adapter.api_operations))
        if len(self._fold_memo) >= _FOLD_MEMO_LIMIT:
            self._fold_memo.clear()
        self._fold_memo[key] = folded
        return folded

    def _prune(self, minute: int) -> None:
        oldest = minute - int(self.settings.retention) // _BUCKET_SECONDS
        if minute != self._headroom_pruned:  # once a minute: headroom seen before the retention goes
            self._headroom_pruned = minute
            for stale_key in [k for k, seen in self._headroom_minute.items() if seen < oldest]:
                del self._headroom_minute[stale_key]
                self.headroom.pop(stale_key, None)
                self.remaining.pop(stale_key, None)
        for buckets in self._ring.values():
            if len(buckets) > 1 and min(buckets) < oldest:
                for stale in [m for m in buckets if m < oldest]:
                    del buckets[stale]

    # --- reading -----------------------------------------------------------------------------------
    def window(self, start: float, end: float, *, service: str | None = None,
               marketplace: str | None = None) -> TrafficWindow | None:
        """Reported calls with a one-minute bucket starting in [start, end), for one service and/or
        marketplace (None: all). None when no traffic was reported for them at all, so the deploy
        gate can fall back to probes. Buckets are one minute: choose windows of several minutes."""
        first, last = int(start) // _BUCKET_SECONDS, int(end) // _BUCKET_SECONDS
        requests = errors = 0
        seen = False
        with self._lock:
            for (svc, mp), buckets in self._ring.items():
                if (service is not None and svc != service) or (marketplace is not None and mp != marketplace):
                    continue
                seen = True
                for minute, (count, failed) in buckets.items():
                    if first <= minute < last:
                        requests += count
                        errors += failed
        return TrafficWindow(requests, errors) if seen else None

    def around(self, at: float, span: float, *, service: str | None = None,
               marketplace: str | None = None) -> tuple[TrafficWindow | None, TrafficWindow | None]:
        """(before, after) a deploy marker at ``at``: reported calls in [at - span, at) and
        [at, at + span), to one-minute resolution. Either is None when nothing was reported for
        that service/marketplace at all (then fall back to probes); a window with no calls in it
        has ``error_ratio`` None (too early to tell)."""
        return (self.window(at - span, at, service=service, marketplace=marketplace),
                self.window(at, at + span, service=service, marketplace=marketplace))

    def totals(self, service: str) -> dict[str, TrafficTotals]:
        """Cumulative calls and errors by (reason, code) per marketplace for ``service``. The deploy
        gate takes these when it begins and subtracts them later: exact counts of the calls since
        the gate began, with their reasons, which the per-minute ring does not keep."""
        requests: dict[str, int] = {}
        errors: dict[str, dict[tuple[str, str], int]] = {}
        with self._lock:
            for key, count in self.requests.items():
                if key[4] == service:
                    requests[key[0]] = requests.get(key[0], 0) + count
            for error_key, count in self.errors.items():
                if error_key[4] == service:
                    per = errors.setdefault(error_key[0], {})
                    why = (error_key[5], error_key[6])
                    per[why] = per.get(why, 0) + count
        return {marketplace: TrafficTotals(count, errors.get(marketplace, {}))
                for marketplace, count in requests.items()}

    def services(self) -> list[str]:
        with self._lock:
            return sorted(self._series)

    def histogram_buckets(self, histogram: _Histogram) -> list[tuple[str, float]]:
        """Cumulative ``(le, count)`` pairs for a HistogramMetricFamily."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*REQUEST_DURATION_BUCKETS, math.inf), histogram.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == math.inf else repr(float(bound)), float(running)))
        return out

    def copy_state(self) -> TrafficState:
        """A consistent copy for one scrape (the collector builds families outside the lock)."""
        with self._lock:
            return TrafficState(dict(self.requests), dict(self.errors),
                                {k: (list(h.counts), h.total) for k, h in self.durations.items()},
                                dict(self.headroom), dict(self.remaining), dict(self.records),
                                dict(self.capped))


def _folded(value: object, allowed: frozenset[str] | set[str]) -> str:
    return value if isinstance(value, str) and value in allowed else OTHER
