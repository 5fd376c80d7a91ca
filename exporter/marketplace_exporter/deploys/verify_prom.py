"""``verify --prometheus.url=…``: the post-deploy gate judged from Prometheus instead of one
exporter's memory — every shard and replica of the exporter, across restarts.

    marker      the newest ``started`` marker of the service/environment: from the deploy API
                (``--marker-from api``, the default: the audit log, with its freeze policy and
                sites; with ``--storage.url postgresql://`` every replica has it) or from
                Prometheus' ``max(marketplace_deploy_timestamp_seconds{status="started"})``
                (``--marker-from prometheus``: no exporter API needed)
    baseline    the 30 minutes before the marker:       increase(x[1800s] @ <marker>)
    candidate   since the gate began (Prometheus' clock): increase(x[<elapsed>s] @ <now>)

The rules are the embedded gate's, as PromQL (:mod:`.verify_promql`, also the source of the Argo
Rollouts and Flagger templates); this module only runs them round after round and combines
their answers the way :func:`.verify.decide` does: a fail-fast rule with any series fails at
once; no judged series at all is undecided at once; when the window closes any failing series
fails, a starved check is undecided, anything else passes. ``--explain`` prints every query and
its answer on stderr. Exit codes stay 0 pass, 1 fail, 2 undecided (Prometheus unreachable or
refusing counts as undecided after two retries).

Credentials never go on the command line: the bearer token and the basic-auth password are read
from a file or an environment variable, like Prometheus' own ``bearer_token_file``.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from marketplace_exporter import catalogue as c
from marketplace_exporter.api_client import ExporterClient, ExporterRefused, ExporterUnreachable
from marketplace_exporter.catalogue import DeployStatus, VerifyResult
from marketplace_exporter.deploys.verify import BASELINE_WINDOW
from marketplace_exporter.deploys.verify_promql import AtWindow, Rule, Selection, rules
from marketplace_exporter.durations import format_duration
from marketplace_exporter.labels import LABEL_VALUE_EXPECTED, is_label_value

#: rounds Prometheus may miss in a row before the gate gives up undecided
MAX_MISSED_ROUNDS = 3


class PrometheusError(Exception):
    """Prometheus could not answer a query (down, refusing, a bad query); the message says which."""


@dataclass(frozen=True)
class PrometheusAuth:
    bearer_token: str | None = None
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None


class PrometheusClient:
    """Instant queries over ``/api/v1/query`` (httpx; the CA file, bearer or basic auth applied)."""

    def __init__(self, url: str, auth: PrometheusAuth = PrometheusAuth(), timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": "marketplace-exporter-verify"}
        if auth.bearer_token:
            headers["Authorization"] = f"Bearer {auth.bearer_token}"
        basic = (auth.username, auth.password or "") if auth.username else None
        verify: ssl.SSLContext | bool = True
        if auth.ca_file:
            verify = ssl.create_default_context(cafile=auth.ca_file)
        self._http = httpx.Client(base_url=self.url, headers=headers, auth=basic, verify=verify, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def query(self, expr: str, at: float | None = None) -> list[tuple[dict[str, str], float]]:
        """(labels, value) per series of an instant vector (a scalar answer is one unlabelled series)."""
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        try:
            response = self._http.post("/api/v1/query", data=params)
        except httpx.HTTPError as exc:
            raise PrometheusError(f"cannot reach Prometheus at {self.url}: {type(exc).__name__}: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or body.get("status") != "success":
            reason = body.get("error") or response.text.strip()[:300] or response.reason_phrase
            raise PrometheusError(f"Prometheus at {self.url} refused the query (HTTP {response.status_code}): {reason}")
        data = body["data"]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(dict(item["metric"]), float(item["value"][1])) for item in data["result"]]


@dataclass(frozen=True)
class Marker:
    at: float
    source: str
    record: dict[str, Any] | None = None


@dataclass
class Round:
    """One evaluation of every rule: the answer a pipeline sees."""

    now: float
    since: float
    window: float
    answers: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    result: VerifyResult | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.now - self.since >= self.window


def read_secret(file: str | None, env: str | None, what: str) -> str | None:
    """A credential from a file (trailing newline dropped) or an environment variable."""
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise PrometheusError(f"{what}: cannot read {file}: {exc.strerror}") from None
    if env:
        value = os.environ.get(env, "").strip()
        if not value:
            raise PrometheusError(f"{what}: the environment variable {env} is empty or unset")
        return value
    return None


def find_marker(args: argparse.Namespace, prometheus: PrometheusClient) -> Marker:
    """The newest ``started`` marker, from the deploy API or from Prometheus (``--marker-from``)."""
    if args.marker_from == "prometheus":
        expr = (f'max({c.DEPLOY_TIMESTAMP.name}{{service="{args.service}", environment="{args.environment}", '
                'status="started"})')
        found = prometheus.query(expr)
        if args.explain:
            print(f"verify: query marker:\n  {expr}\n  → {found[0][1] if found else 'no series'}", file=sys.stderr)
        if not found:
            raise LookupError(f"Prometheus has no {c.DEPLOY_TIMESTAMP.name}{{status=\"started\"}} for "
                              f"{args.service}/{args.environment}: mark the deploy first "
                              "(deploy mark --status started)")
        return Marker(found[0][1], "prometheus")
    with ExporterClient(args.exporter_url, token_env=args.token_env) as client:
        page = client.get("/api/v1/deploys", params={"service": args.service, "environment": args.environment,
                                                     "limit": 100})
    for row in page["deploys"]:
        if row["status"] == DeployStatus.STARTED.value:
            return Marker(float(row["deployed_at"]), "deploy API", row)
    raise LookupError(f"no 'started' deploy marker for {args.service}/{args.environment}: mark the deploy first "
                      "(marketplace-exporter deploy mark --status started ...)")


def selection(args: argparse.Namespace, marker: Marker) -> Selection:
    """Probe series by ``--site`` (else the marker's sites) and ``--selector``; traffic by service."""
    sites = args.site or ",".join((marker.record or {}).get("sites") or [])
    matchers = [f'site=~"{"|".join(s.strip().upper() for s in sites.split(",") if s.strip())}"'] if sites else []
    if args.selector:
        matchers.append(args.selector.strip().strip("{}"))
    return Selection(service=args.service, probes=", ".join(matchers))


def evaluate(prometheus: PrometheusClient, chosen: Selection, marker_at: float, since: float, window: float,
             explain: TextIO | None) -> Round:
    """Run every rule once at Prometheus' current time and decide."""
    now = prometheus.query("time()")[0][1]
    this = Round(now=now, since=since, window=window)
    baseline = AtWindow(BASELINE_WINDOW, marker_at)
    candidate = AtWindow(max(1.0, now - since), now)
    all_rules = rules(chosen, baseline, candidate)
    for rule in all_rules:
        answer = prometheus.query(rule.expr, at=now)
        this.answers[rule.name] = answer
        this.kinds[rule.name] = rule.kind
        if explain is not None:
            print(f"verify: query {rule.name} ({rule.kind}: {rule.help}):\n  {rule.expr}", file=explain)
            print(f"  → {_series(answer) or 'no series'}", file=explain)
    decide_round(this, all_rules)
    return this


def decide_round(this: Round, all_rules: list[Rule]) -> None:
    """The embedded gate's decision (:func:`.verify.decide`), over the rules' answers."""
    def hits(kind: str) -> list[str]:
        return [f"{rule.name}: {_series(this.answers[rule.name])}" for rule in all_rules
                if rule.kind == kind and this.answers.get(rule.name)]

    if fast := hits("fail_fast"):
        this.result, this.reasons = VerifyResult.FAIL, fast
        return
    if not hits("judged"):
        this.result = VerifyResult.UNDECIDED
        this.reasons = ["no selected check has probes from before the deploy, and the service reported too "
                        "few production calls then, to compare with"]
        return
    if not this.complete:
        return
    if failed := hits("fail"):
        this.result, this.reasons = VerifyResult.FAIL, failed
    elif starved := hits("starved"):
        this.result, this.reasons = VerifyResult.UNDECIDED, [f"too few probes after the deploy: {starved[0]}"]
    else:
        this.result = VerifyResult.PASS
        this.reasons = [f"within tolerance: {', '.join(hits('judged'))}"]


def gate(args: argparse.Namespace, err: TextIO | None = None, clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep) -> tuple[VerifyResult, dict[str, Any]]:
    """Round after round until the decision is final or ``--timeout`` passes."""
    err = err or sys.stderr
    for name in ("service", "environment"):  # they go into PromQL label matchers
        if not is_label_value(getattr(args, name)):
            return _undecided({}, f"--{name}: {LABEL_VALUE_EXPECTED}", err)
    answer: dict[str, Any] = {"service": args.service, "environment": args.environment, "source": "prometheus",
                              "prometheus": args.prometheus_url, "marker": None}
    try:
        auth = PrometheusAuth(
            bearer_token=read_secret(args.prom_bearer_file, args.prom_bearer_env, "--prometheus.bearer-token"),
            username=args.prom_username,
            password=read_secret(args.prom_password_file, args.prom_password_env, "--prometheus.password"),
            ca_file=args.prom_ca_file)
    except PrometheusError as exc:
        return _undecided(answer, str(exc), err)
    prometheus = PrometheusClient(args.prometheus_url, auth)
    try:
        try:
            marker = find_marker(args, prometheus)
        except (LookupError, PrometheusError, ExporterRefused, ExporterUnreachable) as exc:
            return _undecided(answer, str(exc), err)
        answer["marker"] = marker.record or {"deployed_at": marker.at}
        answer["marker_source"] = marker.source
        if marker.record and marker.record.get("freeze_policy") == "warn":
            print(f"verify: WARNING: the deploy was marked inside freeze window {marker.record['freeze']!r} "
                  "(policy: warn)", file=err)
        if marker.record and marker.record.get("freeze_policy") == "block":
            reason = (f"the deploy was marked inside freeze window {marker.record['freeze']!r} (policy: block): "
                      "deploys are not allowed now — roll back, or change the freeze window in the config")
            answer.update(result=VerifyResult.FAIL.value, final=True, reasons=[reason])
            print(f"verify: {reason}", file=err)
            return VerifyResult.FAIL, answer
        chosen = selection(args, marker)
        deadline = clock() + args.timeout
        since: float | None = args.since
        missed = 0
        while True:
            try:
                if since is None:
                    since = max(prometheus.query("time()")[0][1], marker.at)
                this = evaluate(prometheus, chosen, marker.at, since, args.window,
                                err if args.explain else None)
                missed = 0
            except PrometheusError as exc:
                missed += 1
                if missed >= MAX_MISSED_ROUNDS:
                    return _undecided(answer, str(exc), err)
                print(f"verify: {exc}; retrying ({missed}/{MAX_MISSED_ROUNDS - 1})", file=err)
            else:
                answer.update(_to_json(this, chosen))
                if this.result is not None:
                    for reason in this.reasons:
                        print(f"verify: {reason}", file=err)
                    return this.result, answer
                print(f"verify: collecting {this.now - this.since:.0f}/{args.window:.0f}s from Prometheus", file=err)
            remaining = deadline - clock()
            if remaining <= 0:
                return _undecided(answer, f"no decision within --timeout {format_duration(args.timeout)}", err)
            sleep(min(args.interval, remaining))
    finally:
        prometheus.close()


def render(answer: dict[str, Any]) -> str:
    """The table: one row per rule that returned series, then the result."""
    lines = [f"gate from Prometheus {answer.get('prometheus')}: baseline the 30 min before the marker "
             f"({answer.get('marker_source', '?')}), candidate since the gate began"]
    for rule in answer.get("rules", []):
        if rule["series"]:
            series = [(s["labels"], s["value"]) for s in rule["series"]]
            lines.append(f"{rule['name']:<24} {rule['kind']:<9} {_series(series)}")
    if answer.get("result"):
        lines.append(f"RESULT: {answer['result'].upper()} — {'; '.join(answer.get('reasons', []))}")
    return "\n".join(lines)


def _to_json(this: Round, chosen: Selection) -> dict[str, Any]:
    return {"since": this.since, "now": this.now, "window_seconds": this.window,
            "window_complete": this.complete, "selector": chosen.probes,
            "result": this.result.value if this.result else None, "final": this.result is not None,
            "reasons": this.reasons,
            "rules": [{"name": name, "kind": this.kinds[name],
                       "series": [{"labels": labels, "value": value} for labels, value in series]}
                      for name, series in this.answers.items()]}


def _undecided(answer: dict[str, Any], reason: str, err: TextIO) -> tuple[VerifyResult, dict[str, Any]]:
    print(f"verify: {reason}", file=err)
    answer.update(result=VerifyResult.UNDECIDED.value, final=True, reasons=[*answer.get("reasons", []), reason])
    return VerifyResult.UNDECIDED, answer


def _series(answer: list[tuple[dict[str, str], float]]) -> str:
    shown = []
    for labels, value in answer[:10]:
        name = "/".join(labels[k] for k in ("marketplace", "account", "check", "site") if k in labels) or "-"
        shown.append(f"{name}={value:.4g}")
    more = f" (+{len(answer) - 10} more)" if len(answer) > 10 else ""
    return ", ".join(shown) + more


__all__ = ["PrometheusClient", "PrometheusError", "decide_round", "evaluate", "gate", "read_secret", "render",
           "selection"]
