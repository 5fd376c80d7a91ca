"""``verify --prometheus.url`` and the Argo Rollouts / Flagger recipes against a real Prometheus
(Debian's 2.42) holding 70 minutes of two exporter shards' history (tests/stack/
prom_history.py, backfilled with ``promtool tsdb create-blocks-from openmetrics``: deterministic,
no waiting for scrapes) with a healthy deploy, a failing one, a slow one and one without a
baseline. Prometheus serves HTTPS with basic auth (its own ``--web.config.file``), so the CA and
credential options are exercised for real. The markers come from a real exporter's deploy API.

One Prometheus and one exporter for the module."""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from conftest import free_port, local_client, require_binary, stop_process
from prom_history import SERVICES, History, build, write_openmetrics

from marketplace_exporter.deploys import verify_recipes

pytestmark = pytest.mark.stack
ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "docs" / "ci"
SCHEMAS = CI / "crd-schemas"
USER, PASSWORD = "gate", "prom-basic-pass-4e1f"
#: bcrypt (cost 4) of PASSWORD, for Prometheus' web config
PASSWORD_HASH = "$2b$04$jsUTXDPb3hYF9MwzIT.EoOcCjZJK7FuzmPGZAqkLvyzixzu3TuTiO"
TOKEN = "prom-gate-deploy-token"
EXPORTER_CONFIG = """
http_checks:
  - name: self
    url: {url}/-/ready
    interval: 30s
"""


@dataclass
class Stack:
    prometheus: str
    exporter: str
    workdir: Path
    history: History

    @property
    def ca(self) -> Path:
        return self.workdir / "ca.pem"

    def env(self) -> dict[str, str]:
        return {**os.environ, "MARKETPLACE_EXPORTER_DEPLOY_TOKEN": TOKEN, "NO_PROXY": "127.0.0.1,localhost",
                "PROM_PASSWORD": PASSWORD, "PYTHONUNBUFFERED": "1"}

    def verify(self, service: str, *extra: str, auth: bool = True) -> subprocess.CompletedProcess[str]:
        args = [sys.executable, "-m", "marketplace_exporter", "verify", "--service", service,
                "--environment", "production", "--prometheus.url", self.prometheus, "--exporter.url", self.exporter,
                "--since", str(self.history.broken_from), "--window", "5m", "--timeout", "6m", "--interval", "1s"]
        if auth:
            args += ["--prometheus.ca-file", str(self.ca), "--prometheus.username", USER,
                     "--prometheus.password-env", "PROM_PASSWORD"]
        return subprocess.run([*args, *extra], env=self.env(), capture_output=True, text=True, timeout=60,
                              check=False)

    def query(self, expr: str) -> list[float]:
        """An instant query at a fixed time just after the history ends (a slow machine changes nothing)."""
        with httpx.Client(verify=ssl.create_default_context(cafile=self.ca), auth=(USER, PASSWORD), trust_env=False,
                          timeout=30) as client:
            body = client.post(f"{self.prometheus}/api/v1/query",
                               data={"query": expr, "time": str(self.history.end + 5)}).json()
        assert body["status"] == "success", body
        return [float(item["value"][1]) for item in body["data"]["result"]]


def _start_prometheus(workdir: Path, history: History) -> tuple[subprocess.Popen[bytes], str]:
    promtool, prometheus = require_binary("promtool"), require_binary("prometheus")
    openssl = require_binary("openssl")
    write_openmetrics(history, workdir / "history.om")
    data = workdir / "tsdb"
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(workdir / "history.om"), str(data)],
                   check=True, capture_output=True, timeout=60)
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(workdir / "key.pem"),
                    "-out", str(workdir / "ca.pem")], check=True, capture_output=True, timeout=60)
    (workdir / "web.yml").write_text(yaml.safe_dump({
        "tls_server_config": {"cert_file": str(workdir / "ca.pem"), "key_file": str(workdir / "key.pem")},
        "basic_auth_users": {USER: PASSWORD_HASH}}), encoding="utf-8")
    (workdir / "prometheus.yml").write_text("global: {}\n", encoding="utf-8")
    port = free_port()
    with (workdir / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen([prometheus, f"--config.file={workdir / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={data}", "--storage.tsdb.retention.time=10y",
                                 f"--web.config.file={workdir / 'web.yml'}", f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    context = ssl.create_default_context(cafile=workdir / "ca.pem")
    try:
        with httpx.Client(verify=context, auth=(USER, PASSWORD), trust_env=False, timeout=2) as client:
            while True:
                assert proc.poll() is None, (workdir / "prometheus.log").read_text()
                try:
                    if client.get(f"{url}/-/ready").status_code == 200:
                        return proc, url
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, (workdir / "prometheus.log").read_text()
                time.sleep(0.1)
    except BaseException:
        stop_process(proc, "prometheus")
        raise


def _start_exporter(workdir: Path, history: History) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    (workdir / "exporter.yml").write_text(EXPORTER_CONFIG.format(url=url), encoding="utf-8")
    env = {**os.environ, "MARKETPLACE_EXPORTER_DEPLOY_TOKEN": TOKEN}
    with (workdir / "exporter.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "marketplace_exporter", "run",
                                 f"--config.file={workdir / 'exporter.yml'}", f"--web.listen-address=127.0.0.1:{port}",
                                 f"--storage.path={workdir / 'data'}"],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 30
    with local_client(timeout=2.0) as client:
        while True:
            assert proc.poll() is None, (workdir / "exporter.log").read_text()
            try:
                if client.get(f"{url}/-/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for service, site in SERVICES.items():  # the pipeline's started markers, at the deploy's time
            answer = client.post(f"{url}/api/v1/deploys", headers={"Authorization": f"Bearer {TOKEN}"},
                                 json={"service": service, "environment": "production", "version": "v2",
                                       "status": "started", "sites": [site], "timestamp": history.marker})
            assert answer.status_code == 201, answer.text
    return proc, url


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("verify-prometheus")
    history = build(time.time())
    prometheus, prom_url = _start_prometheus(workdir, history)
    try:
        exporter, exporter_url = _start_exporter(workdir, history)
        try:
            yield Stack(prom_url, exporter_url, workdir, history)
        finally:
            stop_process(exporter, "the exporter")
    finally:
        stop_process(prometheus, "prometheus")


def test_prometheus_holds_the_markers_to_the_second(stack: Stack) -> None:
    """The recipes take the baseline's half hour from the marker's value in Prometheus: a marker
    written with six significant digits (as the backfill once did) moved it by up to 5000 s, and
    the recipes then judged good and bad deploys by the hour of day the suite ran at."""
    markers = stack.query('max by (service) (marketplace_deploy_timestamp_seconds{status="started"})')
    assert markers == [float(stack.history.marker)] * len(SERVICES)


def test_a_healthy_deploy_passes_and_explain_shows_every_query(stack: Stack) -> None:
    done = stack.verify("good-app", "--explain", "--output", "json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["result"] == "pass" and answer["marker"]["service"] == "good-app"
    assert answer["selector"] == 'site=~"US"'  # the marker's sites
    queries = re.findall(r"^verify: query (\S+) \(", done.stderr, re.M)
    assert queries == [rule["name"] for rule in answer["rules"]] and len(queries) == 9
    assert f"increase(marketplace_probes_total{{site=~\"US\"}}[1800s] @ {stack.history.marker:.3f})" in done.stderr
    judged = {rule["name"]: rule["series"] for rule in answer["rules"]}["probes-judged"]
    # 30 minutes at one probe per 15 s, across a shard restart inside the baseline
    assert [round(s["value"]) for s in judged] == [120]
    assert PASSWORD not in done.stdout + done.stderr


def test_a_bad_deploy_fails_fast_and_runs_the_rollback_with_valid_json(stack: Stack) -> None:
    rollback = stack.workdir / "rolled-back"
    done = stack.verify("bad-app", "--output", "json", "--on-fail", f"echo rolling back; touch {rollback}")
    assert done.returncode == 1, done.stderr
    answer = json.loads(done.stdout)
    assert answer["result"] == "fail"
    failing = {rule["name"] for rule in answer["rules"] if rule["series"] and rule["kind"] in ("fail", "fail_fast")}
    assert failing == {"probe-fast-fail", "probe-success-ratio", "production-fast-fail", "production-error-ratio"}
    assert rollback.exists() and "rolling back" in done.stderr


def test_a_slower_deploy_fails_on_latency(stack: Stack) -> None:
    done = stack.verify("slow-app")
    assert done.returncode == 1, done.stderr
    assert re.search(r"^probe-latency-p50\s+fail\s+amazon_sp/marketplace_participations/JP=", done.stdout, re.M)
    assert "probe-success-ratio" not in done.stdout


def test_no_baseline_is_undecided_with_the_marker_from_prometheus(stack: Stack) -> None:
    done = stack.verify("new-app", "--marker-from", "prometheus", "--site", "BR")
    assert done.returncode == 2, done.stderr
    assert "no selected check has probes from before the deploy" in done.stderr


def test_prometheus_refusing_is_undecided_and_never_prints_the_password(stack: Stack) -> None:
    wrong = stack.verify("good-app", "--prometheus.ca-file", str(stack.ca), "--prometheus.username", USER,
                         "--prometheus.password-env", "NOT_SET_ANYWHERE", auth=False)
    assert wrong.returncode == 2 and "NOT_SET_ANYWHERE is empty or unset" in wrong.stderr
    no_ca = stack.verify("good-app", "--prometheus.username", USER, "--prometheus.password-env", "PROM_PASSWORD",
                         auth=False)
    assert no_ca.returncode == 2 and "CERTIFICATE_VERIFY_FAILED" in no_ca.stderr, no_ca.stderr
    (stack.workdir / "bad-pass").write_text("not-the-password\n")
    refused = stack.verify("good-app", "--prometheus.ca-file", str(stack.ca), "--prometheus.username", USER,
                           "--prometheus.password-file", str(stack.workdir / "bad-pass"), auth=False)
    assert refused.returncode == 2 and "HTTP 401" in refused.stderr, refused.stderr
    assert PASSWORD not in wrong.stderr + no_ca.stderr + refused.stderr + refused.stdout


class BearerProxy(ThreadingHTTPServer):
    """What sits in front of many managed or shared Prometheus servers: a proxy that wants a Bearer
    token and forwards the query (here to the real Prometheus, with its basic auth)."""

    def __init__(self, stack: Stack, token: str) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.seen.append(self.headers.get("Authorization", ""))
                if self.headers.get("Authorization") != f"Bearer {token}":
                    self.send_response(401)
                    self.end_headers()
                    return
                with httpx.Client(verify=ssl.create_default_context(cafile=stack.ca), auth=(USER, PASSWORD),
                                  trust_env=False, timeout=30) as client:
                    answer = client.post(f"{stack.prometheus}{self.path}", content=body,
                                         headers={"Content-Type": self.headers.get("Content-Type", "")})
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args: Any) -> None:
                pass

        self.seen: list[str] = []
        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_a_bearer_token_from_a_file_reaches_a_proxy_in_front_of_prometheus(stack: Stack) -> None:
    token = "proxy-bearer-0d9a"
    proxy = BearerProxy(stack, token)
    try:
        (stack.workdir / "bearer").write_text(token + "\n")
        done = stack.verify("bad-app", "--prometheus.url", proxy.url, "--prometheus.bearer-token-file",
                            str(stack.workdir / "bearer"), auth=False)
        denied = stack.verify("bad-app", "--prometheus.url", proxy.url, auth=False)
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert done.returncode == 1, done.stderr
    assert denied.returncode == 2 and "HTTP 401" in denied.stderr, denied.stderr
    assert f"Bearer {token}" in proxy.seen and token not in done.stdout + done.stderr


def strict(schema: Any) -> Any:
    """The schema with unknown fields refused wherever it lists properties (kubectl --validate=strict)."""
    if isinstance(schema, dict):
        out = {key: strict(value) for key, value in schema.items()}
        if "properties" in out and "additionalProperties" not in out \
                and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def _validate(doc: dict[str, Any], schema_file: str) -> None:
    schema = strict(json.loads((SCHEMAS / schema_file).read_text(encoding="utf-8")))
    jsonschema.validate(doc, schema)


def _docs(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((CI / name).read_text(encoding="utf-8")) if doc]


def test_the_recipes_are_valid_against_the_vendored_crd_schemas() -> None:
    (argo,) = _docs(verify_recipes.ARGO_FILE)
    _validate(argo, "argo-rollouts-v1.9.1-analysistemplate.json")
    for template in _docs(verify_recipes.FLAGGER_FILE):
        _validate(template, "flagger-v1.44.0-metrictemplate.json")
    (canary,) = _docs(verify_recipes.CANARY_FILE)
    _validate(canary, "flagger-v1.44.0-canary.json")
    # the strict check does catch a misspelt field
    broken = json.loads(json.dumps(argo))
    broken["spec"]["metrics"][0]["succesCondition"] = broken["spec"]["metrics"][0].pop("successCondition")
    with pytest.raises(jsonschema.ValidationError, match="succesCondition"):
        _validate(broken, "argo-rollouts-v1.9.1-analysistemplate.json")


def argo_phase(metric: dict[str, Any], result: list[float]) -> str:
    """Argo Rollouts' rule (``EvaluateResult`` in utils/evaluate/evaluate.go at v1.9.1): failure
    wins, else success, else inconclusive. Only the condition forms the generator writes are accepted."""
    known = {"result[0] == 0": lambda r: r[0] == 0, "result[0] > 0": lambda r: r[0] > 0,
             "result[0] >= 1": lambda r: r[0] >= 1, "false": lambda r: False}
    if known[metric["failureCondition"]](result):
        return "Failed"
    return "Successful" if known[metric["successCondition"]](result) else "Inconclusive"


@pytest.mark.parametrize(("service", "expected"), [("good-app", "Successful"), ("bad-app", "Failed"),
                                                   ("slow-app", "Failed"), ("new-app", "Inconclusive")])
def test_the_argo_analysis_decides_like_verify(stack: Stack, service: str, expected: str) -> None:
    (argo,) = _docs(verify_recipes.ARGO_FILE)
    args = {"service": service, "environment": "production", "probe-selector": f'site=~"{SERVICES[service]}"',
            "window": "5m", "prometheus-address": stack.prometheus}
    phases = {}
    for metric in argo["spec"]["metrics"]:
        template = metric["provider"]["prometheus"]["query"]
        query = re.sub(r"\{\{args\.([a-z-]+)\}\}", lambda m: args[m.group(1)], template)
        result = stack.query(query)
        assert len(result) == 1, (metric["name"], result)
        phases[metric["name"]] = argo_phase(metric, result)
    overall = ("Failed" if "Failed" in phases.values()
               else "Inconclusive" if "Inconclusive" in phases.values() else "Successful")
    assert overall == expected, phases


@pytest.mark.parametrize(("service", "passes"), [("good-app", True), ("bad-app", False), ("slow-app", False),
                                                 ("new-app", False)])
def test_the_flagger_checks_decide_like_verify(stack: Stack, service: str, passes: bool) -> None:
    templates = {doc["metadata"]["name"]: doc["spec"]["query"] for doc in _docs(verify_recipes.FLAGGER_FILE)}
    (canary,) = _docs(verify_recipes.CANARY_FILE)
    variables = {"service": service, "environment": "production", "probe_selector": f'site=~"{SERVICES[service]}"'}
    failed = []
    for metric in canary["spec"]["analysis"]["metrics"]:
        query = templates[metric["templateRef"]["name"]].replace("{{ interval }}", metric["interval"])
        query = re.sub(r"\{\{ variables\.(\w+) \}\}", lambda m: variables[m.group(1)], query)
        (value,) = stack.query(query)
        bounds = metric["thresholdRange"]
        if not bounds.get("min", float("-inf")) <= value <= bounds.get("max", float("inf")):
            failed.append(metric["name"])
    assert (not failed) == passes, failed
