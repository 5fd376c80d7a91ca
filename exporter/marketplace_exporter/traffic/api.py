"""``POST /api/v1/traffic``: production traffic reports from the sellers' own systems.

Body (what :class:`~marketplace_exporter.traffic.reporter.Reporter` sends)::

    {"service": "erp", "instance": "erp-01", "dropped": 0,
     "records": [{"marketplace": "shopee", "site": "SG", "account": "sg-main",
                  "operation": "order.get_order_list", "status": 200, "reason": "auth",
                  "code": "invalid_acceess_token", "duration": 0.231, "ratelimit": null}]}

Answers 200 ``{"accepted": n, "rejected": m, "errors": [{"index": i, "error": "..."}]}``: a bad
record is rejected with its reason and the rest of the batch counts. 400 when the batch itself is
malformed (no service, records not a list); 401/503 from the Bearer check (token in the variable
``traffic.token_env`` names, ``MARKETPLACE_EXPORTER_TRAFFIC_TOKEN`` by default); 413 over
``traffic.max_body_bytes``; 429 when a new ``service`` would exceed ``traffic.max_services``.

``install(app)`` puts the :class:`TrafficAggregator` at ``app[TRAFFIC]``: the deploy gate reads
production error ratios around a deploy marker with ``app[TRAFFIC].window(start, end, service=…)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from aiohttp import web

from marketplace_exporter.config import LoadedConfig
from marketplace_exporter.server.api_support import check_bearer, json_error, read_json_body
from marketplace_exporter.server.app import INITIAL, REGISTRY, RELOAD_HOOKS
from marketplace_exporter.traffic.aggregate import TrafficAggregator
from marketplace_exporter.traffic.collector import TrafficCollector

TRAFFIC = web.AppKey("traffic", TrafficAggregator)
ROUTE = "/api/v1/traffic"
_SERVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$")
_MAX_DROPPED = 10**12


def configured_accounts(config: LoadedConfig) -> Mapping[str, set[str]]:
    """Aliases configured per marketplace: the only ``account`` label values traffic may carry."""
    accounts: dict[str, set[str]] = {}
    for check in config.checks:
        accounts.setdefault(check.marketplace, set()).add(check.account)
    return accounts


def install(app: web.Application) -> None:
    """Add the route, the aggregator (``app[TRAFFIC]``), its collector and a reload hook."""
    config = app[INITIAL]
    aggregator = TrafficAggregator(config.traffic, configured_accounts(config))
    app[TRAFFIC] = aggregator
    app[REGISTRY].register(TrafficCollector(aggregator))
    app[RELOAD_HOOKS].append(lambda new: aggregator.configure(new.traffic, configured_accounts(new)))
    app.router.add_post(ROUTE, post_traffic)


async def post_traffic(request: web.Request) -> web.Response:
    aggregator = request.app[TRAFFIC]
    settings = aggregator.settings
    check_bearer(request, settings.token_env, allow_anonymous=settings.anonymous_writes)
    batch = await read_json_body(request, settings.max_body_bytes)
    if not isinstance(batch, dict):
        return json_error(400, "body must be a JSON object {service, instance, dropped, records}")
    service = batch.get("service")
    if not isinstance(service, str) or not _SERVICE.match(service):
        return json_error(400, f"service: expected a name matching {_SERVICE.pattern}", field="service")
    records = batch.get("records", [])
    if not isinstance(records, list):
        return json_error(400, "records: expected a list", field="records")
    dropped = batch.get("dropped", 0)
    if isinstance(dropped, bool) or not isinstance(dropped, int) or not 0 <= dropped <= _MAX_DROPPED:
        return json_error(400, "dropped: expected a non-negative integer", field="dropped")
    if not aggregator.known_service(service):
        return json_error(429, f"too many reporting services (traffic.max_services = "
                               f"{settings.max_services}); {service!r} is not accepted", field="service")
    result = aggregator.ingest(service, dropped, records)
    return web.json_response({"accepted": result.accepted, "rejected": result.rejected,
                              "errors": result.errors})
