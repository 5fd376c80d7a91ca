"""deploy/otel-collector.yml: wired as docs/otlp.md says, and its host filter keeps every host the
adapters know. (No ``otelcol`` is available from this project's registries to validate it for
real; these checks are what can be checked without one.)"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from marketplace_exporter.adapters import ADAPTERS
from marketplace_exporter.adapters.common import host_of

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "otel-collector.yml"
IS_MATCH = re.compile(r'IsMatch\(attributes\["([a-z.]+)"\], "([^"]+)"\)')


def adapter_hosts() -> set[str]:
    """Every host an adapter module names: its https:// constants and its *HOSTS / HOST_SITES sets."""
    hosts: set[str] = set()
    for adapter in ADAPTERS.values():
        if not adapter.api_operations:
            continue
        module = importlib.import_module(type(adapter).__module__)
        for name, value in vars(module).items():
            if not name.isupper():
                continue
            if isinstance(value, str) and value.startswith("https://"):
                hosts.add(host_of(value))
            elif re.search(r"HOSTS$|HOST_SITES$", name) and isinstance(value, frozenset | set | Mapping):
                hosts |= {host for host in value if isinstance(host, str)}
    return hosts


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
    hosts = adapter_hosts()
    assert len(hosts) >= 25 and "api-sg.aliexpress.com" in hosts and "auth.lazada.com" in hosts
    for host in sorted(hosts):
        for key in ("url.full", "http.url"):
            for url in (f"https://{host}/some/path?x=1", f"https://{host}:443/p", f"https://{host}"):
                assert re.search(patterns[key], url), (key, url)
        for key in ("server.address", "net.peer.name"):
            assert re.search(patterns[key], host), (key, host)
    for foreign in ("hooks.example.com", "api.amazon.com.attacker.net", "evilapi.ebay.com", "api.lazada.sg.evil.io"):
        assert not re.search(patterns["url.full"], f"https://{foreign}/x"), foreign
        assert not re.search(patterns["server.address"], foreign), foreign
