"""The gate's production evidence: the deployed service's own marketplace calls, before vs. after.

Probes say whether a credential and a platform work; the seller's own ERP reporting its calls
(docs/traffic.md) says whether *the deployed code* now fails more often. When the service
reported traffic to a marketplace in the baseline window before the ``started`` marker, the gate
shows one row per marketplace and judges it (thresholds in :class:`ProductionThresholds`)::

    baseline   calls reported in the BASELINE_WINDOW before the marker (one-minute buckets; the
               marker's own minute is left out, it mixes in the rollout)
    candidate  calls reported since the gate began (exact: the counters at the gate's start are
               subtracted), with their reason:code

    not judged   fewer than `min_baseline_requests` calls before the deploy
    fail at once the error ratio rose by `fast_fail_rise` or more (a broken credential, a signing
                 bug: most calls fail) and the rise is significant (below)
    fail at end  the rise is significant: more than `ratio_rise` points, at least `min_errors`
                 errors among at least `min_requests` calls, and more than `noise_sigmas` standard
                 errors of the candidate's ratio (40 calls at a 30 % baseline wander by ±7
                 points on their own; a rollback for that would be a false alarm)
    no_data      fewer than `min_requests` calls when the window ends: shown, never fails and
                 never makes the gate undecided (a quiet hour is not a broken deploy); the probes
                 decide

Pure, like :mod:`.verify`: the API hands in the counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marketplace_exporter.deploys.verify import BASELINE_WINDOW, CheckVerdict

#: reason:code entries shown per row (most frequent first); the rest are summed as "…"
TOP_FAILURES = 3


@dataclass(frozen=True)
class ProductionThresholds:
    """Tolerances for production rows; the defaults suit an ERP making a few calls a minute or more
    per marketplace and a 5 minute window."""

    #: calls before the deploy needed to judge a marketplace at all
    min_baseline_requests: int = 20
    #: calls since the gate began needed to judge it at the end of the window
    min_requests: int = 20
    #: ... and errors among them: a couple of throttled calls never roll a deploy back
    min_errors: int = 5
    #: the error ratio may rise this much (absolute) above the baseline's
    ratio_rise: float = 0.05
    #: ... and a rise within this many standard errors of the candidate's ratio is noise
    noise_sigmas: float = 3.0
    #: a significant rise of this much or more fails the gate at once, without waiting for the end
    fast_fail_rise: float = 0.25


@dataclass(frozen=True)
class TrafficCounts:
    """Reported calls on one side of the comparison, and how many failed."""

    requests: int
    errors: int

    @property
    def error_ratio(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def to_json(self) -> dict[str, Any]:
        return {"requests": self.requests, "errors": self.errors, "error_ratio": self.error_ratio}


@dataclass(frozen=True)
class ProductionEvaluation:
    """One production row: the service's calls to one marketplace (all its sites and accounts)."""

    marketplace: str
    verdict: CheckVerdict
    baseline: TrafficCounts
    candidate: TrafficCounts
    reasons: tuple[str, ...] = ()
    #: errors since the gate began as ``reason:code ×n``, most frequent first
    failures: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"marketplace": self.marketplace, "verdict": self.verdict.value,
                "baseline": self.baseline.to_json(), "candidate": self.candidate.to_json(),
                "reasons": list(self.reasons), "failures": list(self.failures)}


def subtract(now: Mapping[tuple[str, str], int], start: Mapping[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    """Errors by (reason, code) counted since ``start`` was taken (counters only grow; a negative
    difference can only mean the counts were reset, and is dropped)."""
    return {why: count - start.get(why, 0) for why, count in now.items() if count > start.get(why, 0)}


def evaluate_production(marketplace: str, baseline: TrafficCounts, candidate: TrafficCounts,
                        errors_by_reason: Mapping[tuple[str, str], int], *, window_complete: bool,
                        thresholds: ProductionThresholds = ProductionThresholds()) -> ProductionEvaluation:
    """Judge one marketplace's production calls (module docstring for the rules)."""
    t = thresholds
    failures = failure_summary(errors_by_reason)

    def row(verdict: CheckVerdict, *reasons: str) -> ProductionEvaluation:
        return ProductionEvaluation(marketplace, verdict, baseline, candidate, tuple(reasons), failures)

    if baseline.requests < t.min_baseline_requests:
        return row(CheckVerdict.NO_BASELINE,
                   f"only {baseline.requests} production call(s) in the {BASELINE_WINDOW / 60:.0f} min "
                   f"before the deploy (need {t.min_baseline_requests}): not judged")
    rise = significant_rise(baseline, candidate, t)
    if rise is not None and rise >= t.fast_fail_rise:
        return row(CheckVerdict.FAIL, _rise_text(baseline, candidate, t))
    if not window_complete:
        return row(CheckVerdict.COLLECTING)
    if rise is not None:
        return row(CheckVerdict.FAIL, _rise_text(baseline, candidate, t))
    if candidate.requests < t.min_requests:
        return row(CheckVerdict.NO_DATA, f"only {candidate.requests} production call(s) since the gate began "
                                         f"(need {t.min_requests}): not judged, the probes decide")
    return row(CheckVerdict.PASS)


def significant_rise(baseline: TrafficCounts, candidate: TrafficCounts,
                     thresholds: ProductionThresholds) -> float | None:
    """The rise of the error ratio (absolute) when it counts as a regression, else None."""
    t = thresholds
    if candidate.requests < t.min_requests or candidate.errors < t.min_errors:
        return None
    assert baseline.error_ratio is not None and candidate.error_ratio is not None
    rise = candidate.error_ratio - baseline.error_ratio
    if rise <= t.ratio_rise or rise <= t.noise_sigmas * noise(baseline, candidate.requests):
        return None
    return rise


def noise(baseline: TrafficCounts, calls: int) -> float:
    """Standard error of the error ratio of ``calls`` calls if nothing changed since the baseline
    (binomial; the baseline ratio is smoothed so that a clean baseline still allows some noise)."""
    ratio = (baseline.errors + 1) / (baseline.requests + 2)
    return math.sqrt(ratio * (1 - ratio) / calls)


def failure_summary(errors_by_reason: Mapping[tuple[str, str], int]) -> tuple[str, ...]:
    """``reason:code ×n`` (``reason ×n`` without a code), most frequent first, at most TOP_FAILURES."""
    ranked = sorted(((f"{reason}:{code}" if code else reason, n) for (reason, code), n in errors_by_reason.items()
                     if n > 0), key=lambda item: (-item[1], item[0]))
    shown = [f"{what} ×{n}" for what, n in ranked[:TOP_FAILURES]]
    rest = sum(n for _, n in ranked[TOP_FAILURES:])
    return (*shown, f"… ×{rest}") if rest else tuple(shown)


def _rise_text(baseline: TrafficCounts, candidate: TrafficCounts, t: ProductionThresholds) -> str:
    assert baseline.error_ratio is not None and candidate.error_ratio is not None
    spread = t.noise_sigmas * noise(baseline, candidate.requests)
    return (f"production error ratio {_pct(baseline.error_ratio)} → {_pct(candidate.error_ratio)} "
            f"({candidate.errors} of {candidate.requests} calls since the gate began; tolerance "
            f"+{_points(t.ratio_rise)} points and noise ±{_points(spread)})")


def _pct(ratio: float) -> str:
    return f"{ratio * 100:.1f}%" if 0 < ratio < 0.1 else f"{ratio * 100:.0f}%"


def _points(ratio: float) -> str:
    return f"{ratio * 100:.0f}"


__all__ = ["ProductionEvaluation", "ProductionThresholds", "TOP_FAILURES", "TrafficCounts", "evaluate_production",
           "failure_summary", "noise", "significant_rise", "subtract"]
