"""The chat robots of the alerting stack (tests/stack/alerting_stack.py): who they are, the fake
robots (``tests/integration/fake_robots.py``) served from a background thread of this process so the
checks can read every request body they got, and what an accepted chat message says, alert by alert.

Nothing here imports pytest: ``bench/alert_latency.py`` reads the same messages outside pytest.
"""

from __future__ import annotations

import asyncio
import re
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "tests" / "integration") not in sys.path:  # fake_robots is a plain module, not a package
    sys.path.insert(0, str(ROOT / "tests" / "integration"))

from fake_robots import FakeRobots, Received, Robot  # noqa: E402

T = TypeVar("T")


#: one robot per chat; secrets and keys are made up and must never appear in the bridge's log
DINGTALK = Robot("dingtalk", "e2e-ding-token-7c1d9e", "SECe2e-ding-secret-5b2a8f")
WECOM = Robot("wecom", "e2e-wecom-key-3f6e1a")
FEISHU = Robot("feishu", "e2e-feishu-hook-9d4c2b", "e2e-feishu-secret-8a7b6c")
WEBHOOK = Robot("webhook", "e2e-platform-hook-1e2f3a")
#: routed AROUND the bridge: the watchdog's dead man's switch and the bridge-down fallback (Alertmanager
#: posts its own webhook payload to them; the fake's generic hook records it)
HEARTBEAT = Robot("webhook", "e2e-heartbeat-switch-4d3c")
FALLBACK = Robot("webhook", "e2e-bridge-down-fallback-7a6b")


# --- the fake robots in a background event loop ------------------------------------------------

class RobotsThread:
    """:class:`fake_robots.FakeRobots` served from its own event loop in a daemon thread.

    The tests are synchronous (one module-scoped stack shared by ordered scenarios); every call
    into the robots runs on their loop, so nothing races with a request being recorded.
    """

    def __init__(self, robots: list[Robot]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-robots", daemon=True)
        self._thread.start()
        self._fake: FakeRobots = self._call(lambda: FakeRobots(robots))
        self.base_url: str = self._run(self._fake.start())

    def _run(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout=10)

    def _call(self, fn: Callable[[], T]) -> T:
        async def inside() -> T:
            return fn()
        result: T = self._run(inside())
        return result

    def url(self, robot: Robot) -> str:
        return str(self._fake.url(robot.kind, robot.token))

    def fail(self, robot: Robot, mode: str, seconds: float | None = None) -> None:
        """Make ``robot`` misbehave (``http_500``, ``throttle``, ``security``, ``disconnect``)."""
        self._call(lambda: self._fake.fail(robot.token, mode, seconds=seconds))

    def clear(self) -> None:
        self._call(self._fake.clear)

    def received(self, robot: Robot | None = None) -> list[Received]:
        """Every request the robots got so far (answered ok or not), oldest first."""
        everything = self._call(lambda: list(self._fake.received))
        return [r for r in everything if robot is None or (r.kind == robot.kind and r.token == robot.token)]

    def close(self) -> None:
        try:
            self._run(self._fake.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()


# --- what a chat message says ------------------------------------------------------------------

#: one alert's section in a bridge message: ``**[告警] Name** · critical`` (WeCom wraps the state in
#: a <font> tag), then ``- key: value`` lines
_SECTION_HEAD = re.compile(r"\*\*\[(?:<font[^>]*>)?(告警|已恢复|FIRING|RESOLVED)(?:</font>)?\] ([^*\s]+)\*\*")
_LABELS_LINE = re.compile(r"^- (?:标签|labels): (.*)$", re.M)


@dataclass(frozen=True)
class Section:
    """One alert as a chat message shows it."""

    robot: str
    state: str  # firing | resolved
    alertname: str
    labels: dict[str, str]
    text: str
    at: float  # when the robot got the message (epoch seconds)

    def key(self) -> tuple[str, str, str, str, str]:
        return (self.robot, self.state, self.alertname, self.labels.get("marketplace", ""),
                self.labels.get("account", ""))


def sections(messages: Iterable[Received]) -> list[Section]:
    """Every alert section of the messages the robots ACCEPTED (a merged message has several)."""
    found: list[Section] = []
    for message in messages:
        if not message.ok:
            continue
        text = message.text
        heads = list(_SECTION_HEAD.finditer(text))
        for index, head in enumerate(heads):
            end = heads[index + 1].start() if index + 1 < len(heads) else len(text)
            body = text[head.start():end]
            labels: dict[str, str] = {}
            line = _LABELS_LINE.search(body)
            if line:
                for pair in line.group(1).split(", "):
                    name, _, value = pair.partition("=")
                    labels[name.strip()] = value.strip()
            state = "firing" if head.group(1) in ("告警", "FIRING") else "resolved"
            found.append(Section(message.kind, state, head.group(2), labels, body, message.at))
    return found
