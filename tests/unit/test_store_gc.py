"""What a probe leaves behind in the store is invisible to the garbage collector.

At 50,000 checks every object a result keeps alive until the next probe sits in the collector's
oldest generation, and a full collection walks them all with the event loop stalled (186 ms was
measured with ~6 per check). The store keeps last results, counters and request-duration
histograms as numbers, strings and bytes; readers still get the same values back.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from marketplace_exporter.adapters.base import NoParams
from marketplace_exporter.catalogue import RateLimitSource, Reason, SkipReason, Step
from marketplace_exporter.config import CheckSpec
from marketplace_exporter.model import Operation, ProbeOutcome, RateLimitObservation
from marketplace_exporter.store import ProbeRecord, Store

CHECKS = 200


def spec(i: int) -> CheckSpec:
    return CheckSpec(marketplace="shopee", site="SG", account=f"shop-{i}", name="shop_info", adapter=None,  # type: ignore[arg-type]
                     operation=Operation("shop_info", "t"), interval=60, timeout=10, jitter=0, quota_budget=0.5,
                     tags=(), base_url=None, auth_url=None, sandbox=False, credentials=None, params=NoParams())


def outcome(i: int) -> ProbeOutcome:
    if i % 3 == 0:
        return ProbeOutcome.failed(Reason.THROTTLED, "slow down", code="error_rate_limit", http_status=429,
                                   retry_after_seconds=2.0)
    return ProbeOutcome.ok(200, values=(("items", float(i)),),
                           rate_limit=RateLimitObservation(0.25, RateLimitSource.OBSERVED, remaining=5, reset_at=9e9))


@pytest.fixture
def gc_quiet() -> Iterator[None]:
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def tracked() -> int:
    gc.collect()  # untracks tuples and dicts that hold no containers
    return len(gc.get_objects())


def test_results_add_no_objects_the_collector_tracks(gc_quiet: None) -> None:
    specs = [spec(i) for i in range(CHECKS)]
    store = Store()
    store.reconcile(specs)
    for round_ in range(2):  # the first round creates what a check keeps; the second must add nothing
        for i, check in enumerate(specs):
            store.record(check, ProbeRecord(outcome(i + round_), "error_rate_limit" if (i + round_) % 3 == 0 else None,
                                            1000.0 + round_, 1000.2 + round_, 0.2, 0.19, (Step.TOKEN, Step.CALL)), 0.5)
            store.record_skip(check, SkipReason.QUOTA_BUDGET, 1001.0 + round_)
        if round_ == 0:
            before = tracked()
    assert tracked() - before < 10  # not one per check


def test_readers_get_the_last_result_and_counts_back() -> None:
    check = spec(3)
    store = Store()
    store.reconcile([check])
    first = ProbeRecord(outcome(0), "error_rate_limit", 10.0, 10.5, 0.5, 0.4, (Step.TOKEN, Step.CALL))
    store.record(check, first, None)
    store.record(check, ProbeRecord(outcome(1), None, 70.0, 70.25, 0.25, 0.2, (Step.CALL,)), 0.75)
    store.record_skip(check, SkipReason.QUOTA_BUDGET, 80.0)
    status = store.status(check.id)
    assert status is not None and status.last is not None
    assert status.last.outcome == ProbeOutcome.ok(200)  # headroom and values are kept apart
    assert (status.last.started_at, status.last.finished_at, status.last.duration, status.last.call_duration,
            status.last.steps) == (70.0, 70.25, 0.25, 0.2, (Step.CALL,))
    assert dict(status.failures) == {Reason.THROTTLED: 1} and status.failures[Reason.AUTH] == 0
    assert dict(status.requests) == {Step.TOKEN: 1, Step.CALL: 2}
    assert dict(status.skipped) == {SkipReason.QUOTA_BUDGET: 1}
    assert dict(status.api_errors) == {"error_rate_limit": 1}
    assert status.observed_rate_limit == RateLimitObservation(0.25, RateLimitSource.OBSERVED, remaining=5, reset_at=9e9)
    assert (status.modelled_ratio, dict(status.values), status.last_success_at) == (0.75, {"items": 1.0}, 70.25)
    last = store.last_outcome(check.id)
    assert last is not None and last.success
    ((key, histogram),) = store.request_durations()
    assert key == ("shopee", "SG", "shop_info") and histogram.count == 2 and histogram.total == pytest.approx(0.6)
    assert dict(histogram.cumulative())["0.25"] == 1 and dict(histogram.cumulative())["0.5"] == 2


def referents_a_full_collection_walks() -> int:
    gc.collect()
    return sum(len(gc.get_referents(o)) for o in gc.get_objects())


def test_checks_changing_health_add_nothing_a_full_collection_walks() -> None:
    """The status index keeps every check id sorted by health. Held as strings in lists, the
    49,000 ids of one healthy group cost each full collection ~18 ms at 50,000 checks (one visit
    per id, bench/scale.py): the lists were made after the config load's freeze, as checks
    turned from pending to ok. Held as ordinals in arrays they cost the collector nothing."""
    specs = [spec(i) for i in range(2000)]
    store = Store()
    store.reconcile(specs)
    gc.collect()
    gc.freeze()  # what the engine does after a load (engine._freeze_heap)
    try:
        before = referents_a_full_collection_walks()
        for i, check in enumerate(specs):  # pending -> ok or failing: every check changes group
            store.record(check, ProbeRecord(outcome(i), None, 1000.0, 1000.2, 0.2, None, (Step.CALL,)), None)
        assert referents_a_full_collection_walks() - before < 100  # not one per check
    finally:
        gc.unfreeze()
