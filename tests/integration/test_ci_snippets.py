"""The CI snippets: the shared script docs/ci/deploy-gate.sh run for real (bash, the real CLI)
against a real exporter and simulator started as processes, exactly as a pipeline runs it — and
the GitHub Action, GitLab and Jenkins examples checked to parse and to call that same script with
variables it knows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import free_port, local_client, stop_process
from verify_stack import FAST_CONFIG, TOKEN, TOKEN_ENV

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "ci" / "deploy-gate.sh"
ACTION = ROOT / ".github" / "actions" / "deploy-gate" / "action.yml"
GITLAB = ROOT / "docs" / "ci" / "gitlab-ci.yml"
JENKINS = ROOT / "docs" / "ci" / "Jenkinsfile"
CLI = f"{sys.executable} -m marketplace_exporter"
#: an environment in a blocking freeze (大促封网) for the whole test
FROZEN = """
deploys:
  freeze_windows:
    - name: double-11
      environments: [frozen]
      start: 2000-01-01
      end: 2099-12-31
      policy: block
"""


@dataclass
class Running:
    exporter: str
    simulator: str
    workdir: Path

    def deploys(self, service: str) -> list[dict[str, Any]]:
        with local_client() as client:
            response = client.get(f"{self.exporter}/api/v1/deploys", params={"service": service},
                                  headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.text
        records: list[dict[str, Any]] = response.json()["deploys"]
        return records

    def fault_command(self) -> str:
        """A "deploy" that breaks the SP-API integration: every SP-API call now gets 500."""
        return (f"curl -sf --noproxy '*' -X POST {self.simulator}/__sim/faults -H 'Content-Type: application/json' "
                """-d '{"marketplace":"amazon_sp","check":"marketplace_participations","fault":"server_error"}'""")

    def clear_faults_command(self) -> str:
        return f"curl -sf --noproxy '*' -X DELETE {self.simulator}/__sim/faults"


def _spawn(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        return subprocess.Popen([sys.executable, "-m", "marketplace_exporter", *args], stdout=handle,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    with local_client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            try:
                if client.get(url).status_code == 200:
                    return
            except Exception:
                pass
            time.sleep(0.1)
    raise AssertionError(f"{url} not ready:\n{log.read_text()}")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """``marketplace-exporter simulate`` and ``marketplace-exporter run`` (fast config, SQLite audit
    log) as processes, the way an operator runs them."""
    workdir = tmp_path_factory.mktemp("ci-snippets")
    env = {**os.environ, TOKEN_ENV: TOKEN, "PYTHONUNBUFFERED": "1"}
    sim_port, port = free_port(), free_port()
    simulator = f"http://127.0.0.1:{sim_port}"
    sim_log = workdir / "simulator.log"
    sim = _spawn(["simulate", f"--web.listen-address=127.0.0.1:{sim_port}"], sim_log, env)
    try:
        _wait(f"{simulator}/__sim/faults", sim, sim_log)
        config = workdir / "exporter.yml"
        config.write_text(FAST_CONFIG.format(sim=simulator, extra=FROZEN), encoding="utf-8")
        exporter_log = workdir / "exporter.log"
        exporter = _spawn(["run", f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
                           f"--storage.path={workdir / 'data'}"], exporter_log, env)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait(f"{url}/-/ready", exporter, exporter_log)
            yield Running(url, simulator, workdir)
        finally:
            assert stop_process(exporter, "the exporter") == 0, exporter_log.read_text()
    finally:
        stop_process(sim, "the simulator")


def run_gate(running: Running, service: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The script exactly as the snippets call it: ``bash docs/ci/deploy-gate.sh`` with GATE_* set."""
    base = {
        "GATE_SERVICE": service, "GATE_ENVIRONMENT": "production", "GATE_VERSION": "v2.0.1",
        "GATE_COMMIT": "9fceb02d0ae598e95dc970b74767f19372d61af8", "GATE_SITES": "US,SG",
        "GATE_PIPELINE_URL": "https://ci.example.com/pipelines/42", "GATE_ACTOR": "ci-bot",
        "GATE_DEPLOY_CMD": "true", "GATE_ROLLBACK_CMD": f"{running.clear_faults_command()} && touch rolled-back",
        "GATE_CHECKS": "critical", "GATE_WINDOW": "1500ms", "GATE_TIMEOUT": "30s", "GATE_INTERVAL": "200ms",
        "GATE_CLI": CLI, "MARKETPLACE_EXPORTER_URL": running.exporter, TOKEN_ENV: TOKEN,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    workdir = running.workdir / service
    workdir.mkdir()
    return subprocess.run(["bash", str(SCRIPT)], env={**os.environ, **base, **env}, cwd=workdir,
                          capture_output=True, text=True, timeout=90, check=False)


def wait_for_baseline(running: Running, count: int = 4) -> None:
    """Every check has ``count`` probes behind it, so a marker placed now has a baseline."""
    deadline = time.monotonic() + 15
    with local_client() as client:
        while True:
            text = client.get(f"{running.exporter}/metrics").text
            counts = [float(v) for v in re.findall(r"^marketplace_probes_total\{[^}]*\} (\S+)$", text, re.M)]
            if len(counts) == 3 and min(counts) >= count:
                return
            assert time.monotonic() < deadline, text
            time.sleep(0.1)


def statuses(running: Running, service: str) -> list[str]:
    return [record["status"] for record in reversed(running.deploys(service))]


def test_a_healthy_deploy_is_verified_canary_first_and_marked_succeeded(running: Running) -> None:
    wait_for_baseline(running)
    done = run_gate(running, "catalog-sync", GATE_CANARY_SITE="SG", GATE_CANARY_DEPLOY_CMD="touch canary-deployed")
    assert done.returncode == 0, done.stderr
    assert statuses(running, "catalog-sync") == ["started", "succeeded"]
    record = running.deploys("catalog-sync")[0]
    assert (record["version"], record["actor"], record["sites"]) == ("v2.0.1", "ci-bot", ["US", "SG"])
    workdir = running.workdir / "catalog-sync"
    assert (workdir / "canary-deployed").exists() and not (workdir / "rolled-back").exists()
    # two gates ran: the canary site alone, then every site of the marker
    tables = [line for line in done.stdout.splitlines() if line.startswith("RESULT:")]
    assert tables == ["RESULT: PASS 通过 — 1 check(s) within tolerance",
                      "RESULT: PASS 通过 — 2 check(s) within tolerance"]
    assert TOKEN not in done.stdout + done.stderr


def test_a_deploy_that_breaks_a_marketplace_is_rolled_back_and_marked(running: Running) -> None:
    wait_for_baseline(running)
    done = run_gate(running, "order-sync", GATE_DEPLOY_CMD=running.fault_command(), GATE_WINDOW="10m",
                    GATE_TIMEOUT="11m")
    assert done.returncode == 1, done.stderr
    assert statuses(running, "order-sync") == ["started", "rolled_back"]
    assert running.deploys("order-sync")[0]["notes"] == "deploy failed verification"
    assert (running.workdir / "order-sync" / "rolled-back").exists()
    assert "RESULT: FAIL 失败（需回滚）" in done.stdout
    assert "server_error:InternalFailure" in done.stdout, done.stdout
    with local_client() as client:
        assert client.get(f"{running.simulator}/__sim/faults").json()["faults"] == []


def test_a_failing_deploy_command_is_marked_failed_then_rolled_back(running: Running) -> None:
    done = run_gate(running, "label-print", GATE_DEPLOY_CMD="exit 7")
    assert done.returncode == 3, done.stderr
    assert statuses(running, "label-print") == ["started", "failed", "rolled_back"]
    assert running.deploys("label-print")[1]["notes"] == "deploy command failed with exit 7"


def test_an_undecided_gate_fails_the_job_without_rolling_back_by_default(running: Running) -> None:
    # a tag no check carries: the exporter refuses the selection, so the gate cannot decide
    done = run_gate(running, "stock-sync", GATE_CHECKS="no-such-tag", GATE_DEPLOY_CMD="touch deployed")
    assert done.returncode == 2, done.stderr
    assert ("no configured check matches site US,SG and tag 'no-such-tag'; sites: MY, SG, US; "
            "tags: critical (field checks)") in done.stderr
    assert "deploy could not decide: the deploy stays in place, check it by hand" in done.stderr
    assert (running.workdir / "stock-sync" / "deployed").exists()
    assert not (running.workdir / "stock-sync" / "rolled-back").exists()
    assert statuses(running, "stock-sync") == ["started", "failed"]
    assert running.deploys("stock-sync")[0]["notes"] == "verification undecided (deploy); not rolled back"


def test_on_undecided_rollback_rolls_back(running: Running) -> None:
    done = run_gate(running, "stock-sync-2", GATE_CHECKS="no-such-tag", GATE_ON_UNDECIDED="rollback")
    assert done.returncode == 2, done.stderr
    assert statuses(running, "stock-sync-2") == ["started", "rolled_back"]
    assert (running.workdir / "stock-sync-2" / "rolled-back").exists()
    assert running.deploys("stock-sync-2")[0]["notes"] == "verification undecided (deploy)"


def test_without_an_exporter_nothing_is_deployed(running: Running) -> None:
    done = run_gate(running, "ads-sync", GATE_DEPLOY_CMD="touch deployed",
                    MARKETPLACE_EXPORTER_URL=f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 4
    assert "the exporter did not record the 'started' marker: nothing was deployed" in done.stderr
    assert not (running.workdir / "ads-sync" / "deployed").exists()


def test_a_blocking_freeze_stops_the_deploy_before_it_starts(running: Running) -> None:
    done = run_gate(running, "price-sync", GATE_ENVIRONMENT="frozen", GATE_DEPLOY_CMD="touch deployed")
    assert done.returncode == 5, done.stderr
    assert "frozen is in a blocking freeze window (大促封网): not deploying" in done.stderr
    assert not (running.workdir / "price-sync" / "deployed").exists()
    assert statuses(running, "price-sync") == ["started", "failed"]
    assert [record["freeze"] for record in running.deploys("price-sync")] == ["double-11", "double-11"]


# --- the snippets call the same script with variables it reads ----------------------------------

def script_variables() -> tuple[set[str], set[str]]:
    """(every GATE_* the script reads, the ones it requires)."""
    text = SCRIPT.read_text(encoding="utf-8")
    known = set(re.findall(r"\$\{?(GATE_[A-Z_]+)", text))
    required_line = re.search(r"^for name in (.+); do$", text, re.M)
    assert required_line is not None
    return known, set(required_line.group(1).split())


def check_variables(names: set[str]) -> None:
    known, required = script_variables()
    assert names - known - {"MARKETPLACE_EXPORTER_URL", "MARKETPLACE_EXPORTER_DEPLOY_TOKEN"} == set()
    assert required <= names | {"MARKETPLACE_EXPORTER_URL"}


def test_the_script_is_valid_bash_and_executable() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    assert os.access(SCRIPT, os.X_OK)


def test_the_github_action_is_composite_and_runs_the_script() -> None:
    action = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    assert action["runs"]["using"] == "composite"
    gate = action["runs"]["steps"][-1]
    assert gate["run"] == 'bash "$ACTION_PATH/../../../docs/ci/deploy-gate.sh"'
    assert (ACTION.parent / "../../../docs/ci/deploy-gate.sh").resolve() == SCRIPT
    check_variables(set(gate["env"]) - {"ACTION_PATH"})
    # every input is used, and secrets travel as env, never interpolated into the script text
    used = " ".join(str(value) for step in action["runs"]["steps"] for value in step.get("env", {}).values())
    assert {name for name in action["inputs"] if f"inputs.{name} " not in used + " "} == set()
    assert all("inputs." not in step["run"] for step in action["runs"]["steps"])


def test_the_gitlab_example_parses_and_runs_the_script() -> None:
    pipeline = yaml.safe_load(GITLAB.read_text(encoding="utf-8"))
    job = pipeline["deploy-production"]
    assert job["script"] == ["bash docs/ci/deploy-gate.sh"]
    check_variables(set(job["variables"]))


def test_the_jenkins_example_runs_the_script_with_the_token_from_credentials() -> None:
    text = JENKINS.read_text(encoding="utf-8")
    assert "bash docs/ci/deploy-gate.sh" in text
    assert "variable: 'MARKETPLACE_EXPORTER_DEPLOY_TOKEN'" in text
    check_variables(set(re.findall(r"^\s+(GATE_[A-Z_]+|MARKETPLACE_EXPORTER_URL) = ", text, re.M)))
    assert text.count("{") == text.count("}")
