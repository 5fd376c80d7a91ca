"""Fault injection: validating a fault, storing it, matching it to a request, applying it.

A fault targets a marketplace and optionally one account alias and one check (operation); the
first stored fault that matches a request (oldest first) is applied to it, and a fault with a
``count`` expires after that many applications. Platform-specific bodies (error envelopes,
success samples) come from the :class:`Platform` the request belongs to; the transport-level
faults (latency, hang, reset, huge and malformed bodies) are the same everywhere.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

#: faults whose answer is the platform's own error response (``value`` overrides the status)
ERROR_FAULTS = frozenset({"http_status", "throttle", "token_expired", "permission_denied", "server_error"})
FAULT_NAMES = ERROR_FAULTS | {"latency", "hang", "reset", "malformed_body", "huge_body", "echo_headers"}
#: status of an ``echo_headers`` answer unless ``value`` says otherwise
ECHO_STATUS = 400
#: how much of the request body an ``echo_headers`` answer quotes
_ECHO_BODY = 2048
#: upper bound for ``latency`` and for how long ``hang`` holds a connection
MAX_WAIT_S = 3600.0
DEFAULT_HUGE_MB = 50.0
MAX_HUGE_MB = 4096.0
_MIB = 1024 * 1024
_POLL_S = 0.05

#: a marketplace route's handler: (request, check) -> response
Handler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]
#: (method, path, check or None = derived per request by ``Platform.check_of``, handler)
RouteSpec = tuple[str, str, str | None, Handler]


class Platform(Protocol):
    """What the fault machinery needs from a simulated marketplace."""

    @property
    def name(self) -> str:
        """The ``marketplace`` value used in faults and request counts (amazon_sp, shopee, http)."""
        ...

    @property
    def checks(self) -> frozenset[str] | None:
        """Operation names a fault may target; None = any (generic HTTP targets)."""
        ...

    @property
    def aliases(self) -> frozenset[str]:
        """Account aliases a fault may target (empty: the platform has no accounts)."""
        ...

    @property
    def min_error_status(self) -> int:
        """Lowest status ``http_status`` and status overrides accept on this platform."""
        ...

    def routes(self) -> list[RouteSpec]:
        """The platform's routes; the app wraps each with request counting and fault matching."""
        ...

    def check_of(self, request: web.Request) -> str:
        """The check name of a request on a route registered with check None."""
        ...

    async def identify(self, request: web.Request, check: str) -> str | None:
        """The alias of the account a request belongs to, if recognisable."""
        ...

    def error_response(
        self, request: web.Request, fault: str, status: int | None, check: str,
    ) -> web.Response:
        """The platform's own answer for an error fault (``status`` None = its default)."""
        ...

    def sample_body(self, check: str) -> bytes:
        """A valid success body for the check (truncated by ``malformed_body``)."""
        ...

    def huge_parts(self, check: str) -> tuple[bytes, bytes, bytes]:
        """(prefix, item, suffix): ``huge_body`` streams prefix, items joined by commas, suffix."""
        ...

    def extra_headers(self) -> dict[str, str]:
        """Headers every response of the platform carries (e.g. a fresh request id)."""
        ...


class FaultError(ValueError):
    """A fault definition the control API rejects with 400."""


@dataclass(frozen=True)
class FaultSpec:
    marketplace: str
    fault: str
    account: str | None = None
    check: str | None = None
    value: float | None = None
    count: int | None = None

    def matches(self, marketplace: str, account: str | None, check: str) -> bool:
        return (
            self.marketplace == marketplace
            and (self.account is None or self.account == account)
            and (self.check is None or self.check == check)
        )


@dataclass
class Fault:
    id: str
    spec: FaultSpec
    #: applications left; None = until deleted
    remaining: int | None
    applied: int = 0

    def as_json(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "id": self.id, "marketplace": spec.marketplace, "account": spec.account,
            "check": spec.check, "fault": spec.fault, "value": spec.value, "count": spec.count,
            "remaining": self.remaining, "applied": self.applied,
        }


_FIELDS = frozenset({"marketplace", "account", "check", "fault", "value", "count"})


def parse_fault(data: object, platforms: Mapping[str, Platform]) -> FaultSpec:
    """Validate a ``POST /__sim/faults`` body; every problem raises :class:`FaultError`."""
    if not isinstance(data, dict):
        raise FaultError("body must be a JSON object")
    unknown = sorted(str(key) for key in data if key not in _FIELDS)
    if unknown:
        raise FaultError(f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(_FIELDS))}")
    marketplace, fault = data.get("marketplace"), data.get("fault")
    if not isinstance(marketplace, str) or marketplace not in platforms:
        raise FaultError(f"marketplace must be one of {', '.join(sorted(platforms))}, got {marketplace!r}")
    if not isinstance(fault, str) or fault not in FAULT_NAMES:
        raise FaultError(f"fault must be one of {', '.join(sorted(FAULT_NAMES))}, got {fault!r}")
    platform = platforms[marketplace]
    account, check = data.get("account"), data.get("check")
    if account is not None:
        if not platform.aliases:
            raise FaultError(f"marketplace {marketplace!r} has no accounts; omit 'account'")
        if not isinstance(account, str) or account not in platform.aliases:
            raise FaultError(f"account must be one of {', '.join(sorted(platform.aliases))}, got {account!r}")
    if check is not None:
        if not isinstance(check, str) or not check:
            raise FaultError("check must be a non-empty string")
        if platform.checks is not None and check not in platform.checks:
            raise FaultError(f"check must be one of {', '.join(sorted(platform.checks))}, got {check!r}")
    count = data.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise FaultError(f"count must be an integer >= 1, got {count!r}")
    value = _parse_value(fault, data.get("value"), platform)
    return FaultSpec(marketplace, fault, account, check, value, count)


def _parse_value(fault: str, raw: object, platform: Platform) -> float | None:
    if raw is None:
        if fault in ("latency", "http_status"):
            raise FaultError(f"fault {fault!r} needs a 'value'")
        return DEFAULT_HUGE_MB if fault == "huge_body" else None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw != raw:
        raise FaultError(f"value must be a number, got {raw!r}")
    value = float(raw)
    if fault in ("hang", "reset", "malformed_body"):
        raise FaultError(f"fault {fault!r} takes no 'value'")
    if fault == "latency" and not 0 < value <= MAX_WAIT_S:
        raise FaultError(f"latency value is seconds in (0, {MAX_WAIT_S:g}], got {raw!r}")
    if fault == "huge_body" and not 0 < value <= MAX_HUGE_MB:
        raise FaultError(f"huge_body value is MiB in (0, {MAX_HUGE_MB:g}], got {raw!r}")
    if fault in ERROR_FAULTS | {"echo_headers"} and not (
            value.is_integer() and platform.min_error_status <= value <= 599):
        raise FaultError(
            f"value of {fault!r} is an HTTP status {platform.min_error_status}-599 on "
            f"{platform.name}, got {raw!r}")
    return value


class FaultStore:
    """The active faults, oldest first."""

    def __init__(self) -> None:
        self._faults: dict[str, Fault] = {}
        self._next_id = 1

    def add(self, spec: FaultSpec) -> Fault:
        fault = Fault(f"f{self._next_id}", spec, spec.count)
        self._next_id += 1
        self._faults[fault.id] = fault
        return fault

    def all(self) -> list[Fault]:
        return list(self._faults.values())

    def clear(self) -> int:
        removed = len(self._faults)
        self._faults.clear()
        return removed

    def delete(self, fault_id: str) -> bool:
        return self._faults.pop(fault_id, None) is not None

    def take(self, marketplace: str, account: str | None, check: str) -> FaultSpec | None:
        """The first matching fault, counted as applied (and removed once used up)."""
        for fault in self._faults.values():
            if fault.spec.matches(marketplace, account, check):
                fault.applied += 1
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        del self._faults[fault.id]
                return fault.spec
        return None


async def apply_fault(
    request: web.Request, spec: FaultSpec, platform: Platform, check: str, stopping: asyncio.Event,
) -> web.StreamResponse | None:
    """Answer the request as the fault says; None means "now answer normally" (latency)."""
    if spec.fault == "latency":
        await wait_while_connected(request, spec.value or 0.0, stopping)
        return None
    if spec.fault == "hang":
        await wait_while_connected(request, MAX_WAIT_S, stopping)
        return reset_connection(request)
    if spec.fault == "reset":
        return reset_connection(request)
    if spec.fault == "malformed_body":
        body = platform.sample_body(check)
        return web.Response(
            status=200, body=body[: len(body) // 2], content_type="application/json",
            headers=platform.extra_headers())
    if spec.fault == "huge_body":
        return await stream_huge_body(request, spec.value or DEFAULT_HUGE_MB, platform, check, stopping)
    if spec.fault == "echo_headers":
        return await echo_request(request, int(spec.value or ECHO_STATUS), platform)
    status = int(spec.value) if spec.value is not None else None
    return platform.error_response(request, spec.fault, status, check)


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def wait_while_connected(request: web.Request, seconds: float, stopping: asyncio.Event) -> None:
    """Sleep ``seconds`` of real time, returning early if the client leaves or the app stops."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (remaining := deadline - loop.time()) > 0:
        if client_gone(request) or stopping.is_set():
            return
        await asyncio.sleep(min(remaining, _POLL_S))


def reset_connection(request: web.Request) -> web.Response:
    """Abort the TCP connection with an RST (SO_LINGER 0), sending no response at all."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    # aiohttp discards this: the transport is gone
    return web.Response(status=500)


async def stream_huge_body(
    request: web.Request, megabytes: float, platform: Platform, check: str, stopping: asyncio.Event,
) -> web.StreamResponse:
    """Stream about ``megabytes`` MiB of valid JSON, chunked, without building it in memory."""
    prefix, item, suffix = platform.huge_parts(check)
    per_item = len(item) + 1
    items_left = max(1, (int(megabytes * _MIB) - len(prefix) - len(suffix) + 1) // per_item)
    per_block = max(1, 65536 // per_item)
    block = b",".join([item] * per_block)
    response = web.StreamResponse(status=200, headers=platform.extra_headers())
    response.content_type = "application/json"
    try:
        await response.prepare(request)
        await response.write(prefix)
        separator = b""
        while items_left > 0 and not stopping.is_set():
            batch = min(per_block, items_left)
            await response.write(separator + (block if batch == per_block else b",".join([item] * batch)))
            separator, items_left = b",", items_left - batch
        await response.write(suffix)
        await response.write_eof()
    except ConnectionError:
        pass  # the client stopped reading and went away: that is what clients should do
    return response


async def echo_request(request: web.Request, status: int, platform: Platform) -> web.Response:
    """A careless gateway: the error body quotes the request back (every header, the query, the
    start of the body), under every envelope key an adapter might read a message from, so that
    whatever part of a body an adapter shows, the request's credentials are in it."""
    body = (await request.read())[:_ECHO_BODY].decode("utf-8", "replace")
    headers = "; ".join(f"{name}: {value}" for name, value in request.headers.items())
    echo = f"request was: {request.method} {request.path_qs} headers: {headers} body: {body}"
    envelope = {
        "error": "echo", "message": echo, "msg": echo, "error_description": echo, "request_id": "echo",
        "errors": [{"code": "Echo", "message": echo, "details": echo}],
    }
    return web.json_response(envelope, status=status, headers=platform.extra_headers())

