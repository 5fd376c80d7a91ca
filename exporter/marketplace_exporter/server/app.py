"""``create_app(source)``: the exporter's aiohttp application.

Routes::

    GET  /                 status page (summary, filters, one page of checks worst first; phone-friendly)
    GET  /api/v1/checks    the status page's query as JSON (?marketplace=&site=&state=&q=&page=)
    GET  /metrics          Prometheus exposition kept rendered from the store (exposition.py)
    GET  /probe?check=ID   run one configured check now; &debug=true for a redacted trace
    GET  /-/healthy        the process is up
    GET  /-/ready          config loaded and probing
    POST /-/reload         re-read the config file (also SIGHUP); a bad file keeps the old config

Resources are paired with their teardown in ``cleanup_ctx``: the probe session, then the engine
(torn down in reverse order: probes stop before the session closes).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from importlib import import_module

from aiohttp import web
from prometheus_client import CollectorRegistry

from marketplace_exporter import __version__
from marketplace_exporter.config import ConfigError, LoadedConfig, load_config
from marketplace_exporter.engine import Engine, QuotaWait
from marketplace_exporter.engine.transport import CertificateWatcher, new_session, tls_context
from marketplace_exporter.exposition import Exposition
from marketplace_exporter.server import checks_views, scrape
from marketplace_exporter.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConfigSource:
    """Where the config comes from. ``transform`` rewrites the text before parsing (the demo points
    its built-in config at wherever the simulator listens)."""

    path: str
    transform: Callable[[str], str] | None = field(default=None, compare=False)

    def load(self) -> LoadedConfig:
        if self.transform is None:
            return load_config(self.path)
        try:
            with open(self.path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise ConfigError([f"{self.path}: cannot read config file: {exc.strerror}"]) from None
        return load_config(self.path, text=self.transform(text))


SOURCE = web.AppKey("source", ConfigSource)
STORE = web.AppKey("store", Store)
ENGINE = web.AppKey("engine", Engine)
REGISTRY = web.AppKey("registry", CollectorRegistry)
INITIAL = web.AppKey("initial_config", LoadedConfig)
#: directory for the exporter's SQLite files (``--storage.path``); None: nothing persisted
STORAGE_PATH = web.AppKey("storage_path", str)

#: modules that add routes and state to the exporter: each has ``install(app: web.Application) -> None``
#: (reads ``app[INITIAL]``/``app[STORAGE_PATH]``, adds routes, cleanup contexts and a collector to
#: ``app[REGISTRY]``). Listed here so the core app stays small and each feature owns its module.
EXTENSIONS: tuple[str, ...] = (
    "marketplace_exporter.deploys.api",
    "marketplace_exporter.deploys.verify_api",
    "marketplace_exporter.traffic.api",
)
#: called with the new config after every successful reload (extensions append to it in ``install``)
RELOAD_HOOKS = web.AppKey("reload_hooks", list[Callable[[LoadedConfig], None]])


def create_app(source: ConfigSource, initial: LoadedConfig, *, storage_path: str | None = None) -> web.Application:
    """Build the app for an already validated ``initial`` config (the CLI validates first so a bad
    file fails fast with its errors, before anything listens)."""
    app = web.Application(middlewares=[_server_header])
    if storage_path is not None:
        app[STORAGE_PATH] = storage_path
    store = Store()
    app[SOURCE] = source
    app[STORE] = store
    app[REGISTRY] = scrape.feature_registry(store)
    app[INITIAL] = initial
    app[RELOAD_HOOKS] = []
    app.cleanup_ctx.append(_engine_ctx)
    checks_views.install(app, store)
    scrape.install(app, store, app[REGISTRY])
    app.router.add_get("/probe", probe)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_post("/-/reload", reload_handler)
    for module in EXTENSIONS:
        import_module(module).install(app)
    return app


async def _engine_ctx(app: web.Application) -> AsyncIterator[None]:
    initial = app[INITIAL]
    context = tls_context(initial.ca_file)
    async with new_session(limit=max(initial.concurrency, 16), context=context) as session:
        engine = Engine(session, app[STORE], certificates=CertificateWatcher(context))
        app[ENGINE] = engine
        engine.apply(initial)
        app[STORE].mark_reload(True, time.time())
        log.info("probing %d checks from %s", len(initial.checks), initial.path)
        try:
            yield
        finally:
            await engine.stop()


def reload_config(app: web.Application) -> tuple[bool, str]:
    """Re-read the config. On error the running config stays and the reason is logged/returned."""
    try:
        config = app[SOURCE].load()
    except ConfigError as exc:
        app[STORE].mark_reload(False, time.time())
        log.error("config reload failed, keeping the previous config:\n%s", exc)
        return False, str(exc)
    app[ENGINE].apply(config)
    for hook in app[RELOAD_HOOKS]:
        hook(config)
    app[STORE].mark_reload(True, time.time())
    log.info("config reloaded: %d checks", len(config.checks))
    return True, f"reloaded {len(config.checks)} checks"


@web.middleware
async def _server_header(request: web.Request, handler: Callable[..., object]) -> web.StreamResponse:
    response: web.StreamResponse = await handler(request)  # type: ignore[misc]
    response.headers["Server"] = f"marketplace-exporter/{__version__}"
    return response


async def probe(request: web.Request) -> web.Response:
    check_id = request.query.get("check", "")
    engine = request.app[ENGINE]
    if not check_id or engine.spec(check_id) is None:
        known = "\n".join(sorted(request.app[STORE].check_ids()))
        return web.Response(status=404 if check_id else 400,
                            text=f"unknown or missing ?check=; configured checks:\n{known}\n")
    debug = request.query.get("debug", "").lower() in ("1", "true", "yes")
    result = await engine.probe_now(check_id, debug=debug)
    if isinstance(result, QuotaWait):
        seconds = math.ceil(result.seconds)
        return web.Response(status=429, headers={"Retry-After": str(seconds)},
                            text=f"quota budget for {check_id} is spent; next probe possible in {seconds}s\n")
    if result is None:
        return web.Response(status=404, text="check disappeared during a reload\n")
    if debug:
        return web.Response(text="\n".join(result.debug) + "\n")
    # the probe's own metrics, blackbox-style: a throwaway store holding just this probe
    spec = engine.spec(check_id)
    assert spec is not None
    one = Store()
    one.reconcile((spec,))
    one.record(spec, result, None)
    output = Exposition(one).render()
    return web.Response(body=output, content_type="text/plain", charset="utf-8")


async def healthy(request: web.Request) -> web.Response:
    return web.Response(text="Healthy\n")


async def ready(request: web.Request) -> web.Response:
    if ENGINE in request.app and request.app[ENGINE].config is not None:
        return web.Response(text="Ready\n")
    return web.Response(status=503, text="Not ready\n")


async def reload_handler(request: web.Request) -> web.Response:
    ok, message = reload_config(request.app)
    return web.Response(status=200 if ok else 400, text=message + "\n")


__all__ = ["ConfigSource", "create_app", "reload_config"]
