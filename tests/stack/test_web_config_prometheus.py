"""A real Prometheus (Debian's) scraping the exporter over TLS with basic auth, from a web config in
the exporter-toolkit format, with certificates made by openssl at test time. The same scrape with a
wrong password, over plain HTTP, or without trusting the CA must fail: Prometheus' own targets API
says why.

One Prometheus, one exporter, four jobs pointing at it: ~10 s of wall time.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
from conftest import free_port, local_client, require_binary, stop_process
from tls_certs import make_certs

pytestmark = pytest.mark.stack

PASSWORD = "scrape-pass-Kq7"
DEADLINE_S = 30.0


def _wait(what: str, ready: Any, proc: subprocess.Popen[bytes], log: Path, timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if ready():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{what} not ready after {timeout:g}s:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(Prometheus URL, exporter https URL)."""
    prometheus = require_binary("prometheus")
    workdir = tmp_path_factory.mktemp("web-config-prometheus")
    certs = make_certs(workdir / "certs")
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode()
    (workdir / "web.yml").write_text(
        f"tls_server_config:\n  cert_file: certs/server.crt\n  key_file: certs/server.key\n"
        f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    (workdir / "config.yml").write_text("{}\n")
    port = free_port()
    exporter_log = workdir / "exporter.log"
    with exporter_log.open("wb") as log:
        exporter = subprocess.Popen(
            [sys.executable, "-m", "marketplace_exporter", "run", "--config.file=config.yml",
             "--web.config.file=web.yml", f"--web.listen-address=127.0.0.1:{port}",
             f"--storage.path={workdir / 'data'}"],
            cwd=workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    target = f"127.0.0.1:{port}"
    jobs = {
        "tls_basic_auth": f"scheme: https\n    tls_config: {{ca_file: {certs.ca}}}\n"
                          f"    basic_auth: {{username: prometheus, password: {PASSWORD}}}",
        "wrong_password": f"scheme: https\n    tls_config: {{ca_file: {certs.ca}}}\n"
                          "    basic_auth: {username: prometheus, password: not-the-password}",
        "plain_http": f"scheme: http\n    basic_auth: {{username: prometheus, password: {PASSWORD}}}",
        "untrusted_ca": f"scheme: https\n    basic_auth: {{username: prometheus, password: {PASSWORD}}}",
    }
    scrape_configs = "".join(f"  - job_name: {job}\n    {settings}\n    static_configs: [{{targets: ['{target}']}}]\n"
                             for job, settings in jobs.items())
    (workdir / "prometheus.yml").write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                                            "scrape_configs:\n" + scrape_configs)
    prom_port = free_port()
    prom_log = workdir / "prometheus.log"
    with prom_log.open("wb") as log:
        prom = subprocess.Popen(
            [prometheus, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            cwd=workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    prom_url = f"http://127.0.0.1:{prom_port}"
    try:
        with local_client(timeout=3.0) as client:
            _wait("prometheus", lambda: client.get(f"{prom_url}/-/ready").status_code == 200, prom, prom_log)
            _wait("exporter", lambda: "exporter: status page https://" in exporter_log.read_text(), exporter,
                  exporter_log)
        yield prom_url, f"https://{target}"
    finally:
        assert stop_process(prom, "prometheus") == 0
        assert stop_process(exporter, "exporter") == 0, exporter_log.read_text(errors="replace")[-3000:]
        assert PASSWORD not in exporter_log.read_text(errors="replace")


def _targets(prom_url: str) -> dict[str, tuple[str, str]]:
    with local_client() as client:
        active = client.get(f"{prom_url}/api/v1/targets").json()["data"]["activeTargets"]
    return {t["labels"]["job"]: (t["health"], t["lastError"]) for t in active}


def test_prometheus_scrapes_over_tls_with_basic_auth_and_every_wrong_way_is_refused(stack: tuple[str, str]) -> None:
    prom_url, _ = stack
    deadline = time.monotonic() + DEADLINE_S
    targets = _targets(prom_url)
    while any(health == "unknown" for health, _ in targets.values()) or len(targets) < 4:
        assert time.monotonic() < deadline, targets
        time.sleep(0.5)
        targets = _targets(prom_url)
    print("\nPrometheus targets (job: health, last error):")
    for job, (health, error) in sorted(targets.items()):
        print(f"  {job}: {health} {error!r}")
    assert targets["tls_basic_auth"] == ("up", "")
    assert targets["wrong_password"][0] == "down" and "401" in targets["wrong_password"][1]
    assert targets["plain_http"][0] == "down"
    assert targets["untrusted_ca"][0] == "down" and "certificate" in targets["untrusted_ca"][1]
    with local_client() as client:
        result = client.get(f"{prom_url}/api/v1/query", params={
            "query": 'marketplace_exporter_build_info{job="tls_basic_auth"} * on() group_left '
                     'process_start_time_seconds{job="tls_basic_auth"}'}).json()["data"]["result"]
    assert len(result) == 1 and float(result[0]["value"][1]) > 1.6e9


def test_the_exporter_refuses_plain_http_and_wrong_credentials_itself(stack: tuple[str, str]) -> None:
    _, exporter = stack
    with httpx.Client(verify=False, timeout=5.0) as client:  # the server under test: trust is not the point here
        assert client.get(f"{exporter}/metrics").status_code == 401
        assert client.get(f"{exporter}/metrics", auth=("prometheus", "nope")).status_code == 401
        assert client.get(f"{exporter}/metrics", auth=("prometheus", PASSWORD)).status_code == 200
    with pytest.raises(httpx.HTTPError), httpx.Client(timeout=5.0) as plain:
        plain.get(exporter.replace("https://", "http://") + "/metrics", auth=("prometheus", PASSWORD))
