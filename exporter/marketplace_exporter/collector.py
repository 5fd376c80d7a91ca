"""Builds fresh metric families from the store on every scrape (no I/O, nothing global).

Sample exposition::

    # HELP marketplace_probe_success 1 if the check's last probe succeeded, else 0. Set by background ...
    # TYPE marketplace_probe_success gauge
    marketplace_probe_success{account="us-main",check="account",marketplace="amazon_sp",site="US"} 1.0
    # TYPE marketplace_probe_failures_total counter
    marketplace_probe_failures_total{account="us-main",check="...",marketplace="amazon_sp",reason="auth",site="US"} 2.0
    marketplace_credential_expiry_timestamp_seconds{account="us-main",credential="access_token",...} 1.7e+09

Because families are rebuilt from the store, a check removed from config disappears from the next
scrape, and two concurrent scrapes cannot race on shared Gauge objects.
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
from marketplace_exporter.store import Store


class StoreCollector(Collector):
    def __init__(self, store: Store) -> None:
        self._store = store

    def describe(self) -> Iterable[Metric]:
        """Empty families from the catalogue: the registry detects name clashes at register time."""
        return [_family(spec) for spec in c.PROBE_METRICS]

    def collect(self) -> Iterator[Metric]:
        store = self._store
        fams: dict[str, Any] = {spec.name: _family(spec) for spec in c.PROBE_METRICS}
        for state in store.checks.values():
            labels = list(state.spec.labels)
            fams[c.PROBE_INTERVAL.name].add_metric(labels, state.spec.interval)
            fams[c.PROBES.name].add_metric(labels, state.probes)
            for reason, count in state.failures.items():
                fams[c.PROBE_FAILURES.name].add_metric([*labels, reason.value], count)
            for skip, count in state.skipped.items():
                fams[c.PROBE_SKIPPED.name].add_metric([*labels, skip.value], count)
            for step in c.Step:
                fams[c.PROBE_REQUESTS.name].add_metric([*labels, step.value], state.requests.get(step, 0))
            for code, count in sorted(state.api_errors.items()):
                fams[c.API_ERRORS.name].add_metric([*labels, code], count)
            observed = state.observed_rate_limit
            if observed is not None:
                source = [*labels, observed.source.value]
                if observed.remaining_ratio is not None:
                    fams[c.RATE_LIMIT_REMAINING.name].add_metric(source, observed.remaining_ratio)
                if observed.remaining is not None:
                    fams[c.RATE_LIMIT_REMAINING_COUNT.name].add_metric(source, observed.remaining)
                if observed.reset_at is not None:
                    fams[c.RATE_LIMIT_RESET.name].add_metric(labels, observed.reset_at)
            if state.modelled_ratio is not None:
                fams[c.RATE_LIMIT_REMAINING.name].add_metric(
                    [*labels, c.RateLimitSource.MODELLED.value], state.modelled_ratio)
            for name, value in sorted(state.values.items()):
                fams[c.PROBE_VALUE.name].add_metric([*labels, name], value)
            if state.last_success_at is not None:
                fams[c.PROBE_LAST_SUCCESS.name].add_metric(labels, state.last_success_at)
            last = state.last
            if last is None:
                continue  # no probe yet: absent rather than a made-up 0
            fams[c.PROBE_SUCCESS.name].add_metric(labels, 1.0 if last.outcome.success else 0.0)
            fams[c.PROBE_DURATION.name].add_metric(labels, last.duration)
            fams[c.PROBE_HTTP_STATUS.name].add_metric(labels, float(last.outcome.http_status or 0))
            fams[c.PROBE_LAST_RUN.name].add_metric(labels, last.finished_at)
        for (marketplace, site, check), histogram in sorted(store.request_durations.items()):
            fams[c.REQUEST_DURATION.name].add_metric(
                [marketplace, site, check], buckets=histogram.cumulative(), sum_value=histogram.total)
        for (marketplace, site, account, credential), expires_at in sorted(store.credentials.items()):
            fams[c.CREDENTIAL_EXPIRY.name].add_metric([marketplace, site, account, credential.value], expires_at)
        for host, (not_after, _) in sorted(store.tls_certs.items()):
            fams[c.TLS_CERT_EXPIRY.name].add_metric([host], not_after)
        for (marketplace, api), removal in sorted(store.deprecations.items()):
            fams[c.API_DEPRECATION.name].add_metric([marketplace, api], removal)
        fams[c.BUILD_INFO.name].add_metric(build_info_values(), 1.0)
        fams[c.CONFIG_RELOAD_OK.name].add_metric([], 1.0 if store.reload_successful else 0.0)
        if store.reload_success_at is not None:
            fams[c.CONFIG_RELOAD_TS.name].add_metric([], store.reload_success_at)
        fams[c.PROBE_LATENESS.name].add_metric(
            [], buckets=store.lateness.cumulative(), sum_value=store.lateness.total)
        yield from fams.values()


def new_registry(store: Store) -> CollectorRegistry:
    """A registry of our own (never the global one): the store collector and the check tags."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(StoreCollector(store))
    registry.register(CheckTagsCollector(store))  # alert routing (marketplace_exporter.check_tags)
    return registry
