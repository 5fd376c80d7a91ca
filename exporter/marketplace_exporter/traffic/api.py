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

``install(core, app)`` puts the :class:`TrafficAggregator` at ``app[TRAFFIC]``: the deploy gate reads
production error ratios around a deploy marker with ``app[TRAFFIC].window(start, end, service=…)``.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web
from pydantic import ValidationError

from marketplace_exporter.config import LoadedConfig
from marketplace_exporter.core import Core
from marketplace_exporter.request_models import describe
from marketplace_exporter.traffic.aggregate import TrafficAggregator
from marketplace_exporter.traffic.collector import TrafficCollector
from marketplace_exporter.traffic.settings import TrafficConfig
from marketplace_exporter.traffic.wire import TrafficBatch
from marketplace_exporter.webserver.marks import own_credentials
from marketplace_exporter.write_api import WriteAuth, json_error, read_json_body

TRAFFIC = web.AppKey("traffic", TrafficAggregator)
ROUTE = "/api/v1/traffic"


def configured_accounts(config: LoadedConfig) -> Mapping[str, set[str]]:
    """Aliases configured per marketplace: the only ``account`` label values traffic may carry."""
    accounts: dict[str, set[str]] = {}
    for check in config.checks:
        accounts.setdefault(check.marketplace, set()).add(check.account)
    return accounts


def write_auth(settings: TrafficConfig) -> WriteAuth:
    """Who may report traffic (also OTLP, which shares the traffic token)."""
    return WriteAuth(settings.token_env, settings.anonymous_writes, "traffic API", "traffic")


def install(core: Core, app: web.Application) -> None:
    """Add the route, the aggregator (``app[TRAFFIC]``), its collector and a reload hook."""
    config = core.initial
    aggregator = TrafficAggregator(config.traffic, configured_accounts(config))
    app[TRAFFIC] = aggregator
    core.registry.register(TrafficCollector(aggregator))
    core.on_reload(lambda new: aggregator.configure(new.traffic, configured_accounts(new)))
    app.router.add_post(ROUTE, post_traffic)


@own_credentials
async def post_traffic(request: web.Request) -> web.Response:
    aggregator = request.app[TRAFFIC]
    settings = aggregator.settings
    write_auth(settings).check(request)
    body = await read_json_body(request, settings.max_body_bytes)
    if not isinstance(body, dict):
        return json_error(400, "body must be a JSON object {service, instance, dropped, records}")
    try:
        batch = TrafficBatch.model_validate(body)
    except ValidationError as exc:
        problem = describe(TrafficBatch, exc.errors(include_url=False)[0])
        return json_error(400, str(problem), field=problem.field)
    if not aggregator.known_service(batch.service):
        return json_error(429, f"too many reporting services (traffic.max_services = "
                               f"{settings.max_services}); {batch.service!r} is not accepted", field="service")
    result = aggregator.ingest(batch.service, batch.dropped, batch.records)
    return web.json_response({"accepted": result.accepted, "rejected": result.rejected,
                              "errors": result.errors})
