"""A failed config reload fires the shipped reload-failed alert in a real Prometheus (issue 14).

f014b6e: a config with an impossible date (``removal_date: 2026-11-31``) made the reload raise a
bare ``ValueError`` (a 500 over HTTP, an unhandled task error on SIGHUP) while
``marketplace_exporter_config_last_reload_successful`` stayed 1, so the alert could never fire.

Real parts: the exporter process (``run``, reloaded with SIGHUP as an operator does), Debian's
Prometheus scraping it every second and evaluating the GENERATED rules of the test profile (the
rule is found by its expression, so a rename does not break this test; the test profile's ``for:``
is 10 s). Lean: no simulator, no checks, one Prometheus; about 15 s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import free_port, local_client, require_binary, stop_process

from marketplace_exporter.mixin import generate as generator

pytestmark = pytest.mark.stack

METRIC = "marketplace_exporter_config_last_reload_successful"
GOOD = "deprecations:\n  - {marketplace: ebay, api: trading, removal_date: 2026-11-30}\n"
BAD = GOOD.replace("2026-11-30", "2026-11-31")
#: the test profile's for: (10 s) + a scrape and an evaluation, on a loaded machine
FIRE_WITHIN_S = 40.0


def reload_failed_rule(rules_file: Path) -> dict[str, Any]:
    """The generated alert whose expression is ``METRIC == 0``, whatever it is called."""
    groups = yaml.safe_load(rules_file.read_text(encoding="utf-8"))["groups"]
    found = [rule for group in groups for rule in group["rules"]
             if "alert" in rule and METRIC in rule["expr"] and "== 0" in rule["expr"]]
    assert len(found) == 1, f"expected one alert on {METRIC} == 0 in {rules_file}, got {found}"
    return found[0]


def wait_until(check: Any, what: str, timeout: float, explain: Any) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"after {timeout:g}s still waiting for {what}: {explain()}", pytrace=False)
        time.sleep(0.5)


def started(argv: list[str], log: Path, url: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=log.parent)
    deadline = time.monotonic() + 20
    with local_client(timeout=2.0) as client:
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if client.get(url).status_code == 200:
                    return process
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    if process.poll() is None:
        stop_process(process, argv[0])
    pytest.fail(f"{argv[:3]} did not become ready:\n{log.read_text(errors='replace')[-3000:]}", pytrace=False)


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    config = tmp_path / "exporter.yml"
    config.write_text(GOOD)
    url = f"http://127.0.0.1:{free_port()}"
    process = started([sys.executable, "-m", "marketplace_exporter", "run", f"--config.file={config}",
                       f"--web.listen-address={url.removeprefix('http://')}", f"--storage.path={tmp_path / 'data'}"],
                      tmp_path / "exporter.log", f"{url}/-/ready")
    try:
        yield process, url, config
    finally:
        assert stop_process(process, "the exporter") == 0


def test_a_failed_reload_fires_the_reload_failed_alert(exporter: tuple[subprocess.Popen[bytes], str, Path],
                                                      tmp_path: Path) -> None:
    process, url, config = exporter
    generated = generator.write_profile(tmp_path / "generated", "test", "http://127.0.0.1:9/")
    rule = reload_failed_rule(generated[generator.RULES_FILE])
    prometheus_yml = tmp_path / "prometheus.yml"
    prometheus_yml.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(generated[generator.RULES_FILE])],
        "scrape_configs": [{"job_name": "marketplace-exporter",  # the job the shipped rules select
                            "static_configs": [{"targets": [url.removeprefix("http://")]}]}]}))
    prom_url = f"http://127.0.0.1:{free_port()}"
    prometheus = started([require_binary("prometheus"), f"--config.file={prometheus_yml}",
                          f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                          f"--web.listen-address={prom_url.removeprefix('http://')}"],
                         tmp_path / "prometheus.log", f"{prom_url}/-/ready")
    try:
        with local_client() as client:
            def query(promql: str) -> list[dict[str, Any]]:
                body = client.get(f"{prom_url}/api/v1/query", params={"query": promql}).json()
                assert body["status"] == "success", body
                return list(body["data"]["result"])

            def alert_states() -> dict[str, str]:
                alerts = client.get(f"{prom_url}/api/v1/alerts").json()["data"]["alerts"]
                return {a["labels"]["alertname"]: a["state"] for a in alerts}

            wait_until(lambda: query(f"{METRIC} == 1"), "the first scrape (reload state 1)", 20, lambda: query(METRIC))
            config.write_text(BAD)
            os.kill(process.pid, signal.SIGHUP)
            wait_until(lambda: query(f"{METRIC} == 0"), f"{METRIC} to drop to 0", 10, lambda: query(METRIC))
            wait_until(lambda: alert_states().get(rule["alert"]) == "firing",
                       f"{rule['alert']} (for: {rule['for']}) to fire", FIRE_WITHIN_S, alert_states)
            log = (tmp_path / "exporter.log").read_text(encoding="utf-8")
            assert (f"{config}:2: deprecations[0].removal_date: expected a real date (YYYY-MM-DD, optionally a "
                    "time), got '2026-11-31' (day is out of range for month)") in log
            assert "Traceback" not in log
            config.write_text(GOOD)  # fixed: the alert resolves with the next good reload
            os.kill(process.pid, signal.SIGHUP)
            wait_until(lambda: rule["alert"] not in alert_states(), f"{rule['alert']} to resolve", 10, alert_states)
    finally:
        assert stop_process(prometheus, "prometheus") == 0
