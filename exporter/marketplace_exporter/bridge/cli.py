"""Bridge subcommands::

    marketplace-exporter bridge --config.file=bridge.yml [--web.listen-address=0.0.0.0:9762]
    marketplace-exporter bridge --config.file=bridge.yml --check      (validate and exit 0/1)
    marketplace-exporter alerts history --config.file=bridge.yml [--since 7d] [--format table|json]
                                        [--receiver NAME] [--storage.path FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import datetime

from marketplace_exporter.durations import parse_duration

# aiohttp and the config loader are imported by the handlers: building the command line (which every
# CLI command does, `deploy mark` in a pipeline included) must not pay for them


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    bridge = sub.add_parser("bridge", help="Alertmanager webhook → DingTalk / WeCom / Feishu bridge")
    bridge.add_argument("--config.file", dest="config_file", required=True,
                        help="bridge.yml: receivers, robots, auth, outbox (deploy/bridge.yml is an example)")
    bridge.add_argument("--web.listen-address", dest="listen", default="0.0.0.0:9762",
                        help="HOST:PORT for Alertmanager's webhooks and /metrics (default 0.0.0.0:9762)")
    bridge.add_argument("--check", action="store_true", help="validate the config file and exit")
    bridge.set_defaults(handler=_bridge)

    alerts = sub.add_parser("alerts", help="the bridge's alert archive (告警记录归档)")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True)
    history = alerts_sub.add_parser("history", help="what was sent to which chat, when, and what failed")
    history.add_argument("--config.file", dest="config_file", help="bridge.yml (to find the outbox file)")
    history.add_argument("--storage.path", dest="storage_path", help="the outbox SQLite file (overrides the config)")
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
    from marketplace_exporter.listening import start_site
    from marketplace_exporter.serving import until_stopped

    config = _load(args.config_file)
    if not isinstance(config, BridgeConfig):
        return 1
    if args.check:
        auth = config.auth
        who = ("webhooks accepted from ANYONE (auth.anonymous: true)" if auth.anonymous
               else "webhooks need a " + " or ".join(kind for kind, on in (("bearer token", auth.bearer_token),
                                                                         ("basic auth", auth.basic)) if on is not None))
        print(f"{args.config_file}: valid, {len(config.receivers)} receiver(s); {who}")
        for name, receiver in sorted(config.receivers.items()):
            print(f"  {name}: {receiver.channel}, {receiver.language}, {receiver.timezone.key}, "
                  f"{receiver.per_minute:g}/min{', signed' if receiver.secret else ''}")
        return 0

    async def serve() -> None:
        app = create_bridge_app(args.config_file, config)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            host, port = await start_site(runner, args.listen, "--web.listen-address")
            shown = "127.0.0.1" if host == "0.0.0.0" else host
            print(f"bridge: POST http://{shown}:{port}/alertmanager/<receiver>  metrics http://{shown}:{port}/metrics",
                  flush=True)
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
