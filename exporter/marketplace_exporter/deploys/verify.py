"""The post-deploy gate's judgement: baseline results vs. results after the deploy → a verdict.

Pure: no I/O, no clock. ``verify_api.py`` feeds it the store's recent results; the CLI only shows
what it returns. The rules, per check (thresholds in :class:`Thresholds`)::

    baseline = results in the BASELINE_WINDOW before the deploy's ``started`` marker
    candidate = results since the gate began (after the deploy step, fresh probes included)

    fail at once   the check was green in the baseline (ratio >= green_ratio) and its last
                   `consecutive_failures` results all failed: certain, no need to wait
    fail at end    success ratio fell more than `ratio_drop` below the baseline (and at least
                   `min_failures` probes failed: one blip never rolls a deploy back), or
                   p50/p95 of successful probes grew more than `latency_factor` times and by more
                   than `latency_floor` seconds (a fast check going 20 → 50 ms is noise)
    not judged     fewer than `min_baseline` baseline results (a new check) — shown, never fails
    undecided      the window ended with fewer than `min_candidate` results (quota-starved)

The overall decision: fail if any check fails; undecided if any judged check lacks results or no
check has a baseline; pass otherwise. While the window is open and nothing failed for certain, the
decision is ``None`` (keep collecting).

When the deployed service reports its own marketplace calls (docs/traffic.md), production rows
(:mod:`.verify_production`) join the decision: a failing production row fails the gate like a
failing check; a judged one lets the gate decide even when no check has a baseline; one with too
few calls never makes the gate undecided (the probes decide). ``Decision.decided_by`` names the
evidence the result rests on. Without production rows everything is exactly as above.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from marketplace_exporter.catalogue import VerifyResult
from marketplace_exporter.store import RecentResult

if TYPE_CHECKING:  # verify_production imports this module
    from marketplace_exporter.deploys.verify_production import ProductionEvaluation

#: how far before the ``started`` marker baseline results are taken from
BASELINE_WINDOW = 30 * 60.0


class CheckVerdict(StrEnum):
    """One check's state in the gate (the table's ``verdict`` column)."""

    PASS = "pass"
    FAIL = "fail"
    #: the window is still open and nothing failed for certain
    COLLECTING = "collecting"
    #: too few results before the deploy to compare with: shown, not judged
    NO_BASELINE = "no_baseline"
    #: the window ended with too few results after the deploy (quota budget, hanging probes)
    NO_DATA = "no_data"


@dataclass(frozen=True)
class Thresholds:
    """Tolerances of the gate; the defaults suit probes every 5-60 s and a 5 min window."""

    #: the candidate success ratio may fall this much (absolute) below the baseline's
    ratio_drop: float = 0.1
    #: ... but only this many failed probes or more make a ratio drop count
    min_failures: int = 2
    #: a check at or above this baseline ratio counts as green
    green_ratio: float = 0.95
    #: a green check failing this many times in a row fails the gate immediately
    consecutive_failures: int = 3
    #: p50/p95 of successful probes may grow by this factor ...
    latency_factor: float = 2.0
    #: ... and only increases larger than this many seconds count
    latency_floor: float = 0.1
    #: successful probes needed on both sides before latency is compared
    min_latency_samples: int = 3
    #: baseline results needed to judge a check at all
    min_baseline: int = 3
    #: candidate results needed at the end of the window to call a check passed
    min_candidate: int = 2


@dataclass(frozen=True)
class WindowStats:
    """Success ratio and latency percentiles of one side of the comparison."""

    samples: int
    successes: int
    p50: float | None
    p95: float | None

    @property
    def ratio(self) -> float | None:
        return self.successes / self.samples if self.samples else None

    @classmethod
    def of(cls, results: Sequence[RecentResult]) -> WindowStats:
        durations = sorted(r.duration for r in results if r.success)
        return cls(len(results), len(durations), percentile(durations, 0.5), percentile(durations, 0.95))

    def to_json(self) -> dict[str, Any]:
        return {"samples": self.samples, "successes": self.successes, "ratio": self.ratio,
                "p50_seconds": self.p50, "p95_seconds": self.p95}


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class CheckEvaluation:
    """One row of the gate's table."""

    check: str
    site: str
    verdict: CheckVerdict
    baseline: WindowStats
    candidate: WindowStats
    #: why it failed (or why it was not judged), for humans
    reasons: tuple[str, ...] = ()
    #: failures after the deploy as ``reason:code ×n``, most frequent first
    failures: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "site": self.site, "verdict": self.verdict.value,
                "baseline": self.baseline.to_json(), "candidate": self.candidate.to_json(),
                "reasons": list(self.reasons), "failures": list(self.failures)}


def split_history(history: Iterable[RecentResult], *, marker_at: float, since: float,
                  baseline_window: float = BASELINE_WINDOW) -> tuple[list[RecentResult], list[RecentResult]]:
    """(baseline, candidate): results in ``baseline_window`` before the marker, and results since
    ``since`` (the gate's start, never before the marker). Results between the marker and the
    gate's start belong to neither: they were taken while the rollout was under way."""
    start = max(since, marker_at)
    baseline = [r for r in history if marker_at - baseline_window <= r.finished_at < marker_at]
    candidate = [r for r in history if r.finished_at >= start]
    return baseline, candidate


def evaluate_check(check: str, site: str, baseline: Sequence[RecentResult] | WindowStats,
                   candidate: Sequence[RecentResult], *, window_complete: bool,
                   thresholds: Thresholds = Thresholds()) -> CheckEvaluation:
    """Judge one check (see the module docstring for the rules). ``baseline`` may be the stats
    stored with the marker (:mod:`.verify_baseline`) instead of the results themselves."""
    t = thresholds
    before = baseline if isinstance(baseline, WindowStats) else WindowStats.of(baseline)
    after = WindowStats.of(candidate)
    failures = _failure_summary(candidate)

    def row(verdict: CheckVerdict, *reasons: str) -> CheckEvaluation:
        return CheckEvaluation(check, site, verdict, before, after, tuple(reasons), failures)

    if before.samples < t.min_baseline:
        return row(CheckVerdict.NO_BASELINE,
                   f"only {before.samples} result(s) before the deploy (need {t.min_baseline}): not judged")
    assert before.ratio is not None
    streak = _trailing_failures(candidate)
    if before.ratio >= t.green_ratio and streak >= t.consecutive_failures:
        return row(CheckVerdict.FAIL, f"green before the deploy ({_pct(before.ratio)}), "
                                      f"now failed {streak} times in a row")
    if not window_complete:
        return row(CheckVerdict.COLLECTING)
    reasons: list[str] = []
    if after.ratio is not None:
        failed = after.samples - after.successes
        if before.ratio - after.ratio > t.ratio_drop and failed >= t.min_failures:
            reasons.append(f"success ratio {_pct(before.ratio)} → {_pct(after.ratio)} "
                           f"(tolerance {_pct(t.ratio_drop)} points)")
    if before.successes >= t.min_latency_samples and after.successes >= t.min_latency_samples:
        for name, old, new in (("p50", before.p50, after.p50), ("p95", before.p95, after.p95)):
            assert old is not None and new is not None
            if new > old * t.latency_factor and new - old > t.latency_floor:
                reasons.append(f"latency {name} {_ms(old)} → {_ms(new)} "
                               f"(more than {t.latency_factor:g}× and +{_ms(t.latency_floor)})")
    if reasons:
        return row(CheckVerdict.FAIL, *reasons)
    if after.samples < t.min_candidate:
        return row(CheckVerdict.NO_DATA, f"only {after.samples} result(s) after the deploy "
                                         f"(need {t.min_candidate}): quota budget or hanging probes?")
    if before.ratio < t.green_ratio and after.ratio is not None and after.ratio < t.green_ratio:
        return row(CheckVerdict.PASS, f"failing before ({_pct(before.ratio)}) and after ({_pct(after.ratio)}) "
                                      "the deploy: not this deploy's regression, but look at it")
    return row(CheckVerdict.PASS)


class Evidence(StrEnum):
    """What a decision rests on (``decided_by``)."""

    #: the exporter's own probes of the selected checks
    PROBES = "probes"
    #: the deployed service's reported marketplace calls
    PRODUCTION = "production"


@dataclass(frozen=True)
class Decision:
    """The gate's answer for one round: ``result`` None means "keep collecting"."""

    result: VerifyResult | None
    checks: tuple[CheckEvaluation, ...]
    #: why the result is what it is (one line each)
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    #: one row per marketplace the service reported calls to before the deploy
    production: tuple[ProductionEvaluation, ...] = ()
    #: the evidence that decided a pass or fail (empty while collecting and when undecided)
    decided_by: tuple[Evidence, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"result": self.result.value if self.result is not None else None,
                "final": self.result is not None,
                "reasons": list(self.reasons), "warnings": list(self.warnings),
                "checks": [check.to_json() for check in self.checks],
                "production": [row.to_json() for row in self.production],
                "decided_by": [evidence.value for evidence in self.decided_by]}


def decide(evaluations: Sequence[CheckEvaluation], *, window_complete: bool,
           warnings: Sequence[str] = (), production: Sequence[ProductionEvaluation] = ()) -> Decision:
    """Combine the per-check rows (and production rows) into the gate's decision (module docstring)."""
    rows = tuple(evaluations)
    traffic = tuple(production)
    extra = tuple(warnings)

    def answer(result: VerifyResult | None, reasons: Sequence[str], *by: Evidence) -> Decision:
        return Decision(result, rows, tuple(reasons), extra, traffic, by)

    failed = [e.check for e in rows if e.verdict is CheckVerdict.FAIL]
    failed_traffic = [p for p in traffic if p.verdict is CheckVerdict.FAIL]
    if failed or failed_traffic:
        reasons = [f"{len(failed)} check(s) regressed: {', '.join(failed)}"] if failed else []
        reasons += [f"{p.marketplace}: {p.reasons[0]}" for p in failed_traffic]
        return answer(VerifyResult.FAIL, reasons, *((Evidence.PROBES,) if failed else ()),
                      *((Evidence.PRODUCTION,) if failed_traffic else ()))
    judged = [e for e in rows if e.verdict is not CheckVerdict.NO_BASELINE]
    judged_traffic = [p for p in traffic if p.verdict is not CheckVerdict.NO_BASELINE]
    if not judged and not judged_traffic:
        return answer(VerifyResult.UNDECIDED, ["no selected check has results from before the deploy to compare with"]
                      + (["too few production calls before the deploy to compare with"] if traffic else []))
    if not window_complete:
        return answer(None, ())
    passed_traffic = [p for p in traffic if p.verdict is CheckVerdict.PASS]
    quiet_traffic = [f"{p.marketplace} ({p.candidate.requests} calls)" for p in traffic
                     if p.verdict is CheckVerdict.NO_DATA]
    traffic_notes = ([f"production calls within tolerance: {_calls(passed_traffic)}"] if passed_traffic else []) + (
        [f"too few production calls to judge: {', '.join(quiet_traffic)}"] if quiet_traffic else [])
    starved = [e.check for e in rows if e.verdict is CheckVerdict.NO_DATA]
    if starved:
        return answer(VerifyResult.UNDECIDED, [f"too few results after the deploy for: {', '.join(starved)}",
                                               *traffic_notes])
    if not judged and not passed_traffic:
        return answer(VerifyResult.UNDECIDED, ["no selected check has results from before the deploy to compare "
                                               "with", *traffic_notes])
    unjudged = len(rows) - len(judged)
    notes = [f"{unjudged} check(s) without a baseline were not judged"] if unjudged else []
    probes = [f"{len(judged)} check(s) within tolerance"] if judged else []
    return answer(VerifyResult.PASS, [*probes, *notes, *traffic_notes],
                  *((Evidence.PROBES,) if judged else ()), *((Evidence.PRODUCTION,) if passed_traffic else ()))


def _calls(rows: Sequence[ProductionEvaluation]) -> str:
    return ", ".join(f"{p.marketplace} ({p.candidate.requests} calls)" for p in rows)


def freeze_verdict(freeze: str | None, policy: str | None) -> tuple[Decision | None, tuple[str, ...]]:
    """A deploy marked inside a freeze window: ``block`` fails the gate outright (no probe is
    spent); ``warn`` lets it run and returns the warning to print."""
    if freeze is None:
        return None, ()
    if policy == "block":
        message = (f"the deploy was marked inside freeze window {freeze!r} (policy: block): "
                   "deploys are not allowed now — roll back, or change the freeze window in the config")
        return Decision(VerifyResult.FAIL, (), (message,)), ()
    return None, (f"the deploy was marked inside freeze window {freeze!r} (policy: warn)",)


def _trailing_failures(results: Sequence[RecentResult]) -> int:
    count = 0
    for result in reversed(results):
        if result.success:
            break
        count += 1
    return count


def _failure_summary(results: Sequence[RecentResult]) -> tuple[str, ...]:
    counts = Counter(f"{r.reason or 'unknown'}:{r.code}" if r.code else str(r.reason or "unknown")
                     for r in results if not r.success)
    return tuple(f"{what} ×{n}" for what, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _pct(ratio: float) -> str:
    return f"{ratio * 100:.0f}%"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


__all__ = ["BASELINE_WINDOW", "CheckEvaluation", "CheckVerdict", "Decision", "Evidence", "Thresholds", "WindowStats",
           "decide", "evaluate_check", "freeze_verdict", "percentile", "split_history"]
