"""``marketplace-exporter verify``: the post-deploy gate a pipeline runs after the deploy step.

    marketplace-exporter verify --service order-sync --environment production \\
        [--site US] [--checks critical] [--window 5m] [--timeout 10m] [--on-fail 'CMD']

Exit status: 0 pass, 1 fail, 2 could not decide (exporter unreachable or refusing, no ``started``
marker, no baseline, too few results, or ``--timeout`` reached). The loop: ``POST /api/v1/verify``
runs one round in the exporter (fresh probes within quota budgets + comparison) and answers at
once; the command repeats it every ``--interval`` until the exporter says the answer is final.
A failed check is final at once (fast fail), so a bad deploy is rolled back in seconds, not after
the whole window.

``--on-fail CMD`` runs ``CMD`` with the shell on a fail only (exit 1); an undecided gate must not
roll back a good deploy because the exporter was restarted, unless ``--rollback-on-undecided``
says so. The command gets ``VERIFY_RESULT``, ``VERIFY_SERVICE``, ``VERIFY_ENVIRONMENT`` in its
environment; its exit status is printed and never replaces the gate's own exit status.

When the service reports its own marketplace calls to the exporter (docs/traffic.md; the same
``--service`` name), the table has a production row per marketplace too, and the result says
which evidence decided it (``DECIDED BY``).

Canary (灰度): deploy one site, ``verify --site US``, then deploy the rest and ``verify`` without
``--site`` (docs/ci/deploy-gate.sh does exactly this).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TextIO

from marketplace_exporter.api_client import (
    DEFAULT_EXPORTER_URL,
    ExporterClient,
    ExporterRefused,
    ExporterUnreachable,
)
from marketplace_exporter.api_defaults import DEFAULT_TOKEN_ENV
from marketplace_exporter.catalogue import VerifyResult
from marketplace_exporter.durations import format_duration, parse_duration

PATH = "/api/v1/verify"
EXIT_CODES = {VerifyResult.PASS: 0, VerifyResult.FAIL: 1, VerifyResult.UNDECIDED: 2}
#: in Chinese too: the people reading a failed pipeline at 2 a.m. before 11.11 are often in Shenzhen
RESULT_TEXT = {VerifyResult.PASS: "PASS 通过", VerifyResult.FAIL: "FAIL 失败（需回滚）",
               VerifyResult.UNDECIDED: "UNDECIDED 无法判定"}
#: consecutive rounds the exporter may miss (a restart, a blip) before the gate gives up
MAX_MISSED_ROUNDS = 3
#: the longest one round may take: probes have their own deadlines, well below this
ROUND_TIMEOUT = 60.0
EVIDENCE_TEXT = {"probes": "probes 探测", "production": "production traffic 生产流量"}


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify = sub.add_parser(
        "verify", help="post-deploy gate: compare probes (and reported production traffic) after the "
                       "deploy with the 30 minutes before it (exit 0 pass, 1 fail, 2 undecided)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verify.add_argument("--service", required=True)
    verify.add_argument("--environment", required=True)
    verify.add_argument("--site", default=None, help="only checks of this site (or US,DE); default: the "
                                                     "marker's sites, else all")
    verify.add_argument("--checks", dest="tag", default=None, metavar="TAG", help="only checks with this tag")
    verify.add_argument("--window", type=_duration, default=300.0,
                        help="how long to collect results after the deploy (default 5m)")
    verify.add_argument("--timeout", type=_duration, default=600.0,
                        help="give up undecided (exit 2) after this long (default 10m)")
    verify.add_argument("--interval", type=_duration, default=10.0,
                        help="time between rounds (each round probes the checks once; default 10s)")
    verify.add_argument("--on-fail", dest="on_fail", default=None, metavar="CMD",
                        help="shell command to run when the gate fails (the rollback)")
    verify.add_argument("--rollback-on-undecided", action="store_true",
                        help="also run --on-fail when the gate cannot decide")
    verify.add_argument("--output", choices=("table", "json"), default="table")
    verify.add_argument("--exporter.url", dest="exporter_url",
                        default=os.environ.get("MARKETPLACE_EXPORTER_URL", DEFAULT_EXPORTER_URL),
                        help="default: $MARKETPLACE_EXPORTER_URL or " + DEFAULT_EXPORTER_URL)
    verify.add_argument("--token-env", dest="token_env", default=DEFAULT_TOKEN_ENV,
                        help=f"environment variable holding the Bearer token (default {DEFAULT_TOKEN_ENV})")
    _prometheus_options(verify)
    verify.set_defaults(handler=run_verify)


def _prometheus_options(verify: argparse.ArgumentParser) -> None:
    """``--prometheus.url`` and friends: judge from Prometheus (every shard, across restarts)."""
    prom = verify.add_argument_group("judging from Prometheus (docs/verify.md)")
    prom.add_argument("--prometheus.url", dest="prometheus_url", default=None,
                      help="judge from this Prometheus (all exporter shards and replicas, across restarts) "
                           "instead of the exporter's memory")
    prom.add_argument("--prometheus.bearer-token-file", dest="prom_bearer_file", default=None, metavar="FILE")
    prom.add_argument("--prometheus.bearer-token-env", dest="prom_bearer_env", default=None, metavar="VAR")
    prom.add_argument("--prometheus.username", dest="prom_username", default=None, help="basic auth user")
    prom.add_argument("--prometheus.password-file", dest="prom_password_file", default=None, metavar="FILE")
    prom.add_argument("--prometheus.password-env", dest="prom_password_env", default=None, metavar="VAR")
    prom.add_argument("--prometheus.ca-file", dest="prom_ca_file", default=None, metavar="FILE",
                      help="CA bundle to verify Prometheus' certificate (an internal CA)")
    prom.add_argument("--marker-from", dest="marker_from", choices=("api", "prometheus"), default="api",
                      help="where the started marker's time comes from: the deploy API (default; freeze policy "
                           "and sites included) or marketplace_deploy_timestamp_seconds in Prometheus")
    prom.add_argument("--selector", default=None, metavar="MATCHERS",
                      help='extra PromQL label matchers for the probe series, e.g. marketplace="amazon_sp"')
    prom.add_argument("--since", type=_since, default=None, metavar="TIME",
                      help="the gate's start (unix seconds or RFC 3339; default now): results before it belong "
                           "to the rollout, not to the new version")
    prom.add_argument("--explain", action="store_true", help="print every PromQL query and its answer (stderr)")


def _since(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected unix seconds or RFC 3339, got {raw!r}") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{raw!r} needs an offset (Z or +08:00)")
    return parsed.timestamp()


def _duration(raw: str) -> float:
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run_verify(args: argparse.Namespace) -> int:
    # one "HTTP Request: POST ..." line per round is noise in a pipeline's log
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    if args.timeout <= args.window:
        print(f"verify: --timeout ({format_duration(args.timeout)}) must be longer than --window "
              f"({format_duration(args.window)})", file=sys.stderr)
        return 2
    if args.prometheus_url:
        return _run_from_prometheus(args)
    body: dict[str, Any] = {"service": args.service, "environment": args.environment,
                            "window_seconds": args.window}
    if args.site:
        body["site"] = args.site
    if args.tag:
        body["checks"] = args.tag
    with ExporterClient(args.exporter_url, token_env=args.token_env) as client:
        result, answer = gate(lambda request: client.post(PATH, request, timeout=ROUND_TIMEOUT), body,
                              timeout=args.timeout, interval=args.interval)
    if args.output == "json":
        print(json.dumps({**(answer or {}), "result": result.value}, ensure_ascii=False, indent=2))
    elif answer is not None and answer.get("checks") is not None:
        print(render(answer))
    return _finish(args, result)


def _run_from_prometheus(args: argparse.Namespace) -> int:
    from marketplace_exporter.deploys import verify_prom

    if args.tag:
        print("verify: --checks selects by a tag, and tags are not metric labels: with --prometheus.url use "
              "--site or --selector (e.g. --selector 'check=\"orders\"')", file=sys.stderr)
        return 2
    result, answer = verify_prom.gate(args)
    if args.output == "json":
        print(json.dumps({**answer, "result": result.value}, ensure_ascii=False, indent=2))
    else:
        print(verify_prom.render({**answer, "result": result.value}))
    return _finish(args, result)


def _finish(args: argparse.Namespace, result: VerifyResult) -> int:
    print(f"verify {args.service}/{args.environment}: {RESULT_TEXT[result]}", file=sys.stderr)
    if args.on_fail and (result is VerifyResult.FAIL
                         or (result is VerifyResult.UNDECIDED and args.rollback_on_undecided)):
        run_on_fail(args.on_fail, result, args.service, args.environment)
    return EXIT_CODES[result]


def gate(call: Callable[[dict[str, Any]], Any], body: dict[str, Any], *, timeout: float, interval: float,
         clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
         err: TextIO | None = None) -> tuple[VerifyResult, dict[str, Any] | None]:
    """Call the exporter round after round until its answer is final or ``timeout`` passes."""
    err = err or sys.stderr
    deadline = clock() + timeout
    answer: dict[str, Any] | None = None
    missed = 0
    shown_warnings: set[str] = set()
    while True:
        try:
            reply = call(body)
            missed = 0
        except ExporterRefused as exc:
            if exc.retry_after is None:  # wrong token, bad field: asking again will not help
                print(f"verify: {exc}", file=err)
                return VerifyResult.UNDECIDED, answer
            # 503 + Retry-After: the exporter's audit log database is down for now; a missed round
            missed += 1
            if missed >= MAX_MISSED_ROUNDS:
                print(f"verify: {exc}", file=err)
                return VerifyResult.UNDECIDED, answer
            print(f"verify: {exc}; retrying ({missed}/{MAX_MISSED_ROUNDS - 1})", file=err)
        except ExporterUnreachable as exc:
            missed += 1
            if answer is None or missed >= MAX_MISSED_ROUNDS:
                print(f"verify: {exc}", file=err)
                return VerifyResult.UNDECIDED, answer
            print(f"verify: {exc}; retrying ({missed}/{MAX_MISSED_ROUNDS - 1})", file=err)
        else:
            if not isinstance(reply, dict):
                print("verify: the exporter's answer is not a JSON object", file=err)
                return VerifyResult.UNDECIDED, answer
            answer = reply
            body["since"] = reply["since"]
            for warning in reply.get("warnings", []):
                if warning not in shown_warnings:
                    shown_warnings.add(warning)
                    print(f"verify: WARNING: {warning}", file=err)
            if reply.get("final"):
                for reason in reply.get("reasons", []):
                    print(f"verify: {reason}", file=err)
                return VerifyResult(reply["result"]), reply
            print(progress(reply), file=err)
        remaining = deadline - clock()
        if remaining <= 0:
            print(f"verify: no decision within --timeout {format_duration(timeout)}", file=err)
            return VerifyResult.UNDECIDED, answer
        pause = interval
        if answer is not None:
            # wake up when the window closes rather than up to one interval later
            pause = min(pause, max(0.2, answer["since"] + answer["window_seconds"] - answer["now"]))
        sleep(min(pause, remaining))


def progress(answer: dict[str, Any]) -> str:
    elapsed = answer["now"] - answer["since"]
    checks = answer.get("checks", [])
    after = sum(row["candidate"]["samples"] for row in checks)
    failed = sum(row["candidate"]["samples"] - row["candidate"]["successes"] for row in checks)
    probes = answer.get("probes", {})
    quota = f", {probes['quota_wait']} waiting for quota" if probes.get("quota_wait") else ""
    production = answer.get("production") or []
    calls = sum(row["candidate"]["requests"] for row in production)
    errors = sum(row["candidate"]["errors"] for row in production)
    traffic = f"; production: {calls} calls since the gate began ({errors} failed)" if production else ""
    return (f"verify: collecting {elapsed:.0f}/{answer['window_seconds']:.0f}s: {len(checks)} checks, "
            f"{after} results after the deploy ({failed} failed){quota}{traffic}")


def render(answer: dict[str, Any]) -> str:
    """The gate's table: one row per check, baseline vs. now, verdict and why."""
    lines = []
    marker = answer.get("marker")
    if marker:
        lines.append(f"deploy #{marker['id']} {marker['service']}/{marker['environment']} "
                     f"{marker['version']} started {marker['received_at_iso']}"
                     + (f" by {marker['actor']}" if marker.get("actor") else ""))
    for warning in answer.get("warnings", []):
        lines.append(f"WARNING: {warning}")
    checks = answer.get("checks") or []
    if checks:  # none when the gate decided before probing (a blocking freeze window, no marker)
        lines += _table(("CHECK", "SITE", "BEFORE", "AFTER", "VERDICT", "DETAILS"),
                        [(row["check"], row["site"], _stats(row["baseline"]), _stats(row["candidate"]),
                          row["verdict"].upper(), "; ".join([*row["reasons"], *row["failures"]]))
                         for row in checks])
    production = answer.get("production") or []
    if production:
        service = f"{answer['service']}'s" if answer.get("service") else "the service's"
        lines.append(f"production: {service} own marketplace calls (生产流量), all sites of each marketplace")
        lines += _table(("MARKETPLACE", "BEFORE", "AFTER", "VERDICT", "DETAILS"),
                        [(row["marketplace"], _calls(row["baseline"]), _calls(row["candidate"]),
                          row["verdict"].upper(), "; ".join([*row["reasons"], *row["failures"]]))
                         for row in production])
    result = answer.get("result")
    if result:
        lines.append(f"RESULT: {RESULT_TEXT[VerifyResult(result)]}"
                     + (f" — {'; '.join(answer['reasons'])}" if answer.get("reasons") else ""))
        if production and answer.get("decided_by"):
            lines.append("DECIDED BY 判定依据: " + ", ".join(EVIDENCE_TEXT.get(e, e) for e in answer["decided_by"]))
    return "\n".join(line.rstrip() for line in lines)


def _table(header: tuple[str, ...], body: list[tuple[str, ...]]) -> list[str]:
    """Aligned columns; the last (free text) is not padded."""
    rows = [header, *body]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
            for row in rows]


def _stats(side: dict[str, Any]) -> str:
    if not side["samples"]:
        return "-"
    ratio = f"{side['ratio'] * 100:.0f}% of {side['samples']}"
    if side["p50_seconds"] is None:
        return ratio
    return f"{ratio}, p50 {side['p50_seconds'] * 1000:.0f}ms p95 {side['p95_seconds'] * 1000:.0f}ms"


def _calls(side: dict[str, Any]) -> str:
    if not side["requests"]:
        return "no calls"
    ratio = side["error_ratio"] * 100
    shown = f"{ratio:.1f}" if 0 < ratio < 10 else f"{ratio:.0f}"
    return f"{shown}% errors of {side['requests']}"


def run_on_fail(command: str, result: VerifyResult, service: str, environment: str) -> int:
    """Run the rollback command; its exit status is reported, not returned as the gate's."""
    # only the program is echoed: the rest of the command line may carry a token the pipeline inlined
    program = command.strip().split(maxsplit=1)[0] if command.strip() else "''"
    print(f"verify: running the --on-fail command ({program} ...)", file=sys.stderr, flush=True)
    env = {**os.environ, "VERIFY_RESULT": result.value, "VERIFY_SERVICE": service,
           "VERIFY_ENVIRONMENT": environment}
    # stdout carries only the gate's answer (``--output json`` must stay parseable): whatever the
    # rollback prints goes to stderr, where the pipeline's log shows it anyway
    sys.stdout.flush()
    completed = subprocess.run(command, shell=True, env=env, check=False, stdout=sys.stderr)
    if completed.returncode == 0:
        print("verify: --on-fail command succeeded (exit 0)", file=sys.stderr)
    else:
        print(f"verify: --on-fail command FAILED with exit {completed.returncode}: roll back by hand",
              file=sys.stderr)
    return completed.returncode


__all__ = ["EXIT_CODES", "add_commands", "gate", "render", "run_on_fail", "run_verify"]
