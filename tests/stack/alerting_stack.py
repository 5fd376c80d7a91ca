"""The whole alerting path on 127.0.0.1, as an operator runs it, for the end-to-end test and the
fault→chat latency bench:

    simulator fault → demo exporter → Prometheus (the GENERATED rules, test profile) →
    Alertmanager (the GENERATED alertmanager.yml) → bridge (its own process, SQLite outbox) →
    fake DingTalk / WeCom / Feishu robots (signature, format and byte limits checked)

Why a plain module and not pytest fixtures: ``bench/alert_latency.py`` starts the same stack
outside pytest. Nothing here imports pytest; a wait that times out raises ``AssertionError`` with
what every component said last (Prometheus alerts, Alertmanager alerts, bridge metrics, robot
inbox), so a red test or a failed bench run says where the chain broke.

Reused, not copied: the fake robots (``tests/integration/fake_robots.py``) run in a background
thread of this process so the checks can read every request body they got (chat_robots.py, which
also reads a message alert by alert); each component is a child process (stack_processes.py);
``marketplace_exporter.mixin``'s ``write_profile`` writes the rules and the Alertmanager config; the
caller brings the demo exporter (``conftest.demo_exporter`` or ``conftest._start_demo``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
for _extra in (ROOT / "tests", ROOT / "tests" / "integration"):
    if str(_extra) not in sys.path:  # conftest and fake_robots are plain modules, not a package
        sys.path.insert(0, str(_extra))

from chat_robots import DINGTALK, FALLBACK, FEISHU, HEARTBEAT, WEBHOOK, WECOM, RobotsThread  # noqa: E402
from conftest import free_port, local_client  # noqa: E402
from stack_processes import Process, wait_ready  # noqa: E402

from marketplace_exporter import catalogue as cat  # noqa: E402
from marketplace_exporter.mixin import generate as generator  # noqa: E402
from marketplace_exporter.mixin.config import AlertConfig, Fallback, Heartbeat  # noqa: E402

T = TypeVar("T")


RULES_FILE: str = generator.RULES_FILE

#: the bridge's bearer token; with the robots' keys, what must never appear in the bridge's log
BRIDGE_TOKEN = "e2e-bridge-bearer-6d5c4b"
ROBOT_SECRETS = (DINGTALK.token, DINGTALK.secret or "", WECOM.token, FEISHU.token, FEISHU.secret or "",
                 WEBHOOK.token, BRIDGE_TOKEN)

#: which chat each receiver of the GENERATED alertmanager.yml posts to (a deployment's choice,
#: written in bridge.yml): criticals → on-call DingTalk; the Shopee/Lazada/TikTok team on WeCom;
#: the Amazon team on Feishu; everything else (platform, other teams) a generic webhook
RECEIVER_ROBOTS = {"oncall": DINGTALK, "team-sea": WECOM, "team-amazon": FEISHU}
RUNBOOK_BASE = "https://github.com/example/marketplace-exporter/blob/main"
MOBILE = "13800000000"
GRAFANA_URL = "http://127.0.0.1:3000/d/mpx-overview"


@dataclass
class AlertingStack:
    """Prometheus + Alertmanager + bridge + fake robots around an already running demo exporter.

    ``which`` resolves a binary name (the test passes ``conftest.require_binary`` so a missing
    binary fails under REQUIRE_STACK=1; the bench passes ``shutil.which``-based lookup).
    """

    workdir: Path
    exporter_url: str
    sim_url: str
    which: Callable[[str], str]
    robots: RobotsThread | None = None
    bridge: Process | None = None
    alertmanager: Process | None = None
    prometheus: Process | None = None
    bridge_port: int = 0
    am_port: int = 0
    prom_port: int = 0
    generated: dict[str, Path] = field(default_factory=dict)
    _stopped: list[str] = field(default_factory=list)

    # -- start/stop --------------------------------------------------------------------------
    def start(self) -> None:
        self.robots = RobotsThread([DINGTALK, WECOM, FEISHU, WEBHOOK, HEARTBEAT, FALLBACK])
        self.bridge_port = free_port()
        token_file = self.workdir / "bridge-token"
        token_file.write_text(BRIDGE_TOKEN + "\n", encoding="utf-8")
        # the deployment's choices: a real heartbeat URL and a webhook fallback (no e-mail here)
        routing = replace(AlertConfig().routing, heartbeat=Heartbeat(url=self.robots.url(HEARTBEAT)),
                          fallback=Fallback(email_to=None, webhook_url=self.robots.url(FALLBACK)))
        self.generated = generator.write_profile(self.workdir / "generated", "test", self.bridge_url,
                                                 bridge_credentials_file=str(token_file),
                                                 base=replace(AlertConfig(), routing=routing))
        self._write_bridge_config()
        self.bridge = self._bridge_process()
        self.bridge.start()
        wait_ready(self.bridge, f"{self.bridge_url}/-/ready")
        self._start_alertmanager()
        self._start_prometheus()

    @property
    def bridge_url(self) -> str:
        return f"http://127.0.0.1:{self.bridge_port}"

    @property
    def am_url(self) -> str:
        return f"http://127.0.0.1:{self.am_port}"

    @property
    def prom_url(self) -> str:
        return f"http://127.0.0.1:{self.prom_port}"

    def receivers(self) -> list[str]:
        """The bridge receivers of the generated alertmanager.yml (not the two routed around it)."""
        config = yaml.safe_load(self.generated["alertmanager.yml"].read_text(encoding="utf-8"))
        return [receiver["name"] for receiver in config["receivers"]
                if any(h["url"].startswith(self.bridge_url) for h in receiver.get("webhook_configs", []))]

    def _write_bridge_config(self) -> None:
        """bridge.yml: every generated receiver gets a robot; URLs and secrets come from the
        environment, as the docs tell operators to do."""
        lines = [f"storage_path: {self.workdir / 'outbox.db'}",
                 "auth:", "  bearer_token: ${E2E_BRIDGE_TOKEN}",
                 "defaults:", "  language: zh", "  timezone: Asia/Shanghai",
                 f"  grafana_url: {GRAFANA_URL}", f"  runbook_base_url: {RUNBOOK_BASE}",
                 # a robot that is down is retried within a second, not after minutes (test speed)
                 "retry: {initial_backoff: 200ms, max_backoff: 1s}",
                 "receivers:"]
        for name in self.receivers():
            robot = RECEIVER_ROBOTS.get(name, WEBHOOK)
            var = "E2E_" + robot.kind.upper()
            lines += [f"  {name}:", f"    channel: {robot.kind}", f"    url: ${{{var}_URL}}"]
            if robot.secret:
                lines.append(f"    secret: ${{{var}_SECRET}}")
            if robot is DINGTALK:
                lines.append(f"    mentions: {{mobiles: ['{MOBILE}']}}")
        (self.workdir / "bridge.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def _bridge_process(self) -> Process:
        assert self.robots is not None
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "E2E_BRIDGE_TOKEN": BRIDGE_TOKEN}
        for robot in (DINGTALK, WECOM, FEISHU, WEBHOOK):
            env[f"E2E_{robot.kind.upper()}_URL"] = self.robots.url(robot)
            if robot.secret:
                env[f"E2E_{robot.kind.upper()}_SECRET"] = robot.secret
        return Process("bridge", [sys.executable, "-m", "marketplace_exporter", "--log.level=debug", "bridge",
                                  f"--config.file={self.workdir / 'bridge.yml'}",
                                  f"--web.listen-address=127.0.0.1:{self.bridge_port}"],
                       self.workdir / "bridge.log", env=env)

    def kill_bridge(self) -> None:
        """SIGKILL the bridge (by PID) with whatever it has queued."""
        assert self.bridge is not None
        self.bridge.kill()

    def restart_bridge(self) -> None:
        """A new bridge process on the same port and the same SQLite outbox."""
        self.bridge = self._bridge_process()
        self.bridge.start()
        wait_ready(self.bridge, f"{self.bridge_url}/-/ready")

    def _start_alertmanager(self) -> None:
        binary = self.which("prometheus-alertmanager")
        for _attempt in range(3):
            self.am_port = free_port()
            process = Process("alertmanager", [
                binary, f"--config.file={self.generated['alertmanager.yml']}",
                f"--storage.path={self.workdir / 'am-data'}", f"--web.listen-address=127.0.0.1:{self.am_port}",
                f"--web.external-url={self.am_url}", "--cluster.listen-address="],
                self.workdir / "alertmanager.log")
            process.start()
            try:
                wait_ready(process, f"{self.am_url}/-/ready")
            except AssertionError:
                process.stop()
                if "address already in use" in process.log_tail():
                    continue
                raise
            self.alertmanager = process
            return
        raise AssertionError("alertmanager: no free port after 3 attempts")

    def _start_prometheus(self) -> None:
        binary = self.which("prometheus")
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(self.generated[RULES_FILE])],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{self.am_port}"]}]}]},
            # job names are the ones the generated rules select on
            "scrape_configs": [
                {"job_name": "marketplace-exporter",
                 "static_configs": [{"targets": [self.exporter_url.removeprefix("http://")]}]},
                {"job_name": "marketplace-bridge", "static_configs": [{"targets": [f"127.0.0.1:{self.bridge_port}"]}]},
            ]}, sort_keys=False), encoding="utf-8")
        for _attempt in range(3):
            self.prom_port = free_port()
            process = Process("prometheus", [
                binary, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{self.prom_port}", f"--web.external-url={self.prom_url}"],
                self.workdir / "prometheus.log")
            process.start()
            try:
                wait_ready(process, f"{self.prom_url}/-/ready")
            except AssertionError:
                process.stop()
                if "address already in use" in process.log_tail():
                    continue
                raise
            self.prometheus = process
            return
        raise AssertionError("prometheus: no free port after 3 attempts")

    def stop(self) -> list[str]:
        """Stop everything this stack started, by PID; the problems seen (non-zero exits)."""
        problems: list[str] = []
        for process in (self.prometheus, self.alertmanager, self.bridge):
            if process is None:
                continue
            try:
                code = process.stop()
            except AssertionError as exc:
                problems.append(str(exc))
                continue
            if code not in (None, 0):
                problems.append(f"{process.name} exited with {code}:\n{process.log_tail()}")
        if self.robots is not None:
            self.robots.close()
        return problems

    # -- faults ------------------------------------------------------------------------------
    def inject_fault(self, marketplace: str, fault: str, **fields: Any) -> None:
        body = {"marketplace": marketplace, "fault": fault, **fields}
        with local_client() as client:
            response = client.post(f"{self.sim_url}/__sim/faults", json=body)
        assert response.status_code in (200, 201), f"fault {body} rejected: {response.text}"

    def clear_faults(self) -> None:
        with local_client() as client:
            response = client.delete(f"{self.sim_url}/__sim/faults")
        assert response.status_code in (200, 204), response.text

    # -- what each component says ------------------------------------------------------------
    def query(self, promql: str) -> list[dict[str, Any]]:
        with local_client() as client:
            body = client.get(f"{self.prom_url}/api/v1/query", params={"query": promql}).json()
        assert body.get("status") == "success", f"{promql}: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def query_rules(self) -> list[dict[str, Any]]:
        """The rule groups Prometheus loaded (``/api/v1/rules``)."""
        with local_client() as client:
            groups: list[dict[str, Any]] = client.get(f"{self.prom_url}/api/v1/rules").json()["data"]["groups"]
        return groups

    def prometheus_alerts(self) -> list[dict[str, Any]]:
        """Prometheus' active alerts (pending and firing), with ``activeAt``."""
        with local_client() as client:
            alerts: list[dict[str, Any]] = client.get(f"{self.prom_url}/api/v1/alerts").json()["data"]["alerts"]
        return alerts

    def am_alerts(self) -> list[dict[str, Any]]:
        with local_client() as client:
            alerts: list[dict[str, Any]] = client.get(f"{self.am_url}/api/v2/alerts").json()
        return alerts

    def bridge_metrics(self) -> dict[str, float]:
        """The bridge's own series (``name{labels}`` → value), histograms left out."""
        with local_client() as client:
            text = client.get(f"{self.bridge_url}/metrics").text
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("marketplace_bridge_") and "_bucket" not in line:
                series, _, value = line.rpartition(" ")
                values[series] = float(value)
        return values

    def queue_depth(self, receiver: str) -> float:
        name = cat.BRIDGE_QUEUE_DEPTH.name
        return sum(value for series, value in self.bridge_metrics().items()
                   if series.startswith(name + "{") and f'receiver="{receiver}"' in series)

    def history(self) -> list[dict[str, Any]]:
        """The bridge's archive as ``marketplace-exporter alerts history --format=json`` prints it
        (read-only on the SQLite outbox: safe while the bridge runs, and after it was killed)."""
        done = subprocess.run(
            [sys.executable, "-m", "marketplace_exporter", "alerts", "history",
             f"--storage.path={self.workdir / 'outbox.db'}", "--since=1h", "--format=json"],
            capture_output=True, timeout=30, check=False)
        assert done.returncode == 0, f"alerts history failed: {done.stderr.decode(errors='replace')[-2000:]}"
        rows: list[dict[str, Any]] = json.loads(done.stdout)
        return rows

    def describe(self) -> str:
        """What every component says right now: the 'last seen' of a timed-out wait."""
        parts: list[str] = []
        try:
            parts.append("Prometheus alerts: " + repr(sorted(
                (a["labels"].get("alertname"), a["labels"].get("marketplace"), a["labels"].get("account"),
                 a["state"]) for a in self.prometheus_alerts())))
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            parts.append(f"Prometheus alerts: unavailable ({exc!r})")
        try:
            parts.append("Alertmanager alerts: " + repr(sorted(
                (a["labels"].get("alertname"), a["labels"].get("marketplace"), a["status"]["state"],
                 tuple(r["name"] for r in a["receivers"])) for a in self.am_alerts())))
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            parts.append(f"Alertmanager alerts: unavailable ({exc!r})")
        try:
            parts.append("bridge metrics: " + repr({k: v for k, v in self.bridge_metrics().items() if v}))
        except (httpx.HTTPError, ValueError) as exc:
            parts.append(f"bridge metrics: unavailable ({exc!r})")
        try:
            archive = Counter((row["receiver"], row["alertname"], row["status"], row["state"])
                              for row in self.history())
            parts.append(f"bridge archive (receiver, alert, status, state): {dict(sorted(archive.items()))}")
        except (AssertionError, ValueError, subprocess.SubprocessError) as exc:
            parts.append(f"bridge archive: unavailable ({exc!r})")
        if self.robots is not None:
            inbox = self.robots.received()
            parts.append(f"robot inbox ({len(inbox)} requests, last 12): " + repr(
                [(r.kind, r.code, r.status, r.title) for r in inbox[-12:]]))
        return "\n  ".join(parts)

    def wait_for(self, what: str, check: Callable[[], T | None], timeout: float) -> T:
        """Poll ``check`` every 0.25 s until it returns something truthy; fail with :meth:`describe`."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"after {timeout:g}s still waiting for {what}\n  {self.describe()}")
            time.sleep(0.25)

    def wait_healthy(self, checks: Iterable[tuple[str, str]], timeout: float = 40.0) -> None:
        """Both targets up, and ``(marketplace, account)`` checks succeeding in Prometheus."""
        wanted = set(checks)

        def healthy() -> bool:
            up = {s["metric"]["job"]: s["value"][1] for s in self.query("up")}
            if up.get("marketplace-exporter") != "1" or up.get("marketplace-bridge") != "1":
                return False
            ok = {(s["metric"]["marketplace"], s["metric"]["account"])
                  for s in self.query(f"{cat.PROBE_SUCCESS.name} == 1")}
            return wanted <= ok

        self.wait_for(f"both scrape targets up and {sorted(wanted)} succeeding", healthy, timeout)


def alert_annotations(rules_file: Path, alertname: str) -> dict[str, str]:
    """The annotations of ``alertname`` as the generated rules file says (so the test compares the
    chat message with the rules, never with a retyped string)."""
    groups = yaml.safe_load(rules_file.read_text(encoding="utf-8"))["groups"]
    for group in groups:
        for rule in group["rules"]:
            if rule.get("alert") == alertname:
                annotations: dict[str, str] = rule["annotations"]
                return annotations
    raise AssertionError(f"{alertname} is not in {rules_file}")
