#!/usr/bin/env python3
"""Fault → chat latency: seconds from a simulator fault to the robot's message, in the real stack.

One run starts the same stack as ``tests/stack/test_alerting_e2e.py`` (``tests/stack/alerting_stack.py``),
each piece its own process on 127.0.0.1 (free ports): the demo exporter with its simulator, a real
Prometheus (scrape and evaluation every 1 s) with the GENERATED rules of the ``test`` profile (every
``for`` 10 s), a real Alertmanager with the GENERATED alertmanager.yml (group_wait 1 s), the bridge,
and the fake DingTalk/WeCom/Feishu robots (in this process, checking signatures and limits).

Each round injects ``server_error`` into Shopee sg-main and Amazon us-main at the same instant and
times, per robot message, MarketplaceCheckFailing from the fault to the robot receiving it
(DingTalk gets both, WeCom Shopee's, Feishu Amazon's), split at Prometheus' ``activeAt`` (the rule
condition became true = the check had failed 3 probes in a row); then clears the faults and times
the "resolved" message the same way. Printed: a row per message, then median and max.

The numbers are for the TEST profile; production adds the real ``for`` durations and group_wait
(docs/alerting-e2e.md has the budget). Reported, never asserted. Exit 0 when every message
arrived, 1 when one did not (with what each component said last), 2 when a binary is missing.

    .venv/bin/python bench/alert_latency.py [--rounds 3] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "stack"))

from alerting_stack import AlertingStack  # noqa: E402
from chat_robots import Section, sections  # noqa: E402
from conftest import _start_demo, stop_process  # noqa: E402

ALERT = "MarketplaceCheckFailing"
#: (marketplace, account) faulted each round, and the robots their alert reaches through the
#: generated routing and the stack's bridge.yml
TARGETS = {("shopee", "sg-main"): ("dingtalk", "wecom"), ("amazon_sp", "us-main"): ("dingtalk", "feishu")}
MESSAGE_TIMEOUT_S = 90.0
BINARIES = ("prometheus", "prometheus-alertmanager")


def which(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        print(f"{name} is not installed (`make deps` installs it); nothing measured", file=sys.stderr)
        raise SystemExit(2)
    return path


def _parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _wait_messages(stack: AlertingStack, state: str, since: float,
                   active_at: dict[tuple[str, str], float] | None) -> dict[tuple[str, str, str], Section]:
    """The first ``state`` message of every (robot, marketplace, account) after ``since``; while
    waiting, note when Prometheus first saw each alert active (pending)."""
    assert stack.robots is not None
    wanted = {(robot, mp, acct) for (mp, acct), robots in TARGETS.items() for robot in robots}
    found: dict[tuple[str, str, str], Section] = {}
    deadline = time.monotonic() + MESSAGE_TIMEOUT_S
    while True:
        for section in sections(stack.robots.received()):
            key = (section.robot, section.labels.get("marketplace", ""), section.labels.get("account", ""))
            if (section.alertname == ALERT and section.state == state and section.at >= since
                    and key in wanted and key not in found):
                found[key] = section
        if active_at is not None:
            for alert in stack.prometheus_alerts():
                labels = alert["labels"]
                key2 = (labels.get("marketplace", ""), labels.get("account", ""))
                if labels.get("alertname") == ALERT and key2 in TARGETS and key2 not in active_at:
                    active_at[key2] = _parse_time(alert["activeAt"])
        if wanted <= found.keys():
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"after {MESSAGE_TIMEOUT_S:g}s still waiting for {state} messages "
                                 f"{sorted(wanted - found.keys())}\n  {stack.describe()}")
        time.sleep(0.1)


def run(rounds: int, keep: bool) -> int:
    for name in BINARIES:
        which(name)
    workdir = Path(tempfile.mkdtemp(prefix="alert-latency-"))
    proc, exporter = _start_demo(workdir, "info")
    stack = AlertingStack(workdir, exporter.url, exporter.sim_url, which)
    firing: list[float] = []
    resolved: list[float] = []
    detect: list[float] = []
    try:
        stack.start()
        print("fault → chat message, test profile (for 10s, scrape/eval 1s, group_wait 1s, group_interval 5s, "
              "demo checks every 5s ±10%)")
        print(f"{'round':>5}  {'robot':<8}  {'check':<20}  {'fault→pending':>13}  {'fault→message':>13}  "
              f"{'clear→resolved':>14}")
        for number in range(1, rounds + 1):
            stack.wait_healthy(list(TARGETS))
            fault_at = time.time()
            for marketplace, account in TARGETS:
                stack.inject_fault(marketplace, "server_error", account=account)
            active_at: dict[tuple[str, str], float] = {}
            fired = _wait_messages(stack, "firing", fault_at, active_at)
            cleared_at = time.time()
            stack.clear_faults()
            over = _wait_messages(stack, "resolved", cleared_at, None)
            for key in sorted(fired):
                robot, marketplace, account = key
                to_message = fired[key].at - fault_at
                to_pending = active_at.get((marketplace, account), float("nan")) - fault_at
                to_resolved = over[key].at - cleared_at
                firing.append(to_message)
                resolved.append(to_resolved)
                print(f"{number:>5}  {robot:<8}  {marketplace + '/' + account:<20}  {to_pending:>12.1f}s  "
                      f"{to_message:>12.1f}s  {to_resolved:>13.1f}s", flush=True)
            detect += [at - fault_at for at in active_at.values()]
        print(f"fault → robot message: median {statistics.median(firing):.1f} s, max {max(firing):.1f} s "
              f"({len(firing)} messages, {rounds} rounds)")
        print(f"  of which fault → rule condition true (3 failed probes): median {statistics.median(detect):.1f} s, "
              f"max {max(detect):.1f} s; then for 10s + Alertmanager + bridge")
        print(f"fault cleared → resolved message: median {statistics.median(resolved):.1f} s, "
              f"max {max(resolved):.1f} s")
        return 0
    except AssertionError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        problems = stack.stop()
        stop_process(proc, "the demo exporter")
        for problem in problems:
            print(f"WARNING: {problem}", file=sys.stderr)
        if keep:
            print(f"logs and configs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3, help="fault/clear cycles (default %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, configs, outbox)")
    args = parser.parse_args()

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # unwinds through run()'s finally: every process stopped by PID

    signal.signal(signal.SIGTERM, terminate)
    return run(max(1, args.rounds), args.keep)


if __name__ == "__main__":
    sys.exit(main())
