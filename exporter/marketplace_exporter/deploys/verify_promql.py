"""The post-deploy gate's rules as PromQL: the one source of the queries ``verify
--prometheus.url`` runs and of the Argo Rollouts / Flagger templates in ``docs/ci/``
(:mod:`.verify_recipes` generates those; a test keeps them fresh).

The rules and their thresholds are the embedded gate's (:class:`.verify.Thresholds`,
:class:`.verify_production.ProductionThresholds`); only where the numbers come from differs.
Each rule is a query returning the *offending* series (none: the rule holds):

    probe-fast-fail         green before (success ratio >= 95 % of >= 3 probes) and every probe
                            since the gate began failed, at least 3 of them: fail at once
    probe-success-ratio     success ratio fell more than 10 points with >= 2 failures: fail
    probe-latency-p50/p95   latency of the probes' API calls more than doubled and grew by more
                            than 100 ms (>= 3 calls on each side): fail
    production-fast-fail    the service's own error ratio rose >= 25 points, significantly: fail at once
    production-error-ratio  ... rose significantly (> 5 points, >= 5 errors among >= 20 calls,
                            > 3 standard errors): fail
    probes-judged           checks with a baseline (>= 3 probes before the marker)
    production-judged       marketplaces with >= 20 of the service's calls before the marker
    probes-starved          judged checks with < 2 probes since the gate began: undecided

Series: ``marketplace_probes_total`` / ``marketplace_probe_failures_total`` (per check),
``marketplace_request_duration_seconds`` (the histogram of the probes' API calls: it counts every
call that got an answer, where the embedded gate uses successful probes' wall time) and
``marketplace_client_requests_total`` / ``marketplace_client_errors_total`` of the deployed
service. Every query sums away ``instance``/``job`` (all shards and replicas of the exporter) and
uses ``increase()``, which handles counter resets (exporter restarts). ``increase()``
extrapolates, so count thresholds allow half a probe (``>= 3`` is written ``> 2.5``).

A side of the comparison is a :class:`Window`:

- ``AtWindow`` — ``increase(x[1800s] @ <marker>)``: ``verify`` knows the marker's timestamp;
- ``MarkerWindow`` — the 30 minutes before the marker Prometheus itself holds
  (``marketplace_deploy_timestamp_seconds{status="started"}`` read ``@ end()``), as one-minute
  increases in a subquery: the templates cannot take a timestamp from the pipeline;
- ``TrailingWindow`` — ``increase(x[5m])``: the templates' candidate, the last analysis window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from marketplace_exporter import catalogue as c
from marketplace_exporter.deploys.verify import BASELINE_WINDOW, Thresholds
from marketplace_exporter.deploys.verify_production import ProductionThresholds

PROBE_KEY = "marketplace, site, account, check"
LATENCY_KEY = "marketplace, site, check"
PRODUCTION_KEY = "marketplace"
#: what a non-empty answer means: fail now; fail when the window ends; undecided when it ends;
#: and the coverage queries (which series are judged at all)
RuleKind = Literal["fail_fast", "fail", "starved", "judged"]


class Window(Protocol):
    def increase(self, series: str) -> str:
        """A PromQL expression: the increase of ``series`` (``metric{matchers}``) over this side."""
        ...


@dataclass(frozen=True)
class AtWindow:
    """``seconds`` ending at unix time ``at``."""

    seconds: float
    at: float

    def increase(self, series: str) -> str:
        return f"increase({series}[{max(1, round(self.seconds))}s] @ {self.at:.3f})"


@dataclass(frozen=True)
class TrailingWindow:
    """The last ``range`` (a PromQL duration, or a template variable) before the evaluation time."""

    range: str

    def increase(self, series: str) -> str:
        return f"increase({series}[{self.range}])"


@dataclass(frozen=True)
class MarkerWindow:
    """The ``seconds`` before the newest ``started`` marker of ``service``/``environment`` that
    Prometheus holds, as one-minute increases summed over a subquery reaching back ``reach``."""

    service: str
    environment: str
    seconds: float = BASELINE_WINDOW
    reach: str = "2h"

    def increase(self, series: str) -> str:
        marker = (f'scalar(max({c.DEPLOY_TIMESTAMP.name}{{service="{self.service}", '
                  f'environment="{self.environment}", status="started"}} @ end()))')
        return (f"sum_over_time((increase({series}[1m]) and on () (vector(time()) <= {marker}) "
                f"and on () (vector(time()) > {marker} - {self.seconds:g}))[{self.reach}:1m])")


@dataclass(frozen=True)
class Rule:
    name: str
    kind: RuleKind
    #: one line: what a series in the answer means
    help: str
    expr: str


@dataclass(frozen=True)
class Selection:
    """Which series the gate looks at: probe series matching ``probes`` (PromQL label matchers
    such as ``site=~"US|DE"``, or empty for all) and the production calls of ``service``."""

    service: str
    probes: str = ""


def _sel(metric: str, matchers: str) -> str:
    """``metric{matchers}``; the template variables bring their own spaces (``{ {{args.x}} }``) so
    Argo's and Flagger's ``{{ }}`` never touch PromQL's braces."""
    return f"{metric}{{{matchers}}}" if matchers else metric


DEFAULT_THRESHOLDS = Thresholds()
DEFAULT_PRODUCTION_THRESHOLDS = ProductionThresholds()


def rules(selection: Selection, baseline: Window, candidate: Window, *, t: Thresholds = DEFAULT_THRESHOLDS,
          pt: ProductionThresholds = DEFAULT_PRODUCTION_THRESHOLDS) -> list[Rule]:
    """Every rule of the gate for ``selection``, comparing ``candidate`` with ``baseline``."""

    def probes(window: Window, metric: str) -> str:
        return f"sum by ({PROBE_KEY}) ({window.increase(_sel(metric, selection.probes))})"

    p_b, p_c = probes(baseline, c.PROBES.name), probes(candidate, c.PROBES.name)
    # failures are pre-created at 0 per reason; "or ... * 0" keeps a check that never failed anyway
    f_b = f"({probes(baseline, c.PROBE_FAILURES.name)} or {p_b} * 0)"
    f_c = f"({probes(candidate, c.PROBE_FAILURES.name)} or {p_c} * 0)"
    ratio_b, ratio_c = f"(({p_b} - {f_b}) / {p_b})", f"(({p_c} - {f_c}) / {p_c})"
    judged = f"({p_b} > {t.min_baseline - 0.5})"
    green = f"({ratio_b} >= {t.green_ratio:g})"
    found: list[Rule] = [
        Rule("probe-fast-fail", "fail_fast",
             f"green before the deploy (>= {t.green_ratio:.0%}) and all of >= {t.consecutive_failures} probes "
             "since the gate began failed",
             f"({f_c} > {t.consecutive_failures - 0.5}) and ({p_c} - {f_c} < 0.5) and {judged} and {green}"),
        Rule("probe-success-ratio", "fail",
             f"success ratio fell more than {t.ratio_drop:.0%} points with >= {t.min_failures} failures",
             f"({ratio_b} - {ratio_c} > {t.ratio_drop:g}) and ({f_c} > {t.min_failures - 0.5}) and {judged}"),
    ]
    bucket = c.REQUEST_DURATION.name + "_bucket"
    count = c.REQUEST_DURATION.name + "_count"

    def quantile(q: float, window: Window) -> str:
        return (f"histogram_quantile({q:g}, sum by (le, {LATENCY_KEY}) "
                f"({window.increase(_sel(bucket, selection.probes))}))")

    def calls(window: Window) -> str:
        return f"sum by ({LATENCY_KEY}) ({window.increase(_sel(count, selection.probes))})"

    enough = (f"(({calls(baseline)} > {t.min_latency_samples - 0.5}) "
              f"and ({calls(candidate)} > {t.min_latency_samples - 0.5}))")
    for name, q in (("p50", 0.5), ("p95", 0.95)):
        before, after = quantile(q, baseline), quantile(q, candidate)
        found.append(Rule(
            f"probe-latency-{name}", "fail",
            f"{name} of the probes' API calls more than {t.latency_factor:g}x and +{t.latency_floor * 1000:.0f} ms",
            f"({after} > {t.latency_factor:g} * {before}) and ({after} - {before} > {t.latency_floor:g}) "
            f"and on ({LATENCY_KEY}) {enough}"))

    service = f'service="{selection.service}"'

    def traffic(window: Window, metric: str) -> str:
        return f"sum by ({PRODUCTION_KEY}) ({window.increase(_sel(metric, service))})"

    r_b, r_c = traffic(baseline, c.CLIENT_REQUESTS.name), traffic(candidate, c.CLIENT_REQUESTS.name)
    # client_errors_total appears with the first error: a clean baseline is "no series", i.e. 0
    e_b = f"({traffic(baseline, c.CLIENT_ERRORS.name)} or {r_b} * 0)"
    e_c = f"({traffic(candidate, c.CLIENT_ERRORS.name)} or {r_c} * 0)"
    rise = f"({e_c} / {r_c} - {e_b} / {r_b})"
    smoothed = f"(({e_b} + 1) / ({r_b} + 2))"
    significant = (f"({rise} > {pt.ratio_rise:g}) and ({r_c} > {pt.min_requests - 0.5}) "
                   f"and ({e_c} > {pt.min_errors - 0.5}) and ({r_b} > {pt.min_baseline_requests - 0.5}) "
                   f"and ({rise} > {pt.noise_sigmas:g} * sqrt({smoothed} * (1 - {smoothed}) / {r_c}))")
    found += [
        Rule("production-fast-fail", "fail_fast",
             f"the service's error ratio rose >= {pt.fast_fail_rise:.0%} points, beyond noise",
             f"({rise} >= {pt.fast_fail_rise:g}) and {significant}"),
        Rule("production-error-ratio", "fail",
             f"the service's error ratio rose > {pt.ratio_rise:.0%} points, >= {pt.min_errors} errors of "
             f">= {pt.min_requests} calls, beyond {pt.noise_sigmas:g} standard errors",
             significant),
        Rule("probes-judged", "judged", f"checks with >= {t.min_baseline} probes before the deploy", judged),
        Rule("production-judged", "judged",
             f"marketplaces with >= {pt.min_baseline_requests} of the service's calls before the deploy",
             f"{r_b} > {pt.min_baseline_requests - 0.5}"),
        Rule("probes-starved", "starved", f"judged checks with < {t.min_candidate} probes since the gate began",
             f"{judged} unless ({p_c} > {t.min_candidate - 0.5})"),
    ]
    return found


def count_of(rule: Rule) -> str:
    """The rule as one number (how many series it returned; 0 when none), as Argo Rollouts and
    Flagger want a metric."""
    return f"count({rule.expr}) or vector(0)"


__all__ = ["AtWindow", "MarkerWindow", "Rule", "Selection", "TrailingWindow", "Window", "count_of", "rules"]
