"""``/api/v1/deploys`` on the exporter, and ``install(core, app)`` wiring the audit log, metrics and
Grafana annotations into it (listed in ``server.app.FEATURES``).

    POST /api/v1/deploys   record a marker → 201 {"deploy": {...}, "freeze": {...}|null, "warnings": [...]}
    GET  /api/v1/deploys   ?service=&environment=&since=&limit=&before= → newest first, paginated

Both need ``Authorization: Bearer $MARKETPLACE_EXPORTER_DEPLOY_TOKEN`` (the variable is named by
``deploys.token_env``) unless ``deploys.anonymous_writes`` says otherwise. Without
``--storage.path`` (only in-process tests and embedders) the log lives in memory and says so.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp
from aiohttp import web

from marketplace_exporter.catalogue import DeployStatus
from marketplace_exporter.config import LoadedConfig
from marketplace_exporter.core import Core
from marketplace_exporter.deploys import verify_baseline
from marketplace_exporter.deploys.annotations import AnnotationPusher
from marketplace_exporter.deploys.collector import DeployCollector
from marketplace_exporter.deploys.config import DeploysConfig
from marketplace_exporter.deploys.freeze import FreezeWindow, active_freeze
from marketplace_exporter.deploys.log import DeployLog
from marketplace_exporter.deploys.log_follow import following
from marketplace_exporter.deploys.model import MarkerInvalid, parse_marker
from marketplace_exporter.deploys.state import DeployState
from marketplace_exporter.deploys.storage import (
    DEFAULT_PAGE,
    MAX_PAGE,
    AuditLog,
    StorageError,
    StorageUnavailable,
    open_log,
)
from marketplace_exporter.engine.transport import tls_context
from marketplace_exporter.store import Store
from marketplace_exporter.traffic.api import TRAFFIC
from marketplace_exporter.webserver.marks import own_credentials
from marketplace_exporter.write_api import WriteAuth, json_error, read_json_body

log = logging.getLogger(__name__)

PATH = "/api/v1/deploys"
#: a marker is a few hundred bytes; 64 KiB leaves room for long notes and refuses abuse
MAX_BODY_BYTES = 64 * 1024


@dataclass
class DeploysRuntime:
    """The deploy feature's mutable state (the app itself is frozen once started, so reloads swap
    fields here instead of app keys)."""

    config: DeploysConfig
    #: where the audit log lives (``--storage.path``); None: in memory
    storage_path: str | None = None
    #: the CA bundle the probes trust (Grafana behind an internal CA)
    ca_file: str | None = None
    windows: tuple[FreezeWindow, ...] = ()
    state: DeployState = field(default_factory=DeployState)
    pusher: AnnotationPusher | None = None
    #: the probe results the gate's baseline is taken from (None: no probing in this app)
    store: Store | None = None

    def reconfigure(self, loaded: LoadedConfig) -> None:
        """Reload hook: token variable, anonymous policy, freeze windows and Grafana follow the file."""
        self.config = loaded.deploys
        self.windows = loaded.deploys.windows()

    def count_annotation(self, result: str) -> None:
        self.state.annotation_pushes[result] += 1

    @property
    def auth(self) -> WriteAuth:
        return WriteAuth(self.config.token_env, self.config.anonymous_writes, "deploy API", "deploys")


#: the audit log (set when the app starts)
DEPLOY_LOG: web.AppKey[AuditLog] = web.AppKey("deploy_log")
#: config (``.config``, ``.windows``) and folded state; follows config reloads
DEPLOYS = web.AppKey("deploys", DeploysRuntime)


def install(core: Core, app: web.Application) -> None:
    runtime = DeploysRuntime(config=core.initial.deploys, storage_path=core.storage_path,
                             ca_file=core.initial.ca_file, store=core.store)
    runtime.windows = runtime.config.windows()
    app[DEPLOYS] = runtime
    app.cleanup_ctx.append(_deploy_log_ctx)
    app.router.add_post(PATH, post_deploy)
    app.router.add_get(PATH, list_deploys)
    core.registry.register(DeployCollector(lambda: runtime.state, lambda: runtime.windows))
    core.on_reload(runtime.reconfigure)


async def _deploy_log_ctx(app: web.Application) -> AsyncIterator[None]:
    runtime = app[DEPLOYS]
    storage = runtime.storage_path
    deploy_log: AuditLog
    if storage is None:
        deploy_log = DeployLog.in_memory()
        log.warning("no --storage.path: deploy markers are kept in memory only and lost on restart")
    else:  # a --storage.path directory or a --storage.url
        deploy_log = await asyncio.to_thread(open_log, storage)
    app[DEPLOY_LOG] = deploy_log
    try:
        runtime.state = await asyncio.to_thread(lambda: DeployState.replay(deploy_log.replay()))
        log.info("deploy audit log %s: %d markers", deploy_log.path, sum(runtime.state.counts.values()))
        _warn_about(runtime.config, runtime.state)
        # Grafana behind an internal CA: trust what the probes trust (defaults.ca_file)
        connector = aiohttp.TCPConnector(ssl=tls_context(runtime.ca_file))
        async with aiohttp.ClientSession(connector=connector) as session, \
                following(deploy_log, lambda: runtime.state):  # other replicas' markers (shared log)
            runtime.pusher = AnnotationPusher(session, runtime.count_annotation)
            try:
                yield
            finally:
                await runtime.pusher.close()
                runtime.pusher = None
    finally:
        deploy_log.close()


def _warn_about(config: DeploysConfig, state: DeployState | None = None) -> None:
    """Say at start what will not work, rather than at the first deploy."""
    if state is not None and (len(state.services) > config.max_services
                              or len(state.environments_seen) > config.max_environments):
        log.warning("the deploy audit log already names %d services and %d environments, over deploys.max_services "
                    "(%d) / deploys.max_environments (%d): their series stay; markers for new names are refused",
                    len(state.services), len(state.environments_seen), config.max_services,
                    config.max_environments)
    warning = WriteAuth(config.token_env, config.anonymous_writes, "deploy API", "deploys").startup_warning(
        f"POST/GET {PATH}", "markers")
    if warning is not None:
        log.warning("%s", warning)
    if config.grafana is not None and config.grafana.api_key is not None:
        problem = config.grafana.api_key.check_available()
        if problem is not None:
            log.warning("deploys.grafana.api_key: %s; annotation pushes will fail until it is available",
                        problem)


def authorize(request: web.Request) -> None:
    """Bearer token check, with the anonymous policy applied (also used by ``/api/v1/verify``)."""
    request.app[DEPLOYS].auth.check(request)


@own_credentials
async def post_deploy(request: web.Request) -> web.Response:
    authorize(request)
    body = await read_json_body(request, MAX_BODY_BYTES)
    received = time.time()
    try:
        marker = parse_marker(body, now=received)
    except MarkerInvalid as exc:
        return json_error(400, exc.message, field=exc.field)
    runtime = request.app[DEPLOYS]
    refused = _over_cap(runtime, marker.service, marker.environment)
    if refused is not None:
        return refused
    freeze = active_freeze(runtime.windows, marker.environment, received)
    if freeze is None and marker.timestamp is not None:
        freeze = active_freeze(runtime.windows, marker.environment, marker.timestamp)
    # a started marker carries the gate's baseline (persisted: a restart does not lose it)
    baseline = (verify_baseline.take(runtime.store, request.app.get(TRAFFIC), marker.service, received)
                if marker.status is DeployStatus.STARTED else None)
    try:  # off the event loop: an fsync or a database round trip must not stall /metrics and probes
        record = await asyncio.to_thread(request.app[DEPLOY_LOG].append, marker, freeze=freeze,
                                         remote_addr=request.remote or "", baseline=baseline)
    except StorageUnavailable as exc:
        log.error("deploy marker for %s/%s NOT recorded: %s", marker.service, marker.environment, exc)
        return _storage_down(exc)
    runtime.state.observe(record)
    warnings: list[str] = []
    if freeze is not None:
        warnings.append(f"recorded inside freeze window {freeze.name!r} (policy: {freeze.policy}) for "
                        f"{marker.environment}" + (": the verify gate will fail this deploy"
                                                   if freeze.policy == "block" else ""))
    log.info("deploy #%d recorded: %s %s in %s, %s%s", record.id, record.service, record.version,
             record.environment, record.status.value, f" (freeze {freeze.name})" if freeze else "")
    grafana = runtime.config.grafana
    if grafana is not None and runtime.pusher is not None:
        runtime.pusher.push(grafana, record)
    return web.json_response(
        {"deploy": record.to_json(),
         "freeze": None if freeze is None else {"name": freeze.name, "policy": freeze.policy,
                                                 "end": freeze.end.isoformat()},
         "warnings": warnings},
        status=201)


@own_credentials
async def list_deploys(request: web.Request) -> web.Response:
    authorize(request)
    query = request.query
    try:
        since = parse_since(query.get("since"))
        limit = _int_param(query.get("limit"), "limit", DEFAULT_PAGE, 1, MAX_PAGE) or DEFAULT_PAGE
        before = _int_param(query.get("before"), "before", None, 1, 2**62)
    except MarkerInvalid as exc:
        return json_error(400, exc.message, field=exc.field)
    for name in ("service", "environment"):
        if len(query.get(name, "")) > 63:
            return json_error(400, "at most 63 characters", field=name)
    try:
        records = await asyncio.to_thread(request.app[DEPLOY_LOG].query, service=query.get("service") or None,
                                          environment=query.get("environment") or None,
                                          since=since, limit=limit, before_id=before)
    except StorageUnavailable as exc:
        return _storage_down(exc)
    next_before = records[-1].id if len(records) == limit else None
    return web.json_response({"deploys": [record.to_json() for record in records],
                              "next_before": next_before})


def _over_cap(runtime: DeploysRuntime, service: str, environment: str) -> web.Response | None:
    """A 422 when the marker names one service or environment more than the config allows.

    Refused rather than folded into ``other``: an audit log must keep what the pipeline said (a row
    saying ``other`` deployed tells an incident review nothing), the gate and ``deploys list`` look
    up markers by their real service, and a refusal surfaces at once in the pipeline that sends a
    build number as its service name instead of silently growing the series (5,000 services made
    35,073 series on f014b6e)."""
    config = runtime.config
    reason = runtime.state.over_cap(service, environment, config.max_services, config.max_environments)
    if reason is None:
        return None
    runtime.state.refused[reason] += 1
    field, value, limit = (("service", service, config.max_services) if reason == "max_services"
                           else ("environment", environment, config.max_environments))
    plural = "services" if field == "service" else "environments"
    log.warning("deploy marker refused: %s %r would exceed deploys.%s (%d)", field, value, reason, limit)
    return json_error(422, f"deploys.{reason} ({limit}) reached: {value!r} would be a new {field} beyond the "
                           f"{limit} {plural} the audit log already has; nothing was recorded. Reuse an existing "
                           f"{field} name, or raise deploys.{reason} in the exporter config if it is real",
                      field=field)


def _storage_down(exc: StorageUnavailable) -> web.Response:
    """503 with ``Retry-After``: nothing was written, and ``deploy mark`` retries with back-off."""
    response = json_error(503, f"{exc}; nothing was recorded, retry later")
    response.headers["Retry-After"] = "2"
    return response


def parse_since(raw: str | None) -> float | None:
    """``since`` as unix seconds or an RFC 3339 time with an offset."""
    if raw is None or raw == "":
        return None
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise MarkerInvalid("since", "not a finite number")
        return seconds
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise MarkerInvalid("since", "expected unix seconds or RFC 3339 such as 2026-11-01T00:00:00+08:00") \
            from None
    if parsed.tzinfo is None:
        raise MarkerInvalid("since", "an RFC 3339 time needs an offset (Z or +08:00)")
    return parsed.timestamp()


def _int_param(raw: str | None, name: str, default: int | None, low: int, high: int) -> int | None:
    if raw is None or raw == "":
        return default
    # isascii: str.isdigit() also accepts '²' (which int() refuses) and '١' (which it reads);
    # the length keeps int() under its 4,300-digit limit
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or not low <= int(raw) <= high:
        raise MarkerInvalid(name, f"expected an integer from {low} to {high}")
    return int(raw)


__all__ = ["DEPLOYS", "DEPLOY_LOG", "DeploysRuntime", "StorageError", "authorize", "install", "parse_since"]
