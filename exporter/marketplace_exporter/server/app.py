"""``create_app(source)``: the exporter's aiohttp application.

Routes::

    GET  /                 status page (summary, filters, one page of checks worst first; phone-friendly)
    GET  /api/v1/checks    the status page's query as JSON (?marketplace=&site=&state=&q=&page=)
    GET  /metrics          Prometheus exposition kept rendered from the store (exposition.py)
    GET  /probe?check=ID   one configured check's result, at most one upstream probe per interval
                           (server/probe_endpoint.py); &debug=true for a redacted trace
    GET  /-/healthy        the process is up
    GET  /-/ready          config loaded and probing
    POST /-/reload         re-read the config file (also SIGHUP); a bad file keeps the old config;
                           only with --web.enable-lifecycle (403 without)

Resources are paired with their teardown in ``cleanup_ctx``: the probe session, then the engine
(torn down in reverse order: probes stop before the session closes).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from marketplace_exporter import __version__, process_metrics, shard_serving
from marketplace_exporter.config import LoadedConfig
from marketplace_exporter.config.source import ConfigSource
from marketplace_exporter.core import Core, Feature
from marketplace_exporter.deploys import api as deploys_api
from marketplace_exporter.deploys import verify_api
from marketplace_exporter.engine import Engine
from marketplace_exporter.engine.transport import CertificateWatcher, new_session, tls_context
from marketplace_exporter.server import accounts_watch, checks_views, probe_endpoint, scrape
from marketplace_exporter.shard import Shard
from marketplace_exporter.store import Store
from marketplace_exporter.traffic import api as traffic_api
from marketplace_exporter.traffic import otlp_api
from marketplace_exporter.webserver.lifecycle import lifecycle_api

log = logging.getLogger(__name__)

CORE = web.AppKey("core", Core)

#: features that add routes and state to the exporter, each installed with ``install(core, app)``
#: (adds routes, cleanup contexts, a collector to ``core.registry``, a reload hook). Imported
#: functions, not module names: a typo fails at import, and no feature imports this module back.
FEATURES: tuple[Feature, ...] = (
    process_metrics.install,
    accounts_watch.install,
    shard_serving.install,
    deploys_api.install,
    verify_api.install,
    traffic_api.install,
    otlp_api.install,  # after traffic_api: it feeds that aggregator
)


#: features that take writes: with shards, shard 0 alone takes deploy markers and traffic reports (their
#: series and audit log then exist once; the others answer 421 naming it), and no shard runs the
#: embedded verify gate, which would judge one shard's accounts only (409: use verify --prometheus.url)
SHARD_ZERO_FEATURES: tuple[Feature, ...] = (deploys_api.install, traffic_api.install, otlp_api.install)
UNSHARDED_FEATURES: tuple[Feature, ...] = (verify_api.install,)


def create_app(source: ConfigSource, initial: LoadedConfig, *, storage_path: str | None = None,
               shard: Shard | None = None) -> web.Application:
    """Build the app for an already validated ``initial`` config (the CLI validates first so a bad
    file fails fast with its errors, before anything listens). ``shard``: probe only its accounts."""
    app = web.Application(middlewares=[_server_header])
    store = Store()
    core = Core(source=source, initial=initial, store=store, registry=scrape.feature_registry(),
                storage_path=storage_path, shard=shard or Shard())
    app[CORE] = core
    app.cleanup_ctx.append(_engine_ctx)
    checks_views.install(core, app)  # GET / and /api/v1/checks
    scrape.install(core, app)  # GET /metrics: the store's families, then the features' collectors
    app.router.add_get("/probe", functools.partial(probe_endpoint.probe, core))
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_post("/-/reload", lifecycle_api(reload_handler))
    shard = core.shard
    for install in FEATURES:
        if shard.sharded and (install in UNSHARDED_FEATURES or shard.ordinal and install in SHARD_ZERO_FEATURES):
            continue
        install(core, app)
    if shard.sharded:
        shard_serving.refuse(app, [verify_api.PATH], shard_serving.gate_elsewhere(shard), 409)
    if shard.ordinal:
        shard_serving.refuse(app, [deploys_api.PATH, traffic_api.ROUTE, otlp_api.TRACES_ROUTE],
                             shard_serving.writes_elsewhere(shard), 421)
    return app


async def _engine_ctx(app: web.Application) -> AsyncIterator[None]:
    core = app[CORE]
    initial = core.initial
    context = tls_context(initial.ca_file)
    async with new_session(limit=max(initial.concurrency, 16), context=context) as session:
        engine = Engine(session, core.store, certificates=CertificateWatcher(context))
        core.start(engine)
        log.info("probing %d checks from %s%s", len(initial.checks), initial.path, core.probing_note())
        try:
            yield
        finally:
            await engine.stop()
            core.stop()


def reload_config(app: web.Application) -> tuple[bool, str]:
    """Re-read the config. On error the running config stays and the reason is logged/returned."""
    return app[CORE].reload()


def schedule_reload(app: web.Application) -> None:
    """SIGHUP: reload with the file reading off the event loop (the outcome is logged)."""
    task = asyncio.get_running_loop().create_task(app[CORE].reload_off_loop())
    _RELOADS.add(task)
    task.add_done_callback(_RELOADS.discard)


#: reloads in flight (a task nobody references may be garbage-collected before it runs)
_RELOADS: set[asyncio.Task[tuple[bool, str]]] = set()


@web.middleware
async def _server_header(request: web.Request, handler: Callable[..., object]) -> web.StreamResponse:
    response: web.StreamResponse = await handler(request)  # type: ignore[misc]
    response.headers["Server"] = f"marketplace-exporter/{__version__}"
    return response


async def healthy(request: web.Request) -> web.Response:
    return web.Response(text="Healthy\n")


async def ready(request: web.Request) -> web.Response:
    if request.app[CORE].started:
        return web.Response(text="Ready\n")
    return web.Response(status=503, text="Not ready\n")


async def reload_handler(request: web.Request) -> web.Response:
    ok, message = await request.app[CORE].reload_off_loop()
    return web.Response(status=200 if ok else 400, text=message + "\n")


__all__ = ["CORE", "FEATURES", "ConfigSource", "create_app", "reload_config", "schedule_reload"]
