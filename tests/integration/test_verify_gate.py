"""``marketplace-exporter verify`` (a real subprocess) against a running exporter and simulator:
pass on a healthy deploy, fail and roll back when the simulator starts failing after the marker,
undecided without a marker or without an exporter, and the freeze policies."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from conftest import free_port
from verify_stack import (
    AMAZON,
    ENVIRONMENT,
    SERVICE,
    SHOPEE_MY,
    SHOPEE_SG,
    TOKEN,
    TOKEN_ENV,
    gate_stack,
    run_cli,
)


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


def verify_args(url: str, *extra: str, window: str = "1500ms", timeout: str = "30s") -> list[str]:
    return ["verify", "--service", SERVICE, "--environment", ENVIRONMENT, "--exporter.url", url,
            "--window", window, "--timeout", timeout, "--interval", "200ms", *extra]


async def test_healthy_deploy_passes_with_a_table_of_every_check(tmp_path: Path) -> None:
    async with gate_stack(tmp_path) as stack:
        await stack.wait_for_baseline(AMAZON, SHOPEE_SG, SHOPEE_MY)
        await stack.mark("started")
        rollback = tmp_path / "rolled-back"
        result = await run_cli(*verify_args(stack.exporter, "--on-fail", f"touch {rollback}"))
        assert result.code == 0, result.stderr
        table = result.stdout.splitlines()
        assert table[0].startswith(f"deploy #1 {SERVICE}/{ENVIRONMENT} v1.4.2 started ")
        assert table[1].split() == ["CHECK", "SITE", "BEFORE", "AFTER", "VERDICT", "DETAILS"]
        rows = {line.split()[0]: line for line in table[2:5]}
        assert set(rows) == {AMAZON, SHOPEE_SG, SHOPEE_MY}
        assert all(" PASS" in row and "100% of" in row for row in rows.values())
        assert table[-1] == "RESULT: PASS 通过 — 3 check(s) within tolerance"
        assert "PASS 通过" in result.stderr
        assert not rollback.exists()
        metrics = await stack.metrics()
        assert ('marketplace_deploy_verifications_total{environment="production",result="pass",'
                'service="order-sync"} 1.0') in metrics
        assert ('marketplace_deploy_verifications_total{environment="production",result="fail",'
                'service="order-sync"} 0.0') in metrics
    assert TOKEN not in result.stdout + result.stderr


async def test_marketplace_failing_after_the_deploy_fails_fast_and_runs_the_rollback(tmp_path: Path) -> None:
    async with gate_stack(tmp_path) as stack:
        await stack.wait_for_baseline(AMAZON, SHOPEE_SG)
        await stack.mark("started")
        await stack.fault(marketplace="amazon_sp", check="marketplace_participations", fault="token_expired")
        rollback = tmp_path / "rolled-back"
        # a 10 minute window: only the fast fail can end this within the test's timeout
        result = await run_cli(*verify_args(stack.exporter, "--checks", "critical", "--output", "json",
                                            "--on-fail",
                                            f'echo rolling back; echo "$VERIFY_RESULT $VERIFY_SERVICE" > {rollback}',
                                            window="10m", timeout="11m"), timeout=60)
        assert result.code == 1, result.stderr
        answer = json.loads(result.stdout)  # the rollback's own output went to stderr, not into the JSON
        assert "rolling back" in result.stderr
        assert answer["result"] == "fail" and answer["final"] is True
        assert answer["window_complete"] is False
        rows = {row["check"]: row for row in answer["checks"]}
        assert set(rows) == {AMAZON, SHOPEE_SG}  # the tag left shopee my-main out
        assert rows[AMAZON]["verdict"] == "fail"
        streak = re.fullmatch(r"green before the deploy \(100%\), now failed (\d+) times in a row",
                              rows[AMAZON]["reasons"][0])
        assert streak is not None and int(streak.group(1)) >= 3
        assert rows[AMAZON]["failures"] == [f"auth:Unauthorized ×{rows[AMAZON]['candidate']['samples']}"]
        assert rows[SHOPEE_SG]["verdict"] == "collecting"
        assert rollback.read_text() == "fail order-sync\n"
        assert "--on-fail command succeeded (exit 0)" in result.stderr
        assert "FAIL 失败" in result.stderr


async def test_canary_site_is_judged_alone(tmp_path: Path) -> None:
    async with gate_stack(tmp_path) as stack:
        await stack.wait_for_baseline(AMAZON, SHOPEE_SG, SHOPEE_MY)
        await stack.mark("started", sites=["SG", "MY"])
        await stack.fault(marketplace="amazon_sp", fault="server_error")
        # the marker names SG and MY: the US check failing is not this deploy's business
        sites = await run_cli(*verify_args(stack.exporter, "--output", "json"))
        assert sites.code == 0, sites.stderr
        assert {row["check"] for row in json.loads(sites.stdout)["checks"]} == {SHOPEE_SG, SHOPEE_MY}
        canary = await run_cli(*verify_args(stack.exporter, "--site", "sg", "--output", "json"))
        assert canary.code == 0, canary.stderr
        assert [row["check"] for row in json.loads(canary.stdout)["checks"]] == [SHOPEE_SG]
        everything = await run_cli(*verify_args(stack.exporter, "--site", "US,SG,MY"))
        assert everything.code == 1, everything.stderr


async def test_without_a_started_marker_the_gate_cannot_decide(tmp_path: Path) -> None:
    async with gate_stack(tmp_path) as stack:
        await stack.mark("succeeded", service="other-service")
        rollback = tmp_path / "rolled-back"
        result = await run_cli(*verify_args(stack.exporter, "--on-fail", f"touch {rollback}"))
        assert result.code == 2
        assert "no 'started' deploy marker for order-sync/production" in result.stderr
        assert "UNDECIDED 无法判定" in result.stderr
        assert not rollback.exists()
        assert ('marketplace_deploy_verifications_total{environment="production",result="undecided",'
                'service="order-sync"} 1.0') in await stack.metrics()


async def test_a_marker_without_any_baseline_is_undecided_not_passed(tmp_path: Path) -> None:
    async with gate_stack(tmp_path) as stack:
        await stack.mark("started")  # before the first probe finished
        result = await run_cli(*verify_args(stack.exporter))
        assert result.code == 2
        assert "no selected check has results from before the deploy" in result.stderr


async def test_an_unreachable_exporter_is_undecided_and_rolls_back_only_when_asked(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    rollback = tmp_path / "rolled-back"
    result = await run_cli(*verify_args(url, "--on-fail", f"touch {rollback}"))
    assert result.code == 2
    assert f"cannot reach the exporter at {url}" in result.stderr
    assert not rollback.exists()
    asked = await run_cli(*verify_args(url, "--on-fail", f"touch {rollback}", "--rollback-on-undecided"))
    assert asked.code == 2
    assert rollback.exists()


async def test_a_wrong_token_is_refused_and_never_printed(tmp_path: Path) -> None:
    async with gate_stack(tmp_path) as stack:
        result = await run_cli(*verify_args(stack.exporter), env={TOKEN_ENV: "wrong-token-value-77"})
        assert result.code == 2
        assert "exporter refused the request (HTTP 401): invalid Bearer token" in result.stderr
        assert "wrong-token-value-77" not in result.stderr + result.stdout


async def test_an_unknown_site_names_the_configured_ones(tmp_path: Path) -> None:
    async with gate_stack(tmp_path) as stack:
        await stack.wait_for_baseline(AMAZON)
        await stack.mark("started")
        result = await run_cli(*verify_args(stack.exporter, "--site", "UX"))
        assert result.code == 2
        assert ("no configured check matches site UX; sites: MY, SG, US; tags: critical (field site)"
                in result.stderr)


FREEZE = """
deploys:
  freeze_windows:
    - name: double-11
      environments: [production]
      start: 2000-01-01
      end: 2099-12-31
      timezone: Asia/Shanghai
      policy: {policy}
"""


async def test_a_deploy_marked_in_a_blocking_freeze_fails_without_probing(tmp_path: Path) -> None:
    async with gate_stack(tmp_path, FREEZE.format(policy="block")) as stack:
        await stack.wait_for_baseline(AMAZON)
        marked = await stack.mark("started")
        assert marked["freeze"]["name"] == "double-11"
        rollback = tmp_path / "rolled-back"
        result = await run_cli(*verify_args(stack.exporter, "--on-fail", f"touch {rollback}"))
        assert result.code == 1
        assert ("the deploy was marked inside freeze window 'double-11' (policy: block)"
                in result.stderr)
        assert rollback.exists()


async def test_a_deploy_marked_in_a_warning_freeze_is_judged_and_warned_about(tmp_path: Path) -> None:
    async with gate_stack(tmp_path, FREEZE.format(policy="warn")) as stack:
        await stack.wait_for_baseline(AMAZON, SHOPEE_SG, SHOPEE_MY)
        await stack.mark("started")
        result = await run_cli(*verify_args(stack.exporter))
        assert result.code == 0, result.stderr
        warning = "WARNING: the deploy was marked inside freeze window 'double-11' (policy: warn)"
        assert warning in result.stderr
        assert warning in result.stdout


async def test_the_baseline_survives_an_exporter_restart_between_the_marker_and_the_gate(tmp_path: Path) -> None:
    """The baseline is stored with the ``started`` marker: a fresh exporter process on the same
    storage (its memory empty) still judges the deploy instead of answering undecided."""
    async with gate_stack(tmp_path) as stack:
        await stack.wait_for_baseline(AMAZON, SHOPEE_SG, SHOPEE_MY)
        await stack.mark("started")
        marked_at = time.time()
    async with gate_stack(tmp_path) as restarted:  # same config and audit log, nothing in memory
        # the new process probes at once (300 ms interval), but nothing it holds predates the
        # marker: a baseline (results before ``started``) can only come from the audit log
        assert all(finished > marked_at for finished in restarted.finished_at(AMAZON))
        result = await run_cli(*verify_args(restarted.exporter, "--output", "json"))
        assert result.code == 0, result.stderr
        rows = {row["check"]: row for row in json.loads(result.stdout)["checks"]}
        assert {check: row["verdict"] for check, row in rows.items()} == dict.fromkeys(
            (AMAZON, SHOPEE_SG, SHOPEE_MY), "pass")
        assert min(row["baseline"]["samples"] for row in rows.values()) >= 4
