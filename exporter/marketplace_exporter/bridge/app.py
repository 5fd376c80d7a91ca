"""``create_bridge_app(path, config)``: the bridge's aiohttp application.

Routes::

    POST /alertmanager/{receiver}   Alertmanager webhook v4 → durable outbox → robot
    GET  /metrics                   marketplace_bridge_* metrics
    GET  /                          receivers and queue depths (plain text)
    GET  /-/healthy                 the process is up
    GET  /-/ready                   config loaded, outbox open, workers running
    POST /-/reload                  re-read bridge.yml (also SIGHUP); a bad file keeps the old config;
                                    only with --web.enable-lifecycle (403 without), and the
                                    webhook's credentials are required here too

Answers follow Alertmanager's retry rule (it retries 5xx and network errors, never 4xx):
200 once the notification is committed to SQLite (or is an identical resend already committed);
400 for a body that can never be a valid payload (or an Authorization header that is not UTF-8);
401 for bad credentials (required unless ``auth.anonymous: true``, see :mod:`.auth`); 413 for a body over
``max_body_bytes``; 503 when the outbox cannot commit, and for an unknown receiver without a
``fallback_receiver`` (Alertmanager keeps retrying while the ERROR log and the
``receiver="_unknown"`` failure counter tell the operator; a 404 would drop the alert silently).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from marketplace_exporter import __version__
from marketplace_exporter.bridge.alertmanager import PayloadError, parse_notification
from marketplace_exporter.bridge.auth import refusal, warn_if_anonymous
from marketplace_exporter.bridge.collector import new_bridge_registry
from marketplace_exporter.bridge.config import BridgeConfig, load_bridge_config
from marketplace_exporter.bridge.delivery import Delivery
from marketplace_exporter.bridge.outbox import Outbox
from marketplace_exporter.bridge.stats import Stats
from marketplace_exporter.config.yaml_loading import ConfigError
from marketplace_exporter.webserver.lifecycle import lifecycle_api
from marketplace_exporter.webserver.marks import own_credentials
from marketplace_exporter.write_api import json_error, read_json_body

log = logging.getLogger("marketplace_exporter.bridge")

UNKNOWN_RECEIVER = "_unknown"


class BridgeState:
    """Everything the handlers share; ``config`` changes on reload."""

    def __init__(self, path: str, config: BridgeConfig) -> None:
        self.path = path
        self.config = config
        self.stats = Stats()
        self.outbox: Outbox | None = None
        self.delivery: Delivery | None = None
        self.reload_ok = True


STATE = web.AppKey("bridge_state", BridgeState)
REGISTRY = web.AppKey("bridge_registry", CollectorRegistry)


def create_bridge_app(path: str, config: BridgeConfig) -> web.Application:
    """Build the app for an already validated ``config`` (the CLI validates first)."""
    app = web.Application(middlewares=[_server_header])
    state = BridgeState(path, config)
    app[STATE] = state
    app.cleanup_ctx.append(_outbox_ctx)
    app.router.add_post("/alertmanager/{receiver}", _alertmanager)
    app.router.add_post("/alertmanager", _alertmanager)  # a URL missing its receiver: 503/fallback, not 404
    app.router.add_get("/", _index)
    app.router.add_get("/-/healthy", _healthy)
    app.router.add_get("/-/ready", _ready)
    app.router.add_post("/-/reload", lifecycle_api(_reload_handler))
    app.router.add_get("/metrics", _metrics)
    return app


async def _outbox_ctx(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    warn_if_anonymous(state.config.auth, state.path)
    outbox = Outbox(state.config.storage_path)
    removed = outbox.prune(state.config.archive_retention)
    if removed:
        log.info("bridge: pruned %d archived notification(s) older than the retention", removed)
    state.outbox = outbox
    app[REGISTRY] = new_bridge_registry(state.stats, outbox, lambda: state.config)
    delivery = Delivery(state.config, outbox, state.stats)
    await delivery.start()
    state.delivery = delivery
    queued = sum(n for n in outbox.depth.values() if n > 0)
    log.info("bridge: %d receiver(s), outbox %s, %d notification(s) queued from before",
             len(state.config.receivers), state.config.storage_path, queued)
    pruner = asyncio.get_running_loop().create_task(_prune_hourly(state), name="bridge-archive-prune")
    try:
        yield
    finally:
        pruner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pruner
        await delivery.stop()
        outbox.close()


async def _prune_hourly(state: BridgeState) -> None:
    """Keep the archive within ``archive_retention`` while the bridge runs for months."""
    while True:
        await asyncio.sleep(3600)
        if state.outbox is not None:
            try:
                state.outbox.prune(state.config.archive_retention)
            except sqlite3.Error as exc:
                log.warning("bridge: pruning the archive failed: %s", exc)


async def _metrics(request: web.Request) -> web.StreamResponse:
    handler: Callable[[web.Request], object] = make_aiohttp_handler(request.app[REGISTRY])
    response: web.StreamResponse = await handler(request)  # type: ignore[misc]
    return response


def _text(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status)


async def _healthy(request: web.Request) -> web.Response:
    return _text("OK\n")


async def _ready(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if state.outbox is None or state.delivery is None:
        return _text("not ready: outbox not open\n", 503)
    return _text("OK\n")


async def _index(request: web.Request) -> web.Response:
    state = request.app[STATE]
    depth = state.outbox.depth if state.outbox else {}
    lines = [f"marketplace-exporter bridge {__version__}", "",
             f"POST {request.path.rstrip('/')}/alertmanager/<receiver> (Alertmanager webhook v4)", "", "receivers:"]
    for name, receiver in sorted(state.config.receivers.items()):
        lines.append(f"  {name:24} {receiver.channel:9} {receiver.language}  queued={max(0, depth.get(name, 0))}")
    return _text("\n".join(lines) + "\n")


@own_credentials
async def _alertmanager(request: web.Request) -> web.Response:
    state = request.app[STATE]
    config = state.config
    denied = refusal(config.auth, request)
    if denied is not None:
        return denied
    name = request.match_info.get("receiver", "")
    data = await read_json_body(request, config.max_body_bytes)
    try:
        notification = parse_notification(data)
    except PayloadError as exc:
        return json_error(400, str(exc))
    if name not in config.receivers:
        if config.fallback_receiver is None:
            state.stats.failed(UNKNOWN_RECEIVER, "none", "unknown_receiver")
            log.error("bridge: notification for unknown receiver %r (group %s) — answering 503 so Alertmanager "
                      "retries; add the receiver to %s or set fallback_receiver", name[:100],
                      notification.groupKey[:200], state.path)
            return json_error(503, f"unknown receiver {name[:100]!r}; configured: "
                                   f"{', '.join(sorted(config.receivers))}")
        log.warning("bridge: unknown receiver %r: delivering to fallback receiver %s", name[:100],
                    config.fallback_receiver)
        name = config.fallback_receiver
    assert state.outbox is not None and state.delivery is not None
    try:
        nid, duplicate = await state.outbox.accept_soon(name, notification, dedupe_window=config.dedupe_window)
    except sqlite3.Error as exc:
        log.error("bridge: cannot commit notification to the outbox %s: %s", config.storage_path, exc)
        return json_error(503, "outbox unavailable; retry")
    if not duplicate:
        state.delivery.notify(name)
    return web.json_response({"status": "duplicate" if duplicate else "queued", "id": nid, "receiver": name})


def reload_bridge(app: web.Application) -> tuple[bool, str]:
    """Re-read the file. On error the running config stays and the errors are logged/returned."""
    state = app[STATE]
    try:
        config = load_bridge_config(state.path)
    except ConfigError as exc:
        state.reload_ok = False
        log.error("bridge config reload failed, keeping the previous config:\n%s", exc)
        return False, str(exc)
    if config.storage_path != state.config.storage_path:
        log.warning("bridge: storage_path changes need a restart; still using %s", state.config.storage_path)
        config = _with_storage(config, state.config.storage_path)
    state.config = config
    if state.delivery is not None:
        state.delivery.apply(config)
    state.reload_ok = True
    warn_if_anonymous(config.auth, state.path)
    log.info("bridge config reloaded: %d receiver(s)", len(config.receivers))
    return True, f"reloaded {len(config.receivers)} receiver(s)"


def _with_storage(config: BridgeConfig, storage_path: str) -> BridgeConfig:
    from dataclasses import replace

    return replace(config, storage_path=storage_path)


@own_credentials
async def _reload_handler(request: web.Request) -> web.Response:
    # the webhook's credentials: whoever may not post alerts may not swap the robots either
    denied = refusal(request.app[STATE].config.auth, request)
    if denied is not None:
        return denied
    ok, message = reload_bridge(request.app)
    return _text(message + "\n", 200 if ok else 400)


@web.middleware
async def _server_header(request: web.Request, handler: Callable[..., object]) -> web.StreamResponse:
    response: web.StreamResponse = await handler(request)  # type: ignore[misc]
    response.headers["Server"] = f"marketplace-bridge/{__version__}"
    return response
