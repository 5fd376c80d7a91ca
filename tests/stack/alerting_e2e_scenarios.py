"""What the alerting end-to-end scenarios (test_alerting_e2e.py) share: the checks they fault, the
deadlines they wait with, the timeline one scenario leaves for the next, and readers of what
arrived (alert sections in the robots' inbox, rows of the bridge's archive, Prometheus' firing
alerts) plus the noise budget's printout."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from alerting_stack import AlertingStack
from chat_robots import Section, sections

ALERT = "MarketplaceCheckFailing"
SHOPEE = {"marketplace": "shopee", "account": "sg-main", "site": "SG", "check": "get_shop_info"}
SHOPEE_MY = {"marketplace": "shopee", "account": "my-main", "site": "MY", "check": "get_shop_info"}
AMAZON = {"marketplace": "amazon_sp", "account": "us-main", "site": "US", "check": "marketplace_participations"}
#: untagged: its alerts are warnings for its owner only
LAZADA = {"marketplace": "lazada", "account": "vn-main", "site": "VN", "check": "seller_get"}
PLATFORM = "MarketplacePlatformFailing"
#: the test profile's Alertmanager group_interval (alert-rules mixin e2e profile)
GROUP_INTERVAL_S = 5.0
#: fault → first robot message is ~25 s (3 failed 5 s probes + for 10 s); 60 s leaves room for a
#: loaded 2-core CI machine without hiding a broken chain for long
FIRING_TIMEOUT_S = 60.0
#: fault cleared → resolved: next probe (≤ 5.5 s), scrape + eval (2 s), group_interval (5 s)
RESOLVED_TIMEOUT_S = 30.0
#: a bridge retrying every ≤ 1 s delivers within a few seconds of the robot's return
REDELIVERY_TIMEOUT_S = 20.0


@dataclass
class Timeline:
    """What earlier scenarios did, for the later ones."""

    fault_at: float = 0.0
    bridge_killed_at: float = 0.0
    cleared_at: float = 0.0
    #: robot kind → (down since, back at)
    robot_down: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: how many robot requests the one-shop phase ended with (later phases count from there)
    one_shop_end: int = 0


def sections_for(found: list[Section], robot: str, state: str, labels: dict[str, str]) -> list[Section]:
    return [s for s in found if s.robot == robot and s.state == state and s.alertname == ALERT
            and s.labels.get("marketplace") == labels["marketplace"] and s.labels.get("account") == labels["account"]]


def arrived(stack: AlertingStack, robot: str, state: str, labels: dict[str, str]) -> list[Section]:
    assert stack.robots is not None
    return sections_for(sections(stack.robots.received()), robot, state, labels)


def print_noise_budget(capsys: pytest.CaptureFixture[str], scenario: str,
                  counts: Counter[tuple[str, str, str, str, str]]) -> None:
    """The noise budget's numbers, in the test output even when the test passes."""
    per_route = Counter((robot, alertname, state) for robot, state, alertname, _, _ in counts.elements())
    with capsys.disabled():
        print(f"\nNOISE BUDGET {scenario}: {sum(per_route.values())} alert section(s) in robot messages")
        for (robot, alertname, state), n in sorted(per_route.items()):
            print(f"  {robot:9} {alertname:37} {state:9} {n}")


def history_rows(stack: AlertingStack, receiver: str, alertname: str, state: str) -> list[dict[str, Any]]:
    return [row for row in stack.history()
            if row["receiver"] == receiver and row["alertname"] == alertname and row["state"] == state]


def firing_in_prometheus(stack: AlertingStack, alertname: str, marketplace: str) -> list[dict[str, Any]]:
    return [a for a in stack.prometheus_alerts() if a["labels"].get("alertname") == alertname
            and a["labels"].get("marketplace") == marketplace and a["state"] == "firing"]
