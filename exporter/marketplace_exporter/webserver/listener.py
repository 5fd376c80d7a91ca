"""How the exporter and the bridge listen, the Prometheus way: ``--web.config.file`` (TLS, basic
auth, headers, rate limit in the exporter-toolkit format), ``--web.enable-lifecycle``,
``--web.external-url`` and ``--web.route-prefix``.

    listener = Listener.prepare(web_options(args))   # a bad web config stops the command here
    root = listener.wrap(app)                        # gate, lifecycle flag, route prefix
    host, port = await listener.start(web.AppRunner(root), "0.0.0.0:9761", "--web.listen-address")
"""

from __future__ import annotations

import ssl

from aiohttp import web

from marketplace_exporter.listening import start_site
from marketplace_exporter.webserver.gate import WebConfigSource, WebGate
from marketplace_exporter.webserver.lifecycle import LIFECYCLE_ENABLED
from marketplace_exporter.webserver.options import WebOptions
from marketplace_exporter.webserver.prefix import mount
from marketplace_exporter.webserver.tls import TLSListener


class Listener:
    """One server's web layer, prepared (and validated) before anything listens."""

    def __init__(self, options: WebOptions, gate: WebGate | None) -> None:
        self.options = options
        self.gate = gate
        self.tls: TLSListener | None = None
        if gate is not None and gate.source.current().tls is not None:
            self.tls = gate.tls = TLSListener(gate.source.current)

    @classmethod
    def prepare(cls, options: WebOptions) -> Listener:
        """Read the web config (a ConfigError lists its problems, located) and load its certificates."""
        gate = WebGate(WebConfigSource(options.config_file)) if options.config_file else None
        return cls(options, gate)

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        return self.tls.context if self.tls is not None else None

    def wrap(self, app: web.Application) -> web.Application:
        """``app`` with the lifecycle flag, under the route prefix, behind the web config's gate."""
        app[LIFECYCLE_ENABLED] = self.options.enable_lifecycle
        root = mount(app, self.options.route_prefix)
        if self.gate is not None:
            self.gate.install(root)
        return root

    async def start(self, runner: web.AppRunner, address: str, flag: str) -> tuple[str, int]:
        """Listen on ``address`` (``HOST:PORT`` from ``flag``); the bound (host, port). A busy port
        is one line naming the flag (listening.py)."""
        await runner.setup()
        return await start_site(runner, address, flag, ssl_context=self.ssl_context)

    def url(self, host: str, port: int) -> str:
        """Where the routes are, for the start-up line: the external URL, else the listen address."""
        if self.options.external_url:
            return self.options.external_url.rstrip("/") + "/"
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        shown = f"[{shown}]" if ":" in shown else shown
        scheme = "https" if self.tls is not None else "http"
        prefix = self.options.route_prefix.rstrip("/")
        return f"{scheme}://{shown}:{port}{prefix}/"


__all__ = ["Listener"]
