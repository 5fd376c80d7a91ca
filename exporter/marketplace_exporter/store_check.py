"""One check as the store keeps it (:class:`CheckState`, never handed out) and as readers see it
(:class:`CheckStatus`, a snapshot), plus the engine's :class:`ProbeRecord`.

A check's state is written on every probe, 50,000 times a minute at 50,000 checks, and lives as
long as the config. What it keeps between probes therefore avoids containers the garbage
collector tracks (instances, tuples holding objects, dicts keyed by enum members, lists): each of
them would sit in the collector's oldest generation, which a full collection walks with the event
loop stalled. Numbers, strings, bytes and dicts of strings and numbers are not tracked; readers get
objects rebuilt from them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar, cast

from marketplace_exporter.catalogue import RateLimitSource, Reason, SkipReason, Step
from marketplace_exporter.config import CheckSpec
from marketplace_exporter.history import ResultRing
from marketplace_exporter.model import ProbeOutcome, RateLimitObservation
from marketplace_exporter.store_index import Health


@dataclass(slots=True, unsafe_hash=True)
class ProbeRecord:
    """One finished probe as the engine measured it. Made once per probe, hence not frozen (a frozen
    dataclass pays ``object.__setattr__`` per field: 1.2 µs against 0.2 µs here); nobody changes one."""

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
#: ... within these bounds: a result costs 9 bytes (history.py), so a check holds 1-6 KB
HISTORY_MIN, HISTORY_MAX = 120, 600

K = TypeVar("K")
E = TypeVar("E", bound=Enum)


def history_length(interval: float) -> int:
    """How many results cover :data:`HISTORY_SPAN` at ``interval`` (bounded)."""
    return max(HISTORY_MIN, min(HISTORY_MAX, math.ceil(HISTORY_SPAN / interval)))


@dataclass(slots=True, unsafe_hash=True)
class CheckStatus:
    """A read-only snapshot of one check: what a reader may know about it. A copy made per read
    (the renderer makes one per changed check), not frozen for the same reason as :class:`ProbeRecord`."""

    spec: CheckSpec
    last: ProbeRecord | None
    last_success_at: float | None
    probes: int
    consecutive_failures: int
    consecutive_throttles: int
    #: counts by reason; a reason never seen reads 0 (which series exist: catalogue.PRECREATED_*)
    failures: Mapping[Reason, int]
    skipped: Mapping[SkipReason, int]
    requests: Mapping[Step, int]
    api_errors: Mapping[str, int]
    observed_rate_limit: RateLimitObservation | None
    modelled_ratio: float | None
    values: Mapping[str, float]
    next_run_at: float | None
    last_skip_at: float | None

    @property
    def health(self) -> Health:
        last = self.last
        if last is None:
            return Health.PENDING
        return Health.OK if last.outcome.success else Health.FAILING


class Counts(dict[K, int]):
    """Counts that read 0 for a key never counted (iteration shows counted keys only)."""

    def __missing__(self, key: K) -> int:
        return 0


class CheckState:
    """One check's mutable state; never leaves the store (readers get :class:`CheckStatus`).

    The last result is kept as plain fields, not as the engine's :class:`ProbeRecord`: that record,
    its outcome and their tuples were ~6 garbage-collected containers per check, replaced on every
    probe, so at 50,000 checks ~300,000 of them lived in the collector's oldest generation and a
    full collection over them stalled the event loop for up to 186 ms. Numbers, strings, enum
    members and shared tuples are not containers the collector walks; :meth:`last` rebuilds the
    record for readers."""

    __slots__ = ("api_errors", "consecutive_failures", "consecutive_throttles", "failures", "history",
                 "last_call_duration", "last_code", "last_code_label", "last_duration", "last_finished_at",
                 "last_http_status", "last_ok", "last_reason", "last_retry_after", "last_skip_at",
                 "last_started_at", "last_steps", "last_success_at", "last_text", "modelled_ratio", "next_run_at",
                 "observed_rate_limit", "probes", "requests", "skipped", "spec", "values")

    def __init__(self, spec: CheckSpec) -> None:
        self.spec = spec
        self.history = ResultRing(history_length(spec.interval))
        #: None until the first probe finished
        self.last_ok: bool | None = None
        self.last_reason: Reason | None = None
        self.last_code: str | None = None
        self.last_text = ""
        self.last_http_status: int | None = None
        self.last_retry_after: float | None = None
        self.last_code_label: str | None = None
        self.last_started_at = 0.0
        self.last_finished_at = 0.0
        self.last_duration = 0.0
        self.last_call_duration: float | None = None
        self.last_steps: tuple[Step, ...] = ()
        self.last_success_at: float | None = None
        self.probes = 0
        self.consecutive_failures = 0
        self.consecutive_throttles = 0
        # counts keyed by the enum's value: a dict of strings and numbers only is never tracked by
        # the garbage collector, while one keyed by enum members is (created on first use: most
        # checks never fail, skip or see a code)
        self.failures: dict[str, int] | None = None
        self.skipped: dict[str, int] | None = None
        self.requests: dict[str, int] | None = None
        self.api_errors: dict[str, int] | None = None
        #: the last headroom a platform reported, packed (:func:`_pack_rate_limit`)
        self.observed_rate_limit: _PackedRateLimit | None = None
        self.modelled_ratio: float | None = None
        self.values: dict[str, float] | None = None
        self.next_run_at: float | None = None
        self.last_skip_at: float | None = None

    def keep_last(self, record: ProbeRecord) -> None:
        outcome = record.outcome
        self.last_ok = outcome.success
        self.last_reason = outcome.reason
        self.last_code = outcome.code
        self.last_text = outcome.text
        self.last_http_status = outcome.http_status
        self.last_retry_after = outcome.retry_after_seconds
        self.last_code_label = record.code_label
        self.last_started_at = record.started_at
        self.last_finished_at = record.finished_at
        self.last_duration = record.duration
        self.last_call_duration = record.call_duration
        self.last_steps = _STEPS.setdefault(record.steps, record.steps)
        if outcome.rate_limit is not None:
            self.observed_rate_limit = _pack_rate_limit(outcome.rate_limit)

    def last_outcome(self) -> ProbeOutcome | None:
        """The last outcome as far as the store keeps it: without credentials, values and headroom
        (the store keeps those apart, see :class:`CheckStatus`)."""
        if self.last_ok is None:
            return None
        return ProbeOutcome(self.last_ok, self.last_reason, self.last_code, self.last_text, self.last_http_status,
                            self.last_retry_after)

    def last(self) -> ProbeRecord | None:
        outcome = self.last_outcome()
        if outcome is None:
            return None
        return ProbeRecord(outcome, self.last_code_label, self.last_started_at, self.last_finished_at,
                           self.last_duration, self.last_call_duration, self.last_steps)

    def health(self) -> Health:
        return health_of(self.last_ok)

    def status(self) -> CheckStatus:
        observed = self.observed_rate_limit
        return CheckStatus(
            self.spec, self.last(), self.last_success_at, self.probes, self.consecutive_failures,
            self.consecutive_throttles, _counts(Reason, self.failures), _counts(SkipReason, self.skipped),
            _counts(Step, self.requests), Counts(self.api_errors or ()),
            _unpack_rate_limit(observed) if observed is not None else None, self.modelled_ratio,
            dict(self.values or ()), self.next_run_at, self.last_skip_at)


def health_of(last_ok: bool | None) -> Health:
    """A check's health from whether its last probe succeeded (None: no probe finished yet)."""
    return Health.PENDING if last_ok is None else Health.OK if last_ok else Health.FAILING


def count(counts: dict[str, int] | None, member: Reason | SkipReason | Step) -> dict[str, int]:
    """``counts`` (created when None) with ``member`` counted once more."""
    if counts is None:
        counts = {}
    key = member._value_  # what ``.value`` returns, without the enum's Python-level property
    counts[key] = counts.get(key, 0) + 1
    return counts


def _counts(kind: type[E], counts: dict[str, int] | None) -> Counts[E]:
    """The readers' view, keyed by the enum again: counted members only."""
    if not counts:
        return Counts()
    members = cast(dict[str, E], _MEMBERS[kind])
    return Counts({members[key]: count for key, count in counts.items()})


#: enum value -> member for the counted enums (``Reason(value)`` goes through the enum machinery)
_MEMBERS: dict[type[Enum], dict[str, Enum]] = {kind: {member.value: member for member in kind}
                                              for kind in (Reason, SkipReason, Step)}


#: every distinct ``steps`` tuple once (a probe's own tuple is a new container each time)
_STEPS: dict[tuple[Step, ...], tuple[Step, ...]] = {}
_RATE_LIMIT_SOURCES = tuple(RateLimitSource)
_SOURCE_INDEX = {source: index for index, source in enumerate(_RATE_LIMIT_SOURCES)}
#: (remaining_ratio, source index, limit_per_second, remaining, limit, reset_at): numbers only,
#: so the collector stops tracking the tuple after its first look
_PackedRateLimit = tuple[float | None, int, float | None, float | None, float | None, float | None]


def _pack_rate_limit(observed: RateLimitObservation) -> _PackedRateLimit:
    return (observed.remaining_ratio, _SOURCE_INDEX[observed.source], observed.limit_per_second,
            observed.remaining, observed.limit, observed.reset_at)


def _unpack_rate_limit(packed: _PackedRateLimit) -> RateLimitObservation:
    ratio, source, limit_per_second, remaining, limit, reset_at = packed
    return RateLimitObservation(ratio, _RATE_LIMIT_SOURCES[source], limit_per_second, remaining, limit, reset_at)


__all__ = ["HISTORY_MAX", "HISTORY_MIN", "HISTORY_SPAN", "CheckState", "CheckStatus", "Counts", "ProbeRecord",
           "count", "health_of", "history_length"]
