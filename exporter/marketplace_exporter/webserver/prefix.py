"""``--web.route-prefix``: every route served under a path, for a reverse proxy that forwards
``https://ops.example.com/exporter/...`` unchanged (Prometheus semantics: the prefix defaults to the
path of ``--web.external-url``; ``/`` and the bare prefix redirect to ``PREFIX/``).

The app is mounted as an aiohttp sub-application, so its own routes, handlers and tests stay
prefix-free; pages link relatively, so the links follow the prefix.
"""

from __future__ import annotations

from aiohttp import web


def mount(app: web.Application, prefix: str) -> web.Application:
    """``app`` itself for ``/``; else a root app serving ``app`` under ``prefix`` and redirecting
    ``/`` and ``prefix`` to ``prefix/``."""
    if prefix == "/":
        return app
    root = web.Application()

    async def to_prefix(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(prefix + "/")

    # before the sub-application: routes resolve in the order they were added
    root.router.add_get("/", to_prefix)
    root.router.add_get(prefix, to_prefix)
    root.add_subapp(prefix, app)
    return root


__all__ = ["mount"]
