"""Sharding at run time: the part of a config this process probes, the shard's self metrics, its
line on the status page, and the answer ``/probe`` gives for a check another shard owns.

The :class:`~marketplace_exporter.core.Core` applies every config (start, reload, accounts-file
change) through :func:`marketplace_exporter.core.sharded`, so each of them re-selects; the whole
config stays the core's ``config`` (the status page and ``/probe`` name what other shards probe).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from html import escape

from aiohttp import web
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from marketplace_exporter import catalogue as c
from marketplace_exporter.core import Core
from marketplace_exporter.metric_families import empty_families, empty_family
from marketplace_exporter.shard import Shard
from marketplace_exporter.write_api import json_error

#: a response header naming the owner shard, for scripts that follow a misdirected /probe
OWNER_HEADER = "X-Marketplace-Exporter-Shard"


class ShardCollector(Collector):
    """``marketplace_exporter_shard_ordinal`` and ``..._total_shards`` (kube-state-metrics has the
    same pair): the rules count the shards Prometheus scrapes against the total they declare."""

    def __init__(self, shard: Shard) -> None:
        self._shard = shard

    def describe(self) -> Iterable[Metric]:
        return [empty_family(spec) for spec in c.SHARD_METRICS]

    def collect(self) -> Iterator[Metric]:
        fams = empty_families(c.SHARD_METRICS)
        fams[c.SHARD_ORDINAL.name].add_metric([], self._shard.ordinal)
        fams[c.TOTAL_SHARDS.name].add_metric([], self._shard.total)
        yield from fams.values()


def misdirected(core: Core, check_id: str) -> web.Response | None:
    """``421 Misdirected Request`` naming the owner when ``check_id`` is configured but another
    shard probes it; None when the check is this shard's or not configured at all."""
    shard = core.shard
    if not shard.sharded:
        return None
    spec = next((check for check in core.config.checks if check.id == check_id), None)
    if spec is None:
        return None
    owner = shard.owner(spec)
    if owner == shard.ordinal:
        return None
    pod = shard.pod_of(owner)
    where = f" (pod {pod})" if pod else ""
    return web.Response(
        status=421, headers={OWNER_HEADER: str(owner)},
        text=f"check {check_id} is probed by shard {owner} of {shard.total}{where}, not by this exporter "
             f"({shard.describe()}): ask that shard's /probe\n")


def status_html(core: Core) -> str:
    """The shard's line on the status page (nothing when not sharded)."""
    shard = core.shard
    if not shard.sharded or not core.started:
        return ""
    configured = len(core.config.checks)
    probing = len(core.engine.config.checks) if core.engine.config is not None else 0
    return (f'<p class="shard">{escape(shard.describe())}: probing {probing:,} of the {configured:,} '
            f"configured checks; the other shards probe the rest (docs/kubernetes.md).</p>")


def refuse(app: web.Application, paths: Iterable[str], message: str, status: int) -> None:
    """Answer every request under ``paths`` (any method, sub-paths too) with ``message`` as a JSON
    error, the way the write APIs answer errors (the deploy and verify clients print it)."""

    async def refused(request: web.Request) -> web.Response:
        return json_error(status, message)

    for path in paths:
        app.router.add_route("*", path, refused)
        app.router.add_route("*", path.rstrip("/") + "/{tail:.*}", refused)


def writes_elsewhere(shard: Shard) -> str:
    """Why shard N > 0 refuses deploy markers and traffic reports, and where they go."""
    pod = shard.pod_of(0)
    return (f"this exporter is {shard.describe()}: deploy markers and traffic reports are taken by shard 0"
            f"{f' (pod {pod})' if pod else ''} only, so their series and audit log exist once; send them there "
            "(Kubernetes: the Service marketplace-exporter-writes, docs/kubernetes.md)")


def gate_elsewhere(shard: Shard) -> str:
    """Why no shard runs the embedded verify gate."""
    return (f"this exporter is {shard.describe()} and sees only its own accounts' probes, so it does not run "
            "the verify gate: use `marketplace-exporter verify --prometheus.url=...`, which reads every "
            "shard's results from Prometheus (docs/verify.md)")


def install(core: Core, app: web.Application) -> None:
    core.registry.register(ShardCollector(core.shard))
