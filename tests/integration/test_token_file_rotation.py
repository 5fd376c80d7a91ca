"""A seller's ERP refreshes a Shopee token and rewrites the token file: the running exporter picks
the new token (and its expiry dates) up on the next probe, without a reload or restart."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer
from stacklib import Stack, value

from marketplace_exporter.server import ConfigSource, create_app
from marketplace_exporter.simulator import SIM_ACCOUNTS, create_simulator_app


async def test_rewritten_token_file_is_used_without_reload(tmp_path: Path) -> None:
    shop = SIM_ACCOUNTS.shopee.shops[0]
    token_file = tmp_path / "shopee-token.json"
    token_file.write_text(json.dumps({"access_token": "stale-token-from-before-the-refresh"}))
    simulator = TestServer(create_simulator_app(), host="127.0.0.1")
    await simulator.start_server()
    config = tmp_path / "config.yml"
    config.write_text(textwrap.dedent(f"""\
        defaults: {{interval: 200ms, timeout: 150ms}}
        accounts:
          - marketplace: shopee
            alias: {shop.alias}
            site: SG
            base_url: http://127.0.0.1:{simulator.port}/shopee
            credentials:
              partner_id: {SIM_ACCOUNTS.shopee.partner_id}
              partner_key: {{value: {SIM_ACCOUNTS.shopee.partner_key}}}
              shop_id: {shop.shop_id}
              token_file: {token_file}
            checks: [{{operation: get_shop_info}}]
        """))
    source = ConfigSource(str(config))
    exporter = TestServer(create_app(source, source.load()), host="127.0.0.1")
    await exporter.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            stack = Stack(f"http://127.0.0.1:{exporter.port}", f"http://127.0.0.1:{simulator.port}", session)
            await stack.wait_for(lambda s: (value(s, "marketplace_probe_failures_total", account=shop.alias,
                                                  reason="auth") or 0) >= 1)
            token_file.write_text(json.dumps({"access_token": shop.access_token, "expires_at": 1800000000,
                                              "refresh_expires_at": "2027-01-01T00:00:00Z"}))
            os.utime(token_file, (1, os.stat(token_file).st_mtime + 2))
            samples = await stack.wait_for(
                lambda s: value(s, "marketplace_probe_success", account=shop.alias) == 1.0)
            assert value(samples, "marketplace_credential_expiry_timestamp_seconds", account=shop.alias,
                         credential="access_token") == 1800000000
            assert value(samples, "marketplace_credential_expiry_timestamp_seconds", account=shop.alias,
                         credential="refresh_token") == 1798761600
            assert value(samples, "marketplace_exporter_config_last_reload_successful") == 1.0
    finally:
        await exporter.close()
        await simulator.close()
