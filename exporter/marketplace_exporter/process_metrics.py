"""``process_*`` metrics (CPU seconds, resident and virtual memory, open and max file descriptors,
start time) on the exporter's and the bridge's ``/metrics``, as every Prometheus exporter has them:
the standard dashboards and ``process_resident_memory_bytes`` alerts work unchanged.

prometheus_client's ProcessCollector (it reads /proc; on a system without it the collector yields
nothing), registered in the server's own registry, never the library's global one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.process_collector import ProcessCollector

if TYPE_CHECKING:  # the bridge registers the collector too, without the exporter's core
    from aiohttp import web

    from marketplace_exporter.core import Core


def register(registry: CollectorRegistry) -> None:
    ProcessCollector(registry=registry)


def install(core: Core, app: web.Application) -> None:
    """The exporter's feature: the collector in the registry ``/metrics`` serves."""
    register(core.registry)


__all__ = ["install", "register"]
