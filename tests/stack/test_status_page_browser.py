"""The status page in a real headless Chromium, at desktop and phone sizes.

Why a browser and not an HTML parse: "readable on a phone" is a layout property (the table turns
into cards under 700 px through a media query), and "one row per check, names visible" is about
what the CSS actually shows. Only a rendering engine answers those. Chromium is driven through the
DevTools Protocol over aiohttp's websocket client, so this needs no new dependency.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import DemoExporter, demo_secret_values, require_binary, stop_process

pytestmark = pytest.mark.stack

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-port=0",
)
#: a fault shows after the next probe (5 s ± 10 %) and the page's next render
FAULT_VISIBLE_S = 20.0


@dataclass(frozen=True)
class Viewport:
    name: str
    width: int
    height: int
    mobile: bool
    scale: float


DESKTOP = Viewport("desktop", 1280, 800, mobile=False, scale=1)
PHONE = Viewport("phone", 390, 844, mobile=True, scale=2)

#: returns what the assertions need in one round trip, while the page is known to be loaded
SNAPSHOT_JS = """(() => {
  const rows = Array.from(document.querySelectorAll("table.checks tbody tr")).map(tr => {
    const box = tr.getBoundingClientRect();
    return {cells: Array.from(tr.cells).map(td => td.innerText.trim()),
            width: box.width, height: box.height, left: box.left, right: box.right};
  });
  return {href: location.href, readyState: document.readyState, fresh: !window.__before_navigate,
          rows: rows,
          scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
          html: document.documentElement.outerHTML,
          tooWide: Array.from(document.body.querySelectorAll("*"))
            .filter(el => el.getBoundingClientRect().right > document.documentElement.clientWidth)
            .slice(0, 5).map(el => el.tagName + " " + JSON.stringify(el.innerText.slice(0, 40)) + " right="
                                   + el.getBoundingClientRect().right)};
})()"""


class CDPError(RuntimeError):
    """The browser answered a DevTools command with an error."""


class Page:
    """One tab, attached with a flat session over the browser's DevTools websocket.

    Commands run one at a time and events are dropped: the test polls page state with
    Runtime.evaluate instead of following load events, which survives the page's own 5 s
    meta refresh reloading it between two commands.
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._next_id = 0
        self.session_id: str | None = None

    async def send(self, method: str, params: dict[str, Any] | None = None, *,
                   browser_level: bool = False) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self.session_id is not None and not browser_level:
            message["sessionId"] = self.session_id
        await self._ws.send_str(json.dumps(message))
        while True:
            frame = await self._ws.receive(timeout=30)
            if frame.type is not aiohttp.WSMsgType.TEXT:
                raise CDPError(f"{method}: DevTools connection ended ({frame.type.name})")
            data = json.loads(frame.data)
            if data.get("id") == self._next_id:
                if "error" in data:
                    raise CDPError(f"{method}: {data['error']}")
                result: dict[str, Any] = data.get("result", {})
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise CDPError(f"evaluate: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def set_viewport(self, viewport: Viewport) -> None:
        await self.send("Emulation.setDeviceMetricsOverride", {
            "width": viewport.width, "height": viewport.height,
            "deviceScaleFactor": viewport.scale, "mobile": viewport.mobile})

    async def load(self, url: str, timeout: float = 10.0) -> dict[str, Any]:
        """Navigate and return :data:`SNAPSHOT_JS` once the new document is complete (a marker
        set on the old document tells the two apart when the URL does not change)."""
        await self.evaluate("window.__before_navigate = true")
        await self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout
        while True:
            try:
                snapshot: dict[str, Any] = await self.evaluate(SNAPSHOT_JS)
                if snapshot["fresh"] and snapshot["readyState"] == "complete" and snapshot["href"] == url:
                    return snapshot
            except CDPError:  # the context went away mid-evaluate: a navigation or a refresh
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{url} did not finish loading within {timeout:g}s", pytrace=False)
            await asyncio.sleep(0.1)

    async def screenshot(self, path: Path) -> None:
        """A full-page PNG at the emulated size."""
        metrics = await self.send("Page.getLayoutMetrics")
        size = metrics["cssContentSize"]
        shot = await self.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
        data = base64.b64decode(shot["data"])
        assert data.startswith(b"\x89PNG\r\n\x1a\n"), "Page.captureScreenshot returned no PNG"
        path.write_bytes(data)


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    """A fresh headless Chromium and one tab in it; the browser is stopped by PID (SIGTERM)."""
    binary = require_binary("chromium")
    profile = tmp_path / "chromium-profile"
    log_path = tmp_path / "chromium.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        ws_url = await _devtools_url(proc, profile / "DevToolsActivePort", log_path)
        async with aiohttp.ClientSession() as session, session.ws_connect(ws_url, max_msg_size=0) as ws:
            tab = Page(ws)
            target = await tab.send("Target.createTarget", {"url": "about:blank"})
            attached = await tab.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
            tab.session_id = attached["sessionId"]
            await tab.send("Page.enable")
            yield tab
    finally:
        stop_process(proc, "chromium")


async def _devtools_url(proc: subprocess.Popen[bytes], port_file: Path, log_path: Path) -> str:
    """Chromium writes its DevTools port and browser path to DevToolsActivePort once it listens."""
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            port, path = port_file.read_text().split("\n")[:2]
        except (FileNotFoundError, ValueError):
            await asyncio.sleep(0.05)
            continue
        return f"ws://127.0.0.1:{port.strip()}{path.strip()}"
    pytest.fail(f"chromium did not open its DevTools port:\n{log_path.read_text(errors='replace')[-3000:]}",
                pytrace=False)


@pytest.fixture
def sim(demo_exporter: DemoExporter) -> Iterator[DemoExporter]:
    """The demo exporter, with every simulator fault cleared afterwards even when a test fails."""
    yield demo_exporter
    demo_exporter.clear_faults()


def _row_for(snapshot: dict[str, Any], check_id: str) -> list[str]:
    """The cells of the one row showing ``marketplace/account/check``."""
    marketplace, account, check = check_id.split("/")
    rows = [row for row in snapshot["rows"] if {marketplace, account, check} <= set(row["cells"])]
    assert len(rows) == 1, f"{len(rows)} rows show {check_id}: {[row['cells'] for row in snapshot['rows']]}"
    return list(rows[0]["cells"])


def _assert_no_secrets(snapshot: dict[str, Any], where: str) -> None:
    leaked = [secret for secret in demo_secret_values() if secret in snapshot["html"]]
    assert not leaked, f"{where}: secrets in the status page HTML: {leaked}"


def _assert_fits(snapshot: dict[str, Any], viewport: Viewport) -> None:
    """No sideways scrolling: content no wider than the emulated screen.

    ``scrollWidth <= innerWidth`` alone is not enough: in mobile emulation Chromium zooms a page
    that is too wide out until it fits (as phones do), so innerWidth grows with the content. Both
    are therefore compared with the emulated width itself.
    """
    assert snapshot["scrollWidth"] <= viewport.width and snapshot["innerWidth"] == viewport.width, (
        f"{viewport.name}: the page is wider than the {viewport.width} px screen (scrollWidth "
        f"{snapshot['scrollWidth']}, innerWidth {snapshot['innerWidth']}); too wide: {snapshot['tooWide']}")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=lambda v: v.name)
async def test_one_visible_row_per_check(page: Page, demo_exporter: DemoExporter, viewport: Viewport,
                                         tmp_path: Path) -> None:
    check_ids = demo_exporter.check_ids()
    assert len(check_ids) >= 5, f"the demo config lost checks: {check_ids}"
    await page.set_viewport(viewport)
    snapshot = await page.load(f"{demo_exporter.url}/")

    await page.screenshot(tmp_path / f"status-{viewport.name}.png")  # first: useful when it fails

    assert len(snapshot["rows"]) == len(check_ids), [row["cells"] for row in snapshot["rows"]]
    for check_id in check_ids:
        _row_for(snapshot, check_id)  # innerText: hidden cells would not count
    for row in snapshot["rows"]:
        assert row["width"] > 0 and row["height"] > 0, f"a row is not rendered: {row['cells']}"
        assert row["left"] >= 0 and row["right"] <= viewport.width + 0.5, (
            f"{viewport.name}: a row sticks out of the viewport: {row}")
    _assert_fits(snapshot, viewport)
    _assert_no_secrets(snapshot, viewport.name)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=lambda v: v.name)
async def test_failing_check_shows_reason_and_code(page: Page, sim: DemoExporter, viewport: Viewport,
                                                   tmp_path: Path) -> None:
    failing = "shopee/sg-main/get_shop_info"
    sim.inject_fault("shopee", "token_expired", account="sg-main")
    await page.set_viewport(viewport)

    deadline = time.monotonic() + FAULT_VISIBLE_S
    while True:
        snapshot = await page.load(f"{sim.url}/")
        cells = _row_for(snapshot, failing)
        if any("FAIL" in cell for cell in cells):
            break
        if time.monotonic() > deadline:
            pytest.fail(f"{failing} still not FAIL on the page after {FAULT_VISIBLE_S:g}s: {cells}", pytrace=False)
        await asyncio.sleep(0.5)

    await page.screenshot(tmp_path / f"status-{viewport.name}-failing.png")

    text = " ".join(cells)
    assert "auth" in text, f"reason missing from the failing row: {cells}"
    assert "invalid_acceess_token" in text, f"Shopee's error code missing from the failing row: {cells}"
    above = [row["cells"] for row in snapshot["rows"][:[row["cells"] for row in snapshot["rows"]].index(cells)]]
    assert all(any("FAIL" in cell for cell in row) for row in above), f"failures are not listed first: {above}"
    # the same partner key and host as sg-main, so the most likely collateral damage
    for other in ("shopee/my-main/get_shop_info", "http/self/erp-order-sync"):
        assert not any("FAIL" in cell for cell in _row_for(snapshot, other)), f"{other} shows FAIL too"
    _assert_fits(snapshot, viewport)
    _assert_no_secrets(snapshot, f"{viewport.name}, failing")
