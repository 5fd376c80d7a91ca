"""Generic HTTP targets for the exporter's ``http`` checks (an internal service's health page).

Routes::

    GET /http/health          200 {"status": "ok", "last_order_synced_at": <now - 30 s, ISO-8601 UTC>,
                                   "queue_depth": 3}
    GET /http/status/{code}   answers with that status (200-599)

For faults the marketplace is ``http`` and the check is the first path segment after ``/http``
(``health``, ``status``); generic targets have no accounts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from aiohttp import web

from marketplace_exporter.simulator.faults import RouteSpec

NAME = "http"
SYNC_LAG_S = 30
QUEUE_DEPTH = 3
_NO_BODY = frozenset({204, 304})


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def status_response(status: int, headers: dict[str, str] | None = None) -> web.Response:
    if status in _NO_BODY:
        return web.Response(status=status, headers=headers)
    body = {"status": "ok" if status < 400 else "error", "code": status, "error": _phrase(status)}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json",
                        headers=headers)


class HttpTargetSim:
    name = NAME
    checks: frozenset[str] | None = None
    aliases: frozenset[str] = frozenset()
    min_error_status = 200

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    def routes(self) -> list[RouteSpec]:
        return [("GET", "/http/health", None, self.health), ("GET", "/http/status/{code}", None, self.status)]

    def check_of(self, request: web.Request) -> str:
        return request.path.removeprefix("/http/").split("/", 1)[0]

    # --- the fault protocol ---------------------------------------------------------------------
    async def identify(self, request: web.Request, check: str) -> str | None:
        return None

    def extra_headers(self) -> dict[str, str]:
        return {}

    def error_response(
        self, request: web.Request, fault: str, status: int | None, check: str,
    ) -> web.Response:
        default, headers = {
            "throttle": (429, {"Retry-After": "1"}),
            "token_expired": (401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}),
            "permission_denied": (403, {}),
        }.get(fault, (500, {}))
        return status_response(status or default, headers)

    def sample_body(self, check: str) -> bytes:
        return json.dumps(self._health()).encode()

    def huge_parts(self, check: str) -> tuple[bytes, bytes, bytes]:
        item = json.dumps({"order_id": "SIM-000001", "synced_at": self._health()["last_order_synced_at"]})
        return b'{"status": "ok", "queue_depth": 3, "orders": [', item.encode(), b"]}"

    # --- routes -----------------------------------------------------------------------------------
    def _health(self) -> dict[str, Any]:
        synced = datetime.fromtimestamp(self._clock() - SYNC_LAG_S, UTC)
        iso = synced.isoformat(timespec="seconds").replace("+00:00", "Z")
        return {"status": "ok", "last_order_synced_at": iso, "queue_depth": QUEUE_DEPTH}

    async def health(self, request: web.Request, check: str) -> web.Response:
        return web.Response(text=json.dumps(self._health()), content_type="application/json")

    async def status(self, request: web.Request, check: str) -> web.Response:
        raw = request.match_info["code"]
        if not (len(raw) == 3 and raw.isascii() and raw.isdigit() and 200 <= int(raw) <= 599):
            return status_response(400)
        return status_response(int(raw))
