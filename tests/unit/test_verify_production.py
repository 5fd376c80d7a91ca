"""The gate's production evidence: judging a service's own calls before vs. after a deploy
(deploys/verify_production.py), combining it with the probes (verify.decide), reading it from a real
TrafficAggregator (verify_api.production_rows, TrafficStarts), and showing it (verify_cli.render)."""

from __future__ import annotations

from typing import Any

from marketplace_exporter.catalogue import VerifyResult
from marketplace_exporter.deploys.verify import (
    CheckEvaluation,
    CheckVerdict,
    Evidence,
    WindowStats,
    decide,
)
from marketplace_exporter.deploys.verify_api import TrafficStarts, production_rows
from marketplace_exporter.deploys.verify_cli import progress, render
from marketplace_exporter.deploys.verify_production import (
    ProductionEvaluation,
    TrafficCounts,
    evaluate_production,
    failure_summary,
    subtract,
)
from marketplace_exporter.traffic.aggregate import TrafficAggregator

AUTH = {("permission", "error_auth"): 1}


def judge(before: tuple[int, int], after: tuple[int, int], *, complete: bool = True,
          errors: dict[tuple[str, str], int] | None = None) -> ProductionEvaluation:
    return evaluate_production("shopee", TrafficCounts(*before), TrafficCounts(*after),
                               errors if errors is not None else {("permission", "error_auth"): after[1]},
                               window_complete=complete)


# --- judging one marketplace ------------------------------------------------------------------------

def test_most_calls_failing_after_the_deploy_fails_at_once() -> None:
    row = judge((400, 2), (30, 30), complete=False)
    assert row.verdict is CheckVerdict.FAIL
    assert row.reasons[0].startswith("production error ratio 0.5% → 100% (30 of 30 calls since the gate began")
    assert row.failures == ("permission:error_auth ×30",)


def test_a_moderate_rise_fails_only_when_the_window_ends() -> None:
    assert judge((1000, 10), (200, 24), complete=False).verdict is CheckVerdict.COLLECTING
    row = judge((1000, 10), (200, 24))
    assert row.verdict is CheckVerdict.FAIL
    assert "1.0% → 12%" in row.reasons[0] and "tolerance +5 points" in row.reasons[0]


def test_a_rise_within_the_noise_of_few_calls_passes() -> None:
    # 40 calls at a 30 % baseline: 15 errors (37.5 %) is +7.5 points, but ±22 points is chance
    assert judge((1000, 300), (40, 15)).verdict is CheckVerdict.PASS
    # the same ratio over 2000 calls is no longer chance
    assert judge((1000, 300), (2000, 750)).verdict is CheckVerdict.FAIL


def test_a_rise_below_the_tolerance_passes_however_many_calls() -> None:
    assert judge((10_000, 100), (10_000, 500)).verdict is CheckVerdict.PASS  # 1 % → 5 %


def test_a_few_errors_never_roll_a_deploy_back() -> None:
    assert judge((100, 0), (20, 4)).verdict is CheckVerdict.PASS
    assert judge((100, 0), (20, 5)).verdict is CheckVerdict.FAIL


def test_too_few_calls_after_the_deploy_are_not_judged() -> None:
    row = judge((500, 5), (7, 0))
    assert row.verdict is CheckVerdict.NO_DATA
    assert row.reasons == ("only 7 production call(s) since the gate began (need 20): not judged, the probes decide",)


def test_too_few_calls_before_the_deploy_are_not_judged_even_if_all_fail_after() -> None:
    row = judge((12, 0), (50, 50), complete=False)
    assert row.verdict is CheckVerdict.NO_BASELINE
    assert row.reasons == ("only 12 production call(s) in the 30 min before the deploy (need 20): not judged",)


def test_failures_are_listed_most_frequent_first_and_the_rest_summed() -> None:
    errors = {("throttled", "error_rate_limit"): 3, ("permission", "error_auth"): 9, ("timeout", ""): 3,
              ("server_error", "error_server"): 2, ("connect", ""): 1}
    assert failure_summary(errors) == ("permission:error_auth ×9", "throttled:error_rate_limit ×3", "timeout ×3",
                                       "… ×3")


def test_subtracting_counters_keeps_only_what_grew() -> None:
    assert subtract({("auth", "x"): 5, ("timeout", ""): 2, ("connect", ""): 1},
                    {("auth", "x"): 3, ("timeout", ""): 2, ("connect", ""): 4}) == {("auth", "x"): 2}


# --- combining with the probes ------------------------------------------------------------------------

def check(verdict: CheckVerdict, name: str = "shopee/sg-main/get_shop_info") -> CheckEvaluation:
    stats = WindowStats(10, 10, 0.1, 0.2)
    return CheckEvaluation(name, "SG", verdict, stats, stats, ("why",) if verdict is CheckVerdict.FAIL else ())


def production(verdict: CheckVerdict, marketplace: str = "shopee", calls: int = 40) -> ProductionEvaluation:
    return ProductionEvaluation(marketplace, verdict, TrafficCounts(300, 3), TrafficCounts(calls, 0),
                                ("production error ratio 1.0% → 90%",) if verdict is CheckVerdict.FAIL else ())


def test_production_alone_failing_fails_the_gate_and_says_so() -> None:
    decision = decide([check(CheckVerdict.COLLECTING)], window_complete=False,
                      production=[production(CheckVerdict.FAIL)])
    assert decision.result is VerifyResult.FAIL
    assert decision.reasons == ("shopee: production error ratio 1.0% → 90%",)
    assert decision.decided_by == (Evidence.PRODUCTION,)
    assert decision.to_json()["decided_by"] == ["production"]
    assert decision.to_json()["production"][0]["verdict"] == "fail"


def test_probes_failing_with_healthy_production_are_decided_by_the_probes() -> None:
    decision = decide([check(CheckVerdict.FAIL)], window_complete=True, production=[production(CheckVerdict.PASS)])
    assert decision.result is VerifyResult.FAIL
    assert decision.reasons == ("1 check(s) regressed: shopee/sg-main/get_shop_info",)
    assert decision.decided_by == (Evidence.PROBES,)


def test_both_healthy_pass_on_both() -> None:
    decision = decide([check(CheckVerdict.PASS)], window_complete=True, production=[production(CheckVerdict.PASS)])
    assert decision.result is VerifyResult.PASS
    assert decision.reasons == ("1 check(s) within tolerance", "production calls within tolerance: shopee (40 calls)")
    assert decision.decided_by == (Evidence.PROBES, Evidence.PRODUCTION)


def test_production_decides_when_no_check_has_a_baseline() -> None:
    rows = [check(CheckVerdict.NO_BASELINE)]
    # while the window is open it keeps collecting instead of giving up undecided
    assert decide(rows, window_complete=False, production=[production(CheckVerdict.COLLECTING)]).result is None
    decision = decide(rows, window_complete=True, production=[production(CheckVerdict.PASS)])
    assert decision.result is VerifyResult.PASS
    assert decision.reasons == ("1 check(s) without a baseline were not judged",
                                "production calls within tolerance: shopee (40 calls)")
    assert decision.decided_by == (Evidence.PRODUCTION,)


def test_quiet_production_never_makes_the_gate_undecided() -> None:
    decision = decide([check(CheckVerdict.PASS)], window_complete=True,
                      production=[production(CheckVerdict.NO_DATA, calls=3)])
    assert decision.result is VerifyResult.PASS
    assert decision.reasons == ("1 check(s) within tolerance", "too few production calls to judge: shopee (3 calls)")
    assert decision.decided_by == (Evidence.PROBES,)


def test_quiet_production_and_no_probe_baseline_is_undecided() -> None:
    decision = decide([check(CheckVerdict.NO_BASELINE)], window_complete=True,
                      production=[production(CheckVerdict.NO_DATA, calls=3)])
    assert decision.result is VerifyResult.UNDECIDED
    assert decision.decided_by == ()


def test_starved_probes_stay_undecided_even_with_healthy_production() -> None:
    decision = decide([check(CheckVerdict.NO_DATA)], window_complete=True, production=[production(CheckVerdict.PASS)])
    assert decision.result is VerifyResult.UNDECIDED
    assert decision.reasons[0] == "too few results after the deploy for: shopee/sg-main/get_shop_info"


def test_without_production_rows_the_decision_is_the_probes_alone() -> None:
    decision = decide([check(CheckVerdict.PASS)], window_complete=True)
    assert decision.reasons == ("1 check(s) within tolerance",)
    assert decision.to_json()["production"] == []


# --- reading a real aggregator ------------------------------------------------------------------------

class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


MARKER = 1_800_000_030.0  # 30 s into a minute


def record(marketplace: str = "shopee", *, reason: str = "", code: str = "", status: int = 200) -> dict[str, Any]:
    site = "SG" if marketplace == "shopee" else "US"
    return {"marketplace": marketplace, "site": site, "account": "main", "operation": "other", "status": status,
            "reason": reason, "code": code, "duration": 0.1}


def aggregator_with_baseline(clock: Clock, *services: str) -> TrafficAggregator:
    aggregator = TrafficAggregator(clock=clock)
    clock.now = MARKER - 600
    for service in services:
        aggregator.ingest(service, 0, [record(), record("amazon_sp")] * 20 + [record(reason="timeout", status=0)])
    return aggregator


def test_rows_count_the_calls_since_the_gate_began_with_their_reasons() -> None:
    clock = Clock(0.0)
    aggregator = aggregator_with_baseline(clock, "order-sync", "other-service")
    clock.now = MARKER + 100
    starts = TrafficStarts()
    key = ("order-sync", "production", clock.now)
    aggregator.ingest("order-sync", 0, [record()] * 5)  # before the gate: belongs to neither side
    started, warning = starts.start_of(aggregator, key, now=clock.now, first_round=True)
    assert warning is None
    clock.now += 30
    aggregator.ingest("order-sync", 0, [record()] * 10 + [record(reason="permission", code="error_auth")] * 25)
    aggregator.ingest("other-service", 0, [record(reason="server_error", code="error_server")] * 50)
    again, _ = starts.start_of(aggregator, key, now=clock.now, first_round=False)
    assert again is started  # the later round subtracts the same counts

    rows = {row.marketplace: row for row in production_rows(aggregator, "order-sync", MARKER, started, (), False)}
    assert set(rows) == {"shopee", "amazon_sp"}
    shopee = rows["shopee"]
    assert (shopee.baseline, shopee.candidate) == (TrafficCounts(21, 1), TrafficCounts(35, 25))
    assert shopee.verdict is CheckVerdict.FAIL
    assert shopee.failures == ("permission:error_auth ×25",)
    assert rows["amazon_sp"].candidate == TrafficCounts(0, 0)
    assert rows["amazon_sp"].verdict is CheckVerdict.COLLECTING


def test_the_markers_own_minute_is_not_baseline() -> None:
    clock = Clock(MARKER - 20)  # same minute as the marker, before it: could be the rollout already
    aggregator = TrafficAggregator(clock=clock)
    aggregator.ingest("order-sync", 0, [record()] * 50)
    assert production_rows(aggregator, "order-sync", MARKER, {}, (), False) == []


def test_a_service_that_reported_nothing_before_the_deploy_gets_no_rows() -> None:
    clock = Clock(0.0)
    aggregator = aggregator_with_baseline(clock, "other-service")
    clock.now = MARKER + 100
    aggregator.ingest("order-sync", 0, [record(reason="permission", code="error_auth")] * 50)
    assert production_rows(aggregator, "order-sync", MARKER, {}, (), True) == []


def test_a_gate_limited_to_sites_keeps_the_marketplaces_serving_them() -> None:
    clock = Clock(0.0)
    aggregator = aggregator_with_baseline(clock, "order-sync")
    clock.now = MARKER + 100
    assert [row.marketplace for row in production_rows(aggregator, "order-sync", MARKER, {}, ("us",), True)] == [
        "amazon_sp"]
    # (Amazon has a Singapore store too: MY is Shopee's alone)
    assert [row.marketplace for row in production_rows(aggregator, "order-sync", MARKER, {}, ("MY",), True)] == [
        "shopee"]


def test_a_round_the_exporter_has_no_start_for_counts_from_now_and_warns() -> None:
    aggregator = TrafficAggregator()
    starts = TrafficStarts()
    _, warning = starts.start_of(aggregator, ("order-sync", "production", 500.0), now=1000.0, first_round=False)
    assert warning is not None and "counted from this round on" in warning


def test_gate_starts_expire_and_are_capped() -> None:
    aggregator = TrafficAggregator()
    starts = TrafficStarts()
    for n in range(TrafficStarts.MAX_GATES + 10):
        starts.start_of(aggregator, ("svc", "prod", float(n)), now=float(n), first_round=True)
    assert len(starts._starts) == TrafficStarts.MAX_GATES
    assert ("svc", "prod", 0.0) not in starts._starts  # the oldest went first
    starts.start_of(aggregator, ("svc", "prod", 1e6), now=1e6, first_round=True)
    assert list(starts._starts) == [("svc", "prod", 1e6)]


# --- showing it -------------------------------------------------------------------------------------

def test_the_table_shows_production_rows_and_what_decided() -> None:
    row = judge((400, 2), (36, 36))
    decision = decide([check(CheckVerdict.COLLECTING)], window_complete=False, production=[row])
    answer = {"service": "order-sync", **decision.to_json()}
    lines = render(answer).splitlines()
    start = lines.index("production: order-sync's own marketplace calls (生产流量), all sites of each marketplace")
    assert lines[start + 1].split() == ["MARKETPLACE", "BEFORE", "AFTER", "VERDICT", "DETAILS"]
    assert lines[start + 2].startswith("shopee       0.5% errors of 400  100% errors of 36  FAIL     production error")
    assert lines[start + 2].endswith("; permission:error_auth ×36")
    assert lines[-2].startswith("RESULT: FAIL 失败（需回滚） — shopee: production error ratio 0.5% → 100%")
    assert lines[-1] == "DECIDED BY 判定依据: production traffic 生产流量"


def test_the_progress_line_counts_production_calls() -> None:
    answer = {"now": 130.0, "since": 100.0, "window_seconds": 300.0, "checks": [], "probes": {},
              "production": [production(CheckVerdict.COLLECTING, calls=40).to_json()]}
    assert progress(answer).endswith("; production: 40 calls since the gate began (0 failed)")
