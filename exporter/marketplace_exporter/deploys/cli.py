"""``deploy mark`` and ``deploys list|export``: the pipeline's and the auditor's side of the deploy
API, over ``api_client.ExporterClient`` (httpx: short-lived processes).

    marketplace-exporter deploy mark --service S --environment E --version V [--status started]
    marketplace-exporter deploys list [--service S] [--environment E] [--since 7d] [--format table]
    marketplace-exporter deploys export --format csv --since 2026-11-01T00:00:00+08:00 > audit.csv

Exit codes: 0 recorded/listed; 1 the exporter refused (wrong token, invalid field: the message
names it); 2 the exporter could not be reached; 3 a ``started`` marker was recorded inside a freeze
window with ``policy: block`` (the audit log has it; the pipeline must not deploy, so
``deploy mark --status started ... && ./deploy.sh`` stops there). The token comes from the
environment only.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from marketplace_exporter.api_client import (
    DEFAULT_EXPORTER_URL,
    ExporterClient,
    ExporterRefused,
    ExporterUnreachable,
)
from marketplace_exporter.api_defaults import DEFAULT_TOKEN_ENV
from marketplace_exporter.catalogue import DeployStatus
from marketplace_exporter.deploys.ci_env import ci_defaults
from marketplace_exporter.durations import parse_duration

PATH = "/api/v1/deploys"
EXIT_REFUSED = 1
EXIT_UNREACHABLE = 2
#: a ``started`` marker was recorded inside a freeze window with ``policy: block``: do not deploy
EXIT_FROZEN = 3
#: columns of ``list`` (table) and ``export`` (csv), in order
CSV_COLUMNS = ("id", "deployed_at_iso", "received_at_iso", "service", "environment", "version", "commit",
               "status", "sites", "freeze", "freeze_policy", "actor", "pipeline_url", "notes", "remote_addr",
               "deployed_at", "received_at")
_TABLE = (("ID", "id"), ("DEPLOYED (UTC)", "deployed_at_iso"), ("SERVICE", "service"),
          ("ENVIRONMENT", "environment"), ("VERSION", "version"), ("COMMIT", "commit"), ("STATUS", "status"),
          ("FREEZE", "freeze"), ("ACTOR", "actor"))


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    deploy = sub.add_parser("deploy", help="record deploy markers on the exporter (pipelines)")
    deploy_sub = deploy.add_subparsers(dest="deploy_command", required=True)
    mark = deploy_sub.add_parser(
        "mark", help="record a deploy marker (commit, actor and pipeline URL default from CI variables)",
        description="Record a deploy marker. --commit, --actor and --url default from GitHub Actions, "
                    "GitLab CI or Jenkins variables. Exit 0 recorded, 1 refused, 2 exporter unreachable, "
                    "3 a 'started' marker recorded inside a blocking freeze window (do not deploy).")
    mark.add_argument("--service", required=True)
    mark.add_argument("--environment", required=True)
    mark.add_argument("--version", required=True)
    mark.add_argument("--status", default=DeployStatus.SUCCEEDED.value, choices=[s.value for s in DeployStatus],
                      help=f"default {DeployStatus.SUCCEEDED.value}")
    mark.add_argument("--commit", default=None, help="default: GITHUB_SHA / CI_COMMIT_SHA / GIT_COMMIT")
    mark.add_argument("--url", dest="pipeline_url", default=None,
                      help="pipeline run URL; default: the GitHub run / CI_PIPELINE_URL / BUILD_URL")
    mark.add_argument("--actor", default=None,
                      help="default: GITHUB_ACTOR / GITLAB_USER_LOGIN / BUILD_USER_ID; outside CI $USER")
    mark.add_argument("--sites", default=None, help="marketplace sites this deploy touches, e.g. US,DE")
    mark.add_argument("--notes", default=None)
    mark.add_argument("--timestamp", default=None,
                      help="when the deploy happened (unix seconds or RFC 3339); default: now")
    mark.add_argument("--output", choices=("text", "json"), default="text")
    mark.add_argument("--retries", type=int, default=5,
                      help="times to retry while the exporter's audit log database is down (HTTP 503 with "
                           "Retry-After; nothing was written), waiting 1, 2, 4... s (default 5)")
    _client_options(mark)
    mark.set_defaults(handler=_mark)

    deploys = sub.add_parser("deploys", help="read the deploy audit log (list, export)")
    deploys_sub = deploys.add_subparsers(dest="deploys_command", required=True)
    listing = deploys_sub.add_parser("list", help="the latest deploy markers, newest first")
    _filter_options(listing)
    listing.add_argument("--limit", type=int, default=20, help="rows to show (default 20)")
    listing.add_argument("--format", choices=("table", "csv", "json"), default="table")
    listing.set_defaults(handler=_list)
    export = deploys_sub.add_parser("export", help="every matching marker (all pages), for audits")
    _filter_options(export)
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.set_defaults(handler=_export, limit=None)


def _client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--exporter.url", dest="exporter_url",
                        default=os.environ.get("MARKETPLACE_EXPORTER_URL", DEFAULT_EXPORTER_URL),
                        help=f"default: $MARKETPLACE_EXPORTER_URL or {DEFAULT_EXPORTER_URL}")
    parser.add_argument("--token-env", dest="token_env", default=DEFAULT_TOKEN_ENV,
                        help=f"environment variable holding the Bearer token (default {DEFAULT_TOKEN_ENV})")
    parser.add_argument("--timeout", type=parse_duration, default=10.0, help="per request (default 10s)")


def _filter_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--service", default=None)
    parser.add_argument("--environment", default=None)
    parser.add_argument("--since", type=_since, default=None,
                        help="a duration back from now (24h, 7d), RFC 3339 (2026-11-01T00:00:00+08:00) or unix seconds")
    _client_options(parser)


def _since(raw: str) -> float:
    """``7d`` → now − 7 days; RFC 3339 and unix seconds are taken as they are."""
    try:
        return time.time() - parse_duration(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 24h, 7d, RFC 3339 or unix seconds, got {raw!r}") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{raw!r} needs an offset (Z or +08:00)")
    return parsed.timestamp()


def marker_body(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, Any]:
    """The POST body: flags first, CI variables for what the flags left out."""
    ci = ci_defaults(env)
    body: dict[str, Any] = {"service": args.service, "environment": args.environment, "version": args.version,
                            "status": args.status}
    optional = {"commit": args.commit if args.commit is not None else ci.commit,
                "pipeline_url": args.pipeline_url if args.pipeline_url is not None else ci.pipeline_url,
                "actor": args.actor if args.actor is not None else ci.actor,
                "notes": args.notes}
    body.update({key: value for key, value in optional.items() if value})
    if args.sites:
        body["sites"] = [site.strip() for site in args.sites.split(",") if site.strip()]
    if args.timestamp:
        try:
            body["timestamp"] = float(args.timestamp)
        except ValueError:
            body["timestamp"] = args.timestamp
    return body


def _mark(args: argparse.Namespace) -> int:
    body = marker_body(args, os.environ)

    def call(client: ExporterClient) -> int:
        answer = post_with_retries(client, body, retries=max(0, args.retries))
        if args.output == "json":
            print(json.dumps(answer, ensure_ascii=False, indent=2))
        else:
            deploy = answer["deploy"]
            print(f"recorded deploy #{deploy['id']}: {deploy['service']} {deploy['version']} in "
                  f"{deploy['environment']}, {deploy['status']} at {deploy['deployed_at_iso']}")
        for warning in answer.get("warnings", []):
            print(f"WARNING: {warning}", file=sys.stderr)
        freeze = answer.get("freeze") or {}
        if body["status"] == DeployStatus.STARTED.value and freeze.get("policy") == "block":
            print(f"error: {body['environment']} is in the blocking freeze window {freeze.get('name')!r} "
                  "(大促封网): the 'started' marker is recorded, do not deploy (exit 3)", file=sys.stderr)
            return EXIT_FROZEN
        return 0

    return _with_client(args, call)


def post_with_retries(client: ExporterClient, body: dict[str, Any], *, retries: int,
                      sleep: Callable[[float], None] = time.sleep) -> Any:
    """POST the marker; while the exporter answers 503 with ``Retry-After`` (its audit log database
    is down and nothing was written, so a retry cannot record the marker twice), wait 1, 2, 4... s
    (at most 30) and try again. Other refusals and an unreachable exporter are not retried here."""
    for attempt in range(retries + 1):
        try:
            return client.post(PATH, body)
        except ExporterRefused as exc:
            if exc.status != 503 or exc.retry_after is None or attempt == retries:
                raise
            pause = min(30.0, float(2 ** attempt))
            print(f"WARNING: {exc}; retrying in {pause:g}s ({attempt + 1}/{retries})", file=sys.stderr, flush=True)
            sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover


def _list(args: argparse.Namespace) -> int:
    def call(client: ExporterClient) -> int:
        rows = list(_pages(client, args, limit=max(1, args.limit)))
        if args.format == "table":
            _write_table(rows, sys.stdout)
        else:
            _write(rows, args.format, sys.stdout)
        return 0

    return _with_client(args, call)


def _export(args: argparse.Namespace) -> int:
    def call(client: ExporterClient) -> int:
        _write(_pages(client, args, limit=None), args.format, sys.stdout)
        return 0

    return _with_client(args, call)


def _with_client(args: argparse.Namespace, call: Callable[[ExporterClient], int]) -> int:
    try:
        with ExporterClient(args.exporter_url, token_env=args.token_env, timeout=args.timeout) as client:
            return call(client)
    except ExporterRefused as exc:
        hint = f" (is {args.token_env} set to the exporter's token?)" if exc.status in (401, 403) else ""
        print(f"error: {exc}{hint}", file=sys.stderr)
        # a database outage is like an unreachable exporter: nothing recorded, nothing wrong with the marker
        return EXIT_UNREACHABLE if exc.retry_after is not None else EXIT_REFUSED
    except ExporterUnreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE


def _pages(client: ExporterClient, args: argparse.Namespace, limit: int | None) -> Iterator[dict[str, Any]]:
    """Rows newest first, following ``next_before`` until ``limit`` rows or the end of the log."""
    params: dict[str, Any] = {key: value for key, value in (
        ("service", args.service), ("environment", args.environment), ("since", args.since)) if value is not None}
    remaining = limit
    while True:
        params["limit"] = 1000 if remaining is None else min(remaining, 1000)
        page = client.get(PATH, params=params)
        yield from page["deploys"]
        if remaining is not None:
            remaining -= len(page["deploys"])
            if remaining <= 0:
                return
        if page.get("next_before") is None:
            return
        params["before"] = page["next_before"]


def _write(rows: Iterable[dict[str, Any]], fmt: str, out: TextIO) -> None:
    """CSV (one header, a row per marker) or a JSON array, written as the pages arrive."""
    if fmt == "json":
        out.write("[")
        for index, row in enumerate(rows):
            out.write(("," if index else "") + "\n  " + json.dumps(row, ensure_ascii=False))
        out.write("\n]\n")
        return
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_csv_cell(column, row.get(column)) for column in CSV_COLUMNS])


def _csv_cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column == "sites":
        return " ".join(value)
    text = str(value)
    # free text opened in a spreadsheet must not run as a formula (CSV injection)
    if column in ("actor", "notes", "pipeline_url") and text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _write_table(rows: list[dict[str, Any]], out: TextIO) -> None:
    if not rows:
        out.write("no deploy markers match\n")
        return
    cells = [[_table_cell(key, row) for _, key in _TABLE] for row in rows]
    widths = [max(len(title), *(len(line[i]) for line in cells)) for i, (title, _) in enumerate(_TABLE)]
    for line in [[title for title, _ in _TABLE], *cells]:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() + "\n")


def _table_cell(key: str, row: dict[str, Any]) -> str:
    value = row.get(key)
    if value is None or value == "":
        return "-"
    if key == "commit":
        return str(value)[:10]
    if key == "deployed_at_iso":
        return datetime.fromtimestamp(row["deployed_at"], UTC).strftime("%Y-%m-%d %H:%M:%S")
    if key == "freeze":
        return f"{value} ({row.get('freeze_policy')})"
    return str(value)


__all__ = ["CSV_COLUMNS", "add_commands", "marker_body"]
