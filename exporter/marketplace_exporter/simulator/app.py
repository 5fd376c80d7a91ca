"""Assembles the simulator: one aiohttp app, one port, path-prefixed per marketplace.

Every marketplace route is wrapped so that it is counted (``/__sim/requests``) and checked for
a matching fault (``/__sim/faults``) before the marketplace itself answers. The control API
under ``/__sim/`` is never counted. All state (clock, faults, counts, issued tokens, buckets)
lives on the app under typed keys: two apps never share anything.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from marketplace_exporter.simulator.accounts import SIM_ACCOUNTS, SimAccounts
from marketplace_exporter.simulator.erp import DemoErp
from marketplace_exporter.simulator.faults import (
    FaultError,
    FaultStore,
    Handler,
    Platform,
    apply_fault,
    parse_fault,
)
from marketplace_exporter.simulator.platforms import PLATFORMS as PLATFORM_FACTORIES

DEFAULT_PORT = 9763


@dataclass
class RequestCounts:
    """Marketplace requests received (faulted ones included): the exporter's own quota spend."""

    total: int = 0
    routes: Counter[str] = field(default_factory=Counter)
    accounts: Counter[str] = field(default_factory=Counter)

    def record(self, marketplace: str, check: str, alias: str | None) -> None:
        self.total += 1
        self.routes[f"{marketplace}:{check}"] += 1
        if alias is not None:
            self.accounts[f"{marketplace}:{alias}:{check}"] += 1

    def as_json(self) -> dict[str, Any]:
        return {"total": self.total, "routes": dict(sorted(self.routes.items())),
                "accounts": dict(sorted(self.accounts.items()))}

    def reset(self) -> None:
        self.total = 0
        self.routes.clear()
        self.accounts.clear()


CLOCK = web.AppKey[Callable[[], float]]("sim_clock")
FAULTS = web.AppKey("sim_faults", FaultStore)
COUNTS = web.AppKey("sim_requests", RequestCounts)
PLATFORMS = web.AppKey[Mapping[str, Platform]]("sim_platforms")
#: set on shutdown so that hanging and slow answers let go at once
STOPPING = web.AppKey("sim_stopping", asyncio.Event)
#: the demo's ERP stand-in, when the app was made with ``tokens_dir``
ERP = web.AppKey("sim_erp", DemoErp)
ERP_TICK_S = 1.0


def create_simulator_app(
    *, clock: Callable[[], float] = time.time, accounts: SimAccounts = SIM_ACCOUNTS,
    tokens_dir: Path | None = None,
) -> web.Application:
    """The simulator app. ``clock`` drives token expiry, bucket refill and signature windows.
    ``tokens_dir``: run the demo's ERP stand-in (``simulator/erp.py``): the token files of the
    accounts whose production tokens rotate are written there now, and kept current while the app
    runs (``app[ERP]``, whose ``use_token_files`` points a config at them)."""
    app = web.Application()
    platforms: dict[str, Platform] = {}
    for factory in PLATFORM_FACTORIES:
        platform = factory(accounts, clock)
        platforms[platform.name] = platform
    app[CLOCK] = clock
    app[FAULTS] = FaultStore()
    app[COUNTS] = RequestCounts()
    app[PLATFORMS] = platforms
    app[STOPPING] = asyncio.Event()
    app.on_shutdown.append(_stop_waiting)
    if tokens_dir is not None:
        erp = app[ERP] = DemoErp(platforms.values(), tokens_dir, clock)
        erp.start()
        app.cleanup_ctx.append(_keep_tokens_current)

    for platform in platforms.values():
        for method, path, check, handler in platform.routes():
            app.router.add_route(method, path, _marketplace_route(platform, check, handler))
    app.router.add_get("/", _index)
    app.router.add_get("/__sim/health", _health)
    app.router.add_get("/__sim/faults", _list_faults)
    app.router.add_post("/__sim/faults", _add_fault)
    app.router.add_delete("/__sim/faults", _clear_faults)
    app.router.add_delete("/__sim/faults/{id}", _delete_fault)
    app.router.add_get("/__sim/requests", _get_counts)
    app.router.add_delete("/__sim/requests", _reset_counts)
    return app


def _marketplace_route(
    platform: Platform, check: str | None, handler: Handler,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def route(request: web.Request) -> web.StreamResponse:
        name = check if check is not None else platform.check_of(request)
        alias = await platform.identify(request, name)
        request.app[COUNTS].record(platform.name, name, alias)
        spec = request.app[FAULTS].take(platform.name, alias, name)
        if spec is not None:
            response = await apply_fault(request, spec, platform, name, request.app[STOPPING])
            if response is not None:
                return response
        return await handler(request, name)

    return route


async def _keep_tokens_current(app: web.Application) -> AsyncIterator[None]:
    """The ERP's refresh loop: once a second it refreshes any token an hour from expiry."""
    async def loop() -> None:
        while True:
            app[ERP].tick()
            await asyncio.sleep(ERP_TICK_S)

    task = asyncio.create_task(loop())
    yield
    task.cancel()


async def _stop_waiting(app: web.Application) -> None:
    app[STOPPING].set()


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


async def _index(request: web.Request) -> web.Response:
    lines = ["marketplace-exporter simulator (fake marketplaces, simulator-only credentials)", ""]
    for platform in request.app[PLATFORMS].values():
        for method, path, check, _ in platform.routes():
            lines.append(f"  {method:<5}{path}  [{platform.name}:{check or '<path>'}]")
    lines += ["", "  control: /__sim/faults (GET, POST, DELETE), /__sim/faults/{id} (DELETE),",
              "           /__sim/requests (GET, DELETE), /__sim/health", ""]
    return web.Response(text="\n".join(lines))


async def _health(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def _list_faults(request: web.Request) -> web.Response:
    return _json({"faults": [fault.as_json() for fault in request.app[FAULTS].all()]})


async def _add_fault(request: web.Request) -> web.Response:
    try:
        data = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _json({"error": "body must be valid JSON"}, 400)
    try:
        spec = parse_fault(data, request.app[PLATFORMS])
    except FaultError as error:
        return _json({"error": str(error)}, 400)
    fault = request.app[FAULTS].add(spec)
    return _json(fault.as_json(), 201)


async def _clear_faults(request: web.Request) -> web.Response:
    return _json({"deleted": request.app[FAULTS].clear()})


async def _delete_fault(request: web.Request) -> web.Response:
    fault_id = request.match_info["id"]
    if not request.app[FAULTS].delete(fault_id):
        return _json({"error": f"no active fault with id {fault_id!r}"}, 404)
    return _json({"deleted": 1})


async def _get_counts(request: web.Request) -> web.Response:
    return _json(request.app[COUNTS].as_json())


async def _reset_counts(request: web.Request) -> web.Response:
    request.app[COUNTS].reset()
    return _json({"status": "reset"})
