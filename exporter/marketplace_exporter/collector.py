"""The reference exposition: prometheus_client metric families built from the store on every call.

``/metrics`` is served by exposition.py, which keeps every check's text rendered and only
assembles bytes on a scrape. This collector is the plain, obviously-correct version of the same
samples, built with prometheus_client's own families: tests compare the two sample by sample
(tests/unit/test_exposition.py) and bench/scale.py times ``generate_latest`` over it as the
reference. It walks every check, so it is never run on the event loop of a busy exporter.

Which series a check has (the pre-created zeros in particular) is decided in catalogue.py
(``PRECREATED_REASONS``, ``PRECREATED_STEPS``) and documented in docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from marketplace_exporter import catalogue as c
from marketplace_exporter.build import build_info_values
from marketplace_exporter.check_tags import CheckTagsCollector
from marketplace_exporter.metric_families import empty_family as _family
from marketplace_exporter.store import CheckStatus, Store


def skip_series_exists(status: CheckStatus) -> bool:
    """``probe_skipped_total`` exists for checks a quota budget can skip, and once one was skipped."""
    spec = status.spec
    return spec.operation.limits(spec.sandbox) is not None or bool(status.skipped)


class StoreCollector(Collector):
    def __init__(self, store: Store) -> None:
        self._store = store

    def describe(self) -> Iterable[Metric]:
        """Empty families from the catalogue: the registry detects name clashes at register time."""
        return [_family(spec) for spec in c.PROBE_METRICS]

    def collect(self) -> Iterator[Metric]:
        store = self._store
        fams: dict[str, Any] = {spec.name: _family(spec) for spec in c.PROBE_METRICS}
        for status in store.statuses():
            _add_check(fams, status)
        for (marketplace, site, check), histogram in store.request_durations():
            fams[c.REQUEST_DURATION.name].add_metric(
                [marketplace, site, check], buckets=histogram.cumulative(), sum_value=histogram.total)
        for (marketplace, site, account, credential), expires_at in store.credentials():
            fams[c.CREDENTIAL_EXPIRY.name].add_metric([marketplace, site, account, credential.value], expires_at)
        for host, not_after in store.certificates():
            fams[c.TLS_CERT_EXPIRY.name].add_metric([host], not_after)
        for (marketplace, api), removal in sorted(store.deprecations().items()):
            fams[c.API_DEPRECATION.name].add_metric([marketplace, api], removal)
        fams[c.BUILD_INFO.name].add_metric(build_info_values(), 1.0)
        reload_ok, reload_at = store.reload_state()
        fams[c.CONFIG_RELOAD_OK.name].add_metric([], 1.0 if reload_ok else 0.0)
        if reload_at is not None:
            fams[c.CONFIG_RELOAD_TS.name].add_metric([], reload_at)
        lateness = store.lateness()
        fams[c.PROBE_LATENESS.name].add_metric([], buckets=lateness.cumulative(), sum_value=lateness.total)
        yield from fams.values()


def _add_check(fams: dict[str, Any], status: CheckStatus) -> None:
    labels = list(status.spec.labels)
    fams[c.PROBE_INTERVAL.name].add_metric(labels, status.spec.interval)
    fams[c.PROBES.name].add_metric(labels, status.probes)
    for reason in c.Reason:
        if status.failures[reason] or reason in c.PRECREATED_REASONS:
            fams[c.PROBE_FAILURES.name].add_metric([*labels, reason.value], status.failures[reason])
    if skip_series_exists(status):
        for skip in c.SkipReason:
            fams[c.PROBE_SKIPPED.name].add_metric([*labels, skip.value], status.skipped[skip])
    for step in c.Step:
        count = status.requests.get(step, 0)
        if count or step in c.PRECREATED_STEPS:
            fams[c.PROBE_REQUESTS.name].add_metric([*labels, step.value], count)
    for code, count in sorted(status.api_errors.items()):
        fams[c.API_ERRORS.name].add_metric([*labels, code], count)
    observed = status.observed_rate_limit
    if observed is not None:
        source = [*labels, observed.source.value]
        if observed.remaining_ratio is not None:
            fams[c.RATE_LIMIT_REMAINING.name].add_metric(source, observed.remaining_ratio)
        if observed.remaining is not None:
            fams[c.RATE_LIMIT_REMAINING_COUNT.name].add_metric(source, observed.remaining)
        if observed.reset_at is not None:
            fams[c.RATE_LIMIT_RESET.name].add_metric(labels, observed.reset_at)
    if status.modelled_ratio is not None:
        fams[c.RATE_LIMIT_REMAINING.name].add_metric(
            [*labels, c.RateLimitSource.MODELLED.value], status.modelled_ratio)
    for name, value in sorted(status.values.items()):
        fams[c.PROBE_VALUE.name].add_metric([*labels, name], value)
    if status.last_success_at is not None:
        fams[c.PROBE_LAST_SUCCESS.name].add_metric(labels, status.last_success_at)
    last = status.last
    if last is None:
        return  # no probe yet: absent rather than a made-up 0
    fams[c.PROBE_SUCCESS.name].add_metric(labels, 1.0 if last.outcome.success else 0.0)
    fams[c.PROBE_DURATION.name].add_metric(labels, last.duration)
    fams[c.PROBE_HTTP_STATUS.name].add_metric(labels, float(last.outcome.http_status or 0))
    fams[c.PROBE_LAST_RUN.name].add_metric(labels, last.finished_at)


def new_registry(store: Store) -> CollectorRegistry:
    """A registry of our own (never the global one): the reference collectors of what
    exposition.py writes (the store's families, then the check tags); tests and ``/probe`` use it."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(StoreCollector(store))
    registry.register(CheckTagsCollector(store))  # alert routing (marketplace_exporter.check_tags)
    return registry
