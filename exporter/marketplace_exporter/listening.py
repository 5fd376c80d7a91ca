"""Opening the listening sockets of the long-running commands (exporter, simulator, bridge), with the
one line a person can act on when the address is taken.

On f014b6e a busy port printed aiohttp's 29-line ``OSError`` traceback from inside ``asyncio.run``;
the reader had to work out which of the demo's two servers failed and which flag moves it. Now:
``error: cannot listen on 127.0.0.1:9761 (--web.listen-address): address already in use; choose
another HOST:PORT with --web.listen-address``, exit status 1.
"""

from __future__ import annotations

import os
from typing import Any

from aiohttp import web

from marketplace_exporter.serving import listen_address


class ListenError(SystemExit):
    """The address cannot be bound. A ``SystemExit`` carrying its message: it leaves ``asyncio.run``
    after the runners' cleanup, and Python prints the one line and exits 1."""


async def start_site(runner: web.AppRunner, address: str, flag: str, **site_options: Any) -> tuple[str, int]:
    """Listen on ``address`` (``HOST:PORT``, named on the command line by ``flag``); the bound
    ``(host, port)``. ``site_options`` go to :class:`aiohttp.web.TCPSite` (e.g. ``ssl_context``)."""
    host, port = listen_address(address)
    site = web.TCPSite(runner, host, port, **site_options)
    try:
        await site.start()
    except OSError as exc:
        # asyncio wraps the errno's text in "error while attempting to bind on address ..."
        reason = (os.strerror(exc.errno) if exc.errno else str(exc)).lower()
        raise ListenError(f"error: cannot listen on {address} ({flag}): {reason}; choose another HOST:PORT "
                          f"with {flag}") from None
    return host, port


__all__ = ["ListenError", "start_site"]
