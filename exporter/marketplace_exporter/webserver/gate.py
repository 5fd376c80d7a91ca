"""The web config's checks on every request: the file re-read when it changes, the rate limit,
client-certificate SANs, basic auth (bcrypt) and the response headers it sets.

Which paths: all of them, as exporter-toolkit does (``/metrics``, ``/probe``, the status page, the
APIs, ``/-/healthy`` and ``/-/ready`` too: a Kubernetes probe sends the header with ``httpHeaders``,
or checks the TCP port). One exception keeps the write APIs' own credentials working: a request
carrying ``Authorization: Bearer ...`` to a route that checks its own Bearer token (deploys,
traffic, OTLP, the bridge's webhook; marked with :func:`own_credentials`) is left to that route. A
Basic-authenticated user is then still anonymous to the write API (its ``anonymous_writes`` policy
decides). One ``Authorization`` header cannot carry both, so that is how the two combine.

bcrypt costs ~70-250 ms of CPU per check: verified in a worker thread, one at a time (as
exporter-toolkit's mutex does), and every outcome cached under a SHA-256 of user, hash and password
(the plaintext is never kept), so a scrape every 15 s pays it once. A user that does not exist is
checked against a fixed hash, so timing does not tell which users exist.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import bcrypt
from aiohttp import web

from marketplace_exporter.config.yaml_loading import ConfigError
from marketplace_exporter.webserver.config import WebConfig, load_web_config
from marketplace_exporter.webserver.marks import OWN_CREDENTIALS, WEB_USER
from marketplace_exporter.webserver.tls import TLSListener, allowed_san

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: exporter-toolkit's hash of "fakepassword", checked for unknown users
_DUMMY_HASH = b"$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"
CACHE_SIZE = 100


class WebConfigSource:
    """The web config file, re-read when it changes (one ``stat`` per request). A version that no
    longer validates is logged once and makes every request fail (500) until fixed: exporter-toolkit
    fails closed the same way, rather than keep a user someone just removed."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp = self._stat()
        self._config = load_web_config(path)  # at start a bad file stops the command
        self._error: ConfigError | None = None

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return info.st_ino, info.st_mtime_ns, info.st_size

    def current(self) -> WebConfig:
        stamp = self._stat()
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._config, self._error = load_web_config(self.path), None
                log.info("web config %s re-read", self.path)
            except ConfigError as exc:
                self._error = exc
                log.error("web config %s is invalid; answering 500 until it is fixed:\n%s", self.path, exc)
        if self._error is not None:
            raise self._error
        return self._config


class PasswordCheck:
    """bcrypt off the event loop, one at a time, outcomes cached (see the module docstring)."""

    def __init__(self) -> None:
        self._cache: OrderedDict[bytes, bool] = OrderedDict()
        self._lock = asyncio.Lock()

    async def verify(self, users: dict[str, str], user: str, password: bytes) -> bool:
        hashed = users.get(user)
        known = hashed is not None
        hashed_bytes = hashed.encode() if hashed is not None else _DUMMY_HASH
        key = hashlib.sha256(b"\0".join((user.encode(), hashed_bytes, password))).digest()
        cached = self._lookup(key)
        if cached is None:
            async with self._lock:
                cached = self._lookup(key)  # another request may have just checked the same
                if cached is None:
                    cached = await asyncio.to_thread(_checkpw, password, hashed_bytes)
                    self._cache[key] = cached
                    while len(self._cache) > CACHE_SIZE:
                        self._cache.popitem(last=False)
        return known and cached

    def _lookup(self, key: bytes) -> bool | None:
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
        return found


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bool(bcrypt.checkpw(password, hashed))
    except ValueError:  # over bcrypt's 72 bytes, or a malformed hash
        return False


class TokenBucket:
    """exporter-toolkit's ``rate_limit``: one request per ``interval`` on average, ``burst`` at once."""

    def __init__(self) -> None:
        self._tokens = 0.0
        self._at = time.monotonic()
        self._settings = (0.0, 0)

    def allow(self, interval: float, burst: int) -> bool:
        now = time.monotonic()
        if (interval, burst) != self._settings:
            self._settings, self._tokens, self._at = (interval, burst), float(burst), now
        self._tokens = min(float(burst), self._tokens + (now - self._at) / interval)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


def _basic_credentials(header: str) -> tuple[str, bytes] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
        return (user.decode("utf-8"), password) if sep else None
    except (binascii.Error, ValueError):
        return None


class WebGate:
    """The middleware and response hook one listener installs (exporter or bridge)."""

    def __init__(self, source: WebConfigSource) -> None:
        self.source = source
        self.tls: TLSListener | None = None
        self._passwords = PasswordCheck()
        self._bucket = TokenBucket()

    def install(self, app: web.Application) -> None:
        app.middlewares.insert(0, self.middleware)
        app.on_response_prepare.append(self._headers)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            config = self.source.current()
        except ConfigError:
            return web.Response(status=500, text="Internal Server Error: the web config file is invalid "
                                                 "(see the log)\n")
        if self.tls is not None:
            self.tls.refresh()
        limit = config.rate_limit
        if limit.interval > 0 and not self._bucket.allow(limit.interval, limit.burst):
            return web.Response(status=429, text="Too Many Requests\n")
        tls = config.tls
        if tls is not None and tls.client_allowed_sans is not None:
            peercert = request.transport.get_extra_info("peercert") if request.transport else None
            if not allowed_san(peercert, tls.client_allowed_sans):
                return web.Response(status=403, text="Forbidden: the client certificate names none of the "
                                                     "allowed SANs\n")
        if config.users and not await self._authorized(request, config):
            return web.Response(status=401, text="Unauthorized\n", headers={"WWW-Authenticate": "Basic"})
        return await handler(request)

    async def _authorized(self, request: web.Request, config: WebConfig) -> bool:
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer " and getattr(request.match_info.handler, OWN_CREDENTIALS, False):
            return True  # the route checks this token itself
        credentials = _basic_credentials(header)
        if credentials is None or not await self._passwords.verify(config.users, *credentials):
            return False
        request[WEB_USER] = credentials[0]
        return True

    async def _headers(self, request: web.Request, response: web.StreamResponse) -> None:
        try:
            headers = self.source.current().headers
        except ConfigError:
            return
        for name, value in headers.items():
            if value:
                response.headers[name] = value


__all__ = ["PasswordCheck", "WebConfigSource", "WebGate"]
