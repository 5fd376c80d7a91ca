"""Real OpenTelemetry SDKs export spans of real HTTP calls to the exporter's /v1/traces.

Two "ERPs" call the simulator's Amazon SP-API while it injects a 429 storm, 401s, 5xx and a
connection reset: a Python process (opentelemetry-sdk, the requests instrumentation, the
OTLP/HTTP protobuf exporter with gzip; once with the instrumentation's default older HTTP semconv,
once with the stable one) and a Node.js process (the Node SDK 0.223, the node:http
instrumentation, whose default is the stable semconv, the OTLP/HTTP JSON exporter). The
exporter's ``marketplace_client_*`` series must match call for call what the simulator counted and
what the client saw. The Node packages come from tests/integration/otlp_node/package-lock.json
(``npm ci`` on first use); without node/npm the Node test skips, or fails under REQUIRE_STACK=1.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from conftest import require_binary
from prometheus_client.parser import text_string_to_metric_families

from marketplace_exporter.adapters.shopee import sign
from marketplace_exporter.server import ConfigSource, create_app
from marketplace_exporter.simulator import create_simulator_app
from marketplace_exporter.traffic import otlp_json
from marketplace_exporter.traffic.otlp_decode import ResourceSpans

TOKEN = "otlp-sdk-test-token-Vb61"
HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "otlp_node"
# the account's own probes go to a closed port, so they never touch the simulator's faults or counts
CONFIG = """
accounts:
  - marketplace: amazon_sp
    alias: us-main
    site: US
    base_url: http://127.0.0.1:9/amazon/na
    auth_url: http://127.0.0.1:9/amazon/lwa
    credentials:
      client_id: amzn1.application-oa2-client.sim0001
      client_secret: {{value: sim-lwa-secret-0001}}
      refresh_token: {{value: "Atzr|sim-refresh-us-main"}}
    checks: [{{operation: marketplace_participations, interval: 1h}}]
  - marketplace: shopee
    alias: sg-main
    site: SG
    base_url: http://127.0.0.1:9/shopee
    credentials: {{partner_id: 2001887, partner_key: {{value: k}}, shop_id: 14701711, access_token: {{value: t}}}}
    checks: [{{operation: get_shops_by_partner, interval: 1h}}]
traffic:
  otlp:
    base_urls:
      {sim}/amazon/na: amazon_sp
      {sim}/amazon/lwa: amazon_sp
      {sim}/shopee: shopee
"""
LWA_FORM = ("grant_type=refresh_token&refresh_token=Atzr%7Csim-refresh-us-main"
            "&client_id=amzn1.application-oa2-client.sim0001&client_secret=sim-lwa-secret-0001")
#: applied oldest first to the Sellers calls: 4 × 429, 2 × 401, 2 × 500, one reset connection
FAULTS = [{"fault": "throttle", "count": 4}, {"fault": "token_expired", "value": 401, "count": 2},
          {"fault": "server_error", "count": 2}, {"fault": "reset", "count": 1}]
CALLS_AFTER_TOKEN = 12
EXPECTED_STATUSES = [200, 429, 429, 429, 429, 401, 401, 500, 500, "error", 200, 200, 200]
SHOP_INFO = "/api/v2/shop/get_shop_info"


@dataclass
class Stack:
    exporter: str
    simulator: str
    session: aiohttp.ClientSession

    async def plan(self) -> dict[str, Any]:
        """Faults armed, counts reset; the LWA token minted here so every client makes the same calls."""
        async with self.session.delete(f"{self.simulator}/__sim/requests"):
            pass
        async with self.session.post(f"{self.simulator}/amazon/lwa/auth/o2/token", data=LWA_FORM,
                                     headers={"Content-Type": "application/x-www-form-urlencoded"}) as r:
            access_token = (await r.json())["access_token"]
        for fault in FAULTS:
            body = {"marketplace": "amazon_sp", "check": "marketplace_participations", **fault}
            async with self.session.post(f"{self.simulator}/__sim/faults", json=body) as response:
                assert response.status == 201, await response.text()
        async with self.session.delete(f"{self.simulator}/__sim/requests"):
            pass
        sellers = {"method": "GET", "url": f"{self.simulator}/amazon/na/sellers/v1/marketplaceParticipations",
                   "headers": {"x-amz-access-token": access_token}}
        lwa = {"method": "POST", "url": f"{self.simulator}/amazon/lwa/auth/o2/token", "body": LWA_FORM,
               "headers": {"Content-Type": "application/x-www-form-urlencoded"}}
        return {"endpoint": f"{self.exporter}/v1/traces", "token": TOKEN,
                "calls": [lwa] + [sellers] * CALLS_AFTER_TOKEN}

    async def simulator_counts(self) -> dict[str, int]:
        async with self.session.get(f"{self.simulator}/__sim/requests") as response:
            routes: dict[str, int] = (await response.json())["routes"]
            return routes

    async def samples(self) -> list[tuple[str, dict[str, str], float]]:
        async with self.session.get(f"{self.exporter}/metrics") as response:
            text = await response.text()
        return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def total(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(value for sample, got, value in samples if sample == name and labels.items() <= got.items())


@pytest.fixture(name="stack")
async def stack_fixture(tmp_path: Path) -> AsyncIterator[Stack]:
    simulator = TestServer(create_simulator_app(), host="127.0.0.1")
    await simulator.start_server()
    sim = f"http://127.0.0.1:{simulator.port}"
    path = tmp_path / "otlp.yml"
    path.write_text(CONFIG.format(sim=sim), encoding="utf-8")
    source = ConfigSource(str(path))
    os.environ["MARKETPLACE_EXPORTER_TRAFFIC_TOKEN"] = TOKEN
    try:
        exporter = TestServer(create_app(source, source.load()), host="127.0.0.1")
        await exporter.start_server()
        async with aiohttp.ClientSession() as session:
            yield Stack(f"http://127.0.0.1:{exporter.port}", sim, session)
        await exporter.close()
    finally:
        os.environ.pop("MARKETPLACE_EXPORTER_TRAFFIC_TOKEN", None)
        await simulator.close()


def client_env(service: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and "PROXY" not in k.upper()}
    return env | {"OTEL_SERVICE_NAME": service, "OTEL_RESOURCE_ATTRIBUTES": "seller.account=us-main,seller.site=US",
                  "OTEL_BSP_SCHEDULE_DELAY": "200"} | extra


async def run_client(argv: list[str], env: dict[str, str], plan: dict[str, Any], cwd: Path) -> list[int | str]:
    process = await asyncio.create_subprocess_exec(*argv, cwd=cwd, env=env, stdin=asyncio.subprocess.PIPE,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(json.dumps(plan).encode()), 90)
    assert process.returncode == 0, err.decode(errors="replace")
    statuses: list[int | str] = json.loads(out.decode().strip().splitlines()[-1])
    return statuses


async def assert_exporter_saw_what_the_simulator_saw(stack: Stack, service: str, statuses: list[int | str]) -> None:
    assert statuses == EXPECTED_STATUSES
    assert await stack.simulator_counts() == {"amazon_sp:token": 1,
                                              "amazon_sp:marketplace_participations": CALLS_AFTER_TOKEN}
    samples = await stack.samples()
    mine = {"marketplace": "amazon_sp", "site": "US", "account": "us-main", "service": service}
    requests, errors = "marketplace_client_requests_total", "marketplace_client_errors_total"
    assert total(samples, requests, **mine) == len(statuses) == 1 + CALLS_AFTER_TOKEN
    assert total(samples, requests, **mine, operation="lwa_token", status_class="2xx") == 1
    sellers = mine | {"operation": "marketplace_participations"}
    by_class = {cls: total(samples, requests, **sellers, status_class=cls) for cls in ("2xx", "4xx", "5xx", "error")}
    assert by_class == {"2xx": 3, "4xx": 6, "5xx": 2, "error": 1}
    reasons = ("throttled", "auth", "server_error", "connect")
    by_reason = {reason: total(samples, errors, **sellers, reason=reason) for reason in reasons}
    assert by_reason == {"throttled": 4, "auth": 2, "server_error": 2, "connect": 1}
    assert total(samples, errors, service=service) == 9
    assert total(samples, "marketplace_client_request_duration_seconds_count", service=service) == 13
    assert total(samples, "marketplace_traffic_spans_total", result="accepted") == 13
    assert total(samples, "marketplace_traffic_spans_total", result="rejected") == 0


@pytest.mark.parametrize("semconv", ["", "http"], ids=["old-semconv", "stable-semconv"])
async def test_python_sdk_spans_match_the_simulator(stack: Stack, semconv: str) -> None:
    """requests instrumentation 0.66b2 sends http.url/http.status_code by default and url.full,
    http.response.status_code, error.type with OTEL_SEMCONV_STABILITY_OPT_IN=http."""
    env = client_env("erp-python", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{stack.exporter}/v1/traces",
                     OTEL_EXPORTER_OTLP_TRACES_HEADERS=f"Authorization=Bearer%20{TOKEN}",
                     OTEL_EXPORTER_OTLP_TRACES_COMPRESSION="gzip", OTEL_SEMCONV_STABILITY_OPT_IN=semconv)
    plan = await stack.plan()
    statuses = await run_client([sys.executable, str(HERE / "otlp_python_client.py")], env, plan, HERE)
    await assert_exporter_saw_what_the_simulator_saw(stack, "erp-python", statuses)


def docs_response_hook() -> str:
    """The Python block of docs/otlp.md "Errors inside 200 answers", as written."""
    text = (HERE.parents[1] / "docs" / "otlp.md").read_text(encoding="utf-8")
    section = text.split("### Errors inside 200 answers", 1)[1].split("\n#", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "docs/otlp.md lost its response hook example"
    return match.group(1)


async def test_the_documented_response_hook_carries_shopee_errors_inside_200s(stack: Stack) -> None:
    """Shopee throttles inside HTTP 200 bodies: invisible to a span, unless the response hook from
    docs/otlp.md copies the code into marketplace.error_code; then it is classified as a probe's."""
    async with stack.session.delete(f"{stack.simulator}/__sim/requests"):
        pass
    async with stack.session.post(f"{stack.simulator}/__sim/faults", json={
            "marketplace": "shopee", "fault": "throttle", "value": 200, "count": 2}) as response:
        assert response.status == 201, await response.text()
    calls = [{"method": "GET", "url": shop_info_url(stack.simulator)} for _ in range(4)]
    env = client_env("erp-shopee", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{stack.exporter}/v1/traces",
                     OTEL_EXPORTER_OTLP_TRACES_HEADERS=f"Authorization=Bearer%20{TOKEN}",
                     OTEL_RESOURCE_ATTRIBUTES="seller.account=sg-main,seller.site=SG")
    plan = {"calls": calls, "setup": docs_response_hook()}
    statuses = await run_client([sys.executable, str(HERE / "otlp_python_client.py")], env, plan, HERE)
    assert statuses == [200, 200, 200, 200]
    assert await stack.simulator_counts() == {"shopee:get_shop_info": 4}
    samples = await stack.samples()
    shop = {"marketplace": "shopee", "site": "SG", "account": "sg-main", "operation": "get_shop_info",
            "service": "erp-shopee"}
    assert total(samples, "marketplace_client_requests_total", **shop, status_class="2xx") == 4
    assert total(samples, "marketplace_client_errors_total", **shop, reason="throttled",
                 code="error_rate_limit") == 2
    assert total(samples, "marketplace_client_errors_total", service="erp-shopee") == 2


def shop_info_url(simulator: str) -> str:
    """A signed Shopee get_shop_info call, as the simulator checks it."""
    timestamp = int(time.time())
    query = {"partner_id": 2001887, "timestamp": timestamp, "access_token": "sim-shopee-access-sg-main",
             "shop_id": 14701711, "sign": sign("sim-shopee-partner-key-0001", 2001887, SHOP_INFO, timestamp,
                                              "sim-shopee-access-sg-main", 14701711)}
    return f"{simulator}/shopee{SHOP_INFO}?{urlencode(query)}"


def node_modules() -> Path:
    """``npm ci`` from the committed lock file when node_modules is missing or older than it."""
    node, npm = require_binary("node"), require_binary("npm")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    marker = NODE_DIR / "node_modules" / ".package-lock.json"
    lock = NODE_DIR / "package-lock.json"
    if not marker.exists() or marker.stat().st_mtime < lock.stat().st_mtime:
        shutil.rmtree(NODE_DIR / "node_modules", ignore_errors=True)
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=NODE_DIR,
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            reason = f"npm ci failed in {NODE_DIR.name} (node {version}): {done.stderr[-2000:]}"
            if os.environ.get("REQUIRE_STACK") == "1":
                pytest.fail(reason, pytrace=False)
            pytest.skip(reason)
    return Path(node)


async def test_node_sdk_spans_match_the_simulator(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Node's exporter sends OTLP/JSON: every body it sends must fit the typed reader (the fast
    path; a body that does not would still count, through the careful reader, but slowly)."""
    read_typed: list[bool] = []
    typed = otlp_json.decode_typed

    def recording(body: bytes, labels: tuple[str, ...]) -> list[ResourceSpans] | None:
        decoded = typed(body, labels)
        read_typed.append(decoded is not None)
        return decoded

    monkeypatch.setattr(otlp_json, "decode_typed", recording)
    node = await asyncio.to_thread(node_modules)
    plan = await stack.plan()
    statuses = await run_client([str(node), "client.cjs"], client_env("erp-node"), plan, NODE_DIR)
    await assert_exporter_saw_what_the_simulator_saw(stack, "erp-node", statuses)
    assert read_typed and all(read_typed), read_typed
