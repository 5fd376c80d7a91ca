"""What every long-running command (exporter, simulator, bridge) does the same way: log to stderr
through the secret redactor (logfmt or JSON lines, log_format.py), read a ``HOST:PORT`` listen
address, and run until SIGINT/SIGTERM with SIGHUP as "reload"."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from marketplace_exporter.log_format import formatter, python_level
from marketplace_exporter.secrets import RedactingFilter

log = logging.getLogger("marketplace_exporter")


def setup_logging(level: str, log_format: str = "logfmt") -> None:
    """One stderr handler on the root logger: the redacting filter first (every record, every
    format), then the logfmt or JSON formatter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(python_level(level))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # httpx logs every request at INFO ("HTTP Request: POST ..."): noise in a pipeline's log for the
    # client commands (deploy mark, deploys list); --log.level debug still shows it
    if root.level > logging.DEBUG:
        logging.getLogger("httpx").setLevel(logging.WARNING)


def listen_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not (port.isascii() and port.isdigit() and int(port) <= 65535):  # '²' passes isdigit(), int() refuses it
        raise SystemExit(f"invalid listen address {address!r}: expected HOST:PORT (port 0-65535)")
    return host.strip("[]") or "0.0.0.0", int(port)


async def until_stopped(on_reload: object) -> None:
    """Wait for SIGINT/SIGTERM; SIGHUP calls ``on_reload`` (the config keeps running on error)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if callable(on_reload):
        loop.add_signal_handler(signal.SIGHUP, on_reload)
    await stop.wait()
    log.info("stopping")


__all__ = ["listen_address", "setup_logging", "until_stopped"]
