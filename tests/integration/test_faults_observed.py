"""Simulator + exporter on port 0, in one process: every fault the simulator can inject is seen
in /metrics with the right reason and code, other checks stay healthy, and the exporter's own
quota spend matches what the simulator counted."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from stacklib import Stack, fast, stack_fixture, value  # noqa: F401  (stack_fixture: the `stack` fixture)

from marketplace_exporter.cli import demo_config_path
from marketplace_exporter.server import ConfigSource, create_app
from marketplace_exporter.simulator import create_simulator_app
from marketplace_exporter.webserver.lifecycle import LIFECYCLE_ENABLED

SG = {"marketplace": "shopee", "account": "sg-main"}
US = {"marketplace": "amazon_sp", "account": "us-main"}
WISH = {"marketplace": "wish", "account": "us-main", "check": "oauth_test"}
TEMU = {"marketplace": "temu", "account": "us-main"}
OZON = {"marketplace": "ozon", "account": "ru-main", "check": "roles"}

FAULTS = [
    # (fault request, labels of the faulted check, expected reason, expected code or None)
    ({**US, "fault": "token_expired"}, US, "auth", "Unauthorized"),
    # the access token is cached for its lifetime: LWA is only asked again after the API rejects it
    ([{**US, "fault": "token_expired", "check": "token"}, {**US, "fault": "token_expired"}],
     US, "auth", "invalid_grant"),
    ({**US, "fault": "permission_denied"}, US, "permission", "Unauthorized"),
    ({**US, "fault": "throttle"}, US, "throttled", "QuotaExceeded"),
    ({**US, "fault": "server_error"}, US, "server_error", None),
    ({**US, "fault": "http_status", "value": 404}, US, "client_error", None),
    ({**US, "fault": "latency", "value": 1}, US, "timeout", None),
    ({**US, "fault": "hang"}, US, "timeout", None),
    ({**US, "fault": "reset"}, US, "connect", None),
    ({**US, "fault": "malformed_body"}, US, "invalid_response", None),
    ({**US, "fault": "huge_body", "value": 3}, US, "invalid_response", None),
    ({**SG, "fault": "token_expired"}, SG, "auth", "invalid_acceess_token"),
    ({**SG, "fault": "permission_denied"}, SG, "permission", "error_auth"),
    ({**SG, "fault": "throttle"}, SG, "throttled", "error_rate_limit"),
    ({**SG, "fault": "throttle", "value": 200}, SG, "throttled", "error_rate_limit"),  # error in a 200 body
    ({**SG, "fault": "server_error"}, SG, "server_error", "error_server"),
    ({**SG, "fault": "malformed_body"}, SG, "invalid_response", None),
    ({**WISH, "fault": "token_expired"}, WISH, "auth", "1007"),
    ({**TEMU, "fault": "permission_denied"}, TEMU, "permission", "3000032"),
    # an auth fault on Ozon would pause the check 10 minutes by design: throttling shows the path
    ({**OZON, "fault": "throttle"}, OZON, "throttled", "8"),
    ({"marketplace": "http", "check": "health", "fault": "http_status", "value": 503},
     {"marketplace": "http", "account": "self"}, "server_error", None),
    ({"marketplace": "http", "check": "health", "fault": "malformed_body"},
     {"marketplace": "http", "account": "self"}, "invalid_response", None),
]


@pytest.mark.parametrize(("fault", "labels", "reason", "code"), FAULTS,
                         ids=[f"{f['marketplace']}-{f['fault']}-{f.get('check', '')}{f.get('value', '')}"
                              for f in (entry[0] if isinstance(entry[0], dict) else entry[0][0] for entry in FAULTS)])
async def test_each_fault_is_classified_in_metrics_and_isolated(
        stack: Stack, fault: dict[str, object] | list[dict[str, object]], labels: dict[str, str], reason: str,
        code: str | None) -> None:
    await stack.wait_for(lambda s: value(s, "marketplace_probe_success", **labels) == 1.0
                         and value(s, "marketplace_probe_success", account="my-main") == 1.0)
    for one in fault if isinstance(fault, list) else [fault]:
        await stack.fault(**one)
    samples = await stack.wait_for(
        lambda s: (value(s, "marketplace_probe_failures_total", **labels, reason=reason) or 0) >= 1
        and value(s, "marketplace_probe_success", **labels) == 0.0
        and (code is None or (value(s, "marketplace_api_errors_total", **labels, code=code) or 0) >= 1))
    # a fault on one account never affects another
    assert value(samples, "marketplace_probe_success", account="my-main") == 1.0
    # the reasons alerts fire on at the first increase exist at 0 for every check; others appear with
    # their first failure (docs/metrics.md, "Series per check")
    assert value(samples, "marketplace_probe_failures_total", account="my-main", reason="auth") == 0.0
    assert value(samples, "marketplace_probe_failures_total", account="my-main", reason="tls") is None
    async with stack.session.delete(f"{stack.simulator}/__sim/faults") as response:
        assert response.status in (200, 204)
    if reason != "throttled":  # throttling backs off for minutes by design
        await stack.wait_for(lambda s: value(s, "marketplace_probe_success", **labels) == 1.0)


async def test_exporters_request_count_matches_the_simulators(stack: Stack) -> None:
    await stack.wait_for(lambda s: (value(s, "marketplace_probes_total", account="sg-main") or 0) >= 5)
    async with stack.session.get(f"{stack.simulator}/__sim/requests") as response:
        sim = await response.json()
    samples = await stack.samples()
    ours = value(samples, "marketplace_probe_requests_total", account="sg-main", step="call") or 0
    theirs = sim["accounts"].get("shopee:sg-main:get_shop_info", 0)
    assert abs(ours - theirs) <= 1  # at most the one probe in flight between the two reads


async def test_amazon_mints_one_token_and_reuses_it(stack: Stack) -> None:
    await stack.wait_for(lambda s: (value(s, "marketplace_probes_total", marketplace="amazon_sp", account="us-main")
                                    or 0) >= 5)
    samples = await stack.samples()
    assert value(samples, "marketplace_probe_requests_total", marketplace="amazon_sp", account="us-main",
                 step="token") == 1.0
    expiry = value(samples, "marketplace_credential_expiry_timestamp_seconds", marketplace="amazon_sp",
                   account="us-main", credential="access_token")
    assert expiry is not None and 3500 < expiry - time.time() <= 3600


async def test_probe_endpoint_runs_one_check_and_debug_trace_is_redacted(stack: Stack) -> None:
    check = "shopee/sg-main/get_shop_info"
    async with stack.session.get(f"{stack.exporter}/probe", params={"check": check}) as response:
        assert response.status == 200
        text = await response.text()
    assert 'marketplace_probe_success{account="sg-main"' in text
    async with stack.session.get(f"{stack.exporter}/probe", params={"check": check, "debug": "true"}) as response:
        trace = await response.text()
    assert "GET http://127.0.0.1" in trace and "/api/v2/shop/get_shop_info" in trace
    assert "access_token=<redacted>" in trace and "sign=<redacted>" in trace
    assert "sim-shopee-access-sg-main" not in trace and "sim-shopee-partner-key" not in trace
    async with stack.session.get(f"{stack.exporter}/probe", params={"check": "http://evil.example/"}) as response:
        assert response.status == 404  # only configured checks, never an arbitrary URL


async def test_reload_rejects_a_bad_file_keeps_probing_and_applies_a_good_one(tmp_path: Path) -> None:
    simulator = TestServer(create_simulator_app(), host="127.0.0.1")
    await simulator.start_server()
    sim_url = f"http://127.0.0.1:{simulator.port}"
    config = tmp_path / "config.yml"
    demo = fast(Path(demo_config_path()).read_text(), sim_url)
    config.write_text(demo)
    source = ConfigSource(str(config))
    app = create_app(source, source.load())
    app[LIFECYCLE_ENABLED] = True  # as with --web.enable-lifecycle: this test reloads over HTTP
    exporter = TestServer(app, host="127.0.0.1")
    await exporter.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            stack = Stack(f"http://127.0.0.1:{exporter.port}", sim_url, session)
            await stack.wait_for(lambda s: value(s, "marketplace_probe_success", account="sg-main") == 1.0)
            config.write_text(demo.replace("site: SG", "site: Singapore"))
            async with session.post(f"{stack.exporter}/-/reload") as response:
                assert response.status == 400
                assert "accounts[2].site: expected" in await response.text()
            samples = await stack.samples()
            assert value(samples, "marketplace_exporter_config_last_reload_successful") == 0.0
            before = value(samples, "marketplace_probes_total", account="sg-main") or 0
            await stack.wait_for(lambda s: (value(s, "marketplace_probes_total", account="sg-main") or 0) > before)
            # a good file: my-main removed → its series vanish; the rest keeps its counters
            config.write_text(demo.split("  - marketplace: shopee\n    alias: my-main")[0]
                              + "http_checks" + demo.split("http_checks", 1)[1])
            async with session.post(f"{stack.exporter}/-/reload") as response:
                assert response.status == 200, await response.text()
            samples = await stack.samples()
            assert value(samples, "marketplace_exporter_config_last_reload_successful") == 1.0
            assert value(samples, "marketplace_probe_success", account="my-main") is None
            assert (value(samples, "marketplace_probes_total", account="sg-main") or 0) > before
    finally:
        await exporter.close()
        await simulator.close()
