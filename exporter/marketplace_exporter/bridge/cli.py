"""Bridge subcommands::

    marketplace-exporter bridge --config.file=bridge.yml [--web.listen-address=0.0.0.0:9762]
    marketplace-exporter bridge --config.file=bridge.yml --check [--syntax-only]   (validate and exit 0/1)
    marketplace-exporter alerts history --config.file=bridge.yml [--since 7d] [--format table|json]
                                        [--receiver NAME] [--storage.path FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from datetime import datetime

from marketplace_exporter.durations import parse_duration
from marketplace_exporter.webserver.options import add_web_flags, web_options

# aiohttp and the config loader are imported by the handlers: building the command line (which every
# CLI command does, `deploy mark` in a pipeline included) must not pay for them


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    bridge = sub.add_parser("bridge", help="the alert bridge: Alertmanager webhooks → DingTalk, WeCom, Feishu/Lark "
                                           "robots or any JSON webhook (docs/bridge.md)")
    bridge.add_argument("--config.file", dest="config_file", metavar="FILE", required=True,
                        help="bridge.yml: receivers, robots, auth, outbox (deploy/bridge.yml is an example)")
    bridge.add_argument("--web.listen-address", dest="listen", metavar="HOST:PORT", default="0.0.0.0:9762",
                        help="HOST:PORT for Alertmanager's webhooks and /metrics (default 0.0.0.0:9762)")
    bridge.add_argument("--check", action="store_true", help="validate the config file and exit")
    bridge.add_argument("--syntax-only", action="store_true",
                        help="with --check: robot URLs' and tokens' environment variables may be unset and secret "
                             "files missing (a CI lint); also skips reading the web config's certificates")
    add_web_flags(bridge)
    bridge.set_defaults(handler=_bridge)

    alerts = sub.add_parser("alerts", help="the bridge's alert archive (告警记录归档)")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True)
    history = alerts_sub.add_parser("history", help="what was sent to which chat, when, and what failed")
    history.add_argument("--config.file", dest="config_file", metavar="FILE",
                         help="bridge.yml (to find the outbox file)")
    history.add_argument("--storage.path", dest="storage_path", metavar="FILE",
                         help="the outbox SQLite file (overrides the config)")
    history.add_argument("--since", default="7d", help="how far back, e.g. 2h, 7d (default 7d)")
    history.add_argument("--receiver", action="append", default=[], help="only this receiver (repeatable)")
    history.add_argument("--format", choices=["table", "json"], default="table")
    history.set_defaults(handler=_history)


def _load(path: str) -> object:
    from marketplace_exporter.bridge.config import load_bridge_config
    from marketplace_exporter.config.yaml_loading import ConfigError

    try:
        return load_bridge_config(path)
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        print(f"{path}: {len(exc.errors)} error(s)", file=sys.stderr)
        return None


def _bridge(args: argparse.Namespace) -> int:
    from aiohttp import web

    from marketplace_exporter.bridge.app import create_bridge_app, reload_bridge
    from marketplace_exporter.bridge.config import BridgeConfig
    from marketplace_exporter.config.yaml_loading import ConfigError
    from marketplace_exporter.secrets import syntax_only
    from marketplace_exporter.serving import until_stopped
    from marketplace_exporter.webserver.config import load_web_config
    from marketplace_exporter.webserver.listener import Listener

    if args.syntax_only and not args.check:
        print("bridge: --syntax-only needs --check (a bridge cannot run without its secrets)", file=sys.stderr)
        return 2
    with syntax_only() if args.syntax_only else contextlib.nullcontext():
        config = _load(args.config_file)
    if not isinstance(config, BridgeConfig):
        return 1
    options = web_options(args)
    listener: Listener | None = None
    try:
        if not args.syntax_only:
            listener = Listener.prepare(options)  # reads the certificates too
        elif options.config_file is not None:
            load_web_config(options.config_file)
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        print(f"{options.config_file}: {len(exc.errors)} error(s)", file=sys.stderr)
        return 1
    if args.check:
        auth = config.auth
        who = ("webhooks accepted from ANYONE (auth.anonymous: true)" if auth.anonymous
               else "webhooks need a " + " or ".join(kind for kind, on in (("bearer token", auth.bearer_token),
                                                                         ("basic auth", auth.basic)) if on is not None))
        note = " (syntax only: secrets not read)" if args.syntax_only else ""
        print(f"{args.config_file}: valid, {len(config.receivers)} receiver(s); {who}{note}")
        for name, receiver in sorted(config.receivers.items()):
            print(f"  {name}: {receiver.channel}, {receiver.language}, {receiver.timezone.key}, "
                  f"{receiver.per_minute:g}/min{', signed' if receiver.secret else ''}")
        return 0
    assert listener is not None

    async def serve() -> None:
        assert listener is not None
        app = create_bridge_app(args.config_file, config)
        runner = web.AppRunner(listener.wrap(app), access_log=None)
        try:
            host, port = await listener.start(runner, args.listen, "--web.listen-address")
            url = listener.url(host, port)
            print(f"bridge: POST {url}alertmanager/<receiver>  metrics {url}metrics", flush=True)
            await until_stopped(on_reload=lambda: reload_bridge(app))
        finally:
            await runner.cleanup()

    asyncio.run(serve())
    return 0


def _history(args: argparse.Namespace) -> int:
    from pathlib import Path

    from marketplace_exporter.bridge.config import outbox_path
    from marketplace_exporter.bridge.outbox import dump_json, history
    from marketplace_exporter.config.yaml_loading import ConfigError

    path = args.storage_path
    if path is None:
        if args.config_file is None:
            print("alerts history: give --config.file=bridge.yml or --storage.path=FILE", file=sys.stderr)
            return 2
        try:
            # only the outbox's location: reading the archive needs none of the robots' secrets
            path = outbox_path(args.config_file)
        except ConfigError as exc:
            for line in exc.errors:
                print(line, file=sys.stderr)
            print(f"{args.config_file}: {len(exc.errors)} error(s)", file=sys.stderr)
            return 1
    if not Path(path).is_file():
        print(f"alerts history: no outbox at {path} (has the bridge run with this config?)", file=sys.stderr)
        return 1
    try:
        since = time.time() - parse_duration(args.since)
    except ValueError as exc:
        print(f"alerts history: --since: {exc}", file=sys.stderr)
        return 2
    rows = history(path, since, args.receiver)
    if args.format == "json":
        print(dump_json(rows))
        return 0
    print(f"{'accepted':19}  {'receiver':18} {'status':8} {'alertname':32} {'state':7} {'delivered':19}  detail")
    for row in rows:
        message = row["message"] or {}
        done = _when(row["done_at"]) if row["done_at"] else "-"
        detail = row["error"] or (f"code {message.get('code')}" if message.get("code") else "")
        if message and message.get("notifications", 1) > 1:
            detail = (detail + " " if detail else "") + f"merged x{message['notifications']}"
        print(f"{_when(row['accepted_at']):19}  {row['receiver'][:18]:18} {row['status']:8} "
              f"{row['alertname'][:32]:32} {row['state']:7} {done:19}  {detail}")
    queued = sum(1 for row in rows if row["state"] == "queued")
    failed = sum(1 for row in rows if row["state"] == "failed")
    print(f"{len(rows)} notification(s) since {args.since}: {queued} queued, {failed} failed")
    return 0


def _when(ts: float) -> str:
    # with the UTC offset: an archive read during an incident review is compared across time zones
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")
