"""The commands the docs tell a new user to copy, run as written.

`marketplace-exporter demo` is started as a process, the way the docs start it, and the fenced
blocks of docs/deploys.md and docs/traffic.md under "Try it with the demo" are run line by line
(shell) or as a script (Python) with only the demo's ports changed: this test takes free ports,
and points the CLI at them with ``MARKETPLACE_EXPORTER_URL`` (which every client command honours).
The archive command of docs/bridge.md runs against a real outbox without any robot secret in the
environment, as an auditor would run it. When a doc's command stops working, this fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import free_port, local_client, stop_process

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent
DEMO_EXPORTER, DEMO_SIMULATOR = "127.0.0.1:9761", "127.0.0.1:9763"
TRAFFIC_TOKEN = "docs-walk-traffic-token"
#: the variables deploy/bridge.yml reads: an auditor reading the archive has none of them
BRIDGE_SECRETS = ("BRIDGE_TOKEN", "DINGTALK_WEBHOOK_URL", "DINGTALK_SECRET", "WECOM_WEBHOOK_URL",
                  "FEISHU_WEBHOOK_URL", "FEISHU_SECRET")


def fenced(doc: Path, heading: str, lang: str) -> list[str]:
    """Every ```lang block of the section ``heading`` (up to the next heading of its level)."""
    section: list[str] | None = None
    level, in_fence = 0, False
    for line in doc.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.startswith("```"):
            in_fence = not in_fence
        heading_match = None if in_fence else re.match(r"(#+) (.*?)\s*$", line)
        if heading_match and section is not None and len(heading_match.group(1)) <= level:
            break
        if heading_match and heading_match.group(2) == heading:
            section, level = [], len(heading_match.group(1))
        elif section is not None:
            section.append(line)
    assert section is not None, f"{doc.name}: no section {heading!r}"
    blocks = re.findall(rf"^```{lang}\n(.*?)^```", "".join(section), re.M | re.S)
    assert blocks, f"{doc.name}: section {heading!r} has no ```{lang} block"
    return blocks


def shell_lines(block: str) -> list[str]:
    """The commands of a sh block: comment-only lines dropped, backslash continuations joined."""
    joined = block.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


@dataclass
class Demo:
    exporter: str
    simulator: str
    log: Path

    def rewrite(self, text: str) -> str:
        """The doc's text with the demo's default ports replaced by this test's ports."""
        return (text.replace(DEMO_EXPORTER, self.exporter.removeprefix("http://"))
                .replace(DEMO_SIMULATOR, self.simulator.removeprefix("http://")))

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key != "MARKETPLACE_EXPORTER_DEPLOY_TOKEN"}
        env.update({"PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "MARKETPLACE_EXPORTER_URL": self.exporter,
                    "MARKETPLACE_EXPORTER_TRAFFIC_TOKEN": TRAFFIC_TOKEN, "NO_PROXY": "127.0.0.1,localhost",
                    "no_proxy": "127.0.0.1,localhost"})
        return env

    def sh(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", self.rewrite(command)], env=self.env(), capture_output=True,
                              text=True, timeout=60)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """``marketplace-exporter demo`` on free ports, started the way docs/traffic.md says (traffic
    token in its environment; no deploy token, so loopback markers need none)."""
    workdir = tmp_path_factory.mktemp("docs-demo")
    port, sim_port = free_port(), free_port()
    demo = Demo(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{sim_port}", workdir / "demo.log")
    with demo.log.open("wb") as handle:
        process = subprocess.Popen(
            [str(BIN / "marketplace-exporter"), "demo", f"--web.listen-address=127.0.0.1:{port}",
             f"--simulator.listen-address=127.0.0.1:{sim_port}"],
            stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir,
            env={**demo.env(), "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 30
        with local_client(timeout=2.0) as client:
            while True:
                assert process.poll() is None, demo.log.read_text()
                try:
                    if client.get(f"{demo.exporter}/-/ready").status_code == 200:
                        break
                except Exception:  # noqa: BLE001 - not listening yet
                    pass
                assert time.monotonic() < deadline, demo.log.read_text()
                time.sleep(0.1)
        yield demo
    finally:
        stop_process(process, "the demo")


def test_deploys_md_try_it_with_the_demo_runs_as_written(demo: Demo) -> None:
    (block,) = fenced(DOCS / "deploys.md", "Try it with the demo", "sh")
    lines = shell_lines(block)
    assert lines[0].startswith("marketplace-exporter demo"), lines  # the fixture runs it
    temp = Path(tempfile.gettempdir())  # the demo's directories are made there at run time
    assert f"demo: deploy audit log in the temporary directory {temp}{os.sep}" in demo.log.read_text()
    outputs = {}
    for line in lines[1:]:
        done = demo.sh(line)
        assert done.returncode == 0, (line, done.stdout, done.stderr)
        outputs[line.split(" ")[1]] = done
    mark, listing, metrics = outputs["deploy"], outputs["deploys"], outputs["-s"]
    assert re.match(r"recorded deploy #\d+: demo-app v1\.0\.0 in production, succeeded at 20\d\d-", mark.stdout)
    # a pipeline's log shows the command's own lines, not one httpx line per request
    assert "HTTP Request" not in mark.stderr + listing.stderr, mark.stderr + listing.stderr
    assert re.search(r"^\d+\s+\S+ \S+\s+demo-app\s+production\s+v1\.0\.0\s+\S+\s+succeeded", listing.stdout, re.M), \
        listing.stdout
    assert re.search(r'^marketplace_deploy_info\{[^}]*service="demo-app"[^}]*\} 1\.0$', metrics.stdout, re.M), \
        metrics.stdout
    assert 'marketplace_deploys_total{environment="production",service="demo-app",status="succeeded"} 1.0' \
        in metrics.stdout


def test_traffic_md_try_it_with_the_demo_reports_a_shopee_error_inside_http_200(demo: Demo) -> None:
    (script,) = fenced(DOCS / "traffic.md", "Try it with the demo", "python")
    ran = subprocess.run([sys.executable, "-c", demo.rewrite(script)], env=demo.env(), capture_output=True,
                         text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert "cannot send traffic records" not in ran.stderr, ran.stderr  # the demo accepted the batch
    shells = [line for block in fenced(DOCS / "traffic.md", "Try it with the demo", "sh")
              for line in shell_lines(block) if line.startswith("curl")]
    assert len(shells) == 1, shells
    metrics = demo.sh(shells[0])
    assert metrics.returncode == 0, metrics.stderr
    assert re.search(r'^marketplace_client_errors_total\{[^}]*code="error_param"[^}]*reason="client_error"'
                     r'[^}]*service="order-sync"[^}]*\} 1\.0$', metrics.stdout, re.M), metrics.stdout
    assert re.search(r'^marketplace_client_requests_total\{[^}]*marketplace="shopee"[^}]*status_class="2xx"\} 1\.0$',
                     metrics.stdout, re.M), metrics.stdout


def test_bridge_md_archive_command_needs_no_robot_secret(tmp_path: Path) -> None:
    """docs/bridge.md: `alerts history --config.file=bridge.yml` reads the archive; the shipped
    deploy/bridge.yml names six secret variables, none of which the reader should need."""
    from marketplace_exporter.bridge.alertmanager import parse_notification
    from marketplace_exporter.bridge.outbox import Outbox

    outbox = tmp_path / "outbox.db"
    shipped = (ROOT / "deploy" / "bridge.yml").read_text(encoding="utf-8")
    assert "storage_path: /var/lib/marketplace-bridge/outbox.db" in shipped
    (tmp_path / "bridge.yml").write_text(
        shipped.replace("/var/lib/marketplace-bridge/outbox.db", str(outbox)), encoding="utf-8")
    store = Outbox(outbox)
    store.accept("team-amazon", parse_notification({
        "version": "4", "groupKey": "{}:{alertname=\"MarketplaceAuthFailing\"}", "status": "firing",
        "receiver": "team-amazon", "alerts": [{
            "status": "firing", "labels": {"alertname": "MarketplaceAuthFailing", "marketplace": "amazon_sp"},
            "annotations": {}, "startsAt": "2026-11-26T09:50:00Z"}]}))
    store.close()
    (block,) = fenced(DOCS / "bridge.md", "Archive: `alerts history`", "sh")
    command = shell_lines(block)[0]
    assert command.startswith("marketplace-exporter alerts history --config.file=bridge.yml"), command
    env = {key: value for key, value in os.environ.items() if key not in BRIDGE_SECRETS}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert re.search(r"team-amazon\s+firing\s+MarketplaceAuthFailing\s+queued", done.stdout), done.stdout
    assert done.stdout.rstrip().endswith("1 notification(s) since 24h: 1 queued, 0 failed"), done.stdout
    as_json = subprocess.run([str(BIN / "marketplace-exporter"), "alerts", "history", "--config.file=bridge.yml",
                              "--format", "json"], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=60)
    assert [row["receiver"] for row in json.loads(as_json.stdout)] == ["team-amazon"], as_json.stderr


def test_help_says_what_the_program_is_in_whole_sentences() -> None:
    done = subprocess.run([str(BIN / "marketplace-exporter"), "--help"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    description = " ".join(done.stdout.split("\n\n")[1].split())
    assert description.startswith("Prometheus exporter for marketplace seller APIs"), description
    assert "`marketplace-exporter COMMAND --help` describes each command;" in description, description
    assert description.endswith("(中文文档: README.zh-CN.md)."), description


def test_bridge_md_try_it_without_real_robots_runs_as_written(tmp_path: Path) -> None:
    """The block of docs/bridge.md "Try it without real robots", from a checkout (tests/ and deploy/
    of this repository), on free ports; only its `sleep 3` becomes a wait for /-/ready, so a slow
    machine does not make it flaky."""
    (block,) = fenced(DOCS / "bridge.md", "Try it without real robots", "sh")
    robots, bridge = free_port(), free_port()
    script = block.replace("127.0.0.1:9764", f"127.0.0.1:{robots}").replace("127.0.0.1:9762", f"127.0.0.1:{bridge}")
    script = script.replace("marketplace-exporter bridge --config.file=bridge.yml &",
                            f"marketplace-exporter bridge --config.file=bridge.yml "
                            f"--web.listen-address=127.0.0.1:{bridge} &")
    sleep = re.search(r"^sleep 3 .*$", script, re.M)
    assert sleep, script
    script = script.replace(sleep.group(0), f"for _ in $(seq 300); do curl -sf http://127.0.0.1:{bridge}/-/ready "
                                            ">/dev/null && break; sleep 0.1; done")
    for name in ("tests", "deploy"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = {key: value for key, value in os.environ.items() if key not in BRIDGE_SECRETS}
    env.update({"PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"})
    done = subprocess.run(["bash", "-c", script + "\nwait\n"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    assert '{"status": "queued", "id": 1, "receiver": "team-amazon"}' in done.stdout, done.stdout + done.stderr
    assert re.search(r"team-amazon\s+firing\s+MarketplaceAuthFailing\s+(sent|queued)", done.stdout), done.stdout
    assert (tmp_path / "bridge-outbox.db").is_file()


#: the README's deploy block runs against an exporter whose production is in a blocking freeze
README_FREEZE_CONFIG = """
http_checks:
  - name: erp-health
    url: {url}/-/ready
    interval: 30s
deploys:
  freeze_windows:
    - name: double-11
      environments: [production]
      start: 2000-01-01
      end: 2099-12-31
      policy: block
"""


def test_readme_deploy_block_does_not_deploy_inside_a_blocking_freeze_window(tmp_path: Path) -> None:
    """README "Deploys": the block runs as written (bash, the real CLI, a real exporter), with only
    its token placeholder filled in. Production is frozen with ``policy: block``: the ``started``
    marker is recorded, ``./deploy.sh`` never runs, nothing is rolled back, the block fails."""
    (block,) = fenced(ROOT / "README.md", "Deploys: markers, audit trail, the post-deploy gate and freeze windows",
                      "sh")
    assert "export MARKETPLACE_EXPORTER_DEPLOY_TOKEN=..." in block
    token = "readme-block-token-51d0"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = tmp_path / "exporter.yml"
    config.write_text(README_FREEZE_CONFIG.format(url=url), encoding="utf-8")
    (tmp_path / "deploy.sh").write_text('#!/bin/sh\necho "$@" >> deploy.calls\n', encoding="utf-8")
    (tmp_path / "deploy.sh").chmod(0o755)
    env = {**os.environ, "MARKETPLACE_EXPORTER_DEPLOY_TOKEN": token, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "MARKETPLACE_EXPORTER_URL": url, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    log = tmp_path / "exporter.log"
    with log.open("wb") as handle:
        exporter = subprocess.Popen(
            [str(BIN / "marketplace-exporter"), "run", f"--config.file={config}",
             f"--web.listen-address=127.0.0.1:{port}", f"--storage.path={tmp_path / 'data'}"],
            stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 30
        with local_client(timeout=2.0) as client:
            while True:
                assert exporter.poll() is None, log.read_text()
                try:
                    if client.get(f"{url}/-/ready").status_code == 200:
                        break
                except Exception:  # noqa: BLE001 - not listening yet
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        script = block.replace("MARKETPLACE_EXPORTER_DEPLOY_TOKEN=...", f"MARKETPLACE_EXPORTER_DEPLOY_TOKEN={token}")
        done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 3, (done.stdout, done.stderr)
        assert "blocking freeze window 'double-11'" in done.stderr, done.stderr
        assert not (tmp_path / "deploy.calls").exists(), "deployed into a blocking freeze window"
        with local_client() as client:
            rows = client.get(f"{url}/api/v1/deploys", headers={"Authorization": f"Bearer {token}"}).json()
        assert [(row["status"], row["freeze"]) for row in rows["deploys"]] == [("started", "double-11")]
    finally:
        stop_process(exporter, "the exporter")
