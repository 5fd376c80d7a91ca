"""``marketplace_probe_tag_info``: the configured tags of each check, for alert routing.

Alert rules cannot read the exporter's config, so the tags (``checks[].tags``) are exported as one
series per tag, value 1. The account-level alert rules join on it: an account with a check tagged
``critical`` (the mixin's ``critical_tag``) gets critical instead of warning alerts. Tags change
with the config (reload included). ``/metrics`` writes these series from text kept rendered per
check (exposition.py, re-rendered when the check's spec changes); this collector is their reference
version (tests compare the two) and ``/probe``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from marketplace_exporter import catalogue as c
from marketplace_exporter.store import Store


def tagged_checks(store: Store) -> Iterator[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(probe labels, tags) of every configured check: the one place that reads the store here."""
    for spec in store.specs():
        yield tuple(spec.labels), tuple(spec.tags)


class CheckTagsCollector(Collector):
    def __init__(self, store: Store) -> None:
        self._store = store

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    @staticmethod
    def _family() -> GaugeMetricFamily:
        spec = c.PROBE_TAG_INFO
        return GaugeMetricFamily(spec.family_name, spec.help, labels=list(spec.labels))

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for labels, tags in sorted(tagged_checks(self._store)):
            for tag in sorted(set(tags)):
                family.add_metric([*labels, tag], 1.0)
        yield family
