"""The running exporter follows its accounts files without a reload: a new seller's file adds its
checks, a broken file keeps its last good version and shows up in /metrics and on the status page.
Real HTTP on 127.0.0.1 (aiohttp test server); the sellers' API host is a closed local port."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from marketplace_exporter.server import ConfigSource, create_app
from marketplace_exporter.server.accounts_watch import render_broken_files

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


def seller(alias: str) -> str:
    return json.dumps({"marketplace": "shopee", "alias": alias, "site": "SG", "base_url": "http://127.0.0.1:9",
                       "credentials": {"partner_id": 1, "partner_key": {"value": "k"}, "shop_id": 1,
                                       "access_token": {"value": "t"}},
                       "checks": [{"operation": "get_shop_info", "interval": "1h"}]})


async def _until(predicate: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_files_are_followed_while_running(tmp_path: Path, aiohttp_client: ClientFactory) -> None:
    sellers = tmp_path / "sellers"
    sellers.mkdir()
    (sellers / "a.json").write_text(seller("seller-a"))
    config = tmp_path / "exporter.yml"
    config.write_text("accounts_files: [sellers/]\naccounts_files_poll: 0.1\n")
    source = ConfigSource(str(config))
    client = await aiohttp_client(create_app(source, source.load()))

    async def metrics() -> str:
        return await (await client.get("/metrics")).text()

    assert 'account="seller-a"' in await metrics()
    (sellers / ".b.json.tmp").write_text(seller("seller-b"))  # how an ERP writes: temp file, then rename
    (sellers / ".b.json.tmp").rename(sellers / "b.json")

    async def has_b() -> bool:
        return 'account="seller-b"' in await metrics()
    await _until(has_b)

    (sellers / "a.json").write_text('{"marketplace": "shopee", "alias": ')  # a torn write

    async def a_is_broken() -> bool:
        return 'marketplace_exporter_accounts_files{state="broken"} 1.0' in await metrics()
    await _until(a_is_broken)
    text = await metrics()
    assert 'account="seller-a"' in text  # its last good version still runs
    assert "marketplace_exporter_accounts_file_errors_total 1.0" in text
    assert 'marketplace_exporter_accounts_files{state="ok"} 1.0' in text
    page = await (await client.get("/")).text()
    assert "1 broken accounts file(s)" in page and str(sellers / "a.json") in page
    assert (await client.get("/probe?check=shopee/seller-b/get_shop_info&debug=true")).status == 200


def test_the_status_page_section_is_escaped_bounded_and_absent_when_nothing_is_broken() -> None:
    assert render_broken_files({}) == ""
    html = render_broken_files({f"/s/<x{i}>.json": ("a <b> error",) * 7 for i in range(60)})
    assert "<x0>" not in html and "&lt;x0&gt;" in html and "a &lt;b&gt; error" in html
    assert "60 broken accounts file(s)" in html and "… and 10 more broken files" in html
    assert "… 2 more" in html
