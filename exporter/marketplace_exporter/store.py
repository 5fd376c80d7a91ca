"""The results store: the single source of truth for everything the exporter shows.

The engine is its only writer (``reconcile``, ``record``, ``record_skip``, ``observe_lateness``,
``mark_next_run``, ``set_deprecations``); the server marks reloads through :meth:`Store.mark_reload`.
Everything else reads through query methods that return copies or immutable values, so no reader
can change what another one sees. Everything runs on one event loop: readers see a consistent
state between two awaits without locks.

Three things are kept up to date as results land, so that readers never walk every check:

* a change feed per subscriber (:meth:`Store.subscribe`): which checks, histograms, credentials,
  certificates changed since the subscriber last looked (the incremental ``/metrics`` renderer);
* the status index (store_index.py): check ids sorted per (marketplace, site, health), and
  credential expiries sorted by time (the status page and ``/api/v1/checks``);
* per check, the recent results of the deploy gate in a packed ring (history.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from marketplace_exporter.catalogue import (
    LATENESS_BUCKETS,
    OTHER_CODE,
    REQUEST_DURATION_BUCKETS,
    Credential,
    Reason,
    SkipReason,
)
from marketplace_exporter.config import CheckSpec
from marketplace_exporter.histogram import Histogram, Packed, observe_packed, packed, unpacked
from marketplace_exporter.history import RecentResult
from marketplace_exporter.model import ProbeOutcome
from marketplace_exporter.store_check import CheckState, CheckStatus, ProbeRecord, count, health_of, history_length
from marketplace_exporter.store_index import AccountKey, CredentialKey, Health, StatusIndex

#: (marketplace, site, check): the request-duration histogram has no account label
HistogramKey = tuple[str, str, str]


#: what changed about a check, as bits in :attr:`ChangeFeed.checks`: a renderer re-renders only the
#: series those parts feed (a successful probe changes its result, not its failure counts)
RESULT = 1  # the last result, the probe count and the requests per step
SUCCESS_AT = 2
FAILURES = 4
SKIPS = 8
API_ERRORS = 16
RATE_LIMITS = 32
VALUES = 64
#: a new check, or one whose spec (labels, interval, tags) changed
EVERYTHING = 127


class ChangeFeed:
    """What changed since the subscriber last emptied these (it empties them itself): per check id
    the parts that changed (bits: :data:`RESULT`, ...), and the other objects by key."""

    __slots__ = ("certificates", "checks", "credentials", "deprecations", "histograms")

    def __init__(self) -> None:
        self.checks: dict[str, int] = {}
        self.histograms: set[HistogramKey] = set()
        self.credentials: set[CredentialKey] = set()
        self.certificates: set[str] = set()
        self.deprecations = False


class Store:
    def __init__(self) -> None:
        self._checks: dict[str, CheckState] = {}
        self._durations: dict[HistogramKey, Packed] = {}
        self._credentials: dict[CredentialKey, float] = {}
        #: host → (certificate notAfter, id of the check that last saw it)
        self._certificates: dict[str, tuple[float, str]] = {}
        #: (marketplace, api) → removal time, from the shipped calendar and config
        self._deprecations: dict[tuple[str, str], float] = {}
        self._lateness = Histogram(LATENESS_BUCKETS)
        self._reload_ok = False
        self._reload_at: float | None = None
        self._feeds: list[ChangeFeed] = []
        self._index = StatusIndex()
        self._keep_durations = True

    # --- writes: the engine (and mark_reload: core.Core) ----------------------------------

    def reconcile(self, specs: Iterable[CheckSpec]) -> None:
        """Adopt a new config: keep counters of checks that still exist, drop the rest."""
        wanted = {spec.id: spec for spec in specs}
        changed = [check_id for check_id in self._checks if check_id not in wanted]
        for check_id in changed:
            del self._checks[check_id]
        for check_id, spec in wanted.items():
            state = self._checks.get(check_id)
            if state is None:
                self._checks[check_id] = CheckState(spec)
            elif state.spec is not spec:
                state.spec = spec
                if state.history.capacity != history_length(spec.interval):
                    state.history = state.history.resized(history_length(spec.interval))
            else:
                continue
            changed.append(check_id)
        durations = {(s.marketplace, s.site, s.name) for s in wanted.values()}
        gone_durations = [key for key in self._durations if key not in durations]
        for key in gone_durations:
            del self._durations[key]
        accounts = {(s.marketplace, s.site, s.account) for s in wanted.values()}
        gone_credentials = [cred for cred in self._credentials if cred[:3] not in accounts]
        for cred in gone_credentials:
            del self._credentials[cred]
        gone_hosts = [host for host, seen in self._certificates.items() if seen[1] not in wanted]
        for host in gone_hosts:
            del self._certificates[host]
        self._index.rebuild(((s, self._checks[i].health()) for i, s in wanted.items()), self._credentials)
        for feed in self._feeds:
            feed.checks.update(dict.fromkeys(changed, EVERYTHING))
            feed.histograms.update(gone_durations)
            feed.credentials.update(gone_credentials)
            feed.certificates.update(gone_hosts)

    def keep_request_durations(self, keep: bool) -> None:
        """Whether probes feed the request-duration histogram (config can drop it to save series)."""
        self._keep_durations = keep
        if not keep and self._durations:
            for feed in self._feeds:
                feed.histograms.update(self._durations)
            self._durations.clear()

    def set_deprecations(self, deprecations: Mapping[tuple[str, str], float]) -> None:
        if deprecations != self._deprecations:
            self._deprecations = dict(deprecations)
            for feed in self._feeds:
                feed.deprecations = True

    def record(self, spec: CheckSpec, record: ProbeRecord, modelled_ratio: float | None) -> None:
        check_id = spec.id
        state = self._checks.get(check_id)
        if state is None or state.spec is not spec:
            return  # the check was removed or replaced by a reload while it ran
        outcome = record.outcome
        was_ok = state.last_ok  # the health before, as CheckState.health() derives it
        changed = RESULT
        state.keep_last(record)
        state.history.append(record.finished_at, outcome.success, record.duration, outcome.reason, outcome.code)
        state.probes += 1
        for step in record.steps:
            state.requests = count(state.requests, step)
        if outcome.success:
            state.last_success_at = record.finished_at
            state.consecutive_failures = 0
            state.consecutive_throttles = 0
            changed |= SUCCESS_AT
        else:
            changed |= FAILURES
            state.consecutive_failures += 1
            reason = outcome.reason or Reason.INTERNAL
            state.failures = count(state.failures, reason)
            state.consecutive_throttles = state.consecutive_throttles + 1 if reason is Reason.THROTTLED else 0
        if record.code_label is not None:
            errors = state.api_errors
            if errors is None:
                errors = state.api_errors = {}
            errors[record.code_label] = errors.get(record.code_label, 0) + 1
            changed |= API_ERRORS
        if modelled_ratio is not None:
            state.modelled_ratio = modelled_ratio
            changed |= RATE_LIMITS
        elif outcome.rate_limit is not None:
            changed |= RATE_LIMITS
        if outcome.values:
            if state.values is None:
                state.values = {}
            state.values.update(outcome.values)
            changed |= VALUES
        feeds = self._feeds
        if outcome.credentials:
            self._record_credentials(spec, outcome)
        if record.tls:
            for host, not_after in record.tls:
                self._certificates[host] = (not_after, check_id)
                for feed in feeds:
                    feed.certificates.add(host)
        if record.call_duration is not None and self._keep_durations:
            key = (spec.marketplace, spec.site, spec.name)
            histogram = self._durations.get(key)
            if histogram is None:
                histogram = self._durations[key] = packed(REQUEST_DURATION_BUCKETS)
            observe_packed(histogram, REQUEST_DURATION_BUCKETS, record.call_duration)
            for feed in feeds:
                feed.histograms.add(key)
        for feed in feeds:
            checks = feed.checks
            checks[check_id] = checks.get(check_id, 0) | changed
        if state.last_ok is not was_ok:  # health is a function of last_ok alone: it changed
            self._index.move(spec, health_of(was_ok), state.health())

    def _record_credentials(self, spec: CheckSpec, outcome: ProbeOutcome) -> None:
        for observation in outcome.credentials:
            key = (spec.marketplace, spec.site, spec.account, observation.credential)
            old = self._credentials.get(key)
            if old == observation.expires_at:
                continue
            self._credentials[key] = observation.expires_at
            self._index.credential(key, old, observation.expires_at)
            for feed in self._feeds:
                feed.credentials.add(key)

    def record_skip(self, spec: CheckSpec, reason: SkipReason, now: float) -> None:
        state = self._checks.get(spec.id)
        if state is not None and state.spec is spec:
            state.skipped = count(state.skipped, reason)
            state.last_skip_at = now
            for feed in self._feeds:
                feed.checks[spec.id] = feed.checks.get(spec.id, 0) | SKIPS

    def observe_lateness(self, seconds: float) -> None:
        self._lateness.observe(seconds)

    def mark_next_run(self, spec: CheckSpec, at: float) -> None:
        state = self._checks.get(spec.id)
        if state is not None:
            state.next_run_at = at

    def mark_reload(self, ok: bool, now: float) -> None:
        """The outcome of a configuration (re)load at ``now`` (a failed one keeps the old time)."""
        self._reload_ok = ok
        if ok:
            self._reload_at = now

    # --- the change feed ---------------------------------------------------------------------

    def subscribe(self) -> ChangeFeed:
        """A feed that collects every change from now on, starting with everything there is."""
        feed = ChangeFeed()
        feed.checks.update(dict.fromkeys(self._checks, EVERYTHING))
        feed.histograms.update(self._durations)
        feed.credentials.update(self._credentials)
        feed.certificates.update(self._certificates)
        feed.deprecations = True
        self._feeds.append(feed)
        return feed

    # --- queries -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._checks)

    def __contains__(self, check_id: object) -> bool:
        return check_id in self._checks

    def check_ids(self) -> list[str]:
        """Every configured check id, in config order."""
        return list(self._checks)

    def specs(self) -> list[CheckSpec]:
        return [state.spec for state in self._checks.values()]

    def status(self, check_id: str) -> CheckStatus | None:
        state = self._checks.get(check_id)
        return state.status() if state is not None else None

    def statuses(self) -> Iterator[CheckStatus]:
        """Every check (config order). Walks them all: not for the event loop at scale."""
        for state in list(self._checks.values()):
            yield state.status()

    def health(self, check_id: str) -> Health | None:
        state = self._checks.get(check_id)
        return state.health() if state is not None else None

    def last_outcome(self, check_id: str) -> ProbeOutcome | None:
        """The last probe's outcome (the engine's back-off and transition log read it), without
        credentials, values and headroom (see :meth:`status`)."""
        state = self._checks.get(check_id)
        return state.last_outcome() if state is not None else None

    def backoff_inputs(self, check_id: str) -> tuple[int, float | None]:
        """What the engine's back-off reads after each probe, in one look: consecutive throttled
        probes and the last probe's Retry-After (seconds), if any."""
        state = self._checks.get(check_id)
        return (state.consecutive_throttles, state.last_retry_after) if state is not None else (0, None)

    def consecutive_throttles(self, check_id: str) -> int:
        state = self._checks.get(check_id)
        return state.consecutive_throttles if state is not None else 0

    def recent_results(self, check_id: str) -> list[RecentResult]:
        """The deploy gate's view: the check's newest results, oldest first."""
        state = self._checks.get(check_id)
        return state.history.results() if state is not None else []

    def history_capacity(self, check_id: str) -> int:
        state = self._checks.get(check_id)
        return state.history.capacity if state is not None else 0

    def credential_expiry(self, key: CredentialKey) -> float | None:
        return self._credentials.get(key)

    def credentials(self, account: AccountKey | None = None) -> list[tuple[CredentialKey, float]]:
        """(key, expires_at), sorted; only ``account``'s when given."""
        if account is None:
            return sorted(self._credentials.items())
        return sorted((key, at) for key, at in ((account + (c,), self._credentials.get(account + (c,)))
                                                for c in Credential) if at is not None)

    def certificates(self) -> list[tuple[str, float]]:
        return sorted((host, seen[0]) for host, seen in self._certificates.items())

    def certificate(self, host: str) -> float | None:
        seen = self._certificates.get(host)
        return seen[0] if seen is not None else None

    def deprecations(self) -> dict[tuple[str, str], float]:
        return dict(self._deprecations)

    def request_durations(self) -> list[tuple[HistogramKey, Histogram]]:
        return sorted((key, unpacked(REQUEST_DURATION_BUCKETS, packed_histogram))
                      for key, packed_histogram in self._durations.items())

    def request_duration(self, key: HistogramKey) -> Histogram | None:
        histogram = self._durations.get(key)
        return unpacked(REQUEST_DURATION_BUCKETS, histogram) if histogram is not None else None

    def lateness(self) -> Histogram:
        return self._lateness.copy()

    def reload_state(self) -> tuple[bool, float | None]:
        """(last load succeeded, time of the last successful load)."""
        return self._reload_ok, self._reload_at

    @property
    def index(self) -> StatusIndex:
        """Sorted ids per (marketplace, site, health) and expiries (read-only use)."""
        return self._index


def fold_code(code: str | None, known: frozenset[str]) -> str | None:
    """Bound the ``code`` label: the platform's known codes as-is, anything else ``other``."""
    if code is None or code == "":
        return None
    return code if code in known else OTHER_CODE


__all__ = ["API_ERRORS", "EVERYTHING", "FAILURES", "RATE_LIMITS", "RESULT", "SKIPS", "SUCCESS_AT", "VALUES",
           "ChangeFeed", "CheckStatus", "Health", "Histogram", "ProbeRecord", "RecentResult", "Store",
           "fold_code", "history_length"]
