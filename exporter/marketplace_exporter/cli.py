"""``marketplace-exporter`` command line (Prometheus-style flags). Parses flags and calls into the
package; no logic of its own beyond wiring and signal handling.

    marketplace-exporter run --config.file=FILE [--web.listen-address=0.0.0.0:9761] [--storage.path=data]
                             [--web.config.file=web.yml] [--web.enable-lifecycle] [--web.external-url=URL]
                             [--web.route-prefix=/path] [--shard=N|auto --total-shards=N]
    marketplace-exporter demo [--web.listen-address=127.0.0.1:9761] [--simulator.listen-address=127.0.0.1:9763]
                              [--storage.path=DIR] [--web.* as for run]
    marketplace-exporter simulate [--web.listen-address=127.0.0.1:9763]
    marketplace-exporter check-config [FILE] [--syntax-only] [--web.config.file=web.yml] [--total-shards=N]
    marketplace-exporter config-schema

Every command also takes --log.level=debug|info|warn|error and --log.format=logfmt|json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from importlib import import_module, resources
from pathlib import Path
from typing import TYPE_CHECKING

from marketplace_exporter import __version__
from marketplace_exporter.log_format import add_log_flags_everywhere
from marketplace_exporter.serving import listen_address, setup_logging, until_stopped
from marketplace_exporter.webserver.options import WebOptions, add_web_flags, web_options

if TYPE_CHECKING:
    from aiohttp import web

    from marketplace_exporter.server import ConfigSource
    from marketplace_exporter.shard import Shard

# The config loader (every adapter, pydantic) and the server (aiohttp, prometheus_client) are imported
# inside the handlers that need them: a pipeline step such as `deploy mark` or `verify` then starts in
# a fraction of the time (tests/unit/test_cli_startup.py pins which modules a client command loads).

log = logging.getLogger("marketplace_exporter")

#: modules that add subcommands: each has ``add_commands(sub: argparse._SubParsersAction) -> None``
#: and keeps its own handlers (the deploy client, the verify gate, the bridge, ...)
COMMAND_MODULES: tuple[str, ...] = (
    "marketplace_exporter.deploys.verify_cli",
    "marketplace_exporter.deploys.cli",
    "marketplace_exporter.bridge.cli",
    "marketplace_exporter.assets",
    "marketplace_exporter.mixin.cli",
)

DEMO_SIMULATOR = "http://127.0.0.1:9763"

#: what `marketplace-exporter --help` says first (the module docstring's first line is cut mid-sentence)
DESCRIPTION = ("Prometheus exporter for marketplace seller APIs (Amazon SP-API, eBay, Shopee, Lazada, Walmart, "
               "TikTok Shop, AliExpress, Mercado Libre, Wish, Temu, Ozon), with deploy markers, the post-deploy "
               "gate and the Alertmanager to chat-robot bridge. `marketplace-exporter COMMAND --help` describes "
               "each command; README.md and docs/ use the same names (中文文档: README.zh-CN.md).")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    try:
        return int(args.handler(args))
    except BrokenPipeError:
        # `deploys export | head`, `alerts history --format=json | less` closed early: the reader got
        # what it wanted, so no traceback; stdout goes to /dev/null so the interpreter's final flush
        # cannot raise again (the recipe in Python's signal module docs)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="marketplace-exporter", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="probe the configured marketplaces and serve /metrics")
    run.add_argument("--config.file", dest="config_file", metavar="FILE", required=True,
                     help="the YAML config (docs/configuration.md)")
    run.add_argument("--web.listen-address", dest="listen", metavar="HOST:PORT", default="0.0.0.0:9761",
                     help="HOST:PORT to serve /, /metrics, /probe and the APIs on (default 0.0.0.0:9761)")
    run.add_argument("--storage.path", dest="storage_path", metavar="DIR", default="data",
                     help="directory for the deploy audit log (deploys.sqlite); created if missing "
                          "(default ./data, like Prometheus)")
    _storage_url_option(run)
    add_web_flags(run)
    run.add_argument("--shard", metavar="N|auto", default="0",
                     help="probe only the accounts of shard N (0-based) of --total-shards; 'auto': N from the "
                          "StatefulSet pod name NAME-N ($POD_NAME, else the host name) (docs/kubernetes.md)")
    run.add_argument("--total-shards", dest="total_shards", metavar="N", default=None,
                     help="how many shards the accounts are split over "
                          "(default $MARKETPLACE_EXPORTER_TOTAL_SHARDS, else 1: not sharded)")
    run.set_defaults(handler=_run)

    demo = sub.add_parser("demo", help="simulator + exporter with the built-in demo config")
    demo.add_argument("--web.listen-address", dest="listen", metavar="HOST:PORT", default="127.0.0.1:9761",
                      help="the exporter's HOST:PORT (default 127.0.0.1:9761)")
    demo.add_argument("--simulator.listen-address", dest="sim_listen", metavar="HOST:PORT", default="127.0.0.1:9763",
                      help="the simulator's HOST:PORT (default 127.0.0.1:9763)")
    demo.add_argument("--storage.path", dest="storage_path", metavar="DIR", default=None,
                      help="directory for the deploy audit log (default: a fresh temporary directory, "
                           "removed on exit)")
    _storage_url_option(demo)
    add_web_flags(demo)
    demo.set_defaults(handler=_demo)

    simulate = sub.add_parser("simulate", help="the marketplace simulator alone")
    simulate.add_argument("--web.listen-address", dest="listen", metavar="HOST:PORT", default="127.0.0.1:9763",
                          help="HOST:PORT (default 127.0.0.1:9763)")
    simulate.set_defaults(handler=_simulate)

    check = sub.add_parser("check-config", help="validate a config file: exit 0 valid, 1 invalid")
    check.add_argument("file", nargs="?", metavar="FILE",
                       help="the exporter's config (optional with --web.config.file)")
    check.add_argument("--syntax-only", action="store_true",
                       help="check structure, types and references only: secrets' environment variables may be "
                            "unset and secret, token, certificate and CA files missing (a CI lint)")
    check.add_argument("--web.config.file", dest="web_config_file", metavar="FILE", default=None,
                       help="also validate this web config (TLS and basic auth, exporter-toolkit format)")
    check.add_argument("--total-shards", dest="total_shards", metavar="N", type=int, default=1,
                       help="also print which of N shards probes each check, and how many each gets")
    check.set_defaults(handler=_check_config)

    schema = sub.add_parser("config-schema", help="print the config's JSON Schema (for editors)")
    schema.set_defaults(handler=_config_schema)
    for module in COMMAND_MODULES:
        import_module(module).add_commands(sub)
    add_log_flags_everywhere(parser)  # after every subcommand exists: `run --log.level=debug` works too
    return parser


def _config_schema(args: argparse.Namespace) -> int:
    from marketplace_exporter.config import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def _check_config(args: argparse.Namespace) -> int:
    """Validate the file and every accounts file it names (all errors at once), and the web config."""
    from marketplace_exporter.secrets import syntax_only
    from marketplace_exporter.shard import Shard, ShardError

    if args.file is None and args.web_config_file is None:
        print("check-config: give a config file, --web.config.file=FILE, or both", file=sys.stderr)
        return 2
    try:
        shard = Shard(0, args.total_shards)
    except ShardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with syntax_only() if args.syntax_only else contextlib.nullcontext():
        code = _check_web_config(args.web_config_file, args.syntax_only) if args.web_config_file else 0
        if args.file is not None:
            code = max(code, _check_exporter_config(args.file, args.syntax_only, shard))
    return code


def _check_web_config(path: str, syntax_only: bool) -> int:
    from marketplace_exporter.config.yaml_loading import ConfigError
    from marketplace_exporter.webserver.config import load_web_config
    from marketplace_exporter.webserver.tls import build_context

    try:
        config = load_web_config(path)
        if config.tls is not None and not syntax_only:
            build_context(config)  # the certificate, key and client CA load and match
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        print(f"{path}: {len(exc.errors)} error(s)", file=sys.stderr)
        return 1
    print(f"{path}: valid web config: {'TLS' if config.tls else 'no TLS'}, {len(config.users)} basic auth user(s)"
          + (" (syntax only: certificate files not read)" if syntax_only and config.tls else ""))
    return 0


def _check_exporter_config(path: str, syntax_only: bool, shard: Shard) -> int:
    """``shard`` (of ``--total-shards``): with more than one, each check's shard and the counts."""
    from marketplace_exporter.config import ConfigError, load_config
    from marketplace_exporter.config.accounts_files import AccountsFiles

    files = AccountsFiles(quiet=True)
    try:
        config = load_config(path, accounts=files, strict_accounts=True)
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        print(f"{path}: {len(exc.errors)} error(s)", file=sys.stderr)
        return 1
    note = " (syntax only: secrets, token files and CA files not read)" if syntax_only else ""
    print(f"{path}: valid, {len(config.checks)} checks{note}")
    if config.accounts_files.patterns:
        print(f"  accounts files: {files.files_ok} valid, {len(files.file_checks)} checks")
    owners = [shard.owner(check) for check in config.checks]
    for check, owner in zip(config.checks, owners, strict=True):
        where = f"  shard {owner}" if shard.sharded else ""
        print(f"  {check.id}  every {check.interval:g}s, timeout {check.timeout:g}s{where}")
    if shard.sharded:
        for ordinal in range(shard.total):
            print(f"  shard {ordinal} of {shard.total}: {owners.count(ordinal)} checks")
    return 0


def _storage_url_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage.url", dest="storage_url", metavar="URL", default=None,
                        help="the deploy audit log instead of --storage.path: sqlite:///FILE, or "
                             "postgresql://USER@HOST:5432/DB shared by several replicas (docs/deploys.md)")


def _run(args: argparse.Namespace) -> int:
    from marketplace_exporter.server import ConfigSource
    from marketplace_exporter.shard import ShardError, parse_shard

    try:
        shard = parse_shard(args.shard, args.total_shards)
    except ShardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return _serve_exporter(ConfigSource(args.config_file), args.listen, simulator=None,
                           storage_path=args.storage_url or args.storage_path, web_options=web_options(args),
                           shard=shard)


def demo_config_path() -> str:
    return str(resources.files("marketplace_exporter") / "examples" / "demo.yml")


def _demo(args: argparse.Namespace) -> int:
    if args.storage_path is not None:
        return _demo_in(args, args.storage_path)
    with tempfile.TemporaryDirectory(prefix="marketplace-exporter-demo-", ignore_cleanup_errors=True) as storage:
        print(f"demo: deploy audit log in the temporary directory {storage} (removed on exit; "
              "--storage.path keeps it)", flush=True)
        return _demo_in(args, storage)


def _demo_in(args: argparse.Namespace, storage: str) -> int:
    """The simulator (with its ERP stand-in writing the held tokens' files into ``storage``, as a
    seller's ERP does) and the exporter reading the demo config, pointed at both. The audit log goes
    to ``--storage.url`` when given, else into ``storage``."""
    from marketplace_exporter.server import ConfigSource
    from marketplace_exporter.simulator import create_simulator_app
    from marketplace_exporter.simulator.app import ERP

    sim_host, sim_port = listen_address(args.sim_listen)
    sim_url = f"http://{'127.0.0.1' if sim_host in ('0.0.0.0', '') else sim_host}:{sim_port}"
    simulator = create_simulator_app(tokens_dir=Path(storage) / "demo-tokens")
    erp = simulator[ERP]
    print(f"demo: token files (an ERP's, rotated by it) in {erp.directory}", flush=True)
    source = ConfigSource(demo_config_path(),
                          transform=lambda text: erp.use_token_files(text.replace(DEMO_SIMULATOR, sim_url)))
    return _serve_exporter(source, args.listen, simulator=args.sim_listen,
                           storage_path=args.storage_url or storage, simulator_app=simulator,
                           web_options=web_options(args))


def _simulate(args: argparse.Namespace) -> int:
    from aiohttp import web

    from marketplace_exporter.listening import start_site
    from marketplace_exporter.simulator import create_simulator_app

    async def serve() -> None:
        runner = web.AppRunner(create_simulator_app(), access_log=None)
        await runner.setup()
        host, port = await start_site(runner, args.listen, "--web.listen-address")
        print(f"simulator listening on http://{host}:{port} (fault API: /__sim/faults)", flush=True)
        try:
            await until_stopped(on_reload=None)
        finally:
            await runner.cleanup()

    asyncio.run(serve())
    return 0


def _serve_exporter(source: ConfigSource, listen: str, simulator: str | None, storage_path: str | None = None,
                    simulator_app: web.Application | None = None, web_options: WebOptions | None = None,
                    shard: Shard | None = None) -> int:
    from aiohttp import web

    from marketplace_exporter.config import ConfigError
    from marketplace_exporter.listening import start_site
    from marketplace_exporter.server import create_app, schedule_reload
    from marketplace_exporter.webserver.listener import Listener

    try:
        config = source.load()
        listener = Listener.prepare(web_options or WebOptions())
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        return 1
    if storage_path is not None:
        from marketplace_exporter.deploys.log import StorageError, check_storage

        try:
            check_storage(storage_path)
        except StorageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    async def serve() -> None:
        runners: list[web.AppRunner] = []
        try:
            if simulator is not None:
                from marketplace_exporter.simulator import create_simulator_app

                sim_runner = web.AppRunner(simulator_app or create_simulator_app(), access_log=None)
                await sim_runner.setup()
                runners.append(sim_runner)
                await start_site(sim_runner, simulator, "--simulator.listen-address")
            app = create_app(source, config, storage_path=storage_path, shard=shard)
            runner = web.AppRunner(listener.wrap(app), access_log=None)
            runners.append(runner)
            host, port = await listener.start(runner, listen, "--web.listen-address")
            url = listener.url(host, port)
            sharding = "" if shard is None or not shard.sharded else f" ({shard.describe()})"
            print(f"exporter: status page {url}  metrics {url}metrics{sharding}", flush=True)
            if simulator is not None:
                print(f"simulator: http://{simulator}/  inject a fault, e.g.\n"
                      f"  curl -X POST http://{simulator}/__sim/faults -d "
                      "'{\"marketplace\":\"amazon_sp\",\"fault\":\"token_expired\"}'\n"
                      f"  curl -X DELETE http://{simulator}/__sim/faults", flush=True)
            await until_stopped(on_reload=lambda: schedule_reload(app))
        finally:
            for runner in reversed(runners):
                await runner.cleanup()

    asyncio.run(serve())
    return 0
