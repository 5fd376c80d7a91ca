"""The results store: the single source of truth for everything the exporter shows.

The engine is its only writer. The collector (``/metrics``), the status page (``/``) and ``/probe``
read it; they never do I/O. Everything runs on one event loop, so readers see a consistent state
between two awaits without locks.

Series of a check removed from config vanish on the next scrape because :meth:`Store.reconcile`
drops its state (the collector builds families from the store alone).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

from marketplace_exporter.catalogue import (
    LATENESS_BUCKETS,
    OTHER_CODE,
    REQUEST_DURATION_BUCKETS,
    Credential,
    Reason,
    SkipReason,
    Step,
)
from marketplace_exporter.config import CheckSpec
from marketplace_exporter.model import ProbeOutcome, RateLimitObservation


@dataclass
class Histogram:
    """Cumulative-at-export histogram: per-bucket counts, sum and count."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        out, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else f"{bound:g}", running))
        return out


@dataclass(frozen=True)
class ProbeRecord:
    """One finished probe as the engine measured it."""

    outcome: ProbeOutcome
    #: the platform code as exported: known codes as-is, others folded into ``other``
    code_label: str | None
    started_at: float
    finished_at: float
    duration: float
    #: latency of the marketplace API call itself (None if it was never sent)
    call_duration: float | None
    steps: tuple[Step, ...]
    debug: tuple[str, ...] = ()
    #: (host, certificate notAfter) for every https host this probe talked to
    tls: tuple[tuple[str, float], ...] = ()


#: how far back each check's recent results should reach for the post-deploy gate
#: (deploys/verify.py): its 30 min baseline before the ``started`` marker plus a 15 min rollout
HISTORY_SPAN = 45 * 60.0
#: ... within these bounds: a result costs ~130 bytes (measured), so a check holds 16-78 KB
HISTORY_MIN, HISTORY_MAX = 120, 600


def history_length(interval: float) -> int:
    """How many results cover :data:`HISTORY_SPAN` at ``interval`` (bounded)."""
    return max(HISTORY_MIN, min(HISTORY_MAX, math.ceil(HISTORY_SPAN / interval)))


class RecentResult(NamedTuple):
    """One finished probe, reduced to what the verification gate compares (a tuple: cheap to
    build on the hot path, and it shares the record's float and enum objects)."""

    finished_at: float
    success: bool
    duration: float
    reason: Reason | None
    #: the platform's own code, unfolded (the gate shows it to a person; it is never a label)
    code: str | None


@dataclass
class CheckState:
    spec: CheckSpec
    #: the newest results (:func:`history_length` of them), oldest first
    history: deque[RecentResult] = field(init=False)
    last: ProbeRecord | None = None
    last_success_at: float | None = None
    probes: int = 0
    consecutive_failures: int = 0
    consecutive_throttles: int = 0
    failures: dict[Reason, int] = field(default_factory=lambda: dict.fromkeys(Reason, 0))
    skipped: dict[SkipReason, int] = field(default_factory=lambda: dict.fromkeys(SkipReason, 0))
    requests: dict[Step, int] = field(default_factory=dict)
    api_errors: dict[str, int] = field(default_factory=dict)
    observed_rate_limit: RateLimitObservation | None = None
    modelled_ratio: float | None = None
    values: dict[str, float] = field(default_factory=dict)
    next_run_at: float | None = None
    last_skip_at: float | None = None

    def __post_init__(self) -> None:
        self.history = deque(maxlen=history_length(self.spec.interval))


class Store:
    def __init__(self) -> None:
        self.checks: dict[str, CheckState] = {}
        self.request_durations: dict[tuple[str, str, str], Histogram] = {}
        self.credentials: dict[tuple[str, str, str, Credential], float] = {}
        #: host → (certificate notAfter, id of the check that last saw it)
        self.tls_certs: dict[str, tuple[float, str]] = {}
        #: (marketplace, api) → removal time, from the shipped calendar and config
        self.deprecations: dict[tuple[str, str], float] = {}
        self.lateness = Histogram(LATENESS_BUCKETS)
        self.reload_successful = False
        self.reload_success_at: float | None = None

    def mark_reload(self, ok: bool, now: float) -> None:
        """Record a config load's outcome (the reload gauges read it)."""
        self.reload_successful = ok
        if ok:
            self.reload_success_at = now

    def reconcile(self, specs: tuple[CheckSpec, ...]) -> None:
        """Adopt a new config: keep counters of checks that still exist, drop the rest."""
        wanted = {spec.id: spec for spec in specs}
        for check_id in list(self.checks):
            if check_id not in wanted:
                del self.checks[check_id]
        for check_id, spec in wanted.items():
            state = self.checks.get(check_id)
            if state is None:
                self.checks[check_id] = CheckState(spec)
            else:
                state.spec = spec
                if state.history.maxlen != history_length(spec.interval):
                    state.history = deque(state.history, maxlen=history_length(spec.interval))
        durations = {(s.marketplace, s.site, s.name) for s in specs}
        self.request_durations = {k: v for k, v in self.request_durations.items() if k in durations}
        accounts = {(s.marketplace, s.site, s.account) for s in specs}
        self.credentials = {k: v for k, v in self.credentials.items() if k[:3] in accounts}
        self.tls_certs = {host: seen for host, seen in self.tls_certs.items() if seen[1] in wanted}

    def record(self, spec: CheckSpec, record: ProbeRecord, modelled_ratio: float | None) -> None:
        state = self.checks.get(spec.id)
        if state is None or state.spec is not spec:
            return  # the check was removed or replaced by a reload while it ran
        outcome = record.outcome
        state.last = record
        state.history.append(RecentResult(record.finished_at, outcome.success, record.duration,
                                          outcome.reason, outcome.code))
        state.probes += 1
        for step in record.steps:
            state.requests[step] = state.requests.get(step, 0) + 1
        if outcome.success:
            state.last_success_at = record.finished_at
            state.consecutive_failures = 0
        else:
            state.consecutive_failures += 1
            state.failures[outcome.reason or Reason.INTERNAL] += 1
        throttled = outcome.reason is Reason.THROTTLED
        state.consecutive_throttles = state.consecutive_throttles + 1 if throttled else 0
        if record.code_label is not None:
            state.api_errors[record.code_label] = state.api_errors.get(record.code_label, 0) + 1
        if outcome.rate_limit is not None:
            state.observed_rate_limit = outcome.rate_limit
        if modelled_ratio is not None:
            state.modelled_ratio = modelled_ratio
        state.values.update(outcome.values)
        for observation in outcome.credentials:
            key = (spec.marketplace, spec.site, spec.account, observation.credential)
            self.credentials[key] = observation.expires_at
        for host, not_after in record.tls:
            self.tls_certs[host] = (not_after, spec.id)
        if record.call_duration is not None:
            key3 = (spec.marketplace, spec.site, spec.name)
            histogram = self.request_durations.get(key3)
            if histogram is None:
                histogram = self.request_durations[key3] = Histogram(REQUEST_DURATION_BUCKETS)
            histogram.observe(record.call_duration)

    def record_skip(self, spec: CheckSpec, reason: SkipReason, now: float) -> None:
        state = self.checks.get(spec.id)
        if state is not None and state.spec is spec:
            state.skipped[reason] += 1
            state.last_skip_at = now


def fold_code(code: str | None, known: frozenset[str]) -> str | None:
    """Bound the ``code`` label: the platform's known codes as-is, anything else ``other``."""
    if code is None or code == "":
        return None
    return code if code in known else OTHER_CODE
