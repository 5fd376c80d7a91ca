"""TLS certificate expiry for probed hosts and configured extra hosts, served by the simulator over
TLS with certificates made at test time; and the API deprecation calendar in /metrics."""

from __future__ import annotations

import ssl
import subprocess
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from stacklib import Stack, value

from marketplace_exporter.server import ConfigSource, create_app
from marketplace_exporter.simulator import create_simulator_app


def make_cert(directory: Path, name: str, days: int) -> tuple[Path, Path]:
    """A self-signed certificate for localhost/127.0.0.1, valid for ``days``."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", str(days), "-subj", f"/CN={name}",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def not_after(cert: Path) -> float:
    text = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", str(cert)],
                          check=True, capture_output=True, text=True).stdout
    return float(ssl.cert_time_to_seconds(text.strip().split("=", 1)[1]))


async def tls_simulator(cert: Path, key: Path) -> TestServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = TestServer(create_simulator_app(), host="127.0.0.1")
    await server.start_server(ssl=context)
    return server


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[tuple[Stack, float, int, int]]:
    trusted_cert, trusted_key = make_cert(tmp_path, "trusted", days=20)
    rogue_cert, rogue_key = make_cert(tmp_path, "rogue", days=5)
    trusted = await tls_simulator(trusted_cert, trusted_key)
    rogue = await tls_simulator(rogue_cert, rogue_key)
    config = tmp_path / "config.yml"
    config.write_text(textwrap.dedent(f"""\
        defaults: {{interval: 200ms, timeout: 150ms, ca_file: {trusted_cert}}}
        http_checks:
          - {{name: erp, url: "https://127.0.0.1:{trusted.port}/http/health"}}
        tls_hosts:
          - {{host: localhost, port: {trusted.port}, interval: 200ms}}
          - {{host: localhost, port: {rogue.port}, interval: 200ms}}
        deprecations:
          - {{marketplace: amazon_sp, api: catalog_items_v0_items, removal_date: 2027-01-31}}
          - {{marketplace: shopee, api: v2_logistics_legacy, removal_date: 2027-03-01}}
        """))
    source = ConfigSource(str(config))
    exporter = TestServer(create_app(source, source.load()), host="127.0.0.1")
    await exporter.start_server()
    async with aiohttp.ClientSession() as session:
        yield Stack(f"http://127.0.0.1:{exporter.port}", "", session), not_after(trusted_cert), trusted.port, \
            rogue.port
    await exporter.close()
    await trusted.close()
    await rogue.close()


async def test_certificate_expiry_of_probed_and_extra_hosts(stack: tuple[Stack, float, int, int]) -> None:
    client, expiry, trusted_port, rogue_port = stack
    samples = await client.wait_for(
        lambda s: value(s, "marketplace_tls_cert_expiry_timestamp_seconds",
                        host=f"127.0.0.1:{trusted_port}") is not None
        and value(s, "marketplace_tls_cert_expiry_timestamp_seconds", host=f"localhost:{trusted_port}") is not None
        and (value(s, "marketplace_probe_failures_total", marketplace="tls", check=f"localhost:{rogue_port}",
                   reason="tls") or 0) >= 1)
    assert value(samples, "marketplace_tls_cert_expiry_timestamp_seconds", host=f"127.0.0.1:{trusted_port}") == expiry
    days_left = (expiry - datetime.now(UTC).timestamp()) / 86400
    assert 19 < days_left <= 20
    assert value(samples, "marketplace_probe_success", marketplace="tls", check=f"localhost:{trusted_port}") == 1
    # an untrusted certificate fails verification: a visible tls failure, no made-up expiry
    assert value(samples, "marketplace_probe_success", marketplace="tls", check=f"localhost:{rogue_port}") == 0
    assert value(samples, "marketplace_tls_cert_expiry_timestamp_seconds", host=f"localhost:{rogue_port}") is None


async def test_deprecation_calendar_merges_config_over_shipped_entries(
        stack: tuple[Stack, float, int, int]) -> None:
    client = stack[0]
    samples = await client.samples()
    def removal(api: str) -> float | None:
        return value(samples, "marketplace_api_deprecation_timestamp_seconds", api=api)
    assert removal("catalog_items_v0_items") == datetime(2027, 1, 31, tzinfo=UTC).timestamp()  # config wins
    assert removal("authorization_v1") == datetime(2024, 3, 27, tzinfo=UTC).timestamp()  # shipped
    assert removal("v2_logistics_legacy") == datetime(2027, 3, 1, tzinfo=UTC).timestamp()
