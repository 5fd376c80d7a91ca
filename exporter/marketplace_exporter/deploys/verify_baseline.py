"""The gate's baseline, taken when the ``started`` marker is recorded and stored with it.

Why at the marker: the baseline is, by definition, the 30 minutes before the marker, so it is
complete the moment the marker arrives. Kept in memory only, an exporter restart between the
marker and ``verify`` (a node drain, an OOM kill, the exporter's own deploy) left the gate with
nothing to compare: undecided. Stored in the same transaction as the marker, it survives
restarts, and with a shared PostgreSQL log another replica's gate reads it too.

What is stored is small: per check, the baseline's :class:`WindowStats` (samples, successes,
p50, p95 — all the rules need from the "before" side); per marketplace the deployed service
reported calls to, its call and error counts. A few hundred bytes per marker.

The store is read through :func:`check_histories` only (the Store's ``recent_results``).
"""

from __future__ import annotations

from typing import Any

from marketplace_exporter.deploys.storage import Baseline
from marketplace_exporter.deploys.verify import BASELINE_WINDOW, WindowStats
from marketplace_exporter.deploys.verify_production import TrafficCounts
from marketplace_exporter.store import RecentResult, Store
from marketplace_exporter.traffic.aggregate import TrafficAggregator


def check_histories(store: Store) -> dict[str, list[RecentResult]]:
    """Every configured check's recent results, oldest first (the store's in-memory history)."""
    return {check_id: store.recent_results(check_id) for check_id in store.check_ids()}


def take(store: Store | None, aggregator: TrafficAggregator | None, service: str, marker_at: float) -> Baseline:
    """The baseline of every check, and of ``service``'s production calls, before ``marker_at``."""
    checks: dict[str, Any] = {}
    if store is not None:
        for check_id, history in check_histories(store).items():
            before = [r for r in history if marker_at - BASELINE_WINDOW <= r.finished_at < marker_at]
            checks[check_id] = WindowStats.of(before).to_json()
    production: dict[str, Any] = {}
    if aggregator is not None:
        for marketplace in sorted(aggregator.totals(service)):
            window = aggregator.window(marker_at - BASELINE_WINDOW, marker_at, service=service,
                                       marketplace=marketplace)
            if window is not None and window.requests:
                production[marketplace] = {"requests": window.requests, "errors": window.errors}
    return {"window_seconds": BASELINE_WINDOW, "marker_at": marker_at, "checks": checks, "production": production}


def stored_checks(baseline: Baseline | None) -> dict[str, WindowStats]:
    """The per-check stats of a stored baseline (empty without one)."""
    if not baseline:
        return {}
    return {check_id: WindowStats(int(stats["samples"]), int(stats["successes"]), stats.get("p50_seconds"),
                                  stats.get("p95_seconds"))
            for check_id, stats in dict(baseline.get("checks", {})).items()}


def stored_production(baseline: Baseline | None) -> dict[str, TrafficCounts]:
    if not baseline:
        return {}
    return {marketplace: TrafficCounts(int(counts["requests"]), int(counts["errors"]))
            for marketplace, counts in dict(baseline.get("production", {})).items()}


__all__ = ["check_histories", "stored_checks", "stored_production", "take"]
