"""The traffic families (catalogue ``TRAFFIC_METRICS``), fresh on every scrape from the aggregator."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from marketplace_exporter import catalogue as c
from marketplace_exporter.metric_families import empty_family as _family
from marketplace_exporter.traffic.aggregate import TrafficAggregator, _Histogram


class TrafficCollector(Collector):
    def __init__(self, aggregator: TrafficAggregator) -> None:
        self._aggregator = aggregator

    def describe(self) -> Iterable[Metric]:
        return [_family(spec) for spec in c.TRAFFIC_METRICS]

    def collect(self) -> Iterator[Metric]:
        aggregator = self._aggregator
        state = aggregator.copy_state()
        fams: dict[str, Any] = {spec.name: _family(spec) for spec in c.TRAFFIC_METRICS}
        for key, count in state.requests.items():
            fams[c.CLIENT_REQUESTS.name].add_metric(list(key), count)
        for error_key, count in state.errors.items():
            fams[c.CLIENT_ERRORS.name].add_metric(list(error_key), count)
        for duration_key, (counts, total) in state.durations.items():
            buckets = aggregator.histogram_buckets(_Histogram(counts, total))
            fams[c.CLIENT_REQUEST_DURATION.name].add_metric(list(duration_key), buckets, total)
        for headroom_key, ratio in state.headroom.items():
            fams[c.CLIENT_RATE_LIMIT_REMAINING.name].add_metric(list(headroom_key), ratio)
        for headroom_key, left in state.remaining.items():
            fams[c.CLIENT_RATE_LIMIT_REMAINING_REQUESTS.name].add_metric(list(headroom_key), left)
        for (service, result), count in state.records.items():
            fams[c.TRAFFIC_RECORDS.name].add_metric([service, result], count)
        for service, count in state.capped.items():
            fams[c.TRAFFIC_SERIES_CAPPED.name].add_metric([service], count)
        yield from fams.values()
