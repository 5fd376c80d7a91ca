"""``POST /api/v1/verify``: one round of the post-deploy gate, run inside the exporter.

One round = probe the selected checks once now (within their quota budgets: a spent budget is
reported, never overridden), then compare the store's recent results with the baseline before the
deploy's ``started`` marker (:mod:`.verify`) and answer at once. The CLI calls it again every few
seconds until the answer is final, so no request is held open for minutes (a CI runner's proxy or a
load balancer would cut it) and a lost connection costs one round, not the whole gate.

Request (JSON)::

    {"service": "order-sync", "environment": "production",
     "site": "US",            # optional: only checks of these sites ("US" or "US,DE")
     "checks": "critical",    # optional: only checks with this tag
     "window_seconds": 300,   # how long to collect results after the deploy
     "since": 1764180000.0,   # optional: the gate's start as the first answer returned it
     "probe": true}           # optional: false = judge the scheduled results only

Answer: ``{"result": "pass"|"fail"|"undecided"|null, "final": bool, "reasons", "warnings",
"checks": [rows], "marker": {...}|null, "since", "now", "window_complete", "probes": {...}}``.
``since`` is the exporter's clock, so the runner's clock never matters. Without a site, a marker
that lists ``sites`` limits the gate to those sites.

Production evidence: when the service reports its own marketplace calls (``POST /api/v1/traffic``
with the same ``service`` name as the deploy marker), the answer has a ``production`` row per
marketplace it called in the baseline window (:mod:`.verify_production`). The calls since the gate
began are counted exactly: the first round keeps the service's traffic counters, later rounds
subtract them. ``decided_by`` names the evidence a pass or fail rests on.

Every final answer counts once in ``marketplace_deploy_verifications_total{service,environment,
result}``. Same Bearer token as ``/api/v1/deploys`` (a round spends marketplace quota).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from pydantic import Field, ValidationInfo, field_validator

from marketplace_exporter import catalogue as c
from marketplace_exporter.adapters import ADAPTERS
from marketplace_exporter.catalogue import DeployStatus, VerifyResult
from marketplace_exporter.config import CheckSpec
from marketplace_exporter.core import Core
from marketplace_exporter.deploys.api import DEPLOY_LOG
from marketplace_exporter.deploys.api import authorize as deploys_authorize
from marketplace_exporter.deploys.model import DeployRecord
from marketplace_exporter.deploys.storage import AuditLog, StorageUnavailable
from marketplace_exporter.deploys.verify import (
    BASELINE_WINDOW,
    Decision,
    WindowStats,
    decide,
    evaluate_check,
    freeze_verdict,
    split_history,
)
from marketplace_exporter.deploys.verify_baseline import stored_checks, stored_production
from marketplace_exporter.deploys.verify_production import (
    ProductionEvaluation,
    TrafficCounts,
    evaluate_production,
    subtract,
)
from marketplace_exporter.engine import Engine, QuotaWait
from marketplace_exporter.labels import LABEL_VALUE_EXPECTED, is_label_value
from marketplace_exporter.metric_families import empty_family
from marketplace_exporter.request_models import RequestInvalid, RequestModel, parse_body, required
from marketplace_exporter.store import RecentResult, Store
from marketplace_exporter.traffic.aggregate import TrafficAggregator, TrafficTotals
from marketplace_exporter.traffic.api import TRAFFIC
from marketplace_exporter.webserver.marks import own_credentials
from marketplace_exporter.write_api import json_error, read_json_body

PATH = "/api/v1/verify"
MAX_BODY = 4096
DEFAULT_WINDOW = 300.0
#: a gate longer than an hour is a monitoring question, not a deploy gate
MAX_WINDOW = 3600.0


class VerificationCounter(Collector):
    """``marketplace_deploy_verifications_total``: final answers per service/environment/result
    (since the exporter started; Prometheus' ``increase()`` handles the restart)."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()

    def count(self, service: str, environment: str, result: VerifyResult) -> None:
        key = (service, environment, result.value)
        self.counts[key] += 1
        # the other results of a target appear at 0, so rate() sees the first failure
        for other in VerifyResult:
            self.counts.setdefault((service, environment, other.value), 0)

    def describe(self) -> Iterable[Metric]:
        return [empty_family(c.DEPLOY_VERIFICATIONS)]

    def collect(self) -> Iterator[Metric]:
        family = empty_family(c.DEPLOY_VERIFICATIONS)
        for labels, value in sorted(self.counts.items()):
            family.add_metric(list(labels), value)
        yield family


VERIFICATIONS = web.AppKey("verifications", VerificationCounter)


class VerifyBody(RequestModel):
    """The JSON body of ``POST /api/v1/verify``."""

    service: str = Field(description=LABEL_VALUE_EXPECTED)
    environment: str = Field(description=LABEL_VALUE_EXPECTED)
    site: str | None = None
    checks: str | None = None
    window_seconds: float = DEFAULT_WINDOW
    since: float | None = None
    probe: bool = True

    @field_validator("service", "environment", mode="before")
    @classmethod
    def _label(cls, value: object, info: ValidationInfo) -> object:
        if not is_label_value(value):
            raise required(cls, str(info.field_name))
        return value

    @field_validator("site", mode="before")
    @classmethod
    def _sites(cls, value: object) -> object:
        if value is not None and not isinstance(value, str):
            raise ValueError("expected a site code such as US, or a comma-separated list")
        return value

    @field_validator("checks", mode="before")
    @classmethod
    def _tag(cls, value: object) -> object:
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError("expected a tag such as critical")
        return value

    @field_validator("window_seconds", mode="before")
    @classmethod
    def _window(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_WINDOW:
            raise ValueError(f"expected seconds in (0, {MAX_WINDOW:g}]")
        return value

    @field_validator("since", mode="before")
    @classmethod
    def _since(cls, value: object, info: ValidationInfo) -> object:
        now = (info.context or {})["now"]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not math.isfinite(value) or not now - 86400 <= value <= now + 1):
            raise ValueError("expected the 'since' of an earlier answer (unix seconds, last 24 h)")
        return value

    @field_validator("probe", mode="before")
    @classmethod
    def _probe(cls, value: object) -> object:
        if not isinstance(value, bool):
            raise ValueError("expected true or false")
        return value


@dataclass(frozen=True)
class VerifyRequest:
    service: str
    environment: str
    sites: tuple[str, ...]
    tag: str | None
    window: float
    since: float | None
    probe: bool


def parse_request(body: object, *, now: float) -> VerifyRequest:
    """The JSON body → a request, or :class:`RequestInvalid` naming the field."""
    ask = parse_body(VerifyBody, body, context={"now": now})
    sites = tuple(part.strip().upper() for part in (ask.site or "").split(",") if part.strip())
    return VerifyRequest(ask.service, ask.environment, sites, ask.checks.strip() if ask.checks else None,
                         float(ask.window_seconds), ask.since, ask.probe)


def select_checks(store: Store, sites: tuple[str, ...], tag: str | None) -> list[CheckSpec]:
    """Configured checks of ``sites`` (any when empty) carrying ``tag`` (any when None)."""
    wanted = {site.upper() for site in sites}
    return [spec for spec in store.specs()
            if (not wanted or spec.site.upper() in wanted) and (tag is None or tag in spec.tags)]


class ProbeRounds:
    """Sends the gate's fresh probes, and remembers when a check's quota budget frees up so later
    rounds do not knock on it before then: each refused attempt would count in
    ``marketplace_probe_skipped_total`` and look like quota trouble on the dashboards."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._quota_until: dict[str, float] = {}

    async def run(self, engine: Engine, specs: list[CheckSpec]) -> dict[str, int]:
        """Probe every selected check once, concurrently; the engine enforces the quota budgets."""
        now = self._clock()
        due = [spec for spec in specs if self._quota_until.get(spec.id, 0.0) <= now]
        results = await asyncio.gather(*(engine.probe_now(spec.id) for spec in due))
        waits = 0
        for spec, result in zip(due, results, strict=True):
            if isinstance(result, QuotaWait):
                waits += 1
                self._quota_until[spec.id] = self._clock() + result.seconds
            else:
                self._quota_until.pop(spec.id, None)
        sent = sum(result is not None for result in results) - waits
        return {"sent": sent, "quota_wait": len(specs) - sent}


PROBE_ROUNDS = web.AppKey("verify_probe_rounds", ProbeRounds)

GateKey = tuple[str, str, float]  # service, environment, since


class TrafficStarts:
    """The deployed service's traffic counters as they were when each gate began.

    The per-minute ring cannot say which calls came after the gate's start (and keeps no reason),
    so the first round keeps the counters and every later round subtracts them: exact counts, with
    reason and code, of the calls since the gate began. Entries expire after twice the longest
    window and are capped in number, so abandoned gates cost nothing lasting."""

    MAX_GATES = 256
    KEEP = 2 * MAX_WINDOW

    def __init__(self) -> None:
        self._starts: dict[GateKey, tuple[float, dict[str, TrafficTotals]]] = {}

    def start_of(self, aggregator: TrafficAggregator, key: GateKey, *, now: float,
                 first_round: bool) -> tuple[dict[str, TrafficTotals], str | None]:
        """The counters at the gate's start, and a warning when they had to be taken now instead
        (a later round after the exporter restarted, or on another exporter)."""
        for stale in [k for k, (taken, _) in self._starts.items() if taken < now - self.KEEP]:
            del self._starts[stale]
        kept = self._starts.get(key)
        if kept is not None:
            return kept[1], None
        while len(self._starts) >= self.MAX_GATES:
            del self._starts[min(self._starts, key=lambda k: self._starts[k][0])]
        totals = aggregator.totals(key[0])
        self._starts[key] = (now, totals)
        if first_round:
            return totals, None
        return totals, ("production calls are counted from this round on, not from the gate's start: "
                        "the exporter kept no counts from then (was it restarted?)")


TRAFFIC_STARTS = web.AppKey("verify_traffic_starts", TrafficStarts)


@own_credentials
async def verify_handler(request: web.Request) -> web.Response:
    authorize(request)
    now = time.time()
    try:
        ask = parse_request(await read_json_body(request, MAX_BODY), now=now)
    except RequestInvalid as exc:
        return json_error(400, exc.message, field=exc.field)
    app = request.app
    since = ask.since if ask.since is not None else now
    answer: dict[str, Any] = {"service": ask.service, "environment": ask.environment, "since": since,
                              "window_seconds": ask.window, "marker": None,
                              "probes": {"sent": 0, "quota_wait": 0}}
    log = deploy_log(app)
    try:
        marker = (await asyncio.to_thread(log.latest, ask.service, ask.environment, DeployStatus.STARTED)
                  if log is not None else None)
        stored = await asyncio.to_thread(log.baseline, marker.id) if log is not None and marker else None
    except StorageUnavailable as exc:  # the CLI counts this as a missed round and retries
        response = json_error(503, f"{exc}; the gate cannot read the deploy marker now")
        response.headers["Retry-After"] = "2"
        return response
    if log is None:
        decision = Decision(VerifyResult.UNDECIDED, (), (
            "the exporter keeps no deploy log (start it with --storage.path), so there is no marker",))
    elif marker is None:
        decision = Decision(VerifyResult.UNDECIDED, (), (
            f"no 'started' deploy marker for {ask.service}/{ask.environment}: mark the deploy first "
            "(marketplace-exporter deploy mark --status started ...)",))
    else:
        answer["marker"] = marker.to_json()
        blocked, warnings = freeze_verdict(marker.freeze, marker.freeze_policy)
        if blocked is not None:
            decision = blocked
        else:
            sites, more = _sites(ask, marker, app[VERIFY_CORE].store)
            specs = select_checks(app[VERIFY_CORE].store, sites, ask.tag)
            if not specs:
                field = "site" if not select_checks(app[VERIFY_CORE].store, sites, None) else "checks"
                return json_error(400, _nothing_selected(app[VERIFY_CORE].store, sites, ask.tag), field=field)
            aggregator = app.get(TRAFFIC)
            started: dict[str, TrafficTotals] = {}
            if aggregator is not None:
                started, restarted = app[TRAFFIC_STARTS].start_of(
                    aggregator, (ask.service, ask.environment, since), now=now, first_round=ask.since is None)
                more = (*more, restarted) if restarted else more
            if ask.probe:
                answer["probes"] = await app[PROBE_ROUNDS].run(app[VERIFY_CORE].engine, specs)
            now = time.time()
            complete = now - since >= ask.window
            production = (production_rows(aggregator, ask.service, marker.received_at, started, sites, complete,
                                          stored=stored_production(stored))
                          if aggregator is not None else [])
            decision = _judge(app[VERIFY_CORE].store, specs, marker, since=since, now=now, window=ask.window,
                              warnings=(*warnings, *more), production=production, stored=stored_checks(stored))
    answer["now"] = now
    answer["window_complete"] = now - since >= ask.window
    answer.update(decision.to_json())
    if decision.result is not None:
        app[VERIFICATIONS].count(ask.service, ask.environment, decision.result)
    return web.json_response(answer)


def production_rows(aggregator: TrafficAggregator, service: str, marker_at: float,
                    started: dict[str, TrafficTotals], sites: tuple[str, ...],
                    complete: bool, stored: dict[str, TrafficCounts] | None = None) -> list[ProductionEvaluation]:
    """One row per marketplace ``service`` called in the baseline window before the marker (all its
    sites: the per-minute counts keep no site), limited to marketplaces serving one of ``sites``
    when the gate is limited to sites. None of them: no rows, the gate is the probes' alone.
    ``stored``: the counts stored with the marker, used where memory lost them (a restart)."""
    wanted = {site.upper() for site in sites}
    rows = []
    kept = stored or {}
    for marketplace, now_totals in sorted(aggregator.totals(service).items()):
        adapter = ADAPTERS.get(marketplace)
        if wanted and (adapter is None or not wanted & {site.upper() for site in adapter.sites}):
            continue
        window = aggregator.window(marker_at - BASELINE_WINDOW, marker_at, service=service, marketplace=marketplace)
        before = TrafficCounts(window.requests, window.errors) if window is not None else None
        if marketplace in kept and (before is None or kept[marketplace].requests > before.requests):
            before = kept[marketplace]
        if before is None or before.requests == 0:
            continue
        start = started.get(marketplace, TrafficTotals(0, {}))
        errors = subtract(now_totals.errors, start.errors)
        after = TrafficCounts(max(0, now_totals.requests - start.requests), sum(errors.values()))
        rows.append(evaluate_production(marketplace, before, after,
                                        errors, window_complete=complete))
    return rows


def _judge(store: Store, specs: list[CheckSpec], marker: DeployRecord, *, since: float, now: float,
           window: float, warnings: tuple[str, ...], production: list[ProductionEvaluation],
           stored: dict[str, WindowStats] | None = None) -> Decision:
    """Per check: the baseline stored with the marker when it has more results than memory
    still holds (after a restart memory has none), else the in-memory one."""
    complete = now - since >= window
    kept = stored or {}
    rows = []
    for spec in specs:
        baseline, candidate = split_history(store.recent_results(spec.id), marker_at=marker.received_at,
                                            since=since, baseline_window=BASELINE_WINDOW)
        before: list[RecentResult] | WindowStats = baseline
        if spec.id in kept and kept[spec.id].samples > len(baseline):
            before = kept[spec.id]
        rows.append(evaluate_check(spec.id, spec.site, before, candidate, window_complete=complete))
    return decide(rows, window_complete=complete, warnings=warnings, production=production)


def _sites(ask: VerifyRequest, marker: DeployRecord, store: Store) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Explicit sites win; else the marker's sites when some check has one of them; else all."""
    if ask.sites or not marker.sites:
        return ask.sites, ()
    configured = {spec.site.upper() for spec in store.specs()}
    marked = tuple(site.upper() for site in marker.sites)
    if configured & set(marked):
        return marked, ()
    return (), (f"the marker's sites ({', '.join(marked)}) match no configured check: verifying all sites",)


def _nothing_selected(store: Store, sites: tuple[str, ...], tag: str | None) -> str:
    specs = store.specs()
    known_sites = ", ".join(sorted({spec.site for spec in specs})) or "none"
    known_tags = ", ".join(sorted({t for spec in specs for t in spec.tags})) or "none"
    wanted = " and ".join(part for part in (f"site {','.join(sites)}" if sites else "",
                                            f"tag {tag!r}" if tag else "") if part)
    return f"no configured check matches {wanted or 'the selection'}; sites: {known_sites}; tags: {known_tags}"


def deploy_log(app: web.Application) -> AuditLog | None:
    """The deploy API's log (None only when the deploys extension is not installed)."""
    return app.get(DEPLOY_LOG)


def authorize(request: web.Request) -> None:
    """The deploy API's own check (same token variable, same ``anonymous_writes`` policy): one rule
    for who may drive deploys, kept in one place."""
    deploys_authorize(request)


#: the exporter's core (store, engine) as the gate reads it
VERIFY_CORE = web.AppKey("verify_core", Core)


def install(core: Core, app: web.Application) -> None:
    app[VERIFY_CORE] = core
    counter = VerificationCounter()
    app[VERIFICATIONS] = counter
    app[PROBE_ROUNDS] = ProbeRounds()
    app[TRAFFIC_STARTS] = TrafficStarts()
    core.registry.register(counter)
    app.router.add_post(PATH, verify_handler)


__all__ = ["PATH", "ProbeRounds", "TrafficStarts", "VerificationCounter", "VerifyRequest", "install", "parse_request",
           "production_rows", "select_checks"]
