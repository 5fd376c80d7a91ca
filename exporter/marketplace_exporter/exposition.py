"""``/metrics`` from text kept rendered per check and per metric family (kube-state-metrics' design).

Building prometheus_client families for every check on every scrape cost 0.3 s per 1,000 checks,
all of it on the event loop (issue 11). A check's samples change only when one of its results
lands, N/interval times a second, far less often than scrapes × N. So:

* every object with series (a check, a request-duration histogram, a credential, a certificate)
  owns a *slot*; per family, ``fragments[family][slot]`` is that object's lines, already text;
* the store's change feed says which objects changed, and for a check which parts (a probe pays
  one dict update); :meth:`Exposition.refresh` re-renders just those, and of a check just the
  families those parts feed, in slices of at most 1 ms with the loop free in between
  (4 ms slices bunched the probes' I/O behind them: at 50,000 checks the reported latency's p99
  error read +19 ms before this and the status index's arrays, +6.7 ms after; bench/scale.py).
  :meth:`Exposition.keep_current` does so every :data:`RENDER_EVERY_SECONDS` in the
  background, as results land, so a scrape finds at most that much left to render: at 50,000
  checks rendering what changed in 15 s took ~0.6 s of CPU, which a scrape used to pay;
* a scrape writes, per family, one HELP/TYPE header and the family's fragments joined in slot
  order: each family's lines together, one header per family, as the text format requires.

The families with one line per check and no label of their own (:data:`SINGLE_LINE`: success,
duration, HTTP status, last run, ...) keep only the value's text per check, and each check keeps
its label text once: a scrape writes ``name{labels} value`` from them. A whole line per family
cost ~1.1 KB a check in eight bytes objects, ~42 MB of the 50,000-check exposition; the scrape
pays ~0.1 s of joining for it.

The same sample lines serve both formats the exporter speaks: Prometheus text 0.0.4 and
OpenMetrics 1.0 (negotiated from ``Accept``, as prometheus_client does; Prometheus asks for
OpenMetrics first). Only the headers differ (OpenMetrics names a counter family without
``_total`` and escapes ``"`` in HELP) plus OpenMetrics' final ``# EOF``.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Generic, TypeVar, cast

from prometheus_client import utils

from marketplace_exporter import catalogue as c
from marketplace_exporter import store as changes  # what changed about a check: changes.RESULT, ...
from marketplace_exporter.build import build_info_values
from marketplace_exporter.collector import skip_series_exists
from marketplace_exporter.config import CheckSpec
from marketplace_exporter.store import CheckStatus, Histogram, Store

K = TypeVar("K", bound=Hashable)

#: prometheus_client's value formatting (Go's: ``1.0``, ``1.7e+09``, ``+Inf``), typed
floatToGoString = cast(Callable[[float], str], utils.floatToGoString)  # noqa: N816 (its upstream name)

#: a refresh renders for at most this long per loop turn, then lets probes run
REFRESH_SLICE_SECONDS = 0.001
#: how often :meth:`Exposition.keep_current` renders what changed (a check probed more often than
#: this is rendered at most this often)
RENDER_EVERY_SECONDS = 1.0
#: objects rendered between two looks at the clock
_SLICE = 8
#: slots joined into one piece of output (bounds the size of any single bytes object)
JOIN_SLOTS = 512
#: pieces are gathered to about this size before they are written (and compressed): ~1 ms of joining
CHUNK_BYTES = 256 * 1024

CHECK_FAMILIES: tuple[c.MetricSpec, ...] = (
    c.PROBE_SUCCESS, c.PROBE_DURATION, c.PROBE_HTTP_STATUS, c.PROBE_LAST_RUN, c.PROBE_LAST_SUCCESS,
    c.PROBE_INTERVAL, c.PROBES, c.PROBE_FAILURES, c.PROBE_SKIPPED, c.PROBE_REQUESTS, c.API_ERRORS,
    c.RATE_LIMIT_REMAINING, c.RATE_LIMIT_REMAINING_COUNT, c.RATE_LIMIT_RESET, c.PROBE_VALUE,
    c.PROBE_TAG_INFO,
)
#: every family the exposition writes, in order: the probe families, then the check tags (alerts)
FAMILIES: tuple[c.MetricSpec, ...] = c.PROBE_METRICS + c.ALERTING_METRICS
_F = {spec.name: index for index, spec in enumerate(CHECK_FAMILIES)}
#: families written as ``name{labels} value`` from each check's label text and the value's text
SINGLE_LINE: frozenset[str] = frozenset(spec.name for spec in (
    c.PROBE_SUCCESS, c.PROBE_DURATION, c.PROBE_HTTP_STATUS, c.PROBE_LAST_RUN, c.PROBE_LAST_SUCCESS,
    c.PROBE_INTERVAL, c.PROBES, c.RATE_LIMIT_RESET))
#: the column of the checks' table that holds each check's label text
LABELS = len(CHECK_FAMILIES)
#: value texts most checks share (1.0, 0.0, 200.0, 60.0, ...), kept once
_SHARED_VALUES: dict[str, bytes] = {}


def escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def label_text(names: Sequence[str], values: Sequence[str]) -> str:
    """``a="x",b="y"`` (without braces), values escaped, names sorted as prometheus_client does."""
    return ",".join(f'{name}="{escape_label(value)}"'
                    for name, value in sorted(zip(names, values, strict=True)))


def header(spec: c.MetricSpec, openmetrics: bool) -> bytes:
    """The HELP and TYPE lines of a family, as prometheus_client writes them."""
    if openmetrics:
        doc = spec.help.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
        return f"# HELP {spec.family_name} {doc}\n# TYPE {spec.family_name} {spec.kind}\n".encode()
    doc = spec.help.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {spec.name} {doc}\n# TYPE {spec.name} {spec.kind}\n".encode()


def count_text(value: float) -> str:
    """Go's formatting of a count: ``7.0``; the generic path only for large or fractional values."""
    if type(value) is int and 0 <= value < 1_000_000:
        return f"{value}.0"
    return floatToGoString(value)


def histogram_lines(name: str, names: Sequence[str], values: Sequence[str], histogram: Histogram) -> str:
    """Cumulative buckets, ``_count`` and ``_sum`` (label order and bound texts worked out once)."""
    order, at = _histogram_layout(tuple(names))
    parts = [f'{names[i]}="{escape_label(values[i])}"' for i in order]
    braces = f"{{{','.join(parts)}}}" if parts else ""
    before = ",".join(parts[:at]) + "," if at else ""
    after = "," + ",".join(parts[at:]) if at < len(parts) else ""
    prefix, suffix = f'{name}_bucket{{{before}le="', f'"{after}}} '
    out = []
    running = 0
    for bound, count in zip(_bound_texts(histogram.bounds), histogram.counts, strict=True):
        running += count
        out.append(f"{prefix}{bound}{suffix}{running}.0\n" if running < 1_000_000
                   else f"{prefix}{bound}{suffix}{floatToGoString(running)}\n")
    out.append(f"{name}_count{braces} {count_text(histogram.count)}\n")
    out.append(f"{name}_sum{braces} {floatToGoString(histogram.total)}\n")
    return "".join(out)


@functools.lru_cache(maxsize=16)
def _histogram_layout(names: tuple[str, ...]) -> tuple[tuple[int, ...], int]:
    """The label indexes in sorted name order, and where ``le`` goes among them."""
    order = tuple(sorted(range(len(names)), key=names.__getitem__))
    return order, bisect.bisect(sorted(names), "le")


@functools.lru_cache(maxsize=16)
def _bound_texts(bounds: tuple[float, ...]) -> tuple[str, ...]:
    """``le`` label values as :meth:`Histogram.cumulative` writes them (the series' identity), ``+Inf`` last."""
    return tuple(text for text, _ in Histogram(bounds).cumulative())


#: where each per-check family's extra label sorts among the sorted probe labels
_SORTED_PROBE_LABELS = tuple(sorted(c.PROBE_LABELS))
_EXTRA_AT = {label: bisect.bisect(_SORTED_PROBE_LABELS, label)
             for label in (c.REASON, c.STEP, c.CODE, c.SOURCE, c.VALUE_NAME, c.TAG)}
_PROBE_ORDER = tuple(c.PROBE_LABELS.index(name) for name in _SORTED_PROBE_LABELS)


def render_check(status: CheckStatus, changed: int = changes.EVERYTHING, row: list[bytes] | None = None) -> list[bytes]:
    """A check's lines per family of :data:`CHECK_FAMILIES` (b"" where it has none), the value's
    text only for :data:`SINGLE_LINE` families, then its label text (column :data:`LABELS`).

    Given ``changed`` (the store's bits) and the check's previous ``row``, only the families those
    parts feed are rendered again: a successful probe re-renders its result, probe and request
    counts, not its failure counters, tags or interval. Short of ``EVERYTHING`` (a reload) the spec
    is the same, so the label text in ``row`` holds. Lines are plain f-strings, labels sorted as
    prometheus_client writes them."""
    if row is None or changed == changes.EVERYTHING:
        out = [b""] * (len(CHECK_FAMILIES) + 1)
        changed = changes.EVERYTHING
    else:
        out = row
    spec = status.spec
    if changed == changes.EVERYTHING:
        labels = ",".join(_label_parts(spec))
        out[LABELS] = labels.encode()
    else:
        labels = out[LABELS].decode()
    fmt = count_text
    shared = _SHARED_VALUES

    def one(metric: c.MetricSpec, value: float) -> None:
        text = fmt(value)
        kept = shared.get(text)
        if kept is None:
            kept = text.encode()
            if len(text) <= 6 and len(shared) < 256:  # 1.0, 0.0, 200.0, 60.0: most checks have them
                shared[text] = kept
        out[_F[metric.name]] = kept

    def many(metric: c.MetricSpec, label: str, items: Sequence[tuple[str, float]]) -> None:
        name = metric.name
        if not items:
            out[_F[name]] = b""
            return
        at = _EXTRA_AT[label]
        if at == len(_SORTED_PROBE_LABELS):  # step, source, tag: after every probe label
            before, after = labels + ",", ""
        else:  # reason, code, name: between two of them (rendered on failures and extractions only)
            parts = _label_parts(spec)
            before = ",".join(parts[:at]) + "," if at else ""
            after = "," + ",".join(parts[at:])
        out[_F[name]] = "".join(f'{name}{{{before}{label}="{escape_label(key)}"{after}}} {fmt(value)}\n'
                                for key, value in items).encode()

    if changed == changes.EVERYTHING:  # from the spec: changes with the config only
        one(c.PROBE_INTERVAL, spec.interval)
        if spec.tags:  # marketplace_probe_tag_info (check_tags.py)
            many(c.PROBE_TAG_INFO, c.TAG, [(tag, 1.0) for tag in sorted(set(spec.tags))])
    if changed & changes.RESULT:
        one(c.PROBES, status.probes)
        requests = status.requests
        many(c.PROBE_REQUESTS, c.STEP, [(step.value, requests[step]) for step in c.Step
                                        if step in requests or step in c.PRECREATED_STEPS])
        last = status.last
        if last is not None:
            one(c.PROBE_SUCCESS, 1.0 if last.outcome.success else 0.0)
            one(c.PROBE_DURATION, last.duration)
            one(c.PROBE_HTTP_STATUS, float(last.outcome.http_status or 0))
            one(c.PROBE_LAST_RUN, last.finished_at)
    if changed & changes.SUCCESS_AT and status.last_success_at is not None:
        one(c.PROBE_LAST_SUCCESS, status.last_success_at)
    if changed & changes.FAILURES:
        failures = status.failures
        many(c.PROBE_FAILURES, c.REASON, [(reason.value, failures[reason]) for reason in c.Reason
                                          if reason in failures or reason in c.PRECREATED_REASONS])
    if changed & changes.SKIPS:
        many(c.PROBE_SKIPPED, c.REASON, [(skip.value, status.skipped[skip]) for skip in c.SkipReason]
             if skip_series_exists(status) else ())
    if changed & changes.API_ERRORS:
        many(c.API_ERRORS, c.CODE, sorted(status.api_errors.items()))
    if changed & changes.RATE_LIMITS:
        ratios: list[tuple[str, float]] = []
        observed = status.observed_rate_limit
        out[_F[c.RATE_LIMIT_RESET.name]] = b""
        many(c.RATE_LIMIT_REMAINING_COUNT, c.SOURCE, [(observed.source.value, observed.remaining)]
             if observed is not None and observed.remaining is not None else ())
        if observed is not None:
            if observed.remaining_ratio is not None:
                ratios.append((observed.source.value, observed.remaining_ratio))
            if observed.reset_at is not None:
                one(c.RATE_LIMIT_RESET, observed.reset_at)
        if status.modelled_ratio is not None:
            ratios.append((c.RateLimitSource.MODELLED.value, status.modelled_ratio))
        many(c.RATE_LIMIT_REMAINING, c.SOURCE, ratios)
    if changed & changes.VALUES:
        many(c.PROBE_VALUE, c.VALUE_NAME, sorted(status.values.items()))
    return out


def _label_parts(spec: CheckSpec) -> list[str]:
    """``name="value"`` per probe label, escaped, in sorted label order."""
    values = spec.labels
    return [f'{name}="{escape_label(values[i])}"' for name, i in zip(_SORTED_PROBE_LABELS, _PROBE_ORDER, strict=True)]


class _Table(Generic[K]):
    """Rendered fragments of one kind of object, per family, indexed by the object's slot."""

    def __init__(self, families: int) -> None:
        self.slots: dict[K, int] = {}
        self.free: list[int] = []
        self.fragments: list[list[bytes]] = [[] for _ in range(families)]

    def put(self, key: K, fragments: Sequence[bytes]) -> None:
        slot = self.slots.get(key)
        if slot is None:
            if self.free:
                slot = self.free.pop()
            else:
                slot = len(self.fragments[0])
                for family in self.fragments:
                    family.append(b"")
            self.slots[key] = slot
        for family, text in zip(self.fragments, fragments, strict=True):
            family[slot] = text

    def row(self, key: K) -> list[bytes] | None:
        """The key's fragments per family (a copy), None if it has no slot."""
        slot = self.slots.get(key)
        return None if slot is None else [family[slot] for family in self.fragments]

    def drop(self, key: K) -> None:
        slot = self.slots.pop(key, None)
        if slot is not None:
            for family in self.fragments:
                family[slot] = b""
            self.free.append(slot)


class Exposition:
    """The store's families, kept rendered (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._feed = store.subscribe()
        self._checks: _Table[str] = _Table(len(CHECK_FAMILIES) + 1)
        self._durations: _Table[tuple[str, str, str]] = _Table(1)
        self._credentials: _Table[tuple[str, str, str, c.Credential]] = _Table(1)
        self._certificates: _Table[str] = _Table(1)
        self._deprecations = b""
        for check_id in store.check_ids():  # slots in config order: a readable /metrics
            self._checks.put(check_id, [b""] * (len(CHECK_FAMILIES) + 1))

    # --- keeping it current ----------------------------------------------------------------

    async def refresh(self) -> None:
        """Re-render what changed before this call, yielding to the loop every few milliseconds
        (what changes meanwhile waits for the next scrape, so a busy loop cannot starve it)."""
        feed = self._feed
        budget = len(feed.checks) + len(feed.histograms) + len(feed.credentials) + len(feed.certificates) + 1
        while budget > 0:
            deadline = time.perf_counter() + REFRESH_SLICE_SECONDS
            while budget > 0 and time.perf_counter() < deadline:
                budget -= _SLICE - self._step(_SLICE)
                if not self._pending():
                    return
            await asyncio.sleep(0)

    async def keep_current(self, every: float = RENDER_EVERY_SECONDS) -> None:
        """Render what changed every ``every`` seconds, until cancelled (the app runs it)."""
        while True:
            await asyncio.sleep(every)
            await self.refresh()

    def refresh_now(self) -> None:
        """The same in one go (a one-check store, tests)."""
        while self._pending():
            self._step(1 << 30)

    def waiting(self) -> int:
        """How many changed objects are not rendered yet."""
        feed = self._feed
        return (len(feed.checks) + len(feed.histograms) + len(feed.credentials) + len(feed.certificates)
                + int(feed.deprecations))

    def _pending(self) -> bool:
        feed = self._feed
        return bool(feed.checks or feed.histograms or feed.credentials or feed.certificates or feed.deprecations)

    def _step(self, budget: int) -> int:
        """Render up to ``budget`` changed objects; return the budget left."""
        feed, store = self._feed, self._store
        if feed.deprecations:
            feed.deprecations = False
            self._deprecations = "".join(
                f'{c.API_DEPRECATION.name}{{{label_text(c.API_DEPRECATION.labels, key)}}} {floatToGoString(at)}\n'
                for key, at in sorted(store.deprecations().items())).encode()
        checks, table = feed.checks, self._checks
        while checks and budget > 0:
            check_id, changed = checks.popitem()
            budget -= 1
            status = store.status(check_id)
            if status is None:
                table.drop(check_id)
            else:
                table.put(check_id, render_check(status, changed, table.row(check_id)))
        budget = _drain(feed.histograms, budget, self._durations, store.request_duration,
                        lambda h, k: [histogram_lines(c.REQUEST_DURATION.name, c.REQUEST_DURATION.labels, k,
                                                      h).encode()])
        budget = _drain(feed.credentials, budget, self._credentials, store.credential_expiry,
                        lambda at, k: [_line(c.CREDENTIAL_EXPIRY, (*k[:3], k[3].value), at)])
        return _drain(feed.certificates, budget, self._certificates, store.certificate,
                      lambda at, k: [_line(c.TLS_CERT_EXPIRY, (k,), at)])

    # --- a scrape ----------------------------------------------------------------------------

    def chunks(self, openmetrics: bool) -> Iterator[bytes]:
        """The probe families as pieces of about :data:`CHUNK_BYTES` (no ``# EOF``: the caller
        appends the other collectors' families first)."""
        pending: list[bytes] = []
        size = 0
        for piece in self._pieces(openmetrics):
            pending.append(piece)
            size += len(piece)
            if size >= CHUNK_BYTES:
                yield b"".join(pending)
                pending, size = [], 0
        if pending:
            yield b"".join(pending)

    def render(self, openmetrics: bool = False) -> bytes:
        """Everything at once (small stores: ``/probe``, tests)."""
        self.refresh_now()
        return b"".join(self.chunks(openmetrics)) + (b"# EOF\n" if openmetrics else b"")

    def _pieces(self, openmetrics: bool) -> Iterator[bytes]:
        store = self._store
        tables = {spec.name: self._checks.fragments[index] for index, spec in enumerate(CHECK_FAMILIES)}
        tables[c.REQUEST_DURATION.name] = self._durations.fragments[0]
        tables[c.CREDENTIAL_EXPIRY.name] = self._credentials.fragments[0]
        tables[c.TLS_CERT_EXPIRY.name] = self._certificates.fragments[0]
        labels = self._checks.fragments[LABELS]
        for spec in FAMILIES:
            yield header(spec, openmetrics)
            family = tables.get(spec.name)
            if family is not None and spec.name in SINGLE_LINE:
                yield from _single_lines(spec.name.encode(), list(labels), list(family))
            elif family is not None:
                fragments = list(family)  # this family as of now: later changes wait for the next scrape
                for start in range(0, len(fragments), JOIN_SLOTS):
                    yield b"".join(fragments[start:start + JOIN_SLOTS])
            elif spec is c.API_DEPRECATION:
                yield self._deprecations
            elif spec is c.BUILD_INFO:
                yield _line(c.BUILD_INFO, build_info_values(), 1.0)
            elif spec is c.CONFIG_RELOAD_OK:
                yield _line(c.CONFIG_RELOAD_OK, (), 1.0 if store.reload_state()[0] else 0.0)
            elif spec is c.CONFIG_RELOAD_TS:
                at = store.reload_state()[1]
                yield _line(c.CONFIG_RELOAD_TS, (), at) if at is not None else b""
            elif spec is c.PROBE_LATENESS:
                yield histogram_lines(spec.name, (), (), store.lateness()).encode()


def _single_lines(name: bytes, labels: list[bytes], values: list[bytes]) -> Iterator[bytes]:
    """``name{labels} value`` for every check with a value, :data:`JOIN_SLOTS` checks a piece."""
    opening, between, end = name + b"{", b"} ", b"\n"
    for start in range(0, len(values), JOIN_SLOTS):
        pieces: list[bytes] = []
        for label, value in zip(labels[start:start + JOIN_SLOTS], values[start:start + JOIN_SLOTS], strict=True):
            if value:
                pieces += (opening, label, between, value, end)
        yield b"".join(pieces)


def _line(spec: c.MetricSpec, values: Sequence[str], value: float) -> bytes:
    labels = label_text(spec.labels, values)
    return f"{spec.name}{{{labels}}} {floatToGoString(value)}\n".encode() if labels else (
        f"{spec.name} {floatToGoString(value)}\n".encode())


V = TypeVar("V")


def _drain(changed: set[K], budget: int, table: _Table[K], lookup: Callable[[K], V | None],
           render: Callable[[V, K], list[bytes]]) -> int:
    """Re-render up to ``budget`` of ``changed`` into ``table`` (an object the store no longer has
    loses its slot); return the budget left."""
    while changed and budget > 0:
        key = changed.pop()
        budget -= 1
        value = lookup(key)
        if value is None:
            table.drop(key)
        else:
            table.put(key, render(value, key))
    return budget


__all__ = ["CHECK_FAMILIES", "FAMILIES", "Exposition", "header", "render_check"]
