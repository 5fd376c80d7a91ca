"""Bridge metrics, rebuilt from the delivery counters and the outbox depth on every scrape.

Sample exposition::

    marketplace_bridge_notifications_total{channel="dingtalk",receiver="ops-dingtalk"} 12.0
    marketplace_bridge_notification_failures_total{channel="dingtalk",reason="throttled",receiver="ops-dingtalk"} 1.0
    marketplace_bridge_queue_depth{channel="dingtalk",receiver="ops-dingtalk"} 0.0
    marketplace_bridge_delivery_duration_seconds_bucket{channel="dingtalk",le="0.5",receiver="ops-dingtalk"} 11.0

Labels are the configured receiver names and channel kinds only (bounded); a notification posted
to an unknown receiver counts under ``receiver="_unknown", channel="none"``. No URL, key or text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from marketplace_exporter import catalogue as c
from marketplace_exporter import process_metrics
from marketplace_exporter.bridge.config import BridgeConfig
from marketplace_exporter.bridge.outbox import Outbox
from marketplace_exporter.bridge.stats import Histogram, Stats
from marketplace_exporter.build import build_info_values
from marketplace_exporter.metric_families import empty_family as _family


class BridgeCollector(Collector):
    def __init__(self, stats: Stats, outbox: Outbox, config: Callable[[], BridgeConfig]) -> None:
        self._stats = stats
        self._outbox = outbox
        self._config = config

    def describe(self) -> Iterable[Metric]:
        return [_family(spec) for spec in c.BRIDGE_METRICS]

    def collect(self) -> Iterator[Metric]:
        fams = {spec.name: _family(spec) for spec in c.BRIDGE_METRICS}
        config = self._config()
        channel_of = {name: r.channel for name, r in config.receivers.items()}
        delivered = dict(self._stats.delivered)
        for name, channel in channel_of.items():
            delivered.setdefault((name, channel), 0)
        for (receiver, channel), count in sorted(delivered.items()):
            fams[c.BRIDGE_NOTIFICATIONS.name].add_metric([receiver, channel], count)
        for (receiver, channel, reason), count in sorted(self._stats.failures.items()):
            fams[c.BRIDGE_FAILURES.name].add_metric([receiver, channel, reason], count)
        depth = self._outbox.depth
        for receiver in sorted(set(channel_of) | {r for r, n in depth.items() if n}):
            fams[c.BRIDGE_QUEUE_DEPTH.name].add_metric([receiver, channel_of.get(receiver, "none")],
                                                       max(0, depth.get(receiver, 0)))
        for (receiver, channel), hist in sorted(self._stats.latency.items()):
            fams[c.BRIDGE_DELIVERY_DURATION.name].add_metric([receiver, channel], _buckets(hist), hist.total)
        fams[c.BRIDGE_BUILD_INFO.name].add_metric(build_info_values(), 1.0)
        yield from fams.values()


def _buckets(hist: Histogram) -> list[tuple[str, float]]:
    return hist.cumulative()


def new_bridge_registry(stats: Stats, outbox: Outbox, config: Callable[[], BridgeConfig]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(BridgeCollector(stats, outbox, config))
    process_metrics.register(registry)
    return registry
