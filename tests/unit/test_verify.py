"""The gate's judgement (deploys/verify.py) and the store's bounded history it reads."""

from __future__ import annotations

from marketplace_exporter.adapters.base import NoParams
from marketplace_exporter.catalogue import Reason, Step, VerifyResult
from marketplace_exporter.config import CheckSpec
from marketplace_exporter.deploys.verify import (
    CheckEvaluation,
    CheckVerdict,
    Thresholds,
    WindowStats,
    decide,
    evaluate_check,
    freeze_verdict,
    percentile,
    split_history,
)
from marketplace_exporter.model import Operation, ProbeOutcome
from marketplace_exporter.store import ProbeRecord, RecentResult, Store, history_length


def ok(at: float, duration: float = 0.2) -> RecentResult:
    return RecentResult(at, True, duration, None, None)


def failed(at: float, reason: Reason = Reason.AUTH, code: str | None = "Unauthorized") -> RecentResult:
    return RecentResult(at, False, 0.05, reason, code)


GREEN = [ok(float(t)) for t in range(10)]


def judge(baseline: list[RecentResult], candidate: list[RecentResult], *, complete: bool = True,
          **thresholds: float) -> tuple[CheckVerdict, tuple[str, ...]]:
    row = evaluate_check("amazon_sp/us-main/x", "US", baseline, candidate, window_complete=complete,
                         thresholds=Thresholds(**thresholds))  # type: ignore[arg-type]
    return row.verdict, row.reasons


def test_same_behaviour_as_before_passes() -> None:
    assert judge(GREEN, [ok(100.0), ok(101.0), ok(102.0)]) == (CheckVerdict.PASS, ())


def test_green_check_failing_three_times_in_a_row_fails_before_the_window_ends() -> None:
    verdict, reasons = judge(GREEN, [ok(100.0), failed(101.0), failed(102.0), failed(103.0)], complete=False)
    assert verdict is CheckVerdict.FAIL
    assert "failed 3 times in a row" in reasons[0]


def test_two_failures_in_a_row_keep_collecting_while_the_window_is_open() -> None:
    assert judge(GREEN, [failed(100.0), failed(101.0)], complete=False)[0] is CheckVerdict.COLLECTING


def test_a_recovered_streak_is_not_consecutive() -> None:
    candidate = [failed(100.0), failed(101.0), ok(102.0), failed(103.0), ok(104.0)] + [ok(105.0 + i) for i in range(15)]
    assert judge(GREEN, candidate, complete=False)[0] is CheckVerdict.COLLECTING


def test_success_ratio_drop_beyond_tolerance_fails_at_the_end() -> None:
    candidate = [ok(100.0), failed(101.0), ok(102.0), failed(103.0), ok(104.0)]
    verdict, reasons = judge(GREEN, candidate)
    assert verdict is CheckVerdict.FAIL
    assert reasons == ("success ratio 100% → 60% (tolerance 10% points)",)


def test_one_failed_probe_never_fails_the_gate_alone() -> None:
    assert judge(GREEN, [ok(100.0), failed(101.0), ok(102.0)])[0] is CheckVerdict.PASS


def test_a_flaky_baseline_is_compared_by_ratio_not_by_streak() -> None:
    flaky = [ok(0.0), failed(1.0), ok(2.0), failed(3.0)]
    assert judge(flaky, [failed(100.0), failed(101.0), failed(102.0)], complete=False)[0] is CheckVerdict.COLLECTING
    assert judge(flaky, [ok(100.0), failed(101.0), ok(102.0), failed(103.0)])[0] is CheckVerdict.PASS
    assert judge(flaky, [failed(100.0), failed(101.0), failed(102.0)])[0] is CheckVerdict.FAIL


def test_a_check_red_before_and_after_passes_with_a_note() -> None:
    red = [failed(float(t)) for t in range(5)]
    assert judge(red, [failed(100.0), failed(101.0), failed(102.0)]) == (
        CheckVerdict.PASS, ("failing before (0%) and after (0%) the deploy: not this deploy's regression, "
                            "but look at it",))


def test_latency_regression_needs_both_the_factor_and_the_floor() -> None:
    slow = [ok(100.0 + i, duration=0.9) for i in range(5)]
    verdict, reasons = judge(GREEN, slow)
    assert verdict is CheckVerdict.FAIL
    assert reasons == ("latency p50 200 ms → 900 ms (more than 2× and +100 ms)",
                       "latency p95 200 ms → 900 ms (more than 2× and +100 ms)")
    fast_base = [ok(float(t), duration=0.01) for t in range(10)]
    noise = [ok(100.0 + i, duration=0.05) for i in range(5)]
    assert judge(fast_base, noise)[0] is CheckVerdict.PASS


def test_latency_is_not_compared_on_too_few_successes() -> None:
    assert judge(GREEN, [ok(100.0, 5.0), ok(101.0, 5.0)])[0] is CheckVerdict.PASS


def test_without_enough_baseline_the_check_is_shown_but_not_judged() -> None:
    verdict, reasons = judge([ok(0.0)], [failed(100.0)] * 5)
    assert verdict is CheckVerdict.NO_BASELINE
    assert "only 1 result(s) before the deploy" in reasons[0]


def test_too_few_results_after_the_window_is_no_data() -> None:
    assert judge(GREEN, [ok(100.0)])[0] is CheckVerdict.NO_DATA
    assert judge(GREEN, [])[0] is CheckVerdict.NO_DATA


def test_failures_are_summarised_with_reason_and_marketplace_code() -> None:
    candidate = [failed(100.0), failed(101.0), failed(102.0, Reason.THROTTLED, "QuotaExceeded"), failed(103.0)]
    row = evaluate_check("c", "US", GREEN, candidate, window_complete=False)
    assert row.failures == ("auth:Unauthorized ×3", "throttled:QuotaExceeded ×1")


def test_split_history_leaves_out_the_rollout_and_old_results() -> None:
    history = [ok(0.0), ok(1000.0), ok(2999.0), ok(3000.0), ok(3050.0), ok(3100.0)]
    baseline, candidate = split_history(history, marker_at=3000.0, since=3060.0, baseline_window=2000.0)
    assert baseline == [ok(1000.0), ok(2999.0)]
    assert candidate == [ok(3100.0)]
    # a gate started before the marker (clock skew, or verify run early) still starts at the marker
    assert split_history(history, marker_at=3000.0, since=10.0, baseline_window=2000.0)[1] == history[3:]


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([1.0], 0.95) == 1.0
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 0.5) == 10.0
    assert percentile(values, 0.95) == 19.0
    assert WindowStats.of([ok(0.0, 0.3), failed(1.0), ok(2.0, 0.1)]).to_json() == {
        "samples": 3, "successes": 2, "ratio": 2 / 3, "p50_seconds": 0.1, "p95_seconds": 0.3}


def row(verdict: CheckVerdict, name: str = "c") -> CheckEvaluation:
    return evaluate_check(name, "US", GREEN if verdict is not CheckVerdict.NO_BASELINE else [],
                          {CheckVerdict.PASS: [ok(100.0), ok(101.0)],
                           CheckVerdict.FAIL: [failed(100.0)] * 3,
                           CheckVerdict.NO_DATA: [],
                           CheckVerdict.NO_BASELINE: []}[verdict], window_complete=True)


def test_decision_fail_beats_everything() -> None:
    rows = [row(CheckVerdict.PASS, "a"), row(CheckVerdict.FAIL, "b"), row(CheckVerdict.NO_DATA, "c")]
    decision = decide(rows, window_complete=False)
    assert decision.result is VerifyResult.FAIL
    assert decision.reasons == ("1 check(s) regressed: b",)


def test_decision_waits_while_the_window_is_open() -> None:
    decision = decide([row(CheckVerdict.PASS)], window_complete=False)
    assert decision.result is None and decision.to_json()["final"] is False


def test_decision_passes_when_every_judged_check_passes_and_says_what_was_not_judged() -> None:
    decision = decide([row(CheckVerdict.PASS, "a"), row(CheckVerdict.NO_BASELINE, "b")],
                      window_complete=True)
    assert decision.result is VerifyResult.PASS
    assert decision.reasons == ("1 check(s) within tolerance", "1 check(s) without a baseline were not judged")


def test_decision_is_undecided_without_any_baseline_or_with_starved_checks() -> None:
    nothing = decide([row(CheckVerdict.NO_BASELINE)], window_complete=False)
    assert nothing.result is VerifyResult.UNDECIDED
    assert "no selected check has results from before the deploy" in nothing.reasons[0]
    starved = decide([row(CheckVerdict.PASS, "a"), row(CheckVerdict.NO_DATA, "b")],
                     window_complete=True)
    assert starved.result is VerifyResult.UNDECIDED
    assert starved.reasons == ("too few results after the deploy for: b",)


def test_freeze_block_fails_and_warn_only_warns() -> None:
    assert freeze_verdict(None, None) == (None, ())
    blocked, _ = freeze_verdict("双11大促", "block")
    assert blocked is not None and blocked.result is VerifyResult.FAIL
    assert "freeze window '双11大促' (policy: block)" in blocked.reasons[0]
    decision, warnings = freeze_verdict("Black Friday", "warn")
    assert decision is None
    assert warnings == ("the deploy was marked inside freeze window 'Black Friday' (policy: warn)",)


def check_spec(interval: float = 60) -> CheckSpec:
    return CheckSpec(
        marketplace="amazon_sp", site="US", account="us-main", name="x", adapter=None,  # type: ignore[arg-type]
        operation=Operation("x", "test"), interval=interval, timeout=10, jitter=0, quota_budget=0.5, tags=(),
        base_url=None, auth_url=None, sandbox=False, credentials=None, params=NoParams())


def test_store_keeps_a_bounded_history_of_every_recorded_probe() -> None:
    check = check_spec()
    store = Store()
    store.reconcile((check,))
    length = history_length(check.interval)
    for i in range(length + 10):
        outcome = (ProbeOutcome.ok(200) if i % 2 else
                   ProbeOutcome.failed(Reason.AUTH, "expired", code="NewAuthCode", http_status=403))
        # the metric label folds an unknown code into "other"; the gate shows the platform's own
        store.record(check, ProbeRecord(outcome=outcome, code_label=None if i % 2 else "other",
                                        started_at=i, finished_at=i + 0.5, duration=0.5, call_duration=0.4,
                                        steps=(Step.CALL,)), None)
    history = store.recent_results(check.id)
    assert len(history) == length == 120
    assert history[0] == RecentResult(10.5, False, 0.5, Reason.AUTH, "NewAuthCode")
    assert history[-1] == RecentResult(length + 9.5, True, 0.5, None, None)


def test_history_reaches_45_minutes_back_within_bounds() -> None:
    assert [history_length(interval) for interval in (0.3, 5, 15, 22.5, 60, 3600)] == [
        600, 540, 180, 120, 120, 120]


def test_a_reload_that_changes_the_interval_keeps_the_history() -> None:
    store, slow = Store(), check_spec(60)
    store.reconcile((slow,))
    for t in range(100):
        store.record(slow, ProbeRecord(outcome=ProbeOutcome.ok(200), code_label=None, started_at=t - 0.1,
                                       finished_at=float(t), duration=0.1, call_duration=0.1, steps=(Step.CALL,)), None)
    store.reconcile((check_spec(5),))
    assert store.history_capacity(slow.id) == 540
    assert store.recent_results(slow.id) == [RecentResult(float(t), True, 0.1, None, None) for t in range(100)]
