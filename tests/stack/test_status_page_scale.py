"""The status page over 50,000 checks, in a real headless Chromium: small, worst first, filterable,
paged, and still fitting a phone.

The 50,000 checks are not probed (that would take minutes and a config loader run): their
results are synthetic but go through the store's one write path, ``Store.record``, exactly as the
engine records real probes, and the page is served by the exporter's own views on a real socket.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from test_status_page_browser import DESKTOP, PHONE, Page, Viewport, _assert_fits, page  # noqa: F401

from marketplace_exporter.adapters.base import NoParams
from marketplace_exporter.catalogue import Credential, Reason, Step
from marketplace_exporter.config import CheckSpec, LoadedConfig
from marketplace_exporter.config.source import ConfigSource
from marketplace_exporter.core import Core
from marketplace_exporter.model import CredentialObservation, Operation, ProbeOutcome
from marketplace_exporter.server import checks_views
from marketplace_exporter.store import ProbeRecord, Store

pytestmark = pytest.mark.stack

CHECKS = 50_000
NOW = time.time()  # the page compares expiries with the real clock
SITES = (("amazon_sp", "US"), ("amazon_sp", "DE"), ("amazon_sp", "JP"), ("shopee", "SG"), ("shopee", "MY"),
         ("http", "global"))
#: every 997th check fails; every 1009th account's refresh token expires in three days
FAILING_EVERY, EXPIRING_EVERY, PENDING_EVERY = 997, 1009, 50
MAX_PAGE_BYTES = 200 * 1024


def population() -> Store:
    store = Store()
    specs = []
    for i in range(CHECKS):
        marketplace, site = SITES[i % len(SITES)]
        specs.append(CheckSpec(
            marketplace=marketplace, site=site, account=f"seller-{i // 2:05d}", name=f"check-{i % 2}",
            adapter=None, operation=Operation("op", "t"), interval=60, timeout=10,  # type: ignore[arg-type]
            jitter=0, quota_budget=0.5, tags=(), base_url=None, auth_url=None, sandbox=False,
            credentials=None, params=NoParams()))
    store.reconcile(specs)
    for i, spec in enumerate(specs):
        if i % PENDING_EVERY == 7:
            continue  # never probed yet
        credentials = (CredentialObservation(Credential.REFRESH_TOKEN, NOW + (3 if i % EXPIRING_EVERY == 0
                                                                             else 200) * 86400),)
        outcome = (ProbeOutcome.failed(Reason.AUTH, "token expired <b>", code="InvalidToken", http_status=401)
                   if i % FAILING_EVERY == 0 else ProbeOutcome.ok(200, credentials=credentials))
        store.record(spec, ProbeRecord(outcome=outcome, code_label=None, started_at=NOW - 30,
                                       finished_at=NOW - 29.8, duration=0.2, call_duration=0.19,
                                       steps=(Step.CALL,)), None)
    return store


@pytest.fixture(scope="module")
def store() -> Store:
    return population()


@pytest.fixture
async def server(store: Store) -> AsyncIterator[str]:
    app = web.Application()
    unused = LoadedConfig(path="synthetic.yml", checks=(), max_body_bytes=1 << 20, concurrency=1,
                          concurrency_per_host=1)
    checks_views.install(Core(source=ConfigSource("synthetic.yml"), initial=unused, store=store), app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}"
    await server.close()


async def test_the_page_stays_small_and_the_api_agrees(server: str, store: Store) -> None:
    failing = len(range(0, CHECKS, FAILING_EVERY)) - len([i for i in range(0, CHECKS, FAILING_EVERY)
                                                          if i % PENDING_EVERY == 7])
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server}/") as response:
            body = await response.read()
            assert response.status == 200
            assert "script-src" not in response.headers["Content-Security-Policy"]
        assert len(body) <= MAX_PAGE_BYTES, f"status page is {len(body):,} bytes at {CHECKS:,} checks"
        async with session.get(f"{server}/api/v1/checks", params={"state": "failing", "per_page": "1000"}) as answer:
            data = json.loads(await answer.read())
        assert data["total"] == failing == sum(row["failing"] for row in data["summary"])
        assert {check["state"] for check in data["checks"]} == {"failing"} and len(data["checks"]) == failing
        assert sum(row["total"] for row in data["summary"]) == CHECKS
        async with session.get(f"{server}/api/v1/checks", params={"state": "bogus"}) as bad:
            assert bad.status == 400 and (await bad.json())["field"] == "state"


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=lambda v: v.name)
async def test_fifty_thousand_checks_in_a_browser(page: Page, server: str, viewport: Viewport) -> None:  # noqa: F811
    await page.set_viewport(viewport)
    snapshot = await page.load(f"{server}/", timeout=20)
    rows = [row["cells"] for row in snapshot["rows"]]
    assert len(rows) == 100, f"{len(rows)} rows on the first page"
    states = [" ".join(cells) for cells in rows]
    failing = [i for i, text in enumerate(states) if "FAIL" in text]
    assert failing == list(range(len(failing))) and len(failing) > 40, f"failing checks are not first: {failing}"
    assert "refresh_token in 3d" in states[len(failing)], f"expiring credentials do not come next: {states[:60]}"
    text = await page.evaluate("document.body.innerText")
    assert "50,000" in text and "page 1 of 500" in text, text[:500]
    assert "<b>" in text  # a marketplace's message is shown as text, never as markup
    _assert_fits(snapshot, viewport)

    filtered = await page.load(f"{server}/?marketplace=shopee&site=MY&state=failing", timeout=20)
    cells = [row["cells"] for row in filtered["rows"]]
    assert cells and all(row[0] == "shopee" and row[1] == "MY" and "FAIL" in row[4] for row in cells), cells
    found = await page.load(f"{server}/?q=seller-01234/check-1", timeout=20)
    assert [row["cells"][2:4] for row in found["rows"]] == [["seller-01234", "check-1"]]
    _assert_fits(found, viewport)
