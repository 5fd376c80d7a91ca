"""One way to make an empty metric family from a catalogue spec, for every collector.

The catalogue (:mod:`marketplace_exporter.catalogue`) defines each metric's name, type, help and
labels once; collectors fill families built here, so a spec's kind and labels cannot drift between
the probe, traffic, deploy, verify and bridge collectors.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from marketplace_exporter.catalogue import MetricSpec

_KINDS: dict[str, Any] = {"gauge": GaugeMetricFamily, "counter": CounterMetricFamily,
                          "histogram": HistogramMetricFamily}


def empty_family(spec: MetricSpec) -> Any:
    """An empty family of the spec's kind (typed Any: the three classes share ``add_metric`` by
    convention only, with different signatures)."""
    return _KINDS[spec.kind](spec.family_name, spec.help, labels=list(spec.labels))


def empty_families(specs: tuple[MetricSpec, ...]) -> dict[str, Any]:
    """``{spec.name: empty family}`` for a collector to fill and yield."""
    return {spec.name: empty_family(spec) for spec in specs}


__all__ = ["empty_families", "empty_family"]
