"""``marketplace-exporter demo`` shows credential expiry for every marketplace: the platforms whose
refresh tokens rotate (Lazada, TikTok Shop, AliExpress, Mercado Libre) through token files the
demo's ERP stand-in writes into the demo's temporary directory, as a seller's ERP would."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from pathlib import Path

from conftest import DemoExporter, local_client
from prometheus_client.parser import text_string_to_metric_families

from marketplace_exporter.adapters import ADAPTERS
from marketplace_exporter.adapters.http import HttpCheck

#: the demo accounts whose access token comes from a token file
FROM_FILES = {("lazada", "th-main"), ("lazada", "vn-main"), ("tiktok_shop", "us-main"),
              ("tiktok_shop", "gb-main"), ("aliexpress", "global-main"), ("mercadolibre", "mla-main"),
              ("mercadolibre", "mlb-main"), ("wish", "us-main"), ("wish", "cn-main")}


def expiries(url: str) -> dict[tuple[str, str, str], float]:
    with local_client() as client:
        text = client.get(f"{url}/metrics").text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "marketplace_credential_expiry_timestamp_seconds":
                labels = sample.labels
                found[(labels["marketplace"], labels["account"], labels["credential"])] = sample.value
    return found


def test_every_marketplace_shows_credential_expiry_and_files_feed_the_held_tokens(
        demo_exporter: DemoExporter) -> None:
    marketplaces = {name for name in ADAPTERS if name != HttpCheck.name}
    deadline = time.monotonic() + 30
    while True:
        seen = expiries(demo_exporter.url)
        covered = {marketplace for marketplace, _, _ in seen}
        from_files = {(m, a) for m, a, credential in seen if credential == "access_token"} & FROM_FILES
        if covered >= marketplaces and from_files == FROM_FILES:
            break
        assert time.monotonic() < deadline, (sorted(marketplaces - covered), sorted(FROM_FILES - from_files))
        time.sleep(0.5)
    match = re.search(r"demo: token files \(an ERP's, rotated by it\) in (\S+)", demo_exporter.stdout_text())
    assert match, demo_exporter.stdout_text()
    directory = Path(match.group(1))
    for marketplace, alias in FROM_FILES:
        document = json.loads((directory / f"{marketplace}-{alias}.json").read_text(encoding="utf-8"))
        written = datetime.fromisoformat(document["expires_at"].replace("Z", "+00:00")).timestamp()
        assert seen[(marketplace, alias, "access_token")] == written  # the exporter reads the ERP's file
