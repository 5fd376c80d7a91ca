"""deploy/otel-collector.yml: wired as docs/otlp.md says, and its host filter keeps every host the
adapters know. (No ``otelcol`` is available from this project's registries to validate it for
real; these checks are what can be checked without one.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from otlp_requests import export_request, protobuf_body, span

from marketplace_exporter.adapters import ADAPTERS
from marketplace_exporter.adapters.base import Marketplace
from marketplace_exporter.traffic.otlp_decode import decode_protobuf
from marketplace_exporter.traffic.otlp_settings import OtlpConfig
from marketplace_exporter.traffic.otlp_spans import SpanMapper

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "otel-collector.yml"
IS_MATCH = re.compile(r'IsMatch\(attributes\["([a-z.]+)"\], "([^"]+)"\)')


def adapter_hosts() -> dict[str, frozenset[str]]:
    """The production (and sandbox) hosts each marketplace adapter declares: what its ``match()``
    accepts, so the Collector must keep exactly these."""
    return {adapter.name: adapter.hosts for adapter in ADAPTERS.values()
            if isinstance(adapter, Marketplace) and adapter.hosts}


def config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    return loaded


def test_the_pipeline_sends_filtered_client_spans_to_the_exporter_with_the_token() -> None:
    loaded = config()
    pipeline = loaded["service"]["pipelines"]["traces/marketplace-calls"]
    for kind in ("receivers", "processors", "exporters"):
        assert set(pipeline[kind]) <= set(loaded[kind]), kind
    assert pipeline["processors"][0].startswith("filter/")
    exporter = loaded["exporters"][pipeline["exporters"][0]]
    assert exporter["endpoint"] == "${env:MARKETPLACE_EXPORTER_URL}" and exporter["compression"] == "gzip"
    assert exporter["headers"]["Authorization"] == "Bearer ${env:MARKETPLACE_EXPORTER_TRAFFIC_TOKEN}"
    conditions = loaded["processors"][pipeline["processors"][0]]["traces"]["span"]
    assert "kind != SPAN_KIND_CLIENT" in conditions


def test_the_host_filter_keeps_every_marketplace_host_and_nothing_else() -> None:
    conditions = config()["processors"]["filter/marketplace-calls"]["traces"]["span"]
    patterns = dict(IS_MATCH.findall(" ".join(conditions)))
    assert set(patterns) == {"url.full", "http.url", "server.address", "net.peer.name"}
    by_marketplace = adapter_hosts()
    assert {"wish", "temu", "ozon", "shopee", "amazon_sp"} <= set(by_marketplace)
    hosts = {host for hosts in by_marketplace.values() for host in hosts}
    for host in sorted(hosts):
        for key in ("url.full", "http.url"):
            for url in (f"https://{host}/some/path?x=1", f"https://{host}:443/p", f"https://{host}"):
                assert re.search(patterns[key], url), (key, url)
        for key in ("server.address", "net.peer.name"):
            assert re.search(patterns[key], host), (key, host)
    for foreign in ("hooks.example.com", "api.amazon.com.attacker.net", "evilapi.ebay.com", "api.lazada.sg.evil.io",
                    "merchant.wish.com.evil.io", "fakemerchant.wish.com", "openapi-b-us.temu.com.evil.io",
                    "openapi-b-cn.temu.com", "api-seller.ozon.ru.evil.io", "seller.ozon.ru"):
        assert not re.search(patterns["url.full"], f"https://{foreign}/x"), foreign
        assert not re.search(patterns["server.address"], foreign), foreign


def test_a_span_to_every_host_the_filter_keeps_is_a_marketplace_call() -> None:
    """What the Collector forwards, the exporter counts: a client span to any adapter host is
    accepted under that adapter's name (a path no route names is that marketplace's ``other``)."""
    mapper = SpanMapper(OtlpConfig())
    calls = [(marketplace, host) for marketplace, hosts in sorted(adapter_hosts().items()) for host in sorted(hosts)]
    request = export_request(({"service.name": "erp"}, [
        span({"url.full": f"https://{host}/api/v9/anything?id=1", "http.response.status_code": 200})
        for _, host in calls]))
    [decoded] = decode_protobuf(protobuf_body(request), mapper.labels)
    context = mapper.context(decoded.resource)
    got = [mapper.outcome(item, context).record for item in decoded.spans]
    missed = [(marketplace, host) for (marketplace, host), record in zip(calls, got, strict=True)
              if record is None or record["marketplace"] != marketplace]
    assert not missed
